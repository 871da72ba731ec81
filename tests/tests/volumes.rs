//! Persistent volumes end to end: FAT32 images made by `bake volume create`, attached with
//! `bake run -v IMAGE:/path[:ro]` as virtio-blk (virtio-mmio on microvm, virtio-pci on pc and
//! q35), written by a program in one boot and read back in the next boot and on the host.
//! Also the virtqueue arithmetic of the kernel's driver, as host unit tests.

use std::path::{Path, PathBuf};

use kiln_tests::{Flavour, Outcome, bake_cmd, program};

#[allow(dead_code)]
#[path = "../../kernel/src/drivers/virtio/ring.rs"]
mod ring;

const MACHINES: [&str; 3] = ["microvm", "pc", "q35"];

fn tmpdir(name: &str) -> PathBuf {
    let dir = kiln_tests::target_dir()
        .join("kiln-tests")
        .join("volumes")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn create_volume(img: &Path, from: Option<&Path>) {
    let mut args = vec!["volume".to_string(), "create".into(), s(img), "--size".into(), "16M".into()];
    if let Some(dir) = from {
        args.extend(["--from".into(), s(dir)]);
    }
    let out = bake(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status, Some(0), "volume create failed:\n{out}");
}

fn bake(args: &[&str]) -> Outcome {
    bake_cmd(args)
}

/// `bake run --timeout 60 --machine M -v VOL... -v PROG -- ARGS` (verbose: the kernel log is
/// on stderr).
fn run(machine: &str, volumes: &[String], prog: &Path, args: &[&str]) -> Outcome {
    let mut argv: Vec<String> = vec!["run".into(), "--timeout".into(), "60".into(), "--machine".into(), machine.into()];
    for v in volumes {
        argv.extend(["-v".into(), v.clone()]);
    }
    argv.extend(["-v".into(), s(prog), "--".into()]);
    argv.extend(args.iter().map(|a| a.to_string()));
    bake(&argv.iter().map(String::as_str).collect::<Vec<_>>())
}

fn hello() -> PathBuf {
    program("hello", Flavour::MuslStatic)
}

#[test]
fn virtio_blk_attaches_interrupt_driven_on_every_machine() {
    let dir = tmpdir("attach");
    let img = dir.join("v.img");
    create_volume(&img, None);
    for machine in MACHINES {
        let out = run(machine, &[format!("{}:/data", s(&img))], &hello(), &[]);
        assert_eq!(out.status, Some(0), "[{machine}]\n{out}");
        assert_eq!(out.stdout, "hello from kiln\n", "[{machine}]\n{out}");
        let transport = if machine == "microvm" { "virtio-mmio" } else { "virtio-pci" };
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("virtio-blk") && l.contains("sectors"))
            .unwrap_or_else(|| panic!("[{machine}] no virtio-blk line in the log:\n{out}"));
        assert!(line.contains(transport), "[{machine}] {line}");
        assert!(line.contains("32768 sectors (16 MiB)"), "[{machine}] {line}");
        assert!(line.contains("serial \"vol0\""), "[{machine}] {line}");
        assert!(line.contains("interrupt-driven"), "[{machine}] interrupts must work: {line}");
        assert!(!line.contains("read-only"), "[{machine}] {line}");
        assert!(out.stderr.contains("volume vol0 (disk 0) opened for /data"), "[{machine}] the FAT32 volume must open:\n{out}");
    }
}

#[test]
fn read_only_volume_is_a_read_only_device() {
    let dir = tmpdir("ro-device");
    let img = dir.join("v.img");
    create_volume(&img, None);
    for machine in ["microvm", "q35"] {
        let out = run(machine, &[format!("{}:/data:ro", s(&img))], &hello(), &[]);
        assert_eq!(out.status, Some(0), "[{machine}]\n{out}");
        assert!(
            out.stderr.lines().any(|l| l.contains("virtio-blk") && l.contains("read-only")),
            "[{machine}] the device must offer VIRTIO_BLK_F_RO:\n{out}"
        );
    }
}

#[test]
fn two_volumes_are_told_apart_by_serial() {
    let dir = tmpdir("two");
    let (a, b) = (dir.join("a.img"), dir.join("b.img"));
    create_volume(&a, None);
    create_volume(&b, None);
    let out = run("microvm", &[format!("{}:/a", s(&a)), format!("{}:/b:ro", s(&b))], &hello(), &[]);
    assert_eq!(out.status, Some(0), "{out}");
    for serial in ["\"vol0\"", "\"vol1\""] {
        assert!(out.stderr.contains(serial), "{serial} missing:\n{out}");
    }
}

#[test]
fn bad_volumes_are_clear_errors() {
    let dir = tmpdir("bad");
    let missing = dir.join("missing.img");
    let out = run("microvm", &[format!("{}:/data", s(&missing))], &hello(), &[]);
    assert_eq!(out.status, Some(127), "{out}");
    assert!(out.stderr.contains("cannot open volume") && out.stderr.contains("missing.img"), "{out}");
    let zero = dir.join("zero.img");
    std::fs::write(&zero, vec![0u8; 1 << 20]).unwrap();
    let out = run("microvm", &[format!("{}:/data", s(&zero))], &hello(), &[]);
    assert_eq!(out.status, Some(125), "{out}");
    assert!(out.stderr.contains("is not a FAT32 volume"), "{out}");
    let out = run("microvm", &[format!("{}:data", s(&zero))], &hello(), &[]);
    assert_eq!(out.status, Some(125), "{out}");
    assert!(out.stderr.contains("absolute"), "{out}");
    let out = bake(&["volume", "create", &s(&dir.join("x.img")), "--size", "12Q"]);
    assert_eq!(out.status, Some(125), "{out}");
    assert!(out.stderr.contains("is not a size"), "{out}");
    let out = bake(&["volume", "ls", &s(&zero)]);
    assert!(out.stderr.contains("is not a FAT32 volume"), "{out}");
}

#[test]
fn volume_create_from_dir_ls_get() {
    let dir = tmpdir("host");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("etc/app")).unwrap();
    std::fs::write(src.join("etc/app/config.toml"), "port = 8080\n").unwrap();
    std::fs::write(src.join("README"), "hi\n").unwrap();
    let img = dir.join("v.img");
    create_volume(&img, Some(&src));
    let out = bake(&["volume", "ls", &s(&img)]);
    assert_eq!(out.status, Some(0), "{out}");
    assert_eq!(out.stdout, format!("{:>12} README\n{:>12} etc/\n", 3, 0));
    let out = bake(&["volume", "ls", &s(&img), "/etc/app"]);
    assert_eq!(out.stdout, format!("{:>12} config.toml\n", 12));
    let got = dir.join("got.toml");
    let out = bake(&["volume", "get", &s(&img), "/etc/app/config.toml", &s(&got)]);
    assert_eq!(out.status, Some(0), "{out}");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "port = 8080\n");
    let out = bake(&["volume", "get", &s(&img), "/etc/nope", &s(&got)]);
    assert_eq!(out.status, Some(127), "{out}");
    assert!(out.stderr.contains("/etc/nope is not on volume"), "{out}");
}

/// Boot 1 writes, boot 2 reads back; then the host reads the same file.
fn persistence(machine: &str) {
    let dir = tmpdir(&format!("persist-{machine}"));
    let img = dir.join("data.img");
    create_volume(&img, None);
    let vol = format!("{}:/data", s(&img));
    let out = run(machine, std::slice::from_ref(&vol), &program("vol_write", Flavour::MuslStatic), &["/data"]);
    assert_eq!((out.status, out.stdout.as_str()), (Some(0), "wrote /data\n"), "[{machine}] write boot:\n{out}");
    let out = run(machine, std::slice::from_ref(&vol), &program("vol_read", Flavour::MuslStatic), &["/data"]);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (Some(0), "persisted across boots\npattern.bin ok\nrenamed\nread /data\n"),
        "[{machine}] read boot:\n{out}"
    );
    let got = dir.join("greeting.txt");
    let out = bake(&["volume", "get", &s(&img), "/greeting.txt", &s(&got)]);
    assert_eq!(out.status, Some(0), "{out}");
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "persisted across boots\n");
    let out = bake(&["volume", "ls", &s(&img), "/sub dir"]);
    assert_eq!(out.stdout, format!("{:>12} final name.txt\n", 8), "{out}");
}

#[test]
fn persistence_microvm() {
    persistence("microvm");
}

#[test]
fn persistence_pc() {
    persistence("pc");
}

#[test]
fn read_only_volume_writes_fail_with_erofs() {
    let dir = tmpdir("erofs");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), "read me\n").unwrap();
    let img = dir.join("ro.img");
    create_volume(&img, Some(&src));
    for machine in ["microvm", "pc"] {
        let out = run(machine, &[format!("{}:/data:ro", s(&img))], &program("vol_rofs", Flavour::MuslStatic), &["/data"]);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (
                Some(0),
                "read: read me\nopen O_WRONLY: EROFS\ncreat: EROFS\nunlink: EROFS\nmkdir: EROFS\nrename: EROFS\n"
            ),
            "[{machine}]\n{out}"
        );
    }
}

/// Metadata changes (creates, renames) without any fsync are written back when the VM ends,
/// whether the app exits or is killed by a signal: the host then lists and reads them.
#[test]
fn unsynced_changes_are_written_back_at_exit_and_on_a_kill() {
    let dir = tmpdir("writeback");
    for (end, status) in [("exit", 0), ("abort", 134)] {
        let img = dir.join(format!("{end}.img"));
        create_volume(&img, None);
        let vol = [format!("{}:/data", s(&img))];
        let out = run("microvm", &vol, &program("vol_many", Flavour::MuslStatic), &["/data", "300", end]);
        assert_eq!((out.status, out.stdout.as_str()), (Some(status), "created 300\n"), "[{end}]\n{out}");
        let out = bake(&["volume", "ls", &s(&img), "/many"]);
        assert_eq!(out.status, Some(0), "[{end}]\n{out}");
        let names: Vec<&str> = out.stdout.lines().map(|l| l.trim_start().split_once(' ').unwrap().1).collect();
        assert_eq!(names.len(), 300, "[{end}]\n{out}");
        assert_eq!(names.iter().filter(|n| n.starts_with("renamed ")).count(), 30, "[{end}]\n{out}");
        assert!(names.contains(&"f0000.txt") && names.contains(&"f0298.txt") && names.contains(&"renamed 0299"), "[{end}]\n{out}");
        let got = dir.join(format!("{end}-got"));
        let out = bake(&["volume", "get", &s(&img), "/many/renamed 0149", &s(&got)]);
        assert_eq!(out.status, Some(0), "[{end}]\n{out}");
        assert_eq!(std::fs::read_to_string(&got).unwrap(), "f0149.txt", "[{end}]");
    }
}

/// The volume programs themselves, natively on a host directory: what they print there is
/// what the tests expect of Kiln.
#[test]
fn volume_programs_natively() {
    let dir = tmpdir("native");
    let d = s(&dir);
    let out = kiln_tests::run_native(&program("vol_write", Flavour::MuslStatic), &[&d], &[]);
    assert_eq!((out.status, out.stdout.clone()), (Some(0), format!("wrote {d}\n")), "{out}");
    let out = kiln_tests::run_native(&program("vol_read", Flavour::MuslStatic), &[&d], &[]);
    assert_eq!(
        (out.status, out.stdout.clone()),
        (Some(0), format!("persisted across boots\npattern.bin ok\nrenamed\nread {d}\n")),
        "{out}"
    );
    let out = kiln_tests::run_native(&program("vol_many", Flavour::MuslStatic), &[&d, "300", "exit"], &[]);
    assert_eq!((out.status, out.stdout.clone()), (Some(0), "created 300\n".to_string()), "{out}");
    let names = std::fs::read_dir(dir.join("many")).unwrap().count();
    assert_eq!(names, 300);
}

// --- the driver's virtqueue arithmetic, on the host ------------------------------------------

#[test]
fn ring_layout_matches_the_virtio_spec() {
    let l = ring::Layout::new(64);
    assert_eq!(l.avail, 16 * 64, "the available ring follows the descriptor table");
    assert_eq!(l.used % 4096, 0, "the used ring starts on its own page");
    assert!(l.used >= l.avail + 4 + 2 * 64 + 2);
    assert_eq!(l.total, l.used + 4 + 8 * 64 + 2);
    assert_eq!(l.desc(3), 48);
    assert_eq!(l.avail_ring(0), l.avail + 4);
    // Indices are free-running u16s; ring slots wrap modulo the size.
    assert_eq!(l.avail_ring(64), l.avail_ring(0));
    assert_eq!(l.avail_ring(65535), l.avail + 4 + 2 * 63);
    assert_eq!(l.used_ring(130), l.used + 4 + 8 * 2);
}

#[test]
#[should_panic(expected = "power of two")]
fn ring_size_must_be_a_power_of_two() {
    ring::Layout::new(48);
}

#[test]
fn descriptor_free_list() {
    let mut f = ring::FreeList::new(8);
    assert_eq!(f.available(), 8);
    let a = f.take(3).unwrap();
    assert_eq!(&a[..3], &[0, 1, 2]);
    let b = f.take(5).unwrap();
    assert_eq!(&b[..5], &[3, 4, 5, 6, 7]);
    assert!(f.take(1).is_none(), "an empty list gives nothing");
    for i in [1, 0, 2] {
        f.put(i);
    }
    assert_eq!(f.available(), 3);
    assert!(f.take(4).is_none(), "a partial chain is never handed out");
    assert_eq!(f.available(), 3, "a refused take takes nothing");
    assert_eq!(&f.take(3).unwrap()[..3], &[2, 0, 1]);
    assert!(f.take(0).is_none());
    // Big queues track their first 256 descriptors.
    assert_eq!(ring::FreeList::new(1024).available(), 256);
}

#[test]
#[should_panic(expected = "freed twice")]
fn double_free_of_a_descriptor_is_caught() {
    let mut f = ring::FreeList::new(4);
    let _ = f.take(1);
    f.put(3);
}

// --- sqlite3 on a volume -------------------------------------------------------------------

/// A static sqlite3 shell built from Debian's source package (its amalgamation, generated
/// with tclsh, linked with musl), once per target directory.
fn sqlite3() -> PathBuf {
    use std::process::Command;
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = kiln_tests::target_dir().join("kiln-tests").join("sqlite3");
            let bin = dir.join("sqlite3");
            if bin.is_file() {
                return bin;
            }
            kiln_tests::require_tools(&["apt-get", "tclsh", "make", "musl-gcc"]);
            std::fs::create_dir_all(&dir).unwrap();
            let sh = |script: &str| {
                let out = Command::new("sh").arg("-ec").arg(script).current_dir(&dir).output().expect("sh");
                assert!(
                    out.status.success(),
                    "building sqlite3 failed at `{script}` (scripts/setup.sh turns Debian's deb-src on and installs tcl):\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            sh("ls sqlite3_*.orig.tar.xz >/dev/null 2>&1 || apt-get source --download-only sqlite3");
            sh("rm -rf src && mkdir src && tar xJf $(ls sqlite3_*.orig.tar.xz | grep -v www) -C src --strip-components=1");
            sh("cd src && ./configure --disable-tcl >/dev/null && make sqlite3.c shell.c >/dev/null");
            sh("musl-gcc -O2 -static -o sqlite3.tmp src/shell.c src/sqlite3.c -lm -lpthread && mv sqlite3.tmp sqlite3");
            bin
        })
        .clone()
}

#[test]
fn sqlite3_database_persists_across_boots() {
    let dir = tmpdir("sqlite");
    let img = dir.join("db.img");
    let out = bake(&["volume", "create", &s(&img), "--size", "32M"]);
    assert_eq!(out.status, Some(0), "{out}");
    let vol = [format!("{}:/data", s(&img))];
    let sqlite = sqlite3();
    let create = "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT); \
                  WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<2000) \
                  INSERT INTO t(name) SELECT 'row ' || x FROM c; \
                  CREATE INDEX tn ON t(name); SELECT count(*) FROM t;";
    let out = run("microvm", &vol, &sqlite, &["/data/test.db", create]);
    assert_eq!((out.status, out.stdout.as_str()), (Some(0), "2000\n"), "first boot:\n{out}");
    // Second boot, other transport: check, then change it in a transaction (rollback
    // journal next to the database) and shrink it.
    let change = "PRAGMA integrity_check; SELECT count(*), max(name) FROM t; \
                  BEGIN; UPDATE t SET name = name || '!' WHERE id % 3 = 0; COMMIT; \
                  DELETE FROM t WHERE id > 1500; VACUUM; PRAGMA integrity_check;";
    let out = run("pc", &vol, &sqlite, &["/data/test.db", change]);
    assert_eq!((out.status, out.stdout.as_str()), (Some(0), "ok\n2000|row 999\nok\n"), "second boot:\n{out}");
    let check = "PRAGMA integrity_check; SELECT count(*) FROM t; SELECT count(*) FROM t WHERE name LIKE '%!';";
    let out = run("microvm", &vol, &sqlite, &["/data/test.db", check]);
    assert_eq!((out.status, out.stdout.as_str()), (Some(0), "ok\n1500\n500\n"), "third boot:\n{out}");
    // The host reads the same database with the same shell.
    let host = dir.join("host.db");
    let out = bake(&["volume", "get", &s(&img), "/test.db", &s(&host)]);
    assert_eq!(out.status, Some(0), "{out}");
    let out = kiln_tests::run_native(&sqlite, &[&s(&host), check], &[]);
    assert_eq!((out.status, out.stdout.as_str()), (Some(0), "ok\n1500\n500\n"), "on the host:\n{out}");
}

//! Files end to end (issue 4): the file-syscall conformance program natively and under Kiln
//! in every flavour, a rootfs of 10,000 files listed and read in the guest, `-f` single
//! files, and bake's rootfs packing (inspect, byte-identical images).

use std::path::{Path, PathBuf};

use kiln_tests::{Flavour, RunOpts, bake_cmd, program, run_in_kiln, run_native, scratch_dir};

fn conformance_ok(stdout: &str) -> Result<(), String> {
    let last = stdout.lines().last().unwrap_or("");
    if last.starts_with("files: ") && last.ends_with(", 0 failed") && !stdout.contains("FAIL") {
        Ok(())
    } else {
        Err(format!("conformance failures:\n{stdout}"))
    }
}

#[test]
fn conformance_native() {
    for f in [Flavour::MuslStatic, Flavour::GlibcStatic] {
        let out = run_native(&program("files_conformance", f), &[], &[]);
        assert_eq!(out.status, Some(0), "{f}: {out:?}");
        conformance_ok(&out.stdout).unwrap_or_else(|e| panic!("{f}: {e}"));
    }
}

fn conformance_in_kiln(f: Flavour) {
    let out = run_in_kiln(&program("files_conformance", f), &[], &RunOpts::default());
    conformance_ok(&out.stdout).unwrap_or_else(|e| panic!("{f}: {e}\nstderr: {}", out.stderr));
    assert_eq!(out.status, Some(0), "{f}: {out:?}");
}

#[test]
fn conformance_musl_static() {
    conformance_in_kiln(Flavour::MuslStatic);
}

#[test]
fn conformance_musl_static_pie() {
    conformance_in_kiln(Flavour::MuslStaticPie);
}

#[test]
fn conformance_glibc_static() {
    conformance_in_kiln(Flavour::GlibcStatic);
}

/// Writes `count` files under `root/data`, each holding its path relative to `root/data`.
fn make_tree(root: &Path, count: usize) {
    let data = root.join("data");
    for i in 0..count {
        let rel = format!("d{}/e{}/f{:03}.txt", i / 1000, (i / 100) % 10, i % 100);
        let path = data.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("{rel}\n")).unwrap();
    }
}

fn bake_run(args: &[&str]) -> kiln_tests::Outcome {
    let mut all = vec!["run", "--timeout", "120", "--mem", "256M"];
    all.extend_from_slice(args);
    bake_cmd(&all)
}

#[test]
fn rootfs_with_10000_files_is_listed_and_read() {
    let dir = scratch_dir("files-tree");
    let root = dir.join("root");
    make_tree(&root, 10_000);
    let prog = program("files_tree", Flavour::MuslStatic);
    let out = bake_run(&["--rootfs", root.to_str().unwrap(), prog.to_str().unwrap()]);
    assert_eq!(
        out.stdout, "tree: 10000 files, 111 directories, 150000 bytes, 0 bad\n",
        "{out:?}"
    );
    assert_eq!(out.status, Some(0));
}

#[test]
fn single_files_with_dash_f() {
    let dir = scratch_dir("files-f");
    let a = dir.join("a.txt");
    std::fs::write(&a, "x/a.txt\n").unwrap();
    let b = dir.join("b.txt");
    std::fs::write(&b, "y/z/b.txt\n").unwrap();
    let prog = program("files_tree", Flavour::MuslStatic);
    let fa = format!("{}:/opt/x/a.txt", a.display());
    let fb = format!("{}:/opt/y/z/b.txt", b.display());
    let out = bake_run(&["-f", &fa, "-f", &fb, prog.to_str().unwrap(), "--", "/opt"]);
    assert_eq!(
        out.stdout, "tree: 2 files, 4 directories, 18 bytes, 0 bad\n",
        "{out:?}"
    );
    assert_eq!(out.status, Some(0));
}

fn build_image(prog: &Path, root: &Path, out: &Path) {
    let r = bake_cmd(&[
        "build",
        prog.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--rootfs",
        root.to_str().unwrap(),
    ]);
    assert_eq!(r.status, Some(0), "{r:?}");
}

#[test]
fn rootfs_images_are_byte_identical_and_inspected() {
    let dir = scratch_dir("files-repro");
    let root = dir.join("root");
    make_tree(&root, 250);
    std::os::unix::fs::symlink("data/d0", root.join("link")).unwrap();
    let prog = program("files_tree", Flavour::MuslStatic);
    let (one, two): (PathBuf, PathBuf) = (dir.join("one.img"), dir.join("two.img"));
    build_image(&prog, &root, &one);
    // A newer mtime on a file must not change the image.
    std::fs::write(root.join("data/d0/e0/f000.txt"), "d0/e0/f000.txt\n").unwrap();
    build_image(&prog, &root, &two);
    assert!(
        std::fs::read(&one).unwrap() == std::fs::read(&two).unwrap(),
        "images differ"
    );
    let inspect = bake_cmd(&["inspect", one.to_str().unwrap()]);
    assert_eq!(inspect.status, Some(0), "{inspect:?}");
    let line = inspect
        .stdout
        .lines()
        .find(|l| l.starts_with("rootfs"))
        .unwrap_or_else(|| panic!("{inspect:?}"));
    assert!(line.contains("250 files"), "{line}");
    assert!(line.contains("1 other entries"), "{line}");
    // The baked image runs with its rootfs.
    let out = bake_run(&[one.to_str().unwrap()]);
    assert_eq!(
        out.stdout, "tree: 250 files, 5 directories, 3750 bytes, 0 bad\n",
        "{out:?}"
    );
}

#[test]
fn rootfs_errors_name_the_option() {
    let prog = program("files_tree", Flavour::MuslStatic);
    let out = bake_cmd(&[
        "build",
        prog.to_str().unwrap(),
        "-o",
        "/dev/null",
        "--rootfs",
        "/nonexistent-kiln-dir",
    ]);
    assert_eq!(out.status, Some(127), "{out:?}");
    assert!(out.stderr.contains("--rootfs"), "{out:?}");
    let out = bake_cmd(&[
        "build",
        prog.to_str().unwrap(),
        "-o",
        "/dev/null",
        "-f",
        "nocolon",
    ]);
    assert_eq!(out.status, Some(125), "{out:?}");
    assert!(out.stderr.contains("-f"), "{out:?}");
}

/// One tmpfs file of 60% of a 128 MiB guest's RAM, written, read back and checked (tmpfs
/// stores files in chunks: a single contiguous buffer failed with ENOSPC at about a third of
/// RAM, when growing it needed the old and the new copy at once), then a 1 TiB hole on top.
#[test]
fn tmpfs_file_of_60_percent_of_ram() {
    let prog = program("tmpfs_big_file", Flavour::MuslStatic);
    let out = bake_cmd(&[
        "run",
        "--timeout",
        "300",
        "--mem",
        "128M",
        prog.to_str().unwrap(),
        "--",
        "60",
        "/tmp",
    ]);
    assert_eq!(out.status, Some(0), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(lines[0].starts_with("big: ") && lines[0].contains(" MiB of "), "{out:?}");
    let mib: u64 = lines[0]["big: ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(mib >= 70, "60% of 128 MiB is at least 70 MiB of what the guest sees: {out:?}");
    assert_eq!(lines[1], "big: ok", "{out:?}");
}

//! bake against a stand-in kernel under QEMU: the log-channel protocol, exit statuses and
//! image layout, end to end, without the real kernel. The stand-in (`src/stand_in_kernel.rs`)
//! checks that the payload is where the image format says and reports through port 0xe9.

#[path = "../src/stand_in_kernel.rs"]
#[allow(dead_code)]
mod stand_in_kernel;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stand_in_kernel::{Ending, StandIn};

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bake-stand-in-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A minimal static x86_64 executable: `ET_EXEC`, one R+X `PT_LOAD`, entry inside it.
fn tiny_static_elf() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&62u16.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0x401000u64.to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // phoff
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    for half in [64u16, 56, 1, 64, 0, 0] {
        out.extend_from_slice(&half.to_le_bytes());
    }
    out.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    out.extend_from_slice(&5u32.to_le_bytes()); // R+X
    for word in [0x1000u64, 0x401000, 0x401000, 16, 16, 0x1000] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.resize(0x1000, 0);
    out.extend_from_slice(&[0xf4; 16]);
    out
}

fn have_qemu() -> bool {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Setup {
    dir: PathBuf,
    kernel: PathBuf,
    app: PathBuf,
}

fn setup(test: &str, stand_in: &StandIn) -> Setup {
    let dir = scratch(test);
    let kernel = dir.join("kernel.elf");
    std::fs::write(&kernel, stand_in.build()).unwrap();
    let app = dir.join("app");
    std::fs::write(&app, tiny_static_elf()).unwrap();
    Setup { dir, kernel, app }
}

fn bake(args: &[&Path]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_bake"))
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "bake {args:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

fn run(setup: &Setup, extra: &[&str]) -> Output {
    let mut args: Vec<&Path> = vec![
        p("run"),
        p("--accel"),
        p("tcg"),
        p("--kernel"),
        &setup.kernel,
    ];
    args.extend(extra.iter().map(|a| p(a)));
    args.push(&setup.app);
    bake(&args)
}

#[test]
fn exit_record_gives_status_and_logs_are_relayed() {
    if !have_qemu() {
        eprintln!("skipped: qemu-system-x86_64 is not installed");
        return;
    }
    let stand_in = StandIn {
        log: b"INFO standin: hello\n\nWARN standin: second line\n".to_vec(),
        console: b"console text\n".to_vec(),
        stderr: b"stderr text\n".to_vec(),
        ending: Ending::Exit(42),
    };
    let s = setup("exit", &stand_in);
    for machine in ["microvm", "pc", "q35"] {
        let out = run(&s, &["--machine", machine, "--timeout", "60"]);
        assert_eq!(out.status.code(), Some(42), "{machine}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "console text\n",
            "{machine}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let mut lines: Vec<&str> = stderr.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "kiln: INFO standin: hello",
                "kiln: WARN standin: second line",
                "stderr text"
            ],
            "{machine}"
        );
    }
}

#[test]
fn exit_zero() {
    if !have_qemu() {
        return;
    }
    let s = setup("exit0", &StandIn::exit(0));
    let out = run(&s, &["--timeout", "60"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
}

#[test]
fn panic_is_123() {
    if !have_qemu() {
        return;
    }
    let s = setup(
        "panic",
        &StandIn {
            ending: Ending::Panic,
            ..StandIn::exit(0)
        },
    );
    let out = run(&s, &["--timeout", "60"]);
    assert_eq!(out.status.code(), Some(123));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kernel panic"));
}

#[test]
fn triple_fault_is_123() {
    if !have_qemu() {
        return;
    }
    let s = setup(
        "triple",
        &StandIn {
            ending: Ending::TripleFault,
            ..StandIn::exit(0)
        },
    );
    let out = run(&s, &["--timeout", "60"]);
    assert_eq!(out.status.code(), Some(123));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without reporting an exit status"));
}

#[test]
fn timeout_is_124() {
    if !have_qemu() {
        return;
    }
    let s = setup(
        "hang",
        &StandIn {
            ending: Ending::Hang,
            ..StandIn::exit(0)
        },
    );
    let out = run(&s, &["--timeout", "1"]);
    assert_eq!(out.status.code(), Some(124));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "kiln: timed out after 1 s\n"
    );
}

#[test]
fn baked_image_runs_and_rebakes_with_overrides() {
    if !have_qemu() {
        return;
    }
    let s = setup("image", &StandIn::exit(9));
    let img = s.dir.join("app.img");
    let out = bake(&[
        p("build"),
        p("--kernel"),
        &s.kernel,
        &s.app,
        p("-o"),
        &img,
        p("-e"),
        p("A=1"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let out = bake(&[p("run"), p("--accel"), p("tcg"), &img]);
    assert_eq!(out.status.code(), Some(9));
    let out = bake(&[
        p("run"),
        p("--accel"),
        p("tcg"),
        p("-e"),
        p("B=2"),
        &img,
        p("--"),
        p("x"),
    ]);
    assert_eq!(out.status.code(), Some(9));
    let out = bake(&[p("inspect"), &img]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"/bin/app\""), "{text}");
    assert!(text.contains("\"A=1\""), "{text}");
    assert!(text.contains("0x401000"), "{text}");
}

#[test]
fn bad_inputs() {
    let s = setup("bad", &StandIn::exit(0));
    let check = |out: Output, code: i32, needle: &str| {
        assert_eq!(out.status.code(), Some(code));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("bake: error: "), "{stderr}");
        assert!(
            stderr.contains(needle),
            "{stderr:?} should contain {needle:?}"
        );
    };
    let missing = s.dir.join("missing");
    check(bake(&[p("run"), &missing]), 127, "no such file");
    check(
        bake(&[p("build"), &missing, p("-o"), &s.dir.join("x.img")]),
        127,
        "no such file",
    );
    check(bake(&[p("run"), &s.dir]), 126, "directory");
    check(bake(&[p("inspect"), &s.dir]), 126, "directory");
    let text = s.dir.join("text");
    std::fs::write(&text, "#!/bin/sh\n").unwrap();
    check(bake(&[p("run"), &text]), 126, "ELF");
    check(
        bake(&[p("run"), p("-e"), p("NOEQUALS"), &s.app]),
        125,
        "NOEQUALS=VALUE",
    );
    check(
        bake(&[p("run"), p("--mem"), p("lots"), &s.app]),
        125,
        "128M",
    );

    // An image from another Kiln version: patch the version string in the payload.
    let img = s.dir.join("app.img");
    let out = bake(&[p("build"), p("--kernel"), &s.kernel, &s.app, p("-o"), &img]);
    assert_eq!(out.status.code(), Some(0));
    let mut bytes = std::fs::read(&img).unwrap();
    let at = (0..bytes.len())
        .step_by(4096)
        .find(|&o| bytes[o..].starts_with(b"KILNIMG\0"))
        .unwrap();
    let version = at + 32 + 16;
    assert!(bytes[version..].starts_with(env!("CARGO_PKG_VERSION").as_bytes()));
    bytes[version] = b'9';
    let other = s.dir.join("other.img");
    std::fs::write(&other, &bytes).unwrap();
    check(bake(&[p("run"), &other]), 126, "baked by Kiln 9");
    check(bake(&[p("inspect"), &other]), 126, "baked by Kiln 9");

    // A truncated image.
    let bytes = std::fs::read(&img).unwrap();
    let cut = s.dir.join("cut.img");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    check(bake(&[p("run"), &cut]), 126, "truncated");
}

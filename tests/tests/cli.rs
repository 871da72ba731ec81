//! bake's contract as a user sees it: exit codes 124-127, one-line errors, `build` and
//! `inspect`, reproducible images, other machine types.

use kiln_tests::{
    Case, ElfInfo, Expect, Flavour, RunOpts, assert_bake_error, bake_cmd, cases, program,
    run_in_kiln, scratch_dir,
};
use std::path::Path;
use std::time::Duration;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn run_missing_file_is_127() {
    let dir = scratch_dir("missing");
    let path = dir.join("no-such-program");
    let got = bake_cmd(&["run", s(&path)]);
    assert_bake_error(&got, 127, &["no-such-program"]);
}

#[test]
fn build_missing_file_is_127() {
    let dir = scratch_dir("build-missing");
    let path = dir.join("no-such-program");
    let img = dir.join("out.img");
    let got = bake_cmd(&["build", s(&path), "-o", s(&img)]);
    assert_bake_error(&got, 127, &["no-such-program"]);
    assert!(!img.exists(), "a failed build left {}", img.display());
}

#[test]
fn run_text_file_is_126_not_an_elf() {
    let dir = scratch_dir("text");
    let path = dir.join("script.sh");
    std::fs::write(&path, "#!/bin/sh\necho hi\n").unwrap();
    let got = bake_cmd(&["run", s(&path)]);
    assert_bake_error(&got, 126, &["not an ELF"]);
}

#[test]
fn run_dynamic_binary_is_126_naming_interpreter() {
    let prog = kiln_tests::dynamic_program("hello");
    let got = bake_cmd(&["run", s(&prog)]);
    assert_bake_error(&got, 126, &["/lib64/ld-linux-x86-64.so.2"]);
}

#[test]
fn run_truncated_elf_is_126() {
    let prog = program("hello", Flavour::MuslStatic);
    let data = std::fs::read(&prog).unwrap();
    let dir = scratch_dir("truncated");
    // Half the file: headers intact, segments cut off. Then 40 bytes: a cut ELF header.
    for len in [data.len() / 2, 40] {
        let path = dir.join(format!("hello-{len}"));
        std::fs::write(&path, &data[..len]).unwrap();
        let got = bake_cmd(&["run", s(&path)]);
        assert_bake_error(&got, 126, &[]);
    }
}

/// `bake build` with arguments and environment, `bake inspect` shows them, `bake run IMAGE`
/// boots with them.
#[test]
fn build_inspect_run_image() {
    let prog = program("args_env", Flavour::MuslStatic);
    let entry = ElfInfo::read(&prog).unwrap().entry;
    let dir = scratch_dir("build-inspect");
    let img = dir.join("args.img");
    let got = bake_cmd(&[
        "build",
        s(&prog),
        "-o",
        s(&img),
        "-e",
        "KILN_TEST=baked",
        "--",
        "first",
        "second",
    ]);
    assert_eq!(got.status, Some(0), "bake build failed:\n{got}");
    assert!(img.is_file(), "bake build made no {}", img.display());

    let got = bake_cmd(&["inspect", s(&img)]);
    assert_eq!(got.status, Some(0), "bake inspect failed:\n{got}");
    let text = got.stdout.to_lowercase();
    let entry_hex = format!("{entry:x}");
    assert!(
        text.contains(&entry_hex),
        "inspect should show the entry {entry:#x}:\n{got}"
    );
    for arg in ["first", "second", "kiln_test=baked"] {
        assert!(text.contains(arg), "inspect should show {arg:?}:\n{got}");
    }

    let got = bake_cmd(&["run", "--timeout", "60", s(&img)]);
    let case = Case {
        prog: "args_env (baked image)",
        args: &["first", "second"],
        env: &[("KILN_TEST", "baked")],
        stdout: Expect::ArgsEnv,
        status: 0,
    };
    if let Err(e) = case.check(&got, got.status) {
        panic!("{e}");
    }

    // `run IMAGE -e K=V -- ARGS` replaces argv[1..] and overrides the baked variable.
    let got = bake_cmd(&[
        "run",
        "--timeout",
        "60",
        s(&img),
        "-e",
        "KILN_TEST=override",
        "--",
        "x",
    ]);
    let case = Case {
        prog: "args_env (baked image, overridden)",
        args: &["x"],
        env: &[("KILN_TEST", "override")],
        stdout: Expect::ArgsEnv,
        status: 0,
    };
    if let Err(e) = case.check(&got, got.status) {
        panic!("{e}");
    }
}

#[test]
fn images_are_reproducible() {
    let prog = program("hello", Flavour::MuslStatic);
    let dir = scratch_dir("repro");
    let mut images = Vec::new();
    for name in ["a.img", "b.img"] {
        let img = dir.join(name);
        let got = bake_cmd(&["build", s(&prog), "-o", s(&img), "-e", "A=1", "--", "x"]);
        assert_eq!(got.status, Some(0), "bake build failed:\n{got}");
        images.push(std::fs::read(&img).unwrap());
    }
    assert!(
        images[0] == images[1],
        "two builds of the same inputs differ"
    );
}

#[test]
fn run_truncated_image_is_126() {
    let prog = program("hello", Flavour::MuslStatic);
    let dir = scratch_dir("truncated-image");
    let img = dir.join("hello.img");
    let got = bake_cmd(&["build", s(&prog), "-o", s(&img)]);
    assert_eq!(got.status, Some(0), "bake build failed:\n{got}");
    let data = std::fs::read(&img).unwrap();
    // Cut into the payload at the end (the app), keeping the kernel part whole.
    let cut = dir.join("cut.img");
    std::fs::write(&cut, &data[..data.len() - 4096]).unwrap();
    let got = bake_cmd(&["run", s(&cut)]);
    assert_bake_error(&got, 126, &[]);
}

#[test]
fn machine_pc_boots_hello() {
    let opts = RunOpts {
        machine: Some("pc"),
        ..Default::default()
    };
    cases::HELLO.assert_kiln(Flavour::MuslStatic, &opts);
}

#[test]
fn timeout_is_124() {
    let prog = program("sleep", Flavour::MuslStatic);
    let opts = RunOpts {
        timeout: Some(2),
        ..Default::default()
    };
    let got = run_in_kiln(&prog, &["30"], &opts);
    assert_eq!(
        got.status,
        Some(124),
        "a 30 s sleep with --timeout 2 must exit 124:\n{got}"
    );
    assert!(
        got.elapsed < Duration::from_secs(25),
        "--timeout 2 took {:?}:\n{got}",
        got.elapsed
    );
}

#[test]
fn machine_q35_boots_hello() {
    let opts = RunOpts {
        machine: Some("q35"),
        ..Default::default()
    };
    cases::HELLO.assert_kiln(Flavour::MuslStatic, &opts);
}

/// A successful run says nothing on stderr: bake's and the kernel's chatter is for `-v`.
#[test]
fn run_is_quiet_on_stderr() {
    let prog = program("hello", Flavour::MuslStatic);
    let got = run_in_kiln(&prog, &[], &RunOpts::default());
    assert!(
        got.status == Some(0) && got.stderr.is_empty(),
        "want status 0, empty stderr:\n{got}"
    );
}

/// The app's fd 1 goes to stdout, its fd 2 to stderr, each exactly.
#[test]
fn app_stderr_goes_to_stderr() {
    let prog = program("stderr", Flavour::MuslStatic);
    let got = run_in_kiln(&prog, &[], &RunOpts::default());
    assert!(
        got.status == Some(0) && got.stdout == "to stdout\n" && got.stderr == "to stderr\n",
        "want status 0, stdout \"to stdout\\n\", stderr \"to stderr\\n\":\n{got}"
    );
}

/// A crash is explained on stderr, naming the signal.
#[test]
fn crash_is_reported_on_stderr() {
    let prog = program("null_deref", Flavour::MuslStatic);
    let got = run_in_kiln(&prog, &[], &RunOpts::default());
    assert!(
        got.status == Some(139) && got.stderr.contains("SIGSEGV"),
        "want status 139 and a report naming SIGSEGV on stderr:\n{got}"
    );
}

/// `--mem` is honoured: malloc_stress (32 MiB calloc) still fits in 64 MiB.
#[test]
fn mem_64m_runs_malloc_stress() {
    let prog = program("malloc_stress", Flavour::MuslStatic);
    let mut cmd = vec!["run", "--mem", "64M", "--timeout", "60"];
    let p = s(&prog).to_string();
    cmd.push(&p);
    let got = bake_cmd(&cmd);
    if let Err(e) = cases::MALLOC.check(&got, got.status) {
        panic!("{e}");
    }
}

/// `bake run PROG < FILE` and `... | bake run PROG`: the app reads bake's stdin to its end,
/// byte for byte (0xFF and NUL included: the serial framing escapes them).
#[test]
fn piped_stdin_reaches_the_app() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let prog = kiln_tests::program("stdin_copy", kiln_tests::Flavour::MuslStatic);
    let data: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).chain([0xFF, 0xFF, 0x00, 0xFF]).collect();
    let dir = kiln_tests::scratch_dir("piped-stdin");
    let file = dir.join("input.bin");
    std::fs::write(&file, &data).unwrap();
    // From a file.
    let out = Command::new(kiln_tests::bake())
        .args(["run", "--timeout", "120"])
        .arg(&prog)
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("bake");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(out.stdout == data, "stdout differs: {} bytes of {}; {err}", out.stdout.len(), data.len());
    assert!(err.contains(&format!("stdin: {} bytes, end 0, isatty 0", data.len())), "{err}");
    // From a pipe written in two parts with a pause: the app waits for the rest.
    let mut child = Command::new(kiln_tests::bake())
        .args(["run", "--timeout", "120"])
        .arg(&prog)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bake");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"first ").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stdin.write_all(b"second\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().expect("bake");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first second\n", "{}", String::from_utf8_lossy(&out.stderr));
    // /dev/null: end-of-file at once, as before.
    let out = Command::new(kiln_tests::bake()).args(["run", "--timeout", "60"]).arg(&prog).stdin(Stdio::null()).output().expect("bake");
    assert!(String::from_utf8_lossy(&out.stderr).contains("stdin: 0 bytes, end 0"), "{out:?}");
}

//! Test support for Kiln's end-to-end tests: build the C programs in `tests/c/` as real static
//! Linux binaries, find (or build) `bake`, run programs natively and under Kiln, and compare
//! what came out with what each program is known to print.
//!
//! Everything here runs on the host. The tests that use it live in `tests/tests/`:
//! - `native.rs`: the test programs themselves, run on the host kernel (no Kiln involved), so a
//!   broken test program is never mistaken for a broken kernel;
//! - `programs.rs`: every program baked and booted under QEMU, per C library flavour;
//! - `cli.rs`: bake's contract: exit codes, error messages, images, inspect, reproducibility;
//! - `process.rs`: threads, signals, timers and memory mapping (C in three flavours, Go, Rust
//!   std and tokio), natively and under Kiln;
//! - `volumes.rs`: persistent volumes (virtio-blk, FAT32) across boots and on the host.
//!
//! Missing tools (QEMU, musl-gcc, gcc) make tests fail, never skip: the message names the
//! setup script.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

/// How long `bake run` may let the guest run in the tests (`--timeout`). TCG on a loaded
/// 2-core machine is slow; the programs themselves need well under a second.
pub const GUEST_TIMEOUT_SECS: u64 = 60;

/// Our own watchdog on the bake process, beyond `--timeout`, so a hung bake fails the test
/// instead of hanging the run.
const WATCHDOG: Duration = Duration::from_secs(GUEST_TIMEOUT_SECS + 60);

const SETUP_HINT: &str = "run scripts/test.sh (see README.md), which installs qemu-system-x86, \
                          musl-tools, gcc and golang-go when they are missing";

/// Where Debian's musl-tools keeps musl's start files.
const MUSL_LIB: &str = "/usr/lib/x86_64-linux-musl";

/// The repository root (the Cargo workspace).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Cargo's target directory for this test run: `CARGO_TARGET_DIR` if set, otherwise derived
/// from the path of the running test binary (`<target>/<profile>/deps/<test>`), otherwise
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        let dir = PathBuf::from(dir);
        return if dir.is_absolute() {
            dir
        } else {
            workspace_root().join(dir)
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent();
        while let Some(d) = dir {
            if d.file_name().is_some_and(|n| n == "deps")
                && let Some(t) = d.parent().and_then(Path::parent)
            {
                return t.to_path_buf();
            }
            dir = d.parent();
        }
    }
    workspace_root().join("target")
}

fn have_tool(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(name).is_file()))
}

/// Fails the calling test unless every named tool is on PATH.
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have_tool(t)).collect();
    assert!(
        missing.is_empty(),
        "missing tools: {}; {SETUP_HINT}",
        missing.join(", ")
    );
}

/// How a test program is compiled and linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavour {
    /// `musl-gcc -static`: ET_EXEC at a fixed address.
    MuslStatic,
    /// musl static-PIE by hand (rcrt1.o): ET_DYN without PT_INTERP, relocates itself.
    MuslStaticPie,
    /// `gcc -static` with glibc: ET_EXEC, IFUNCs, TLS, more startup syscalls.
    GlibcStatic,
}

impl Flavour {
    pub const ALL: [Flavour; 3] = [
        Flavour::MuslStatic,
        Flavour::MuslStaticPie,
        Flavour::GlibcStatic,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Flavour::MuslStatic => "musl-static",
            Flavour::MuslStaticPie => "musl-static-pie",
            Flavour::GlibcStatic => "glibc-static",
        }
    }

    fn tools(self) -> &'static [&'static str] {
        match self {
            Flavour::MuslStatic | Flavour::MuslStaticPie => &["musl-gcc", "gcc"],
            Flavour::GlibcStatic => &["gcc"],
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `gcc -print-file-name=NAME`: where gcc keeps crtbeginS.o and friends.
fn gcc_file(name: &str) -> String {
    let out = Command::new("gcc")
        .arg(format!("-print-file-name={name}"))
        .output()
        .unwrap_or_else(|e| panic!("running gcc: {e}; {SETUP_HINT}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn compile_command(flavour: Flavour, src: &Path, out: &Path) -> Command {
    let mut cmd;
    match flavour {
        Flavour::MuslStatic => {
            cmd = Command::new("musl-gcc");
            cmd.args(["-static", "-O2"]);
            cmd.arg(src);
        }
        Flavour::MuslStaticPie => {
            // Debian's `musl-gcc -static-pie` quietly makes a dynamic PIE, so the start files
            // are named by hand: rcrt1.o relocates the program itself.
            let m = Path::new(MUSL_LIB);
            cmd = Command::new("musl-gcc");
            cmd.args(["-O2", "-fPIE", "-static-pie", "-nostartfiles"]);
            cmd.arg(m.join("rcrt1.o"))
                .arg(m.join("crti.o"))
                .arg(gcc_file("crtbeginS.o"));
            cmd.arg(src);
            cmd.arg(gcc_file("crtendS.o")).arg(m.join("crtn.o"));
            cmd.args(["-Wl,-static", "-Wl,--no-dynamic-linker"]);
        }
        Flavour::GlibcStatic => {
            cmd = Command::new("gcc");
            cmd.args(["-static", "-O2"]);
            cmd.arg(src);
        }
    }
    cmd.args(["-Wall", "-lm", "-o"]).arg(out);
    cmd
}

/// Runs a compiler command; panics with its output if it fails.
fn run_compiler(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run compiler for {what}: {e}; {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "compiling {what} failed ({}):\n{cmd:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn out_dir() -> PathBuf {
    target_dir().join("kiln-tests")
}

/// Compiles `tests/c/<name>.c` with `cmd` into `<target>/kiln-tests/<sub>/<name>`, via a
/// temporary file and a rename, so parallel test binaries never see a half-written program.
fn compile_to(name: &str, sub: &str, make: impl FnOnce(&Path, &Path) -> Command) -> PathBuf {
    let src = workspace_root().join("tests/c").join(format!("{name}.c"));
    assert!(src.is_file(), "no test program {}", src.display());
    let dir = out_dir().join(sub);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    let dest = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    run_compiler(make(&src, &tmp), &format!("{name} ({sub})"));
    std::fs::rename(&tmp, &dest).unwrap_or_else(|e| panic!("rename to {}: {e}", dest.display()));
    dest
}

type Memo = Mutex<HashMap<(String, String), Arc<OnceLock<PathBuf>>>>;

/// Once per test process and key: later calls get the same path.
fn memoized(key: (String, String), init: impl FnOnce() -> PathBuf) -> PathBuf {
    static MEMO: OnceLock<Memo> = OnceLock::new();
    let cell = {
        let mut map = MEMO
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_default().clone()
    };
    cell.get_or_init(init).clone()
}

/// The test program `tests/c/<name>.c` built as `flavour`, checked to be what the flavour
/// promises (static ET_EXEC, or static-PIE ET_DYN without an interpreter).
pub fn program(name: &str, flavour: Flavour) -> PathBuf {
    require_tools(flavour.tools());
    memoized((name.to_string(), flavour.name().to_string()), || {
        let path = compile_to(name, flavour.name(), |src, out| {
            compile_command(flavour, src, out)
        });
        let info = ElfInfo::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let want_type = match flavour {
            Flavour::MuslStatic | Flavour::GlibcStatic => ET_EXEC,
            Flavour::MuslStaticPie => ET_DYN,
        };
        assert_eq!(
            info.e_type, want_type,
            "{name} ({flavour}): wrong ELF type: {info:?}"
        );
        assert!(
            info.interp.is_none(),
            "{name} ({flavour}) is dynamically linked: {info:?}"
        );
        if flavour == Flavour::MuslStaticPie {
            assert!(
                info.has_dynamic,
                "{name} ({flavour}): static-PIE without PT_DYNAMIC: {info:?}"
            );
        }
        path
    })
}

/// `tests/c/<name>.c` linked dynamically against glibc (an image bake must refuse).
pub fn dynamic_program(name: &str) -> PathBuf {
    require_tools(&["gcc"]);
    memoized((name.to_string(), "glibc-dynamic".to_string()), || {
        let path = compile_to(name, "glibc-dynamic", |src, out| {
            let mut cmd = Command::new("gcc");
            cmd.arg("-O2").arg(src).arg("-o").arg(out);
            cmd
        });
        let info = ElfInfo::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(info.interp.is_some(), "gcc made a static program? {info:?}");
        path
    })
}

pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;

/// The few facts about an ELF file the tests care about.
#[derive(Debug, Clone)]
pub struct ElfInfo {
    pub e_type: u16,
    pub entry: u64,
    pub interp: Option<String>,
    pub has_dynamic: bool,
}

impl ElfInfo {
    /// Reads an x86_64 little-endian ELF64 header and program headers, checking every length.
    pub fn read(path: &Path) -> Result<ElfInfo, String> {
        let data = std::fs::read(path).map_err(|e| e.to_string())?;
        Self::parse(&data)
    }

    pub fn parse(data: &[u8]) -> Result<ElfInfo, String> {
        let bytes = |off: usize, len: usize| -> Result<&[u8], String> {
            data.get(off..off.checked_add(len).ok_or("overflow")?)
                .ok_or_else(|| format!("truncated at {off}+{len} (file is {} bytes)", data.len()))
        };
        let u16_at = |off| bytes(off, 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        let u32_at = |off| bytes(off, 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
        let u64_at = |off| bytes(off, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
        if bytes(0, 4)? != b"\x7fELF" {
            return Err("not an ELF file".into());
        }
        if bytes(4, 2)? != [2, 1] {
            return Err("not ELF64 little-endian".into());
        }
        let e_type = u16_at(16)?;
        let entry = u64_at(24)?;
        let phoff = usize::try_from(u64_at(32)?).map_err(|e| e.to_string())?;
        let phentsize = usize::from(u16_at(54)?);
        let phnum = usize::from(u16_at(56)?);
        let mut interp = None;
        let mut has_dynamic = false;
        for i in 0..phnum {
            let ph = phoff + i * phentsize;
            match u32_at(ph)? {
                PT_INTERP => {
                    let off = usize::try_from(u64_at(ph + 8)?).map_err(|e| e.to_string())?;
                    let len = usize::try_from(u64_at(ph + 32)?).map_err(|e| e.to_string())?;
                    let raw = bytes(off, len)?;
                    let raw = raw.split(|&b| b == 0).next().unwrap_or(raw);
                    interp = Some(String::from_utf8_lossy(raw).into_owned());
                }
                PT_DYNAMIC => has_dynamic = true,
                _ => {}
            }
        }
        Ok(ElfInfo {
            e_type,
            entry,
            interp,
            has_dynamic,
        })
    }
}

/// What a finished process left behind.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The command line, for messages.
    pub command: String,
    /// Exit status; `None` if killed by a signal or by our watchdog.
    pub status: Option<i32>,
    /// The signal that killed it, if any (a native crash).
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl Outcome {
    /// The status as a shell reports it: 128 + signal for a process killed by a signal.
    pub fn shell_status(&self) -> Option<i32> {
        self.status.or(self.signal.map(|s| 128 + s))
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  command: {}", self.command)?;
        writeln!(
            f,
            "  status:  {:?}{}{} after {:.1?}",
            self.status,
            self.signal
                .map(|s| format!(" (signal {s})"))
                .unwrap_or_default(),
            if self.timed_out {
                " (killed by the test watchdog)"
            } else {
                ""
            },
            self.elapsed
        )?;
        writeln!(f, "  stdout:  {:?}", self.stdout)?;
        write!(f, "  stderr:  {:?}", self.stderr)
    }
}

fn spawn_reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Runs `cmd` with stdin closed, collecting stdout and stderr, killing it after `limit`.
pub fn run_command(mut cmd: Command, limit: Duration) -> Outcome {
    let command = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let out = spawn_reader(child.stdout.take().expect("piped stdout"));
    let err = spawn_reader(child.stderr.take().expect("piped stderr"));
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    use std::os::unix::process::ExitStatusExt;
    Outcome {
        command,
        status: status.code(),
        signal: status.signal(),
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        elapsed,
        timed_out,
    }
}

/// Runs a test program directly on the host.
pub fn run_native(prog: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(prog);
    cmd.args(args).env_remove("KILN_TEST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_command(cmd, Duration::from_secs(60))
}

/// The `bake` binary: `$KILN_BAKE`, else `<target>/release/bake`, built once with
/// `cargo build --release -p bake` if it is missing. Parallel test processes may both start
/// that build; cargo's lock on the target directory serializes them.
pub fn bake() -> PathBuf {
    if let Some(p) = std::env::var_os("KILN_BAKE") {
        return PathBuf::from(p);
    }
    let path = target_dir().join("release").join("bake");
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        if path.is_file() {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--release", "-p", "bake", "--target-dir"])
            .arg(target_dir())
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build bake: {e}"));
        assert!(
            status.success(),
            "cargo build --release -p bake failed: {status}"
        );
    });
    assert!(
        path.is_file(),
        "no bake at {} after building it",
        path.display()
    );
    path
}

/// Runs `bake ARGS...` (fails the test if QEMU is missing, since bake would only say 125).
pub fn bake_cmd(args: &[&str]) -> Outcome {
    require_tools(&["qemu-system-x86_64"]);
    let mut cmd = Command::new(bake());
    cmd.args(args);
    run_command(cmd, WATCHDOG)
}

/// Options for one `bake run`.
#[derive(Default, Clone)]
pub struct RunOpts<'a> {
    /// `--machine`; bake's default (microvm) if `None`.
    pub machine: Option<&'a str>,
    /// `--timeout`; [`GUEST_TIMEOUT_SECS`] if `None`.
    pub timeout: Option<u64>,
    /// `-e K=V` pairs.
    pub env: Vec<(&'a str, &'a str)>,
}

/// `bake run --timeout 60 [OPTS] PROG -- ARGS...`
pub fn run_in_kiln(prog: &Path, args: &[&str], opts: &RunOpts<'_>) -> Outcome {
    let timeout = opts.timeout.unwrap_or(GUEST_TIMEOUT_SECS).to_string();
    let mut argv: Vec<String> = vec!["run".into(), "--timeout".into(), timeout];
    if let Some(m) = opts.machine {
        argv.extend(["--machine".into(), m.into()]);
    }
    for (k, v) in &opts.env {
        argv.extend(["-e".into(), format!("{k}={v}")]);
    }
    argv.push(prog.display().to_string());
    argv.push("--".into());
    argv.extend(args.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    bake_cmd(&refs)
}

/// What a program's stdout must look like.
#[derive(Clone, Copy)]
pub enum Expect {
    /// Byte for byte.
    Exact(&'static str),
    /// A check that returns what is wrong.
    Check(fn(&str) -> Result<(), String>),
    /// What `args_env` prints for the case's arguments and environment; argv[0] may be
    /// anything non-empty.
    ArgsEnv,
}

/// One test program run: name, arguments, environment, stdout, exit status.
#[derive(Clone, Copy)]
pub struct Case {
    pub prog: &'static str,
    pub args: &'static [&'static str],
    pub env: &'static [(&'static str, &'static str)],
    pub stdout: Expect,
    pub status: i32,
}

impl Case {
    fn describe(&self) -> String {
        format!("{} {:?} env {:?}", self.prog, self.args, self.env)
    }

    fn check_args_env(&self, out: &str) -> Result<(), String> {
        let lines: Vec<&str> = out.split_inclusive('\n').collect();
        let want_argc = format!("argc={}\n", self.args.len() + 1);
        if lines.first() != Some(&want_argc.as_str()) {
            return Err(format!("first line must be {want_argc:?}"));
        }
        match lines.get(1) {
            Some(l) if l.starts_with("argv[0]=") && l.len() > "argv[0]=\n".len() => {}
            _ => return Err("second line must be a non-empty argv[0]".into()),
        }
        let mut want: Vec<String> = self
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| format!("argv[{}]={a}\n", i + 1))
            .collect();
        let value = self
            .env
            .iter()
            .find(|(k, _)| *k == "KILN_TEST")
            .map_or("(unset)", |kv| kv.1);
        want.push(format!("KILN_TEST={value}\n"));
        if lines[2..] != want {
            return Err(format!("lines after argv[0] must be {want:?}"));
        }
        Ok(())
    }

    /// Checks an outcome against this case; `Err` is a message saying precisely what differs.
    pub fn check(&self, got: &Outcome, status: Option<i32>) -> Result<(), String> {
        let mut problems = Vec::new();
        if status != Some(self.status) {
            problems.push(format!(
                "expected exit status {}, got {:?}",
                self.status, status
            ));
        }
        let stdout = got.stdout.as_str();
        match self.stdout {
            Expect::Exact(want) => {
                if stdout != want {
                    problems.push(format!(
                        "expected stdout {want:?}\n    actual stdout {stdout:?}"
                    ));
                }
            }
            Expect::ArgsEnv => {
                if let Err(e) = self.check_args_env(stdout) {
                    problems.push(format!("{e}\n    actual stdout {stdout:?}"));
                }
            }
            Expect::Check(f) => {
                if let Err(e) = f(stdout) {
                    problems.push(format!(
                        "stdout check failed: {e}\n    actual stdout {stdout:?}"
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}:\n  {}\n{got}",
                self.describe(),
                problems.join("\n  ")
            ))
        }
    }

    /// Runs the case natively on the host and checks it (validates the test program).
    pub fn assert_native(&self, flavour: Flavour) {
        let prog = program(self.prog, flavour);
        let got = run_native(&prog, self.args, self.env);
        if let Err(e) = self.check(&got, got.shell_status()) {
            panic!("[native, {flavour}] {e}");
        }
    }

    /// Bakes and boots the case under Kiln and checks it.
    pub fn assert_kiln(&self, flavour: Flavour, opts: &RunOpts<'_>) {
        let prog = program(self.prog, flavour);
        let mut opts = opts.clone();
        opts.env.extend_from_slice(self.env);
        let got = run_in_kiln(&prog, self.args, &opts);
        if let Err(e) = self.check(&got, got.status) {
            panic!("[kiln, {flavour}] {e}");
        }
    }

    /// Runs the case natively with an already built program (Go, Rust): `label` names it.
    pub fn assert_native_path(&self, prog: &Path, label: &str) {
        let got = run_native(prog, self.args, self.env);
        if let Err(e) = self.check(&got, got.shell_status()) {
            panic!("[native, {label}] {e}");
        }
    }

    /// Bakes and boots an already built program (Go, Rust) under Kiln and checks it.
    pub fn assert_kiln_path(&self, prog: &Path, label: &str, opts: &RunOpts<'_>) {
        let mut opts = opts.clone();
        opts.env.extend_from_slice(self.env);
        let got = run_in_kiln(prog, self.args, &opts);
        if let Err(e) = self.check(&got, got.status) {
            panic!("[kiln, {label}] {e}");
        }
    }
}

fn check_uname(out: &str) -> Result<(), String> {
    let lines: Vec<&str> = out.lines().collect();
    if lines.len() != 3 || lines[0] != "sysname=Linux" || lines[1] != "machine=x86_64" {
        return Err("want sysname=Linux, machine=x86_64, release=...".into());
    }
    match lines[2].strip_prefix("release=") {
        Some(r) if r.chars().next().is_some_and(|c| c.is_ascii_digit()) => Ok(()),
        _ => Err("release must start with a digit (programs parse it as a version)".into()),
    }
}

fn check_getpid(out: &str) -> Result<(), String> {
    let field = |name: &str| -> Result<f64, String> {
        out.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .ok_or_else(|| format!("no {name}= line"))?
            .parse::<f64>()
            .map_err(|e| format!("{name}: {e}"))
    };
    for name in ["getpid_ns", "clock_gettime_ns"] {
        let v = field(name)?;
        if !(v > 0.0 && v < 1e7) {
            return Err(format!("{name}={v} is not a plausible cost"));
        }
    }
    if !out.contains(" calls=1000\n") {
        return Err("want calls=1000".into());
    }
    Ok(())
}

fn check_big_output(out: &str) -> Result<(), String> {
    let mut sum: u64 = 0;
    let mut lines = out.lines();
    for i in 0..2000u64 {
        sum += i * i;
        let want = format!("line {i:04} {sum}");
        match lines.next() {
            Some(l) if l == want => {}
            other => return Err(format!("line {i}: want {want:?}, got {other:?}")),
        }
    }
    if lines.next() != Some("done") || lines.next().is_some() || !out.ends_with('\n') {
        return Err("want a final \"done\" line and nothing after it".into());
    }
    Ok(())
}

/// Every well-behaved program run, with its known output. The same table drives the native
/// checks and the Kiln runs.
pub mod cases {
    use super::*;

    pub const HELLO: Case = Case {
        prog: "hello",
        args: &[],
        env: &[],
        stdout: Expect::Exact("hello from kiln\n"),
        status: 0,
    };
    pub const ARGS_ENV: Case = Case {
        prog: "args_env",
        args: &["one", "two"],
        env: &[("KILN_TEST", "value")],
        stdout: Expect::ArgsEnv,
        status: 0,
    };
    pub const ARGS_NONE: Case = Case {
        prog: "args_env",
        args: &[],
        env: &[],
        stdout: Expect::ArgsEnv,
        status: 0,
    };
    /// Arguments and values that a naive kernel-command-line encoding would mangle.
    pub const ARGS_TRICKY: Case = Case {
        prog: "args_env",
        args: &[
            "two words",
            "",
            "tab\there",
            "quote\"s",
            "--",
            "-e",
            "x=y",
            "ünï",
        ],
        env: &[("KILN_TEST", "a b=c \"d\"")],
        stdout: Expect::ArgsEnv,
        status: 0,
    };
    pub const fn exit_code(arg: &'static [&'static str], status: i32) -> Case {
        Case {
            prog: "exit_code",
            args: arg,
            env: &[],
            stdout: Expect::Exact(""),
            status,
        }
    }
    pub const EXIT_CODES: [Case; 5] = [
        exit_code(&["0"], 0),
        exit_code(&["1"], 1),
        exit_code(&["42"], 42),
        exit_code(&["200"], 200),
        exit_code(&["256"], 0),
    ];
    pub const MALLOC: Case = Case {
        prog: "malloc_stress",
        args: &[],
        env: &[],
        stdout: Expect::Exact(
            "allocs=272 reallocs=90 frees=272\nchecksum=afe4a602c38dd98c\nmalloc ok\n",
        ),
        status: 0,
    };
    pub const FLOAT: Case = Case {
        prog: "float_printf",
        args: &[],
        env: &[],
        stdout: Expect::Exact(
            "3.141593 1.235e+04 0.0001\n\
             sqrt(2)=1.414213562373\n\
             sin(1)=0.841470984808\n\
             exp(1)=2.718281828459\n\
             log(10)=2.302585092994\n\
             pow(2,0.5)=1.414213562373\n\
             float=6.28319\n",
        ),
        status: 0,
    };
    pub const CLOCKS: Case = Case {
        prog: "clocks_sleep",
        args: &[],
        env: &[],
        stdout: Expect::Exact("realtime ok\nslept ok\n"),
        status: 0,
    };
    pub const TLS: Case = Case {
        prog: "tls",
        args: &[],
        env: &[],
        stdout: Expect::Exact("counter=42 first=a last=k\n"),
        status: 0,
    };
    pub const UNAME: Case = Case {
        prog: "uname",
        args: &[],
        env: &[],
        stdout: Expect::Check(check_uname),
        status: 0,
    };
    pub const ENOSYS: Case = Case {
        prog: "enosys",
        args: &[],
        env: &[],
        stdout: Expect::Exact("ret=-1 enosys=1\n"),
        status: 0,
    };
    pub const GETPID: Case = Case {
        prog: "getpid_loop",
        args: &["1000"],
        env: &[],
        stdout: Expect::Check(check_getpid),
        status: 0,
    };
    pub const BIG_OUTPUT: Case = Case {
        prog: "big_output",
        args: &[],
        env: &[],
        stdout: Expect::Check(check_big_output),
        status: 0,
    };

    // Programs that die of a signal: exit status 128 + signal number, as a shell shows it.
    pub const NULL_DEREF: Case = Case {
        prog: "null_deref",
        args: &[],
        env: &[],
        stdout: Expect::Exact("about to write to NULL\n"),
        status: 139,
    };
    pub const WRITE_TEXT: Case = Case {
        prog: "write_text",
        args: &[],
        env: &[],
        stdout: Expect::Exact("about to write to .text\n"),
        status: 139,
    };
    pub const ABORT: Case = Case {
        prog: "abort",
        args: &[],
        env: &[],
        stdout: Expect::Exact("about to abort\n"),
        status: 134,
    };
    pub const DIV_ZERO: Case = Case {
        prog: "div_zero",
        args: &[],
        env: &[],
        stdout: Expect::Exact("about to divide by zero\n"),
        status: 136,
    };
    pub const UD2: Case = Case {
        prog: "ud2",
        args: &[],
        env: &[],
        stdout: Expect::Exact("about to execute ud2\n"),
        status: 132,
    };

    pub const MMAP: Case = Case {
        prog: "mmap_probe",
        args: &[],
        env: &[],
        stdout: Expect::Exact("mmap ok\nmprotect ok\nmunmap+MAP_FIXED ok\nmremap ok\nbrk ok\n"),
        status: 0,
    };
    pub const MMAP_FAULT: Case = Case {
        prog: "mmap_probe",
        args: &["fault"],
        env: &[],
        stdout: Expect::Exact(
            "mmap ok\nmprotect ok\nmunmap+MAP_FIXED ok\nmremap ok\nbrk ok\n\
             touching an unmapped page\n",
        ),
        status: 139,
    };
    pub const EFAULT: Case = Case {
        prog: "efault",
        args: &[],
        env: &[],
        stdout: Expect::Exact(
            "write: ret=-1 efault=1\n\
             write-kernel: ret=-1 efault=1\n\
             clock_gettime: ret=-1 efault=1\n\
             uname: ret=-1 efault=1\n\
             alive\n",
        ),
        status: 0,
    };

    pub const STACK_DEEP: Case = Case {
        prog: "stack_deep",
        args: &[],
        env: &[],
        stdout: Expect::Exact("sum=261120\n"),
        status: 0,
    };

    /// The syscall ABI: GPRs but rax/rcx/r11, the red zone and SSE registers survive syscalls
    /// and sleeps.
    pub const REGS_PRESERVED: Case = Case {
        prog: "regs_preserved",
        args: &[],
        env: &[],
        stdout: Expect::Exact("abi ok\n"),
        status: 0,
    };

    /// All of the above, for the native sanity pass.
    pub fn all() -> Vec<Case> {
        let mut v = vec![
            REGS_PRESERVED,
            HELLO,
            ARGS_ENV,
            ARGS_NONE,
            ARGS_TRICKY,
            MALLOC,
            FLOAT,
            CLOCKS,
            TLS,
            UNAME,
            ENOSYS,
            GETPID,
            BIG_OUTPUT,
            NULL_DEREF,
            WRITE_TEXT,
            ABORT,
            DIV_ZERO,
            UD2,
        ];
        v.extend(EXIT_CODES);
        v
    }
}

/// Runs a build command, panicking with its output when it fails.
fn run_build(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the build of {what}: {e}; {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "building {what} failed ({}):\n{cmd:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Go test program `tests/go` (package main, sub-commands), built once per test process
/// with `CGO_ENABLED=0 go build` into `<target>/kiln-tests/go/goprocs`. Go's build cache lives
/// in `<target>/kiln-tests/go-cache`, so later runs only relink. Checked to be a static ELF.
pub fn go_program() -> PathBuf {
    require_tools(&["go"]);
    memoized(("goprocs".into(), "go".into()), || {
        let dir = out_dir().join("go");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let dest = dir.join("goprocs");
        let tmp = dir.join(format!(".goprocs.{}.tmp", std::process::id()));
        let mut cmd = Command::new("go");
        cmd.current_dir(workspace_root().join("tests/go"))
            .env("CGO_ENABLED", "0")
            .env("GOCACHE", out_dir().join("go-cache"))
            .env("GO111MODULE", "on")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .args(["build", "-o"])
            .arg(&tmp)
            .arg(".");
        run_build(cmd, "tests/go");
        std::fs::rename(&tmp, &dest)
            .unwrap_or_else(|e| panic!("rename to {}: {e}", dest.display()));
        let info = ElfInfo::read(&dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
        assert!(
            info.e_type == ET_EXEC && info.interp.is_none(),
            "goprocs is not a static ET_EXEC: {info:?}"
        );
        dest
    })
}

/// The Rust test program `tests/rust-apps` (std threads, tokio), built once per test process
/// with `cargo build --release --locked --target x86_64-unknown-linux-gnu` and RUSTFLAGS
/// `-C target-feature=+crt-static` (a glibc static-PIE) into `<target>/kiln-tests/rust-apps`,
/// which cargo keeps between runs.
pub fn rust_app() -> PathBuf {
    memoized(("rustprocs".into(), "rust".into()), || {
        let target = out_dir().join("rust-apps");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root().join("tests/rust-apps"))
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .env_remove("CARGO_TARGET_DIR")
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "x86_64-unknown-linux-gnu",
                "--target-dir",
            ])
            .arg(&target);
        run_build(cmd, "tests/rust-apps");
        let dest = target.join("x86_64-unknown-linux-gnu/release/rustprocs");
        let info = ElfInfo::read(&dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
        assert!(
            info.e_type == ET_DYN && info.interp.is_none() && info.has_dynamic,
            "rustprocs is not a static-PIE: {info:?}"
        );
        dest
    })
}

/// A fresh scratch directory under the target dir, for images and bad inputs.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = out_dir()
        .join("scratch")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

/// Asserts that bake failed with `status` and exactly one `bake: error: ...` line on stderr
/// that contains every one of `needles` (case-insensitively).
pub fn assert_bake_error(got: &Outcome, status: i32, needles: &[&str]) {
    let lines: Vec<&str> = got.stderr.lines().collect();
    let mut problems = Vec::new();
    if got.status != Some(status) {
        problems.push(format!(
            "expected exit status {status}, got {:?}",
            got.status
        ));
    }
    if lines.len() != 1 || !lines[0].starts_with("bake: error: ") {
        problems.push("expected exactly one stderr line starting with \"bake: error: \"".into());
    }
    let lower = got.stderr.to_lowercase();
    for n in needles {
        if !lower.contains(&n.to_lowercase()) {
            problems.push(format!("stderr should mention {n:?}"));
        }
    }
    assert!(problems.is_empty(), "{}\n{got}", problems.join("\n"));
}

/// A free TCP port on the host's loopback (bound, then released: good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// A program running in the background (a server in Kiln or natively) while the test talks
/// to it; killed when dropped, so a failing assertion never leaves a VM behind.
pub struct Background {
    child: Option<std::process::Child>,
    command: String,
    start: Instant,
    out: Option<std::thread::JoinHandle<Vec<u8>>>,
    err: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl Background {
    /// Starts `cmd` with stdin closed and its output collected.
    pub fn spawn(mut cmd: Command) -> Background {
        use std::os::unix::process::CommandExt;
        let command = format!("{cmd:?}");
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // Its own process group, so that killing it also kills what it started (bake's QEMU).
        cmd.process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
        let out = spawn_reader(child.stdout.take().expect("piped stdout"));
        let err = spawn_reader(child.stderr.take().expect("piped stderr"));
        Background { child: Some(child), command, start: Instant::now(), out: Some(out), err: Some(err) }
    }

    /// `bake run --timeout SECS [EXTRA...] PROG -- ARGS...` in the background (EXTRA: `-p`,
    /// `--machine`, ...).
    pub fn kiln(prog: &Path, extra: &[&str], args: &[&str], timeout_secs: u64) -> Background {
        require_tools(&["qemu-system-x86_64"]);
        let mut cmd = Command::new(bake());
        cmd.args(["run", "--timeout", &timeout_secs.to_string()]).args(extra).arg(prog).arg("--").args(args);
        Background::spawn(cmd)
    }

    /// The process group it leads (its pid).
    pub fn group(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Whether the program is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Waits for the program to end (killing it after `limit`) and returns what it did.
    pub fn finish(mut self, limit: Duration) -> Outcome {
        let mut child = self.child.take().expect("not finished yet");
        let deadline = Instant::now() + limit;
        let mut timed_out = false;
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                timed_out = true;
                kill_group(&mut child);
                break child.wait().expect("wait after kill");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
            String::from_utf8_lossy(&h.and_then(|h| h.join().ok()).unwrap_or_default()).into_owned()
        };
        Outcome {
            command: self.command.clone(),
            status: status.code(),
            signal: status.signal(),
            stdout: join(self.out.take()),
            stderr: join(self.err.take()),
            elapsed: self.start.elapsed(),
            timed_out,
        }
    }
}

/// SIGKILL to the child's whole process group (it leads one: [`Background::spawn`]).
fn kill_group(child: &mut std::process::Child) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
    let _ = child.kill();
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
            let _ = c.wait();
        }
    }
}

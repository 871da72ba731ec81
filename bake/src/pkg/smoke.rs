//! Smoke tests: boot a package's image with `bake run` (this same bake, as a child process
//! in its own process group) and check it from the host.
//!
//! - `exec`: the program's stdout and exit status;
//! - `tcp`: connect to a free host port forwarded (`-p`) to the guest port, send bytes,
//!   expect bytes in the reply;
//! - `http`: the same with an HTTP/1.0 request, expecting a status (and body text).
//!
//! A server gets connection attempts until the test's deadline, since it takes a while to
//! boot (under TCG, seconds). The VM is stopped as soon as the answer is in.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::recipe::SmokeTest;
use crate::volume::VolumeArg;

/// How to boot the image under test.
pub struct Boot<'a> {
    pub image: &'a Path,
    pub mem: Option<u64>,
    pub volumes: &'a [VolumeArg],
    /// Where the VM's stdout and stderr go.
    pub out_dir: &'a Path,
}

/// Runs one smoke test. `Ok` says what passed; `Err` says what went wrong, with the VM's
/// output.
pub fn run(test: &SmokeTest, boot: &Boot<'_>) -> anyhow::Result<Result<String, String>> {
    let timeout = test.timeout_secs();
    let mut argv: Vec<String> = vec!["run".into(), "--timeout".into(), timeout.to_string()];
    if let Some(m) = boot.mem {
        argv.extend(["--mem".into(), format!("{m}M")]);
    }
    for v in boot.volumes {
        argv.push("--volume".into());
        argv.push(format!(
            "{}:{}{}",
            v.image.display(),
            v.guest,
            if v.read_only { ":ro" } else { "" }
        ));
    }
    match test {
        SmokeTest::Exec {
            args,
            expect_stdout,
            expect_status,
            ..
        } => {
            argv.push(boot.image.display().to_string());
            argv.push("--".into());
            argv.extend(args.iter().cloned());
            let mut vm = Vm::start(&argv, boot.out_dir)?;
            let status = vm.wait(Duration::from_secs(timeout + 30))?;
            let (stdout, stderr) = vm.output();
            let mut problems = Vec::new();
            if status != Some(*expect_status) {
                problems.push(format!("exit status {status:?}, want {expect_status}"));
            }
            if stdout != *expect_stdout {
                problems.push(format!("stdout {stdout:?}, want {expect_stdout:?}"));
            }
            Ok(if problems.is_empty() {
                Ok(test.describe())
            } else {
                Err(format!("{}{}", problems.join("; "), show_stderr(&stderr)))
            })
        }
        SmokeTest::Tcp { port, .. } | SmokeTest::Http { port, .. } => {
            let host_port = free_port()?;
            argv.extend(["-p".into(), format!("{host_port}:{port}")]);
            argv.push(boot.image.display().to_string());
            let mut vm = Vm::start(&argv, boot.out_dir)?;
            let deadline = Instant::now() + Duration::from_secs(timeout);
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, host_port));
            let mut last_error = String::from("no attempt");
            let mut attempts = 0;
            let verdict = loop {
                if let Some(status) = vm.try_status()? {
                    let (_, stderr) = vm.output();
                    break Err(format!(
                        "the VM ended (bake run status {status:?}) before the test passed; last attempt: {last_error}{}",
                        show_stderr(&stderr)
                    ));
                }
                if Instant::now() >= deadline {
                    let (_, stderr) = vm.output();
                    break Err(format!(
                        "no good answer on 127.0.0.1:{host_port} (guest port {port}) in {timeout} s, {attempts} attempts; last: {last_error}{}",
                        show_stderr(&stderr)
                    ));
                }
                attempts += 1;
                match probe(test, addr) {
                    Ok(()) => break Ok(format!("{} (after {attempts} attempts)", test.describe())),
                    Err(e) => last_error = e,
                }
                std::thread::sleep(Duration::from_millis(500));
            };
            vm.stop();
            Ok(verdict)
        }
    }
}

fn show_stderr(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let last = &lines[lines.len().saturating_sub(15)..];
    format!("\n  VM stderr (last lines):\n  | {}", last.join("\n  | "))
}

/// One attempt: connect, talk, check.
fn probe(test: &SmokeTest, addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    match test {
        SmokeTest::Tcp { send, expect, .. } => {
            s.write_all(send.as_bytes())
                .map_err(|e| format!("send: {e}"))?;
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                if contains(&got, expect.as_bytes()) {
                    return Ok(());
                }
                match s.read(&mut buf) {
                    Ok(0) => {
                        return Err(format!(
                            "connection closed after {:?}",
                            String::from_utf8_lossy(&got)
                        ));
                    }
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        return Err(format!(
                            "read: {e} after {:?}",
                            String::from_utf8_lossy(&got)
                        ));
                    }
                }
            }
        }
        SmokeTest::Http {
            method,
            path,
            expect_status,
            expect_body,
            ..
        } => {
            let request = format!(
                "{method} {path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: bake-pkg-test\r\nConnection: close\r\n\r\n"
            );
            s.write_all(request.as_bytes())
                .map_err(|e| format!("send: {e}"))?;
            let mut got = Vec::new();
            if let Err(e) = s.read_to_end(&mut got)
                && got.is_empty()
            {
                return Err(format!("read: {e}"));
            }
            check_http(&got, *expect_status, expect_body.as_deref())
        }
        SmokeTest::Exec { .. } => Err("internal: exec tests do not probe".into()),
    }
}

/// Checks an HTTP response: the status code and, if asked, text in the body.
fn check_http(response: &[u8], status: u16, body: Option<&str>) -> Result<(), String> {
    let text = String::from_utf8_lossy(response);
    let Some(first) = text.lines().next().filter(|l| !l.is_empty()) else {
        return Err("empty response".into());
    };
    let code = first
        .strip_prefix("HTTP/")
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP status line: {first:?}"))?;
    if code != status {
        return Err(format!("status {code} ({first:?}), want {status}"));
    }
    if let Some(want) = body {
        let got = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        if !got.contains(want) {
            return Err(format!("body {got:?} lacks {want:?}"));
        }
    }
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// `bake run ...` as a child in its own process group, so that stopping it stops QEMU too.
struct Vm {
    child: Child,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
    status: Option<Option<i32>>,
}

impl Vm {
    fn start(argv: &[String], out_dir: &Path) -> anyhow::Result<Vm> {
        let exe = std::env::current_exe()?;
        let stdout = out_dir.join("stdout");
        let stderr = out_dir.join("stderr");
        log::debug!("{} {}", exe.display(), argv.join(" "));
        let child = Command::new(exe)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(std::fs::File::create(&stderr)?)
            .process_group(0)
            .spawn()?;
        Ok(Vm {
            child,
            stdout,
            stderr,
            status: None,
        })
    }

    fn try_status(&mut self) -> anyhow::Result<Option<Option<i32>>> {
        if self.status.is_none()
            && let Some(s) = self.child.try_wait()?
        {
            self.status = Some(s.code());
        }
        Ok(self.status)
    }

    fn wait(&mut self, limit: Duration) -> anyhow::Result<Option<i32>> {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_status()? {
                return Ok(s);
            }
            if Instant::now() >= end {
                self.stop();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> (String, String) {
        let read =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        (read(&self.stdout), read(&self.stderr))
    }

    /// Stops bake and its QEMU: SIGTERM to the process group, SIGKILL if that is ignored.
    fn stop(&mut self) {
        if matches!(self.try_status(), Ok(Some(_))) {
            return;
        }
        let group = format!("-{}", self.child.id());
        for signal in ["-TERM", "-KILL"] {
            let sent = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !sent {
                let _ = self.child.kill();
            }
            let end = Instant::now() + Duration::from_secs(5);
            while Instant::now() < end {
                if matches!(self.try_status(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(check_http(ok, 200, None), Ok(()));
        assert_eq!(check_http(ok, 200, Some("ell")), Ok(()));
        assert!(
            check_http(ok, 200, Some("bye"))
                .unwrap_err()
                .contains("lacks")
        );
        assert!(
            check_http(ok, 404, None)
                .unwrap_err()
                .contains("status 200")
        );
        assert!(
            check_http(b"SSH-2.0\r\n", 200, None)
                .unwrap_err()
                .contains("not an HTTP")
        );
        assert!(check_http(b"", 200, None).is_err());
    }

    #[test]
    fn tcp_probe_against_a_local_server() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 6];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"PING\r\n");
            c.write_all(b"+PO").unwrap();
            std::thread::sleep(Duration::from_millis(50));
            c.write_all(b"NG\r\n").unwrap();
        });
        let test = SmokeTest::Tcp {
            port: 1,
            send: "PING\r\n".into(),
            expect: "+PONG".into(),
            timeout: None,
        };
        assert_eq!(probe(&test, addr), Ok(()));
        server.join().unwrap();
    }
}

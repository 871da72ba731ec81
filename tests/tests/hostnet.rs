//! Networking between the host and the guest over virtio-net and QEMU user networking
//! (issue 5): the host reaches servers in the guest through `bake run -p`, and a client in the
//! guest reaches a server on the host at 10.0.2.2.
//!
//! Servers: `tests/c/net_server.c` (TCP echo with a thread per connection, UDP echo, an
//! epoll HTTP server), the Go test program's net/http server and the Rust test program's
//! std TcpListener server. The echo and HTTP cases also run natively (`native_*`), driven by
//! the same host code, so a failure there is a broken test, not Kiln.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_tests::{Background, Flavour, Outcome, free_port, go_program, program, require_tools, rust_app};

/// How long a server gets to come up (boot under TCG included).
const UP: Duration = Duration::from_secs(60);

/// Connects to 127.0.0.1:`port`, retrying until `UP` passes: the guest may still be booting
/// (QEMU accepts on the host port at once and drops the connection while nothing listens).
fn connect_retrying(port: u16, server: &mut Background) -> TcpStream {
    let start = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
            // A connection QEMU accepted while the guest had no listener is closed at once:
            // probe with a zero-length peek for an immediate EOF.
            s.set_nonblocking(true).expect("nonblocking");
            std::thread::sleep(Duration::from_millis(50));
            let mut b = [0u8; 1];
            let dead = matches!(s.peek(&mut b), Ok(0));
            s.set_nonblocking(false).expect("blocking");
            if !dead {
                return s;
            }
        }
        assert!(server.running(), "the server ended before accepting a connection");
        assert!(start.elapsed() < UP, "nothing answered on port {port} within {UP:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A deterministic pattern, different for every connection.
fn pattern(seed: usize, len: usize) -> Vec<u8> {
    let mut x = (seed as u32).wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn server_program() -> std::path::PathBuf {
    program("net_server", Flavour::MuslStatic)
}

fn check_ok(out: &Outcome, stdout_has: &str) {
    assert!(
        out.status == Some(0) && out.stdout.contains(stdout_has),
        "expected status 0 and {stdout_has:?} in stdout\n{out:?}"
    );
}

/// Opens `conns` connections one after another (QEMU's user networking queues only a few
/// unaccepted connections on the host side), keeps them all open, then echoes `per_conn`
/// bytes on each of them at once, every byte checked. Returns the bytes echoed.
fn drive_echo(port: u16, server: &mut Background, conns: usize, per_conn: usize) -> usize {
    let first = connect_retrying(port, server);
    let mut streams = vec![first];
    while streams.len() < conns {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        streams.push(s);
    }
    let workers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            std::thread::spawn(move || {
                let data = pattern(i, per_conn);
                let mut w = s.try_clone().expect("clone");
                let sent = data.clone();
                let writer = std::thread::spawn(move || {
                    for chunk in sent.chunks(4096) {
                        w.write_all(chunk).expect("write");
                    }
                    w.shutdown(std::net::Shutdown::Write).expect("shutdown");
                });
                let mut got = Vec::with_capacity(per_conn);
                s.read_to_end(&mut got).unwrap_or_else(|e| panic!("connection {i}: read after {} bytes: {e}", got.len()));
                writer.join().expect("writer");
                assert_eq!(got.len(), data.len(), "connection {i}: echoed length");
                assert!(got == data, "connection {i}: echoed bytes differ");
                got.len()
            })
        })
        .collect();
    workers.into_iter().map(|w| w.join().expect("connection worker")).sum()
}

fn echo_case(machine: Option<&str>, conns: usize, per_conn: usize) {
    let port = free_port();
    let mut extra = vec!["-p".to_string(), format!("{port}:7000")];
    if let Some(m) = machine {
        extra.extend(["--machine".into(), m.into()]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let n = conns.to_string();
    let mut server = Background::kiln(&server_program(), &extra, &["echo", "7000", &n], 180);
    let bytes = drive_echo(port, &mut server, conns, per_conn);
    let out = server.finish(Duration::from_secs(60));
    check_ok(&out, &format!("echo: connections={conns} bytes={bytes}\n"));
}

#[test]
fn native_echo() {
    let port = free_port();
    let mut cmd = Command::new(server_program());
    cmd.args(["echo", &port.to_string(), "50"]);
    let mut server = Background::spawn(cmd);
    let bytes = drive_echo(port, &mut server, 50, 8192);
    check_ok(&server.finish(Duration::from_secs(30)), &format!("echo: connections=50 bytes={bytes}\n"));
}

#[test]
fn echo_200_connections_microvm() {
    echo_case(None, 200, 8192);
}

#[test]
fn echo_large_transfers_q35() {
    // virtio-pci with MSI-X; 4 connections of 4 MiB each exercise the window and the
    // buffer refills rather than connection setup.
    echo_case(Some("q35"), 4, 4 << 20);
}

#[test]
fn echo_pc() {
    echo_case(Some("pc"), 20, 65536);
}

/// One HTTP/1.1 request on a fresh connection; returns the whole response.
fn http_get(port: u16, path: &str, server: &mut Background) -> String {
    let mut s = connect_retrying(port, server);
    write!(s, "GET {path} HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n").expect("send request");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // The C server keeps connections open: read until the body is complete.
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading the reply to GET {path}: {e}"),
        }
        let text = String::from_utf8_lossy(&reply);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: ").or_else(|| l.strip_prefix("content-length: ")))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|n| body.len() >= n) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&reply).into_owned()
}

/// wrk against the server for `secs` seconds: returns the request count; fails on any socket
/// error or non-2xx answer.
fn wrk(port: u16, conns: u32, secs: u32) -> u64 {
    require_tools(&["wrk"]);
    // --timeout: QEMU's user networking queues few unaccepted connections on the host side,
    // so some of the initial connects wait for the host's SYN retransmission (1 s, then 3 s).
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", &conns.to_string(), "-d", &format!("{secs}s"), "--timeout", "10s"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("Socket errors"), "wrk saw socket errors:\n{text}");
    assert!(!text.contains("Non-2xx"), "wrk saw non-2xx answers:\n{text}");
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ").map(|(n, _)| n.trim().parse::<u64>()))
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{text}"));
    assert!(requests > 0, "wrk made no requests:\n{text}");
    eprintln!("wrk: {}", text.lines().find(|l| l.starts_with("Requests/sec")).unwrap_or(""));
    requests
}

fn http_requests_served(out: &Outcome) -> u64 {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("http: requests="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count from the server\n{out:?}"))
}

fn drive_http(port: u16, server: &mut Background, secs: u32) -> u64 {
    let reply = http_get(port, "/", server);
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n") && reply.ends_with("\r\n\r\nhello, world\n"), "reply: {reply:?}");
    let n = wrk(port, 50, secs);
    let bye = http_get(port, "/exit", server);
    assert!(bye.ends_with("hello, world\n"), "reply to /exit: {bye:?}");
    n
}

#[test]
fn native_http_under_wrk() {
    let port = free_port();
    let mut cmd = Command::new(server_program());
    cmd.args(["http", &port.to_string()]);
    let mut server = Background::spawn(cmd);
    let n = drive_http(port, &mut server, 2);
    let out = server.finish(Duration::from_secs(30));
    assert!(out.status == Some(0) && http_requests_served(&out) >= n + 2, "{out:?}");
}

#[test]
fn http_server_under_wrk_10s() {
    let port = free_port();
    let map = format!("{port}:8080");
    let mut server = Background::kiln(&server_program(), &["-p", &map], &["http", "8080"], 180);
    let n = drive_http(port, &mut server, 10);
    let out = server.finish(Duration::from_secs(60));
    assert!(out.status == Some(0), "{out:?}");
    assert!(http_requests_served(&out) >= n + 2, "the server counted fewer requests than wrk made ({n})\n{out:?}");
}

#[test]
fn udp_round_trips_from_host() {
    let port = free_port();
    let map = format!("{port}:5000/udp");
    let mut server = Background::kiln(&server_program(), &["-p", &map], &["udpecho", "5000", "0"], 180);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(1000))).expect("timeout");
    let start = Instant::now();
    let mut sent = 0;
    for i in 0..100 {
        // Every datagram carries its number, so a late answer to an earlier try is told apart.
        let mut msg = (i as u32).to_le_bytes().to_vec();
        msg.extend(pattern(i, 64 + i * 13));
        let mut tries = 0;
        loop {
            sock.send(&msg).expect("send");
            sent += 1;
            tries += 1;
            let mut buf = [0u8; 2048];
            let answered = loop {
                match sock.recv(&mut buf) {
                    Ok(n) if buf[..4] == msg[..4] => {
                        assert_eq!(&buf[..n], &msg[..], "datagram {i} came back different");
                        break true;
                    }
                    Ok(_) => continue, // a late duplicate of an earlier datagram
                    Err(_) => break false,
                }
            };
            if answered {
                break;
            }
            // Datagrams sent before the guest bound its socket are lost, as UDP allows; later
            // a loaded machine may delay an answer past the timeout, so try again a few times.
            assert!(server.running() && start.elapsed() < UP * 2 && (i == 0 || tries < 5), "datagram {i} got no answer after {tries} tries");
        }
    }
    sock.send(b"quit").expect("send quit");
    let out = server.finish(Duration::from_secs(60));
    assert_eq!(out.status, Some(0), "{out:?}");
    let echoed: usize = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("udpecho: datagrams="))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count from the guest\n{out:?}"));
    // The guest answered every datagram it received: at least the 100 the host saw answered,
    // at most every one the host sent.
    assert!((100..=sent).contains(&echoed), "guest echoed {echoed}, host sent {sent}\n{out:?}");
}

/// A client in the guest connects to a server on the host: at `guest_addr` (QEMU's user
/// networking maps it to the host's `host_addr`) and reads its answer.
fn guest_client_reaches(host_addr: &str, guest_addr: &str) {
    let listener = TcpListener::bind((host_addr, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let host = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().expect("accept");
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while c.read(&mut b).expect("read") == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        c.write_all(b"pong from the host\n").expect("write");
        String::from_utf8_lossy(&line).into_owned()
    });
    let p = port.to_string();
    let out = Background::kiln(&server_program(), &["--net", "user"], &["client", guest_addr, &p], 120).finish(Duration::from_secs(130));
    check_ok(&out, "client: reply pong from the host\n");
    assert_eq!(host.join().expect("host server"), "ping from the guest");
}

#[test]
fn guest_client_reaches_host_server() {
    guest_client_reaches("127.0.0.1", "10.0.2.2");
}

#[test]
fn guest_client_reaches_host_server_ipv6() {
    // The guest has fec0::15/64 on its Ethernet interface; fec0::2 is the host.
    guest_client_reaches("::1", "fec0::2");
}

/// `curl` against a server in the guest: the body of `GET /path`.
fn curl(port: u16, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--retry", "30", "--retry-connrefused", "--retry-delay", "1", "--retry-all-errors"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {path} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn http_app_answers_curl(prog: &Path, greeting: &str) {
    require_tools(&["curl"]);
    let port = free_port();
    let map = format!("{port}:8080");
    let server = Background::kiln(prog, &["-p", &map], &["httpserve", "8080"], 180);
    assert_eq!(curl(port, "/hello"), format!("{greeting}: GET /hello\n"));
    for i in 0..20 {
        assert_eq!(curl(port, &format!("/n/{i}")), format!("{greeting}: GET /n/{i}\n"));
    }
    assert_eq!(curl(port, "/exit"), "bye\n");
    let out = server.finish(Duration::from_secs(60));
    check_ok(&out, "httpserve: done\n");
}

#[test]
fn go_net_http_server_answers_curl() {
    http_app_answers_curl(&go_program(), "hello from go");
}

#[test]
fn rust_tcplistener_server_answers_curl() {
    http_app_answers_curl(&rust_app(), "hello from rust");
}

#[test]
fn dhcp_lease_names_the_dns_server_in_resolv_conf() {
    let prog = program("dns_resolve", Flavour::MuslStatic);
    let out = Background::kiln(&prog, &["--net", "user"], &["conf"], 120).finish(Duration::from_secs(130));
    assert!(out.status == Some(0) && out.stdout == "nameserver 10.0.2.3\n", "{out:?}");
}

#[test]
fn a_dropped_server_takes_its_qemu_along() {
    // The test helper kills bake's whole process group: no QEMU outlives a failed test.
    let port = free_port();
    let map = format!("{port}:7000");
    let mut server = Background::kiln(&server_program(), &["-p", &map], &["echo", "7000", "2"], 120);
    drop(connect_retrying(port, &mut server));
    let group = server.group().expect("running");
    let members = || Command::new("pgrep").args(["-g", &group.to_string()]).output().expect("pgrep").stdout;
    assert!(!members().is_empty(), "bake and QEMU run in the group");
    drop(server);
    let start = Instant::now();
    while !members().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "processes left in group {group}: {}", String::from_utf8_lossy(&members()));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_terminated_bake_stops_its_vm_and_frees_the_port() {
    // SIGTERM to bake alone (not its group, as `kill PID` or a process manager sends it):
    // bake kills QEMU, exits with 128+15, and the -p host port is free again.
    let port = free_port();
    let map = format!("{port}:7000");
    let mut server = Background::kiln(&server_program(), &["-p", &map], &["echo", "7000", "2"], 120);
    drop(connect_retrying(port, &mut server));
    let group = server.group().expect("running");
    let status = Command::new("kill").args(["-TERM", &group.to_string()]).status().expect("kill");
    assert!(status.success());
    let out = server.finish(Duration::from_secs(20));
    assert!(!out.timed_out, "bake did not stop on SIGTERM: {out:?}");
    assert_eq!(out.status, Some(143), "{out:?}");
    assert!(out.stderr.contains("stopped by signal 15"), "{out:?}");
    let members = Command::new("pgrep").args(["-g", &group.to_string()]).output().expect("pgrep").stdout;
    assert!(members.is_empty(), "QEMU outlived bake: {}", String::from_utf8_lossy(&members));
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("the host port is free again");
}

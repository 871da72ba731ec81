//! `-p HOST:GUEST` for TCP on QEMU user networking: bake listens on the host port itself and
//! relays each connection to QEMU.
//!
//! QEMU's user networking (libslirp 4.7) listens on a `hostfwd` port with a backlog of 1, so
//! when many clients connect at once (redis-benchmark -c 50, wrk -c 100) the host kernel's
//! accept queue overflows, their handshakes are dropped and retried with backoff, and some
//! never get through. bake's own listener has a full backlog; it hands the connections to QEMU
//! one at a time on a private `hostfwd` port (127.0.0.1, picked free at start), each once
//! QEMU has taken the previous one (its accept queue, read from /proc/net/tcp, is empty), so
//! QEMU's queue never overflows; then bytes are copied both ways. A half close is passed on,
//! so `shutdown(SHUT_WR)` works end to end; a reset ends both sides.
//!
//! Clients that connect before the app listens wait in bake's queue instead of being reset:
//! the kernel announces each TCP port the app starts listening on (`KILN-LISTEN tcp PORT` on
//! the log channel, [`GuestPorts`]), and a port's connections go to QEMU only from then on.
//!
//! UDP ports go to QEMU's `hostfwd` directly (no accept queue there).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::Fail;
use crate::exit_codes;

/// A stack big enough for the relay's copy buffer and std's formatting.
const RELAY_STACK: usize = 128 * 1024;
/// How long a connection waits for QEMU to take it before it is dropped (QEMU starting up
/// or gone).
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

/// The guest ports the app listens on, as the kernel announced them.
#[derive(Clone, Default)]
pub struct GuestPorts(Arc<(Mutex<HashSet<u16>>, Condvar)>);

impl GuestPorts {
    /// The app listens on `port`.
    pub fn announce(&self, port: u16) {
        let (ports, changed) = &*self.0;
        ports.lock().unwrap_or_else(|e| e.into_inner()).insert(port);
        changed.notify_all();
    }

    /// Waits until the app listens on `port`; false if `stop` was set first.
    fn wait_for(&self, port: u16, stop: &AtomicBool) -> bool {
        let (ports, changed) = &*self.0;
        let mut ports = ports.lock().unwrap_or_else(|e| e.into_inner());
        while !ports.contains(&port) {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            ports = changed
                .wait_timeout(ports, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// One forwarded TCP port: bake's listener on the host port, QEMU's on `qemu_port`, relayed
/// once the app listens on `guest_port`.
pub struct Forward {
    listener: TcpListener,
    /// The private port QEMU's `hostfwd` listens on (127.0.0.1).
    pub qemu_port: u16,
    guest_port: u16,
}

impl Forward {
    /// Takes the host port (before QEMU starts, so that a port in use is reported as such) and
    /// picks a free private port for QEMU.
    pub fn bind(host_port: u16, guest_port: u16) -> anyhow::Result<Forward> {
        let listener = TcpListener::bind(("127.0.0.1", host_port)).map_err(|e| {
            Fail::new(
                exit_codes::KILN_FAILED,
                format!("cannot listen on 127.0.0.1:{host_port} for -p: {e}"),
                if e.kind() == io::ErrorKind::AddrInUse {
                    "another program has that port: stop it or choose another HOST_PORT"
                } else {
                    "choose another HOST_PORT"
                },
            )
        })?;
        // Bound and released at once: QEMU binds it a moment later. Ports are handed out
        // in rotation, so another program is unlikely to take it in between; if one does,
        // QEMU fails to start and says so.
        let probe = TcpListener::bind(("127.0.0.1", 0))?;
        let qemu_port = probe.local_addr()?.port();
        drop(probe);
        Ok(Forward { listener, qemu_port, guest_port })
    }

    /// Starts relaying; the relay stops taking connections when the returned handle drops.
    pub fn start(self, guest_ports: GuestPorts) -> anyhow::Result<Running> {
        let host = self.listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<TcpStream>();
        let qemu = SocketAddr::from(([127, 0, 0, 1], self.qemu_port));
        let flag = Arc::clone(&stop);
        let listener = self.listener;
        thread::Builder::new()
            .name(format!("accept {}", host.port()))
            .spawn(move || {
                for client in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    match client {
                        Ok(c) => {
                            if tx.send(c).is_err() {
                                break;
                            }
                        }
                        Err(e) => log::debug!("-p {}: accept: {e}", host.port()),
                    }
                }
            })?;
        let flag = Arc::clone(&stop);
        thread::Builder::new()
            .name(format!("connect {}", host.port()))
            .spawn(move || {
                if guest_ports.wait_for(self.guest_port, &flag) {
                    hand_over(rx, qemu, flag);
                }
            })?;
        log::info!("-p: 127.0.0.1:{} is relayed by bake to QEMU on 127.0.0.1:{}", host.port(), self.qemu_port);
        Ok(Running { stop, host })
    }
}

/// A relay at work; dropping it closes the host port (connections already relayed go on
/// until either side closes).
pub struct Running {
    stop: Arc<AtomicBool>,
    host: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which sees the flag and closes the listener.
        let _ = TcpStream::connect_timeout(&self.host, Duration::from_millis(200));
    }
}

/// Connects each accepted client to QEMU, one at a time: the next connect starts only once
/// the previous one completed, which keeps QEMU's one-deep accept queue from overflowing.
fn hand_over(rx: mpsc::Receiver<TcpStream>, qemu: SocketAddr, stop: Arc<AtomicBool>) {
    for client in rx {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        wait_for_queue_room(qemu.port());
        let Some(guest) = connect_to_qemu(qemu, &stop) else {
            log::warn!("-p: QEMU did not take a connection on {qemu}; the client is dropped");
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = guest.set_nodelay(true);
        let (Ok(client2), Ok(guest2)) = (client.try_clone(), guest.try_clone()) else {
            continue;
        };
        let spawn = |from: TcpStream, to: TcpStream| {
            thread::Builder::new()
                .stack_size(RELAY_STACK)
                .spawn(move || relay(from, to))
        };
        if spawn(client, guest).is_err() || spawn(guest2, client2).is_err() {
            log::warn!("-p: cannot start a relay thread; a connection is dropped");
        }
    }
}

/// Waits (at most a second) until QEMU has accepted the connections already handed to it.
///
/// QEMU's listener queues at most two (backlog 1); a connection beyond that loses its SYN and
/// the handshake is retried a second later. QEMU accepts from its main loop, which waits for
/// the vCPU thread now and then, so the queue is watched in /proc/net/tcp, where a listening
/// socket's rx_queue is its accept queue.
fn wait_for_queue_room(port: u16) {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while accept_queue_len(port).is_some_and(|n| n > 0) && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_micros(200));
    }
}

/// The accept queue of the listener on 127.0.0.1:`port`, from /proc/net/tcp; `None` when it
/// cannot be read.
fn accept_queue_len(port: u16) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    listen_queue_in(&table, port)
}

/// Finds the LISTEN socket (state 0A) on 127.0.0.1:`port` in a /proc/net/tcp table and
/// returns its rx_queue.
fn listen_queue_in(table: &str, port: u16) -> Option<u32> {
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, addr, _, state, queues) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        if addr != local || state != "0A" {
            return None;
        }
        u32::from_str_radix(queues.split_once(':')?.1, 16).ok()
    })
}

/// QEMU's private port, retried while QEMU is still starting (connection refused).
fn connect_to_qemu(qemu: SocketAddr, stop: &AtomicBool) -> Option<TcpStream> {
    let deadline = std::time::Instant::now() + CONNECT_PATIENCE;
    loop {
        match TcpStream::connect_timeout(&qemu, Duration::from_secs(5)) {
            Ok(s) => return Some(s),
            Err(e) => {
                log::debug!("-p: connecting to QEMU on {qemu}: {e}");
                if stop.load(Ordering::SeqCst) || std::time::Instant::now() >= deadline {
                    return None;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Copies `from` to `to` until end of file, then passes the half close on. An error on
/// either side (a reset) shuts both sockets down so the other direction ends as well.
fn relay(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for QEMU's hostfwd: a listener with the private port that echoes in upper
    /// case, answers only after the client's half close, and accepts slowly.
    fn fake_qemu(port: u16, accepted: Arc<std::sync::atomic::AtomicUsize>) -> thread::JoinHandle<usize> {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        thread::spawn(move || {
            let mut served = 0;
            let mut handles = Vec::new();
            for s in l.incoming().take(60) {
                let mut s = s.unwrap();
                served += 1;
                accepted.fetch_add(1, Ordering::SeqCst);
                handles.push(thread::spawn(move || {
                    let mut all = Vec::new();
                    s.read_to_end(&mut all).unwrap();
                    s.write_all(&all.to_ascii_uppercase()).unwrap();
                }));
            }
            for h in handles {
                h.join().unwrap();
            }
            served
        })
    }

    #[test]
    fn many_clients_at_once_all_get_through_with_half_close() {
        let fwd = Forward::bind(0, 7000).unwrap();
        let host = fwd.listener.local_addr().unwrap();
        let qemu_port = fwd.qemu_port;
        let ports = GuestPorts::default();
        let running = fwd.start(ports.clone()).unwrap();
        // Clients connect before "QEMU" listens and before the app announced its port: they
        // wait in bake's queue.
        let clients: Vec<_> = (0..60)
            .map(|i| {
                thread::spawn(move || {
                    let mut s = TcpStream::connect(host).unwrap();
                    let msg = format!("client {i} ").repeat(5000);
                    s.write_all(msg.as_bytes()).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                    let mut back = String::new();
                    s.read_to_string(&mut back).unwrap();
                    assert_eq!(back, msg.to_ascii_uppercase());
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(100));
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let qemu = fake_qemu(qemu_port, Arc::clone(&accepted));
        thread::sleep(Duration::from_millis(100));
        ports.announce(7001);
        thread::sleep(Duration::from_millis(200));
        assert_eq!(accepted.load(Ordering::SeqCst), 0, "nothing is relayed before the app listens on 7000");
        ports.announce(7000);
        for c in clients {
            c.join().unwrap();
        }
        assert_eq!(qemu.join().unwrap(), 60);
        drop(running);
        // The host port is closed once the relay stops.
        thread::sleep(Duration::from_millis(100));
        assert!(TcpListener::bind(host).is_ok(), "the host port was not released");
    }

    #[test]
    fn the_accept_queue_is_read_from_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
";
        assert_eq!(listen_queue_in(table, 8080), Some(2));
        assert_eq!(listen_queue_in(table, 8081), None, "not on 127.0.0.1");
        assert_eq!(listen_queue_in(table, 8082), None);
        // A live listener nobody accepts from: its queue grows as clients connect.
        let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(accept_queue_len(port), Some(0));
        let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert_eq!(accept_queue_len(port), Some(1));
    }

    #[test]
    fn a_port_in_use_is_named() {
        let taken = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = Forward::bind(port, 80).err().unwrap();
        let fail = err.downcast_ref::<Fail>().unwrap();
        assert!(fail.to_string().contains(&format!("127.0.0.1:{port}")), "{fail}");
    }
}

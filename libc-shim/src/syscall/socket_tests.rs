//! Host tests of the socket syscalls over the loopback interface (no device), through
//! [`Process::syscall`] against [`FakePlatform`].

extern crate std;

use alloc::vec;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::mm::{Mm, VmaKind};
use crate::platform::{PAGE_SIZE, Prot};
use crate::process::{Process, SyscallOutcome, Thread};
use crate::testing::FakePlatform;

const BUF: u64 = 0x20_0000;
const BUF_LEN: u64 = 256 * PAGE_SIZE;
/// Scratch for addresses, lengths and option values.
const ADDR: u64 = BUF + 250 * PAGE_SIZE;
const LEN: u64 = ADDR + 0x100;
const OPT: u64 = ADDR + 0x200;
const OUT: u64 = BUF + 128 * PAGE_SIZE;

mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const CLOSE: u64 = 3;
    pub const FSTAT: u64 = 5;
    pub const IOCTL: u64 = 16;
    pub const SOCKET: u64 = 41;
    pub const CONNECT: u64 = 42;
    pub const ACCEPT: u64 = 43;
    pub const SENDTO: u64 = 44;
    pub const RECVFROM: u64 = 45;
    pub const SENDMSG: u64 = 46;
    pub const RECVMSG: u64 = 47;
    pub const SHUTDOWN: u64 = 48;
    pub const BIND: u64 = 49;
    pub const LISTEN: u64 = 50;
    pub const GETSOCKNAME: u64 = 51;
    pub const GETPEERNAME: u64 = 52;
    pub const SOCKETPAIR: u64 = 53;
    pub const SETSOCKOPT: u64 = 54;
    pub const GETSOCKOPT: u64 = 55;
    pub const FCNTL: u64 = 72;
    pub const RT_SIGACTION: u64 = 13;
    pub const ACCEPT4: u64 = 288;
    pub const RECVMMSG: u64 = 299;
    pub const SENDMMSG: u64 = 307;
}

const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const SOCK_SEQPACKET: u64 = 5;
const SOCK_NONBLOCK: u64 = 0o4000;
const MSG_PEEK: u64 = 2;
const MSG_TRUNC: u64 = 0x20;
const MSG_DONTWAIT: u64 = 0x40;
const MSG_WAITALL: u64 = 0x100;
const MSG_NOSIGNAL: u64 = 0x4000;
const SOL_SOCKET: u64 = 1;
const IPPROTO_TCP: u64 = 6;
const IPPROTO_IPV6: u64 = 41;

struct T {
    p: Process,
    fake: FakePlatform,
    /// Threads woken by the calls so far (the kernel asks after every call).
    woken: Vec<i32>,
}

fn err(e: Errno) -> i64 {
    -i64::from(e.0)
}

fn setup() -> T {
    let fake = FakePlatform::default();
    let mut mm = Mm::new();
    mm.map_fixed(&fake, BUF, BUF_LEN, Prot::READ | Prot::WRITE, VmaKind::Anonymous).unwrap();
    let mut p = Process::new(mm, "/bin/app");
    p.threads.insert(2, Thread::new(2));
    T { p, fake, woken: Vec::new() }
}

fn sin(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut b = vec![0u8; 16];
    b[0..2].copy_from_slice(&(AF_INET as u16).to_le_bytes());
    b[2..4].copy_from_slice(&port.to_be_bytes());
    b[4..8].copy_from_slice(&ip);
    b
}

fn sin6(ip: [u8; 16], port: u16) -> Vec<u8> {
    let mut b = vec![0u8; 28];
    b[0..2].copy_from_slice(&(AF_INET6 as u16).to_le_bytes());
    b[2..4].copy_from_slice(&port.to_be_bytes());
    b[8..24].copy_from_slice(&ip);
    b
}

fn sun(path: &[u8]) -> Vec<u8> {
    let mut b = (AF_UNIX as u16).to_le_bytes().to_vec();
    b.extend_from_slice(path);
    b.push(0);
    b
}

const LOOP6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

impl T {
    fn sys_as(&mut self, tid: i32, nr: u64, args: &[u64]) -> SyscallOutcome {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        let r = self.p.syscall(&self.fake, tid, nr, a);
        let woken = self.p.take_woken();
        self.woken.extend(woken);
        r
    }
    fn take_woken(&mut self) -> Vec<i32> {
        core::mem::take(&mut self.woken)
    }
    fn sys(&mut self, nr: u64, args: &[u64]) -> SyscallOutcome {
        self.sys_as(1, nr, args)
    }
    fn call(&mut self, nr: u64, args: &[u64]) -> i64 {
        match self.sys(nr, args) {
            SyscallOutcome::Return(v) => v,
            other => panic!("syscall {nr} did not return: {other:?}"),
        }
    }
    fn put(&self, addr: u64, bytes: &[u8]) {
        crate::Platform::write_app(&self.fake, addr, bytes).unwrap();
    }
    fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        crate::Platform::read_app(&self.fake, addr, &mut v).unwrap();
        v
    }
    fn u32_at(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.get(addr, 4).try_into().unwrap())
    }
    fn socket(&mut self, domain: u64, ty: u64) -> u64 {
        let fd = self.call(nr::SOCKET, &[domain, ty, 0]);
        assert!(fd >= 0, "socket: {fd}");
        fd as u64
    }
    fn bind(&mut self, fd: u64, addr: &[u8]) -> i64 {
        self.put(ADDR, addr);
        self.call(nr::BIND, &[fd, ADDR, addr.len() as u64])
    }
    fn connect(&mut self, fd: u64, addr: &[u8]) -> i64 {
        self.put(ADDR, addr);
        self.call(nr::CONNECT, &[fd, ADDR, addr.len() as u64])
    }
    fn name(&mut self, nr: u64, fd: u64) -> Vec<u8> {
        self.put(LEN, &128u32.to_le_bytes());
        assert_eq!(self.call(nr, &[fd, ADDR, LEN]), 0);
        let n = self.u32_at(LEN) as usize;
        self.get(ADDR, n)
    }
    fn port(&mut self, fd: u64) -> u16 {
        let a = self.name(nr::GETSOCKNAME, fd);
        u16::from_be_bytes([a[2], a[3]])
    }
    fn accept(&mut self, fd: u64) -> i64 {
        self.put(LEN, &128u32.to_le_bytes());
        self.call(nr::ACCEPT, &[fd, ADDR, LEN])
    }
    fn send(&mut self, fd: u64, data: &[u8], flags: u64) -> i64 {
        self.put(BUF, data);
        self.call(nr::SENDTO, &[fd, BUF, data.len() as u64, flags, 0, 0])
    }
    fn recv(&mut self, fd: u64, len: usize, flags: u64) -> Result<Vec<u8>, i64> {
        let n = self.call(nr::RECVFROM, &[fd, OUT, len as u64, flags, 0, 0]);
        if n < 0 { Err(n) } else { Ok(self.get(OUT, n as usize)) }
    }
    fn setopt(&mut self, fd: u64, level: u64, name: u64, v: i32) -> i64 {
        self.put(OPT, &v.to_le_bytes());
        self.call(nr::SETSOCKOPT, &[fd, level, name, OPT, 4])
    }
    fn getopt(&mut self, fd: u64, level: u64, name: u64) -> Result<i32, i64> {
        self.put(LEN, &4u32.to_le_bytes());
        let r = self.call(nr::GETSOCKOPT, &[fd, level, name, OPT, LEN]);
        if r < 0 { Err(r) } else { Ok(self.u32_at(OPT) as i32) }
    }
    /// A listening TCP socket on 127.0.0.1 and its port.
    fn listener(&mut self, backlog: u64) -> (u64, u16) {
        let s = self.socket(AF_INET, SOCK_STREAM);
        assert_eq!(self.bind(s, &sin([127, 0, 0, 1], 0)), 0);
        assert_eq!(self.call(nr::LISTEN, &[s, backlog]), 0);
        let port = self.port(s);
        (s, port)
    }
    /// A connected pair: (client, server side).
    fn tcp_pair(&mut self, listener: u64, port: u16) -> (u64, u64) {
        let c = self.socket(AF_INET, SOCK_STREAM);
        assert_eq!(self.connect(c, &sin([127, 0, 0, 1], port)), 0);
        let a = self.accept(listener);
        assert!(a >= 0, "accept: {a}");
        (c, a as u64)
    }
}

#[test]
fn tcp_echo_over_loopback_with_many_connections() {
    let mut t = setup();
    let (l, port) = t.listener(128);
    assert!(port >= 32768, "port 0 picks an ephemeral port: {port}");
    // 100 clients connect before any is accepted: the backlog holds them.
    let clients: Vec<u64> = (0..100).map(|_| t.socket(AF_INET, SOCK_STREAM)).collect();
    for &c in &clients {
        assert_eq!(t.connect(c, &sin([127, 0, 0, 1], port)), 0);
    }
    let mut servers = Vec::new();
    for _ in &clients {
        let a = t.accept(l);
        assert!(a >= 0, "accept: {a}");
        assert_eq!(t.get(ADDR, 8)[..2], (AF_INET as u16).to_le_bytes());
        assert_eq!(t.get(ADDR + 4, 4), [127, 0, 0, 1]);
        servers.push(a as u64);
    }
    // Nothing else is queued.
    assert_eq!(t.call(nr::FCNTL, &[l, 4, SOCK_NONBLOCK]), 0);
    assert_eq!(t.accept(l), err(Errno::EAGAIN));
    // Each client's bytes come back through its own server socket, every byte checked.
    for (i, (&c, &s)) in clients.iter().zip(&servers).enumerate() {
        let msg: Vec<u8> = (0..1000).map(|j| (i * 7 + j) as u8).collect();
        assert_eq!(t.send(c, &msg, 0), 1000);
        let got = t.recv(s, 4096, 0).unwrap();
        assert_eq!(got, msg, "connection {i}");
        assert_eq!(t.send(s, &got, 0), 1000);
        assert_eq!(t.recv(c, 4096, 0).unwrap(), msg);
    }
    // Peers agree on names.
    let (c0, s0) = (clients[0], servers[0]);
    assert_eq!(t.name(nr::GETPEERNAME, c0), t.name(nr::GETSOCKNAME, s0));
    assert_eq!(t.name(nr::GETSOCKNAME, c0), t.name(nr::GETPEERNAME, s0));
    for fd in clients.into_iter().chain(servers) {
        assert_eq!(t.call(nr::CLOSE, &[fd]), 0);
    }
}

#[test]
fn tcp_bulk_transfer_keeps_every_byte() {
    let mut t = setup();
    let (l, port) = t.listener(4);
    let (c, s) = t.tcp_pair(l, port);
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i ^ (i >> 8)) as u8).collect();
    let (mut sent, mut got) = (0usize, Vec::new());
    while got.len() < data.len() {
        if sent < data.len() {
            let chunk = &data[sent..(sent + 100_000).min(data.len())];
            let n = t.send(c, chunk, MSG_DONTWAIT);
            assert!(n > 0 || n == err(Errno::EAGAIN), "send: {n}");
            if n > 0 {
                sent += n as usize;
            }
        }
        match t.recv(s, 65536, MSG_DONTWAIT) {
            Ok(b) => got.extend(b),
            Err(e) => assert_eq!(e, err(Errno::EAGAIN)),
        }
    }
    assert!(got == data, "bytes differ");
    // Orderly close: the reader sees end of stream.
    assert_eq!(t.call(nr::CLOSE, &[c]), 0);
    assert_eq!(t.recv(s, 10, 0), Ok(vec![]));
}

#[test]
fn blocking_calls_wait_and_are_woken() {
    let mut t = setup();
    let (l, port) = t.listener(8);
    // accept blocks until a client connects (from another thread).
    assert_eq!(t.sys(nr::ACCEPT, &[l, 0, 0]), SyscallOutcome::Block { deadline: None });
    let c = t.call(nr::SOCKET, &[AF_INET, SOCK_STREAM, 0]) as u64;
    // thread 1 is blocked; thread 2 connects.
    t.put(ADDR + 0x80, &sin([127, 0, 0, 1], port));
    assert_eq!(t.sys_as(2, nr::CONNECT, &[c, ADDR + 0x80, 16]), SyscallOutcome::Return(0));
    assert_eq!(t.take_woken(), vec![1]);
    let s = t.call(nr::ACCEPT, &[l, 0, 0]);
    assert!(s >= 0);
    let s = s as u64;
    // recv blocks until the peer sends.
    assert_eq!(t.sys(nr::RECVFROM, &[s, OUT, 100, 0, 0, 0]), SyscallOutcome::Block { deadline: None });
    t.put(BUF, b"wake up");
    assert_eq!(t.sys_as(2, nr::SENDTO, &[c, BUF, 7, 0, 0, 0]), SyscallOutcome::Return(7));
    assert_eq!(t.take_woken(), vec![1]);
    assert_eq!(t.recv(s, 100, 0).unwrap(), b"wake up");
    // MSG_WAITALL waits for the whole length.
    assert_eq!(t.send(c, b"abc", 0), 3);
    assert_eq!(t.sys(nr::RECVFROM, &[s, OUT, 6, MSG_WAITALL, 0, 0]), SyscallOutcome::Block { deadline: None });
    t.put(BUF, b"def");
    assert_eq!(t.sys_as(2, nr::SENDTO, &[c, BUF, 3, 0, 0, 0]), SyscallOutcome::Return(3));
    assert_eq!(t.take_woken(), vec![1]);
    assert_eq!(t.recv(s, 6, MSG_WAITALL).unwrap(), b"abcdef");
    // SO_RCVTIMEO: the wait has a deadline and ends in EAGAIN.
    let mut tv = 0i64.to_le_bytes().to_vec();
    tv.extend_from_slice(&250_000i64.to_le_bytes());
    t.put(OPT, &tv);
    assert_eq!(t.call(nr::SETSOCKOPT, &[s, SOL_SOCKET, 20, OPT, 16]), 0);
    let now = t.fake.now_ns.get();
    assert_eq!(t.sys(nr::RECVFROM, &[s, OUT, 6, 0, 0, 0]), SyscallOutcome::Block { deadline: Some(now + 250_000_000) });
    assert!(t.p.time_out(1));
    assert_eq!(t.recv(s, 6, 0), Err(err(Errno::EAGAIN)));
    t.put(LEN, &16u32.to_le_bytes());
    assert_eq!(t.call(nr::GETSOCKOPT, &[s, SOL_SOCKET, 20, OPT, LEN]), 0);
    assert_eq!(t.get(OPT + 8, 8), 250_000i64.to_le_bytes());
    // MSG_DONTWAIT never blocks.
    assert_eq!(t.recv(c, 6, MSG_DONTWAIT), Err(err(Errno::EAGAIN)));
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    let mut t = setup();
    // A port nobody listens on.
    let (l, port) = t.listener(1);
    t.call(nr::CLOSE, &[l]);
    // Blocking: ECONNREFUSED at once (loopback answers with RST).
    let c = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.connect(c, &sin([127, 0, 0, 1], port)), err(Errno::ECONNREFUSED));
    // Non-blocking: EINPROGRESS, then SO_ERROR says ECONNREFUSED (once), and POLLERR.
    let n = t.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    assert_eq!(t.connect(n, &sin([127, 0, 0, 1], port)), err(Errno::EINPROGRESS));
    let file = t.p.fs.fds.get(n as i32).unwrap().desc.file.clone();
    assert!(file.poll().contains(crate::fd::Readiness::ERROR));
    assert_eq!(t.getopt(n, SOL_SOCKET, 4), Ok(Errno::ECONNREFUSED.0));
    assert_eq!(t.getopt(n, SOL_SOCKET, 4), Ok(0));
    // Non-blocking connect that succeeds: EINPROGRESS, then writable and SO_ERROR 0.
    let (l2, port2) = t.listener(1);
    let n2 = t.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
    assert_eq!(t.connect(n2, &sin([127, 0, 0, 1], port2)), err(Errno::EINPROGRESS));
    let file = t.p.fs.fds.get(n2 as i32).unwrap().desc.file.clone();
    assert!(file.poll().contains(crate::fd::Readiness::WRITABLE));
    assert_eq!(t.getopt(n2, SOL_SOCKET, 4), Ok(0));
    assert_eq!(t.connect(n2, &sin([127, 0, 0, 1], port2)), err(Errno::EISCONN));
    assert!(t.accept(l2) >= 0);
    // No route off the machine without a network device.
    let u = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.connect(u, &sin([10, 0, 2, 2], 80)), err(Errno::ENETUNREACH));
}

#[test]
fn backlog_limits_pending_connections() {
    let mut t = setup();
    let (l, port) = t.listener(2);
    let a = t.socket(AF_INET, SOCK_STREAM);
    let b = t.socket(AF_INET, SOCK_STREAM);
    let c = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.connect(a, &sin([127, 0, 0, 1], port)), 0);
    assert_eq!(t.connect(b, &sin([127, 0, 0, 1], port)), 0);
    // The backlog is full: refused (Linux would drop the SYN and retry).
    assert_eq!(t.connect(c, &sin([127, 0, 0, 1], port)), err(Errno::ECONNREFUSED));
    assert!(t.accept(l) >= 0);
    let c = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.connect(c, &sin([127, 0, 0, 1], port)), 0);
    assert!(t.accept(l) >= 0);
    assert!(t.accept(l) >= 0);
}

#[test]
fn udp_round_trips() {
    let mut t = setup();
    let a = t.socket(AF_INET, SOCK_DGRAM);
    let b = t.socket(AF_INET, SOCK_DGRAM);
    assert_eq!(t.bind(a, &sin([127, 0, 0, 1], 0)), 0);
    let pa = t.port(a);
    // b is bound implicitly by its first send.
    for i in 0..20u8 {
        let msg = vec![i; 100 + i as usize];
        t.put(BUF, &msg);
        t.put(ADDR, &sin([127, 0, 0, 1], pa));
        assert_eq!(t.call(nr::SENDTO, &[b, BUF, msg.len() as u64, 0, ADDR, 16]), msg.len() as i64);
    }
    let pb = t.port(b);
    assert_ne!(pb, 0);
    for i in 0..20u8 {
        // Peek first, then take it with the source address.
        assert_eq!(t.recv(a, 1000, MSG_PEEK).unwrap(), vec![i; 100 + i as usize]);
        t.put(LEN, &16u32.to_le_bytes());
        let n = t.call(nr::RECVFROM, &[a, OUT, 1000, 0, ADDR, LEN]);
        assert_eq!(n, 100 + i as i64);
        assert_eq!(t.get(ADDR, 16), sin([127, 0, 0, 1], pb));
    }
    // Truncation: the rest of the datagram is lost; MSG_TRUNC tells its length.
    assert_eq!(t.send_to(b, &[7; 300], &sin([127, 0, 0, 1], pa)), 300);
    assert_eq!(t.call(nr::RECVFROM, &[a, OUT, 10, MSG_TRUNC, 0, 0]), 300);
    assert_eq!(t.recv(a, 10, MSG_DONTWAIT), Err(err(Errno::EAGAIN)));
    // A connected socket sends without an address and hears only its peer.
    let c = t.socket(AF_INET, SOCK_DGRAM);
    assert_eq!(t.connect(a, &sin([127, 0, 0, 1], pb)), 0);
    assert_eq!(t.send_to(c, b"stranger", &sin([127, 0, 0, 1], pa)), 8);
    assert_eq!(t.send(b, b"", 0), err(Errno::EDESTADDRREQ));
    assert_eq!(t.send_to(b, b"friend", &sin([127, 0, 0, 1], pa)), 6);
    assert_eq!(t.recv(a, 100, 0).unwrap(), b"friend");
    assert_eq!(t.send(a, b"back", 0), 4);
    assert_eq!(t.recv(b, 100, 0).unwrap(), b"back");
    assert_eq!(t.name(nr::GETPEERNAME, a), sin([127, 0, 0, 1], pb));
    // Too big for UDP.
    assert_eq!(t.send_to(b, &vec![0; 70000], &sin([127, 0, 0, 1], pa)), err(Errno::EMSGSIZE));
    // FIONREAD: the next datagram's size.
    assert_eq!(t.send_to(b, &[1; 33], &sin([127, 0, 0, 1], pa)), 33);
    assert_eq!(t.call(nr::IOCTL, &[a, 0x541b, OPT]), 0);
    assert_eq!(t.u32_at(OPT), 33);
}

impl T {
    fn send_to(&mut self, fd: u64, data: &[u8], to: &[u8]) -> i64 {
        self.put(BUF, data);
        self.put(ADDR + 0x80, to);
        self.call(nr::SENDTO, &[fd, BUF, data.len() as u64, 0, ADDR + 0x80, to.len() as u64])
    }
}

#[test]
fn sendmsg_recvmsg_and_the_mmsg_calls() {
    let mut t = setup();
    let a = t.socket(AF_INET, SOCK_DGRAM);
    let b = t.socket(AF_INET, SOCK_DGRAM);
    assert_eq!(t.bind(a, &sin([127, 0, 0, 1], 0)), 0);
    let pa = t.port(a);
    // sendmsg with two iovecs and a name.
    t.put(BUF, b"hello ");
    t.put(BUF + 100, b"world");
    let iov = [BUF, 6, BUF + 100, 5].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    t.put(BUF + 200, &iov);
    t.put(BUF + 300, &sin([127, 0, 0, 1], pa));
    let msg = |name: u64, namelen: u64, iov: u64, n: u64| {
        let mut m = vec![0u8; 56];
        m[0..8].copy_from_slice(&name.to_le_bytes());
        m[8..12].copy_from_slice(&(namelen as u32).to_le_bytes());
        m[16..24].copy_from_slice(&iov.to_le_bytes());
        m[24..32].copy_from_slice(&n.to_le_bytes());
        m
    };
    t.put(BUF + 400, &msg(BUF + 300, 16, BUF + 200, 2));
    assert_eq!(t.call(nr::SENDMSG, &[b, BUF + 400, 0]), 11);
    // recvmsg into two small iovecs: "hel" + "lo wo", truncated.
    let riov = [OUT, 3, OUT + 100, 5].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    t.put(BUF + 500, &riov);
    t.put(BUF + 600, &msg(BUF + 700, 64, BUF + 500, 2));
    assert_eq!(t.call(nr::RECVMSG, &[a, BUF + 600, 0]), 8);
    assert_eq!(t.get(OUT, 3), b"hel");
    assert_eq!(t.get(OUT + 100, 5), b"lo wo");
    assert_eq!(t.get(BUF + 600 + 8, 4), 16u32.to_le_bytes(), "msg_namelen");
    assert_eq!(t.get(BUF + 600 + 48, 4), 0x20u32.to_le_bytes(), "MSG_TRUNC in msg_flags");
    // sendmmsg of three messages, recvmmsg of them all.
    let mut vec = Vec::new();
    for _ in 0..3 {
        let mut m = msg(BUF + 300, 16, BUF + 200, 2);
        m.resize(64, 0);
        vec.extend(m);
    }
    t.put(BUF + 1000, &vec);
    assert_eq!(t.call(nr::SENDMMSG, &[b, BUF + 1000, 3, 0]), 3);
    assert_eq!(t.u32_at(BUF + 1000 + 56), 11, "msg_len");
    let mut rvec = Vec::new();
    for i in 0..4u64 {
        let mut m = msg(0, 0, BUF + 2000 + i * 16, 1);
        m.resize(64, 0);
        rvec.extend(m);
        t.put(BUF + 2000 + i * 16, &[(OUT + i * 100).to_le_bytes(), 64u64.to_le_bytes()].concat());
    }
    t.put(BUF + 3000, &rvec);
    assert_eq!(t.call(nr::RECVMMSG, &[a, BUF + 3000, 4, 0, 0]), 3);
    assert_eq!(t.get(OUT + 200, 11), b"hello world");
    assert_eq!(t.u32_at(BUF + 3000 + 64 * 2 + 56), 11);
}

#[test]
fn shutdown_and_epipe() {
    let mut t = setup();
    let (l, port) = t.listener(4);
    let (c, s) = t.tcp_pair(l, port);
    assert_eq!(t.send(c, b"last words", 0), 10);
    assert_eq!(t.call(nr::SHUTDOWN, &[c, 1]), 0);
    assert_eq!(t.recv(s, 100, 0).unwrap(), b"last words");
    assert_eq!(t.recv(s, 100, 0).unwrap(), b"", "end of stream after SHUT_WR");
    let file = t.p.fs.fds.get(s as i32).unwrap().desc.file.clone();
    assert!(file.poll().contains(crate::fd::Readiness::RDHUP));
    // The other direction still works.
    assert_eq!(t.send(s, b"reply", 0), 5);
    assert_eq!(t.recv(c, 100, 0).unwrap(), b"reply");
    // Writing after SHUT_WR: EPIPE (MSG_NOSIGNAL: no signal).
    assert_eq!(t.send(c, b"x", MSG_NOSIGNAL), err(Errno::EPIPE));
    // ... and SIGPIPE's default action ends the process.
    t.put(BUF, b"x");
    assert_eq!(t.sys(nr::SENDTO, &[c, BUF, 1, 0, 0, 0]), SyscallOutcome::Exit { status: 128 + 13, signal: Some(13) });
}

#[test]
fn writing_to_a_closed_peer_resets() {
    let mut t = setup();
    // SIGPIPE ignored: errors only.
    let ign = [1u64, 0, 0, 0].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    t.put(BUF + 0x500, &ign);
    assert_eq!(t.call(nr::RT_SIGACTION, &[13, BUF + 0x500, 0, 8]), 0);
    let (l, port) = t.listener(4);
    let (c, s) = t.tcp_pair(l, port);
    assert_eq!(t.call(nr::CLOSE, &[c]), 0);
    assert_eq!(t.recv(s, 10, 0).unwrap(), b"");
    // The first write reaches a closed socket, which answers with a reset.
    assert_eq!(t.send(s, b"anyone?", 0), 7);
    let r = t.send(s, b"hello?", 0);
    assert!(r == err(Errno::ECONNRESET) || r == err(Errno::EPIPE), "{r}");
    assert_eq!(t.send(s, b"hello?", 0), err(Errno::EPIPE));
    // Closing with unread data resets the peer: its read says ECONNRESET.
    let (c, s) = t.tcp_pair(l, port);
    assert_eq!(t.send(c, b"unread", 0), 6);
    assert_eq!(t.call(nr::CLOSE, &[s]), 0);
    assert_eq!(t.recv(c, 10, 0), Err(err(Errno::ECONNRESET)));
    assert_eq!(t.recv(c, 10, 0), Ok(vec![]));
}

#[test]
fn ipv6_loopback_and_dual_stack() {
    let mut t = setup();
    let l = t.socket(AF_INET6, SOCK_STREAM);
    assert_eq!(t.setopt(l, SOL_SOCKET, 2, 1), 0);
    assert_eq!(t.bind(l, &sin6([0; 16], 0)), 0);
    assert_eq!(t.call(nr::LISTEN, &[l, 16]), 0);
    let port = t.port(l);
    assert_eq!(t.getopt(l, IPPROTO_IPV6, 26), Ok(0), "IPV6_V6ONLY off by default");
    // Over ::1.
    let c = t.socket(AF_INET6, SOCK_STREAM);
    assert_eq!(t.connect(c, &sin6(LOOP6, port)), 0);
    let s = t.accept(l) as u64;
    assert_eq!(t.get(ADDR, 28)[8..24], LOOP6);
    assert_eq!(t.send(c, b"over v6", 0), 7);
    assert_eq!(t.recv(s, 100, 0).unwrap(), b"over v6");
    // An IPv4 client reaches the dual-stack listener; its address is v4-mapped.
    let c4 = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.connect(c4, &sin([127, 0, 0, 1], port)), 0);
    let s4 = t.accept(l) as u64;
    assert_eq!(t.u32_at(LEN), 28);
    assert_eq!(t.get(ADDR + 8, 16), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
    assert_eq!(t.send(s4, b"mapped", 0), 6);
    assert_eq!(t.recv(c4, 100, 0).unwrap(), b"mapped");
    // An AF_INET socket refuses an IPv6 address.
    let x = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.bind(x, &sin6(LOOP6, 0)), err(Errno::EAFNOSUPPORT));
}

#[test]
fn ipv4_and_v6only_wildcards_share_a_port() {
    // redis's default `bind * -::*`: 0.0.0.0:P, then [::]:P with IPV6_V6ONLY.
    let mut t = setup();
    let l4 = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.bind(l4, &sin([0, 0, 0, 0], 6379)), 0);
    assert_eq!(t.call(nr::LISTEN, &[l4, 16]), 0);
    let dual = t.socket(AF_INET6, SOCK_STREAM);
    assert_eq!(t.bind(dual, &sin6([0; 16], 6379)), err(Errno::EADDRINUSE), "a dual-stack wildcard takes IPv4 too");
    let l6 = t.socket(AF_INET6, SOCK_STREAM);
    assert_eq!(t.setopt(l6, IPPROTO_IPV6, 26, 1), 0);
    assert_eq!(t.bind(l6, &sin6([0; 16], 6379)), 0);
    assert_eq!(t.call(nr::LISTEN, &[l6, 16]), 0);
    // A specific IPv6 address does not collide with the IPv4 wildcard either.
    let lo6 = t.socket(AF_INET6, SOCK_STREAM);
    assert_eq!(t.bind(lo6, &sin6(LOOP6, 7000)), 0);
    let any4 = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.bind(any4, &sin([0, 0, 0, 0], 7000)), 0);
    // Both listeners take connections over their own IP version.
    let c4 = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.connect(c4, &sin([127, 0, 0, 1], 6379)), 0);
    let c6 = t.socket(AF_INET6, SOCK_STREAM);
    assert_eq!(t.connect(c6, &sin6(LOOP6, 6379)), 0);
    let s6 = t.accept(l6);
    assert!(s6 >= 0, "accept on the IPv6 listener: {s6}");
    assert_eq!(t.get(ADDR, 2), (AF_INET6 as u16).to_le_bytes());
    assert_eq!(t.get(ADDR + 8, 16), LOOP6);
    let s4 = t.accept(l4);
    assert!(s4 >= 0, "accept on the IPv4 listener: {s4}");
    assert_eq!(t.get(ADDR, 2), (AF_INET as u16).to_le_bytes());
    assert_eq!(t.send(c4, b"v4", 0), 2);
    assert_eq!(t.recv(s4 as u64, 100, 0).unwrap(), b"v4");
    assert_eq!(t.send(c6, b"v6", 0), 2);
    assert_eq!(t.recv(s6 as u64, 100, 0).unwrap(), b"v6");
}

#[test]
fn connections_reach_the_listener_of_their_ip_version() {
    // Wildcard listeners on one port: IPv4 and IPv6-only. Every IPv4 connection must be
    // accepted on the IPv4 one and every IPv6 connection on the other, however the SYNs
    // interleave.
    let mut t = setup();
    let l4 = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.bind(l4, &sin([0, 0, 0, 0], 6380)), 0);
    assert_eq!(t.call(nr::LISTEN, &[l4, 16]), 0);
    let l6 = t.socket(AF_INET6, SOCK_STREAM);
    assert_eq!(t.setopt(l6, IPPROTO_IPV6, 26, 1), 0);
    assert_eq!(t.bind(l6, &sin6([0; 16], 6380)), 0);
    assert_eq!(t.call(nr::LISTEN, &[l6, 16]), 0);
    for _ in 0..3 {
        let c6 = t.socket(AF_INET6, SOCK_STREAM);
        assert_eq!(t.connect(c6, &sin6(LOOP6, 6380)), 0);
        let c4 = t.socket(AF_INET, SOCK_STREAM);
        assert_eq!(t.connect(c4, &sin([127, 0, 0, 1], 6380)), 0);
    }
    for _ in 0..3 {
        assert!(t.accept(l4) >= 0);
        assert_eq!(t.get(ADDR, 2), (AF_INET as u16).to_le_bytes(), "IPv4 listener, IPv4 peer");
        assert!(t.accept(l6) >= 0);
        assert_eq!(t.get(ADDR, 2), (AF_INET6 as u16).to_le_bytes(), "IPv6 listener, IPv6 peer");
        assert_eq!(t.get(ADDR + 8, 16), LOOP6);
    }
    // An IPv6-only listener alone: an IPv4 connection is refused, as on Linux.
    let only6 = t.socket(AF_INET6, SOCK_STREAM);
    assert_eq!(t.setopt(only6, IPPROTO_IPV6, 26, 1), 0);
    assert_eq!(t.bind(only6, &sin6([0; 16], 6381)), 0);
    assert_eq!(t.call(nr::LISTEN, &[only6, 16]), 0);
    let c4 = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.connect(c4, &sin([127, 0, 0, 1], 6381)), err(Errno::ECONNREFUSED));
}

#[test]
fn bind_conflicts_and_options() {
    let mut t = setup();
    let a = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.bind(a, &sin([127, 0, 0, 1], 5555)), 0);
    assert_eq!(t.call(nr::LISTEN, &[a, 4]), 0);
    let b = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.bind(b, &sin([0, 0, 0, 0], 5555)), err(Errno::EADDRINUSE));
    assert_eq!(t.setopt(b, SOL_SOCKET, 2, 1), 0);
    assert_eq!(t.bind(b, &sin([127, 0, 0, 1], 5555)), err(Errno::EADDRINUSE), "SO_REUSEADDR does not share a listener's port");
    assert_eq!(t.bind(b, &sin([10, 1, 2, 3], 80)), err(Errno::EADDRNOTAVAIL));
    // SO_REUSEPORT on both: shared.
    let r1 = t.socket(AF_INET, SOCK_DGRAM);
    let r2 = t.socket(AF_INET, SOCK_DGRAM);
    assert_eq!(t.setopt(r1, SOL_SOCKET, 15, 1), 0);
    assert_eq!(t.setopt(r2, SOL_SOCKET, 15, 1), 0);
    assert_eq!(t.bind(r1, &sin([127, 0, 0, 1], 6000)), 0);
    assert_eq!(t.bind(r2, &sin([127, 0, 0, 1], 6000)), 0);
    // Options.
    assert_eq!(t.getopt(a, SOL_SOCKET, 3), Ok(1), "SO_TYPE");
    assert_eq!(t.getopt(r1, SOL_SOCKET, 3), Ok(2));
    assert_eq!(t.getopt(a, SOL_SOCKET, 30), Ok(1), "SO_ACCEPTCONN");
    assert_eq!(t.getopt(a, SOL_SOCKET, 39), Ok(2), "SO_DOMAIN");
    assert_eq!(t.getopt(b, SOL_SOCKET, 2), Ok(1), "SO_REUSEADDR");
    assert_eq!(t.setopt(b, IPPROTO_TCP, 1, 1), 0);
    assert_eq!(t.getopt(b, IPPROTO_TCP, 1), Ok(1), "TCP_NODELAY");
    assert_eq!(t.setopt(b, SOL_SOCKET, 8, 50_000), 0);
    assert_eq!(t.getopt(b, SOL_SOCKET, 8), Ok(100_000), "SO_RCVBUF is doubled");
    assert_eq!(t.setopt(b, SOL_SOCKET, 9, 1), 0);
    for (opt, v) in [(4, 30), (5, 10), (6, 3)] {
        assert_eq!(t.setopt(b, IPPROTO_TCP, opt, v), 0);
        assert_eq!(t.getopt(b, IPPROTO_TCP, opt), Ok(v));
    }
    assert_eq!(t.setopt(b, IPPROTO_TCP, 4, 0), err(Errno::EINVAL));
    assert_eq!(t.setopt(b, IPPROTO_TCP, 3, 1), 0, "TCP_CORK accepted");
    assert_eq!(t.setopt(b, 0, 1, 0x10), 0, "IP_TOS");
    assert_eq!(t.getopt(b, 0, 1), Ok(0x10));
    assert_eq!(t.setopt(r1, IPPROTO_TCP, 1, 1), err(Errno::ENOPROTOOPT), "TCP option on UDP");
    assert_eq!(t.setopt(b, SOL_SOCKET, 999, 1), err(Errno::ENOPROTOOPT));
    assert_eq!(t.getopt(b, 77, 1), Err(err(Errno::ENOPROTOOPT)));
    // SO_LINGER round trip.
    t.put(OPT, &[1u32.to_le_bytes(), 0u32.to_le_bytes()].concat());
    assert_eq!(t.call(nr::SETSOCKOPT, &[b, SOL_SOCKET, 13, OPT, 8]), 0);
    t.put(LEN, &8u32.to_le_bytes());
    assert_eq!(t.call(nr::GETSOCKOPT, &[b, SOL_SOCKET, 13, OPT, LEN]), 0);
    assert_eq!(t.get(OPT, 8), [1, 0, 0, 0, 0, 0, 0, 0]);
    // Not a socket.
    assert_eq!(t.call(nr::LISTEN, &[1, 4]), err(Errno::ENOTSOCK));
    assert_eq!(t.call(nr::SOCKET, &[99, 1, 0]), err(Errno::EAFNOSUPPORT));
    assert_eq!(t.call(nr::SOCKET, &[AF_INET, 3, 0]), err(Errno::ESOCKTNOSUPPORT));
    assert_eq!(t.call(nr::SOCKET, &[AF_INET, SOCK_STREAM, 17]), err(Errno::EPROTONOSUPPORT));
    // fstat: a socket.
    assert_eq!(t.call(nr::FSTAT, &[a, BUF]), 0);
    assert_eq!(t.u32_at(BUF + 24) & 0o170000, 0o140000);
    // SIOCGIFCONF lists lo.
    let mut ifc = 80u32.to_le_bytes().to_vec();
    ifc.extend_from_slice(&[0; 4]);
    ifc.extend_from_slice(&OUT.to_le_bytes());
    t.put(OPT, &ifc);
    assert_eq!(t.call(nr::IOCTL, &[a, 0x8912, OPT]), 0);
    assert_eq!(t.u32_at(OPT), 40);
    assert_eq!(&t.get(OUT, 3), b"lo\0");
    assert_eq!(t.get(OUT + 20, 4), [127, 0, 0, 1]);
}

#[test]
fn tcp_buffers_scale_with_memory_within_a_budget() {
    use crate::net::stack::{TCP_BUF_DEFAULT, TcpBuffers};
    let mut t = setup();
    // The fake platform has 256 MiB: 256 KiB each way.
    let a = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.getopt(a, SOL_SOCKET, 8), Ok(256 << 10), "SO_RCVBUF");
    assert_eq!(t.getopt(a, SOL_SOCKET, 7), Ok(256 << 10), "SO_SNDBUF");
    // A budget of 1.75 MiB: the listener's pool socket (512 KiB), then a client, then the
    // pool's next socket (the first one became the connection) fit; the next client does not.
    let stack = t.p.net.stack(&t.fake).clone();
    stack.lock().set_tcp_buffers(TcpBuffers { size: 256 << 10, budget: 7 << 18 });
    let (l, port) = t.listener(8);
    let c1 = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.connect(c1, &sin([127, 0, 0, 1], port)), 0);
    let s1 = t.accept(l) as u64;
    assert_eq!(t.getopt(c1, SOL_SOCKET, 8), Ok(256 << 10));
    assert!(s1 >= 3, "accept: {s1}");
    assert_eq!(t.getopt(s1, SOL_SOCKET, 8), Ok(256 << 10), "the accepted connection");
    let c2 = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.connect(c2, &sin([127, 0, 0, 1], port)), 0);
    assert_eq!(t.getopt(c2, SOL_SOCKET, 8), Ok(TCP_BUF_DEFAULT as i32), "over the budget");
    assert_eq!(t.getopt(c2, SOL_SOCKET, 7), Ok(TCP_BUF_DEFAULT as i32));
    // What the app asks for, it gets, budget or not.
    let c3 = t.socket(AF_INET, SOCK_STREAM);
    assert_eq!(t.setopt(c3, SOL_SOCKET, 8, 200_000), 0);
    assert_eq!(t.getopt(c3, SOL_SOCKET, 8), Ok(400_000));
}

#[test]
fn unix_socketpairs() {
    let mut t = setup();
    assert_eq!(t.call(nr::SOCKETPAIR, &[AF_UNIX, SOCK_STREAM, 0, OPT]), 0);
    let (a, b) = (t.u32_at(OPT) as u64, t.u32_at(OPT + 4) as u64);
    assert_eq!(t.send(a, b"ping", 0), 4);
    t.put(BUF, b"more");
    assert_eq!(t.call(nr::WRITE, &[a, BUF, 4]), 4);
    assert_eq!(t.recv(b, 100, 0).unwrap(), b"pingmore", "a stream has no boundaries");
    // A blocked reader wakes when the other end writes.
    assert_eq!(t.sys(nr::READ, &[b, OUT, 10]), SyscallOutcome::Block { deadline: None });
    t.put(BUF, b"pong");
    assert_eq!(t.sys_as(2, nr::WRITE, &[a, BUF, 4]), SyscallOutcome::Return(4));
    assert_eq!(t.take_woken(), vec![1]);
    assert_eq!(t.call(nr::READ, &[b, OUT, 10]), 4);
    // Close: end of file, then EPIPE the other way.
    assert_eq!(t.call(nr::CLOSE, &[a]), 0);
    assert_eq!(t.recv(b, 10, 0).unwrap(), b"");
    assert_eq!(t.send(b, b"x", MSG_NOSIGNAL), err(Errno::EPIPE));
    // Datagram pairs keep boundaries; seqpacket too.
    for ty in [SOCK_DGRAM, SOCK_SEQPACKET] {
        assert_eq!(t.call(nr::SOCKETPAIR, &[AF_UNIX, ty | SOCK_NONBLOCK, 0, OPT]), 0);
        let (x, y) = (t.u32_at(OPT) as u64, t.u32_at(OPT + 4) as u64);
        assert_eq!(t.send(x, b"one", 0), 3);
        assert_eq!(t.send(x, b"two", 0), 3);
        assert_eq!(t.recv(y, 100, 0).unwrap(), b"one");
        assert_eq!(t.recv(y, 2, 0).unwrap(), b"tw");
        assert_eq!(t.recv(y, 100, 0), Err(err(Errno::EAGAIN)));
        assert_eq!(t.getopt(x, SOL_SOCKET, 3), Ok(ty as i32));
    }
    assert_eq!(t.call(nr::SOCKETPAIR, &[AF_INET, SOCK_STREAM, 0, OPT]), err(Errno::EOPNOTSUPP));
}

#[test]
fn unix_listen_connect_accept() {
    let mut t = setup();
    let l = t.socket(AF_UNIX, SOCK_STREAM);
    assert_eq!(t.call(nr::LISTEN, &[l, 4]), err(Errno::EINVAL), "unbound");
    assert_eq!(t.bind(l, &sun(b"/tmp/app.sock")), 0);
    assert_eq!(t.call(nr::LISTEN, &[l, 4]), 0);
    let c = t.socket(AF_UNIX, SOCK_STREAM);
    assert_eq!(t.connect(c, &sun(b"/tmp/nothing")), err(Errno::ENOENT));
    assert_eq!(t.connect(c, &sun(b"/tmp/app.sock")), 0);
    t.put(LEN, &128u32.to_le_bytes());
    let s = t.call(nr::ACCEPT4, &[l, ADDR, LEN, SOCK_NONBLOCK]);
    assert!(s >= 0);
    let s = s as u64;
    assert_eq!(t.u32_at(LEN), 2, "an unbound client has no name");
    assert_eq!(t.name(nr::GETPEERNAME, c), sun(b"/tmp/app.sock"));
    assert_eq!(t.send(c, b"hi", 0), 2);
    assert_eq!(t.recv(s, 10, 0).unwrap(), b"hi");
    assert_eq!(t.recv(s, 10, 0), Err(err(Errno::EAGAIN)), "accept4 made it non-blocking");
    // Abstract names; a second bind of a live name is EADDRINUSE.
    let l2 = t.socket(AF_UNIX, SOCK_STREAM);
    let mut abs = (AF_UNIX as u16).to_le_bytes().to_vec();
    abs.extend_from_slice(b"\0kiln-test");
    assert_eq!(t.bind(l2, &abs), 0);
    assert_eq!(t.call(nr::LISTEN, &[l2, 4]), 0);
    let l3 = t.socket(AF_UNIX, SOCK_STREAM);
    assert_eq!(t.bind(l3, &abs), err(Errno::EADDRINUSE));
    let c2 = t.socket(AF_UNIX, SOCK_STREAM);
    assert_eq!(t.connect(c2, &abs), 0);
    assert_eq!(t.name(nr::GETPEERNAME, c2), abs);
    // After the listener closes, connecting is refused.
    assert_eq!(t.call(nr::CLOSE, &[l2]), 0);
    let c3 = t.socket(AF_UNIX, SOCK_STREAM);
    assert_eq!(t.connect(c3, &abs), err(Errno::ECONNREFUSED));
}

#[test]
fn edge_triggered_epoll_sees_each_arrival_once() {
    const EPOLL_CREATE1: u64 = 291;
    const EPOLL_CTL: u64 = 233;
    const EPOLL_WAIT: u64 = 232;
    const EPOLLIN: u32 = 1;
    const EPOLLOUT: u32 = 4;
    const EPOLLET: u32 = 1 << 31;
    let mut t = setup();
    let (l, port) = t.listener(4);
    let (c, s) = t.tcp_pair(l, port);
    let ep = t.call(EPOLL_CREATE1, &[0]) as u64;
    // struct epoll_event is packed: events (u32), data (u64).
    let mut ev = (EPOLLIN | EPOLLOUT | EPOLLET).to_le_bytes().to_vec();
    ev.extend_from_slice(&s.to_le_bytes());
    t.put(OPT, &ev);
    assert_eq!(t.call(EPOLL_CTL, &[ep, 1, s, OPT]), 0);
    let wait = |t: &mut T| -> u32 {
        let n = t.call(EPOLL_WAIT, &[ep, OUT, 4, 0]);
        if n == 0 { 0 } else { u32::from_le_bytes(t.get(OUT, 4).try_into().unwrap()) }
    };
    assert_eq!(wait(&mut t), EPOLLOUT, "writable at first, nothing to read");
    assert_eq!(wait(&mut t), 0, "edge-triggered: reported once");
    assert_eq!(t.send(c, b"one", 0), 3);
    assert_eq!(wait(&mut t) & EPOLLIN, EPOLLIN, "data arrived");
    assert_eq!(wait(&mut t), 0);
    assert_eq!(t.send(c, b"two", 0), 3);
    assert_eq!(wait(&mut t) & EPOLLIN, EPOLLIN, "more data: a new edge though nothing was read");
    assert_eq!(t.recv(s, 10, 0).unwrap(), b"onetwo");
    assert_eq!(wait(&mut t) & EPOLLIN, 0, "reading is not an input edge");
}

//! Host tests of poll, ppoll, select, pselect6 and epoll, driving `Process` as the kernel
//! does: each syscall run for a tid, `Block` outcomes parked, `take_woken`/`time_out` and
//! re-runs, the fake clock moved by hand.

use alloc::vec;
use alloc::vec::Vec;

use super::signal_tests::{Frame, Fx, MEM, SIGUSR1, STACK_TOP, bit, fxsave_image, regs_at, setup};
use crate::errno::Errno;
use crate::platform::Platform;
use crate::process::{SyscallOutcome, Tid};

mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const POLL: u64 = 7;
    pub const SELECT: u64 = 23;
    pub const DUP: u64 = 32;
    pub const FCNTL: u64 = 72;
    pub const TKILL: u64 = 200;
    pub const EPOLL_CREATE: u64 = 213;
    pub const EPOLL_WAIT: u64 = 232;
    pub const EPOLL_CTL: u64 = 233;
    pub const PSELECT6: u64 = 270;
    pub const PPOLL: u64 = 271;
    pub const EPOLL_PWAIT: u64 = 281;
    pub const TIMERFD_CREATE: u64 = 283;
    pub const TIMERFD_SETTIME: u64 = 286;
    pub const EVENTFD2: u64 = 290;
    pub const EPOLL_CREATE1: u64 = 291;
    pub const PIPE2: u64 = 293;
    pub const EPOLL_PWAIT2: u64 = 441;
}

const POLLIN: u32 = 0x1;
const POLLPRI: u32 = 0x2;
const POLLOUT: u32 = 0x4;
const POLLERR: u32 = 0x8;
const POLLHUP: u32 = 0x10;
const POLLNVAL: u32 = 0x20;
const POLLRDNORM: u32 = 0x40;
const EPOLLRDHUP: u32 = 0x2000;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLET: u32 = 1 << 31;
const ADD: u64 = 1;
const DEL: u64 = 2;
const MOD: u64 = 3;
const O_NONBLOCK: u64 = 0o4000;
const O_CLOEXEC: u64 = 0o2000000;

const DATA: u64 = MEM + 0x3000;
const PFDS: u64 = MEM + 0x1000;
const EVENTS: u64 = MEM + 0x1400;
const SETS: u64 = MEM + 0x1800;
const TIME: u64 = MEM + 0x2000;
const SIGSET: u64 = MEM + 0x2100;
const CTL_EVENT: u64 = MEM + 0x2200;
const FDS: u64 = MEM + 0x2400;
const PATH: u64 = MEM + 0x2500;
const MS: u64 = 1_000_000;

fn err(e: Errno) -> i64 {
    e.as_return()
}

impl Fx {
    fn call(&mut self, nr: u64, args: &[u64]) -> i64 {
        self.ret(1, nr, args)
    }
    fn now(&self) -> u64 {
        self.fake.monotonic_ns()
    }
    fn advance(&self, ns: u64) {
        self.fake.now_ns.set(self.fake.now_ns.get() + ns);
    }
    fn pipe(&mut self, flags: u64) -> (u64, u64) {
        assert_eq!(self.call(nr::PIPE2, &[FDS, flags]), 0);
        (u64::from(self.u32_at(FDS)), u64::from(self.u32_at(FDS + 4)))
    }
    fn write_bytes(&mut self, tid: Tid, fd: u64, bytes: &[u8]) -> i64 {
        self.put(DATA, bytes);
        self.ret(tid, nr::WRITE, &[fd, DATA, bytes.len() as u64])
    }
    fn read_n(&mut self, fd: u64, n: u64) -> i64 {
        self.call(nr::READ, &[fd, DATA, n])
    }
    fn eventfd(&mut self, flags: u64) -> u64 {
        self.call(nr::EVENTFD2, &[0, flags]) as u64
    }
    fn signal_eventfd(&mut self, tid: Tid, fd: u64, v: u64) {
        self.put(DATA + 0x100, &v.to_le_bytes());
        assert_eq!(self.ret(tid, nr::WRITE, &[fd, DATA + 0x100, 8]), 8);
    }
    /// A monotonic timerfd that expires `ns` from now, once.
    fn timerfd_in(&mut self, ns: u64) -> u64 {
        let tf = self.call(nr::TIMERFD_CREATE, &[1, 0]) as u64;
        let spec = [
            0,
            0,
            (ns / 1_000_000_000) as i64,
            (ns % 1_000_000_000) as i64,
        ];
        self.put(TIME + 0x40, &spec.map(i64::to_le_bytes).concat());
        assert_eq!(self.call(nr::TIMERFD_SETTIME, &[tf, 0, TIME + 0x40, 0]), 0);
        tf
    }
    fn set_pollfds(&self, fds: &[(i32, u32)]) {
        let b: Vec<u8> = fds
            .iter()
            .flat_map(|&(fd, ev)| {
                let mut e = fd.to_le_bytes().to_vec();
                e.extend_from_slice(&(ev as u16).to_le_bytes());
                e.extend_from_slice(&0xffffu16.to_le_bytes()); // revents: overwritten
                e
            })
            .collect();
        self.put(PFDS, &b);
    }
    fn revents(&self, i: u64) -> u32 {
        u32::from(u16::from_le_bytes(
            self.get(PFDS + i * 8 + 6, 2).try_into().unwrap(),
        ))
    }
    fn poll(&mut self, tid: Tid, n: u64, timeout: i64) -> SyscallOutcome {
        self.sys(tid, nr::POLL, &[PFDS, n, timeout as u64])
    }
    fn epoll(&mut self) -> u64 {
        let ep = self.call(nr::EPOLL_CREATE1, &[0]);
        assert!(ep >= 0, "epoll_create1: {ep}");
        ep as u64
    }
    fn ctl(&mut self, ep: u64, op: u64, fd: u64, events: u32, data: u64) -> i64 {
        let mut b = events.to_le_bytes().to_vec();
        b.extend_from_slice(&data.to_le_bytes());
        self.put(CTL_EVENT, &b);
        self.call(nr::EPOLL_CTL, &[ep, op, fd, CTL_EVENT])
    }
    fn wait_sys(&mut self, tid: Tid, ep: u64, max: u64, timeout: i64) -> SyscallOutcome {
        self.sys(tid, nr::EPOLL_WAIT, &[ep, EVENTS, max, timeout as u64])
    }
    /// epoll_wait that must return: the (events, data) it reported.
    fn wait(&mut self, ep: u64, max: u64, timeout: i64) -> Vec<(u32, u64)> {
        match self.wait_sys(1, ep, max, timeout) {
            SyscallOutcome::Return(n) => {
                assert!(n >= 0, "epoll_wait: {n}");
                self.events(n as usize)
            }
            other => panic!("epoll_wait did not return: {other:?}"),
        }
    }
    fn events(&self, n: usize) -> Vec<(u32, u64)> {
        let b = self.get(EVENTS, n * 12);
        b.chunks_exact(12)
            .map(|c| {
                (
                    u32::from_le_bytes(c[..4].try_into().unwrap()),
                    u64::from_le_bytes(c[4..].try_into().unwrap()),
                )
            })
            .collect()
    }
    fn open(&mut self, path: &str) -> u64 {
        let mut b = path.as_bytes().to_vec();
        b.push(0);
        self.put(PATH, &b);
        let fd = self.call(nr::OPEN, &[PATH, 0, 0]);
        assert!(fd >= 0, "open {path}: {fd}");
        fd as u64
    }
    fn set_timespec(&self, addr: u64, ns: u64) {
        let ts = [(ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64];
        self.put(addr, &ts.map(i64::to_le_bytes).concat());
    }
    fn i64s(&self, addr: u64) -> (i64, i64) {
        (self.u64_at(addr) as i64, self.u64_at(addr + 8) as i64)
    }
}

// ---- poll -----------------------------------------------------------------------------------

#[test]
fn poll_reports_readiness_nval_and_hangup() {
    let mut t = setup();
    let (r, w) = t.pipe(0);
    t.set_pollfds(&[
        (r as i32, POLLIN),
        (w as i32, POLLOUT),
        (-1, POLLIN),
        (99, POLLIN),
    ]);
    assert_eq!(t.poll(1, 4, 0), SyscallOutcome::Return(2));
    assert_eq!(
        [t.revents(0), t.revents(1), t.revents(2), t.revents(3)],
        [0, POLLOUT, 0, POLLNVAL],
        "revents of every entry are written, negative fds are skipped"
    );
    t.write_bytes(1, w, b"hi");
    t.set_pollfds(&[(r as i32, POLLIN | POLLRDNORM | POLLPRI)]);
    assert_eq!(t.poll(1, 1, 0), SyscallOutcome::Return(1));
    assert_eq!(
        t.revents(0),
        POLLIN | POLLRDNORM,
        "only what was asked, with RDNORM"
    );
    // The writer closes: HUP is reported even though nobody asked for it.
    t.read_n(r, 10);
    t.call(nr::CLOSE, &[w]);
    t.set_pollfds(&[(r as i32, 0)]);
    assert_eq!(t.poll(1, 1, 0), SyscallOutcome::Return(1));
    assert_eq!(t.revents(0), POLLHUP);
    // Errors: too many fds, unreadable array.
    assert_eq!(t.call(nr::POLL, &[PFDS, 1025, 0]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::POLL, &[0x4000_0000, 1, 0]), err(Errno::EFAULT));
    // No fds at all with timeout 0: nothing to wait for.
    assert_eq!(t.call(nr::POLL, &[0, 0, 0]), 0);
}

#[test]
fn rust_std_startup_poll_of_fds_0_to_2() {
    // std polls fds 0-2 with events 0 and timeout 0, and aborts if poll fails; it reopens
    // /dev/null for any with POLLNVAL.
    let mut t = setup();
    t.set_pollfds(&[(0, 0), (1, 0), (2, 0)]);
    assert_eq!(t.poll(1, 3, 0), SyscallOutcome::Return(0));
    assert_eq!([t.revents(0), t.revents(1), t.revents(2)], [0, 0, 0]);
    t.call(nr::CLOSE, &[1]);
    assert_eq!(t.poll(1, 3, 0), SyscallOutcome::Return(1));
    assert_eq!(t.revents(1), POLLNVAL);
}

#[test]
fn poll_blocks_until_a_pipe_write_from_another_thread() {
    let mut t = setup();
    let (r, w) = t.pipe(0);
    let c = t.spawn();
    t.set_pollfds(&[(r as i32, POLLIN)]);
    assert_eq!(t.poll(1, 1, -1), SyscallOutcome::Block { deadline: None });
    // A write to another pipe wakes nobody.
    let (_r2, w2) = t.pipe(0);
    t.write_bytes(c, w2, b"x");
    assert!(t.p.take_woken().is_empty());
    assert_eq!(t.write_bytes(c, w, b"abc"), 3);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.poll(1, 1, -1), SyscallOutcome::Return(1));
    assert_eq!(t.revents(0), POLLIN);
}

#[test]
fn poll_times_out_with_the_fake_clock() {
    let mut t = setup();
    let (r, _w) = t.pipe(0);
    t.set_pollfds(&[(r as i32, POLLIN)]);
    let start = t.now();
    assert_eq!(
        t.poll(1, 1, 50),
        SyscallOutcome::Block {
            deadline: Some(start + 50 * MS)
        }
    );
    // A spurious wake before the deadline: it blocks again, keeping the same deadline.
    t.advance(20 * MS);
    let key =
        t.p.fs
            .fds
            .get(r as i32)
            .unwrap()
            .desc
            .file
            .wait_key()
            .unwrap();
    t.p.notify(key);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(
        t.poll(1, 1, 50),
        SyscallOutcome::Block {
            deadline: Some(start + 50 * MS)
        }
    );
    t.advance(30 * MS);
    assert!(t.p.time_out(1));
    assert_eq!(t.poll(1, 1, 50), SyscallOutcome::Return(0));
    assert_eq!(t.revents(0), 0);
    assert_eq!(t.p.threads[&1].deadline, None, "the call is over");
}

#[test]
fn poll_wakes_at_a_timerfd_expiry_before_its_own_timeout() {
    let mut t = setup();
    let start = t.now();
    let tf = t.timerfd_in(30 * MS);
    t.set_pollfds(&[(tf as i32, POLLIN)]);
    assert_eq!(
        t.poll(1, 1, 1000),
        SyscallOutcome::Block {
            deadline: Some(start + 30 * MS)
        }
    );
    t.advance(30 * MS);
    assert!(t.p.time_out(1));
    assert_eq!(t.poll(1, 1, 1000), SyscallOutcome::Return(1));
    assert_eq!(t.revents(0), POLLIN);
    assert_eq!(t.read_n(tf, 8), 8);
    // Its own timeout earlier than the timer: that one.
    let start = t.now();
    let tf2 = t.timerfd_in(300 * MS);
    t.set_pollfds(&[(tf2 as i32, POLLIN)]);
    assert_eq!(
        t.poll(1, 1, 100),
        SyscallOutcome::Block {
            deadline: Some(start + 100 * MS)
        }
    );
}

#[test]
fn poll_interrupted_by_a_signal() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    let (r, w) = t.pipe(0);
    let c = t.spawn();
    t.set_pollfds(&[(r as i32, POLLIN)]);
    assert_eq!(
        t.poll(1, 1, 1000),
        SyscallOutcome::Block {
            deadline: Some(t.now() + 1000 * MS)
        }
    );
    assert_eq!(t.ret(c, nr::TKILL, &[1, SIGUSR1]), 0);
    assert_eq!(t.p.take_woken(), vec![1]);
    // poll: ERESTART_RESTARTBLOCK, EINTR once the handler runs.
    assert_eq!(t.poll(1, 1, 1000), SyscallOutcome::Return(-516));
    let mut regs = regs_at(STACK_TOP - 0x1000, 0x40_0102, (-516i64) as u64);
    assert!(t.p.signal_pending(1));
    t.deliver(1, &mut regs, &fxsave_image(), Some(nr::POLL));
    assert_eq!(Frame::read(&t, regs.rsp).rax() as i64, err(Errno::EINTR));

    // A ready fd wins over a pending signal.
    t.set_pollfds(&[(r as i32, POLLIN)]);
    assert_eq!(t.poll(1, 1, -1), SyscallOutcome::Block { deadline: None });
    t.write_bytes(c, w, b"x");
    assert_eq!(t.ret(c, nr::TKILL, &[1, SIGUSR1]), 0);
    t.p.take_woken();
    assert_eq!(t.poll(1, 1, -1), SyscallOutcome::Return(1));
}

#[test]
fn ppoll_writes_back_the_time_left_and_restores_its_mask() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    t.sigprocmask(1, 0, bit(SIGUSR1)); // SIG_BLOCK
    let (r, w) = t.pipe(0);
    let c = t.spawn();
    t.set_pollfds(&[(r as i32, POLLIN)]);
    t.set_timespec(TIME, 2_000 * MS);
    t.put(SIGSET, &0u64.to_le_bytes());
    let args = [PFDS, 1, TIME, SIGSET, 8];
    let start = t.now();
    assert_eq!(
        t.sys(1, nr::PPOLL, &args),
        SyscallOutcome::Block {
            deadline: Some(start + 2_000 * MS)
        }
    );
    assert_eq!(
        t.p.threads[&1].sig.mask, 0,
        "the temporary mask is in force while it waits"
    );
    t.advance(500 * MS);
    t.write_bytes(c, w, b"x");
    t.p.take_woken();
    assert_eq!(t.sys(1, nr::PPOLL, &args), SyscallOutcome::Return(1));
    assert_eq!(t.i64s(TIME), (1, 500_000_000), "1.5 s left");
    assert_eq!(t.p.threads[&1].sig.mask, bit(SIGUSR1), "mask restored");
    assert_eq!(t.p.threads[&1].sig.saved_mask, None);
    t.read_n(r, 1);

    // A signal blocked outside the call but let through by the temporary mask interrupts
    // it: ERESTARTNOHAND, and the handler's frame saves the caller's mask.
    assert_eq!(t.ret(c, nr::TKILL, &[1, SIGUSR1]), 0);
    assert!(t.p.take_woken().is_empty(), "blocked: nobody to wake");
    t.set_timespec(TIME, 2_000 * MS);
    let outcome = t.sys(1, nr::PPOLL, &args);
    assert!(
        matches!(outcome, SyscallOutcome::Block { .. }),
        "{outcome:?}"
    );
    assert_eq!(t.p.take_woken(), vec![1], "interrupted as soon as it parks");
    t.advance(250 * MS);
    assert_eq!(t.sys(1, nr::PPOLL, &args), SyscallOutcome::Return(-514));
    assert_eq!(
        t.i64s(TIME),
        (1, 750_000_000),
        "time left written back for the restart"
    );
    let mut regs = regs_at(STACK_TOP - 0x1000, 0x40_0102, (-514i64) as u64);
    t.deliver(1, &mut regs, &fxsave_image(), Some(nr::PPOLL));
    let f = Frame::read(&t, regs.rsp);
    assert_eq!(f.rax() as i64, err(Errno::EINTR));
    assert_eq!(
        f.sigmask(),
        bit(SIGUSR1),
        "rt_sigreturn puts the caller's mask back"
    );

    // Argument errors.
    assert_eq!(
        t.call(nr::PPOLL, &[PFDS, 1, TIME, SIGSET, 4]),
        err(Errno::EINVAL)
    );
    t.put(
        TIME,
        &[0i64.to_le_bytes(), 1_000_000_000i64.to_le_bytes()].concat(),
    );
    assert_eq!(
        t.call(nr::PPOLL, &[PFDS, 1, TIME, 0, 0]),
        err(Errno::EINVAL)
    );
    assert_eq!(t.p.threads[&1].sig.saved_mask, None);
}

// ---- select -----------------------------------------------------------------------------------

fn fdset(fds: &[u64]) -> [u8; 128] {
    let mut s = [0u8; 128];
    for &fd in fds {
        s[(fd / 8) as usize] |= 1 << (fd % 8);
    }
    s
}

fn bits(b: &[u8]) -> Vec<u64> {
    (0..b.len() as u64 * 8)
        .filter(|&i| b[(i / 8) as usize] & (1 << (i % 8)) != 0)
        .collect()
}

#[test]
fn select_sets_edges_and_errors() {
    let mut t = setup();
    let (r, w) = t.pipe(0);
    let (r2, _w2) = t.pipe(0);
    let (rs, ws, es) = (SETS, SETS + 128, SETS + 256);
    t.put(rs, &fdset(&[r, r2]));
    t.put(ws, &fdset(&[w]));
    t.put(es, &fdset(&[r]));
    let nfds = r2.max(w) + 1;
    assert_eq!(t.call(nr::SELECT, &[nfds, rs, ws, es, 0]), 1);
    assert_eq!(bits(&t.get(rs, 8)), Vec::<u64>::new());
    assert_eq!(bits(&t.get(ws, 8)), vec![w]);
    assert_eq!(bits(&t.get(es, 8)), Vec::<u64>::new());
    t.write_bytes(1, w, b"x");
    t.put(rs, &fdset(&[r, r2]));
    t.put(ws, &fdset(&[w]));
    assert_eq!(
        t.call(nr::SELECT, &[nfds, rs, ws, 0, 0]),
        2,
        "each set bit counts"
    );
    assert_eq!(bits(&t.get(rs, 8)), vec![r]);
    // Only the words covering nfds are read and written: bits beyond are left alone.
    t.put(rs, &fdset(&[r, 70]));
    assert_eq!(t.call(nr::SELECT, &[r + 1, rs, 0, 0, 0]), 1);
    assert_eq!(bits(&t.get(rs, 16)), vec![r, 70]);
    // A set bit for a closed fd: EBADF; negative nfds: EINVAL.
    t.put(rs, &fdset(&[40]));
    assert_eq!(t.call(nr::SELECT, &[41, rs, 0, 0, 0]), err(Errno::EBADF));
    assert_eq!(
        t.call(nr::SELECT, &[(-1i64) as u64, rs, 0, 0, 0]),
        err(Errno::EINVAL)
    );
    // nfds above FD_SETSIZE is clipped as Linux clips it to its fd table: only the first
    // 1024 bits (RLIMIT_NOFILE) are read, so a 128-byte set at the end of memory works.
    let last = MEM + 4 * 4096 - 128;
    t.put(last, &fdset(&[r]));
    assert_eq!(t.call(nr::SELECT, &[1_000_000, last, 0, 0, 0]), 1);
    // Unreadable set: EFAULT.
    assert_eq!(
        t.call(nr::SELECT, &[4, 0x4000_0000, 0, 0, 0]),
        err(Errno::EFAULT)
    );
}

#[test]
fn select_timeouts_round_and_write_back() {
    let mut t = setup();
    let (r, w) = t.pipe(0);
    let c = t.spawn();
    let rs = SETS;
    // 1 s + 1,500,000 us: tv_usec past a second is folded in (Linux), 2.5 s in all.
    t.put(
        TIME,
        &[1i64.to_le_bytes(), 1_500_000i64.to_le_bytes()].concat(),
    );
    t.put(rs, &fdset(&[r]));
    let args = [r + 1, rs, 0, 0, TIME];
    let start = t.now();
    assert_eq!(
        t.sys(1, nr::SELECT, &args),
        SyscallOutcome::Block {
            deadline: Some(start + 2_500 * MS)
        }
    );
    t.advance(1_000 * MS + 1234);
    t.write_bytes(c, w, b"x");
    t.p.take_woken();
    assert_eq!(t.sys(1, nr::SELECT, &args), SyscallOutcome::Return(1));
    assert_eq!(
        t.i64s(TIME),
        (1, 499_998),
        "time left, in whole microseconds"
    );
    t.read_n(r, 1);
    // Timing out zeroes the sets and the timeval.
    t.put(rs, &fdset(&[r]));
    assert!(matches!(
        t.sys(1, nr::SELECT, &args),
        SyscallOutcome::Block { .. }
    ));
    t.advance(2_000 * MS);
    assert!(t.p.time_out(1));
    assert_eq!(t.sys(1, nr::SELECT, &args), SyscallOutcome::Return(0));
    assert_eq!(t.i64s(TIME), (0, 0));
    assert_eq!(bits(&t.get(rs, 8)), Vec::<u64>::new());
    // A zero timeout polls and writes nothing back; NULL waits forever.
    t.put(TIME, &[0i64.to_le_bytes(), 0i64.to_le_bytes()].concat());
    t.put(rs, &fdset(&[r]));
    assert_eq!(t.call(nr::SELECT, &args), 0);
    t.put(rs, &fdset(&[r]));
    assert_eq!(
        t.sys(1, nr::SELECT, &[r + 1, rs, 0, 0, 0]),
        SyscallOutcome::Block { deadline: None }
    );
    t.p.end_wait(1, crate::process::WakeReason::Woken);
    t.p.take_woken();
    // Negative microseconds: EINVAL.
    t.put(TIME, &[5i64.to_le_bytes(), (-1i64).to_le_bytes()].concat());
    assert_eq!(t.call(nr::SELECT, &args), err(Errno::EINVAL));
}

#[test]
fn pselect6_takes_a_sigmask_and_a_timespec() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    t.sigprocmask(1, 0, bit(SIGUSR1));
    let (r, _w) = t.pipe(0);
    let rs = SETS;
    t.put(rs, &fdset(&[r]));
    t.set_timespec(TIME, 100 * MS);
    t.put(SIGSET, &0u64.to_le_bytes());
    t.put(
        SIGSET + 8,
        &[SIGSET.to_le_bytes(), 8u64.to_le_bytes()].concat(),
    );
    let args = [r + 1, rs, 0, 0, TIME, SIGSET + 8];
    let start = t.now();
    assert_eq!(
        t.sys(1, nr::PSELECT6, &args),
        SyscallOutcome::Block {
            deadline: Some(start + 100 * MS)
        }
    );
    assert_eq!(t.p.threads[&1].sig.mask, 0);
    t.advance(100 * MS);
    assert!(t.p.time_out(1));
    assert_eq!(t.sys(1, nr::PSELECT6, &args), SyscallOutcome::Return(0));
    assert_eq!(t.i64s(TIME), (0, 0));
    assert_eq!(t.p.threads[&1].sig.mask, bit(SIGUSR1));
    // A bad sigset size: EINVAL, mask untouched.
    t.put(
        SIGSET + 8,
        &[SIGSET.to_le_bytes(), 16u64.to_le_bytes()].concat(),
    );
    t.set_timespec(TIME, 0);
    assert_eq!(t.call(nr::PSELECT6, &args), err(Errno::EINVAL));
    assert_eq!(t.p.threads[&1].sig.mask, bit(SIGUSR1));
    // NULL sigmask in the struct: no mask change.
    t.put(
        SIGSET + 8,
        &[0u64.to_le_bytes(), 0u64.to_le_bytes()].concat(),
    );
    assert_eq!(t.call(nr::PSELECT6, &args), 0);
}

// ---- epoll ----------------------------------------------------------------------------------

#[test]
fn epoll_create_and_ctl_errors() {
    let mut t = setup();
    assert_eq!(t.call(nr::EPOLL_CREATE, &[0]), err(Errno::EINVAL));
    let ep = t.call(nr::EPOLL_CREATE, &[1]) as u64;
    assert_eq!(t.call(nr::FCNTL, &[ep, 1, 0]), 0, "no FD_CLOEXEC");
    assert_eq!(t.call(nr::EPOLL_CREATE1, &[1]), err(Errno::EINVAL));
    let ep1 = t.call(nr::EPOLL_CREATE1, &[O_CLOEXEC]) as u64;
    assert_eq!(t.call(nr::FCNTL, &[ep1, 1, 0]), 1, "EPOLL_CLOEXEC");
    let (r, w) = t.pipe(0);
    assert_eq!(t.ctl(ep, ADD, r, POLLIN, 1), 0);
    assert_eq!(t.ctl(ep, ADD, r, POLLIN, 1), err(Errno::EEXIST));
    assert_eq!(t.ctl(ep, MOD, w, POLLOUT, 1), err(Errno::ENOENT));
    assert_eq!(t.ctl(ep, DEL, w, 0, 0), err(Errno::ENOENT));
    assert_eq!(t.ctl(ep, 4, r, POLLIN, 1), err(Errno::EINVAL), "unknown op");
    assert_eq!(t.ctl(99, ADD, r, POLLIN, 1), err(Errno::EBADF));
    assert_eq!(t.ctl(ep, ADD, 99, POLLIN, 1), err(Errno::EBADF));
    assert_eq!(
        t.ctl(r, ADD, w, POLLIN, 1),
        err(Errno::EINVAL),
        "not an epoll"
    );
    assert_eq!(t.ctl(ep, ADD, ep, POLLIN, 1), err(Errno::EINVAL), "itself");
    // Files without poll support: EPERM (regular files, /dev/null).
    let f = t.open("/etc/hostname");
    assert_eq!(t.ctl(ep, ADD, f, POLLIN, 1), err(Errno::EPERM));
    let null = t.open("/dev/null");
    assert_eq!(t.ctl(ep, ADD, null, POLLIN, 1), err(Errno::EPERM));
    // EPOLLEXCLUSIVE: accepted on ADD, not with MOD or other flags, not for epoll targets.
    assert_eq!(t.ctl(ep, ADD, w, POLLOUT | EPOLLEXCLUSIVE, 2), 0);
    assert_eq!(t.ctl(ep, MOD, w, POLLOUT, 2), err(Errno::EINVAL));
    assert_eq!(
        t.ctl(ep, MOD, r, POLLIN | EPOLLEXCLUSIVE, 2),
        err(Errno::EINVAL)
    );
    let e = t.eventfd(0);
    assert_eq!(
        t.ctl(ep, ADD, e, POLLIN | EPOLLONESHOT | EPOLLEXCLUSIVE, 2),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.ctl(ep1, ADD, ep, POLLIN | EPOLLEXCLUSIVE, 2),
        err(Errno::EINVAL)
    );
    // DEL ignores the event pointer.
    assert_eq!(t.call(nr::EPOLL_CTL, &[ep, DEL, r, 0]), 0);
    assert_eq!(
        t.call(nr::EPOLL_CTL, &[ep, ADD, r, 0x4000_0000]),
        err(Errno::EFAULT)
    );
}

#[test]
fn epoll_wait_argument_errors() {
    let mut t = setup();
    let ep = t.epoll();
    let (r, _w) = t.pipe(0);
    assert_eq!(
        t.call(nr::EPOLL_WAIT, &[ep, EVENTS, 0, 0]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::EPOLL_WAIT, &[ep, EVENTS, (-1i64) as u64, 0]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::EPOLL_WAIT, &[ep, 0x4000_0000, 1, 0]),
        err(Errno::EFAULT)
    );
    assert_eq!(
        t.call(nr::EPOLL_WAIT, &[99, EVENTS, 1, 0]),
        err(Errno::EBADF)
    );
    assert_eq!(
        t.call(nr::EPOLL_WAIT, &[r, EVENTS, 1, 0]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::EPOLL_PWAIT, &[ep, EVENTS, 1, 0, SIGSET, 4]),
        err(Errno::EINVAL)
    );
    t.put(TIME, &[0i64.to_le_bytes(), (-5i64).to_le_bytes()].concat());
    assert_eq!(
        t.call(nr::EPOLL_PWAIT2, &[ep, EVENTS, 1, TIME, 0, 0]),
        err(Errno::EINVAL)
    );
    // Nothing watched, timeout 0: 0 at once.
    assert!(t.wait(ep, 8, 0).is_empty());
}

#[test]
fn level_and_edge_triggering_after_a_partial_read() {
    let mut t = setup();
    let (r, w) = t.pipe(O_NONBLOCK);
    let lt = t.epoll();
    let et = t.epoll();
    assert_eq!(t.ctl(lt, ADD, r, POLLIN, 0x11), 0);
    assert_eq!(t.ctl(et, ADD, r, POLLIN | EPOLLET, 0x22), 0);
    assert!(t.wait(lt, 8, 0).is_empty());
    assert!(t.wait(et, 8, 0).is_empty());
    t.write_bytes(1, w, b"0123456789");
    assert_eq!(t.wait(lt, 8, 0), vec![(POLLIN, 0x11)]);
    assert_eq!(t.wait(et, 8, 0), vec![(POLLIN, 0x22)]);
    assert!(t.wait(et, 8, 0).is_empty(), "no new event");
    // A partial read: level keeps reporting, edge does not.
    assert_eq!(t.read_n(r, 3), 3);
    assert_eq!(t.wait(lt, 8, 0), vec![(POLLIN, 0x11)]);
    assert!(t.wait(et, 8, 0).is_empty(), "a partial read is not an edge");
    // More data is a new event even though the pipe was readable all along.
    t.write_bytes(1, w, b"x");
    assert_eq!(t.wait(et, 8, 0), vec![(POLLIN, 0x22)]);
    assert!(t.wait(et, 8, 0).is_empty());
    // Drained: neither reports; new data after EAGAIN is an edge again.
    assert_eq!(t.read_n(r, 100), 8);
    assert_eq!(t.read_n(r, 100), err(Errno::EAGAIN));
    assert!(t.wait(lt, 8, 0).is_empty());
    assert!(t.wait(et, 8, 0).is_empty());
    t.write_bytes(1, w, b"y");
    assert_eq!(t.wait(et, 8, 0), vec![(POLLIN, 0x22)]);
    // MOD re-arms an edge-triggered item: reported again if ready.
    assert_eq!(t.ctl(et, MOD, r, POLLIN | EPOLLET, 0x23), 0);
    assert_eq!(t.wait(et, 8, 0), vec![(POLLIN, 0x23)]);
    assert!(t.wait(et, 8, 0).is_empty());
    // The writer's side: edge-triggered EPOLLOUT reports once, not after each write.
    let etw = t.epoll();
    assert_eq!(t.ctl(etw, ADD, w, POLLOUT | EPOLLET, 0x33), 0);
    assert_eq!(t.wait(etw, 8, 0), vec![(POLLOUT, 0x33)]);
    t.write_bytes(1, w, b"z");
    assert!(
        t.wait(etw, 8, 0).is_empty(),
        "a write does not make the writer's edge"
    );
    // Hangup is an event for an edge-triggered reader.
    t.call(nr::CLOSE, &[w]);
    assert_eq!(t.wait(et, 8, 0), vec![(POLLIN | POLLHUP, 0x23)]);
}

#[test]
fn oneshot_reports_once_until_rearmed() {
    let mut t = setup();
    let e = t.eventfd(O_NONBLOCK);
    let ep = t.epoll();
    assert_eq!(t.ctl(ep, ADD, e, POLLIN | EPOLLONESHOT, 7), 0);
    t.signal_eventfd(1, e, 1);
    assert_eq!(t.wait(ep, 8, 0), vec![(POLLIN, 7)]);
    assert!(t.wait(ep, 8, 0).is_empty(), "disarmed although still ready");
    t.signal_eventfd(1, e, 1);
    assert!(t.wait(ep, 8, 0).is_empty(), "new events do not rearm it");
    assert_eq!(t.ctl(ep, MOD, e, POLLIN | EPOLLONESHOT, 8), 0);
    assert_eq!(t.wait(ep, 8, 0), vec![(POLLIN, 8)]);
    assert!(t.wait(ep, 8, 0).is_empty());
    // Still in the interest list: ADD again is EEXIST, DEL works.
    assert_eq!(t.ctl(ep, ADD, e, POLLIN, 8), err(Errno::EEXIST));
    assert_eq!(t.ctl(ep, DEL, e, 0, 0), 0);
}

#[test]
fn errors_and_hangups_are_always_reported_and_data_is_verbatim() {
    let mut t = setup();
    let (r, w) = t.pipe(0);
    let ep = t.epoll();
    let data = 0xdead_beef_cafe_f00d;
    assert_eq!(t.ctl(ep, ADD, w, 0, data), 0);
    assert!(t.wait(ep, 8, 0).is_empty(), "writable, but not asked for");
    t.call(nr::CLOSE, &[r]);
    assert_eq!(t.wait(ep, 8, 0), vec![(POLLERR, data)]);
    // EPOLLRDHUP is accepted (pipes never report it, as on Linux).
    let (r2, w2) = t.pipe(0);
    assert_eq!(t.ctl(ep, ADD, r2, POLLIN | EPOLLRDHUP, 5), 0);
    t.call(nr::CLOSE, &[w2]);
    let got = t.wait(ep, 8, 0);
    assert!(got.contains(&(POLLHUP, 5)), "{got:?}");
}

#[test]
fn closing_the_last_fd_drops_the_item() {
    let mut t = setup();
    let (r, w) = t.pipe(0);
    let ep = t.epoll();
    assert_eq!(t.ctl(ep, ADD, r, POLLIN, 1), 0);
    let r2 = t.call(nr::DUP, &[r]) as u64;
    t.write_bytes(1, w, b"x");
    // Closing one of two fds keeps the description open: still reported (as Linux).
    t.call(nr::CLOSE, &[r]);
    assert_eq!(t.wait(ep, 8, 0), vec![(POLLIN, 1)]);
    assert_eq!(t.ctl(ep, DEL, r, 0, 0), err(Errno::EBADF));
    // The last one: the item is gone.
    t.call(nr::CLOSE, &[r2]);
    assert!(t.wait(ep, 8, 0).is_empty());
}

#[test]
fn short_maxevents_rotates_through_ready_items() {
    let mut t = setup();
    let ep = t.epoll();
    let fds: Vec<u64> = (0..3).map(|_| t.eventfd(0)).collect();
    for (i, &fd) in fds.iter().enumerate() {
        assert_eq!(t.ctl(ep, ADD, fd, POLLIN, i as u64), 0);
        t.signal_eventfd(1, fd, 1);
    }
    let mut seen: Vec<u64> = (0..3).map(|_| t.wait(ep, 1, 0)[0].1).collect();
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2], "each ready item gets its turn");
    assert_eq!(t.wait(ep, 8, 0).len(), 3);
}

#[test]
fn nested_epoll_and_loops() {
    let mut t = setup();
    let (r, w) = t.pipe(0);
    let inner = t.epoll();
    let outer = t.epoll();
    assert_eq!(t.ctl(inner, ADD, r, POLLIN, 1), 0);
    assert_eq!(t.ctl(outer, ADD, inner, POLLIN, 2), 0);
    assert!(t.wait(outer, 8, 0).is_empty());
    // The epoll fd is itself pollable.
    t.set_pollfds(&[(inner as i32, POLLIN)]);
    assert_eq!(t.poll(1, 1, 0), SyscallOutcome::Return(0));
    // A blocked wait on the outer one wakes for a write to the innermost file.
    let c = t.spawn();
    assert_eq!(
        t.wait_sys(1, outer, 8, -1),
        SyscallOutcome::Block { deadline: None }
    );
    t.write_bytes(c, w, b"x");
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.wait(outer, 8, -1), vec![(POLLIN, 2)]);
    assert_eq!(t.poll(1, 1, 0), SyscallOutcome::Return(1));
    assert_eq!(t.revents(0), POLLIN);
    assert_eq!(t.wait(inner, 8, 0), vec![(POLLIN, 1)]);
    // Loops: outer already watches inner.
    assert_eq!(t.ctl(inner, ADD, outer, POLLIN, 3), err(Errno::ELOOP));
    // Depth: a chain of epolls, each added into the next; the one that would nest too
    // deep is ELOOP.
    let mut chain = vec![t.epoll()];
    let mut failed_at = None;
    for i in 0..8 {
        let next = t.epoll();
        let r = t.ctl(next, ADD, *chain.last().unwrap(), POLLIN, 0);
        if r != 0 {
            assert_eq!(r, err(Errno::ELOOP));
            failed_at = Some(i);
            break;
        }
        chain.push(next);
    }
    assert_eq!(
        failed_at,
        Some(5),
        "EP_MAX_NESTS = 4 levels below the new parent"
    );
}

#[test]
fn edge_triggered_outer_epoll_sees_events_of_the_inner_files() {
    let mut t = setup();
    let (r, w) = t.pipe(O_NONBLOCK);
    let inner = t.epoll();
    let outer = t.epoll();
    assert_eq!(t.ctl(inner, ADD, r, POLLIN, 1), 0);
    assert_eq!(t.ctl(outer, ADD, inner, POLLIN | EPOLLET, 2), 0);
    t.write_bytes(1, w, b"ab");
    assert_eq!(t.wait(outer, 8, 0), vec![(POLLIN, 2)]);
    assert!(t.wait(outer, 8, 0).is_empty());
    t.write_bytes(1, w, b"c");
    assert_eq!(t.wait(outer, 8, 0), vec![(POLLIN, 2)]);
}

#[test]
fn epoll_wakeups_from_pipe_eventfd_timerfd_and_ctl() {
    let mut t = setup();
    let c = t.spawn();
    let ep = t.epoll();
    // eventfd write from another thread.
    let e = t.eventfd(O_NONBLOCK);
    assert_eq!(t.ctl(ep, ADD, e, POLLIN, 10), 0);
    assert_eq!(
        t.wait_sys(1, ep, 8, -1),
        SyscallOutcome::Block { deadline: None }
    );
    t.signal_eventfd(c, e, 3);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.wait(ep, 8, -1), vec![(POLLIN, 10)]);
    assert_eq!(t.read_n(e, 8), 8);
    // timerfd: the wait's deadline is the timer's; on expiry it reports.
    let start = t.now();
    let tf = t.timerfd_in(40 * MS);
    assert_eq!(t.ctl(ep, ADD, tf, POLLIN, 11), 0);
    assert_eq!(
        t.wait_sys(1, ep, 8, 500),
        SyscallOutcome::Block {
            deadline: Some(start + 40 * MS)
        }
    );
    t.advance(40 * MS);
    assert!(t.p.time_out(1));
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.wait(ep, 8, 500), vec![(POLLIN, 11)]);
    assert_eq!(t.read_n(tf, 8), 8);
    // ctl from another thread adding a ready file wakes the waiter.
    let (r, w) = t.pipe(0);
    assert_eq!(
        t.wait_sys(1, ep, 8, -1),
        SyscallOutcome::Block { deadline: None }
    );
    t.write_bytes(c, w, b"x");
    assert!(t.p.take_woken().is_empty(), "not watched yet");
    t.put(
        CTL_EVENT,
        &[POLLIN.to_le_bytes().as_slice(), &12u64.to_le_bytes()].concat(),
    );
    assert_eq!(t.ret(c, nr::EPOLL_CTL, &[ep, ADD, r, CTL_EVENT]), 0);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.wait(ep, 8, -1), vec![(POLLIN, 12)]);
    // A wait with a timeout and nothing ready: 0 after the timeout.
    t.read_n(r, 1);
    let start = t.now();
    assert_eq!(
        t.wait_sys(1, ep, 8, 25),
        SyscallOutcome::Block {
            deadline: Some(start + 25 * MS)
        }
    );
    t.advance(25 * MS);
    assert!(t.p.time_out(1));
    assert!(t.wait(ep, 8, 25).is_empty());
}

#[test]
fn epoll_wait_interrupted_and_pwait_masks() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    let ep = t.epoll();
    let (r, _w) = t.pipe(0);
    assert_eq!(t.ctl(ep, ADD, r, POLLIN, 1), 0);
    let c = t.spawn();
    assert_eq!(
        t.wait_sys(1, ep, 8, -1),
        SyscallOutcome::Block { deadline: None }
    );
    t.ret(c, nr::TKILL, &[1, SIGUSR1]);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(
        t.wait_sys(1, ep, 8, -1),
        SyscallOutcome::Return(err(Errno::EINTR)),
        "never restarted"
    );
    let mut regs = regs_at(STACK_TOP - 0x1000, 0x40_0102, err(Errno::EINTR) as u64);
    t.deliver(1, &mut regs, &fxsave_image(), Some(nr::EPOLL_WAIT));

    // epoll_pwait: the temporary mask lets a blocked, pending signal through at once.
    t.sigprocmask(1, 0, bit(SIGUSR1));
    t.ret(c, nr::TKILL, &[1, SIGUSR1]);
    t.put(SIGSET, &0u64.to_le_bytes());
    let args = [ep, EVENTS, 8, (-1i64) as u64, SIGSET, 8];
    assert!(matches!(
        t.sys(1, nr::EPOLL_PWAIT, &args),
        SyscallOutcome::Block { .. }
    ));
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(
        t.sys(1, nr::EPOLL_PWAIT, &args),
        SyscallOutcome::Return(err(Errno::EINTR))
    );
    let mut regs = regs_at(STACK_TOP - 0x1000, 0x40_0102, err(Errno::EINTR) as u64);
    t.deliver(1, &mut regs, &fxsave_image(), Some(nr::EPOLL_PWAIT));
    assert_eq!(
        Frame::read(&t, regs.rsp).sigmask(),
        bit(SIGUSR1),
        "the frame restores the caller's mask"
    );
    // A pwait that returns normally puts the mask back itself.
    assert_eq!(
        t.sys(1, nr::EPOLL_PWAIT, &[ep, EVENTS, 8, 0, SIGSET, 8]),
        SyscallOutcome::Return(0)
    );
    assert_eq!(t.p.threads[&1].sig.mask, bit(SIGUSR1));
    assert_eq!(t.p.threads[&1].sig.saved_mask, None);
    // epoll_pwait2 with a timespec.
    t.set_timespec(TIME, 7 * MS);
    let start = t.now();
    assert_eq!(
        t.sys(1, nr::EPOLL_PWAIT2, &[ep, EVENTS, 8, TIME, 0, 0]),
        SyscallOutcome::Block {
            deadline: Some(start + 7 * MS)
        }
    );
    t.advance(7 * MS);
    assert!(t.p.time_out(1));
    assert_eq!(
        t.sys(1, nr::EPOLL_PWAIT2, &[ep, EVENTS, 8, TIME, 0, 0]),
        SyscallOutcome::Return(0)
    );
}

#[test]
fn go_runtime_netpoll_pattern() {
    // netpollinit: epoll_create1(EPOLL_CLOEXEC); a nonblocking eventfd (or pipe2) for
    // netpollBreak, added EPOLLIN; epoll_pwait(-1) as the idle sleep, epoll_pwait(ms) for
    // timers; netpollBreak writes, the poller drains with nonblocking reads.
    let mut t = setup();
    let ep = t.call(nr::EPOLL_CREATE1, &[O_CLOEXEC]) as u64;
    let brk = t.eventfd(O_NONBLOCK | O_CLOEXEC);
    let (pr, _pw) = t.pipe(O_NONBLOCK | O_CLOEXEC);
    assert_eq!(t.ctl(ep, ADD, brk, POLLIN, 0xc000_1000), 0);
    assert_eq!(
        t.ctl(ep, ADD, pr, POLLIN | EPOLLRDHUP | EPOLLET, 0xc000_2000),
        0
    );
    let c = t.spawn();
    let args = |ms: i64| [ep, EVENTS, 128, ms as u64, 0, 0];
    assert_eq!(
        t.sys(1, nr::EPOLL_PWAIT, &args(-1)),
        SyscallOutcome::Block { deadline: None }
    );
    t.signal_eventfd(c, brk, 1);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(
        t.sys(1, nr::EPOLL_PWAIT, &args(-1)),
        SyscallOutcome::Return(1)
    );
    assert_eq!(t.events(1), vec![(POLLIN, 0xc000_1000)]);
    assert_eq!(t.read_n(brk, 8), 8);
    assert_eq!(t.read_n(brk, 8), err(Errno::EAGAIN));
    let start = t.now();
    assert_eq!(
        t.sys(1, nr::EPOLL_PWAIT, &args(10)),
        SyscallOutcome::Block {
            deadline: Some(start + 10 * MS)
        }
    );
    t.advance(10 * MS);
    assert!(t.p.time_out(1));
    assert_eq!(
        t.sys(1, nr::EPOLL_PWAIT, &args(10)),
        SyscallOutcome::Return(0)
    );
    assert_eq!(
        t.sys(1, nr::EPOLL_PWAIT, &args(0)),
        SyscallOutcome::Return(0)
    );
}

#[test]
fn epoll_fd_readiness_through_select() {
    let mut t = setup();
    let ep = t.epoll();
    let e = t.eventfd(0);
    assert_eq!(t.ctl(ep, ADD, e, POLLIN, 1), 0);
    t.set_timespec(TIME, 0);
    t.put(SETS, &fdset(&[ep]));
    assert_eq!(t.call(nr::SELECT, &[ep + 1, SETS, 0, 0, TIME]), 0);
    t.signal_eventfd(1, e, 1);
    t.put(SETS, &fdset(&[ep]));
    assert_eq!(t.call(nr::SELECT, &[ep + 1, SETS, 0, 0, TIME]), 1);
}

//! Host tests: every handler through [`Process::syscall`], as the kernel calls it, against
//! [`FakePlatform`].

extern crate std;

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use std::cell::RefCell;

use crate::errno::Errno;
use crate::mm::{Mm, VmaKind};
use crate::platform::{PAGE_SIZE, Platform, Prot};
use crate::process::{Process, SyscallOutcome};
use crate::testing::FakePlatform;

// --- log capture ----------------------------------------------------------------------------

std::thread_local! {
    static LOG: RefCell<Vec<(log::Level, String)>> = const { RefCell::new(Vec::new()) };
}

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        LOG.with(|l| {
            l.borrow_mut()
                .push((record.level(), std::format!("{}", record.args())))
        });
    }
    fn flush(&self) {}
}

static LOGGER: CaptureLogger = CaptureLogger;

fn init_log() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Trace);
    LOG.with(|l| l.borrow_mut().clear());
}

fn warnings() -> Vec<String> {
    LOG.with(|l| {
        l.borrow()
            .iter()
            .filter(|(lv, _)| *lv == log::Level::Warn)
            .map(|(_, m)| m.clone())
            .collect()
    })
}

fn traces() -> Vec<String> {
    LOG.with(|l| {
        l.borrow()
            .iter()
            .filter(|(lv, _)| *lv == log::Level::Trace)
            .map(|(_, m)| m.clone())
            .collect()
    })
}

// --- fixture --------------------------------------------------------------------------------

/// A read-write scratch area the tests point syscalls at.
const SCRATCH: u64 = 0x20_0000;
const SCRATCH_LEN: u64 = 4 * PAGE_SIZE;
/// A read-only page.
const RO: u64 = 0x30_0000;
/// Nothing is mapped here.
const UNMAPPED: u64 = 0x40_0000;

struct T {
    p: Process,
    fake: FakePlatform,
}

fn setup() -> T {
    init_log();
    let fake = FakePlatform::default();
    let mut mm = Mm::new();
    mm.map_fixed(
        &fake,
        SCRATCH,
        SCRATCH_LEN,
        Prot::READ | Prot::WRITE,
        VmaKind::Anonymous,
    )
    .unwrap();
    mm.map_fixed(&fake, RO, PAGE_SIZE, Prot::READ, VmaKind::Anonymous)
        .unwrap();
    mm.set_brk_base(0x100_0000);
    T {
        p: Process::new(mm, "/app/hello"),
        fake,
    }
}

fn terminal() -> T {
    let mut t = setup();
    t.fake.terminal = true;
    t
}

impl T {
    fn sys(&mut self, nr: u64, args: &[u64]) -> SyscallOutcome {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        self.p.syscall(&self.fake, Process::PID, nr, a)
    }
    /// Runs a syscall to completion the way the kernel would: a Block with a deadline lets
    /// the fake clock run to it, times the thread out and runs the call again; Yield returns 0.
    fn call(&mut self, nr: u64, args: &[u64]) -> i64 {
        loop {
            match self.sys(nr, args) {
                SyscallOutcome::Return(v) => return v,
                SyscallOutcome::Yield => return 0,
                SyscallOutcome::Block { deadline: Some(d) } => {
                    self.fake.sleep_until_ns(d);
                    assert!(self.p.time_out(Process::PID), "a blocked thread times out");
                    assert_eq!(self.p.take_woken(), vec![Process::PID]);
                }
                other => panic!("syscall {nr} did not return: {other:?}"),
            }
        }
    }
    /// The protection of the mapping holding `addr`, if any.
    fn prot_at(&self, addr: u64) -> Option<Prot> {
        self.p.mm.vma_at(addr).map(|(_, _, p, _)| p)
    }
    fn put(&self, addr: u64, bytes: &[u8]) {
        // Anonymous memory is committed on first touch: back it as the app's write would.
        self.p.mm.populate(&self.fake, addr, bytes.len() as u64).unwrap();
        self.fake.write_app(addr, bytes).unwrap();
    }
    fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.p.mm.populate(&self.fake, addr, len as u64).unwrap();
        self.fake.read_app(addr, &mut b).unwrap();
        b
    }
    fn u64_at(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.get(addr, 8).try_into().unwrap())
    }
    fn i64_at(&self, addr: u64) -> i64 {
        self.u64_at(addr) as i64
    }
    fn u32_at(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.get(addr, 4).try_into().unwrap())
    }
    fn cstr(&self, addr: u64, s: &str) {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.put(addr, &b);
    }
}

fn err(e: Errno) -> i64 {
    e.as_return()
}

mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const CLOSE: u64 = 3;
    pub const FSTAT: u64 = 5;
    pub const LSEEK: u64 = 8;
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const BRK: u64 = 12;
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const IOCTL: u64 = 16;
    pub const READV: u64 = 19;
    pub const WRITEV: u64 = 20;
    pub const SCHED_YIELD: u64 = 24;
    pub const MREMAP: u64 = 25;
    pub const MADVISE: u64 = 28;
    pub const NANOSLEEP: u64 = 35;
    pub const GETPID: u64 = 39;
    pub const EXIT: u64 = 60;
    pub const KILL: u64 = 62;
    pub const UNAME: u64 = 63;
    pub const GETCWD: u64 = 79;
    pub const READLINK: u64 = 89;
    pub const UMASK: u64 = 95;
    pub const GETTIMEOFDAY: u64 = 96;
    pub const GETRLIMIT: u64 = 97;
    pub const GETRUSAGE: u64 = 98;
    pub const SYSINFO: u64 = 99;
    pub const TIMES: u64 = 100;
    pub const GETUID: u64 = 102;
    pub const GETGID: u64 = 104;
    pub const GETEUID: u64 = 107;
    pub const GETEGID: u64 = 108;
    pub const GETPPID: u64 = 110;
    pub const GETPGRP: u64 = 111;
    pub const GETPGID: u64 = 121;
    pub const GETSID: u64 = 124;
    pub const SIGALTSTACK: u64 = 131;
    pub const ARCH_PRCTL: u64 = 158;
    pub const SETRLIMIT: u64 = 160;
    pub const GETTID: u64 = 186;
    pub const TKILL: u64 = 200;
    pub const TIME: u64 = 201;
    pub const SCHED_GETAFFINITY: u64 = 204;
    pub const SET_TID_ADDRESS: u64 = 218;
    pub const CLOCK_GETTIME: u64 = 228;
    pub const CLOCK_GETRES: u64 = 229;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const EXIT_GROUP: u64 = 231;
    pub const TGKILL: u64 = 234;
    pub const NEWFSTATAT: u64 = 262;
    pub const READLINKAT: u64 = 267;
    pub const SET_ROBUST_LIST: u64 = 273;
    pub const GET_ROBUST_LIST: u64 = 274;
    pub const PRLIMIT64: u64 = 302;
    pub const GETRANDOM: u64 = 318;
    pub const RSEQ: u64 = 334;
}

const NEG1: u64 = u64::MAX;

// --- dispatch -------------------------------------------------------------------------------

#[test]
fn unknown_and_unimplemented_numbers_are_enosys_with_one_warning() {
    let mut t = setup();
    assert_eq!(t.call(206, &[]), err(Errno::ENOSYS));
    assert_eq!(t.call(206, &[]), err(Errno::ENOSYS));
    assert_eq!(t.call(1000, &[]), err(Errno::ENOSYS));
    assert_eq!(t.call(1000, &[]), err(Errno::ENOSYS));
    assert_eq!(t.call(400, &[]), err(Errno::ENOSYS));
    let w = warnings();
    assert_eq!(
        w,
        [
            "unsupported syscall io_setup (206): returning ENOSYS",
            "unsupported syscall unknown (1000): returning ENOSYS",
            "unsupported syscall unknown (400): returning ENOSYS",
        ]
    );
    assert!(t.p.warned_unsupported(206));
}

#[test]
fn rseq_is_enosys_silently() {
    let mut t = setup();
    assert_eq!(
        t.call(nr::RSEQ, &[SCRATCH, 32, 0, 0x53053053]),
        err(Errno::ENOSYS)
    );
    assert!(warnings().is_empty());
}

#[test]
fn every_syscall_leaves_one_trace_line() {
    let mut t = setup();
    t.put(SCRATCH, b"hi");
    t.call(nr::WRITE, &[1, SCRATCH, 2]);
    t.call(nr::GETPID, &[]);
    t.call(nr::CLOSE, &[77]);
    let tr = traces();
    assert_eq!(tr.len(), 3);
    assert_eq!(tr[0], std::format!("[1] write(1, {SCRATCH:#x}, 2) = 2"));
    assert_eq!(tr[1], "[1] getpid() = 1");
    assert_eq!(tr[2], "[1] close(77) = -1 EBADF [nr 3]");
}

#[test]
fn unknown_flag_bits_are_einval_logged_once() {
    let mut t = setup();
    assert_eq!(
        t.call(nr::GETRANDOM, &[SCRATCH, 8, 0x80]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::GETRANDOM, &[SCRATCH, 8, 0x80]),
        err(Errno::EINVAL)
    );
    let w = warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("getrandom") && w[0].contains("unknown flag bits 0x80"),
        "{w:?}"
    );
}

// --- console --------------------------------------------------------------------------------

#[test]
fn write_and_writev_reach_the_console() {
    let mut t = setup();
    t.put(SCRATCH, b"hello, world\n");
    assert_eq!(t.call(nr::WRITE, &[1, SCRATCH, 13]), 13);
    assert_eq!(t.call(nr::WRITE, &[2, SCRATCH, 5]), 5);
    // iovecs at SCRATCH+0x100: "hello" and "world\n"
    let mut iov = Vec::new();
    for (base, len) in [(SCRATCH, 5u64), (SCRATCH + 7, 6)] {
        iov.extend_from_slice(&base.to_le_bytes());
        iov.extend_from_slice(&len.to_le_bytes());
    }
    t.put(SCRATCH + 0x100, &iov);
    assert_eq!(t.call(nr::WRITEV, &[1, SCRATCH + 0x100, 2]), 11);
    assert_eq!(t.fake.console_string(), "hello, world\nhelloworld\n");
    assert_eq!(t.fake.errors.borrow().as_slice(), b"hello", "fd 2 goes to the error channel");
    assert_eq!(t.call(nr::WRITE, &[1, 0, 0]), 0);
}

#[test]
fn write_errors() {
    let mut t = setup();
    assert_eq!(t.call(nr::WRITE, &[1, UNMAPPED, 4]), err(Errno::EFAULT));
    assert_eq!(t.call(nr::WRITE, &[1, 0, 4]), err(Errno::EFAULT));
    assert_eq!(t.call(nr::WRITE, &[5, SCRATCH, 4]), err(Errno::EBADF));
    assert_eq!(t.call(nr::WRITE, &[NEG1, SCRATCH, 4]), err(Errno::EBADF));
    // stdin is not writable unless it is a terminal
    assert_eq!(t.call(nr::WRITE, &[0, SCRATCH, 4]), err(Errno::EBADF));
    assert_eq!(t.call(nr::WRITEV, &[1, SCRATCH, NEG1]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::WRITEV, &[1, SCRATCH, 1025]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::WRITEV, &[1, UNMAPPED, 1]), err(Errno::EFAULT));
    let mut t = terminal();
    t.put(SCRATCH, b"tty");
    assert_eq!(t.call(nr::WRITE, &[0, SCRATCH, 3]), 3);
    assert_eq!(t.fake.console_string(), "tty");
}

#[test]
fn read_console_and_eof() {
    let mut t = setup();
    t.fake.input.borrow_mut().extend_from_slice(b"abcdef");
    assert_eq!(t.call(nr::READ, &[0, SCRATCH, 4]), 4);
    assert_eq!(t.get(SCRATCH, 4), b"abcd");
    let mut iov = Vec::new();
    for (base, len) in [(SCRATCH + 0x200, 1u64), (SCRATCH + 0x300, 10)] {
        iov.extend_from_slice(&base.to_le_bytes());
        iov.extend_from_slice(&len.to_le_bytes());
    }
    t.put(SCRATCH + 0x100, &iov);
    assert_eq!(t.call(nr::READV, &[0, SCRATCH + 0x100, 2]), 2);
    assert_eq!(t.get(SCRATCH + 0x200, 1), b"e");
    assert_eq!(t.get(SCRATCH + 0x300, 1), b"f");
    assert_eq!(t.call(nr::READ, &[0, SCRATCH, 4]), 0, "EOF");
    assert_eq!(
        t.call(nr::READ, &[0, RO, 4]),
        err(Errno::EFAULT),
        "read into read-only memory"
    );
    assert_eq!(t.call(nr::READ, &[0, UNMAPPED, 4]), err(Errno::EFAULT));
    assert_eq!(t.call(nr::READ, &[1, SCRATCH, 4]), err(Errno::EBADF));
    assert_eq!(t.call(nr::READ, &[9, SCRATCH, 4]), err(Errno::EBADF));
}

#[test]
fn close_makes_console_fds_unusable() {
    let mut t = setup();
    t.put(SCRATCH, b"x");
    assert_eq!(t.call(nr::CLOSE, &[1]), 0);
    assert_eq!(t.call(nr::WRITE, &[1, SCRATCH, 1]), err(Errno::EBADF));
    assert_eq!(t.call(nr::CLOSE, &[1]), err(Errno::EBADF));
    assert_eq!(t.call(nr::FSTAT, &[1, SCRATCH]), err(Errno::EBADF));
    assert_eq!(t.call(nr::WRITE, &[2, SCRATCH, 1]), 1);
    assert_eq!(t.call(nr::CLOSE, &[3]), err(Errno::EBADF));
    assert_eq!(t.call(nr::LSEEK, &[2, 0, 0]), err(Errno::ESPIPE));
}

#[test]
fn ioctl_terminal_requests() {
    let mut t = setup();
    assert_eq!(
        t.call(nr::IOCTL, &[1, 0x5401, SCRATCH]),
        err(Errno::ENOTTY),
        "TCGETS, not a terminal"
    );
    assert_eq!(t.call(nr::IOCTL, &[1, 0x5413, SCRATCH]), err(Errno::ENOTTY));
    assert_eq!(t.call(nr::IOCTL, &[7, 0x5401, SCRATCH]), err(Errno::EBADF));
    t.put(SCRATCH, &1i32.to_le_bytes());
    assert_eq!(t.call(nr::IOCTL, &[1, 0x5421, SCRATCH]), 0, "FIONBIO");

    let mut t = terminal();
    assert_eq!(t.call(nr::IOCTL, &[1, 0x5401, SCRATCH]), 0);
    let termios = t.get(SCRATCH, 36);
    assert_eq!(
        u32::from_le_bytes(termios[12..16].try_into().unwrap()) & 0o2,
        0o2,
        "ICANON"
    );
    assert_eq!(termios[17], 3, "VINTR is ^C");
    assert_eq!(t.call(nr::IOCTL, &[1, 0x5413, SCRATCH]), 0);
    assert_eq!(t.get(SCRATCH, 4), [24, 0, 80, 0]);
    assert_eq!(t.call(nr::IOCTL, &[1, 0x5402, SCRATCH]), 0, "TCSETS");
    assert_eq!(
        t.call(nr::IOCTL, &[1, 0x540f, SCRATCH]),
        err(Errno::ENOTTY),
        "TIOCGPGRP"
    );
    assert_eq!(
        t.call(nr::IOCTL, &[1, 0x5401, UNMAPPED]),
        err(Errno::EFAULT)
    );
}

#[test]
fn fstat_and_newfstatat_describe_the_console() {
    let mut t = terminal();
    assert_eq!(t.call(nr::FSTAT, &[1, SCRATCH]), 0);
    assert_eq!(t.u32_at(SCRATCH + 24), 0o20620, "S_IFCHR|0620");
    assert_eq!(t.u64_at(SCRATCH + 40), 0x8801);
    assert_eq!(t.i64_at(SCRATCH + 56), 1024);
    t.put(SCRATCH + 0x200, &[0]);
    assert_eq!(
        t.call(
            nr::NEWFSTATAT,
            &[2, SCRATCH + 0x200, SCRATCH + 0x400, 0x1000]
        ),
        0
    );
    assert_eq!(t.u32_at(SCRATCH + 0x400 + 24), 0o20620);
    assert_eq!(
        t.call(nr::NEWFSTATAT, &[2, SCRATCH + 0x200, SCRATCH + 0x400, 0]),
        err(Errno::ENOENT)
    );
    assert_eq!(
        t.call(
            nr::NEWFSTATAT,
            &[2, SCRATCH + 0x200, SCRATCH + 0x400, 0x8000_0000]
        ),
        err(Errno::EINVAL)
    );
    t.cstr(SCRATCH + 0x200, "/etc/no-such-file");
    assert_eq!(
        t.call(
            nr::NEWFSTATAT,
            &[(-100i64) as u64, SCRATCH + 0x200, SCRATCH + 0x400, 0]
        ),
        err(Errno::ENOENT)
    );
    assert_eq!(t.call(nr::FSTAT, &[1, UNMAPPED]), err(Errno::EFAULT));
    assert_eq!(t.call(nr::FSTAT, &[1, RO]), err(Errno::EFAULT));
}

#[test]
fn readlink_proc_self_exe() {
    let mut t = setup();
    t.cstr(SCRATCH, "/proc/self/exe");
    assert_eq!(t.call(nr::READLINK, &[SCRATCH, SCRATCH + 0x100, 100]), 10);
    assert_eq!(t.get(SCRATCH + 0x100, 10), b"/app/hello");
    // Truncated, no NUL.
    t.put(SCRATCH + 0x200, &[0xaa; 8]);
    assert_eq!(t.call(nr::READLINK, &[SCRATCH, SCRATCH + 0x200, 4]), 4);
    assert_eq!(t.get(SCRATCH + 0x200, 5), b"/app\xaa");
    assert_eq!(
        t.call(
            nr::READLINKAT,
            &[(-100i64) as u64, SCRATCH, SCRATCH + 0x100, 100]
        ),
        10
    );
    assert_eq!(
        t.call(nr::READLINK, &[SCRATCH, SCRATCH + 0x100, 0]),
        err(Errno::EINVAL)
    );
    t.cstr(SCRATCH, "/proc/self/cwd");
    assert_eq!(t.call(nr::READLINK, &[SCRATCH, SCRATCH + 0x100, 100]), 1);
    assert_eq!(t.get(SCRATCH + 0x100, 1), b"/");
    t.cstr(SCRATCH, "/proc/self/nothing");
    assert_eq!(
        t.call(nr::READLINK, &[SCRATCH, SCRATCH + 0x100, 100]),
        err(Errno::ENOENT)
    );
    assert_eq!(
        t.call(nr::READLINK, &[UNMAPPED, SCRATCH + 0x100, 100]),
        err(Errno::EFAULT)
    );
}

#[test]
fn getcwd_and_umask() {
    let mut t = setup();
    assert_eq!(t.call(nr::GETCWD, &[SCRATCH, 64]), 2);
    assert_eq!(t.get(SCRATCH, 2), b"/\0");
    assert_eq!(t.call(nr::GETCWD, &[SCRATCH, 1]), err(Errno::ERANGE));
    assert_eq!(t.call(nr::UMASK, &[0o077]), 0o022);
    assert_eq!(t.call(nr::UMASK, &[0o022]), 0o077);
}

// --- process --------------------------------------------------------------------------------

#[test]
fn exit_status_is_the_low_byte() {
    let mut t = setup();
    assert_eq!(
        t.sys(nr::EXIT_GROUP, &[300]),
        SyscallOutcome::Exit {
            status: 44,
            signal: None
        }
    );
    assert_eq!(
        t.sys(nr::EXIT, &[3]),
        SyscallOutcome::Exit {
            status: 3,
            signal: None
        }
    );
    assert_eq!(
        t.sys(nr::EXIT_GROUP, &[NEG1]),
        SyscallOutcome::Exit {
            status: 255,
            signal: None
        }
    );
}

#[test]
fn ids() {
    let mut t = setup();
    assert_eq!(t.call(nr::GETPID, &[]), 1);
    assert_eq!(t.call(nr::GETTID, &[]), 1);
    assert_eq!(t.call(nr::GETPPID, &[]), 0);
    for n in [nr::GETUID, nr::GETGID, nr::GETEUID, nr::GETEGID] {
        assert_eq!(t.call(n, &[]), 0);
    }
    assert_eq!(t.call(nr::GETPGRP, &[]), 1);
    assert_eq!(t.call(nr::GETPGID, &[0]), 1);
    assert_eq!(t.call(nr::GETSID, &[1]), 1);
    assert_eq!(t.call(nr::GETPGID, &[42]), err(Errno::ESRCH));
    assert_eq!(t.call(nr::SET_TID_ADDRESS, &[SCRATCH]), 1);
    assert_eq!(t.call(nr::SCHED_YIELD, &[]), 0);
}

#[test]
fn uname_strings() {
    let mut t = setup();
    assert_eq!(t.call(nr::UNAME, &[SCRATCH]), 0);
    let b = t.get(SCRATCH, 390);
    let field = |i: usize| {
        let f = &b[i * 65..(i + 1) * 65];
        String::from_utf8(f[..f.iter().position(|&c| c == 0).unwrap()].to_vec()).unwrap()
    };
    assert_eq!(field(0), "Linux");
    assert_eq!(field(1), "kiln");
    assert_eq!(field(2), "6.1.0-kiln");
    assert_eq!(field(3), "#1 SMP Kiln");
    assert_eq!(field(4), "x86_64");
    assert_eq!(field(5), "(none)");
    assert_eq!(t.call(nr::UNAME, &[RO]), err(Errno::EFAULT));
}

#[test]
fn arch_prctl_fs_and_gs() {
    let mut t = setup();
    assert_eq!(t.call(nr::ARCH_PRCTL, &[0x1002, 0x7000_1000]), 0);
    assert_eq!(t.fake.fs_base(), 0x7000_1000);
    assert_eq!(t.call(nr::ARCH_PRCTL, &[0x1003, SCRATCH]), 0);
    assert_eq!(t.u64_at(SCRATCH), 0x7000_1000);
    assert_eq!(
        t.call(nr::ARCH_PRCTL, &[0x1003, UNMAPPED]),
        err(Errno::EFAULT)
    );
    assert_eq!(
        t.call(nr::ARCH_PRCTL, &[0x1002, 0xffff_8000_0000_0000]),
        err(Errno::EPERM)
    );
    assert_eq!(
        t.call(nr::ARCH_PRCTL, &[0x1001, 0x1000]),
        err(Errno::EINVAL)
    );
    assert!(warnings().iter().any(|w| w.contains("GS holds")));
    assert_eq!(
        t.call(nr::ARCH_PRCTL, &[0x1011, 0]),
        err(Errno::EINVAL),
        "ARCH_GET_CPUID"
    );
}

#[test]
fn robust_list() {
    let mut t = setup();
    assert_eq!(
        t.call(nr::SET_ROBUST_LIST, &[SCRATCH, 16]),
        err(Errno::EINVAL)
    );
    assert_eq!(t.call(nr::SET_ROBUST_LIST, &[SCRATCH + 8, 24]), 0);
    assert_eq!(
        t.call(nr::GET_ROBUST_LIST, &[0, SCRATCH + 0x100, SCRATCH + 0x108]),
        0
    );
    assert_eq!(t.u64_at(SCRATCH + 0x100), SCRATCH + 8);
    assert_eq!(t.u64_at(SCRATCH + 0x108), 24);
    assert_eq!(
        t.call(nr::GET_ROBUST_LIST, &[5, SCRATCH + 0x100, SCRATCH + 0x108]),
        err(Errno::ESRCH)
    );
}

#[test]
fn rlimits() {
    let mut t = setup();
    assert_eq!(t.call(nr::GETRLIMIT, &[3, SCRATCH]), 0);
    assert_eq!(t.u64_at(SCRATCH), 8 << 20);
    assert_eq!(t.u64_at(SCRATCH + 8), u64::MAX);
    assert_eq!(t.call(nr::PRLIMIT64, &[0, 7, 0, SCRATCH]), 0);
    assert_eq!((t.u64_at(SCRATCH), t.u64_at(SCRATCH + 8)), (1024, 4096));
    // set NOFILE to 4096/4096 and read it back (and the old value at the same time)
    t.put(
        SCRATCH + 0x100,
        &[4096u64.to_le_bytes(), 4096u64.to_le_bytes()].concat(),
    );
    assert_eq!(t.call(nr::PRLIMIT64, &[1, 7, SCRATCH + 0x100, SCRATCH]), 0);
    assert_eq!(t.u64_at(SCRATCH), 1024);
    assert_eq!(t.call(nr::GETRLIMIT, &[7, SCRATCH]), 0);
    assert_eq!(t.u64_at(SCRATCH), 4096);
    t.put(
        SCRATCH + 0x100,
        &[10u64.to_le_bytes(), 5u64.to_le_bytes()].concat(),
    );
    assert_eq!(
        t.call(nr::SETRLIMIT, &[7, SCRATCH + 0x100]),
        err(Errno::EINVAL),
        "soft > hard"
    );
    assert_eq!(t.call(nr::GETRLIMIT, &[99, SCRATCH]), err(Errno::EINVAL));
    assert_eq!(
        t.call(nr::PRLIMIT64, &[2, 7, 0, SCRATCH]),
        err(Errno::ESRCH)
    );
    assert_eq!(t.call(nr::GETRLIMIT, &[9, UNMAPPED]), err(Errno::EFAULT));
    assert_eq!(t.call(nr::GETRLIMIT, &[9, SCRATCH]), 0);
    assert_eq!(t.u64_at(SCRATCH), u64::MAX, "RLIMIT_AS infinite");
}

#[test]
fn getrandom_fills_and_validates() {
    let mut t = setup();
    assert_eq!(t.call(nr::GETRANDOM, &[SCRATCH, 16, 1]), 16);
    assert_eq!(t.get(SCRATCH, 2), [11, 48]);
    assert_eq!(t.call(nr::GETRANDOM, &[SCRATCH, 5000, 4]), 5000);
    assert_eq!(
        t.call(nr::GETRANDOM, &[SCRATCH, 16, 6]),
        err(Errno::EINVAL),
        "RANDOM|INSECURE"
    );
    assert_eq!(t.call(nr::GETRANDOM, &[RO, 16, 0]), err(Errno::EFAULT));
}

#[test]
fn sched_getaffinity_mask() {
    let mut t = setup();
    t.put(SCRATCH, &[0xff; 16]);
    assert_eq!(t.call(nr::SCHED_GETAFFINITY, &[0, 128, SCRATCH]), 8);
    assert_eq!(t.get(SCRATCH, 9), [1, 0, 0, 0, 0, 0, 0, 0, 0xff]);
    assert_eq!(
        t.call(nr::SCHED_GETAFFINITY, &[0, 4, SCRATCH]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::SCHED_GETAFFINITY, &[0, 0, SCRATCH]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::SCHED_GETAFFINITY, &[3, 8, SCRATCH]),
        err(Errno::ESRCH)
    );
    assert_eq!(
        t.call(nr::SCHED_GETAFFINITY, &[0, 8, UNMAPPED]),
        err(Errno::EFAULT)
    );
}

#[test]
fn sysinfo_getrusage_times() {
    let mut t = setup();
    t.fake.now_ns.set(5_000_000_000);
    assert_eq!(t.call(nr::SYSINFO, &[SCRATCH]), 0);
    assert_eq!(t.i64_at(SCRATCH), 5);
    assert_eq!(t.u64_at(SCRATCH + 32), 256 << 20);
    assert_eq!(t.call(nr::GETRUSAGE, &[0, SCRATCH]), 0);
    assert_eq!(t.i64_at(SCRATCH), 5);
    assert_eq!(
        t.call(nr::GETRUSAGE, &[NEG1, SCRATCH]),
        0,
        "RUSAGE_CHILDREN"
    );
    assert_eq!(t.i64_at(SCRATCH), 0);
    assert_eq!(t.call(nr::GETRUSAGE, &[7, SCRATCH]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::TIMES, &[SCRATCH]), 500);
    assert_eq!(t.i64_at(SCRATCH), 500);
    assert_eq!(t.call(nr::TIMES, &[0]), 500);
}

// --- time -----------------------------------------------------------------------------------

#[test]
fn clocks() {
    let mut t = setup();
    t.fake.now_ns.set(2_500_000_000);
    assert_eq!(t.call(nr::CLOCK_GETTIME, &[1, SCRATCH]), 0);
    assert_eq!((t.i64_at(SCRATCH), t.i64_at(SCRATCH + 8)), (2, 500_000_000));
    assert_eq!(t.call(nr::CLOCK_GETTIME, &[0, SCRATCH]), 0);
    assert_eq!(t.i64_at(SCRATCH), 1_700_000_002);
    for clk in 2..=7 {
        assert_eq!(t.call(nr::CLOCK_GETTIME, &[clk, SCRATCH]), 0, "clock {clk}");
    }
    assert_eq!(t.call(nr::CLOCK_GETTIME, &[8, SCRATCH]), err(Errno::EINVAL));
    assert_eq!(
        t.call(nr::CLOCK_GETTIME, &[NEG1, SCRATCH]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::CLOCK_GETTIME, &[1, UNMAPPED]),
        err(Errno::EFAULT)
    );
    assert_eq!(t.call(nr::CLOCK_GETRES, &[1, SCRATCH]), 0);
    assert_eq!((t.i64_at(SCRATCH), t.i64_at(SCRATCH + 8)), (0, 1));
    assert_eq!(t.call(nr::CLOCK_GETRES, &[6, 0]), 0);
    assert_eq!(t.call(nr::GETTIMEOFDAY, &[SCRATCH, SCRATCH + 16]), 0);
    assert_eq!(
        (t.i64_at(SCRATCH), t.i64_at(SCRATCH + 8)),
        (1_700_000_002, 500_000)
    );
    assert_eq!(t.call(nr::GETTIMEOFDAY, &[0, 0]), 0);
    assert_eq!(t.call(nr::TIME, &[SCRATCH]), 1_700_000_002);
    assert_eq!(t.i64_at(SCRATCH), 1_700_000_002);
    assert_eq!(t.call(nr::TIME, &[0]), 1_700_000_002);
}

fn put_timespec(t: &T, addr: u64, sec: i64, nsec: i64) {
    t.put(addr, &[sec.to_le_bytes(), nsec.to_le_bytes()].concat());
}

#[test]
fn sleeping() {
    let mut t = setup();
    let start = t.fake.now_ns.get();
    put_timespec(&t, SCRATCH, 1, 500);
    assert_eq!(t.call(nr::NANOSLEEP, &[SCRATCH, 0]), 0);
    assert_eq!(t.fake.now_ns.get(), start + 1_000_000_500);
    put_timespec(&t, SCRATCH, 0, 1_000_000_000);
    assert_eq!(t.call(nr::NANOSLEEP, &[SCRATCH, 0]), err(Errno::EINVAL));
    put_timespec(&t, SCRATCH, -1, 0);
    assert_eq!(t.call(nr::NANOSLEEP, &[SCRATCH, 0]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::NANOSLEEP, &[UNMAPPED, 0]), err(Errno::EFAULT));

    // relative on MONOTONIC
    let now = t.fake.now_ns.get();
    put_timespec(&t, SCRATCH, 0, 1000);
    assert_eq!(t.call(nr::CLOCK_NANOSLEEP, &[1, 0, SCRATCH, 0]), 0);
    assert_eq!(t.fake.now_ns.get(), now + 1000);
    // absolute on MONOTONIC: sleep until 10 s
    put_timespec(&t, SCRATCH, 10, 0);
    assert_eq!(t.call(nr::CLOCK_NANOSLEEP, &[1, 1, SCRATCH, 0]), 0);
    assert_eq!(t.fake.now_ns.get(), 10_000_000_000);
    // absolute in the past: returns at once
    put_timespec(&t, SCRATCH, 1, 0);
    assert_eq!(t.call(nr::CLOCK_NANOSLEEP, &[1, 1, SCRATCH, 0]), 0);
    assert_eq!(t.fake.now_ns.get(), 10_000_000_000);
    // absolute on REALTIME: 2 s after the current wall time
    let wall = t.fake.realtime_ns() + 2_000_000_000;
    put_timespec(
        &t,
        SCRATCH,
        (wall / 1_000_000_000) as i64,
        (wall % 1_000_000_000) as i64,
    );
    assert_eq!(t.call(nr::CLOCK_NANOSLEEP, &[0, 1, SCRATCH, 0]), 0);
    assert_eq!(t.fake.now_ns.get(), 12_000_000_000);
    assert_eq!(
        t.call(nr::CLOCK_NANOSLEEP, &[3, 0, SCRATCH, 0]),
        err(Errno::EINVAL),
        "THREAD_CPUTIME"
    );
    assert_eq!(
        t.call(nr::CLOCK_NANOSLEEP, &[1, 2, SCRATCH, 0]),
        err(Errno::EINVAL),
        "unknown flag"
    );
}

// --- memory ---------------------------------------------------------------------------------

const PROT_RW: u64 = 3;
const MAP_PRIVATE_ANON: u64 = 0x22;

#[test]
fn brk_grows_and_reports() {
    let mut t = setup();
    let base = t.call(nr::BRK, &[0]) as u64;
    assert_eq!(base, 0x100_0000);
    assert_eq!(t.call(nr::BRK, &[base + 0x2000]) as u64, base + 0x2000);
    t.put(SCRATCH, b"heap");
    assert_eq!(
        t.call(nr::WRITE, &[1, base + 0x1000, 4]),
        4,
        "new heap is readable"
    );
}

#[test]
fn mmap_anonymous_and_munmap() {
    let mut t = setup();
    let a = t.call(
        nr::MMAP,
        &[0, 3 * PAGE_SIZE, PROT_RW, MAP_PRIVATE_ANON, NEG1, 0],
    );
    assert!(a > 0, "{a}");
    let a = a as u64;
    assert_eq!(a % PAGE_SIZE, 0);
    assert_eq!(t.prot_at(a), Some(Prot::READ | Prot::WRITE));
    // MAP_FIXED over part of it, MAP_FIXED_NOREPLACE collides.
    assert_eq!(
        t.call(
            nr::MMAP,
            &[
                a + PAGE_SIZE,
                PAGE_SIZE,
                1,
                MAP_PRIVATE_ANON | 0x10,
                NEG1,
                0
            ]
        ) as u64,
        a + PAGE_SIZE
    );
    assert_eq!(t.prot_at(a + PAGE_SIZE), Some(Prot::READ));
    assert_eq!(
        t.call(
            nr::MMAP,
            &[a, PAGE_SIZE, PROT_RW, MAP_PRIVATE_ANON | 0x10_0000, NEG1, 0]
        ),
        err(Errno::EEXIST)
    );
    // shared anonymous and the accepted extras
    let s = t.call(
        nr::MMAP,
        &[
            0,
            PAGE_SIZE,
            PROT_RW,
            0x21 | 0x4000 | 0x2_0000 | 0x8000,
            NEG1,
            0,
        ],
    );
    assert!(s > 0);
    assert_eq!(t.call(nr::MUNMAP, &[a, 3 * PAGE_SIZE]), 0);
    assert_eq!(t.prot_at(a), None);
    assert_eq!(t.call(nr::MUNMAP, &[a + 1, PAGE_SIZE]), err(Errno::EINVAL));
}

#[test]
fn mmap_errors() {
    let mut t = setup();
    assert_eq!(
        t.call(nr::MMAP, &[0, 0, PROT_RW, MAP_PRIVATE_ANON, NEG1, 0]),
        err(Errno::EINVAL),
        "len 0"
    );
    assert_eq!(
        t.call(nr::MMAP, &[0, 4096, PROT_RW, MAP_PRIVATE_ANON, NEG1, 100]),
        err(Errno::EINVAL),
        "offset"
    );
    assert_eq!(
        t.call(nr::MMAP, &[0, 4096, PROT_RW, 0x20, NEG1, 0]),
        err(Errno::EINVAL),
        "no type"
    );
    assert_eq!(
        t.call(
            nr::MMAP,
            &[0, 4096, PROT_RW, MAP_PRIVATE_ANON | 0x40_0000, NEG1, 0]
        ),
        err(Errno::EINVAL),
        "unknown bit"
    );
    assert_eq!(
        t.call(nr::MMAP, &[0, 4096, 8, MAP_PRIVATE_ANON, NEG1, 0]),
        err(Errno::EINVAL),
        "unknown prot"
    );
    assert_eq!(
        t.call(nr::MMAP, &[0, 4096, 1, 2, 7, 0]),
        err(Errno::EBADF),
        "file mapping, bad fd"
    );
    assert_eq!(
        t.call(nr::MMAP, &[0, 4096, 1, 2, 0, 0]),
        err(Errno::ENODEV),
        "file mapping of the console"
    );
    assert_eq!(
        t.call(
            nr::MMAP,
            &[0x12345, 4096, 1, MAP_PRIVATE_ANON | 0x10, NEG1, 0]
        ),
        err(Errno::EINVAL),
        "unaligned fixed"
    );
    assert_eq!(
        t.call(nr::MMAP, &[0, u64::MAX - 10, 1, MAP_PRIVATE_ANON, NEG1, 0]),
        err(Errno::ENOMEM)
    );
}

#[test]
fn mprotect_checks() {
    let mut t = setup();
    assert_eq!(t.call(nr::MPROTECT, &[SCRATCH, PAGE_SIZE, 1]), 0);
    assert_eq!(t.prot_at(SCRATCH), Some(Prot::READ));
    assert_eq!(
        t.call(nr::READ, &[0, SCRATCH, 1]),
        err(Errno::EFAULT),
        "now read-only"
    );
    assert_eq!(
        t.call(nr::MPROTECT, &[SCRATCH + 1, PAGE_SIZE, 1]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::MPROTECT, &[UNMAPPED, PAGE_SIZE, 1]),
        err(Errno::ENOMEM)
    );
    assert_eq!(
        t.call(nr::MPROTECT, &[SCRATCH, PAGE_SIZE, 0x10]),
        err(Errno::EINVAL)
    );
    assert_eq!(t.call(nr::MPROTECT, &[SCRATCH, 0, 1]), 0);
}

#[test]
fn madvise_dontneed_zeroes() {
    let mut t = setup();
    t.put(SCRATCH, &[7; 64]);
    t.put(SCRATCH + PAGE_SIZE, &[9; 64]);
    assert_eq!(t.call(nr::MADVISE, &[SCRATCH, PAGE_SIZE, 4]), 0);
    assert_eq!(t.get(SCRATCH, 64), [0; 64]);
    assert_eq!(
        t.get(SCRATCH + PAGE_SIZE, 4),
        [9; 4],
        "outside the range is untouched"
    );
    assert_eq!(t.prot_at(SCRATCH), Some(Prot::READ | Prot::WRITE));
    assert_eq!(
        t.call(nr::MADVISE, &[SCRATCH, PAGE_SIZE, 14]),
        0,
        "MADV_HUGEPAGE accepted"
    );
    assert_eq!(
        t.call(nr::MADVISE, &[SCRATCH, PAGE_SIZE, 77]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::MADVISE, &[SCRATCH + 1, PAGE_SIZE, 4]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::MADVISE, &[UNMAPPED, PAGE_SIZE, 4]),
        err(Errno::ENOMEM)
    );
}

#[test]
fn mremap_grows_shrinks_and_moves() {
    let mut t = setup();
    let a = t.call(
        nr::MMAP,
        &[0, 2 * PAGE_SIZE, PROT_RW, MAP_PRIVATE_ANON, NEG1, 0],
    ) as u64;
    t.put(a, b"keep me");
    // Shrink in place.
    assert_eq!(
        t.call(nr::MREMAP, &[a, 2 * PAGE_SIZE, PAGE_SIZE, 0, 0]) as u64,
        a
    );
    assert_eq!(t.prot_at(a + PAGE_SIZE), None);
    // Block the page after it, then grow: must move.
    let b = t.call(
        nr::MMAP,
        &[
            a + PAGE_SIZE,
            PAGE_SIZE,
            1,
            MAP_PRIVATE_ANON | 0x10,
            NEG1,
            0,
        ],
    ) as u64;
    assert_eq!(b, a + PAGE_SIZE);
    assert_eq!(
        t.call(nr::MREMAP, &[a, PAGE_SIZE, 4 * PAGE_SIZE, 0, 0]),
        err(Errno::ENOMEM),
        "no MAYMOVE"
    );
    let c = t.call(nr::MREMAP, &[a, PAGE_SIZE, 4 * PAGE_SIZE, 1, 0]) as u64;
    assert_ne!(c, a);
    assert_eq!(t.get(c, 7), b"keep me");
    assert_eq!(
        t.prot_at(c + 3 * PAGE_SIZE),
        Some(Prot::READ | Prot::WRITE)
    );
    assert_eq!(t.prot_at(a), None, "old mapping is gone");
    assert_eq!(
        t.call(nr::MREMAP, &[UNMAPPED, PAGE_SIZE, 2 * PAGE_SIZE, 1, 0]),
        err(Errno::EFAULT)
    );
    assert_eq!(
        t.call(nr::MREMAP, &[c, PAGE_SIZE, 0, 1, 0]),
        err(Errno::EINVAL)
    );
}

// --- signals --------------------------------------------------------------------------------

fn put_sigaction(t: &T, addr: u64, handler: u64, mask: u64) {
    t.put(
        addr,
        &[
            handler.to_le_bytes(),
            0x0400_0000u64.to_le_bytes(),
            0x1234u64.to_le_bytes(),
            mask.to_le_bytes(),
        ]
        .concat(),
    );
}

#[test]
fn tkill_sigabrt_terminates_with_134() {
    let mut t = setup();
    assert_eq!(
        t.sys(nr::TKILL, &[1, 6]),
        SyscallOutcome::Exit {
            status: 134,
            signal: Some(6)
        }
    );
    assert_eq!(
        t.sys(nr::TGKILL, &[1, 1, 15]),
        SyscallOutcome::Exit {
            status: 143,
            signal: Some(15)
        }
    );
    assert_eq!(
        t.sys(nr::KILL, &[1, 9]),
        SyscallOutcome::Exit {
            status: 137,
            signal: Some(9)
        }
    );
    assert_eq!(
        t.sys(nr::KILL, &[0, 11]),
        SyscallOutcome::Exit {
            status: 139,
            signal: Some(11)
        }
    );
}

#[test]
fn kill_checks_targets_and_ignored_signals() {
    let mut t = setup();
    assert_eq!(t.call(nr::KILL, &[1, 0]), 0);
    assert_eq!(t.call(nr::KILL, &[1, 17]), 0, "SIGCHLD ignored by default");
    assert_eq!(t.call(nr::KILL, &[1, 28]), 0, "SIGWINCH");
    assert_eq!(t.call(nr::KILL, &[2, 15]), err(Errno::ESRCH));
    assert_eq!(
        t.call(nr::KILL, &[NEG1, 15]),
        err(Errno::ESRCH),
        "kill(-1): no other processes"
    );
    assert_eq!(t.call(nr::KILL, &[1, 65]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::TKILL, &[0, 6]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::TKILL, &[2, 6]), err(Errno::ESRCH));
    assert_eq!(t.call(nr::TGKILL, &[1, 2, 6]), err(Errno::ESRCH));
    // SIG_IGN
    put_sigaction(&t, SCRATCH, 1, 0);
    assert_eq!(t.call(nr::RT_SIGACTION, &[15, SCRATCH, 0, 8]), 0);
    assert_eq!(t.call(nr::KILL, &[1, 15]), 0);
    // A handler: the signal is queued for delivery on the way back to the app.
    put_sigaction(&t, SCRATCH, 0x40_1000, 0);
    assert_eq!(t.call(nr::RT_SIGACTION, &[10, SCRATCH, 0, 8]), 0);
    assert_eq!(t.call(nr::KILL, &[1, 10]), 0);
    assert!(t.p.signal_pending(1));
}

#[test]
fn blocked_signal_is_delivered_on_unblock() {
    let mut t = setup();
    t.put(SCRATCH, &(1u64 << 5).to_le_bytes()); // SIGABRT
    assert_eq!(t.call(nr::RT_SIGPROCMASK, &[0, SCRATCH, 0, 8]), 0);
    assert_eq!(t.call(nr::TKILL, &[1, 6]), 0, "blocked: pending");
    assert_eq!(
        t.sys(nr::RT_SIGPROCMASK, &[1, SCRATCH, 0, 8]),
        SyscallOutcome::Exit {
            status: 134,
            signal: Some(6)
        }
    );
}

#[test]
fn rt_sigaction_records_and_validates() {
    let mut t = setup();
    put_sigaction(&t, SCRATCH, 0x40_1000, (1 << 8) | (1 << 1));
    assert_eq!(t.call(nr::RT_SIGACTION, &[2, SCRATCH, 0, 8]), 0);
    assert_eq!(t.call(nr::RT_SIGACTION, &[2, 0, SCRATCH + 0x100, 8]), 0);
    assert_eq!(t.u64_at(SCRATCH + 0x100), 0x40_1000);
    assert_eq!(t.u64_at(SCRATCH + 0x110), 0x1234);
    assert_eq!(
        t.u64_at(SCRATCH + 0x118),
        1 << 1,
        "SIGKILL is stripped from sa_mask"
    );
    assert_eq!(
        t.call(nr::RT_SIGACTION, &[9, SCRATCH, 0, 8]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::RT_SIGACTION, &[19, SCRATCH, 0, 8]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::RT_SIGACTION, &[9, 0, SCRATCH + 0x100, 8]),
        0,
        "reading SIGKILL's is fine"
    );
    assert_eq!(
        t.call(nr::RT_SIGACTION, &[0, SCRATCH, 0, 8]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::RT_SIGACTION, &[65, SCRATCH, 0, 8]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::RT_SIGACTION, &[2, SCRATCH, 0, 16]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::RT_SIGACTION, &[2, UNMAPPED, 0, 8]),
        err(Errno::EFAULT)
    );
    assert_eq!(t.call(nr::RT_SIGACTION, &[2, 0, RO, 8]), err(Errno::EFAULT));
}

#[test]
fn rt_sigprocmask_modes() {
    let mut t = setup();
    t.put(SCRATCH, &0b1010u64.to_le_bytes());
    assert_eq!(t.call(nr::RT_SIGPROCMASK, &[0, SCRATCH, 0, 8]), 0);
    t.put(SCRATCH, &0b0010u64.to_le_bytes());
    assert_eq!(t.call(nr::RT_SIGPROCMASK, &[1, SCRATCH, SCRATCH + 8, 8]), 0);
    assert_eq!(t.u64_at(SCRATCH + 8), 0b1010);
    t.put(SCRATCH, &u64::MAX.to_le_bytes());
    assert_eq!(t.call(nr::RT_SIGPROCMASK, &[2, SCRATCH, SCRATCH + 8, 8]), 0);
    assert_eq!(t.u64_at(SCRATCH + 8), 0b1000);
    assert_eq!(t.call(nr::RT_SIGPROCMASK, &[0, 0, SCRATCH + 8, 8]), 0);
    assert_eq!(
        t.u64_at(SCRATCH + 8),
        !((1u64 << 8) | (1 << 18)),
        "SIGKILL/SIGSTOP not blockable"
    );
    assert_eq!(
        t.call(nr::RT_SIGPROCMASK, &[3, SCRATCH, 0, 8]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::RT_SIGPROCMASK, &[3, 0, 0, 8]),
        0,
        "how is ignored without a set"
    );
    assert_eq!(
        t.call(nr::RT_SIGPROCMASK, &[0, SCRATCH, 0, 4]),
        err(Errno::EINVAL)
    );
    assert_eq!(
        t.call(nr::RT_SIGPROCMASK, &[0, UNMAPPED, 0, 8]),
        err(Errno::EFAULT)
    );
}

#[test]
fn sigaltstack_records() {
    let mut t = setup();
    assert_eq!(t.call(nr::SIGALTSTACK, &[0, SCRATCH]), 0);
    assert_eq!(t.u32_at(SCRATCH + 8), 2, "SS_DISABLE initially");
    t.put(
        SCRATCH + 0x100,
        &[
            SCRATCH.to_le_bytes(),
            0u64.to_le_bytes(),
            8192u64.to_le_bytes(),
        ]
        .concat(),
    );
    assert_eq!(t.call(nr::SIGALTSTACK, &[SCRATCH + 0x100, 0]), 0);
    assert_eq!(t.call(nr::SIGALTSTACK, &[0, SCRATCH + 0x200]), 0);
    assert_eq!(t.u64_at(SCRATCH + 0x200), SCRATCH);
    assert_eq!(t.u64_at(SCRATCH + 0x210), 8192);
    t.put(
        SCRATCH + 0x100,
        &[
            SCRATCH.to_le_bytes(),
            0u64.to_le_bytes(),
            100u64.to_le_bytes(),
        ]
        .concat(),
    );
    assert_eq!(
        t.call(nr::SIGALTSTACK, &[SCRATCH + 0x100, 0]),
        err(Errno::ENOMEM)
    );
    t.put(
        SCRATCH + 0x100,
        &[
            SCRATCH.to_le_bytes(),
            7u64.to_le_bytes(),
            8192u64.to_le_bytes(),
        ]
        .concat(),
    );
    assert_eq!(
        t.call(nr::SIGALTSTACK, &[SCRATCH + 0x100, 0]),
        err(Errno::EINVAL)
    );
}

#[test]
fn mremap_fixed_moves_to_the_given_address() {
    let mut t = setup();
    let a = t.call(nr::MMAP, &[0, 2 * PAGE_SIZE, PROT_RW, MAP_PRIVATE_ANON, NEG1, 0]) as u64;
    t.put(a, b"moved bytes");
    let target = 0x6000_0000u64;
    // MREMAP_MAYMOVE | MREMAP_FIXED = 3
    assert_eq!(t.call(nr::MREMAP, &[a, 2 * PAGE_SIZE, 3 * PAGE_SIZE, 3, target]) as u64, target);
    assert_eq!(t.get(target, 11), b"moved bytes");
    assert_eq!(t.prot_at(a), None, "the old place is gone");
    assert_eq!(t.prot_at(target + 2 * PAGE_SIZE), Some(Prot::READ | Prot::WRITE));
    // FIXED without MAYMOVE, an unaligned target, or an overlapping one: EINVAL.
    assert_eq!(t.call(nr::MREMAP, &[target, PAGE_SIZE, PAGE_SIZE, 2, 0x7000_0000]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::MREMAP, &[target, PAGE_SIZE, PAGE_SIZE, 3, 0x7000_0001]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::MREMAP, &[target, 2 * PAGE_SIZE, 2 * PAGE_SIZE, 3, target + PAGE_SIZE]), err(Errno::EINVAL));
}

#[test]
fn mlock_family_checks_the_range() {
    let mut t = setup();
    assert_eq!(t.call(149, &[SCRATCH + 10, 100]), 0, "mlock of mapped memory");
    assert_eq!(t.call(149, &[UNMAPPED, PAGE_SIZE]), err(Errno::ENOMEM));
    assert_eq!(t.call(150, &[SCRATCH, PAGE_SIZE]), 0, "munlock");
    assert_eq!(t.call(325, &[SCRATCH, PAGE_SIZE, 1]), 0, "mlock2(MLOCK_ONFAULT)");
    assert_eq!(t.call(325, &[SCRATCH, PAGE_SIZE, 2]), err(Errno::EINVAL));
    assert_eq!(t.call(151, &[3]), 0, "mlockall(MCL_CURRENT|MCL_FUTURE)");
    assert_eq!(t.call(151, &[4]), err(Errno::EINVAL), "MCL_ONFAULT alone");
    assert_eq!(t.call(152, &[]), 0, "munlockall");
}

#[test]
fn credentials_follow_linux_rules() {
    const GETUID: u64 = 102;
    const GETGID: u64 = 104;
    const SETUID: u64 = 105;
    const SETGID: u64 = 106;
    const GETEUID: u64 = 107;
    const SETREUID: u64 = 113;
    const GETGROUPS: u64 = 115;
    const SETGROUPS: u64 = 116;
    const SETRESUID: u64 = 117;
    const GETRESUID: u64 = 118;
    const GETRESGID: u64 = 120;
    const SETFSUID: u64 = 122;
    const KEEP: u64 = u32::MAX as u64;
    let mut t = setup();
    // memcached -u root: drop supplementary groups, then setgid/setuid to root's ids.
    assert_eq!(t.call(SETGROUPS, &[0, 0]), 0);
    assert_eq!(t.call(GETGROUPS, &[0, 0]), 0);
    assert_eq!(t.call(SETGID, &[0]), 0);
    assert_eq!(t.call(SETUID, &[0]), 0);
    assert_eq!(t.call(GETUID, &[]), 0);
    // Supplementary groups round trip, sorted; a short buffer is EINVAL.
    t.put(SCRATCH, &[[20u32.to_le_bytes(), 10u32.to_le_bytes()].concat(), vec![0; 8]].concat());
    assert_eq!(t.call(SETGROUPS, &[2, SCRATCH]), 0);
    assert_eq!(t.call(GETGROUPS, &[0, 0]), 2);
    assert_eq!(t.call(GETGROUPS, &[1, SCRATCH + 8]), err(Errno::EINVAL));
    assert_eq!(t.call(GETGROUPS, &[2, SCRATCH + 8]), 2);
    assert_eq!((t.u32_at(SCRATCH + 8), t.u32_at(SCRATCH + 12)), (10, 20));
    assert_eq!(t.call(SETGROUPS, &[(-1i64) as u64, SCRATCH]), err(Errno::EINVAL));
    assert_eq!(t.call(SETGROUPS, &[1, UNMAPPED]), err(Errno::EFAULT));
    assert_eq!(t.call(SETUID, &[KEEP]), err(Errno::EINVAL));
    // Root keeps a saved uid of 0 with setresuid and can come back.
    assert_eq!(t.call(SETRESUID, &[1000, 1000, KEEP]), 0);
    assert_eq!(t.call(GETRESUID, &[SCRATCH, SCRATCH + 4, SCRATCH + 8]), 0);
    assert_eq!((t.u32_at(SCRATCH), t.u32_at(SCRATCH + 4), t.u32_at(SCRATCH + 8)), (1000, 1000, 0));
    assert_eq!(t.call(GETEUID, &[]), 1000);
    assert_eq!(t.call(SETGROUPS, &[0, 0]), err(Errno::EPERM), "no CAP_SETGID without euid 0");
    assert_eq!(t.call(SETGID, &[5]), err(Errno::EPERM));
    assert_eq!(t.call(SETRESUID, &[2000, KEEP, KEEP]), err(Errno::EPERM));
    assert_eq!(t.call(SETREUID, &[KEEP, 0]), 0, "back to the saved uid");
    assert_eq!(t.call(GETEUID, &[]), 0);
    // Root's setuid sets all of them: no way back.
    assert_eq!(t.call(SETUID, &[1000]), 0);
    assert_eq!(t.call(GETRESUID, &[SCRATCH, SCRATCH + 4, SCRATCH + 8]), 0);
    assert_eq!((t.u32_at(SCRATCH), t.u32_at(SCRATCH + 4), t.u32_at(SCRATCH + 8)), (1000, 1000, 1000));
    assert_eq!(t.call(SETUID, &[0]), err(Errno::EPERM));
    assert_eq!(t.call(SETUID, &[1000]), 0, "to its own id is allowed");
    // setfsuid returns the old fs id and refuses quietly.
    assert_eq!(t.call(SETFSUID, &[0]), 1000);
    assert_eq!(t.call(SETFSUID, &[KEEP]), 1000);
    assert_eq!(t.call(GETGID, &[]), 0);
    assert_eq!(t.call(GETRESGID, &[SCRATCH, SCRATCH + 4, UNMAPPED]), err(Errno::EFAULT));
}

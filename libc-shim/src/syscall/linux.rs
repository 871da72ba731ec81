//! Linux x86_64 struct layouts, serialized explicitly to and from little-endian bytes.
//!
//! No transmutes: each struct says where each field goes. Offsets follow the x86_64 kernel
//! headers (`asm/stat.h`, `linux/time_types.h`, `linux/utsname.h`, `asm/signal.h`, ...).

/// A struct with a fixed size in app memory.
pub trait Layout {
    const SIZE: usize;
}

/// Can be written to app memory.
pub trait ToUser: Layout {
    /// Fills `out` (exactly `SIZE` bytes, zeroed).
    fn encode(&self, out: &mut [u8]);
}

/// Can be read from app memory.
pub trait FromUser: Layout + Sized {
    /// Decodes from exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
}

fn put(out: &mut [u8], off: usize, bytes: &[u8]) {
    out[off..off + bytes.len()].copy_from_slice(bytes);
}
fn put_u64(out: &mut [u8], off: usize, v: u64) {
    put(out, off, &v.to_le_bytes());
}
fn put_i64(out: &mut [u8], off: usize, v: i64) {
    put(out, off, &v.to_le_bytes());
}
fn put_u32(out: &mut [u8], off: usize, v: u32) {
    put(out, off, &v.to_le_bytes());
}
fn put_u16(out: &mut [u8], off: usize, v: u16) {
    put(out, off, &v.to_le_bytes());
}
fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}
fn get_i64(b: &[u8], off: usize) -> i64 {
    get_u64(b, off) as i64
}
fn get_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

macro_rules! scalar {
    ($($ty:ty),*) => {$(
        impl Layout for $ty {
            const SIZE: usize = core::mem::size_of::<$ty>();
        }
        impl ToUser for $ty {
            fn encode(&self, out: &mut [u8]) {
                put(out, 0, &self.to_le_bytes());
            }
        }
        impl FromUser for $ty {
            fn decode(bytes: &[u8]) -> Self {
                let mut a = [0u8; core::mem::size_of::<$ty>()];
                a.copy_from_slice(&bytes[..core::mem::size_of::<$ty>()]);
                <$ty>::from_le_bytes(a)
            }
        }
    )*};
}
scalar!(u8, u32, i32, u64, i64);

/// `struct timespec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

pub const NSEC_PER_SEC: u64 = 1_000_000_000;

impl Timespec {
    pub fn from_ns(ns: u64) -> Self {
        Timespec {
            sec: (ns / NSEC_PER_SEC) as i64,
            nsec: (ns % NSEC_PER_SEC) as i64,
        }
    }
    /// Nanoseconds, or `None` if the value is not a valid timespec (negative or
    /// `nsec` outside `0..1e9`). Saturates on overflow.
    pub fn to_ns(self) -> Option<u64> {
        if self.sec < 0 || !(0..NSEC_PER_SEC as i64).contains(&self.nsec) {
            return None;
        }
        Some(
            (self.sec as u64)
                .saturating_mul(NSEC_PER_SEC)
                .saturating_add(self.nsec as u64),
        )
    }
}

impl Layout for Timespec {
    const SIZE: usize = 16;
}
impl ToUser for Timespec {
    fn encode(&self, out: &mut [u8]) {
        put_i64(out, 0, self.sec);
        put_i64(out, 8, self.nsec);
    }
}
impl FromUser for Timespec {
    fn decode(b: &[u8]) -> Self {
        Timespec {
            sec: get_i64(b, 0),
            nsec: get_i64(b, 8),
        }
    }
}

/// `struct timeval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeval {
    pub sec: i64,
    pub usec: i64,
}

impl Timeval {
    pub fn from_ns(ns: u64) -> Self {
        Timeval {
            sec: (ns / NSEC_PER_SEC) as i64,
            usec: ((ns % NSEC_PER_SEC) / 1000) as i64,
        }
    }
}

impl Layout for Timeval {
    const SIZE: usize = 16;
}
impl ToUser for Timeval {
    fn encode(&self, out: &mut [u8]) {
        put_i64(out, 0, self.sec);
        put_i64(out, 8, self.usec);
    }
}

/// `struct timezone` (always zero: UTC, no DST).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timezone;
impl Layout for Timezone {
    const SIZE: usize = 8;
}
impl ToUser for Timezone {
    fn encode(&self, _out: &mut [u8]) {}
}

pub const S_IFMT: u32 = 0o170000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;

/// `struct stat` (x86_64 `asm/stat.h`, 144 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
}

impl Layout for Stat {
    const SIZE: usize = 144;
}
impl ToUser for Stat {
    fn encode(&self, out: &mut [u8]) {
        put_u64(out, 0, self.dev);
        put_u64(out, 8, self.ino);
        put_u64(out, 16, self.nlink);
        put_u32(out, 24, self.mode);
        put_u32(out, 28, self.uid);
        put_u32(out, 32, self.gid);
        put_u64(out, 40, self.rdev);
        put_i64(out, 48, self.size);
        put_i64(out, 56, self.blksize);
        put_i64(out, 64, self.blocks);
        self.atime.encode(&mut out[72..88]);
        self.mtime.encode(&mut out[88..104]);
        self.ctime.encode(&mut out[104..120]);
    }
}

/// `struct statx` (256 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statx {
    pub mask: u32,
    pub blksize: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub mode: u16,
    pub ino: u64,
    pub size: u64,
    pub blocks: u64,
    pub atime: Timespec,
    pub btime: Timespec,
    pub ctime: Timespec,
    pub mtime: Timespec,
    pub rdev: (u32, u32),
    pub dev: (u32, u32),
    pub mnt_id: u64,
}

impl Layout for Statx {
    const SIZE: usize = 256;
}
impl ToUser for Statx {
    fn encode(&self, out: &mut [u8]) {
        put_u32(out, 0, self.mask);
        put_u32(out, 4, self.blksize);
        put_u32(out, 16, self.nlink);
        put_u32(out, 20, self.uid);
        put_u32(out, 24, self.gid);
        put_u16(out, 28, self.mode);
        put_u64(out, 32, self.ino);
        put_u64(out, 40, self.size);
        put_u64(out, 48, self.blocks);
        for (off, t) in [(64, self.atime), (80, self.btime), (96, self.ctime), (112, self.mtime)] {
            put_i64(out, off, t.sec);
            put_u32(out, off + 8, t.nsec as u32);
        }
        put_u32(out, 128, self.rdev.0);
        put_u32(out, 132, self.rdev.1);
        put_u32(out, 136, self.dev.0);
        put_u32(out, 140, self.dev.1);
        put_u64(out, 144, self.mnt_id);
    }
}

/// `struct statfs` (x86_64, 120 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Statfs {
    pub fs_type: u64,
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub fsid: u64,
    pub namelen: u64,
    pub frsize: u64,
    pub flags: u64,
}

impl Layout for Statfs {
    const SIZE: usize = 120;
}
impl ToUser for Statfs {
    fn encode(&self, out: &mut [u8]) {
        for (i, v) in [
            self.fs_type, self.bsize, self.blocks, self.bfree, self.bavail, self.files, self.ffree, self.fsid,
            self.namelen, self.frsize, self.flags,
        ]
        .iter()
        .enumerate()
        {
            put_u64(out, i * 8, *v);
        }
    }
}

/// `struct flock` (x86_64, 32 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flock {
    pub ltype: i16,
    pub whence: i16,
    pub start: i64,
    pub len: i64,
    pub pid: i32,
}

impl Layout for Flock {
    const SIZE: usize = 32;
}
impl ToUser for Flock {
    fn encode(&self, out: &mut [u8]) {
        put_u16(out, 0, self.ltype as u16);
        put_u16(out, 2, self.whence as u16);
        put_i64(out, 8, self.start);
        put_i64(out, 16, self.len);
        put_u32(out, 24, self.pid as u32);
    }
}
impl FromUser for Flock {
    fn decode(b: &[u8]) -> Self {
        Flock {
            ltype: i16::from_le_bytes([b[0], b[1]]),
            whence: i16::from_le_bytes([b[2], b[3]]),
            start: get_i64(b, 8),
            len: get_i64(b, 16),
            pid: get_u32(b, 24) as i32,
        }
    }
}

/// `struct open_how` (openat2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenHow {
    pub flags: u64,
    pub mode: u64,
    pub resolve: u64,
}

impl Layout for OpenHow {
    const SIZE: usize = 24;
}
impl FromUser for OpenHow {
    fn decode(b: &[u8]) -> Self {
        OpenHow { flags: get_u64(b, 0), mode: get_u64(b, 8), resolve: get_u64(b, 16) }
    }
}

/// Appends one `struct linux_dirent64` to `out` if it fits in `limit` bytes; returns whether
/// it did.
pub fn push_dirent64(out: &mut alloc::vec::Vec<u8>, limit: usize, ino: u64, next_off: i64, dtype: u8, name: &[u8]) -> bool {
    let reclen = (19 + name.len() + 1).next_multiple_of(8);
    if out.len() + reclen > limit {
        return false;
    }
    let start = out.len();
    out.resize(start + reclen, 0);
    let rec = &mut out[start..];
    put_u64(rec, 0, ino);
    put_i64(rec, 8, next_off);
    put_u16(rec, 16, reclen as u16);
    rec[18] = dtype;
    rec[19..19 + name.len()].copy_from_slice(name);
    true
}

/// `struct utimbuf` / a pair of `timeval`s: read as two (sec, sub-second) pairs elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimevalIn {
    pub sec: i64,
    pub usec: i64,
}
impl Layout for TimevalIn {
    const SIZE: usize = 16;
}
impl FromUser for TimevalIn {
    fn decode(b: &[u8]) -> Self {
        TimevalIn { sec: get_i64(b, 0), usec: get_i64(b, 8) }
    }
}

/// Length of each `struct utsname` field, NUL included.
pub const UTS_FIELD: usize = 65;

/// `struct new_utsname`: six 65-byte NUL-padded fields.
#[derive(Debug, Clone, Copy)]
pub struct Utsname<'a> {
    pub sysname: &'a str,
    pub nodename: &'a str,
    pub release: &'a str,
    pub version: &'a str,
    pub machine: &'a str,
    pub domainname: &'a str,
}

impl Layout for Utsname<'_> {
    const SIZE: usize = 6 * UTS_FIELD;
}
impl ToUser for Utsname<'_> {
    fn encode(&self, out: &mut [u8]) {
        let fields = [
            self.sysname,
            self.nodename,
            self.release,
            self.version,
            self.machine,
            self.domainname,
        ];
        for (i, field) in fields.iter().enumerate() {
            let bytes = &field.as_bytes()[..field.len().min(UTS_FIELD - 1)];
            put(out, i * UTS_FIELD, bytes);
        }
    }
}

/// `struct rlimit` / `struct rlimit64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

pub const RLIM_INFINITY: u64 = u64::MAX;

impl Layout for Rlimit {
    const SIZE: usize = 16;
}
impl ToUser for Rlimit {
    fn encode(&self, out: &mut [u8]) {
        put_u64(out, 0, self.cur);
        put_u64(out, 8, self.max);
    }
}
impl FromUser for Rlimit {
    fn decode(b: &[u8]) -> Self {
        Rlimit {
            cur: get_u64(b, 0),
            max: get_u64(b, 8),
        }
    }
}

/// The kernel's `struct sigaction` on x86_64 (not libc's): handler, flags, restorer, mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

pub const SIG_DFL: u64 = 0;
pub const SIG_IGN: u64 = 1;

impl Layout for KSigaction {
    const SIZE: usize = 32;
}
impl ToUser for KSigaction {
    fn encode(&self, out: &mut [u8]) {
        put_u64(out, 0, self.handler);
        put_u64(out, 8, self.flags);
        put_u64(out, 16, self.restorer);
        put_u64(out, 24, self.mask);
    }
}
impl FromUser for KSigaction {
    fn decode(b: &[u8]) -> Self {
        KSigaction {
            handler: get_u64(b, 0),
            flags: get_u64(b, 8),
            restorer: get_u64(b, 16),
            mask: get_u64(b, 24),
        }
    }
}

/// `stack_t` (for sigaltstack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StackT {
    pub sp: u64,
    pub flags: i32,
    pub size: u64,
}

impl Layout for StackT {
    const SIZE: usize = 24;
}
impl ToUser for StackT {
    fn encode(&self, out: &mut [u8]) {
        put_u64(out, 0, self.sp);
        put_u32(out, 8, self.flags as u32);
        put_u64(out, 16, self.size);
    }
}
impl FromUser for StackT {
    fn decode(b: &[u8]) -> Self {
        StackT {
            sp: get_u64(b, 0),
            flags: get_u32(b, 8) as i32,
            size: get_u64(b, 16),
        }
    }
}

/// `struct iovec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iovec {
    pub base: u64,
    pub len: u64,
}

impl Layout for Iovec {
    const SIZE: usize = 16;
}
impl FromUser for Iovec {
    fn decode(b: &[u8]) -> Self {
        Iovec {
            base: get_u64(b, 0),
            len: get_u64(b, 8),
        }
    }
}

/// Number of control characters in the kernel's `struct termios`.
pub const NCCS: usize = 19;

/// The kernel's `struct termios` (what TCGETS fills; 36 bytes, not glibc's 60).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

impl Termios {
    /// What a freshly opened Linux tty reports (`stty sane`, 38400 baud, 8 bits).
    pub fn sane() -> Self {
        const ICRNL: u32 = 0o400;
        const IXON: u32 = 0o2000;
        const OPOST: u32 = 0o1;
        const ONLCR: u32 = 0o4;
        const B38400: u32 = 0o17;
        const CS8: u32 = 0o60;
        const CREAD: u32 = 0o200;
        const HUPCL: u32 = 0o2000;
        const ISIG: u32 = 0o1;
        const ICANON: u32 = 0o2;
        const ECHO: u32 = 0o10;
        const ECHOE: u32 = 0o20;
        const ECHOK: u32 = 0o40;
        const ECHOCTL: u32 = 0o1000;
        const ECHOKE: u32 = 0o4000;
        const IEXTEN: u32 = 0o100000;
        // VINTR VQUIT VERASE VKILL VEOF VTIME VMIN VSWTC VSTART VSTOP VSUSP VEOL VREPRINT
        // VDISCARD VWERASE VLNEXT VEOL2
        let cc = [
            3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0, 0,
        ];
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: B38400 | CS8 | CREAD | HUPCL,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc,
        }
    }
}

impl Layout for Termios {
    const SIZE: usize = 16 + 1 + NCCS;
}
impl ToUser for Termios {
    fn encode(&self, out: &mut [u8]) {
        put_u32(out, 0, self.iflag);
        put_u32(out, 4, self.oflag);
        put_u32(out, 8, self.cflag);
        put_u32(out, 12, self.lflag);
        out[16] = self.line;
        put(out, 17, &self.cc);
    }
}
impl FromUser for Termios {
    fn decode(b: &[u8]) -> Self {
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&b[17..17 + NCCS]);
        Termios {
            iflag: get_u32(b, 0),
            oflag: get_u32(b, 4),
            cflag: get_u32(b, 8),
            lflag: get_u32(b, 12),
            line: b[16],
            cc,
        }
    }
}

/// `struct winsize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Winsize {
    pub rows: u16,
    pub cols: u16,
    pub xpixel: u16,
    pub ypixel: u16,
}

impl Layout for Winsize {
    const SIZE: usize = 8;
}
impl ToUser for Winsize {
    fn encode(&self, out: &mut [u8]) {
        put_u16(out, 0, self.rows);
        put_u16(out, 2, self.cols);
        put_u16(out, 4, self.xpixel);
        put_u16(out, 6, self.ypixel);
    }
}
impl FromUser for Winsize {
    fn decode(b: &[u8]) -> Self {
        let h = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        Winsize {
            rows: h(0),
            cols: h(2),
            xpixel: h(4),
            ypixel: h(6),
        }
    }
}

/// `struct sysinfo` (x86_64, 112 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sysinfo {
    pub uptime: i64,
    pub loads: [u64; 3],
    pub totalram: u64,
    pub freeram: u64,
    pub sharedram: u64,
    pub bufferram: u64,
    pub totalswap: u64,
    pub freeswap: u64,
    pub procs: u16,
    pub totalhigh: u64,
    pub freehigh: u64,
    pub mem_unit: u32,
}

impl Layout for Sysinfo {
    const SIZE: usize = 112;
}
impl ToUser for Sysinfo {
    fn encode(&self, out: &mut [u8]) {
        put_i64(out, 0, self.uptime);
        for (i, l) in self.loads.iter().enumerate() {
            put_u64(out, 8 + 8 * i, *l);
        }
        put_u64(out, 32, self.totalram);
        put_u64(out, 40, self.freeram);
        put_u64(out, 48, self.sharedram);
        put_u64(out, 56, self.bufferram);
        put_u64(out, 64, self.totalswap);
        put_u64(out, 72, self.freeswap);
        put_u16(out, 80, self.procs);
        put_u64(out, 88, self.totalhigh);
        put_u64(out, 96, self.freehigh);
        put_u32(out, 104, self.mem_unit);
    }
}

/// `struct rusage` (two timevals then fourteen longs; only the times are filled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rusage {
    pub utime: Timeval,
    pub stime: Timeval,
    /// Maximum resident set size in KiB.
    pub maxrss: i64,
}

impl Layout for Rusage {
    const SIZE: usize = 144;
}
impl ToUser for Rusage {
    fn encode(&self, out: &mut [u8]) {
        self.utime.encode(&mut out[0..16]);
        self.stime.encode(&mut out[16..32]);
        put_i64(out, 32, self.maxrss);
    }
}

/// `struct tms` (clock ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tms {
    pub utime: i64,
    pub stime: i64,
    pub cutime: i64,
    pub cstime: i64,
}

impl Layout for Tms {
    const SIZE: usize = 32;
}
impl ToUser for Tms {
    fn encode(&self, out: &mut [u8]) {
        put_i64(out, 0, self.utime);
        put_i64(out, 8, self.stime);
        put_i64(out, 16, self.cutime);
        put_i64(out, 24, self.cstime);
    }
}

/// `siginfo_t` (128 bytes): `si_signo`, `si_errno`, `si_code` at 0, 4, 8, then the union at 16.
/// Kept as bytes, because which union member is live depends on the signal and code.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigInfo(pub [u8; SigInfo::SIZE]);

impl core::fmt::Debug for SigInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SigInfo {{ signo: {}, code: {} }}", self.signo(), self.code())
    }
}

/// `si_code` values.
pub const SI_USER: i32 = 0;
pub const SI_KERNEL: i32 = 0x80;
pub const SI_QUEUE: i32 = -1;
pub const SI_TIMER: i32 = -2;
pub const SI_TKILL: i32 = -6;

impl SigInfo {
    /// A siginfo with only the three common fields set.
    pub fn new(signo: u8, code: i32) -> Self {
        let mut b = [0u8; SigInfo::SIZE];
        put_u32(&mut b, 0, signo as u32);
        put_u32(&mut b, 8, code as u32);
        SigInfo(b)
    }
    /// kill (`SI_USER`), tkill/tgkill (`SI_TKILL`), the kernel (`SI_KERNEL`): `_kill { si_pid, si_uid }`.
    pub fn kill(signo: u8, code: i32, pid: i32, uid: u32) -> Self {
        let mut s = Self::new(signo, code);
        put_u32(&mut s.0, 16, pid as u32);
        put_u32(&mut s.0, 20, uid);
        s
    }
    /// A POSIX timer's expiry (`SI_TIMER`): `_timer { si_tid, si_overrun, si_sigval }`.
    pub fn timer(signo: u8, timer_id: i32, overrun: i32, value: u64) -> Self {
        let mut s = Self::new(signo, SI_TIMER);
        put_u32(&mut s.0, 16, timer_id as u32);
        put_u32(&mut s.0, 20, overrun as u32);
        put_u64(&mut s.0, 24, value);
        s
    }
    /// A CPU fault: `_sigfault { si_addr }`.
    pub fn fault(signo: u8, code: i32, addr: u64) -> Self {
        let mut s = Self::new(signo, code);
        put_u64(&mut s.0, 16, addr);
        s
    }
    pub fn signo(&self) -> u8 {
        get_u32(&self.0, 0) as u8
    }
    pub fn code(&self) -> i32 {
        get_u32(&self.0, 8) as i32
    }
    pub fn set_signo(&mut self, signo: u8) {
        put_u32(&mut self.0, 0, signo as u32);
    }
    /// `si_overrun` of a timer signal.
    pub fn set_overrun(&mut self, overrun: i32) {
        put_u32(&mut self.0, 20, overrun as u32);
    }
}

impl Layout for SigInfo {
    const SIZE: usize = 128;
}
impl ToUser for SigInfo {
    fn encode(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0);
    }
}
impl FromUser for SigInfo {
    fn decode(b: &[u8]) -> Self {
        let mut a = [0u8; SigInfo::SIZE];
        a.copy_from_slice(&b[..SigInfo::SIZE]);
        SigInfo(a)
    }
}

/// `struct sigevent` (64 bytes): value, signo, notify, then the thread id for `SIGEV_THREAD_ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sigevent {
    pub value: u64,
    pub signo: i32,
    pub notify: i32,
    pub thread_id: i32,
}

pub const SIGEV_SIGNAL: i32 = 0;
pub const SIGEV_NONE: i32 = 1;
pub const SIGEV_THREAD: i32 = 2;
pub const SIGEV_THREAD_ID: i32 = 4;

impl Layout for Sigevent {
    const SIZE: usize = 64;
}
impl FromUser for Sigevent {
    fn decode(b: &[u8]) -> Self {
        Sigevent {
            value: get_u64(b, 0),
            signo: get_u32(b, 8) as i32,
            notify: get_u32(b, 12) as i32,
            thread_id: get_u32(b, 16) as i32,
        }
    }
}

/// `struct itimerspec`: the interval first, then the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Itimerspec {
    pub interval: Timespec,
    pub value: Timespec,
}

impl Layout for Itimerspec {
    const SIZE: usize = 32;
}
impl ToUser for Itimerspec {
    fn encode(&self, out: &mut [u8]) {
        self.interval.encode(&mut out[0..16]);
        self.value.encode(&mut out[16..32]);
    }
}
impl FromUser for Itimerspec {
    fn decode(b: &[u8]) -> Self {
        Itimerspec {
            interval: Timespec::decode(&b[0..16]),
            value: Timespec::decode(&b[16..32]),
        }
    }
}

/// `struct itimerval` (setitimer): the interval first, then the value, in timevals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Itimerval {
    pub interval: Timeval,
    pub value: Timeval,
}

impl Timeval {
    /// Nanoseconds, or `None` if not a valid timeval (negative or `usec` outside `0..1e6`).
    pub fn to_ns(self) -> Option<u64> {
        if self.sec < 0 || !(0..1_000_000).contains(&self.usec) {
            return None;
        }
        Some((self.sec as u64).saturating_mul(NSEC_PER_SEC).saturating_add(self.usec as u64 * 1000))
    }
}

impl FromUser for Timeval {
    fn decode(b: &[u8]) -> Self {
        Timeval { sec: get_i64(b, 0), usec: get_i64(b, 8) }
    }
}

impl Layout for Itimerval {
    const SIZE: usize = 32;
}
impl ToUser for Itimerval {
    fn encode(&self, out: &mut [u8]) {
        self.interval.encode(&mut out[0..16]);
        self.value.encode(&mut out[16..32]);
    }
}
impl FromUser for Itimerval {
    fn decode(b: &[u8]) -> Self {
        Itimerval {
            interval: Timeval::decode(&b[0..16]),
            value: Timeval::decode(&b[16..32]),
        }
    }
}

/// Little-endian field access for code that lays out bigger structures by offset (the
/// signal frame).
pub(crate) mod bytes {
    pub fn put_u64(out: &mut [u8], off: usize, v: u64) {
        super::put_u64(out, off, v)
    }
    pub fn put_u32(out: &mut [u8], off: usize, v: u32) {
        super::put_u32(out, off, v)
    }
    pub fn put_u16(out: &mut [u8], off: usize, v: u16) {
        super::put_u16(out, off, v)
    }
    pub fn get_u64(b: &[u8], off: usize) -> u64 {
        super::get_u64(b, off)
    }
    pub fn get_u32(b: &[u8], off: usize) -> u32 {
        super::get_u32(b, off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<T: ToUser>(v: &T) -> alloc::vec::Vec<u8> {
        let mut b = alloc::vec![0u8; T::SIZE];
        v.encode(&mut b);
        b
    }

    #[test]
    fn stat_fields_land_at_kernel_offsets() {
        let st = Stat {
            mode: 0o20620,
            rdev: 0x8801,
            blksize: 1024,
            ..Default::default()
        };
        let b = bytes(&st);
        assert_eq!(b.len(), 144);
        assert_eq!(&b[24..28], &0o20620u32.to_le_bytes());
        assert_eq!(&b[40..48], &0x8801u64.to_le_bytes());
        assert_eq!(&b[56..64], &1024i64.to_le_bytes());
    }

    #[test]
    fn sigaction_round_trips() {
        let sa = KSigaction {
            handler: 0x401000,
            flags: 0x0400_0000,
            restorer: 0x402000,
            mask: 1 << 5,
        };
        assert_eq!(KSigaction::decode(&bytes(&sa)), sa);
    }

    #[test]
    fn timespec_validation() {
        assert_eq!(Timespec { sec: 1, nsec: 5 }.to_ns(), Some(1_000_000_005));
        assert_eq!(Timespec { sec: -1, nsec: 0 }.to_ns(), None);
        assert_eq!(
            Timespec {
                sec: 0,
                nsec: 1_000_000_000
            }
            .to_ns(),
            None
        );
    }

    #[test]
    fn utsname_is_nul_padded() {
        let u = Utsname {
            sysname: "Linux",
            nodename: "kiln",
            release: "r",
            version: "v",
            machine: "x86_64",
            domainname: "(none)",
        };
        let b = bytes(&u);
        assert_eq!(b.len(), 390);
        assert_eq!(&b[0..6], b"Linux\0");
        assert_eq!(&b[65..70], b"kiln\0");
        assert_eq!(&b[260..267], b"x86_64\0");
    }
}

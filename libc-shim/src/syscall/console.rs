//! The console file descriptors (0, 1, 2) and the few path calls that need no filesystem.
//!
//! There is no file table yet: fds 0-2 are the console, everything else is `EBADF`. Paths
//! other than `/proc/self/exe` do not exist.

use alloc::vec;
use alloc::vec::Vec;

use super::Ctx;
use super::args::{Fd, FromReg, UserCStr, UserPtr, flags_arg};
use super::linux::{Iovec, S_IFCHR, Stat, Termios, Timespec, Winsize};
use crate::errno::Errno;
use crate::platform::Platform;

/// Largest single transfer (Linux's `MAX_RW_COUNT`, INT_MAX rounded down to a page).
const MAX_RW_COUNT: usize = 0x7fff_f000;
/// Largest iovec count (`IOV_MAX`).
const IOV_MAX: usize = 1024;
/// Bytes moved through the kernel per step.
const CHUNK: usize = 4096;

/// Which console fd, if `fd` is an open one.
fn console<P: Platform>(ctx: &Ctx<'_, P>, fd: Fd) -> Result<usize, Errno> {
    match fd.0 {
        0..=2 if ctx.process.console_open[fd.0 as usize] => Ok(fd.0 as usize),
        _ => Err(Errno::EBADF),
    }
}

fn check_readable<P: Platform>(ctx: &Ctx<'_, P>, fd: Fd) -> Result<(), Errno> {
    match console(ctx, fd)? {
        0 => Ok(()),
        // A terminal is one read/write device whichever fd it is opened as.
        _ if ctx.platform.console_is_terminal() => Ok(()),
        _ => Err(Errno::EBADF),
    }
}

fn check_writable<P: Platform>(ctx: &Ctx<'_, P>, fd: Fd) -> Result<(), Errno> {
    match console(ctx, fd)? {
        0 if !ctx.platform.console_is_terminal() => Err(Errno::EBADF),
        _ => Ok(()),
    }
}

/// Reads console input into `[addr, addr+len)`; returns the count (0 at end of input).
fn read_into<P: Platform>(ctx: &Ctx<'_, P>, addr: u64, len: usize) -> Result<usize, Errno> {
    let len = len.min(MAX_RW_COUNT);
    if len == 0 {
        return Ok(0);
    }
    ctx.check_user(addr, len as u64, crate::Prot::WRITE)?;
    let mut buf = vec![0u8; len.min(64 * 1024)];
    let n = ctx.platform.console_read(&mut buf);
    ctx.write_bytes(addr, &buf[..n])?;
    Ok(n)
}

/// Writes `[addr, addr+len)` to the console (fd 2 to its error channel); returns the count.
fn write_from<P: Platform>(ctx: &Ctx<'_, P>, fd: Fd, addr: u64, len: usize) -> Result<usize, Errno> {
    let len = len.min(MAX_RW_COUNT);
    ctx.check_user(addr, len as u64, crate::Prot::READ)?;
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(CHUNK);
        ctx.read_bytes(addr + done as u64, &mut buf[..n])?;
        if fd == Fd::STDERR {
            ctx.platform.console_write_err(&buf[..n]);
        } else {
            ctx.platform.console_write(&buf[..n]);
        }
        done += n;
    }
    Ok(len)
}

pub fn sys_read<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    buf: UserPtr<u8>,
    len: usize,
) -> Result<usize, Errno> {
    check_readable(ctx, fd)?;
    read_into(ctx, buf.addr(), len)
}

pub fn sys_write<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    buf: UserPtr<u8>,
    len: usize,
) -> Result<usize, Errno> {
    check_writable(ctx, fd)?;
    write_from(ctx, fd, buf.addr(), len)
}

/// Reads and validates an iovec array: `EINVAL` for a bad count or a total over `ssize_t`.
fn iovecs<P: Platform>(
    ctx: &Ctx<'_, P>,
    iov: UserPtr<Iovec>,
    count: i32,
) -> Result<Vec<Iovec>, Errno> {
    let count = usize::try_from(count).map_err(|_| Errno::EINVAL)?;
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let v = ctx.read_array(iov, count)?;
    let mut total: u64 = 0;
    for i in &v {
        total = total
            .checked_add(i.len)
            .filter(|t| *t <= i64::MAX as u64)
            .ok_or(Errno::EINVAL)?;
    }
    Ok(v)
}

pub fn sys_readv<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
) -> Result<usize, Errno> {
    check_readable(ctx, fd)?;
    let mut total = 0;
    for v in iovecs(ctx, iov, count)? {
        let n = match read_into(ctx, v.base, v.len as usize) {
            Ok(n) => n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        };
        total += n;
        if n < v.len as usize {
            break;
        }
    }
    Ok(total)
}

pub fn sys_writev<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
) -> Result<usize, Errno> {
    check_writable(ctx, fd)?;
    let mut total = 0usize;
    for v in iovecs(ctx, iov, count)? {
        match write_from(ctx, fd, v.base, v.len as usize) {
            Ok(n) => total += n,
            Err(e) if total == 0 => return Err(e),
            Err(_) => break,
        }
        if total >= MAX_RW_COUNT {
            break;
        }
    }
    Ok(total)
}

pub fn sys_close<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd) -> Result<usize, Errno> {
    let i = console(ctx, fd)?;
    ctx.process.console_open[i] = false;
    Ok(0)
}

pub fn sys_lseek<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    _offset: i64,
    _whence: u32,
) -> Result<usize, Errno> {
    console(ctx, fd)?;
    Err(Errno::ESPIPE)
}

/// `makedev(136, 1)`: /dev/pts/1, what a terminal on Linux reports.
const PTS_RDEV: u64 = 0x8801;
/// `makedev(5, 1)`: /dev/console.
const CONSOLE_RDEV: u64 = 0x0501;

fn console_stat<P: Platform>(ctx: &Ctx<'_, P>, fd: usize) -> Stat {
    let now = Timespec::from_ns(ctx.platform.realtime_ns());
    Stat {
        dev: 0x18,
        ino: 3 + fd as u64,
        nlink: 1,
        mode: S_IFCHR | 0o620,
        uid: 0,
        gid: 5, // tty
        rdev: if ctx.platform.console_is_terminal() {
            PTS_RDEV
        } else {
            CONSOLE_RDEV
        },
        size: 0,
        blksize: 1024,
        blocks: 0,
        atime: now,
        mtime: now,
        ctime: now,
    }
}

pub fn sys_fstat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    statbuf: UserPtr<Stat>,
) -> Result<usize, Errno> {
    let i = console(ctx, fd)?;
    ctx.write(statbuf, &console_stat(ctx, i))?;
    Ok(0)
}

bitflags::bitflags! {
    /// `AT_*` flags accepted by newfstatat.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AtFlags: u32 {
        const SYMLINK_NOFOLLOW = 0x100;
        const NO_AUTOMOUNT = 0x800;
        const EMPTY_PATH = 0x1000;
    }
}
flags_arg!(AtFlags);

pub fn sys_newfstatat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    statbuf: UserPtr<Stat>,
    flags: AtFlags,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    if path.is_empty() {
        if !flags.contains(AtFlags::EMPTY_PATH) {
            return Err(Errno::ENOENT);
        }
        if dirfd == Fd::AT_FDCWD {
            // The cwd "/" is a directory we cannot describe without a filesystem.
            return Err(Errno::ENOENT);
        }
        return sys_fstat(ctx, dirfd, statbuf);
    }
    resolve_dirfd(ctx, dirfd, &path)?;
    Err(Errno::ENOENT)
}

/// Checks `dirfd` the way the `*at` calls do for a relative `path`.
fn resolve_dirfd<P: Platform>(ctx: &Ctx<'_, P>, dirfd: Fd, path: &[u8]) -> Result<(), Errno> {
    if path.first() == Some(&b'/') || dirfd == Fd::AT_FDCWD {
        return Ok(());
    }
    console(ctx, dirfd)?;
    Err(Errno::ENOTDIR)
}

const PROC_SELF_EXE: &[u8] = b"/proc/self/exe";

fn readlink_common<P: Platform>(
    ctx: &Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    buf: UserPtr<u8>,
    size: i32,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    resolve_dirfd(ctx, dirfd, &path)?;
    let absolute = path.first() == Some(&b'/');
    // The cwd is "/", so "proc/self/exe" relative to it names the same link.
    if !(path == PROC_SELF_EXE || (!absolute && path == PROC_SELF_EXE[1..])) {
        return Err(Errno::ENOENT);
    }
    let target = ctx.process.exe_path.as_bytes();
    let n = target.len().min(size as usize);
    ctx.write_bytes(buf.addr(), &target[..n])?;
    Ok(n)
}

pub fn sys_readlink<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    buf: UserPtr<u8>,
    size: i32,
) -> Result<usize, Errno> {
    readlink_common(ctx, Fd::AT_FDCWD, path, buf, size)
}

pub fn sys_readlinkat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    buf: UserPtr<u8>,
    size: i32,
) -> Result<usize, Errno> {
    readlink_common(ctx, dirfd, path, buf, size)
}

pub fn sys_getcwd<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    buf: UserPtr<u8>,
    size: usize,
) -> Result<usize, Errno> {
    const CWD: &[u8] = b"/\0";
    if size < CWD.len() {
        return Err(Errno::ERANGE);
    }
    ctx.write_bytes(buf.addr(), CWD)?;
    Ok(CWD.len())
}

pub fn sys_umask<P: Platform>(ctx: &mut Ctx<'_, P>, mask: u32) -> Result<usize, Errno> {
    let old = ctx.process.umask;
    ctx.process.umask = mask & 0o777;
    Ok(old as usize)
}

/// ioctl request numbers the console understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoctlRequest(pub u32);

impl IoctlRequest {
    pub const TCGETS: Self = Self(0x5401);
    pub const TCSETS: Self = Self(0x5402);
    pub const TCSETSW: Self = Self(0x5403);
    pub const TCSETSF: Self = Self(0x5404);
    pub const TIOCGWINSZ: Self = Self(0x5413);
    pub const TIOCSWINSZ: Self = Self(0x5414);
    pub const FIONBIO: Self = Self(0x5421);
    pub const FIONCLEX: Self = Self(0x5450);
    pub const FIOCLEX: Self = Self(0x5451);
}

impl FromReg for IoctlRequest {
    fn from_reg(raw: u64) -> Result<Self, super::args::ArgError> {
        Ok(IoctlRequest(raw as u32))
    }
}

pub fn sys_ioctl<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    request: IoctlRequest,
    arg: u64,
) -> Result<usize, Errno> {
    console(ctx, fd)?;
    let terminal = ctx.platform.console_is_terminal();
    match request {
        IoctlRequest::FIONBIO => {
            ctx.read(UserPtr::<i32>::new(arg))?;
            Ok(0)
        }
        IoctlRequest::FIOCLEX | IoctlRequest::FIONCLEX => Ok(0),
        _ if !terminal => Err(Errno::ENOTTY),
        IoctlRequest::TCGETS => {
            ctx.write(UserPtr::new(arg), &Termios::sane())?;
            Ok(0)
        }
        IoctlRequest::TCSETS | IoctlRequest::TCSETSW | IoctlRequest::TCSETSF => {
            // Accepted and ignored: the console has no line discipline to configure.
            ctx.read(UserPtr::<Termios>::new(arg))?;
            Ok(0)
        }
        IoctlRequest::TIOCGWINSZ => {
            ctx.write(
                UserPtr::new(arg),
                &Winsize {
                    rows: 24,
                    cols: 80,
                    xpixel: 0,
                    ypixel: 0,
                },
            )?;
            Ok(0)
        }
        IoctlRequest::TIOCSWINSZ => {
            ctx.read(UserPtr::<Winsize>::new(arg))?;
            Ok(0)
        }
        // TIOCGPGRP, TIOCSPGRP, ...: no job control, the console has no process group.
        _ => Err(Errno::ENOTTY),
    }
}

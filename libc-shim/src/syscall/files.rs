//! File-descriptor syscalls: read/write and their vector and positional forms, lseek,
//! close/close_range, dup*, fcntl, flock, ioctl, fstat, getdents64, ftruncate, fsync,
//! fallocate, pipes, eventfd, timerfd, memfd, sendfile and copy_file_range.
//!
//! Blocking: a file that would block says `EAGAIN`; unless the description is `O_NONBLOCK`,
//! [`finish`] queues the thread on the file's wait key and blocks (the call runs again when
//! the key is notified). Every change that may make another thread's call succeed notifies
//! the file's key.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::args::{Fd, UserPtr};
use super::linux::{Iovec, Itimerspec, Stat, Timespec};
use super::{Ctx, Reply};
use crate::errno::Errno;
use crate::fd::{FdEntry, File, Io, OpenFile, Readiness, StatusFlags};
use crate::fs::{FileType, Metadata, SetAttr, Timestamp};
use crate::platform::{Platform, Prot};
use crate::process::WakeReason;

/// Largest single transfer (Linux's `MAX_RW_COUNT`).
pub(crate) const MAX_RW_COUNT: usize = 0x7fff_f000;
/// Largest iovec count (`IOV_MAX`).
const IOV_MAX: usize = 1024;
/// Bytes staged through the kernel per step.
const CHUNK: usize = 64 * 1024;

pub(crate) const SIGPIPE: u8 = 13;

impl<P: Platform> Io for Ctx<'_, P> {
    fn platform(&self) -> &dyn Platform {
        self.platform
    }
    fn read_user(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.read_bytes(addr, buf)
    }
    fn write_user(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.write_bytes(addr, data)
    }
}

/// The description behind `fd`.
pub(crate) fn desc<P: Platform>(ctx: &Ctx<'_, P>, fd: Fd) -> Result<Arc<OpenFile>, Errno> {
    Ok(ctx.process.fs.fds.get(fd.0)?.desc.clone())
}

/// The soft RLIMIT_NOFILE.
pub(crate) fn nofile<P: Platform>(ctx: &Ctx<'_, P>) -> usize {
    let l = ctx.process.rlimits.get(super::limits::Resource::Nofile).cur;
    usize::try_from(l).unwrap_or(usize::MAX).min(1 << 20)
}

/// Installs a new fd for `desc` at the lowest free number.
pub(crate) fn install<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    desc: Arc<OpenFile>,
    cloexec: bool,
) -> Result<usize, Errno> {
    let limit = nofile(ctx);
    ctx.process
        .fs
        .fds
        .insert_from(0, limit, FdEntry { desc, cloexec })
        .map(|fd| fd as usize)
}

/// Wakes whoever waits on `file`.
pub(crate) fn notify<P: Platform>(ctx: &mut Ctx<'_, P>, file: &dyn File) {
    if let Some(key) = file.wait_key() {
        ctx.process.notify(key);
    }
}

/// Wakes whoever waits on `file` after a change that can only make `events` ready (new
/// data: `READABLE`; freed space: `WRITABLE`), which edge-triggered epoll tells apart.
fn notify_for<P: Platform>(ctx: &mut Ctx<'_, P>, file: &dyn File, events: Readiness) {
    if let Some(key) = file.wait_key() {
        ctx.process.notify_for(key, events);
    }
}

/// Turns a file's `EAGAIN` into a block (unless non-blocking) and a signal wake into EINTR.
fn finish<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    d: &OpenFile,
    r: Result<usize, Errno>,
) -> Result<Reply, Errno> {
    match r {
        Err(Errno::EAGAIN) if !d.flags().contains(StatusFlags::NONBLOCK) => {
            let Some(key) = d.file.wait_key() else {
                return Err(Errno::EAGAIN);
            };
            if ctx.resumed == Some(WakeReason::Interrupted) {
                return Err(Errno::EINTR);
            }
            ctx.process.fs.waits.enqueue(key, ctx.tid);
            let deadline = d.file.deadline();
            Ok(ctx.block(deadline))
        }
        other => other.map(Reply::Value),
    }
}

/// SIGPIPE for a write to a pipe without readers, sent to the writing thread as Linux
/// does. Returns the process's end when SIGPIPE's action terminates it; otherwise the
/// write fails with EPIPE (and a handler, if any, runs on the way back to the app).
pub(crate) fn raise_sigpipe<P: Platform>(ctx: &mut Ctx<'_, P>) -> Option<Reply> {
    let info = super::linux::SigInfo::kill(
        SIGPIPE,
        super::linux::SI_USER,
        crate::process::Process::PID,
        0,
    );
    let tid = ctx.tid;
    ctx.process
        .send_signal(super::signal::SignalTarget::Thread(tid), info, None)
        .map(Reply::killed_by)
}

fn now<P: Platform>(ctx: &Ctx<'_, P>) -> Timestamp {
    Timestamp::from_ns(ctx.platform.realtime_ns())
}

/// Records a data change's mtime/ctime on the file's inode.
pub(crate) fn touch<P: Platform>(ctx: &Ctx<'_, P>, file: &dyn File) {
    if let Some(f) = file
        .as_any()
        .downcast_ref::<crate::fd::vnode_file::VnodeFile>()
    {
        let t = now(ctx);
        let _ = f.fs.set_attr(
            f.vnode.ino,
            &SetAttr {
                mtime: Some(t),
                ctime: Some(t),
                ..Default::default()
            },
        );
    }
}

/// Reads from `d` at `offset` (its own offset when `None`) into `[addr, addr+len)`.
fn read_into<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    d: &OpenFile,
    addr: u64,
    len: usize,
    offset: Option<u64>,
) -> Result<usize, Errno> {
    if !d.flags().readable() {
        return Err(Errno::EBADF);
    }
    let len = len.min(MAX_RW_COUNT);
    if len == 0 {
        return Ok(0);
    }
    ctx.check_user(addr, len as u64, Prot::WRITE)?;
    let seekable = d.file.seekable();
    let mut pos = match offset {
        Some(o) => o,
        None if seekable => d.offset(),
        None => 0,
    };
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(buf.len());
        let n = match d.file.read(&*ctx, pos, &mut buf[..want]) {
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        ctx.write_bytes(addr + done as u64, &buf[..n])?;
        done += n;
        pos += n as u64;
        if offset.is_none() && seekable {
            d.set_offset(pos);
        }
        // Pipes, consoles and devices return what they have; only files are read to the end.
        if n < want || !seekable || d.file.as_any().is::<crate::fd::device::Device>() {
            break;
        }
    }
    Ok(done)
}

/// Writes `[addr, addr+len)` to `d` at `offset` (its own offset, or the end with
/// O_APPEND, when `None`).
fn write_from<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    d: &OpenFile,
    addr: u64,
    len: usize,
    offset: Option<u64>,
) -> Result<usize, Errno> {
    let flags = d.flags();
    if !flags.writable() {
        return Err(Errno::EBADF);
    }
    let len = len.min(MAX_RW_COUNT);
    ctx.check_user(addr, len as u64, Prot::READ)?;
    let seekable = d.file.seekable();
    let mut pos = match offset {
        Some(o) => o,
        None if flags.contains(StatusFlags::APPEND) && seekable => d.file.stat(&*ctx)?.size,
        None if seekable => d.offset(),
        None => 0,
    };
    if len == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len());
        ctx.read_bytes(addr + done as u64, &mut buf[..n])?;
        let w = match d.file.write(&*ctx, pos, &buf[..n]) {
            Ok(w) => w,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done += w;
        pos += w as u64;
        if offset.is_none() && seekable {
            d.set_offset(pos);
        }
        if w < n {
            break;
        }
    }
    if seekable {
        touch(ctx, &*d.file);
    }
    Ok(done)
}

fn after_write<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    d: &OpenFile,
    r: Result<usize, Errno>,
) -> Result<Reply, Errno> {
    if r.is_ok() {
        notify_for(ctx, &*d.file, Readiness::READABLE);
    }
    if r == Err(Errno::EPIPE)
        && let Some(kill) = raise_sigpipe(ctx)
    {
        return Ok(kill);
    }
    finish(ctx, d, r)
}

fn after_read<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    d: &OpenFile,
    r: Result<usize, Errno>,
) -> Result<Reply, Errno> {
    if matches!(r, Ok(n) if n > 0) {
        notify_for(ctx, &*d.file, Readiness::WRITABLE);
    }
    finish(ctx, d, r)
}

fn positional(d: &OpenFile, offset: i64) -> Result<u64, Errno> {
    if !d.file.seekable() {
        return Err(Errno::ESPIPE);
    }
    u64::try_from(offset).map_err(|_| Errno::EINVAL)
}

pub fn sys_read<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    buf: UserPtr<u8>,
    len: usize,
) -> Result<Reply, Errno> {
    let d = desc(ctx, fd)?;
    if crate::net::socket_of(&*d.file).is_some() {
        // A socket's read is recv(): SO_RCVTIMEO applies.
        let iov = [Iovec { base: buf.addr(), len: len.min(MAX_RW_COUNT) as u64 }];
        return super::socket::recv_reply(ctx, fd, &iov);
    }
    let r = read_into(ctx, &d, buf.addr(), len, None);
    after_read(ctx, &d, r)
}

pub fn sys_write<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    buf: UserPtr<u8>,
    len: usize,
) -> Result<Reply, Errno> {
    let d = desc(ctx, fd)?;
    if crate::net::socket_of(&*d.file).is_some() {
        // A socket's write is send(): a stream socket's blocking write queues everything.
        let iov = [Iovec { base: buf.addr(), len: len.min(MAX_RW_COUNT) as u64 }];
        return super::socket::send_iov(ctx, fd, &iov, super::socket::MsgFlags::empty(), None);
    }
    let r = write_from(ctx, &d, buf.addr(), len, None);
    after_write(ctx, &d, r)
}

pub fn sys_pread64<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    buf: UserPtr<u8>,
    len: usize,
    offset: i64,
) -> Result<Reply, Errno> {
    let d = desc(ctx, fd)?;
    let off = positional(&d, offset)?;
    let r = read_into(ctx, &d, buf.addr(), len, Some(off));
    after_read(ctx, &d, r)
}

pub fn sys_pwrite64<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    buf: UserPtr<u8>,
    len: usize,
    offset: i64,
) -> Result<Reply, Errno> {
    let d = desc(ctx, fd)?;
    let off = positional(&d, offset)?;
    let r = write_from(ctx, &d, buf.addr(), len, Some(off));
    after_write(ctx, &d, r)
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

fn readv_at<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
    offset: Option<i64>,
) -> Result<Reply, Errno> {
    let d = desc(ctx, fd)?;
    if offset.is_none() && crate::net::socket_of(&*d.file).is_some() {
        let iov = iovecs(ctx, iov, count)?;
        return super::socket::recv_reply(ctx, fd, &iov);
    }
    let mut pos = match offset {
        Some(o) => Some(positional(&d, o)?),
        None => None,
    };
    if !d.flags().readable() {
        return Err(Errno::EBADF);
    }
    let mut total = 0usize;
    let mut result = Ok(0);
    for v in iovecs(ctx, iov, count)? {
        match read_into(ctx, &d, v.base, v.len as usize, pos) {
            Ok(n) => {
                total += n;
                pos = pos.map(|p| p + n as u64);
                if n < v.len as usize {
                    break;
                }
            }
            Err(e) => {
                if total == 0 {
                    result = Err(e);
                }
                break;
            }
        }
    }
    let r = if total > 0 { Ok(total) } else { result };
    after_read(ctx, &d, r)
}

fn writev_at<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
    offset: Option<i64>,
) -> Result<Reply, Errno> {
    let d = desc(ctx, fd)?;
    if offset.is_none() && crate::net::socket_of(&*d.file).is_some() {
        let iov = iovecs(ctx, iov, count)?;
        return super::socket::send_iov(ctx, fd, &iov, super::socket::MsgFlags::empty(), None);
    }
    let mut pos = match offset {
        Some(o) => Some(positional(&d, o)?),
        None => None,
    };
    if !d.flags().writable() {
        return Err(Errno::EBADF);
    }
    let mut total = 0usize;
    let mut result = Ok(0);
    for v in iovecs(ctx, iov, count)? {
        match write_from(ctx, &d, v.base, v.len as usize, pos) {
            Ok(n) => {
                total += n;
                pos = pos.map(|p| p + n as u64);
                if n < v.len as usize || total >= MAX_RW_COUNT {
                    break;
                }
            }
            Err(e) => {
                if total == 0 {
                    result = Err(e);
                }
                break;
            }
        }
    }
    let r = if total > 0 { Ok(total) } else { result };
    after_write(ctx, &d, r)
}

pub fn sys_readv<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
) -> Result<Reply, Errno> {
    readv_at(ctx, fd, iov, count, None)
}

pub fn sys_writev<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
) -> Result<Reply, Errno> {
    writev_at(ctx, fd, iov, count, None)
}

pub fn sys_preadv<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
    offset: i64,
) -> Result<Reply, Errno> {
    readv_at(ctx, fd, iov, count, Some(offset))
}

pub fn sys_pwritev<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
    offset: i64,
) -> Result<Reply, Errno> {
    writev_at(ctx, fd, iov, count, Some(offset))
}

/// RWF_* flags preadv2/pwritev2 accept (HIPRI, DSYNC, SYNC, NOWAIT, APPEND).
const RWF_KNOWN: u32 = 0x1f;
const RWF_NOWAIT: u32 = 0x8;

pub fn sys_preadv2<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
    offset: i64,
    _hi: u64,
    flags: u32,
) -> Result<Reply, Errno> {
    if flags & !RWF_KNOWN != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let r = readv_at(ctx, fd, iov, count, (offset != -1).then_some(offset));
    if flags & RWF_NOWAIT != 0 && matches!(r, Ok(Reply::Block { .. })) {
        ctx.thread_mut().blocked = false;
        return Err(Errno::EAGAIN);
    }
    r
}

pub fn sys_pwritev2<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    iov: UserPtr<Iovec>,
    count: i32,
    offset: i64,
    _hi: u64,
    flags: u32,
) -> Result<Reply, Errno> {
    if flags & !RWF_KNOWN != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    writev_at(ctx, fd, iov, count, (offset != -1).then_some(offset))
}

const SEEK_SET: u32 = 0;
const SEEK_CUR: u32 = 1;
const SEEK_END: u32 = 2;
const SEEK_DATA: u32 = 3;
const SEEK_HOLE: u32 = 4;

pub fn sys_lseek<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    offset: i64,
    whence: u32,
) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    if !d.file.seekable() {
        return Err(Errno::ESPIPE);
    }
    let size = || d.file.stat(&*ctx).map(|m| m.size as i64);
    let is_dir = || d.file.stat(&*ctx).map(|m| m.kind == FileType::Directory);
    let new = match whence {
        SEEK_SET => Some(offset),
        SEEK_CUR => (d.offset() as i64).checked_add(offset),
        SEEK_END => size()?.checked_add(offset),
        // Files here have no holes: data everywhere before the end, the hole at the end.
        SEEK_DATA | SEEK_HOLE => {
            if is_dir()? {
                return Err(Errno::EINVAL);
            }
            let size = size()?;
            if offset < 0 {
                return Err(Errno::EINVAL);
            }
            if offset >= size {
                return Err(Errno::ENXIO);
            }
            Some(if whence == SEEK_DATA { offset } else { size })
        }
        _ => return Err(Errno::EINVAL),
    };
    let new = new.ok_or(Errno::EOVERFLOW)?;
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    d.set_offset(new as u64);
    Ok(new as usize)
}

/// Closes `fd`: the description goes when its last fd does.
pub(crate) fn close_fd<P: Platform>(ctx: &mut Ctx<'_, P>, fd: i32) -> Result<(), Errno> {
    let entry = ctx.process.fs.fds.remove(fd)?;
    let file = entry.desc.file.clone();
    drop(entry);
    notify(ctx, &*file);
    Ok(())
}

pub fn sys_close<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd) -> Result<usize, Errno> {
    close_fd(ctx, fd.0)?;
    Ok(0)
}

const CLOSE_RANGE_UNSHARE: u32 = 2;
const CLOSE_RANGE_CLOEXEC: u32 = 4;

pub fn sys_close_range<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    first: u32,
    last: u32,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    let fds: Vec<i32> = ctx
        .process
        .fs
        .fds
        .iter()
        .map(|(fd, _)| fd)
        .filter(|&fd| (fd as u32) >= first && (fd as u32) <= last)
        .collect();
    for fd in fds {
        if flags & CLOSE_RANGE_CLOEXEC != 0 {
            ctx.process.fs.fds.get_mut(fd)?.cloexec = true;
        } else {
            close_fd(ctx, fd)?;
        }
    }
    Ok(0)
}

pub fn sys_dup<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    install(ctx, d, false)
}

fn dup_to<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    old: Fd,
    new: Fd,
    cloexec: bool,
) -> Result<usize, Errno> {
    let d = desc(ctx, old)?;
    let new_fd = usize::try_from(new.0).map_err(|_| Errno::EBADF)?;
    if new_fd >= nofile(ctx) {
        return Err(Errno::EBADF);
    }
    if let Some(old_entry) = ctx.process.fs.fds.put(new_fd, FdEntry { desc: d, cloexec }) {
        let file = old_entry.desc.file.clone();
        drop(old_entry);
        notify(ctx, &*file);
    }
    Ok(new_fd)
}

pub fn sys_dup2<P: Platform>(ctx: &mut Ctx<'_, P>, old: Fd, new: Fd) -> Result<usize, Errno> {
    if old == new {
        desc(ctx, old)?;
        return Ok(old.0 as usize);
    }
    dup_to(ctx, old, new, false)
}

const O_CLOEXEC: u32 = 0o2000000;

pub fn sys_dup3<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    old: Fd,
    new: Fd,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !O_CLOEXEC != 0 || old == new {
        return Err(Errno::EINVAL);
    }
    dup_to(ctx, old, new, flags & O_CLOEXEC != 0)
}

const F_DUPFD: i32 = 0;
const F_GETFD: i32 = 1;
const F_SETFD: i32 = 2;
const F_GETFL: i32 = 3;
const F_SETFL: i32 = 4;
const F_GETLK: i32 = 5;
const F_SETLK: i32 = 6;
const F_SETLKW: i32 = 7;
const F_SETOWN: i32 = 8;
const F_GETOWN: i32 = 9;
const F_OFD_GETLK: i32 = 36;
const F_OFD_SETLK: i32 = 37;
const F_OFD_SETLKW: i32 = 38;
const F_DUPFD_CLOEXEC: i32 = 1030;
const F_SETPIPE_SZ: i32 = 1031;
const F_GETPIPE_SZ: i32 = 1032;
const F_ADD_SEALS: i32 = 1033;
const F_GET_SEALS: i32 = 1034;
const FD_CLOEXEC: u64 = 1;
const F_RDLCK: i16 = 0;
const F_WRLCK: i16 = 1;
const F_UNLCK: i16 = 2;

pub fn sys_fcntl<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    cmd: i32,
    arg: u64,
) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = usize::try_from(arg as i32).map_err(|_| Errno::EINVAL)?;
            let limit = nofile(ctx);
            if min >= limit {
                return Err(Errno::EINVAL);
            }
            let entry = FdEntry {
                desc: d,
                cloexec: cmd == F_DUPFD_CLOEXEC,
            };
            ctx.process
                .fs
                .fds
                .insert_from(min, limit, entry)
                .map(|fd| fd as usize)
        }
        F_GETFD => Ok(usize::from(ctx.process.fs.fds.get(fd.0)?.cloexec)),
        F_SETFD => {
            ctx.process.fs.fds.get_mut(fd.0)?.cloexec = arg & FD_CLOEXEC != 0;
            Ok(0)
        }
        F_GETFL => Ok(d.flags().bits() as usize),
        F_SETFL => {
            d.set_flags(StatusFlags::from_bits_truncate(arg as u32));
            Ok(0)
        }
        // One process: no lock can conflict with another owner, so every lock is granted and
        // GETLK always reports the range free. Requests are still validated.
        F_GETLK | F_OFD_GETLK | F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW => {
            let ptr = UserPtr::<super::linux::Flock>::new(arg);
            let mut l = ctx.read(ptr)?;
            if !matches!(l.ltype, F_RDLCK | F_WRLCK | F_UNLCK) || !(0..=2).contains(&l.whence) {
                return Err(Errno::EINVAL);
            }
            if matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW) && l.pid != 0 {
                return Err(Errno::EINVAL);
            }
            let flags = d.flags();
            if matches!(cmd, F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW)
                && ((l.ltype == F_RDLCK && !flags.readable())
                    || (l.ltype == F_WRLCK && !flags.writable()))
            {
                return Err(Errno::EBADF);
            }
            if matches!(cmd, F_GETLK | F_OFD_GETLK) {
                l.ltype = F_UNLCK;
                ctx.write(ptr, &l)?;
            }
            Ok(0)
        }
        F_GETOWN => Ok(0),
        F_SETOWN => Ok(0),
        F_GETPIPE_SZ => d.file.pipe_size(None),
        F_SETPIPE_SZ => d.file.pipe_size(Some(
            usize::try_from(arg as i32).map_err(|_| Errno::EINVAL)?,
        )),
        F_GET_SEALS | F_ADD_SEALS => Err(Errno::EINVAL),
        _ => {
            ctx.warn_once(
                "fcntl-cmd",
                format_args!("fcntl: unsupported command {cmd}: returning EINVAL"),
            );
            Err(Errno::EINVAL)
        }
    }
}

const LOCK_SH: u32 = 1;
const LOCK_EX: u32 = 2;
const LOCK_NB: u32 = 4;
const LOCK_UN: u32 = 8;

pub fn sys_flock<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, op: u32) -> Result<usize, Errno> {
    desc(ctx, fd)?;
    // Single process: every lock is granted at once.
    match op & !LOCK_NB {
        LOCK_SH | LOCK_EX | LOCK_UN => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub const FIONREAD: u32 = 0x541b;
pub const FIONBIO: u32 = 0x5421;
pub const FIONCLEX: u32 = 0x5450;
pub const FIOCLEX: u32 = 0x5451;
pub const FIOASYNC: u32 = 0x5452;

pub fn sys_ioctl<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    request: u32,
    arg: u64,
) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    match request {
        FIONBIO => {
            let on = ctx.read(UserPtr::<i32>::new(arg))? != 0;
            let f = d.flags();
            d.set_flags(if on {
                f | StatusFlags::NONBLOCK
            } else {
                f - StatusFlags::NONBLOCK
            });
            Ok(0)
        }
        FIOCLEX | FIONCLEX => {
            ctx.process.fs.fds.get_mut(fd.0)?.cloexec = request == FIOCLEX;
            Ok(0)
        }
        FIOASYNC => {
            ctx.read(UserPtr::<i32>::new(arg))?;
            Ok(0)
        }
        FIONREAD => {
            let n = match d.file.readable_bytes(&*ctx) {
                Ok(n) => n,
                Err(Errno::ENOTTY) if d.file.seekable() => {
                    let m = d.file.stat(&*ctx)?;
                    if m.kind == FileType::Directory {
                        return Err(Errno::ENOTTY);
                    }
                    m.size.saturating_sub(d.offset()) as usize
                }
                Err(e) => return Err(e),
            };
            ctx.write(UserPtr::<i32>::new(arg), &(n.min(i32::MAX as usize) as i32))?;
            Ok(0)
        }
        _ => d.file.ioctl(&*ctx, request, arg),
    }
}

/// `st_dev` of a mount.
pub(crate) fn dev_of(mount: usize) -> u64 {
    crate::fd::device::makedev(0, 0x20 + mount as u64)
}

pub(crate) fn to_stat(m: &Metadata, dev: u64) -> Stat {
    let ts = |t: Timestamp| Timespec {
        sec: t.sec,
        nsec: i64::from(t.nsec),
    };
    Stat {
        dev,
        ino: m.ino,
        nlink: u64::from(m.nlink),
        mode: m.kind.mode_bits() | m.perm,
        uid: m.uid,
        gid: m.gid,
        rdev: m.rdev,
        size: m.size as i64,
        blksize: i64::from(m.block_size),
        blocks: m.blocks as i64,
        atime: ts(m.atime),
        mtime: ts(m.mtime),
        ctime: ts(m.ctime),
    }
}

/// fstat of an open file.
pub(crate) fn stat_file<P: Platform>(ctx: &Ctx<'_, P>, file: &dyn File) -> Result<Stat, Errno> {
    let m = file.stat(ctx)?;
    let dev = file.vnode().map_or(0x0d, |v| dev_of(v.mount));
    Ok(to_stat(&m, dev))
}

pub fn sys_fstat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    statbuf: UserPtr<Stat>,
) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    let st = stat_file(ctx, &*d.file)?;
    ctx.write(statbuf, &st)?;
    Ok(0)
}

pub fn sys_getdents64<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    dirp: UserPtr<u8>,
    count: u32,
) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    if d.flags().contains(StatusFlags::PATH) {
        return Err(Errno::EBADF);
    }
    let vnode = d.file.vnode();
    let meta = d.file.stat(&*ctx)?;
    if meta.kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let limit = (count as usize).min(1 << 20);
    ctx.check_user(dirp.addr(), limit as u64, Prot::WRITE)?;
    // The offset counts entries: 0 is ".", 1 is "..", n+2 the n-th entry.
    let mut pos = d.offset();
    let mut out = Vec::new();
    let mut full = false;
    if pos == 0 {
        if !super::linux::push_dirent64(
            &mut out,
            limit,
            meta.ino,
            1,
            FileType::Directory.dirent_type(),
            b".",
        ) {
            return Err(Errno::EINVAL);
        }
        pos = 1;
    }
    if pos == 1 {
        let parent_ino = match vnode {
            Some(v) => crate::fs::vfs::walk(ctx.process, ctx.platform, v, b"..", false)
                .ok()
                .and_then(|r| match r {
                    crate::fs::vfs::Resolved::Node(p) => Some(p.ino),
                    _ => None,
                })
                .unwrap_or(meta.ino),
            None => meta.ino,
        };
        if super::linux::push_dirent64(
            &mut out,
            limit,
            parent_ino,
            2,
            FileType::Directory.dirent_type(),
            b"..",
        ) {
            pos = 2;
        } else {
            full = true;
        }
    }
    if !full {
        let start = (pos - 2) as usize;
        let mut next = pos;
        d.file.read_dir(&*ctx, start, &mut |e| {
            if super::linux::push_dirent64(
                &mut out,
                limit,
                e.ino,
                next as i64 + 1,
                e.kind.dirent_type(),
                &e.name,
            ) {
                next += 1;
                true
            } else {
                false
            }
        })?;
        pos = next;
    }
    if out.is_empty() && pos == d.offset() && !full {
        // Nothing left (end of directory), or the first entry did not fit.
        let mut probe = false;
        if pos >= 2 {
            d.file.read_dir(&*ctx, (pos - 2) as usize, &mut |_| {
                probe = true;
                false
            })?;
        }
        if probe {
            return Err(Errno::EINVAL);
        }
        return Ok(0);
    }
    if out.is_empty() {
        return Err(Errno::EINVAL);
    }
    ctx.write_bytes(dirp.addr(), &out)?;
    d.set_offset(pos);
    Ok(out.len())
}

pub fn sys_ftruncate<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, len: i64) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    let len = u64::try_from(len).map_err(|_| Errno::EINVAL)?;
    if !d.flags().writable() {
        return Err(Errno::EINVAL);
    }
    match d.file.stat(&*ctx)?.kind {
        FileType::Regular => {}
        FileType::Directory => return Err(Errno::EISDIR),
        _ => return Err(Errno::EINVAL),
    }
    d.file.set_len(len)?;
    touch(ctx, &*d.file);
    Ok(0)
}

pub fn sys_fsync<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd) -> Result<usize, Errno> {
    desc(ctx, fd)?.file.sync()?;
    Ok(0)
}

pub fn sys_fdatasync<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd) -> Result<usize, Errno> {
    sys_fsync(ctx, fd)
}

const SYNC_FILE_RANGE_WAIT_BEFORE: u32 = 1;
const SYNC_FILE_RANGE_WRITE: u32 = 2;
const SYNC_FILE_RANGE_WAIT_AFTER: u32 = 4;

/// sync_file_range: redis's incremental fsync while writing an RDB file (SAVE, DEBUG RELOAD).
/// The whole file's data is written back rather than the range: more than asked, never less.
pub fn sys_sync_file_range<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    offset: i64,
    nbytes: i64,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0 {
        return Err(Errno::EINVAL);
    }
    if offset < 0 || nbytes < 0 || offset.checked_add(nbytes).is_none() {
        return Err(Errno::EINVAL);
    }
    let d = desc(ctx, fd)?;
    match d.file.stat(&*ctx)?.kind {
        FileType::Regular | FileType::Directory | FileType::BlockDevice => {}
        _ => return Err(Errno::ESPIPE),
    }
    if flags & (SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0 {
        d.file.sync()?;
    }
    Ok(0)
}

/// fadvise64: advice about the access pattern. Kiln's files live in memory or are written
/// through, so no advice changes what happens; the arguments are checked as Linux does.
pub fn sys_fadvise64<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    _offset: i64,
    len: i64,
    advice: i32,
) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    if d.file.stat(&*ctx)?.kind == FileType::Fifo {
        return Err(Errno::ESPIPE);
    }
    // POSIX_FADV_NORMAL, RANDOM, SEQUENTIAL, WILLNEED, DONTNEED, NOREUSE.
    if len < 0 || !(0..=5).contains(&advice) {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sys_syncfs<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    if let Some(v) = d.file.vnode()
        && let Some((fs, _)) = crate::fs::vfs::fs_of(ctx.process, v)
    {
        fs.sync(None)?;
    }
    Ok(0)
}

pub fn sys_sync<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    let all: Vec<_> = ctx
        .process
        .fs
        .mounts
        .iter()
        .filter_map(|(id, _)| ctx.process.fs.mounts.fs(id).cloned())
        .collect();
    for fs in all {
        // sync(2) cannot fail; errors surface on the next fsync of the file.
        let _ = fs.sync(None);
    }
    Ok(0)
}

const FALLOC_FL_KEEP_SIZE: i32 = 1;
const FALLOC_FL_PUNCH_HOLE: i32 = 2;

pub fn sys_fallocate<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    mode: i32,
    offset: i64,
    len: i64,
) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if !d.flags().writable() {
        return Err(Errno::EBADF);
    }
    let m = d.file.stat(&*ctx)?;
    match m.kind {
        FileType::Regular => {}
        FileType::Directory => return Err(Errno::EISDIR),
        FileType::Fifo => return Err(Errno::ESPIPE),
        _ => return Err(Errno::ENODEV),
    }
    let end = offset.checked_add(len).ok_or(Errno::EFBIG)? as u64;
    match mode {
        0 => {
            if end > m.size {
                d.file.set_len(end)?;
            }
        }
        FALLOC_FL_KEEP_SIZE => {}
        m if m == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => {
            // Zero the range inside the file (no sparse storage here).
            let stop = end.min(d.file.stat(&*ctx)?.size);
            let mut at = offset as u64;
            let zero = vec![0u8; CHUNK];
            while at < stop {
                let n = ((stop - at) as usize).min(CHUNK);
                d.file.write(&*ctx, at, &zero[..n])?;
                at += n as u64;
            }
        }
        _ => return Err(Errno::EOPNOTSUPP),
    }
    touch(ctx, &*d.file);
    Ok(0)
}

pub fn sys_pipe<P: Platform>(ctx: &mut Ctx<'_, P>, fds: UserPtr<i32>) -> Result<usize, Errno> {
    sys_pipe2(ctx, fds, 0)
}

const O_NONBLOCK: u32 = 0o4000;
const O_DIRECT: u32 = 0o40000;

pub fn sys_pipe2<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fds: UserPtr<i32>,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    ctx.check_user(fds.addr(), 8, Prot::WRITE)?;
    let (r, w) = crate::fd::pipe::pipe(now(ctx));
    let nb = if flags & O_NONBLOCK != 0 {
        StatusFlags::NONBLOCK
    } else {
        StatusFlags::empty()
    };
    let cloexec = flags & O_CLOEXEC != 0;
    let rfd = install(ctx, OpenFile::new(r, nb, None), cloexec)?;
    let wfd = match install(
        ctx,
        OpenFile::new(w, nb | StatusFlags::WRONLY, None),
        cloexec,
    ) {
        Ok(fd) => fd,
        Err(e) => {
            close_fd(ctx, rfd as i32)?;
            return Err(e);
        }
    };
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&(rfd as i32).to_le_bytes());
    bytes[4..].copy_from_slice(&(wfd as i32).to_le_bytes());
    if let Err(e) = ctx.write_bytes(fds.addr(), &bytes) {
        close_fd(ctx, rfd as i32)?;
        close_fd(ctx, wfd as i32)?;
        return Err(e);
    }
    Ok(0)
}

const EFD_SEMAPHORE: u32 = 1;

pub fn sys_eventfd<P: Platform>(ctx: &mut Ctx<'_, P>, initval: u32) -> Result<usize, Errno> {
    sys_eventfd2(ctx, initval, 0)
}

pub fn sys_eventfd2<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    initval: u32,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(EFD_SEMAPHORE | O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = Arc::new(crate::fd::eventfd::EventFd::new(
        u64::from(initval),
        flags & EFD_SEMAPHORE != 0,
    ));
    let nb = if flags & O_NONBLOCK != 0 {
        StatusFlags::NONBLOCK
    } else {
        StatusFlags::empty()
    };
    install(
        ctx,
        OpenFile::new(file, nb | StatusFlags::RDWR, None),
        flags & O_CLOEXEC != 0,
    )
}

const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_BOOTTIME: i32 = 7;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;
const TFD_TIMER_ABSTIME: u32 = 1;
const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

pub fn sys_timerfd_create<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    clock: i32,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let realtime = match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_ALARM => true,
        CLOCK_MONOTONIC | CLOCK_BOOTTIME | CLOCK_BOOTTIME_ALARM => false,
        _ => return Err(Errno::EINVAL),
    };
    let file = Arc::new(crate::fd::timerfd::TimerFd::new(realtime));
    let nb = if flags & O_NONBLOCK != 0 {
        StatusFlags::NONBLOCK
    } else {
        StatusFlags::empty()
    };
    install(ctx, OpenFile::new(file, nb, None), flags & O_CLOEXEC != 0)
}

fn timerfd<P: Platform>(ctx: &Ctx<'_, P>, fd: Fd) -> Result<Arc<OpenFile>, Errno> {
    let d = desc(ctx, fd)?;
    if !d.file.as_any().is::<crate::fd::timerfd::TimerFd>() {
        return Err(Errno::EINVAL);
    }
    Ok(d)
}

fn itimer(remaining: u64, interval: u64) -> Itimerspec {
    Itimerspec {
        interval: Timespec::from_ns(interval),
        value: Timespec::from_ns(remaining),
    }
}

pub fn sys_timerfd_settime<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    flags: u32,
    new: UserPtr<Itimerspec>,
    old: UserPtr<Itimerspec>,
) -> Result<usize, Errno> {
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let d = timerfd(ctx, fd)?;
    let t = d
        .file
        .as_any()
        .downcast_ref::<crate::fd::timerfd::TimerFd>()
        .ok_or(Errno::EINVAL)?;
    let spec = ctx.read(new)?;
    let value = spec.value.to_ns().ok_or(Errno::EINVAL)?;
    let interval = spec.interval.to_ns().ok_or(Errno::EINVAL)?;
    let mono = ctx.platform.monotonic_ns();
    let expiry = if value == 0 {
        None
    } else if flags & TFD_TIMER_ABSTIME != 0 {
        Some(if t.realtime {
            mono.saturating_add(value.saturating_sub(ctx.platform.realtime_ns()))
        } else {
            value
        })
    } else {
        Some(mono.saturating_add(value))
    };
    let (rem, iv) = t.set(mono, expiry, interval);
    ctx.write_opt(old, &itimer(rem, iv))?;
    let file = d.file.clone();
    notify(ctx, &*file);
    Ok(0)
}

pub fn sys_timerfd_gettime<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    cur: UserPtr<Itimerspec>,
) -> Result<usize, Errno> {
    let d = timerfd(ctx, fd)?;
    let t = d
        .file
        .as_any()
        .downcast_ref::<crate::fd::timerfd::TimerFd>()
        .ok_or(Errno::EINVAL)?;
    let (rem, iv) = t.get(ctx.platform.monotonic_ns());
    ctx.write(cur, &itimer(rem, iv))?;
    Ok(0)
}

const MFD_CLOEXEC: u32 = 1;
const MFD_ALLOW_SEALING: u32 = 2;
const MFD_NOEXEC_SEAL: u32 = 8;
const MFD_EXEC: u32 = 0x10;

/// memfd_create: an unnamed file on a private tmpfs.
pub fn sys_memfd_create<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    name: UserPtr<u8>,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL | MFD_EXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = ctx.read_cstr(name, 250).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            Errno::EINVAL
        } else {
            e
        }
    })?;
    // The file is made on the /dev/shm tmpfs and unlinked at once: it lives while open.
    let (mount, fs) = {
        let mounts = &ctx.process.fs.mounts;
        let id = mounts
            .iter()
            .find(|(_, m)| m.path == "/dev/shm")
            .map(|(id, _)| id)
            .ok_or(Errno::ENOSYS)?;
        (id, mounts.fs(id).ok_or(Errno::ENOSYS)?.clone())
    };
    let owner = crate::fs::Owner {
        perm: 0o777,
        uid: 0,
        gid: 0,
    };
    let root = fs.root();
    let tmp = alloc::format!(".memfd-{}", crate::fd::wait::new_key());
    let ino = fs.create(root, tmp.as_bytes(), crate::fs::NewNode::Regular, owner)?;
    let v = crate::fs::mount::Vnode { mount, ino };
    let file = Arc::new(crate::fd::vnode_file::VnodeFile::new(fs.clone(), v, false));
    fs.unlink(root, tmp.as_bytes())?;
    let path = alloc::format!(
        "/memfd:{} (deleted)",
        alloc::string::String::from_utf8_lossy(&name)
    );
    install(
        ctx,
        OpenFile::new(file, StatusFlags::RDWR | StatusFlags::LARGEFILE, Some(path)),
        flags & MFD_CLOEXEC != 0,
    )
}

/// Copies up to `len` bytes from `src` (at `src_off` or its offset) to `dst` (at `dst_off`
/// or its offset), in kernel chunks.
fn splice_files<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    src: &OpenFile,
    src_off: Option<u64>,
    dst: &OpenFile,
    dst_off: Option<u64>,
    len: usize,
) -> Result<(usize, u64, u64), Errno> {
    if !src.flags().readable() || !dst.flags().writable() {
        return Err(Errno::EBADF);
    }
    let mut rpos = src_off.unwrap_or_else(|| src.offset());
    let mut wpos = match dst_off {
        Some(o) => o,
        None if dst.flags().contains(StatusFlags::APPEND) && dst.file.seekable() => {
            dst.file.stat(&*ctx)?.size
        }
        None => dst.offset(),
    };
    let len = len.min(MAX_RW_COUNT);
    let mut buf = vec![0u8; len.min(CHUNK)];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(buf.len());
        let n = match src.file.read(&*ctx, rpos, &mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let mut written = 0;
        while written < n {
            match dst.file.write(&*ctx, wpos, &buf[written..n]) {
                Ok(w) => {
                    written += w;
                    wpos += w as u64;
                }
                Err(e) if done + written == 0 => return Err(e),
                Err(_) => break,
            }
        }
        rpos += written as u64;
        done += written;
        if written < n || n < want {
            break;
        }
    }
    if dst.file.seekable() {
        touch(ctx, &*dst.file);
    }
    notify(ctx, &*dst.file);
    notify(ctx, &*src.file);
    Ok((done, rpos, wpos))
}

pub fn sys_sendfile<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    out_fd: Fd,
    in_fd: Fd,
    offset: UserPtr<i64>,
    count: usize,
) -> Result<Reply, Errno> {
    let src = desc(ctx, in_fd)?;
    let dst = desc(ctx, out_fd)?;
    if !src.file.seekable() && !offset.is_null() {
        return Err(Errno::ESPIPE);
    }
    let src_off = if offset.is_null() {
        None
    } else {
        Some(u64::try_from(ctx.read(offset)?).map_err(|_| Errno::EINVAL)?)
    };
    let dst_seek = dst.file.seekable();
    let r = splice_files(ctx, &src, src_off, &dst, None, count);
    match r {
        Ok((n, rpos, wpos)) => {
            if src_off.is_some() {
                ctx.write(offset, &(rpos as i64))?;
            } else if src.file.seekable() {
                src.set_offset(rpos);
            }
            if dst_seek {
                dst.set_offset(wpos);
            }
            Ok(Reply::Value(n))
        }
        Err(Errno::EPIPE) => match raise_sigpipe(ctx) {
            Some(kill) => Ok(kill),
            None => Err(Errno::EPIPE),
        },
        Err(e) => finish(ctx, &dst, Err(e)),
    }
}

pub fn sys_copy_file_range<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd_in: Fd,
    off_in: UserPtr<i64>,
    fd_out: Fd,
    off_out: UserPtr<i64>,
    len: usize,
    flags: u32,
) -> Result<usize, Errno> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let src = desc(ctx, fd_in)?;
    let dst = desc(ctx, fd_out)?;
    for d in [&src, &dst] {
        match d.file.stat(&*ctx)?.kind {
            FileType::Regular => {}
            FileType::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
    }
    if dst.flags().contains(StatusFlags::APPEND) {
        return Err(Errno::EBADF);
    }
    let read_off = |ptr: UserPtr<i64>| -> Result<Option<u64>, Errno> {
        if ptr.is_null() {
            Ok(None)
        } else {
            u64::try_from(ctx.read(ptr)?)
                .map(Some)
                .map_err(|_| Errno::EINVAL)
        }
    };
    let (si, so) = (read_off(off_in)?, read_off(off_out)?);
    let (n, rpos, wpos) = splice_files(ctx, &src, si, &dst, so, len)?;
    if si.is_some() {
        ctx.write(off_in, &(rpos as i64))?;
    } else {
        src.set_offset(rpos);
    }
    if so.is_some() {
        ctx.write(off_out, &(wpos as i64))?;
    } else {
        dst.set_offset(wpos);
    }
    Ok(n)
}

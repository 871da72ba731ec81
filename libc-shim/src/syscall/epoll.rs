//! epoll_create/epoll_create1, epoll_ctl and epoll_wait/epoll_pwait/epoll_pwait2.
//!
//! The interest list and the level/edge/one-shot logic live in [`crate::fd::epoll`]; this
//! layer decodes arguments, checks them in Linux's order, and waits as poll does (see
//! [`super::poll`]): scan, and if nothing is ready, queue on every watched file's key and
//! the instance's own, and block until the timeout or the earliest file deadline.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::args::{Fd, UserPtr};
use super::files::install;
use super::linux::{FromUser, Layout, Timespec};
use super::poll::{Idle, apply_sigmask, idle, restore_sigmask, wait_deadline};
use super::{Ctx, Reply};
use crate::errno::Errno;
use crate::fd::device::{Device, DeviceKind};
use crate::fd::epoll::{EPOLLERR, EPOLLEXCLUSIVE, EPOLLHUP, EXCLUSIVE_OK_BITS, Epoll};
use crate::fd::vnode_file::VnodeFile;
use crate::fd::{File, OpenFile, StatusFlags};
use crate::platform::{Platform, Prot};

const EPOLL_CLOEXEC: i32 = 0o2000000;
const EPOLL_CTL_ADD: i32 = 1;
const EPOLL_CTL_DEL: i32 = 2;
const EPOLL_CTL_MOD: i32 = 3;
/// Largest maxevents (Linux's `EP_MAX_EVENTS`: `INT_MAX / sizeof(struct epoll_event)`).
const MAX_EVENTS: i32 = i32::MAX / EpollEvent::SIZE as i32;

/// `struct epoll_event`, packed on x86_64: 4 bytes of events, then 8 of data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}

impl Layout for EpollEvent {
    const SIZE: usize = 12;
}
impl FromUser for EpollEvent {
    fn decode(b: &[u8]) -> Self {
        EpollEvent {
            events: u32::from_le_bytes(b[..4].try_into().expect("4 bytes")),
            data: u64::from_le_bytes(b[4..12].try_into().expect("8 bytes")),
        }
    }
}

fn create<P: Platform>(ctx: &mut Ctx<'_, P>, cloexec: bool) -> Result<usize, Errno> {
    let file: Arc<dyn File> = Arc::new(Epoll::new());
    install(ctx, OpenFile::new(file, StatusFlags::RDWR, None), cloexec)
}

/// epoll_create(size): `size` must be positive and is otherwise ignored.
pub fn sys_epoll_create<P: Platform>(ctx: &mut Ctx<'_, P>, size: i32) -> Result<usize, Errno> {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    create(ctx, false)
}

/// epoll_create1(flags): only `EPOLL_CLOEXEC`.
pub fn sys_epoll_create1<P: Platform>(ctx: &mut Ctx<'_, P>, flags: i32) -> Result<usize, Errno> {
    if flags & !EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    create(ctx, flags & EPOLL_CLOEXEC != 0)
}

/// Whether epoll can watch `file` (Linux: whether it has a `poll` operation). Regular files,
/// directories and the memory devices other than random/urandom do not: `EPERM`.
fn can_poll(file: &dyn File) -> bool {
    let any = file.as_any();
    if any.is::<VnodeFile>() {
        return false;
    }
    if let Some(d) = any.downcast_ref::<Device>() {
        return d.kind == DeviceKind::Random;
    }
    true
}

fn open_file<P: Platform>(ctx: &Ctx<'_, P>, fd: Fd) -> Result<Arc<OpenFile>, Errno> {
    Ok(ctx.process.fs.fds.get(fd.0)?.desc.clone())
}

/// epoll_ctl(epfd, op, fd, event).
pub fn sys_epoll_ctl<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    epfd: Fd,
    op: i32,
    fd: Fd,
    event: UserPtr<EpollEvent>,
) -> Result<usize, Errno> {
    let ev = if op != EPOLL_CTL_DEL {
        ctx.read(event)?
    } else {
        EpollEvent::default()
    };
    let ep_desc = open_file(ctx, epfd)?;
    let target = open_file(ctx, fd)?;
    if !can_poll(&*target.file) {
        return Err(Errno::EPERM);
    }
    let Some(ep) = ep_desc.file.as_any().downcast_ref::<Epoll>() else {
        return Err(Errno::EINVAL);
    };
    if Arc::ptr_eq(&ep_desc, &target) {
        return Err(Errno::EINVAL);
    }
    let inner = target.file.as_any().downcast_ref::<Epoll>();
    if op != EPOLL_CTL_DEL && ev.events & EPOLLEXCLUSIVE != 0 {
        if op == EPOLL_CTL_MOD {
            return Err(Errno::EINVAL);
        }
        if op == EPOLL_CTL_ADD && (inner.is_some() || ev.events & !EXCLUSIVE_OK_BITS != 0) {
            return Err(Errno::EINVAL);
        }
    }
    // EPOLLERR and EPOLLHUP are always reported.
    let events = ev.events | EPOLLERR | EPOLLHUP;
    match op {
        EPOLL_CTL_ADD => {
            if let Some(inner) = inner
                && inner.reaches(ep, 0)
            {
                return Err(Errno::ELOOP);
            }
            let counter = target
                .file
                .wait_key()
                .map(|k| ctx.process.fs.waits.counter(k));
            ep.add(fd.0, &target, events, ev.data, counter)?;
        }
        EPOLL_CTL_MOD => ep.modify(fd.0, &target, events, ev.data)?,
        EPOLL_CTL_DEL => ep.delete(fd.0, &target)?,
        _ => return Err(Errno::EINVAL),
    }
    // Threads waiting on this instance (or on one that nests it) look again.
    if let Some(key) = ep_desc.file.wait_key() {
        ctx.process.notify(key);
    }
    Ok(0)
}

fn do_wait<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    epfd: Fd,
    events: UserPtr<u8>,
    maxevents: i32,
    timeout: Option<u64>,
) -> Result<Reply, Errno> {
    if maxevents <= 0 || maxevents > MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    let max = maxevents as usize;
    ctx.check_user(events.addr(), (max * EpollEvent::SIZE) as u64, Prot::WRITE)?;
    let desc = open_file(ctx, epfd)?;
    let Some(ep) = desc.file.as_any().downcast_ref::<Epoll>() else {
        return Err(Errno::EINVAL);
    };
    let deadline = wait_deadline(ctx, timeout);
    let now = ctx.platform.monotonic_ns();
    let ready = ep.collect(now, max);
    if !ready.is_empty() {
        let mut buf = Vec::with_capacity(ready.len() * EpollEvent::SIZE);
        for (ev, data) in &ready {
            buf.extend_from_slice(&ev.to_le_bytes());
            buf.extend_from_slice(&data.to_le_bytes());
        }
        ctx.write_bytes(events.addr(), &buf)?;
        restore_sigmask(ctx);
        return Ok(Reply::Value(ready.len()));
    }
    let deadline = if timeout == Some(0) {
        Some(0)
    } else {
        deadline
    };
    let files = [desc.file.clone()];
    match idle(ctx, &files, deadline) {
        Idle::TimedOut => {
            restore_sigmask(ctx);
            Ok(Reply::Value(0))
        }
        // The handler's frame (or delivery, when none runs) puts back a pwait's mask.
        Idle::Interrupted => Err(Errno::EINTR),
        Idle::Blocked(r) => Ok(r),
    }
}

/// Nanoseconds from a millisecond timeout (negative: forever).
fn ms(timeout: i32) -> Option<u64> {
    u64::try_from(timeout).ok().map(|ms| ms * 1_000_000)
}

/// Runs a wait under a temporary mask, restoring it if the wait fails before it starts.
fn with_mask<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    sigmask: UserPtr<u64>,
    sigsetsize: usize,
    wait: impl FnOnce(&mut Ctx<'_, P>) -> Result<Reply, Errno>,
) -> Result<Reply, Errno> {
    apply_sigmask(ctx, sigmask, sigsetsize)?;
    let r = wait(ctx);
    if matches!(r, Err(e) if e != Errno::EINTR) {
        restore_sigmask(ctx);
    }
    r
}

/// epoll_wait(epfd, events, maxevents, timeout_ms).
pub fn sys_epoll_wait<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    epfd: Fd,
    events: UserPtr<u8>,
    maxevents: i32,
    timeout: i32,
) -> Result<Reply, Errno> {
    do_wait(ctx, epfd, events, maxevents, ms(timeout))
}

/// epoll_pwait(epfd, events, maxevents, timeout_ms, sigmask, sigsetsize).
pub fn sys_epoll_pwait<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    epfd: Fd,
    events: UserPtr<u8>,
    maxevents: i32,
    timeout: i32,
    sigmask: UserPtr<u64>,
    sigsetsize: usize,
) -> Result<Reply, Errno> {
    with_mask(ctx, sigmask, sigsetsize, |ctx| {
        do_wait(ctx, epfd, events, maxevents, ms(timeout))
    })
}

/// epoll_pwait2(epfd, events, maxevents, timeout (timespec, NULL: forever), sigmask,
/// sigsetsize).
pub fn sys_epoll_pwait2<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    epfd: Fd,
    events: UserPtr<u8>,
    maxevents: i32,
    timeout: UserPtr<Timespec>,
    sigmask: UserPtr<u64>,
    sigsetsize: usize,
) -> Result<Reply, Errno> {
    let timeout = if timeout.is_null() {
        None
    } else {
        Some(ctx.read(timeout)?.to_ns().ok_or(Errno::EINVAL)?)
    };
    with_mask(ctx, sigmask, sigsetsize, |ctx| {
        do_wait(ctx, epfd, events, maxevents, timeout)
    })
}

//! poll, ppoll, select and pselect6, and what they share with epoll_wait: timeouts, the
//! temporary signal mask, and waiting on many files at once.
//!
//! A readiness wait never sleeps inside the handler (see [`crate::process`]): it scans, and
//! when nothing is ready it queues the thread on the wait key of every file it watches and
//! blocks until the earliest of its timeout and the files' own deadlines (timerfd expiry).
//! Scanning and queueing happen under the one process lock, so a change that lands after
//! the scan finds the thread queued and wakes it; every re-run scans again.
//!
//! Signals, as on Linux: a ready file wins over a signal; otherwise poll returns
//! `ERESTART_RESTARTBLOCK` (EINTR after a handler, else it goes on with the time left),
//! ppoll/select/pselect6 `ERESTARTNOHAND` (EINTR after a handler, else a restart with the
//! timeout they wrote back), and the epoll waits plain `EINTR`. The `p` variants install
//! their mask for the duration of the call; after a handler the frame restores the old
//! one (as rt_sigsuspend), otherwise the call restores it when it returns.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::args::UserPtr;
use super::files::nofile;
use super::linux::{FromUser, Layout, NSEC_PER_SEC, Timespec, ToUser};
use super::signal::{ERESTART_RESTARTBLOCK, ERESTARTNOHAND, SIGSET_SIZE, UNBLOCKABLE};
use super::{Ctx, Reply};
use crate::errno::Errno;
use crate::fd::epoll::{
    EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLNVAL, EPOLLOUT, EPOLLPRI, EPOLLRDBAND, EPOLLRDNORM,
    EPOLLWRBAND, EPOLLWRNORM, poll_mask, wait_keys,
};
use crate::fd::{File, WaitKey};
use crate::platform::Platform;
use crate::process::WakeReason;

// ---- shared by poll, select and the epoll waits -------------------------------------------

/// The absolute deadline (monotonic ns) of a wait of `timeout_ns` (`None`: forever),
/// chosen on the call's first run and kept by re-runs and by a transparent restart.
pub(super) fn wait_deadline<P: Platform>(ctx: &Ctx<'_, P>, timeout_ns: Option<u64>) -> Option<u64> {
    ctx.deadline()
        .or_else(|| timeout_ns.map(|ns| ctx.platform.monotonic_ns().saturating_add(ns)))
}

/// Installs a `p`-variant's temporary signal mask on the call's first run (`EINVAL` for a
/// size other than a kernel sigset's). The old mask is kept in the thread until the call
/// ends ([`restore_sigmask`]) or a handler's frame takes it.
pub(super) fn apply_sigmask<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    mask: UserPtr<u64>,
    size: usize,
) -> Result<(), Errno> {
    if mask.is_null() {
        return Ok(());
    }
    if size != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    if ctx.resumed.is_some() {
        return Ok(()); // already in force since the first run
    }
    let new = ctx.read(mask)? & !UNBLOCKABLE;
    let sig = &mut ctx.thread_mut().sig;
    if sig.saved_mask.is_none() {
        sig.saved_mask = Some(sig.mask);
    }
    sig.mask = new;
    Ok(())
}

/// Puts back the mask a `p`-variant replaced: the call returns without a signal handler
/// running (Linux's `restore_saved_sigmask_unless(false)`).
pub(super) fn restore_sigmask<P: Platform>(ctx: &mut Ctx<'_, P>) {
    let sig = &mut ctx.thread_mut().sig;
    if let Some(m) = sig.saved_mask.take() {
        sig.mask = m;
    }
}

/// What a wait does when its scan found nothing.
pub(super) enum Idle {
    /// Return "nothing ready" (timeout 0, or the deadline passed).
    TimedOut,
    /// A signal for this thread ended the wait.
    Interrupted,
    /// Keep waiting.
    Blocked(Reply),
}

/// The rest of a wait whose scan of `files` found nothing ready: time out, report an
/// interruption, or queue the thread on every key that may change the files' readiness
/// and block until `deadline` or the earliest file deadline.
pub(super) fn idle<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    files: &[Arc<dyn File>],
    deadline: Option<u64>,
) -> Idle {
    let now = ctx.platform.monotonic_ns();
    if ctx.resumed == Some(WakeReason::Interrupted) && ctx.process.has_deliverable(ctx.tid) {
        return Idle::Interrupted;
    }
    if deadline.is_some_and(|d| d <= now) {
        return Idle::TimedOut;
    }
    let mut keys: Vec<WaitKey> = Vec::new();
    let mut wake = deadline;
    for f in files {
        wait_keys(&**f, now, &mut keys, &mut wake);
    }
    for k in keys {
        ctx.process.fs.waits.enqueue(k, ctx.tid);
    }
    // The thread keeps the call's own deadline (re-runs read it); the kernel wakes it at
    // the earlier file deadline too, and the re-run then finds the file ready.
    match ctx.block(deadline) {
        Reply::Block { .. } => Idle::Blocked(Reply::Block { deadline: wake }),
        other => Idle::Blocked(other),
    }
}

/// Nanoseconds from a millisecond timeout (negative: forever).
fn ms_timeout(ms: i32) -> Option<u64> {
    u64::try_from(ms).ok().map(|ms| ms * 1_000_000)
}

/// Reads a timespec timeout (`NULL`: forever); `EINVAL` when invalid.
fn timespec_timeout<P: Platform>(
    ctx: &Ctx<'_, P>,
    ts: UserPtr<Timespec>,
) -> Result<Option<u64>, Errno> {
    if ts.is_null() {
        return Ok(None);
    }
    ctx.read(ts)?.to_ns().map(Some).ok_or(Errno::EINVAL)
}

/// The time left until `deadline`, for the write-back of ppoll/select/pselect6.
fn remaining<P: Platform>(ctx: &Ctx<'_, P>, deadline: u64) -> u64 {
    deadline.saturating_sub(ctx.platform.monotonic_ns())
}

// ---- poll and ppoll -------------------------------------------------------------------------

/// `struct pollfd`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PollFd {
    pub fd: i32,
    pub events: u16,
    pub revents: u16,
}

impl Layout for PollFd {
    const SIZE: usize = 8;
}
impl FromUser for PollFd {
    fn decode(b: &[u8]) -> Self {
        PollFd {
            fd: i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            events: u16::from_le_bytes([b[4], b[5]]),
            revents: u16::from_le_bytes([b[6], b[7]]),
        }
    }
}
impl ToUser for PollFd {
    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.fd.to_le_bytes());
        out[4..6].copy_from_slice(&self.events.to_le_bytes());
        out[6..8].copy_from_slice(&self.revents.to_le_bytes());
    }
}

/// How a poll-family call ends when interrupted and what it writes back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PollKind {
    /// poll: no write-back, `ERESTART_RESTARTBLOCK`.
    Poll,
    /// ppoll: the time left written to the timespec, `ERESTARTNOHAND`.
    Ppoll,
}

fn do_poll<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fds: UserPtr<PollFd>,
    nfds: u32,
    timeout: Option<u64>,
    kind: PollKind,
    tsp: UserPtr<Timespec>,
) -> Result<Reply, Errno> {
    if nfds as usize > nofile(ctx) {
        return Err(Errno::EINVAL);
    }
    let mut entries = ctx.read_array(fds, nfds as usize)?;
    let deadline = wait_deadline(ctx, timeout);
    let now = ctx.platform.monotonic_ns();
    let mut files: Vec<Arc<dyn File>> = Vec::new();
    let mut count = 0;
    for e in &mut entries {
        e.revents = 0;
        if e.fd < 0 {
            continue;
        }
        match ctx.process.fs.fds.get(e.fd) {
            Err(_) => e.revents = EPOLLNVAL as u16,
            Ok(entry) => {
                let file = entry.desc.file.clone();
                let asked = u32::from(e.events) | EPOLLERR | EPOLLHUP;
                e.revents = (poll_mask(&*file, now) & asked) as u16;
                files.push(file);
            }
        }
        if e.revents != 0 {
            count += 1;
        }
    }
    let finish = |ctx: &mut Ctx<'_, P>, entries: &[PollFd]| -> Result<(), Errno> {
        let mut buf = vec![0u8; entries.len() * PollFd::SIZE];
        for (e, chunk) in entries.iter().zip(buf.chunks_exact_mut(PollFd::SIZE)) {
            e.encode(chunk);
        }
        ctx.write_bytes(fds.addr(), &buf)
    };
    let done = |ctx: &mut Ctx<'_, P>, ret: Result<Reply, Errno>| {
        if kind == PollKind::Ppoll {
            if let Some(d) = deadline.filter(|_| timeout != Some(0)) {
                let left = Timespec::from_ns(remaining(ctx, d));
                if ctx.write(tsp, &left).is_err() && ret == Err(ERESTARTNOHAND) {
                    // Linux: a timeout it cannot update cannot be restarted.
                    return Err(Errno::EINTR);
                }
            }
            if ret.is_ok() {
                restore_sigmask(ctx);
            }
        }
        ret
    };
    if count > 0 {
        finish(ctx, &entries)?;
        return done(ctx, Ok(Reply::Value(count)));
    }
    let deadline = if timeout == Some(0) {
        Some(0)
    } else {
        deadline
    };
    match idle(ctx, &files, deadline) {
        Idle::TimedOut => {
            finish(ctx, &entries)?;
            done(ctx, Ok(Reply::Value(0)))
        }
        Idle::Interrupted => match kind {
            PollKind::Poll => Err(ERESTART_RESTARTBLOCK),
            PollKind::Ppoll => done(ctx, Err(ERESTARTNOHAND)),
        },
        Idle::Blocked(r) => Ok(r),
    }
}

/// poll(fds, nfds, timeout_ms).
pub fn sys_poll<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fds: UserPtr<PollFd>,
    nfds: u32,
    timeout_ms: i32,
) -> Result<Reply, Errno> {
    do_poll(
        ctx,
        fds,
        nfds,
        ms_timeout(timeout_ms),
        PollKind::Poll,
        UserPtr::new(0),
    )
}

/// ppoll(fds, nfds, tsp, sigmask, sigsetsize).
pub fn sys_ppoll<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fds: UserPtr<PollFd>,
    nfds: u32,
    tsp: UserPtr<Timespec>,
    sigmask: UserPtr<u64>,
    sigsetsize: usize,
) -> Result<Reply, Errno> {
    let timeout = timespec_timeout(ctx, tsp)?;
    apply_sigmask(ctx, sigmask, sigsetsize)?;
    let r = do_poll(ctx, fds, nfds, timeout, PollKind::Ppoll, tsp);
    if matches!(r, Err(e) if e != ERESTARTNOHAND && e != Errno::EINTR) {
        restore_sigmask(ctx);
    }
    r
}

// ---- select and pselect6 ----------------------------------------------------------------------

/// Bits of `fd_set` a readable fd sets (Linux's `POLLIN_SET`), a writable one
/// (`POLLOUT_SET`) and an exceptional one (`POLLEX_SET`).
const POLLIN_SET: u32 = EPOLLRDNORM | EPOLLRDBAND | EPOLLIN | EPOLLHUP | EPOLLERR;
const POLLOUT_SET: u32 = EPOLLWRBAND | EPOLLWRNORM | EPOLLOUT | EPOLLERR;
const POLLEX_SET: u32 = EPOLLPRI;

/// How select-family timeouts are written back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SelectKind {
    /// select: a `struct timeval`.
    Timeval,
    /// pselect6: a `struct timespec`.
    Timespec,
}

/// One `fd_set` argument: its address (0: none) and its bits, as 64-bit words.
struct FdSet {
    addr: u64,
    words: Vec<u64>,
}

impl FdSet {
    fn read<P: Platform>(ctx: &Ctx<'_, P>, addr: u64, nwords: usize) -> Result<Self, Errno> {
        let mut words = vec![0u64; nwords];
        if addr != 0 {
            let mut buf = vec![0u8; nwords * 8];
            ctx.read_bytes(addr, &mut buf)?;
            for (w, b) in words.iter_mut().zip(buf.chunks_exact(8)) {
                *w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            }
        }
        Ok(FdSet { addr, words })
    }

    fn get(&self, fd: usize) -> bool {
        self.words[fd / 64] & (1 << (fd % 64)) != 0
    }

    fn write<P: Platform>(&self, ctx: &Ctx<'_, P>) -> Result<(), Errno> {
        if self.addr == 0 {
            return Ok(());
        }
        let buf: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        ctx.write_bytes(self.addr, &buf)
    }
}

#[allow(clippy::too_many_arguments)]
fn do_select<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    nfds: i32,
    sets: [u64; 3],
    timeout: Option<u64>,
    kind: SelectKind,
    tp: u64,
) -> Result<Reply, Errno> {
    let n = usize::try_from(nfds).map_err(|_| Errno::EINVAL)?;
    // Linux clips nfds to the fd table's size; Kiln's table may grow to RLIMIT_NOFILE.
    let n = n.min(nofile(ctx));
    let nwords = n.div_ceil(64);
    let [inp, outp, exp] = sets;
    let (inp, outp, exp) = (
        FdSet::read(ctx, inp, nwords)?,
        FdSet::read(ctx, outp, nwords)?,
        FdSet::read(ctx, exp, nwords)?,
    );
    let deadline = wait_deadline(ctx, timeout);
    let now = ctx.platform.monotonic_ns();
    let mut res = [vec![0u64; nwords], vec![0u64; nwords], vec![0u64; nwords]];
    let mut files: Vec<Arc<dyn File>> = Vec::new();
    let mut count = 0;
    for fd in 0..n {
        let wanted = [inp.get(fd), outp.get(fd), exp.get(fd)];
        if !wanted.iter().any(|&w| w) {
            continue;
        }
        let file = ctx.process.fs.fds.get(fd as i32)?.desc.file.clone();
        let mask = poll_mask(&*file, now);
        for (i, set) in [POLLIN_SET, POLLOUT_SET, POLLEX_SET]
            .into_iter()
            .enumerate()
        {
            if wanted[i] && mask & set != 0 {
                res[i][fd / 64] |= 1 << (fd % 64);
                count += 1;
            }
        }
        files.push(file);
    }
    let write_timeout = |ctx: &mut Ctx<'_, P>, ret: Result<Reply, Errno>| {
        let Some(d) = deadline.filter(|_| timeout != Some(0)) else {
            return ret;
        };
        let left = remaining(ctx, d);
        let written = match kind {
            SelectKind::Timeval => {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&((left / NSEC_PER_SEC) as i64).to_le_bytes());
                b[8..].copy_from_slice(&((left % NSEC_PER_SEC / 1000) as i64).to_le_bytes());
                ctx.write_bytes(tp, &b)
            }
            SelectKind::Timespec => ctx.write(UserPtr::new(tp), &Timespec::from_ns(left)),
        };
        match (written, ret) {
            // Linux: a timeout it cannot update cannot be restarted.
            (Err(_), Err(e)) if e == ERESTARTNOHAND => Err(Errno::EINTR),
            (_, ret) => ret,
        }
    };
    let store = |ctx: &mut Ctx<'_, P>, res: [Vec<u64>; 3]| -> Result<(), Errno> {
        for (set, words) in [&inp, &outp, &exp].into_iter().zip(res) {
            FdSet {
                addr: set.addr,
                words,
            }
            .write(ctx)?;
        }
        Ok(())
    };
    if count > 0 {
        store(ctx, res)?;
        restore_sigmask(ctx);
        return write_timeout(ctx, Ok(Reply::Value(count)));
    }
    let deadline_now = if timeout == Some(0) {
        Some(0)
    } else {
        deadline
    };
    match idle(ctx, &files, deadline_now) {
        Idle::TimedOut => {
            store(ctx, res)?;
            restore_sigmask(ctx);
            write_timeout(ctx, Ok(Reply::Value(0)))
        }
        Idle::Interrupted => write_timeout(ctx, Err(ERESTARTNOHAND)),
        Idle::Blocked(r) => Ok(r),
    }
}

/// select(nfds, readfds, writefds, exceptfds, timeout).
pub fn sys_select<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    nfds: i32,
    readfds: UserPtr<u64>,
    writefds: UserPtr<u64>,
    exceptfds: UserPtr<u64>,
    tvp: UserPtr<u8>,
) -> Result<Reply, Errno> {
    let timeout = if tvp.is_null() {
        None
    } else {
        let mut b = [0u8; 16];
        ctx.read_bytes(tvp.addr(), &mut b)?;
        let sec = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let usec = i64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
        // Linux folds whole seconds of tv_usec into tv_sec; what stays negative is invalid.
        let sec = sec.checked_add(usec / 1_000_000).ok_or(Errno::EINVAL)?;
        let ts = Timespec {
            sec,
            nsec: (usec % 1_000_000) * 1000,
        };
        Some(ts.to_ns().ok_or(Errno::EINVAL)?)
    };
    let sets = [readfds.addr(), writefds.addr(), exceptfds.addr()];
    do_select(ctx, nfds, sets, timeout, SelectKind::Timeval, tvp.addr())
}

/// pselect6's sixth argument: `{ const sigset_t *ss; size_t ss_len; }`.
#[derive(Debug, Clone, Copy)]
pub struct SigsetArg {
    pub set: u64,
    pub len: u64,
}
impl Layout for SigsetArg {
    const SIZE: usize = 16;
}
impl FromUser for SigsetArg {
    fn decode(b: &[u8]) -> Self {
        SigsetArg {
            set: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            len: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        }
    }
}

/// pselect6(nfds, readfds, writefds, exceptfds, timeout, &{sigmask, sigsetsize}).
pub fn sys_pselect6<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    nfds: i32,
    readfds: UserPtr<u64>,
    writefds: UserPtr<u64>,
    exceptfds: UserPtr<u64>,
    tsp: UserPtr<Timespec>,
    sig: UserPtr<SigsetArg>,
) -> Result<Reply, Errno> {
    let timeout = timespec_timeout(ctx, tsp)?;
    if !sig.is_null() {
        let s = ctx.read(sig)?;
        apply_sigmask(ctx, UserPtr::new(s.set), s.len as usize)?;
    }
    let sets = [readfds.addr(), writefds.addr(), exceptfds.addr()];
    let r = do_select(ctx, nfds, sets, timeout, SelectKind::Timespec, tsp.addr());
    if matches!(r, Err(e) if e != ERESTARTNOHAND && e != Errno::EINTR) {
        restore_sigmask(ctx);
    }
    r
}

//! Signals: dispositions, per-thread masks and pending sets, sending (kill/tkill/tgkill,
//! rt_sigqueueinfo), waiting (rt_sigsuspend, pause, rt_sigtimedwait), the alternate stack.
//!
//! State is split as on Linux: the dispositions and the process-directed pending queue are
//! the process's ([`SignalState`]); the blocked mask, the thread-directed queue and the
//! alternate stack are each thread's ([`ThreadSignals`]). Sending queues the signal and, when
//! the chosen thread is parked in a blocking call and takes the signal, ends its wait with
//! [`WakeReason::Interrupted`]; the re-run call returns one of the kernel-internal restart
//! codes ([`ERESTARTSYS`] ...), which [`Process::deliver_signal`] (in `signal_frame`) turns into
//! a restart or `EINTR` before the app sees it. Handler frames and rt_sigreturn live in
//! `signal_frame`.

use alloc::vec::Vec;

use super::args::{ArgError, FromReg, UserPtr};
use super::linux::{KSigaction, SI_TKILL, SI_USER, SIG_DFL, SIG_IGN, SigInfo, StackT, Timespec};
use super::{Ctx, Reply, WarnKey};
use crate::errno::Errno;
use crate::platform::Platform;
use crate::process::{Process, Thread, Tid, WakeReason};

pub const NSIG: u8 = 64;
pub const SIGILL: u8 = 4;
pub const SIGTRAP: u8 = 5;
pub const SIGBUS: u8 = 7;
pub const SIGFPE: u8 = 8;
pub const SIGKILL: u8 = 9;
pub const SIGSEGV: u8 = 11;
pub const SIGALRM: u8 = 14;
pub const SIGVTALRM: u8 = 26;
pub const SIGPROF: u8 = 27;
pub const SIGSTOP: u8 = 19;
pub const SIGSYS: u8 = 31;
/// The first real-time signal as the kernel numbers them (libcs reserve a few above it).
pub const SIGRTMIN: u8 = 32;
/// The kernel's sigset_t is one 64-bit word.
pub(crate) const SIGSET_SIZE: usize = 8;

pub(crate) const fn bit(sig: u8) -> u64 {
    1 << (sig - 1)
}
/// SIGKILL and SIGSTOP can be neither caught, ignored nor blocked.
pub(crate) const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);
/// Signals the CPU raises; delivered before others, as Linux does.
const SYNCHRONOUS: u64 =
    bit(SIGSEGV) | bit(SIGBUS) | bit(SIGILL) | bit(SIGTRAP) | bit(SIGFPE) | bit(SIGSYS);

// `sa_flags`.
pub const SA_NOCLDSTOP: u64 = 0x1;
pub const SA_NOCLDWAIT: u64 = 0x2;
pub const SA_SIGINFO: u64 = 0x4;
pub const SA_EXPOSE_TAGBITS: u64 = 0x800;
pub const SA_RESTORER: u64 = 0x0400_0000;
pub const SA_ONSTACK: u64 = 0x0800_0000;
pub const SA_RESTART: u64 = 0x1000_0000;
pub const SA_NODEFER: u64 = 0x4000_0000;
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// The flags Linux keeps on x86_64; others are cleared (so apps can probe for support).
const SA_KNOWN: u64 = SA_NOCLDSTOP
    | SA_NOCLDWAIT
    | SA_SIGINFO
    | SA_EXPOSE_TAGBITS
    | SA_RESTORER
    | SA_ONSTACK
    | SA_RESTART
    | SA_NODEFER
    | SA_RESETHAND;

/// Kernel-internal "restart me" results (never seen by the app): a blocking call interrupted
/// by a signal returns one, and delivery decides between a restart and `EINTR`.
/// Restart if the handler has SA_RESTART (or no handler runs), else `EINTR`.
pub const ERESTARTSYS: Errno = Errno(512);
/// Always restart.
pub const ERESTARTNOINTR: Errno = Errno(513);
/// `EINTR` if a handler runs, else restart.
pub const ERESTARTNOHAND: Errno = Errno(514);
/// `EINTR` if a handler runs, else continue where it stopped (the kept deadline).
pub const ERESTART_RESTARTBLOCK: Errno = Errno(516);

pub(crate) fn is_restart_code(rax: u64) -> Option<Errno> {
    match rax as i64 {
        -512 => Some(ERESTARTSYS),
        -513 => Some(ERESTARTNOINTR),
        -514 => Some(ERESTARTNOHAND),
        -516 => Some(ERESTART_RESTARTBLOCK),
        _ => None,
    }
}

/// What a signal does when its disposition is SIG_DFL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    Ignore,
    Stop,
}

pub fn default_action(sig: u8) -> DefaultAction {
    match sig {
        // SIGCHLD, SIGCONT, SIGURG, SIGWINCH
        17 | 18 | 23 | 28 => DefaultAction::Ignore,
        // SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU
        19..=22 => DefaultAction::Stop,
        // Everything else terminates (with or without a core dump), real-time signals included.
        _ => DefaultAction::Terminate,
    }
}

/// One queued instance of a signal.
#[derive(Debug, Clone)]
pub(crate) struct QueuedSignal {
    pub info: SigInfo,
    /// The POSIX timer that sent it (its overrun count is filled in when it is taken).
    pub timer: Option<i32>,
}

/// A pending set with the siginfo of each instance: standard signals are pending at most
/// once, real-time signals queue every instance.
#[derive(Debug, Clone, Default)]
pub(crate) struct SigQueue {
    pub set: u64,
    queue: Vec<QueuedSignal>,
}

impl SigQueue {
    /// Queues a signal; false if it is a standard signal that is already pending.
    pub fn push(&mut self, info: SigInfo, timer: Option<i32>) -> bool {
        let sig = info.signo();
        if sig < SIGRTMIN && self.set & bit(sig) != 0 {
            return false;
        }
        self.set |= bit(sig);
        self.queue.push(QueuedSignal { info, timer });
        true
    }

    /// Takes the oldest instance of `sig` (which must be in `set`).
    pub fn take(&mut self, sig: u8) -> QueuedSignal {
        let q = match self.queue.iter().position(|q| q.info.signo() == sig) {
            Some(i) => self.queue.remove(i),
            None => QueuedSignal {
                info: SigInfo::new(sig, super::linux::SI_KERNEL),
                timer: None,
            },
        };
        if !self.queue.iter().any(|q| q.info.signo() == sig) {
            self.set &= !bit(sig);
        }
        q
    }

    /// Drops every instance of the signals in `sigs`.
    pub fn discard(&mut self, sigs: u64) {
        self.queue.retain(|q| sigs & bit(q.info.signo()) == 0);
        self.set &= !sigs;
    }

    /// Drops the signals a timer queued; returns whether there was one.
    pub fn discard_timer(&mut self, id: i32) -> bool {
        let before = self.queue.len();
        self.queue.retain(|q| q.timer != Some(id));
        self.set = self.queue.iter().fold(0, |s, q| s | bit(q.info.signo()));
        before != self.queue.len()
    }
}

/// A thread's signal state.
#[derive(Debug, Clone)]
pub struct ThreadSignals {
    /// Blocked signals.
    pub mask: u64,
    /// Thread-directed pending signals (tkill, tgkill, faults, SIGEV_THREAD_ID timers).
    pub(crate) pending: SigQueue,
    pub altstack: StackT,
    /// The mask to restore after the next handler (rt_sigsuspend's temporary mask).
    pub saved_mask: Option<u64>,
    /// Signals an rt_sigtimedwait in progress waits for.
    pub sigwait: u64,
    /// The last syscall (number, code) returned a restart code that delivery has not
    /// converted yet.
    pub restart: Option<(u64, Errno)>,
}

impl Default for ThreadSignals {
    fn default() -> Self {
        ThreadSignals {
            mask: 0,
            pending: SigQueue::default(),
            altstack: StackT {
                sp: 0,
                flags: SS_DISABLE,
                size: 0,
            },
            saved_mask: None,
            sigwait: 0,
            restart: None,
        }
    }
}

/// Per-process signal state.
#[derive(Debug, Clone)]
pub struct SignalState {
    actions: [KSigaction; NSIG as usize],
    /// Process-directed pending signals.
    pub(crate) shared: SigQueue,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [KSigaction::default(); NSIG as usize],
            shared: SigQueue::default(),
        }
    }
}

impl SignalState {
    pub fn action(&self, sig: u8) -> KSigaction {
        self.actions[(sig - 1) as usize]
    }

    pub(crate) fn set_action(&mut self, sig: u8, act: KSigaction) {
        self.actions[(sig - 1) as usize] = act;
    }

    /// Whether sending `sig` now would have no effect at all (Linux drops such signals).
    pub fn ignored(&self, sig: u8) -> bool {
        if sig == SIGKILL {
            return false;
        }
        match self.action(sig).handler {
            SIG_IGN => true,
            SIG_DFL => default_action(sig) != DefaultAction::Terminate,
            _ => false,
        }
    }

    /// Whether `sig`'s action is to end the process.
    pub fn fatal(&self, sig: u8) -> bool {
        sig == SIGKILL
            || (self.action(sig).handler == SIG_DFL
                && default_action(sig) == DefaultAction::Terminate)
    }
}

/// Who a signal is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalTarget {
    /// kill, timers, itimers: any thread that does not block it may take it.
    Process,
    /// tkill, tgkill, SIGEV_THREAD_ID.
    Thread(Tid),
}

/// Whether `t` takes `sig` now: it does not block it, or an rt_sigtimedwait waits for it.
fn wants(t: &Thread, sig: u8) -> bool {
    t.sig.mask & bit(sig) == 0 || t.sig.sigwait & bit(sig) != 0
}

impl Process {
    /// Queues `info` for `target` and wakes a thread that takes it. Returns the signal when
    /// it ends the process right away (its action is to terminate and a thread that does
    /// not block it receives it), as Linux kills the whole group at send time.
    pub(crate) fn send_signal(
        &mut self,
        target: SignalTarget,
        info: SigInfo,
        timer: Option<i32>,
    ) -> Option<u8> {
        let sig = info.signo();
        let b = bit(sig);
        let held = match target {
            SignalTarget::Thread(t) => self
                .threads
                .get(&t)
                .is_some_and(|t| !wants(t, sig) || t.sig.sigwait & b != 0),
            SignalTarget::Process => self
                .threads
                .values()
                .any(|t| !wants(t, sig) || t.sig.sigwait & b != 0),
        };
        if !held && self.signals.ignored(sig) {
            if self.signals.action(sig).handler == SIG_DFL
                && default_action(sig) == DefaultAction::Stop
                && self.warned.insert(WarnKey::Message("signal_stop"))
            {
                log::warn!("signal {sig}: stop signals are ignored: there is no job control");
            }
            return None;
        }
        let dest = match target {
            SignalTarget::Thread(t) => {
                let thread = self.threads.get_mut(&t)?;
                if !thread.sig.pending.push(info, timer) && timer.is_some() {
                    return None;
                }
                t
            }
            SignalTarget::Process => {
                if !self.signals.shared.push(info, timer) && timer.is_some() {
                    return None;
                }
                self.choose_target(sig)?
            }
        };
        if let Some(id) = timer {
            self.timers.mark_queued(id);
        }
        let thread = &self.threads[&dest];
        let fatal = self.signals.fatal(sig) && (sig == SIGKILL || thread.sig.mask & b == 0);
        if thread.blocked && (fatal || wants(thread, sig)) {
            // Also when fatal: a timer's signal has no sender to end the process, so the
            // parked thread must run to have it delivered (and die).
            let reason = if !fatal && thread.sig.sigwait & b != 0 {
                WakeReason::Woken
            } else {
                WakeReason::Interrupted
            };
            self.end_wait(dest, reason);
        }
        fatal.then_some(sig)
    }

    /// The thread a process-directed `sig` goes to: the main thread if it takes it, else a
    /// thread parked in a syscall that takes it, else any that takes it.
    fn choose_target(&self, sig: u8) -> Option<Tid> {
        if let Some(main) = self.threads.get(&Process::PID)
            && wants(main, sig)
        {
            return Some(Process::PID);
        }
        self.threads
            .values()
            .find(|t| t.blocked && wants(t, sig))
            .or_else(|| self.threads.values().find(|t| wants(t, sig)))
            .map(|t| t.tid)
    }

    /// Signals pending for `tid` (its own and the process's).
    pub(crate) fn pending_for(&self, tid: Tid) -> u64 {
        self.threads.get(&tid).map_or(0, |t| t.sig.pending.set) | self.signals.shared.set
    }

    /// Whether `tid` has a pending signal it does not block.
    pub(crate) fn has_deliverable(&self, tid: Tid) -> bool {
        self.threads
            .get(&tid)
            .is_some_and(|t| (t.sig.pending.set | self.signals.shared.set) & !t.sig.mask != 0)
    }

    /// Whether a thread about to park should rather be interrupted at once.
    pub(crate) fn should_interrupt(&self, tid: Tid) -> bool {
        self.threads
            .get(&tid)
            .is_some_and(|t| self.pending_for(tid) & (!t.sig.mask | t.sig.sigwait) != 0)
    }

    /// Takes `tid`'s next signal among `allowed`: synchronous ones first, then the lowest
    /// number, the thread's own before the process's.
    pub(crate) fn dequeue_signal(&mut self, tid: Tid, allowed: u64) -> Option<QueuedSignal> {
        let own = self.threads.get(&tid)?.sig.pending.set;
        let candidates = (own | self.signals.shared.set) & allowed;
        if candidates == 0 {
            return None;
        }
        let sync = candidates & SYNCHRONOUS;
        let pick = if sync != 0 { sync } else { candidates };
        let sig = pick.trailing_zeros() as u8 + 1;
        let mut q = if own & bit(sig) != 0 {
            self.threads.get_mut(&tid)?.sig.pending.take(sig)
        } else {
            self.signals.shared.take(sig)
        };
        if let Some(id) = q.timer {
            self.timers.on_dequeue(id, &mut q.info);
        }
        Some(q)
    }

    /// Drops every pending instance of `sigs` (process and threads).
    pub(crate) fn discard_signals(&mut self, sigs: u64) {
        self.signals.shared.discard(sigs);
        for t in self.threads.values_mut() {
            t.sig.pending.discard(sigs);
        }
    }

    /// The signal among `tid`'s deliverable ones whose action ends the process, if any.
    pub(crate) fn fatal_deliverable(&self, tid: Tid) -> Option<u8> {
        let t = self.threads.get(&tid)?;
        let ready = self.pending_for(tid) & !t.sig.mask;
        (1..=NSIG).find(|&s| ready & bit(s) != 0 && self.signals.fatal(s))
    }
}

/// A signal number 1..=64 (decoding rejects others with EINVAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub u8);

impl FromReg for Signal {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        match raw as u32 as i32 {
            s @ 1..=64 => Ok(Signal(s as u8)),
            _ => Err(ArgError::Invalid),
        }
    }
}

/// A signal number 0..=64 for the kill family (0 only checks the target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillSignal(pub u8);

impl FromReg for KillSignal {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        match raw as u32 as i32 {
            s @ 0..=64 => Ok(KillSignal(s as u8)),
            _ => Err(ArgError::Invalid),
        }
    }
}

pub fn sys_rt_sigaction<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    sig: Signal,
    act: UserPtr<KSigaction>,
    oldact: UserPtr<KSigaction>,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let new = if act.is_null() {
        None
    } else {
        Some(ctx.read(act)?)
    };
    if new.is_some() && (sig.0 == SIGKILL || sig.0 == SIGSTOP) {
        return Err(Errno::EINVAL);
    }
    ctx.write_opt(oldact, &ctx.process.signals.action(sig.0))?;
    if let Some(mut new) = new {
        new.mask &= !UNBLOCKABLE;
        new.flags &= SA_KNOWN;
        if new.handler != SIG_DFL && new.handler != SIG_IGN && new.flags & SA_RESTORER == 0 {
            ctx.warn_once(
                "sa_restorer",
                format_args!("rt_sigaction({}): a handler without SA_RESTORER returns to address 0 on x86_64", sig.0),
            );
        }
        ctx.process.signals.set_action(sig.0, new);
        // POSIX: making a pending signal ignored discards it.
        if ctx.process.signals.ignored(sig.0) {
            ctx.process.discard_signals(bit(sig.0));
        }
    }
    Ok(0)
}

/// rt_sigprocmask's `how` is only checked when a new set is given, so it is decoded late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHow(pub i32);

impl FromReg for RawHow {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        Ok(RawHow(raw as u32 as i32))
    }
}

const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const SIG_SETMASK: i32 = 2;

pub fn sys_rt_sigprocmask<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    how: RawHow,
    set: UserPtr<u64>,
    oldset: UserPtr<u64>,
    sigsetsize: usize,
) -> Result<Reply, Errno> {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let change = if set.is_null() {
        None
    } else {
        if !matches!(how.0, SIG_BLOCK | SIG_UNBLOCK | SIG_SETMASK) {
            return Err(Errno::EINVAL);
        }
        Some(ctx.read(set)?)
    };
    let old = ctx.thread().sig.mask;
    ctx.write_opt(oldset, &old)?;
    if let Some(set) = change {
        let mask = match how.0 {
            SIG_BLOCK => old | set,
            SIG_UNBLOCK => old & !set,
            _ => set,
        };
        ctx.thread_mut().sig.mask = mask & !UNBLOCKABLE;
        // A fatal signal raised while blocked ends the process as soon as it is unblocked
        // (handled ones are delivered on the way back to the app).
        if let Some(sig) = ctx.process.fatal_deliverable(ctx.tid) {
            return Ok(Reply::killed_by(sig));
        }
    }
    Ok(Reply::Value(0))
}

pub fn sys_rt_sigpending<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    set: UserPtr<u64>,
    sigsetsize: usize,
) -> Result<usize, Errno> {
    if sigsetsize > SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let pending = ctx.process.pending_for(ctx.tid) & ctx.thread().sig.mask;
    ctx.write_bytes(set.addr(), &pending.to_le_bytes()[..sigsetsize])?;
    Ok(0)
}

/// rt_sigsuspend: waits with a temporary mask until a signal is delivered. Returns `EINTR`
/// after the handler; the handler's frame saves the old mask, so it is back after
/// rt_sigreturn (Linux's saved-mask mechanism).
pub fn sys_rt_sigsuspend<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    set: UserPtr<u64>,
    sigsetsize: usize,
) -> Result<Reply, Errno> {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    if ctx.resumed.is_some() && ctx.thread().sig.saved_mask.is_some() {
        return Err(ERESTARTNOHAND);
    }
    let new = ctx.read(set)? & !UNBLOCKABLE;
    let sig = &mut ctx.thread_mut().sig;
    sig.saved_mask = Some(sig.mask);
    sig.mask = new;
    if ctx.process.has_deliverable(ctx.tid) {
        return Err(ERESTARTNOHAND);
    }
    Ok(ctx.block(None))
}

/// pause: waits until a signal is delivered; `EINTR` after the handler.
pub fn sys_pause<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<Reply, Errno> {
    if ctx.resumed.is_some() || ctx.process.has_deliverable(ctx.tid) {
        return Err(ERESTARTNOHAND);
    }
    Ok(ctx.block(None))
}

/// rt_sigtimedwait: takes a pending signal of `set` (normally blocked), or waits for one.
pub fn sys_rt_sigtimedwait<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    set: UserPtr<u64>,
    info: UserPtr<SigInfo>,
    timeout: UserPtr<Timespec>,
    sigsetsize: usize,
) -> Result<Reply, Errno> {
    if sigsetsize != SIGSET_SIZE {
        return Err(Errno::EINVAL);
    }
    let set = ctx.read(set)? & !UNBLOCKABLE;
    ctx.thread_mut().sig.sigwait = 0;
    if let Some(q) = ctx.process.dequeue_signal(ctx.tid, set) {
        ctx.write_opt(info, &q.info)?;
        return Ok(Reply::Value(q.info.signo() as usize));
    }
    let deadline = match ctx.resumed {
        Some(WakeReason::TimedOut) => return Err(Errno::EAGAIN),
        // Woken by a signal outside the set (it will be delivered on the way out).
        Some(WakeReason::Interrupted) => return Err(Errno::EINTR),
        Some(WakeReason::Woken) => ctx.deadline(),
        None if timeout.is_null() => None,
        None => {
            let ns = ctx.read(timeout)?.to_ns().ok_or(Errno::EINVAL)?;
            if ns == 0 {
                return Err(Errno::EAGAIN);
            }
            Some(ctx.platform.monotonic_ns().saturating_add(ns))
        }
    };
    ctx.thread_mut().sig.sigwait = set;
    Ok(ctx.block(deadline))
}

pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;
pub const SS_AUTODISARM: i32 = 1 << 31;
/// Linux's MINSIGSTKSZ on x86_64.
pub const MINSIGSTKSZ: u64 = 2048;

/// Whether `sp` is on `t`'s alternate stack (never, with SS_AUTODISARM: as Linux).
pub(crate) fn on_sig_stack(alt: &StackT, sp: u64) -> bool {
    alt.flags & SS_AUTODISARM == 0 && sp > alt.sp && sp - alt.sp <= alt.size
}

/// `ss_flags` as sigaltstack reports them for a thread at `sp`.
pub(crate) fn sas_ss_flags(alt: &StackT, sp: u64) -> i32 {
    if alt.size == 0 {
        return SS_DISABLE;
    }
    if on_sig_stack(alt, sp) { SS_ONSTACK } else { 0 }
}

/// Installs `new` as `tid`'s alternate stack (sigaltstack and rt_sigreturn); `sp` is where the
/// thread runs (None: unknown, taken as not on the alternate stack).
pub(crate) fn set_altstack(thread: &mut Thread, new: StackT, sp: Option<u64>) -> Result<(), Errno> {
    if sp.is_some_and(|sp| on_sig_stack(&thread.sig.altstack, sp)) {
        return Err(Errno::EPERM);
    }
    let mode = new.flags & !SS_AUTODISARM;
    if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
        return Err(Errno::EINVAL);
    }
    thread.sig.altstack = if mode == SS_DISABLE {
        StackT {
            sp: 0,
            flags: SS_DISABLE,
            size: 0,
        }
    } else {
        if new.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
        // SS_ONSTACK on input means "enable", like 0.
        StackT {
            sp: new.sp,
            flags: new.flags & SS_AUTODISARM,
            size: new.size,
        }
    };
    Ok(())
}

pub fn sys_sigaltstack<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    ss: UserPtr<StackT>,
    old: UserPtr<StackT>,
) -> Result<usize, Errno> {
    let new = if ss.is_null() {
        None
    } else {
        Some(ctx.read(ss)?)
    };
    let sp = ctx.thread().user_sp;
    let cur = ctx.thread().sig.altstack;
    let reported = StackT {
        flags: sas_ss_flags(&cur, sp.unwrap_or(0)) | (cur.flags & SS_AUTODISARM),
        ..cur
    };
    if let Some(n) = new {
        set_altstack(ctx.thread_mut(), n, sp)?;
    }
    ctx.write_opt(old, &reported)?;
    Ok(0)
}

/// The siginfo of a kill-family signal from this process.
fn user_info(sig: u8, code: i32) -> SigInfo {
    SigInfo::kill(sig, code, Process::PID, 0)
}

fn send<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    target: SignalTarget,
    info: SigInfo,
) -> Result<Reply, Errno> {
    if info.signo() == 0 {
        return Ok(Reply::Value(0));
    }
    match ctx.process.send_signal(target, info, None) {
        Some(sig) => Ok(Reply::killed_by(sig)),
        None => Ok(Reply::Value(0)),
    }
}

/// kill's `pid` names this process: 0 (our group), the pid, or any of its thread ids (Linux
/// sends to the thread's group).
fn names_process<P: Platform>(ctx: &Ctx<'_, P>, pid: i32) -> bool {
    pid == 0 || ctx.process.threads.contains_key(&pid)
}

pub fn sys_kill<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    pid: i32,
    sig: KillSignal,
) -> Result<Reply, Errno> {
    // -1 means "every process except init and the caller", which is no one here.
    if pid == -1 || !names_process(ctx, pid) {
        return Err(Errno::ESRCH);
    }
    send(ctx, SignalTarget::Process, user_info(sig.0, SI_USER))
}

pub fn sys_tkill<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    tid: i32,
    sig: KillSignal,
) -> Result<Reply, Errno> {
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if !ctx.process.threads.contains_key(&tid) {
        return Err(Errno::ESRCH);
    }
    send(ctx, SignalTarget::Thread(tid), user_info(sig.0, SI_TKILL))
}

pub fn sys_tgkill<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    tgid: i32,
    tid: i32,
    sig: KillSignal,
) -> Result<Reply, Errno> {
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if tgid != Process::PID || !ctx.process.threads.contains_key(&tid) {
        return Err(Errno::ESRCH);
    }
    send(ctx, SignalTarget::Thread(tid), user_info(sig.0, SI_TKILL))
}

/// The app's siginfo for rt_sigqueueinfo/rt_tgsigqueueinfo, with `si_signo` forced to `sig`.
fn queued_info<P: Platform>(
    ctx: &Ctx<'_, P>,
    sig: u8,
    uinfo: UserPtr<SigInfo>,
) -> Result<SigInfo, Errno> {
    let mut info = ctx.read(uinfo)?;
    info.set_signo(sig);
    Ok(info)
}

pub fn sys_rt_sigqueueinfo<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    tgid: i32,
    sig: KillSignal,
    uinfo: UserPtr<SigInfo>,
) -> Result<Reply, Errno> {
    let info = queued_info(ctx, sig.0, uinfo)?;
    if !names_process(ctx, tgid) || tgid <= 0 {
        return Err(Errno::ESRCH);
    }
    send(ctx, SignalTarget::Process, info)
}

pub fn sys_rt_tgsigqueueinfo<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    tgid: i32,
    tid: i32,
    sig: KillSignal,
    uinfo: UserPtr<SigInfo>,
) -> Result<Reply, Errno> {
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let info = queued_info(ctx, sig.0, uinfo)?;
    if tgid != Process::PID || !ctx.process.threads.contains_key(&tid) {
        return Err(Errno::ESRCH);
    }
    send(ctx, SignalTarget::Thread(tid), info)
}

/// rt_sigreturn: the kernel restores the frame's context through [`Process::sigreturn`].
pub fn sys_rt_sigreturn<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Reply {
    Reply::SigReturn
}

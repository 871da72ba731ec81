//! Signals: dispositions, the blocked mask, the alternate stack, and sending a signal to
//! ourselves.
//!
//! There is one process with one thread, so the only target of kill/tkill/tgkill is the
//! caller. Default actions are carried out (terminate, ignore); running an app handler needs
//! signal frames and rt_sigreturn, which do not exist yet, so a caught signal is `ENOSYS`.

use super::args::{UserPtr, enum_arg};
use super::linux::{KSigaction, SIG_DFL, SIG_IGN, StackT};
use super::process_info::is_self;
use super::{Ctx, Reply};
use crate::errno::Errno;
use crate::platform::Platform;
use crate::process::Process;

pub const NSIG: u8 = 64;
pub const SIGKILL: u8 = 9;
pub const SIGSTOP: u8 = 19;
/// The kernel's sigset_t is one 64-bit word.
const SIGSET_SIZE: usize = 8;

const fn bit(sig: u8) -> u64 {
    1 << (sig - 1)
}
/// SIGKILL and SIGSTOP can be neither caught, ignored nor blocked.
const UNBLOCKABLE: u64 = bit(SIGKILL) | bit(SIGSTOP);

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

/// Per-process signal state.
#[derive(Debug, Clone)]
pub struct SignalState {
    actions: [KSigaction; NSIG as usize],
    pub mask: u64,
    /// Signals sent while blocked, delivered when unblocked.
    pub pending: u64,
    pub altstack: StackT,
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [KSigaction::default(); NSIG as usize],
            mask: 0,
            pending: 0,
            altstack: StackT {
                sp: 0,
                flags: SS_DISABLE,
                size: 0,
            },
        }
    }
}

impl SignalState {
    pub fn action(&self, sig: u8) -> KSigaction {
        self.actions[(sig - 1) as usize]
    }
}

/// A signal number 1..=64 (decoding rejects others with EINVAL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub u8);

impl super::args::FromReg for Signal {
    fn from_reg(raw: u64) -> Result<Self, super::args::ArgError> {
        match raw as u32 as i32 {
            s @ 1..=64 => Ok(Signal(s as u8)),
            _ => Err(super::args::ArgError::Invalid),
        }
    }
}

/// A signal number 0..=64 for the kill family (0 only checks the target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillSignal(pub u8);

impl super::args::FromReg for KillSignal {
    fn from_reg(raw: u64) -> Result<Self, super::args::ArgError> {
        match raw as u32 as i32 {
            s @ 0..=64 => Ok(KillSignal(s as u8)),
            _ => Err(super::args::ArgError::Invalid),
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
        ctx.process.signals.actions[(sig.0 - 1) as usize] = new;
    }
    Ok(0)
}

/// `how` for rt_sigprocmask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Block,
    Unblock,
    SetMask,
}
enum_arg!(How { 0 => Block, 1 => Unblock, 2 => SetMask });

/// rt_sigprocmask's `how` is only checked when a new set is given, so it is decoded late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHow(pub i32);

impl super::args::FromReg for RawHow {
    fn from_reg(raw: u64) -> Result<Self, super::args::ArgError> {
        Ok(RawHow(raw as u32 as i32))
    }
}

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
        let how = match how.0 {
            0 => How::Block,
            1 => How::Unblock,
            2 => How::SetMask,
            _ => return Err(Errno::EINVAL),
        };
        Some((how, ctx.read(set)?))
    };
    let old = ctx.process.signals.mask;
    ctx.write_opt(oldset, &old)?;
    if let Some((how, set)) = change {
        let mask = match how {
            How::Block => old | set,
            How::Unblock => old & !set,
            How::SetMask => set,
        };
        ctx.process.signals.mask = mask & !UNBLOCKABLE;
        // A signal raised while blocked is delivered as soon as it is unblocked.
        let ready = ctx.process.signals.pending & !ctx.process.signals.mask;
        if ready != 0 {
            let sig = ready.trailing_zeros() as u8 + 1;
            ctx.process.signals.pending &= !bit(sig);
            return deliver(ctx, sig).map(|r| match r {
                Reply::Value(_) => Reply::Value(0),
                exit => exit,
            });
        }
    }
    Ok(Reply::Value(0))
}

pub const SS_ONSTACK: i32 = 1;
pub const SS_DISABLE: i32 = 2;
const SS_AUTODISARM: i32 = 1 << 31;
/// Linux's MINSIGSTKSZ on x86_64.
const MINSIGSTKSZ: u64 = 2048;

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
    if let Some(n) = new {
        let mode = n.flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
            return Err(Errno::EINVAL);
        }
        if mode != SS_DISABLE && n.size < MINSIGSTKSZ {
            return Err(Errno::ENOMEM);
        }
    }
    ctx.write_opt(old, &ctx.process.signals.altstack)?;
    if let Some(mut n) = new {
        if n.flags & !SS_AUTODISARM == SS_DISABLE {
            n = StackT {
                sp: 0,
                flags: SS_DISABLE,
                size: 0,
            };
        } else {
            // SS_ONSTACK on input means "enable", like 0.
            n.flags &= SS_AUTODISARM;
        }
        ctx.process.signals.altstack = n;
    }
    Ok(0)
}

/// Sends `sig` to ourselves: carries out its disposition.
fn deliver<P: Platform>(ctx: &mut Ctx<'_, P>, sig: u8) -> Result<Reply, Errno> {
    if sig == 0 {
        return Ok(Reply::Value(0));
    }
    let signals = &mut ctx.process.signals;
    if sig != SIGKILL && signals.mask & bit(sig) != 0 {
        signals.pending |= bit(sig);
        return Ok(Reply::Value(0));
    }
    let handler = if sig == SIGKILL {
        SIG_DFL
    } else {
        signals.action(sig).handler
    };
    match handler {
        SIG_IGN => Ok(Reply::Value(0)),
        SIG_DFL => match default_action(sig) {
            DefaultAction::Terminate => Ok(Reply::killed_by(sig)),
            DefaultAction::Ignore => Ok(Reply::Value(0)),
            DefaultAction::Stop => {
                ctx.warn_once(
                    "signal_stop",
                    format_args!("stop signals are ignored: there is no job control"),
                );
                Ok(Reply::Value(0))
            }
        },
        _ => {
            log::warn!(
                "signal {sig}: signal delivery to handlers is not implemented yet: returning ENOSYS"
            );
            Err(Errno::ENOSYS)
        }
    }
}

pub fn sys_kill<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    pid: i32,
    sig: KillSignal,
) -> Result<Reply, Errno> {
    // pid 0 is our process group, which is just us. -1 would be process group 1 but means
    // "every process except init and the caller", which is no one here.
    if is_self(pid) {
        deliver(ctx, sig.0)
    } else {
        Err(Errno::ESRCH)
    }
}

pub fn sys_tkill<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    tid: i32,
    sig: KillSignal,
) -> Result<Reply, Errno> {
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    if tid != Process::PID {
        return Err(Errno::ESRCH);
    }
    deliver(ctx, sig.0)
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
    if tgid != Process::PID || tid != Process::PID {
        return Err(Errno::ESRCH);
    }
    deliver(ctx, sig.0)
}

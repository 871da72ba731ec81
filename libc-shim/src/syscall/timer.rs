//! Timers that send signals: alarm, setitimer/getitimer, POSIX timers (timer_create and
//! friends), and the CPU-time accounting behind the CPU clocks, ITIMER_VIRTUAL/ITIMER_PROF,
//! getrusage and times.
//!
//! Wall-clock timers (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, ITIMER_REAL) keep their
//! deadline in monotonic nanoseconds: the kernel arms its timer for [`Process::next_timer`] and
//! calls [`Process::run_timers`]. CPU-time timers keep theirs in CPU nanoseconds and fire from
//! [`Process::account`]. A POSIX timer whose signal is still queued when it expires again
//! counts an overrun instead of queueing a second one (`si_overrun`, timer_getoverrun).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::args::UserPtr;
use super::linux::{
    Itimerspec, Itimerval, SI_KERNEL, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD, SIGEV_THREAD_ID,
    SigInfo, Sigevent, Timespec, Timeval,
};
use super::signal::{SIGALRM, SIGPROF, SIGVTALRM, SignalTarget};
use super::time::ClockId;
use super::{Ctx, Reply};
use crate::errno::Errno;
use crate::platform::Platform;
use crate::process::{Process, Tid};

/// An interval timer of setitimer.
#[derive(Debug, Clone, Copy, Default)]
struct Itimer {
    deadline: Option<u64>,
    interval: u64,
}

/// What a timer's deadline is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerBase {
    /// Monotonic nanoseconds (the wall clocks).
    Wall,
    ProcessCpu,
    ThreadCpu(Tid),
}

#[derive(Debug, Clone, Copy)]
enum Notify {
    None,
    Signal {
        sig: u8,
        value: u64,
        target: SignalTarget,
    },
}

#[derive(Debug, Clone)]
struct PosixTimer {
    clock: ClockId,
    base: TimerBase,
    notify: Notify,
    deadline: Option<u64>,
    interval: u64,
    /// Expirations while the signal was still queued.
    overrun: u64,
    /// The overrun count of the last delivered signal (timer_getoverrun).
    overrun_last: i32,
    /// Its signal is queued and not yet taken.
    queued: bool,
}

/// The process's timers and CPU-time totals.
#[derive(Debug, Clone, Default)]
pub struct TimerState {
    timers: BTreeMap<i32, PosixTimer>,
    real: Itimer,
    virt: Itimer,
    prof: Itimer,
    /// CPU time of all threads, live and gone.
    pub process_cpu_ns: u64,
    /// Whether the kernel accounts CPU time (until it does, CPU clocks read the uptime).
    pub accounting: bool,
}

/// Most POSIX timers a process may have (Linux bounds them by RLIMIT_SIGPENDING).
const MAX_TIMERS: usize = 4096;

impl TimerState {
    /// A timer's signal was queued.
    pub(crate) fn mark_queued(&mut self, id: i32) {
        if let Some(t) = self.timers.get_mut(&id) {
            t.queued = true;
        }
    }

    /// A timer's signal is being taken: fill in its overrun count.
    pub(crate) fn on_dequeue(&mut self, id: i32, info: &mut SigInfo) {
        if let Some(t) = self.timers.get_mut(&id) {
            let overrun = t.overrun.min(i32::MAX as u64) as i32;
            info.set_overrun(overrun);
            t.overrun_last = overrun;
            t.overrun = 0;
            t.queued = false;
        }
    }
}

/// Moves a due deadline on by whole intervals; returns the expirations missed beyond the
/// first (0 for a one-shot, which is disarmed).
fn advance(deadline: &mut Option<u64>, interval: u64, now: u64) -> u64 {
    let Some(d) = *deadline else { return 0 };
    if interval == 0 {
        *deadline = None;
        return 0;
    }
    let missed = (now - d) / interval;
    *deadline = Some(d.saturating_add((missed + 1).saturating_mul(interval)));
    missed
}

impl Process {
    /// CPU time of `tid`, or of the process with `None`.
    pub(crate) fn cpu_ns<P: Platform>(&self, platform: &P, tid: Option<Tid>) -> u64 {
        if !self.timers.accounting {
            return platform.monotonic_ns();
        }
        match tid {
            None => self.timers.process_cpu_ns,
            Some(t) => self.threads.get(&t).map_or(0, |t| t.cpu_ns),
        }
    }

    pub(crate) fn next_timer_impl(&self) -> Option<u64> {
        let posix = self
            .timers
            .timers
            .values()
            .filter(|t| t.base == TimerBase::Wall)
            .filter_map(|t| t.deadline);
        posix.chain(self.timers.real.deadline).min()
    }

    pub(crate) fn run_timers_impl(&mut self, now: u64) {
        if self.timers.real.deadline.is_some_and(|d| d <= now) {
            let it = &mut self.timers.real;
            advance(&mut it.deadline, it.interval, now);
            self.send_signal(
                SignalTarget::Process,
                SigInfo::kill(SIGALRM, SI_KERNEL, 0, 0),
                None,
            );
        }
        self.fire_posix(|base| base == TimerBase::Wall, now);
    }

    pub(crate) fn account_impl(&mut self, tid: Tid, ns: u64) {
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        t.cpu_ns = t.cpu_ns.saturating_add(ns);
        let thread_cpu = t.cpu_ns;
        let timers = &mut self.timers;
        timers.accounting = true;
        timers.process_cpu_ns = timers.process_cpu_ns.saturating_add(ns);
        let cpu = timers.process_cpu_ns;
        // All of an app's time is user time here: ITIMER_VIRTUAL and ITIMER_PROF both count it.
        for which in [Which::Virtual, Which::Prof] {
            let (it, sig) = match which {
                Which::Virtual => (&mut self.timers.virt, SIGVTALRM),
                _ => (&mut self.timers.prof, SIGPROF),
            };
            if it.deadline.is_some_and(|d| d <= cpu) {
                advance(&mut it.deadline, it.interval, cpu);
                self.send_signal(
                    SignalTarget::Process,
                    SigInfo::kill(sig, SI_KERNEL, 0, 0),
                    None,
                );
            }
        }
        if self
            .timers
            .timers
            .values()
            .any(|t| t.base != TimerBase::Wall && t.deadline.is_some())
        {
            self.fire_posix(|base| base == TimerBase::ProcessCpu, cpu);
            self.fire_posix(|base| base == TimerBase::ThreadCpu(tid), thread_cpu);
        }
    }

    /// Fires the POSIX timers on `base` due at `now` (in that base's units).
    fn fire_posix(&mut self, on_base: impl Fn(TimerBase) -> bool, now: u64) {
        let due: Vec<i32> = self
            .timers
            .timers
            .iter()
            .filter(|(_, t)| on_base(t.base) && t.deadline.is_some_and(|d| d <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let t = self.timers.timers.get_mut(&id).expect("due timer");
            let missed = advance(&mut t.deadline, t.interval, now);
            let Notify::Signal { sig, value, target } = t.notify else {
                continue;
            };
            if t.queued {
                t.overrun = t.overrun.saturating_add(1 + missed);
                continue;
            }
            t.overrun = missed;
            self.send_signal(target, SigInfo::timer(sig, id, 0, value), Some(id));
        }
    }

    /// Removes a timer and any signal of it still queued.
    fn drop_timer_signals(&mut self, id: i32) {
        self.signals.shared.discard_timer(id);
        for t in self.threads.values_mut() {
            t.sig.pending.discard_timer(id);
        }
        if let Some(t) = self.timers.timers.get_mut(&id) {
            t.queued = false;
            t.overrun = 0;
        }
    }
}

// --- setitimer, getitimer, alarm -------------------------------------------------------------

/// `which` of setitimer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Real,
    Virtual,
    Prof,
}
super::args::enum_arg!(Which { 0 => Real, 1 => Virtual, 2 => Prof });

/// The timer and the current time on its clock.
fn itimer<'a, P: Platform>(ctx: &'a mut Ctx<'_, P>, which: Which) -> (&'a mut Itimer, u64) {
    let now = match which {
        Which::Real => ctx.platform.monotonic_ns(),
        _ => ctx.process.cpu_ns(ctx.platform, None),
    };
    let timers = &mut ctx.process.timers;
    let it = match which {
        Which::Real => &mut timers.real,
        Which::Virtual => &mut timers.virt,
        Which::Prof => &mut timers.prof,
    };
    (it, now)
}

fn itimer_value(it: &Itimer, now: u64) -> Itimerval {
    // A due timer not yet fired reports the smallest non-zero value, as Linux does.
    let left = it.deadline.map_or(0, |d| d.saturating_sub(now).max(1000));
    Itimerval {
        interval: Timeval::from_ns(it.interval),
        value: Timeval::from_ns(left),
    }
}

fn set_itimer<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    which: Which,
    value: u64,
    interval: u64,
) -> Itimerval {
    if which != Which::Real && !ctx.process.timers.accounting {
        ctx.warn_once(
            "itimer_cpu",
            format_args!("setitimer(ITIMER_VIRTUAL/PROF): the kernel does not account CPU time yet; the timer counts uptime"),
        );
    }
    let (it, now) = itimer(ctx, which);
    let old = itimer_value(it, now);
    *it = Itimer {
        deadline: (value != 0).then(|| now.saturating_add(value)),
        interval,
    };
    old
}

pub fn sys_setitimer<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    which: Which,
    new: UserPtr<Itimerval>,
    old: UserPtr<Itimerval>,
) -> Result<usize, Errno> {
    // A null new value disarms (an old Linux behaviour it keeps).
    let v = if new.is_null() {
        Itimerval::default()
    } else {
        ctx.read(new)?
    };
    let value = v.value.to_ns().ok_or(Errno::EINVAL)?;
    let interval = v.interval.to_ns().ok_or(Errno::EINVAL)?;
    let prev = set_itimer(ctx, which, value, interval);
    ctx.write_opt(old, &prev)?;
    Ok(0)
}

pub fn sys_getitimer<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    which: Which,
    cur: UserPtr<Itimerval>,
) -> Result<usize, Errno> {
    let (it, now) = itimer(ctx, which);
    let v = itimer_value(it, now);
    ctx.write(cur, &v)?;
    Ok(0)
}

pub fn sys_alarm<P: Platform>(ctx: &mut Ctx<'_, P>, seconds: u32) -> Result<usize, Errno> {
    let old = set_itimer(ctx, Which::Real, seconds as u64 * 1_000_000_000, 0);
    // Round as Linux: up when under a second, to nearest otherwise.
    let mut secs = old.value.sec as usize;
    if (secs == 0 && old.value.usec != 0) || old.value.usec >= 500_000 {
        secs += 1;
    }
    Ok(secs)
}

// --- POSIX timers ----------------------------------------------------------------------------

/// A timer id (`timer_t` is an int in the kernel ABI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerId(pub i32);

impl super::args::FromReg for TimerId {
    fn from_reg(raw: u64) -> Result<Self, super::args::ArgError> {
        Ok(TimerId(raw as u32 as i32))
    }
}

bitflags::bitflags! {
    /// timer_settime flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct TimerFlags: u32 {
        const ABSTIME = 1;
    }
}
super::args::flags_arg!(TimerFlags);

pub fn sys_timer_create<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    clock: ClockId,
    sevp: UserPtr<Sigevent>,
    created: UserPtr<i32>,
) -> Result<usize, Errno> {
    let base = match clock {
        ClockId::Realtime | ClockId::Monotonic | ClockId::Boottime => TimerBase::Wall,
        ClockId::ProcessCputime => TimerBase::ProcessCpu,
        ClockId::ThreadCputime => TimerBase::ThreadCpu(ctx.tid),
        ClockId::MonotonicRaw | ClockId::RealtimeCoarse | ClockId::MonotonicCoarse => {
            return Err(Errno::EOPNOTSUPP);
        }
    };
    let id = (0..)
        .find(|i| !ctx.process.timers.timers.contains_key(i))
        .expect("a free id");
    if ctx.process.timers.timers.len() >= MAX_TIMERS {
        return Err(Errno::EAGAIN);
    }
    let ev = if sevp.is_null() {
        Sigevent {
            value: id as u64,
            signo: SIGALRM as i32,
            notify: SIGEV_SIGNAL,
            thread_id: 0,
        }
    } else {
        ctx.read(sevp)?
    };
    let valid_sig = |s: i32| (1..=64).contains(&s);
    let notify = match ev.notify {
        SIGEV_NONE => Notify::None,
        SIGEV_SIGNAL | SIGEV_THREAD if valid_sig(ev.signo) => Notify::Signal {
            sig: ev.signo as u8,
            value: ev.value,
            target: SignalTarget::Process,
        },
        SIGEV_THREAD_ID
            if valid_sig(ev.signo) && ctx.process.threads.contains_key(&ev.thread_id) =>
        {
            Notify::Signal {
                sig: ev.signo as u8,
                value: ev.value,
                target: SignalTarget::Thread(ev.thread_id),
            }
        }
        _ => return Err(Errno::EINVAL),
    };
    ctx.write(created, &id)?;
    ctx.process.timers.timers.insert(
        id,
        PosixTimer {
            clock,
            base,
            notify,
            deadline: None,
            interval: 0,
            overrun: 0,
            overrun_last: 0,
            queued: false,
        },
    );
    Ok(0)
}

/// The timer and the current time in its base.
fn timer_now<P: Platform>(ctx: &Ctx<'_, P>, id: TimerId) -> Result<(TimerBase, u64), Errno> {
    let t = ctx.process.timers.timers.get(&id.0).ok_or(Errno::EINVAL)?;
    let now = match t.base {
        TimerBase::Wall => ctx.platform.monotonic_ns(),
        TimerBase::ProcessCpu => ctx.process.cpu_ns(ctx.platform, None),
        TimerBase::ThreadCpu(tid) => ctx.process.cpu_ns(ctx.platform, Some(tid)),
    };
    Ok((t.base, now))
}

fn timer_value(t: &PosixTimer, now: u64) -> Itimerspec {
    let left = t.deadline.map_or(0, |d| d.saturating_sub(now).max(1));
    Itimerspec {
        interval: Timespec::from_ns(t.interval),
        value: Timespec::from_ns(left),
    }
}

pub fn sys_timer_settime<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    id: TimerId,
    flags: TimerFlags,
    new: UserPtr<Itimerspec>,
    old: UserPtr<Itimerspec>,
) -> Result<Reply, Errno> {
    let (base, now) = timer_now(ctx, id)?;
    let spec = ctx.read(new)?;
    let value = spec.value.to_ns().ok_or(Errno::EINVAL)?;
    let interval = spec.interval.to_ns().ok_or(Errno::EINVAL)?;
    let prev = timer_value(&ctx.process.timers.timers[&id.0], now);
    ctx.write_opt(old, &prev)?;
    let deadline = match value {
        0 => None,
        v if flags.contains(TimerFlags::ABSTIME) => {
            Some(match ctx.process.timers.timers[&id.0].clock {
                // An absolute wall-clock time, as a monotonic deadline (the wall clock is never set).
                ClockId::Realtime => {
                    now.saturating_add(v.saturating_sub(ctx.platform.realtime_ns()))
                }
                _ => v,
            })
        }
        v => Some(now.saturating_add(v)),
    };
    ctx.process.drop_timer_signals(id.0);
    let t = ctx.process.timers.timers.get_mut(&id.0).expect("timer");
    t.deadline = deadline;
    t.interval = if deadline.is_some() { interval } else { 0 };
    t.overrun_last = 0;
    // Already due (an absolute time in the past): it fires now, as on Linux.
    if deadline.is_some_and(|d| d <= now) {
        match base {
            TimerBase::Wall => ctx.process.run_timers_impl(now),
            _ => ctx.process.fire_posix(|b| b == base, now),
        }
    }
    Ok(Reply::Value(0))
}

pub fn sys_timer_gettime<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    id: TimerId,
    cur: UserPtr<Itimerspec>,
) -> Result<usize, Errno> {
    let (_, now) = timer_now(ctx, id)?;
    let v = timer_value(&ctx.process.timers.timers[&id.0], now);
    ctx.write(cur, &v)?;
    Ok(0)
}

pub fn sys_timer_getoverrun<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    id: TimerId,
) -> Result<usize, Errno> {
    let t = ctx.process.timers.timers.get(&id.0).ok_or(Errno::EINVAL)?;
    Ok(t.overrun_last as usize)
}

pub fn sys_timer_delete<P: Platform>(ctx: &mut Ctx<'_, P>, id: TimerId) -> Result<usize, Errno> {
    if !ctx.process.timers.timers.contains_key(&id.0) {
        return Err(Errno::EINVAL);
    }
    ctx.process.drop_timer_signals(id.0);
    ctx.process.timers.timers.remove(&id.0);
    Ok(0)
}

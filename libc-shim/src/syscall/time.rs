//! Clocks and sleeping.
//!
//! A sleep interrupted by a signal returns a restart code: a relative sleep
//! `ERESTART_RESTARTBLOCK` (EINTR with the time left in `rem` if a handler runs, otherwise it
//! sleeps on to the same deadline), an absolute one `ERESTARTNOHAND`, as Linux.

use super::signal::{ERESTART_RESTARTBLOCK, ERESTARTNOHAND};
use super::{Ctx, Reply};
use super::args::{UserPtr, enum_arg, flags_arg};
use super::linux::{Timespec, Timeval, Timezone};
use crate::errno::Errno;
use crate::platform::Platform;
use crate::process::WakeReason;

/// The clocks apps may read (`CLOCK_*` 0..=7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockId {
    Realtime,
    Monotonic,
    ProcessCputime,
    ThreadCputime,
    MonotonicRaw,
    RealtimeCoarse,
    MonotonicCoarse,
    Boottime,
}
enum_arg!(ClockId {
    0 => Realtime, 1 => Monotonic, 2 => ProcessCputime, 3 => ThreadCputime,
    4 => MonotonicRaw, 5 => RealtimeCoarse, 6 => MonotonicCoarse, 7 => Boottime,
});

/// Resolution Linux reports for the coarse clocks (one 250 Hz tick).
const COARSE_RES_NS: u64 = 4_000_000;

impl ClockId {
    fn now_ns<P: Platform>(self, platform: &P) -> u64 {
        match self {
            ClockId::Realtime | ClockId::RealtimeCoarse => platform.realtime_ns(),
            _ => platform.monotonic_ns(),
        }
    }
}

pub fn sys_clock_gettime<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    clock: ClockId,
    tp: UserPtr<Timespec>,
) -> Result<usize, Errno> {
    let ns = match clock {
        // Accounted CPU time ([`crate::process::Process::account`]).
        ClockId::ProcessCputime => ctx.process.cpu_ns(ctx.platform, None),
        ClockId::ThreadCputime => ctx.process.cpu_ns(ctx.platform, Some(ctx.tid)),
        _ => clock.now_ns(ctx.platform),
    };
    ctx.write(tp, &Timespec::from_ns(ns))?;
    Ok(0)
}

pub fn sys_clock_getres<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    clock: ClockId,
    res: UserPtr<Timespec>,
) -> Result<usize, Errno> {
    let ns = match clock {
        ClockId::RealtimeCoarse | ClockId::MonotonicCoarse => COARSE_RES_NS,
        _ => ctx.platform.clock_resolution_ns().max(1),
    };
    ctx.write_opt(res, &Timespec::from_ns(ns))?;
    Ok(0)
}

pub fn sys_gettimeofday<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    tv: UserPtr<Timeval>,
    tz: UserPtr<Timezone>,
) -> Result<usize, Errno> {
    ctx.write_opt(tv, &Timeval::from_ns(ctx.platform.realtime_ns()))?;
    ctx.write_opt(tz, &Timezone)?;
    Ok(0)
}

pub fn sys_time<P: Platform>(ctx: &mut Ctx<'_, P>, tloc: UserPtr<i64>) -> Result<usize, Errno> {
    let secs = (ctx.platform.realtime_ns() / 1_000_000_000) as i64;
    ctx.write_opt(tloc, &secs)?;
    Ok(secs as usize)
}

fn read_timespec<P: Platform>(ctx: &Ctx<'_, P>, ptr: UserPtr<Timespec>) -> Result<u64, Errno> {
    ctx.read(ptr)?.to_ns().ok_or(Errno::EINVAL)
}

pub fn sys_nanosleep<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    req: UserPtr<Timespec>,
    rem: UserPtr<Timespec>,
) -> Result<Reply, Errno> {
    let deadline = match ctx.deadline() {
        Some(d) => d,
        None => {
            let ns = read_timespec(ctx, req)?;
            ctx.platform.monotonic_ns().saturating_add(ns)
        }
    };
    sleep_until(ctx, deadline, rem, false)
}

/// Blocks until `deadline` (monotonic ns). Interrupted by a signal: the time left goes to
/// `rem` (when given) and the call returns a restart code (see the module docs).
fn sleep_until<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    deadline: u64,
    rem: UserPtr<Timespec>,
    absolute: bool,
) -> Result<Reply, Errno> {
    let now = ctx.platform.monotonic_ns();
    if ctx.resumed == Some(WakeReason::Interrupted) {
        if absolute {
            return Err(ERESTARTNOHAND);
        }
        ctx.write_opt(rem, &Timespec::from_ns(deadline.saturating_sub(now)))?;
        return Err(ERESTART_RESTARTBLOCK);
    }
    if now >= deadline {
        return Ok(Reply::Value(0));
    }
    Ok(ctx.block(Some(deadline)))
}

bitflags::bitflags! {
    /// clock_nanosleep flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct SleepFlags: u32 {
        const TIMER_ABSTIME = 1;
    }
}
flags_arg!(SleepFlags);

pub fn sys_clock_nanosleep<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    clock: ClockId,
    flags: SleepFlags,
    req: UserPtr<Timespec>,
    rem: UserPtr<Timespec>,
) -> Result<Reply, Errno> {
    if !matches!(
        clock,
        ClockId::Realtime | ClockId::Monotonic | ClockId::Boottime
    ) {
        return Err(Errno::EINVAL);
    }
    let absolute = flags.contains(SleepFlags::TIMER_ABSTIME);
    let deadline = match ctx.deadline() {
        Some(d) => d,
        None => {
            let ns = read_timespec(ctx, req)?;
            let now_mono = ctx.platform.monotonic_ns();
            if absolute {
                // Convert an absolute time on `clock` to the monotonic clock the kernel sleeps on.
                let now = clock.now_ns(ctx.platform);
                now_mono.saturating_add(ns.saturating_sub(now))
            } else {
                now_mono.saturating_add(ns)
            }
        }
    };
    // An absolute sleep never reports a remainder.
    sleep_until(ctx, deadline, if absolute { UserPtr::new(0) } else { rem }, absolute)
}

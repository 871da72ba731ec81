//! Clocks and sleeping.

use super::Ctx;
use super::args::{UserPtr, enum_arg, flags_arg};
use super::linux::{Timespec, Timeval, Timezone};
use crate::errno::Errno;
use crate::platform::Platform;

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
            // One process, never descheduled for another app: its CPU time is close to uptime.
            _ => platform.monotonic_ns(),
        }
    }
}

pub fn sys_clock_gettime<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    clock: ClockId,
    tp: UserPtr<Timespec>,
) -> Result<usize, Errno> {
    ctx.write(tp, &Timespec::from_ns(clock.now_ns(ctx.platform)))?;
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
    _rem: UserPtr<Timespec>,
) -> Result<usize, Errno> {
    let ns = read_timespec(ctx, req)?;
    let now = ctx.platform.monotonic_ns();
    ctx.platform.sleep_until_ns(now.saturating_add(ns));
    // Nothing interrupts a sleep yet, so `rem` is never written.
    Ok(0)
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
    _rem: UserPtr<Timespec>,
) -> Result<usize, Errno> {
    if !matches!(
        clock,
        ClockId::Realtime | ClockId::Monotonic | ClockId::Boottime
    ) {
        return Err(Errno::EINVAL);
    }
    let ns = read_timespec(ctx, req)?;
    let now_mono = ctx.platform.monotonic_ns();
    let deadline = if flags.contains(SleepFlags::TIMER_ABSTIME) {
        // Convert an absolute time on `clock` to the monotonic clock the platform sleeps on.
        let now = clock.now_ns(ctx.platform);
        now_mono.saturating_add(ns.saturating_sub(now))
    } else {
        now_mono.saturating_add(ns)
    };
    ctx.platform.sleep_until_ns(deadline);
    Ok(0)
}

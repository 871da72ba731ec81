//! Time: the TSC for the monotonic clock (its frequency from CPUID 0x15/0x16, or measured
//! against the PIT), the CMOS RTC for the wall clock at boot.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::x86_64::cpu::{Features, rdtsc};

static TSC_HZ: AtomicU64 = AtomicU64::new(1_000_000_000);
/// Nanoseconds per tick as a 32.32 fixed-point factor, so that reading the clock is one
/// multiplication rather than a 128-bit division.
static NS_PER_TICK_32_32: AtomicU64 = AtomicU64::new(1 << 32);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
/// Wall-clock nanoseconds at boot (monotonic 0).
static EPOCH_AT_BOOT_NS: AtomicU64 = AtomicU64::new(0);

pub fn init(features: &Features) {
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
    let (hz, source) = match features.tsc_hz_cpuid {
        Some(hz) => (hz, "cpuid"),
        None => match crate::drivers::pit::measure_tsc_hz(5) {
            Some(hz) => (hz, "pit"),
            None => (1_000_000_000, "assumed"),
        },
    };
    TSC_HZ.store(hz.max(1), Ordering::Relaxed);
    NS_PER_TICK_32_32.store(((1_000_000_000u128 << 32) / u128::from(hz.max(1))) as u64, Ordering::Relaxed);
    let wall = crate::drivers::rtc::read_unix_seconds().unwrap_or(0);
    EPOCH_AT_BOOT_NS.store(wall * 1_000_000_000, Ordering::Relaxed);
    log::info!("clock: tsc {} kHz ({}), rtc {}", hz / 1000, source, wall);
}

pub fn monotonic_ns() -> u64 {
    let ticks = rdtsc().wrapping_sub(TSC_AT_BOOT.load(Ordering::Relaxed));
    ((u128::from(ticks) * u128::from(NS_PER_TICK_32_32.load(Ordering::Relaxed))) >> 32) as u64
}

pub fn realtime_ns() -> u64 {
    EPOCH_AT_BOOT_NS.load(Ordering::Relaxed) + monotonic_ns()
}

pub fn resolution_ns() -> u64 {
    let hz = TSC_HZ.load(Ordering::Relaxed);
    (1_000_000_000 / hz).max(1)
}

/// The constants the vDSO computes the clocks from: TSC at boot, ns per tick (32.32 fixed
/// point) and the wall-clock ns at boot, exactly what [`monotonic_ns`] and [`realtime_ns`] use.
pub fn vdso_params() -> (u64, u64, u64) {
    (
        TSC_AT_BOOT.load(Ordering::Relaxed),
        NS_PER_TICK_32_32.load(Ordering::Relaxed),
        EPOCH_AT_BOOT_NS.load(Ordering::Relaxed),
    )
}

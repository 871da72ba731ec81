//! Time: the TSC for the monotonic clock (its frequency from CPUID 0x15/0x16, or measured
//! against the PIT), the CMOS RTC for the wall clock at boot, refined by the host's clock
//! when bake passes it.
//!
//! The RTC counts whole seconds: read alone it puts the wall clock up to a second behind the
//! host (redis's EXPIREAT/PXAT tests saw that). bake passes `kiln.host_ns=`, the host's time
//! when it started QEMU; the vCPU's TSC starts near 0 when the VM starts (TCG and KVM), so
//! that time plus the TSC's reading is a close lower bound of the time now (QEMU's own start
//! is the only part missed, tens of ms). It is used when it falls inside the RTC's second.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::x86_64::cpu::{Features, rdtsc};

static TSC_HZ: AtomicU64 = AtomicU64::new(1_000_000_000);
/// Nanoseconds per tick as a 32.32 fixed-point factor, so that reading the clock is one
/// multiplication rather than a 128-bit division.
static NS_PER_TICK_32_32: AtomicU64 = AtomicU64::new(1 << 32);
static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
/// Wall-clock nanoseconds at boot (monotonic 0).
static EPOCH_AT_BOOT_NS: AtomicU64 = AtomicU64::new(0);

pub fn init(features: &Features, host_ns: Option<u64>) {
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
    let (hz, source) = match features.tsc_hz_cpuid {
        Some(hz) => (hz, "cpuid"),
        None => match crate::drivers::pit::measure_tsc_hz(10) {
            Some(hz) => (hz, "pit"),
            None => (1_000_000_000, "assumed"),
        },
    };
    TSC_HZ.store(hz.max(1), Ordering::Relaxed);
    NS_PER_TICK_32_32.store(((1_000_000_000u128 << 32) / u128::from(hz.max(1))) as u64, Ordering::Relaxed);
    let wall = crate::drivers::rtc::read_unix_seconds().unwrap_or(0);
    let since_vm_start = (u128::from(TSC_AT_BOOT.load(Ordering::Relaxed)) * 1_000_000_000 / u128::from(hz.max(1))) as u64;
    let epoch = boot_epoch_ns(wall, host_ns, since_vm_start);
    EPOCH_AT_BOOT_NS.store(epoch, Ordering::Relaxed);
    log::info!(
        "clock: tsc {} kHz ({}), rtc {}, wall clock at boot {}.{:09}{}",
        hz / 1000,
        source,
        wall,
        epoch / 1_000_000_000,
        epoch % 1_000_000_000,
        if epoch != wall * 1_000_000_000 { " (host time + TSC)" } else { "" }
    );
}

/// The wall clock at boot: the RTC's second `rtc_secs`, or the host's time at QEMU's start
/// plus the time since the VM started when that lies within the RTC's second.
fn boot_epoch_ns(rtc_secs: u64, host_ns: Option<u64>, since_vm_start_ns: u64) -> u64 {
    let rtc_ns = rtc_secs.saturating_mul(1_000_000_000);
    match host_ns {
        Some(h) => {
            let estimate = h.saturating_add(since_vm_start_ns);
            if (rtc_ns..rtc_ns + 1_000_000_000).contains(&estimate) { estimate } else { rtc_ns }
        }
        None => rtc_ns,
    }
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

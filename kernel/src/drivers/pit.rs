//! The 8254 PIT, used once at boot to measure the TSC frequency when CPUID does not give it.
//! Channel 0 only: microvm has no port 0x61, so channel 2 cannot be gated.

use crate::arch::x86_64::cpu::rdtsc;
use crate::arch::x86_64::port::{inb, outb};

const PIT_HZ: u64 = 1_193_182;

fn read_count() -> u16 {
    outb(0x43, 0x00); // latch channel 0
    let lo = inb(0x40);
    let hi = inb(0x40);
    u16::from_le_bytes([lo, hi])
}

/// A PIT reading paired with the TSC: the TSC read just before and just after the PIT, so that
/// a reading the host delayed (TCG's vCPU thread preempted between the two) can be refused.
/// Returns (count, TSC at the middle, TSC spread).
fn paired_read() -> (u16, u64, u64) {
    let before = rdtsc();
    let count = read_count();
    let after = rdtsc();
    (count, before + (after - before) / 2, after - before)
}

/// The tightest of a few paired readings (least delayed).
fn best_paired_read() -> (u16, u64) {
    let mut best = paired_read();
    for _ in 0..4 {
        let r = paired_read();
        if r.2 < best.2 {
            best = r;
        }
    }
    (best.0, best.1)
}

/// TSC ticks per second, measured over `ms` milliseconds of PIT time. None if the PIT does not
/// count (no PIT on this machine).
///
/// The error is the uncertainty of the two end readings over the length of the measurement:
/// each end is the least delayed of five readings taken back to back, which keeps a host
/// preemption (TCG on a loaded host) from landing in it. The wall clock runs on this figure
/// until the next boot, so a 0.2% error is 2 s behind after 15 minutes (redis's EXAT tests
/// saw that with a single 5 ms reading).
pub fn measure_tsc_hz(ms: u64) -> Option<u64> {
    outb(0x43, 0x34); // channel 0, lo/hi, mode 2, binary
    outb(0x40, 0xFF);
    outb(0x40, 0xFF);
    let target = PIT_HZ * ms / 1000;
    let (first, start_tsc) = best_paired_read();
    let mut last = first;
    let mut elapsed: u64 = 0;
    let mut spins: u64 = 0;
    // Polled well within the counter's period (55 ms), so no wrap is missed.
    while elapsed + PIT_HZ / 1000 < target {
        let now = read_count();
        // The counter counts down and reloads at 0xFFFF.
        elapsed += u64::from(last.wrapping_sub(now));
        last = now;
        spins += 1;
        if spins > 50_000_000 && elapsed == 0 {
            return None;
        }
    }
    let (end, end_tsc) = best_paired_read();
    elapsed += u64::from(last.wrapping_sub(end));
    if elapsed == 0 {
        return None;
    }
    Some((u128::from(end_tsc - start_tsc) * u128::from(PIT_HZ) / u128::from(elapsed)) as u64)
}

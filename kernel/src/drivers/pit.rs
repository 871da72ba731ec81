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

/// TSC ticks per second, measured over `ms` milliseconds of PIT time. None if the PIT does not
/// count (no PIT on this machine).
pub fn measure_tsc_hz(ms: u64) -> Option<u64> {
    outb(0x43, 0x34); // channel 0, lo/hi, mode 2, binary
    outb(0x40, 0xFF);
    outb(0x40, 0xFF);
    let target = PIT_HZ * ms / 1000;
    let mut last = read_count();
    let start_tsc = rdtsc();
    let mut elapsed: u64 = 0;
    let mut spins: u64 = 0;
    while elapsed < target {
        let now = read_count();
        // The counter counts down and reloads at 0xFFFF.
        elapsed += u64::from(last.wrapping_sub(now));
        last = now;
        spins += 1;
        if spins > 50_000_000 && elapsed == 0 {
            return None;
        }
    }
    let tsc = rdtsc() - start_tsc;
    Some(tsc * PIT_HZ / elapsed)
}

//! The local APIC (xAPIC, memory-mapped): its one-shot timer wakes the CPU from HLT when a
//! sleep ends.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::x86_64::cpu::{MSR_APIC_BASE, read_msr, write_msr};
use crate::mm::phys_to_virt;

pub const TIMER_VECTOR: u8 = 0x30;
pub const SPURIOUS_VECTOR: u8 = 0xFF;

const REG_EOI: u64 = 0xB0;
const REG_SVR: u64 = 0xF0;
const REG_LVT_TIMER: u64 = 0x320;
const REG_INITIAL: u64 = 0x380;
const REG_CURRENT: u64 = 0x390;
const REG_DIVIDE: u64 = 0x3E0;

static BASE: AtomicU64 = AtomicU64::new(0);
/// Timer ticks per millisecond (divide by 1), measured against the TSC.
static TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);

fn write(reg: u64, value: u32) {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return;
    }
    // SAFETY: the APIC page is mapped uncached in the direct map by `paging`; registers are
    // 32-bit and 16-byte aligned.
    unsafe { core::ptr::write_volatile((base + reg) as *mut u32, value) }
}

fn read(reg: u64) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    // SAFETY: as in `write`.
    unsafe { core::ptr::read_volatile((base + reg) as *const u32) }
}

/// Physical address of this CPU's APIC registers.
pub fn phys_base() -> u64 {
    read_msr(MSR_APIC_BASE) & 0x000f_ffff_ffff_f000
}

/// Enables the APIC and measures its timer. Needs the APIC page mapped and the TSC calibrated.
pub fn init() {
    let msr = read_msr(MSR_APIC_BASE);
    write_msr(MSR_APIC_BASE, msr | (1 << 11)); // globally enabled, xAPIC mode
    BASE.store(phys_to_virt(phys_base()), Ordering::Relaxed);
    write(REG_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
    write(REG_DIVIDE, 0xB); // divide by 1
    write(REG_LVT_TIMER, 1 << 16); // masked while measuring
    write(REG_INITIAL, u32::MAX);
    let start = crate::drivers::clock::monotonic_ns();
    while crate::drivers::clock::monotonic_ns() - start < 2_000_000 {
        core::hint::spin_loop();
    }
    let elapsed_ns = crate::drivers::clock::monotonic_ns() - start;
    let ticks = u64::from(u32::MAX - read(REG_CURRENT));
    write(REG_INITIAL, 0);
    let per_ms = (ticks * 1_000_000 / elapsed_ns.max(1)).max(1);
    TICKS_PER_MS.store(per_ms, Ordering::Relaxed);
    log::debug!("lapic: timer {} ticks/ms", per_ms);
}

/// Arms a one-shot interrupt in about `ns` nanoseconds (clamped to the counter's range).
pub fn arm_oneshot(ns: u64) {
    let per_ms = TICKS_PER_MS.load(Ordering::Relaxed);
    let ticks = (u128::from(ns) * u128::from(per_ms) / 1_000_000).clamp(1, u128::from(u32::MAX)) as u32;
    write(REG_LVT_TIMER, u32::from(TIMER_VECTOR)); // one-shot, unmasked
    write(REG_INITIAL, ticks);
}

/// Stops a pending one-shot.
pub fn disarm() {
    write(REG_INITIAL, 0);
}

pub fn eoi() {
    write(REG_EOI, 0);
}

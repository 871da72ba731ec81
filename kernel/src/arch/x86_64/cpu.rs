//! CPU features and control registers: FPU/SSE/XSAVE enablement for the app, NX, write
//! protection, TSC and RDRAND.

use core::arch::asm;
use core::arch::x86_64::{__cpuid, __cpuid_count, _rdtsc};

/// What CPUID told us at boot.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    /// CPUID.1:EDX, which is what Linux reports as AT_HWCAP.
    pub hwcap: u64,
    pub xsave: bool,
    /// Bytes of the XSAVE area for the enabled XCR0 (0 without XSAVE).
    pub xsave_size: u32,
    pub xcr0: u64,
    pub rdrand: bool,
    pub rdseed: bool,
    /// TSC frequency from CPUID 0x15/0x16, when the CPU reports it.
    pub tsc_hz_cpuid: Option<u64>,
}

pub fn cpuid(leaf: u32, sub: u32) -> (u32, u32, u32, u32) {
    let r = __cpuid_count(leaf, sub);
    (r.eax, r.ebx, r.ecx, r.edx)
}

fn max_leaf() -> u32 {
    __cpuid(0).eax
}

pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; CR4.TSD is clear.
    unsafe { _rdtsc() }
}

pub fn read_msr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: callers pass architectural MSRs that exist on every x86_64 CPU Kiln supports.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) }
    (u64::from(hi) << 32) | u64::from(lo)
}

pub fn write_msr(msr: u32, value: u64) {
    // SAFETY: callers pass architectural MSRs with values that keep the kernel running
    // (segment bases, syscall entry, EFER bits).
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    }
}

pub const MSR_EFER: u32 = 0xC000_0080;
pub const MSR_STAR: u32 = 0xC000_0081;
pub const MSR_LSTAR: u32 = 0xC000_0082;
pub const MSR_SFMASK: u32 = 0xC000_0084;
pub const MSR_FS_BASE: u32 = 0xC000_0100;
pub const MSR_GS_BASE: u32 = 0xC000_0101;
pub const MSR_APIC_BASE: u32 = 0x1B;

/// Enables what the app's code needs from the CPU (x87, SSE, XSAVE with every user state the
/// CPU has) and protection even at ring 0 (CR0.WP, EFER.NXE). Returns the features found.
pub fn init() -> Features {
    let (_, _, ecx1, edx1) = cpuid(1, 0);
    let mut f = Features {
        hwcap: u64::from(edx1),
        xsave: ecx1 & (1 << 26) != 0,
        rdrand: ecx1 & (1 << 30) != 0,
        ..Features::default()
    };
    if max_leaf() >= 7 {
        f.rdseed = cpuid(7, 0).1 & (1 << 18) != 0;
    }
    if max_leaf() >= 0x15 {
        let (den, num, crystal, _) = cpuid(0x15, 0);
        if den != 0 && num != 0 && crystal != 0 {
            f.tsc_hz_cpuid = Some(u64::from(crystal) * u64::from(num) / u64::from(den));
        }
    }
    // A hypervisor's timing leaf (KVM with invtsc, VMware, QEMU's vmware-cpuid-freq):
    // EAX = TSC kHz.
    if f.tsc_hz_cpuid.is_none() && ecx1 & (1 << 31) != 0 {
        let (hv_max, ..) = cpuid(0x4000_0000, 0);
        if hv_max >= 0x4000_0010 {
            let khz = cpuid(0x4000_0010, 0).0;
            if khz != 0 {
                f.tsc_hz_cpuid = Some(u64::from(khz) * 1000);
            }
        }
    }
    if f.tsc_hz_cpuid.is_none() && max_leaf() >= 0x16 {
        let mhz = cpuid(0x16, 0).0 & 0xffff;
        if mhz != 0 {
            f.tsc_hz_cpuid = Some(u64::from(mhz) * 1_000_000);
        }
    }

    // SAFETY: setting CR0.MP/NE/WP and clearing EM/TS, and CR4.OSFXSR/OSXMMEXCPT(/OSXSAVE), is
    // the architectural way to enable SSE; the kernel itself is soft-float and unaffected.
    unsafe {
        let mut cr0: u64;
        asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        cr0 &= !((1 << 2) | (1 << 3)); // EM, TS
        cr0 |= (1 << 1) | (1 << 5) | (1 << 16); // MP, NE, WP
        asm!("mov cr0, {}", in(reg) cr0, options(nostack));
        let mut cr4: u64;
        asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack));
        cr4 |= (1 << 9) | (1 << 10); // OSFXSR, OSXMMEXCPT
        if f.xsave {
            cr4 |= 1 << 18; // OSXSAVE
        }
        asm!("mov cr4, {}", in(reg) cr4, options(nostack));
    }
    if f.xsave {
        let (eax, _, _, edx) = cpuid(0xD, 0);
        let supported = (u64::from(edx) << 32) | u64::from(eax);
        // x87, SSE, AVX and the AVX-512 states; not MPX, PKRU or supervisor states.
        f.xcr0 = supported & 0xE7 | 0x3;
        // SAFETY: XCR0 holds only bits CPUID reports as supported, with x87 and SSE set.
        unsafe {
            asm!("xsetbv", in("ecx") 0u32, in("eax") f.xcr0 as u32, in("edx") (f.xcr0 >> 32) as u32, options(nostack));
        }
        f.xsave_size = cpuid(0xD, 0).1;
    }
    // SAFETY: FNINIT resets the x87 state to Linux's initial one (control word 0x37f); the
    // MXCSR reset value 0x1f80 is already in place.
    unsafe { asm!("fninit", options(nomem, nostack)) }
    let efer = read_msr(MSR_EFER);
    write_msr(MSR_EFER, efer | (1 << 11) | 1); // NXE, SCE
    f
}

/// A hardware random number, if the CPU has RDSEED or RDRAND and it delivers.
pub fn hw_random(f: &Features) -> Option<u64> {
    for _ in 0..32 {
        let (value, ok): (u64, u8);
        if f.rdseed {
            // SAFETY: RDSEED is present (CPUID.7:EBX[18]); it only writes its operands.
            unsafe { asm!("rdseed {}", "setc {}", out(reg) value, out(reg_byte) ok, options(nomem, nostack)) }
        } else if f.rdrand {
            // SAFETY: RDRAND is present (CPUID.1:ECX[30]); it only writes its operands.
            unsafe { asm!("rdrand {}", "setc {}", out(reg) value, out(reg_byte) ok, options(nomem, nostack)) }
        } else {
            return None;
        }
        if ok != 0 {
            return Some(value);
        }
    }
    None
}

/// Halts until the next interrupt with interrupts enabled, then disables them again.
pub fn idle_once() {
    // SAFETY: `sti; hlt` is atomic with respect to interrupts (STI's shadow), so a wakeup that
    // arrives after the caller checked its condition still ends the HLT.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) }
}

pub fn halt_forever() -> ! {
    loop {
        // SAFETY: stopping the CPU with interrupts masked is the intended end state.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) }
    }
}

pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) }
    v
}

//! Entering app code with a complete register set: used to start the app, to switch threads,
//! to enter signal handlers and to return from them. The registers are staged in per-CPU
//! memory and loaded with pops and IRETQ, so no stack of the app or the kernel is involved
//! and nothing is written below the app's stack pointer.

use core::arch::asm;

use libc_shim::process::UserRegs;

use super::cpu::{MSR_FS_BASE, write_msr};
use super::gdt::KERNEL_CS;
use super::percpu;

const KERNEL_SS: u64 = 0x10;
/// Flags the app may not change: interrupts stay enabled, IOPL 0, no VM86/NT/RF games.
const RFLAGS_USER_MASK: u64 = 0x0000_0000_0000_0cd5 | (1 << 18) | (1 << 21) | (1 << 8) | (1 << 10);

/// The flags the app runs with, from the flags it asked for.
pub fn user_rflags(requested: u64) -> u64 {
    (requested & RFLAGS_USER_MASK) | 0x202
}

/// Loads `regs` (FS base included) and continues in app code. Interrupts must be disabled and
/// every lock released: this never returns, and the kernel stack it ran on is abandoned.
pub fn resume_user(regs: &UserRegs) -> ! {
    write_msr(MSR_FS_BASE, regs.fs_base);
    let pc = percpu::current();
    let frame = [
        regs.r15,
        regs.r14,
        regs.r13,
        regs.r12,
        regs.r11,
        regs.r10,
        regs.r9,
        regs.r8,
        regs.rbp,
        regs.rdi,
        regs.rsi,
        regs.rdx,
        regs.rcx,
        regs.rbx,
        regs.rax,
        regs.rip,
        u64::from(KERNEL_CS),
        user_rflags(regs.rflags),
        regs.rsp,
        KERNEL_SS,
    ];
    // SAFETY: `pc` is this CPU's PerCpu (GS base); the staging area is only used here, with
    // interrupts disabled. The pops consume exactly the 15 registers and IRETQ the 5-word
    // frame staged above; control never comes back.
    unsafe {
        let area = core::ptr::addr_of_mut!((*pc).resume);
        (*area) = frame;
        asm!(
            "mov rsp, {area}",
            "pop r15",
            "pop r14",
            "pop r13",
            "pop r12",
            "pop r11",
            "pop r10",
            "pop r9",
            "pop r8",
            "pop rbp",
            "pop rdi",
            "pop rsi",
            "pop rdx",
            "pop rcx",
            "pop rbx",
            "pop rax",
            "iretq",
            area = in(reg) area as u64,
            options(noreturn)
        )
    }
}

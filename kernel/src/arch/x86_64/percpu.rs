//! Per-CPU data, reached through the GS base. The app may not change GS (ARCH_SET_GS is
//! refused), so GS always points here, in the kernel and in the app alike.

use alloc::boxed::Box;

use super::cpu::{MSR_GS_BASE, write_msr};

/// Field offsets are used by the syscall entry stub: keep `repr(C)` and the order.
#[repr(C)]
pub struct PerCpu {
    /// Offset 0: pointer to this structure.
    pub self_ptr: u64,
    /// Offset 8: top of the kernel stack syscalls run on.
    pub kernel_stack_top: u64,
    /// Offset 16: the app's rsp while a syscall runs.
    pub app_rsp: u64,
    pub cpu_id: u32,
    /// The app thread running on this CPU (0: none).
    pub current_tid: i32,
    /// The current thread was resumed on a `syscall` instruction to re-run a blocked call
    /// and has not made it yet: signals wait for that call (see `sched`).
    pub rerun_pending: bool,
    /// Staging area for [`super::resume::resume_user`]: the registers popped before IRETQ.
    pub resume: [u64; 20],
}

pub const OFFSET_KERNEL_STACK_TOP: usize = 8;
pub const OFFSET_APP_RSP: usize = 16;

/// Allocates this CPU's data and points GS at it.
pub fn init(cpu_id: u32, kernel_stack_top: u64) {
    let pc = Box::leak(Box::new(PerCpu { self_ptr: 0, kernel_stack_top, app_rsp: 0, cpu_id, current_tid: 0, rerun_pending: false, resume: [0; 20] }));
    pc.self_ptr = pc as *mut PerCpu as u64;
    write_msr(MSR_GS_BASE, pc.self_ptr);
}

/// This CPU's data.
pub fn current() -> *mut PerCpu {
    let ptr: u64;
    // SAFETY: GS base was set by `init` to a leaked PerCpu whose first field is its address.
    unsafe { core::arch::asm!("mov {}, gs:[0]", out(reg) ptr, options(nostack, readonly, preserves_flags)) };
    ptr as *mut PerCpu
}

//! The SYSCALL entry. The app runs at ring 0, and SYSCALL at CPL0 enters LSTAR exactly as from
//! ring 3 but without a stack switch: the stub saves the app's rsp in per-CPU data, moves to
//! the kernel stack, saves every register Linux preserves, and calls [`syscall_dispatch`].
//! It returns without SYSRET (which always goes to ring 3): flags are restored on the kernel
//! stack, rsp is reloaded in one instruction and the stub jumps to the saved rip, so nothing is
//! ever written to the app's stack (its red zone stays intact). As on Linux, rcx and r11 come
//! back holding the return address and the flags.

use core::arch::global_asm;

use super::cpu::{MSR_LSTAR, MSR_SFMASK, MSR_STAR, write_msr};
use super::gdt::KERNEL_CS;
use super::percpu::{OFFSET_APP_RSP, OFFSET_KERNEL_STACK_TOP};

/// Registers saved on syscall entry, lowest address first.
#[repr(C)]
#[derive(Debug)]
pub struct SyscallFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rbx: u64,
    /// Syscall number on entry, return value on exit.
    pub rax: u64,
    /// Return address (the CPU put it in rcx).
    pub rip: u64,
    /// The app's flags (the CPU put them in r11).
    pub rflags: u64,
    pub rsp: u64,
}

global_asm!(
    r#"
    .pushsection .text.syscall_entry, "ax"
    .global syscall_entry
    .p2align 4
syscall_entry:
    mov gs:[{app_rsp}], rsp
    mov rsp, gs:[{kstack}]
    push qword ptr gs:[{app_rsp}]
    push r11
    push rcx
    push rax
    push rbx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    call {dispatch}
    pop r15
    pop r14
    pop r13
    pop r12
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rbx
    pop rax
    pop rcx
    pop r11
    push r11
    popfq
    pop rsp
    jmp rcx
    .popsection
    "#,
    app_rsp = const OFFSET_APP_RSP,
    kstack = const OFFSET_KERNEL_STACK_TOP,
    dispatch = sym syscall_dispatch,
);

unsafe extern "C" {
    fn syscall_entry();
}

/// Flags SYSCALL clears on entry: IF, TF, DF, AC, NT.
const SFMASK: u64 = 0x200 | 0x100 | 0x400 | 0x4_0000 | 0x4000;

pub fn init() {
    write_msr(MSR_STAR, u64::from(KERNEL_CS) << 32);
    write_msr(MSR_LSTAR, syscall_entry as *const () as u64);
    write_msr(MSR_SFMASK, SFMASK);
}

extern "C" fn syscall_dispatch(frame: &mut SyscallFrame) {
    crate::sched::syscall(frame);
}

//! CPU exceptions. A fault in the app ends the VM the way Linux ends a process that has no
//! handler: a crash report on the console (signal, rip with the nearest symbol, the faulting
//! address, registers) and exit status 128+signal. A fault in the kernel is a kernel panic.

use core::fmt::Write;

use crate::arch::x86_64::cpu::read_cr2;
use crate::arch::x86_64::interrupts::TrapFrame;
use libc_shim::mm::layout::USER_END;

pub const SIGTRAP: u8 = 5;
pub const SIGILL: u8 = 4;
pub const SIGBUS: u8 = 7;
pub const SIGFPE: u8 = 8;
pub const SIGSEGV: u8 = 11;

/// The signal Linux sends for an exception vector, and a short description.
pub fn signal_for(vector: u64) -> (u8, &'static str) {
    match vector {
        0 => (SIGFPE, "divide error"),
        1 => (SIGTRAP, "debug trap"),
        3 => (SIGTRAP, "breakpoint"),
        4 => (SIGSEGV, "overflow"),
        5 => (SIGSEGV, "bound range exceeded"),
        6 => (SIGILL, "invalid opcode"),
        7 => (SIGSEGV, "device not available"),
        10..=12 => (SIGSEGV, "segment fault"),
        13 => (SIGSEGV, "general protection fault"),
        14 => (SIGSEGV, "page fault"),
        16 => (SIGFPE, "x87 floating-point error"),
        17 => (SIGBUS, "alignment check"),
        19 => (SIGFPE, "SIMD floating-point error"),
        _ => (SIGSEGV, "exception"),
    }
}

/// The app touched memory it had mapped but no page frame is left: Linux's OOM killer would
/// send SIGKILL. Report it as such (status 137) and say how to fix it.
fn out_of_memory(frame: &TrapFrame, addr: u64) -> ! {
    let (total, free) = libc_shim::Platform::memory_stats(&crate::app::KernelPlatform);
    let _ = writeln!(
        Console,
        "kiln: out of memory: the app touched {addr:#x} (rip {:#x} {}) with {} KiB of {} MiB free; give the VM more with --mem",
        frame.rip,
        crate::app::symbolize(frame.rip),
        free >> 10,
        total >> 20
    );
    let _ = writeln!(Console, "kiln: the app was killed (SIGKILL); exit status 137");
    crate::app::sync_volumes();
    crate::drivers::exit::exit_vm(137)
}

/// `si_code` as Linux reports it for the exception.
fn si_code(frame: &TrapFrame, fault_addr: Option<u64>) -> i32 {
    const SI_KERNEL: i32 = 0x80;
    match frame.vector {
        // SEGV_ACCERR for a protection violation on a present page, SEGV_MAPERR otherwise
        // (a PROT_NONE page is mapped as not-present but is an access error for the app).
        14 => {
            let present = frame.error_code & 1 != 0;
            let in_mapping = fault_addr.is_some_and(crate::app::is_mapped);
            if present || in_mapping { 2 } else { 1 }
        }
        0 => 1,      // FPE_INTDIV
        16 | 19 => 0, // refined by the MXCSR/FSW in a later version; FPE_FLTINV needs decoding
        6 => 2,      // ILL_ILLOPN
        3 => 1,      // TRAP_BRKPT (int3)
        1 => 2,      // TRAP_TRACE
        17 => 1,     // BUS_ADRALN
        _ => SI_KERNEL,
    }
}

pub fn signal_name(sig: u8) -> &'static str {
    match sig {
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// Writes to the console's error channel, for reports that the user must see.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        crate::drivers::serial::write_err(s.as_bytes());
        Ok(())
    }
}

pub fn exception(frame: &mut TrapFrame) {
    if frame.vector == 2 {
        log::warn!("NMI received; ignored");
        return;
    }
    let fault_addr = if frame.vector == 14 { Some(read_cr2()) } else { None };
    if frame.rip >= USER_END {
        panic!(
            "{} (vector {}, error {:#x}) in the kernel at rip {:#x}{}",
            signal_for(frame.vector).1,
            frame.vector,
            frame.error_code,
            frame.rip,
            fault_addr.map(|a| alloc::format!(", address {a:#x}")).unwrap_or_default()
        );
    }
    if let Some(addr) = fault_addr {
        // Not present: maybe a page of a lazily committed mapping (the stack) touched first.
        if frame.error_code & 1 == 0 && addr < USER_END {
            let access = if frame.error_code & 0x10 != 0 {
                libc_shim::Prot::EXEC
            } else if frame.error_code & 2 != 0 {
                libc_shim::Prot::WRITE
            } else {
                libc_shim::Prot::READ
            };
            match crate::app::fault_in(addr, access) {
                libc_shim::mm::Commit::Done => return,
                libc_shim::mm::Commit::NotMine => {}
                libc_shim::mm::Commit::OutOfMemory => out_of_memory(frame, addr),
            }
        }
    }
    let (sig, what) = signal_for(frame.vector);
    let fault = libc_shim::process::Fault { signal: sig, code: si_code(frame, fault_addr), addr: fault_addr.unwrap_or(frame.rip) };
    if crate::sched::app_fault(frame, fault) {
        return;
    }
    let mut out = Console;
    let _ = writeln!(out, "kiln: the app crashed: {} ({})", signal_name(sig), what);
    if let Some(addr) = fault_addr {
        let e = frame.error_code;
        let access = if e & 0x10 != 0 { "execute" } else if e & 2 != 0 { "write" } else { "read" };
        let cause = if e & 1 != 0 { "page protection" } else { "unmapped address" };
        let _ = writeln!(out, "  fault address {addr:#x} ({access}, {cause})");
    } else if frame.error_code != 0 {
        let _ = writeln!(out, "  error code {:#x}", frame.error_code);
    }
    let _ = writeln!(out, "  rip {:#018x} {}", frame.rip, crate::app::symbolize(frame.rip));
    let regs = [
        ("rax", frame.rax), ("rbx", frame.rbx), ("rcx", frame.rcx), ("rdx", frame.rdx),
        ("rsi", frame.rsi), ("rdi", frame.rdi), ("rbp", frame.rbp), ("rsp", frame.rsp),
        ("r8", frame.r8), ("r9", frame.r9), ("r10", frame.r10), ("r11", frame.r11),
        ("r12", frame.r12), ("r13", frame.r13), ("r14", frame.r14), ("r15", frame.r15),
    ];
    for row in regs.chunks(4) {
        let _ = write!(out, " ");
        for (name, value) in row {
            let _ = write!(out, " {name:>3} {value:#018x}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(out, "  rflags {:#x}  fs_base {:#x}", frame.rflags, crate::arch::x86_64::cpu::read_msr(crate::arch::x86_64::cpu::MSR_FS_BASE));
    let status = 128 + sig;
    let _ = writeln!(out, "kiln: exit status {status}");
    crate::app::sync_volumes();
    crate::drivers::exit::exit_vm(status);
}

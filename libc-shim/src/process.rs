//! The state of the one process the VM runs, and the entry point the kernel calls for every
//! syscall.
//!
//! OWNER: helper A2 (syscalls). The kernel uses exactly this API.

use crate::mm::Mm;
use crate::platform::Platform;

/// What the kernel must do after a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallOutcome {
    /// Return this value in rax (already `-errno` for errors).
    Return(i64),
    /// The process ends: exit_group/exit of the last thread (`signal: None`), or a signal whose
    /// default action terminates (`status` is then 128+signal).
    Exit { status: u8, signal: Option<u8> },
}

/// The process: its address space and the per-process state syscalls record.
pub struct Process {
    pub mm: Mm,
    // further fields up to the owner
}

impl Process {
    /// A process whose address space is `mm` (already holding the loaded program and stack)
    /// and whose program lives at `exe_path` in the guest (for readlink("/proc/self/exe")).
    pub fn new(mm: Mm, exe_path: &str) -> Self {
        let _ = exe_path;
        Process { mm }
    }

    /// Handles syscall `nr` with raw register arguments (rdi, rsi, rdx, r10, r8, r9).
    pub fn syscall<P: Platform>(&mut self, platform: &P, nr: u64, args: [u64; 6]) -> SyscallOutcome {
        let _ = (platform, nr, args);
        todo!()
    }
}

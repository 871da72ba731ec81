//! The state of the one process the VM runs, and the entry point the kernel calls for every
//! syscall.
//!
//! The kernel uses exactly [`Process::new`] and [`Process::syscall`]; everything a syscall
//! records (closed console fds, signal dispositions, limits, ...) lives here, and the
//! handlers in [`crate::syscall`] read and write it.

use alloc::collections::BTreeSet;
use alloc::string::String;

use crate::mm::Mm;
use crate::platform::Platform;
use crate::syscall::{self, Rlimits, SignalState, WarnKey};

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
    /// Where the program lives in the guest (readlink("/proc/self/exe")).
    pub exe_path: String,
    /// Whether fds 0, 1, 2 (all the console) are still open.
    pub(crate) console_open: [bool; 3],
    /// set_tid_address: cleared and futex-woken at thread exit once threads exist.
    pub(crate) clear_child_tid: u64,
    /// set_robust_list: (head, len).
    pub(crate) robust_list: (u64, usize),
    pub(crate) rlimits: Rlimits,
    pub(crate) signals: SignalState,
    pub(crate) umask: u32,
    /// What has been warned about once already (unsupported numbers, bad arguments).
    pub(crate) warned: BTreeSet<WarnKey>,
}

impl Process {
    /// The pid and tid of the one process and its one thread.
    pub const PID: i32 = 1;

    /// A process whose address space is `mm` (already holding the loaded program and stack)
    /// and whose program lives at `exe_path` in the guest (for readlink("/proc/self/exe")).
    pub fn new(mm: Mm, exe_path: &str) -> Self {
        Process {
            mm,
            exe_path: String::from(exe_path),
            console_open: [true; 3],
            clear_child_tid: 0,
            robust_list: (0, 0),
            rlimits: Rlimits::default(),
            signals: SignalState::default(),
            umask: 0o022,
            warned: BTreeSet::new(),
        }
    }

    /// Handles syscall `nr` with raw register arguments (rdi, rsi, rdx, r10, r8, r9).
    pub fn syscall<P: Platform>(
        &mut self,
        platform: &P,
        nr: u64,
        args: [u64; 6],
    ) -> SyscallOutcome {
        syscall::dispatch(self, platform, nr, args)
    }

    /// Whether `nr` has been reported as unsupported (tests and diagnostics).
    pub fn warned_unsupported(&self, nr: u64) -> bool {
        self.warned.contains(&WarnKey::Unsupported(nr))
    }
}

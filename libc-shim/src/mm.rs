//! The app's address space bookkeeping: which ranges are mapped, with what protection, and
//! where brk and the next mmap go. The page tables themselves belong to the kernel
//! ([`crate::Platform`]); this module decides, the platform executes.
//!
//! OWNER: helper A2 (syscalls). Signatures below are the contract used by the loader and the
//! kernel; bodies are to be written.

use crate::errno::Errno;
use crate::platform::{Platform, Prot};

/// Fixed points of the app's address space (the low half, as Linux lays it out).
pub mod layout {
    /// Lowest address mmap will hand out without MAP_FIXED (Linux's default mmap_min_addr).
    pub const MMAP_MIN: u64 = 0x1_0000;
    /// Top of the initial stack region (Linux puts it just under 0x7fff_ffff_f000).
    pub const STACK_TOP: u64 = 0x7fff_ffff_e000;
    /// Size of the initial stack mapping.
    pub const STACK_SIZE: u64 = 8 << 20;
    /// mmap without a hint allocates downwards from here (below the stack and its gap).
    pub const MMAP_TOP: u64 = 0x7fff_f000_0000;
    /// Where a static-PIE (ET_DYN) program is loaded (Linux's ELF_ET_DYN_BASE).
    pub const PIE_BASE: u64 = 0x5555_5555_4000;
    /// End of the app's half of the address space.
    pub const USER_END: u64 = 0x8000_0000_0000;
}

/// What a mapping is, for /proc/self/maps and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmaKind {
    /// A PT_LOAD segment of the program.
    Program,
    Heap,
    Stack,
    Anonymous,
}

/// Tracks the app's mappings. One per process.
#[derive(Debug)]
pub struct Mm {
    // fields up to the owner
}

impl Mm {
    pub fn new() -> Self {
        todo!()
    }

    /// Maps zeroed pages at exactly `[addr, addr+len)` (page-aligned by the caller), replacing
    /// whatever was there, and records it.
    pub fn map_fixed<P: Platform>(
        &mut self,
        platform: &P,
        addr: u64,
        len: u64,
        prot: Prot,
        kind: VmaKind,
    ) -> Result<(), Errno> {
        let _ = (platform, addr, len, prot, kind);
        todo!()
    }

    /// Changes protection of a recorded range (and the page tables).
    pub fn protect<P: Platform>(&mut self, platform: &P, addr: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        let _ = (platform, addr, len, prot);
        todo!()
    }

    /// Sets where brk starts (page-aligned end of the last loaded segment).
    pub fn set_brk_base(&mut self, addr: u64) {
        let _ = addr;
        todo!()
    }

    /// `Ok` if every byte of `[addr, addr+len)` is mapped with at least `access`; else `EFAULT`.
    pub fn check_access(&self, addr: u64, len: u64, access: Prot) -> Result<(), Errno> {
        let _ = (addr, len, access);
        todo!()
    }
}

impl Default for Mm {
    fn default() -> Self {
        Self::new()
    }
}

//! The app's address space bookkeeping: which ranges are mapped, with what protection, and
//! where brk and the next mmap go. The page tables themselves belong to the kernel
//! ([`crate::Platform`]); this module decides, the platform executes.
//!
//! OWNER: helper A1 (loader). Signatures below are the contract used by the loader and the
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

/// Where an anonymous mapping may go (the decoded MAP_FIXED / MAP_FIXED_NOREPLACE / hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere free; a non-zero hint is tried first (Linux semantics).
    Hint(u64),
    /// Exactly here, replacing existing mappings (MAP_FIXED).
    Fixed(u64),
    /// Exactly here, `EEXIST` if anything is mapped there (MAP_FIXED_NOREPLACE).
    FixedNoReplace(u64),
}

impl Mm {
    /// mmap of anonymous memory: returns the address. `len` is rounded up to pages by the callee;
    /// `EINVAL` for zero length or unaligned fixed address, `ENOMEM` when no room or no frames.
    pub fn mmap_anonymous<P: Platform>(&mut self, platform: &P, at: Placement, len: u64, prot: Prot) -> Result<u64, Errno> {
        let _ = (platform, at, len, prot);
        todo!()
    }

    /// munmap: unmaps pages (splitting records), returns frames. `EINVAL` for unaligned/zero.
    pub fn munmap<P: Platform>(&mut self, platform: &P, addr: u64, len: u64) -> Result<(), Errno> {
        let _ = (platform, addr, len);
        todo!()
    }

    /// brk(2) semantics: `new == 0` or out of range returns the current break unchanged;
    /// growing maps zeroed RW pages, shrinking unmaps them. Returns the new (or old) break.
    pub fn brk<P: Platform>(&mut self, platform: &P, new: u64) -> u64 {
        let _ = (platform, new);
        todo!()
    }
}

impl Default for Mm {
    fn default() -> Self {
        Self::new()
    }
}

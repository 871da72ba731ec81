//! Page tables: the kernel's own mappings, built once at boot, and the app's 4 KiB pages in the
//! low half, changed by mmap/munmap/mprotect through [`crate::app::KernelPlatform`].
//!
//! A PROT_NONE page keeps its frame: the entry is made not-present and marked with a software
//! bit, so that a later mprotect restores access to the same contents.

use x86_64::structures::paging::{PageTable, PageTableFlags as F};

use super::frames::{FRAME_SIZE, FrameAllocator};
use super::{KERNEL_VMA, PHYS_OFFSET, phys_to_virt};
use libc_shim::Prot;

/// Software bit: a not-present entry that still owns its frame (PROT_NONE).
const PROT_NONE_MARK: F = F::BIT_9;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

pub struct AddressSpace {
    pub pml4: u64,
}

fn table(phys: u64) -> &'static mut PageTable {
    // SAFETY: `phys` is a page-table frame owned by the address space, mapped by the direct
    // map; page tables are only touched with the memory lock held, so no aliasing `&mut`.
    unsafe { &mut *(phys_to_virt(phys) as *mut PageTable) }
}

fn zero_frame(phys: u64) {
    // SAFETY: the frame was just allocated (nobody else refers to it) and is in the direct map.
    unsafe { core::ptr::write_bytes(phys_to_virt(phys) as *mut u8, 0, FRAME_SIZE as usize) }
}

pub fn flush(va: u64) {
    // SAFETY: INVLPG only drops a TLB entry.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack, preserves_flags)) }
}

fn prot_flags(prot: Prot) -> F {
    let mut f = F::empty();
    if prot.is_empty() {
        return PROT_NONE_MARK;
    }
    f |= F::PRESENT;
    if prot.contains(Prot::WRITE) {
        f |= F::WRITABLE;
    }
    if !prot.contains(Prot::EXEC) {
        f |= F::NO_EXECUTE;
    }
    f
}

impl AddressSpace {
    /// A fresh top-level table.
    pub fn new(frames: &mut FrameAllocator) -> Option<Self> {
        let pml4 = frames.alloc()?;
        zero_frame(pml4);
        Some(AddressSpace { pml4 })
    }

    /// The entry at `level` (1 = 4 KiB leaf, 2 = 2 MiB) for `va`, creating tables on the way.
    fn entry(&mut self, va: u64, level: usize, frames: Option<&mut FrameAllocator>) -> Option<&'static mut x86_64::structures::paging::page_table::PageTableEntry> {
        let mut frames = frames;
        let mut phys = self.pml4;
        for lvl in (level + 1..=4).rev() {
            let index = ((va >> (12 + 9 * (lvl - 1))) & 0x1ff) as usize;
            let t = table(phys);
            let e = &mut t[index];
            if e.flags().contains(F::HUGE_PAGE) {
                return None;
            }
            if e.is_unused() {
                let f = frames.as_mut()?.alloc()?;
                zero_frame(f);
                e.set_addr(x86_64::PhysAddr::new(f), F::PRESENT | F::WRITABLE);
            }
            phys = e.addr().as_u64();
        }
        let index = ((va >> (12 + 9 * (level - 1))) & 0x1ff) as usize;
        Some(&mut table(phys)[index])
    }

    /// Maps one 2 MiB page (kernel mappings only).
    pub fn map_2m(&mut self, frames: &mut FrameAllocator, va: u64, phys: u64, flags: F) -> Option<()> {
        let e = self.entry(va, 2, Some(frames))?;
        e.set_addr(x86_64::PhysAddr::new(phys), flags | F::HUGE_PAGE | F::PRESENT);
        Some(())
    }

    pub fn map_4k(&mut self, frames: &mut FrameAllocator, va: u64, phys: u64, flags: F) -> Option<()> {
        let e = self.entry(va, 1, Some(frames))?;
        e.set_addr(x86_64::PhysAddr::new(phys), flags);
        flush(va);
        Some(())
    }

    /// The frame behind an app page, present or PROT_NONE.
    pub fn translate(&mut self, va: u64) -> Option<u64> {
        let e = self.entry(va, 1, None)?;
        let raw = e.flags();
        if raw.contains(F::PRESENT) || raw.contains(PROT_NONE_MARK) {
            Some(e.addr().as_u64() & ADDR_MASK)
        } else {
            None
        }
    }

    /// Maps a fresh zeroed frame at each page of `[va, va+len)`, freeing replaced frames.
    pub fn map_app_zeroed(&mut self, frames: &mut FrameAllocator, va: u64, len: u64, prot: Prot) -> bool {
        let flags = prot_flags(prot);
        let mut page = va;
        while page < va + len {
            if let Some(old) = self.translate(page) {
                frames.free(old);
            }
            let Some(frame) = frames.alloc() else { return false };
            zero_frame(frame);
            if self.map_4k(frames, page, frame, flags).is_none() {
                frames.free(frame);
                return false;
            }
            page += FRAME_SIZE;
        }
        true
    }

    pub fn unmap_app(&mut self, frames: &mut FrameAllocator, va: u64, len: u64) {
        let mut page = va;
        while page < va + len {
            if let Some(frame) = self.translate(page) {
                if let Some(e) = self.entry(page, 1, None) {
                    e.set_unused();
                }
                flush(page);
                frames.free(frame);
            }
            page += FRAME_SIZE;
        }
    }

    pub fn protect_app(&mut self, va: u64, len: u64, prot: Prot) {
        let flags = prot_flags(prot);
        let mut page = va;
        while page < va + len {
            if let Some(frame) = self.translate(page) {
                if let Some(e) = self.entry(page, 1, None) {
                    e.set_addr(x86_64::PhysAddr::new(frame), flags);
                }
                flush(page);
            }
            page += FRAME_SIZE;
        }
    }

    /// Makes this address space current.
    pub fn activate(&self) {
        // SAFETY: the table maps the kernel (text, data, stacks, direct map) exactly as the
        // running code expects, so execution continues unchanged after the switch.
        unsafe { core::arch::asm!("mov cr3, {}", in(reg) self.pml4, options(nostack)) }
    }
}

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __kernel_end: u8;
}

fn sym(s: &u8) -> u64 {
    s as *const u8 as u64
}

/// Physical end of the kernel image (bss included): the payload starts at the next page.
pub fn kernel_phys_end() -> u64 {
    // SAFETY: only the symbol's address is used.
    sym(unsafe { &__kernel_end }) - KERNEL_VMA
}

/// Builds the kernel's address space: the image with per-section permissions, all RAM in the
/// direct map (no-execute), and the local APIC page uncached.
pub fn build_kernel_space(frames: &mut FrameAllocator, phys_end: u64, apic_phys: u64) -> Option<AddressSpace> {
    let mut space = AddressSpace::new(frames)?;
    // SAFETY: only the symbols' addresses are used.
    let (ts, te, rs, re, ds, ke) = unsafe {
        (sym(&__text_start), sym(&__text_end), sym(&__rodata_start), sym(&__rodata_end), sym(&__data_start), sym(&__kernel_end))
    };
    let ranges = [
        (ts, te, F::PRESENT),
        (rs, re, F::PRESENT | F::NO_EXECUTE),
        (ds, ke, F::PRESENT | F::WRITABLE | F::NO_EXECUTE),
    ];
    for (start, end, flags) in ranges {
        let mut va = start;
        while va < end {
            space.map_4k(frames, va, va - KERNEL_VMA, flags | F::GLOBAL)?;
            va += FRAME_SIZE;
        }
    }
    let huge = 2 << 20;
    let mut phys = 0;
    while phys < phys_end.next_multiple_of(huge) {
        space.map_2m(frames, PHYS_OFFSET + phys, phys, F::WRITABLE | F::NO_EXECUTE | F::GLOBAL)?;
        phys += huge;
    }
    let apic_va = PHYS_OFFSET + apic_phys;
    if apic_phys >= phys_end.next_multiple_of(huge) {
        space.map_4k(frames, apic_va, apic_phys, F::PRESENT | F::WRITABLE | F::NO_EXECUTE | F::NO_CACHE | F::WRITE_THROUGH)?;
    }
    Some(space)
}

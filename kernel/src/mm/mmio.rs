//! Device memory: MMIO register ranges mapped uncached into a window of the kernel half, and
//! DMA memory (physically contiguous, zeroed frames that devices read and write).
//!
//! MMIO gets its own window rather than the direct map: the direct map uses cached 2 MiB pages
//! and may already cover a device's range when the VM has a lot of RAM.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::structures::paging::PageTableFlags as F;

use super::frames::FRAME_SIZE;
use super::phys_to_virt;

/// Start of the MMIO window (a PML4 slot of its own in the kernel half, apart from the
/// direct map, the heap at `heap::HEAP_BASE` and the kernel image).
const MMIO_WINDOW: u64 = 0xffff_d000_0000_0000;
const MMIO_WINDOW_END: u64 = MMIO_WINDOW + (1 << 39);

static NEXT_VA: AtomicU64 = AtomicU64::new(MMIO_WINDOW);

/// Maps `[phys, phys+len)` uncached and returns the kernel-virtual address of `phys`.
/// None when out of page-table frames or window space. Mappings are never removed: devices
/// live as long as the VM.
pub fn map(phys: u64, len: u64) -> Option<u64> {
    let first = phys & !(FRAME_SIZE - 1);
    let pages = (phys + len.max(1)).next_multiple_of(FRAME_SIZE).checked_sub(first)? / FRAME_SIZE;
    let base = NEXT_VA.fetch_add(pages * FRAME_SIZE, Ordering::Relaxed);
    if base + pages * FRAME_SIZE > MMIO_WINDOW_END {
        return None;
    }
    let flags = F::PRESENT | F::WRITABLE | F::NO_EXECUTE | F::NO_CACHE | F::WRITE_THROUGH | F::GLOBAL;
    let mut guard = crate::app::MEMORY.lock();
    let m = guard.as_mut()?;
    for i in 0..pages {
        m.space.map_4k(&mut m.frames, base + i * FRAME_SIZE, first + i * FRAME_SIZE, flags)?;
    }
    Some(base + (phys - first))
}

/// Physically contiguous, zeroed memory a device may access.
pub struct Dma {
    pub phys: u64,
    pub len: usize,
}

impl Dma {
    /// `pages` contiguous frames, zeroed. None when memory is exhausted.
    pub fn alloc(pages: u64) -> Option<Dma> {
        let phys = {
            let mut guard = crate::app::MEMORY.lock();
            guard.as_mut()?.frames.alloc_contiguous(pages)?
        };
        let len = (pages * FRAME_SIZE) as usize;
        // SAFETY: the frames were just taken from the allocator (nobody else refers to them)
        // and RAM is mapped writable by the direct map.
        unsafe { core::ptr::write_bytes(phys_to_virt(phys) as *mut u8, 0, len) };
        Some(Dma { phys, len })
    }

    /// Kernel-virtual address of byte `off`.
    pub fn virt(&self, off: usize) -> u64 {
        assert!(off <= self.len, "DMA offset {off} beyond {}", self.len);
        phys_to_virt(self.phys) + off as u64
    }

    pub fn phys_at(&self, off: usize) -> u64 {
        assert!(off <= self.len, "DMA offset {off} beyond {}", self.len);
        self.phys + off as u64
    }

    /// Copies `data` into the buffer at `off`.
    pub fn write(&self, off: usize, data: &[u8]) {
        assert!(off + data.len() <= self.len, "DMA write out of bounds");
        // SAFETY: in bounds of memory this `Dma` owns; the device is not using this range
        // (callers write before handing it over).
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.virt(off) as *mut u8, data.len()) }
    }

    /// Copies from the buffer at `off` into `out`.
    pub fn read(&self, off: usize, out: &mut [u8]) {
        assert!(off + out.len() <= self.len, "DMA read out of bounds");
        // SAFETY: in bounds of memory this `Dma` owns; the device has finished with it
        // (callers read after the device returned the buffer).
        unsafe { core::ptr::copy_nonoverlapping(self.virt(off) as *const u8, out.as_mut_ptr(), out.len()) }
    }
}

/// Volatile access to a register block mapped by [`map`].
#[derive(Clone, Copy, Debug)]
pub struct Regs {
    pub base: u64,
}

impl Regs {
    pub fn read32(&self, off: u64) -> u32 {
        // SAFETY: `base` is an uncached mapping of the device's registers made by `map`, and
        // callers stay within the range they mapped, at offsets the device defines.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u32) }
    }
    pub fn write32(&self, off: u64, v: u32) {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u32, v) }
    }
    pub fn read16(&self, off: u64) -> u16 {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u16) }
    }
    pub fn write16(&self, off: u64, v: u16) {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u16, v) }
    }
    pub fn read8(&self, off: u64) -> u8 {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::read_volatile((self.base + off) as *const u8) }
    }
    pub fn write8(&self, off: u64, v: u8) {
        // SAFETY: as in `read32`.
        unsafe { core::ptr::write_volatile((self.base + off) as *mut u8, v) }
    }
}

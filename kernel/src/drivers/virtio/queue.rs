//! Split virtqueues (virtio 1.x, 2.6): the descriptor table, the available ring the driver
//! fills and the used ring the device fills, in one block of DMA memory.
//!
//! The ring arithmetic lives in [`ring`] as plain functions over indices, so that it can be
//! tested on the host; this file only adds the memory accesses.

use core::sync::atomic::{Ordering, fence};

use super::ring::{self, FreeList};
use crate::mm::mmio::Dma;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;

/// One buffer of a request: physical address, length, and whether the device writes it.
#[derive(Clone, Copy, Debug)]
pub struct Buffer {
    pub phys: u64,
    pub len: u32,
    pub device_writes: bool,
}

pub struct Virtqueue {
    pub index: u16,
    size: u16,
    mem: Dma,
    layout: ring::Layout,
    free: FreeList,
    /// Our copy of avail.idx (the device only reads it).
    avail_idx: u16,
    /// used.idx we have consumed up to.
    last_used: u16,
}

impl Virtqueue {
    /// A queue of `size` entries (a power of two). None when out of memory.
    pub fn new(index: u16, size: u16) -> Option<Virtqueue> {
        let layout = ring::Layout::new(size);
        let mem = Dma::alloc(layout.total.div_ceil(4096) as u64)?;
        Some(Virtqueue { index, size, mem, layout, free: FreeList::new(size), avail_idx: 0, last_used: 0 })
    }

    pub fn size(&self) -> u16 {
        self.size
    }

    /// Physical addresses of the descriptor table, the available ring and the used ring.
    pub fn addresses(&self) -> (u64, u64, u64) {
        (self.mem.phys_at(0), self.mem.phys_at(self.layout.avail), self.mem.phys_at(self.layout.used))
    }

    fn write16(&self, off: usize, v: u16) {
        // SAFETY: `off` is inside the queue's DMA block (offsets from `ring::Layout`), 2-aligned.
        unsafe { core::ptr::write_volatile(self.mem.virt(off) as *mut u16, v) }
    }

    fn read16(&self, off: usize) -> u16 {
        // SAFETY: as in `write16`.
        unsafe { core::ptr::read_volatile(self.mem.virt(off) as *const u16) }
    }

    fn read32(&self, off: usize) -> u32 {
        // SAFETY: as in `write16`, 4-aligned.
        unsafe { core::ptr::read_volatile(self.mem.virt(off) as *const u32) }
    }

    fn write_desc(&self, i: u16, b: Buffer, next: Option<u16>) {
        let off = self.layout.desc(i);
        let mut flags = if b.device_writes { DESC_F_WRITE } else { 0 };
        if next.is_some() {
            flags |= DESC_F_NEXT;
        }
        // SAFETY: descriptor `i` (< size) lies inside the DMA block; the device does not own
        // it (it is on our free list until published through the available ring).
        unsafe {
            core::ptr::write_volatile(self.mem.virt(off) as *mut u64, b.phys);
            core::ptr::write_volatile(self.mem.virt(off + 8) as *mut u32, b.len);
        }
        self.write16(off + 12, flags);
        self.write16(off + 14, next.unwrap_or(0));
    }

    /// Publishes a chain of buffers; returns its head descriptor, or None when the queue has
    /// too few free descriptors. The caller notifies the device afterwards.
    pub fn submit(&mut self, bufs: &[Buffer]) -> Option<u16> {
        let chain = self.free.take(bufs.len())?;
        for (k, b) in bufs.iter().enumerate() {
            let next = if k + 1 < bufs.len() { Some(chain[k + 1]) } else { None };
            self.write_desc(chain[k], *b, next);
        }
        let head = chain[0];
        self.write16(self.layout.avail_ring(self.avail_idx), head);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        // The descriptors and the ring entry must be visible before the new index.
        fence(Ordering::SeqCst);
        self.write16(self.layout.avail + 2, self.avail_idx);
        fence(Ordering::SeqCst);
        Some(head)
    }

    /// Asks the device not to interrupt when it returns buffers of this queue
    /// (VIRTQ_AVAIL_F_NO_INTERRUPT; a hint the device may ignore).
    pub fn suppress_interrupts(&mut self) {
        self.write16(self.layout.avail, 1);
    }

    /// Whether the device wants to hear of newly published buffers: it sets
    /// VIRTQ_USED_F_NO_NOTIFY while it is working through the queue anyway. Read after
    /// [`Virtqueue::submit`] (whose fence orders it after the new index).
    pub fn device_wants_notify(&self) -> bool {
        self.read16(self.layout.used) & 1 == 0
    }

    /// Whether the device has returned a chain we have not consumed.
    pub fn has_used(&self) -> bool {
        self.read16(self.layout.used + 2) != self.last_used
    }

    /// The next chain the device returned: (head, bytes written), its descriptors freed.
    pub fn pop_used(&mut self) -> Option<(u16, u32)> {
        if !self.has_used() {
            return None;
        }
        // The element must be read after the index that announced it.
        fence(Ordering::Acquire);
        let elem = self.layout.used_ring(self.last_used);
        let head = self.read32(elem) as u16;
        let len = self.read32(elem + 4);
        self.last_used = self.last_used.wrapping_add(1);
        let mut i = head;
        loop {
            let off = self.layout.desc(i);
            let flags = self.read16(off + 12);
            let next = self.read16(off + 14);
            self.free.put(i);
            if flags & DESC_F_NEXT == 0 || next >= self.size {
                break;
            }
            i = next;
        }
        Some((head, len))
    }
}

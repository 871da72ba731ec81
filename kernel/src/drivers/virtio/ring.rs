//! Split-virtqueue arithmetic with no memory access: where each part of a queue of a given
//! size lives, and the free list of descriptors. Plain `core` code, so the host tests include
//! this file as it is (`tests/tests/volumes.rs`).

/// Byte offsets inside a queue's memory block (virtio 1.x, 2.6: descriptor table aligned to
/// 16, available ring to 2, used ring to 4; the used ring goes on its own page, as legacy
/// devices require and modern ones allow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub size: u16,
    pub avail: usize,
    pub used: usize,
    pub total: usize,
}

impl Layout {
    pub fn new(size: u16) -> Layout {
        assert!(size.is_power_of_two() && size <= 32768, "virtqueue size {size} must be a power of two up to 32768");
        let n = usize::from(size);
        let avail = 16 * n;
        // flags, idx, ring[n], used_event
        let avail_end = avail + 4 + 2 * n + 2;
        let used = avail_end.next_multiple_of(4096);
        // flags, idx, ring[n] of (id u32, len u32), avail_event
        let total = used + 4 + 8 * n + 2;
        Layout { size, avail, used, total }
    }

    pub fn desc(&self, i: u16) -> usize {
        16 * usize::from(i % self.size)
    }

    /// Offset of avail.ring[idx % size].
    pub fn avail_ring(&self, idx: u16) -> usize {
        self.avail + 4 + 2 * usize::from(idx % self.size)
    }

    /// Offset of used.ring[idx % size].
    pub fn used_ring(&self, idx: u16) -> usize {
        self.used + 4 + 8 * usize::from(idx % self.size)
    }
}

/// Free descriptors, as a stack. A chain taken is returned in order, heads first.
pub struct FreeList {
    free: [u16; 256],
    len: usize,
}

/// Descriptors tracked at most (queues may be larger; the rest are simply not used).
pub const MAX_TRACKED: u16 = 256;

impl FreeList {
    pub fn new(size: u16) -> FreeList {
        let n = size.min(MAX_TRACKED);
        let mut free = [0u16; 256];
        for i in 0..n {
            // Lowest index on top of the stack.
            free[usize::from(n - 1 - i)] = i;
        }
        FreeList { free, len: usize::from(n) }
    }

    #[allow(dead_code)] // used by the host tests
    pub fn available(&self) -> usize {
        self.len
    }

    /// `count` descriptors (1..=16), or None (nothing taken) when fewer are free.
    pub fn take(&mut self, count: usize) -> Option<[u16; 16]> {
        if count == 0 || count > 16 || count > self.len {
            return None;
        }
        let mut out = [0u16; 16];
        for slot in out.iter_mut().take(count) {
            self.len -= 1;
            *slot = self.free[self.len];
        }
        Some(out)
    }

    /// Gives back one descriptor. Panics on a double free: that is a driver bug that would
    /// let two requests share a descriptor.
    pub fn put(&mut self, i: u16) {
        assert!(!self.free[..self.len].contains(&i), "virtqueue descriptor {i} freed twice");
        assert!(self.len < self.free.len(), "virtqueue free list overflow");
        self.free[self.len] = i;
        self.len += 1;
    }
}

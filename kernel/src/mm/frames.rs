//! The page-frame allocator: RAM regions from the PVH memory map, handed out by a bump pointer
//! per region, with freed frames kept on an intrusive free list (the link lives in the free
//! frame itself, reached through the direct map). O(1) both ways and no start-up cost.

use super::phys_to_virt;

pub const FRAME_SIZE: u64 = 4096;
const MAX_REGIONS: usize = 32;

#[derive(Clone, Copy, Default, Debug)]
pub struct Region {
    pub start: u64,
    pub end: u64,
}

pub struct FrameAllocator {
    regions: [Region; MAX_REGIONS],
    count: usize,
    /// Region the bump pointer is in, and the pointer.
    current: usize,
    next: u64,
    free_list: u64,
    pub total_frames: u64,
    pub free_frames: u64,
}

impl FrameAllocator {
    pub const fn empty() -> Self {
        FrameAllocator {
            regions: [Region { start: 0, end: 0 }; MAX_REGIONS],
            count: 0,
            current: 0,
            next: 0,
            free_list: 0,
            total_frames: 0,
            free_frames: 0,
        }
    }

    /// Adds usable RAM, minus any part that overlaps `reserved` ranges. Regions must come in
    /// ascending order.
    pub fn add_region(&mut self, start: u64, end: u64, reserved: &[Region]) {
        let mut out: [(u64, u64); 8] = [(0, 0); 8];
        let mut n = 0;
        // Split around each reserved range.
        let mut work: [(u64, u64); 8] = [(0, 0); 8];
        let mut wn = 1;
        work[0] = (start.next_multiple_of(FRAME_SIZE), end & !(FRAME_SIZE - 1));
        for r in reserved {
            let mut next_work: [(u64, u64); 8] = [(0, 0); 8];
            let mut nn = 0;
            for &(s, e) in &work[..wn] {
                if r.end <= s || r.start >= e {
                    next_work[nn] = (s, e);
                    nn += 1;
                } else {
                    if r.start > s {
                        next_work[nn] = (s, r.start & !(FRAME_SIZE - 1));
                        nn += 1;
                    }
                    if r.end < e {
                        next_work[nn] = (r.end.next_multiple_of(FRAME_SIZE), e);
                        nn += 1;
                    }
                }
            }
            work = next_work;
            wn = nn;
        }
        for &(s, e) in &work[..wn] {
            if e > s && n < out.len() {
                out[n] = (s, e);
                n += 1;
            }
        }
        for &(s, e) in &out[..n] {
            if self.count == MAX_REGIONS {
                break;
            }
            self.regions[self.count] = Region { start: s, end: e };
            if self.count == 0 {
                self.next = s;
            }
            self.count += 1;
            let frames = (e - s) / FRAME_SIZE;
            self.total_frames += frames;
            self.free_frames += frames;
        }
    }

    /// One frame (not zeroed), or None when memory is exhausted.
    pub fn alloc(&mut self) -> Option<u64> {
        if self.free_list != 0 {
            let frame = self.free_list;
            // SAFETY: free frames are RAM mapped by the direct map and hold the next link.
            self.free_list = unsafe { core::ptr::read(phys_to_virt(frame) as *const u64) };
            self.free_frames -= 1;
            return Some(frame);
        }
        self.alloc_contiguous(1)
    }

    /// `count` physically contiguous frames from the bump pointer (used at boot for the heap).
    pub fn alloc_contiguous(&mut self, count: u64) -> Option<u64> {
        while self.current < self.count {
            let region = self.regions[self.current];
            if self.next + count * FRAME_SIZE <= region.end {
                let frame = self.next;
                self.next += count * FRAME_SIZE;
                self.free_frames -= count;
                return Some(frame);
            }
            self.current += 1;
            if self.current < self.count {
                // Frames skipped at the end of the old region are lost; count them as used.
                let skipped = (region.end - self.next) / FRAME_SIZE;
                self.free_frames -= skipped;
                self.next = self.regions[self.current].start;
            }
        }
        None
    }

    pub fn free(&mut self, frame: u64) {
        // SAFETY: the caller gives back a frame it owned; it is RAM in the direct map.
        unsafe { core::ptr::write(phys_to_virt(frame) as *mut u64, self.free_list) };
        self.free_list = frame;
        self.free_frames += 1;
    }
}

//! The kernel heap: a linked-list allocator over a virtually contiguous region that grows on
//! demand. It starts small; when an allocation does not fit, more frames (from anywhere in
//! RAM) are mapped at the top of the region and handed to the allocator. So in-memory files,
//! socket buffers and the like can use all of RAM, and running out is a clean allocation
//! failure rather than a fixed cap.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{NonNull, null_mut};

use linked_list_allocator::Heap;
use spin::Mutex;
use x86_64::structures::paging::PageTableFlags as F;

use super::frames::FRAME_SIZE;

/// Where the heap lives: a part of the kernel half nothing else uses.
pub const HEAP_BASE: u64 = 0xffff_c000_0000_0000;
/// The most the heap can grow to (address space only).
const HEAP_MAX: u64 = 64 << 30;
/// Growth step: at least this much at a time.
const GROW_MIN: u64 = 1 << 20;

struct GrowingHeap {
    heap: Heap,
    /// End of the mapped part of the region.
    top: u64,
}

struct KernelHeap(Mutex<GrowingHeap>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(GrowingHeap { heap: Heap::empty(), top: HEAP_BASE }));

/// Maps `bytes` more at the top of the heap region. False when RAM is exhausted.
fn map_more(top: u64, bytes: u64) -> bool {
    let mut guard = crate::app::MEMORY.lock();
    let Some(memory) = guard.as_mut() else { return false };
    let mut va = top;
    while va < top + bytes {
        let Some(frame) = memory.frames.alloc() else { return false };
        if memory.space.map_4k(&mut memory.frames, va, frame, F::PRESENT | F::WRITABLE | F::NO_EXECUTE | F::GLOBAL).is_none() {
            memory.frames.free(frame);
            return false;
        }
        va += FRAME_SIZE;
    }
    true
}

/// Maps the first `size` bytes of the heap and hands them to the allocator. Needs the memory
/// manager (`app::MEMORY`) in place.
pub fn init(size: u64) {
    let mut h = HEAP.0.lock();
    assert!(map_more(HEAP_BASE, size), "no room for the kernel heap");
    // SAFETY: `[HEAP_BASE, HEAP_BASE+size)` was just mapped writable for the heap alone, and
    // this runs once, before the first allocation.
    unsafe { h.heap.init(HEAP_BASE as *mut u8, size as usize) };
    h.top = HEAP_BASE + size;
}

/// Bytes mapped for the heap, and bytes of it in use.
pub fn usage() -> (u64, u64) {
    let h = HEAP.0.lock();
    (h.top - HEAP_BASE, h.heap.used() as u64)
}

// SAFETY: allocation goes through `linked_list_allocator::Heap` under a lock; growth only maps
// fresh frames right above the region the heap owns and then extends it by exactly that.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut h = self.0.lock();
        if let Ok(p) = h.heap.allocate_first_fit(layout) {
            return p.as_ptr();
        }
        let want = (layout.size() as u64 + layout.align() as u64 + 64).max(GROW_MIN).next_multiple_of(FRAME_SIZE);
        if h.top + want > HEAP_BASE + HEAP_MAX || !map_more(h.top, want) {
            return null_mut();
        }
        // SAFETY: the `want` bytes above the current top were just mapped for the heap.
        unsafe { h.heap.extend(want as usize) };
        h.top += want;
        h.heap.allocate_first_fit(layout).map_or(null_mut(), |p| p.as_ptr())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc's contract).
            unsafe { self.0.lock().heap.deallocate(p, layout) }
        }
    }
}

//! The kernel heap: a linked-list allocator over a contiguous block of frames.

use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Gives the heap `[start, start+size)` (a kernel-virtual address in the direct map).
pub fn init(start: u64, size: u64) {
    // SAFETY: the range is RAM reserved for the heap alone, mapped writable, and `init` runs
    // once before the first allocation.
    unsafe { HEAP.lock().init(start as *mut u8, size as usize) }
}

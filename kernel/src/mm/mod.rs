//! Physical memory, page tables and the kernel heap.
//!
//! Layout: the app owns the low half exactly as Linux would give it; all RAM is mapped at
//! [`PHYS_OFFSET`] (the direct map, no-execute); the kernel image sits in the top 2 GiB.

pub mod frames;
pub mod heap;
pub mod mmio;
pub mod paging;

/// Base of the direct map of physical memory.
pub const PHYS_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Where the kernel image is linked (physical 0 maps here).
pub const KERNEL_VMA: u64 = 0xffff_ffff_8000_0000;

/// The kernel-virtual address of a physical address, through the direct map.
pub fn phys_to_virt(phys: u64) -> u64 {
    PHYS_OFFSET + phys
}

//! The app's x87/SSE/AVX state, one save area per thread. The kernel is soft-float and never
//! touches these registers, so the state of whichever thread last ran stays in the CPU until
//! another thread needs it (lazy switching: see `sched`).

use alloc::alloc::{Layout, alloc_zeroed, dealloc};
use core::arch::asm;

use super::cpu::Features;

/// A 64-byte aligned XSAVE (or 512-byte FXSAVE) image.
pub struct FpuArea {
    ptr: *mut u8,
    layout: Layout,
    xcr0: u64,
}

// SAFETY: the area is plain memory owned by one thread record; it is only accessed with the
// scheduler lock held.
unsafe impl Send for FpuArea {}

impl FpuArea {
    /// An area holding the CPU's current state (a new thread starts with its creator's state,
    /// as on Linux).
    pub fn from_current(features: &Features) -> Self {
        let size = if features.xsave { features.xsave_size.max(576) as usize } else { 512 };
        let layout = Layout::from_size_align(size, 64).expect("fpu area layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of kernel memory for an FPU area");
        let area = FpuArea { ptr, layout, xcr0: if features.xsave { features.xcr0 } else { 0 } };
        area.save();
        area
    }

    /// Stores the CPU's state here.
    pub fn save(&self) {
        if self.xcr0 != 0 {
            // SAFETY: `ptr` is 64-byte aligned and large enough for every component in XCR0.
            unsafe {
                asm!("xsave64 [{}]", in(reg) self.ptr, in("eax") self.xcr0 as u32, in("edx") (self.xcr0 >> 32) as u32, options(nostack))
            }
        } else {
            // SAFETY: `ptr` is 16-byte aligned (64) and 512 bytes long.
            unsafe { asm!("fxsave64 [{}]", in(reg) self.ptr, options(nostack)) }
        }
    }

    /// Loads the CPU's state from here.
    pub fn restore(&self) {
        if self.xcr0 != 0 {
            // SAFETY: the area holds an image XSAVE wrote or one rt_sigreturn copied back after
            // `sanitize`; a malformed header would #GP, which `sanitize` prevents.
            unsafe {
                asm!("xrstor64 [{}]", in(reg) self.ptr, in("eax") self.xcr0 as u32, in("edx") (self.xcr0 >> 32) as u32, options(nostack))
            }
        } else {
            // SAFETY: as above, for the FXSAVE format.
            unsafe { asm!("fxrstor64 [{}]", in(reg) self.ptr, options(nostack)) }
        }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points to `layout.size()` initialised bytes owned by `self`.
        unsafe { core::slice::from_raw_parts(self.ptr, self.layout.size()) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }

    /// Makes an image that came from app memory safe to load: reserved MXCSR bits cleared,
    /// and an XSAVE header that names only enabled components in standard form.
    pub fn sanitize(&mut self) {
        let xcr0 = self.xcr0;
        let b = self.bytes_mut();
        // MXCSR at 24, MXCSR_MASK at 28: only the architectural bits.
        let mxcsr = u32::from_le_bytes(b[24..28].try_into().expect("4 bytes")) & 0xffff;
        b[24..28].copy_from_slice(&mxcsr.to_le_bytes());
        if xcr0 != 0 && b.len() >= 576 {
            let bv = u64::from_le_bytes(b[512..520].try_into().expect("8 bytes")) & xcr0;
            b[512..520].copy_from_slice(&bv.to_le_bytes());
            // XCOMP_BV = 0 (standard form) and the rest of the header reserved = 0.
            for x in &mut b[520..576] {
                *x = 0;
            }
        }
    }
}

impl Clone for FpuArea {
    fn clone(&self) -> Self {
        // SAFETY: same layout as `self`, non-zero size.
        let ptr = unsafe { alloc_zeroed(self.layout) };
        assert!(!ptr.is_null(), "out of kernel memory for an FPU area");
        // SAFETY: both regions are `layout.size()` bytes and distinct.
        unsafe { core::ptr::copy_nonoverlapping(self.ptr, ptr, self.layout.size()) };
        FpuArea { ptr, layout: self.layout, xcr0: self.xcr0 }
    }
}

impl Drop for FpuArea {
    fn drop(&mut self) {
        // SAFETY: allocated in `from_current`/`clone` with this layout.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

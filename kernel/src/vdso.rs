//! The vDSO: a small shared object (kernel/vdso/, linked by build.rs) mapped into the app so
//! that clock_gettime, gettimeofday and time read the TSC directly instead of making a
//! syscall, exactly as on Linux. Its second page holds the clock's constants, written here
//! once: the clock never changes rate after boot.

use libc_shim::mm::{Mm, VmaKind};
use libc_shim::{Errno, Platform, Prot};

use crate::app::KernelPlatform;

static IMAGE: &[u8] = include_bytes!(env!("KILN_VDSO_PATH"));

/// Where the vDSO goes: between the mmap area and the stack.
pub const BASE: u64 = 0x7fff_f800_0000;
const PAGE: u64 = 4096;
/// Offset of the constants page (the linker script asserts it).
const VVAR: u64 = 0x1000;

/// Maps the vDSO into `mm` and returns its address (for AT_SYSINFO_EHDR).
pub fn map(mm: &mut Mm) -> Result<u64, Errno> {
    let len = 2 * PAGE;
    // Only the loaded part: the program header's file size (the section headers that follow
    // in the file are not needed at run time).
    let loaded = loaded_size(IMAGE).min(len as usize);
    mm.map_fixed(&KernelPlatform, BASE, len, Prot::READ | Prot::WRITE, VmaKind::Vdso)?;
    KernelPlatform.write_app(BASE, &IMAGE[..loaded])?;
    let (tsc0, mult, epoch) = crate::drivers::clock::vdso_params();
    let mut vvar = [0u8; 32];
    vvar[0..8].copy_from_slice(&tsc0.to_le_bytes());
    vvar[8..16].copy_from_slice(&mult.to_le_bytes());
    vvar[16..24].copy_from_slice(&epoch.to_le_bytes());
    KernelPlatform.write_app(BASE + VVAR, &vvar)?;
    mm.protect(&KernelPlatform, BASE, PAGE, Prot::READ | Prot::EXEC)?;
    mm.protect(&KernelPlatform, BASE + VVAR, PAGE, Prot::READ)?;
    Ok(BASE)
}

/// `p_filesz` of the image's PT_LOAD (it starts at offset 0), from the ELF header fields.
fn loaded_size(image: &[u8]) -> usize {
    let word = |off: usize, n: usize| -> u64 {
        image.get(off..off + n).map_or(0, |b| b.iter().rev().fold(0, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let (phoff, phentsize, phnum) = (word(0x20, 8) as usize, word(0x36, 2) as usize, word(0x38, 2) as usize);
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| word(ph, 4) == 1)
        .map_or(image.len(), |ph| word(ph + 32, 8) as usize)
}

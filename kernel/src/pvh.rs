//! The PVH `hvm_start_info` the loader hands us: command line and memory map. Read once, early,
//! through the boot identity map (it lives in low memory).

pub const MAGIC: u32 = 0x336e_c578;
pub const MAX_MEMMAP: usize = 64;
pub const MAX_CMDLINE: usize = 1024;

#[derive(Clone, Copy, Default, Debug)]
pub struct MemEntry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

pub const RAM: u32 = 1;

pub struct BootInfo {
    pub memmap: [MemEntry; MAX_MEMMAP],
    pub memmap_len: usize,
    pub cmdline: [u8; MAX_CMDLINE],
    pub cmdline_len: usize,
}

impl BootInfo {
    pub fn cmdline(&self) -> &str {
        core::str::from_utf8(&self.cmdline[..self.cmdline_len]).unwrap_or("")
    }

    pub fn memmap(&self) -> &[MemEntry] {
        &self.memmap[..self.memmap_len]
    }
}

fn read<T: Copy>(phys: u64) -> T {
    // SAFETY: PVH start info, its memory map and command line are in low memory, which the
    // boot page tables identity-map; `read_unaligned` makes no alignment assumption.
    unsafe { core::ptr::read_unaligned(phys as *const T) }
}

/// Copies what Kiln needs out of the start info at `phys`. Panics (with a report) if the magic
/// is wrong: then this was not a PVH boot.
pub fn read_start_info(phys: u64) -> BootInfo {
    let magic: u32 = read(phys);
    assert_eq!(magic, MAGIC, "not booted through PVH (start info magic {magic:#x})");
    let cmdline_paddr: u64 = read(phys + 24);
    let memmap_paddr: u64 = read(phys + 40);
    let memmap_entries: u32 = read(phys + 48);
    let mut info = BootInfo { memmap: [MemEntry::default(); MAX_MEMMAP], memmap_len: 0, cmdline: [0; MAX_CMDLINE], cmdline_len: 0 };
    if cmdline_paddr != 0 {
        while info.cmdline_len < MAX_CMDLINE {
            let b: u8 = read(cmdline_paddr + info.cmdline_len as u64);
            if b == 0 {
                break;
            }
            info.cmdline[info.cmdline_len] = b;
            info.cmdline_len += 1;
        }
    }
    for i in 0..(memmap_entries as usize).min(MAX_MEMMAP) {
        let base = memmap_paddr + 24 * i as u64;
        info.memmap[i] = MemEntry { addr: read(base), size: read(base + 8), kind: read(base + 16) };
        info.memmap_len += 1;
    }
    info
}

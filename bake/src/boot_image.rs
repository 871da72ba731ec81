//! The bootable image: the kernel ELF with the payload appended as one more `PT_LOAD`.
//!
//! ```text
//! file offset 0             kernel ELF bytes, verbatim (its headers, sections, old phdr table)
//!             align 4096    payload (libc_shim::image)
//!             align 8       new program header table: the kernel's program headers,
//!                           unchanged, then one PT_LOAD for the payload
//! ```
//!
//! Only `e_phoff` and `e_phnum` of the ELF header change. The payload's `PT_LOAD` has
//! `p_paddr` = the first page past the kernel's loaded memory (`.bss` included), which is how
//! the kernel finds it without being told; QEMU's PVH loader copies it there. The output is a
//! pure function of the inputs.

use goblin::elf::program_header::{PF_R, PT_LOAD};

/// The kernel maps physical memory at this virtual offset; the payload's `p_vaddr` is its
/// `p_paddr` plus this.
pub const PHYS_MAP_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Page size: alignment of the payload in the file and in memory.
pub const PAGE: u64 = 4096;

const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
const E_PHOFF: usize = 0x20;
const E_PHENTSIZE: usize = 0x36;
const E_PHNUM: usize = 0x38;
const EM_X86_64: u16 = 62;

/// Why a kernel ELF or an image cannot be (re)assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// Not a 64-bit little-endian x86_64 ELF.
    #[error("the kernel is not a 64-bit little-endian x86_64 ELF")]
    NotElf64,
    /// The program headers are not where the header says, or have the wrong size.
    #[error("the kernel's program header table is malformed: {0}")]
    BadProgramHeaders(&'static str),
    /// The kernel has no `PT_LOAD` to place the payload after.
    #[error("the kernel has no loadable segments")]
    NoLoad,
    /// An address or size overflows.
    #[error("the image would be too large")]
    TooLarge,
}

/// Where an image's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLocation {
    /// File offset of the payload (also the length of the kernel part, padding included).
    pub offset: usize,
    /// Payload length in bytes.
    pub len: usize,
    /// Physical address QEMU loads it at.
    pub paddr: u64,
}

/// Builds an image from a kernel ELF and a payload.
pub fn compose(kernel: &[u8], payload: &[u8]) -> Result<Vec<u8>, LayoutError> {
    let phdrs = program_headers(kernel)?;
    assemble(kernel, phdrs, payload)
}

/// Builds an image like `image` with its payload replaced by `payload`. The result is the
/// same bytes as [`compose`] of the original kernel with `payload`.
pub fn replace_payload(image: &[u8], payload: &[u8]) -> Result<Vec<u8>, LayoutError> {
    let location = find_payload(image).ok_or(LayoutError::BadProgramHeaders("no payload"))?;
    let phdrs = program_headers(image)?;
    let kernel_phdrs = &phdrs[..phdrs.len() - PHDR_LEN];
    assemble(&image[..location.offset], kernel_phdrs, payload)
}

/// Finds the payload of an image; `None` if `bytes` is not an image (for example an app
/// ELF, or a bare kernel).
pub fn find_payload(bytes: &[u8]) -> Option<PayloadLocation> {
    let phdrs = program_headers(bytes).ok()?;
    let (kernel_phdrs, last) = phdrs.split_at(phdrs.len().checked_sub(PHDR_LEN)?);
    let last = Phdr::read(last);
    let offset = usize::try_from(last.offset).ok()?;
    let len = usize::try_from(last.filesz).ok()?;
    let looks_right = last.kind == PT_LOAD
        && last.flags == PF_R
        && last.offset.is_multiple_of(PAGE)
        && last.memsz == last.filesz
        && last.paddr == payload_paddr(kernel_phdrs).ok()?
        && bytes
            .get(offset..offset.checked_add(len)?)?
            .starts_with(&libc_shim::image::MAGIC);
    looks_right.then_some(PayloadLocation {
        offset,
        len,
        paddr: last.paddr,
    })
}

/// Whether `bytes` looks like an image cut short: an x86_64 ELF whose program header table
/// lies past the end of the file, with a payload header at a page boundary.
pub fn looks_truncated(bytes: &[u8]) -> bool {
    matches!(
        program_headers(bytes),
        Err(LayoutError::BadProgramHeaders(_))
    ) && (0..bytes.len())
        .step_by(PAGE as usize)
        .any(|at| libc_shim::image::total_len(&bytes[at..]).is_ok())
}

/// Physical address of the payload: the first page past every loaded kernel byte.
pub fn payload_paddr(kernel_phdrs: &[u8]) -> Result<u64, LayoutError> {
    let mut end = None;
    for raw in kernel_phdrs.chunks_exact(PHDR_LEN) {
        let p = Phdr::read(raw);
        if p.kind == PT_LOAD {
            let seg_end = p.paddr.checked_add(p.memsz).ok_or(LayoutError::TooLarge)?;
            end = end.max(Some(seg_end));
        }
    }
    align_up(end.ok_or(LayoutError::NoLoad)?, PAGE).ok_or(LayoutError::TooLarge)
}

/// The raw program header table of a 64-bit x86_64 ELF.
fn program_headers(elf: &[u8]) -> Result<&[u8], LayoutError> {
    let header = elf.get(..EHDR_LEN).ok_or(LayoutError::NotElf64)?;
    // ELFMAG, ELFCLASS64, ELFDATA2LSB, x86_64.
    if header[..4] != *b"\x7fELF"
        || header[4] != 2
        || header[5] != 1
        || u16_at(header, 0x12) != EM_X86_64
    {
        return Err(LayoutError::NotElf64);
    }
    if usize::from(u16_at(header, E_PHENTSIZE)) != PHDR_LEN {
        return Err(LayoutError::BadProgramHeaders("entry size is not 56"));
    }
    let phoff = usize::try_from(u64_at(header, E_PHOFF)).map_err(|_| LayoutError::TooLarge)?;
    let phnum = usize::from(u16_at(header, E_PHNUM));
    if phnum == 0xffff {
        return Err(LayoutError::BadProgramHeaders(
            "extended numbering (PN_XNUM) is not supported",
        ));
    }
    phoff
        .checked_add(phnum * PHDR_LEN)
        .and_then(|end| elf.get(phoff..end))
        .ok_or(LayoutError::BadProgramHeaders(
            "table lies past the end of the file",
        ))
}

/// Appends the payload and a new program header table to `base` (a kernel ELF, possibly
/// followed by padding), whose own program headers are `kernel_phdrs`.
fn assemble(base: &[u8], kernel_phdrs: &[u8], payload: &[u8]) -> Result<Vec<u8>, LayoutError> {
    let paddr = payload_paddr(kernel_phdrs)?;
    let phnum = kernel_phdrs.len() / PHDR_LEN + 1;
    let phnum = u16::try_from(phnum)
        .ok()
        .filter(|&n| n < 0xffff)
        .ok_or(LayoutError::BadProgramHeaders("too many program headers"))?;
    let payload_offset = align_up(base.len() as u64, PAGE).ok_or(LayoutError::TooLarge)?;
    let phoff = align_up(payload_offset + payload.len() as u64, 8).ok_or(LayoutError::TooLarge)?;
    let total = phoff as usize + usize::from(phnum) * PHDR_LEN;

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(base);
    out.resize(payload_offset as usize, 0);
    out.extend_from_slice(payload);
    out.resize(phoff as usize, 0);
    out.extend_from_slice(kernel_phdrs);
    Phdr {
        kind: PT_LOAD,
        flags: PF_R,
        offset: payload_offset,
        vaddr: paddr
            .checked_add(PHYS_MAP_OFFSET)
            .ok_or(LayoutError::TooLarge)?,
        paddr,
        filesz: payload.len() as u64,
        memsz: payload.len() as u64,
        align: PAGE,
    }
    .write(&mut out);
    out[E_PHOFF..E_PHOFF + 8].copy_from_slice(&phoff.to_le_bytes());
    out[E_PHNUM..E_PHNUM + 2].copy_from_slice(&phnum.to_le_bytes());
    debug_assert_eq!(out.len(), total);
    Ok(out)
}

/// One `Elf64_Phdr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

impl Phdr {
    /// Reads one from exactly [`PHDR_LEN`] bytes.
    fn read(raw: &[u8]) -> Phdr {
        Phdr {
            kind: u32::from_le_bytes(raw[0..4].try_into().unwrap()),
            flags: u32::from_le_bytes(raw[4..8].try_into().unwrap()),
            offset: u64_at(raw, 8),
            vaddr: u64_at(raw, 16),
            paddr: u64_at(raw, 24),
            filesz: u64_at(raw, 32),
            memsz: u64_at(raw, 40),
            align: u64_at(raw, 48),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(&self.flags.to_le_bytes());
        for word in [
            self.offset,
            self.vaddr,
            self.paddr,
            self.filesz,
            self.memsz,
            self.align,
        ] {
            out.extend_from_slice(&word.to_le_bytes());
        }
    }
}

fn align_up(value: u64, align: u64) -> Option<u64> {
    value.checked_next_multiple_of(align)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stand_in_kernel::{KERNEL_BASE, KERNEL_MEMSZ, StandIn};
    use goblin::elf::Elf;
    use goblin::elf::program_header::PT_NOTE;

    fn payload() -> Vec<u8> {
        libc_shim::image::Payload {
            kiln_version: "0.1.0",
            app_path: "/bin/app",
            app_elf: &[0x7f, b'E', b'L', b'F', 1, 2, 3],
            argv: vec![b"/bin/app"],
            envp: vec![b"HOME=/"],
            rootfs: None,
        }
        .encode()
    }

    #[test]
    fn image_parses_back_with_goblin() {
        let kernel = StandIn::exit(3).build();
        let payload = payload();
        let image = compose(&kernel, &payload).unwrap();

        // The kernel is there verbatim, apart from e_phoff and e_phnum.
        assert_eq!(image[EHDR_LEN..kernel.len()], kernel[EHDR_LEN..]);
        assert_eq!(image[..E_PHOFF], kernel[..E_PHOFF]);

        let k = Elf::parse(&kernel).unwrap();
        let elf = Elf::parse(&image).unwrap();
        assert_eq!(elf.header.e_phnum, k.header.e_phnum + 1);
        assert_eq!(elf.entry, k.entry);
        assert_eq!(
            elf.program_headers[..k.program_headers.len()],
            k.program_headers[..]
        );
        assert!(elf.program_headers.iter().any(|p| p.p_type == PT_NOTE));

        let p = elf.program_headers.last().unwrap();
        let expected_paddr = (KERNEL_BASE + KERNEL_MEMSZ).next_multiple_of(PAGE);
        assert_eq!(p.p_type, PT_LOAD);
        assert_eq!(p.p_flags, PF_R);
        assert_eq!(p.p_offset % PAGE, 0);
        assert!(p.p_offset >= kernel.len() as u64);
        assert_eq!(p.p_paddr, expected_paddr);
        assert_eq!(p.p_vaddr, expected_paddr + 0xffff_8000_0000_0000);
        assert_eq!(p.p_filesz, payload.len() as u64);
        assert_eq!(p.p_memsz, payload.len() as u64);
        assert_eq!(p.p_align, PAGE);
        assert_eq!(&image[p.file_range()], &payload[..]);
        // The section headers still describe the kernel.
        assert_eq!(elf.section_headers.len(), k.section_headers.len());
    }

    #[test]
    fn paddr_counts_bss_and_every_load() {
        let mut phdrs = Vec::new();
        let load = |paddr, memsz| Phdr {
            kind: PT_LOAD,
            flags: PF_R,
            offset: 0,
            vaddr: paddr,
            paddr,
            filesz: 0,
            memsz,
            align: PAGE,
        };
        load(0x200000, 0x10).write(&mut phdrs);
        load(0x100000, 0x5001).write(&mut phdrs); // lower, but .bss makes it end... earlier
        Phdr {
            kind: PT_NOTE,
            paddr: 0x900000,
            memsz: 0x10,
            ..load(0, 0)
        }
        .write(&mut phdrs);
        assert_eq!(payload_paddr(&phdrs).unwrap(), 0x201000);
        let mut only_note = Vec::new();
        Phdr {
            kind: PT_NOTE,
            ..load(0, 0)
        }
        .write(&mut only_note);
        assert_eq!(payload_paddr(&only_note), Err(LayoutError::NoLoad));
    }

    #[test]
    fn composing_is_deterministic() {
        let kernel = StandIn::exit(0).build();
        assert_eq!(
            compose(&kernel, &payload()).unwrap(),
            compose(&kernel, &payload()).unwrap()
        );
    }

    #[test]
    fn find_and_replace_payload() {
        let kernel = StandIn::exit(0).build();
        assert_eq!(find_payload(&kernel), None);
        let image = compose(&kernel, &payload()).unwrap();
        let loc = find_payload(&image).unwrap();
        assert_eq!(&image[loc.offset..loc.offset + loc.len], &payload()[..]);

        let other = libc_shim::image::Payload {
            kiln_version: "0.1.0",
            app_path: "/bin/other",
            app_elf: &[9; 5000],
            argv: vec![],
            envp: vec![],
            rootfs: None,
        }
        .encode();
        let replaced = replace_payload(&image, &other).unwrap();
        assert_eq!(replaced, compose(&kernel, &other).unwrap());
        // And back again.
        assert_eq!(replace_payload(&replaced, &payload()).unwrap(), image);
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert_eq!(compose(b"", b""), Err(LayoutError::NotElf64));
        assert_eq!(compose(b"\x7fELF", b""), Err(LayoutError::NotElf64));
        let kernel = StandIn::exit(0).build();
        for len in 0..kernel.len().min(400) {
            let _ = compose(&kernel[..len], &payload());
            assert_eq!(find_payload(&kernel[..len]), None);
        }
        let image = compose(&kernel, &payload()).unwrap();
        let payload_at = find_payload(&image).unwrap().offset;
        for len in 0..image.len() {
            assert_eq!(find_payload(&image[..len]), None);
            let has_header = len >= payload_at + libc_shim::image::HEADER_LEN;
            assert_eq!(looks_truncated(&image[..len]), has_header, "{len}");
        }
    }
}

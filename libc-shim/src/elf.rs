//! ELF parsing and validation for the app: what bake checks before baking and what the
//! loader maps.
//!
//! [`parse`] accepts exactly what Kiln can run (a static x86_64 `ET_EXEC` or static-PIE
//! `ET_DYN`) and turns everything else into an [`ElfError`] whose message names the problem
//! and the fix. It only reads: nothing here maps memory. [`Symbolizer`] turns crash addresses
//! back into `function+offset` for the kernel's crash report.
//!
//! goblin decodes the ELF header and program headers; the few dynamic-section and relocation
//! words are read with the length-checked helpers at the bottom, so a corrupt file is an
//! error, never a panic.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::Elf;
use goblin::elf::header::{self as eh, Header};
use goblin::elf::program_header::{self as ph, ProgramHeader};

use crate::mm::layout::{MMAP_MIN, USER_END};
use crate::platform::Prot;

/// `DT_*` tags and relocation types the parser reads.
mod dt {
    pub const NULL: u64 = 0;
    pub const NEEDED: u64 = 1;
    pub const STRTAB: u64 = 5;
    pub const RELA: u64 = 7;
    pub const RELASZ: u64 = 8;
    pub const RELAENT: u64 = 9;
    pub const STRSZ: u64 = 10;
    pub const R_X86_64_RELATIVE: u32 = 8;
    /// Size of one `Elf64_Dyn`.
    pub const DYN_SIZE: u64 = 16;
    /// Size of one `Elf64_Rela`.
    pub const RELA_SIZE: u64 = 24;
}

/// Size of `Elf64_Ehdr`.
const EHDR_SIZE: u64 = 64;
/// Size of `Elf64_Phdr`.
const PHDR_SIZE: u16 = 56;

/// Why an ELF file cannot run under Kiln. Each message names the problem and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    #[error(
        "not an ELF file (bad magic {magic:02x?}, expected 7f 45 4c 46): pass a compiled Linux x86_64 program, not a script or source file"
    )]
    NotElf { magic: [u8; 4] },
    #[error("32-bit ELF: rebuild the program for x86_64 (64-bit), e.g. without -m32")]
    Elf32,
    #[error("big-endian ELF: rebuild the program for x86_64")]
    BigEndian,
    #[error(
        "wrong machine: the program is built for {machine}, Kiln runs x86_64 programs: rebuild it for x86_64"
    )]
    WrongMachine { machine: &'static str },
    #[error(
        "truncated: the ELF header ends at {end} but file is {len} bytes: the file was cut short, copy or rebuild it"
    )]
    TruncatedHeader { end: u64, len: u64 },
    #[error(
        "truncated: the program header table ends at {end} but file is {len} bytes: the file was cut short, copy or rebuild it"
    )]
    TruncatedProgramHeaders { end: u64, len: u64 },
    #[error(
        "truncated: segment {index} ends at {end} but file is {len} bytes: the file was cut short, copy or rebuild it"
    )]
    TruncatedSegment { index: usize, end: u64, len: u64 },
    #[error("{}", dynamic_message(.interpreter, .needed))]
    Dynamic {
        interpreter: Option<String>,
        needed: Vec<String>,
    },
    #[error("not an executable ({what}): link it into a static program (musl-gcc -static)")]
    NotExecutable { what: &'static str },
    #[error(
        "no loadable segments (no PT_LOAD): the file is not a runnable program, rebuild it as a static executable"
    )]
    NoLoadableSegments,
    #[error(
        "segment {index} at {vaddr:#x}..{end:#x} reaches into the kernel half (at or above {USER_END:#x}): link the program at a lower address"
    )]
    KernelHalf { index: usize, vaddr: u64, end: u64 },
    #[error(
        "segment {index} at {vaddr:#x} lies below {MMAP_MIN:#x}, the lowest address apps may use: link at the default address (0x400000)"
    )]
    BelowMinAddress { index: usize, vaddr: u64 },
    #[error(
        "segment {index}: memory size {memsz:#x} is smaller than file size {filesz:#x}: the ELF is corrupt, rebuild it"
    )]
    MemszBelowFilesz {
        index: usize,
        memsz: u64,
        filesz: u64,
    },
    #[error(
        "entry point {entry:#x} lies outside every loadable segment: the ELF is corrupt, rebuild it"
    )]
    EntryOutsideSegments { entry: u64 },
    #[error("program header entry size is {size}, expected 56: the ELF is corrupt, rebuild it")]
    BadProgramHeaderSize { size: u16 },
    #[error("malformed dynamic section: {what}: the ELF is corrupt, rebuild it")]
    BadDynamic { what: &'static str },
}

fn dynamic_message(interpreter: &Option<String>, needed: &[String]) -> String {
    let mut what = String::from("dynamically linked");
    let mut parts = Vec::new();
    if let Some(interp) = interpreter {
        parts.push(alloc::format!("interpreter {interp}"));
    }
    if !needed.is_empty() {
        parts.push(alloc::format!("needs {}", needed.join(", ")));
    }
    if !parts.is_empty() {
        what.push_str(" (");
        what.push_str(&parts.join("; "));
        what.push(')');
    }
    what.push_str(
        ": Kiln runs static programs only: link with -static (musl-gcc -static, or gcc -static)",
    );
    what
}

/// Whether the program is loaded at its link address or relocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// `ET_EXEC`: runs at its link address.
    Exec,
    /// `ET_DYN` without `PT_INTERP`: position independent, relocates itself.
    StaticPie,
}

/// One segment (`PT_LOAD` or `PT_TLS`), addresses as linked (before any load bias).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub file_offset: u64,
    pub filesz: u64,
    pub prot: Prot,
    pub align: u64,
}

impl Segment {
    /// One past the last byte of the segment in memory.
    pub fn end(&self) -> u64 {
        self.vaddr + self.memsz
    }

    fn from_header(p: &ProgramHeader) -> Segment {
        let mut prot = Prot::empty();
        if p.p_flags & ph::PF_R != 0 {
            prot |= Prot::READ;
        }
        if p.p_flags & ph::PF_W != 0 {
            prot |= Prot::WRITE;
        }
        if p.p_flags & ph::PF_X != 0 {
            prot |= Prot::EXEC;
        }
        Segment {
            vaddr: p.p_vaddr,
            memsz: p.p_memsz,
            file_offset: p.p_offset,
            filesz: p.p_filesz,
            prot,
            align: p.p_align,
        }
    }
}

/// Everything the loader needs from a validated app ELF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub kind: ElfKind,
    pub entry: u64,
    /// The `PT_LOAD` segments, in file order.
    pub segments: Vec<Segment>,
    /// Where the program headers are in memory (from `PT_PHDR`, or the `PT_LOAD` that
    /// contains `e_phoff`), for `AT_PHDR`.
    pub phdr_vaddr: Option<u64>,
    pub phent: u16,
    pub phnum: u16,
    /// The TLS initialisation image (`PT_TLS`), if any.
    pub tls: Option<Segment>,
    /// `PT_GNU_STACK` asks for an executable stack.
    pub stack_exec: bool,
    /// `R_X86_64_RELATIVE` relocations from `DT_RELA` as (offset, addend); empty for `ET_EXEC`.
    pub relative_relocs: Vec<(u64, i64)>,
}

impl ElfInfo {
    /// (lowest vaddr, one past the highest byte) over the `PT_LOAD` segments, as linked.
    pub fn bounds(&self) -> (u64, u64) {
        let low = self.segments.iter().map(|s| s.vaddr).min().unwrap_or(0);
        let high = self.segments.iter().map(Segment::end).max().unwrap_or(0);
        (low, high)
    }
}

/// Parses and validates an app ELF. Only static x86_64 programs pass.
pub fn parse(bytes: &[u8]) -> Result<ElfInfo, ElfError> {
    let len = bytes.len() as u64;
    if bytes.len() < 4 || bytes[..4] != *eh::ELFMAG {
        let mut magic = [0u8; 4];
        let n = bytes.len().min(4);
        magic[..n].copy_from_slice(&bytes[..n]);
        return Err(ElfError::NotElf { magic });
    }
    // Class and byte order decide how the rest is read, so check them before the full header.
    match bytes.get(eh::EI_CLASS) {
        Some(&eh::ELFCLASS64) => {}
        Some(&eh::ELFCLASS32) => return Err(ElfError::Elf32),
        _ => {
            return Err(ElfError::TruncatedHeader {
                end: EHDR_SIZE,
                len,
            });
        }
    }
    match bytes.get(eh::EI_DATA) {
        Some(&eh::ELFDATA2LSB) => {}
        Some(&eh::ELFDATA2MSB) => return Err(ElfError::BigEndian),
        _ => {
            return Err(ElfError::TruncatedHeader {
                end: EHDR_SIZE,
                len,
            });
        }
    }
    if len < EHDR_SIZE {
        return Err(ElfError::TruncatedHeader {
            end: EHDR_SIZE,
            len,
        });
    }
    let header: Header = Elf::parse_header(bytes).map_err(|_| ElfError::TruncatedHeader {
        end: EHDR_SIZE,
        len,
    })?;
    if header.e_machine != eh::EM_X86_64 {
        return Err(ElfError::WrongMachine {
            machine: machine_name(header.e_machine),
        });
    }
    let kind = match header.e_type {
        eh::ET_EXEC => ElfKind::Exec,
        eh::ET_DYN => ElfKind::StaticPie,
        eh::ET_REL => {
            return Err(ElfError::NotExecutable {
                what: "a relocatable object file (ET_REL, a .o)",
            });
        }
        eh::ET_CORE => {
            return Err(ElfError::NotExecutable {
                what: "a core dump (ET_CORE)",
            });
        }
        _ => {
            return Err(ElfError::NotExecutable {
                what: "unknown ELF type",
            });
        }
    };
    if header.e_phnum > 0 && header.e_phentsize != PHDR_SIZE {
        return Err(ElfError::BadProgramHeaderSize {
            size: header.e_phentsize,
        });
    }
    let table_size = u64::from(header.e_phnum) * u64::from(PHDR_SIZE);
    let table_end = header.e_phoff.saturating_add(table_size);
    if table_end > len {
        return Err(ElfError::TruncatedProgramHeaders {
            end: table_end,
            len,
        });
    }
    let ctx = Ctx::new(Container::Big, Endian::Little);
    let phdrs = ProgramHeader::parse(
        bytes,
        header.e_phoff as usize,
        usize::from(header.e_phnum),
        ctx,
    )
    .map_err(|_| ElfError::TruncatedProgramHeaders {
        end: table_end,
        len,
    })?;

    // Every segment's file bytes must be in the file, whatever its type.
    for (index, p) in phdrs.iter().enumerate() {
        if p.p_type == ph::PT_NULL || p.p_filesz == 0 {
            continue;
        }
        let end = p.p_offset.saturating_add(p.p_filesz);
        if end > len {
            return Err(ElfError::TruncatedSegment { index, end, len });
        }
    }

    let mut segments = Vec::new();
    for (index, p) in phdrs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.p_type == ph::PT_LOAD)
    {
        if p.p_memsz < p.p_filesz {
            return Err(ElfError::MemszBelowFilesz {
                index,
                memsz: p.p_memsz,
                filesz: p.p_filesz,
            });
        }
        let end = p.p_vaddr.saturating_add(p.p_memsz);
        if end > USER_END {
            return Err(ElfError::KernelHalf {
                index,
                vaddr: p.p_vaddr,
                end,
            });
        }
        if kind == ElfKind::Exec && p.p_vaddr < MMAP_MIN {
            return Err(ElfError::BelowMinAddress {
                index,
                vaddr: p.p_vaddr,
            });
        }
        segments.push(Segment::from_header(p));
    }

    // A program that needs ld.so or shared libraries cannot run: say so before anything else.
    let interpreter = phdrs.iter().find(|p| p.p_type == ph::PT_INTERP).map(|p| {
        bytes
            .get(p.p_offset as usize..(p.p_offset + p.p_filesz) as usize)
            .map(c_string)
            .unwrap_or_default()
    });
    let dynamic = phdrs
        .iter()
        .find(|p| p.p_type == ph::PT_DYNAMIC)
        .map(|p| read_dynamic(bytes, p, &segments));
    let needed = match &dynamic {
        Some(Ok(d)) => d.needed.clone(),
        _ => Vec::new(),
    };
    if interpreter.is_some() || !needed.is_empty() {
        return Err(ElfError::Dynamic {
            interpreter,
            needed,
        });
    }
    let dynamic = dynamic.transpose()?;

    if segments.is_empty() {
        return Err(ElfError::NoLoadableSegments);
    }
    let entry = header.e_entry;
    if !segments.iter().any(|s| s.vaddr <= entry && entry < s.end()) {
        return Err(ElfError::EntryOutsideSegments { entry });
    }

    let phdr_vaddr = phdrs
        .iter()
        .find(|p| p.p_type == ph::PT_PHDR)
        .map(|p| p.p_vaddr)
        .or_else(|| {
            segments
                .iter()
                .find(|s| s.file_offset <= header.e_phoff && table_end <= s.file_offset + s.filesz)
                .map(|s| s.vaddr + (header.e_phoff - s.file_offset))
        });
    let tls = phdrs
        .iter()
        .find(|p| p.p_type == ph::PT_TLS)
        .map(Segment::from_header);
    let stack_exec = phdrs
        .iter()
        .any(|p| p.p_type == ph::PT_GNU_STACK && p.p_flags & ph::PF_X != 0);
    let relative_relocs = match (kind, dynamic) {
        (ElfKind::StaticPie, Some(d)) => d.relative_relocs,
        _ => Vec::new(),
    };

    Ok(ElfInfo {
        kind,
        entry,
        segments,
        phdr_vaddr,
        phent: header.e_phentsize,
        phnum: header.e_phnum,
        tls,
        stack_exec,
        relative_relocs,
    })
}

fn machine_name(machine: u16) -> &'static str {
    match machine {
        eh::EM_AARCH64 => "aarch64",
        eh::EM_386 => "i386",
        eh::EM_ARM => "32-bit arm",
        eh::EM_RISCV => "riscv",
        eh::EM_PPC64 => "ppc64",
        eh::EM_S390 => "s390x",
        eh::EM_MIPS => "mips",
        eh::EM_LOONGARCH => "loongarch",
        other => eh::machine_to_str(other),
    }
}

/// What the dynamic section says, for the checks and relocations above.
struct DynamicInfo {
    needed: Vec<String>,
    relative_relocs: Vec<(u64, i64)>,
}

fn read_dynamic(
    bytes: &[u8],
    p: &ProgramHeader,
    loads: &[Segment],
) -> Result<DynamicInfo, ElfError> {
    let bad = |what| ElfError::BadDynamic { what };
    let mut needed_offsets = Vec::new();
    let (mut strtab, mut strsz, mut rela, mut relasz, mut relaent) =
        (None, None, None, 0, dt::RELA_SIZE);
    for i in 0..p.p_filesz / dt::DYN_SIZE {
        let at = p.p_offset + i * dt::DYN_SIZE;
        let (tag, val) = (le_u64(bytes, at), le_u64(bytes, at + 8));
        let (Some(tag), Some(val)) = (tag, val) else {
            return Err(bad("entry past the end of the file"));
        };
        match tag {
            dt::NULL => break,
            dt::NEEDED => needed_offsets.push(val),
            dt::STRTAB => strtab = Some(val),
            dt::STRSZ => strsz = Some(val),
            dt::RELA => rela = Some(val),
            dt::RELASZ => relasz = val,
            dt::RELAENT => relaent = val,
            _ => {}
        }
    }

    let mut needed = Vec::new();
    if !needed_offsets.is_empty() {
        // Without DT_STRSZ the names still end at their NUL; only the file bounds them.
        let table = strtab
            .and_then(|a| file_range(loads, a, strsz.unwrap_or(0)))
            .map(|(start, end)| {
                (
                    start,
                    if strsz.is_some() {
                        end
                    } else {
                        bytes.len() as u64
                    },
                )
            });
        for off in needed_offsets {
            let name = table
                .and_then(|t| bytes.get(t.0.checked_add(off)? as usize..t.1 as usize))
                .map(c_string)
                .unwrap_or_else(|| "a shared library".to_string());
            needed.push(name);
        }
    }

    let mut relative_relocs = Vec::new();
    if let Some(rela) = rela {
        if relaent != dt::RELA_SIZE {
            return Err(bad("DT_RELAENT is not 24"));
        }
        let (start, _) =
            file_range(loads, rela, relasz).ok_or(bad("DT_RELA table outside the file"))?;
        for i in 0..relasz / dt::RELA_SIZE {
            let at = start + i * dt::RELA_SIZE;
            let (Some(offset), Some(info), Some(addend)) = (
                le_u64(bytes, at),
                le_u64(bytes, at + 8),
                le_u64(bytes, at + 16),
            ) else {
                return Err(bad("relocation past the end of the file"));
            };
            if info as u32 != dt::R_X86_64_RELATIVE {
                continue;
            }
            let inside = loads
                .iter()
                .any(|s| s.vaddr <= offset && offset.checked_add(8).is_some_and(|e| e <= s.end()));
            if !inside {
                return Err(bad(
                    "R_X86_64_RELATIVE target outside the loadable segments",
                ));
            }
            relative_relocs.push((offset, addend as i64));
        }
    }
    Ok(DynamicInfo {
        needed,
        relative_relocs,
    })
}

/// File range `[start, end)` holding `len` bytes at virtual address `vaddr`, if one `PT_LOAD`
/// has them all in its file part.
fn file_range(loads: &[Segment], vaddr: u64, len: u64) -> Option<(u64, u64)> {
    let s = loads
        .iter()
        .find(|s| s.vaddr <= vaddr && vaddr < s.vaddr + s.filesz)?;
    let start = s.file_offset + (vaddr - s.vaddr);
    let end = start.checked_add(len)?;
    (end <= s.file_offset + s.filesz).then_some((start, end))
}

fn le_u64(bytes: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// The bytes up to the first NUL, lossily as UTF-8.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Maps code addresses back to symbol names, for crash reports.
#[derive(Debug, Clone)]
pub struct Symbolizer {
    /// (address as linked, size, name), sorted by address, one entry per address.
    symbols: Vec<(u64, u64, String)>,
    /// (lowest, one past highest) linked address of the `PT_LOAD` segments: nothing outside
    /// is symbolized.
    bounds: (u64, u64),
}

impl Symbolizer {
    /// Collects FUNC and OBJECT symbols from `.symtab`, or `.dynsym` when the program is
    /// stripped. `None` when the file does not parse or has no such symbols.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let elf = Elf::parse(bytes).ok()?;
        let collect = |syms: &goblin::elf::Symtab<'_>, strtab: &goblin::strtab::Strtab<'_>| {
            let mut out = Vec::new();
            for sym in syms.iter() {
                let typ = sym.st_type();
                let wanted =
                    typ == goblin::elf::sym::STT_FUNC || typ == goblin::elf::sym::STT_OBJECT;
                if !wanted || sym.st_shndx == 0 || sym.st_value == 0 {
                    continue;
                }
                match strtab.get_at(sym.st_name) {
                    Some(name) if !name.is_empty() => {
                        out.push((sym.st_value, sym.st_size, name.to_string()))
                    }
                    _ => {}
                }
            }
            out
        };
        let mut symbols = collect(&elf.syms, &elf.strtab);
        if symbols.is_empty() {
            symbols = collect(&elf.dynsyms, &elf.dynstrtab);
        }
        if symbols.is_empty() {
            return None;
        }
        // At one address prefer the symbol with a size (a function over its local label).
        symbols.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        symbols.dedup_by_key(|s| s.0);
        let loads = elf
            .program_headers
            .iter()
            .filter(|p| p.p_type == ph::PT_LOAD);
        let low = loads.clone().map(|p| p.p_vaddr).min().unwrap_or(0);
        let high = loads
            .map(|p| p.p_vaddr.saturating_add(p.p_memsz))
            .max()
            .unwrap_or(u64::MAX);
        Some(Symbolizer {
            symbols,
            bounds: (low, high),
        })
    }

    /// The nearest symbol at or before `addr` (a runtime address; `load_bias` is subtracted
    /// first) and the offset of `addr` from it. `None` outside the program.
    pub fn lookup(&self, addr: u64, load_bias: u64) -> Option<(&str, u64)> {
        let linked = addr.checked_sub(load_bias)?;
        if linked < self.bounds.0 || linked >= self.bounds.1 {
            return None;
        }
        let after = self.symbols.partition_point(|s| s.0 <= linked);
        let (start, _, name) = self.symbols.get(after.checked_sub(1)?)?;
        Some((name.as_str(), linked - start))
    }

    /// Number of symbols known.
    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }
}

/// Hand-made ELF files and on-the-fly compiled programs for tests.
#[cfg(test)]
pub(crate) mod test_elf {
    use std::path::PathBuf;
    use std::process::Command;
    use std::vec::Vec;

    pub const PT_LOAD: u32 = 1;
    pub const PT_DYNAMIC: u32 = 2;
    pub const PT_INTERP: u32 = 3;
    pub const PT_PHDR: u32 = 6;
    pub const PT_TLS: u32 = 7;
    pub const PT_GNU_STACK: u32 = 0x6474_e551;
    pub const R: u32 = 4;
    pub const W: u32 = 2;
    pub const X: u32 = 1;

    /// Bytes at the entry point of the tiny programs (`ud2; nop; nop`).
    pub const CODE: &[u8] = b"\x0f\x0b\x90\x90";
    pub const DATA: &[u8] = b"hello data";

    #[derive(Clone, Copy, Debug)]
    pub struct Phdr {
        pub p_type: u32,
        pub flags: u32,
        pub offset: u64,
        pub vaddr: u64,
        pub filesz: u64,
        pub memsz: u64,
        pub align: u64,
    }

    pub fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Phdr {
        Phdr {
            p_type: PT_LOAD,
            flags,
            offset,
            vaddr,
            filesz,
            memsz,
            align: 0x1000,
        }
    }

    pub fn other(p_type: u32, flags: u32, offset: u64, vaddr: u64, size: u64) -> Phdr {
        Phdr {
            p_type,
            flags,
            offset,
            vaddr,
            filesz: size,
            memsz: size,
            align: 8,
        }
    }

    /// An x86_64 ELF of `file_len` bytes: header, program headers at 64, zeros after.
    pub fn build(e_type: u16, entry: u64, phdrs: &[Phdr], file_len: usize) -> Vec<u8> {
        let mut b = vec![0u8; file_len.max(64 + 56 * phdrs.len())];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2; // ELFCLASS64
        b[5] = 1; // little-endian
        b[6] = 1; // EV_CURRENT
        put16(&mut b, 16, e_type);
        put16(&mut b, 18, 62); // EM_X86_64
        put32(&mut b, 20, 1);
        put64(&mut b, 24, entry);
        put64(&mut b, 32, 64); // e_phoff
        put16(&mut b, 52, 64); // e_ehsize
        put16(&mut b, 54, 56); // e_phentsize
        put16(&mut b, 56, phdrs.len() as u16);
        for (i, p) in phdrs.iter().enumerate() {
            let at = 64 + 56 * i;
            put32(&mut b, at, p.p_type);
            put32(&mut b, at + 4, p.flags);
            put64(&mut b, at + 8, p.offset);
            put64(&mut b, at + 16, p.vaddr);
            put64(&mut b, at + 24, p.vaddr);
            put64(&mut b, at + 32, p.filesz);
            put64(&mut b, at + 40, p.memsz);
            put64(&mut b, at + 48, p.align);
        }
        b
    }

    pub fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    pub fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    pub fn put64(b: &mut [u8], at: usize, v: u64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// A static ET_EXEC: text (R+X) at 0x400000 holding the headers and [`CODE`] at the entry
    /// 0x401000, data (R+W) at `data_vaddr` with [`DATA`] and 0x1f00 bytes of bss, and a
    /// non-executable PT_GNU_STACK.
    pub fn tiny_exec(data_vaddr: u64) -> Vec<u8> {
        let data_off = 0x1800 + (data_vaddr & 0x7ff);
        let phdrs = [
            load(R | X, 0, 0x40_0000, 0x1010, 0x1010),
            load(R | W, data_off, data_vaddr, 0x100, 0x2000),
            other(PT_GNU_STACK, R | W, 0, 0, 0),
        ];
        let mut b = build(2, 0x40_1000, &phdrs, data_off as usize + 0x100);
        b[0x1000..0x1004].copy_from_slice(CODE);
        b[data_off as usize..data_off as usize + DATA.len()].copy_from_slice(DATA);
        b
    }

    pub const PIE_RELOC_AT: u64 = 0x2810;
    pub const PIE_RELOC_ADDEND: u64 = 0x1000;
    pub const PIE_IRELATIVE_AT: u64 = 0x2818;

    /// A static-PIE linked at 0: text at 0 (entry 0x1000), data at 0x2800 (file 0x1800)
    /// holding a PT_DYNAMIC at 0x2900 whose DT_RELA table at 0x2980 has one RELATIVE and one
    /// IRELATIVE relocation; PT_PHDR at 0x40.
    pub fn tiny_pie() -> Vec<u8> {
        let phdrs = [
            other(PT_PHDR, R, 64, 64, 56 * 4),
            load(R | X, 0, 0, 0x1010, 0x1010),
            load(R | W, 0x1800, 0x2800, 0x200, 0x1000),
            other(PT_DYNAMIC, R | W, 0x1900, 0x2900, 0x40),
        ];
        let mut b = build(3, 0x1000, &phdrs, 0x1a00);
        b[0x1000..0x1004].copy_from_slice(CODE);
        for (i, (tag, val)) in [(7u64, 0x2980u64), (8, 48), (9, 24), (0, 0)]
            .iter()
            .enumerate()
        {
            put64(&mut b, 0x1900 + 16 * i, *tag);
            put64(&mut b, 0x1900 + 16 * i + 8, *val);
        }
        let relocs = [
            (PIE_RELOC_AT, 8u64, PIE_RELOC_ADDEND),
            (PIE_IRELATIVE_AT, 37, 0x1000),
        ];
        for (i, (off, typ, addend)) in relocs.iter().enumerate() {
            put64(&mut b, 0x1980 + 24 * i, *off);
            put64(&mut b, 0x1980 + 24 * i + 8, *typ);
            put64(&mut b, 0x1980 + 24 * i + 16, *addend);
        }
        b
    }

    pub const HELLO_C: &str = "#include <stdio.h>\nint counter = 3;\nint main(void) { printf(\"hello %d\\n\", counter); return 0; }\n";

    /// Compiles `source` with `cc args`; `None` when the compiler is not installed.
    pub fn compile(cc: &str, args: &[&str], source: &str) -> Option<Vec<u8>> {
        if Command::new(cc).arg("--version").output().is_err() {
            return None;
        }
        let id = std::format!(
            "kiln-elf-test-{}-{}-{}",
            std::process::id(),
            cc,
            args.join("").replace(['-', '/'], "")
        );
        let dir: PathBuf = std::env::temp_dir().join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("prog.c");
        let out = dir.join("prog");
        std::fs::write(&src, source).unwrap();
        let status = Command::new(cc)
            .args(args)
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .status()
            .unwrap();
        assert!(status.success(), "{cc} {args:?} failed");
        let bytes = std::fs::read(&out).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::test_elf::*;
    use super::*;
    use std::string::ToString;
    use std::vec;

    fn err(bytes: &[u8]) -> ElfError {
        parse(bytes).expect_err("should be refused")
    }

    #[test]
    fn tiny_exec_parses() {
        let info = parse(&tiny_exec(0x40_3000)).unwrap();
        assert_eq!(info.kind, ElfKind::Exec);
        assert_eq!(info.entry, 0x40_1000);
        assert_eq!(info.segments.len(), 2);
        assert_eq!(
            info.segments[0],
            Segment {
                vaddr: 0x40_0000,
                memsz: 0x1010,
                file_offset: 0,
                filesz: 0x1010,
                prot: Prot::READ | Prot::EXEC,
                align: 0x1000
            }
        );
        assert_eq!(info.segments[1].prot, Prot::READ | Prot::WRITE);
        assert_eq!(info.bounds(), (0x40_0000, 0x40_5000));
        assert_eq!(
            info.phdr_vaddr,
            Some(0x40_0040),
            "computed from the PT_LOAD holding e_phoff"
        );
        assert_eq!((info.phent, info.phnum), (56, 3));
        assert!(!info.stack_exec);
        assert!(info.tls.is_none());
        assert!(info.relative_relocs.is_empty());
    }

    #[test]
    fn tiny_pie_parses() {
        let info = parse(&tiny_pie()).unwrap();
        assert_eq!(info.kind, ElfKind::StaticPie);
        assert_eq!(info.phdr_vaddr, Some(64), "from PT_PHDR");
        assert_eq!(
            info.relative_relocs,
            [(PIE_RELOC_AT, PIE_RELOC_ADDEND as i64)]
        );
        assert_eq!(info.bounds(), (0, 0x3800));
    }

    #[test]
    fn tls_and_exec_stack() {
        let phdrs = [
            load(R | X, 0, 0x40_0000, 0x1010, 0x1010),
            other(PT_TLS, R, 0x1008, 0x40_1008, 8),
            other(PT_GNU_STACK, R | W | X, 0, 0, 0),
        ];
        let info = parse(&build(2, 0x40_1000, &phdrs, 0x1010)).unwrap();
        assert!(info.stack_exec);
        let tls = info.tls.unwrap();
        assert_eq!((tls.vaddr, tls.filesz), (0x40_1008, 8));
    }

    #[test]
    fn refusals_name_problem_and_fix() {
        let e = err(b"#!/bin/sh\necho hi\n");
        assert!(matches!(e, ElfError::NotElf { magic } if magic == *b"#!/b"));
        assert!(e.to_string().contains("not an ELF file"));
        assert!(matches!(err(b"\x7fE"), ElfError::NotElf { .. }));

        let mut b = tiny_exec(0x40_3000);
        b[4] = 1;
        let e = err(&b);
        assert_eq!(e, ElfError::Elf32);
        assert!(e.to_string().contains("rebuild the program for x86_64"));

        let mut b = tiny_exec(0x40_3000);
        put16(&mut b, 18, 183);
        let e = err(&b);
        assert_eq!(e, ElfError::WrongMachine { machine: "aarch64" });
        assert!(
            e.to_string().contains("aarch64") && e.to_string().contains("rebuild it for x86_64")
        );

        let b = tiny_exec(0x40_3000);
        assert_eq!(
            err(&b[..40]),
            ElfError::TruncatedHeader { end: 64, len: 40 }
        );
        assert!(matches!(
            err(&b[..100]),
            ElfError::TruncatedProgramHeaders { end: 232, len: 100 }
        ));
        let e = err(&b[..0x1850]);
        assert_eq!(
            e,
            ElfError::TruncatedSegment {
                index: 1,
                end: 0x1900,
                len: 0x1850
            }
        );
        assert!(
            e.to_string()
                .starts_with("truncated: segment 1 ends at 6400 but file is 6224 bytes"),
            "{e}"
        );

        let mut b = tiny_exec(0x40_3000);
        put16(&mut b, 16, 1);
        assert!(err(&b).to_string().contains("relocatable object"));
        put16(&mut b, 16, 4);
        assert!(err(&b).to_string().contains("core dump"));

        let only_stack = build(2, 0x40_1000, &[other(PT_GNU_STACK, R | W, 0, 0, 0)], 0x100);
        assert_eq!(err(&only_stack), ElfError::NoLoadableSegments);

        let high = build(
            2,
            0x7fff_ffff_f000,
            &[load(R, 0, 0x7fff_ffff_f000, 0x100, 0x2000)],
            0x100,
        );
        let e = err(&high);
        assert_eq!(
            e,
            ElfError::KernelHalf {
                index: 0,
                vaddr: 0x7fff_ffff_f000,
                end: 0x8000_0000_1000
            }
        );
        assert!(e.to_string().contains("kernel half"));

        let shrunk = build(2, 0x40_0000, &[load(R, 0, 0x40_0000, 0x100, 0x80)], 0x100);
        assert_eq!(
            err(&shrunk),
            ElfError::MemszBelowFilesz {
                index: 0,
                memsz: 0x80,
                filesz: 0x100
            }
        );

        let null_page = build(2, 0x100, &[load(R | X, 0, 0, 0x200, 0x200)], 0x200);
        assert_eq!(
            err(&null_page),
            ElfError::BelowMinAddress { index: 0, vaddr: 0 }
        );

        let stray_entry = build(
            2,
            0x50_0000,
            &[load(R | X, 0, 0x40_0000, 0x200, 0x200)],
            0x200,
        );
        assert_eq!(
            err(&stray_entry),
            ElfError::EntryOutsideSegments { entry: 0x50_0000 }
        );
    }

    #[test]
    fn interpreter_means_dynamic() {
        let interp = b"/lib/ld-musl-x86_64.so.1\0";
        let phdrs = [
            other(PT_INTERP, R, 0x200, 0x40_0200, interp.len() as u64),
            load(R | X, 0, 0x40_0000, 0x1010, 0x1010),
        ];
        let mut b = build(2, 0x40_1000, &phdrs, 0x1010);
        b[0x200..0x200 + interp.len()].copy_from_slice(interp);
        let e = err(&b);
        assert_eq!(
            e,
            ElfError::Dynamic {
                interpreter: Some("/lib/ld-musl-x86_64.so.1".into()),
                needed: vec![]
            }
        );
        let msg = e.to_string();
        assert!(
            msg.contains("/lib/ld-musl-x86_64.so.1")
                && msg.contains("link with -static (musl-gcc -static, or gcc -static)"),
            "{msg}"
        );
    }

    #[test]
    fn needed_libraries_mean_dynamic() {
        // A PIE without PT_INTERP whose dynamic section still lists DT_NEEDED.
        let phdrs = [
            load(R | W, 0, 0, 0x400, 0x400),
            other(PT_DYNAMIC, R | W, 0x100, 0x100, 0x40),
        ];
        let mut b = build(3, 0x10, &phdrs, 0x400);
        for (i, (tag, val)) in [(5u64, 0x300u64), (10, 0x20), (1, 1), (0, 0)]
            .iter()
            .enumerate()
        {
            put64(&mut b, 0x100 + 16 * i, *tag);
            put64(&mut b, 0x108 + 16 * i, *val);
        }
        b[0x300..0x30b].copy_from_slice(b"\0libfoo.so\0");
        let e = err(&b);
        assert_eq!(
            e,
            ElfError::Dynamic {
                interpreter: None,
                needed: vec!["libfoo.so".into()]
            }
        );
        assert!(e.to_string().contains("needs libfoo.so"), "{e}");
    }

    #[test]
    fn corrupt_dynamic_is_an_error_not_a_panic() {
        let mut b = tiny_pie();
        put64(&mut b, 0x1900 + 8, 0x9_0000); // DT_RELA outside every segment
        assert!(matches!(err(&b), ElfError::BadDynamic { .. }));
        let mut b = tiny_pie();
        put64(&mut b, 0x1980, 0x9_0000); // relocation target outside the segments
        assert!(matches!(err(&b), ElfError::BadDynamic { .. }));
        // Every prefix of a valid file is refused cleanly or parsed.
        let b = tiny_pie();
        for len in 0..b.len() {
            let _ = parse(&b[..len]);
        }
    }

    #[test]
    fn symbolizer_finds_nearest_preceding() {
        let s = Symbolizer {
            symbols: vec![
                (0x1000, 0x10, "a".into()),
                (0x1010, 0, "b".into()),
                (0x2000, 0x100, "c".into()),
            ],
            bounds: (0x1000, 0x3000),
        };
        assert_eq!(s.lookup(0x1000, 0), Some(("a", 0)));
        assert_eq!(s.lookup(0x100f, 0), Some(("a", 0xf)));
        assert_eq!(s.lookup(0x1fff, 0), Some(("b", 0xfef)));
        assert_eq!(s.lookup(0x5555_5555_6004, 0x5555_5555_4000), Some(("c", 4)));
        assert_eq!(s.lookup(0xfff, 0), None);
        assert_eq!(s.lookup(0x3000, 0), None);
        assert_eq!(s.lookup(0x10, 0x1000), None);
    }

    #[test]
    fn symbolizer_on_a_real_binary() {
        let Some(bytes) = compile("musl-gcc", &["-static", "-O1"], HELLO_C) else {
            std::eprintln!("musl-gcc not found: skipped");
            return;
        };
        let s = Symbolizer::new(&bytes).expect("symbols");
        let elf = Elf::parse(&bytes).unwrap();
        let main = elf
            .syms
            .iter()
            .find(|sym| elf.strtab.get_at(sym.st_name) == Some("main"))
            .unwrap();
        assert_eq!(s.lookup(main.st_value + 3, 0), Some(("main", 3)));
        let counter = elf
            .syms
            .iter()
            .find(|sym| elf.strtab.get_at(sym.st_name) == Some("counter"))
            .unwrap();
        assert_eq!(s.lookup(counter.st_value, 0), Some(("counter", 0)));
        assert!(Symbolizer::new(b"not an elf").is_none());
    }
}

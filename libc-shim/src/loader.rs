//! Loads the app ELF into the address space and builds its initial stack.
//!
//! [`load`] does what Linux's `load_elf_binary` does for a static program: maps each
//! `PT_LOAD` (at its link address for `ET_EXEC`, at [`layout::PIE_BASE`] for a static-PIE),
//! copies the file bytes and leaves bss zero, applies `R_X86_64_RELATIVE` relocations, sets
//! the final page protection, places brk after the program, and writes argc/argv/envp/auxv
//! on a fresh stack. It goes through [`Mm`] and the [`Platform`] only; it never touches the
//! CPU. Validation of the file itself is [`crate::elf`]'s job.

use alloc::vec::Vec;

use crate::elf::{self, ElfError, ElfKind};
use crate::errno::Errno;
use crate::mm::{Mm, VmaKind, layout};
use crate::platform::{PAGE_SIZE, Platform, Prot};
use crate::stack::{self, AuxInfo, ProgramAux};

/// Why the app could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Elf(#[from] ElfError),
    #[error("app does not fit in guest memory: raise --mem")]
    OutOfMemory,
    #[error(
        "mapping the app failed with {0}: the ELF asks for an address Kiln cannot map, relink it"
    )]
    Map(Errno),
    #[error(
        "the program's segments ({start:#x}..{end:#x}) overlap the stack region: link the program at a lower address"
    )]
    OverlapsStack { start: u64, end: u64 },
    #[error(
        "arguments and environment take {size} bytes, more than the stack holds: pass fewer or shorter ones"
    )]
    ArgumentsTooLarge { size: u64 },
}

impl From<Errno> for LoadError {
    fn from(e: Errno) -> Self {
        if e == Errno::ENOMEM {
            LoadError::OutOfMemory
        } else {
            LoadError::Map(e)
        }
    }
}

/// Where the loaded program starts and what the kernel must set up to enter it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedProgram {
    /// Address to jump to (entry + bias).
    pub entry: u64,
    /// `rsp` at entry, pointing at argc.
    pub stack_pointer: u64,
    /// What was added to every link address (0 for `ET_EXEC`).
    pub load_bias: u64,
    /// Where brk starts.
    pub brk_base: u64,
}

fn page_down(x: u64) -> u64 {
    x & !(PAGE_SIZE - 1)
}

fn page_up(x: u64) -> u64 {
    (x + PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}

/// Loads `elf_bytes` into `mm` and writes the initial stack; the result says where to enter.
pub fn load<P: Platform>(
    platform: &P,
    mm: &mut Mm,
    elf_bytes: &[u8],
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
    aux: &AuxInfo,
) -> Result<LoadedProgram, LoadError> {
    let info = elf::parse(elf_bytes)?;
    let (low, high) = info.bounds();
    let bias = match info.kind {
        ElfKind::Exec => 0,
        ElfKind::StaticPie => layout::PIE_BASE - page_down(low),
    };
    let stack_bottom = layout::STACK_TOP - layout::STACK_SIZE;
    if high + bias > stack_bottom {
        return Err(LoadError::OverlapsStack {
            start: low + bias,
            end: high + bias,
        });
    }

    // Page ranges of the segments with their protection; neighbours sharing a page are
    // mapped once, so the second segment cannot wipe the first one's bytes.
    let ranges: Vec<(u64, u64, Prot)> = info
        .segments
        .iter()
        .filter(|s| s.memsz > 0)
        .map(|s| (page_down(s.vaddr + bias), page_up(s.end() + bias), s.prot))
        .collect();
    for (start, end) in merged(&ranges) {
        mm.map_fixed(
            platform,
            start,
            end - start,
            Prot::READ | Prot::WRITE,
            VmaKind::Program,
        )?;
    }
    for s in info.segments.iter().filter(|s| s.filesz > 0) {
        let file = &elf_bytes[s.file_offset as usize..(s.file_offset + s.filesz) as usize];
        platform.write_app(s.vaddr + bias, file)?;
    }
    // RELA: the value does not depend on what is in memory, so a program that applies its
    // own relocations again writes the same values.
    for &(offset, addend) in &info.relative_relocs {
        let value = bias.wrapping_add_signed(addend);
        platform.write_app(bias + offset, &value.to_le_bytes())?;
    }
    for (start, end, prot) in page_protections(&ranges) {
        mm.protect(platform, start, end - start, prot)?;
    }

    let brk_base = page_up(high + bias);
    mm.set_brk_base(brk_base);

    let mut stack_prot = Prot::READ | Prot::WRITE;
    if info.stack_exec {
        stack_prot |= Prot::EXEC;
    }
    // The stack costs only the pages the program touches: committed on first touch.
    mm.reserve(
        platform,
        stack_bottom,
        layout::STACK_SIZE,
        stack_prot,
        VmaKind::Stack,
    )?;
    let program = ProgramAux {
        phdr: info.phdr_vaddr.map_or(0, |p| p + bias),
        phent: u64::from(info.phent),
        phnum: u64::from(info.phnum),
        entry: info.entry + bias,
        base: 0,
    };
    let initial = stack::build(layout::STACK_TOP, argv, envp, execfn, &program, aux);
    // Leave at least a quarter of the stack to the program itself.
    let size = initial.bytes.len() as u64;
    if size > layout::STACK_SIZE / 4 * 3 {
        return Err(LoadError::ArgumentsTooLarge { size });
    }
    mm.populate(platform, initial.base, size)?;
    platform.write_app(initial.base, &initial.bytes)?;

    Ok(LoadedProgram {
        entry: info.entry + bias,
        stack_pointer: initial.rsp,
        load_bias: bias,
        brk_base,
    })
}

/// The union of `[start, end)` ranges as sorted, disjoint, non-touching ranges.
fn merged(ranges: &[(u64, u64, Prot)]) -> Vec<(u64, u64)> {
    let mut sorted: Vec<(u64, u64)> = ranges.iter().map(|&(s, e, _)| (s, e)).collect();
    sorted.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in sorted {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Splits the ranges at every boundary and gives each piece the union of the protections of
/// the segments covering it (a page shared by text and data gets both).
fn page_protections(ranges: &[(u64, u64, Prot)]) -> Vec<(u64, u64, Prot)> {
    let mut cuts: Vec<u64> = ranges.iter().flat_map(|&(s, e, _)| [s, e]).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let mut covering = ranges
            .iter()
            .filter(|&&(s, e, _)| s <= a && b <= e)
            .peekable();
        if covering.peek().is_none() {
            continue;
        }
        let prot = covering.fold(Prot::empty(), |acc, &(_, _, p)| acc | p);
        out.push((a, b, prot));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::test_elf;
    use crate::stack::auxv;
    use crate::testing::FakePlatform;
    use std::collections::BTreeMap;

    const RX: Prot = Prot::READ.union(Prot::EXEC);
    const RW: Prot = Prot::READ.union(Prot::WRITE);

    fn aux_info() -> AuxInfo {
        AuxInfo {
            hwcap: 0xbfeb_fbff,
            hwcap2: 2,
            clktck: 100,
            minsigstksz: 2048,
            random: [7; 16],
            uid: 0,
            gid: 0,
            vdso: 0,
        }
    }

    fn read_u64(fake: &FakePlatform, addr: u64) -> u64 {
        let mut b = [0u8; 8];
        fake.read_app(addr, &mut b).unwrap();
        u64::from_le_bytes(b)
    }

    fn read(fake: &FakePlatform, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        fake.read_app(addr, &mut b).unwrap();
        b
    }

    /// argc, argv and auxv as the app finds them at `rsp`.
    fn stack_view(fake: &FakePlatform, rsp: u64) -> (u64, BTreeMap<u64, u64>) {
        let argc = read_u64(fake, rsp);
        let mut at = rsp + 8 * (argc + 2);
        while read_u64(fake, at) != 0 {
            at += 8;
        }
        at += 8;
        let mut aux = BTreeMap::new();
        loop {
            let (k, v) = (read_u64(fake, at), read_u64(fake, at + 8));
            if k == 0 {
                break;
            }
            aux.insert(k, v);
            at += 16;
        }
        (argc, aux)
    }

    #[test]
    fn loads_a_tiny_static_exec() {
        let bytes = test_elf::tiny_exec(0x40_3000);
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        let argv: [&[u8]; 2] = [b"/app", b"x"];
        let p = load(
            &fake,
            &mut mm,
            &bytes,
            &argv,
            &[b"A=1"],
            b"/app",
            &aux_info(),
        )
        .unwrap();
        assert_eq!(p.entry, 0x40_1000);
        assert_eq!(p.load_bias, 0);
        assert_eq!(p.brk_base, 0x40_5000, "page end of the bss");
        assert_eq!(mm.current_brk(), 0x40_5000);
        assert_eq!(p.stack_pointer % 16, 0);

        assert_eq!(fake.prot_of(0x40_0000), Some(RX));
        assert_eq!(fake.prot_of(0x40_1000), Some(RX));
        assert_eq!(
            fake.prot_of(0x40_2000),
            None,
            "gap between segments stays unmapped"
        );
        assert_eq!(fake.prot_of(0x40_3000), Some(RW));
        assert_eq!(fake.prot_of(0x40_4000), Some(RW));
        assert_eq!(read(&fake, 0x40_1000, 4), test_elf::CODE);
        assert_eq!(read(&fake, 0x40_3000, test_elf::DATA.len()), test_elf::DATA);
        assert!(
            read(&fake, 0x40_3000 + 0x100, 0x1f00)
                .iter()
                .all(|&b| b == 0),
            "bss is zero"
        );
        assert_eq!(
            read(&fake, 0x40_0000, 4),
            b"\x7fELF",
            "headers are part of the text segment"
        );

        let (argc, aux) = stack_view(&fake, p.stack_pointer);
        assert_eq!(argc, 2);
        assert_eq!(aux[&auxv::AT_ENTRY], 0x40_1000);
        assert_eq!(aux[&auxv::AT_PHDR], 0x40_0040);
        assert_eq!(aux[&auxv::AT_PHNUM], 3);
        assert_eq!(aux[&auxv::AT_PHENT], 56);
        assert_eq!(read(&fake, aux[&auxv::AT_RANDOM], 16), [7; 16]);

        let kinds: Vec<_> = mm.vmas().map(|(s, e, p, k)| (s, e, p, k.clone())).collect();
        assert_eq!(
            kinds,
            [
                (0x40_0000, 0x40_2000, RX, VmaKind::Program),
                (0x40_3000, 0x40_5000, RW, VmaKind::Program),
                (
                    layout::STACK_TOP - layout::STACK_SIZE,
                    layout::STACK_TOP,
                    RW,
                    VmaKind::Stack
                ),
            ]
        );
        // The heap grows right after the program.
        assert_eq!(mm.brk(&fake, 0x40_5000 + 10), 0x40_5000 + 10);
        assert_eq!(fake.prot_of(0x40_5000), Some(RW));
    }

    #[test]
    fn shared_page_gets_the_union_and_keeps_both_contents() {
        // Data starts in the page where the text ends.
        let bytes = test_elf::tiny_exec(0x40_1800);
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        load(
            &fake,
            &mut mm,
            &bytes,
            &[b"/app"],
            &[],
            b"/app",
            &aux_info(),
        )
        .unwrap();
        assert_eq!(fake.prot_of(0x40_0000), Some(RX));
        assert_eq!(fake.prot_of(0x40_1000), Some(RX | Prot::WRITE));
        assert_eq!(fake.prot_of(0x40_2000), Some(RW));
        assert_eq!(read(&fake, 0x40_1000, 4), test_elf::CODE);
        assert_eq!(read(&fake, 0x40_1800, test_elf::DATA.len()), test_elf::DATA);
    }

    #[test]
    fn static_pie_is_biased_and_relocated() {
        let bytes = test_elf::tiny_pie();
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        let p = load(
            &fake,
            &mut mm,
            &bytes,
            &[b"/pie"],
            &[],
            b"/pie",
            &aux_info(),
        )
        .unwrap();
        let bias = layout::PIE_BASE;
        assert_eq!(p.load_bias, bias);
        assert_eq!(p.entry, bias + 0x1000);
        assert_eq!(
            read_u64(&fake, bias + test_elf::PIE_RELOC_AT),
            bias + test_elf::PIE_RELOC_ADDEND
        );
        assert_eq!(
            read_u64(&fake, bias + test_elf::PIE_IRELATIVE_AT),
            0,
            "only RELATIVE is applied"
        );
        assert_eq!(fake.prot_of(bias), Some(RX));
        assert_eq!(fake.prot_of(bias + 0x2000), Some(RW));
        assert_eq!(p.brk_base, bias + 0x4000);
        let (_, aux) = stack_view(&fake, p.stack_pointer);
        assert_eq!(aux[&auxv::AT_PHDR], bias + 0x40);
        assert_eq!(aux[&auxv::AT_ENTRY], bias + 0x1000);
        assert_eq!(aux[&auxv::AT_BASE], 0);
    }

    #[test]
    fn out_of_memory_names_the_fix() {
        let bytes = test_elf::tiny_exec(0x40_3000);
        let fake = FakePlatform::default();
        fake.frames_left.set(1);
        let mut mm = Mm::new();
        let e = load(
            &fake,
            &mut mm,
            &bytes,
            &[b"/app"],
            &[],
            b"/app",
            &aux_info(),
        )
        .unwrap_err();
        assert_eq!(e, LoadError::OutOfMemory);
        assert!(e.to_string().contains("raise --mem"));
        let e = load(&fake, &mut Mm::new(), b"nope", &[], &[], b"", &aux_info()).unwrap_err();
        assert!(matches!(e, LoadError::Elf(ElfError::NotElf { .. })), "{e}");
    }

    #[test]
    fn huge_arguments_are_refused() {
        let bytes = test_elf::tiny_exec(0x40_3000);
        let fake = FakePlatform::default();
        let big = vec![b'a'; 7 << 20];
        let e = load(
            &fake,
            &mut Mm::new(),
            &bytes,
            &[&big],
            &[],
            b"/app",
            &aux_info(),
        )
        .unwrap_err();
        assert!(matches!(e, LoadError::ArgumentsTooLarge { .. }), "{e}");
    }

    #[test]
    fn real_musl_static_binary() {
        let Some(bytes) = test_elf::compile("musl-gcc", &["-static", "-O1"], test_elf::HELLO_C)
        else {
            eprintln!("musl-gcc not found: skipped");
            return;
        };
        let info = elf::parse(&bytes).unwrap();
        assert_eq!(info.kind, ElfKind::Exec);
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        let p = load(
            &fake,
            &mut mm,
            &bytes,
            &[b"/hello"],
            &[b"TERM=dumb"],
            b"/hello",
            &aux_info(),
        )
        .unwrap();
        assert_eq!(p.load_bias, 0);
        assert_eq!(info.bounds().0, 0x40_0000, "ET_EXEC loads at 0x400000");
        assert_eq!(fake.prot_of(0x40_0000), Some(Prot::READ));
        // The text page (holding the entry point) is R+X, data R+W.
        assert_eq!(fake.prot_of(p.entry), Some(RX));
        let data = info
            .segments
            .iter()
            .find(|s| s.prot.contains(Prot::WRITE))
            .expect("a data segment");
        assert_eq!(fake.prot_of(data.vaddr + data.memsz - 1), Some(RW));
        assert_eq!(p.brk_base, (data.vaddr + data.memsz + 0xfff) & !0xfff);
        // Every file byte is where the program expects it.
        for s in &info.segments {
            let want = &bytes[s.file_offset as usize..(s.file_offset + s.filesz) as usize];
            assert_eq!(read(&fake, s.vaddr, want.len()), want);
        }
        let (argc, aux) = stack_view(&fake, p.stack_pointer);
        assert_eq!(argc, 1);
        let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
        let table = &bytes[phoff..phoff + 56 * info.phnum as usize];
        assert_eq!(
            read(&fake, aux[&auxv::AT_PHDR], table.len()),
            table,
            "AT_PHDR points at the program headers"
        );
    }

    #[test]
    fn real_glibc_static_pie() {
        let Some(bytes) = test_elf::compile("gcc", &["-static-pie", "-O1"], test_elf::HELLO_C)
        else {
            eprintln!("gcc not found: skipped");
            return;
        };
        let info = elf::parse(&bytes).unwrap();
        assert_eq!(info.kind, ElfKind::StaticPie);
        assert!(
            info.relative_relocs.len() > 100,
            "glibc static-PIE has many RELATIVE relocations"
        );
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        let p = load(
            &fake,
            &mut mm,
            &bytes,
            &[b"/pie"],
            &[],
            b"/pie",
            &aux_info(),
        )
        .unwrap();
        assert_eq!(p.load_bias, layout::PIE_BASE);
        assert_eq!(p.entry, info.entry + layout::PIE_BASE);
        assert_eq!(fake.prot_of(p.entry), Some(RX));
        for &(offset, addend) in &info.relative_relocs {
            assert_eq!(
                read_u64(&fake, p.load_bias + offset),
                p.load_bias.wrapping_add_signed(addend)
            );
        }
        let (_, aux) = stack_view(&fake, p.stack_pointer);
        let phoff = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
        assert_eq!(
            read(&fake, aux[&auxv::AT_PHDR], 56),
            &bytes[phoff..phoff + 56]
        );
    }

    #[test]
    fn real_dynamic_binary_is_refused() {
        let Some(bytes) = test_elf::compile("gcc", &["-O1"], test_elf::HELLO_C) else {
            eprintln!("gcc not found: skipped");
            return;
        };
        let e = load(
            &FakePlatform::default(),
            &mut Mm::new(),
            &bytes,
            &[],
            &[],
            b"",
            &aux_info(),
        )
        .unwrap_err();
        let LoadError::Elf(ElfError::Dynamic {
            interpreter,
            needed,
        }) = &e
        else {
            panic!("{e}")
        };
        assert_eq!(interpreter.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert!(needed.iter().any(|n| n == "libc.so.6"), "{needed:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("/lib64/ld-linux-x86-64.so.2") && msg.contains("-static"),
            "{msg}"
        );
    }

    #[test]
    fn protection_pieces() {
        let r = [
            (0, 0x2000, RX),
            (0x1000, 0x3000, RW),
            (0x5000, 0x6000, Prot::READ),
        ];
        assert_eq!(merged(&r), [(0, 0x3000), (0x5000, 0x6000)]);
        assert_eq!(
            page_protections(&r),
            [
                (0, 0x1000, RX),
                (0x1000, 0x2000, RX | RW),
                (0x2000, 0x3000, RW),
                (0x5000, 0x6000, Prot::READ)
            ]
        );
    }
}

//! `bake inspect`: what is inside an image, or the facts of an ELF program.

use std::fmt::Write as _;
use std::path::Path;

use libc_shim::Prot;
use libc_shim::elf::{ElfInfo, ElfKind};

use crate::baking;

pub fn inspect(path: &Path) -> anyhow::Result<u8> {
    let bytes = baking::read_input(path)?;
    let report = match baking::find_image(path, &bytes)? {
        Some(location) => {
            let payload = &bytes[location.offset..location.offset + location.len];
            let parsed = baking::check_image(path, payload)?;
            let elf = baking::check_app(Path::new(parsed.app_path), parsed.app_elf)?;
            let mut out = String::new();
            row(
                &mut out,
                "image",
                format!("{}, {} bytes", path.display(), bytes.len()),
            );
            row(&mut out, "kiln version", parsed.kiln_version);
            row(
                &mut out,
                "kernel",
                format!("{} bytes (with padding)", location.offset),
            );
            row(
                &mut out,
                "payload",
                format!(
                    "{} bytes, loaded at physical {:#x}",
                    location.len, location.paddr
                ),
            );
            row(&mut out, "app path", parsed.app_path);
            out.push_str(&elf_facts(parsed.app_elf.len(), &elf));
            row(&mut out, "argv", quoted(&parsed.argv));
            row(&mut out, "env", quoted(&parsed.envp));
            match parsed.rootfs {
                None => row(&mut out, "rootfs", "none (only Kiln's default /etc, /dev, /proc, /sys, /tmp)"),
                Some(archive) => match crate::rootfs::summary(archive) {
                    Ok((files, dirs, others, bytes)) => row(
                        &mut out,
                        "rootfs",
                        format!("{} bytes: {files} files ({bytes} bytes), {dirs} directories, {others} other entries", archive.len()),
                    ),
                    Err(e) => row(&mut out, "rootfs", format!("{} bytes, unreadable: {e}", archive.len())),
                },
            }
            out
        }
        None => {
            let elf = baking::check_app(path, &bytes)?;
            let mut out = format!(
                "{} is not a Kiln image but an ELF program that can be baked (bake build {} -o IMAGE)\n",
                path.display(),
                path.display()
            );
            out.push_str(&elf_facts(bytes.len(), &elf));
            out
        }
    };
    print!("{report}");
    Ok(0)
}

fn row(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{name:<14} {value}");
}

fn elf_facts(len: usize, elf: &ElfInfo) -> String {
    let mut out = String::new();
    let kind = match elf.kind {
        ElfKind::Exec => "static",
        ElfKind::StaticPie => "static-PIE",
    };
    row(
        &mut out,
        "app ELF",
        format!("{len} bytes, {kind} x86_64, entry {:#x}", elf.entry),
    );
    row(
        &mut out,
        "segments",
        format!("{:<18}  {:<12}  flags", "vaddr", "memsz"),
    );
    for s in &elf.segments {
        let flag = |p: Prot, c: char| if s.prot.contains(p) { c } else { '-' };
        let flags: String = [
            flag(Prot::READ, 'r'),
            flag(Prot::WRITE, 'w'),
            flag(Prot::EXEC, 'x'),
        ]
        .iter()
        .collect();
        row(
            &mut out,
            "",
            format!("{:#018x}  {:#012x}  {flags}", s.vaddr, s.memsz),
        );
    }
    out
}

fn quoted(strings: &[&[u8]]) -> String {
    strings
        .iter()
        .map(|s| format!("\"{}\"", s.escape_ascii()))
        .collect::<Vec<_>>()
        .join(" ")
}

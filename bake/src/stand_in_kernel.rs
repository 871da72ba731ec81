//! A stand-in for the Kiln kernel, for testing bake without it: a tiny PVH-bootable ELF,
//! assembled here byte by byte, that speaks the log-channel protocol.
//!
//! At its PVH entry (32-bit protected mode, paging off) it writes its log lines to the
//! debugcon port 0xe9, its console text to COM1 and its stderr text to COM2, checks that the payload's magic is at
//! the physical address bake computed, and then ends as told: `KILN-EXIT n` and n written to
//! isa-debug-exit, or a triple fault without a record. If the payload is not where it should
//! be, it logs `ERROR standin: no payload` and exits through isa-debug-exit with 0x55 and no
//! record.

/// Physical (and virtual) address of the stand-in's only `PT_LOAD`.
pub const KERNEL_BASE: u64 = 0x10_0000;
/// Its memory size, `.bss` included: the payload goes at the next page.
pub const KERNEL_MEMSZ: u64 = 0x3000;
/// Where code and data sit in the file.
const SEGMENT_OFFSET: u64 = 0x1000;
/// Offset of the data within the segment (the code is shorter than this).
const DATA_AT: u64 = 0x400;

/// How the stand-in ends.
#[derive(Debug, Clone)]
#[allow(dead_code)] // The unit tests use only some; tests/stand_in.rs uses all.
pub enum Ending {
    /// `KILN-EXIT n`, then n to isa-debug-exit.
    Exit(u8),
    /// `KILN-PANIC`, then 1 to isa-debug-exit.
    Panic,
    /// A triple fault, with no record.
    TripleFault,
    /// Halts forever.
    Hang,
}

/// What the stand-in does.
#[derive(Debug, Clone)]
pub struct StandIn {
    /// Bytes written to the log channel first (whole lines, each ending in `\n`).
    pub log: Vec<u8>,
    /// Bytes written to the serial console.
    pub console: Vec<u8>,
    /// Bytes written to COM2, the app's stderr.
    pub stderr: Vec<u8>,
    pub ending: Ending,
}

impl StandIn {
    pub fn exit(status: u8) -> StandIn {
        StandIn {
            log: Vec::new(),
            console: Vec::new(),
            stderr: Vec::new(),
            ending: Ending::Exit(status),
        }
    }

    /// The ELF file.
    pub fn build(&self) -> Vec<u8> {
        let payload_paddr = (KERNEL_BASE + KERNEL_MEMSZ).next_multiple_of(4096) as u32;
        let mut tail = Vec::new();
        match self.ending {
            Ending::Exit(n) => tail.extend_from_slice(format!("KILN-EXIT {n}\n").as_bytes()),
            Ending::Panic => tail.extend_from_slice(b"KILN-PANIC\n"),
            Ending::TripleFault | Ending::Hang => {}
        }
        let bad = b"ERROR standin: no payload\n";
        let zero_idt = [0u8; 8];
        // Data: log, console, tail, bad, zero idt descriptor.
        let mut data = Vec::new();
        let mut place = |bytes: &[u8]| {
            let addr = (KERNEL_BASE + DATA_AT) as u32 + data.len() as u32;
            data.extend_from_slice(bytes);
            (addr, bytes.len() as u32)
        };
        let log = place(&self.log);
        let console = place(&self.console);
        let stderr = place(&self.stderr);
        let tail = place(&tail);
        let bad = place(bad);
        let idt = place(&zero_idt);

        let mut code = Code::default();
        code.bytes.push(0xfc); // cld
        code.out_string(0xe9, log);
        code.out_string(0x3f8, console);
        code.out_string(0x2f8, stderr);
        // cmp dword [payload_paddr], "KILN"; jne bad
        code.bytes.extend_from_slice(&[0x81, 0x3d]);
        code.u32(payload_paddr);
        code.u32(u32::from_le_bytes(*b"KILN"));
        code.bytes.extend_from_slice(&[0x75, 0x00]);
        let jne_at = code.bytes.len();
        code.out_string(0xe9, tail);
        match self.ending {
            Ending::Exit(n) => code.debug_exit(u32::from(n)),
            Ending::Panic => code.debug_exit(1),
            Ending::TripleFault => {
                // lidt [zero descriptor]; int3
                code.bytes.extend_from_slice(&[0x0f, 0x01, 0x1d]);
                code.u32(idt.0);
                code.bytes.push(0xcc);
            }
            Ending::Hang => code.halt(),
        }
        code.bytes[jne_at - 1] = u8::try_from(code.bytes.len() - jne_at).unwrap();
        code.out_string(0xe9, bad);
        code.debug_exit(0x55);
        assert!(code.bytes.len() as u64 <= DATA_AT);

        let mut segment = code.bytes;
        segment.resize(DATA_AT as usize, 0x90);
        segment.extend_from_slice(&data);
        assert!(segment.len() as u64 <= KERNEL_MEMSZ);
        elf(&segment)
    }
}

/// A little 32-bit machine code.
#[derive(Default)]
struct Code {
    bytes: Vec<u8>,
}

impl Code {
    fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// mov dx, port; mov esi, addr; mov ecx, len; rep outsb
    fn out_string(&mut self, port: u16, (addr, len): (u32, u32)) {
        self.bytes.extend_from_slice(&[0x66, 0xba]);
        self.bytes.extend_from_slice(&port.to_le_bytes());
        self.bytes.push(0xbe);
        self.u32(addr);
        self.bytes.push(0xb9);
        self.u32(len);
        self.bytes.extend_from_slice(&[0xf3, 0x6e]);
    }

    /// mov dx, 0xf4; mov eax, value; out dx, eax; then halt.
    fn debug_exit(&mut self, value: u32) {
        self.bytes
            .extend_from_slice(&[0x66, 0xba, 0xf4, 0x00, 0xb8]);
        self.u32(value);
        self.bytes.push(0xef);
        self.halt();
    }

    /// cli; hlt; jmp back to hlt
    fn halt(&mut self) {
        self.bytes.extend_from_slice(&[0xfa, 0xf4, 0xeb, 0xfd]);
    }
}

/// An ELF64 with one RWX `PT_LOAD` holding `segment` at [`KERNEL_BASE`] and a `PT_NOTE` with
/// the Xen PVH entry note.
fn elf(segment: &[u8]) -> Vec<u8> {
    const PHOFF: u64 = 64;
    const NOTE_AT: u64 = PHOFF + 2 * 56;
    let mut note = Vec::new();
    note.extend_from_slice(&4u32.to_le_bytes()); // namesz
    note.extend_from_slice(&8u32.to_le_bytes()); // descsz
    note.extend_from_slice(&18u32.to_le_bytes()); // XEN_ELFNOTE_PHYS32_ENTRY
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&KERNEL_BASE.to_le_bytes());

    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out.extend_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&KERNEL_BASE.to_le_bytes()); // e_entry
    out.extend_from_slice(&PHOFF.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for half in [64u16, 56, 2, 64, 0, 0] {
        // e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
        out.extend_from_slice(&half.to_le_bytes());
    }
    let phdr = |out: &mut Vec<u8>, kind: u32, flags: u32, words: [u64; 6]| {
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        for w in words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    };
    let len = segment.len() as u64;
    phdr(
        &mut out,
        1,
        7,
        [
            SEGMENT_OFFSET,
            KERNEL_BASE,
            KERNEL_BASE,
            len,
            KERNEL_MEMSZ,
            4096,
        ],
    );
    let nlen = note.len() as u64;
    phdr(&mut out, 4, 4, [NOTE_AT, 0, 0, nlen, nlen, 4]);
    out.extend_from_slice(&note);
    out.resize(SEGMENT_OFFSET as usize, 0);
    out.extend_from_slice(segment);
    out
}

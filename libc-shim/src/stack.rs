//! The initial stack (argc, argv, envp, auxv) laid out as Linux does.
//!
//! [`build`] produces the bytes of the top of the app's stack and the `rsp` to enter with,
//! following `create_elf_tables` in Linux's `fs/binfmt_elf.c`. From the top down:
//!
//! ```text
//! stack_top      8 zero bytes (Linux keeps the top word empty)
//!                execfn string (NUL-terminated)               <- AT_EXECFN
//!                envp strings, then below them argv strings (argv[0] lowest)
//!                (aligned down to 16)
//!                "x86_64\0"                                     <- AT_PLATFORM
//!                16 random bytes                                <- AT_RANDOM
//!                padding, so that rsp ends 16-byte aligned
//!                auxv pairs, ending with AT_NULL
//!                envp pointers, NULL
//!                argv pointers, NULL
//! rsp ->         argc
//! ```
//!
//! It only computes bytes; the loader maps the stack and writes them.

use alloc::vec;
use alloc::vec::Vec;

use crate::platform::PAGE_SIZE;

/// Auxiliary vector entry types (`AT_*` from `linux/auxvec.h`).
pub mod auxv {
    pub const AT_NULL: u64 = 0;
    pub const AT_PHDR: u64 = 3;
    pub const AT_PHENT: u64 = 4;
    pub const AT_PHNUM: u64 = 5;
    pub const AT_PAGESZ: u64 = 6;
    pub const AT_BASE: u64 = 7;
    pub const AT_FLAGS: u64 = 8;
    pub const AT_ENTRY: u64 = 9;
    pub const AT_UID: u64 = 11;
    pub const AT_EUID: u64 = 12;
    pub const AT_GID: u64 = 13;
    pub const AT_EGID: u64 = 14;
    pub const AT_PLATFORM: u64 = 15;
    pub const AT_HWCAP: u64 = 16;
    pub const AT_CLKTCK: u64 = 17;
    pub const AT_SECURE: u64 = 23;
    pub const AT_RANDOM: u64 = 25;
    pub const AT_HWCAP2: u64 = 26;
    pub const AT_EXECFN: u64 = 31;
    pub const AT_SYSINFO_EHDR: u64 = 33;
    pub const AT_MINSIGSTKSZ: u64 = 51;
}

/// The string `AT_PLATFORM` points at.
pub const PLATFORM: &[u8] = b"x86_64";

/// Machine and identity facts for the auxiliary vector, supplied by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuxInfo {
    /// CPUID leaf 1 EDX, as Linux reports it in `AT_HWCAP`.
    pub hwcap: u64,
    pub hwcap2: u64,
    /// `sysconf(_SC_CLK_TCK)`, 100 on Linux.
    pub clktck: u64,
    /// Smallest signal stack the CPU's signal frame needs (`AT_MINSIGSTKSZ`).
    pub minsigstksz: u64,
    /// The 16 bytes `AT_RANDOM` points at (libc seeds stack protector and pointer guard).
    pub random: [u8; 16],
    pub uid: u32,
    /// Where the vDSO's ELF header is mapped (`AT_SYSINFO_EHDR`); 0: no vDSO, no entry.
    pub vdso: u64,
    pub gid: u32,
}

/// Facts about the loaded program for the auxiliary vector, load bias already applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramAux {
    /// Address of the program headers in memory (`AT_PHDR`).
    pub phdr: u64,
    pub phent: u64,
    pub phnum: u64,
    /// The program's entry point (`AT_ENTRY`).
    pub entry: u64,
    /// Interpreter base (`AT_BASE`): 0, as Kiln runs static programs only.
    pub base: u64,
}

/// The top of the initial stack: `bytes` belong at `[base, base + bytes.len())`, which ends
/// at the `stack_top` given to [`build`]; the app starts with `rsp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialStack {
    pub base: u64,
    pub bytes: Vec<u8>,
    pub rsp: u64,
}

/// Lays out the initial stack below `stack_top` (16-byte aligned). Strings are given without
/// their terminating NUL; one is added.
pub fn build(
    stack_top: u64,
    argv: &[&[u8]],
    envp: &[&[u8]],
    execfn: &[u8],
    program: &ProgramAux,
    aux: &AuxInfo,
) -> InitialStack {
    let stack_top = stack_top & !15;
    // Strings, highest first, as Linux copies them: execfn, then envp and argv so that
    // argv[0] ends up lowest.
    let mut p = stack_top - 8;
    let mut place = |s: &[u8]| {
        p -= s.len() as u64 + 1;
        p
    };
    let execfn_at = place(execfn);
    let mut env_at: Vec<u64> = envp.iter().rev().map(|s| place(s)).collect();
    env_at.reverse();
    let mut arg_at: Vec<u64> = argv.iter().rev().map(|s| place(s)).collect();
    arg_at.reverse();

    p &= !15;
    p -= PLATFORM.len() as u64 + 1;
    let platform_at = p;
    p -= aux.random.len() as u64;
    let random_at = p;

    let mut auxv: Vec<(u64, u64)> = vec![
        (auxv::AT_MINSIGSTKSZ, aux.minsigstksz),
        (auxv::AT_HWCAP, aux.hwcap),
        (auxv::AT_PAGESZ, PAGE_SIZE),
        (auxv::AT_CLKTCK, aux.clktck),
        (auxv::AT_PHDR, program.phdr),
        (auxv::AT_PHENT, program.phent),
        (auxv::AT_PHNUM, program.phnum),
        (auxv::AT_BASE, program.base),
        (auxv::AT_FLAGS, 0),
        (auxv::AT_ENTRY, program.entry),
        (auxv::AT_UID, u64::from(aux.uid)),
        (auxv::AT_EUID, u64::from(aux.uid)),
        (auxv::AT_GID, u64::from(aux.gid)),
        (auxv::AT_EGID, u64::from(aux.gid)),
        (auxv::AT_SECURE, 0),
        (auxv::AT_RANDOM, random_at),
        (auxv::AT_HWCAP2, aux.hwcap2),
        (auxv::AT_EXECFN, execfn_at),
        (auxv::AT_PLATFORM, platform_at),
    ];
    if aux.vdso != 0 {
        // Where Linux puts it: first, so libcs find the vDSO before they need the clock.
        auxv.insert(0, (auxv::AT_SYSINFO_EHDR, aux.vdso));
    }

    // argc, argv + NULL, envp + NULL, auxv pairs + AT_NULL pair.
    let words = 1 + (argv.len() + 1) + (envp.len() + 1) + 2 * (auxv.len() + 1);
    let rsp = (p - 8 * words as u64) & !15;

    let mut stack = InitialStack {
        base: rsp,
        bytes: vec![0; (stack_top - rsp) as usize],
        rsp,
    };
    let mut words_out = Vec::with_capacity(words);
    words_out.push(argv.len() as u64);
    words_out.extend(arg_at.iter().copied().chain([0]));
    words_out.extend(env_at.iter().copied().chain([0]));
    for (key, value) in auxv.iter().copied().chain([(auxv::AT_NULL, 0)]) {
        words_out.extend([key, value]);
    }
    for (i, w) in words_out.iter().enumerate() {
        stack.put(rsp + 8 * i as u64, &w.to_le_bytes());
    }
    for (s, at) in argv.iter().zip(&arg_at).chain(envp.iter().zip(&env_at)) {
        stack.put(*at, s);
    }
    stack.put(execfn_at, execfn);
    stack.put(platform_at, PLATFORM);
    stack.put(random_at, &aux.random);
    stack
}

impl InitialStack {
    /// Copies `data` to address `at` (NUL terminators are already there: the buffer starts zeroed).
    fn put(&mut self, at: u64, data: &[u8]) {
        let off = (at - self.base) as usize;
        self.bytes[off..off + data.len()].copy_from_slice(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const TOP: u64 = 0x7fff_ffff_e000;

    fn aux_info() -> AuxInfo {
        AuxInfo {
            hwcap: 0x178b_fbff,
            hwcap2: 2,
            clktck: 100,
            minsigstksz: 2048,
            random: core::array::from_fn(|i| 0xa0 + i as u8),
            uid: 1000,
            gid: 100,
            vdso: 0,
        }
    }

    fn program() -> ProgramAux {
        ProgramAux {
            phdr: 0x40_0040,
            phent: 56,
            phnum: 9,
            entry: 0x40_1020,
            base: 0,
        }
    }

    /// argv strings, envp strings, auxv pairs.
    type Parsed = (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<(u64, u64)>);

    /// Reads the stack back the way a libc's `_start` does.
    struct Reader<'a>(&'a InitialStack);

    impl Reader<'_> {
        fn word(&self, at: u64) -> u64 {
            assert!(
                at >= self.0.base && at + 8 <= self.0.base + self.0.bytes.len() as u64,
                "word at {at:#x} outside stack"
            );
            let off = (at - self.0.base) as usize;
            u64::from_le_bytes(self.0.bytes[off..off + 8].try_into().unwrap())
        }
        fn bytes(&self, at: u64, len: usize) -> &[u8] {
            let off = (at - self.0.base) as usize;
            &self.0.bytes[off..off + len]
        }
        fn c_str(&self, at: u64) -> &[u8] {
            let off = (at - self.0.base) as usize;
            let len = self.0.bytes[off..]
                .iter()
                .position(|&b| b == 0)
                .expect("unterminated string");
            &self.0.bytes[off..off + len]
        }
        /// (argv, envp, auxv) as a libc would find them from rsp.
        fn parse(&self) -> Parsed {
            let mut at = self.0.rsp;
            let argc = self.word(at);
            at += 8;
            let argv: Vec<_> = (0..argc)
                .map(|i| self.c_str(self.word(at + 8 * i)).to_vec())
                .collect();
            at += 8 * argc;
            assert_eq!(self.word(at), 0, "argv not NULL-terminated");
            at += 8;
            let mut envp = Vec::new();
            while self.word(at) != 0 {
                envp.push(self.c_str(self.word(at)).to_vec());
                at += 8;
            }
            at += 8;
            let mut auxv = Vec::new();
            loop {
                let (k, v) = (self.word(at), self.word(at + 8));
                at += 16;
                if k == auxv::AT_NULL {
                    break;
                }
                auxv.push((k, v));
            }
            (argv, envp, auxv)
        }
    }

    #[test]
    fn libc_reads_back_argv_envp_auxv() {
        let argv: [&[u8]; 3] = [b"/bin/app", b"--flag", b""];
        let envp: [&[u8]; 2] = [b"PATH=/bin", b"HOME=/"];
        let s = build(TOP, &argv, &envp, b"/bin/app", &program(), &aux_info());
        assert_eq!(s.rsp % 16, 0);
        assert_eq!(s.base + s.bytes.len() as u64, TOP);
        let r = Reader(&s);
        let (args, env, auxv) = r.parse();
        assert_eq!(args, argv.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
        assert_eq!(env, envp.iter().map(|a| a.to_vec()).collect::<Vec<_>>());

        let map: BTreeMap<u64, u64> = auxv.iter().copied().collect();
        assert_eq!(map.len(), auxv.len(), "duplicate auxv keys");
        assert_eq!(map[&auxv::AT_PHDR], 0x40_0040);
        assert_eq!(map[&auxv::AT_PHENT], 56);
        assert_eq!(map[&auxv::AT_PHNUM], 9);
        assert_eq!(map[&auxv::AT_PAGESZ], 4096);
        assert_eq!(map[&auxv::AT_BASE], 0);
        assert_eq!(map[&auxv::AT_FLAGS], 0);
        assert_eq!(map[&auxv::AT_ENTRY], 0x40_1020);
        assert_eq!(map[&auxv::AT_UID], 1000);
        assert_eq!(map[&auxv::AT_EUID], 1000);
        assert_eq!(map[&auxv::AT_GID], 100);
        assert_eq!(map[&auxv::AT_EGID], 100);
        assert_eq!(map[&auxv::AT_HWCAP], 0x178b_fbff);
        assert_eq!(map[&auxv::AT_HWCAP2], 2);
        assert_eq!(map[&auxv::AT_CLKTCK], 100);
        assert_eq!(map[&auxv::AT_SECURE], 0);
        assert_eq!(map[&auxv::AT_MINSIGSTKSZ], 2048);
        assert_eq!(r.c_str(map[&auxv::AT_PLATFORM]), b"x86_64");
        assert_eq!(r.c_str(map[&auxv::AT_EXECFN]), b"/bin/app");
        assert_eq!(r.bytes(map[&auxv::AT_RANDOM], 16), &aux_info().random);
    }

    #[test]
    fn layout_order_matches_linux() {
        let argv: [&[u8]; 2] = [b"a", b"bb"];
        let envp: [&[u8]; 1] = [b"X=1"];
        let s = build(TOP, &argv, &envp, b"/app", &program(), &aux_info());
        let r = Reader(&s);
        let (_, _, auxv) = r.parse();
        let map: BTreeMap<u64, u64> = auxv.iter().copied().collect();
        // execfn at the very top, below the empty top word.
        assert_eq!(map[&auxv::AT_EXECFN], TOP - 8 - 5);
        assert_eq!(r.word(TOP - 8), 0);
        // strings: argv[0] < argv[1] < envp[0] < execfn, contiguous.
        let a0 = r.word(s.rsp + 8);
        let a1 = r.word(s.rsp + 16);
        let e0 = r.word(s.rsp + 32);
        assert_eq!(a1, a0 + 2);
        assert_eq!(e0, a1 + 3);
        assert_eq!(map[&auxv::AT_EXECFN], e0 + 4);
        // platform above random, both below the strings, random 16 bytes just under platform.
        assert!(map[&auxv::AT_PLATFORM] < a0);
        assert_eq!(map[&auxv::AT_RANDOM] + 16, map[&auxv::AT_PLATFORM]);
        // auxv ends before the random bytes.
        let auxv_end = s.rsp + 8 * (1 + 3 + 2) + 16 * (auxv.len() as u64 + 1);
        assert!(auxv_end <= map[&auxv::AT_RANDOM]);
        assert!(
            map[&auxv::AT_RANDOM] - auxv_end < 16,
            "more padding than alignment needs"
        );
        // the entry Linux lists first comes first.
        assert_eq!(auxv[0].0, auxv::AT_MINSIGSTKSZ);
    }

    #[test]
    fn rsp_is_aligned_for_every_count() {
        for argc in 0..6 {
            for envc in 0..6 {
                for extra in 0..17 {
                    let name = vec![b'n'; extra];
                    let argv: Vec<&[u8]> = (0..argc).map(|_| name.as_slice()).collect();
                    let envp: Vec<&[u8]> = (0..envc).map(|_| &b"K=V"[..]).collect();
                    let s = build(TOP, &argv, &envp, &name, &program(), &aux_info());
                    assert_eq!(s.rsp % 16, 0, "argc {argc} envc {envc} len {extra}");
                    let (args, env, _) = Reader(&s).parse();
                    assert_eq!(args.len(), argc);
                    assert_eq!(env.len(), envc);
                    assert!(args.iter().all(|a| *a == name));
                }
            }
        }
    }

    #[test]
    fn empty_argv_and_envp() {
        let s = build(TOP, &[], &[], b"", &program(), &aux_info());
        let (args, env, auxv) = Reader(&s).parse();
        assert!(args.is_empty() && env.is_empty());
        assert_eq!(auxv.len(), 19);
        assert!(auxv.iter().all(|&(k, _)| k != auxv::AT_SYSINFO_EHDR), "no vDSO, no entry");
    }

    #[test]
    fn vdso_address_comes_first_in_auxv() {
        let aux = AuxInfo { vdso: 0x7fff_f800_0000, ..aux_info() };
        let s = build(TOP, &[b"a"], &[], b"a", &program(), &aux);
        let (_, _, auxv) = Reader(&s).parse();
        assert_eq!(auxv.len(), 20);
        assert_eq!(auxv[0], (auxv::AT_SYSINFO_EHDR, 0x7fff_f800_0000));
        assert_eq!(s.rsp % 16, 0);
    }
}

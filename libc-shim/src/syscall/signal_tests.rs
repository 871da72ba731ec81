//! Host tests of signals, driving `Process` as the kernel does: syscalls per thread, then
//! `deliver_signal`/`sigreturn`/`fault` with explicit registers. Frames are checked with a
//! decoder written here from Linux's headers (literal offsets), not from `signal_frame`.

use alloc::vec;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::mm::{Mm, VmaKind};
use crate::platform::{PAGE_SIZE, Platform, Prot};
use crate::process::{Fault, Process, SignalOutcome, SyscallOutcome, Tid, UserRegs};
use crate::testing::FakePlatform;

pub(crate) const MEM: u64 = 0x20_0000;
pub(crate) const STACK: u64 = 0x100_0000;
pub(crate) const STACK_TOP: u64 = STACK + 16 * PAGE_SIZE;
pub(crate) const ALT: u64 = 0x200_0000;
pub(crate) const ALT_SIZE: u64 = 4 * PAGE_SIZE;
pub(crate) const HANDLER: u64 = 0x40_1000;
pub(crate) const RESTORER: u64 = 0x40_2000;
/// Where a syscall instruction ends (regs.rip when a syscall returns).
pub(crate) const AFTER_SYSCALL: u64 = 0x40_0102;

pub(crate) mod nr {
    pub const RT_SIGACTION: u64 = 13;
    pub const RT_SIGPROCMASK: u64 = 14;
    pub const RT_SIGRETURN: u64 = 15;
    pub const PAUSE: u64 = 34;
    pub const NANOSLEEP: u64 = 35;
    pub const CLONE: u64 = 56;
    pub const KILL: u64 = 62;
    pub const RT_SIGPENDING: u64 = 127;
    pub const RT_SIGTIMEDWAIT: u64 = 128;
    pub const RT_SIGQUEUEINFO: u64 = 129;
    pub const RT_SIGSUSPEND: u64 = 130;
    pub const SIGALTSTACK: u64 = 131;
    pub const TKILL: u64 = 200;
    pub const FUTEX: u64 = 202;
    pub const CLOCK_NANOSLEEP: u64 = 230;
    pub const TGKILL: u64 = 234;
    pub const RT_TGSIGQUEUEINFO: u64 = 297;
}

pub(crate) const SIGUSR1: u64 = 10;
pub(crate) const SIGUSR2: u64 = 12;
const SA_SIGINFO: u64 = 4;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTART: u64 = 0x1000_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;
const THREAD_FLAGS: u64 = 0x100 | 0x200 | 0x400 | 0x800 | 0x1_0000 | 0x4_0000;
const EINTR: i64 = -4;

pub(crate) fn bit(sig: u64) -> u64 {
    1 << (sig - 1)
}

pub(crate) struct Fx {
    pub p: Process,
    pub fake: FakePlatform,
}

pub(crate) fn setup() -> Fx {
    let fake = FakePlatform::default();
    let mut mm = Mm::new();
    let rw = Prot::READ | Prot::WRITE;
    mm.map_fixed(&fake, MEM, 4 * PAGE_SIZE, rw, VmaKind::Anonymous)
        .unwrap();
    mm.map_fixed(&fake, STACK, STACK_TOP - STACK, rw, VmaKind::Anonymous)
        .unwrap();
    mm.map_fixed(&fake, ALT, ALT_SIZE, rw, VmaKind::Anonymous)
        .unwrap();
    Fx {
        p: Process::new(mm, "/bin/signals"),
        fake,
    }
}

impl Fx {
    pub fn sys(&mut self, tid: Tid, nr: u64, args: &[u64]) -> SyscallOutcome {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        self.p.syscall(&self.fake, tid, nr, a)
    }
    pub fn ret(&mut self, tid: Tid, nr: u64, args: &[u64]) -> i64 {
        match self.sys(tid, nr, args) {
            SyscallOutcome::Return(v) => v,
            other => panic!("syscall {nr}: expected a return, got {other:?}"),
        }
    }
    pub fn put(&self, addr: u64, bytes: &[u8]) {
        self.fake.write_app(addr, bytes).unwrap();
    }
    pub fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        self.fake.read_app(addr, &mut b).unwrap();
        b
    }
    pub fn u64_at(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.get(addr, 8).try_into().unwrap())
    }
    pub fn u32_at(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.get(addr, 4).try_into().unwrap())
    }
    pub fn spawn(&mut self) -> Tid {
        match self.sys(1, nr::CLONE, &[THREAD_FLAGS, 0x7000, 0, 0, 0]) {
            SyscallOutcome::Spawn { child, .. } => child,
            other => panic!("clone: {other:?}"),
        }
    }
    /// rt_sigaction(sig, {handler, flags | SA_RESTORER, RESTORER, mask}).
    pub fn handle(&mut self, sig: u64, flags: u64, mask: u64) {
        self.put(
            MEM + 0x800,
            &[HANDLER, flags | SA_RESTORER, RESTORER, mask]
                .map(u64::to_le_bytes)
                .concat(),
        );
        assert_eq!(self.ret(1, nr::RT_SIGACTION, &[sig, MEM + 0x800, 0, 8]), 0);
    }
    pub fn set_disposition(&mut self, sig: u64, handler: u64) {
        self.put(
            MEM + 0x800,
            &[handler, 0, 0, 0].map(u64::to_le_bytes).concat(),
        );
        assert_eq!(self.ret(1, nr::RT_SIGACTION, &[sig, MEM + 0x800, 0, 8]), 0);
    }
    pub fn sigprocmask(&mut self, tid: Tid, how: u64, set: u64) -> u64 {
        self.put(MEM + 0x840, &set.to_le_bytes());
        assert_eq!(
            self.ret(tid, nr::RT_SIGPROCMASK, &[how, MEM + 0x840, MEM + 0x848, 8]),
            0
        );
        self.u64_at(MEM + 0x848)
    }
    pub fn mask(&mut self, tid: Tid) -> u64 {
        assert_eq!(
            self.ret(tid, nr::RT_SIGPROCMASK, &[0, 0, MEM + 0x848, 8]),
            0
        );
        self.u64_at(MEM + 0x848)
    }
    pub fn deliver(
        &mut self,
        tid: Tid,
        regs: &mut UserRegs,
        fp: &[u8],
        syscall: Option<u64>,
    ) -> SignalOutcome {
        self.p.deliver_signal(&self.fake, tid, regs, fp, syscall)
    }
}

/// Registers with a distinct value in each, at `rsp`/`rip`, returning `rax`.
pub(crate) fn regs_at(rsp: u64, rip: u64, rax: u64) -> UserRegs {
    UserRegs {
        r15: 0x1515,
        r14: 0x1414,
        r13: 0x1313,
        r12: 0x1212,
        rbp: 0xb0b0,
        rbx: 0xb1b1,
        r11: 0x1111,
        r10: 0x1010,
        r9: 0x0909,
        r8: 0x0808,
        rax,
        rcx: 0xc0c0,
        rdx: 0xd0d0,
        rsi: 0x5151,
        rdi: 0xd1d1,
        rip,
        // IF, CF, DF
        rflags: 0x202 | 0x1 | 0x400,
        rsp,
        fs_base: 0xf5f5,
    }
}

/// A 512-byte FXSAVE image with a recognizable pattern and a sane MXCSR.
pub(crate) fn fxsave_image() -> Vec<u8> {
    let mut fp: Vec<u8> = (0..512).map(|i| (i * 7 + 3) as u8).collect();
    fp[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
    fp[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
    fp
}

/// An rt_sigframe read back by Linux's offsets.
pub(crate) struct Frame {
    pub addr: u64,
    pub b: Vec<u8>,
}

impl Frame {
    pub fn read(t: &Fx, addr: u64) -> Frame {
        Frame {
            addr,
            b: t.get(addr, 440),
        }
    }
    pub fn q(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.b[off..off + 8].try_into().unwrap())
    }
    pub fn d(&self, off: usize) -> i32 {
        i32::from_le_bytes(self.b[off..off + 4].try_into().unwrap())
    }
    pub fn w(&self, off: usize) -> u16 {
        u16::from_le_bytes(self.b[off..off + 2].try_into().unwrap())
    }
    // struct rt_sigframe: pretcode 0, uc 8, info 312.
    pub fn pretcode(&self) -> u64 {
        self.q(0)
    }
    // struct ucontext at 8: uc_flags 8, uc_link 16, uc_stack 24 (ss_sp 24, ss_flags 32, ss_size 40),
    // uc_mcontext 48, uc_sigmask 304.
    pub fn uc_flags(&self) -> u64 {
        self.q(8)
    }
    pub fn sigmask(&self) -> u64 {
        self.q(304)
    }
    pub fn uc_stack(&self) -> (u64, i32, u64) {
        (self.q(24), self.d(32), self.q(40))
    }
    // struct sigcontext at 48: r8..r15 48..104, rdi 112, rsi 120, rbp 128, rbx 136, rdx 144,
    // rax 152, rcx 160, rsp 168, rip 176, eflags 184, cs 192, gs 194, fs 196, ss 198, err 200,
    // trapno 208, oldmask 216, cr2 224, fpstate 232.
    pub fn rax(&self) -> u64 {
        self.q(152)
    }
    pub fn rsp(&self) -> u64 {
        self.q(168)
    }
    pub fn rip(&self) -> u64 {
        self.q(176)
    }
    pub fn fpstate(&self) -> u64 {
        self.q(232)
    }
    // siginfo at 312: si_signo 312, si_errno 316, si_code 320, union 328.
    pub fn si_signo(&self) -> i32 {
        self.d(312)
    }
    pub fn si_code(&self) -> i32 {
        self.d(320)
    }
    /// Writes back (a handler editing its ucontext).
    pub fn set_q(&mut self, t: &Fx, off: usize, v: u64) {
        self.b[off..off + 8].copy_from_slice(&v.to_le_bytes());
        t.put(self.addr + off as u64, &v.to_le_bytes());
    }
}

fn delivered_frame(
    t: &mut Fx,
    tid: Tid,
    regs: &mut UserRegs,
    fp: &[u8],
    syscall: Option<u64>,
) -> Frame {
    assert_eq!(t.deliver(tid, regs, fp, syscall), SignalOutcome::Delivered);
    Frame::read(t, regs.rsp)
}

// --- frame layout and handler entry ----------------------------------------------------------

#[test]
fn handler_frame_matches_the_linux_layout_byte_for_byte() {
    let mut t = setup();
    t.handle(SIGUSR1, SA_SIGINFO | SA_RESTART, 0);
    t.sigprocmask(1, 0, bit(SIGUSR2));
    assert_eq!(t.ret(1, nr::TGKILL, &[1, 1, SIGUSR1]), 0);
    assert!(t.p.signal_pending(1));
    let rsp = STACK_TOP - 0x1000 + 0x38; // not aligned on purpose
    let before = regs_at(rsp, AFTER_SYSCALL, 0);
    let mut regs = before;
    let fp = fxsave_image();
    let f = delivered_frame(&mut t, 1, &mut regs, &fp, Some(234));
    let frame = f.addr;

    // Handler entry: as if called, with the ABI's alignment, below the red zone.
    assert_eq!(
        (regs.rsp + 8) % 16,
        0,
        "(rsp + 8) % 16 == 0 at handler entry"
    );
    assert_eq!(regs.rip, HANDLER);
    assert_eq!(regs.rdi, SIGUSR1);
    assert_eq!(regs.rsi, frame + 312, "rsi = &frame.info");
    assert_eq!(regs.rdx, frame + 8, "rdx = &frame.uc");
    assert_eq!(regs.rax, 0);
    assert_eq!(regs.rflags & 0x400, 0, "DF cleared for the handler");
    assert_eq!(regs.rflags & 0x1, 1, "other flags kept");
    assert_eq!(regs.fs_base, before.fs_base);
    let fpa = f.fpstate();
    assert_eq!(fpa % 64, 0, "fpstate 64-byte aligned");
    assert!(
        frame + 440 <= fpa && fpa - (frame + 440) < 32,
        "the frame sits right below fpstate"
    );
    assert!(
        fpa + 512 <= rsp - 128 && rsp - 128 - (fpa + 512) < 64,
        "fpstate right below the red zone"
    );

    assert_eq!(f.pretcode(), RESTORER);
    assert_eq!(
        f.uc_flags(),
        2 | 4,
        "UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS (no XSAVE)"
    );
    assert_eq!(f.q(16), 0, "uc_link");
    assert_eq!(f.uc_stack(), (0, 2, 0), "no alternate stack: SS_DISABLE");
    let gregs = [
        (48, before.r8),
        (56, before.r9),
        (64, before.r10),
        (72, before.r11),
        (80, before.r12),
        (88, before.r13),
        (96, before.r14),
        (104, before.r15),
        (112, before.rdi),
        (120, before.rsi),
        (128, before.rbp),
        (136, before.rbx),
        (144, before.rdx),
        (152, before.rax),
        (160, before.rcx),
        (168, before.rsp),
        (176, before.rip),
        (184, before.rflags),
    ];
    for (off, v) in gregs {
        assert_eq!(f.q(off), v, "sigcontext at {off}");
    }
    assert_eq!(
        (f.w(192), f.w(194), f.w(196), f.w(198)),
        (0x33, 0, 0, 0x2b),
        "cs gs fs ss"
    );
    assert_eq!(
        (f.q(200), f.q(208), f.q(224)),
        (0, 0, 0),
        "err trapno cr2 (not a fault)"
    );
    assert_eq!(f.q(216), bit(SIGUSR2), "oldmask");
    assert!(f.b[240..304].iter().all(|&b| b == 0), "reserved1");
    assert_eq!(f.sigmask(), bit(SIGUSR2), "uc_sigmask: the mask to restore");
    assert_eq!(
        (f.si_signo(), f.d(316), f.si_code()),
        (10, 0, -6),
        "SIGUSR1, SI_TKILL"
    );
    assert_eq!((f.d(328), f.d(332)), (1, 0), "si_pid, si_uid");
    // The FPU image: copied, with Linux's zeroed software bytes for a FXSAVE-only CPU.
    let img = t.get(fpa, 512);
    assert_eq!(&img[..464], &fp[..464]);
    assert!(img[464..512].iter().all(|&b| b == 0));
    // While the handler runs, the signal itself is blocked too.
    assert_eq!(t.mask(1), bit(SIGUSR2) | bit(SIGUSR1));
    assert!(!t.p.signal_pending(1));
}

#[test]
fn xsave_frames_carry_the_software_bytes_and_magic2() {
    let mut t = setup();
    t.fake.xsave = 0x7;
    t.handle(SIGUSR1, SA_SIGINFO, 0);
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    let mut fp = vec![0u8; 832];
    fp[..512].copy_from_slice(&fxsave_image());
    fp[512..520].copy_from_slice(&4u64.to_le_bytes()); // xstate_bv: AVX only
    fp[600] = 0x77;
    let mut regs = regs_at(STACK_TOP - 0x2000, AFTER_SYSCALL, 0);
    let f = delivered_frame(&mut t, 1, &mut regs, &fp, None);
    assert_eq!(f.uc_flags(), 1 | 2 | 4, "UC_FP_XSTATE too");
    let fpa = f.fpstate();
    assert_eq!(fpa % 64, 0);
    assert!(fpa + 836 <= STACK_TOP - 0x2000 - 128);
    assert_eq!(t.u32_at(fpa + 464), 0x4650_5853, "magic1");
    assert_eq!(t.u32_at(fpa + 468), 836, "extended_size = size + 4");
    assert_eq!(t.u64_at(fpa + 472), 0x7, "xfeatures");
    assert_eq!(t.u32_at(fpa + 480), 832, "xstate_size");
    assert_eq!(
        t.u32_at(fpa + 832),
        0x4650_5845,
        "FP_XSTATE_MAGIC2 right after"
    );
    assert_eq!(t.u64_at(fpa + 512), 0x7, "x87|SSE forced into xstate_bv");
    assert_eq!(t.get(fpa + 600, 1), [0x77]);

    // Round trip through rt_sigreturn.
    let mut back = regs;
    back.rsp = regs.rsp + 8;
    let mut out = vec![0u8; 832];
    assert_eq!(
        t.p.sigreturn(&t.fake, 1, &mut back, &mut out),
        SignalOutcome::None
    );
    assert_eq!(out[600], 0x77);
    assert_eq!(u64::from_le_bytes(out[512..520].try_into().unwrap()), 0x7);
    assert_eq!(back.rip, AFTER_SYSCALL);

    // A corrupt XSAVE header (xcomp_bv) is a bad frame: SIGSEGV, never a kernel #GP.
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    let mut regs = regs_at(STACK_TOP - 0x2000, AFTER_SYSCALL, 0);
    let f = delivered_frame(&mut t, 1, &mut regs, &fp, None);
    t.put(f.fpstate() + 520, &(1u64 << 63).to_le_bytes());
    let mut back = regs;
    back.rsp += 8;
    assert_eq!(
        t.p.sigreturn(&t.fake, 1, &mut back, &mut out),
        SignalOutcome::Terminate {
            status: 139,
            signal: 11
        }
    );
}

#[test]
fn sigreturn_restores_everything_and_honours_go_style_edits() {
    let mut t = setup();
    t.handle(SIGUSR1, SA_SIGINFO, bit(SIGUSR2));
    t.ret(1, nr::KILL, &[1, SIGUSR1]);
    let before = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 5);
    let mut regs = before;
    let fp = fxsave_image();
    let mut f = delivered_frame(&mut t, 1, &mut regs, &fp, Some(62));
    assert_eq!(
        t.mask(1),
        bit(SIGUSR1) | bit(SIGUSR2),
        "sa_mask and the signal while handling"
    );
    assert_eq!((f.si_code(), f.d(328)), (0, 1), "kill: SI_USER from pid 1");

    // The handler (as Go's async preemption does) rewrites rip and rsp, and a register.
    f.set_q(&t, 176, 0x55_5555);
    f.set_q(&t, 168, STACK_TOP - 0x800);
    f.set_q(&t, 136, 0xbeef);
    // eflags: CF|ZF|DF|TF|IOPL=3 — only the arithmetic flags and DF may come back.
    f.set_q(&t, 184, 0x1 | 0x40 | 0x400 | 0x100 | 0x3000);
    let fpa = f.fpstate();
    t.put(fpa + 100, &[0xaa]);
    t.put(fpa + 24, &0xffff_ffffu32.to_le_bytes()); // reserved MXCSR bits
    // Its mask change is undone by sigreturn.
    t.sigprocmask(1, 2, 0);

    let mut back = regs;
    back.rsp = regs.rsp + 8; // the handler's `ret` popped pretcode
    back.rflags = 0x202;
    let mut out = vec![0u8; 512];
    assert_eq!(
        t.p.sigreturn(&t.fake, 1, &mut back, &mut out),
        SignalOutcome::None
    );
    let expect = UserRegs {
        rip: 0x55_5555,
        rsp: STACK_TOP - 0x800,
        rbx: 0xbeef,
        rflags: 0x202 | 0x1 | 0x40 | 0x400,
        ..before
    };
    assert_eq!(back, expect);
    assert_eq!(out[100], 0xaa, "fpstate comes back from the frame");
    assert_eq!(&out[32..100], &fp[32..100]);
    assert_eq!(
        u32::from_le_bytes(out[24..28].try_into().unwrap()),
        0xffbf,
        "MXCSR sanitized"
    );
    assert_eq!(t.mask(1), 0, "the mask from uc_sigmask");

    // A frame that cannot be read: SIGSEGV.
    let mut bad = regs_at(0x9000_0000, 0, 0);
    assert_eq!(
        t.p.sigreturn(&t.fake, 1, &mut bad, &mut out),
        SignalOutcome::Terminate {
            status: 139,
            signal: 11
        }
    );
    // uc_sigmask cannot block SIGKILL/SIGSTOP.
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 0);
    let mut f = delivered_frame(&mut t, 1, &mut regs, &fp, None);
    f.set_q(&t, 304, u64::MAX);
    let mut back = regs;
    back.rsp += 8;
    t.p.sigreturn(&t.fake, 1, &mut back, &mut out);
    assert_eq!(t.mask(1), !(bit(9) | bit(19)));
    assert_eq!(t.sys(1, nr::RT_SIGRETURN, &[]), SyscallOutcome::SigReturn);
}

#[test]
fn nodefer_and_resethand() {
    let mut t = setup();
    t.handle(SIGUSR1, SA_NODEFER | SA_RESETHAND, 0);
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 0);
    delivered_frame(&mut t, 1, &mut regs, &fxsave_image(), None);
    assert_eq!(t.mask(1), 0, "SA_NODEFER: the signal stays unblocked");
    assert_eq!(t.ret(1, nr::RT_SIGACTION, &[SIGUSR1, 0, MEM + 0x900, 8]), 0);
    assert_eq!(t.u64_at(MEM + 0x900), 0, "SA_RESETHAND: back to SIG_DFL");
    // So the next SIGUSR1 kills.
    assert_eq!(
        t.sys(1, nr::TKILL, &[1, SIGUSR1]),
        SyscallOutcome::Exit {
            status: 138,
            signal: Some(10)
        }
    );
}

#[test]
fn alternate_stack_with_sa_onstack_nesting_autodisarm_and_overflow() {
    let mut t = setup();
    t.handle(SIGUSR1, SA_ONSTACK | SA_NODEFER, 0);
    t.put(
        MEM,
        &[
            ALT.to_le_bytes(),
            0u64.to_le_bytes(),
            ALT_SIZE.to_le_bytes(),
        ]
        .concat(),
    );
    assert_eq!(t.ret(1, nr::SIGALTSTACK, &[MEM, 0]), 0);
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 0);
    let f = delivered_frame(&mut t, 1, &mut regs, &fxsave_image(), None);
    assert!(
        f.addr > ALT && f.fpstate() + 512 <= ALT + ALT_SIZE,
        "on the alternate stack"
    );
    assert!(ALT + ALT_SIZE - (f.fpstate() + 512) < 64, "from its top");
    assert_eq!(f.uc_stack(), (ALT, 0, ALT_SIZE));
    // Nested: already on it, the next frame goes below the current one.
    let first = f.addr;
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    let f2 = delivered_frame(&mut t, 1, &mut regs, &fxsave_image(), None);
    assert!(f2.addr < first - 128 && f2.addr > ALT);
    assert_eq!(f2.rsp(), first);
    // sigaltstack while on it: EPERM, and SS_ONSTACK reported (with the kernel's sp hint).
    t.p.set_user_sp(1, f2.addr);
    assert_eq!(t.ret(1, nr::SIGALTSTACK, &[MEM, MEM + 0x100]), -1);
    assert_eq!(t.ret(1, nr::SIGALTSTACK, &[0, MEM + 0x100]), 0);
    assert_eq!(t.u32_at(MEM + 0x108), 1, "SS_ONSTACK");

    // SS_AUTODISARM: disabled while the handler runs, restored by sigreturn.
    let mut t = setup();
    t.handle(SIGUSR1, SA_ONSTACK, 0);
    t.put(
        MEM,
        &[
            ALT.to_le_bytes(),
            (1u64 << 31).to_le_bytes(),
            ALT_SIZE.to_le_bytes(),
        ]
        .concat(),
    );
    assert_eq!(t.ret(1, nr::SIGALTSTACK, &[MEM, 0]), 0);
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 0);
    let f = delivered_frame(&mut t, 1, &mut regs, &fxsave_image(), None);
    assert!(f.addr > ALT);
    assert_eq!(t.ret(1, nr::SIGALTSTACK, &[0, MEM + 0x100]), 0);
    assert_eq!(t.u32_at(MEM + 0x108), 2, "disarmed: SS_DISABLE");
    let mut back = regs;
    back.rsp += 8;
    t.p.sigreturn(&t.fake, 1, &mut back, &mut vec![0; 512]);
    assert_eq!(t.ret(1, nr::SIGALTSTACK, &[0, MEM + 0x100]), 0);
    assert_eq!(
        (
            t.u64_at(MEM + 0x100),
            t.u32_at(MEM + 0x108),
            t.u64_at(MEM + 0x110)
        ),
        (ALT, 1 << 31, ALT_SIZE)
    );

    // Overflowing a small alternate stack: SIGSEGV (no handler for it: the process dies).
    let mut t = setup();
    t.handle(SIGUSR1, SA_ONSTACK | SA_NODEFER, 0);
    t.put(
        MEM,
        &[ALT.to_le_bytes(), 0u64.to_le_bytes(), 2048u64.to_le_bytes()].concat(),
    );
    assert_eq!(t.ret(1, nr::SIGALTSTACK, &[MEM, 0]), 0);
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 0);
    delivered_frame(&mut t, 1, &mut regs, &fxsave_image(), None);
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    assert_eq!(
        t.deliver(1, &mut regs, &fxsave_image(), None),
        SignalOutcome::Terminate {
            status: 139,
            signal: 11
        }
    );
}

#[test]
fn sigaltstack_validates() {
    let mut t = setup();
    t.put(
        MEM,
        &[ALT.to_le_bytes(), 0u64.to_le_bytes(), 2047u64.to_le_bytes()].concat(),
    );
    assert_eq!(
        t.ret(1, nr::SIGALTSTACK, &[MEM, 0]),
        Errno::ENOMEM.as_return(),
        "below MINSIGSTKSZ"
    );
    t.put(
        MEM,
        &[ALT.to_le_bytes(), 5u64.to_le_bytes(), 8192u64.to_le_bytes()].concat(),
    );
    assert_eq!(
        t.ret(1, nr::SIGALTSTACK, &[MEM, 0]),
        Errno::EINVAL.as_return()
    );
    t.put(
        MEM,
        &[0u64.to_le_bytes(), 2u64.to_le_bytes(), 0u64.to_le_bytes()].concat(),
    );
    assert_eq!(
        t.ret(1, nr::SIGALTSTACK, &[MEM, MEM + 0x100]),
        0,
        "SS_DISABLE needs no size"
    );
    assert_eq!(t.u32_at(MEM + 0x108), 2);
}

// --- threads and sending ---------------------------------------------------------------------

#[test]
fn clone_inherits_the_mask_but_not_pending_signals_or_the_altstack() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    t.sigprocmask(1, 0, bit(SIGUSR1) | bit(SIGUSR2));
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    t.put(
        MEM,
        &[
            ALT.to_le_bytes(),
            0u64.to_le_bytes(),
            ALT_SIZE.to_le_bytes(),
        ]
        .concat(),
    );
    t.ret(1, nr::SIGALTSTACK, &[MEM, 0]);
    let c = t.spawn();
    assert_eq!(t.mask(c), bit(SIGUSR1) | bit(SIGUSR2));
    assert_eq!(t.ret(c, nr::RT_SIGPENDING, &[MEM + 0x100, 8]), 0);
    assert_eq!(
        t.u64_at(MEM + 0x100),
        0,
        "the parent's thread-directed signal stays with it"
    );
    assert_eq!(t.ret(1, nr::RT_SIGPENDING, &[MEM + 0x100, 8]), 0);
    assert_eq!(t.u64_at(MEM + 0x100), bit(SIGUSR1));
    assert_eq!(t.ret(c, nr::SIGALTSTACK, &[0, MEM + 0x100]), 0);
    assert_eq!(t.u32_at(MEM + 0x108), 2, "no alternate stack");
    // Masks are per thread.
    t.sigprocmask(c, 2, 0);
    assert_eq!(t.mask(1), bit(SIGUSR1) | bit(SIGUSR2));
}

#[test]
fn tgkill_wakes_a_blocked_futex_waiter_with_interrupted() {
    let mut t = setup();
    t.handle(SIGUSR1, SA_RESTART, 0);
    let c = t.spawn();
    t.put(MEM, &0u32.to_le_bytes());
    assert_eq!(
        t.sys(c, nr::FUTEX, &[MEM, 0, 0, 0]),
        SyscallOutcome::Block { deadline: None }
    );
    assert_eq!(t.ret(1, nr::TGKILL, &[1, c as u64, SIGUSR1]), 0);
    assert_eq!(t.p.take_woken(), vec![c]);
    assert!(!t.p.signal_pending(1), "thread-directed: only the target");
    // The re-run wait reports the interruption with the kernel-internal ERESTARTSYS.
    assert_eq!(t.ret(c, nr::FUTEX, &[MEM, 0, 0, 0]), -512);
    assert!(t.p.signal_pending(c));
    // SA_RESTART: the saved context re-runs the syscall after the handler.
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, (-512i64) as u64);
    let f = delivered_frame(&mut t, c, &mut regs, &fxsave_image(), Some(202));
    assert_eq!((f.rax(), f.rip()), (202, AFTER_SYSCALL - 2));
    // The target must exist.
    assert_eq!(
        t.ret(1, nr::TGKILL, &[1, 99, SIGUSR1]),
        Errno::ESRCH.as_return()
    );
    assert_eq!(
        t.ret(1, nr::TKILL, &[99, SIGUSR1]),
        Errno::ESRCH.as_return()
    );
    assert_eq!(
        t.ret(1, nr::TGKILL, &[2, c as u64, SIGUSR1]),
        Errno::ESRCH.as_return()
    );
}

#[test]
fn process_directed_signals_go_to_a_thread_that_takes_them() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    t.sigprocmask(1, 0, bit(SIGUSR1));
    let c = t.spawn();
    t.sigprocmask(c, 2, 0);
    t.put(MEM, &0u32.to_le_bytes());
    assert!(matches!(
        t.sys(c, nr::FUTEX, &[MEM, 0, 0, 0]),
        SyscallOutcome::Block { .. }
    ));
    assert_eq!(t.ret(1, nr::KILL, &[0, SIGUSR1]), 0);
    assert_eq!(
        t.p.take_woken(),
        vec![c],
        "the main thread blocks it: the waiter is interrupted"
    );
    assert!(!t.p.signal_pending(1));
    assert!(t.p.signal_pending(c));
    // kill with a thread id reaches the process too.
    assert_eq!(t.ret(1, nr::KILL, &[c as u64, 0]), 0);
    assert_eq!(t.ret(1, nr::KILL, &[77, 0]), Errno::ESRCH.as_return());
}

#[test]
fn a_signal_pending_before_parking_interrupts_at_once() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    t.put(MEM, &0u32.to_le_bytes());
    assert!(matches!(
        t.sys(1, nr::FUTEX, &[MEM, 0, 0, 0]),
        SyscallOutcome::Block { .. }
    ));
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.ret(1, nr::FUTEX, &[MEM, 0, 0, 0]), -512);
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, (-512i64) as u64);
    let f = delivered_frame(&mut t, 1, &mut regs, &fxsave_image(), Some(202));
    assert_eq!(f.rax() as i64, EINTR, "no SA_RESTART: EINTR");
}

#[test]
fn default_actions_terminate_ignore_and_stop() {
    let mut t = setup();
    assert_eq!(t.ret(1, nr::KILL, &[1, 17]), 0, "SIGCHLD: ignored");
    assert_eq!(
        t.ret(1, nr::KILL, &[1, 19]),
        0,
        "SIGSTOP: treated as ignored"
    );
    assert!(!t.p.signal_pending(1));
    // Blocked, then unblocked by sigreturn's mask: delivery terminates.
    t.sigprocmask(1, 0, bit(15));
    assert_eq!(t.ret(1, nr::KILL, &[1, 15]), 0);
    // (Bypassing rt_sigprocmask, which would end the process itself.)
    t.p.threads.get_mut(&1).unwrap().sig.mask = 0;
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 0);
    assert_eq!(
        t.deliver(1, &mut regs, &fxsave_image(), None),
        SignalOutcome::Terminate {
            status: 143,
            signal: 15
        }
    );
    // SIGKILL from another thread, even with everything blocked.
    let mut t = setup();
    let c = t.spawn();
    t.sigprocmask(1, 2, u64::MAX);
    assert_eq!(
        t.sys(c, nr::KILL, &[1, 9]),
        SyscallOutcome::Exit {
            status: 137,
            signal: Some(9)
        }
    );
    // SIG_IGN discards pending instances.
    let mut t = setup();
    t.sigprocmask(1, 0, bit(SIGUSR2));
    t.ret(1, nr::KILL, &[1, SIGUSR2]);
    t.set_disposition(SIGUSR2, 1);
    assert_eq!(t.ret(1, nr::RT_SIGPENDING, &[MEM + 0x100, 8]), 0);
    assert_eq!(t.u64_at(MEM + 0x100), 0);
}

#[test]
fn rt_sigqueueinfo_carries_the_value() {
    let mut t = setup();
    t.handle(34, SA_SIGINFO, 0);
    t.sigprocmask(1, 0, bit(34));
    let mut info = vec![0u8; 128];
    info[8..12].copy_from_slice(&(-1i32).to_le_bytes()); // SI_QUEUE
    info[24..32].copy_from_slice(&0xfeedu64.to_le_bytes());
    t.put(MEM, &info);
    // Real-time signals queue every instance.
    assert_eq!(t.ret(1, nr::RT_SIGQUEUEINFO, &[1, 34, MEM]), 0);
    assert_eq!(t.ret(1, nr::RT_TGSIGQUEUEINFO, &[1, 1, 34, MEM]), 0);
    t.sigprocmask(1, 2, 0);
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, 0);
    let f = delivered_frame(&mut t, 1, &mut regs, &fxsave_image(), None);
    assert_eq!((f.si_signo(), f.si_code(), f.q(336)), (34, -1, 0xfeed));
    t.p.threads.get_mut(&1).unwrap().sig.mask = 0;
    assert!(t.p.signal_pending(1), "the second instance is still queued");
    assert_eq!(
        t.ret(1, nr::RT_SIGQUEUEINFO, &[5, 34, MEM]),
        Errno::ESRCH.as_return()
    );
}

// --- restart and EINTR -----------------------------------------------------------------------

/// Interrupts thread `c`'s futex wait (with or without a timeout) and returns the regs of the
/// re-run call's return.
fn interrupted_futex(t: &mut Fx, c: Tid, timeout: u64) -> UserRegs {
    t.put(MEM, &0u32.to_le_bytes());
    assert!(matches!(
        t.sys(c, nr::FUTEX, &[MEM, 0, 0, timeout]),
        SyscallOutcome::Block { .. }
    ));
    assert_eq!(t.ret(1, nr::TGKILL, &[1, c as u64, SIGUSR1]), 0);
    t.p.take_woken();
    let r = t.ret(c, nr::FUTEX, &[MEM, 0, 0, timeout]);
    regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, r as u64)
}

fn restart_code(rax: u64) -> bool {
    (-516..=-512).contains(&(rax as i64))
}

#[test]
fn restart_versus_eintr_matrix() {
    let ts = MEM + 0x200;
    for (flags, timeout, want_rax, want_rip) in [
        // ERESTARTSYS (no timeout): SA_RESTART restarts, otherwise EINTR.
        (SA_RESTART, false, 202u64, AFTER_SYSCALL - 2),
        (0, false, EINTR as u64, AFTER_SYSCALL),
        // ERESTART_RESTARTBLOCK (timeout): EINTR whenever a handler runs.
        (SA_RESTART, true, EINTR as u64, AFTER_SYSCALL),
        (0, true, EINTR as u64, AFTER_SYSCALL),
    ] {
        let mut t = setup();
        t.handle(SIGUSR1, flags, 0);
        t.put(ts, &[1u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
        let c = t.spawn();
        let mut regs = interrupted_futex(&mut t, c, if timeout { ts } else { 0 });
        assert_eq!(regs.rax as i64, if timeout { -516 } else { -512 });
        let f = delivered_frame(&mut t, c, &mut regs, &fxsave_image(), Some(202));
        assert_eq!(
            (f.rax(), f.rip()),
            (want_rax, want_rip),
            "flags {flags:#x} timeout {timeout}"
        );
        assert_eq!(
            t.p.threads[&c].deadline, None,
            "a handler ran: the call starts over or is done"
        );
    }
}

#[test]
fn without_a_handler_the_call_restarts_transparently() {
    // The handler is gone by delivery time (SIG_IGN): ERESTARTSYS restarts from scratch.
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    let c = t.spawn();
    let mut regs = interrupted_futex(&mut t, c, 0);
    t.set_disposition(SIGUSR1, 1);
    assert!(
        t.p.signal_pending(c),
        "a restart code is pending conversion"
    );
    assert_eq!(
        t.deliver(c, &mut regs, &fxsave_image(), Some(202)),
        SignalOutcome::None
    );
    assert_eq!((regs.rax, regs.rip), (202, AFTER_SYSCALL - 2));
    assert!(!t.p.signal_pending(c));

    // ERESTART_RESTARTBLOCK keeps the deadline: the restarted wait ends when the first would.
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    let c = t.spawn();
    let ts = MEM + 0x200;
    t.put(ts, &[2u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
    let start = t.fake.monotonic_ns();
    let mut regs = interrupted_futex(&mut t, c, ts);
    t.set_disposition(SIGUSR1, 1);
    t.fake.now_ns.set(start + 500_000_000);
    assert_eq!(
        t.deliver(c, &mut regs, &fxsave_image(), Some(202)),
        SignalOutcome::None
    );
    assert_eq!((regs.rax, regs.rip), (202, AFTER_SYSCALL - 2));
    assert_eq!(
        t.sys(c, nr::FUTEX, &[MEM, 0, 0, ts]),
        SyscallOutcome::Block {
            deadline: Some(start + 2_000_000_000)
        }
    );

    // The signal went to another thread meanwhile (process-directed): restart, no EINTR.
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    let c = t.spawn();
    t.sigprocmask(1, 0, bit(SIGUSR1));
    t.put(MEM, &0u32.to_le_bytes());
    t.sys(c, nr::FUTEX, &[MEM, 0, 0, 0]);
    t.ret(1, nr::KILL, &[1, SIGUSR1]);
    t.p.take_woken();
    let r = t.ret(c, nr::FUTEX, &[MEM, 0, 0, 0]);
    let c2 = t.spawn();
    t.sigprocmask(c2, 2, 0);
    let mut other = regs_at(STACK_TOP - 0x3000, AFTER_SYSCALL, 0);
    assert_eq!(
        t.deliver(c2, &mut other, &fxsave_image(), None),
        SignalOutcome::Delivered
    );
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, r as u64);
    assert_eq!(
        t.deliver(c, &mut regs, &fxsave_image(), Some(202)),
        SignalOutcome::None
    );
    assert_eq!(regs.rax, 202);
}

#[test]
fn no_restart_code_ever_reaches_the_app() {
    let ts = MEM + 0x200;
    for flags in [0, SA_RESTART] {
        for timeout in [0, ts] {
            for ignore_first in [false, true] {
                let mut t = setup();
                t.handle(SIGUSR1, flags, 0);
                t.put(ts, &[1u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
                let c = t.spawn();
                let mut regs = interrupted_futex(&mut t, c, timeout);
                assert!(restart_code(regs.rax));
                if ignore_first {
                    t.set_disposition(SIGUSR1, 1);
                }
                // The kernel asks only when signal_pending says so: it must.
                assert!(t.p.signal_pending(c));
                match t.deliver(c, &mut regs, &fxsave_image(), Some(202)) {
                    SignalOutcome::Delivered => {
                        assert!(!restart_code(Frame::read(&t, regs.rsp).rax()))
                    }
                    SignalOutcome::None => assert!(!restart_code(regs.rax)),
                    other => panic!("{other:?}"),
                }
            }
        }
    }
    // Sleeps and pause too.
    let mut t = setup();
    t.handle(SIGUSR1, SA_RESTART, 0);
    let c = t.spawn();
    t.put(ts, &[1u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
    for (nr, args) in [
        (nr::NANOSLEEP, vec![ts, 0]),
        (nr::CLOCK_NANOSLEEP, vec![1, 1, ts, 0]),
        (nr::PAUSE, vec![]),
    ] {
        if nr == nr::CLOCK_NANOSLEEP {
            t.put(ts, &[100u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
        }
        assert!(
            matches!(t.sys(c, nr, &args), SyscallOutcome::Block { .. }),
            "{nr}"
        );
        t.ret(1, nr::TGKILL, &[1, c as u64, SIGUSR1]);
        t.p.take_woken();
        let r = t.ret(c, nr, &args);
        assert!(restart_code(r as u64), "{nr}: {r}");
        let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, r as u64);
        let f = delivered_frame(&mut t, c, &mut regs, &fxsave_image(), Some(nr));
        assert_eq!(f.rax() as i64, EINTR, "{nr}: EINTR even with SA_RESTART");
        t.p.threads.get_mut(&c).unwrap().sig.mask = 0;
    }
}

#[test]
fn nanosleep_reports_the_time_left() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    let c = t.spawn();
    let ts = MEM + 0x200;
    t.put(ts, &[3u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
    let start = t.fake.monotonic_ns();
    assert!(matches!(
        t.sys(c, nr::NANOSLEEP, &[ts, ts + 16]),
        SyscallOutcome::Block { .. }
    ));
    t.fake.now_ns.set(start + 1_000_000_000);
    t.ret(1, nr::TGKILL, &[1, c as u64, SIGUSR1]);
    t.p.take_woken();
    assert_eq!(t.ret(c, nr::NANOSLEEP, &[ts, ts + 16]), -516);
    assert_eq!((t.u64_at(ts + 16), t.u64_at(ts + 24)), (2, 0), "rem");
}

// --- waiting for signals ---------------------------------------------------------------------

#[test]
fn sigsuspend_swaps_the_mask_until_the_handler_returns() {
    let mut t = setup();
    t.handle(SIGUSR1, SA_RESTART, bit(SIGUSR2));
    t.sigprocmask(1, 0, bit(SIGUSR1));
    let c = t.spawn();
    t.put(MEM + 0x300, &bit(34).to_le_bytes());
    assert_eq!(
        t.sys(1, nr::RT_SIGSUSPEND, &[MEM + 0x300, 8]),
        SyscallOutcome::Block { deadline: None }
    );
    assert_eq!(t.mask(c), bit(SIGUSR1));
    assert_eq!(t.ret(c, nr::KILL, &[1, SIGUSR1]), 0);
    assert_eq!(
        t.p.take_woken(),
        vec![1],
        "the temporary mask lets SIGUSR1 through"
    );
    let r = t.ret(1, nr::RT_SIGSUSPEND, &[MEM + 0x300, 8]);
    assert_eq!(r, -514, "ERESTARTNOHAND");
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, r as u64);
    let f = delivered_frame(&mut t, 1, &mut regs, &fxsave_image(), Some(130));
    assert_eq!(
        f.rax() as i64,
        EINTR,
        "EINTR after the handler, even with SA_RESTART"
    );
    assert_eq!(
        f.sigmask(),
        bit(SIGUSR1),
        "the frame restores the mask from before sigsuspend"
    );
    assert_eq!(
        t.mask(1),
        bit(34) | bit(SIGUSR2) | bit(SIGUSR1),
        "during the handler: temporary | sa_mask | sig"
    );
    let mut back = regs;
    back.rsp += 8;
    t.p.sigreturn(&t.fake, 1, &mut back, &mut vec![0; 512]);
    assert_eq!(t.mask(1), bit(SIGUSR1));
    assert_eq!(back.rax as i64, EINTR);

    // Already pending and let through by the new mask: returns at once.
    t.ret(1, nr::TKILL, &[1, SIGUSR1]);
    t.put(MEM + 0x300, &0u64.to_le_bytes());
    assert_eq!(t.ret(1, nr::RT_SIGSUSPEND, &[MEM + 0x300, 8]), -514);
    let mut regs = regs_at(STACK_TOP - 0x1000, AFTER_SYSCALL, (-514i64) as u64);
    let f = delivered_frame(&mut t, 1, &mut regs, &fxsave_image(), Some(130));
    assert_eq!(f.sigmask(), bit(SIGUSR1));
    assert_eq!(
        t.ret(1, nr::RT_SIGSUSPEND, &[MEM + 0x300, 4]),
        Errno::EINVAL.as_return()
    );
}

#[test]
fn pause_waits_for_a_handled_signal() {
    let mut t = setup();
    t.handle(SIGUSR1, 0, 0);
    let c = t.spawn();
    assert_eq!(
        t.sys(c, nr::PAUSE, &[]),
        SyscallOutcome::Block { deadline: None }
    );
    assert_eq!(
        t.ret(1, nr::KILL, &[1, 17]),
        0,
        "an ignored signal does not wake it"
    );
    assert!(t.p.take_woken().is_empty());
    t.ret(1, nr::TGKILL, &[1, c as u64, SIGUSR1]);
    assert_eq!(t.p.take_woken(), vec![c]);
    assert_eq!(t.ret(c, nr::PAUSE, &[]), -514);
}

#[test]
fn sigtimedwait_takes_pending_signals_or_waits() {
    let mut t = setup();
    t.sigprocmask(1, 0, bit(SIGUSR1) | bit(SIGUSR2));
    let set = MEM + 0x300;
    let info = MEM + 0x400;
    let ts = MEM + 0x500;
    t.put(set, &(bit(SIGUSR1) | bit(SIGUSR2)).to_le_bytes());
    t.ret(1, nr::KILL, &[1, SIGUSR2]);
    assert_eq!(
        t.ret(1, nr::RT_SIGTIMEDWAIT, &[set, info, 0, 8]),
        SIGUSR2 as i64
    );
    assert_eq!(
        (t.u32_at(info), t.u32_at(info + 8)),
        (SIGUSR2 as u32, 0),
        "si_signo, SI_USER"
    );
    assert_eq!(t.ret(1, nr::RT_SIGPENDING, &[MEM + 0x600, 8]), 0);
    assert_eq!(t.u64_at(MEM + 0x600), 0, "consumed");
    // A zero timeout polls.
    t.put(ts, &[0u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
    assert_eq!(
        t.ret(1, nr::RT_SIGTIMEDWAIT, &[set, info, ts, 8]),
        Errno::EAGAIN.as_return()
    );
    // A timeout expires: EAGAIN.
    t.put(ts, &[1u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
    let now = t.fake.monotonic_ns();
    assert_eq!(
        t.sys(1, nr::RT_SIGTIMEDWAIT, &[set, info, ts, 8]),
        SyscallOutcome::Block {
            deadline: Some(now + 1_000_000_000)
        }
    );
    assert!(t.p.time_out(1));
    t.p.take_woken();
    assert_eq!(
        t.ret(1, nr::RT_SIGTIMEDWAIT, &[set, info, ts, 8]),
        Errno::EAGAIN.as_return()
    );
    // Another thread sends a waited-for (blocked) signal: it wakes and takes it.
    let c = t.spawn();
    assert!(matches!(
        t.sys(1, nr::RT_SIGTIMEDWAIT, &[set, info, 0, 8]),
        SyscallOutcome::Block { .. }
    ));
    t.ret(c, nr::TGKILL, &[1, 1, SIGUSR1]);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(
        t.ret(1, nr::RT_SIGTIMEDWAIT, &[set, info, 0, 8]),
        SIGUSR1 as i64
    );
    assert_eq!(t.u32_at(info + 8) as i32, -6, "SI_TKILL");
    assert!(!t.p.signal_pending(1), "taken, not delivered");
    // A handled signal outside the set interrupts the wait: EINTR.
    t.handle(34, 0, 0);
    assert!(matches!(
        t.sys(1, nr::RT_SIGTIMEDWAIT, &[set, info, 0, 8]),
        SyscallOutcome::Block { .. }
    ));
    t.ret(c, nr::TGKILL, &[1, 1, 34]);
    t.p.take_woken();
    assert_eq!(t.ret(1, nr::RT_SIGTIMEDWAIT, &[set, info, 0, 8]), EINTR);
    assert!(t.p.signal_pending(1));
}

#[test]
fn sigpending_shows_blocked_pending_signals() {
    let mut t = setup();
    t.sigprocmask(1, 0, bit(SIGUSR1) | bit(SIGUSR2));
    t.ret(1, nr::KILL, &[1, SIGUSR1]);
    t.ret(1, nr::TKILL, &[1, SIGUSR2]);
    assert_eq!(t.ret(1, nr::RT_SIGPENDING, &[MEM, 8]), 0);
    assert_eq!(t.u64_at(MEM), bit(SIGUSR1) | bit(SIGUSR2));
    assert_eq!(
        t.ret(1, nr::RT_SIGPENDING, &[MEM, 16]),
        Errno::EINVAL.as_return()
    );
}

// --- faults ----------------------------------------------------------------------------------

#[test]
fn faults_are_delivered_to_handlers_or_terminate() {
    let segv = Fault {
        signal: 11,
        code: 1,
        addr: 0xdead,
    };
    let mut t = setup();
    let mut regs = regs_at(STACK_TOP - 0x1000, 0x40_0500, 7);
    assert_eq!(
        t.p.fault(&t.fake, 1, segv, &mut regs, &fxsave_image()),
        SignalOutcome::Terminate {
            status: 139,
            signal: 11
        },
        "no handler"
    );
    t.handle(11, SA_SIGINFO, 0);
    let before = regs;
    assert_eq!(
        t.p.fault(&t.fake, 1, segv, &mut regs, &fxsave_image()),
        SignalOutcome::Delivered
    );
    let f = Frame::read(&t, regs.rsp);
    assert_eq!(
        (f.si_signo(), f.si_code(), f.q(328)),
        (11, 1, 0xdead),
        "SEGV_MAPERR at si_addr"
    );
    assert_eq!(
        (f.q(224), f.q(208)),
        (0xdead, 14),
        "cr2, trapno (page fault)"
    );
    assert_eq!((f.rip(), f.rax()), (before.rip, 7));
    assert_eq!(regs.rip, HANDLER);
    // A second fault inside the handler: SIGSEGV is blocked there, so it is fatal, and the
    // disposition is reset as Linux's force_sig does.
    assert_eq!(
        t.p.fault(&t.fake, 1, segv, &mut regs, &fxsave_image()),
        SignalOutcome::Terminate {
            status: 139,
            signal: 11
        }
    );
    assert_eq!(t.ret(1, nr::RT_SIGACTION, &[11, 0, MEM + 0x900, 8]), 0);
    assert_eq!(t.u64_at(MEM + 0x900), 0);
    // Ignored fault signals still kill.
    let mut t = setup();
    t.set_disposition(8, 1);
    assert_eq!(
        t.p.fault(
            &t.fake,
            1,
            Fault {
                signal: 8,
                code: 1,
                addr: 0x40_0500
            },
            &mut regs,
            &fxsave_image()
        ),
        SignalOutcome::Terminate {
            status: 136,
            signal: 8
        }
    );
    // A stack that cannot hold the frame: SIGSEGV.
    let mut t = setup();
    t.handle(4, 0, 0);
    let mut regs = regs_at(0x9000_0000, 0x40_0500, 0);
    assert_eq!(
        t.p.fault(
            &t.fake,
            1,
            Fault {
                signal: 4,
                code: 2,
                addr: 0x40_0500
            },
            &mut regs,
            &fxsave_image()
        ),
        SignalOutcome::Terminate {
            status: 139,
            signal: 11
        }
    );
}

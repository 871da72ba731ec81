//! Signal delivery: the Linux x86_64 `rt_sigframe` written to the app's stack, entry into the
//! handler, syscall restart, rt_sigreturn and CPU faults.
//!
//! The frame is what `arch/x86/kernel/signal_64.c` builds, byte for byte, so that handlers
//! that read or edit the saved context (Go's async preemption rewrites `rip`/`rsp`) work:
//!
//! ```text
//! frame + 0     pretcode (sa_restorer: the handler's `ret` goes there)
//! frame + 8     struct ucontext (304 bytes): uc_flags, uc_link, uc_stack,
//!               uc_mcontext (struct sigcontext, 256 bytes), uc_sigmask
//! frame + 312   siginfo_t (128 bytes)
//! ...           (alignment)
//! fpstate       the XSAVE (or FXSAVE) image, 64-byte aligned, above the frame
//! ```
//!
//! `frame` is 16-byte aligned minus 8, as if `call` had pushed pretcode, below the 128-byte
//! red zone of the interrupted code (or at the top of the alternate stack).

use super::linux::bytes::{get_u32, get_u64, put_u16, put_u32, put_u64};
use super::linux::{KSigaction, Layout, SI_KERNEL, SIG_DFL, SIG_IGN, SigInfo, StackT};
use super::signal::{
    DefaultAction, ERESTART_RESTARTBLOCK, ERESTARTNOINTR, ERESTARTSYS, SA_NODEFER, SA_ONSTACK,
    SA_RESETHAND, SA_RESTART, SIGBUS, SIGFPE, SIGILL, SIGKILL, SIGSEGV, SIGTRAP, SS_AUTODISARM,
    SS_DISABLE, UNBLOCKABLE, bit, default_action, is_restart_code, on_sig_stack, set_altstack,
};
use super::{Ctx, WarnKey};
use crate::errno::Errno;
use crate::platform::Platform;
use crate::process::{Fault, Process, SignalOutcome, Tid, UserRegs};

/// Bytes below the interrupted stack pointer the frame must not touch (the SysV red zone).
pub const RED_ZONE: u64 = 128;
/// `sizeof(struct rt_sigframe)`.
pub const FRAME_SIZE: usize = 440;
/// Offsets in the frame.
pub const UCONTEXT: usize = 8;
pub const SIGINFO: usize = 312;
/// Offsets in `struct ucontext`.
pub const UC_FLAGS: usize = 0;
pub const UC_LINK: usize = 8;
pub const UC_STACK: usize = 16;
pub const UC_MCONTEXT: usize = 40;
pub const UC_SIGMASK: usize = 296;
/// `uc_flags` bits.
pub const UC_FP_XSTATE: u64 = 1;
pub const UC_SIGCONTEXT_SS: u64 = 2;
pub const UC_STRICT_RESTORE_SS: u64 = 4;
/// Offsets in `struct sigcontext` (64-bit).
pub mod sc {
    pub const R8: usize = 0;
    pub const R9: usize = 8;
    pub const R10: usize = 16;
    pub const R11: usize = 24;
    pub const R12: usize = 32;
    pub const R13: usize = 40;
    pub const R14: usize = 48;
    pub const R15: usize = 56;
    pub const RDI: usize = 64;
    pub const RSI: usize = 72;
    pub const RBP: usize = 80;
    pub const RBX: usize = 88;
    pub const RDX: usize = 96;
    pub const RAX: usize = 104;
    pub const RCX: usize = 112;
    pub const RSP: usize = 120;
    pub const RIP: usize = 128;
    pub const EFLAGS: usize = 136;
    pub const CS: usize = 144;
    pub const GS: usize = 146;
    pub const FS: usize = 148;
    pub const SS: usize = 150;
    pub const ERR: usize = 152;
    pub const TRAPNO: usize = 160;
    pub const OLDMASK: usize = 168;
    pub const CR2: usize = 176;
    pub const FPSTATE: usize = 184;
}
/// `_fpx_sw_bytes` in the FXSAVE area's software-reserved bytes 464..512.
pub const FP_SW_BYTES: usize = 464;
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Size of the legacy FXSAVE area and of the XSAVE header after it.
const FXSAVE_SIZE: usize = 512;
const XSAVE_HEADER_END: usize = 576;
/// What Linux reports in `cs`/`ss` for a 64-bit app (`__USER_CS`, `__USER_DS`).
const USER_CS: u16 = 0x33;
const USER_DS: u16 = 0x2b;

// RFLAGS bits.
const CF: u64 = 1 << 0;
const PF: u64 = 1 << 2;
const AF: u64 = 1 << 4;
const ZF: u64 = 1 << 6;
const SF: u64 = 1 << 7;
const TF: u64 = 1 << 8;
const DF: u64 = 1 << 10;
const OF: u64 = 1 << 11;
const RF: u64 = 1 << 16;
/// Flags rt_sigreturn takes from the frame; the rest (IF, IOPL, ...) stay the kernel's. Linux
/// also takes TF, RF and AC; at ring 0 they would single-step or disable SMAP in the kernel.
pub const SIGRETURN_FLAGS: u64 = CF | PF | AF | ZF | SF | DF | OF;

const SEGV: SignalOutcome = SignalOutcome::Terminate {
    status: 128 + SIGSEGV,
    signal: SIGSEGV,
};

fn terminate(sig: u8) -> SignalOutcome {
    SignalOutcome::Terminate {
        status: 128u8.wrapping_add(sig),
        signal: sig,
    }
}

/// `__on_sig_stack`: inside the alternate stack, whatever its flags.
fn within(alt: &StackT, sp: u64) -> bool {
    sp > alt.sp && sp - alt.sp <= alt.size
}

/// The x86 exception vector a fault most likely came from (Linux saves the real one; the
/// kernel reports only signal, code and address).
fn trapno(f: &Fault) -> u64 {
    match (f.signal, f.code) {
        (SIGSEGV, 1 | 2) => 14,
        (SIGSEGV, _) => 13,
        (SIGBUS, 1) => 17,
        (SIGBUS, _) => 14,
        (SIGILL, _) => 6,
        (SIGFPE, 1 | 2) => 0,
        (SIGFPE, _) => 19,
        (SIGTRAP, 1) => 3,
        (SIGTRAP, _) => 1,
        _ => 0,
    }
}

impl Process {
    pub(crate) fn deliver_signal_impl<P: Platform>(
        &mut self,
        platform: &P,
        tid: Tid,
        regs: &mut UserRegs,
        fpstate: &[u8],
        syscall: Option<u64>,
    ) -> SignalOutcome {
        let Some(thread) = self.threads.get_mut(&tid) else {
            return SignalOutcome::None;
        };
        let flagged = thread.sig.restart.take();
        let mut restart = match (syscall, is_restart_code(regs.rax)) {
            (Some(nr), Some(code)) => Some((nr, code)),
            (None, Some(code)) => flagged.filter(|&(_, c)| c == code),
            _ => None,
        };
        // Bounded: each turn consumes a pending signal or forces SIGSEGV at most twice.
        for _ in 0..(2 * super::signal::NSIG as usize + 4) {
            let mask = self.threads[&tid].sig.mask;
            let Some(q) = self.dequeue_signal(tid, !mask) else {
                break;
            };
            let sig = q.info.signo();
            let act = self.signals.action(sig);
            if sig == SIGKILL || act.handler == SIG_DFL {
                match default_action(sig) {
                    DefaultAction::Terminate => return terminate(sig),
                    DefaultAction::Ignore => continue,
                    DefaultAction::Stop => {
                        if self.warned.insert(WarnKey::Message("signal_stop")) {
                            log::warn!(
                                "signal {sig}: stop signals are ignored: there is no job control"
                            );
                        }
                        continue;
                    }
                }
            }
            if act.handler == SIG_IGN {
                continue;
            }
            if let Some((nr, code)) = restart.take() {
                handler_restart(regs, nr, code, act.flags);
                self.threads.get_mut(&tid).expect("thread").deadline = None;
            }
            match self.setup_frame(platform, tid, sig, &q.info, act, regs, fpstate, None) {
                Ok(()) => return SignalOutcome::Delivered,
                Err(_) => {
                    log::warn!(
                        "thread {tid}: no room for a signal {sig} frame at rsp {:#x}: SIGSEGV",
                        regs.rsp
                    );
                    self.force_sigsegv(tid, sig);
                }
            }
        }
        let thread = self.threads.get_mut(&tid).expect("thread");
        if let Some((nr, code)) = restart {
            // No handler ran: the call goes on as if nothing happened.
            regs.rip = regs.rip.wrapping_sub(2);
            regs.rax = nr;
            if code != ERESTART_RESTARTBLOCK {
                thread.deadline = None;
            }
        }
        if let Some(saved) = thread.sig.saved_mask.take() {
            thread.sig.mask = saved;
        }
        SignalOutcome::None
    }

    /// A frame could not be written: SIGSEGV is forced on the thread (reset to the default
    /// action if it was SIGSEGV's own frame that failed), as Linux's `force_sigsegv`.
    fn force_sigsegv(&mut self, tid: Tid, failed: u8) {
        if failed == SIGSEGV {
            let act = self.signals.action(SIGSEGV);
            self.signals.set_action(
                SIGSEGV,
                KSigaction {
                    handler: SIG_DFL,
                    ..act
                },
            );
        }
        let t = self.threads.get_mut(&tid).expect("thread");
        t.sig.mask &= !bit(SIGSEGV);
        t.sig
            .pending
            .push(SigInfo::kill(SIGSEGV, SI_KERNEL, 0, 0), None);
    }

    #[allow(clippy::too_many_arguments)]
    fn setup_frame<P: Platform>(
        &mut self,
        platform: &P,
        tid: Tid,
        sig: u8,
        info: &SigInfo,
        act: KSigaction,
        regs: &mut UserRegs,
        fpstate: &[u8],
        fault: Option<&Fault>,
    ) -> Result<(), Errno> {
        let xfeatures = platform.xsave_features();
        let xsave = xfeatures != 0 && fpstate.len() >= XSAVE_HEADER_END;
        let thread = &self.threads[&tid];
        let alt = thread.sig.altstack;
        let restore_mask = thread.sig.saved_mask.unwrap_or(thread.sig.mask);

        let nested = on_sig_stack(&alt, regs.rsp);
        let mut sp = regs.rsp.wrapping_sub(RED_ZONE);
        let mut entering = false;
        if act.flags & SA_ONSTACK != 0 && alt.size != 0 && !on_sig_stack(&alt, sp) {
            sp = alt.sp.wrapping_add(alt.size);
            entering = true;
        }
        let fp_len = fpstate.len() as u64 + if xsave { 4 } else { 0 };
        let fp_addr = sp.wrapping_sub(fp_len) & !63;
        let frame = (fp_addr.wrapping_sub(FRAME_SIZE as u64) & !15).wrapping_sub(8);
        if (nested || entering) && !within(&alt, frame) {
            return Err(Errno::EFAULT);
        }

        let mut fp = alloc::vec::Vec::with_capacity(fp_len as usize);
        fp.extend_from_slice(fpstate);
        if fp.len() >= FXSAVE_SIZE {
            fp[FP_SW_BYTES..FXSAVE_SIZE].fill(0);
        }
        if xsave {
            let size = fpstate.len() as u32;
            put_u32(&mut fp, FP_SW_BYTES, FP_XSTATE_MAGIC1);
            put_u32(&mut fp, FP_SW_BYTES + 4, size + 4);
            put_u64(&mut fp, FP_SW_BYTES + 8, xfeatures);
            put_u32(&mut fp, FP_SW_BYTES + 16, size);
            fp.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
            // As Linux: x87 and SSE state are always in the image.
            let bv = get_u64(&fp, FXSAVE_SIZE) | 3;
            put_u64(&mut fp, FXSAVE_SIZE, bv);
        }

        let mut f = [0u8; FRAME_SIZE];
        put_u64(&mut f, 0, act.restorer);
        let uc = UCONTEXT;
        let uc_flags =
            UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | if xfeatures != 0 { UC_FP_XSTATE } else { 0 };
        put_u64(&mut f, uc + UC_FLAGS, uc_flags);
        put_u64(&mut f, uc + UC_LINK, 0);
        put_u64(&mut f, uc + UC_STACK, alt.sp);
        put_u32(&mut f, uc + UC_STACK + 8, alt.flags as u32);
        put_u64(&mut f, uc + UC_STACK + 16, alt.size);
        let m = uc + UC_MCONTEXT;
        for (off, v) in [
            (sc::R8, regs.r8),
            (sc::R9, regs.r9),
            (sc::R10, regs.r10),
            (sc::R11, regs.r11),
            (sc::R12, regs.r12),
            (sc::R13, regs.r13),
            (sc::R14, regs.r14),
            (sc::R15, regs.r15),
            (sc::RDI, regs.rdi),
            (sc::RSI, regs.rsi),
            (sc::RBP, regs.rbp),
            (sc::RBX, regs.rbx),
            (sc::RDX, regs.rdx),
            (sc::RAX, regs.rax),
            (sc::RCX, regs.rcx),
            (sc::RSP, regs.rsp),
            (sc::RIP, regs.rip),
            (sc::EFLAGS, regs.rflags),
            (sc::OLDMASK, restore_mask),
            (sc::FPSTATE, fp_addr),
        ] {
            put_u64(&mut f, m + off, v);
        }
        put_u16(&mut f, m + sc::CS, USER_CS);
        put_u16(&mut f, m + sc::GS, 0);
        put_u16(&mut f, m + sc::FS, 0);
        put_u16(&mut f, m + sc::SS, USER_DS);
        if let Some(fault) = fault {
            put_u64(&mut f, m + sc::TRAPNO, trapno(fault));
            if matches!(fault.signal, SIGSEGV | SIGBUS) {
                put_u64(&mut f, m + sc::CR2, fault.addr);
                // Page-fault error code: user access (4), write unknown, present if ACCERR.
                put_u64(&mut f, m + sc::ERR, 4 | if fault.code == 2 { 1 } else { 0 });
            }
        }
        put_u64(&mut f, uc + UC_SIGMASK, restore_mask);
        f[SIGINFO..SIGINFO + SigInfo::SIZE].copy_from_slice(&info.0);

        {
            let ctx = Ctx {
                process: &mut *self,
                platform,
                tid,
                resumed: None,
            };
            ctx.write_bytes(fp_addr, &fp)?;
            ctx.write_bytes(frame, &f)?;
        }

        let thread = self.threads.get_mut(&tid).expect("thread");
        thread.sig.saved_mask = None;
        if alt.flags & SS_AUTODISARM != 0 {
            thread.sig.altstack = StackT {
                sp: 0,
                flags: SS_DISABLE,
                size: 0,
            };
        }
        let mut block = act.mask;
        if act.flags & SA_NODEFER == 0 {
            block |= bit(sig);
        }
        thread.sig.mask = (thread.sig.mask | block) & !UNBLOCKABLE;
        if act.flags & SA_RESETHAND != 0 {
            self.signals.set_action(
                sig,
                KSigaction {
                    handler: SIG_DFL,
                    ..act
                },
            );
        }

        regs.rdi = sig as u64;
        regs.rsi = frame + SIGINFO as u64;
        regs.rdx = frame + UCONTEXT as u64;
        regs.rax = 0;
        regs.rsp = frame;
        regs.rip = act.handler;
        regs.rflags &= !(DF | TF | RF);
        Ok(())
    }

    pub(crate) fn sigreturn_impl<P: Platform>(
        &mut self,
        platform: &P,
        tid: Tid,
        regs: &mut UserRegs,
        fpstate: &mut [u8],
    ) -> SignalOutcome {
        if !self.threads.contains_key(&tid) {
            return SEGV;
        }
        let frame = regs.rsp.wrapping_sub(8);
        let mut f = [0u8; FRAME_SIZE];
        let ctx = Ctx {
            process: &mut *self,
            platform,
            tid,
            resumed: None,
        };
        if ctx.read_bytes(frame, &mut f).is_err() {
            log::warn!("thread {tid}: rt_sigreturn with no readable frame at {frame:#x}: SIGSEGV");
            return SEGV;
        }
        let m = UCONTEXT + UC_MCONTEXT;
        let g = |off: usize| get_u64(&f, m + off);
        if restore_fpstate(&ctx, g(sc::FPSTATE), fpstate).is_err() {
            log::warn!(
                "thread {tid}: rt_sigreturn with a bad FPU state at {:#x}: SIGSEGV",
                g(sc::FPSTATE)
            );
            return SEGV;
        }
        let handler_sp = regs.rsp;
        *regs = UserRegs {
            r8: g(sc::R8),
            r9: g(sc::R9),
            r10: g(sc::R10),
            r11: g(sc::R11),
            r12: g(sc::R12),
            r13: g(sc::R13),
            r14: g(sc::R14),
            r15: g(sc::R15),
            rdi: g(sc::RDI),
            rsi: g(sc::RSI),
            rbp: g(sc::RBP),
            rbx: g(sc::RBX),
            rdx: g(sc::RDX),
            rax: g(sc::RAX),
            rcx: g(sc::RCX),
            rsp: g(sc::RSP),
            rip: g(sc::RIP),
            rflags: (regs.rflags & !SIGRETURN_FLAGS) | (g(sc::EFLAGS) & SIGRETURN_FLAGS),
            fs_base: regs.fs_base,
        };
        let mask = get_u64(&f, UCONTEXT + UC_SIGMASK) & !UNBLOCKABLE;
        let stack = StackT {
            sp: get_u64(&f, UCONTEXT + UC_STACK),
            flags: get_u32(&f, UCONTEXT + UC_STACK + 8) as i32,
            size: get_u64(&f, UCONTEXT + UC_STACK + 16),
        };
        let thread = self.threads.get_mut(&tid).expect("thread");
        thread.sig.mask = mask;
        // As Linux's restore_altstack: errors (on the stack, too small) leave it as it is.
        let _ = set_altstack(thread, stack, Some(handler_sp));
        SignalOutcome::None
    }

    pub(crate) fn fault_impl<P: Platform>(
        &mut self,
        platform: &P,
        tid: Tid,
        fault: Fault,
        regs: &mut UserRegs,
        fpstate: &[u8],
    ) -> SignalOutcome {
        let sig = fault.signal;
        if !(1..=super::signal::NSIG).contains(&sig) || !self.threads.contains_key(&tid) {
            return terminate(sig);
        }
        let act = self.signals.action(sig);
        let blocked = self.threads[&tid].sig.mask & bit(sig) != 0;
        if blocked || act.handler == SIG_IGN || act.handler == SIG_DFL {
            // force_sig: a blocked or ignored fault signal is reset to its default: death.
            self.signals.set_action(
                sig,
                KSigaction {
                    handler: SIG_DFL,
                    ..act
                },
            );
            return terminate(sig);
        }
        let info = SigInfo::fault(sig, fault.code, fault.addr);
        match self.setup_frame(platform, tid, sig, &info, act, regs, fpstate, Some(&fault)) {
            Ok(()) => SignalOutcome::Delivered,
            Err(_) => {
                log::warn!(
                    "thread {tid}: no room for a signal {sig} frame at rsp {:#x}: SIGSEGV",
                    regs.rsp
                );
                SEGV
            }
        }
    }
}

/// The register changes for a syscall a handler interrupted (Linux's `handle_signal`).
fn handler_restart(regs: &mut UserRegs, nr: u64, code: Errno, sa_flags: u64) {
    let again = match code {
        ERESTARTNOINTR => true,
        ERESTARTSYS => sa_flags & SA_RESTART != 0,
        _ => false, // ERESTARTNOHAND, ERESTART_RESTARTBLOCK
    };
    if again {
        regs.rip = regs.rip.wrapping_sub(2);
        regs.rax = nr;
    } else {
        regs.rax = Errno::EINTR.as_return() as u64;
    }
}

/// Copies the FPU state the frame points at into the kernel's image, checked so that the
/// kernel's XRSTOR/FXRSTOR cannot fault: a bad XSAVE header is an error; reserved MXCSR bits
/// are cleared (Linux sanitizes them too). A null pointer means the initial state.
fn restore_fpstate<P: Platform>(
    ctx: &Ctx<'_, P>,
    addr: u64,
    fpstate: &mut [u8],
) -> Result<(), Errno> {
    if fpstate.len() < FXSAVE_SIZE {
        return Ok(());
    }
    let mxcsr_mask = match get_u32(fpstate, 28) {
        0 => 0xffbf,
        m => m,
    };
    if addr == 0 {
        fpstate.fill(0);
        put_u16(fpstate, 0, 0x37f);
        put_u32(fpstate, 24, 0x1f80);
        put_u32(fpstate, 28, mxcsr_mask);
        return Ok(());
    }
    let mut legacy = [0u8; FXSAVE_SIZE];
    ctx.read_bytes(addr, &mut legacy)?;
    let features = ctx.platform.xsave_features();
    if features != 0 && fpstate.len() >= XSAVE_HEADER_END {
        let magic1 = get_u32(&legacy, FP_SW_BYTES);
        let extended = get_u32(&legacy, FP_SW_BYTES + 4) as usize;
        let sw_features = get_u64(&legacy, FP_SW_BYTES + 8);
        let size = get_u32(&legacy, FP_SW_BYTES + 16) as usize;
        let mut magic2 = [0u8; 4];
        let full = magic1 == FP_XSTATE_MAGIC1
            && (XSAVE_HEADER_END..=fpstate.len()).contains(&size)
            && extended == size + 4
            && ctx.read_bytes(addr + size as u64, &mut magic2).is_ok()
            && u32::from_le_bytes(magic2) == FP_XSTATE_MAGIC2;
        if full {
            let mut image = alloc::vec![0u8; size];
            ctx.read_bytes(addr, &mut image)?;
            let xcomp = get_u64(&image, FXSAVE_SIZE + 8);
            if xcomp != 0
                || image[FXSAVE_SIZE + 16..XSAVE_HEADER_END]
                    .iter()
                    .any(|&b| b != 0)
            {
                return Err(Errno::EINVAL);
            }
            let bv = get_u64(&image, FXSAVE_SIZE) & features & sw_features;
            fpstate.fill(0);
            fpstate[..size].copy_from_slice(&image);
            put_u64(fpstate, FXSAVE_SIZE, bv);
        } else {
            // A legacy image only: x87 and SSE from it, everything else initial.
            fpstate.fill(0);
            fpstate[..FXSAVE_SIZE].copy_from_slice(&legacy);
            put_u64(fpstate, FXSAVE_SIZE, 3);
        }
    } else {
        fpstate[..FXSAVE_SIZE].copy_from_slice(&legacy);
    }
    let mxcsr = get_u32(fpstate, 24) & mxcsr_mask;
    put_u32(fpstate, 24, mxcsr);
    put_u32(fpstate, 28, mxcsr_mask);
    Ok(())
}

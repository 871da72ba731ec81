//! Threads and the scheduler.
//!
//! Between syscalls a thread's whole kernel-side state is its user registers and its FPU
//! image: a syscall that must wait returns `Block` and is re-run from its `syscall`
//! instruction when woken (libc-shim's blocking protocol), so no thread ever sleeps on a
//! kernel stack. Switching threads is therefore "save these registers, load those" on one
//! kernel stack per CPU, from the syscall path, from the timer interrupt (preemption) or from
//! the idle loop.
//!
//! Policy: round robin with a 10 ms time slice. The local APIC timer is armed one-shot for
//! the earliest of: the end of the slice (when another thread is runnable), the earliest
//! blocked thread's deadline, and the process's next timer. With nothing to run the CPU
//! halts until an interrupt.

use alloc::collections::{BTreeMap, VecDeque};

use libc_shim::process::{Fault, SignalOutcome, SyscallOutcome, Tid, UserRegs};
use spin::Mutex;

use crate::app::{self, KernelPlatform};
use crate::arch::x86_64::cpu::{self, MSR_FS_BASE, read_msr};
use crate::arch::x86_64::fpu::FpuArea;
use crate::arch::x86_64::interrupts::TrapFrame;
use crate::arch::x86_64::resume::resume_user;
use crate::arch::x86_64::syscall::SyscallFrame;
use crate::drivers::{clock, exit, lapic, virtio};

/// How soon the timer fires again when it interrupted kernel code.
const RETRY_NS: u64 = 100_000;
/// Length of a time slice.
const SLICE_NS: u64 = 10_000_000;
/// How often a network device without a usable interrupt is polled.
const NET_POLL_NS: u64 = 1_000_000;
/// Length of the `syscall` instruction: a blocked call is re-run from `rip - 2`.
const SYSCALL_INSN_LEN: u64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Runnable,
    Running,
    Blocked { deadline: Option<u64> },
}

struct Thread {
    regs: UserRegs,
    fpu: FpuArea,
    state: State,
    /// Its registers sit on a `syscall` instruction to re-run (it blocked): signals wait until
    /// that call has returned, so that it can fail with EINTR or restart as Linux decides.
    rerun: bool,
}

struct Scheduler {
    threads: BTreeMap<Tid, Thread>,
    run_queue: VecDeque<Tid>,
    current: Option<Tid>,
    /// Whose FPU state is in the CPU registers.
    fpu_owner: Option<Tid>,
    /// When the current thread started running (accounting and slices).
    since: u64,
}

static SCHED: Mutex<Scheduler> =
    Mutex::new(Scheduler { threads: BTreeMap::new(), run_queue: VecDeque::new(), current: None, fpu_owner: None, since: 0 });

fn features() -> crate::arch::x86_64::cpu::Features {
    *app::FEATURES.get().expect("cpu features")
}

impl Scheduler {
    /// Marks the threads libc-shim woke as runnable.
    fn make_runnable(&mut self, woken: &[Tid]) {
        for &tid in woken {
            if let Some(t) = self.threads.get_mut(&tid) {
                if matches!(t.state, State::Blocked { .. }) {
                    t.state = State::Runnable;
                    self.run_queue.push_back(tid);
                }
            }
        }
    }

    /// Blocked threads whose deadline has passed.
    fn expired(&self, now: u64) -> alloc::vec::Vec<Tid> {
        self.threads
            .iter()
            .filter(|(_, t)| matches!(t.state, State::Blocked { deadline: Some(d) } if d <= now))
            .map(|(&tid, _)| tid)
            .collect()
    }

    fn earliest_deadline(&self) -> Option<u64> {
        self.threads
            .values()
            .filter_map(|t| match t.state {
                State::Blocked { deadline } => deadline,
                _ => None,
            })
            .min()
    }

    /// Stops the current thread: charges its run time to libc-shim and returns its tid.
    fn stop_current(&mut self, now: u64) -> Option<(Tid, u64)> {
        let tid = self.current.take()?;
        let ran = now.saturating_sub(self.since);
        Some((tid, ran))
    }

    /// Makes sure the CPU holds `tid`'s FPU state.
    fn load_fpu(&mut self, tid: Tid) {
        if self.fpu_owner == Some(tid) {
            return;
        }
        if let Some(owner) = self.fpu_owner.take() {
            if let Some(t) = self.threads.get(&owner) {
                t.fpu.save();
            }
        }
        if let Some(t) = self.threads.get(&tid) {
            t.fpu.restore();
            self.fpu_owner = Some(tid);
        }
    }

    /// Brings the thread's saved FPU image up to date (for a signal frame).
    fn sync_fpu(&mut self, tid: Tid) {
        if self.fpu_owner == Some(tid) {
            if let Some(t) = self.threads.get(&tid) {
                t.fpu.save();
            }
        }
    }
}

/// Registers of a thread that entered the kernel with SYSCALL.
fn regs_from_syscall(f: &SyscallFrame) -> UserRegs {
    UserRegs {
        r15: f.r15,
        r14: f.r14,
        r13: f.r13,
        r12: f.r12,
        rbp: f.rbp,
        rbx: f.rbx,
        // SYSCALL put the return address in rcx and the flags in r11, as Linux leaves them.
        r11: f.rflags,
        r10: f.r10,
        r9: f.r9,
        r8: f.r8,
        rax: f.rax,
        rcx: f.rip,
        rdx: f.rdx,
        rsi: f.rsi,
        rdi: f.rdi,
        rip: f.rip,
        rflags: f.rflags,
        rsp: f.rsp,
        fs_base: read_msr(MSR_FS_BASE),
    }
}

/// Registers of a thread interrupted in app code.
pub fn regs_from_trap(f: &TrapFrame) -> UserRegs {
    UserRegs {
        r15: f.r15,
        r14: f.r14,
        r13: f.r13,
        r12: f.r12,
        rbp: f.rbp,
        rbx: f.rbx,
        r11: f.r11,
        r10: f.r10,
        r9: f.r9,
        r8: f.r8,
        rax: f.rax,
        rcx: f.rcx,
        rdx: f.rdx,
        rsi: f.rsi,
        rdi: f.rdi,
        rip: f.rip,
        rflags: f.rflags,
        rsp: f.rsp,
        fs_base: read_msr(MSR_FS_BASE),
    }
}

/// Starts the app's first thread. Never returns.
pub fn start(tid: Tid, entry: u64, stack: u64) -> ! {
    let regs = UserRegs { rip: entry, rsp: stack, rflags: 0x202, ..UserRegs::default() };
    {
        let mut s = SCHED.lock();
        s.threads.insert(tid, Thread { regs, fpu: FpuArea::from_current(&features()), state: State::Runnable, rerun: false });
        s.fpu_owner = Some(tid);
        s.run_queue.push_back(tid);
    }
    schedule()
}

/// Picks the next runnable thread and runs it; halts while there is none. Never returns.
/// Call with no thread current (its registers saved or the thread gone).
fn schedule() -> ! {
    loop {
        let now = clock::monotonic_ns();
        // Deadlines and process timers first: they may make threads runnable.
        poll_time(now);
        let next = {
            let mut s = SCHED.lock();
            let mut chosen = None;
            while let Some(tid) = s.run_queue.pop_front() {
                if s.threads.get(&tid).is_some_and(|t| t.state == State::Runnable) {
                    chosen = Some(tid);
                    break;
                }
            }
            match chosen {
                Some(tid) => {
                    s.load_fpu(tid);
                    let t = s.threads.get_mut(&tid).expect("chosen thread exists");
                    t.state = State::Running;
                    let regs = t.regs;
                    let rerun = core::mem::take(&mut t.rerun);
                    s.current = Some(tid);
                    set_current(Some(tid));
                    s.since = now;
                    Some((tid, regs, rerun))
                }
                None => None,
            }
        };
        match next {
            Some((tid, regs, rerun)) => run(tid, regs, rerun),
            None => {
                arm_timer(clock::monotonic_ns());
                if log::log_enabled!(log::Level::Debug) {
                    let s = SCHED.lock();
                    if s.earliest_deadline().is_none() {
                        for (tid, t) in &s.threads {
                            log::debug!("idle: thread {tid} {:?} at rip {:#x}", t.state, t.regs.rip);
                        }
                    }
                }
                cpu::idle_once();
            }
        }
    }
}

/// Runs `tid` (already current and Running) with `regs`, delivering a pending signal first
/// unless the thread is about to re-run a blocked syscall (`rerun`): that call's return
/// delivers it.
fn run(tid: Tid, mut regs: UserRegs, rerun: bool) -> ! {
    set_rerun_pending(rerun);
    if !rerun && signal_pending(tid) {
        deliver(tid, &mut regs, None);
    }
    arm_timer(clock::monotonic_ns());
    resume_user(&regs)
}

fn signal_pending(tid: Tid) -> bool {
    app::with_process(|p| p.signal_pending(tid))
}

/// Lets libc-shim act on `tid`'s pending signal; `regs` are its registers about to run.
fn deliver(tid: Tid, regs: &mut UserRegs, syscall: Option<u64>) {
    let outcome = {
        let mut s = SCHED.lock();
        s.sync_fpu(tid);
        let t = s.threads.get_mut(&tid).expect("current thread exists");
        let fpstate = t.fpu.bytes();
        app::with_process(|p| p.deliver_signal(&KernelPlatform, tid, regs, fpstate, syscall))
    };
    match outcome {
        SignalOutcome::None | SignalOutcome::Delivered => {}
        SignalOutcome::Terminate { status, signal } => app::terminated_by_signal(status, signal),
    }
}

/// Times out blocked threads whose deadline passed, fires the process's timers and runs the
/// network stack when a frame arrived or its timers are due. True when a thread was woken.
fn poll_time(now: u64) -> bool {
    let expired = SCHED.lock().expired(now);
    let woken = app::with_process(|p| {
        for &tid in &expired {
            p.time_out(tid);
        }
        if p.next_timer().is_some_and(|d| d <= now) {
            p.run_timers(now);
        }
        // The network stack's own timers (retransmits, delayed ACKs, TIME_WAIT, DHCP).
        if virtio::net::take_pending() || p.net_poll_at(now).is_some_and(|d| d <= now) {
            p.net_poll(&KernelPlatform, now);
        }
        p.take_woken()
    });
    let mut s = SCHED.lock();
    // A thread whose deadline passed but that libc-shim had already woken is runnable anyway.
    for tid in expired {
        if let Some(t) = s.threads.get_mut(&tid) {
            if matches!(t.state, State::Blocked { .. }) {
                t.state = State::Blocked { deadline: None };
            }
        }
    }
    s.make_runnable(&woken);
    !woken.is_empty()
}

/// Arms the APIC timer for the next thing that needs the CPU's attention.
fn arm_timer(now: u64) {
    let process_timer = app::with_process(|p| match (p.next_timer(), p.net_poll_at(now)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    });
    let s = SCHED.lock();
    let mut next = s.earliest_deadline();
    if let Some(t) = process_timer {
        next = Some(next.map_or(t, |n| n.min(t)));
    }
    if s.current.is_some() && !s.run_queue.is_empty() {
        let slice_end = s.since + SLICE_NS;
        next = Some(next.map_or(slice_end, |n| n.min(slice_end)));
    }
    if virtio::net::polled() {
        let poll = now + NET_POLL_NS;
        next = Some(next.map_or(poll, |n| n.min(poll)));
    }
    drop(s);
    match next {
        Some(deadline) => lapic::arm_oneshot(deadline.saturating_sub(now).max(1)),
        None => lapic::disarm(),
    }
}

/// Saves the current thread's registers and puts it in `state`; charges its run time.
fn park_current(regs: UserRegs, state: State, now: u64) -> Option<Tid> {
    let (tid, ran) = {
        let mut s = SCHED.lock();
        let (tid, ran) = s.stop_current(now)?;
        if let Some(t) = s.threads.get_mut(&tid) {
            t.regs = regs;
            t.state = state;
            // Blocked: it will re-run its call. Preempted on that very `syscall` instruction:
            // it still will.
            t.rerun = matches!(state, State::Blocked { .. }) || rerun_pending();
        }
        if state == State::Runnable {
            s.run_queue.push_back(tid);
        }
        (tid, ran)
    };
    let woken = app::with_process(|p| {
        p.account(tid, ran);
        p.take_woken()
    });
    SCHED.lock().make_runnable(&woken);
    Some(tid)
}

/// The syscall path: runs the call in libc-shim and acts on the outcome. Returns when the
/// caller simply continues (rax set in `frame`); otherwise switches away and never returns.
pub fn syscall(frame: &mut SyscallFrame) {
    let nr = frame.rax;
    let args = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9];
    let tid = current_fast();
    set_rerun_pending(false);
    let (outcome, woken, pending) = app::with_process(|p| {
        if nr == SYS_SIGALTSTACK {
            // sigaltstack reports (and refuses changes) while the thread runs on it.
            p.set_user_sp(tid, frame.rsp);
        }
        let outcome = p.syscall(&KernelPlatform, tid, nr, args);
        let pending = matches!(outcome, SyscallOutcome::Return(_)) && p.signal_pending(tid);
        (outcome, p.take_woken(), pending)
    });
    // The common case: a plain return, nobody woken, no signal. Straight back to the app.
    if let (SyscallOutcome::Return(value), true, false) = (outcome, woken.is_empty(), pending) {
        frame.rax = value as u64;
        return;
    }
    let now = clock::monotonic_ns();
    if let SyscallOutcome::Block { deadline } = outcome {
        let mut regs = regs_from_syscall(frame);
        // Re-run the same call when woken: back onto the syscall instruction, rax = nr.
        regs.rip -= SYSCALL_INSN_LEN;
        regs.rax = nr;
        park_current(regs, State::Blocked { deadline }, now);
        // Only now: the caller itself may be among the woken (a signal was already pending).
        SCHED.lock().make_runnable(&woken);
        schedule();
    }
    if !woken.is_empty() {
        SCHED.lock().make_runnable(&woken);
    }
    match outcome {
        SyscallOutcome::Return(value) => {
            frame.rax = value as u64;
            if pending || value == ERESTARTSYS_RAW {
                let mut regs = regs_from_syscall(frame);
                deliver(tid, &mut regs, Some(nr));
                arm_timer(now);
                resume_user(&regs);
            }
            if !woken.is_empty() {
                arm_timer(now);
            }
        }
        SyscallOutcome::Yield => {
            frame.rax = 0;
            let others = !SCHED.lock().run_queue.is_empty();
            if others {
                park_current(regs_from_syscall(frame), State::Runnable, now);
                schedule();
            }
        }
        SyscallOutcome::Block { .. } => unreachable!("handled above"),
        SyscallOutcome::Spawn { child, stack, tls } => {
            let mut regs = regs_from_syscall(frame);
            regs.rax = 0;
            if stack != 0 {
                regs.rsp = stack;
            }
            if let Some(tls) = tls {
                regs.fs_base = tls;
            }
            {
                let mut s = SCHED.lock();
                s.sync_fpu(tid);
                let fpu = s.threads.get(&tid).expect("caller exists").fpu.clone();
                s.threads.insert(child, Thread { regs, fpu, state: State::Runnable, rerun: false });
                s.run_queue.push_back(child);
            }
            frame.rax = child as u64;
            arm_timer(now);
        }
        SyscallOutcome::ThreadExit => {
            {
                let mut s = SCHED.lock();
                s.stop_current(now);
                s.threads.remove(&tid);
                if s.fpu_owner == Some(tid) {
                    s.fpu_owner = None;
                }
            }
            schedule();
        }
        SyscallOutcome::SigReturn => {
            let mut regs = regs_from_syscall(frame);
            let outcome = {
                let mut s = SCHED.lock();
                s.sync_fpu(tid);
                let t = s.threads.get_mut(&tid).expect("current thread exists");
                let outcome = app::with_process(|p| p.sigreturn(&KernelPlatform, tid, &mut regs, t.fpu.bytes_mut()));
                t.fpu.sanitize();
                t.fpu.restore();
                s.fpu_owner = Some(tid);
                outcome
            };
            if let SignalOutcome::Terminate { status, signal } = outcome {
                app::terminated_by_signal(status, signal);
            }
            run(tid, regs, false);
        }
        SyscallOutcome::Exit { status, signal } => match signal {
            Some(sig) => app::terminated_by_signal(status, sig),
            None => {
                log::info!("app exited with status {status}");
                app::drain_network();
                app::sync_volumes();
                exit::exit_vm(status)
            }
        },
    }
}

/// sigaltstack's number: the only syscall that needs the caller's stack pointer.
const SYS_SIGALTSTACK: u64 = 131;

/// The raw rax of a syscall that must be restarted or fail with EINTR (Linux's ERESTARTSYS).
const ERESTARTSYS_RAW: i64 = -512;

/// The APIC timer fired. In app code: a chance to preempt, deliver signals and wake sleepers.
/// Anywhere else (the idle loop, a syscall waiting for a device) there is nothing to do here:
/// the interrupted code checks for itself.
pub fn timer_interrupt(frame: &mut TrapFrame) {
    lapic::eoi();
    if frame.rip >= libc_shim::mm::layout::USER_END {
        // Kernel code with interrupts enabled: the idle loop or a device wait (which re-arm
        // the timer themselves), or the last two instructions of the syscall return path,
        // which do not. Fire again shortly, when the CPU is back in app code, so that a
        // deadline or the end of a slice is never lost; the idle loop overrides this.
        lapic::arm_oneshot(RETRY_NS);
        return;
    }
    let now = clock::monotonic_ns();
    poll_time(now);
    let (tid, slice_over) = {
        let s = SCHED.lock();
        let Some(tid) = s.current else { return };
        (tid, now.saturating_sub(s.since) >= SLICE_NS && !s.run_queue.is_empty())
    };
    if slice_over {
        park_current(regs_from_trap(frame), State::Runnable, now);
        schedule();
    }
    // Not while a blocked call waits to be re-run: its return delivers the signal, as EINTR
    // or restart require.
    if !rerun_pending() && signal_pending(tid) {
        let mut regs = regs_from_trap(frame);
        deliver(tid, &mut regs, None);
        arm_timer(now);
        resume_user(&regs);
    }
    arm_timer(now);
}

/// A device interrupt that may make threads runnable (network frames arrived; the driver
/// raised its pending flag). In app code: run the stack now and give the CPU to a woken
/// thread. In kernel code (the idle loop, a device wait, the last instructions of the syscall
/// return path) the flag is picked up by the next [`poll_time`]: the idle loop runs it at once,
/// the others get a timer shortly, as [`timer_interrupt`] does.
pub fn device_interrupt(frame: &mut TrapFrame) {
    if frame.rip >= libc_shim::mm::layout::USER_END {
        lapic::arm_oneshot(RETRY_NS);
        return;
    }
    let now = clock::monotonic_ns();
    let woken = poll_time(now);
    let preempt = woken && {
        let s = SCHED.lock();
        s.current.is_some() && !s.run_queue.is_empty()
    };
    if preempt {
        park_current(regs_from_trap(frame), State::Runnable, now);
        schedule();
    }
    arm_timer(now);
}

/// A fault in app code that is not a lazily committed page: the app's signal handler runs,
/// or the process ends. Returns `false` when the caller must print the crash report and end
/// the VM with `128+signal`.
pub fn app_fault(frame: &mut TrapFrame, fault: Fault) -> bool {
    let Some(tid) = SCHED.try_lock().and_then(|s| s.current) else { return false };
    let mut regs = regs_from_trap(frame);
    let outcome = {
        let mut s = SCHED.lock();
        s.sync_fpu(tid);
        let t = s.threads.get_mut(&tid).expect("current thread exists");
        let fpstate = t.fpu.bytes();
        app::with_process(|p| p.fault(&KernelPlatform, tid, fault, &mut regs, fpstate))
    };
    match outcome {
        SignalOutcome::Delivered => {
            arm_timer(clock::monotonic_ns());
            resume_user(&regs)
        }
        // Re-running the instruction would fault again: nothing but the report is left.
        SignalOutcome::None | SignalOutcome::Terminate { .. } => false,
    }
}

/// The thread running on this CPU, from per-CPU data (no lock): the syscall path's question.
fn current_fast() -> Tid {
    // SAFETY: `percpu::current` is this CPU's PerCpu; `current_tid` is written only by this
    // CPU (in `set_current`), with interrupts disabled.
    unsafe { (*crate::arch::x86_64::percpu::current()).current_tid }
}

fn rerun_pending() -> bool {
    // SAFETY: as in `current_fast`.
    unsafe { (*crate::arch::x86_64::percpu::current()).rerun_pending }
}

fn set_rerun_pending(pending: bool) {
    // SAFETY: as in `current_fast`.
    unsafe { (*crate::arch::x86_64::percpu::current()).rerun_pending = pending };
}

fn set_current(tid: Option<Tid>) {
    // SAFETY: as in `current_fast`.
    unsafe { (*crate::arch::x86_64::percpu::current()).current_tid = tid.unwrap_or(0) };
}

/// The tid of the thread running on this CPU (for reports).
pub fn current_tid() -> Option<Tid> {
    SCHED.try_lock().and_then(|s| s.current)
}

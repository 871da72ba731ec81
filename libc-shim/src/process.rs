//! The state of the one process the VM runs, its threads, and the entry points the kernel
//! calls.
//!
//! # The blocking protocol
//! Handlers never sleep. A syscall that must wait returns [`SyscallOutcome::Block`]: the
//! kernel parks the calling thread with its registers rewound onto the `syscall` instruction
//! (rax = the number again), so that when the thread next runs it makes the very same call
//! again. Before that, whoever ends the wait records why in the thread ([`WakeReason`]) and
//! lists the thread in [`Process::take_woken`]; the re-run handler reads the reason with
//! `Ctx::resumed` and finishes (futex: 0 or ETIMEDOUT; sleep: done; a pipe read: look again).
//! A thread's kernel-side state between syscalls is therefore only its user registers, which
//! is what lets the kernel switch threads with one stack per CPU.
//!
//! The deadline a blocking call picks on its first run is kept in the thread
//! (`Thread::deadline`) until the call completes, so re-runs do not restart relative timeouts.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use crate::mm::Mm;
use crate::platform::Platform;
use crate::syscall::{self, Credentials, PrctlState, Rlimits, SignalState, ThreadSignals, TimerState, WarnKey};

/// A thread id. The first thread's is the pid.
pub type Tid = i32;

/// What the kernel must do after a syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallOutcome {
    /// Return this value in rax (already `-errno` for errors).
    Return(i64),
    /// Park the calling thread and run the syscall again when it is woken (see the module
    /// docs). With a deadline (monotonic ns) the kernel wakes it then through
    /// [`Process::time_out`] if nothing else did first.
    Block { deadline: Option<u64> },
    /// Let other runnable threads go first, then return 0.
    Yield,
    /// clone: a new thread `child` that starts where the caller returns, with rax = 0, its
    /// stack pointer at `stack` (0: the caller's), and FS base `tls` when given. The caller
    /// gets `child`.
    Spawn { child: Tid, stack: u64, tls: Option<u64> },
    /// The calling thread is gone (exit of a thread that is not the last).
    ThreadExit,
    /// rt_sigreturn: the kernel calls [`Process::sigreturn`] with the thread's registers.
    SigReturn,
    /// The process ends: exit_group/exit of the last thread (`signal: None`), or a signal whose
    /// default action terminates (`status` is then 128+signal).
    Exit { status: u8, signal: Option<u8> },
}

/// A thread's registers as the app sees them, in Linux's `user_regs_struct` terms: what the
/// kernel saves when a thread stops running and restores when it runs again. Signal delivery
/// edits them (to enter a handler) and rt_sigreturn replaces them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rip: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub fs_base: u64,
}

/// What happened when the kernel asked for a signal to be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalOutcome {
    /// Nothing to deliver; registers unchanged (except a transparent syscall restart).
    None,
    /// A handler frame was written to the app's stack and `regs` now enter the handler.
    Delivered,
    /// The signal's action ends the process (status 128+signal).
    Terminate { status: u8, signal: u8 },
}

/// A synchronous fault the CPU raised in app code, as Linux reports it in `siginfo_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub signal: u8,
    /// `si_code` (SEGV_MAPERR 1, SEGV_ACCERR 2, ILL_ILLOPN 2, FPE_INTDIV 1, BUS_ADRALN 1, ...).
    pub code: i32,
    /// `si_addr`: the faulting address (page faults) or instruction (others).
    pub addr: u64,
}

/// Why a blocked thread runs again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WakeReason {
    /// What it waited for happened (futex wake, data arrived, ...).
    Woken,
    /// Its deadline passed.
    TimedOut,
    /// A signal arrived for it.
    Interrupted,
}

/// Per-thread state.
#[derive(Debug, Clone)]
pub struct Thread {
    pub tid: Tid,
    /// set_tid_address / CLONE_CHILD_CLEARTID: zeroed and futex-woken when the thread exits.
    pub(crate) clear_child_tid: u64,
    /// set_robust_list: (head, len).
    pub(crate) robust_list: (u64, usize),
    /// Set by whoever ended this thread's wait; taken by the re-run syscall.
    pub(crate) wake: Option<WakeReason>,
    /// The deadline chosen by the blocked call's first run, kept until the call completes.
    pub(crate) deadline: Option<u64>,
    /// Whether the thread is parked in a blocking call.
    pub(crate) blocked: bool,
    /// Blocked mask, thread-directed pending signals, alternate stack.
    pub(crate) sig: ThreadSignals,
    /// The app's stack pointer at its current syscall, when the kernel reports it
    /// ([`Process::set_user_sp`]); sigaltstack needs it to tell whether it runs on the
    /// alternate stack.
    pub(crate) user_sp: Option<u64>,
    /// `comm` (prctl PR_SET_NAME), NUL-padded.
    pub(crate) name: [u8; 16],
    /// CPU time accounted to this thread ([`Process::account`]).
    pub(crate) cpu_ns: u64,
    /// setpriority's nice value, -20..=19.
    pub(crate) nice: i32,
    /// sched_setaffinity's mask (bytes, CPU 0 in bit 0); `None`: every CPU.
    pub(crate) affinity: Option<Vec<u8>>,
    /// Bytes a blocking stream send has already queued while it waits for room for the rest
    /// (Linux's blocking send transfers everything unless a signal or timeout intervenes).
    pub(crate) send_progress: usize,
}

impl Thread {
    pub(crate) fn new(tid: Tid) -> Self {
        Thread {
            tid,
            clear_child_tid: 0,
            robust_list: (0, 0),
            wake: None,
            deadline: None,
            blocked: false,
            sig: ThreadSignals::default(),
            user_sp: None,
            name: [0; 16],
            cpu_ns: 0,
            nice: 0,
            affinity: None,
            send_progress: 0,
        }
    }
}

/// The process: its address space, threads, and the per-process state syscalls record.
pub struct Process {
    pub mm: Mm,
    /// Where the program lives in the guest (readlink("/proc/self/exe")).
    pub exe_path: String,
    pub(crate) threads: BTreeMap<Tid, Thread>,
    next_tid: Tid,
    /// Threads whose wait ended since the kernel last asked.
    pub(crate) woken: Vec<Tid>,
    /// Futex waiters: address → (tid, bitset), oldest first.
    pub(crate) futex_waiters: BTreeMap<u64, Vec<(Tid, u32)>>,
    /// Files: mounts, fds, cwd, wait queues (see [`crate::fs::vfs`]).
    pub(crate) fs: crate::fs::vfs::FileState,
    /// Sockets: the TCP/IP stack and Unix socket names (see [`crate::net`]).
    pub(crate) net: crate::net::NetState,
    pub(crate) rlimits: Rlimits,
    pub(crate) signals: SignalState,
    pub(crate) timers: TimerState,
    pub(crate) prctl: PrctlState,
    /// User and group ids (root at start).
    pub(crate) creds: Credentials,
    pub(crate) umask: u32,
    /// What has been warned about once already (unsupported numbers, bad arguments).
    pub(crate) warned: BTreeSet<WarnKey>,
}

impl Process {
    /// The pid, which is also the first thread's tid.
    pub const PID: i32 = 1;

    /// A process whose address space is `mm` (already holding the loaded program and stack)
    /// and whose program lives at `exe_path` in the guest (for readlink("/proc/self/exe")).
    /// It has one thread, [`Process::PID`].
    pub fn new(mm: Mm, exe_path: &str) -> Self {
        let mut threads = BTreeMap::new();
        let mut main = Thread::new(Self::PID);
        // Linux's comm: the executable's base name, cut to 15 bytes.
        let base = exe_path.rsplit('/').next().unwrap_or(exe_path).as_bytes();
        let n = base.len().min(15);
        main.name[..n].copy_from_slice(&base[..n]);
        threads.insert(Self::PID, main);
        Process {
            mm,
            exe_path: String::from(exe_path),
            threads,
            next_tid: Self::PID + 1,
            woken: Vec::new(),
            futex_waiters: BTreeMap::new(),
            fs: crate::fs::vfs::FileState::new(),
            net: crate::net::NetState::default(),
            rlimits: Rlimits::default(),
            signals: SignalState::default(),
            timers: TimerState::default(),
            prctl: PrctlState::default(),
            creds: Credentials::default(),
            umask: 0o022,
            warned: BTreeSet::new(),
        }
    }

    /// Handles syscall `nr` of thread `tid` with raw register arguments (rdi, rsi, rdx, r10,
    /// r8, r9).
    pub fn syscall<P: Platform>(&mut self, platform: &P, tid: Tid, nr: u64, args: [u64; 6]) -> SyscallOutcome {
        syscall::dispatch(self, platform, tid, nr, args)
    }

    /// Threads whose wait ended (they are runnable again), oldest first.
    pub fn take_woken(&mut self) -> Vec<Tid> {
        // Sockets changed by the last call (a peer's data, a connection) wake their waiters.
        for (key, events) in self.net.take_pending() {
            self.notify_for(key, events);
        }
        core::mem::take(&mut self.woken)
    }

    /// The kernel's timer says `tid`'s deadline passed: end its wait with `TimedOut` (unless
    /// something else already woke it). Returns whether the thread must be made runnable.
    pub fn time_out(&mut self, tid: Tid) -> bool {
        self.end_wait(tid, WakeReason::TimedOut)
    }

    /// Ends `tid`'s wait, if it is waiting: records the reason, drops it from wait queues and
    /// queues it in `woken`. Returns whether it was waiting.
    pub(crate) fn end_wait(&mut self, tid: Tid, reason: WakeReason) -> bool {
        let Some(t) = self.threads.get_mut(&tid) else { return false };
        if !t.blocked {
            return false;
        }
        t.blocked = false;
        t.wake = Some(reason);
        for waiters in self.futex_waiters.values_mut() {
            waiters.retain(|&(w, _)| w != tid);
        }
        self.futex_waiters.retain(|_, w| !w.is_empty());
        self.fs.waits.remove_thread(tid);
        self.woken.push(tid);
        true
    }

    /// A fresh thread id for clone.
    pub(crate) fn alloc_tid(&mut self) -> Tid {
        let tid = self.next_tid;
        self.next_tid += 1;
        tid
    }

    /// What a new thread inherits from the thread that cloned it: the signal mask, the name,
    /// nice value and affinity; not pending signals or the alternate stack (Linux).
    pub(crate) fn on_clone(&mut self, parent: Tid, child: &mut Thread) {
        let Some(p) = self.threads.get(&parent) else { return };
        child.sig.mask = p.sig.mask;
        child.name = p.name;
        child.nice = p.nice;
        child.affinity = p.affinity.clone();
    }

    /// Optional: the app's stack pointer when `tid` entered its current syscall. Only
    /// sigaltstack uses it (SS_ONSTACK in the old value, EPERM when changing the alternate
    /// stack while running on it); without it a thread counts as not on its alternate stack.
    pub fn set_user_sp(&mut self, tid: Tid, rsp: u64) {
        if let Some(t) = self.threads.get_mut(&tid) {
            t.user_sp = Some(rsp);
        }
    }

    // --- signals and timers (the kernel's side of the contract) -----------------------------

    /// Whether `tid` has a signal to act on now (pending and not blocked). The kernel asks on
    /// every return to the app and then calls [`Process::deliver_signal`].
    ///
    /// Also true after a syscall returned a kernel-internal restart code (-512..-516 in rax):
    /// `deliver_signal` must then run even if the signal went elsewhere meanwhile, so that the
    /// app never sees those values (it restarts the call).
    pub fn signal_pending(&self, tid: Tid) -> bool {
        self.threads.get(&tid).is_some_and(|t| {
            t.sig.restart.is_some() || (t.sig.pending.set | self.signals.shared.set) & !t.sig.mask != 0
        })
    }

    /// Acts on `tid`'s next deliverable signal before it returns to the app with `regs`
    /// (`fpstate`: its XSAVE/FXSAVE image, written into the frame). `syscall` is the number
    /// when `regs` is the return from that syscall (rax = its result), so that an interrupted
    /// call is restarted or fails with EINTR as the handler's SA_RESTART says.
    pub fn deliver_signal<P: Platform>(
        &mut self,
        platform: &P,
        tid: Tid,
        regs: &mut UserRegs,
        fpstate: &[u8],
        syscall: Option<u64>,
    ) -> SignalOutcome {
        self.deliver_signal_impl(platform, tid, regs, fpstate, syscall)
    }

    /// rt_sigreturn: restores `regs`, `fpstate` and the signal mask from the frame at
    /// `regs.rsp`. A frame that cannot be read kills the thread's process with SIGSEGV.
    ///
    /// `regs` are the thread's registers at the rt_sigreturn syscall (rsp just above the
    /// popped pretcode). Returns [`SignalOutcome::None`] with `regs` and `fpstate` replaced
    /// (fs_base is kept), or `Terminate` for a bad frame. The restored mask may unblock a
    /// pending signal: ask [`Process::signal_pending`] again (with `syscall: None`).
    pub fn sigreturn<P: Platform>(&mut self, platform: &P, tid: Tid, regs: &mut UserRegs, fpstate: &mut [u8]) -> SignalOutcome {
        self.sigreturn_impl(platform, tid, regs, fpstate)
    }

    /// A fault the CPU raised in `tid`'s code: enter its handler (the frame's registers are
    /// `regs`) or, with none installed or the signal blocked, terminate.
    pub fn fault<P: Platform>(&mut self, platform: &P, tid: Tid, fault: Fault, regs: &mut UserRegs, fpstate: &[u8]) -> SignalOutcome {
        self.fault_impl(platform, tid, fault, regs, fpstate)
    }

    /// The earliest deadline (monotonic ns) of the process's timers (alarm, setitimer,
    /// timer_create), so the kernel can arm its timer.
    pub fn next_timer(&self) -> Option<u64> {
        self.next_timer_impl()
    }

    /// Fires the timers due at `now`: queues their signals and interrupts the threads they
    /// target (listed in [`Process::take_woken`]).
    pub fn run_timers(&mut self, now: u64) {
        self.run_timers_impl(now)
    }

    /// Adds `ns` of CPU time to `tid` (CLOCK_THREAD_CPUTIME_ID, CLOCK_PROCESS_CPUTIME_ID,
    /// getrusage, times).
    /// CPU-time timers (ITIMER_VIRTUAL/PROF, timer_create on the CPU clocks) fire from here.
    pub fn account(&mut self, tid: Tid, ns: u64) {
        self.account_impl(tid, ns)
    }

    /// Writes every mounted filesystem's data to its device, as a clean exit must (volumes
    /// keep what the app wrote). Returns the first error (EIO), after trying them all.
    pub fn sync_all(&mut self) -> Result<(), crate::Errno> {
        let all: Vec<_> = self.fs.mounts.iter().filter_map(|(id, _)| self.fs.mounts.fs(id).cloned()).collect();
        let mut result = Ok(());
        for fs in all {
            if let Err(e) = fs.sync(None) {
                result = result.and(Err(e));
            }
        }
        result
    }

    /// Number of live threads.
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// Whether `nr` has been reported as unsupported (tests and diagnostics).
    pub fn warned_unsupported(&self, nr: u64) -> bool {
        self.warned.contains(&WarnKey::Unsupported(nr))
    }
}

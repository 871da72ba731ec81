//! The syscall table and its handlers.
//!
//! Layers, from the ABI boundary inwards:
//!
//! * [`dispatch`] is the only place that sees raw registers and the only place that turns an
//!   [`Errno`] into `-errno`, logs the strace-like trace line and warns (once per number)
//!   about unsupported syscalls.
//! * [`table`] is the one declarative list of every x86_64 syscall: number, name, support
//!   [`table::Status`] and handler. It also feeds the ledger ([`ledger`], `docs/syscalls.md`).
//! * [`args`] decodes registers into typed arguments (`Fd`, `UserPtr<T>`, bitflags) from the
//!   handler's own signature, so a handler never sees a raw `u64` it has to interpret.
//! * [`user`] is the checked, fallible access to app memory: a bad pointer is `EFAULT`.
//! * [`linux`] holds Linux struct layouts with explicit little-endian serialization.
//! * One file per area holds the `sys_*` handlers; they return `Result<usize, Errno>`
//!   (or a [`Reply`] when the process may end) and may not touch raw registers.

pub mod args;
pub mod ledger;
pub mod linux;
pub mod table;
pub mod user;

mod creds;
mod epoll;
pub(crate) mod file_mmap;
mod files;
mod paths;
pub(crate) mod limits;
mod poll;
mod mem;
mod process_info;
mod signal;
mod signal_frame;
mod socket;
mod thread;
mod time;
mod timer;

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod readiness_tests;
#[cfg(test)]
mod sched_tests;
#[cfg(test)]
mod signal_tests;
#[cfg(test)]
mod socket_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod thread_tests;
#[cfg(test)]
mod timer_tests;

use alloc::string::String;
use core::fmt::Write as _;

use crate::errno::Errno;
use crate::platform::Platform;
use crate::process::{Process, SyscallOutcome, Thread, Tid, WakeReason};

pub use creds::Credentials;
pub use limits::Rlimits;
pub use process_info::PrctlState;
pub use signal::{SignalState, ThreadSignals};
pub use timer::TimerState;
pub use table::{Status, SyscallInfo, TABLE};

/// What a handler hands back to the dispatcher when returning a value is not the only option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Return this (non-negative) value to the app.
    Value(usize),
    /// Park the thread; the call runs again when it is woken (see [`crate::process`]).
    /// Made with [`Ctx::block`], which records the deadline.
    Block { deadline: Option<u64> },
    /// Let other threads run first, then return 0.
    Yield,
    /// A new thread (clone).
    Spawn { child: Tid, stack: u64, tls: Option<u64> },
    /// The calling thread ends.
    ThreadExit,
    /// rt_sigreturn: the kernel restores the registers saved in the signal frame.
    SigReturn,
    /// The process ends.
    Exit { status: u8, signal: Option<u8> },
}

impl Reply {
    /// The process is killed by `signal` (exit status 128+signal, as a shell reports it).
    pub fn killed_by(signal: u8) -> Reply {
        Reply::Exit {
            status: 128u8.wrapping_add(signal),
            signal: Some(signal),
        }
    }
}

/// What a handler's return value means to the dispatcher.
pub trait IntoReply {
    fn into_reply(self) -> Result<Reply, Errno>;
}

impl IntoReply for Result<usize, Errno> {
    fn into_reply(self) -> Result<Reply, Errno> {
        self.map(Reply::Value)
    }
}

impl IntoReply for Result<Reply, Errno> {
    fn into_reply(self) -> Result<Reply, Errno> {
        self
    }
}

impl IntoReply for Reply {
    fn into_reply(self) -> Result<Reply, Errno> {
        Ok(self)
    }
}

/// Everything a handler may use: the process state, the calling thread and the platform.
pub struct Ctx<'a, P: Platform> {
    pub process: &'a mut Process,
    pub platform: &'a P,
    /// The calling thread.
    pub tid: Tid,
    /// Why this call runs again after blocking; `None` on a first run.
    pub resumed: Option<WakeReason>,
}

impl<P: Platform> Ctx<'_, P> {
    /// The calling thread.
    pub fn thread(&self) -> &Thread {
        self.process.threads.get(&self.tid).expect("the calling thread exists")
    }

    pub fn thread_mut(&mut self) -> &mut Thread {
        self.process.threads.get_mut(&self.tid).expect("the calling thread exists")
    }

    /// Parks the calling thread until it is woken or, with a deadline (monotonic ns), until
    /// then. The deadline is kept across re-runs of the call: read it with [`Ctx::deadline`].
    pub fn block(&mut self, deadline: Option<u64>) -> Reply {
        let thread = self.thread_mut();
        thread.blocked = true;
        thread.deadline = deadline;
        Reply::Block { deadline }
    }

    /// The deadline this call chose when it first blocked (re-runs keep it).
    pub fn deadline(&self) -> Option<u64> {
        self.thread().deadline
    }

    /// Ends the wait of `tid` (if it waits) with `reason`.
    pub fn wake(&mut self, tid: Tid, reason: WakeReason) -> bool {
        self.process.end_wait(tid, reason)
    }

    /// Logs `message` at warn level the first time `key` is seen in this process.
    pub fn warn_once(&mut self, key: &'static str, message: core::fmt::Arguments<'_>) {
        if self.process.warned.insert(WarnKey::Message(key)) {
            log::warn!("{message}");
        }
    }
}

/// What the per-process "warn once" set remembers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum WarnKey {
    /// An unsupported syscall number.
    Unsupported(u64),
    /// An argument of a syscall that failed to decode (unknown flag bits, bad value).
    BadArg(u64, usize),
    /// A handler's own one-time warning.
    Message(&'static str),
}

/// Handles syscall `nr` for `process`: decode, run, trace, encode. The ABI boundary.
pub fn dispatch<P: Platform>(
    process: &mut Process,
    platform: &P,
    tid: Tid,
    nr: u64,
    raw: [u64; 6],
) -> SyscallOutcome {
    let info = table::info(nr);
    let name = info.map_or("unknown", |i| i.name);
    let mut resumed = None;
    if let Some(t) = process.threads.get_mut(&tid) {
        resumed = t.wake.take();
        if resumed.is_none() && t.sig.restart.take().is_some() {
            // A restart code the kernel never handed to `deliver_signal`: this is a new call,
            // not the continuation of the interrupted one.
            t.deadline = None;
        }
    }
    let mut ctx = Ctx { process, platform, tid, resumed };
    let (result, args_text) = match table::invoke(nr, &mut ctx, &raw) {
        Some(Ok(invoked)) => (invoked.reply, invoked.args),
        Some(Err(bad)) => {
            if ctx.process.warned.insert(WarnKey::BadArg(nr, bad.index)) {
                log::warn!(
                    "{name} ({nr}): argument {} = {:#x}: {}: returning EINVAL",
                    bad.index,
                    raw[bad.index],
                    bad.error
                );
            }
            (Err(Errno::EINVAL), None)
        }
        None => {
            let silent = matches!(info.map(|i| i.status), Some(Status::EnosysByDesign(_)));
            if !silent && ctx.process.warned.insert(WarnKey::Unsupported(nr)) {
                log::warn!("unsupported syscall {name} ({nr}): returning ENOSYS");
            }
            (Err(Errno::ENOSYS), None)
        }
    };
    if log::log_enabled!(log::Level::Trace) {
        trace_line(tid, name, nr, &raw, args_text, &result);
    }
    match result {
        Ok(Reply::Block { .. }) => {
            // A signal that arrived before the thread parks must not be slept through: the
            // wait ends at once and the re-run call sees `Interrupted`.
            if ctx.process.should_interrupt(tid) {
                ctx.process.end_wait(tid, WakeReason::Interrupted);
            }
        }
        Err(code) if signal::is_restart_code(code.as_return() as u64).is_some() => {
            // Interrupted by a signal: delivery decides between restart and EINTR, and keeps
            // the deadline when the call goes on where it stopped.
            if let Some(t) = ctx.process.threads.get_mut(&tid) {
                t.sig.restart = Some((nr, code));
            }
        }
        _ => {
            // The call is complete: forget the deadline it may have blocked with.
            if let Some(t) = ctx.process.threads.get_mut(&tid)
                && t.deadline.is_some()
            {
                t.deadline = None;
            }
        }
    }
    match result {
        Ok(Reply::Value(v)) => SyscallOutcome::Return(v as i64),
        Ok(Reply::Block { deadline }) => SyscallOutcome::Block { deadline },
        Ok(Reply::Yield) => SyscallOutcome::Yield,
        Ok(Reply::Spawn { child, stack, tls }) => SyscallOutcome::Spawn { child, stack, tls },
        Ok(Reply::ThreadExit) => SyscallOutcome::ThreadExit,
        Ok(Reply::SigReturn) => SyscallOutcome::SigReturn,
        Ok(Reply::Exit { status, signal }) => SyscallOutcome::Exit { status, signal },
        Err(e) => SyscallOutcome::Return(e.as_return()),
    }
}

fn trace_line(
    tid: Tid,
    name: &str,
    nr: u64,
    raw: &[u64; 6],
    args: Option<String>,
    result: &Result<Reply, Errno>,
) {
    let args = args.unwrap_or_else(|| {
        let mut s = String::new();
        for (i, a) in raw.iter().enumerate() {
            let _ = write!(s, "{}{a:#x}", if i > 0 { ", " } else { "" });
        }
        s
    });
    match result {
        Ok(Reply::Value(v)) if *v > 0xffff => log::trace!("[{tid}] {name}({args}) = {v:#x}"),
        Ok(Reply::Value(v)) => log::trace!("[{tid}] {name}({args}) = {v}"),
        Ok(Reply::Block { deadline }) => log::trace!("[{tid}] {name}({args}) blocks (deadline {deadline:?})"),
        Ok(Reply::Yield) => log::trace!("[{tid}] {name}({args}) yields"),
        Ok(Reply::Spawn { child, .. }) => log::trace!("[{tid}] {name}({args}) = {child} (new thread)"),
        Ok(Reply::ThreadExit) => log::trace!("[{tid}] {name}({args}): thread exits"),
        Ok(Reply::SigReturn) => log::trace!("[{tid}] {name}({args}): returns from a signal handler"),
        Ok(Reply::Exit { status, signal }) => {
            log::trace!("[{tid}] {name}({args}) = exit status {status} signal {signal:?}")
        }
        Err(e) => log::trace!("[{tid}] {name}({args}) = -1 {} [nr {nr}]", e.name()),
    }
}

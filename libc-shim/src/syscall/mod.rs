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

mod console;
mod limits;
mod mem;
mod process_info;
mod signal;
mod time;

#[cfg(test)]
mod tests;

use alloc::string::String;
use core::fmt::Write as _;

use crate::errno::Errno;
use crate::platform::Platform;
use crate::process::{Process, SyscallOutcome};

pub use limits::Rlimits;
pub use signal::SignalState;
pub use table::{Status, SyscallInfo, TABLE};

/// What a handler hands back to the dispatcher when returning a value is not the only option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Return this (non-negative) value to the app.
    Value(usize),
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

/// Everything a handler may use: the process state and the platform.
pub struct Ctx<'a, P: Platform> {
    pub process: &'a mut Process,
    pub platform: &'a P,
}

impl<P: Platform> Ctx<'_, P> {
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
    nr: u64,
    raw: [u64; 6],
) -> SyscallOutcome {
    let info = table::info(nr);
    let name = info.map_or("unknown", |i| i.name);
    let mut ctx = Ctx { process, platform };
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
        trace_line(name, nr, &raw, args_text, &result);
    }
    match result {
        Ok(Reply::Value(v)) => SyscallOutcome::Return(v as i64),
        Ok(Reply::Exit { status, signal }) => SyscallOutcome::Exit { status, signal },
        Err(e) => SyscallOutcome::Return(e.as_return()),
    }
}

fn trace_line(
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
        Ok(Reply::Value(v)) if *v > 0xffff => log::trace!("{name}({args}) = {v:#x}"),
        Ok(Reply::Value(v)) => log::trace!("{name}({args}) = {v}"),
        Ok(Reply::Exit { status, signal }) => {
            log::trace!("{name}({args}) = exit status {status} signal {signal:?}")
        }
        Err(e) => log::trace!("{name}({args}) = -1 {} [nr {nr}]", e.name()),
    }
}

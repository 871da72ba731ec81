//! Threads and futexes: clone/clone3, exit, exit_group, gettid, set_tid_address, the robust
//! list, sched_yield, and futex with every operation glibc, musl, Go and Rust use.
//!
//! A futex is keyed by its address: there is one address space, so private and shared futexes
//! are the same thing. Waiters queue in [`Process::futex_waiters`] oldest first; waking ends
//! their wait ([`crate::process`]'s blocking protocol) and the re-run `FUTEX_WAIT` returns 0.

use alloc::vec::Vec;

use super::args::{UserPtr, flags_arg};
use super::signal::{ERESTART_RESTARTBLOCK, ERESTARTSYS};
use super::linux::Timespec;
use super::{Ctx, Reply};
use crate::errno::Errno;
use crate::platform::{Platform, Prot};
use crate::process::{Process, Thread, Tid, WakeReason};

pub fn sys_exit_group<P: Platform>(_ctx: &mut Ctx<'_, P>, code: i32) -> Reply {
    Reply::Exit { status: (code & 0xff) as u8, signal: None }
}

/// Ends the calling thread: its `clear_child_tid` word is zeroed and futex-woken (how
/// pthread_join learns of it). The last thread's exit is the process's.
pub fn sys_exit<P: Platform>(ctx: &mut Ctx<'_, P>, code: i32) -> Reply {
    if ctx.process.threads.len() <= 1 {
        return sys_exit_group(ctx, code);
    }
    let clear = ctx.thread().clear_child_tid;
    if clear != 0 && ctx.write(UserPtr::<u32>::new(clear), &0).is_ok() {
        futex_wake(ctx.process, clear, 1, u32::MAX);
    }
    ctx.process.threads.remove(&ctx.tid);
    Reply::ThreadExit
}

pub fn sys_gettid<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(ctx.tid as usize)
}

pub fn sys_set_tid_address<P: Platform>(ctx: &mut Ctx<'_, P>, tidptr: u64) -> Result<usize, Errno> {
    ctx.thread_mut().clear_child_tid = tidptr;
    Ok(ctx.tid as usize)
}

/// `sizeof(struct robust_list_head)` on x86_64.
const ROBUST_LIST_HEAD_LEN: usize = 24;

pub fn sys_set_robust_list<P: Platform>(ctx: &mut Ctx<'_, P>, head: u64, len: usize) -> Result<usize, Errno> {
    if len != ROBUST_LIST_HEAD_LEN {
        return Err(Errno::EINVAL);
    }
    ctx.thread_mut().robust_list = (head, len);
    Ok(0)
}

pub fn sys_get_robust_list<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    tid: i32,
    head: UserPtr<u64>,
    len: UserPtr<u64>,
) -> Result<usize, Errno> {
    let target = if tid == 0 { ctx.tid } else { tid };
    let (h, _) = ctx.process.threads.get(&target).ok_or(Errno::ESRCH)?.robust_list;
    ctx.write(len, &(ROBUST_LIST_HEAD_LEN as u64))?;
    ctx.write(head, &h)?;
    Ok(0)
}

pub fn sys_sched_yield<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Reply {
    Reply::Yield
}

bitflags::bitflags! {
    /// `CLONE_*` flags (the low byte, the exit signal, is split off before decoding).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct CloneFlags: u64 {
        const VM = 0x100;
        const FS = 0x200;
        const FILES = 0x400;
        const SIGHAND = 0x800;
        const PIDFD = 0x1000;
        const PTRACE = 0x2000;
        const VFORK = 0x4000;
        const PARENT = 0x8000;
        const THREAD = 0x1_0000;
        const NEWNS = 0x2_0000;
        const SYSVSEM = 0x4_0000;
        const SETTLS = 0x8_0000;
        const PARENT_SETTID = 0x10_0000;
        const CHILD_CLEARTID = 0x20_0000;
        const DETACHED = 0x40_0000;
        const UNTRACED = 0x80_0000;
        const CHILD_SETTID = 0x100_0000;
        const NEWCGROUP = 0x200_0000;
        const NEWUTS = 0x400_0000;
        const NEWIPC = 0x800_0000;
        const NEWUSER = 0x1000_0000;
        const NEWPID = 0x2000_0000;
        const NEWNET = 0x4000_0000;
        const IO = 0x8000_0000;
    }
}

/// The raw clone flags word: exit signal in the low byte, `CLONE_*` above.
#[derive(Debug, Clone, Copy)]
pub struct CloneWord(pub u64);

impl super::args::FromReg for CloneWord {
    fn from_reg(raw: u64) -> Result<Self, super::args::ArgError> {
        Ok(CloneWord(raw))
    }
}

/// Everything clone and clone3 agree on.
struct CloneRequest {
    flags: u64,
    exit_signal: u64,
    /// Initial stack pointer of the child (0: the caller's).
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
}

/// The flag sets a thread library uses; anything else would need a second process.
const THREAD_FLAGS: CloneFlags = CloneFlags::VM.union(CloneFlags::SIGHAND).union(CloneFlags::THREAD);
/// Flags Kiln accepts on a thread clone (the rest are namespaces, ptrace and the like).
const ACCEPTED: CloneFlags = CloneFlags::VM
    .union(CloneFlags::FS)
    .union(CloneFlags::FILES)
    .union(CloneFlags::SIGHAND)
    .union(CloneFlags::THREAD)
    .union(CloneFlags::SYSVSEM)
    .union(CloneFlags::SETTLS)
    .union(CloneFlags::PARENT_SETTID)
    .union(CloneFlags::CHILD_CLEARTID)
    .union(CloneFlags::DETACHED)
    .union(CloneFlags::CHILD_SETTID)
    .union(CloneFlags::IO);

fn do_clone<P: Platform>(ctx: &mut Ctx<'_, P>, req: CloneRequest) -> Result<Reply, Errno> {
    let Some(flags) = CloneFlags::from_bits(req.flags) else {
        return Err(Errno::EINVAL);
    };
    if !flags.contains(CloneFlags::VM) {
        ctx.warn_once(
            "fork",
            format_args!("fork/vfork (clone without CLONE_VM) needs a second address space; Kiln runs one process: returning ENOSYS"),
        );
        return Err(Errno::ENOSYS);
    }
    if !flags.contains(THREAD_FLAGS) || flags.contains(CloneFlags::VFORK) || !ACCEPTED.contains(flags) {
        ctx.warn_once(
            "clone_flags",
            format_args!("clone with flags {:#x}: only threads (CLONE_VM|CLONE_SIGHAND|CLONE_THREAD, ...) are supported: returning EINVAL", req.flags),
        );
        return Err(Errno::EINVAL);
    }
    if req.exit_signal != 0 {
        return Err(Errno::EINVAL);
    }
    let child = ctx.process.alloc_tid();
    if flags.contains(CloneFlags::PARENT_SETTID) {
        ctx.write(UserPtr::<u32>::new(req.parent_tid), &(child as u32))?;
    }
    if flags.contains(CloneFlags::CHILD_SETTID) {
        ctx.write(UserPtr::<u32>::new(req.child_tid), &(child as u32))?;
    }
    let mut thread = Thread::new(child);
    if flags.contains(CloneFlags::CHILD_CLEARTID) {
        thread.clear_child_tid = req.child_tid;
    }
    ctx.process.on_clone(ctx.tid, &mut thread);
    ctx.process.threads.insert(child, thread);
    let tls = flags.contains(CloneFlags::SETTLS).then_some(req.tls);
    Ok(Reply::Spawn { child, stack: req.stack, tls })
}

pub fn sys_clone<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    flags: CloneWord,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> Result<Reply, Errno> {
    do_clone(ctx, CloneRequest { flags: flags.0 & !0xff, exit_signal: flags.0 & 0xff, stack, parent_tid, child_tid, tls })
}

/// `struct clone_args`, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
const CLONE_ARGS_VER0: usize = 64;

pub fn sys_clone3<P: Platform>(ctx: &mut Ctx<'_, P>, args: UserPtr<u8>, size: usize) -> Result<Reply, Errno> {
    if !(CLONE_ARGS_VER0..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut raw = alloc::vec![0u8; size];
    ctx.read_bytes(args.addr(), &mut raw)?;
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    // Fields past the ones Kiln knows must be zero (Linux's rule for extensible structs).
    if raw.len() > 88 && raw[88..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) =
        (word(0), word(1), word(2), word(3), word(4), word(5), word(6), word(7));
    if pidfd != 0 && flags & CloneFlags::PIDFD.bits() != 0 {
        return Err(Errno::EINVAL);
    }
    if size >= 80 && word(9) != 0 {
        // set_tid: choosing the child's tid is for checkpoint/restore.
        return Err(Errno::EINVAL);
    }
    let top = if stack == 0 { 0 } else { stack.checked_add(stack_size).ok_or(Errno::EINVAL)? };
    do_clone(ctx, CloneRequest { flags, exit_signal, stack: top, parent_tid, child_tid, tls })
}

// --- futex ----------------------------------------------------------------------------------

const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const FUTEX_REQUEUE: u32 = 3;
const FUTEX_CMP_REQUEUE: u32 = 4;
const FUTEX_WAKE_OP: u32 = 5;
const FUTEX_WAIT_BITSET: u32 = 9;
const FUTEX_WAKE_BITSET: u32 = 10;
const FUTEX_PRIVATE_FLAG: u32 = 128;
const FUTEX_CLOCK_REALTIME: u32 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// Wakes up to `count` waiters on `addr` whose bitset intersects `bitset`; returns how many.
pub(crate) fn futex_wake(process: &mut Process, addr: u64, count: u32, bitset: u32) -> usize {
    let Some(waiters) = process.futex_waiters.get(&addr) else { return 0 };
    let chosen: Vec<Tid> =
        waiters.iter().filter(|&&(_, b)| b & bitset != 0).take(count as usize).map(|&(t, _)| t).collect();
    for &tid in &chosen {
        process.end_wait(tid, WakeReason::Woken);
    }
    chosen.len()
}

/// Moves up to `count` waiters from `from` to `to` (they keep waiting); returns how many.
fn futex_requeue(process: &mut Process, from: u64, to: u64, count: u32) -> usize {
    let Some(waiters) = process.futex_waiters.get_mut(&from) else { return 0 };
    let n = (count as usize).min(waiters.len());
    let moved: Vec<(Tid, u32)> = waiters.drain(..n).collect();
    if waiters.is_empty() {
        process.futex_waiters.remove(&from);
    }
    process.futex_waiters.entry(to).or_default().extend(moved);
    n
}

fn read_futex<P: Platform>(ctx: &Ctx<'_, P>, addr: u64) -> Result<u32, Errno> {
    if addr % 4 != 0 {
        return Err(Errno::EINVAL);
    }
    ctx.read(UserPtr::<u32>::new(addr))
}

/// FUTEX_WAKE_OP's operation on the word at `uaddr2`; returns the old value.
fn wake_op<P: Platform>(ctx: &Ctx<'_, P>, uaddr2: u64, encoded: u32) -> Result<(u32, bool), Errno> {
    let op = (encoded >> 28) & 0x7;
    let shift_arg = (encoded >> 28) & 0x8 != 0;
    let cmp = (encoded >> 24) & 0xf;
    let mut oparg = (encoded >> 12) & 0xfff;
    let cmparg = encoded & 0xfff;
    if shift_arg {
        if oparg > 31 {
            return Err(Errno::EINVAL);
        }
        oparg = 1 << oparg;
    }
    let ptr = UserPtr::<u32>::new(uaddr2);
    // Writing needs write permission, as on Linux (EFAULT otherwise).
    ctx.check_user(uaddr2, 4, Prot::WRITE)?;
    let old = read_futex(ctx, uaddr2)?;
    let new = match op {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        4 => old ^ oparg,
        _ => return Err(Errno::ENOSYS),
    };
    ctx.write(ptr, &new)?;
    let (o, c) = (old as i32, sign_extend_12(cmparg));
    let hit = match cmp {
        0 => o == c,
        1 => o != c,
        2 => o < c,
        3 => o <= c,
        4 => o > c,
        5 => o >= c,
        _ => return Err(Errno::ENOSYS),
    };
    Ok((old, hit))
}

fn sign_extend_12(v: u32) -> i32 {
    ((v << 20) as i32) >> 20
}

/// Turns a futex timeout into a monotonic deadline: relative for FUTEX_WAIT, absolute on the
/// chosen clock for FUTEX_WAIT_BITSET.
fn futex_deadline<P: Platform>(ctx: &Ctx<'_, P>, timeout: u64, absolute: bool, realtime: bool) -> Result<Option<u64>, Errno> {
    if timeout == 0 {
        return Ok(None);
    }
    let ns = ctx.read(UserPtr::<Timespec>::new(timeout))?.to_ns().ok_or(Errno::EINVAL)?;
    let now = ctx.platform.monotonic_ns();
    Ok(Some(if absolute {
        let clock_now = if realtime { ctx.platform.realtime_ns() } else { now };
        now.saturating_add(ns.saturating_sub(clock_now))
    } else {
        now.saturating_add(ns)
    }))
}

pub fn sys_futex<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    uaddr: u64,
    futex_op: u32,
    val: u32,
    timeout: u64,
    uaddr2: u64,
    val3: u32,
) -> Result<Reply, Errno> {
    let realtime = futex_op & FUTEX_CLOCK_REALTIME != 0;
    let op = futex_op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    if realtime && !matches!(op, FUTEX_WAIT | FUTEX_WAIT_BITSET) {
        return Err(Errno::ENOSYS);
    }
    match op {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let bitset = if op == FUTEX_WAIT { FUTEX_BITSET_MATCH_ANY } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            match ctx.resumed {
                Some(WakeReason::Woken) => return Ok(Reply::Value(0)),
                Some(WakeReason::TimedOut) => return Err(Errno::ETIMEDOUT),
                // As Linux: without a timeout the wait restarts under SA_RESTART; with one it
                // is EINTR after a handler and otherwise goes on to the same deadline.
                Some(WakeReason::Interrupted) if timeout == 0 => return Err(ERESTARTSYS),
                Some(WakeReason::Interrupted) => return Err(ERESTART_RESTARTBLOCK),
                None => {}
            }
            if read_futex(ctx, uaddr)? != val {
                return Err(Errno::EAGAIN);
            }
            // A wait restarted after a signal keeps the deadline it first chose.
            let deadline = match ctx.deadline() {
                Some(d) => Some(d),
                None => futex_deadline(ctx, timeout, op == FUTEX_WAIT_BITSET, realtime)?,
            };
            if deadline.is_some_and(|d| d <= ctx.platform.monotonic_ns()) {
                return Err(Errno::ETIMEDOUT);
            }
            let tid = ctx.tid;
            ctx.process.futex_waiters.entry(uaddr).or_default().push((tid, bitset));
            Ok(ctx.block(deadline))
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if op == FUTEX_WAKE { FUTEX_BITSET_MATCH_ANY } else { val3 };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(Reply::Value(futex_wake(ctx.process, uaddr, val, bitset)))
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            if op == FUTEX_CMP_REQUEUE && read_futex(ctx, uaddr)? != val3 {
                return Err(Errno::EAGAIN);
            }
            // For the requeue operations the timeout argument carries val2.
            let requeue = timeout as u32;
            let woken = futex_wake(ctx.process, uaddr, val, FUTEX_BITSET_MATCH_ANY);
            let moved = futex_requeue(ctx.process, uaddr, uaddr2, requeue);
            Ok(Reply::Value(woken + if op == FUTEX_CMP_REQUEUE { moved } else { 0 }))
        }
        FUTEX_WAKE_OP => {
            let (_, hit) = wake_op(ctx, uaddr2, val3)?;
            let mut woken = futex_wake(ctx.process, uaddr, val, FUTEX_BITSET_MATCH_ANY);
            if hit {
                woken += futex_wake(ctx.process, uaddr2, timeout as u32, FUTEX_BITSET_MATCH_ANY);
            }
            Ok(Reply::Value(woken))
        }
        _ => {
            ctx.warn_once("futex_op", format_args!("futex operation {op} (PI futexes, FUTEX_WAIT_REQUEUE_PI, ...) is not supported: returning ENOSYS"));
            Err(Errno::ENOSYS)
        }
    }
}

flags_arg!(CloneFlags);

//! Host tests of threads and futexes, driving `Process` the way the kernel does: several
//! threads, each syscall run for a given tid, Block/Spawn/ThreadExit outcomes interpreted here.

use alloc::vec;

use crate::errno::Errno;
use crate::mm::{Mm, VmaKind};
use crate::platform::{PAGE_SIZE, Platform, Prot};
use crate::process::{Process, SyscallOutcome, Tid};
use crate::testing::FakePlatform;

const MEM: u64 = 0x20_0000;
const CLONE: u64 = 56;
const EXIT: u64 = 60;
const FUTEX: u64 = 202;
const GETTID: u64 = 186;
const CLONE3: u64 = 435;
const THREAD_FLAGS: u64 = 0x100 | 0x200 | 0x400 | 0x800 | 0x1_0000 | 0x4_0000;
const SETTLS: u64 = 0x8_0000;
const PARENT_SETTID: u64 = 0x10_0000;
const CHILD_CLEARTID: u64 = 0x20_0000;
const WAIT: u64 = 0;
const WAKE: u64 = 1;
const REQUEUE: u64 = 3;
const CMP_REQUEUE: u64 = 4;
const WAKE_OP: u64 = 5;
const WAIT_BITSET: u64 = 9;
const WAKE_BITSET: u64 = 10;
const PRIVATE: u64 = 128;

struct T {
    p: Process,
    fake: FakePlatform,
}

fn setup() -> T {
    let fake = FakePlatform::default();
    let mut mm = Mm::new();
    mm.map_fixed(&fake, MEM, 4 * PAGE_SIZE, Prot::READ | Prot::WRITE, VmaKind::Anonymous).unwrap();
    T { p: Process::new(mm, "/bin/t"), fake }
}

impl T {
    fn sys(&mut self, tid: Tid, nr: u64, args: &[u64]) -> SyscallOutcome {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        self.p.syscall(&self.fake, tid, nr, a)
    }
    fn ret(&mut self, tid: Tid, nr: u64, args: &[u64]) -> i64 {
        match self.sys(tid, nr, args) {
            SyscallOutcome::Return(v) => v,
            other => panic!("expected a return, got {other:?}"),
        }
    }
    fn u32_at(&self, addr: u64) -> u32 {
        let mut b = [0u8; 4];
        self.fake.read_app(addr, &mut b).unwrap();
        u32::from_le_bytes(b)
    }
    fn set_u32(&self, addr: u64, v: u32) {
        self.fake.write_app(addr, &v.to_le_bytes()).unwrap();
    }
    fn spawn(&mut self) -> Tid {
        match self.sys(1, CLONE, &[THREAD_FLAGS, 0x7000, 0, 0, 0]) {
            SyscallOutcome::Spawn { child, .. } => child,
            other => panic!("clone: {other:?}"),
        }
    }
}

fn err(e: Errno) -> i64 {
    e.as_return()
}

#[test]
fn clone_makes_threads_with_their_own_ids() {
    let mut t = setup();
    let ptid = MEM + 16;
    let out = t.sys(1, CLONE, &[THREAD_FLAGS | SETTLS | PARENT_SETTID | CHILD_CLEARTID, 0x7000, ptid, MEM + 32, 0xabc]);
    assert_eq!(out, SyscallOutcome::Spawn { child: 2, stack: 0x7000, tls: Some(0xabc) });
    assert_eq!(t.u32_at(ptid), 2, "CLONE_PARENT_SETTID");
    assert_eq!(t.ret(2, GETTID, &[]), 2);
    assert_eq!(t.ret(1, GETTID, &[]), 1);
    assert_eq!(t.p.thread_count(), 2);
    // Without SETTLS the child keeps the parent's FS base.
    assert!(matches!(t.sys(1, CLONE, &[THREAD_FLAGS, 0, 0, 0, 0]), SyscallOutcome::Spawn { child: 3, tls: None, .. }));
}

#[test]
fn fork_and_odd_clones_are_refused() {
    let mut t = setup();
    assert_eq!(t.ret(1, CLONE, &[17, 0, 0, 0, 0]), err(Errno::ENOSYS), "fork = clone(SIGCHLD)");
    assert_eq!(t.ret(1, CLONE, &[0x100 | 0x4000 | 17, 0, 0, 0, 0]), err(Errno::EINVAL), "vfork");
    assert_eq!(t.ret(1, CLONE, &[0x100, 0, 0, 0, 0]), err(Errno::EINVAL), "CLONE_VM without THREAD");
    assert_eq!(t.ret(1, CLONE, &[THREAD_FLAGS | 0x2000_0000, 0, 0, 0, 0]), err(Errno::EINVAL), "CLONE_NEWPID");
    assert_eq!(t.ret(1, 57, &[]), err(Errno::ENOSYS), "fork(2)");
    assert_eq!(t.p.thread_count(), 1);
}

#[test]
fn clone3_takes_the_stack_top_from_base_and_size() {
    let mut t = setup();
    let mut args = vec![0u8; 88];
    args[0..8].copy_from_slice(&(THREAD_FLAGS | SETTLS).to_le_bytes());
    args[40..48].copy_from_slice(&0x10_0000u64.to_le_bytes());
    args[48..56].copy_from_slice(&0x4000u64.to_le_bytes());
    args[56..64].copy_from_slice(&0x55u64.to_le_bytes());
    t.fake.write_app(MEM, &args).unwrap();
    assert_eq!(t.sys(1, CLONE3, &[MEM, 88]), SyscallOutcome::Spawn { child: 2, stack: 0x10_4000, tls: Some(0x55) });
    assert_eq!(t.ret(1, CLONE3, &[MEM, 8]), err(Errno::EINVAL), "too small");
    args[0..8].copy_from_slice(&17u64.to_le_bytes());
    t.fake.write_app(MEM, &args).unwrap();
    assert_eq!(t.ret(1, CLONE3, &[MEM, 88]), err(Errno::EINVAL), "a signal in clone3's flags");
    args[0..8].copy_from_slice(&0u64.to_le_bytes());
    args[32..40].copy_from_slice(&17u64.to_le_bytes());
    t.fake.write_app(MEM, &args).unwrap();
    assert_eq!(t.ret(1, CLONE3, &[MEM, 88]), err(Errno::ENOSYS), "fork through clone3");
}

#[test]
fn thread_exit_clears_and_wakes_the_tid_word() {
    let mut t = setup();
    let ctid = MEM + 64;
    let child = match t.sys(1, CLONE, &[THREAD_FLAGS | CHILD_CLEARTID, 0, 0, ctid, 0]) {
        SyscallOutcome::Spawn { child, .. } => child,
        other => panic!("{other:?}"),
    };
    t.set_u32(ctid, child as u32);
    // The parent joins: waits on the tid word.
    assert_eq!(t.sys(1, FUTEX, &[ctid, WAIT, child as u64, 0]), SyscallOutcome::Block { deadline: None });
    assert_eq!(t.sys(child, EXIT, &[5]), SyscallOutcome::ThreadExit);
    assert_eq!(t.u32_at(ctid), 0);
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.ret(1, FUTEX, &[ctid, WAIT, child as u64, 0]), 0, "the re-run wait returns 0");
    // The last thread's exit ends the process.
    assert_eq!(t.sys(1, EXIT, &[7]), SyscallOutcome::Exit { status: 7, signal: None });
}

#[test]
fn futex_wait_checks_the_value_and_wake_counts() {
    let mut t = setup();
    let f = MEM;
    t.set_u32(f, 1);
    let (a, b) = (t.spawn(), t.spawn());
    assert_eq!(t.ret(a, FUTEX, &[f, WAIT | PRIVATE, 0, 0]), err(Errno::EAGAIN), "value changed");
    assert_eq!(t.ret(a, FUTEX, &[f + 1, WAIT, 1, 0]), err(Errno::EINVAL), "unaligned");
    assert_eq!(t.ret(a, FUTEX, &[0x9000_0000, WAIT, 1, 0]), err(Errno::EFAULT));
    assert!(matches!(t.sys(a, FUTEX, &[f, WAIT | PRIVATE, 1, 0]), SyscallOutcome::Block { .. }));
    assert!(matches!(t.sys(b, FUTEX, &[f, WAIT, 1, 0]), SyscallOutcome::Block { .. }));
    assert_eq!(t.ret(1, FUTEX, &[f, WAKE, 1]), 1, "wakes one, oldest first");
    assert_eq!(t.p.take_woken(), vec![a]);
    assert_eq!(t.ret(1, FUTEX, &[f, WAKE | PRIVATE, 10]), 1);
    assert_eq!(t.p.take_woken(), vec![b]);
    assert_eq!(t.ret(1, FUTEX, &[f, WAKE, 10]), 0, "nobody left");
    assert_eq!(t.ret(a, FUTEX, &[f, WAIT, 1, 0]), 0);
    assert_eq!(t.ret(1, FUTEX, &[f, 6, 0]), err(Errno::ENOSYS), "FUTEX_LOCK_PI");
}

#[test]
fn futex_timeouts_relative_and_absolute() {
    let mut t = setup();
    let f = MEM;
    let ts = MEM + 0x100;
    t.set_u32(f, 3);
    // Relative 1 ms on FUTEX_WAIT.
    t.fake.write_app(ts, &[0u64.to_le_bytes(), 1_000_000u64.to_le_bytes()].concat()).unwrap();
    let now = t.fake.monotonic_ns();
    assert_eq!(t.sys(1, FUTEX, &[f, WAIT, 3, ts]), SyscallOutcome::Block { deadline: Some(now + 1_000_000) });
    assert!(t.p.time_out(1));
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.ret(1, FUTEX, &[f, WAIT, 3, ts]), err(Errno::ETIMEDOUT));
    assert_eq!(t.ret(1, FUTEX, &[f, WAKE, 1]), 0, "a timed-out waiter left the queue");
    // Absolute on CLOCK_MONOTONIC with WAIT_BITSET: 5 s since boot.
    t.fake.write_app(ts, &[5u64.to_le_bytes(), 0u64.to_le_bytes()].concat()).unwrap();
    assert_eq!(t.sys(1, FUTEX, &[f, WAIT_BITSET, 3, ts, 0, u32::MAX as u64]), SyscallOutcome::Block { deadline: Some(5_000_000_000) });
    assert!(t.p.time_out(1));
    t.p.take_woken();
    assert_eq!(t.ret(1, FUTEX, &[f, WAIT_BITSET, 3, ts, 0, u32::MAX as u64]), err(Errno::ETIMEDOUT));
    // Already past: ETIMEDOUT at once.
    t.fake.write_app(ts, &[0u64.to_le_bytes(), 0u64.to_le_bytes()].concat()).unwrap();
    assert_eq!(t.ret(1, FUTEX, &[f, WAIT_BITSET, 3, ts, 0, 1]), err(Errno::ETIMEDOUT));
    assert_eq!(t.ret(1, FUTEX, &[f, WAIT_BITSET, 3, 0, 0, 0]), err(Errno::EINVAL), "empty bitset");
}

#[test]
fn futex_bitsets_select_waiters() {
    let mut t = setup();
    let f = MEM;
    t.set_u32(f, 0);
    let (a, b) = (t.spawn(), t.spawn());
    t.sys(a, FUTEX, &[f, WAIT_BITSET, 0, 0, 0, 0b01]);
    t.sys(b, FUTEX, &[f, WAIT_BITSET, 0, 0, 0, 0b10]);
    assert_eq!(t.ret(1, FUTEX, &[f, WAKE_BITSET, 10, 0, 0, 0b10]), 1);
    assert_eq!(t.p.take_woken(), vec![b]);
    assert_eq!(t.ret(1, FUTEX, &[f, WAKE_BITSET, 10, 0, 0, 0b11]), 1);
    assert_eq!(t.p.take_woken(), vec![a]);
}

#[test]
fn futex_requeue_moves_waiters() {
    let mut t = setup();
    let (f1, f2) = (MEM, MEM + 8);
    t.set_u32(f1, 9);
    let ids: alloc::vec::Vec<Tid> = (0..4).map(|_| t.spawn()).collect();
    for &id in &ids {
        t.sys(id, FUTEX, &[f1, WAIT, 9, 0]);
    }
    assert_eq!(t.ret(1, FUTEX, &[f1, CMP_REQUEUE, 1, 2, f2, 8]), err(Errno::EAGAIN), "val3 mismatch");
    // Wake 1, move 2 to f2: returns woken + moved.
    assert_eq!(t.ret(1, FUTEX, &[f1, CMP_REQUEUE, 1, 2, f2, 9]), 3);
    assert_eq!(t.p.take_woken(), vec![ids[0]]);
    assert_eq!(t.ret(1, FUTEX, &[f2, WAKE, 10]), 2);
    assert_eq!(t.p.take_woken(), vec![ids[1], ids[2]]);
    // Plain REQUEUE returns only the woken count.
    assert_eq!(t.ret(1, FUTEX, &[f1, REQUEUE, 0, 5, f2]), 0);
    assert_eq!(t.ret(1, FUTEX, &[f2, WAKE, 10]), 1);
    assert_eq!(t.p.take_woken(), vec![ids[3]]);
}

#[test]
fn futex_wake_op_changes_the_second_word_and_wakes_conditionally() {
    let mut t = setup();
    let (f1, f2) = (MEM, MEM + 8);
    t.set_u32(f1, 0);
    t.set_u32(f2, 5);
    let (a, b) = (t.spawn(), t.spawn());
    t.sys(a, FUTEX, &[f1, WAIT, 0, 0]);
    t.sys(b, FUTEX, &[f2, WAIT, 5, 0]);
    // op ADD 1 (op=1, oparg=1), cmp GT 4 (cmp=4, cmparg=4): old 5 > 4, so f2's waiter wakes too.
    let encoded: u64 = (1 << 28) | (4 << 24) | (1 << 12) | 4;
    assert_eq!(t.ret(1, FUTEX, &[f1, WAKE_OP, 1, 1, f2, encoded]), 2);
    assert_eq!(t.u32_at(f2), 6);
    assert_eq!(t.p.take_woken(), vec![a, b]);
    // cmp EQ 0 fails: only uaddr's waiters (none) are woken; the word still changes (SET 9).
    let encoded: u64 = (0 << 28) | (0 << 24) | (9 << 12);
    assert_eq!(t.ret(1, FUTEX, &[f1, WAKE_OP, 1, 1, f2, encoded]), 0);
    assert_eq!(t.u32_at(f2), 9);
}

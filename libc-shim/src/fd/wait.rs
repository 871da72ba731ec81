//! Wait queues: "thread T waits for object X to change".
//!
//! An object that threads can wait on (a pipe, an eventfd; later sockets and epoll) owns a
//! [`WaitKey`]. A syscall that must wait enqueues its thread under the key and returns
//! `ctx.block(deadline)`; whoever changes the object calls `Process::notify(key)`, which ends
//! the wait of every thread queued there (`WakeReason::Woken`). The woken calls run again and
//! look again, so a spurious wake is harmless. `Process::end_wait` drops a thread from every
//! queue, whatever ended its wait (timeout, signal).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::process::Tid;

/// Names one waitable object.
pub type WaitKey = u64;

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A key no other object has.
pub fn new_key() -> WaitKey {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// Threads waiting, per key, oldest first.
#[derive(Debug, Clone, Default)]
pub struct WaitQueues {
    queues: BTreeMap<WaitKey, Vec<Tid>>,
}

impl WaitQueues {
    /// Queues `tid` under `key` (once).
    pub fn enqueue(&mut self, key: WaitKey, tid: Tid) {
        let q = self.queues.entry(key).or_default();
        if !q.contains(&tid) {
            q.push(tid);
        }
    }

    /// Takes every thread waiting under `key`.
    pub fn take(&mut self, key: WaitKey) -> Vec<Tid> {
        self.queues.remove(&key).unwrap_or_default()
    }

    /// Forgets `tid` everywhere (its wait ended).
    pub fn remove_thread(&mut self, tid: Tid) {
        for q in self.queues.values_mut() {
            q.retain(|&t| t != tid);
        }
        self.queues.retain(|_, q| !q.is_empty());
    }

    /// Whether `tid` waits under `key`.
    pub fn is_waiting(&self, key: WaitKey, tid: Tid) -> bool {
        self.queues.get(&key).is_some_and(|q| q.contains(&tid))
    }
}

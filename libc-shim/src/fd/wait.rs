//! Wait queues: "thread T waits for object X to change".
//!
//! An object that threads can wait on (a pipe, an eventfd; later sockets and epoll) owns a
//! [`WaitKey`]. A syscall that must wait enqueues its thread under the key and returns
//! `ctx.block(deadline)`; whoever changes the object calls `Process::notify(key)`, which ends
//! the wait of every thread queued there (`WakeReason::Woken`). The woken calls run again and
//! look again, so a spurious wake is harmless. `Process::end_wait` drops a thread from every
//! queue, whatever ended its wait (timeout, signal).
//!
//! Edge-triggered epoll needs to know that something *happened* on a file since it last
//! reported it, not only whether the file is ready: a key that an epoll watches has an
//! [`EventCounter`], bumped by every notify of the key, in the direction the notifier names
//! ([`WaitQueues::take_for`]: new data for readers, freed space for writers).

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::Readiness;
use crate::process::{Process, Tid, WakeReason};

/// Names one waitable object.
pub type WaitKey = u64;

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A key no other object has.
pub fn new_key() -> WaitKey {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

/// How many times a key was notified, per direction (for edge-triggered epoll).
#[derive(Debug, Default)]
pub struct EventCounter {
    /// Notifies that may make readers ready (data, hangup, errors).
    pub input: AtomicU64,
    /// Notifies that may make writers ready (space freed, errors).
    pub output: AtomicU64,
}

/// Threads waiting, per key, oldest first.
#[derive(Debug, Clone, Default)]
pub struct WaitQueues {
    queues: BTreeMap<WaitKey, Vec<Tid>>,
    /// Event counters of the keys someone watches; an entry lives as long as a watcher holds
    /// the counter (dead entries are pruned as they are met).
    counters: BTreeMap<WaitKey, Weak<EventCounter>>,
}

impl WaitQueues {
    /// Queues `tid` under `key` (once).
    pub fn enqueue(&mut self, key: WaitKey, tid: Tid) {
        let q = self.queues.entry(key).or_default();
        if !q.contains(&tid) {
            q.push(tid);
        }
    }

    /// Takes every thread waiting under `key` (the object changed in any way).
    pub fn take(&mut self, key: WaitKey) -> Vec<Tid> {
        self.take_for(key, Readiness::all())
    }

    /// Takes every thread waiting under `key` after a change that can only make `events`
    /// ready (a read frees space: `WRITABLE`; a write brings data: `READABLE`).
    pub fn take_for(&mut self, key: WaitKey, events: Readiness) -> Vec<Tid> {
        if let Some(weak) = self.counters.get(&key) {
            match weak.upgrade() {
                Some(c) => {
                    if events.intersects(!Readiness::WRITABLE) {
                        c.input.fetch_add(1, Ordering::Relaxed);
                    }
                    if events.intersects(Readiness::WRITABLE | Readiness::ERROR | Readiness::HANGUP) {
                        c.output.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    self.counters.remove(&key);
                }
            }
        }
        self.queues.remove(&key).unwrap_or_default()
    }

    /// The event counter of `key`, created on first use; it counts while someone holds it.
    pub fn counter(&mut self, key: WaitKey) -> Arc<EventCounter> {
        if let Some(c) = self.counters.get(&key).and_then(Weak::upgrade) {
            return c;
        }
        // Keys whose watchers are gone and that were never notified again: prune them when
        // the map has grown, so it stays proportional to what is watched.
        if self.counters.len() >= 64 && self.counters.len().is_power_of_two() {
            self.counters.retain(|_, w| w.strong_count() > 0);
        }
        let c = Arc::new(EventCounter::default());
        self.counters.insert(key, Arc::downgrade(&c));
        c
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

impl Process {
    /// Like [`Process::notify`], for a change that can only make `events` ready (see
    /// [`WaitQueues::take_for`]): edge-triggered epoll items watching the other direction
    /// do not see it as an event.
    pub fn notify_for(&mut self, key: WaitKey, events: Readiness) {
        for tid in self.fs.waits.take_for(key, events) {
            self.end_wait(tid, WakeReason::Woken);
        }
    }
}

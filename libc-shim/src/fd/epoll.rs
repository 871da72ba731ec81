//! epoll instances, and the readiness of any file as poll, select and epoll see it.
//!
//! An [`Epoll`] is a [`File`] holding an interest list of items, each naming an open file
//! description and the fd it was added under (Linux keys items by both). It holds the
//! description weakly: when the last fd of a description closes, its items vanish, as on
//! Linux. Nothing here blocks or touches the process: the syscall layer scans with
//! [`Epoll::collect`], and when nothing is ready it queues the thread on the keys from
//! [`wait_keys`] and blocks until the earliest file deadline.
//!
//! Edge triggering (`EPOLLET`) reports an item only after an *event* since its last report:
//! a notify of the file's key in a direction the item cares about (counted by the
//! [`EventCounter`] it holds), a timer deadline that passed, or readiness bits it did not
//! have at the last scan. A partial read notifies only the writers' direction, so it is not
//! an event for a reader: the rest of the data is not reported again until more arrives.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use spin::Mutex;

use super::eventfd::anon_meta;
use super::wait::{EventCounter, WaitKey, new_key};
use super::{File, Io, OpenFile, Readiness};
use crate::errno::Errno;
use crate::fs::Metadata;

pub const EPOLLIN: u32 = 0x001;
pub const EPOLLPRI: u32 = 0x002;
pub const EPOLLOUT: u32 = 0x004;
pub const EPOLLERR: u32 = 0x008;
pub const EPOLLHUP: u32 = 0x010;
pub const EPOLLNVAL: u32 = 0x020;
pub const EPOLLRDNORM: u32 = 0x040;
pub const EPOLLRDBAND: u32 = 0x080;
pub const EPOLLWRNORM: u32 = 0x100;
pub const EPOLLWRBAND: u32 = 0x200;
pub const EPOLLMSG: u32 = 0x400;
pub const EPOLLRDHUP: u32 = 0x2000;
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;

/// The readiness bits (what can be reported), as opposed to the behaviour flags above them.
pub const EVENT_BITS: u32 = EPOLLIN
    | EPOLLPRI
    | EPOLLOUT
    | EPOLLERR
    | EPOLLHUP
    | EPOLLNVAL
    | EPOLLRDNORM
    | EPOLLRDBAND
    | EPOLLWRNORM
    | EPOLLWRBAND
    | EPOLLMSG
    | EPOLLRDHUP;
/// What an `EPOLLEXCLUSIVE` item may ask for (Linux's `EPOLLEXCLUSIVE_OK_BITS`).
pub const EXCLUSIVE_OK_BITS: u32 = EPOLLIN
    | EPOLLOUT
    | EPOLLRDNORM
    | EPOLLRDBAND
    | EPOLLWRNORM
    | EPOLLWRBAND
    | EPOLLERR
    | EPOLLHUP
    | EPOLLWAKEUP
    | EPOLLET
    | EPOLLEXCLUSIVE;
/// Interest in the readers' direction.
const INPUT_BITS: u32 = EPOLLIN | EPOLLPRI | EPOLLRDNORM | EPOLLRDBAND | EPOLLRDHUP | EPOLLMSG;
/// Interest in the writers' direction.
const OUTPUT_BITS: u32 = EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;

/// How deep epoll instances may nest (Linux's `EP_MAX_NESTS`).
pub const MAX_NESTS: usize = 4;

/// The readiness of `file` at `now` as a `POLL*`/`EPOLL*` mask: the file's own
/// [`File::poll`], readable once its [`File::deadline`] has passed (a timerfd that expired
/// but was not read yet), with the `RDNORM`/`WRNORM` aliases Linux reports alongside
/// `IN`/`OUT`. Epoll instances are readable when a wait on them would report something.
pub fn poll_mask(file: &dyn File, now: u64) -> u32 {
    if let Some(ep) = file.as_any().downcast_ref::<Epoll>() {
        return ep.poll_at(now);
    }
    let mut m = file.poll().bits();
    if file.deadline().is_some_and(|d| d <= now) {
        m |= Readiness::READABLE.bits();
    }
    if m & EPOLLIN != 0 {
        m |= EPOLLRDNORM;
    }
    if m & EPOLLOUT != 0 {
        m |= EPOLLWRNORM;
    }
    m
}

/// Adds to `keys` every wait key whose notify may change `file`'s readiness (for an epoll:
/// its own and, recursively, its items'), and lowers `deadline` to the earliest future
/// deadline among them (a timer that will make one ready by itself).
pub fn wait_keys(file: &dyn File, now: u64, keys: &mut Vec<WaitKey>, deadline: &mut Option<u64>) {
    if let Some(key) = file.wait_key()
        && !keys.contains(&key)
    {
        keys.push(key);
    }
    if let Some(d) = file.deadline().filter(|&d| d > now) {
        *deadline = Some(deadline.map_or(d, |e| e.min(d)));
    }
    if let Some(ep) = file.as_any().downcast_ref::<Epoll>() {
        for desc in ep.live_files() {
            wait_keys(&*desc.file, now, keys, deadline);
        }
    }
}

/// What an edge-triggered item saw at its last scan.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    /// Added or modified since: report if ready, whatever happened before.
    pending: bool,
    /// The event count then.
    count: u64,
    /// The file's deadline then, if it had passed.
    expired: Option<u64>,
    /// The readiness then.
    ready: u32,
}

struct Item {
    fd: i32,
    desc: Weak<OpenFile>,
    /// Requested events and behaviour flags, as given.
    events: u32,
    data: u64,
    /// Counts the notifies of the file's key (edge triggering).
    counter: Option<Arc<EventCounter>>,
    /// False after an `EPOLLONESHOT` report, until `EPOLL_CTL_MOD`.
    armed: bool,
    seen: Seen,
}

impl Item {
    fn is(&self, fd: i32, desc: &Arc<OpenFile>) -> bool {
        self.fd == fd && Weak::ptr_eq(&self.desc, &Arc::downgrade(desc))
    }

    /// Events counted on the file in the directions this item watches (nested epolls: also
    /// every event of their own items).
    fn count(&self, file: &dyn File) -> u64 {
        let mut n = 0u64;
        if let Some(c) = &self.counter {
            // Errors and hangups bump both directions, so either one sees them.
            if self.events & INPUT_BITS != 0 || self.events & OUTPUT_BITS == 0 {
                n = n.wrapping_add(c.input.load(Ordering::Relaxed));
            }
            if self.events & OUTPUT_BITS != 0 {
                n = n.wrapping_add(c.output.load(Ordering::Relaxed));
            }
        }
        if let Some(ep) = file.as_any().downcast_ref::<Epoll>() {
            n = n.wrapping_add(ep.event_sum());
        }
        n
    }

    /// What a scan at `now` finds: the events to report (0: none) and, for an edge-triggered
    /// item, what it sees now.
    fn check(&self, file: &dyn File, now: u64) -> (u32, Option<Seen>) {
        if !self.armed {
            return (0, None);
        }
        let mask = poll_mask(file, now);
        let revents = mask & (self.events | EPOLLERR | EPOLLHUP) & EVENT_BITS;
        if self.events & EPOLLET == 0 {
            return (revents, None);
        }
        let seen = Seen {
            pending: false,
            count: self.count(file),
            expired: file.deadline().filter(|&d| d <= now),
            ready: mask,
        };
        let event = self.seen.pending
            || seen.count != self.seen.count
            || seen.expired != self.seen.expired
            || mask & !self.seen.ready & (self.events | EPOLLERR | EPOLLHUP) != 0;
        (if event { revents } else { 0 }, Some(seen))
    }
}

struct Interest {
    items: Vec<Item>,
    /// Where the next scan starts, so that a short `maxevents` does not starve later items.
    next: usize,
}

/// One epoll instance.
pub struct Epoll {
    key: WaitKey,
    interest: Mutex<Interest>,
}

impl Default for Epoll {
    fn default() -> Self {
        Self::new()
    }
}

impl Epoll {
    pub fn new() -> Self {
        Epoll {
            key: new_key(),
            interest: Mutex::new(Interest {
                items: Vec::new(),
                next: 0,
            }),
        }
    }

    /// The descriptions of the items whose files are still open.
    fn live_files(&self) -> Vec<Arc<OpenFile>> {
        let i = self.interest.lock();
        i.items.iter().filter_map(|it| it.desc.upgrade()).collect()
    }

    /// EPOLL_CTL_ADD. `counter` is the event counter of the file's wait key.
    pub fn add(
        &self,
        fd: i32,
        desc: &Arc<OpenFile>,
        events: u32,
        data: u64,
        counter: Option<Arc<EventCounter>>,
    ) -> Result<(), Errno> {
        let mut i = self.interest.lock();
        i.items.retain(|it| it.desc.strong_count() > 0);
        if i.items.iter().any(|it| it.is(fd, desc)) {
            return Err(Errno::EEXIST);
        }
        i.items.push(Item {
            fd,
            desc: Arc::downgrade(desc),
            events,
            data,
            counter,
            armed: true,
            seen: Seen {
                pending: true,
                ..Seen::default()
            },
        });
        Ok(())
    }

    /// EPOLL_CTL_MOD: new events and data; re-arms a one-shot item.
    pub fn modify(
        &self,
        fd: i32,
        desc: &Arc<OpenFile>,
        events: u32,
        data: u64,
    ) -> Result<(), Errno> {
        let mut i = self.interest.lock();
        let it = i
            .items
            .iter_mut()
            .find(|it| it.is(fd, desc))
            .ok_or(Errno::ENOENT)?;
        if it.events & EPOLLEXCLUSIVE != 0 {
            return Err(Errno::EINVAL);
        }
        it.events = events;
        it.data = data;
        it.armed = true;
        it.seen.pending = true;
        Ok(())
    }

    /// EPOLL_CTL_DEL.
    pub fn delete(&self, fd: i32, desc: &Arc<OpenFile>) -> Result<(), Errno> {
        let mut i = self.interest.lock();
        let at = i
            .items
            .iter()
            .position(|it| it.is(fd, desc))
            .ok_or(Errno::ENOENT)?;
        i.items.remove(at);
        Ok(())
    }

    /// Whether `target` is this instance or one it watches, directly or through nested
    /// instances (`depth`: this one's; call with 0), or the chain below this one is more
    /// than `MAX_NESTS` deep. Adding this instance to `target` would then make a loop or
    /// nest too deep (`ELOOP`).
    pub fn reaches(&self, target: &Epoll, depth: usize) -> bool {
        if core::ptr::eq(self, target) || depth > MAX_NESTS {
            return true;
        }
        self.live_files().iter().any(|d| {
            d.file
                .as_any()
                .downcast_ref::<Epoll>()
                .is_some_and(|inner| inner.reaches(target, depth + 1))
        })
    }

    /// Takes up to `max` events ready at `now` as `(events, data)`: level-triggered items
    /// while ready, edge-triggered ones after an event, one-shot ones once.
    pub fn collect(&self, now: u64, max: usize) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        let mut i = self.interest.lock();
        i.items.retain(|it| it.desc.strong_count() > 0);
        let n = i.items.len();
        let start = if n == 0 { 0 } else { i.next % n };
        for k in 0..n {
            if out.len() >= max {
                break;
            }
            let idx = (start + k) % n;
            let it = &mut i.items[idx];
            let Some(desc) = it.desc.upgrade() else {
                continue;
            };
            let (revents, seen) = it.check(&*desc.file, now);
            if let Some(seen) = seen {
                it.seen = seen;
            }
            if revents == 0 {
                continue;
            }
            out.push((revents, it.data));
            if it.events & EPOLLONESHOT != 0 {
                it.armed = false;
            }
            if out.len() >= max {
                i.next = idx + 1;
            }
        }
        out
    }

    /// Whether a wait would report something now (without taking it).
    pub fn poll_at(&self, now: u64) -> u32 {
        let i = self.interest.lock();
        let ready = i.items.iter().any(|it| {
            it.desc
                .upgrade()
                .is_some_and(|d| it.check(&*d.file, now).0 != 0)
        });
        if ready { EPOLLIN | EPOLLRDNORM } else { 0 }
    }

    /// The events counted on every item (an outer edge-triggered item sees a change in any).
    fn event_sum(&self) -> u64 {
        let i = self.interest.lock();
        i.items
            .iter()
            .fold(0u64, |acc, it| match it.desc.upgrade() {
                Some(d) => acc.wrapping_add(it.count(&*d.file)),
                None => acc,
            })
    }

    /// Number of items (live or not yet pruned).
    pub fn len(&self) -> usize {
        self.interest.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl File for Epoll {
    fn read(&self, _io: &dyn Io, _offset: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn write(&self, _io: &dyn Io, _offset: u64, _data: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn stat(&self, _io: &dyn Io) -> Result<Metadata, Errno> {
        Ok(anon_meta(self.key))
    }

    /// Without a clock: timer deadlines count only through [`poll_mask`], which the
    /// syscalls use.
    fn poll(&self) -> Readiness {
        Readiness::from_bits_truncate(self.poll_at(0))
    }

    fn wait_key(&self) -> Option<WaitKey> {
        Some(self.key)
    }

    fn deadline(&self) -> Option<u64> {
        self.live_files()
            .iter()
            .filter_map(|d| d.file.deadline())
            .min()
    }

    fn describe(&self) -> alloc::string::String {
        alloc::string::String::from("anon_inode:[eventpoll]")
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

//! timerfd: a timer read as a count of expirations.
//!
//! The timer is kept in monotonic nanoseconds; a CLOCK_REALTIME timer's absolute expiry is
//! converted when it is set (later wall-clock steps do not move it). A read before the first
//! expiry is `EAGAIN` and [`File::deadline`] says when to try again, so a blocking read
//! parks with that deadline.

use spin::Mutex;

use super::eventfd::anon_meta;
use super::wait::{WaitKey, new_key};
use super::{File, Io, Readiness};
use crate::errno::Errno;
use crate::fs::Metadata;

#[derive(Debug, Clone, Copy, Default)]
struct State {
    /// Next expiry (monotonic ns); `None` when disarmed.
    next: Option<u64>,
    interval: u64,
    /// Expirations counted but not yet read.
    pending: u64,
}

pub struct TimerFd {
    state: Mutex<State>,
    /// Whether the timer was created on CLOCK_REALTIME (for gettime's view).
    pub realtime: bool,
    key: WaitKey,
}

impl TimerFd {
    pub fn new(realtime: bool) -> Self {
        TimerFd {
            state: Mutex::new(State::default()),
            realtime,
            key: new_key(),
        }
    }

    fn advance(s: &mut State, now: u64) {
        if let Some(next) = s.next
            && now >= next
        {
            match (now - next).checked_div(s.interval) {
                None => {
                    s.pending += 1;
                    s.next = None;
                }
                Some(q) => {
                    let n = q + 1;
                    s.pending += n;
                    s.next = Some(next + n * s.interval);
                }
            }
        }
    }

    /// Arms (`expiry` monotonic ns, `None`: disarm) with `interval`; returns the old
    /// (remaining, interval).
    pub fn set(&self, now: u64, expiry: Option<u64>, interval: u64) -> (u64, u64) {
        let mut s = self.state.lock();
        Self::advance(&mut s, now);
        let old = (s.next.map_or(0, |n| n.saturating_sub(now)), s.interval);
        *s = State {
            next: expiry,
            interval: if expiry.is_some() { interval } else { 0 },
            pending: 0,
        };
        old
    }

    /// (remaining, interval).
    pub fn get(&self, now: u64) -> (u64, u64) {
        let mut s = self.state.lock();
        Self::advance(&mut s, now);
        (
            s.next.map_or(0, |n| n.saturating_sub(now).max(1)),
            s.interval,
        )
    }
}

impl File for TimerFd {
    fn read(&self, io: &dyn Io, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut s = self.state.lock();
        Self::advance(&mut s, io.platform().monotonic_ns());
        if s.pending == 0 {
            return Err(Errno::EAGAIN);
        }
        buf[..8].copy_from_slice(&s.pending.to_le_bytes());
        s.pending = 0;
        Ok(8)
    }

    fn write(&self, _io: &dyn Io, _offset: u64, _data: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn stat(&self, _io: &dyn Io) -> Result<Metadata, Errno> {
        Ok(anon_meta(self.key))
    }

    fn poll(&self) -> Readiness {
        let s = self.state.lock();
        if s.pending > 0 {
            Readiness::READABLE
        } else {
            Readiness::empty()
        }
    }

    fn wait_key(&self) -> Option<WaitKey> {
        Some(self.key)
    }

    fn deadline(&self) -> Option<u64> {
        self.state.lock().next
    }

    fn describe(&self) -> alloc::string::String {
        alloc::string::String::from("anon_inode:[timerfd]")
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

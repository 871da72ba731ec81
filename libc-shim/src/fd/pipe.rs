//! Pipes: a bounded byte queue with a read end and a write end.
//!
//! Reads of an empty pipe with writers left, and writes to a full one, are `EAGAIN`; the
//! syscall layer turns that into a blocking wait on the pipe's key unless `O_NONBLOCK`. A
//! blocking write of more than fits writes what fits and returns the count (Linux would
//! keep waiting for the rest; callers loop on short writes), because a re-run call cannot
//! remember what it already wrote. Writes of up to `PIPE_BUF` bytes are atomic.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;

use spin::Mutex;

use super::wait::{WaitKey, new_key};
use super::{File, Io, MmapSupport, Readiness};
use crate::errno::Errno;
use crate::fs::{FileType, Metadata, Timestamp};

/// Default capacity (Linux: 16 pages).
pub const DEFAULT_CAPACITY: usize = 65536;
/// Writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;
/// Largest F_SETPIPE_SZ (Linux's /proc/sys/fs/pipe-max-size default).
pub const MAX_CAPACITY: usize = 1 << 20;

struct Inner {
    buf: VecDeque<u8>,
    capacity: usize,
    readers: usize,
    writers: usize,
}

/// The shared pipe.
pub struct Pipe {
    inner: Mutex<Inner>,
    key: WaitKey,
    created: Timestamp,
}

/// One end of a pipe.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    write: bool,
}

/// A new pipe: (read end, write end).
pub fn pipe(now: Timestamp) -> (Arc<PipeEnd>, Arc<PipeEnd>) {
    let pipe = Arc::new(Pipe {
        inner: Mutex::new(Inner {
            buf: VecDeque::new(),
            capacity: DEFAULT_CAPACITY,
            readers: 1,
            writers: 1,
        }),
        key: new_key(),
        created: now,
    });
    (
        Arc::new(PipeEnd {
            pipe: pipe.clone(),
            write: false,
        }),
        Arc::new(PipeEnd { pipe, write: true }),
    )
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut i = self.pipe.inner.lock();
        if self.write {
            i.writers -= 1;
        } else {
            i.readers -= 1;
        }
    }
}

impl File for PipeEnd {
    fn read(&self, _io: &dyn Io, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.write {
            return Err(Errno::EBADF);
        }
        let mut i = self.pipe.inner.lock();
        if buf.is_empty() {
            return Ok(0);
        }
        if i.buf.is_empty() {
            return if i.writers == 0 {
                Ok(0)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        let n = buf.len().min(i.buf.len());
        for (dst, src) in buf.iter_mut().zip(i.buf.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }

    fn write(&self, _io: &dyn Io, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        let mut i = self.pipe.inner.lock();
        if i.readers == 0 {
            return Err(Errno::EPIPE);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let space = i.capacity.saturating_sub(i.buf.len());
        if space == 0 || (data.len() <= PIPE_BUF && space < data.len()) {
            return Err(Errno::EAGAIN);
        }
        let n = data.len().min(space);
        i.buf.extend(&data[..n]);
        Ok(n)
    }

    fn stat(&self, _io: &dyn Io) -> Result<Metadata, Errno> {
        Ok(Metadata {
            ino: self.pipe.key,
            kind: FileType::Fifo,
            perm: 0o600,
            nlink: 1,
            uid: 0,
            gid: 0,
            size: 0,
            blocks: 0,
            block_size: 4096,
            rdev: 0,
            atime: self.pipe.created,
            mtime: self.pipe.created,
            ctime: self.pipe.created,
        })
    }

    fn poll(&self) -> Readiness {
        let i = self.pipe.inner.lock();
        let mut r = Readiness::empty();
        if self.write {
            if i.readers == 0 {
                r |= Readiness::ERROR | Readiness::WRITABLE;
            } else if i.capacity - i.buf.len().min(i.capacity) >= PIPE_BUF.min(i.capacity) {
                r |= Readiness::WRITABLE;
            }
        } else {
            if !i.buf.is_empty() {
                r |= Readiness::READABLE;
            }
            if i.writers == 0 {
                r |= Readiness::HANGUP;
            }
        }
        r
    }

    fn wait_key(&self) -> Option<WaitKey> {
        Some(self.pipe.key)
    }

    fn readable_bytes(&self, _io: &dyn Io) -> Result<usize, Errno> {
        Ok(self.pipe.inner.lock().buf.len())
    }

    fn mmap_support(&self) -> MmapSupport {
        MmapSupport::No
    }

    fn describe(&self) -> String {
        alloc::format!("pipe:[{}]", self.pipe.key)
    }

    fn pipe_size(&self, set: Option<usize>) -> Result<usize, Errno> {
        let mut i = self.pipe.inner.lock();
        if let Some(size) = set {
            if size > MAX_CAPACITY {
                return Err(Errno::EPERM);
            }
            let size = size.max(4096).next_power_of_two();
            if size < i.buf.len() {
                return Err(Errno::EBUSY);
            }
            i.capacity = size;
        }
        Ok(i.capacity)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

//! eventfd: a 64-bit counter that read takes and write adds to.

use spin::Mutex;

use super::wait::{WaitKey, new_key};
use super::{File, Io, Readiness};
use crate::errno::Errno;
use crate::fs::{FileType, Metadata};

pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    key: WaitKey,
}

impl EventFd {
    pub fn new(initial: u64, semaphore: bool) -> Self {
        EventFd {
            count: Mutex::new(initial),
            semaphore,
            key: new_key(),
        }
    }
}

impl File for EventFd {
    fn read(&self, _io: &dyn Io, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let mut c = self.count.lock();
        if *c == 0 {
            return Err(Errno::EAGAIN);
        }
        let v = if self.semaphore { 1 } else { *c };
        *c -= v;
        buf[..8].copy_from_slice(&v.to_le_bytes());
        Ok(8)
    }

    fn write(&self, _io: &dyn Io, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let v = data.get(..8).ok_or(Errno::EINVAL)?;
        let v = u64::from_le_bytes(v.try_into().map_err(|_| Errno::EINVAL)?);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        let mut c = self.count.lock();
        if u64::MAX - 1 - *c < v {
            return Err(Errno::EAGAIN);
        }
        *c += v;
        Ok(8)
    }

    fn stat(&self, _io: &dyn Io) -> Result<Metadata, Errno> {
        Ok(anon_meta(self.key))
    }

    fn poll(&self) -> Readiness {
        let c = *self.count.lock();
        let mut r = Readiness::empty();
        if c > 0 {
            r |= Readiness::READABLE;
        }
        if c < u64::MAX - 1 {
            r |= Readiness::WRITABLE;
        }
        r
    }

    fn wait_key(&self) -> Option<WaitKey> {
        Some(self.key)
    }

    fn describe(&self) -> alloc::string::String {
        alloc::string::String::from("anon_inode:[eventfd]")
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// fstat of an anonymous-inode file.
pub fn anon_meta(ino: u64) -> Metadata {
    Metadata {
        ino,
        kind: FileType::Regular,
        perm: 0o600,
        nlink: 1,
        uid: 0,
        gid: 0,
        size: 0,
        blocks: 0,
        block_size: 4096,
        rdev: 0,
        atime: Default::default(),
        mtime: Default::default(),
        ctime: Default::default(),
    }
}

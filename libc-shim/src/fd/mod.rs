//! File descriptors: the [`File`] trait every open thing implements, open file descriptions
//! ([`OpenFile`]: offset and status flags, shared by dup'd fds) and the per-process
//! [`FdTable`].
//!
//! A [`File`] never blocks: an operation that would wait returns `EAGAIN`, and the syscall
//! layer decides (from `O_NONBLOCK`) whether to fail or to park the thread on the file's
//! [`WaitKey`] (see [`wait`]) and run the call again when someone calls
//! `Process::notify(key)`. Files may not touch app memory or the process; what they need of
//! the machine comes through [`Io`].

pub mod console;
pub mod device;
pub mod epoll;
pub mod eventfd;
pub mod pipe;
pub mod timerfd;
pub mod vnode_file;
pub mod wait;

use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

use crate::errno::Errno;
use crate::fs::mount::Vnode;
use crate::fs::{DirEntry, Metadata};
use crate::platform::Platform;

pub use wait::{WaitKey, WaitQueues};

/// What a file may use of the machine and of the calling thread's memory.
pub trait Io {
    fn platform(&self) -> &dyn Platform;
    /// Reads app memory (checked: `EFAULT`).
    fn read_user(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Writes app memory (checked: `EFAULT`).
    fn write_user(&self, addr: u64, data: &[u8]) -> Result<(), Errno>;
}

bitflags::bitflags! {
    /// Readiness, with the values of `POLL*`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct Readiness: u32 {
        const READABLE = 0x001;
        const PRIORITY = 0x002;
        const WRITABLE = 0x004;
        const ERROR = 0x008;
        const HANGUP = 0x010;
        const RDHUP = 0x2000;
    }
}

/// Whether and how a file can be mmapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmapSupport {
    /// ENODEV.
    No,
    /// MAP_PRIVATE copies the bytes; MAP_SHARED is refused (ENODEV) unless writable mappings
    /// are not needed.
    CopyOnly,
    /// MAP_SHARED works too: changes are written back with [`File::write`] on msync/munmap.
    Shared,
}

/// Something open: a regular file, directory, device, pipe end, eventfd, timerfd; later
/// sockets and epoll. Offsets are the description's, passed in; non-seekable files ignore
/// them.
pub trait File: Send + Sync {
    /// Reads at `offset`; `EAGAIN` when it would block.
    fn read(&self, io: &dyn Io, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Writes at `offset`; `EAGAIN` when it would block, `EPIPE` with no reader.
    fn write(&self, io: &dyn Io, offset: u64, data: &[u8]) -> Result<usize, Errno>;
    /// Attributes as fstat reports them.
    fn stat(&self, io: &dyn Io) -> Result<Metadata, Errno>;
    /// Whether lseek/pread/pwrite work (else `ESPIPE`).
    fn seekable(&self) -> bool {
        false
    }
    /// The vnode behind the file (regular files, directories, devices opened by path).
    fn vnode(&self) -> Option<Vnode> {
        None
    }
    /// Directory entries from the `start`-th (without `.`/`..`).
    fn read_dir(
        &self,
        io: &dyn Io,
        start: usize,
        each: &mut dyn FnMut(DirEntry) -> bool,
    ) -> Result<(), Errno> {
        let _ = (io, start, each);
        Err(Errno::ENOTDIR)
    }
    /// ftruncate.
    fn set_len(&self, len: u64) -> Result<(), Errno> {
        let _ = len;
        Err(Errno::EINVAL)
    }
    /// fsync/fdatasync.
    fn sync(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// A device- or file-specific ioctl (generic ones are handled by the syscall layer).
    fn ioctl(&self, io: &dyn Io, request: u32, arg: u64) -> Result<usize, Errno> {
        let _ = (io, request, arg);
        Err(Errno::ENOTTY)
    }
    /// Readiness for poll/epoll.
    fn poll(&self) -> Readiness {
        Readiness::READABLE | Readiness::WRITABLE
    }
    /// Where threads wait for this file to change readiness; `None`: it never blocks.
    fn wait_key(&self) -> Option<WaitKey> {
        None
    }
    /// When a blocked read may succeed by itself (timerfd expiry), monotonic ns.
    fn deadline(&self) -> Option<u64> {
        None
    }
    /// Bytes readable now without blocking (FIONREAD).
    fn readable_bytes(&self, io: &dyn Io) -> Result<usize, Errno> {
        let _ = io;
        Err(Errno::ENOTTY)
    }
    fn mmap_support(&self) -> MmapSupport {
        MmapSupport::No
    }
    /// What readlink("/proc/self/fd/N") shows for a file without a path (`pipe:[7]`, ...).
    fn describe(&self) -> alloc::string::String {
        alloc::string::String::from("anon_inode:[unknown]")
    }
    /// The pipe buffer size (F_GETPIPE_SZ/F_SETPIPE_SZ); `EBADF` for non-pipes.
    fn pipe_size(&self, set: Option<usize>) -> Result<usize, Errno> {
        let _ = set;
        Err(Errno::EBADF)
    }
    /// For down-casting by the syscalls that need a particular kind (timerfd_settime, ...).
    fn as_any(&self) -> &dyn core::any::Any;
}

bitflags::bitflags! {
    /// File status flags kept in the description (`O_*` values).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct StatusFlags: u32 {
        const WRONLY = 0o1;
        const RDWR = 0o2;
        const APPEND = 0o2000;
        const NONBLOCK = 0o4000;
        const DSYNC = 0o10000;
        const ASYNC = 0o20000;
        const DIRECT = 0o40000;
        const LARGEFILE = 0o100000;
        const DIRECTORY = 0o200000;
        const NOFOLLOW = 0o400000;
        const NOATIME = 0o1000000;
        const SYNC = 0o4010000;
        const PATH = 0o10000000;
    }
}

impl StatusFlags {
    pub fn readable(self) -> bool {
        !self.contains(StatusFlags::PATH) && !self.contains(StatusFlags::WRONLY)
    }
    pub fn writable(self) -> bool {
        !self.contains(StatusFlags::PATH)
            && self.intersects(StatusFlags::WRONLY | StatusFlags::RDWR)
    }
}

/// An open file description: what `open` creates and `dup` shares.
pub struct OpenFile {
    pub file: Arc<dyn File>,
    state: Mutex<(u64, StatusFlags)>,
    /// Absolute path it was opened by (for /proc/self/fd), if any.
    pub path: Option<alloc::string::String>,
}

impl OpenFile {
    pub fn new(
        file: Arc<dyn File>,
        flags: StatusFlags,
        path: Option<alloc::string::String>,
    ) -> Arc<Self> {
        Arc::new(OpenFile {
            file,
            state: Mutex::new((0, flags)),
            path,
        })
    }
    pub fn offset(&self) -> u64 {
        self.state.lock().0
    }
    pub fn set_offset(&self, off: u64) {
        self.state.lock().0 = off;
    }
    pub fn flags(&self) -> StatusFlags {
        self.state.lock().1
    }
    /// F_SETFL: only APPEND, NONBLOCK, ASYNC, DIRECT, NOATIME change.
    pub fn set_flags(&self, flags: StatusFlags) {
        let changeable = StatusFlags::APPEND
            | StatusFlags::NONBLOCK
            | StatusFlags::ASYNC
            | StatusFlags::DIRECT
            | StatusFlags::NOATIME;
        let mut s = self.state.lock();
        s.1 = (s.1 & !changeable) | (flags & changeable);
    }
}

/// One slot of the fd table.
#[derive(Clone)]
pub struct FdEntry {
    pub desc: Arc<OpenFile>,
    pub cloexec: bool,
}

/// The process's file descriptors (shared by all threads: CLONE_FILES).
#[derive(Clone, Default)]
pub struct FdTable {
    slots: Vec<Option<FdEntry>>,
}

impl FdTable {
    pub fn get(&self, fd: i32) -> Result<&FdEntry, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .ok_or(Errno::EBADF)
    }

    pub fn get_mut(&mut self, fd: i32) -> Result<&mut FdEntry, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)
    }

    /// Installs `entry` at the lowest free fd `>= min` below `limit` (RLIMIT_NOFILE): `EMFILE`
    /// when there is none.
    pub fn insert_from(&mut self, min: usize, limit: usize, entry: FdEntry) -> Result<i32, Errno> {
        let fd = (min..limit)
            .find(|&i| self.slots.get(i).is_none_or(Option::is_none))
            .ok_or(Errno::EMFILE)?;
        self.put(fd, entry);
        Ok(fd as i32)
    }

    /// Installs `entry` at exactly `fd`, returning what was there (dup2).
    pub fn put(&mut self, fd: usize, entry: FdEntry) -> Option<FdEntry> {
        if self.slots.len() <= fd {
            self.slots.resize(fd + 1, None);
        }
        self.slots[fd].replace(entry)
    }

    pub fn remove(&mut self, fd: i32) -> Result<FdEntry, Errno> {
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .ok_or(Errno::EBADF)?;
        let e = slot.take().ok_or(Errno::EBADF)?;
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        Ok(e)
    }

    /// Open fds in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &FdEntry)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i as i32, e)))
    }

    pub fn count(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}

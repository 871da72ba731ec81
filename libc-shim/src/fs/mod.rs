//! Filesystems: the [`Filesystem`] trait every mounted filesystem implements, the mount
//! table ([`mount::MountTable`]) and the filesystems Kiln brings itself.
//!
//! # Layers
//! * [`Filesystem`] is a filesystem seen as numbered inodes: look up a name in a directory,
//!   read and write at offsets, create, unlink, rename, set attributes, sync. It knows nothing
//!   of file descriptors, paths, processes or app memory, and it never blocks (a driver that
//!   waits for a device spins or polls inside the call; the blocking protocol of
//!   [`crate::process`] is for waits on *other threads*, not on devices).
//! * [`mount::MountTable`] maps directories to the filesystems mounted on them.
//! * The VFS (`fs::vfs`) walks paths across mounts (`..`, symlinks, `ELOOP`, dirfds) and is the
//!   only place that knows about `.`/`..`, mount crossings and symlink following.
//! * `crate::fd` turns an opened inode into an open file description.
//!
//! # Implementing a filesystem (for example a FAT volume)
//! Implement [`Filesystem`] on a type that is `Send + Sync` (use `spin::Mutex` inside) and
//! mount it with `Process::mount(path, Arc<dyn Filesystem>, read_only)`. Rules:
//! * inode numbers are yours to choose, stable while the inode exists; [`Filesystem::root`]
//!   names the root directory; a name given to you is never empty, `.` or `..`, never contains
//!   `/`, and is at most [`NAME_MAX`] bytes;
//! * return Linux errno values ([`Errno`]) as a Linux filesystem would: `ENOENT` for a
//!   missing name, `EEXIST`, `ENOTDIR`, `EISDIR`, `ENOTEMPTY`, `ENOSPC`, `EIO` for a device
//!   error (never swallow one), `EPERM` for what the format cannot represent (hard links on
//!   FAT), `EROFS` when mounted read-only;
//! * the VFS checks permissions and file types before calling you where it can, but you must
//!   still refuse impossible requests rather than corrupt your structures;
//! * [`Filesystem::sync`] returns only when the data has reached stable storage;
//! * timestamps are the VFS's business: it calls [`Filesystem::set_attr`] with the new
//!   mtime/ctime after writes, truncates and directory changes, so `write_at` and friends
//!   need not stamp them (a filesystem may, if it keeps its own clock).

pub mod boot;
pub mod fat;
pub mod memfs;
pub mod mount;
pub mod synth;
pub mod tar;
pub mod vfs;

use alloc::vec::Vec;

use crate::errno::Errno;

/// An inode number, unique within one filesystem while the inode exists.
pub type Ino = u64;

/// Longest file name (one path component), as Linux's `NAME_MAX`.
pub const NAME_MAX: usize = 255;

/// The kind of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl FileType {
    /// The `S_IFMT` bits of `st_mode`.
    pub const fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => 0o100000,
            FileType::Directory => 0o040000,
            FileType::Symlink => 0o120000,
            FileType::CharDevice => 0o020000,
            FileType::BlockDevice => 0o060000,
            FileType::Fifo => 0o010000,
            FileType::Socket => 0o140000,
        }
    }

    /// The `d_type` of a `linux_dirent64` (`DT_*`).
    pub const fn dirent_type(self) -> u8 {
        match self {
            FileType::Regular => 8,
            FileType::Directory => 4,
            FileType::Symlink => 10,
            FileType::CharDevice => 2,
            FileType::BlockDevice => 6,
            FileType::Fifo => 1,
            FileType::Socket => 12,
        }
    }

    /// The kind named by the `S_IFMT` bits of `mode`, if any.
    pub const fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & 0o170000 {
            0o100000 => FileType::Regular,
            0o040000 => FileType::Directory,
            0o120000 => FileType::Symlink,
            0o020000 => FileType::CharDevice,
            0o060000 => FileType::BlockDevice,
            0o010000 => FileType::Fifo,
            0o140000 => FileType::Socket,
            _ => return None,
        })
    }
}

/// A point in time as `stat` reports it: seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp {
    pub sec: i64,
    pub nsec: u32,
}

impl Timestamp {
    /// From nanoseconds since the epoch (what [`crate::Platform::realtime_ns`] gives).
    pub const fn from_ns(ns: u64) -> Self {
        Timestamp {
            sec: (ns / 1_000_000_000) as i64,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }
}

/// What `stat` says about an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub ino: Ino,
    pub kind: FileType,
    /// Permission bits (`0o7777`), without the file type.
    pub perm: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    /// Bytes (regular files, symlinks: target length; directories: what the fs reports).
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Preferred I/O size.
    pub block_size: u32,
    /// Device number for device inodes (`makedev(major, minor)` in Linux's encoding).
    pub rdev: u64,
    pub atime: Timestamp,
    pub mtime: Timestamp,
    pub ctime: Timestamp,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: Ino,
    pub kind: FileType,
    pub name: Vec<u8>,
}

/// What [`Filesystem::create`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewNode<'a> {
    Regular,
    Directory,
    Symlink {
        target: &'a [u8],
    },
    /// A device, FIFO or socket node (mknod); `rdev` for devices.
    Special {
        kind: FileType,
        rdev: u64,
    },
}

/// Ownership and permissions of a new inode (the VFS applies the umask first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Attribute changes for [`Filesystem::set_attr`]; `None` leaves a field alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetAttr {
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<Timestamp>,
    pub mtime: Option<Timestamp>,
    /// ctime to record (the VFS passes "now" with every change).
    pub ctime: Option<Timestamp>,
}

bitflags::bitflags! {
    /// `RENAME_*` flags of renameat2 that a filesystem must honour.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct RenameFlags: u32 {
        /// Fail with `EEXIST` if the target exists.
        const NOREPLACE = 1;
        /// Swap the two names atomically (both must exist).
        const EXCHANGE = 2;
    }
}

/// What `statfs` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    /// `f_type` magic (TMPFS_MAGIC 0x01021994, MSDOS_SUPER_MAGIC 0x4d44, PROC 0x9fa0, ...).
    pub magic: u64,
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub files: u64,
    pub files_free: u64,
    pub name_max: u64,
}

/// A mounted filesystem, seen as inodes. See the module docs for the rules.
///
/// Every method takes `&self`: a filesystem is shared (`Arc`) between the mount table and
/// the open files on it, and guards its own state.
pub trait Filesystem: Send + Sync {
    /// The type shown in /proc/mounts (`tmpfs`, `vfat`, ...).
    fn type_name(&self) -> &'static str;
    /// The root directory's inode.
    fn root(&self) -> Ino;
    /// Attributes of `ino`; `ENOENT` if it no longer exists.
    fn metadata(&self, ino: Ino) -> Result<Metadata, Errno>;
    /// The inode called `name` in directory `dir` (`ENOENT`, `ENOTDIR`).
    fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Errno>;
    /// The parent of directory `dir` (the root is its own parent).
    fn parent(&self, dir: Ino) -> Result<Ino, Errno>;
    /// Calls `each` for the entries of `dir` from the `start`-th on (0-based, without `.` and
    /// `..`, in a stable order while the directory is unchanged) until it returns `false`.
    fn read_dir(
        &self,
        dir: Ino,
        start: usize,
        each: &mut dyn FnMut(DirEntry) -> bool,
    ) -> Result<(), Errno>;
    /// Reads from a regular file at `offset`; 0 at or past the end.
    fn read_at(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Writes to a regular file at `offset`, growing it (a hole reads as zeroes).
    fn write_at(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno>;
    /// Sets the length of a regular file (truncate or extend with zeroes).
    fn set_len(&self, ino: Ino, len: u64) -> Result<(), Errno>;
    /// Creates `name` in `dir` (`EEXIST` if it exists). Returns the new inode.
    fn create(&self, dir: Ino, name: &[u8], node: NewNode<'_>, owner: Owner) -> Result<Ino, Errno>;
    /// A new name `name` in `dir` for the non-directory `ino` (`EPERM` if unsupported).
    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> Result<(), Errno>;
    /// Removes the non-directory `name` from `dir` (`EISDIR` for a directory). The inode
    /// lives on while it is open (see [`Filesystem::retain`]).
    fn unlink(&self, dir: Ino, name: &[u8]) -> Result<(), Errno>;
    /// Removes the empty directory `name` from `dir` (`ENOTDIR`, `ENOTEMPTY`).
    fn rmdir(&self, dir: Ino, name: &[u8]) -> Result<(), Errno>;
    /// Renames with Linux semantics: an existing target is replaced atomically if it is
    /// compatible (file over file, empty directory over directory; else `EISDIR`, `ENOTDIR`,
    /// `ENOTEMPTY`). The VFS has already refused moving a directory into itself.
    fn rename(
        &self,
        from_dir: Ino,
        from: &[u8],
        to_dir: Ino,
        to: &[u8],
        flags: RenameFlags,
    ) -> Result<(), Errno>;
    /// The target of a symlink (`EINVAL` if `ino` is not one).
    fn readlink(&self, ino: Ino) -> Result<Vec<u8>, Errno>;
    /// Changes attributes (chmod, chown, utimensat).
    fn set_attr(&self, ino: Ino, attr: &SetAttr) -> Result<(), Errno>;
    /// Writes `ino`'s data and metadata (or everything, with `None`) to stable storage and
    /// returns only when it is there. In-memory filesystems return `Ok` at once.
    fn sync(&self, ino: Option<Ino>) -> Result<(), Errno>;
    /// Sizes and counts for statfs.
    fn stats(&self) -> FsStats;
    /// An open file now refers to `ino`: keep it (and its data) until the matching
    /// [`Filesystem::release`], even if it is unlinked meanwhile.
    fn retain(&self, ino: Ino) {
        let _ = ino;
    }
    /// An open file on `ino` was closed.
    fn release(&self, ino: Ino) {
        let _ = ino;
    }
}

/// Inode number of the root of the synthetic filesystems (procfs, sysfs).
pub const ROOT_INO_SYNTHETIC: Ino = 1;

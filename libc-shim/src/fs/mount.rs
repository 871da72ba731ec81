//! The mount table: which filesystem is mounted on which directory.
//!
//! Mount 0 is the root filesystem. Every other mount covers a directory (a [`Vnode`]) of
//! the filesystem below it; the VFS switches to the mounted filesystem's root when a path
//! walk reaches a covered directory, and back to the covered directory on `..` from a mount
//! root. The table does not walk paths itself; it records what the VFS resolved.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Filesystem, Ino};
use crate::errno::Errno;

/// Index of a mount in the table.
pub type MountId = usize;

/// An inode in a particular mount: what a path resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vnode {
    pub mount: MountId,
    pub ino: Ino,
}

/// What is mounted.
#[derive(Clone)]
pub enum Mounted {
    /// A filesystem behind the [`Filesystem`] trait (rootfs, tmpfs, devfs, volumes).
    Fs(Arc<dyn Filesystem>),
    /// procfs: generated from the process's state on every access.
    Proc,
    /// The bits of sysfs programs read (CPUs, transparent huge pages).
    Sys,
}

impl core::fmt::Debug for Mounted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Mounted::Fs(fs) => write!(f, "Fs({})", fs.type_name()),
            Mounted::Proc => f.write_str("Proc"),
            Mounted::Sys => f.write_str("Sys"),
        }
    }
}

/// One mount.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Absolute, normalised path of the mount point (for /proc/mounts).
    pub path: String,
    pub fs: Mounted,
    /// The directory this mount covers; `None` for the root mount.
    pub covers: Option<Vnode>,
    /// Writes through this mount are `EROFS`.
    pub read_only: bool,
    /// The source column of /proc/mounts (`rootfs`, `tmpfs`, `/dev/vda`, ...).
    pub source: String,
}

impl Mount {
    /// The `fstype` column of /proc/mounts.
    pub fn type_name(&self) -> &'static str {
        match &self.fs {
            Mounted::Fs(fs) => fs.type_name(),
            Mounted::Proc => "proc",
            Mounted::Sys => "sysfs",
        }
    }
}

/// All mounts of the VM, oldest first.
#[derive(Debug, Clone, Default)]
pub struct MountTable {
    mounts: Vec<Mount>,
}

impl MountTable {
    /// A table whose root mount (id 0) is `root`.
    pub fn new(root: Arc<dyn Filesystem>, source: &str) -> Self {
        MountTable {
            mounts: alloc::vec![Mount {
                path: String::from("/"),
                fs: Mounted::Fs(root),
                covers: None,
                read_only: false,
                source: String::from(source),
            }],
        }
    }

    /// Records a mount of `fs` on the directory `covers` (already resolved by the VFS; the
    /// caller checked it is a directory) at `path`. `EBUSY` if something is mounted there.
    pub fn mount(
        &mut self,
        path: &str,
        covers: Vnode,
        fs: Mounted,
        read_only: bool,
        source: &str,
    ) -> Result<MountId, Errno> {
        if self.mounted_on(covers).is_some() {
            return Err(Errno::EBUSY);
        }
        self.mounts.push(Mount {
            path: String::from(path),
            fs,
            covers: Some(covers),
            read_only,
            source: String::from(source),
        });
        Ok(self.mounts.len() - 1)
    }

    /// The mount on directory `v`, if any.
    pub fn mounted_on(&self, v: Vnode) -> Option<MountId> {
        self.mounts.iter().rposition(|m| m.covers == Some(v))
    }

    pub fn get(&self, id: MountId) -> &Mount {
        &self.mounts[id]
    }

    /// Every mount with its id, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (MountId, &Mount)> {
        self.mounts.iter().enumerate()
    }

    /// The root vnode of mount `id`.
    pub fn root_of(&self, id: MountId) -> Vnode {
        let ino = match &self.mounts[id].fs {
            Mounted::Fs(fs) => fs.root(),
            Mounted::Proc | Mounted::Sys => super::ROOT_INO_SYNTHETIC,
        };
        Vnode { mount: id, ino }
    }

    /// The filesystem object of mount `id`, for trait-backed mounts.
    pub fn fs(&self, id: MountId) -> Option<&Arc<dyn Filesystem>> {
        match &self.mounts[id].fs {
            Mounted::Fs(fs) => Some(fs),
            _ => None,
        }
    }
}

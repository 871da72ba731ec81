//! Files opened by path: regular files and directories of a [`Filesystem`], and the
//! generated files and directories of procfs and sysfs (a snapshot taken at open, as
//! Linux's seq_file gives a consistent read of a small file).

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{File, Io, MmapSupport};
use crate::errno::Errno;
use crate::fs::mount::Vnode;
use crate::fs::{DirEntry, FileType, Filesystem, Metadata};

/// A regular file, directory, FIFO-less special node or symlink (O_PATH) of a filesystem.
pub struct VnodeFile {
    pub fs: Arc<dyn Filesystem>,
    pub vnode: Vnode,
    pub read_only: bool,
}

impl VnodeFile {
    pub fn new(fs: Arc<dyn Filesystem>, vnode: Vnode, read_only: bool) -> Self {
        fs.retain(vnode.ino);
        VnodeFile {
            fs,
            vnode,
            read_only,
        }
    }
}

impl Drop for VnodeFile {
    fn drop(&mut self) {
        self.fs.release(self.vnode.ino);
    }
}

impl File for VnodeFile {
    fn read(&self, _io: &dyn Io, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.fs.read_at(self.vnode.ino, offset, buf)
    }

    fn write(&self, _io: &dyn Io, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        self.fs.write_at(self.vnode.ino, offset, data)
    }

    fn stat(&self, _io: &dyn Io) -> Result<Metadata, Errno> {
        self.fs.metadata(self.vnode.ino)
    }

    fn seekable(&self) -> bool {
        true
    }

    fn vnode(&self) -> Option<Vnode> {
        Some(self.vnode)
    }

    fn read_dir(
        &self,
        _io: &dyn Io,
        start: usize,
        each: &mut dyn FnMut(DirEntry) -> bool,
    ) -> Result<(), Errno> {
        self.fs.read_dir(self.vnode.ino, start, each)
    }

    fn set_len(&self, len: u64) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        self.fs.set_len(self.vnode.ino, len)
    }

    fn sync(&self) -> Result<(), Errno> {
        self.fs.sync(Some(self.vnode.ino))
    }

    fn mmap_support(&self) -> MmapSupport {
        match self.fs.metadata(self.vnode.ino).map(|m| m.kind) {
            Ok(FileType::Regular) if !self.read_only => MmapSupport::Shared,
            Ok(FileType::Regular) => MmapSupport::CopyOnly,
            _ => MmapSupport::No,
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// A generated file (procfs, sysfs): its bytes as they were when it was opened, or a
/// directory listing.
pub struct Snapshot {
    pub vnode: Vnode,
    pub meta: Metadata,
    pub data: Vec<u8>,
    pub entries: Vec<DirEntry>,
}

impl File for Snapshot {
    fn read(&self, _io: &dyn Io, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.meta.kind == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= self.data.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Ok(n)
    }

    fn write(&self, _io: &dyn Io, _offset: u64, _data: &[u8]) -> Result<usize, Errno> {
        Err(Errno::EACCES)
    }

    fn stat(&self, _io: &dyn Io) -> Result<Metadata, Errno> {
        Ok(self.meta)
    }

    fn seekable(&self) -> bool {
        true
    }

    fn vnode(&self) -> Option<Vnode> {
        Some(self.vnode)
    }

    fn read_dir(
        &self,
        _io: &dyn Io,
        start: usize,
        each: &mut dyn FnMut(DirEntry) -> bool,
    ) -> Result<(), Errno> {
        if self.meta.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        for e in self.entries.iter().skip(start) {
            if !each(e.clone()) {
                break;
            }
        }
        Ok(())
    }

    fn mmap_support(&self) -> MmapSupport {
        MmapSupport::CopyOnly
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

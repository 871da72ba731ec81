//! An in-memory filesystem: tmpfs, devfs, and the writable root filesystem.
//!
//! A regular file's bytes are either borrowed from `'static` memory (the rootfs archive in the
//! image, the app's ELF: served in place, never copied) or owned. The first write to a borrowed
//! file copies it into owned memory (copy-up); everything else about the tree (names,
//! attributes, links) is always in memory. That is the rootfs's "read-only archive with a
//! writable overlay": the archive's data is never written, and every change lives in memory
//! until the VM ends.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use spin::Mutex;

use super::{
    DirEntry, FileType, Filesystem, FsStats, Ino, Metadata, NewNode, Owner, RenameFlags, SetAttr,
    Timestamp,
};
use crate::errno::Errno;

/// Bytes of a regular file or a symlink target.
#[derive(Debug, Clone)]
enum Data {
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Data {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Static(b) => b,
            Data::Owned(v) => v,
        }
    }

    /// The owned bytes, copying borrowed ones first.
    fn owned(&mut self) -> &mut Vec<u8> {
        if let Data::Static(b) = *self {
            *self = Data::Owned(b.to_vec());
        }
        match self {
            Data::Owned(v) => v,
            Data::Static(_) => unreachable!("converted above"),
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    kind: FileType,
    perm: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    rdev: u64,
    atime: Timestamp,
    mtime: Timestamp,
    ctime: Timestamp,
    data: Data,
    children: BTreeMap<Vec<u8>, Ino>,
    /// Parent directory (directories only).
    parent: Ino,
    /// Open files referring to this inode.
    open: u32,
}

#[derive(Debug)]
struct Inner {
    nodes: BTreeMap<Ino, Node>,
    next_ino: Ino,
}

/// See the module docs.
#[derive(Debug)]
pub struct MemFs {
    inner: Mutex<Inner>,
    type_name: &'static str,
    magic: u64,
    read_only: bool,
}

const ROOT: Ino = 1;
/// `TMPFS_MAGIC`.
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// `RAMFS_MAGIC` (the rootfs).
pub const RAMFS_MAGIC: u64 = 0x8584_58f6;

impl MemFs {
    /// An empty filesystem whose root is a `0o755` directory owned by root.
    pub fn new(type_name: &'static str, magic: u64) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            Node::new(
                FileType::Directory,
                Owner {
                    perm: 0o755,
                    uid: 0,
                    gid: 0,
                },
                ROOT,
                Data::Owned(Vec::new()),
            ),
        );
        MemFs {
            inner: Mutex::new(Inner {
                nodes,
                next_ino: ROOT + 1,
            }),
            type_name,
            magic,
            read_only: false,
        }
    }

    /// The same, refusing every change with `EROFS` (sysfs-like trees built at boot).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Adds a regular file whose bytes are borrowed (the archive, the app's ELF), creating
    /// missing parent directories. Replaces an existing file of that name.
    pub fn insert_static(
        &self,
        path: &[u8],
        bytes: &'static [u8],
        owner: Owner,
        mtime: Timestamp,
    ) -> Result<Ino, Errno> {
        let (dir, name) = self.make_parents(path)?;
        let mut inner = self.inner.lock();
        if let Some(&old) = inner.nodes[&dir].children.get(name) {
            if inner.nodes[&old].kind == FileType::Directory {
                return Err(Errno::EISDIR);
            }
            inner.remove_name(dir, name);
        }
        let ino = inner.add(dir, name, FileType::Regular, owner, Data::Static(bytes));
        let n = inner.nodes.get_mut(&ino).expect("just added");
        (n.atime, n.mtime, n.ctime) = (mtime, mtime, mtime);
        Ok(ino)
    }

    /// Creates `path` (and its parents) as a node of the given kind unless something exists
    /// there; returns the inode either way. For building trees at boot.
    pub fn ensure(&self, path: &[u8], node: NewNode<'_>, owner: Owner) -> Result<Ino, Errno> {
        let (dir, name) = self.make_parents(path)?;
        if name.is_empty() {
            return Ok(dir);
        }
        match self.lookup(dir, name) {
            Ok(ino) => Ok(ino),
            Err(Errno::ENOENT) => self.create_unchecked(dir, name, node, owner),
            Err(e) => Err(e),
        }
    }

    /// Sets the attributes of `ino` as the archive gives them.
    pub fn set_times(&self, ino: Ino, t: Timestamp) {
        if let Some(n) = self.inner.lock().nodes.get_mut(&ino) {
            (n.atime, n.mtime, n.ctime) = (t, t, t);
        }
    }

    /// The inode at `path` (no symlinks followed), for boot-time building and tests.
    pub fn resolve(&self, path: &[u8]) -> Result<Ino, Errno> {
        let mut at = ROOT;
        for c in path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
        {
            at = self.lookup(at, c)?;
        }
        Ok(at)
    }

    /// Number of inodes (tests, statfs).
    pub fn inode_count(&self) -> usize {
        self.inner.lock().nodes.len()
    }

    /// Whether `ino`'s data is still borrowed (not copied up).
    pub fn is_borrowed(&self, ino: Ino) -> bool {
        matches!(
            self.inner.lock().nodes.get(&ino).map(|n| &n.data),
            Some(Data::Static(_))
        )
    }

    fn make_parents<'p>(&self, path: &'p [u8]) -> Result<(Ino, &'p [u8]), Errno> {
        let trimmed = trim_slashes(path);
        let (parents, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let mut dir = ROOT;
        for c in parents
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
        {
            dir = match self.lookup(dir, c) {
                Ok(ino) => ino,
                Err(Errno::ENOENT) => self.create_unchecked(
                    dir,
                    c,
                    NewNode::Directory,
                    Owner {
                        perm: 0o755,
                        uid: 0,
                        gid: 0,
                    },
                )?,
                Err(e) => return Err(e),
            };
            if self.metadata(dir)?.kind != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
        }
        Ok((dir, name))
    }

    fn create_unchecked(
        &self,
        dir: Ino,
        name: &[u8],
        node: NewNode<'_>,
        owner: Owner,
    ) -> Result<Ino, Errno> {
        let mut inner = self.inner.lock();
        let d = inner.dir(dir)?;
        if d.children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let (kind, data, rdev) = match node {
            NewNode::Regular => (FileType::Regular, Data::Owned(Vec::new()), 0),
            NewNode::Directory => (FileType::Directory, Data::Owned(Vec::new()), 0),
            NewNode::Symlink { target } => (FileType::Symlink, Data::Owned(target.to_vec()), 0),
            NewNode::Special { kind, rdev } => (kind, Data::Owned(Vec::new()), rdev),
        };
        let ino = inner.add(dir, name, kind, owner, data);
        inner.nodes.get_mut(&ino).expect("just added").rdev = rdev;
        Ok(ino)
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }
}

fn trim_slashes(p: &[u8]) -> &[u8] {
    let start = p.iter().position(|&b| b != b'/').unwrap_or(p.len());
    let end = p.iter().rposition(|&b| b != b'/').map_or(start, |e| e + 1);
    &p[start..end.max(start)]
}

impl Node {
    fn new(kind: FileType, owner: Owner, parent: Ino, data: Data) -> Self {
        Node {
            kind,
            perm: owner.perm & 0o7777,
            uid: owner.uid,
            gid: owner.gid,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            rdev: 0,
            atime: Timestamp::default(),
            mtime: Timestamp::default(),
            ctime: Timestamp::default(),
            data,
            children: BTreeMap::new(),
            parent,
            open: 0,
        }
    }
}

impl Inner {
    fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn dir(&self, ino: Ino) -> Result<&Node, Errno> {
        let n = self.node(ino)?;
        if n.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(n)
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut Node, Errno> {
        let n = self.node_mut(ino)?;
        match n.kind {
            FileType::Regular => Ok(n),
            FileType::Directory => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn add(&mut self, dir: Ino, name: &[u8], kind: FileType, owner: Owner, data: Data) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node::new(kind, owner, dir, data));
        let d = self.nodes.get_mut(&dir).expect("parent exists");
        d.children.insert(name.to_vec(), ino);
        if kind == FileType::Directory {
            d.nlink += 1;
        }
        ino
    }

    /// Drops `name` from `dir` and one link of its inode; frees the inode when nothing
    /// refers to it any more.
    fn remove_name(&mut self, dir: Ino, name: &[u8]) -> Option<Ino> {
        let ino = self.nodes.get_mut(&dir)?.children.remove(name)?;
        let is_dir = self
            .nodes
            .get(&ino)
            .is_some_and(|n| n.kind == FileType::Directory);
        if is_dir && let Some(d) = self.nodes.get_mut(&dir) {
            d.nlink -= 1;
        }
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.nlink = if is_dir { 0 } else { n.nlink.saturating_sub(1) };
            if n.nlink == 0 && n.open == 0 {
                self.nodes.remove(&ino);
            }
        }
        Some(ino)
    }

    fn is_ancestor(&self, maybe_ancestor: Ino, mut dir: Ino) -> bool {
        loop {
            if dir == maybe_ancestor {
                return true;
            }
            match self.nodes.get(&dir) {
                Some(n) if n.parent != dir => dir = n.parent,
                _ => return false,
            }
        }
    }
}

impl Filesystem for MemFs {
    fn type_name(&self) -> &'static str {
        self.type_name
    }

    fn root(&self) -> Ino {
        ROOT
    }

    fn metadata(&self, ino: Ino) -> Result<Metadata, Errno> {
        let inner = self.inner.lock();
        let n = inner.node(ino)?;
        let size = match n.kind {
            FileType::Regular | FileType::Symlink => n.data.bytes().len() as u64,
            FileType::Directory => 4096,
            _ => 0,
        };
        Ok(Metadata {
            ino,
            kind: n.kind,
            perm: n.perm,
            nlink: n.nlink,
            uid: n.uid,
            gid: n.gid,
            size,
            blocks: if matches!(n.data, Data::Owned(_)) {
                size.div_ceil(4096) * 8
            } else {
                size.div_ceil(512)
            },
            block_size: 4096,
            rdev: n.rdev,
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
        })
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Errno> {
        let inner = self.inner.lock();
        inner
            .dir(dir)?
            .children
            .get(name)
            .copied()
            .ok_or(Errno::ENOENT)
    }

    fn parent(&self, dir: Ino) -> Result<Ino, Errno> {
        Ok(self.inner.lock().dir(dir)?.parent)
    }

    fn read_dir(
        &self,
        dir: Ino,
        start: usize,
        each: &mut dyn FnMut(DirEntry) -> bool,
    ) -> Result<(), Errno> {
        // Collect first: `each` may be slow (it copies to the app) and must not hold the lock.
        let entries: Vec<DirEntry> = {
            let inner = self.inner.lock();
            let d = inner.dir(dir)?;
            d.children
                .iter()
                .skip(start)
                .take(512)
                .map(|(name, &ino)| DirEntry {
                    ino,
                    kind: inner.nodes[&ino].kind,
                    name: name.clone(),
                })
                .collect()
        };
        let count = entries.len();
        for e in entries {
            if !each(e) {
                return Ok(());
            }
        }
        if count == 512 {
            return self.read_dir(dir, start + 512, each);
        }
        Ok(())
    }

    fn read_at(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let inner = self.inner.lock();
        let n = inner.node(ino)?;
        match n.kind {
            FileType::Regular => {}
            FileType::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
        let data = n.data.bytes();
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        if start >= data.len() {
            return Ok(0);
        }
        let len = buf.len().min(data.len() - start);
        buf[..len].copy_from_slice(&data[start..start + len]);
        Ok(len)
    }

    fn write_at(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.writable()?;
        let mut inner = self.inner.lock();
        let n = inner.file_mut(ino)?;
        let start = usize::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let end = start.checked_add(data.len()).ok_or(Errno::EFBIG)?;
        let v = n.data.owned();
        if v.len() < end {
            v.try_reserve(end - v.len()).map_err(|_| Errno::ENOSPC)?;
            v.resize(end, 0);
        }
        v[start..end].copy_from_slice(data);
        Ok(data.len())
    }

    fn set_len(&self, ino: Ino, len: u64) -> Result<(), Errno> {
        self.writable()?;
        let mut inner = self.inner.lock();
        let n = inner.file_mut(ino)?;
        let len = usize::try_from(len).map_err(|_| Errno::EFBIG)?;
        if len == n.data.bytes().len() {
            return Ok(());
        }
        let v = n.data.owned();
        if len > v.len() {
            v.try_reserve(len - v.len()).map_err(|_| Errno::ENOSPC)?;
        }
        v.resize(len, 0);
        Ok(())
    }

    fn create(&self, dir: Ino, name: &[u8], node: NewNode<'_>, owner: Owner) -> Result<Ino, Errno> {
        self.writable()?;
        self.create_unchecked(dir, name, node, owner)
    }

    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        self.writable()?;
        let mut inner = self.inner.lock();
        if inner.node(ino)?.kind == FileType::Directory {
            return Err(Errno::EPERM);
        }
        if inner.dir(dir)?.children.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        inner.node_mut(ino)?.nlink += 1;
        inner.node_mut(dir)?.children.insert(name.to_vec(), ino);
        Ok(())
    }

    fn unlink(&self, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        self.writable()?;
        let mut inner = self.inner.lock();
        let ino = *inner.dir(dir)?.children.get(name).ok_or(Errno::ENOENT)?;
        if inner.node(ino)?.kind == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        inner.remove_name(dir, name);
        Ok(())
    }

    fn rmdir(&self, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        self.writable()?;
        let mut inner = self.inner.lock();
        let ino = *inner.dir(dir)?.children.get(name).ok_or(Errno::ENOENT)?;
        let n = inner.node(ino)?;
        if n.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if !n.children.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        inner.remove_name(dir, name);
        Ok(())
    }

    fn rename(
        &self,
        from_dir: Ino,
        from: &[u8],
        to_dir: Ino,
        to: &[u8],
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        self.writable()?;
        let mut inner = self.inner.lock();
        let src = *inner
            .dir(from_dir)?
            .children
            .get(from)
            .ok_or(Errno::ENOENT)?;
        let dst = inner.dir(to_dir)?.children.get(to).copied();
        let src_is_dir = inner.node(src)?.kind == FileType::Directory;
        if src_is_dir && inner.is_ancestor(src, to_dir) {
            return Err(Errno::EINVAL);
        }
        if flags.contains(RenameFlags::EXCHANGE) {
            let dst = dst.ok_or(Errno::ENOENT)?;
            let dst_is_dir = inner.node(dst)?.kind == FileType::Directory;
            if dst_is_dir && inner.is_ancestor(dst, from_dir) {
                return Err(Errno::EINVAL);
            }
            inner
                .node_mut(from_dir)?
                .children
                .insert(from.to_vec(), dst);
            inner.node_mut(to_dir)?.children.insert(to.to_vec(), src);
            if src_is_dir != dst_is_dir && from_dir != to_dir {
                let (gains, loses) = if src_is_dir {
                    (to_dir, from_dir)
                } else {
                    (from_dir, to_dir)
                };
                inner.node_mut(gains)?.nlink += 1;
                inner.node_mut(loses)?.nlink -= 1;
            }
            if src_is_dir {
                inner.node_mut(src)?.parent = to_dir;
            }
            if dst_is_dir {
                inner.node_mut(dst)?.parent = from_dir;
            }
            return Ok(());
        }
        if let Some(dst) = dst {
            if flags.contains(RenameFlags::NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if dst == src {
                return Ok(());
            }
            let d = inner.node(dst)?;
            match (src_is_dir, d.kind == FileType::Directory) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !d.children.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
            inner.remove_name(to_dir, to);
        }
        inner.node_mut(from_dir)?.children.remove(from);
        inner.node_mut(to_dir)?.children.insert(to.to_vec(), src);
        if src_is_dir {
            inner.node_mut(src)?.parent = to_dir;
            inner.node_mut(from_dir)?.nlink -= 1;
            inner.node_mut(to_dir)?.nlink += 1;
        }
        Ok(())
    }

    fn readlink(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        let inner = self.inner.lock();
        let n = inner.node(ino)?;
        if n.kind != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        Ok(n.data.bytes().to_vec())
    }

    fn set_attr(&self, ino: Ino, attr: &SetAttr) -> Result<(), Errno> {
        let only_times = attr.perm.is_none() && attr.uid.is_none() && attr.gid.is_none();
        if !only_times {
            self.writable()?;
        }
        let mut inner = self.inner.lock();
        let n = inner.node_mut(ino)?;
        if let Some(p) = attr.perm {
            n.perm = p & 0o7777;
        }
        if let Some(u) = attr.uid {
            n.uid = u;
        }
        if let Some(g) = attr.gid {
            n.gid = g;
        }
        if let Some(t) = attr.atime {
            n.atime = t;
        }
        if let Some(t) = attr.mtime {
            n.mtime = t;
        }
        if let Some(t) = attr.ctime {
            n.ctime = t;
        }
        Ok(())
    }

    fn sync(&self, _ino: Option<Ino>) -> Result<(), Errno> {
        Ok(())
    }

    fn stats(&self) -> FsStats {
        let inner = self.inner.lock();
        let used: u64 = inner
            .nodes
            .values()
            .map(|n| match &n.data {
                Data::Owned(v) => (v.len() as u64).div_ceil(4096),
                Data::Static(_) => 0,
            })
            .sum();
        FsStats {
            magic: self.magic,
            block_size: 4096,
            blocks: used + (1 << 16),
            blocks_free: 1 << 16,
            files: inner.nodes.len() as u64 + (1 << 16),
            files_free: 1 << 16,
            name_max: super::NAME_MAX as u64,
        }
    }

    fn retain(&self, ino: Ino) {
        if let Some(n) = self.inner.lock().nodes.get_mut(&ino) {
            n.open += 1;
        }
    }

    fn release(&self, ino: Ino) {
        let mut inner = self.inner.lock();
        if let Some(n) = inner.nodes.get_mut(&ino) {
            n.open = n.open.saturating_sub(1);
            if n.open == 0 && n.nlink == 0 {
                inner.nodes.remove(&ino);
            }
        }
    }
}

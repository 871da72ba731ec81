//! An in-memory filesystem: tmpfs, devfs, and the writable root filesystem.
//!
//! A regular file's bytes are either borrowed from `'static` memory (the rootfs archive in the
//! image, the app's ELF: served in place, never copied) or owned, in 64 KiB chunks ([`Chunks`]:
//! a file grows without being copied and holes take no memory). The first write to a borrowed
//! file copies it into owned memory (copy-up); everything else about the tree (names,
//! attributes, links) is always in memory. That is the rootfs's "read-only archive with a
//! writable overlay": the archive's data is never written, and every change lives in memory
//! until the VM ends.

use alloc::collections::BTreeMap;
use alloc::vec;
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
    Owned(Chunks),
}

impl Data {
    fn len(&self) -> u64 {
        match self {
            Data::Static(b) => b.len() as u64,
            Data::Owned(c) => c.len,
        }
    }

    /// The owned bytes, copying borrowed ones first (`ENOSPC` if memory runs out).
    fn owned(&mut self) -> Result<&mut Chunks, Errno> {
        if let Data::Static(b) = *self {
            *self = Data::Owned(Chunks::from_bytes(b)?);
        }
        match self {
            Data::Owned(c) => Ok(c),
            Data::Static(_) => unreachable!("converted above"),
        }
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        match self {
            Data::Static(b) => {
                let Ok(start) = usize::try_from(offset) else {
                    return 0;
                };
                if start >= b.len() {
                    return 0;
                }
                let n = buf.len().min(b.len() - start);
                buf[..n].copy_from_slice(&b[start..start + n]);
                n
            }
            Data::Owned(c) => c.read(offset, buf),
        }
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len() as usize];
        let n = self.read(0, &mut v);
        v.truncate(n);
        v
    }
}

/// Bytes of an owned file, in chunks of [`CHUNK`] bytes: a file grows without ever being
/// copied whole (so one file can use nearly all free memory, not a third of it), and a range
/// never written (a hole left by `ftruncate` or a write past the end) takes no memory.
///
/// Chunk `i` holds bytes `[i * CHUNK, i * CHUNK + v.len())`; everything else below `len`
/// reads as zeroes, whether its chunk is absent (a hole) or shorter than `CHUNK` (a small
/// file's only chunk grows as needed instead of taking 64 KiB at once). Bytes past `len` are
/// never stored, so growing a file shows zeroes there.
#[derive(Debug, Clone, Default)]
struct Chunks {
    len: u64,
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Sum of the chunks' lengths (for `st_blocks` and statfs).
    stored: u64,
}

/// Bytes per chunk of an owned file.
const CHUNK: usize = 64 * 1024;

/// Largest file size, as Linux's `MAX_LFS_FILESIZE` (holes cost nothing, so only the offset
/// arithmetic limits it).
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

impl Chunks {
    fn from_bytes(b: &[u8]) -> Result<Self, Errno> {
        let mut c = Chunks::default();
        c.write(0, b)?;
        Ok(c)
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        if offset >= self.len {
            return 0;
        }
        let n = buf
            .len()
            .min((self.len - offset).min(usize::MAX as u64) as usize);
        let buf = &mut buf[..n];
        let mut done = 0;
        while done < n {
            let pos = offset + done as u64;
            let (index, within) = (pos / CHUNK as u64, (pos % CHUNK as u64) as usize);
            let take = (CHUNK - within).min(n - done);
            let out = &mut buf[done..done + take];
            let stored = self.chunks.get(&index).map_or(&[][..], |v| v.as_slice());
            let have = stored.len().saturating_sub(within).min(take);
            if have > 0 {
                out[..have].copy_from_slice(&stored[within..within + have]);
            }
            out[have..].fill(0);
            done += take;
        }
        n
    }

    /// Writes `data` at `offset`; `ENOSPC` when memory runs out before any byte is stored,
    /// else the bytes stored (short when it runs out midway).
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let (index, within) = (pos / CHUNK as u64, (pos % CHUNK as u64) as usize);
            let take = (CHUNK - within).min(data.len() - done);
            let v = self.chunks.entry(index).or_default();
            let need = within + take;
            if v.len() < need {
                // Grow by doubling up to a whole chunk: appends copy little, small files
                // stay small.
                if v.capacity() < need {
                    let want = need.max(v.capacity() * 2).min(CHUNK);
                    if v.try_reserve_exact(want - v.len()).is_err() {
                        if v.is_empty() {
                            self.chunks.remove(&index);
                        }
                        break;
                    }
                }
                self.stored += (need - v.len()) as u64;
                v.resize(need, 0);
            }
            v[within..need].copy_from_slice(&data[done..done + take]);
            done += take;
        }
        if done == 0 && !data.is_empty() {
            return Err(Errno::ENOSPC);
        }
        self.len = self.len.max(offset + done as u64);
        Ok(done)
    }

    /// Truncates or extends (with a hole, which takes no memory).
    fn set_len(&mut self, len: u64) {
        if len < self.len {
            let first_gone = len.div_ceil(CHUNK as u64);
            for (_, v) in self.chunks.split_off(&first_gone) {
                self.stored -= v.len() as u64;
            }
            let within = (len % CHUNK as u64) as usize;
            if within != 0
                && let Some(v) = self.chunks.get_mut(&(len / CHUNK as u64))
                && v.len() > within
            {
                self.stored -= (v.len() - within) as u64;
                v.truncate(within);
                v.shrink_to_fit();
            }
        }
        self.len = len;
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
                Data::Owned(Chunks::default()),
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
            NewNode::Regular => (FileType::Regular, Data::Owned(Chunks::default()), 0),
            NewNode::Directory => (FileType::Directory, Data::Owned(Chunks::default()), 0),
            NewNode::Symlink { target } => (
                FileType::Symlink,
                Data::Owned(Chunks::from_bytes(target)?),
                0,
            ),
            NewNode::Special { kind, rdev } => (kind, Data::Owned(Chunks::default()), rdev),
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
            FileType::Regular | FileType::Symlink => n.data.len(),
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
            blocks: match &n.data {
                Data::Owned(c) => c.stored.div_ceil(4096) * 8,
                Data::Static(_) => size.div_ceil(512),
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
        Ok(n.data.read(offset, buf))
    }

    fn write_at(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.writable()?;
        let mut inner = self.inner.lock();
        let n = inner.file_mut(ino)?;
        offset
            .checked_add(data.len() as u64)
            .filter(|&end| end <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        n.data.owned()?.write(offset, data)
    }

    fn set_len(&self, ino: Ino, len: u64) -> Result<(), Errno> {
        self.writable()?;
        let mut inner = self.inner.lock();
        let n = inner.file_mut(ino)?;
        if len > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        if len == n.data.len() {
            return Ok(());
        }
        n.data.owned()?.set_len(len);
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
        Ok(n.data.to_vec())
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
                Data::Owned(c) => c.stored.div_ceil(4096),
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

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner = Owner {
        perm: 0o644,
        uid: 0,
        gid: 0,
    };

    fn file(fs: &MemFs) -> Ino {
        fs.create(1, b"f", NewNode::Regular, OWNER).unwrap()
    }

    fn read_all(fs: &MemFs, ino: Ino) -> Vec<u8> {
        let mut buf = vec![0u8; fs.metadata(ino).unwrap().size as usize + 7];
        let n = fs.read_at(ino, 0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
            .collect()
    }

    #[test]
    fn writes_across_chunks_read_back_like_a_flat_buffer() {
        let fs = MemFs::new("tmpfs", TMPFS_MAGIC);
        let ino = file(&fs);
        let mut model = Vec::new();
        let writes = [
            (0usize, 100usize),
            (CHUNK - 10, 20),
            (3 * CHUNK + 5, 2 * CHUNK + 1),
            (50, CHUNK),
            (7 * CHUNK, 1),
        ];
        for (k, &(off, len)) in writes.iter().enumerate() {
            let data = pattern(len, k as u8);
            assert_eq!(fs.write_at(ino, off as u64, &data).unwrap(), len);
            if model.len() < off + len {
                model.resize(off + len, 0);
            }
            model[off..off + len].copy_from_slice(&data);
            assert_eq!(read_all(&fs, ino), model, "after writing {len} at {off}");
        }
        // Reads that start and end inside chunks and holes.
        for (off, len) in [
            (CHUNK as u64 - 3, 9usize),
            (2 * CHUNK as u64 + 1, CHUNK + 2),
        ] {
            let mut buf = vec![0xAAu8; len];
            assert_eq!(fs.read_at(ino, off, &mut buf).unwrap(), len);
            assert_eq!(buf, model[off as usize..off as usize + len]);
        }
        let mut buf = [0u8; 4];
        assert_eq!(fs.read_at(ino, model.len() as u64, &mut buf).unwrap(), 0);
    }

    #[test]
    fn holes_take_no_memory_and_read_as_zeroes() {
        let fs = MemFs::new("tmpfs", TMPFS_MAGIC);
        let ino = file(&fs);
        fs.set_len(ino, 1 << 40).unwrap();
        let md = fs.metadata(ino).unwrap();
        assert_eq!((md.size, md.blocks), (1 << 40, 0), "a 1 TiB hole is free");
        fs.write_at(ino, (1 << 39) + 3, b"xyz").unwrap();
        assert_eq!(
            fs.metadata(ino).unwrap().blocks,
            8,
            "one 4 KiB block for 3 bytes"
        );
        let mut buf = [1u8; 8];
        fs.read_at(ino, (1 << 39) + 1, &mut buf).unwrap();
        assert_eq!(&buf, b"\0\0xyz\0\0\0");
        assert_eq!(
            fs.write_at(ino, u64::MAX - 1, b"ab"),
            Err(Errno::EFBIG),
            "past MAX_LFS_FILESIZE"
        );
        assert_eq!(fs.set_len(ino, u64::MAX), Err(Errno::EFBIG));
    }

    #[test]
    fn truncate_then_extend_shows_zeroes_not_old_bytes() {
        let fs = MemFs::new("tmpfs", TMPFS_MAGIC);
        let ino = file(&fs);
        let data = pattern(3 * CHUNK, 9);
        fs.write_at(ino, 0, &data).unwrap();
        for cut in [2 * CHUNK + 100, CHUNK, 10, 0] {
            fs.set_len(ino, cut as u64).unwrap();
            fs.set_len(ino, 3 * CHUNK as u64).unwrap();
            let mut want = data[..cut].to_vec();
            want.resize(3 * CHUNK, 0);
            assert_eq!(read_all(&fs, ino), want, "cut at {cut}");
            fs.write_at(ino, 0, &data).unwrap();
        }
        fs.set_len(ino, 0).unwrap();
        assert_eq!(fs.metadata(ino).unwrap().blocks, 0);
        assert_eq!(
            fs.stats().blocks,
            fs.stats().blocks_free,
            "nothing stored any more"
        );
    }

    #[test]
    fn small_files_stay_small() {
        let fs = MemFs::new("tmpfs", TMPFS_MAGIC);
        let ino = file(&fs);
        for k in 0..10u8 {
            fs.write_at(ino, u64::from(k) * 10, &[k; 10]).unwrap();
        }
        let Data::Owned(c) = &fs.inner.lock().nodes[&ino].data else {
            panic!("owned")
        };
        assert_eq!(c.stored, 100);
        assert!(
            c.chunks[&0].capacity() < 1024,
            "capacity {}",
            c.chunks[&0].capacity()
        );
    }

    #[test]
    fn borrowed_files_copy_up_on_first_write() {
        static BYTES: [u8; 100_000] = [7; 100_000];
        let fs = MemFs::new("rootfs", RAMFS_MAGIC);
        let ino = fs
            .insert_static(b"/bin/app", &BYTES, OWNER, Timestamp::default())
            .unwrap();
        assert!(fs.is_borrowed(ino));
        fs.write_at(ino, 99_999, b"!").unwrap();
        assert!(!fs.is_borrowed(ino));
        let got = read_all(&fs, ino);
        assert_eq!(got.len(), 100_000);
        assert!(got[..99_999].iter().all(|&b| b == 7) && got[99_999] == b'!');
    }

    #[test]
    fn symlink_targets_round_trip() {
        let fs = MemFs::new("tmpfs", TMPFS_MAGIC);
        let ino = fs
            .create(1, b"l", NewNode::Symlink { target: b"/a/b" }, OWNER)
            .unwrap();
        assert_eq!(fs.readlink(ino).unwrap(), b"/a/b");
        assert_eq!(fs.metadata(ino).unwrap().size, 4);
    }
}

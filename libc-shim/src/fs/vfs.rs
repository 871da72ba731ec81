//! The VFS: the process's file state (mounts, fds, cwd, wait queues) and path resolution
//! across mounts, with Linux's rules: `..` (never above `/`, crossing back over mount
//! points), symlinks (at most [`MAX_SYMLINKS`] per walk: `ELOOP`), trailing slashes,
//! `ENAMETOOLONG`, `ENOTDIR`, and procfs's magic links.
//!
//! The app runs as root: permission bits are kept and reported but not enforced, except that
//! executing needs an execute bit and writes through a read-only mount are `EROFS`.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::memfs::{MemFs, RAMFS_MAGIC, TMPFS_MAGIC};
use super::mount::{MountTable, Mounted, Vnode};
use super::synth::{self, Which};
use super::{DirEntry, FileType, Filesystem, Metadata, NAME_MAX, NewNode, Owner};
use crate::errno::Errno;
use crate::fd::console::{Console, Stream};
use crate::fd::device::{self, Device};
use crate::fd::vnode_file::{Snapshot, VnodeFile};
use crate::fd::{FdEntry, FdTable, File, OpenFile, StatusFlags, WaitQueues};
use crate::platform::Platform;
use crate::process::Process;

/// Symlinks followed in one walk before `ELOOP` (Linux: 40).
pub const MAX_SYMLINKS: usize = 40;
/// Longest path (`PATH_MAX`, with the NUL).
pub const PATH_MAX: usize = 4096;

/// Files of the process.
pub struct FileState {
    pub mounts: MountTable,
    pub fds: FdTable,
    pub cwd: Vnode,
    pub cwd_path: String,
    pub waits: WaitQueues,
    /// The root filesystem (archive + in-memory changes).
    pub rootfs: Arc<MemFs>,
    /// /proc/self/cmdline and environ: NUL-terminated strings.
    pub cmdline: Vec<u8>,
    pub environ: Vec<u8>,
    /// MAP_SHARED file mappings to write back (see `syscall::file_mmap`).
    pub shared_maps: Vec<crate::syscall::file_mmap::SharedMap>,
}

const DIR: Owner = Owner {
    perm: 0o755,
    uid: 0,
    gid: 0,
};
const FILE: Owner = Owner {
    perm: 0o644,
    uid: 0,
    gid: 0,
};

/// The /etc files every image has unless its rootfs brings its own.
const DEFAULT_ETC: &[(&str, &str)] = &[
    (
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    ),
    ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    (
        "etc/hosts",
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tkiln\n",
    ),
    ("etc/resolv.conf", "nameserver 10.0.2.3\n"),
    (
        "etc/nsswitch.conf",
        "passwd: files\ngroup: files\nhosts: files dns\nservices: files\nprotocols: files\n",
    ),
    (
        "etc/services",
        "ftp\t\t21/tcp\nssh\t\t22/tcp\nsmtp\t\t25/tcp\ndomain\t\t53/tcp\ndomain\t\t53/udp\nhttp\t\t80/tcp\n\
         https\t\t443/tcp\nmysql\t\t3306/tcp\npostgresql\t5432/tcp\nredis\t\t6379/tcp\nhttp-alt\t8080/tcp\n",
    ),
    (
        "etc/protocols",
        "ip\t0\tIP\nicmp\t1\tICMP\ntcp\t6\tTCP\nudp\t17\tUDP\nipv6\t41\tIPv6\nipv6-icmp\t58\tIPv6-ICMP\n",
    ),
    ("etc/hostname", "kiln\n"),
];

fn owned(s: &'static str) -> &'static [u8] {
    s.as_bytes()
}

impl FileState {
    /// A root filesystem with the standard mounts (/dev, /dev/shm, /tmp, /proc, /sys), the
    /// default /etc files, and the console on fds 0-2.
    pub fn new() -> Self {
        let rootfs = Arc::new(MemFs::new("rootfs", RAMFS_MAGIC));
        for dir in ["tmp", "dev", "proc", "sys", "etc", "root", "bin"] {
            rootfs
                .ensure(dir.as_bytes(), NewNode::Directory, DIR)
                .expect("fresh rootfs");
        }
        for (path, text) in DEFAULT_ETC {
            rootfs
                .insert_static(path.as_bytes(), owned(text), FILE, Default::default())
                .expect("fresh rootfs");
        }
        let root_dyn: Arc<dyn Filesystem> = rootfs.clone();
        let mut mounts = MountTable::new(root_dyn, "rootfs");
        let at = |name: &str| Vnode {
            mount: 0,
            ino: rootfs.resolve(name.as_bytes()).expect("made above"),
        };
        let devfs = Arc::new(MemFs::new("devtmpfs", TMPFS_MAGIC));
        let chr = |rdev| NewNode::Special {
            kind: FileType::CharDevice,
            rdev,
        };
        let rw = Owner {
            perm: 0o666,
            uid: 0,
            gid: 0,
        };
        for (name, rdev) in [
            ("null", device::NULL),
            ("zero", device::ZERO),
            ("full", device::FULL),
            ("random", device::RANDOM),
            ("urandom", device::URANDOM),
            ("tty", device::TTY),
            ("console", device::CONSOLE),
        ] {
            devfs
                .ensure(name.as_bytes(), chr(rdev), rw)
                .expect("fresh devfs");
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            devfs
                .ensure(
                    name.as_bytes(),
                    NewNode::Symlink {
                        target: target.as_bytes(),
                    },
                    Owner {
                        perm: 0o777,
                        uid: 0,
                        gid: 0,
                    },
                )
                .expect("fresh devfs");
        }
        let shm = devfs
            .ensure(
                b"shm",
                NewNode::Directory,
                Owner {
                    perm: 0o1777,
                    uid: 0,
                    gid: 0,
                },
            )
            .expect("fresh devfs");
        let dev = mounts
            .mount("/dev", at("dev"), Mounted::Fs(devfs), false, "devtmpfs")
            .expect("fresh table");
        let tmpfs = |_: ()| -> Arc<dyn Filesystem> { Arc::new(MemFs::new("tmpfs", TMPFS_MAGIC)) };
        mounts
            .mount(
                "/dev/shm",
                Vnode {
                    mount: dev,
                    ino: shm,
                },
                Mounted::Fs(tmpfs(())),
                false,
                "tmpfs",
            )
            .expect("fresh table");
        let tmp = tmpfs(());
        tmp.set_attr(
            tmp.root(),
            &super::SetAttr {
                perm: Some(0o1777),
                ..Default::default()
            },
        )
        .expect("fresh tmpfs");
        mounts
            .mount("/tmp", at("tmp"), Mounted::Fs(tmp), false, "tmpfs")
            .expect("fresh table");
        mounts
            .mount("/proc", at("proc"), Mounted::Proc, false, "proc")
            .expect("fresh table");
        mounts
            .mount("/sys", at("sys"), Mounted::Sys, true, "sysfs")
            .expect("fresh table");

        let mut fds = FdTable::default();
        for (fd, stream) in [(0, Stream::Out), (1, Stream::Out), (2, Stream::Err)] {
            let console: Arc<dyn File> = Arc::new(Console {
                stream,
                input: fd == 0,
                ino: 3 + fd as u64,
            });
            // The console decides per call whether it reads or writes (that depends on
            // whether it is a terminal); the description allows both.
            let flags = StatusFlags::RDWR;
            fds.put(
                fd,
                FdEntry {
                    desc: OpenFile::new(console, flags, Some(String::from("/dev/console"))),
                    cloexec: false,
                },
            );
        }
        FileState {
            cwd: mounts.root_of(0),
            mounts,
            fds,
            cwd_path: String::from("/"),
            waits: WaitQueues::default(),
            rootfs,
            cmdline: Vec::new(),
            environ: Vec::new(),
            shared_maps: Vec::new(),
        }
    }
}

impl Default for FileState {
    fn default() -> Self {
        Self::new()
    }
}

/// What a path names.
#[derive(Clone)]
pub enum Resolved {
    Node(Vnode),
    /// An open file reached through a magic link (/proc/self/fd/N, /dev/stdout).
    Open(Arc<OpenFile>),
}

/// Attributes of `v`.
pub fn metadata(p: &Process, platform: &dyn Platform, v: Vnode) -> Result<Metadata, Errno> {
    match &p.fs.mounts.get(v.mount).fs {
        Mounted::Fs(fs) => fs.metadata(v.ino),
        Mounted::Proc => synth::metadata(Which::Proc, p, platform, v.ino),
        Mounted::Sys => synth::metadata(Which::Sys, p, platform, v.ino),
    }
}

fn lookup(p: &Process, v: Vnode, name: &[u8]) -> Result<Vnode, Errno> {
    let ino = match &p.fs.mounts.get(v.mount).fs {
        Mounted::Fs(fs) => fs.lookup(v.ino, name)?,
        Mounted::Proc => synth::lookup(Which::Proc, p, v.ino, name)?,
        Mounted::Sys => synth::lookup(Which::Sys, p, v.ino, name)?,
    };
    let mut next = Vnode {
        mount: v.mount,
        ino,
    };
    while let Some(m) = p.fs.mounts.mounted_on(next) {
        next = p.fs.mounts.root_of(m);
    }
    Ok(next)
}

/// `..` of directory `v`, across mount points, never above `/`.
fn parent(p: &Process, mut v: Vnode) -> Result<Vnode, Errno> {
    loop {
        let root = p.fs.mounts.root_of(v.mount);
        if v != root {
            break;
        }
        match p.fs.mounts.get(v.mount).covers {
            None => return Ok(v),
            Some(covered) => v = covered,
        }
    }
    let ino = match &p.fs.mounts.get(v.mount).fs {
        Mounted::Fs(fs) => fs.parent(v.ino)?,
        Mounted::Proc => synth::parent(Which::Proc, p, v.ino)?,
        Mounted::Sys => synth::parent(Which::Sys, p, v.ino)?,
    };
    Ok(Vnode {
        mount: v.mount,
        ino,
    })
}

/// Text of the symlink `v` (readlink).
pub fn readlink(p: &Process, v: Vnode) -> Result<Vec<u8>, Errno> {
    match &p.fs.mounts.get(v.mount).fs {
        Mounted::Fs(fs) => fs.readlink(v.ino),
        Mounted::Proc => synth::link(Which::Proc, p, v.ino).map(|(text, _)| text),
        Mounted::Sys => synth::link(Which::Sys, p, v.ino).map(|(text, _)| text),
    }
}

/// Entries of directory `v` from the `start`-th (without `.` and `..`).
pub fn read_dir(
    p: &Process,
    v: Vnode,
    start: usize,
    each: &mut dyn FnMut(DirEntry) -> bool,
) -> Result<(), Errno> {
    match &p.fs.mounts.get(v.mount).fs {
        Mounted::Fs(fs) => fs.read_dir(v.ino, start, each),
        Mounted::Proc | Mounted::Sys => {
            let which = if matches!(p.fs.mounts.get(v.mount).fs, Mounted::Proc) {
                Which::Proc
            } else {
                Which::Sys
            };
            for e in synth::read_dir(which, p, v.ino)?.into_iter().skip(start) {
                if !each(e) {
                    break;
                }
            }
            Ok(())
        }
    }
}

/// The directory a relative path starts from: the cwd, or `dirfd`'s directory.
pub fn start_dir(
    p: &Process,
    platform: &dyn Platform,
    dirfd: i32,
    path: &[u8],
) -> Result<Vnode, Errno> {
    const AT_FDCWD: i32 = -100;
    if path.first() == Some(&b'/') {
        return Ok(p.fs.mounts.root_of(0));
    }
    if dirfd == AT_FDCWD {
        return Ok(p.fs.cwd);
    }
    let entry = p.fs.fds.get(dirfd)?;
    let v = entry.desc.file.vnode().ok_or(Errno::ENOTDIR)?;
    if metadata(p, platform, v)?.kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok(v)
}

/// Resolves `path` from `start`. `follow`: follow a symlink in the last component.
pub fn walk(
    p: &Process,
    platform: &dyn Platform,
    start: Vnode,
    path: &[u8],
    follow: bool,
) -> Result<Resolved, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let root = p.fs.mounts.root_of(0);
    let mut cur = if path[0] == b'/' { root } else { start };
    // Remaining components, last first (so a symlink's target can be pushed in front).
    let mut rest: Vec<Vec<u8>> = components(path);
    let mut must_be_dir = path.ends_with(b"/");
    let mut links = 0;
    while let Some(name) = rest.pop() {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if metadata(p, platform, cur)?.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        match name.as_slice() {
            b"." => continue,
            b".." => {
                cur = parent(p, cur)?;
                continue;
            }
            _ => {}
        }
        let next = lookup(p, cur, &name)?;
        let last = rest.is_empty();
        let kind = metadata(p, platform, next)?.kind;
        if kind == FileType::Symlink && (!last || follow || must_be_dir) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            let target = follow_link(p, next)?;
            match target {
                Link::Path(t) => {
                    if t.is_empty() {
                        return Err(Errno::ENOENT);
                    }
                    if t[0] == b'/' {
                        cur = root;
                    }
                    if t.ends_with(b"/") && last {
                        must_be_dir = true;
                    }
                    rest.extend(components(&t));
                }
                Link::Node(v) => cur = v,
                Link::Open(desc) => {
                    if last {
                        return Ok(Resolved::Open(desc));
                    }
                    return Err(Errno::ENOTDIR);
                }
            }
            continue;
        }
        cur = next;
    }
    if must_be_dir && metadata(p, platform, cur)?.kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok(Resolved::Node(cur))
}

enum Link {
    Path(Vec<u8>),
    Node(Vnode),
    Open(Arc<OpenFile>),
}

fn follow_link(p: &Process, v: Vnode) -> Result<Link, Errno> {
    let which = match &p.fs.mounts.get(v.mount).fs {
        Mounted::Fs(fs) => return fs.readlink(v.ino).map(Link::Path),
        Mounted::Proc => Which::Proc,
        Mounted::Sys => Which::Sys,
    };
    Ok(match synth::link(which, p, v.ino)?.1 {
        synth::Target::Path(t) => Link::Path(t),
        synth::Target::Cwd => Link::Node(p.fs.cwd),
        synth::Target::Fd(fd) => {
            let desc = p.fs.fds.get(fd)?.desc.clone();
            match desc.file.vnode() {
                Some(v) => Link::Node(v),
                None => Link::Open(desc),
            }
        }
    })
}

/// Path components in reverse order.
fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(<[u8]>::to_vec)
        .collect()
}

/// For calls that create or remove a name: the directory and the last component (`.` when
/// the path has none, as for "/"), and whether the path ended in `/`.
pub fn walk_parent(
    p: &Process,
    platform: &dyn Platform,
    start: Vnode,
    path: &[u8],
) -> Result<(Vnode, Vec<u8>, bool), Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let trailing = path.ends_with(b"/");
    let trimmed_end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    let trimmed = &path[..trimmed_end];
    let (dir_path, name): (&[u8], &[u8]) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => (if i == 0 { b"/" } else { &trimmed[..i] }, &trimmed[i + 1..]),
        None if trimmed.is_empty() => (b"/", b"."),
        None => (b".", trimmed),
    };
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let dir = match walk(p, platform, start, dir_path, true)? {
        Resolved::Node(v) => v,
        Resolved::Open(_) => return Err(Errno::ENOTDIR),
    };
    if metadata(p, platform, dir)?.kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok((dir, name.to_vec(), trailing))
}

/// The trait object and read-only flag of a trait-backed mount; `EPERM`/`EROFS` style
/// errors for the synthetic ones are the caller's (`Err(None)`).
pub fn fs_of(p: &Process, v: Vnode) -> Option<(&Arc<dyn Filesystem>, bool)> {
    let m = p.fs.mounts.get(v.mount);
    match &m.fs {
        Mounted::Fs(fs) => Some((fs, m.read_only)),
        _ => None,
    }
}

/// Like [`fs_of`], for a change: `EROFS` on a read-only or synthetic mount (procfs and
/// sysfs refuse changes as their Linux counterparts mostly do: `EACCES`/`EPERM` there is
/// reported as `EROFS`... except creating, which Linux reports as `ENOENT`/`EACCES`).
pub fn writable_fs(p: &Process, v: Vnode) -> Result<&Arc<dyn Filesystem>, Errno> {
    let m = p.fs.mounts.get(v.mount);
    match &m.fs {
        Mounted::Fs(fs) if !m.read_only => Ok(fs),
        Mounted::Fs(_) | Mounted::Sys => Err(Errno::EROFS),
        Mounted::Proc => Err(Errno::EACCES),
    }
}

/// Opens the inode `v` as a [`File`].
pub fn open_vnode(
    p: &Process,
    platform: &dyn Platform,
    v: Vnode,
    meta: &Metadata,
    path_only: bool,
) -> Result<Arc<dyn File>, Errno> {
    let m = p.fs.mounts.get(v.mount);
    let which = match &m.fs {
        Mounted::Fs(fs) => {
            if !path_only && matches!(meta.kind, FileType::CharDevice | FileType::BlockDevice) {
                if let Some(kind) = Device::kind_of(meta.rdev) {
                    return Ok(Arc::new(Device {
                        kind,
                        vnode: v,
                        meta: *meta,
                    }));
                }
                if matches!(meta.rdev, device::TTY | device::CONSOLE)
                    && meta.kind == FileType::CharDevice
                {
                    return Ok(Arc::new(Console {
                        stream: Stream::Out,
                        input: false,
                        ino: meta.ino,
                    }));
                }
                return Err(Errno::ENXIO);
            }
            if !path_only && matches!(meta.kind, FileType::Fifo | FileType::Socket) {
                return Err(Errno::ENXIO);
            }
            return Ok(Arc::new(VnodeFile::new(fs.clone(), v, m.read_only)));
        }
        Mounted::Proc => Which::Proc,
        Mounted::Sys => Which::Sys,
    };
    let (data, entries) = match meta.kind {
        FileType::Directory => (Vec::new(), synth::read_dir(which, p, v.ino)?),
        FileType::Regular if !path_only => (synth::content(which, p, platform, v.ino)?, Vec::new()),
        _ => (Vec::new(), Vec::new()),
    };
    let mut meta = *meta;
    if meta.kind == FileType::Regular {
        meta.size = 0; // as procfs reports
    }
    Ok(Arc::new(Snapshot {
        vnode: v,
        meta,
        data,
        entries,
    }))
}

/// The absolute path of directory `v`, by walking `..` and finding each name in its parent.
pub fn dir_path(p: &Process, v: Vnode) -> Result<String, Errno> {
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut cur = v;
    let root = p.fs.mounts.root_of(0);
    let mut guard = 0;
    while cur != root {
        guard += 1;
        if guard > PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        // At a mount root the name lives in the covered directory's parent.
        let mut named = cur;
        while named == p.fs.mounts.root_of(named.mount) {
            match p.fs.mounts.get(named.mount).covers {
                Some(c) => named = c,
                None => break,
            }
        }
        let up = parent(p, cur)?;
        let mut found = None;
        read_dir(p, up, 0, &mut |e| {
            let hit = Vnode {
                mount: up.mount,
                ino: e.ino,
            } == named;
            if hit {
                found = Some(e.name);
            }
            !hit
        })?;
        names.push(found.ok_or(Errno::ENOENT)?);
        cur = up;
    }
    let mut s = String::new();
    for n in names.iter().rev() {
        s.push('/');
        s.push_str(&String::from_utf8_lossy(n));
    }
    if s.is_empty() {
        s.push('/');
    }
    Ok(s)
}

/// `base` joined with `path`, `.`/`..` removed lexically (for /proc/self/fd's display).
pub fn join_lexically(base: &str, path: &[u8]) -> String {
    let mut parts: Vec<&[u8]> = Vec::new();
    let full: Vec<u8> = if path.first() == Some(&b'/') {
        path.to_vec()
    } else {
        let mut v = base.as_bytes().to_vec();
        v.push(b'/');
        v.extend_from_slice(path);
        v
    };
    for c in full.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = String::new();
    for part in parts {
        s.push('/');
        s.push_str(&String::from_utf8_lossy(part));
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

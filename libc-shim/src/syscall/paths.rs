//! Path syscalls: open and friends, stat/statx, access, mkdir/mknod, unlink/rmdir, rename,
//! link/symlink/readlink, truncate, chdir/getcwd, umask, chmod/chown, utimensat, statfs.
//!
//! Paths are resolved by [`crate::fs::vfs`]; this module applies each call's rules (flags,
//! what may exist, errno) and updates timestamps.

use alloc::string::String;
use alloc::vec::Vec;

use super::Ctx;
use super::args::{Fd, UserCStr, UserPtr};
use super::files::{desc, dev_of, install, stat_file, to_stat, touch};
use super::linux::{OpenHow, Stat, Statfs, Statx, Timespec, TimevalIn};
use crate::errno::Errno;
use crate::fd::{OpenFile, StatusFlags};
use crate::fs::mount::Vnode;
use crate::fs::vfs::{self, Resolved};
use crate::fs::{FileType, Filesystem, Metadata, NewNode, Owner, RenameFlags, SetAttr, Timestamp};
use crate::platform::Platform;

const AT_FDCWD: Fd = Fd::AT_FDCWD;
const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
const AT_REMOVEDIR: u32 = 0x200;
const AT_SYMLINK_FOLLOW: u32 = 0x400;
const AT_NO_AUTOMOUNT: u32 = 0x800;
const AT_EMPTY_PATH: u32 = 0x1000;
const AT_STATX_SYNC_TYPE: u32 = 0x6000;
const AT_EACCESS: u32 = 0x200;

const O_ACCMODE: u32 = 3;
const O_CREAT: u32 = 0o100;
const O_EXCL: u32 = 0o200;
const O_NOCTTY: u32 = 0o400;
const O_TRUNC: u32 = 0o1000;
const O_DIRECTORY: u32 = 0o200000;
const O_NOFOLLOW: u32 = 0o400000;
const O_CLOEXEC: u32 = 0o2000000;
const O_PATH: u32 = 0o10000000;
const O_TMPFILE: u32 = 0o20000000 | O_DIRECTORY;
/// Every flag open knows (Linux ignores unknown bits in open/openat, not in openat2).
const O_ALL: u32 = 0o37777777;

fn now<P: Platform>(ctx: &Ctx<'_, P>) -> Timestamp {
    Timestamp::from_ns(ctx.platform.realtime_ns())
}

fn stamp(fs: &dyn Filesystem, ino: u64, t: Timestamp, data: bool) {
    let attr = SetAttr {
        mtime: data.then_some(t),
        ctime: Some(t),
        atime: None,
        ..Default::default()
    };
    let _ = fs.set_attr(ino, &attr);
}

/// A node was just created in `dir`: all its times are now, and the directory changed.
fn stamp_created(fs: &dyn Filesystem, ino: u64, dir: u64, t: Timestamp) {
    let all = SetAttr { atime: Some(t), mtime: Some(t), ctime: Some(t), ..Default::default() };
    let _ = fs.set_attr(ino, &all);
    stamp(fs, dir, t, true);
}

fn start<P: Platform>(ctx: &Ctx<'_, P>, dirfd: Fd, path: &[u8]) -> Result<Vnode, Errno> {
    vfs::start_dir(ctx.process, ctx.platform, dirfd.0, path)
}

/// Resolves `path` relative to `dirfd`; an empty path with `AT_EMPTY_PATH` names `dirfd`.
fn resolve<P: Platform>(
    ctx: &Ctx<'_, P>,
    dirfd: Fd,
    path: &[u8],
    follow: bool,
    empty_ok: bool,
) -> Result<Resolved, Errno> {
    if path.is_empty() {
        if !empty_ok {
            return Err(Errno::ENOENT);
        }
        if dirfd == AT_FDCWD {
            return Ok(Resolved::Node(ctx.process.fs.cwd));
        }
        let d = desc(ctx, dirfd)?;
        return Ok(match d.file.vnode() {
            Some(v) => Resolved::Node(v),
            None => Resolved::Open(d),
        });
    }
    let s = start(ctx, dirfd, path)?;
    vfs::walk(ctx.process, ctx.platform, s, path, follow)
}

fn node_meta<P: Platform>(ctx: &Ctx<'_, P>, v: Vnode) -> Result<Metadata, Errno> {
    vfs::metadata(ctx.process, ctx.platform, v)
}

fn parent_of<P: Platform>(
    ctx: &Ctx<'_, P>,
    dirfd: Fd,
    path: &[u8],
) -> Result<(Vnode, Vec<u8>, bool), Errno> {
    let s = start(ctx, dirfd, path)?;
    vfs::walk_parent(ctx.process, ctx.platform, s, path)
}

fn owner<P: Platform>(ctx: &Ctx<'_, P>, mode: u32) -> Owner {
    Owner {
        perm: mode & 0o7777 & !ctx.process.umask,
        uid: 0,
        gid: 0,
    }
}

/// The display path of a new description opened at `path` from `dirfd`.
fn display_path<P: Platform>(ctx: &Ctx<'_, P>, dirfd: Fd, path: &[u8]) -> String {
    let base = if path.first() == Some(&b'/') || dirfd == AT_FDCWD {
        ctx.process.fs.cwd_path.clone()
    } else {
        ctx.process
            .fs
            .fds
            .get(dirfd.0)
            .ok()
            .and_then(|e| e.desc.path.clone())
            .unwrap_or_else(|| String::from("/"))
    };
    vfs::join_lexically(&base, path)
}

pub(crate) fn do_open<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: &[u8],
    flags: u32,
    mode: u32,
) -> Result<usize, Errno> {
    let acc = flags & O_ACCMODE;
    if acc == O_ACCMODE {
        return Err(Errno::EINVAL);
    }
    let path_only = flags & O_PATH != 0;
    let flags = if path_only {
        flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    } else {
        flags
    };
    let writing = !path_only && acc != 0;
    let display = display_path(ctx, dirfd, path);
    let target: Resolved;
    if flags & O_TMPFILE == O_TMPFILE {
        if !writing {
            return Err(Errno::EINVAL);
        }
        let dir = match resolve(ctx, dirfd, path, true, false)? {
            Resolved::Node(v) => v,
            Resolved::Open(_) => return Err(Errno::ENOTDIR),
        };
        if node_meta(ctx, dir)?.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let fs = vfs::writable_fs(ctx.process, dir)?.clone();
        if fs.type_name() != "tmpfs" {
            return Err(Errno::EOPNOTSUPP);
        }
        let name = alloc::format!(".tmpfile-{}", crate::fd::wait::new_key());
        let ino = fs.create(dir.ino, name.as_bytes(), NewNode::Regular, owner(ctx, mode))?;
        stamp(&*fs, ino, now(ctx), true);
        let file = alloc::sync::Arc::new(crate::fd::vnode_file::VnodeFile::new(
            fs.clone(),
            Vnode {
                mount: dir.mount,
                ino,
            },
            false,
        ));
        fs.unlink(dir.ino, name.as_bytes())?;
        let sflags = StatusFlags::from_bits_truncate(flags & !(O_TMPFILE | O_CLOEXEC))
            - StatusFlags::DIRECTORY;
        let d = OpenFile::new(
            file,
            sflags,
            Some(alloc::format!("{display}/#{ino} (deleted)")),
        );
        return install(ctx, d, flags & O_CLOEXEC != 0);
    }
    if flags & O_CREAT != 0 && !path_only {
        let (dir, name, trailing) = parent_of(ctx, dirfd, path)?;
        if name == b"." || name == b".." || trailing {
            return Err(Errno::EISDIR);
        }
        let follow = flags & (O_NOFOLLOW | O_EXCL) == 0;
        match vfs::walk(ctx.process, ctx.platform, dir, &name, follow) {
            Ok(r) => {
                if flags & O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                target = r;
            }
            Err(Errno::ENOENT) => {
                let fs = vfs::writable_fs(ctx.process, dir)?.clone();
                let ino = fs.create(dir.ino, &name, NewNode::Regular, owner(ctx, mode))?;
                let t = now(ctx);
                stamp(&*fs, ino, t, true);
                let _ = fs.set_attr(
                    ino,
                    &SetAttr {
                        atime: Some(t),
                        ..Default::default()
                    },
                );
                stamp(&*fs, dir.ino, t, true);
                target = Resolved::Node(Vnode {
                    mount: dir.mount,
                    ino,
                });
            }
            Err(e) => return Err(e),
        }
    } else {
        target = resolve(ctx, dirfd, path, flags & O_NOFOLLOW == 0, false)?;
    }
    let sflags = StatusFlags::from_bits_truncate(
        flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC),
    ) - StatusFlags::DIRECTORY
        - StatusFlags::NOFOLLOW;
    let cloexec = flags & O_CLOEXEC != 0;
    let v = match target {
        Resolved::Open(d) => {
            if flags & O_DIRECTORY != 0 {
                return Err(Errno::ENOTDIR);
            }
            let new = OpenFile::new(d.file.clone(), sflags, d.path.clone());
            return install(ctx, new, cloexec);
        }
        Resolved::Node(v) => v,
    };
    let meta = node_meta(ctx, v)?;
    if meta.kind == FileType::Symlink && !path_only {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && meta.kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    if meta.kind == FileType::Directory && (writing || (flags & O_CREAT != 0 && !path_only)) {
        return Err(Errno::EISDIR);
    }
    if writing && matches!(meta.kind, FileType::Regular | FileType::Directory) {
        let m = ctx.process.fs.mounts.get(v.mount);
        match m.fs {
            crate::fs::mount::Mounted::Fs(_) if m.read_only => return Err(Errno::EROFS),
            crate::fs::mount::Mounted::Fs(_) => {}
            _ => return Err(Errno::EACCES),
        }
    }
    let file = vfs::open_vnode(ctx.process, ctx.platform, v, &meta, path_only)?;
    if flags & O_TRUNC != 0 && writing && meta.kind == FileType::Regular && meta.size != 0 {
        file.set_len(0)?;
        touch(ctx, &*file);
    }
    install(ctx, OpenFile::new(file, sflags, Some(display)), cloexec)
}

pub fn sys_open<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    flags: u32,
    mode: u32,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    do_open(ctx, AT_FDCWD, &path, flags & O_ALL, mode)
}

pub fn sys_openat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    flags: u32,
    mode: u32,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    do_open(ctx, dirfd, &path, flags & O_ALL, mode)
}

pub fn sys_creat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    mode: u32,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    do_open(ctx, AT_FDCWD, &path, O_CREAT | 1 | O_TRUNC, mode)
}

const RESOLVE_NO_XDEV: u64 = 1;
const RESOLVE_NO_MAGICLINKS: u64 = 2;
const RESOLVE_NO_SYMLINKS: u64 = 4;
const RESOLVE_BENEATH: u64 = 8;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_CACHED: u64 = 0x20;

pub fn sys_openat2<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    how: UserPtr<OpenHow>,
    size: usize,
) -> Result<usize, Errno> {
    if size < 24 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let h = ctx.read(how)?;
    if size > 24 {
        let mut extra = alloc::vec![0u8; size - 24];
        ctx.read_bytes(how.addr() + 24, &mut extra)?;
        if extra.iter().any(|&b| b != 0) {
            return Err(Errno::E2BIG);
        }
    }
    let known = RESOLVE_NO_XDEV
        | RESOLVE_NO_MAGICLINKS
        | RESOLVE_NO_SYMLINKS
        | RESOLVE_BENEATH
        | RESOLVE_IN_ROOT
        | RESOLVE_CACHED;
    if h.flags & !u64::from(O_ALL) != 0 || h.resolve & !known != 0 || h.mode & !0o7777 != 0 {
        return Err(Errno::EINVAL);
    }
    if h.mode != 0 && h.flags as u32 & (O_CREAT | O_TMPFILE) == 0 {
        return Err(Errno::EINVAL);
    }
    if h.resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS)
        != 0
    {
        ctx.warn_once(
            "openat2-resolve",
            format_args!(
                "openat2: RESOLVE_BENEATH/IN_ROOT/NO_XDEV/NO_MAGICLINKS are not supported: EINVAL"
            ),
        );
        return Err(Errno::EINVAL);
    }
    if h.resolve & RESOLVE_CACHED != 0 {
        return Err(Errno::EAGAIN);
    }
    let path = ctx.read_path(path)?;
    let mut flags = h.flags as u32;
    if h.resolve & RESOLVE_NO_SYMLINKS != 0 {
        // Any symlink on the way is ELOOP: check every prefix.
        let s = start(ctx, dirfd, &path)?;
        let mut prefix = Vec::new();
        for (i, c) in path.split(|&b| b == b'/').enumerate() {
            if i > 0 {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(c);
            if c.is_empty() || c == b"." || c == b".." {
                continue;
            }
            match vfs::walk(ctx.process, ctx.platform, s, &prefix, false) {
                Ok(Resolved::Node(v)) if node_meta(ctx, v)?.kind == FileType::Symlink => {
                    return Err(Errno::ELOOP);
                }
                _ => {}
            }
        }
        flags |= O_NOFOLLOW;
    }
    do_open(ctx, dirfd, &path, flags, h.mode as u32)
}

fn stat_resolved<P: Platform>(ctx: &Ctx<'_, P>, r: &Resolved) -> Result<Stat, Errno> {
    match r {
        Resolved::Node(v) => Ok(to_stat(&node_meta(ctx, *v)?, dev_of(v.mount))),
        Resolved::Open(d) => stat_file(ctx, &*d.file),
    }
}

fn fstatat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    statbuf: UserPtr<Stat>,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.read_path(path)?;
    let r = resolve(
        ctx,
        dirfd,
        &path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    let st = stat_resolved(ctx, &r)?;
    ctx.write(statbuf, &st)?;
    Ok(0)
}

pub fn sys_stat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    statbuf: UserPtr<Stat>,
) -> Result<usize, Errno> {
    fstatat(ctx, AT_FDCWD, path, statbuf, 0)
}

pub fn sys_lstat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    statbuf: UserPtr<Stat>,
) -> Result<usize, Errno> {
    fstatat(ctx, AT_FDCWD, path, statbuf, AT_SYMLINK_NOFOLLOW)
}

pub fn sys_newfstatat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    statbuf: UserPtr<Stat>,
    flags: u32,
) -> Result<usize, Errno> {
    fstatat(ctx, dirfd, path, statbuf, flags)
}

const STATX_BASIC_STATS: u32 = 0x7ff;
const STATX_MNT_ID: u32 = 0x1000;

pub fn sys_statx<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    flags: u32,
    mask: u32,
    buf: UserPtr<Statx>,
) -> Result<usize, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & 0x8000_0000 != 0
    {
        return Err(Errno::EINVAL);
    }
    let path = ctx.read_path(path)?;
    let r = resolve(
        ctx,
        dirfd,
        &path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    let st = stat_resolved(ctx, &r)?;
    let mount = match &r {
        Resolved::Node(v) => v.mount as u64,
        Resolved::Open(d) => d.file.vnode().map_or(0, |v| v.mount as u64),
    };
    let split = |d: u64| {
        (
            ((d >> 8) & 0xfff) as u32,
            ((d & 0xff) | ((d >> 12) & !0xff)) as u32,
        )
    };
    let x = Statx {
        mask: STATX_BASIC_STATS | STATX_MNT_ID,
        blksize: st.blksize as u32,
        nlink: st.nlink as u32,
        uid: st.uid,
        gid: st.gid,
        mode: st.mode as u16,
        ino: st.ino,
        size: st.size as u64,
        blocks: st.blocks as u64,
        atime: st.atime,
        btime: Timespec::default(),
        ctime: st.ctime,
        mtime: st.mtime,
        rdev: split(st.rdev),
        dev: split(st.dev),
        mnt_id: mount + 1,
    };
    ctx.write(buf, &x)?;
    Ok(0)
}

const F_OK: u32 = 0;
const X_OK: u32 = 1;
const W_OK: u32 = 2;
const R_OK: u32 = 4;

fn access<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    mode: u32,
    flags: u32,
) -> Result<usize, Errno> {
    if mode & !(F_OK | X_OK | W_OK | R_OK) != 0
        || flags & !(AT_SYMLINK_NOFOLLOW | AT_EACCESS | AT_EMPTY_PATH) != 0
    {
        return Err(Errno::EINVAL);
    }
    let path = ctx.read_path(path)?;
    let r = resolve(
        ctx,
        dirfd,
        &path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    let Resolved::Node(v) = r else { return Ok(0) };
    let m = node_meta(ctx, v)?;
    // Root may read and write anything; executing needs some execute bit (or a directory).
    if mode & X_OK != 0 && m.kind != FileType::Directory && m.perm & 0o111 == 0 {
        return Err(Errno::EACCES);
    }
    if mode & W_OK != 0 {
        let mt = ctx.process.fs.mounts.get(v.mount);
        match mt.fs {
            crate::fs::mount::Mounted::Fs(_) if mt.read_only => return Err(Errno::EROFS),
            crate::fs::mount::Mounted::Fs(_) => {}
            _ if m.kind == FileType::Directory => return Err(Errno::EACCES),
            _ => return Err(Errno::EACCES),
        }
    }
    Ok(0)
}

pub fn sys_access<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    mode: u32,
) -> Result<usize, Errno> {
    access(ctx, AT_FDCWD, path, mode, 0)
}

pub fn sys_faccessat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    mode: u32,
) -> Result<usize, Errno> {
    access(ctx, dirfd, path, mode, 0)
}

pub fn sys_faccessat2<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    mode: u32,
    flags: u32,
) -> Result<usize, Errno> {
    access(ctx, dirfd, path, mode, flags)
}

fn make_node<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: &[u8],
    node: NewNode<'_>,
    mode: u32,
) -> Result<usize, Errno> {
    let (dir, name, trailing) = parent_of(ctx, dirfd, path)?;
    if name == b"." || name == b".." {
        return Err(Errno::EEXIST);
    }
    if trailing && node != NewNode::Directory {
        // "file/" names a directory that would not be one.
        return match vfs::walk(ctx.process, ctx.platform, dir, &name, false) {
            Ok(_) => Err(Errno::EEXIST),
            Err(_) => Err(Errno::ENOENT),
        };
    }
    if vfs::walk(ctx.process, ctx.platform, dir, &name, false).is_ok() {
        return Err(Errno::EEXIST);
    }
    let fs = vfs::writable_fs(ctx.process, dir)?.clone();
    let ino = fs.create(dir.ino, &name, node, owner(ctx, mode))?;
    stamp_created(&*fs, ino, dir.ino, now(ctx));
    Ok(0)
}

pub fn sys_mkdir<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    mode: u32,
) -> Result<usize, Errno> {
    sys_mkdirat(ctx, AT_FDCWD, path, mode)
}

pub fn sys_mkdirat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    mode: u32,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    make_node(ctx, dirfd, &path, NewNode::Directory, mode)
}

pub fn sys_mknod<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    mode: u32,
    dev: u64,
) -> Result<usize, Errno> {
    sys_mknodat(ctx, AT_FDCWD, path, mode, dev)
}

pub fn sys_mknodat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    mode: u32,
    dev: u64,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    let node = match FileType::from_mode(mode) {
        None if mode & 0o170000 == 0 => NewNode::Regular,
        Some(FileType::Regular) => NewNode::Regular,
        Some(
            k @ (FileType::CharDevice | FileType::BlockDevice | FileType::Fifo | FileType::Socket),
        ) => NewNode::Special { kind: k, rdev: dev },
        Some(FileType::Directory) => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    make_node(ctx, dirfd, &path, node, mode)
}

fn remove<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: &[u8],
    dir_wanted: bool,
) -> Result<usize, Errno> {
    let (dir, name, trailing) = parent_of(ctx, dirfd, path)?;
    if dir_wanted {
        match name.as_slice() {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
    } else if name == b"." || name == b".." {
        return Err(Errno::EISDIR);
    }
    let target = match vfs::walk(ctx.process, ctx.platform, dir, &name, false)? {
        Resolved::Node(v) => v,
        Resolved::Open(_) => return Err(Errno::EPERM),
    };
    if target.mount != dir.mount {
        return Err(Errno::EBUSY);
    }
    let kind = node_meta(ctx, target)?.kind;
    if trailing && kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let fs = vfs::writable_fs(ctx.process, dir)?.clone();
    if dir_wanted {
        if kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if target == ctx.process.fs.mounts.root_of(target.mount) {
            return Err(Errno::EBUSY);
        }
        fs.rmdir(dir.ino, &name)?;
    } else {
        if kind == FileType::Directory {
            return Err(Errno::EISDIR);
        }
        fs.unlink(dir.ino, &name)?;
        stamp(&*fs, target.ino, now(ctx), false);
    }
    stamp(&*fs, dir.ino, now(ctx), true);
    Ok(0)
}

pub fn sys_rmdir<P: Platform>(ctx: &mut Ctx<'_, P>, path: UserCStr) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    remove(ctx, AT_FDCWD, &path, true)
}

pub fn sys_unlink<P: Platform>(ctx: &mut Ctx<'_, P>, path: UserCStr) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    remove(ctx, AT_FDCWD, &path, false)
}

pub fn sys_unlinkat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.read_path(path)?;
    remove(ctx, dirfd, &path, flags & AT_REMOVEDIR != 0)
}

fn rename<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    olddir: Fd,
    old: UserCStr,
    newdir: Fd,
    new: UserCStr,
    flags: u32,
) -> Result<usize, Errno> {
    const NOREPLACE: u32 = 1;
    const EXCHANGE: u32 = 2;
    const WHITEOUT: u32 = 4;
    if flags & !(NOREPLACE | EXCHANGE | WHITEOUT) != 0
        || flags & (NOREPLACE | EXCHANGE) == (NOREPLACE | EXCHANGE)
    {
        return Err(Errno::EINVAL);
    }
    if flags & WHITEOUT != 0 {
        return Err(Errno::EINVAL);
    }
    let old = ctx.read_path(old)?;
    let new = ctx.read_path(new)?;
    let (od, oname, otrail) = parent_of(ctx, olddir, &old)?;
    let (nd, nname, ntrail) = parent_of(ctx, newdir, &new)?;
    for n in [&oname, &nname] {
        if n.as_slice() == b"." || n.as_slice() == b".." {
            return Err(Errno::EBUSY);
        }
    }
    let src = match vfs::walk(ctx.process, ctx.platform, od, &oname, false)? {
        Resolved::Node(v) => v,
        Resolved::Open(_) => return Err(Errno::EXDEV),
    };
    let src_kind = node_meta(ctx, src)?.kind;
    if (otrail || ntrail) && src_kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    if od.mount != nd.mount || src.mount != od.mount {
        return Err(Errno::EXDEV);
    }
    if let Ok(Resolved::Node(dst)) = vfs::walk(ctx.process, ctx.platform, nd, &nname, false)
        && dst.mount != nd.mount
    {
        return Err(Errno::EBUSY);
    }
    let fs = vfs::writable_fs(ctx.process, od)?.clone();
    fs.rename(
        od.ino,
        &oname,
        nd.ino,
        &nname,
        RenameFlags::from_bits_truncate(flags),
    )?;
    let t = now(ctx);
    stamp(&*fs, src.ino, t, false);
    stamp(&*fs, od.ino, t, true);
    stamp(&*fs, nd.ino, t, true);
    Ok(0)
}

pub fn sys_rename<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    old: UserCStr,
    new: UserCStr,
) -> Result<usize, Errno> {
    rename(ctx, AT_FDCWD, old, AT_FDCWD, new, 0)
}

pub fn sys_renameat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    olddir: Fd,
    old: UserCStr,
    newdir: Fd,
    new: UserCStr,
) -> Result<usize, Errno> {
    rename(ctx, olddir, old, newdir, new, 0)
}

pub fn sys_renameat2<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    olddir: Fd,
    old: UserCStr,
    newdir: Fd,
    new: UserCStr,
    flags: u32,
) -> Result<usize, Errno> {
    rename(ctx, olddir, old, newdir, new, flags)
}

fn link<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    olddir: Fd,
    old: UserCStr,
    newdir: Fd,
    new: UserCStr,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = ctx.read_path(old)?;
    let new = ctx.read_path(new)?;
    let src = match resolve(
        ctx,
        olddir,
        &old,
        flags & AT_SYMLINK_FOLLOW != 0,
        flags & AT_EMPTY_PATH != 0,
    )? {
        Resolved::Node(v) => v,
        Resolved::Open(_) => return Err(Errno::EXDEV),
    };
    if node_meta(ctx, src)?.kind == FileType::Directory {
        return Err(Errno::EPERM);
    }
    let (nd, nname, trailing) = parent_of(ctx, newdir, &new)?;
    if nname == b"."
        || nname == b".."
        || vfs::walk(ctx.process, ctx.platform, nd, &nname, false).is_ok()
    {
        return Err(Errno::EEXIST);
    }
    if trailing {
        return Err(Errno::ENOENT);
    }
    if nd.mount != src.mount {
        return Err(Errno::EXDEV);
    }
    let fs = vfs::writable_fs(ctx.process, nd)?.clone();
    fs.link(src.ino, nd.ino, &nname)?;
    let t = now(ctx);
    stamp(&*fs, src.ino, t, false);
    stamp(&*fs, nd.ino, t, true);
    Ok(0)
}

pub fn sys_link<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    old: UserCStr,
    new: UserCStr,
) -> Result<usize, Errno> {
    link(ctx, AT_FDCWD, old, AT_FDCWD, new, 0)
}

pub fn sys_linkat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    olddir: Fd,
    old: UserCStr,
    newdir: Fd,
    new: UserCStr,
    flags: u32,
) -> Result<usize, Errno> {
    link(ctx, olddir, old, newdir, new, flags)
}

fn symlink<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    target: UserCStr,
    dirfd: Fd,
    path: UserCStr,
) -> Result<usize, Errno> {
    let target = ctx.read_path(target)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = ctx.read_path(path)?;
    let (dir, name, trailing) = parent_of(ctx, dirfd, &path)?;
    if name == b"."
        || name == b".."
        || vfs::walk(ctx.process, ctx.platform, dir, &name, false).is_ok()
    {
        return Err(Errno::EEXIST);
    }
    if trailing {
        return Err(Errno::ENOENT);
    }
    let fs = vfs::writable_fs(ctx.process, dir)?.clone();
    let ino = fs.create(
        dir.ino,
        &name,
        NewNode::Symlink { target: &target },
        Owner {
            perm: 0o777,
            uid: 0,
            gid: 0,
        },
    )?;
    stamp_created(&*fs, ino, dir.ino, now(ctx));
    Ok(0)
}

pub fn sys_symlink<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    target: UserCStr,
    path: UserCStr,
) -> Result<usize, Errno> {
    symlink(ctx, target, AT_FDCWD, path)
}

pub fn sys_symlinkat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    target: UserCStr,
    dirfd: Fd,
    path: UserCStr,
) -> Result<usize, Errno> {
    symlink(ctx, target, dirfd, path)
}

fn readlink<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    buf: UserPtr<u8>,
    size: i32,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let r = resolve(ctx, dirfd, &path, false, true)?;
    let Resolved::Node(v) = r else {
        return Err(Errno::EINVAL);
    };
    if node_meta(ctx, v)?.kind != FileType::Symlink {
        return Err(Errno::EINVAL);
    }
    let target = vfs::readlink(ctx.process, v)?;
    let n = target.len().min(size as usize);
    ctx.write_bytes(buf.addr(), &target[..n])?;
    Ok(n)
}

pub fn sys_readlink<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    buf: UserPtr<u8>,
    size: i32,
) -> Result<usize, Errno> {
    readlink(ctx, AT_FDCWD, path, buf, size)
}

pub fn sys_readlinkat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    buf: UserPtr<u8>,
    size: i32,
) -> Result<usize, Errno> {
    readlink(ctx, dirfd, path, buf, size)
}

pub fn sys_truncate<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    len: i64,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    let len = u64::try_from(len).map_err(|_| Errno::EINVAL)?;
    let Resolved::Node(v) = resolve(ctx, AT_FDCWD, &path, true, false)? else {
        return Err(Errno::EINVAL);
    };
    match node_meta(ctx, v)?.kind {
        FileType::Regular => {}
        FileType::Directory => return Err(Errno::EISDIR),
        _ => return Err(Errno::EINVAL),
    }
    let fs = vfs::writable_fs(ctx.process, v)?.clone();
    fs.set_len(v.ino, len)?;
    stamp(&*fs, v.ino, now(ctx), true);
    Ok(0)
}

fn set_cwd<P: Platform>(ctx: &mut Ctx<'_, P>, v: Vnode) -> Result<usize, Errno> {
    if node_meta(ctx, v)?.kind != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let path = vfs::dir_path(ctx.process, v)?;
    ctx.process.fs.cwd = v;
    ctx.process.fs.cwd_path = path;
    Ok(0)
}

pub fn sys_chdir<P: Platform>(ctx: &mut Ctx<'_, P>, path: UserCStr) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    match resolve(ctx, AT_FDCWD, &path, true, false)? {
        Resolved::Node(v) => set_cwd(ctx, v),
        Resolved::Open(_) => Err(Errno::ENOTDIR),
    }
}

pub fn sys_fchdir<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    let v = d.file.vnode().ok_or(Errno::ENOTDIR)?;
    set_cwd(ctx, v)
}

pub fn sys_getcwd<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    buf: UserPtr<u8>,
    size: usize,
) -> Result<usize, Errno> {
    // The cwd may have been removed (Linux then answers "(unreachable)..." or ENOENT).
    node_meta(ctx, ctx.process.fs.cwd).map_err(|_| Errno::ENOENT)?;
    let mut cwd = ctx.process.fs.cwd_path.clone().into_bytes();
    cwd.push(0);
    if size < cwd.len() {
        return Err(Errno::ERANGE);
    }
    ctx.write_bytes(buf.addr(), &cwd)?;
    Ok(cwd.len())
}

pub fn sys_umask<P: Platform>(ctx: &mut Ctx<'_, P>, mask: u32) -> Result<usize, Errno> {
    let old = ctx.process.umask;
    ctx.process.umask = mask & 0o777;
    Ok(old as usize)
}

/// Applies `attr` to what `r` names (a path or an open file).
fn set_attr_on<P: Platform>(
    ctx: &Ctx<'_, P>,
    r: Resolved,
    mut attr: SetAttr,
) -> Result<usize, Errno> {
    attr.ctime = Some(now(ctx));
    let v = match r {
        Resolved::Node(v) => v,
        // Pipes, the console, eventfds: Linux changes their anonymous inode; nothing is kept.
        Resolved::Open(_) => return Ok(0),
    };
    if let Ok(fs) = vfs::writable_fs(ctx.process, v) {
        return fs.set_attr(v.ino, &attr).map(|_| 0);
    }
    // Times on a read-only mount: EROFS; procfs: EPERM as Linux.
    match ctx.process.fs.mounts.get(v.mount).fs {
        crate::fs::mount::Mounted::Proc => Err(Errno::EPERM),
        _ => Err(Errno::EROFS),
    }
}

fn fd_target<P: Platform>(ctx: &Ctx<'_, P>, fd: Fd) -> Result<Resolved, Errno> {
    let d = desc(ctx, fd)?;
    Ok(match d.file.vnode() {
        Some(v) => Resolved::Node(v),
        None => Resolved::Open(d),
    })
}

pub fn sys_chmod<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    mode: u32,
) -> Result<usize, Errno> {
    sys_fchmodat(ctx, AT_FDCWD, path, mode)
}

pub fn sys_fchmod<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, mode: u32) -> Result<usize, Errno> {
    let r = fd_target(ctx, fd)?;
    set_attr_on(
        ctx,
        r,
        SetAttr {
            perm: Some(mode & 0o7777),
            ..Default::default()
        },
    )
}

pub fn sys_fchmodat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    mode: u32,
) -> Result<usize, Errno> {
    let path = ctx.read_path(path)?;
    let r = resolve(ctx, dirfd, &path, true, false)?;
    set_attr_on(
        ctx,
        r,
        SetAttr {
            perm: Some(mode & 0o7777),
            ..Default::default()
        },
    )
}

fn chown_attr(uid: u32, gid: u32) -> SetAttr {
    SetAttr {
        uid: (uid != u32::MAX).then_some(uid),
        gid: (gid != u32::MAX).then_some(gid),
        ..Default::default()
    }
}

pub fn sys_chown<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    uid: u32,
    gid: u32,
) -> Result<usize, Errno> {
    sys_fchownat(ctx, AT_FDCWD, path, uid, gid, 0)
}

pub fn sys_lchown<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    uid: u32,
    gid: u32,
) -> Result<usize, Errno> {
    sys_fchownat(ctx, AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW)
}

pub fn sys_fchown<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    uid: u32,
    gid: u32,
) -> Result<usize, Errno> {
    let r = fd_target(ctx, fd)?;
    set_attr_on(ctx, r, chown_attr(uid, gid))
}

pub fn sys_fchownat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    uid: u32,
    gid: u32,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = ctx.read_path(path)?;
    let r = resolve(
        ctx,
        dirfd,
        &path,
        flags & AT_SYMLINK_NOFOLLOW == 0,
        flags & AT_EMPTY_PATH != 0,
    )?;
    set_attr_on(ctx, r, chown_attr(uid, gid))
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

fn time_arg(t: Timespec, now: Timestamp) -> Result<Option<Timestamp>, Errno> {
    match t.nsec {
        UTIME_OMIT => Ok(None),
        UTIME_NOW => Ok(Some(now)),
        n if (0..1_000_000_000).contains(&n) => Ok(Some(Timestamp {
            sec: t.sec,
            nsec: n as u32,
        })),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sys_utimensat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    times: UserPtr<Timespec>,
    flags: u32,
) -> Result<usize, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let t = now(ctx);
    let (atime, mtime) = if times.is_null() {
        (Some(t), Some(t))
    } else {
        let v = ctx.read_array(times, 2)?;
        (time_arg(v[0], t)?, time_arg(v[1], t)?)
    };
    // A NULL path (futimens) names dirfd itself.
    let r = if path.is_null() {
        fd_target(ctx, dirfd)?
    } else {
        let p = ctx.read_path(path)?;
        resolve(
            ctx,
            dirfd,
            &p,
            flags & AT_SYMLINK_NOFOLLOW == 0,
            flags & AT_EMPTY_PATH != 0,
        )?
    };
    if atime.is_none() && mtime.is_none() {
        return Ok(0);
    }
    set_attr_on(
        ctx,
        r,
        SetAttr {
            atime,
            mtime,
            ..Default::default()
        },
    )
}

fn timevals<P: Platform>(
    ctx: &Ctx<'_, P>,
    times: UserPtr<TimevalIn>,
) -> Result<(Option<Timestamp>, Option<Timestamp>), Errno> {
    let t = now(ctx);
    if times.is_null() {
        return Ok((Some(t), Some(t)));
    }
    let v = ctx.read_array(times, 2)?;
    let conv = |x: TimevalIn| {
        if !(0..1_000_000).contains(&x.usec) {
            return Err(Errno::EINVAL);
        }
        Ok(Some(Timestamp {
            sec: x.sec,
            nsec: (x.usec * 1000) as u32,
        }))
    };
    Ok((conv(v[0])?, conv(v[1])?))
}

pub fn sys_futimesat<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    dirfd: Fd,
    path: UserCStr,
    times: UserPtr<TimevalIn>,
) -> Result<usize, Errno> {
    let (atime, mtime) = timevals(ctx, times)?;
    let r = if path.is_null() {
        fd_target(ctx, dirfd)?
    } else {
        let p = ctx.read_path(path)?;
        resolve(ctx, dirfd, &p, true, false)?
    };
    set_attr_on(
        ctx,
        r,
        SetAttr {
            atime,
            mtime,
            ..Default::default()
        },
    )
}

pub fn sys_utimes<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    times: UserPtr<TimevalIn>,
) -> Result<usize, Errno> {
    sys_futimesat(ctx, AT_FDCWD, path, times)
}

pub fn sys_utime<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    times: UserPtr<i64>,
) -> Result<usize, Errno> {
    let t = now(ctx);
    let (atime, mtime) = if times.is_null() {
        (Some(t), Some(t))
    } else {
        let v = ctx.read_array(times, 2)?;
        (
            Some(Timestamp { sec: v[0], nsec: 0 }),
            Some(Timestamp { sec: v[1], nsec: 0 }),
        )
    };
    let p = ctx.read_path(path)?;
    let r = resolve(ctx, AT_FDCWD, &p, true, false)?;
    set_attr_on(
        ctx,
        r,
        SetAttr {
            atime,
            mtime,
            ..Default::default()
        },
    )
}

fn statfs_of<P: Platform>(ctx: &Ctx<'_, P>, mount: Option<usize>) -> Statfs {
    const PROC_SUPER_MAGIC: u64 = 0x9fa0;
    const SYSFS_MAGIC: u64 = 0x6265_6572;
    const PIPEFS_MAGIC: u64 = 0x5049_5045;
    const ST_RDONLY: u64 = 1;
    let Some(id) = mount else {
        return Statfs {
            fs_type: PIPEFS_MAGIC,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
            ..Default::default()
        };
    };
    let m = ctx.process.fs.mounts.get(id);
    let ro = if m.read_only { ST_RDONLY } else { 0 };
    let base = Statfs {
        bsize: 4096,
        namelen: 255,
        frsize: 4096,
        fsid: id as u64,
        flags: ro | 0x400,
        ..Default::default()
    };
    match &m.fs {
        crate::fs::mount::Mounted::Fs(fs) => {
            let s = fs.stats();
            Statfs {
                fs_type: s.magic,
                bsize: s.block_size,
                blocks: s.blocks,
                bfree: s.blocks_free,
                bavail: s.blocks_free,
                files: s.files,
                ffree: s.files_free,
                namelen: s.name_max,
                frsize: s.block_size,
                ..base
            }
        }
        crate::fs::mount::Mounted::Proc => Statfs {
            fs_type: PROC_SUPER_MAGIC,
            ..base
        },
        crate::fs::mount::Mounted::Sys => Statfs {
            fs_type: SYSFS_MAGIC,
            ..base
        },
    }
}

pub fn sys_statfs<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    path: UserCStr,
    buf: UserPtr<Statfs>,
) -> Result<usize, Errno> {
    let p = ctx.read_path(path)?;
    let mount = match resolve(ctx, AT_FDCWD, &p, true, false)? {
        Resolved::Node(v) => Some(v.mount),
        Resolved::Open(d) => d.file.vnode().map(|v| v.mount),
    };
    let s = statfs_of(ctx, mount);
    ctx.write(buf, &s)?;
    Ok(0)
}

pub fn sys_fstatfs<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    buf: UserPtr<Statfs>,
) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    let s = statfs_of(ctx, d.file.vnode().map(|v| v.mount));
    ctx.write(buf, &s)?;
    Ok(0)
}

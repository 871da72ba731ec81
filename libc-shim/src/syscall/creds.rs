//! User and group ids: real, effective, saved and filesystem ids and the supplementary groups,
//! with Linux's rules for who may change what.
//!
//! The app starts as root. Servers change their ids at start (memcached `-u`, nginx's `user`
//! in master mode); the ids they set are kept and reported back. Kiln does not check file
//! permissions against them (the ledger says so): a server that drops to an unprivileged user
//! can still open every file. The ids are per process, as the C libraries make them by
//! running each set*id call on every thread.

use alloc::vec::Vec;

use super::Ctx;
use super::args::UserPtr;
use crate::errno::Errno;
use crate::platform::Platform;

/// Linux's NGROUPS_MAX.
const NGROUPS_MAX: usize = 65536;

/// `(uid_t)-1`: "leave this id alone" in the setre*/setres* calls.
const KEEP: u32 = u32::MAX;

/// One set of ids (user or group): real, effective, saved set-id and filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
    pub fs: u32,
}

impl Ids {
    fn is_any(&self, id: u32) -> bool {
        id == self.real || id == self.effective || id == self.saved
    }
}

/// The credentials of the process.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub uid: Ids,
    pub gid: Ids,
    pub groups: Vec<u32>,
}

impl Credentials {
    /// CAP_SETUID/CAP_SETGID: an effective uid of 0.
    fn privileged(&self) -> bool {
        self.uid.effective == 0
    }
}

/// Which set of ids a call changes.
#[derive(Clone, Copy)]
enum Which {
    User,
    Group,
}

fn ids_mut(c: &mut Credentials, which: Which) -> &mut Ids {
    match which {
        Which::User => &mut c.uid,
        Which::Group => &mut c.gid,
    }
}

/// setuid/setgid: privileged, all four ids; otherwise the effective (and fs) id, to the real or
/// saved one.
fn set_id(c: &mut Credentials, which: Which, id: u32) -> Result<usize, Errno> {
    if id == KEEP {
        return Err(Errno::EINVAL);
    }
    let privileged = c.privileged();
    let ids = ids_mut(c, which);
    if privileged {
        *ids = Ids { real: id, effective: id, saved: id, fs: id };
    } else if id == ids.real || id == ids.saved {
        ids.effective = id;
        ids.fs = id;
    } else {
        return Err(Errno::EPERM);
    }
    Ok(0)
}

/// setresuid/setresgid: each id that is not -1 becomes the new value; unprivileged, only to one
/// of the current real, effective or saved ids.
fn set_res(c: &mut Credentials, which: Which, real: u32, effective: u32, saved: u32) -> Result<usize, Errno> {
    let privileged = c.privileged();
    let ids = ids_mut(c, which);
    if !privileged && [real, effective, saved].iter().any(|&v| v != KEEP && !ids.is_any(v)) {
        return Err(Errno::EPERM);
    }
    if real != KEEP {
        ids.real = real;
    }
    if effective != KEEP {
        ids.effective = effective;
    }
    if saved != KEEP {
        ids.saved = saved;
    }
    ids.fs = ids.effective;
    Ok(0)
}

/// setreuid/setregid: unprivileged, the real id may become the effective one (or stay), the
/// effective one any of real, effective, saved; the saved id follows the effective one when the
/// real id is set or the effective one changes to other than the old real id.
fn set_re(c: &mut Credentials, which: Which, real: u32, effective: u32) -> Result<usize, Errno> {
    let privileged = c.privileged();
    let ids = ids_mut(c, which);
    let old = *ids;
    if !privileged {
        if real != KEEP && real != old.real && real != old.effective {
            return Err(Errno::EPERM);
        }
        if effective != KEEP && !old.is_any(effective) {
            return Err(Errno::EPERM);
        }
    }
    if real != KEEP {
        ids.real = real;
    }
    if effective != KEEP {
        ids.effective = effective;
    }
    if real != KEEP || (effective != KEEP && effective != old.real) {
        ids.saved = ids.effective;
    }
    ids.fs = ids.effective;
    Ok(0)
}

/// setfsuid/setfsgid: always returns the previous fs id; changes it when allowed (privileged,
/// or to one of the real, effective, saved or current fs ids).
fn set_fs(c: &mut Credentials, which: Which, id: u32) -> usize {
    let privileged = c.privileged();
    let ids = ids_mut(c, which);
    let old = ids.fs;
    if id != KEEP && (privileged || ids.is_any(id) || id == ids.fs) {
        ids.fs = id;
    }
    old as usize
}

fn get_res<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    which: Which,
    real: UserPtr<u32>,
    effective: UserPtr<u32>,
    saved: UserPtr<u32>,
) -> Result<usize, Errno> {
    let ids = *ids_mut(&mut ctx.process.creds, which);
    ctx.write(real, &ids.real)?;
    ctx.write(effective, &ids.effective)?;
    ctx.write(saved, &ids.saved)?;
    Ok(0)
}

pub fn sys_getuid<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(ctx.process.creds.uid.real as usize)
}
pub fn sys_geteuid<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(ctx.process.creds.uid.effective as usize)
}
pub fn sys_getgid<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(ctx.process.creds.gid.real as usize)
}
pub fn sys_getegid<P: Platform>(ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(ctx.process.creds.gid.effective as usize)
}

pub fn sys_setuid<P: Platform>(ctx: &mut Ctx<'_, P>, uid: u32) -> Result<usize, Errno> {
    set_id(&mut ctx.process.creds, Which::User, uid)
}
pub fn sys_setgid<P: Platform>(ctx: &mut Ctx<'_, P>, gid: u32) -> Result<usize, Errno> {
    set_id(&mut ctx.process.creds, Which::Group, gid)
}
pub fn sys_setreuid<P: Platform>(ctx: &mut Ctx<'_, P>, real: u32, effective: u32) -> Result<usize, Errno> {
    set_re(&mut ctx.process.creds, Which::User, real, effective)
}
pub fn sys_setregid<P: Platform>(ctx: &mut Ctx<'_, P>, real: u32, effective: u32) -> Result<usize, Errno> {
    set_re(&mut ctx.process.creds, Which::Group, real, effective)
}
pub fn sys_setresuid<P: Platform>(ctx: &mut Ctx<'_, P>, real: u32, effective: u32, saved: u32) -> Result<usize, Errno> {
    set_res(&mut ctx.process.creds, Which::User, real, effective, saved)
}
pub fn sys_setresgid<P: Platform>(ctx: &mut Ctx<'_, P>, real: u32, effective: u32, saved: u32) -> Result<usize, Errno> {
    set_res(&mut ctx.process.creds, Which::Group, real, effective, saved)
}
pub fn sys_getresuid<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    real: UserPtr<u32>,
    effective: UserPtr<u32>,
    saved: UserPtr<u32>,
) -> Result<usize, Errno> {
    get_res(ctx, Which::User, real, effective, saved)
}
pub fn sys_getresgid<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    real: UserPtr<u32>,
    effective: UserPtr<u32>,
    saved: UserPtr<u32>,
) -> Result<usize, Errno> {
    get_res(ctx, Which::Group, real, effective, saved)
}
pub fn sys_setfsuid<P: Platform>(ctx: &mut Ctx<'_, P>, uid: u32) -> Result<usize, Errno> {
    Ok(set_fs(&mut ctx.process.creds, Which::User, uid))
}
pub fn sys_setfsgid<P: Platform>(ctx: &mut Ctx<'_, P>, gid: u32) -> Result<usize, Errno> {
    Ok(set_fs(&mut ctx.process.creds, Which::Group, gid))
}

/// getgroups: `size` 0 asks for the count; a smaller buffer than the list is EINVAL.
pub fn sys_getgroups<P: Platform>(ctx: &mut Ctx<'_, P>, size: i32, list: UserPtr<u32>) -> Result<usize, Errno> {
    let size = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
    let groups = ctx.process.creds.groups.clone();
    if size == 0 {
        return Ok(groups.len());
    }
    if size < groups.len() {
        return Err(Errno::EINVAL);
    }
    let mut bytes = Vec::with_capacity(groups.len() * 4);
    for g in &groups {
        bytes.extend_from_slice(&g.to_le_bytes());
    }
    ctx.write_bytes(list.addr(), &bytes)?;
    Ok(groups.len())
}

/// setgroups: needs CAP_SETGID (an effective uid of 0); at most NGROUPS_MAX groups.
pub fn sys_setgroups<P: Platform>(ctx: &mut Ctx<'_, P>, size: i32, list: UserPtr<u32>) -> Result<usize, Errno> {
    let size = usize::try_from(size).ok().filter(|&n| n <= NGROUPS_MAX).ok_or(Errno::EINVAL)?;
    if !ctx.process.creds.privileged() {
        return Err(Errno::EPERM);
    }
    let mut groups = if size == 0 { Vec::new() } else { ctx.read_array(list, size)? };
    groups.sort_unstable();
    ctx.process.creds.groups = groups;
    Ok(0)
}

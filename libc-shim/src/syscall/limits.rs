//! Resource limits: recorded per process and reported back, not enforced.

use super::Ctx;
use super::args::{UserPtr, enum_arg};
use super::linux::{RLIM_INFINITY, Rlimit};
use super::process_info::is_self;
use crate::errno::Errno;
use crate::platform::Platform;

/// `RLIMIT_*` resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Cpu,
    Fsize,
    Data,
    Stack,
    Core,
    Rss,
    Nproc,
    Nofile,
    Memlock,
    As,
    Locks,
    Sigpending,
    Msgqueue,
    Nice,
    Rtprio,
    Rttime,
}
enum_arg!(Resource {
    0 => Cpu, 1 => Fsize, 2 => Data, 3 => Stack, 4 => Core, 5 => Rss, 6 => Nproc, 7 => Nofile,
    8 => Memlock, 9 => As, 10 => Locks, 11 => Sigpending, 12 => Msgqueue, 13 => Nice,
    14 => Rtprio, 15 => Rttime,
});

/// The limits of the process, indexed by [`Resource`].
#[derive(Debug, Clone)]
pub struct Rlimits([Rlimit; 16]);

impl Default for Rlimits {
    /// What a Linux shell typically hands its children.
    fn default() -> Self {
        let inf = Rlimit {
            cur: RLIM_INFINITY,
            max: RLIM_INFINITY,
        };
        let mut l = [inf; 16];
        l[Resource::Stack as usize] = Rlimit {
            cur: 8 << 20,
            max: RLIM_INFINITY,
        };
        l[Resource::Core as usize] = Rlimit {
            cur: 0,
            max: RLIM_INFINITY,
        };
        l[Resource::Nproc as usize] = Rlimit {
            cur: 4096,
            max: 4096,
        };
        l[Resource::Nofile as usize] = Rlimit {
            cur: 1024,
            max: 4096,
        };
        l[Resource::Memlock as usize] = Rlimit {
            cur: 8 << 20,
            max: 8 << 20,
        };
        l[Resource::Sigpending as usize] = Rlimit {
            cur: 4096,
            max: 4096,
        };
        l[Resource::Msgqueue as usize] = Rlimit {
            cur: 819_200,
            max: 819_200,
        };
        l[Resource::Nice as usize] = Rlimit { cur: 0, max: 0 };
        l[Resource::Rtprio as usize] = Rlimit { cur: 0, max: 0 };
        Rlimits(l)
    }
}

impl Rlimits {
    pub fn get(&self, r: Resource) -> Rlimit {
        self.0[r as usize]
    }
}

fn prlimit<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    resource: Resource,
    new: UserPtr<Rlimit>,
    old: UserPtr<Rlimit>,
) -> Result<usize, Errno> {
    let new = if new.is_null() {
        None
    } else {
        Some(ctx.read(new)?)
    };
    if new.is_some_and(|n| n.cur > n.max) {
        return Err(Errno::EINVAL);
    }
    ctx.write_opt(old, &ctx.process.rlimits.get(resource))?;
    if let Some(n) = new {
        // The app runs as root (CAP_SYS_RESOURCE): raising the hard limit is allowed.
        ctx.process.rlimits.0[resource as usize] = n;
    }
    Ok(0)
}

pub fn sys_prlimit64<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    pid: i32,
    resource: Resource,
    new: UserPtr<Rlimit>,
    old: UserPtr<Rlimit>,
) -> Result<usize, Errno> {
    if !is_self(pid) {
        return Err(Errno::ESRCH);
    }
    prlimit(ctx, resource, new, old)
}

pub fn sys_getrlimit<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    resource: Resource,
    old: UserPtr<Rlimit>,
) -> Result<usize, Errno> {
    ctx.write(old, &ctx.process.rlimits.get(resource))?;
    Ok(0)
}

pub fn sys_setrlimit<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    resource: Resource,
    new: UserPtr<Rlimit>,
) -> Result<usize, Errno> {
    if new.is_null() {
        return Err(Errno::EFAULT);
    }
    prlimit(ctx, resource, new, UserPtr::new(0))
}

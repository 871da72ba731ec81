//! Process identity and environment: exit, ids, uname, TLS (arch_prctl), thread bookkeeping,
//! randomness, CPU affinity, resource usage.

use alloc::vec;

use super::args::{UserPtr, flags_arg};
use super::linux::{Rusage, Sysinfo, Timeval, Tms, Utsname};
use super::Ctx;
use crate::errno::Errno;
use crate::mm::layout::USER_END;
use crate::platform::Platform;
use crate::process::Process;

const PID: usize = Process::PID as usize;

pub fn sys_getpid<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(PID)
}
pub fn sys_getppid<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(0)
}
pub fn sys_getuid<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(0)
}
pub fn sys_geteuid<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(0)
}
pub fn sys_getgid<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(0)
}
pub fn sys_getegid<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(0)
}
pub fn sys_getpgrp<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(PID)
}

/// `pid` names this process (0 means the caller).
pub(crate) fn is_self(pid: i32) -> bool {
    pid == 0 || pid == Process::PID
}

pub fn sys_getpgid<P: Platform>(_ctx: &mut Ctx<'_, P>, pid: i32) -> Result<usize, Errno> {
    if is_self(pid) {
        Ok(PID)
    } else {
        Err(Errno::ESRCH)
    }
}
pub fn sys_getsid<P: Platform>(_ctx: &mut Ctx<'_, P>, pid: i32) -> Result<usize, Errno> {
    if is_self(pid) {
        Ok(PID)
    } else {
        Err(Errno::ESRCH)
    }
}

pub const UTSNAME: Utsname<'static> = Utsname {
    sysname: "Linux",
    nodename: "kiln",
    release: "6.1.0-kiln",
    version: "#1 SMP Kiln",
    machine: "x86_64",
    domainname: "(none)",
};

pub fn sys_uname<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    buf: UserPtr<Utsname<'static>>,
) -> Result<usize, Errno> {
    ctx.write(buf, &UTSNAME)?;
    Ok(0)
}

/// `ARCH_*` codes for arch_prctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchPrctl {
    SetGs,
    SetFs,
    GetFs,
    GetGs,
    Other(u32),
}

impl super::args::FromReg for ArchPrctl {
    fn from_reg(raw: u64) -> Result<Self, super::args::ArgError> {
        Ok(match raw as u32 {
            0x1001 => ArchPrctl::SetGs,
            0x1002 => ArchPrctl::SetFs,
            0x1003 => ArchPrctl::GetFs,
            0x1004 => ArchPrctl::GetGs,
            other => ArchPrctl::Other(other),
        })
    }
}

pub fn sys_arch_prctl<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    code: ArchPrctl,
    addr: u64,
) -> Result<usize, Errno> {
    match code {
        ArchPrctl::SetFs => {
            if addr >= USER_END {
                return Err(Errno::EPERM);
            }
            ctx.platform.set_fs_base(addr);
            Ok(0)
        }
        ArchPrctl::GetFs => {
            ctx.write(UserPtr::<u64>::new(addr), &ctx.platform.fs_base())?;
            Ok(0)
        }
        ArchPrctl::SetGs | ArchPrctl::GetGs => {
            ctx.warn_once("arch_prctl_gs", format_args!("arch_prctl: GS holds the kernel's per-CPU data; ARCH_SET_GS/ARCH_GET_GS return EINVAL"));
            Err(Errno::EINVAL)
        }
        ArchPrctl::Other(_) => Err(Errno::EINVAL),
    }
}

bitflags::bitflags! {
    /// `GRND_*` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct GrndFlags: u32 {
        const NONBLOCK = 1;
        const RANDOM = 2;
        const INSECURE = 4;
    }
}
flags_arg!(GrndFlags);

pub fn sys_getrandom<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    buf: UserPtr<u8>,
    len: usize,
    flags: GrndFlags,
) -> Result<usize, Errno> {
    if flags.contains(GrndFlags::RANDOM | GrndFlags::INSECURE) {
        return Err(Errno::EINVAL);
    }
    let len = len.min(i32::MAX as usize);
    ctx.check_user(buf.addr(), len as u64, crate::Prot::WRITE)?;
    let mut chunk = vec![0u8; len.min(4096)];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        ctx.platform.fill_random(&mut chunk[..n]);
        ctx.write_bytes(buf.addr() + done as u64, &chunk[..n])?;
        done += n;
    }
    Ok(len)
}


pub fn sys_sched_getaffinity<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    pid: i32,
    len: usize,
    mask: UserPtr<u8>,
) -> Result<usize, Errno> {
    if !is_self(pid) {
        return Err(Errno::ESRCH);
    }
    let cpus = ctx.platform.cpu_count().max(1);
    // Linux: the buffer must hold every possible CPU and be a whole number of longs.
    if len.saturating_mul(8) < cpus || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mask_size = cpus.div_ceil(64) * 8;
    let n = len.min(mask_size);
    let mut bytes = vec![0u8; n];
    for cpu in 0..cpus {
        bytes[cpu / 8] |= 1 << (cpu % 8);
    }
    ctx.write_bytes(mask.addr(), &bytes)?;
    Ok(n)
}

pub fn sys_sysinfo<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    info: UserPtr<Sysinfo>,
) -> Result<usize, Errno> {
    let (total, free) = ctx.platform.memory_stats();
    let s = Sysinfo {
        uptime: (ctx.platform.monotonic_ns() / 1_000_000_000) as i64,
        totalram: total,
        freeram: free,
        procs: 1,
        mem_unit: 1,
        ..Default::default()
    };
    ctx.write(info, &s)?;
    Ok(0)
}

/// `who` for getrusage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RusageWho {
    SelfProcess,
    Children,
    Thread,
}
super::args::enum_arg!(RusageWho { 0 => SelfProcess, -1 => Children, 1 => Thread });

pub fn sys_getrusage<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    who: RusageWho,
    usage: UserPtr<Rusage>,
) -> Result<usize, Errno> {
    let r = match who {
        RusageWho::Children => Rusage::default(),
        RusageWho::SelfProcess | RusageWho::Thread => {
            let (total, free) = ctx.platform.memory_stats();
            Rusage {
                utime: Timeval::from_ns(ctx.platform.monotonic_ns()),
                stime: Timeval::default(),
                maxrss: (total.saturating_sub(free) / 1024) as i64,
            }
        }
    };
    ctx.write(usage, &r)?;
    Ok(0)
}

/// `sysconf(_SC_CLK_TCK)` on Linux.
const CLK_TCK: u64 = 100;

pub fn sys_times<P: Platform>(ctx: &mut Ctx<'_, P>, buf: UserPtr<Tms>) -> Result<usize, Errno> {
    let ticks = ctx.platform.monotonic_ns() / (1_000_000_000 / CLK_TCK);
    ctx.write_opt(
        buf,
        &Tms {
            utime: ticks as i64,
            ..Default::default()
        },
    )?;
    Ok(ticks as usize)
}

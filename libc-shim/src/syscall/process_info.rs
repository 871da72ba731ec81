//! Process identity and environment: exit, ids, uname, TLS (arch_prctl), thread bookkeeping,
//! randomness, CPU affinity, priorities, prctl, resource usage.

use alloc::vec;

use super::args::{UserPtr, enum_arg, flags_arg};
use super::linux::{Rusage, Sysinfo, Timeval, Tms, Utsname};
use super::Ctx;
use crate::errno::Errno;
use crate::mm::layout::USER_END;
use crate::platform::Platform;
use crate::process::{Process, Tid};

const PID: usize = Process::PID as usize;

pub fn sys_getpid<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(PID)
}
pub fn sys_getppid<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
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


/// The thread a `pid` argument of the sched_* and priority calls names (0: the caller; Linux
/// takes thread ids here).
fn thread_arg<P: Platform>(ctx: &Ctx<'_, P>, pid: i32) -> Result<Tid, Errno> {
    match pid {
        0 => Ok(ctx.tid),
        p if p > 0 && ctx.process.threads.contains_key(&p) => Ok(p),
        p if p < 0 => Err(Errno::EINVAL),
        _ => Err(Errno::ESRCH),
    }
}

pub fn sys_sched_getaffinity<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    pid: i32,
    len: usize,
    mask: UserPtr<u8>,
) -> Result<usize, Errno> {
    let tid = thread_arg(ctx, pid)?;
    let cpus = ctx.platform.cpu_count().max(1);
    // Linux: the buffer must hold every possible CPU and be a whole number of longs.
    if len.saturating_mul(8) < cpus || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let mask_size = cpus.div_ceil(64) * 8;
    let n = len.min(mask_size);
    let mut bytes = vec![0u8; n];
    match &ctx.process.threads[&tid].affinity {
        Some(set) => bytes[..set.len().min(n)].copy_from_slice(&set[..set.len().min(n)]),
        None => {
            for cpu in 0..cpus {
                bytes[cpu / 8] |= 1 << (cpu % 8);
            }
        }
    }
    ctx.write_bytes(mask.addr(), &bytes)?;
    Ok(n)
}

/// Recorded and reported back; the scheduler does not pin threads.
pub fn sys_sched_setaffinity<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    pid: i32,
    len: usize,
    mask: UserPtr<u8>,
) -> Result<usize, Errno> {
    let tid = thread_arg(ctx, pid)?;
    let cpus = ctx.platform.cpu_count().max(1);
    let mut bytes = vec![0u8; len.min(cpus.div_ceil(8))];
    ctx.read_bytes(mask.addr(), &mut bytes)?;
    // Only CPUs that exist count; a mask with none of them is EINVAL.
    for (i, b) in bytes.iter_mut().enumerate() {
        for bit in 0..8 {
            if i * 8 + bit >= cpus {
                *b &= !(1 << bit);
            }
        }
    }
    if bytes.iter().all(|&b| b == 0) {
        return Err(Errno::EINVAL);
    }
    ctx.process.threads.get_mut(&tid).expect("thread").affinity = Some(bytes);
    Ok(0)
}

/// `which` for getpriority/setpriority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrioWhich {
    Process,
    Pgrp,
    User,
}
enum_arg!(PrioWhich { 0 => Process, 1 => Pgrp, 2 => User });

/// The threads `which`/`who` name: one thread for PRIO_PROCESS, all of them for our process
/// group (0 or 1) and our user (0, root).
fn prio_targets<P: Platform>(ctx: &Ctx<'_, P>, which: PrioWhich, who: i32) -> Result<alloc::vec::Vec<Tid>, Errno> {
    match which {
        PrioWhich::Process => Ok(vec![thread_arg(ctx, who).map_err(|_| Errno::ESRCH)?]),
        PrioWhich::Pgrp if who == 0 || who == Process::PID => Ok(ctx.process.threads.keys().copied().collect()),
        PrioWhich::User if who == 0 => Ok(ctx.process.threads.keys().copied().collect()),
        _ => Err(Errno::ESRCH),
    }
}

/// Returns `20 - nice` (1..=40) of the highest-priority target, as the raw Linux syscall does.
pub fn sys_getpriority<P: Platform>(ctx: &mut Ctx<'_, P>, which: PrioWhich, who: i32) -> Result<usize, Errno> {
    let targets = prio_targets(ctx, which, who)?;
    let nice = targets.iter().map(|t| ctx.process.threads[t].nice).min().unwrap_or(0);
    Ok((20 - nice) as usize)
}

/// Recorded per thread (clamped to -20..=19, as Linux); the scheduler does not weigh it.
pub fn sys_setpriority<P: Platform>(ctx: &mut Ctx<'_, P>, which: PrioWhich, who: i32, nice: i32) -> Result<usize, Errno> {
    let targets = prio_targets(ctx, which, who)?;
    let nice = nice.clamp(-20, 19);
    for t in targets {
        ctx.process.threads.get_mut(&t).expect("thread").nice = nice;
    }
    Ok(0)
}

/// What prctl records for the process.
#[derive(Debug, Clone)]
pub struct PrctlState {
    pub pdeathsig: u8,
    pub dumpable: bool,
    pub no_new_privs: bool,
    pub timer_slack_ns: u64,
}

impl Default for PrctlState {
    fn default() -> Self {
        PrctlState { pdeathsig: 0, dumpable: true, no_new_privs: false, timer_slack_ns: 50_000 }
    }
}

const PR_SET_PDEATHSIG: i32 = 1;
const PR_GET_PDEATHSIG: i32 = 2;
const PR_GET_DUMPABLE: i32 = 3;
const PR_SET_DUMPABLE: i32 = 4;
const PR_SET_NAME: i32 = 15;
const PR_GET_NAME: i32 = 16;
const PR_SET_TIMERSLACK: i32 = 29;
const PR_GET_TIMERSLACK: i32 = 30;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
const PR_GET_NO_NEW_PRIVS: i32 = 39;
/// PR_SET_VMA: naming anonymous memory (EINVAL, as a Linux built without CONFIG_ANON_VMA_NAME).
const PR_SET_VMA: i32 = 0x5356_4d41;

pub fn sys_prctl<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    option: i32,
    arg2: u64,
    arg3: u64,
    arg4: u64,
    arg5: u64,
) -> Result<usize, Errno> {
    match option {
        PR_SET_NAME => {
            // Up to 15 bytes and a NUL; a longer name is cut, as Linux does.
            let mut name = [0u8; 16];
            for (addr, slot) in (arg2..).zip(name.iter_mut().take(15)) {
                let mut b = [0u8];
                ctx.read_bytes(addr, &mut b)?;
                if b[0] == 0 {
                    break;
                }
                *slot = b[0];
            }
            ctx.thread_mut().name = name;
            Ok(0)
        }
        PR_GET_NAME => {
            let name = ctx.thread().name;
            ctx.write_bytes(arg2, &name)?;
            Ok(0)
        }
        PR_SET_PDEATHSIG => {
            // Accepted: the parent (the host) never dies before the VM.
            if arg2 > 64 {
                return Err(Errno::EINVAL);
            }
            ctx.process.prctl.pdeathsig = arg2 as u8;
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            ctx.write(UserPtr::<i32>::new(arg2), &(ctx.process.prctl.pdeathsig as i32))?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(ctx.process.prctl.dumpable as usize),
        PR_SET_DUMPABLE => match arg2 {
            0 | 1 => {
                ctx.process.prctl.dumpable = arg2 == 1;
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        },
        PR_SET_NO_NEW_PRIVS => {
            if arg2 != 1 || arg3 != 0 || arg4 != 0 || arg5 != 0 {
                return Err(Errno::EINVAL);
            }
            ctx.process.prctl.no_new_privs = true;
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => {
            if arg2 != 0 || arg3 != 0 || arg4 != 0 || arg5 != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(ctx.process.prctl.no_new_privs as usize)
        }
        PR_SET_TIMERSLACK => {
            ctx.process.prctl.timer_slack_ns = if arg2 == 0 { 50_000 } else { arg2 };
            Ok(0)
        }
        PR_GET_TIMERSLACK => Ok(ctx.process.prctl.timer_slack_ns as usize),
        PR_SET_VMA => Err(Errno::EINVAL),
        _ => {
            log::warn!("prctl option {option}: not supported: returning EINVAL");
            Err(Errno::EINVAL)
        }
    }
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
        procs: ctx.process.threads.len().min(u16::MAX as usize) as u16,
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
enum_arg!(RusageWho { 0 => SelfProcess, -1 => Children, 1 => Thread });

/// CPU time is all user time (the kernel's own work for the app is not told apart).
pub fn sys_getrusage<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    who: RusageWho,
    usage: UserPtr<Rusage>,
) -> Result<usize, Errno> {
    let r = match who {
        RusageWho::Children => Rusage::default(),
        RusageWho::SelfProcess | RusageWho::Thread => {
            let (total, free) = ctx.platform.memory_stats();
            let tid = (who == RusageWho::Thread).then_some(ctx.tid);
            Rusage {
                utime: Timeval::from_ns(ctx.process.cpu_ns(ctx.platform, tid)),
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
    let tick = 1_000_000_000 / CLK_TCK;
    let cpu = ctx.process.cpu_ns(ctx.platform, None) / tick;
    ctx.write_opt(buf, &Tms { utime: cpu as i64, ..Default::default() })?;
    Ok((ctx.platform.monotonic_ns() / tick) as usize)
}

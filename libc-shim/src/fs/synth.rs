//! procfs and the bits of sysfs programs read: generated from the process and the machine
//! on every open, with real numbers (memory, CPUs, uptime, mappings, fds).
//!
//! Both are fixed tables of inodes plus, in procfs, one inode per open fd under
//! `/proc/1/fd`. Links under `fd/` and `cwd` are "magic": following them reaches the open
//! file itself, not a path (so /dev/stdout works when fd 1 is the console).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use super::mount::Vnode;
use super::{DirEntry, FileType, Ino, Metadata, Timestamp};
use crate::errno::Errno;
use crate::platform::{PAGE_SIZE, Platform, Prot};
use crate::process::Process;

/// What a synthetic inode is.
struct Entry {
    ino: Ino,
    parent: Ino,
    name: &'static str,
    kind: FileType,
}

const fn e(ino: Ino, parent: Ino, name: &'static str, kind: FileType) -> Entry {
    Entry {
        ino,
        parent,
        name,
        kind,
    }
}

use FileType::{Directory as D, Regular as R, Symlink as L};

const PROC: &[Entry] = &[
    e(2, 1, "self", L),
    e(3, 1, "1", D),
    e(4, 1, "cpuinfo", R),
    e(5, 1, "meminfo", R),
    e(6, 1, "stat", R),
    e(7, 1, "uptime", R),
    e(8, 1, "loadavg", R),
    e(9, 1, "mounts", L),
    e(10, 1, "sys", D),
    e(11, 10, "kernel", D),
    e(12, 11, "hostname", R),
    e(13, 11, "osrelease", R),
    e(14, 11, "ostype", R),
    e(15, 11, "random", D),
    e(16, 15, "uuid", R),
    e(17, 11, "pid_max", R),
    e(18, 10, "net", D),
    e(19, 18, "core", D),
    e(20, 19, "somaxconn", R),
    e(21, 10, "vm", D),
    e(22, 21, "overcommit_memory", R),
    e(23, 1, "version", R),
    e(24, 1, "filesystems", R),
    e(25, 15, "boot_id", R),
    e(26, 1, "thread-self", L),
    e(30, 3, "exe", L),
    e(31, 3, "fd", D),
    e(32, 3, "maps", R),
    e(33, 3, "status", R),
    e(34, 3, "stat", R),
    e(35, 3, "cmdline", R),
    e(36, 3, "environ", R),
    e(37, 3, "limits", R),
    e(38, 3, "mounts", R),
    e(39, 3, "cwd", L),
    e(40, 3, "root", L),
    e(41, 3, "comm", R),
    e(42, 3, "statm", R),
];

const SYS: &[Entry] = &[
    e(2, 1, "devices", D),
    e(3, 2, "system", D),
    e(4, 3, "cpu", D),
    e(5, 4, "online", R),
    e(6, 4, "possible", R),
    e(7, 4, "present", R),
    e(8, 1, "kernel", D),
    e(9, 8, "mm", D),
    e(10, 9, "transparent_hugepage", D),
    e(11, 10, "enabled", R),
    e(12, 10, "hpage_pmd_size", R),
    e(13, 10, "defrag", R),
    e(14, 3, "clocksource", D),
    e(15, 14, "clocksource0", D),
    e(16, 15, "current_clocksource", R),
];

/// First inode number of /proc/1/fd/N.
/// What uname(2) reports as the release.
const KERNEL_RELEASE: &str = "6.1.0-kiln";

/// First inode number of /proc/1/fd/N.
const FD_BASE: Ino = 1 << 20;
const FD_DIR: Ino = 31;

/// Which synthetic filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Proc,
    Sys,
}

fn table(w: Which) -> &'static [Entry] {
    match w {
        Which::Proc => PROC,
        Which::Sys => SYS,
    }
}

fn kind_of(w: Which, p: &Process, ino: Ino) -> Result<FileType, Errno> {
    if ino == super::ROOT_INO_SYNTHETIC {
        return Ok(D);
    }
    if w == Which::Proc && ino >= FD_BASE {
        let fd = (ino - FD_BASE) as i32;
        p.fs.fds.get(fd).map_err(|_| Errno::ENOENT)?;
        return Ok(L);
    }
    table(w)
        .iter()
        .find(|x| x.ino == ino)
        .map(|x| x.kind)
        .ok_or(Errno::ENOENT)
}

pub fn metadata(
    w: Which,
    p: &Process,
    platform: &dyn Platform,
    ino: Ino,
) -> Result<Metadata, Errno> {
    let kind = kind_of(w, p, ino)?;
    let boot = Timestamp::from_ns(
        platform
            .realtime_ns()
            .saturating_sub(platform.monotonic_ns()),
    );
    let perm = match kind {
        D => 0o555,
        L => 0o777,
        _ if w == Which::Proc && matches!(ino, 36) => 0o400,
        _ => 0o444,
    };
    Ok(Metadata {
        ino,
        kind,
        perm,
        nlink: if kind == D { 2 } else { 1 },
        uid: 0,
        gid: 0,
        size: if kind == L { 64 } else { 0 },
        blocks: 0,
        block_size: 1024,
        rdev: 0,
        atime: boot,
        mtime: boot,
        ctime: boot,
    })
}

pub fn lookup(w: Which, p: &Process, dir: Ino, name: &[u8]) -> Result<Ino, Errno> {
    if kind_of(w, p, dir)? != D {
        return Err(Errno::ENOTDIR);
    }
    if w == Which::Proc && dir == FD_DIR {
        let fd: i32 = core::str::from_utf8(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(Errno::ENOENT)?;
        p.fs.fds.get(fd).map_err(|_| Errno::ENOENT)?;
        return Ok(FD_BASE + fd as u64);
    }
    table(w)
        .iter()
        .find(|x| x.parent == dir && x.name.as_bytes() == name)
        .map(|x| x.ino)
        .ok_or(Errno::ENOENT)
}

pub fn parent(w: Which, p: &Process, dir: Ino) -> Result<Ino, Errno> {
    if dir == super::ROOT_INO_SYNTHETIC {
        return Ok(dir);
    }
    if kind_of(w, p, dir)? != D {
        return Err(Errno::ENOTDIR);
    }
    table(w)
        .iter()
        .find(|x| x.ino == dir)
        .map(|x| x.parent)
        .ok_or(Errno::ENOENT)
}

pub fn read_dir(w: Which, p: &Process, dir: Ino) -> Result<Vec<DirEntry>, Errno> {
    if kind_of(w, p, dir)? != D {
        return Err(Errno::ENOTDIR);
    }
    if w == Which::Proc && dir == FD_DIR {
        return Ok(p
            .fs
            .fds
            .iter()
            .map(|(fd, _)| DirEntry {
                ino: FD_BASE + fd as u64,
                kind: L,
                name: format!("{fd}").into_bytes(),
            })
            .collect());
    }
    Ok(table(w)
        .iter()
        .filter(|x| x.parent == dir)
        .map(|x| DirEntry {
            ino: x.ino,
            kind: x.kind,
            name: x.name.as_bytes().to_vec(),
        })
        .collect())
}

/// Where a symlink leads.
pub enum Target {
    Path(Vec<u8>),
    /// An open fd (magic link).
    Fd(i32),
    /// The current directory (magic link).
    Cwd,
}

/// The target of a symlink: text for readlink, [`Target`] for following.
pub fn link(w: Which, p: &Process, ino: Ino) -> Result<(Vec<u8>, Target), Errno> {
    if kind_of(w, p, ino)? != L {
        return Err(Errno::EINVAL);
    }
    let path = |s: &str| (s.as_bytes().to_vec(), Target::Path(s.as_bytes().to_vec()));
    Ok(match ino {
        2 => path("1"),
        26 => path("1/task/1"),
        9 => path("self/mounts"),
        30 => path(&p.exe_path),
        40 => path("/"),
        39 => (p.fs.cwd_path.as_bytes().to_vec(), Target::Cwd),
        _ if ino >= FD_BASE => {
            let fd = (ino - FD_BASE) as i32;
            let entry = p.fs.fds.get(fd).map_err(|_| Errno::ENOENT)?;
            let text = match &entry.desc.path {
                Some(path) => path.clone(),
                None => entry.desc.file.describe(),
            };
            (text.into_bytes(), Target::Fd(fd))
        }
        _ => return Err(Errno::EINVAL),
    })
}

/// The bytes of a generated file.
pub fn content(w: Which, p: &Process, platform: &dyn Platform, ino: Ino) -> Result<Vec<u8>, Errno> {
    let mut s = String::new();
    let cpus = platform.cpu_count().max(1);
    let (total, free) = platform.memory_stats();
    let up = platform.monotonic_ns();
    match (w, ino) {
        (Which::Sys, 5..=7) => {
            if cpus == 1 {
                s.push_str("0\n");
            } else {
                let _ = writeln!(s, "0-{}", cpus - 1);
            }
        }
        // Kiln backs memory with 4 KiB pages only; "never" is the truth and stops redis's
        // latency warning.
        (Which::Sys, 11) => s.push_str("always madvise [never]\n"),
        (Which::Sys, 13) => s.push_str("always defer defer+madvise madvise [never]\n"),
        (Which::Sys, 12) => s.push_str("2097152\n"),
        (Which::Sys, 16) => s.push_str("tsc\n"),
        (Which::Proc, 4) => {
            for i in 0..cpus {
                let _ = write!(
                    s,
                    "processor\t: {i}\nvendor_id\t: KilnVirtualCPU\nmodel name\t: Kiln virtual CPU\ncpu MHz\t\t: 1000.000\n\
                     physical id\t: 0\nsiblings\t: {cpus}\ncore id\t\t: {i}\ncpu cores\t: {cpus}\napicid\t\t: {i}\n\
                     fpu\t\t: yes\nflags\t\t: fpu sse sse2\nbogomips\t: 2000.00\nclflush size\t: 64\n\
                     cache_alignment\t: 64\naddress sizes\t: 46 bits physical, 48 bits virtual\n\n"
                );
            }
        }
        (Which::Proc, 5) => {
            let kb = |b: u64| b / 1024;
            let _ = write!(
                s,
                "MemTotal:       {:8} kB\nMemFree:        {:8} kB\nMemAvailable:   {:8} kB\nBuffers:               0 kB\n\
                 Cached:                0 kB\nSwapCached:            0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n\
                 Shmem:                 0 kB\nHugePages_Total:       0\nHugePages_Free:        0\nHugepagesize:       2048 kB\n",
                kb(total),
                kb(free),
                kb(free)
            );
        }
        (Which::Proc, 6) => {
            // USER_HZ ticks: all of the time since boot is the app's (user) or idle.
            let ticks = up / 10_000_000;
            let _ = writeln!(
                s,
                "cpu  {} 0 0 {} 0 0 0 0 0 0",
                ticks,
                ticks * (cpus as u64 - 1)
            );
            for i in 0..cpus {
                let user = if i == 0 { ticks } else { 0 };
                let _ = writeln!(s, "cpu{i} {user} 0 0 {} 0 0 0 0 0 0", ticks - user);
            }
            let boot = (platform.realtime_ns().saturating_sub(up)) / 1_000_000_000;
            let _ = write!(
                s,
                "intr 0\nctxt 0\nbtime {boot}\nprocesses 1\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n"
            );
        }
        (Which::Proc, 7) => {
            let cs = up / 10_000_000;
            let idle = cs * (cpus as u64 - 1);
            let _ = writeln!(
                s,
                "{}.{:02} {}.{:02}",
                cs / 100,
                cs % 100,
                idle / 100,
                idle % 100
            );
        }
        (Which::Proc, 8) => {
            let running = p.threads.values().filter(|t| !t.blocked).count();
            let _ = writeln!(
                s,
                "0.00 0.00 0.00 {running}/{} {}",
                p.threads.len(),
                p.threads.keys().max().copied().unwrap_or(1)
            );
        }
        (Which::Proc, 12) => s.push_str("kiln\n"),
        (Which::Proc, 13) => {
            s.push_str(KERNEL_RELEASE);
            s.push('\n');
        }
        (Which::Proc, 14) => s.push_str("Linux\n"),
        (Which::Proc, 16 | 25) => {
            let mut b = [0u8; 16];
            platform.fill_random(&mut b);
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            for (i, x) in b.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    s.push('-');
                }
                let _ = write!(s, "{x:02x}");
            }
            s.push('\n');
        }
        (Which::Proc, 17) => s.push_str("4194304\n"),
        (Which::Proc, 20) => s.push_str("4096\n"),
        (Which::Proc, 22) => s.push_str("1\n"),
        (Which::Proc, 23) => {
            let _ = writeln!(s, "Linux version {} (kiln) #1 SMP", KERNEL_RELEASE);
        }
        (Which::Proc, 24) => {
            s.push_str("nodev\tproc\nnodev\tsysfs\nnodev\ttmpfs\nnodev\tdevtmpfs\n\tvfat\n")
        }
        (Which::Proc, 32) => maps(p, &mut s),
        (Which::Proc, 33) => status(p, &mut s),
        (Which::Proc, 34) => stat(p, platform, &mut s),
        (Which::Proc, 35) => return Ok(p.fs.cmdline.clone()),
        (Which::Proc, 36) => return Ok(p.fs.environ.clone()),
        (Which::Proc, 37) => limits(p, &mut s),
        (Which::Proc, 38) => mounts(p, &mut s),
        (Which::Proc, 41) => {
            s.push_str(comm(p));
            s.push('\n');
        }
        (Which::Proc, 42) => {
            let (vsz, rss) = sizes(p);
            let _ = writeln!(s, "{} {} 0 0 0 0 0", vsz / PAGE_SIZE, rss / PAGE_SIZE);
        }
        _ => return Err(Errno::EISDIR),
    }
    Ok(s.into_bytes())
}

fn comm(p: &Process) -> &str {
    let name = p.exe_path.rsplit('/').next().unwrap_or("app");
    &name[..name.len().min(15)]
}

/// (virtual size, resident size) in bytes.
fn sizes(p: &Process) -> (u64, u64) {
    let vsz: u64 = p.mm.vmas().map(|(s, e, _, _)| e - s).sum();
    (vsz, vsz)
}

fn maps(p: &Process, s: &mut String) {
    use crate::mm::VmaKind;
    for (start, end, prot, kind) in p.mm.vmas() {
        let f = |b: Prot, c: char| if prot.contains(b) { c } else { '-' };
        let name = match kind {
            VmaKind::Program => p.exe_path.as_str(),
            VmaKind::Heap => "[heap]",
            VmaKind::Stack => "[stack]",
            VmaKind::Anonymous => "",
            VmaKind::Vdso => "[vdso]",
        };
        let _ = write!(
            s,
            "{start:08x}-{end:08x} {}{}{}p 00000000 00:00 0",
            f(Prot::READ, 'r'),
            f(Prot::WRITE, 'w'),
            f(Prot::EXEC, 'x')
        );
        if name.is_empty() {
            s.push('\n');
        } else {
            let _ = writeln!(s, "{:width$}{name}", "", width = 10);
        }
    }
}

fn status(p: &Process, s: &mut String) {
    let (vsz, rss) = sizes(p);
    let _ = write!(
        s,
        "Name:\t{}\nUmask:\t{:04o}\nState:\tR (running)\nTgid:\t1\nNgid:\t0\nPid:\t1\nPPid:\t0\nTracerPid:\t0\n\
         Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t{}\nGroups:\t\nVmPeak:\t{:8} kB\nVmSize:\t{:8} kB\n\
         VmHWM:\t{:8} kB\nVmRSS:\t{:8} kB\nThreads:\t{}\nSigQ:\t0/4096\nCpus_allowed:\t{:x}\nCpus_allowed_list:\t0\n",
        comm(p),
        p.umask,
        p.fs.fds
            .iter()
            .map(|(fd, _)| fd + 1)
            .max()
            .unwrap_or(0)
            .max(64),
        vsz / 1024,
        vsz / 1024,
        rss / 1024,
        rss / 1024,
        p.threads.len(),
        1
    );
}

fn stat(p: &Process, platform: &dyn Platform, s: &mut String) {
    let (vsz, rss) = sizes(p);
    let ticks = platform.monotonic_ns() / 10_000_000;
    let _ = writeln!(
        s,
        "1 ({}) R 0 1 1 0 -1 4194560 0 0 0 0 {ticks} 0 0 0 20 0 {} 0 0 {vsz} {} 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
        comm(p),
        p.threads.len(),
        rss / PAGE_SIZE
    );
}

fn limits(p: &Process, s: &mut String) {
    use crate::syscall::limits::Resource::*;
    let rows = [
        ("Max cpu time", Cpu, "seconds"),
        ("Max file size", Fsize, "bytes"),
        ("Max data size", Data, "bytes"),
        ("Max stack size", Stack, "bytes"),
        ("Max core file size", Core, "bytes"),
        ("Max resident set", Rss, "bytes"),
        ("Max processes", Nproc, "processes"),
        ("Max open files", Nofile, "files"),
        ("Max locked memory", Memlock, "bytes"),
        ("Max address space", As, "bytes"),
        ("Max file locks", Locks, "locks"),
        ("Max pending signals", Sigpending, "signals"),
        ("Max msgqueue size", Msgqueue, "bytes"),
        ("Max nice priority", Nice, ""),
        ("Max realtime priority", Rtprio, ""),
        ("Max realtime timeout", Rttime, "us"),
    ];
    let _ = writeln!(
        s,
        "{:<25} {:<20} {:<20} {:<10}",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    let v = |x: u64| {
        if x == u64::MAX {
            String::from("unlimited")
        } else {
            format!("{x}")
        }
    };
    for (name, r, unit) in rows {
        let l = p.rlimits.get(r);
        let _ = writeln!(s, "{name:<25} {:<20} {:<20} {unit:<10}", v(l.cur), v(l.max));
    }
}

fn mounts(p: &Process, s: &mut String) {
    for (_, m) in p.fs.mounts.iter() {
        let _ = writeln!(
            s,
            "{} {} {} {},relatime 0 0",
            m.source,
            m.path,
            m.type_name(),
            if m.read_only { "ro" } else { "rw" }
        );
    }
}

/// The vnode of the synthetic root of mount `mount`.
pub fn root(mount: usize) -> Vnode {
    Vnode {
        mount,
        ino: super::ROOT_INO_SYNTHETIC,
    }
}

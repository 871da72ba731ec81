//! Memory syscalls: brk, anonymous mmap, munmap, mprotect, madvise, mremap.
//!
//! Decisions about the address space belong to [`crate::mm::Mm`]; this module decodes the
//! Linux arguments into its calls.

use alloc::vec;

use super::Ctx;
use super::args::{ArgError, Fd, FromReg, flags_arg};
use crate::errno::Errno;
use crate::mm::Placement;
use crate::platform::{PAGE_SIZE, Platform, Prot};

bitflags::bitflags! {
    /// `PROT_*` as an argument (READ, WRITE, EXEC; `PROT_GROWSDOWN/UP` are not accepted).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ProtArg: u32 {
        const READ = 0x1;
        const WRITE = 0x2;
        const EXEC = 0x4;
    }
}
flags_arg!(ProtArg);

impl ProtArg {
    fn prot(self) -> Prot {
        Prot::from_bits_truncate(self.bits())
    }
}

bitflags::bitflags! {
    /// `MAP_*` flags mmap accepts.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct MapFlags: u32 {
        const SHARED = 0x01;
        const PRIVATE = 0x02;
        const FIXED = 0x10;
        const ANONYMOUS = 0x20;
        const GROWSDOWN = 0x100;
        const DENYWRITE = 0x800;
        const EXECUTABLE = 0x1000;
        const LOCKED = 0x2000;
        const NORESERVE = 0x4000;
        const POPULATE = 0x8000;
        const NONBLOCK = 0x1_0000;
        const STACK = 0x2_0000;
        const FIXED_NOREPLACE = 0x10_0000;
        const UNINITIALIZED = 0x400_0000;
    }
}
flags_arg!(MapFlags);

fn page_aligned(x: u64) -> bool {
    x.is_multiple_of(PAGE_SIZE)
}

/// Rounds up to pages; `None` on overflow.
fn page_round_up(len: u64) -> Option<u64> {
    len.checked_add(PAGE_SIZE - 1).map(|l| l & !(PAGE_SIZE - 1))
}

pub fn sys_brk<P: Platform>(ctx: &mut Ctx<'_, P>, addr: u64) -> Result<usize, Errno> {
    Ok(ctx.process.mm.brk(ctx.platform, addr) as usize)
}

pub fn sys_mmap<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    addr: u64,
    len: u64,
    prot: ProtArg,
    flags: MapFlags,
    fd: Fd,
    offset: u64,
) -> Result<usize, Errno> {
    if !page_aligned(offset) || len == 0 {
        return Err(Errno::EINVAL);
    }
    // SHARED|PRIVATE together is MAP_SHARED_VALIDATE; neither is invalid.
    if !flags.intersects(MapFlags::SHARED | MapFlags::PRIVATE) {
        return Err(Errno::EINVAL);
    }
    page_round_up(len).ok_or(Errno::ENOMEM)?;
    let at = if flags.contains(MapFlags::FIXED_NOREPLACE) {
        Placement::FixedNoReplace(addr)
    } else if flags.contains(MapFlags::FIXED) {
        Placement::Fixed(addr)
    } else {
        Placement::Hint(addr & !(PAGE_SIZE - 1))
    };
    if matches!(at, Placement::Fixed(a) | Placement::FixedNoReplace(a) if !page_aligned(a)) {
        return Err(Errno::EINVAL);
    }
    if !flags.contains(MapFlags::ANONYMOUS) {
        let shared = flags.contains(MapFlags::SHARED);
        return super::file_mmap::mmap_file(ctx, at, len, prot.prot(), shared, fd, offset);
    }
    // Linux's heuristic overcommit: memory is committed page by page on first touch, and a
    // request that could never fit is refused now, unless it only reserves address space.
    let reserves_only = flags.contains(MapFlags::NORESERVE) || prot.prot().is_empty();
    if !reserves_only && len > ctx.platform.memory_stats().0 {
        return Err(Errno::ENOMEM);
    }
    let addr = ctx.process.mm.mmap_anonymous(ctx.platform, at, len, prot.prot())?;
    if flags.contains(MapFlags::GROWSDOWN) {
        ctx.process.mm.set_grows_down(addr);
    }
    if flags.contains(MapFlags::POPULATE) {
        // Commit now rather than on first touch; failing that, undo the mapping.
        if let Err(e) = ctx.process.mm.populate(ctx.platform, addr, len) {
            ctx.process.mm.munmap(ctx.platform, addr, len)?;
            return Err(e);
        }
    }
    Ok(addr as usize)
}

pub fn sys_munmap<P: Platform>(ctx: &mut Ctx<'_, P>, addr: u64, len: u64) -> Result<usize, Errno> {
    if !page_aligned(addr) || len == 0 {
        return Err(Errno::EINVAL);
    }
    super::file_mmap::before_unmap(ctx, addr, len)?;
    ctx.process.mm.munmap(ctx.platform, addr, len)?;
    Ok(0)
}

pub fn sys_mprotect<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    addr: u64,
    len: u64,
    prot: ProtArg,
) -> Result<usize, Errno> {
    if !page_aligned(addr) {
        return Err(Errno::EINVAL);
    }
    let len = page_round_up(len).ok_or(Errno::ENOMEM)?;
    if len == 0 {
        return Ok(0);
    }
    ctx.process
        .mm
        .protect(ctx.platform, addr, len, prot.prot())?;
    Ok(0)
}

/// `MADV_*` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// Drop the pages: the next access sees zeroes (DONTNEED, FREE, REMOVE, DONTNEED_LOCKED).
    Discard,
    /// Hints with no effect here.
    Hint,
    /// Needs privileges the app does not have (HWPOISON, SOFT_OFFLINE).
    Privileged,
}

impl FromReg for Advice {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        match raw as u32 as i32 {
            4 | 8 | 9 | 24 => Ok(Advice::Discard),
            0..=3 | 10..=23 | 25 => Ok(Advice::Hint),
            100 | 101 => Ok(Advice::Privileged),
            _ => Err(ArgError::Invalid),
        }
    }
}

pub fn sys_madvise<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    addr: u64,
    len: u64,
    advice: Advice,
) -> Result<usize, Errno> {
    if !page_aligned(addr) {
        return Err(Errno::EINVAL);
    }
    let len = page_round_up(len).ok_or(Errno::EINVAL)?;
    if advice == Advice::Privileged {
        return Err(Errno::EPERM);
    }
    if len == 0 {
        return Ok(0);
    }
    // Linux: advice on a range with unmapped pages is ENOMEM.
    ctx.process
        .mm
        .check_access(addr, len, Prot::empty())
        .map_err(|_| Errno::ENOMEM)?;
    if advice == Advice::Discard {
        // Reads as zeros afterwards; lazily committed pages go back to the allocator.
        ctx.process.mm.discard(ctx.platform, addr, len)?;
    }
    Ok(0)
}

bitflags::bitflags! {
    /// `MREMAP_*` flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct MremapFlags: u32 {
        const MAYMOVE = 1;
        const FIXED = 2;
        const DONTUNMAP = 4;
    }
}
flags_arg!(MremapFlags);

/// The protection of `[addr, addr+len)`, which must lie within one mapping (Linux: `EFAULT`).
fn range_prot<P: Platform>(ctx: &Ctx<'_, P>, addr: u64, len: u64) -> Result<Prot, Errno> {
    let (_, end, prot, _) = ctx.process.mm.vma_at(addr).ok_or(Errno::EFAULT)?;
    if addr.checked_add(len).is_none_or(|e| e > end) {
        return Err(Errno::EFAULT);
    }
    Ok(prot)
}

pub fn sys_mremap<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: MremapFlags,
    new_addr: u64,
) -> Result<usize, Errno> {
    if !page_aligned(old) || flags.contains(MremapFlags::DONTUNMAP) {
        return Err(Errno::EINVAL);
    }
    let fixed = flags.contains(MremapFlags::FIXED);
    if fixed && (!flags.contains(MremapFlags::MAYMOVE) || !page_aligned(new_addr)) {
        return Err(Errno::EINVAL);
    }
    let old_len = page_round_up(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_round_up(new_len).ok_or(Errno::EINVAL)?;
    if new_len == 0 || old_len == 0 {
        // old_len == 0 duplicates a shared mapping; there are none here.
        return Err(Errno::EINVAL);
    }
    if fixed && new_addr < old + old_len && old < new_addr.saturating_add(new_len) {
        // The new place may not overlap the old one.
        return Err(Errno::EINVAL);
    }
    let prot = range_prot(ctx, old, old_len)?;
    let mm = &mut ctx.process.mm;
    if !fixed && new_len <= old_len {
        if new_len < old_len {
            mm.munmap(ctx.platform, old + new_len, old_len - new_len)?;
        }
        return Ok(old as usize);
    }
    if !fixed {
        // Grow in place when the pages after the mapping are free.
        let grown = old.checked_add(old_len).map(|end| {
            mm.mmap_anonymous(
                ctx.platform,
                Placement::FixedNoReplace(end),
                new_len - old_len,
                prot,
            )
        });
        if let Some(Ok(_)) = grown {
            return Ok(old as usize);
        }
        if !flags.contains(MremapFlags::MAYMOVE) {
            return Err(Errno::ENOMEM);
        }
    }
    // Move: to `new_addr` (replacing what is there) with MREMAP_FIXED, anywhere otherwise.
    let at = if fixed { Placement::Fixed(new_addr) } else { Placement::Hint(0) };
    let new = mm.mmap_anonymous(ctx.platform, at, new_len, prot)?;
    let keep = old_len.min(new_len);
    let mut buf = vec![0u8; PAGE_SIZE as usize];
    mm.populate(ctx.platform, old, keep)?;
    mm.populate(ctx.platform, new, keep)?;
    let mut off = 0;
    while off < keep {
        ctx.platform.read_app(old + off, &mut buf)?;
        ctx.platform.write_app(new + off, &buf)?;
        off += PAGE_SIZE;
    }
    mm.munmap(ctx.platform, old, old_len)?;
    Ok(new as usize)
}

/// mlock, munlock, mlock2: every page is resident already (nothing is ever swapped out), so
/// locking only checks the range is mapped, as Linux does (ENOMEM otherwise).
pub fn sys_mlock<P: Platform>(ctx: &mut Ctx<'_, P>, addr: u64, len: u64) -> Result<usize, Errno> {
    let start = addr & !(PAGE_SIZE - 1);
    let len = page_round_up(len + (addr - start)).ok_or(Errno::ENOMEM)?;
    if len == 0 {
        return Ok(0);
    }
    ctx.process.mm.check_access(start, len, Prot::empty()).map_err(|_| Errno::ENOMEM)?;
    Ok(0)
}

pub fn sys_munlock<P: Platform>(ctx: &mut Ctx<'_, P>, addr: u64, len: u64) -> Result<usize, Errno> {
    sys_mlock(ctx, addr, len)
}

pub fn sys_mlock2<P: Platform>(ctx: &mut Ctx<'_, P>, addr: u64, len: u64, flags: u32) -> Result<usize, Errno> {
    // MLOCK_ONFAULT is the only flag.
    if flags & !1 != 0 {
        return Err(Errno::EINVAL);
    }
    sys_mlock(ctx, addr, len)
}

/// mlockall: MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT; at least one of the first two.
pub fn sys_mlockall<P: Platform>(_ctx: &mut Ctx<'_, P>, flags: u32) -> Result<usize, Errno> {
    if flags == 0 || flags & !7 != 0 || flags & 3 == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn sys_munlockall<P: Platform>(_ctx: &mut Ctx<'_, P>) -> Result<usize, Errno> {
    Ok(0)
}

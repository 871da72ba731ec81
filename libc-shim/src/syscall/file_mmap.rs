//! File-backed mmap.
//!
//! `MAP_PRIVATE` of any mappable file copies the file's bytes into fresh anonymous pages
//! (beyond the end of the file they stay zero). `MAP_SHARED` of a writable file copies the
//! same way and remembers the mapping: msync and munmap write the mapped pages back to the
//! file (clipped to its current size, as a shared mapping cannot grow a file). Writes made
//! through `write()` after the mapping was made are not seen through it; that is the price of
//! the simplest faithful scheme without page sharing.

use alloc::sync::Arc;
use alloc::vec;

use super::Ctx;
use super::args::Fd;
use super::files::desc;
use crate::errno::Errno;
use crate::fd::{File, MmapSupport};
use crate::mm::Placement;
use crate::platform::{PAGE_SIZE, Platform, Prot};

/// A MAP_SHARED mapping of a file, written back on msync/munmap.
#[derive(Clone)]
pub struct SharedMap {
    pub addr: u64,
    pub len: u64,
    pub file: Arc<dyn File>,
    pub offset: u64,
}

pub(crate) fn mmap_file<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    at: Placement,
    len: u64,
    prot: Prot,
    shared: bool,
    fd: Fd,
    offset: u64,
) -> Result<usize, Errno> {
    let d = desc(ctx, fd)?;
    let flags = d.flags();
    let support = d.file.mmap_support();
    if support == MmapSupport::No || flags.contains(crate::fd::StatusFlags::PATH) {
        return Err(if flags.contains(crate::fd::StatusFlags::PATH) {
            Errno::EBADF
        } else {
            Errno::ENODEV
        });
    }
    if !flags.readable() {
        return Err(Errno::EACCES);
    }
    let write_back = shared && prot.contains(Prot::WRITE);
    if write_back {
        if !flags.writable() || flags.contains(crate::fd::StatusFlags::APPEND) {
            return Err(Errno::EACCES);
        }
        if support != MmapSupport::Shared {
            return Err(Errno::ENODEV);
        }
    }
    offset.checked_add(len).ok_or(Errno::EOVERFLOW)?;
    let addr = ctx.process.mm.mmap_anonymous(ctx.platform, at, len, prot)?;
    let len = len.next_multiple_of(PAGE_SIZE);
    // Anonymous pages are committed on first touch; these are about to be written.
    if let Err(e) = ctx.process.mm.populate(ctx.platform, addr, len) {
        let _ = ctx.process.mm.munmap(ctx.platform, addr, len);
        return Err(e);
    }
    let mut buf = vec![0u8; PAGE_SIZE as usize];
    let mut done = 0;
    while done < len {
        let n = match d.file.read(&*ctx, offset + done, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = ctx.process.mm.munmap(ctx.platform, addr, len);
                return Err(e);
            }
        };
        if n == 0 {
            break;
        }
        ctx.platform.write_app(addr + done, &buf[..n])?;
        done += n as u64;
    }
    if write_back {
        ctx.process.fs.shared_maps.push(SharedMap {
            addr,
            len,
            file: d.file.clone(),
            offset,
        });
    }
    Ok(addr as usize)
}

/// Writes the pages of shared mappings inside `[addr, addr+len)` back to their files.
pub(crate) fn write_back<P: Platform>(ctx: &Ctx<'_, P>, addr: u64, len: u64) -> Result<(), Errno> {
    let end = addr.saturating_add(len);
    for m in ctx.process.fs.shared_maps.iter() {
        let (s, e) = (m.addr.max(addr), (m.addr + m.len).min(end));
        if s >= e {
            continue;
        }
        let size = m.file.stat(ctx)?.size;
        let file_start = m.offset + (s - m.addr);
        if file_start >= size {
            continue;
        }
        let n = (e - s).min(size - file_start) as usize;
        let mut buf = vec![0u8; n];
        ctx.process.mm.populate(ctx.platform, s, n as u64)?;
        ctx.platform.read_app(s, &mut buf)?;
        m.file.write(ctx, file_start, &buf)?;
    }
    Ok(())
}

/// Before `[addr, addr+len)` is unmapped: write shared pages back and forget them.
pub(crate) fn before_unmap<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    addr: u64,
    len: u64,
) -> Result<(), Errno> {
    if ctx.process.fs.shared_maps.is_empty() {
        return Ok(());
    }
    write_back(ctx, addr, len)?;
    let end = addr.saturating_add(len);
    let mut kept = alloc::vec::Vec::new();
    for m in core::mem::take(&mut ctx.process.fs.shared_maps) {
        let m_end = m.addr + m.len;
        if m_end <= addr || m.addr >= end {
            kept.push(m);
            continue;
        }
        if m.addr < addr {
            kept.push(SharedMap {
                len: addr - m.addr,
                ..m.clone()
            });
        }
        if m_end > end {
            kept.push(SharedMap {
                addr: end,
                len: m_end - end,
                offset: m.offset + (end - m.addr),
                ..m.clone()
            });
        }
    }
    ctx.process.fs.shared_maps = kept;
    Ok(())
}

const MS_ASYNC: u32 = 1;
const MS_INVALIDATE: u32 = 2;
const MS_SYNC: u32 = 4;

pub fn sys_msync<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    addr: u64,
    len: u64,
    flags: u32,
) -> Result<usize, Errno> {
    if !addr.is_multiple_of(PAGE_SIZE)
        || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
        || flags & (MS_ASYNC | MS_SYNC) == (MS_ASYNC | MS_SYNC)
    {
        return Err(Errno::EINVAL);
    }
    let len = len
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(Errno::ENOMEM)?;
    if len == 0 {
        return Ok(0);
    }
    ctx.process
        .mm
        .check_access(addr, len, Prot::empty())
        .map_err(|_| Errno::ENOMEM)?;
    write_back(ctx, addr, len)?;
    if flags & MS_SYNC != 0 {
        for m in ctx.process.fs.shared_maps.clone() {
            if m.addr < addr + len && addr < m.addr + m.len {
                m.file.sync()?;
            }
        }
    }
    Ok(0)
}

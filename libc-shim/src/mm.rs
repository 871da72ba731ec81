//! The app's address space bookkeeping: which ranges are mapped, with what protection, and
//! where brk and the next mmap go. The page tables themselves belong to the kernel
//! ([`crate::Platform`]); this module decides, the platform executes.
//!
//! [`Mm`] keeps one record per maximal run of pages with the same protection and kind
//! (splitting on partial munmap/mprotect, merging neighbours again), calls the platform for
//! every change, and keeps its records equal to the page tables even when the platform fails.
//! Addresses taken here are app addresses; nothing in this module touches app memory.

use alloc::collections::{BTreeMap, BTreeSet};
use core::cell::RefCell;

use crate::errno::Errno;
use crate::platform::{PAGE_SIZE, Platform, Prot};

/// Fixed points of the app's address space (the low half, as Linux lays it out).
pub mod layout {
    /// Lowest address mmap will hand out without MAP_FIXED (Linux's default mmap_min_addr).
    pub const MMAP_MIN: u64 = 0x1_0000;
    /// Top of the initial stack region (Linux puts it just under 0x7fff_ffff_f000).
    pub const STACK_TOP: u64 = 0x7fff_ffff_e000;
    /// Size of the initial stack mapping.
    pub const STACK_SIZE: u64 = 8 << 20;
    /// mmap without a hint allocates downwards from here (below the stack and its gap).
    pub const MMAP_TOP: u64 = 0x7fff_f000_0000;
    /// Where a static-PIE (ET_DYN) program is loaded (Linux's ELF_ET_DYN_BASE).
    pub const PIE_BASE: u64 = 0x5555_5555_4000;
    /// End of the app's half of the address space.
    pub const USER_END: u64 = 0x8000_0000_0000;
}

use layout::{MMAP_MIN, MMAP_TOP, USER_END};

/// What a mapping is, for /proc/self/maps and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmaKind {
    /// A PT_LOAD segment of the program.
    Program,
    Heap,
    Stack,
    Anonymous,
    /// The vDSO the kernel maps into every app.
    Vdso,
}

/// One mapped range; its start is the key in [`Mm::vmas`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Vma {
    end: u64,
    prot: Prot,
    kind: VmaKind,
    /// Pages are committed on first touch ([`Mm::reserve`]) rather than at map time.
    lazy: bool,
    /// MAP_GROWSDOWN: a touch of the page below extends the record downwards.
    grows_down: bool,
}

/// How far a MAP_GROWSDOWN mapping may grow below where it started (RLIMIT_STACK's default).
pub const GROWSDOWN_LIMIT: u64 = 8 << 20;

/// Tracks the app's mappings. One per process.
#[derive(Debug)]
pub struct Mm {
    /// start -> record; records never overlap and never are empty.
    vmas: BTreeMap<u64, Vma>,
    /// First byte of the heap (page-aligned); 0 until [`Mm::set_brk_base`].
    brk_base: u64,
    /// The current break as the app set it (not rounded); heap pages cover
    /// `[brk_base, page_up(brk))`.
    brk: u64,
    /// Pages of lazy records that are backed by a frame. A `RefCell` so that syscall copies,
    /// which hold the process immutably, can commit pages on the way.
    committed: RefCell<BTreeSet<u64>>,
}

fn page_up(x: u64) -> Option<u64> {
    x.checked_add(PAGE_SIZE - 1).map(|v| v & !(PAGE_SIZE - 1))
}

fn is_aligned(x: u64) -> bool {
    x.is_multiple_of(PAGE_SIZE)
}

/// Page-rounds `len` and checks `[addr, addr+len)` is a non-empty page-aligned range of the
/// app's half; the end on success.
fn checked_range(addr: u64, len: u64) -> Result<u64, Errno> {
    if !is_aligned(addr) || len == 0 {
        return Err(Errno::EINVAL);
    }
    let end = page_up(len)
        .and_then(|l| addr.checked_add(l))
        .ok_or(Errno::EINVAL)?;
    if end > USER_END {
        return Err(Errno::EINVAL);
    }
    Ok(end)
}

/// What the CPU lets the app do with a page of protection `prot`: on x86_64 without
/// protection keys every mapped present page that is writable or executable is readable.
fn effective(prot: Prot) -> Prot {
    if prot.intersects(Prot::WRITE | Prot::EXEC) {
        prot | Prot::READ
    } else {
        prot
    }
}

impl Mm {
    pub fn new() -> Self {
        Mm {
            vmas: BTreeMap::new(),
            brk_base: 0,
            brk: 0,
            committed: RefCell::new(BTreeSet::new()),
        }
    }

    /// Maps zeroed pages at exactly `[addr, addr+len)` (page-aligned by the caller), replacing
    /// whatever was there, and records it.
    pub fn map_fixed<P: Platform>(
        &mut self,
        platform: &P,
        addr: u64,
        len: u64,
        prot: Prot,
        kind: VmaKind,
    ) -> Result<(), Errno> {
        let end = checked_range(addr, len)?;
        self.remove_range(addr, end);
        if let Err(e) = platform.map_zeroed(addr, end - addr, prot) {
            // The old pages may be partly replaced or gone: make both sides agree on "nothing".
            platform.unmap(addr, end - addr);
            return Err(e);
        }
        self.vmas.insert(addr, Vma { end, prot, kind, lazy: false, grows_down: false });
        self.merge_around(addr, end);
        Ok(())
    }

    /// Records `[addr, addr+len)` (page-aligned) without backing it, replacing whatever was
    /// there: each page gets a zeroed frame on first touch ([`Mm::fault_in`], [`Mm::populate`]).
    /// This is how the stack is mapped, so that its 8 MiB cost only what the app uses.
    pub fn reserve<P: Platform>(
        &mut self,
        platform: &P,
        addr: u64,
        len: u64,
        prot: Prot,
        kind: VmaKind,
    ) -> Result<(), Errno> {
        let end = checked_range(addr, len)?;
        self.remove_range(addr, end);
        platform.unmap(addr, end - addr);
        self.vmas.insert(addr, Vma { end, prot, kind, lazy: true, grows_down: false });
        self.merge_around(addr, end);
        Ok(())
    }

    /// Commits the page holding `addr` when it lies in a lazy record whose protection allows
    /// `access` and is not backed yet ([`Commit::Done`]: retry the access). [`Commit::NotMine`]
    /// means the fault is the app's (a real SIGSEGV); [`Commit::OutOfMemory`] that the page
    /// was the app's to touch but no frame is left.
    pub fn fault_in<P: Platform>(&mut self, platform: &P, addr: u64, access: Prot) -> Commit {
        let page = addr & !(PAGE_SIZE - 1);
        self.grow_down_to(page);
        let Some((_, vma)) = self.vmas.range(..=page).next_back() else {
            return Commit::NotMine;
        };
        if !vma.lazy || vma.end <= page || !effective(vma.prot).contains(access) || vma.prot.is_empty() {
            return Commit::NotMine;
        }
        if self.committed.borrow().contains(&page) {
            return Commit::NotMine;
        }
        if platform.map_zeroed(page, PAGE_SIZE, vma.prot).is_err() {
            return Commit::OutOfMemory;
        }
        self.committed.borrow_mut().insert(page);
        Commit::Done
    }

    /// A touch at `page`, below a MAP_GROWSDOWN record and above everything else, extends
    /// that record down to it (within [`GROWSDOWN_LIMIT`] and never onto another mapping).
    fn grow_down_to(&mut self, page: u64) {
        if self.vmas.range(..=page).next_back().is_some_and(|(_, v)| v.end > page) {
            return;
        }
        let Some((&start, above)) = self.vmas.range(page..).next() else { return };
        if !above.grows_down || above.end - page > GROWSDOWN_LIMIT {
            return;
        }
        let grown = above.clone();
        self.vmas.remove(&start);
        self.vmas.insert(page, grown);
    }

    /// Backs every not-yet-committed page of lazy records in `[addr, addr+len)`, so that the
    /// platform can copy there (syscall arguments, the initial stack). `ENOMEM` when out of
    /// frames.
    pub fn populate<P: Platform>(&self, platform: &P, addr: u64, len: u64) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let start = addr & !(PAGE_SIZE - 1);
        let end = page_up(addr.saturating_add(len)).unwrap_or(USER_END);
        // Records are disjoint and sorted: those reaching past `start` are the last ones
        // below `end`, so walk backwards and stop at the first that ends before `start`.
        for (&vstart, vma) in self.vmas.range(..end).rev().take_while(|(_, v)| v.end > start) {
            if !vma.lazy {
                continue;
            }
            let mut page = vstart.max(start);
            while page < vma.end.min(end) {
                if !self.committed.borrow().contains(&page) {
                    platform.map_zeroed(page, PAGE_SIZE, vma.prot)?;
                    self.committed.borrow_mut().insert(page);
                }
                page += PAGE_SIZE;
            }
        }
        Ok(())
    }

    /// Changes protection of a recorded range (and the page tables). `EINVAL` for an unaligned
    /// address, `ENOMEM` if part of the range is not mapped (nothing is changed then).
    pub fn protect<P: Platform>(
        &mut self,
        platform: &P,
        addr: u64,
        len: u64,
        prot: Prot,
    ) -> Result<(), Errno> {
        if len == 0 && is_aligned(addr) {
            return Ok(());
        }
        let end = checked_range(addr, len)?;
        if !self.fully_mapped(addr, end) {
            return Err(Errno::ENOMEM);
        }
        self.split_at(addr);
        self.split_at(end);
        for (_, vma) in self.vmas.range_mut(addr..end) {
            vma.prot = prot;
        }
        platform.protect(addr, end - addr, prot);
        self.merge_around(addr, end);
        Ok(())
    }

    /// Sets where brk starts (page-aligned end of the last loaded segment).
    pub fn set_brk_base(&mut self, addr: u64) {
        let base = page_up(addr).unwrap_or(addr);
        self.brk_base = base;
        self.brk = base;
    }

    /// `Ok` if every byte of `[addr, addr+len)` is mapped with at least `access`; else `EFAULT`.
    /// Readability follows the CPU: writable or executable pages are readable too.
    pub fn check_access(&self, addr: u64, len: u64, access: Prot) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Errno::EFAULT)?;
        let mut at = addr;
        while at < end {
            let (_, vma) = self.vmas.range(..=at).next_back().ok_or(Errno::EFAULT)?;
            if vma.end <= at || !effective(vma.prot).contains(access) {
                return Err(Errno::EFAULT);
            }
            at = vma.end;
        }
        Ok(())
    }

    /// Every mapping as (start, end, protection, kind), in address order.
    pub fn vmas(&self) -> impl Iterator<Item = (u64, u64, Prot, &VmaKind)> {
        self.vmas
            .iter()
            .map(|(&start, v)| (start, v.end, v.prot, &v.kind))
    }

    /// The mapping containing `addr`, as (start, end, protection, kind).
    pub fn vma_at(&self, addr: u64) -> Option<(u64, u64, Prot, &VmaKind)> {
        let (&start, v) = self.vmas.range(..=addr).next_back()?;
        (addr < v.end).then_some((start, v.end, v.prot, &v.kind))
    }

    /// Where the heap starts (0 before [`Mm::set_brk_base`]).
    pub fn brk_base(&self) -> u64 {
        self.brk_base
    }

    /// The current program break.
    pub fn current_brk(&self) -> u64 {
        self.brk
    }

    /// Whether no record overlaps `[start, end)`.
    fn is_free(&self, start: u64, end: u64) -> bool {
        match self.vmas.range(..end).next_back() {
            Some((_, v)) => v.end <= start,
            None => true,
        }
    }

    /// Whether records cover `[start, end)` without holes.
    fn fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.vmas.range(..=at).next_back() {
                Some((_, v)) if v.end > at => at = v.end,
                _ => return false,
            }
        }
        true
    }

    /// Splits the record containing `addr` (strictly inside it) in two at `addr`.
    fn split_at(&mut self, addr: u64) {
        let Some((&start, vma)) = self.vmas.range_mut(..addr).next_back() else {
            return;
        };
        if vma.end <= addr || start == addr {
            return;
        }
        let upper = Vma {
            end: vma.end,
            prot: vma.prot,
            kind: vma.kind.clone(),
            lazy: vma.lazy,
            // Only the lowest piece of a growing record keeps growing.
            grows_down: false,
        };
        vma.end = addr;
        self.vmas.insert(addr, upper);
    }

    /// Forgets every record in `[start, end)`, splitting those that straddle its ends.
    fn remove_range(&mut self, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        let inside: alloc::vec::Vec<u64> = self.vmas.range(start..end).map(|(&s, _)| s).collect();
        for s in inside {
            self.vmas.remove(&s);
        }
        let mut committed = self.committed.borrow_mut();
        let gone: alloc::vec::Vec<u64> = committed.range(start..end).copied().collect();
        for page in gone {
            committed.remove(&page);
        }
    }

    /// Merges records touching `[start, end)` with equal neighbours.
    fn merge_around(&mut self, start: u64, end: u64) {
        let first = self
            .vmas
            .range(..start)
            .next_back()
            .map_or(start, |(&s, _)| s);
        let keys: alloc::vec::Vec<u64> = self.vmas.range(first..=end).map(|(&s, _)| s).collect();
        let Some(&first_key) = keys.first() else {
            return;
        };
        let mut current = first_key;
        for &next in &keys[1..] {
            let (a, b) = (&self.vmas[&current], &self.vmas[&next]);
            if a.end == next && a.prot == b.prot && a.kind == b.kind && a.lazy == b.lazy && !b.grows_down {
                let merged_end = b.end;
                self.vmas.remove(&next);
                self.vmas.get_mut(&current).expect("merge base").end = merged_end;
            } else {
                current = next;
            }
        }
    }

    /// The highest free gap of `len` bytes below `MMAP_TOP` and at or above `MMAP_MIN`.
    fn find_free_top_down(&self, len: u64) -> Option<u64> {
        let mut hi = MMAP_TOP;
        for (&start, vma) in self.vmas.range(..MMAP_TOP).rev() {
            if vma.end < hi {
                let lo = vma.end.max(MMAP_MIN);
                if hi >= lo && hi - lo >= len {
                    return Some(hi - len);
                }
            }
            hi = hi.min(start);
            if hi < MMAP_MIN {
                return None;
            }
        }
        (hi >= MMAP_MIN && hi - MMAP_MIN >= len).then(|| hi - len)
    }
}

/// What [`Mm::fault_in`] did about a page fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The page is backed now: retry the access.
    Done,
    /// Not a lazy page waiting for its first touch: the app's own fault.
    NotMine,
    /// A lazy page, but memory is exhausted.
    OutOfMemory,
}

/// Where an anonymous mapping may go (the decoded MAP_FIXED / MAP_FIXED_NOREPLACE / hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere free; a non-zero hint is tried first (Linux semantics).
    Hint(u64),
    /// Exactly here, replacing existing mappings (MAP_FIXED).
    Fixed(u64),
    /// Exactly here, `EEXIST` if anything is mapped there (MAP_FIXED_NOREPLACE).
    FixedNoReplace(u64),
}

impl Mm {
    /// mmap of anonymous memory: returns the address. `len` is rounded up to pages by the callee;
    /// `EINVAL` for zero length or unaligned fixed address, `ENOMEM` when no room or no frames,
    /// `EPERM` for a fixed address below `MMAP_MIN` (as Linux's mmap_min_addr check).
    pub fn mmap_anonymous<P: Platform>(
        &mut self,
        platform: &P,
        at: Placement,
        len: u64,
        prot: Prot,
    ) -> Result<u64, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let addr = match at {
            Placement::Fixed(addr) | Placement::FixedNoReplace(addr) => {
                if !is_aligned(addr) {
                    return Err(Errno::EINVAL);
                }
                if addr < MMAP_MIN {
                    return Err(Errno::EPERM);
                }
                let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
                if end > USER_END {
                    return Err(Errno::ENOMEM);
                }
                if matches!(at, Placement::FixedNoReplace(_)) && !self.is_free(addr, end) {
                    return Err(Errno::EEXIST);
                }
                addr
            }
            Placement::Hint(hint) => {
                let hint = hint & !(PAGE_SIZE - 1);
                let usable = hint >= MMAP_MIN
                    && hint
                        .checked_add(len)
                        .is_some_and(|end| end <= USER_END && self.is_free(hint, end));
                if usable {
                    hint
                } else {
                    self.find_free_top_down(len).ok_or(Errno::ENOMEM)?
                }
            }
        };
        // Committed page by page on first touch (Linux's overcommit; the mmap syscall refuses
        // what could never fit).
        self.reserve(platform, addr, len, prot, VmaKind::Anonymous)?;
        Ok(addr)
    }

    /// Marks the record starting at `addr` as growing down (MAP_GROWSDOWN): a fault in the
    /// page below it extends it, up to [`GROWSDOWN_LIMIT`] in all.
    pub fn set_grows_down(&mut self, addr: u64) {
        if let Some(v) = self.vmas.get_mut(&addr) {
            v.grows_down = true;
        }
    }

    /// madvise(MADV_DONTNEED/FREE/REMOVE): the range reads as zeros afterwards. Committed pages
    /// of lazy mappings are given back (the next touch gets a fresh zeroed page); eagerly
    /// mapped pages (program, heap) are zeroed in place.
    pub fn discard<P: Platform>(&mut self, platform: &P, addr: u64, len: u64) -> Result<(), Errno> {
        let end = checked_range(addr, len)?;
        let pieces: alloc::vec::Vec<(u64, u64, bool)> = self
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > addr)
            .map(|(&s, v)| (s.max(addr), v.end.min(end), v.lazy))
            .collect();
        let zero = [0u8; PAGE_SIZE as usize];
        for (start, stop, lazy) in pieces {
            let mut page = start;
            while page < stop {
                if lazy {
                    if self.committed.borrow_mut().remove(&page) {
                        platform.unmap(page, PAGE_SIZE);
                    }
                } else {
                    platform.write_app(page, &zero)?;
                }
                page += PAGE_SIZE;
            }
        }
        Ok(())
    }

    /// munmap: unmaps pages (splitting records), returns frames. `EINVAL` for unaligned/zero.
    /// Unmapping a range with nothing mapped succeeds, as on Linux.
    pub fn munmap<P: Platform>(&mut self, platform: &P, addr: u64, len: u64) -> Result<(), Errno> {
        let end = checked_range(addr, len)?;
        self.remove_range(addr, end);
        platform.unmap(addr, end - addr);
        Ok(())
    }

    /// brk(2) semantics: `new == 0` or out of range returns the current break unchanged;
    /// growing maps zeroed RW pages, shrinking unmaps them. Returns the new (or old) break.
    /// Growth never replaces another mapping: the break stays where it was instead.
    pub fn brk<P: Platform>(&mut self, platform: &P, new: u64) -> u64 {
        if self.brk_base == 0 || new < self.brk_base || new > MMAP_TOP {
            return self.brk;
        }
        let (Some(old_end), Some(new_end)) = (page_up(self.brk), page_up(new)) else {
            return self.brk;
        };
        if new_end > old_end {
            if !self.is_free(old_end, new_end) {
                return self.brk;
            }
            if self
                .map_fixed(
                    platform,
                    old_end,
                    new_end - old_end,
                    Prot::READ | Prot::WRITE,
                    VmaKind::Heap,
                )
                .is_err()
            {
                return self.brk;
            }
        } else if new_end < old_end {
            self.remove_range(new_end, old_end);
            platform.unmap(new_end, old_end - new_end);
        }
        self.brk = new;
        new
    }
}

impl Default for Mm {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePlatform;
    use std::vec::Vec;

    const RW: Prot = Prot::READ.union(Prot::WRITE);
    const P: u64 = PAGE_SIZE;

    fn list(mm: &Mm) -> Vec<(u64, u64, Prot, VmaKind)> {
        mm.vmas().map(|(s, e, p, k)| (s, e, p, k.clone())).collect()
    }

    /// Records and the fake's page table describe the same pages with the same protection.
    fn assert_in_sync(mm: &Mm, fake: &FakePlatform) {
        let mut recorded = Vec::new();
        for (&s, v) in &mm.vmas {
            let (e, p) = (v.end, v.prot);
            assert!(s < e && is_aligned(s) && is_aligned(e));
            for page in (s..e).step_by(P as usize) {
                // Lazy records are backed only where touched.
                if !v.lazy || mm.committed.borrow().contains(&page) {
                    recorded.push((page, p));
                }
            }
        }
        let mapped: Vec<(u64, Prot)> = fake
            .pages
            .borrow()
            .iter()
            .map(|(&a, (p, _))| (a, *p))
            .collect();
        assert_eq!(recorded, mapped);
        // No two neighbours that should have been merged.
        let l = list(mm);
        for w in l.windows(2) {
            assert!(
                w[0].1 < w[1].0 || w[0].2 != w[1].2 || w[0].3 != w[1].3,
                "unmerged {w:x?}"
            );
        }
    }

    #[test]
    fn map_fixed_replaces_and_merges() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        mm.map_fixed(&fake, 0x40_0000, 3 * P, RW, VmaKind::Program)
            .unwrap();
        mm.map_fixed(&fake, 0x40_3000, P, RW, VmaKind::Program)
            .unwrap();
        assert_eq!(list(&mm), [(0x40_0000, 0x40_4000, RW, VmaKind::Program)]);
        fake.write_app(0x40_1000, b"old").unwrap();
        mm.map_fixed(&fake, 0x40_1000, P, Prot::READ, VmaKind::Anonymous)
            .unwrap();
        assert_eq!(
            list(&mm),
            [
                (0x40_0000, 0x40_1000, RW, VmaKind::Program),
                (0x40_1000, 0x40_2000, Prot::READ, VmaKind::Anonymous),
                (0x40_2000, 0x40_4000, RW, VmaKind::Program),
            ]
        );
        let mut buf = [1u8; 3];
        fake.read_app(0x40_1000, &mut buf).unwrap();
        assert_eq!(buf, [0; 3], "replaced pages are fresh");
        assert_in_sync(&mm, &fake);
        assert_eq!(
            mm.map_fixed(&fake, 0x40_0001, P, RW, VmaKind::Anonymous),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            mm.map_fixed(&fake, 0x40_0000, 0, RW, VmaKind::Anonymous),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            mm.map_fixed(&fake, USER_END - P, 2 * P, RW, VmaKind::Anonymous),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn protect_splits_and_merges_back() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        mm.map_fixed(&fake, 0x10_0000, 4 * P, RW, VmaKind::Anonymous)
            .unwrap();
        mm.protect(&fake, 0x10_1000, 2 * P, Prot::READ).unwrap();
        assert_eq!(
            list(&mm),
            [
                (0x10_0000, 0x10_1000, RW, VmaKind::Anonymous),
                (0x10_1000, 0x10_3000, Prot::READ, VmaKind::Anonymous),
                (0x10_3000, 0x10_4000, RW, VmaKind::Anonymous),
            ]
        );
        assert_eq!(fake.prot_of(0x10_2000), Some(Prot::READ));
        assert_in_sync(&mm, &fake);
        mm.protect(&fake, 0x10_1000, 2 * P, RW).unwrap();
        assert_eq!(list(&mm), [(0x10_0000, 0x10_4000, RW, VmaKind::Anonymous)]);
        assert_in_sync(&mm, &fake);
        // A hole in the range: ENOMEM and nothing changes.
        mm.munmap(&fake, 0x10_2000, P).unwrap();
        assert_eq!(
            mm.protect(&fake, 0x10_0000, 4 * P, Prot::READ),
            Err(Errno::ENOMEM)
        );
        assert_eq!(fake.prot_of(0x10_0000), Some(RW));
        assert_eq!(
            mm.protect(&fake, 0x10_0800, P, Prot::READ),
            Err(Errno::EINVAL)
        );
        assert_eq!(mm.protect(&fake, 0x10_0000, 0, Prot::READ), Ok(()));
        assert_in_sync(&mm, &fake);
    }

    #[test]
    fn munmap_splits_a_mapping_in_three() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        let a = mm
            .mmap_anonymous(&fake, Placement::Hint(0), 5 * P, RW)
            .unwrap();
        mm.munmap(&fake, a + P, 2 * P).unwrap();
        assert_eq!(
            list(&mm),
            [
                (a, a + P, RW, VmaKind::Anonymous),
                (a + 3 * P, a + 5 * P, RW, VmaKind::Anonymous)
            ]
        );
        assert_in_sync(&mm, &fake);
        // Over a hole and past the end: fine, like Linux.
        mm.munmap(&fake, a, 10 * P).unwrap();
        assert!(list(&mm).is_empty());
        assert_in_sync(&mm, &fake);
        assert_eq!(mm.munmap(&fake, a + 1, P), Err(Errno::EINVAL));
        assert_eq!(mm.munmap(&fake, a, 0), Err(Errno::EINVAL));
        // Length is rounded up to whole pages.
        let b = mm
            .mmap_anonymous(&fake, Placement::Hint(0), 2 * P, RW)
            .unwrap();
        mm.munmap(&fake, b, 1).unwrap();
        assert_eq!(list(&mm), [(b + P, b + 2 * P, RW, VmaKind::Anonymous)]);
    }

    #[test]
    fn mmap_goes_top_down_and_honours_free_hints() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        let a = mm
            .mmap_anonymous(&fake, Placement::Hint(0), 3 * P, RW)
            .unwrap();
        assert_eq!(a, MMAP_TOP - 3 * P);
        let b = mm
            .mmap_anonymous(&fake, Placement::Hint(0), 100, RW)
            .unwrap();
        assert_eq!(
            b,
            a - P,
            "length rounded up to a page, just below the previous"
        );
        // Fill a hole left by munmap when it fits.
        mm.munmap(&fake, a + P, P).unwrap();
        let c = mm
            .mmap_anonymous(&fake, Placement::Hint(0), P, Prot::READ)
            .unwrap();
        assert_eq!(c, a + P);
        // A free hint is honoured (rounded down to its page), a taken one is not.
        let d = mm
            .mmap_anonymous(&fake, Placement::Hint(0x2000_0123), P, RW)
            .unwrap();
        assert_eq!(d, 0x2000_0000);
        let e = mm
            .mmap_anonymous(&fake, Placement::Hint(0x2000_0000), P, RW)
            .unwrap();
        assert_ne!(e, 0x2000_0000);
        assert!((MMAP_MIN..MMAP_TOP).contains(&e));
        // A hint below MMAP_MIN (page 0 included) is never honoured.
        let f = mm.mmap_anonymous(&fake, Placement::Hint(P), P, RW).unwrap();
        assert!(f >= MMAP_MIN);
        assert_eq!(
            mm.mmap_anonymous(&fake, Placement::Hint(0), 0, RW),
            Err(Errno::EINVAL)
        );
        assert_in_sync(&mm, &fake);
    }

    #[test]
    fn mmap_fixed_variants() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        let a = 0x7000_0000;
        assert_eq!(
            mm.mmap_anonymous(&fake, Placement::FixedNoReplace(a), 2 * P, RW),
            Ok(a)
        );
        assert_eq!(
            mm.mmap_anonymous(&fake, Placement::FixedNoReplace(a + P), 2 * P, RW),
            Err(Errno::EEXIST)
        );
        mm.populate(&fake, a, 1).unwrap();
        fake.write_app(a, b"x").unwrap();
        assert_eq!(
            mm.mmap_anonymous(&fake, Placement::Fixed(a), P, Prot::READ),
            Ok(a)
        );
        let mut buf = [9u8];
        mm.populate(&fake, a, 1).unwrap();
        fake.read_app(a, &mut buf).unwrap();
        assert_eq!(buf, [0], "MAP_FIXED replaced the old page with a fresh one");
        assert_eq!(
            mm.mmap_anonymous(&fake, Placement::Fixed(a + 1), P, RW),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            mm.mmap_anonymous(&fake, Placement::Fixed(0), P, RW),
            Err(Errno::EPERM)
        );
        assert_eq!(
            mm.mmap_anonymous(&fake, Placement::Fixed(USER_END - P), 2 * P, RW),
            Err(Errno::ENOMEM)
        );
        assert_in_sync(&mm, &fake);
    }

    #[test]
    fn enomem_when_no_gap_or_no_frames() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        assert_eq!(
            mm.mmap_anonymous(&fake, Placement::Hint(0), MMAP_TOP, RW),
            Err(Errno::ENOMEM)
        );
        // Fill everything between MMAP_MIN and MMAP_TOP with records only (no frames spent):
        // a gap search must then fail.
        mm.vmas.insert(
            MMAP_MIN,
            Vma {
                end: MMAP_TOP,
                prot: RW,
                kind: VmaKind::Anonymous,
                lazy: false,
                grows_down: false,
            },
        );
        assert_eq!(
            mm.mmap_anonymous(&fake, Placement::Hint(0), P, RW),
            Err(Errno::ENOMEM)
        );
        mm.vmas.clear();

        // Anonymous memory is committed on touch (Linux's overcommit): mmap succeeds without
        // frames, touching fails; more than all of RAM is refused at once.
        fake.frames_left.set(2);
        let a = mm
            .mmap_anonymous(&fake, Placement::Hint(0), 2 * P, RW)
            .unwrap();
        mm.populate(&fake, a, 2 * P).unwrap();
        let b = mm.mmap_anonymous(&fake, Placement::Hint(0), P, RW).unwrap();
        assert_eq!(mm.populate(&fake, b, P), Err(Errno::ENOMEM));
        assert_eq!(mm.fault_in(&fake, b, Prot::WRITE), Commit::OutOfMemory);
        mm.munmap(&fake, b, P).unwrap();
        assert_in_sync(&mm, &fake);
        // MAP_FIXED over an existing mapping needs no frames until touched.
        assert_eq!(mm.mmap_anonymous(&fake, Placement::Fixed(a), 3 * P, RW), Ok(a));
        assert_in_sync(&mm, &fake);
    }

    #[test]
    fn check_access_follows_records() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        mm.map_fixed(
            &fake,
            0x40_0000,
            P,
            Prot::READ | Prot::EXEC,
            VmaKind::Program,
        )
        .unwrap();
        mm.map_fixed(&fake, 0x40_1000, P, RW, VmaKind::Program)
            .unwrap();
        assert_eq!(mm.check_access(0x40_0ff0, 0x20, Prot::READ), Ok(()));
        assert_eq!(
            mm.check_access(0x40_0ff0, 0x20, Prot::WRITE),
            Err(Errno::EFAULT)
        );
        assert_eq!(mm.check_access(0x40_1ff0, 0x10, Prot::WRITE), Ok(()));
        assert_eq!(
            mm.check_access(0x40_1ff0, 0x11, Prot::READ),
            Err(Errno::EFAULT)
        );
        assert_eq!(
            mm.check_access(0x3f_fff0, 0x20, Prot::READ),
            Err(Errno::EFAULT)
        );
        assert_eq!(mm.check_access(0, 8, Prot::READ), Err(Errno::EFAULT));
        assert_eq!(
            mm.check_access(u64::MAX - 2, 8, Prot::READ),
            Err(Errno::EFAULT)
        );
        assert_eq!(mm.check_access(0, 0, Prot::READ), Ok(()));
        mm.protect(&fake, 0x40_1000, P, Prot::WRITE).unwrap();
        assert_eq!(
            mm.check_access(0x40_1000, 8, Prot::READ),
            Ok(()),
            "writable implies readable on x86"
        );
        mm.protect(&fake, 0x40_1000, P, Prot::empty()).unwrap();
        assert_eq!(
            mm.check_access(0x40_1000, 8, Prot::READ),
            Err(Errno::EFAULT)
        );
        assert_eq!(mm.vma_at(0x40_0123).map(|v| v.0), Some(0x40_0000));
        assert_eq!(mm.vma_at(0x40_2000), None);
    }

    #[test]
    fn brk_grows_shrinks_and_stops_at_mappings() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        mm.map_fixed(&fake, 0x40_0000, 2 * P, RW, VmaKind::Program)
            .unwrap();
        assert_eq!(mm.brk(&fake, 0x50_0000), 0, "no heap before set_brk_base");
        mm.set_brk_base(0x40_1234);
        let base = 0x40_2000;
        assert_eq!(mm.brk(&fake, 0), base);
        assert_eq!(mm.brk(&fake, base - 1), base, "below the base is refused");
        assert_eq!(mm.brk(&fake, base + 10), base + 10);
        assert_eq!(list(&mm)[1], (base, base + P, RW, VmaKind::Heap));
        let frames = fake.frames_left.get();
        assert_eq!(mm.brk(&fake, base + 100), base + 100);
        assert_eq!(
            fake.frames_left.get(),
            frames,
            "same page: nothing new mapped"
        );
        fake.write_app(base + 50, b"keep").unwrap();
        assert_eq!(mm.brk(&fake, base + 3 * P + 1), base + 3 * P + 1);
        assert_eq!(
            fake.frames_left.get(),
            frames - 3,
            "only the newly needed pages"
        );
        let mut buf = [0u8; 4];
        fake.read_app(base + 50, &mut buf).unwrap();
        assert_eq!(&buf, b"keep", "growth does not remap old heap pages");
        assert_eq!(list(&mm)[1], (base, base + 4 * P, RW, VmaKind::Heap));
        assert_in_sync(&mm, &fake);

        // Shrink unmaps whole pages above the new break.
        assert_eq!(mm.brk(&fake, base + P), base + P);
        assert_eq!(list(&mm)[1], (base, base + P, RW, VmaKind::Heap));
        assert_in_sync(&mm, &fake);

        // Something mapped in the way: the break stays.
        mm.mmap_anonymous(&fake, Placement::FixedNoReplace(base + 4 * P), P, RW)
            .unwrap();
        assert_eq!(mm.brk(&fake, base + 8 * P), base + P);
        assert_eq!(
            mm.brk(&fake, base + 4 * P),
            base + 4 * P,
            "up to the mapping is fine"
        );
        assert_eq!(mm.current_brk(), base + 4 * P);
        assert_in_sync(&mm, &fake);

        // Out of frames: the break stays and records agree.
        fake.frames_left.set(0);
        mm.munmap(&fake, base + 4 * P, P).unwrap();
        fake.frames_left.set(0);
        assert_eq!(mm.brk(&fake, base + 6 * P), base + 4 * P);
        assert_in_sync(&mm, &fake);
        assert_eq!(mm.brk(&fake, base), base);
        assert_eq!(list(&mm).len(), 1);
        assert_in_sync(&mm, &fake);
    }

    #[test]
    fn reserved_pages_are_committed_on_first_touch_only() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        let base = 0x7000_0000;
        mm.reserve(&fake, base, 16 * P, RW, VmaKind::Stack).unwrap();
        assert!(fake.pages.borrow().is_empty(), "reserving spends no frames");
        assert!(mm.check_access(base, 16 * P, RW).is_ok(), "the range is the app's to use");
        // A fault inside commits exactly that page, once.
        assert_eq!(mm.fault_in(&fake, base + 3 * P + 17, Prot::WRITE), Commit::Done);
        assert_eq!(fake.prot_of(base + 3 * P), Some(RW));
        assert_eq!(fake.pages.borrow().len(), 1);
        assert_eq!(mm.fault_in(&fake, base + 3 * P, Prot::WRITE), Commit::NotMine, "an already backed page is a real fault");
        // Outside any record, or an access the protection forbids: the app's fault.
        assert_eq!(mm.fault_in(&fake, base + 16 * P, Prot::READ), Commit::NotMine);
        mm.protect(&fake, base + 8 * P, P, Prot::READ).unwrap();
        assert_eq!(mm.fault_in(&fake, base + 8 * P, Prot::WRITE), Commit::NotMine);
        assert_eq!(mm.fault_in(&fake, base + 8 * P, Prot::READ), Commit::Done);
        assert_eq!(fake.prot_of(base + 8 * P), Some(Prot::READ));
        // populate backs what a syscall is about to copy, keeping committed pages' contents.
        fake.write_app(base + 3 * P, b"keep").unwrap();
        mm.populate(&fake, base + 2 * P + 100, 2 * P).unwrap();
        assert_eq!(fake.pages.borrow().len(), 4);
        let mut b = [0u8; 4];
        fake.read_app(base + 3 * P, &mut b).unwrap();
        assert_eq!(&b, b"keep");
        // munmap forgets committed pages: a new touch gets a fresh zeroed page.
        mm.munmap(&fake, base, 16 * P).unwrap();
        assert!(fake.pages.borrow().is_empty());
        assert_eq!(mm.fault_in(&fake, base + 3 * P, Prot::WRITE), Commit::NotMine);
        mm.reserve(&fake, base, 16 * P, RW, VmaKind::Stack).unwrap();
        assert_eq!(mm.fault_in(&fake, base + 3 * P, Prot::WRITE), Commit::Done);
        fake.read_app(base + 3 * P, &mut b).unwrap();
        assert_eq!(b, [0; 4]);
    }

    #[test]
    fn growsdown_records_extend_on_a_touch_below() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        let top = 0x3e00_0000_0000;
        let a = mm.mmap_anonymous(&fake, Placement::Fixed(top), 4 * P, RW).unwrap();
        mm.set_grows_down(a);
        assert_eq!(mm.fault_in(&fake, a - 1, Prot::WRITE), Commit::Done, "the page just below");
        assert_eq!(mm.vma_at(a - P).map(|v| (v.0, v.1)), Some((a - P, a + 4 * P)));
        assert_eq!(mm.fault_in(&fake, a - 3 * P, Prot::WRITE), Commit::Done, "a few pages below");
        assert_eq!(mm.fault_in(&fake, a - GROWSDOWN_LIMIT - 2 * P, Prot::WRITE), Commit::NotMine, "beyond the limit");
        // A record that does not grow down is not extended.
        let b = mm.mmap_anonymous(&fake, Placement::Fixed(0x2000_0000), P, RW).unwrap();
        assert_eq!(mm.fault_in(&fake, b - P, Prot::WRITE), Commit::NotMine);
        assert_in_sync(&mm, &fake);
    }

    #[test]
    fn populate_reports_out_of_memory() {
        let fake = FakePlatform::default();
        let mut mm = Mm::new();
        mm.reserve(&fake, 0x7000_0000, 8 * P, RW, VmaKind::Stack).unwrap();
        fake.frames_left.set(2);
        assert_eq!(mm.populate(&fake, 0x7000_0000, 8 * P), Err(Errno::ENOMEM));
        assert_eq!(mm.fault_in(&fake, 0x7000_0000 + 7 * P, Prot::READ), Commit::OutOfMemory);
    }
}

//! A fake [`Platform`] for host tests: app memory is a map of 4 KiB pages, the console is a
//! buffer, time is a counter that `sleep_until_ns` advances.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use crate::errno::Errno;
use crate::platform::{PAGE_SIZE, Platform, Prot};

pub struct FakePlatform {
    pub pages: RefCell<BTreeMap<u64, (Prot, Vec<u8>)>>,
    pub console: RefCell<Vec<u8>>,
    /// What the app wrote to fd 2.
    pub errors: RefCell<Vec<u8>>,
    pub input: RefCell<Vec<u8>>,
    pub terminal: bool,
    pub now_ns: Cell<u64>,
    pub epoch_ns: u64,
    pub fs: Cell<u64>,
    /// Frames left; `map_zeroed` fails with ENOMEM when it would go below zero.
    pub frames_left: Cell<u64>,
    /// What `xsave_features` reports (0: FXSAVE only).
    pub xsave: u64,
    /// What `cpu_count` reports.
    pub cpus: usize,
    /// Block device 0, when not empty: its bytes (a whole number of sectors).
    pub disk: RefCell<Vec<u8>>,
    pub disk_read_only: Cell<bool>,
    /// Writes fail with EIO (a failing device).
    pub disk_fail_writes: Cell<bool>,
    /// Writes since the last flush are volatile: `disk_crash` drops them.
    pub disk_unflushed: RefCell<Vec<(u64, Vec<u8>)>>,
    pub disk_flushes: Cell<u64>,
}

impl Default for FakePlatform {
    fn default() -> Self {
        FakePlatform {
            pages: RefCell::new(BTreeMap::new()),
            console: RefCell::new(Vec::new()),
            errors: RefCell::new(Vec::new()),
            input: RefCell::new(Vec::new()),
            terminal: false,
            now_ns: Cell::new(1_000_000),
            epoch_ns: 1_700_000_000_000_000_000,
            fs: Cell::new(0),
            frames_left: Cell::new(1 << 20),
            xsave: 0,
            cpus: 1,
            disk: RefCell::new(Vec::new()),
            disk_read_only: Cell::new(false),
            disk_fail_writes: Cell::new(false),
            disk_unflushed: RefCell::new(Vec::new()),
            disk_flushes: Cell::new(0),
        }
    }
}

impl FakePlatform {
    /// A platform whose block device 0 is `sectors` zeroed sectors.
    pub fn with_disk(sectors: u64) -> FakePlatform {
        let p = FakePlatform::default();
        *p.disk.borrow_mut() = alloc::vec![0; sectors as usize * crate::platform::SECTOR_SIZE];
        p
    }

    /// Simulates power loss: writes not yet flushed are undone, newest first.
    pub fn disk_crash(&self) {
        let mut disk = self.disk.borrow_mut();
        for (off, old) in self.disk_unflushed.borrow_mut().drain(..).rev() {
            disk[off as usize..off as usize + old.len()].copy_from_slice(&old);
        }
    }

    fn disk_range(&self, dev: usize, sector: u64, len: usize) -> Result<core::ops::Range<usize>, Errno> {
        let size = self.disk.borrow().len();
        if dev != 0 || size == 0 {
            return Err(Errno::ENODEV);
        }
        if len % crate::platform::SECTOR_SIZE != 0 {
            return Err(Errno::EINVAL);
        }
        let start = usize::try_from(sector).ok().and_then(|s| s.checked_mul(crate::platform::SECTOR_SIZE)).ok_or(Errno::EIO)?;
        match start.checked_add(len) {
            Some(end) if end <= size => Ok(start..end),
            _ => Err(Errno::EIO),
        }
    }

    pub fn prot_of(&self, addr: u64) -> Option<Prot> {
        self.pages.borrow().get(&(addr & !(PAGE_SIZE - 1))).map(|p| p.0)
    }

    pub fn console_string(&self) -> alloc::string::String {
        alloc::string::String::from_utf8_lossy(&self.console.borrow()).into_owned()
    }

    fn copy(&self, addr: u64, len: usize, mut f: impl FnMut(&mut [u8], usize)) -> Result<(), Errno> {
        let mut pages = self.pages.borrow_mut();
        let mut done = 0usize;
        while done < len {
            let a = addr + done as u64;
            let page = a & !(PAGE_SIZE - 1);
            let off = (a - page) as usize;
            let n = core::cmp::min(len - done, PAGE_SIZE as usize - off);
            let (_, data) = pages.get_mut(&page).ok_or(Errno::EFAULT)?;
            f(&mut data[off..off + n], done);
            done += n;
        }
        Ok(())
    }
}

impl Platform for FakePlatform {
    fn console_write(&self, bytes: &[u8]) {
        self.console.borrow_mut().extend_from_slice(bytes);
    }
    fn console_write_err(&self, bytes: &[u8]) {
        self.errors.borrow_mut().extend_from_slice(bytes);
    }
    fn console_read(&self, buf: &mut [u8]) -> usize {
        let mut input = self.input.borrow_mut();
        let n = core::cmp::min(buf.len(), input.len());
        buf[..n].copy_from_slice(&input[..n]);
        input.drain(..n);
        n
    }
    fn console_is_terminal(&self) -> bool {
        self.terminal
    }
    fn monotonic_ns(&self) -> u64 {
        self.now_ns.get()
    }
    fn realtime_ns(&self) -> u64 {
        self.epoch_ns + self.now_ns.get()
    }
    fn clock_resolution_ns(&self) -> u64 {
        1
    }
    fn sleep_until_ns(&self, deadline: u64) {
        if deadline > self.now_ns.get() {
            self.now_ns.set(deadline);
        }
    }
    fn fill_random(&self, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
    }
    fn set_fs_base(&self, base: u64) {
        self.fs.set(base);
    }
    fn fs_base(&self) -> u64 {
        self.fs.get()
    }
    fn cpu_count(&self) -> usize {
        self.cpus
    }
    fn xsave_features(&self) -> u64 {
        self.xsave
    }
    fn map_zeroed(&self, addr: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        assert_eq!(addr % PAGE_SIZE, 0, "map_zeroed: unaligned address {addr:#x}");
        let count = len.div_ceil(PAGE_SIZE);
        let mut pages = self.pages.borrow_mut();
        let new = (0..count).filter(|i| !pages.contains_key(&(addr + i * PAGE_SIZE))).count() as u64;
        if new > self.frames_left.get() {
            return Err(Errno::ENOMEM);
        }
        self.frames_left.set(self.frames_left.get() - new);
        for i in 0..count {
            pages.insert(addr + i * PAGE_SIZE, (prot, alloc::vec![0; PAGE_SIZE as usize]));
        }
        Ok(())
    }
    fn unmap(&self, addr: u64, len: u64) {
        let mut pages = self.pages.borrow_mut();
        for i in 0..len.div_ceil(PAGE_SIZE) {
            if pages.remove(&(addr + i * PAGE_SIZE)).is_some() {
                self.frames_left.set(self.frames_left.get() + 1);
            }
        }
    }
    fn protect(&self, addr: u64, len: u64, prot: Prot) {
        let mut pages = self.pages.borrow_mut();
        for i in 0..len.div_ceil(PAGE_SIZE) {
            if let Some(p) = pages.get_mut(&(addr + i * PAGE_SIZE)) {
                p.0 = prot;
            }
        }
    }
    fn read_app(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let len = buf.len();
        self.copy(addr, len, |page, done| {
            let n = page.len();
            buf[done..done + n].copy_from_slice(page);
        })
    }
    fn write_app(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.copy(addr, data.len(), |page, done| {
            let n = page.len();
            page.copy_from_slice(&data[done..done + n]);
        })
    }
    fn memory_stats(&self) -> (u64, u64) {
        (256 << 20, self.frames_left.get() * PAGE_SIZE)
    }
    fn block_device_count(&self) -> usize {
        usize::from(!self.disk.borrow().is_empty())
    }
    fn block_info(&self, dev: usize) -> Option<crate::platform::BlockInfo> {
        let size = self.disk.borrow().len();
        (dev == 0 && size > 0).then(|| crate::platform::BlockInfo {
            sectors: (size / crate::platform::SECTOR_SIZE) as u64,
            read_only: self.disk_read_only.get(),
            serial: "vol0".into(),
        })
    }
    fn block_read(&self, dev: usize, sector: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let range = self.disk_range(dev, sector, buf.len())?;
        buf.copy_from_slice(&self.disk.borrow()[range]);
        Ok(())
    }
    fn block_write(&self, dev: usize, sector: u64, data: &[u8]) -> Result<(), Errno> {
        let range = self.disk_range(dev, sector, data.len())?;
        if self.disk_read_only.get() {
            return Err(Errno::EROFS);
        }
        if self.disk_fail_writes.get() {
            return Err(Errno::EIO);
        }
        let mut disk = self.disk.borrow_mut();
        self.disk_unflushed.borrow_mut().push((range.start as u64, disk[range.clone()].to_vec()));
        disk[range].copy_from_slice(data);
        Ok(())
    }
    fn block_flush(&self, dev: usize) -> Result<(), Errno> {
        self.disk_range(dev, 0, 0)?;
        self.disk_unflushed.borrow_mut().clear();
        self.disk_flushes.set(self.disk_flushes.get() + 1);
        Ok(())
    }
}

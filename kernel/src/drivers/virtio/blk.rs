//! virtio-blk (virtio 1.x, 5.2): read, write and flush in 512-byte sectors, read-only
//! devices, capacity and the serial number (which is how bake's `-v` volumes are told apart).
//!
//! One request at a time per device, through a DMA bounce buffer of [`MAX_IO`] bytes. The
//! caller waits with `sti; hlt` until the device's interrupt shows the used ring advanced;
//! a device whose interrupt cannot be routed, or did not arrive for the probe request at
//! attach time, is polled instead.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use libc_shim::Errno;
use spin::Mutex;

use super::{Buffer, IrqSlot, Transport, Virtqueue};
use crate::arch::x86_64::cpu;
use crate::drivers::{clock, lapic};
use crate::mm::mmio::Dma;

pub const SECTOR: usize = 512;
/// Largest transfer per request.
pub const MAX_IO: usize = 64 * 1024;

const F_RO: u64 = 1 << 5;
const F_FLUSH: u64 = 1 << 9;

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;

const S_OK: u8 = 0;

/// A request that takes longer than this is reported as an I/O error.
const REQUEST_TIMEOUT_NS: u64 = 60_000_000_000;

const HEADER: usize = 0;
const STATUS: usize = 16;
const DATA: usize = 4096;

pub struct BlockDevice {
    transport: Box<dyn Transport>,
    vq: Virtqueue,
    dma: Dma,
    /// Wait in HLT for the interrupt (else poll).
    interrupts: bool,
    pub sectors: u64,
    pub read_only: bool,
    pub flush: bool,
    /// The device's serial number (VIRTIO_BLK_T_GET_ID), empty if it has none.
    pub serial: String,
}

static DEVICES: Mutex<Vec<BlockDevice>> = Mutex::new(Vec::new());

/// Starts the driver on a block device found by [`super::init`].
pub fn attach(mut t: Box<dyn Transport>, vector: u8, slot: &'static IrqSlot) {
    let name = t.describe();
    let features = match super::negotiate(t.as_mut(), F_RO | F_FLUSH) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("virtio-blk {name}: {e}");
            return;
        }
    };
    let routed = t.route_interrupt(vector, slot);
    let vq = match super::setup_queue(t.as_mut(), 0, 64) {
        Ok(vq) => vq,
        Err(e) => {
            log::warn!("virtio-blk {name}: {e}");
            return;
        }
    };
    let Some(dma) = Dma::alloc(((DATA + MAX_IO) / 4096) as u64) else {
        log::warn!("virtio-blk {name}: out of memory");
        return;
    };
    let mut cap = [0u8; 8];
    t.read_config(0, &mut cap);
    super::driver_ok(t.as_mut());
    let mut dev = BlockDevice {
        transport: t,
        vq,
        dma,
        interrupts: routed,
        sectors: u64::from_le_bytes(cap),
        read_only: features & F_RO != 0,
        flush: features & F_FLUSH != 0,
        serial: String::new(),
    };
    // The first request doubles as the interrupt check: it waits with a timer as backstop.
    let before = slot.count.load(Ordering::Relaxed);
    let id = dev.request(T_GET_ID, 0, 20, true, true);
    // The device may have finished before the first HLT: its interrupt is then pending
    // behind IF=0 and arrives at the next STI.
    let deadline = clock::monotonic_ns() + 50_000_000;
    while dev.interrupts && slot.count.load(Ordering::Relaxed) == before && clock::monotonic_ns() < deadline {
        lapic::arm_oneshot(5_000_000);
        cpu::idle_once();
    }
    let got_interrupt = slot.count.load(Ordering::Relaxed) != before;
    if dev.interrupts && !got_interrupt {
        log::warn!("virtio-blk {name}: no interrupt arrived on vector {vector:#x}; polling");
        dev.interrupts = false;
    }
    if id.is_ok() {
        let mut raw = [0u8; 20];
        dev.dma.read(DATA, &mut raw);
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        dev.serial = String::from_utf8_lossy(&raw[..end]).into_owned();
    }
    log::info!(
        "virtio-blk {name}: {} sectors ({} MiB){}{}, serial {:?}, {}",
        dev.sectors,
        (dev.sectors * SECTOR as u64) >> 20,
        if dev.read_only { ", read-only" } else { "" },
        if dev.flush { ", flush" } else { ", no flush (write-through)" },
        dev.serial,
        if dev.interrupts { "interrupt-driven" } else { "polled" }
    );
    DEVICES.lock().push(dev);
}

impl BlockDevice {
    /// One request: header, optional data of `len` bytes at DATA, status. `backstop` arms
    /// the LAPIC timer around each HLT so that a missing interrupt cannot hang the wait.
    fn request(&mut self, kind: u32, sector: u64, len: usize, device_writes: bool, backstop: bool) -> Result<(), Errno> {
        let mut header = [0u8; 16];
        header[..4].copy_from_slice(&kind.to_le_bytes());
        header[8..].copy_from_slice(&sector.to_le_bytes());
        self.dma.write(HEADER, &header);
        self.dma.write(STATUS, &[0xff]);
        let mut bufs = [Buffer { phys: self.dma.phys_at(HEADER), len: 16, device_writes: false }; 3];
        let mut n = 1;
        if len > 0 {
            bufs[n] = Buffer { phys: self.dma.phys_at(DATA), len: len as u32, device_writes };
            n += 1;
        }
        bufs[n] = Buffer { phys: self.dma.phys_at(STATUS), len: 1, device_writes: true };
        n += 1;
        self.vq.submit(&bufs[..n]).ok_or(Errno::EIO)?;
        self.transport.notify(self.vq.index);
        let start = clock::monotonic_ns();
        loop {
            if self.vq.pop_used().is_some() {
                break;
            }
            if clock::monotonic_ns() - start > REQUEST_TIMEOUT_NS {
                log::error!("virtio-blk {}: request type {kind} timed out", self.transport.describe());
                return Err(Errno::EIO);
            }
            if self.interrupts {
                if backstop {
                    lapic::arm_oneshot(10_000_000);
                }
                // The used ring was checked with interrupts off; `sti; hlt` cannot miss the
                // interrupt that follows.
                cpu::idle_once();
            } else {
                core::hint::spin_loop();
            }
        }
        let mut status = [0u8];
        self.dma.read(STATUS, &mut status);
        if status[0] != S_OK {
            log::warn!("virtio-blk {}: request type {kind} at sector {sector} failed with status {}", self.transport.describe(), status[0]);
            return Err(Errno::EIO);
        }
        Ok(())
    }

    fn check_range(&self, sector: u64, len: usize) -> Result<(), Errno> {
        if !len.is_multiple_of(SECTOR) {
            return Err(Errno::EINVAL);
        }
        let count = (len / SECTOR) as u64;
        if sector.checked_add(count).is_none_or(|end| end > self.sectors) {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.check_range(sector, buf.len())?;
        for (i, chunk) in buf.chunks_mut(MAX_IO).enumerate() {
            let at = sector + (i * MAX_IO / SECTOR) as u64;
            self.request(T_IN, at, chunk.len(), true, false)?;
            self.dma.read(DATA, chunk);
        }
        Ok(())
    }

    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        self.check_range(sector, buf.len())?;
        for (i, chunk) in buf.chunks(MAX_IO).enumerate() {
            let at = sector + (i * MAX_IO / SECTOR) as u64;
            self.dma.write(DATA, chunk);
            self.request(T_OUT, at, chunk.len(), false, false)?;
        }
        Ok(())
    }

    /// Makes completed writes durable. Without VIRTIO_BLK_F_FLUSH the device has no
    /// volatile cache (writes are durable when they complete), so there is nothing to do.
    pub fn flush(&mut self) -> Result<(), Errno> {
        if !self.flush || self.read_only {
            return Ok(());
        }
        self.request(T_FLUSH, 0, 0, false, false)
    }
}

/// What the rest of the kernel sees of a device.
#[derive(Debug, Clone)]
pub struct Info {
    pub sectors: u64,
    pub read_only: bool,
    pub serial: String,
}

pub fn count() -> usize {
    DEVICES.lock().len()
}

pub fn info(dev: usize) -> Option<Info> {
    DEVICES.lock().get(dev).map(|d| Info { sectors: d.sectors, read_only: d.read_only, serial: d.serial.clone() })
}

pub fn with_device<R>(dev: usize, f: impl FnOnce(&mut BlockDevice) -> Result<R, Errno>) -> Result<R, Errno> {
    let mut devices = DEVICES.lock();
    f(devices.get_mut(dev).ok_or(Errno::ENODEV)?)
}

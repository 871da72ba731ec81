//! virtio-net (virtio 1.x, 5.1): one receive and one transmit queue, Ethernet frames of up
//! to 1514 bytes, the MAC address from the device's configuration.
//!
//! Receive: every descriptor of the receive queue owns one fixed 2 KiB slot of a DMA block,
//! posted once at attach time and re-posted as soon as the network stack has read its frame
//! in place (the stack borrows the slot; nothing is copied). The device's interrupt only
//! raises [`PENDING`] (and wakes the scheduler); frames are taken by the network stack's
//! poll, never in the interrupt handler.
//!
//! Transmit: the stack builds each frame directly in a free 2 KiB slot, which is published;
//! slots come back when the device returns them, which is checked on the next transmit
//! (transmit completions raise no interrupt: VIRTQ_AVAIL_F_NO_INTERRUPT). Notifications to
//! the device are batched: the stack's poll queues its frames and notifies once
//! ([`flush`]); a receive poll re-posts all it consumed with one notification. Neither is
//! sent while the device says it is already looking (VIRTQ_USED_F_NO_NOTIFY).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use libc_shim::Errno;
use spin::Mutex;

use super::{Buffer, IrqSlot, Transport, Virtqueue};
use crate::mm::mmio::Dma;

const F_MAC: u64 = 1 << 5;

const RX_QUEUE: u16 = 0;
const TX_QUEUE: u16 = 1;
/// Descriptors per queue we ask for (the device may offer fewer).
const QUEUE_SIZE: u16 = 256;

/// `struct virtio_net_hdr` with VERSION_1 (num_buffers always present).
const HDR: usize = 12;
/// Largest Ethernet frame without the FCS.
pub const FRAME_MAX: usize = 1514;
/// One buffer slot: header + frame, rounded so that slots never straddle a page.
const SLOT: usize = 2048;

/// Frames re-posted to the receive queue before the device is told (it is also told when a
/// receive poll runs dry).
const RX_NOTIFY_BATCH: u16 = 32;

pub struct NetDevice {
    transport: Box<dyn Transport>,
    rx: Virtqueue,
    tx: Virtqueue,
    rx_mem: Dma,
    tx_mem: Dma,
    /// Descriptor head -> receive slot.
    rx_slot_of: Vec<u16>,
    /// Descriptor head -> transmit slot, for chains in flight.
    tx_slot_of: Vec<u16>,
    tx_free: Vec<u16>,
    /// Receive buffers re-posted since the last notification.
    rx_unnotified: u16,
    /// Frames queued for sending since the last notification.
    tx_unnotified: u16,
}

static DEVICE: Mutex<Option<NetDevice>> = Mutex::new(None);
static TX_FULL: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// Set by the interrupt handler: frames may be waiting.
static PENDING: AtomicBool = AtomicBool::new(false);
/// The device's interrupt vector, 0 while there is no interrupt-driven device.
static VECTOR: AtomicU8 = AtomicU8::new(0);
/// The MAC address, readable without the driver lock.
static MAC: Mutex<Option<[u8; 6]>> = Mutex::new(None);
/// A device is attached whose interrupt could not be routed: the scheduler polls it.
static POLLED: AtomicBool = AtomicBool::new(false);

/// Starts the driver on a network device found by [`super::init`]. Kiln drives one.
pub fn attach(mut t: Box<dyn Transport>, vector: u8, slot: &'static IrqSlot) {
    let name = t.describe();
    if DEVICE.lock().is_some() {
        log::warn!("virtio-net {name}: Kiln drives one network device; this one is ignored");
        return;
    }
    let features = match super::negotiate(t.as_mut(), F_MAC) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("virtio-net {name}: {e}");
            return;
        }
    };
    let routed = t.route_interrupt(vector, slot);
    let (rx, mut tx) = match (super::setup_queue(t.as_mut(), RX_QUEUE, QUEUE_SIZE), super::setup_queue(t.as_mut(), TX_QUEUE, QUEUE_SIZE)) {
        (Ok(rx), Ok(tx)) => (rx, tx),
        (Err(e), _) | (_, Err(e)) => {
            log::warn!("virtio-net {name}: {e}");
            return;
        }
    };
    tx.suppress_interrupts();
    let rx_slots = usize::from(rx.size().min(super::ring::MAX_TRACKED));
    let tx_slots = usize::from(tx.size().min(super::ring::MAX_TRACKED));
    let (Some(rx_mem), Some(tx_mem)) = (Dma::alloc((rx_slots * SLOT / 4096) as u64), Dma::alloc((tx_slots * SLOT / 4096) as u64))
    else {
        log::warn!("virtio-net {name}: out of memory for buffers");
        return;
    };
    let mac = if features & F_MAC != 0 {
        let mut m = [0u8; 6];
        t.read_config(0, &mut m);
        m
    } else {
        // A locally administered address, as Linux picks when the device offers none.
        [0x02, 0x4b, 0x49, 0x4c, 0x4e, 0x01]
    };
    let mut dev = NetDevice {
        transport: t,
        rx,
        tx,
        rx_mem,
        tx_mem,
        rx_slot_of: alloc::vec![0; rx_slots],
        tx_slot_of: alloc::vec![0; tx_slots],
        tx_free: (0..tx_slots as u16).rev().collect(),
        rx_unnotified: 0,
        tx_unnotified: 0,
    };
    for s in 0..rx_slots as u16 {
        dev.post_rx(s);
    }
    super::driver_ok(dev.transport.as_mut());
    dev.transport.notify(RX_QUEUE);
    dev.rx_unnotified = 0;
    log::info!(
        "virtio-net {name}: mac {}, {rx_slots} rx / {tx_slots} tx buffers, {}",
        MacFmt(mac),
        if routed { "interrupt-driven" } else { "polled" }
    );
    if routed {
        VECTOR.store(vector, Ordering::Relaxed);
    } else {
        POLLED.store(true, Ordering::Relaxed);
    }
    *MAC.lock() = Some(mac);
    *DEVICE.lock() = Some(dev);
}

struct MacFmt([u8; 6]);

impl core::fmt::Display for MacFmt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
    }
}

impl NetDevice {
    /// Hands receive slot `s` to the device (without notifying it).
    fn post_rx(&mut self, s: u16) {
        let buf = Buffer { phys: self.rx_mem.phys_at(usize::from(s) * SLOT), len: SLOT as u32, device_writes: true };
        let head = self.rx.submit(&[buf]).expect("a receive descriptor per slot");
        self.rx_slot_of[usize::from(head)] = s;
        self.rx_unnotified += 1;
    }

    /// Tells the device about re-posted receive buffers, unless it said it needs no telling.
    fn notify_rx(&mut self) {
        if self.rx_unnotified > 0 {
            if self.rx.device_wants_notify() {
                self.transport.notify(RX_QUEUE);
            }
            self.rx_unnotified = 0;
        }
    }

    /// The oldest received frame: its slot (taken off the ring until [`NetDevice::repost`])
    /// and length. None when none is waiting. Buffers too short or too long are re-posted.
    fn take_rx(&mut self) -> Option<(u16, usize)> {
        loop {
            let Some((head, len)) = self.rx.pop_used() else {
                self.notify_rx();
                return None;
            };
            let s = self.rx_slot_of[usize::from(head)];
            let len = len as usize;
            if len > HDR && len - HDR <= FRAME_MAX {
                return Some((s, len - HDR));
            }
            log::debug!("virtio-net: dropped a received buffer of {len} bytes");
            self.repost(s);
        }
    }

    /// Gives receive slot `s` back to the device (notifying it once per batch).
    fn repost(&mut self, s: u16) {
        self.post_rx(s);
        if self.rx_unnotified >= RX_NOTIFY_BATCH {
            self.notify_rx();
        }
    }

    /// Takes back the transmit slots the device has finished with.
    fn reclaim_tx(&mut self) {
        while let Some((head, _)) = self.tx.pop_used() {
            self.tx_free.push(self.tx_slot_of[usize::from(head)]);
        }
    }

    fn can_transmit(&mut self) -> bool {
        if self.tx_free.is_empty() {
            self.reclaim_tx();
        }
        !self.tx_free.is_empty()
    }

    /// Queues a frame of `len` bytes that `fill` builds in a transmit slot; the device hears
    /// of it at the next [`NetDevice::flush`].
    fn transmit(&mut self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
        if len > FRAME_MAX {
            return Err(Errno::EMSGSIZE);
        }
        if !self.can_transmit() {
            let n = TX_FULL.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                log::warn!("virtio-net: transmit queue full ({} times)", n + 1);
            }
            return Err(Errno::EAGAIN);
        }
        let s = self.tx_free.pop().expect("checked by can_transmit");
        let off = usize::from(s) * SLOT;
        self.tx_mem.write(off, &[0u8; HDR]);
        assert!(off + HDR + len <= self.tx_mem.len, "transmit slot beyond the DMA block");
        // SAFETY: slot `s` (SLOT bytes at `off`, inside `tx_mem`, which this driver owns for
        // good) is on the free list: the device does not read it until it is published below,
        // and nothing else refers to it. `HDR + len <= SLOT` (len <= FRAME_MAX).
        let frame = unsafe { core::slice::from_raw_parts_mut(self.tx_mem.virt(off + HDR) as *mut u8, len) };
        fill(frame);
        let buf = Buffer { phys: self.tx_mem.phys_at(off), len: (HDR + len) as u32, device_writes: false };
        let Some(head) = self.tx.submit(&[buf]) else {
            self.tx_free.push(s);
            return Err(Errno::EAGAIN);
        };
        self.tx_slot_of[usize::from(head)] = s;
        self.tx_unnotified += 1;
        Ok(())
    }

    /// Tells the device about the frames queued since the last call.
    fn flush(&mut self) {
        if self.tx_unnotified > 0 {
            if self.tx.device_wants_notify() {
                self.transport.notify(TX_QUEUE);
            }
            self.tx_unnotified = 0;
        }
    }
}

/// The MAC address of the network device, if there is one.
pub fn mac() -> Option<[u8; 6]> {
    *MAC.lock()
}

/// Queues a frame of `len` bytes built in place by `fill` (see [`flush`]).
pub fn transmit(len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
    DEVICE.lock().as_mut().ok_or(Errno::ENODEV)?.transmit(len, fill)
}

/// Whether a frame can be queued now.
pub fn can_transmit() -> bool {
    DEVICE.lock().as_mut().is_some_and(NetDevice::can_transmit)
}

/// Notifies the device of the frames queued since the last flush.
pub fn flush() {
    if let Some(d) = DEVICE.lock().as_mut() {
        d.flush();
    }
}

/// Whether a received frame is waiting. When none is, the device hears of the receive
/// buffers re-posted since its last notification.
pub fn rx_ready() -> bool {
    let mut guard = DEVICE.lock();
    let Some(d) = guard.as_mut() else { return false };
    if d.rx.has_used() {
        return true;
    }
    d.notify_rx();
    false
}

/// Hands the oldest received frame to `take`, in place in its receive slot; false when none
/// is waiting. The driver lock is not held while `take` runs (it may transmit).
pub fn receive(take: &mut dyn FnMut(&[u8])) -> bool {
    let (s, len, addr) = {
        let mut guard = DEVICE.lock();
        let Some(d) = guard.as_mut() else { return false };
        let Some((s, len)) = d.take_rx() else { return false };
        (s, len, d.rx_mem.virt(usize::from(s) * SLOT + HDR))
    };
    // SAFETY: `len <= FRAME_MAX`, so the frame lies inside slot `s` of the receive block,
    // which the driver owns for good (the device is never detached). `take_rx` took the slot
    // off the ring: the device does not write it until `repost` below, after the borrow ends,
    // and no other code refers to a slot that is off the ring.
    let frame = unsafe { core::slice::from_raw_parts(addr as *const u8, len) };
    take(frame);
    if let Some(d) = DEVICE.lock().as_mut() {
        d.repost(s);
    }
    true
}

/// Whether the device interrupted since the last call (frames may be waiting). A device
/// without an interrupt always counts as pending, so that it is polled.
pub fn take_pending() -> bool {
    PENDING.swap(false, Ordering::Relaxed) || polled()
}

/// Whether the device has no interrupt and must be polled on a timer.
pub fn polled() -> bool {
    POLLED.load(Ordering::Relaxed)
}

/// Called by the virtio interrupt handler: true when `vector` is the network device's.
pub fn interrupted(vector: u8) -> bool {
    if vector != 0 && VECTOR.load(Ordering::Relaxed) == vector {
        PENDING.store(true, Ordering::Relaxed);
        true
    } else {
        false
    }
}

//! virtio-net (virtio 1.x, 5.1): one receive and one transmit queue, Ethernet frames of up
//! to 1514 bytes, the MAC address from the device's configuration.
//!
//! Receive: every descriptor of the receive queue owns one fixed 2 KiB slot of a DMA block,
//! posted once at attach time and re-posted as soon as its frame has been copied out, so the
//! device always has buffers. The device's interrupt only raises [`PENDING`] (and wakes the
//! scheduler); frames are taken by the network stack's poll, under the driver lock, never in
//! the interrupt handler.
//!
//! Transmit: a frame is copied into a free 2 KiB slot and published; slots come back when the
//! device returns them, which is checked on the next transmit (transmit completions raise no
//! interrupt: VIRTQ_AVAIL_F_NO_INTERRUPT). Notifications to the device are batched: a
//! receive poll re-posts all it consumed with one notification.

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

    /// Copies the oldest received frame into `out`; None when none is waiting.
    fn receive(&mut self, out: &mut [u8]) -> Option<usize> {
        loop {
            let Some((head, len)) = self.rx.pop_used() else {
                if self.rx_unnotified > 0 {
                    self.transport.notify(RX_QUEUE);
                    self.rx_unnotified = 0;
                }
                return None;
            };
            let s = self.rx_slot_of[usize::from(head)];
            let len = len as usize;
            let got = if len > HDR && len - HDR <= out.len() {
                let n = len - HDR;
                self.rx_mem.read(usize::from(s) * SLOT + HDR, &mut out[..n]);
                Some(n)
            } else {
                log::debug!("virtio-net: dropped a received buffer of {len} bytes");
                None
            };
            self.post_rx(s);
            if self.rx_unnotified >= RX_NOTIFY_BATCH {
                self.transport.notify(RX_QUEUE);
                self.rx_unnotified = 0;
            }
            if got.is_some() {
                return got;
            }
        }
    }

    /// Takes back the transmit slots the device has finished with.
    fn reclaim_tx(&mut self) {
        while let Some((head, _)) = self.tx.pop_used() {
            self.tx_free.push(self.tx_slot_of[usize::from(head)]);
        }
    }

    fn transmit(&mut self, frame: &[u8]) -> Result<(), Errno> {
        if frame.len() > FRAME_MAX {
            return Err(Errno::EMSGSIZE);
        }
        self.reclaim_tx();
        let Some(s) = self.tx_free.pop() else {
            let n = TX_FULL.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                log::warn!("virtio-net: transmit queue full ({} times)", n + 1);
            }
            return Err(Errno::EAGAIN);
        };
        let off = usize::from(s) * SLOT;
        self.tx_mem.write(off, &[0u8; HDR]);
        self.tx_mem.write(off + HDR, frame);
        let buf = Buffer { phys: self.tx_mem.phys_at(off), len: (HDR + frame.len()) as u32, device_writes: false };
        let Some(head) = self.tx.submit(&[buf]) else {
            self.tx_free.push(s);
            return Err(Errno::EAGAIN);
        };
        self.tx_slot_of[usize::from(head)] = s;
        self.transport.notify(TX_QUEUE);
        Ok(())
    }
}

/// The MAC address of the network device, if there is one.
pub fn mac() -> Option<[u8; 6]> {
    *MAC.lock()
}

pub fn transmit(frame: &[u8]) -> Result<(), Errno> {
    DEVICE.lock().as_mut().ok_or(Errno::ENODEV)?.transmit(frame)
}

pub fn receive(out: &mut [u8]) -> Option<usize> {
    DEVICE.lock().as_mut()?.receive(out)
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

//! Virtio devices (virtio 1.x, modern only): the split virtqueue, the device initialisation
//! sequence, and the two transports behind one [`Transport`] trait, virtio-mmio (microvm,
//! Firecracker) and virtio-pci (pc, q35, cloud-hypervisor). Device drivers (block now, net
//! next) see only the trait and [`Virtqueue`].
//!
//! Interrupts: each device gets its own vector from [`VECTOR_BASE`]. virtio-mmio devices raise
//! an IOAPIC line (level-triggered), virtio-pci devices send MSI-X messages (edge). The handler
//! ([`interrupt`]) must not take any driver lock (the driver may be waiting in HLT holding it),
//! so each vector has a lock-free [`IrqSlot`]: it acknowledges the device (virtio-mmio's
//! InterruptACK) and counts the interrupt; the driver sees the used ring advance.

pub mod blk;
pub mod mmio;
pub mod net;
pub mod pci;
pub mod queue;
pub mod ring;

use core::sync::atomic::{AtomicU64, Ordering};

pub use queue::{Buffer, Virtqueue};

pub const STATUS_ACKNOWLEDGE: u8 = 1;
pub const STATUS_DRIVER: u8 = 2;
pub const STATUS_DRIVER_OK: u8 = 4;
pub const STATUS_FEATURES_OK: u8 = 8;
pub const STATUS_FAILED: u8 = 128;

pub const F_VERSION_1: u64 = 1 << 32;

pub const DEVICE_NET: u32 = 1;
pub const DEVICE_BLOCK: u32 = 2;

/// First interrupt vector for virtio devices; device `n` uses `VECTOR_BASE + n`.
pub const VECTOR_BASE: u8 = 0x40;
pub const MAX_DEVICES: usize = 16;

/// The register interface of one device, whichever bus it sits on.
pub trait Transport: Send {
    /// Virtio device type (1 net, 2 block, ...).
    fn device_type(&self) -> u32;
    fn device_features(&mut self) -> u64;
    fn set_driver_features(&mut self, features: u64);
    fn status(&mut self) -> u8;
    fn set_status(&mut self, status: u8);
    /// Largest size queue `q` accepts; 0 if the queue does not exist.
    fn max_queue_size(&mut self, q: u16) -> u16;
    /// Tells the device where queue `vq.index` lives and enables it; with MSI-X, routes the
    /// queue's interrupts to table entry 0.
    fn enable_queue(&mut self, vq: &Virtqueue);
    /// Tells the device queue `q` has new buffers.
    fn notify(&mut self, q: u16);
    /// Reads the device-specific configuration at `off`.
    fn read_config(&mut self, off: u64, out: &mut [u8]);
    /// Routes the device's interrupts to `vector` on the boot CPU; false when the device has
    /// no usable interrupt (the driver then polls).
    fn route_interrupt(&mut self, vector: u8, slot: &'static IrqSlot) -> bool;
    /// Where the device is, for log lines.
    fn describe(&self) -> alloc::string::String;
}

/// Why a device could not be initialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// The device does not offer VIRTIO_F_VERSION_1 (a legacy-only device).
    NotModern,
    /// The device refused the features we accepted.
    FeaturesRefused,
    /// A queue the driver needs is missing.
    NoQueue,
    OutOfMemory,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            InitError::NotModern => "legacy-only device (no VIRTIO_F_VERSION_1)",
            InitError::FeaturesRefused => "device refused the negotiated features",
            InitError::NoQueue => "device has no usable queue",
            InitError::OutOfMemory => "out of memory for the virtqueue",
        })
    }
}

/// Steps 1-6 of device initialisation (virtio 1.x, 3.1.1): reset, acknowledge, negotiate
/// `wanted` (VERSION_1 is required and always included). Returns the features in force.
pub fn negotiate(t: &mut dyn Transport, wanted: u64) -> Result<u64, InitError> {
    t.set_status(0);
    // A reset completes when the status reads back 0.
    for _ in 0..1_000_000 {
        if t.status() == 0 {
            break;
        }
        core::hint::spin_loop();
    }
    t.set_status(STATUS_ACKNOWLEDGE);
    t.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    let offered = t.device_features();
    if offered & F_VERSION_1 == 0 {
        t.set_status(STATUS_FAILED);
        return Err(InitError::NotModern);
    }
    let features = offered & (wanted | F_VERSION_1);
    t.set_driver_features(features);
    t.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if t.status() & STATUS_FEATURES_OK == 0 {
        t.set_status(STATUS_FAILED);
        return Err(InitError::FeaturesRefused);
    }
    Ok(features)
}

/// Creates queue `q` with at most `want` entries and hands it to the device.
pub fn setup_queue(t: &mut dyn Transport, q: u16, want: u16) -> Result<Virtqueue, InitError> {
    let max = t.max_queue_size(q);
    if max == 0 {
        return Err(InitError::NoQueue);
    }
    // The largest power of two not above either bound.
    let size = 1u16 << (15 - want.min(max).leading_zeros().min(15));
    let vq = Virtqueue::new(q, size).ok_or(InitError::OutOfMemory)?;
    t.enable_queue(&vq);
    Ok(vq)
}

/// The last step: the driver is ready.
pub fn driver_ok(t: &mut dyn Transport) {
    let s = t.status();
    t.set_status(s | STATUS_DRIVER_OK);
}

/// What the interrupt handler knows about one device, without locks.
pub struct IrqSlot {
    /// Virtual address of a virtio-mmio device's registers (its InterruptStatus/ACK), or 0
    /// when nothing needs acknowledging (MSI-X).
    pub mmio_ack: AtomicU64,
    /// Interrupts taken.
    pub count: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY_SLOT: IrqSlot = IrqSlot { mmio_ack: AtomicU64::new(0), count: AtomicU64::new(0) };
pub static IRQ_SLOTS: [IrqSlot; MAX_DEVICES] = [EMPTY_SLOT; MAX_DEVICES];

/// Called from `interrupt_dispatch` for vectors `VECTOR_BASE..VECTOR_BASE + MAX_DEVICES`.
pub fn interrupt(frame: &mut crate::arch::x86_64::interrupts::TrapFrame) {
    let vector = frame.vector as u8;
    if let Some(slot) = IRQ_SLOTS.get(usize::from(vector.wrapping_sub(VECTOR_BASE))) {
        let regs = slot.mmio_ack.load(Ordering::Relaxed);
        if regs != 0 {
            mmio::ack_interrupt(regs);
        }
        slot.count.fetch_add(1, Ordering::Relaxed);
    }
    crate::drivers::lapic::eoi();
    if net::interrupted(vector) {
        // Frames arrived: the scheduler runs the network stack and wakes who waits for them.
        crate::sched::device_interrupt(frame);
    }
}

/// Whether `vector` belongs to a virtio device.
pub fn is_device_vector(vector: u64) -> bool {
    (u64::from(VECTOR_BASE)..u64::from(VECTOR_BASE) + MAX_DEVICES as u64).contains(&vector)
}

/// Finds the virtio devices (virtio-mmio from the command line, virtio-pci on PCI bus 0) and
/// starts a driver for each one Kiln knows. Call once, after the LAPIC is up.
pub fn init(cmdline: &str) {
    let mut transports: alloc::vec::Vec<alloc::boxed::Box<dyn Transport>> = alloc::vec::Vec::new();
    for t in mmio::probe(cmdline) {
        transports.push(alloc::boxed::Box::new(t));
    }
    for t in pci::probe() {
        transports.push(alloc::boxed::Box::new(t));
    }
    for (n, t) in transports.into_iter().enumerate() {
        if n >= MAX_DEVICES {
            log::warn!("virtio: more than {MAX_DEVICES} devices; ignoring {}", t.describe());
            continue;
        }
        let vector = VECTOR_BASE + n as u8;
        match t.device_type() {
            DEVICE_BLOCK => blk::attach(t, vector, &IRQ_SLOTS[n]),
            DEVICE_NET => net::attach(t, vector, &IRQ_SLOTS[n]),
            other => log::info!("virtio: {} is device type {other}, which Kiln has no driver for", t.describe()),
        }
    }
}

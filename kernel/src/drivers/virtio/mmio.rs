//! The virtio-mmio transport, version 2 (virtio 1.x, 4.2). Devices are named on the kernel
//! command line as `virtio_mmio.device=SIZE@ADDR:IRQ` (QEMU's microvm with `acpi=off`, and
//! Firecracker), and interrupt through an IOAPIC line.

use alloc::string::String;
use alloc::vec::Vec;

use super::{IrqSlot, Transport, Virtqueue};
use crate::drivers::ioapic;
use crate::mm::mmio::{self, Regs};

const MAGIC: u64 = 0x000;
const VERSION: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const INTERRUPT_STATUS: u64 = 0x060;
const INTERRUPT_ACK: u64 = 0x064;
const STATUS: u64 = 0x070;
const QUEUE_DESC: u64 = 0x080;
const QUEUE_DRIVER: u64 = 0x090;
const QUEUE_DEVICE: u64 = 0x0a0;
const CONFIG: u64 = 0x100;

const MAGIC_VALUE: u32 = 0x7472_6976; // "virt"

/// One `virtio_mmio.device=` word: register block size, address and interrupt line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdlineDevice {
    pub size: u64,
    pub addr: u64,
    pub irq: u32,
}

fn parse_number(s: &str) -> Option<u64> {
    let (digits, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1 << 10),
        b'M' | b'm' => (&s[..s.len() - 1], 1 << 20),
        b'G' | b'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let v = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    v.checked_mul(mult)
}

/// Parses `SIZE@ADDR:IRQ` (Linux's format; an optional `:ID` after the IRQ is ignored).
pub fn parse_device(value: &str) -> Option<CmdlineDevice> {
    let (size, rest) = value.split_once('@')?;
    let mut parts = rest.split(':');
    let addr = parse_number(parts.next()?)?;
    let irq = parse_number(parts.next()?)?;
    Some(CmdlineDevice { size: parse_number(size)?, addr, irq: u32::try_from(irq).ok()? })
}

pub struct MmioTransport {
    regs: Regs,
    dev: CmdlineDevice,
    device_id: u32,
}

/// The devices named on the command line that answer as virtio-mmio version 2.
pub fn probe(cmdline: &str) -> Vec<MmioTransport> {
    let mut out = Vec::new();
    for word in cmdline.split_ascii_whitespace() {
        let Some(value) = word.strip_prefix("virtio_mmio.device=") else { continue };
        let Some(dev) = parse_device(value) else {
            log::warn!("virtio-mmio: cannot parse {word:?}");
            continue;
        };
        let Some(base) = mmio::map(dev.addr, dev.size.max(0x200)) else {
            log::warn!("virtio-mmio: cannot map {:#x}", dev.addr);
            continue;
        };
        let regs = Regs { base };
        if regs.read32(MAGIC) != MAGIC_VALUE {
            log::warn!("virtio-mmio: no device at {:#x}", dev.addr);
            continue;
        }
        let version = regs.read32(VERSION);
        let device_id = regs.read32(DEVICE_ID);
        if device_id == 0 {
            continue; // an empty slot
        }
        if version != 2 {
            log::warn!(
                "virtio-mmio: device at {:#x} is legacy (version {version}); Kiln drives modern devices only (QEMU: -global virtio-mmio.force-legacy=false)",
                dev.addr
            );
            continue;
        }
        out.push(MmioTransport { regs, dev, device_id });
    }
    out
}

/// Acknowledges whatever the device at `regs_va` signalled (called from the interrupt
/// handler, before the LAPIC EOI, so that the level-triggered line drops first).
pub fn ack_interrupt(regs_va: u64) {
    let regs = Regs { base: regs_va };
    let pending = regs.read32(INTERRUPT_STATUS);
    if pending != 0 {
        regs.write32(INTERRUPT_ACK, pending);
    }
}

impl MmioTransport {
    fn write64(&self, off: u64, v: u64) {
        self.regs.write32(off, v as u32);
        self.regs.write32(off + 4, (v >> 32) as u32);
    }
}

impl Transport for MmioTransport {
    fn device_type(&self) -> u32 {
        self.device_id
    }

    fn device_features(&mut self) -> u64 {
        self.regs.write32(DEVICE_FEATURES_SEL, 0);
        let lo = self.regs.read32(DEVICE_FEATURES);
        self.regs.write32(DEVICE_FEATURES_SEL, 1);
        let hi = self.regs.read32(DEVICE_FEATURES);
        (u64::from(hi) << 32) | u64::from(lo)
    }

    fn set_driver_features(&mut self, features: u64) {
        self.regs.write32(DRIVER_FEATURES_SEL, 0);
        self.regs.write32(DRIVER_FEATURES, features as u32);
        self.regs.write32(DRIVER_FEATURES_SEL, 1);
        self.regs.write32(DRIVER_FEATURES, (features >> 32) as u32);
    }

    fn status(&mut self) -> u8 {
        self.regs.read32(STATUS) as u8
    }

    fn set_status(&mut self, status: u8) {
        self.regs.write32(STATUS, u32::from(status));
    }

    fn max_queue_size(&mut self, q: u16) -> u16 {
        self.regs.write32(QUEUE_SEL, u32::from(q));
        if self.regs.read32(QUEUE_READY) != 0 {
            return 0;
        }
        self.regs.read32(QUEUE_NUM_MAX).min(32768) as u16
    }

    fn enable_queue(&mut self, vq: &Virtqueue) {
        let (desc, avail, used) = vq.addresses();
        self.regs.write32(QUEUE_SEL, u32::from(vq.index));
        self.regs.write32(QUEUE_NUM, u32::from(vq.size()));
        self.write64(QUEUE_DESC, desc);
        self.write64(QUEUE_DRIVER, avail);
        self.write64(QUEUE_DEVICE, used);
        self.regs.write32(QUEUE_READY, 1);
    }

    fn notify(&mut self, q: u16) {
        self.regs.write32(QUEUE_NOTIFY, u32::from(q));
    }

    fn read_config(&mut self, off: u64, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.regs.read8(CONFIG + off + i as u64);
        }
    }

    fn route_interrupt(&mut self, vector: u8, slot: &'static IrqSlot) -> bool {
        slot.mmio_ack.store(self.regs.base, core::sync::atomic::Ordering::Relaxed);
        ioapic::route(self.dev.irq, vector, ioapic::Trigger::Level)
    }

    fn describe(&self) -> String {
        alloc::format!("virtio-mmio@{:#x} (irq {})", self.dev.addr, self.dev.irq)
    }
}

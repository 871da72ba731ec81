//! The virtio-pci transport, modern interface (virtio 1.x, 4.1): vendor capabilities point
//! at the common, notify, ISR and device configuration structures inside memory BARs, which
//! are mapped uncached. Interrupts are MSI-X.

use alloc::string::String;
use alloc::vec::Vec;

use super::{IrqSlot, Transport, Virtqueue};
use crate::drivers::pci::{self, Function};
use crate::mm::mmio::{self, Regs};

const VENDOR_VIRTIO: u16 = 0x1af4;
const CAP_VENDOR: u8 = 0x09;
const CFG_COMMON: u8 = 1;
const CFG_NOTIFY: u8 = 2;
const CFG_ISR: u8 = 3;
const CFG_DEVICE: u8 = 4;

// Common configuration structure.
const DEVICE_FEATURE_SELECT: u64 = 0x00;
const DEVICE_FEATURE: u64 = 0x04;
const DRIVER_FEATURE_SELECT: u64 = 0x08;
const DRIVER_FEATURE: u64 = 0x0c;
const CONFIG_MSIX_VECTOR: u64 = 0x10;
const DEVICE_STATUS: u64 = 0x14;
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_SIZE: u64 = 0x18;
const QUEUE_MSIX_VECTOR: u64 = 0x1a;
const QUEUE_ENABLE: u64 = 0x1c;
const QUEUE_NOTIFY_OFF: u64 = 0x1e;
const QUEUE_DESC: u64 = 0x20;
const QUEUE_DRIVER: u64 = 0x28;
const QUEUE_DEVICE: u64 = 0x30;

const NO_VECTOR: u16 = 0xffff;

pub struct PciTransport {
    func: Function,
    device_type: u32,
    common: Regs,
    notify: Regs,
    notify_multiplier: u32,
    #[allow(dead_code)]
    isr: Regs,
    device: Regs,
    msix: bool,
}

/// Virtio device type from the PCI device id: 0x1040+type (modern), or the transitional ids.
fn device_type(device_id: u16) -> Option<u32> {
    match device_id {
        0x1040..=0x107f => Some(u32::from(device_id - 0x1040)),
        0x1000 => Some(super::DEVICE_NET),
        0x1001 => Some(super::DEVICE_BLOCK),
        _ => None,
    }
}

/// The virtio functions on bus 0 that have the modern capabilities.
pub fn probe() -> Vec<PciTransport> {
    let mut out = Vec::new();
    if !pci::present() {
        return out;
    }
    for func in pci::scan_bus0() {
        let (vendor, device) = func.vendor_device();
        if vendor != VENDOR_VIRTIO {
            continue;
        }
        let Some(device_type) = device_type(device) else { continue };
        match PciTransport::new(func, device_type) {
            Some(t) => out.push(t),
            None => log::warn!(
                "virtio-pci: {:02x}:{:02x}.{} has no modern interface; Kiln drives modern devices only",
                func.bus,
                func.dev,
                func.func
            ),
        }
    }
    out
}

impl PciTransport {
    fn new(func: Function, device_type: u32) -> Option<PciTransport> {
        func.enable();
        let (mut common, mut notify, mut isr, mut device) = (None, None, None, None);
        let mut notify_multiplier = 0;
        for (cap, id) in func.capabilities() {
            if id != CAP_VENDOR {
                continue;
            }
            let cfg_type = func.read8(cap + 3);
            let bar = func.read8(cap + 4);
            let offset = u64::from(func.read32(cap + 8));
            let length = u64::from(func.read32(cap + 12));
            // The first capability of each type is the preferred one.
            let slot = match cfg_type {
                CFG_COMMON => &mut common,
                CFG_NOTIFY => &mut notify,
                CFG_ISR => &mut isr,
                CFG_DEVICE => &mut device,
                _ => continue,
            };
            if slot.is_some() {
                continue;
            }
            let Some(base) = func.bar(bar) else { continue };
            let va = mmio::map(base + offset, length.max(4))?;
            *slot = Some(Regs { base: va });
            if cfg_type == CFG_NOTIFY {
                notify_multiplier = func.read32(cap + 16);
            }
        }
        Some(PciTransport {
            func,
            device_type,
            common: common?,
            notify: notify?,
            notify_multiplier,
            isr: isr?,
            device: device.unwrap_or(Regs { base: 0 }),
            msix: false,
        })
    }
}

impl Transport for PciTransport {
    fn device_type(&self) -> u32 {
        self.device_type
    }

    fn device_features(&mut self) -> u64 {
        self.common.write32(DEVICE_FEATURE_SELECT, 0);
        let lo = self.common.read32(DEVICE_FEATURE);
        self.common.write32(DEVICE_FEATURE_SELECT, 1);
        let hi = self.common.read32(DEVICE_FEATURE);
        (u64::from(hi) << 32) | u64::from(lo)
    }

    fn set_driver_features(&mut self, features: u64) {
        self.common.write32(DRIVER_FEATURE_SELECT, 0);
        self.common.write32(DRIVER_FEATURE, features as u32);
        self.common.write32(DRIVER_FEATURE_SELECT, 1);
        self.common.write32(DRIVER_FEATURE, (features >> 32) as u32);
    }

    fn status(&mut self) -> u8 {
        self.common.read8(DEVICE_STATUS)
    }

    fn set_status(&mut self, status: u8) {
        self.common.write8(DEVICE_STATUS, status);
    }

    fn max_queue_size(&mut self, q: u16) -> u16 {
        self.common.write16(QUEUE_SELECT, q);
        if self.common.read16(QUEUE_ENABLE) != 0 {
            return 0;
        }
        self.common.read16(QUEUE_SIZE)
    }

    fn enable_queue(&mut self, vq: &Virtqueue) {
        let (desc, avail, used) = vq.addresses();
        let c = self.common;
        c.write16(QUEUE_SELECT, vq.index);
        c.write16(QUEUE_SIZE, vq.size());
        for (off, v) in [(QUEUE_DESC, desc), (QUEUE_DRIVER, avail), (QUEUE_DEVICE, used)] {
            c.write32(off, v as u32);
            c.write32(off + 4, (v >> 32) as u32);
        }
        if self.msix {
            c.write16(QUEUE_MSIX_VECTOR, 0);
            if c.read16(QUEUE_MSIX_VECTOR) == NO_VECTOR {
                log::warn!("{}: no MSI-X vector for queue {}; polling", self.describe(), vq.index);
            }
        }
        c.write16(QUEUE_ENABLE, 1);
    }

    fn notify(&mut self, q: u16) {
        self.common.write16(QUEUE_SELECT, q);
        let off = u64::from(self.common.read16(QUEUE_NOTIFY_OFF)) * u64::from(self.notify_multiplier);
        self.notify.write16(off, q);
    }

    fn read_config(&mut self, off: u64, out: &mut [u8]) {
        if self.device.base == 0 {
            out.fill(0);
            return;
        }
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.device.read8(off + i as u64);
        }
    }

    fn route_interrupt(&mut self, vector: u8, _slot: &'static IrqSlot) -> bool {
        // MSI-X messages are edge-triggered and need no acknowledgement beyond the EOI.
        self.msix = self.func.enable_msix(vector);
        if self.msix {
            self.common.write16(CONFIG_MSIX_VECTOR, NO_VECTOR);
        }
        self.msix
    }

    fn describe(&self) -> String {
        alloc::format!("virtio-pci {:02x}:{:02x}.{}", self.func.bus, self.func.dev, self.func.func)
    }
}

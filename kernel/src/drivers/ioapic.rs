//! The I/O APIC: routes a device's interrupt line (a GSI) to a vector on the boot CPU.
//!
//! QEMU places the first IOAPIC (GSIs 0-23) at 0xfec00000; microvm adds a second one
//! (`ioapic2`, GSIs 24-47) at 0xfec10000 and wires its virtio-mmio slots there. Each chip's
//! size comes from its version register, so a missing second chip is noticed (it reads all
//! ones).

use spin::Mutex;

use crate::mm::mmio::{self, Regs};

const CHIPS: [(u64, u32); 2] = [(0xfec0_0000, 0), (0xfec1_0000, 24)];
const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;

/// How the line signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// ISA-style lines (virtio-net may use them on other machines).
    #[allow(dead_code)]
    Edge,
    /// Active high, level: the device holds the line until acknowledged.
    Level,
}

/// Mapped chips: (registers, first GSI, number of pins).
static MAPPED: Mutex<[Option<(Regs, u32, u32)>; 2]> = Mutex::new([None, None]);

fn read(r: Regs, reg: u32) -> u32 {
    r.write32(IOREGSEL, reg);
    r.read32(IOWIN)
}

fn write(r: Regs, reg: u32, v: u32) {
    r.write32(IOREGSEL, reg);
    r.write32(IOWIN, v);
}

fn chip_for(gsi: u32) -> Option<(Regs, u32)> {
    let mut mapped = MAPPED.lock();
    for (i, (phys, base)) in CHIPS.iter().enumerate() {
        if mapped[i].is_none() {
            let va = mmio::map(*phys, 0x20)?;
            let regs = Regs { base: va };
            let version = read(regs, 1);
            let pins = if version == u32::MAX { 0 } else { ((version >> 16) & 0xff) + 1 };
            mapped[i] = Some((regs, *base, pins));
        }
        if let Some((regs, first, pins)) = mapped[i]
            && (first..first + pins).contains(&gsi)
        {
            return Some((regs, gsi - first));
        }
    }
    None
}

/// Sends `gsi` to `vector` on APIC 0 (fixed delivery, unmasked). False when no IOAPIC has
/// that line.
pub fn route(gsi: u32, vector: u8, trigger: Trigger) -> bool {
    let Some((regs, pin)) = chip_for(gsi) else {
        log::warn!("ioapic: no IOAPIC pin for GSI {gsi}");
        return false;
    };
    let mut low = u32::from(vector);
    if trigger == Trigger::Level {
        low |= 1 << 15;
    }
    write(regs, 0x10 + 2 * pin, 1 << 16); // masked while changing
    write(regs, 0x11 + 2 * pin, 0); // destination APIC 0
    write(regs, 0x10 + 2 * pin, low);
    log::debug!("ioapic: GSI {gsi} -> vector {vector:#x} ({trigger:?})");
    true
}

//! PCI configuration space through the legacy ports 0xCF8/0xCFC (pc and q35 both have them),
//! BARs, the capability list, and MSI-X.

use core::arch::asm;

use crate::arch::x86_64::port::outl;
use crate::mm::mmio::{self, Regs};

const CONFIG_ADDRESS: u16 = 0xCF8;
const CONFIG_DATA: u16 = 0xCFC;

const CAP_MSIX: u8 = 0x11;

fn inl(port: u16) -> u32 {
    let value: u32;
    // SAFETY: reading the PCI configuration data port only returns a register's value.
    unsafe { asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags)) }
    value
}

/// A PCI function on bus 0..255.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Function {
    pub bus: u8,
    pub dev: u8,
    pub func: u8,
}

impl Function {
    fn address(&self, off: u8) -> u32 {
        0x8000_0000
            | (u32::from(self.bus) << 16)
            | (u32::from(self.dev) << 11)
            | (u32::from(self.func) << 8)
            | u32::from(off & 0xfc)
    }

    pub fn read32(&self, off: u8) -> u32 {
        outl(CONFIG_ADDRESS, self.address(off));
        inl(CONFIG_DATA)
    }

    pub fn write32(&self, off: u8, v: u32) {
        outl(CONFIG_ADDRESS, self.address(off));
        outl(CONFIG_DATA, v);
    }

    pub fn read16(&self, off: u8) -> u16 {
        (self.read32(off) >> (8 * (off & 2))) as u16
    }

    pub fn read8(&self, off: u8) -> u8 {
        (self.read32(off) >> (8 * (off & 3))) as u8
    }

    pub fn write16(&self, off: u8, v: u16) {
        let shift = 8 * (off & 2);
        let old = self.read32(off) & !(0xffff << shift);
        self.write32(off, old | (u32::from(v) << shift));
    }

    pub fn vendor_device(&self) -> (u16, u16) {
        let v = self.read32(0);
        (v as u16, (v >> 16) as u16)
    }

    /// Turns on memory decoding and bus mastering (DMA, MSI), and masks legacy INTx.
    pub fn enable(&self) {
        let cmd = self.read16(0x04);
        self.write16(0x04, cmd | (1 << 1) | (1 << 2) | (1 << 10));
    }

    /// Physical address of memory BAR `i` (64-bit BARs spanning two slots included); None
    /// for I/O BARs and unassigned ones.
    pub fn bar(&self, i: u8) -> Option<u64> {
        if i > 5 {
            return None;
        }
        let lo = self.read32(0x10 + 4 * i);
        if lo & 1 != 0 {
            return None;
        }
        let mut addr = u64::from(lo & !0xf);
        if (lo >> 1) & 3 == 2 && i < 5 {
            addr |= u64::from(self.read32(0x10 + 4 * (i + 1))) << 32;
        }
        (addr != 0).then_some(addr)
    }

    /// Offsets of the capabilities with id `id`, in list order.
    pub fn capabilities(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        let has_list = self.read16(0x06) & (1 << 4) != 0;
        let mut next = if has_list { self.read8(0x34) & 0xfc } else { 0 };
        let mut guard = 0;
        core::iter::from_fn(move || {
            if next == 0 || guard > 48 {
                return None;
            }
            guard += 1;
            let at = next;
            let id = self.read8(at);
            next = self.read8(at + 1) & 0xfc;
            Some((at, id))
        })
    }

    /// Enables MSI-X with table entry 0 sending `vector` to APIC 0, every other entry masked.
    /// False when the function has no MSI-X.
    pub fn enable_msix(&self, vector: u8) -> bool {
        let Some((cap, _)) = self.capabilities().find(|&(_, id)| id == CAP_MSIX) else { return false };
        let control = self.read16(cap + 2);
        let entries = u64::from(control & 0x7ff) + 1;
        let table = self.read32(cap + 4);
        let Some(bar) = self.bar((table & 7) as u8) else { return false };
        let Some(va) = mmio::map(bar + u64::from(table & !7), 16 * entries) else { return false };
        let t = Regs { base: va };
        for e in 0..entries {
            t.write32(16 * e + 12, 1); // masked
        }
        t.write32(0, 0xFEE0_0000); // fixed delivery to APIC 0, physical destination
        t.write32(4, 0);
        t.write32(8, u32::from(vector)); // edge, fixed
        t.write32(12, 0); // unmasked
        // Enable, function mask clear.
        self.write16(cap + 2, (control | (1 << 15)) & !(1 << 14));
        true
    }
}

/// Every function present on bus 0.
pub fn scan_bus0() -> alloc::vec::Vec<Function> {
    let mut out = alloc::vec::Vec::new();
    for dev in 0..32 {
        let f0 = Function { bus: 0, dev, func: 0 };
        if f0.vendor_device().0 == 0xffff {
            continue;
        }
        let multi = f0.read8(0x0e) & 0x80 != 0;
        for func in 0..if multi { 8 } else { 1 } {
            let f = Function { bus: 0, dev, func };
            if f.vendor_device().0 != 0xffff {
                out.push(f);
            }
        }
    }
    out
}

/// Whether the machine has PCI configuration ports (microvm has none: the address port
/// does not hold what was written).
pub fn present() -> bool {
    outl(CONFIG_ADDRESS, 0x8000_0000);
    inl(CONFIG_ADDRESS) == 0x8000_0000
}

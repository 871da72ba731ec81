//! Device drivers: the serial console, the debug console (Kiln's log channel), the exit
//! device, the clocks and timers, and virtio devices (block) on virtio-mmio or PCI.

pub mod clock;
pub mod debugcon;
pub mod exit;
pub mod ioapic;
pub mod lapic;
pub mod pci;
pub mod pit;
pub mod rtc;
pub mod serial;
pub mod virtio;

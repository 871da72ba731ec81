//! QEMU's debug console (port 0xe9): Kiln's log channel to bake, kept apart from the app's
//! console. Writes to it are dropped when the VM has no such device.

use crate::arch::x86_64::port::outb;

const PORT: u16 = 0xE9;

pub fn write(bytes: &[u8]) {
    for &b in bytes {
        outb(PORT, b);
    }
}

pub struct Writer;

impl core::fmt::Write for Writer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write(s.as_bytes());
        Ok(())
    }
}

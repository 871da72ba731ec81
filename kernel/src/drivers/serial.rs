//! The 16550 UART at COM1: the app's console (stdin, stdout, stderr).

use crate::arch::x86_64::port::{inb, outb};

const COM1: u16 = 0x3F8;

pub fn init() {
    outb(COM1 + 1, 0x00); // no interrupts
    outb(COM1 + 3, 0x80); // DLAB
    outb(COM1, 0x01); // 115200 baud
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); // 8N1
    outb(COM1 + 2, 0xC7); // FIFO on, cleared
    outb(COM1 + 4, 0x03); // DTR, RTS
}

fn put(byte: u8) {
    // Bounded wait: a missing UART must not hang the kernel.
    for _ in 0..100_000 {
        if inb(COM1 + 5) & 0x20 != 0 {
            break;
        }
    }
    outb(COM1, byte);
}

/// Writes bytes as they are; with `crlf`, `\n` becomes `\r\n` (an interactive terminal in raw
/// mode needs that).
pub fn write(bytes: &[u8], crlf: bool) {
    for &b in bytes {
        if crlf && b == b'\n' {
            put(b'\r');
        }
        put(b);
    }
}

/// A received byte, if one is waiting.
pub fn try_read() -> Option<u8> {
    if inb(COM1 + 5) & 1 != 0 { Some(inb(COM1)) } else { None }
}

//! 16550 UARTs: COM1 is the app's console (stdin, stdout); COM2, when the VM has one, carries
//! the app's stderr and Kiln's reports, so that they reach the host's stderr. Without COM2
//! everything goes to COM1. COM3, when bake attaches one (`kiln.stdin=pipe`), carries bake's
//! stdin when that is a pipe or a file.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::x86_64::port::{inb, outb};

const COM1: u16 = 0x3F8;
const COM2: u16 = 0x2F8;
const COM3: u16 = 0x3E8;

static HAVE_COM2: AtomicBool = AtomicBool::new(false);

fn init_port(base: u16) {
    outb(base + 1, 0x00); // no interrupts
    outb(base + 3, 0x80); // DLAB
    outb(base, 0x01); // 115200 baud
    outb(base + 1, 0x00);
    outb(base + 3, 0x03); // 8N1
    outb(base + 2, 0xC7); // FIFO on, cleared
    outb(base + 4, 0x03); // DTR, RTS
}

/// A UART answers through its scratch register; an absent one reads back all ones.
fn present(base: u16) -> bool {
    outb(base + 7, 0x5A);
    if inb(base + 7) != 0x5A {
        return false;
    }
    outb(base + 7, 0xA5);
    inb(base + 7) == 0xA5
}

pub fn init() {
    init_port(COM1);
    if present(COM2) {
        init_port(COM2);
        HAVE_COM2.store(true, Ordering::Relaxed);
    }
}

fn put(base: u16, byte: u8) {
    // Bounded wait: a missing UART must not hang the kernel.
    for _ in 0..100_000 {
        if inb(base + 5) & 0x20 != 0 {
            break;
        }
    }
    outb(base, byte);
}

/// Bytes go out as they are: the host side (QEMU's stdio chardev) owns terminal translation.
fn write_port(base: u16, bytes: &[u8]) {
    for &b in bytes {
        put(base, b);
    }
}

/// Writes the app's stdout.
pub fn write(bytes: &[u8]) {
    write_port(COM1, bytes);
}

/// Writes the app's stderr and Kiln's own reports.
pub fn write_err(bytes: &[u8]) {
    let port = if HAVE_COM2.load(Ordering::Relaxed) { COM2 } else { COM1 };
    write_port(port, bytes);
}

/// A received byte, if one is waiting.
pub fn try_read() -> Option<u8> {
    if inb(COM1 + 5) & 1 != 0 { Some(inb(COM1)) } else { None }
}

/// Sets up COM3 for the piped stdin, then tells bake (one byte sent back) that bytes can
/// come: setting the UART up empties its FIFO, so bake sends nothing before. False when the VM
/// has no COM3.
pub fn init_stdin_port() -> bool {
    if !present(COM3) {
        return false;
    }
    init_port(COM3);
    put(COM3, b'R');
    true
}

/// Whether a byte of the piped stdin is waiting on COM3.
pub fn stdin_ready() -> bool {
    inb(COM3 + 5) & 1 != 0
}

/// A byte of the piped stdin, if one is waiting on COM3.
pub fn try_read_stdin() -> Option<u8> {
    if stdin_ready() { Some(inb(COM3)) } else { None }
}

//! Port I/O. Each function is a single `in`/`out` instruction.

use core::arch::asm;

pub fn outb(port: u16, value: u8) {
    // SAFETY: port writes only affect devices; callers name ports of devices Kiln owns.
    unsafe { asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags)) }
}

pub fn outw(port: u16, value: u16) {
    // SAFETY: as in `outb`.
    unsafe { asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags)) }
}

pub fn outl(port: u16, value: u32) {
    // SAFETY: as in `outb`.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags)) }
}

pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: port reads only affect devices; callers name ports of devices Kiln owns.
    unsafe { asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags)) }
    value
}

//! Ending the VM. The status goes to bake as a `KILN-EXIT <status>` record on the log channel
//! (authoritative: QEMU's isa-debug-exit can only report 7 bits, as `(v << 1) | 1`), then the
//! isa-debug-exit device ends QEMU. Without that device, ACPI poweroff (pc) or a halt.

use core::fmt::Write;

use crate::arch::x86_64::cpu::halt_forever;
use crate::arch::x86_64::port::{outl, outw};
use crate::drivers::debugcon;

const DEBUG_EXIT_PORT: u16 = 0xF4;

/// The value written to isa-debug-exit after a kernel panic (QEMU then exits with 255).
const PANIC_CODE: u32 = 0x7F;

pub fn exit_vm(status: u8) -> ! {
    let _ = writeln!(debugcon::Writer, "\nKILN-EXIT {status}");
    power_off(u32::from(status & 0x7f))
}

pub fn exit_panic() -> ! {
    let _ = writeln!(debugcon::Writer, "\nKILN-PANIC");
    power_off(PANIC_CODE)
}

fn power_off(code: u32) -> ! {
    outl(DEBUG_EXIT_PORT, code);
    outw(0x604, 0x2000); // QEMU pc/q35 ACPI poweroff
    halt_forever()
}

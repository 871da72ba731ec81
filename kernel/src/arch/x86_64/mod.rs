//! Everything that knows the x86_64 CPU: boot, descriptor tables, interrupt and syscall entry,
//! per-CPU data and CPU feature setup.

pub mod boot;
pub mod cpu;
pub mod fpu;
pub mod gdt;
pub mod interrupts;
pub mod percpu;
pub mod port;
pub mod resume;
pub mod syscall;

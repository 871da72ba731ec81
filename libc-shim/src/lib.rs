//! The Linux ABI personality of Kiln.
//!
//! Everything a static Linux program expects of the kernel, written without any knowledge of
//! x86 registers or devices: the syscall table and its handlers, errno, Linux struct layouts,
//! ELF loading and the initial stack. The kernel supplies hardware services through
//! [`platform::Platform`]; host tests supply a fake one. This crate forbids `unsafe`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod elf;
pub mod errno;
pub mod fd;
pub mod fs;
pub mod image;
pub mod loader;
pub mod mm;
pub mod net;
pub mod platform;
pub mod process;
pub mod stack;
pub mod syscall;
#[cfg(test)]
pub mod testing;

pub use errno::Errno;
pub use platform::{Platform, Prot};

//! Device drivers: the serial console, the debug console (Kiln's log channel), the exit
//! device, and the clocks and timers.

pub mod clock;
pub mod debugcon;
pub mod exit;
pub mod lapic;
pub mod pit;
pub mod rtc;
pub mod serial;

//! What the kernel provides to the Linux personality.
//!
//! One trait, implemented by `kernel/` on real hardware and by a fake in host tests. Memory
//! calls take page-aligned app addresses (the low half); `read_app`/`write_app` go through
//! the page tables and never fault: an unmapped page is `EFAULT`. They ignore page
//! protection (the loader writes into read-only text); callers check permissions in [`crate::mm`].

use crate::errno::Errno;

bitflags::bitflags! {
    /// Page protection, with the values of Linux's `PROT_*`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Prot: u32 {
        const READ = 0x1;
        const WRITE = 0x2;
        const EXEC = 0x4;
    }
}

/// Page size of the app's address space.
pub const PAGE_SIZE: u64 = 4096;

/// Sector size of the block devices behind [`Platform::block_read`] and friends.
pub const SECTOR_SIZE: usize = 512;

/// What a block device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    /// Capacity in [`SECTOR_SIZE`]-byte sectors.
    pub sectors: u64,
    /// Writes fail with `EROFS`.
    pub read_only: bool,
    /// The device's serial number (bake names volumes `vol0`, `vol1`, ...), empty if none.
    pub serial: alloc::string::String,
}

pub trait Platform {
    // --- console -------------------------------------------------------------------------
    /// Writes app output (fd 1 and 2) to the console, byte for byte.
    fn console_write(&self, bytes: &[u8]);
    /// Writes the app's standard error (fd 2). Goes to the console unless the platform has a
    /// separate channel for it.
    fn console_write_err(&self, bytes: &[u8]) {
        self.console_write(bytes)
    }
    /// Reads console input; returns 0 at end of input (always, unless the run is interactive).
    fn console_read(&self, buf: &mut [u8]) -> usize;
    /// Whether the console is an interactive terminal (TCGETS/TIOCGWINSZ succeed only then).
    fn console_is_terminal(&self) -> bool;

    // --- time ----------------------------------------------------------------------------
    /// Nanoseconds since boot, monotonic.
    fn monotonic_ns(&self) -> u64;
    /// Nanoseconds since the Unix epoch (wall clock).
    fn realtime_ns(&self) -> u64;
    /// Resolution of the clocks above in nanoseconds.
    fn clock_resolution_ns(&self) -> u64;
    /// Blocks (idle, not spinning) until `monotonic_ns() >= deadline`.
    fn sleep_until_ns(&self, deadline: u64);

    // --- CPU -----------------------------------------------------------------------------
    /// Fills `buf` with random bytes (RDRAND/RDSEED where present).
    fn fill_random(&self, buf: &mut [u8]);
    fn set_fs_base(&self, base: u64);
    fn fs_base(&self) -> u64;
    /// Number of CPUs available to the app.
    fn cpu_count(&self) -> usize;
    /// The XSAVE features (XCR0) in the extended state the kernel saves for signal frames;
    /// 0 when it saves the 512-byte FXSAVE image only.
    fn xsave_features(&self) -> u64 {
        0
    }

    // --- memory --------------------------------------------------------------------------
    /// Maps fresh zeroed pages at `[addr, addr+len)` with `prot`. `ENOMEM` when out of frames.
    /// Pages already mapped in the range are replaced (their frames freed).
    fn map_zeroed(&self, addr: u64, len: u64, prot: Prot) -> Result<(), Errno>;
    /// Unmaps `[addr, addr+len)`, returning frames to the allocator; unmapped pages are skipped.
    fn unmap(&self, addr: u64, len: u64);
    /// Changes the protection of mapped pages in `[addr, addr+len)`.
    fn protect(&self, addr: u64, len: u64, prot: Prot);
    /// Copies app memory into `buf`; `EFAULT` if any page is unmapped.
    fn read_app(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copies `data` into app memory, ignoring protection; `EFAULT` if any page is unmapped.
    fn write_app(&self, addr: u64, data: &[u8]) -> Result<(), Errno>;
    /// (total, free) bytes of RAM.
    fn memory_stats(&self) -> (u64, u64);

    // --- network (optional: a machine without a network device keeps the defaults) --------
    /// The MAC address of the Ethernet device, if the machine has one.
    fn net_mac(&self) -> Option<[u8; 6]> {
        None
    }
    /// The largest Ethernet frame the device sends or receives (without the FCS).
    fn net_frame_max(&self) -> usize {
        1514
    }
    /// Queues one Ethernet frame of `len` bytes for sending, built in place by `fill` (in the
    /// device's own buffer: no copy). The device may wait for [`Platform::net_flush`] before
    /// it looks at the queue. `EAGAIN` when the queue is full (`fill` is not called; the
    /// stack tries again on its next poll), `EMSGSIZE` above `net_frame_max`, `ENODEV`
    /// without a device.
    fn net_transmit(&self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
        let _ = (len, fill);
        Err(Errno::ENODEV)
    }
    /// Whether [`Platform::net_transmit`] has room for a frame now.
    fn net_can_transmit(&self) -> bool {
        false
    }
    /// Tells the device about the frames queued since the last flush: one notification for a
    /// whole poll's frames.
    fn net_flush(&self) {}
    /// Hands the oldest received frame to `take` (borrowed from the device's buffer, valid
    /// for the call) and gives the buffer back to the device; false when nothing has arrived.
    fn net_receive(&self, take: &mut dyn FnMut(&[u8])) -> bool {
        let _ = take;
        false
    }
    /// Whether a received frame is waiting (cheap: the stack polls only then).
    fn net_rx_ready(&self) -> bool {
        false
    }

    // --- block devices -------------------------------------------------------------------
    // Devices are numbered from 0. Buffers are whole sectors; a request beyond the end or a
    // device error is `EIO`, a write to a read-only device `EROFS`, a missing device `ENODEV`.
    // The defaults describe a machine without block devices.
    /// Number of block devices.
    fn block_device_count(&self) -> usize {
        0
    }
    /// Capacity and mode of device `dev`; None if there is no such device.
    fn block_info(&self, dev: usize) -> Option<BlockInfo> {
        let _ = dev;
        None
    }
    /// Reads `buf.len() / SECTOR_SIZE` sectors from `sector` on.
    fn block_read(&self, dev: usize, sector: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let _ = (dev, sector, buf);
        Err(Errno::ENODEV)
    }
    /// Writes `data.len() / SECTOR_SIZE` sectors from `sector` on. Completed writes may sit
    /// in the device's volatile cache until [`Platform::block_flush`].
    fn block_write(&self, dev: usize, sector: u64, data: &[u8]) -> Result<(), Errno> {
        let _ = (dev, sector, data);
        Err(Errno::ENODEV)
    }
    /// Returns once every completed write to `dev` is on stable storage.
    fn block_flush(&self, dev: usize) -> Result<(), Errno> {
        let _ = dev;
        Err(Errno::ENODEV)
    }

    // --- the host --------------------------------------------------------------------------
    /// A TCP socket the host can reach (not bound to loopback) started listening on `port`:
    /// the host may now pass connections to it (bake holds early clients until then).
    fn announce_listening(&self, port: u16) {
        let _ = port;
    }
}

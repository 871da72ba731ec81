//! The app: its payload in the image, loading it, entering it at ring 0, and the
//! [`KernelPlatform`] through which the Linux personality (`libc-shim`) reaches the hardware.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, Ordering};

use libc_shim::image::Payload;
use libc_shim::mm::{Commit, Mm};
use libc_shim::process::Process;
use libc_shim::{Errno, Platform, Prot};
use spin::{Mutex, Once};

use crate::arch::x86_64::cpu::{self, Features, MSR_FS_BASE, read_msr, write_msr};
use crate::drivers::virtio::{self, blk};
use crate::drivers::{clock, exit, lapic, serial};
use crate::mm::frames::{FRAME_SIZE, FrameAllocator};
use crate::mm::paging::AddressSpace;
use crate::mm::phys_to_virt;

/// Physical memory and the one address space, behind one lock.
pub struct Memory {
    pub frames: FrameAllocator,
    pub space: AddressSpace,
}

pub static MEMORY: Mutex<Option<Memory>> = Mutex::new(None);
pub static FEATURES: Once<Features> = Once::new();
static TTY: AtomicBool = AtomicBool::new(false);

struct App {
    process: Process,
    elf: &'static [u8],
    load_bias: u64,
}

static APP: Mutex<Option<App>> = Mutex::new(None);

pub fn set_tty(tty: bool) {
    TTY.store(tty, Ordering::Relaxed);
}

pub fn is_tty() -> bool {
    TTY.load(Ordering::Relaxed)
}

/// stdin comes through COM3 (`kiln.stdin=pipe`), framed by bake: 0xFF doubled, 0xFF 0x00 for
/// end-of-file.
static STDIN_PIPE: AtomicBool = AtomicBool::new(false);
/// The piped stdin's decoder: the last byte was the 0xFF escape.
static STDIN_ESCAPE: AtomicBool = AtomicBool::new(false);
/// The piped stdin reached its end.
static STDIN_EOF: AtomicBool = AtomicBool::new(false);

pub fn set_stdin_pipe(pipe: bool) {
    STDIN_PIPE.store(pipe, Ordering::Relaxed);
}

/// Reads the piped stdin: waits for the first byte (or end-of-file), then takes what is
/// already there. The wait sleeps in short steps; it holds the CPU from the app's other
/// threads, as the interactive console's does.
fn read_stdin_pipe(buf: &mut [u8]) -> usize {
    let mut n = 0;
    let mut idle = 0u32;
    while n < buf.len() && !STDIN_EOF.load(Ordering::Relaxed) {
        let Some(b) = serial::try_read_stdin() else {
            if n > 0 {
                break;
            }
            // QEMU refills the FIFO from its own thread: look again a few times before
            // sleeping.
            idle += 1;
            if idle > 64 {
                let deadline = clock::monotonic_ns() + 200_000;
                lapic::arm_oneshot(200_000);
                while clock::monotonic_ns() < deadline && !serial::stdin_ready() {
                    cpu::idle_once();
                }
            }
            continue;
        };
        idle = 0;
        if STDIN_ESCAPE.swap(false, Ordering::Relaxed) {
            match b {
                0x00 => STDIN_EOF.store(true, Ordering::Relaxed),
                _ => {
                    buf[n] = b;
                    n += 1;
                }
            }
        } else if b == 0xFF {
            STDIN_ESCAPE.store(true, Ordering::Relaxed);
        } else {
            buf[n] = b;
            n += 1;
        }
    }
    n
}

fn with_memory<R>(f: impl FnOnce(&mut Memory) -> R) -> R {
    let mut guard = MEMORY.lock();
    f(guard.as_mut().expect("memory initialised at boot"))
}

/// The hardware services behind the Linux personality.
pub struct KernelPlatform;

impl KernelPlatform {
    fn copy_app(&self, addr: u64, len: usize, mut f: impl FnMut(u64, usize, usize)) -> Result<(), Errno> {
        if addr.checked_add(len as u64).is_none_or(|end| end > libc_shim::mm::layout::USER_END) {
            return Err(Errno::EFAULT);
        }
        with_memory(|m| {
            let mut done = 0usize;
            while done < len {
                let va = addr + done as u64;
                let page = va & !(FRAME_SIZE - 1);
                let off = va - page;
                let n = core::cmp::min(len - done, (FRAME_SIZE - off) as usize);
                let frame = m.space.translate(page).ok_or(Errno::EFAULT)?;
                f(phys_to_virt(frame + off), done, n);
                done += n;
            }
            Ok(())
        })
    }
}

impl Platform for KernelPlatform {
    fn console_write(&self, bytes: &[u8]) {
        serial::write(bytes);
    }

    fn console_write_err(&self, bytes: &[u8]) {
        serial::write_err(bytes);
    }

    fn console_read(&self, buf: &mut [u8]) -> usize {
        if STDIN_PIPE.load(Ordering::Relaxed) && !buf.is_empty() {
            return read_stdin_pipe(buf);
        }
        if !is_tty() || buf.is_empty() {
            return 0;
        }
        // Interactive: wait for the first byte, then take what is already there.
        let mut n = 0;
        loop {
            match serial::try_read() {
                Some(b) => {
                    buf[n] = if b == b'\r' { b'\n' } else { b };
                    n += 1;
                    if n == buf.len() || buf[n - 1] == b'\n' {
                        return n;
                    }
                }
                None if n > 0 => return n,
                None => core::hint::spin_loop(),
            }
        }
    }

    fn console_is_terminal(&self) -> bool {
        is_tty()
    }

    fn monotonic_ns(&self) -> u64 {
        clock::monotonic_ns()
    }

    fn realtime_ns(&self) -> u64 {
        clock::realtime_ns()
    }

    fn clock_resolution_ns(&self) -> u64 {
        clock::resolution_ns()
    }

    fn sleep_until_ns(&self, deadline: u64) {
        loop {
            let now = clock::monotonic_ns();
            if now >= deadline {
                return;
            }
            lapic::arm_oneshot(deadline - now);
            cpu::idle_once();
        }
    }

    fn fill_random(&self, buf: &mut [u8]) {
        let features = FEATURES.get().copied().unwrap_or_default();
        // Without RDRAND/RDSEED, a SplitMix64 stream seeded from the TSC: unpredictable enough
        // for hash seeds and stack canaries, not for keys.
        let mut state = cpu::rdtsc() ^ 0x9E37_79B9_7F4A_7C15;
        for chunk in buf.chunks_mut(8) {
            let value = cpu::hw_random(&features).unwrap_or_else(|| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^ (z >> 31)
            });
            chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
        }
    }

    fn set_fs_base(&self, base: u64) {
        write_msr(MSR_FS_BASE, base);
    }

    fn fs_base(&self) -> u64 {
        read_msr(MSR_FS_BASE)
    }

    fn cpu_count(&self) -> usize {
        1
    }

    fn map_zeroed(&self, addr: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        with_memory(|m| {
            if m.space.map_app_zeroed(&mut m.frames, addr, len, prot) { Ok(()) } else { Err(Errno::ENOMEM) }
        })
    }

    fn unmap(&self, addr: u64, len: u64) {
        with_memory(|m| m.space.unmap_app(&mut m.frames, addr, len))
    }

    fn protect(&self, addr: u64, len: u64, prot: Prot) {
        with_memory(|m| m.space.protect_app(addr, len, prot))
    }

    fn read_app(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.copy_app(addr, buf.len(), |src, done, n| {
            // SAFETY: `src` is the direct-map address of `n` bytes inside one mapped app frame.
            let bytes = unsafe { core::slice::from_raw_parts(src as *const u8, n) };
            buf[done..done + n].copy_from_slice(bytes);
        })
    }

    fn write_app(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.copy_app(addr, data.len(), |dst, done, n| {
            // SAFETY: `dst` is the direct-map address of `n` bytes inside one mapped app frame;
            // the app is stopped in a syscall (or not started), so nothing else writes there.
            let bytes = unsafe { core::slice::from_raw_parts_mut(dst as *mut u8, n) };
            bytes.copy_from_slice(&data[done..done + n]);
        })
    }

    fn memory_stats(&self) -> (u64, u64) {
        with_memory(|m| (m.frames.total_frames * FRAME_SIZE, m.frames.free_frames * FRAME_SIZE))
    }

    fn net_mac(&self) -> Option<[u8; 6]> {
        virtio::net::mac()
    }

    fn net_frame_max(&self) -> usize {
        virtio::net::FRAME_MAX
    }

    fn net_transmit(&self, len: usize, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), Errno> {
        virtio::net::transmit(len, fill)
    }

    fn net_can_transmit(&self) -> bool {
        virtio::net::can_transmit()
    }

    fn net_flush(&self) {
        virtio::net::flush();
    }

    fn net_receive(&self, take: &mut dyn FnMut(&[u8])) -> bool {
        virtio::net::receive(take)
    }

    fn net_rx_ready(&self) -> bool {
        virtio::net::rx_ready()
    }

    fn block_device_count(&self) -> usize {
        blk::count()
    }

    fn block_info(&self, dev: usize) -> Option<libc_shim::platform::BlockInfo> {
        blk::info(dev).map(|i| libc_shim::platform::BlockInfo { sectors: i.sectors, read_only: i.read_only, serial: i.serial })
    }

    fn block_read(&self, dev: usize, sector: u64, buf: &mut [u8]) -> Result<(), Errno> {
        blk::with_device(dev, |d| d.read(sector, buf))
    }

    fn block_write(&self, dev: usize, sector: u64, data: &[u8]) -> Result<(), Errno> {
        blk::with_device(dev, |d| d.write(sector, data))
    }

    fn block_flush(&self, dev: usize) -> Result<(), Errno> {
        blk::with_device(dev, |d| d.flush())
    }

    fn announce_listening(&self, port: u16) {
        crate::logger::control_record(format_args!("KILN-LISTEN tcp {port}"));
    }
}

/// Runs `f` on the process, with its lock held.
pub fn with_process<R>(f: impl FnOnce(&mut Process) -> R) -> R {
    let mut guard = APP.lock();
    f(&mut guard.as_mut().expect("the app has started").process)
}

/// Writes the app's volumes back before the VM ends, whether the app exited or was killed:
/// as on Linux, data it wrote reaches the disk either way.
pub fn sync_volumes() {
    let Some(mut guard) = APP.try_lock() else { return };
    if let Some(app) = guard.as_mut() {
        if let Err(e) = app.process.sync_all() {
            log::error!("writing volumes back at exit failed: {e}");
        }
    }
}

/// How long the boot waits for a DHCP lease before starting the app without an address.
const DHCP_WAIT_NS: u64 = 5_000_000_000;

/// Starts the network interface (ARP, DHCP) and, when it uses DHCP, waits for the lease
/// (at most [`DHCP_WAIT_NS`]), as a Linux init does: a client app's first connect must not
/// fail with ENETUNREACH because it raced the lease.
fn bring_network_up() {
    if virtio::net::mac().is_none() {
        return;
    }
    let deadline = clock::monotonic_ns() + DHCP_WAIT_NS;
    loop {
        let now = clock::monotonic_ns();
        let (up, next) = with_process(|p| {
            p.net_poll_everything(&KernelPlatform, now);
            (p.net_address().is_some(), p.net_poll_at(now))
        });
        if up {
            return;
        }
        if now >= deadline {
            log::warn!("net: no DHCP lease after {} s; the app starts without an address", DHCP_WAIT_NS / 1_000_000_000);
            return;
        }
        let wait = next.map_or(10_000_000, |t| t.saturating_sub(now)).clamp(100_000, 10_000_000);
        lapic::arm_oneshot(wait);
        cpu::idle_once();
    }
}

/// How long an exiting app's unacknowledged TCP data may keep the VM running.
const DRAIN_NS: u64 = 2_000_000_000;

/// Before the VM ends: lets TCP data the app sent (a last response, say) reach its peer, for
/// at most [`DRAIN_NS`]. Linux keeps sending after a process exits; a VM that powers off at
/// once would cut the data off.
pub fn drain_network() {
    let deadline = clock::monotonic_ns() + DRAIN_NS;
    loop {
        let now = clock::monotonic_ns();
        let unsent = {
            let Some(mut guard) = APP.try_lock() else { return };
            let Some(app) = guard.as_mut() else { return };
            app.process.net_poll_everything(&KernelPlatform, now);
            app.process.net_unsent()
        };
        if !unsent || now >= deadline {
            if unsent {
                log::warn!("exit: unacknowledged TCP data dropped after {} ms", DRAIN_NS / 1_000_000);
            }
            return;
        }
        lapic::arm_oneshot(1_000_000);
        cpu::idle_once();
    }
}

/// The process was killed by `signal`: say so on the error console and end the VM.
pub fn terminated_by_signal(status: u8, signal: u8) -> ! {
    sync_volumes();
    let name = crate::fault::signal_name(signal);
    let _ = core::fmt::Write::write_fmt(
        &mut crate::fault::Console,
        format_args!("kiln: the app was terminated by {name} ({signal}); exit status {status}\n"),
    );
    exit::exit_vm(status)
}

/// Commits the page at `addr` if the app's first touch of a lazy mapping faulted there.
pub fn fault_in(addr: u64, access: Prot) -> Commit {
    let Some(mut guard) = APP.try_lock() else { return Commit::NotMine };
    guard.as_mut().map_or(Commit::NotMine, |app| app.process.mm.fault_in(&KernelPlatform, addr, access))
}

/// Whether `addr` lies in one of the app's mappings (whatever its protection).
pub fn is_mapped(addr: u64) -> bool {
    let Some(guard) = APP.try_lock() else { return false };
    guard.as_ref().is_some_and(|app| app.process.mm.vma_at(addr).is_some())
}

/// `<symbol+0xoff>` for an app address, when the program has a symbol table.
pub fn symbolize(addr: u64) -> String {
    let Some(guard) = APP.try_lock() else { return String::new() };
    let Some(app) = guard.as_ref() else { return String::new() };
    let Some(symbols) = libc_shim::elf::Symbolizer::new(app.elf) else { return String::new() };
    match symbols.lookup(addr, app.load_bias) {
        Some((name, off)) => alloc::format!("<{name}+{off:#x}>"),
        None => String::new(),
    }
}

/// Minimum signal stack size as Linux computes it for this CPU's extended state.
fn min_sigstack_size(features: &Features) -> u64 {
    if features.xsave_size > 0 { u64::from(features.xsave_size) + 1024 } else { 2048 }
}

/// Loads the app from the payload and runs it. Never returns: the app ends the VM.
pub fn start(payload: &'static [u8], cmdline: &str) -> ! {
    let payload = match Payload::parse(payload) {
        Ok(p) => p,
        Err(e) => crate::boot_error(format_args!("the image's app payload is unusable: {e}; rebuild the image with `bake build`")),
    };
    let ours = env!("CARGO_PKG_VERSION");
    if payload.kiln_version != ours {
        crate::boot_error(format_args!(
            "image built by Kiln {} cannot run on Kiln {ours}: rebuild it with this version's `bake build`",
            payload.kiln_version
        ));
    }
    let features = *FEATURES.get().expect("cpu features");
    let mut random = [0u8; 16];
    KernelPlatform.fill_random(&mut random);
    let mut mm = Mm::new();
    let vdso = match crate::vdso::map(&mut mm) {
        Ok(addr) => addr,
        Err(e) => crate::boot_error(format_args!("cannot map the vDSO: {e}; give the VM more memory with --mem")),
    };
    let aux = libc_shim::stack::AuxInfo {
        hwcap: features.hwcap,
        hwcap2: 0,
        clktck: 100,
        minsigstksz: min_sigstack_size(&features),
        random,
        uid: 0,
        gid: 0,
        vdso,
    };
    let loaded = match libc_shim::loader::load(
        &KernelPlatform,
        &mut mm,
        payload.app_elf,
        &payload.argv,
        &payload.envp,
        payload.app_path.as_bytes(),
        &aux,
    ) {
        Ok(l) => l,
        Err(e) => crate::boot_error(format_args!("cannot start the app: {e}")),
    };
    log::info!(
        "app {} loaded: entry {:#x}, stack {:#x}, bias {:#x}",
        payload.app_path,
        loaded.entry,
        loaded.stack_pointer,
        loaded.load_bias
    );
    let mut process = Process::new(mm, payload.app_path);
    match process.init_files(&KernelPlatform, &payload) {
        Ok(files) => log::info!("rootfs: {} files, {} directories, {} bytes", files.files, files.directories, files.bytes),
        Err(e) => crate::boot_error(format_args!("the image's root filesystem is unusable: {e}; rebuild the image with `bake build`")),
    }
    crate::volumes::mount_all(&mut process);
    if let Err(e) = process.net_configure(cmdline) {
        crate::boot_error(format_args!("network settings: {e}"));
    }
    *APP.lock() = Some(App { process, elf: payload.app_elf, load_bias: loaded.load_bias });
    // Bring the network interface up (ARP, DHCP) before the app runs.
    bring_network_up();
    crate::sched::start(Process::PID, loaded.entry, loaded.stack_pointer)
}

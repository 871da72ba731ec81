//! Kiln's kernel: boots through PVH, sets up memory, interrupts and the syscall entry, then
//! loads the app baked into the image and runs it at ring 0 in the same address space.
//!
//! Hardware and `unsafe` live here; the Linux personality lives in `libc-shim`.
#![no_std]
#![no_main]

extern crate alloc;

mod app;
mod arch;
mod drivers;
mod fault;
mod logger;
mod mm;
mod pvh;
mod sched;
mod vdso;
mod volumes;

use core::fmt::Write;

use arch::x86_64::{cpu, gdt, interrupts, percpu, syscall};
use mm::frames::{FRAME_SIZE, FrameAllocator, Region};

/// Kernel options from the command line (`kiln.log=`, `kiln.tty=`, `kiln.log_to=`,
/// `kiln.host_ns=`).
struct Options {
    log: log::LevelFilter,
    tty: bool,
    log_to_serial: bool,
    /// The host's wall clock (Unix ns) when bake started QEMU.
    host_ns: Option<u64>,
    /// `kiln.stdin=pipe`: stdin comes through COM3 (bake's stdin is a pipe or a file).
    stdin_pipe: bool,
}

fn parse_options(cmdline: &str) -> Options {
    let mut o = Options { log: log::LevelFilter::Warn, tty: false, log_to_serial: false, host_ns: None, stdin_pipe: false };
    for word in cmdline.split_ascii_whitespace() {
        match word.split_once('=') {
            Some(("kiln.log", v)) => o.log = logger::parse_level(v).unwrap_or(o.log),
            Some(("kiln.tty", v)) => o.tty = v == "1",
            Some(("kiln.log_to", v)) => o.log_to_serial = v == "serial",
            Some(("kiln.host_ns", v)) => o.host_ns = v.parse().ok(),
            Some(("kiln.stdin", v)) => o.stdin_pipe = v == "pipe",
            _ if word == "quiet" => o.log = log::LevelFilter::Error,
            _ => {}
        }
    }
    o
}

/// Initial heap size; it grows on demand.
const INITIAL_HEAP: u64 = 2 << 20;

/// Entered from the boot stub on the boot stack, with the first GiB identity-mapped.
#[unsafe(no_mangle)]
extern "C" fn kmain(start_info: u32) -> ! {
    drivers::serial::init();
    let boot = pvh::read_start_info(u64::from(start_info));
    let options = parse_options(boot.cmdline());
    app::set_tty(options.tty);
    logger::init(options.log, options.log_to_serial);
    // Without the port, stdin stays empty (reads return end-of-file), as without the option.
    let stdin_pipe = options.stdin_pipe && drivers::serial::init_stdin_port();
    if options.stdin_pipe && !stdin_pipe {
        log::warn!("kiln.stdin=pipe but the VM has no COM3: stdin is empty");
    }
    app::set_stdin_pipe(stdin_pipe);
    log::info!("Kiln {} booting, command line {:?}", env!("CARGO_PKG_VERSION"), boot.cmdline());

    // The payload starts at the first page after the kernel image.
    let kernel_end = mm::paging::kernel_phys_end();
    let payload_phys = kernel_end.next_multiple_of(FRAME_SIZE);
    // SAFETY: the boot tables identity-map the first GiB, where the loader put the image.
    let header = unsafe { core::slice::from_raw_parts(payload_phys as *const u8, libc_shim::image::HEADER_LEN) };
    let payload_len = match libc_shim::image::total_len(header) {
        Ok(len) => len,
        Err(e) => boot_error(format_args!("no app in this image ({e}): make one with `bake build ELF -o IMAGE`")),
    };
    let payload_end = payload_phys + payload_len;

    let mut frames = FrameAllocator::empty();
    let reserved = [Region { start: 0, end: 0x10_0000 }, Region { start: 0x10_0000, end: payload_end }];
    let mut ram_end = 0;
    for e in boot.memmap().iter().filter(|e| e.kind == pvh::RAM) {
        frames.add_region(e.addr, e.addr + e.size, &reserved);
        ram_end = ram_end.max(e.addr + e.size);
    }
    let apic_phys = drivers::lapic::phys_base();
    let space = mm::paging::build_kernel_space(&mut frames, ram_end.max(payload_end), apic_phys)
        .expect("out of memory building the kernel page tables");
    space.activate();

    *app::MEMORY.lock() = Some(app::Memory { frames, space });
    mm::heap::init(INITIAL_HEAP);
    if let Some(m) = app::MEMORY.lock().as_ref() {
        log::info!(
            "memory: {} MiB RAM, {} MiB free, heap {} KiB (grows on demand), payload {} KiB",
            m.frames.total_frames * FRAME_SIZE >> 20,
            m.frames.free_frames * FRAME_SIZE >> 20,
            INITIAL_HEAP >> 10,
            payload_len >> 10
        );
    }

    gdt::init();
    interrupts::init();
    interrupts::disable_pic();
    let syscall_stack = alloc::vec![0u8; 128 * 1024].leak();
    let syscall_stack_top = (syscall_stack.as_ptr() as u64 + syscall_stack.len() as u64) & !0xf;
    percpu::init(0, syscall_stack_top);
    let features = cpu::init();
    app::FEATURES.call_once(|| features);
    drivers::clock::init(&features, options.host_ns);
    drivers::lapic::init();
    syscall::init();
    drivers::virtio::init(boot.cmdline());
    volumes::parse(boot.cmdline());
    volumes::open_all();
    log::debug!("cpu: {:?}", features);

    // SAFETY: the payload is in RAM reserved above (never handed to the frame allocator) and
    // mapped by the direct map for the rest of the VM's life.
    let payload = unsafe { core::slice::from_raw_parts(mm::phys_to_virt(payload_phys) as *const u8, payload_len as usize) };
    app::start(payload, boot.cmdline())
}

/// A problem with the image rather than a bug: reported on the console, status 126 (the image
/// cannot be run), as bake reports it.
pub fn boot_error(message: core::fmt::Arguments) -> ! {
    let _ = writeln!(fault::Console, "kiln: error: {message}");
    drivers::exit::exit_vm(126)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let mut out = fault::Console;
    let _ = writeln!(out, "\nkiln: kernel panic: {}", info.message());
    if let Some(loc) = info.location() {
        let _ = writeln!(out, "kiln:   at {}:{}", loc.file(), loc.line());
    }
    let _ = writeln!(out, "kiln: this is a bug in Kiln; please report it with the output above");
    drivers::exit::exit_panic()
}

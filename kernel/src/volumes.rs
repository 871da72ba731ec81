//! Persistent volumes: `kiln.volume=SERIAL:/guest/path[:ro]` on the command line (bake adds
//! one per `-v`) names a virtio-blk disk by its serial number and where to mount it. Each is
//! mounted as a FAT32 filesystem ([`libc_shim::fs::fat`]) through the VFS mount table.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use libc_shim::Platform;
use libc_shim::process::Process;
use libc_shim::fs::Filesystem;
use libc_shim::fs::fat::{FatFs, PlatformDisk};
use spin::{Mutex, Once};

use crate::app::KernelPlatform;

/// One `kiln.volume=` word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub serial: String,
    pub path: String,
    pub read_only: bool,
}

static SPECS: Once<Vec<Spec>> = Once::new();

/// Parses `SERIAL:PATH[:ro]`.
pub fn parse_word(value: &str) -> Option<Spec> {
    let (rest, read_only) = match value.strip_suffix(":ro") {
        Some(r) => (r, true),
        None => (value, false),
    };
    let (serial, path) = rest.split_once(':')?;
    if serial.is_empty() || !path.starts_with('/') {
        return None;
    }
    Some(Spec { serial: serial.into(), path: path.into(), read_only })
}

/// Remembers the volumes named on the command line (call once at boot).
pub fn parse(cmdline: &str) {
    SPECS.call_once(|| {
        cmdline
            .split_ascii_whitespace()
            .filter_map(|w| w.strip_prefix("kiln.volume="))
            .filter_map(|v| {
                let spec = parse_word(v);
                if spec.is_none() {
                    log::warn!("ignoring malformed kiln.volume={v}");
                }
                spec
            })
            .collect()
    });
}

/// A volume ready to mount.
pub struct Opened {
    pub path: String,
    pub fs: Arc<dyn Filesystem>,
    pub read_only: bool,
    /// The /proc/mounts source column (`/dev/vda`, ...).
    pub source: String,
}

static OPENED: Mutex<Vec<Opened>> = Mutex::new(Vec::new());

/// Mounts the volumes opened at boot in the app's mount table (the mount point is created
/// in the root filesystem if missing). Call once, before the app runs.
pub fn mount_all(process: &mut Process) {
    for v in core::mem::take(&mut *OPENED.lock()) {
        let (path, source) = (v.path.clone(), v.source.clone());
        if let Err(e) = process.mount(&KernelPlatform, &v.path, v.fs, v.read_only, &v.source) {
            crate::boot_error(format_args!("cannot mount the volume on {path}: {e:?}"));
        }
        log::info!("volume {source} mounted on {path}");
    }
}


/// Finds each named volume's disk and opens its filesystem (call once at boot, after the
/// drivers). A volume that is missing or not FAT32 stops the boot with a message: the app
/// would otherwise run without its data.
pub fn open_all() {
    let mut out = Vec::new();
    let count = KernelPlatform.block_device_count();
    for spec in SPECS.get().map(Vec::as_slice).unwrap_or(&[]) {
        let Some(dev) = (0..count).find(|&d| KernelPlatform.block_info(d).is_some_and(|i| i.serial == spec.serial)) else {
            crate::boot_error(format_args!("volume {} for {}: no such disk (is virtio-blk attached?)", spec.serial, spec.path))
        };
        let disk = match PlatformDisk::new(KernelPlatform, dev) {
            Ok(d) => d,
            Err(e) => crate::boot_error(format_args!("volume {} for {}: {e:?}", spec.serial, spec.path)),
        };
        let fs = match FatFs::mount(disk, spec.read_only, Box::new(crate::drivers::clock::realtime_ns)) {
            Ok(fs) => fs,
            Err(e) => crate::boot_error(format_args!("volume {} for {}: {e}", spec.serial, spec.path)),
        };
        let letter = (b'a' + (dev as u8 % 26)) as char;
        log::info!("volume {} (disk {dev}) opened for {}{}", spec.serial, spec.path, if spec.read_only { " read-only" } else { "" });
        out.push(Opened { path: spec.path.clone(), fs: Arc::new(fs), read_only: spec.read_only, source: alloc::format!("/dev/vd{letter}") });
    }
    *OPENED.lock() = out;
}

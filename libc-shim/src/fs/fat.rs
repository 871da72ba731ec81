//! FAT32 volumes: the on-disk filesystem of Kiln's persistent volumes, read-write, with long
//! file names (VFAT), behind the [`Filesystem`] trait. The same code formats, lists and reads
//! volumes on the host (`bake volume`), over a file instead of a virtio-blk device.
//!
//! Why FAT32: every host can create, mount and inspect it (Linux `mount -t vfat`, mtools,
//! macOS, Windows), and the format is small enough to implement here, portably and without
//! `unsafe`. (The `fatfs` crate needs std or nightly-only `core_io`; `embedded-sdmmc` writes
//! 8.3 names only and cannot rename, which sqlite's `-journal` files need.)
//!
//! What FAT cannot represent is refused as Linux's vfat refuses it: hard links, symlinks and
//! device nodes are `EPERM`; ownership is always root's (chown to anyone else is `EPERM`);
//! permissions are 0755 for directories and 0644 for files, 0444 with the read-only
//! attribute. Names are case-preserving and looked up case-insensitively (ASCII).
//!
//! # Caching and durability
//! Metadata is read once and kept: the FAT's sectors (a cache of up to [`FAT_CACHE_SECTORS`],
//! the whole FAT of a volume up to 256 MiB) and each directory's slots (looked up through an
//! index by name; up to [`DIR_CACHE_BYTES`] in all), so a lookup, stat or create reads
//! nothing. Changes are made in these caches and written back at the end of every call that
//! changes the volume, FAT sectors first, then directory sectors, each run of consecutive
//! sectors in one request: the volume on the device is consistent after every call, and a VM
//! killed from outside (a server's usual end) loses nothing the device was given. File data
//! is written by the call that writes it. The FSInfo free-cluster hint is written at sync.
//! [`Filesystem::sync`] (fsync, fdatasync, sync, syncfs, and the kernel at exit) then flushes
//! the device's write cache and returns only when that is done. Device errors come back as
//! `EIO`, never swallowed; metadata that could not be written stays marked and is retried.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use core::ops::Range;

use spin::Mutex;

use super::{DirEntry, FileType, FsStats, Filesystem, Ino, Metadata, NewNode, Owner, RenameFlags, SetAttr, Timestamp};
use crate::errno::Errno;
use crate::platform::{Platform, SECTOR_SIZE};

const SECTOR: usize = SECTOR_SIZE;
const SLOT: usize = 32;

const ATTR_READ_ONLY: u8 = 0x01;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_LFN: u8 = 0x0F;

const FREE: u32 = 0;
const EOC: u32 = 0x0FFF_FFFF;
const BAD: u32 = 0x0FFF_FFF7;
const ENTRY_MASK: u32 = 0x0FFF_FFFF;

const DELETED: u8 = 0xE5;

/// `f_type` of statfs for FAT (MSDOS_SUPER_MAGIC).
pub const MSDOS_SUPER_MAGIC: u64 = 0x4d44;

/// The root directory's inode number.
pub const ROOT_INO: Ino = 1;

/// Sectors the FAT cache keeps (1 MiB: every FAT sector of a volume up to 256 MiB; less in
/// host tests, so that they evict).
const FAT_CACHE_SECTORS: usize = if cfg!(test) { 64 } else { 2048 };

/// Directory bytes kept in memory before every directory is written back and forgotten.
const DIR_CACHE_BYTES: usize = if cfg!(test) { 64 << 10 } else { 8 << 20 };

/// A disk in 512-byte sectors.
pub trait BlockDevice: Send {
    fn sectors(&self) -> u64;
    fn read_only(&self) -> bool;
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Errno>;
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), Errno>;
    /// Returns once completed writes are on stable storage.
    fn flush(&mut self) -> Result<(), Errno>;
}

/// Block device `dev` of a [`Platform`] (a virtio-blk disk in the kernel).
pub struct PlatformDisk<P> {
    pub platform: P,
    pub dev: usize,
    sectors: u64,
    read_only: bool,
}

impl<P: Platform> PlatformDisk<P> {
    /// `ENODEV` if the platform has no device `dev`.
    pub fn new(platform: P, dev: usize) -> Result<Self, Errno> {
        let info = platform.block_info(dev).ok_or(Errno::ENODEV)?;
        Ok(PlatformDisk { platform, dev, sectors: info.sectors, read_only: info.read_only })
    }
}

impl<P: Platform + Send> BlockDevice for PlatformDisk<P> {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.platform.block_read(self.dev, sector, buf)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), Errno> {
        self.platform.block_write(self.dev, sector, data)
    }
    fn flush(&mut self) -> Result<(), Errno> {
        self.platform.block_flush(self.dev)
    }
}

/// Why a disk is not a usable FAT32 volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("no FAT boot sector (signature 0x55AA missing)")]
    NoBootSector,
    #[error("not FAT32 (a FAT12/16 or exFAT volume, or another filesystem)")]
    NotFat32,
    #[error("unsupported sector size {0} (only 512)")]
    SectorSize(u16),
    #[error("inconsistent FAT32 geometry")]
    Geometry,
    #[error("the disk is too small for FAT32 ({0} sectors)")]
    TooSmall(u64),
    #[error("device error {0:?}")]
    Device(Errno),
}

#[derive(Debug, Clone, Copy)]
struct Geometry {
    spc: u32,
    fat_start: u32,
    fat_sectors: u32,
    fats: u32,
    data_start: u32,
    /// Highest valid cluster number + 1.
    cluster_end: u32,
    root: u32,
    fsinfo: u32,
}

impl Geometry {
    fn cluster_bytes(&self) -> usize {
        self.spc as usize * SECTOR
    }
    fn cluster_sector(&self, c: u32) -> u64 {
        u64::from(self.data_start) + u64::from(c - 2) * u64::from(self.spc)
    }
    fn valid(&self, c: u32) -> bool {
        (2..self.cluster_end).contains(&c)
    }
}

fn le16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}
fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn parse_boot(b: &[u8], total: u64) -> Result<Geometry, FormatError> {
    if b[510] != 0x55 || b[511] != 0xAA {
        return Err(FormatError::NoBootSector);
    }
    let bps = le16(b, 11);
    let spc = u32::from(b[13]);
    let reserved = u32::from(le16(b, 14));
    let fats = u32::from(b[16]);
    let root_entries = le16(b, 17);
    let fat16_size = le16(b, 22);
    let total32 = le32(b, 32);
    let fat32_size = le32(b, 36);
    if fat16_size != 0 || root_entries != 0 || fat32_size == 0 {
        return Err(FormatError::NotFat32);
    }
    if bps != 512 {
        return Err(FormatError::SectorSize(bps));
    }
    let total_sectors = if total32 != 0 { total32 } else { u32::from(le16(b, 19)) };
    if spc == 0 || !spc.is_power_of_two() || fats == 0 || reserved == 0 || u64::from(total_sectors) > total {
        return Err(FormatError::Geometry);
    }
    let data_start = reserved + fats * fat32_size;
    if data_start >= total_sectors {
        return Err(FormatError::Geometry);
    }
    let clusters = (total_sectors - data_start) / spc;
    let fat_capacity = fat32_size * (SECTOR as u32 / 4);
    let cluster_end = (clusters + 2).min(fat_capacity).min(0x0FFF_FFF7);
    let root = le32(b, 44);
    let g = Geometry { spc, fat_start: reserved, fat_sectors: fat32_size, fats, data_start, cluster_end, root, fsinfo: u32::from(le16(b, 48)) };
    if !g.valid(root) {
        return Err(FormatError::Geometry);
    }
    Ok(g)
}

/// Writes an empty FAT32 filesystem on `dev` (no partition table: the whole disk is the
/// volume, as `mkfs.vfat` on an image file makes it). `label` is up to 11 ASCII characters.
pub fn format(dev: &mut dyn BlockDevice, label: &str, volume_id: u32) -> Result<(), FormatError> {
    let dv = FormatError::Device;
    let total = dev.sectors().min(u64::from(u32::MAX)) as u32;
    let bytes = u64::from(total) * SECTOR as u64;
    // Cluster sizes as Microsoft's table gives them for FAT32.
    let spc: u32 = match bytes {
        b if b <= 260 << 20 => 1,
        b if b <= 8 << 30 => 8,
        b if b <= 16 << 30 => 16,
        b if b <= 32 << 30 => 32,
        _ => 64,
    };
    let reserved = 32u32;
    let fats = 2u32;
    if total < reserved + 64 {
        return Err(FormatError::TooSmall(u64::from(total)));
    }
    // Enough FAT for every cluster the rest of the disk could hold.
    let fat_sectors = ((total - reserved) / spc + 2).div_ceil(SECTOR as u32 / 4);
    let data_start = reserved + fats * fat_sectors;
    if data_start + 2 * spc > total {
        return Err(FormatError::TooSmall(u64::from(total)));
    }
    let clusters = (total - data_start) / spc;

    let mut boot = [0u8; SECTOR];
    boot[..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
    boot[3..11].copy_from_slice(b"KILN    ");
    put16(&mut boot, 11, 512);
    boot[13] = spc as u8;
    put16(&mut boot, 14, reserved as u16);
    boot[16] = fats as u8;
    boot[21] = 0xF8;
    put16(&mut boot, 24, 32);
    put16(&mut boot, 26, 64);
    put32(&mut boot, 32, total);
    put32(&mut boot, 36, fat_sectors);
    put32(&mut boot, 44, 2);
    put16(&mut boot, 48, 1);
    put16(&mut boot, 50, 6);
    boot[64] = 0x80;
    boot[66] = 0x29;
    put32(&mut boot, 67, volume_id);
    let mut name = [b' '; 11];
    for (d, s) in name.iter_mut().zip(label.bytes().filter(|b| b.is_ascii_graphic() || *b == b' ')) {
        *d = s.to_ascii_uppercase();
    }
    if label.is_empty() {
        name.copy_from_slice(b"NO NAME    ");
    }
    boot[71..82].copy_from_slice(&name);
    boot[82..90].copy_from_slice(b"FAT32   ");
    boot[510] = 0x55;
    boot[511] = 0xAA;

    let mut fsinfo = [0u8; SECTOR];
    put32(&mut fsinfo, 0, 0x4161_5252);
    put32(&mut fsinfo, 484, 0x6141_7272);
    put32(&mut fsinfo, 488, clusters - 1); // the root directory has one
    put32(&mut fsinfo, 492, 3);
    put32(&mut fsinfo, 508, 0xAA55_0000);

    // Reserved area, FATs and the root cluster: zeroes first, then the structures.
    let zeroes = vec![0u8; 128 * SECTOR];
    let mut s = 0u32;
    let end = data_start + spc;
    while s < end {
        let n = (end - s).min(128);
        dev.write(u64::from(s), &zeroes[..n as usize * SECTOR]).map_err(dv)?;
        s += n;
    }
    for base in [0u64, 6] {
        dev.write(base, &boot).map_err(dv)?;
        dev.write(base + 1, &fsinfo).map_err(dv)?;
    }
    let mut fat0 = [0u8; SECTOR];
    put32(&mut fat0, 0, 0x0FFF_FFF8);
    put32(&mut fat0, 4, 0x0FFF_FFFF);
    put32(&mut fat0, 8, EOC); // root directory
    for f in 0..fats {
        dev.write(u64::from(reserved + f * fat_sectors), &fat0).map_err(dv)?;
    }
    if !label.is_empty() {
        let mut root = [0u8; SECTOR];
        root[..11].copy_from_slice(&name);
        root[11] = ATTR_VOLUME_ID;
        dev.write(u64::from(data_start), &root).map_err(dv)?;
    }
    dev.flush().map_err(dv)
}

/// An inode: a directory entry found (or made) once and kept while the volume is mounted, so
/// that its number stays the same.
#[derive(Debug, Clone)]
struct Node {
    parent: Ino,
    /// Slot index of the short entry in the parent directory, and how many long-name slots
    /// precede it. None for the root and for unlinked inodes.
    slot: Option<(u32, u32)>,
    /// The short directory entry (attributes, times, first cluster, size).
    raw: [u8; SLOT],
    /// The cluster chain, once read.
    chain: Option<Vec<u32>>,
    open: u32,
}

impl Node {
    fn is_dir(&self) -> bool {
        self.raw[11] & ATTR_DIRECTORY != 0
    }
    fn first(&self) -> u32 {
        (u32::from(le16(&self.raw, 20)) << 16 | u32::from(le16(&self.raw, 26))) & ENTRY_MASK
    }
    fn set_first(&mut self, c: u32) {
        put16(&mut self.raw, 20, (c >> 16) as u16);
        put16(&mut self.raw, 26, c as u16);
    }
    fn size(&self) -> u32 {
        le32(&self.raw, 28)
    }
    fn set_size(&mut self, s: u32) {
        put32(&mut self.raw, 28, s);
    }
}

/// One entry as read from a directory.
#[derive(Clone)]
struct RawEntry {
    name: Vec<u8>,
    slot: u32,
    lfn: u32,
    raw: [u8; SLOT],
}

struct Volume<D> {
    dev: D,
    g: Geometry,
    read_only: bool,
    free: u32,
    next_free: u32,
    fat_cache: BTreeMap<u32, Box<[u8; SECTOR]>>,
    /// FAT sectors changed in the cache and not yet written.
    fat_dirty: BTreeSet<u32>,
    /// Directories read so far, by inode.
    dirs: BTreeMap<Ino, DirCache>,
    dir_cache_bytes: usize,
    /// The FSInfo sector, if the volume has a valid one, and the (free, next free) it holds
    /// on the device.
    fsinfo: Option<Box<[u8; SECTOR]>>,
    fsinfo_written: (u32, u32),
    nodes: BTreeMap<Ino, Node>,
    /// (parent, slot of the short entry) → inode.
    by_slot: BTreeMap<(Ino, u32), Ino>,
    next_ino: Ino,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
}

/// A mounted FAT32 volume.
pub struct FatFs<D> {
    vol: Mutex<Volume<D>>,
}

impl<D: BlockDevice> FatFs<D> {
    /// Mounts the volume on `dev`. `clock` gives the wall-clock time (ns since the epoch)
    /// for timestamps. Writable unless `read_only` or the device is read-only.
    pub fn mount(mut dev: D, read_only: bool, clock: Box<dyn Fn() -> u64 + Send + Sync>) -> Result<Self, FormatError> {
        let mut boot = [0u8; SECTOR];
        dev.read(0, &mut boot).map_err(FormatError::Device)?;
        let g = parse_boot(&boot, dev.sectors())?;
        let read_only = read_only || dev.read_only();
        let mut root = [0u8; SLOT];
        root[11] = ATTR_DIRECTORY;
        let mut root_node = Node { parent: ROOT_INO, slot: None, raw: root, chain: None, open: 0 };
        root_node.set_first(g.root);
        let mut vol = Volume {
            dev,
            g,
            read_only,
            free: 0,
            next_free: 2,
            fat_cache: BTreeMap::new(),
            fat_dirty: BTreeSet::new(),
            dirs: BTreeMap::new(),
            dir_cache_bytes: 0,
            fsinfo: None,
            fsinfo_written: (0, 0),
            nodes: BTreeMap::new(),
            by_slot: BTreeMap::new(),
            next_ino: ROOT_INO + 1,
            clock,
        };
        vol.nodes.insert(ROOT_INO, root_node);
        // Count free clusters (the FSInfo count may be stale after another OS wrote), reading
        // the FAT in large requests and keeping what fits in the FAT cache.
        let mut free = 0;
        let mut buf = vec![0u8; 128 * SECTOR];
        let fat_used = (u64::from(g.cluster_end) * 4).div_ceil(SECTOR as u64) as u32;
        let mut s = 0;
        while s < fat_used {
            let n = (fat_used - s).min(128);
            let chunk = &mut buf[..n as usize * SECTOR];
            vol.dev.read(u64::from(g.fat_start + s), chunk).map_err(FormatError::Device)?;
            for (k, e) in chunk.chunks_exact(4).enumerate() {
                let c = s * (SECTOR as u32 / 4) + k as u32;
                if (2..g.cluster_end).contains(&c) && le32(e, 0) & ENTRY_MASK == FREE {
                    free += 1;
                }
            }
            for (k, sector) in chunk.chunks_exact(SECTOR).enumerate() {
                if vol.fat_cache.len() < FAT_CACHE_SECTORS {
                    let mut b = Box::new([0u8; SECTOR]);
                    b.copy_from_slice(sector);
                    vol.fat_cache.insert(s + k as u32, b);
                }
            }
            s += n;
        }
        vol.free = free;
        // FSInfo: where the last writer stopped allocating (a hint only), and the sector to
        // update at sync.
        let mut info = Box::new([0u8; SECTOR]);
        if g.fsinfo != 0 && g.fsinfo < g.fat_start {
            vol.dev.read(u64::from(g.fsinfo), &mut info[..]).map_err(FormatError::Device)?;
            if le32(&info[..], 0) == 0x4161_5252 && le32(&info[..], 484) == 0x6141_7272 {
                let next = le32(&info[..], 492);
                if g.valid(next) {
                    vol.next_free = next;
                }
                vol.fsinfo_written = (le32(&info[..], 488), next);
                vol.fsinfo = Some(info);
            }
        }
        Ok(FatFs { vol: Mutex::new(vol) })
    }

    /// Writes back what is kept in memory (without flushing the device's cache: call
    /// [`Filesystem::sync`] first for that) and gives the device back.
    pub fn into_device(self) -> D {
        let mut vol = self.vol.into_inner();
        if let Err(e) = vol.write_back().and_then(|()| vol.write_fsinfo()) {
            log::warn!("fat: writing back the volume's metadata failed: {e:?}");
        }
        vol.dev
    }

    /// Runs `f` on the device (for tests that inspect or break it).
    pub fn with_device<R>(&self, f: impl FnOnce(&mut D) -> R) -> R {
        f(&mut self.vol.lock().dev)
    }

    /// Runs a change on the volume, then writes back the metadata it changed (also after a
    /// failure midway: what was changed must reach the device).
    fn change<R>(&self, f: impl FnOnce(&mut Volume<D>) -> Result<R, Errno>) -> Result<R, Errno> {
        let mut v = self.vol.lock();
        let r = f(&mut v);
        let written = v.write_back();
        let r = r?;
        written.map(|()| r)
    }

    /// The inode at `path` (components split on `/`, relative to the root).
    pub fn resolve(&self, path: &str) -> Result<Ino, Errno> {
        let mut ino = ROOT_INO;
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            ino = if part == ".." { self.parent(ino)? } else { self.lookup(ino, part.as_bytes())? };
        }
        Ok(ino)
    }
}

// --- names -------------------------------------------------------------------------------

fn lfn_checksum(short: &[u8]) -> u8 {
    short[..11].iter().fold(0u8, |sum, &b| sum.rotate_right(1).wrapping_add(b))
}

fn short_display(raw: &[u8; SLOT]) -> Vec<u8> {
    let base = raw[..8].iter().rposition(|&b| b != b' ').map_or(&raw[..0], |e| &raw[..=e]);
    let ext = raw[8..11].iter().rposition(|&b| b != b' ').map_or(&raw[8..8], |e| &raw[8..=8 + e]);
    let lower_base = raw[12] & 0x08 != 0;
    let lower_ext = raw[12] & 0x10 != 0;
    let mut name: Vec<u8> = base.iter().map(|&b| if lower_base { b.to_ascii_lowercase() } else { b }).collect();
    if name.first() == Some(&0x05) {
        name[0] = 0xE5;
    }
    if !ext.is_empty() {
        name.push(b'.');
        name.extend(ext.iter().map(|&b| if lower_ext { b.to_ascii_lowercase() } else { b }));
    }
    name
}

fn is_short_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'()-@^_`{}~".contains(&b)
}

/// The 11-byte short name when `name` is already a valid upper-case 8.3 name.
fn exact_short_name(name: &[u8]) -> Option<[u8; 11]> {
    let (base, ext) = match name.iter().rposition(|&b| b == b'.') {
        Some(dot) => (&name[..dot], &name[dot + 1..]),
        None => (name, &name[..0]),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || !base.iter().chain(ext).all(|&b| is_short_char(b)) {
        return None;
    }
    if name.contains(&b'.') && ext.is_empty() {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base);
    out[8..8 + ext.len()].copy_from_slice(ext);
    Some(out)
}

/// A short name for a long one: BASIS~N.EXT, unique among `taken`.
fn generate_short_name(name: &[u8], taken: &dyn Fn(&[u8; 11]) -> bool) -> Result<[u8; 11], Errno> {
    let clean = |part: &[u8], max: usize| -> Vec<u8> {
        part.iter()
            .filter(|&&b| b != b' ' && b != b'.')
            .map(|&b| {
                let u = b.to_ascii_uppercase();
                if is_short_char(u) { u } else { b'_' }
            })
            .take(max)
            .collect()
    };
    let (base, ext) = match name.iter().rposition(|&b| b == b'.') {
        Some(dot) if dot > 0 => (clean(&name[..dot], 8), clean(&name[dot + 1..], 3)),
        _ => (clean(name, 8), Vec::new()),
    };
    let base = if base.is_empty() { b"_".to_vec() } else { base };
    for n in 1..1_000_000u32 {
        let tail = alloc::format!("~{n}");
        let keep = base.len().min(8 - tail.len());
        let mut out = [b' '; 11];
        out[..keep].copy_from_slice(&base[..keep]);
        out[keep..keep + tail.len()].copy_from_slice(tail.as_bytes());
        out[8..8 + ext.len()].copy_from_slice(&ext);
        if !taken(&out) {
            return Ok(out);
        }
    }
    Err(Errno::ENOSPC)
}

/// The UTF-16 long name, validated as VFAT accepts it.
fn long_name_units(name: &[u8]) -> Result<Vec<u16>, Errno> {
    let s = core::str::from_utf8(name).map_err(|_| Errno::EINVAL)?;
    if s.bytes().any(|b| b < 0x20 || b"\"*/:<>?\\|".contains(&b)) {
        return Err(Errno::EINVAL);
    }
    let units: Vec<u16> = s.encode_utf16().collect();
    if units.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(units)
}

/// The 11-byte short name and its case bits (byte 12 of the entry: 0x08 base in lower case,
/// 0x10 extension in lower case) when `name` is an 8.3 name whose base and extension are each
/// in one case ("readme.txt", "Makefile" is not): such a name needs no long-name slots, as
/// Windows NT and Linux store it.
fn short_name_for(name: &[u8]) -> Option<([u8; 11], u8)> {
    let (base, ext) = match name.iter().rposition(|&b| b == b'.') {
        Some(dot) => (&name[..dot], &name[dot + 1..]),
        None => (name, &name[..0]),
    };
    let case = |part: &[u8], lower_bit: u8| match (part.iter().any(u8::is_ascii_lowercase), part.iter().any(u8::is_ascii_uppercase)) {
        (true, true) => None,
        (true, false) => Some(lower_bit),
        (false, _) => Some(0),
    };
    let bits = case(base, 0x08)? | case(ext, 0x10)?;
    exact_short_name(&name.to_ascii_uppercase()).map(|short| (short, bits))
}

/// The directory slots for `name` with the short entry `short` last; `taken` says which short
/// names the directory already uses.
fn entry_slots(name: &[u8], short: [u8; SLOT], taken: &dyn Fn(&[u8; 11]) -> bool) -> Result<Vec<u8>, Errno> {
    let units = long_name_units(name)?;
    let mut short = short;
    short[12] = 0;
    if let Some((exact, case)) = short_name_for(name)
        && !taken(&exact)
    {
        short[..11].copy_from_slice(&exact);
        short[12] = case;
        return Ok(short.to_vec());
    }
    let generated = generate_short_name(name, taken)?;
    short[..11].copy_from_slice(&generated);
    short[12] = 0;
    let sum = lfn_checksum(&short);
    let count = units.len().div_ceil(13);
    let mut out = Vec::with_capacity((count + 1) * SLOT);
    for ord in (1..=count).rev() {
        let mut e = [0u8; SLOT];
        e[0] = ord as u8 | if ord == count { 0x40 } else { 0 };
        e[11] = ATTR_LFN;
        e[13] = sum;
        let offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
        for (k, off) in offsets.iter().enumerate() {
            let i = (ord - 1) * 13 + k;
            let unit = match i.cmp(&units.len()) {
                core::cmp::Ordering::Less => units[i],
                core::cmp::Ordering::Equal => 0,
                core::cmp::Ordering::Greater => 0xFFFF,
            };
            put16(&mut e, *off, unit);
        }
        out.extend_from_slice(&e);
    }
    out.extend_from_slice(&short);
    Ok(out)
}

// --- time --------------------------------------------------------------------------------

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (date, time) in FAT's encoding (UTC, 2-second resolution, 1980-2107).
fn fat_datetime(unix_sec: i64) -> (u16, u16) {
    let min = days_from_civil(1980, 1, 1) * 86_400;
    let max = days_from_civil(2107, 12, 31) * 86_400 + 86_399;
    let t = unix_sec.clamp(min, max);
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let secs = t.rem_euclid(86_400);
    let date = ((y - 1980) as u16) << 9 | (m as u16) << 5 | d as u16;
    let time = ((secs / 3600) as u16) << 11 | (((secs / 60) % 60) as u16) << 5 | ((secs % 60) / 2) as u16;
    (date, time)
}

fn unix_time(date: u16, time: u16) -> Timestamp {
    if date == 0 {
        return Timestamp::default();
    }
    let (y, m, d) = (1980 + i64::from(date >> 9), u32::from((date >> 5) & 0xF).max(1), u32::from(date & 0x1F).max(1));
    let secs = i64::from(time >> 11) * 3600 + i64::from((time >> 5) & 0x3F) * 60 + i64::from(time & 0x1F) * 2;
    Timestamp { sec: days_from_civil(y, m, d) * 86_400 + secs, nsec: 0 }
}

// --- the volume ----------------------------------------------------------------------------

/// A directory's slots, read from the device once and then kept: lookups, creates and
/// unlinks work on this copy, and its changed sectors are written back by
/// [`Volume::write_back`].
struct DirCache {
    /// Every slot of the directory's clusters.
    bytes: Vec<u8>,
    /// The entries (without `.`, `..` and the volume label), by slot of their short entry.
    entries: BTreeMap<u32, RawEntry>,
    /// (ASCII-lower-cased name, slot of the short entry), for lookups without a scan; the
    /// slot keeps apart two entries whose names differ only in case (another system's work).
    by_name: BTreeSet<(Vec<u8>, u32)>,
    /// Short names in use and by how many entries, to generate unique ones.
    shorts: BTreeMap<[u8; 11], u32>,
    /// Sectors of `bytes` (by index) changed since they were last written.
    dirty: BTreeSet<u32>,
}

fn short_of(raw: &[u8; SLOT]) -> [u8; 11] {
    let mut s = [0u8; 11];
    s.copy_from_slice(&raw[..11]);
    s
}

impl DirCache {
    fn new(bytes: Vec<u8>) -> Self {
        let mut c = DirCache { bytes, entries: BTreeMap::new(), by_name: BTreeSet::new(), shorts: BTreeMap::new(), dirty: BTreeSet::new() };
        for e in parse_dir(&c.bytes) {
            c.insert(e);
        }
        c
    }

    fn insert(&mut self, e: RawEntry) {
        self.by_name.insert((e.name.to_ascii_lowercase(), e.slot));
        *self.shorts.entry(short_of(&e.raw)).or_default() += 1;
        self.entries.insert(e.slot, e);
    }

    fn forget_short(&mut self, short: [u8; 11]) {
        if let Some(n) = self.shorts.get_mut(&short) {
            *n -= 1;
            if *n == 0 {
                self.shorts.remove(&short);
            }
        }
    }

    fn remove(&mut self, slot: u32) {
        if let Some(e) = self.entries.remove(&slot) {
            self.by_name.remove(&(e.name.to_ascii_lowercase(), slot));
            self.forget_short(short_of(&e.raw));
        }
    }

    fn find(&self, name: &[u8]) -> Option<&RawEntry> {
        let key = name.to_ascii_lowercase();
        let (found, slot) = self.by_name.range((key.clone(), 0)..).next()?;
        if *found != key {
            return None;
        }
        self.entries.get(slot)
    }

    /// Stores whole slots from slot `first` on and marks their sectors changed. A known
    /// entry's short slot rewritten (size, first cluster, times, attributes) updates the
    /// parsed copy too.
    fn write(&mut self, first: u32, data: &[u8]) -> Result<(), Errno> {
        let start = first as usize * SLOT;
        let end = start + data.len();
        if end > self.bytes.len() || data.len() % SLOT != 0 {
            return Err(Errno::EIO);
        }
        self.bytes[start..end].copy_from_slice(data);
        for s in start / SECTOR..end.div_ceil(SECTOR) {
            self.dirty.insert(s as u32);
        }
        for (k, slot) in data.chunks_exact(SLOT).enumerate() {
            let at = first + k as u32;
            if slot[0] == DELETED || slot[0] == 0 || slot[11] & 0x3F == ATTR_LFN {
                continue;
            }
            let Some(e) = self.entries.get_mut(&at) else { continue };
            let old = short_of(&e.raw);
            e.raw.copy_from_slice(slot);
            let new = short_of(&e.raw);
            if old != new {
                self.forget_short(old);
                *self.shorts.entry(new).or_default() += 1;
            }
        }
        Ok(())
    }

    /// Marks slots `first..=last` deleted.
    fn delete(&mut self, first: u32, last: u32) -> Result<(), Errno> {
        for s in first..=last {
            let at = s as usize * SLOT;
            if at >= self.bytes.len() {
                return Err(Errno::EIO);
            }
            self.bytes[at] = DELETED;
            self.dirty.insert((at / SECTOR) as u32);
        }
        Ok(())
    }
}

/// The entries of a directory's bytes (without `.`, `..` and the volume label).
fn parse_dir(bytes: &[u8]) -> Vec<RawEntry> {
    let mut out = Vec::new();
    let mut lfn: Vec<u16> = Vec::new();
    let mut lfn_slots = 0u32;
    let mut lfn_sum = 0u8;
    let mut lfn_next = 0u8;
    for (i, e) in bytes.chunks_exact(SLOT).enumerate() {
        if e[0] == 0 {
            break;
        }
        if e[0] == DELETED {
            lfn_next = 0;
            continue;
        }
        if e[11] & 0x3F == ATTR_LFN {
            let ord = e[0] & 0x1F;
            if e[0] & 0x40 != 0 {
                lfn = vec![0; usize::from(ord) * 13];
                lfn_slots = 0;
                lfn_sum = e[13];
                lfn_next = ord;
            }
            if ord == 0 || ord != lfn_next || e[13] != lfn_sum {
                lfn_next = 0;
                continue;
            }
            let offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];
            for (k, off) in offsets.iter().enumerate() {
                lfn[(usize::from(ord) - 1) * 13 + k] = le16(e, *off);
            }
            lfn_slots += 1;
            lfn_next = ord - 1;
            continue;
        }
        let mut raw = [0u8; SLOT];
        raw.copy_from_slice(e);
        let complete = lfn_next == 0 && lfn_slots > 0 && lfn_checksum(&raw) == lfn_sum;
        let (name, lfn_count) = if complete {
            let end = lfn.iter().position(|&u| u == 0 || u == 0xFFFF).unwrap_or(lfn.len());
            let s: String = char::decode_utf16(lfn[..end].iter().copied()).map(|r| r.unwrap_or('\u{FFFD}')).collect();
            (s.into_bytes(), lfn_slots)
        } else {
            (short_display(&raw), 0)
        };
        lfn_slots = 0;
        lfn_next = 0;
        if raw[11] & ATTR_VOLUME_ID != 0 || name == b"." || name == b".." {
            continue;
        }
        out.push(RawEntry { name, slot: i as u32, lfn: lfn_count, raw });
    }
    out
}

impl<D: BlockDevice> Volume<D> {
    fn now_sec(&self) -> i64 {
        ((self.clock)() / 1_000_000_000) as i64
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.read_only { Err(Errno::EROFS) } else { Ok(()) }
    }

    fn fat_sector(&mut self, sector: u32) -> Result<&mut [u8; SECTOR], Errno> {
        if !self.fat_cache.contains_key(&sector) {
            if self.fat_cache.len() >= FAT_CACHE_SECTORS {
                // Changed sectors are written before the cache forgets them.
                self.write_fat()?;
                self.fat_cache.clear();
            }
            let mut buf = Box::new([0u8; SECTOR]);
            self.dev.read(u64::from(self.g.fat_start + sector), &mut buf[..])?;
            self.fat_cache.insert(sector, buf);
        }
        self.fat_cache.get_mut(&sector).map(|b| &mut **b).ok_or(Errno::EIO)
    }

    fn fat_get(&mut self, c: u32) -> Result<u32, Errno> {
        let off = c as usize * 4;
        let s = self.fat_sector((off / SECTOR) as u32)?;
        Ok(le32(&s[..], off % SECTOR) & ENTRY_MASK)
    }

    /// Changes a FAT entry in the cache; [`Volume::write_fat`] writes it to every FAT copy.
    fn fat_set(&mut self, c: u32, v: u32) -> Result<(), Errno> {
        let off = c as usize * 4;
        let sector = (off / SECTOR) as u32;
        let s = self.fat_sector(sector)?;
        let old = le32(&s[..], off % SECTOR);
        put32(&mut s[..], off % SECTOR, (old & !ENTRY_MASK) | (v & ENTRY_MASK));
        self.fat_dirty.insert(sector);
        Ok(())
    }

    /// Writes the changed FAT sectors to every copy of the FAT, runs of consecutive sectors
    /// in one request each. A sector stays marked until it is written.
    fn write_fat(&mut self) -> Result<(), Errno> {
        let mut buf = Vec::new();
        while let Some(&first) = self.fat_dirty.first() {
            buf.clear();
            let mut n = 0u32;
            while n < 128 && self.fat_dirty.contains(&(first + n)) {
                let Some(s) = self.fat_cache.get(&(first + n)) else { break };
                buf.extend_from_slice(&s[..]);
                n += 1;
            }
            if n == 0 {
                // Not cached: cannot happen (changed sectors are written before eviction).
                self.fat_dirty.remove(&first);
                continue;
            }
            for f in 0..self.g.fats {
                self.dev.write(u64::from(self.g.fat_start + f * self.g.fat_sectors + first), &buf)?;
            }
            for s in first..first + n {
                self.fat_dirty.remove(&s);
            }
        }
        Ok(())
    }

    /// The chain from `first`; `EIO` for a corrupt one (a loop or a bad link).
    fn read_chain(&mut self, first: u32) -> Result<Vec<u32>, Errno> {
        let mut chain = Vec::new();
        let mut c = first;
        while c != 0 {
            if !self.g.valid(c) || chain.len() as u32 >= self.g.cluster_end {
                log::warn!("fat: corrupt cluster chain from {first} (cluster {c:#x})");
                return Err(Errno::EIO);
            }
            chain.push(c);
            let next = self.fat_get(c)?;
            if next >= BAD {
                break;
            }
            c = next;
        }
        Ok(chain)
    }

    fn node(&self, ino: Ino) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    /// Reads `ino`'s cluster chain into its node, once.
    fn load_chain(&mut self, ino: Ino) -> Result<(), Errno> {
        let node = self.node(ino)?;
        if node.chain.is_some() {
            return Ok(());
        }
        let chain = self.read_chain(node.first())?;
        self.node_mut(ino)?.chain = Some(chain);
        Ok(())
    }

    fn chain_len(&mut self, ino: Ino) -> Result<usize, Errno> {
        self.load_chain(ino)?;
        Ok(self.node(ino)?.chain.as_ref().map_or(0, Vec::len))
    }

    /// Takes `ino`'s chain out of its node, to be given back with [`Volume::put_chain`]: I/O
    /// must not copy a chain (a 32 MiB file on 512-byte clusters has 65,536 links), and the
    /// node cannot stay borrowed while the device is used. If it is not given back (an
    /// error), it is read from the FAT again when next needed.
    fn take_chain(&mut self, ino: Ino) -> Result<Vec<u32>, Errno> {
        self.load_chain(ino)?;
        Ok(self.node_mut(ino)?.chain.take().unwrap_or_default())
    }

    fn put_chain(&mut self, ino: Ino, chain: Vec<u32>) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.chain = Some(chain);
        }
    }

    fn alloc_cluster(&mut self) -> Result<u32, Errno> {
        if self.free == 0 {
            return Err(Errno::ENOSPC);
        }
        let span = self.g.cluster_end - 2;
        let start = if self.g.valid(self.next_free) { self.next_free } else { 2 };
        for k in 0..span {
            let c = 2 + (start - 2 + k) % span;
            if self.fat_get(c)? == FREE {
                self.fat_set(c, EOC)?;
                self.free -= 1;
                self.next_free = c + 1;
                return Ok(c);
            }
        }
        self.free = 0;
        Err(Errno::ENOSPC)
    }

    fn free_chain(&mut self, chain: &[u32]) -> Result<(), Errno> {
        for &c in chain {
            self.fat_set(c, FREE)?;
            self.free += 1;
        }
        Ok(())
    }

    fn zero_cluster(&mut self, c: u32) -> Result<(), Errno> {
        let zeroes = vec![0u8; self.g.cluster_bytes()];
        self.dev.write(self.g.cluster_sector(c), &zeroes)
    }

    /// Grows `ino`'s chain to `count` clusters, zeroing the new ones if `zero` (a file's new
    /// clusters need not be: bytes past a file's end are zeroed when the file is extended
    /// over them, see [`Volume::set_len`], and a write covers what it writes).
    fn grow(&mut self, ino: Ino, count: usize, zero: bool) -> Result<(), Errno> {
        let mut chain = self.take_chain(ino)?;
        let before = chain.len();
        let mut result = Ok(());
        while chain.len() < count {
            let c = match self.alloc_cluster() {
                Ok(c) => c,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if zero && let Err(e) = self.zero_cluster(c) {
                result = Err(e);
                let _ = self.free_chain(&[c]);
                break;
            }
            let linked = match chain.last() {
                Some(&last) => self.fat_set(last, c),
                None => self.node_mut(ino).map(|n| n.set_first(c)),
            };
            if let Err(e) = linked {
                result = Err(e);
                let _ = self.free_chain(&[c]);
                break;
            }
            chain.push(c);
        }
        let grown = chain.len() - before;
        self.put_chain(ino, chain);
        if grown > 0
            && let Some(d) = self.dirs.get_mut(&ino)
        {
            let add = grown * self.g.cluster_bytes();
            d.bytes.resize(d.bytes.len() + add, 0);
            self.dir_cache_bytes += add;
        }
        if before == 0 && grown > 0 {
            self.write_entry(ino)?;
        }
        result
    }

    /// Splits `[off, off + len)` of a chain into runs of physically consecutive clusters and
    /// calls `io(self, device byte address, range of the caller's buffer)` for each.
    fn for_runs(
        &mut self,
        chain: &[u32],
        off: u64,
        len: usize,
        mut io: impl FnMut(&mut Self, u64, Range<usize>) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let cb = self.g.cluster_bytes() as u64;
        let mut done = 0usize;
        while done < len {
            let pos = off + done as u64;
            let index = (pos / cb) as usize;
            let first = *chain.get(index).ok_or(Errno::EIO)?;
            let mut run = 1;
            while index + run < chain.len() && chain[index + run] == first + run as u32 && run < 128 {
                run += 1;
            }
            let in_cluster = pos % cb;
            let n = ((run as u64 * cb - in_cluster) as usize).min(len - done);
            let base = self.g.cluster_sector(first) * SECTOR as u64 + in_cluster;
            io(self, base, done..done + n)?;
            done += n;
        }
        Ok(())
    }

    /// Reads bytes `[off, off + buf.len())` of `ino`'s clusters.
    fn chain_read(&mut self, ino: Ino, off: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let chain = self.take_chain(ino)?;
        let r = self.for_runs(&chain, off, buf.len(), |v, at, range| v.disk_read(at, &mut buf[range]));
        self.put_chain(ino, chain);
        r
    }

    /// Writes `data` at `off` of `ino`'s clusters (which must exist).
    fn chain_write(&mut self, ino: Ino, off: u64, data: &[u8]) -> Result<(), Errno> {
        let chain = self.take_chain(ino)?;
        let r = self.for_runs(&chain, off, data.len(), |v, at, range| v.disk_write(at, &data[range]));
        self.put_chain(ino, chain);
        r
    }

    /// Byte-addressed reads over whole sectors.
    fn disk_read(&mut self, byte: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let s = SECTOR as u64;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = byte + done as u64;
            let (sector, in_sector) = (pos / s, (pos % s) as usize);
            let left = buf.len() - done;
            if in_sector == 0 && left >= SECTOR {
                let n = left - left % SECTOR;
                self.dev.read(sector, &mut buf[done..done + n])?;
                done += n;
            } else {
                let n = (SECTOR - in_sector).min(left);
                let mut tmp = [0u8; SECTOR];
                self.dev.read(sector, &mut tmp)?;
                buf[done..done + n].copy_from_slice(&tmp[in_sector..in_sector + n]);
                done += n;
            }
        }
        Ok(())
    }

    /// Byte-addressed writes over whole sectors (read-modify-write at unaligned edges only).
    fn disk_write(&mut self, byte: u64, data: &[u8]) -> Result<(), Errno> {
        let s = SECTOR as u64;
        let mut done = 0usize;
        while done < data.len() {
            let pos = byte + done as u64;
            let (sector, in_sector) = (pos / s, (pos % s) as usize);
            let left = data.len() - done;
            if in_sector == 0 && left >= SECTOR {
                let n = left - left % SECTOR;
                self.dev.write(sector, &data[done..done + n])?;
                done += n;
            } else {
                let n = (SECTOR - in_sector).min(left);
                let mut tmp = [0u8; SECTOR];
                self.dev.read(sector, &mut tmp)?;
                tmp[in_sector..in_sector + n].copy_from_slice(&data[done..done + n]);
                self.dev.write(sector, &tmp)?;
                done += n;
            }
        }
        Ok(())
    }

    /// `dir`'s cache, reading the directory on first use.
    fn dir_cache(&mut self, dir: Ino) -> Result<&mut DirCache, Errno> {
        if !self.node(dir)?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !self.dirs.contains_key(&dir) {
            if self.dir_cache_bytes > DIR_CACHE_BYTES {
                // Bounded memory: write every directory back, then forget them all.
                self.write_dirs()?;
                self.dirs.clear();
                self.dir_cache_bytes = 0;
            }
            let len = self.chain_len(dir)? * self.g.cluster_bytes();
            let mut bytes = vec![0u8; len];
            self.chain_read(dir, 0, &mut bytes)?;
            self.dir_cache_bytes += len;
            self.dirs.insert(dir, DirCache::new(bytes));
        }
        self.dirs.get_mut(&dir).ok_or(Errno::EIO)
    }

    /// Writes the changed sectors of every cached directory.
    fn write_dirs(&mut self) -> Result<(), Errno> {
        let dirty: Vec<Ino> = self.dirs.iter().filter(|(_, d)| !d.dirty.is_empty()).map(|(&ino, _)| ino).collect();
        for dir in dirty {
            self.write_dir(dir)?;
        }
        Ok(())
    }

    /// Writes `dir`'s changed sectors, runs of consecutive ones in one request each.
    fn write_dir(&mut self, dir: Ino) -> Result<(), Errno> {
        let chain = self.take_chain(dir)?;
        let r = self.write_dir_with(dir, &chain);
        self.put_chain(dir, chain);
        r
    }

    fn write_dir_with(&mut self, dir: Ino, chain: &[u32]) -> Result<(), Errno> {
        let per_cluster = self.g.spc as usize;
        let disk_sector = |s: u32| -> Option<u64> {
            let c = *chain.get(s as usize / per_cluster)?;
            Some(self.g.cluster_sector(c) + (s as usize % per_cluster) as u64)
        };
        let Some(d) = self.dirs.get_mut(&dir) else { return Ok(()) };
        let mut buf = Vec::new();
        while let Some(&first) = d.dirty.first() {
            let at = disk_sector(first).ok_or(Errno::EIO)?;
            let mut n = 0u32;
            buf.clear();
            while n < 128 && d.dirty.contains(&(first + n)) && disk_sector(first + n) == Some(at + u64::from(n)) {
                let s = (first + n) as usize * SECTOR;
                buf.extend_from_slice(d.bytes.get(s..s + SECTOR).ok_or(Errno::EIO)?);
                n += 1;
            }
            self.dev.write(at, &buf)?;
            for s in first..first + n {
                d.dirty.remove(&s);
            }
        }
        Ok(())
    }

    /// Writes the changed FAT and directory sectors (FAT first: an entry never points at
    /// clusters the FAT on the device does not have) without flushing the device's cache.
    fn write_back(&mut self) -> Result<(), Errno> {
        if self.read_only {
            return Ok(());
        }
        self.write_fat()?;
        self.write_dirs()
    }

    /// Writes the FSInfo hint (free clusters, where to look for one) if it changed.
    fn write_fsinfo(&mut self) -> Result<(), Errno> {
        if self.read_only {
            return Ok(());
        }
        let now = (self.free, self.next_free);
        if let Some(info) = self.fsinfo.as_mut()
            && self.fsinfo_written != now
        {
            put32(&mut info[..], 488, now.0);
            put32(&mut info[..], 492, now.1);
            let copy = **info;
            self.dev.write(u64::from(self.g.fsinfo), &copy)?;
            self.fsinfo_written = now;
        }
        Ok(())
    }

    fn find(&mut self, dir: Ino, name: &[u8]) -> Result<RawEntry, Errno> {
        self.dir_cache(dir)?.find(name).cloned().ok_or(Errno::ENOENT)
    }

    /// The inode for an entry of `dir`, made on first sight.
    fn ino_for(&mut self, dir: Ino, e: &RawEntry) -> Ino {
        if let Some(&ino) = self.by_slot.get(&(dir, e.slot)) {
            return ino;
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node { parent: dir, slot: Some((e.slot, e.lfn)), raw: e.raw, chain: None, open: 0 });
        self.by_slot.insert((dir, e.slot), ino);
        ino
    }

    /// Writes `bytes` (whole slots) into directory `dir` from slot `first` on.
    fn write_slots(&mut self, dir: Ino, first: u32, bytes: &[u8]) -> Result<(), Errno> {
        self.dir_cache(dir)?.write(first, bytes)
    }

    /// Writes an inode's short entry back to its directory.
    fn write_entry(&mut self, ino: Ino) -> Result<(), Errno> {
        let node = self.node(ino)?;
        let (Some((slot, _)), parent, raw) = (node.slot, node.parent, node.raw) else { return Ok(()) };
        self.write_slots(parent, slot, &raw)
    }

    fn touch(&mut self, ino: Ino, modified: bool) -> Result<(), Errno> {
        let (date, time) = fat_datetime(self.now_sec());
        let n = self.node_mut(ino)?;
        let mut changed = le16(&n.raw, 18) != date;
        put16(&mut n.raw, 18, date);
        if modified {
            changed |= le16(&n.raw, 22) != time || le16(&n.raw, 24) != date;
            put16(&mut n.raw, 22, time);
            put16(&mut n.raw, 24, date);
            n.raw[11] |= ATTR_ARCHIVE;
        }
        if changed { self.write_entry(ino) } else { Ok(()) }
    }

    /// Finds (or makes, by growing the directory) `count` consecutive free slots.
    fn free_slots(&mut self, dir: Ino, count: u32) -> Result<u32, Errno> {
        let per = (self.g.cluster_bytes() / SLOT) as u32;
        let (total, run) = {
            let bytes = &self.dir_cache(dir)?.bytes;
            let total = (bytes.len() / SLOT) as u32;
            let mut run = 0;
            for i in 0..total {
                let b = bytes[i as usize * SLOT];
                if b == 0 {
                    // Everything from the end marker on is free.
                    let start = i - run;
                    if total - start >= count {
                        return Ok(start);
                    }
                    run = total - start;
                    break;
                }
                if b == DELETED {
                    run += 1;
                    if run == count {
                        return Ok(i + 1 - count);
                    }
                } else {
                    run = 0;
                }
            }
            (total, run)
        };
        // Grow the directory: the run continues into new, zeroed clusters.
        let start = total - run;
        let want = (start + count).div_ceil(per) as usize;
        if want * per as usize > 65_536 {
            return Err(Errno::ENOSPC);
        }
        let have = (total / per) as usize;
        self.grow(dir, want.max(have), true)?;
        Ok(start)
    }

    /// Adds an entry `name` to `dir` with the fields of `short` (name bytes are replaced);
    /// returns (short slot, long-name slots, the short entry as written).
    fn add_entry(&mut self, dir: Ino, name: &[u8], short: [u8; SLOT]) -> Result<(u32, u32, [u8; SLOT]), Errno> {
        let cache = self.dir_cache(dir)?;
        if cache.find(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let slots = entry_slots(name, short, &|s| cache.shorts.contains_key(s))?;
        let count = (slots.len() / SLOT) as u32;
        let first = self.free_slots(dir, count)?;
        self.write_slots(dir, first, &slots)?;
        let mut written = [0u8; SLOT];
        written.copy_from_slice(&slots[slots.len() - SLOT..]);
        let slot = first + count - 1;
        self.dir_cache(dir)?.insert(RawEntry { name: name.to_vec(), slot, lfn: count - 1, raw: written });
        self.touch(dir, true)?;
        Ok((slot, count - 1, written))
    }

    /// Marks an entry's slots deleted and forgets its slot.
    fn remove_entry(&mut self, ino: Ino) -> Result<(), Errno> {
        let node = self.node(ino)?;
        let Some((slot, lfn)) = node.slot else { return Ok(()) };
        let parent = node.parent;
        let cache = self.dir_cache(parent)?;
        cache.delete(slot - lfn, slot)?;
        cache.remove(slot);
        self.by_slot.remove(&(parent, slot));
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.slot = None;
        }
        self.touch(parent, true)
    }

    /// Frees an inode's clusters once it has no name and is not open.
    fn reap(&mut self, ino: Ino) -> Result<(), Errno> {
        let node = self.node(ino)?;
        if node.slot.is_some() || node.open > 0 || ino == ROOT_INO {
            return Ok(());
        }
        let chain = self.take_chain(ino)?;
        self.nodes.remove(&ino);
        // A removed directory's slots are never written back: its clusters may be reused.
        if let Some(d) = self.dirs.remove(&ino) {
            self.dir_cache_bytes -= d.bytes.len();
        }
        self.free_chain(&chain)
    }

    fn dir_is_empty(&mut self, dir: Ino) -> Result<bool, Errno> {
        Ok(self.dir_cache(dir)?.entries.is_empty())
    }

    fn metadata(&mut self, ino: Ino) -> Result<Metadata, Errno> {
        let cb = self.g.cluster_bytes() as u64;
        let node = self.node(ino)?;
        let (raw, dir, named, size) = (node.raw, node.is_dir(), node.slot.is_some(), node.size());
        let clusters = if dir || size > 0 { self.chain_len(ino)? as u64 } else { 0 };
        let perm = if dir {
            0o755
        } else if raw[11] & ATTR_READ_ONLY != 0 {
            0o444
        } else {
            0o644
        };
        let mtime = unix_time(le16(&raw, 24), le16(&raw, 22));
        let ctime = unix_time(le16(&raw, 16), le16(&raw, 14));
        Ok(Metadata {
            ino,
            kind: if dir { FileType::Directory } else { FileType::Regular },
            perm,
            nlink: if named || ino == ROOT_INO { 1 } else { 0 },
            uid: 0,
            gid: 0,
            size: if dir { clusters * cb } else { u64::from(size) },
            blocks: clusters * cb / 512,
            block_size: cb.max(4096) as u32,
            rdev: 0,
            atime: unix_time(le16(&raw, 18), 0),
            mtime,
            ctime: if ctime.sec == 0 { mtime } else { ctime.max(mtime) },
        })
    }

    fn set_len(&mut self, ino: Ino, len: u64) -> Result<(), Errno> {
        self.writable()?;
        let node = self.node(ino)?;
        if node.is_dir() {
            return Err(Errno::EISDIR);
        }
        let len32 = u32::try_from(len).map_err(|_| Errno::EFBIG)?;
        let old = u64::from(node.size());
        let cb = self.g.cluster_bytes() as u64;
        let want = len.div_ceil(cb) as usize;
        let have = self.chain_len(ino)?;
        if want < have {
            let mut chain = self.take_chain(ino)?;
            let cut = match want {
                0 => self.node_mut(ino).map(|n| n.set_first(0)),
                _ => self.fat_set(chain[want - 1], EOC),
            };
            if let Err(e) = cut {
                self.put_chain(ino, chain);
                return Err(e);
            }
            let gone = chain.split_off(want);
            self.put_chain(ino, chain);
            self.node_mut(ino)?.set_size(len32);
            self.write_entry(ino)?;
            self.free_chain(&gone)?;
        } else if len > old {
            // Bytes past the old end in its clusters may be stale: zero them.
            let tail_end = (have as u64 * cb).min(len);
            let mut at = old;
            if at < tail_end {
                let zeroes = vec![0u8; ((tail_end - at) as usize).min(64 * 1024)];
                while at < tail_end {
                    let n = ((tail_end - at) as usize).min(zeroes.len());
                    self.chain_write(ino, at, &zeroes[..n])?;
                    at += n as u64;
                }
            }
            self.grow(ino, want, true)?;
            self.node_mut(ino)?.set_size(len32);
            self.write_entry(ino)?;
        } else {
            self.node_mut(ino)?.set_size(len32);
            self.write_entry(ino)?;
        }
        self.touch(ino, true)
    }

    fn write_at(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.writable()?;
        let node = self.node(ino)?;
        if node.is_dir() {
            return Err(Errno::EISDIR);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let end = offset.checked_add(data.len() as u64).filter(|&e| e <= u64::from(u32::MAX)).ok_or(Errno::EFBIG)?;
        if offset > u64::from(node.size()) {
            self.set_len(ino, offset)?;
        }
        let cb = self.g.cluster_bytes() as u64;
        self.grow(ino, end.div_ceil(cb) as usize, false)?;
        self.chain_write(ino, offset, data)?;
        let n = self.node_mut(ino)?;
        if end > u64::from(n.size()) {
            n.set_size(end as u32);
            self.write_entry(ino)?;
        }
        self.touch(ino, true)?;
        Ok(data.len())
    }

    fn read_at(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let node = self.node(ino)?;
        if node.is_dir() {
            return Err(Errno::EISDIR);
        }
        let size = u64::from(node.size());
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = ((size - offset) as usize).min(buf.len());
        self.chain_read(ino, offset, &mut buf[..n])?;
        Ok(n)
    }

    fn new_short(&self, attr: u8) -> [u8; SLOT] {
        let mut raw = [0u8; SLOT];
        raw[11] = attr;
        let (date, time) = fat_datetime(self.now_sec());
        for (off, v) in [(14, time), (16, date), (18, date), (22, time), (24, date)] {
            put16(&mut raw, off, v);
        }
        raw
    }

    fn create(&mut self, dir: Ino, name: &[u8], node: NewNode<'_>) -> Result<Ino, Errno> {
        self.writable()?;
        let is_dir = match node {
            NewNode::Regular => false,
            NewNode::Directory => true,
            NewNode::Symlink { .. } | NewNode::Special { .. } => return Err(Errno::EPERM),
        };
        if !self.node(dir)?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        long_name_units(name)?;
        if self.dir_cache(dir)?.find(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let mut short = self.new_short(if is_dir { ATTR_DIRECTORY } else { ATTR_ARCHIVE });
        let mut cluster = 0;
        if is_dir {
            cluster = self.alloc_cluster()?;
            let parent_first = if dir == ROOT_INO { 0 } else { self.node(dir)?.first() };
            // The new directory's cluster in one write: `.`, `..` and zeroes.
            let mut dots = vec![0u8; self.g.cluster_bytes()];
            for (k, (name, target)) in [(b".          ", cluster), (b"..         ", parent_first)].iter().enumerate() {
                let e = &mut dots[k * SLOT..(k + 1) * SLOT];
                e.copy_from_slice(&short);
                e[..11].copy_from_slice(&name[..]);
                put16(e, 20, (target >> 16) as u16);
                put16(e, 26, *target as u16);
            }
            if let Err(e) = self.dev.write(self.g.cluster_sector(cluster), &dots) {
                let _ = self.free_chain(&[cluster]);
                return Err(e);
            }
            put16(&mut short, 20, (cluster >> 16) as u16);
            put16(&mut short, 26, cluster as u16);
        }
        let (slot, lfn, short) = match self.add_entry(dir, name, short) {
            Ok(s) => s,
            Err(e) => {
                if cluster != 0 {
                    let _ = self.free_chain(&[cluster]);
                }
                return Err(e);
            }
        };
        let e = RawEntry { name: name.to_vec(), slot, lfn, raw: short };
        Ok(self.ino_for(dir, &e))
    }

    fn unlink(&mut self, dir: Ino, name: &[u8], want_dir: bool) -> Result<(), Errno> {
        self.writable()?;
        let e = self.find(dir, name)?;
        let ino = self.ino_for(dir, &e);
        let is_dir = self.node(ino)?.is_dir();
        match (want_dir, is_dir) {
            (false, true) => return Err(Errno::EISDIR),
            (true, false) => return Err(Errno::ENOTDIR),
            (true, true) if !self.dir_is_empty(ino)? => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        self.remove_entry(ino)?;
        self.reap(ino)
    }

    fn rename(&mut self, from_dir: Ino, from: &[u8], to_dir: Ino, to: &[u8], flags: RenameFlags) -> Result<(), Errno> {
        self.writable()?;
        if !self.node(to_dir)?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let src_entry = self.find(from_dir, from)?;
        let src = self.ino_for(from_dir, &src_entry);
        let target = match self.find(to_dir, to) {
            Ok(e) => Some(self.ino_for(to_dir, &e)),
            Err(e) if e == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        if flags.contains(RenameFlags::EXCHANGE) {
            let Some(t) = target else { return Err(Errno::ENOENT) };
            return self.exchange(src, t);
        }
        let src_is_dir = self.node(src)?.is_dir();
        if let Some(t) = target {
            if t == src {
                if from_dir == to_dir && from == to {
                    return Ok(());
                }
                // Only the case changes ("a" -> "A"): rewrite the entry below.
            } else {
                if flags.contains(RenameFlags::NOREPLACE) {
                    return Err(Errno::EEXIST);
                }
                let t_is_dir = self.node(t)?.is_dir();
                match (src_is_dir, t_is_dir) {
                    (false, true) => return Err(Errno::EISDIR),
                    (true, false) => return Err(Errno::ENOTDIR),
                    (true, true) if !self.dir_is_empty(t)? => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
                self.remove_entry(t)?;
                self.reap(t)?;
            }
        }
        long_name_units(to)?;
        let raw = self.node(src)?.raw;
        // The new name is written before the old one goes, so that a failure (ENOSPC) or a
        // crash in between never loses the file; only a change of case must go first.
        let case_only = target == Some(src);
        if case_only {
            self.remove_entry(src)?;
        }
        let (slot, lfn, written) = self.add_entry(to_dir, to, raw)?;
        if !case_only {
            self.remove_entry(src)?;
        }
        let n = self.nodes.get_mut(&src).ok_or(Errno::ENOENT)?;
        n.parent = to_dir;
        n.slot = Some((slot, lfn));
        n.raw = written;
        self.by_slot.insert((to_dir, slot), src);
        if src_is_dir && from_dir != to_dir {
            self.set_dotdot(src, to_dir)?;
        }
        Ok(())
    }

    fn set_dotdot(&mut self, dir: Ino, parent: Ino) -> Result<(), Errno> {
        let target = if parent == ROOT_INO { 0 } else { self.node(parent)?.first() };
        let bytes = &self.dir_cache(dir)?.bytes;
        let mut e = [0u8; SLOT];
        e.copy_from_slice(bytes.get(SLOT..2 * SLOT).ok_or(Errno::EIO)?);
        if &e[..2] != b".." {
            return Err(Errno::EIO);
        }
        put16(&mut e, 20, (target >> 16) as u16);
        put16(&mut e, 26, target as u16);
        self.write_slots(dir, 1, &e)
    }

    /// RENAME_EXCHANGE: the two names swap what they point at.
    fn exchange(&mut self, a: Ino, b: Ino) -> Result<(), Errno> {
        if a == b {
            return Ok(());
        }
        let (na, nb) = (self.node(a)?.clone(), self.node(b)?.clone());
        let (Some((sa, la)), Some((sb, lb))) = (na.slot, nb.slot) else { return Err(Errno::ENOENT) };
        let mut ra = nb.raw;
        ra[..11].copy_from_slice(&na.raw[..11]);
        ra[12] = na.raw[12];
        let mut rb = na.raw;
        rb[..11].copy_from_slice(&nb.raw[..11]);
        rb[12] = nb.raw[12];
        // b's contents now live under a's name and vice versa.
        self.by_slot.insert((na.parent, sa), b);
        self.by_slot.insert((nb.parent, sb), a);
        {
            let n = self.nodes.get_mut(&b).ok_or(Errno::ENOENT)?;
            n.parent = na.parent;
            n.slot = Some((sa, la));
            n.raw = ra;
        }
        {
            let n = self.nodes.get_mut(&a).ok_or(Errno::ENOENT)?;
            n.parent = nb.parent;
            n.slot = Some((sb, lb));
            n.raw = rb;
        }
        self.write_entry(a)?;
        self.write_entry(b)?;
        if na.parent != nb.parent {
            if na.is_dir() {
                self.set_dotdot(a, nb.parent)?;
            }
            if nb.is_dir() {
                self.set_dotdot(b, na.parent)?;
            }
        }
        Ok(())
    }

    fn set_attr(&mut self, ino: Ino, attr: &SetAttr) -> Result<(), Errno> {
        self.writable()?;
        if attr.uid.is_some_and(|u| u != 0) || attr.gid.is_some_and(|g| g != 0) {
            return Err(Errno::EPERM);
        }
        let n = self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        if let Some(perm) = attr.perm
            && n.raw[11] & ATTR_DIRECTORY == 0
        {
            if perm & 0o222 == 0 {
                n.raw[11] |= ATTR_READ_ONLY;
            } else {
                n.raw[11] &= !ATTR_READ_ONLY;
            }
        }
        if let Some(t) = attr.mtime {
            let (date, time) = fat_datetime(t.sec);
            put16(&mut n.raw, 22, time);
            put16(&mut n.raw, 24, date);
        }
        if let Some(t) = attr.atime {
            put16(&mut n.raw, 18, fat_datetime(t.sec).0);
        }
        self.write_entry(ino)
    }

    fn sync(&mut self) -> Result<(), Errno> {
        if self.read_only {
            return Ok(());
        }
        self.write_back()?;
        self.write_fsinfo()?;
        self.dev.flush()
    }
}

impl<D: BlockDevice> Filesystem for FatFs<D> {
    fn type_name(&self) -> &'static str {
        "vfat"
    }

    fn root(&self) -> Ino {
        ROOT_INO
    }

    fn metadata(&self, ino: Ino) -> Result<Metadata, Errno> {
        self.vol.lock().metadata(ino)
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Ino, Errno> {
        let mut v = self.vol.lock();
        let e = v.find(dir, name)?;
        Ok(v.ino_for(dir, &e))
    }

    fn parent(&self, dir: Ino) -> Result<Ino, Errno> {
        let v = self.vol.lock();
        let n = v.node(dir)?;
        if !n.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(n.parent)
    }

    fn read_dir(&self, dir: Ino, start: usize, each: &mut dyn FnMut(DirEntry) -> bool) -> Result<(), Errno> {
        let mut v = self.vol.lock();
        let entries: Vec<RawEntry> = v.dir_cache(dir)?.entries.values().skip(start).cloned().collect();
        let mut out = Vec::new();
        for e in entries.iter() {
            let ino = v.ino_for(dir, e);
            let kind = if e.raw[11] & ATTR_DIRECTORY != 0 { FileType::Directory } else { FileType::Regular };
            out.push(DirEntry { ino, kind, name: e.name.clone() });
        }
        drop(v);
        for e in out {
            if !each(e) {
                break;
            }
        }
        Ok(())
    }

    fn read_at(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.vol.lock().read_at(ino, offset, buf)
    }

    fn write_at(&self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.change(|v| v.write_at(ino, offset, data))
    }

    fn set_len(&self, ino: Ino, len: u64) -> Result<(), Errno> {
        self.change(|v| v.set_len(ino, len))
    }

    fn create(&self, dir: Ino, name: &[u8], node: NewNode<'_>, owner: Owner) -> Result<Ino, Errno> {
        self.change(|v| {
            let ino = v.create(dir, name, node)?;
            if owner.perm & 0o222 == 0 && node == NewNode::Regular {
                v.set_attr(ino, &SetAttr { perm: Some(owner.perm), ..SetAttr::default() })?;
            }
            Ok(ino)
        })
    }

    fn link(&self, _ino: Ino, _dir: Ino, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn unlink(&self, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        self.change(|v| v.unlink(dir, name, false))
    }

    fn rmdir(&self, dir: Ino, name: &[u8]) -> Result<(), Errno> {
        self.change(|v| v.unlink(dir, name, true))
    }

    fn rename(&self, from_dir: Ino, from: &[u8], to_dir: Ino, to: &[u8], flags: RenameFlags) -> Result<(), Errno> {
        self.change(|v| v.rename(from_dir, from, to_dir, to, flags))
    }

    fn readlink(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        self.vol.lock().node(ino)?;
        Err(Errno::EINVAL)
    }

    fn set_attr(&self, ino: Ino, attr: &SetAttr) -> Result<(), Errno> {
        self.change(|v| v.set_attr(ino, attr))
    }

    fn sync(&self, _ino: Option<Ino>) -> Result<(), Errno> {
        // One file's metadata lives in sectors shared with others (the FAT, its directory):
        // everything is written back, then the device's cache is flushed.
        self.vol.lock().sync()
    }

    fn stats(&self) -> FsStats {
        let v = self.vol.lock();
        FsStats {
            magic: MSDOS_SUPER_MAGIC,
            block_size: v.g.cluster_bytes() as u64,
            blocks: u64::from(v.g.cluster_end - 2),
            blocks_free: u64::from(v.free),
            files: 0,
            files_free: 0,
            name_max: 255,
        }
    }

    fn retain(&self, ino: Ino) {
        if let Some(n) = self.vol.lock().nodes.get_mut(&ino) {
            n.open += 1;
        }
    }

    fn release(&self, ino: Ino) {
        let mut v = self.vol.lock();
        if let Some(n) = v.nodes.get_mut(&ino) {
            n.open = n.open.saturating_sub(1);
        }
        if let Err(e) = v.reap(ino) {
            log::warn!("fat: freeing the clusters of unlinked inode {ino} failed: {e:?}");
        }
    }
}

#[cfg(test)]
mod tests;

//! FAT32 over the fake platform's in-memory disk: format, mount, every Filesystem operation,
//! remounts (what is on the disk, not only in memory), flush and device errors.

use super::*;
use crate::testing::FakePlatform;

type Disk = PlatformDisk<FakePlatform>;

fn clock() -> Box<dyn Fn() -> u64 + Send + Sync> {
    Box::new(|| 1_700_000_000_000_000_000)
}

fn fresh(sectors: u64) -> FatFs<Disk> {
    let mut disk = PlatformDisk::new(FakePlatform::with_disk(sectors), 0).unwrap();
    format(&mut disk, "KILNTEST", 0x1234_5678).unwrap();
    FatFs::mount(disk, false, clock()).unwrap()
}

fn remount(fs: FatFs<Disk>) -> FatFs<Disk> {
    FatFs::mount(fs.into_device(), false, clock()).unwrap()
}

const OWNER: Owner = Owner { perm: 0o644, uid: 0, gid: 0 };

fn create(fs: &FatFs<Disk>, dir: Ino, name: &str) -> Ino {
    fs.create(dir, name.as_bytes(), NewNode::Regular, OWNER).unwrap()
}

fn mkdir(fs: &FatFs<Disk>, dir: Ino, name: &str) -> Ino {
    fs.create(dir, name.as_bytes(), NewNode::Directory, Owner { perm: 0o755, ..OWNER }).unwrap()
}

fn names<B: BlockDevice>(fs: &FatFs<B>, dir: Ino) -> Vec<String> {
    let mut out = Vec::new();
    fs.read_dir(dir, 0, &mut |e| {
        out.push(String::from_utf8(e.name).unwrap());
        true
    })
    .unwrap();
    out
}

fn read_all<B: BlockDevice>(fs: &FatFs<B>, ino: Ino) -> Vec<u8> {
    let size = fs.metadata(ino).unwrap().size as usize;
    let mut buf = vec![0u8; size + 10];
    let n = fs.read_at(ino, 0, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn format_then_mount_is_empty_fat32() {
    let fs = fresh(16 * 2048);
    assert_eq!(fs.type_name(), "vfat");
    assert!(names(&fs, ROOT_INO).is_empty(), "the volume label is not listed");
    let st = fs.stats();
    assert_eq!(st.magic, MSDOS_SUPER_MAGIC);
    assert_eq!(st.block_size, 512);
    assert_eq!(st.blocks_free, st.blocks - 1, "only the root directory's cluster is used");
    let md = fs.metadata(ROOT_INO).unwrap();
    assert_eq!(md.kind, FileType::Directory);
    let boot = fs.with_device(|d| d.platform.disk.borrow()[..512].to_vec());
    assert_eq!(&boot[82..90], b"FAT32   ");
    assert_eq!(&boot[510..], &[0x55, 0xAA]);
}

#[test]
fn not_fat_is_refused() {
    let disk = PlatformDisk::new(FakePlatform::with_disk(4096), 0).unwrap();
    assert_eq!(FatFs::mount(disk, false, clock()).err(), Some(FormatError::NoBootSector));
    let mut disk = PlatformDisk::new(FakePlatform::with_disk(4096), 0).unwrap();
    let mut boot = [0u8; 512];
    boot[510] = 0x55;
    boot[511] = 0xAA;
    boot[11] = 0;
    boot[12] = 2;
    put16(&mut boot, 22, 9); // a FAT16 volume's FAT size
    disk.write(0, &boot).unwrap();
    assert_eq!(FatFs::mount(disk, false, clock()).err(), Some(FormatError::NotFat32));
    let mut tiny = PlatformDisk::new(FakePlatform::with_disk(40), 0).unwrap();
    assert!(matches!(format(&mut tiny, "", 1), Err(FormatError::TooSmall(_))));
}

#[test]
fn write_read_and_survive_remount() {
    let fs = fresh(16 * 2048);
    let ino = create(&fs, ROOT_INO, "hello.txt");
    assert_eq!(fs.write_at(ino, 0, b"hello, volume\n").unwrap(), 14);
    let big = create(&fs, ROOT_INO, "Big File.bin");
    let data = pattern(100_000, 7);
    fs.write_at(big, 0, &data).unwrap();
    assert_eq!(read_all(&fs, big), data);
    fs.sync(None).unwrap();
    let fs = remount(fs);
    assert_eq!(names(&fs, ROOT_INO), ["hello.txt", "Big File.bin"]);
    let ino = fs.lookup(ROOT_INO, b"HELLO.TXT").unwrap();
    assert_eq!(read_all(&fs, ino), b"hello, volume\n");
    let big = fs.resolve("/big file.BIN").unwrap();
    assert_eq!(read_all(&fs, big), data);
    assert_eq!(fs.metadata(big).unwrap().size, 100_000);
    assert_eq!(fs.metadata(big).unwrap().mtime.sec / 2, 1_700_000_000 / 2);
}

#[test]
fn partial_and_unaligned_writes() {
    let fs = fresh(8 * 2048);
    let ino = create(&fs, ROOT_INO, "f");
    let mut model = vec![0u8; 0];
    for (off, len, seed) in [(0usize, 700usize, 1u8), (300, 10, 2), (1000, 5000, 3), (511, 2, 4), (6100, 1, 5)] {
        let data = pattern(len, seed);
        fs.write_at(ino, off as u64, &data).unwrap();
        if model.len() < off + len {
            model.resize(off + len, 0);
        }
        model[off..off + len].copy_from_slice(&data);
        assert_eq!(read_all(&fs, ino), model, "after writing {len} at {off}");
    }
    let mut buf = [0u8; 100];
    assert_eq!(fs.read_at(ino, 6050, &mut buf).unwrap(), 51);
    assert_eq!(fs.read_at(ino, 99_999, &mut buf).unwrap(), 0);
}

#[test]
fn holes_and_truncation_read_zeroes() {
    let fs = fresh(8 * 2048);
    let ino = create(&fs, ROOT_INO, "sparse");
    fs.write_at(ino, 0, &[0xAA; 3000]).unwrap();
    fs.set_len(ino, 10).unwrap();
    assert_eq!(read_all(&fs, ino), [0xAA; 10]);
    fs.set_len(ino, 2000).unwrap();
    let got = read_all(&fs, ino);
    assert_eq!(&got[..10], &[0xAA; 10]);
    assert!(got[10..].iter().all(|&b| b == 0), "extended bytes must be zero, not the old data");
    fs.write_at(ino, 5000, b"end").unwrap();
    let got = read_all(&fs, ino);
    assert_eq!(got.len(), 5003);
    assert!(got[2000..5000].iter().all(|&b| b == 0));
    let free_before = fs.stats().blocks_free;
    fs.set_len(ino, 0).unwrap();
    assert_eq!(fs.stats().blocks_free, free_before + 10, "5003 bytes held 10 clusters");
    assert_eq!(fs.metadata(ino).unwrap().size, 0);
}

#[test]
fn names_long_short_and_case() {
    let fs = fresh(8 * 2048);
    for n in ["README", "a", "test.db-journal", "Ünïcödé file name that is rather long.txt", "x.y.z", "UPPER.TXT"] {
        create(&fs, ROOT_INO, n);
    }
    assert_eq!(fs.create(ROOT_INO, b"readme", NewNode::Regular, OWNER), Err(Errno::EEXIST));
    assert_eq!(fs.create(ROOT_INO, b"bad:name", NewNode::Regular, OWNER), Err(Errno::EINVAL));
    assert_eq!(fs.create(ROOT_INO, &[b'n'; 256], NewNode::Regular, OWNER), Err(Errno::ENAMETOOLONG));
    assert_eq!(fs.create(ROOT_INO, b"l", NewNode::Symlink { target: b"x" }, OWNER), Err(Errno::EPERM));
    let fs = remount(fs);
    assert_eq!(
        names(&fs, ROOT_INO),
        ["README", "a", "test.db-journal", "Ünïcödé file name that is rather long.txt", "x.y.z", "UPPER.TXT"]
    );
    assert_eq!(fs.lookup(ROOT_INO, b"missing"), Err(Errno::ENOENT));
}

#[test]
fn many_files_grow_directories() {
    let fs = fresh(16 * 2048);
    let d = mkdir(&fs, ROOT_INO, "many");
    for i in 0..300 {
        let ino = create(&fs, d, &alloc::format!("file number {i:04}.data"));
        fs.write_at(ino, 0, alloc::format!("{i}").as_bytes()).unwrap();
    }
    let fs = remount(fs);
    let d = fs.resolve("many").unwrap();
    let list = names(&fs, d);
    assert_eq!(list.len(), 300);
    for (i, n) in list.iter().enumerate() {
        assert_eq!(n, &alloc::format!("file number {i:04}.data"));
    }
    let ino = fs.lookup(d, b"file number 0299.data").unwrap();
    assert_eq!(read_all(&fs, ino), b"299");
    // read_dir from an offset.
    let mut rest = Vec::new();
    fs.read_dir(d, 298, &mut |e| {
        rest.push(e.name);
        true
    })
    .unwrap();
    assert_eq!(rest.len(), 2);
}

#[test]
fn directories_nest_and_rmdir_checks() {
    let fs = fresh(8 * 2048);
    let a = mkdir(&fs, ROOT_INO, "a");
    let b = mkdir(&fs, a, "b");
    create(&fs, b, "leaf");
    assert_eq!(fs.parent(b).unwrap(), a);
    assert_eq!(fs.rmdir(ROOT_INO, b"a"), Err(Errno::ENOTEMPTY));
    assert_eq!(fs.rmdir(b, b"leaf"), Err(Errno::ENOTDIR));
    assert_eq!(fs.unlink(a, b"b"), Err(Errno::EISDIR));
    assert_eq!(fs.lookup(fs.lookup(ROOT_INO, b"a").unwrap(), b"nothing"), Err(Errno::ENOENT));
    let fs = remount(fs);
    let leaf = fs.resolve("a/b/leaf").unwrap();
    assert_eq!(fs.metadata(leaf).unwrap().kind, FileType::Regular);
    let b = fs.resolve("a/b").unwrap();
    fs.unlink(b, b"leaf").unwrap();
    let a = fs.resolve("a").unwrap();
    let free = fs.stats().blocks_free;
    fs.rmdir(a, b"b").unwrap();
    assert_eq!(fs.stats().blocks_free, free + 1);
    assert_eq!(names(&fs, a), Vec::<String>::new());
}

#[test]
fn rename_replace_move_and_exchange() {
    let fs = fresh(8 * 2048);
    let one = create(&fs, ROOT_INO, "one");
    fs.write_at(one, 0, b"1").unwrap();
    let two = create(&fs, ROOT_INO, "two");
    fs.write_at(two, 0, b"2").unwrap();
    let free = fs.stats().blocks_free;
    fs.rename(ROOT_INO, b"one", ROOT_INO, b"two", RenameFlags::empty()).unwrap();
    assert_eq!(fs.stats().blocks_free, free + 1, "the replaced file's cluster is freed");
    assert_eq!(names(&fs, ROOT_INO), ["two"]);
    assert_eq!(fs.lookup(ROOT_INO, b"two").unwrap(), one, "the inode keeps its number");
    let d = mkdir(&fs, ROOT_INO, "dir");
    let sub = mkdir(&fs, ROOT_INO, "sub");
    fs.rename(ROOT_INO, b"sub", d, b"moved sub", RenameFlags::empty()).unwrap();
    assert_eq!(fs.parent(sub).unwrap(), d);
    create(&fs, ROOT_INO, "three");
    assert_eq!(fs.rename(ROOT_INO, b"three", ROOT_INO, b"two", RenameFlags::NOREPLACE), Err(Errno::EEXIST));
    assert_eq!(fs.rename(ROOT_INO, b"three", ROOT_INO, b"dir", RenameFlags::empty()), Err(Errno::EISDIR));
    assert_eq!(fs.rename(ROOT_INO, b"dir", ROOT_INO, b"two", RenameFlags::empty()), Err(Errno::ENOTDIR));
    fs.rename(ROOT_INO, b"three", ROOT_INO, b"two", RenameFlags::EXCHANGE).unwrap();
    fs.rename(ROOT_INO, b"two", ROOT_INO, b"TWO", RenameFlags::empty()).unwrap();
    let fs = remount(fs);
    let mut list = names(&fs, ROOT_INO);
    list.sort();
    assert_eq!(list, ["TWO", "dir", "three"]);
    assert_eq!(read_all(&fs, fs.resolve("three").unwrap()), b"1");
    assert_eq!(read_all(&fs, fs.resolve("TWO").unwrap()), b"");
    // The moved directory's ".." points at its new parent on disk.
    let moved = fs.resolve("dir/moved sub").unwrap();
    let back = fs.resolve("dir").unwrap();
    let dotdot = fs.vol.lock().dir_cache(moved).unwrap().bytes[32..64].to_vec();
    let first = fs.vol.lock().node(back).unwrap().first();
    assert_eq!(&dotdot[..2], b"..");
    assert_eq!(u32::from(le16(&dotdot, 26)) | u32::from(le16(&dotdot, 20)) << 16, first);
}

#[test]
fn unlinked_open_file_lives_until_released() {
    let fs = fresh(8 * 2048);
    let ino = create(&fs, ROOT_INO, "tmp");
    fs.write_at(ino, 0, &[5; 4096]).unwrap();
    fs.retain(ino);
    let free = fs.stats().blocks_free;
    fs.unlink(ROOT_INO, b"tmp").unwrap();
    assert_eq!(fs.lookup(ROOT_INO, b"tmp"), Err(Errno::ENOENT));
    assert_eq!(read_all(&fs, ino), [5; 4096]);
    fs.write_at(ino, 4096, &[6; 10]).unwrap();
    assert_eq!(fs.metadata(ino).unwrap().nlink, 0);
    assert_eq!(fs.stats().blocks_free, free - 1);
    fs.release(ino);
    assert_eq!(fs.stats().blocks_free, free + 8);
    assert_eq!(fs.metadata(ino), Err(Errno::ENOENT));
}

#[test]
fn read_only_refuses_writes() {
    let fs = fresh(8 * 2048);
    create(&fs, ROOT_INO, "f");
    let dev = fs.into_device();
    let ro = FatFs::mount(dev, true, clock()).unwrap();
    let f = ro.lookup(ROOT_INO, b"f").unwrap();
    assert_eq!(ro.write_at(f, 0, b"x"), Err(Errno::EROFS));
    assert_eq!(ro.create(ROOT_INO, b"g", NewNode::Regular, OWNER), Err(Errno::EROFS));
    assert_eq!(ro.unlink(ROOT_INO, b"f"), Err(Errno::EROFS));
    assert_eq!(ro.set_len(f, 0), Err(Errno::EROFS));
    let platform = ro.into_device().platform;
    platform.disk_read_only.set(true);
    let ro = FatFs::mount(PlatformDisk::new(platform, 0).unwrap(), false, clock()).unwrap();
    assert_eq!(ro.create(ROOT_INO, b"g", NewNode::Regular, OWNER), Err(Errno::EROFS), "a read-only device makes a read-only volume");
}

#[test]
fn sync_flushes_the_device_and_survives_a_crash() {
    let fs = fresh(8 * 2048);
    let ino = create(&fs, ROOT_INO, "db");
    fs.write_at(ino, 0, b"committed").unwrap();
    let flushes = fs.with_device(|d| d.platform.disk_flushes.get());
    fs.sync(Some(ino)).unwrap();
    assert_eq!(fs.with_device(|d| d.platform.disk_flushes.get()), flushes + 1);
    fs.write_at(ino, 0, b"lost!!!!!").unwrap();
    create(&fs, ROOT_INO, "never");
    let dev = fs.into_device();
    dev.platform.disk_crash();
    let fs = FatFs::mount(dev, false, clock()).unwrap();
    assert_eq!(names(&fs, ROOT_INO), ["db"]);
    assert_eq!(read_all(&fs, fs.resolve("db").unwrap()), b"committed");
}

#[test]
fn device_errors_are_eio() {
    let fs = fresh(8 * 2048);
    let ino = create(&fs, ROOT_INO, "f");
    fs.sync(None).unwrap();
    fs.with_device(|d| d.platform.disk_fail_writes.set(true));
    // Data is written by the call: its error comes back at once.
    assert_eq!(fs.write_at(ino, 0, b"data"), Err(Errno::EIO));
    // Metadata is written at the end of the call: EIO from the call; the change stays in
    // memory, marked, and is written by the next sync that can.
    assert_eq!(fs.create(ROOT_INO, b"g", NewNode::Regular, OWNER), Err(Errno::EIO));
    assert_eq!(fs.sync(None), Err(Errno::EIO));
    assert_eq!(fs.sync(Some(ino)), Err(Errno::EIO));
    fs.with_device(|d| d.platform.disk_fail_writes.set(false));
    fs.sync(None).unwrap();
    let dev = fs.into_device();
    dev.platform.disk_crash();
    let fs = FatFs::mount(dev, false, clock()).unwrap();
    assert_eq!(names(&fs, ROOT_INO), ["f", "g"]);
}

#[test]
fn full_volume_is_enospc() {
    let fs = fresh(600);
    let ino = create(&fs, ROOT_INO, "big");
    let free = fs.stats().blocks_free as usize;
    assert_eq!(fs.write_at(ino, 0, &vec![1u8; (free + 1) * 512]), Err(Errno::ENOSPC));
    // What fitted is allocated; the file can still be written up to the volume's size.
    fs.set_len(ino, 0).unwrap();
    assert_eq!(fs.stats().blocks_free as usize, free);
    fs.write_at(ino, 0, &vec![2u8; free * 512]).unwrap();
    assert_eq!(fs.stats().blocks_free, 0);
}

#[test]
fn attributes() {
    let fs = fresh(8 * 2048);
    let ino = create(&fs, ROOT_INO, "f");
    fs.set_attr(ino, &SetAttr { perm: Some(0o444), ..SetAttr::default() }).unwrap();
    assert_eq!(fs.metadata(ino).unwrap().perm, 0o444);
    let t = Timestamp { sec: 1_600_000_000, nsec: 0 };
    fs.set_attr(ino, &SetAttr { mtime: Some(t), ..SetAttr::default() }).unwrap();
    assert_eq!(fs.metadata(ino).unwrap().mtime, t);
    assert_eq!(fs.set_attr(ino, &SetAttr { uid: Some(1000), ..SetAttr::default() }), Err(Errno::EPERM));
    fs.set_attr(ino, &SetAttr { uid: Some(0), gid: Some(0), ..SetAttr::default() }).unwrap();
    assert_eq!(fs.link(ino, ROOT_INO, b"hard"), Err(Errno::EPERM));
    assert_eq!(fs.readlink(ino), Err(Errno::EINVAL));
}

#[test]
fn fat_time_round_trip() {
    for t in [315_532_800i64, 1_000_000_000, 1_700_000_002, 4_102_444_798] {
        let (d, tm) = fat_datetime(t);
        assert_eq!(unix_time(d, tm).sec, t - t % 2, "{t}");
    }
}


/// A device that counts what the filesystem asks of it.
struct Counting {
    disk: Disk,
    reads: u64,
    writes: u64,
    written_sectors: u64,
}

impl BlockDevice for Counting {
    fn sectors(&self) -> u64 {
        self.disk.sectors()
    }
    fn read_only(&self) -> bool {
        self.disk.read_only()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.reads += 1;
        self.disk.read(sector, buf)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), Errno> {
        self.writes += 1;
        self.written_sectors += (data.len() / SECTOR) as u64;
        self.disk.write(sector, data)
    }
    fn flush(&mut self) -> Result<(), Errno> {
        self.disk.flush()
    }
}

fn counting(sectors: u64) -> FatFs<Counting> {
    let mut disk = PlatformDisk::new(FakePlatform::with_disk(sectors), 0).unwrap();
    format(&mut disk, "KILNTEST", 7).unwrap();
    FatFs::mount(Counting { disk, reads: 0, writes: 0, written_sectors: 0 }, false, clock()).unwrap()
}

fn io_count(fs: &FatFs<Counting>) -> (u64, u64) {
    fs.with_device(|d| (d.reads, d.writes))
}

#[test]
fn lookups_are_served_from_the_directory_cache() {
    let fs = counting(16 * 2048);
    let owner = OWNER;
    let a = fs.create(ROOT_INO, b"a", NewNode::Directory, owner).unwrap();
    let b = fs.create(a, b"b", NewNode::Directory, owner).unwrap();
    for i in 0..200 {
        fs.create(b, alloc::format!("file {i}.txt").as_bytes(), NewNode::Regular, owner).unwrap();
    }
    fs.sync(None).unwrap();
    let fs = FatFs::mount(fs.into_device(), false, clock()).unwrap();
    let before = io_count(&fs);
    let ino = fs.resolve("a/b/file 150.txt").unwrap();
    let first = io_count(&fs);
    assert!(first.0 > before.0, "the first lookup reads the directories");
    for _ in 0..3 {
        assert_eq!(fs.resolve("a/b/file 150.txt").unwrap(), ino);
        assert_eq!(fs.resolve("/A/B/FILE 150.TXT").unwrap(), ino, "case-insensitive");
        assert_eq!(fs.lookup(fs.resolve("a/b").unwrap(), b"missing"), Err(Errno::ENOENT));
        fs.metadata(ino).unwrap();
    }
    for i in 0..200 {
        fs.resolve(&alloc::format!("a/b/file {i}.txt")).unwrap();
    }
    assert_eq!(io_count(&fs), first, "later lookups and stats read nothing");
    // Creating and unlinking update the cache: no reads, and no writes until sync.
    let b = fs.resolve("a/b").unwrap();
    fs.create(b, b"new one", NewNode::Regular, owner).unwrap();
    fs.unlink(b, b"file 3.txt").unwrap();
    fs.rename(b, b"file 4.txt", b, b"renamed", RenameFlags::empty()).unwrap();
    assert_eq!(fs.lookup(b, b"file 3.txt"), Err(Errno::ENOENT));
    assert_eq!(fs.lookup(b, b"file 4.txt"), Err(Errno::ENOENT));
    fs.lookup(b, b"RENAMED").unwrap();
    fs.lookup(b, b"new one").unwrap();
    let after = io_count(&fs);
    assert_eq!(after.0, first.0, "changes read nothing");
    assert!(after.1 - first.1 <= 3 * 2, "a directory sector and its parent's per change: {after:?}");
    fs.sync(None).unwrap();
    let fs = FatFs::mount(fs.into_device(), false, clock()).unwrap();
    let b = fs.resolve("a/b").unwrap();
    let list = names(&fs, b);
    assert_eq!(list.len(), 200);
    assert!(list.contains(&"renamed".into()) && list.contains(&"new one".into()));
    assert!(!list.contains(&"file 3.txt".into()) && !list.contains(&"file 4.txt".into()));
}


#[test]
fn sequential_appends_write_data_only_until_sync() {
    let fs = counting(16 * 2048);
    let ino = fs.create(ROOT_INO, b"log", NewNode::Regular, OWNER).unwrap();
    let start = io_count(&fs);
    let block = pattern(64 * 1024, 3);
    for k in 0..32u64 {
        fs.write_at(ino, k * block.len() as u64, &block).unwrap();
    }
    let (reads, writes) = io_count(&fs);
    assert_eq!(reads, start.0, "aligned appends read nothing (no read-modify-write)");
    // Per append: the data, the FAT run in each of the 2 FATs, the entry's directory sector.
    assert!(writes - start.1 <= 32 * 4, "{} requests for 32 appends", writes - start.1);
    fs.sync(None).unwrap();
    let written = fs.with_device(|d| d.written_sectors);
    // 2 MiB of data; FAT sectors (32 entries... 128 per sector) and the directory sector
    // written once per append at most; FSInfo.
    assert!(written <= 4096 + 32 * (2 * 2 + 1) + 2, "{written} sectors written in all");
    let fs = FatFs::mount(fs.into_device(), false, clock()).unwrap();
    let ino = fs.resolve("log").unwrap();
    let got = read_all(&fs, ino);
    assert_eq!(got.len(), 32 * block.len());
    assert!(got.chunks(block.len()).all(|c| c == block.as_slice()));
}

/// Many operations, a model of what the files hold, then a "reboot": a new mount of a copy of
/// the disk's bytes (nothing carried over in memory) must see exactly the model.
#[test]
fn everything_survives_a_reboot_onto_a_copy_of_the_bytes() {
    let fs = fresh(32 * 2048);
    let mut model: alloc::collections::BTreeMap<String, Vec<u8>> = alloc::collections::BTreeMap::new();
    let d1 = mkdir(&fs, ROOT_INO, "dir one");
    let d2 = mkdir(&fs, d1, "inner");
    let mut rng = 12345u32;
    let mut next = move |n: u32| {
        rng = rng.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (rng >> 8) % n
    };
    for i in 0..400 {
        let (dir, prefix) = match i % 3 {
            0 => (ROOT_INO, ""),
            1 => (d1, "dir one/"),
            _ => (d2, "dir one/inner/"),
        };
        let name = if i % 2 == 0 { alloc::format!("f{i}.dat") } else { alloc::format!("File number {i} with a long name") };
        let ino = create(&fs, dir, &name);
        let len = next(5000) as usize;
        let data = pattern(len, i as u8);
        fs.write_at(ino, 0, &data).unwrap();
        let mut content = data;
        if i % 5 == 0 {
            // Append at an odd offset, then cut.
            let more = pattern(next(3000) as usize + 1, 99);
            let at = content.len() as u64 + u64::from(next(700));
            fs.write_at(ino, at, &more).unwrap();
            content.resize(at as usize, 0);
            content.extend_from_slice(&more);
            let cut = next(content.len() as u32 + 1) as usize;
            fs.set_len(ino, cut as u64).unwrap();
            content.truncate(cut);
        }
        model.insert(alloc::format!("{prefix}{name}"), content);
    }
    for i in (0..400).step_by(7) {
        let key = model.keys().nth(i % model.len()).unwrap().clone();
        let (dir_path, name) = key.rsplit_once('/').unwrap_or(("", &key));
        let dir = fs.resolve(dir_path).unwrap();
        if i % 2 == 0 {
            fs.unlink(dir, name.as_bytes()).unwrap();
            model.remove(&key);
        } else {
            let new = alloc::format!("renamed {i}");
            fs.rename(dir, name.as_bytes(), d2, new.as_bytes(), RenameFlags::empty()).unwrap();
            let v = model.remove(&key).unwrap();
            model.insert(alloc::format!("dir one/inner/{new}"), v);
        }
    }
    fs.sync(None).unwrap();
    let bytes = fs.with_device(|d| d.platform.disk.borrow().clone());
    // Keep using the old mount: none of this may reach the copy.
    create(&fs, ROOT_INO, "after the copy");
    let platform = FakePlatform::with_disk(0);
    *platform.disk.borrow_mut() = bytes;
    let fs2 = FatFs::mount(PlatformDisk::new(platform, 0).unwrap(), false, clock()).unwrap();
    let mut seen = 0;
    for (path, content) in &model {
        let ino = fs2.resolve(path).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert_eq!(&read_all(&fs2, ino), content, "{path}");
        seen += 1;
    }
    let listed = names(&fs2, ROOT_INO).len() + names(&fs2, fs2.resolve("dir one").unwrap()).len() + names(&fs2, fs2.resolve("dir one/inner").unwrap()).len();
    assert_eq!(listed, seen + 2, "every file listed, and the two directories");
    assert_eq!(fs2.lookup(ROOT_INO, b"after the copy"), Err(Errno::ENOENT));
    assert_eq!(fs2.stats().blocks_free, fs.stats().blocks_free, "the free count matches the FAT");
}

#[test]
fn lower_case_8_3_names_need_no_long_name_slots() {
    let fs = fresh(8 * 2048);
    for n in ["readme.txt", "abc.TXT", "Mixed.txt", "UPPER", "x"] {
        create(&fs, ROOT_INO, n);
    }
    let fs = remount(fs);
    assert_eq!(names(&fs, ROOT_INO), ["readme.txt", "abc.TXT", "Mixed.txt", "UPPER", "x"]);
    let mut v = fs.vol.lock();
    let slots: Vec<u32> = v.dir_cache(ROOT_INO).unwrap().entries.values().map(|e| e.lfn).collect();
    assert_eq!(slots, [0, 0, 1, 0, 0], "only the mixed-case name has a long-name slot");
}

/// More FAT sectors and directory bytes than the caches keep (64 sectors, 64 KiB in host
/// tests): what they forget is written back first.
#[test]
fn caches_write_back_before_forgetting() {
    let fs = fresh(32 * 2048);
    let big = create(&fs, ROOT_INO, "big");
    let block = pattern(64 * 1024, 5);
    for k in 0..96u64 {
        fs.write_at(big, k * block.len() as u64, &block).unwrap();
    }
    assert!(fs.vol.lock().fat_cache.len() <= FAT_CACHE_SECTORS);
    for d in 0..24 {
        let dir = mkdir(&fs, ROOT_INO, &alloc::format!("directory {d}"));
        for f in 0..60 {
            let ino = create(&fs, dir, &alloc::format!("a file with a long name {f}"));
            fs.write_at(ino, 0, alloc::format!("{d}/{f}").as_bytes()).unwrap();
        }
    }
    assert!(fs.vol.lock().dir_cache_bytes <= DIR_CACHE_BYTES + 16 * 1024);
    let free = fs.stats().blocks_free;
    fs.sync(None).unwrap();
    let dev = fs.into_device();
    dev.platform.disk_crash();
    let fs = FatFs::mount(dev, false, clock()).unwrap();
    assert_eq!(fs.stats().blocks_free, free);
    let got = read_all(&fs, fs.resolve("big").unwrap());
    assert_eq!(got.len(), 96 * block.len());
    assert!(got.chunks(block.len()).all(|c| c == block.as_slice()));
    for d in 0..24 {
        let dir = fs.resolve(&alloc::format!("directory {d}")).unwrap();
        assert_eq!(names(&fs, dir).len(), 60);
        for f in [0, 59] {
            let ino = fs.lookup(dir, alloc::format!("A FILE WITH A LONG NAME {f}").as_bytes()).unwrap();
            assert_eq!(read_all(&fs, ino), alloc::format!("{d}/{f}").as_bytes());
        }
    }
}

/// Every change reaches the device by the end of its call (no flush: that is sync's job): a
/// copy of the disk's bytes taken right after a change, as a VM killed from outside leaves
/// it, holds the change.
#[test]
fn every_change_is_on_the_device_after_its_call() {
    let fs = fresh(8 * 2048);
    let on_disk = |fs: &FatFs<Disk>| {
        let platform = FakePlatform::with_disk(0);
        *platform.disk.borrow_mut() = fs.with_device(|d| d.platform.disk.borrow().clone());
        let copy = FatFs::mount(PlatformDisk::new(platform, 0).unwrap(), true, clock()).unwrap();
        let mut out = Vec::new();
        for n in names(&copy, ROOT_INO) {
            let ino = copy.lookup(ROOT_INO, n.as_bytes()).unwrap();
            out.push((n, read_all(&copy, ino)));
        }
        out
    };
    let log = create(&fs, ROOT_INO, "access.log");
    let mut want = Vec::new();
    for i in 0..20 {
        let line = alloc::format!("request {i}\n");
        fs.write_at(log, want.len() as u64, line.as_bytes()).unwrap();
        want.extend_from_slice(line.as_bytes());
        assert_eq!(on_disk(&fs), [("access.log".to_string(), want.clone())], "after append {i}");
    }
    fs.rename(ROOT_INO, b"access.log", ROOT_INO, b"access.log.1", RenameFlags::empty()).unwrap();
    assert_eq!(on_disk(&fs), [("access.log.1".to_string(), want.clone())]);
    fs.unlink(ROOT_INO, b"access.log.1").unwrap();
    assert!(on_disk(&fs).is_empty());
    assert_eq!(fs.with_device(|d| d.platform.disk_flushes.get()), 1, "only format flushed");
}

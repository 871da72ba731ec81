//! Host tests of the file syscalls, through [`Process::syscall`] against [`FakePlatform`].

extern crate std;

use alloc::vec;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::image::Payload;
use crate::mm::{Mm, VmaKind};
use crate::platform::{PAGE_SIZE, Prot};
use crate::process::{Process, SyscallOutcome, WakeReason};
use crate::testing::FakePlatform;

const BUF: u64 = 0x20_0000;
const BUF_LEN: u64 = 64 * PAGE_SIZE;
const PATH: u64 = BUF + 60 * PAGE_SIZE;
const PATH2: u64 = PATH + 0x800;
const UNMAPPED: u64 = 0x4000_0000;
const CWD: u64 = (-100i64) as u64;

mod nr {
    pub const READ: u64 = 0;
    pub const WRITE: u64 = 1;
    pub const OPEN: u64 = 2;
    pub const CLOSE: u64 = 3;
    pub const STAT: u64 = 4;
    pub const FSTAT: u64 = 5;
    pub const LSTAT: u64 = 6;
    pub const LSEEK: u64 = 8;
    pub const MMAP: u64 = 9;
    pub const MUNMAP: u64 = 11;
    pub const PREAD: u64 = 17;
    pub const PWRITE: u64 = 18;
    pub const ACCESS: u64 = 21;
    pub const PIPE: u64 = 22;
    pub const MSYNC: u64 = 26;
    pub const DUP: u64 = 32;
    pub const DUP2: u64 = 33;
    pub const SENDFILE: u64 = 40;
    pub const FCNTL: u64 = 72;
    pub const FTRUNCATE: u64 = 77;
    pub const GETCWD: u64 = 79;
    pub const CHDIR: u64 = 80;
    pub const RENAME: u64 = 82;
    pub const MKDIR: u64 = 83;
    pub const RMDIR: u64 = 84;
    pub const LINK: u64 = 86;
    pub const UNLINK: u64 = 87;
    pub const SYMLINK: u64 = 88;
    pub const READLINK: u64 = 89;
    pub const CHMOD: u64 = 90;
    pub const STATFS: u64 = 137;
    pub const GETDENTS64: u64 = 217;
    pub const OPENAT: u64 = 257;
    pub const NEWFSTATAT: u64 = 262;
    pub const UNLINKAT: u64 = 263;
    pub const UTIMENSAT: u64 = 280;
    pub const TIMERFD_CREATE: u64 = 283;
    pub const TIMERFD_SETTIME: u64 = 286;
    pub const EVENTFD2: u64 = 290;
    pub const DUP3: u64 = 292;
    pub const PIPE2: u64 = 293;
    pub const PRLIMIT: u64 = 302;
    pub const RENAMEAT2: u64 = 316;
    pub const MEMFD_CREATE: u64 = 319;
    pub const STATX: u64 = 332;
    pub const CLOSE_RANGE: u64 = 436;
}

const O_WRONLY: u64 = 1;
const O_RDWR: u64 = 2;
const O_CREAT: u64 = 0o100;
const O_EXCL: u64 = 0o200;
const O_TRUNC: u64 = 0o1000;
const O_APPEND: u64 = 0o2000;
const O_NONBLOCK: u64 = 0o4000;
const O_DIRECTORY: u64 = 0o200000;
const O_NOFOLLOW: u64 = 0o400000;
const O_CLOEXEC: u64 = 0o2000000;

struct T {
    p: Process,
    fake: FakePlatform,
}

fn err(e: Errno) -> i64 {
    -i64::from(e.0)
}

fn setup() -> T {
    let fake = FakePlatform::default();
    let mut mm = Mm::new();
    mm.map_fixed(
        &fake,
        BUF,
        BUF_LEN,
        Prot::READ | Prot::WRITE,
        VmaKind::Anonymous,
    )
    .unwrap();
    mm.set_brk_base(0x100_0000);
    T {
        p: Process::new(mm, "/bin/app"),
        fake,
    }
}

impl T {
    fn sys(&mut self, nr: u64, args: &[u64]) -> SyscallOutcome {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        self.p.syscall(&self.fake, 1, nr, a)
    }
    fn call(&mut self, nr: u64, args: &[u64]) -> i64 {
        match self.sys(nr, args) {
            SyscallOutcome::Return(v) => v,
            other => panic!("syscall {nr} did not return: {other:?}"),
        }
    }
    fn put(&self, addr: u64, bytes: &[u8]) {
        self.fake.write_app_bytes(addr, bytes);
    }
    fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        crate::Platform::read_app(&self.fake, addr, &mut v).unwrap();
        v
    }
    fn path(&self, at: u64, s: &str) -> u64 {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.put(at, &b);
        at
    }
    fn open(&mut self, path: &str, flags: u64, mode: u64) -> i64 {
        let p = self.path(PATH, path);
        self.call(nr::OPEN, &[p, flags, mode])
    }
    fn write_str(&mut self, fd: i64, s: &str) -> i64 {
        self.put(BUF, s.as_bytes());
        self.call(nr::WRITE, &[fd as u64, BUF, s.len() as u64])
    }
    fn read_all(&mut self, fd: i64) -> Vec<u8> {
        let n = self.call(nr::READ, &[fd as u64, BUF, 8192]);
        assert!(n >= 0, "read: {n}");
        self.get(BUF, n as usize)
    }
    fn file(&mut self, path: &str) -> Vec<u8> {
        let fd = self.open(path, 0, 0);
        assert!(fd >= 0, "open {path}: {fd}");
        let mut out = Vec::new();
        loop {
            let chunk = self.read_all(fd);
            if chunk.is_empty() {
                break;
            }
            out.extend(chunk);
        }
        self.call(nr::CLOSE, &[fd as u64]);
        out
    }
    fn text(&mut self, path: &str) -> std::string::String {
        std::string::String::from_utf8(self.file(path)).unwrap()
    }
    fn stat_mode_size(&mut self, path: &str) -> Result<(u32, i64), i64> {
        let p = self.path(PATH, path);
        let r = self.call(nr::STAT, &[p, BUF]);
        if r < 0 {
            return Err(r);
        }
        let b = self.get(BUF, 144);
        Ok((
            u32::from_le_bytes(b[24..28].try_into().unwrap()),
            i64::from_le_bytes(b[48..56].try_into().unwrap()),
        ))
    }
}

impl FakePlatform {
    fn write_app_bytes(&self, addr: u64, bytes: &[u8]) {
        crate::Platform::write_app(self, addr, bytes).unwrap();
    }
}

#[test]
fn open_read_write_seek_close() {
    let mut t = setup();
    let fd = t.open("/tmp/a", O_CREAT | O_RDWR, 0o666);
    assert_eq!(fd, 3, "lowest free fd");
    assert_eq!(t.write_str(fd, "hello world"), 11);
    assert_eq!(t.call(nr::LSEEK, &[fd as u64, 6, 0]), 6);
    assert_eq!(t.read_all(fd), b"world");
    assert_eq!(t.call(nr::LSEEK, &[fd as u64, (-5i64) as u64, 2]), 6);
    assert_eq!(
        t.call(nr::LSEEK, &[fd as u64, (-50i64) as u64, 1]),
        err(Errno::EINVAL)
    );
    assert_eq!(t.call(nr::LSEEK, &[fd as u64, 0, 9]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::LSEEK, &[fd as u64, 3, 3]), 3, "SEEK_DATA");
    assert_eq!(t.call(nr::LSEEK, &[fd as u64, 3, 4]), 11, "SEEK_HOLE");
    assert_eq!(t.call(nr::LSEEK, &[fd as u64, 11, 3]), err(Errno::ENXIO));
    // pread/pwrite leave the offset alone.
    t.put(BUF, b"J");
    assert_eq!(t.call(nr::PWRITE, &[fd as u64, BUF, 1, 0]), 1);
    assert_eq!(t.call(nr::PREAD, &[fd as u64, BUF + 100, 5, 0]), 5);
    assert_eq!(t.get(BUF + 100, 5), b"Jello");
    assert_eq!(
        t.call(nr::PREAD, &[fd as u64, BUF, 5, (-1i64) as u64]),
        err(Errno::EINVAL)
    );
    assert_eq!(t.call(nr::CLOSE, &[fd as u64]), 0);
    assert_eq!(t.call(nr::CLOSE, &[fd as u64]), err(Errno::EBADF));
    assert_eq!(t.call(nr::READ, &[fd as u64, BUF, 1]), err(Errno::EBADF));
    // Mode and umask (022).
    assert_eq!(t.stat_mode_size("/tmp/a"), Ok((0o100644, 11)));
    // Access modes.
    let ro = t.open("/tmp/a", 0, 0);
    assert_eq!(t.write_str(ro, "x"), err(Errno::EBADF));
    let wo = t.open("/tmp/a", O_WRONLY, 0);
    assert_eq!(t.call(nr::READ, &[wo as u64, BUF, 1]), err(Errno::EBADF));
    assert_eq!(
        t.call(nr::READ, &[ro as u64, UNMAPPED, 1]),
        err(Errno::EFAULT)
    );
    assert_eq!(t.open("/tmp/a", 3, 0), err(Errno::EINVAL));
}

#[test]
fn open_flags_and_errors() {
    let mut t = setup();
    assert_eq!(t.open("/nope", 0, 0), err(Errno::ENOENT));
    assert_eq!(
        t.open("/nope/x", O_CREAT | O_RDWR, 0o644),
        err(Errno::ENOENT)
    );
    assert_eq!(t.open("", 0, 0), err(Errno::ENOENT));
    assert_eq!(t.open("/etc/passwd/x", 0, 0), err(Errno::ENOTDIR));
    assert_eq!(t.open("/etc/passwd/", 0, 0), err(Errno::ENOTDIR));
    assert_eq!(t.open("/etc/passwd", O_DIRECTORY, 0), err(Errno::ENOTDIR));
    assert_eq!(t.open("/etc", O_RDWR, 0), err(Errno::EISDIR));
    assert_eq!(
        t.open("/tmp/d/", O_CREAT | O_RDWR, 0o644),
        err(Errno::EISDIR)
    );
    let fd = t.open("/tmp/f", O_CREAT | O_EXCL | O_WRONLY, 0o600);
    assert!(fd >= 3);
    assert_eq!(
        t.open("/tmp/f", O_CREAT | O_EXCL | O_WRONLY, 0o600),
        err(Errno::EEXIST)
    );
    t.write_str(fd, "abcdef");
    // O_APPEND writes at the end whatever the offset.
    let a = t.open("/tmp/f", O_APPEND | O_WRONLY, 0);
    t.call(nr::LSEEK, &[a as u64, 0, 0]);
    t.write_str(a, "XY");
    assert_eq!(t.file("/tmp/f"), b"abcdefXY");
    // O_TRUNC empties.
    let tr = t.open("/tmp/f", O_TRUNC | O_WRONLY, 0);
    assert!(tr >= 0);
    assert_eq!(t.file("/tmp/f"), b"");
    // Long names.
    let long = "x".repeat(256);
    assert_eq!(
        t.open(&alloc::format!("/tmp/{long}"), O_CREAT | O_RDWR, 0o644),
        err(Errno::ENAMETOOLONG)
    );
    let huge = "a/".repeat(2100);
    let mut b = huge.into_bytes();
    b.push(0);
    t.put(BUF, &b);
    assert_eq!(t.call(nr::OPEN, &[BUF, 0, 0]), err(Errno::ENAMETOOLONG));
    // Read-only filesystems.
    assert_eq!(
        t.open("/sys/devices/system/cpu/online", O_WRONLY, 0),
        err(Errno::EACCES)
    );
    assert_eq!(t.open("/proc/meminfo", O_RDWR, 0), err(Errno::EACCES));
}

#[test]
fn symlinks_dotdot_and_eloop() {
    let mut t = setup();
    let target = t.path(PATH2, "/etc/hosts");
    let link = t.path(PATH, "/tmp/l");
    assert_eq!(t.call(nr::SYMLINK, &[target, link]), 0);
    assert!(t.text("/tmp/l").contains("localhost"));
    assert_eq!(t.open("/tmp/l", O_NOFOLLOW, 0), err(Errno::ELOOP));
    // lstat sees the link, stat the target.
    let p = t.path(PATH, "/tmp/l");
    assert_eq!(t.call(nr::LSTAT, &[p, BUF]), 0);
    assert_eq!(
        u32::from_le_bytes(t.get(BUF + 24, 4).try_into().unwrap()) & 0o170000,
        0o120000
    );
    assert_eq!(t.call(nr::READLINK, &[p, BUF, 100]), 10);
    assert_eq!(t.get(BUF, 10), b"/etc/hosts");
    // A loop.
    let a = t.path(PATH2, "/tmp/b");
    let l = t.path(PATH, "/tmp/a");
    t.call(nr::SYMLINK, &[a, l]);
    let a = t.path(PATH2, "/tmp/a");
    let l = t.path(PATH, "/tmp/b");
    t.call(nr::SYMLINK, &[a, l]);
    assert_eq!(t.open("/tmp/a", 0, 0), err(Errno::ELOOP));
    // `..` crosses back out of mounts and stops at /.
    assert!(t.text("/tmp/../etc/hostname").starts_with("kiln"));
    assert!(t.text("/../../etc/hostname").starts_with("kiln"));
    assert!(t.text("/dev/shm/../../etc/hostname").starts_with("kiln"));
    assert!(
        t.text("/proc/self/../self/../1/../sys/kernel/ostype")
            .starts_with("Linux")
    );
    // Relative to cwd and to a dirfd.
    let p = t.path(PATH, "/etc");
    assert_eq!(t.call(nr::CHDIR, &[p]), 0);
    assert!(t.text("hostname").starts_with("kiln"));
    let n = t.call(nr::GETCWD, &[BUF, 100]);
    assert_eq!(t.get(BUF, n as usize), b"/etc\0");
    assert_eq!(t.call(nr::GETCWD, &[BUF, 3]), err(Errno::ERANGE));
    let dfd = t.open("/proc", O_DIRECTORY, 0);
    let p = t.path(PATH, "cpuinfo");
    let fd = t.call(nr::OPENAT, &[dfd as u64, p, 0, 0]);
    assert!(fd >= 0);
    let f = t.open("/etc/passwd", 0, 0);
    let p = t.path(PATH, "cpuinfo");
    assert_eq!(
        t.call(nr::OPENAT, &[f as u64, p, 0, 0]),
        err(Errno::ENOTDIR)
    );
    assert_eq!(t.call(nr::OPENAT, &[99, p, 0, 0]), err(Errno::EBADF));
}

#[test]
fn directories_rename_link_unlink() {
    let mut t = setup();
    let d = t.path(PATH, "/tmp/d");
    assert_eq!(t.call(nr::MKDIR, &[d, 0o755]), 0);
    assert_eq!(t.call(nr::MKDIR, &[d, 0o755]), err(Errno::EEXIST));
    let f = t.open("/tmp/d/f", O_CREAT | O_WRONLY, 0o644);
    t.write_str(f, "data");
    let d = t.path(PATH, "/tmp/d");
    assert_eq!(t.call(nr::RMDIR, &[d]), err(Errno::ENOTEMPTY));
    assert_eq!(t.call(nr::UNLINK, &[d]), err(Errno::EISDIR));
    let p = t.path(PATH, "/tmp/d/f/");
    assert_eq!(t.call(nr::UNLINK, &[p]), err(Errno::ENOTDIR));
    let p = t.path(PATH, "/tmp/d/f");
    assert_eq!(t.call(nr::RMDIR, &[p]), err(Errno::ENOTDIR));
    // Hard link, then rename over it.
    let new = t.path(PATH2, "/tmp/d/g");
    assert_eq!(t.call(nr::LINK, &[p, new]), 0);
    assert_eq!(t.call(nr::LINK, &[p, new]), err(Errno::EEXIST));
    let p = t.path(PATH, "/tmp/d/g");
    assert_eq!(t.call(nr::STAT, &[p, BUF]), 0);
    assert_eq!(
        u64::from_le_bytes(t.get(BUF + 16, 8).try_into().unwrap()),
        2,
        "nlink"
    );
    let other = t.open("/tmp/h", O_CREAT | O_WRONLY, 0o644);
    t.write_str(other, "other");
    let from = t.path(PATH, "/tmp/h");
    let to = t.path(PATH2, "/tmp/d/g");
    assert_eq!(
        t.call(nr::RENAMEAT2, &[CWD, from, CWD, to, 1]),
        err(Errno::EEXIST),
        "NOREPLACE"
    );
    assert_eq!(
        t.call(nr::RENAMEAT2, &[CWD, from, CWD, to, 2]),
        0,
        "EXCHANGE"
    );
    assert_eq!(t.file("/tmp/h"), b"data");
    assert_eq!(t.file("/tmp/d/g"), b"other");
    let from = t.path(PATH, "/tmp/h");
    let to = t.path(PATH2, "/tmp/d/g");
    assert_eq!(t.call(nr::RENAME, &[from, to]), 0);
    assert_eq!(t.file("/tmp/d/g"), b"data");
    assert_eq!(t.open("/tmp/h", 0, 0), err(Errno::ENOENT));
    // A directory cannot move into itself, or over a file.
    let d = t.path(PATH, "/tmp/d");
    let inside = t.path(PATH2, "/tmp/d/sub");
    assert_eq!(t.call(nr::RENAME, &[d, inside]), err(Errno::EINVAL));
    let file = t.path(PATH2, "/tmp/d/f");
    assert_eq!(
        t.call(nr::RENAME, &[d, file]),
        err(Errno::EINVAL),
        "the target is inside the source"
    );
    let plain = t.open("/tmp/plain", O_CREAT | O_WRONLY, 0o644);
    assert!(plain > 0);
    let d = t.path(PATH, "/tmp/d");
    let plain = t.path(PATH2, "/tmp/plain");
    assert_eq!(t.call(nr::RENAME, &[d, plain]), err(Errno::ENOTDIR));
    let file = t.path(PATH, "/tmp/d/f");
    // Across mounts.
    let etc = t.path(PATH2, "/etc/moved");
    assert_eq!(t.call(nr::RENAME, &[file, etc]), err(Errno::EXDEV));
    // unlinkat with AT_REMOVEDIR.
    for name in ["f", "g"] {
        let p = t.path(PATH, &alloc::format!("/tmp/d/{name}"));
        assert_eq!(t.call(nr::UNLINK, &[p]), 0);
    }
    let d = t.path(PATH, "/tmp/d");
    assert_eq!(t.call(nr::UNLINKAT, &[CWD, d, 0]), err(Errno::EISDIR));
    assert_eq!(t.call(nr::UNLINKAT, &[CWD, d, 0x200]), 0);
    assert_eq!(t.call(nr::UNLINKAT, &[CWD, d, 0x200]), err(Errno::ENOENT));
    let root = t.path(PATH, "/tmp/.");
    assert_eq!(t.call(nr::RMDIR, &[root]), err(Errno::EINVAL));
}

#[test]
fn unlinked_open_files_live_on() {
    let mut t = setup();
    let fd = t.open("/tmp/gone", O_CREAT | O_RDWR, 0o644);
    t.write_str(fd, "still here");
    let p = t.path(PATH, "/tmp/gone");
    assert_eq!(t.call(nr::UNLINK, &[p]), 0);
    assert_eq!(t.open("/tmp/gone", 0, 0), err(Errno::ENOENT));
    t.call(nr::LSEEK, &[fd as u64, 0, 0]);
    assert_eq!(t.read_all(fd), b"still here");
    assert_eq!(t.call(nr::FSTAT, &[fd as u64, BUF]), 0);
    assert_eq!(
        u64::from_le_bytes(t.get(BUF + 16, 8).try_into().unwrap()),
        0,
        "nlink 0"
    );
}

#[test]
fn dup_shares_the_offset_and_cloexec_is_per_fd() {
    let mut t = setup();
    let fd = t.open("/etc/hostname", O_CLOEXEC, 0) as u64;
    assert_eq!(t.call(nr::FCNTL, &[fd, 1, 0]), 1, "FD_CLOEXEC");
    let d = t.call(nr::DUP, &[fd]) as u64;
    assert_eq!(t.call(nr::FCNTL, &[d, 1, 0]), 0);
    assert_eq!(t.call(nr::READ, &[fd, BUF, 2]), 2);
    assert_eq!(t.call(nr::READ, &[d, BUF, 2]), 2);
    assert_eq!(t.get(BUF, 2), b"ln");
    assert_eq!(t.call(nr::DUP2, &[fd, 10]), 10);
    assert_eq!(t.call(nr::DUP2, &[fd, fd]), fd as i64);
    assert_eq!(t.call(nr::DUP2, &[99, 10]), err(Errno::EBADF));
    assert_eq!(t.call(nr::DUP3, &[fd, fd, 0]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::DUP3, &[fd, 11, O_CLOEXEC]), 11);
    assert_eq!(t.call(nr::FCNTL, &[11, 1, 0]), 1);
    assert_eq!(t.call(nr::FCNTL, &[fd, 1030, 20]), 20, "F_DUPFD_CLOEXEC");
    assert_eq!(
        t.call(nr::FCNTL, &[fd, 0, 0]),
        5,
        "F_DUPFD takes the lowest free"
    );
    // F_GETFL / F_SETFL.
    assert_eq!(t.call(nr::FCNTL, &[fd, 3, 0]) & 0o4000, 0);
    assert_eq!(t.call(nr::FCNTL, &[fd, 4, O_NONBLOCK | O_WRONLY]), 0);
    assert_eq!(
        t.call(nr::FCNTL, &[d, 3, 0]) & 0o4003,
        0o4000,
        "shared description; access mode unchanged"
    );
    // Locks: granted; GETLK reports the range free.
    let mut fl = vec![0u8; 32];
    fl[0] = 0; // F_RDLCK
    t.put(BUF, &fl);
    assert_eq!(t.call(nr::FCNTL, &[fd, 6, BUF]), 0);
    assert_eq!(t.call(nr::FCNTL, &[fd, 5, BUF]), 0);
    assert_eq!(t.get(BUF, 2), [2, 0], "F_UNLCK");
    fl[0] = 1; // F_WRLCK on a read-only fd
    t.put(BUF, &fl);
    assert_eq!(t.call(nr::FCNTL, &[fd, 6, BUF]), err(Errno::EBADF));
    assert_eq!(t.call(nr::FCNTL, &[fd, 9999, 0]), err(Errno::EINVAL));
    // close_range.
    assert_eq!(t.call(nr::CLOSE_RANGE, &[10, 20, 0]), 0);
    assert_eq!(t.call(nr::CLOSE, &[11]), err(Errno::EBADF));
}

#[test]
fn rlimit_nofile_gives_emfile() {
    let mut t = setup();
    let lim = [5u64.to_le_bytes(), 5u64.to_le_bytes()].concat();
    t.put(BUF + 0x100, &lim);
    assert_eq!(t.call(nr::PRLIMIT, &[0, 7, BUF + 0x100, 0]), 0);
    assert!(t.open("/etc/passwd", 0, 0) == 3);
    assert!(t.open("/etc/passwd", 0, 0) == 4);
    assert_eq!(t.open("/etc/passwd", 0, 0), err(Errno::EMFILE));
    assert_eq!(t.call(nr::DUP2, &[3, 5]), err(Errno::EBADF));
}

#[test]
fn pipes_block_wake_and_break() {
    let mut t = setup();
    assert_eq!(t.call(nr::PIPE2, &[BUF + 0x100, O_CLOEXEC]), 0);
    let fds = t.get(BUF + 0x100, 8);
    let (r, w) = (
        u32::from_le_bytes(fds[..4].try_into().unwrap()) as u64,
        u32::from_le_bytes(fds[4..].try_into().unwrap()) as u64,
    );
    assert_eq!((r, w), (3, 4));
    assert_eq!(t.call(nr::PIPE2, &[BUF, 0x1]), err(Errno::EINVAL));
    // An empty pipe blocks the reader (no deadline) ...
    assert_eq!(
        t.sys(nr::READ, &[r, BUF, 10]),
        SyscallOutcome::Block { deadline: None }
    );
    // ... until a write notifies it.
    t.put(BUF + 0x200, b"abc");
    let mut a = [0u64; 6];
    a[..3].copy_from_slice(&[w, BUF + 0x200, 3]);
    // Another thread writes.
    t.p.threads.insert(2, crate::process::Thread::new(2));
    assert_eq!(
        t.p.syscall(&t.fake, 2, nr::WRITE, a),
        SyscallOutcome::Return(3)
    );
    assert_eq!(t.p.take_woken(), vec![1]);
    assert_eq!(t.call(nr::READ, &[r, BUF, 10]), 3);
    assert_eq!(t.get(BUF, 3), b"abc");
    // FIONREAD.
    t.write_str(w as i64, "xy");
    assert_eq!(t.call(16, &[r, 0x541b, BUF + 0x300]), 0);
    assert_eq!(t.get(BUF + 0x300, 4), 2u32.to_le_bytes());
    t.read_all(r as i64);
    // O_NONBLOCK: EAGAIN.
    assert_eq!(t.call(nr::FCNTL, &[r, 4, O_NONBLOCK]), 0);
    assert_eq!(t.call(nr::READ, &[r, BUF, 10]), err(Errno::EAGAIN));
    // Pipe size.
    assert_eq!(t.call(nr::FCNTL, &[r, 1032, 0]), 65536);
    assert_eq!(t.call(nr::FCNTL, &[w, 1031, 5000]), 8192);
    assert_eq!(t.call(nr::FCNTL, &[3 + 100, 1032, 0]), err(Errno::EBADF));
    // Writer closed: EOF.
    assert_eq!(t.call(nr::CLOSE, &[w]), 0);
    assert_eq!(t.call(nr::READ, &[r, BUF, 10]), 0);
    // Reader closed: EPIPE, and SIGPIPE's default action ends the process.
    assert_eq!(t.call(nr::PIPE, &[BUF + 0x100]), 0);
    let fds = t.get(BUF + 0x100, 8);
    let (r2, w2) = (
        u32::from_le_bytes(fds[..4].try_into().unwrap()) as u64,
        u32::from_le_bytes(fds[4..].try_into().unwrap()) as u64,
    );
    t.call(nr::CLOSE, &[r2]);
    t.put(BUF, b"x");
    assert_eq!(
        t.sys(nr::WRITE, &[w2, BUF, 1]),
        SyscallOutcome::Exit {
            status: 128 + 13,
            signal: Some(13)
        }
    );
    // With SIGPIPE ignored: EPIPE.
    let ign = [1u64, 0, 0, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>();
    t.put(BUF + 0x500, &ign);
    assert_eq!(
        t.call(13, &[13, BUF + 0x500, 0, 8]),
        0,
        "rt_sigaction(SIGPIPE, SIG_IGN)"
    );
    assert_eq!(t.call(nr::WRITE, &[w2, BUF, 1]), err(Errno::EPIPE));
}

#[test]
fn a_blocked_read_ends_on_timeout_or_signal() {
    let mut t = setup();
    t.call(nr::PIPE, &[BUF + 0x100]);
    assert_eq!(
        t.sys(nr::READ, &[3, BUF, 1]),
        SyscallOutcome::Block { deadline: None }
    );
    assert!(
        t.p.fs
            .waits
            .is_waiting(t.p.fs.fds.get(3).unwrap().desc.file.wait_key().unwrap(), 1)
    );
    // A signal ends the wait: the thread is no longer queued, and the re-run is EINTR.
    assert!(t.p.end_wait(1, WakeReason::Interrupted));
    assert!(
        !t.p.fs
            .waits
            .is_waiting(t.p.fs.fds.get(3).unwrap().desc.file.wait_key().unwrap(), 1)
    );
    assert_eq!(t.call(nr::READ, &[3, BUF, 1]), err(Errno::EINTR));
}

#[test]
fn eventfd_and_timerfd() {
    let mut t = setup();
    let e = t.call(nr::EVENTFD2, &[2, 0]) as u64;
    assert_eq!(t.call(nr::READ, &[e, BUF, 4]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::READ, &[e, BUF, 8]), 8);
    assert_eq!(t.get(BUF, 8), 2u64.to_le_bytes());
    assert_eq!(
        t.sys(nr::READ, &[e, BUF, 8]),
        SyscallOutcome::Block { deadline: None }
    );
    t.put(BUF + 8, &5u64.to_le_bytes());
    assert_eq!(t.call(nr::WRITE, &[e, BUF + 8, 8]), 8);
    assert_eq!(t.p.take_woken(), vec![1]);
    t.put(BUF + 8, &u64::MAX.to_le_bytes());
    assert_eq!(t.call(nr::WRITE, &[e, BUF + 8, 8]), err(Errno::EINVAL));
    assert_eq!(t.call(nr::EVENTFD2, &[0, 0x40]), err(Errno::EINVAL));

    let tf = t.call(nr::TIMERFD_CREATE, &[1, 0]) as u64;
    // 1 s from now, then every 100 ms.
    let spec = [0i64, 100_000_000, 1, 0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>();
    t.put(BUF + 0x100, &spec);
    assert_eq!(t.call(nr::TIMERFD_SETTIME, &[tf, 0, BUF + 0x100, 0]), 0);
    let now = t.fake.now_ns.get();
    assert_eq!(
        t.sys(nr::READ, &[tf, BUF, 8]),
        SyscallOutcome::Block {
            deadline: Some(now + 1_000_000_000)
        }
    );
    t.fake.now_ns.set(now + 1_250_000_000);
    assert!(t.p.time_out(1));
    assert_eq!(t.call(nr::READ, &[tf, BUF, 8]), 8);
    assert_eq!(
        t.get(BUF, 8),
        3u64.to_le_bytes(),
        "expired at 1.0, 1.1 and 1.2 s"
    );
    assert_eq!(t.call(nr::TIMERFD_CREATE, &[99, 0]), err(Errno::EINVAL));
    assert_eq!(
        t.call(nr::TIMERFD_SETTIME, &[e, 0, BUF + 0x100, 0]),
        err(Errno::EINVAL)
    );
}

#[test]
fn getdents_lists_every_entry_across_calls() {
    let mut t = setup();
    let d = t.path(PATH, "/tmp/many");
    t.call(nr::MKDIR, &[d, 0o755]);
    for i in 0..300 {
        let fd = t.open(
            &alloc::format!("/tmp/many/file-{i:04}"),
            O_CREAT | O_WRONLY,
            0o644,
        );
        t.call(nr::CLOSE, &[fd as u64]);
    }
    let dfd = t.open("/tmp/many", O_DIRECTORY, 0) as u64;
    let mut names = Vec::new();
    loop {
        let n = t.call(nr::GETDENTS64, &[dfd, BUF, 1000]);
        assert!(n >= 0);
        if n == 0 {
            break;
        }
        let buf = t.get(BUF, n as usize);
        let mut off = 0;
        while off < buf.len() {
            let reclen = u16::from_le_bytes([buf[off + 16], buf[off + 17]]) as usize;
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap()];
            names.push(std::string::String::from_utf8(name.to_vec()).unwrap());
            off += reclen;
        }
    }
    assert_eq!(names.len(), 302);
    assert_eq!(&names[..2], [".", ".."]);
    assert!(names.contains(&"file-0299".into()));
    assert_eq!(t.call(nr::GETDENTS64, &[dfd, BUF, 10]), 0, "at the end");
    t.call(nr::LSEEK, &[dfd, 0, 0]);
    assert_eq!(
        t.call(nr::GETDENTS64, &[dfd, BUF, 10]),
        err(Errno::EINVAL),
        "buffer too small"
    );
    let f = t.open("/etc/passwd", 0, 0) as u64;
    assert_eq!(t.call(nr::GETDENTS64, &[f, BUF, 1000]), err(Errno::ENOTDIR));
}

#[test]
fn procfs_and_sysfs_have_real_numbers() {
    let mut t = setup();
    let meminfo = t.text("/proc/meminfo");
    let free = t.fake.frames_left.get() * PAGE_SIZE / 1024;
    assert!(
        meminfo.contains(&alloc::format!(
            "MemTotal:       {:8} kB",
            (256u64 << 20) / 1024
        )),
        "{meminfo}"
    );
    assert!(meminfo.contains(&alloc::format!("{free} kB")), "{meminfo}");
    t.fake.now_ns.set(12_340_000_000);
    assert_eq!(t.text("/proc/uptime"), "12.34 0.00\n");
    assert_eq!(t.text("/sys/devices/system/cpu/online"), "0\n");
    assert_eq!(
        t.text("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"),
        "2097152\n"
    );
    assert!(
        t.text("/sys/kernel/mm/transparent_hugepage/enabled")
            .contains("[never]")
    );
    assert_eq!(t.text("/proc/sys/net/core/somaxconn"), "4096\n");
    assert_eq!(t.text("/proc/sys/vm/overcommit_memory"), "1\n");
    assert_eq!(t.text("/proc/sys/kernel/ostype"), "Linux\n");
    assert_eq!(t.text("/proc/sys/kernel/random/uuid").len(), 37);
    let maps = t.text("/proc/self/maps");
    assert!(
        maps.starts_with("00200000-00240000 rw-p 00000000 00:00 0"),
        "{maps}"
    );
    let status = t.text("/proc/self/status");
    assert!(
        status.contains("Threads:\t1") && status.contains("Pid:\t1"),
        "{status}"
    );
    let stat = t.text("/proc/self/stat");
    assert!(stat.starts_with("1 (app) R "), "{stat}");
    assert!(
        t.text("/proc/self/limits")
            .contains("Max open files            1024                 4096")
    );
    let mounts = t.text("/proc/mounts");
    assert!(
        mounts.contains("tmpfs /tmp tmpfs rw") && mounts.contains("proc /proc proc rw"),
        "{mounts}"
    );
    // fd links: readlink shows the path; following reaches the open file.
    let fd = t.open("/etc/hosts", 0, 0);
    let p = t.path(PATH, &alloc::format!("/proc/self/fd/{fd}"));
    assert_eq!(t.call(nr::READLINK, &[p, BUF, 100]), 10);
    assert_eq!(t.get(BUF, 10), b"/etc/hosts");
    assert!(
        t.text(&alloc::format!("/dev/fd/{fd}"))
            .contains("localhost")
    );
    let p = t.path(PATH, "/proc/self/fd/1");
    assert_eq!(t.call(nr::READLINK, &[p, BUF, 100]), 12);
    let out = t.open("/dev/stdout", O_WRONLY, 0);
    t.write_str(out, "to the console\n");
    assert_eq!(t.fake.console_string(), "to the console\n");
    let pdir = t.open("/proc/self/fd", O_DIRECTORY, 0);
    assert!(pdir > 0);
    assert_eq!(t.open("/proc/self/fd/77", 0, 0), err(Errno::ENOENT));
}

#[test]
fn devices() {
    let mut t = setup();
    let z = t.open("/dev/zero", O_RDWR, 0) as u64;
    t.put(BUF, &[9; 16]);
    assert_eq!(t.call(nr::READ, &[z, BUF, 16]), 16);
    assert_eq!(t.get(BUF, 16), [0; 16]);
    let n = t.open("/dev/null", O_RDWR, 0) as u64;
    assert_eq!(t.call(nr::READ, &[n, BUF, 16]), 0);
    assert_eq!(t.call(nr::WRITE, &[n, BUF, 16]), 16);
    let f = t.open("/dev/full", O_WRONLY, 0) as u64;
    assert_eq!(t.call(nr::WRITE, &[f, BUF, 16]), err(Errno::ENOSPC));
    let r = t.open("/dev/urandom", 0, 0) as u64;
    assert_eq!(t.call(nr::READ, &[r, BUF, 16]), 16);
    assert_ne!(t.get(BUF, 16), [0; 16]);
    let p = t.path(PATH, "/dev/null");
    assert_eq!(t.call(nr::STAT, &[p, BUF]), 0);
    assert_eq!(
        u32::from_le_bytes(t.get(BUF + 24, 4).try_into().unwrap()),
        0o20666
    );
    assert_eq!(
        u64::from_le_bytes(t.get(BUF + 40, 8).try_into().unwrap()),
        0x103
    );
}

#[test]
fn stat_family_and_attributes() {
    let mut t = setup();
    let fd = t.open("/tmp/s", O_CREAT | O_RDWR, 0o640) as u64;
    t.write_str(fd as i64, "12345");
    let p = t.path(PATH, "/tmp/s");
    assert_eq!(t.call(nr::CHMOD, &[p, 0o4755]), 0);
    assert_eq!(t.stat_mode_size("/tmp/s"), Ok((0o104755, 5)));
    assert_eq!(
        t.call(nr::NEWFSTATAT, &[fd, 0, BUF, 0x1000]),
        err(Errno::EFAULT)
    );
    let empty = t.path(PATH2, "");
    assert_eq!(t.call(nr::NEWFSTATAT, &[fd, empty, BUF, 0x1000]), 0);
    assert_eq!(
        t.call(nr::NEWFSTATAT, &[fd, empty, BUF, 0]),
        err(Errno::ENOENT)
    );
    assert_eq!(t.call(nr::STATX, &[CWD, p, 0, 0x7ff, BUF]), 0);
    let x = t.get(BUF, 256);
    assert_eq!(u16::from_le_bytes([x[28], x[29]]), 0o104755);
    assert_eq!(u64::from_le_bytes(x[40..48].try_into().unwrap()), 5);
    // utimensat: explicit times, UTIME_OMIT.
    let times = [100i64, 5, 0, (1 << 30) - 2]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>();
    t.put(BUF + 0x400, &times);
    assert_eq!(t.call(nr::UTIMENSAT, &[CWD, p, BUF + 0x400, 0]), 0);
    t.call(nr::STAT, &[p, BUF]);
    assert_eq!(
        i64::from_le_bytes(t.get(BUF + 72, 8).try_into().unwrap()),
        100,
        "atime"
    );
    assert_ne!(
        i64::from_le_bytes(t.get(BUF + 88, 8).try_into().unwrap()),
        0,
        "mtime kept"
    );
    // access.
    assert_eq!(t.call(nr::ACCESS, &[p, 1]), 0);
    let q = t.path(PATH, "/etc/passwd");
    assert_eq!(t.call(nr::ACCESS, &[q, 1]), err(Errno::EACCES));
    assert_eq!(t.call(nr::ACCESS, &[q, 6]), 0);
    assert_eq!(t.call(nr::ACCESS, &[q, 8]), err(Errno::EINVAL));
    let s = t.path(PATH, "/sys/kernel");
    assert_eq!(t.call(nr::ACCESS, &[s, 2]), err(Errno::EACCES));
    // ftruncate.
    assert_eq!(t.call(nr::FTRUNCATE, &[fd, 2]), 0);
    assert_eq!(t.file("/tmp/s"), b"12");
    assert_eq!(
        t.call(nr::FTRUNCATE, &[fd, (-1i64) as u64]),
        err(Errno::EINVAL)
    );
    // statfs: tmpfs magic.
    let tmp = t.path(PATH, "/tmp");
    assert_eq!(t.call(nr::STATFS, &[tmp, BUF]), 0);
    assert_eq!(
        u64::from_le_bytes(t.get(BUF, 8).try_into().unwrap()),
        0x0102_1994
    );
}

#[test]
fn rootfs_from_the_image_and_copy_up() {
    let mut t = setup();
    let tar = crate::fs::tar::tests::archive(&[
        (b"etc/", b'5', b"", b""),
        (
            b"etc/passwd",
            b'0',
            b"user:x:1000:1000::/home/user:/bin/sh\n",
            b"",
        ),
        (b"srv/www/index.html", b'0', b"<h1>hi</h1>\n", b""),
    ]);
    let tar: &'static [u8] = alloc::boxed::Box::leak(tar.into_boxed_slice());
    let elf: &'static [u8] = &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    let payload = Payload {
        kiln_version: "0",
        app_path: "/usr/bin/app",
        app_elf: elf,
        argv: vec![b"app", b"-x"],
        envp: vec![b"A=1"],
        rootfs: Some(tar),
    };
    let stats = t.p.init_files(&t.fake, &payload).unwrap();
    assert_eq!(stats.files, 2);
    // The rootfs's own /etc/passwd replaces the default; the other defaults stay.
    assert!(t.text("/etc/passwd").starts_with("user:"));
    assert!(t.text("/etc/hosts").contains("localhost"));
    assert_eq!(t.text("/srv/www/index.html"), "<h1>hi</h1>\n");
    // The program is at its path; /proc/self/exe names it.
    assert_eq!(t.stat_mode_size("/usr/bin/app"), Ok((0o100755, 8)));
    assert_eq!(t.file("/proc/self/exe"), elf);
    assert_eq!(t.file("/proc/self/cmdline"), b"app\0-x\0");
    assert_eq!(t.file("/proc/self/environ"), b"A=1\0");
    // Writes go to memory; the archive bytes stay as they were.
    let fd = t.open("/srv/www/index.html", O_WRONLY, 0);
    t.write_str(fd, "<h2>");
    assert_eq!(t.text("/srv/www/index.html"), "<h2>hi</h1>\n");
    assert!(tar.windows(12).any(|w| w == b"<h1>hi</h1>\n"));
    let p = t.path(PATH, "/srv/www/index.html");
    assert_eq!(t.call(nr::UNLINK, &[p]), 0);
    assert_eq!(t.open("/srv/www/index.html", 0, 0), err(Errno::ENOENT));
}

#[test]
fn file_mappings_private_and_shared() {
    let mut t = setup();
    let fd = t.open("/tmp/m", O_CREAT | O_RDWR, 0o644) as u64;
    t.write_str(fd as i64, "mapped bytes");
    // MAP_PRIVATE copy.
    let a = t.call(nr::MMAP, &[0, 8192, 3, 2, fd, 0]);
    assert!(a > 0, "{a}");
    assert_eq!(t.get(a as u64, 13), b"mapped bytes\0");
    // MAP_SHARED: written back on msync and munmap, clipped to the file's size.
    let s = t.call(nr::MMAP, &[0, 4096, 3, 1, fd, 0]) as u64;
    t.put(s, b"MAPPED");
    t.put(s + 100, b"past the end");
    assert_eq!(t.call(nr::MSYNC, &[s, 4096, 4]), 0);
    assert_eq!(t.file("/tmp/m"), b"MAPPED bytes");
    t.put(s + 7, b"BYTES");
    assert_eq!(t.call(nr::MUNMAP, &[s, 4096]), 0);
    assert_eq!(t.file("/tmp/m"), b"MAPPED BYTES");
    // Errors.
    let ro = t.open("/tmp/m", 0, 0) as u64;
    assert_eq!(
        t.call(nr::MMAP, &[0, 4096, 3, 1, ro, 0]),
        err(Errno::EACCES)
    );
    assert_eq!(
        t.call(nr::MMAP, &[0, 4096, 1, 2, 0, 0]),
        err(Errno::ENODEV),
        "the console"
    );
    assert_eq!(t.call(nr::MMAP, &[0, 4096, 1, 2, 77, 0]), err(Errno::EBADF));
    assert_eq!(t.call(nr::MSYNC, &[s + 1, 4096, 4]), err(Errno::EINVAL));
}

#[test]
fn memfd_sendfile_and_console_fds() {
    let mut t = setup();
    let name = t.path(PATH, "buf");
    let m = t.call(nr::MEMFD_CREATE, &[name, 1]) as u64;
    assert!(m >= 3);
    t.write_str(m as i64, "from memfd\n");
    let p = t.path(PATH, &alloc::format!("/proc/self/fd/{m}"));
    assert_eq!(t.call(nr::READLINK, &[p, BUF, 100]), 20);
    assert_eq!(t.get(BUF, 20), b"/memfd:buf (deleted)");
    t.put(BUF + 0x100, &0i64.to_le_bytes());
    assert_eq!(t.call(nr::SENDFILE, &[1, m, BUF + 0x100, 100]), 11);
    assert_eq!(t.fake.console_string(), "from memfd\n");
    assert_eq!(t.get(BUF + 0x100, 8), 11i64.to_le_bytes());
    assert_eq!(t.call(nr::MEMFD_CREATE, &[name, 0x100]), err(Errno::EINVAL));
    // Console fds can be closed and re-opened through /dev/console.
    assert_eq!(t.call(nr::CLOSE, &[1]), 0);
    assert_eq!(t.call(nr::WRITE, &[1, BUF, 1]), err(Errno::EBADF));
    assert_eq!(t.open("/dev/console", O_WRONLY, 0), 1);
    t.write_str(1, "again\n");
    assert_eq!(t.fake.console_string(), "from memfd\nagain\n");
}

#[test]
fn sync_file_range_and_fadvise_check_their_arguments() {
    const SYNC_FILE_RANGE: u64 = 277;
    const FADVISE64: u64 = 221;
    let mut t = setup();
    let fd = t.open("/tmp/rdb", O_CREAT | O_RDWR, 0o644);
    assert_eq!(t.write_str(fd, "REDIS0010"), 9);
    let f = fd as u64;
    // What redis's rioFileWrite asks for: start writeout, then wait for the earlier range.
    assert_eq!(t.call(SYNC_FILE_RANGE, &[f, 0, 9, 2]), 0);
    assert_eq!(t.call(SYNC_FILE_RANGE, &[f, 0, 9, 7]), 0);
    assert_eq!(t.call(SYNC_FILE_RANGE, &[f, 0, 0, 0]), 0, "no flags: nothing to do");
    assert_eq!(t.call(SYNC_FILE_RANGE, &[f, 0, 9, 8]), err(Errno::EINVAL), "unknown flag");
    assert_eq!(t.call(SYNC_FILE_RANGE, &[f, (-1i64) as u64, 9, 2]), err(Errno::EINVAL));
    assert_eq!(t.call(SYNC_FILE_RANGE, &[f, 0, (-1i64) as u64, 2]), err(Errno::EINVAL));
    assert_eq!(t.call(SYNC_FILE_RANGE, &[f, i64::MAX as u64, 1, 2]), err(Errno::EINVAL), "range overflows");
    assert_eq!(t.call(SYNC_FILE_RANGE, &[99, 0, 9, 2]), err(Errno::EBADF));
    assert_eq!(t.call(nr::PIPE, &[BUF + 0x100]), 0);
    let pipe_rd = u64::from(u32::from_le_bytes(t.get(BUF + 0x100, 4).try_into().unwrap()));
    assert_eq!(t.call(SYNC_FILE_RANGE, &[pipe_rd, 0, 9, 2]), err(Errno::ESPIPE));
    // The data is still there.
    assert_eq!(t.call(nr::PREAD, &[f, BUF + 200, 9, 0]), 9);
    assert_eq!(t.get(BUF + 200, 9), b"REDIS0010");
    // fadvise64: POSIX_FADV_SEQUENTIAL and DONTNEED accepted; bad advice, negative length, a
    // pipe and a closed fd are not.
    assert_eq!(t.call(FADVISE64, &[f, 0, 0, 2]), 0);
    assert_eq!(t.call(FADVISE64, &[f, 0, 100, 4]), 0);
    assert_eq!(t.call(FADVISE64, &[f, 0, 0, 6]), err(Errno::EINVAL));
    assert_eq!(t.call(FADVISE64, &[f, 0, (-1i64) as u64, 0]), err(Errno::EINVAL));
    assert_eq!(t.call(FADVISE64, &[pipe_rd, 0, 0, 0]), err(Errno::ESPIPE));
    assert_eq!(t.call(FADVISE64, &[99, 0, 0, 0]), err(Errno::EBADF));
}

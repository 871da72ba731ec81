//! The console as a file: what fds 0, 1 and 2 are at start, and /dev/tty, /dev/console.
//!
//! Output goes to the platform's console (standard error to its error channel); input comes
//! from the console, and is end-of-file unless the run is interactive. A terminal answers the
//! termios ioctls; otherwise they are `ENOTTY`, as for a pipe.

use super::{File, Io, MmapSupport, Readiness};
use crate::errno::Errno;
use crate::fs::{FileType, Metadata, Timestamp};
use crate::syscall::linux::{FromUser, Termios, ToUser, Winsize};

/// Which stream writes go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

pub struct Console {
    pub stream: Stream,
    /// Opened as standard input: readable, and writable only when the console is a
    /// terminal (then fds 0-2 are one read-write device, as a tty is).
    pub input: bool,
    /// Inode number reported by fstat (distinguishes fds 0-2 as Linux's pts would not, but
    /// keeps the old numbering).
    pub ino: u64,
}

/// `makedev(136, 1)`: /dev/pts/1, what a terminal on Linux reports.
pub const PTS_RDEV: u64 = 0x8801;
/// `makedev(5, 1)`: /dev/console.
pub const CONSOLE_RDEV: u64 = 0x0501;

pub const TCGETS: u32 = 0x5401;
pub const TCSETS: u32 = 0x5402;
pub const TCSETSW: u32 = 0x5403;
pub const TCSETSF: u32 = 0x5404;
pub const TIOCGWINSZ: u32 = 0x5413;
pub const TIOCSWINSZ: u32 = 0x5414;

fn write_struct<T: ToUser>(io: &dyn Io, addr: u64, v: &T) -> Result<(), Errno> {
    let mut b = alloc::vec![0u8; T::SIZE];
    v.encode(&mut b);
    io.write_user(addr, &b)
}

fn read_struct<T: FromUser>(io: &dyn Io, addr: u64) -> Result<T, Errno> {
    let mut b = alloc::vec![0u8; T::SIZE];
    io.read_user(addr, &mut b)?;
    Ok(T::decode(&b))
}

impl File for Console {
    fn read(&self, io: &dyn Io, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.input && !io.platform().console_is_terminal() {
            return Err(Errno::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        Ok(io.platform().console_read(buf))
    }

    fn write(&self, io: &dyn Io, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        if self.input && !io.platform().console_is_terminal() {
            return Err(Errno::EBADF);
        }
        match self.stream {
            Stream::Out => io.platform().console_write(data),
            Stream::Err => io.platform().console_write_err(data),
        }
        Ok(data.len())
    }

    fn stat(&self, io: &dyn Io) -> Result<Metadata, Errno> {
        let now = Timestamp::from_ns(io.platform().realtime_ns());
        Ok(Metadata {
            ino: self.ino,
            kind: FileType::CharDevice,
            perm: 0o620,
            nlink: 1,
            uid: 0,
            gid: 5, // tty
            size: 0,
            blocks: 0,
            block_size: 1024,
            rdev: if io.platform().console_is_terminal() {
                PTS_RDEV
            } else {
                CONSOLE_RDEV
            },
            atime: now,
            mtime: now,
            ctime: now,
        })
    }

    fn ioctl(&self, io: &dyn Io, request: u32, arg: u64) -> Result<usize, Errno> {
        if !io.platform().console_is_terminal() {
            return Err(Errno::ENOTTY);
        }
        match request {
            TCGETS => write_struct(io, arg, &Termios::sane()).map(|_| 0),
            // Accepted and ignored: the console has no line discipline to configure.
            TCSETS | TCSETSW | TCSETSF => read_struct::<Termios>(io, arg).map(|_| 0),
            TIOCGWINSZ => write_struct(
                io,
                arg,
                &Winsize {
                    rows: 24,
                    cols: 80,
                    xpixel: 0,
                    ypixel: 0,
                },
            )
            .map(|_| 0),
            TIOCSWINSZ => read_struct::<Winsize>(io, arg).map(|_| 0),
            // TIOCGPGRP, TIOCSPGRP, ...: no job control, the console has no process group.
            _ => Err(Errno::ENOTTY),
        }
    }

    fn poll(&self) -> Readiness {
        Readiness::READABLE | Readiness::WRITABLE
    }

    fn mmap_support(&self) -> MmapSupport {
        MmapSupport::No
    }

    fn describe(&self) -> alloc::string::String {
        alloc::string::String::from("/dev/console")
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

//! Character devices of /dev: null, zero, full, random, urandom (tty and console are
//! [`super::console::Console`]).

use super::{File, Io, MmapSupport};
use crate::errno::Errno;
use crate::fs::Metadata;
use crate::fs::mount::Vnode;

/// `makedev(major, minor)` in Linux's encoding.
pub const fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12) | ((major & !0xfff) << 32)
}

pub const NULL: u64 = makedev(1, 3);
pub const ZERO: u64 = makedev(1, 5);
pub const FULL: u64 = makedev(1, 7);
pub const RANDOM: u64 = makedev(1, 8);
pub const URANDOM: u64 = makedev(1, 9);
pub const TTY: u64 = makedev(5, 0);
pub const CONSOLE: u64 = makedev(5, 1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Null,
    Zero,
    Full,
    Random,
}

/// An opened memory-class device node.
pub struct Device {
    pub kind: DeviceKind,
    /// The node it was opened through (for fstat).
    pub vnode: Vnode,
    pub meta: Metadata,
}

impl Device {
    /// The device for `rdev`, if it is one of these.
    pub fn kind_of(rdev: u64) -> Option<DeviceKind> {
        Some(match rdev {
            NULL => DeviceKind::Null,
            ZERO => DeviceKind::Zero,
            FULL => DeviceKind::Full,
            RANDOM | URANDOM => DeviceKind::Random,
            _ => return None,
        })
    }
}

impl File for Device {
    fn read(&self, io: &dyn Io, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.kind {
            DeviceKind::Null => Ok(0),
            DeviceKind::Zero | DeviceKind::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            DeviceKind::Random => {
                io.platform().fill_random(buf);
                Ok(buf.len())
            }
        }
    }

    fn write(&self, _io: &dyn Io, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        match self.kind {
            DeviceKind::Full => Err(Errno::ENOSPC),
            _ => Ok(data.len()),
        }
    }

    fn stat(&self, _io: &dyn Io) -> Result<Metadata, Errno> {
        Ok(self.meta)
    }

    fn seekable(&self) -> bool {
        true
    }

    fn vnode(&self) -> Option<Vnode> {
        Some(self.vnode)
    }

    fn readable_bytes(&self, _io: &dyn Io) -> Result<usize, Errno> {
        Err(Errno::ENOTTY)
    }

    fn mmap_support(&self) -> MmapSupport {
        match self.kind {
            DeviceKind::Zero => MmapSupport::CopyOnly,
            _ => MmapSupport::No,
        }
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

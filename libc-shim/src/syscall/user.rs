//! Checked access to app memory.
//!
//! Even though the app shares our address space, its pointers are never dereferenced: every
//! access is checked against the app's mappings ([`crate::mm::Mm::check_access`]) with the
//! permission the app itself would need, then copied through the platform. A bad pointer is
//! `EFAULT`, never a kernel fault.

use alloc::vec;
use alloc::vec::Vec;

use super::Ctx;
use super::args::UserPtr;
use super::linux::{FromUser, ToUser};
use crate::errno::Errno;
use crate::mm::layout::USER_END;
use crate::platform::{PAGE_SIZE, Platform, Prot};

/// Longest path accepted (Linux's `PATH_MAX`, including the NUL).
pub const PATH_MAX: usize = 4096;

/// Structs up to this size are staged on the stack.
const SMALL: usize = 512;

/// A zeroed buffer of `len` bytes: `small` when it fits, else `large`, grown to `len`.
fn scratch<'b>(small: &'b mut [u8; SMALL], large: &'b mut Vec<u8>, len: usize) -> &'b mut [u8] {
    if len <= SMALL {
        &mut small[..len]
    } else {
        large.resize(len, 0);
        large.as_mut_slice()
    }
}

impl<P: Platform> Ctx<'_, P> {
    /// `Ok` if the app may access `[addr, addr+len)` with `access`.
    pub fn check_user(&self, addr: u64, len: u64, access: Prot) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Errno::EFAULT)?;
        if addr == 0 || end > USER_END {
            return Err(Errno::EFAULT);
        }
        self.process
            .mm
            .check_access(addr, len, access)
            .map_err(|_| Errno::EFAULT)
    }

    /// Copies app memory at `addr` into `buf` (the app must be able to read it).
    pub fn read_bytes(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.check_user(addr, buf.len() as u64, Prot::READ)?;
        if buf.is_empty() {
            return Ok(());
        }
        match self.platform.read_app(addr, buf) {
            // A page of a lazy mapping not touched yet: commit it and copy again.
            Err(Errno::EFAULT) => {
                self.process.mm.populate(self.platform, addr, buf.len() as u64)?;
                self.platform.read_app(addr, buf)
            }
            done => done,
        }
    }

    /// Copies `data` to app memory at `addr` (the app must be able to write it).
    pub fn write_bytes(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.check_user(addr, data.len() as u64, Prot::WRITE)?;
        if data.is_empty() {
            return Ok(());
        }
        match self.platform.write_app(addr, data) {
            // A page of a lazy mapping not touched yet: commit it and copy again.
            Err(Errno::EFAULT) => {
                self.process.mm.populate(self.platform, addr, data.len() as u64)?;
                self.platform.write_app(addr, data)
            }
            done => done,
        }
    }

    /// Reads one `T`.
    pub fn read<T: FromUser>(&self, ptr: UserPtr<T>) -> Result<T, Errno> {
        // Small structs (nearly all) go through the stack: no heap allocation per syscall.
        let mut small = [0u8; SMALL];
        let mut large = Vec::new();
        let buf = scratch(&mut small, &mut large, T::SIZE);
        self.read_bytes(ptr.addr(), buf)?;
        Ok(T::decode(buf))
    }

    /// Writes one `T`.
    pub fn write<T: ToUser>(&self, ptr: UserPtr<T>, value: &T) -> Result<(), Errno> {
        let mut small = [0u8; SMALL];
        let mut large = Vec::new();
        let buf = scratch(&mut small, &mut large, T::SIZE);
        value.encode(buf);
        self.write_bytes(ptr.addr(), buf)
    }

    /// Writes one `T` unless `ptr` is NULL (the many "optional out-parameter" arguments).
    pub fn write_opt<T: ToUser>(&self, ptr: UserPtr<T>, value: &T) -> Result<(), Errno> {
        if ptr.is_null() {
            Ok(())
        } else {
            self.write(ptr, value)
        }
    }

    /// Reads `count` consecutive `T`s.
    pub fn read_array<T: FromUser>(&self, ptr: UserPtr<T>, count: usize) -> Result<Vec<T>, Errno> {
        let len = count.checked_mul(T::SIZE).ok_or(Errno::EFAULT)?;
        let mut buf = vec![0u8; len];
        self.read_bytes(ptr.addr(), &mut buf)?;
        Ok(buf.chunks_exact(T::SIZE).map(T::decode).collect())
    }

    /// Reads a NUL-terminated string of at most `max` bytes including the NUL (without the
    /// NUL in the result). `ENAMETOOLONG` if there is no NUL within `max` bytes.
    pub fn read_cstr(&self, ptr: UserPtr<u8>, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut addr = ptr.addr();
        while out.len() < max {
            // One page (or less) at a time: the string may end just before an unmapped page.
            let to_page_end = (PAGE_SIZE - addr % PAGE_SIZE) as usize;
            let n = to_page_end.min(max - out.len());
            let mut chunk = vec![0u8; n];
            self.read_bytes(addr, &mut chunk)?;
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            addr = addr.checked_add(n as u64).ok_or(Errno::EFAULT)?;
        }
        Err(Errno::ENAMETOOLONG)
    }

    /// Reads a path argument (`PATH_MAX` bound).
    pub fn read_path(&self, ptr: UserPtr<u8>) -> Result<Vec<u8>, Errno> {
        self.read_cstr(ptr, PATH_MAX)
    }
}

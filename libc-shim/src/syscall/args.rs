//! Typed syscall arguments, decoded from raw registers at the edge.
//!
//! A handler declares what it takes in its signature (`fn sys_read(ctx, fd: Fd, buf: UserPtr<u8>,
//! len: usize)`); [`Handler`] decodes each register with [`FromReg`] before the handler runs.
//! A value that cannot be decoded (unknown flag bits, a value out of range) is `EINVAL`,
//! reported by the dispatcher once per syscall argument.

use alloc::string::String;
use core::fmt::{self, Debug, Write as _};
use core::marker::PhantomData;

use super::{Ctx, IntoReply, Reply};
use crate::errno::Errno;
use crate::platform::Platform;

/// Why a register did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgError {
    /// Flag bits this implementation does not know.
    UnknownBits(u64),
    /// A value outside the allowed set.
    Invalid,
}

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgError::UnknownBits(bits) => write!(f, "unknown flag bits {bits:#x}"),
            ArgError::Invalid => f.write_str("invalid value"),
        }
    }
}

/// A type a syscall argument register decodes into.
pub trait FromReg: Sized + Debug {
    fn from_reg(raw: u64) -> Result<Self, ArgError>;
}

impl FromReg for u64 {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        Ok(raw)
    }
}

impl FromReg for usize {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        Ok(raw as usize)
    }
}

impl FromReg for i64 {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        Ok(raw as i64)
    }
}

/// C `int` arguments: the low 32 bits, as Linux reads them.
impl FromReg for i32 {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        Ok(raw as u32 as i32)
    }
}

/// C `unsigned int` arguments: the low 32 bits.
impl FromReg for u32 {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        Ok(raw as u32)
    }
}

/// A file descriptor (C `int`/`unsigned int`: the low 32 bits).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fd(pub i32);

impl Fd {
    pub const STDIN: Fd = Fd(0);
    pub const STDOUT: Fd = Fd(1);
    pub const STDERR: Fd = Fd(2);
    /// `AT_FDCWD`: "relative to the current directory" for the `*at` calls.
    pub const AT_FDCWD: Fd = Fd(-100);
}

impl FromReg for Fd {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        Ok(Fd(raw as u32 as i32))
    }
}

impl Debug for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Fd::AT_FDCWD {
            f.write_str("AT_FDCWD")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// An app address holding a `T` (or the first of several). Not a reference: access goes
/// through the checked accessors of [`super::user`].
pub struct UserPtr<T> {
    addr: u64,
    _to: PhantomData<fn() -> T>,
}

impl<T> UserPtr<T> {
    pub const fn new(addr: u64) -> Self {
        UserPtr {
            addr,
            _to: PhantomData,
        }
    }
    pub const fn addr(self) -> u64 {
        self.addr
    }
    pub const fn is_null(self) -> bool {
        self.addr == 0
    }
    /// The pointer `bytes` further on (for arrays); `EFAULT` on overflow.
    pub fn byte_add<U>(self, bytes: u64) -> Result<UserPtr<U>, Errno> {
        self.addr
            .checked_add(bytes)
            .map(UserPtr::new)
            .ok_or(Errno::EFAULT)
    }
}

impl<T> Clone for UserPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for UserPtr<T> {}

impl<T> Debug for UserPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            f.write_str("NULL")
        } else {
            write!(f, "{:#x}", self.addr)
        }
    }
}

impl<T> FromReg for UserPtr<T> {
    fn from_reg(raw: u64) -> Result<Self, ArgError> {
        Ok(UserPtr::new(raw))
    }
}

/// A NUL-terminated path in app memory.
pub type UserCStr = UserPtr<u8>;

/// Implements [`FromReg`] for a bitflags type: unknown bits are an [`ArgError::UnknownBits`].
macro_rules! flags_arg {
    ($ty:ty) => {
        impl $crate::syscall::args::FromReg for $ty {
            fn from_reg(raw: u64) -> Result<Self, $crate::syscall::args::ArgError> {
                let known = <$ty>::all().bits() as u64;
                let unknown = raw & !known;
                if unknown != 0 {
                    return Err($crate::syscall::args::ArgError::UnknownBits(unknown));
                }
                Ok(<$ty>::from_bits_retain(raw as _))
            }
        }
    };
}
pub(crate) use flags_arg;

/// Implements [`FromReg`] for a C-int enum given as `value => Variant` pairs; other values are
/// [`ArgError::Invalid`].
macro_rules! enum_arg {
    ($ty:ident { $($value:literal => $variant:ident),* $(,)? }) => {
        impl $crate::syscall::args::FromReg for $ty {
            fn from_reg(raw: u64) -> Result<Self, $crate::syscall::args::ArgError> {
                match raw as u32 as i32 {
                    $($value => Ok($ty::$variant),)*
                    _ => Err($crate::syscall::args::ArgError::Invalid),
                }
            }
        }
    };
}
pub(crate) use enum_arg;

/// The outcome of decoding and running one handler.
pub struct Invoked {
    pub reply: Result<Reply, Errno>,
    /// The decoded arguments, formatted for the trace line (only when tracing is on).
    pub args: Option<String>,
}

/// An argument that did not decode: which one and why.
pub struct BadArg {
    pub index: usize,
    pub error: ArgError,
}

/// A `sys_*` function whose parameters after the context are all [`FromReg`]; `Args` is the
/// tuple of those parameter types (it only disambiguates the arities).
pub trait Handler<P: Platform, Args> {
    fn invoke(&self, ctx: &mut Ctx<'_, P>, raw: &[u64; 6]) -> Result<Invoked, BadArg>;
}

macro_rules! impl_handler {
    ($($arg:ident $idx:tt),*) => {
        impl<P: Platform, F, R, $($arg: FromReg),*> Handler<P, ($($arg,)*)> for F
        where
            F: Fn(&mut Ctx<'_, P>, $($arg),*) -> R,
            R: IntoReply,
        {
            #[allow(non_snake_case, unused_variables, unused_mut)]
            fn invoke(&self, ctx: &mut Ctx<'_, P>, raw: &[u64; 6]) -> Result<Invoked, BadArg> {
                $(let $arg = $arg::from_reg(raw[$idx]).map_err(|error| BadArg { index: $idx, error })?;)*
                let args = if log::log_enabled!(log::Level::Trace) {
                    let mut text = String::new();
                    $(let _ = write!(text, "{}{:?}", if $idx > 0 { ", " } else { "" }, $arg);)*
                    Some(text)
                } else {
                    None
                };
                Ok(Invoked { reply: self(ctx, $($arg),*).into_reply(), args })
            }
        }
    };
}

impl_handler!();
impl_handler!(A 0);
impl_handler!(A 0, B 1);
impl_handler!(A 0, B 1, C 2);
impl_handler!(A 0, B 1, C 2, D 3);
impl_handler!(A 0, B 1, C 2, D 3, E 4);
impl_handler!(A 0, B 1, C 2, D 3, E 4, G 5);

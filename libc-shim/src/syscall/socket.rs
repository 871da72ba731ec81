//! Socket syscalls: socket/socketpair, bind/listen/accept/connect, the send and receive
//! family, shutdown, names and options.
//!
//! Blocking: a socket that would block says `EAGAIN`; unless the description is
//! `O_NONBLOCK` or the call passed `MSG_DONTWAIT`, [`wait`] queues the thread on the
//! socket's wait key with the socket's timeout (SO_RCVTIMEO/SO_SNDTIMEO, then `EAGAIN`) and
//! the call runs again when the socket changes. A signal ends the wait with `ERESTARTSYS`
//! (restarted under SA_RESTART), or `EINTR` when the socket has a timeout, as Linux does.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::args::{Fd, UserPtr, flags_arg};
use super::files::{close_fd, desc, install, raise_sigpipe};
use super::linux::{Iovec, Timespec};
use super::signal::ERESTARTSYS;
use super::{Ctx, Reply};
use crate::errno::Errno;
use crate::fd::{File, OpenFile, Readiness, StatusFlags};
use crate::net::addr::{AF_INET, AF_INET6, AF_UNIX, Family, SockAddr};
use crate::net::inet::InetSocket;
use crate::net::stack::{Proto, TCP_BUF_MAX};
use crate::net::unix::{self, UnixSocket};
use crate::net::{IPPROTO_TCP, IPPROTO_UDP, RecvFlags, SOCK_DGRAM, SOCK_STREAM, Socket, socket_of};
use crate::platform::Platform;
use crate::process::WakeReason;

const SOCK_NONBLOCK: i32 = 0o4000;
const SOCK_CLOEXEC: i32 = 0o2000000;
const SOCK_TYPE_MASK: i32 = 0xf;
/// Largest stream write staged per call (a socket buffer holds at most this).
const STREAM_CHUNK: usize = TCP_BUF_MAX;
/// Largest datagram.
const DGRAM_MAX: usize = 65536;
/// `UIO_MAXIOV`.
const IOV_MAX: usize = 1024;
const SETSOCKOPT: u64 = 54;
const GETSOCKOPT: u64 = 55;

bitflags::bitflags! {
    /// `MSG_*` flags of send and receive calls.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct MsgFlags: u32 {
        const OOB = 0x1;
        const PEEK = 0x2;
        const DONTROUTE = 0x4;
        const CTRUNC = 0x8;
        const TRUNC = 0x20;
        const DONTWAIT = 0x40;
        const EOR = 0x80;
        const WAITALL = 0x100;
        const CONFIRM = 0x800;
        const ERRQUEUE = 0x2000;
        const NOSIGNAL = 0x4000;
        const MORE = 0x8000;
        const WAITFORONE = 0x10000;
        const FASTOPEN = 0x2000_0000;
        const CMSG_CLOEXEC = 0x4000_0000;
    }
}
flags_arg!(MsgFlags);

bitflags::bitflags! {
    /// accept4's flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct AcceptFlags: u32 {
        const NONBLOCK = 0o4000;
        const CLOEXEC = 0o2000000;
    }
}
flags_arg!(AcceptFlags);

/// The socket behind `fd`: `ENOTSOCK` for other files.
fn sock_desc<P: Platform>(ctx: &Ctx<'_, P>, fd: Fd) -> Result<Arc<OpenFile>, Errno> {
    let d = desc(ctx, fd)?;
    if socket_of(&*d.file).is_none() {
        return Err(Errno::ENOTSOCK);
    }
    Ok(d)
}

fn sock(d: &OpenFile) -> &dyn Socket {
    socket_of(&*d.file).expect("checked by sock_desc")
}

/// A socket operation would block: fail (`nonblock`), time out (`on_timeout`), or park the
/// thread on the socket until it changes.
fn wait<P: Platform>(ctx: &mut Ctx<'_, P>, d: &OpenFile, nonblock: bool, timeout: Option<u64>, on_timeout: Errno) -> Result<Reply, Errno> {
    if nonblock || d.flags().contains(StatusFlags::NONBLOCK) {
        return Err(Errno::EAGAIN);
    }
    match ctx.resumed {
        Some(WakeReason::Interrupted) => return Err(if timeout.is_some() { Errno::EINTR } else { ERESTARTSYS }),
        Some(WakeReason::TimedOut) => return Err(on_timeout),
        _ => {}
    }
    let key = d.file.wait_key().ok_or(Errno::EAGAIN)?;
    let deadline = if ctx.resumed.is_some() { ctx.deadline() } else { timeout.map(|t| ctx.platform.monotonic_ns().saturating_add(t)) };
    ctx.process.fs.waits.enqueue(key, ctx.tid);
    Ok(ctx.block(deadline))
}

/// Reads a socket address argument.
fn read_addr<P: Platform>(ctx: &Ctx<'_, P>, addr: UserPtr<u8>, len: u32) -> Result<SockAddr, Errno> {
    let len = len as usize;
    if len > 128 {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; len];
    ctx.read_bytes(addr.addr(), &mut buf)?;
    SockAddr::decode(&buf)
}

/// Writes an address result: at most `*len` bytes at `addr`, and the full length in `*len`.
fn write_addr<P: Platform>(ctx: &Ctx<'_, P>, addr: UserPtr<u8>, len: UserPtr<u32>, value: &SockAddr) -> Result<(), Errno> {
    if addr.is_null() || len.is_null() {
        return Ok(());
    }
    let room = ctx.read(len)?;
    if (room as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes = value.encode();
    let n = bytes.len().min(room as usize);
    ctx.write_bytes(addr.addr(), &bytes[..n])?;
    ctx.write(len, &(bytes.len() as u32))
}

/// Installs a new socket fd.
fn install_socket<P: Platform>(ctx: &mut Ctx<'_, P>, file: Arc<dyn File>, nonblock: bool, cloexec: bool) -> Result<usize, Errno> {
    let flags = StatusFlags::RDWR | if nonblock { StatusFlags::NONBLOCK } else { StatusFlags::empty() };
    install(ctx, OpenFile::new(file, flags, None), cloexec)
}

/// Decodes socket()'s type argument: (type, nonblock, cloexec).
fn split_type(ty: i32) -> Result<(i32, bool, bool), Errno> {
    if ty & !(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((ty & SOCK_TYPE_MASK, ty & SOCK_NONBLOCK != 0, ty & SOCK_CLOEXEC != 0))
}

/// A new socket file for (domain, type, protocol).
fn new_socket<P: Platform>(ctx: &mut Ctx<'_, P>, domain: i32, ty: i32, protocol: i32) -> Result<Arc<dyn File>, Errno> {
    let family = match domain as u16 {
        AF_INET => Family::Inet,
        AF_INET6 => Family::Inet6,
        AF_UNIX => {
            if !unix::supported_type(ty) {
                return Err(Errno::ESOCKTNOSUPPORT);
            }
            if protocol != 0 && protocol != 1 {
                return Err(Errno::EPROTONOSUPPORT);
            }
            return Ok(UnixSocket::new(ty, &ctx.process.net.unix, &ctx.process.net.pending));
        }
        _ => {
            ctx.warn_once("socket-family", format_args!("socket: address family {domain} is not supported: EAFNOSUPPORT"));
            return Err(Errno::EAFNOSUPPORT);
        }
    };
    let proto = match (ty, protocol) {
        (SOCK_STREAM, 0 | IPPROTO_TCP) => Proto::Tcp,
        (SOCK_DGRAM, 0 | IPPROTO_UDP) => Proto::Udp,
        (SOCK_STREAM | SOCK_DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
        _ => {
            ctx.warn_once("socket-type", format_args!("socket: type {ty} is not supported for inet sockets: ESOCKTNOSUPPORT"));
            return Err(Errno::ESOCKTNOSUPPORT);
        }
    };
    let net = ctx.process.net.stack(ctx.platform).clone();
    Ok(InetSocket::new(&net, family, proto))
}

pub fn sys_socket<P: Platform>(ctx: &mut Ctx<'_, P>, domain: i32, ty: i32, protocol: i32) -> Result<usize, Errno> {
    let (ty, nonblock, cloexec) = split_type(ty)?;
    let file = new_socket(ctx, domain, ty, protocol)?;
    install_socket(ctx, file, nonblock, cloexec)
}

pub fn sys_socketpair<P: Platform>(ctx: &mut Ctx<'_, P>, domain: i32, ty: i32, protocol: i32, sv: UserPtr<i32>) -> Result<usize, Errno> {
    let (ty, nonblock, cloexec) = split_type(ty)?;
    if domain as u16 != AF_UNIX {
        return Err(if matches!(domain as u16, AF_INET | AF_INET6) { Errno::EOPNOTSUPP } else { Errno::EAFNOSUPPORT });
    }
    if !unix::supported_type(ty) {
        return Err(Errno::ESOCKTNOSUPPORT);
    }
    if protocol != 0 && protocol != 1 {
        return Err(Errno::EPROTONOSUPPORT);
    }
    ctx.check_user(sv.addr(), 8, crate::platform::Prot::WRITE)?;
    let (a, b) = UnixSocket::pair(ty, &ctx.process.net.unix, &ctx.process.net.pending);
    let fa = install_socket(ctx, a, nonblock, cloexec)?;
    let fb = match install_socket(ctx, b, nonblock, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            close_fd(ctx, fa as i32)?;
            return Err(e);
        }
    };
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&(fa as i32).to_le_bytes());
    bytes[4..].copy_from_slice(&(fb as i32).to_le_bytes());
    ctx.write_bytes(sv.addr(), &bytes)?;
    Ok(0)
}

pub fn sys_bind<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, addr: UserPtr<u8>, len: u32) -> Result<usize, Errno> {
    let d = sock_desc(ctx, fd)?;
    let a = read_addr(ctx, addr, len)?;
    sock(&d).bind(ctx.platform, &a)?;
    Ok(0)
}

pub fn sys_listen<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, backlog: i32) -> Result<usize, Errno> {
    let d = sock_desc(ctx, fd)?;
    sock(&d).listen(ctx.platform, backlog)?;
    Ok(0)
}

pub fn sys_accept<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, addr: UserPtr<u8>, len: UserPtr<u32>) -> Result<Reply, Errno> {
    sys_accept4(ctx, fd, addr, len, AcceptFlags::empty())
}

pub fn sys_accept4<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, addr: UserPtr<u8>, len: UserPtr<u32>, flags: AcceptFlags) -> Result<Reply, Errno> {
    let d = sock_desc(ctx, fd)?;
    let s = sock(&d);
    if s.sock_type() == SOCK_DGRAM {
        return Err(Errno::EOPNOTSUPP);
    }
    match s.accept(ctx.platform) {
        Ok((file, peer)) => {
            let nonblock = flags.contains(AcceptFlags::NONBLOCK);
            let newfd = install_socket(ctx, file, nonblock, flags.contains(AcceptFlags::CLOEXEC))?;
            if let Err(e) = write_addr(ctx, addr, len, &peer) {
                close_fd(ctx, newfd as i32)?;
                return Err(e);
            }
            Ok(Reply::Value(newfd))
        }
        Err(Errno::EAGAIN) => wait(ctx, &d, false, s.timeouts().recv, Errno::EAGAIN),
        Err(e) => Err(e),
    }
}

pub fn sys_connect<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, addr: UserPtr<u8>, len: u32) -> Result<Reply, Errno> {
    let d = sock_desc(ctx, fd)?;
    let s = sock(&d);
    let a = read_addr(ctx, addr, len)?;
    let nonblock = d.flags().contains(StatusFlags::NONBLOCK);
    let resumed = ctx.resumed.is_some();
    let mut r = s.connect(ctx.platform, &a, resumed);
    if r == Err(Errno::EINPROGRESS) && !nonblock {
        r = s.connect(ctx.platform, &a, true);
    }
    match r {
        Ok(()) => Ok(Reply::Value(0)),
        Err(Errno::EAGAIN) if !nonblock => wait(ctx, &d, false, s.timeouts().send, Errno::EINPROGRESS),
        Err(Errno::EAGAIN) => Err(Errno::EALREADY),
        Err(e) => Err(e),
    }
}

/// Copies app buffers into one staging buffer (at most `cap` bytes).
/// Copies up to `cap` bytes of the app buffers `iov`, starting `skip` bytes in.
fn gather<P: Platform>(ctx: &Ctx<'_, P>, iov: &[Iovec], mut skip: usize, cap: usize) -> Result<Vec<u8>, Errno> {
    let total: usize = iov.iter().map(|v| v.len as usize).sum();
    let mut out = vec![0u8; total.saturating_sub(skip).min(cap)];
    let mut done = 0;
    for v in iov {
        if done == out.len() {
            break;
        }
        let len = v.len as usize;
        if skip >= len {
            skip -= len;
            continue;
        }
        let n = (len - skip).min(out.len() - done);
        ctx.read_bytes(v.base + skip as u64, &mut out[done..done + n])?;
        done += n;
        skip = 0;
    }
    Ok(out)
}

/// Copies `data` out to app buffers.
fn scatter<P: Platform>(ctx: &Ctx<'_, P>, iov: &[Iovec], data: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    for v in iov {
        if done == data.len() {
            break;
        }
        let n = (v.len as usize).min(data.len() - done);
        ctx.write_bytes(v.base, &data[done..done + n])?;
        done += n;
    }
    Ok(())
}

fn iovecs<P: Platform>(ctx: &Ctx<'_, P>, iov: UserPtr<Iovec>, count: usize) -> Result<Vec<Iovec>, Errno> {
    if count > IOV_MAX {
        return Err(Errno::EMSGSIZE);
    }
    let v = ctx.read_array(iov, count)?;
    let mut total = 0u64;
    for i in &v {
        total = total.checked_add(i.len).filter(|&t| t <= i64::MAX as u64).ok_or(Errno::EINVAL)?;
        ctx.check_user(i.base, i.len, crate::platform::Prot::READ).or_else(|e| if i.len == 0 { Ok(()) } else { Err(e) })?;
    }
    Ok(v)
}

/// send/sendto/sendmsg: one message from `iov`.
pub(crate) fn send_iov<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, iov: &[Iovec], flags: MsgFlags, dest: Option<SockAddr>) -> Result<Reply, Errno> {
    let d = sock_desc(ctx, fd)?;
    let s = sock(&d);
    if flags.contains(MsgFlags::OOB) {
        return Err(Errno::EOPNOTSUPP);
    }
    let outcome = if s.sock_type() == SOCK_STREAM {
        stream_send(ctx, &d, iov, dest.as_ref())
    } else {
        // A datagram goes whole or not at all.
        let data = gather(ctx, iov, 0, DGRAM_MAX + 1)?;
        s.send(ctx.platform, &data, dest.as_ref()).map_err(|e| (0, e))
    };
    let (done, outcome) = match outcome {
        Ok(n) => (n, Ok(())),
        Err((n, e)) => (n, Err(e)),
    };
    ctx.thread_mut().send_progress = 0;
    match outcome {
        Ok(()) => Ok(Reply::Value(done)),
        Err(Errno::EAGAIN) => {
            let nonblocking = flags.contains(MsgFlags::DONTWAIT) || d.flags().contains(StatusFlags::NONBLOCK);
            let cut_short = matches!(ctx.resumed, Some(WakeReason::Interrupted | WakeReason::TimedOut));
            if done > 0 && (nonblocking || cut_short) {
                return Ok(Reply::Value(done));
            }
            let r = wait(ctx, &d, flags.contains(MsgFlags::DONTWAIT), s.timeouts().send, Errno::EAGAIN);
            if matches!(r, Ok(Reply::Block { .. })) {
                ctx.thread_mut().send_progress = done;
            }
            r
        }
        Err(_) if done > 0 => Ok(Reply::Value(done)),
        Err(Errno::EPIPE) if !flags.contains(MsgFlags::NOSIGNAL) => raise_sigpipe(ctx).ok_or(Errno::EPIPE),
        Err(e) => Err(e),
    }
}

/// A stream send queues everything before it returns, waiting for room as often as it
/// takes; a re-run after such a wait continues where the last run stopped. Returns the bytes
/// queued in all, or how many were queued before the error.
fn stream_send<P: Platform>(ctx: &mut Ctx<'_, P>, d: &OpenFile, iov: &[Iovec], dest: Option<&SockAddr>) -> Result<usize, (usize, Errno)> {
    let s = sock(d);
    let total: usize = iov.iter().map(|v| v.len as usize).sum();
    let mut done = if ctx.resumed.is_some() { ctx.thread().send_progress } else { 0 };
    // Retries without progress: the stack may drain the buffer while it queues (its poll
    // runs around every call), leaving a socket that is writable again without any change a
    // waiter would be woken by; so look again rather than sleep on it, a bounded number of
    // times.
    let mut idle_tries = 0;
    loop {
        // A bad buffer fails the call whatever was queued before (as before this split).
        let data = gather(ctx, iov, done, STREAM_CHUNK).map_err(|e| (0, e))?;
        match s.send(ctx.platform, &data, dest) {
            Ok(n) => {
                done += n;
                if done >= total {
                    return Ok(done);
                }
                idle_tries = if n == 0 { idle_tries + 1 } else { 0 };
            }
            Err(Errno::EAGAIN) => idle_tries += 1,
            Err(e) => return Err((done, e)),
        }
        if idle_tries > 0 && (idle_tries > 2 || !d.file.poll().contains(Readiness::WRITABLE)) {
            return Err((done, Errno::EAGAIN));
        }
    }
}

/// What one receive delivered.
struct Got {
    len: usize,
    full_len: usize,
    from: Option<SockAddr>,
}

/// read/readv on a socket: recv() without flags or an address.
pub(crate) fn recv_reply<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, iov: &[Iovec]) -> Result<Reply, Errno> {
    Ok(match recv_iov(ctx, fd, iov, MsgFlags::empty())? {
        Ok(got) => Reply::Value(got.len),
        Err(block) => block,
    })
}

/// recv/recvfrom/recvmsg: one message into `iov`. `Err(Ok(reply))` when it blocks.
fn recv_iov<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, iov: &[Iovec], flags: MsgFlags) -> Result<Result<Got, Reply>, Errno> {
    let d = sock_desc(ctx, fd)?;
    let s = sock(&d);
    if flags.contains(MsgFlags::OOB) {
        return Err(Errno::EINVAL);
    }
    if flags.contains(MsgFlags::ERRQUEUE) {
        return Err(Errno::EAGAIN);
    }
    let total: usize = iov.iter().map(|v| v.len as usize).sum();
    let cap = match s.sock_type() {
        SOCK_STREAM => STREAM_CHUNK,
        _ => DGRAM_MAX,
    };
    let rf = RecvFlags { peek: flags.contains(MsgFlags::PEEK), waitall: flags.contains(MsgFlags::WAITALL), trunc: flags.contains(MsgFlags::TRUNC) };
    match s.recv_vec(ctx.platform, total.min(cap), rf) {
        Ok((buf, r)) => {
            scatter(ctx, iov, &buf)?;
            Ok(Ok(Got { len: r.len, full_len: r.full_len, from: r.from }))
        }
        Err(Errno::EAGAIN) => wait(ctx, &d, flags.contains(MsgFlags::DONTWAIT), s.timeouts().recv, Errno::EAGAIN).map(Err),
        Err(e) => Err(e),
    }
}

pub fn sys_sendto<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    buf: UserPtr<u8>,
    len: usize,
    flags: MsgFlags,
    addr: UserPtr<u8>,
    addrlen: u32,
) -> Result<Reply, Errno> {
    let dest = if addr.is_null() { None } else { Some(read_addr(ctx, addr, addrlen)?) };
    let iov = [Iovec { base: buf.addr(), len: len as u64 }];
    if len > 0 {
        ctx.check_user(buf.addr(), len as u64, crate::platform::Prot::READ)?;
    }
    send_iov(ctx, fd, &iov, flags, dest)
}

pub fn sys_recvfrom<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    buf: UserPtr<u8>,
    len: usize,
    flags: MsgFlags,
    addr: UserPtr<u8>,
    addrlen: UserPtr<u32>,
) -> Result<Reply, Errno> {
    if len > 0 {
        ctx.check_user(buf.addr(), len as u64, crate::platform::Prot::WRITE)?;
    }
    let iov = [Iovec { base: buf.addr(), len: len as u64 }];
    match recv_iov(ctx, fd, &iov, flags)? {
        Ok(got) => {
            if let Some(from) = &got.from {
                write_addr(ctx, addr, addrlen, from)?;
            }
            Ok(Reply::Value(if flags.contains(MsgFlags::TRUNC) { got.full_len } else { got.len }))
        }
        Err(block) => Ok(block),
    }
}

/// `struct msghdr` (56 bytes).
struct MsgHdr {
    name: u64,
    namelen: u32,
    iov: u64,
    iovlen: u64,
    control: u64,
    controllen: u64,
}

const MSGHDR: usize = 56;
const MMSGHDR: u64 = 64;

fn read_msghdr<P: Platform>(ctx: &Ctx<'_, P>, at: u64) -> Result<MsgHdr, Errno> {
    let mut b = [0u8; MSGHDR];
    ctx.read_bytes(at, &mut b)?;
    let q = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    Ok(MsgHdr {
        name: q(0),
        namelen: u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")),
        iov: q(16),
        iovlen: q(24),
        control: q(32),
        controllen: q(40),
    })
}

fn sendmsg_at<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, at: u64, flags: MsgFlags) -> Result<Reply, Errno> {
    let m = read_msghdr(ctx, at)?;
    if m.controllen > 0 && m.control != 0 {
        ctx.warn_once("sendmsg-control", format_args!("sendmsg: ancillary data (SCM_RIGHTS, ...) is not supported: EOPNOTSUPP"));
        return Err(Errno::EOPNOTSUPP);
    }
    let dest = if m.name == 0 || m.namelen == 0 { None } else { Some(read_addr(ctx, UserPtr::new(m.name), m.namelen)?) };
    let iov = iovecs(ctx, UserPtr::new(m.iov), m.iovlen as usize)?;
    send_iov(ctx, fd, &iov, flags, dest)
}

/// Receives into the msghdr at `at`; returns the byte count or the blocking reply.
fn recvmsg_at<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, at: u64, flags: MsgFlags) -> Result<Result<usize, Reply>, Errno> {
    let m = read_msghdr(ctx, at)?;
    let iov = iovecs(ctx, UserPtr::new(m.iov), m.iovlen as usize)?;
    for v in &iov {
        if v.len > 0 {
            ctx.check_user(v.base, v.len, crate::platform::Prot::WRITE)?;
        }
    }
    let got = match recv_iov(ctx, fd, &iov, flags)? {
        Ok(g) => g,
        Err(block) => return Ok(Err(block)),
    };
    if m.name != 0 {
        match &got.from {
            Some(from) => {
                let bytes = from.encode();
                let n = bytes.len().min(m.namelen as usize);
                ctx.write_bytes(m.name, &bytes[..n])?;
                ctx.write_bytes(at + 8, &(bytes.len() as u32).to_le_bytes())?;
            }
            None => ctx.write_bytes(at + 8, &0u32.to_le_bytes())?,
        }
    }
    // No ancillary data; MSG_TRUNC when a datagram did not fit.
    ctx.write_bytes(at + 40, &0u64.to_le_bytes())?;
    let out_flags: u32 = if got.full_len > got.len { MsgFlags::TRUNC.bits() } else { 0 };
    ctx.write_bytes(at + 48, &out_flags.to_le_bytes())?;
    Ok(Ok(if flags.contains(MsgFlags::TRUNC) { got.full_len } else { got.len }))
}

pub fn sys_sendmsg<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, msg: UserPtr<u8>, flags: MsgFlags) -> Result<Reply, Errno> {
    sendmsg_at(ctx, fd, msg.addr(), flags)
}

pub fn sys_recvmsg<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, msg: UserPtr<u8>, flags: MsgFlags) -> Result<Reply, Errno> {
    Ok(match recvmsg_at(ctx, fd, msg.addr(), flags)? {
        Ok(n) => Reply::Value(n),
        Err(block) => block,
    })
}

pub fn sys_sendmmsg<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, vec: UserPtr<u8>, vlen: u32, flags: MsgFlags) -> Result<Reply, Errno> {
    let vlen = vlen.min(IOV_MAX as u32) as u64;
    let mut sent = 0u64;
    while sent < vlen {
        let at = vec.addr() + sent * MMSGHDR;
        // Only the first message may block.
        let f = if sent == 0 { flags } else { flags | MsgFlags::DONTWAIT };
        match sendmsg_at(ctx, fd, at, f) {
            Ok(Reply::Value(n)) => {
                ctx.write_bytes(at + MSGHDR as u64, &(n as u32).to_le_bytes())?;
                sent += 1;
            }
            Ok(other) if sent == 0 => return Ok(other),
            Err(e) if sent == 0 => return Err(e),
            _ => break,
        }
    }
    Ok(Reply::Value(sent as usize))
}

pub fn sys_recvmmsg<P: Platform>(
    ctx: &mut Ctx<'_, P>,
    fd: Fd,
    vec: UserPtr<u8>,
    vlen: u32,
    flags: MsgFlags,
    timeout: UserPtr<Timespec>,
) -> Result<Reply, Errno> {
    if !timeout.is_null() {
        ctx.read(timeout)?.to_ns().ok_or(Errno::EINVAL)?;
    }
    let vlen = vlen.min(IOV_MAX as u32) as u64;
    let mut got = 0u64;
    while got < vlen {
        let at = vec.addr() + got * MMSGHDR;
        // Blocks for the first message only (as with MSG_WAITFORONE).
        let f = (if got == 0 { flags } else { flags | MsgFlags::DONTWAIT }) - MsgFlags::WAITFORONE;
        match recvmsg_at(ctx, fd, at, f) {
            Ok(Ok(n)) => {
                ctx.write_bytes(at + MSGHDR as u64, &(n as u32).to_le_bytes())?;
                got += 1;
            }
            Ok(Err(block)) if got == 0 => return Ok(block),
            Err(e) if got == 0 => return Err(e),
            _ => break,
        }
    }
    Ok(Reply::Value(got as usize))
}

pub fn sys_shutdown<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, how: i32) -> Result<usize, Errno> {
    let d = sock_desc(ctx, fd)?;
    sock(&d).shutdown(ctx.platform, how)?;
    Ok(0)
}

pub fn sys_getsockname<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, addr: UserPtr<u8>, len: UserPtr<u32>) -> Result<usize, Errno> {
    let d = sock_desc(ctx, fd)?;
    let a = sock(&d).local_addr()?;
    if addr.is_null() || len.is_null() {
        return Err(Errno::EFAULT);
    }
    write_addr(ctx, addr, len, &a)?;
    Ok(0)
}

pub fn sys_getpeername<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, addr: UserPtr<u8>, len: UserPtr<u32>) -> Result<usize, Errno> {
    let d = sock_desc(ctx, fd)?;
    let a = sock(&d).peer_addr()?;
    if addr.is_null() || len.is_null() {
        return Err(Errno::EFAULT);
    }
    write_addr(ctx, addr, len, &a)?;
    Ok(0)
}

pub fn sys_setsockopt<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, level: i32, name: i32, value: UserPtr<u8>, len: u32) -> Result<usize, Errno> {
    let d = sock_desc(ctx, fd)?;
    if (len as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let mut v = vec![0u8; (len as usize).min(256)];
    ctx.read_bytes(value.addr(), &mut v)?;
    match sock(&d).setsockopt(level, name, &v) {
        Err(Errno::ENOPROTOOPT) => {
            if ctx.process.warned.insert(opt_key(SETSOCKOPT, level, name)) {
                log::warn!("setsockopt: level {level} option {name} is not supported: ENOPROTOOPT");
            }
            Err(Errno::ENOPROTOOPT)
        }
        r => r.map(|()| 0),
    }
}

pub fn sys_getsockopt<P: Platform>(ctx: &mut Ctx<'_, P>, fd: Fd, level: i32, name: i32, value: UserPtr<u8>, len: UserPtr<u32>) -> Result<usize, Errno> {
    let d = sock_desc(ctx, fd)?;
    let room = ctx.read(len)? as i32;
    if room < 0 {
        return Err(Errno::EINVAL);
    }
    match sock(&d).getsockopt(level, name) {
        Ok(bytes) => {
            let n = bytes.len().min(room as usize);
            ctx.write_bytes(value.addr(), &bytes[..n])?;
            ctx.write(len, &(n as u32))?;
            Ok(0)
        }
        Err(Errno::ENOPROTOOPT) => {
            if ctx.process.warned.insert(opt_key(GETSOCKOPT, level, name)) {
                log::warn!("getsockopt: level {level} option {name} is not supported: ENOPROTOOPT");
            }
            Err(Errno::ENOPROTOOPT)
        }
        Err(e) => Err(e),
    }
}

/// A "warn once" key per (option level, option name).
fn opt_key(nr: u64, level: i32, name: i32) -> super::WarnKey {
    // Argument indexes above 5 never come from the dispatcher: no clash with its keys.
    super::WarnKey::BadArg(nr, 0x1000_0000 | ((level as u16 as usize) << 16) | name as u16 as usize)
}

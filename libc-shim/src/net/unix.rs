//! AF_UNIX sockets within the guest: stream sockets (socketpair, or bind/listen/connect/
//! accept by path or abstract name) and datagram/seqpacket socket pairs.
//!
//! A connection is two queues, one per direction, shared by its two ends. Each end keeps
//! one wait key for its whole life (so a poller that noted it once is never stale); a change
//! to the connection queues both ends' keys for notification.
//!
//! Names live in a per-process [`Namespace`], not in the filesystem: binding a path does not
//! create a socket file, and a name is free again once its socket is closed.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use spin::Mutex;

use super::addr::{AF_UNIX, SockAddr, UnixName};
use super::inet::socket_metadata;
use super::{Pending, RecvFlags, Received, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, SOL_SOCKET, Socket, Timeouts, common_getsockopt, common_setsockopt, int_bytes, so};
use crate::errno::Errno;
use crate::fd::wait::new_key;
use crate::fd::{File, Io, Readiness, WaitKey};
use crate::fs::Metadata;
use crate::platform::Platform;

/// Bytes (streams) or messages' bytes (datagrams) queued per direction before writers wait.
pub const UNIX_BUF: usize = 212_992;
/// Messages queued per direction for datagram sockets.
const MAX_MSGS: usize = 256;

/// Bound names: listeners by name.
#[derive(Default)]
pub struct Namespace {
    names: BTreeMap<UnixName, Weak<Listener>>,
}

/// A listening socket's queue of connections not yet accepted.
pub struct Listener {
    queue: Mutex<VecDeque<Arc<UnixSocket>>>,
    backlog: Mutex<usize>,
    key: WaitKey,
}

/// One connection: data readable by side `i` is in `bytes[i]`/`msgs[i]`.
struct Conn {
    bytes: [VecDeque<u8>; 2],
    msgs: [VecDeque<Vec<u8>>; 2],
    /// Bytes queued in `msgs[i]`.
    msg_bytes: [usize; 2],
    open: [bool; 2],
    /// Side `i` will send no more (shutdown SHUT_WR, or closed).
    shut_wr: [bool; 2],
    shut_rd: [bool; 2],
    keys: [WaitKey; 2],
    /// Each side's bound name.
    names: [UnixName; 2],
}

enum State {
    Fresh { name: Option<UnixName> },
    Listening { name: UnixName, listener: Arc<Listener> },
    Connected { conn: Arc<Mutex<Conn>>, side: usize },
}

/// An AF_UNIX socket file.
pub struct UnixSocket {
    ty: i32,
    key: WaitKey,
    ns: Arc<Mutex<Namespace>>,
    pending: Pending,
    state: Mutex<State>,
    timeouts: Mutex<Timeouts>,
    passcred: Mutex<bool>,
}

impl UnixSocket {
    pub fn new(ty: i32, ns: &Arc<Mutex<Namespace>>, pending: &Pending) -> Arc<UnixSocket> {
        Arc::new(Self::with_state(ty, ns, pending, new_key(), State::Fresh { name: None }))
    }

    fn with_state(ty: i32, ns: &Arc<Mutex<Namespace>>, pending: &Pending, key: WaitKey, state: State) -> UnixSocket {
        UnixSocket {
            ty,
            key,
            ns: ns.clone(),
            pending: pending.clone(),
            state: Mutex::new(state),
            timeouts: Mutex::new(Timeouts::default()),
            passcred: Mutex::new(false),
        }
    }

    /// socketpair: two connected sockets.
    pub fn pair(ty: i32, ns: &Arc<Mutex<Namespace>>, pending: &Pending) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
        let keys = [new_key(), new_key()];
        let conn = Arc::new(Mutex::new(Conn::new(keys, [UnixName::Unnamed, UnixName::Unnamed])));
        let a = Self::with_state(ty, ns, pending, keys[0], State::Connected { conn: conn.clone(), side: 0 });
        let b = Self::with_state(ty, ns, pending, keys[1], State::Connected { conn, side: 1 });
        (Arc::new(a), Arc::new(b))
    }

    fn messages(&self) -> bool {
        self.ty != SOCK_STREAM
    }

    /// Queues `keys` for notification of a change that may make `events` ready.
    fn wake(&self, keys: &[WaitKey], events: Readiness) {
        self.pending.lock().extend(keys.iter().map(|&k| (k, events)));
    }

    fn connection(&self) -> Option<(Arc<Mutex<Conn>>, usize)> {
        match &*self.state.lock() {
            State::Connected { conn, side } => Some((conn.clone(), *side)),
            _ => None,
        }
    }
}

impl Conn {
    fn new(keys: [WaitKey; 2], names: [UnixName; 2]) -> Conn {
        Conn {
            bytes: [VecDeque::new(), VecDeque::new()],
            msgs: [VecDeque::new(), VecDeque::new()],
            msg_bytes: [0, 0],
            open: [true, true],
            shut_wr: [false, false],
            shut_rd: [false, false],
            keys,
            names,
        }
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let state = core::mem::replace(&mut *self.state.lock(), State::Fresh { name: None });
        match state {
            State::Connected { conn, side } => {
                let keys = {
                    let mut c = conn.lock();
                    c.open[side] = false;
                    c.shut_wr[side] = true;
                    c.keys
                };
                self.wake(&keys, Readiness::all());
            }
            State::Listening { name, listener } => {
                let mut ns = self.ns.lock();
                if ns.names.get(&name).is_some_and(|w| w.as_ptr() == Arc::as_ptr(&listener)) {
                    ns.names.remove(&name);
                }
                drop(ns);
                // Connections never accepted are closed (their peers see end of file).
                let queued: Vec<_> = listener.queue.lock().drain(..).collect();
                drop(queued);
            }
            State::Fresh { .. } => {}
        }
    }
}

impl Socket for UnixSocket {
    fn sock_type(&self) -> i32 {
        self.ty
    }

    fn domain(&self) -> u16 {
        AF_UNIX
    }

    fn bind(&self, _platform: &dyn Platform, addr: &SockAddr) -> Result<(), Errno> {
        let SockAddr::Unix(name) = addr else { return Err(Errno::EINVAL) };
        if *name == UnixName::Unnamed {
            return Err(Errno::EINVAL);
        }
        let mut state = self.state.lock();
        match &mut *state {
            State::Fresh { name: n @ None } => {
                let ns = self.ns.lock();
                if ns.names.get(name).is_some_and(|w| w.strong_count() > 0) {
                    return Err(Errno::EADDRINUSE);
                }
                *n = Some(name.clone());
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    fn listen(&self, _platform: &dyn Platform, backlog: i32) -> Result<(), Errno> {
        if self.ty == SOCK_DGRAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let backlog = backlog.clamp(1, 4096) as usize;
        let mut state = self.state.lock();
        match &*state {
            State::Listening { listener, .. } => {
                *listener.backlog.lock() = backlog;
                Ok(())
            }
            State::Fresh { name: None } => Err(Errno::EINVAL),
            State::Fresh { name: Some(name) } => {
                let name = name.clone();
                let listener = Arc::new(Listener { queue: Mutex::new(VecDeque::new()), backlog: Mutex::new(backlog), key: self.key });
                let mut ns = self.ns.lock();
                if ns.names.get(&name).is_some_and(|w| w.strong_count() > 0) {
                    return Err(Errno::EADDRINUSE);
                }
                ns.names.insert(name.clone(), Arc::downgrade(&listener));
                *state = State::Listening { name, listener };
                Ok(())
            }
            State::Connected { .. } => Err(Errno::EINVAL),
        }
    }

    fn accept(&self, _platform: &dyn Platform) -> Result<(Arc<dyn File>, SockAddr), Errno> {
        let listener = match &*self.state.lock() {
            State::Listening { listener, .. } => listener.clone(),
            _ => return Err(Errno::EINVAL),
        };
        let s = listener.queue.lock().pop_front().ok_or(Errno::EAGAIN)?;
        let peer = s.peer_addr().unwrap_or(SockAddr::Unix(UnixName::Unnamed));
        Ok((s, peer))
    }

    fn connect(&self, _platform: &dyn Platform, addr: &SockAddr, resumed: bool) -> Result<(), Errno> {
        let SockAddr::Unix(name) = addr else { return Err(Errno::EINVAL) };
        let mut state = self.state.lock();
        let local = match &*state {
            State::Fresh { name } => name.clone().unwrap_or(UnixName::Unnamed),
            State::Connected { .. } if resumed => return Ok(()),
            State::Connected { .. } => return Err(Errno::EISCONN),
            State::Listening { .. } => return Err(Errno::EINVAL),
        };
        let listener = {
            let ns = self.ns.lock();
            match ns.names.get(name) {
                None if matches!(name, UnixName::Path(_)) => return Err(Errno::ENOENT),
                None => return Err(Errno::ECONNREFUSED),
                Some(w) => w.upgrade().ok_or(Errno::ECONNREFUSED)?,
            }
        };
        if listener.queue.lock().len() >= *listener.backlog.lock() * 2 + 16 {
            return Err(Errno::EAGAIN);
        }
        let keys = [self.key, new_key()];
        let conn = Arc::new(Mutex::new(Conn::new(keys, [local, name.clone()])));
        let server = UnixSocket::with_state(self.ty, &self.ns, &self.pending, keys[1], State::Connected { conn: conn.clone(), side: 1 });
        listener.queue.lock().push_back(Arc::new(server));
        *state = State::Connected { conn, side: 0 };
        drop(state);
        self.wake(&[listener.key], Readiness::READABLE);
        self.wake(&[self.key], Readiness::WRITABLE);
        Ok(())
    }

    fn send(&self, _platform: &dyn Platform, data: &[u8], dest: Option<&SockAddr>) -> Result<usize, Errno> {
        let Some((conn, side)) = self.connection() else {
            return Err(if dest.is_some() && self.ty == SOCK_DGRAM { Errno::EOPNOTSUPP } else { Errno::ENOTCONN });
        };
        if dest.is_some() && self.ty != SOCK_STREAM {
            return Err(Errno::EISCONN);
        }
        let peer = 1 - side;
        let mut c = conn.lock();
        if c.shut_wr[side] || !c.open[peer] || c.shut_rd[peer] {
            return Err(Errno::EPIPE);
        }
        let n = if self.messages() {
            if data.len() > UNIX_BUF {
                return Err(Errno::EMSGSIZE);
            }
            if c.msgs[peer].len() >= MAX_MSGS || c.msg_bytes[peer] + data.len() > UNIX_BUF {
                return Err(Errno::EAGAIN);
            }
            c.msgs[peer].push_back(data.to_vec());
            c.msg_bytes[peer] += data.len();
            data.len()
        } else {
            let space = UNIX_BUF.saturating_sub(c.bytes[peer].len());
            if space == 0 {
                return Err(Errno::EAGAIN);
            }
            if data.is_empty() {
                return Ok(0);
            }
            let n = data.len().min(space);
            c.bytes[peer].extend(&data[..n]);
            n
        };
        let key = c.keys[peer];
        drop(c);
        self.wake(&[key], Readiness::READABLE);
        Ok(n)
    }

    fn recv(&self, _platform: &dyn Platform, buf: &mut [u8], flags: RecvFlags) -> Result<Received, Errno> {
        let Some((conn, side)) = self.connection() else {
            return Err(if self.ty == SOCK_STREAM { Errno::EINVAL } else { Errno::ENOTCONN });
        };
        let peer = 1 - side;
        let mut c = conn.lock();
        let eof = c.shut_wr[peer] || c.shut_rd[side];
        let from = Some(SockAddr::Unix(c.names[peer].clone()));
        let (n, full) = if self.messages() {
            let Some(m) = c.msgs[side].front() else {
                return if eof { Ok(Received { len: 0, full_len: 0, from }) } else { Err(Errno::EAGAIN) };
            };
            let n = m.len().min(buf.len());
            buf[..n].copy_from_slice(&m[..n]);
            let full = m.len();
            if !flags.peek {
                c.msgs[side].pop_front();
                c.msg_bytes[side] -= full;
            }
            (n, full)
        } else {
            let q = c.bytes[side].len();
            if q == 0 || (flags.waitall && !eof && q < buf.len().min(UNIX_BUF)) {
                if q == 0 && eof {
                    return Ok(Received { len: 0, full_len: 0, from: None });
                }
                if !eof {
                    return Err(Errno::EAGAIN);
                }
            }
            let n = q.min(buf.len());
            for (d, s) in buf.iter_mut().zip(c.bytes[side].iter()) {
                *d = *s;
            }
            if !flags.peek {
                c.bytes[side].drain(..n);
            }
            (n, n)
        };
        let key = c.keys[peer];
        drop(c);
        if !flags.peek {
            // Room for the peer's writes.
            self.wake(&[key], Readiness::WRITABLE);
        }
        Ok(Received { len: n, full_len: full, from: if self.ty == SOCK_STREAM { None } else { from } })
    }

    fn shutdown(&self, _platform: &dyn Platform, how: i32) -> Result<(), Errno> {
        if !(0..=2).contains(&how) {
            return Err(Errno::EINVAL);
        }
        let Some((conn, side)) = self.connection() else { return Err(Errno::ENOTCONN) };
        let mut c = conn.lock();
        if how != 1 {
            c.shut_rd[side] = true;
        }
        if how != 0 {
            c.shut_wr[side] = true;
        }
        let keys = c.keys;
        drop(c);
        self.wake(&keys, Readiness::all());
        Ok(())
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        Ok(SockAddr::Unix(match &*self.state.lock() {
            State::Fresh { name } => name.clone().unwrap_or(UnixName::Unnamed),
            State::Listening { name, .. } => name.clone(),
            State::Connected { conn, side } => conn.lock().names[*side].clone(),
        }))
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        match &*self.state.lock() {
            State::Connected { conn, side } => Ok(SockAddr::Unix(conn.lock().names[1 - side].clone())),
            _ => Err(Errno::ENOTCONN),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        if let Some(r) = common_setsockopt(&self.timeouts, level, name, value) {
            return r;
        }
        match (level, name) {
            (SOL_SOCKET, so::PASSCRED) => {
                *self.passcred.lock() = super::opt_int(value)? != 0;
                Ok(())
            }
            (SOL_SOCKET, so::SNDBUF | so::RCVBUF | so::REUSEADDR | so::KEEPALIVE) => super::opt_int(value).map(|_| ()),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if let Some(r) = common_getsockopt(self, level, name, 0) {
            return r;
        }
        match (level, name) {
            (SOL_SOCKET, so::ERROR) => Ok(int_bytes(0)),
            (SOL_SOCKET, so::SNDBUF | so::RCVBUF) => Ok(int_bytes(UNIX_BUF as i32)),
            (SOL_SOCKET, so::PASSCRED) => Ok(int_bytes(i32::from(*self.passcred.lock()))),
            (SOL_SOCKET, so::ACCEPTCONN) => Ok(int_bytes(i32::from(matches!(&*self.state.lock(), State::Listening { .. })))),
            (SOL_SOCKET, so::PEERCRED) => {
                // struct ucred { pid, uid, gid }: the one process, root.
                let mut v = int_bytes(crate::process::Process::PID);
                v.extend_from_slice(&int_bytes(0));
                v.extend_from_slice(&int_bytes(0));
                Ok(v)
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn timeouts(&self) -> Timeouts {
        *self.timeouts.lock()
    }
}

impl File for UnixSocket {
    fn read(&self, io: &dyn Io, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.recv(io.platform(), buf, RecvFlags::default()).map(|r| r.len)
    }

    fn write(&self, io: &dyn Io, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.send(io.platform(), data, None)
    }

    fn stat(&self, io: &dyn Io) -> Result<Metadata, Errno> {
        Ok(socket_metadata(self.key, io.platform()))
    }

    fn poll(&self) -> Readiness {
        match &*self.state.lock() {
            State::Fresh { .. } => Readiness::WRITABLE | Readiness::HANGUP,
            State::Listening { listener, .. } => {
                if listener.queue.lock().is_empty() {
                    Readiness::empty()
                } else {
                    Readiness::READABLE
                }
            }
            State::Connected { conn, side } => {
                let c = conn.lock();
                let (me, peer) = (*side, 1 - *side);
                let mut r = Readiness::empty();
                let has_data = if self.ty == SOCK_STREAM { !c.bytes[me].is_empty() } else { !c.msgs[me].is_empty() };
                let eof = c.shut_wr[peer] || c.shut_rd[me];
                if has_data || eof {
                    r |= Readiness::READABLE;
                }
                if eof {
                    r |= Readiness::RDHUP;
                }
                let room = if self.ty == SOCK_STREAM {
                    c.bytes[peer].len() < UNIX_BUF
                } else {
                    c.msgs[peer].len() < MAX_MSGS && c.msg_bytes[peer] < UNIX_BUF
                };
                if room || !c.open[peer] || c.shut_wr[me] {
                    r |= Readiness::WRITABLE;
                }
                if (c.shut_wr[me] && eof) || !c.open[peer] {
                    r |= Readiness::HANGUP;
                }
                r
            }
        }
    }

    fn wait_key(&self) -> Option<WaitKey> {
        Some(self.key)
    }

    fn readable_bytes(&self, _io: &dyn Io) -> Result<usize, Errno> {
        match self.connection() {
            Some((conn, side)) => {
                let c = conn.lock();
                Ok(if self.ty == SOCK_STREAM { c.bytes[side].len() } else { c.msgs[side].front().map_or(0, Vec::len) })
            }
            None => Ok(0),
        }
    }

    fn describe(&self) -> String {
        alloc::format!("socket:[{}]", self.key)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// Whether `ty` is a type Unix sockets support.
pub fn supported_type(ty: i32) -> bool {
    matches!(ty, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET)
}

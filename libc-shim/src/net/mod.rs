//! Networking: sockets as [`File`]s over smoltcp (inet) and in-memory queues (Unix).
//!
//! Layers:
//! * [`stack`]: the smoltcp interfaces and sockets, ports, polling and change notifications.
//!   It knows nothing of app memory or threads.
//! * [`inet`] and [`unix`]: the socket files. Like every [`File`] they never block: an
//!   operation that would wait is `EAGAIN`, and the syscall layer (`syscall/socket.rs`)
//!   parks the thread on the socket's wait key. Whatever changes a socket queues its key in
//!   [`NetState::pending`]; the process notifies those keys before the kernel next asks
//!   which threads woke.
//! * [`addr`]: socket addresses in app memory.
//! * [`device`]: the platform's Ethernet device for smoltcp.

pub mod addr;
pub mod device;
pub mod inet;
pub mod stack;
pub mod unix;
mod hooks;

use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;

pub use addr::{Family, SockAddr};
pub use stack::{Net, NetConfig};

use crate::errno::Errno;
use crate::fd::{File, Readiness, WaitKey};
use crate::platform::Platform;

/// The process's networking state. The TCP/IP stack starts at the first inet socket (or
/// when the kernel polls with a network device present), seeded from the platform's random
/// numbers.
pub struct NetState {
    stack: Option<Arc<Mutex<Net>>>,
    config: NetConfig,
    pub unix: Arc<Mutex<unix::Namespace>>,
    /// Wait keys whose sockets changed, to be notified.
    pub pending: Pending,
}

impl Default for NetState {
    fn default() -> Self {
        NetState {
            stack: None,
            config: NetConfig::default(),
            unix: Arc::new(Mutex::new(unix::Namespace::default())),
            pending: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl NetState {
    /// The stack, started on first use.
    pub fn stack(&mut self, platform: &dyn Platform) -> &Arc<Mutex<Net>> {
        let (pending, config) = (&self.pending, self.config);
        self.stack.get_or_insert_with(|| {
            let mut seed = [0u8; 8];
            platform.fill_random(&mut seed);
            let mut net = Net::new(pending.clone(), u64::from_le_bytes(seed));
            net.configure(config);
            net.set_memory(platform.memory_stats().0);
            Arc::new(Mutex::new(net))
        })
    }

    /// Sets the static configuration (takes effect when the stack starts).
    pub fn set_config(&mut self, config: NetConfig) {
        self.config = config;
        if let Some(s) = &self.stack {
            s.lock().configure(config);
        }
    }

    /// The stack if it has started.
    pub fn started(&self) -> Option<&Arc<Mutex<Net>>> {
        self.stack.as_ref()
    }

    /// Takes the keys to notify, with the readiness each change may bring.
    pub fn take_pending(&self) -> Vec<(WaitKey, Readiness)> {
        core::mem::take(&mut *self.pending.lock())
    }
}

/// Wait keys of sockets that changed, each with what the change may have made ready
/// (`READABLE`: data, a connection, end of stream; `WRITABLE`: room to send), for
/// `Process::notify_for`.
pub type Pending = Arc<Mutex<Vec<(WaitKey, Readiness)>>>;

/// `SOCK_*` types.
pub const SOCK_STREAM: i32 = 1;
pub const SOCK_DGRAM: i32 = 2;
pub const SOCK_SEQPACKET: i32 = 5;

/// Socket option levels.
pub const SOL_SOCKET: i32 = 1;
pub const IPPROTO_IP: i32 = 0;
pub const IPPROTO_TCP: i32 = 6;
pub const IPPROTO_UDP: i32 = 17;
pub const IPPROTO_IPV6: i32 = 41;

/// `SOL_SOCKET` options.
pub mod so {
    pub const DEBUG: i32 = 1;
    pub const REUSEADDR: i32 = 2;
    pub const TYPE: i32 = 3;
    pub const ERROR: i32 = 4;
    pub const DONTROUTE: i32 = 5;
    pub const BROADCAST: i32 = 6;
    pub const SNDBUF: i32 = 7;
    pub const RCVBUF: i32 = 8;
    pub const KEEPALIVE: i32 = 9;
    pub const OOBINLINE: i32 = 10;
    pub const PRIORITY: i32 = 12;
    pub const LINGER: i32 = 13;
    pub const REUSEPORT: i32 = 15;
    pub const PASSCRED: i32 = 16;
    pub const PEERCRED: i32 = 17;
    pub const RCVLOWAT: i32 = 18;
    pub const SNDLOWAT: i32 = 19;
    pub const RCVTIMEO: i32 = 20;
    pub const SNDTIMEO: i32 = 21;
    pub const ACCEPTCONN: i32 = 30;
    pub const SNDBUFFORCE: i32 = 32;
    pub const RCVBUFFORCE: i32 = 33;
    pub const PROTOCOL: i32 = 38;
    pub const DOMAIN: i32 = 39;
    pub const RCVTIMEO_NEW: i32 = 66;
    pub const SNDTIMEO_NEW: i32 = 67;
}

/// `IPPROTO_TCP` options.
pub mod tcpo {
    pub const NODELAY: i32 = 1;
    pub const MAXSEG: i32 = 2;
    pub const CORK: i32 = 3;
    pub const KEEPIDLE: i32 = 4;
    pub const KEEPINTVL: i32 = 5;
    pub const KEEPCNT: i32 = 6;
    pub const SYNCNT: i32 = 7;
    pub const LINGER2: i32 = 8;
    pub const DEFER_ACCEPT: i32 = 9;
    pub const WINDOW_CLAMP: i32 = 10;
    pub const QUICKACK: i32 = 12;
    pub const USER_TIMEOUT: i32 = 18;
    pub const FASTOPEN: i32 = 23;
    pub const NOTSENT_LOWAT: i32 = 25;
}

/// `IPPROTO_IP` / `IPPROTO_IPV6` options.
pub mod ipo {
    pub const IP_TOS: i32 = 1;
    pub const IP_TTL: i32 = 2;
    pub const IP_RECVERR: i32 = 11;
    pub const IP_MTU_DISCOVER: i32 = 10;
    pub const IPV6_UNICAST_HOPS: i32 = 16;
    pub const IPV6_V6ONLY: i32 = 26;
    pub const IPV6_RECVERR: i32 = 25;
    pub const IPV6_TCLASS: i32 = 67;
}

/// Flags of recv* that change what a socket returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecvFlags {
    pub peek: bool,
    pub waitall: bool,
    /// MSG_TRUNC: return the datagram's full length.
    pub trunc: bool,
}

/// What a receive produced.
#[derive(Debug, Clone)]
pub struct Received {
    /// Bytes copied into the buffer.
    pub len: usize,
    /// The datagram's whole length (equals `len` for streams).
    pub full_len: usize,
    /// Where it came from (datagram sockets).
    pub from: Option<SockAddr>,
}

/// Send and receive timeouts (SO_SNDTIMEO, SO_RCVTIMEO), in ns; `None`: wait forever.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    pub recv: Option<u64>,
    pub send: Option<u64>,
}

/// What the socket syscalls need of a socket file, beyond [`File`].
pub trait Socket: Send + Sync {
    /// `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_SEQPACKET`.
    fn sock_type(&self) -> i32;
    /// `AF_*`.
    fn domain(&self) -> u16;
    fn bind(&self, platform: &dyn Platform, addr: &SockAddr) -> Result<(), Errno>;
    fn listen(&self, platform: &dyn Platform, backlog: i32) -> Result<(), Errno>;
    /// A connection from the backlog, with its peer's address; `EAGAIN` when there is none.
    fn accept(&self, platform: &dyn Platform) -> Result<(Arc<dyn File>, SockAddr), Errno>;
    /// First call (`resumed` false) starts the connection: 0 when done, `EINPROGRESS` while
    /// it goes on. A re-run (`resumed` true) reports: 0, `EAGAIN` (still going) or the error.
    fn connect(&self, platform: &dyn Platform, addr: &SockAddr, resumed: bool) -> Result<(), Errno>;
    /// Sends `data` (to `dest` for datagram sockets); `EAGAIN` when it would block.
    fn send(&self, platform: &dyn Platform, data: &[u8], dest: Option<&SockAddr>) -> Result<usize, Errno>;
    fn recv(&self, platform: &dyn Platform, buf: &mut [u8], flags: RecvFlags) -> Result<Received, Errno>;
    /// [`Socket::recv`] of at most `max` bytes into a buffer of the socket's choosing (a
    /// stream socket allocates only what it has, not `max` zeroed bytes for a short message
    /// or an `EAGAIN`).
    fn recv_vec(&self, platform: &dyn Platform, max: usize, flags: RecvFlags) -> Result<(Vec<u8>, Received), Errno> {
        let mut buf = alloc::vec![0u8; max];
        let r = self.recv(platform, &mut buf, flags)?;
        buf.truncate(r.len);
        Ok((buf, r))
    }
    /// `how`: `SHUT_RD` 0, `SHUT_WR` 1, `SHUT_RDWR` 2.
    fn shutdown(&self, platform: &dyn Platform, how: i32) -> Result<(), Errno>;
    fn local_addr(&self) -> Result<SockAddr, Errno>;
    fn peer_addr(&self) -> Result<SockAddr, Errno>;
    /// Sets an option the socket type knows; `ENOPROTOOPT` for others.
    fn setsockopt(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno>;
    /// Reads an option the socket type knows (its bytes); `ENOPROTOOPT` for others.
    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno>;
    fn timeouts(&self) -> Timeouts;
}

/// The socket behind a file, if it is one.
pub fn socket_of(file: &dyn File) -> Option<&dyn Socket> {
    let any = file.as_any();
    if let Some(s) = any.downcast_ref::<inet::InetSocket>() {
        return Some(s);
    }
    if let Some(s) = any.downcast_ref::<unix::UnixSocket>() {
        return Some(s);
    }
    None
}

/// Reads a C `int` option value (Linux accepts shorter values for some; we need 4 bytes).
pub fn opt_int(value: &[u8]) -> Result<i32, Errno> {
    if value.len() < 4 {
        return Err(Errno::EINVAL);
    }
    Ok(i32::from_le_bytes([value[0], value[1], value[2], value[3]]))
}

/// An `int` option's bytes.
pub fn int_bytes(v: i32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// Decodes a `struct timeval` timeout: `None` for zero (no timeout).
pub fn opt_timeval(value: &[u8]) -> Result<Option<u64>, Errno> {
    if value.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let sec = i64::from_le_bytes(value[0..8].try_into().expect("8 bytes"));
    let usec = i64::from_le_bytes(value[8..16].try_into().expect("8 bytes"));
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::EDOM);
    }
    if sec < 0 {
        // Linux treats a negative timeout as zero wait... for SO_RCVTIMEO it is "no timeout".
        return Ok(None);
    }
    let ns = (sec as u64).saturating_mul(1_000_000_000).saturating_add(usec as u64 * 1000);
    Ok((ns > 0).then_some(ns))
}

/// A `struct timeval`'s bytes.
pub fn timeval_bytes(ns: Option<u64>) -> Vec<u8> {
    let ns = ns.unwrap_or(0);
    let mut v = ((ns / 1_000_000_000) as i64).to_le_bytes().to_vec();
    v.extend_from_slice(&(((ns % 1_000_000_000) / 1000) as i64).to_le_bytes());
    v
}

/// Options every socket handles the same way: timeouts, type, domain. `None` when the
/// option is not one of them.
pub(crate) fn common_setsockopt(t: &Mutex<Timeouts>, level: i32, name: i32, value: &[u8]) -> Option<Result<(), Errno>> {
    if level != SOL_SOCKET {
        return None;
    }
    match name {
        so::RCVTIMEO | so::RCVTIMEO_NEW => Some(opt_timeval(value).map(|v| t.lock().recv = v)),
        so::SNDTIMEO | so::SNDTIMEO_NEW => Some(opt_timeval(value).map(|v| t.lock().send = v)),
        so::TYPE | so::DOMAIN | so::PROTOCOL | so::ACCEPTCONN | so::PEERCRED => Some(Err(Errno::ENOPROTOOPT)),
        _ => None,
    }
}

pub(crate) fn common_getsockopt(s: &dyn Socket, level: i32, name: i32, protocol: i32) -> Option<Result<Vec<u8>, Errno>> {
    if level != SOL_SOCKET {
        return None;
    }
    Some(Ok(match name {
        so::RCVTIMEO | so::RCVTIMEO_NEW => timeval_bytes(s.timeouts().recv),
        so::SNDTIMEO | so::SNDTIMEO_NEW => timeval_bytes(s.timeouts().send),
        so::TYPE => int_bytes(s.sock_type()),
        so::DOMAIN => int_bytes(i32::from(s.domain())),
        so::PROTOCOL => int_bytes(protocol),
        _ => return None,
    }))
}

//! AF_INET and AF_INET6 sockets (TCP and UDP): a handle on a socket in the [`Net`] stack.
//!
//! Every operation polls the stack before (to take in what arrived, if anything did) and
//! after (to send what it queued: on loopback the peer has it when the call returns). Those
//! polls cost nothing when there is nothing to move ([`Net::poll`]).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{IpAddress, IpEndpoint};
use spin::Mutex;

use super::addr::{AF_INET, AF_INET6, Family, SockAddr, to_ip};
use super::stack::{Net, Proto, SockId, TCP_BUF_MAX};
use super::{
    IPPROTO_IP, IPPROTO_IPV6, IPPROTO_TCP, IPPROTO_UDP, RecvFlags, Received, SOCK_DGRAM, SOCK_STREAM, SOL_SOCKET, Socket, Timeouts,
    common_getsockopt, common_setsockopt, int_bytes, ipo, opt_int, so, tcpo,
};
use crate::errno::Errno;
use crate::fd::wait::new_key;
use crate::fd::{File, Io, Readiness, WaitKey};
use crate::fs::{FileType, Metadata, Timestamp};
use crate::platform::Platform;

/// An inet socket file.
pub struct InetSocket {
    net: Arc<Mutex<Net>>,
    id: SockId,
    key: WaitKey,
    family: Family,
    proto: Proto,
    timeouts: Mutex<Timeouts>,
    /// Options accepted and reported back without changing behaviour (TCP_CORK, IP_TOS...).
    stored: Mutex<BTreeMap<(i32, i32), i32>>,
}

impl InetSocket {
    /// A new unbound socket.
    pub fn new(net: &Arc<Mutex<Net>>, family: Family, proto: Proto) -> Arc<InetSocket> {
        let key = new_key();
        let id = net.lock().create(family, proto, key);
        Arc::new(Self::wrap(net, id, key, family, proto))
    }

    fn wrap(net: &Arc<Mutex<Net>>, id: SockId, key: WaitKey, family: Family, proto: Proto) -> InetSocket {
        InetSocket {
            net: net.clone(),
            id,
            key,
            family,
            proto,
            timeouts: Mutex::new(Timeouts::default()),
            stored: Mutex::new(BTreeMap::new()),
        }
    }

    /// Runs `f` on the stack between two polls. The first takes in frames that arrived since
    /// the kernel's last poll; the second sends what `f` queued. Neither re-examines every
    /// socket unless packets came in; this socket is brought up to date by `touch`.
    fn with_net<R>(&self, platform: &dyn Platform, f: impl FnOnce(&mut Net) -> R) -> R {
        let now = platform.monotonic_ns();
        let mut net = self.net.lock();
        net.poll(Some(platform), now);
        let r = f(&mut net);
        net.poll(Some(platform), now);
        net.touch(self.id);
        r
    }

    /// An address the app gave, checked against this socket's family; (address or `None`
    /// for any, port).
    fn endpoint(&self, addr: &SockAddr) -> Result<(Option<IpAddress>, u16), Errno> {
        match addr {
            SockAddr::Inet { family, addr, port } => {
                if *family != self.family {
                    return Err(if self.family == Family::Inet { Errno::EAFNOSUPPORT } else { Errno::EINVAL });
                }
                Ok((to_ip(*addr), *port))
            }
            SockAddr::Unspec => Err(Errno::EAFNOSUPPORT),
            SockAddr::Unix(_) => Err(Errno::EAFNOSUPPORT),
        }
    }

    fn unspecified(&self) -> IpAddress {
        match self.family {
            Family::Inet => IpAddress::Ipv4(Ipv4Addr::UNSPECIFIED),
            Family::Inet6 => IpAddress::Ipv6(Ipv6Addr::UNSPECIFIED),
        }
    }

    /// A destination: connecting to "any" means this host (Linux).
    fn destination(&self, addr: &SockAddr) -> Result<IpEndpoint, Errno> {
        let (ip, port) = self.endpoint(addr)?;
        let ip = ip.unwrap_or(match self.family {
            Family::Inet => IpAddress::Ipv4(Ipv4Addr::LOCALHOST),
            Family::Inet6 => IpAddress::Ipv6(Ipv6Addr::LOCALHOST),
        });
        if self.family == Family::Inet6 && ip.version() == smoltcp::wire::IpVersion::Ipv4 && self.net.lock().opts(self.id).v6only {
            return Err(Errno::ENETUNREACH);
        }
        Ok(IpEndpoint::new(ip, port))
    }

    fn protocol(&self) -> i32 {
        match self.proto {
            Proto::Tcp => IPPROTO_TCP,
            Proto::Udp => IPPROTO_UDP,
        }
    }
}

impl Drop for InetSocket {
    fn drop(&mut self) {
        self.net.lock().close(self.id);
    }
}

impl Socket for InetSocket {
    fn sock_type(&self) -> i32 {
        match self.proto {
            Proto::Tcp => SOCK_STREAM,
            Proto::Udp => SOCK_DGRAM,
        }
    }

    fn domain(&self) -> u16 {
        match self.family {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
    }

    fn bind(&self, platform: &dyn Platform, addr: &SockAddr) -> Result<(), Errno> {
        let (ip, port) = self.endpoint(addr)?;
        self.with_net(platform, |n| n.bind(self.id, ip, port))
    }

    fn listen(&self, platform: &dyn Platform, backlog: i32) -> Result<(), Errno> {
        if self.proto != Proto::Tcp {
            return Err(Errno::EOPNOTSUPP);
        }
        let local = self.with_net(platform, |n| {
            n.listen(self.id, backlog)?;
            n.local_endpoint(self.id)
        })?;
        if !local.addr.is_some_and(|a| match a {
            smoltcp::wire::IpAddress::Ipv4(a) => a.is_loopback(),
            smoltcp::wire::IpAddress::Ipv6(a) => a.is_loopback(),
        }) {
            platform.announce_listening(local.port);
        }
        Ok(())
    }

    fn accept(&self, platform: &dyn Platform) -> Result<(Arc<dyn File>, SockAddr), Errno> {
        if self.proto != Proto::Tcp {
            return Err(Errno::EOPNOTSUPP);
        }
        let key = new_key();
        let (id, peer) = self.with_net(platform, |n| n.accept(self.id, key))?;
        let s = InetSocket::wrap(&self.net, id, key, self.family, self.proto);
        *s.timeouts.lock() = *self.timeouts.lock();
        *s.stored.lock() = self.stored.lock().clone();
        Ok((Arc::new(s), SockAddr::inet(self.family, peer)))
    }

    fn connect(&self, platform: &dyn Platform, addr: &SockAddr, resumed: bool) -> Result<(), Errno> {
        match self.proto {
            Proto::Udp => {
                let dest = match addr {
                    SockAddr::Unspec => None,
                    a => Some(self.destination(a)?),
                };
                self.with_net(platform, |n| n.udp_connect(self.id, dest))
            }
            Proto::Tcp => {
                let dest = self.destination(addr)?;
                let now = platform.monotonic_ns();
                if resumed {
                    return self.with_net(platform, |n| n.connect_outcome(self.id));
                }
                self.with_net(platform, |n| n.connect(self.id, dest, false, now))
            }
        }
    }

    fn send(&self, platform: &dyn Platform, data: &[u8], dest: Option<&SockAddr>) -> Result<usize, Errno> {
        match self.proto {
            // Linux ignores the address on a connected stream socket.
            Proto::Tcp => self.with_net(platform, |n| n.tcp_send(self.id, data)),
            Proto::Udp => {
                let dest = dest.map(|d| self.destination(d)).transpose()?;
                self.with_net(platform, |n| n.udp_send(self.id, data, dest))
            }
        }
    }

    fn recv(&self, platform: &dyn Platform, buf: &mut [u8], flags: RecvFlags) -> Result<Received, Errno> {
        match self.proto {
            Proto::Tcp => {
                let n = self.with_net(platform, |n| n.tcp_recv(self.id, buf, flags.peek, flags.waitall))?;
                Ok(Received { len: n, full_len: n, from: None })
            }
            Proto::Udp => {
                let (n, full, from) = self.with_net(platform, |n| n.udp_recv(self.id, buf, flags.peek))?;
                Ok(Received { len: n, full_len: full, from: Some(SockAddr::inet(self.family, from)) })
            }
        }
    }

    fn recv_vec(&self, platform: &dyn Platform, max: usize, flags: RecvFlags) -> Result<(Vec<u8>, Received), Errno> {
        if self.proto != Proto::Tcp {
            let mut buf = alloc::vec![0u8; max];
            let r = self.recv(platform, &mut buf, flags)?;
            buf.truncate(r.len);
            return Ok((buf, r));
        }
        let buf = self.with_net(platform, |n| n.tcp_recv_vec(self.id, max, flags.peek, flags.waitall))?;
        let len = buf.len();
        Ok((buf, Received { len, full_len: len, from: None }))
    }

    fn shutdown(&self, platform: &dyn Platform, how: i32) -> Result<(), Errno> {
        let (rd, wr) = match how {
            0 => (true, false),
            1 => (false, true),
            2 => (true, true),
            _ => return Err(Errno::EINVAL),
        };
        self.with_net(platform, |n| n.shutdown(self.id, rd, wr))
    }

    fn local_addr(&self) -> Result<SockAddr, Errno> {
        let ep = self.net.lock().local_endpoint(self.id)?;
        Ok(SockAddr::inet_listen(self.family, ep))
    }

    fn peer_addr(&self) -> Result<SockAddr, Errno> {
        let ep = self.net.lock().peer_endpoint(self.id)?;
        Ok(SockAddr::inet(self.family, ep))
    }

    fn setsockopt(&self, level: i32, name: i32, value: &[u8]) -> Result<(), Errno> {
        if let Some(r) = common_setsockopt(&self.timeouts, level, name, value) {
            return r;
        }
        let v = opt_int(value)?;
        let on = v != 0;
        let mut net = self.net.lock();
        match (level, name) {
            (SOL_SOCKET, so::REUSEADDR) => net.set_opts(self.id, |o| o.reuseaddr = on),
            (SOL_SOCKET, so::REUSEPORT) => net.set_opts(self.id, |o| o.reuseport = on),
            (SOL_SOCKET, so::KEEPALIVE) => net.set_opts(self.id, |o| o.keepalive = on),
            (SOL_SOCKET, so::RCVBUF | so::RCVBUFFORCE) => {
                // Linux doubles the value (bookkeeping overhead) and reports the double.
                let size = (v.max(0) as usize).saturating_mul(2).min(TCP_BUF_MAX);
                net.set_opts(self.id, |o| o.rcvbuf = Some(size))
            }
            (SOL_SOCKET, so::SNDBUF | so::SNDBUFFORCE) => {
                let size = (v.max(0) as usize).saturating_mul(2).min(TCP_BUF_MAX);
                net.set_opts(self.id, |o| o.sndbuf = Some(size))
            }
            (SOL_SOCKET, so::LINGER) => {
                if value.len() < 8 {
                    return Err(Errno::EINVAL);
                }
                let linger = opt_int(&value[4..8])?;
                net.set_opts(self.id, |o| o.linger = on.then_some(linger.max(0) as u32))
            }
            (SOL_SOCKET, so::BROADCAST | so::DONTROUTE | so::OOBINLINE | so::PRIORITY | so::RCVLOWAT | so::SNDLOWAT | so::DEBUG | so::PASSCRED) => {
                self.stored.lock().insert((level, name), v);
                Ok(())
            }
            (IPPROTO_TCP, _) if self.proto != Proto::Tcp => Err(Errno::ENOPROTOOPT),
            (IPPROTO_TCP, tcpo::NODELAY) => net.set_opts(self.id, |o| o.nodelay = on),
            (IPPROTO_TCP, tcpo::KEEPIDLE) if v >= 1 => net.set_opts(self.id, |o| o.keepidle_s = v as u32),
            (IPPROTO_TCP, tcpo::KEEPINTVL) if v >= 1 => net.set_opts(self.id, |o| o.keepintvl_s = v as u32),
            (IPPROTO_TCP, tcpo::KEEPCNT) if v >= 1 => net.set_opts(self.id, |o| o.keepcnt = v as u32),
            (IPPROTO_TCP, tcpo::KEEPIDLE | tcpo::KEEPINTVL | tcpo::KEEPCNT) => Err(Errno::EINVAL),
            (IPPROTO_TCP, tcpo::CORK | tcpo::MAXSEG | tcpo::SYNCNT | tcpo::LINGER2 | tcpo::DEFER_ACCEPT | tcpo::WINDOW_CLAMP | tcpo::QUICKACK | tcpo::USER_TIMEOUT | tcpo::FASTOPEN | tcpo::NOTSENT_LOWAT) => {
                // Accepted as hints: smoltcp sends what it has (TCP_CORK), picks its own MSS.
                self.stored.lock().insert((level, name), v);
                Ok(())
            }
            (IPPROTO_IP, ipo::IP_TOS | ipo::IP_TTL | ipo::IP_RECVERR | ipo::IP_MTU_DISCOVER) if self.family == Family::Inet || level == IPPROTO_IP => {
                self.stored.lock().insert((level, name), v);
                Ok(())
            }
            (IPPROTO_IPV6, ipo::IPV6_V6ONLY) if self.family == Family::Inet6 => {
                if net.local_endpoint(self.id)?.port != 0 {
                    return Err(Errno::EINVAL);
                }
                net.set_opts(self.id, |o| o.v6only = on)
            }
            (IPPROTO_IPV6, ipo::IPV6_TCLASS | ipo::IPV6_UNICAST_HOPS | ipo::IPV6_RECVERR) if self.family == Family::Inet6 => {
                self.stored.lock().insert((level, name), v);
                Ok(())
            }
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if let Some(r) = common_getsockopt(self, level, name, self.protocol()) {
            return r;
        }
        let mut net = self.net.lock();
        let o = net.opts(self.id);
        let b = |x: bool| int_bytes(i32::from(x));
        Ok(match (level, name) {
            (SOL_SOCKET, so::ERROR) => int_bytes(net.take_error(self.id)?.map_or(0, |e| e.0)),
            (SOL_SOCKET, so::REUSEADDR) => b(o.reuseaddr),
            (SOL_SOCKET, so::REUSEPORT) => b(o.reuseport),
            (SOL_SOCKET, so::KEEPALIVE) => b(o.keepalive),
            (SOL_SOCKET, so::ACCEPTCONN) => b(net.is_listening(self.id)),
            (SOL_SOCKET, so::RCVBUF) => int_bytes(net.buffer_sizes(self.id).0 as i32),
            (SOL_SOCKET, so::SNDBUF) => int_bytes(net.buffer_sizes(self.id).1 as i32),
            (SOL_SOCKET, so::LINGER) => {
                let mut v = int_bytes(i32::from(o.linger.is_some()));
                v.extend_from_slice(&int_bytes(o.linger.unwrap_or(0) as i32));
                v
            }
            (IPPROTO_TCP, _) if self.proto != Proto::Tcp => return Err(Errno::ENOPROTOOPT),
            (IPPROTO_TCP, tcpo::NODELAY) => b(o.nodelay),
            (IPPROTO_TCP, tcpo::KEEPIDLE) => int_bytes(o.keepidle_s as i32),
            (IPPROTO_TCP, tcpo::KEEPINTVL) => int_bytes(o.keepintvl_s as i32),
            (IPPROTO_TCP, tcpo::KEEPCNT) => int_bytes(o.keepcnt as i32),
            (IPPROTO_TCP, tcpo::MAXSEG) => int_bytes(*self.stored.lock().get(&(level, name)).unwrap_or(&1460)),
            (IPPROTO_IPV6, ipo::IPV6_V6ONLY) if self.family == Family::Inet6 => b(o.v6only),
            (IPPROTO_IP, ipo::IP_TTL) => int_bytes(*self.stored.lock().get(&(level, name)).unwrap_or(&64)),
            _ => match self.stored.lock().get(&(level, name)) {
                Some(&v) => int_bytes(v),
                None if (level == SOL_SOCKET && matches!(name, so::BROADCAST | so::DONTROUTE | so::OOBINLINE | so::PRIORITY | so::DEBUG | so::PASSCRED))
                    || (level == IPPROTO_TCP && matches!(name, tcpo::CORK | tcpo::QUICKACK | tcpo::DEFER_ACCEPT))
                    || (level == IPPROTO_IP && name == ipo::IP_TOS) =>
                {
                    int_bytes(0)
                }
                None if level == SOL_SOCKET && matches!(name, so::RCVLOWAT | so::SNDLOWAT) => int_bytes(1),
                None => return Err(Errno::ENOPROTOOPT),
            },
        })
    }

    fn timeouts(&self) -> Timeouts {
        *self.timeouts.lock()
    }
}

/// `SIOCGIFCONF`, `SIOCGIFADDR`, `SIOCGIFHWADDR`, `SIOCGIFFLAGS`, `SIOCGIFINDEX`.
pub const SIOCGIFCONF: u32 = 0x8912;
pub const SIOCGIFFLAGS: u32 = 0x8913;
pub const SIOCGIFADDR: u32 = 0x8915;
pub const SIOCGIFNETMASK: u32 = 0x891b;
pub const SIOCGIFMTU: u32 = 0x8921;
pub const SIOCGIFHWADDR: u32 = 0x8927;
pub const SIOCGIFINDEX: u32 = 0x8933;
/// `struct ifreq` size.
const IFREQ: usize = 40;

impl InetSocket {
    /// The interface ioctls: what `ifconfig`-like code and some runtimes ask.
    fn if_ioctl(&self, io: &dyn Io, request: u32, arg: u64) -> Result<usize, Errno> {
        let net = self.net.lock();
        let ifaces = net.interfaces();
        let mac = net.mac();
        let lease = net.lease();
        drop(net);
        let sockaddr_in = |a: Ipv4Addr| {
            let mut b = [0u8; 16];
            b[0..2].copy_from_slice(&AF_INET.to_le_bytes());
            b[4..8].copy_from_slice(&a.octets());
            b
        };
        if request == SIOCGIFCONF {
            // struct ifconf { int ifc_len; char *ifc_buf; }
            let mut head = [0u8; 16];
            io.read_user(arg, &mut head)?;
            let len = i32::from_le_bytes(head[0..4].try_into().expect("4 bytes")).max(0) as usize;
            let buf = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
            let mut out = Vec::new();
            for (name, addr) in &ifaces {
                let mut req = [0u8; IFREQ];
                req[..name.len()].copy_from_slice(name.as_bytes());
                req[16..32].copy_from_slice(&sockaddr_in(*addr));
                out.extend_from_slice(&req);
            }
            let n = if buf == 0 { out.len() } else { (len / IFREQ * IFREQ).min(out.len()) };
            if buf != 0 {
                io.write_user(buf, &out[..n])?;
            }
            io.write_user(arg, &(n as i32).to_le_bytes())?;
            return Ok(0);
        }
        let mut req = [0u8; IFREQ];
        io.read_user(arg, &mut req)?;
        let name_end = req[..16].iter().position(|&b| b == 0).unwrap_or(16);
        let name = String::from_utf8_lossy(&req[..name_end]).into_owned();
        let Some(&(name, addr)) = ifaces.iter().find(|(n, _)| *n == name) else { return Err(Errno::ENODEV) };
        let lo = name == "lo";
        match request {
            SIOCGIFADDR => req[16..32].copy_from_slice(&sockaddr_in(addr)),
            SIOCGIFNETMASK => {
                let prefix = if lo { 8 } else { lease.map_or(24, |l| l.prefix) };
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
                req[16..32].copy_from_slice(&sockaddr_in(Ipv4Addr::from(mask)));
            }
            SIOCGIFHWADDR => {
                // ARPHRD_LOOPBACK 772, ARPHRD_ETHER 1.
                let family: u16 = if lo { 772 } else { 1 };
                req[16..18].copy_from_slice(&family.to_le_bytes());
                if !lo && let Some(m) = mac {
                    req[18..24].copy_from_slice(&m);
                }
            }
            SIOCGIFFLAGS => {
                // IFF_UP | IFF_RUNNING, plus IFF_LOOPBACK or IFF_BROADCAST|IFF_MULTICAST.
                let flags: u16 = if lo { 0x1 | 0x40 | 0x8 } else { 0x1 | 0x40 | 0x2 | 0x1000 };
                req[16..18].copy_from_slice(&flags.to_le_bytes());
            }
            SIOCGIFINDEX => req[16..20].copy_from_slice(&(if lo { 1i32 } else { 2 }).to_le_bytes()),
            SIOCGIFMTU => req[16..20].copy_from_slice(&(if lo { 65536i32 } else { 1500 }).to_le_bytes()),
            _ => return Err(Errno::ENOTTY),
        }
        io.write_user(arg, &req)?;
        Ok(0)
    }
}

impl File for InetSocket {
    fn read(&self, io: &dyn Io, _offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.recv(io.platform(), buf, RecvFlags::default()).map(|r| r.len)
    }

    fn write(&self, io: &dyn Io, _offset: u64, data: &[u8]) -> Result<usize, Errno> {
        self.send(io.platform(), data, None)
    }

    fn stat(&self, io: &dyn Io) -> Result<Metadata, Errno> {
        Ok(socket_metadata(self.key, io.platform()))
    }

    fn ioctl(&self, io: &dyn Io, request: u32, arg: u64) -> Result<usize, Errno> {
        self.if_ioctl(io, request, arg)
    }

    fn poll(&self) -> Readiness {
        self.net.lock().readiness(self.id)
    }

    fn wait_key(&self) -> Option<WaitKey> {
        Some(self.key)
    }

    fn readable_bytes(&self, io: &dyn Io) -> Result<usize, Errno> {
        self.with_net(io.platform(), |n| n.readable_bytes(self.id))
    }

    fn describe(&self) -> String {
        alloc::format!("socket:[{}]", self.key)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

/// What fstat says of a socket.
pub(crate) fn socket_metadata(key: WaitKey, platform: &dyn Platform) -> Metadata {
    let t = Timestamp::from_ns(platform.realtime_ns());
    Metadata {
        ino: key,
        kind: FileType::Socket,
        perm: 0o777,
        nlink: 1,
        uid: 0,
        gid: 0,
        size: 0,
        blocks: 0,
        block_size: 4096,
        rdev: 0,
        atime: t,
        mtime: t,
        ctime: t,
    }
}

impl InetSocket {
    /// The unspecified address of this socket's family (for reports).
    pub fn any_addr(&self) -> IpAddress {
        self.unspecified()
    }
}

//! The TCP/IP stack: smoltcp interfaces (loopback always, Ethernet when the platform has a
//! device), the smoltcp sockets behind each app socket, ports, and change notifications.
//!
//! Each interface has its own smoltcp socket set, so a smoltcp socket only ever sees the
//! traffic of its interface: an app socket bound to "any address" owns one smoltcp socket per
//! interface (UDP) or one listening pool per interface (TCP); a connected TCP socket owns
//! one smoltcp socket, on the interface its peer is reached through.
//!
//! The stack runs only when polled: by every socket operation ([`Net::poll`], which moves
//! only what is there to move: frames the device holds, what the operation queued), by
//! [`crate::process::Process::net_poll`] (device interrupts and the stack's own timers,
//! [`Net::poll_at`]; [`Net::poll_all`] runs everything) and, for the loopback interface
//! alone, when a socket closes. After each poll the app sockets whose state changed have
//! their wait keys queued for `Process::notify`.
//!
//! Wakeups: a socket's readiness changes only (1) by an operation on it (the caller's
//! [`Net::touch`]), (2) by a packet coming in, (3) by a timer (the kernel's
//! [`Net::poll_all`] re-examines every socket), or (4) by datagrams leaving a UDP socket's
//! queue (re-examined after any poll that sends). For (2): a TCP segment without SYN that
//! came in over Ethernet can only have changed the connection with its (peer, local port),
//! looked up in [`Net::by_tuple`] and checked against the smoltcp socket, which is
//! re-examined alone; anything else (a SYN, a segment for no known connection, a datagram,
//! ARP, anything on loopback) re-examines every socket. A poll that only sends TCP segments
//! changes no other socket's readiness: sending moves no queue and no state a reader or
//! writer waits for (FIN and RST go out of sockets already shut down or closed).
//!
//! This module knows nothing of app memory, fds or threads.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::iface::{Config, Interface, PollIngressSingleResult, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::{dhcpv4, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint, Ipv4Cidr};

use super::addr::{Family, is_loopback};
use super::device::{PlatformDevice, RxLog};
use crate::errno::Errno;
use crate::fd::WaitKey;
use crate::platform::Platform;

/// Index of the loopback interface.
pub const LO: usize = 0;
/// Index of the Ethernet interface (when there is one).
pub const ETH: usize = 1;

/// TCP buffer sizes (each direction; SO_RCVBUF/SO_SNDBUF before connect/listen set them).
/// smoltcp allocates a socket's buffers whole when the socket is made and cannot grow them,
/// so, unlike Linux's autotuning, the size is chosen up front: [`TcpBuffers`] gives a
/// connection 1/1024 of the guest's memory per direction (whole pages), between
/// `TCP_BUF_DEFAULT` and `TCP_BUF_LARGE`, while all TCP buffers together stay within a
/// quarter of the memory, and `TCP_BUF_DEFAULT` beyond that. Measured in bench/REPORT.md (i):
/// bulk throughput grows with the buffer up to about 256 KiB on a tap device (guest -> host
/// about 2x from 32 KiB), less so through QEMU's user networking.
pub const TCP_BUF_DEFAULT: usize = 32 * 1024;
pub const TCP_BUF_LARGE: usize = 256 * 1024;
/// Bounds of what SO_RCVBUF/SO_SNDBUF can ask for.
pub const TCP_BUF_MIN: usize = 4 * 1024;
pub const TCP_BUF_MAX: usize = 1024 * 1024;

/// How large a new TCP socket's buffers are when the app does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpBuffers {
    /// Each direction's size while within the budget.
    pub size: usize,
    /// The most bytes all TCP sockets' buffers together may take before new ones get
    /// `TCP_BUF_DEFAULT` (0: no limit, for a stack that was not told the memory size).
    pub budget: usize,
}

impl TcpBuffers {
    /// The sizes for a guest with `memory` bytes.
    pub fn for_memory(memory: u64) -> TcpBuffers {
        let share = usize::try_from(memory / 1024).unwrap_or(usize::MAX) & !0xfff;
        let size = share.clamp(TCP_BUF_DEFAULT, TCP_BUF_LARGE);
        TcpBuffers { size, budget: usize::try_from(memory / 4).unwrap_or(usize::MAX).max(1) }
    }
}

impl Default for TcpBuffers {
    fn default() -> Self {
        TcpBuffers { size: TCP_BUF_DEFAULT, budget: 0 }
    }
}
/// UDP: datagrams queued and payload bytes per direction.
const UDP_PACKETS: usize = 64;
const UDP_BUF: usize = 64 * 1024;
/// The largest UDP payload (65535 - 8 - 20).
pub const UDP_MAX_PAYLOAD: usize = 65507;
/// Ephemeral ports, as Linux's `ip_local_port_range`.
const EPHEMERAL: core::ops::RangeInclusive<u16> = 32768..=60999;
/// How long a connect may take before ETIMEDOUT (Linux: about 127 s with 6 SYN retries).
const CONNECT_TIMEOUT_MS: u64 = 127_000;
/// Upper bound on poll rounds per [`Net::poll`] (loopback traffic ping-pongs inside one poll).
const MAX_ROUNDS: usize = 4096;

/// Names an app socket in the stack.
pub type SockId = u64;

/// Transport protocol of an inet socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

/// Options that change how the stack treats a socket.
#[derive(Debug, Clone, Default)]
pub struct SockOpts {
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub keepalive: bool,
    pub nodelay: bool,
    pub rcvbuf: Option<usize>,
    pub sndbuf: Option<usize>,
    /// SO_LINGER: `Some(0)` resets the connection on close.
    pub linger: Option<u32>,
    pub keepidle_s: u32,
    pub keepintvl_s: u32,
    pub keepcnt: u32,
    pub v6only: bool,
}

impl SockOpts {
    fn new() -> Self {
        SockOpts { keepidle_s: 7200, keepintvl_s: 75, keepcnt: 9, ..Default::default() }
    }
}

/// A TCP socket's state.
#[derive(Debug, Default)]
struct Tcp {
    /// The connection (connecting or connected): interface and smoltcp socket.
    conn: Option<(usize, SocketHandle)>,
    /// Listening: the pool of smoltcp sockets, per interface, and the backlog.
    pool: Option<Vec<(usize, SocketHandle)>>,
    backlog: usize,
    /// When a connect started (monotonic ns), while it is in progress.
    connecting: Option<u64>,
    /// Whether the connection was ever established.
    established: bool,
    /// The connection's (peer, local port) in [`Net::by_tuple`] (Ethernet connections).
    tuple: Option<(IpEndpoint, u16)>,
    /// SO_ERROR: reported once by getsockopt, or by the next operation.
    error: Option<Errno>,
    /// The connection was reset (or timed out) rather than closed by a FIN.
    reset: bool,
    shut_rd: bool,
    shut_wr: bool,
}

/// A UDP socket's state.
#[derive(Debug, Default)]
struct Udp {
    /// One bound smoltcp socket per interface it listens on.
    handles: Vec<(usize, SocketHandle)>,
    /// connect(): the default destination and the only accepted source.
    peer: Option<IpEndpoint>,
    shut_rd: bool,
    shut_wr: bool,
}

#[derive(Debug)]
enum Kind {
    Tcp(Tcp),
    Udp(Udp),
}

struct Sock {
    key: WaitKey,
    family: Family,
    local: Option<IpListenEndpoint>,
    opts: SockOpts,
    kind: Kind,
    /// (input, output) readiness and queue lengths at the last poll: a change notifies `key`.
    signature: (u64, u64),
}

struct Iface {
    iface: Interface,
    /// The loopback "device"; `None` for Ethernet (the platform is the device).
    lo: Option<Loopback>,
    sockets: SocketSet<'static>,
}

/// Static network configuration (kernel command line `kiln.ip=` `kiln.gw=` `kiln.dns=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetConfig {
    /// Address and prefix; `None`: DHCP.
    pub ip: Option<(Ipv4Addr, u8)>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Option<Ipv4Addr>,
    /// A static IPv6 address and prefix for the Ethernet interface (`kiln.ip6=`), and its
    /// router (`kiln.gw6=`); without it the interface speaks IPv4 only.
    pub ip6: Option<(Ipv6Addr, u8)>,
    pub gateway6: Option<Ipv6Addr>,
}

impl NetConfig {
    /// Parses the `kiln.ip=ADDR/PREFIX`, `kiln.gw=ADDR` and `kiln.dns=ADDR` words of a kernel
    /// command line; other words are ignored, malformed values are an error message.
    pub fn parse(cmdline: &str) -> Result<NetConfig, alloc::string::String> {
        let mut c = NetConfig::default();
        let ip = |v: &str| v.parse::<Ipv4Addr>().map_err(|_| alloc::format!("not an IPv4 address: {v:?}"));
        for word in cmdline.split_ascii_whitespace() {
            match word.split_once('=') {
                Some(("kiln.ip", v)) => {
                    let (a, p) = v.split_once('/').unwrap_or((v, "24"));
                    let prefix: u8 = p.parse().ok().filter(|&p| p <= 32).ok_or_else(|| alloc::format!("bad prefix in kiln.ip={v}"))?;
                    c.ip = Some((ip(a)?, prefix));
                }
                Some(("kiln.gw", v)) => c.gateway = Some(ip(v)?),
                Some(("kiln.ip6", v)) => {
                    let (a, p) = v.split_once('/').unwrap_or((v, "64"));
                    let prefix: u8 = p.parse().ok().filter(|&p| p <= 128).ok_or_else(|| alloc::format!("bad prefix in kiln.ip6={v}"))?;
                    let a = a.parse::<Ipv6Addr>().map_err(|_| alloc::format!("not an IPv6 address: {a:?}"))?;
                    c.ip6 = Some((a, prefix));
                }
                Some(("kiln.gw6", v)) => {
                    c.gateway6 = Some(v.parse::<Ipv6Addr>().map_err(|_| alloc::format!("not an IPv6 address: {v:?}"))?);
                }
                Some(("kiln.dns", v)) => c.dns = Some(ip(v)?),
                _ => {}
            }
        }
        Ok(c)
    }
}

/// What DHCP or the static configuration gave the Ethernet interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Option<Ipv4Addr>,
}

/// The stack.
pub struct Net {
    ifaces: Vec<Iface>,
    socks: BTreeMap<SockId, Sock>,
    /// Sockets listening (their pools are refilled after each incoming packet).
    listeners: BTreeSet<SockId>,
    next_id: SockId,
    /// Closed TCP connections finishing their FIN exchange: dropped once smoltcp closes them.
    orphans: Vec<(usize, SocketHandle)>,
    /// Wait keys to notify (drained by the process).
    pending: super::Pending,
    next_port: u16,
    seed: u64,
    config: NetConfig,
    /// Whether the Ethernet interface was looked for.
    eth_probed: bool,
    dhcp: Option<SocketHandle>,
    lease: Option<Lease>,
    /// Set when the lease changed (the process rewrites /etc/resolv.conf).
    lease_changed: bool,
    /// The time of the last poll (monotonic ns).
    last_now: u64,
    /// Interfaces (bit per index) an operation left something to send since their last poll.
    dirty: u8,
    /// Ethernet connections by (peer, local port): a segment that came in names the one
    /// socket it may have changed.
    by_tuple: BTreeMap<(IpEndpoint, u16), SockId>,
    /// The frames the last Ethernet poll took in (kept for its allocation).
    rx_log: RxLog,
    /// The earliest deadline of the sockets when [`Net::poll_at`] last looked (monotonic ns).
    deadline: Option<u64>,
    /// How many app sockets are UDP.
    udp_socks: usize,
    /// Default TCP buffer sizes.
    tcp_buffers: TcpBuffers,
}

fn instant(ns: u64) -> Instant {
    Instant::from_micros((ns / 1000) as i64)
}

impl Net {
    /// A stack with the loopback interface (127.0.0.1/8, ::1/128) only.
    pub fn new(pending: super::Pending, seed: u64) -> Net {
        let mut lo = Loopback::new(Medium::Ip);
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut lo, Instant::ZERO);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::Ipv4(Ipv4Addr::LOCALHOST), 8));
            let _ = a.push(IpCidr::new(IpAddress::Ipv6(Ipv6Addr::LOCALHOST), 128));
        });
        Net {
            ifaces: vec![Iface { iface, lo: Some(lo), sockets: SocketSet::new(Vec::new()) }],
            socks: BTreeMap::new(),
            listeners: BTreeSet::new(),
            next_id: 1,
            orphans: Vec::new(),
            pending,
            next_port: *EPHEMERAL.start() + (seed % 20000) as u16,
            seed,
            config: NetConfig::default(),
            eth_probed: false,
            dhcp: None,
            lease: None,
            lease_changed: false,
            last_now: 0,
            dirty: 0,
            by_tuple: BTreeMap::new(),
            rx_log: RxLog::default(),
            deadline: Some(0),
            udp_socks: 0,
            tcp_buffers: TcpBuffers::default(),
        }
    }

    /// Sets the static configuration (before the Ethernet interface comes up).
    pub fn configure(&mut self, config: NetConfig) {
        self.config = config;
    }

    /// Sizes TCP buffers for a guest with `memory` bytes (see [`TcpBuffers`]).
    pub fn set_memory(&mut self, memory: u64) {
        self.set_tcp_buffers(TcpBuffers::for_memory(memory));
    }

    /// Sets the default TCP buffer sizes and their budget.
    pub fn set_tcp_buffers(&mut self, buffers: TcpBuffers) {
        self.tcp_buffers = buffers;
    }

    /// The buffer size (each direction) a new TCP socket gets when the app does not choose:
    /// the memory-scaled size, or `TCP_BUF_DEFAULT` once the TCP sockets' buffers fill the
    /// budget.
    fn tcp_buf_default(&self) -> usize {
        let TcpBuffers { size, budget } = self.tcp_buffers;
        if budget == 0 || size <= TCP_BUF_DEFAULT {
            return size;
        }
        let used: usize = self
            .ifaces
            .iter()
            .flat_map(|i| i.sockets.iter())
            .filter_map(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => Some(t.recv_capacity() + t.send_capacity()),
                _ => None,
            })
            .sum();
        if used + 2 * size <= budget { size } else { TCP_BUF_DEFAULT }
    }

    /// The Ethernet interface's current address, gateway and DNS server.
    pub fn lease(&self) -> Option<Lease> {
        self.lease
    }

    /// Whether the lease changed since the last call.
    pub fn take_lease_change(&mut self) -> bool {
        core::mem::take(&mut self.lease_changed)
    }

    /// Whether there is an Ethernet interface.
    pub fn has_eth(&self) -> bool {
        self.ifaces.len() > ETH
    }

    /// The MAC address of the Ethernet interface.
    pub fn mac(&self) -> Option<[u8; 6]> {
        match self.ifaces.get(ETH)?.iface.hardware_addr() {
            HardwareAddress::Ethernet(e) => Some(e.0),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Brings the Ethernet interface up the first time the platform is seen with a device.
    fn probe_eth(&mut self, platform: &dyn Platform, now: u64) {
        if self.eth_probed {
            return;
        }
        self.eth_probed = true;
        let Some(mac) = platform.net_mac() else { return };
        let mut dev = PlatformDevice::new(platform);
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = self.seed ^ 0x5555;
        let iface = Interface::new(config, &mut dev, instant(now));
        self.ifaces.push(Iface { iface, lo: None, sockets: SocketSet::new(Vec::new()) });
        if let Some((addr, prefix)) = self.config.ip6 {
            let eth = &mut self.ifaces[ETH].iface;
            eth.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(IpAddress::Ipv6(addr), prefix));
            });
            if let Some(gw) = self.config.gateway6 {
                let _ = eth.routes_mut().add_default_ipv6_route(gw);
            }
            // The interface's own address is reached through loopback, as on Linux.
            self.ifaces[LO].iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(IpAddress::Ipv6(addr), 128));
            });
            log::info!("net: address {addr}/{prefix}{}", self.config.gateway6.map_or(alloc::string::String::new(), |g| alloc::format!(", gateway {g}")));
        }
        match self.config.ip {
            Some((addr, prefix)) => {
                self.apply_lease(Some(Lease { addr, prefix, gateway: self.config.gateway, dns: self.config.dns }));
            }
            None => {
                let dhcp = dhcpv4::Socket::new();
                self.dhcp = Some(self.ifaces[ETH].sockets.add(dhcp));
            }
        }
        log::info!("net: ethernet {:02x?}, {}", mac, if self.config.ip.is_some() { "static address" } else { "DHCP" });
    }

    fn apply_lease(&mut self, lease: Option<Lease>) {
        let Some(eth) = self.ifaces.get_mut(ETH) else { return };
        eth.iface.update_ip_addrs(|a| {
            // A lease is IPv4: static IPv6 addresses stay.
            a.retain(|c| matches!(c, IpCidr::Ipv6(_)));
            if let Some(l) = lease {
                let _ = a.push(IpCidr::Ipv4(Ipv4Cidr::new(l.addr, l.prefix)));
            }
        });
        eth.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = lease.and_then(|l| l.gateway) {
            let _ = eth.iface.routes_mut().add_default_ipv4_route(gw);
        }
        // The interface's own address is reached through loopback, as on Linux.
        let lo = &mut self.ifaces[LO].iface;
        lo.update_ip_addrs(|a| {
            a.retain(|c| is_loopback(c.address()) || matches!(c, IpCidr::Ipv6(_)));
            if let Some(l) = lease {
                let _ = a.push(IpCidr::Ipv4(Ipv4Cidr::new(l.addr, 32)));
            }
        });
        if lease != self.lease {
            match lease {
                Some(l) => log::info!(
                    "net: address {}/{}, gateway {}, dns {}",
                    l.addr,
                    l.prefix,
                    l.gateway.map_or(alloc::string::String::from("none"), |g| alloc::format!("{g}")),
                    l.dns.map_or(alloc::string::String::from("none"), |g| alloc::format!("{g}"))
                ),
                None => log::info!("net: address lost"),
            }
            self.lease = lease;
            self.lease_changed = true;
        }
    }

    // --- polling -------------------------------------------------------------------------

    /// Runs the stack after a socket operation, or before one to take in what arrived: an
    /// interface is polled only when there is something to move. Ethernet takes frames in
    /// when the device has some waiting; an interface sends when it took frames in or an
    /// operation left it something to send ([`Net::mark`]). Timers are the kernel's business
    /// ([`Net::poll_all`] at [`Net::poll_at`]). Sockets are re-examined for changes only when
    /// packets came in (any socket of the interface may have changed); the caller refreshes
    /// its own socket ([`Net::touch`]).
    pub fn poll(&mut self, platform: Option<&dyn Platform>, now: u64) {
        self.poll_ifaces(platform, now, false);
    }

    /// Runs every interface, sending whatever is due, and re-examines every socket: for the
    /// kernel's polls (device interrupts, the stack's deadlines), where timers may have
    /// changed sockets without a packet.
    pub fn poll_all(&mut self, platform: Option<&dyn Platform>, now: u64) {
        self.poll_ifaces(platform, now, true);
    }

    /// Notes that an operation left interface `i` something to send.
    fn mark(&mut self, i: usize) {
        self.dirty |= 1 << i;
    }

    fn poll_ifaces(&mut self, platform: Option<&dyn Platform>, now: u64, all: bool) {
        if let Some(p) = platform {
            self.probe_eth(p, now);
        }
        let now = now.max(self.last_now);
        self.last_now = now;
        let ts = instant(now);
        // Every socket, or those the segments that came in name.
        let mut refresh_all = all;
        let mut segments = false;
        let mut sent_udp = false;
        for i in 0..self.ifaces.len() {
            let dirty = self.dirty & (1 << i) != 0;
            if i == ETH {
                let Some(p) = platform else { continue };
                if !(all || dirty || p.net_rx_ready()) {
                    continue;
                }
                let (took, sent) = self.poll_eth(p, ts);
                refresh_all |= took && self.rx_log.other;
                segments |= took;
                sent_udp |= sent;
            } else {
                if !(all || dirty) {
                    continue;
                }
                refresh_all |= self.poll_loopback(ts);
            }
            self.dirty &= !(1 << i);
        }
        // A new or lost lease changes what sockets can do (a connect may now route).
        if self.dhcp.is_some() && self.poll_dhcp() {
            refresh_all = true;
        }
        self.reap_orphans();
        if !refresh_all && segments {
            refresh_all = !self.refresh_segments(now);
        }
        if refresh_all {
            self.refresh_signatures(now);
        } else if sent_udp && self.udp_socks > 0 {
            // Datagrams another socket queued may have left: room for a blocked sender.
            self.refresh_udp(now);
        }
        self.rx_log.segments.clear();
        self.rx_log.other = false;
    }

    /// Re-examines the sockets the TCP segments of the last Ethernet poll were for; false
    /// when a segment is not for a known connection (it may have been for a listening
    /// socket's pool or anything else: the caller re-examines every socket).
    fn refresh_segments(&mut self, now: u64) -> bool {
        let mut pending = self.pending.lock();
        for &(peer, port) in &self.rx_log.segments {
            let Some(sock) = self.by_tuple.get(&(peer, port)).and_then(|id| self.socks.get_mut(id)) else { return false };
            // The smoltcp socket must still hold that connection: then the segment was its.
            let Kind::Tcp(Tcp { conn: Some((ETH, h)), .. }) = sock.kind else { return false };
            let s = self.ifaces[ETH].sockets.get::<tcp::Socket>(h);
            if s.remote_endpoint() != Some(peer) || s.local_endpoint().map(|e| e.port) != Some(port) {
                return false;
            }
            if let Some(change) = refresh(&self.ifaces, sock, now) {
                pending.push(change);
            }
        }
        true
    }

    /// Loopback: packets go round (each send is the other end's receive) until none move;
    /// true when any did.
    fn poll_loopback(&mut self, ts: Instant) -> bool {
        let mut any = false;
        for _ in 0..MAX_ROUNDS {
            let mut moved = false;
            loop {
                let r = {
                    let Iface { iface, lo, sockets } = &mut self.ifaces[LO];
                    iface.poll_ingress_single(ts, lo.as_mut().expect("loopback device"), sockets)
                };
                match r {
                    PollIngressSingleResult::None => break,
                    PollIngressSingleResult::PacketProcessed => moved = true,
                    PollIngressSingleResult::SocketStateChanged => {
                        moved = true;
                        self.refill_listeners(LO);
                    }
                }
            }
            let Iface { iface, lo, sockets } = &mut self.ifaces[LO];
            iface.poll_maintenance(ts);
            if iface.poll_egress(ts, lo.as_mut().expect("loopback device"), sockets) == smoltcp::iface::PollResult::SocketStateChanged {
                moved = true;
            }
            any |= moved;
            if !moved {
                return any;
            }
        }
        // Still moving after MAX_ROUNDS: carry on at the next poll.
        self.mark(LO);
        any
    }

    /// Ethernet: takes in the frames waiting, then sends what is due (until the sockets have
    /// nothing more or the device's queue is full) and tells the device once. (took frames in,
    /// sent any).
    fn poll_eth(&mut self, platform: &dyn Platform, ts: Instant) -> (bool, bool) {
        let mut took = false;
        let log = core::cell::RefCell::new(core::mem::take(&mut self.rx_log));
        loop {
            let r = {
                let Iface { iface, sockets, .. } = &mut self.ifaces[ETH];
                iface.poll_ingress_single(ts, &mut PlatformDevice::logging(platform, &log), sockets)
            };
            match r {
                PollIngressSingleResult::None => break,
                PollIngressSingleResult::PacketProcessed => took = true,
                PollIngressSingleResult::SocketStateChanged => {
                    took = true;
                    // Only a SYN or a reset (or what is not TCP) changes a listening pool.
                    if log.borrow().last_control {
                        self.refill_listeners(ETH);
                    }
                }
            }
        }
        self.rx_log = log.into_inner();
        let Iface { iface, sockets, .. } = &mut self.ifaces[ETH];
        iface.poll_maintenance(ts);
        let mut sent = false;
        // Each round sends at most one segment per socket: bulk data takes several rounds,
        // while a round of short segments leaves nothing to send (a second round would walk
        // every socket for nothing). What a socket could still send anyway (a FIN after a
        // full last segment) is due at once by the stack's deadline.
        for _ in 0..MAX_ROUNDS {
            let mut dev = PlatformDevice::new(platform);
            if iface.poll_egress(ts, &mut dev, sockets) == smoltcp::iface::PollResult::None {
                break;
            }
            sent = true;
            if dev.full_frames() == 0 {
                break;
            }
        }
        platform.net_flush();
        (took, sent)
    }

    /// The app just operated on `id`: brings its signature up to date (and notifies if a
    /// reader or writer could see a difference).
    pub fn touch(&mut self, id: SockId) {
        let now = self.last_now;
        if let Some(change) = self.refresh_one(id, now) {
            self.pending.lock().push(change);
        }
    }

    /// Takes the DHCP client's news; true when the lease changed.
    fn poll_dhcp(&mut self) -> bool {
        let Some(h) = self.dhcp else { return false };
        let event = match self.ifaces[ETH].sockets.get_mut::<dhcpv4::Socket>(h).poll() {
            None => return false,
            Some(dhcpv4::Event::Deconfigured) => None,
            Some(dhcpv4::Event::Configured(c)) => Some(Lease {
                addr: c.address.address(),
                prefix: c.address.prefix_len(),
                gateway: c.router,
                dns: c.dns_servers.first().copied(),
            }),
        };
        self.apply_lease(event);
        true
    }

    /// When the stack next needs polling by itself (monotonic ns): retransmissions, delayed
    /// ACKs, keepalives, TIME_WAIT, DHCP renewals. `None`: only when packets arrive.
    pub fn poll_at(&mut self, now: u64) -> Option<u64> {
        let ts = instant(now);
        let mut best: Option<u64> = None;
        for i in &mut self.ifaces {
            if let Some(at) = i.iface.poll_at(ts, &i.sockets) {
                let ns = (at.total_micros().max(0) as u64).saturating_mul(1000);
                best = Some(best.map_or(ns, |b| b.min(ns)));
            }
        }
        self.deadline = best;
        // Something the last poll could not move (a full device queue): try again shortly
        // rather than spinning.
        best.map(|b| if b <= self.last_now { self.last_now + 1_000_000 } else { b })
    }

    /// Whether the stack's deadline, as [`Net::poll_at`] last computed it, has come: the
    /// kernel's poll then runs everything ([`Net::poll_all`]) rather than what arrived.
    pub fn timers_due(&self, now: u64) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }

    /// Drops orphaned connections that smoltcp has finished with.
    /// Whether a TCP connection on the Ethernet interface still holds data the peer has not
    /// acknowledged (sockets the app closed included).
    pub fn unsent_on_ethernet(&self) -> bool {
        self.ifaces.get(ETH).is_some_and(|e| {
            e.sockets.iter().any(|(_, s)| matches!(s, smoltcp::socket::Socket::Tcp(t) if t.send_queue() > 0 && t.is_open()))
        })
    }

    fn reap_orphans(&mut self) {
        let ifaces = &mut self.ifaces;
        let dirty = &mut self.dirty;
        self.orphans.retain(|&(i, h)| {
            let s = ifaces[i].sockets.get_mut::<tcp::Socket>(h);
            // Data for a socket the app closed: Linux answers with a reset (at the next poll).
            if s.recv_queue() > 0 && s.state() != tcp::State::Closed {
                s.abort();
                *dirty |= 1 << i;
                return true;
            }
            // Closed, and the reset (if any) sent: smoltcp forgets the peer then.
            if s.state() == tcp::State::Closed && s.remote_endpoint().is_none() {
                ifaces[i].sockets.remove(h);
                false
            } else {
                true
            }
        });
    }

    /// Recomputes each socket's signatures and queues the keys of those that changed, with
    /// the direction of the change.
    pub(crate) fn refresh_signatures(&mut self, now: u64) {
        self.refresh_where(now, |_| true);
    }

    /// [`Net::refresh_signatures`] for the UDP sockets alone.
    fn refresh_udp(&mut self, now: u64) {
        self.refresh_where(now, |s| matches!(s.kind, Kind::Udp(_)));
    }

    fn refresh_where(&mut self, now: u64, which: impl Fn(&Sock) -> bool) {
        let ifaces = &self.ifaces;
        let mut pending = self.pending.lock();
        for sock in self.socks.values_mut().filter(|s| which(s)) {
            if let Some(change) = refresh(ifaces, sock, now) {
                pending.push(change);
            }
        }
    }

    /// Recomputes one socket's signatures: its key and the direction of the change, if any.
    fn refresh_one(&mut self, id: SockId, now: u64) -> Option<(WaitKey, crate::fd::Readiness)> {
        refresh(&self.ifaces, self.socks.get_mut(&id)?, now)
    }

    // --- sockets -------------------------------------------------------------------------

    /// A new unbound socket.
    pub fn create(&mut self, family: Family, proto: Proto, key: WaitKey) -> SockId {
        let id = self.next_id;
        self.next_id += 1;
        let kind = match proto {
            Proto::Tcp => Kind::Tcp(Tcp::default()),
            Proto::Udp => {
                self.udp_socks += 1;
                Kind::Udp(Udp::default())
            }
        };
        let mut opts = SockOpts::new();
        opts.v6only = false;
        self.socks.insert(id, Sock { key, family, local: None, opts, kind, signature: (u64::MAX, u64::MAX) });
        id
    }

    fn sock(&self, id: SockId) -> Result<&Sock, Errno> {
        self.socks.get(&id).ok_or(Errno::EBADF)
    }

    fn sock_mut(&mut self, id: SockId) -> Result<&mut Sock, Errno> {
        self.socks.get_mut(&id).ok_or(Errno::EBADF)
    }

    pub fn family(&self, id: SockId) -> Family {
        self.socks.get(&id).map_or(Family::Inet, |s| s.family)
    }

    pub fn proto(&self, id: SockId) -> Proto {
        match self.socks.get(&id).map(|s| &s.kind) {
            Some(Kind::Udp(_)) => Proto::Udp,
            _ => Proto::Tcp,
        }
    }

    pub fn opts(&self, id: SockId) -> SockOpts {
        self.socks.get(&id).map(|s| s.opts.clone()).unwrap_or_default()
    }

    /// Changes options; applies the ones a live connection uses.
    pub fn set_opts(&mut self, id: SockId, f: impl FnOnce(&mut SockOpts)) -> Result<(), Errno> {
        let sock = self.sock_mut(id)?;
        f(&mut sock.opts);
        let opts = sock.opts.clone();
        if let Kind::Tcp(t) = &sock.kind
            && let Some((i, h)) = t.conn
        {
            apply_tcp_opts(self.ifaces[i].sockets.get_mut::<tcp::Socket>(h), &opts, i);
            // TCP_NODELAY may free data Nagle held back.
            self.mark(i);
        }
        Ok(())
    }

    /// The interfaces an address (bound or listened on) belongs to; `EADDRNOTAVAIL` if none.
    fn ifaces_for(&self, addr: Option<IpAddress>) -> Result<Vec<usize>, Errno> {
        match addr {
            None => Ok((0..self.ifaces.len()).collect()),
            Some(a) if is_loopback(a) => Ok(vec![LO]),
            Some(a) if self.ifaces.get(ETH).is_some_and(|e| e.iface.has_ip_addr(a)) => Ok(vec![LO, ETH]),
            Some(_) => Err(Errno::EADDRNOTAVAIL),
        }
    }

    /// The interface that reaches `addr`.
    fn route(&self, addr: IpAddress) -> Result<usize, Errno> {
        if is_loopback(addr) || self.ifaces[LO].iface.has_ip_addr(addr) {
            return Ok(LO);
        }
        let configured = match addr {
            IpAddress::Ipv4(_) => self.lease.is_some(),
            IpAddress::Ipv6(_) => self.config.ip6.is_some(),
        };
        if self.has_eth() && configured {
            return Ok(ETH);
        }
        Err(Errno::ENETUNREACH)
    }

    /// Whether `port` is taken for `proto` in a way that conflicts with binding `addr` with
    /// `opts`.
    fn port_taken(&self, proto: Proto, addr: Option<IpAddress>, port: u16, opts: &SockOpts, me: SockId) -> bool {
        let my_family = self.family(me);
        self.socks.iter().any(|(&id, s)| {
            let Some(l) = s.local else { return false };
            if id == me || l.port != port || self.proto(id) != proto {
                return false;
            }
            let (v4, v6) = address_families(s.family, s.opts.v6only, l.addr);
            let (my_v4, my_v6) = address_families(my_family, opts.v6only, addr);
            let same_family = (v4 && my_v4) || (v6 && my_v6);
            let overlap = same_family && (l.addr.is_none() || addr.is_none() || l.addr == addr);
            if !overlap {
                return false;
            }
            if s.opts.reuseport && opts.reuseport {
                return false;
            }
            let listening = matches!(&s.kind, Kind::Tcp(t) if t.pool.is_some());
            !(s.opts.reuseaddr && opts.reuseaddr && !listening)
        }) || (proto == Proto::Tcp && self.orphans.iter().any(|&(i, h)| {
            let s = self.ifaces[i].sockets.get::<tcp::Socket>(h);
            !opts.reuseaddr && s.local_endpoint().is_some_and(|e| e.port == port)
        }))
    }

    fn ephemeral_port(&mut self, proto: Proto, id: SockId) -> Result<u16, Errno> {
        let span = (*EPHEMERAL.end() - *EPHEMERAL.start()) as u32 + 1;
        let opts = SockOpts::new();
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p >= *EPHEMERAL.end() { *EPHEMERAL.start() } else { p + 1 };
            if !self.port_taken(proto, None, p, &opts, id) && !self.port_in_smoltcp(p) {
                return Ok(p);
            }
        }
        Err(Errno::EADDRINUSE)
    }

    /// Whether a smoltcp TCP socket (a connection, perhaps accepted or orphaned) uses `port`
    /// locally.
    fn port_in_smoltcp(&self, port: u16) -> bool {
        self.ifaces.iter().any(|i| {
            i.sockets.iter().any(|(_, s)| match s {
                smoltcp::socket::Socket::Tcp(t) => t.local_endpoint().is_some_and(|e| e.port == port),
                _ => false,
            })
        })
    }

    /// bind: `addr` `None` is any address; port 0 picks one.
    pub fn bind(&mut self, id: SockId, addr: Option<IpAddress>, port: u16) -> Result<(), Errno> {
        let sock = self.sock(id)?;
        if sock.local.is_some() {
            return Err(Errno::EINVAL);
        }
        if let (Family::Inet, Some(IpAddress::Ipv6(_))) = (sock.family, addr) {
            return Err(Errno::EAFNOSUPPORT);
        }
        let proto = self.proto(id);
        let opts = sock.opts.clone();
        self.ifaces_for(addr)?;
        let port = if port == 0 {
            self.ephemeral_port(proto, id)?
        } else {
            if self.port_taken(proto, addr, port, &opts, id) {
                return Err(Errno::EADDRINUSE);
            }
            port
        };
        self.sock_mut(id)?.local = Some(IpListenEndpoint { addr, port });
        if proto == Proto::Udp {
            self.udp_open(id)?;
        }
        Ok(())
    }

    fn autobind(&mut self, id: SockId) -> Result<IpListenEndpoint, Errno> {
        if let Some(l) = self.sock(id)?.local {
            return Ok(l);
        }
        self.bind(id, None, 0)?;
        Ok(self.sock(id)?.local.expect("just bound"))
    }

    /// The local address: bound, or the connection's, or unspecified.
    pub fn local_endpoint(&self, id: SockId) -> Result<IpListenEndpoint, Errno> {
        let sock = self.sock(id)?;
        if let Kind::Tcp(t) = &sock.kind
            && let Some((i, h)) = t.conn
            && let Some(ep) = self.ifaces[i].sockets.get::<tcp::Socket>(h).local_endpoint()
        {
            return Ok(ep.into());
        }
        Ok(sock.local.unwrap_or(IpListenEndpoint { addr: None, port: 0 }))
    }

    /// The peer address; `ENOTCONN` without one.
    pub fn peer_endpoint(&self, id: SockId) -> Result<IpEndpoint, Errno> {
        let sock = self.sock(id)?;
        match &sock.kind {
            Kind::Tcp(t) => {
                let (i, h) = t.conn.ok_or(Errno::ENOTCONN)?;
                if t.connecting.is_some() || !t.established {
                    return Err(Errno::ENOTCONN);
                }
                let s = self.ifaces[i].sockets.get::<tcp::Socket>(h);
                s.remote_endpoint().ok_or(Errno::ENOTCONN)
            }
            Kind::Udp(u) => u.peer.ok_or(Errno::ENOTCONN),
        }
    }

    /// SO_ERROR: the pending error, cleared.
    pub fn take_error(&mut self, id: SockId) -> Result<Option<Errno>, Errno> {
        match &mut self.sock_mut(id)?.kind {
            Kind::Tcp(t) => Ok(t.error.take()),
            Kind::Udp(_) => Ok(None),
        }
    }

    /// SO_ACCEPTCONN.
    pub fn is_listening(&self, id: SockId) -> bool {
        matches!(self.socks.get(&id).map(|s| &s.kind), Some(Kind::Tcp(t)) if t.pool.is_some())
    }

    /// Bytes readable now (FIONREAD): the TCP receive queue, or the next datagram's size.
    pub fn readable_bytes(&mut self, id: SockId) -> Result<usize, Errno> {
        let sock = self.sock(id)?;
        match &sock.kind {
            Kind::Tcp(t) => Ok(t.conn.map_or(0, |(i, h)| self.ifaces[i].sockets.get::<tcp::Socket>(h).recv_queue())),
            Kind::Udp(u) => {
                let handles = u.handles.clone();
                for (i, h) in handles {
                    if let Ok((data, _)) = self.ifaces[i].sockets.get_mut::<udp::Socket>(h).peek() {
                        return Ok(data.len());
                    }
                }
                Ok(0)
            }
        }
    }

    // --- TCP -----------------------------------------------------------------------------

    /// The receive and send buffer sizes a new TCP socket with `opts` gets: what SO_RCVBUF
    /// and SO_SNDBUF asked for, else [`Net::tcp_buf_default`] (only looked up when needed: it
    /// walks every socket), within the bounds.
    fn tcp_buf_sizes(&self, opts: &SockOpts) -> (usize, usize) {
        let default = if opts.rcvbuf.is_none() || opts.sndbuf.is_none() { self.tcp_buf_default() } else { 0 };
        (
            opts.rcvbuf.unwrap_or(default).clamp(TCP_BUF_MIN, TCP_BUF_MAX),
            opts.sndbuf.unwrap_or(default).clamp(TCP_BUF_MIN, TCP_BUF_MAX),
        )
    }

    fn new_tcp(&mut self, i: usize, opts: &SockOpts) -> SocketHandle {
        let (rx, tx) = self.tcp_buf_sizes(opts);
        let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; rx]), tcp::SocketBuffer::new(vec![0; tx]));
        apply_tcp_opts(&mut s, opts, i);
        self.ifaces[i].sockets.add(s)
    }

    /// listen: a pool of listening smoltcp sockets on each interface of the bound address.
    pub fn listen(&mut self, id: SockId, backlog: i32) -> Result<(), Errno> {
        let backlog = backlog.clamp(1, 4096) as usize;
        {
            let sock = self.sock_mut(id)?;
            let Kind::Tcp(t) = &mut sock.kind else { return Err(Errno::EOPNOTSUPP) };
            if t.conn.is_some() {
                return Err(Errno::EINVAL);
            }
            if t.pool.is_some() {
                t.backlog = backlog;
                return Ok(());
            }
        }
        let local = self.autobind(id)?;
        let sock = self.sock_mut(id)?;
        if let Kind::Tcp(t) = &mut sock.kind {
            t.backlog = backlog;
            t.pool = Some(Vec::new());
        }
        let _ = local;
        self.listeners.insert(id);
        for i in 0..self.ifaces.len() {
            self.refill_listeners(i);
        }
        Ok(())
    }

    /// Makes sure every listening socket has a smoltcp socket in LISTEN on interface `i`,
    /// unless its backlog is full; drops pool sockets that went back to CLOSED.
    fn refill_listeners(&mut self, i: usize) {
        self.sort_by_family();
        let ids: Vec<SockId> = self.listeners.iter().copied().collect();
        for id in ids {
            let Some(sock) = self.socks.get(&id) else { continue };
            let Some(local) = sock.local else { continue };
            if !self.ifaces_for(local.addr).is_ok_and(|v| v.contains(&i)) {
                continue;
            }
            let opts = sock.opts.clone();
            let Kind::Tcp(t) = &sock.kind else { continue };
            let Some(pool) = &t.pool else { continue };
            let backlog = t.backlog;
            let mut listening = 0;
            let mut queued = 0;
            let mut dead = Vec::new();
            for &(pi, h) in pool {
                let state = self.ifaces[pi].sockets.get::<tcp::Socket>(h).state();
                match state {
                    tcp::State::Listen if pi == i => listening += 1,
                    tcp::State::Listen => {}
                    tcp::State::Closed => dead.push((pi, h)),
                    _ => queued += 1,
                }
            }
            for &(pi, h) in &dead {
                self.ifaces[pi].sockets.remove(h);
            }
            let mut new = None;
            if listening == 0 && queued < backlog {
                let h = self.new_tcp(i, &opts);
                let ep = IpListenEndpoint { addr: local.addr, port: local.port };
                if self.ifaces[i].sockets.get_mut::<tcp::Socket>(h).listen(ep).is_ok() {
                    new = Some((i, h));
                } else {
                    self.ifaces[i].sockets.remove(h);
                }
            }
            if let Some(Sock { kind: Kind::Tcp(Tcp { pool: Some(pool), .. }), .. }) = self.socks.get_mut(&id) {
                pool.retain(|e| !dead.contains(e));
                pool.extend(new);
            }
        }
    }

    /// A wildcard listener's smoltcp sockets take a SYN to their port whatever its IP
    /// version, but Linux gives an IPv4 connection only to a listener that takes IPv4
    /// (AF_INET, or AF_INET6 without IPV6_V6ONLY) and an IPv6 one only to an AF_INET6
    /// listener. A connection that landed in the wrong pool moves to the listener on the same
    /// port that takes it, or is reset when there is none (Linux would have refused it).
    fn sort_by_family(&mut self) {
        let takes = |s: &Sock, remote: IpAddress| {
            let (v4, v6) = address_families(s.family, s.opts.v6only, s.local.and_then(|l| l.addr));
            if matches!(remote, IpAddress::Ipv4(_)) { v4 } else { v6 }
        };
        let ids: Vec<SockId> = self.listeners.iter().copied().collect();
        for id in ids {
            let Some(sock) = self.socks.get(&id) else { continue };
            let Some(port) = sock.local.map(|l| l.port) else { continue };
            let Kind::Tcp(Tcp { pool: Some(pool), .. }) = &sock.kind else { continue };
            let misplaced: Vec<(usize, SocketHandle, IpAddress)> = pool
                .iter()
                .filter_map(|&(i, h)| {
                    let remote = self.ifaces[i].sockets.get::<tcp::Socket>(h).remote_endpoint()?.addr;
                    (!takes(sock, remote)).then_some((i, h, remote))
                })
                .collect();
            for (i, h, remote) in misplaced {
                let home = self.listeners.iter().copied().find(|&other| {
                    other != id
                        && self.socks.get(&other).is_some_and(|o| {
                            o.local.is_some_and(|l| l.port == port && l.addr.is_none_or(|a| a == self.ifaces[i].sockets.get::<tcp::Socket>(h).local_endpoint().map_or(a, |e| e.addr)))
                                && takes(o, remote)
                        })
                });
                if let Some(Sock { kind: Kind::Tcp(Tcp { pool: Some(pool), .. }), .. }) = self.socks.get_mut(&id) {
                    pool.retain(|&e| e != (i, h));
                }
                match home.and_then(|o| self.socks.get_mut(&o)) {
                    Some(Sock { kind: Kind::Tcp(Tcp { pool: Some(pool), .. }), .. }) => pool.push((i, h)),
                    _ => {
                        self.ifaces[i].sockets.get_mut::<tcp::Socket>(h).abort();
                        self.orphans.push((i, h));
                    }
                }
            }
        }
    }

    /// accept: takes an established connection from the pool as a new socket with key
    /// `key`; `EAGAIN` when there is none.
    pub fn accept(&mut self, id: SockId, key: WaitKey) -> Result<(SockId, IpEndpoint), Errno> {
        let sock = self.sock(id)?;
        let Kind::Tcp(t) = &sock.kind else { return Err(Errno::EOPNOTSUPP) };
        let Some(pool) = &t.pool else { return Err(Errno::EINVAL) };
        let family = sock.family;
        let opts = sock.opts.clone();
        let pos = pool
            .iter()
            .position(|&(i, h)| acceptable_state(self.ifaces[i].sockets.get::<tcp::Socket>(h).state()))
            .ok_or(Errno::EAGAIN)?;
        let (i, h) = match &mut self.sock_mut(id)?.kind {
            Kind::Tcp(Tcp { pool: Some(pool), .. }) => pool.remove(pos),
            _ => unreachable!("checked above"),
        };
        let s = self.ifaces[i].sockets.get_mut::<tcp::Socket>(h);
        let peer = s.remote_endpoint().ok_or(Errno::ECONNABORTED)?;
        let local = s.local_endpoint().map(IpListenEndpoint::from);
        apply_tcp_opts(s, &opts, i);
        let new = self.create(family, Proto::Tcp, key);
        let tuple = (i == ETH).then(|| local.map(|l| (peer, l.port))).flatten();
        let sock = self.socks.get_mut(&new).expect("just created");
        sock.opts = opts;
        if let Kind::Tcp(t) = &mut sock.kind {
            t.conn = Some((i, h));
            t.established = true;
            t.tuple = tuple;
        }
        if let Some(k) = tuple {
            self.by_tuple.insert(k, new);
        }
        self.refill_listeners(i);
        Ok((new, peer))
    }

    /// connect (TCP). First call (`resumed == false`): starts the handshake and returns
    /// `EINPROGRESS` (or 0 when it completed at once). Later calls report the outcome:
    /// 0, `EAGAIN` while in progress, or the error.
    pub fn connect(&mut self, id: SockId, remote: IpEndpoint, resumed: bool, now: u64) -> Result<(), Errno> {
        let sock = self.sock(id)?;
        let family = sock.family;
        let Kind::Tcp(t) = &sock.kind else { return Err(Errno::EOPNOTSUPP) };
        if t.pool.is_some() {
            return Err(Errno::EISCONN);
        }
        if t.conn.is_some() {
            if t.connecting.is_some() {
                return if resumed { Err(Errno::EAGAIN) } else { Err(Errno::EALREADY) };
            }
            if resumed || t.error.is_some() {
                return self.connect_outcome(id);
            }
            return Err(Errno::EISCONN);
        }
        if let (Family::Inet, IpAddress::Ipv6(_)) = (family, remote.addr) {
            return Err(Errno::EAFNOSUPPORT);
        }
        let i = self.route(remote.addr)?;
        let local = self.autobind(id)?;
        let opts = self.sock(id)?.opts.clone();
        let h = self.new_tcp(i, &opts);
        let iface = &mut self.ifaces[i];
        let sref = iface.sockets.get_mut::<tcp::Socket>(h);
        if let Err(e) = sref.connect(iface.iface.context(), remote, local) {
            iface.sockets.remove(h);
            log::debug!("net: connect to {remote}: {e:?}");
            return Err(Errno::EADDRNOTAVAIL);
        }
        let tuple = (i == ETH).then(|| sref.local_endpoint().map(|l| (remote, l.port))).flatten();
        if let Kind::Tcp(t) = &mut self.sock_mut(id)?.kind {
            t.conn = Some((i, h));
            t.connecting = Some(now);
            t.error = None;
            t.tuple = tuple;
        }
        if let Some(k) = tuple {
            self.by_tuple.insert(k, id);
        }
        self.mark(i);
        Err(Errno::EINPROGRESS)
    }

    /// The outcome of a connect in progress: 0, `EAGAIN` or the error (taken).
    pub fn connect_outcome(&mut self, id: SockId) -> Result<(), Errno> {
        let Kind::Tcp(t) = &mut self.socks.get_mut(&id).ok_or(Errno::EBADF)?.kind else { return Err(Errno::EOPNOTSUPP) };
        if t.connecting.is_some() {
            return Err(Errno::EAGAIN);
        }
        match t.error.take() {
            Some(e) => {
                // The failed attempt leaves the socket unconnected (it may try again).
                if let Some((i, h)) = t.conn.take() {
                    self.ifaces[i].sockets.remove(h);
                }
                if let Some(k) = t.tuple.take() {
                    self.by_tuple.remove(&k);
                }
                Err(e)
            }
            None if t.conn.is_some() => Ok(()),
            None => Err(Errno::ENOTCONN),
        }
    }

    /// Whether a connect is in progress.
    pub fn connecting(&self, id: SockId) -> bool {
        matches!(self.socks.get(&id).map(|s| &s.kind), Some(Kind::Tcp(t)) if t.connecting.is_some())
    }

    /// Sends on a TCP connection: bytes queued (maybe fewer than given), `EAGAIN` when the
    /// buffer is full, `EPIPE` when the sending side is closed.
    pub fn tcp_send(&mut self, id: SockId, data: &[u8]) -> Result<usize, Errno> {
        let Kind::Tcp(t) = &mut self.socks.get_mut(&id).ok_or(Errno::EBADF)?.kind else { return Err(Errno::EOPNOTSUPP) };
        if let Some(e) = t.error.take() {
            return Err(if e == Errno::ECONNREFUSED || e == Errno::ETIMEDOUT || e == Errno::ECONNRESET { e } else { Errno::EPIPE });
        }
        if t.shut_wr {
            return Err(Errno::EPIPE);
        }
        let Some((i, h)) = t.conn else { return Err(Errno::ENOTCONN) };
        if t.connecting.is_some() {
            return Err(Errno::EAGAIN);
        }
        let s = self.ifaces[i].sockets.get_mut::<tcp::Socket>(h);
        if !s.may_send() {
            return Err(Errno::EPIPE);
        }
        if data.is_empty() {
            return Ok(0);
        }
        match s.send_slice(data) {
            Ok(0) => Err(Errno::EAGAIN),
            Ok(n) => {
                self.mark(i);
                Ok(n)
            }
            Err(_) => Err(Errno::EPIPE),
        }
    }

    /// Receives from a TCP connection: `peek` leaves the data; `waitall` wants `buf.len()`
    /// bytes (or a full receive buffer) before returning any. 0 at end of stream.
    pub fn tcp_recv(&mut self, id: SockId, buf: &mut [u8], peek: bool, waitall: bool) -> Result<usize, Errno> {
        let Kind::Tcp(t) = &mut self.socks.get_mut(&id).ok_or(Errno::EBADF)?.kind else { return Err(Errno::EOPNOTSUPP) };
        if t.shut_rd {
            return Ok(0);
        }
        let Some((i, h)) = t.conn else { return Err(Errno::ENOTCONN) };
        if t.connecting.is_some() {
            return Err(Errno::EAGAIN);
        }
        let s = self.ifaces[i].sockets.get_mut::<tcp::Socket>(h);
        let queued = s.recv_queue();
        if queued == 0 || (waitall && s.may_recv() && queued < buf.len().min(s.recv_capacity())) {
            if s.may_recv() {
                return Err(Errno::EAGAIN);
            }
            if queued == 0 {
                if t.reset && let Some(e) = t.error.take() {
                    return Err(e);
                }
                return Ok(0);
            }
        }
        if peek {
            return Ok(s.peek_slice(buf).unwrap_or(0));
        }
        let n = s.recv_slice(buf).unwrap_or(0);
        // smoltcp announces a reopened window once it has doubled: only possible when the
        // window was small, that is, the queue long. (Otherwise the window grows with the
        // next segment sent, or the stack's deadline says so.)
        if n > 0 && queued >= s.recv_capacity() / 4 {
            self.mark(i);
        }
        Ok(n)
    }

    /// [`Net::tcp_recv`] of at most `max` bytes into a buffer of the size received.
    pub fn tcp_recv_vec(&mut self, id: SockId, max: usize, peek: bool, waitall: bool) -> Result<Vec<u8>, Errno> {
        // MSG_WAITALL compares the queue with the whole request: it needs the full buffer.
        let len = if waitall { max } else { max.min(self.readable_bytes(id)?) };
        let mut buf = vec![0u8; len];
        let n = self.tcp_recv(id, &mut buf, peek, waitall)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// shutdown(2): `rd`/`wr` close the receiving/sending halves.
    pub fn shutdown(&mut self, id: SockId, rd: bool, wr: bool) -> Result<(), Errno> {
        let sock = self.socks.get_mut(&id).ok_or(Errno::EBADF)?;
        match &mut sock.kind {
            Kind::Tcp(t) => {
                if t.pool.is_some() {
                    // Shutting down a listener stops it accepting (Linux: pending ones reset).
                    if rd {
                        self.close_pool(id);
                    }
                    return Ok(());
                }
                let Some((i, h)) = t.conn else { return Err(Errno::ENOTCONN) };
                if rd {
                    t.shut_rd = true;
                }
                if wr && !t.shut_wr {
                    t.shut_wr = true;
                    self.ifaces[i].sockets.get_mut::<tcp::Socket>(h).close();
                    self.mark(i);
                }
                Ok(())
            }
            Kind::Udp(u) => {
                if u.peer.is_none() {
                    return Err(Errno::ENOTCONN);
                }
                u.shut_rd |= rd;
                u.shut_wr |= wr;
                Ok(())
            }
        }
    }

    fn close_pool(&mut self, id: SockId) {
        self.listeners.remove(&id);
        let pool = match self.socks.get_mut(&id).map(|s| &mut s.kind) {
            Some(Kind::Tcp(t)) => t.pool.take().unwrap_or_default(),
            _ => Vec::new(),
        };
        for (i, h) in pool {
            let s = self.ifaces[i].sockets.get_mut::<tcp::Socket>(h);
            if s.state() == tcp::State::Listen {
                self.ifaces[i].sockets.remove(h);
            } else {
                s.abort();
                self.orphans.push((i, h));
                self.dirty |= 1 << i;
            }
        }
    }

    /// The app closed the socket: connections finish their close in the background (or are
    /// reset with SO_LINGER 0 or unread data), listeners reset their queued connections.
    pub fn close(&mut self, id: SockId) {
        if self.is_listening(id) {
            self.close_pool(id);
        }
        let Some(sock) = self.socks.remove(&id) else { return };
        match sock.kind {
            Kind::Tcp(t) => {
                if let Some(k) = t.tuple {
                    self.by_tuple.remove(&k);
                }
                if let Some((i, h)) = t.conn {
                    let s = self.ifaces[i].sockets.get_mut::<tcp::Socket>(h);
                    if sock.opts.linger == Some(0) || s.recv_queue() > 0 || t.connecting.is_some() {
                        s.abort();
                    } else {
                        s.close();
                    }
                    self.orphans.push((i, h));
                    self.mark(i);
                }
            }
            Kind::Udp(u) => {
                self.udp_socks -= 1;
                for (i, h) in u.handles {
                    self.ifaces[i].sockets.remove(h);
                }
            }
        }
        // Loopback peers learn of the close now; Ethernet ones at the next poll.
        self.poll_loopback_only();
    }

    fn poll_loopback_only(&mut self) {
        // Delivering queued segments needs no new time: keep the last poll's.
        self.poll(None, self.last_now);
    }

    // --- UDP -----------------------------------------------------------------------------

    /// Creates the bound smoltcp sockets of a UDP socket.
    fn udp_open(&mut self, id: SockId) -> Result<(), Errno> {
        let local = self.sock(id)?.local.ok_or(Errno::EINVAL)?;
        let ifaces = self.ifaces_for(local.addr)?;
        let mut handles = Vec::new();
        for i in ifaces {
            let rx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_BUF]);
            let tx = udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; UDP_PACKETS], vec![0; UDP_BUF]);
            let mut s = udp::Socket::new(rx, tx);
            s.bind(local).map_err(|_| Errno::EINVAL)?;
            handles.push((i, self.ifaces[i].sockets.add(s)));
        }
        if let Kind::Udp(u) = &mut self.sock_mut(id)?.kind {
            u.handles = handles;
        }
        Ok(())
    }

    /// connect on UDP: sets (or with `None` dissolves) the default peer.
    pub fn udp_connect(&mut self, id: SockId, remote: Option<IpEndpoint>) -> Result<(), Errno> {
        if let Some(r) = remote {
            self.route(r.addr)?;
            self.autobind(id)?;
        }
        let Kind::Udp(u) = &mut self.sock_mut(id)?.kind else { return Err(Errno::EOPNOTSUPP) };
        u.peer = remote;
        Ok(())
    }

    /// sendto on UDP: the whole datagram or an error (`EMSGSIZE`, `EAGAIN`, `EDESTADDRREQ`).
    pub fn udp_send(&mut self, id: SockId, data: &[u8], dest: Option<IpEndpoint>) -> Result<usize, Errno> {
        if data.len() > UDP_MAX_PAYLOAD {
            return Err(Errno::EMSGSIZE);
        }
        let (peer, shut_wr) = match &self.sock(id)?.kind {
            Kind::Udp(u) => (u.peer, u.shut_wr),
            Kind::Tcp(_) => return Err(Errno::EOPNOTSUPP),
        };
        if shut_wr {
            return Err(Errno::EPIPE);
        }
        let dest = dest.or(peer).ok_or(Errno::EDESTADDRREQ)?;
        let i = self.route(dest.addr)?;
        self.autobind(id)?;
        let Kind::Udp(u) = &self.sock(id)?.kind else { unreachable!() };
        let &(_, h) = u.handles.iter().find(|&&(hi, _)| hi == i).ok_or(Errno::ENETUNREACH)?;
        let s = self.ifaces[i].sockets.get_mut::<udp::Socket>(h);
        if data.len() > s.payload_send_capacity() {
            return Err(Errno::EMSGSIZE);
        }
        match s.send_slice(data, dest) {
            Ok(()) => {
                self.mark(i);
                Ok(data.len())
            }
            Err(udp::SendError::BufferFull) => Err(Errno::EAGAIN),
            Err(udp::SendError::Unaddressable) => Err(Errno::EINVAL),
        }
    }

    /// recvfrom on UDP: copies what fits of the next datagram; returns (copied, its full
    /// length, source). `EAGAIN` when none is queued.
    pub fn udp_recv(&mut self, id: SockId, buf: &mut [u8], peek: bool) -> Result<(usize, usize, IpEndpoint), Errno> {
        let (handles, peer, shut_rd) = match &self.sock(id)?.kind {
            Kind::Udp(u) => (u.handles.clone(), u.peer, u.shut_rd),
            Kind::Tcp(_) => return Err(Errno::EOPNOTSUPP),
        };
        if shut_rd {
            return Ok((0, 0, IpEndpoint::new(IpAddress::Ipv4(Ipv4Addr::UNSPECIFIED), 0)));
        }
        for (i, h) in handles {
            let s = self.ifaces[i].sockets.get_mut::<udp::Socket>(h);
            while let Ok((data, meta)) = s.peek() {
                let from = meta.endpoint;
                // A connected socket only takes datagrams from its peer.
                if peer.is_some_and(|p| p != from) {
                    let _ = s.recv();
                    continue;
                }
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                let full = data.len();
                if !peek {
                    let _ = s.recv();
                }
                return Ok((n, full, from));
            }
        }
        Err(Errno::EAGAIN)
    }

    // --- readiness -----------------------------------------------------------------------

    /// POLLIN/POLLOUT/POLLERR/POLLHUP/POLLRDHUP of a socket, as Linux reports them.
    pub fn readiness(&self, id: SockId) -> crate::fd::Readiness {
        use crate::fd::Readiness as R;
        match self.socks.get(&id) {
            Some(sock) => readiness(&self.ifaces, sock),
            None => R::ERROR | R::HANGUP,
        }
    }

    /// The receive and send buffer sizes of a socket (SO_RCVBUF/SO_SNDBUF report them).
    pub fn buffer_sizes(&self, id: SockId) -> (usize, usize) {
        let Some(sock) = self.socks.get(&id) else { return (0, 0) };
        match &sock.kind {
            Kind::Tcp(t) => match t.conn {
                Some((i, h)) => {
                    let s = self.ifaces[i].sockets.get::<tcp::Socket>(h);
                    (s.recv_capacity(), s.send_capacity())
                }
                None => self.tcp_buf_sizes(&sock.opts),
            },
            Kind::Udp(_) => (UDP_BUF, UDP_BUF),
        }
    }

    /// The addresses of the interfaces (SIOCGIFCONF): (name, IPv4 address).
    pub fn interfaces(&self) -> Vec<(&'static str, Ipv4Addr)> {
        let mut v = vec![("lo", Ipv4Addr::LOCALHOST)];
        if let Some(l) = self.lease {
            v.push(("eth0", l.addr));
        }
        v
    }

    /// Number of live app sockets (tests).
    pub fn socket_count(&self) -> usize {
        self.socks.len()
    }
}

/// Recomputes a socket's signatures: its key and the direction of the change, if any.
fn refresh(ifaces: &[Iface], sock: &mut Sock, now: u64) -> Option<(WaitKey, crate::fd::Readiness)> {
    use crate::fd::Readiness as R;
    update_tcp_state(ifaces, sock, now);
    let sig = signature(ifaces, sock);
    let mut events = R::empty();
    if sock.signature.0 != sig.0 {
        events |= R::READABLE;
    }
    if sock.signature.1 != sig.1 {
        events |= R::WRITABLE;
    }
    sock.signature = sig;
    (!events.is_empty()).then_some((sock.key, events))
}

/// Notes connection outcomes: established, refused, reset, timed out.
fn update_tcp_state(ifaces: &[Iface], sock: &mut Sock, now: u64) {
    let Kind::Tcp(t) = &mut sock.kind else { return };
    let Some((i, h)) = t.conn else { return };
    let state = ifaces[i].sockets.get::<tcp::Socket>(h).state();
    if let Some(started) = t.connecting {
        match state {
            tcp::State::SynSent | tcp::State::SynReceived => {}
            tcp::State::Closed => {
                t.connecting = None;
                let timed_out = now.saturating_sub(started) >= CONNECT_TIMEOUT_MS * 1_000_000;
                t.error = Some(if timed_out { Errno::ETIMEDOUT } else { Errno::ECONNREFUSED });
                t.reset = true;
            }
            _ => {
                t.connecting = None;
                t.established = true;
            }
        }
    } else if t.established && state == tcp::State::Closed && !t.reset && !t.shut_wr {
        // Closed without our FIN going out: the peer reset the connection.
        t.reset = true;
        t.error = Some(Errno::ECONNRESET);
    }
}

/// (input, output) signatures: what readers and what writers of the socket would see.
fn signature(ifaces: &[Iface], sock: &Sock) -> (u64, u64) {
    use crate::fd::Readiness as R;
    let r = readiness(ifaces, sock);
    let input = u64::from((r & !R::WRITABLE).bits());
    let output = u64::from((r & (R::WRITABLE | R::ERROR | R::HANGUP)).bits());
    let (a, b) = match &sock.kind {
        Kind::Tcp(t) => match (t.conn, &t.pool) {
            (Some((i, h)), _) => {
                let s = ifaces[i].sockets.get::<tcp::Socket>(h);
                (s.recv_queue() as u64 | (s.state() as u64) << 40, s.send_queue() as u64 | (s.state() as u64) << 40)
            }
            (None, Some(pool)) => (acceptable(ifaces, pool) as u64, 0),
            _ => (0, 0),
        },
        Kind::Udp(u) => u.handles.iter().fold((0, 0), |(a, b), &(i, h)| {
            let s = ifaces[i].sockets.get::<udp::Socket>(h);
            (a + s.recv_queue() as u64, b + s.send_queue() as u64)
        }),
    };
    (input ^ a.rotate_left(8), output ^ b.rotate_left(8))
}

/// Sockets in `pool` that hold a connection accept() can return.
fn acceptable(ifaces: &[Iface], pool: &[(usize, SocketHandle)]) -> usize {
    pool.iter().filter(|&&(i, h)| acceptable_state(ifaces[i].sockets.get::<tcp::Socket>(h).state())).count()
}

/// POLLIN/POLLOUT/POLLERR/POLLHUP/POLLRDHUP of a socket, as Linux reports them.
fn readiness(ifaces: &[Iface], sock: &Sock) -> crate::fd::Readiness {
    use crate::fd::Readiness as R;
    match &sock.kind {
        Kind::Tcp(t) => {
            let mut r = R::empty();
            if t.error.is_some() {
                r |= R::ERROR;
            }
            if let Some(pool) = &t.pool {
                if acceptable(ifaces, pool) > 0 {
                    r |= R::READABLE;
                }
                return r;
            }
            let Some((i, h)) = t.conn else {
                // Never connected: Linux says POLLOUT|POLLHUP.
                return r | R::WRITABLE | R::HANGUP;
            };
            let s = ifaces[i].sockets.get::<tcp::Socket>(h);
            if t.connecting.is_some() {
                return r;
            }
            if s.can_recv() || !s.may_recv() || t.shut_rd {
                r |= R::READABLE;
            }
            if !s.may_recv() || t.shut_rd {
                r |= R::RDHUP;
            }
            if (s.can_send() && s.send_capacity() - s.send_queue() >= s.send_capacity() / 4) || !s.may_send() || t.shut_wr {
                r |= R::WRITABLE;
            }
            if s.state() == tcp::State::Closed || s.state() == tcp::State::TimeWait || (t.shut_wr && !s.may_recv()) {
                r |= R::HANGUP;
            }
            r
        }
        Kind::Udp(u) => {
            let mut r = R::WRITABLE;
            if u.handles.iter().any(|&(i, h)| ifaces[i].sockets.get::<udp::Socket>(h).can_recv()) || u.shut_rd {
                r |= R::READABLE;
            }
            r
        }
    }
}

/// A pool socket holding a connection accept() can return.
fn acceptable_state(state: tcp::State) -> bool {
    !matches!(state, tcp::State::Listen | tcp::State::SynReceived | tcp::State::SynSent | tcp::State::Closed)
}

fn apply_tcp_opts(s: &mut tcp::Socket<'static>, opts: &SockOpts, iface: usize) {
    s.set_nagle_enabled(!opts.nodelay);
    // Loopback has no wire to save: acknowledge at once.
    if iface == LO {
        s.set_ack_delay(None);
    }
    s.set_keep_alive(opts.keepalive.then(|| Duration::from_secs(u64::from(opts.keepintvl_s.max(1)))));
}

/// Which IP versions a bound address takes a port in (IPv4, IPv6), as Linux sees a bind
/// conflict: an AF_INET wildcard takes IPv4 only, an AF_INET6 wildcard both unless
/// IPV6_V6ONLY is set, a specific address only its own version. So redis's `0.0.0.0:6379` and
/// `[::]:6379` with IPV6_V6ONLY coexist.
fn address_families(family: Family, v6only: bool, addr: Option<IpAddress>) -> (bool, bool) {
    match (addr, family) {
        (Some(IpAddress::Ipv4(_)), _) => (true, false),
        (Some(IpAddress::Ipv6(_)), _) => (false, true),
        (None, Family::Inet) => (true, false),
        (None, Family::Inet6) => (!v6only, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_buffers_follow_the_memory() {
        let kib = |m: u64| TcpBuffers::for_memory(m << 20).size / 1024;
        assert_eq!(kib(16), 32, "never below TCP_BUF_DEFAULT");
        assert_eq!(kib(32), 32);
        assert_eq!(kib(64), 64);
        assert_eq!(kib(100), 100);
        assert_eq!(TcpBuffers::for_memory(250_000_000).size, 59 << 12, "whole pages");
        assert_eq!(kib(128), 128);
        assert_eq!(kib(256), 256);
        assert_eq!(kib(8192), 256, "at most TCP_BUF_LARGE");
        assert_eq!(TcpBuffers::for_memory(256 << 20).budget, 64 << 20, "a quarter of the memory");
        assert_eq!(TcpBuffers::default(), TcpBuffers { size: TCP_BUF_DEFAULT, budget: 0 });
    }

    #[test]
    fn net_config_from_the_command_line() {
        let c = NetConfig::parse("console=x kiln.ip=10.0.2.15/24 kiln.gw=10.0.2.2 kiln.ip6=fec0::15/64 kiln.gw6=fec0::2 kiln.dns=10.0.2.3").unwrap();
        assert_eq!(c.ip, Some((Ipv4Addr::new(10, 0, 2, 15), 24)));
        assert_eq!(c.gateway, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(c.dns, Some(Ipv4Addr::new(10, 0, 2, 3)));
        assert_eq!(c.ip6, Some(("fec0::15".parse().unwrap(), 64)));
        assert_eq!(c.gateway6, Some("fec0::2".parse().unwrap()));
        assert_eq!(NetConfig::parse("quiet").unwrap(), NetConfig::default());
        assert!(NetConfig::parse("kiln.ip6=fec0::15/129").unwrap_err().contains("bad prefix"));
        assert!(NetConfig::parse("kiln.ip6=10.0.2.15").unwrap_err().contains("not an IPv6 address"));
        assert!(NetConfig::parse("kiln.ip=fec0::1").unwrap_err().contains("not an IPv4 address"));
    }
}

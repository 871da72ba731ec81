//! The platform's Ethernet device as a smoltcp [`Device`]: frames go out through
//! [`Platform::net_transmit`] and come in through [`Platform::net_receive`], both in the
//! device's own buffers (smoltcp reads a received frame where the device wrote it and builds
//! an outgoing one where the device will read it: no copies, no allocations). The stack calls
//! [`Platform::net_flush`] once a poll has queued its frames.

use alloc::vec;
use alloc::vec::Vec;
use core::cell::{Cell, RefCell};

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpAddress, IpEndpoint, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket};

use crate::platform::Platform;

/// A borrowed view of the platform's network device for one poll.
pub struct PlatformDevice<'p> {
    platform: &'p dyn Platform,
    /// Frames of [`FULL_FRAME`] bytes or more sent through this view.
    full_frames: Cell<u32>,
    /// Where received frames are noted, if the stack asks.
    log: Option<&'p RefCell<RxLog>>,
}

/// What came in during a poll, for the stack to re-examine only the sockets concerned.
#[derive(Debug, Default)]
pub struct RxLog {
    /// TCP segments without SYN: (source, destination port).
    pub segments: Vec<(IpEndpoint, u16)>,
    /// Something else came in (a SYN, a datagram, ARP, ICMP...): any socket may have changed.
    pub other: bool,
    /// The last frame could have changed a listening socket's pool (a SYN or a reset, or not
    /// TCP).
    pub last_control: bool,
}

impl RxLog {
    fn note(&mut self, frame: &[u8]) {
        match tcp_segment(frame) {
            Some((from, port, flags)) => {
                if flags.syn {
                    self.other = true;
                } else {
                    self.segments.push((from, port));
                }
                self.last_control = flags.syn || flags.rst;
            }
            None => {
                self.other = true;
                self.last_control = true;
            }
        }
    }
}

struct Flags {
    syn: bool,
    rst: bool,
}

/// The source and destination port of a TCP segment in an Ethernet frame, with its flags;
/// None for anything else (and for IPv4 fragments or IPv6 extension headers).
fn tcp_segment(frame: &[u8]) -> Option<(IpEndpoint, u16, Flags)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (src, payload) = match eth.ethertype() {
        EthernetProtocol::Ipv4 => {
            let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp || ip.more_frags() || ip.frag_offset() != 0 {
                return None;
            }
            (IpAddress::Ipv4(ip.src_addr()), ip.payload())
        }
        EthernetProtocol::Ipv6 => {
            let ip = Ipv6Packet::new_checked(eth.payload()).ok()?;
            if ip.next_header() != IpProtocol::Tcp {
                return None;
            }
            (IpAddress::Ipv6(ip.src_addr()), ip.payload())
        }
        _ => return None,
    };
    let tcp = TcpPacket::new_checked(payload).ok()?;
    Some((IpEndpoint::new(src, tcp.src_port()), tcp.dst_port(), Flags { syn: tcp.syn(), rst: tcp.rst() }))
}

/// A frame this long carries a full TCP segment: its socket may have more to send.
const FULL_FRAME: usize = 1024;

impl<'p> PlatformDevice<'p> {
    pub fn new(platform: &'p dyn Platform) -> Self {
        PlatformDevice { platform, full_frames: Cell::new(0), log: None }
    }

    /// A view that notes each received frame in `log`.
    pub fn logging(platform: &'p dyn Platform, log: &'p RefCell<RxLog>) -> Self {
        PlatformDevice { platform, full_frames: Cell::new(0), log: Some(log) }
    }

    /// How many frames of a full segment's size were sent through this view: after a round
    /// of sending with none, no socket has more queued data it could send now (a socket
    /// sends one segment per round, and a shorter one empties what it may send).
    pub fn full_frames(&self) -> u32 {
        self.full_frames.get()
    }
}

/// A frame waiting in the device: taken when smoltcp consumes the token.
pub struct RxToken<'p> {
    platform: &'p dyn Platform,
    log: Option<&'p RefCell<RxLog>>,
}

/// Permission to send one frame.
pub struct TxToken<'p> {
    platform: &'p dyn Platform,
    full_frames: &'p Cell<u32>,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let mut f = Some(f);
        let mut r = None;
        self.platform.net_receive(&mut |frame| {
            if let Some(log) = self.log {
                log.borrow_mut().note(frame);
            }
            r = f.take().map(|f| f(frame));
        });
        match (r, f) {
            (Some(r), _) => r,
            // The frame announced by `net_rx_ready` is gone: smoltcp skips an empty frame.
            (None, Some(f)) => f(&[]),
            (None, None) => unreachable!("the closure ran or it did not"),
        }
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        if len >= FULL_FRAME {
            self.full_frames.set(self.full_frames.get() + 1);
        }
        let mut f = Some(f);
        let mut r = None;
        if let Err(e) = self.platform.net_transmit(len, &mut |buf| r = f.take().map(|f| f(buf))) {
            // The stack retransmits what matters (TCP); a lost datagram is what UDP allows.
            log::debug!("net: frame of {len} bytes dropped: {e:?}");
        }
        match (r, f) {
            (Some(r), _) => r,
            // Not sent: smoltcp still builds it (and believes it sent), into a scratch buffer.
            (None, Some(f)) => f(&mut vec![0u8; len]),
            (None, None) => unreachable!("the closure ran or it did not"),
        }
    }
}

impl Device for PlatformDevice<'_> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken<'_>, TxToken<'_>)> {
        if !self.platform.net_rx_ready() {
            return None;
        }
        Some((RxToken { platform: self.platform, log: self.log }, TxToken { platform: self.platform, full_frames: &self.full_frames }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'_>> {
        // A full queue stops the poll's egress (smoltcp keeps the data) instead of losing frames.
        self.platform.net_can_transmit().then_some(TxToken { platform: self.platform, full_frames: &self.full_frames })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.platform.net_frame_max();
        caps.max_burst_size = Some(32);
        caps
    }
}

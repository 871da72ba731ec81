//! Socket addresses as Linux lays them out in app memory (`sockaddr_in`, `sockaddr_in6`,
//! `sockaddr_un`), decoded into [`SockAddr`] and encoded back.
//!
//! IPv4 peers of an IPv6 socket appear as v4-mapped addresses (`::ffff:a.b.c.d`), as on a
//! dual-stack Linux socket; [`to_ip`] turns them back into IPv4 for the stack.

use alloc::vec::Vec;
use core::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use crate::errno::Errno;

pub const AF_UNSPEC: u16 = 0;
pub const AF_UNIX: u16 = 1;
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Size of `sockaddr_in`.
pub const SOCKADDR_IN_LEN: usize = 16;
/// Size of `sockaddr_in6`.
pub const SOCKADDR_IN6_LEN: usize = 28;
/// Size of `sockaddr_un`'s path field.
pub const UNIX_PATH_MAX: usize = 108;

/// An address family of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet,
    Inet6,
}

/// A name a Unix socket is bound or connected to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum UnixName {
    /// Not bound (`sizeof(sa_family_t)` bytes).
    Unnamed,
    /// A filesystem path (without the NUL).
    Path(Vec<u8>),
    /// The abstract namespace: `sun_path[0] == 0`, the rest of the given length.
    Abstract(Vec<u8>),
}

/// A decoded socket address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    /// `AF_UNSPEC` (connect: dissolve a datagram socket's association).
    Unspec,
    /// An IPv4 or IPv6 address and port.
    Inet { family: Family, addr: IpAddress, port: u16 },
    Unix(UnixName),
}

impl SockAddr {
    /// Decodes `bytes` (what the app passed, `addrlen` long).
    pub fn decode(bytes: &[u8]) -> Result<SockAddr, Errno> {
        if bytes.len() < 2 {
            return Err(Errno::EINVAL);
        }
        let family = u16::from_le_bytes([bytes[0], bytes[1]]);
        match family {
            AF_UNSPEC => Ok(SockAddr::Unspec),
            AF_INET => {
                if bytes.len() < SOCKADDR_IN_LEN {
                    return Err(Errno::EINVAL);
                }
                let port = u16::from_be_bytes([bytes[2], bytes[3]]);
                let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
                Ok(SockAddr::Inet { family: Family::Inet, addr: IpAddress::Ipv4(ip), port })
            }
            AF_INET6 => {
                if bytes.len() < 24 {
                    return Err(Errno::EINVAL);
                }
                let port = u16::from_be_bytes([bytes[2], bytes[3]]);
                let mut a = [0u8; 16];
                a.copy_from_slice(&bytes[8..24]);
                Ok(SockAddr::Inet { family: Family::Inet6, addr: IpAddress::Ipv6(Ipv6Addr::from(a)), port })
            }
            AF_UNIX => {
                let path = &bytes[2..bytes.len().min(2 + UNIX_PATH_MAX)];
                if path.is_empty() {
                    return Ok(SockAddr::Unix(UnixName::Unnamed));
                }
                if path[0] == 0 {
                    return Ok(SockAddr::Unix(UnixName::Abstract(path[1..].to_vec())));
                }
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                Ok(SockAddr::Unix(UnixName::Path(path[..end].to_vec())))
            }
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// The bytes Linux writes for this address (the length is the "true" address length).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            SockAddr::Unspec => AF_UNSPEC.to_le_bytes().to_vec(),
            SockAddr::Inet { family: Family::Inet, addr, port } => {
                let mut b = alloc::vec![0u8; SOCKADDR_IN_LEN];
                b[0..2].copy_from_slice(&AF_INET.to_le_bytes());
                b[2..4].copy_from_slice(&port.to_be_bytes());
                let v4 = match addr {
                    IpAddress::Ipv4(a) => *a,
                    IpAddress::Ipv6(a) => a.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
                };
                b[4..8].copy_from_slice(&v4.octets());
                b
            }
            SockAddr::Inet { family: Family::Inet6, addr, port } => {
                let mut b = alloc::vec![0u8; SOCKADDR_IN6_LEN];
                b[0..2].copy_from_slice(&AF_INET6.to_le_bytes());
                b[2..4].copy_from_slice(&port.to_be_bytes());
                let v6 = match addr {
                    IpAddress::Ipv4(a) if a.is_unspecified() => Ipv6Addr::UNSPECIFIED,
                    IpAddress::Ipv4(a) => a.to_ipv6_mapped(),
                    IpAddress::Ipv6(a) => *a,
                };
                b[8..24].copy_from_slice(&v6.octets());
                b
            }
            SockAddr::Unix(name) => {
                let mut b = AF_UNIX.to_le_bytes().to_vec();
                match name {
                    UnixName::Unnamed => {}
                    UnixName::Path(p) => {
                        b.extend_from_slice(p);
                        b.push(0);
                    }
                    UnixName::Abstract(p) => {
                        b.push(0);
                        b.extend_from_slice(p);
                    }
                }
                b
            }
        }
    }

    /// An inet address for `family` from a stack endpoint.
    pub fn inet(family: Family, ep: IpEndpoint) -> SockAddr {
        SockAddr::Inet { family, addr: ep.addr, port: ep.port }
    }

    /// An inet address for `family` from a listen endpoint (unspecified address: `0.0.0.0`/`::`).
    pub fn inet_listen(family: Family, ep: IpListenEndpoint) -> SockAddr {
        let addr = ep.addr.unwrap_or(match family {
            Family::Inet => IpAddress::Ipv4(Ipv4Addr::UNSPECIFIED),
            Family::Inet6 => IpAddress::Ipv6(Ipv6Addr::UNSPECIFIED),
        });
        SockAddr::Inet { family, addr, port: ep.port }
    }
}

/// The address the stack uses for `addr` given by an app socket: v4-mapped IPv6 addresses
/// become IPv4. `None` for an unspecified address (any).
pub fn to_ip(addr: IpAddress) -> Option<IpAddress> {
    match addr {
        IpAddress::Ipv4(a) if a.is_unspecified() => None,
        IpAddress::Ipv6(a) if a.is_unspecified() => None,
        IpAddress::Ipv6(a) => Some(a.to_ipv4_mapped().map_or(IpAddress::Ipv6(a), IpAddress::Ipv4)),
        a => Some(a),
    }
}

/// Whether `addr` is a loopback address (127.0.0.0/8 or ::1).
pub fn is_loopback(addr: IpAddress) -> bool {
    match addr {
        IpAddress::Ipv4(a) => a.is_loopback(),
        IpAddress::Ipv6(a) => a.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_round_trip() {
        let a = SockAddr::Inet { family: Family::Inet, addr: IpAddress::Ipv4(Ipv4Addr::new(127, 0, 0, 1)), port: 8080 };
        let b = a.encode();
        assert_eq!(b.len(), 16);
        assert_eq!(&b[..8], &[2, 0, 0x1f, 0x90, 127, 0, 0, 1]);
        assert_eq!(SockAddr::decode(&b).unwrap(), a);
    }

    #[test]
    fn inet6_maps_v4() {
        let a = SockAddr::Inet { family: Family::Inet6, addr: IpAddress::Ipv4(Ipv4Addr::new(10, 0, 2, 2)), port: 1 };
        let b = a.encode();
        assert_eq!(b.len(), 28);
        let back = SockAddr::decode(&b).unwrap();
        let SockAddr::Inet { addr, .. } = back else { panic!() };
        assert_eq!(to_ip(addr), Some(IpAddress::Ipv4(Ipv4Addr::new(10, 0, 2, 2))));
        assert_eq!(to_ip(IpAddress::Ipv6(Ipv6Addr::UNSPECIFIED)), None);
    }

    #[test]
    fn unix_names() {
        let mut b = AF_UNIX.to_le_bytes().to_vec();
        b.extend_from_slice(b"/tmp/s\0junk");
        assert_eq!(SockAddr::decode(&b).unwrap(), SockAddr::Unix(UnixName::Path(b"/tmp/s".to_vec())));
        let mut b = AF_UNIX.to_le_bytes().to_vec();
        b.extend_from_slice(b"\0abs");
        assert_eq!(SockAddr::decode(&b).unwrap(), SockAddr::Unix(UnixName::Abstract(b"abs".to_vec())));
        assert_eq!(SockAddr::Unix(UnixName::Abstract(b"abs".to_vec())).encode().len(), 6);
        assert_eq!(SockAddr::decode(&[1]), Err(Errno::EINVAL));
        assert_eq!(SockAddr::decode(&[99, 0, 0, 0]), Err(Errno::EAFNOSUPPORT));
    }
}

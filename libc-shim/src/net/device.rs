//! The platform's Ethernet device as a smoltcp [`Device`]: frames go out through
//! [`Platform::net_transmit`] and come in through [`Platform::net_receive`].

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::platform::Platform;

/// A borrowed view of the platform's network device for one poll.
pub struct PlatformDevice<'p> {
    platform: &'p dyn Platform,
}

impl<'p> PlatformDevice<'p> {
    pub fn new(platform: &'p dyn Platform) -> Self {
        PlatformDevice { platform }
    }
}

/// A received frame.
pub struct RxToken {
    frame: Vec<u8>,
}

/// Permission to send one frame.
pub struct TxToken<'p> {
    platform: &'p dyn Platform,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.frame)
    }
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        if let Err(e) = self.platform.net_transmit(&frame) {
            // The stack retransmits what matters (TCP); a lost datagram is what UDP allows.
            log::debug!("net: frame of {len} bytes dropped: {e:?}");
        }
        r
    }
}

impl<'p> Device for PlatformDevice<'p> {
    type RxToken<'a>
        = RxToken
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'p>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(RxToken, TxToken<'p>)> {
        let mut frame = vec![0u8; self.platform.net_frame_max()];
        let n = self.platform.net_receive(&mut frame)?;
        frame.truncate(n);
        Some((RxToken { frame }, TxToken { platform: self.platform }))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<TxToken<'p>> {
        Some(TxToken { platform: self.platform })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.platform.net_frame_max();
        caps.max_burst_size = Some(32);
        caps
    }
}

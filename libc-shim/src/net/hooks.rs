//! What the kernel calls on the process for networking: configuration from the command
//! line, polling on device interrupts and at the stack's deadlines.

use alloc::string::String;

use super::stack::NetConfig;
use crate::platform::Platform;
use crate::process::Process;

/// Where the resolver configuration goes when DHCP or `kiln.dns=` names a server.
const RESOLV_CONF: &[u8] = b"/etc/resolv.conf";

impl Process {
    /// Takes the network settings of the kernel command line (`kiln.ip=ADDR/PREFIX`,
    /// `kiln.gw=ADDR`, `kiln.dns=ADDR`); without `kiln.ip` the Ethernet interface uses DHCP.
    /// Call before the app runs.
    pub fn net_configure(&mut self, cmdline: &str) -> Result<(), String> {
        let config = NetConfig::parse(cmdline)?;
        self.net.set_config(config);
        Ok(())
    }

    /// Runs the network stack: the kernel calls this when the network device interrupts and
    /// when [`Process::net_poll_at`] is due (which the stack remembers). Threads whose sockets changed are listed in
    /// [`Process::take_woken`].
    pub fn net_poll<P: Platform>(&mut self, platform: &P, now: u64) {
        self.run_net(platform, now, false);
    }

    /// [`Process::net_poll`] that runs every interface and looks at every socket whether or
    /// not the stack's deadline has come: for the kernel's loops that wait on the network
    /// (the DHCP lease at boot, unacknowledged data at exit), which do not ask
    /// [`Process::net_poll_at`] first.
    pub fn net_poll_everything<P: Platform>(&mut self, platform: &P, now: u64) {
        self.run_net(platform, now, true);
    }

    fn run_net<P: Platform>(&mut self, platform: &P, now: u64, everything: bool) {
        if self.net.started().is_none() && platform.net_mac().is_none() {
            return;
        }
        let stack = self.net.stack(platform).clone();
        let lease = {
            let mut net = stack.lock();
            // When the stack's deadline has come, timers may have changed sockets without a
            // packet: every interface runs and every socket is looked at. Otherwise the device
            // interrupted: what arrived is taken in, as a socket call does.
            if everything || net.timers_due(now) {
                net.poll_all(Some(platform), now);
            } else {
                net.poll(Some(platform), now);
            }
            net.take_lease_change().then(|| net.lease()).flatten()
        };
        if let Some(l) = lease
            && let Some(dns) = l.dns
        {
            self.write_resolv_conf(platform, &alloc::format!("nameserver {dns}\n"));
        }
        for (key, events) in self.net.take_pending() {
            self.notify_for(key, events);
        }
    }

    /// When the network stack next needs [`Process::net_poll`] by itself (monotonic ns).
    pub fn net_poll_at(&mut self, now: u64) -> Option<u64> {
        self.net.started()?.lock().poll_at(now)
    }

    /// Whether TCP data sent to other machines is still waiting for its acknowledgement: at
    /// exit the kernel keeps the network running a little while for it, as Linux keeps
    /// sending after a process ends.
    pub fn net_unsent(&self) -> bool {
        self.net.started().is_some_and(|n| n.lock().unsent_on_ethernet())
    }

    /// The Ethernet interface's IPv4 address and prefix, once configured (for the kernel's
    /// log line).
    pub fn net_address(&self) -> Option<(core::net::Ipv4Addr, u8)> {
        let l = self.net.started()?.lock().lease()?;
        Some((l.addr, l.prefix))
    }

    fn write_resolv_conf<P: Platform>(&mut self, platform: &P, text: &str) {
        use crate::fs::{Filesystem, NewNode, Owner, SetAttr, Timestamp};
        let t = Timestamp::from_ns(platform.realtime_ns());
        let fs = &self.fs.rootfs;
        let r = fs
            .ensure(RESOLV_CONF, NewNode::Regular, Owner { perm: 0o644, uid: 0, gid: 0 })
            .and_then(|ino| {
                fs.set_len(ino, 0)?;
                fs.write_at(ino, 0, text.as_bytes())?;
                fs.set_attr(ino, &SetAttr { mtime: Some(t), ctime: Some(t), ..Default::default() })
            });
        if let Err(e) = r {
            log::warn!("net: cannot write /etc/resolv.conf: {e:?}");
        }
    }
}

//! Running an image under QEMU: choosing the accelerator, building the command line, and
//! watching the VM (console passed through, log channel read, timeout enforced).
//!
//! The VM's channels to the host:
//! - COM1 (`-serial stdio`): the app's console, stdin and stdout, straight to bake's.
//! - COM2 (isa-serial at 0x2f8, a Unix socket): the app's stderr and Kiln's reports (panic,
//!   crash), relayed to bake's stderr byte for byte.
//! - debugcon (port 0xe9, a Unix socket): the kernel's log and control records, see
//!   [`crate::protocol`].

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::Fail;
use crate::exit_codes;
use crate::protocol::{self, QemuEnd, Record, Reported};

/// The QEMU binary; `KILN_QEMU` overrides it.
pub const QEMU: &str = "qemu-system-x86_64";

/// `--accel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM where it works well, TCG elsewhere.
    Auto,
    Kvm,
    Tcg,
}

/// The accelerator QEMU is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// `--machine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Machine {
    /// Minimal machine, no firmware: boots fastest.
    Microvm,
    /// i440FX PC with SeaBIOS.
    Pc,
    /// Q35 PC with SeaBIOS.
    Q35,
}

/// What the host offers for KVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvmProbe {
    /// `/dev/kvm` opens read-write.
    pub device_usable: bool,
    /// `kvm_intel` or `kvm_amd` is loaded.
    pub hardware_module: bool,
    /// `kvm_pvm` is loaded: KVM is the PVM hypervisor, which runs the guest kernel in user
    /// mode and emulates its ring-0 code; slower than TCG for a kernel like Kiln's.
    pub pvm: bool,
}

impl KvmProbe {
    pub fn probe() -> KvmProbe {
        let module = |name: &str| Path::new("/sys/module").join(name).exists();
        KvmProbe {
            device_usable: OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .is_ok(),
            hardware_module: module("kvm_intel") || module("kvm_amd"),
            pvm: module("kvm_pvm"),
        }
    }
}

/// Decides the accelerator, with the reason shown under `-v`.
pub fn choose_accel(choice: AccelChoice, probe: KvmProbe) -> (Accel, &'static str) {
    match choice {
        AccelChoice::Kvm => (Accel::Kvm, "asked for with --accel kvm"),
        AccelChoice::Tcg => (Accel::Tcg, "asked for with --accel tcg"),
        AccelChoice::Auto if !probe.device_usable => (
            Accel::Tcg,
            "/dev/kvm is missing or cannot be opened read-write",
        ),
        AccelChoice::Auto if probe.pvm => (
            Accel::Tcg,
            "/dev/kvm is a PVM hypervisor (kvm_pvm), which emulates ring-0 code",
        ),
        AccelChoice::Auto if !probe.hardware_module => {
            (Accel::Tcg, "neither kvm_intel nor kvm_amd is loaded")
        }
        AccelChoice::Auto => (Accel::Kvm, "/dev/kvm is usable and hardware KVM is loaded"),
    }
}

/// Everything the QEMU command line depends on.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub image: PathBuf,
    pub mem_mib: u64,
    pub accel: Accel,
    pub machine: Machine,
    /// Kernel log level: 0 warn, 1 info, 2 or more debug.
    pub verbosity: u8,
    /// bake's stdin is a terminal: the app gets it.
    pub interactive: bool,
    /// The log channel's socket.
    pub log_socket: PathBuf,
    /// The socket of the second serial port, which carries the app's stderr.
    pub stderr_socket: PathBuf,
    /// The socket of a third serial port that carries bake's stdin when it is a pipe or a file
    /// (see [`relay_stdin`]); `None`: the app's stdin is empty (or the terminal, interactive).
    pub stdin_socket: Option<PathBuf>,
    /// The network device and its backend; `None`: no network device.
    pub network: Option<Network>,
    /// Disk images attached as virtio-blk (serial `volN`), mounted by the kernel.
    pub volumes: Vec<crate::volume::VolumeArg>,
}

/// `-p HOST_PORT:GUEST_PORT[/udp]`: a host port on 127.0.0.1 forwarded to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMap {
    pub host: u16,
    pub guest: u16,
    pub udp: bool,
}

/// Parses `-p`'s value.
pub fn parse_port_map(s: &str) -> Result<PortMap, String> {
    let (ports, udp) = match s.rsplit_once('/') {
        Some((p, "udp")) => (p, true),
        Some((p, "tcp")) => (p, false),
        Some((_, proto)) => return Err(format!("unknown protocol {proto:?}: use tcp or udp")),
        None => (s, false),
    };
    let (host, guest) = ports
        .split_once(':')
        .ok_or_else(|| "expected HOST_PORT:GUEST_PORT[/udp], e.g. 8080:80".to_string())?;
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{p:?} is not a port (1-65535)"))
    };
    Ok(PortMap {
        host: port(host)?,
        guest: port(guest)?,
        udp,
    })
}

/// `--net`: the network backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetBackend {
    /// QEMU user networking (slirp): the guest is 10.0.2.15, the host 10.0.2.2.
    User,
    /// A host tap device (set up by the user, e.g. with `ip tuntap add`).
    Tap(String),
}

/// Parses `--net`'s value: `user` or `tap:NAME`.
pub fn parse_net(s: &str) -> Result<NetBackend, String> {
    match s.split_once(':') {
        None if s == "user" => Ok(NetBackend::User),
        Some(("tap", name)) if !name.is_empty() && !name.contains(',') => {
            Ok(NetBackend::Tap(name.to_string()))
        }
        _ => Err("expected user or tap:NAME".to_string()),
    }
}

/// Parses `--ip ADDR/PREFIX` (IPv4).
pub fn parse_ip_prefix(s: &str) -> Result<String, String> {
    let (addr, prefix) = s
        .split_once('/')
        .ok_or_else(|| "expected ADDR/PREFIX, e.g. 10.0.2.15/24".to_string())?;
    addr.parse::<std::net::Ipv4Addr>()
        .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
    match prefix.parse::<u8>() {
        Ok(p) if p <= 32 => Ok(s.to_string()),
        _ => Err(format!("{prefix:?} is not a prefix length (0-32)")),
    }
}

/// Parses `--gateway ADDR` (IPv4).
pub fn parse_ipv4(s: &str) -> Result<String, String> {
    s.parse::<std::net::Ipv4Addr>()
        .map(|_| s.to_string())
        .map_err(|_| format!("{s:?} is not an IPv4 address"))
}

/// The VM's network: backend, forwarded ports and a static address (else DHCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub backend: NetBackend,
    pub ports: Vec<PortMap>,
    /// `ADDR/PREFIX`.
    pub ip: Option<String>,
    pub gateway: Option<String>,
}

impl Network {
    /// QEMU's `-netdev` and `-device` arguments.
    pub fn qemu_args(&self, machine: Machine) -> Vec<String> {
        let netdev = match &self.backend {
            NetBackend::User => {
                let mut s = String::from("user,id=n0");
                for p in &self.ports {
                    let proto = if p.udp { "udp" } else { "tcp" };
                    s.push_str(&format!(",hostfwd={proto}:127.0.0.1:{}-:{}", p.host, p.guest));
                }
                s
            }
            NetBackend::Tap(name) => format!("tap,id=n0,ifname={name},script=no,downscript=no"),
        };
        let device = match machine {
            Machine::Microvm => "virtio-net-device,netdev=n0",
            Machine::Pc | Machine::Q35 => "virtio-net-pci,netdev=n0,disable-legacy=on,romfile=",
        };
        vec!["-netdev".into(), netdev, "-device".into(), device.into()]
    }

    /// The kernel command line words for a static address.
    pub fn cmdline(&self) -> String {
        let mut s = String::new();
        if let Some(ip) = &self.ip {
            s.push_str(&format!(" kiln.ip={ip}"));
        }
        if let Some(gw) = &self.gateway {
            s.push_str(&format!(" kiln.gw={gw}"));
        }
        if self.backend == NetBackend::User {
            // QEMU's user networking also serves IPv6: prefix fec0::/64, the host at fec0::2.
            s.push_str(" kiln.ip6=fec0::15/64 kiln.gw6=fec0::2");
        }
        s
    }
}

/// The kernel command line, with one `kiln.volume=volN:GUEST_PATH[:ro]` per volume.
pub fn kernel_cmdline_with_volumes(config: &VmConfig) -> String {
    let mut cmdline = kernel_cmdline(config.verbosity, config.interactive);
    if config.stdin_socket.is_some() {
        cmdline.push_str(" kiln.stdin=pipe");
    }
    for (i, v) in config.volumes.iter().enumerate() {
        cmdline.push_str(&format!(
            " kiln.volume=vol{i}:{}{}",
            v.guest,
            if v.read_only { ":ro" } else { "" }
        ));
    }
    cmdline
}

/// QEMU's `-drive` and `-device` arguments for the volumes: virtio-mmio devices on microvm,
/// modern-only virtio-pci on pc and q35.
fn volume_args(config: &VmConfig) -> Vec<OsString> {
    let mut out = Vec::new();
    for (i, v) in config.volumes.iter().enumerate() {
        // QEMU's option syntax doubles a comma inside a value.
        let file = v.image.to_string_lossy().replace(',', ",,");
        out.push("-drive".into());
        out.push(
            format!(
                "file={file},if=none,id=vol{i},format=raw{}",
                if v.read_only { ",readonly=on" } else { "" }
            )
            .into(),
        );
        out.push("-device".into());
        out.push(
            match config.machine {
                Machine::Microvm => format!("virtio-blk-device,drive=vol{i},serial=vol{i}"),
                Machine::Pc | Machine::Q35 => {
                    format!("virtio-blk-pci,drive=vol{i},serial=vol{i},disable-legacy=on")
                }
            }
            .into(),
        );
    }
    out
}

/// The kernel command line.
pub fn kernel_cmdline(verbosity: u8, interactive: bool) -> String {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let mut cmdline = format!("kiln.log={level}");
    if interactive {
        cmdline.push_str(" kiln.tty=1");
    }
    cmdline
}

/// QEMU's arguments.
pub fn qemu_args(config: &VmConfig) -> Vec<OsString> {
    let machine = match config.machine {
        // acpi=off: QEMU then names the virtio-mmio devices on the kernel command line.
        Machine::Microvm => "microvm,acpi=off,rtc=on",
        Machine::Pc => "pc",
        Machine::Q35 => "q35",
    };
    let (cpu, accel) = match config.accel {
        Accel::Kvm => ("host", "kvm"),
        Accel::Tcg => ("max", "tcg"),
    };
    let mut log_chardev = OsString::from("socket,id=klog,path=");
    log_chardev.push(&config.log_socket);
    let mut stderr_chardev = OsString::from("socket,id=kerr,path=");
    stderr_chardev.push(&config.stderr_socket);
    let args: Vec<OsString> = [
        "-M",
        machine,
        "-cpu",
        cpu,
        "-accel",
        accel,
        "-m",
        &format!("{}M", config.mem_mib),
        "-kernel",
    ]
    .iter()
    .map(OsString::from)
    .chain([config.image.clone().into_os_string()])
    .chain(
        [
            "-append",
            &(kernel_cmdline_with_volumes(config)
                + &config.network.as_ref().map(Network::cmdline).unwrap_or_default()),
            "-display",
            "none",
            "-nodefaults",
            "-no-reboot",
            "-serial",
            "stdio",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-chardev",
        ]
        .iter()
        .map(OsString::from),
    )
    .chain([log_chardev])
    .chain(
        [
            "-device",
            "isa-debugcon,iobase=0xe9,chardev=klog",
            "-chardev",
        ]
        .iter()
        .map(OsString::from),
    )
    .chain([stderr_chardev])
    .chain(
        ["-device", "isa-serial,chardev=kerr,iobase=0x2f8,irq=3"]
            .iter()
            .map(OsString::from),
    )
    .chain(
        config
            .network
            .iter()
            .flat_map(|n| n.qemu_args(config.machine))
            .map(OsString::from),
    )
    .collect();
    let mut args = args;
    if let Some(path) = &config.stdin_socket {
        let mut chardev = OsString::from("socket,id=kin,path=");
        chardev.push(path);
        args.extend([OsString::from("-chardev"), chardev]);
        args.extend(["-device", "isa-serial,chardev=kin,iobase=0x3e8,irq=5"].map(OsString::from));
    }
    if config.machine == Machine::Microvm {
        // Kiln drives modern (version 2) virtio-mmio devices only.
        args.extend(["-global", "virtio-mmio.force-legacy=false"].map(OsString::from));
    }
    args.extend(volume_args(config));
    args
}

/// A Unix socket QEMU connects to, served by a thread.
struct Channel<T> {
    /// Set when QEMU has exited: accept what connected, or give up.
    qemu_gone: Arc<AtomicBool>,
    done: mpsc::Receiver<Option<T>>,
}

impl<T: Send + 'static> Channel<T> {
    /// Listens on `path` (before QEMU starts, so that QEMU can connect) and hands the
    /// connection to `serve` on a thread of its own.
    fn listen(
        path: &Path,
        serve: impl FnOnce(UnixStream) -> T + Send + 'static,
    ) -> anyhow::Result<Channel<T>> {
        let listener =
            UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
        // Polled, so that the thread can tell "QEMU never connected" from "QEMU connected
        // and exited before the thread got to accept()".
        listener
            .set_nonblocking(true)
            .context("making the socket non-blocking")?;
        let qemu_gone = Arc::new(AtomicBool::new(false));
        let (tx, done) = mpsc::channel();
        let gone = Arc::clone(&qemu_gone);
        std::thread::spawn(move || {
            let result = loop {
                // Read the flag first: a connection made before QEMU exited is in the
                // backlog by the time the flag is set.
                let last_try = gone.load(Ordering::SeqCst);
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        break Some(serve(stream));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && !last_try => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(_) => break None,
                }
            };
            let _ = tx.send(result);
        });
        Ok(Channel { qemu_gone, done })
    }

    /// After QEMU has exited: what the channel's thread made of the connection, or `None` if
    /// QEMU never connected. Once QEMU is gone the socket reaches end-of-file, so the thread
    /// finishes.
    fn finish(self) -> Option<T> {
        self.qemu_gone.store(true, Ordering::SeqCst);
        self.done
            .recv_timeout(Duration::from_secs(10))
            .ok()
            .flatten()
    }
}

/// Boots the VM and waits for it; returns `bake run`'s exit status and prints what the user
/// should know about how it ended.
pub fn run_vm(config: &VmConfig, timeout: Option<Duration>) -> anyhow::Result<u8> {
    let (config, forwards) = relay_tcp_ports(config)?;
    let config = &config;
    let guest_ports = crate::portfwd::GuestPorts::default();
    let announced = guest_ports.clone();
    let log = Channel::listen(&config.log_socket, move |s| read_log(s, &announced))?;
    let stderr = Channel::listen(&config.stderr_socket, relay_stderr)?;
    if let Some(path) = &config.stdin_socket {
        relay_stdin(path)?;
    }

    let qemu = std::env::var_os("KILN_QEMU").unwrap_or_else(|| QEMU.into());
    let mut args = qemu_args(config);
    pass_host_clock(&mut args);
    log::debug!(
        "{} {}",
        qemu.to_string_lossy(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _relays = forwards
        .into_iter()
        .map(|f| f.start(guest_ports.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stop_signals = StopSignals::register()?;
    let mut child = Command::new(&qemu)
        .args(&args)
        .stdin(if config.interactive {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            let fix = if e.kind() == std::io::ErrorKind::NotFound {
                "install it (apt-get install qemu-system-x86) or point KILN_QEMU at it".to_string()
            } else {
                format!("{e}")
            };
            Fail::new(
                exit_codes::KILN_FAILED,
                format!("cannot start {}", qemu.to_string_lossy()),
                fix,
            )
        })?;

    let started = Instant::now();
    let mut timed_out = None;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for QEMU")? {
            break status;
        }
        if let Some(signal) = stop_signals.received() {
            // bake was told to stop: the VM goes with it rather than running on unwatched.
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("kiln: stopped by signal {signal}; the VM was killed");
            return Ok(128u8.saturating_add(signal as u8));
        }
        if let Some(limit) = timeout
            && started.elapsed() >= limit
        {
            let _ = child.kill();
            timed_out = Some(limit.as_secs());
            break child.wait().context("waiting for QEMU")?;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let qemu_end = match status.code() {
        Some(code) => QemuEnd::Exited(code),
        None => QemuEnd::Signalled,
    };

    let reported = log.finish().unwrap_or_default();
    stderr.finish();
    log::debug!("QEMU ended: {status}; log channel: {reported:?}");
    let outcome = protocol::outcome(reported, qemu_end, timed_out);
    if let Some(message) = outcome.message {
        eprintln!("{message}");
    } else {
        log::info!("app exited with status {}", outcome.status);
    }
    Ok(outcome.status)
}

/// Adds the host's clock to the kernel command line, taken just before QEMU starts, so that
/// the guest's wall clock is not up to a second behind (the RTC counts whole seconds): see
/// kernel/src/drivers/clock.rs.
fn pass_host_clock(args: &mut [OsString]) {
    let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else { return };
    if let Some(i) = args.iter().position(|a| a == "-append")
        && let Some(cmdline) = args.get_mut(i + 1)
    {
        cmdline.push(format!(" kiln.host_ns={}", now.as_nanos()));
    }
}

/// SIGINT, SIGTERM and SIGHUP, noted while QEMU runs so that bake can take the VM down with
/// it (a QEMU left behind would keep its ports and volumes locked).
struct StopSignals {
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

impl StopSignals {
    fn register() -> anyhow::Result<StopSignals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut flags = Vec::new();
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(signal, Arc::clone(&flag))
                .with_context(|| format!("handling signal {signal}"))?;
            flags.push((signal, flag));
        }
        Ok(StopSignals { flags })
    }

    /// The first signal received, if any.
    fn received(&self) -> Option<i32> {
        self.flags.iter().find(|(_, f)| f.load(Ordering::SeqCst)).map(|&(s, _)| s)
    }
}

/// On user networking, bake takes each forwarded TCP host port itself and QEMU's `hostfwd`
/// gets a private port instead (see [`crate::portfwd`]); `KILN_DIRECT_HOSTFWD=1` gives QEMU
/// the host ports directly, as a benchmark comparing with a plain QEMU guest may want.
fn relay_tcp_ports(config: &VmConfig) -> anyhow::Result<(VmConfig, Vec<crate::portfwd::Forward>)> {
    let mut config = config.clone();
    let mut forwards = Vec::new();
    let direct = std::env::var_os("KILN_DIRECT_HOSTFWD").is_some_and(|v| v == "1");
    if let Some(net) = config.network.as_mut()
        && net.backend == NetBackend::User
        && !direct
    {
        for p in net.ports.iter_mut().filter(|p| !p.udp) {
            let forward = crate::portfwd::Forward::bind(p.host, p.guest)?;
            p.host = forward.qemu_port;
            forwards.push(forward);
        }
    }
    Ok((config, forwards))
}

/// Whether bake's stdin should reach the app through the stdin serial port: not when it is a
/// terminal (QEMU's `-serial stdio` takes it, interactive) nor when it is /dev/null (the app
/// reads end-of-file at once without it).
pub fn stdin_is_data() -> bool {
    use std::io::IsTerminal;
    use std::os::unix::fs::MetadataExt;
    if std::io::stdin().is_terminal() {
        return false;
    }
    let rdev = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino(), m.rdev()));
    match (rdev("/proc/self/fd/0"), rdev("/dev/null")) {
        (Some(stdin), Some(null)) => stdin != null,
        // No stdin at all (closed): nothing to pass.
        (None, _) => false,
        (Some(_), None) => true,
    }
}

/// Passes bake's stdin to the app through the third serial port: bytes as they are, 0xFF
/// doubled, and 0xFF 0x00 for end-of-file (a UART has no end-of-file of its own; the kernel
/// undoes this, kernel/src/app.rs). It starts when the kernel has set the port up (the kernel
/// sends one byte; setting up empties the UART's FIFO), and the guest's reads pace the copy
/// (QEMU stops taking bytes while the FIFO is full). The socket stays open after the end:
/// QEMU drops what it has not delivered yet when its peer goes. The thread is not waited for:
/// stdin may never end.
fn relay_stdin(path: &Path) -> anyhow::Result<()> {
    let listener = UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    std::thread::Builder::new().name("stdin".into()).spawn(move || {
        let Ok((mut guest, _)) = listener.accept() else { return };
        let mut ready = [0u8; 1];
        if !matches!(guest.read(&mut ready), Ok(1)) {
            return;
        }
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 * 1024];
        let mut out = Vec::with_capacity(2 * buf.len());
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            out.clear();
            if n == 0 {
                out.extend_from_slice(&[0xFF, 0x00]);
            }
            for &b in &buf[..n] {
                out.push(b);
                if b == 0xFF {
                    out.push(0xFF);
                }
            }
            if guest.write_all(&out).is_err() {
                return;
            }
            if n == 0 {
                // Kept open until bake exits (see above).
                loop {
                    std::thread::park();
                }
            }
        }
    })?;
    Ok(())
}

/// Relays the log channel to stderr until it closes, and collects the control records.
fn read_log(stream: UnixStream, guest_ports: &crate::portfwd::GuestPorts) -> Reported {
    let mut reported = Reported {
        connected: true,
        ..Reported::default()
    };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let record = protocol::classify(text);
        reported.note(&record);
        if let Record::Listen(port) = record {
            log::debug!("the app listens on TCP port {port}");
            guest_ports.announce(port);
        }
        if let Record::Log(text) = record {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "kiln: {text}");
        }
    }
    reported
}

/// Copies the second serial port (the app's stderr and Kiln's reports) to bake's stderr.
///
/// The UART sends byte by byte, so the relay writes whole lines, keeping them apart from the
/// log lines that another thread writes to the same stderr; a partial line (a prompt) goes
/// out once the port has been quiet for a moment.
fn relay_stderr(mut stream: UnixStream) {
    const QUIET: Duration = Duration::from_millis(30);
    let _ = stream.set_read_timeout(Some(QUIET));
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    let flush = |bytes: &[u8]| {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(bytes);
        let _ = stderr.flush();
    };
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                if let Some(last_newline) = pending.iter().rposition(|&b| b == b'\n') {
                    flush(&pending[..=last_newline]);
                    pending.drain(..=last_newline);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if !pending.is_empty() {
                    flush(&pending);
                    pending.clear();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    flush(&pending);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PVM: KvmProbe = KvmProbe {
        device_usable: true,
        hardware_module: false,
        pvm: true,
    };

    #[test]
    fn accel_auto() {
        let good = KvmProbe {
            device_usable: true,
            hardware_module: true,
            pvm: false,
        };
        assert_eq!(choose_accel(AccelChoice::Auto, good).0, Accel::Kvm);
        assert_eq!(
            choose_accel(
                AccelChoice::Auto,
                KvmProbe {
                    device_usable: false,
                    ..good
                }
            )
            .0,
            Accel::Tcg
        );
        assert_eq!(
            choose_accel(
                AccelChoice::Auto,
                KvmProbe {
                    hardware_module: false,
                    ..good
                }
            )
            .0,
            Accel::Tcg
        );
        assert_eq!(
            choose_accel(AccelChoice::Auto, KvmProbe { pvm: true, ..good }).0,
            Accel::Tcg
        );
        let (accel, why) = choose_accel(AccelChoice::Auto, PVM);
        assert_eq!(accel, Accel::Tcg);
        assert!(why.contains("kvm_pvm"));
    }

    #[test]
    fn accel_explicit_wins() {
        assert_eq!(choose_accel(AccelChoice::Kvm, PVM).0, Accel::Kvm);
        let good = KvmProbe {
            device_usable: true,
            hardware_module: true,
            pvm: false,
        };
        assert_eq!(choose_accel(AccelChoice::Tcg, good).0, Accel::Tcg);
    }

    #[test]
    fn network_options() {
        assert_eq!(
            parse_port_map("8080:80"),
            Ok(PortMap { host: 8080, guest: 80, udp: false })
        );
        assert_eq!(
            parse_port_map("5353:53/udp"),
            Ok(PortMap { host: 5353, guest: 53, udp: true })
        );
        assert!(parse_port_map("80").is_err());
        assert!(parse_port_map("0:80").is_err());
        assert!(parse_port_map("1:2/sctp").is_err());
        assert_eq!(parse_net("tap:tap0"), Ok(NetBackend::Tap("tap0".into())));
        assert!(parse_net("tap:").is_err());
        assert!(parse_net("bridge").is_err());
        assert!(parse_ip_prefix("10.0.2.15/24").is_ok());
        assert!(parse_ip_prefix("10.0.2.15").is_err());
        assert!(parse_ip_prefix("10.0.2.15/33").is_err());
        let net = Network {
            backend: NetBackend::User,
            ports: vec![
                PortMap { host: 8080, guest: 80, udp: false },
                PortMap { host: 5353, guest: 53, udp: true },
            ],
            ip: Some("10.0.2.15/24".into()),
            gateway: Some("10.0.2.2".into()),
        };
        assert_eq!(
            net.qemu_args(Machine::Microvm).join(" "),
            "-netdev user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp:127.0.0.1:5353-:53 \
             -device virtio-net-device,netdev=n0"
        );
        assert!(net.qemu_args(Machine::Q35).join(" ").ends_with("-device virtio-net-pci,netdev=n0,disable-legacy=on,romfile="));
        assert_eq!(net.cmdline(), " kiln.ip=10.0.2.15/24 kiln.gw=10.0.2.2 kiln.ip6=fec0::15/64 kiln.gw6=fec0::2");
        let tap = Network { backend: NetBackend::Tap("tap0".into()), ports: vec![], ip: None, gateway: None };
        assert_eq!(tap.qemu_args(Machine::Pc)[1], "tap,id=n0,ifname=tap0,script=no,downscript=no");
    }

    #[test]
    fn cmdline() {
        assert_eq!(kernel_cmdline(0, false), "kiln.log=warn");
        assert_eq!(kernel_cmdline(1, true), "kiln.log=info kiln.tty=1");
        assert_eq!(kernel_cmdline(5, false), "kiln.log=debug");
    }

    #[test]
    fn qemu_command_line() {
        let config = VmConfig {
            image: "/tmp/x/app.img".into(),
            mem_mib: 128,
            accel: Accel::Tcg,
            machine: Machine::Microvm,
            verbosity: 0,
            interactive: false,
            log_socket: "/tmp/x/klog.sock".into(),
            stderr_socket: "/tmp/x/stderr.sock".into(),
            stdin_socket: None,
            network: None,
            volumes: Vec::new(),
        };
        let line = |c: &VmConfig| {
            qemu_args(c)
                .iter()
                .map(|a| a.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            line(&config),
            "-M microvm,acpi=off,rtc=on -cpu max -accel tcg -m 128M -kernel /tmp/x/app.img \
             -append kiln.log=warn -display none -nodefaults -no-reboot -serial stdio \
             -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
             -chardev socket,id=klog,path=/tmp/x/klog.sock \
             -device isa-debugcon,iobase=0xe9,chardev=klog \
             -chardev socket,id=kerr,path=/tmp/x/stderr.sock \
             -device isa-serial,chardev=kerr,iobase=0x2f8,irq=3 \
             -global virtio-mmio.force-legacy=false"
        );
        let with_volumes = VmConfig {
            volumes: vec![
                crate::volume::parse_volume("/v/a,b.img:/data").unwrap(),
                crate::volume::parse_volume("/v/c.img:/srv/ro:ro").unwrap(),
            ],
            ..config.clone()
        };
        let l = line(&with_volumes);
        assert!(
            l.contains("-append kiln.log=warn kiln.volume=vol0:/data kiln.volume=vol1:/srv/ro:ro "),
            "{l}"
        );
        assert!(
            l.ends_with(
                "-drive file=/v/a,,b.img,if=none,id=vol0,format=raw \
                 -device virtio-blk-device,drive=vol0,serial=vol0 \
                 -drive file=/v/c.img,if=none,id=vol1,format=raw,readonly=on \
                 -device virtio-blk-device,drive=vol1,serial=vol1"
            ),
            "{l}"
        );
        let pc_vol = VmConfig {
            machine: Machine::Pc,
            ..with_volumes
        };
        assert!(
            line(&pc_vol)
                .ends_with("-device virtio-blk-pci,drive=vol1,serial=vol1,disable-legacy=on")
        );
        let pc = VmConfig {
            machine: Machine::Pc,
            accel: Accel::Kvm,
            ..config.clone()
        };
        assert!(line(&pc).starts_with("-M pc -cpu host -accel kvm "));
        let q35 = VmConfig {
            machine: Machine::Q35,
            ..config
        };
        assert!(line(&q35).starts_with("-M q35 -cpu max -accel tcg "));
    }
}

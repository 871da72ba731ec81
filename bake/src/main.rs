//! bake: Kiln's host CLI. Bakes a static Linux x86_64 program into a bootable image (the
//! kernel ELF with the program appended) and runs images under QEMU.
//!
//! Errors are one line, `bake: error: <problem>: <fix>`, with an exit status from
//! [`exit_codes`]; bake never panics on bad input.
#![forbid(unsafe_code)]

mod baking;
mod boot_image;
mod inspect;
mod logger;
mod pkg;
mod portfwd;
mod protocol;
mod qemu;
mod rootfs;
#[cfg(test)]
mod stand_in_kernel;
mod volume;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use baking::EnvVar;
use qemu::{AccelChoice, Machine};

/// The kernel ELF, built by build.rs (or the file named by `KILN_KERNEL_ELF` at build time).
pub static KERNEL: &[u8] = include_bytes!(env!("KILN_KERNEL_PATH"));

/// bake's exit statuses, besides the app's own (which `bake run` passes on).
pub mod exit_codes {
    /// The kernel panicked, or the VM ended without reporting the app's exit status (a
    /// triple fault, for example).
    pub const NO_STATUS: u8 = 123;
    /// `--timeout` expired; QEMU was killed.
    pub const TIMEOUT: u8 = 124;
    /// Kiln itself failed: QEMU could not be started, or bake failed before boot (bad
    /// arguments, unwritable output).
    pub const KILN_FAILED: u8 = 125;
    /// The file cannot be run: not an ELF, not x86_64, 32-bit, truncated, dynamically
    /// linked, an image from another Kiln version, or a corrupt image.
    pub const CANNOT_RUN: u8 = 126;
    /// The given file does not exist.
    pub const NOT_FOUND: u8 = 127;
}

const RUN_EXIT_STATUS_HELP: &str = "\
Exit status:
  0-255  the app's exit status (from the kernel's KILN-EXIT record)
  123    kernel panic, or the VM ended without reporting an exit status (e.g. a triple fault)
  124    --timeout expired (QEMU was killed)
  125    Kiln failed: QEMU could not be started, or bake failed before boot
  126    the file cannot be run: not an ELF, not x86_64, 32-bit, truncated, dynamically
         linked, an image from another Kiln version, or a corrupt image
  127    the file does not exist
An app exiting with 123-127 itself is indistinguishable from these; -v says which it was.";

#[derive(Debug, Parser)]
#[command(
    name = "bake",
    version,
    about = "Bake a static Linux x86_64 program into a bootable Kiln image, and run it under QEMU",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Bake a static ELF program into a bootable image
    Build(BuildArgs),
    /// Boot an image (or bake and boot an ELF program) under QEMU
    #[command(after_help = RUN_EXIT_STATUS_HELP)]
    Run(RunArgs),
    /// Show what is inside an image (or an ELF program)
    Inspect(InspectArgs),
    /// Make and read persistent volumes (FAT32 disk images for `bake run -v`)
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Build, run and test packaged apps from recipes (packages/NAME/recipe.toml)
    Pkg(pkg::PkgArgs),
}

#[derive(Debug, Subcommand)]
enum VolumeCmd {
    /// Make a FAT32 volume image, empty or holding a copy of a directory
    Create {
        #[arg(value_name = "IMAGE")]
        image: PathBuf,
        /// Size of the volume, e.g. 64M or 1G
        #[arg(long, value_name = "SIZE", value_parser = volume::parse_size)]
        size: u64,
        /// Copy this directory's files onto the new volume
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
    },
    /// List a directory of a volume (or show one file): size and name per line
    Ls {
        #[arg(value_name = "IMAGE")]
        image: PathBuf,
        #[arg(value_name = "PATH", default_value = "/")]
        path: String,
    },
    /// Copy a file off a volume
    Get {
        #[arg(value_name = "IMAGE")]
        image: PathBuf,
        #[arg(value_name = "GUEST_PATH")]
        guest: String,
        #[arg(value_name = "HOST_PATH")]
        host: PathBuf,
    },
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// The program: a static (or static-PIE) x86_64 Linux ELF
    #[arg(value_name = "ELF", required_unless_present = "recipe")]
    elf: Option<PathBuf>,
    /// Bake a recipe's program instead (built first if needed), with its run defaults
    #[arg(long, value_name = "NAME", conflicts_with = "elf")]
    recipe: Option<String>,
    /// Where to write the image
    #[arg(short, long, value_name = "IMAGE")]
    output: PathBuf,
    #[command(flatten)]
    env: EnvArgs,
    /// argv[0] of the program (default: its guest path, /bin/<file name>)
    #[arg(long, value_name = "NAME")]
    arg0: Option<OsString>,
    #[command(flatten)]
    files: FilesArgs,
    #[command(flatten)]
    kernel: KernelArg,
    /// Arguments for the program (argv[1..])
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<OsString>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// An image from `bake build`, or a static ELF program to bake on the fly
    #[arg(value_name = "IMAGE|ELF")]
    target: PathBuf,
    /// Guest memory, e.g. 128M or 1G
    #[arg(long, value_name = "SIZE", default_value = "128M", value_parser = baking::parse_mem)]
    mem: u64,
    /// Accelerator: auto uses KVM only where it helps (hardware KVM, not PVM)
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    accel: AccelChoice,
    /// QEMU machine type
    #[arg(long, value_enum, default_value_t = Machine::Microvm)]
    machine: Machine,
    /// Kill the VM after this many seconds (exit status 124)
    #[arg(long, value_name = "SECS", value_parser = baking::parse_timeout)]
    timeout: Option<u64>,
    /// Show the kernel's log: -v info, -vv debug (and bake's own decisions)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Attach a volume made by `bake volume create` at GUEST_PATH, read-only with `:ro`
    /// (repeatable; `-v IMAGE:GUEST_PATH` works too, as in docker)
    #[arg(long = "volume", value_name = "IMAGE:GUEST_PATH[:ro]", value_parser = volume::parse_volume)]
    volume: Vec<volume::VolumeArg>,
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    files: FilesArgs,
    #[command(flatten)]
    kernel: KernelArg,
    #[command(flatten)]
    net: NetArgs,
    /// Arguments for the program: replace argv[1..] of an image
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<OsString>,
}

#[derive(Debug, Args)]
struct NetArgs {
    /// Forward a host port on 127.0.0.1 to a guest port (repeatable), e.g. -p 8080:80
    #[arg(short = 'p', long = "publish", value_name = "HOST_PORT:GUEST_PORT[/udp]", value_parser = qemu::parse_port_map)]
    publish: Vec<qemu::PortMap>,
    /// Give the VM a network device: user (QEMU user networking) or tap:NAME [default: user
    /// when -p, --ip or --gateway is given, else no network device]
    #[arg(long, value_name = "user|tap:NAME", value_parser = qemu::parse_net)]
    net: Option<qemu::NetBackend>,
    /// A static guest address instead of DHCP
    #[arg(long, value_name = "ADDR/PREFIX", value_parser = qemu::parse_ip_prefix)]
    ip: Option<String>,
    /// The default gateway for --ip
    #[arg(long, value_name = "ADDR", value_parser = qemu::parse_ipv4, requires = "ip")]
    gateway: Option<String>,
}

impl NetArgs {
    /// The VM's network, if it has one.
    fn network(&self) -> anyhow::Result<Option<qemu::Network>> {
        let wanted = !self.publish.is_empty() || self.ip.is_some() || self.net.is_some();
        if !wanted {
            return Ok(None);
        }
        let backend = self.net.clone().unwrap_or(qemu::NetBackend::User);
        if !self.publish.is_empty() && backend != qemu::NetBackend::User {
            anyhow::bail!("-p forwards ports through QEMU user networking; with --net tap the guest's ports are reachable on the tap network directly");
        }
        Ok(Some(qemu::Network { backend, ports: self.publish.clone(), ip: self.ip.clone(), gateway: self.gateway.clone() }))
    }
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// An image, or an ELF program
    #[arg(value_name = "IMAGE")]
    image: PathBuf,
}

#[derive(Debug, Args)]
struct EnvArgs {
    /// Set an environment variable of the program (repeatable; the defaults are
    /// PATH=/bin:/usr/bin and HOME=/)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = baking::parse_env)]
    env: Vec<EnvVar>,
}

#[derive(Debug, Args)]
struct FilesArgs {
    /// Pack this host directory as the guest's root filesystem (/); writes in the guest
    /// live in memory until the VM ends
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,
    /// Add a host file at a guest path (repeatable), e.g. -f nginx.conf:/etc/nginx/nginx.conf
    #[arg(short = 'f', long = "file", value_name = "HOST_PATH:GUEST_PATH", value_parser = rootfs::parse_file_arg)]
    files: Vec<rootfs::FileArg>,
}

impl FilesArgs {
    fn pack(&self) -> anyhow::Result<Option<Vec<u8>>> {
        rootfs::pack(self.rootfs.as_deref(), &self.files)
    }
}

#[derive(Debug, Args)]
struct KernelArg {
    /// Use this kernel ELF instead of the one built into bake (for developing Kiln)
    #[arg(long, value_name = "ELF", hide = true)]
    kernel: Option<PathBuf>,
}

impl KernelArg {
    fn load(&self) -> anyhow::Result<std::borrow::Cow<'static, [u8]>> {
        match &self.kernel {
            None => Ok(KERNEL.into()),
            Some(path) => Ok(baking::read_input(path)?.into()),
        }
    }
}

/// An error with the exit status it calls for. Its message reads `problem: fix`.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl Fail {
    pub fn new(code: u8, problem: impl std::fmt::Display, fix: impl std::fmt::Display) -> Fail {
        Fail {
            code,
            message: format!("{problem}: {fix}"),
        }
    }

    /// A message that already names the problem and the fix.
    pub fn bare(code: u8, message: String) -> Fail {
        Fail { code, message }
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fail {}

fn main() {
    let cli = match Cli::try_parse_from(volume::rewrite_volume_flags(std::env::args_os().collect()))
    {
        Ok(cli) => cli,
        Err(e) => std::process::exit(usage_error(e)),
    };
    let verbosity = match &cli.command {
        Cmd::Run(run) => run.verbose,
        Cmd::Pkg(pkg) => pkg.verbosity(),
        _ => 0,
    };
    logger::init(verbosity);
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .downcast_ref::<Fail>()
                .map_or(exit_codes::KILN_FAILED, |f| f.code);
            match e.downcast_ref::<Fail>() {
                Some(fail) => eprintln!("bake: error: {fail}"),
                None => eprintln!("bake: error: {e:#}"),
            }
            code
        }
    };
    std::process::exit(i32::from(code));
}

/// Reports a command-line error; returns the exit status.
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                2
            } else {
                0
            };
        }
        ErrorKind::ValueValidation => {
            // Our value parsers' messages name the option, the problem and the fix.
            if let Some(source) = std::error::Error::source(&e) {
                eprintln!("bake: error: {source}");
                return exit_codes::KILN_FAILED.into();
            }
        }
        _ => {}
    }
    let _ = e.print();
    exit_codes::KILN_FAILED.into()
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Cmd::Build(args) => build(args),
        Cmd::Run(args) => run(args),
        Cmd::Inspect(args) => inspect::inspect(&args.image),
        Cmd::Volume(VolumeCmd::Create { image, size, from }) => {
            volume::create(&image, size, from.as_deref())
        }
        Cmd::Volume(VolumeCmd::Ls { image, path }) => {
            volume::ls(&image, &path, &mut std::io::stdout().lock())
        }
        Cmd::Volume(VolumeCmd::Get { image, guest, host }) => volume::get(&image, &guest, &host),
        Cmd::Pkg(args) => pkg::main(args),
    }
}

fn build(args: BuildArgs) -> anyhow::Result<u8> {
    let Some(elf_path) = &args.elf else {
        let name = args.recipe.as_deref().unwrap_or_default();
        let image = pkg::build_image(name, &args.kernel, args.arg0.as_ref(), &args.args, &args.env.env, &args.files)?;
        write_output(&args.output, &image)?;
        return Ok(0);
    };
    let kernel = args.kernel.load()?;
    let elf = baking::read_input(elf_path)?;
    if baking::find_image(elf_path, &elf)?.is_some() {
        return Err(Fail::new(
            exit_codes::CANNOT_RUN,
            format!("{} is already a Kiln image", elf_path.display()),
            "give the program's ELF, or run the image with bake run",
        )
        .into());
    }
    baking::check_app(elf_path, &elf)?;
    let rootfs = args.files.pack()?;
    let image = baking::bake_app(
        &kernel,
        elf_path,
        &elf,
        args.arg0.as_ref(),
        &args.args,
        &args.env.env,
        rootfs.as_deref(),
    )?;
    write_output(&args.output, &image)?;
    Ok(0)
}

fn write_output(path: &Path, image: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, image).map_err(|e| {
        Fail::new(
            exit_codes::KILN_FAILED,
            format!("cannot write {}: {e}", path.display()),
            "check the output path",
        )
        .into()
    })
}

fn run(args: RunArgs) -> anyhow::Result<u8> {
    let bytes = baking::read_input(&args.target)?;
    volume::check_volumes(&args.volume)?;
    let tmp = tempfile::Builder::new()
        .prefix("kiln-")
        .tempdir()
        .map_err(|e| {
            Fail::new(
                exit_codes::KILN_FAILED,
                format!("cannot create a temporary directory: {e}"),
                "check TMPDIR",
            )
        })?;
    let image_path = match baking::find_image(&args.target, &bytes)? {
        Some(location) => {
            let payload = &bytes[location.offset..location.offset + location.len];
            let payload = baking::check_image(&args.target, payload)?;
            let rootfs = args.files.pack()?;
            if args.args.is_empty() && args.env.env.is_empty() && rootfs.is_none() {
                args.target.clone()
            } else {
                let image = baking::rebake(&bytes, &payload, &args.args, &args.env.env, rootfs.as_deref())?;
                let path = tmp.path().join("app.img");
                write_output(&path, &image)?;
                path
            }
        }
        None => {
            baking::check_app(&args.target, &bytes)?;
            let kernel = args.kernel.load()?;
            let rootfs = args.files.pack()?;
            let image = baking::bake_app(
                &kernel,
                &args.target,
                &bytes,
                None,
                &args.args,
                &args.env.env,
                rootfs.as_deref(),
            )?;
            let path = tmp.path().join("app.img");
            write_output(&path, &image)?;
            path
        }
    };

    let (accel, why) = qemu::choose_accel(args.accel, qemu::KvmProbe::probe());
    log::info!(
        "accel {}: {why}",
        if accel == qemu::Accel::Kvm {
            "kvm"
        } else {
            "tcg"
        }
    );
    let config = qemu::VmConfig {
        image: image_path,
        mem_mib: args.mem,
        accel,
        machine: args.machine,
        verbosity: args.verbose,
        interactive: std::io::stdin().is_terminal(),
        log_socket: tmp.path().join("klog.sock"),
        stderr_socket: tmp.path().join("stderr.sock"),
        stdin_socket: qemu::stdin_is_data().then(|| tmp.path().join("stdin.sock")),
        network: args.net.network()?,
        volumes: args.volume,
    };
    let status = qemu::run_vm(&config, args.timeout.map(Duration::from_secs))?;
    drop(tmp);
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("bake").chain(args.iter().copied()))
    }

    #[test]
    fn build_arguments() {
        let cli = parse(&[
            "build", "hello", "-o", "h.img", "-e", "A=1", "-e", "B=2", "--arg0", "hi", "--", "x",
            "-y",
        ])
        .unwrap();
        let Cmd::Build(b) = cli.command else { panic!() };
        assert_eq!(b.elf, Some(PathBuf::from("hello")));
        assert_eq!(b.output, PathBuf::from("h.img"));
        assert_eq!(b.env.env, vec![EnvVar("A=1".into()), EnvVar("B=2".into())]);
        assert_eq!(b.arg0, Some("hi".into()));
        assert_eq!(b.args, vec![OsString::from("x"), OsString::from("-y")]);
        assert!(parse(&["build", "hello"]).is_err(), "-o is required");
        let cli = parse(&["build", "hello", "-o", "h.img", "--rootfs", "root", "-f", "a:/etc/a", "-f", "b:/b"]).unwrap();
        let Cmd::Build(b) = cli.command else { panic!() };
        assert_eq!(b.files.rootfs, Some(PathBuf::from("root")));
        assert_eq!(b.files.files.len(), 2);
        assert!(parse(&["run", "x", "-f", "nocolon"]).is_err());
    }

    #[test]
    fn run_arguments() {
        let cli = parse(&["run", "h.img"]).unwrap();
        let Cmd::Run(r) = cli.command else { panic!() };
        assert_eq!(
            (r.mem, r.accel, r.machine, r.timeout, r.verbose),
            (128, AccelChoice::Auto, Machine::Microvm, None, 0)
        );
        let cli = parse(&[
            "run",
            "h.img",
            "--mem",
            "1G",
            "--accel",
            "tcg",
            "--machine",
            "q35",
            "--timeout",
            "5",
            "-vv",
            "-e",
            "A=1",
            "--",
            "--flag",
        ])
        .unwrap();
        let Cmd::Run(r) = cli.command else { panic!() };
        assert_eq!(
            (r.mem, r.accel, r.machine, r.timeout, r.verbose),
            (1024, AccelChoice::Tcg, Machine::Q35, Some(5), 2)
        );
        assert_eq!(r.args, vec![OsString::from("--flag")]);
    }

    #[test]
    fn bad_values_are_value_errors() {
        for args in [
            &["run", "x", "--mem", "lots"][..],
            &["run", "x", "-e", "NOEQUALS"],
            &["build", "x", "-o", "y", "-e", "=v"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
        }
        assert!(parse(&["run", "x", "--accel", "hvf"]).is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

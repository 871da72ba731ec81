//! `bake pkg`: recipes that turn real programs (redis, nginx, sqlite3, ...) into Kiln
//! images, and the commands that list, build, run, test and describe them.
//!
//! - [`recipe`]: the `recipe.toml` format, its validation and the dependency order;
//! - [`cache`]: where sources, builds and test results are kept, and the build keys;
//! - [`source`]: fetching (Debian `.orig` tarballs, checked by SHA-256) and unpacking;
//! - [`builder`]: running a recipe's build script in a clean folder;
//! - [`smoke`]: booting the image and checking it from the host.
//!
//! The recipes themselves live in the repository's `packages/` folder (see its README).

mod builder;
mod cache;
mod recipe;
mod smoke;
mod source;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::baking::{self, EnvVar};
use crate::qemu::{AccelChoice, Machine};
use crate::{EnvArgs, Fail, FilesArgs, KernelArg, NetArgs, exit_codes, volume};
use builder::Built;
use cache::Cache;
use recipe::{Recipe, RecipeError, Registry};

/// `bake pkg test` exit status when a smoke test (or the build before it) failed.
pub const TEST_FAILED: u8 = 1;

#[derive(Debug, Args)]
pub struct PkgArgs {
    /// The packages folder [default: $KILN_PACKAGES, else packages/ in the current folder or
    /// a parent, else the Kiln source tree bake was built from]
    #[arg(long, value_name = "DIR", global = true)]
    recipes: Option<PathBuf>,
    #[command(subcommand)]
    command: PkgCmd,
}

#[derive(Debug, Subcommand)]
enum PkgCmd {
    /// List the recipes: name, version, last test result, summary
    List,
    /// Build a recipe's program (dependencies first), statically; cached by content
    Build {
        #[arg(value_name = "NAME")]
        name: String,
        /// Also bake an image with the recipe's run defaults
        #[arg(short, long, value_name = "IMAGE")]
        output: Option<PathBuf>,
    },
    /// Build a recipe's program and boot it with its run defaults, merged with these flags
    Run(Box<PkgRunArgs>),
    /// Build, boot and smoke-test recipes; exit status 1 if any fails
    Test {
        #[arg(value_name = "NAME", required_unless_present = "all")]
        name: Option<String>,
        /// Test every program recipe
        #[arg(long, conflicts_with = "name")]
        all: bool,
        #[command(flatten)]
        kernel: KernelArg,
    },
    /// Show a recipe: source, dependencies, build, run defaults, smoke test, cache state
    Info {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Args)]
struct PkgRunArgs {
    #[arg(value_name = "NAME")]
    name: String,
    /// Guest memory, e.g. 256M [default: the recipe's run.memory, else 128M]
    #[arg(long, value_name = "SIZE", value_parser = baking::parse_mem)]
    mem: Option<u64>,
    /// Accelerator: auto uses KVM only where it helps (hardware KVM, not PVM)
    #[arg(long, value_enum, default_value_t = AccelChoice::Auto)]
    accel: AccelChoice,
    /// QEMU machine type
    #[arg(long, value_enum, default_value_t = Machine::Microvm)]
    machine: Machine,
    /// Kill the VM after this many seconds (exit status 124)
    #[arg(long, value_name = "SECS", value_parser = baking::parse_timeout)]
    timeout: Option<u64>,
    /// Show the kernel's log: -v info, -vv debug
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Attach a volume at GUEST_PATH (replaces the recipe's default volume there)
    #[arg(long = "volume", value_name = "IMAGE:GUEST_PATH[:ro]", value_parser = volume::parse_volume)]
    volume: Vec<volume::VolumeArg>,
    #[command(flatten)]
    env: EnvArgs,
    #[command(flatten)]
    files: FilesArgs,
    #[command(flatten)]
    net: NetArgs,
    #[command(flatten)]
    kernel: KernelArg,
    /// Arguments for the program: replace the recipe's run.args
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<OsString>,
}

impl PkgArgs {
    /// The `-v` count of `bake pkg run`, for the logger.
    pub fn verbosity(&self) -> u8 {
        match &self.command {
            PkgCmd::Run(r) => r.verbose,
            _ => 0,
        }
    }
}

/// Runs `bake pkg ...`; returns the exit status.
pub fn main(args: PkgArgs) -> anyhow::Result<u8> {
    let registry = load_registry(args.recipes.as_deref())?;
    let cache = Cache::from_env()?;
    match args.command {
        PkgCmd::List => list(&registry, &cache),
        PkgCmd::Build { name, output } => {
            let recipe = match output {
                Some(_) => program_recipe(&registry, &name)?,
                None => registry.get(&name).map_err(recipe_error)?,
            };
            let built = build(&registry, &name, &cache, true)?;
            let last = built.last().context("nothing built")?;
            match &last.program {
                Some(p) => println!("{}", p.display()),
                None => println!("{}", last.prefix().display()),
            }
            if let Some(output) = output {
                let image = image(recipe, last, crate::KERNEL, None, &[], &[], &no_files())?;
                crate::write_output(&output, &image)?;
            }
            Ok(0)
        }
        PkgCmd::Run(run) => pkg_run(&registry, &cache, run),
        PkgCmd::Test { name, all, kernel } => {
            let names: Vec<String> = if all {
                registry
                    .recipes
                    .values()
                    .filter(|r| r.is_program())
                    .map(|r| r.name().to_string())
                    .collect()
            } else {
                vec![name.context("a recipe name or --all")?]
            };
            test(&registry, &cache, &names, &kernel.load()?)
        }
        PkgCmd::Info { name } => info(&registry, &cache, &name),
    }
}

/// `bake build --recipe NAME -o IMAGE [-e K=V] [-f ...] [-- ARGS]`: the recipe's program
/// (built if needed) baked with its run defaults, merged with these settings.
pub fn build_image(
    name: &str,
    kernel: &KernelArg,
    arg0: Option<&OsString>,
    args: &[OsString],
    env: &[EnvVar],
    files: &FilesArgs,
) -> anyhow::Result<Vec<u8>> {
    let registry = load_registry(None)?;
    let cache = Cache::from_env()?;
    let recipe = program_recipe(&registry, name)?;
    let built = build(&registry, name, &cache, false)?;
    let last = built.last().context("nothing built")?;
    image(recipe, last, &kernel.load()?, arg0, args, env, files)
}

fn not_a_program(recipe: &Recipe) -> Fail {
    Fail::new(
        exit_codes::CANNOT_RUN,
        format!(
            "{} is a library (its recipe has no build.program)",
            recipe.name()
        ),
        "give a recipe that makes a program (bake pkg list)",
    )
}

/// The named recipe, which must make a program (checked before anything is built).
fn program_recipe<'a>(registry: &'a Registry, name: &str) -> anyhow::Result<&'a Recipe> {
    let recipe = registry.get(name).map_err(recipe_error)?;
    if !recipe.is_program() {
        return Err(not_a_program(recipe).into());
    }
    Ok(recipe)
}

fn recipe_error(e: RecipeError) -> anyhow::Error {
    let code = match e {
        RecipeError::UnknownRecipe { .. } | RecipeError::NoRecipes { .. } => exit_codes::NOT_FOUND,
        _ => exit_codes::KILN_FAILED,
    };
    Fail::bare(code, e.to_string()).into()
}

/// Finds and loads the packages folder.
fn load_registry(flag: Option<&Path>) -> anyhow::Result<Registry> {
    let dir = match flag {
        Some(d) => d.to_path_buf(),
        None => find_packages_dir().ok_or_else(|| {
            Fail::new(
                exit_codes::NOT_FOUND,
                "no packages folder found",
                "give it with --recipes DIR or KILN_PACKAGES=DIR, or run bake inside the Kiln repository",
            )
        })?,
    };
    if !dir.is_dir() {
        return Err(Fail::new(
            exit_codes::NOT_FOUND,
            format!("{}: no such folder", dir.display()),
            "give the packages folder (the one holding NAME/recipe.toml)",
        )
        .into());
    }
    Registry::load(&dir).map_err(recipe_error)
}

fn no_files() -> FilesArgs {
    FilesArgs {
        rootfs: None,
        files: Vec::new(),
    }
}

fn has_recipes(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.path().join("recipe.toml").is_file())
    })
}

fn find_packages_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("KILN_PACKAGES").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let cwd = std::env::current_dir().ok()?;
    for dir in cwd.ancestors() {
        let p = dir.join("packages");
        if has_recipes(&p) {
            return Some(p);
        }
    }
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packages");
    has_recipes(&built_from).then_some(built_from)
}

fn build(
    registry: &Registry,
    name: &str,
    cache: &Cache,
    say_cached: bool,
) -> anyhow::Result<Vec<Built>> {
    registry.get(name).map_err(recipe_error)?;
    builder::build(registry, name, cache, say_cached)
}

/// The recipe's image: its program, run.args (or `args`), run.env plus `env`, and its
/// `files/` (or `--rootfs`) plus `-f` files as the root filesystem.
fn image(
    recipe: &Recipe,
    built: &Built,
    kernel: &[u8],
    arg0: Option<&OsString>,
    args: &[OsString],
    env: &[EnvVar],
    files: &FilesArgs,
) -> anyhow::Result<Vec<u8>> {
    let program = built
        .program
        .as_ref()
        .ok_or_else(|| not_a_program(recipe))?;
    let elf = baking::read_input(program)?;
    baking::check_app(program, &elf)?;
    let args: Vec<OsString> = if args.is_empty() {
        recipe.file.run.args.iter().map(OsString::from).collect()
    } else {
        args.to_vec()
    };
    let mut all_env: Vec<EnvVar> = recipe
        .file
        .run
        .env
        .iter()
        .map(|(k, v)| EnvVar(format!("{k}={v}")))
        .collect();
    all_env.extend_from_slice(env);
    let root = files.rootfs.clone().or_else(|| recipe.files_dir());
    let rootfs = crate::rootfs::pack(root.as_deref(), &files.files)?;
    baking::bake_app(
        kernel,
        program,
        &elf,
        arg0,
        &args,
        &all_env,
        rootfs.as_deref(),
    )
}

fn list(registry: &Registry, cache: &Cache) -> anyhow::Result<u8> {
    let keys = cache::keys(registry)?;
    let rows: Vec<[String; 4]> = registry
        .recipes
        .values()
        .map(|r| {
            let status = if !r.is_program() {
                "library".to_string()
            } else {
                let key = cache::test_key(r, &keys[r.name()]).unwrap_or_default();
                cache
                    .load_status(r.name())
                    .map_or("untested".into(), |s| s.summary(&key))
            };
            [
                r.name().to_string(),
                r.file.version.clone(),
                status,
                r.file.summary.clone(),
            ]
        })
        .collect();
    let header = [
        "NAME".to_string(),
        "VERSION".into(),
        "TEST".into(),
        "SUMMARY".into(),
    ];
    let width = |i: usize| {
        rows.iter()
            .chain(std::iter::once(&header))
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2) = (width(0), width(1), width(2));
    for r in std::iter::once(&header).chain(rows.iter()) {
        println!("{:w0$}  {:w1$}  {:w2$}  {}", r[0], r[1], r[2], r[3]);
    }
    Ok(0)
}

fn info(registry: &Registry, cache: &Cache, name: &str) -> anyhow::Result<u8> {
    let r = registry.get(name).map_err(recipe_error)?;
    let keys = cache::keys(registry)?;
    let key = &keys[name];
    let f = &r.file;
    println!("{} {}", f.name, f.version);
    println!("  {}", f.summary);
    println!("license:      {}", f.license);
    println!("homepage:     {}", f.homepage);
    println!("recipe:       {}", r.path().display());
    match &r.source {
        recipe::Source::Archive {
            url,
            sha256,
            debian: (package, version),
        } => {
            println!("source:       {url}");
            println!("  sha256:     {sha256}");
            println!("  debian:     apt-get source --download-only {package}={version}");
        }
        recipe::Source::Local(dir) => println!("source:       {} (in the recipe)", dir.display()),
    }
    let deps = &f.dependencies;
    println!(
        "dependencies: {}",
        if deps.is_empty() {
            "none".into()
        } else {
            deps.join(", ")
        }
    );
    match &f.build.program {
        Some(p) => println!("program:      {p} (a static x86_64 ELF)"),
        None => println!("program:      none (a library, installed into $PREFIX)"),
    }
    let dir = cache.build_dir(r, key)?;
    if dir.join("DONE").is_file() {
        println!("built:        {}", dir.display());
    } else {
        println!("built:        not yet (bake pkg build {name})");
    }
    if r.is_program() {
        let run = &f.run;
        println!("run:");
        println!("  args:       {:?}", run.args);
        if !run.env.is_empty() {
            let env: Vec<String> = run.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("  env:        {}", env.join(" "));
        }
        if !run.ports.is_empty() {
            println!("  ports:      {}", run.ports.join(" "));
        }
        println!(
            "  memory:     {}",
            run.memory.as_deref().unwrap_or("128M (bake run's default)")
        );
        for v in &run.volumes {
            println!("  volume:     {} ({}, made on first run)", v.guest, v.size);
        }
        if let Some(files) = r.files_dir() {
            println!("  files:      {} (the guest's /)", files.display());
        }
        if let Some(t) = &f.test {
            println!("test:         {}", t.describe());
        }
        let tkey = cache::test_key(r, key)?;
        let status = cache.load_status(name).map_or("untested".into(), |s| {
            format!("{}: {}", s.summary(&tkey), s.detail)
        });
        println!("last test:    {status}");
    }
    Ok(0)
}

/// Where `bake pkg run` keeps a recipe's default volume for `guest`.
fn default_volume_path(cache: &Cache, name: &str, guest: &str) -> anyhow::Result<PathBuf> {
    let file: String = guest
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Ok(cache
        .sub(&format!("volumes/{name}"))?
        .join(format!("{file}.img")))
}

/// The recipe's default volumes that the user did not replace, made where missing.
fn default_volumes(
    recipe: &Recipe,
    user: &[volume::VolumeArg],
    place: impl Fn(&str) -> anyhow::Result<PathBuf>,
) -> anyhow::Result<Vec<volume::VolumeArg>> {
    let mut out = Vec::new();
    for v in &recipe.file.run.volumes {
        let guest = v.guest.trim_end_matches('/').to_string();
        if user.iter().any(|u| u.guest == guest) {
            continue;
        }
        let image = place(&guest)?;
        if !image.exists() {
            let size = volume::parse_size(&v.size).map_err(|e| anyhow::anyhow!(e))?;
            volume::create(&image, size, None)?;
            log::info!("made volume {} for {guest}", image.display());
        }
        out.push(volume::VolumeArg {
            image,
            guest,
            read_only: false,
        });
    }
    Ok(out)
}

fn pkg_run(registry: &Registry, cache: &Cache, run: Box<PkgRunArgs>) -> anyhow::Result<u8> {
    let recipe = program_recipe(registry, &run.name)?;
    let built = build(registry, &run.name, cache, false)?;
    let last = built.last().context("nothing built")?;
    let image = image(
        recipe,
        last,
        &run.kernel.load()?,
        None,
        &run.args,
        &run.env.env,
        &run.files,
    )?;
    let tmp = tempfile::Builder::new().prefix("kiln-pkg-").tempdir()?;
    let image_path = tmp.path().join(format!("{}.img", recipe.name()));
    crate::write_output(&image_path, &image)?;

    let mem = match (run.mem, &recipe.file.run.memory) {
        (Some(m), _) => m,
        (None, Some(m)) => baking::parse_mem(m).map_err(|e| anyhow::anyhow!(e))?,
        (None, None) => 128,
    };
    let mut volumes = run.volume.clone();
    volumes.extend(default_volumes(recipe, &run.volume, |g| {
        default_volume_path(cache, recipe.name(), g)
    })?);
    let publish = merge_ports(run.net.publish.clone(), &recipe.file.run.ports, run.net.net.as_ref())?;
    let args = crate::RunArgs {
        target: image_path,
        mem,
        accel: run.accel,
        machine: run.machine,
        timeout: run.timeout,
        verbose: run.verbose,
        volume: volumes,
        env: EnvArgs { env: Vec::new() },
        files: no_files(),
        kernel: KernelArg { kernel: None },
        net: NetArgs {
            publish,
            net: run.net.net,
            ip: run.net.ip,
            gateway: run.net.gateway,
        },
        args: Vec::new(),
    };
    let status = crate::run(args)?;
    drop(tmp);
    Ok(status)
}

/// The port maps of `bake pkg run`: the user's `-p`, then the recipe's for the guest ports the
/// user did not map. The recipe's maps are for QEMU user networking: on a tap device the
/// guest's ports are reachable at its own address, so they are left out (with a note).
fn merge_ports(
    mut publish: Vec<crate::qemu::PortMap>,
    recipe_ports: &[String],
    backend: Option<&crate::qemu::NetBackend>,
) -> anyhow::Result<Vec<crate::qemu::PortMap>> {
    if let Some(crate::qemu::NetBackend::Tap(dev)) = backend {
        if !recipe_ports.is_empty() {
            eprintln!(
                "bake: on tap:{dev} the recipe's ports ({}) are not mapped: reach them at the guest's address",
                recipe_ports.join(" ")
            );
        }
        return Ok(publish);
    }
    for p in recipe_ports {
        let p = crate::qemu::parse_port_map(p).map_err(|e| anyhow::anyhow!(e))?;
        if !publish.iter().any(|u| u.guest == p.guest && u.udp == p.udp) {
            publish.push(p);
        }
    }
    Ok(publish)
}

fn test(registry: &Registry, cache: &Cache, names: &[String], kernel: &[u8]) -> anyhow::Result<u8> {
    for name in names {
        let r = registry.get(name).map_err(recipe_error)?;
        if !r.is_program() {
            return Err(Fail::new(
                exit_codes::KILN_FAILED,
                format!("{name} is a library and has no smoke test"),
                "test a program that depends on it",
            )
            .into());
        }
    }
    let keys = cache::keys(registry)?;
    let mut failed = Vec::new();
    for name in names {
        let recipe = registry.get(name).map_err(recipe_error)?;
        let key = cache::test_key(recipe, &keys[name.as_str()])?;
        let started = Instant::now();
        let verdict = match test_one(registry, cache, recipe, kernel) {
            Ok(v) => v,
            Err(e) => {
                let message = match e.downcast_ref::<Fail>() {
                    Some(f) => f.to_string(),
                    None => format!("{e:#}"),
                };
                Err(format!("not tested: {message}"))
            }
        };
        let secs = started.elapsed().as_secs_f64();
        match &verdict {
            Ok(what) => println!("PASS {name}: {what} ({secs:.1} s)"),
            Err(why) => {
                println!("FAIL {name}: {why} ({secs:.1} s)");
                failed.push(name.clone());
            }
        }
        let (passed, detail) = match verdict {
            Ok(d) => (true, d),
            Err(d) => (false, d.lines().next().unwrap_or("").to_string()),
        };
        cache.save_status(name, &cache::TestStatus::new(passed, &key, detail))?;
    }
    if names.len() > 1 {
        println!(
            "{} passed, {} failed{}",
            names.len() - failed.len(),
            failed.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(": {}", failed.join(", "))
            }
        );
    }
    Ok(if failed.is_empty() { 0 } else { TEST_FAILED })
}

/// Builds, boots and checks one program recipe; `Err` inside is a failed test.
fn test_one(
    registry: &Registry,
    cache: &Cache,
    recipe: &Recipe,
    kernel: &[u8],
) -> anyhow::Result<Result<String, String>> {
    let built = build(registry, recipe.name(), cache, false)?;
    let last = built.last().context("nothing built")?;
    let test = recipe.file.test.as_ref().context("no smoke test")?;
    let tmp = tempfile::Builder::new()
        .prefix("kiln-pkg-test-")
        .tempdir()?;
    let image = image(recipe, last, kernel, None, &[], &[], &no_files())?;
    let image_path = tmp.path().join(format!("{}.img", recipe.name()));
    crate::write_output(&image_path, &image)?;
    // A fresh copy of each default volume, so tests do not depend on earlier runs.
    let volumes = default_volumes(recipe, &[], |g| {
        Ok(tmp
            .path()
            .join(format!("{}.vol", g.trim_matches('/').replace('/', "_"))))
    })?;
    let mem = match &recipe.file.run.memory {
        Some(m) => Some(baking::parse_mem(m).map_err(|e| anyhow::anyhow!(e))?),
        None => None,
    };
    smoke::run(
        test,
        &smoke::Boot {
            image: &image_path,
            mem,
            volumes: &volumes,
            out_dir: tmp.path(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn recipe_ports_add_to_the_users_on_user_networking_only() {
        use crate::qemu::{NetBackend, PortMap};
        let pm = |host, guest, udp| PortMap { host, guest, udp };
        let recipe = ["8080:80".to_string(), "5353:53/udp".to_string()];
        let user = vec![pm(9000, 80, false)];
        assert_eq!(
            merge_ports(user.clone(), &recipe, None).unwrap(),
            [pm(9000, 80, false), pm(5353, 53, true)],
            "the user's map of guest port 80 wins"
        );
        assert_eq!(merge_ports(Vec::new(), &recipe, Some(&NetBackend::User)).unwrap().len(), 2);
        let tap = NetBackend::Tap("kilntap0".into());
        assert_eq!(merge_ports(Vec::new(), &recipe, Some(&tap)).unwrap(), [], "nothing to map on a tap device");
        assert_eq!(merge_ports(user.clone(), &recipe, Some(&tap)).unwrap(), user, "the user's -p is left for run to refuse");
        let bad = ["80".to_string()];
        assert!(merge_ports(Vec::new(), &bad, None).is_err());
    }

    fn parse(args: &[&str]) -> Result<crate::Cli, clap::Error> {
        let argv: Vec<OsString> = std::iter::once("bake")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        crate::Cli::try_parse_from(volume::rewrite_volume_flags(argv))
    }

    fn pkg(args: &[&str]) -> PkgArgs {
        match parse(args).unwrap().command {
            crate::Cmd::Pkg(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pkg_run_arguments() {
        let p = pkg(&[
            "pkg",
            "run",
            "redis",
            "-p",
            "7000:6379",
            "-v",
            "d.img:/data",
            "-e",
            "A=1",
            "--mem",
            "1G",
            "-v",
            "--",
            "--port",
            "6379",
        ]);
        assert_eq!(p.verbosity(), 1);
        let PkgCmd::Run(r) = p.command else { panic!() };
        assert_eq!(r.name, "redis");
        assert_eq!(r.net.publish.len(), 1);
        assert_eq!(r.volume[0].guest, "/data");
        assert_eq!(r.mem, Some(1024));
        assert_eq!(
            r.args,
            vec![OsString::from("--port"), OsString::from("6379")]
        );
        let PkgCmd::Run(r) = pkg(&["pkg", "run", "lua"]).command else {
            panic!()
        };
        assert_eq!((r.mem, r.args.len()), (None, 0));
    }

    #[test]
    fn pkg_subcommands() {
        assert!(matches!(pkg(&["pkg", "list"]).command, PkgCmd::List));
        let p = pkg(&["pkg", "--recipes", "/r", "test", "--all"]);
        assert_eq!(p.recipes, Some(PathBuf::from("/r")));
        assert!(matches!(
            p.command,
            PkgCmd::Test {
                name: None,
                all: true,
                ..
            }
        ));
        assert!(parse(&["pkg", "test"]).is_err(), "a name or --all");
        assert!(parse(&["pkg", "test", "lua", "--all"]).is_err());
        let PkgCmd::Build { name, output } = pkg(&["pkg", "build", "nginx", "-o", "n.img"]).command
        else {
            panic!()
        };
        assert_eq!(
            (name.as_str(), output),
            ("nginx", Some(PathBuf::from("n.img")))
        );
    }

    #[test]
    fn build_recipe_arguments() {
        let crate::Cmd::Build(b) =
            parse(&["build", "--recipe", "lua", "-o", "l.img", "--", "-e", "x"])
                .unwrap()
                .command
        else {
            panic!()
        };
        assert_eq!((b.elf, b.recipe.as_deref()), (None, Some("lua")));
        assert_eq!(b.args.len(), 2);
        assert!(
            parse(&["build", "-o", "x.img"]).is_err(),
            "an ELF or --recipe"
        );
        assert!(parse(&["build", "prog", "--recipe", "lua", "-o", "x.img"]).is_err());
    }

    fn write_recipe(dir: &Path, name: &str, deps: &str, run: &str) {
        let text = format!(
            r#"name = "{name}"
version = "1"
summary = "s"
license = "MIT"
homepage = "https://example.org"
dependencies = {deps}
[source]
path = "src"
[build]
script = "true"
program = "p"
{run}
[test]
kind = "exec"
args = []
expect_stdout = ""
"#
        );
        std::fs::create_dir_all(dir.join(name).join("src")).unwrap();
        std::fs::write(dir.join(name).join("recipe.toml"), text).unwrap();
    }

    #[test]
    fn registry_orders_dependencies_and_keys_follow_content() {
        let d = tempfile::tempdir().unwrap();
        write_recipe(d.path(), "app", "[\"lib-b\", \"lib-a\"]", "");
        write_recipe(d.path(), "lib-a", "[]", "");
        write_recipe(d.path(), "lib-b", "[\"lib-a\"]", "");
        let reg = Registry::load(d.path()).unwrap();
        let order: Vec<&str> = reg.order("app").unwrap().iter().map(|r| r.name()).collect();
        assert_eq!(order, ["lib-a", "lib-b", "app"]);
        let keys = cache::keys(&reg).unwrap();
        std::fs::write(d.path().join("lib-a/src/x.c"), "int x;").unwrap();
        let reg = Registry::load(d.path()).unwrap();
        let changed = cache::keys(&reg).unwrap();
        for name in ["lib-a", "lib-b", "app"] {
            assert_ne!(
                keys[name], changed[name],
                "{name} depends on lib-a's source"
            );
        }
        std::fs::write(d.path().join("app/README.md"), "docs").unwrap();
        let reg = Registry::load(d.path()).unwrap();
        assert_eq!(
            cache::keys(&reg).unwrap(),
            changed,
            "README.md is not built"
        );
        // Config files and the test are not built either, but a test result goes stale.
        let tested = cache::test_key(reg.get("app").unwrap(), &changed["app"]).unwrap();
        std::fs::create_dir_all(d.path().join("app/files/etc")).unwrap();
        std::fs::write(d.path().join("app/files/etc/app.conf"), "x=1").unwrap();
        let text = std::fs::read_to_string(d.path().join("app/recipe.toml")).unwrap();
        std::fs::write(
            d.path().join("app/recipe.toml"),
            text.replace("args = []", "args = [\"-v\"]"),
        )
        .unwrap();
        let reg = Registry::load(d.path()).unwrap();
        assert_eq!(
            cache::keys(&reg).unwrap(),
            changed,
            "files/ and [test] are not built"
        );
        let retested = cache::test_key(reg.get("app").unwrap(), &changed["app"]).unwrap();
        assert_ne!(retested, tested);
    }

    #[test]
    fn default_volumes_yield_to_the_users() {
        let d = tempfile::tempdir().unwrap();
        write_recipe(
            d.path(),
            "db",
            "[]",
            "[run]\nvolumes = [{ guest = \"/data\", size = \"4M\" }, { guest = \"/logs\", size = \"4M\" }]",
        );
        let reg = Registry::load(d.path()).unwrap();
        let recipe = reg.get("db").unwrap();
        let user = vec![volume::parse_volume("mine.img:/data").unwrap()];
        let made = default_volumes(recipe, &user, |g| {
            Ok(d.path().join(format!("{}.img", g.trim_matches('/'))))
        })
        .unwrap();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].guest, "/logs");
        assert!(made[0].image.is_file(), "made on first use");
        assert!(!d.path().join("data.img").exists());
        // The second time it is reused, not made again (volume::create refuses to overwrite).
        default_volumes(recipe, &user, |g| {
            Ok(d.path().join(format!("{}.img", g.trim_matches('/'))))
        })
        .unwrap();
    }
}

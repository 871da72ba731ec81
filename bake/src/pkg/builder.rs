//! Building recipes: dependencies first, each in a clean folder, each once per key.
//!
//! A recipe's script runs as `bash -euxo pipefail` in the unpacked source with this
//! environment (and the caller's, minus compiler and cargo flags that would leak in):
//!
//! | variable | value |
//! |---|---|
//! | `SRC` | the unpacked source (the working directory) |
//! | `PREFIX` | where a library installs itself (`--prefix=$PREFIX`); kept in the cache |
//! | `RECIPE` | the recipe folder (for `files/` or extra sources) |
//! | `DEP_<NAME>` | each dependency's `PREFIX`, e.g. `DEP_PCRE2` |
//! | `CC` | `musl-gcc` |
//! | `JOBS` | how many jobs `make -j` may use |
//! | `TOOL_CACHE` | a folder kept between builds for tools' own caches (Go's GOCACHE) |
//!
//! After the script, `build.program` must be a static x86_64 ELF; it is copied into the
//! cache. A failed build keeps its folder and log and says where they are.

use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::cache::{self, Cache};
use super::recipe::{Recipe, Registry, dep_var};
use super::source;
use crate::{Fail, exit_codes};

/// Variables of the caller's environment that must not reach a clean build.
const SCRUBBED_ENV: &[&str] = &[
    "CFLAGS",
    "CPPFLAGS",
    "CXXFLAGS",
    "LDFLAGS",
    "LIBS",
    "MAKEFLAGS",
    "MFLAGS",
    "CARGO_MAKEFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "GOFLAGS",
    "CGO_ENABLED",
];

/// A finished build in the cache.
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    /// `builds/<name>-<key>`.
    pub dir: PathBuf,
    /// The program (`bin/<file>`), for a program recipe.
    pub program: Option<PathBuf>,
}

impl Built {
    pub fn prefix(&self) -> PathBuf {
        self.dir.join("prefix")
    }
}

/// Builds `name` and its dependencies (dependencies first); returns them all, `name` last.
/// `say_cached`: also say which came from the cache (`bake pkg build`; `run` and `test` keep
/// quiet about them).
pub fn build(
    registry: &Registry,
    name: &str,
    cache: &Cache,
    say_cached: bool,
) -> anyhow::Result<Vec<Built>> {
    let order = registry.order(name)?;
    let keys = cache::keys(registry)?;
    let mut built: Vec<Built> = Vec::new();
    let total = order.len();
    for (i, recipe) in order.into_iter().enumerate() {
        let key = &keys[recipe.name()];
        let step = format!("[{}/{total}]", i + 1);
        let b = build_one(recipe, key, &built, cache, &step, say_cached)?;
        built.push(b);
    }
    Ok(built)
}

fn program_file(recipe: &Recipe, dir: &Path) -> Option<PathBuf> {
    let program = recipe.file.build.program.as_ref()?;
    let file = Path::new(program).file_name()?;
    Some(dir.join("bin").join(file))
}

fn build_one(
    recipe: &Recipe,
    key: &str,
    deps: &[Built],
    cache: &Cache,
    step: &str,
    say_cached: bool,
) -> anyhow::Result<Built> {
    let dir = cache.build_dir(recipe, key)?;
    let done = || Built {
        name: recipe.name().to_string(),
        program: program_file(recipe, &dir),
        dir: dir.clone(),
    };
    let what = format!("{} {}", recipe.name(), recipe.file.version);
    if dir.join("DONE").is_file() {
        if say_cached {
            note(&format!("{step} {what}: cached"));
        }
        return Ok(done());
    }
    let _lock = cache.lock(recipe, key)?;
    if dir.join("DONE").is_file() {
        note(&format!(
            "{step} {what}: cached (built by another bake meanwhile)"
        ));
        return Ok(done());
    }
    for tool in &recipe.file.build.tools {
        if !source::which(tool) {
            return Err(Fail::new(
                exit_codes::KILN_FAILED,
                format!(
                    "building {} needs `{tool}`, which is not on PATH",
                    recipe.name()
                ),
                "run scripts/setup.sh, which installs the tools the recipes need",
            )
            .into());
        }
    }
    let started = Instant::now();
    let work = cache.work_dir(recipe, key)?;
    for d in [&dir, &work] {
        if d.exists() {
            std::fs::remove_dir_all(d)
                .with_context(|| format!("cannot remove the old {}", d.display()))?;
        }
    }
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(dir.join("prefix"))?;
    let log_path = work.join("build.log");
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;

    let bar = Progress::start(&format!("{step} {what}"));
    let failed = |problem: String, log_path: &Path| -> anyhow::Error {
        eprint!("{}", tail(log_path));
        Fail::new(
            exit_codes::KILN_FAILED,
            problem,
            format!(
                "see the whole log in {} (the build folder is kept there); fix the recipe in {}",
                log_path.display(),
                recipe.dir.display()
            ),
        )
        .into()
    };

    bar.message("fetching the source");
    let archive = match source::fetch(recipe, cache, &mut log) {
        Ok(a) => a,
        Err(e) => {
            bar.fail();
            return Err(e);
        }
    };
    bar.message("unpacking");
    let src = work.join("src");
    if let Err(e) = source::prepare(recipe, archive.as_deref(), &src, &mut log) {
        bar.fail();
        return Err(failed(
            format!("preparing the source of {}: {e:#}", recipe.name()),
            &log_path,
        ));
    }

    let script = work.join("build.sh");
    std::fs::write(
        &script,
        format!("set -euxo pipefail\n{}\n", recipe.file.build.script),
    )?;
    let mut cmd = Command::new("bash");
    cmd.arg(&script)
        .current_dir(&src)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?);
    for v in SCRUBBED_ENV {
        cmd.env_remove(v);
    }
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    cmd.env("SRC", &src)
        .env("PREFIX", dir.join("prefix"))
        .env("RECIPE", &recipe.dir)
        .env("CC", "musl-gcc")
        .env("JOBS", jobs.to_string())
        .env("TOOL_CACHE", cache.sub("tool-cache")?)
        // A cache inside a git checkout must not make builds see that repository (redis
        // records the commit it finds).
        .env("GIT_CEILING_DIRECTORIES", &work);
    for dep in deps {
        cmd.env(dep_var(&dep.name), dep.prefix());
    }
    let mut child = cmd
        .spawn()
        .with_context(|| "cannot start bash for the build script".to_string())?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        bar.message(&last_line(&log_path));
        std::thread::sleep(Duration::from_millis(200));
    };
    if !status.success() {
        bar.fail();
        return Err(failed(
            format!("the build script of {} failed ({status})", recipe.name()),
            &log_path,
        ));
    }

    if let Some(program) = &recipe.file.build.program {
        let built = src.join(program);
        let bytes = match std::fs::read(&built) {
            Ok(b) => b,
            Err(e) => {
                bar.fail();
                return Err(failed(
                    format!("the build of {} made no {program} ({e})", recipe.name()),
                    &log_path,
                ));
            }
        };
        if let Err(e) = libc_shim::elf::parse(&bytes) {
            bar.fail();
            return Err(Fail::new(
                exit_codes::CANNOT_RUN,
                format!("{} built {program}, but Kiln cannot run it: {e}", recipe.name()),
                "link it statically (musl-gcc -static, CGO_ENABLED=0, -C target-feature=+crt-static)",
            )
            .into());
        }
        let dest = program_file(recipe, &dir).context("program file name")?;
        std::fs::create_dir_all(dest.parent().context("bin folder")?)?;
        std::fs::write(&dest, &bytes)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
    }
    drop(log);
    std::fs::copy(&log_path, dir.join("build.log"))?;
    let seconds = started.elapsed().as_secs_f64();
    let record = format!(
        "name = {:?}\nversion = {:?}\nkey = {key:?}\nseconds = {seconds:.1}\n",
        recipe.name(),
        recipe.file.version
    );
    cache::write_atomic(&dir.join("DONE"), record.as_bytes())?;
    let _ = std::fs::remove_dir_all(&work);
    bar.finish(&format!("{step} {what}: built in {seconds:.0} s"));
    Ok(done())
}

/// The last lines of a log, for an error message.
fn tail(log: &Path) -> String {
    let Ok(text) = std::fs::read(log) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(12)..];
    if last.is_empty() {
        return String::new();
    }
    format!("  | {}\n", last.join("\n  | "))
}

/// The last line a build has printed so far, shortened for a progress line.
fn last_line(log: &Path) -> String {
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(512)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let line = line.trim();
    let mut short: String = line.chars().take(70).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

/// One line per step on stderr: a spinner on a terminal, plain lines otherwise.
fn note(line: &str) {
    eprintln!("bake: {line}");
}

struct Progress {
    bar: Option<ProgressBar>,
    what: String,
}

impl Progress {
    fn start(what: &str) -> Progress {
        if !std::io::stderr().is_terminal() {
            note(&format!("{what}: building"));
            return Progress {
                bar: None,
                what: what.to_string(),
            };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress {
            bar: Some(bar),
            what: what.to_string(),
        }
    }

    fn message(&self, m: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(m.to_string());
        }
    }

    fn finish(&self, line: &str) {
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                note(line);
            }
            None => note(line),
        }
    }

    fn fail(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let _ = writeln!(std::io::stderr(), "bake: {}: failed", self.what);
    }
}

//! Recipe files: `packages/NAME/recipe.toml`, parsed, validated and ordered by dependency.
//!
//! This module only reads and checks recipes; it never runs anything. Every error names the
//! recipe file, the problem and the fix. The format is described in `packages/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What can be wrong with a recipe or a set of recipes. Each message reads `problem: fix`.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// No recipe folder at all.
    #[error(
        "no recipes in {dir}: give the packages folder with --recipes DIR or KILN_PACKAGES, or run bake inside the Kiln repository"
    )]
    NoRecipes { dir: PathBuf },
    /// The recipe file cannot be read.
    #[error("cannot read {path}: {source}: check the file exists and is readable")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, a missing key, a value of the wrong type.
    #[error("{path}: {message}: fix the recipe (the format is in packages/README.md)")]
    Parse { path: PathBuf, message: String },
    /// A value that parses but cannot be right.
    #[error("{path}: {problem}: {fix}")]
    Invalid {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    /// A dependency without a recipe.
    #[error(
        "{path}: dependency {dependency:?} has no recipe (known: {known}): add packages/{dependency}/recipe.toml or fix the name"
    )]
    UnknownDependency {
        path: PathBuf,
        dependency: String,
        known: String,
    },
    /// Recipes that depend on each other in a circle.
    #[error("dependency cycle {}: remove one of these dependencies", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    /// A name that no recipe has.
    #[error("no recipe named {name:?} in {dir} (known: {known}): run bake pkg list")]
    UnknownRecipe {
        name: String,
        dir: PathBuf,
        known: String,
    },
}

/// `recipe.toml` exactly as written. Unknown keys are errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub license: String,
    pub homepage: String,
    /// Other recipes that must be built first; their install prefixes are given to this
    /// build as `DEP_<NAME>`.
    #[serde(default)]
    pub dependencies: Vec<String>,
    pub source: SourceSpec,
    pub build: BuildSpec,
    /// How the program runs by default (programs only).
    #[serde(default)]
    pub run: RunDefaults,
    /// The smoke test (required for programs, refused for libraries).
    pub test: Option<SmokeTest>,
}

/// Where the source comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Where upstream publishes the archive (used when the Debian route fails).
    pub url: Option<String>,
    /// SHA-256 of the archive, checked whichever way it was fetched.
    pub sha256: Option<String>,
    /// The Debian source package whose `.orig` tarball is this archive.
    pub debian: Option<DebianSource>,
    /// Instead of an archive: a folder inside the recipe folder (e.g. `src`).
    pub path: Option<String>,
}

/// `apt-get source --download-only PACKAGE=VERSION`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianSource {
    pub package: String,
    pub version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// A bash script run with `set -euxo pipefail` in the unpacked source.
    pub script: String,
    /// Host commands the script needs (checked before building).
    #[serde(default)]
    pub tools: Vec<String>,
    /// The program the build makes, relative to the source folder; absent for a library,
    /// which installs into `$PREFIX` instead.
    pub program: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunDefaults {
    /// argv[1..].
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `HOST:GUEST` port forwards, as `bake run -p`.
    #[serde(default)]
    pub ports: Vec<String>,
    /// Guest memory, as `bake run --mem`.
    pub memory: Option<String>,
    /// Volumes made on first use by `bake pkg run` (and fresh for each test).
    #[serde(default)]
    pub volumes: Vec<VolumeDefault>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeDefault {
    pub guest: String,
    pub size: String,
}

/// How `bake pkg test` decides that the app works.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SmokeTest {
    /// Connect to the guest port, send bytes, expect bytes in the reply.
    Tcp {
        port: u16,
        send: String,
        expect: String,
        timeout: Option<u64>,
    },
    /// An HTTP/1.0 request; expect a status (and optionally text in the body).
    Http {
        port: u16,
        #[serde(default = "default_method")]
        method: String,
        #[serde(default = "default_path")]
        path: String,
        expect_status: u16,
        expect_body: Option<String>,
        timeout: Option<u64>,
    },
    /// Run the program with these arguments; expect its stdout (exactly) and exit status.
    Exec {
        args: Vec<String>,
        expect_stdout: String,
        #[serde(default)]
        expect_status: i32,
        timeout: Option<u64>,
    },
}

fn default_method() -> String {
    "GET".into()
}

fn default_path() -> String {
    "/".into()
}

impl SmokeTest {
    /// Seconds the test may take once the program is built (boot included).
    pub fn timeout_secs(&self) -> u64 {
        let t = match self {
            SmokeTest::Tcp { timeout, .. }
            | SmokeTest::Http { timeout, .. }
            | SmokeTest::Exec { timeout, .. } => *timeout,
        };
        t.unwrap_or(90)
    }

    /// One line saying what the test does.
    pub fn describe(&self) -> String {
        match self {
            SmokeTest::Tcp {
                port, send, expect, ..
            } => format!("tcp {port} send {send:?} expect {expect:?}"),
            SmokeTest::Http {
                port,
                method,
                path,
                expect_status,
                expect_body,
                ..
            } => {
                let body = expect_body
                    .as_ref()
                    .map(|b| format!(" body {b:?}"))
                    .unwrap_or_default();
                format!("http {port} {method} {path} expect {expect_status}{body}")
            }
            SmokeTest::Exec {
                args,
                expect_stdout,
                expect_status,
                ..
            } => format!(
                "exec {args:?} expect status {expect_status} and {} line(s) of stdout",
                expect_stdout.lines().count()
            ),
        }
    }
}

/// The archive, or the local folder, a recipe builds from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Archive {
        url: String,
        sha256: String,
        debian: (String, String),
    },
    /// A folder of the recipe (absolute path).
    Local(PathBuf),
}

/// A checked recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub file: RecipeFile,
    /// `packages/NAME`.
    pub dir: PathBuf,
    pub source: Source,
}

impl Recipe {
    pub fn name(&self) -> &str {
        &self.file.name
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("recipe.toml")
    }

    pub fn is_program(&self) -> bool {
        self.file.build.program.is_some()
    }

    /// `packages/NAME/files`, if the recipe has one: the guest's root filesystem.
    pub fn files_dir(&self) -> Option<PathBuf> {
        let d = self.dir.join("files");
        d.is_dir().then_some(d)
    }

    /// Parses and checks one recipe file (dependencies are checked by [`Registry`]).
    pub fn load(dir: &Path) -> Result<Recipe, RecipeError> {
        let path = dir.join("recipe.toml");
        let text = std::fs::read_to_string(&path).map_err(|source| RecipeError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(dir, &text)
    }

    pub fn parse(dir: &Path, text: &str) -> Result<Recipe, RecipeError> {
        let path = dir.join("recipe.toml");
        let file: RecipeFile = toml::from_str(text).map_err(|e| RecipeError::Parse {
            path: path.clone(),
            message: one_line(&e),
        })?;
        let invalid = |problem: String, fix: &str| RecipeError::Invalid {
            path: path.clone(),
            problem,
            fix: fix.to_string(),
        };
        if !valid_name(&file.name) {
            return Err(invalid(
                format!("name {:?} is not a recipe name", file.name),
                "use lowercase letters, digits and '-' (it names the folder and DEP_ variables)",
            ));
        }
        let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if folder != file.name {
            return Err(invalid(
                format!(
                    "the recipe is named {:?} but its folder is {folder:?}",
                    file.name
                ),
                "rename the folder or the name so that they match",
            ));
        }
        for (field, value) in [
            ("version", &file.version),
            ("summary", &file.summary),
            ("license", &file.license),
            ("homepage", &file.homepage),
            ("build.script", &file.build.script),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(format!("{field} is empty"), "fill it in"));
            }
        }
        let source = check_source(dir, &file.source).map_err(|(p, f)| invalid(p, f))?;
        for dep in &file.dependencies {
            if dep == &file.name {
                return Err(RecipeError::Cycle {
                    cycle: vec![dep.clone(), dep.clone()],
                });
            }
        }
        if let Some(program) = &file.build.program {
            let p = Path::new(program);
            if program.is_empty()
                || p.is_absolute()
                || p.components().any(|c| c == std::path::Component::ParentDir)
            {
                return Err(invalid(
                    format!("build.program {program:?} is not a path inside the source folder"),
                    "give it relative to the unpacked source, e.g. \"src/redis-server\"",
                ));
            }
            if file.test.is_none() {
                return Err(invalid(
                    "the program has no [test]".into(),
                    "add a smoke test: kind = \"tcp\", \"http\" or \"exec\" (see packages/README.md)",
                ));
            }
            check_run(&file.run).map_err(|(p, f)| invalid(p, f))?;
            if let Some(SmokeTest::Tcp { send, expect, .. }) = &file.test
                && (send.is_empty() || expect.is_empty())
            {
                return Err(invalid(
                    "a tcp test needs a non-empty send and expect".into(),
                    "e.g. send = \"PING\\r\\n\", expect = \"+PONG\"",
                ));
            }
        } else {
            if file.test.is_some() {
                return Err(invalid(
                    "a library (no build.program) has a [test]".into(),
                    "test the library through a program that depends on it, or set build.program",
                ));
            }
            let r = &file.run;
            if !(r.args.is_empty()
                && r.env.is_empty()
                && r.ports.is_empty()
                && r.memory.is_none()
                && r.volumes.is_empty())
            {
                return Err(invalid(
                    "a library (no build.program) has [run] defaults".into(),
                    "remove [run], or set build.program",
                ));
            }
        }
        Ok(Recipe {
            file,
            dir: dir.to_path_buf(),
            source,
        })
    }
}

/// toml's messages span several lines (a source excerpt); errors here are one line.
fn one_line(e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => format!("{message} (at byte {})", span.start),
        None => message,
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// The environment variable naming a dependency's prefix: `DEP_PCRE2`, `DEP_GO_HTTP`.
pub fn dep_var(name: &str) -> String {
    let upper: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("DEP_{upper}")
}

type Problem = (String, &'static str);

fn check_source(dir: &Path, s: &SourceSpec) -> Result<Source, Problem> {
    if let Some(path) = &s.path {
        if s.url.is_some() || s.sha256.is_some() || s.debian.is_some() {
            return Err((
                "source.path is given together with url/sha256/debian".into(),
                "a recipe builds either from its own folder (path) or from an archive (url, sha256, debian), not both",
            ));
        }
        let p = Path::new(path);
        if p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
            return Err((
                format!("source.path {path:?} is outside the recipe folder"),
                "give a folder inside the recipe folder, e.g. \"src\"",
            ));
        }
        let full = dir.join(p);
        if !full.is_dir() {
            return Err((
                format!("source.path {path:?}: {} is not a folder", full.display()),
                "create it or fix the path",
            ));
        }
        return Ok(Source::Local(full));
    }
    let (Some(url), Some(sha256), Some(debian)) = (&s.url, &s.sha256, &s.debian) else {
        let missing: Vec<&str> = [
            ("url", s.url.is_none()),
            ("sha256", s.sha256.is_none()),
            ("debian", s.debian.is_none()),
        ]
        .iter()
        .filter(|(_, m)| *m)
        .map(|(k, _)| *k)
        .collect();
        return Err((
            format!("[source] lacks {}", missing.join(", ")),
            "an archive source needs url, sha256 and debian = { package, version } (or path = \"src\" for a source folder in the recipe)",
        ));
    };
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((
            format!("source.sha256 {sha256:?} is not a SHA-256 (64 hex digits)"),
            "write the archive's checksum as printed by sha256sum",
        ));
    }
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err((
            format!("source.url {url:?} is not an http(s) URL"),
            "give where upstream publishes the archive",
        ));
    }
    if debian.package.is_empty()
        || debian.version.is_empty()
        || debian.package.contains(['=', ' '])
        || debian.version.contains(' ')
    {
        return Err((
            format!(
                "source.debian {:?}={:?} is not a source package and version",
                debian.package, debian.version
            ),
            "write what `apt-cache showsrc NAME` lists, e.g. { package = \"redis\", version = \"5:7.0.15-1~deb12u10\" }",
        ));
    }
    Ok(Source::Archive {
        url: url.clone(),
        sha256: sha256.to_ascii_lowercase(),
        debian: (debian.package.clone(), debian.version.clone()),
    })
}

fn check_run(r: &RunDefaults) -> Result<(), Problem> {
    for p in &r.ports {
        crate::qemu::parse_port_map(p).map_err(|e| {
            (
                format!("run.ports {p:?}: {e}"),
                "write HOST:GUEST, e.g. \"6379:6379\"",
            )
        })?;
    }
    if let Some(m) = &r.memory {
        crate::baking::parse_mem(m)
            .map_err(|e| (format!("run.memory {m:?}: {e}"), "e.g. \"256M\""))?;
    }
    for k in r.env.keys() {
        if k.is_empty() || k.contains('=') {
            return Err((
                format!("run.env key {k:?} is not a variable name"),
                "write env = { NAME = \"value\" }",
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for v in &r.volumes {
        crate::volume::parse_size(&v.size).map_err(|e| {
            (
                format!("run.volumes size {:?}: {e}", v.size),
                "e.g. \"64M\"",
            )
        })?;
        crate::volume::parse_volume(&format!("x.img:{}", v.guest)).map_err(|e| {
            (
                format!("run.volumes guest {:?}: {e}", v.guest),
                "e.g. guest = \"/data\"",
            )
        })?;
        if !seen.insert(v.guest.trim_end_matches('/')) {
            return Err((
                format!("run.volumes mounts two volumes on {}", v.guest),
                "give each volume its own guest path",
            ));
        }
    }
    Ok(())
}

/// All recipes of a packages folder, checked together (dependencies known, no cycles).
#[derive(Debug)]
pub struct Registry {
    pub dir: PathBuf,
    pub recipes: BTreeMap<String, Recipe>,
}

impl Registry {
    /// Loads every `DIR/*/recipe.toml`; the first error stops it.
    pub fn load(dir: &Path) -> Result<Registry, RecipeError> {
        let entries = std::fs::read_dir(dir).map_err(|source| RecipeError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut folders: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("recipe.toml").is_file())
            .collect();
        folders.sort();
        if folders.is_empty() {
            return Err(RecipeError::NoRecipes {
                dir: dir.to_path_buf(),
            });
        }
        let mut recipes = BTreeMap::new();
        for folder in folders {
            let recipe = Recipe::load(&folder)?;
            recipes.insert(recipe.name().to_string(), recipe);
        }
        let registry = Registry {
            dir: dir.to_path_buf(),
            recipes,
        };
        registry.check_dependencies()?;
        Ok(registry)
    }

    fn known(&self) -> String {
        self.recipes.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    fn check_dependencies(&self) -> Result<(), RecipeError> {
        for recipe in self.recipes.values() {
            for dep in &recipe.file.dependencies {
                if !self.recipes.contains_key(dep) {
                    return Err(RecipeError::UnknownDependency {
                        path: recipe.path(),
                        dependency: dep.clone(),
                        known: self.known(),
                    });
                }
            }
        }
        for name in self.recipes.keys() {
            self.order(name)?;
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<&Recipe, RecipeError> {
        self.recipes
            .get(name)
            .ok_or_else(|| RecipeError::UnknownRecipe {
                name: name.to_string(),
                dir: self.dir.clone(),
                known: self.known(),
            })
    }

    /// `name` and everything it depends on, dependencies first.
    pub fn order(&self, name: &str) -> Result<Vec<&Recipe>, RecipeError> {
        let mut done = Vec::new();
        let mut path = Vec::new();
        self.visit(name, &mut path, &mut done)?;
        Ok(done)
    }

    fn visit<'a>(
        &'a self,
        name: &str,
        path: &mut Vec<String>,
        done: &mut Vec<&'a Recipe>,
    ) -> Result<(), RecipeError> {
        if done.iter().any(|r| r.name() == name) {
            return Ok(());
        }
        if let Some(start) = path.iter().position(|p| p == name) {
            let mut cycle = path[start..].to_vec();
            cycle.push(name.to_string());
            return Err(RecipeError::Cycle { cycle });
        }
        let recipe = self.get(name)?;
        path.push(name.to_string());
        for dep in &recipe.file.dependencies {
            self.visit(dep, path, done)?;
        }
        path.pop();
        done.push(recipe);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "demo"
version = "1.0"
summary = "a demo"
license = "MIT"
homepage = "https://example.org"
dependencies = []

[source]
url = "https://example.org/demo-1.0.tar.gz"
sha256 = "9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31"
debian = { package = "demo", version = "1.0-1" }

[build]
script = "make"
program = "demo"

[run]
args = ["--flag"]
ports = ["8080:80"]
memory = "256M"

[test]
kind = "http"
port = 80
expect_status = 200
"#;

    fn parse(text: &str) -> Result<Recipe, RecipeError> {
        Recipe::parse(Path::new("/p/demo"), text)
    }

    #[test]
    fn good_recipe_parses() {
        let r = parse(GOOD).unwrap();
        assert_eq!(r.name(), "demo");
        assert!(r.is_program());
        match &r.file.test {
            Some(SmokeTest::Http {
                method,
                path,
                expect_status,
                ..
            }) => assert_eq!(
                (method.as_str(), path.as_str(), *expect_status),
                ("GET", "/", 200)
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            r.source,
            Source::Archive {
                url: "https://example.org/demo-1.0.tar.gz".into(),
                sha256: "9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31".into(),
                debian: ("demo".into(), "1.0-1".into())
            }
        );
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = err(&GOOD.replace("license =", "colour = \"red\"\nlicense ="));
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e = err(&GOOD.replace("expect_status = 200", "expect_status = 200\nexpct = 1"));
        assert!(e.contains("expct"), "{e}");
        let e = err(&GOOD.replace("kind = \"http\"", "kind = \"smtp\""));
        assert!(e.contains("smtp"), "{e}");
    }

    #[test]
    fn missing_fields_are_named() {
        let e = err(&GOOD.replace("summary = \"a demo\"\n", ""));
        assert!(e.contains("missing field `summary`"), "{e}");
        let e = err(&GOOD.replace("url = \"https://example.org/demo-1.0.tar.gz\"\n", ""));
        assert!(e.contains("lacks url"), "{e}");
        let e = err(&GOOD.replace(
            "[test]\nkind = \"http\"\nport = 80\nexpect_status = 200\n",
            "",
        ));
        assert!(e.contains("no [test]"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        let e = err(&GOOD.replace("9ebb333a", "nothex!!"));
        assert!(e.contains("not a SHA-256"), "{e}");
        let e = err(&GOOD.replace("8080:80", "8080"));
        assert!(e.contains("run.ports"), "{e}");
        let e = err(&GOOD.replace("256M", "lots"));
        assert!(e.contains("run.memory"), "{e}");
        let e = err(&GOOD.replace("name = \"demo\"", "name = \"other\""));
        assert!(e.contains("folder"), "{e}");
        let e = err(&GOOD.replace("program = \"demo\"", "program = \"../demo\""));
        assert!(e.contains("build.program"), "{e}");
        let e = err(&GOOD.replace("dependencies = []", "dependencies = [\"demo\"]"));
        assert!(e.contains("cycle demo -> demo"), "{e}");
    }

    #[test]
    fn dependency_names() {
        assert_eq!(dep_var("pcre2"), "DEP_PCRE2");
        assert_eq!(dep_var("go-http"), "DEP_GO_HTTP");
    }
}

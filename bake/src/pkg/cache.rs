//! The package cache: verified source archives, finished builds keyed by what went into
//! them, the last test result of each recipe, and the volumes `bake pkg run` makes.
//!
//! Layout under the cache root (`$KILN_CACHE`, else `$XDG_CACHE_HOME/kiln`, else
//! `~/.cache/kiln`):
//!
//! ```text
//! sources/<sha256>          archives, named by their checksum (checked on every use)
//! builds/<name>-<key>/      one finished build: prefix/ (what the script installed),
//!                           bin/<program>, build.log, DONE (written last)
//! work/<name>-<key>/        a build in progress (kept after a failure, for the log)
//! status/<name>.toml        the last `bake pkg test` result
//! volumes/<name>/           volumes made for `bake pkg run`
//! ```
//!
//! A build's key is the SHA-256 of what the build depends on: the recipe's name, version,
//! dependencies, [source] and [build], its patches/, the source checksum (or its src/
//! folder) and the keys of its dependencies. Changing any of them builds again; changing
//! the run defaults, the test or files/ does not (they only make the last test result
//! stale).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::recipe::{Recipe, Registry, Source};

/// Bumped when the build environment given to scripts changes, so old builds are not reused.
const FORMAT: &str = "kiln-pkg-1";

pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    /// The cache root from the environment.
    pub fn from_env() -> anyhow::Result<Cache> {
        let root = if let Some(d) = std::env::var_os("KILN_CACHE").filter(|d| !d.is_empty()) {
            PathBuf::from(d)
        } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(d).join("kiln")
        } else if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            PathBuf::from(home).join(".cache/kiln")
        } else {
            anyhow::bail!("no cache folder: set KILN_CACHE (or HOME)");
        };
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()?.join(root)
        };
        std::fs::create_dir_all(&root).with_context(|| {
            format!(
                "cannot create the cache folder {}: set KILN_CACHE to a writable folder",
                root.display()
            )
        })?;
        Ok(Cache { root })
    }

    pub fn sub(&self, name: &str) -> anyhow::Result<PathBuf> {
        let d = self.root.join(name);
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
        Ok(d)
    }

    pub fn source_path(&self, sha256: &str) -> anyhow::Result<PathBuf> {
        Ok(self.sub("sources")?.join(sha256))
    }

    pub fn build_dir(&self, recipe: &Recipe, key: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .sub("builds")?
            .join(format!("{}-{}", recipe.name(), &key[..16])))
    }

    pub fn work_dir(&self, recipe: &Recipe, key: &str) -> anyhow::Result<PathBuf> {
        Ok(self
            .sub("work")?
            .join(format!("{}-{}", recipe.name(), &key[..16])))
    }

    /// Takes the cache's lock for one build (another bake building the same recipe waits).
    pub fn lock(&self, recipe: &Recipe, key: &str) -> anyhow::Result<std::fs::File> {
        let path = self
            .sub("locks")?
            .join(format!("{}-{}.lock", recipe.name(), &key[..16]));
        let f = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(f)
    }

    fn status_path(&self, name: &str) -> anyhow::Result<PathBuf> {
        Ok(self.sub("status")?.join(format!("{name}.toml")))
    }

    pub fn save_status(&self, name: &str, status: &TestStatus) -> anyhow::Result<()> {
        let path = self.status_path(name)?;
        let text = toml::to_string(status)?;
        write_atomic(&path, text.as_bytes())
    }

    pub fn load_status(&self, name: &str) -> Option<TestStatus> {
        let path = self.status_path(name).ok()?;
        toml::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }
}

/// What the last `bake pkg test NAME` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestStatus {
    pub passed: bool,
    /// The [`test_key`] tested: a later recipe change makes the result stale.
    pub key: String,
    pub unix_time: u64,
    pub detail: String,
}

impl TestStatus {
    pub fn new(passed: bool, key: &str, detail: String) -> TestStatus {
        TestStatus {
            passed,
            key: key.to_string(),
            unix_time: now(),
            detail,
        }
    }

    /// `pass 5m ago`, `FAIL 2h ago`, `stale` (the recipe changed since).
    pub fn summary(&self, current_key: &str) -> String {
        if self.key != current_key {
            return format!(
                "stale ({} before a change)",
                if self.passed { "passed" } else { "failed" }
            );
        }
        let word = if self.passed { "pass" } else { "FAIL" };
        format!("{word} {} ago", ago(now().saturating_sub(self.unix_time)))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn ago(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// Writes via a temporary file and a rename, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every recipe's build key, dependencies included.
pub fn keys(registry: &Registry) -> anyhow::Result<BTreeMap<String, String>> {
    let mut keys = BTreeMap::new();
    for name in registry.recipes.keys() {
        for recipe in registry.order(name)? {
            if keys.contains_key(recipe.name()) {
                continue;
            }
            let deps: Vec<&String> = recipe.file.dependencies.iter().map(|d| &keys[d]).collect();
            let key = key(recipe, &deps)?;
            keys.insert(recipe.name().to_string(), key);
        }
    }
    Ok(keys)
}

fn key(recipe: &Recipe, dep_keys: &[&String]) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    h.update(FORMAT.as_bytes());
    h.update([0]);
    // What the build depends on: not the summary, [run], [test] or files/, so that changing
    // a config file does not rebuild the program.
    let f = &recipe.file;
    let build_part = format!(
        "{:?}",
        (&f.name, &f.version, &f.dependencies, &f.source, &f.build)
    );
    h.update(build_part.as_bytes());
    h.update([0]);
    let patches = recipe.dir.join("patches");
    if patches.is_dir() {
        h.update(b"patches\0");
        hash_tree(&patches, &patches, &mut h)?;
    }
    match &recipe.source {
        Source::Archive { sha256, .. } => {
            h.update(b"source\0");
            h.update(sha256.as_bytes());
        }
        Source::Local(dir) => {
            h.update(b"local\0");
            hash_tree(dir, dir, &mut h)?;
        }
    }
    for k in dep_keys {
        h.update(b"dep\0");
        h.update(k.as_bytes());
    }
    Ok(hex(&h.finalize()))
}

/// What a smoke test result is valid for: the build key and everything else in the recipe
/// folder (run defaults, the test, files/), but not README.md.
pub fn test_key(recipe: &Recipe, build_key: &str) -> anyhow::Result<String> {
    let mut h = Sha256::new();
    h.update(build_key.as_bytes());
    h.update([0]);
    hash_tree(&recipe.dir, &recipe.dir, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// Hashes a folder's files (path, executable bit, bytes) in a fixed order; a README.md at
/// its top is documentation and left out.
fn hash_tree(root: &Path, dir: &Path, h: &mut Sha256) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let rel = path.strip_prefix(root).unwrap_or(&path);
        if rel == Path::new("README.md") {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path)?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        if meta.file_type().is_symlink() {
            h.update(b"link\0");
            h.update(std::fs::read_link(&path)?.to_string_lossy().as_bytes());
        } else if meta.is_dir() {
            h.update(b"dir\0");
            hash_tree(root, &path, h)?;
        } else {
            h.update(if meta.permissions().mode() & 0o111 != 0 {
                b"exec\0"
            } else {
                b"file\0"
            });
            let bytes = std::fs::read(&path)?;
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
        h.update([0]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(ago(5), "5s");
        assert_eq!(ago(125), "2m");
        assert_eq!(ago(7300), "2h");
        assert_eq!(ago(200000), "2d");
    }

    #[test]
    fn tree_hash_sees_content_not_readme() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("recipe.toml"), "a").unwrap();
        let hash = |d: &Path| {
            let mut h = Sha256::new();
            hash_tree(d, d, &mut h).unwrap();
            hex(&h.finalize())
        };
        let first = hash(d.path());
        std::fs::write(d.path().join("README.md"), "docs").unwrap();
        assert_eq!(hash(d.path()), first, "README.md is not part of the key");
        std::fs::create_dir(d.path().join("files")).unwrap();
        std::fs::write(d.path().join("files/x.conf"), "x").unwrap();
        let second = hash(d.path());
        assert_ne!(second, first);
        std::fs::write(d.path().join("files/x.conf"), "y").unwrap();
        assert_ne!(hash(d.path()), second);
    }
}

//! Getting a recipe's source: the archive from the cache, else Debian's `.orig` tarball via
//! `apt-get source --download-only`, else the upstream URL via curl; whichever way, its
//! SHA-256 must be the recipe's before it is used. Then unpacking it (or copying a recipe's
//! own `src/` folder) into a clean build folder, and applying the recipe's patches.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

use super::cache::{Cache, sha256_file};
use super::recipe::{Recipe, Source};

/// The verified archive in the cache, fetched first if it is not there yet. `log` gets what
/// the fetch commands print.
pub fn fetch(
    recipe: &Recipe,
    cache: &Cache,
    log: &mut std::fs::File,
) -> anyhow::Result<Option<PathBuf>> {
    let Source::Archive {
        url,
        sha256,
        debian: (package, version),
    } = &recipe.source
    else {
        return Ok(None);
    };
    let dest = cache.source_path(sha256)?;
    if dest.is_file() {
        if sha256_file(&dest)? == *sha256 {
            return Ok(Some(dest));
        }
        // A damaged cache entry: fetch it again.
        std::fs::remove_file(&dest)?;
    }
    let mut tried = Vec::new();
    let tmp = tempfile::Builder::new()
        .prefix("fetch-")
        .tempdir_in(cache.sub("sources")?)?;

    // Debian: the pinned version first, then other versions of the same upstream release
    // (their .orig tarball is the same file) in case the archive dropped the pinned one.
    let mut versions = vec![version.clone()];
    for v in debian_versions(package) {
        if upstream(&v) == upstream(version) && !versions.contains(&v) {
            versions.push(v);
        }
    }
    if which("apt-get") {
        for v in versions.iter().take(4) {
            let dir = tmp.path().join(format!("deb{}", tried.len()));
            std::fs::create_dir_all(&dir)?;
            writeln!(log, "+ apt-get source --download-only {package}={v}")?;
            let ok = Command::new("apt-get")
                .args(["source", "--download-only", &format!("{package}={v}")])
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log.try_clone()?)
                .status()
                .is_ok_and(|s| s.success());
            tried.push(format!("apt-get source {package}={v}"));
            if let Some(found) = find_checksum(&dir, sha256)? {
                if v != version {
                    log::warn!(
                        "{}: Debian no longer has {package}={version}; used {package}={v}, whose archive has the same SHA-256",
                        recipe.name()
                    );
                }
                std::fs::rename(&found, &dest)?;
                return Ok(Some(dest));
            }
            if ok {
                tried.push(format!("(no file of {package}={v} has SHA-256 {sha256})"));
            }
        }
    } else {
        tried.push("apt-get (not installed)".into());
    }

    if which("curl") {
        let file = tmp.path().join("download");
        writeln!(log, "+ curl -fsSL -o {} {url}", file.display())?;
        let ok = Command::new("curl")
            .args(["-fsSL", "--max-time", "120", "-o"])
            .arg(&file)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .status()
            .is_ok_and(|s| s.success());
        tried.push(format!("curl {url}"));
        if ok {
            let got = sha256_file(&file)?;
            if got == *sha256 {
                std::fs::rename(&file, &dest)?;
                return Ok(Some(dest));
            }
            return Err(crate::Fail::new(
                crate::exit_codes::KILN_FAILED,
                format!("{}: {url} has SHA-256 {got}, the recipe says {sha256}", recipe.name()),
                "the download is not the pinned release; if the recipe moved to a new version, update source.sha256 (and source.debian)",
            )
            .into());
        }
    }
    Err(crate::Fail::new(
        crate::exit_codes::KILN_FAILED,
        format!(
            "cannot get the source of {} (SHA-256 {sha256}); tried: {}",
            recipe.name(),
            tried.join(", ")
        ),
        "run scripts/setup.sh (it turns on Debian's deb-src), check `apt-cache showsrc "
            .to_string()
            + package
            + "` lists the version, or put the archive in the cache as "
            + &dest.display().to_string(),
    )
    .into())
}

/// The Debian versions `apt-cache showsrc` knows for a source package.
fn debian_versions(package: &str) -> Vec<String> {
    let Ok(out) = Command::new("apt-cache")
        .args(["showsrc", package])
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Version: "))
        .map(|v| v.trim().to_string())
        .collect()
}

/// The upstream part of a Debian version: no epoch, no Debian revision.
fn upstream(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    v.rsplit_once('-').map_or(v, |(u, _)| u)
}

/// The file in `dir` whose SHA-256 is `sha256`.
fn find_checksum(dir: &Path, sha256: &str) -> anyhow::Result<Option<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if p.is_file() && sha256_file(&p)? == sha256 {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

pub fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
}

/// Fills `src` (which must not exist) with the recipe's source, then applies its patches.
pub fn prepare(
    recipe: &Recipe,
    archive: Option<&Path>,
    src: &Path,
    log: &mut std::fs::File,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(src)?;
    match (&recipe.source, archive) {
        (Source::Local(dir), _) => copy_tree(dir, src)?,
        (Source::Archive { .. }, Some(archive)) => {
            // Every archive here has one top folder (name-version/); GNU tar detects the
            // compression itself.
            writeln!(log, "+ tar xf {} --strip-components=1", archive.display())?;
            run_logged(
                Command::new("tar")
                    .arg("xf")
                    .arg(archive)
                    .args(["--strip-components=1", "--no-same-owner", "-C"])
                    .arg(src),
                log,
                "unpacking the source",
            )?;
        }
        (Source::Archive { .. }, None) => anyhow::bail!("internal: archive not fetched"),
    }
    let patches = recipe.dir.join("patches");
    if patches.is_dir() {
        let mut list: Vec<PathBuf> = std::fs::read_dir(&patches)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "patch"))
            .collect();
        list.sort();
        for p in list {
            writeln!(log, "+ patch -p1 < {}", p.display())?;
            let file = std::fs::File::open(&p)?;
            run_logged(
                Command::new("patch")
                    .args(["-p1", "--forward", "--batch"])
                    .current_dir(src)
                    .stdin(file),
                log,
                &format!("applying {}", p.display()),
            )?;
        }
    }
    Ok(())
}

fn run_logged(cmd: &mut Command, log: &mut std::fs::File, what: &str) -> anyhow::Result<()> {
    let status = cmd
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        .status()
        .with_context(|| format!("{what}: cannot start {:?}", cmd.get_program()))?;
    anyhow::ensure!(status.success(), "{what} failed ({status})");
    Ok(())
}

/// Copies a folder (files, folders, symlinks; modes kept).
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let t = e.file_type()?;
        if t.is_dir() {
            copy_tree(&src, &dst)?;
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_versions() {
        assert_eq!(upstream("5:7.0.15-1~deb12u10"), "7.0.15");
        assert_eq!(upstream("1:1.2.13.dfsg-1"), "1.2.13.dfsg");
        assert_eq!(upstream("2.1.12-stable-8+deb12u1"), "2.1.12-stable");
        assert_eq!(upstream("1.0"), "1.0");
    }
}

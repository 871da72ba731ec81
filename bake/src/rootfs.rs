//! Packing the root filesystem (`--rootfs DIR`, `-f HOST:GUEST`) into a ustar archive for
//! the image.
//!
//! The archive is byte-identical for the same inputs: entries sorted by path, mtime 0,
//! owner 0:0, modes preserved, no host-specific fields. Regular files, directories and
//! symlinks are packed; other kinds (sockets, devices, FIFOs) are refused with a message.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Fail;
use crate::exit_codes;

/// One `-f HOST_PATH:GUEST_PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileArg {
    pub host: PathBuf,
    pub guest: String,
}

/// clap value parser for `-f`.
pub fn parse_file_arg(s: &str) -> Result<FileArg, String> {
    let Some((host, guest)) = s.rsplit_once(':') else {
        return Err(format!(
            "-f '{s}' has no ':': write -f HOST_PATH:/GUEST/PATH"
        ));
    };
    if host.is_empty() {
        return Err(format!(
            "-f '{s}' has an empty host path: write -f HOST_PATH:/GUEST/PATH"
        ));
    }
    if !guest.starts_with('/') || guest.trim_matches('/').is_empty() {
        return Err(format!(
            "-f '{s}': the guest path must be absolute and name a file, e.g. -f {host}:/etc/app.conf"
        ));
    }
    if guest.split('/').any(|c| c == "..") || guest.contains('\0') {
        return Err(format!(
            "-f '{s}': the guest path may not contain '..' or NUL"
        ));
    }
    Ok(FileArg {
        host: PathBuf::from(host),
        guest: guest.to_string(),
    })
}

enum Source {
    Dir(u32),
    File(PathBuf, u32),
    Symlink(PathBuf),
}

fn fail(problem: String, fix: &str) -> anyhow::Error {
    Fail::new(exit_codes::KILN_FAILED, problem, fix).into()
}

fn scan(dir: &Path, rel: &str, out: &mut BTreeMap<String, Source>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        fail(
            format!("--rootfs: cannot read {}: {e}", dir.display()),
            "check the directory's permissions",
        )
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            fail(
                format!("--rootfs: cannot read {}: {e}", dir.display()),
                "check the directory's permissions",
            )
        })?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(fail(
                format!(
                    "--rootfs: {} has a name that is not UTF-8",
                    entry.path().display()
                ),
                "rename it",
            ));
        };
        let path = entry.path();
        let guest = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let meta = std::fs::symlink_metadata(&path).map_err(|e| {
            fail(
                format!("--rootfs: cannot stat {}: {e}", path.display()),
                "check its permissions",
            )
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| {
                fail(
                    format!("--rootfs: cannot read link {}: {e}", path.display()),
                    "check it",
                )
            })?;
            out.insert(guest, Source::Symlink(target));
        } else if ft.is_dir() {
            out.insert(guest.clone(), Source::Dir(mode));
            scan(&path, &guest, out)?;
        } else if ft.is_file() {
            out.insert(guest, Source::File(path, mode));
        } else {
            return Err(fail(
                format!("--rootfs: {} is a device, socket or FIFO", path.display()),
                "remove it from the directory (Kiln's /dev provides the devices)",
            ));
        }
    }
    Ok(())
}

/// Packs `rootfs` and `files` into a tar archive; `None` when both are empty.
pub fn pack(rootfs: Option<&Path>, files: &[FileArg]) -> anyhow::Result<Option<Vec<u8>>> {
    if rootfs.is_none() && files.is_empty() {
        return Ok(None);
    }
    let mut entries: BTreeMap<String, Source> = BTreeMap::new();
    if let Some(dir) = rootfs {
        if !dir.is_dir() {
            return Err(Fail::new(
                exit_codes::NOT_FOUND,
                format!("--rootfs {}: no such directory", dir.display()),
                "give a directory to pack as /",
            )
            .into());
        }
        scan(dir, "", &mut entries)?;
    }
    for f in files {
        let meta = std::fs::metadata(&f.host).map_err(|e| {
            Fail::new(
                exit_codes::NOT_FOUND,
                format!("-f {}: {e}", f.host.display()),
                "check the host path",
            )
        })?;
        if !meta.is_file() {
            return Err(fail(
                format!("-f {}: not a regular file", f.host.display()),
                "use --rootfs for directories",
            ));
        }
        let guest = f.guest.trim_matches('/').to_string();
        let mut parent = String::new();
        for comp in guest
            .split('/')
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p.to_vec())
            .unwrap_or_default()
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            entries.entry(parent.clone()).or_insert(Source::Dir(0o755));
        }
        entries.insert(
            guest,
            Source::File(f.host.clone(), meta.permissions().mode() & 0o7777),
        );
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    for (path, source) in &entries {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let r = match source {
            Source::Dir(mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                builder.append_data(&mut h, format!("{path}/"), std::io::empty())
            }
            Source::File(host, mode) => {
                let data = std::fs::read(host).map_err(|e| {
                    fail(
                        format!("cannot read {}: {e}", host.display()),
                        "check its permissions",
                    )
                })?;
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                builder.append_data(&mut h, path, data.as_slice())
            }
            Source::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                builder.append_link(&mut h, path, target)
            }
        };
        r.map_err(|e| {
            fail(
                format!("cannot pack /{path} into the rootfs: {e}"),
                "check the file",
            )
        })?;
    }
    let bytes = builder.into_inner().map_err(|e| {
        fail(
            format!("cannot finish the rootfs archive: {e}"),
            "try again",
        )
    })?;
    Ok(Some(bytes))
}

/// (files, directories, others, bytes of file data) of an archive, for `bake inspect`.
pub fn summary(archive: &[u8]) -> Result<(usize, usize, usize, u64), libc_shim::fs::tar::TarError> {
    use libc_shim::fs::tar::{EntryKind, TarReader};
    let mut s = (0, 0, 0, 0u64);
    for e in TarReader::new(archive) {
        let e = e?;
        match e.kind {
            EntryKind::Regular => {
                s.0 += 1;
                s.3 += e.data.len() as u64;
            }
            EntryKind::Directory => s.1 += 1,
            _ => s.2 += 1,
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_args() {
        assert_eq!(
            parse_file_arg("a.conf:/etc/a.conf").unwrap(),
            FileArg {
                host: "a.conf".into(),
                guest: "/etc/a.conf".into()
            }
        );
        assert_eq!(parse_file_arg("C:x:/y").unwrap().host, PathBuf::from("C:x"));
        assert!(parse_file_arg("a.conf").is_err());
        assert!(parse_file_arg("a:etc/x").is_err());
        assert!(parse_file_arg("a:/").is_err());
        assert!(parse_file_arg(":/x").is_err());
        assert!(parse_file_arg("a:/x/../y").is_err());
    }

    #[test]
    fn packing_is_deterministic_and_parses() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("etc/deep/er")).unwrap();
        std::fs::write(d.join("etc/app.conf"), b"x=1\n").unwrap();
        std::fs::write(d.join("etc/deep/er/f"), vec![5u8; 3000]).unwrap();
        std::fs::set_permissions(
            d.join("etc/app.conf"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::os::unix::fs::symlink("app.conf", d.join("etc/link")).unwrap();
        let long = "n".repeat(120);
        std::fs::write(d.join(&long), b"long").unwrap();
        let extra = d.join("extra");
        std::fs::write(&extra, b"extra").unwrap();
        let files = [FileArg {
            host: extra.clone(),
            guest: "/opt/x/extra.txt".into(),
        }];
        let a = pack(Some(d), &files).unwrap().unwrap();
        // Touch a file's mtime: the archive must not change.
        std::fs::write(d.join("etc/app.conf"), b"x=1\n").unwrap();
        let b = pack(Some(d), &files).unwrap().unwrap();
        assert_eq!(a, b);
        let entries: Vec<_> = libc_shim::fs::tar::TarReader::new(&a)
            .collect::<Result<_, _>>()
            .unwrap();
        let find = |p: &str| {
            entries
                .iter()
                .find(|e| e.path == p.as_bytes())
                .unwrap_or_else(|| panic!("{p} missing"))
        };
        assert_eq!(find("etc/app.conf").mode, 0o600);
        assert_eq!(find("etc/app.conf").data, b"x=1\n");
        assert_eq!(find("etc/link").link, b"app.conf");
        assert_eq!(find(&long).data, b"long");
        assert_eq!(find("opt/x/extra.txt").data, b"extra");
        assert_eq!(find("opt/x").kind, libc_shim::fs::tar::EntryKind::Directory);
        assert_eq!(find("etc/deep/er/f").data.len(), 3000);
        assert!(entries.iter().all(|e| e.uid == 0 && e.mtime == 0));
        let (files, dirs, others, _) = summary(&a).unwrap();
        assert_eq!(
            (files, others),
            (5, 1),
            "app.conf, f, the long name, extra (also in the dir), extra.txt"
        );
        assert!(dirs >= 5);
        assert_eq!(pack(None, &[]).unwrap(), None);
    }
}

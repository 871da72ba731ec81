//! Persistent volumes: FAT32 disk images that `bake run -v IMG:/path[:ro]` attaches as
//! virtio-blk disks, and the host side of them (`bake volume create/ls/get`), using the very
//! FAT32 code the guest runs (`libc_shim::fs::fat`) over a file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use libc_shim::Errno;
use libc_shim::fs::fat::{self, BlockDevice, FatFs};
use libc_shim::fs::{FileType, Filesystem, NewNode, Owner};

use crate::Fail;
use crate::exit_codes;

const SECTOR: u64 = 512;

/// A disk image file as a block device.
pub struct FileDisk {
    file: File,
    sectors: u64,
    read_only: bool,
}

impl FileDisk {
    pub fn open(path: &Path, read_only: bool) -> anyhow::Result<FileDisk> {
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(path)
            .map_err(|e| {
                let code = if e.kind() == std::io::ErrorKind::NotFound {
                    exit_codes::NOT_FOUND
                } else {
                    exit_codes::KILN_FAILED
                };
                Fail::new(
                    code,
                    format!("cannot open volume {}: {e}", path.display()),
                    "give an image made with `bake volume create`",
                )
            })?;
        let len = file.metadata()?.len();
        Ok(FileDisk {
            file,
            sectors: len / SECTOR,
            read_only,
        })
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    log::debug!("volume I/O error: {e}");
    Errno::EIO
}

impl BlockDevice for FileDisk {
    fn sectors(&self) -> u64 {
        self.sectors
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.file
            .read_exact_at(buf, sector * SECTOR)
            .map_err(io_errno)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        self.file
            .write_all_at(data, sector * SECTOR)
            .map_err(io_errno)
    }
    fn flush(&mut self) -> Result<(), Errno> {
        self.file.sync_data().map_err(io_errno)
    }
}

fn clock() -> Box<dyn Fn() -> u64 + Send + Sync> {
    Box::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    })
}

/// Mounts the FAT32 volume in `image`, with a one-line error when it is not one.
pub fn open(image: &Path, read_only: bool) -> anyhow::Result<FatFs<FileDisk>> {
    let disk = FileDisk::open(image, read_only)?;
    FatFs::mount(disk, read_only, clock()).map_err(|e| {
        Fail::new(
            exit_codes::KILN_FAILED,
            format!("{} is not a FAT32 volume ({e})", image.display()),
            "make one with `bake volume create IMAGE --size 64M`",
        )
        .into()
    })
}

/// `--size`: bytes from `64M`, `1G`, `512K` or a plain number of bytes; at least 1 MiB and
/// a whole number of 512-byte sectors.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("--size '{s}' is not a size: write one such as 64M or 1G");
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => t.split_at(at),
        None => (t, ""),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = n.checked_mul(mult).ok_or_else(bad)?;
    if bytes < 1 << 20 {
        return Err(format!(
            "--size '{s}' is too small for a FAT32 volume: give at least 1M"
        ));
    }
    if bytes > (u64::from(u32::MAX) + 1) * SECTOR {
        return Err(format!(
            "--size '{s}' is too large for FAT32: give at most 2T"
        ));
    }
    if !bytes.is_multiple_of(SECTOR) {
        return Err(format!(
            "--size '{s}' is not a whole number of 512-byte sectors"
        ));
    }
    Ok(bytes)
}

fn fs_error(what: impl std::fmt::Display, e: Errno) -> anyhow::Error {
    Fail::new(
        exit_codes::KILN_FAILED,
        format!("{what}: {e:?}"),
        "see the message",
    )
    .into()
}

/// `bake volume create IMAGE --size SIZE [--from DIR]`.
pub fn create(image: &Path, size: u64, from: Option<&Path>) -> anyhow::Result<u8> {
    if image.exists() {
        return Err(Fail::new(
            exit_codes::KILN_FAILED,
            format!("{} already exists", image.display()),
            "remove it first, or choose another name (bake never overwrites a volume)",
        )
        .into());
    }
    if let Some(dir) = from
        && !dir.is_dir()
    {
        return Err(Fail::new(
            exit_codes::NOT_FOUND,
            format!("--from {} is not a directory", dir.display()),
            "give a directory to copy onto the volume",
        )
        .into());
    }
    let result = (|| -> anyhow::Result<()> {
        let file = File::create(image).map_err(|e| {
            Fail::new(
                exit_codes::KILN_FAILED,
                format!("cannot create {}: {e}", image.display()),
                "check the path",
            )
        })?;
        file.set_len(size)?;
        drop(file);
        let mut disk = FileDisk::open(image, false)?;
        let label = image
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        fat::format(&mut disk, &label, id)
            .map_err(|e| fs_error(format!("formatting {}", image.display()), errno_of(e)))?;
        if let Some(dir) = from {
            let fs = open(image, false)?;
            copy_in(&fs, fs.root(), dir)?;
            fs.sync(None)
                .map_err(|e| fs_error(format!("writing {}", image.display()), e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(image);
    }
    result.map(|()| 0)
}

fn errno_of(e: fat::FormatError) -> Errno {
    match e {
        fat::FormatError::Device(e) => e,
        fat::FormatError::TooSmall(_) => Errno::ENOSPC,
        _ => Errno::EINVAL,
    }
}

const OWNER: Owner = Owner {
    perm: 0o644,
    uid: 0,
    gid: 0,
};

/// Copies the tree under `dir` into directory `into` of the volume, sorted by name so that
/// the same tree makes the same volume.
fn copy_in(fs: &FatFs<FileDisk>, into: u64, dir: &Path) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let name_bytes = name.as_encoded_bytes();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let sub = fs
                .create(into, name_bytes, NewNode::Directory, OWNER)
                .map_err(|e| fs_error(format!("creating directory {}", path.display()), e))?;
            copy_in(fs, sub, &path)?;
        } else if kind.is_file() {
            let ino = fs
                .create(into, name_bytes, NewNode::Regular, OWNER)
                .map_err(|e| fs_error(format!("creating {}", path.display()), e))?;
            let mut src = File::open(&path)?;
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            loop {
                let n = src.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                fs.write_at(ino, off, &buf[..n])
                    .map_err(|e| fs_error(format!("writing {}", path.display()), e))?;
                off += n as u64;
            }
        } else {
            return Err(Fail::new(
                exit_codes::KILN_FAILED,
                format!(
                    "{} is a symlink or special file, which FAT32 cannot store",
                    path.display()
                ),
                "copy regular files and directories only",
            )
            .into());
        }
    }
    Ok(())
}

fn resolve(fs: &FatFs<FileDisk>, image: &Path, guest: &str) -> anyhow::Result<u64> {
    fs.resolve(guest).map_err(|e| {
        let problem = if e == Errno::ENOENT || e == Errno::ENOTDIR {
            format!("{guest} is not on volume {}", image.display())
        } else {
            format!("cannot read {guest} on {}: {e:?}", image.display())
        };
        Fail::new(
            exit_codes::NOT_FOUND,
            problem,
            "list the volume with `bake volume ls IMAGE`",
        )
        .into()
    })
}

/// `bake volume ls IMAGE [PATH]`: one line per entry, `SIZE NAME` (directories end in `/`).
pub fn ls(image: &Path, path: &str, out: &mut dyn Write) -> anyhow::Result<u8> {
    let fs = open(image, true)?;
    let ino = resolve(&fs, image, path)?;
    let md = fs.metadata(ino).map_err(|e| fs_error(path, e))?;
    let line = |out: &mut dyn Write, kind: FileType, size: u64, name: &str| {
        let (size, slash) = if kind == FileType::Directory {
            (0, "/")
        } else {
            (size, "")
        };
        writeln!(out, "{size:>12} {name}{slash}")
    };
    if md.kind != FileType::Directory {
        let name = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or(path);
        line(out, md.kind, md.size, name)?;
        return Ok(0);
    }
    let mut entries = Vec::new();
    fs.read_dir(ino, 0, &mut |e| {
        entries.push(e);
        true
    })
    .map_err(|e| fs_error(path, e))?;
    for e in entries {
        let size = fs.metadata(e.ino).map(|m| m.size).unwrap_or(0);
        line(out, e.kind, size, &String::from_utf8_lossy(&e.name))?;
    }
    Ok(0)
}

/// `bake volume get IMAGE GUEST_PATH HOST_PATH`: copies one file off the volume (into
/// HOST_PATH, or into the directory HOST_PATH under the same name).
pub fn get(image: &Path, guest: &str, host: &Path) -> anyhow::Result<u8> {
    let fs = open(image, true)?;
    let ino = resolve(&fs, image, guest)?;
    let md = fs.metadata(ino).map_err(|e| fs_error(guest, e))?;
    if md.kind == FileType::Directory {
        return Err(Fail::new(
            exit_codes::KILN_FAILED,
            format!("{guest} is a directory"),
            "give a file (list the directory with `bake volume ls`)",
        )
        .into());
    }
    let dest: PathBuf = if host.is_dir() {
        host.join(guest.rsplit('/').find(|s| !s.is_empty()).unwrap_or("file"))
    } else {
        host.to_path_buf()
    };
    let mut file = File::create(&dest).map_err(|e| {
        Fail::new(
            exit_codes::KILN_FAILED,
            format!("cannot write {}: {e}", dest.display()),
            "check the host path",
        )
    })?;
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < md.size {
        let n = fs
            .read_at(ino, off, &mut buf)
            .map_err(|e| fs_error(guest, e))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n])?;
        off += n as u64;
    }
    file.flush()?;
    Ok(0)
}

/// One `-v HOST_IMAGE:GUEST_PATH[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeArg {
    pub image: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// clap value parser for `-v`/`--volume`.
pub fn parse_volume(s: &str) -> Result<VolumeArg, String> {
    let (rest, read_only) = match s.strip_suffix(":ro") {
        Some(r) => (r, true),
        None => (s.strip_suffix(":rw").unwrap_or(s), false),
    };
    let Some((image, guest)) = rest.rsplit_once(':') else {
        return Err(format!(
            "-v '{s}' is not IMAGE:GUEST_PATH[:ro]: write e.g. -v data.img:/data"
        ));
    };
    if image.is_empty() {
        return Err(format!("-v '{s}' names no image"));
    }
    if !guest.starts_with('/') || guest == "/" || guest.contains(char::is_whitespace) {
        return Err(format!(
            "-v '{s}': the guest path must be an absolute directory other than / and without spaces"
        ));
    }
    let guest = guest.trim_end_matches('/').to_string();
    Ok(VolumeArg {
        image: PathBuf::from(image),
        guest,
        read_only,
    })
}

/// Checks every volume before boot (it exists, it is FAT32), so that a mistake is a clear
/// error rather than a guest that cannot find its data.
pub fn check_volumes(volumes: &[VolumeArg]) -> anyhow::Result<()> {
    for (i, v) in volumes.iter().enumerate() {
        open(&v.image, true)?;
        if volumes[..i].iter().any(|o| o.guest == v.guest) {
            return Err(Fail::new(
                exit_codes::KILN_FAILED,
                format!("two volumes are mounted on {}", v.guest),
                "give each -v its own guest path",
            )
            .into());
        }
    }
    Ok(())
}

/// `bake run -v X` where X holds a `:` is the volume option, as in docker; `-v` otherwise is
/// `--verbose`. Rewrites `-v X:Y` into `--volume X:Y` before clap sees the arguments.
pub fn rewrite_volume_flags(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter().peekable();
    let mut after_dashdash = false;
    while let Some(a) = it.next() {
        if a == "--" {
            after_dashdash = true;
        }
        if !after_dashdash
            && a == "-v"
            && it
                .peek()
                .is_some_and(|next| next.to_string_lossy().contains(':'))
        {
            out.push("--volume".into());
            continue;
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use libc_shim::fs::RenameFlags;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("512K").unwrap_err().contains("at least 1M"));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(parse_size("3T").unwrap_err().contains("too large"));
        assert!(parse_size("1048577").unwrap_err().contains("sectors"));
    }

    #[test]
    fn volume_args() {
        assert_eq!(
            parse_volume("d.img:/data"),
            Ok(VolumeArg {
                image: "d.img".into(),
                guest: "/data".into(),
                read_only: false
            })
        );
        assert_eq!(
            parse_volume("/x/y:z.img:/srv/db/:ro"),
            Ok(VolumeArg {
                image: "/x/y:z.img".into(),
                guest: "/srv/db".into(),
                read_only: true
            })
        );
        assert!(parse_volume("d.img").is_err());
        assert!(parse_volume("d.img:data").is_err());
        assert!(parse_volume("d.img:/").is_err());
        assert!(parse_volume(":/data").is_err());
    }

    #[test]
    fn dash_v_with_a_colon_is_a_volume() {
        let os = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            rewrite_volume_flags(os(&["bake", "run", "-v", "d.img:/data", "app"])),
            os(&["bake", "run", "--volume", "d.img:/data", "app"])
        );
        assert_eq!(
            rewrite_volume_flags(os(&["bake", "run", "-v", "app"])),
            os(&["bake", "run", "-v", "app"])
        );
        assert_eq!(
            rewrite_volume_flags(os(&["bake", "run", "app", "--", "-v", "a:b"])),
            os(&["bake", "run", "app", "--", "-v", "a:b"])
        );
    }

    #[test]
    fn create_ls_get_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::write(src.join("hello.txt"), b"hello from the host\n").unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(src.join("sub/deeper/big data.bin"), &big).unwrap();
        let img = tmp.path().join("vol.img");
        create(&img, 8 << 20, Some(&src)).unwrap();
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 8 << 20);

        let mut out = Vec::new();
        ls(&img, "/", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{:>12} hello.txt\n{:>12} sub/\n", 20, 0)
        );
        let mut out = Vec::new();
        ls(&img, "sub/deeper/big data.bin", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{:>12} big data.bin\n", 300_000)
        );

        let got = tmp.path().join("got.bin");
        get(&img, "/sub/deeper/big data.bin", &got).unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), big);
        get(&img, "HELLO.TXT", tmp.path()).unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("HELLO.TXT")).unwrap(),
            b"hello from the host\n"
        );

        // Errors name the problem.
        let e = get(&img, "/nope", &got).unwrap_err();
        assert!(e.to_string().contains("/nope is not on volume"), "{e}");
        let e = get(&img, "/sub", &got).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = create(&img, 8 << 20, None).unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        let not_fat = tmp.path().join("zero.img");
        std::fs::write(&not_fat, vec![0u8; 1 << 20]).unwrap();
        let e = ls(&not_fat, "/", &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("is not a FAT32 volume"), "{e}");
        let e = ls(&tmp.path().join("missing.img"), "/", &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("cannot open volume"), "{e}");
        assert_eq!(
            e.downcast_ref::<Fail>().unwrap().code,
            exit_codes::NOT_FOUND
        );
    }

    #[test]
    fn volumes_written_on_the_host_are_readable_after_rename_and_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let img = tmp.path().join("v.img");
        create(&img, 4 << 20, None).unwrap();
        {
            let fs = open(&img, false).unwrap();
            let root = fs.root();
            let a = fs.create(root, b"a.txt", NewNode::Regular, OWNER).unwrap();
            fs.write_at(a, 0, b"A").unwrap();
            fs.rename(root, b"a.txt", root, b"b.txt", RenameFlags::empty())
                .unwrap();
            fs.sync(None).unwrap();
        }
        let mut out = Vec::new();
        ls(&img, "/", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{:>12} b.txt\n", 1)
        );
        assert_eq!(std::fs::metadata(&img).unwrap().len(), 4 << 20);
    }
}

//! Turning a static app ELF (or an existing image) plus the user's arguments and environment
//! into an image.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc_shim::image::Payload;

use crate::Fail;
use crate::boot_image;
use crate::exit_codes;

/// The environment every app starts with, before `-e`.
pub const DEFAULT_ENV: [&str; 2] = ["PATH=/bin:/usr/bin", "HOME=/"];

/// The version recorded in images and required of them.
pub const KILN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// One `-e KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar(pub String);

impl EnvVar {
    fn key(&self) -> &str {
        self.0.split_once('=').map_or(&self.0, |(key, _)| key)
    }
}

/// clap value parser for `-e`.
pub fn parse_env(s: &str) -> Result<EnvVar, String> {
    match s.split_once('=') {
        Some((key, _)) if !key.is_empty() => {
            if s.contains('\0') {
                return Err(format!(
                    "-e '{}' contains a NUL byte: remove it",
                    s.escape_debug()
                ));
            }
            Ok(EnvVar(s.to_string()))
        }
        Some(_) => Err(format!("-e '{s}' has an empty name: write -e NAME=VALUE")),
        None => Err(format!("-e '{s}' has no '=': write -e {s}=VALUE")),
    }
}

/// clap value parser for `--mem`: a size such as `128M`, `1G`, `65536K`, or a plain number
/// of MiB as QEMU takes it. Returns MiB.
pub fn parse_mem(s: &str) -> Result<u64, String> {
    const MIN_MIB: u64 = 16;
    let bad = || format!("--mem '{s}' is not a memory size: write a size such as 128M or 1G");
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => t.split_at(at),
        None => (t, "M"),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mib = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "K" if n.is_multiple_of(1024) => n / 1024,
        "K" => {
            return Err(format!(
                "--mem '{s}' is not a whole number of MiB: round it to a multiple of 1024K"
            ));
        }
        "M" => n,
        "G" => n.checked_mul(1024).ok_or_else(bad)?,
        "T" => n.checked_mul(1024 * 1024).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if mib < MIN_MIB {
        return Err(format!(
            "'{s}' is too little memory: give at least {MIN_MIB}M"
        ));
    }
    Ok(mib)
}

/// clap value parser for `--timeout`: whole seconds, at least 1.
pub fn parse_timeout(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(secs),
        _ => Err(format!(
            "--timeout '{s}' is not a whole number of seconds: write e.g. --timeout 10"
        )),
    }
}

/// Merges `-e` settings into an environment: a setting replaces an existing one of the same
/// name, in place; new names go at the end.
pub fn merge_env(base: &[&[u8]], settings: &[EnvVar]) -> Vec<Vec<u8>> {
    let mut env: Vec<Vec<u8>> = base.iter().map(|e| e.to_vec()).collect();
    for setting in settings {
        let prefix = format!("{}=", setting.key());
        match env.iter_mut().find(|e| e.starts_with(prefix.as_bytes())) {
            Some(existing) => *existing = setting.0.as_bytes().to_vec(),
            None => env.push(setting.0.as_bytes().to_vec()),
        }
    }
    env
}

/// The guest path of an app: `/bin/<file name>`.
pub fn app_path(elf: &Path) -> anyhow::Result<String> {
    let name = elf
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "..");
    let Some(name) = name else {
        return Err(Fail::new(
            exit_codes::KILN_FAILED,
            format!("{}: the file name is not valid UTF-8", elf.display()),
            "rename the program",
        )
        .into());
    };
    Ok(format!("/bin/{name}"))
}

/// Reads a file bake was asked to use, with the errors the user should see.
pub fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Fail::new(
                exit_codes::NOT_FOUND,
                format!("{shown}: no such file"),
                "check the path",
            )
            .into());
        }
        Ok(meta) if meta.is_dir() => {
            return Err(Fail::new(
                exit_codes::CANNOT_RUN,
                format!("{shown} is a directory"),
                "give the path of a static x86_64 ELF program or a Kiln image",
            )
            .into());
        }
        _ => {}
    }
    std::fs::read(path).map_err(|e| {
        Fail::new(
            exit_codes::CANNOT_RUN,
            format!("cannot read {shown}: {e}"),
            "check its permissions",
        )
        .into()
    })
}

/// Finds the payload if `bytes` is an image; `None` if it is something else (an app ELF,
/// presumably). An image cut short is an error.
pub fn find_image(
    path: &Path,
    bytes: &[u8],
) -> anyhow::Result<Option<boot_image::PayloadLocation>> {
    if let Some(location) = boot_image::find_payload(bytes) {
        return Ok(Some(location));
    }
    if boot_image::looks_truncated(bytes) {
        return Err(Fail::new(
            exit_codes::CANNOT_RUN,
            format!(
                "{} is a truncated Kiln image (its end is missing)",
                path.display()
            ),
            "copy it again, or bake it again with bake build",
        )
        .into());
    }
    Ok(None)
}

/// Checks an app ELF, with the error the user should see.
pub fn check_app(path: &Path, bytes: &[u8]) -> anyhow::Result<libc_shim::elf::ElfInfo> {
    libc_shim::elf::parse(bytes).map_err(|e| {
        // ElfError's messages already say "problem: fix".
        Fail::bare(exit_codes::CANNOT_RUN, format!("{}: {e}", path.display())).into()
    })
}

/// Checks that an image's payload is sound and from this Kiln.
pub fn check_image<'a>(path: &Path, payload: &'a [u8]) -> anyhow::Result<Payload<'a>> {
    Payload::parse_for(payload, KILN_VERSION).map_err(|e| {
        let fix = match e {
            libc_shim::image::ImageError::VersionMismatch { .. } => {
                "bake the program again with this bake (bake build PROGRAM -o IMAGE)"
            }
            _ => "the image is corrupt: bake it again (bake build PROGRAM -o IMAGE)",
        };
        Fail::new(
            exit_codes::CANNOT_RUN,
            format!("{}: {e}", path.display()),
            fix,
        )
        .into()
    })
}

/// Bakes an app ELF into an image.
pub fn bake_app(
    kernel: &[u8],
    app: &Path,
    elf: &[u8],
    arg0: Option<&OsString>,
    args: &[OsString],
    env: &[EnvVar],
    rootfs: Option<&[u8]>,
) -> anyhow::Result<Vec<u8>> {
    let path = app_path(app)?;
    let arg0 = arg0.map_or(path.as_bytes(), |a| a.as_bytes());
    let argv: Vec<&[u8]> = std::iter::once(arg0)
        .chain(args.iter().map(|a| a.as_bytes()))
        .collect();
    let defaults: Vec<&[u8]> = DEFAULT_ENV.iter().map(|e| e.as_bytes()).collect();
    let envp = merge_env(&defaults, env);
    let payload = Payload {
        kiln_version: KILN_VERSION,
        app_path: &path,
        app_elf: elf,
        argv,
        envp: envp.iter().map(Vec::as_slice).collect(),
        rootfs,
    };
    compose(kernel, &payload.encode())
}

/// Re-bakes an image with new arguments (replacing `argv[1..]`, if any are given), extra
/// environment settings and, if given, a new root filesystem.
pub fn rebake(
    image: &[u8],
    payload: &Payload<'_>,
    args: &[OsString],
    env: &[EnvVar],
    rootfs: Option<&[u8]>,
) -> anyhow::Result<Vec<u8>> {
    let argv: Vec<&[u8]> = if args.is_empty() {
        payload.argv.clone()
    } else {
        payload
            .argv
            .iter()
            .take(1)
            .copied()
            .chain(args.iter().map(|a| a.as_bytes()))
            .collect()
    };
    let envp = merge_env(&payload.envp, env);
    let new = Payload {
        argv,
        envp: envp.iter().map(Vec::as_slice).collect(),
        rootfs: rootfs.or(payload.rootfs),
        ..payload.clone()
    };
    boot_image::replace_payload(image, &new.encode()).map_err(|e| {
        Fail::new(
            exit_codes::CANNOT_RUN,
            format!("cannot re-bake the image: {e}"),
            "bake it again",
        )
        .into()
    })
}

fn compose(kernel: &[u8], payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    boot_image::compose(kernel, payload).map_err(|e| {
        Fail::new(
            exit_codes::KILN_FAILED,
            format!("bad kernel ELF: {e}"),
            "rebuild bake (or fix --kernel)",
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_parsing() {
        assert_eq!(parse_env("A=b=c"), Ok(EnvVar("A=b=c".into())));
        assert_eq!(parse_env("A="), Ok(EnvVar("A=".into())));
        assert!(parse_env("A").unwrap_err().contains("no '='"));
        assert!(parse_env("=x").unwrap_err().contains("empty name"));
    }

    #[test]
    fn mem_parsing() {
        assert_eq!(parse_mem("128M"), Ok(128));
        assert_eq!(parse_mem("128"), Ok(128));
        assert_eq!(parse_mem("1G"), Ok(1024));
        assert_eq!(parse_mem("2GiB"), Ok(2048));
        assert_eq!(parse_mem("65536K"), Ok(64));
        assert_eq!(parse_mem("64m"), Ok(64));
        assert!(parse_mem("12X").is_err());
        assert!(parse_mem("").is_err());
        assert!(parse_mem("M").is_err());
        assert!(parse_mem("1000K").is_err());
        assert!(parse_mem("8M").unwrap_err().contains("at least"));
        assert!(parse_mem("99999999999999999999G").is_err());
    }

    #[test]
    fn timeout_parsing() {
        assert_eq!(parse_timeout("10"), Ok(10));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("1.5").is_err());
        assert!(parse_timeout("-1").is_err());
    }

    #[test]
    fn env_merging() {
        let base: Vec<&[u8]> = vec![b"PATH=/bin", b"HOME=/"];
        let merged = merge_env(&base, &[EnvVar("HOME=/root".into()), EnvVar("X=1".into())]);
        assert_eq!(
            merged,
            vec![
                b"PATH=/bin".to_vec(),
                b"HOME=/root".to_vec(),
                b"X=1".to_vec()
            ]
        );
        // "HOMEX=" is another name.
        let merged = merge_env(&base, &[EnvVar("HOM=1".into())]);
        assert_eq!(merged.len(), 3);
    }

    #[test]
    fn app_paths() {
        assert_eq!(app_path(Path::new("/x/y/hello")).unwrap(), "/bin/hello");
        assert_eq!(app_path(Path::new("hello")).unwrap(), "/bin/hello");
        assert!(app_path(Path::new("/")).is_err());
    }
}

//! The payload format bake appends to the kernel: the app's ELF, its path, argv and env.
//!
//! bake writes a payload with [`Payload::encode`]; the kernel finds it in memory (see the
//! image layout in `bake`), reads [`total_len`] from the first [`HEADER_LEN`] bytes to learn
//! how much to reserve, then calls [`Payload::parse_for`] with its own version.
//!
//! # Layout (all integers little-endian)
//!
//! ```text
//! header (32 bytes):
//!   0  magic           [u8; 8] = b"KILNIMG\0"
//!   8  format_version  u32     = 1
//!  12  header_len      u32     = 32
//!  16  total_len       u64     whole payload, header included
//!  24  reserved        u64     = 0
//! body: records, each 8-byte aligned relative to the payload start:
//!   0  tag             u32     see `Tag`
//!   4  reserved        u32     = 0
//!   8  len             u64     length of the value
//!  16  value           [u8; len], then zero padding to the next multiple of 8
//! ```
//!
//! The first record is always `kiln_version`, so that a payload from another Kiln can be
//! recognised (and refused by name) even if the rest of its body means something else here.
//! `app_path` and `app_elf` appear exactly once; `argv` and `envp` records appear once per
//! string, in order; `rootfs` (tag 6, a ustar archive) at most once. Images without it, as
//! older bakes wrote them, still parse. Because records are 8-byte aligned and the payload is page-aligned in
//! memory, the app's ELF bytes start 8-byte aligned.
//!
//! Parsing never panics: every length is checked, and a truncated or corrupt payload is an
//! [`ImageError`].

use alloc::string::String;
use alloc::vec::Vec;

/// The first eight bytes of every payload.
pub const MAGIC: [u8; 8] = *b"KILNIMG\0";
/// The payload format this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the fixed header; also the offset of the first record.
pub const HEADER_LEN: usize = 32;
/// Length of a record's tag, reserved word and length, before its value.
const RECORD_HEADER_LEN: usize = 16;
/// Records start at multiples of this, relative to the payload start.
const RECORD_ALIGN: usize = 8;

/// What is wrong with a payload. The message names the problem; the fix, where there is one,
/// is to re-bake the image with this Kiln's `bake`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// The bytes end before the payload does.
    #[error("image payload is truncated: {what} needs {needed} bytes, only {available} present")]
    Truncated {
        /// The part that did not fit.
        what: &'static str,
        /// Bytes needed, counted from the payload start.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// The magic number is wrong: these bytes are no Kiln payload.
    #[error("not a Kiln image payload (bad magic {found:02x?})")]
    BadMagic {
        /// The eight bytes found instead.
        found: [u8; 8],
    },
    /// A payload format this code does not know.
    #[error(
        "unsupported image payload format version {found} (this Kiln reads version {FORMAT_VERSION})"
    )]
    UnsupportedFormat {
        /// The version in the header.
        found: u32,
    },
    /// A header field holds an impossible value.
    #[error("corrupt image payload header: {0}")]
    BadHeader(&'static str),
    /// A record is malformed.
    #[error("corrupt image payload: record at offset {offset}: {problem}")]
    BadRecord {
        /// Offset of the record from the payload start.
        offset: u64,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A record with a tag this format does not define.
    #[error("corrupt image payload: unknown record tag {tag} at offset {offset}")]
    UnknownTag {
        /// The tag found.
        tag: u32,
        /// Offset of the record from the payload start.
        offset: u64,
    },
    /// A required record is absent.
    #[error("corrupt image payload: no {0} record")]
    Missing(&'static str),
    /// A record that may appear once appears twice.
    #[error("corrupt image payload: more than one {0} record")]
    Duplicate(&'static str),
    /// A string field is not what it must be (UTF-8, no NUL bytes).
    #[error("corrupt image payload: {field} {problem}")]
    BadString {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The payload was baked by another version of Kiln.
    #[error("image was baked by Kiln {found}, this is Kiln {expected}")]
    VersionMismatch {
        /// The version recorded in the payload.
        found: String,
        /// The version of the Kiln reading it.
        expected: String,
    },
}

/// Record tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Tag {
    KilnVersion = 1,
    AppPath = 2,
    AppElf = 3,
    Arg = 4,
    Env = 5,
    Rootfs = 6,
}

impl Tag {
    fn from_u32(tag: u32) -> Option<Tag> {
        Some(match tag {
            1 => Tag::KilnVersion,
            2 => Tag::AppPath,
            3 => Tag::AppElf,
            4 => Tag::Arg,
            5 => Tag::Env,
            6 => Tag::Rootfs,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Tag::KilnVersion => "kiln_version",
            Tag::AppPath => "app_path",
            Tag::AppElf => "app_elf",
            Tag::Arg => "argv",
            Tag::Env => "envp",
            Tag::Rootfs => "rootfs",
        }
    }
}

/// Everything the kernel needs to start the app, borrowed from the payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload<'a> {
    /// Version of the Kiln that baked the image (bake's `CARGO_PKG_VERSION`).
    pub kiln_version: &'a str,
    /// Guest path of the program, `/bin/<file name>`.
    pub app_path: &'a str,
    /// The program's ELF file.
    pub app_elf: &'a [u8],
    /// Arguments, `argv[0]` included. No string contains a NUL byte.
    pub argv: Vec<&'a [u8]>,
    /// Environment strings (`KEY=VALUE`). No string contains a NUL byte.
    pub envp: Vec<&'a [u8]>,
    /// The root filesystem: a ustar archive (`bake --rootfs`, `-f`), if the image has one.
    pub rootfs: Option<&'a [u8]>,
}

/// Reads the payload's total length from its header: how many bytes the whole payload spans.
///
/// `header` must hold at least [`HEADER_LEN`] bytes; the header is checked (magic, format,
/// header length, reserved word) but nothing past it is read.
pub fn total_len(header: &[u8]) -> Result<u64, ImageError> {
    let available = header.len() as u64;
    let Some(header) = header.get(..HEADER_LEN) else {
        return Err(ImageError::Truncated {
            what: "header",
            needed: HEADER_LEN as u64,
            available,
        });
    };
    let magic: [u8; 8] = array(header, 0);
    if magic != MAGIC {
        return Err(ImageError::BadMagic { found: magic });
    }
    let format_version = u32::from_le_bytes(array(header, 8));
    if format_version != FORMAT_VERSION {
        return Err(ImageError::UnsupportedFormat {
            found: format_version,
        });
    }
    if u32::from_le_bytes(array(header, 12)) as usize != HEADER_LEN {
        return Err(ImageError::BadHeader("header_len is not 32"));
    }
    let total = u64::from_le_bytes(array(header, 16));
    if total < HEADER_LEN as u64 {
        return Err(ImageError::BadHeader(
            "total_len is shorter than the header",
        ));
    }
    if u64::from_le_bytes(array(header, 24)) != 0 {
        return Err(ImageError::BadHeader("reserved field is not zero"));
    }
    Ok(total)
}

impl<'a> Payload<'a> {
    /// Parses a payload. `bytes` may extend past the payload's `total_len`; the excess is
    /// ignored. Does not check the Kiln version: see [`Payload::parse_for`].
    pub fn parse(bytes: &'a [u8]) -> Result<Payload<'a>, ImageError> {
        let body = payload_bytes(bytes)?;
        let mut records = Records {
            bytes: body,
            offset: HEADER_LEN,
        };
        let mut kiln_version = None;
        let mut app_path = None;
        let mut app_elf = None;
        let mut argv = Vec::new();
        let mut envp = Vec::new();
        let mut rootfs = None;
        while let Some(record) = records.next_record()? {
            let (tag, value, offset) = record;
            if (tag == Tag::KilnVersion) != (offset == HEADER_LEN as u64) {
                return Err(ImageError::BadRecord {
                    offset,
                    problem: "kiln_version must be the first record, and only the first",
                });
            }
            match tag {
                Tag::KilnVersion => kiln_version = Some(text(tag, value)?),
                Tag::AppPath => set_once(&mut app_path, tag, text(tag, value)?)?,
                Tag::AppElf => set_once(&mut app_elf, tag, value)?,
                Tag::Arg => argv.push(c_string(tag, value)?),
                Tag::Env => envp.push(c_string(tag, value)?),
                Tag::Rootfs => set_once(&mut rootfs, tag, value)?,
            }
        }
        let app_path = app_path.ok_or(ImageError::Missing("app_path"))?;
        if !app_path.starts_with('/') {
            return Err(ImageError::BadString {
                field: "app_path",
                problem: "is not absolute",
            });
        }
        Ok(Payload {
            kiln_version: kiln_version.ok_or(ImageError::Missing("kiln_version"))?,
            app_path,
            app_elf: app_elf.ok_or(ImageError::Missing("app_elf"))?,
            argv,
            envp,
            rootfs,
        })
    }

    /// Parses a payload and refuses one baked by a Kiln other than `expected_version`.
    ///
    /// The version is checked before the rest of the body, so that a payload from another
    /// Kiln is reported as such even where its records would not parse here.
    pub fn parse_for(bytes: &'a [u8], expected_version: &str) -> Result<Payload<'a>, ImageError> {
        let found = kiln_version(bytes)?;
        if found != expected_version {
            return Err(ImageError::VersionMismatch {
                found: String::from(found),
                expected: String::from(expected_version),
            });
        }
        Payload::parse(bytes)
    }

    /// Encodes the payload. The output depends only on the fields: identical payloads give
    /// identical bytes.
    ///
    /// Strings are written as given; a NUL byte inside an `argv` or `envp` string, or an
    /// `app_path` that is not absolute, makes the result fail to [`parse`](Payload::parse).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.app_elf.len() + 256);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // total_len, patched below
        out.extend_from_slice(&0u64.to_le_bytes());
        push_record(&mut out, Tag::KilnVersion, self.kiln_version.as_bytes());
        push_record(&mut out, Tag::AppPath, self.app_path.as_bytes());
        for arg in &self.argv {
            push_record(&mut out, Tag::Arg, arg);
        }
        for env in &self.envp {
            push_record(&mut out, Tag::Env, env);
        }
        push_record(&mut out, Tag::AppElf, self.app_elf);
        if let Some(rootfs) = self.rootfs {
            // Last, after the ELF: 8-byte aligned like every record, so tar blocks are too.
            push_record(&mut out, Tag::Rootfs, rootfs);
        }
        let total = out.len() as u64;
        out[16..24].copy_from_slice(&total.to_le_bytes());
        out
    }
}

/// Reads only the `kiln_version` record: which Kiln baked the payload.
pub fn kiln_version(bytes: &[u8]) -> Result<&str, ImageError> {
    let body = payload_bytes(bytes)?;
    let mut records = Records {
        bytes: body,
        offset: HEADER_LEN,
    };
    match records.next_record()? {
        Some((Tag::KilnVersion, value, _)) => text(Tag::KilnVersion, value),
        Some((_, _, offset)) => Err(ImageError::BadRecord {
            offset,
            problem: "kiln_version must be the first record, and only the first",
        }),
        None => Err(ImageError::Missing("kiln_version")),
    }
}

/// Checks the header and returns the payload's bytes, `total_len` of them.
fn payload_bytes(bytes: &[u8]) -> Result<&[u8], ImageError> {
    let total = total_len(bytes)?;
    let available = bytes.len() as u64;
    usize::try_from(total)
        .ok()
        .and_then(|total| bytes.get(..total))
        .ok_or(ImageError::Truncated {
            what: "payload",
            needed: total,
            available,
        })
}

/// One record: its tag, its value and its offset from the payload start.
type Record<'a> = (Tag, &'a [u8], u64);

/// A cursor over the records of a payload whose header has been checked.
struct Records<'a> {
    /// The whole payload, `total_len` bytes.
    bytes: &'a [u8],
    /// Offset of the next record.
    offset: usize,
}

impl<'a> Records<'a> {
    /// The next record as (tag, value, offset), or `None` at the end of the payload.
    fn next_record(&mut self) -> Result<Option<Record<'a>>, ImageError> {
        let start = self.offset;
        if start == self.bytes.len() {
            return Ok(None);
        }
        let offset = start as u64;
        let available = self.bytes.len() as u64;
        let header = start
            .checked_add(RECORD_HEADER_LEN)
            .and_then(|end| self.bytes.get(start..end))
            .ok_or(ImageError::Truncated {
                what: "record header",
                needed: offset + RECORD_HEADER_LEN as u64,
                available,
            })?;
        let raw_tag = u32::from_le_bytes(array(header, 0));
        if u32::from_le_bytes(array(header, 4)) != 0 {
            return Err(ImageError::BadRecord {
                offset,
                problem: "reserved field is not zero",
            });
        }
        let len = u64::from_le_bytes(array(header, 8));
        let tag = Tag::from_u32(raw_tag).ok_or(ImageError::UnknownTag {
            tag: raw_tag,
            offset,
        })?;
        let value_start = start + RECORD_HEADER_LEN;
        let truncated = ImageError::Truncated {
            what: tag.name(),
            needed: (value_start as u64).saturating_add(len),
            available,
        };
        let value_end = usize::try_from(len)
            .ok()
            .and_then(|len| value_start.checked_add(len))
            .ok_or(truncated.clone())?;
        let value = self.bytes.get(value_start..value_end).ok_or(truncated)?;
        // The padding after the last record is part of the payload too.
        let next =
            value_end
                .checked_next_multiple_of(RECORD_ALIGN)
                .ok_or(ImageError::BadRecord {
                    offset,
                    problem: "length overflows",
                })?;
        let padding = self
            .bytes
            .get(value_end..next)
            .ok_or(ImageError::Truncated {
                what: "record padding",
                needed: next as u64,
                available,
            })?;
        if padding.iter().any(|&b| b != 0) {
            return Err(ImageError::BadRecord {
                offset,
                problem: "padding is not zero",
            });
        }
        self.offset = next;
        Ok(Some((tag, value, offset)))
    }
}

fn push_record(out: &mut Vec<u8>, tag: Tag, value: &[u8]) {
    out.extend_from_slice(&(tag as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value);
    let padded = out.len().next_multiple_of(RECORD_ALIGN);
    out.resize(padded, 0);
}

fn set_once<T>(slot: &mut Option<T>, tag: Tag, value: T) -> Result<(), ImageError> {
    if slot.is_some() {
        return Err(ImageError::Duplicate(tag.name()));
    }
    *slot = Some(value);
    Ok(())
}

/// A UTF-8 string without NUL bytes.
fn text(tag: Tag, value: &[u8]) -> Result<&str, ImageError> {
    let value = c_string(tag, value)?;
    core::str::from_utf8(value).map_err(|_| ImageError::BadString {
        field: tag.name(),
        problem: "is not UTF-8",
    })
}

/// Bytes that can become a C string: no NUL inside.
fn c_string(tag: Tag, value: &[u8]) -> Result<&[u8], ImageError> {
    if value.contains(&0) {
        return Err(ImageError::BadString {
            field: tag.name(),
            problem: "contains a NUL byte",
        });
    }
    Ok(value)
}

/// `N` bytes at `at`; the caller has checked that they are there.
fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Payload<'static> {
        Payload {
            kiln_version: "0.1.0",
            app_path: "/bin/hello",
            app_elf: b"\x7fELF and then some bytes",
            argv: vec![b"/bin/hello", b"--flag", b""],
            envp: vec![b"PATH=/bin:/usr/bin", b"HOME=/"],
            rootfs: None,
        }
    }

    #[test]
    fn rootfs_round_trips_aligned_and_is_optional() {
        let tar = [7u8; 1536];
        let payload = Payload { rootfs: Some(&tar), ..sample() };
        let bytes = payload.encode();
        let parsed = Payload::parse(&bytes).unwrap();
        assert_eq!(parsed, payload);
        let off = parsed.rootfs.unwrap().as_ptr() as usize - bytes.as_ptr() as usize;
        assert_eq!(off % RECORD_ALIGN, 0);
        assert_eq!(Payload::parse(&sample().encode()).unwrap().rootfs, None);
        // Two rootfs records are refused.
        let mut twice = bytes.clone();
        let rec_start = off - RECORD_HEADER_LEN;
        let rec = bytes[rec_start..].to_vec();
        twice.extend_from_slice(&rec);
        let total = twice.len() as u64;
        twice[16..24].copy_from_slice(&total.to_le_bytes());
        assert_eq!(Payload::parse(&twice), Err(ImageError::Duplicate("rootfs")));
    }

    #[test]
    fn round_trip() {
        let payload = sample();
        let bytes = payload.encode();
        assert_eq!(total_len(&bytes).unwrap(), bytes.len() as u64);
        assert_eq!(Payload::parse(&bytes).unwrap(), payload);
        assert_eq!(Payload::parse_for(&bytes, "0.1.0").unwrap(), payload);
    }

    #[test]
    fn empty_lists_round_trip() {
        let payload = Payload {
            argv: vec![],
            envp: vec![],
            app_elf: b"",
            ..sample()
        };
        assert_eq!(Payload::parse(&payload.encode()).unwrap(), payload);
    }

    #[test]
    fn encoding_is_deterministic_and_aligned() {
        let a = sample().encode();
        assert_eq!(a, sample().encode());
        assert_eq!(a.len() % RECORD_ALIGN, 0);
        let parsed = Payload::parse(&a).unwrap();
        let elf_offset = parsed.app_elf.as_ptr() as usize - a.as_ptr() as usize;
        assert_eq!(elf_offset % RECORD_ALIGN, 0);
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        let mut bytes = sample().encode();
        bytes.extend_from_slice(&[0xaa; 100]);
        assert_eq!(Payload::parse(&bytes).unwrap(), sample());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            let err = Payload::parse(&bytes[..len]).unwrap_err();
            assert!(
                matches!(err, ImageError::Truncated { .. }),
                "len {len}: {err:?}"
            );
        }
    }

    #[test]
    fn every_shortened_total_len_is_an_error_not_a_panic() {
        let bytes = sample().encode();
        for total in 0..bytes.len() as u64 {
            let mut b = bytes.clone();
            b[16..24].copy_from_slice(&total.to_le_bytes());
            assert!(Payload::parse(&b).is_err(), "total_len {total}");
        }
    }

    #[test]
    fn corrupting_any_byte_never_panics() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                let _ = Payload::parse(&b);
                let _ = Payload::parse_for(&b, "0.1.0");
            }
        }
    }

    #[test]
    fn bad_magic() {
        let mut bytes = sample().encode();
        bytes[0] = b'X';
        assert!(matches!(
            Payload::parse(&bytes),
            Err(ImageError::BadMagic { .. })
        ));
        assert!(matches!(
            total_len(&bytes),
            Err(ImageError::BadMagic { .. })
        ));
    }

    #[test]
    fn bad_header_fields() {
        let bytes = sample().encode();
        let mut b = bytes.clone();
        b[8] = 2;
        assert_eq!(
            Payload::parse(&b),
            Err(ImageError::UnsupportedFormat { found: 2 })
        );
        let mut b = bytes.clone();
        b[12] = 40;
        assert!(matches!(Payload::parse(&b), Err(ImageError::BadHeader(_))));
        let mut b = bytes.clone();
        b[24] = 1;
        assert!(matches!(Payload::parse(&b), Err(ImageError::BadHeader(_))));
        let mut b = bytes;
        b[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            Payload::parse(&b),
            Err(ImageError::Truncated { .. })
        ));
    }

    #[test]
    fn version_mismatch_is_detected_and_named() {
        let bytes = Payload {
            kiln_version: "9.9.9",
            ..sample()
        }
        .encode();
        let err = Payload::parse_for(&bytes, "0.1.0").unwrap_err();
        assert_eq!(
            err,
            ImageError::VersionMismatch {
                found: "9.9.9".into(),
                expected: "0.1.0".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "image was baked by Kiln 9.9.9, this is Kiln 0.1.0"
        );
        assert_eq!(kiln_version(&bytes).unwrap(), "9.9.9");
    }

    #[test]
    fn version_is_checked_before_the_rest_of_the_body() {
        // A payload from a future Kiln with a record this one does not know.
        let mut bytes = Payload {
            kiln_version: "9.9.9",
            ..sample()
        }
        .encode();
        let first_after_version = HEADER_LEN + RECORD_HEADER_LEN + 8;
        bytes[first_after_version] = 99;
        assert!(matches!(
            Payload::parse(&bytes),
            Err(ImageError::UnknownTag { tag: 99, .. })
        ));
        assert!(matches!(
            Payload::parse_for(&bytes, "0.1.0"),
            Err(ImageError::VersionMismatch { .. })
        ));
    }

    #[test]
    fn nul_in_strings_is_refused() {
        let bytes = Payload {
            argv: vec![b"a\0b"],
            ..sample()
        }
        .encode();
        assert!(matches!(
            Payload::parse(&bytes),
            Err(ImageError::BadString { field: "argv", .. })
        ));
        let bytes = Payload {
            envp: vec![b"A=\0"],
            ..sample()
        }
        .encode();
        assert!(matches!(
            Payload::parse(&bytes),
            Err(ImageError::BadString { field: "envp", .. })
        ));
    }

    #[test]
    fn relative_app_path_is_refused() {
        let bytes = Payload {
            app_path: "bin/x",
            ..sample()
        }
        .encode();
        assert!(matches!(
            Payload::parse(&bytes),
            Err(ImageError::BadString { .. })
        ));
    }

    #[test]
    fn duplicate_and_missing_records() {
        let mut out = Payload {
            app_elf: b"",
            ..sample()
        }
        .encode();
        // Append a second app_path record and fix total_len.
        push_record(&mut out, Tag::AppPath, b"/bin/other");
        let total = out.len() as u64;
        out[16..24].copy_from_slice(&total.to_le_bytes());
        assert_eq!(Payload::parse(&out), Err(ImageError::Duplicate("app_path")));

        let mut out = Vec::new();
        out.extend_from_slice(&sample().encode()[..HEADER_LEN]);
        push_record(&mut out, Tag::KilnVersion, b"0.1.0");
        push_record(&mut out, Tag::AppPath, b"/bin/x");
        let total = out.len() as u64;
        out[16..24].copy_from_slice(&total.to_le_bytes());
        assert_eq!(Payload::parse(&out), Err(ImageError::Missing("app_elf")));
    }

    #[test]
    fn nonzero_padding_is_refused() {
        let mut bytes = sample().encode();
        // "0.1.0" is 5 bytes: three bytes of padding follow it.
        bytes[HEADER_LEN + RECORD_HEADER_LEN + 5] = 1;
        assert!(matches!(
            Payload::parse(&bytes),
            Err(ImageError::BadRecord { .. })
        ));
    }
}

//! A checked view over a ustar archive (the rootfs bake packs into the image), and loading
//! one into a [`MemFs`] without copying file data.
//!
//! Understood: ustar headers (with the `prefix` field), GNU long names and link names
//! (`L`/`K`), pax extended headers (`x`: `path`, `linkpath`, `size`; `g` is skipped), base-256
//! sizes. Every field is length-checked and every header checksummed; parsing never panics.

use alloc::vec::Vec;

use super::memfs::MemFs;
use super::{FileType, Filesystem, NewNode, Owner, Timestamp};
use crate::errno::Errno;

const BLOCK: usize = 512;

/// What is wrong with an archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarError {
    /// The archive ends inside a header or a file's data.
    #[error("rootfs archive is truncated at byte {offset}")]
    Truncated { offset: usize },
    /// A header's checksum does not match.
    #[error("rootfs archive: bad header checksum at byte {offset}")]
    BadChecksum { offset: usize },
    /// A numeric field is not octal (or base-256).
    #[error("rootfs archive: bad number in the {field} field at byte {offset}")]
    BadNumber { field: &'static str, offset: usize },
    /// An entry cannot be placed in the tree (a file where a directory should be, ...).
    #[error("rootfs archive: cannot add entry at byte {offset}: errno {errno}")]
    Conflict { offset: usize, errno: i32 },
}

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path inside the archive, without a leading `./` or `/`.
    pub path: Vec<u8>,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// File contents (regular files), borrowed from the archive.
    pub data: &'a [u8],
    /// Symlink target, or the earlier member a hard link names.
    pub link: Vec<u8>,
    pub rdev: u64,
    /// Offset of the header in the archive.
    pub offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Regular,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Directory,
    Fifo,
}

/// Iterates the members of an archive.
pub struct TarReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> TarReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        TarReader {
            bytes,
            pos: 0,
            done: false,
        }
    }
}

fn field(h: &[u8], start: usize, len: usize) -> &[u8] {
    let f = &h[start..start + len];
    let end = f.iter().position(|&b| b == 0).unwrap_or(len);
    &f[..end]
}

fn number(
    h: &[u8],
    start: usize,
    len: usize,
    name: &'static str,
    offset: usize,
) -> Result<u64, TarError> {
    let raw = &h[start..start + len];
    let bad = TarError::BadNumber {
        field: name,
        offset,
    };
    if raw[0] & 0x80 != 0 {
        // base-256: big-endian, the first byte's top bit a marker.
        let mut v: u64 = u64::from(raw[0] & 0x7f);
        for &b in &raw[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or(bad.clone())?;
        }
        return Ok(v);
    }
    let mut v: u64 = 0;
    let mut seen = false;
    for &b in raw {
        match b {
            b'0'..=b'7' => {
                v = v
                    .checked_mul(8)
                    .and_then(|v| v.checked_add(u64::from(b - b'0')))
                    .ok_or(bad.clone())?;
                seen = true;
            }
            b' ' | 0 if !seen => {}
            b' ' | 0 => break,
            _ => return Err(bad),
        }
    }
    Ok(v)
}

fn checksum_ok(h: &[u8]) -> bool {
    let stored = match number(h, 148, 8, "chksum", 0) {
        Ok(v) => v,
        Err(_) => return false,
    };
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    sum == stored
}

fn clean_path(p: &[u8]) -> Vec<u8> {
    let mut p = p;
    loop {
        if let Some(rest) = p.strip_prefix(b"./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix(b"/") {
            p = rest;
        } else {
            break;
        }
    }
    let mut v = p.to_vec();
    while v.last() == Some(&b'/') {
        v.pop();
    }
    if v.as_slice() == b"." {
        v.clear();
    }
    v
}

/// Parses pax records `"<len> key=value\n"` for the keys we use.
fn pax(
    data: &[u8],
    path: &mut Option<Vec<u8>>,
    link: &mut Option<Vec<u8>>,
    size: &mut Option<u64>,
) {
    let mut rest = data;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|&b| b == b' ') else {
            return;
        };
        let Some(len) = core::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            return;
        };
        if len <= sp + 1 || len > rest.len() {
            return;
        }
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => *path = Some(value.to_vec()),
                b"linkpath" => *link = Some(value.to_vec()),
                b"size" => {
                    *size = core::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                }
                _ => {}
            }
        }
        rest = &rest[len..];
    }
}

impl<'a> Iterator for TarReader<'a> {
    type Item = Result<Entry<'a>, TarError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.next_entry();
        if !matches!(r, Ok(Some(_))) {
            self.done = true;
        }
        r.transpose()
    }
}

impl<'a> TarReader<'a> {
    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, TarError> {
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            let offset = self.pos;
            if offset == self.bytes.len() {
                return Ok(None);
            }
            let h = self
                .bytes
                .get(offset..offset + BLOCK)
                .ok_or(TarError::Truncated { offset })?;
            if h.iter().all(|&b| b == 0) {
                return Ok(None);
            }
            if !checksum_ok(h) {
                return Err(TarError::BadChecksum { offset });
            }
            let size = match pax_size.take() {
                Some(s) => s,
                None => number(h, 124, 12, "size", offset)?,
            };
            let data_start = offset + BLOCK;
            let size_usize = usize::try_from(size).map_err(|_| TarError::Truncated { offset })?;
            let data_end = data_start
                .checked_add(size_usize)
                .ok_or(TarError::Truncated { offset })?;
            let data = self
                .bytes
                .get(data_start..data_end)
                .ok_or(TarError::Truncated { offset })?;
            let next = data_end
                .checked_next_multiple_of(BLOCK)
                .ok_or(TarError::Truncated { offset })?;
            // The padding of the last member may be cut off by a short archive; tolerate that.
            self.pos = next.min(self.bytes.len());
            let typeflag = h[156];
            let kind = match typeflag {
                b'0' | 0 | b'7' => EntryKind::Regular,
                b'1' => EntryKind::HardLink,
                b'2' => EntryKind::Symlink,
                b'3' => EntryKind::CharDevice,
                b'4' => EntryKind::BlockDevice,
                b'5' => EntryKind::Directory,
                b'6' => EntryKind::Fifo,
                b'L' => {
                    long_name = Some(field(data, 0, data.len()).to_vec());
                    continue;
                }
                b'K' => {
                    long_link = Some(field(data, 0, data.len()).to_vec());
                    continue;
                }
                b'x' => {
                    pax(data, &mut long_name, &mut long_link, &mut pax_size);
                    continue;
                }
                // Global pax headers, GNU volume labels and the like: nothing for us.
                _ => continue,
            };
            let ustar = &h[257..262] == b"ustar";
            let path = match long_name.take() {
                Some(p) => p,
                None => {
                    let name = field(h, 0, 100);
                    let prefix = if ustar { field(h, 345, 155) } else { &[][..] };
                    if prefix.is_empty() {
                        name.to_vec()
                    } else {
                        let mut p = prefix.to_vec();
                        p.push(b'/');
                        p.extend_from_slice(name);
                        p
                    }
                }
            };
            let link = long_link
                .take()
                .unwrap_or_else(|| field(h, 157, 100).to_vec());
            let major = if ustar {
                number(h, 329, 8, "devmajor", offset)?
            } else {
                0
            };
            let minor = if ustar {
                number(h, 337, 8, "devminor", offset)?
            } else {
                0
            };
            let mut path = clean_path(&path);
            if kind == EntryKind::Directory && path.is_empty() {
                path.clear();
            }
            return Ok(Some(Entry {
                path,
                kind,
                mode: (number(h, 100, 8, "mode", offset)? & 0o7777) as u32,
                uid: number(h, 108, 8, "uid", offset)? as u32,
                gid: number(h, 116, 8, "gid", offset)? as u32,
                mtime: number(h, 136, 12, "mtime", offset)? as i64,
                data: if kind == EntryKind::Regular {
                    data
                } else {
                    &[]
                },
                link,
                rdev: ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12),
                offset,
            }));
        }
    }
}

/// What [`load`] put into the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadStats {
    pub files: usize,
    pub directories: usize,
    pub others: usize,
    pub bytes: u64,
}

/// Adds every member of `archive` to `fs`, file data borrowed in place.
pub fn load(fs: &MemFs, archive: &'static [u8]) -> Result<LoadStats, TarError> {
    let mut stats = LoadStats::default();
    for entry in TarReader::new(archive) {
        let e = entry?;
        let conflict = |errno: Errno| TarError::Conflict {
            offset: e.offset,
            errno: errno.0,
        };
        let owner = Owner {
            perm: e.mode,
            uid: e.uid,
            gid: e.gid,
        };
        let t = Timestamp {
            sec: e.mtime,
            nsec: 0,
        };
        if e.path.is_empty() {
            // The archive's root: its attributes become the root's.
            let _ = fs.set_attr(
                fs.root(),
                &super::SetAttr {
                    perm: Some(e.mode),
                    uid: Some(e.uid),
                    gid: Some(e.gid),
                    ..Default::default()
                },
            );
            continue;
        }
        match e.kind {
            EntryKind::Regular => {
                let ino = fs
                    .insert_static(&e.path, e.data, owner, t)
                    .map_err(conflict)?;
                let _ = ino;
                stats.files += 1;
                stats.bytes += e.data.len() as u64;
            }
            EntryKind::Directory => {
                let ino = fs
                    .ensure(&e.path, NewNode::Directory, owner)
                    .map_err(conflict)?;
                fs.set_attr(
                    ino,
                    &super::SetAttr {
                        perm: Some(e.mode),
                        uid: Some(e.uid),
                        gid: Some(e.gid),
                        ..Default::default()
                    },
                )
                .map_err(conflict)?;
                fs.set_times(ino, t);
                stats.directories += 1;
            }
            EntryKind::Symlink => {
                let ino = fs
                    .ensure(&e.path, NewNode::Symlink { target: &e.link }, owner)
                    .map_err(conflict)?;
                fs.set_times(ino, t);
                stats.others += 1;
            }
            EntryKind::HardLink => {
                let target = fs.resolve(&clean_path(&e.link)).map_err(conflict)?;
                let (dir, name) = split_parent(&e.path);
                let dir = fs
                    .ensure(
                        dir,
                        NewNode::Directory,
                        Owner {
                            perm: 0o755,
                            uid: 0,
                            gid: 0,
                        },
                    )
                    .map_err(conflict)?;
                fs.link(target, dir, name).map_err(conflict)?;
                stats.others += 1;
            }
            EntryKind::CharDevice | EntryKind::BlockDevice | EntryKind::Fifo => {
                let kind = match e.kind {
                    EntryKind::CharDevice => FileType::CharDevice,
                    EntryKind::BlockDevice => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                fs.ensure(&e.path, NewNode::Special { kind, rdev: e.rdev }, owner)
                    .map_err(conflict)?;
                stats.others += 1;
            }
        }
    }
    Ok(stats)
}

fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&b""[..], path),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::vec;

    /// A ustar header block for `name`.
    pub(crate) fn header(
        name: &[u8],
        typeflag: u8,
        size: usize,
        link: &[u8],
        mode: u32,
    ) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        let octal = |h: &mut Vec<u8>, at: usize, len: usize, v: u64| {
            let s = alloc::format!("{:0w$o}\0", v, w = len - 1);
            h[at..at + len].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, u64::from(mode));
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, size as u64);
        octal(&mut h, 136, 12, 1000);
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let s = alloc::format!("{:06o}\0 ", sum);
        h[148..156].copy_from_slice(s.as_bytes());
        h
    }

    /// (path, typeflag, data, link target) of one test member.
    pub(crate) type Member<'a> = (&'a [u8], u8, &'a [u8], &'a [u8]);

    pub(crate) fn archive(entries: &[Member<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, t, data, link) in entries {
            out.extend(header(name, *t, data.len(), link, 0o644));
            out.extend_from_slice(data);
            out.resize(out.len().next_multiple_of(BLOCK), 0);
        }
        out.extend(vec![0u8; 2 * BLOCK]);
        out
    }

    fn leak(v: Vec<u8>) -> &'static [u8] {
        alloc::boxed::Box::leak(v.into_boxed_slice())
    }

    #[test]
    fn reads_members() {
        let a = archive(&[
            (b"./etc/", b'5', b"", b""),
            (b"./etc/hosts", b'0', b"127.0.0.1 localhost\n", b""),
            (b"./etc/link", b'2', b"", b"hosts"),
            (b"./etc/hard", b'1', b"", b"./etc/hosts"),
        ]);
        let entries: Vec<_> = TarReader::new(&a).collect::<Result<_, _>>().unwrap();
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[1].path, b"etc/hosts");
        assert_eq!(entries[1].data, b"127.0.0.1 localhost\n");
        assert_eq!(entries[1].mode, 0o644);
        assert_eq!(entries[1].mtime, 1000);
        assert_eq!(entries[2].kind, EntryKind::Symlink);
        assert_eq!(entries[2].link, b"hosts");
    }

    #[test]
    fn loads_without_copying() {
        let a = leak(archive(&[
            (b"a/b/c.txt", b'0', b"hello", b""),
            (b"a/l", b'2', b"", b"b/c.txt"),
            (b"a/h", b'1', b"", b"a/b/c.txt"),
        ]));
        let fs = MemFs::new("rootfs", 0);
        let stats = load(&fs, a).unwrap();
        assert_eq!((stats.files, stats.others, stats.bytes), (1, 2, 5));
        let ino = fs.resolve(b"a/b/c.txt").unwrap();
        assert!(fs.is_borrowed(ino));
        assert_eq!(fs.metadata(ino).unwrap().nlink, 2);
        assert_eq!(fs.resolve(b"a/h").unwrap(), ino);
        let mut buf = [0u8; 8];
        assert_eq!(fs.read_at(ino, 0, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        // Copy-up on write: the archive bytes stay as they were.
        fs.write_at(ino, 0, b"J").unwrap();
        assert!(!fs.is_borrowed(ino));
        assert_eq!(&a[BLOCK..BLOCK + 5], b"hello");
        assert_eq!(fs.read_at(ino, 0, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"Jello");
        assert_eq!(
            fs.readlink(fs.resolve(b"a/l").unwrap()).unwrap(),
            b"b/c.txt"
        );
    }

    #[test]
    fn long_names_gnu_and_pax() {
        let long: Vec<u8> = core::iter::repeat_n(b'x', 150).collect();
        let mut a = Vec::new();
        a.extend(header(b"././@LongLink", b'L', long.len() + 1, b"", 0o644));
        let mut name = long.clone();
        name.push(0);
        a.extend_from_slice(&name);
        a.resize(a.len().next_multiple_of(BLOCK), 0);
        a.extend(header(b"short", b'0', 2, b"", 0o600));
        a.extend_from_slice(b"hi");
        a.resize(a.len().next_multiple_of(BLOCK), 0);
        let rec = b"20 path=pax/name.txt\n";
        a.extend(header(b"PaxHeader", b'x', rec.len(), b"", 0o644));
        a.extend_from_slice(rec);
        a.resize(a.len().next_multiple_of(BLOCK), 0);
        a.extend(header(b"ignored", b'0', 0, b"", 0o644));
        let e: Vec<_> = TarReader::new(&a).collect::<Result<_, _>>().unwrap();
        assert_eq!(e[0].path, long);
        assert_eq!(e[0].mode, 0o600);
        assert_eq!(e[1].path, b"pax/name.txt");
    }

    #[test]
    fn ustar_prefix_joins() {
        let mut h = header(b"file", b'0', 0, b"", 0o644);
        h[345..348].copy_from_slice(b"dir");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(alloc::format!("{:06o}\0 ", sum).as_bytes());
        let e: Vec<_> = TarReader::new(&h).collect::<Result<_, _>>().unwrap();
        assert_eq!(e[0].path, b"dir/file");
    }

    #[test]
    fn truncation_and_corruption_never_panic() {
        let a = archive(&[
            (b"d/", b'5', b"", b""),
            (b"d/f", b'0', &[7u8; 1000], b""),
            (b"d/s", b'2', b"", b"f"),
        ]);
        // Every prefix parses to an error or a (shorter) list; never a panic.
        for cut in 0..a.len() {
            let r: Result<Vec<_>, _> = TarReader::new(&a[..cut]).collect();
            if let Ok(entries) = r {
                assert!(entries.len() <= 3);
            }
        }
        assert!(matches!(
            TarReader::new(&a[..BLOCK + 100]).nth(1),
            Some(Err(TarError::Truncated { .. }))
        ));
        // Flipping any header byte breaks the checksum (or changes nothing it covers).
        for i in 0..BLOCK {
            let mut b = a.clone();
            b[i] ^= 0x55;
            let _ = TarReader::new(&b).collect::<Vec<_>>();
            if !(148..156).contains(&i) {
                assert!(
                    matches!(TarReader::new(&b).next(), Some(Err(_))),
                    "byte {i}"
                );
            }
        }
        let mut bad = a.clone();
        bad[124] = b'9';
        bad[148..156].copy_from_slice(b"        ");
        let sum: u32 = bad[..BLOCK].iter().map(|&b| u32::from(b)).sum();
        bad[148..156].copy_from_slice(alloc::format!("{:06o}\0 ", sum).as_bytes());
        assert!(matches!(
            TarReader::new(&bad).next(),
            Some(Err(TarError::BadNumber { field: "size", .. }))
        ));
    }

    #[test]
    fn conflicting_entries_are_errors() {
        let a = leak(archive(&[
            (b"f", b'0', b"x", b""),
            (b"f/g", b'0', b"y", b""),
        ]));
        let fs = MemFs::new("rootfs", 0);
        assert!(matches!(load(&fs, a), Err(TarError::Conflict { .. })));
    }
}

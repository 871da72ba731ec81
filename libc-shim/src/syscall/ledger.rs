//! The support ledger: `docs/syscalls.md`, rendered from [`super::table::TABLE`].
//!
//! A test compares the committed file with the rendering; run the tests with
//! `KILN_UPDATE_LEDGER=1` to regenerate it.

use alloc::string::String;
use core::fmt::Write as _;

use super::table::{MAX_NR, Status, TABLE};

/// The markdown ledger: one row per syscall number 0..=MAX_NR (unassigned runs collapsed).
pub fn render() -> String {
    let count = |f: fn(&Status) -> bool| TABLE.iter().filter(|i| f(&i.status)).count();
    let mut out = String::new();
    out.push_str("# Linux syscall ledger (x86_64)\n\n");
    out.push_str(
        "Generated from `libc-shim/src/syscall/table.rs`; do not edit by hand. Regenerate with\n\
         `KILN_UPDATE_LEDGER=1 cargo test -p libc-shim ledger`.\n\n",
    );
    let _ = writeln!(
        out,
        "{} syscalls: {} supported, {} partial, {} ENOSYS (not yet), {} ENOSYS by design.\n",
        TABLE.len(),
        count(|s| matches!(s, Status::Supported)),
        count(|s| matches!(s, Status::Partial(_))),
        count(|s| matches!(s, Status::Enosys)),
        count(|s| matches!(s, Status::EnosysByDesign(_))),
    );
    out.push_str("Unsupported syscalls return `-ENOSYS` and log one warning per number; \"by design\" ones are silent.\n\n");
    out.push_str("| nr | name | status | note |\n|---:|---|---|---|\n");
    let mut next = 0u64;
    for info in TABLE {
        if info.nr > next {
            let _ = writeln!(
                out,
                "| {}–{} | — | unassigned | not syscalls on x86_64: ENOSYS |",
                next,
                info.nr - 1
            );
        }
        let (status, note) = match info.status {
            Status::Supported => ("supported", ""),
            Status::Partial(n) => ("partial", n),
            Status::Enosys => ("ENOSYS", ""),
            Status::EnosysByDesign(n) => ("ENOSYS by design", n),
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            info.nr,
            info.name,
            status,
            note.replace('|', "\\|")
        );
        next = info.nr + 1;
    }
    debug_assert_eq!(next, MAX_NR + 1);
    out
}

#[cfg(test)]
mod tests {
    extern crate std;

    /// `docs/syscalls.md` must match the table. `KILN_UPDATE_LEDGER=1` rewrites it.
    #[test]
    fn ledger_is_up_to_date() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/syscalls.md");
        let rendered = super::render();
        if std::env::var_os("KILN_UPDATE_LEDGER").is_some_and(|v| v == "1") {
            std::fs::write(path, &rendered).expect("write docs/syscalls.md");
            return;
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == rendered,
            "docs/syscalls.md is out of date with libc-shim/src/syscall/table.rs; \
             run `KILN_UPDATE_LEDGER=1 cargo test -p libc-shim ledger` and commit the result"
        );
    }

    #[test]
    fn every_number_has_a_row() {
        let text = super::render();
        assert!(text.contains("| 0 | `read` |"));
        assert!(text.contains("| 336–423 | — | unassigned |"));
        assert!(text.contains("| 462 | `mseal` |"));
        assert!(text.contains("| 334 | `rseq` | ENOSYS by design |"));
    }
}

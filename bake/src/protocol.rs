//! The log channel between the kernel and bake, and what `bake run` exits with.
//!
//! The kernel writes lines to the debugcon port (0xe9), which QEMU sends to a Unix socket
//! bake listens on. A line is either a log record (`LEVEL target: message`), which bake
//! prints to its stderr as `kiln: <line>`, or a control record:
//!
//! - `KILN-EXIT <status>`: the app exited with `status` (0..=255). Authoritative: the kernel
//!   writes it just before it writes `status` to the isa-debug-exit port.
//! - `KILN-PANIC`: the kernel panicked; the report is on the serial console.
//! - `KILN-LISTEN tcp <port>`: the app listens on a TCP port the host can reach; bake's port
//!   relay passes connections to it from then on ([`crate::portfwd`]).
//!
//! Empty lines are dropped, so the kernel may write `\nKILN-EXIT n\n` to end a partial line
//! first.

use crate::exit_codes;

/// What one line of the log channel means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    /// The app's exit status.
    Exit(u8),
    /// The kernel panicked.
    Panic,
    /// The app listens on this TCP port.
    Listen(u16),
    /// A log line, to be shown.
    Log(&'a str),
    /// An empty line: nothing to show.
    Empty,
}

/// Classifies one line (without its `\n`).
pub fn classify(line: &str) -> Record<'_> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if let Some(status) = line.strip_prefix("KILN-EXIT ")
        && let Ok(status) = status.trim().parse::<u8>()
    {
        return Record::Exit(status);
    }
    if let Some(port) = line.strip_prefix("KILN-LISTEN tcp ")
        && let Ok(port) = port.trim().parse::<u16>()
    {
        return Record::Listen(port);
    }
    if line.trim_end() == "KILN-PANIC" {
        return Record::Panic;
    }
    if line.is_empty() {
        return Record::Empty;
    }
    Record::Log(line)
}

/// What the log channel told bake over a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reported {
    /// QEMU connected to the log socket, so the VM got as far as being created.
    pub connected: bool,
    /// The first `KILN-EXIT` status.
    pub exit: Option<u8>,
    /// A `KILN-PANIC` record came.
    pub panicked: bool,
}

impl Reported {
    /// Takes one record into account.
    pub fn note(&mut self, record: &Record<'_>) {
        match *record {
            Record::Exit(status) => self.exit = self.exit.or(Some(status)),
            Record::Panic => self.panicked = true,
            Record::Log(_) | Record::Empty | Record::Listen(_) => {}
        }
    }
}

/// How QEMU ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuEnd {
    /// Exited with this status.
    Exited(i32),
    /// Killed by a signal (including by bake, on timeout).
    Signalled,
}

/// `bake run`'s exit status, and what to tell the user about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: u8,
    /// A message for stderr, if the status is not simply the app's.
    pub message: Option<String>,
}

/// Decides `bake run`'s exit status. The `KILN-EXIT` record is the truth; QEMU's own exit
/// status (`(value << 1) | 1` from isa-debug-exit) is only mentioned in messages.
pub fn outcome(reported: Reported, qemu: QemuEnd, timed_out: Option<u64>) -> Outcome {
    if let Some(status) = reported.exit {
        return Outcome {
            status,
            message: None,
        };
    }
    if let Some(secs) = timed_out {
        return Outcome {
            status: exit_codes::TIMEOUT,
            message: Some(format!("kiln: timed out after {secs} s")),
        };
    }
    if reported.panicked {
        return Outcome {
            status: exit_codes::NO_STATUS,
            message: Some("kiln: kernel panic (the report is on the console above)".into()),
        };
    }
    let how = match qemu {
        QemuEnd::Exited(code) if code % 2 == 1 => {
            format!(
                "QEMU exit status {code}, isa-debug-exit value {}",
                (code - 1) / 2
            )
        }
        QemuEnd::Exited(code) => format!("QEMU exit status {code}"),
        QemuEnd::Signalled => "QEMU was killed by a signal".into(),
    };
    if !reported.connected && qemu != QemuEnd::Exited(0) {
        return Outcome {
            status: exit_codes::KILN_FAILED,
            message: Some(format!(
                "bake: error: QEMU could not start the VM ({how}): see QEMU's message above"
            )),
        };
    }
    Outcome {
        status: exit_codes::NO_STATUS,
        message: Some(format!(
            "kiln: the VM ended without reporting an exit status ({how}); \
             a triple fault ends it this way: rerun with -v or -vv for the kernel's log"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_lines() {
        assert_eq!(classify("KILN-EXIT 0"), Record::Exit(0));
        assert_eq!(classify("KILN-EXIT 255\r"), Record::Exit(255));
        assert_eq!(classify("KILN-PANIC"), Record::Panic);
        assert_eq!(classify("KILN-LISTEN tcp 6379"), Record::Listen(6379));
        assert_eq!(classify("KILN-LISTEN tcp 99999"), Record::Log("KILN-LISTEN tcp 99999"));
        assert_eq!(classify(""), Record::Empty);
        assert_eq!(classify("\r"), Record::Empty);
        assert_eq!(classify("KILN-EXIT 256"), Record::Log("KILN-EXIT 256"));
        assert_eq!(classify("KILN-EXIT"), Record::Log("KILN-EXIT"));
        assert_eq!(
            classify("INFO mm: 128 MiB"),
            Record::Log("INFO mm: 128 MiB")
        );
        assert_eq!(
            classify("WARN x: KILN-EXIT 3"),
            Record::Log("WARN x: KILN-EXIT 3")
        );
    }

    fn reported(lines: &[&str]) -> Reported {
        let mut r = Reported {
            connected: true,
            ..Reported::default()
        };
        for line in lines {
            r.note(&classify(line));
        }
        r
    }

    #[test]
    fn the_exit_record_is_the_truth() {
        let o = outcome(
            reported(&["INFO a: b", "KILN-EXIT 42"]),
            QemuEnd::Exited(85),
            None,
        );
        assert_eq!(
            o,
            Outcome {
                status: 42,
                message: None
            }
        );
        let o = outcome(reported(&["KILN-EXIT 0"]), QemuEnd::Exited(1), None);
        assert_eq!(o.status, 0);
        // Even if QEMU then had to be killed.
        let o = outcome(reported(&["KILN-EXIT 7"]), QemuEnd::Signalled, Some(5));
        assert_eq!(o.status, 7);
        // The first record counts.
        assert_eq!(
            outcome(
                reported(&["KILN-EXIT 1", "KILN-EXIT 2"]),
                QemuEnd::Exited(3),
                None
            )
            .status,
            1
        );
    }

    #[test]
    fn timeout() {
        let o = outcome(reported(&["INFO a: b"]), QemuEnd::Signalled, Some(3));
        assert_eq!(o.status, 124);
        assert_eq!(o.message.unwrap(), "kiln: timed out after 3 s");
    }

    #[test]
    fn panic_and_silence_are_123() {
        assert_eq!(
            outcome(reported(&["KILN-PANIC"]), QemuEnd::Exited(3), None).status,
            123
        );
        // No record: QEMU's status is never taken for the app's.
        let o = outcome(reported(&[]), QemuEnd::Exited(15), None);
        assert_eq!(o.status, 123);
        assert!(o.message.unwrap().contains("isa-debug-exit value 7"));
        assert_eq!(outcome(reported(&[]), QemuEnd::Exited(0), None).status, 123);
    }

    #[test]
    fn qemu_that_never_started_the_vm_is_125() {
        let o = outcome(Reported::default(), QemuEnd::Exited(1), None);
        assert_eq!(o.status, 125);
        assert!(
            o.message
                .unwrap()
                .starts_with("bake: error: QEMU could not start")
        );
    }
}

//! `log` output: one line per record, `LEVEL target: message`, on the log channel (debugcon),
//! or on the serial console with `kiln.log_to=serial`. The level comes from `kiln.log=`.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use log::{LevelFilter, Log, Metadata, Record};

use crate::drivers::{debugcon, serial};

struct Logger;

static LOGGER: Logger = Logger;
static TO_SERIAL: AtomicBool = AtomicBool::new(false);
static LOCK: spin::Mutex<()> = spin::Mutex::new(());

struct SerialWriter;

impl Write for SerialWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        serial::write_err(s.as_bytes());
        Ok(())
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let _guard = LOCK.lock();
        let target = record.target().strip_prefix("kiln_kernel::").unwrap_or(record.target());
        if TO_SERIAL.load(Ordering::Relaxed) {
            let _ = writeln!(SerialWriter, "kiln: {} {}: {}", record.level(), target, record.args());
        } else {
            let _ = writeln!(debugcon::Writer, "{} {}: {}", record.level(), target, record.args());
        }
    }

    fn flush(&self) {}
}

/// Writes a control record for bake (`KILN-...`, see bake/src/protocol.rs) on the log channel,
/// on a line of its own and never inside a log line.
pub fn control_record(args: core::fmt::Arguments<'_>) {
    let _guard = LOCK.lock();
    let _ = writeln!(debugcon::Writer, "\n{args}");
}

pub fn parse_level(s: &str) -> Option<LevelFilter> {
    Some(match s {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => return None,
    })
}

pub fn init(level: LevelFilter, to_serial: bool) {
    TO_SERIAL.store(to_serial, Ordering::Relaxed);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

//! A tiny logger for bake's own messages: `kiln: <message>` on stderr, at warn level by
//! default, info with `-v`, debug with `-vv`.

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("kiln: {}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger; `verbosity` is the number of `-v`.
pub fn init(verbosity: u8) {
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(match verbosity {
            0 => LevelFilter::Warn,
            1 => LevelFilter::Info,
            _ => LevelFilter::Debug,
        });
    }
}

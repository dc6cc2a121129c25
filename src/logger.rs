// Copyright 2026 The vmbase Authors
// SPDX-License-Identifier: Apache-2.0

//! A [`log`] backend that prints `[LEVEL] message` lines to the console.

use crate::console;
use core::fmt::{self, Write};
use log::{LevelFilter, Log, Metadata, Record, SetLoggerError};

struct Logger;

static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, _metadata: &Metadata) -> bool {
        // log's max level already filters; everything that gets here is printed.
        true
    }

    fn log(&self, record: &Record) {
        console::write_line(format_args!("{}", Line(record)));
    }

    fn flush(&self) {}
}

/// How a record is printed: `[INFO] message`.
struct Line<'a, 'r>(&'a Record<'r>);

impl fmt::Display for Line<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        f.write_str(self.0.level().as_str())?;
        f.write_str("] ")?;
        self.0.args().fmt(f)
    }
}

/// Sends [`log`] records up to `max_level` to the console.
///
/// Fails if a logger is already installed.
pub fn init(max_level: LevelFilter) -> Result<(), SetLoggerError> {
    log::set_logger(&LOGGER)?;
    log::set_max_level(max_level);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use log::Level;

    fn line(level: Level, args: fmt::Arguments) -> String {
        Line(&Record::builder().level(level).args(args).build()).to_string()
    }

    #[test]
    fn lines_carry_the_level() {
        assert_eq!(
            line(Level::Info, format_args!("Hello world")),
            "[INFO] Hello world"
        );
        assert_eq!(
            line(Level::Error, format_args!("x = {}", 3)),
            "[ERROR] x = 3"
        );
        assert_eq!(line(Level::Trace, format_args!("")), "[TRACE] ");
    }
}

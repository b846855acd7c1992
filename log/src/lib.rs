//! Service logs: one line per event, `<time> <LEVEL> <service>[pid] message`.
//!
//! A daemonized service writes to its stderr, which the supervisor points
//! at `<home>/log/<service>.log`. The embedded mode appends to
//! `<home>/log/embedded.log` so it does not mix with a run's progress lines.
//! `debug` and `profile` turn on the DEBUG and PROFILE traces.

#![forbid(unsafe_code)]

use std::fmt::Display;
use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone)]
enum Sink {
    Stderr,
    File(Arc<Mutex<File>>),
    Off,
}

/// A service's logger; cheap to clone.
#[derive(Clone)]
pub struct Log {
    service: String,
    sink: Sink,
    debug: bool,
    profile: bool,
}

impl Log {
    /// Logs to stderr.
    pub fn stderr(service: &str, debug: bool, profile: bool) -> Log {
        Log {
            service: service.to_string(),
            sink: Sink::Stderr,
            debug,
            profile,
        }
    }

    /// Appends to `file`, made its owner's only (a log quotes what jobs
    /// send); logs nothing when it cannot be opened.
    pub fn file(service: &str, file: &std::path::Path, debug: bool, profile: bool) -> Log {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let sink = file
            .parent()
            .map(|dir| {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
            })
            .and_then(Result::ok)
            .and_then(|_| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(file)
                    .ok()
            })
            .map_or(Sink::Off, |f| Sink::File(Arc::new(Mutex::new(f))));
        Log {
            service: service.to_string(),
            sink,
            debug,
            profile,
        }
    }

    /// The same sink under another service name.
    pub fn named(&self, service: &str) -> Log {
        Log {
            service: service.to_string(),
            ..self.clone()
        }
    }

    /// Logs `message` at INFO.
    pub fn info(&self, message: impl Display) {
        self.write("INFO", message);
    }

    /// Logs `message` at WARN.
    pub fn warn(&self, message: impl Display) {
        self.write("WARN", message);
    }

    /// Logs `message` at ERROR.
    pub fn error(&self, message: impl Display) {
        self.write("ERROR", message);
    }

    /// A DEBUG trace, built only when `debug` is on.
    pub fn debug(&self, message: impl FnOnce() -> String) {
        if self.debug {
            self.write("DEBUG", message());
        }
    }

    /// A PROFILE trace, built only when `profile` is on.
    pub fn profile(&self, message: impl FnOnce() -> String) {
        if self.profile {
            self.write("PROFILE", message());
        }
    }

    fn write(&self, level: &str, message: impl Display) {
        let line = format!(
            "{} {level} {}[{}] {}\n",
            timestamp(SystemTime::now()),
            self.service,
            std::process::id(),
            one_line(&message.to_string())
        );
        // A log line that cannot be written is not worth failing a job over.
        match &self.sink {
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Sink::File(f) => {
                if let Ok(mut f) = f.lock() {
                    let _ = f.write_all(line.as_bytes());
                }
            }
            Sink::Off => {}
        }
    }
}

/// `message` with its control characters escaped (`\n`, `\u{1b}`): a
/// message often quotes what a client sent, and a newline in a job's
/// name must not start a line that looks like the log's own.
fn one_line(message: &str) -> std::borrow::Cow<'_, str> {
    escaped(message, |c| c == '\t')
}

/// `message` for a terminal: control characters escaped but line ends and
/// tabs, so text from a job or a node (a column name, a task's error)
/// cannot move the cursor, clear the screen or recolour what follows.
pub fn printable(message: &str) -> std::borrow::Cow<'_, str> {
    escaped(message, |c| c == '\t' || c == '\n')
}

fn escaped(message: &str, keep: fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    if !message.chars().any(|c| c.is_control() && !keep(c)) {
        return message.into();
    }
    message
        .chars()
        .map(|c| match c {
            c if c.is_control() && !keep(c) => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect::<String>()
        .into()
}

/// `2026-11-22T02:13:34.123Z`.
pub fn timestamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Year, month (1-12) and day (1-31) of the day `days` after 1970-01-01
/// (before it when negative), in the proleptic Gregorian calendar.
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_message_stays_on_its_line() {
        assert_eq!(
            one_line("job x\n2026-11-22T02:13:34.123Z INFO relay[1] forged\r\0\u{1b}[31m"),
            "job x\\n2026-11-22T02:13:34.123Z INFO relay[1] forged\\r\\u{0}\\u{1b}[31m"
        );
        assert_eq!(one_line("plain, tab\tand é"), "plain, tab\tand é");
        assert_eq!(
            printable("two\nlines, \u{1b}[2Jno clear"),
            "two\nlines, \\u{1b}[2Jno clear"
        );
    }

    #[test]
    fn timestamps_are_utc_iso8601() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_313_614_123);
        assert_eq!(timestamp(at), "2026-11-22T02:13:34.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&timestamp(leap)[..10], "2000-02-29");
    }
}

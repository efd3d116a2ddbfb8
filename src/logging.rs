//! How `lifeboat` writes to stderr: log lines for people (`text`, coloured only on a
//! terminal) or for log shippers (`json`, one object a line), chosen once at start-up by
//! `--log-format` / `LIFEBOAT_LOG_FORMAT`.
//!
//! Besides tracing's events, a command has a few lines of its own for the operator (a
//! config warning, the error it exits with, "stopping (signal received)"). They go
//! through [`error`], [`warning`], [`say`] and [`error_lines`], which print them as
//! they always were in `text` and as events of the same shape as tracing's in `json`,
//! so a daemon's stderr is JSON from its first line to its last. No log filter hides
//! them: the operator must see them whatever `--log` says.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use tracing::Level;

/// The format of everything `lifeboat` writes to stderr as a log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people; coloured only when stderr is a terminal and `NO_COLOR` is not
    /// set.
    #[default]
    Text,
    /// One JSON object a line (`timestamp`, `level`, `fields` with `message`, `target`),
    /// never coloured: for log shippers.
    Json,
}

/// The format chosen by [`init`]; `text` until then (and in tests).
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Whether text logs are coloured: only on a terminal, and never when `NO_COLOR` is set
/// to anything but the empty string (<https://no-color.org>). Pure, so the rule is
/// tested without a terminal.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Installs the process's log subscriber: `filter` in tracing's env-filter syntax (an
/// unparsable one falls back to `default`), events to stderr in `format`. Call once, at
/// the top of `main`.
pub fn init(filter: &str, default: &str, format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let ansi = colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder.with_ansi(ansi).init();
        }
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// The error a command stops with: `error: MESSAGE` in text.
pub fn error(message: &str) {
    emit(Level::ERROR, "error: ", message);
}

/// A warning for the operator (a config lint): `warning: MESSAGE` in text.
pub fn warning(message: &str) {
    emit(Level::WARN, "warning: ", message);
}

/// A line of news for the operator (`stopping (signal received)`), as it is in text.
pub fn say(message: &str) {
    emit(Level::INFO, "", message);
}

/// Errors already worded one a line (a config's `file:line:col: field: message`
/// list), as they are in text and one event a line in JSON.
pub fn error_lines(text: &str) {
    emit(Level::ERROR, "", text);
}

fn emit(level: Level, prefix: &str, text: &str) {
    let format = FORMAT.get().copied().unwrap_or_default();
    let mut stderr = std::io::stderr().lock();
    // Nowhere left to report a failure to write to stderr; the exit code still says it.
    let _ = match format {
        LogFormat::Text => writeln!(stderr, "{prefix}{text}"),
        LogFormat::Json => text
            .lines()
            .try_for_each(|line| writeln!(stderr, "{}", json_line(level, line))),
    };
}

/// One event as tracing-subscriber's JSON formatter shapes it, so a log shipper reads
/// these lines and tracing's alike.
fn json_line(level: Level, message: &str) -> serde_json::Value {
    serde_json::json!({
        "timestamp": jiff::Timestamp::now().to_string(),
        "level": level.as_str(),
        "fields": { "message": message },
        "target": "lifeboat",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, Some(OsStr::new("1"))));
        // An empty NO_COLOR is as good as unset, as the convention says.
        assert!(colour(true, Some(OsStr::new(""))));
    }

    #[test]
    fn own_lines_are_shaped_like_tracing_events() {
        let line = json_line(Level::WARN, "a \"quoted\" warning");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["message"], "a \"quoted\" warning");
        assert!(
            line["timestamp"]
                .as_str()
                .is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok())
        );
        // One object on one line, whatever the message holds.
        assert!(!line.to_string().contains('\n'));
    }
}

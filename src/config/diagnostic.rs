//! What is wrong with a config file, and where: `file:line:col: path: message`.

use std::fmt;
use std::path::{Path, PathBuf};

use super::locate::{self, Aim, FieldPath};

/// One finding about a config file, pointing at the node it concerns so an editor (or a
/// human) can jump there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The config file, as it was named to [`super::load`] or [`super::parse`].
    pub file: PathBuf,
    /// 1-based line; 0 when the finding concerns the file as a whole (unreadable).
    pub line: usize,
    /// 1-based column; 0 together with `line`.
    pub column: usize,
    /// The field path, e.g. `workloads[1].depends_on[0]`; empty for the document itself.
    pub path: String,
    /// What is wrong, for humans.
    pub message: String,
}

impl Diagnostic {
    /// A finding at `path`, positioned by looking the path up in `text`. A path that
    /// leaves the document (a field left out) points at its deepest existing node.
    pub(crate) fn at(file: &Path, text: &str, path: &FieldPath, aim: Aim, message: String) -> Self {
        let (line, column) = locate::locate(text, path, aim)
            .map(|p| (p.line, p.column))
            .unwrap_or((0, 0));
        Diagnostic {
            file: file.to_owned(),
            line,
            column,
            path: path.to_string(),
            message,
        }
    }

    /// A finding about the file as a whole.
    pub(crate) fn whole_file(file: &Path, message: String) -> Self {
        Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            path: String::new(),
            message,
        }
    }

    /// Turns serde_yaml's error (syntax, type, unknown field, bad duration) into the
    /// same shape as the semantic findings: path split from the message, and for an
    /// unknown or duplicate field or an unknown variant the position of the offending
    /// key or tag rather than of the mapping around it.
    pub(crate) fn from_yaml(file: &Path, text: &str, error: &serde_yaml::Error) -> Self {
        let (line, column) = error
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let mut message = error.to_string();
        // serde_yaml appends the position it already gave us through `location()`.
        let suffix = format!(" at line {line} column {column}");
        if let Some(at) = message.find(&suffix) {
            message.replace_range(at..at + suffix.len(), "");
        }
        let (path, message) = split_path(&message);
        let mut diagnostic = Diagnostic {
            file: file.to_owned(),
            line,
            column,
            path: path.to_owned(),
            message: message.to_owned(),
        };
        diagnostic.refine(text);
        diagnostic
    }

    /// Moves an unknown field's finding onto the key itself, a duplicate field's onto
    /// its second occurrence, and an unknown variant's onto its `kind`/`type` tag, when
    /// the text has them.
    fn refine(&mut self, text: &str) {
        let Some(parent) = FieldPath::parse(&self.path) else {
            return;
        };
        let (target, aim) = if let Some(field) = quoted_after(&self.message, "unknown field `") {
            (parent.key(field), Aim::Key)
        } else if let Some(field) = quoted_after(&self.message, "duplicate field `") {
            (parent.key(field), Aim::SecondKey)
        } else if self.message.starts_with("unknown variant `") {
            let Some(tag) = ["kind", "type"].into_iter().find(|tag| {
                locate::locate(text, &parent.key(tag), Aim::Value).is_some_and(|p| p.exact)
            }) else {
                return;
            };
            (parent.key(tag), Aim::Value)
        } else {
            return;
        };
        if let Some(position) = locate::locate(text, &target, aim).filter(|p| p.exact) {
            self.line = position.line;
            self.column = position.column;
            self.path = target.to_string();
        }
    }
}

/// serde_yaml writes `path: message`, leaving the path out at the document root. A path
/// never holds a space, while every message's first words do (`invalid type:`), which
/// tells the two apart.
fn split_path(text: &str) -> (&str, &str) {
    match text.split_once(": ") {
        Some((path, message)) if !path.is_empty() && !path.contains(char::is_whitespace) => {
            (path, message)
        }
        _ => ("", text),
    }
}

/// The text between `prefix` and the next backtick, when `message` starts with `prefix`.
fn quoted_after<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(quoted, _)| quoted)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if self.line > 0 {
            write!(f, "{}:{}:", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, " {}:", self.path)?;
        }
        write!(f, " {}", self.message)
    }
}

/// Why a config was refused: every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems; never empty.
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// Wraps findings, sorted by position so they read top to bottom.
    pub(crate) fn new(mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        ConfigError { diagnostics }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, diagnostic) in self.diagnostics.iter().enumerate() {
            if n > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths_from_messages() {
        assert_eq!(
            split_path("workloads[0].rto: invalid duration"),
            ("workloads[0].rto", "invalid duration")
        );
        assert_eq!(
            split_path("invalid type: string \"x\", expected struct RawConfig"),
            ("", "invalid type: string \"x\", expected struct RawConfig")
        );
        assert_eq!(
            split_path("missing field `vendors`"),
            ("", "missing field `vendors`")
        );
    }

    #[test]
    fn shows_one_line_per_finding() {
        let d = |line, path: &str| Diagnostic {
            file: PathBuf::from("q.yaml"),
            line,
            column: 3,
            path: path.into(),
            message: "bad".into(),
        };
        let error = ConfigError::new(vec![d(9, "b"), d(2, "a"), d(0, "")]);
        assert_eq!(
            error.to_string(),
            "q.yaml: bad\nq.yaml:2:3: a: bad\nq.yaml:9:3: b: bad"
        );
    }
}

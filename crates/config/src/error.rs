//! Errors, warnings and the origin of a configuration value.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A built-in default.
    Default,
    /// A JSON or HCL configuration file.
    File(PathBuf),
    /// An environment variable (the full variable name).
    Env(String),
    /// A command-line flag (spelled as on the command line, e.g. `-https-port`).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "file {}", path.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(name) => write!(f, "flag {name}"),
        }
    }
}

/// A 1-based line and column in a configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// One problem found while loading the configuration.
///
/// Every message names the offending thing first (the key path or the
/// file), says where it came from and what was expected. Secret values
/// (the `encrypt` key) never appear in messages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be opened, listed or read.
    #[error("{path}: {action} failed", path = path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was attempted (`read`, `open`, `read directory`).
        action: &'static str,
        /// The operating-system error.
        #[source]
        source: std::io::Error,
    },
    /// A file named explicitly has an extension other than `.json` or `.hcl`
    /// and no `-config-format` was given.
    #[error(
        "file {path} has unknown extension; must be .hcl or .json, or config format must be set",
        path = path.display()
    )]
    UnknownExtension {
        /// The file.
        path: PathBuf,
    },
    /// `-config-format` has a value other than `json` or `hcl`.
    #[error("-config-format must be either 'hcl' or 'json', found {value:?}")]
    InvalidFormat {
        /// The value given.
        value: String,
    },
    /// A file is not valid JSON or HCL.
    #[error("{location}: failed to parse {format}: {message}{hint}",
        location = location(path, *line, *column),
        hint = hint.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// `JSON` or `HCL`.
        format: &'static str,
        /// 1-based line, where the parser reports one.
        line: Option<usize>,
        /// 1-based column, where the parser reports one.
        column: Option<usize>,
        /// The parser's message.
        message: String,
        /// How to rewrite an HCL1-only form that the HCL2 parser rejects.
        hint: Option<String>,
    },
    /// A key that Consul (and consul-sec) does not know.
    #[error("{key}: invalid config key (in {at}){suggestion}",
        at = at(origin, *position),
        suggestion = suggestion.as_deref().map(|s| format!("; did you mean {s:?}?")).unwrap_or_default())]
    UnknownKey {
        /// The dotted key path.
        key: String,
        /// Where it was written.
        origin: Origin,
        /// Where in the file, when the key could be found in its text.
        position: Option<Position>,
        /// The closest known key at the same level, if one is close.
        suggestion: Option<String>,
    },
    /// A value of the wrong type or outside its range.
    #[error("{key}: expected {expected}, found {found} (in {at})", at = at(origin, *position))]
    InvalidType {
        /// The dotted key path.
        key: String,
        /// Where it was written.
        origin: Origin,
        /// Where in the file, when the key could be found in its text.
        position: Option<Position>,
        /// What the key takes.
        expected: &'static str,
        /// What was found (the value is omitted for secrets).
        found: String,
    },
    /// The `encrypt` key is not a usable gossip key. The key itself is never
    /// part of the message.
    #[error("encrypt: invalid gossip encryption key (in {at})", at = at(origin, *position))]
    InvalidEncryptKey {
        /// Where it was written.
        origin: Origin,
        /// Where in the file, when the key could be found in its text.
        position: Option<Position>,
        /// The gossip-crypto crate's reason (base64 position, length, alphabet, double encoding).
        #[source]
        source: consul_sec_gossip_crypto::Error,
    },
    /// A value that has the right type but is not allowed (a TLS version,
    /// a cipher suite, a datacenter name, a contradiction, ...).
    #[error("{key}: {message}{}", in_origin(origin.as_ref(), *position))]
    Invalid {
        /// The dotted key path.
        key: String,
        /// Where the value came from (`None` when the problem is a missing value).
        origin: Option<Origin>,
        /// Where in the file, when the key could be found in its text.
        position: Option<Position>,
        /// What is wrong and what is expected.
        message: String,
    },
}

impl Error {
    /// The key, origin and position slot of errors about one key of one source.
    pub(crate) fn located(&mut self) -> Option<(&str, &Origin, &mut Option<Position>)> {
        match self {
            Error::UnknownKey { key, origin, position, .. }
            | Error::InvalidType { key, origin, position, .. }
            | Error::Invalid { key, origin: Some(origin), position, .. } => {
                Some((key.as_str(), origin, position))
            }
            Error::InvalidEncryptKey { origin, position, .. } => {
                Some(("encrypt", origin, position))
            }
            _ => None,
        }
    }
}

/// `file a.json:3:5`, or just the origin when there is no position.
fn at(origin: &Origin, position: Option<Position>) -> String {
    match (origin, position) {
        (Origin::File(_), Some(p)) => format!("{origin}:{}:{}", p.line, p.column),
        _ => origin.to_string(),
    }
}

fn in_origin(origin: Option<&Origin>, position: Option<Position>) -> String {
    origin.map(|o| format!(" (in {})", at(o, position))).unwrap_or_default()
}

fn location(path: &std::path::Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", path.display()),
        (Some(l), None) => format!("{}:{l}", path.display()),
        _ => path.display().to_string(),
    }
}

/// A problem that does not stop the agent: a deprecated key, a skipped
/// file, a risky combination of settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The warning text (Consul's exact wording where Consul has one).
    pub message: String,
    /// The source the warning is about, if it is about one.
    pub origin: Option<Origin>,
}

impl Warning {
    pub(crate) fn new(message: impl Into<String>, origin: Option<Origin>) -> Self {
        Warning { message: message.into(), origin }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{} (in {origin})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Loading failed: every error found, plus the warnings collected on the way.
///
/// `Display` lists every error with its causes, one per line, in the
/// `N errors occurred:` form of Consul's multierror.
#[derive(Debug)]
pub struct LoadFailure {
    /// All errors, in the order the sources were read.
    pub errors: Vec<Error>,
    /// Warnings collected before and while the errors were found.
    pub warnings: Vec<Warning>,
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(f, "{n} error{} occurred:", if n == 1 { "" } else { "s" })?;
        for error in &self.errors {
            write!(f, "\n\t* {error}")?;
            // The causes (OS errors, the gossip-crypto reason) follow on the same line.
            let mut cause = std::error::Error::source(error);
            while let Some(inner) = cause {
                write!(f, ": {inner}")?;
                cause = inner.source();
            }
        }
        Ok(())
    }
}

impl std::error::Error for LoadFailure {}

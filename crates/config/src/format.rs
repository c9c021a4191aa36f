//! File formats: JSON (figment's `Json`) and HCL (our [`Hcl`] format over
//! hcl-rs), plus the hints for HCL1-only syntax that hcl-rs rejects.

use std::path::Path;
use std::str::FromStr;

use figment::providers::{Format, Json};
use figment::value::Dict;

use crate::error::Error;

/// A figment [`Format`] for HCL files, backed by hcl-rs (an HCL2 parser).
///
/// Gives `Hcl::file(path)` and `Hcl::string(text)` providers like figment's
/// own `Json`. Consul writes its files in HCL1; the forms HCL2 does not
/// accept are listed in `docs/configuration.md`.
///
/// ```
/// use consul_sec_config::Hcl;
/// use figment::{Figment, providers::Format as _};
///
/// let figment = Figment::from(Hcl::string("ports { https = 8501 }"));
/// let https: u16 = figment.extract_inner("ports.https").unwrap();
/// assert_eq!(https, 8501);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Hcl;

impl Format for Hcl {
    type Error = hcl::Error;
    const NAME: &'static str = "HCL";

    fn from_str<T: serde::de::DeserializeOwned>(string: &str) -> Result<T, Self::Error> {
        hcl::from_str(string)
    }
}

/// The syntax of a configuration file (`-config-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// JSON.
    Json,
    /// HCL (parsed as HCL2; see the crate docs for HCL1 differences).
    Hcl,
}

impl FileFormat {
    /// The format an extension names: `.json` or `.hcl`, nothing else.
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Some(FileFormat::Json),
            Some("hcl") => Some(FileFormat::Hcl),
            _ => None,
        }
    }

    /// `JSON` or `HCL`, as used in messages and provenance.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Json => "JSON",
            FileFormat::Hcl => "HCL",
        }
    }
}

impl FromStr for FileFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(FileFormat::Json),
            "hcl" => Ok(FileFormat::Hcl),
            other => Err(Error::InvalidFormat { value: other.to_owned() }),
        }
    }
}

/// Parses one file's text into a dictionary, with line/column and HCL1
/// hints on failure.
pub(crate) fn parse(text: &str, format: FileFormat, path: &Path) -> Result<Dict, Error> {
    match format {
        FileFormat::Json => Json::from_str::<Dict>(text).map_err(|err| Error::Parse {
            path: path.to_owned(),
            format: "JSON",
            line: (err.line() > 0).then_some(err.line()),
            column: (err.column() > 0).then_some(err.column()),
            message: strip_json_position(&err.to_string()),
            hint: None,
        }),
        FileFormat::Hcl => Hcl::from_str::<Dict>(text).map_err(|err| {
            let (line, column, message, line_text) = match &err {
                hcl::Error::Parse(p) => (
                    Some(p.location().line()),
                    Some(p.location().column()),
                    p.message().to_owned(),
                    Some(p.line().to_owned()),
                ),
                other => (None, None, other.to_string(), None),
            };
            Error::Parse {
                path: path.to_owned(),
                format: "HCL",
                line,
                column,
                hint: hcl1_hint(line_text.as_deref(), text),
                message,
            }
        }),
    }
}

/// serde_json appends " at line L column C"; the location is already in
/// front of our message.
fn strip_json_position(message: &str) -> String {
    match message.rsplit_once(" at line ") {
        Some((text, _)) => text.to_owned(),
        None => message.to_owned(),
    }
}

/// Recognises the HCL1 forms hcl-rs (HCL2) rejects and says how to write them.
///
/// Looks at the line the parser stopped on first; if that line shows
/// neither form, the whole file is scanned, because the parser may stop
/// after the offending construct.
fn hcl1_hint(error_line: Option<&str>, text: &str) -> Option<String> {
    if let Some(hint) = error_line.and_then(line_hint) {
        return Some(hint);
    }
    // Quoted names are legal inside object values, so only the one-line
    // block form is looked for elsewhere in the file.
    text.lines().filter_map(line_hint).find(|hint| hint.starts_with("HCL1 allowed"))
}

fn line_hint(line: &str) -> Option<String> {
    let trimmed = line.trim_start();
    // `"encrypt" = "x"`: a quoted attribute name at block level.
    if let Some((name, after)) = trimmed.strip_prefix('"').and_then(|rest| rest.split_once('"'))
        && after.trim_start().starts_with('=')
        && !name.is_empty()
    {
        // The value is not repeated: it may be the gossip key.
        return Some(format!(
            "quoted attribute names are HCL1 syntax; write `{name} = ...` without quotes around the name \
             (quoted keys are fine inside an object value such as `node_meta = {{ \"{name}\" = ... }}`)"
        ));
    }
    // `ports { https = 8501, dns = 8600 }`: several attributes on one line of a block.
    if let Some((head, body)) = trimmed.split_once('{') {
        let head = head.trim();
        let body = body.trim_end().trim_end_matches('}');
        let is_block = !head.is_empty() && !head.contains('=');
        if is_block && body.matches('=').count() >= 2 {
            let body = body.trim().trim_end_matches(',');
            // Never repeat a line that might hold the gossip key.
            let example = if body.contains("encrypt") {
                format!("`{head} = {{ ... }}`")
            } else {
                format!("`{head} = {{ {body} }}`")
            };
            return Some(format!(
                "HCL1 allowed several attributes on one line of a block; write one attribute per line, \
                 or use an object value: {example}"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hint_for_quoted_attribute_name() {
        let hint = line_hint(r#"  "encrypt" = "abc""#).unwrap();
        assert!(hint.contains("`encrypt = ...`"), "{hint}");
        assert!(!hint.contains("abc"), "the value may be a secret: {hint}");
    }

    #[test]
    fn hint_for_one_line_block() {
        let hint = line_hint("ports { https = 8501, dns = 8600 }").unwrap();
        assert!(hint.contains("`ports = { https = 8501, dns = 8600 }`"), "{hint}");
    }

    #[test]
    fn no_hint_for_ordinary_lines() {
        assert_eq!(line_hint("ports = { https = 8501, dns = 8600 }"), None);
        assert_eq!(line_hint("encrypt = \"x\""), None);
        assert_eq!(line_hint("ports {"), None);
    }

    #[test]
    fn format_names() {
        assert_eq!("json".parse::<FileFormat>().unwrap(), FileFormat::Json);
        assert_eq!("hcl".parse::<FileFormat>().unwrap(), FileFormat::Hcl);
        let err = "yaml".parse::<FileFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "-config-format must be either 'hcl' or 'json', found \"yaml\""
        );
        assert_eq!(FileFormat::from_path(Path::new("a/b.hcl")), Some(FileFormat::Hcl));
        assert_eq!(FileFormat::from_path(Path::new("a/b.conf")), None);
    }
}

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
            message: json_message(&err, text),
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

/// The parser's message, except for a file that is valid JSON but not an
/// object: serde_json would quote the value (`invalid type: string
/// "<the gossip key>", expected a map`), so only its kind is named.
fn json_message(err: &serde_json::Error, text: &str) -> String {
    if err.classify() == serde_json::error::Category::Data {
        let kind = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::String(_)) => "a string",
            Ok(serde_json::Value::Array(_)) => "a list",
            Ok(serde_json::Value::Number(_)) => "a number",
            Ok(serde_json::Value::Bool(_)) => "a boolean",
            Ok(serde_json::Value::Null) => "null",
            Ok(serde_json::Value::Object(_)) | Err(_) => "a value that is not an object",
        };
        return format!("the file must hold a JSON object, found {kind}");
    }
    strip_json_position(&err.to_string())
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
    // `tls { internal_rpc { verify_server_hostname = true } }`: a block inside a one-line block.
    if let Some(rewritten) = nested_one_line_blocks(trimmed) {
        // Never repeat a line that might hold the gossip key.
        let example = if trimmed.contains("encrypt") {
            "`name = { inner = { ... } }`".to_owned()
        } else {
            format!("`{rewritten}`")
        };
        return Some(format!(
            "HCL1 allowed a block inside a one-line block; put each block's braces on lines of \
             their own, or use object values: {example}"
        ));
    }
    // `ports { https = 8501, dns = 8600 }`: several attributes on one line of a block.
    if let Some((head, body)) = trimmed.split_once('{') {
        let head = head.trim();
        let body = body.trim_end().trim_end_matches('}');
        let is_block = !head.is_empty() && !head.contains('=');
        if is_block && body.matches('=').count() >= 2 {
            let body = with_commas(body.trim().trim_end_matches(','));
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

/// `a = 1  b = 2` as `a = 1, b = 2`: an object value needs commas between
/// attributes on one line, which HCL1 blocks did not. Text that already has
/// commas, or quotes (a value could hold spaces), is kept as written.
fn with_commas(body: &str) -> String {
    if body.contains(',') || body.contains('"') {
        return body.to_owned();
    }
    let tokens: Vec<&str> = body.split_whitespace().collect();
    let mut out = String::new();
    for (i, token) in tokens.iter().enumerate() {
        // A name followed by `=` starts a new attribute.
        let starts_attribute = tokens.get(i + 1) == Some(&"=") && i > 0;
        if starts_attribute {
            out.push(',');
        }
        if i > 0 {
            out.push(' ');
        }
        out.push_str(token);
    }
    out
}

/// For a line that opens a block and, on the same line, another block
/// inside it (`a { b { c = 1 } }`), the same line with every block written
/// as an object value (`a = { b = { c = 1 } }`).
fn nested_one_line_blocks(line: &str) -> Option<String> {
    let line = line.trim_end();
    if !line.ends_with('}') {
        return None;
    }
    let mut rewritten = String::with_capacity(line.len() + 8);
    let mut blocks = 0;
    for (index, c) in line.char_indices() {
        if c == '{' {
            let before = line.get(..index).unwrap_or_default().trim_end();
            let opens_block = !before.is_empty()
                && before.rsplit(|c: char| c.is_whitespace() || c == '{').next().is_some_and(
                    |word| {
                        !word.is_empty()
                            && word
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    },
                );
            if opens_block {
                blocks += 1;
                rewritten.truncate(rewritten.trim_end().len());
                rewritten.push_str(" = ");
            }
        }
        rewritten.push(c);
    }
    (blocks >= 2).then_some(rewritten)
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
    fn hint_for_a_block_inside_a_one_line_block() {
        let hint = line_hint("tls { internal_rpc { verify_server_hostname = true } }").unwrap();
        assert!(
            hint.contains("`tls = { internal_rpc = { verify_server_hostname = true } }`"),
            "{hint}"
        );
        let hint =
            line_hint("tls { defaults { verify_incoming = true, ca_file = \"a\" } }").unwrap();
        assert!(
            hint.contains("`tls = { defaults = { verify_incoming = true, ca_file = \"a\" } }`"),
            "{hint}"
        );
        // The suggested form parses to the same object as the block form.
        let one_line: Dict =
            Hcl::from_str("tls = { internal_rpc = { verify_server_hostname = true } }").unwrap();
        let blocks: Dict =
            Hcl::from_str("tls {\n  internal_rpc {\n    verify_server_hostname = true\n  }\n}\n")
                .unwrap();
        assert_eq!(one_line, blocks);
    }

    #[test]
    fn no_hint_for_ordinary_lines() {
        assert_eq!(line_hint("ports = { https = 8501, dns = 8600 }"), None);
        // Without commas in the HCL1 line, the suggested object value has them.
        let hint =
            line_hint("limits { http_max_conns_per_client = 2  rpc_max_conns_per_client = 2 }")
                .unwrap();
        assert!(
            hint.contains(
                "`limits = { http_max_conns_per_client = 2, rpc_max_conns_per_client = 2 }`"
            ),
            "{hint}"
        );
        assert_eq!(line_hint("encrypt = \"x\""), None);
        assert_eq!(line_hint("ports {"), None);
        assert_eq!(line_hint("tls = { internal_rpc = { verify_server_hostname = true } }"), None);
        assert_eq!(line_hint("node_meta { a = \"{x}\" }"), None);
    }

    #[test]
    fn a_json_file_that_is_not_an_object_is_described_not_quoted() {
        let key = "W4ftjre1IdBrU3AvmyTN8NaJpe/xRW4gxzs03e2Pxqk=";
        for (text, kind) in [
            (format!("\"{key}\""), "a string"),
            (format!("[\"{key}\"]"), "a list"),
            ("42".to_owned(), "a number"),
            ("null".to_owned(), "null"),
        ] {
            let err = parse(&text, FileFormat::Json, Path::new("k.json")).unwrap_err();
            let message = err.to_string();
            assert!(!message.contains(key), "{message}");
            assert!(
                message.ends_with(&format!(
                    "failed to parse JSON: the file must hold a JSON object, found {kind}"
                )),
                "{message}"
            );
        }
        // Syntax errors keep the parser's words.
        let err = parse("{\"a\": ", FileFormat::Json, Path::new("k.json")).unwrap_err();
        assert!(
            err.to_string().ends_with("failed to parse JSON: EOF while parsing a value"),
            "{err}"
        );
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

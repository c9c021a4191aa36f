//! Gathering the sources in Consul's order: defaults, list-valued flags,
//! files and directories, environment variables, scalar flags. Each
//! source is checked and has its flat TLS keys mapped on its own before
//! it is merged.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use secrecy::{ExposeSecret as _, SecretString};

use crate::deprecated::{Moved, map_flat_keys};
use crate::error::{Error, Origin, Position, Warning};
use crate::format::{FileFormat, parse};
use crate::schema::{FLAT_TLS_KEYS, ValueSyntax, check_source};

/// The prefix of environment variables that configure the agent.
pub const ENV_PREFIX: &str = "CONSUL_SEC_";

/// `CONSUL_SEC_` variables that belong to the project's test and CI tooling
/// (interop switch, shared-material path, Go tool path), not to the agent's
/// configuration; they are never read as config keys.
pub const TOOLING_ENV_VARS: &[&str] =
    &["CONSUL_SEC_INTEROP", "CONSUL_SEC_SHARED", "CONSUL_SEC_MEMBERLIST_CRYPTO"];

/// The built-in defaults (Consul's, for the keys consul-sec reads).
const DEFAULTS: &str = r#"{
  "datacenter": "dc1",
  "domain": "consul",
  "bind_addr": "0.0.0.0",
  "client_addr": "127.0.0.1",
  "server": false,
  "bootstrap_expect": 0,
  "log_level": "info",
  "ports": {
    "http": 8500, "https": -1, "dns": 8600, "grpc": -1, "grpc_tls": -1,
    "serf_lan": 8301, "serf_wan": 8302, "server": 8300
  },
  "limits": { "http_max_conns_per_client": 200, "rpc_max_conns_per_client": 100 },
  "encrypt_verify_incoming": true,
  "encrypt_verify_outgoing": true,
  "disable_keyring_file": false,
  "tls": { "defaults": { "tls_min_version": "TLSv1_2" } }
}"#;

/// What `-dev` changes (a subset of Consul's dev defaults).
const DEV_DEFAULTS: &str = r#"{
  "bind_addr": "127.0.0.1",
  "server": true,
  "disable_keyring_file": true,
  "log_level": "debug"
}"#;

/// A path given with `-config-file` or `-config-dir`, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigPath {
    /// `-config-file`: a file (or, as in Consul, a directory).
    File(PathBuf),
    /// `-config-dir`: the `.json` and `.hcl` files directly inside, in name order.
    Dir(PathBuf),
}

/// The agent's command-line flags that set configuration keys. `None`
/// (or an empty list) means "not given", so the flag does not override
/// files or the environment.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    /// `-datacenter`
    pub datacenter: Option<String>,
    /// `-domain`
    pub domain: Option<String>,
    /// `-node`
    pub node_name: Option<String>,
    /// `-data-dir`
    pub data_dir: Option<String>,
    /// `-server`
    pub server: Option<bool>,
    /// `-bootstrap-expect`
    pub bootstrap_expect: Option<u32>,
    /// `-bind`
    pub bind_addr: Option<String>,
    /// `-advertise`
    pub advertise_addr: Option<String>,
    /// `-client`
    pub client_addr: Option<String>,
    /// `-http-port`
    pub http_port: Option<i32>,
    /// `-https-port`
    pub https_port: Option<i32>,
    /// `-serf-lan-port`
    pub serf_lan_port: Option<i32>,
    /// `-server-port`
    pub server_port: Option<i32>,
    /// `-retry-join` (repeatable; placed before the files' lists, as Consul does)
    pub retry_join: Vec<String>,
    /// `-join` (repeatable; the `start_join` key)
    pub start_join: Vec<String>,
    /// `-log-level`
    pub log_level: Option<String>,
    /// `-encrypt`
    pub encrypt: Option<SecretString>,
    /// `-disable-keyring-file`
    pub disable_keyring_file: Option<bool>,
}

/// One checked source, ready to merge. No Debug: `dict` and `text` hold
/// the file as written, `encrypt` included.
pub(crate) struct Source {
    pub(crate) origin: Origin,
    /// `JSON file`, `HCL file`, `environment variable`, `command-line flag`, `default`.
    pub(crate) kind: &'static str,
    pub(crate) dict: Dict,
    pub(crate) moved: Vec<Moved>,
    /// The file's text, to find the line of a key named in an error.
    pub(crate) text: Option<String>,
}

impl Source {
    fn new(
        origin: Origin,
        kind: &'static str,
        mut dict: Dict,
        syntax: ValueSyntax,
        errors: &mut Vec<Error>,
        warnings: &mut Vec<Warning>,
    ) -> Source {
        check_source(&mut dict, &origin, syntax, errors);
        let moved = map_flat_keys(&mut dict, &origin, warnings);
        Source { origin, kind, dict, moved, text: None }
    }
}

/// The figment provider for one source; its metadata records the origin
/// so `find_metadata` can say where each merged value came from.
pub(crate) struct SourceProvider<'a>(pub(crate) &'a Source);

impl Provider for SourceProvider<'_> {
    fn metadata(&self) -> Metadata {
        let source = &self.0;
        let meta = Metadata::named(source.kind);
        match &source.origin {
            Origin::File(path) => meta.source(figment::Source::File(path.clone())),
            Origin::Env(name) => meta.source(figment::Source::Custom(format!("env:{name}"))),
            Origin::Flag(name) => meta.source(figment::Source::Custom(format!("flag:{name}"))),
            Origin::Default => meta.source(figment::Source::Custom("default".to_owned())),
        }
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.dict.clone()))
    }
}

/// The origin recorded in a source's metadata.
pub(crate) fn origin_of(meta: &Metadata) -> Origin {
    match &meta.source {
        Some(figment::Source::File(path)) => Origin::File(path.clone()),
        Some(figment::Source::Custom(custom)) => {
            if let Some(name) = custom.strip_prefix("env:") {
                Origin::Env(name.to_owned())
            } else if let Some(name) = custom.strip_prefix("flag:") {
                Origin::Flag(name.to_owned())
            } else {
                Origin::Default
            }
        }
        _ => Origin::Default,
    }
}

pub(crate) fn defaults(
    dev: bool,
    errors: &mut Vec<Error>,
    warnings: &mut Vec<Warning>,
) -> Vec<Source> {
    let mut out = Vec::new();
    let texts: &[&str] = if dev { &[DEFAULTS, DEV_DEFAULTS] } else { &[DEFAULTS] };
    for text in texts {
        // The defaults are constants of this crate; a parse failure would be a bug caught by tests.
        let dict: Dict = serde_json::from_str(text).unwrap_or_default();
        out.push(Source::new(
            Origin::Default,
            "default",
            dict,
            ValueSyntax::Typed,
            errors,
            warnings,
        ));
    }
    out
}

/// Reads the files and directories in the order given.
pub(crate) fn files(
    paths: &[ConfigPath],
    forced: Option<FileFormat>,
    errors: &mut Vec<Error>,
    warnings: &mut Vec<Warning>,
) -> Vec<Source> {
    let mut out = Vec::new();
    for path in paths {
        let (path, named_dir) = match path {
            ConfigPath::File(p) => (p, false),
            ConfigPath::Dir(p) => (p, true),
        };
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(source) => {
                errors.push(Error::Io { path: path.clone(), action: "open", source });
                continue;
            }
        };
        if meta.is_dir() {
            read_dir(path, forced, &mut out, errors, warnings);
        } else if named_dir {
            errors.push(Error::Io {
                path: path.clone(),
                action: "read directory",
                source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            });
        } else {
            match forced.or_else(|| FileFormat::from_path(path)) {
                Some(format) => read_file(path, format, &mut out, errors, warnings),
                None => errors.push(Error::UnknownExtension { path: path.clone() }),
            }
        }
    }
    out
}

fn read_dir(
    dir: &Path,
    forced: Option<FileFormat>,
    out: &mut Vec<Source>,
    errors: &mut Vec<Error>,
    warnings: &mut Vec<Warning>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            errors.push(Error::Io { path: dir.to_owned(), action: "read directory", source });
            return;
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(source) => {
                errors.push(Error::Io { path: dir.to_owned(), action: "read directory", source })
            }
        }
    }
    // Byte order of the file names, as Go's sort of directory entries.
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    for path in paths {
        // Symlinks are followed; sub-directories are not descended into.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => {}
            Err(source) => {
                errors.push(Error::Io { path, action: "open", source });
                continue;
            }
        }
        match forced.or_else(|| FileFormat::from_path(&path)) {
            Some(format) => read_file(&path, format, out, errors, warnings),
            None => warnings.push(Warning::new(
                format!(
                    "skipping file {}, extension must be .hcl or .json, or config format must be set",
                    path.display()
                ),
                None,
            )),
        }
    }
}

fn read_file(
    path: &Path,
    format: FileFormat,
    out: &mut Vec<Source>,
    errors: &mut Vec<Error>,
    warnings: &mut Vec<Warning>,
) {
    let text = match read_limited(path) {
        Ok(text) => text,
        Err(source) => {
            errors.push(Error::Io { path: path.to_owned(), action: "read", source });
            return;
        }
    };
    // Consul skips empty files.
    if text.trim().is_empty() {
        return;
    }
    match parse(&text, format, path) {
        Ok(dict) => {
            let kind = match format {
                FileFormat::Json => "JSON file",
                FileFormat::Hcl => "HCL file",
            };
            let mut source = Source::new(
                Origin::File(path.to_owned()),
                kind,
                dict,
                ValueSyntax::Typed,
                errors,
                warnings,
            );
            source.text = Some(text);
            out.push(source);
        }
        Err(err) => errors.push(err),
    }
}

/// The largest configuration file read. Consul's files are a few
/// kilobytes; the cap keeps a mistake such as `/dev/zero` or a disk image
/// from exhausting memory.
pub(crate) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads a UTF-8 file of at most [`MAX_FILE_BYTES`].
fn read_limited(path: &Path) -> io::Result<String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    fs::File::open(path)?.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {} MiB, the limit for a config file", MAX_FILE_BYTES >> 20),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8 text (invalid byte at offset {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// Gives errors about a key of a file the line and column of that key,
/// found by searching the file's text for the key path (JSON `"key":`,
/// HCL `key =` / `key {`). A flat TLS key that was mapped into the stanza
/// is searched under the name it was written with.
pub(crate) fn attach_positions(errors: &mut [Error], sources: &[Source]) {
    for error in errors {
        let Some((key, origin, position)) = error.located() else { continue };
        if position.is_some() {
            continue;
        }
        let Some(source) = sources.iter().find(|s| &s.origin == origin && s.text.is_some()) else {
            continue;
        };
        let written = source.moved.iter().find(|m| m.new_path == key).map_or(key, |m| m.old_key);
        if let Some(text) = &source.text {
            *position = locate(text, written);
        }
    }
}

/// The position of the last segment of `path`, each segment searched after the previous one.
pub(crate) fn locate(text: &str, path: &str) -> Option<Position> {
    let mut offset = 0;
    let mut found = None;
    for segment in path.split('.') {
        let at = offset + find_key(text.get(offset..)?, segment)?;
        found = Some(at);
        offset = at + segment.len();
    }
    let at = found?;
    let before = text.get(..at)?;
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text.get(line_start..at)?.chars().count() + 1;
    Some(Position { line, column })
}

/// Byte offset of `key` used as a key: not part of a longer name, and
/// followed (after an optional closing quote and blanks) by `:`, `=` or `{`.
fn find_key(haystack: &str, key: &str) -> Option<usize> {
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    haystack.match_indices(key).map(|(i, _)| i).find(|&i| {
        let prev = haystack.get(..i).and_then(|s| s.chars().next_back());
        if prev.is_some_and(is_name) {
            return false;
        }
        let quoted = prev == Some('"');
        let Some(mut rest) = haystack.get(i + key.len()..) else { return false };
        if quoted {
            let Some(after_quote) = rest.strip_prefix('"') else { return false };
            rest = after_quote;
        } else if rest.starts_with(is_name) {
            return false;
        }
        matches!(rest.trim_start_matches([' ', '\t']).chars().next(), Some(':' | '=' | '{'))
    })
}

/// One source per `CONSUL_SEC_` variable: `CONSUL_SEC_PORTS__HTTPS=8501`
/// sets `ports.https`. Variables for the deprecated flat TLS keys come
/// first, so a `tls` stanza variable wins over a flat one as it would in a
/// file.
pub(crate) fn env<I, K, V>(
    vars: I,
    errors: &mut Vec<Error>,
    warnings: &mut Vec<Warning>,
) -> Vec<Source>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut found: Vec<(bool, String, Vec<String>, Option<String>)> = Vec::new();
    for (name, value) in vars {
        let Some(name) = name.as_ref().to_str() else { continue };
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
        if rest.is_empty() || TOOLING_ENV_VARS.contains(&name) {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let flat =
            path.len() == 1 && path.first().is_some_and(|k| FLAT_TLS_KEYS.contains(&k.as_str()));
        found.push((!flat, name.to_owned(), path, value.as_ref().to_str().map(str::to_owned)));
    }
    found.sort();
    let mut out = Vec::new();
    for (_, name, path, value) in found {
        let origin = Origin::Env(name);
        if path.iter().any(String::is_empty) {
            // `CONSUL_SEC___X`, `CONSUL_SEC_TLS__`, `CONSUL_SEC_NODE_META__`: no key
            // can be empty, and a node_meta entry named "" must not slip through.
            errors.push(Error::Invalid {
                position: None,
                key: path.join("."),
                origin: Some(origin),
                message: "empty key name in the variable name (a `__` at the start or end, \
                          or repeated)"
                    .to_owned(),
            });
            continue;
        }
        let Some(value) = value else {
            errors.push(Error::Invalid {
                position: None,
                key: path.join("."),
                origin: Some(origin),
                message: "value is not valid UTF-8".to_owned(),
            });
            continue;
        };
        let dict = nest(&path, Value::from(value));
        out.push(Source::new(
            origin,
            "environment variable",
            dict,
            ValueSyntax::Text,
            errors,
            warnings,
        ));
    }
    out
}

fn nest(path: &[String], value: Value) -> Dict {
    let mut value = value;
    for key in path.iter().skip(1).rev() {
        let mut dict = Dict::new();
        dict.insert(key.clone(), value);
        value = Value::from(dict);
    }
    let mut root = Dict::new();
    if let Some(first) = path.first() {
        root.insert(first.clone(), value);
    }
    root
}

/// The list-valued flags, merged before the files (Consul prepends them).
pub(crate) fn list_flags(
    flags: &Flags,
    errors: &mut Vec<Error>,
    warnings: &mut Vec<Warning>,
) -> Vec<Source> {
    let mut out = Vec::new();
    for (flag, key, items) in [
        ("-retry-join", "retry_join", &flags.retry_join),
        ("-join", "start_join", &flags.start_join),
    ] {
        if items.is_empty() {
            continue;
        }
        let list: Vec<Value> = items.iter().map(|s| Value::from(s.as_str())).collect();
        out.push(flag_source(flag, &[key], Value::from(list), errors, warnings));
    }
    out
}

/// The scalar flags, merged last so they override files and environment.
pub(crate) fn scalar_flags(
    flags: &Flags,
    errors: &mut Vec<Error>,
    warnings: &mut Vec<Warning>,
) -> Vec<Source> {
    let mut set: Vec<(&str, &[&str], Value)> = Vec::new();
    for (flag, key, v) in [
        ("-datacenter", &["datacenter"][..], &flags.datacenter),
        ("-domain", &["domain"], &flags.domain),
        ("-node", &["node_name"], &flags.node_name),
        ("-data-dir", &["data_dir"], &flags.data_dir),
        ("-bind", &["bind_addr"], &flags.bind_addr),
        ("-advertise", &["advertise_addr"], &flags.advertise_addr),
        ("-client", &["client_addr"], &flags.client_addr),
        ("-log-level", &["log_level"], &flags.log_level),
    ] {
        if let Some(v) = v {
            set.push((flag, key, Value::from(v.as_str())));
        }
    }
    if let Some(v) = &flags.encrypt {
        set.push(("-encrypt", &["encrypt"], Value::from(v.expose_secret())));
    }
    for (flag, key, v) in [
        ("-server", &["server"][..], flags.server),
        ("-disable-keyring-file", &["disable_keyring_file"], flags.disable_keyring_file),
    ] {
        if let Some(v) = v {
            set.push((flag, key, Value::from(v)));
        }
    }
    if let Some(v) = flags.bootstrap_expect {
        set.push(("-bootstrap-expect", &["bootstrap_expect"], Value::from(v)));
    }
    for (flag, key, v) in [
        ("-http-port", &["ports", "http"][..], flags.http_port),
        ("-https-port", &["ports", "https"], flags.https_port),
        ("-serf-lan-port", &["ports", "serf_lan"], flags.serf_lan_port),
        ("-server-port", &["ports", "server"], flags.server_port),
    ] {
        if let Some(v) = v {
            set.push((flag, key, Value::from(v)));
        }
    }
    set.into_iter()
        .map(|(flag, key, value)| flag_source(flag, key, value, errors, warnings))
        .collect()
}

fn flag_source(
    flag: &str,
    key: &[&str],
    value: Value,
    errors: &mut Vec<Error>,
    warnings: &mut Vec<Warning>,
) -> Source {
    let path: Vec<String> = key.iter().map(|k| (*k).to_owned()).collect();
    let dict = nest(&path, value);
    Source::new(
        Origin::Flag(flag.to_owned()),
        "command-line flag",
        dict,
        ValueSyntax::Typed,
        errors,
        warnings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_located_in_json_and_hcl() {
        let json = "{\n  \"node_name\": \"server\",\n  \"ports\": {\"server\": 1, \"https\": 2}\n}";
        assert_eq!(locate(json, "ports.https"), Some(Position { line: 3, column: 27 }));
        assert_eq!(locate(json, "node_name"), Some(Position { line: 2, column: 4 }));
        let hcl = "verify_server_hostname = true\ntls {\n  defaults {\n    verify_server_hostname = true\n  }\n}\n";
        assert_eq!(
            locate(hcl, "tls.defaults.verify_server_hostname"),
            Some(Position { line: 4, column: 5 })
        );
        assert_eq!(locate(hcl, "server"), None, "a longer name does not match");
        assert_eq!(locate(hcl, "tls.grpc"), None);
    }

    #[test]
    fn defaults_parse_and_pass_the_schema() {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let sources = defaults(true, &mut errors, &mut warnings);
        assert!(errors.is_empty() && warnings.is_empty(), "{errors:?} {warnings:?}");
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].dict["datacenter"].as_str(), Some("dc1"));
    }

    #[test]
    fn env_names_nest_and_flat_tls_keys_come_first() {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let sources = env(
            [
                ("CONSUL_SEC_VERIFY_OUTGOING", "true"),
                ("CONSUL_SEC_TLS__DEFAULTS__VERIFY_OUTGOING", "false"),
                ("CONSUL_SEC_PORTS__HTTPS", "8501"),
                ("OTHER", "x"),
            ],
            &mut errors,
            &mut warnings,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<String> = sources.iter().map(|s| s.origin.to_string()).collect();
        assert_eq!(
            names,
            [
                "environment variable CONSUL_SEC_VERIFY_OUTGOING",
                "environment variable CONSUL_SEC_PORTS__HTTPS",
                "environment variable CONSUL_SEC_TLS__DEFAULTS__VERIFY_OUTGOING"
            ]
        );
        assert_eq!(
            sources[1].dict["ports"]
                .find_ref("https")
                .and_then(Value::to_num)
                .and_then(crate::schema::integer),
            Some(8501)
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_env_value_is_an_error_naming_the_variable() {
        use std::os::unix::ffi::OsStringExt as _;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let value = std::ffi::OsString::from_vec(vec![0xff, 0xfe]);
        let sources = env(
            [(std::ffi::OsString::from("CONSUL_SEC_DATACENTER"), value)],
            &mut errors,
            &mut warnings,
        );
        assert!(sources.is_empty());
        assert_eq!(
            errors[0].to_string(),
            "datacenter: value is not valid UTF-8 (in environment variable CONSUL_SEC_DATACENTER)"
        );
    }

    #[test]
    fn tooling_variables_are_not_config_keys() {
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let sources = env(
            [
                ("CONSUL_SEC_INTEROP", "1"),
                ("CONSUL_SEC_SHARED", "/work/shared"),
                ("CONSUL_SEC_MEMBERLIST_CRYPTO", "/tmp/memberlist-crypto"),
                ("CONSUL_SEC_DATACENTER", "dc9"),
            ],
            &mut errors,
            &mut warnings,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(sources.len(), 1, "only CONSUL_SEC_DATACENTER is a config source");
    }

    #[test]
    fn env_names_with_an_empty_key_are_errors() {
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let sources = env(
            [
                ("CONSUL_SEC___X", "1"),
                ("CONSUL_SEC_NODE_META__", "x"),
                ("CONSUL_SEC_TLS____DEFAULTS", "x"),
            ],
            &mut errors,
            &mut warnings,
        );
        assert!(sources.is_empty());
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let suffix =
            "empty key name in the variable name (a `__` at the start or end, or repeated)";
        assert_eq!(
            texts,
            [
                format!("node_meta.: {suffix} (in environment variable CONSUL_SEC_NODE_META__)"),
                format!(
                    "tls..defaults: {suffix} (in environment variable CONSUL_SEC_TLS____DEFAULTS)"
                ),
                format!(".x: {suffix} (in environment variable CONSUL_SEC___X)"),
            ]
        );
    }

    #[test]
    fn oversized_and_binary_files_are_refused_without_reading_them_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big.json");
        // Sparse: a huge file that costs no disk space.
        fs::File::create(&big).expect("create").set_len(MAX_FILE_BYTES + 1).expect("set_len");
        let binary = dir.path().join("bin.hcl");
        fs::write(&binary, b"a = 1\n\xff\xfe").expect("write");
        let mut paths = vec![ConfigPath::File(big.clone()), ConfigPath::File(binary.clone())];
        #[cfg(unix)]
        paths.push(ConfigPath::File(PathBuf::from("/dev/zero")));
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let sources = files(&paths, Some(FileFormat::Json), &mut errors, &mut warnings);
        assert!(sources.is_empty());
        let texts: Vec<String> = errors
            .iter()
            .map(|e| match std::error::Error::source(e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            })
            .collect();
        let mut expected = vec![
            format!(
                "{}: read failed: larger than 16 MiB, the limit for a config file",
                big.display()
            ),
            format!("{}: read failed: not UTF-8 text (invalid byte at offset 6)", binary.display()),
        ];
        #[cfg(unix)]
        expected.push(
            "/dev/zero: read failed: larger than 16 MiB, the limit for a config file".to_owned(),
        );
        assert_eq!(texts, expected);
    }

    #[test]
    fn origin_round_trips_through_metadata() {
        for origin in [
            Origin::Default,
            Origin::File(PathBuf::from("/a/b.hcl")),
            Origin::Env("CONSUL_SEC_X".into()),
            Origin::Flag("-encrypt".into()),
        ] {
            let source = Source {
                origin: origin.clone(),
                kind: "k",
                dict: Dict::new(),
                moved: Vec::new(),
                text: None,
            };
            assert_eq!(origin_of(&SourceProvider(&source).metadata()), origin);
        }
    }
}

//! Consul's configuration file shape as far as consul-sec reads it: which
//! keys exist, what type each takes, and the per-source check that finds
//! unknown keys (with a suggestion) and wrongly typed values.

use figment::value::{Dict, Num, Value};

use crate::error::{Error, Origin};

/// What a leaf key takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A string.
    Str,
    /// A string that must never be echoed (the gossip key).
    Secret,
    /// `true` / `false`.
    Bool,
    /// A port: 0-65535, or a negative number to disable the listener.
    Port,
    /// A non-negative integer.
    Count,
    /// A list of strings; lists from several sources are concatenated.
    List,
    /// A map of string to string; a later non-empty map replaces an earlier one.
    Map,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Str | Kind::Secret => "a string",
            Kind::Bool => "a boolean (true or false)",
            Kind::Port => "a port number (0-65535, or -1 to disable)",
            Kind::Count => "a non-negative integer",
            Kind::List => "a list of strings",
            Kind::Map => "an object with string values",
        }
    }
}

/// A node of the key tree.
#[derive(Debug)]
pub(crate) enum Node {
    Leaf(Kind),
    Table(&'static [(&'static str, Node)]),
}

/// The fields every `tls.<stanza>` may hold (legality per stanza is
/// checked after merging, with Consul's messages).
const TLS_STANZA: &[(&str, Node)] = &[
    ("ca_file", Node::Leaf(Kind::Str)),
    ("ca_path", Node::Leaf(Kind::Str)),
    ("cert_file", Node::Leaf(Kind::Str)),
    ("key_file", Node::Leaf(Kind::Str)),
    ("tls_min_version", Node::Leaf(Kind::Str)),
    ("tls_cipher_suites", Node::Leaf(Kind::Str)),
    ("verify_incoming", Node::Leaf(Kind::Bool)),
    ("verify_outgoing", Node::Leaf(Kind::Bool)),
    ("verify_server_hostname", Node::Leaf(Kind::Bool)),
    ("use_auto_cert", Node::Leaf(Kind::Bool)),
];

/// The `tls` stanzas.
pub(crate) const TLS_STANZAS: [&str; 4] = ["defaults", "internal_rpc", "https", "grpc"];

/// The deprecated flat TLS keys (still accepted, mapped into `tls`).
pub(crate) const FLAT_TLS_KEYS: &[&str] = &[
    "ca_file",
    "ca_path",
    "cert_file",
    "key_file",
    "tls_min_version",
    "tls_cipher_suites",
    "verify_incoming",
    "verify_incoming_rpc",
    "verify_incoming_https",
    "verify_outgoing",
    "verify_server_hostname",
    "tls_prefer_server_cipher_suites",
];

/// Every key consul-sec reads.
pub(crate) const ROOT: &[(&str, Node)] = &[
    ("datacenter", Node::Leaf(Kind::Str)),
    ("domain", Node::Leaf(Kind::Str)),
    ("node_name", Node::Leaf(Kind::Str)),
    ("node_meta", Node::Leaf(Kind::Map)),
    ("data_dir", Node::Leaf(Kind::Str)),
    ("server", Node::Leaf(Kind::Bool)),
    ("bootstrap_expect", Node::Leaf(Kind::Count)),
    ("bind_addr", Node::Leaf(Kind::Str)),
    ("advertise_addr", Node::Leaf(Kind::Str)),
    ("client_addr", Node::Leaf(Kind::Str)),
    (
        "ports",
        Node::Table(&[
            ("http", Node::Leaf(Kind::Port)),
            ("https", Node::Leaf(Kind::Port)),
            ("dns", Node::Leaf(Kind::Port)),
            ("grpc", Node::Leaf(Kind::Port)),
            ("grpc_tls", Node::Leaf(Kind::Port)),
            ("serf_lan", Node::Leaf(Kind::Port)),
            ("serf_wan", Node::Leaf(Kind::Port)),
            ("server", Node::Leaf(Kind::Port)),
        ]),
    ),
    (
        "limits",
        Node::Table(&[
            ("http_max_conns_per_client", Node::Leaf(Kind::Count)),
            ("rpc_max_conns_per_client", Node::Leaf(Kind::Count)),
        ]),
    ),
    ("retry_join", Node::Leaf(Kind::List)),
    ("start_join", Node::Leaf(Kind::List)),
    ("log_level", Node::Leaf(Kind::Str)),
    ("encrypt", Node::Leaf(Kind::Secret)),
    ("encrypt_verify_incoming", Node::Leaf(Kind::Bool)),
    ("encrypt_verify_outgoing", Node::Leaf(Kind::Bool)),
    ("disable_keyring_file", Node::Leaf(Kind::Bool)),
    ("server_name", Node::Leaf(Kind::Str)),
    // Deprecated flat TLS keys.
    ("ca_file", Node::Leaf(Kind::Str)),
    ("ca_path", Node::Leaf(Kind::Str)),
    ("cert_file", Node::Leaf(Kind::Str)),
    ("key_file", Node::Leaf(Kind::Str)),
    ("tls_min_version", Node::Leaf(Kind::Str)),
    ("tls_cipher_suites", Node::Leaf(Kind::Str)),
    ("verify_incoming", Node::Leaf(Kind::Bool)),
    ("verify_incoming_rpc", Node::Leaf(Kind::Bool)),
    ("verify_incoming_https", Node::Leaf(Kind::Bool)),
    ("verify_outgoing", Node::Leaf(Kind::Bool)),
    ("verify_server_hostname", Node::Leaf(Kind::Bool)),
    ("tls_prefer_server_cipher_suites", Node::Leaf(Kind::Bool)),
    (
        "tls",
        Node::Table(&[
            ("defaults", Node::Table(TLS_STANZA)),
            ("internal_rpc", Node::Table(TLS_STANZA)),
            ("https", Node::Table(TLS_STANZA)),
            ("grpc", Node::Table(TLS_STANZA)),
        ]),
    ),
];

/// How values of a source are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueSyntax {
    /// Typed values from JSON/HCL/flags.
    Typed,
    /// Every value is a string (environment variables); it is converted
    /// according to the key's kind.
    Text,
}

/// Checks one source against the schema: unknown keys, value types, and
/// normalisation (a one-element list of objects where a table is expected
/// becomes that object, as Consul unwraps HCL1 blocks; `null` means unset).
/// Every problem is pushed to `errors`; offending keys are removed so the
/// rest of the source can still be merged and checked.
pub(crate) fn check_source(
    dict: &mut Dict,
    origin: &Origin,
    syntax: ValueSyntax,
    errors: &mut Vec<Error>,
) {
    check_table(dict, ROOT, "", origin, syntax, errors);
}

fn check_table(
    dict: &mut Dict,
    table: &'static [(&'static str, Node)],
    prefix: &str,
    origin: &Origin,
    syntax: ValueSyntax,
    errors: &mut Vec<Error>,
) {
    let keys: Vec<String> = dict.keys().cloned().collect();
    for key in keys {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let Some((_, node)) = table.iter().find(|(name, _)| *name == key) else {
            dict.remove(&key);
            errors.push(Error::UnknownKey {
                position: None,
                suggestion: suggest(&key, prefix, table),
                key: path,
                origin: origin.clone(),
            });
            continue;
        };
        let Some(value) = dict.get_mut(&key) else { continue };
        if matches!(value, Value::Empty(..)) {
            dict.remove(&key);
            continue;
        }
        match node {
            Node::Table(inner) => {
                unwrap_single_block(value);
                match value {
                    Value::Dict(_, child) => {
                        check_table(child, inner, &path, origin, syntax, errors)
                    }
                    other => {
                        let found = if let Value::Array(_, items) = other {
                            format!("{} blocks (only one is allowed)", items.len())
                        } else {
                            describe(other, false)
                        };
                        errors.push(Error::InvalidType {
                            position: None,
                            key: path,
                            origin: origin.clone(),
                            expected: "an object (block)",
                            found,
                        });
                        dict.remove(&key);
                    }
                }
            }
            Node::Leaf(kind) => {
                if syntax == ValueSyntax::Text {
                    coerce_text(value, *kind);
                }
                if !type_matches(value, *kind) {
                    errors.push(Error::InvalidType {
                        position: None,
                        key: path,
                        origin: origin.clone(),
                        expected: kind.expected(),
                        found: describe(value, *kind == Kind::Secret),
                    });
                    dict.remove(&key);
                }
            }
        }
    }
}

/// HCL1-style `[{...}]` for a single block.
fn unwrap_single_block(value: &mut Value) {
    if let Value::Array(_, items) = value
        && items.len() == 1
        && matches!(items.first(), Some(Value::Dict(..)))
        && let Some(only) = items.pop()
    {
        *value = only;
    }
}

fn type_matches(value: &Value, kind: Kind) -> bool {
    match (kind, value) {
        (Kind::Str | Kind::Secret, Value::String(..)) => true,
        (Kind::Bool, Value::Bool(..)) => true,
        (Kind::Port, Value::Num(_, n)) => integer(*n).is_some_and(|n| (-1..=65535).contains(&n)),
        (Kind::Count, Value::Num(_, n)) => {
            integer(*n).is_some_and(|n| (0..=i128::from(u32::MAX)).contains(&n))
        }
        (Kind::List, Value::Array(_, items)) => {
            items.iter().all(|i| matches!(i, Value::String(..)))
        }
        (Kind::Map, Value::Dict(_, map)) => map.values().all(|v| matches!(v, Value::String(..))),
        _ => false,
    }
}

/// Environment values are text; convert them by the key's kind. A value
/// that does not convert stays a string, so the type error names it.
fn coerce_text(value: &mut Value, kind: Kind) {
    let Value::String(tag, text) = value else { return };
    let tag = *tag;
    let trimmed = text.trim();
    let converted = match kind {
        Kind::Str | Kind::Secret | Kind::Map => None,
        // Go's strconv.ParseBool spellings.
        Kind::Bool => crate::parse_go_bool(trimmed).map(|b| Value::Bool(tag, b)),
        Kind::Port | Kind::Count => {
            trimmed.parse::<i64>().ok().map(|n| Value::Num(tag, Num::I64(n)))
        }
        Kind::List => {
            let inner =
                trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(trimmed);
            let items: Vec<Value> = inner
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_owned())
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(tag, s))
                .collect();
            Some(Value::Array(tag, items))
        }
    };
    if let Some(converted) = converted {
        *value = converted;
    }
}

/// Any integer variant as `i128` (figment keeps signed and unsigned apart).
pub(crate) fn integer(n: Num) -> Option<i128> {
    n.to_i128().or_else(|| n.to_u128().and_then(|u| i128::try_from(u).ok()))
}

/// A short description of a value for "found ..." (never the value itself
/// when it is secret).
///
/// A string that decodes as a gossip key is not shown either, wherever it
/// was written: a key pasted under the wrong name is still a key.
pub(crate) fn describe(value: &Value, secret: bool) -> String {
    match value {
        Value::String(_, s) if secret => format!("a string of {} characters", s.chars().count()),
        Value::String(_, s) if looks_like_gossip_key(s) => format!(
            "a string of {} characters that looks like a gossip encryption key (not shown)",
            s.chars().count()
        ),
        Value::String(_, s) => {
            let shown: String = s.chars().take(60).collect();
            let more = if s.chars().count() > 60 { "..." } else { "" };
            format!("string {shown:?}{more}")
        }
        // The kind of a secret value, never its content.
        Value::Char(..) if secret => "a character".to_owned(),
        Value::Bool(..) if secret => "a boolean".to_owned(),
        Value::Num(..) if secret => "a number".to_owned(),
        Value::Char(_, c) => format!("character {c:?}"),
        Value::Bool(_, b) => format!("boolean {b}"),
        Value::Num(_, n) => match (integer(*n), n.to_f64()) {
            (Some(i), _) => format!("number {i}"),
            (None, Some(f)) => format!("number {f}"),
            _ => "a number".to_owned(),
        },
        Value::Empty(..) => "null".to_owned(),
        Value::Dict(..) => "an object".to_owned(),
        Value::Array(_, items) => {
            format!("a list of {} item{}", items.len(), if items.len() == 1 { "" } else { "s" })
        }
    }
}

fn looks_like_gossip_key(text: &str) -> bool {
    consul_sec_gossip_crypto::SecretKey::from_base64(text.trim()).is_ok()
}

/// "Did you mean": the closest sibling key, or the full path of a known key
/// written at the wrong level (`https` at the top level -> `ports.https`).
fn suggest(key: &str, prefix: &str, table: &[(&str, Node)]) -> Option<String> {
    let full =
        |name: &str| if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
    let lowered = key.to_ascii_lowercase().replace('-', "_");
    if let Some((name, _)) = table.iter().find(|(name, _)| *name == lowered) {
        return Some(full(name));
    }
    let best = table
        .iter()
        .map(|(name, _)| (strsim::damerau_levenshtein(&lowered, name), *name))
        .min_by_key(|(distance, _)| *distance);
    if let Some((distance, name)) = best {
        let limit = if name.len() >= 8 { 3 } else { 2 };
        if distance <= limit {
            return Some(full(name));
        }
    }
    let mut elsewhere = Vec::new();
    collect_paths(ROOT, "", &mut |path, leaf| {
        if leaf == lowered && path != full(leaf) {
            elsewhere.push(path);
        }
    });
    elsewhere.into_iter().next()
}

fn collect_paths(table: &[(&str, Node)], prefix: &str, f: &mut dyn FnMut(String, &str)) {
    for (name, node) in table {
        let path = if prefix.is_empty() { (*name).to_owned() } else { format!("{prefix}.{name}") };
        match node {
            Node::Leaf(_) => f(path, name),
            Node::Table(inner) => collect_paths(inner, &path, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dict(json: &str) -> Dict {
        serde_json::from_str(json).unwrap()
    }

    fn check(json: &str) -> (Dict, Vec<Error>) {
        let mut d = dict(json);
        let mut errors = Vec::new();
        check_source(&mut d, &Origin::Default, ValueSyntax::Typed, &mut errors);
        (d, errors)
    }

    #[test]
    fn typos_get_suggestions() {
        let (_, errors) = check(r#"{"encrpyt": "x", "ports": {"htps": 1}, "https": 8501}"#);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("encrpyt: invalid config key") && m.contains("\"encrypt\""))
        );
        assert!(
            messages.iter().any(|m| m.starts_with("ports.htps:") && m.contains("\"ports.https\""))
        );
        assert!(messages.iter().any(|m| m.starts_with("https:") && m.contains("\"ports.https\"")));
    }

    #[test]
    fn far_off_keys_get_no_suggestion() {
        let (_, errors) = check(r#"{"zzzzzzzzzzzzzzz": 1}"#);
        assert!(matches!(&errors[..], [Error::UnknownKey { suggestion: None, .. }]), "{errors:?}");
    }

    #[test]
    fn wrong_types_are_reported_and_removed() {
        let (d, errors) = check(
            r#"{"server": "yes", "ports": {"https": 70000}, "retry_join": "a", "encrypt": 5}"#,
        );
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(matches!(&d["ports"], Value::Dict(_, ports) if ports.is_empty()), "{d:?}");
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|m| m
                == "server: expected a boolean (true or false), found string \"yes\" (in default)"),
            "{text:?}"
        );
    }

    #[test]
    fn secret_values_are_not_described() {
        let mut d = dict(r#"{"encrypt": ["abcdefsecret"]}"#);
        let mut errors = Vec::new();
        check_source(&mut d, &Origin::Default, ValueSyntax::Typed, &mut errors);
        assert!(!errors[0].to_string().contains("abcdefsecret"));
    }

    #[test]
    fn wrongly_typed_secrets_name_their_kind_only() {
        let (_, errors) = check(r#"{"encrypt": 12345}"#);
        assert_eq!(
            errors[0].to_string(),
            "encrypt: expected a string, found a number (in default)"
        );
        let (_, errors) = check(r#"{"encrypt": ["abcdefsecret"]}"#);
        assert_eq!(
            errors[0].to_string(),
            "encrypt: expected a string, found a list of 1 item (in default)"
        );
    }

    #[test]
    fn a_gossip_key_under_the_wrong_name_is_not_echoed() {
        let key = "wfKz4ACrCDDgnHfk8Nj/kydFGtGNWI4f4cfeRgdNDoQ=";
        let (_, errors) = check(&format!(r#"{{"encrypt_verify_incoming": "{key}"}}"#));
        assert_eq!(
            errors[0].to_string(),
            "encrypt_verify_incoming: expected a boolean (true or false), found a string of 44 \
             characters that looks like a gossip encryption key (not shown) (in default)"
        );
        // Ordinary strings are still shown.
        let (_, errors) = check(r#"{"encrypt_verify_incoming": "sometimes"}"#);
        assert!(errors[0].to_string().contains("found string \"sometimes\""), "{errors:?}");
    }

    #[test]
    fn env_text_is_converted_by_kind() {
        let mut d = dict(
            r#"{"server": "true", "ports": {"https": "8501"}, "retry_join": "[a, b]", "start_join": "c,d", "datacenter": "7"}"#,
        );
        let mut errors = Vec::new();
        check_source(&mut d, &Origin::Env("X".into()), ValueSyntax::Text, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(d["server"].to_bool(), Some(true));
        assert_eq!(
            d["ports"].find_ref("https").and_then(Value::to_num).and_then(integer),
            Some(8501)
        );
        assert_eq!(d["retry_join"].clone().into_array().map(|a| a.len()), Some(2));
        assert_eq!(d["start_join"].clone().into_array().map(|a| a.len()), Some(2));
        assert_eq!(d["datacenter"].as_str(), Some("7"));
    }

    #[test]
    fn single_block_lists_are_unwrapped_and_nulls_dropped() {
        let (d, errors) =
            check(r#"{"tls": [{"defaults": {"verify_incoming": true}}], "domain": null}"#);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(d["tls"].find_ref("defaults.verify_incoming").is_some());
        assert!(!d.contains_key("domain"));
        let (_, errors) = check(r#"{"tls": [{}, {}]}"#);
        assert!(errors[0].to_string().contains("2 blocks"), "{errors:?}");
    }
}

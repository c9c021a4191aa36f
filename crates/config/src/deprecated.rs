//! The deprecated flat TLS keys of Consul before 1.12, mapped into the
//! `tls` stanza one source at a time, as Consul's builder does.
//!
//! Within one source a flat key is copied only when the stanza field it
//! maps to is unset there; when both are set the stanza value wins. The
//! deprecation warning is given either way.

use figment::value::{Dict, Value};

use crate::error::{Origin, Warning};

/// Flat key -> its place in the `tls` stanza.
const MAPPING: &[(&str, &str)] = &[
    ("ca_file", "tls.defaults.ca_file"),
    ("ca_path", "tls.defaults.ca_path"),
    ("cert_file", "tls.defaults.cert_file"),
    ("key_file", "tls.defaults.key_file"),
    ("tls_cipher_suites", "tls.defaults.tls_cipher_suites"),
    ("tls_min_version", "tls.defaults.tls_min_version"),
    ("verify_incoming", "tls.defaults.verify_incoming"),
    ("verify_incoming_https", "tls.https.verify_incoming"),
    ("verify_incoming_rpc", "tls.internal_rpc.verify_incoming"),
    ("verify_outgoing", "tls.defaults.verify_outgoing"),
    ("verify_server_hostname", "tls.internal_rpc.verify_server_hostname"),
];

/// A flat key that was moved: where it went and what it was called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Moved {
    pub(crate) new_path: &'static str,
    pub(crate) old_key: &'static str,
}

/// Maps the flat keys of one (already checked) source into `tls`.
pub(crate) fn map_flat_keys(
    dict: &mut Dict,
    origin: &Origin,
    warnings: &mut Vec<Warning>,
) -> Vec<Moved> {
    let mut moved = Vec::new();
    if dict.remove("tls_prefer_server_cipher_suites").is_some() {
        warnings.push(Warning::new(
            "The 'tls_prefer_server_cipher_suites' field is deprecated and will be ignored.",
            Some(origin.clone()),
        ));
    }
    for &(old, new) in MAPPING {
        let Some(mut value) = dict.remove(old) else { continue };
        warnings.push(Warning::new(
            format!("The '{old}' field is deprecated. Use the '{new}' field instead."),
            Some(origin.clone()),
        ));
        if old == "tls_min_version" {
            translate_min_version(&mut value, origin, warnings);
        }
        let parts: Vec<&str> = new.split('.').collect();
        if old == "verify_incoming" {
            // Before 1.12 the gRPC port never verified client certificates,
            // so the flat key leaves tls.grpc.verify_incoming off unless the
            // same source sets it.
            let tag = value.tag();
            insert_if_absent(dict, &["tls", "grpc", "verify_incoming"], Value::Bool(tag, false));
        }
        if insert_if_absent(dict, &parts, value) {
            moved.push(Moved { new_path: new, old_key: old });
        }
    }
    moved
}

/// `tls10`…`tls13` and `""` become `TLSv1_0`…`TLSv1_3` and `TLS_AUTO`, with
/// Consul's extra warning. Other values are kept and validated later like
/// a stanza value.
fn translate_min_version(value: &mut Value, origin: &Origin, warnings: &mut Vec<Warning>) {
    let Value::String(_, text) = value else { return };
    let modern = match text.as_str() {
        "" => "TLS_AUTO",
        "tls10" => "TLSv1_0",
        "tls11" => "TLSv1_1",
        "tls12" => "TLSv1_2",
        "tls13" => "TLSv1_3",
        _ => return,
    };
    warnings.push(Warning::new(
        format!(
            "'tls_min_version' value '{text}' is deprecated, please specify '{modern}' instead"
        ),
        Some(origin.clone()),
    ));
    *text = modern.to_owned();
}

/// Sets `path` to `value` unless something is already there. Returns
/// whether the value was inserted.
fn insert_if_absent(dict: &mut Dict, path: &[&str], value: Value) -> bool {
    let Some((last, parents)) = path.split_last() else { return false };
    let mut current = dict;
    for part in parents {
        let entry = current.entry((*part).to_owned()).or_insert_with(|| Value::from(Dict::new()));
        match entry {
            Value::Dict(_, inner) => current = inner,
            // The schema check already rejected non-object stanzas.
            _ => return false,
        }
    }
    if current.contains_key(*last) {
        return false;
    }
    current.insert((*last).to_owned(), value);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(json: &str) -> (Dict, Vec<Warning>, Vec<Moved>) {
        let mut dict: Dict = serde_json::from_str(json).unwrap();
        let mut warnings = Vec::new();
        let moved = map_flat_keys(&mut dict, &Origin::Default, &mut warnings);
        (dict, warnings, moved)
    }

    #[test]
    fn flat_key_moves_with_warning() {
        let (dict, warnings, moved) = run(r#"{"ca_file": "/ca.pem"}"#);
        assert_eq!(
            dict["tls"].find_ref("defaults.ca_file").and_then(Value::as_str),
            Some("/ca.pem")
        );
        assert!(!dict.contains_key("ca_file"));
        assert_eq!(
            warnings[0].message,
            "The 'ca_file' field is deprecated. Use the 'tls.defaults.ca_file' field instead."
        );
        assert_eq!(moved, [Moved { new_path: "tls.defaults.ca_file", old_key: "ca_file" }]);
    }

    #[test]
    fn stanza_wins_in_the_same_source() {
        let (dict, warnings, moved) =
            run(r#"{"verify_outgoing": false, "tls": {"defaults": {"verify_outgoing": true}}}"#);
        assert_eq!(
            dict["tls"].find_ref("defaults.verify_outgoing").and_then(Value::to_bool),
            Some(true)
        );
        assert_eq!(warnings.len(), 1);
        assert!(moved.is_empty());
    }

    #[test]
    fn old_min_version_is_translated() {
        let (dict, warnings, _) = run(r#"{"tls_min_version": "tls11"}"#);
        assert_eq!(
            dict["tls"].find_ref("defaults.tls_min_version").and_then(Value::as_str),
            Some("TLSv1_1")
        );
        let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(messages.contains(
            &"'tls_min_version' value 'tls11' is deprecated, please specify 'TLSv1_1' instead"
        ));
        assert!(messages.contains(
            &"The 'tls_min_version' field is deprecated. Use the 'tls.defaults.tls_min_version' field instead."
        ));
    }

    #[test]
    fn flat_verify_incoming_keeps_grpc_off() {
        let (dict, _, _) = run(r#"{"verify_incoming": true}"#);
        assert_eq!(
            dict["tls"].find_ref("grpc.verify_incoming").and_then(Value::to_bool),
            Some(false)
        );
        let (dict, _, _) =
            run(r#"{"verify_incoming": true, "tls": {"grpc": {"verify_incoming": true}}}"#);
        assert_eq!(
            dict["tls"].find_ref("grpc.verify_incoming").and_then(Value::to_bool),
            Some(true)
        );
    }

    #[test]
    fn prefer_server_cipher_suites_is_ignored() {
        let (dict, warnings, _) = run(r#"{"tls_prefer_server_cipher_suites": true}"#);
        assert!(dict.is_empty());
        assert_eq!(
            warnings[0].message,
            "The 'tls_prefer_server_cipher_suites' field is deprecated and will be ignored."
        );
    }
}

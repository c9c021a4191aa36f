//! `Internal.KeyringOperation`: Consul's `structs.KeyringRequest` and
//! `structs.KeyringResponses` as msgpack maps, converted to and from the
//! agent's [`KeyRequest`] and [`KeyringResponse`].

use std::collections::BTreeMap;

use consul_sec_gossip_crypto::SecretKey;
use rmpv::Value;

use crate::cluster::{KeyOperation, KeyRequest};
use crate::keyring::KeyChange;
use crate::model::KeyringResponse;
use crate::rpc::codec::{CodecError, bool_field, field, map, str_field, uint_field};

const REQ: &str = "KeyringRequest";
const RESP: &str = "KeyringResponse";

/// Consul's `KeyringOp` string for an operation.
fn op_name(op: &KeyOperation) -> &'static str {
    match op {
        KeyOperation::List => "list",
        KeyOperation::Change(KeyChange::Install(_)) => "install",
        KeyOperation::Change(KeyChange::Use(_)) => "use",
        KeyOperation::Change(KeyChange::Remove(_)) => "remove",
    }
}

/// Encodes `request` as Consul's `structs.KeyringRequest` for `datacenter`.
pub(crate) fn request_to_value(request: &KeyRequest, datacenter: &str) -> Value {
    let key = match &request.op {
        KeyOperation::List => String::new(),
        KeyOperation::Change(KeyChange::Install(k) | KeyChange::Use(k) | KeyChange::Remove(k)) => {
            k.to_base64().to_string()
        }
    };
    map(vec![
        ("Datacenter", Value::from(datacenter)),
        ("Forwarded", Value::from(false)),
        ("Key", Value::from(key)),
        ("LocalOnly", Value::from(request.local_only)),
        ("Operation", Value::from(op_name(&request.op))),
        ("RelayFactor", Value::from(request.relay_factor)),
    ])
}

/// Why a `KeyringRequest` cannot be served; the text goes back as the RPC error.
pub(crate) fn request_from_value(v: &Value) -> Result<KeyRequest, String> {
    let codec = |e: CodecError| e.to_string();
    let operation = str_field(v, REQ, "Operation").map_err(codec)?;
    let relay = uint_field(v, REQ, "RelayFactor").map_err(codec)?;
    let relay_factor = u8::try_from(relay)
        .ok()
        .filter(|r| *r <= 5)
        .ok_or_else(|| "Invalid relay-factor: Relay factor must be in range: [0, 5]".to_owned())?;
    let local_only = bool_field(v, REQ, "LocalOnly").map_err(codec)?;
    let key = || -> Result<SecretKey, String> {
        let text = str_field(v, REQ, "Key").map_err(codec)?;
        SecretKey::from_base64(&text).map_err(|e| e.to_string())
    };
    let op = match operation.as_str() {
        "list" => KeyOperation::List,
        "install" => KeyOperation::Change(KeyChange::Install(key()?)),
        "use" => KeyOperation::Change(KeyChange::Use(key()?)),
        "remove" => KeyOperation::Change(KeyChange::Remove(key()?)),
        other => return Err(format!("Operation: unknown keyring operation {other:?}")),
    };
    if local_only && op != KeyOperation::List {
        return Err(
            "Invalid use of local-only: local-only can only be set for list requests".to_owned()
        );
    }
    Ok(KeyRequest { op, relay_factor, local_only })
}

fn count_map(m: &BTreeMap<String, usize>) -> Value {
    Value::Map(m.iter().map(|(k, n)| (Value::from(k.as_str()), Value::from(*n as u64))).collect())
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(m.iter().map(|(k, s)| (Value::from(k.as_str()), Value::from(s.as_str()))).collect())
}

/// Encodes responses as Consul's `structs.KeyringResponses`.
pub(crate) fn responses_to_value(responses: &[KeyringResponse]) -> Value {
    let items = responses
        .iter()
        .map(|r| {
            map(vec![
                ("Datacenter", Value::from(r.datacenter.as_str())),
                ("Error", Value::from(r.error.as_deref().unwrap_or(""))),
                ("Keys", count_map(&r.keys)),
                ("Messages", string_map(&r.messages)),
                ("NumNodes", Value::from(r.num_nodes as u64)),
                ("Partition", Value::from("")),
                ("PrimaryKeys", count_map(&r.primary_keys)),
                ("Segment", Value::from(r.segment.as_str())),
                ("WAN", Value::from(r.wan)),
            ])
        })
        .collect();
    map(vec![
        ("Index", Value::from(0u64)),
        ("KnownLeader", Value::from(true)),
        ("LastContact", Value::from(0u64)),
        ("Responses", Value::Array(items)),
    ])
}

fn entries<'a>(
    v: Option<&'a Value>,
    name: &'static str,
) -> Result<&'a [(Value, Value)], CodecError> {
    match v {
        None | Some(Value::Nil) => Ok(&[]),
        Some(Value::Map(e)) => Ok(e),
        Some(_) => Err(CodecError::Field { what: RESP, field: name, expected: "a map" }),
    }
}

fn key_text(k: &Value, name: &'static str) -> Result<String, CodecError> {
    match k {
        Value::String(s) => s.as_str().map(str::to_owned),
        Value::Binary(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
    .ok_or(CodecError::Field { what: RESP, field: name, expected: "a map with string keys" })
}

fn counts(v: &Value, name: &'static str) -> Result<BTreeMap<String, usize>, CodecError> {
    let mut out = BTreeMap::new();
    for (k, n) in entries(field(v, name), name)? {
        let n = n.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or(CodecError::Field {
            what: RESP,
            field: name,
            expected: "counts",
        })?;
        out.insert(key_text(k, name)?, n);
    }
    Ok(out)
}

/// Decodes Consul's `structs.KeyringResponses`.
pub(crate) fn responses_from_value(v: &Value) -> Result<Vec<KeyringResponse>, CodecError> {
    let items = match field(v, "Responses") {
        None | Some(Value::Nil) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(CodecError::Field {
                what: "KeyringResponses",
                field: "Responses",
                expected: "an array",
            });
        }
    };
    let mut out = Vec::with_capacity(items.len().min(16));
    for item in items {
        let mut messages = BTreeMap::new();
        for (k, m) in entries(field(item, "Messages"), "Messages")? {
            let text = m.as_str().ok_or(CodecError::Field {
                what: RESP,
                field: "Messages",
                expected: "a map of strings",
            })?;
            messages.insert(key_text(k, "Messages")?, text.to_owned());
        }
        let error = str_field(item, RESP, "Error")?;
        out.push(KeyringResponse {
            wan: bool_field(item, RESP, "WAN")?,
            datacenter: str_field(item, RESP, "Datacenter")?,
            segment: str_field(item, RESP, "Segment")?,
            messages,
            keys: counts(item, "Keys")?,
            primary_keys: counts(item, "PrimaryKeys")?,
            num_nodes: usize::try_from(uint_field(item, RESP, "NumNodes")?).unwrap_or(usize::MAX),
            error: (!error.is_empty()).then_some(error),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";

    #[test]
    fn request_round_trip() {
        let key = SecretKey::from_base64(K).unwrap();
        let req = KeyRequest {
            op: KeyOperation::Change(KeyChange::Use(key)),
            relay_factor: 2,
            local_only: false,
        };
        let v = request_to_value(&req, "dc1");
        assert_eq!(str_field(&v, REQ, "Operation").unwrap(), "use");
        assert_eq!(str_field(&v, REQ, "Key").unwrap(), K);
        assert_eq!(request_from_value(&v).unwrap(), req);
    }

    #[test]
    fn request_checks() {
        let bad_op = map(vec![("Operation", Value::from("rotate"))]);
        assert_eq!(
            request_from_value(&bad_op).unwrap_err(),
            "Operation: unknown keyring operation \"rotate\""
        );
        let relay = map(vec![("Operation", Value::from("list")), ("RelayFactor", Value::from(6))]);
        assert_eq!(
            request_from_value(&relay).unwrap_err(),
            "Invalid relay-factor: Relay factor must be in range: [0, 5]"
        );
        let local = map(vec![
            ("Operation", Value::from("install")),
            ("Key", Value::from(K)),
            ("LocalOnly", Value::from(true)),
        ]);
        assert!(request_from_value(&local).unwrap_err().starts_with("Invalid use of local-only"));
        let bad_key = map(vec![("Operation", Value::from("install")), ("Key", Value::from("x"))]);
        assert!(request_from_value(&bad_key).is_err());
    }

    #[test]
    fn responses_round_trip() {
        let r = KeyringResponse {
            datacenter: "dc1".into(),
            num_nodes: 3,
            keys: BTreeMap::from([(K.to_owned(), 3)]),
            primary_keys: BTreeMap::from([(K.to_owned(), 3)]),
            messages: BTreeMap::from([("n2".to_owned(), "oops".to_owned())]),
            error: Some("1/3 nodes reported failure".into()),
            ..Default::default()
        };
        let back = responses_from_value(&responses_to_value(std::slice::from_ref(&r))).unwrap();
        assert_eq!(back, vec![r]);
    }
}

//! serf 0.9.4 messages, carried as memberlist user messages (`0x08 | type |
//! msgpack`), plus serf's tag encoding in node meta.

use std::collections::BTreeMap;
use std::fmt;

use rmpv::Value;

use crate::Error;
use crate::msgpack::{Enc, Fields, value_bytes};

/// serf's magic first byte of tag-encoded node meta.
pub const TAG_MAGIC: u8 = 0xff;

/// Query flag: the originator wants an ack from every receiver.
pub const QUERY_FLAG_ACK: u32 = 1;
/// Query flag: receivers must not re-broadcast the query.
pub const QUERY_FLAG_NO_BROADCAST: u32 = 2;

/// serf's message type bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum SerfType {
    /// `messageLeaveType`.
    Leave = 0,
    /// `messageJoinType`.
    Join = 1,
    /// `messagePushPullType`.
    PushPull = 2,
    /// `messageUserEventType`.
    UserEvent = 3,
    /// `messageQueryType`.
    Query = 4,
    /// `messageQueryResponseType`.
    QueryResponse = 5,
    /// `messageConflictResponseType`.
    ConflictResponse = 6,
    /// `messageKeyRequestType`.
    KeyRequest = 7,
    /// `messageKeyResponseType`.
    KeyResponse = 8,
    /// `messageRelayType`.
    Relay = 9,
}

/// Go `messageLeave`: a leave intent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leave {
    /// `LTime`: member clock.
    pub ltime: u64,
    /// `Node`.
    pub node: String,
    /// `Prune`: remove the member right away.
    pub prune: bool,
}

/// Go `messageJoin`: a join intent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinIntent {
    /// `LTime`: member clock.
    pub ltime: u64,
    /// `Node`.
    pub node: String,
}

/// Go `userEvent`: one event inside [`UserEvents`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserEventItem {
    /// `Name`.
    pub name: String,
    /// `Payload`.
    pub payload: Vec<u8>,
}

/// Go `userEvents`: the events seen at one event-clock tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserEvents {
    /// `LTime`.
    pub ltime: u64,
    /// `Events`.
    pub events: Vec<UserEventItem>,
}

/// Go `messagePushPull`: serf's state in a memberlist push/pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushPull {
    /// `LTime`: member clock.
    pub ltime: u64,
    /// `StatusLTimes`: last intent time per member (order kept as received).
    pub status_ltimes: Vec<(String, u64)>,
    /// `LeftMembers`.
    pub left_members: Vec<String>,
    /// `EventLTime`.
    pub event_ltime: u64,
    /// `Events`: the event ring; `None` entries are Go nils.
    pub events: Vec<Option<UserEvents>>,
    /// `QueryLTime`.
    pub query_ltime: u64,
}

/// Go `messageUserEvent`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserEvent {
    /// `LTime`: event clock.
    pub ltime: u64,
    /// `Name`.
    pub name: String,
    /// `Payload`.
    pub payload: Vec<u8>,
    /// `CC`: may be coalesced.
    pub cc: bool,
}

/// Go `messageQuery`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// `LTime`: query clock.
    pub ltime: u64,
    /// `ID`: random id.
    pub id: u32,
    /// `Addr`: where responses go (raw IP).
    pub addr: Vec<u8>,
    /// `Port`: where responses go.
    pub port: u16,
    /// `SourceNode`: the originator.
    pub source_node: String,
    /// `Filters`: each `filter type | msgpack`; `None` is Go's nil.
    pub filters: Option<Vec<Vec<u8>>>,
    /// `Flags`: [`QUERY_FLAG_ACK`], [`QUERY_FLAG_NO_BROADCAST`].
    pub flags: u32,
    /// `RelayFactor`.
    pub relay_factor: u8,
    /// `Timeout` in nanoseconds.
    pub timeout_ns: i64,
    /// `Name`.
    pub name: String,
    /// `Payload`.
    pub payload: Vec<u8>,
}

/// Go `messageQueryResponse`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct QueryResponse {
    /// `LTime` copied from the query.
    pub ltime: u64,
    /// `ID` copied from the query.
    pub id: u32,
    /// `From`: the responder.
    pub from: String,
    /// `Flags`: 1 for an ack, 0 for a response.
    pub flags: u32,
    /// `Payload`.
    pub payload: Vec<u8>,
}

/// Go `nodeKeyResponse`: one node's answer to a key query.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyResponse {
    /// `Result`: success.
    pub result: bool,
    /// `Message`: error (or warning) text.
    pub message: String,
    /// `Keys`: base64 keys (list-keys only; `None` is nil).
    pub keys: Option<Vec<String>>,
    /// `PrimaryKey`: base64 primary key (list-keys only).
    pub primary_key: String,
}

/// Go `serf.Member` as sent in a `_serf_conflict` response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConflictMember {
    /// `Name`.
    pub name: String,
    /// `Addr`: raw IP.
    pub addr: Vec<u8>,
    /// `Port`.
    pub port: u16,
    /// `Tags`.
    pub tags: BTreeMap<String, String>,
    /// `Status`: serf member status number.
    pub status: i64,
    /// `ProtocolMin`, `ProtocolMax`, `ProtocolCur`.
    pub protocol: [u8; 3],
    /// `DelegateMin`, `DelegateMax`, `DelegateCur`.
    pub delegate: [u8; 3],
}

/// Go `relayHeader` plus the serf message to forward.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Relay {
    /// `DestAddr.IP`.
    pub dest_ip: Vec<u8>,
    /// `DestAddr.Port`.
    pub dest_port: u16,
    /// `DestAddr.Zone`.
    pub dest_zone: String,
    /// `DestName`.
    pub dest_name: String,
    /// The complete serf message to forward (type byte included).
    pub inner: Vec<u8>,
}

/// One serf message.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerfMessage {
    /// Type 0.
    Leave(Leave),
    /// Type 1.
    Join(JoinIntent),
    /// Type 2.
    PushPull(PushPull),
    /// Type 3.
    UserEvent(UserEvent),
    /// Type 4.
    Query(Query),
    /// Type 5.
    QueryResponse(QueryResponse),
    /// Type 6: `None` when the responder does not know the member.
    ConflictResponse(Option<ConflictMember>),
    /// Type 7: `Key` raw bytes.
    KeyRequest(Vec<u8>),
    /// Type 8.
    KeyResponse(KeyResponse),
    /// Type 9.
    Relay(Relay),
}

// Key material must never reach Debug output (and so logs). The types that
// can carry it print lengths and counts in its place: a key request's raw
// key, a key response's base64 keys, the payload of a key query (a key
// request), the payload of any query response (a list-keys answer holds
// the keys) and a relay's inner message (a relayed query response).

/// The serf key-management queries, whose payload is a key request.
fn is_key_query(name: &str) -> bool {
    matches!(name, "_serf_install-key" | "_serf_use-key" | "_serf_remove-key" | "_serf_list-keys")
}

/// Shows a byte field as its length only.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Query");
        d.field("ltime", &self.ltime)
            .field("id", &self.id)
            .field("addr", &self.addr)
            .field("port", &self.port)
            .field("source_node", &self.source_node)
            .field("filters", &self.filters)
            .field("flags", &self.flags)
            .field("relay_factor", &self.relay_factor)
            .field("timeout_ns", &self.timeout_ns)
            .field("name", &self.name);
        if is_key_query(&self.name) {
            d.field("payload", &Redacted(self.payload.len()));
        } else {
            d.field("payload", &self.payload);
        }
        d.finish()
    }
}

impl fmt::Debug for QueryResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryResponse")
            .field("ltime", &self.ltime)
            .field("id", &self.id)
            .field("from", &self.from)
            .field("flags", &self.flags)
            .field("payload", &Redacted(self.payload.len()))
            .finish()
    }
}

impl fmt::Debug for KeyResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyResponse")
            .field("result", &self.result)
            .field("message", &self.message)
            .field("keys", &self.keys.as_ref().map(|k| format!("<{} keys redacted>", k.len())))
            .field("primary_key", &Redacted(self.primary_key.len()))
            .finish()
    }
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("dest_ip", &self.dest_ip)
            .field("dest_port", &self.dest_port)
            .field("dest_zone", &self.dest_zone)
            .field("dest_name", &self.dest_name)
            .field("inner", &Redacted(self.inner.len()))
            .finish()
    }
}

impl fmt::Debug for SerfMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Leave(m) => f.debug_tuple("Leave").field(m).finish(),
            Self::Join(m) => f.debug_tuple("Join").field(m).finish(),
            Self::PushPull(m) => f.debug_tuple("PushPull").field(m).finish(),
            Self::UserEvent(m) => f.debug_tuple("UserEvent").field(m).finish(),
            Self::Query(m) => f.debug_tuple("Query").field(m).finish(),
            Self::QueryResponse(m) => f.debug_tuple("QueryResponse").field(m).finish(),
            Self::ConflictResponse(m) => f.debug_tuple("ConflictResponse").field(m).finish(),
            Self::KeyRequest(key) => {
                f.debug_tuple("KeyRequest").field(&Redacted(key.len())).finish()
            }
            Self::KeyResponse(m) => f.debug_tuple("KeyResponse").field(m).finish(),
            Self::Relay(m) => f.debug_tuple("Relay").field(m).finish(),
        }
    }
}

impl SerfMessage {
    /// Encodes the message with its serf type byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut e;
        match self {
            Self::Leave(m) => {
                e = Enc::with_type(SerfType::Leave as u8);
                e.map(3)
                    .key("LTime")
                    .uint(m.ltime)
                    .key("Node")
                    .str(&m.node)
                    .key("Prune")
                    .bool(m.prune);
            }
            Self::Join(m) => {
                e = Enc::with_type(SerfType::Join as u8);
                e.map(2).key("LTime").uint(m.ltime).key("Node").str(&m.node);
            }
            Self::PushPull(m) => {
                e = Enc::with_type(SerfType::PushPull as u8);
                e.map(6).key("EventLTime").uint(m.event_ltime).key("Events");
                e.array(m.events.len() as u32);
                for ev in &m.events {
                    match ev {
                        None => {
                            e.nil();
                        }
                        Some(ev) => {
                            e.map(2).key("Events").array(ev.events.len() as u32);
                            for item in &ev.events {
                                e.map(2)
                                    .key("Name")
                                    .str(&item.name)
                                    .key("Payload")
                                    .raw(&item.payload);
                            }
                            e.key("LTime").uint(ev.ltime);
                        }
                    }
                }
                e.key("LTime").uint(m.ltime).key("LeftMembers").array(m.left_members.len() as u32);
                for l in &m.left_members {
                    e.str(l);
                }
                e.key("QueryLTime").uint(m.query_ltime).key("StatusLTimes");
                e.map(m.status_ltimes.len() as u32);
                for (k, v) in &m.status_ltimes {
                    e.str(k).uint(*v);
                }
            }
            Self::UserEvent(m) => {
                e = Enc::with_type(SerfType::UserEvent as u8);
                e.map(4)
                    .key("CC")
                    .bool(m.cc)
                    .key("LTime")
                    .uint(m.ltime)
                    .key("Name")
                    .str(&m.name)
                    .key("Payload")
                    .raw(&m.payload);
            }
            Self::Query(q) => {
                e = Enc::with_type(SerfType::Query as u8);
                e.map(11).key("Addr").raw(&q.addr).key("Filters");
                match &q.filters {
                    None => {
                        e.nil();
                    }
                    Some(fs) => {
                        e.array(fs.len() as u32);
                        for f in fs {
                            e.raw(f);
                        }
                    }
                }
                e.key("Flags")
                    .uint(q.flags.into())
                    .key("ID")
                    .uint(q.id.into())
                    .key("LTime")
                    .uint(q.ltime)
                    .key("Name")
                    .str(&q.name)
                    .key("Payload")
                    .raw(&q.payload)
                    .key("Port")
                    .uint(q.port.into())
                    .key("RelayFactor")
                    .uint(q.relay_factor.into())
                    .key("SourceNode")
                    .str(&q.source_node)
                    .key("Timeout")
                    .int(q.timeout_ns);
            }
            Self::QueryResponse(r) => {
                e = Enc::with_type(SerfType::QueryResponse as u8);
                e.map(5)
                    .key("Flags")
                    .uint(r.flags.into())
                    .key("From")
                    .str(&r.from)
                    .key("ID")
                    .uint(r.id.into())
                    .key("LTime")
                    .uint(r.ltime)
                    .key("Payload")
                    .raw(&r.payload);
            }
            Self::ConflictResponse(m) => {
                e = Enc::with_type(SerfType::ConflictResponse as u8);
                match m {
                    None => {
                        e.nil();
                    }
                    Some(m) => {
                        e.map(11)
                            .key("Addr")
                            .raw(&m.addr)
                            .key("DelegateCur")
                            .uint(m.delegate[2].into())
                            .key("DelegateMax")
                            .uint(m.delegate[1].into())
                            .key("DelegateMin")
                            .uint(m.delegate[0].into())
                            .key("Name")
                            .str(&m.name)
                            .key("Port")
                            .uint(m.port.into())
                            .key("ProtocolCur")
                            .uint(m.protocol[2].into())
                            .key("ProtocolMax")
                            .uint(m.protocol[1].into())
                            .key("ProtocolMin")
                            .uint(m.protocol[0].into())
                            .key("Status")
                            .int(m.status)
                            .key("Tags")
                            .map(m.tags.len() as u32);
                        for (k, v) in &m.tags {
                            e.str(k).str(v);
                        }
                    }
                }
            }
            Self::KeyRequest(key) => {
                e = Enc::with_type(SerfType::KeyRequest as u8);
                e.map(1).key("Key").raw(key);
            }
            Self::KeyResponse(r) => {
                e = Enc::with_type(SerfType::KeyResponse as u8);
                e.map(4).key("Keys");
                match &r.keys {
                    None => {
                        e.nil();
                    }
                    Some(keys) => {
                        e.array(keys.len() as u32);
                        for k in keys {
                            e.str(k);
                        }
                    }
                }
                e.key("Message")
                    .str(&r.message)
                    .key("PrimaryKey")
                    .str(&r.primary_key)
                    .key("Result")
                    .bool(r.result);
            }
            Self::Relay(r) => {
                e = Enc::with_type(SerfType::Relay as u8);
                e.map(2)
                    .key("DestAddr")
                    .map(3)
                    .key("IP")
                    .raw(&r.dest_ip)
                    .key("Port")
                    .uint(r.dest_port.into())
                    .key("Zone")
                    .str(&r.dest_zone)
                    .key("DestName")
                    .str(&r.dest_name);
                e.buf.extend_from_slice(&r.inner);
            }
        }
        e.finish()
    }

    /// Decodes a serf message (type byte + body).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (&ty, mut body) = bytes.split_first().ok_or(Error::Empty { what: "serf message" })?;
        let input = &mut body;
        Ok(match ty {
            0 => {
                let f = Fields::read(input, "serf leave")?;
                Self::Leave(Leave {
                    ltime: f.u64("LTime")?,
                    node: f.string("Node")?,
                    prune: f.bool("Prune")?,
                })
            }
            1 => {
                let f = Fields::read(input, "serf join")?;
                Self::Join(JoinIntent { ltime: f.u64("LTime")?, node: f.string("Node")? })
            }
            2 => Self::PushPull(decode_push_pull(input)?),
            3 => {
                let f = Fields::read(input, "serf user event")?;
                Self::UserEvent(UserEvent {
                    ltime: f.u64("LTime")?,
                    name: f.string("Name")?,
                    payload: f.bytes("Payload")?,
                    cc: f.bool("CC")?,
                })
            }
            4 => {
                let f = Fields::read(input, "serf query")?;
                let filters = match f.array("Filters")? {
                    None => None,
                    Some(items) => Some(
                        items
                            .iter()
                            .map(|v| {
                                value_bytes(v).ok_or(Error::WrongType {
                                    what: "serf query",
                                    field: "Filters",
                                    expected: "bytes",
                                    found: crate::msgpack::kind(v),
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                };
                Self::Query(Query {
                    ltime: f.u64("LTime")?,
                    id: f.u32("ID")?,
                    addr: f.bytes("Addr")?,
                    port: f.u16("Port")?,
                    source_node: f.string("SourceNode")?,
                    filters,
                    flags: f.u32("Flags")?,
                    relay_factor: f.u8("RelayFactor")?,
                    timeout_ns: f.i64("Timeout")?,
                    name: f.string("Name")?,
                    payload: f.bytes("Payload")?,
                })
            }
            5 => {
                let f = Fields::read(input, "serf query response")?;
                Self::QueryResponse(QueryResponse {
                    ltime: f.u64("LTime")?,
                    id: f.u32("ID")?,
                    from: f.string("From")?,
                    flags: f.u32("Flags")?,
                    payload: f.bytes("Payload")?,
                })
            }
            6 => {
                let v = crate::msgpack::read_value(input, "serf conflict response")?;
                if v == Value::Nil {
                    Self::ConflictResponse(None)
                } else {
                    let f = Fields::from_value(v, "serf conflict response")?;
                    let tags = f
                        .string_map("Tags", |v| v.as_str().map(str::to_owned), "string")?
                        .into_iter()
                        .collect();
                    Self::ConflictResponse(Some(ConflictMember {
                        name: f.string("Name")?,
                        addr: f.bytes("Addr")?,
                        port: f.u16("Port")?,
                        tags,
                        status: f.i64("Status")?,
                        protocol: [
                            f.u8("ProtocolMin")?,
                            f.u8("ProtocolMax")?,
                            f.u8("ProtocolCur")?,
                        ],
                        delegate: [
                            f.u8("DelegateMin")?,
                            f.u8("DelegateMax")?,
                            f.u8("DelegateCur")?,
                        ],
                    }))
                }
            }
            7 => {
                let f = Fields::read(input, "serf key request")?;
                Self::KeyRequest(f.bytes("Key")?)
            }
            8 => {
                let f = Fields::read(input, "serf key response")?;
                Self::KeyResponse(KeyResponse {
                    result: f.bool("Result")?,
                    message: f.string("Message")?,
                    keys: f.string_list("Keys")?,
                    primary_key: f.string("PrimaryKey")?,
                })
            }
            9 => {
                let f = Fields::read(input, "serf relay header")?;
                let dest = match f.value("DestAddr") {
                    None => Fields::from_value(Value::Nil, "serf relay address")?,
                    Some(v) => Fields::from_value(v.clone(), "serf relay address")?,
                };
                Self::Relay(Relay {
                    dest_ip: dest.bytes("IP")?,
                    dest_port: dest.u16("Port")?,
                    dest_zone: dest.string("Zone")?,
                    dest_name: f.string("DestName")?,
                    inner: body.to_vec(),
                })
            }
            ty => return Err(Error::UnknownMessageType { what: "serf message", ty }),
        })
    }
}

fn decode_push_pull(input: &mut &[u8]) -> Result<PushPull, Error> {
    let what = "serf push/pull";
    let f = Fields::read(input, what)?;
    let mut events = Vec::new();
    for v in f.array("Events")?.unwrap_or_default() {
        if *v == Value::Nil {
            events.push(None);
            continue;
        }
        let ev = Fields::from_value(v.clone(), "serf push/pull event")?;
        let mut items = Vec::new();
        for item in ev.array("Events")?.unwrap_or_default() {
            let it = Fields::from_value(item.clone(), "serf push/pull event")?;
            items.push(UserEventItem { name: it.string("Name")?, payload: it.bytes("Payload")? });
        }
        events.push(Some(UserEvents { ltime: ev.u64("LTime")?, events: items }));
    }
    Ok(PushPull {
        ltime: f.u64("LTime")?,
        status_ltimes: f.string_map("StatusLTimes", |v| v.as_u64(), "integer")?,
        left_members: f.string_list("LeftMembers")?.unwrap_or_default(),
        event_ltime: f.u64("EventLTime")?,
        events,
        query_ltime: f.u64("QueryLTime")?,
    })
}

/// Encodes serf tags into memberlist node meta: `0xff | msgpack map`.
pub fn encode_tags(tags: &BTreeMap<String, String>) -> Vec<u8> {
    let mut e = Enc::new();
    e.buf.push(TAG_MAGIC);
    e.map(tags.len() as u32);
    for (k, v) in tags {
        e.str(k).str(v);
    }
    e.finish()
}

/// Decodes node meta into serf tags. Meta without the magic byte is the
/// legacy form: the whole meta is the value of tag `role`.
pub fn decode_tags(meta: &[u8]) -> Result<BTreeMap<String, String>, Error> {
    match meta.split_first() {
        None => Ok(BTreeMap::new()),
        Some((&TAG_MAGIC, mut rest)) => {
            let v = crate::msgpack::read_value(&mut rest, "node meta")
                .map_err(|e| Error::InvalidTags { reason: e.to_string() })?;
            let f = Fields::from_value(Value::Map(vec![(Value::from("T"), v)]), "node meta")?;
            f.string_map("T", |v| v.as_str().map(str::to_owned), "string")
                .map(|v| v.into_iter().collect())
                .map_err(|e| Error::InvalidTags { reason: e.to_string() })
        }
        Some(_) => {
            let role = String::from_utf8(meta.to_vec())
                .map_err(|_| Error::InvalidTags { reason: "legacy role is not UTF-8".into() })?;
            Ok(BTreeMap::from([("role".to_owned(), role)]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_empty() {
        assert_eq!(encode_tags(&BTreeMap::new()), vec![0xff, 0x80]);
        let tags = BTreeMap::from([("role".to_owned(), "web".to_owned())]);
        assert_eq!(decode_tags(&encode_tags(&tags)).unwrap(), tags);
        assert_eq!(decode_tags(b"db").unwrap()["role"], "db");
        assert!(matches!(decode_tags(&[0xff, 0x01]), Err(Error::InvalidTags { .. })));
    }

    #[test]
    fn key_response_matches_appendix_b7_success() {
        let bytes =
            SerfMessage::KeyResponse(KeyResponse { result: true, ..Default::default() }).encode();
        let mut want = vec![0x08, 0x84, 0xa4];
        want.extend_from_slice(b"Keys");
        want.extend_from_slice(&[0xc0, 0xa7]);
        want.extend_from_slice(b"Message");
        want.extend_from_slice(&[0xa0, 0xaa]);
        want.extend_from_slice(b"PrimaryKey");
        want.extend_from_slice(&[0xa0, 0xa6]);
        want.extend_from_slice(b"Result");
        want.push(0xc3);
        assert_eq!(bytes, want);
    }

    #[test]
    fn relay_round_trip() {
        let inner =
            SerfMessage::QueryResponse(QueryResponse { id: 5, ..Default::default() }).encode();
        let r = SerfMessage::Relay(Relay {
            dest_ip: vec![127, 0, 0, 1],
            dest_port: 7946,
            dest_name: "a".into(),
            inner,
            ..Default::default()
        });
        assert_eq!(SerfMessage::decode(&r.encode()).unwrap(), r);
    }
}

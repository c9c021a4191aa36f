//! memberlist 0.2.2 messages and the packet wrappers around them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Error;
use crate::lzw::{lzw_compress, lzw_decompress};
use crate::msgpack::{Enc, Fields};

/// How deep compound/compress/hasCrc wrappers may nest inside one packet.
/// memberlist 0.2.2 allows nesting; we accept a few levels and refuse more
/// so that a crafted packet cannot recurse without bound.
pub const MAX_NESTING: usize = 4;

/// The most bytes that decompressing the compress parts of one UDP packet
/// may produce, summed over all its compress parts at every depth.
/// memberlist builds packets of at most 1400 bytes before compressing, so
/// 64 KiB is generous; streams keep memberlist's 20 MiB ([`crate::MAX_STREAM_LEN`]).
pub const MAX_PACKET_DECOMPRESSED: usize = 64 * 1024;

/// memberlist's message type bytes (append-only in Go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum MessageType {
    /// `pingMsg`.
    Ping = 0,
    /// `indirectPingMsg`.
    IndirectPing = 1,
    /// `ackRespMsg`.
    Ack = 2,
    /// `suspectMsg`.
    Suspect = 3,
    /// `aliveMsg`.
    Alive = 4,
    /// `deadMsg`.
    Dead = 5,
    /// `pushPullMsg` (streams only).
    PushPull = 6,
    /// `compoundMsg`.
    Compound = 7,
    /// `userMsg`: serf messages ride here.
    User = 8,
    /// `compressMsg`.
    Compress = 9,
    /// `encryptMsg`: the stream encryption frame marker.
    Encrypt = 10,
    /// `nackRespMsg`.
    Nack = 11,
    /// `hasCrcMsg`.
    HasCrc = 12,
    /// `errMsg` (streams only).
    Err = 13,
    /// `hasLabelMsg` (newer memberlist only).
    HasLabel = 244,
}

/// Go `ping`: a direct probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ping {
    /// `SeqNo`: matched by the ack.
    pub seq_no: u32,
    /// `Node`: the intended target's name (empty means anyone).
    pub node: String,
    /// `SourceAddr`: IP to send the ack to (empty when omitted).
    pub source_addr: Vec<u8>,
    /// `SourcePort`: port to send the ack to (0 when omitted).
    pub source_port: u16,
    /// `SourceNode`: name of the prober (empty when omitted).
    pub source_node: String,
}

/// Go `indirectPingReq`: ask a peer to probe `node` for us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndirectPing {
    /// `SeqNo`: the requester's sequence number, echoed in the ack/nack.
    pub seq_no: u32,
    /// `Target`: IP of the node to probe.
    pub target: Vec<u8>,
    /// `Port`: port of the node to probe.
    pub port: u16,
    /// `Node`: name of the node to probe.
    pub node: String,
    /// `Nack`: whether the requester wants a nack when the probe fails.
    pub nack: bool,
    /// `SourceAddr`: requester IP (omitted when empty).
    pub source_addr: Vec<u8>,
    /// `SourcePort`: requester port (omitted when 0).
    pub source_port: u16,
    /// `SourceNode`: requester name (omitted when empty).
    pub source_node: String,
}

/// Go `ackResp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ack {
    /// `SeqNo` of the ping being answered.
    pub seq_no: u32,
    /// `Payload`: serf puts its network coordinate here; `None` is Go's nil.
    pub payload: Option<Vec<u8>>,
}

/// Go `nackResp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nack {
    /// `SeqNo` of the indirect ping that failed.
    pub seq_no: u32,
}

/// Go `errResp`, sent on a stream when the responder failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrResp {
    /// `Error`: the responder's error text.
    pub error: String,
}

/// Go `suspect`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suspect {
    /// `Incarnation` the accusation applies to.
    pub incarnation: u32,
    /// `Node`: the suspected node.
    pub node: String,
    /// `From`: the accuser.
    pub from: String,
}

/// Go `alive`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alive {
    /// `Incarnation` of the announcement.
    pub incarnation: u32,
    /// `Node`: the node's name.
    pub node: String,
    /// `Addr`: raw IP bytes (4 or 16).
    pub addr: Vec<u8>,
    /// `Port`.
    pub port: u16,
    /// `Meta`: node metadata (serf tags), at most 512 bytes.
    pub meta: Vec<u8>,
    /// `Vsn`: `[pmin, pmax, pcur, dmin, dmax, dcur]`.
    pub vsn: Vec<u8>,
}

/// Go `dead`; `from == node` announces a graceful leave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dead {
    /// `Incarnation` the declaration applies to.
    pub incarnation: u32,
    /// `Node`: the dead node.
    pub node: String,
    /// `From`: who declared it.
    pub from: String,
}

/// Go `pushPullHeader`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushPullHeader {
    /// `Nodes`: number of node states that follow.
    pub nodes: u32,
    /// `UserStateLen`: bytes of delegate (serf) state after the node states.
    pub user_state_len: u32,
    /// `Join`: whether this exchange is a join.
    pub join: bool,
}

/// The state of a node in a push/pull (`pushNodeState.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NodeStateKind {
    /// `StateAlive` (0).
    #[default]
    Alive,
    /// `StateSuspect` (1).
    Suspect,
    /// `StateDead` (2).
    Dead,
    /// `StateLeft` (3).
    Left,
    /// A state number this crate does not know.
    Other(i64),
}

impl NodeStateKind {
    /// The Go integer value.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Alive => 0,
            Self::Suspect => 1,
            Self::Dead => 2,
            Self::Left => 3,
            Self::Other(v) => v,
        }
    }

    /// The state for a Go integer value.
    pub fn from_i64(v: i64) -> Self {
        match v {
            0 => Self::Alive,
            1 => Self::Suspect,
            2 => Self::Dead,
            3 => Self::Left,
            v => Self::Other(v),
        }
    }
}

/// Go `pushNodeState`: one node in a push/pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushNodeState {
    /// `Name`.
    pub name: String,
    /// `Addr`: raw IP bytes.
    pub addr: Vec<u8>,
    /// `Port`.
    pub port: u16,
    /// `Meta`.
    pub meta: Vec<u8>,
    /// `Incarnation`.
    pub incarnation: u32,
    /// `State`.
    pub state: NodeStateKind,
    /// `Vsn`.
    pub vsn: Vec<u8>,
}

/// Go `userMsgHeader` (TCP user messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserMsgHeader {
    /// `UserMsgLen`: bytes of user data that follow.
    pub user_msg_len: u32,
}

/// Go `compress`: `Algo` 0 is LZW.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compress {
    /// `Algo`.
    pub algo: u8,
    /// `Buf`: the compressed bytes.
    pub buf: Vec<u8>,
}

/// One memberlist message after all packet wrappers are removed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Type 0.
    Ping(Ping),
    /// Type 1.
    IndirectPing(IndirectPing),
    /// Type 2.
    Ack(Ack),
    /// Type 3.
    Suspect(Suspect),
    /// Type 4.
    Alive(Alive),
    /// Type 5.
    Dead(Dead),
    /// Type 8: raw delegate bytes (a serf message).
    User(Vec<u8>),
    /// Type 11.
    Nack(Nack),
    /// Type 13.
    Err(ErrResp),
}

impl Ping {
    pub(crate) fn encode_body(&self, e: &mut Enc) {
        let n = 2
            + u32::from(!self.source_addr.is_empty())
            + u32::from(!self.source_node.is_empty())
            + u32::from(self.source_port != 0);
        e.map(n).key("Node").str(&self.node).key("SeqNo").uint(self.seq_no.into());
        if !self.source_addr.is_empty() {
            e.key("SourceAddr").raw(&self.source_addr);
        }
        if !self.source_node.is_empty() {
            e.key("SourceNode").str(&self.source_node);
        }
        if self.source_port != 0 {
            e.key("SourcePort").uint(self.source_port.into());
        }
    }

    pub(crate) fn decode_body(input: &mut &[u8]) -> Result<Self, Error> {
        let f = Fields::read(input, "ping")?;
        Ok(Self {
            seq_no: f.u32("SeqNo")?,
            node: f.string("Node")?,
            source_addr: f.bytes("SourceAddr")?,
            source_port: f.u16("SourcePort")?,
            source_node: f.string("SourceNode")?,
        })
    }
}

impl Ack {
    pub(crate) fn encode_body(&self, e: &mut Enc) {
        e.map(2)
            .key("Payload")
            .opt_raw(self.payload.as_deref())
            .key("SeqNo")
            .uint(self.seq_no.into());
    }

    pub(crate) fn decode_body(input: &mut &[u8]) -> Result<Self, Error> {
        let f = Fields::read(input, "ack")?;
        Ok(Self { seq_no: f.u32("SeqNo")?, payload: f.opt_bytes("Payload")? })
    }
}

impl ErrResp {
    pub(crate) fn encode_body(&self, e: &mut Enc) {
        e.map(1).key("Error").str(&self.error);
    }

    pub(crate) fn decode_body(input: &mut &[u8]) -> Result<Self, Error> {
        let f = Fields::read(input, "err")?;
        Ok(Self { error: f.string("Error")? })
    }
}

impl PushPullHeader {
    pub(crate) fn encode_body(&self, e: &mut Enc) {
        e.map(3)
            .key("Join")
            .bool(self.join)
            .key("Nodes")
            .uint(self.nodes.into())
            .key("UserStateLen")
            .uint(self.user_state_len.into());
    }

    pub(crate) fn decode_body(input: &mut &[u8]) -> Result<Self, Error> {
        let f = Fields::read(input, "push/pull header")?;
        Ok(Self {
            join: f.bool("Join")?,
            nodes: f.u32("Nodes")?,
            user_state_len: f.u32("UserStateLen")?,
        })
    }
}

impl PushNodeState {
    pub(crate) fn encode_body(&self, e: &mut Enc) {
        e.map(7)
            .key("Addr")
            .raw(&self.addr)
            .key("Incarnation")
            .uint(self.incarnation.into())
            .key("Meta")
            .raw(&self.meta)
            .key("Name")
            .str(&self.name)
            .key("Port")
            .uint(self.port.into())
            .key("State")
            .int(self.state.as_i64())
            .key("Vsn")
            .raw(&self.vsn);
    }

    pub(crate) fn decode_body(input: &mut &[u8]) -> Result<Self, Error> {
        let f = Fields::read(input, "push/pull node state")?;
        Ok(Self {
            name: f.string("Name")?,
            addr: f.bytes("Addr")?,
            port: f.u16("Port")?,
            meta: f.bytes("Meta")?,
            incarnation: f.u32("Incarnation")?,
            state: NodeStateKind::from_i64(f.i64("State")?),
            vsn: f.bytes("Vsn")?,
        })
    }
}

impl UserMsgHeader {
    pub(crate) fn encode_body(&self, e: &mut Enc) {
        e.map(1).key("UserMsgLen").uint(self.user_msg_len.into());
    }

    pub(crate) fn decode_body(input: &mut &[u8]) -> Result<Self, Error> {
        let f = Fields::read(input, "user message header")?;
        Ok(Self { user_msg_len: f.u32("UserMsgLen")? })
    }
}

/// Encodes one message with its type byte, as a packet or compound part.
pub fn encode_message(msg: &Message) -> Vec<u8> {
    let mut e;
    match msg {
        Message::Ping(p) => {
            e = Enc::with_type(MessageType::Ping as u8);
            p.encode_body(&mut e);
        }
        Message::IndirectPing(p) => {
            e = Enc::with_type(MessageType::IndirectPing as u8);
            let n = 5
                + u32::from(!p.source_addr.is_empty())
                + u32::from(!p.source_node.is_empty())
                + u32::from(p.source_port != 0);
            e.map(n)
                .key("Nack")
                .bool(p.nack)
                .key("Node")
                .str(&p.node)
                .key("Port")
                .uint(p.port.into())
                .key("SeqNo")
                .uint(p.seq_no.into());
            if !p.source_addr.is_empty() {
                e.key("SourceAddr").raw(&p.source_addr);
            }
            if !p.source_node.is_empty() {
                e.key("SourceNode").str(&p.source_node);
            }
            if p.source_port != 0 {
                e.key("SourcePort").uint(p.source_port.into());
            }
            e.key("Target").raw(&p.target);
        }
        Message::Ack(a) => {
            e = Enc::with_type(MessageType::Ack as u8);
            a.encode_body(&mut e);
        }
        Message::Nack(n) => {
            e = Enc::with_type(MessageType::Nack as u8);
            e.map(1).key("SeqNo").uint(n.seq_no.into());
        }
        Message::Suspect(s) => {
            e = Enc::with_type(MessageType::Suspect as u8);
            e.map(3)
                .key("From")
                .str(&s.from)
                .key("Incarnation")
                .uint(s.incarnation.into())
                .key("Node")
                .str(&s.node);
        }
        Message::Alive(a) => {
            e = Enc::with_type(MessageType::Alive as u8);
            e.map(6)
                .key("Addr")
                .raw(&a.addr)
                .key("Incarnation")
                .uint(a.incarnation.into())
                .key("Meta")
                .raw(&a.meta)
                .key("Node")
                .str(&a.node)
                .key("Port")
                .uint(a.port.into())
                .key("Vsn")
                .raw(&a.vsn);
        }
        Message::Dead(d) => {
            e = Enc::with_type(MessageType::Dead as u8);
            e.map(3)
                .key("From")
                .str(&d.from)
                .key("Incarnation")
                .uint(d.incarnation.into())
                .key("Node")
                .str(&d.node);
        }
        Message::User(bytes) => {
            e = Enc::with_type(MessageType::User as u8);
            e.buf.extend_from_slice(bytes);
        }
        Message::Err(er) => {
            e = Enc::with_type(MessageType::Err as u8);
            er.encode_body(&mut e);
        }
    }
    e.finish()
}

/// Decodes one unwrapped message (type byte + body).
fn decode_message(bytes: &[u8]) -> Result<Message, Error> {
    let (&ty, mut body) = bytes.split_first().ok_or(Error::Empty { what: "packet" })?;
    let input = &mut body;
    Ok(match ty {
        0 => Message::Ping(Ping::decode_body(input)?),
        1 => {
            let f = Fields::read(input, "indirect ping")?;
            Message::IndirectPing(IndirectPing {
                seq_no: f.u32("SeqNo")?,
                target: f.bytes("Target")?,
                port: f.u16("Port")?,
                node: f.string("Node")?,
                nack: f.bool("Nack")?,
                source_addr: f.bytes("SourceAddr")?,
                source_port: f.u16("SourcePort")?,
                source_node: f.string("SourceNode")?,
            })
        }
        2 => Message::Ack(Ack::decode_body(input)?),
        3 => {
            let f = Fields::read(input, "suspect")?;
            Message::Suspect(Suspect {
                incarnation: f.u32("Incarnation")?,
                node: f.string("Node")?,
                from: f.string("From")?,
            })
        }
        4 => {
            let f = Fields::read(input, "alive")?;
            Message::Alive(Alive {
                incarnation: f.u32("Incarnation")?,
                node: f.string("Node")?,
                addr: f.bytes("Addr")?,
                port: f.u16("Port")?,
                meta: f.bytes("Meta")?,
                vsn: f.bytes("Vsn")?,
            })
        }
        5 => {
            let f = Fields::read(input, "dead")?;
            Message::Dead(Dead {
                incarnation: f.u32("Incarnation")?,
                node: f.string("Node")?,
                from: f.string("From")?,
            })
        }
        8 => Message::User(body.to_vec()),
        11 => {
            let f = Fields::read(input, "nack")?;
            Message::Nack(Nack { seq_no: f.u32("SeqNo")? })
        }
        13 => Message::Err(ErrResp::decode_body(input)?),
        ty => return Err(Error::UnknownMessageType { what: "packet", ty }),
    })
}

/// Decodes a (decrypted, label-stripped) UDP packet into its messages,
/// unwrapping hasCrc, compound and compress layers. Each message is decoded
/// on its own, so one malformed compound part does not hide the others;
/// a broken wrapper yields a single error.
pub fn decode_packet(bytes: &[u8]) -> Vec<Result<Message, Error>> {
    let mut out = Vec::new();
    let mut budget = MAX_PACKET_DECOMPRESSED;
    unwrap_into(bytes, 0, &mut budget, &mut out);
    out
}

/// Unwraps one layer. `budget` is what is left of the packet's
/// [`MAX_PACKET_DECOMPRESSED`]; every compress part spends from it.
fn unwrap_into(
    bytes: &[u8],
    depth: usize,
    budget: &mut usize,
    out: &mut Vec<Result<Message, Error>>,
) {
    if depth > MAX_NESTING {
        out.push(Err(Error::NestingTooDeep));
        return;
    }
    match bytes.first() {
        None => out.push(Err(Error::Empty { what: "packet" })),
        Some(&12) => match check_crc(bytes) {
            Ok(inner) => unwrap_into(inner, depth + 1, budget, out),
            Err(e) => out.push(Err(e)),
        },
        Some(&7) => match decode_compound(bytes) {
            Ok((parts, truncated)) => {
                for p in parts {
                    unwrap_into(p, depth + 1, budget, out);
                }
                if truncated {
                    out.push(Err(Error::Truncated { what: "compound message" }));
                }
            }
            Err(e) => out.push(Err(e)),
        },
        Some(&9) => match decode_compress(bytes, budget) {
            Ok(inner) => unwrap_into(&inner, depth + 1, budget, out),
            Err(e) => out.push(Err(e)),
        },
        Some(_) => out.push(decode_message(bytes)),
    }
}

fn check_crc(bytes: &[u8]) -> Result<&[u8], Error> {
    let (head, inner) =
        bytes.split_at_checked(5).ok_or(Error::Truncated { what: "hasCrc packet" })?;
    let expected = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let computed = crc32fast::hash(inner);
    if expected != computed {
        return Err(Error::CrcMismatch { expected, computed });
    }
    Ok(inner)
}

/// Wraps a message in memberlist's hasCrc envelope (`0x0c | crc32 BE | msg`).
pub fn encode_crc(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 5);
    out.push(MessageType::HasCrc as u8);
    out.extend_from_slice(&crc32fast::hash(msg).to_be_bytes());
    out.extend_from_slice(msg);
    out
}

/// Builds a compound message (`0x07 | count | u16 lengths | parts`).
/// At most 255 parts fit; callers split larger batches. Parts longer than
/// 65535 bytes cannot be represented and are skipped.
pub fn encode_compound(parts: &[Vec<u8>]) -> Vec<u8> {
    let parts: Vec<&Vec<u8>> =
        parts.iter().filter(|p| p.len() <= usize::from(u16::MAX)).take(255).collect();
    let mut out = vec![MessageType::Compound as u8, parts.len() as u8];
    for p in &parts {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// Splits a compound message into its parts. The flag is true when the
/// buffer ended early and trailing parts were dropped (memberlist still
/// processes the parts that fit).
pub fn decode_compound(bytes: &[u8]) -> Result<(Vec<&[u8]>, bool), Error> {
    let what = "compound message";
    let rest = match bytes.split_first() {
        Some((&7, rest)) => rest,
        Some((&ty, _)) => return Err(Error::UnknownMessageType { what, ty }),
        None => return Err(Error::Empty { what }),
    };
    let (&count, rest) = rest.split_first().ok_or(Error::Truncated { what })?;
    let (lens, mut body) =
        rest.split_at_checked(usize::from(count) * 2).ok_or(Error::Truncated { what })?;
    let mut parts = Vec::with_capacity(usize::from(count));
    for pair in lens.chunks_exact(2) {
        let len = usize::from(u16::from_be_bytes([pair[0], pair[1]]));
        match body.split_at_checked(len) {
            Some((part, tail)) => {
                parts.push(part);
                body = tail;
            }
            None => return Ok((parts, true)),
        }
    }
    Ok((parts, false))
}

/// Wraps a message in a compress message (`0x09 | {Algo: 0, Buf: LZW}`).
pub fn encode_compress(msg: &[u8]) -> Vec<u8> {
    let buf = lzw_compress(msg);
    let mut e = Enc::with_type(MessageType::Compress as u8);
    e.map(2).key("Algo").uint(0).key("Buf").raw(&buf);
    e.finish()
}

/// Unwraps a compress message, returning the decompressed inner message and
/// taking its length from the packet's remaining decompression `budget`.
fn decode_compress(bytes: &[u8], budget: &mut usize) -> Result<Vec<u8>, Error> {
    let mut body = match bytes.split_first() {
        Some((&9, rest)) => rest,
        Some((&ty, _)) => return Err(Error::UnknownMessageType { what: "compress message", ty }),
        None => return Err(Error::Empty { what: "compress message" }),
    };
    let c = decode_compress_body(&mut body)?;
    if c.algo != 0 {
        return Err(Error::UnknownCompression { algo: c.algo });
    }
    let inner = lzw_decompress(&c.buf, *budget).map_err(|e| match e {
        // Name the per-packet limit, not what happened to be left of it.
        Error::DecompressedTooLarge { .. } => {
            Error::DecompressedTooLarge { limit: MAX_PACKET_DECOMPRESSED }
        }
        e => e,
    })?;
    *budget = budget.saturating_sub(inner.len());
    Ok(inner)
}

pub(crate) fn decode_compress_body(input: &mut &[u8]) -> Result<Compress, Error> {
    let f = Fields::read(input, "compress message")?;
    Ok(Compress { algo: f.u8("Algo")?, buf: f.bytes("Buf")? })
}

/// Converts memberlist's raw IP bytes (4 bytes, or 16 possibly IPv4-mapped)
/// into an address.
pub fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// Raw IP bytes as memberlist sends them: 4 bytes for IPv4, 16 for IPv6.
pub fn ip_to_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_matches_appendix_b2() {
        let bytes = encode_message(&Message::Ack(Ack { seq_no: 61, payload: None }));
        let mut want = vec![0x02, 0x82, 0xa7];
        want.extend_from_slice(b"Payload");
        want.extend_from_slice(&[0xc0, 0xa5]);
        want.extend_from_slice(b"SeqNo");
        want.push(0x3d);
        assert_eq!(bytes, want);
    }

    #[test]
    fn crc_mismatch_is_reported() {
        let mut p = encode_crc(&encode_message(&Message::Nack(Nack { seq_no: 3 })));
        let last = p.len() - 1;
        p[last] ^= 1;
        assert!(matches!(decode_packet(&p).as_slice(), [Err(Error::CrcMismatch { .. })]));
    }

    #[test]
    fn compound_truncation_keeps_complete_parts() {
        let a = encode_message(&Message::Nack(Nack { seq_no: 1 }));
        let b = encode_message(&Message::Nack(Nack { seq_no: 2 }));
        let c = encode_compound(&[a, b]);
        let cut = &c[..c.len() - 2];
        let out = decode_packet(cut);
        assert!(matches!(
            out.as_slice(),
            [Ok(Message::Nack(Nack { seq_no: 1 })), Err(Error::Truncated { .. })]
        ));
    }

    #[test]
    fn nesting_is_bounded() {
        let mut p = encode_message(&Message::Nack(Nack { seq_no: 1 }));
        for _ in 0..10 {
            p = encode_compound(&[p]);
        }
        assert!(matches!(decode_packet(&p).as_slice(), [Err(Error::NestingTooDeep)]));
    }

    #[test]
    fn ip_bytes() {
        let mapped = Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().octets();
        assert_eq!(ip_from_bytes(&mapped), Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))));
        assert_eq!(ip_from_bytes(&[1, 2, 3]), None);
    }
}

//! memberlist TCP stream messages: one request/response per connection.

use crate::memberlist::{
    Ack, ErrResp, MessageType, Ping, PushNodeState, PushPullHeader, UserMsgHeader,
    decode_compress_body,
};
use crate::msgpack::Enc;
use crate::{Error, lzw_compress, lzw_decompress};

/// The largest encrypted stream payload memberlist accepts (20 MiB).
pub const MAX_STREAM_LEN: u32 = 20 * 1024 * 1024;

/// A full-state exchange: header, node states and raw delegate state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushPull {
    /// `Join` flag of the header.
    pub join: bool,
    /// The node states.
    pub states: Vec<PushNodeState>,
    /// Raw delegate (serf) state, empty when none.
    pub user_state: Vec<u8>,
}

/// One message carried on a TCP stream (after decryption).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamMessage {
    /// Type 6: a push/pull.
    PushPull(PushPull),
    /// Type 0: a fallback probe.
    Ping(Ping),
    /// Type 2: the answer to a stream ping.
    Ack(Ack),
    /// Type 8: a reliable user message (header + raw bytes).
    User(Vec<u8>),
    /// Type 13: the responder failed.
    Err(ErrResp),
}

/// Encodes a stream message; with `compress` it is wrapped in an LZW
/// compress message, as memberlist always does when compression is on.
pub fn encode_stream_message(msg: &StreamMessage, compress: bool) -> Vec<u8> {
    let mut e;
    match msg {
        StreamMessage::PushPull(pp) => {
            e = Enc::with_type(MessageType::PushPull as u8);
            PushPullHeader {
                join: pp.join,
                nodes: pp.states.len() as u32,
                user_state_len: pp.user_state.len() as u32,
            }
            .encode_body(&mut e);
            for s in &pp.states {
                s.encode_body(&mut e);
            }
            e.buf.extend_from_slice(&pp.user_state);
        }
        StreamMessage::Ping(p) => {
            e = Enc::with_type(MessageType::Ping as u8);
            p.encode_body(&mut e);
        }
        StreamMessage::Ack(a) => {
            e = Enc::with_type(MessageType::Ack as u8);
            a.encode_body(&mut e);
        }
        StreamMessage::User(bytes) => {
            e = Enc::with_type(MessageType::User as u8);
            UserMsgHeader { user_msg_len: bytes.len() as u32 }.encode_body(&mut e);
            e.buf.extend_from_slice(bytes);
        }
        StreamMessage::Err(er) => {
            e = Enc::with_type(MessageType::Err as u8);
            er.encode_body(&mut e);
        }
    }
    let plain = e.finish();
    if !compress {
        return plain;
    }
    let mut c = Enc::with_type(MessageType::Compress as u8);
    c.map(2).key("Algo").uint(0).key("Buf").raw(&lzw_compress(&plain));
    c.finish()
}

/// Decodes one stream message (already decrypted), unwrapping compression.
pub fn decode_stream_message(bytes: &[u8]) -> Result<StreamMessage, Error> {
    parse(bytes, true).map(|(m, _)| m)
}

/// How many bytes of `buf` make up the first stream message, if it is
/// complete: an encrypted frame (`0x0a | u32 length | payload`) or a
/// plaintext message (possibly compressed). `Ok(None)` means more bytes are
/// needed; an error means the stream can never become valid.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, Error> {
    match buf.first() {
        None => Ok(None),
        Some(&10) => {
            let Some(len) = buf.get(1..5) else { return Ok(None) };
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            if len > MAX_STREAM_LEN {
                return Err(Error::FrameTooLarge { len: len.into() });
            }
            let total = 5 + len as usize;
            Ok((buf.len() >= total).then_some(total))
        }
        Some(_) => match parse(buf, true) {
            Ok((_, n)) => Ok(Some(n)),
            Err(Error::Truncated { .. }) => Ok(None),
            Err(e) => Err(e),
        },
    }
}

fn parse(bytes: &[u8], allow_compress: bool) -> Result<(StreamMessage, usize), Error> {
    let what = "stream message";
    let (&ty, mut body) = bytes.split_first().ok_or(Error::Truncated { what })?;
    let total = bytes.len();
    let input = &mut body;
    let msg = match ty {
        9 if allow_compress => {
            let c = decode_compress_body(input)?;
            if c.algo != 0 {
                return Err(Error::UnknownCompression { algo: c.algo });
            }
            let inner = lzw_decompress(&c.buf, MAX_STREAM_LEN as usize)?;
            let consumed = total - input.len();
            // A truncated message inside a complete compress wrapper is
            // malformed, not incomplete.
            let (m, _) = parse(&inner, false).map_err(|e| match e {
                Error::Truncated { what } => Error::Msgpack { what, reason: "truncated".into() },
                e => e,
            })?;
            return Ok((m, consumed));
        }
        6 => {
            let h = PushPullHeader::decode_body(input)?;
            let mut states = Vec::new();
            for _ in 0..h.nodes {
                if input.is_empty() {
                    return Err(Error::Truncated { what: "push/pull node state" });
                }
                states.push(PushNodeState::decode_body(input)?);
            }
            let (user, rest) = input
                .split_at_checked(h.user_state_len as usize)
                .ok_or(Error::Truncated { what: "push/pull user state" })?;
            let user_state = user.to_vec();
            *input = rest;
            StreamMessage::PushPull(PushPull { join: h.join, states, user_state })
        }
        0 => StreamMessage::Ping(Ping::decode_body(input)?),
        2 => StreamMessage::Ack(Ack::decode_body(input)?),
        8 => {
            let h = UserMsgHeader::decode_body(input)?;
            let (user, rest) = input
                .split_at_checked(h.user_msg_len as usize)
                .ok_or(Error::Truncated { what: "user message" })?;
            let v = user.to_vec();
            *input = rest;
            StreamMessage::User(v)
        }
        13 => StreamMessage::Err(ErrResp::decode_body(input)?),
        ty => return Err(Error::UnknownMessageType { what, ty }),
    };
    Ok((msg, total - input.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeStateKind;

    fn sample() -> StreamMessage {
        StreamMessage::PushPull(PushPull {
            join: true,
            states: vec![PushNodeState {
                name: "a".into(),
                addr: vec![127, 0, 0, 1],
                port: 7946,
                meta: vec![0xff, 0x80],
                incarnation: 1,
                state: NodeStateKind::Alive,
                vsn: vec![1, 5, 2, 2, 5, 5],
            }],
            user_state: vec![2, 0x80],
        })
    }

    #[test]
    fn frame_len_waits_for_all_bytes() {
        for compress in [false, true] {
            let bytes = encode_stream_message(&sample(), compress);
            for cut in 0..bytes.len() {
                assert_eq!(stream_frame_len(&bytes[..cut]).unwrap(), None, "cut {cut}");
            }
            assert_eq!(stream_frame_len(&bytes).unwrap(), Some(bytes.len()));
            assert_eq!(decode_stream_message(&bytes).unwrap(), sample());
        }
    }

    #[test]
    fn encrypted_frame_length() {
        assert_eq!(stream_frame_len(&[10, 0, 0, 0, 2, 9]).unwrap(), None);
        assert_eq!(stream_frame_len(&[10, 0, 0, 0, 2, 9, 9, 9]).unwrap(), Some(7));
        assert_eq!(
            stream_frame_len(&[10, 0xff, 0, 0, 0]).unwrap_err(),
            Error::FrameTooLarge { len: 0xff00_0000 }
        );
    }
}

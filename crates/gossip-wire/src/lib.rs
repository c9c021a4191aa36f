//! memberlist and serf wire messages, encoded and decoded the way HashiCorp's
//! Go code (memberlist 0.2.2, serf 0.9.4, go-msgpack 0.5.5) does it.
//!
//! This crate turns bytes into typed messages and back: the memberlist
//! messages (ping, indirect ping, ack, nack, suspect, alive, dead, push/pull,
//! user, err), the packet wrappers (compound, LZW compress, hasCrc), the
//! TCP stream framing, and the serf messages carried inside
//! memberlist user messages (join/leave intents, push/pull state, user
//! events, queries, query responses, key requests/responses, relay,
//! conflict). Encoding is byte-identical to what Go writes: structs are
//! msgpack maps keyed by the Go field names in sorted order and byte slices
//! use the raw/str family (see `../shared/docs/gossip-wire.md`, section 3).
//!
//! It deliberately does not encrypt (the encryption envelope `0x0a`/version
//! byte and the gossip label header belong to `consul-sec-gossip-crypto`),
//! keeps no state and performs no I/O. Decoding never panics on untrusted
//! input: every failure is an [`Error`] naming the message and field, and
//! decoding work is bounded: one message holds at most a million msgpack
//! values, and the compress parts of one UDP packet may expand to at most
//! [`MAX_PACKET_DECOMPRESSED`] bytes in all.
//!
//! ```
//! use consul_sec_gossip_wire::{Message, Ping, decode_packet, encode_message};
//!
//! let ping = Ping { seq_no: 61, node: "rust-like".into(), ..Ping::default() };
//! let bytes = encode_message(&Message::Ping(ping.clone()));
//! let decoded = decode_packet(&bytes);
//! assert!(matches!(decoded.as_slice(), [Ok(Message::Ping(p))] if *p == ping));
//! ```
#![warn(missing_docs)]

mod lzw;
mod memberlist;
mod msgpack;
pub mod serf;
mod stream;

pub use lzw::{lzw_compress, lzw_decompress};
pub use memberlist::{
    Ack, Alive, Compress, Dead, ErrResp, IndirectPing, MAX_NESTING, MAX_PACKET_DECOMPRESSED,
    Message, MessageType, Nack, NodeStateKind, Ping, PushNodeState, PushPullHeader, Suspect,
    UserMsgHeader, decode_compound, decode_packet, encode_compound, encode_compress, encode_crc,
    encode_message, ip_from_bytes, ip_to_bytes,
};
pub use stream::{
    MAX_STREAM_LEN, PushPull, StreamMessage, decode_stream_message, encode_stream_message,
    stream_frame_len,
};

/// Everything that can go wrong while decoding or framing gossip messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input ended before the named message or field was complete.
    #[error("{what}: truncated input")]
    Truncated {
        /// The message being decoded.
        what: &'static str,
    },
    /// The msgpack bytes of the named message are malformed.
    #[error("{what}: invalid msgpack: {reason}")]
    Msgpack {
        /// The message being decoded.
        what: &'static str,
        /// What the msgpack reader reported.
        reason: String,
    },
    /// A field holds a msgpack value of a kind Go would reject.
    #[error("{what}: field {field}: expected {expected}, found {found}")]
    WrongType {
        /// The message being decoded.
        what: &'static str,
        /// The Go field name.
        field: &'static str,
        /// The kind of value the field needs.
        expected: &'static str,
        /// The kind of value that was found.
        found: &'static str,
    },
    /// An integer does not fit the Go type of its field.
    #[error("{what}: field {field}: integer out of range")]
    IntegerRange {
        /// The message being decoded.
        what: &'static str,
        /// The Go field name.
        field: &'static str,
    },
    /// A string field is not valid UTF-8.
    #[error("{what}: field {field}: string is not valid UTF-8")]
    InvalidUtf8 {
        /// The message being decoded.
        what: &'static str,
        /// The Go field name.
        field: &'static str,
    },
    /// The input was empty where a message was expected.
    #[error("{what}: empty input")]
    Empty {
        /// What was expected.
        what: &'static str,
    },
    /// The type byte is not a known message type in this context.
    #[error("{what}: unknown message type {ty}")]
    UnknownMessageType {
        /// The context (packet, stream, serf message).
        what: &'static str,
        /// The type byte found.
        ty: u8,
    },
    /// A hasCrc wrapper's checksum does not match its content.
    #[error(
        "hasCrc packet: checksum mismatch (header {expected:#010x}, computed {computed:#010x})"
    )]
    CrcMismatch {
        /// The CRC carried in the header.
        expected: u32,
        /// The CRC computed over the content.
        computed: u32,
    },
    /// A compress message names an algorithm other than LZW (0).
    #[error("compress message: unknown algorithm {algo}")]
    UnknownCompression {
        /// The `Algo` field.
        algo: u8,
    },
    /// The LZW data could not be decompressed.
    #[error("compress message: invalid LZW data: {reason}")]
    Lzw {
        /// What the LZW decoder reported.
        reason: String,
    },
    /// Decompression produced more than the allowed number of bytes.
    #[error("compress message: decompressed data exceeds {limit} bytes")]
    DecompressedTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Compound or compress wrappers are nested deeper than [`MAX_NESTING`].
    #[error("packet: wrappers nested deeper than {MAX_NESTING} levels")]
    NestingTooDeep,
    /// A stream frame announces a length above [`MAX_STREAM_LEN`].
    #[error("stream: remote node state is larger than limit ({len})")]
    FrameTooLarge {
        /// The announced length.
        len: u64,
    },
    /// Serf tags in node meta could not be decoded.
    #[error("node meta: invalid serf tags: {reason}")]
    InvalidTags {
        /// Why the tags were rejected.
        reason: String,
    },
}

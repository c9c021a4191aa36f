//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in this crate.
///
/// No variant carries key material: keys are never echoed, only their
/// decoded length or the position of a bad character.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key's text contains a character outside the standard base64
    /// alphabet (CR and LF are skipped, everything else counts).
    #[error("key: invalid base64 character at byte {position}")]
    InvalidKeyCharacter {
        /// Byte index of the bad character in the text as given.
        position: usize,
    },
    /// A key's text uses the URL-safe base64 alphabet (`-` or `_`), which
    /// memberlist does not accept.
    #[error(
        "key: URL-safe base64 character at byte {position}; gossip keys use standard base64 (`+` and `/`)"
    )]
    UrlSafeKey {
        /// Byte index of the first `-` or `_` in the text as given.
        position: usize,
    },
    /// A key's text is not valid padded base64 (wrong length, misplaced or
    /// missing `=` padding).
    #[error("key: malformed base64 ({reason})")]
    MalformedKey {
        /// What is wrong, without any of the key's characters.
        reason: String,
    },
    /// A key decoded (or was given) with a length other than 16, 24 or 32
    /// bytes.
    #[error("key: decodes to {len} bytes; key size must be 16, 24 or 32 bytes")]
    KeySize {
        /// The decoded length in bytes.
        len: usize,
    },
    /// A key decoded to bytes that are themselves base64 text: the value was
    /// most likely base64-encoded twice.
    #[error(
        "key: decodes to {len} bytes that are themselves base64 text; the key looks base64-encoded twice"
    )]
    DoubleEncodedKey {
        /// The decoded length in bytes.
        len: usize,
    },
    /// The operating system's random source failed while generating a key.
    #[error("random source: cannot read random bytes")]
    Random(#[source] rand::rngs::SysError),

    /// Keys were given to [`Keyring::new`](crate::Keyring::new) without a
    /// primary key (memberlist: `Empty primary key not allowed`).
    #[error("keyring: empty primary key not allowed")]
    EmptyPrimaryKey,
    /// [`Keyring::use_key`](crate::Keyring::use_key) was asked for a key that
    /// is not installed (memberlist: `Requested key is not in the keyring`).
    #[error("keyring: requested key is not in the keyring")]
    KeyNotInKeyring,
    /// [`Keyring::remove_key`](crate::Keyring::remove_key) was asked to remove
    /// the primary key (memberlist: `Removing the primary key is not allowed`).
    #[error("keyring: removing the primary key is not allowed")]
    RemovePrimaryKey,
    /// The operation needs at least one key but the keyring is empty
    /// (sealing, saving, or removing from an empty ring, where Go panics).
    #[error("keyring: keyring is empty (encryption not enabled)")]
    EmptyKeyring,

    /// An encrypted payload of zero bytes (memberlist: `Cannot decrypt empty payload`).
    #[error("payload: cannot decrypt empty payload")]
    EmptyPayload,
    /// The payload's version byte is neither 0 nor 1
    /// (memberlist: `Unsupported encryption version <v>`).
    #[error("payload: unsupported encryption version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The payload is shorter than the minimum for its version: 29 bytes for
    /// version 1, 45 for version 0 (memberlist: `Payload is too small to decrypt: <len>`).
    #[error(
        "payload: {len} bytes is too small to decrypt (version {version} needs at least {min})"
    )]
    PayloadTooShort {
        /// The payload's length.
        len: usize,
        /// The payload's version byte.
        version: u8,
        /// The minimum length for that version.
        min: usize,
    },
    /// No installed key authenticates the payload with the given additional
    /// data (memberlist: `No installed keys could decrypt the message`).
    #[error("payload: no installed keys could decrypt the message ({tried} tried)")]
    NoKeyDecrypts {
        /// How many keys were tried.
        tried: usize,
    },
    /// A version 0 payload opened, but its last byte asks to strip more
    /// padding than there is plaintext (Go panics here).
    #[error("payload: version 0 padding of {padding} bytes exceeds the {len}-byte plaintext")]
    InvalidPadding {
        /// The padding length read from the last plaintext byte.
        padding: u8,
        /// The plaintext length before stripping.
        len: usize,
    },
    /// The AEAD refused to seal (only for inputs beyond AES-GCM's limits).
    #[error("payload: {len}-byte message cannot be sealed")]
    SealFailed {
        /// The plaintext length.
        len: usize,
    },

    /// A stream frame does not start with the encrypt message type `0x0a`.
    #[error("stream: frame starts with 0x{found:02x}, expected encrypt message type 0x0a")]
    NotEncryptedStream {
        /// The first byte found.
        found: u8,
    },
    /// A stream frame declares (or would need) a payload longer than the
    /// 20 MiB memberlist accepts (memberlist: `Remote node state is larger than limit`).
    #[error("stream: encrypted state of {len} bytes is larger than the limit of {limit} bytes")]
    StreamTooLarge {
        /// The declared or required payload length.
        len: usize,
        /// The limit, 20 MiB.
        limit: usize,
    },
    /// A stream frame's buffer does not hold exactly the payload its header
    /// declares (a frame shorter than its header has `expected` 5; an empty
    /// stream message has `expected` 1, its type byte).
    #[error("stream: frame needs {expected} bytes but {actual} were given")]
    StreamLength {
        /// Bytes the header (or the header itself) requires.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A plaintext stream reached a node that has keys and verifies incoming
    /// traffic (memberlist: `Encryption is configured but remote state is not encrypted`).
    #[error("stream: encryption is configured but remote state is not encrypted")]
    RemoteStateNotEncrypted,
    /// An encrypted stream reached a node without keys
    /// (memberlist: `Remote state is encrypted and encryption is not configured`).
    #[error("stream: remote state is encrypted and encryption is not configured")]
    RemoteStateEncrypted,

    /// A label longer than 255 bytes.
    #[error("label: {len} bytes is longer than the 255 allowed")]
    LabelTooLong {
        /// The label's length.
        len: usize,
    },
    /// A label header (`0xF4`) with a length byte of 0.
    #[error("label: header present with a length of zero")]
    EmptyLabelHeader,
    /// A label header that is cut short.
    #[error("label: header declares {declared} label bytes but only {available} follow")]
    TruncatedLabelHeader {
        /// Label length declared by the header (0 when even the length byte is missing).
        declared: usize,
        /// Bytes available after the header's fixed part.
        available: usize,
    },
    /// A packet or stream carries a different label than this node's.
    #[error("label: got {got:?}, expected {expected:?}")]
    LabelMismatch {
        /// This node's label (lossy UTF-8).
        expected: String,
        /// The label received (lossy UTF-8), empty when there was no header.
        got: String,
    },

    /// A keyring file cannot be read.
    #[error("{}: cannot read keyring file", path.display())]
    KeyringFileRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A keyring file is not valid JSON.
    #[error("{}: keyring file is not valid JSON", path.display())]
    KeyringFileJson {
        /// The file.
        path: PathBuf,
        /// The parser error (line and column; it never quotes content).
        #[source]
        source: serde_json::Error,
    },
    /// A keyring file's JSON is not an array of strings.
    #[error("{}: keyring file must be a JSON array of base64 strings, {found}", path.display())]
    KeyringFileShape {
        /// The file.
        path: PathBuf,
        /// What was found instead, e.g. `found an object` or `entry 2 is a number`.
        found: String,
    },
    /// A keyring file entry is not a valid key.
    #[error("{}: keyring file entry {index} is not a valid key", path.display())]
    KeyringFileKey {
        /// The file.
        path: PathBuf,
        /// Zero-based index of the entry in the array.
        index: usize,
        /// Why the key is invalid.
        #[source]
        source: Box<Error>,
    },
    /// A keyring file holds an empty array (Consul: `no keys present in keyring`).
    #[error("{}: no keys present in keyring", path.display())]
    KeyringFileEmpty {
        /// The file.
        path: PathBuf,
    },
    /// Writing a keyring file failed; the previous file, if any, is untouched.
    #[error("{}: cannot write keyring file ({step})", path.display())]
    KeyringFileWrite {
        /// The file that was to be written.
        path: PathBuf,
        /// The step that failed, e.g. `create temporary file`, `rename`.
        step: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

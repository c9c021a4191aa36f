//! Gossip encryption byte-compatible with HashiCorp memberlist 0.2.2 (the
//! library under serf and Consul): keys, the keyring, the AES-GCM frame for
//! packets and streams, the label header, the `encrypt_verify_incoming` /
//! `encrypt_verify_outgoing` policy, and the serf/Consul keyring file.
//!
//! It reproduces memberlist's behaviour exactly where peers can see it:
//! 16-, 24- or 32-byte keys in standard base64; a keyring whose first key
//! seals and whose keys all open, with memberlist's add/use/remove rules and
//! errors; payloads `version | nonce | ciphertext | tag` in version 1 (sent
//! by default) and version 0 (PKCS#7-padded, still accepted); stream frames
//! `0x0a | u32 length | payload` with the header as additional data; and the
//! verify-flag tables of memberlist's packet and stream handlers. Where Go
//! panics (removing from an empty ring, a version 0 padding length beyond
//! the plaintext) this crate returns an error.
//!
//! It does no I/O besides the keyring file, opens no sockets, and knows
//! nothing about the messages inside the frames (see `consul-sec-gossip-wire`).
//! Ciphers are keyed once, when a key enters the ring: ring's AES-GCM for 16-
//! and 32-byte keys, RustCrypto's `aes-gcm` for 24-byte keys.
//!
//! ```
//! use consul_sec_gossip_crypto::{EncryptionVersion, GossipSecurity, Keyring, SecretKey, Decoded};
//!
//! # fn main() -> Result<(), consul_sec_gossip_crypto::Error> {
//! // A key as `consul keygen` prints it, and a one-key ring.
//! let key = SecretKey::from_base64("DnAjdcjDHvDvwdSNKWmEvg==")?;
//! let keyring = Keyring::new([], Some(key))?;
//!
//! // Seal and open a packet payload (no label: empty additional data).
//! let payload = keyring.seal(b"hello, memberlist", b"", EncryptionVersion::V1)?;
//! assert_eq!(payload.len(), 17 + 29);
//! assert_eq!(keyring.open(&payload, b"")?, b"hello, memberlist");
//!
//! // The same through the verify policy (both flags on by default).
//! let security = GossipSecurity::new(keyring);
//! let packet = security.encode_packet(b"ping")?;
//! assert_eq!(security.decode_packet(&packet)?, Decoded::Decrypted(b"ping".to_vec()));
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod cipher;
mod error;
mod file;
mod frame;
mod key;
mod keyring;
mod policy;

pub use error::Error;
pub use file::{load_keyring_file, save_keyring_file};
pub use frame::{
    ENCRYPT_MSG_TYPE, EncryptionVersion, LABEL_MSG_TYPE, Label, MAX_LABEL_LEN, MAX_STREAM_PAYLOAD,
    STREAM_HEADER_LEN, split_label_header, stream_payload_len,
};
pub use key::{KeySize, SecretKey};
pub use keyring::Keyring;
pub use policy::{Decoded, GossipSecurity};

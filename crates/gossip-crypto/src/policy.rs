//! `encrypt_verify_incoming` / `encrypt_verify_outgoing`: what a node seals
//! and what it accepts.

use crate::frame::{ENCRYPT_MSG_TYPE, split_label_header};
use crate::{EncryptionVersion, Error, Keyring, Label};

/// A node's gossip security settings: its keyring, the two verify flags,
/// its label and the encryption version it sends.
///
/// Encryption is *enabled* when the keyring holds at least one key. The
/// verify flags only matter then; they exist so a running cluster can move
/// to encryption without a partition (Consul's upshift procedure: give every
/// node the key with both flags off, then turn `verify_outgoing` on
/// everywhere, then `verify_incoming`).
///
/// | path | flag on | flag off |
/// | --- | --- | --- |
/// | send packet / stream (`verify_outgoing`) | sealed with the primary key (stream: `0x0a` frame) | plaintext |
/// | receive packet (`verify_incoming`) | must decrypt, otherwise dropped | decrypted if possible, otherwise taken as plaintext |
/// | receive stream not starting with `0x0a` (`verify_incoming`) | refused: [`Error::RemoteStateNotEncrypted`] | accepted as plaintext |
/// | receive stream starting with `0x0a` | must decrypt | must decrypt |
///
/// Whatever the flags, a node without keys takes every packet as plaintext,
/// refuses encrypted streams ([`Error::RemoteStateEncrypted`]) and sends
/// plaintext.
///
/// A non-empty label is sent as a header in front of every packet (and is
/// expected in front of every received one) and is the packet's additional
/// data; for streams it is appended to the frame header as additional data,
/// and the header at the start of a connection is checked with
/// [`strip_stream_label`](GossipSecurity::strip_stream_label).
#[derive(Debug, Clone)]
pub struct GossipSecurity {
    /// The keys; shared with whoever else holds a clone of the handle.
    pub keyring: Keyring,
    /// Consul `encrypt_verify_incoming` (default true).
    pub verify_incoming: bool,
    /// Consul `encrypt_verify_outgoing` (default true).
    pub verify_outgoing: bool,
    /// The gossip label; empty (the default) means none, as in memberlist 0.2.2.
    pub label: Label,
    /// The version sealed messages carry (default 1, as serf and Consul send).
    pub encryption_version: EncryptionVersion,
}

/// What a received packet or stream turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// It was sealed and one of the installed keys opened it.
    Decrypted(Vec<u8>),
    /// It is taken as plaintext: encryption is off, or the verify flags
    /// allow plaintext and it was not (or could not be) decrypted.
    Plaintext(Vec<u8>),
}

impl Decoded {
    /// The message bytes, whichever way they came.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Decoded::Decrypted(bytes) | Decoded::Plaintext(bytes) => bytes,
        }
    }
}

impl GossipSecurity {
    /// Settings for `keyring` with both verify flags on, no label and
    /// version 1, as memberlist and Consul default.
    pub fn new(keyring: Keyring) -> GossipSecurity {
        GossipSecurity {
            keyring,
            verify_incoming: true,
            verify_outgoing: true,
            label: Label::default(),
            encryption_version: EncryptionVersion::V1,
        }
    }

    /// `true` when the keyring holds at least one key.
    pub fn encryption_enabled(&self) -> bool {
        !self.keyring.is_empty()
    }

    /// `true` when outgoing packets and streams are sealed: encryption is
    /// enabled and `verify_outgoing` is on.
    pub fn seals_outgoing(&self) -> bool {
        self.verify_outgoing && self.encryption_enabled()
    }

    /// A packet ready for the wire: the label header (if any), then the
    /// message sealed with the primary key with the label as additional data
    /// when [`seals_outgoing`](GossipSecurity::seals_outgoing), else as is.
    pub fn encode_packet(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = self.label.header();
        if self.seals_outgoing() {
            self.keyring.seal_into(
                &mut out,
                msg,
                self.label.as_bytes(),
                self.encryption_version,
            )?;
        } else {
            out.extend_from_slice(msg);
        }
        Ok(out)
    }

    /// A received packet, after the label check and the verify rules. An
    /// `Err` means the packet is dropped, and says why.
    pub fn decode_packet(&self, packet: &[u8]) -> Result<Decoded, Error> {
        let (label, body) = split_label_header(packet)?;
        self.check_label(&label)?;
        if !self.encryption_enabled() {
            return Ok(Decoded::Plaintext(body.to_vec()));
        }
        match self.keyring.open(body, self.label.as_bytes()) {
            Ok(plaintext) => Ok(Decoded::Decrypted(plaintext)),
            // memberlist tries decryption first and, when plaintext is
            // allowed, takes the datagram as it came.
            Err(_) if !self.verify_incoming => Ok(Decoded::Plaintext(body.to_vec())),
            Err(err) => Err(err),
        }
    }

    /// One stream message ready for the wire: a sealed `0x0a` frame when
    /// [`seals_outgoing`](GossipSecurity::seals_outgoing), else the message
    /// as is. The label header of a connection is written once by the
    /// dialer ([`Label::header`]), not by this.
    pub fn encode_stream(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        if self.seals_outgoing() {
            self.keyring.seal_stream(msg, &self.label, self.encryption_version)
        } else {
            Ok(msg.to_vec())
        }
    }

    /// One received stream message (after the connection's label header).
    /// An `Err` means the exchange fails with that error.
    pub fn decode_stream(&self, data: &[u8]) -> Result<Decoded, Error> {
        let Some(&first) = data.first() else {
            return Err(Error::StreamLength { expected: 1, actual: 0 });
        };
        if first == ENCRYPT_MSG_TYPE {
            if !self.encryption_enabled() {
                return Err(Error::RemoteStateEncrypted);
            }
            return self.keyring.open_stream(data, &self.label).map(Decoded::Decrypted);
        }
        if self.encryption_enabled() && self.verify_incoming {
            return Err(Error::RemoteStateNotEncrypted);
        }
        Ok(Decoded::Plaintext(data.to_vec()))
    }

    /// Checks the label header at the start of an inbound connection and
    /// returns the bytes after it.
    pub fn strip_stream_label<'a>(&self, start: &'a [u8]) -> Result<&'a [u8], Error> {
        let (label, rest) = split_label_header(start)?;
        self.check_label(&label)?;
        Ok(rest)
    }

    fn check_label(&self, got: &Label) -> Result<(), Error> {
        if got == &self.label {
            return Ok(());
        }
        Err(Error::LabelMismatch { expected: self.label.to_string(), got: got.to_string() })
    }
}

impl Default for GossipSecurity {
    fn default() -> GossipSecurity {
        GossipSecurity::new(Keyring::empty())
    }
}

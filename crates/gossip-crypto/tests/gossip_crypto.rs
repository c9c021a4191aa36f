//! Public API tests of `consul-sec-gossip-crypto`.

#[path = "gossip_crypto/support.rs"]
mod support;

#[path = "gossip_crypto/keys.rs"]
mod keys;

#[path = "gossip_crypto/keyring.rs"]
mod keyring;

#[path = "gossip_crypto/frames.rs"]
mod frames;

#[path = "gossip_crypto/interop.rs"]
mod interop;

#[path = "gossip_crypto/policy.rs"]
mod policy;

#[path = "gossip_crypto/file.rs"]
mod file;

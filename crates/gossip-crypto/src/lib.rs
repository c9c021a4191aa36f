//! Gossip encryption byte-compatible with HashiCorp memberlist (work in progress).
#![warn(missing_docs)]

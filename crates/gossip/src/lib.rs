//! Membership with no I/O: SWIM with Lifeguard and the serf layer, wire-compatible with HashiCorp's Go code (work in progress).
#![warn(missing_docs)]

//! memberlist and serf wire messages: msgpack as Go speaks it, compound, CRC, LZW, label (work in progress).
#![warn(missing_docs)]

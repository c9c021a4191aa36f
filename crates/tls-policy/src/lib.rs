//! Consul's TLS options turned into rustls configurations with Consul's verify_* semantics (work in progress).
#![warn(missing_docs)]

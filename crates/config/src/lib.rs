//! Consul agent configuration from JSON, HCL, environment and flags, checked and converted to domain settings (work in progress).
#![warn(missing_docs)]

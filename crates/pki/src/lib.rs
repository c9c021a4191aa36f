//! CA and certificate issuance with Consul's defaults, file names and SEC1 key files (work in progress).
#![warn(missing_docs)]

//! Public API tests of consul-sec-pki: issuance checked in-process with
//! x509-parser and by the `openssl` command, file handling, and a mutual-TLS
//! handshake with the issued certificates.

#[path = "pki/common.rs"]
mod common;
#[path = "pki/files.rs"]
mod files;
#[path = "pki/handshake.rs"]
mod handshake;
#[path = "pki/issue.rs"]
mod issue;
#[path = "pki/openssl.rs"]
mod openssl;

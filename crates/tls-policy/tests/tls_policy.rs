//! Public API tests of consul-sec-tls-policy: loading, the verify_* matrix with
//! real handshakes, the RPC first byte, reload, inspection and openssl interop.

#[path = "tls_policy/support.rs"]
mod support;

#[path = "tls_policy/inspect.rs"]
mod inspect;
#[path = "tls_policy/interop.rs"]
mod interop;
#[path = "tls_policy/load.rs"]
mod load;
#[path = "tls_policy/matrix.rs"]
mod matrix;
#[path = "tls_policy/reload.rs"]
mod reload;
#[path = "tls_policy/rpc.rs"]
mod rpc;

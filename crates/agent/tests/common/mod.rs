//! Scaffolding shared by the agent crate's test binaries and benches
//! (included with `mod common;` or `#[path = "../tests/common/mod.rs"]`).
#![allow(dead_code, reason = "each test binary uses a part of this module")]

use std::net::SocketAddr;

/// A port free for both UDP and TCP on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    // Never hand out the same port twice in one process: the ports are
    // released before serf binds them, so a repeat would collide.
    static USED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let mut used = USED.lock().unwrap();
        if !used.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            used.push(port);
            return port;
        }
    }
}

/// `127.0.0.1:<port>`.
pub(crate) fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Polls `done` every 10 ms until it holds; panics after 5 s.
pub(crate) async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 5 s");
}

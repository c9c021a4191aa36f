//! Concurrent connections per client IP address, Consul's
//! `limits.http_max_conns_per_client` (HTTP and HTTPS API) and
//! `limits.rpc_max_conns_per_client` (RPC port).
//!
//! Consul counts open connections per source IP and refuses a new one once
//! the count has reached the limit: the RPC port closes it with an error log
//! line, the HTTP API answers `429 Too Many Requests` and closes it. A limit
//! of 0 means no limit. The limit can change on reload; connections already
//! open stay open even when they are now over it.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Consul's default `limits.http_max_conns_per_client`.
pub const DEFAULT_HTTP_MAX_CONNS_PER_CLIENT: u32 = 200;

/// Consul's default `limits.rpc_max_conns_per_client`.
pub const DEFAULT_RPC_MAX_CONNS_PER_CLIENT: u32 = 100;

/// Counts open connections per client IP against a limit that a reload may
/// change. Cheap to share: wrap it in an [`Arc`].
pub struct ConnLimiter {
    max: AtomicU32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl ConnLimiter {
    /// A limiter allowing `max` connections per client IP (0: no limit).
    pub fn new(max: u32) -> Arc<ConnLimiter> {
        Arc::new(ConnLimiter { max: AtomicU32::new(max), open: Mutex::new(HashMap::new()) })
    }

    /// The limit now (0: no limit).
    pub fn max(&self) -> u32 {
        self.max.load(Ordering::Relaxed)
    }

    /// Changes the limit for connections accepted from now on.
    pub fn set_max(&self, max: u32) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// How many connections from `ip` are open now.
    pub fn open(&self, ip: IpAddr) -> u32 {
        self.lock().get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    /// Counts a new connection from `ip`, or returns `None` when `ip`
    /// already has the maximum open. The connection stays counted until the
    /// returned permit is dropped.
    pub fn accept(self: &Arc<Self>, ip: IpAddr) -> Option<ConnPermit> {
        // An IPv4 client seen on a dual-stack socket is the same client.
        let ip = ip.to_canonical();
        let max = self.max();
        let mut open = self.lock();
        let count = open.entry(ip).or_insert(0);
        if max > 0 && *count >= max {
            if *count == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(ConnPermit { limiter: Arc::clone(self), ip })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, u32>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ConnLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnLimiter")
            .field("max", &self.max())
            .field("clients", &self.lock().len())
            .finish()
    }
}

/// One counted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut open = self.limiter.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn counts_per_ip_and_frees_on_drop() {
        let limiter = ConnLimiter::new(2);
        let a1 = limiter.accept(A).unwrap();
        let _a2 = limiter.accept(A).unwrap();
        assert!(limiter.accept(A).is_none(), "third connection from A");
        let _b1 = limiter.accept(B).expect("B has its own count");
        assert_eq!((limiter.open(A), limiter.open(B)), (2, 1));
        drop(a1);
        assert_eq!(limiter.open(A), 1);
        let _a3 = limiter.accept(A).expect("a place was freed");
        assert!(limiter.accept(A).is_none());
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let limiter = ConnLimiter::new(1);
        let _a = limiter.accept(A).unwrap();
        let mapped = IpAddr::V6(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert!(limiter.accept(mapped).is_none());
    }

    #[test]
    fn zero_is_no_limit_and_the_limit_can_change() {
        let limiter = ConnLimiter::new(0);
        let permits: Vec<_> = (0..1000).map(|_| limiter.accept(A).unwrap()).collect();
        limiter.set_max(1000);
        assert!(limiter.accept(A).is_none(), "at the new limit");
        limiter.set_max(1);
        drop(permits);
        assert_eq!(limiter.open(A), 0);
        let _one = limiter.accept(A).unwrap();
        assert!(limiter.accept(A).is_none());
        assert_eq!(format!("{limiter:?}"), "ConnLimiter { max: 1, clients: 1 }");
    }
}

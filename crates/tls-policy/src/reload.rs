//! [`TlsConfigurator`]: the current loaded policy behind an atomic swap.

use std::sync::{Arc, RwLock};

use rustls::{ClientConfig, ServerConfig};

use crate::{Error, LoadedPolicy, TlsPolicy};

/// Holds the TLS policy in force and swaps it atomically on reload.
///
/// Callers fetch the configuration per handshake (`server_config()` when a
/// connection upgrades, `client_config()`/`current().outgoing(dc)` per dial),
/// so new handshakes see a reloaded policy while established connections
/// keep the one they started with — Consul's reload behaviour (PR #5419).
#[derive(Debug)]
pub struct TlsConfigurator {
    current: RwLock<Arc<LoadedPolicy>>,
}

impl TlsConfigurator {
    /// Loads `policy` and puts it in force.
    pub fn new(policy: &TlsPolicy) -> Result<Self, Error> {
        Ok(Self::from_loaded(policy.load()?))
    }

    /// Puts an already loaded policy in force.
    pub fn from_loaded(loaded: LoadedPolicy) -> Self {
        Self { current: RwLock::new(Arc::new(loaded)) }
    }

    /// The policy in force now.
    pub fn current(&self) -> Arc<LoadedPolicy> {
        // A poisoned lock only means a writer panicked after (or before) the
        // single pointer store; the value inside is always a complete policy.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Loads `policy` and, only if that succeeds, swaps it in. On error the
    /// old policy stays in force and the error is returned.
    pub fn reload(&self, policy: &TlsPolicy) -> Result<Arc<LoadedPolicy>, Error> {
        Ok(self.swap(policy.load()?))
    }

    /// Swaps in a policy loaded earlier (with [`TlsPolicy::load`]), so a
    /// caller can load several policies and apply them all or none.
    pub fn swap(&self, loaded: LoadedPolicy) -> Arc<LoadedPolicy> {
        let loaded = Arc::new(loaded);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded.clone();
        loaded
    }

    /// The incoming configuration of the policy in force.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, Error> {
        self.current().server_config()
    }

    /// The outgoing configuration of the policy in force.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.current().client_config()
    }
}

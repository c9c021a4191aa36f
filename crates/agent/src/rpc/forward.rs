//! [`ForwardToServers`]: a client agent's keyring operations run on a server
//! over RPC, as Consul's clients forward them.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use crate::cluster::{Cluster, KeyRequest};
use crate::model::{AgentMember, KeyringResponse, STATUS_ALIVE};
use crate::rpc::RpcClient;

/// Consul's error when a client knows no server (`structs.ErrNoServers`).
pub const NO_SERVERS: &str = "No known Consul servers";

/// The RPC addresses of the live servers of `datacenter` among `members`:
/// members tagged `role=consul` and `dc=<datacenter>`, at their gossip
/// address and the `port` tag (Consul's `ports.server`).
pub fn server_addresses(members: &[AgentMember], datacenter: &str) -> Vec<SocketAddr> {
    members
        .iter()
        .filter(|m| m.status == STATUS_ALIVE)
        .filter(|m| m.tags.get("role").map(String::as_str) == Some("consul"))
        .filter(|m| m.tags.get("dc").map(String::as_str) == Some(datacenter))
        .filter_map(|m| {
            let ip: IpAddr = m.addr.parse().ok()?;
            let port: u16 = m.tags.get("port")?.parse().ok()?;
            Some(SocketAddr::new(ip, port))
        })
        .collect()
}

/// A [`Cluster`] whose members come from `inner` but whose keyring
/// operations are sent to a server over RPC (`Internal.KeyringOperation`),
/// trying the known servers in turn until one answers.
#[derive(Debug)]
pub struct ForwardToServers<C> {
    inner: C,
    client: RpcClient,
}

impl<C: Cluster> ForwardToServers<C> {
    /// Forwards through `client` (whose `datacenter` picks the servers).
    pub fn new(inner: C, client: RpcClient) -> Self {
        Self { inner, client }
    }

    /// The RPC client.
    pub fn client(&self) -> &RpcClient {
        &self.client
    }
}

impl<C: Cluster> Cluster for ForwardToServers<C> {
    fn local_member(&self) -> AgentMember {
        self.inner.local_member()
    }

    fn members(&self) -> Vec<AgentMember> {
        self.inner.members()
    }

    fn key_operation(&self, request: KeyRequest) -> impl Future<Output = KeyringResponse> + Send {
        let dc = self.client.config().datacenter.clone();
        let servers = server_addresses(&self.inner.members(), &dc);
        let client = self.client.clone();
        async move {
            let mut last = NO_SERVERS.to_owned();
            for addr in servers {
                match client.keyring_operation(addr, &request).await {
                    Ok(responses) => {
                        // This agent only runs the LAN pool; take the local DC's LAN answer.
                        if let Some(lan) = responses.into_iter().find(|r| !r.wan) {
                            return lan;
                        }
                        last = format!("{addr}: no LAN keyring response");
                    }
                    Err(err) => {
                        tracing::warn!(server = %addr, error = %err, "keyring operation over RPC failed");
                        last = err.to_string();
                    }
                }
            }
            KeyringResponse { datacenter: dc, error: Some(last), ..Default::default() }
        }
    }
}

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
/// trying the known servers in turn until one answers. With no server in
/// the pool they run on `inner`, as in a serf-only pool.
///
/// A server agent uses [`ForwardToServers::local`]: the same type, running
/// keyring operations on `inner` itself, so the agent has one cluster type
/// whether it is a server or a client.
#[derive(Debug)]
pub struct ForwardToServers<C> {
    inner: C,
    client: Option<RpcClient>,
}

impl<C: Cluster> ForwardToServers<C> {
    /// Forwards through `client` (whose `datacenter` picks the servers).
    pub fn new(inner: C, client: RpcClient) -> Self {
        Self { inner, client: Some(client) }
    }

    /// Runs keyring operations on `inner` (a server agent's own pool).
    pub fn local(inner: C) -> Self {
        Self { inner, client: None }
    }

    /// The RPC client, when operations are forwarded.
    pub fn client(&self) -> Option<&RpcClient> {
        self.client.as_ref()
    }

    /// The wrapped cluster.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

/// Sends `request` to the first of `servers` that answers.
async fn forward(
    client: RpcClient,
    servers: Vec<SocketAddr>,
    request: KeyRequest,
) -> KeyringResponse {
    let dc = client.config().datacenter.clone();
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

impl<C: Cluster> Cluster for ForwardToServers<C> {
    fn local_member(&self) -> AgentMember {
        self.inner.local_member()
    }

    fn members(&self) -> Vec<AgentMember> {
        self.inner.members()
    }

    fn key_operation(&self, request: KeyRequest) -> impl Future<Output = KeyringResponse> + Send {
        let forwarded = self.client.clone().and_then(|client| {
            let servers = server_addresses(&self.inner.members(), &client.config().datacenter);
            // consul-sec addition: a LAN pool with no Consul server in it (for
            // example one shared with serf agents) is managed from this agent
            // itself, by serf's key queries, as a serf agent would.
            (!servers.is_empty()).then(|| forward(client, servers, request.clone()))
        });
        let local = forwarded.is_none().then(|| self.inner.key_operation(request));
        async move {
            match (forwarded, local) {
                (Some(f), _) => f.await,
                (None, Some(l)) => l.await,
                (None, None) => KeyringResponse::default(),
            }
        }
    }
}

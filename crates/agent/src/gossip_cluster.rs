//! [`Cluster`] over the running gossip node: members from the membership,
//! key operations through serf's internal key queries on every member.

use std::collections::BTreeMap;
use std::sync::Arc;

use consul_sec_gossip::{KeyQueryResult, Member, MemberStatus};
use tokio::sync::RwLock;

use crate::cluster::{Cluster, KeyOperation, KeyRequest};
use crate::keyring::{KeyChange, KeyringStore};
use crate::model::{
    AgentMember, KeyringResponse, STATUS_ALIVE, STATUS_FAILED, STATUS_LEAVING, STATUS_LEFT,
};
use crate::transport::GossipNode;

/// The agent's cluster: the gossip node (until it leaves) and the keyring
/// store it encrypts with.
#[derive(Debug)]
pub struct GossipCluster {
    node: RwLock<Option<GossipNode>>,
    name: String,
    datacenter: String,
    store: Arc<KeyringStore>,
    /// Last known own entry, for `/v1/agent/self` after the node has left.
    fallback: AgentMember,
}

impl GossipCluster {
    /// Wraps a started node. `store` must hold the keyring the node's
    /// security settings share.
    pub fn new(node: GossipNode, datacenter: impl Into<String>, store: Arc<KeyringStore>) -> Self {
        let name = node.name();
        let fallback = node
            .members()
            .into_iter()
            .find(|m| m.name == name)
            .map(|m| to_agent_member(&m))
            .unwrap_or_else(|| {
                AgentMember::alive(name.clone(), node.local_addr(), BTreeMap::new())
            });
        GossipCluster {
            node: RwLock::new(Some(node)),
            name,
            datacenter: datacenter.into(),
            store,
            fallback,
        }
    }

    /// Joins through `seeds`; returns how many answered.
    pub async fn join(&self, seeds: &[std::net::SocketAddr]) -> Result<usize, String> {
        match self.node.read().await.as_ref() {
            Some(node) => node.join(seeds).await.map_err(|err| err.to_string()),
            None => Err("the node has left".to_owned()),
        }
    }

    /// Leaves the cluster gracefully (others see `left`) and stops gossip.
    pub async fn leave(&self) {
        let node = self.node.write().await.take();
        if let Some(node) = node {
            node.leave().await;
        }
    }
}

/// Consul's `api.AgentMember` for a gossip member.
pub fn to_agent_member(member: &Member) -> AgentMember {
    let vsn = |i: usize| member.vsn.get(i).copied().unwrap_or(0);
    AgentMember {
        name: member.name.clone(),
        addr: member.addr.ip().to_string(),
        port: member.addr.port(),
        tags: member.tags.clone(),
        status: match member.status {
            MemberStatus::Alive => STATUS_ALIVE,
            MemberStatus::Leaving => STATUS_LEAVING,
            MemberStatus::Left => STATUS_LEFT,
            MemberStatus::Failed => STATUS_FAILED,
        },
        protocol_min: vsn(0),
        protocol_max: vsn(1),
        protocol_cur: vsn(2),
        delegate_min: vsn(3),
        delegate_max: vsn(4),
        delegate_cur: vsn(5),
    }
}

/// Consul's LAN pool response for serf's aggregated key-query answers.
pub fn to_keyring_response(datacenter: &str, result: KeyQueryResult) -> KeyringResponse {
    KeyringResponse {
        wan: false,
        datacenter: datacenter.to_owned(),
        segment: String::new(),
        error: result.outcome().err(),
        messages: result.messages,
        keys: result.keys,
        primary_keys: result.primary_keys,
        num_nodes: result.num_nodes,
    }
}

impl Cluster for GossipCluster {
    fn local_member(&self) -> AgentMember {
        self.members()
            .into_iter()
            .find(|m| m.name == self.name)
            .unwrap_or_else(|| self.fallback.clone())
    }

    fn members(&self) -> Vec<AgentMember> {
        match self.node.try_read() {
            Ok(guard) => match guard.as_ref() {
                Some(node) => node.members().iter().map(to_agent_member).collect(),
                None => Vec::new(),
            },
            // Only a leave holds the write lock; the node is going away.
            Err(_) => Vec::new(),
        }
    }

    async fn key_operation(&self, request: KeyRequest) -> KeyringResponse {
        let failed = |message: String| KeyringResponse {
            datacenter: self.datacenter.clone(),
            error: Some(message),
            ..Default::default()
        };
        let guard = self.node.read().await;
        let Some(node) = guard.as_ref() else { return failed("the node has left".to_owned()) };
        let result = match &request.op {
            KeyOperation::List => node.list_keys().await,
            KeyOperation::Change(KeyChange::Install(key)) => node.install_key(key.as_bytes()).await,
            KeyOperation::Change(KeyChange::Use(key)) => node.use_key(key.as_bytes()).await,
            KeyOperation::Change(KeyChange::Remove(key)) => node.remove_key(key.as_bytes()).await,
        };
        let mut response = match result {
            Ok(result) => to_keyring_response(&self.datacenter, result),
            Err(err) => return failed(err.to_string()),
        };
        // The node rewrote the file when its ring changed; write it once
        // more here so that success is reported only with the file
        // known to be current, and a write failure is this node's error.
        if matches!(request.op, KeyOperation::Change(_))
            && response.error.is_none()
            && let Err(err) = self.store.persist()
        {
            response.messages.insert(self.name.clone(), err.to_string());
            response.error = Some(format!("1/{} nodes reported failure", response.num_nodes));
        }
        response
    }
}

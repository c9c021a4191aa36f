//! What the HTTP API needs from the gossip layer, as a trait, plus
//! [`LocalCluster`]: a one-node cluster over a [`KeyringStore`], which is
//! both the agent's behaviour before any peer has joined and the in-memory
//! implementation the API tests use.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use consul_sec_gossip_crypto::SecretKey;

use crate::keyring::{KeyChange, KeyringStore};
use crate::model::{AgentMember, KeyringResponse};

/// A keyring operation as the API receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOperation {
    /// List the keys installed on every node.
    List,
    /// A change to run on every node.
    Change(KeyChange),
}

/// A keyring request with Consul's query options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRequest {
    /// The operation.
    pub op: KeyOperation,
    /// `relay-factor` (0..=5): how many extra members relay each answer.
    pub relay_factor: u8,
    /// `local-only` (list only): only this datacenter.
    pub local_only: bool,
}

/// The cluster as the HTTP API sees it.
///
/// The gossip runner implements it over the real membership; [`LocalCluster`]
/// implements it for a single node.
pub trait Cluster: Send + Sync + 'static {
    /// This node's own member entry.
    fn local_member(&self) -> AgentMember;

    /// Every member this node knows, alive or not.
    fn members(&self) -> Vec<AgentMember>;

    /// Runs a keyring operation on every live node and aggregates the
    /// answers. Failures are reported inside the response
    /// ([`KeyringResponse::error`] and `messages`), never as a panic.
    fn key_operation(&self, request: KeyRequest) -> impl Future<Output = KeyringResponse> + Send;
}

impl<C: Cluster> Cluster for Arc<C> {
    fn local_member(&self) -> AgentMember {
        (**self).local_member()
    }
    fn members(&self) -> Vec<AgentMember> {
        (**self).members()
    }
    fn key_operation(&self, request: KeyRequest) -> impl Future<Output = KeyringResponse> + Send {
        (**self).key_operation(request)
    }
}

/// Answers a keyring request against one node's store, as serf's internal
/// query handlers do on each member: the per-node message on failure, the
/// node's keys for a list.
pub fn local_key_answer(
    store: &KeyringStore,
    op: &KeyOperation,
) -> Result<Option<(Vec<SecretKey>, SecretKey)>, String> {
    match op {
        KeyOperation::List => {
            let keys = store.keyring().keys();
            match (store.keyring().primary_key(), keys.is_empty()) {
                (Some(primary), false) => Ok(Some((keys, primary))),
                _ => Err("Keyring is empty (encryption not enabled)".to_owned()),
            }
        }
        KeyOperation::Change(change) => {
            store.apply(change).map(|()| None).map_err(|err| err.to_string())
        }
    }
}

/// A cluster of one: this node. Key operations apply to its own keyring
/// (and file); members lists just itself.
#[derive(Debug)]
pub struct LocalCluster {
    member: AgentMember,
    datacenter: String,
    store: Arc<KeyringStore>,
}

impl LocalCluster {
    /// A one-node cluster for `member` in `datacenter` over `store`.
    pub fn new(
        member: AgentMember,
        datacenter: impl Into<String>,
        store: Arc<KeyringStore>,
    ) -> Self {
        LocalCluster { member, datacenter: datacenter.into(), store }
    }

    /// The keyring store.
    pub fn store(&self) -> &Arc<KeyringStore> {
        &self.store
    }
}

impl Cluster for LocalCluster {
    fn local_member(&self) -> AgentMember {
        self.member.clone()
    }

    fn members(&self) -> Vec<AgentMember> {
        vec![self.member.clone()]
    }

    fn key_operation(&self, request: KeyRequest) -> impl Future<Output = KeyringResponse> + Send {
        let mut response = KeyringResponse {
            datacenter: self.datacenter.clone(),
            num_nodes: 1,
            ..Default::default()
        };
        match local_key_answer(&self.store, &request.op) {
            Ok(Some((keys, primary))) => {
                response.keys = keys.iter().map(|k| (k.to_base64().to_string(), 1)).collect();
                response.primary_keys = BTreeMap::from([(primary.to_base64().to_string(), 1)]);
            }
            Ok(None) => {}
            Err(message) => {
                response.messages.insert(self.member.name.clone(), message);
                response.error = Some("1/1 nodes reported failure".to_owned());
            }
        }
        std::future::ready(response)
    }
}

//! The consul-sec agent: the only library besides the CLI that runs on
//! tokio. It drives the sans-IO gossip node (`consul-sec-gossip`) over one
//! UDP socket and one TCP listener ([`transport`]); sets up the LAN keyring
//! from `encrypt` and `<data_dir>/serf/local.keyring` with Consul's
//! precedence and writes every key change to that file ([`keyring`]);
//! serves Consul's HTTP API for members and the keyring (`/v1/agent/self`,
//! `/v1/agent/members`, `/v1/operator/keyring`, plain and HTTPS, [`api`]);
//! runs the agent lifecycle (data-dir lock, start banner, signals, graceful
//! leave, SIGHUP reload, [`run`]); and provides the API client and output
//! formatting of `consul-sec members` and `consul-sec keyring` ([`client`]).
//!
//! Consul behaviour reproduced: the keyring file's location, modes and
//! precedence rules with Consul's warnings; the keyring API's JSON, query
//! parameter checks, messages and per-node error aggregation; the
//! `consul members` table and `consul keyring` output blocks; the 0.8-era
//! start banner; leave on SIGINT/SIGTERM; the server RPC port with
//! first-byte multiplexing, msgpack-RPC (`Status.Ping`,
//! `Internal.KeyringOperation`) and the `verify_*` TLS policy ([`rpc`]).
//!
//! What it does not do: Consul's catalog, Raft, yamux RPC, DNS, ACLs or
//! the WAN pool; only the LAN gossip pool is run, so keyring responses have
//! a single `<dc> (LAN)` entry.
//!
//! The HTTP API runs over any [`cluster::Cluster`]; a one-node
//! [`cluster::LocalCluster`] answers key operations from its own keyring:
//!
//! ```
//! use std::sync::Arc;
//! use consul_sec_agent::cluster::{Cluster, KeyOperation, KeyRequest, LocalCluster};
//! use consul_sec_agent::keyring::KeyringStore;
//! use consul_sec_agent::model::AgentMember;
//! use consul_sec_gossip_crypto::{Keyring, SecretKey};
//!
//! let key = SecretKey::from_base64("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=").unwrap();
//! let store = Arc::new(KeyringStore::new(Keyring::from_keys([key]).unwrap(), None));
//! let member = AgentMember::alive("node1", "127.0.0.1:8301".parse().unwrap(), Default::default());
//! let cluster = LocalCluster::new(member, "dc1", store);
//! let request = KeyRequest { op: KeyOperation::List, relay_factor: 0, local_only: false };
//! let response = block_on(cluster.key_operation(request));
//! assert_eq!(response.keys.get("pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="), Some(&1));
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
#![warn(missing_docs)]

mod error;

pub mod api;
pub mod client;
pub mod cluster;
pub mod connlimit;
pub mod gossip_cluster;
pub mod keyring;
pub mod lock;
pub mod model;
// Consul's RPC port: first-byte multiplexing, msgpack-RPC, TLS policy, client pool (issue 8).
pub mod rpc;
pub mod run;
// Gossip sockets (UDP + TCP on one port) driving consul-sec-gossip's Node (issue 6).
pub mod transport;

pub use error::Error;

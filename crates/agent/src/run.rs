//! The agent lifecycle behind `consul-sec agent`: load the configuration,
//! lock the data dir, set up the keyring, start gossip, the RPC port
//! (servers: `ports.server`, [`crate::rpc`]) and the HTTP API, print
//! Consul's banner, then serve until a signal. Client agents forward
//! keyring operations to a server over RPC.
//!
//! * SIGINT / SIGTERM: leave the cluster gracefully (other members see
//!   `left`), stop the listeners, exit 0.
//! * SIGHUP: reload the configuration: `log_level`, `limits`, and the HTTPS
//!   and internal RPC certificates and verify flags (`tls.https`,
//!   `tls.internal_rpc`, for new connections) apply at once; everything else (addresses,
//!   ports, node name, `encrypt`, `encrypt_verify_*`) needs a restart.
//!
//! Logs go to stderr with the level from `log_level`; the banner goes to
//! the given writer (stdout in the CLI).

use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{IsTerminal as _, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use consul_sec_config::{Config, LoadOptions, load};
use consul_sec_gossip::{Config as NodeConfig, GossipSecurity, KeyringSaver, Timing};
use consul_sec_gossip_crypto::{KeySize, SecretKey};
use consul_sec_tls_policy::{TlsConfigurator, TlsPolicy};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::Error;
use crate::api::{ApiState, EncryptionSources, certificate_problems, serve};
use crate::connlimit::ConnLimiter;
use crate::gossip_cluster::GossipCluster;
use crate::keyring::{KeyringSetup, setup_keyring};
use crate::lock::DataDirLock;
use crate::model::SelfConfig;
use crate::rpc::{ForwardToServers, PoolConfig, RpcClient, RpcServer};
use crate::transport::{GossipNode, GossipOptions};

/// consul-sec's version, shown in the banner and `/v1/agent/self`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How often `retry_join` addresses are tried until one answers (Consul's
/// `retry_interval` default).
const RETRY_JOIN_INTERVAL: Duration = Duration::from_secs(30);

/// The serf tags a Consul agent announces on the LAN pool, so that
/// `consul members` (and `consul-sec members`) show type, build, protocol
/// and datacenter.
pub fn consul_tags(config: &Config) -> std::collections::BTreeMap<String, String> {
    let agent = &config.agent;
    let mut tags = std::collections::BTreeMap::new();
    tags.insert("role".to_owned(), if agent.server { "consul" } else { "node" }.to_owned());
    tags.insert("dc".to_owned(), agent.datacenter.clone());
    tags.insert("segment".to_owned(), String::new());
    tags.insert("vsn".to_owned(), "2".to_owned());
    tags.insert("vsn_min".to_owned(), "2".to_owned());
    tags.insert("vsn_max".to_owned(), "3".to_owned());
    tags.insert("build".to_owned(), format!("{VERSION}:consul-sec"));
    if agent.server {
        tags.insert("port".to_owned(), agent.ports.server.to_string());
        // Consul: servers with an internal-RPC CA advertise that they take
        // TLS; fixed at start (a reload does not change serf tags).
        let rpc = &config.tls.internal_rpc;
        if rpc.ca_file.is_some() || rpc.ca_path.is_some() {
            tags.insert("use_tls".to_owned(), "1".to_owned());
        }
        if bootstrap(config) {
            tags.insert("bootstrap".to_owned(), "1".to_owned());
        } else if agent.bootstrap_expect > 0 {
            tags.insert("expect".to_owned(), agent.bootstrap_expect.to_string());
        }
    }
    tags
}

/// Consul's bootstrap flag: `-dev`, or `bootstrap_expect = 1` on a server.
fn bootstrap(config: &Config) -> bool {
    config.agent.server && (config.agent.dev || config.agent.bootstrap_expect == 1)
}

/// The lines Consul 0.8 printed once the agent was running (plus the
/// `Version` line), for the given listener ports (`None`: disabled).
pub fn banner(
    config: &Config,
    encrypted: bool,
    http: Option<u16>,
    https: Option<u16>,
    lan: u16,
) -> String {
    let agent = &config.agent;
    let port = |p: Option<u16>| p.map_or_else(|| "-1".to_owned(), |p| p.to_string());
    let client_addr = agent.client_addr.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(" ");
    let cluster_addr = agent.advertise_addr.unwrap_or(agent.bind_addr);
    let rpc = &config.tls.internal_rpc;
    let lines = [
        ("Version", format!("'consul-sec v{VERSION}'")),
        ("Node name", format!("'{}'", agent.node_name)),
        ("Datacenter", format!("'{}'", agent.datacenter)),
        ("Server", format!("{} (bootstrap: {})", agent.server, bootstrap(config))),
        (
            "Client Addr",
            format!("{client_addr} (HTTP: {}, HTTPS: {}, DNS: -1)", port(http), port(https)),
        ),
        ("Cluster Addr", format!("{cluster_addr} (LAN: {lan}, WAN: -1)")),
        (
            "Gossip encrypt",
            format!(
                "{encrypted}, RPC-TLS: {}, TLS-Incoming: {}",
                rpc.verify_outgoing_effective(),
                rpc.verify_incoming
            ),
        ),
    ];
    let mut out = String::from("==> Consul agent running!\n");
    for (label, value) in lines {
        out.push_str(&format!("{label:>18}: {value}\n"));
    }
    out.push_str("\n==> Log data will now stream in as it occurs:\n");
    out
}

/// Runs the agent until SIGINT or SIGTERM (see the module docs). Returns
/// after a graceful leave; errors before the banner's last line mean the
/// agent did not start.
pub fn run_agent(options: &LoadOptions, out: &mut dyn Write) -> Result<(), Error> {
    let loaded = load(options, std::env::vars_os()).map_err(Error::Config)?;
    let log = init_logging(loaded.config.agent.log_level.as_str());
    for warning in &loaded.warnings {
        let _ = writeln!(out, "==> WARNING: {warning}");
    }
    // One thread: an agent's work is a few sockets and timers, and each
    // worker thread costs its stack and its own malloc arena in resident
    // memory (issue 7's target is half of a serf agent's). Blocking calls
    // (name lookups) still go to tokio's on-demand blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime { what: "starting the async runtime", source })?;
    runtime.block_on(run(options, loaded.config, log, out))
}

/// A handle to change the log level on reload.
type LogHandle = Option<reload::Handle<EnvFilter, tracing_subscriber::Registry>>;

fn init_logging(level: &str) -> LogHandle {
    let (filter, handle) = reload::Layer::new(EnvFilter::new(level));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // A subscriber set earlier (tests, embedding) wins; then levels are its own.
    tracing_subscriber::registry().with(filter).with(fmt).try_init().ok().map(|()| handle)
}

/// A `-dev` data dir, removed when the agent stops.
struct DevDir(PathBuf);

impl Drop for DevDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn run(
    options: &LoadOptions,
    mut config: Config,
    log: LogHandle,
    out: &mut dyn Write,
) -> Result<(), Error> {
    // -dev: a temporary data dir and, unless a key was given, a fresh key.
    let mut _dev_dir = None;
    if config.agent.dev {
        if config.agent.data_dir.is_none() {
            let dir = std::env::temp_dir().join(format!("consul-sec-dev-{}", std::process::id()));
            config.agent.data_dir = Some(dir.clone());
            _dev_dir = Some(DevDir(dir));
        }
        if config.gossip.encrypt.is_none() {
            let key = SecretKey::generate(KeySize::Aes256).map_err(Error::KeyringSetup)?;
            config.gossip.encrypt = Some(key);
        }
    }
    // TLS material for HTTPS is loaded before anything starts, as Consul's
    // TLS configurator is.
    let https_tls = match config.agent.ports.https {
        Some(port) => {
            https_has_certificate(port, &config.tls.https)?;
            Some(Arc::new(TlsConfigurator::new(&config.tls.https).map_err(Error::Tls)?))
        }
        None => None,
    };
    // Internal RPC TLS: the RPC port of servers and every agent's outgoing RPC.
    let rpc_tls = Arc::new(TlsConfigurator::new(&config.tls.internal_rpc).map_err(Error::RpcTls)?);
    let _lock = match &config.agent.data_dir {
        Some(dir) => Some(DataDirLock::acquire(dir)?),
        None => None,
    };
    let _ = writeln!(out, "==> Starting Consul agent...");
    log_certificate_problems(&config, https_tls.as_deref(), &rpc_tls);
    let KeyringSetup { store, warnings, .. } =
        setup_keyring(&config.gossip, config.agent.data_dir.as_deref())?;
    for warning in &warnings {
        let _ = writeln!(out, "==> {warning}");
        tracing::warn!(keyring = "LAN", "{warning}");
    }
    let store = Arc::new(store);
    let encrypted = store.encryption_enabled();

    // Gossip.
    let agent = &config.agent;
    let advertise =
        SocketAddr::new(agent.advertise_addr.unwrap_or(agent.bind_addr), agent.ports.serf_lan);
    let mut security = GossipSecurity::new(store.keyring().clone());
    security.verify_incoming = config.gossip.encrypt_verify_incoming;
    security.verify_outgoing = config.gossip.encrypt_verify_outgoing;
    let mut node_config = NodeConfig::new(agent.node_name.clone(), advertise);
    node_config.tags = consul_tags(&config);
    node_config.timing = Timing::lan();
    node_config.security = security;
    node_config.rng_seed = std::hash::RandomState::new().build_hasher().finish();
    // The node saves the ring before answering a key query (as serf does)
    // through the store, so its writes and the API's are serialised by the
    // store's lock and the last write always holds the latest ring.
    let saver_store = Arc::clone(&store);
    node_config.keyring_saver =
        Some(KeyringSaver::new(move |_| saver_store.persist().map_err(|e| e.to_string())));
    let node = GossipNode::start(GossipOptions {
        config: node_config,
        bind: SocketAddr::new(agent.bind_addr, agent.ports.serf_lan),
        keyring_file: None,
    })
    .await
    .map_err(Error::Gossip)?;
    let lan_port = node.local_addr().port();
    let gossip = Arc::new(GossipCluster::new(node, agent.datacenter.clone(), Arc::clone(&store)));
    // Every agent dials servers with one pooled client (servers too: the
    // RPC ping diagnostic). Servers answer keyring operations from their own
    // pool; clients forward them over RPC.
    let pool = PoolConfig { datacenter: agent.datacenter.clone(), ..PoolConfig::default() };
    let rpc_client = RpcClient::new(Arc::clone(&rpc_tls), pool);
    let cluster = if agent.server {
        ForwardToServers::local(Arc::clone(&gossip))
    } else {
        ForwardToServers::new(Arc::clone(&gossip), rpc_client.clone())
    };
    let state = Arc::new(ApiState {
        cluster,
        config: SelfConfig {
            datacenter: agent.datacenter.clone(),
            primary_datacenter: agent.datacenter.clone(),
            node_name: agent.node_name.clone(),
            node_id: String::new(),
            server: agent.server,
            version: VERSION.to_owned(),
            revision: String::new(),
        },
        rpc: Some(rpc_client),
        // Read per request by /v1/agent/self: the shared keyring and the
        // configurators a SIGHUP swaps.
        encryption: EncryptionSources {
            keyring: Some(Arc::clone(&store)),
            encrypt_verify_incoming: config.gossip.encrypt_verify_incoming,
            encrypt_verify_outgoing: config.gossip.encrypt_verify_outgoing,
            internal_rpc: Some(Arc::clone(&rpc_tls)),
            https: https_tls.clone(),
        },
    });

    // HTTP and HTTPS on every client address.
    let (stop_tx, stop_rx) = watch::channel(false);

    // Connections per client IP; a reload changes the limits in place.
    let rpc_limiter = ConnLimiter::new(agent.limits.rpc_max_conns_per_client);
    let http_limiter = ConnLimiter::new(agent.limits.http_max_conns_per_client);

    // The RPC port (servers only) on the bind address, first byte + TLS policy per connection.
    if agent.server {
        let addr = SocketAddr::new(agent.bind_addr, agent.ports.server);
        let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind {
            what: "RPC",
            addr,
            source,
        })?;
        let server = Arc::new(
            RpcServer::new(Arc::clone(&rpc_tls), Arc::clone(&gossip))
                .with_conn_limiter(Arc::clone(&rpc_limiter)),
        );
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = server.serve(listener) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
    }
    let mut http_port = None;
    let mut https_port = None;
    let listeners =
        [("HTTP", agent.ports.http, None), ("HTTPS", agent.ports.https, https_tls.clone())];
    for (what, port, tls) in listeners {
        let Some(port) = port else { continue };
        for ip in &agent.client_addr {
            let addr = SocketAddr::new(*ip, port);
            let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind {
                what,
                addr,
                source,
            })?;
            let bound = listener.local_addr().map(|a| a.port()).unwrap_or(port);
            if tls.is_some() {
                https_port.get_or_insert(bound)
            } else {
                http_port.get_or_insert(bound)
            };
            let limiter = Arc::clone(&http_limiter);
            tokio::spawn(serve(
                listener,
                tls.clone(),
                Arc::clone(&state),
                limiter,
                stop_rx.clone(),
            ));
        }
    }

    // -join / start_join must succeed; retry_join keeps trying in the background.
    if !agent.start_join.is_empty() {
        let (seeds, unresolved) = resolve(&agent.start_join, agent.ports.serf_lan).await;
        let joined = join_seeds(&gossip, &seeds, &unresolved)
            .await
            .map_err(|message| Error::Join { addresses: agent.start_join.join(", "), message })?;
        tracing::info!(num_joined = joined, "agent: joined");
    }
    if !agent.retry_join.is_empty() {
        let gossip = Arc::clone(&gossip);
        let addresses = agent.retry_join.clone();
        let default_port = agent.ports.serf_lan;
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                let (seeds, unresolved) = resolve(&addresses, default_port).await;
                match join_seeds(&gossip, &seeds, &unresolved).await {
                    Ok(n) => {
                        tracing::info!(num_joined = n, "agent: Join completed");
                        return;
                    }
                    Err(err) => tracing::warn!(error = %err, "agent: Join failed, retrying"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_JOIN_INTERVAL) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
    }

    let _ = write!(out, "{}", banner(&config, encrypted, http_port, https_port, lan_port));
    let _ = out.flush();
    tracing::info!(node = %config.agent.node_name, "agent: started");

    let signal_error = |source| Error::Runtime { what: "installing signal handlers", source };
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_error)?;
    loop {
        let name = tokio::select! {
            _ = interrupt.recv() => "interrupt",
            _ = terminate.recv() => "terminated",
            _ = hangup.recv() => {
                let _ = writeln!(out, "==> Caught signal: hangup");
                let _ = writeln!(out, "==> Reloading configuration...");
                let _ = out.flush();
                let limiters = Limiters { http: &http_limiter, rpc: &rpc_limiter };
                reload_config(options, &config, &log, https_tls.as_deref(), &rpc_tls, limiters);
                continue;
            }
        };
        let _ = writeln!(out, "==> Caught signal: {name}");
        let _ = writeln!(out, "==> Gracefully shutting down agent...");
        let _ = out.flush();
        break;
    }
    gossip.leave().await;
    let _ = stop_tx.send(true);
    tracing::info!("agent: shutdown complete");
    Ok(())
}

/// An HTTPS listener on `port` needs a certificate to serve (checked at
/// start and on every reload; `validate` warns about the same).
fn https_has_certificate(port: u16, policy: &TlsPolicy) -> Result<(), Error> {
    match policy.cert_file {
        Some(_) => Ok(()),
        None => Err(Error::HttpsWithoutCertificate { port }),
    }
}

/// Logs a warning for each problem of the certificates in force (expired,
/// not yet valid, expiring within 30 days, lacking the EKU or the
/// `server.<dc>.<domain>` name the agent's role needs): the agent runs, but
/// peers will refuse it or soon will.
fn log_certificate_problems(
    config: &Config,
    https: Option<&TlsConfigurator>,
    internal_rpc: &TlsConfigurator,
) {
    let agent = &config.agent;
    for (stanza, configurator) in [("internal_rpc", Some(internal_rpc)), ("https", https)] {
        let Some(configurator) = configurator else { continue };
        for problem in certificate_problems(configurator, agent.server, &agent.datacenter) {
            tracing::warn!("agent: tls.{stanza} certificate: {problem}");
        }
    }
}

/// The settings that differ between the running configuration and a
/// reloaded one but only take effect on a restart (addresses, ports, names,
/// the server role, the gossip verify flags).
fn restart_only_changes(running: &Config, new: &Config) -> Vec<&'static str> {
    let (a, b) = (&running.agent, &new.agent);
    let (p, q) = (&a.ports, &b.ports);
    let (g, h) = (&running.gossip, &new.gossip);
    [
        ("datacenter", a.datacenter != b.datacenter),
        ("node_name", a.node_name != b.node_name),
        ("server", a.server != b.server),
        ("bind_addr", a.bind_addr != b.bind_addr),
        ("advertise_addr", a.advertise_addr != b.advertise_addr),
        ("client_addr", a.client_addr != b.client_addr),
        ("ports.http", p.http != q.http),
        ("ports.https", p.https != q.https),
        ("ports.serf_lan", p.serf_lan != q.serf_lan),
        ("ports.server", p.server != q.server),
        ("encrypt_verify_incoming", g.encrypt_verify_incoming != h.encrypt_verify_incoming),
        ("encrypt_verify_outgoing", g.encrypt_verify_outgoing != h.encrypt_verify_outgoing),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

/// The per-client connection limiters a reload updates.
#[derive(Clone, Copy)]
struct Limiters<'a> {
    http: &'a ConnLimiter,
    rpc: &'a ConnLimiter,
}

/// SIGHUP: reloads the log level, the connection limits, the HTTPS certificates and the internal
/// RPC TLS policy (on the RPC port, new connections only, as Consul; the
/// agent's own RPC client drops idle connections of the old policy). All
/// or nothing: a configuration that no longer loads, or TLS files that do
/// not, is logged and the running settings are kept, as Consul aborts such
/// a reload.
fn reload_config(
    options: &LoadOptions,
    running: &Config,
    log: &LogHandle,
    https_tls: Option<&TlsConfigurator>,
    rpc_tls: &TlsConfigurator,
    limiters: Limiters<'_>,
) {
    let loaded = match load(options, std::env::vars_os()) {
        Ok(loaded) => loaded,
        Err(err) => {
            tracing::error!("agent: Failed to reload configs: {err}");
            tracing::error!("agent: Failed to reload configs: nothing was changed");
            return;
        }
    };
    let tls = &loaded.config.tls;
    // The listener keeps its port until a restart; the reloaded policy must
    // still give it a certificate.
    let https_port = running.agent.ports.https;
    let https = https_tls.zip(https_port).map(|(_, port)| {
        https_has_certificate(port, &tls.https).map_err(|e| e.to_string())?;
        tls.https.load().map_err(|e| format!("tls.https: {e}"))
    });
    let rpc = tls.internal_rpc.load().map_err(|e| format!("tls.internal_rpc: {e}"));
    let (https, rpc) = match (https.transpose(), rpc) {
        (Ok(https), Ok(rpc)) => (https, rpc),
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!("agent: Failed reloading tls configuration: {err}");
            tracing::error!("agent: Failed to reload configs: nothing was changed");
            return;
        }
    };
    for key in restart_only_changes(running, &loaded.config) {
        tracing::warn!(
            "agent: {key} changed in the configuration; a reload does not apply it, restart the agent"
        );
    }
    let level = loaded.config.agent.log_level.as_str();
    if let Some(handle) = log
        && let Err(err) = handle.reload(EnvFilter::new(level))
    {
        tracing::error!(error = %err, "agent: cannot change the log level");
    }
    if let (Some(configurator), Some(https)) = (https_tls, https) {
        configurator.swap(https);
    }
    let rpc = rpc_tls.swap(rpc);
    log_certificate_problems(&loaded.config, https_tls, rpc_tls);
    let limits = loaded.config.agent.limits;
    limiters.http.set_max(limits.http_max_conns_per_client);
    limiters.rpc.set_max(limits.rpc_max_conns_per_client);
    tracing::info!(
        log_level = level,
        rpc_tls = rpc.verify_outgoing_effective(),
        tls_incoming = rpc.policy().verify_incoming,
        "agent: reloaded configuration"
    );
}

/// Resolves join addresses (`host`, `host:port`, `[v6]:port`), with the
/// LAN port as the default. Returns the addresses found and, for each name
/// that did not resolve, why.
async fn resolve(addresses: &[String], default_port: u16) -> (Vec<SocketAddr>, Vec<String>) {
    let mut seeds = Vec::new();
    let mut unresolved = Vec::new();
    for address in addresses {
        if let Ok(ip) = address.parse::<IpAddr>() {
            seeds.push(SocketAddr::new(ip, default_port));
            continue;
        }
        let with_port = if address
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.ends_with(':') && p.parse::<u16>().is_ok())
        {
            address.clone()
        } else {
            format!("{address}:{default_port}")
        };
        match tokio::net::lookup_host(&with_port).await {
            Ok(mut found) => match found.next() {
                Some(addr) => seeds.push(addr),
                None => unresolved.push(format!("{address}: no address found")),
            },
            Err(err) => unresolved.push(format!("{address}: cannot resolve: {err}")),
        }
    }
    (seeds, unresolved)
}

/// Joins through the resolved `seeds`; the error names every seed that
/// failed and every address that did not resolve.
async fn join_seeds(
    gossip: &GossipCluster,
    seeds: &[SocketAddr],
    unresolved: &[String],
) -> Result<usize, String> {
    let result = if seeds.is_empty() { Err(String::new()) } else { gossip.join(seeds).await };
    if result.is_ok() {
        for reason in unresolved {
            tracing::warn!("agent: join: {reason}");
        }
    }
    result.map_err(|message| {
        let mut reasons: Vec<&str> = Vec::new();
        if !message.is_empty() {
            reasons.push(&message);
        }
        reasons.extend(unresolved.iter().map(String::as_str));
        reasons.join("; ")
    })
}

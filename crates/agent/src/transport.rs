//! The gossip transport: one UDP socket and one TCP listener on the same
//! `ip:port` (as memberlist uses them), driving the sans-IO
//! [`consul_sec_gossip::Node`] with real time.
//!
//! [`GossipNode::start`] binds the sockets and spawns the tasks; the handle
//! offers membership ([`GossipNode::members`], [`GossipNode::join`],
//! [`GossipNode::leave`]) and cluster-wide key management
//! ([`GossipNode::install_key`] and friends), which go to every member,
//! serf agents included, through serf's internal key queries.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use consul_sec_gossip::{
    Config, Event, KeyOp, KeyQueryResult, KeyringSaver, Member, Node, QueryId, StreamId, Transmit,
};
use consul_sec_gossip_crypto::ENCRYPT_MSG_TYPE;
use consul_sec_gossip_wire::{MAX_STREAM_LEN, stream_frame_len};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, broadcast, oneshot};
use tokio::task::JoinHandle;

/// memberlist's LAN `TCPTimeout`: the bound on one stream exchange.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// memberlist's UDP receive buffer.
const UDP_RECV: usize = 65536;

/// What can go wrong running a gossip node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GossipError {
    /// Binding the UDP socket or TCP listener failed.
    #[error("{addr}: cannot bind gossip socket: {source}")]
    Bind {
        /// The address we tried.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Every seed of a join failed; each entry names the seed and why.
    #[error("join failed: {}", .errors.iter().map(|(a, e)| format!("{a}: {e}")).collect::<Vec<_>>().join("; "))]
    Join {
        /// Per-seed failures.
        errors: Vec<(SocketAddr, String)>,
    },
    /// The tags do not fit in node meta, or another start-up check failed.
    #[error("node: {0}")]
    Node(#[source] consul_sec_gossip::Error),
    /// The node was shut down while an operation was in flight.
    #[error("node: shut down")]
    ShutDown,
}

/// Settings beyond the protocol core's [`Config`].
#[derive(Debug, Clone)]
pub struct GossipOptions {
    /// The protocol settings; `advertise` port 0 means "the bound port".
    pub config: Config,
    /// Where to bind UDP and TCP (port 0 picks a free port).
    pub bind: SocketAddr,
    /// Keyring file rewritten after every key change (serf's `-keyring-file`).
    pub keyring_file: Option<PathBuf>,
}

type Waiters<K, V> = Mutex<HashMap<K, oneshot::Sender<V>>>;

struct Shared {
    node: Mutex<Node>,
    udp: Arc<UdpSocket>,
    notify: Notify,
    events: broadcast::Sender<Event>,
    streams: Waiters<StreamId, Result<(), String>>,
    queries: Waiters<QueryId, KeyQueryResult>,
    local: SocketAddr,
    /// Set when the handle is dropped: tasks still finishing an exchange
    /// must not send anything on behalf of a stopped node.
    closed: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn node(&self) -> std::sync::MutexGuard<'_, Node> {
        self.node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Encryption is on and `verify_incoming` is set: a plaintext stream
    /// would be refused anyway once read, so it is refused at its first byte.
    fn refuses_plaintext_streams(&self) -> bool {
        let node = self.node();
        let security = node.security();
        security.encryption_enabled() && security.verify_incoming
    }

    /// Sends what the node wants sent and dispatches its events. Never
    /// awaits, so it can run right after any change to the node.
    fn pump(self: &Arc<Self>) {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let (transmits, events) = {
            let mut n = self.node();
            let mut t = Vec::new();
            while let Some(x) = n.poll_transmit() {
                t.push(x);
            }
            let mut e = Vec::new();
            while let Some(x) = n.poll_event() {
                e.push(x);
            }
            (t, e)
        };
        for e in events {
            log_member_event(&e);
            if let Event::KeyQueryFinished { id, result, .. } = &e {
                let w = self.queries.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
                if let Some(w) = w {
                    let _ = w.send(result.clone());
                }
            }
            let _ = self.events.send(e);
        }
        for t in transmits {
            match t {
                Transmit::Packet { to, bytes } => {
                    if let Err(e) = self.udp.try_send_to(&bytes, to) {
                        tracing::debug!(%to, error = %e, "udp send failed");
                    }
                }
                Transmit::Stream { id, to, bytes, expects_reply } => {
                    let me = Arc::clone(self);
                    let refuse_plaintext = self.refuses_plaintext_streams();
                    tokio::spawn(async move {
                        let exchange = exchange(to, &bytes, expects_reply, refuse_plaintext);
                        let res = tokio::time::timeout(TCP_TIMEOUT, exchange)
                            .await
                            .unwrap_or_else(|_| Err("i/o timeout".to_owned()));
                        let outcome = if expects_reply {
                            let reply = res.map(|r| r.unwrap_or_default());
                            me.node()
                                .handle_stream_response(Instant::now(), id, reply)
                                .map_err(|e| e.to_string())
                        } else {
                            res.map(|_| ())
                        };
                        if let Some(w) =
                            me.streams.lock().unwrap_or_else(PoisonError::into_inner).remove(&id)
                        {
                            let _ = w.send(outcome);
                        } else if let Err(e) = outcome {
                            tracing::debug!(%to, error = %e, "stream exchange failed");
                        }
                        me.pump();
                        me.notify.notify_one();
                    });
                }
            }
        }
    }
}

/// Writes one request and, when asked, reads one complete stream message back.
async fn exchange(
    to: SocketAddr,
    bytes: &[u8],
    expects_reply: bool,
    refuse_plaintext: bool,
) -> Result<Option<Vec<u8>>, String> {
    let mut s = TcpStream::connect(to).await.map_err(|e| e.to_string())?;
    s.write_all(bytes).await.map_err(|e| e.to_string())?;
    if !expects_reply {
        return Ok(None);
    }
    read_message(&mut s, refuse_plaintext).await.map(Some)
}

/// The most a stream message may take: memberlist's 20 MiB plus the
/// encrypted frame's 5-byte header.
const MAX_STREAM_BUFFER: usize = 5 + MAX_STREAM_LEN as usize;

/// Reads one complete stream message. With `refuse_plaintext` (encryption
/// on and `verify_incoming`), a stream that does not start with an
/// encrypted frame is handed over at its first bytes, before anything is
/// parsed or buffered: the node refuses it from those.
async fn read_message(s: &mut TcpStream, refuse_plaintext: bool) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if refuse_plaintext && buf.first().is_some_and(|&b| b != ENCRYPT_MSG_TYPE) {
            // The node refuses it from these bytes alone, answering with
            // memberlist's (encrypted) error reply as before.
            return Ok(buf);
        }
        match stream_frame_len(&buf) {
            Ok(Some(n)) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Ok(None) if buf.len() > MAX_STREAM_BUFFER => {
                return Err(format!("stream message larger than {MAX_STREAM_BUFFER} bytes"));
            }
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a complete message".to_owned());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        // Take in what has already arrived before parsing again: finding
        // the end of a plaintext message means parsing it from the start,
        // so parsing after every 16 KiB read would be quadratic.
        while buf.len() <= MAX_STREAM_BUFFER {
            match s.try_read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// A running gossip node. Dropping the handle stops it abruptly (no leave).
pub struct GossipNode {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for GossipNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipNode").field("local", &self.shared.local).finish_non_exhaustive()
    }
}

impl GossipNode {
    /// Binds UDP and TCP on `opts.bind` and starts the node's tasks.
    pub async fn start(opts: GossipOptions) -> Result<Self, GossipError> {
        let (udp, tcp) = bind_pair(opts.bind).await?;
        let local =
            udp.local_addr().map_err(|source| GossipError::Bind { addr: opts.bind, source })?;
        let mut cfg = opts.config;
        if let Some(path) = opts.keyring_file {
            // serf rewrites its keyring file before answering a key query;
            // the node calls this hook at that point.
            cfg.keyring_saver = Some(KeyringSaver::new(move |ring| {
                consul_sec_gossip_crypto::save_keyring_file(&path, ring).map_err(|e| e.to_string())
            }));
        }
        if cfg.advertise.port() == 0 {
            cfg.advertise.set_port(local.port());
        }
        if cfg.advertise.ip().is_unspecified() {
            cfg.advertise.set_ip(local.ip());
        }
        let node = Node::try_new(cfg, Instant::now()).map_err(GossipError::Node)?;
        let udp = Arc::new(udp);
        let shared = Arc::new(Shared {
            node: Mutex::new(node),
            udp: Arc::clone(&udp),
            notify: Notify::new(),
            events: broadcast::channel(1024).0,
            streams: Mutex::new(HashMap::new()),
            queries: Mutex::new(HashMap::new()),
            local,
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        let driver = tokio::spawn(drive(Arc::clone(&shared), udp));
        let acceptor = tokio::spawn(accept(Arc::clone(&shared), tcp));
        Ok(Self { shared, tasks: vec![driver, acceptor] })
    }

    /// The bound gossip address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// The node's name.
    pub fn name(&self) -> String {
        self.shared.node().name().to_owned()
    }

    /// The node's current memberlist incarnation.
    pub fn incarnation(&self) -> u32 {
        self.shared.node().incarnation()
    }

    /// The security settings (the keyring handle is shared with the node).
    pub fn security(&self) -> consul_sec_gossip::GossipSecurity {
        self.shared.node().security().clone()
    }

    /// Every member, self included.
    pub fn members(&self) -> Vec<Member> {
        self.shared.node().members()
    }

    /// Membership and query events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Joins through the given seeds (push/pull over TCP). Returns how many
    /// seeds answered; fails with every seed's reason when none did.
    pub async fn join(&self, seeds: &[SocketAddr]) -> Result<usize, GossipError> {
        let mut waits = Vec::new();
        {
            let ids = self.shared.node().join(Instant::now(), seeds);
            if ids.len() != seeds.len() {
                // The node could not seal its join message (logged there);
                // that fails every seed alike, so no id belongs to a seed.
                let why = "the join message could not be sealed".to_owned();
                return Err(GossipError::Join {
                    errors: seeds.iter().map(|seed| (*seed, why.clone())).collect(),
                });
            }
            let mut w = self.shared.streams.lock().unwrap_or_else(PoisonError::into_inner);
            for (id, seed) in ids.into_iter().zip(seeds) {
                let (tx, rx) = oneshot::channel();
                w.insert(id, tx);
                waits.push((*seed, rx));
            }
        }
        self.shared.pump();
        self.shared.notify.notify_one();
        let mut ok = 0;
        let mut errors = Vec::new();
        for (seed, rx) in waits {
            match rx.await {
                Ok(Ok(())) => ok += 1,
                // The node's errors already start with the address.
                Ok(Err(e)) => {
                    let e = e.strip_prefix(&format!("{seed}: ")).map(str::to_owned).unwrap_or(e);
                    errors.push((seed, e));
                }
                Err(_) => errors.push((seed, "node shut down".to_owned())),
            }
        }
        if ok == 0 {
            return Err(GossipError::Join { errors });
        }
        // The join succeeded through other seeds; say which ones failed.
        for (seed, error) in &errors {
            tracing::warn!(%seed, %error, "join: could not join through this address");
        }
        Ok(ok)
    }

    /// Leaves gracefully (leave intent + `dead` about ourselves to every
    /// member), gives the messages a moment to go out, then stops.
    pub async fn leave(self) {
        self.shared.node().leave(Instant::now());
        self.shared.pump();
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.shutdown();
    }

    /// Stops the node abruptly, as if the process died.
    pub fn shutdown(self) {
        drop(self);
    }

    async fn key_op(&self, op: KeyOp) -> Result<KeyQueryResult, GossipError> {
        let rx = {
            let id = self.shared.node().key_query(Instant::now(), op);
            let (tx, rx) = oneshot::channel();
            self.shared.queries.lock().unwrap_or_else(PoisonError::into_inner).insert(id, tx);
            rx
        };
        self.shared.pump();
        self.shared.notify.notify_one();
        rx.await.map_err(|_| GossipError::ShutDown)
    }

    /// Installs `key` on every member (`_serf_install-key`).
    pub async fn install_key(&self, key: &[u8]) -> Result<KeyQueryResult, GossipError> {
        self.key_op(KeyOp::Install(key.to_vec())).await
    }

    /// Makes `key` the primary key on every member (`_serf_use-key`).
    pub async fn use_key(&self, key: &[u8]) -> Result<KeyQueryResult, GossipError> {
        self.key_op(KeyOp::Use(key.to_vec())).await
    }

    /// Removes `key` from every member (`_serf_remove-key`); removing a
    /// primary key is refused by each node.
    pub async fn remove_key(&self, key: &[u8]) -> Result<KeyQueryResult, GossipError> {
        self.key_op(KeyOp::Remove(key.to_vec())).await
    }

    /// Lists the keys of every member (`_serf_list-keys`).
    pub async fn list_keys(&self) -> Result<KeyQueryResult, GossipError> {
        self.key_op(KeyOp::List).await
    }
}

impl Drop for GossipNode {
    fn drop(&mut self) {
        self.shared.closed.store(true, std::sync::atomic::Ordering::Release);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds UDP first (possibly on port 0), then TCP on the same port; retries
/// with a new port if that port is taken for TCP.
async fn bind_pair(addr: SocketAddr) -> Result<(UdpSocket, TcpListener), GossipError> {
    const ATTEMPTS: usize = 30;
    let mut last = None;
    for attempt in 1..=ATTEMPTS {
        // A node restarted on its old port may find a socket still held for
        // a moment by the previous instance's last tasks: retry briefly.
        let retry =
            |e: &std::io::Error| e.kind() == std::io::ErrorKind::AddrInUse && attempt < ATTEMPTS;
        let udp = match UdpSocket::bind(addr).await {
            Ok(u) => u,
            Err(e) if retry(&e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(source) => return Err(GossipError::Bind { addr, source }),
        };
        let local = udp.local_addr().map_err(|source| GossipError::Bind { addr, source })?;
        match TcpListener::bind(local).await {
            Ok(tcp) => return Ok((udp, tcp)),
            // With port 0 the kernel picked a UDP port whose TCP twin is
            // taken: try another port.
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) if retry(&e) => {
                drop(udp);
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(source) => return Err(GossipError::Bind { addr, source }),
        }
    }
    Err(GossipError::Bind {
        addr,
        source: last.unwrap_or_else(|| std::io::Error::other("no free port")),
    })
}

async fn drive(shared: Arc<Shared>, udp: Arc<UdpSocket>) {
    let mut buf = vec![0u8; UDP_RECV];
    loop {
        let deadline = shared.node().poll_timeout();
        let sleep_for = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            r = udp.recv_from(&mut buf) => {
                if let Ok((n, from)) = r
                    && let Some(bytes) = buf.get(..n)
                {
                    shared.node().handle_packet(Instant::now(), from, bytes);
                }
            }
            () = tokio::time::sleep(sleep_for) => {
                shared.node().handle_timeout(Instant::now());
            }
            () = shared.notify.notified() => {}
        }
        shared.pump();
    }
}

async fn accept(shared: Arc<Shared>, tcp: TcpListener) {
    loop {
        let (mut s, from) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, say: back off instead of spinning.
                tracing::warn!(error = %err, "gossip: accepting a stream failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let refuse_plaintext = shared.refuses_plaintext_streams();
            let read =
                tokio::time::timeout(TCP_TIMEOUT, read_message(&mut s, refuse_plaintext)).await;
            let bytes = match read {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    tracing::debug!(%from, error = %e, "bad inbound stream");
                    return;
                }
                Err(_) => return,
            };
            if shared.closed.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            let reply = shared.node().handle_stream(Instant::now(), from, &bytes);
            shared.pump();
            shared.notify.notify_one();
            if let Some(r) = reply {
                let _ = tokio::time::timeout(TCP_TIMEOUT, s.write_all(&r)).await;
                let _ = s.shutdown().await;
            }
        });
    }
}

/// Logs membership changes at INFO in serf's words (`serf: EventMemberJoin:
/// <name> <ip>`), as Consul's agent log shows them.
fn log_member_event(event: &Event) {
    let (what, member) = match event {
        Event::MemberJoin(m) => ("EventMemberJoin", m),
        Event::MemberLeft(m) => ("EventMemberLeave", m),
        Event::MemberFailed(m) => ("EventMemberFailed", m),
        Event::MemberUpdate(m) => ("EventMemberUpdate", m),
        _ => return,
    };
    tracing::info!("serf: {what}: {} {}", member.name, member.addr.ip());
}

//! `consul-sec agent`: runs an agent with encrypted gossip, the persisted
//! keyring and the HTTP API until SIGINT or SIGTERM.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use consul_sec_config::{ConfigPath, FileFormat, Flags, LoadOptions};

/// Arguments of `agent` (Consul's flag names).
// No Debug: `-encrypt` is a gossip key.
#[derive(Args)]
#[command(after_help = "\
-config-file and -config-dir are read in command-line order; later files win. SIGINT/SIGTERM leave \
the cluster and exit 0; SIGHUP reloads log_level and the TLS files and verify settings \
(tls.https, tls.internal_rpc), all or nothing. Logs go to stderr.")]
pub(crate) struct AgentArgs {
    /// Path to a data directory to store agent state
    #[arg(long, value_name = "PATH")]
    data_dir: Option<String>,
    /// Path to a config file to load. Can be specified multiple times
    #[arg(long, value_name = "FILE")]
    config_file: Vec<PathBuf>,
    /// Path to a directory to read configuration files from (.json and .hcl). Can be specified multiple times
    #[arg(long, value_name = "DIR")]
    config_dir: Vec<PathBuf>,
    /// `-config-file` and `-config-dir` merged in command-line order (set
    /// by [`AgentArgs::order_paths`], which `main` calls after parsing).
    #[arg(skip)]
    paths: Vec<ConfigPath>,
    /// Config files are in this format irrespective of their extension. Must be 'hcl' or 'json'
    #[arg(long, value_name = "FORMAT")]
    config_format: Option<String>,
    /// Enable development server mode: a single node with a fresh gossip key and a temporary data dir
    #[arg(long)]
    dev: bool,
    /// Provides the gossip encryption key
    #[arg(long, value_name = "KEY")]
    encrypt: Option<String>,
    /// Name of this node. Must be unique in the cluster
    #[arg(long = "node", value_name = "NAME")]
    node_name: Option<String>,
    /// Datacenter of the agent
    #[arg(long, value_name = "DC")]
    datacenter: Option<String>,
    /// Domain to use for DNS interface
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
    /// Sets address to bind to for cluster communication
    #[arg(long = "bind", value_name = "ADDR")]
    bind_addr: Option<String>,
    /// Sets the advertise address to use
    #[arg(long = "advertise", value_name = "ADDR")]
    advertise_addr: Option<String>,
    /// Sets the address to bind for client access (HTTP API)
    #[arg(long = "client", value_name = "ADDR")]
    client_addr: Option<String>,
    /// Switches agent to server mode
    #[arg(long)]
    server: bool,
    /// Sets server to expect bootstrap mode
    #[arg(long, value_name = "N")]
    bootstrap_expect: Option<u32>,
    /// Address of an agent to join at start time. Can be specified multiple times
    #[arg(long = "join", value_name = "ADDR")]
    start_join: Vec<String>,
    /// Address of an agent to join at start time with retries enabled. Can be specified multiple times
    #[arg(long, value_name = "ADDR")]
    retry_join: Vec<String>,
    /// Log level of the agent
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Sets the HTTP API port to listen on
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    http_port: Option<i32>,
    /// Sets the HTTPS API port to listen on
    #[arg(long, value_name = "PORT", allow_negative_numbers = true)]
    https_port: Option<i32>,
    /// Sets the Serf LAN port to listen on
    #[arg(long, value_name = "PORT")]
    serf_lan_port: Option<i32>,
    /// Sets the server port to listen on
    #[arg(long, value_name = "PORT")]
    server_port: Option<i32>,
    /// Disables the backing up of the keyring to a file
    #[arg(long)]
    disable_keyring_file: bool,
}

impl AgentArgs {
    /// Puts `-config-file` and `-config-dir` in the order they were given
    /// (clap keeps each flag's values, and their positions, apart).
    pub(crate) fn order_paths(&mut self, matches: &clap::ArgMatches) {
        let mut all: Vec<(usize, ConfigPath)> = Vec::new();
        if let Some(indices) = matches.indices_of("config_file") {
            all.extend(indices.zip(self.config_file.iter().cloned().map(ConfigPath::File)));
        }
        if let Some(indices) = matches.indices_of("config_dir") {
            all.extend(indices.zip(self.config_dir.iter().cloned().map(ConfigPath::Dir)));
        }
        all.sort_by_key(|(index, _)| *index);
        self.paths = all.into_iter().map(|(_, path)| path).collect();
    }
}

pub(crate) fn run(args: AgentArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let format = match &args.config_format {
        Some(text) => Some(text.parse::<FileFormat>()?),
        None => None,
    };
    let paths = args.paths;
    let flags = Flags {
        datacenter: args.datacenter,
        domain: args.domain,
        node_name: args.node_name,
        data_dir: args.data_dir,
        server: args.server.then_some(true),
        bootstrap_expect: args.bootstrap_expect,
        bind_addr: args.bind_addr,
        advertise_addr: args.advertise_addr,
        client_addr: args.client_addr,
        http_port: args.http_port,
        https_port: args.https_port,
        serf_lan_port: args.serf_lan_port,
        server_port: args.server_port,
        retry_join: args.retry_join,
        start_join: args.start_join,
        log_level: args.log_level,
        encrypt: args.encrypt.map(Into::into),
        disable_keyring_file: args.disable_keyring_file.then_some(true),
    };
    let options = LoadOptions { paths, format, flags, dev: args.dev };
    consul_sec_agent::run::run_agent(&options, out)?;
    Ok(())
}

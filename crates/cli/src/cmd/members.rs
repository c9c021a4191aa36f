//! `consul-sec members`: the cluster members as the local agent knows them,
//! printed like `consul members`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use consul_sec_agent::client::{
    ApiClient, ClientOptions, filter_members, render_members, render_members_detailed,
};

/// The HTTP API flags every API command takes, with Consul's variables.
#[derive(Debug, Args)]
pub(crate) struct HttpArgs {
    /// The `address:port` of the agent's HTTP API (an https:// scheme selects TLS)
    #[arg(
        long,
        env = "CONSUL_HTTP_ADDR",
        value_name = "ADDRESS",
        default_value = "127.0.0.1:8500"
    )]
    http_addr: String,
    /// Use HTTPS for the API even without an https:// scheme
    #[arg(
        long = "http-ssl",
        env = "CONSUL_HTTP_SSL",
        value_name = "BOOL",
        hide = true,
        value_parser = go_bool
    )]
    http_ssl: Option<bool>,
    /// Path to a CA file to use for TLS when communicating with Consul
    #[arg(long, env = "CONSUL_CACERT", value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Path to a client cert file to use for TLS when 'verify_incoming' is enabled
    #[arg(long, env = "CONSUL_CLIENT_CERT", value_name = "FILE")]
    client_cert: Option<PathBuf>,
    /// Path to a client key file to use for TLS when 'verify_incoming' is enabled
    #[arg(long, env = "CONSUL_CLIENT_KEY", value_name = "FILE")]
    client_key: Option<PathBuf>,
    /// The server name to use as the SNI host when connecting via TLS
    #[arg(long, env = "CONSUL_TLS_SERVER_NAME", value_name = "NAME")]
    tls_server_name: Option<String>,
}

impl HttpArgs {
    /// The API client these flags describe.
    pub(crate) fn client(&self) -> anyhow::Result<ApiClient> {
        ApiClient::new(&ClientOptions {
            http_addr: Some(self.http_addr.clone()),
            https: self.http_ssl.unwrap_or(false),
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            tls_server_name: self.tls_server_name.clone(),
        })
        .context("Error connecting to Consul agent")
    }
}

/// Arguments of `members`.
#[derive(Debug, Args)]
pub(crate) struct MembersArgs {
    /// Provides detailed information about nodes: their tags
    #[arg(long)]
    detailed: bool,
    /// If provided, output is filtered to only nodes matching the regular expression for status
    #[arg(long, value_name = "REGEXP", default_value = ".*")]
    status: String,
    /// Output format: "table" (Consul's) or "json", the API's member objects [consul-sec addition]
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "json"])]
    format: String,
    #[command(flatten)]
    http: HttpArgs,
}

pub(crate) fn run(args: &MembersArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let status = regex_filter(&args.status)?;
    let client = args.http.client()?;
    let members = client.members().context("Error retrieving members")?;
    let members = filter_members(members, &status);
    if args.format == "json" {
        serde_json_pretty(out, &members)?;
    } else if members.is_empty() {
        // Consul prints nothing when no member matches.
    } else if args.detailed {
        out.write_all(render_members_detailed(&members).as_bytes())?;
    } else {
        out.write_all(render_members(&members).as_bytes())?;
    }
    Ok(())
}

fn regex_filter(pattern: &str) -> anyhow::Result<regex::Regex> {
    regex::Regex::new(pattern).context("Failed to compile status regexp")
}

fn serde_json_pretty(
    out: &mut dyn Write,
    members: &[consul_sec_agent::model::AgentMember],
) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, members)?;
    writeln!(out)?;
    Ok(())
}

/// Go's `strconv.ParseBool` for `CONSUL_HTTP_SSL` (`1`, `t`, `true`, ...), as Consul reads it.
fn go_bool(text: &str) -> Result<bool, String> {
    consul_sec_config::parse_go_bool(text)
        .ok_or_else(|| format!("{text:?} is not a boolean (1, t, true, 0, f, false, ...)"))
}

//! `consul-sec tls ca create` and `consul-sec tls cert create`: Consul's
//! builtin CA and certificate helpers, writing into the current directory
//! with Consul's file names and output lines.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use anyhow::bail;
use clap::{ArgAction, Args, Subcommand};
use consul_sec_pki::files::{Saved, create_ca_files, create_cert_files, load_ca};
use consul_sec_pki::names::{CA_CERT_TEMPLATE, CA_KEY_TEMPLATE, expand_domain};
use consul_sec_pki::{CaRequest, CertKind, CertRequest, DEFAULT_CA_DAYS, DEFAULT_CERT_DAYS};

/// Arguments of `tls`.
#[derive(Debug, Args)]
pub(crate) struct TlsArgs {
    #[command(subcommand)]
    command: TlsCommand,
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Helpers for CAs
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Helpers for certificates
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
}

#[derive(Debug, Subcommand)]
enum CaCommand {
    /// Create a new consul CA
    Create(CaCreateArgs),
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Create a new certificate
    Create(CertCreateArgs),
}

/// Arguments of `tls ca create`. Boolean flags accept Go's `-flag=true`
/// and `-flag=false` forms as well as a bare `-flag`.
#[derive(Debug, Args)]
#[command(
    after_help = "Writes <domain>-agent-ca.pem and <domain>-agent-ca-key.pem (mode 0600) to the \
current directory; fails without writing anything if either exists."
)]
struct CaCreateArgs {
    /// Provide number of days the CA is valid for from now on
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CA_DAYS)]
    days: u32,
    /// Domain of consul cluster: file-name prefix and, with -name-constraint, the permitted domain
    #[arg(long, value_name = "D", default_value = "consul")]
    domain: String,
    /// Add critical name constraints to the CA: only the domain and localhost (and any additional constraints) are permitted
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, value_name = "BOOL",
          default_value = "false", default_missing_value = "true", hide_default_value = true,
          hide_possible_values = true)]
    name_constraint: bool,
    /// Add an additional permitted DNS name constraint; repeatable. [consul-sec: requires -name-constraint, Consul ignores it otherwise]
    #[arg(long, value_name = "N", requires = "name_constraint")]
    additional_name_constraint: Vec<String>,
    /// Common name of the CA (default: Consul Agent CA <serial>)
    #[arg(long, value_name = "CN")]
    common_name: Option<String>,
}

/// Arguments of `tls cert create`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exactly one of -server, -client or -cli is required. The certificate and its key \
are written to the current directory as <dc>-<server|client|cli>-<domain>-<n>.pem and \
<...>-<n>-key.pem with the first free <n>; keys get mode 0600 and no file is ever overwritten."
)]
struct CertCreateArgs {
    /// Generate server certificate
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, value_name = "BOOL",
          default_value = "false", default_missing_value = "true", hide_default_value = true,
          hide_possible_values = true)]
    server: bool,
    /// Generate client certificate
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, value_name = "BOOL",
          default_value = "false", default_missing_value = "true", hide_default_value = true,
          hide_possible_values = true)]
    client: bool,
    /// Generate cli certificate
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true, value_name = "BOOL",
          default_value = "false", default_missing_value = "true", hide_default_value = true,
          hide_possible_values = true)]
    cli: bool,
    /// Provide path to the ca; the first #DOMAIN# is replaced by -domain
    #[arg(long, value_name = "FILE", default_value = CA_CERT_TEMPLATE)]
    ca: String,
    /// Provide path to the key; the first #DOMAIN# is replaced by -domain
    #[arg(long, value_name = "FILE", default_value = CA_KEY_TEMPLATE)]
    key: String,
    /// Provide the datacenter: part of the certificate's names and file name
    #[arg(long, value_name = "DC", default_value = "dc1")]
    dc: String,
    /// Provide the domain: part of the certificate's names, file name and default -ca/-key paths
    #[arg(long, value_name = "D", default_value = "consul")]
    domain: String,
    /// Provide number of days the certificate is valid for from now on
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CERT_DAYS)]
    days: u32,
    /// When generating a server cert and this is set an additional dns name is included of the form <node>.server.<datacenter>.<domain>
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Provide an additional dnsname for Subject Alternative Names; repeatable
    #[arg(long, value_name = "NAME")]
    additional_dnsname: Vec<String>,
    /// Provide an additional ipaddress for Subject Alternative Names; repeatable
    #[arg(long, value_name = "IP")]
    additional_ipaddress: Vec<IpAddr>,
}

const SERVER_WARNING: &str = "==> WARNING: Server Certificates grants authority to become a
    server and access all state in the cluster including root keys
    and all ACL tokens. Do not distribute them to production hosts
    that are not server nodes. Store them as securely as CA keys.";

/// Consul writes into the current directory and prints bare file names;
/// joining onto an empty path keeps names (and error messages) relative.
fn cwd() -> &'static Path {
    Path::new("")
}

pub(crate) fn run(args: TlsArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    match args.command {
        TlsCommand::Ca { command: CaCommand::Create(args) } => ca_create(args, out),
        TlsCommand::Cert { command: CertCommand::Create(args) } => cert_create(args, out),
    }
}

fn ca_create(args: CaCreateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    // clap's `requires` is satisfied by an explicit `-name-constraint=false`.
    if !args.name_constraint && !args.additional_name_constraint.is_empty() {
        bail!("-additional-name-constraint requires -name-constraint");
    }
    let request = CaRequest {
        domain: args.domain,
        days: args.days,
        name_constraint: args.name_constraint,
        additional_name_constraints: args.additional_name_constraint,
        common_name: args.common_name,
    };
    let saved = create_ca_files(cwd(), &request)?;
    print_saved(&saved, out)
}

fn cert_create(args: CertCreateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    // Consul's checks and messages, in Consul's order.
    if args.ca.is_empty() {
        bail!("Please provide the ca");
    }
    if args.key.is_empty() {
        bail!("Please provide the key");
    }
    let kind = match (args.server, args.client, args.cli) {
        (true, false, false) => CertKind::Server,
        (false, true, false) => CertKind::Client,
        (false, false, true) => CertKind::Cli,
        _ => bail!("Please provide either -server, -client, or -cli"),
    };
    if args.node.is_some() && kind != CertKind::Server {
        bail!("-node requires -server");
    }
    let ca_path = expand_domain(&args.ca, &args.domain);
    let key_path = expand_domain(&args.key, &args.domain);
    let request = CertRequest {
        kind,
        dc: args.dc,
        domain: args.domain,
        days: args.days,
        node: args.node,
        additional_dns_names: args.additional_dnsname,
        additional_ips: args.additional_ipaddress,
    };
    let ca = load_ca(Path::new(&ca_path), Path::new(&key_path))?;
    let saved = create_cert_files(cwd(), &ca, &request)?;
    if kind == CertKind::Server {
        writeln!(out, "{SERVER_WARNING}")?;
    }
    writeln!(out, "==> Using {ca_path} and {key_path}")?;
    print_saved(&saved, out)
}

fn print_saved(saved: &Saved, out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(out, "==> Saved {}", saved.cert.display())?;
    writeln!(out, "==> Saved {}", saved.key.display())?;
    Ok(())
}

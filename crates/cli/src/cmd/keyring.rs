//! `consul-sec keyring`: list, install, use and remove gossip keys on every
//! member through the agent's HTTP API, with Consul's flags and output.

use std::io::Write;

use anyhow::bail;
use clap::Args;
use consul_sec_agent::client::{KeyringAction, render_keyring};

use super::members::HttpArgs;

const USAGE: &str = "\
Usage: consul-sec keyring [options]

  Manages encryption keys used for gossip messages. Gossip encryption is
  optional. When enabled, this command may be used to examine active
  encryption keys in the cluster, add new keys, and remove old ones. When
  combined, this functionality provides the ability to perform key rotation
  cluster-wide, without disrupting the cluster.

  All operations performed by this command can only be run against server
  nodes, and affect both the LAN and WAN keyrings in lock-step.

  All variations of the keyring command return 0 if all nodes reply and there
  are no errors. If any node fails to reply or reports failure, the exit code
  will be 1.

  Exactly one of -list, -list-primary, -install, -use or -remove is required.";

/// Arguments of `keyring`.
// No Debug: `-install`, `-use` and `-remove` take a gossip key.
#[derive(Args)]
#[command(after_help = "Returns 0 if all nodes reply without error, 1 otherwise.")]
pub(crate) struct KeyringArgs {
    /// Install a new encryption key. This will broadcast the new key to all members in the cluster
    #[arg(long, value_name = "KEY")]
    install: Option<String>,
    /// Change the primary encryption key, which is used to encrypt messages. The key must already be installed
    #[arg(long = "use", value_name = "KEY")]
    use_key: Option<String>,
    /// Remove the given key from the cluster. This operation may only be performed on keys which are not currently the primary key
    #[arg(long, value_name = "KEY")]
    remove: Option<String>,
    /// List all keys currently in use within the cluster
    #[arg(long)]
    list: bool,
    /// List all primary keys currently in use within the cluster
    #[arg(long)]
    list_primary: bool,
    /// Setting this to a non-zero value will cause nodes to relay their response to the operation through this many randomly-chosen other nodes in the cluster. The maximum allowed value is 5
    #[arg(long, value_name = "N", default_value_t = 0, allow_negative_numbers = true)]
    relay_factor: i64,
    /// Setting this to true will force the keyring query to only hit local servers (no WAN traffic). This flag can only be set for list queries
    #[arg(long)]
    local_only: bool,
    #[command(flatten)]
    http: HttpArgs,
}

pub(crate) fn run(args: &KeyringArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    // Validation in Consul's order and words.
    let actions = [
        args.list,
        args.list_primary,
        args.install.is_some(),
        args.use_key.is_some(),
        args.remove.is_some(),
    ];
    match actions.iter().filter(|set| **set).count() {
        0 => bail!("{USAGE}"),
        1 => {}
        _ => bail!("Only a single action is allowed"),
    }
    let relay_factor = match u8::try_from(args.relay_factor) {
        Ok(n) if n <= 5 => n,
        _ => bail!("Error parsing relay factor: Relay factor must be in range: [0, 5]"),
    };
    if args.local_only && !args.list {
        bail!("Error validating local-only: local-only can only be set for list requests");
    }
    let client = args.http.client()?;

    let (info, action) = if args.list || args.list_primary {
        let info = if args.list {
            "Gathering installed encryption keys..."
        } else {
            "Gathering installed primary encryption keys..."
        };
        (info, KeyringAction::List { local_only: args.local_only })
    } else if let Some(key) = &args.install {
        ("Installing new gossip encryption key...", KeyringAction::Install(key.clone()))
    } else if let Some(key) = &args.use_key {
        ("Changing primary gossip encryption key...", KeyringAction::Use(key.clone()))
    } else if let Some(key) = &args.remove {
        ("Removing gossip encryption key...", KeyringAction::Remove(key.clone()))
    } else {
        bail!("{USAGE}")
    };
    writeln!(out, "==> {info}")?;
    out.flush()?;
    let responses = client.keyring(&action, relay_factor)?;
    if matches!(action, KeyringAction::List { .. }) {
        out.write_all(render_keyring(&responses, args.list_primary).as_bytes())?;
    }
    Ok(())
}

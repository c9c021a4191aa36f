//! `consul-sec keygen`: a new gossip encryption key, as `consul keygen` prints it.

use std::io::Write;

use anyhow::Context as _;
use clap::Args;
use consul_sec_gossip_crypto::{KeySize, SecretKey};

/// Arguments of `keygen`.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Key size in bytes: 16, 24 or 32 (AES-128/192/256-GCM). [consul-sec addition; Consul always uses 32]
    #[arg(long, value_name = "N", default_value = "32", value_parser = parse_key_size)]
    bytes: KeySize,
}

fn parse_key_size(text: &str) -> Result<KeySize, String> {
    text.parse::<usize>()
        .ok()
        .and_then(KeySize::from_len)
        .ok_or_else(|| format!("{text:?} is not a key size: use 16, 24 or 32"))
}

pub(crate) fn run(args: &KeygenArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let key = SecretKey::generate(args.bytes).context("Error reading random data")?;
    writeln!(out, "{}", key.to_base64().as_str())?;
    Ok(())
}

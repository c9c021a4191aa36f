//! One module per subcommand: convert arguments into a library request,
//! make the call, and format the result into the given writer.

use std::io::Write;

use clap::Subcommand;

pub(crate) mod agent;
pub(crate) mod keygen;
pub(crate) mod keyring;
pub(crate) mod members;
pub(crate) mod tls;
pub(crate) mod validate;

/// The subcommands, named as Consul names them.
// No Debug: `agent -encrypt` and `keyring -install/-use/-remove` carry a gossip key.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Runs a Consul agent
    Agent(agent::AgentArgs),
    /// Generates a new encryption key
    Keygen(keygen::KeygenArgs),
    /// Manages gossip layer encryption keys
    Keyring(keyring::KeyringArgs),
    /// Lists the members of a Consul cluster
    Members(members::MembersArgs),
    /// Builtin helpers for creating CAs and certificates
    Tls(tls::TlsArgs),
    /// Validate config files/directories
    Validate(validate::ValidateArgs),
}

/// Runs one subcommand, writing its normal output to `out`.
pub(crate) fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Agent(args) => agent::run(args, out),
        Command::Keygen(args) => keygen::run(&args, out),
        Command::Keyring(args) => keyring::run(&args, out),
        Command::Members(args) => members::run(&args, out),
        Command::Tls(args) => tls::run(args, out),
        Command::Validate(args) => validate::run(&args, out),
    }
}

//! One module per subcommand: convert arguments into a library request,
//! make the call, and format the result into the given writer.

use std::io::Write;

use clap::Subcommand;

pub(crate) mod keygen;

/// The subcommands, named as Consul names them.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Generates a new encryption key
    Keygen(keygen::KeygenArgs),
}

/// Runs one subcommand, writing its normal output to `out`.
pub(crate) fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        Command::Keygen(args) => keygen::run(&args, out),
    }
}

//! The `consul-sec` binary: parse the command line, set up logging, call the
//! subcommand, and map the outcome to Consul's exit codes (0 success,
//! 1 failure, 2 usage).
#![allow(
    rustdoc::invalid_html_tags,
    reason = "clap doc comments are --help text, where <dc> and <n> are placeholders, not HTML"
)]

mod args;
mod cmd;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser};

/// Consul's gossip encryption and RPC TLS, in Rust.
// No Debug: the command line may carry a gossip key (`-encrypt`, `keyring -install`).
#[derive(Parser)]
#[command(
    name = "consul-sec",
    version,
    about = "Consul-compatible gossip encryption and RPC TLS",
    after_help = "Flags may be written in Consul's single-dash style (-bytes=16) or as --bytes 16."
)]
struct Cli {
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let argv = args::normalize(std::env::args_os());
    let parsed = Cli::command()
        .try_get_matches_from(argv)
        .and_then(|matches| Cli::from_arg_matches(&matches).map(|cli| (cli, matches)));
    let cli = match parsed {
        Ok((mut cli, matches)) => {
            if let (cmd::Command::Agent(args), Some(("agent", sub))) =
                (&mut cli.command, matches.subcommand())
            {
                args.order_paths(sub);
            }
            cli
        }
        Err(err) => {
            // Help and version requests are successes; everything else is a usage error.
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = cmd::run(cli.command, &mut out).and_then(|()| out.flush().map_err(Into::into));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// A reader that closed the pipe early (`consul-sec keygen | head -c4`) is not a failure.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

//! Project chores: `cargo xtask <task>`.
#![allow(
    rustdoc::invalid_html_tags,
    reason = "clap doc comments are --help text, where <dc> and <n> are placeholders, not HTML"
)]

mod gen_certs;

use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// consul-sec project chores.
#[derive(Debug, Parser)]
#[command(name = "xtask")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Write a test PKI: a CA plus a certificate and key per server and client node
    GenCerts(gen_certs::GenCerts),
}

fn main() -> ExitCode {
    let xtask = match Xtask::try_parse() {
        Ok(x) => x,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = match xtask.task {
        Task::GenCerts(args) => gen_certs::run(&args, &mut out),
    };
    match result.and_then(|()| out.flush().map_err(Into::into)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(1)
        }
    }
}

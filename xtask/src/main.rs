//! Project chores: `cargo xtask <task>`.

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
enum Task {}

fn main() -> ExitCode {
    let xtask = match Xtask::try_parse() {
        Ok(x) => x,
        Err(err) => {
            let code = if err.use_stderr() { 2 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match xtask.task {}
}

//! Project chores behind `cargo xtask <task>`, also callable from tests so
//! that they use exactly the files the command writes.
#![allow(
    rustdoc::invalid_html_tags,
    reason = "clap doc comments are --help text, where <dc> and <n> are placeholders, not HTML"
)]

pub mod gen_certs;

use std::io::Write;

use clap::{Parser, Subcommand};

/// consul-sec project chores.
#[derive(Debug, Parser)]
#[command(name = "xtask")]
pub struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Write a test PKI: a CA plus a certificate and key per server and client node
    GenCerts(gen_certs::GenCerts),
}

impl Xtask {
    /// Runs the parsed task, writing its report to `out`.
    pub fn run(&self, out: &mut dyn Write) -> anyhow::Result<()> {
        match &self.task {
            Task::GenCerts(args) => gen_certs::run(args, out),
        }
    }
}

/// Parses `args` as the command line after `cargo xtask` (the first item
/// is the program name, as in `std::env::args`) and runs the task: what
/// `cargo xtask gen-certs --out DIR` does, for tests.
pub fn run_from<I, T>(args: I, out: &mut dyn Write) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Xtask::try_parse_from(args)?.run(out)
}

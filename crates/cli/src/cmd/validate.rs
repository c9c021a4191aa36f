//! `consul-sec validate`: load configuration files and directories exactly
//! as the agent would and report every problem, as `consul validate` does.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use clap::Args;
use consul_sec_config::{ConfigPath, FileFormat, LoadOptions, load};

/// Arguments of `validate`.
#[derive(Debug, Args)]
#[command(
    after_help = "Each path is read as the agent reads -config-file: a file must end in .json or .hcl \
(unless -config-format is given); a directory contributes its .json and .hcl files in name order. \
CONSUL_SEC_* environment variables are applied as the agent applies them. Warnings go to stderr."
)]
pub(crate) struct ValidateArgs {
    /// Config files or directories to validate
    #[arg(value_name = "FILE_OR_DIRECTORY")]
    paths: Vec<PathBuf>,
    /// When given, a successful run produces no output
    #[arg(long)]
    quiet: bool,
    /// Config files are in this format irrespective of their extension. Must be 'hcl' or 'json'
    #[arg(long, value_name = "FORMAT")]
    config_format: Option<String>,
    /// Print the resolved TLS and gossip-encryption settings and where each value came from [consul-sec addition]
    #[arg(long)]
    show: bool,
}

pub(crate) fn run(args: &ValidateArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.paths.is_empty() {
        bail!("Must specify at least one config file or directory");
    }
    let format = match &args.config_format {
        Some(text) => Some(text.parse::<FileFormat>()?),
        None => None,
    };
    let options = LoadOptions {
        paths: args.paths.iter().cloned().map(ConfigPath::File).collect(),
        format,
        ..LoadOptions::default()
    };
    match load(&options, std::env::vars_os()) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            if args.show {
                write!(out, "{}", loaded.render_provenance())?;
                writeln!(out)?;
            }
            if !args.quiet {
                writeln!(out, "Configuration is valid!")?;
            }
            Ok(())
        }
        Err(failure) => {
            for warning in &failure.warnings {
                eprintln!("warning: {warning}");
            }
            Err(anyhow!("Config validation failed: {failure}"))
        }
    }
}

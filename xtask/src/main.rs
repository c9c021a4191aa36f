//! Project chores: `cargo xtask <task>`.

use std::io::{self, Write as _};
use std::process::ExitCode;

use clap::Parser as _;
use xtask::Xtask;

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
    match xtask.run(&mut out).and_then(|()| out.flush().map_err(Into::into)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(1)
        }
    }
}

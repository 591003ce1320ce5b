//! `nfcctl`: command-line client of the nfcd D-Bus API (doc/nfcctl.md).
//!
//! Parses the command line, runs it on a single-threaded tokio runtime and exits with the
//! documented status. All the work is in [`nfcd::ctl`].

use std::process::ExitCode;

use clap::Parser;

use nfcd::ctl::{self, Args, ExitStatus};

fn main() -> ExitCode {
    // Usage errors exit here with status 2 (clap's own), help and version with 0.
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("nfcctl: cannot start the async runtime: {err}");
            return ExitCode::from(ExitStatus::Failed.code());
        }
    };
    let status = runtime.block_on(ctl::run(args));
    ExitCode::from(status.code())
}

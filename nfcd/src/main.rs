//! `nfcd`: the NFC card emulation daemon. See `nfcd --help` and doc/config.md.

use std::process::ExitCode;

use clap::Parser;
use nfcd::cli::Cli;
use nfcd::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("nfcd: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = nfcd::logging::init(cli.verbose) {
        eprintln!("nfcd: logging: {e}");
        return ExitCode::from(2);
    }
    // One thread: the tap path runs on it end to end without a thread hop (DESIGN.md,
    // timing budget). Blocking work (I²C) runs on threads of its own.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nfcd: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(nfcd::daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("nfcd: {e}");
            ExitCode::FAILURE
        }
    }
}

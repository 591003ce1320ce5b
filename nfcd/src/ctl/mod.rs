//! `nfcctl`: the command-line client of the nfcd D-Bus API.
//!
//! Contract: each command reads or calls the `org.nfcd.*` interfaces documented in `doc/*-api.md`
//! and prints the answer, as aligned text for people or as JSON for scripts (`--json`).
//! [`run`] turns every outcome into one of the documented exit codes ([`ExitStatus`]); failures
//! are printed on stderr, the answer on stdout. Replies are decoded tolerantly: a missing
//! property or dictionary key is shown as `-` (`null` in JSON), never an error, so that this
//! client works against daemons that have not grown every field yet.
//!
//! What this module does not do: it never starts nfcd (no D-Bus activation: the owner of
//! `org.nfcd` is checked first), never changes state except through `set-default` and the
//! simulator's `tap`, and keeps nothing between runs. The interface names and object paths
//! are those of DESIGN.md "D-Bus API".

pub mod apdu;
pub mod args;
pub mod bus;
pub mod error;
pub mod monitor;
pub mod output;
pub mod routing;
pub mod services;
pub mod status;
pub mod tap;
pub mod value;

pub use args::{Args, Command, Script, Tech};
pub use error::{CtlError, ExitStatus};

use output::Output;

/// Run one command line to completion and say how it ended.
///
/// Errors are printed on stderr here (once, in one place); the caller only exits with the
/// returned status.
pub async fn run(args: Args) -> ExitStatus {
    let out = Output::stdout();
    match run_command(&args, &out).await {
        Ok(()) => ExitStatus::Ok,
        Err(err) => {
            if let Some(text) = err.message() {
                eprintln!("nfcctl: {text}");
            }
            err.exit_status()
        }
    }
}

async fn run_command(args: &Args, out: &Output) -> Result<(), CtlError> {
    let timeout = std::time::Duration::from_secs(args.timeout);
    let client = bus::Client::connect(&args.bus, timeout).await?;
    match &args.command {
        Command::Status => status::run(&client, args.json, out).await,
        Command::Services => services::run(&client, args.json, out).await,
        Command::Routing => routing::run(&client, args.json, out).await,
        Command::Monitor { hex } => monitor::run(&client, args.json, *hex, out).await,
        Command::Tap { script, tech, aid } => {
            let request = tap::TapRequest {
                script: *script,
                tech: *tech,
                aid: aid.as_ref().map(|a| a.0.clone()),
            };
            tap::run(&client, &request, args.json, out).await
        }
        Command::SetDefault { category, id } => {
            services::set_default(&client, category, id, args.json, out).await
        }
    }
}

//! `transit-wallet`: a test stored-value transit card served through nfcd.
//!
//! Registers in category `transit` with one exact AID (default `F04E4643445452414E534954`,
//! i.e. `F0` + "NFCDTRANSIT": ISO/IEC 7816-5 category F, proprietary and unregistered) and
//! answers the transit command set defined in `libnci::sim::scripts` (SELECT, READ BALANCE,
//! DEBIT with a signed receipt, GET PUBLIC KEY; see `nfcd_wallets::transit`), the one the
//! virtual reader's transit gate sends.
//!
//! Receipts are signed with ECDSA P-256 / SHA-256. The key is `--key FILE` (PKCS#8 DER) or
//! generated at start; the public key is printed on stderr either way.
//!
//! Flags: `--bus system|session|<address>`, `--path`, `--id`, `--aid HEX`, `--express`
//! (register with `Express=true`: works while the device is locked), `--state FILE` (keep
//! balance and counter there, `balance=N` / `counter=N` lines, written atomically after every
//! debit), `--balance CENTS` (starting balance when there is no state yet), `--key FILE`,
//! `--channel`, `--set-default` (call `SetDefaultService("transit", id)`), `--verbose`.
//! Exits cleanly, unregistering, on SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nfcd_wallets::cli::{self, ShutdownSignals, Traced};
use nfcd_wallets::hex::{self, HexBytes};
use nfcd_wallets::transit::{self, TransitCard, TransitState};
use nfcd_wallets::{ApduHandler, Bus, Registration};

/// A test stored-value transit card for nfcd.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Bus to find nfcd on: `system`, `session`, or a D-Bus address.
    #[arg(long, default_value = "system")]
    bus: Bus,
    /// Object path to export org.nfcd.HostService1 at.
    #[arg(long, default_value = "/org/nfcd/wallets/transit")]
    path: String,
    /// Service id (reverse DNS).
    #[arg(long, default_value = "org.nfcd.wallets.transit")]
    id: String,
    /// Application AID, hex.
    #[arg(long, default_value = "F04E4643445452414E534954")]
    aid: HexBytes,
    /// Register as an express transit service (works while locked).
    #[arg(long)]
    express: bool,
    /// File keeping balance and counter across runs.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Starting balance in cents when there is no state file yet.
    #[arg(long, default_value_t = 2_000)]
    balance: u32,
    /// Receipt-signing key, PKCS#8 DER (default: a new key for this run).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Also serve APDUs over the OpenApduChannel socket.
    #[arg(long)]
    channel: bool,
    /// Make this the default transit service after registering.
    #[arg(long)]
    set_default: bool,
    /// Print every APDU exchanged.
    #[arg(long, short)]
    verbose: bool,
}

/// Builds the card from the flags; the error is a message for stderr.
fn build_card(args: &Args) -> Result<TransitCard, String> {
    let pkcs8 = match &args.key {
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read key {}: {e}", path.display()))?
        }
        None => transit::generate_key_pkcs8().map_err(|_| "cannot generate a key".to_owned())?,
    };
    let initial = TransitState {
        balance: args.balance,
        counter: 0,
    };
    let state = match &args.state {
        Some(path) => match TransitState::load(path) {
            Ok(Some(state)) => state,
            Ok(None) => {
                // Create the file now, so that an unwritable path fails at start and not on
                // the first gate.
                initial
                    .save(path)
                    .map_err(|e| format!("cannot write state {}: {e}", path.display()))?;
                initial
            }
            Err(e) => return Err(format!("cannot read state {}: {e}", path.display())),
        },
        None => initial,
    };
    let card = TransitCard::new(args.aid.0.clone(), &pkcs8, state)
        .map_err(|e| format!("key is not a P-256 PKCS#8 key: {e}"))?;
    Ok(match &args.state {
        Some(path) => card.with_state_file(path.clone()),
        None => card,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_tracing(args.verbose);
    let card = match build_card(&args) {
        Ok(card) => card,
        Err(message) => {
            eprintln!("transit-wallet: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut signals = match ShutdownSignals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("transit-wallet: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let public_key = hex::encode_upper(card.public_key());
    let state = card.state();
    let handler: Box<dyn ApduHandler> = if args.verbose {
        Box::new(Traced::new(card))
    } else {
        Box::new(card)
    };
    let registration = Registration::new(args.path.as_str())
        .bus(args.bus.clone())
        .id(args.id.as_str())
        .category("transit")
        .name(transit::LABEL)
        .aid(args.aid.0.clone())
        .express(args.express)
        .use_channel(args.channel);
    let default_category = args.set_default.then_some("transit");
    let handle = match cli::register_service(registration, handler, default_category).await {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("transit-wallet: registration failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "transit-wallet: {} registered at {} for AID {}{}; balance {} cents, counter {}",
        args.id,
        args.path,
        hex::encode_upper(&args.aid.0),
        if args.express { " (express)" } else { "" },
        state.balance,
        state.counter,
    );
    eprintln!("transit-wallet: receipt public key {public_key}");

    cli::serve_until_signal(handle, &mut signals).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_aid_is_the_transit_application() {
        let args = Args::parse_from(["transit-wallet"]);
        assert_eq!(args.aid.0, transit::DEFAULT_AID);
    }
}

//! `payment-wallet`: a test EMV contactless payment card served through nfcd.
//!
//! Registers in category `payment` with two exact AIDs, the PPSE name `2PAY.SYS.DDF01` and the
//! application AID (default `A0000000041010`), and answers an M/Chip-style online-only flow
//! (see `nfcd_wallets::payment` for the card data and status words):
//!
//! ```text
//! SELECT 2PAY.SYS.DDF01          00 A4 04 00 0E 325041592E5359532E4444463031 00
//!   ← FCI: 6F { 84 PPSE, A5 { BF0C { 61 { 4F AID, 50 label, 87 01 } } } } 9000
//! SELECT AID                     00 A4 04 00 07 A0000000041010 00
//!   ← FCI: 6F { 84 AID, A5 { 50, 87, 9F38 PDOL = 9F02 06 5F2A 02 9F37 04, 5F2D } } 9000
//! GET PROCESSING OPTIONS         80 A8 00 00 0E 83 0C <amount 6> <currency 2> <UN 4> 00
//!   ← 77 { 82 1800, 94 08010200 } 9000           (ATC + 1)
//! READ RECORD 1 / 2, SFI 1       00 B2 01 0C 00 / 00 B2 02 0C 00
//!   ← 70 { 57 track 2, 5F20 name } / 70 { 5A PAN, 5F24, 5F25, 5F28, 5F34, 8C CDOL1, 8E, 9F07, 9F08 }
//! GENERATE AC (ARQC)             80 AE 80 00 1D <CDOL1 data, 29 bytes> 00
//!   ← 77 { 9F27 80, 9F36 ATC, 9F26 AC, 9F10 01990000 } 9000
//! ```
//!
//! The cryptogram is `HMAC-SHA256(key, UN ‖ amount authorised ‖ ATC)[..8]`; the key is
//! `--key` (32 bytes hex) or, by default, `SHA-256("nfcd-payment-wallet test key v1:" ‖ id)`.
//!
//! Flags: `--bus system|session|<address>`, `--path`, `--id`, `--aid HEX`, `--key HEX`,
//! `--channel` (serve the `OpenApduChannel` fast path too), `--set-default` (call
//! `SetDefaultService("payment", id)` after registering), `--verbose` (print every C-APDU and
//! R-APDU on stdout). Exits cleanly, unregistering, on SIGTERM or SIGINT.

use std::process::ExitCode;

use clap::Parser;
use nfcd_wallets::cli::{self, ShutdownSignals, Traced};
use nfcd_wallets::hex::{self, HexBytes};
use nfcd_wallets::payment::{self, PaymentCard};
use nfcd_wallets::{ApduHandler, Bus, Registration};

/// A test EMV contactless payment card for nfcd.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Bus to find nfcd on: `system`, `session`, or a D-Bus address.
    #[arg(long, default_value = "system")]
    bus: Bus,
    /// Object path to export org.nfcd.HostService1 at.
    #[arg(long, default_value = "/org/nfcd/wallets/payment")]
    path: String,
    /// Service id (reverse DNS), also the input of the default card key.
    #[arg(long, default_value = "org.nfcd.wallets.payment")]
    id: String,
    /// Application AID, hex.
    #[arg(long, default_value = "A0000000041010")]
    aid: HexBytes,
    /// Card key for the cryptogram, 32 bytes hex (default: derived from --id).
    #[arg(long)]
    key: Option<HexBytes>,
    /// Also serve APDUs over the OpenApduChannel socket.
    #[arg(long)]
    channel: bool,
    /// Make this the default payment service after registering.
    #[arg(long)]
    set_default: bool,
    /// Print every APDU exchanged.
    #[arg(long, short)]
    verbose: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_tracing(args.verbose);
    let key = match &args.key {
        None => payment::derive_card_key(&args.id),
        Some(HexBytes(bytes)) => match <[u8; 32]>::try_from(bytes.as_slice()) {
            Ok(key) => key,
            Err(_) => {
                eprintln!(
                    "payment-wallet: --key must be 32 bytes, got {}",
                    bytes.len()
                );
                return ExitCode::from(2);
            }
        },
    };
    let mut signals = match ShutdownSignals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("payment-wallet: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };

    let aid = args.aid.0.clone();
    let card = PaymentCard::new(aid.clone(), key);
    let handler: Box<dyn ApduHandler> = if args.verbose {
        Box::new(Traced::new(card))
    } else {
        Box::new(card)
    };
    let registration = Registration::new(args.path.as_str())
        .bus(args.bus.clone())
        .id(args.id.as_str())
        .category("payment")
        .name(payment::LABEL)
        .aid(payment::PPSE_NAME.to_vec())
        .aid(aid.clone())
        .use_channel(args.channel);
    let default_category = args.set_default.then_some("payment");
    let handle = match cli::register_service(registration, handler, default_category).await {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("payment-wallet: registration failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "payment-wallet: {} registered at {} for AID {}{}; PAN {} (test card)",
        args.id,
        args.path,
        hex::encode_upper(&aid),
        if handle.has_channel() {
            " with the APDU channel"
        } else {
            ""
        },
        payment::PAN,
    );

    cli::serve_until_signal(handle, &mut signals).await
}

//! Command line of `nfcctl`.
//!
//! Contract: parsing only. A malformed command line is reported by clap, which exits with
//! status 2 ([`crate::ctl::ExitStatus::Usage`]); everything that parses is handed to
//! [`crate::ctl::run`] unchanged. The bus syntax is the daemon's own ([`BusSpec`]), so `--bus`
//! accepts exactly what `nfcd --bus` does.

use std::fmt;
use std::str::FromStr;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::BusSpec;

/// `nfcctl [--bus system|session|ADDRESS] [--json] COMMAND`
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "nfcctl",
    version,
    about = "Inspect and drive the nfcd NFC daemon over D-Bus",
    after_help = "Exit status: 0 ok, 1 the daemon answered with an error (or not in time), 2 usage, \
                  3 nfcd is not running, 4 the bus cannot be reached, 5 the daemon does not \
                  offer this (e.g. tap without the virtual controller), 6 a simulated tap failed"
)]
pub struct Args {
    /// Bus nfcd serves on.
    #[arg(
        long,
        global = true,
        default_value = "system",
        value_name = "system|session|ADDRESS",
        help = "Bus nfcd serves on: system, session, or a D-Bus address such as \
                unix:path=/run/nfcd-test/bus"
    )]
    pub bus: BusSpec,

    /// How long to wait for any reply, in seconds.
    #[arg(
        long,
        global = true,
        default_value_t = 25,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=3600),
        help = "How long to wait for the bus or nfcd to answer a call, in seconds"
    )]
    pub timeout: u64,

    /// Print JSON instead of text.
    #[arg(
        long,
        global = true,
        help = "Print JSON for scripts: one document, or one object per line for monitor"
    )]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Adapter and daemon state (`org.nfcd.Adapter1` and `org.nfcd.Manager1` properties).
    #[command(about = "Show the adapter and daemon state")]
    Status,
    /// Registered host card emulation services (`Manager1.Services`).
    #[command(about = "List the registered card emulation services and their owners")]
    Services,
    /// The listen-mode routing table (`Adapter1.RoutingTable`).
    #[command(about = "Show the listen-mode routing table programmed into the controller")]
    Routing,
    /// Live NCI and APDU trace (`org.nfcd.Monitor1`) until Ctrl-C.
    #[command(about = "Trace NCI packets, APDUs and transactions live until Ctrl-C")]
    Monitor {
        /// Also print the raw bytes of every NCI packet and APDU.
        #[arg(long, help = "Also print the raw bytes of every NCI packet and APDU")]
        hex: bool,
    },
    /// A simulated tap against a daemon on the virtual controller (`org.nfcd.Simulator1.Tap`).
    #[command(about = "Run a simulated reader tap (daemon started with --transport sim)")]
    Tap {
        /// The reader script.
        #[arg(long, value_enum, help = "Reader script to run")]
        script: Script,
        /// RF technology of the virtual reader.
        #[arg(long, value_enum, default_value_t = Tech::A, help = "RF technology of the reader")]
        tech: Tech,
        /// AID the script selects instead of its default (transit, sweep256, unknown-aid).
        #[arg(
            long,
            value_name = "HEX",
            help = "AID (5 to 16 bytes, hex) the script selects instead of its default"
        )]
        aid: Option<Aid>,
    },
    /// Make a service the default of a category (`Manager1.SetDefaultService`).
    #[command(about = "Make service ID the default of CATEGORY (payment or transit)")]
    SetDefault {
        /// `payment` or `transit`.
        #[arg(value_name = "CATEGORY")]
        category: String,
        /// The service's Id.
        #[arg(value_name = "ID")]
        id: String,
    },
}

/// Reader scripts of the virtual reader (doc/simulator-api.md, `Tap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Script {
    /// EMV contactless payment: PPSE, SELECT, GET PROCESSING OPTIONS, READ RECORD.
    Emv,
    /// Transit gate: SELECT of the transit AID and its commands.
    Transit,
    /// 256 APDUs of every short command length, for segmentation and timing.
    Sweep256,
    /// SELECT of an AID nobody registered; the daemon answers 6A82.
    UnknownAid,
    /// Malformed and invalid commands, absurd SELECTs, 64 KiB chained, an APDU storm.
    Hostile,
}

impl Script {
    /// The script name on the wire (`Tap`'s `script` argument).
    pub fn wire_name(self) -> &'static str {
        match self {
            Script::Emv => "emv",
            Script::Transit => "transit",
            Script::Sweep256 => "sweep256",
            Script::UnknownAid => "unknown-aid",
            Script::Hostile => "hostile",
        }
    }
}

/// RF technology the virtual reader polls with (NFC Forum Digital: NFC-A, NFC-B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tech {
    /// NFC-A (ISO/IEC 14443-3 Type A).
    A,
    /// NFC-B (ISO/IEC 14443-3 Type B).
    B,
}

impl Tech {
    /// The value of the `Technology` option on the wire.
    pub fn wire_name(self) -> &'static str {
        match self {
            Tech::A => "a",
            Tech::B => "b",
        }
    }
}

/// An application identifier given on the command line: 5 to 16 bytes (ISO/IEC 7816-4
/// §12.2.3), written in hex, optionally with spaces or colons between bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aid(pub Vec<u8>);

/// Why a command-line AID was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AidError {
    /// Not an even number of hex digits.
    NotHex(String),
    /// Outside the 5–16 bytes of ISO/IEC 7816-4.
    Length(usize),
}

impl fmt::Display for AidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AidError::NotHex(s) => write!(f, "'{s}' is not an even number of hex digits"),
            AidError::Length(n) => write!(f, "an AID has 5 to 16 bytes (ISO/IEC 7816-4), not {n}"),
        }
    }
}

impl std::error::Error for AidError {}

impl FromStr for Aid {
    type Err = AidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: Vec<u8> = s.bytes().filter(|b| !matches!(b, b' ' | b':')).collect();
        if digits.len() % 2 != 0 {
            return Err(AidError::NotHex(s.to_owned()));
        }
        let mut bytes = Vec::with_capacity(digits.len() / 2);
        for pair in digits.chunks_exact(2) {
            let text = std::str::from_utf8(pair).map_err(|_| AidError::NotHex(s.to_owned()))?;
            let byte = u8::from_str_radix(text, 16).map_err(|_| AidError::NotHex(s.to_owned()))?;
            bytes.push(byte);
        }
        if !(5..=16).contains(&bytes.len()) {
            return Err(AidError::Length(bytes.len()));
        }
        Ok(Aid(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn bus_defaults_to_system_and_takes_addresses() {
        let args = Args::try_parse_from(["nfcctl", "status"]).unwrap();
        assert_eq!(args.bus, BusSpec::System);
        assert!(!args.json);
        assert_eq!(args.timeout, 25);
        assert!(Args::try_parse_from(["nfcctl", "--timeout", "0", "status"]).is_err());
        let args =
            Args::try_parse_from(["nfcctl", "--bus", "unix:path=/tmp/b", "status", "--json"])
                .unwrap();
        assert_eq!(args.bus, BusSpec::Address("unix:path=/tmp/b".to_owned()));
        assert!(args.json);
    }

    #[test]
    fn tap_arguments() {
        let args = Args::try_parse_from([
            "nfcctl",
            "tap",
            "--script",
            "unknown-aid",
            "--tech",
            "b",
            "--aid",
            "F0:01:02:03:04",
        ])
        .unwrap();
        assert_eq!(
            args.command,
            Command::Tap {
                script: Script::UnknownAid,
                tech: Tech::B,
                aid: Some(Aid(vec![0xF0, 0x01, 0x02, 0x03, 0x04])),
            }
        );
        assert!(Args::try_parse_from(["nfcctl", "tap", "--script", "visa"]).is_err());
        assert!(Args::try_parse_from(["nfcctl", "tap", "--script", "emv", "--aid", "A0"]).is_err());
    }

    #[test]
    fn aid_syntax() {
        assert_eq!(
            "a000000004".parse::<Aid>(),
            Ok(Aid(vec![0xA0, 0, 0, 0, 0x04]))
        );
        assert_eq!(
            "A0 00 00 00 04 10 10".parse::<Aid>(),
            Ok(Aid(vec![0xA0, 0, 0, 0, 0x04, 0x10, 0x10]))
        );
        assert_eq!("A00".parse::<Aid>(), Err(AidError::NotHex("A00".into())));
        assert_eq!(
            "ZZ00000004".parse::<Aid>(),
            Err(AidError::NotHex("ZZ00000004".into()))
        );
        assert_eq!("A0000000".parse::<Aid>(), Err(AidError::Length(4)));
        assert_eq!(
            "é0000000040".parse::<Aid>(),
            Err(AidError::NotHex("é0000000040".into()))
        );
    }

    #[test]
    fn usage_errors_exit_with_2() {
        let err = Args::try_parse_from(["nfcctl", "frobnicate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = Args::try_parse_from(["nfcctl", "--bus", "nowhere", "status"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}

//! Command line of the `nfcd` daemon.
//!
//! Contract: parsing only. Flags given here override the matching keys of the configuration
//! file; merging and validation happen in [`crate::config::Config::load`]. Values that have a
//! text syntax (`--transport`, `--bus`) are parsed by their own `FromStr`, so a bad value is
//! reported by the argument parser with the same message the configuration file would give.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

use crate::config::BusSpec;
use crate::transport::TransportSpec;

/// `nfcd [--transport SPEC] [--bus system|session|ADDRESS] [--config FILE] [--state-dir DIR] [-v...]`
#[derive(Debug, Clone, Default, PartialEq, Eq, Parser)]
#[command(
    name = "nfcd",
    version,
    about = "NFC host card emulation daemon for PN7150-class controllers"
)]
pub struct Cli {
    /// Controller transport; overrides `daemon.transport`.
    #[arg(
        long,
        value_name = "SPEC",
        help = "Controller transport, overriding daemon.transport: \
                i2c:DEV[@ADDR],irq=CHIP:LINE[,ven=CHIP:LINE] | uart:DEV[@BAUD] | \
                tcp:HOST:PORT | sim[:pn7150|:nci2]"
    )]
    pub transport: Option<TransportSpec>,

    /// D-Bus bus to serve `org.nfcd` on; overrides `daemon.bus`.
    #[arg(
        long,
        value_name = "system|session|ADDRESS",
        help = "D-Bus bus to serve org.nfcd on, overriding daemon.bus: system, session, \
                or a D-Bus address such as unix:path=/run/user/1000/bus"
    )]
    pub bus: Option<BusSpec>,

    /// Configuration file; without it `/etc/nfcd/nfcd.toml` is read if it exists.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        help = "Configuration file. Without this flag /etc/nfcd/nfcd.toml is read if it \
                exists; a file named here must exist"
    )]
    pub config: Option<PathBuf>,

    /// Directory for persistent state; overrides `daemon.state_dir`.
    #[arg(
        long,
        value_name = "DIR",
        help = "Directory for persistent state (default services), overriding daemon.state_dir"
    )]
    pub state_dir: Option<PathBuf>,

    /// Number of `-v` flags: 1 = debug with the NCI packet trace, 2 = trace.
    #[arg(
        short,
        long,
        action = ArgAction::Count,
        help = "More log output: -v debug (NCI packet trace), -vv trace; RUST_LOG overrides"
    )]
    pub verbose: u8,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn all_flags() {
        let cli = Cli::try_parse_from([
            "nfcd",
            "--transport",
            "uart:/dev/ttyUSB0@115200",
            "--bus",
            "session",
            "--config",
            "/tmp/nfcd.toml",
            "--state-dir",
            "/tmp/nfcd-state",
            "-vv",
        ]);
        let cli = cli.map_err(|e| e.to_string());
        assert_eq!(
            cli,
            Ok(Cli {
                transport: "uart:/dev/ttyUSB0@115200".parse().ok(),
                bus: Some(BusSpec::Session),
                config: Some("/tmp/nfcd.toml".into()),
                state_dir: Some("/tmp/nfcd-state".into()),
                verbose: 2,
            })
        );
    }

    #[test]
    fn nothing_given() {
        assert_eq!(
            Cli::try_parse_from(["nfcd"]).map_err(|e| e.to_string()),
            Ok(Cli::default())
        );
    }

    #[test]
    fn bad_transport_is_reported_with_the_parser_message() {
        let err = Cli::try_parse_from([
            "nfcd",
            "--transport",
            "i2c:/dev/i2c-1@0x2G,irq=gpiochip0:23",
        ])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("i2c: address '0x2G' is not a hex number"),
            "{err}"
        );
    }

    #[test]
    fn bad_bus_is_reported() {
        let err = Cli::try_parse_from(["nfcd", "--bus", "sytem"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("'sytem' is not system, session or a D-Bus address"),
            "{err}"
        );
    }
}

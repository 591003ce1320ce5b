//! `test-wallet`: a scriptable wallet for end-to-end tests of nfcd.
//!
//! Everything comes from flags; stdout carries one machine-readable line per event (and
//! nothing else; logs go to stderr):
//!
//! | line | when |
//! |---|---|
//! | `READY` | registered (and the APDU channel opened, with `--channel`) |
//! | `APDU <HEX>` | a C-APDU arrived (upper-case hex), before it is answered |
//! | `DEACTIVATED <reason>` | `Deactivated(reason)` arrived |
//! | `ERROR <name> <message>` | registration (or `--set-default`, `--preferred`) failed; `<name>` is the D-Bus error name (`org.nfcd.Error.*` from the daemon); exit code 2 |
//!
//! Behaviours (`--behaviour`):
//! - `echo`: answers the C-APDU's data field followed by `9000` (just `9000` for no data or an
//!   unparsable command);
//! - `ok` (default): answers the UTF-8 bytes of `--id` followed by `9000`, so a test sees which
//!   service answered;
//! - `hang`: never answers (the daemon's deadline must fire);
//! - `crash-after=N`: answers the first N APDUs like `ok`, then kills itself (SIGKILL) on the
//!   next, without answering or unregistering;
//! - `slow=MS`: sleeps MS milliseconds, then answers like `ok`;
//! - `huge` / `huge=N`: answers N bytes (default 65 536, the largest extended Le) of
//!   `00 01 02 ..` followed by `9000`;
//! - `empty`: answers zero bytes (not even a status word);
//! - `late=N:MS`: answers like `echo`, but the N-th APDU (counting from 1) only after sleeping
//!   MS milliseconds: one answer that misses the daemon's deadline while the others do not.
//!
//! Registration flags: `--aid`, `--prefix-aid`, `--subset-aid` (hex, repeatable),
//! `--many-aids N` (adds N exact 8-byte AIDs `F0 00 00 00 <i as 4 bytes>` for i = 0..N, the
//! AIDs of the virtual reader's `sweep256` script),
//! `--category` (default `other`), `--id`, `--name`, `--express`, `--requires-unlock`,
//! `--channel`, `--set-default` (`SetDefaultService(category, id)` before `READY`),
//! `--preferred` (`SetPreferredService(path)` before `READY`),
//! `--any-caller` (answer ProcessApdu from any peer, for `busctl` poking).
//! Exits 0 on SIGTERM/SIGINT after unregistering.

use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use libnci::apdu::{CommandApdu, StatusWord};
use libnci::sim::cards::{response, status};
use nfcd_wallets::cli::{self, ShutdownSignals};
use nfcd_wallets::hex::{self, HexBytes};
use nfcd_wallets::{ApduHandler, Bus, Registration, RegistrationHandle};

/// Exit code when registration fails, after the `ERROR` line.
const EXIT_REGISTRATION_FAILED: u8 = 2;

/// How the wallet answers APDUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Echo,
    Ok,
    Hang,
    CrashAfter(u64),
    Slow(u64),
    Huge(usize),
    Empty,
    Late { nth: u64, ms: u64 },
}

/// Largest R-APDU data field: extended Le `0000` means 65 536 bytes (ISO/IEC 7816-4 §5.1).
const MAX_RESPONSE_DATA: usize = 65_536;

#[derive(Debug, PartialEq, Eq)]
struct BehaviourError(String);

impl fmt::Display for BehaviourError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}`: expected echo, ok, hang, crash-after=N, slow=MS, huge[=N], empty or late=N:MS",
            self.0
        )
    }
}

impl std::error::Error for BehaviourError {}

impl FromStr for Behaviour {
    type Err = BehaviourError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || BehaviourError(text.to_owned());
        let (name, value) = match text.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (text, None),
        };
        match (name, value) {
            ("echo", None) => Ok(Behaviour::Echo),
            ("ok", None) => Ok(Behaviour::Ok),
            ("hang", None) => Ok(Behaviour::Hang),
            ("empty", None) => Ok(Behaviour::Empty),
            ("huge", None) => Ok(Behaviour::Huge(MAX_RESPONSE_DATA)),
            ("huge", Some(n)) => n.parse().map(Behaviour::Huge).map_err(|_| error()),
            ("crash-after", Some(n)) => n.parse().map(Behaviour::CrashAfter).map_err(|_| error()),
            ("slow", Some(ms)) => ms.parse().map(Behaviour::Slow).map_err(|_| error()),
            ("late", Some(value)) => {
                let (nth, ms) = value.split_once(':').ok_or_else(error)?;
                match (nth.parse(), ms.parse()) {
                    (Ok(nth), Ok(ms)) if nth >= 1 => Ok(Behaviour::Late { nth, ms }),
                    _ => Err(error()),
                }
            }
            _ => Err(error()),
        }
    }
}

/// The `i`-th AID of `--many-aids`: `F0 00 00 00` followed by `i` big-endian (proprietary
/// category `F`, ISO/IEC 7816-5). For `i` < 256 this is libnci's `sim::scripts::sweep_aid(i)`,
/// so `--many-aids 256` answers every SELECT of the virtual reader's `sweep256` script.
fn generated_aid(i: u32) -> Vec<u8> {
    let mut aid = vec![0xF0, 0x00, 0x00, 0x00];
    aid.extend_from_slice(&i.to_be_bytes());
    aid
}

/// A scriptable wallet for nfcd end-to-end tests.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Bus to find nfcd on: `system`, `session`, or a D-Bus address.
    #[arg(long, default_value = "system")]
    bus: Bus,
    /// Object path to export org.nfcd.HostService1 at.
    #[arg(long, default_value = "/org/nfcd/wallets/test")]
    path: String,
    /// Service id.
    #[arg(long, default_value = "org.nfcd.wallets.test")]
    id: String,
    /// Category: payment, transit or other.
    #[arg(long, default_value = "other")]
    category: String,
    /// Human-readable name.
    #[arg(long)]
    name: Option<String>,
    /// Exact AID, hex (repeatable).
    #[arg(long)]
    aid: Vec<HexBytes>,
    /// Prefix AID, hex (repeatable).
    #[arg(long)]
    prefix_aid: Vec<HexBytes>,
    /// Subset AID, hex (repeatable).
    #[arg(long)]
    subset_aid: Vec<HexBytes>,
    /// Also register N generated 8-byte AIDs F0000000 + index (the sweep256 reader's AIDs).
    #[arg(long, default_value_t = 0)]
    many_aids: u32,
    /// How to answer APDUs.
    #[arg(long, default_value = "ok")]
    behaviour: Behaviour,
    /// Register with Express=true.
    #[arg(long)]
    express: bool,
    /// Register with RequiresUnlock=true.
    #[arg(long)]
    requires_unlock: bool,
    /// Also serve APDUs over the OpenApduChannel socket.
    #[arg(long)]
    channel: bool,
    /// Call SetDefaultService(category, id) before READY.
    #[arg(long)]
    set_default: bool,
    /// Call SetPreferredService(path) before READY.
    #[arg(long)]
    preferred: bool,
    /// Answer ProcessApdu from any peer, not only nfcd.
    #[arg(long)]
    any_caller: bool,
}

/// The handler: prints the event lines and answers per [`Behaviour`].
struct TestWallet {
    behaviour: Behaviour,
    id: Vec<u8>,
    answered: u64,
}

impl TestWallet {
    fn answer(&mut self, command: &[u8]) -> Vec<u8> {
        match self.behaviour {
            Behaviour::Echo => echo(command),
            Behaviour::Late { nth, ms } => {
                // `answered` was counted before this call: this is APDU number answered.
                if self.answered == nth {
                    std::thread::sleep(Duration::from_millis(ms));
                }
                echo(command)
            }
            Behaviour::Ok | Behaviour::CrashAfter(_) => response(&self.id, StatusWord::NO_ERROR),
            Behaviour::Slow(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                response(&self.id, StatusWord::NO_ERROR)
            }
            Behaviour::Huge(len) => {
                let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
                response(&data, StatusWord::NO_ERROR)
            }
            Behaviour::Empty => Vec::new(),
            Behaviour::Hang => loop {
                // Parked for good; SIGTERM still ends the process from the runtime's threads.
                std::thread::park();
            },
        }
    }
}

impl ApduHandler for TestWallet {
    fn process_apdu(&mut self, command: &[u8]) -> Vec<u8> {
        println!("APDU {}", hex::encode_upper(command));
        if let Behaviour::CrashAfter(limit) = self.behaviour {
            if self.answered >= limit {
                // A crash, not an exit: no unregistering, no reply, the bus name just vanishes.
                // SIGKILL rather than abort(): the same for the daemon, and no core files
                // left behind by test runs.
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
                std::process::abort();
            }
        }
        self.answered += 1;
        self.answer(command)
    }

    fn deactivated(&mut self, reason: &str) {
        println!("DEACTIVATED {reason}");
    }
}

/// The command's data field followed by `9000`; just `9000` for no data or an unparsable
/// command.
fn echo(command: &[u8]) -> Vec<u8> {
    match CommandApdu::parse(command) {
        Ok(apdu) => response(apdu.data, StatusWord::NO_ERROR),
        Err(_) => status(StatusWord::NO_ERROR),
    }
}

/// `SetPreferredService(path)` on the connection that registered the service: while it is
/// preferred, it wins AIDs it shares with other `other` services (doc/manager-api.md).
async fn set_preferred_service(handle: &RegistrationHandle) -> Result<(), nfcd_wallets::Error> {
    handle
        .connection()
        .call_method(
            Some("org.nfcd"),
            "/org/nfcd",
            Some("org.nfcd.Manager1"),
            "SetPreferredService",
            &(handle.path(),),
        )
        .await?;
    Ok(())
}

/// One line, whatever the message contains.
fn single_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_tracing(false);
    let mut signals = match ShutdownSignals::install() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("test-wallet: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut registration = Registration::new(args.path.as_str())
        .bus(args.bus.clone())
        .id(args.id.as_str())
        .category(args.category.as_str())
        .use_channel(args.channel)
        .accept_any_caller(args.any_caller);
    for HexBytes(aid) in &args.aid {
        registration = registration.aid(aid.clone());
    }
    for i in 0..args.many_aids {
        registration = registration.aid(generated_aid(i));
    }
    for HexBytes(aid) in &args.prefix_aid {
        registration = registration.prefix_aid(aid.clone());
    }
    for HexBytes(aid) in &args.subset_aid {
        registration = registration.subset_aid(aid.clone());
    }
    if let Some(name) = &args.name {
        registration = registration.name(name.as_str());
    }
    if args.express {
        registration = registration.express(true);
    }
    if args.requires_unlock {
        registration = registration.requires_unlock(true);
    }

    let wallet = TestWallet {
        behaviour: args.behaviour,
        id: args.id.as_bytes().to_vec(),
        answered: 0,
    };
    let default_category = args.set_default.then_some(args.category.as_str());
    let handle = match cli::register_service(registration, wallet, default_category).await {
        Ok(handle) => handle,
        Err(e) => {
            println!("ERROR {} {}", e.dbus_name(), single_line(&e.message()));
            return ExitCode::from(EXIT_REGISTRATION_FAILED);
        }
    };
    if args.preferred {
        if let Err(e) = set_preferred_service(&handle).await {
            println!("ERROR {} {}", e.dbus_name(), single_line(&e.message()));
            return ExitCode::from(EXIT_REGISTRATION_FAILED);
        }
    }
    println!("READY");

    let code = cli::serve_until_signal(handle, &mut signals).await;
    // A `hang` or `slow` handler may still sit on a blocking thread; waiting for it would turn
    // SIGTERM into a hang, so leave without tearing the runtime down.
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wallet(behaviour: Behaviour) -> TestWallet {
        TestWallet {
            behaviour,
            id: b"org.example.t".to_vec(),
            answered: 0,
        }
    }

    const SELECT: [u8; 11] = [
        0x00, 0xA4, 0x04, 0x00, 0x05, 0xF0, 0x01, 0x02, 0x03, 0x04, 0x00,
    ];

    #[test]
    fn behaviour_arguments() {
        assert_eq!("echo".parse(), Ok(Behaviour::Echo));
        assert_eq!("crash-after=3".parse(), Ok(Behaviour::CrashAfter(3)));
        assert_eq!("slow=250".parse(), Ok(Behaviour::Slow(250)));
        assert_eq!("huge".parse(), Ok(Behaviour::Huge(65_536)));
        assert_eq!("huge=300".parse(), Ok(Behaviour::Huge(300)));
        assert!("slow".parse::<Behaviour>().is_err());
        assert!("crash-after=x".parse::<Behaviour>().is_err());
        assert!("ok=1".parse::<Behaviour>().is_err());
        assert_eq!(
            "late=2:700".parse(),
            Ok(Behaviour::Late { nth: 2, ms: 700 })
        );
        assert!("late=0:700".parse::<Behaviour>().is_err());
        assert!("late=2".parse::<Behaviour>().is_err());
    }

    #[test]
    fn echo_ok_huge_empty_answers() {
        // SELECT F001020304 -> echo: F001020304 9000
        assert_eq!(
            wallet(Behaviour::Echo).process_apdu(&SELECT),
            [0xF0, 0x01, 0x02, 0x03, 0x04, 0x90, 0x00]
        );
        // ok: the id's bytes + 9000
        let mut expected = b"org.example.t".to_vec();
        expected.extend_from_slice(&[0x90, 0x00]);
        assert_eq!(wallet(Behaviour::Ok).process_apdu(&SELECT), expected);
        let huge = wallet(Behaviour::Huge(300)).process_apdu(&SELECT);
        assert_eq!(
            (huge.len(), huge[299], &huge[300..]),
            (302, 43, &[0x90, 0x00][..])
        );
        assert!(wallet(Behaviour::Empty).process_apdu(&SELECT).is_empty());
    }

    #[test]
    fn late_delays_only_the_nth_answer() {
        let mut late = wallet(Behaviour::Late { nth: 2, ms: 40 });
        let started = std::time::Instant::now();
        // SELECT F001020304 -> F001020304 9000, at once.
        assert_eq!(
            late.process_apdu(&SELECT),
            [0xF0, 0x01, 0x02, 0x03, 0x04, 0x90, 0x00]
        );
        assert!(started.elapsed() < Duration::from_millis(40));
        // The second: PUT DATA 01 02 -> 01 02 9000, 40 ms late.
        let put = [0x00, 0xDA, 0x01, 0x00, 0x02, 0x01, 0x02];
        assert_eq!(late.process_apdu(&put), [0x01, 0x02, 0x90, 0x00]);
        assert!(started.elapsed() >= Duration::from_millis(40));
    }

    #[test]
    fn slow_waits_before_answering() {
        let started = std::time::Instant::now();
        let answer = wallet(Behaviour::Slow(30)).process_apdu(&SELECT);
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(
            StatusWord::from_response(&answer),
            Some(StatusWord::NO_ERROR)
        );
    }

    #[test]
    fn many_aids_are_distinct_8_byte_aids() {
        // F0 00 00 00 00 00 00 i: libnci's sweep_aid(i) for the first 256.
        assert_eq!(generated_aid(0), [0xF0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(generated_aid(255), [0xF0, 0, 0, 0, 0, 0, 0, 0xFF]);
        assert_eq!(generated_aid(258), [0xF0, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn error_messages_stay_on_one_line() {
        assert_eq!(single_line("bad\nAID  length"), "bad AID length");
    }
}

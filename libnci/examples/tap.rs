//! One tap, in-process and in simulated time: the real controller state machine against the
//! virtual NFCC (PN7150 or a generic NCI 2.0 controller) and a virtual reader running one of
//! the reader scripts, answered by a host playing the demo cards.
//!
//! ```text
//! cargo run -p libnci --features sim --example tap -- emv --bus-khz 400 -v
//! ```
//!
//! Prints the start-up time, every APDU with its timing, the outcome and, with `-v`, the NCI
//! trace decoded with `wire::Message`'s `Display`.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::process::ExitCode;

use libnci::controller::{Config, Event};
use libnci::sim::scripts::{self, EmvParams};
use libnci::sim::{
    BusSpeed, ControllerDh, Direction, Harness, HostApps, Nfcc, NfccConfig, Profile, Reader,
    ReaderConfig, RfTiming, Script, TraceEntry,
};
use libnci::time::Instant;
use libnci::wire::HexBytes;
use libnci::wire::{HeaderRepr, Message, NciVersion, Packet, RfTechnology};

const HELP: &str = "\
tap - one simulated tap: controller state machine, virtual NFCC, virtual reader

USAGE:
    tap [SCRIPT] [OPTIONS]

SCRIPT (default emv):
    emv          SELECT PPSE, SELECT AID, GET PROCESSING OPTIONS, READ RECORDs, GENERATE AC
    transit      SELECT, READ BALANCE, DEBIT the fare
    sweep256     SELECT 256 AIDs in one activation
    unknown-aid  SELECT an AID nobody registered (expects 6A82)

OPTIONS:
    --nci2           a generic NCI 2.0 controller instead of the PN7150 (NCI 1.0)
    --nfc-b          the reader activates the card in NFC-B instead of NFC-A
    --bus-khz KHZ    put an I2C bus of 100, 400 or 3400 kHz between host and controller
                     (default: packets move instantly)
    -v, --verbose    print the NCI trace, decoded
    -h, --help       print this help
";

/// One line of output into the report string (writing to a `String` cannot fail).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Initial balance of the demo transit card.
const BALANCE: u32 = 1_000;

/// Longest trace line printed; data packets carry up to 255 octets.
const MAX_LINE: usize = 160;

struct Options {
    script: String,
    profile: Profile,
    nfc_b: bool,
    bus: Option<(BusSpeed, u64)>,
    verbose: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        script: "emv".to_string(),
        profile: Profile::Pn7150,
        nfc_b: false,
        bus: None,
        verbose: false,
    };
    let mut script = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-v" | "--verbose" => options.verbose = true,
            "--nci2" => options.profile = Profile::Nci2,
            "--nfc-b" => options.nfc_b = true,
            "--bus-khz" => {
                let value = args.next().ok_or("--bus-khz needs a value")?;
                options.bus = Some(match value.as_str() {
                    "100" => (BusSpeed::Standard, 100),
                    "400" => (BusSpeed::Fast, 400),
                    "3400" => (BusSpeed::HighSpeed, 3400),
                    other => return Err(format!("--bus-khz {other}: use 100, 400 or 3400")),
                });
            }
            s if s.starts_with('-') => return Err(format!("unknown option '{s}'")),
            name => {
                if script.is_some() {
                    return Err("more than one script".to_string());
                }
                script = Some(name.to_string());
            }
        }
    }
    if let Some(script) = script {
        options.script = script;
    }
    Ok(Some(options))
}

fn script(name: &str) -> Option<Script> {
    Some(match name {
        "emv" => scripts::emv(&EmvParams::default()),
        "transit" => scripts::transit(&scripts::TransitDebitRepr::default()),
        "sweep256" => scripts::sweep256(),
        "unknown-aid" | "unknown_aid" => scripts::unknown_aid(),
        _ => return None,
    })
}

/// Milliseconds since the epoch of the run, to the microsecond.
fn ms(at: Instant) -> String {
    let us = at.total_micros();
    format!("{}.{:03} ms", us / 1_000, us % 1_000)
}

/// An APDU in hex, cut after `max` octets.
fn apdu(bytes: &[u8], max: usize) -> String {
    match bytes.get(..max) {
        Some(head) if bytes.len() > max => format!("{} … ({} octets)", HexBytes(head), bytes.len()),
        _ => HexBytes(bytes).to_string(),
    }
}

/// One packet decoded with the wire codec: the message and its fields, or for a segment
/// (PBF set) its identity and size.
fn decode(bytes: &[u8], version: NciVersion) -> String {
    let mut line = match Message::parse_packet(bytes, version) {
        Ok(message) => message.to_string(),
        Err(error) => match Packet::new_checked(bytes).and_then(|p| HeaderRepr::parse(&p)) {
            Ok(header) if header.pbf => format!(
                "{} segment, {} octets, more follow",
                Message::name_for(header.mt, header.id).unwrap_or("UNKNOWN"),
                header.payload_len
            ),
            _ => format!("undecodable ({error}): {}", HexBytes(bytes)),
        },
    };
    if line.chars().count() > MAX_LINE {
        line = line.chars().take(MAX_LINE).collect();
        line.push('…');
    }
    line
}

fn print_trace(out: &mut String, trace: &[TraceEntry], version: NciVersion) {
    say!(out, "NCI trace ({version}):");
    for entry in trace {
        let arrow = match entry.direction {
            Direction::DhToNfcc => "DH → NFCC",
            Direction::NfccToDh => "NFCC → DH",
        };
        say!(
            out,
            "  {:>12}  {arrow}  {}",
            ms(entry.delivered_at),
            decode(&entry.bytes, version)
        );
    }
}

fn run(options: &Options, out: &mut String) -> Result<bool, String> {
    let script = script(&options.script).ok_or_else(|| {
        format!(
            "unknown script '{}' (emv, transit, sweep256, unknown-aid)",
            options.script
        )
    })?;
    let mut nfcc = NfccConfig::new(options.profile);
    nfcc.rf_timing = Some(RfTiming::default());
    let dh = ControllerDh::new(Config::default(), HostApps::demo(BALANCE))
        .with_session_end(|host, _| host.end_session());
    let mut h = match options.bus {
        Some((speed, _)) => Harness::with_bus(dh, Nfcc::new(nfcc), speed),
        None => Harness::new(dh, Nfcc::new(nfcc)),
    };
    let (technology, tech_name) = if options.nfc_b {
        (RfTechnology::NfcB, "NFC-B")
    } else {
        (RfTechnology::NfcA, "NFC-A")
    };
    let controller = match options.profile {
        Profile::Pn7150 => "PN7150 (NCI 1.0)",
        Profile::Nci2 => "generic NCI 2.0 controller",
    };
    let link = match options.bus {
        Some((_, khz)) => format!("I²C at {khz} kHz"),
        None => "instant link".to_string(),
    };
    say!(
        out,
        "tap: {} on a virtual {controller}, {tech_name} listen, {link}",
        options.script
    );

    h.run_until_idle().map_err(|e| e.to_string())?;
    let ready =
        h.dh.last_ready_at()
            .ok_or("the controller did not become ready")?;
    say!(
        out,
        "start-up: Ready at {} after {} packets",
        ms(ready),
        h.trace().len()
    );

    let config = ReaderConfig {
        technology,
        ..ReaderConfig::default()
    };
    let report = h
        .tap(Reader::new(script, config))
        .map_err(|e| e.to_string())?;
    h.run_until_idle().map_err(|e| e.to_string())?;

    say!(
        out,
        "field on at {}, activated at {}",
        ms(report.field_on_at),
        report.activated_at.map_or("never".to_string(), ms)
    );
    if !report.apdus.is_empty() {
        say!(out, "    #  C-APDU sent → R-APDU received   latency");
    }
    for (i, record) in report.apdus.iter().enumerate() {
        let sw = record
            .sw
            .map_or("no status word".to_string(), |sw| format!("{:04X}", sw.0));
        say!(
            out,
            "  {:>3}  {} → {}  {:>9}  C: {}",
            i + 1,
            ms(record.sent_at),
            ms(record.answered_at),
            format!("{:.3} ms", record.latency().as_secs_f64() * 1e3),
            apdu(&record.cmd, 24),
        );
        say!(out, "       R: {}  [{sw}]", apdu(&record.rsp, 24));
    }
    say!(out, "outcome: {:?}", report.outcome);
    let mut summary = format!(
        "field on → field off: {:.3} ms",
        report.total.as_secs_f64() * 1e3
    );
    if let Some(t) = report.transaction_time() {
        let _ = write!(
            summary,
            ", activation → last answer {:.3} ms",
            t.as_secs_f64() * 1e3
        );
    }
    say!(out, "{summary}");
    for (name, value) in &report.values {
        say!(out, "  {name} = {}", HexBytes(value));
    }
    if let Some(stats) = h.bus_stats() {
        let busy = stats.busy();
        let run = h.now() - Instant::ZERO;
        say!(
            out,
            "bus: {:.3} ms busy over the whole run ({:.1}% of {:.3} ms), {} packets to the \
             controller, {} from it",
            busy.as_secs_f64() * 1e3,
            100.0 * busy.as_secs_f64() / run.as_secs_f64().max(f64::MIN_POSITIVE),
            run.as_secs_f64() * 1e3,
            stats.to_nfcc.packets,
            stats.to_dh.packets,
        );
    }
    let problems: Vec<String> =
        h.dh.events()
            .filter_map(|e| match e {
                Event::Reinitializing { cause, .. } => Some(format!("re-initialised: {cause}")),
                Event::Error(error) => Some(format!("error: {error}")),
                _ => None,
            })
            .collect();
    for problem in &problems {
        say!(out, "controller {problem}");
    }
    if options.verbose {
        let version =
            h.dh.controller()
                .info()
                .map_or(NciVersion::V1_0, |info| info.nci_version);
        print_trace(out, h.trace(), version);
    }
    let completed = matches!(report.outcome, libnci::sim::TapOutcome::Completed);
    Ok(completed && problems.is_empty())
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            let _ = io::stdout().lock().write_all(HELP.as_bytes());
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("tap: {message}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let mut out = String::new();
    let result = run(&options, &mut out);
    // A closed standard output (e.g. piped into `head`) is not worth a panic.
    let written = io::stdout().lock().write_all(out.as_bytes()).is_ok();
    match result {
        Ok(true) if written => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("tap: {message}");
            ExitCode::FAILURE
        }
    }
}

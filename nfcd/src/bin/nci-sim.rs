//! `nci-sim`: the virtual NFC controller as a process of its own, for developers and tests.
//!
//! Serves a virtual PN7150 (NCI 1.0) or NCI 2.0 controller on a new pseudo-terminal or on TCP,
//! prints where on its first line (`PTY /dev/pts/N` or `TCP 127.0.0.1:PORT`), then takes
//! commands on standard input, one per line, and answers each on standard output:
//!
//! ```text
//! tap SCRIPT [a|b]    TAP <outcome> <apdus> <total_us>, then APDU <cmd hex> <rsp hex> <us> lines
//! fault NAME[@N]      OK | ERR <reason>
//! field on|off        OK | ERR <reason>
//! power-cycle         OK
//! wait-ready [MS]     OK | ERR timeout
//! quit                (exits; so does the end of input)
//! ```
//!
//! Everything else (logs, with `RUST_LOG`) goes to standard error. The controller, the reader
//! and the fault names are those of `nfcd::simhost`; doc/simulator-api.md describes them.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nfcd::hex;
use nfcd::simhost::{
    outcome_name, BusSpeed, FaultSpec, Profile, SimError, SimHandle, SimHost, SimOptions,
    TapOptions, TapScript, Tech,
};
use nfcd::transport::TransportSpec;
use tokio::sync::mpsc;
use tracing_subscriber::EnvFilter;

/// `nci-sim [--profile pn7150|nci2] [--i2c-bus SPEED] (--pty | --tcp ADDR)`
#[derive(Debug, Parser)]
#[command(
    name = "nci-sim",
    version,
    about = "Virtual PN7150 / NCI 2.0 controller on a pty or TCP, driven from standard input"
)]
struct Args {
    /// Controller to simulate.
    #[arg(long, value_name = "pn7150|nci2", default_value = "pn7150", value_parser = parse_profile)]
    profile: Profile,

    /// Serve on a new pseudo-terminal (connect with `uart:/dev/pts/N`).
    #[arg(long, required_unless_present = "tcp", conflicts_with = "tcp")]
    pty: bool,

    /// Serve on TCP at this address; port 0 picks a free one (connect with `tcp:HOST:PORT`).
    #[arg(long, value_name = "ADDR")]
    tcp: Option<SocketAddr>,

    /// Model an I²C bus at this speed between host and controller (UM10936 §3).
    #[arg(long, value_name = "100k|400k|3.4m", value_parser = parse_bus)]
    i2c_bus: Option<BusSpeed>,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    // One parser for profile names: the transport spec's (`sim:pn7150`, `sim:nci2`).
    match format!("sim:{s}").parse::<TransportSpec>() {
        Ok(TransportSpec::Sim(profile)) => Ok(profile.into()),
        Ok(_) => Err(format!("unknown profile {s:?}")),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_bus(s: &str) -> Result<BusSpeed, String> {
    // One parser for I²C speeds: the transport spec's (`sim:pn7150@i2c:400k`).
    nfcd::transport::spec::parse_i2c_speed(s).map_err(|e| e.to_string())
}

/// Default bound of `wait-ready`.
const WAIT_READY_DEFAULT: Duration = Duration::from_secs(10);

/// What a command line asks for.
enum Command {
    Tap(TapScript, Tech),
    Fault(FaultSpec),
    Field(bool),
    PowerCycle,
    WaitReady(Duration),
    Quit,
}

fn parse_command(line: &str) -> Result<Option<Command>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let command = match words.as_slice() {
        [] => return Ok(None),
        ["tap", script] => Command::Tap(script.parse().map_err(err)?, Tech::A),
        ["tap", script, tech] => {
            Command::Tap(script.parse().map_err(err)?, tech.parse().map_err(err)?)
        }
        ["fault", name] => Command::Fault(name.parse().map_err(err)?),
        ["field", "on"] => Command::Field(true),
        ["field", "off"] => Command::Field(false),
        ["power-cycle"] => Command::PowerCycle,
        ["wait-ready"] => Command::WaitReady(WAIT_READY_DEFAULT),
        ["wait-ready", ms] => match ms.parse::<u64>() {
            Ok(ms) => Command::WaitReady(Duration::from_millis(ms)),
            Err(_) => {
                return Err(format!(
                    "wait-ready: {ms:?} is not a number of milliseconds"
                ))
            }
        },
        ["quit"] => Command::Quit,
        _ => {
            return Err(format!(
                "unknown command {line:?} (expected tap SCRIPT [a|b], fault NAME, \
                 field on|off, power-cycle, wait-ready [MS], quit)"
            ))
        }
    };
    Ok(Some(command))
}

fn err(e: SimError) -> String {
    e.to_string()
}

/// Run one command; `None` means quit.
async fn run(sim: &SimHandle, command: Command) -> Option<Vec<String>> {
    let lines = match command {
        Command::Quit => return None,
        Command::Tap(script, tech) => {
            let options = TapOptions {
                tech,
                ..TapOptions::default()
            };
            match sim.tap(script, options).await {
                Ok(report) => {
                    let mut lines = vec![format!(
                        "TAP {} {} {}",
                        outcome_name(&report.outcome),
                        report.apdus.len(),
                        report.total.as_micros()
                    )];
                    lines.extend(report.apdus.iter().map(|r| {
                        format!(
                            "APDU {} {} {}",
                            hex(&r.cmd),
                            hex(&r.rsp),
                            r.latency().as_micros()
                        )
                    }));
                    lines
                }
                Err(e) => vec![format!("ERR {e}")],
            }
        }
        Command::Fault(spec) => {
            sim.arm_fault(spec.fault, spec.trigger);
            vec!["OK".to_owned()]
        }
        Command::Field(on) => match sim.field(on) {
            Ok(()) => vec!["OK".to_owned()],
            Err(e) => vec![format!("ERR {e}")],
        },
        Command::PowerCycle => {
            sim.power_cycle().await;
            vec!["OK".to_owned()]
        }
        Command::WaitReady(limit) => match tokio::time::timeout(limit, sim.wait_ready()).await {
            Ok(()) => vec!["OK".to_owned()],
            Err(_) => vec!["ERR timeout".to_owned()],
        },
    };
    Some(lines)
}

fn say(lines: &[String]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let host = SimHost::new(
        args.profile,
        SimOptions {
            bus: args.i2c_bus,
            ..SimOptions::default()
        },
    );
    let served = match args.tcp {
        Some(addr) => host
            .serve_tcp(addr)
            .await
            .map(|(local, task)| (format!("TCP {local}"), task)),
        None => host
            .serve_pty()
            .map(|(path, task)| (format!("PTY {}", path.display()), task)),
    };
    let (banner, mut serving) = match served {
        Ok(served) => served,
        Err(e) => {
            eprintln!("nci-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = say(&[banner]) {
        eprintln!("nci-sim: standard output: {e}");
        return ExitCode::FAILURE;
    }

    // Standard input is read on a thread of its own: a blocking read must not stall the
    // controller, which runs on this one.
    let (lines_tx, mut lines) = mpsc::channel::<String>(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });

    let sim = host.handle();
    let code = loop {
        tokio::select! {
            line = lines.recv() => {
                let Some(line) = line else { break ExitCode::SUCCESS };
                let reply = match parse_command(&line) {
                    Ok(None) => continue,
                    Ok(Some(command)) => match run(&sim, command).await {
                        Some(lines) => lines,
                        None => break ExitCode::SUCCESS,
                    },
                    Err(e) => vec![format!("ERR {e}")],
                };
                if let Err(e) = say(&reply) {
                    eprintln!("nci-sim: standard output: {e}");
                    break ExitCode::FAILURE;
                }
            }
            ended = &mut serving => {
                match ended {
                    Ok(Ok(())) => eprintln!("nci-sim: stopped serving"),
                    Ok(Err(e)) => eprintln!("nci-sim: {e}"),
                    Err(e) => eprintln!("nci-sim: {e}"),
                }
                break ExitCode::FAILURE;
            }
        }
    };
    serving.abort();
    code
}

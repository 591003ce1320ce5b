//! `nfcd-bench`: how much time and memory nfcd adds to a tap, measured on the virtual
//! controller with real processes and a private dbus-daemon (doc/performance.md).
//!
//! ```text
//! cargo build --release --workspace
//! cargo run --release -p nfcd-e2e --bin nfcd-bench [-- --quick] [--json] [--iterations N]
//!     [--select-taps N] [--taps N] [--idle-secs S]
//! ```
//!
//! One run prints, with medians and 99th percentiles:
//! 1. APDU overhead on the D-Bus path: last C-APDU byte into nfcd's transport → first R-APDU
//!    byte out of it (nfcd's own `Monitor1` timestamps), against a bare zbus echo of the same
//!    octets between two processes through the same dbus-daemon; and the ratio.
//! 2. The same on the fast path (`OpenApduChannel`), against a bare SOCK_SEQPACKET echo.
//! 3. RF activation → SELECT response with 1, 10 and 100 registered services.
//! 4. The EMV and transit reader scripts with the I²C bus modelled at 100 / 400 / 3400 kHz:
//!    total time and the shares of the bus and of nfcd.
//! 5. nfcd's resident memory idle and after many taps, its wake-ups per second when idle, its
//!    start-up time to `READY=1`, and the size of the stripped binary.
//!
//! The micro-benchmarks (NCI parse/emit, reassembly, AID resolution, routing-table build) are
//! divan benchmarks: `cargo bench -p libnci`, `cargo bench -p nfcd --bench hce`.
//!
//! The binaries measured (`nfcd`, `payment-wallet`, `transit-wallet`) are the ones next to this
//! executable, or in `NFCD_E2E_BIN_DIR`; nothing is built here. A hidden mode,
//! `--echo-server`, is the answering end of every hop measured (module `echo`).

mod bare;
mod echo;
mod report;
mod sys;
mod trace;

use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use libnci::sim::{BusSpeed, RfTiming};
use nfcd::simhost::{
    outcome_detail, Profile, SimHost, SimOptions, TapOptions, TapOutcome, TapReport, TapScript,
};
use nfcd_e2e::bus::{name_owner, wait_default, wait_services};
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{Link, Rig, RigOptions, Tuning, BUS_NAME};
use nfcd_e2e::scratch::Scratch;
use nfcd_e2e::scripts::{Apdus, SW_OK};
use nfcd_e2e::{binary, TestBus, BIN_DIR_ENV, WAIT};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::net::UnixDatagram;

use bare::{BareClient, Hop};
use echo::{EchoServer, EchoSetup, CHANNEL_AID, DBUS_AID, DBUS_PATH};
use report::{micros, Report, Section, Summary};
use trace::{TapTrace, Trace};

/// How nfcd reaches the virtual controller: a pty, as a UART controller is reached (nfcd's
/// UART transport). TCP on loopback measured no better on the development VM.
const LINK: Link = Link::Pty;

/// Idle time before each paced bare echo of part 3: about the gap between two of its taps.
const TAP_GAP: Duration = Duration::from_millis(5);

/// Longest a tap of the bench may take: hundreds of APDUs on a busy machine.
const TAP_TIMEOUT: Duration = Duration::from_secs(60);

/// How much to measure.
#[derive(Debug, Clone)]
struct Options {
    /// APDUs per series of parts 1 and 2.
    iterations: usize,
    /// Rounds they are spread over, alternating nfcd and the bare echoes.
    rounds: usize,
    /// Taps per registry size in part 3.
    tap_samples: usize,
    /// Registry sizes of part 3 (services registered).
    registries: Vec<usize>,
    /// Transactions per script and bus speed in part 4.
    transactions: usize,
    /// Taps before the second memory reading of part 5.
    taps: usize,
    /// Idle window for the wake-up count.
    idle: Duration,
    /// nfcd start-ups timed.
    startups: usize,
    /// Print JSON instead of the table.
    json: bool,
}

impl Options {
    fn full() -> Options {
        Options {
            iterations: 2_000,
            rounds: 10,
            tap_samples: 200,
            registries: vec![1, 10, 100],
            transactions: 20,
            taps: 10_000,
            idle: Duration::from_secs(10),
            startups: 5,
            json: false,
        }
    }

    /// A few of everything: checks that every series is produced, not how fast.
    fn quick() -> Options {
        Options {
            iterations: 20,
            rounds: 1,
            tap_samples: 4,
            // Registering hashes the caller's executable (nfcd's identity binding), which takes
            // a while for a debug build of the bench: a quick run keeps the registries small.
            registries: vec![1, 2, 3],
            transactions: 1,
            taps: 40,
            idle: Duration::from_secs(1),
            startups: 1,
            json: false,
        }
    }

    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = if args.iter().any(|a| a == "--quick") {
            Options::quick()
        } else {
            Options::full()
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut number = |name: &str| -> Result<u64, String> {
                let v = it.next().ok_or_else(|| format!("{name} needs a value"))?;
                v.parse()
                    .map_err(|_| format!("{name}: {v:?} is not a number"))
            };
            match arg.as_str() {
                "--quick" => {}
                "--json" => options.json = true,
                "--iterations" => options.iterations = number("--iterations")?.max(1) as usize,
                "--taps" => options.taps = number("--taps")?.max(10) as usize,
                "--select-taps" => options.tap_samples = number("--select-taps")?.max(1) as usize,
                "--idle-secs" => options.idle = Duration::from_secs(number("--idle-secs")?.max(1)),
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        options.rounds = options.rounds.min(options.iterations);
        Ok(options)
    }
}

const USAGE: &str =
    "usage: nfcd-bench [--quick] [--json] [--iterations N] [--select-taps N] [--taps N] [--idle-secs S]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--echo-server") {
        return match echo::main(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nfcd-bench --echo-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The binaries measured are the ones built next to this one (target/<profile>/).
    if std::env::var_os(BIN_DIR_ENV).is_none() {
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
        {
            std::env::set_var(BIN_DIR_ENV, dir);
        }
    }
    // One thread serves the virtual controller, the trace and everything else of the bench, as
    // a reader's own single loop would: a multi-thread runtime wakes a second worker to steal
    // work on every packet, which competes for the two CPUs with the hop being measured.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nfcd-bench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(report) => {
            if options.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nfcd-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn progress(text: &str) {
    eprintln!("nfcd-bench: {text}");
}

async fn run(o: &Options) -> Result<Report, String> {
    let mut report = Report {
        env: environment(o),
        sections: Vec::new(),
    };
    progress("start-up to READY=1");
    let startups = startup_times(o.startups).await?;

    progress("starting nfcd on the virtual PN7150 (pty), private dbus-daemon");
    let rig = Rig::start_tuned(
        RigOptions {
            link: LINK,
            ..RigOptions::default()
        },
        Tuning {
            // No air time: the reader's figures are then host and link alone.
            sim: SimOptions {
                rf_timing: None,
                ..SimOptions::default()
            },
            debug_log: false,
            bus_any_user: true,
        },
    )
    .await;
    let pid = rig.nfcd_pid();
    let owner = name_owner(rig.conn(), BUS_NAME)
        .await
        .ok_or("nfcd does not own org.nfcd")?;
    let trace = Trace::start(rig.conn(), &owner).await?;
    // Let start-up allocations settle before the idle reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = sys::rss_kib(pid)?;

    let (dbus, channel) = apdu_overhead(&rig, &trace, o).await?;
    report.sections.push(dbus);
    report.sections.push(channel);
    let (taps, echo) = activation_to_select(&rig, &trace, o).await?;
    report.sections.push(taps);
    let mut resources = memory_and_idle(&rig, pid, rss_idle, o).await?;
    for server in echo {
        server.stop().await;
    }
    drop(trace);
    rig.finish().await;

    let mut transactions = Section::new(
        "4. Whole transactions: reader scripts against payment-wallet / transit-wallet, I²C bus \
         modelled, RF air time on",
    );
    for speed in [BusSpeed::Standard, BusSpeed::Fast, BusSpeed::HighSpeed] {
        whole_transactions(speed, o, &mut transactions).await?;
    }
    report.sections.push(transactions);

    let ready: Vec<Duration> = startups;
    resources.series("startup.ready", "start-up: exec → READY=1", &ready);
    binary_size(&mut resources)?;
    report.sections.push(resources);
    Ok(report)
}

fn environment(o: &Options) -> Vec<(String, String)> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let nfcd = std::env::var_os(BIN_DIR_ENV)
        .map(|d| Path::new(&d).join("nfcd").display().to_string())
        .unwrap_or_default();
    vec![
        (
            "machine".to_owned(),
            format!(
                "{cpus} CPUs ({}), Linux {}, load average {} at start",
                sys::cpu_model(),
                sys::kernel(),
                sys::load_average()
            ),
        ),
        ("nfcd".to_owned(), nfcd),
        (
            "nfcd-bench".to_owned(),
            format!(
                "{} build; {} APDUs per series in {} rounds, {} taps per registry size, {} \
                 transactions per script and speed, {} taps for memory, {} s idle",
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                },
                o.iterations,
                o.rounds,
                o.tap_samples,
                o.transactions,
                o.taps,
                o.idle.as_secs()
            ),
        ),
    ]
}

/// A short case 4 command (ISO/IEC 7816-4 §5.1): `80 EC 00 00 08 <8 octets> 00`, 14 octets;
/// echoed as 8 octets and `90 00`.
fn short_command() -> Vec<u8> {
    let mut c = vec![0x80, 0xEC, 0x00, 0x00, 0x08];
    c.extend(1..=8u8);
    c.push(0x00);
    c
}

/// The longest short case 4 command: `80 EC 00 00 FF <255 octets> 00`, 261 octets (two NCI data
/// packets on a PN7150); echoed as 255 octets and `90 00` (two packets back).
fn long_command() -> Vec<u8> {
    let mut c = vec![0x80, 0xEC, 0x00, 0x00, 0xFF];
    c.extend((0..255u32).map(|i| i as u8));
    c.push(0x00);
    c
}

/// Most commands after the SELECT in one tap of parts 1 and 2: a few times an EMV
/// transaction's 6–8 APDUs, and few enough for nfcd's monitor to hold the whole tap's trace
/// (NCI packets, credits and APDUs: at most 9 events per 261-octet APDU) back until the tap
/// ends, as it does for any transaction (doc/monitor-api.md).
const APDUS_PER_TAP: usize = 25;

/// The commands of each tap that sends `count` in all, [`APDUS_PER_TAP`] at most per tap.
fn tap_sizes(count: usize) -> impl Iterator<Item = usize> {
    (0..count)
        .step_by(APDUS_PER_TAP)
        .map(move |sent| (count - sent).min(APDUS_PER_TAP))
}

/// How long nfcd sits idle between two commands of a tap: the reader's round trip (`reader`,
/// untraced taps) less nfcd's own interval (traced taps), medians. The paced bare echo leaves
/// its two processes idle as long before each exchange.
fn idle_between_apdus(traced: &[(TapTrace, TapReport)], reader: &[Duration]) -> Duration {
    let inside: Vec<Duration> = traced
        .iter()
        .flat_map(|(t, _)| t.apdus.iter().skip(1).map(|a| a.overhead()))
        .collect();
    median_duration(reader).saturating_sub(median_duration(&inside))
}

/// The targets `<key>_median` and `<key>_p99`: nfcd's figure over the comparator's `what`.
fn ratios(section: &mut Section, key: &str, what: &str, nfcd: Summary, bare: Summary, limit: f64) {
    for (stat, ours, theirs) in [
        ("median", nfcd.median_us, bare.median_us),
        ("p99", nfcd.p99_us, bare.p99_us),
    ] {
        section.target(
            &format!("{key}_{stat}"),
            &format!("  ratio nfcd / {what}, {stat}"),
            ours / theirs,
            "×",
            limit,
        );
    }
}

fn median_duration(samples: &[Duration]) -> Duration {
    Summary::of(samples).map_or(Duration::ZERO, |s| {
        Duration::from_secs_f64(s.median_us / 1e6)
    })
}

/// A tap: SELECT `aid`, then `command` `count` times, every answer `90 00`.
async fn tap(rig: &Rig, aid: &[u8], command: &[u8], count: usize) -> Result<TapReport, String> {
    let mut script = Apdus::new("bench").select(aid, SW_OK);
    for _ in 0..count {
        script = script.send(command.to_vec(), SW_OK);
    }
    let options = TapOptions {
        timeout: TAP_TIMEOUT,
        ..TapOptions::default()
    };
    let report = rig.tap_with(script.build(), options).await;
    completed(report)
}

fn completed(report: TapReport) -> Result<TapReport, String> {
    if report.outcome == TapOutcome::Completed {
        Ok(report)
    } else {
        Err(format!(
            "tap {}: {}",
            report.script,
            outcome_detail(&report.outcome)
        ))
    }
}

/// Samples of one path and size in parts 1 and 2.
#[derive(Default)]
struct PathSamples {
    nfcd: Vec<Duration>,
    inbound: Vec<Duration>,
    hop: Vec<Duration>,
    outbound: Vec<Duration>,
    reader: Vec<Duration>,
    reader_unmonitored: Vec<Duration>,
    bare: Vec<Duration>,
    bare_paced: Vec<Duration>,
    /// The pause before each exchange of the paced bare echo, one per round.
    pauses: Vec<Duration>,
    lost_taps: usize,
}

impl PathSamples {
    /// Take the trace of a monitored tap; the SELECT (index 0) is not one of the measured
    /// commands.
    fn add_traced(&mut self, tap: &TapTrace, report: &TapReport) {
        if tap.lost {
            self.lost_taps += 1;
            return;
        }
        for apdu in tap.apdus.iter().skip(1) {
            self.nfcd.push(apdu.overhead());
            self.inbound.extend(apdu.inbound());
            self.hop.extend(apdu.hop());
            self.outbound.extend(apdu.outbound());
        }
        self.reader
            .extend(report.apdus.iter().skip(1).map(|r| r.latency()));
    }
}

/// Parts 1 and 2.
async fn apdu_overhead(
    rig: &Rig,
    trace: &Trace,
    o: &Options,
) -> Result<(Section, Section), String> {
    progress("1–2: APDU overhead, D-Bus path and fast path, against the bare echoes");
    let (client, theirs) = BareClient::start(rig.bus_address()).await?;
    let echo = EchoServer::start(
        rig.bus_address(),
        EchoSetup {
            target: true,
            channel: true,
            ..EchoSetup::default()
        },
        Some(&theirs),
    )
    .await?;
    drop(theirs);
    let sizes = [
        ("short", short_command(), "14 → 10 B"),
        ("long", long_command(), "261 → 257 B"),
    ];
    let zbus = Hop::Zbus {
        dest: echo.name.clone(),
        path: DBUS_PATH.to_owned(),
    };
    // [size][0 = D-Bus, 1 = channel]
    let mut samples: Vec<[PathSamples; 2]> = sizes.iter().map(|_| Default::default()).collect();
    let per_round = o.iterations.div_ceil(o.rounds);
    // Round 0 warms every piece up (page faults, caches, the bus's buffers) and is not kept.
    for round in 0..=o.rounds {
        let count = if round == 0 {
            per_round.min(50)
        } else {
            per_round
        };
        for (s, (_, command, _)) in sizes.iter().enumerate() {
            for (p, aid) in [DBUS_AID, CHANNEL_AID].iter().enumerate() {
                let mut traced = Vec::new();
                trace.subscribe().await?;
                for n in tap_sizes(count) {
                    let report = tap(rig, aid, command, n).await?;
                    let events = trace.take_tap().await?;
                    let tap = TapTrace::parse(&events).ok_or("no activation in the trace")?;
                    traced.push((tap, report));
                }
                trace.unsubscribe().await?;
                let mut plain = Vec::new();
                for n in tap_sizes(count) {
                    plain.push(tap(rig, aid, command, n).await?);
                }
                let plain_rtt: Vec<Duration> = plain
                    .iter()
                    .flat_map(|r| r.apdus.iter().skip(1).map(|a| a.latency()))
                    .collect();
                let hop = if p == 0 { zbus.clone() } else { Hop::Seqpacket };
                let bare = client.measure(hop.clone(), command, count).await?;
                let pause = idle_between_apdus(&traced, &plain_rtt);
                let paced = client.measure_paced(hop, command, count, pause).await?;
                if round == 0 {
                    continue;
                }
                let set = &mut samples[s][p];
                for (tap, report) in &traced {
                    set.add_traced(tap, report);
                }
                set.reader_unmonitored.extend(plain_rtt);
                set.bare.extend(bare);
                set.bare_paced.extend(paced);
                set.pauses.push(pause);
            }
        }
        if round > 0 {
            progress(&format!("1–2: round {round}/{}", o.rounds));
        }
    }
    echo.stop().await;
    wait_services(rig.manager(), "the echo server's services gone", |s| {
        s.is_empty()
    })
    .await;
    drop(client);

    let mut sections = [
        Section::new("1. APDU overhead, D-Bus path (ProcessApdu through dbus-daemon)"),
        Section::new("2. APDU overhead, fast path (OpenApduChannel, SOCK_SEQPACKET)"),
    ];
    for (p, section) in sections.iter_mut().enumerate() {
        let (path, bare_label, ratio_limit) = if p == 0 {
            ("dbus", "bare zbus echo (same bus)", 1.2)
        } else {
            ("channel", "bare SEQPACKET echo", 1.5)
        };
        for (s, (size, _, octets)) in sizes.iter().enumerate() {
            let set = &samples[s][p];
            let key = |what: &str| format!("{path}.{size}.{what}");
            let nfcd = section.series(
                &key("nfcd"),
                &format!("nfcd: last C-APDU byte in → first R-APDU byte out, {octets}"),
                &set.nfcd,
            );
            let bare = section.series(&key("bare"), &format!("{bare_label}, {octets}"), &set.bare);
            if let (Some(nfcd), Some(bare)) = (nfcd, bare) {
                ratios(section, &key("ratio"), "bare", nfcd, bare, ratio_limit);
            }
            let pause = median_duration(&set.pauses);
            let paced = section.series(
                &key("bare_paced"),
                &format!(
                    "{bare_label}, {octets}, paced like the tap ({} µs idle before each)",
                    pause.as_micros()
                ),
                &set.bare_paced,
            );
            if let (Some(nfcd), Some(paced)) = (nfcd, paced) {
                let what = "bare paced like the tap";
                ratios(section, &key("ratio_paced"), what, nfcd, paced, ratio_limit);
            }
            if let (Some(nfcd), 1) = (nfcd, p) {
                section.target(&key("median"), "  nfcd median", nfcd.median_us, "µs", 60.0);
            }
            section.series(
                &key("inbound"),
                "  of which read → handed to the service",
                &set.inbound,
            );
            section.series(
                &key("hop"),
                "  of which the IPC hop (handed over → answer back)",
                &set.hop,
            );
            section.series(
                &key("outbound"),
                "  of which answer back → first packet handed to the transport",
                &set.outbound,
            );
            let monitored = section.series(
                &key("reader"),
                "  reader round trip (sim + pty + nfcd), nfcd traced",
                &set.reader,
            );
            let plain = section.series(
                &key("reader_unmonitored"),
                "  reader round trip, nfcd not traced",
                &set.reader_unmonitored,
            );
            if let (Some(m), Some(u)) = (monitored, plain) {
                section.value(
                    &key("monitor_cost"),
                    "  cost of the trace (reader medians, traced − not)",
                    m.median_us - u.median_us,
                    "µs",
                );
            }
            if set.lost_taps > 0 {
                section.note(format!(
                    "{} traced taps dropped: nfcd's monitor lost signals",
                    set.lost_taps
                ));
            }
        }
    }
    let [dbus, channel] = sections;
    Ok((dbus, channel))
}

/// Fillers one echo server registers at most: nfcd binds at most 64 service Ids to one uid.
const FILLERS_PER_UID: usize = 50;

/// Start echo servers registering the target and `fillers` fillers: the first one as the
/// bench's uid, the others as 65534, 65533, ... (`nobody` and below), 50 fillers each.
async fn start_registry(rig: &Rig, fillers: usize) -> Result<Vec<EchoServer>, String> {
    let mut servers = Vec::new();
    let mut start = 0;
    let mut chunk = 0u32;
    loop {
        let end = (start + FILLERS_PER_UID).min(fillers);
        let setup = EchoSetup {
            target: chunk == 0,
            fillers: start..end,
            uid: (chunk > 0).then(|| 65_534 - (chunk - 1)),
            ..EchoSetup::default()
        };
        servers.push(EchoServer::start(rig.bus_address(), setup, None).await?);
        if end >= fillers {
            return Ok(servers);
        }
        start = end;
        chunk += 1;
    }
}

/// Part 3; hands back the echo servers of the largest registry, kept for part 5.
async fn activation_to_select(
    rig: &Rig,
    trace: &Trace,
    o: &Options,
) -> Result<(Section, Vec<EchoServer>), String> {
    let mut section = Section::new(
        "3. Tap: RF activation → SELECT response, by services registered (a filler has 10 AIDs)",
    );
    let mut kept = None;
    let largest = o.registries.iter().copied().max().unwrap_or(1);
    // The SELECT's comparator: the same call made by a bare client after an idle pause.
    let (bare, _theirs) = BareClient::start(rig.bus_address()).await?;
    let select_apdu = {
        let mut c = vec![0x00, 0xA4, 0x04, 0x00, DBUS_AID.len() as u8];
        c.extend_from_slice(&DBUS_AID);
        c.push(0x00);
        c
    };
    for &services in &o.registries {
        progress(&format!(
            "3: activation → SELECT with {services} service(s)"
        ));
        let echo = start_registry(rig, services - 1).await?;
        wait_services(rig.manager(), "the services registered", |s| {
            s.len() == services
        })
        .await;
        let mut at_nfcd = Vec::new();
        let mut select = Vec::new();
        let mut select_hop = Vec::new();
        let mut reader = Vec::new();
        let mut lost = 0;
        trace.subscribe().await?;
        // Three warm-up taps.
        for i in 0..o.tap_samples + 3 {
            let report = tap(rig, &DBUS_AID, &[], 0).await?;
            let events = trace.take_tap().await?;
            if i < 3 {
                continue;
            }
            let traced = TapTrace::parse(&events).ok_or("no activation in the trace")?;
            if traced.lost {
                lost += 1;
                continue;
            }
            if let Some(first) = traced.apdus.first() {
                at_nfcd.push(Duration::from_micros(
                    first.tx_first.saturating_sub(traced.activated),
                ));
                select.push(first.overhead());
                select_hop.extend(first.hop());
            }
            if let (Some(activated), Some(first)) = (report.activated_at, report.apdus.first()) {
                reader.push(first.answered_at - activated);
            }
        }
        trace.unsubscribe().await?;
        let mut reader_plain = Vec::new();
        for _ in 0..o.tap_samples {
            let report = tap(rig, &DBUS_AID, &[], 0).await?;
            if let (Some(activated), Some(first)) = (report.activated_at, report.apdus.first()) {
                reader_plain.push(first.answered_at - activated);
            }
        }
        let dest = echo
            .first()
            .map(|server| server.name.clone())
            .ok_or("no echo server")?;
        let hop = Hop::Zbus {
            dest,
            path: DBUS_PATH.to_owned(),
        };
        let paced = bare
            .measure_paced(hop, &select_apdu, o.tap_samples, TAP_GAP)
            .await?;
        let key = |what: &str| format!("tap.{services}.{what}");
        let summary = section.series(
            &key("nfcd"),
            &format!("{services:>3} service(s): RF_INTF_ACTIVATED_NTF in → SELECT response out"),
            &at_nfcd,
        );
        section.series(
            &key("select"),
            "      of which SELECT in → response out",
            &select,
        );
        section.series(
            &key("select_hop"),
            "        of which the service's hop",
            &select_hop,
        );
        section.series(
            &key("bare_paced"),
            "        bare zbus echo of the SELECT, 5 ms idle before each",
            &paced,
        );
        section.series(
            &key("reader"),
            "      reader: activated → SELECT response received",
            &reader,
        );
        section.series(
            &key("reader_unmonitored"),
            "      the same, nfcd not traced",
            &reader_plain,
        );
        if let (true, Some(summary)) = (services == largest, summary) {
            section.target(
                "tap.largest.median",
                &format!("      activation → SELECT response, {services} services, median"),
                summary.median_us,
                "µs",
                1000.0,
            );
        }
        if lost > 0 {
            section.note(format!("{lost} taps dropped: nfcd's monitor lost signals"));
        }
        if services == largest {
            kept = Some(echo);
        } else {
            for server in echo {
                server.stop().await;
            }
            wait_services(rig.manager(), "the echo server's services gone", |s| {
                s.is_empty()
            })
            .await;
        }
    }
    let echo = kept.ok_or("no echo server kept")?;
    Ok((section, echo))
}

/// Part 5 without the start-up and the binary: memory before and after `o.taps` taps, then
/// wake-ups while idle.
async fn memory_and_idle(
    rig: &Rig,
    pid: u32,
    rss_idle: u64,
    o: &Options,
) -> Result<Section, String> {
    let mut section = Section::new("5. Resources");
    progress(&format!(
        "5: {} taps (SELECT + one command, {} services registered)",
        o.taps,
        o.registries.iter().max().unwrap_or(&1)
    ));
    let tenth = o.taps / 10;
    let command = short_command();
    let mut rss_tenth = 0;
    let started = Instant::now();
    for i in 1..=o.taps {
        tap(rig, &DBUS_AID, &command, 1).await?;
        if i == tenth {
            rss_tenth = sys::rss_kib(pid)?;
        }
    }
    let elapsed = started.elapsed();
    let rss_after = sys::rss_kib(pid)?;
    section.target(
        "rss.idle_kib",
        "nfcd VmRSS idle after start-up",
        rss_idle as f64,
        "KiB",
        8192.0,
    );
    section.value(
        "rss.tenth_kib",
        &format!("nfcd VmRSS after {tenth} taps"),
        rss_tenth as f64,
        "KiB",
    );
    section.value(
        "rss.after_kib",
        &format!("nfcd VmRSS after {} taps", o.taps),
        rss_after as f64,
        "KiB",
    );
    section.target(
        "rss.growth_kib",
        &format!("  growth from tap {tenth} to tap {}", o.taps),
        rss_after as f64 - rss_tenth as f64,
        "KiB",
        0.0,
    );
    section.value(
        "taps.per_s",
        "  taps per second in that loop",
        o.taps as f64 / elapsed.as_secs_f64(),
        "",
    );

    progress(&format!("5: {} s idle", o.idle.as_secs()));
    // Timers of the last tap (deadlines, signals in flight) run out first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before, threads) = sys::context_switches(pid)?;
    tokio::time::sleep(o.idle).await;
    let (after, _) = sys::context_switches(pid)?;
    section.target(
        "idle.wakeups_per_s",
        &format!("nfcd wake-ups per second idle ({threads} threads)"),
        after.saturating_sub(before) as f64 / o.idle.as_secs_f64(),
        "/s",
        0.0,
    );
    if o.taps < 1_000 {
        section.note("(a quick run: too few taps to tell memory growth from noise)");
    }
    Ok(section)
}

/// Part 4 at one bus speed.
async fn whole_transactions(
    speed: BusSpeed,
    o: &Options,
    section: &mut Section,
) -> Result<(), String> {
    let khz = speed.hz() / 1000;
    progress(&format!("4: EMV and transit with the I²C bus at {khz} kHz"));
    let rig = Rig::start_tuned(
        RigOptions::default(),
        Tuning {
            sim: SimOptions {
                bus: Some(speed),
                rf_timing: Some(RfTiming::default()),
                ..SimOptions::default()
            },
            debug_log: false,
            bus_any_user: false,
        },
    )
    .await;
    let _payment = rig
        .wallet(WalletKind::Payment, "org.nfcd.bench.payment", &[])
        .await;
    let _transit = rig
        .wallet(
            WalletKind::Transit,
            "org.nfcd.bench.transit",
            &["--balance", "4000000000", "--set-default"],
        )
        .await;
    wait_default(rig.manager(), "transit", "org.nfcd.bench.transit").await;
    let owner = name_owner(rig.conn(), BUS_NAME)
        .await
        .ok_or("nfcd does not own org.nfcd")?;
    let trace = Trace::start(rig.conn(), &owner).await?;
    trace.subscribe().await?;
    for (script, name) in [(TapScript::Emv, "emv"), (TapScript::Transit, "transit")] {
        let mut totals = Vec::new();
        let (mut total, mut bus, mut own, mut hop) = (
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        );
        let mut apdus = 0;
        for i in 0..=o.transactions {
            let report = completed(rig.tap(script).await)?;
            let events = trace.take_tap().await?;
            if i == 0 {
                continue;
            }
            let traced = TapTrace::parse(&events).ok_or("no activation in the trace")?;
            let Some(took) = report.transaction_time() else {
                continue;
            };
            if traced.lost {
                continue;
            }
            totals.push(took);
            total += took;
            bus += traced.bus_time(speed);
            own += traced.own_time();
            hop += traced.hop_time();
            apdus = report.apdus.len();
        }
        let key = |what: &str| format!("txn.{name}.{khz}.{what}");
        let share = |part: Duration| {
            if total.is_zero() {
                f64::NAN
            } else {
                100.0 * part.as_secs_f64() / total.as_secs_f64()
            }
        };
        if let Some(s) = Summary::of(&totals) {
            section.value(
                &key("total_ms"),
                &format!("{name} at {khz} kHz, {apdus} APDUs: activation → last R-APDU, median"),
                s.median_us / 1000.0,
                "ms",
            );
        }
        section.value(&key("bus_pct"), "  I²C bus share", share(bus), "%");
        if name == "emv" && speed == BusSpeed::Fast {
            section.target(&key("nfcd_pct"), "  nfcd's own share", share(own), "%", 2.0);
        } else {
            section.value(&key("nfcd_pct"), "  nfcd's own share", share(own), "%");
        }
        section.value(
            &key("wallet_pct"),
            "  wallet hop share (IPC and the wallet's work)",
            share(hop),
            "%",
        );
        if !totals.is_empty() {
            section.value(
                &key("nfcd_us"),
                "  nfcd's own time per transaction",
                micros(own) / totals.len() as f64,
                "µs",
            );
        }
    }
    trace.unsubscribe().await?;
    drop(trace);
    rig.finish().await;
    Ok(())
}

/// nfcd started as systemd starts it (`NOTIFY_SOCKET`), `count` times after one warm-up: from
/// the exec to its `READY=1` (sd_notify(3)), which it sends once the controller is initialised
/// and it owns its bus name.
async fn startup_times(count: usize) -> Result<Vec<Duration>, String> {
    let scratch = Scratch::new("startup");
    let bus = TestBus::session();
    let config = scratch.join("nfcd.toml");
    std::fs::write(&config, "[lock]\nmode = \"unlocked\"\n")
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let state = scratch.join("state");
    let mut times = Vec::new();
    for i in 0..=count {
        let host = SimHost::new(Profile::Pn7150, SimOptions::default());
        let (pty, serving) = host
            .serve_pty()
            .map_err(|e| format!("serving the virtual controller: {e}"))?;
        let socket_path = scratch.join(&format!("notify-{i}"));
        let socket = UnixDatagram::bind(&socket_path)
            .map_err(|e| format!("{}: {e}", socket_path.display()))?;
        let log = std::fs::File::create(scratch.join(&format!("nfcd-{i}.log")))
            .map_err(|e| format!("nfcd log: {e}"))?;
        let mut cmd = tokio::process::Command::new(binary("nfcd"));
        cmd.arg("--transport")
            .arg(format!("uart:{}", pty.display()))
            .arg("--bus")
            .arg(bus.address())
            .arg("--state-dir")
            .arg(&state)
            .arg("--config")
            .arg(&config)
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("JOURNAL_STREAM")
            .env_remove("RUST_LOG")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd.spawn().map_err(|e| format!("starting nfcd: {e}"))?;
        let mut buf = vec![0u8; 4096];
        let ready = tokio::time::timeout(WAIT, async {
            loop {
                let n = socket.recv(&mut buf).await?;
                let text = String::from_utf8_lossy(&buf[..n]);
                if text.lines().any(|l| l == "READY=1") {
                    return Ok::<Duration, std::io::Error>(started.elapsed());
                }
            }
        })
        .await;
        let took = match ready {
            Ok(Ok(took)) => took,
            Ok(Err(e)) => return Err(format!("notify socket: {e}")),
            Err(_) => return Err("nfcd sent no READY=1".to_owned()),
        };
        if i > 0 {
            times.push(took);
        }
        if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = tokio::time::timeout(WAIT, child.wait()).await;
        serving.abort();
    }
    Ok(times)
}

/// Size of the nfcd binary measured, and of a copy run through `strip`.
fn binary_size(section: &mut Section) -> Result<(), String> {
    let path = binary("nfcd");
    let size = sys::file_size(&path)?;
    section.value(
        "binary.size_bytes",
        "nfcd binary as built (release profile strips symbols)",
        size as f64,
        "B",
    );
    let scratch = Scratch::new("strip");
    let copy = scratch.join("nfcd.stripped");
    let stripped = std::process::Command::new("strip")
        .arg("-o")
        .arg(&copy)
        .arg(&path)
        .status();
    match stripped {
        Ok(status) if status.success() => {
            let size = sys::file_size(&copy)?;
            section.target(
                "binary.stripped_mib",
                "  stripped copy (strip -o)",
                size as f64 / (1024.0 * 1024.0),
                "MiB",
                8.0,
            );
        }
        Ok(status) => section.note(format!("strip failed ({status}); stripped size unknown")),
        Err(e) => section.note(format!("strip not available ({e}); stripped size unknown")),
    }
    Ok(())
}

//! A soak run: many taps in a row — EMV, transit, unknown AID and hostile — with random
//! controller faults and wallet restarts (SIGTERM and SIGKILL) in between, against one nfcd.
//!
//! Every tap must end in an outcome the reader defines (never a hung tap, never a controller
//! that does not come back), every tap no fault touched must complete with every status word as
//! its script expects, no registration may be lost, nfcd may not panic, and its resident set
//! must stay flat after the warm-up. The figures are printed.
//!
//! `NFCD_SOAK_TAPS` sets the number of taps (default [`DEFAULT_TAPS`], a short run for every
//! `cargo test`; doc/reliability.md has the figures of a 10 000-tap run), `NFCD_SOAK_SEED` the
//! seed of every random choice (scripts, faults, restarts), so a failing run replays.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use libnci::sim::scripts::HOSTILE_AID;
use libnci::sim::{Fault, Trigger, XorShift64};
use libnci::wire::Status;
use nfcd::simhost::{
    outcome_name, SimError, SimHandle, SimOptions, TapOptions, TapOutcome, TapReport, TapScript,
};
use nfcd_e2e::bus::{wait_registered, wait_services, wait_unregistered};
use nfcd_e2e::process::{Memory, Wallet, WalletKind};
use nfcd_e2e::rig::{service_ids, Rig, RigOptions, Tuning};
use nfcd_e2e::{hex, within, WAIT};

/// Taps of a default run: enough for the default seed to fire a few faults and restart a
/// wallet, short enough for every `cargo test`.
const DEFAULT_TAPS: usize = 60;
/// Chance that a fault is armed before a tap.
const FAULT_CHANCE: f64 = 0.03;
/// One wallet restart per this many taps.
const RESTART_EVERY: usize = 25;
/// After a tap a fault touched, how long the daemon may still act on it: the controller
/// driver's command and credit timeouts (1 s) and its longest re-initialisation back-off (2 s,
/// libnci `controller::Config`), with room to spare. The next tap starts after it, so that tap
/// is judged on its own.
const SETTLE: Duration = Duration::from_millis(3_500);
/// How much nfcd's resident set may grow from the end of the warm-up to the end of the run.
const RSS_GROWTH_LIMIT_KIB: u64 = 4 * 1024;

/// The faults drawn from: everything the fault injector does except a dead controller (which
/// needs a power cycle nfcd cannot do over a UART).
fn draw_fault(rng: &mut XorShift64) -> (&'static str, Fault) {
    match rng.next_u32() % 9 {
        0 => ("drop-response", Fault::DropResponse),
        1 => ("corrupt-header", Fault::CorruptHeader),
        2 => ("wrong-length", Fault::WrongLength),
        3 => ("spurious-reset", Fault::SpuriousCoreResetNtf),
        4 => ("generic-error", Fault::CoreGenericErrorNtf(Status::Failed)),
        5 => ("lose-credit", Fault::LoseCreditsNtf),
        6 => ("link-loss-mid-apdu", Fault::LinkLossMidApdu),
        7 => ("drop-command", Fault::DropCommand),
        _ => (
            "inject-garbage",
            Fault::Inject(vec![0xE5, 0xFF, 0x03, 0xDE, 0xAD]),
        ),
    }
}

/// The script of a tap: mostly EMV and transit, some unknown AIDs, a few hostile readers.
fn draw_script(rng: &mut XorShift64) -> TapScript {
    match rng.next_u32() % 100 {
        0..=44 => TapScript::Emv,
        45..=79 => TapScript::Transit,
        80..=96 => TapScript::UnknownAid,
        _ => TapScript::Hostile,
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// One of the wallets, as it is started again after a restart.
struct Member {
    kind: WalletKind,
    id: &'static str,
    args: Vec<String>,
    process: Wallet,
}

impl Member {
    async fn start(rig: &Rig, kind: WalletKind, id: &'static str, args: Vec<String>) -> Member {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = rig.wallet(kind, id, &refs).await;
        Member {
            kind,
            id,
            args,
            process,
        }
    }
}

/// Sum of how often every armed fault fired.
fn fired(sim: &SimHandle, armed: &[nfcd::simhost::FaultId]) -> u64 {
    armed.iter().map(|&id| u64::from(sim.fault_fired(id))).sum()
}

/// A tap once the controller is discovering. The daemon may start reconfiguring between the
/// wait and the tap (after a fault); that is retried, anything else is no defined outcome.
async fn tap(rig: &Rig, script: TapScript) -> TapReport {
    let sim = rig.sim();
    let options = TapOptions {
        timeout: WAIT,
        ..TapOptions::default()
    };
    for _ in 0..5 {
        within(
            "the controller discovering again (nfcd recovered)",
            WAIT,
            sim.wait_ready(),
        )
        .await;
        match sim.tap(script, options.clone()).await {
            Ok(report) => return report,
            Err(SimError::NotDiscovering(_)) => continue,
            Err(e) => panic!("tap {script}: {e}: no outcome a tap may have"),
        }
    }
    panic!("tap {script}: the controller never stayed discovering long enough to tap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_taps_with_faults_and_restarts_lose_nothing() {
    let taps = env_number("NFCD_SOAK_TAPS", DEFAULT_TAPS as u64) as usize;
    let seed = env_number("NFCD_SOAK_SEED", 0x50AC);
    let mut rng = XorShift64::new(seed);
    let rig = Rig::start_tuned(
        RigOptions::default(),
        Tuning {
            sim: SimOptions {
                rf_timing: None,
                seed,
                ..SimOptions::default()
            },
            ..Tuning::default()
        },
    )
    .await;
    let mut members = vec![
        Member::start(&rig, WalletKind::Payment, "org.e2e.soak.pay", Vec::new()).await,
        Member::start(
            &rig,
            WalletKind::Transit,
            "org.e2e.soak.transit",
            vec!["--balance".into(), "4000000000".into()],
        )
        .await,
        Member::start(
            &rig,
            WalletKind::Test,
            "org.e2e.soak.hostile",
            vec!["--aid".into(), hex(&HOSTILE_AID)],
        )
        .await,
    ];
    let mut expected: Vec<String> = members.iter().map(|m| m.id.to_owned()).collect();
    expected.sort();

    let sim = rig.sim();
    let warm_up = (taps / 10).clamp(1, 200);
    let mut armed = Vec::new();
    let mut fault_names: BTreeMap<&str, u32> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();
    let mut scripts: BTreeMap<&str, u32> = BTreeMap::new();
    let (mut clean, mut touched, mut restarts) = (0u32, 0u32, 0u32);
    let mut warm: Option<Memory> = None;
    let mut highest_rss = 0u64;
    let started = Instant::now();

    for i in 0..taps {
        if i > 0 && i % RESTART_EVERY == 0 {
            let n = rng.next_u32() as usize % members.len();
            let member = &mut members[n];
            let old_owner = wait_registered(rig.manager(), member.id).await.owner;
            if rng.chance(0.5) {
                member.process.stop().await;
            } else {
                member.process.kill().await;
            }
            // nfcd drops a killed wallet's registration when the bus says it left; only then
            // does "registered" mean the new process.
            wait_unregistered(rig.manager(), member.id).await;
            let refs: Vec<&str> = member.args.iter().map(String::as_str).collect();
            member.process = rig.wallet(member.kind, member.id, &refs).await;
            let id = member.id;
            wait_services(rig.manager(), &format!("{id} registered again"), |s| {
                s.iter().any(|i| i.id == id && i.owner != old_owner)
            })
            .await;
            restarts += 1;
        }
        if rng.chance(FAULT_CHANCE) {
            let (name, fault) = draw_fault(&mut rng);
            let nth = 1 + rng.next_u32() % 8;
            armed.push(sim.arm_fault(fault, Trigger::Nth(nth)));
            *fault_names.entry(name).or_default() += 1;
        }
        let script = draw_script(&mut rng);
        *scripts.entry(script.name()).or_default() += 1;
        let before = fired(&sim, &armed);
        let report = tap(&rig, script).await;
        let after = fired(&sim, &armed);
        *outcomes
            .entry(outcome_name(&report.outcome).to_owned())
            .or_default() += 1;
        if after == before {
            clean += 1;
            assert_eq!(
                report.outcome,
                TapOutcome::Completed,
                "tap {i} ({script}), no fault fired: {:?}",
                report.outcome
            );
            if script == TapScript::Hostile {
                assert_eq!(report.value("selected"), Some(&[1u8][..]), "tap {i}");
            }
        } else {
            touched += 1;
            // Let every consequence of the fault play out (faults armed earlier may fire now
            // too), then check that the registrations survived the controller's troubles.
            let mut seen = after;
            loop {
                tokio::time::sleep(SETTLE).await;
                let now = fired(&sim, &armed);
                if now == seen {
                    break;
                }
                seen = now;
            }
            assert_eq!(service_ids(rig.manager()).await, expected, "after tap {i}");
        }
        if i + 1 == warm_up {
            warm = Some(rig.nfcd_memory());
        }
        if i % 50 == 0 {
            highest_rss = highest_rss.max(rig.nfcd_memory().rss_kib);
        }
    }
    let elapsed = started.elapsed();
    let end = rig.nfcd_memory();
    highest_rss = highest_rss.max(end.rss_kib);

    // Zero lost registrations.
    assert_eq!(service_ids(rig.manager()).await, expected);
    // A run long enough to mean anything has met faults and restarts.
    if taps >= DEFAULT_TAPS {
        assert!(
            touched > 0 && restarts > 0,
            "no fault fired or no restart in {taps} taps"
        );
    }
    let warm = warm.unwrap_or(end);
    let total_fired = fired(&sim, &armed);
    println!(
        "soak: {taps} taps (seed {seed:#x}) in {:.1} s, {:.1} ms per tap; scripts {scripts:?}; \
         outcomes {outcomes:?}; {clean} taps without a fault, all completed; {touched} taps \
         touched by a fault; faults armed {fault_names:?}, fired {total_fired} times; \
         {restarts} wallet restarts; nfcd after the warm-up of {warm_up} taps {warm}, at the end \
         {end}, highest sampled RSS {highest_rss} KiB, growth {} KiB",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / taps as f64,
        end.rss_kib as i64 - warm.rss_kib as i64
    );
    assert!(
        end.rss_kib <= warm.rss_kib + RSS_GROWTH_LIMIT_KIB,
        "nfcd's resident set grew from {warm} after the warm-up to {end}"
    );
    for member in &mut members {
        member.process.stop().await;
    }
    rig.finish().await;
}

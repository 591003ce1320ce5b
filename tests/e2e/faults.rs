//! Faults injected in the middle of a tap (doc/reliability.md): for each one the reader gets a
//! defined answer or a clean end of the link, nfcd is discovering again within a stated bound
//! (printed, collect with `--nocapture`), every registration and default survives, the next
//! tap succeeds, and nfcd's log holds no panic.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use libnci::sim::{Fault, Trigger};
use libnci::wire::DeactivationReason;
use libnci::wire::Status;
use nfcd::simhost::{
    FaultId, SimError, SimHandle, TapOptions, TapOutcome, TapReport, TapScript, DELAY_RESPONSE,
};
use nfcd_e2e::bus::{
    record_str, simulator_inject_fault, simulator_tap, wait_default, wait_present, wait_registered,
    Adapter1Proxy, ServiceInfo,
};
use nfcd_e2e::process::{Line, Wallet, WalletKind};
use nfcd_e2e::rig::{tap_options, Link, Rig, RigOptions};
use nfcd_e2e::scripts::{Apdus, SW_OK};
use nfcd_e2e::{hex, unhex, within, WAIT};
use tokio::task::JoinHandle;

const PAYMENT: &str = "org.e2e.faults.pay";
const TRANSIT: &str = "org.e2e.faults.transit";

/// A rig with a payment and a transit wallet, each its category's default.
struct Bench {
    rig: Rig,
    wallets: Vec<Wallet>,
    services: Vec<ServiceInfo>,
    defaults: HashMap<String, String>,
}

impl Bench {
    async fn start(options: RigOptions) -> Bench {
        Bench::on(Rig::start(options).await).await
    }

    /// The wallets on a rig already started.
    async fn on(rig: Rig) -> Bench {
        let payment = rig.wallet(WalletKind::Payment, PAYMENT, &[]).await;
        let transit = rig.wallet(WalletKind::Transit, TRANSIT, &[]).await;
        for (category, id) in [("payment", PAYMENT), ("transit", TRANSIT)] {
            rig.manager()
                .set_default_service(category, id)
                .await
                .unwrap_or_else(|e| panic!("SetDefaultService({category}, {id}): {e}"));
            wait_default(rig.manager(), category, id).await;
        }
        let (services, defaults) = registrations(&rig).await;
        assert_eq!(services.len(), 2, "{services:#?}");
        Bench {
            rig,
            wallets: vec![payment, transit],
            services,
            defaults,
        }
    }

    /// Add a wallet to the bench (and to the registrations that must survive).
    async fn add_wallet(&mut self, kind: WalletKind, id: &str, extra: &[&str]) -> usize {
        let wallet = self.rig.wallet(kind, id, extra).await;
        self.wallets.push(wallet);
        wait_registered(self.rig.manager(), id).await;
        let (services, defaults) = registrations(&self.rig).await;
        assert_eq!(services.len(), self.wallets.len(), "{services:#?}");
        self.services = services;
        self.defaults = defaults;
        self.wallets.len() - 1
    }

    /// The wallet got the commands the reader saw answered and, at most, the one in flight;
    /// then the end of the session, once, for one of `reasons` (the order in which the end of
    /// the link and the fault reach nfcd may vary).
    async fn assert_wallet_saw(
        &mut self,
        label: &str,
        wallet: usize,
        report: &TapReport,
        reasons: &[&str],
    ) {
        let wallet = &mut self.wallets[wallet];
        wallet
            .wait_lines("Deactivated", 1, |l| matches!(l, Line::Deactivated(_)))
            .await;
        let commands = wallet.commands().len();
        assert!(
            (report.apdus.len()..=report.apdus.len() + 1).contains(&commands),
            "{label}: the wallet got {commands} commands, the reader {} answers",
            report.apdus.len()
        );
        let got = wallet.deactivations();
        assert!(
            got.len() == 1 && reasons.contains(&got[0].as_str()),
            "{label}: Deactivated {got:?}, expected one of {reasons:?}"
        );
    }

    /// Print the recovery time `took` with what nfcd logged and check it against `bound`;
    /// then check that the registrations survived and a normal tap succeeds, and finish.
    async fn recovered_within(mut self, label: &str, took: Duration, bound: Duration) {
        eprintln!(
            "RECOVERY {label}: discovering again {} ms after the fault (bound {} ms)",
            took.as_millis(),
            bound.as_millis()
        );
        for line in what_nfcd_did(&self.rig) {
            eprintln!("  {label}: nfcd: {line}");
        }
        assert!(
            took <= bound,
            "{label}: recovery took {} ms, bound {} ms",
            took.as_millis(),
            bound.as_millis()
        );
        self.assert_registrations_kept(label).await;
        self.assert_next_tap_succeeds(label).await;
        self.assert_registrations_kept(label).await;
        self.finish().await;
    }

    /// Every registration and default is as before the fault.
    async fn assert_registrations_kept(&self, label: &str) {
        let (services, defaults) = registrations(&self.rig).await;
        assert_eq!(services, self.services, "{label}: Services changed");
        assert_eq!(defaults, self.defaults, "{label}: DefaultServices changed");
    }

    /// A normal EMV tap completes, answered by the payment wallet.
    async fn assert_next_tap_succeeds(&mut self, label: &str) {
        let before = self.wallets[0].commands().len();
        let apdus = if self.rig.transport().starts_with("sim") {
            let (outcome, apdus) = simulator1_tap(label, &self.rig).await;
            assert_eq!(outcome, "completed", "{label}: the next tap");
            apdus
        } else {
            let report = self.rig.tap(TapScript::Emv).await;
            assert_eq!(
                report.outcome,
                TapOutcome::Completed,
                "{label}: {report:#?}"
            );
            report.apdus.len()
        };
        self.wallets[0]
            .wait_lines("the next tap's commands", before + apdus, |l| {
                matches!(l, Line::Command(_))
            })
            .await;
    }

    async fn finish(mut self) {
        for wallet in &mut self.wallets {
            wallet.stop().await;
        }
        self.rig.finish().await;
    }
}

/// `Services` sorted by Id, and `DefaultServices`.
async fn registrations(rig: &Rig) -> (Vec<ServiceInfo>, HashMap<String, String>) {
    let mut services = rig
        .manager()
        .services()
        .await
        .unwrap_or_else(|e| panic!("Services: {e}"));
    services.sort_by(|a, b| a.id.cmp(&b.id));
    let defaults = rig
        .manager()
        .default_services()
        .await
        .unwrap_or_else(|e| panic!("DefaultServices: {e}"));
    (services, defaults)
}

/// The warnings nfcd logged (how it noticed and handled the fault), without their time stamps
/// and colours.
fn what_nfcd_did(rig: &Rig) -> Vec<String> {
    rig.nfcd_log()
        .lines()
        .filter(|l| l.contains("WARN"))
        .map(|l| l.rsplit("\u{1b}[0m ").next().unwrap_or(l).to_owned())
        .collect()
}

/// Whether nfcd must re-initialise the controller to get over a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// The controller returns to discovery by itself (the session just ended).
    Rediscovery,
    /// nfcd resets and initialises the controller again (CORE_RESET_CMD ... RF_DISCOVER_CMD).
    Reinit,
}

/// From the fault firing to nfcd having the controller discovering again: how long the
/// recovery took.
async fn watch_recovery(sim: SimHandle, fault: FaultId, recovery: Recovery) -> Duration {
    sim.wait_until(|s| s.fault_fired(fault) > 0).await;
    let fired = Instant::now();
    let commands = sim.stats().nfcc.commands;
    match recovery {
        Recovery::Rediscovery => sim.wait_ready().await,
        // Discovering again because nfcd sent its start-up commands after the fault, not
        // because the controller sat in RFST_DISCOVERY before nfcd noticed anything.
        Recovery::Reinit => {
            sim.wait_until(|s| s.stats().nfcc.commands > commands && s.is_ready())
                .await
        }
    }
    fired.elapsed()
}

/// Await a recovery watch.
async fn recovery_time(label: &str, watch: JoinHandle<Duration>) -> Duration {
    within(&format!("{label}: recovery"), WAIT, watch)
        .await
        .unwrap_or_else(|e| panic!("{label}: recovery watch: {e}"))
}

/// Wait until the virtual controller was power-cycled after `cycles` (a new connection, as
/// when the device is plugged in again) and nfcd has it discovering.
async fn reconnected(label: &str, sim: &SimHandle, cycles: u64) {
    within(
        &format!("{label}: nfcd discovering on the controller again"),
        WAIT,
        sim.wait_until(|s| s.stats().power_cycles > cycles && s.is_ready()),
    )
    .await;
}

/// One fault in the middle of an EMV tap.
/// How long the reader of the faulted taps waits for each answer.
const READER_APDU_TIMEOUT: Duration = Duration::from_millis(500);

struct Case {
    label: &'static str,
    fault: Fault,
    trigger: Trigger,
    recovery: Recovery,
    /// Longest recovery accepted (doc/reliability.md derives each).
    bound: Duration,
    /// How the reader saw the tap end.
    reader: TapOutcome,
    /// The `Deactivated` reasons the payment wallet may have got for the faulted tap.
    deactivated: &'static [&'static str],
}

async fn run(case: Case) {
    let mut bench = Bench::start(RigOptions::default()).await;
    let sim = bench.rig.sim();
    let fault = sim.arm_fault(case.fault.clone(), case.trigger);
    let watch = tokio::spawn(watch_recovery(sim.clone(), fault, case.recovery));
    // The reader gives up on an APDU well before nfcd's credit timeout (1 s), as a terminal
    // does (its frame waiting time is far shorter): with both at 1 s, which one ended a tap
    // whose credit was lost depended on the machine's timing.
    let options = TapOptions {
        apdu_timeout: READER_APDU_TIMEOUT,
        ..tap_options()
    };
    let report = bench.rig.tap_script_with(TapScript::Emv, options).await;
    assert_eq!(
        sim.fault_fired(fault),
        1,
        "{}: the fault did not fire during the tap",
        case.label
    );
    eprintln!(
        "{}: reader saw {:?} after {} exchange(s)",
        case.label,
        report.outcome,
        report.apdus.len()
    );
    assert_eq!(report.outcome, case.reader, "{}: {report:#?}", case.label);
    bench
        .assert_wallet_saw(case.label, 0, &report, case.deactivated)
        .await;
    let took = recovery_time(case.label, watch).await;
    bench.recovered_within(case.label, took, case.bound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_header_mid_tap() {
    run(Case {
        label: "corrupted header",
        fault: Fault::CorruptHeader,
        trigger: Trigger::Nth(5),
        recovery: Recovery::Reinit,
        bound: Duration::from_secs(1),
        reader: TapOutcome::Timeout { step: 1 },
        deactivated: &["reset"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_length_mid_tap() {
    run(Case {
        label: "wrong length",
        fault: Fault::WrongLength,
        trigger: Trigger::Nth(5),
        recovery: Recovery::Reinit,
        bound: Duration::from_secs(2),
        reader: TapOutcome::Timeout { step: 1 },
        deactivated: &["reset", "link-loss"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spurious_core_reset_ntf_mid_tap() {
    run(Case {
        label: "spurious CORE_RESET_NTF",
        fault: Fault::SpuriousCoreResetNtf,
        trigger: Trigger::Nth(5),
        recovery: Recovery::Reinit,
        bound: Duration::from_secs(1),
        reader: TapOutcome::Timeout { step: 1 },
        deactivated: &["reset"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_generic_error_ntf_mid_tap() {
    run(Case {
        label: "CORE_GENERIC_ERROR_NTF",
        fault: Fault::CoreGenericErrorNtf(Status::Failed),
        trigger: Trigger::Nth(5),
        recovery: Recovery::Reinit,
        bound: Duration::from_secs(1),
        reader: TapOutcome::Timeout { step: 1 },
        deactivated: &["reset"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_credit_mid_tap() {
    run(Case {
        label: "lost credit",
        fault: Fault::LoseCreditsNtf,
        trigger: Trigger::Once,
        recovery: Recovery::Rediscovery,
        bound: Duration::from_secs(2),
        reader: TapOutcome::Timeout { step: 1 },
        deactivated: &["deselected"],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_loss_mid_apdu() {
    run(Case {
        label: "link loss mid-APDU",
        fault: Fault::LinkLossMidApdu,
        trigger: Trigger::Nth(2),
        recovery: Recovery::Rediscovery,
        bound: Duration::from_secs(1),
        reader: TapOutcome::LinkLoss {
            step: 1,
            reason: DeactivationReason::RfLinkLoss,
        },
        deactivated: &["link-loss"],
    })
    .await;
}

/// A wallet that takes 400 ms over each answer: long enough for the test to act while nfcd
/// waits for it, in the middle of a tap.
const SLOW: &str = "org.e2e.faults.slow";
const SLOW_AID: &str = "F0E2E0F0F0";

impl Bench {
    /// Add the slow wallet; its index in [`Bench::wallets`].
    async fn add_slow_wallet(&mut self) -> usize {
        let aid = hex(&unhex(SLOW_AID));
        self.add_wallet(
            WalletKind::Test,
            SLOW,
            &["--aid", &aid, "--behaviour", "slow=400"],
        )
        .await
    }

    /// Start a tap that selects the slow wallet, on the virtual reader's own thread; returns
    /// once the wallet is working on the SELECT: the middle of the tap, for 400 ms.
    async fn slow_tap(&mut self, slow: usize) -> JoinHandle<Result<TapReport, SimError>> {
        let sim = self.rig.sim();
        within("RFST_DISCOVERY before the tap", WAIT, sim.wait_ready()).await;
        let script = Apdus::new("slow").select(&unhex(SLOW_AID), SW_OK).build();
        let options = TapOptions {
            timeout: WAIT,
            ..TapOptions::default()
        };
        let tap = tokio::spawn(async move { sim.tap_with(script, options).await });
        self.wallets[slow]
            .wait_lines("the SELECT", 1, |l| matches!(l, Line::Command(_)))
            .await;
        tap
    }
}

/// The end of a tap started with [`Bench::slow_tap`].
async fn tap_report(label: &str, tap: JoinHandle<Result<TapReport, SimError>>) -> TapReport {
    let report = within(&format!("{label}: the tap"), WAIT, tap)
        .await
        .unwrap_or_else(|e| panic!("{label}: the reader's task: {e}"))
        .unwrap_or_else(|e| panic!("{label}: tap: {e}"));
    eprintln!(
        "{label}: reader saw {:?} after {} exchange(s)",
        report.outcome,
        report.apdus.len()
    );
    report
}

/// The user switches NFC off and on again (`Adapter1.Powered`) while a wallet works on an
/// APDU: nfcd stops discovery at once (RF_DEACTIVATE_CMD, NCI 1.0 §5.2.5), and the
/// controller's RF_DEACTIVATE_RSP is hit by `fault` — the one command nfcd sends in the middle
/// of a tap. nfcd must notice within its command timeout (1 s), re-initialise, and be
/// discovering again, powered as the user left it.
async fn response_fault_mid_tap(label: &str, fault: Fault, bound: Duration) {
    let mut bench = Bench::start(RigOptions::default()).await;
    let slow = bench.add_slow_wallet().await;
    let sim = bench.rig.sim();
    let fault = sim.arm_fault(fault, Trigger::Once);
    let watch = tokio::spawn(watch_recovery(sim.clone(), fault, Recovery::Reinit));
    let tap = bench.slow_tap(slow).await;
    for on in [false, true] {
        bench
            .rig
            .adapter()
            .set_powered(on)
            .await
            .unwrap_or_else(|e| panic!("{label}: Powered = {on}: {e}"));
    }
    let report = tap_report(label, tap).await;
    assert_eq!(sim.fault_fired(fault), 1, "{label}: the fault did not fire");
    assert_eq!(
        report.outcome,
        TapOutcome::LinkLoss {
            step: 0,
            reason: DeactivationReason::DhRequest
        },
        "{label}"
    );
    bench
        .assert_wallet_saw(label, slow, &report, &["dh-request", "reset"])
        .await;
    assert!(bench.rig.adapter().powered().await.unwrap_or(false));
    let took = recovery_time(label, watch).await;
    bench.recovered_within(label, took, bound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_timeout_mid_tap() {
    response_fault_mid_tap(
        "response timeout",
        Fault::DropResponse,
        Duration::from_millis(1500),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_response_mid_tap() {
    response_fault_mid_tap(
        "late response",
        Fault::DelayResponse(DELAY_RESPONSE),
        Duration::from_millis(2500),
    )
    .await;
}

/// The controller's TCP connection ends in the middle of a tap (the peer closed it: nfcd's
/// transport reads end of file) and the controller takes the next connection at once: nfcd
/// reconnects after its first back-off (100 ms) and initialises the controller again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_eof_mid_tap() {
    let label = "transport EOF";
    let mut bench = Bench::start(RigOptions {
        link: Link::Tcp,
        ..RigOptions::default()
    })
    .await;
    let slow = bench.add_slow_wallet().await;
    let sim = bench.rig.sim();
    let cycles = sim.stats().power_cycles;
    let tap = bench.slow_tap(slow).await;
    bench.rig.cut_link();
    let cut = Instant::now();
    bench.rig.restore_link().await;
    reconnected(label, &sim, cycles).await;
    let took = cut.elapsed();
    let report = tap_report(label, tap).await;
    assert_reader_lost_the_card(label, &report);
    bench
        .assert_wallet_saw(label, slow, &report, &["link-loss"])
        .await;
    bench
        .recovered_within(label, took, Duration::from_millis(1000))
        .await;
}

/// The reader's SELECT was never answered: the card went silent (the reader's 1 s timeout)
/// or its link ended.
fn assert_reader_lost_the_card(label: &str, report: &TapReport) {
    assert!(
        matches!(
            report.outcome,
            TapOutcome::Timeout { step: 0 } | TapOutcome::LinkLoss { step: 0, .. }
        ),
        "{label}: {report:#?}"
    );
}

/// Lines of nfcd's log saying it could not open the transport, with the retry delay each
/// announced (`cannot open ...; retrying in N ms`).
fn open_retries(rig: &Rig) -> Vec<u64> {
    rig.nfcd_log()
        .lines()
        .filter(|l| l.contains("cannot open"))
        .filter_map(|l| {
            let ms = l.rsplit("retrying in ").next()?.strip_suffix(" ms")?;
            ms.parse().ok()
        })
        .collect()
}

/// Wait until nfcd has logged `count` failed attempts to open the transport; their retry
/// delays.
async fn wait_open_retries(label: &str, rig: &Rig, count: usize) -> Vec<u64> {
    let what = format!("{label}: {count} failed attempts to reopen");
    rig.wait_log(&what, WAIT, |_| {
        let retries = open_retries(rig);
        (retries.len() >= count).then_some(retries)
    })
    .await
}

/// The controller's device goes away in the middle of a tap and comes back later: the
/// adapter shows `Present=false` while nfcd retries with a growing back-off, every
/// registration and default stays, and once the device is back nfcd finds it at its next
/// attempt and initialises it. The recovery is counted from the device's return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_removed_and_re_added_mid_tap() {
    let label = "device removed and re-added";
    let mut bench = Bench::start(RigOptions {
        link: Link::Tcp,
        ..RigOptions::default()
    })
    .await;
    let slow = bench.add_slow_wallet().await;
    let sim = bench.rig.sim();
    let cycles = sim.stats().power_cycles;
    let tap = bench.slow_tap(slow).await;
    bench.rig.cut_link();
    wait_present(bench.rig.adapter(), false).await;
    let report = tap_report(label, tap).await;
    assert_reader_lost_the_card(label, &report);
    bench
        .assert_wallet_saw(label, slow, &report, &["link-loss"])
        .await;
    let delays = wait_open_retries(label, &bench.rig, 2).await;
    assert!(
        delays.windows(2).all(|w| w[1] > w[0]),
        "{label}: the retry delays do not grow: {delays:?}"
    );
    bench.assert_registrations_kept(label).await;
    bench.rig.restore_link().await;
    let back = Instant::now();
    reconnected(label, &sim, cycles).await;
    let took = back.elapsed();
    wait_present(bench.rig.adapter(), true).await;
    // The next attempt comes at most the last announced delay after the device's return.
    let bound = Duration::from_millis(delays.last().copied().unwrap_or(0) * 2 + 500);
    bench.recovered_within(label, took, bound).await;
}

/// The master side of the controller's pseudo-terminal closes in the middle of a tap (the
/// UART adapter is unplugged: nfcd reads a hang-up) and never comes back: nfcd ends the
/// session cleanly, shows `Present=false`, keeps retrying with a growing back-off, keeps
/// every registration and default, and stops cleanly on SIGTERM. (A device node that comes
/// back is the hotplug scenarios' subject.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uart_hang_up_mid_tap() {
    let label = "UART hang-up";
    let mut bench = Bench::start(RigOptions::default()).await;
    let slow = bench.add_slow_wallet().await;
    let tap = bench.slow_tap(slow).await;
    bench.rig.cut_link();
    wait_present(bench.rig.adapter(), false).await;
    let report = tap_report(label, tap).await;
    assert_reader_lost_the_card(label, &report);
    bench
        .assert_wallet_saw(label, slow, &report, &["link-loss"])
        .await;
    let delays = wait_open_retries(label, &bench.rig, 3).await;
    assert!(
        delays.windows(2).all(|w| w[1] > w[0]),
        "{label}: the retry delays do not grow: {delays:?}"
    );
    for line in what_nfcd_did(&bench.rig) {
        eprintln!("  {label}: nfcd: {line}");
    }
    bench.assert_registrations_kept(label).await;
    bench.finish().await;
}

/// The controller-level re-initialisations nfcd logged, in order: (attempt, back-off in ms),
/// from `controller re-initialising (attempt N, in X ms): cause`.
fn reinit_attempts(log: &str) -> Vec<(u32, u64)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split("controller re-initialising (attempt ").nth(1)?;
            let (attempt, rest) = rest.split_once(", in ")?;
            let (ms, _) = rest.split_once(" ms)")?;
            Some((attempt.parse().ok()?, ms.parse().ok()?))
        })
        .collect()
}

/// The controller answers nothing from nfcd's very first command on (dead, or not yet
/// powered): nfcd stays up and serves the bus — wallets register and choose defaults —,
/// shows `Present=false`, retries the start-up with a growing back-off (the controller's
/// re-initialisations; when they give up, a reset through the transport and a new start after
/// the daemon's own back-off), and says so in its log. When the controller comes alive (a
/// power cycle), the next attempt initialises it: discovery runs and the registrations made
/// meanwhile are all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_never_answers_at_start_up() {
    let label = "never answers at start-up";
    let mut dead = None;
    let rig = Rig::launch(RigOptions::default(), |sim| {
        dead = Some(sim.arm_fault(Fault::Dead, Trigger::Once));
    })
    .await;
    let Some(dead) = dead else {
        panic!("{label}: no virtual controller to arm");
    };
    let sim = rig.sim();
    within(
        &format!("{label}: nfcd's first command"),
        WAIT,
        sim.wait_until(|s| s.fault_fired(dead) > 0),
    )
    .await;
    let bench = Bench::on(rig).await;
    // The controller's own attempts give up after the first start and five re-initialisations,
    // each a command timeout (1 s) plus a back-off; then nfcd resets and starts again.
    let restarted = bench
        .rig
        .wait_log(
            &format!("{label}: nfcd giving up once and starting again"),
            Duration::from_secs(15),
            |log| {
                let gave_up = log.find("gave up re-initialising; resetting it in ")?;
                log[gave_up..]
                    .contains("resetting the controller and starting again")
                    .then(|| reinit_attempts(&log[..gave_up]))
            },
        )
        .await;
    eprintln!("{label}: re-initialisations before giving up (attempt, back-off ms): {restarted:?}");
    let delays: Vec<u64> = restarted.iter().map(|(_, ms)| *ms).collect();
    assert!(
        delays.len() >= 2 && delays.windows(2).all(|w| w[1] > w[0]),
        "{label}: the back-off does not grow: {restarted:?}"
    );
    for line in what_nfcd_did(&bench.rig) {
        eprintln!("  {label}: nfcd: {line}");
    }
    assert_eq!(bench.rig.adapter().present().await.ok(), Some(false));
    bench.assert_registrations_kept(label).await;

    sim.power_cycle().await;
    let alive = Instant::now();
    wait_present(bench.rig.adapter(), true).await;
    within(&format!("{label}: discovery"), WAIT, sim.wait_ready()).await;
    let took = alive.elapsed();
    // nfcd was waiting for the answer to a command the dead controller swallowed: a command
    // timeout, the first back-off, one start-up.
    bench
        .recovered_within(label, took, Duration::from_millis(1500))
        .await;
}

/// An EMV tap through `org.nfcd.Simulator1` (nfcd's own virtual controller): how the reader
/// saw it end (the summary's `Outcome`) and the APDU exchanges it completed.
async fn simulator1_tap(label: &str, rig: &Rig) -> (String, usize) {
    let records = simulator_tap(rig.conn(), "emv", HashMap::new())
        .await
        .unwrap_or_else(|e| panic!("{label}: Simulator1.Tap(emv): {e}"));
    let Some((summary, apdus)) = records.split_last() else {
        panic!("{label}: an empty Tap reply");
    };
    let outcome = record_str(summary, "Outcome")
        .unwrap_or_default()
        .to_owned();
    (outcome, apdus.len())
}

/// When `Present` next goes false (nfcd lost the controller), and when it is true again
/// (nfcd initialised it and discovery runs), from a subscription made before the fault.
async fn present_lost_and_back(adapter: Adapter1Proxy<'static>) -> (Instant, Instant) {
    let mut changes = adapter.receive_present_changed().await;
    let mut lost = None;
    while let Some(change) = changes.next().await {
        match (change.get().await.ok(), lost) {
            (Some(false), None) => lost = Some(Instant::now()),
            (Some(true), Some(lost)) => return (lost, Instant::now()),
            _ => {}
        }
    }
    panic!("the Present subscription ended");
}

/// A fault of the I²C bus (`Simulator1.InjectFault`, doc/simulator-api.md) hits an EMV tap
/// on nfcd's own virtual PN7150 behind a simulated I²C slave, which nfcd reaches through
/// its real I²C transport. The transport reports the fault; nfcd shows `Present=false`,
/// drops the transport and opens it again, which resets the controller through VEN
/// (UM10936: VEN low is hard power-down) and clears what the fault left on the bus; then it
/// initialises the controller. The recovery is counted from `Present=false` to `Present=true`.
async fn i2c_fault_mid_tap(label: &str, fault: &str, logged: &str, bound: Duration) {
    let mut bench = Bench::start(RigOptions {
        link: Link::BuiltinI2c,
        ..RigOptions::default()
    })
    .await;
    let presence = tokio::spawn(present_lost_and_back(bench.rig.adapter().clone()));
    simulator_inject_fault(bench.rig.conn(), fault)
        .await
        .unwrap_or_else(|e| panic!("{label}: InjectFault({fault}): {e}"));
    let tapped = Instant::now();
    let (outcome, apdus) = simulator1_tap(label, &bench.rig).await;
    eprintln!("{label}: reader saw {outcome} after {apdus} exchange(s)");
    assert!(
        outcome == "timeout" || outcome == "link-loss",
        "{label}: the reader saw {outcome}"
    );
    let (lost, back) = within(
        &format!("{label}: Present false, then true"),
        WAIT,
        presence,
    )
    .await
    .unwrap_or_else(|e| panic!("{label}: Present watch: {e}"));
    eprintln!(
        "{label}: nfcd lost the controller {} ms into the tap",
        lost.duration_since(tapped).as_millis()
    );
    // A wallet that got a command of the lost tap hears that the link ended, once.
    let wallet = &mut bench.wallets[0];
    let commands = wallet.commands().len();
    assert!(commands <= apdus + 1, "{label}: {commands} commands");
    if commands > 0 {
        wallet.wait_deactivated("link-loss", 1).await;
    }
    eprintln!(
        "{label}: wallet got {commands} command(s), Deactivated {:?}",
        wallet.deactivations()
    );
    assert!(wallet.deactivations().len() <= 1, "{label}");
    // The fault fired: the transport said what it saw.
    let log = bench.rig.nfcd_log();
    assert!(
        log.contains(logged),
        "{label}: nfcd's log does not say {logged:?}"
    );
    bench
        .recovered_within(label, back.duration_since(lost), bound)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i2c_nack_storm_mid_tap() {
    // The first write of the tap is the SELECT's answer; every try of it is NACKed.
    i2c_fault_mid_tap(
        "I²C NACK storm",
        "i2c-nack-storm",
        "controller NACKed 5 write tries in a row; controller reset by VEN",
        Duration::from_millis(1000),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i2c_read_error_mid_tap() {
    // Reads in a tap: RF_FIELD_INFO_NTF (header, payload), RF_INTF_ACTIVATED_NTF (2), then
    // the SELECT's header and payload: the sixth is the SELECT's payload.
    i2c_fault_mid_tap(
        "I²C read error",
        "i2c-read-error@6",
        "read payload: Input/output error",
        Duration::from_millis(1000),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irq_stuck_high_mid_tap() {
    // IRQ sticks once the SELECT is read (six read transfers into the tap).
    i2c_fault_mid_tap(
        "IRQ stuck high",
        "irq-stuck@6",
        "IRQ stays high but the controller has nothing to read",
        Duration::from_millis(1000),
    )
    .await;
}

/// A burst of NACKs shorter than the I²C transport's write retries (5 tries, 10 ms apart) —
/// what a PN7150 waking from standby does once (UM10936) — is absorbed: the tap completes
/// and nfcd never loses the controller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i2c_nack_burst_is_absorbed() {
    let label = "I²C NACK burst";
    let mut bench = Bench::start(RigOptions {
        link: Link::BuiltinI2c,
        ..RigOptions::default()
    })
    .await;
    simulator_inject_fault(bench.rig.conn(), "i2c-nack-storm@15")
        .await
        .unwrap_or_else(|e| panic!("{label}: InjectFault: {e}"));
    let (outcome, apdus) = simulator1_tap(label, &bench.rig).await;
    assert_eq!(outcome, "completed", "{label}");
    assert_eq!(bench.wallets[0].commands().len(), apdus);
    let log = bench.rig.nfcd_log();
    assert!(log.contains("write NACKed"), "{label}: no NACK in the log");
    assert!(!log.contains("transport failed"), "{label}");
    assert_eq!(bench.rig.adapter().present().await.ok(), Some(true));
    bench.assert_registrations_kept(label).await;
    bench.assert_next_tap_succeeds(label).await;
    bench.finish().await;
}

//! Faults injected in the middle of a tap (doc/reliability.md): for each one the reader gets a
//! defined answer or a clean end of the link, nfcd is discovering again within a stated bound
//! (printed, collect with `--nocapture`), every registration and default survives, the next
//! tap succeeds, and nfcd's log holds no panic.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libnci::sim::{Fault, Trigger};
use libnci::wire::DeactivationReason;
use libnci::wire::Status;
use nfcd::simhost::{
    FaultId, SimHandle, TapOptions, TapOutcome, TapReport, TapScript, DELAY_RESPONSE,
};
use nfcd_e2e::bus::{wait_default, wait_registered, ServiceInfo};
use nfcd_e2e::process::{Line, Wallet, WalletKind};
use nfcd_e2e::rig::{Rig, RigOptions};
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
        let rig = Rig::start(options).await;
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

    /// Await the recovery `watch`, print it with what nfcd logged, check it against `bound`;
    /// then check that the registrations survived and a normal tap succeeds, and finish.
    async fn recovered_within(
        mut self,
        label: &str,
        watch: JoinHandle<(Instant, Duration)>,
        bound: Duration,
    ) {
        let (_, took) = within(&format!("{label}: recovery"), WAIT, watch)
            .await
            .unwrap_or_else(|e| panic!("{label}: recovery watch: {e}"));
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
        let report = self.rig.tap(TapScript::Emv).await;
        assert_eq!(
            report.outcome,
            TapOutcome::Completed,
            "{label}: {report:#?}"
        );
        self.wallets[0]
            .wait_lines(
                "the next tap's commands",
                before + report.apdus.len(),
                |l| matches!(l, Line::Command(_)),
            )
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

/// From the fault firing to nfcd having the controller discovering again: the instant the
/// fault fired, and how long the recovery took.
async fn watch_recovery(sim: SimHandle, fault: FaultId, recovery: Recovery) -> (Instant, Duration) {
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
    (fired, fired.elapsed())
}

/// One fault in the middle of an EMV tap.
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
    let report = bench.rig.tap(TapScript::Emv).await;
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
    bench.recovered_within(case.label, watch, case.bound).await;
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

/// The user switches NFC off and on again (`Adapter1.Powered`) while a wallet works on an
/// APDU: nfcd stops discovery at once (RF_DEACTIVATE_CMD, NCI 1.0 §5.2.5), and the
/// controller's RF_DEACTIVATE_RSP is hit by `fault` — the one command nfcd sends in the middle
/// of a tap. nfcd must notice within its command timeout (1 s), re-initialise, and be
/// discovering again, powered as the user left it.
async fn response_fault_mid_tap(label: &str, fault: Fault, bound: Duration) {
    let mut bench = Bench::start(RigOptions::default()).await;
    let aid = unhex(SLOW_AID);
    let slow = bench
        .add_wallet(
            WalletKind::Test,
            SLOW,
            &["--aid", &hex(&aid), "--behaviour", "slow=400"],
        )
        .await;
    let sim = bench.rig.sim();
    let fault = sim.arm_fault(fault, Trigger::Once);
    let watch = tokio::spawn(watch_recovery(sim.clone(), fault, Recovery::Reinit));
    let script = Apdus::new("slow").select(&aid, SW_OK).build();
    let options = TapOptions {
        timeout: WAIT,
        ..TapOptions::default()
    };
    let adapter = bench.rig.adapter().clone();
    let (report, ()) = {
        let Bench { rig, wallets, .. } = &mut bench;
        let wallet = &mut wallets[slow];
        tokio::join!(rig.tap_with(script, options), async {
            wallet
                .wait_lines("the SELECT", 1, |l| matches!(l, Line::Command(_)))
                .await;
            for on in [false, true] {
                adapter
                    .set_powered(on)
                    .await
                    .unwrap_or_else(|e| panic!("{label}: Powered = {on}: {e}"));
            }
        })
    };
    assert_eq!(sim.fault_fired(fault), 1, "{label}: the fault did not fire");
    eprintln!(
        "{label}: reader saw {:?} after {} exchange(s)",
        report.outcome,
        report.apdus.len()
    );
    bench
        .assert_wallet_saw(label, slow, &report, &["dh-request", "reset"])
        .await;
    assert!(bench.rig.adapter().powered().await.unwrap_or(false));
    bench.recovered_within(label, watch, bound).await;
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

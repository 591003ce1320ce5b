//! Faults injected in the middle of a tap (doc/reliability.md): for each one the reader gets a
//! defined answer or a clean end of the link, nfcd is discovering again within a stated bound
//! (printed, collect with `--nocapture`), every registration and default survives, the next
//! tap succeeds, and nfcd's log holds no panic.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libnci::sim::{Fault, Trigger};
use libnci::wire::DeactivationReason;
use libnci::wire::Status;
use nfcd::simhost::{FaultId, SimHandle, TapOutcome, TapScript};
use nfcd_e2e::bus::{wait_default, ServiceInfo};
use nfcd_e2e::process::{Line, Wallet, WalletKind};
use nfcd_e2e::rig::{Rig, RigOptions};
use nfcd_e2e::{within, WAIT};

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
    /// The `Deactivated` reasons the payment wallet may have got for the faulted tap (the
    /// order in which the end of the link and the fault reach nfcd may vary).
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
    // The wallet got the commands the reader saw answered and, at most, the one in flight;
    // then the end of the session, once.
    let wallet = &mut bench.wallets[0];
    wallet
        .wait_lines("Deactivated", 1, |l| matches!(l, Line::Deactivated(_)))
        .await;
    let commands = wallet.commands().len();
    assert!(
        (report.apdus.len()..=report.apdus.len() + 1).contains(&commands),
        "{}: the wallet got {commands} commands, the reader {} answers",
        case.label,
        report.apdus.len()
    );
    let reasons = wallet.deactivations();
    assert!(
        reasons.len() == 1 && case.deactivated.contains(&reasons[0].as_str()),
        "{}: Deactivated {reasons:?}, expected one of {:?}",
        case.label,
        case.deactivated
    );
    let (_, took) = within(&format!("{}: recovery", case.label), WAIT, watch)
        .await
        .unwrap_or_else(|e| panic!("{}: recovery watch: {e}", case.label));
    eprintln!(
        "RECOVERY {}: discovering again {} ms after the fault (bound {} ms)",
        case.label,
        took.as_millis(),
        case.bound.as_millis()
    );
    for line in what_nfcd_did(&bench.rig) {
        eprintln!("  {}: nfcd: {line}", case.label);
    }
    assert!(
        took <= case.bound,
        "{}: recovery took {} ms, bound {} ms",
        case.label,
        took.as_millis(),
        case.bound.as_millis()
    );
    bench.assert_registrations_kept(case.label).await;
    bench.assert_next_tap_succeeds(case.label).await;
    bench.assert_registrations_kept(case.label).await;
    bench.finish().await;
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

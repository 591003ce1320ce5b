//! What outlives what: default services across a restart of nfcd, registrations across a
//! controller reset (a spurious CORE_RESET_NTF mid-tap, a power cycle); and what nfcd does not
//! outlive: its bus.

use libnci::sim::{Fault, Trigger};
use nfcd::simhost::{Profile, TapOutcome, TapScript};
use nfcd_e2e::bus::{wait_default, wait_present, wait_registered, wait_unregistered};
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{tap_options, Link, Rig, RigOptions};
use nfcd_e2e::scripts::{status_words, Apdus};
use nfcd_e2e::{hex, unhex, WAIT};

/// The default payment service is stored in the state directory: after nfcd restarts it is
/// still the default (`DefaultServices`), and once the wallets register again the tap reaches
/// it and not the other payment wallet — which registered first this time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_the_default_services() {
    let mut rig = Rig::start(RigOptions {
        link: Link::Tcp,
        ..RigOptions::default()
    })
    .await;
    let (chosen, other) = ("org.e2e.pay.chosen", "org.e2e.pay.other");
    let mut wallet = rig.wallet(WalletKind::Payment, chosen, &[]).await;
    let mut rival = rig.wallet(WalletKind::Payment, other, &[]).await;
    rig.manager()
        .set_default_service("payment", chosen)
        .await
        .unwrap_or_else(|e| panic!("SetDefaultService: {e}"));
    wait_default(rig.manager(), "payment", chosen).await;
    wallet.stop().await;
    rival.stop().await;

    rig.restart_nfcd().await;
    wait_default(rig.manager(), "payment", chosen).await;
    assert!(
        rig.manager()
            .services()
            .await
            .unwrap_or_default()
            .is_empty(),
        "registrations do not survive a restart"
    );

    let mut rival = rig.wallet(WalletKind::Payment, other, &[]).await;
    let mut wallet = rig.wallet(WalletKind::Payment, chosen, &[]).await;
    let report = rig.tap(TapScript::Emv).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    wallet.wait_deactivated("deselected", 1).await;
    assert_eq!(wallet.commands().len(), report.apdus.len());
    assert!(rival.lines().is_empty(), "{:?}", rival.lines());

    wallet.stop().await;
    rival.stop().await;
    rig.finish().await;
}

/// The controller announces a reset (CORE_RESET_NTF) in the middle of a tap: the tap is lost,
/// the wallet hears `Deactivated("reset")`, nfcd initialises the controller again, keeps the
/// registration, and the next tap completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reset_mid_tap_is_survived() {
    let rig = Rig::start(RigOptions::default()).await;
    let id = "org.e2e.pay.reset";
    let mut wallet = rig.wallet(WalletKind::Payment, id, &[]).await;
    let sim = rig.sim();
    // Packets to the host in a tap: RF_FIELD_INFO_NTF, RF_INTF_ACTIVATED_NTF, the first
    // C-APDU, then CORE_CONN_CREDITS_NTF once the first R-APDU went out: the CORE_RESET_NTF
    // comes before that credit notification, in the middle of the session.
    let fault = sim.arm_fault(Fault::SpuriousCoreResetNtf, Trigger::Nth(4));
    let report = rig.tap(TapScript::Emv).await;
    assert_eq!(sim.fault_fired(fault), 1);
    assert_ne!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert!(
        !report.apdus.is_empty(),
        "the reset came after the first APDU"
    );
    wallet.wait_deactivated("reset", 1).await;

    // rig.tap waits for discovery: nfcd must have initialised the controller again.
    let before = wallet.commands().len();
    let report = rig.tap(TapScript::Emv).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    wallet.wait_deactivated("deselected", 1).await;
    assert_eq!(wallet.commands().len() - before, report.apdus.len());
    wait_registered(rig.manager(), id).await;

    wallet.stop().await;
    rig.finish().await;
}

/// An NCI 2.0 controller power-cycled (VEN) between taps says CORE_RESET_NTF on power-up
/// (NCI 2.0 §4.1); nfcd initialises it again and the wallets stay registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cycle_between_taps_is_survived() {
    let rig = Rig::start(RigOptions {
        profile: Profile::Nci2,
        link: Link::Tcp,
        apdu_deadline_ms: None,
    })
    .await;
    let aid = unhex("F0E2E000EE");
    let id = "org.e2e.power";
    let mut wallet = rig
        .wallet(WalletKind::Test, id, &["--aid", &hex(&aid)])
        .await;
    let sim = rig.sim();
    let tap = || Apdus::new("power").select(&aid, 0x9000).build();
    let report = rig.tap_with(tap(), tap_options()).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    // The end of the tap (RF_DEACTIVATE_NTF) has reached nfcd before the power goes.
    wallet.wait_deactivated("deselected", 1).await;
    let cycles = sim.stats().power_cycles;

    // Powered up again the controller is idle: only nfcd initialising it again brings it back
    // to discovery, which the tap waits for.
    sim.power_cycle().await;
    let report = rig.tap_with(tap(), tap_options()).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), [0x9000]);
    assert_eq!(sim.stats().power_cycles, cycles + 1);
    wallet.wait_deactivated("deselected", 2).await;
    assert_eq!(wallet.commands().len(), 2);
    wait_registered(rig.manager(), id).await;

    wallet.stop().await;
    wait_unregistered(rig.manager(), id).await;
    rig.finish().await;
}

/// The controller's link goes away (the device is unplugged: nfcd's transport reads EOF) and
/// comes back: the adapter shows `Present=false` meanwhile, every registration and default is
/// kept, nfcd reopens the transport by itself, initialises the controller again and the next
/// tap reaches the same wallet — no restart of nfcd or of the wallet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_link_lost_and_back_keeps_registrations() {
    let mut rig = Rig::start(RigOptions {
        link: Link::Tcp,
        ..RigOptions::default()
    })
    .await;
    let id = "org.e2e.pay.unplugged";
    let mut wallet = rig.wallet(WalletKind::Payment, id, &[]).await;
    rig.manager()
        .set_default_service("payment", id)
        .await
        .unwrap_or_else(|e| panic!("SetDefaultService: {e}"));
    wait_default(rig.manager(), "payment", id).await;

    rig.cut_link();
    wait_present(rig.adapter(), false).await;
    wait_registered(rig.manager(), id).await;
    wait_default(rig.manager(), "payment", id).await;

    rig.restore_link().await;
    wait_present(rig.adapter(), true).await;
    rig.wait_listening().await;
    let report = rig.tap(TapScript::Emv).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(wallet.commands().len(), report.apdus.len());

    wallet.stop().await;
    rig.finish().await;
}

/// `dbus-daemon` dies under a running nfcd and a registered wallet: each says so and exits with
/// status 1, so that the service manager starts it again once the bus is back
/// (`systemd/nfcd.service`: `Restart=on-failure`), instead of running on where nobody can reach
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_bus_ends_nfcd_and_wallets_with_a_failure() {
    let mut rig = Rig::start(RigOptions::default()).await;
    // The test wallet prints READY once its registration is complete, so the bus goes away
    // under a wallet that is serving, not one still registering.
    let mut wallet = rig
        .wallet(
            WalletKind::Test,
            "org.e2e.lifecycle.bus",
            &["--aid", "F0E2E0B05B"],
        )
        .await;
    rig.kill_bus();
    let wallet_status = wallet.wait_exit(WAIT).await;
    assert_eq!(
        wallet_status.and_then(|s| s.code()),
        Some(1),
        "the wallet did not exit with status 1 ({wallet_status:?}); stderr:\n{}",
        wallet.log_tail()
    );
    assert!(
        wallet
            .log_tail()
            .contains("lost the connection to the D-Bus bus"),
        "{}",
        wallet.log_tail()
    );
    let status = rig.wait_nfcd_exit().await;
    let log = rig.nfcd_log();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(1),
        "nfcd did not exit with status 1 ({status:?}); log:\n{log}"
    );
    assert!(
        log.contains("lost the connection to the D-Bus bus"),
        "no word of the lost bus in the log:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

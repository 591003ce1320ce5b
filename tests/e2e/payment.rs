//! Payment taps: the EMV reader script against `payment-wallet`.

use nfcd::simhost::{Profile, TapOutcome, TapScript};
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{Link, Rig, RigOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke() {
    let rig = Rig::start(RigOptions {
        profile: Profile::Pn7150,
        link: Link::Pty,
        apdu_deadline_ms: None,
    })
    .await;
    let wallet = rig.wallet(WalletKind::Payment, "org.e2e.pay", &[]).await;
    let report = rig.tap(TapScript::Emv).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    drop(wallet);
    rig.finish().await;
}

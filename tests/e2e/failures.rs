//! Wallets that fail mid-tap: nfcd answers `6F00` at once on a crash and at the APDU deadline
//! on a hang, never leaving the reader waiting (DESIGN.md, card emulation model).

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use nfcd::simhost::TapOutcome;
use nfcd_e2e::bus::{wait_registered, wait_unregistered};
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{latency, tap_options, Rig};
use nfcd_e2e::scripts::{status_words, Apdus, GET_DATA_ATC, SW_NOT_FOUND, SW_NO_DIAGNOSIS, SW_OK};
use nfcd_e2e::{hex, unhex, WAIT};

/// `test-wallet --behaviour crash-after=1` answers the SELECT and dies (SIGKILL) on the next
/// command. The reader gets `6F00` for it well before the APDU deadline — nfcd learns of the
/// crash from the bus, it does not wait the deadline out — and the wallet's registration is
/// gone: a later SELECT of its AID is `6A82`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_wallet_gets_6f00_at_once_and_its_registration_dropped() {
    const DEADLINE_MS: u32 = 900;
    let rig = Rig::with_deadline(DEADLINE_MS).await;
    let id = "org.e2e.crash";
    let aid = unhex("F0E2E000CC");
    let mut wallet = rig
        .wallet(
            WalletKind::Test,
            id,
            &["--aid", &hex(&aid), "--behaviour", "crash-after=1"],
        )
        .await;

    let script = Apdus::new("crash")
        .select(&aid, SW_OK)
        .send(GET_DATA_ATC, SW_NO_DIAGNOSIS)
        .send(GET_DATA_ATC, SW_NO_DIAGNOSIS);
    let report = rig.tap_with(script.build(), tap_options()).await;

    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    let deadline = Duration::from_millis(u64::from(DEADLINE_MS));
    let crash = latency(&report, 1);
    assert!(
        crash < deadline / 3,
        "6F00 for the crash took {} ms (deadline {} ms)",
        crash.as_millis(),
        deadline.as_millis()
    );
    // The selection died with the wallet: nothing selected any more, 6F00 at once too.
    assert!(latency(&report, 2) < deadline / 3);

    let status = wallet.wait_exit(WAIT).await;
    assert_eq!(
        status.and_then(|s| s.signal()),
        Some(9),
        "killed by SIGKILL"
    );
    assert_eq!(
        wallet.commands().iter().map(|c| hex(c)).collect::<Vec<_>>(),
        [
            hex(&libnci::sim::scripts::select_aid(&aid)),
            hex(&GET_DATA_ATC)
        ]
    );
    wait_unregistered(rig.manager(), id).await;

    let report = rig
        .tap_with(
            Apdus::new("after the crash")
                .select(&aid, SW_NOT_FOUND)
                .build(),
            tap_options(),
        )
        .await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");

    rig.finish().await;
}

/// `test-wallet --behaviour hang` never answers. With `hce.apdu_deadline_ms = 200` the reader
/// gets `6F00` at the deadline, not before and not much after; the next command gets `6F00` at
/// once (the hung service lost the selection); the wallet stays registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_wallet_gets_6f00_at_the_deadline() {
    const DEADLINE_MS: u32 = 200;
    // Scheduling on a shared two-core machine, the air time of the exchange, D-Bus: what the
    // 6F00 may come later than the deadline itself.
    const MARGIN: Duration = Duration::from_millis(250);
    let rig = Rig::with_deadline(DEADLINE_MS).await;
    let id = "org.e2e.hang";
    let aid = unhex("F0E2E000DD");
    let mut wallet = rig
        .wallet(
            WalletKind::Test,
            id,
            &["--aid", &hex(&aid), "--behaviour", "hang"],
        )
        .await;

    let script = Apdus::new("hang")
        .select(&aid, SW_NO_DIAGNOSIS)
        .send(GET_DATA_ATC, SW_NO_DIAGNOSIS);
    let report = rig.tap_with(script.build(), tap_options()).await;

    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), [SW_NO_DIAGNOSIS; 2]);
    let deadline = Duration::from_millis(u64::from(DEADLINE_MS));
    let hung = latency(&report, 0);
    assert!(
        hung >= deadline && hung < deadline + MARGIN,
        "6F00 after {} ms, deadline {} ms",
        hung.as_millis(),
        deadline.as_millis()
    );
    assert!(
        latency(&report, 1) < deadline,
        "the next command waited on the hung wallet again"
    );
    assert_eq!(
        wallet.commands().iter().map(|c| hex(c)).collect::<Vec<_>>(),
        [hex(&libnci::sim::scripts::select_aid(&aid))]
    );
    wait_registered(rig.manager(), id).await;
    assert!(wallet.is_running());

    // SIGTERM still ends it while its handler hangs.
    assert!(wallet.stop().await.success());
    rig.finish().await;
}

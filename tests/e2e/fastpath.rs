//! The APDU channel (`OpenApduChannel`, a SOCK_SEQPACKET socket): APDUs go over it instead of
//! `ProcessApdu`; `Deactivated` stays on D-Bus (doc/manager-api.md).

use nfcd::simhost::{TapOptions, TapOutcome};
use nfcd_e2e::bus::{wait_registered, Monitor};
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{Rig, RigOptions, BUS_NAME};
use nfcd_e2e::scripts::{response_data, status_words, Apdus, GET_DATA_ATC, SW_OK};
use nfcd_e2e::{hex, unhex, WAIT};

/// A wallet with `--channel` answers a whole tap over the socket: the reader gets every answer,
/// the wallet's handler saw every command, and a bus monitor saw not one `ProcessApdu` call —
/// only the `Deactivated` at the end, which proves it was watching the wallet's traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_carries_the_apdus_instead_of_process_apdu() {
    let rig = Rig::start(RigOptions::default()).await;
    let mut monitor = Monitor::method_calls(rig.bus_address(), "org.nfcd.HostService1").await;
    let id = "org.e2e.channel";
    let aid = unhex("F0E2E000FA");
    let mut wallet = rig
        .wallet(WalletKind::Test, id, &["--aid", &hex(&aid), "--channel"])
        .await;
    let owner = wait_registered(rig.manager(), id).await.owner;

    let script = Apdus::new("fast path")
        .select(&aid, SW_OK)
        .send(GET_DATA_ATC, SW_OK)
        .send(GET_DATA_ATC, SW_OK);
    let options = TapOptions {
        timeout: WAIT,
        ..TapOptions::default()
    };
    let report = rig.tap_with(script.build(), options).await;

    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), [0x9000; 3]);
    for i in 0..3 {
        assert_eq!(response_data(&report, i), id.as_bytes());
    }
    wallet.wait_deactivated("deselected", 1).await;
    let sent: Vec<String> = report.apdus.iter().map(|r| hex(&r.cmd)).collect();
    let got: Vec<String> = wallet.commands().iter().map(|c| hex(c)).collect();
    assert_eq!(got, sent);

    monitor.collect_until_marker(rig.conn(), BUS_NAME).await;
    assert_eq!(monitor.calls("ProcessApdu"), []);
    let deactivated = monitor.calls("Deactivated");
    assert_eq!(
        deactivated,
        [(owner, "/org/nfcd/wallets/test".to_owned())],
        "Deactivated goes over D-Bus to the wallet"
    );

    wallet.stop().await;
    rig.finish().await;
}

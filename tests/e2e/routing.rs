//! Which wallet answers which SELECT (doc/manager-api.md, nfcd/src/hce): prefix and 16-byte
//! AIDs, a shared AID in category `other`, 256 AIDs in one session, switching services by
//! SELECT, and what nfcd answers itself (`6A82`, `6F00`).

use std::collections::BTreeSet;

use futures_util::StreamExt;
use libnci::sim::scripts::{select_aid, sweep_aid};
use libnci::wire::DeactivationReason;
use nfcd::simhost::{TapOptions, TapOutcome, TapReport, TapScript};
use nfcd_e2e::bus::{wait_registered, wait_unregistered};
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{tap_options, Rig, RigOptions};
use nfcd_e2e::scripts::{
    response_data, status_words, Apdus, GET_DATA_ATC, SW_NOT_FOUND, SW_NO_DIAGNOSIS, SW_OK,
};
use nfcd_e2e::{hex, unhex, within, WAIT};

/// The response data of every exchange, as text: `test-wallet --behaviour ok` answers its Id.
fn answered_by(report: &TapReport) -> Vec<String> {
    (0..report.apdus.len())
        .map(|i| String::from_utf8_lossy(response_data(report, i)).into_owned())
        .collect()
}

fn hexes(apdus: &[Vec<u8>]) -> Vec<String> {
    apdus.iter().map(|a| hex(a)).collect()
}

/// `A000000004` registered as a prefix answers SELECTs of `A0000000041010` and
/// `A0000000043060`; a 16-byte AID, the longest ISO/IEC 7816-4 allows, is selectable too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_aid_and_sixteen_byte_aid() {
    let rig = Rig::start(RigOptions::default()).await;
    let long_aid = unhex("F0 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F");
    assert_eq!(long_aid.len(), 16);
    let long_hex = hex(&long_aid);
    let mut prefix = rig
        .wallet(
            WalletKind::Test,
            "org.e2e.prefix",
            &["--prefix-aid", "A000000004"],
        )
        .await;
    let mut long = rig
        .wallet(WalletKind::Test, "org.e2e.long", &["--aid", &long_hex])
        .await;
    let info = wait_registered(rig.manager(), "org.e2e.prefix").await;
    assert_eq!(info.prefix_aids, [unhex("A000000004")]);
    assert!(info.aids.is_empty());
    assert_eq!(
        wait_registered(rig.manager(), "org.e2e.long").await.aids,
        std::slice::from_ref(&long_aid)
    );

    let mastercard = unhex("A0000000041010");
    let maestro = unhex("A0000000043060");
    let script = Apdus::new("prefix and long AIDs")
        .select(&mastercard, SW_OK)
        .select(&long_aid, SW_OK)
        .select(&maestro, SW_OK);
    let report = rig.tap_with(script.build(), tap_options()).await;

    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(
        answered_by(&report),
        ["org.e2e.prefix", "org.e2e.long", "org.e2e.prefix"]
    );
    prefix.wait_deactivated("deselected", 2).await;
    long.wait_deactivated("deselected", 1).await;
    assert_eq!(
        hexes(&prefix.commands()),
        [hex(&select_aid(&mastercard)), hex(&select_aid(&maestro))]
    );
    assert_eq!(hexes(&long.commands()), [hex(&select_aid(&long_aid))]);

    prefix.stop().await;
    long.stop().await;
    rig.finish().await;
}

/// Two `other` services claim one AID and neither is preferred: the earlier registration
/// answers (nfcd/src/hce/registry.rs, "other: ... then the earliest registration"), and
/// `AidConflict` names both, winner first. A third one that makes itself preferred
/// (`SetPreferredService`) answers instead, though registered last; when it and the first
/// leave, the remaining one answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_aid_in_other_follows_preference_then_registration_order() {
    let rig = Rig::start(RigOptions::default()).await;
    let aid = unhex("F0E2E00001");
    let aid_hex = hex(&aid);
    let mut conflicts = rig
        .manager()
        .receive_aid_conflict()
        .await
        .unwrap_or_else(|e| panic!("AidConflict subscription: {e}"));
    let mut first = rig
        .wallet(WalletKind::Test, "org.e2e.first", &["--aid", &aid_hex])
        .await;
    let mut second = rig
        .wallet(WalletKind::Test, "org.e2e.second", &["--aid", &aid_hex])
        .await;

    let signal = within("AidConflict", WAIT, conflicts.next())
        .await
        .unwrap_or_else(|| panic!("AidConflict stream ended"));
    let args = signal
        .args()
        .unwrap_or_else(|e| panic!("AidConflict arguments: {e}"));
    assert_eq!(hex(&args.aid), aid_hex);
    assert_eq!(args.ids, ["org.e2e.first", "org.e2e.second"]);

    let tap = || Apdus::new("shared AID").select(&aid, SW_OK).build();
    let report = rig.tap_with(tap(), tap_options()).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(answered_by(&report), ["org.e2e.first"]);
    first.wait_deactivated("deselected", 1).await;

    let mut preferred = rig
        .wallet(
            WalletKind::Test,
            "org.e2e.preferred",
            &["--aid", &aid_hex, "--preferred"],
        )
        .await;
    let info = wait_registered(rig.manager(), "org.e2e.preferred").await;
    assert!(info.preferred, "Services shows the preference");
    let report = rig.tap_with(tap(), tap_options()).await;
    assert_eq!(answered_by(&report), ["org.e2e.preferred"], "{report:#?}");
    preferred.wait_deactivated("deselected", 1).await;

    preferred.stop().await;
    first.stop().await;
    wait_unregistered(rig.manager(), "org.e2e.preferred").await;
    wait_unregistered(rig.manager(), "org.e2e.first").await;
    let report = rig.tap_with(tap(), tap_options()).await;
    assert_eq!(answered_by(&report), ["org.e2e.second"], "{report:#?}");
    second.wait_deactivated("deselected", 1).await;
    // The second service saw only the tap it won.
    assert_eq!(hexes(&second.commands()), [hex(&select_aid(&aid))]);

    second.stop().await;
    rig.finish().await;
}

/// 256 exact eight-byte AIDs in one service, each selected once in one activation (the
/// virtual reader's `sweep256`, whose AIDs `test-wallet --many-aids` generates).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_fifty_six_aids_in_one_session() {
    let rig = Rig::start(RigOptions::default()).await;
    let id = "org.e2e.sweep";
    let mut wallet = rig
        .wallet(WalletKind::Test, id, &["--many-aids", "256"])
        .await;
    let registered: BTreeSet<Vec<u8>> = wait_registered(rig.manager(), id)
        .await
        .aids
        .into_iter()
        .collect();
    let swept: BTreeSet<Vec<u8>> = (0..=255u8).map(|i| sweep_aid(i).to_vec()).collect();
    assert_eq!(registered, swept, "the wallet's AIDs are the sweep's");

    let report = rig.tap(TapScript::Sweep256).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), vec![0x9000; 256]);
    assert!(answered_by(&report).iter().all(|who| who == id));
    wallet.wait_deactivated("deselected", 1).await;
    let sent: Vec<String> = report.apdus.iter().map(|r| hex(&r.cmd)).collect();
    assert_eq!(hexes(&wallet.commands()), sent);

    wallet.stop().await;
    rig.finish().await;
}

/// A SELECT of another service mid-session moves the session to it; the first one gets
/// `Deactivated("deselected")` and nothing more, the second gets the rest of the tap and
/// `Deactivated("link-loss")` when the card leaves the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_switches_service_mid_session() {
    let rig = Rig::start(RigOptions::default()).await;
    let (aid_a, aid_b) = (unhex("F0E2E0000A"), unhex("F0E2E0000B"));
    let mut a = rig
        .wallet(WalletKind::Test, "org.e2e.a", &["--aid", &hex(&aid_a)])
        .await;
    let mut b = rig
        .wallet(WalletKind::Test, "org.e2e.b", &["--aid", &hex(&aid_b)])
        .await;

    let script = Apdus::new("switch")
        .select(&aid_a, SW_OK)
        .send(GET_DATA_ATC, SW_OK)
        .select(&aid_b, SW_OK)
        .send(GET_DATA_ATC, SW_OK);
    let options = TapOptions {
        link_loss_after: Some(4),
        ..tap_options()
    };
    let report = rig.tap_with(script.build(), options).await;

    assert_eq!(
        report.outcome,
        TapOutcome::LinkLoss {
            step: 4,
            reason: DeactivationReason::RfLinkLoss
        },
        "{report:#?}"
    );
    assert_eq!(status_words(&report), [0x9000; 4]);
    assert_eq!(
        answered_by(&report),
        ["org.e2e.a", "org.e2e.a", "org.e2e.b", "org.e2e.b"]
    );
    a.wait_deactivated("deselected", 1).await;
    b.wait_deactivated("link-loss", 1).await;
    assert_eq!(a.deactivations(), ["deselected"]);
    assert_eq!(b.deactivations(), ["link-loss"]);
    assert_eq!(
        hexes(&a.commands()),
        [hex(&select_aid(&aid_a)), hex(&GET_DATA_ATC)]
    );
    assert_eq!(
        hexes(&b.commands()),
        [hex(&select_aid(&aid_b)), hex(&GET_DATA_ATC)]
    );

    a.stop().await;
    b.stop().await;
    rig.finish().await;
}

/// nfcd answers itself what no wallet can: a command before any SELECT gets `6F00`, a SELECT
/// of an AID nobody registered `6A82` (and leaves nothing selected); the session still works
/// afterwards. The wallet sees only its own SELECT and what follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_aid_and_command_before_select() {
    let rig = Rig::start(RigOptions::default()).await;
    let aid = unhex("F0E2E0000C");
    let mut wallet = rig
        .wallet(WalletKind::Test, "org.e2e.known", &["--aid", &hex(&aid)])
        .await;

    // The virtual reader's own unknown-AID script: SELECT F0DEADBEEF000001, expects 6A82.
    let report = rig.tap(TapScript::UnknownAid).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), [SW_NOT_FOUND]);

    let script = Apdus::new("nothing selected")
        .send(GET_DATA_ATC, SW_NO_DIAGNOSIS)
        .select(&libnci::sim::scripts::UNKNOWN_AID, SW_NOT_FOUND)
        .send(GET_DATA_ATC, SW_NO_DIAGNOSIS)
        .select(&aid, SW_OK)
        .send(GET_DATA_ATC, SW_OK);
    let report = rig.tap_with(script.build(), tap_options()).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    // nfcd's own answers are bare status words.
    assert!(report.apdus[..3].iter().all(|r| r.rsp.len() == 2));

    wallet.wait_deactivated("deselected", 1).await;
    assert_eq!(
        hexes(&wallet.commands()),
        [hex(&select_aid(&aid)), hex(&GET_DATA_ATC)]
    );

    wallet.stop().await;
    rig.finish().await;
}

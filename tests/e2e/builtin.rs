//! nfcd on its own in-process virtual controller (`--transport sim`), driven as a developer
//! would: `org.nfcd.Simulator1.Tap` over D-Bus (doc/simulator-api.md).

use std::collections::HashMap;

use libnci::sim::scripts::SELECT_PPSE;
use nfcd::dbus::introspect::compare_xml;
use nfcd::dbus::simulator::SIMULATOR1_XML;
use nfcd::simhost::Profile;
use nfcd_e2e::bus::{introspect, record_bytes, record_number, record_str, simulator_tap};
use nfcd_e2e::hex;
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{Link, Rig, RigOptions, BUS_NAME};

async fn emv_through_simulator1(profile: Profile) {
    let rig = Rig::start(RigOptions {
        profile,
        link: Link::Builtin,
        apdu_deadline_ms: None,
    })
    .await;
    let adapter_xml = introspect(rig.conn(), BUS_NAME, "/org/nfcd/adapter0").await;
    if let Err(e) = compare_xml(&adapter_xml, SIMULATOR1_XML, "org.nfcd.Simulator1") {
        panic!("org.nfcd.Simulator1: {e}\nserved:\n{adapter_xml}");
    }
    let id = "org.e2e.builtin";
    let mut wallet = rig.wallet(WalletKind::Payment, id, &[]).await;

    let records = simulator_tap(rig.conn(), "emv", HashMap::new())
        .await
        .unwrap_or_else(|e| panic!("Simulator1.Tap(emv): {e}"));
    let Some((summary, apdus)) = records.split_last() else {
        panic!("an empty Tap reply");
    };
    assert_eq!(record_str(summary, "Kind"), Some("summary"));
    assert_eq!(
        (
            record_str(summary, "Result"),
            record_str(summary, "Outcome"),
            record_number(summary, "Apdus")
        ),
        (Some("ok"), Some("completed"), Some(6)),
        "{summary:?}"
    );
    assert_eq!(apdus.len(), 6);
    for record in apdus {
        assert_eq!(record_str(record, "Kind"), Some("apdu"));
        assert_eq!(record_number(record, "Sw"), Some(0x9000), "{record:?}");
        if let Some(service) = record_str(record, "Service") {
            assert_eq!(service, id);
        }
    }
    let sent: Vec<String> = apdus
        .iter()
        .filter_map(|r| record_bytes(r, "Command"))
        .map(|c| hex(&c))
        .collect();
    assert_eq!(sent.first(), Some(&hex(&SELECT_PPSE)));

    wallet.wait_deactivated("deselected", 1).await;
    let got: Vec<String> = wallet.commands().iter().map(|c| hex(c)).collect();
    assert_eq!(got, sent);

    wallet.stop().await;
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emv_tap_through_simulator1_on_the_builtin_pn7150() {
    emv_through_simulator1(Profile::Pn7150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emv_tap_through_simulator1_on_the_builtin_nci2() {
    emv_through_simulator1(Profile::Nci2).await;
}

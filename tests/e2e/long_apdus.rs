//! APDUs longer than one NCI data packet (255 octets of payload on both controllers): an
//! extended-length C-APDU is reassembled from several packets before it reaches the wallet,
//! and a long R-APDU is cut into several packets, each waiting for a credit from the controller
//! (NCI 1.0 §4.4 and §3.4.2, segmentation and reassembly). Both must arrive intact.

use nfcd::simhost::{Profile, TapOptions, TapOutcome};
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{Link, Rig, RigOptions};
use nfcd_e2e::scripts::{extended_case4, response_data, status_words, Apdus, GET_DATA_ATC, SW_OK};
use nfcd_e2e::{hex, unhex, WAIT};

/// A data field no two packets of which look alike.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

async fn long_apdus(profile: Profile, link: Link) {
    let rig = Rig::start(RigOptions {
        profile,
        link,
        apdu_deadline_ms: None,
    })
    .await;
    let (echo_aid, huge_aid) = (unhex("F0E2E00E01"), unhex("F0E2E00E02"));
    let mut echo = rig
        .wallet(
            WalletKind::Test,
            "org.e2e.echo",
            &["--aid", &hex(&echo_aid), "--behaviour", "echo"],
        )
        .await;
    let mut huge = rig
        .wallet(
            WalletKind::Test,
            "org.e2e.huge",
            &["--aid", &hex(&huge_aid), "--behaviour", "huge=1000"],
        )
        .await;

    // 300 and 1 000 octets each way through the echo; then 1 000 octets back for a short
    // command from the other wallet.
    let (short, long) = (pattern(300, 1), pattern(1_000, 2));
    let (command_300, command_1000) = (
        extended_case4(0x80, 0xEE, &short),
        extended_case4(0x80, 0xEE, &long),
    );
    let script = Apdus::new("long APDUs")
        .select(&echo_aid, SW_OK)
        .send(command_300.clone(), SW_OK)
        .send(command_1000.clone(), SW_OK)
        .select(&huge_aid, SW_OK)
        .send(GET_DATA_ATC, SW_OK);
    let options = TapOptions {
        timeout: WAIT,
        ..TapOptions::default()
    };
    let report = rig.tap_with(script.build(), options).await;

    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), [0x9000; 5]);
    assert_eq!(response_data(&report, 1), short.as_slice());
    assert_eq!(response_data(&report, 2), long.as_slice());
    // test-wallet huge=N: 00 01 02 .. FF 00 01 .., N octets, for the SELECT as for the rest.
    let counted: Vec<u8> = (0..1_000usize).map(|i| i as u8).collect();
    assert_eq!(response_data(&report, 3), counted.as_slice());
    assert_eq!(response_data(&report, 4), counted.as_slice());

    echo.wait_deactivated("deselected", 1).await;
    huge.wait_deactivated("deselected", 1).await;
    assert_eq!(
        echo.commands().iter().map(|c| hex(c)).collect::<Vec<_>>(),
        [
            hex(&libnci::sim::scripts::select_aid(&echo_aid)),
            hex(&command_300),
            hex(&command_1000)
        ],
        "the wallet got the long commands whole"
    );
    assert_eq!(huge.commands().len(), 2);

    echo.stop().await;
    huge.stop().await;
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_apdus_cross_packets_on_pn7150_over_uart() {
    long_apdus(Profile::Pn7150, Link::Pty).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_apdus_cross_packets_on_nci2_over_tcp() {
    long_apdus(Profile::Nci2, Link::Tcp).await;
}

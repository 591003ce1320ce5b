//! A transit gate against `transit-wallet`: SELECT, GET PUBLIC KEY, READ BALANCE, DEBIT with a
//! signed receipt, READ BALANCE again (the wallet's commands, wallets/README.md).

use nfcd::simhost::{TapOptions, TapOutcome, TapScript};
use nfcd_e2e::bus::wait_default;
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{Rig, RigOptions};
use nfcd_e2e::scripts::{response_data, status_words, transit, Apdus, SW_OK};
use nfcd_e2e::{hex, WAIT};
use nfcd_wallets::transit::{receipt_message, TransitState, DEFAULT_AID};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

const FARE: u32 = 250;
const START_BALANCE: u32 = 2_000;
const GATE_ID: [u8; 8] = *b"GATE0042";
const TIMESTAMP: u32 = 1_767_225_600;

fn be32(bytes: &[u8]) -> u32 {
    let array: [u8; 4] = bytes
        .try_into()
        .unwrap_or_else(|_| panic!("4 octets expected, got {}", hex(bytes)));
    u32::from_be_bytes(array)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_gate_debits_the_fare_with_a_signed_receipt() {
    let rig = Rig::start(RigOptions::default()).await;
    let id = "org.e2e.transit";
    let state = rig.scratch().join("transit.state");
    let state_arg = state.display().to_string();
    let balance_arg = START_BALANCE.to_string();
    let mut wallet = rig
        .wallet(
            WalletKind::Transit,
            id,
            &[
                "--state",
                &state_arg,
                "--balance",
                &balance_arg,
                "--set-default",
            ],
        )
        .await;
    wait_default(rig.manager(), "transit", id).await;

    let script = Apdus::new("transit-wallet gate")
        .select(&DEFAULT_AID, SW_OK)
        .send(transit::GET_PUBLIC_KEY, SW_OK)
        .send(transit::READ_BALANCE, SW_OK)
        .send(transit::debit(FARE, GATE_ID, TIMESTAMP), SW_OK)
        .send(transit::READ_BALANCE, SW_OK);
    let options = TapOptions {
        timeout: WAIT,
        ..TapOptions::default()
    };
    let report = rig.tap_with(script.build(), options).await;

    // The gate: every command 9000 ...
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), [0x9000; 5]);
    // ... within a gate's time budget ...
    let took = report.transaction_time().unwrap_or_default();
    assert!(
        took < TapScript::Transit.budget(),
        "the gate took {} ms",
        took.as_millis()
    );
    // ... the fare debited ...
    let before = response_data(&report, 2);
    assert_eq!((be32(&before[..4]), be32(&before[4..])), (START_BALANCE, 0));
    let debit = response_data(&report, 3);
    assert_eq!(debit.len(), 4 + 4 + 64, "DEBIT response {}", hex(debit));
    let (new_balance, counter) = (be32(&debit[..4]), be32(&debit[4..8]));
    assert_eq!((new_balance, counter), (START_BALANCE - FARE, 1));
    let after = response_data(&report, 4);
    assert_eq!((be32(&after[..4]), be32(&after[4..])), (new_balance, 1));
    // ... with a receipt that verifies against the card's public key.
    let public_key = response_data(&report, 1);
    let message = receipt_message(&GATE_ID, FARE, new_balance, counter, TIMESTAMP);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_key)
        .verify(&message, &debit[8..])
        .unwrap_or_else(|_| panic!("receipt signature does not verify: {}", hex(debit)));

    // The wallet: all five commands, then the end of the tap; the debit is kept on disk.
    wallet.wait_deactivated("deselected", 1).await;
    let sent: Vec<String> = report.apdus.iter().map(|r| hex(&r.cmd)).collect();
    let got: Vec<String> = wallet.commands().iter().map(|c| hex(c)).collect();
    assert_eq!(got, sent);
    match TransitState::load(&state) {
        Ok(Some(saved)) => assert_eq!((saved.balance, saved.counter), (START_BALANCE - FARE, 1)),
        other => panic!("transit state {}: {other:?}", state.display()),
    }

    wallet.stop().await;
    rig.finish().await;
}

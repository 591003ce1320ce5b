//! A transit gate against `transit-wallet`: the virtual reader's `transit` script (SELECT,
//! READ BALANCE, DEBIT with a signed receipt; libnci::sim::scripts, where gate and wallet share
//! the commands), the receipt verified with the card's public key.

use libnci::sim::scripts::{TransitDebitRepr, TRANSIT_AID};
use nfcd::simhost::{TapOutcome, TapScript};
use nfcd_e2e::bus::wait_default;
use nfcd_e2e::hex;
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{Rig, RigOptions};
use nfcd_e2e::scripts::status_words;
use nfcd_wallets::transit::{generate_key_pkcs8, TransitState};
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};

const START_BALANCE: u32 = 2_000;

fn be32(bytes: Option<&[u8]>) -> u32 {
    match bytes.and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        Some(array) => u32::from_be_bytes(array),
        None => panic!("4 octets expected, got {:?}", bytes.map(hex)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transit_gate_debits_the_fare_with_a_signed_receipt() {
    let rig = Rig::start(RigOptions::default()).await;
    let id = "org.e2e.transit";
    // The card's receipt key, so that the test can play the gate's back office.
    let pkcs8 = generate_key_pkcs8().unwrap_or_else(|_| panic!("generating a P-256 key"));
    let key_file = rig.scratch().join("transit.key");
    std::fs::write(&key_file, &pkcs8).unwrap_or_else(|e| panic!("{}: {e}", key_file.display()));
    let public_key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap_or_else(|e| panic!("the generated key: {e}"))
    .public_key()
    .as_ref()
    .to_vec();
    let state = rig.scratch().join("transit.state");
    let (state_arg, key_arg) = (state.display().to_string(), key_file.display().to_string());
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
                "--key",
                &key_arg,
                "--set-default",
            ],
        )
        .await;
    wait_default(rig.manager(), "transit", id).await;

    let report = rig.tap(TapScript::Transit).await;

    // The gate: SELECT, READ BALANCE, DEBIT all 9000 (the script also checks that the new
    // balance is the old one less the fare), within a gate's time budget.
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), [0x9000; 3]);
    let took = report.transaction_time().unwrap_or_default();
    assert!(
        took < TapScript::Transit.budget(),
        "the gate took {} ms",
        took.as_millis()
    );
    let fare = TransitDebitRepr::default().fare;
    assert_eq!(
        (
            be32(report.value("balance_before")),
            be32(report.value("counter_before"))
        ),
        (START_BALANCE, 0)
    );
    assert_eq!(
        (
            be32(report.value("balance_after")),
            be32(report.value("counter_after"))
        ),
        (START_BALANCE - fare, 1)
    );
    // The receipt verifies against the card's key.
    let (Some(message), Some(signature)) = (
        report.value("receipt_message"),
        report.value("receipt_signature"),
    ) else {
        panic!("no receipt recorded: {report:#?}");
    };
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public_key)
        .verify(message, signature)
        .unwrap_or_else(|_| panic!("receipt signature does not verify: {}", hex(signature)));

    // The wallet: the three commands, SELECT of its AID first, then the end of the tap; the
    // debit is kept on disk.
    wallet.wait_deactivated("deselected", 1).await;
    let sent: Vec<String> = report.apdus.iter().map(|r| hex(&r.cmd)).collect();
    let got: Vec<String> = wallet.commands().iter().map(|c| hex(c)).collect();
    assert_eq!(got, sent);
    assert_eq!(
        got.first(),
        Some(&hex(&libnci::sim::scripts::select_aid(&TRANSIT_AID)))
    );
    match TransitState::load(&state) {
        Ok(Some(saved)) => assert_eq!((saved.balance, saved.counter), (START_BALANCE - fare, 1)),
        other => panic!("transit state {}: {other:?}", state.display()),
    }

    wallet.stop().await;
    rig.finish().await;
}

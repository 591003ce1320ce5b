//! Payment taps: the virtual reader's EMV script (SELECT PPSE → SELECT AID → GET PROCESSING
//! OPTIONS → READ RECORD × 2 → GENERATE AC) against `payment-wallet`, on both controller
//! profiles and both transports; and the default payment service winning over another one.

use futures_util::StreamExt;
use libnci::sim::scripts::{bcd, EmvParams, SELECT_PPSE};
use nfcd::simhost::{Profile, TapOutcome, TapReport, TapScript};
use nfcd_e2e::bus::wait_default;
use nfcd_e2e::process::{Wallet, WalletKind};
use nfcd_e2e::rig::{Link, Rig, RigOptions};
use nfcd_e2e::scripts::status_words;
use nfcd_e2e::{hex, within, WAIT};
use nfcd_wallets::payment::{application_cryptogram, derive_card_key};

/// SELECT PPSE, SELECT AID, GPO, READ RECORD 1 and 2, GENERATE AC.
const EMV_EXCHANGES: usize = 6;

/// The cryptogram of the tap, checked by an issuer holding the card key of service `id`:
/// `HMAC-SHA256(key, UN ‖ amount authorised ‖ ATC)[..8]` (wallets/README.md). Returns whether
/// it verifies.
fn cryptogram_is_from(report: &TapReport, id: &str) -> bool {
    let (Some(cryptogram), Some(un), Some(atc)) = (
        report.value("cryptogram"),
        report.value("unpredictable_number"),
        report.value("atc"),
    ) else {
        panic!("the EMV script recorded no cryptogram, UN or ATC: {report:#?}");
    };
    let un: [u8; 4] = un.try_into().unwrap_or_else(|_| panic!("UN {}", hex(un)));
    let atc: [u8; 2] = atc
        .try_into()
        .unwrap_or_else(|_| panic!("ATC {}", hex(atc)));
    let amount: [u8; 6] = bcd(EmvParams::default().amount, 6)
        .try_into()
        .unwrap_or_else(|_| unreachable!("bcd of 6 octets"));
    let expected =
        application_cryptogram(&derive_card_key(id), &un, &amount, u16::from_be_bytes(atc));
    cryptogram == expected
}

/// What a payment wallet saw must be exactly what the reader exchanged: the same C-APDUs in
/// the same order, answered with the same R-APDUs (the daemon forwards, never rewrites).
fn assert_wallet_saw_the_tap(wallet: &Wallet, report: &TapReport) {
    let commands: Vec<String> = wallet.commands().iter().map(|c| hex(c)).collect();
    let sent: Vec<String> = report.apdus.iter().map(|r| hex(&r.cmd)).collect();
    assert_eq!(commands, sent, "C-APDUs the wallet got vs. the reader sent");
    let answered: Vec<String> = wallet
        .lines()
        .into_iter()
        .filter_map(|l| match l {
            nfcd_e2e::process::Line::Response(r) => Some(hex(&r)),
            _ => None,
        })
        .collect();
    let received: Vec<String> = report.apdus.iter().map(|r| hex(&r.rsp)).collect();
    assert_eq!(
        answered, received,
        "R-APDUs the wallet sent vs. the reader got"
    );
}

async fn payment_tap(profile: Profile, link: Link) {
    let rig = Rig::start(RigOptions {
        profile,
        link,
        apdu_deadline_ms: None,
    })
    .await;
    let expected_version = match profile {
        Profile::Pn7150 => "1.0",
        _ => "2.0",
    };
    assert_eq!(
        rig.adapter().nci_version().await.ok().as_deref(),
        Some(expected_version)
    );
    let id = "org.e2e.payment";
    let mut wallet = rig.wallet(WalletKind::Payment, id, &[]).await;
    let mut started = rig
        .adapter()
        .receive_transaction_started()
        .await
        .unwrap_or_else(|e| panic!("TransactionStarted subscription: {e}"));
    let mut ended = rig
        .adapter()
        .receive_transaction_ended()
        .await
        .unwrap_or_else(|e| panic!("TransactionEnded subscription: {e}"));

    let report = rig.tap(TapScript::Emv).await;

    // The reader: every APDU answered 9000, a cryptogram from this card's key.
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), [0x9000; EMV_EXCHANGES]);
    assert!(cryptogram_is_from(&report, id), "{report:#?}");
    // The wallet: SELECT PPSE first, forwarded to it (it answered its own FCI), then the rest.
    wallet.wait_deactivated("deselected", 1).await;
    assert_eq!(
        wallet.commands().first().map(|c| hex(c)),
        Some(hex(&SELECT_PPSE))
    );
    assert_wallet_saw_the_tap(&wallet, &report);
    // The adapter: TransactionStarted (emitted once the SELECT PPSE was answered) names this
    // service and the DF name "2PAY.SYS.DDF01" (EMV Book 1 §11.3.2)...
    let signal = within("TransactionStarted", WAIT, started.next())
        .await
        .unwrap_or_else(|| panic!("TransactionStarted stream ended"));
    let args = signal
        .args()
        .unwrap_or_else(|e| panic!("TransactionStarted arguments: {e}"));
    assert_eq!(
        (args.id.as_str(), args.aid.as_slice()),
        (id, &b"2PAY.SYS.DDF01"[..])
    );
    // ... and one transaction of this service with all six APDUs.
    let signal = within("TransactionEnded", WAIT, ended.next())
        .await
        .unwrap_or_else(|| panic!("TransactionEnded stream ended"));
    let args = signal
        .args()
        .unwrap_or_else(|e| panic!("TransactionEnded arguments: {e}"));
    assert_eq!(
        (args.id.as_str(), args.apdus),
        (id, EMV_EXCHANGES as u32),
        "reason {}",
        args.reason
    );

    wallet.stop().await;
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emv_tap_on_pn7150_over_uart() {
    payment_tap(Profile::Pn7150, Link::Pty).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emv_tap_on_nci2_over_tcp() {
    payment_tap(Profile::Nci2, Link::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emv_tap_on_pn7150_over_tcp() {
    payment_tap(Profile::Pn7150, Link::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emv_tap_on_nci2_over_uart() {
    payment_tap(Profile::Nci2, Link::Pty).await;
}

/// Two payment wallets register the same AIDs (PPSE and A0000000041010); the user picks the
/// second as the default: the whole tap reaches it, the other gets nothing at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_payment_service_takes_the_tap() {
    let rig = Rig::start(RigOptions::default()).await;
    let (id1, id2) = ("org.e2e.pay.one", "org.e2e.pay.two");
    let mut wallet1 = rig.wallet(WalletKind::Payment, id1, &[]).await;
    let mut wallet2 = rig.wallet(WalletKind::Payment, id2, &[]).await;

    rig.manager()
        .set_default_service("payment", id2)
        .await
        .unwrap_or_else(|e| panic!("SetDefaultService(payment, {id2}): {e}"));
    wait_default(rig.manager(), "payment", id2).await;

    let report = rig.tap(TapScript::Emv).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert!(
        cryptogram_is_from(&report, id2),
        "not wallet 2's cryptogram"
    );
    assert!(!cryptogram_is_from(&report, id1));
    wallet2.wait_deactivated("deselected", 1).await;
    assert_wallet_saw_the_tap(&wallet2, &report);
    assert!(
        wallet1.lines().is_empty(),
        "the non-default payment wallet saw: {:?}",
        wallet1.lines()
    );

    wallet1.stop().await;
    wallet2.stop().await;
    rig.finish().await;
}

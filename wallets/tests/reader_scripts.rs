//! libnci's virtual reader against the example wallets' card logic: the `emv` terminal script
//! taps the payment card and the `transit` gate script taps the transit card, through the
//! virtual PN7150 (NCI data packets, credits, segmentation) with a scripted device host whose
//! card application is the wallet's `ApduHandler`. No daemon, no bus: this checks that the
//! wallets and the reader agree on every byte.

use libnci::apdu::StatusWord;
use libnci::sim::scripts::{
    self, transit_debit, transit_receipt_message, EmvParams, TransitBalanceRepr, TransitDebitRepr,
    SELECT_PPSE, TRANSIT_AID, TRANSIT_READ_BALANCE,
};
use libnci::sim::{
    pn7150_setup, CardApplet, Harness, Nfcc, Reader, ReaderConfig, ScriptedDh, TapOutcome,
    TapReport,
};
use nfcd_wallets::payment::{self, PaymentCard};
use nfcd_wallets::transit::{self, TransitCard, TransitState};
use nfcd_wallets::ApduHandler;
use ring::hmac;
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

/// A wallet's handler as the card application of the scripted device host.
struct Wallet<H>(H);

impl<H: ApduHandler> CardApplet for Wallet<H> {
    fn process(&mut self, command: &[u8]) -> Vec<u8> {
        self.0.process_apdu(command)
    }
}

type Run<H> = Harness<ScriptedDh<Wallet<H>>, Nfcc>;

/// Brings the virtual PN7150 up in listen mode and taps once with `script`; the card, as the
/// tap left it, is `run.dh.card().0`.
fn tap<H: ApduHandler>(card: H, script: scripts::Script) -> (TapReport, Run<H>) {
    let mut h = Harness::new(
        ScriptedDh::new(pn7150_setup(), Wallet(card)),
        Nfcc::pn7150(),
    );
    h.run_until_idle().expect("listen-mode setup");
    let report = h
        .tap(Reader::new(script, ReaderConfig::default()))
        .expect("tap ends");
    h.run_until_idle().expect("link teardown");
    (report, h)
}

fn value<'a>(report: &'a TapReport, name: &str) -> &'a [u8] {
    report
        .value(name)
        .unwrap_or_else(|| panic!("{name} not recorded: {report:#?}"))
}

#[test]
fn emv_terminal_completes_a_purchase_with_the_payment_wallet() {
    const KEY: [u8; 32] = [0x42; 32];
    let params = EmvParams::default();
    let card = PaymentCard::new(payment::DEFAULT_AID.to_vec(), KEY);
    let (report, run) = tap(card, scripts::emv(&params));
    let card = &run.dh.card().0;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert!(report
        .apdus
        .iter()
        .all(|r| r.sw == Some(StatusWord::NO_ERROR)));

    // SELECT PPSE, SELECT A0000000041010, GPO, READ RECORD 1 and 2 of SFI 1, GENERATE AC.
    let cmds: Vec<&[u8]> = report.apdus.iter().map(|r| r.cmd.as_slice()).collect();
    assert_eq!(cmds.len(), 6, "{report:#?}");
    assert_eq!(cmds[0], SELECT_PPSE);
    assert_eq!(value(&report, "aid"), payment::DEFAULT_AID);
    assert_eq!(cmds[1], scripts::select_aid(&payment::DEFAULT_AID));
    // GET PROCESSING OPTIONS: 83 0C, amount 12.50 (n12), EUR 0978, the unpredictable number.
    let un = value(&report, "unpredictable_number");
    let mut gpo = vec![0x80, 0xA8, 0x00, 0x00, 0x0E, 0x83, 0x0C];
    gpo.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x12, 0x50, 0x09, 0x78]);
    gpo.extend_from_slice(un);
    gpo.push(0x00);
    assert_eq!(cmds[2], gpo);
    assert_eq!(value(&report, "afl"), payment::AFL);
    assert_eq!(cmds[3], [0x00, 0xB2, 0x01, 0x0C, 0x00]);
    assert_eq!(cmds[4], [0x00, 0xB2, 0x02, 0x0C, 0x00]);
    // GENERATE AC (ARQC) with 29 octets of CDOL1 data.
    assert_eq!(cmds[5][..5], [0x80, 0xAE, 0x80, 0x00, 0x1D]);

    // An issuer holding the card key recomputes the ARQC: HMAC-SHA256(key, UN ‖ amount ‖ ATC).
    assert_eq!(value(&report, "cid"), [0x80]);
    assert_eq!(value(&report, "atc"), [0x00, 0x01]);
    let mut message = un.to_vec();
    message.extend_from_slice(&scripts::bcd(params.amount, 6));
    message.extend_from_slice(value(&report, "atc"));
    let issuer = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &KEY), &message);
    assert_eq!(value(&report, "cryptogram"), &issuer.as_ref()[..8]);
    // The card saw the same transaction.
    let authorisation = card.last_authorisation().expect("GENERATE AC answered");
    assert_eq!(authorisation.cryptogram, value(&report, "cryptogram"));
    assert_eq!(card.atc(), 1);
}

#[test]
fn transit_gate_debits_the_transit_wallet_and_gets_a_signed_receipt() {
    let pkcs8 = transit::generate_key_pkcs8().expect("key");
    let start = TransitState {
        balance: 2_000,
        counter: 7,
    };
    let card = TransitCard::new(TRANSIT_AID.to_vec(), &pkcs8, start).expect("P-256 key");
    let public_key = card.public_key().to_vec();
    let debit = TransitDebitRepr {
        fare: 275,
        gate_id: *b"GATE0042",
        timestamp: 1_767_225_600,
    };
    let (report, run) = tap(card, scripts::transit(&debit));
    let card = &run.dh.card().0;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");

    // SELECT F04E4643445452414E534954, READ BALANCE, DEBIT 2.75 at GATE0042.
    let cmds: Vec<&[u8]> = report.apdus.iter().map(|r| r.cmd.as_slice()).collect();
    assert_eq!(
        cmds,
        [
            &scripts::select_aid(&TRANSIT_AID)[..],
            &TRANSIT_READ_BALANCE[..],
            &transit_debit(&debit)[..],
        ]
    );
    // READ BALANCE → 20.00, counter 7.
    assert_eq!(
        report.apdus[1].rsp,
        [0x00, 0x00, 0x07, 0xD0, 0x00, 0x00, 0x00, 0x07, 0x90, 0x00]
    );
    assert_eq!(value(&report, "balance_before"), 2_000u32.to_be_bytes());
    assert_eq!(value(&report, "balance_after"), 1_725u32.to_be_bytes());
    assert_eq!(value(&report, "counter_after"), 8u32.to_be_bytes());
    assert_eq!(
        card.state(),
        TransitState {
            balance: 1_725,
            counter: 8
        }
    );

    // The receipt verifies with the wallet's public key, over exactly what the gate debited.
    let after = TransitBalanceRepr {
        balance: 1_725,
        counter: 8,
    };
    let message = transit_receipt_message(&debit, &after);
    assert_eq!(value(&report, "receipt_message"), message);
    let verifier = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public_key);
    let signature = value(&report, "receipt_signature");
    assert!(verifier.verify(&message, signature).is_ok());
    let other_gate = transit_receipt_message(
        &TransitDebitRepr {
            gate_id: *b"GATE0043",
            ..debit
        },
        &after,
    );
    assert!(verifier.verify(&other_gate, signature).is_err());
}

#[test]
fn transit_gate_stops_at_a_short_balance_and_the_wallet_debits_nothing() {
    let pkcs8 = transit::generate_key_pkcs8().expect("key");
    let start = TransitState {
        balance: 100,
        counter: 0,
    };
    let card = TransitCard::new(TRANSIT_AID.to_vec(), &pkcs8, start).expect("P-256 key");
    let (report, run) = tap(card, scripts::transit(&TransitDebitRepr::default()));
    let card = &run.dh.card().0;
    // DEBIT 2.50 with 1.00 on the card → 6985, the tap ends there.
    assert_eq!(
        report.outcome,
        TapOutcome::UnexpectedStatus {
            step: 2,
            expected: libnci::sim::Expect::OK,
            got: Some(scripts::TRANSIT_SW_INSUFFICIENT_FUNDS),
        }
    );
    assert_eq!(card.state(), start);
}

//! Every reader script, step by step, against a scripted DH answering with the demo cards.
#![cfg(feature = "sim")]

use libnci::apdu::StatusWord;
use libnci::sim::cards::{CardApplet, EMV_AFL};
use libnci::sim::scripts::{
    self, bcd, read_record, select_aid, sweep_aid, transit_debit, transit_receipt_message,
    EmvParams, TransitBalanceRepr, TransitDebitRepr, SELECT_PPSE, TRANSIT_AID,
    TRANSIT_READ_BALANCE, UNKNOWN_AID,
};
use libnci::sim::{
    pn7150_setup, BusSpeed, Direction, EmvCard, Expect, Harness, Nfcc, Reader, ReaderConfig,
    Script, ScriptedDh, SweepCard, TapEnd, TapOutcome, TapReport, TransitCard, XorShift64,
};
use libnci::time::Duration;
use libnci::wire::{DeactivationReason, RfTechnology};

fn tap<A: CardApplet>(
    card: A,
    script: Script,
    reader: ReaderConfig,
) -> (TapReport, Harness<ScriptedDh<A>, Nfcc>) {
    let mut h = Harness::new(ScriptedDh::new(pn7150_setup(), card), Nfcc::pn7150());
    h.run_until_idle().unwrap();
    let report = h.tap(Reader::new(script, reader)).unwrap();
    h.run_until_idle().unwrap();
    (report, h)
}

fn ok() -> Option<StatusWord> {
    Some(StatusWord::NO_ERROR)
}

#[test]
fn emv_purchase() {
    let params = EmvParams::default();
    let (report, h) = tap(
        EmvCard::demo(),
        scripts::emv(&params),
        ReaderConfig::default(),
    );
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    let cmds: Vec<&[u8]> = report.apdus.iter().map(|r| r.cmd.as_slice()).collect();
    let aid = [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10];
    let unpredictable = XorShift64::new(params.seed).next_u32().to_be_bytes();

    // 1. SELECT PPSE.
    assert_eq!(cmds[0], SELECT_PPSE);
    // 2. SELECT the AID named by tag 4F of the PPSE FCI.
    assert_eq!(cmds[1], select_aid(&aid));
    assert_eq!(report.value("aid"), Some(&aid[..]));
    // 3. GET PROCESSING OPTIONS with the PDOL data: TTQ, amount 12.50, UN, EUR.
    let mut gpo = vec![
        0x80, 0xA8, 0x00, 0x00, 0x12, 0x83, 0x10, 0x36, 0x00, 0x40, 0x00,
    ];
    gpo.extend_from_slice(&bcd(1_250, 6));
    gpo.extend_from_slice(&unpredictable);
    gpo.extend_from_slice(&[0x09, 0x78, 0x00]);
    assert_eq!(cmds[2], gpo);
    assert_eq!(report.value("afl"), Some(&EMV_AFL[..]));
    // 4–6. READ RECORD SFI 1 record 1, SFI 2 records 1 and 2 (from the AFL).
    assert_eq!(cmds[3], read_record(1, 1));
    assert_eq!(cmds[4], read_record(2, 1));
    assert_eq!(cmds[5], read_record(2, 2));
    // 7. GENERATE AC (ARQC) with the CDOL1 data.
    let mut cdol = bcd(1_250, 6);
    cdol.extend_from_slice(&[0; 6]); // amount other
    cdol.extend_from_slice(&[0x02, 0x76]); // country
    cdol.extend_from_slice(&[0; 5]); // TVR
    cdol.extend_from_slice(&[0x09, 0x78]); // currency
    cdol.extend_from_slice(&params.date);
    cdol.push(0x00); // purchase
    cdol.extend_from_slice(&unpredictable);
    let mut generate_ac = vec![0x80, 0xAE, 0x80, 0x00, cdol.len() as u8];
    generate_ac.extend_from_slice(&cdol);
    generate_ac.push(0x00);
    assert_eq!(cmds[6], generate_ac);
    assert_eq!(cmds.len(), 7);

    assert!(report.apdus.iter().all(|r| r.sw == ok()));
    // The cryptogram recorded is the card's, over exactly the data sent.
    let expected = EmvCard::cryptogram(0x0123_4567_89AB_CDEF, 1, &cdol);
    assert_eq!(report.value("cryptogram"), Some(&expected[..]));
    assert_eq!(h.dh.card().last_cryptogram(), Some(expected));
    assert_eq!(report.value("atc"), Some(&[0x00, 0x01][..]));
    assert_eq!(report.value("cid"), Some(&[0x80][..]));
    // Times only move forward.
    assert!(report
        .apdus
        .windows(2)
        .all(|w| w[0].answered_at <= w[1].sent_at));
    assert_eq!(
        report.activated_at,
        Some(report.field_on_at + Duration::from_millis(5))
    );
}

#[test]
fn emv_in_listen_b() {
    let config = ReaderConfig {
        technology: RfTechnology::NfcB,
        ..ReaderConfig::default()
    };
    let (report, h) = tap(EmvCard::demo(), scripts::emv(&EmvParams::default()), config);
    assert_eq!(report.outcome, TapOutcome::Completed);
    assert_eq!(report.technology, RfTechnology::NfcB);
    assert_eq!(report.apdus.len(), 7);
    // The DH saw a listen-B activation.
    assert!(h
        .dh
        .received_packets()
        .iter()
        .any(|p| p.starts_with(&[0x61, 0x05, 0x14, 0x01, 0x02, 0x04, 0x81])));
}

#[test]
fn emv_purchase_fits_the_budget_over_a_400_khz_bus() {
    let dh = ScriptedDh::new(pn7150_setup(), EmvCard::demo())
        .with_answer_delay(Duration::from_millis(2));
    let mut config = libnci::sim::NfccConfig::pn7150();
    config.rf_timing = Some(libnci::sim::RfTiming::default());
    let mut h = Harness::with_bus(dh, Nfcc::new(config), BusSpeed::Fast);
    h.run_until_idle().unwrap();
    let report = h
        .tap(Reader::new(
            scripts::emv(&EmvParams::default()),
            ReaderConfig::default(),
        ))
        .unwrap();
    assert_eq!(report.outcome, TapOutcome::Completed);
    // Every round trip includes the 2 ms the application takes.
    assert!(report
        .apdus
        .iter()
        .all(|r| r.latency() > Duration::from_millis(2)));
    // Seven APDUs, well inside the ~500 ms EMV contactless budget.
    let transaction = report.transaction_time().unwrap();
    assert!(transaction > Duration::from_millis(14), "{transaction:?}");
    assert!(transaction < Duration::from_millis(500), "{transaction:?}");
}

#[test]
fn transit_gate() {
    let debit = TransitDebitRepr::default();
    let (report, h) = tap(
        TransitCard::new(1_000),
        scripts::transit(&debit),
        ReaderConfig::default(),
    );
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    let cmds: Vec<&[u8]> = report.apdus.iter().map(|r| r.cmd.as_slice()).collect();
    assert_eq!(
        cmds,
        [
            &select_aid(&TRANSIT_AID)[..],
            &TRANSIT_READ_BALANCE[..],
            &transit_debit(&debit)[..],
        ]
    );
    // READ BALANCE → balance 00 00 03 E8, counter 00 00 00 00, 90 00.
    assert_eq!(
        report.apdus[1].rsp,
        [0x00, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x00, 0x00, 0x90, 0x00]
    );
    // DEBIT → balance 00 00 02 EE, counter 00 00 00 01, unsigned (64 zero octets), 90 00.
    let mut receipt = vec![0x00, 0x00, 0x02, 0xEE, 0x00, 0x00, 0x00, 0x01];
    receipt.extend_from_slice(&[0; 64]);
    receipt.extend_from_slice(&[0x90, 0x00]);
    assert_eq!(report.apdus[2].rsp, receipt);
    assert_eq!(
        report.value("balance_before"),
        Some(&1_000u32.to_be_bytes()[..])
    );
    assert_eq!(
        report.value("balance_after"),
        Some(&750u32.to_be_bytes()[..])
    );
    assert_eq!(report.value("counter_after"), Some(&1u32.to_be_bytes()[..]));
    let after = TransitBalanceRepr {
        balance: 750,
        counter: 1,
    };
    assert_eq!(
        report.value("receipt_message"),
        Some(&transit_receipt_message(&debit, &after)[..])
    );
    assert_eq!(report.value("receipt_signature"), Some(&[0; 64][..]));
    assert_eq!((h.dh.card().balance(), h.dh.card().counter()), (750, 1));
}

#[test]
fn transit_gate_refuses_a_short_balance() {
    let (report, _) = tap(
        TransitCard::new(100),
        scripts::transit(&TransitDebitRepr::default()),
        ReaderConfig::default(),
    );
    assert_eq!(
        report.outcome,
        TapOutcome::UnexpectedStatus {
            step: 2,
            expected: Expect::OK,
            got: Some(StatusWord::CONDITIONS_NOT_SATISFIED)
        }
    );
}

#[test]
fn sweep_of_256_aids_in_one_activation() {
    let (report, h) = tap(
        SweepCard::new(),
        scripts::sweep256(),
        ReaderConfig::default(),
    );
    assert_eq!(report.outcome, TapOutcome::Completed);
    assert_eq!(report.apdus.len(), 256);
    for (i, record) in report.apdus.iter().enumerate() {
        assert_eq!(record.cmd, select_aid(&sweep_aid(i as u8)));
        assert_eq!(record.sw, ok());
    }
    assert_eq!(h.dh.card().selects(), 256);
    let activations = h
        .trace()
        .iter()
        .filter(|e| e.direction == Direction::NfccToDh && e.bytes.starts_with(&[0x61, 0x05]))
        .count();
    assert_eq!(activations, 1);
    // One credit per answer, each given back.
    assert_eq!(h.nfcc.stats().credit_ntfs, 256);
}

#[test]
fn unknown_aid_is_file_not_found() {
    let (report, _) = tap(
        EmvCard::demo(),
        scripts::unknown_aid(),
        ReaderConfig::default(),
    );
    assert_eq!(report.outcome, TapOutcome::Completed);
    assert_eq!(report.apdus[0].cmd, select_aid(&UNKNOWN_AID));
    assert_eq!(report.apdus[0].sw, Some(StatusWord::FILE_NOT_FOUND));

    // A DH that wrongly accepts it fails the script.
    let accepting = |_: &[u8]| vec![0x90, 0x00];
    let (report, _) = tap(accepting, scripts::unknown_aid(), ReaderConfig::default());
    assert_eq!(
        report.outcome,
        TapOutcome::UnexpectedStatus {
            step: 0,
            expected: Expect::Sw(StatusWord::FILE_NOT_FOUND),
            got: ok()
        }
    );
}

#[test]
fn emv_script_reports_a_card_that_makes_no_sense() {
    // A PPSE FCI without any application entry.
    let empty_ppse = |_: &[u8]| vec![0x6F, 0x00, 0x90, 0x00];
    let (report, _) = tap(
        empty_ppse,
        scripts::emv(&EmvParams::default()),
        ReaderConfig::default(),
    );
    match report.outcome {
        TapOutcome::ScriptError { step: 1, message } => assert!(message.contains("4F")),
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[test]
fn a_card_that_never_answers_times_out() {
    let mut h = Harness::new(
        ScriptedDh::new(pn7150_setup(), SweepCard::new()).with_answer_delay(Duration::from_secs(5)),
        Nfcc::pn7150(),
    );
    h.run_until_idle().unwrap();
    let config = ReaderConfig {
        apdu_timeout: Duration::from_millis(200),
        ..ReaderConfig::default()
    };
    let start = h.now();
    let report = h.tap(Reader::new(scripts::sweep256(), config)).unwrap();
    assert_eq!(report.outcome, TapOutcome::Timeout { step: 0 });
    assert!(report.apdus.is_empty());
    // Activation 5 ms, then 200 ms of waiting.
    assert_eq!(h.now() - start, Duration::from_millis(205));
    assert_eq!(report.total, Duration::from_millis(205));
}

#[test]
fn a_tap_can_end_by_pulling_the_card_away() {
    let config = ReaderConfig {
        end: TapEnd::LinkLoss,
        ..ReaderConfig::default()
    };
    let (report, mut h) = tap(EmvCard::demo(), scripts::unknown_aid(), config);
    assert_eq!(report.outcome, TapOutcome::Completed);
    let tail: Vec<Vec<u8>> = h
        .trace()
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(|e| e.bytes.clone())
        .collect();
    // No DESELECT: field off, then RF_DEACTIVATE_NTF(Discovery, RF link loss).
    assert_eq!(
        tail,
        [
            vec![0x61, 0x07, 0x01, 0x00],
            vec![0x61, 0x06, 0x02, 0x03, 0x02]
        ]
    );
    let now = h.now();
    assert!(h
        .nfcc
        .reader_deactivate(DeactivationReason::RfLinkLoss, now)
        .is_err());
}

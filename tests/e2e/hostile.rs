//! A hostile reader against the real daemon: malformed and invalid commands, absurd SELECTs,
//! 64 KiB of command chaining, APDU storms, APDUs longer than ISO/IEC 7816-4 allows and
//! activation loops. Every command gets the status word its table defines (libnci
//! `sim::scripts`, "The hostile reader"; doc/reliability.md), nfcd's memory stays bounded, no
//! service sees a command it must not, and an honest tap works afterwards with every
//! registration in place.
//!
//! The virtual reader's air time is off here (`SimOptions::rf_timing`): at 106 kbit/s the
//! hostile script alone is about 6 s of air, which says nothing about the daemon.

use libnci::sim::scripts::{hostile_apdu_count, select_aid, HOSTILE_AID, HOSTILE_STORM};
use nfcd::simhost::{TapOptions, TapOutcome, TapReport, TapScript};
use nfcd_e2e::process::{Memory, Wallet, WalletKind};
use nfcd_e2e::rig::{no_air_time, service_ids, tap_options, Rig, RigOptions, Tuning};
use nfcd_e2e::scripts::{status_words, Apdus, GET_DATA_ATC, SW_NOT_FOUND, SW_OK};
use nfcd_e2e::{hex, WAIT};

/// Hostile taps after the warm-up one.
const HOSTILE_TAPS: usize = 3;
/// Activation cycles of the re-activation loop.
const REACTIVATIONS: usize = 60;
/// How much nfcd's resident set may grow from after the first hostile tap to the end. A leak of
/// the 64 KiB chain or of one APDU buffer per command would be megabytes per tap.
const RSS_GROWTH_LIMIT_KIB: u64 = 4 * 1024;
/// Absolute bound on nfcd's peak resident set (a debug build, everything included).
const PEAK_RSS_LIMIT_KIB: u64 = 128 * 1024;

/// Commands of one hostile tap that reach the service at the hostile AID: the extended
/// SELECT, one GET DATA, the 258 links of the chain, the storm's GET DATAs and SELECTs (two in
/// five), the last GET DATA.
fn forwarded_per_tap() -> usize {
    1 + 1 + 258 + 2 * HOSTILE_STORM / 5 + 1
}

/// One run of the named `hostile` script: every answer as its table says, with a service at
/// the hostile AID taking its part (`served`) or none there; the report.
async fn hostile_tap(rig: &Rig, served: bool) -> TapReport {
    let report = rig.tap(TapScript::Hostile).await;
    assert_eq!(
        report.outcome,
        TapOutcome::Completed,
        "{:?}",
        report.outcome
    );
    assert_eq!(report.apdus.len(), hostile_apdu_count());
    assert_eq!(report.value("selected"), Some(&[u8::from(served)][..]));
    report
}

/// What reached the service must only ever be well-formed, valid commands: nothing shorter
/// than a header, no CLA FF, no INS 6X/9X (ISO/IEC 7816-4 §5.1, §5.4.1, §5.4.2).
fn assert_only_valid_commands(wallet: &Wallet) {
    for command in wallet.commands() {
        let parsed = libnci::apdu::CommandApdu::parse(&command).unwrap_or_else(|e| {
            panic!(
                "the service got a malformed command ({e}): {}",
                hex(&command)
            )
        });
        assert_eq!(
            parsed.header_error(),
            None,
            "the service got an invalid command: {}",
            hex(&command)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_reader_gets_defined_status_words_and_memory_stays_bounded() {
    let rig = Rig::start_tuned(
        RigOptions::default(),
        Tuning {
            sim: no_air_time(),
            ..Tuning::default()
        },
    )
    .await;
    let mut target = rig
        .wallet(
            WalletKind::Test,
            "org.e2e.hostile",
            &["--aid", &hex(&HOSTILE_AID), "--behaviour", "ok"],
        )
        .await;
    let _payment = rig.wallet(WalletKind::Payment, "org.e2e.pay", &[]).await;
    let registered = service_ids(rig.manager()).await;
    let start = rig.nfcd_memory();

    // Warm-up: the first hostile tap sizes every buffer it will ever need.
    hostile_tap(&rig, true).await;
    let warm = rig.nfcd_memory();
    let started = std::time::Instant::now();
    for _ in 0..HOSTILE_TAPS {
        hostile_tap(&rig, true).await;
    }
    let per_tap = started.elapsed() / HOSTILE_TAPS as u32;
    let forwarded = forwarded_per_tap() * (1 + HOSTILE_TAPS);
    target
        .wait_lines("every forwarded command", forwarded, |l| {
            matches!(l, nfcd_e2e::process::Line::Command(_))
        })
        .await;
    assert_eq!(target.commands().len(), forwarded);
    assert_only_valid_commands(&target);

    // Longer than ISO/IEC 7816-4 allows, and as long as it allows: the controller driver
    // refuses a C-APDU over 65 544 octets itself (6700) without holding more than that; the
    // session refuses a 65 535-octet SELECT name (6700); the longest valid command reaches the
    // service whole.
    let mut too_long = vec![0x80, 0xDA, 0x01, 0x00, 0x00, 0xFF, 0xFF];
    too_long.extend(std::iter::repeat_n(0x5A, 70_000 - too_long.len()));
    let mut longest_select = vec![0x00, 0xA4, 0x04, 0x00, 0x00, 0xFF, 0xFF];
    longest_select.extend(std::iter::repeat_n(0xA0, 65_535));
    longest_select.extend_from_slice(&[0x00, 0x00]);
    let mut longest = longest_select.clone();
    longest[..4].copy_from_slice(&[0x80, 0xDA, 0x01, 0x00]);
    assert_eq!(longest.len(), libnci::controller::MAX_C_APDU);
    let script = Apdus::new("oversized")
        .select(&HOSTILE_AID, SW_OK)
        .send(too_long, 0x6700)
        .send(longest_select, 0x6700)
        .send(longest.clone(), SW_OK)
        .send(GET_DATA_ATC, SW_OK);
    let report = rig.tap_with(script.build(), tap_options()).await;
    assert_eq!(
        report.outcome,
        TapOutcome::Completed,
        "{:?}",
        report.outcome
    );
    target
        .wait_lines("the longest command", 1, |l| {
            *l == nfcd_e2e::process::Line::Command(longest.clone())
        })
        .await;
    assert_only_valid_commands(&target);

    // Re-activation loop: the card comes and goes, as fast as the reader can activate it. Every
    // other time it leaves right after the SELECT, and the selected service hears of it.
    let link_losses_before = count_reason(&target, "link-loss");
    for i in 0..REACTIVATIONS {
        let report = if i % 2 == 0 {
            let options = TapOptions {
                link_loss_after: Some(0),
                ..tap_options()
            };
            rig.sim()
                .tap(TapScript::UnknownAid, options)
                .await
                .unwrap_or_else(|e| panic!("activation {i}: {e}"))
        } else {
            let options = TapOptions {
                link_loss_after: Some(1),
                ..tap_options()
            };
            let script = Apdus::new("select and go")
                .select(&HOSTILE_AID, SW_OK)
                .send(GET_DATA_ATC, SW_OK);
            rig.tap_with(script.build(), options).await
        };
        let step = if i % 2 == 0 { 0 } else { 1 };
        assert!(
            matches!(report.outcome, TapOutcome::LinkLoss { step: s, .. } if s == step),
            "activation {i}: {:?}",
            report.outcome
        );
        within_discovery(&rig).await;
    }
    target
        .wait_deactivated("link-loss", link_losses_before + REACTIVATIONS / 2)
        .await;

    // Still an honest card: an EMV tap completes, the registrations are all there.
    let report = rig.tap(TapScript::Emv).await;
    assert_eq!(
        report.outcome,
        TapOutcome::Completed,
        "{:?}",
        report.outcome
    );
    let report = rig
        .tap_with(
            Apdus::new("after")
                .select(&HOSTILE_AID, SW_OK)
                .select(&libnci::sim::scripts::UNKNOWN_AID, SW_NOT_FOUND)
                .send(GET_DATA_ATC, SW_OK)
                .build(),
            tap_options(),
        )
        .await;
    assert_eq!(status_words(&report), [SW_OK, SW_NOT_FOUND, SW_OK]);
    assert_eq!(service_ids(rig.manager()).await, registered);
    let end = rig.nfcd_memory();

    report_memory(start, warm, end, per_tap);
    assert!(
        end.rss_kib <= warm.rss_kib + RSS_GROWTH_LIMIT_KIB,
        "nfcd grew from {warm} after the first hostile tap to {end}"
    );
    assert!(
        end.peak_rss_kib <= PEAK_RSS_LIMIT_KIB,
        "nfcd peaked at {} KiB",
        end.peak_rss_kib
    );

    target.stop().await;
    rig.finish().await;
}

/// The same hostile script with nobody at the hostile AID: nfcd answers everything itself
/// (`6F00` where a service would have answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_reader_without_a_service_gets_nfcd_s_own_answers() {
    let rig = Rig::start_tuned(
        RigOptions::default(),
        Tuning {
            sim: no_air_time(),
            ..Tuning::default()
        },
    )
    .await;
    let report = hostile_tap(&rig, false).await;
    // Nobody to go to: READ BINARY before the SELECT, the GET DATA after it, the 258 links of
    // the chain, the storm's GET DATAs and the last GET DATA.
    let words = status_words(&report);
    let unanswered = 1 + 1 + 258 + HOSTILE_STORM / 5 + 1;
    assert_eq!(words.iter().filter(|&&sw| sw == 0x6F00).count(), unanswered);
    assert!(!words.contains(&SW_OK));
    // A normal SELECT of an unregistered AID after all that.
    let report = rig
        .tap_with(
            Apdus::new("after")
                .send(select_aid(&HOSTILE_AID), SW_NOT_FOUND)
                .build(),
            tap_options(),
        )
        .await;
    assert_eq!(
        report.outcome,
        TapOutcome::Completed,
        "{:?}",
        report.outcome
    );
    rig.finish().await;
}

fn count_reason(wallet: &Wallet, reason: &str) -> usize {
    wallet
        .deactivations()
        .iter()
        .filter(|r| r.as_str() == reason)
        .count()
}

/// The controller is discovering again (the reader's next activation can start).
async fn within_discovery(rig: &Rig) {
    nfcd_e2e::within(
        "RFST_DISCOVERY after the activation",
        WAIT,
        rig.sim().wait_ready(),
    )
    .await;
}

fn report_memory(start: Memory, warm: Memory, end: Memory, per_tap: std::time::Duration) {
    println!(
        "nfcd memory: at start {start}; after the first hostile tap {warm}; after {HOSTILE_TAPS} \
         more ({} ms each, {} commands), the oversized commands and {REACTIVATIONS} \
         activations {end}; growth {} KiB",
        per_tap.as_millis(),
        hostile_apdu_count(),
        end.rss_kib as i64 - warm.rss_kib as i64
    );
}

//! The real controller state machine against the virtual NFCC and the virtual reader, in
//! simulated time: every reader script in both controller profiles (PN7150 / NCI 1.0 and a
//! generic NCI 2.0 controller) and both listen technologies, the routing table the NFCC ends up
//! holding, EEPROM writes across restarts, and a response APDU longer than one data packet.
#![cfg(feature = "sim")]

use libnci::apdu::StatusWord;
use libnci::controller::{Config, Deactivation, Event, Param, State};
use libnci::routing::RoutingMode;
use libnci::sim::cards::CardApplet;
use libnci::sim::scripts::{self, sweep_aid, EmvParams, SELECT_PPSE, TRANSIT_FARE, UNKNOWN_AID};
use libnci::sim::{
    BusSpeed, ControllerDh, Direction, EmvCard, Expect, Harness, HostApps, Nfcc, NfccConfig,
    Profile, Reader, ReaderConfig, RfTiming, Script, Step, SweepCard, TapOutcome, TapReport,
    TransitCard,
};
use libnci::wire::{DeactivationReason, DeactivationType, RfTechMode, RfTechnology};

const PROFILES: [Profile; 2] = [Profile::Pn7150, Profile::Nci2];
const TECHNOLOGIES: [RfTechnology; 2] = [RfTechnology::NfcA, RfTechnology::NfcB];

/// The demo transit card's starting balance.
const BALANCE: u32 = 1_000;

/// Key of [`EmvCard::demo`].
const EMV_DEMO_KEY: u64 = 0x0123_4567_89AB_CDEF;

/// The routing table [`Config::default`] builds: ISO-DEP, NFC-A and NFC-B to the host, switched
/// on (NCI 1.0 §6.3.2, Tables 47–49): type, length 3, route DH (00), power state 01, value.
const HOST_ROUTING: [u8; 15] = [
    0x01, 0x03, 0x00, 0x01, 0x04, // protocol ISO-DEP → DH
    0x00, 0x03, 0x00, 0x01, 0x00, // technology NFC-A → DH
    0x00, 0x03, 0x00, 0x01, 0x01, // technology NFC-B → DH
];

type Pair<A> = Harness<ControllerDh<A>, Nfcc>;

/// Controller and NFCC brought up: start-up runs to [`Event::Ready`] with discovery on.
fn ready<A: CardApplet>(profile: Profile, config: Config, applet: A) -> Pair<A> {
    let mut h = Harness::new(
        ControllerDh::new(config, applet),
        Nfcc::new(NfccConfig::new(profile)),
    );
    h.run_until_idle().unwrap();
    assert_eq!(h.dh.controller().state(), State::Discovery, "{profile:?}");
    assert!(h.dh.last_ready_at().is_some());
    h
}

/// The demo host (EMV, transit and sweep applications); a selection lasts one session.
fn host(profile: Profile) -> Pair<HostApps> {
    let dh = ControllerDh::new(Config::default(), HostApps::demo(BALANCE))
        .with_session_end(|host, _| host.end_session());
    let mut h = Harness::new(dh, Nfcc::new(NfccConfig::new(profile)));
    h.run_until_idle().unwrap();
    assert_eq!(h.dh.controller().state(), State::Discovery, "{profile:?}");
    h
}

/// Run one tap to its end and let the NFCC's last notifications reach the controller.
fn tap<A: CardApplet>(h: &mut Pair<A>, script: Script, technology: RfTechnology) -> TapReport {
    let config = ReaderConfig {
        technology,
        ..ReaderConfig::default()
    };
    let report = h.tap(Reader::new(script, config)).unwrap();
    h.run_until_idle().unwrap();
    report
}

fn sws(report: &TapReport) -> Vec<Option<StatusWord>> {
    report.apdus.iter().map(|r| r.sw).collect()
}

/// What the reader sent and received is exactly what the host was given and answered.
#[track_caller]
fn apdus_crossed_unchanged<A: CardApplet>(h: &Pair<A>, report: &TapReport, since: usize) {
    let host: Vec<(&[u8], &[u8])> = h.dh.exchanges()[since..]
        .iter()
        .map(|e| (e.command.as_slice(), e.response.as_slice()))
        .collect();
    let reader: Vec<(&[u8], &[u8])> = report
        .apdus
        .iter()
        .map(|r| (r.cmd.as_slice(), r.rsp.as_slice()))
        .collect();
    assert_eq!(host, reader);
    assert!(h.dh.exchanges()[since..].iter().all(|e| e.sent.is_ok()));
}

/// One session: Activated in `technology`'s listen mode, then the reader's DESELECT puts the
/// card to sleep (NCI 1.0 §5.2.5), and the controller is back in discovery.
#[track_caller]
fn one_clean_session<A: CardApplet>(h: &Pair<A>, since: usize, technology: RfTechnology) {
    let events: Vec<Event<'static>> = h.dh.records_since(since).iter().map(|r| r.event).collect();
    let activations: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Activated(a) => Some(*a),
            _ => None,
        })
        .collect();
    assert_eq!(activations.len(), 1, "{events:?}");
    let mode = match technology {
        RfTechnology::NfcB => RfTechMode::NfcBPassiveListen,
        _ => RfTechMode::NfcAPassiveListen,
    };
    assert_eq!(activations[0].mode, mode);
    assert_eq!(activations[0].max_data_payload, 255);
    assert_eq!(activations[0].initial_credits, 1);
    // RATS parameter 80 (NFC-A) or ATTRIB Param 2 = 08, Param 4 = 00 (NFC-B): FSD 256, DID /
    // CID 0.
    let iso_dep = activations[0].iso_dep.unwrap();
    assert_eq!((iso_dep.fsd, iso_dep.did), (Some(256), Some(0)));
    let ends: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, Event::Deactivated(_)))
        .collect();
    assert_eq!(
        ends,
        [&Event::Deactivated(Deactivation::Ntf {
            kind: DeactivationType::Sleep,
            reason: DeactivationReason::EndpointRequest,
        })]
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::Reinitializing { .. } | Event::Error(_))));
    assert_eq!(h.dh.controller().state(), State::Discovery);
}

#[test]
fn emv_purchase_in_every_profile_and_technology() {
    for profile in PROFILES {
        for technology in TECHNOLOGIES {
            let mut h = host(profile);
            let (events, exchanges) = (h.dh.records().len(), h.dh.exchanges().len());
            let report = tap(&mut h, scripts::emv(&EmvParams::default()), technology);
            assert_eq!(
                report.outcome,
                TapOutcome::Completed,
                "{profile:?} {technology}"
            );
            // SELECT PPSE, SELECT AID, GPO, three READ RECORDs, GENERATE AC: all 9000.
            assert_eq!(sws(&report), vec![Some(StatusWord::NO_ERROR); 7]);
            assert_eq!(report.apdus[0].cmd, SELECT_PPSE);
            // The cryptogram the terminal recorded is the card's, over the CDOL1 data the
            // terminal sent in GENERATE AC (80 AE 80 00 Lc data 00), at ATC 1.
            let generate_ac = &report.apdus[6].cmd;
            assert_eq!(&generate_ac[..4], &[0x80, 0xAE, 0x80, 0x00]);
            let cdol = &generate_ac[5..5 + usize::from(generate_ac[4])];
            let expected = EmvCard::cryptogram(EMV_DEMO_KEY, 1, cdol);
            assert_eq!(report.value("cryptogram"), Some(&expected[..]));
            let card = h.dh.applet().applet::<EmvCard>("emv").unwrap();
            assert_eq!(card.last_cryptogram(), Some(expected));
            assert_eq!(h.dh.applet().apdus_for("emv"), 7);
            apdus_crossed_unchanged(&h, &report, exchanges);
            one_clean_session(&h, events, technology);
        }
    }
}

#[test]
fn transit_debits_the_fare_in_every_profile_and_technology() {
    for profile in PROFILES {
        for technology in TECHNOLOGIES {
            let mut h = host(profile);
            let (events, exchanges) = (h.dh.records().len(), h.dh.exchanges().len());
            let report = tap(
                &mut h,
                scripts::transit(&scripts::TransitDebitRepr::default()),
                technology,
            );
            assert_eq!(
                report.outcome,
                TapOutcome::Completed,
                "{profile:?} {technology}"
            );
            // SELECT, READ BALANCE, DEBIT.
            assert_eq!(sws(&report), vec![Some(StatusWord::NO_ERROR); 3]);
            let after = BALANCE - TRANSIT_FARE;
            assert_eq!(
                report.value("balance_before"),
                Some(&BALANCE.to_be_bytes()[..])
            );
            assert_eq!(
                report.value("balance_after"),
                Some(&after.to_be_bytes()[..])
            );
            let card = h.dh.applet().applet::<TransitCard>("transit").unwrap();
            assert_eq!(card.balance(), after);
            apdus_crossed_unchanged(&h, &report, exchanges);
            one_clean_session(&h, events, technology);

            // The next gate debits again: the host kept the card's state across sessions.
            let report = tap(
                &mut h,
                scripts::transit(&scripts::TransitDebitRepr::default()),
                technology,
            );
            assert_eq!(report.outcome, TapOutcome::Completed);
            let card = h.dh.applet().applet::<TransitCard>("transit").unwrap();
            assert_eq!(card.balance(), after - TRANSIT_FARE);
        }
    }
}

#[test]
fn sweep_of_256_selects_in_one_activation() {
    for profile in PROFILES {
        for technology in TECHNOLOGIES {
            let mut h = host(profile);
            let (events, exchanges) = (h.dh.records().len(), h.dh.exchanges().len());
            let report = tap(&mut h, scripts::sweep256(), technology);
            assert_eq!(
                report.outcome,
                TapOutcome::Completed,
                "{profile:?} {technology}"
            );
            assert_eq!(sws(&report), vec![Some(StatusWord::NO_ERROR); 256]);
            for (i, record) in report.apdus.iter().enumerate() {
                assert_eq!(&record.cmd[5..13], &sweep_aid(i as u8));
            }
            let card = h.dh.applet().applet::<SweepCard>("sweep").unwrap();
            assert_eq!(card.selects(), 256);
            assert_eq!(h.dh.applet().apdus_for("sweep"), 256);
            // The session is over: so is the selection.
            assert_eq!(h.dh.applet().selected(), None);
            apdus_crossed_unchanged(&h, &report, exchanges);
            one_clean_session(&h, events, technology);
        }
    }
}

#[test]
fn unknown_aid_is_answered_6a82_by_the_host() {
    for profile in PROFILES {
        for technology in TECHNOLOGIES {
            let mut h = host(profile);
            let (events, exchanges) = (h.dh.records().len(), h.dh.exchanges().len());
            let report = tap(&mut h, scripts::unknown_aid(), technology);
            assert_eq!(
                report.outcome,
                TapOutcome::Completed,
                "{profile:?} {technology}"
            );
            assert_eq!(sws(&report), [Some(StatusWord::FILE_NOT_FOUND)]);
            assert_eq!(&report.apdus[0].cmd[5..13], &UNKNOWN_AID);
            // No application was asked: the host resolved the SELECT itself.
            for app in ["emv", "transit", "sweep"] {
                assert_eq!(h.dh.applet().apdus_for(app), 0, "{app}");
            }
            assert_eq!(h.dh.applet().selected(), None);
            apdus_crossed_unchanged(&h, &report, exchanges);
            one_clean_session(&h, events, technology);
        }
    }
}

#[test]
fn the_nfcc_holds_iso_dep_and_technologies_to_the_host() {
    for profile in PROFILES {
        let h = host(profile);
        assert_eq!(h.nfcc.routing_table(), HOST_ROUTING, "{profile:?}");
        // The command that carried it: RF_SET_LISTEN_MODE_ROUTING_CMD, More = 0, 3 entries.
        let mut command = vec![0x21, 0x01, 0x11, 0x00, 0x03];
        command.extend_from_slice(&HOST_ROUTING);
        let sent: Vec<&[u8]> = h
            .trace()
            .iter()
            .filter(|e| e.direction == Direction::DhToNfcc && e.bytes.starts_with(&[0x21, 0x01]))
            .map(|e| e.bytes.as_slice())
            .collect();
        assert_eq!(sent, [command.as_slice()]);
        // The controller's record of it agrees, and the capacity is the profile's.
        let table = h.dh.controller().routing().unwrap();
        assert_eq!(table.encoded_len(), HOST_ROUTING.len());
        assert_eq!(table.capacity(), profile.max_routing_table_size());
        assert!(h.dh.events().any(|e| e
            == Event::RoutingProgrammed {
                mode: RoutingMode::Mixed,
                used: HOST_ROUTING.len(),
                capacity: profile.max_routing_table_size(),
            }));
        // Discovery listens in NFC-A and NFC-B (ListenTechs::AB).
        assert_eq!(
            h.nfcc.discovery_modes(),
            [RfTechMode::NfcAPassiveListen, RfTechMode::NfcBPassiveListen]
        );
    }
}

/// Clock (A0 03) and PMU/TVDD (A0 0E) settings: both live in EEPROM and are read only while
/// the firmware boots (PN7150 UM10936 §10), so writing them costs a second reset.
fn nxp_config() -> Config {
    let mut config = Config::default();
    config
        .nxp_params
        .push(Param::nxp(0xA003, &[0x08]).unwrap())
        .unwrap();
    config
        .nxp_params
        .push(Param::nxp(0xA00E, &[0x02, 0x09, 0x00]).unwrap())
        .unwrap();
    config
}

fn core_resets(h: &Pair<HostApps>, since: usize) -> usize {
    h.trace()[since..]
        .iter()
        .filter(|e| e.direction == Direction::DhToNfcc && e.bytes == [0x20, 0x00, 0x01, 0x01])
        .count()
}

#[test]
fn a_second_start_with_the_same_nxp_config_writes_no_eeprom() {
    let mut h = ready(Profile::Pn7150, nxp_config(), HostApps::demo(BALANCE));
    // First start: both tags differ from the factory values, are written once each, and the
    // controller is reset once more so that they take effect.
    assert_eq!(h.nfcc.eeprom_writes(), 2);
    assert_eq!(core_resets(&h, 0), 2);
    assert_eq!(h.nfcc.config_param(0xA003), Some(&[0x08][..]));
    assert_eq!(h.nfcc.config_param(0xA00E), Some(&[0x02, 0x09, 0x00][..]));

    // The same controller state machine starts again (e.g. Adapter1.Powered toggled).
    let since = h.trace().len();
    h.dh.start(h.now());
    h.run_until_idle().unwrap();
    assert_eq!(
        h.nfcc.eeprom_writes(),
        2,
        "no EEPROM write on the second start"
    );
    assert_eq!(core_resets(&h, since), 1, "no second reset either");
    // CORE_GET_CONFIG_CMD of the two NXP tags, and no CORE_SET_CONFIG_CMD naming one.
    let to_nfcc: Vec<&[u8]> = h.trace()[since..]
        .iter()
        .filter(|e| e.direction == Direction::DhToNfcc)
        .map(|e| e.bytes.as_slice())
        .collect();
    assert!(to_nfcc.contains(&&[0x20, 0x03, 0x05, 0x02, 0xA0, 0x03, 0xA0, 0x0E][..]));
    assert!(!to_nfcc
        .iter()
        .any(|p| p.starts_with(&[0x20, 0x02]) && p.windows(2).any(|w| w[0] == 0xA0)));

    // A new controller state machine (the daemon restarted) against the same NFCC: the same.
    let nfcc = std::mem::replace(&mut h.nfcc, Nfcc::pn7150());
    let mut h = Harness::new(
        ControllerDh::new(nxp_config(), HostApps::demo(BALANCE)),
        nfcc,
    );
    h.run_until_idle().unwrap();
    assert_eq!(h.nfcc.eeprom_writes(), 2);
    assert_eq!(core_resets(&h, 0), 1);
    assert_eq!(h.nfcc.routing_table(), HOST_ROUTING);
    let report = tap(
        &mut h,
        scripts::transit(&scripts::TransitDebitRepr::default()),
        RfTechnology::NfcA,
    );
    assert_eq!(report.outcome, TapOutcome::Completed);
}

#[test]
fn nxp_parameters_stay_off_other_controllers() {
    let h = ready(Profile::Nci2, nxp_config(), HostApps::demo(BALANCE));
    assert_eq!(h.nfcc.eeprom_writes(), 0);
    assert_eq!(core_resets(&h, 0), 1);
    // No NCI_PROPRIETARY_ACT_CMD and no A0xx tag asked for.
    assert!(!h.trace().iter().any(|e| e.direction == Direction::DhToNfcc
        && (e.bytes.starts_with(&[0x2F, 0x02]) || e.bytes.windows(2).any(|w| w == [0xA0, 0x03]))));
}

/// 298 data octets and 90 00: more than one PN7150 data packet (255 octets) can carry.
fn long_file(_: &[u8]) -> Vec<u8> {
    let mut rsp: Vec<u8> = (0..298u16).map(|i| (i % 251) as u8).collect();
    rsp.extend_from_slice(&[0x90, 0x00]);
    rsp
}

#[test]
fn a_long_response_crosses_two_data_packets_with_a_credit_round_trip() {
    for profile in PROFILES {
        // A 400 kHz bus and timed RF, so that the credit's round trip takes visible time.
        let mut config = NfccConfig::new(profile);
        config.rf_timing = Some(RfTiming::default());
        let mut h = Harness::with_bus(
            ControllerDh::new(Config::default(), long_file as fn(&[u8]) -> Vec<u8>),
            Nfcc::new(config),
            BusSpeed::Fast,
        );
        h.run_until_idle().unwrap();
        let since = h.trace().len();
        // READ BINARY with an extended Le of 298.
        let script = Script {
            name: "read-binary".into(),
            steps: vec![Step::send(
                vec![0x00, 0xB0, 0x00, 0x00, 0x00, 0x01, 0x2A],
                Expect::OK,
            )],
        };
        let report = tap(&mut h, script, RfTechnology::NfcA);
        assert_eq!(report.outcome, TapOutcome::Completed, "{profile:?}");
        assert_eq!(report.apdus[0].rsp, long_file(&[]));

        let expected = long_file(&[]);
        let trace = &h.trace()[since..];
        let first = trace
            .iter()
            .position(|e| e.direction == Direction::DhToNfcc)
            .unwrap();
        // DATA conn 0, PBF = 1, 255 octets: the first credit is spent.
        assert_eq!(&trace[first].bytes[..3], &[0x10, 0x00, 0xFF]);
        assert_eq!(&trace[first].bytes[3..], &expected[..255]);
        // CORE_CONN_CREDITS_NTF: one entry, conn 0, 1 credit, once the segment went over RF.
        let credit = trace[first..]
            .iter()
            .position(|e| e.bytes == [0x60, 0x06, 0x03, 0x01, 0x00, 0x01])
            .map(|i| first + i)
            .unwrap();
        // DATA conn 0, PBF = 0, the remaining 45 octets: sent only after the credit came back.
        let second = trace[first + 1..]
            .iter()
            .position(|e| e.direction == Direction::DhToNfcc)
            .map(|i| first + 1 + i)
            .unwrap();
        assert!(second > credit);
        assert_eq!(&trace[second].bytes[..3], &[0x00, 0x00, 0x2D]);
        assert_eq!(&trace[second].bytes[3..], &expected[255..]);
        // The controller sent the second segment the moment the credit arrived, which was
        // after the first segment's air time.
        assert_eq!(trace[second].sent_at, trace[credit].delivered_at);
        let air = RfTiming::default().response_time(RfTechnology::NfcA, 255);
        assert!(trace[credit].sent_at >= trace[first].delivered_at + air);
        assert_eq!(
            trace
                .iter()
                .filter(|e| e.direction == Direction::DhToNfcc)
                .count(),
            2
        );
    }
}

/// The command's data field and 90 00.
fn echo(command: &[u8]) -> Vec<u8> {
    let mut rsp = command.get(7..).unwrap_or_default().to_vec();
    rsp.extend_from_slice(&[0x90, 0x00]);
    rsp
}

#[test]
fn an_extended_length_exchange_is_three_packets_each_way() {
    for profile in PROFILES {
        let mut h = ready(profile, Config::default(), echo as fn(&[u8]) -> Vec<u8>);
        let since = h.trace().len();
        // UPDATE BINARY, extended Lc = 600 (00 02 58): 607 octets.
        let mut command = vec![0x00, 0xD6, 0x00, 0x00, 0x00, 0x02, 0x58];
        command.extend((0..600u16).map(|i| (i % 256) as u8));
        let script = Script {
            name: "update-binary".into(),
            steps: vec![Step::send(command.clone(), Expect::OK)],
        };
        let report = tap(&mut h, script, RfTechnology::NfcA);
        assert_eq!(report.outcome, TapOutcome::Completed, "{profile:?}");
        assert_eq!(report.apdus[0].rsp, echo(&command));
        // The host got the command whole, reassembled from 255 + 255 + 97 octets.
        assert_eq!(h.dh.exchanges()[0].command, command);
        let data = |direction| -> Vec<[u8; 3]> {
            h.trace()[since..]
                .iter()
                .filter(|e| e.direction == direction && e.bytes[0] & 0xE0 == 0x00)
                .map(|e| [e.bytes[0], e.bytes[1], e.bytes[2]])
                .collect()
        };
        assert_eq!(
            data(Direction::NfccToDh),
            [[0x10, 0x00, 0xFF], [0x10, 0x00, 0xFF], [0x00, 0x00, 0x61]]
        );
        // The 602-octet answer: 255 + 255 + 92 octets, each after a credit came back.
        assert_eq!(
            data(Direction::DhToNfcc),
            [[0x10, 0x00, 0xFF], [0x10, 0x00, 0xFF], [0x00, 0x00, 0x5C]]
        );
        let credits = h.trace()[since..]
            .iter()
            .filter(|e| e.bytes == [0x60, 0x06, 0x03, 0x01, 0x00, 0x01])
            .count();
        assert_eq!(credits, 3, "one CORE_CONN_CREDITS_NTF per packet sent");
    }
}

#[test]
fn routes_changed_during_a_tap_are_programmed_after_it() {
    use libnci::routing::{Aid, AidMatch, RoutingRule};
    use libnci::wire::routing::PowerState;

    for profile in PROFILES {
        let mut h = host(profile);
        let since = h.trace().len();
        let config = ReaderConfig {
            think_time: libnci::time::Duration::from_millis(1),
            ..ReaderConfig::default()
        };
        h.begin_tap(Reader::new(
            scripts::transit(&scripts::TransitDebitRepr::default()),
            config.clone(),
        ));
        // Mid-tap: the SELECT has been answered, READ BALANCE is a think time away.
        h.run_for(config.activation_time + config.think_time / 2)
            .unwrap();
        assert_eq!(h.dh.controller().state(), State::Active);
        // Ten payment AIDs (prefix match) to a secure element, NFCEE 0x02.
        let mut routes = h.dh.controller().config().routes.clone();
        for i in 0..10u8 {
            let aid = Aid::new(&[0xA0, 0x00, 0x00, 0x00, 0x99, i]).unwrap();
            let rule = RoutingRule::Aid {
                route: 0x02,
                power_state: PowerState::SWITCHED_ON,
                aid,
                matching: AidMatch::Prefix,
            };
            routes.push(rule).unwrap();
        }
        h.dh.set_routes(routes, h.now());
        let report = h.finish_tap().unwrap();
        h.run_until_idle().unwrap();
        assert_eq!(report.outcome, TapOutcome::Completed, "{profile:?}");

        // Nothing was sent while the reader was there; then discovery stopped, the table went
        // out, and discovery started again.
        let end = report.field_on_at + report.total;
        let commands: Vec<&[u8]> = h.trace()[since..]
            .iter()
            .filter(|e| e.direction == Direction::DhToNfcc && e.bytes[0] & 0xE0 == 0x20)
            .map(|e| {
                assert!(e.sent_at >= end, "{profile:?}: a command during the tap");
                e.bytes.as_slice()
            })
            .collect();
        assert_eq!(commands.first(), Some(&&[0x21, 0x06, 0x01, 0x00][..]));
        assert_eq!(
            commands.last(),
            Some(&&[0x21, 0x03, 0x05, 0x02, 0x80, 0x01, 0x81, 0x01][..])
        );
        assert!(commands[1..commands.len() - 1]
            .iter()
            .all(|c| c.starts_with(&[0x21, 0x01])));
        // The NFCC holds exactly the entries the controller reports: ten AID entries first,
        // then ISO-DEP, NFC-A and NFC-B to the host. NCI 1.0 has no prefix qualifier: the
        // PN7150 gets exact AID entries (type 02), NCI 2.0 prefix ones (type 12).
        let table = h.dh.controller().routing().unwrap();
        assert_eq!(table.mode(), RoutingMode::Mixed);
        let mut held = Vec::new();
        for entry in table.entries() {
            let mut buf = [0u8; 32];
            let len = entry.buffer_len();
            entry.emit(&mut buf[..len]).unwrap();
            held.extend_from_slice(&buf[..len]);
        }
        assert_eq!(h.nfcc.routing_table(), held, "{profile:?}");
        let aid_type = match profile {
            Profile::Pn7150 => 0x02,
            Profile::Nci2 => 0x12,
        };
        assert_eq!(
            &h.nfcc.routing_table()[..10],
            &[aid_type, 0x08, 0x02, 0x01, 0xA0, 0x00, 0x00, 0x00, 0x99, 0x00]
        );
        assert_eq!(&h.nfcc.routing_table()[10 * 10..], HOST_ROUTING);
        // And the next tap goes to the host as before.
        let report = tap(
            &mut h,
            scripts::transit(&scripts::TransitDebitRepr::default()),
            RfTechnology::NfcA,
        );
        assert_eq!(report.outcome, TapOutcome::Completed);
    }
}

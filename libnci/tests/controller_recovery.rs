//! Failure transcripts: for every PN7150 start-up step an error variant (failed status), a
//! broken variant (malformed response, malformed packet) and a timeout variant, each ending in
//! a clean re-initialisation that restores configuration and routing; and failures while
//! running (spurious reset, error notifications, unexpected and malformed packets).

mod transcript;

use libnci::controller::{Config, ControllerError, Deactivation, ReinitCause, State};
use libnci::time::Duration;
use libnci::wire::Status;
use transcript::{
    hex, pn7150, pn7150_active, pn7150_ready, pn7150_startup, Ev, Step, Transcript, PN7150_STEPS,
};

/// Run the start-up up to `step`, send its command and return.
fn until_step(index: usize) -> (Transcript, &'static Step) {
    let mut t = Transcript::default_config();
    for step in &PN7150_STEPS[..index] {
        t.exchange(step.cmd, step.rsp);
    }
    if index > 7 {
        t.expect_event_where("RoutingProgrammed", |e| {
            matches!(e, Ev::RoutingProgrammed { .. })
        });
    }
    let step = &PN7150_STEPS[index];
    t.expect_cmd(step.cmd);
    t.expect_no_transmit();
    (t, step)
}

/// After a failure: Recovering, nothing sent until the back-off ends, then the whole
/// start-up again — same configuration writes, same routing table — to Ready.
#[track_caller]
fn recovers(t: &mut Transcript) {
    t.expect_state(State::Recovering);
    t.expect_no_transmit();
    t.advance(9);
    t.expect_no_transmit();
    t.advance(1);
    pn7150_startup(t);
}

fn rsp_name(step: &Step) -> String {
    format!("{}_RSP", step.name)
}

#[test]
fn every_step_failed_status_reinitialises() {
    for index in 0..PN7150_STEPS.len() {
        let (mut t, step) = until_step(index);
        t.queue_rsp(step.error);
        match t.expect_reinit() {
            ReinitCause::Failed { response, status } => {
                assert_eq!(response, rsp_name(step), "step {}", step.name);
                assert!(!status.is_ok());
            }
            other => panic!("step {}: {other:?}", step.name),
        }
        t.expect_no_event();
        recovers(&mut t);
    }
}

#[test]
fn every_step_broken_response_reinitialises() {
    for index in 0..PN7150_STEPS.len() {
        let (mut t, step) = until_step(index);
        t.queue_rsp(step.broken);
        match t.expect_reinit() {
            ReinitCause::Malformed { message, .. } => {
                assert_eq!(message, rsp_name(step), "step {}", step.name)
            }
            // The proprietary group keeps a payload it cannot read as a plain proprietary
            // message: it is then not the response awaited.
            ReinitCause::Unexpected { .. } if step.name == "NCI_PROPRIETARY_ACT" => {}
            other => panic!("step {}: {other:?}", step.name),
        }
        recovers(&mut t);
    }
}

#[test]
fn every_step_broken_packet_reinitialises() {
    for index in 0..PN7150_STEPS.len() {
        let (mut t, step) = until_step(index);
        // The length field announces one octet more than the packet holds.
        let mut packet = hex(step.rsp);
        packet.pop();
        t.queue(&packet);
        assert_eq!(
            t.expect_reinit(),
            ReinitCause::Malformed {
                message: "packet",
                error: libnci::wire::Error::Truncated
            },
            "step {}",
            step.name
        );
        recovers(&mut t);
    }
}

#[test]
fn every_step_timeout_reinitialises() {
    for index in 0..PN7150_STEPS.len() {
        let (mut t, step) = until_step(index);
        t.advance(999);
        t.expect_no_event();
        t.advance(1);
        let name = rsp_name(step);
        match t.expect_reinit() {
            ReinitCause::Timeout { waiting_for } => assert_eq!(waiting_for, name),
            other => panic!("step {}: {other:?}", step.name),
        }
        // A response arriving during the back-off belongs to the old run: ignored.
        t.queue_rsp(step.rsp);
        t.expect_no_event();
        recovers(&mut t);
    }
}

#[test]
fn nci2_reset_notification_timeout_and_broken() {
    for broken in [
        None,
        Some("60 00 02 02 01"),
        Some("60 00 05 02 01 20 02 04"),
    ] {
        let mut t = Transcript::default_config();
        t.exchange("20 00 01 01", "40 00 01 00");
        match broken {
            None => {
                t.advance(1000);
                assert_eq!(
                    t.expect_reinit(),
                    ReinitCause::Timeout {
                        waiting_for: "CORE_RESET_NTF"
                    }
                );
            }
            Some(ntf) => {
                t.queue_ntf(ntf);
                assert!(matches!(
                    t.expect_reinit(),
                    ReinitCause::Malformed {
                        message: "CORE_RESET_NTF",
                        ..
                    }
                ));
            }
        }
        t.advance(10);
        t.expect_cmd("20 00 01 01");
    }
}

#[test]
fn backoff_doubles_and_gives_up_then_start_retries() {
    let config = Config {
        max_reinit_attempts: 3,
        ..Config::default()
    };
    let mut t = Transcript::new(config);
    let mut delays = Vec::new();
    for attempt in 1..=3u8 {
        t.expect_cmd(pn7150::CORE_RESET_CMD);
        t.advance(1000);
        match t.expect_event_where("Reinitializing", |e| matches!(e, Ev::Reinitializing { .. })) {
            Ev::Reinitializing {
                attempt: a, delay, ..
            } => {
                assert_eq!(a, attempt);
                assert_eq!(t.ctl.poll_timeout(), Some(t.now() + delay));
                delays.push(delay);
                t.advance_by(delay);
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(delays, [10, 20, 40].map(Duration::from_millis).to_vec());
    t.expect_cmd(pn7150::CORE_RESET_CMD);
    t.advance(1000);
    t.expect_event(Ev::Error(ControllerError::GaveUp {
        attempts: 3,
        last: ReinitCause::Timeout {
            waiting_for: "CORE_RESET_RSP",
        },
    }));
    t.expect_state(State::Failed);
    assert_eq!(t.ctl.poll_timeout(), None);
    // Failed ignores the controller until the host starts it again.
    t.queue_rsp(pn7150::CORE_RESET_RSP);
    t.expect_no_transmit();
    t.expect_no_event();
    t.start();
    pn7150_startup(&mut t);
}

#[test]
fn ready_resets_the_attempt_count() {
    let mut t = Transcript::default_config();
    t.expect_cmd(pn7150::CORE_RESET_CMD);
    t.advance(1000);
    t.expect_reinit();
    t.advance(10);
    pn7150_startup(&mut t);
    // A later failure starts again from attempt 1 and the first delay.
    t.queue_ntf("60 00 02 00 01");
    t.expect_event(Ev::Reinitializing {
        cause: ReinitCause::ControllerReset,
        attempt: 1,
        delay: Duration::from_millis(10),
    });
}

#[test]
fn spurious_reset_in_discovery_reinitialises() {
    let mut t = pn7150_ready();
    // CORE_RESET_NTF (NCI 1.0 layout): the PN7150 reset itself.
    t.queue_ntf("60 00 02 00 01");
    assert_eq!(t.expect_reinit(), ReinitCause::ControllerReset);
    recovers(&mut t);
}

#[test]
fn spurious_reset_during_a_session_ends_it_first() {
    let mut t = pn7150_active();
    t.queue_data("00 00 05 00 B0 00 00 00");
    t.expect_data();
    t.queue_ntf("60 00 02 00 01");
    t.expect_event(Ev::Deactivated(Deactivation::Reinitialized));
    assert_eq!(t.expect_reinit(), ReinitCause::ControllerReset);
    assert!(t.send_data(&hex("90 00")).is_err());
    recovers(&mut t);
}

#[test]
fn reinitialisation_restores_changed_routes() {
    let mut t = pn7150_ready();
    let mut routes = Config::default().routes;
    routes.truncate(1);
    t.set_routes(routes);
    t.exchange("21 06 01 00", "41 06 01 00");
    t.exchange("21 01 07 00 01 01 03 00 01 04", "41 01 01 00");
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_event_where("RoutingProgrammed", |e| {
        matches!(e, Ev::RoutingProgrammed { used: 5, .. })
    });
    t.queue_ntf("60 00 02 00 01");
    t.expect_reinit();
    t.advance(10);
    for step in &PN7150_STEPS[..7] {
        t.exchange(step.cmd, step.rsp);
    }
    // The table programmed again is the changed one.
    t.exchange("21 01 07 00 01 01 03 00 01 04", "41 01 01 00");
    t.exchange(pn7150::RF_DISCOVER_CMD, pn7150::RF_DISCOVER_RSP);
    t.expect_event_where("RoutingProgrammed", |e| {
        matches!(e, Ev::RoutingProgrammed { used: 5, .. })
    });
    t.expect_event(Ev::Ready);
}

#[test]
fn generic_errors_fatal_and_informational() {
    let mut t = pn7150_ready();
    // DISCOVERY_TEAR_DOWN, RF_TIMEOUT_ERROR, NXP's 0xE6: reported, nothing else.
    for (ntf, status) in [
        ("60 07 01 A2", Status::DiscoveryTearDown),
        ("60 07 01 B2", Status::RfTimeoutError),
        ("60 07 01 E6", Status::Unknown(0xE6)),
    ] {
        t.queue_ntf(ntf);
        t.expect_event(Ev::Error(ControllerError::GenericError(status)));
        t.expect_state(State::Discovery);
        t.expect_no_transmit();
    }
    // STATUS_NOT_INITIALIZED: the controller lost its initialisation.
    t.queue_ntf("60 07 01 04");
    assert_eq!(
        t.expect_reinit(),
        ReinitCause::GenericError(Status::NotInitialized)
    );
    recovers(&mut t);
}

#[test]
fn interface_error_with_a_syntax_error_reinitialises() {
    let mut t = pn7150_active();
    t.queue_ntf("60 08 02 05 00");
    t.expect_event(Ev::Deactivated(Deactivation::Reinitialized));
    assert_eq!(
        t.expect_reinit(),
        ReinitCause::InterfaceError(Status::SyntaxError)
    );
    recovers(&mut t);
}

#[test]
fn malformed_and_unexpected_messages_while_running() {
    type IsCause = fn(&ReinitCause) -> bool;
    let cases: [(&str, IsCause); 6] = [
        // RF_INTF_ACTIVATED_NTF cut short.
        ("61 05 03 01 02 04", |c| {
            matches!(
                c,
                ReinitCause::Malformed {
                    message: "RF_INTF_ACTIVATED_NTF",
                    ..
                }
            )
        }),
        // A response nobody waits for.
        ("41 03 01 00", |c| {
            *c == ReinitCause::Unexpected {
                message: "RF_DISCOVER_RSP",
            }
        }),
        // A command from the controller.
        ("20 00 01 00", |c| {
            *c == ReinitCause::Unexpected {
                message: "CORE_RESET_CMD",
            }
        }),
        // Message type 100b is reserved.
        ("80 00 00", |c| matches!(c, ReinitCause::Malformed { .. })),
        // Length field larger than the packet.
        ("60 06 05 01 00 01", |c| {
            matches!(
                c,
                ReinitCause::Malformed {
                    message: "packet",
                    ..
                }
            )
        }),
        // RF_DEACTIVATE_NTF with an unknown deactivation type.
        ("61 06 02 04 01", |c| {
            *c == ReinitCause::Unexpected {
                message: "RF_DEACTIVATE_NTF",
            }
        }),
    ];
    for (packet, is_cause) in cases {
        let mut t = pn7150_ready();
        t.queue(&hex(packet));
        let cause = t.expect_reinit();
        assert!(is_cause(&cause), "{packet}: {cause:?}");
        recovers(&mut t);
    }
}

#[test]
fn data_on_a_connection_never_created_reinitialises() {
    // A UART stream whose framing slipped by one octet: a data packet claimed one octet more
    // than it carried and swallowed the first octet (61) of RF_FIELD_INFO_NTF 61 07 01 00;
    // what is left reads as a data packet on connection 7 — one this host never created.
    let mut t = pn7150_active();
    t.queue(&hex("07 01 00"));
    t.expect_event(Ev::Deactivated(Deactivation::Reinitialized));
    assert_eq!(
        t.expect_reinit(),
        ReinitCause::Unexpected {
            message: "DATA on a connection never created"
        }
    );
    recovers(&mut t);
    // Outside a session on the static RF connection it is only reported: a packet sent
    // just before the session ended is no disagreement.
    let mut t = pn7150_ready();
    t.queue_data("00 00 02 90 00");
    t.expect_event(Ev::Error(ControllerError::UnexpectedData { conn_id: 0 }));
    t.expect_state(State::Discovery);
}

#[test]
fn interleaved_control_segments_are_malformed() {
    let mut t = pn7150_ready();
    // First segment of a CORE_CONN_CREDITS_NTF, then another notification.
    t.queue(&hex("70 06 01 01"));
    t.expect_no_event();
    t.queue(&hex(pn7150::RF_FIELD_INFO_NTF_ON));
    assert!(matches!(t.expect_reinit(), ReinitCause::Malformed { .. }));
    recovers(&mut t);
}

#[test]
fn segmented_notification_is_reassembled() {
    let mut t = pn7150_ready();
    t.queue(&hex("71 07 00")); // RF_FIELD_INFO_NTF, first (empty) segment
    t.queue(&hex("61 07 01 01"));
    t.expect_event(Ev::FieldOn);
}

#[test]
fn unknown_notifications_are_ignored() {
    let mut t = pn7150_ready();
    for ntf in ["60 33 00", "61 33 00", "62 33 00", "6F 33 02 01 02"] {
        t.queue_ntf(ntf);
        t.expect_no_event();
        t.expect_no_transmit();
        t.expect_state(State::Discovery);
    }
    // NFCEE_DISCOVER_NTF carries nothing a host card emulation host acts on.
    t.queue_ntf("62 00 03 02 00 00");
    t.expect_no_event();
}

#[test]
fn start_while_running_restarts_cleanly() {
    let mut t = pn7150_active();
    t.start();
    t.expect_event(Ev::Deactivated(Deactivation::Reinitialized));
    t.expect_no_event();
    pn7150_startup(&mut t);
}

//! I²C transport against the simulated PN7150 I²C slave (`transport::i2c_sim`): bus rules of
//! UM10936 §3 (IRQ-driven header-then-payload reads, standby wake-up NACK, VEN reset) and
//! fault handling.

use std::time::Duration;

use nfcd::transport::i2c::{I2cTiming, I2cTransport};
use nfcd::transport::i2c_sim::I2cSim;
use nfcd::transport::{Transport, TransportError};
use nix::errno::Errno;

/// CORE_RESET_CMD, reset configuration (NCI 1.0 §4.1).
const CORE_RESET_CMD: [u8; 4] = [0x20, 0x00, 0x01, 0x01];
/// CORE_RESET_RSP: STATUS_OK, NCI version 1.1, configuration reset.
const CORE_RESET_RSP: [u8; 6] = [0x40, 0x00, 0x03, 0x00, 0x11, 0x01];
/// CORE_INIT_CMD (NCI 1.0 §4.2).
const CORE_INIT_CMD: [u8; 3] = [0x20, 0x01, 0x00];
/// CORE_INIT_RSP of a PN7150 (UM10936): STATUS_OK, features, 3 supported RF interfaces
/// (Frame, ISO-DEP, NFC-DEP), 1 logical connection, routing table 0x02D0 = 720 octets, control
/// packet payload 255, large parameter 0x0400, manufacturer 0x04 (NXP) + 4 octets.
const CORE_INIT_RSP: [u8; 23] = [
    0x40, 0x01, 0x14, 0x00, 0x02, 0x0E, 0x02, 0x00, 0x03, 0x00, 0x02, 0x03, 0x01, 0xD0, 0x02, 0xFF,
    0x00, 0x04, 0x04, 0x00, 0x00, 0x00, 0x00,
];
/// CORE_CONN_CREDITS_NTF: one entry, connection 0, one credit.
const CORE_CONN_CREDITS_NTF: [u8; 6] = [0x60, 0x06, 0x03, 0x01, 0x00, 0x01];
/// RF_FIELD_INFO_NTF: operating field detected.
const RF_FIELD_INFO_NTF: [u8; 4] = [0x61, 0x07, 0x01, 0x01];
/// CORE_GENERIC_ERROR_NTF with no payload octet is malformed NCI, but framing-wise a packet
/// with an empty payload: read as the header alone.
const EMPTY_PAYLOAD_NTF: [u8; 3] = [0x60, 0x07, 0x00];

fn timing() -> I2cTiming {
    I2cTiming {
        write_tries: 5,
        nack_pause: Duration::from_millis(1),
        ven_low: Duration::from_millis(10),
        ven_boot: Duration::from_millis(1),
        read_tries: 5,
        read_retry_pause: Duration::from_millis(2),
        idle_wait: Duration::from_millis(50),
    }
}

/// A controller that answers CORE_RESET_CMD and CORE_INIT_CMD like a PN7150; CORE_INIT_CMD
/// also triggers two notifications queued at once with the response.
fn pn7150() -> (I2cSim, I2cTransport) {
    let sim = I2cSim::new();
    sim.set_responder(|host| match host {
        [0x20, 0x00, 0x01, _] => vec![CORE_RESET_RSP.to_vec()],
        [0x20, 0x01, 0x00] => vec![
            CORE_INIT_RSP.to_vec(),
            CORE_CONN_CREDITS_NTF.to_vec(),
            RF_FIELD_INFO_NTF.to_vec(),
        ],
        _ => vec![],
    });
    let transport = sim.transport(timing()).unwrap();
    (sim, transport)
}

async fn recv(t: &mut I2cTransport) -> Result<Vec<u8>, TransportError> {
    tokio::time::timeout(Duration::from_secs(5), t.recv())
        .await
        .expect("recv did not finish within 5 s")
        .map(|p| p.to_vec())
}

#[tokio::test]
async fn header_then_payload_reads() {
    let (sim, mut t) = pn7150();
    t.send(&CORE_RESET_CMD).await.unwrap();
    assert_eq!(sim.host_packets(), vec![CORE_RESET_CMD.to_vec()]);
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
    // Two reads: the 3-octet header, then exactly the 3 payload octets.
    assert_eq!(sim.read_sizes(), vec![3, 3]);
}

#[tokio::test]
async fn empty_payload_is_one_header_read() {
    let (sim, mut t) = pn7150();
    sim.queue(&EMPTY_PAYLOAD_NTF);
    assert_eq!(recv(&mut t).await.unwrap(), EMPTY_PAYLOAD_NTF);
    assert_eq!(sim.read_sizes(), vec![3]);
}

#[tokio::test]
async fn multi_packet_drain_on_one_irq() {
    let (sim, mut t) = pn7150();
    t.send(&CORE_INIT_CMD).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_INIT_RSP);
    assert_eq!(recv(&mut t).await.unwrap(), CORE_CONN_CREDITS_NTF);
    assert_eq!(recv(&mut t).await.unwrap(), RF_FIELD_INFO_NTF);
    // IRQ rose once and stayed high for all three packets: the reader re-checked the level
    // after each packet instead of waiting for another edge.
    assert_eq!(sim.irq_rising_edges(), 1);
    assert_eq!(sim.read_sizes(), vec![3, 20, 3, 3, 3, 1]);
}

#[tokio::test]
async fn largest_packet() {
    let (sim, mut t) = pn7150();
    let mut data = vec![0x00, 0x00, 0xFF];
    data.extend((0..255).map(|i| i as u8));
    sim.queue(&data);
    assert_eq!(recv(&mut t).await.unwrap(), data);
    assert_eq!(sim.read_sizes(), vec![3, 255]);
}

#[tokio::test]
async fn standby_nack_is_retried_whole() {
    let (sim, mut t) = pn7150();
    sim.enter_standby();
    t.send(&CORE_RESET_CMD).await.unwrap();
    // First write NACKed (wake-up), second accepted; no reset.
    assert_eq!(sim.write_attempts(), 2);
    assert_eq!(sim.write_nacks(), 1);
    assert_eq!(sim.host_packets(), vec![CORE_RESET_CMD.to_vec()]);
    assert!(sim.ven_log().is_empty());
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn nack_storm_resets_by_ven_and_reports() {
    let (sim, mut t) = pn7150();
    sim.set_nack_storm(true);
    let err = t.send(&CORE_RESET_CMD).await.unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::NackStorm {
                tries: 5,
                reset: true
            }
        ),
        "{err}"
    );
    assert_eq!(sim.write_attempts(), 5);
    let ven = sim.ven_log();
    let levels: Vec<bool> = ven.iter().map(|&(_, high)| high).collect();
    assert_eq!(levels, vec![false, true]);
    // VEN stayed low for at least the configured pulse.
    assert!(ven[1].0 - ven[0].0 >= timing().ven_low);

    // Once the bus is healthy again the transport works.
    sim.set_nack_storm(false);
    t.send(&CORE_RESET_CMD).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn nack_storm_without_ven_reports_no_reset() {
    let sim = I2cSim::new();
    let mut t = I2cTransport::new(
        Box::new(sim.device()),
        Box::new(sim.irq()),
        None,
        timing(),
        "i2c:sim-no-ven".into(),
    )
    .unwrap();
    sim.set_nack_storm(true);
    let err = t.send(&CORE_INIT_CMD).await.unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::NackStorm {
                tries: 5,
                reset: false
            }
        ),
        "{err}"
    );
    assert!(sim.ven_log().is_empty());
}

#[tokio::test]
async fn read_error_is_reported() {
    let (sim, mut t) = pn7150();
    sim.fail_next_read(Errno::EIO);
    sim.queue(&CORE_CONN_CREDITS_NTF);
    match recv(&mut t).await {
        Err(TransportError::Io { context, source }) => {
            assert_eq!(context, "i2c:sim: read header");
            assert_eq!(source.raw_os_error(), Some(Errno::EIO as i32));
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    // After a reset the controller is read again.
    t.reset().await.unwrap();
    sim.queue(&RF_FIELD_INFO_NTF);
    assert_eq!(recv(&mut t).await.unwrap(), RF_FIELD_INFO_NTF);
}

#[tokio::test]
async fn payload_read_error_is_reported() {
    let (sim, mut t) = pn7150();
    // The header read of CORE_RESET_RSP succeeds, its payload read fails.
    sim.fail_read_after(1, Errno::ETIMEDOUT);
    sim.queue(&CORE_RESET_RSP);
    match recv(&mut t).await {
        Err(TransportError::Io { context, source }) => {
            assert_eq!(context, "i2c:sim: read payload");
            assert_eq!(source.raw_os_error(), Some(Errno::ETIMEDOUT as i32));
            assert_eq!(sim.read_sizes(), vec![3, 3]);
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[tokio::test]
async fn irq_stuck_high_is_an_error_not_a_busy_loop() {
    let (sim, mut t) = pn7150();
    sim.set_irq_stuck(true);
    let err = recv(&mut t).await.unwrap_err();
    assert!(
        matches!(err, TransportError::IrqStuck { tries: 5 }),
        "{err}"
    );
    assert_eq!(sim.read_attempts(), 5);
    // The reader has stopped touching the bus: no more reads while IRQ is still high.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.read_attempts(), 5);

    // A reset (VEN cycle) clears the condition and reading resumes.
    t.reset().await.unwrap();
    t.send(&CORE_RESET_CMD).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn a_nack_storm_shorter_than_the_retries_is_absorbed() {
    let (sim, mut t) = pn7150();
    // 5 tries 1 ms apart outlast a 2 ms storm that starts with the first try.
    sim.nack_storm(Some(Duration::from_millis(2)));
    t.send(&CORE_RESET_CMD).await.unwrap();
    assert!(sim.write_nacks() >= 1);
    assert!(sim.ven_log().is_empty());
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn a_nack_storm_until_ven_ends_with_the_reset() {
    let (sim, mut t) = pn7150();
    sim.nack_storm(None);
    let err = t.send(&CORE_RESET_CMD).await.unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::NackStorm {
                tries: 5,
                reset: true
            }
        ),
        "{err}"
    );
    // The VEN cycle after the last try ended the storm.
    t.send(&CORE_RESET_CMD).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn irq_sticks_after_the_reads_given() {
    let (sim, mut t) = pn7150();
    // CORE_RESET_RSP is read as header and payload; then IRQ stays high.
    sim.stick_irq_after(2);
    t.send(&CORE_RESET_CMD).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
    let err = recv(&mut t).await.unwrap_err();
    assert!(
        matches!(err, TransportError::IrqStuck { tries: 5 }),
        "{err}"
    );
    assert_eq!(sim.read_sizes()[..2], [3, 3]);
    // VEN low ends it.
    t.reset().await.unwrap();
    t.send(&CORE_RESET_CMD).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn reset_toggles_ven_and_drops_what_was_read_before() {
    let (sim, mut t) = pn7150();
    // A notification is read by the reader thread but not yet taken by the daemon.
    sim.queue(&RF_FIELD_INFO_NTF);
    assert!(sim.wait_until(Duration::from_secs(5), |s| s.pending() == 0));
    t.reset().await.unwrap();
    let levels: Vec<bool> = sim.ven_log().iter().map(|&(_, high)| high).collect();
    assert_eq!(levels, vec![false, true]);
    // After the reset only the new controller life is seen.
    t.send(&CORE_RESET_CMD).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn recv_is_cancel_safe() {
    let (sim, mut t) = pn7150();
    tokio::select! {
        got = t.recv() => panic!("recv returned with nothing queued: {got:?}"),
        () = tokio::time::sleep(Duration::from_millis(30)) => {}
    }
    sim.queue(&CORE_CONN_CREDITS_NTF);
    assert_eq!(recv(&mut t).await.unwrap(), CORE_CONN_CREDITS_NTF);
}

#[tokio::test]
async fn send_rejects_broken_framing() {
    let (sim, mut t) = pn7150();
    let err = t.send(&[0x20, 0x00, 0x02, 0x01]).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Framing { len: 4, .. }),
        "{err}"
    );
    assert_eq!(sim.write_attempts(), 0);
}

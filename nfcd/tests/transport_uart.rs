//! UART transport against a real pseudo-terminal pair: the test holds the master side and
//! plays the controller; the transport opens the slave side like a serial port.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use nfcd::transport::{Transport, TransportError, UartSpec, UartTransport};
use nix::pty::openpty;

/// CORE_RESET_CMD, keep configuration (NCI 1.0 §4.1).
const CORE_RESET_CMD: [u8; 4] = [0x20, 0x00, 0x01, 0x00];
/// CORE_RESET_RSP: STATUS_OK, NCI version 1.1, configuration kept.
const CORE_RESET_RSP: [u8; 6] = [0x40, 0x00, 0x03, 0x00, 0x11, 0x00];
/// CORE_INIT_RSP header with an empty payload is not a real answer, but the transport does not
/// care: an empty-payload packet.
const EMPTY_PAYLOAD: [u8; 3] = [0x40, 0x01, 0x00];
/// CORE_CONN_CREDITS_NTF: one entry, connection 0, one credit.
const CORE_CONN_CREDITS_NTF: [u8; 6] = [0x60, 0x06, 0x03, 0x01, 0x00, 0x01];

struct Pty {
    master: File,
    slave_path: PathBuf,
    /// Kept open so the pty does not hang up before the transport opens it.
    _slave: OwnedFd,
}

fn pty() -> Pty {
    let pair = openpty(None, None).expect("openpty");
    let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", pair.slave.as_raw_fd()))
        .expect("pty slave path");
    Pty {
        master: File::from(pair.master),
        slave_path,
        _slave: pair.slave,
    }
}

fn open_transport(pty: &Pty) -> UartTransport {
    UartTransport::open(&UartSpec {
        device: pty.slave_path.clone(),
        baud: 115_200,
    })
    .expect("open uart transport")
}

async fn recv(t: &mut UartTransport) -> Result<Vec<u8>, TransportError> {
    tokio::time::timeout(Duration::from_secs(5), t.recv())
        .await
        .expect("recv did not finish within 5 s")
        .map(|p| p.to_vec())
}

#[tokio::test]
async fn describe_names_device_and_speed() {
    let pty = pty();
    let t = open_transport(&pty);
    assert_eq!(
        t.describe(),
        format!("uart:{}@115200", pty.slave_path.display())
    );
}

#[tokio::test]
async fn header_split_across_writes() {
    let mut pty = pty();
    let mut t = open_transport(&pty);
    // CORE_RESET_RSP arrives as 40 | 00 03 | 00 11 00
    pty.master.write_all(&CORE_RESET_RSP[..1]).unwrap();
    pty.master.flush().unwrap();
    let recv_task = recv(&mut t);
    let writer = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        pty.master.write_all(&CORE_RESET_RSP[1..3]).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        pty.master.write_all(&CORE_RESET_RSP[3..]).unwrap();
    };
    let (got, ()) = tokio::join!(recv_task, writer);
    assert_eq!(got.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn several_packets_in_one_write() {
    let mut pty = pty();
    let mut t = open_transport(&pty);
    let mut burst = Vec::new();
    burst.extend_from_slice(&CORE_RESET_RSP);
    burst.extend_from_slice(&EMPTY_PAYLOAD);
    burst.extend_from_slice(&CORE_CONN_CREDITS_NTF);
    burst.extend_from_slice(&CORE_RESET_RSP[..2]); // start of a fourth packet
    pty.master.write_all(&burst).unwrap();

    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
    assert_eq!(recv(&mut t).await.unwrap(), EMPTY_PAYLOAD);
    assert_eq!(recv(&mut t).await.unwrap(), CORE_CONN_CREDITS_NTF);

    pty.master.write_all(&CORE_RESET_RSP[2..]).unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn largest_packet_and_raw_mode_bytes() {
    let mut pty = pty();
    let mut t = open_transport(&pty);
    // A 255-octet data packet full of bytes a cooked tty would eat or rewrite:
    // CR, LF, ^C, ^D, ^Z, XON, XOFF, DEL, ^\.
    let specials = [
        0x0D, 0x0A, 0x03, 0x04, 0x1A, 0x11, 0x13, 0x7F, 0x1C, 0x00, 0xFF,
    ];
    let mut data = vec![0x00, 0x00, 0xFF];
    data.extend(specials.iter().cycle().take(255));

    pty.master.write_all(&data).unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), data);

    // And the other way round: send goes through unchanged.
    t.send(&data).await.unwrap();
    let mut echoed = vec![0u8; data.len()];
    pty.master.read_exact(&mut echoed).unwrap();
    assert_eq!(echoed, data);
}

#[tokio::test]
async fn send_writes_exactly_the_packet() {
    let mut pty = pty();
    let mut t = open_transport(&pty);
    t.send(&CORE_RESET_CMD).await.unwrap();
    let mut got = [0u8; 4];
    pty.master.read_exact(&mut got).unwrap();
    assert_eq!(got, CORE_RESET_CMD);
}

#[tokio::test]
async fn send_rejects_broken_framing() {
    let pty = pty();
    let mut t = open_transport(&pty);
    // Header says 1 payload octet, 2 follow.
    let err = t.send(&[0x20, 0x00, 0x01, 0x00, 0x00]).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Framing { len: 5, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn recv_is_cancel_safe() {
    let mut pty = pty();
    let mut t = open_transport(&pty);
    // Half a CORE_CONN_CREDITS_NTF arrives, then recv is cancelled by a timer in select!.
    pty.master.write_all(&CORE_CONN_CREDITS_NTF[..4]).unwrap();
    tokio::select! {
        got = t.recv() => panic!("recv returned early: {got:?}"),
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    // The rest arrives; the octets read by the cancelled call were not lost.
    pty.master.write_all(&CORE_CONN_CREDITS_NTF[4..]).unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_CONN_CREDITS_NTF);
}

#[tokio::test]
async fn master_hang_up_is_an_error_not_a_hang() {
    let mut pty = pty();
    let mut t = open_transport(&pty);
    pty.master.write_all(&CORE_RESET_RSP[..2]).unwrap();
    // Let the partial packet reach the transport's buffer first.
    tokio::select! {
        got = t.recv() => panic!("recv returned early: {got:?}"),
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    drop(pty.master);
    let err = recv(&mut t).await.unwrap_err();
    match err {
        TransportError::Closed { partial, .. } => assert_eq!(partial, 2),
        other => panic!("expected Closed, got {other}"),
    }
    // And it stays closed.
    assert!(matches!(
        recv(&mut t).await,
        Err(TransportError::Closed { .. })
    ));
}

#[tokio::test]
async fn reset_drops_buffered_input() {
    let mut pty = pty();
    let mut t = open_transport(&pty);
    pty.master.write_all(&CORE_RESET_RSP[..4]).unwrap();
    tokio::select! {
        got = t.recv() => panic!("recv returned early: {got:?}"),
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    t.reset().await.unwrap();
    pty.master.write_all(&CORE_CONN_CREDITS_NTF).unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_CONN_CREDITS_NTF);
}

/// A packet whose length octet claims one octet more than it carries (CORE_RESET_RSP saying
/// 04 with three payload octets) swallows the first octet of the next packet, and the stream
/// stays shifted; discarding the buffered input realigns it on the next packet.
#[tokio::test]
async fn discard_input_realigns_a_stream_whose_length_octet_lied() {
    let mut pty = pty();
    let mut t = open_transport(&pty);
    pty.master
        .write_all(&[0x40, 0x00, 0x04, 0x00, 0x11, 0x01])
        .unwrap();
    tokio::select! {
        got = t.recv() => panic!("recv returned early: {got:?}"),
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    t.discard_input().await.unwrap();
    pty.master.write_all(&CORE_CONN_CREDITS_NTF).unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_CONN_CREDITS_NTF);
}

#[tokio::test]
async fn missing_device_is_a_clear_error() {
    let err = UartTransport::open(&UartSpec {
        device: "/nonexistent/ttyNFC".into(),
        baud: 115_200,
    })
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("uart:/nonexistent/ttyNFC@115200: "),
        "{text}"
    );
    assert!(matches!(err, TransportError::Io { .. }));
}

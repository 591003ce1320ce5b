//! TCP transport against a real loopback socket: the test accepts the connection and plays
//! the virtual controller.

use std::time::Duration;

use nfcd::transport::{
    AnyTransport, TcpSpec, TcpTransport, Transport, TransportError, TransportSpec,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// CORE_RESET_CMD, reset configuration (NCI 1.0 §4.1).
const CORE_RESET_CMD: [u8; 4] = [0x20, 0x00, 0x01, 0x01];
/// CORE_RESET_RSP: STATUS_OK, NCI version 1.1, configuration reset.
const CORE_RESET_RSP: [u8; 6] = [0x40, 0x00, 0x03, 0x00, 0x11, 0x01];
/// CORE_CONN_CREDITS_NTF: one entry, connection 0, one credit.
const CORE_CONN_CREDITS_NTF: [u8; 6] = [0x60, 0x06, 0x03, 0x01, 0x00, 0x01];
/// Data packet on the static RF connection carrying SELECT PPSE (ISO/IEC 7816-4 SELECT by
/// name, "2PAY.SYS.DDF01").
const DATA_SELECT_PPSE: [u8; 23] = [
    0x00, 0x00, 0x14, 0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53,
    0x2E, 0x44, 0x44, 0x46, 0x30, 0x31, 0x00,
];

async fn pair() -> (TcpTransport, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let spec = TcpSpec {
        host: "127.0.0.1".into(),
        port,
    };
    let (transport, accepted) = tokio::join!(TcpTransport::connect(&spec), listener.accept());
    (transport.unwrap(), accepted.unwrap().0)
}

async fn recv(t: &mut impl Transport) -> Result<Vec<u8>, TransportError> {
    tokio::time::timeout(Duration::from_secs(5), t.recv())
        .await
        .expect("recv did not finish within 5 s")
        .map(|p| p.to_vec())
}

#[tokio::test]
async fn nodelay_and_describe() {
    let (t, peer) = pair().await;
    assert!(t.nodelay().unwrap());
    let port = peer.local_addr().unwrap().port();
    assert_eq!(t.describe(), format!("tcp:127.0.0.1:{port}"));
}

#[tokio::test]
async fn packets_in_odd_chunks() {
    let (mut t, mut peer) = pair().await;
    // One write: CORE_RESET_RSP + CORE_CONN_CREDITS_NTF + the first 2 octets of a data packet.
    let mut burst = Vec::new();
    burst.extend_from_slice(&CORE_RESET_RSP);
    burst.extend_from_slice(&CORE_CONN_CREDITS_NTF);
    burst.extend_from_slice(&DATA_SELECT_PPSE[..2]);
    peer.write_all(&burst).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
    assert_eq!(recv(&mut t).await.unwrap(), CORE_CONN_CREDITS_NTF);

    // The rest of the data packet, header split across two writes.
    let recv_task = recv(&mut t);
    let writer = async {
        peer.write_all(&DATA_SELECT_PPSE[2..3]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        peer.write_all(&DATA_SELECT_PPSE[3..]).await.unwrap();
    };
    let (got, ()) = tokio::join!(recv_task, writer);
    assert_eq!(got.unwrap(), DATA_SELECT_PPSE);
}

#[tokio::test]
async fn send_goes_through() {
    let (mut t, mut peer) = pair().await;
    t.send(&CORE_RESET_CMD).await.unwrap();
    t.send(&DATA_SELECT_PPSE).await.unwrap();
    let mut got = vec![0u8; CORE_RESET_CMD.len() + DATA_SELECT_PPSE.len()];
    peer.read_exact(&mut got).await.unwrap();
    assert_eq!(&got[..4], CORE_RESET_CMD);
    assert_eq!(&got[4..], DATA_SELECT_PPSE);
}

#[tokio::test]
async fn recv_is_cancel_safe() {
    let (mut t, mut peer) = pair().await;
    peer.write_all(&CORE_RESET_RSP[..4]).await.unwrap();
    tokio::select! {
        got = t.recv() => panic!("recv returned early: {got:?}"),
        () = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    peer.write_all(&CORE_RESET_RSP[4..]).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn peer_close_is_an_error() {
    let (mut t, mut peer) = pair().await;
    peer.write_all(&CORE_CONN_CREDITS_NTF[..1]).await.unwrap();
    peer.shutdown().await.unwrap();
    drop(peer);
    match recv(&mut t).await {
        Err(TransportError::Closed { partial, context }) => {
            assert_eq!(partial, 1);
            assert!(context.ends_with("connection closed by peer"), "{context}");
        }
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[tokio::test]
async fn reset_drops_queued_input() {
    let (mut t, mut peer) = pair().await;
    peer.write_all(&CORE_RESET_RSP).await.unwrap();
    peer.write_all(&CORE_CONN_CREDITS_NTF[..3]).await.unwrap();
    // Give loopback a moment to deliver into the socket buffer.
    tokio::time::sleep(Duration::from_millis(20)).await;
    t.reset().await.unwrap();
    peer.write_all(&CORE_RESET_RSP).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn any_transport_opens_tcp_spec() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let spec: TransportSpec = format!("tcp:127.0.0.1:{port}").parse().unwrap();
    let (t, accepted) = tokio::join!(AnyTransport::open(&spec), listener.accept());
    let mut t = t.unwrap();
    let (mut peer, _) = accepted.unwrap();
    assert_eq!(t.describe(), format!("tcp:127.0.0.1:{port}"));
    peer.write_all(&CORE_RESET_RSP).await.unwrap();
    assert_eq!(recv(&mut t).await.unwrap(), CORE_RESET_RSP);
}

#[tokio::test]
async fn refused_connection_is_an_io_error() {
    // Bind, learn the port, close: nothing listens there any more.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = TcpTransport::connect(&TcpSpec {
        host: "127.0.0.1".into(),
        port,
    })
    .await
    .unwrap_err();
    assert!(matches!(err, TransportError::Io { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("tcp:127.0.0.1:{port}: connect: ")),
        "{err}"
    );
}

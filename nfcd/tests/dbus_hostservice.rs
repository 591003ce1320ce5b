//! Calling org.nfcd.HostService1 on a wallet exported by a second connection: ProcessApdu,
//! Deactivated without a reply, remote errors, a wallet that leaves, a bad reply, deadlines;
//! and the NameOwnerChanged watcher.

mod dbus_common;

mod dbus {
    use std::time::{Duration, Instant};

    use nfcd::dbus::names::name_has_owner;
    use nfcd::dbus::{
        check_served_interface, CallError, HostServiceClient, NameWatcher, HOSTSERVICE1_XML,
    };
    use tokio::sync::mpsc;
    use zbus::message::{Flags, Header};
    use zbus::{interface, Connection};

    use crate::dbus_common::{within, TestBus};

    const WALLET_PATH: &str = "/com/example/wallet/visa";
    /// SELECT A0000000031010.
    const SELECT_VISA: &[u8] = &[
        0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10, 0x00,
    ];

    /// What the test wallet saw.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Deactivated { reason: String, no_reply: bool },
        Stalling,
    }

    /// A wallet: answers SELECT with an FCI, INS CA (GET DATA) with a D-Bus error, INS DD by
    /// never answering (and telling the test), INS EE after 200 ms; anything else 6D00.
    struct Wallet {
        seen: mpsc::UnboundedSender<Seen>,
    }

    #[interface(name = "org.nfcd.HostService1")]
    impl Wallet {
        #[zbus(out_args("response"))]
        async fn process_apdu(&self, command: Vec<u8>) -> zbus::fdo::Result<Vec<u8>> {
            match command.get(1) {
                // FCI: 6F 07 84 05 A0 00 00 00 03 + 90 00 (abbreviated)
                Some(0xA4) => Ok(vec![
                    0x6F, 0x07, 0x84, 0x05, 0xA0, 0x00, 0x00, 0x00, 0x03, 0x90, 0x00,
                ]),
                Some(0xCA) => Err(zbus::fdo::Error::Failed("card locked".into())),
                Some(0xDD) => {
                    let _ = self.seen.send(Seen::Stalling);
                    std::future::pending::<()>().await;
                    Ok(vec![0x90, 0x00])
                }
                Some(0xEE) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok(vec![0x90, 0x00])
                }
                _ => Ok(vec![0x6D, 0x00]),
            }
        }

        async fn deactivated(&self, reason: String, #[zbus(header)] header: Header<'_>) {
            let no_reply = header.primary().flags().contains(Flags::NO_REPLY_EXPECTED);
            let _ = self.seen.send(Seen::Deactivated { reason, no_reply });
        }
    }

    /// A broken wallet: ProcessApdu returns a string.
    struct Broken;

    #[interface(name = "org.nfcd.HostService1")]
    impl Broken {
        fn process_apdu(&self, _command: Vec<u8>) -> String {
            "9000".into()
        }

        fn deactivated(&self, _reason: String) {}
    }

    async fn wallet(bus: &TestBus) -> (Connection, String, mpsc::UnboundedReceiver<Seen>) {
        let conn = bus.connect().await;
        let (tx, rx) = mpsc::unbounded_channel();
        conn.object_server()
            .at(WALLET_PATH, Wallet { seen: tx })
            .await
            .expect("export wallet");
        conn.object_server()
            .at("/com/example/broken", Broken)
            .await
            .expect("export broken");
        let name = conn.unique_name().expect("unique name").to_string();
        (conn, name, rx)
    }

    #[tokio::test]
    async fn process_apdu_round_trip() {
        let bus = TestBus::session();
        let (_w, name, _seen) = wallet(&bus).await;
        let nfcd = HostServiceClient::new(bus.connect().await);
        let r = within(5, nfcd.process_apdu(&name, WALLET_PATH, SELECT_VISA))
            .await
            .expect("ProcessApdu");
        assert_eq!(
            r,
            [0x6F, 0x07, 0x84, 0x05, 0xA0, 0x00, 0x00, 0x00, 0x03, 0x90, 0x00]
        );
        // INS not supported → 6D 00.
        let r = nfcd
            .process_apdu(&name, WALLET_PATH, &[0x80, 0x10, 0x00, 0x00])
            .await
            .expect("ProcessApdu");
        assert_eq!(r, [0x6D, 0x00]);
    }

    #[tokio::test]
    async fn deactivated_arrives_without_reply_expected() {
        let bus = TestBus::session();
        let (_w, name, mut seen) = wallet(&bus).await;
        let nfcd = HostServiceClient::new(bus.connect().await);
        nfcd.deactivated(&name, WALLET_PATH, "deselected")
            .await
            .expect("send");
        nfcd.deactivated(&name, WALLET_PATH, "link-loss")
            .await
            .expect("send");
        assert_eq!(
            within(5, seen.recv()).await,
            Some(Seen::Deactivated {
                reason: "deselected".into(),
                no_reply: true
            })
        );
        assert_eq!(
            within(5, seen.recv()).await,
            Some(Seen::Deactivated {
                reason: "link-loss".into(),
                no_reply: true
            })
        );
    }

    #[tokio::test]
    async fn remote_error() {
        let bus = TestBus::session();
        let (_w, name, _seen) = wallet(&bus).await;
        let nfcd = HostServiceClient::new(bus.connect().await);
        // GET DATA → the wallet fails the call.
        match nfcd
            .process_apdu(&name, WALLET_PATH, &[0x80, 0xCA, 0x9F, 0x17, 0x00])
            .await
        {
            Err(CallError::Remote { name, message }) => {
                assert_eq!(name, "org.freedesktop.DBus.Error.Failed");
                assert_eq!(message.as_deref(), Some("card locked"));
            }
            other => panic!("expected a remote error, got {other:?}"),
        }
        // No object there.
        match nfcd.process_apdu(&name, "/nowhere", SELECT_VISA).await {
            Err(CallError::Remote { name, .. }) => {
                assert!(
                    name.starts_with("org.freedesktop.DBus.Error.Unknown"),
                    "{name}"
                )
            }
            other => panic!("expected a remote error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn bad_reply() {
        let bus = TestBus::session();
        let (_w, name, _seen) = wallet(&bus).await;
        let nfcd = HostServiceClient::new(bus.connect().await);
        match nfcd
            .process_apdu(&name, "/com/example/broken", SELECT_VISA)
            .await
        {
            Err(CallError::BadReply(why)) => assert!(why.contains("\"s\""), "{why}"),
            other => panic!("expected a bad reply, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn name_gone_before_and_during_a_call() {
        let bus = TestBus::session();
        let nfcd = HostServiceClient::new(bus.connect().await);

        // Before: the wallet has already left.
        let (w, name, _seen) = wallet(&bus).await;
        drop(w);
        let watcher_conn = bus.connect().await;
        while within(5, name_has_owner(&watcher_conn, &name))
            .await
            .expect("NameHasOwner")
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match nfcd.process_apdu(&name, WALLET_PATH, SELECT_VISA).await {
            Err(CallError::NameGone(_)) => {}
            other => panic!("expected NameGone, got {other:?}"),
        }

        // During: the wallet takes the command, then its connection closes.
        let (w, name, mut seen) = wallet(&bus).await;
        let call = {
            let nfcd = nfcd.clone();
            let name = name.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let r = nfcd
                    .process_apdu(&name, WALLET_PATH, &[0x00, 0xDD, 0x00, 0x00])
                    .await;
                (r, started.elapsed())
            })
        };
        assert_eq!(within(5, seen.recv()).await, Some(Seen::Stalling));
        w.close().await.expect("close wallet connection");
        let (r, elapsed) = within(5, call).await.expect("call task");
        assert!(matches!(r, Err(CallError::NameGone(_))), "{r:?}");
        // At once, not at the bus's own 25 s reply timeout.
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }

    #[tokio::test]
    async fn deadline_then_the_connection_goes_on() {
        let bus = TestBus::session();
        let (_w, name, _seen) = wallet(&bus).await;
        let nfcd = HostServiceClient::new(bus.connect().await);
        // INS EE answers after 200 ms; the deadline is 50 ms.
        let late = tokio::time::timeout(
            Duration::from_millis(50),
            nfcd.process_apdu(&name, WALLET_PATH, &[0x00, 0xEE, 0x00, 0x00]),
        )
        .await;
        assert!(late.is_err(), "the deadline must fire");
        // The late reply is discarded; the next call gets its own answer.
        tokio::time::sleep(Duration::from_millis(250)).await;
        let r = nfcd
            .process_apdu(&name, WALLET_PATH, SELECT_VISA)
            .await
            .expect("ProcessApdu");
        assert_eq!(r.last(), Some(&0x00));
        assert_eq!(r.len(), 11);
    }

    #[tokio::test]
    async fn wallet_introspection_matches_the_shipped_xml() {
        let bus = TestBus::session();
        let (_w, name, _seen) = wallet(&bus).await;
        let client = bus.connect().await;
        within(
            5,
            check_served_interface(
                &client,
                &name,
                WALLET_PATH,
                "org.nfcd.HostService1",
                HOSTSERVICE1_XML,
            ),
        )
        .await
        .expect("the test wallet implements HostService1 as shipped");
        // The broken one does not.
        let r = check_served_interface(
            &client,
            &name,
            "/com/example/broken",
            "org.nfcd.HostService1",
            HOSTSERVICE1_XML,
        )
        .await;
        assert!(r.is_err());
    }

    #[tokio::test]
    async fn name_watcher_sees_a_connection_drop() {
        let bus = TestBus::session();
        let nfcd = bus.connect().await;
        let (_watcher, mut gone) = NameWatcher::start(&nfcd).await.expect("watch");

        let a = bus.connect().await;
        let b = bus.connect().await;
        let a_name = a.unique_name().expect("name").to_string();
        let b_name = b.unique_name().expect("name").to_string();
        // A well-known name released is not a connection leaving.
        b.request_name("com.example.Wallet").await.expect("own");
        b.release_name("com.example.Wallet").await.expect("release");

        drop(a);
        let first = within(5, gone.recv()).await.expect("event");
        assert_eq!(first.name, a_name);
        b.close().await.expect("close");
        let second = within(5, gone.recv()).await.expect("event");
        assert_eq!(second.name, b_name);
        assert!(!name_has_owner(&nfcd, &b_name).await.expect("NameHasOwner"));
    }
}

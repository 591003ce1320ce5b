//! org.nfcd.Manager1 on a private bus, against a stand-in core that answers its requests:
//! option errors, caller identity, core errors on the wire, properties, AidConflict, and the
//! APDU channel's fd crossing the bus.

mod dbus_common;

mod dbus {
    use std::collections::{BTreeMap, HashMap};
    use std::os::fd::{AsRawFd, OwnedFd};

    use futures_util::StreamExt;
    use nfcd::dbus::caller::sha256_file;
    use nfcd::dbus::{
        serve, AdapterState, Error, ManagerRequest, ManagerState, Served, ServiceInfo, BUS_NAME,
        MANAGER_PATH,
    };
    use nix::sys::socket::{recv, send, MsgFlags};
    use tokio::sync::mpsc;
    use zbus::message::Type as MessageType;
    use zbus::{
        Connection, MatchRule, MessageStream, ObjectPath, OwnedObjectPath, OwnedVariant, Variant,
    };

    use crate::dbus_common::{within, TestBus};

    const MANAGER1: &str = "org.nfcd.Manager1";
    /// Visa credit/debit AID.
    const VISA: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];
    const WALLET_PATH: &str = "/com/example/wallet/visa";

    fn v<'a>(x: impl Into<Variant<'a>>) -> OwnedVariant {
        x.into().try_into_owned().expect("owned")
    }

    fn visa_options() -> HashMap<&'static str, OwnedVariant> {
        let mut o = HashMap::new();
        o.insert("Id", v("com.example.wallet.visa"));
        o.insert("Category", v("payment"));
        o.insert("Aids", v(vec![VISA.to_vec()]));
        o.insert("Name", v("Visa ••1234"));
        o
    }

    async fn call(
        client: &Connection,
        method: &str,
        body: &(impl serde::Serialize + zbus::DynamicType),
    ) -> zbus::Result<zbus::Message> {
        client
            .call_method(Some(BUS_NAME), MANAGER_PATH, Some(MANAGER1), method, body)
            .await
    }

    fn error_name(r: zbus::Result<zbus::Message>) -> (String, String) {
        match r {
            Err(zbus::Error::MethodError(name, message, _)) => {
                (name.to_string(), message.unwrap_or_default())
            }
            other => panic!("expected an org.nfcd.Error, got {other:?}"),
        }
    }

    async fn start(bus: &TestBus) -> (Served, mpsc::Receiver<ManagerRequest>) {
        let (served, requests) =
            serve(&bus.bus(), ManagerState::default(), AdapterState::default())
                .await
                .expect("serve");
        (served, requests.manager)
    }

    #[tokio::test]
    async fn bad_options_are_refused_before_the_core_sees_them() {
        let bus = TestBus::session();
        let (_served, mut requests) = start(&bus).await;
        let client = bus.connect().await;
        let path = ObjectPath::try_from(WALLET_PATH).expect("path");

        let mut o = visa_options();
        o.insert("Aids", v(vec!["A0000000031010".to_owned()]));
        let (name, message) = error_name(call(&client, "RegisterService", &(&path, &o)).await);
        assert_eq!(name, "org.nfcd.Error.InvalidArguments");
        assert_eq!(message, "Aids must be aay, got as");

        let mut o = visa_options();
        o.insert("Aids", v(vec![vec![0xA0u8, 0x00, 0x00, 0x00]]));
        let (name, message) = error_name(call(&client, "RegisterService", &(&path, &o)).await);
        assert_eq!(name, "org.nfcd.Error.InvalidAid");
        assert_eq!(message, "Aids[0] is 4 bytes; an AID is 5 to 16 bytes");

        let (name, _) = error_name(call(&client, "SetDefaultService", &("other", "x.y")).await);
        assert_eq!(name, "org.nfcd.Error.InvalidArguments");

        assert!(requests.try_recv().is_err(), "the core was bothered");
    }

    #[tokio::test]
    async fn register_service_carries_the_caller_and_core_errors_reach_the_wire() {
        let bus = TestBus::session();
        let (_served, mut requests) = start(&bus).await;
        let client = bus.connect().await;
        let client_name = client.unique_name().expect("unique name").to_string();

        let core = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answer in [
                Ok(()),
                Err(Error::AlreadyExists(
                    "com.example.wallet.visa is registered".into(),
                )),
            ] {
                match requests.recv().await {
                    Some(ManagerRequest::RegisterService {
                        caller,
                        service,
                        request,
                        reply,
                    }) => {
                        seen.push((caller, service, request));
                        reply.send(answer).expect("reply");
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            seen
        });

        let path = ObjectPath::try_from(WALLET_PATH).expect("path");
        within(
            10,
            call(&client, "RegisterService", &(&path, &visa_options())),
        )
        .await
        .expect("first registration");
        let (name, message) = error_name(
            within(
                10,
                call(&client, "RegisterService", &(&path, &visa_options())),
            )
            .await,
        );
        assert_eq!(name, "org.nfcd.Error.AlreadyExists");
        assert_eq!(message, "com.example.wallet.visa is registered");

        let seen = within(5, core).await.expect("core");
        let (caller, service, request) = &seen[0];
        assert_eq!(caller.unique_name, client_name);
        assert_eq!(caller.uid, nix::unistd::geteuid().as_raw());
        assert_eq!(caller.pid, std::process::id());
        assert!(
            caller.in_group(nix::unistd::getegid().as_raw()),
            "{:?}",
            caller.gids
        );
        let own_exe =
            sha256_file(std::fs::File::open("/proc/self/exe").expect("exe")).expect("read");
        assert_eq!(caller.exe_sha256, Some(own_exe));
        assert_eq!(service.as_str(), WALLET_PATH);
        assert_eq!(request.id, "com.example.wallet.visa");
        assert_eq!(request.aids, vec![VISA.to_vec()]);
        assert_eq!(request.name, "Visa ••1234");
    }

    #[tokio::test]
    async fn every_method_becomes_a_request() {
        let bus = TestBus::session();
        let (_served, mut requests) = start(&bus).await;
        let client = bus.connect().await;
        let core = tokio::spawn(async move {
            let mut kinds = Vec::new();
            while let Some(req) = requests.recv().await {
                let (kind, reply) = match req {
                    ManagerRequest::UnregisterService { service, reply, .. } => {
                        (format!("unregister {}", service.as_str()), reply)
                    }
                    ManagerRequest::SetDefaultService {
                        category,
                        id,
                        reply,
                        ..
                    } => (format!("default {category} {id}"), reply),
                    ManagerRequest::SetPreferredService { service, reply, .. } => {
                        (format!("prefer {}", service.as_str()), reply)
                    }
                    ManagerRequest::ClearPreferredService { reply, .. } => {
                        ("clear".to_owned(), reply)
                    }
                    other => panic!("unexpected {other:?}"),
                };
                let answer = if kind.starts_with("unregister") {
                    Err(Error::DoesNotExist("no service at /nowhere".into()))
                } else {
                    Ok(())
                };
                reply.send(answer).expect("reply");
                kinds.push(kind);
                if kinds.len() == 4 {
                    break;
                }
            }
            kinds
        });

        let nowhere = ObjectPath::try_from("/nowhere").expect("path");
        let wallet = ObjectPath::try_from(WALLET_PATH).expect("path");
        let (name, _) = error_name(call(&client, "UnregisterService", &(&nowhere,)).await);
        assert_eq!(name, "org.nfcd.Error.DoesNotExist");
        call(
            &client,
            "SetDefaultService",
            &("payment", "com.example.wallet.visa"),
        )
        .await
        .expect("SetDefaultService");
        call(&client, "SetPreferredService", &(&wallet,))
            .await
            .expect("SetPreferredService");
        call(&client, "ClearPreferredService", &())
            .await
            .expect("ClearPreferredService");
        assert_eq!(
            within(5, core).await.expect("core"),
            [
                "unregister /nowhere",
                "default payment com.example.wallet.visa",
                "prefer /com/example/wallet/visa",
                "clear"
            ]
        );
    }

    #[tokio::test]
    async fn no_core_is_not_ready() {
        let bus = TestBus::session();
        let (_served, requests) = start(&bus).await;
        drop(requests);
        let client = bus.connect().await;
        let (name, _) = error_name(call(&client, "ClearPreferredService", &()).await);
        assert_eq!(name, "org.nfcd.Error.NotReady");
    }

    #[tokio::test]
    async fn services_and_defaults_properties() {
        let bus = TestBus::session();
        let (served, _requests) = start(&bus).await;
        let client = bus.connect().await;
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(BUS_NAME)
            .path(MANAGER_PATH)
            .build()
            .expect("rule");
        let mut signals = MessageStream::for_match_rule(rule, &client, None)
            .await
            .expect("subscribe");

        let info = ServiceInfo {
            path: OwnedObjectPath::try_from(WALLET_PATH).expect("path"),
            owner: ":1.42".into(),
            id: "com.example.wallet.visa".into(),
            category: "payment".into(),
            name: "Visa".into(),
            aids: vec![VISA.to_vec()],
            prefix_aids: vec![],
            subset_aids: vec![],
            requires_unlock: true,
            express: false,
            preferred: false,
            default: true,
            uid: 1000,
            exe_sha256: String::new(),
        };
        let expected = info.clone();
        served
            .manager
            .update(move |s| {
                s.services.push(info);
                s.default_services
                    .insert("payment".into(), "com.example.wallet.visa".into());
            })
            .await
            .expect("update");
        served
            .manager
            .aid_conflict(
                &[0xF0, 0x01, 0x02, 0x03, 0x04],
                &["a.b".into(), "c.d".into()],
            )
            .await
            .expect("AidConflict");

        let msg = within(5, signals.next())
            .await
            .expect("open")
            .expect("signal");
        assert_eq!(
            msg.header().member().map(|m| m.as_str()),
            Some("PropertiesChanged")
        );
        let (_, changed, _): (String, HashMap<String, OwnedVariant>, Vec<String>) =
            msg.body().deserialize().expect("body");
        assert_eq!(changed["Services"].value_signature().to_string(), "aa{sv}");
        assert!(changed.contains_key("DefaultServices"));

        let msg = within(5, signals.next())
            .await
            .expect("open")
            .expect("signal");
        assert_eq!(
            msg.header().member().map(|m| m.as_str()),
            Some("AidConflict")
        );
        let (aid, ids): (Vec<u8>, Vec<String>) = msg.body().deserialize().expect("(ayas)");
        assert_eq!(aid, [0xF0, 0x01, 0x02, 0x03, 0x04]);
        assert_eq!(ids, ["a.b", "c.d"]);

        let get = |name: &'static str| {
            let client = client.clone();
            async move {
                client
                    .call_method(
                        Some(BUS_NAME),
                        MANAGER_PATH,
                        Some("org.freedesktop.DBus.Properties"),
                        "Get",
                        &(MANAGER1, name),
                    )
                    .await
                    .expect("Get")
                    .body()
                    .deserialize::<OwnedVariant>()
                    .expect("v")
            }
        };
        let services: Vec<ServiceInfo> = get("Services").await.try_into().expect("aa{sv}");
        assert_eq!(services, vec![expected]);
        let defaults: BTreeMap<String, String> =
            get("DefaultServices").await.try_into().expect("a{ss}");
        assert_eq!(defaults["payment"], "com.example.wallet.visa");
        let version: String = get("Version").await.try_into().expect("s");
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
    }

    #[tokio::test]
    async fn open_apdu_channel_passes_a_working_socket() {
        let bus = TestBus::session();
        let (_served, mut requests) = start(&bus).await;
        let client = bus.connect().await;

        // The core accepts the channel, then sends SELECT PPSE over it once the wallet is ready.
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let core = tokio::spawn(async move {
            let Some(ManagerRequest::OpenApduChannel {
                service,
                channel,
                reply,
                ..
            }) = requests.recv().await
            else {
                panic!("no OpenApduChannel request");
            };
            assert_eq!(service.as_str(), WALLET_PATH);
            reply.send(Ok(())).expect("reply");
            go_rx.await.expect("go");
            channel
                .exchange(b"\x00\xA4\x04\x00\x0E2PAY.SYS.DDF01\x00")
                .await
                .expect("exchange")
        });

        let wallet = ObjectPath::try_from(WALLET_PATH).expect("path");
        let reply = within(5, call(&client, "OpenApduChannel", &(&wallet,)))
            .await
            .expect("OpenApduChannel");
        assert_eq!(reply.body().signature().to_string_no_parens(), "h");
        let fd: zbus::OwnedFd = reply.body().deserialize().expect("h");
        let fd = OwnedFd::from(fd);

        let wallet_side = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_544];
            let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).expect("recv");
            buf.truncate(n);
            // FCI of the PPSE, abbreviated, + 90 00.
            send(
                fd.as_raw_fd(),
                &[0x6F, 0x00, 0x90, 0x00],
                MsgFlags::MSG_NOSIGNAL,
            )
            .expect("send");
            buf
        });
        go_tx.send(()).expect("go");
        let response = within(5, core).await.expect("core");
        assert_eq!(response, [0x6F, 0x00, 0x90, 0x00]);
        assert_eq!(
            wallet_side.join().expect("wallet"),
            b"\x00\xA4\x04\x00\x0E2PAY.SYS.DDF01\x00"
        );
    }

    #[tokio::test]
    async fn refused_apdu_channel_returns_no_fd() {
        let bus = TestBus::session();
        let (_served, mut requests) = start(&bus).await;
        let client = bus.connect().await;
        tokio::spawn(async move {
            if let Some(ManagerRequest::OpenApduChannel { reply, .. }) = requests.recv().await {
                let _ = reply.send(Err(Error::NotAuthorized(
                    "/com/example/wallet/visa belongs to :1.9".into(),
                )));
            }
        });
        let wallet = ObjectPath::try_from(WALLET_PATH).expect("path");
        let (name, message) = error_name(call(&client, "OpenApduChannel", &(&wallet,)).await);
        assert_eq!(name, "org.nfcd.Error.NotAuthorized");
        assert_eq!(message, "/com/example/wallet/visa belongs to :1.9");
    }
}

//! org.nfcd.Adapter1 on a private bus: properties, PropertiesChanged, Powered writes, signals,
//! ObjectManager, name ownership, served introspection.

mod dbus_common;

mod dbus {
    use std::collections::HashMap;
    use std::time::Duration;

    use futures_util::StreamExt;
    use nfcd::dbus::{
        check_served, serve, AdapterRequest, AdapterState, Error, ManagerState, RoutingEntry,
        ServeError, Served, ADAPTER_PATH, BUS_NAME,
    };
    use tokio::sync::mpsc;
    use zbus::message::Type as MessageType;
    use zbus::{Connection, MatchRule, MessageStream, OwnedVariant, Variant};

    use crate::dbus_common::{within, TestBus};

    const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
    const ADAPTER1: &str = "org.nfcd.Adapter1";

    /// A PN7150 on I²C, NCI 1.0, after CORE_INIT_RSP and the routing table has been set.
    fn pn7150() -> AdapterState {
        AdapterState {
            powered: false,
            present: true,
            transport: "i2c:/dev/i2c-1@0x28".into(),
            controller: "NXP PN7150".into(),
            nci_version: "1.0".into(),
            listen_technologies: vec!["nfc-a".into(), "nfc-b".into()],
            routing_table: vec![
                // Protocol ISO-DEP → DH, switched on.
                RoutingEntry {
                    kind: "protocol".into(),
                    value: "iso-dep".into(),
                    route: 0x00,
                    power_state: 0x01,
                },
                // Technology NFC-A → DH.
                RoutingEntry {
                    kind: "technology".into(),
                    value: "nfc-a".into(),
                    route: 0x00,
                    power_state: 0x01,
                },
            ],
            routing_capacity: 720,
            field_present: false,
        }
    }

    async fn get(client: &Connection, name: &str) -> OwnedVariant {
        client
            .call_method(
                Some(BUS_NAME),
                ADAPTER_PATH,
                Some(PROPERTIES),
                "Get",
                &(ADAPTER1, name),
            )
            .await
            .expect("Get")
            .body()
            .deserialize()
            .expect("Get reply")
    }

    async fn set_powered(client: &Connection, value: bool) -> zbus::Result<zbus::Message> {
        client
            .call_method(
                Some(BUS_NAME),
                ADAPTER_PATH,
                Some(PROPERTIES),
                "Set",
                &(ADAPTER1, "Powered", Variant::from(value)),
            )
            .await
    }

    async fn properties_changed(client: &Connection) -> MessageStream {
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(BUS_NAME)
            .path(ADAPTER_PATH)
            .interface(PROPERTIES)
            .member("PropertiesChanged")
            .build()
            .expect("match rule");
        MessageStream::for_match_rule(rule, client, None)
            .await
            .expect("subscribe")
    }

    type Changed = (String, HashMap<String, OwnedVariant>, Vec<String>);

    async fn next_changed(stream: &mut MessageStream) -> Changed {
        let msg = within(5, stream.next())
            .await
            .expect("stream open")
            .expect("signal");
        msg.body()
            .deserialize::<Changed>()
            .expect("PropertiesChanged body")
    }

    async fn start(bus: &TestBus) -> (Served, mpsc::Receiver<AdapterRequest>) {
        let (served, requests) = serve(&bus.bus(), ManagerState::default(), pn7150())
            .await
            .expect("serve");
        (served, requests.adapter)
    }

    #[tokio::test]
    async fn adapter_properties_are_readable() {
        let bus = TestBus::session();
        let (_served, _requests) = start(&bus).await;
        let client = bus.connect().await;

        assert_eq!(*get(&client, "Present").await, Variant::Bool(true));
        assert_eq!(*get(&client, "Powered").await, Variant::Bool(false));
        assert_eq!(*get(&client, "RoutingCapacity").await, Variant::U32(720));
        let transport = get(&client, "Transport").await;
        assert_eq!(
            <&str>::try_from(&*transport).expect("s"),
            "i2c:/dev/i2c-1@0x28"
        );

        let all: HashMap<String, OwnedVariant> = client
            .call_method(
                Some(BUS_NAME),
                ADAPTER_PATH,
                Some(PROPERTIES),
                "GetAll",
                &(ADAPTER1,),
            )
            .await
            .expect("GetAll")
            .body()
            .deserialize()
            .expect("GetAll reply");
        let mut names: Vec<&str> = all.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "Controller",
                "FieldPresent",
                "ListenTechnologies",
                "NciVersion",
                "Powered",
                "Present",
                "RoutingCapacity",
                "RoutingTable",
                "Transport"
            ]
        );
        let table = &all["RoutingTable"];
        assert_eq!(table.value_signature().to_string(), "a(ssyy)");
        let entries: Vec<RoutingEntry> = table
            .try_clone()
            .expect("clone")
            .try_into()
            .expect("a(ssyy)");
        assert_eq!(entries, pn7150().routing_table);
        let techs: Vec<String> = all["ListenTechnologies"]
            .try_clone()
            .expect("clone")
            .try_into()
            .expect("as");
        assert_eq!(techs, ["nfc-a", "nfc-b"]);
    }

    #[tokio::test]
    async fn update_emits_one_properties_changed_with_the_changed_fields() {
        let bus = TestBus::session();
        let (served, _requests) = start(&bus).await;
        let client = bus.connect().await;
        let mut changes = properties_changed(&client).await;

        // RF_FIELD_INFO_NTF(field on) and a new CORE_INIT_RSP capacity in one update.
        served
            .adapter
            .update(|s| {
                s.field_present = true;
                s.routing_capacity = 1024;
            })
            .await
            .expect("update");
        // No change: no signal.
        served
            .adapter
            .update(|s| s.field_present = true)
            .await
            .expect("update");
        served
            .adapter
            .update(|s| s.nci_version = "2.0".into())
            .await
            .expect("update");

        let (iface, changed, invalidated) = next_changed(&mut changes).await;
        assert_eq!(iface, ADAPTER1);
        assert!(invalidated.is_empty());
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert_eq!(*changed["FieldPresent"], Variant::Bool(true));
        assert_eq!(*changed["RoutingCapacity"], Variant::U32(1024));

        let (_, changed, _) = next_changed(&mut changes).await;
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(<&str>::try_from(&*changed["NciVersion"]).expect("s"), "2.0");
        assert!(served.adapter.state().field_present);
        assert_eq!(*get(&client, "FieldPresent").await, Variant::Bool(true));
    }

    #[tokio::test]
    async fn powered_write_reaches_the_core_and_is_signalled_once() {
        let bus = TestBus::session();
        let (served, mut requests) = start(&bus).await;
        let client = bus.connect().await;
        let mut changes = properties_changed(&client).await;

        let handle = served.adapter.clone();
        let core = tokio::spawn(async move {
            let Some(AdapterRequest::SetPowered { powered, reply }) = requests.recv().await else {
                panic!("no request");
            };
            // The core powers the controller (CORE_RESET, CORE_INIT, discovery) and reflects it.
            handle
                .update(|s| s.powered = powered)
                .await
                .expect("update");
            reply.send(Ok(())).expect("reply");
            powered
        });

        within(5, set_powered(&client, true))
            .await
            .expect("Set Powered");
        assert!(within(5, core).await.expect("core task"));
        assert_eq!(*get(&client, "Powered").await, Variant::Bool(true));

        let (_, changed, _) = next_changed(&mut changes).await;
        assert_eq!(changed.len(), 1);
        assert_eq!(*changed["Powered"], Variant::Bool(true));
        // Exactly one signal for the write: nothing else follows.
        let more = tokio::time::timeout(Duration::from_millis(300), changes.next()).await;
        assert!(more.is_err(), "a second PropertiesChanged: {more:?}");
    }

    #[tokio::test]
    async fn powered_write_error_has_an_org_nfcd_error_name() {
        let bus = TestBus::session();
        let (served, mut requests) = start(&bus).await;
        let client = bus.connect().await;
        let mut changes = properties_changed(&client).await;

        let handle = served.adapter.clone();
        tokio::spawn(async move {
            while let Some(AdapterRequest::SetPowered { reply, .. }) = requests.recv().await {
                // The controller vanished while powering up.
                handle.update(|s| s.present = false).await.expect("update");
                let _ = reply.send(Err(Error::NotReady("no controller present".into())));
            }
        });

        match within(5, set_powered(&client, true)).await {
            Err(zbus::Error::MethodError(name, message, _)) => {
                assert_eq!(name.as_str(), "org.nfcd.Error.NotReady");
                assert_eq!(message.as_deref(), Some("no controller present"));
            }
            other => panic!("expected org.nfcd.Error.NotReady, got {other:?}"),
        }
        let (_, changed, _) = next_changed(&mut changes).await;
        assert_eq!(*changed["Present"], Variant::Bool(false));
        assert!(!changed.contains_key("Powered"));
    }

    #[tokio::test]
    async fn powered_write_of_the_wrong_type_is_invalid_args() {
        let bus = TestBus::session();
        let (_served, _requests) = start(&bus).await;
        let client = bus.connect().await;
        let r = client
            .call_method(
                Some(BUS_NAME),
                ADAPTER_PATH,
                Some(PROPERTIES),
                "Set",
                &(ADAPTER1, "Powered", Variant::from("yes")),
            )
            .await;
        match r {
            Err(zbus::Error::FDO(e)) => {
                assert!(matches!(*e, zbus::fdo::Error::InvalidArgs(_)), "{e:?}")
            }
            other => panic!("expected InvalidArgs, got {other:?}"),
        }
        let r = client
            .call_method(
                Some(BUS_NAME),
                ADAPTER_PATH,
                Some(PROPERTIES),
                "Set",
                &(ADAPTER1, "Present", Variant::from(true)),
            )
            .await;
        assert!(r.is_err(), "Present is read-only");
    }

    #[tokio::test]
    async fn transaction_signals() {
        let bus = TestBus::session();
        let (served, _requests) = start(&bus).await;
        let client = bus.connect().await;
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(BUS_NAME)
            .interface(ADAPTER1)
            .build()
            .expect("rule");
        let mut signals = MessageStream::for_match_rule(rule, &client, None)
            .await
            .expect("subscribe");

        // SELECT A0000000031010 routed to the Visa service, 7 APDUs, link lost after 212 ms.
        let visa = [0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];
        served
            .adapter
            .transaction_started("com.example.wallet.visa", &visa)
            .await
            .expect("emit");
        served
            .adapter
            .transaction_ended(
                "com.example.wallet.visa",
                "link-loss",
                7,
                Duration::from_micros(212_345),
            )
            .await
            .expect("emit");

        let started = within(5, signals.next()).await.expect("open").expect("msg");
        assert_eq!(
            started.header().member().map(|m| m.as_str()),
            Some("TransactionStarted")
        );
        let (id, aid): (String, Vec<u8>) = started.body().deserialize().expect("(say)");
        assert_eq!(
            (id.as_str(), aid.as_slice()),
            ("com.example.wallet.visa", &visa[..])
        );

        let ended = within(5, signals.next()).await.expect("open").expect("msg");
        assert_eq!(
            ended.header().member().map(|m| m.as_str()),
            Some("TransactionEnded")
        );
        assert_eq!(ended.body().signature().to_string_no_parens(), "ssut");
        let (id, reason, apdus, us): (String, String, u32, u64) =
            ended.body().deserialize().expect("(ssut)");
        assert_eq!(id, "com.example.wallet.visa");
        assert_eq!(reason, "link-loss");
        assert_eq!(apdus, 7);
        assert_eq!(us, 212_345);
    }

    #[tokio::test]
    async fn object_manager_lists_the_adapter() {
        let bus = TestBus::session();
        let (_served, _requests) = start(&bus).await;
        let client = bus.connect().await;
        let objects: zbus::fdo::ManagedObjects = client
            .call_method(
                Some(BUS_NAME),
                "/org/nfcd",
                Some("org.freedesktop.DBus.ObjectManager"),
                "GetManagedObjects",
                &(),
            )
            .await
            .expect("GetManagedObjects")
            .body()
            .deserialize()
            .expect("a{oa{sa{sv}}}");
        let adapter = objects
            .iter()
            .find(|(path, _)| path.as_str() == ADAPTER_PATH)
            .map(|(_, ifaces)| ifaces)
            .expect("adapter0 listed");
        let props = adapter
            .iter()
            .find(|(name, _)| name.as_str() == ADAPTER1)
            .map(|(_, props)| props)
            .expect("Adapter1 listed");
        assert_eq!(*props["RoutingCapacity"], Variant::U32(720));
    }

    #[tokio::test]
    async fn served_introspection_matches_the_shipped_xml() {
        let bus = TestBus::session();
        let (_served, _requests) = start(&bus).await;
        let client = bus.connect().await;
        within(5, check_served(&client, BUS_NAME))
            .await
            .expect("served interfaces match dbus/*.xml");
    }

    #[tokio::test]
    async fn a_second_nfcd_finds_the_name_taken() {
        let bus = TestBus::session();
        let (first, _requests) = start(&bus).await;
        let owner = first.conn.unique_name().map(|n| n.to_string());
        match serve(&bus.bus(), ManagerState::default(), pn7150()).await {
            Err(ServeError::NameTaken { owner: o }) => assert_eq!(o, owner),
            Err(e) => panic!("expected NameTaken, got {e}"),
            Ok(_) => panic!("two owners of {BUS_NAME}"),
        }
    }
}

//! `org.nfcd.Simulator1` on a private bus, exported for the `sim` transport's handle, with
//! libnci's controller state machine as the host on that transport.

mod dbus_common;
mod simhost_common;

/// Named `simhost::*` so that `cargo test -p nfcd simhost` selects these tests.
mod simhost {
    use std::collections::HashMap;

    use crate::simhost_common::{spawn_dh, within, DhEvent};
    use libnci::sim::cards::EmvCard;
    use nfcd::dbus::simulator::{export, SIMULATOR1_XML, SIMULATOR_INTERFACE};
    use nfcd::dbus::{check_served_interface, ADAPTER_PATH};
    use nfcd::transport::{AnyTransport, TransportSpec};
    use zbus::{Connection, OwnedVariant, Variant};

    type Record = HashMap<String, OwnedVariant>;

    async fn call(
        client: &Connection,
        dest: &str,
        method: &str,
        body: &(impl serde::Serialize + zbus::Type),
    ) -> zbus::Result<zbus::Message> {
        within(
            method,
            client.call_method(
                Some(dest),
                ADAPTER_PATH,
                Some(SIMULATOR_INTERFACE),
                method,
                body,
            ),
        )
        .await
    }

    async fn tap(
        client: &Connection,
        dest: &str,
        script: &str,
        options: Vec<(&str, Variant<'_>)>,
    ) -> zbus::Result<Vec<Record>> {
        let options: HashMap<&str, Variant<'_>> = options.into_iter().collect();
        let reply = call(client, dest, "Tap", &(script, options)).await?;
        reply.body().deserialize()
    }

    fn error_name<T: std::fmt::Debug>(r: zbus::Result<T>) -> String {
        match r {
            Err(zbus::Error::MethodError(name, _, _)) => name.to_string(),
            other => panic!("expected a D-Bus error, got {other:?}"),
        }
    }

    fn field<'a>(record: &'a Record, key: &str) -> &'a Variant<'static> {
        record
            .get(key)
            .map(|v| -> &Variant<'static> { v })
            .unwrap_or_else(|| panic!("no {key} in {record:?}"))
    }

    #[tokio::test]
    async fn taps_faults_and_field_over_d_bus() {
        let bus = crate::dbus_common::TestBus::session();
        let server = bus.connect().await;
        let spec: TransportSpec = "sim:pn7150".parse().expect("spec");
        let transport = AnyTransport::open(&spec).await.expect("open sim");
        let sim = transport.sim_handle().expect("sim handle");
        export(&server, sim.clone(), None)
            .await
            .expect("export Simulator1");
        let dest = server.unique_name().expect("unique name").to_string();
        let client = bus.connect().await;

        check_served_interface(
            &client,
            &dest,
            ADAPTER_PATH,
            SIMULATOR_INTERFACE,
            SIMULATOR1_XML,
        )
        .await
        .expect("served interface matches dbus/org.nfcd.Simulator1.xml");

        // Nobody initialised the controller yet: no discovery, no tap.
        assert_eq!(
            error_name(tap(&client, &dest, "emv", vec![]).await),
            "org.nfcd.Error.NotReady"
        );

        let mut dh = spawn_dh(transport, EmvCard::demo());
        dh.ready().await;
        within("RFST_DISCOVERY", sim.wait_ready()).await;

        let records = tap(
            &client,
            &dest,
            "emv",
            vec![("Technology", Variant::from("a"))],
        )
        .await
        .expect("Tap");
        assert_eq!(records.len(), 8, "seven APDUs and the summary: {records:?}");
        for apdu in &records[..7] {
            assert_eq!(field(apdu, "Kind"), &Variant::from("apdu"));
            assert_eq!(field(apdu, "Sw"), &Variant::U16(0x9000));
        }
        let summary = &records[7];
        assert_eq!(field(summary, "Kind"), &Variant::from("summary"));
        assert_eq!(
            field(summary, "Result"),
            &Variant::from("ok"),
            "{summary:?}"
        );
        assert_eq!(field(summary, "Outcome"), &Variant::from("completed"));
        assert_eq!(field(summary, "Apdus"), &Variant::U32(7));
        assert_eq!(field(summary, "Script"), &Variant::from("emv"));

        // The card leaves after one exchange.
        let records = tap(
            &client,
            &dest,
            "emv",
            vec![("LinkLossAfter", Variant::U32(1))],
        )
        .await
        .expect("Tap");
        let summary = records.last().expect("summary");
        assert_eq!(field(summary, "Result"), &Variant::from("link-loss"));
        assert_eq!(field(summary, "Apdus"), &Variant::U32(1));
        dh.wait_for("link loss", |e| *e == DhEvent::Deactivated("link-loss"))
            .await;

        assert_eq!(
            error_name(tap(&client, &dest, "ppse", vec![]).await),
            "org.nfcd.Error.InvalidArguments"
        );
        assert_eq!(
            error_name(tap(&client, &dest, "emv", vec![("Speed", Variant::U32(1))]).await),
            "org.nfcd.Error.InvalidArguments"
        );
        assert_eq!(
            error_name(call(&client, &dest, "InjectFault", &("melt",)).await),
            "org.nfcd.Error.InvalidArguments"
        );
        // Faults of the I²C bus need a controller behind one (sim:pn7150@i2c).
        assert_eq!(
            error_name(call(&client, &dest, "InjectFault", &("irq-stuck",)).await),
            "org.nfcd.Error.InvalidArguments"
        );

        // A spurious CORE_RESET_NTF rides in front of the next packet, RF_FIELD_INFO_NTF: the
        // host re-initialises the controller and comes back.
        call(&client, &dest, "InjectFault", &("spurious-reset",))
            .await
            .expect("InjectFault");
        call(&client, &dest, "Field", &(true,))
            .await
            .expect("Field");
        dh.wait_for("re-initialisation", |e| {
            *e == DhEvent::Reinitializing("controller reset itself".to_owned())
        })
        .await;
        dh.ready().await;
        call(&client, &dest, "Field", &(false,))
            .await
            .expect("Field");
    }

    /// The I²C faults by name on a controller behind the simulated I²C bus: armed on its
    /// slave, whatever the trigger syntax; a count of 0 or a stray name is refused.
    #[tokio::test]
    async fn i2c_faults_over_d_bus() {
        let bus = crate::dbus_common::TestBus::session();
        let server = bus.connect().await;
        // A spec no other test in this binary opens: the board is this process's.
        let spec: TransportSpec = "sim:nci2@i2c:100k".parse().expect("spec");
        let transport = AnyTransport::open(&spec).await.expect("open sim:nci2@i2c");
        let sim = transport.sim_handle().expect("sim handle");
        let i2c = transport.i2c_sim().expect("an I²C slave");
        export(&server, sim, Some(i2c.clone()))
            .await
            .expect("export Simulator1");
        let dest = server.unique_name().expect("unique name").to_string();
        let client = bus.connect().await;

        for bad in ["irq-stuck@0", "i2c-read-error@x", "i2c-nack-storm@"] {
            assert_eq!(
                error_name(call(&client, &dest, "InjectFault", &(bad,)).await),
                "org.nfcd.Error.InvalidArguments",
                "{bad}"
            );
        }
        // irq-stuck: IRQ high at once, with nothing queued.
        let edges = i2c.irq_rising_edges();
        call(&client, &dest, "InjectFault", &("irq-stuck",))
            .await
            .expect("InjectFault(irq-stuck)");
        assert_eq!(i2c.irq_rising_edges(), edges + 1);
        assert_eq!(i2c.pending(), 0);
        drop(transport);
    }
}

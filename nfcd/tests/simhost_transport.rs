//! The in-process virtual controller as the daemon opens it: `AnyTransport::open` of a `sim`
//! spec, its framing, and `reset` as a power cycle.

mod simhost_common;

/// Named `simhost::*` so that `cargo test -p nfcd simhost` selects these tests.
mod simhost {
    use std::time::Duration;

    use crate::simhost_common::{spawn_dh, spawn_dh_with, within};
    use libnci::controller::{Config, Param};
    use libnci::sim::cards::EmvCard;
    use nfcd::simhost::{Profile, SimHost, SimOptions};
    use nfcd::simhost::{TapOptions, TapOutcome, TapScript};
    use nfcd::transport::SimTransport;
    use nfcd::transport::{AnyTransport, Transport, TransportSpec};

    /// CORE_RESET_CMD, reset configuration (NCI 1.0 §4.1).
    const CORE_RESET_CMD: [u8; 4] = [0x20, 0x00, 0x01, 0x01];
    /// PN7150 CORE_RESET_RSP: OK, NCI 1.0, configuration reset.
    const CORE_RESET_RSP: [u8; 6] = [0x40, 0x00, 0x03, 0x00, 0x10, 0x01];
    /// CORE_INIT_CMD (NCI 1.0: empty).
    const CORE_INIT_CMD: [u8; 3] = [0x20, 0x01, 0x00];
    /// CORE_INIT_RSP header with STATUS_SEMANTIC_ERROR: a second CORE_INIT without a reset.
    const CORE_INIT_RSP_SEMANTIC_ERROR: [u8; 4] = [0x40, 0x01, 0x01, 0x06];

    async fn open(spec: &str) -> AnyTransport {
        let spec: TransportSpec = spec.parse().expect("sim spec parses");
        AnyTransport::open(&spec)
            .await
            .expect("open the sim transport")
    }

    async fn recv(t: &mut AnyTransport) -> Vec<u8> {
        within("recv", t.recv())
            .await
            .expect("a packet from the virtual controller")
            .to_vec()
    }

    #[tokio::test]
    async fn sim_nci2_opens_and_taps() {
        let transport = open("sim:nci2").await;
        assert_eq!(transport.describe(), "sim:nci2");
        let sim = transport
            .sim_handle()
            .expect("the sim transport has a handle");
        let mut dh = spawn_dh(transport, EmvCard::demo());
        dh.ready().await;
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        let report = within("emv tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
        assert_eq!(report.apdus.len(), 7);
    }

    #[tokio::test]
    async fn other_transports_have_no_sim_handle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let addr = listener.local_addr().expect("address");
        let t = open(&format!("tcp:127.0.0.1:{}", addr.port())).await;
        assert!(t.sim_handle().is_none());
    }

    #[tokio::test]
    async fn reset_power_cycles_and_drops_what_the_old_controller_sent() {
        let mut t = open("sim:pn7150").await;
        let sim = t.sim_handle().expect("handle");

        // CORE_INIT_CMD twice: the second is refused, the controller is initialised.
        t.send(&CORE_INIT_CMD).await.expect("send");
        assert_eq!(
            recv(&mut t).await.get(..4),
            Some(&[0x40, 0x01, 0x19, 0x00][..])
        );
        t.send(&CORE_INIT_CMD).await.expect("send");
        assert_eq!(recv(&mut t).await, CORE_INIT_RSP_SEMANTIC_ERROR);

        // A third CORE_INIT_CMD whose response is never read, then VEN: its response must not
        // come out after the reset, whether it was already in the pipe or not.
        t.send(&CORE_INIT_CMD).await.expect("send");
        within("reset", t.reset()).await.expect("reset");
        assert_eq!(sim.stats().power_cycles, 1);

        t.send(&CORE_RESET_CMD).await.expect("send");
        assert_eq!(recv(&mut t).await, CORE_RESET_RSP);
        // A fresh controller: CORE_INIT_CMD is accepted again.
        t.send(&CORE_INIT_CMD).await.expect("send");
        assert_eq!(
            recv(&mut t).await.get(..4),
            Some(&[0x40, 0x01, 0x19, 0x00][..])
        );
    }

    #[tokio::test]
    async fn nci2_announces_itself_after_reset() {
        let mut t = open("sim:nci2").await;
        within("reset", t.reset()).await.expect("reset");
        // CORE_RESET_NTF, trigger POWERED_ON, configuration reset, NCI 2.0 (NCI 2.0 §4.1 Table 9).
        let ntf = recv(&mut t).await;
        assert_eq!(
            ntf.get(..7),
            Some(&[0x60, 0x00, 0x09, 0x01, 0x01, 0x20, 0x00][..])
        );
        // Nothing else is waiting.
        assert!(tokio::time::timeout(Duration::from_millis(50), t.recv())
            .await
            .is_err());
    }

    #[tokio::test]
    async fn eeprom_survives_a_power_cycle_and_is_written_only_once() {
        // An NXP parameter the host wants (UM10936 §10): written on the first start only.
        let mut config = Config::default();
        config
            .nxp_params
            .push(Param::nxp(0xA05E, &[0x01]).expect("NXP parameter"))
            .expect("room for one parameter");
        let host = SimHost::new(Profile::Pn7150, SimOptions::default());
        let sim = host.handle();

        let first = SimTransport::with_host(&host, "sim:pn7150".to_owned()).expect("connect");
        let mut dh = spawn_dh_with(first, config.clone(), EmvCard::demo());
        dh.ready().await;
        assert_eq!(sim.eeprom_writes(), 1);
        drop(dh);

        within("power cycle", sim.power_cycle()).await;
        let second = SimTransport::with_host(&host, "sim:pn7150".to_owned()).expect("connect");
        let mut dh = spawn_dh_with(second, config, EmvCard::demo());
        dh.ready().await;
        // CORE_GET_CONFIG found A0 5E in place after the power cycle: no second write.
        assert_eq!(sim.eeprom_writes(), 1);
        assert_eq!(sim.stats().power_cycles, 1);
    }
}

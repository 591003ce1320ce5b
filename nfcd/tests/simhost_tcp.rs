//! The virtual controller served on TCP, with the real TCP transport and libnci's controller
//! state machine as the device host.

mod simhost_common;

/// Named `simhost::*` so that `cargo test -p nfcd simhost` selects these tests.
mod simhost {
    use std::net::SocketAddr;

    use crate::simhost_common::{spawn_dh, within};
    use libnci::apdu::StatusWord;
    use libnci::sim::cards::EmvCard;
    use nfcd::simhost::{Profile, SimHost, SimOptions, TapOptions, TapOutcome, TapScript};
    use nfcd::transport::{TcpSpec, TcpTransport};

    async fn connect(addr: SocketAddr) -> TcpTransport {
        TcpTransport::connect(&TcpSpec {
            host: addr.ip().to_string(),
            port: addr.port(),
        })
        .await
        .expect("connect to the virtual controller")
    }

    #[tokio::test]
    async fn emv_tap_over_tcp() {
        let host = SimHost::new(Profile::Nci2, SimOptions::default());
        let (addr, serving) = host
            .serve_tcp(([127, 0, 0, 1], 0).into())
            .await
            .expect("listen");
        let mut dh = spawn_dh(connect(addr).await, EmvCard::demo());
        dh.ready().await;
        let sim = host.handle();
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        let report = within("emv tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
        assert_eq!(report.apdus.len(), 7);
        assert!(report
            .apdus
            .iter()
            .all(|r| r.sw == Some(StatusWord::NO_ERROR)));
        serving.abort();
    }

    #[tokio::test]
    async fn a_new_connection_replaces_the_old_one_like_a_power_cycle() {
        let host = SimHost::new(Profile::Pn7150, SimOptions::default());
        let (addr, serving) = host
            .serve_tcp(([127, 0, 0, 1], 0).into())
            .await
            .expect("listen");
        let sim = host.handle();

        let mut first = spawn_dh(connect(addr).await, EmvCard::demo());
        first.ready().await;
        assert_eq!(sim.stats().power_cycles, 1);

        // A second host plugs in while the first is still connected: the controller starts over
        // for it, and it reaches discovery on its own.
        let mut second = spawn_dh(connect(addr).await, EmvCard::demo());
        second.ready().await;
        assert_eq!(sim.stats().power_cycles, 2);
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        let report = within("emv tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
        drop(first);
        serving.abort();
    }
}

//! The virtual controller behind a simulated PN7150 I²C slave, driven by the real I²C
//! transport (`sim:pn7150@i2c`): a device host initialises it and a reader taps through IRQ,
//! header-then-payload reads and VEN; bus faults mid-tap; and reopening the transport, which
//! resets the controller through VEN, clears what an earlier life left on the bus.

mod simhost_common;

/// Named `simhost::*` so that `cargo test -p nfcd simhost` selects these tests.
mod simhost {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::simhost_common::{spawn_dh, within, DhEvent};
    use libnci::sim::cards::EmvCard;
    use nfcd::simhost::{TapOptions, TapOutcome, TapScript};
    use nfcd::transport::i2c::I2cTiming;
    use nfcd::transport::sim_i2c::{I2cFault, SimI2cBoard, SimI2cTransport};
    use nfcd::transport::spec::BusSpeed;
    use nfcd::transport::{AnyTransport, SimI2cSpec, SimProfile, Transport};

    /// The I²C transport's timing with short pauses, so the faults resolve quickly.
    fn timing() -> I2cTiming {
        I2cTiming {
            nack_pause: Duration::from_millis(2),
            read_retry_pause: Duration::from_millis(1),
            idle_wait: Duration::from_millis(50),
            ..I2cTiming::default()
        }
    }

    fn board(profile: SimProfile) -> Arc<SimI2cBoard> {
        let spec = SimI2cSpec {
            profile,
            speed: BusSpeed::Fast,
        };
        Arc::new(SimI2cBoard::new(spec).expect("a virtual board"))
    }

    #[tokio::test]
    async fn a_tap_through_the_i2c_transport() {
        let board = board(SimProfile::Pn7150);
        let mut transport = SimI2cTransport::on(Arc::clone(&board), timing()).expect("transport");
        assert_eq!(transport.describe(), "sim:pn7150@i2c:400k");
        // The controller answers nothing before it is powered up through VEN.
        transport.reset().await.expect("VEN reset");
        let i2c = board.i2c();
        let levels: Vec<bool> = i2c.ven_log().iter().map(|&(_, high)| high).collect();
        assert_eq!(levels, [false, true]);

        let mut dh = spawn_dh(transport, EmvCard::demo());
        dh.ready().await;
        let sim = board.handle();
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        let report = within("emv tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
        // Every packet was read as its 3-octet header, then exactly its payload (UM10936 §3).
        let sizes = i2c.read_sizes();
        assert!(sizes.len() >= 2, "{sizes:?}");
        for pair in sizes.chunks(2) {
            assert_eq!(pair[0], 3, "{sizes:?}");
        }
        // CORE_RESET_CMD was the first packet the slave took from the host.
        assert_eq!(
            i2c.host_packets().first().map(Vec::as_slice),
            Some(&[0x20, 0x00, 0x01, 0x01][..])
        );
    }

    #[tokio::test]
    async fn a_short_nack_storm_is_absorbed_by_the_write_retries() {
        let board = board(SimProfile::Nci2);
        let mut transport = SimI2cTransport::on(Arc::clone(&board), timing()).expect("transport");
        transport.reset().await.expect("VEN reset");
        let mut dh = spawn_dh(transport, EmvCard::demo());
        dh.ready().await;
        let sim = board.handle();
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        // Shorter than the transport's retries: 5 tries, 2 ms apart.
        I2cFault::NackStorm(Some(Duration::from_millis(3))).apply(&board.i2c());
        let report = within("emv tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
        assert!(board.i2c().write_nacks() >= 1);
        assert!(
            !dh.seen()
                .iter()
                .any(|e| matches!(e, DhEvent::Reinitializing(_))),
            "{:?}",
            dh.seen()
        );
    }

    /// IRQ stuck high: the transport reports it; the daemon drops the transport and opens it
    /// again, and opening resets the controller through VEN, which is what clears the line —
    /// the board is the same one, the fault was still on.
    #[tokio::test]
    async fn reopening_after_irq_stuck_resets_the_controller() {
        // A spec no other test in this binary opens: the board is this process's.
        let spec = "sim:pn7150@i2c:3.4m".parse().expect("spec");
        let transport = AnyTransport::open(&spec).await.expect("open");
        let sim = transport.sim_handle().expect("a virtual controller");
        let i2c = transport.i2c_sim().expect("an I²C slave");
        let mut dh = spawn_dh(transport, EmvCard::demo());
        dh.ready().await;
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        drop(dh);

        i2c.set_irq_stuck(true);
        let edges = i2c.irq_rising_edges();
        let reopened = AnyTransport::open(&spec).await.expect("reopen");
        let mut dh = spawn_dh(reopened, EmvCard::demo());
        dh.ready().await;
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        assert!(i2c.irq_rising_edges() > edges);
        let report = within("emv tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
        let levels: Vec<bool> = i2c.ven_log().iter().map(|&(_, high)| high).collect();
        assert_eq!(
            levels,
            [false, true, false, true],
            "VEN cycled at each open"
        );
    }
}

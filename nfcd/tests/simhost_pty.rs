//! The virtual controller served on a real pseudo-terminal, with the real UART transport on
//! the slave side and libnci's controller state machine as the device host: start-up, taps,
//! link loss and a controller that resets itself in the middle of a tap.

mod simhost_common;

/// Named `simhost::*` so that `cargo test -p nfcd simhost` selects these tests.
mod simhost {
    use crate::simhost_common::{spawn_dh, within, Dh, DhEvent};
    use libnci::apdu::StatusWord;
    use libnci::sim::cards::EmvCard;
    use libnci::sim::scripts::SELECT_PPSE;
    use libnci::wire::routing::{RoutingEntries, RoutingEntryRepr};
    use libnci::wire::{DeactivationReason, RfProtocol, RfTechMode};
    use nfcd::simhost::{
        BusSpeed, Fault, Profile, RfState, SimHost, SimOptions, TapOptions, TapOutcome, TapReport,
        TapScript, Tech, Trigger,
    };
    use nfcd::transport::{UartSpec, UartTransport};
    use tokio::task::JoinHandle;

    struct Setup {
        host: SimHost,
        serving: JoinHandle<Result<(), nfcd::simhost::SimError>>,
        dh: Dh,
    }

    impl Drop for Setup {
        fn drop(&mut self) {
            self.serving.abort();
        }
    }

    /// A virtual controller on a pty and a device host on its slave side, answering with the
    /// demo EMV card.
    fn on_a_pty(profile: Profile) -> Setup {
        let host = SimHost::new(profile, SimOptions::default());
        let (slave, serving) = host.serve_pty().expect("serve on a pty");
        let transport = UartTransport::open(&UartSpec {
            device: slave,
            baud: 115_200,
        })
        .expect("open the pty slave as a UART");
        let dh = spawn_dh(transport, EmvCard::demo());
        Setup { host, serving, dh }
    }

    fn sws(report: &TapReport) -> Vec<Option<StatusWord>> {
        report.apdus.iter().map(|r| r.sw).collect()
    }

    async fn start_up_reaches_ready(profile: Profile) {
        let mut s = on_a_pty(profile);
        s.dh.ready().await;
        let sim = s.host.handle();
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        assert_eq!(sim.rf_state(), RfState::Discovery);
        // RF_SET_LISTEN_MODE_ROUTING_CMD put ISO-DEP → DH in the table (NCI 1.0 §6.3.2).
        let table = sim.routing_table();
        let iso_dep_to_host = RoutingEntries::new(&table).any(|entry| {
            matches!(
                entry,
                Ok(RoutingEntryRepr::Protocol {
                    route: 0x00,
                    protocol: RfProtocol::IsoDep,
                    ..
                })
            )
        });
        assert!(iso_dep_to_host, "routing table {table:02X?}");
        // Nothing asked for NXP parameters: the host must not have written EEPROM.
        assert_eq!(sim.eeprom_writes(), 0);
        let stats = sim.stats();
        assert!(stats.packets_from_host >= 7, "{stats:?}");
        assert_eq!(stats.nfcc.malformed_packets, 0, "{stats:?}");
        assert_eq!(stats.nfcc.commands_ignored, 0, "{stats:?}");
    }

    #[tokio::test]
    async fn pn7150_start_up_reaches_ready() {
        start_up_reaches_ready(Profile::Pn7150).await;
    }

    #[tokio::test]
    async fn nci2_start_up_reaches_ready() {
        start_up_reaches_ready(Profile::Nci2).await;
    }

    #[tokio::test]
    async fn emv_tap_completes_with_9000_to_every_command() {
        let mut s = on_a_pty(Profile::Pn7150);
        s.dh.ready().await;
        let sim = s.host.handle();
        within("RFST_DISCOVERY", sim.wait_ready()).await;

        let report = within("emv tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
        // SELECT PPSE, SELECT AID, GET PROCESSING OPTIONS, READ RECORD ×3 (AFL), GENERATE AC.
        assert_eq!(report.apdus.len(), 7, "{report:#?}");
        assert_eq!(report.apdus[0].cmd, SELECT_PPSE);
        assert_eq!(sws(&report), vec![Some(StatusWord::NO_ERROR); 7]);
        assert_eq!(report.value("cryptogram").map(<[u8]>::len), Some(8));
        assert!(report.apdus.iter().all(|r| r.answered_at > r.sent_at));

        // The host saw the same tap: activation in NFC-A, seven APDUs, the reader's DESELECT.
        s.dh.wait_for("activation", |e| {
            *e == DhEvent::Activated(RfTechMode::NfcAPassiveListen)
        })
        .await;
        for record in &report.apdus {
            let got =
                s.dh.wait_for("APDU", |e| matches!(e, DhEvent::Apdu { .. }))
                    .await;
            assert_eq!(
                got,
                DhEvent::Apdu {
                    command: record.cmd.clone(),
                    response: record.rsp.clone()
                }
            );
        }
        s.dh.wait_for("deactivation", |e| matches!(e, DhEvent::Deactivated(_)))
            .await;
        assert_eq!(
            s.dh.seen().last(),
            Some(&DhEvent::Deactivated("deselected"))
        );
        assert_eq!(sim.stats().taps, 1);
    }

    #[tokio::test]
    async fn tap_in_nfc_b() {
        let mut s = on_a_pty(Profile::Nci2);
        s.dh.ready().await;
        let sim = s.host.handle();
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        let options = TapOptions {
            tech: Tech::B,
            ..TapOptions::default()
        };
        let report = within("emv tap", sim.tap(TapScript::Emv, options))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
        s.dh.wait_for("NFC-B activation", |e| {
            *e == DhEvent::Activated(RfTechMode::NfcBPassiveListen)
        })
        .await;
    }

    #[tokio::test]
    async fn card_leaving_the_field_is_link_loss_and_the_next_tap_works() {
        let mut s = on_a_pty(Profile::Pn7150);
        s.dh.ready().await;
        let sim = s.host.handle();
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        let options = TapOptions {
            link_loss_after: Some(2),
            ..TapOptions::default()
        };
        let report = within("emv tap", sim.tap(TapScript::Emv, options))
            .await
            .expect("tap runs");
        assert_eq!(
            report.outcome,
            TapOutcome::LinkLoss {
                step: 2,
                reason: DeactivationReason::RfLinkLoss
            }
        );
        assert_eq!(report.apdus.len(), 2);
        s.dh.wait_for("link loss", |e| *e == DhEvent::Deactivated("link-loss"))
            .await;

        // RF_DEACTIVATE_NTF(Discovery): the controller listens again at once.
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        let report = within("second tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    }

    #[tokio::test]
    async fn spurious_reset_mid_tap_reinitialises_the_controller() {
        let mut s = on_a_pty(Profile::Pn7150);
        s.dh.ready().await;
        let sim = s.host.handle();
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        // Packets to the host in a tap: RF_FIELD_INFO_NTF, RF_INTF_ACTIVATED_NTF, the first
        // C-APDU, then CORE_CONN_CREDITS_NTF once the first R-APDU went out: the CORE_RESET_NTF
        // arrives in the middle of the session.
        let fault = sim.arm_fault(Fault::SpuriousCoreResetNtf, Trigger::Nth(4));
        let report = within("emv tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(sim.fault_fired(fault), 1);
        assert_ne!(report.outcome, TapOutcome::Completed, "{report:#?}");
        assert!(
            !report.apdus.is_empty(),
            "the reset came after the first APDU"
        );

        s.dh.wait_for("re-initialisation", |e| {
            *e == DhEvent::Reinitializing("controller reset itself".to_owned())
        })
        .await;
        assert!(s.dh.seen().contains(&DhEvent::Deactivated("reset")));
        s.dh.ready().await;
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        let report = within(
            "tap after recovery",
            sim.tap(TapScript::Emv, TapOptions::default()),
        )
        .await
        .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    }

    #[tokio::test]
    async fn tap_before_discovery_is_refused() {
        let host = SimHost::new(Profile::Pn7150, SimOptions::default());
        let err = host
            .handle()
            .tap(TapScript::Emv, TapOptions::default())
            .await
            .expect_err("nobody initialised the controller");
        assert!(
            matches!(err, nfcd::simhost::SimError::NotDiscovering(RfState::Idle)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn taps_through_the_i2c_bus_model() {
        let host = SimHost::new(
            Profile::Pn7150,
            SimOptions {
                bus: Some(BusSpeed::Fast),
                ..SimOptions::default()
            },
        );
        let (slave, serving) = host.serve_pty().expect("serve on a pty");
        let transport = UartTransport::open(&UartSpec {
            device: slave,
            baud: 115_200,
        })
        .expect("open the pty slave as a UART");
        let mut s = Setup {
            dh: spawn_dh(transport, EmvCard::demo()),
            host,
            serving,
        };
        s.dh.ready().await;
        let sim = s.host.handle();
        within("RFST_DISCOVERY", sim.wait_ready()).await;
        let report = within("emv tap", sim.tap(TapScript::Emv, TapOptions::default()))
            .await
            .expect("tap runs");
        assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
        // Every packet, both ways, went over the modelled bus (header and payload reads to
        // the host, one write to the controller; UM10936 §3).
        let stats = sim.stats();
        let bus = stats.bus.expect("bus statistics");
        assert_eq!(bus.to_nfcc.packets, stats.packets_from_host, "{stats:?}");
        assert_eq!(bus.to_dh.packets, stats.packets_to_host, "{stats:?}");
        assert!(
            bus.to_dh.packets >= 7,
            "at least the seven C-APDUs: {stats:?}"
        );
    }

    /// A process started while a pty is served does not inherit its ends: its descriptor
    /// table holds neither the master (`/dev/ptmx`) nor the slave (`/dev/pts/N`), so once the
    /// server closes them the line is gone, as when an adapter is pulled. (Whether
    /// `/dev/pts/N` disappears is no evidence here: a test running beside this one may take
    /// the number at once.)
    #[tokio::test]
    async fn pty_ends_are_not_inherited_by_child_processes() {
        let pty = nfcd::simhost::open_pty().expect("open a pty");
        let path = pty.slave_path.clone();
        assert!(path.exists());
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("start sleep");
        // `spawn` returns after the child's exec, so its descriptor table is final.
        let fds = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
            .expect("the child's descriptors")
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .collect::<Vec<_>>();
        let _ = child.kill();
        let _ = child.wait();
        drop(pty);
        assert!(
            !fds.is_empty(),
            "the child has at least its standard streams"
        );
        let inherited: Vec<_> = fds
            .iter()
            .filter(|t| **t == path || t.to_string_lossy().contains("ptmx"))
            .collect();
        assert!(
            inherited.is_empty(),
            "the child inherited {inherited:?} of {}",
            path.display()
        );
    }
}

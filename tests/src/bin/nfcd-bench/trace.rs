//! Timestamps taken inside nfcd at its transport boundary, from `org.nfcd.Monitor1`
//! (doc/monitor-api.md), and what they say about each tap.
//!
//! Contract: [`Trace::start`] listens for nfcd's monitor signals on the bench's connection and
//! keeps every event; [`Trace::subscribe`] / [`Trace::unsubscribe`] switch nfcd's tracing on
//! and off (uid 0 only). After a tap, [`Trace::take_tap`] waits until nfcd's trace holds the
//! end of the tap (RF_DEACTIVATE_NTF) and hands over everything so far; [`TapTrace::parse`]
//! turns that into per-APDU instants:
//!
//! - `rx_last`: the read of the last data packet of the C-APDU returned (NCI 1.0 §3.5: PBF 0);
//! - `command`: nfcd resolved the APDU and hands it to the service (`Apdu` `command`);
//! - `response`: the service's answer is back in nfcd (`Apdu` `response`);
//! - `tx_first`: the first data packet of the R-APDU handed to the transport's write.
//!
//! All four are nfcd's `CLOCK_MONOTONIC` in µs, taken on nfcd's thread where the event
//! happened. What this module does not do: decode more of NCI than the header octets that tell
//! data packets, segments, credits and the RF interface notifications apart (NCI 1.0 §3.4,
//! Table 3; §4.4 CORE_CONN_CREDITS_NTF; §7.3 RF_INTF_ACTIVATED_NTF; §7.8 RF_DEACTIVATE_NTF).

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use libnci::sim::{BusSpeed, Direction};
use nfcd::ctl::monitor::{ApduDirection, Event, NciDirection};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zbus::message::Type as MessageType;
use zbus::{Connection, MatchRule, MessageStream};

use nfcd_e2e::WAIT;

const MONITOR_INTERFACE: &str = "org.nfcd.Monitor1";
const ADAPTER_PATH: &str = "/org/nfcd/adapter0";
/// Signals the bench's connection may hold before zbus drops the oldest; far above one tap.
const SIGNAL_QUEUE: usize = 1 << 16;

/// Message type of NCI packets (NCI 1.0 §3.4, Table 3): bits 7–5 of the first octet.
const MT_MASK: u8 = 0xE0;
/// Data packet.
const MT_DATA: u8 = 0x00;
/// Packet boundary flag: 1 = more segments follow (NCI 1.0 §3.5).
const PBF: u8 = 0x10;
/// RF_INTF_ACTIVATED_NTF: MT notification, GID RF (1), OID 5.
const RF_INTF_ACTIVATED_NTF: [u8; 2] = [0x61, 0x05];
/// RF_DEACTIVATE_NTF: MT notification, GID RF, OID 6.
const RF_DEACTIVATE_NTF: [u8; 2] = [0x61, 0x06];
/// CORE_CONN_CREDITS_NTF: MT notification, GID core (0), OID 6.
const CORE_CONN_CREDITS_NTF: [u8; 2] = [0x60, 0x06];

fn is_data(packet: &[u8]) -> bool {
    packet.first().is_some_and(|b| b & MT_MASK == MT_DATA)
}

fn starts(packet: &[u8], what: [u8; 2]) -> bool {
    packet.get(..2) == Some(&what[..])
}

/// The monitor signals of one nfcd, as they arrive.
pub struct Trace {
    conn: Connection,
    events: Arc<Mutex<Vec<Event>>>,
    arrived: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Trace {
    /// Listen for `org.nfcd.Monitor1` signals from `owner` (nfcd's unique name) on `conn`.
    pub async fn start(conn: &Connection, owner: &str) -> Result<Trace, String> {
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(owner)
            .path(ADAPTER_PATH)
            .interface(MONITOR_INTERFACE)
            .build()
            .map_err(|e| format!("match rule: {e}"))?;
        let mut stream = MessageStream::for_match_rule(rule, conn, NonZeroUsize::new(SIGNAL_QUEUE))
            .await
            .map_err(|e| format!("monitor signals: {e}"))?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let (tx, arrived) = watch::channel(0u64);
        let sink = Arc::clone(&events);
        let task = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                if let Some(Ok(event)) = Event::from_signal(&msg) {
                    sink.lock().unwrap_or_else(|e| e.into_inner()).push(event);
                    tx.send_modify(|n| *n += 1);
                }
            }
        });
        Ok(Trace {
            conn: conn.clone(),
            events,
            arrived,
            task,
        })
    }

    async fn call(&self, method: &str) -> Result<(), String> {
        self.conn
            .call_method(
                Some("org.nfcd"),
                ADAPTER_PATH,
                Some(MONITOR_INTERFACE),
                method,
                &(),
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("Monitor1.{method}: {e} (subscribing needs uid 0)"))
    }

    /// `Monitor1.Subscribe()`.
    pub async fn subscribe(&self) -> Result<(), String> {
        self.call("Subscribe").await
    }

    /// `Monitor1.Unsubscribe()`, and forget what arrived.
    pub async fn unsubscribe(&self) -> Result<(), String> {
        self.call("Unsubscribe").await?;
        self.clear();
        Ok(())
    }

    /// Forget every event so far.
    pub fn clear(&self) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Wait until the trace holds an RF_DEACTIVATE_NTF after an RF_INTF_ACTIVATED_NTF (the
    /// tap that just ended), then take every event so far.
    pub async fn take_tap(&self) -> Result<Vec<Event>, String> {
        let mut arrived = self.arrived.clone();
        let ended = |events: &[Event]| {
            let activated = events
                .iter()
                .position(|e| rx_packet(e, RF_INTF_ACTIVATED_NTF));
            activated.is_some_and(|at| {
                events
                    .iter()
                    .skip(at)
                    .any(|e| rx_packet(e, RF_DEACTIVATE_NTF))
            })
        };
        let wait = async {
            loop {
                {
                    let events = self.events.lock().unwrap_or_else(|e| e.into_inner());
                    if ended(&events) {
                        return;
                    }
                }
                if arrived.changed().await.is_err() {
                    return;
                }
            }
        };
        if tokio::time::timeout(WAIT, wait).await.is_err() {
            return Err("nfcd's trace of the tap did not arrive".to_owned());
        }
        Ok(std::mem::take(
            &mut *self.events.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn rx_packet(event: &Event, what: [u8; 2]) -> bool {
    matches!(event, Event::Nci { direction: NciDirection::Rx, packet, .. } if starts(packet, what))
}

/// One APDU as nfcd saw it; see the module documentation. µs of nfcd's clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApduTimes {
    /// Last C-APDU packet read.
    pub rx_last: u64,
    /// Handed to the service; `None` when nfcd answered itself.
    pub command: Option<u64>,
    /// Answer back from the service.
    pub response: Option<u64>,
    /// First R-APDU packet handed to the transport.
    pub tx_first: u64,
}

impl ApduTimes {
    /// Last byte in → first byte out.
    pub fn overhead(&self) -> Duration {
        Duration::from_micros(self.tx_first.saturating_sub(self.rx_last))
    }

    /// From the read to the hand-over to the service (parse, reassembly, resolution).
    pub fn inbound(&self) -> Option<Duration> {
        self.command
            .map(|c| Duration::from_micros(c.saturating_sub(self.rx_last)))
    }

    /// The service's hop: from the hand-over to the answer, as nfcd's core sees it.
    pub fn hop(&self) -> Option<Duration> {
        match (self.command, self.response) {
            (Some(c), Some(r)) => Some(Duration::from_micros(r.saturating_sub(c))),
            _ => None,
        }
    }

    /// From the answer to the hand-over of its first packet to the transport.
    pub fn outbound(&self) -> Option<Duration> {
        self.response
            .map(|r| Duration::from_micros(self.tx_first.saturating_sub(r)))
    }

    /// nfcd's own time: everything but the service's hop.
    pub fn own(&self) -> Duration {
        self.overhead() - self.hop().unwrap_or_default()
    }
}

/// One tap as nfcd traced it.
#[derive(Debug, Clone, Default)]
pub struct TapTrace {
    /// RF_INTF_ACTIVATED_NTF read.
    pub activated: u64,
    /// Every APDU, in order.
    pub apdus: Vec<ApduTimes>,
    /// Time from each CORE_CONN_CREDITS_NTF read to the next data packet it let nfcd send
    /// (the later segments of a long R-APDU): nfcd's own work too.
    pub credit_turns: Vec<Duration>,
    /// Every NCI packet from the activation to the last R-APDU packet: (direction, length).
    pub packets: Vec<(NciDirection, usize)>,
    /// nfcd dropped monitor signals in this tap: its times are not complete.
    pub lost: bool,
}

impl TapTrace {
    /// The tap in `events`: from the first RF_INTF_ACTIVATED_NTF to the RF_DEACTIVATE_NTF
    /// after it. `None` without an activation.
    pub fn parse(events: &[Event]) -> Option<TapTrace> {
        let start = events
            .iter()
            .position(|e| rx_packet(e, RF_INTF_ACTIVATED_NTF))?;
        let mut tap = TapTrace::default();
        let mut pending: Option<ApduTimes> = None;
        let mut credits_at: Option<u64> = None;
        let mut packets = Vec::new();
        let mut last_data_tx = 0;
        for event in events.iter().skip(start) {
            match event {
                Event::Nci {
                    timestamp_us,
                    direction,
                    packet,
                } => {
                    let ts = *timestamp_us;
                    packets.push((*direction, packet.len()));
                    match direction {
                        NciDirection::Rx if starts(packet, RF_INTF_ACTIVATED_NTF) => {
                            tap.activated = ts;
                        }
                        NciDirection::Rx if starts(packet, RF_DEACTIVATE_NTF) => break,
                        NciDirection::Rx if starts(packet, CORE_CONN_CREDITS_NTF) => {
                            credits_at = Some(ts);
                        }
                        // The last (or only) segment of a C-APDU: PBF 0.
                        NciDirection::Rx
                            if is_data(packet) && packet.first().is_some_and(|b| b & PBF == 0) =>
                        {
                            pending = Some(ApduTimes {
                                rx_last: ts,
                                ..ApduTimes::default()
                            });
                        }
                        NciDirection::Tx if is_data(packet) => {
                            last_data_tx = packets.len();
                            match pending.take() {
                                Some(mut apdu) => {
                                    apdu.tx_first = ts;
                                    tap.apdus.push(apdu);
                                }
                                None => {
                                    if let Some(at) = credits_at.take() {
                                        tap.credit_turns
                                            .push(Duration::from_micros(ts.saturating_sub(at)));
                                    }
                                }
                            }
                            credits_at = None;
                        }
                        _ => {}
                    }
                }
                Event::Apdu {
                    timestamp_us,
                    direction,
                    ..
                } => {
                    if let Some(apdu) = pending.as_mut() {
                        match direction {
                            ApduDirection::Command => apdu.command = Some(*timestamp_us),
                            ApduDirection::Response => apdu.response = Some(*timestamp_us),
                        }
                    }
                }
                Event::Lost { .. } => tap.lost = true,
                _ => {}
            }
        }
        packets.truncate(last_data_tx);
        tap.packets = packets;
        Some(tap)
    }

    /// Time the modelled I²C bus spends on the tap's packets at `speed` (libnci `sim::bus`: a
    /// write per packet to the controller, header and payload reads per packet from it).
    pub fn bus_time(&self, speed: BusSpeed) -> Duration {
        self.packets
            .iter()
            .map(|(direction, len)| {
                let direction = match direction {
                    NciDirection::Tx => Direction::DhToNfcc,
                    NciDirection::Rx => Direction::NfccToDh,
                };
                speed.packet_time(direction, *len)
            })
            .sum()
    }

    /// nfcd's own time in the tap: every APDU's time inside nfcd but the service's hop, and
    /// every credit turn.
    pub fn own_time(&self) -> Duration {
        self.apdus.iter().map(ApduTimes::own).sum::<Duration>()
            + self.credit_turns.iter().sum::<Duration>()
    }

    /// The services' hops, summed.
    pub fn hop_time(&self) -> Duration {
        self.apdus.iter().filter_map(ApduTimes::hop).sum()
    }
}

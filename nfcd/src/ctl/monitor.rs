//! `nfcctl monitor`: a live, decoded trace of NCI packets, APDUs and transactions.
//!
//! Contract: [`run`] subscribes with `org.nfcd.Monitor1.Subscribe` (doc/monitor-api.md),
//! prints one line per `Nci` / `Apdu` / `Lost` signal and per `Adapter1` `TransactionStarted` /
//! `TransactionEnded`, in arrival order, until SIGINT or SIGTERM; then it unsubscribes and ends
//! with status 0. If nfcd leaves the bus the run ends with [`CtlError::DaemonAbsent`].
//!
//! [`Decoder`] is the pure part: NCI packets are reassembled per direction
//! ([`libnci::wire::segment::Reassembler`], NCI 1.0 §3.5) and each whole message is decoded with
//! [`Message::parse`] and shown with its one-line `Display`; a segment that is not the last
//! is shown by its header. The NCI version that selects between message layouts starts as
//! `Adapter1.NciVersion` and follows CORE_RESET_RSP (NCI 1.0) / CORE_RESET_NTF (NCI 2.0).
//! APDUs are described by [`super::apdu`].
//!
//! Times are seconds since the monitor started. Signals carrying a daemon timestamp are placed
//! by it (relative to the first one, so their spacing is the daemon's); the transaction signals
//! carry none and are placed by the local clock.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::signal::unix::{signal, SignalKind};
use zbus::fdo::DBusProxy;
use zbus::message::Type as MessageType;
use zbus::{MatchRule, Message as DBusMessage, MessageStream};

use libnci::wire::core::{CoreResetNtf, CoreResetRsp};
use libnci::wire::segment::{Reassembler, ReassemblyError};
use libnci::wire::{HeaderRepr, HexBytes, Message, NciVersion, Packet, HEADER_LEN};

use super::apdu::{describe_command, describe_response, select_aid};
use super::bus::{Client, ADAPTER_INTERFACE, ADAPTER_PATH, BUS_NAME, MONITOR_INTERFACE};
use super::error::{BusLabel, CtlError};
use super::output::Output;
use super::value::{hex, Fields};

/// Largest NCI message shown decoded. Short APDUs (≤ 261 bytes) and every control message fit;
/// a longer data message is reported as too long, its APDU still appears in the `Apdu` line.
const REASSEMBLY_CAPACITY: usize = 4096;

/// How many signals may wait while the terminal is slow, before zbus drops the oldest.
const SIGNAL_QUEUE: usize = 4096;

/// Which way an NCI packet went (doc/monitor-api.md, `Nci`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NciDirection {
    /// Device host → controller (`tx`).
    Tx,
    /// Controller → device host (`rx`).
    Rx,
}

/// Which half of an exchange an APDU is (doc/monitor-api.md, `Apdu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApduDirection {
    /// Reader → service (`command`).
    Command,
    /// Service → reader (`response`).
    Response,
}

/// One traced event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `Monitor1.Nci(t timestamp_us, s direction, ay packet)`.
    Nci {
        /// Daemon time, µs (CLOCK_MONOTONIC).
        timestamp_us: u64,
        /// Direction.
        direction: NciDirection,
        /// One whole NCI packet: header and payload.
        packet: Vec<u8>,
    },
    /// `Monitor1.Apdu(t timestamp_us, s direction, s service_id, ay apdu)`.
    Apdu {
        /// Daemon time, µs (CLOCK_MONOTONIC).
        timestamp_us: u64,
        /// Direction.
        direction: ApduDirection,
        /// Id of the service concerned; empty when nfcd answered itself.
        service_id: String,
        /// The APDU.
        apdu: Vec<u8>,
    },
    /// `Monitor1.Lost(t timestamp_us, u count)`: the daemon dropped `count` signals for this
    /// subscriber because its queue was full.
    Lost {
        /// Daemon time, µs (CLOCK_MONOTONIC), of the first signal delivered again.
        timestamp_us: u64,
        /// Signals dropped.
        count: u32,
    },
    /// `Adapter1.TransactionStarted(s id, ay aid)`.
    TransactionStarted {
        /// Service Id.
        id: String,
        /// The AID selected.
        aid: Vec<u8>,
    },
    /// `Adapter1.TransactionEnded(s id, s reason, u apdus, t duration_us)`.
    TransactionEnded {
        /// Service Id.
        id: String,
        /// `deselected`, `link-loss`, `error`, `timeout`.
        reason: String,
        /// APDUs exchanged with the service.
        apdus: u32,
        /// Duration, µs.
        duration_us: u64,
    },
}

impl Event {
    /// Decode a signal. `None` for signals that are not traced; `Some(Err)` for a traced
    /// signal whose arguments do not have the documented types.
    pub fn from_signal(msg: &DBusMessage) -> Option<Result<Event, String>> {
        let header = msg.header();
        let interface = header.interface()?.as_str().to_owned();
        let member = header.member()?.as_str().to_owned();
        let body = msg.body();
        let bad = |e: zbus::Error| format!("{interface}.{member} signal with bad arguments: {e}");
        let event = match (interface.as_str(), member.as_str()) {
            (MONITOR_INTERFACE, "Nci") => body
                .deserialize::<(u64, String, Vec<u8>)>()
                .map_err(bad)
                .and_then(|(timestamp_us, direction, packet)| {
                    let direction = match direction.as_str() {
                        "tx" => NciDirection::Tx,
                        "rx" => NciDirection::Rx,
                        other => return Err(format!("Nci signal with direction {other:?}")),
                    };
                    Ok(Event::Nci {
                        timestamp_us,
                        direction,
                        packet,
                    })
                }),
            (MONITOR_INTERFACE, "Apdu") => body
                .deserialize::<(u64, String, String, Vec<u8>)>()
                .map_err(bad)
                .and_then(|(timestamp_us, direction, service_id, apdu)| {
                    let direction = match direction.as_str() {
                        "command" => ApduDirection::Command,
                        "response" => ApduDirection::Response,
                        other => return Err(format!("Apdu signal with direction {other:?}")),
                    };
                    Ok(Event::Apdu {
                        timestamp_us,
                        direction,
                        service_id,
                        apdu,
                    })
                }),
            (MONITOR_INTERFACE, "Lost") => body
                .deserialize::<(u64, u32)>()
                .map(|(timestamp_us, count)| Event::Lost {
                    timestamp_us,
                    count,
                })
                .map_err(bad),
            (ADAPTER_INTERFACE, "TransactionStarted") => body
                .deserialize::<(String, Vec<u8>)>()
                .map(|(id, aid)| Event::TransactionStarted { id, aid })
                .map_err(bad),
            (ADAPTER_INTERFACE, "TransactionEnded") => body
                .deserialize::<(String, String, u32, u64)>()
                .map(|(id, reason, apdus, duration_us)| Event::TransactionEnded {
                    id,
                    reason,
                    apdus,
                    duration_us,
                })
                .map_err(bad),
            _ => return None,
        };
        Some(event)
    }

    fn timestamp_us(&self) -> Option<u64> {
        match self {
            Event::Nci { timestamp_us, .. }
            | Event::Apdu { timestamp_us, .. }
            | Event::Lost { timestamp_us, .. } => Some(*timestamp_us),
            Event::TransactionStarted { .. } | Event::TransactionEnded { .. } => None,
        }
    }
}

/// `Adapter1.NciVersion` (`"1.0"`, `"2.0"`) as the octet NCI uses (NCI 1.0 §4.1).
pub fn parse_nci_version(text: &str) -> Option<NciVersion> {
    let (major, minor) = text.trim().split_once('.')?;
    let major: u8 = major.parse().ok()?;
    let minor: u8 = minor.parse().ok()?;
    (major <= 0x0F && minor <= 0x0F).then_some(NciVersion((major << 4) | minor))
}

/// An NCI packet, decoded as far as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NciLine {
    /// The message name from the header (`CORE_RESET_CMD`, `DATA`), if the header is readable.
    pub name: Option<&'static str>,
    /// The one-line decode.
    pub text: String,
    /// The packet is a segment and more follow (PBF set).
    pub segment: bool,
}

/// Turns events into trace lines; holds the reassembly and clock state of one trace.
pub struct Decoder {
    version: NciVersion,
    tx: Box<Reassembler<REASSEMBLY_CAPACITY>>,
    rx: Box<Reassembler<REASSEMBLY_CAPACITY>>,
    /// Daemon timestamp minus local elapsed time, fixed by the first timestamped event.
    offset_us: Option<i128>,
    hex: bool,
}

impl Decoder {
    /// A decoder for a controller speaking `version`; `hex` adds raw bytes under each line.
    pub fn new(version: NciVersion, hex: bool) -> Decoder {
        Decoder {
            version,
            tx: Box::default(),
            rx: Box::default(),
            offset_us: None,
            hex,
        }
    }

    /// The NCI version currently used for decoding.
    pub fn version(&self) -> NciVersion {
        self.version
    }

    /// Time of `event` in µs since the monitor started; `local` is the local time elapsed since
    /// then at reception.
    fn time_us(&mut self, event: &Event, local: Duration) -> u64 {
        let local_us = i128::try_from(local.as_micros()).unwrap_or(i128::MAX);
        match event.timestamp_us() {
            Some(ts) => {
                let offset = *self
                    .offset_us
                    .get_or_insert_with(|| i128::from(ts) - local_us);
                u64::try_from(i128::from(ts) - offset).unwrap_or(0)
            }
            None => u64::try_from(local_us).unwrap_or(u64::MAX),
        }
    }

    /// Decode one NCI packet that went `direction`.
    pub fn decode_nci(&mut self, direction: NciDirection, packet: &[u8]) -> NciLine {
        let header = match Packet::new_checked(packet).and_then(|p| HeaderRepr::parse(&p)) {
            Ok(h) => h,
            Err(err) => {
                return NciLine {
                    name: None,
                    text: format!("malformed NCI packet ({err}): {}", HexBytes(packet)),
                    segment: false,
                }
            }
        };
        let name = Message::name_for(header.mt, header.id);
        let label = name.unwrap_or("unknown message");
        let version = self.version;
        let reassembler = match direction {
            NciDirection::Tx => &mut self.tx,
            NciDirection::Rx => &mut self.rx,
        };
        let mut pushed = reassembler.push(packet);
        if let Err(ReassemblyError::Interleaved) = pushed {
            // The partial message was dropped and this packet not consumed: it starts afresh.
            pushed = reassembler.push(packet);
        }
        let (text, learnt) = match pushed {
            Ok(None) => {
                let payload = packet.len().saturating_sub(HEADER_LEN);
                return NciLine {
                    name,
                    text: format!("{label} segment, {payload} bytes, more follow"),
                    segment: true,
                };
            }
            Ok(Some(whole)) => match Message::parse(whole.mt, whole.id, whole.payload, version) {
                Ok(message) => (message.to_string(), learnt_version(&message)),
                Err(err) => (
                    format!("{label} undecodable ({err}): {}", HexBytes(whole.payload)),
                    None,
                ),
            },
            Err(err) => (format!("{label}: {err}"), None),
        };
        if let Some(v) = learnt {
            self.version = v;
        }
        NciLine {
            name,
            text,
            segment: false,
        }
    }

    /// The human trace lines for `event`, each ending in `\n`.
    pub fn human(&mut self, event: &Event, local: Duration) -> String {
        let t = self.time_us(event, local);
        let time = format!("{:>4}.{:06}", t / 1_000_000, t % 1_000_000);
        let (line, raw): (String, Option<&[u8]>) = match event {
            Event::Nci {
                direction, packet, ..
            } => {
                let decoded = self.decode_nci(*direction, packet);
                let arrow = match direction {
                    NciDirection::Tx => '<',
                    NciDirection::Rx => '>',
                };
                (
                    format!("{time} {arrow} NCI  {}", decoded.text),
                    Some(packet),
                )
            }
            Event::Apdu {
                direction,
                service_id,
                apdu,
                ..
            } => {
                let service = if service_id.is_empty() {
                    "-"
                } else {
                    service_id.as_str()
                };
                let (arrow, text) = match direction {
                    ApduDirection::Command => ('>', describe_command(apdu)),
                    ApduDirection::Response => ('<', describe_response(apdu)),
                };
                (format!("{time} {arrow} APDU {service}  {text}"), Some(apdu))
            }
            Event::Lost { count, .. } => (
                format!(
                    "{time} ! LOST {count} signal{}",
                    if *count == 1 { "" } else { "s" }
                ),
                None,
            ),
            Event::TransactionStarted { id, aid } => (
                format!("{time} @ TRANSACTION started {id} AID {}", hex(aid)),
                None,
            ),
            Event::TransactionEnded {
                id,
                reason,
                apdus,
                duration_us,
            } => (
                format!(
                    "{time} @ TRANSACTION ended {id} {reason}, {apdus} APDU{} in {}.{:03} ms",
                    if *apdus == 1 { "" } else { "s" },
                    duration_us / 1000,
                    duration_us % 1000
                ),
                None,
            ),
        };
        let mut text = line;
        text.push('\n');
        if let (true, Some(bytes)) = (self.hex, raw) {
            for chunk in bytes.chunks(16) {
                text.push_str(&format!("{:>16}{}\n", "", HexBytes(chunk)));
            }
        }
        text
    }

    /// The JSON object for `event` (one line of `monitor --json`).
    pub fn json(&mut self, event: &Event, local: Duration) -> serde_json::Value {
        let time_us = self.time_us(event, local);
        match event {
            Event::Nci {
                timestamp_us,
                direction,
                packet,
            } => {
                let decoded = self.decode_nci(*direction, packet);
                json!({
                    "event": "nci",
                    "time_us": time_us,
                    "timestamp_us": timestamp_us,
                    "direction": match direction { NciDirection::Tx => "tx", NciDirection::Rx => "rx" },
                    "packet": hex(packet),
                    "message": decoded.name,
                    "segment": decoded.segment,
                    "decoded": decoded.text,
                })
            }
            Event::Apdu {
                timestamp_us,
                direction,
                service_id,
                apdu,
            } => {
                let (direction, decoded, aid, sw) = match direction {
                    ApduDirection::Command => (
                        "command",
                        describe_command(apdu),
                        select_aid(apdu).map(|a| hex(&a)),
                        None,
                    ),
                    ApduDirection::Response => (
                        "response",
                        describe_response(apdu),
                        None,
                        libnci::apdu::StatusWord::from_response(apdu).map(|sw| sw.to_string()),
                    ),
                };
                json!({
                    "event": "apdu",
                    "time_us": time_us,
                    "timestamp_us": timestamp_us,
                    "direction": direction,
                    "service": service_id,
                    "apdu": hex(apdu),
                    "decoded": decoded,
                    "select_aid": aid,
                    "sw": sw,
                })
            }
            Event::Lost {
                timestamp_us,
                count,
            } => json!({
                "event": "lost",
                "time_us": time_us,
                "timestamp_us": timestamp_us,
                "count": count,
            }),
            Event::TransactionStarted { id, aid } => json!({
                "event": "transaction-started",
                "time_us": time_us,
                "id": id,
                "aid": hex(aid),
            }),
            Event::TransactionEnded {
                id,
                reason,
                apdus,
                duration_us,
            } => json!({
                "event": "transaction-ended",
                "time_us": time_us,
                "id": id,
                "reason": reason,
                "apdus": apdus,
                "duration_us": duration_us,
            }),
        }
    }
}

/// The NCI version a message announces: CORE_RESET_RSP under NCI 1.0, CORE_RESET_NTF under
/// NCI 2.0 (NCI 2.0 §4.1).
fn learnt_version(message: &Message<'_>) -> Option<NciVersion> {
    match message {
        Message::CoreResetRsp(CoreResetRsp::Nci1 { nci_version, .. })
        | Message::CoreResetNtf(CoreResetNtf::Nci2 { nci_version, .. }) => Some(*nci_version),
        _ => None,
    }
}

/// Subscribe and print until SIGINT / SIGTERM.
pub async fn run(client: &Client, json: bool, hex: bool, out: &Output) -> Result<(), CtlError> {
    let conn = client.connection();
    // Handlers first: a Ctrl-C from here on ends the trace cleanly, with Unsubscribe.
    let mut interrupt = signal(SignalKind::interrupt()).map_err(CtlError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(CtlError::Signals)?;

    let version = client
        .properties(ADAPTER_PATH, ADAPTER_INTERFACE)
        .await?
        .and_then(|props| Fields::from_properties(&props).str("NciVersion"))
        .and_then(|v| parse_nci_version(&v))
        .unwrap_or(NciVersion::V2_0);
    let mut decoder = Decoder::new(version, hex);

    let no_stream = |e| client.error(e, String::new);
    let rule = MatchRule::builder()
        .msg_type(MessageType::Signal)
        .sender(client.owner().as_str())
        .path(ADAPTER_PATH)
        .build()
        .map_err(no_stream)?;
    let mut signals = MessageStream::for_match_rule(rule, conn, NonZeroUsize::new(SIGNAL_QUEUE))
        .await
        .map_err(no_stream)?;
    let dbus = DBusProxy::new(conn).await.map_err(no_stream)?;
    let mut owner_changes = dbus
        .receive_name_owner_changed_with_args(&[(0, BUS_NAME)])
        .await
        .map_err(no_stream)?;

    let monitor = client.monitor().await?;
    monitor.subscribe().await.map_err(|e| {
        client.error(e, || {
            format!(
                "this nfcd does not offer the NCI monitor ({MONITOR_INTERFACE} at {ADAPTER_PATH})"
            )
        })
    })?;
    eprintln!(
        "nfcctl: monitoring nfcd on {} (NCI {}), Ctrl-C to stop",
        BusLabel(client.bus()),
        decoder.version()
    );

    let start = Instant::now();
    let outcome = loop {
        tokio::select! {
            _ = interrupt.recv() => break Ok(()),
            _ = terminate.recv() => break Ok(()),
            change = owner_changes.next() => {
                let gone = match change {
                    None => true,
                    Some(signal) => signal.args().map(|a| a.new_owner().is_none()).unwrap_or(false),
                };
                if gone {
                    break Err(CtlError::DaemonAbsent { bus: client.bus().clone() });
                }
            }
            msg = signals.next() => {
                let msg = match msg {
                    None => break Err(CtlError::BusLost {
                        error: zbus::Error::Failure("the bus connection closed".to_owned()),
                    }),
                    Some(Err(e)) => break Err(client.error(e, String::new)),
                    Some(Ok(msg)) => msg,
                };
                let event = match Event::from_signal(&msg) {
                    None => continue,
                    Some(Err(why)) => {
                        eprintln!("nfcctl: {why}");
                        continue;
                    }
                    Some(Ok(event)) => event,
                };
                let local = start.elapsed();
                let written = if json {
                    out.json_line(&decoder.json(&event, local))
                } else {
                    out.write(&decoder.human(&event, local))
                };
                if let Err(err) = written {
                    break Err(err);
                }
            }
        }
    };
    // Best effort: the daemon also drops the subscription when this connection closes.
    let _ = tokio::time::timeout(Duration::from_secs(1), monitor.unsubscribe()).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nci(direction: NciDirection, ts: u64, packet: &[u8]) -> Event {
        Event::Nci {
            timestamp_us: ts,
            direction,
            packet: packet.to_vec(),
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_nci_version("1.0"), Some(NciVersion::V1_0));
        assert_eq!(parse_nci_version("2.0"), Some(NciVersion::V2_0));
        assert_eq!(parse_nci_version("2"), None);
        assert_eq!(parse_nci_version("16.0"), None);
        assert_eq!(parse_nci_version(""), None);
    }

    #[test]
    fn core_reset_transcript() {
        let mut d = Decoder::new(NciVersion::V2_0, false);
        // CORE_RESET_CMD, reset type 0x01 (reset configuration).
        let cmd = nci(NciDirection::Tx, 5_000_000, &[0x20, 0x00, 0x01, 0x01]);
        let line = d.human(&cmd, Duration::from_micros(250));
        assert!(
            line.starts_with("   0.000250 < NCI  CORE_RESET_CMD reset_type="),
            "{line}"
        );
        // CORE_RESET_RSP in the NCI 1.0 layout: status OK, version 1.0, configuration reset.
        let rsp = nci(
            NciDirection::Rx,
            5_001_250,
            &[0x40, 0x00, 0x03, 0x00, 0x10, 0x01],
        );
        let line = d.human(&rsp, Duration::from_secs(9));
        assert!(
            line.starts_with("   0.001500 > NCI  CORE_RESET_RSP status=STATUS_OK"),
            "{line}"
        );
        assert_eq!(d.version(), NciVersion::V1_0);
    }

    #[test]
    fn segments_are_reassembled() {
        let mut d = Decoder::new(NciVersion::V1_0, false);
        // DATA on connection 0 in two segments: PBF set on the first.
        let first = d.decode_nci(NciDirection::Rx, &[0x10, 0x00, 0x02, 0x00, 0xA4]);
        assert_eq!(first.name, Some("DATA"));
        assert!(first.segment);
        assert_eq!(first.text, "DATA segment, 2 bytes, more follow");
        let last = d.decode_nci(NciDirection::Rx, &[0x00, 0x00, 0x02, 0x04, 0x00]);
        assert!(!last.segment);
        assert!(last.text.starts_with("DATA"), "{}", last.text);
        assert!(last.text.contains("00 A4 04 00"), "{}", last.text);
    }

    #[test]
    fn malformed_packets_are_described() {
        let mut d = Decoder::new(NciVersion::V2_0, false);
        let line = d.decode_nci(NciDirection::Rx, &[0x60]);
        assert_eq!(line.name, None);
        assert!(
            line.text.starts_with("malformed NCI packet"),
            "{}",
            line.text
        );
        // CORE_RESET_NTF whose length field promises more than the packet holds.
        let line = d.decode_nci(NciDirection::Rx, &[0x60, 0x00, 0x09, 0x02]);
        assert!(
            line.text.starts_with("malformed NCI packet"),
            "{}",
            line.text
        );
    }

    #[test]
    fn apdus_and_transactions() {
        let mut d = Decoder::new(NciVersion::V2_0, true);
        let select = Event::Apdu {
            timestamp_us: 100,
            direction: ApduDirection::Command,
            service_id: "com.example.pay".into(),
            apdu: vec![
                0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0, 0, 0, 0x04, 0x10, 0x10, 0x00,
            ],
        };
        assert_eq!(
            d.human(&select, Duration::ZERO),
            "   0.000000 > APDU com.example.pay  SELECT A0000000041010\n\
             \x20               00 A4 04 00 07 A0 00 00 00 04 10 10 00\n"
        );
        let unknown = Event::Apdu {
            timestamp_us: 1_100,
            direction: ApduDirection::Response,
            service_id: String::new(),
            apdu: vec![0x6A, 0x82],
        };
        let v = d.json(&unknown, Duration::ZERO);
        assert_eq!(v["event"], "apdu");
        assert_eq!(v["time_us"], 1000);
        assert_eq!(v["sw"], "6A82");
        assert_eq!(v["decoded"], "6A82 file or application not found");
        let lost = Event::Lost {
            timestamp_us: 2_100,
            count: 3,
        };
        assert_eq!(
            d.human(&lost, Duration::ZERO),
            "   0.002000 ! LOST 3 signals\n"
        );
        let ended = Event::TransactionEnded {
            id: "com.example.pay".into(),
            reason: "deselected".into(),
            apdus: 7,
            duration_us: 182_345,
        };
        assert_eq!(
            d.human(&ended, Duration::from_millis(2)),
            "   0.002000 @ TRANSACTION ended com.example.pay deselected, 7 APDUs in 182.345 ms\n"
        );
    }
}

//! `wire::segment::Reassembler` fed a sequence of packets (NCI 1.0 §3.5, NCI 2.0 §3.5),
//! checked against a plain model of the rules its documentation states.
//!
//! Input: a sequence of chunks. Each chunk starts with a `flags` byte:
//! - bit 0: push with `push_copied` instead of `push`;
//! - bit 1: the packet is `len` bytes, `len` from the next byte (malformed packets: a length
//!   field that disagrees with the buffer); clear: the packet is exactly as long as its header
//!   says (three header bytes, then the payload, padded with zeros when the input ends);
//! - bit 2: `reset()` before the packet.
//!
//! Every packet goes to two reassemblers of different shapes: 300-octet data slots ×2 with a
//! 64-octet control buffer, and the controller's shape — no data slot at all — with a 2048-octet
//! control buffer. Both must agree with the model after every push: same result, same message,
//! and no message longer than the buffer it is held to (the memory bound).
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnci::wire::segment::{Reassembled, Reassembler, ReassemblyError};
use libnci::wire::{Error, Gid, HeaderRepr, MessageType, Packet, PacketId, HEADER_LEN};
use nfcd_fuzz::Input;

/// What the model expects from one push.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Pending,
    Message {
        mt: MessageType,
        id: PacketId,
        payload: Vec<u8>,
        credits_sum: u16,
    },
    Error(ReassemblyError),
}

impl Outcome {
    fn from_result(result: Result<Option<Reassembled<'_>>, ReassemblyError>) -> Outcome {
        match result {
            Ok(None) => Outcome::Pending,
            Ok(Some(m)) => Outcome::Message {
                mt: m.mt,
                id: m.id,
                payload: m.payload.to_vec(),
                credits_sum: m.credits_sum,
            },
            Err(e) => Outcome::Error(e),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ControlKey {
    mt: MessageType,
    gid: Gid,
    oid: u8,
}

#[derive(Debug, Default)]
enum DataState {
    #[default]
    Idle,
    Collecting {
        buf: Vec<u8>,
        credits_sum: u16,
    },
    Discarding,
}

/// The reassembly rules as the module documentation states them, with unbounded buffers
/// checked against the capacities.
struct Model {
    data_cap: usize,
    slots: usize,
    control_cap: usize,
    control: Option<(ControlKey, Vec<u8>)>,
    control_discarding: Option<ControlKey>,
    data: [DataState; 16],
}

impl Model {
    fn new(data_cap: usize, slots: usize, control_cap: usize) -> Model {
        Model {
            data_cap,
            slots,
            control_cap,
            control: None,
            control_discarding: None,
            data: Default::default(),
        }
    }

    fn reset(&mut self) {
        self.control = None;
        self.control_discarding = None;
        self.data = Default::default();
    }

    fn push(&mut self, packet: &[u8], copy: bool) -> Outcome {
        let header = match Packet::new_checked(packet).and_then(|p| HeaderRepr::parse(&p)) {
            Ok(header) => header,
            Err(e) => return Outcome::Error(ReassemblyError::Malformed(e)),
        };
        let payload = &packet[HEADER_LEN..];
        match (header.mt, header.id) {
            (MessageType::Unknown(_), _) => {
                Outcome::Error(ReassemblyError::Malformed(Error::UnknownMessage))
            }
            (mt, PacketId::Control { gid, oid }) => {
                self.push_control(ControlKey { mt, gid, oid }, header.pbf, payload)
            }
            (_, PacketId::Data { conn_id, credits }) => {
                self.push_data(conn_id, credits, header.pbf, payload, copy)
            }
        }
    }

    fn push_control(&mut self, key: ControlKey, pbf: bool, payload: &[u8]) -> Outcome {
        if let Some(dropped) = self.control_discarding {
            if dropped == key {
                if !pbf {
                    self.control_discarding = None;
                }
                return Outcome::Pending;
            }
            self.control_discarding = None;
        }
        let message = |payload: Vec<u8>| Outcome::Message {
            mt: key.mt,
            id: PacketId::Control {
                gid: key.gid,
                oid: key.oid,
            },
            payload,
            credits_sum: 0,
        };
        let mut buf = match self.control.take() {
            Some((current, _)) if current != key => {
                return Outcome::Error(ReassemblyError::Interleaved)
            }
            Some((_, buf)) => buf,
            None => Vec::new(),
        };
        buf.extend_from_slice(payload);
        if buf.len() > self.control_cap {
            // The rest of an oversized segmented message is swallowed; a single packet has no
            // rest. Copying or not makes no difference to what is accepted.
            if pbf {
                self.control_discarding = Some(key);
            }
            return Outcome::Error(ReassemblyError::Capacity);
        }
        if pbf {
            self.control = Some((key, buf));
            Outcome::Pending
        } else {
            message(buf)
        }
    }

    fn push_data(
        &mut self,
        conn_id: u8,
        credits: u8,
        pbf: bool,
        payload: &[u8],
        copy: bool,
    ) -> Outcome {
        let collecting = self
            .data
            .iter()
            .filter(|s| matches!(s, DataState::Collecting { .. }))
            .count();
        let data_cap = self.data_cap;
        let slots = self.slots;
        let state = &mut self.data[usize::from(conn_id)];
        let message = |payload: Vec<u8>, credits_sum: u16| Outcome::Message {
            mt: MessageType::Data,
            id: PacketId::Data { conn_id, credits },
            payload,
            credits_sum,
        };
        let (mut buf, sum) = match std::mem::take(state) {
            DataState::Discarding => {
                if pbf {
                    *state = DataState::Discarding;
                }
                return Outcome::Pending;
            }
            DataState::Collecting { buf, credits_sum } => (buf, credits_sum),
            DataState::Idle if !pbf && !copy => {
                if payload.len() > data_cap {
                    return Outcome::Error(ReassemblyError::Capacity);
                }
                return message(payload.to_vec(), u16::from(credits));
            }
            DataState::Idle => {
                if collecting >= slots {
                    if pbf {
                        *state = DataState::Discarding;
                    }
                    return Outcome::Error(ReassemblyError::Capacity);
                }
                (Vec::new(), 0)
            }
        };
        buf.extend_from_slice(payload);
        if buf.len() > data_cap {
            if pbf {
                *state = DataState::Discarding;
            }
            return Outcome::Error(ReassemblyError::Capacity);
        }
        let credits_sum = sum.saturating_add(u16::from(credits));
        if pbf {
            *state = DataState::Collecting { buf, credits_sum };
            Outcome::Pending
        } else {
            message(buf, credits_sum)
        }
    }

    fn is_idle(&self) -> bool {
        self.control.is_none()
            && self.control_discarding.is_none()
            && self.data.iter().all(|s| matches!(s, DataState::Idle))
    }
}

/// One reassembler under test with its model.
struct Checked<const N: usize, const C: usize, const CONTROL: usize> {
    real: Box<Reassembler<N, C, CONTROL>>,
    model: Model,
}

impl<const N: usize, const C: usize, const CONTROL: usize> Checked<N, C, CONTROL> {
    fn new() -> Self {
        Checked {
            real: Box::new(Reassembler::new()),
            model: Model::new(N, C, CONTROL),
        }
    }

    fn reset(&mut self) {
        self.real.reset();
        self.model.reset();
        assert!(self.real.is_idle());
    }

    fn push(&mut self, packet: &[u8], copy: bool) {
        let expected = self.model.push(packet, copy);
        let result = if copy {
            self.real.push_copied(packet)
        } else {
            self.real.push(packet)
        };
        if let Ok(Some(m)) = &result {
            match m.mt {
                MessageType::Data => assert!(m.payload.len() <= N, "data message over N"),
                _ => assert!(m.payload.len() <= CONTROL, "control message over CONTROL"),
            }
        }
        let got = Outcome::from_result(result);
        assert_eq!(got, expected, "packet {packet:02X?} copy={copy}");
        if let Outcome::Message {
            mt: MessageType::Data,
            id: PacketId::Data { conn_id, .. },
            payload,
            ..
        } = &got
        {
            // A message held by the reassembler stays readable until the next push.
            if let Some(held) = self.real.data_message(*conn_id) {
                assert_eq!(held, &payload[..]);
            }
        }
        for conn_id in 0..16u8 {
            let discarding = matches!(self.model.data[usize::from(conn_id)], DataState::Discarding);
            assert_eq!(
                self.real.is_discarding(conn_id),
                discarding,
                "conn {conn_id}"
            );
        }
        assert_eq!(self.real.is_idle(), self.model.is_idle(), "is_idle");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mut wide = Checked::<300, 2, 64>::new();
    let mut controller_shape = Checked::<64, 0, 2048>::new();
    let mut packet = Vec::with_capacity(300);
    while !input.is_empty() {
        let flags = input.u8();
        let copy = flags & 0x01 != 0;
        packet.clear();
        if flags & 0x02 != 0 {
            let len = usize::from(input.u8());
            packet.extend_from_slice(input.take(len));
        } else {
            packet.extend_from_slice(input.take(HEADER_LEN));
            packet.resize(HEADER_LEN, 0);
            let len = usize::from(packet[2]);
            packet.extend_from_slice(input.take(len));
            packet.resize(HEADER_LEN + len, 0);
        }
        if flags & 0x04 != 0 {
            wide.reset();
            controller_shape.reset();
        }
        wide.push(&packet, copy);
        controller_shape.push(&packet, copy);
    }
});

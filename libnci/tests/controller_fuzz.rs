//! Whatever the controller sends, the state machine never panics, only ever transmits
//! well-formed NCI packets, and re-arms a fired timer in the future.

mod transcript;

use libnci::controller::{Event, State};
use libnci::time::Duration;
use libnci::wire::{HeaderRepr, Packet};
use proptest::prelude::*;
use transcript::{hex, pn7150, pn7150_ready};

#[derive(Debug, Clone)]
enum Input {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// A packet with a consistent length field and an arbitrary header and payload.
    Framed(u8, u8, Vec<u8>),
    /// A packet the controller knows, to reach deeper states.
    Known(usize),
    Advance(u16),
    Respond(Vec<u8>),
}

const KNOWN: &[&str] = &[
    pn7150::RF_INTF_ACTIVATED_NTF_LISTEN_A,
    pn7150::CORE_CONN_CREDITS_NTF,
    pn7150::RF_DEACTIVATE_NTF_LINK_LOSS,
    pn7150::RF_FIELD_INFO_NTF_ON,
    "00 00 05 00 A4 04 00 00",
    "10 00 03 00 A4 04",
    pn7150::CORE_RESET_RSP,
    pn7150::CORE_INIT_RSP,
    "60 00 02 00 01",
];

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..12).prop_map(Input::Raw),
        (
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(a, b, p)| Input::Framed(a, b, p)),
        (0..KNOWN.len()).prop_map(Input::Known),
        (0u16..2000).prop_map(Input::Advance),
        prop::collection::vec(any::<u8>(), 0..600).prop_map(Input::Respond),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn never_panics_and_only_sends_well_formed_packets(
        inputs in prop::collection::vec(input(), 1..40)
    ) {
        let mut t = pn7150_ready();
        let mut now = t.now();
        for input in inputs {
            match input {
                Input::Raw(bytes) => t.ctl.handle_packet(&bytes, now),
                Input::Framed(a, b, payload) => {
                    let mut packet = vec![a, b, payload.len() as u8];
                    packet.extend_from_slice(&payload);
                    t.ctl.handle_packet(&packet, now);
                }
                Input::Known(i) => t.ctl.handle_packet(&hex(KNOWN[i]), now),
                Input::Advance(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    if t.ctl.poll_timeout().is_some_and(|at| at <= now) {
                        t.ctl.handle_timeout(now);
                        // A fired timer is re-armed in the future: the host never spins.
                        prop_assert!(t.ctl.poll_timeout().is_none_or(|at| at > now));
                    }
                }
                Input::Respond(apdu) => {
                    let _ = t.ctl.send_data(&apdu, now);
                }
            }
            while let Some(packet) = t.ctl.poll_transmit() {
                let view = Packet::new_checked(&packet[..]);
                prop_assert!(view.is_ok(), "malformed transmit {:02X?}", packet);
                prop_assert!(HeaderRepr::parse(&view.unwrap()).is_ok());
            }
            while let Some(event) = t.ctl.poll_event() {
                if let Event::Data(apdu) = event {
                    prop_assert!(apdu.len() <= libnci::controller::MAX_C_APDU);
                }
            }
            if t.ctl.state() == State::Failed {
                t.ctl.start(now);
            }
        }
    }
}

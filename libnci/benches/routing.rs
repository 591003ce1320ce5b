//! Micro-benchmarks of the listen-mode routing table builder (NCI 1.0 §6.3): what the
//! controller does at start-up and whenever the wanted routes change.
//!
//! What is measured: a fresh [`RoutingTableBuilder`] for the PN7150's limits (NCI 1.0, 720-octet
//! table, 255-octet control payload), every rule added, and [`RoutingTableBuilder::build`] —
//! the same steps as the controller's routing stage. Two tables:
//! - `host_only`: the default routes (ISO-DEP, NFC-A and NFC-B → host), 15 octets, mixed mode;
//! - `off_host_aids_fallback`: 61 off-host AIDs of 16 octets plus those three host rules, which
//!   fills the builder ([`MAX_RULES`] = 64 rules). The AID entries need 1 220 octets, more than
//!   the 720 the PN7150 holds, so the build falls back to protocol mode.
//!
//! What is not: sending the commands or the controller's refusal handling.
//!
//! Run: `cargo bench -p libnci --bench routing`.

use divan::{black_box, Bencher};
use libnci::controller::Config;
use libnci::routing::{
    Aid, AidMatch, RoutingLimits, RoutingMode, RoutingRule, RoutingTable, RoutingTableBuilder,
    MAX_RULES,
};
use libnci::wire::routing::PowerState;

fn main() {
    divan::main();
}

/// An NFCEE ID for the off-host target (NCI 1.0 §9.2: 0x01–0xFE; 0x00 is the DH).
const NFCEE: u8 = 0x02;

/// Builder, rules, build: one routing stage of the controller.
fn build(rules: &[RoutingRule]) -> Option<RoutingTable> {
    let mut builder = RoutingTableBuilder::new(RoutingLimits::PN7150);
    for rule in rules {
        builder.add(rule.clone()).ok()?;
    }
    builder.build().ok()
}

fn host_rules() -> Vec<RoutingRule> {
    Config::default().routes.to_vec()
}

/// 61 distinct 16-octet AIDs routed to the NFCEE, then the host rules: 64 rules in all.
fn off_host_rules() -> Vec<RoutingRule> {
    let host = host_rules();
    let aids = MAX_RULES - host.len();
    let mut rules: Vec<RoutingRule> = (0..aids)
        .map(|i| {
            let mut bytes = [
                0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
            ];
            bytes[15] = i as u8;
            RoutingRule::Aid {
                route: NFCEE,
                power_state: PowerState::SWITCHED_ON,
                aid: Aid::new(&bytes).expect("16 octets is a valid AID length"),
                matching: AidMatch::Exact,
            }
        })
        .collect();
    rules.extend(host);
    rules
}

#[divan::bench(sample_size = 1024)]
fn host_only(bencher: Bencher) {
    let rules = host_rules();
    let table = build(&rules).expect("the default routes build");
    assert_eq!(table.mode(), RoutingMode::Mixed);
    assert_eq!(table.encoded_len(), 15);
    bencher.bench_local(|| build(black_box(&rules)));
}

#[divan::bench(sample_size = 64)]
fn off_host_aids_fallback(bencher: Bencher) {
    let rules = off_host_rules();
    assert_eq!(rules.len(), MAX_RULES);
    let table = build(&rules).expect("protocol mode fits");
    assert_eq!(table.mode(), RoutingMode::Protocol);
    assert_eq!(table.encoded_len(), 15);
    bencher.bench_local(|| build(black_box(&rules)));
}

//! Micro-benchmarks of host card emulation routing: AID resolution in a registry of 1,000 AIDs
//! and the per-APDU decision of a card session (ISO/IEC 7816-4 §11.2.2 SELECT by DF name).
//!
//! The registry: 10 `other` services of 100 AIDs each, 1,000 in all — per service 85 exact AIDs
//! of 8 octets, 10 prefix AIDs of 5 to 8 octets (four distinct prefix lengths, so four lookups
//! in the prefix index) and 5 subset AIDs of 12 octets.
//!
//! What is measured: [`Registry::resolve`] of a name that hits an exact AID, one that hits only a
//! prefix AID, and one that matches nothing (the `6A82` path); [`Session::on_apdu`] of a SELECT
//! (parse, classify, resolve, selection change) and of a READ RECORD forwarded to the selected
//! service. What is not: D-Bus, the wallet, the controller.
//!
//! Run: `cargo bench -p nfcd --bench hce`. Target (doc/performance.md): AID resolution
//! ≤ 1 µs with 1,000 AIDs.

use divan::{black_box, Bencher};
use nfcd::hce::{
    AccessPolicy, Action, Aid, Caller, Category, Defaults, LockState, Registry, ServiceKey,
    ServiceOptions, Session,
};

fn main() {
    divan::main();
}

const SERVICES: u8 = 10;

/// An exact AID of service 5: `F0 05 00 00 00 30 10 10`.
const EXACT_HIT: [u8; 8] = [0xF0, 0x05, 0x00, 0x00, 0x00, 0x30, 0x10, 0x10];
/// Longer than, and starting with, the 8-octet prefix AID `E0 03 03 01 02 03 04 05` of
/// service 3; no exact entry has these octets.
const PREFIX_HIT: [u8; 10] = [0xE0, 0x03, 0x03, 0x01, 0x02, 0x03, 0x04, 0x05, 0x99, 0x01];
/// The Mastercard RID and PIX (`A0 00 00 00 04 10 10`): nobody registered it.
const MISS: [u8; 7] = [0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10];

fn aid(bytes: &[u8]) -> Aid {
    Aid::from_bytes(bytes).expect("5 to 16 octets")
}

fn key(service: u8) -> ServiceKey {
    ServiceKey::new(":1.42", format!("/org/example/wallet/s{service}"))
}

/// The registry described in the module documentation.
fn registry() -> Registry {
    let mut reg = Registry::new(AccessPolicy::default(), Defaults::default());
    let caller = Caller {
        uid: 1000,
        gids: vec![1000],
    };
    for s in 0..SERVICES {
        let mut opts = ServiceOptions::new(format!("org.example.s{s}"), Category::Other);
        for i in 0..85u16 {
            let [hi, lo] = i.to_be_bytes();
            opts.aids
                .push(aid(&[0xF0, s, 0x00, hi, lo, 0x30, 0x10, 0x10]));
        }
        for i in 0..10u8 {
            let len = 5 + usize::from(i % 4);
            let bytes = [0xE0, s, i, 0x01, 0x02, 0x03, 0x04, 0x05];
            opts.prefix_aids.push(aid(&bytes[..len]));
        }
        for i in 0..5u8 {
            opts.subset_aids
                .push(aid(&[0xD0, s, i, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
        }
        let registered = reg.register(key(s), opts, &caller);
        assert!(registered.is_ok(), "{registered:?}");
    }
    assert_eq!(reg.aid_count(), 1000);
    reg
}

/// `Registry::resolve`: the index lookups and ranking for one SELECT by DF name.
#[divan::bench_group(sample_size = 1024)]
mod resolve {
    use super::*;

    fn bench_resolve(bencher: Bencher, name: &[u8], expect: Option<ServiceKey>) {
        let reg = registry();
        let lock = LockState::Unlocked;
        assert_eq!(reg.resolve(name, false, &lock).key(), expect.as_ref());
        bencher.bench_local(|| reg.resolve(black_box(name), false, &lock));
    }

    #[divan::bench]
    fn exact_hit(bencher: Bencher) {
        bench_resolve(bencher, &EXACT_HIT, Some(key(5)));
    }

    #[divan::bench]
    fn prefix_hit(bencher: Bencher) {
        bench_resolve(bencher, &PREFIX_HIT, Some(key(3)));
    }

    #[divan::bench]
    fn miss(bencher: Bencher) {
        bench_resolve(bencher, &MISS, None);
    }
}

/// SELECT by DF name of [`EXACT_HIT`], first occurrence, Le 00.
fn select_exact_hit() -> Vec<u8> {
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, EXACT_HIT.len() as u8];
    apdu.extend_from_slice(&EXACT_HIT);
    apdu.push(0x00);
    apdu
}

/// READ RECORD 1 of SFI 1, Le 00 (ISO/IEC 7816-4 §11.3.3): not a SELECT.
const READ_RECORD: [u8; 5] = [0x00, 0xB2, 0x01, 0x0C, 0x00];

/// `Session::on_apdu`: what the daemon decides for each command APDU of a tap.
#[divan::bench_group(sample_size = 1024)]
mod on_apdu {
    use super::*;

    /// Repeated SELECT of the same application: parse, classify, resolve, forward.
    #[divan::bench]
    fn select(bencher: Bencher) {
        let reg = registry();
        let lock = LockState::Unlocked;
        let apdu = select_exact_hit();
        let mut session = Session::new();
        let forward = Action::Forward {
            to: key(5),
            deselected: None,
        };
        assert_eq!(session.on_apdu(&reg, &apdu, &lock), forward);
        assert_eq!(session.on_apdu(&reg, &apdu, &lock), forward);
        bencher.bench_local(|| session.on_apdu(&reg, black_box(&apdu), &lock));
    }

    /// A command after the SELECT goes to the selected service.
    #[divan::bench]
    fn non_select(bencher: Bencher) {
        let reg = registry();
        let lock = LockState::Unlocked;
        let mut session = Session::new();
        let forward = Action::Forward {
            to: key(5),
            deselected: None,
        };
        assert_eq!(session.on_apdu(&reg, &select_exact_hit(), &lock), forward);
        assert_eq!(session.on_apdu(&reg, &READ_RECORD, &lock), forward);
        bencher.bench_local(|| session.on_apdu(&reg, black_box(&READ_RECORD), &lock));
    }
}

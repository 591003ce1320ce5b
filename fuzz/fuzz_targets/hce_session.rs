//! Host card emulation: a `nfcd::hce::Registry` with registrations built from the input, then a
//! tap's worth of APDUs through `nfcd::hce::Session::on_apdu`, interleaved with what happens
//! around a tap (lock and unlock, a wallet failing, leaving the bus or registering, defaults
//! and the preferred service changing).
//!
//! Input: a few registrations, then a sequence of operations (see `fuzz_target!` below). AIDs
//! come from a small alphabet on three RIDs so that exact, prefix and subset entries of
//! different services overlap; SELECT commands name registered AIDs, truncated or extended.
//!
//! Checks: it never panics. Every reply is one of the status words the session documents
//! (6700, 6F00, 6A82, 6982, 6A86, 6E00, 6D00 — ISO/IEC 7816-4 §5.6); a command with CLA `FF`
//! or INS `6X`/`9X` gets 6E00 / 6D00 whatever is selected. A forwarded APDU goes to a registered
//! service; after a SELECT it becomes the selected one and the previous one, if different, is
//! the one deselected; any other command goes to the selected service. A SELECT for the first
//! occurrence (ISO/IEC 7816-4 §11.2.2) reaches exactly the service a plain linear reading of
//! the registry's documented rules picks (category order, specificity, default / preferred,
//! registration order, lock state), so the sorted index behind `Registry::resolve` is checked
//! against that reading; a next-occurrence SELECT reaches a usable service that matches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libnci::apdu::{select_by_df_name, CommandApdu, StatusWord};
use nfcd::hce::registry::MAX_AIDS_PER_SERVICE;
use nfcd::hce::{
    AccessPolicy, Action, Aid, AidKind, Caller, Category, Defaults, LockState, Principal, Registry,
    Service, ServiceKey, ServiceOptions, Session,
};
use nfcd_fuzz::Input;

const OWNERS: [&str; 3] = [":1.7", ":1.8", ":1.9"];
const RIDS: [[u8; 5]; 3] = [
    [0xA0, 0x00, 0x00, 0x00, 0x03],
    [0xA0, 0x00, 0x00, 0x00, 0x04],
    [0xF0, 0x00, 0x00, 0x00, 0x01],
];
const REPLIES: [u16; 7] = [0x6700, 0x6F00, 0x6A82, 0x6982, 0x6A86, 0x6E00, 0x6D00];

/// An AID-like name: one of the RIDs and a short tail from a four-letter alphabet, so names
/// collide and nest often. Lengths run from 3 to 18 so invalid ones occur too.
fn name(input: &mut Input<'_>) -> Vec<u8> {
    let shape = input.u8();
    let mut bytes = RIDS[usize::from(shape % 3)].to_vec();
    let len = 3 + usize::from(shape / 3) % 16;
    while bytes.len() < len {
        bytes.push(input.u8() & 0x03);
    }
    bytes.truncate(len);
    bytes
}

fn registration(input: &mut Input<'_>, n: usize) -> (ServiceKey, ServiceOptions) {
    let flags = input.u8();
    let key = ServiceKey::new(OWNERS[usize::from(flags % 3)], format!("/card{}", n % 5));
    let category = match (flags >> 2) % 3 {
        0 => Category::Payment,
        1 => Category::Transit,
        _ => Category::Other,
    };
    let mut opts = ServiceOptions::new(format!("com.example.card{}", input.u8() % 6), category);
    opts.requires_unlock = flags & 0x10 != 0;
    opts.express = flags & 0x20 != 0;
    let aids = usize::from(input.u8() % 6);
    for _ in 0..aids {
        let kind = input.u8();
        let Ok(aid) = Aid::from_bytes(&name(input)) else {
            continue;
        };
        match kind % 3 {
            0 => opts.aids.push(aid),
            1 => opts.prefix_aids.push(aid),
            _ => opts.subset_aids.push(aid),
        }
    }
    (key, opts)
}

/// How specifically an entry matches a selected name (documented order: subset < prefix,
/// longer prefix first < same bytes).
fn entry_rank(kind: AidKind, aid: &[u8], name: &[u8]) -> Option<(u8, usize)> {
    if aid == name {
        return Some((2, 0));
    }
    match kind {
        AidKind::Exact => None,
        AidKind::Prefix => name.starts_with(aid).then_some((1, aid.len())),
        AidKind::Subset => aid.starts_with(name).then_some((0, 0)),
    }
}

fn service_rank(service: &Service, name: &[u8]) -> Option<(u8, usize)> {
    service
        .options
        .all_aids()
        .filter_map(|(kind, aid)| entry_rank(kind, aid.as_bytes(), name))
        .max()
}

/// What the documented rules say a first-occurrence SELECT of `name` reaches.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Service(ServiceKey),
    LockedOut(ServiceKey),
    NotFound,
}

fn usable(service: &Service, lock: LockState) -> bool {
    lock == LockState::Unlocked
        || !service.options.requires_unlock
        || (service.options.category == Category::Transit && service.options.express)
}

fn expected(reg: &Registry, name: &[u8], lock: LockState) -> Expected {
    if !(5..=16).contains(&name.len()) {
        return Expected::NotFound;
    }
    let services: Vec<&Service> = reg.services().map(|(_, s)| s).collect();
    let with_id = |id: &Option<String>, category| {
        id.as_ref().and_then(|id| {
            services
                .iter()
                .position(|s| &s.options.id == id && s.options.category == category)
        })
    };
    let payment_default = match &reg.defaults().payment {
        Some(_) => with_id(&reg.defaults().payment, Category::Payment),
        None => {
            let payment: Vec<usize> = (0..services.len())
                .filter(|&i| services[i].options.category == Category::Payment)
                .collect();
            match payment[..] {
                [only] => Some(only),
                _ => None,
            }
        }
    };
    let transit_default = with_id(&reg.defaults().transit, Category::Transit);
    let preferred = reg
        .preferred()
        .and_then(|key| services.iter().position(|s| &s.key == key));

    let best = |want_usable: bool| {
        for category in [Category::Payment, Category::Transit, Category::Other] {
            let mut best: Option<((u8, usize), bool, std::cmp::Reverse<usize>)> = None;
            let mut chosen = None;
            for (pos, service) in services.iter().enumerate() {
                if service.options.category != category || usable(service, lock) != want_usable {
                    continue;
                }
                let favoured = match category {
                    Category::Payment if payment_default != Some(pos) => continue,
                    Category::Payment => true,
                    Category::Transit => transit_default == Some(pos),
                    Category::Other => preferred == Some(pos),
                };
                let Some(rank) = service_rank(service, name) else {
                    continue;
                };
                let order = (rank, favoured, std::cmp::Reverse(pos));
                if best.is_none_or(|b| order > b) {
                    best = Some(order);
                    chosen = Some(service.key.clone());
                }
            }
            if chosen.is_some() {
                return chosen;
            }
        }
        None
    };
    match (best(true), best(false)) {
        (Some(key), _) => Expected::Service(key),
        (None, Some(key)) => Expected::LockedOut(key),
        (None, None) => Expected::NotFound,
    }
}

/// A command APDU: raw bytes, a SELECT by DF name of a registered-looking name, or another
/// command an EMV or transit reader sends.
fn apdu(input: &mut Input<'_>) -> Vec<u8> {
    match input.u8() % 4 {
        0 => input.len_prefixed().to_vec(),
        1 | 2 => {
            let name = name(input);
            let p2 = match input.u8() {
                0..=127 => 0x00,
                128..=191 => 0x02,
                p2 => p2 & 0x1F,
            };
            let cla = if input.u8() < 240 { 0x00 } else { 0x80 };
            let mut apdu = vec![cla, 0xA4, 0x04, p2, name.len() as u8];
            apdu.extend_from_slice(&name);
            if input.bool() {
                apdu.push(0x00);
            }
            apdu
        }
        _ => [
            &[0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00][..],
            &[0x00, 0xB2, 0x01, 0x0C, 0x00],
            &[0x80, 0xCA, 0x9F, 0x17, 0x00],
            &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x3F, 0x00],
            // Invalid class and instructions (ISO/IEC 7816-4 §5.4.1-§5.4.2), a chain link.
            &[0xFF, 0xCA, 0x9F, 0x36, 0x00],
            &[0x00, 0x6C, 0x00, 0x00],
            &[0x10, 0xDA, 0x01, 0x00, 0x01, 0x5A],
        ][usize::from(input.u8() % 7)]
        .to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let policy_flags = input.u8();
    let policy = AccessPolicy {
        payment: if policy_flags & 1 != 0 {
            vec![Principal::Uid(0)]
        } else {
            Vec::new()
        },
        transit: if policy_flags & 2 != 0 {
            vec![Principal::Gid(100)]
        } else {
            Vec::new()
        },
    };
    let defaults = Defaults {
        payment: (policy_flags & 4 != 0).then(|| "com.example.card0".to_owned()),
        transit: (policy_flags & 8 != 0).then(|| "com.example.card1".to_owned()),
    };
    let caller = Caller {
        uid: 1000,
        gids: vec![100],
    };
    let mut reg = Registry::new(policy, defaults);
    let mut registered = 0;
    for n in 0..usize::from(input.u8() % 8) {
        let (key, opts) = registration(&mut input, n);
        assert!(opts.aid_count() <= MAX_AIDS_PER_SERVICE);
        if reg.register(key, opts, &caller).is_ok() {
            registered += 1;
        }
    }

    let mut session = Session::new();
    let mut lock = LockState::Unlocked;
    while !input.is_empty() {
        match input.u8() % 10 {
            0..=4 => {
                let apdu = apdu(&mut input);
                let before = session.selected().cloned();
                let select = CommandApdu::parse(&apdu)
                    .ok()
                    .and_then(|c| select_by_df_name(&c));
                let invalid = CommandApdu::parse(&apdu)
                    .ok()
                    .and_then(|c| c.header_error());
                let action = session.on_apdu(&reg, &apdu, &lock);
                if let Some(invalid) = invalid {
                    // ISO/IEC 7816-4 §5.4.1-§5.4.2: refused before anything else.
                    assert_eq!(action, Action::Reply(invalid.status_word()));
                }
                match &action {
                    Action::Reply(sw) => {
                        assert!(REPLIES.contains(&sw.0), "reply {sw}");
                        assert_eq!(
                            session.selected(),
                            before.as_ref(),
                            "a reply keeps the selection"
                        );
                    }
                    Action::Forward { to, deselected } => {
                        let service = reg.get(to).expect("forwarded to a registered service");
                        assert_eq!(session.selected(), Some(to));
                        match &select {
                            None => {
                                assert_eq!(before.as_ref(), Some(to));
                                assert_eq!(deselected, &None);
                            }
                            Some(select) => {
                                assert!(usable(service, lock), "{to} is not usable");
                                assert!(service_rank(service, select.name).is_some());
                                let changed = before.as_ref().filter(|&b| b != to);
                                assert_eq!(deselected.as_ref(), changed);
                            }
                        }
                    }
                }
                if let Some(select) = select {
                    // "Next" walks on from the selection; with nothing selected it is "first".
                    if !select.is_next_occurrence() || before.is_none() {
                        let want = expected(&reg, select.name, lock);
                        match (&action, &want) {
                            (Action::Forward { to, .. }, Expected::Service(key)) => {
                                assert_eq!(to, key, "SELECT {:02X?}", select.name)
                            }
                            (Action::Reply(sw), Expected::LockedOut(_)) => {
                                assert_eq!(*sw, StatusWord::SECURITY_STATUS_NOT_SATISFIED)
                            }
                            (Action::Reply(sw), Expected::NotFound) => {
                                assert_eq!(*sw, StatusWord::FILE_NOT_FOUND)
                            }
                            _ => panic!(
                                "SELECT {:02X?}: {action:?}, rules say {want:?}",
                                select.name
                            ),
                        }
                    }
                }
            }
            5 => {
                lock = if lock == LockState::Unlocked {
                    LockState::Locked
                } else {
                    LockState::Unlocked
                }
            }
            6 => {
                let action = session.on_app_failed();
                assert_eq!(action, Action::Reply(StatusWord::NO_PRECISE_DIAGNOSIS));
                assert_eq!(session.selected(), None);
            }
            7 => {
                let owner = OWNERS[usize::from(input.u8() % 3)];
                for key in reg.remove_owner(owner) {
                    session.on_service_removed(&key);
                }
                assert!(session.selected().is_none_or(|k| reg.get(k).is_some()));
            }
            8 => {
                let (key, opts) = registration(&mut input, registered);
                if reg.register(key, opts, &caller).is_ok() {
                    registered += 1;
                }
            }
            _ => {
                let id = format!("com.example.card{}", input.u8() % 6);
                match input.u8() % 4 {
                    0 => {
                        let _ = reg.set_default(Category::Payment, &id);
                    }
                    1 => {
                        let _ = reg.set_default(Category::Transit, &id);
                    }
                    2 => {
                        let key = reg.get_by_id(&id).map(|s| s.key.clone());
                        if let Some(key) = key {
                            let _ = reg.set_preferred(&key);
                        }
                    }
                    _ => {
                        let key = reg.get_by_id(&id).map(|s| s.key.clone());
                        if let Some(key) = key {
                            if reg.unregister(&key).is_ok() {
                                session.on_service_removed(&key);
                            }
                        }
                    }
                }
            }
        }
    }
    let _ = session.end();
});

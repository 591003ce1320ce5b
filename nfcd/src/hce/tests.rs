//! Registry and session rules, one test per rule, without D-Bus.

use super::registry::{parse_aid_list, MAX_AIDS_PER_SERVICE, MAX_AIDS_TOTAL};
use super::*;
use libnci::apdu::StatusWord;
use std::collections::BTreeSet;

fn aid(hex: &str) -> Aid {
    hex.parse().unwrap()
}

fn key(owner: &str, path: &str) -> ServiceKey {
    ServiceKey::new(owner, path)
}

fn user() -> Caller {
    Caller {
        uid: 1000,
        gids: vec![1000, 100],
    }
}

/// Options builder for the tests.
struct Opts(ServiceOptions);

impl Opts {
    fn new(id: &str, category: Category) -> Opts {
        Opts(ServiceOptions::new(id, category))
    }
    fn exact(mut self, hex: &str) -> Opts {
        self.0.aids.push(aid(hex));
        self
    }
    fn prefix(mut self, hex: &str) -> Opts {
        self.0.prefix_aids.push(aid(hex));
        self
    }
    fn subset(mut self, hex: &str) -> Opts {
        self.0.subset_aids.push(aid(hex));
        self
    }
    fn unlock(mut self, requires_unlock: bool) -> Opts {
        self.0.requires_unlock = requires_unlock;
        self
    }
    fn express(mut self) -> Opts {
        self.0.express = true;
        self
    }
}

fn registry() -> Registry {
    Registry::new(AccessPolicy::default(), Defaults::default())
}

/// Register `opts` as `owner` at `/svc/<id>`; returns the key. Conflicts are checked by the
/// tests about them.
fn add(reg: &mut Registry, owner: &str, opts: Opts) -> ServiceKey {
    let k = key(owner, &format!("/svc/{}", opts.0.id.replace('.', "_")));
    let _conflicts = reg.register(k.clone(), opts.0, &user()).unwrap().conflicts;
    k
}

/// Id of the service a first-occurrence SELECT of `hex` reaches, if any.
fn winner(reg: &Registry, hex: &str, lock: LockState) -> Option<String> {
    let bytes = hex_bytes(hex);
    reg.resolve(&bytes, false, &lock)
        .key()
        .map(|k| reg.get(k).unwrap().options.id.clone())
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// `00 A4 04 00 Lc <name> 00`: SELECT by DF name, first occurrence, FCI, Le 256.
fn select(hex: &str) -> Vec<u8> {
    let name = hex_bytes(hex);
    let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, name.len() as u8];
    apdu.extend(name);
    apdu.push(0x00);
    apdu
}

const UNLOCKED: LockState = LockState::Unlocked;
const LOCKED: LockState = LockState::Locked;

// ---------------------------------------------------------------- registration errors

#[test]
fn hce_register_not_authorized() {
    let policy = AccessPolicy {
        payment: vec![Principal::Gid(500)],
        transit: vec![Principal::Uid(2000)],
    };
    let mut reg = Registry::new(policy, Defaults::default());
    let k = key(":1.1", "/a");
    let pay = Opts::new("com.example.pay", Category::Payment).exact("A0000000041010");
    assert_eq!(
        reg.register(k.clone(), pay.0.clone(), &user()),
        Err(RegisterError::NotAuthorized {
            category: Category::Payment
        })
    );
    let transit = Opts::new("org.example.metro", Category::Transit).exact("A000000404");
    assert_eq!(
        reg.register(k.clone(), transit.0.clone(), &user()),
        Err(RegisterError::NotAuthorized {
            category: Category::Transit
        })
    );
    // A supplementary group grants payment, the uid grants transit, other is open.
    let wallet_group = Caller {
        uid: 1000,
        gids: vec![1000, 500],
    };
    assert_eq!(
        reg.register(k.clone(), pay.0, &wallet_group),
        Ok(Registered::default())
    );
    let metro_user = Caller {
        uid: 2000,
        gids: vec![],
    };
    assert!(reg
        .register(key(":1.2", "/t"), transit.0, &metro_user)
        .is_ok());
    let other = Opts::new("org.example.door", Category::Other).exact("F000000001");
    assert!(reg.register(key(":1.3", "/o"), other.0, &user()).is_ok());
    assert_eq!(
        RegisterError::NotAuthorized {
            category: Category::Payment
        }
        .to_string(),
        "not authorized to register payment services"
    );
}

#[test]
fn hce_register_key_and_id_errors() {
    let mut reg = registry();
    let k = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.door", Category::Other).exact("F000000001"),
    );
    let again = Opts::new("org.example.other", Category::Other).exact("F000000002");
    assert_eq!(
        reg.register(k.clone(), again.0, &user()),
        Err(RegisterError::AlreadyRegistered { key: k.clone() })
    );
    let same_id = Opts::new("org.example.door", Category::Other).exact("F000000002");
    let err = reg
        .register(key(":1.2", "/door"), same_id.0, &user())
        .unwrap_err();
    assert_eq!(
        err,
        RegisterError::IdInUse {
            id: "org.example.door".into(),
            key: k
        }
    );
    assert_eq!(
        err.to_string(),
        "Id \"org.example.door\" is already registered by :1.1 at /svc/org_example_door"
    );

    let empty = Opts::new("", Category::Other).exact("F000000002");
    assert_eq!(
        reg.register(key(":1.2", "/x"), empty.0, &user()),
        Err(RegisterError::EmptyId)
    );
    let spaced = Opts::new("org.example my", Category::Other).exact("F000000002");
    assert!(matches!(
        reg.register(key(":1.2", "/x"), spaced.0, &user()),
        Err(RegisterError::InvalidId { .. })
    ));
    let long = Opts::new(&"a".repeat(256), Category::Other).exact("F000000002");
    assert!(matches!(
        reg.register(key(":1.2", "/x"), long.0, &user()),
        Err(RegisterError::InvalidId { reason, .. }) if reason.contains("255")
    ));
    let mut named = Opts::new("org.example.named", Category::Other).exact("F000000002");
    named.0.name = "n".repeat(256);
    assert_eq!(
        reg.register(key(":1.2", "/x"), named.0, &user()),
        Err(RegisterError::NameTooLong { len: 256 })
    );
    // Nothing of the refused registrations stayed.
    assert_eq!(reg.services().count(), 1);
    assert_eq!(reg.aid_count(), 1);
}

#[test]
fn hce_register_option_errors() {
    let mut reg = registry();
    let k = key(":1.1", "/x");
    let express_other = Opts::new("org.example.x", Category::Other)
        .exact("F000000001")
        .express();
    assert_eq!(
        reg.register(k.clone(), express_other.0, &user()),
        Err(RegisterError::ExpressNotTransit {
            category: Category::Other
        })
    );
    let none = Opts::new("org.example.x", Category::Other);
    let err = reg.register(k.clone(), none.0, &user()).unwrap_err();
    assert_eq!(err, RegisterError::NoAids);
    assert_eq!(
        err.to_string(),
        "no AIDs: give at least one in Aids, PrefixAids or SubsetAids"
    );

    let twice = Opts::new("org.example.x", Category::Other)
        .exact("F000000001")
        .exact("F000000002")
        .exact("F000000001");
    let err = reg.register(k.clone(), twice.0, &user()).unwrap_err();
    assert_eq!(
        err,
        RegisterError::DuplicateAid {
            aid: aid("F000000001"),
            first: AidKind::Exact,
            second: AidKind::Exact
        }
    );
    assert_eq!(err.to_string(), "AID F000000001 appears twice in Aids");
    let across = Opts::new("org.example.x", Category::Other)
        .exact("F000000001")
        .prefix("F000000001");
    let err = reg.register(k.clone(), across.0, &user()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "AID F000000001 appears in both Aids and PrefixAids"
    );

    let mut many = Opts::new("org.example.x", Category::Other);
    for i in 0..=MAX_AIDS_PER_SERVICE as u32 {
        many.0
            .aids
            .push(Aid::from_bytes(&[&[0xF0][..], &i.to_be_bytes()].concat()).unwrap());
    }
    assert_eq!(
        reg.register(k, many.0, &user()),
        Err(RegisterError::TooManyAids { count: 257 })
    );
}

#[test]
fn hce_register_invalid_aid_list() {
    let raw: Vec<Vec<u8>> = vec![
        vec![0xA0, 0, 0, 0, 0x04],
        vec![0xA0, 0, 0, 0],
        vec![0xA0; 17],
    ];
    let err = parse_aid_list(AidKind::Prefix, &raw).unwrap_err();
    assert_eq!(
        err,
        RegisterError::InvalidAid {
            kind: AidKind::Prefix,
            index: 1,
            error: AidError::TooShort { len: 4 }
        }
    );
    assert_eq!(
        err.to_string(),
        "PrefixAids entry 1: AID of 4 bytes is too short: ISO/IEC 7816-4 AIDs are 5 to 16 bytes"
    );
    let err = parse_aid_list(AidKind::Exact, &raw[2..]).unwrap_err();
    assert!(matches!(
        err,
        RegisterError::InvalidAid {
            index: 0,
            error: AidError::TooLong { len: 17 },
            ..
        }
    ));
    assert_eq!(
        parse_aid_list(AidKind::Exact, &raw[..1]).unwrap(),
        vec![aid("A000000004")]
    );
}

#[test]
fn hce_register_daemon_aid_limit() {
    let mut reg = registry();
    let services = MAX_AIDS_TOTAL / MAX_AIDS_PER_SERVICE;
    for s in 0..services as u32 {
        let mut opts = Opts::new(&format!("org.example.s{s}"), Category::Other);
        for i in 0..MAX_AIDS_PER_SERVICE as u32 {
            opts.0
                .aids
                .push(Aid::from_bytes(&[&s.to_be_bytes()[..], &i.to_be_bytes()].concat()).unwrap());
        }
        let registered = reg.register(key(":1.1", &format!("/s{s}")), opts.0, &user());
        assert_eq!(registered, Ok(Registered::default()));
    }
    assert_eq!(reg.aid_count(), MAX_AIDS_TOTAL);
    let one_more = Opts::new("org.example.last", Category::Other).exact("F0F0F0F0F0");
    let err = reg
        .register(key(":1.2", "/last"), one_more.0, &user())
        .unwrap_err();
    assert_eq!(
        err,
        RegisterError::DaemonAidLimit {
            registered: 4096,
            requested: 1
        }
    );
    // Room comes back when a service goes.
    reg.unregister(&key(":1.1", "/s0")).unwrap();
    let one_more = Opts::new("org.example.last", Category::Other).exact("F0F0F0F0F0");
    assert!(reg
        .register(key(":1.2", "/last"), one_more.0, &user())
        .is_ok());
}

#[test]
fn hce_unregister_and_remove_owner() {
    let mut reg = registry();
    let a1 = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.a1", Category::Other).exact("F000000001"),
    );
    let a2 = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.a2", Category::Other).exact("F000000002"),
    );
    let b = add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.b", Category::Other).exact("F000000003"),
    );
    reg.set_preferred(&a2).unwrap();

    let missing = key(":1.9", "/nope");
    assert_eq!(
        reg.unregister(&missing),
        Err(RegisterError::NotRegistered {
            key: missing.clone()
        })
    );
    assert_eq!(reg.remove_owner(":1.1"), vec![a1.clone(), a2.clone()]);
    assert_eq!(
        reg.preferred(),
        None,
        "preferred service left with its owner"
    );
    assert_eq!(winner(&reg, "F000000001", UNLOCKED), None);
    assert_eq!(
        winner(&reg, "F000000003", UNLOCKED).as_deref(),
        Some("org.example.b")
    );
    assert!(reg.remove_owner(":1.1").is_empty());

    let service = reg.unregister(&b).unwrap();
    assert_eq!(service.options.id, "org.example.b");
    assert_eq!(reg.services().count(), 0);
    assert_eq!(reg.aid_count(), 0);
    // The Id is free again.
    add(
        &mut reg,
        ":1.3",
        Opts::new("org.example.b", Category::Other).exact("F000000003"),
    );
}

// ---------------------------------------------------------------- matching

#[test]
fn hce_match_exact_prefix_subset() {
    let mut reg = registry();
    add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.exact", Category::Other).exact("F0010203040506"),
    );
    add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.mc", Category::Other).prefix("A000000004"),
    );
    add(
        &mut reg,
        ":1.3",
        Opts::new("org.example.subset", Category::Other).subset("F1020304050607080910"),
    );

    // Exact: only the very bytes.
    assert_eq!(
        winner(&reg, "F0010203040506", UNLOCKED).as_deref(),
        Some("org.example.exact")
    );
    assert_eq!(winner(&reg, "F001020304", UNLOCKED), None);
    assert_eq!(winner(&reg, "F001020304050607", UNLOCKED), None);

    // Prefix A000000004*: the prefix itself and everything longer under it.
    assert_eq!(
        winner(&reg, "A0000000041010", UNLOCKED).as_deref(),
        Some("org.example.mc")
    );
    assert_eq!(
        winner(&reg, "A000000004", UNLOCKED).as_deref(),
        Some("org.example.mc")
    );
    assert_eq!(
        winner(&reg, "A0000000049999AABBCCDDEEFF001122", UNLOCKED).as_deref(),
        Some("org.example.mc")
    );
    assert_eq!(winner(&reg, "A0000000031010", UNLOCKED), None);

    // Subset: the full AID and every truncation of at least 5 bytes.
    assert_eq!(
        winner(&reg, "F1020304050607080910", UNLOCKED).as_deref(),
        Some("org.example.subset")
    );
    assert_eq!(
        winner(&reg, "F102030405", UNLOCKED).as_deref(),
        Some("org.example.subset")
    );
    assert_eq!(
        winner(&reg, "F10203040506", UNLOCKED).as_deref(),
        Some("org.example.subset")
    );
    assert_eq!(winner(&reg, "F1020304050607080910FF", UNLOCKED), None);
    assert_eq!(winner(&reg, "F102030406", UNLOCKED), None);

    // Selected names outside 5..=16 bytes match nothing, not even under a prefix.
    assert_eq!(winner(&reg, "F1020304", UNLOCKED), None);
    assert_eq!(winner(&reg, "A0000000", UNLOCKED), None);
    assert_eq!(
        winner(&reg, "A000000004000000000000000000000000", UNLOCKED),
        None
    );
}

#[test]
fn hce_match_resolution_details() {
    let mut reg = registry();
    let mc = add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.mc", Category::Other).prefix("A000000004"),
    );
    assert_eq!(
        reg.resolve(&hex_bytes("A0000000041010"), false, &UNLOCKED),
        Resolution::Service {
            key: mc,
            category: Category::Other,
            kind: AidKind::Prefix,
            aid: aid("A000000004"),
        }
    );
    assert_eq!(
        reg.resolve(&hex_bytes("A0000000031010"), false, &UNLOCKED),
        Resolution::NotFound
    );
}

#[test]
fn hce_match_specificity_within_category() {
    let mut reg = registry();
    // Registered in the opposite order of specificity, so "earliest wins" cannot explain it.
    add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.subset", Category::Other).subset("A0000000041010FFFF"),
    );
    add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.short", Category::Other).prefix("A000000004"),
    );
    add(
        &mut reg,
        ":1.3",
        Opts::new("org.example.long", Category::Other).prefix("A00000000410"),
    );
    add(
        &mut reg,
        ":1.4",
        Opts::new("org.example.exact", Category::Other).exact("A0000000041010"),
    );
    assert_eq!(
        winner(&reg, "A0000000041010", UNLOCKED).as_deref(),
        Some("org.example.exact")
    );
    assert_eq!(
        winner(&reg, "A0000000041020", UNLOCKED).as_deref(),
        Some("org.example.long")
    );
    assert_eq!(
        winner(&reg, "A0000000042010", UNLOCKED).as_deref(),
        Some("org.example.short")
    );
    // A prefix beats a subset match of a truncated name...
    assert_eq!(
        winner(&reg, "A0000000041010FF", UNLOCKED).as_deref(),
        Some("org.example.long")
    );
    // ...but a subset AID selected in full is an equal match and beats any shorter prefix.
    assert_eq!(
        winner(&reg, "A0000000041010FFFF", UNLOCKED).as_deref(),
        Some("org.example.subset")
    );
    // The subset AID below every prefix: A000000004 is equal for the short prefix.
    assert_eq!(
        winner(&reg, "A000000004", UNLOCKED).as_deref(),
        Some("org.example.short")
    );
}

#[test]
fn hce_match_16_byte_aid() {
    let mut reg = registry();
    add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.long", Category::Other).exact("F00102030405060708090A0B0C0D0E0F"),
    );
    add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.p16", Category::Other).prefix("E00102030405060708090A0B0C0D0E0F"),
    );
    assert_eq!(
        winner(&reg, "F00102030405060708090A0B0C0D0E0F", UNLOCKED).as_deref(),
        Some("org.example.long")
    );
    assert_eq!(
        winner(&reg, "F00102030405060708090A0B0C0D0E", UNLOCKED),
        None
    );
    assert_eq!(
        winner(&reg, "E00102030405060708090A0B0C0D0E0F", UNLOCKED).as_deref(),
        Some("org.example.p16")
    );
}

#[test]
fn hce_match_256_aids_all_resolvable() {
    let mut reg = registry();
    let mut opts = Opts::new("org.example.many", Category::Other);
    let aids: Vec<Aid> = (0..256u32)
        .map(|i| {
            Aid::from_bytes(&[&[0xF0, 0x00, 0xCA, 0xFE][..], &i.to_be_bytes()].concat()).unwrap()
        })
        .collect();
    assert!(aids.iter().all(|a| a.len() == 8));
    opts.0.aids = aids.clone();
    add(&mut reg, ":1.1", opts);
    // A neighbour whose AIDs interleave with them in sort order.
    let mut neighbour = Opts::new("org.example.neighbour", Category::Other);
    neighbour.0.aids = (0..256u32)
        .map(|i| {
            Aid::from_bytes(&[&[0xF0, 0x00, 0xCA, 0xFE][..], &(i + 1000).to_be_bytes()].concat())
                .unwrap()
        })
        .collect();
    add(&mut reg, ":1.2", neighbour);
    assert_eq!(reg.aid_count(), 512);
    for a in &aids {
        assert_eq!(
            winner(&reg, &a.to_string(), UNLOCKED).as_deref(),
            Some("org.example.many"),
            "{a}"
        );
    }
}

// ---------------------------------------------------------------- categories

#[test]
fn hce_payment_only_default_receives() {
    let mut reg = registry();
    let a = add(
        &mut reg,
        ":1.1",
        Opts::new("com.example.walleta", Category::Payment)
            .exact("325041592E5359532E4444463031")
            .exact("A0000000041010"),
    );
    // One payment service and no default chosen: it is the implicit default.
    assert_eq!(reg.effective_default(Category::Payment), Some(&a));
    assert_eq!(
        winner(&reg, "A0000000041010", UNLOCKED).as_deref(),
        Some("com.example.walleta")
    );

    // A second payment service: no implicit default any more, nobody gets payment AIDs.
    let registered = reg
        .register(
            key(":1.2", "/b"),
            Opts::new("com.example.walletb", Category::Payment)
                .exact("325041592E5359532E4444463031")
                .exact("A0000000041010")
                .0,
            &user(),
        )
        .unwrap();
    assert!(
        registered.conflicts.is_empty(),
        "payment overlap is resolved by the default"
    );
    assert_eq!(reg.effective_default(Category::Payment), None);
    assert_eq!(winner(&reg, "A0000000041010", UNLOCKED), None);

    // The user chooses b: only b receives, a gets nothing.
    reg.set_default(Category::Payment, "com.example.walletb")
        .unwrap();
    assert_eq!(
        reg.defaults().payment.as_deref(),
        Some("com.example.walletb")
    );
    assert_eq!(
        winner(&reg, "325041592E5359532E4444463031", UNLOCKED).as_deref(),
        Some("com.example.walletb")
    );

    // The chosen default leaves: a must not silently take over.
    reg.remove_owner(":1.2");
    assert_eq!(reg.effective_default(Category::Payment), None);
    assert_eq!(winner(&reg, "A0000000041010", UNLOCKED), None);
    // Until the user clears the choice.
    reg.clear_default(Category::Payment).unwrap();
    assert_eq!(
        winner(&reg, "A0000000041010", UNLOCKED).as_deref(),
        Some("com.example.walleta")
    );
}

#[test]
fn hce_payment_persisted_default_applies_on_registration() {
    let defaults = Defaults {
        payment: Some("com.example.walletb".into()),
        transit: None,
    };
    let mut reg = Registry::new(AccessPolicy::default(), defaults);
    add(
        &mut reg,
        ":1.1",
        Opts::new("com.example.walleta", Category::Payment).exact("A0000000041010"),
    );
    assert_eq!(winner(&reg, "A0000000041010", UNLOCKED), None);
    add(
        &mut reg,
        ":1.2",
        Opts::new("com.example.walletb", Category::Payment).exact("A0000000041010"),
    );
    assert_eq!(
        winner(&reg, "A0000000041010", UNLOCKED).as_deref(),
        Some("com.example.walletb")
    );
}

#[test]
fn hce_set_default_errors() {
    let mut reg = registry();
    add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.metro", Category::Transit).exact("A000000404"),
    );
    let err = reg
        .set_default(Category::Payment, "org.example.metro")
        .unwrap_err();
    assert_eq!(
        err,
        RegisterError::WrongCategory {
            id: "org.example.metro".into(),
            requested: Category::Payment,
            registered: Category::Transit
        }
    );
    assert_eq!(
        err.to_string(),
        "service \"org.example.metro\" is a transit service, not payment"
    );
    assert_eq!(
        reg.set_default(Category::Transit, "org.example.nope"),
        Err(RegisterError::UnknownId {
            id: "org.example.nope".into()
        })
    );
    assert_eq!(
        reg.set_default(Category::Other, "org.example.metro"),
        Err(RegisterError::NoDefaultForCategory {
            category: Category::Other
        })
    );
    assert_eq!(
        reg.clear_default(Category::Other),
        Err(RegisterError::NoDefaultForCategory {
            category: Category::Other
        })
    );
    assert_eq!(reg.defaults(), &Defaults::default());
    reg.set_default(Category::Transit, "org.example.metro")
        .unwrap();
    assert_eq!(reg.defaults().transit.as_deref(), Some("org.example.metro"));
}

#[test]
fn hce_transit_default_wins_conflicts() {
    let mut reg = registry();
    add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.metro", Category::Transit).exact("A000000404"),
    );
    let registered = reg
        .register(
            key(":1.2", "/bus"),
            Opts::new("org.example.bus", Category::Transit)
                .exact("A000000404")
                .exact("A000000405")
                .0,
            &user(),
        )
        .unwrap();
    assert_eq!(
        registered.conflicts,
        vec![Conflict {
            aid: aid("A000000404"),
            ids: vec!["org.example.metro".into(), "org.example.bus".into()]
        }]
    );
    // No default: earliest registration wins; non-overlapping AIDs go to their owner.
    assert_eq!(
        winner(&reg, "A000000404", UNLOCKED).as_deref(),
        Some("org.example.metro")
    );
    assert_eq!(
        winner(&reg, "A000000405", UNLOCKED).as_deref(),
        Some("org.example.bus")
    );
    reg.set_default(Category::Transit, "org.example.bus")
        .unwrap();
    assert_eq!(
        winner(&reg, "A000000404", UNLOCKED).as_deref(),
        Some("org.example.bus")
    );
    assert_eq!(
        reg.effective_default(Category::Transit)
            .map(|k| k.path.as_str()),
        Some("/bus")
    );
}

#[test]
fn hce_other_conflicts_and_preferred() {
    let mut reg = registry();
    let first = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.first", Category::Other).exact("F00000000101"),
    );
    let second_key = key(":1.2", "/second");
    let registered = reg
        .register(
            second_key.clone(),
            Opts::new("org.example.second", Category::Other)
                .prefix("F00000000101")
                .0,
            &user(),
        )
        .unwrap();
    // Exact F00000000101 and prefix F00000000101 tie when exactly that is selected.
    assert_eq!(
        registered.conflicts,
        vec![Conflict {
            aid: aid("F00000000101"),
            ids: vec!["org.example.first".into(), "org.example.second".into()]
        }]
    );
    assert_eq!(
        winner(&reg, "F00000000101", UNLOCKED).as_deref(),
        Some("org.example.first")
    );
    // Longer names only match the prefix.
    assert_eq!(
        winner(&reg, "F0000000010101", UNLOCKED).as_deref(),
        Some("org.example.second")
    );

    reg.set_preferred(&second_key).unwrap();
    assert_eq!(reg.preferred(), Some(&second_key));
    assert_eq!(
        winner(&reg, "F00000000101", UNLOCKED).as_deref(),
        Some("org.example.second")
    );
    // Another owner cannot clear it; its owner can.
    reg.clear_preferred(":1.1");
    assert_eq!(reg.preferred(), Some(&second_key));
    reg.clear_preferred(":1.2");
    assert_eq!(reg.preferred(), None);
    assert_eq!(
        winner(&reg, "F00000000101", UNLOCKED).as_deref(),
        Some("org.example.first")
    );

    // Preferring, then unregistering, forgets the preference.
    reg.set_preferred(&second_key).unwrap();
    reg.unregister(&second_key).unwrap();
    assert_eq!(reg.preferred(), None);
    assert_eq!(reg.effective_default(Category::Other), None);
    assert_eq!(
        winner(&reg, "F00000000101", UNLOCKED).as_deref(),
        Some("org.example.first")
    );
    let _ = first;
}

#[test]
fn hce_preferred_errors() {
    let mut reg = registry();
    let metro = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.metro", Category::Transit).exact("A000000404"),
    );
    assert_eq!(
        reg.set_preferred(&metro),
        Err(RegisterError::NotPreferable {
            category: Category::Transit
        })
    );
    let missing = key(":1.5", "/x");
    assert_eq!(
        reg.set_preferred(&missing),
        Err(RegisterError::NotRegistered { key: missing })
    );
}

#[test]
fn hce_no_conflict_when_specificity_decides() {
    let mut reg = registry();
    add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.broad", Category::Other).prefix("F000000001"),
    );
    let registered = reg
        .register(
            key(":1.2", "/narrow"),
            Opts::new("org.example.narrow", Category::Other)
                .exact("F00000000101")
                .0,
            &user(),
        )
        .unwrap();
    assert_eq!(registered.conflicts, vec![]);
    // Same AID in another category is not a conflict either: categories are ordered.
    let registered = reg
        .register(
            key(":1.3", "/t"),
            Opts::new("org.example.metro", Category::Transit)
                .exact("F00000000101")
                .0,
            &user(),
        )
        .unwrap();
    assert_eq!(registered.conflicts, vec![]);
}

#[test]
fn hce_subset_conflicts() {
    let mut reg = registry();
    add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.one", Category::Other).subset("F0010203040506AA"),
    );
    let registered = reg
        .register(
            key(":1.2", "/two"),
            Opts::new("org.example.two", Category::Other)
                .subset("F0010203040506BB")
                .0,
            &user(),
        )
        .unwrap();
    // F0010203040506 (and any shorter truncation down to the RID) selects both equally.
    assert_eq!(
        registered.conflicts,
        vec![Conflict {
            aid: aid("F0010203040506"),
            ids: vec!["org.example.one".into(), "org.example.two".into()]
        }]
    );
    assert_eq!(
        winner(&reg, "F0010203040506", UNLOCKED).as_deref(),
        Some("org.example.one")
    );
    assert_eq!(
        winner(&reg, "F0010203040506BB", UNLOCKED).as_deref(),
        Some("org.example.two")
    );

    // A subset AID that only shares the first 4 bytes cannot tie on a valid name.
    let registered = reg
        .register(
            key(":1.3", "/three"),
            Opts::new("org.example.three", Category::Other)
                .subset("F0010203FF")
                .0,
            &user(),
        )
        .unwrap();
    assert_eq!(registered.conflicts, vec![]);
    // One subset AID a prefix of another: tie only on names shorter than the shorter one.
    let registered = reg
        .register(
            key(":1.4", "/four"),
            Opts::new("org.example.four", Category::Other)
                .subset("F0010203040506")
                .0,
            &user(),
        )
        .unwrap();
    let aids: Vec<String> = registered
        .conflicts
        .iter()
        .map(|c| c.aid.to_string())
        .collect();
    assert_eq!(aids, vec!["F00102030405"]);
    assert_eq!(
        winner(&reg, "F0010203040506", UNLOCKED).as_deref(),
        Some("org.example.four")
    );
}

#[test]
fn hce_category_order() {
    let mut reg = registry();
    add(
        &mut reg,
        ":1.3",
        Opts::new("org.example.loyalty", Category::Other).exact("A0000000041010"),
    );
    add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.metro", Category::Transit).exact("A0000000041010"),
    );
    assert_eq!(
        winner(&reg, "A0000000041010", UNLOCKED).as_deref(),
        Some("org.example.metro"),
        "transit before other"
    );
    add(
        &mut reg,
        ":1.1",
        Opts::new("com.example.wallet", Category::Payment).exact("A0000000041010"),
    );
    assert_eq!(
        winner(&reg, "A0000000041010", UNLOCKED).as_deref(),
        Some("com.example.wallet"),
        "payment default before transit"
    );
    // Category order beats specificity: a payment prefix still wins over a transit exact AID.
    let mut reg = registry();
    add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.metro", Category::Transit).exact("A0000000041010"),
    );
    add(
        &mut reg,
        ":1.1",
        Opts::new("com.example.wallet", Category::Payment).prefix("A000000004"),
    );
    assert_eq!(
        winner(&reg, "A0000000041010", UNLOCKED).as_deref(),
        Some("com.example.wallet")
    );
}

// ---------------------------------------------------------------- lock state

#[test]
fn hce_lock_state_rules() {
    let mut reg = registry();
    // Payment requires unlock by default; the express transit card claims the same EMV AID
    // (open-loop gates) and a transit AID.
    let wallet = add(
        &mut reg,
        ":1.1",
        Opts::new("com.example.wallet", Category::Payment).exact("A0000000041010"),
    );
    assert!(reg.get(&wallet).unwrap().options.requires_unlock);
    add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.metro", Category::Transit)
            .exact("A0000000041010")
            .exact("A000000404")
            .unlock(true)
            .express(),
    );
    add(
        &mut reg,
        ":1.3",
        Opts::new("org.example.bus", Category::Transit)
            .exact("A000000405")
            .unlock(true),
    );
    add(
        &mut reg,
        ":1.4",
        Opts::new("org.example.badge", Category::Other)
            .exact("F000000001")
            .unlock(false),
    );

    assert_eq!(
        winner(&reg, "A0000000041010", UNLOCKED).as_deref(),
        Some("com.example.wallet")
    );
    // Locked: the payment default is skipped, the express transit service answers.
    assert_eq!(
        winner(&reg, "A0000000041010", LOCKED).as_deref(),
        Some("org.example.metro")
    );
    assert_eq!(
        winner(&reg, "A000000404", LOCKED).as_deref(),
        Some("org.example.metro")
    );
    // Non-express transit that requires unlock: locked out, not "not found".
    assert_eq!(
        reg.resolve(&hex_bytes("A000000405"), false, &LOCKED),
        Resolution::LockedOut {
            key: key(":1.3", "/svc/org_example_bus")
        }
    );
    assert_eq!(
        winner(&reg, "A000000405", UNLOCKED).as_deref(),
        Some("org.example.bus")
    );
    // Services that do not require unlock work while locked.
    assert_eq!(
        winner(&reg, "F000000001", LOCKED).as_deref(),
        Some("org.example.badge")
    );
    assert_eq!(
        reg.resolve(&hex_bytes("F000000099"), false, &LOCKED),
        Resolution::NotFound
    );

    // Payment without RequiresUnlock pays while locked.
    reg.unregister(&wallet).unwrap();
    add(
        &mut reg,
        ":1.5",
        Opts::new("com.example.card", Category::Payment)
            .exact("A0000000041010")
            .unlock(false),
    );
    assert_eq!(
        winner(&reg, "A0000000041010", LOCKED).as_deref(),
        Some("com.example.card")
    );
}

#[test]
fn hce_locked_out_payment() {
    let mut reg = registry();
    let wallet = add(
        &mut reg,
        ":1.1",
        Opts::new("com.example.wallet", Category::Payment).exact("A0000000041010"),
    );
    assert_eq!(
        reg.resolve(&hex_bytes("A0000000041010"), false, &LOCKED),
        Resolution::LockedOut { key: wallet }
    );
    let mut session = Session::new();
    assert_eq!(
        session.on_apdu(&reg, &select("A0000000041010"), &LOCKED),
        Action::Reply(StatusWord::SECURITY_STATUS_NOT_SATISFIED)
    );
    assert_eq!(session.selected(), None);
}

// ---------------------------------------------------------------- next occurrence

#[test]
fn hce_next_occurrence() {
    let mut reg = registry();
    let one = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.one", Category::Other).subset("F0010203040506AA"),
    );
    let two = add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.two", Category::Other).subset("F0010203040506BB"),
    );
    let partial = hex_bytes("F001020304");
    assert_eq!(reg.resolve(&partial, false, &UNLOCKED).key(), Some(&one));
    assert_eq!(
        reg.resolve_next(&partial, &one, &UNLOCKED).key(),
        Some(&two)
    );
    assert_eq!(
        reg.resolve_next(&partial, &two, &UNLOCKED),
        Resolution::NotFound
    );
    // Relative to a service that does not match: the first occurrence.
    let stranger = key(":1.9", "/x");
    assert_eq!(
        reg.resolve_next(&partial, &stranger, &UNLOCKED).key(),
        Some(&one)
    );

    // Through a session: SELECT first (P2 00), then next (P2 02), then next again.
    let mut session = Session::new();
    let first = [
        0x00, 0xA4, 0x04, 0x00, 0x05, 0xF0, 0x01, 0x02, 0x03, 0x04, 0x00,
    ];
    let next = [
        0x00, 0xA4, 0x04, 0x02, 0x05, 0xF0, 0x01, 0x02, 0x03, 0x04, 0x00,
    ];
    assert_eq!(
        session.on_apdu(&reg, &first, &UNLOCKED),
        Action::Forward {
            to: one.clone(),
            deselected: None
        }
    );
    assert_eq!(
        session.on_apdu(&reg, &next, &UNLOCKED),
        Action::Forward {
            to: two.clone(),
            deselected: Some(one)
        }
    );
    assert_eq!(
        session.on_apdu(&reg, &next, &UNLOCKED),
        Action::Reply(StatusWord::FILE_NOT_FOUND)
    );
    assert_eq!(session.selected(), Some(&two));
}

// ---------------------------------------------------------------- sessions

/// An EMV contactless tap: PPSE, application SELECT, GPO, READ RECORD, all to the default
/// payment wallet.
#[test]
fn hce_session_emv_transcript() {
    let mut reg = registry();
    let wallet = add(
        &mut reg,
        ":1.7",
        Opts::new("com.example.wallet", Category::Payment)
            .exact("325041592E5359532E4444463031") // "2PAY.SYS.DDF01"
            .exact("A0000000041010"),
    );
    let mut session = Session::new();
    let forward = Action::Forward {
        to: wallet.clone(),
        deselected: None,
    };
    let transcript: [(&str, &[u8], &Action); 4] = [
        (
            "SELECT PPSE",
            &[
                0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53, 0x2E,
                0x44, 0x44, 0x46, 0x30, 0x31, 0x00,
            ],
            &forward,
        ),
        (
            "SELECT A0000000041010",
            &[
                0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10, 0x00,
            ],
            &forward,
        ),
        (
            "GET PROCESSING OPTIONS",
            &[0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00],
            &forward,
        ),
        (
            "READ RECORD 1, SFI 1",
            &[0x00, 0xB2, 0x01, 0x0C, 0x00],
            &forward,
        ),
    ];
    for (name, apdu, expected) in transcript {
        assert_eq!(&session.on_apdu(&reg, apdu, &UNLOCKED), expected, "{name}");
    }
    assert_eq!(session.apdus(), 4);
    assert_eq!(session.end(), Some(wallet));
}

#[test]
fn hce_session_before_selection_and_unknown() {
    let mut reg = registry();
    let door = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.door", Category::Other).exact("F000000001"),
    );
    let mut session = Session::new();
    // READ BINARY before any SELECT: nobody to ask.
    assert_eq!(
        session.on_apdu(&reg, &[0x00, 0xB0, 0x00, 0x00, 0x00], &UNLOCKED),
        Action::Reply(StatusWord::NO_PRECISE_DIAGNOSIS)
    );
    // SELECT of an unknown AID.
    assert_eq!(
        session.on_apdu(&reg, &select("F000000099"), &UNLOCKED),
        Action::Reply(StatusWord::FILE_NOT_FOUND)
    );
    assert_eq!(
        session.on_apdu(&reg, &select("F000000001"), &UNLOCKED),
        Action::Forward {
            to: door.clone(),
            deselected: None
        }
    );
    // A failed SELECT keeps the current selection (ISO/IEC 7816-4 §11.2.2).
    assert_eq!(
        session.on_apdu(&reg, &select("F000000099"), &UNLOCKED),
        Action::Reply(StatusWord::FILE_NOT_FOUND)
    );
    assert_eq!(session.selected(), Some(&door));
    assert_eq!(
        session.on_apdu(&reg, &[0x00, 0xB0, 0x00, 0x00, 0x00], &UNLOCKED),
        Action::Forward {
            to: door.clone(),
            deselected: None
        }
    );
    // SELECT by file identifier is an ordinary command for the selected application.
    assert_eq!(
        session.on_apdu(&reg, &[0x00, 0xA4, 0x00, 0x0C, 0x02, 0xE1, 0x03], &UNLOCKED),
        Action::Forward {
            to: door,
            deselected: None
        }
    );
}

#[test]
fn hce_session_switching() {
    let mut reg = registry();
    let door = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.door", Category::Other).exact("F000000001"),
    );
    let metro = add(
        &mut reg,
        ":1.2",
        Opts::new("org.example.metro", Category::Transit).prefix("A000000404"),
    );
    let mut session = Session::new();
    assert_eq!(
        session.on_apdu(&reg, &select("F000000001"), &UNLOCKED),
        Action::Forward {
            to: door.clone(),
            deselected: None
        }
    );
    assert_eq!(
        session.on_apdu(&reg, &select("A00000040401"), &UNLOCKED),
        Action::Forward {
            to: metro.clone(),
            deselected: Some(door.clone())
        }
    );
    // Selecting another AID of the same service is no deselection.
    assert_eq!(
        session.on_apdu(&reg, &select("A00000040402"), &UNLOCKED),
        Action::Forward {
            to: metro.clone(),
            deselected: None
        }
    );
    assert_eq!(
        session.on_apdu(&reg, &select("F000000001"), &UNLOCKED),
        Action::Forward {
            to: door.clone(),
            deselected: Some(metro)
        }
    );
    assert_eq!(session.end(), Some(door));
}

#[test]
fn hce_session_malformed_commands() {
    let mut reg = registry();
    let door = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.door", Category::Other).exact("F000000001"),
    );
    let mut session = Session::new();
    session.on_apdu(&reg, &select("F000000001"), &UNLOCKED);
    let cases: [(&str, &[u8], StatusWord); 6] = [
        ("3 bytes", &[0x00, 0xB0, 0x00], StatusWord::WRONG_LENGTH),
        (
            "Lc 05 with 2 data bytes",
            &[0x00, 0xD6, 0x00, 0x00, 0x05, 0x01, 0x02],
            StatusWord::WRONG_LENGTH,
        ),
        (
            "SELECT Lc 07 with 3 bytes",
            &[0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0x00, 0x00],
            StatusWord::WRONG_LENGTH,
        ),
        (
            "SELECT last occurrence",
            &[0x00, 0xA4, 0x04, 0x01, 0x05, 0xF0, 0x00, 0x00, 0x00, 0x01],
            StatusWord::INCORRECT_P1_P2,
        ),
        (
            "SELECT by name without name",
            &[0x00, 0xA4, 0x04, 0x00, 0x00],
            StatusWord::WRONG_LENGTH,
        ),
        (
            "SELECT 17-byte name",
            &[
                0x00, 0xA4, 0x04, 0x00, 0x11, 0xF0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ],
            StatusWord::WRONG_LENGTH,
        ),
    ];
    for (name, apdu, sw) in cases {
        assert_eq!(
            session.on_apdu(&reg, apdu, &UNLOCKED),
            Action::Reply(sw),
            "{name}"
        );
        assert_eq!(
            session.selected(),
            Some(&door),
            "{name} keeps the selection"
        );
    }
}

#[test]
fn hce_session_invalid_class_and_instructions() {
    let mut reg = registry();
    let door = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.door", Category::Other).exact("F000000001"),
    );
    // ISO/IEC 7816-4 §5.4.1 (CLA FF) and §5.4.2 (INS 6X, 9X): refused by the session with or
    // without a selection; no service sees them, and the selection stays.
    let cases: [(&str, &[u8], StatusWord); 4] = [
        (
            "CLA FF",
            &[0xFF, 0xCA, 0x00, 0x00, 0x00],
            StatusWord::CLA_NOT_SUPPORTED,
        ),
        (
            "CLA FF shaped like a SELECT",
            &[0xFF, 0xA4, 0x04, 0x00, 0x05, 0xF0, 0x00, 0x00, 0x00, 0x01],
            StatusWord::CLA_NOT_SUPPORTED,
        ),
        (
            "INS 6A",
            &[0x00, 0x6A, 0x00, 0x00],
            StatusWord::INS_NOT_SUPPORTED,
        ),
        (
            "INS 94, proprietary class",
            &[0x80, 0x94, 0x00, 0x00, 0x00],
            StatusWord::INS_NOT_SUPPORTED,
        ),
    ];
    let mut session = Session::new();
    for (name, apdu, sw) in cases {
        assert_eq!(
            session.on_apdu(&reg, apdu, &UNLOCKED),
            Action::Reply(sw),
            "{name}, nothing selected"
        );
        assert_eq!(session.selected(), None);
    }
    session.on_apdu(&reg, &select("F000000001"), &UNLOCKED);
    for (name, apdu, sw) in cases {
        assert_eq!(
            session.on_apdu(&reg, apdu, &UNLOCKED),
            Action::Reply(sw),
            "{name}, a service selected"
        );
        assert_eq!(
            session.selected(),
            Some(&door),
            "{name} keeps the selection"
        );
    }
    // A command chain (CLA bit 10, §5.4.1) is the application's: every link goes to it.
    assert_eq!(
        session.on_apdu(&reg, &[0x10, 0xDA, 0x01, 0x00, 0x02, 0x01, 0x02], &UNLOCKED),
        Action::Forward {
            to: door,
            deselected: None
        }
    );
}

#[test]
fn hce_session_app_failure_and_removal() {
    let mut reg = registry();
    let door = add(
        &mut reg,
        ":1.1",
        Opts::new("org.example.door", Category::Other).exact("F000000001"),
    );
    let mut session = Session::new();
    session.on_apdu(&reg, &select("F000000001"), &UNLOCKED);
    // The app missed its deadline on the next command.
    assert!(matches!(
        session.on_apdu(&reg, &[0x00, 0xB0, 0x00, 0x00, 0x00], &UNLOCKED),
        Action::Forward { .. }
    ));
    assert_eq!(
        session.on_app_failed(),
        Action::Reply(StatusWord::NO_PRECISE_DIAGNOSIS)
    );
    assert_eq!(session.selected(), None);
    // Later commands are answered at once instead of waiting on it again.
    assert_eq!(
        session.on_apdu(&reg, &[0x00, 0xB0, 0x00, 0x00, 0x00], &UNLOCKED),
        Action::Reply(StatusWord::NO_PRECISE_DIAGNOSIS)
    );
    // A new SELECT can pick it again.
    assert_eq!(
        session.on_apdu(&reg, &select("F000000001"), &UNLOCKED),
        Action::Forward {
            to: door.clone(),
            deselected: None
        }
    );

    // The wallet's bus name vanishes mid-tap.
    let removed = reg.remove_owner(":1.1");
    for k in &removed {
        session.on_service_removed(k);
    }
    assert_eq!(session.selected(), None);
    session.on_service_removed(&key(":1.9", "/other")); // unrelated: no effect
    assert_eq!(
        session.on_apdu(&reg, &[0x00, 0xB0, 0x00, 0x00, 0x00], &UNLOCKED),
        Action::Reply(StatusWord::NO_PRECISE_DIAGNOSIS)
    );
    assert_eq!(session.end(), None);
}

#[test]
fn hce_category_parse_and_display() {
    for category in Category::ALL {
        assert_eq!(category.to_string().parse::<Category>(), Ok(category));
    }
    assert_eq!("payment".parse(), Ok(Category::Payment));
    let err = "Payment".parse::<Category>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown category \"Payment\": expected payment, transit or other"
    );
}

// ---------------------------------------------------------------- reference model

/// The resolution and conflict rules of the registry's module documentation, written as
/// plainly as possible (linear scans, every entry, every name), to check the index against.
mod reference {
    use super::*;

    /// Rank of one entry for `name`: 3 equal, 2 prefix (with its length), 1 subset.
    pub fn rank(kind: AidKind, entry: &[u8], name: &[u8]) -> Option<(u8, usize)> {
        if entry == name {
            return Some((3, 0));
        }
        match kind {
            AidKind::Exact => None,
            AidKind::Prefix if name.starts_with(entry) => Some((2, entry.len())),
            AidKind::Subset if entry.starts_with(name) => Some((1, 0)),
            _ => None,
        }
    }

    pub fn service_rank(service: &Service, name: &[u8]) -> Option<(u8, usize)> {
        service
            .options
            .all_aids()
            .filter_map(|(kind, aid)| rank(kind, aid.as_bytes(), name))
            .max()
    }

    fn cat_order(c: Category) -> usize {
        Category::ALL.iter().position(|&x| x == c).unwrap()
    }

    /// Every service matching `name`, in resolution order (category, most specific,
    /// favoured, earliest), with whether it is usable in `lock`.
    pub fn occurrences(reg: &Registry, name: &[u8], lock: LockState) -> Vec<(String, bool)> {
        if !(5..=16).contains(&name.len()) {
            return Vec::new();
        }
        let services: Vec<&Service> = reg.services().map(|(_, s)| s).collect();
        let payment: Vec<&&Service> = services
            .iter()
            .filter(|s| s.options.category == Category::Payment)
            .collect();
        let payment_default = match &reg.defaults().payment {
            Some(id) => payment.iter().find(|s| &s.options.id == id).map(|s| s.seq),
            None if payment.len() == 1 => Some(payment[0].seq),
            None => None,
        };
        let transit_default = reg.defaults().transit.as_ref().and_then(|id| {
            services
                .iter()
                .find(|s| &s.options.id == id && s.options.category == Category::Transit)
                .map(|s| s.seq)
        });
        // (category order, rank, favoured, registration, service)
        type Candidate<'a> = (usize, (u8, usize), bool, u64, &'a Service);
        let mut candidates: Vec<Candidate<'_>> = Vec::new();
        for s in &services {
            let category = s.options.category;
            if category == Category::Payment && payment_default != Some(s.seq) {
                continue;
            }
            let favoured = match category {
                Category::Payment => true,
                Category::Transit => transit_default == Some(s.seq),
                Category::Other => reg.preferred() == Some(&s.key),
            };
            if let Some(r) = service_rank(s, name) {
                candidates.push((cat_order(category), r, favoured, s.seq, s));
            }
        }
        candidates.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(b.1.cmp(&a.1))
                .then(b.2.cmp(&a.2))
                .then(a.3.cmp(&b.3))
        });
        candidates
            .into_iter()
            .map(|c| (c.4.options.id.clone(), c.4.usable(&lock)))
            .collect()
    }

    /// Id of the winner, `Err(id)` when locked out, `Ok(None)` when nothing matches.
    pub fn resolve(reg: &Registry, name: &[u8], lock: LockState) -> Result<Option<String>, String> {
        let all = occurrences(reg, name, lock);
        if let Some((id, _)) = all.iter().find(|(_, usable)| *usable) {
            return Ok(Some(id.clone()));
        }
        match all.first() {
            Some((id, _)) => Err(id.clone()),
            None => Ok(None),
        }
    }

    /// Ids of the services of `new`'s category that tie with it (equal best rank) on some
    /// name of `universe`.
    pub fn conflicting_ids(
        reg: &Registry,
        new: &ServiceKey,
        universe: &[Vec<u8>],
    ) -> BTreeSet<String> {
        let new = reg.get(new).unwrap();
        let mut ids = BTreeSet::new();
        if new.options.category == Category::Payment {
            return ids;
        }
        for (key, other) in reg.services() {
            if key == &new.key || other.options.category != new.options.category {
                continue;
            }
            // Names outside 5..=16 bytes select nothing.
            for name in universe.iter().filter(|n| (5..=16).contains(&n.len())) {
                let r = service_rank(new, name);
                if r.is_some() && r == service_rank(other, name) {
                    ids.insert(other.options.id.clone());
                    ids.insert(new.options.id.clone());
                }
            }
        }
        ids
    }

    use std::collections::BTreeSet;
}

/// xorshift64*: deterministic pseudo-random numbers for the model check.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random registries over a tiny alphabet (so that AIDs overlap a lot), random defaults,
/// preference and lock state: the indexed registry agrees with the reference model on every
/// name, and reports exactly the conflicts the model finds.
#[test]
fn hce_registry_matches_reference_model() {
    const RID: [u8; 5] = [0xF0, 0x01, 0x02, 0x03, 0x04];
    // Every name that can match: the RID plus 0..=3 bytes of {00, 01}, plus one byte more
    // (02, only reached by prefixes), plus a 4-byte name.
    let mut universe: Vec<Vec<u8>> = vec![RID.to_vec()];
    let mut frontier = vec![RID.to_vec()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for name in &frontier {
            for b in [0x00, 0x01] {
                let mut n = name.clone();
                n.push(b);
                next.push(n);
            }
        }
        universe.extend(next.iter().cloned());
        frontier = next;
    }
    let longer: Vec<Vec<u8>> = universe
        .iter()
        .map(|n| [&n[..], &[0x02]].concat())
        .collect();
    universe.extend(longer);
    universe.push(RID[..4].to_vec());

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut checked_conflicts = 0;
    for round in 0..300 {
        let mut reg = registry();
        let services = 1 + rng.below(6);
        for s in 0..services {
            let category = Category::ALL[rng.below(3) as usize];
            let mut opts = Opts::new(&format!("org.example.s{s}"), category);
            opts.0.requires_unlock = rng.below(2) == 0;
            opts.0.express = category == Category::Transit && rng.below(2) == 0;
            for _ in 0..1 + rng.below(4) {
                let extra = rng.below(4) as usize;
                let mut bytes = RID.to_vec();
                bytes.extend((0..extra).map(|_| rng.below(2) as u8));
                let aid = Aid::from_bytes(&bytes).unwrap();
                match rng.below(3) {
                    0 => opts.0.aids.push(aid),
                    1 => opts.0.prefix_aids.push(aid),
                    _ => opts.0.subset_aids.push(aid),
                }
            }
            let k = key(&format!(":1.{}", rng.below(3)), &format!("/s{s}"));
            match reg.register(k.clone(), opts.0, &user()) {
                Ok(registered) => {
                    let reported: BTreeSet<String> = registered
                        .conflicts
                        .iter()
                        .flat_map(|c| c.ids.iter().cloned())
                        .collect();
                    let expected = reference::conflicting_ids(&reg, &k, &universe);
                    assert_eq!(
                        reported, expected,
                        "round {round}: conflicts of {k} in {reg:?}"
                    );
                    // Each reported name really is contested by all its ids.
                    for c in &registered.conflicts {
                        let ranks: BTreeSet<_> = c
                            .ids
                            .iter()
                            .map(|id| {
                                reference::service_rank(
                                    reg.get_by_id(id).unwrap(),
                                    c.aid.as_bytes(),
                                )
                            })
                            .collect();
                        assert_eq!(ranks.len(), 1, "round {round}: {c:?}");
                    }
                    checked_conflicts += registered.conflicts.len();
                }
                Err(RegisterError::DuplicateAid { .. }) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
        let ids: Vec<String> = reg.services().map(|(_, s)| s.options.id.clone()).collect();
        let keys: Vec<ServiceKey> = reg.services().map(|(k, _)| k.clone()).collect();
        if !ids.is_empty() {
            for category in [Category::Payment, Category::Transit] {
                if rng.below(2) == 0 {
                    let id = &ids[rng.below(ids.len() as u64) as usize];
                    let _ = reg.set_default(category, id);
                }
            }
            if rng.below(2) == 0 {
                let _ = reg.set_preferred(&keys[rng.below(keys.len() as u64) as usize]);
            }
        }
        if rng.below(4) == 0 {
            let removed = reg.remove_owner(&format!(":1.{}", rng.below(3)));
            let _ = removed;
        }
        for lock in [UNLOCKED, LOCKED] {
            for name in &universe {
                let got = match reg.resolve(name, false, &lock) {
                    Resolution::Service { key, .. } => {
                        Ok(Some(reg.get(&key).unwrap().options.id.clone()))
                    }
                    Resolution::LockedOut { key } => Err(reg.get(&key).unwrap().options.id.clone()),
                    Resolution::NotFound => Ok(None),
                };
                assert_eq!(
                    got,
                    reference::resolve(&reg, name, lock),
                    "round {round}, {lock:?}, name {:02X?}, registry {reg:?}",
                    name
                );
                // Walking "next occurrence" visits every usable match once, in order.
                let expected: Vec<String> = reference::occurrences(&reg, name, lock)
                    .into_iter()
                    .filter(|(_, usable)| *usable)
                    .map(|(id, _)| id)
                    .collect();
                let mut walked = Vec::new();
                let mut at = reg.resolve(name, false, &lock);
                while let Resolution::Service { key, .. } = at {
                    walked.push(reg.get(&key).unwrap().options.id.clone());
                    at = reg.resolve_next(name, &key, &lock);
                    assert!(walked.len() <= expected.len(), "round {round}: {walked:?}");
                }
                assert_eq!(
                    walked, expected,
                    "round {round}, {lock:?}, name {:02X?}",
                    name
                );
            }
        }
    }
    assert!(
        checked_conflicts > 50,
        "the model check saw {checked_conflicts} conflicts"
    );
}

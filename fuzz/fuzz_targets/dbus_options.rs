//! `nfcd::dbus::RegisterRequest::from_options`: the `a{sv}` options of
//! `org.nfcd.Manager1.RegisterService`, as a wallet (or anything else on the bus) may send them.
//!
//! Input: a sequence of entries, each a key and a value. Keys come mostly from the real option
//! names, else from a few near misses or from the input. Values are built from the input as
//! D-Bus values of many types — the right ones, wrong scalar types, wrong element types
//! (`as`, `aau`, `ay`, `av`), nested variants and structs — and, when asked, huge arrays of
//! distinct AIDs (up to 4 095 entries) the way a hostile client could send them.
//!
//! Checks: it never panics, and it finishes (libFuzzer's `-timeout` catches work that grows
//! faster than the input). An accepted request obeys every documented rule: a reverse-DNS Id,
//! a known category, 1 to `MAX_AIDS_PER_SERVICE` AIDs of 5 to 16 octets with no duplicate in a
//! list, a printable name (the Id when none was given), `Express` only for transit and never
//! with `RequiresUnlock`. A refusal for an unknown key names a key that was sent. The options,
//! encoded as a message body, read as the daemon reads them (`RegisterOptions`, which keeps
//! only what the limits need) into the same options and the same decision as the map.
#![no_main]

use std::collections::HashMap;
use std::str::FromStr;

use libfuzzer_sys::fuzz_target;
use nfcd::dbus::options::{OptionsError, AID_MAX_LEN, AID_MIN_LEN, CATEGORIES, MAX_NAME_LEN};
use nfcd::dbus::options::RegisterOptions;
use nfcd::dbus::RegisterRequest;
use nfcd::hce::registry::MAX_AIDS_PER_SERVICE;
use nfcd_fuzz::Input;
use zbus::{Array, ObjectPath, OwnedVariant, Signature, Variant};

const KEYS: [&str; 8] = [
    "Id",
    "Category",
    "Aids",
    "PrefixAids",
    "SubsetAids",
    "Name",
    "RequiresUnlock",
    "Express",
];

const NEAR_MISSES: [&str; 6] = ["", "id", "aids", "Aids ", "Category\0", "Expreß"];

const STRINGS: [&str; 10] = [
    "com.example.wallet",
    "com.example.transit-card_1",
    "payment",
    "transit",
    "other",
    "",
    "nodots",
    "a..b",
    "Metro card",
    "tab\there",
];

fn key(input: &mut Input<'_>) -> String {
    let choice = input.u8();
    match choice {
        0..=199 => KEYS[usize::from(choice) % KEYS.len()].to_owned(),
        200..=229 => NEAR_MISSES[usize::from(choice) % NEAR_MISSES.len()].to_owned(),
        _ => String::from_utf8_lossy(input.len_prefixed()).into_owned(),
    }
}

fn signature(s: &str) -> Signature {
    Signature::from_str(s).expect("a valid signature")
}

fn byte_array(bytes: &[u8]) -> Variant<'static> {
    let mut array = Array::new(&signature("y"));
    for &b in bytes {
        array.append(Variant::U8(b)).expect("y element");
    }
    Variant::Array(array)
}

/// `aay` of AIDs from the input, or `count` distinct generated ones of `len` octets.
fn aid_array(input: &mut Input<'_>) -> Variant<'static> {
    let mut outer = Array::new(&signature("ay"));
    if input.u8() < 16 {
        // Sixteen times the per-service limit: enough to show work that grows faster than
        // the list, small enough to keep the target fast.
        let count = input.u16() % 4096;
        let len = usize::from(input.u8() % 20);
        for i in 0..count {
            let mut aid = vec![0xA0; len];
            let n = i.to_be_bytes();
            for (dst, src) in aid.iter_mut().rev().zip(n.iter().rev()) {
                *dst = *src;
            }
            outer.append(byte_array(&aid)).expect("ay element");
        }
    } else {
        let count = input.u8() % 32;
        for _ in 0..count {
            outer
                .append(byte_array(input.len_prefixed()))
                .expect("ay element");
        }
    }
    Variant::Array(outer)
}

fn value(input: &mut Input<'_>, depth: u8) -> Variant<'static> {
    match input.u8() % 16 {
        0 => Variant::from(String::from_utf8_lossy(input.len_prefixed()).into_owned()),
        1 => Variant::from(STRINGS[usize::from(input.u8()) % STRINGS.len()].to_owned()),
        2 => Variant::Bool(input.bool()),
        3 => Variant::U8(input.u8()),
        4 => Variant::U32(u32::from(input.u16())),
        5 => Variant::I32(i32::from(input.u16() as i16)),
        6 => Variant::F64(f64::from(input.u16())),
        7 => Variant::ObjectPath(ObjectPath::from_static_str("/org/nfcd").expect("object path")),
        8 | 9 => aid_array(input),
        10 => byte_array(input.len_prefixed()),
        11 => {
            let mut array = Array::new(&signature("s"));
            for _ in 0..input.u8() % 8 {
                let s = String::from_utf8_lossy(input.len_prefixed()).into_owned();
                array.append(Variant::from(s)).expect("s element");
            }
            Variant::Array(array)
        }
        12 => {
            let mut outer = Array::new(&signature("au"));
            for _ in 0..input.u8() % 8 {
                let mut inner = Array::new(&signature("u"));
                for &b in input.len_prefixed() {
                    inner.append(Variant::U32(u32::from(b))).expect("u element");
                }
                outer.append(Variant::Array(inner)).expect("au element");
            }
            Variant::Array(outer)
        }
        13 if depth < 4 => Variant::Variant(Box::new(value(input, depth + 1))),
        14 if depth < 4 => {
            let mut array = Array::new(&signature("v"));
            for _ in 0..input.u8() % 4 {
                let inner = value(input, depth + 1);
                array
                    .append(Variant::Variant(Box::new(inner)))
                    .expect("v element");
            }
            Variant::Array(array)
        }
        15 => Variant::new((
            input.u8(),
            String::from_utf8_lossy(input.len_prefixed()).into_owned(),
        )),
        _ => Variant::from(signature("aay")),
    }
}

fn check_accepted(request: &RegisterRequest, sent_name: bool) {
    let id = &request.id;
    assert!(id.contains('.') && id.len() <= 255, "Id {id:?}");
    assert!(
        id.split('.').all(|e| !e.is_empty()
            && e.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')),
        "Id {id:?}"
    );
    assert!(CATEGORIES.contains(&request.category.as_str()));
    let total = request.aids.len() + request.prefix_aids.len() + request.subset_aids.len();
    assert!((1..=MAX_AIDS_PER_SERVICE).contains(&total), "{total} AIDs");
    for list in [&request.aids, &request.prefix_aids, &request.subset_aids] {
        for (i, aid) in list.iter().enumerate() {
            assert!((AID_MIN_LEN..=AID_MAX_LEN).contains(&aid.len()));
            assert!(!list[..i].contains(aid), "duplicate AID accepted");
        }
    }
    if !sent_name {
        assert_eq!(&request.name, id);
    }
    assert!(!request.name.is_empty() && request.name.len() <= MAX_NAME_LEN);
    assert!(!request.name.chars().any(char::is_control));
    if request.express {
        assert_eq!(request.category, "transit");
        assert_ne!(request.requires_unlock, Some(true));
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mut options: HashMap<String, OwnedVariant> = HashMap::new();
    while !input.is_empty() && options.len() < 16 {
        let key = key(&mut input);
        let value = value(&mut input, 0);
        let Ok(value) = OwnedVariant::try_from(value) else {
            continue;
        };
        options.insert(key, value);
    }
    let decoded = RegisterRequest::from_options(&options);
    // The daemon reads the options straight from the message (RegisterOptions, bounded
    // memory): every body that is a valid a{sv} — one the generic decoding reads too; the
    // encoder also writes strings with a NUL, which D-Bus forbids — must read, into the same
    // options, and decide exactly as the map does.
    let ctxt = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
    if let Ok(wire) = zbus::wire::to_bytes(ctxt, &options) {
        if wire.deserialize::<HashMap<String, OwnedVariant>>().is_ok() {
            let (read, _) = wire
                .deserialize::<RegisterOptions>()
                .expect("a valid a{sv} reads as RegisterOptions");
            assert_eq!(read, RegisterOptions::from_variants(&options));
            assert_eq!(RegisterRequest::from_values(&read), decoded);
        }
    }
    match decoded {
        Ok(request) => check_accepted(&request, options.contains_key("Name")),
        Err(err) => {
            let _ = err.to_string();
            if let OptionsError::UnknownKey(key) = &err {
                assert!(options.contains_key(key) && !KEYS.contains(&key.as_str()));
            }
        }
    }
});

//! Decoding of the `a{sv}` options of `org.nfcd.Manager1.RegisterService`.
//!
//! Turns the dictionary a client sent into a plain [`RegisterRequest`], or into an
//! [`OptionsError`] that names the offending key, what was expected and what was sent. Checks
//! only what can be checked from the options alone (types, presence, AID lengths, limits);
//! conflicts with other registrations are the registry's business, not this module's.
//!
//! # Memory
//!
//! `RegisterService` takes its options as a [`RegisterOptions`], read straight from the
//! message rather than as a map of generic D-Bus values: a generic value holds every octet of
//! an `ay` as a value of its own (dozens of bytes each), so one message of a few megabytes of
//! AIDs — the system bus passes 32 MiB — would cost the daemon gigabytes. A
//! [`RegisterOptions`] keeps the strings of the known keys, the first
//! [`MAX_AIDS_PER_SERVICE`] elements of each AID list (at most [`AID_MAX_LEN`] octets of each;
//! a longer element only as its length) and the count of the rest, and the first unknown key;
//! every other value is skipped where it lies in the message. So decoding costs at most about
//! the size of the message again, and the answer is the same as for the generic map
//! ([`RegisterRequest::from_options`], which tests and tools use).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use zbus::{OwnedVariant, Signature, Type, Variant};

use super::error::Error;

pub use crate::hce::aid::{MAX_AID_LEN as AID_MAX_LEN, MIN_AID_LEN as AID_MIN_LEN};
pub use crate::hce::registry::{MAX_AIDS_PER_SERVICE, MAX_ID_LEN, MAX_NAME_LEN};

/// The three service categories of the card emulation model.
pub const CATEGORIES: [&str; 3] = ["payment", "transit", "other"];

/// A `RegisterService` request, decoded and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// Stable reverse-DNS identifier of the service (`Id`), e.g. `com.example.wallet.visa`.
    pub id: String,
    /// `payment`, `transit` or `other` (`Category`).
    pub category: String,
    /// AIDs matched exactly (`Aids`).
    pub aids: Vec<Vec<u8>>,
    /// AIDs matched as a prefix of the selected AID (`PrefixAids`).
    pub prefix_aids: Vec<Vec<u8>>,
    /// AIDs that also match a SELECT of any prefix of them (`SubsetAids`).
    pub subset_aids: Vec<Vec<u8>>,
    /// Display name (`Name`); the Id when not given.
    pub name: String,
    /// Only reachable while the device is unlocked (`RequiresUnlock`); `None` when not given,
    /// and the category's default applies (payment: true, others: false).
    pub requires_unlock: Option<bool>,
    /// Transit only: reachable while locked or with the screen off (`Express`, default false).
    pub express: bool,
}

/// Why a `RegisterService` options dictionary was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionsError {
    /// A key this version does not know.
    UnknownKey(String),
    /// A known key with a value of the wrong D-Bus type.
    WrongType {
        /// The option key.
        key: &'static str,
        /// The signature the key takes.
        expected: &'static str,
        /// The signature that was sent.
        got: String,
    },
    /// A mandatory key (`Id`, `Category`) is absent.
    Missing(&'static str),
    /// A string option that may not be empty is empty.
    Empty(&'static str),
    /// `Id` is not a reverse-DNS name.
    InvalidId(String),
    /// `Category` is not one of [`CATEGORIES`].
    InvalidCategory(String),
    /// `Name` is longer than [`MAX_NAME_LEN`] bytes or holds control characters.
    InvalidName(String),
    /// None of `Aids`, `PrefixAids`, `SubsetAids` holds an AID.
    NoAids,
    /// An AID outside [`AID_MIN_LEN`]..=[`AID_MAX_LEN`] bytes.
    AidLength {
        /// The option key.
        key: &'static str,
        /// Position in the list.
        index: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// The same AID twice in one list.
    DuplicateAid {
        /// The option key.
        key: &'static str,
        /// The AID, in hex.
        aid: String,
    },
    /// More than [`MAX_AIDS_PER_SERVICE`] AIDs in total.
    TooManyAids(usize),
    /// `Express` set outside the `transit` category.
    ExpressNotTransit(String),
    /// Both `Express` and `RequiresUnlock` set: a service cannot both work while locked and
    /// require unlocking.
    ExpressRequiresUnlock,
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionsError::UnknownKey(k) => write!(f, "unknown option {}", Quoted(k)),
            OptionsError::WrongType { key, expected, got } => {
                write!(f, "{key} must be {expected}, got {got}")
            }
            OptionsError::Missing(k) => write!(f, "option {k} is mandatory"),
            OptionsError::Empty(k) => write!(f, "{k} is empty"),
            OptionsError::InvalidId(id) => write!(
                f,
                "Id {} is not a reverse-DNS name (dot-separated elements of \
                 A-Z a-z 0-9 _ -, at least two, at most {MAX_ID_LEN} bytes)",
                Quoted(id)
            ),
            OptionsError::InvalidCategory(c) => {
                write!(
                    f,
                    "Category {} is not one of payment, transit, other",
                    Quoted(c)
                )
            }
            OptionsError::InvalidName(why) => write!(f, "Name {why}"),
            OptionsError::NoAids => {
                write!(
                    f,
                    "at least one AID is needed in Aids, PrefixAids or SubsetAids"
                )
            }
            OptionsError::AidLength { key, index, len } => write!(
                f,
                "{key}[{index}] is {len} bytes; an AID is {AID_MIN_LEN} to {AID_MAX_LEN} bytes"
            ),
            OptionsError::DuplicateAid { key, aid } => write!(f, "{key} lists {aid} twice"),
            OptionsError::TooManyAids(n) => write!(
                f,
                "{n} AIDs in one service; at most {MAX_AIDS_PER_SERVICE} are allowed"
            ),
            OptionsError::ExpressNotTransit(c) => {
                write!(f, "Express applies to the transit category only, not {c}")
            }
            OptionsError::ExpressRequiresUnlock => {
                write!(f, "Express and RequiresUnlock cannot both be true")
            }
        }
    }
}

impl std::error::Error for OptionsError {}

impl From<OptionsError> for Error {
    fn from(e: OptionsError) -> Self {
        match e {
            OptionsError::AidLength { .. } | OptionsError::DuplicateAid { .. } => {
                Error::InvalidAid(e.to_string())
            }
            OptionsError::TooManyAids(_) => Error::LimitExceeded(e.to_string()),
            _ => Error::InvalidArguments(e.to_string()),
        }
    }
}

/// Most characters of a client's string an error message repeats.
pub const QUOTE_LIMIT: usize = 64;

/// A client's string as an error message quotes it: in Rust debug quotes, cut after
/// [`QUOTE_LIMIT`] characters with its length in bytes added, so that a megabyte of garbage
/// in a request is not echoed back (or logged) whole.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(QUOTE_LIMIT) {
            None => write!(f, "{:?}", self.0),
            Some((end, _)) => write!(f, "{:?}… ({} bytes)", &self.0[..end], self.0.len()),
        }
    }
}

/// The option keys `RegisterService` knows.
pub const OPTION_KEYS: [&str; 8] = [
    "Aids",
    "Category",
    "Express",
    "Id",
    "Name",
    "PrefixAids",
    "RequiresUnlock",
    "SubsetAids",
];

/// One option value as [`RegisterOptions`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionValue {
    /// A string (`s`).
    Str(String),
    /// A boolean (`b`).
    Bool(bool),
    /// An array of byte arrays (`aay`).
    Aids(AidList),
    /// Any other type, by its signature; the value itself is not kept.
    Other(String),
}

impl OptionValue {
    /// The D-Bus signature of the value that was sent.
    pub fn signature(&self) -> &str {
        match self {
            OptionValue::Str(_) => "s",
            OptionValue::Bool(_) => "b",
            OptionValue::Aids(_) => "aay",
            OptionValue::Other(signature) => signature,
        }
    }

    /// The value a generic D-Bus value stands for.
    fn from_variant(value: &Variant<'_>) -> OptionValue {
        match value {
            Variant::Str(s) => OptionValue::Str(s.as_str().to_owned()),
            Variant::Bool(b) => OptionValue::Bool(*b),
            Variant::Array(outer) if outer.element_signature().to_string() == "ay" => {
                let mut list = AidList::default();
                for element in outer.inner() {
                    let octets: Vec<u8> = match element {
                        Variant::Array(bytes) => bytes
                            .inner()
                            .iter()
                            .filter_map(|b| match b {
                                Variant::U8(b) => Some(*b),
                                _ => None,
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    list.push(&octets);
                }
                OptionValue::Aids(list)
            }
            other => OptionValue::Other(other.value_signature().to_string()),
        }
    }
}

/// An `aay` option as [`RegisterOptions`] keeps it: how many elements were sent, and the first
/// [`MAX_AIDS_PER_SERVICE`] of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AidList {
    /// Number of elements sent.
    pub count: usize,
    /// The first [`MAX_AIDS_PER_SERVICE`] elements: the octets of each of at most
    /// [`AID_MAX_LEN`] octets, the length of each longer one.
    pub items: Vec<Result<Vec<u8>, usize>>,
}

impl AidList {
    fn push(&mut self, octets: &[u8]) {
        if self.items.len() < MAX_AIDS_PER_SERVICE {
            self.items.push(if octets.len() <= AID_MAX_LEN {
                Ok(octets.to_vec())
            } else {
                Err(octets.len())
            });
        }
        self.count = self.count.saturating_add(1);
    }
}

/// The `a{sv}` options of `RegisterService`, decoded with bounded memory (see the module
/// documentation): the values of the known keys ([`OPTION_KEYS`]; of a key sent twice, the
/// last), and the first unknown key in sorted order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterOptions {
    known: BTreeMap<&'static str, OptionValue>,
    unknown: Option<String>,
}

impl RegisterOptions {
    /// The options of a generic `a{sv}` map.
    pub fn from_variants(options: &HashMap<String, OwnedVariant>) -> RegisterOptions {
        let mut out = RegisterOptions::default();
        for (key, value) in options {
            out.insert(key, || OptionValue::from_variant(value));
        }
        out
    }

    fn insert(&mut self, key: &str, value: impl FnOnce() -> OptionValue) {
        match OPTION_KEYS.iter().find(|&&k| k == key) {
            Some(&known) => {
                self.known.insert(known, value());
            }
            None => {
                if self.unknown.as_deref().is_none_or(|u| key < u) {
                    self.unknown = Some(key.to_owned());
                }
            }
        }
    }
}

impl Type for RegisterOptions {
    const SIGNATURE: &'static Signature = <HashMap<String, OwnedVariant> as Type>::SIGNATURE;
}

impl<'de> Deserialize<'de> for RegisterOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(OptionsVisitor)
    }
}

struct OptionsVisitor;

impl<'de> Visitor<'de> for OptionsVisitor {
    type Value = RegisterOptions;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the a{sv} options of RegisterService")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RegisterOptions, A::Error> {
        let mut options = RegisterOptions::default();
        while let Some(key) = map.next_key::<&'de str>()? {
            if OPTION_KEYS.contains(&key) {
                let value = map.next_value_seed(OptionValueSeed)?;
                options.insert(key, || value);
            } else {
                map.next_value::<IgnoredAny>()?;
                options.insert(key, || OptionValue::Other(String::new()));
            }
        }
        Ok(options)
    }
}

/// Reads one variant (`v`): its signature, then the value as [`OptionValue`] keeps it.
struct OptionValueSeed;

impl<'de> DeserializeSeed<'de> for OptionValueSeed {
    type Value = OptionValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<OptionValue, D::Error> {
        // A variant is visited as a sequence: its signature, then its value.
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for OptionValueSeed {
    type Value = OptionValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a variant")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OptionValue, A::Error> {
        let signature: Signature = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let missing = || de::Error::invalid_length(1, &"a variant's value");
        let value = match &signature {
            Signature::Str => OptionValue::Str(
                seq.next_element::<&'de str>()?
                    .ok_or_else(missing)?
                    .to_owned(),
            ),
            Signature::Bool => OptionValue::Bool(seq.next_element::<bool>()?.ok_or_else(missing)?),
            Signature::Array(outer) if matches!(outer.signature(), Signature::Array(inner) if *inner.signature() == Signature::U8) => {
                OptionValue::Aids(seq.next_element_seed(AidListSeed)?.ok_or_else(missing)?)
            }
            other => {
                seq.next_element::<IgnoredAny>()?.ok_or_else(missing)?;
                OptionValue::Other(other.to_string())
            }
        };
        Ok(value)
    }
}

/// Reads an `aay` into an [`AidList`], borrowing each element from the message.
struct AidListSeed;

impl<'de> DeserializeSeed<'de> for AidListSeed {
    type Value = AidList;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<AidList, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for AidListSeed {
    type Value = AidList;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of byte arrays")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AidList, A::Error> {
        let mut list = AidList::default();
        while let Some(octets) = seq.next_element::<&'de [u8]>()? {
            list.push(octets);
        }
        Ok(list)
    }
}

impl RegisterRequest {
    /// Decode and check `RegisterService` options given as a generic `a{sv}` map; the same
    /// as [`RegisterRequest::from_values`] of [`RegisterOptions::from_variants`].
    pub fn from_options(options: &HashMap<String, OwnedVariant>) -> Result<Self, OptionsError> {
        RegisterRequest::from_values(&RegisterOptions::from_variants(options))
    }

    /// Decode and check `RegisterService` options.
    ///
    /// Every key must be known and of its documented type; `Id` and `Category` are mandatory;
    /// at least one AID must be given.
    pub fn from_values(options: &RegisterOptions) -> Result<Self, OptionsError> {
        let mut id = None;
        let mut category = None;
        let mut aids = Vec::new();
        let mut prefix_aids = Vec::new();
        let mut subset_aids = Vec::new();
        let mut name = None;
        let mut requires_unlock = None;
        let mut express = false;

        // Sorted so that, of several bad keys, the reported one does not depend on hashing.
        let mut entries: Vec<(&str, Option<&OptionValue>)> =
            options.known.iter().map(|(k, v)| (*k, Some(v))).collect();
        if let Some(unknown) = &options.unknown {
            entries.push((unknown, None));
        }
        entries.sort_by_key(|(key, _)| *key);
        for (key, value) in entries {
            let Some(value) = value else {
                return Err(OptionsError::UnknownKey(key.to_owned()));
            };
            match key {
                "Id" => id = Some(string("Id", value)?),
                "Category" => category = Some(string("Category", value)?),
                "Aids" => aids = aid_list("Aids", value)?,
                "PrefixAids" => prefix_aids = aid_list("PrefixAids", value)?,
                "SubsetAids" => subset_aids = aid_list("SubsetAids", value)?,
                "Name" => name = Some(string("Name", value)?),
                "RequiresUnlock" => requires_unlock = Some(boolean("RequiresUnlock", value)?),
                "Express" => express = boolean("Express", value)?,
                other => return Err(OptionsError::UnknownKey(other.to_owned())),
            }
        }

        let id = id.ok_or(OptionsError::Missing("Id"))?;
        check_id(&id)?;
        let category = category.ok_or(OptionsError::Missing("Category"))?;
        if category.is_empty() {
            return Err(OptionsError::Empty("Category"));
        }
        if !CATEGORIES.contains(&category.as_str()) {
            return Err(OptionsError::InvalidCategory(category));
        }
        let name = match name {
            None => id.clone(),
            Some(n) => {
                check_name(&n)?;
                n
            }
        };
        let total = aids.len() + prefix_aids.len() + subset_aids.len();
        if total == 0 {
            return Err(OptionsError::NoAids);
        }
        if total > MAX_AIDS_PER_SERVICE {
            return Err(OptionsError::TooManyAids(total));
        }
        if express && category != "transit" {
            return Err(OptionsError::ExpressNotTransit(category));
        }
        if express && requires_unlock == Some(true) {
            return Err(OptionsError::ExpressRequiresUnlock);
        }

        Ok(RegisterRequest {
            id,
            category,
            aids,
            prefix_aids,
            subset_aids,
            name,
            requires_unlock,
            express,
        })
    }
}

fn wrong_type(key: &'static str, expected: &'static str, value: &OptionValue) -> OptionsError {
    OptionsError::WrongType {
        key,
        expected,
        got: value.signature().to_owned(),
    }
}

fn string(key: &'static str, value: &OptionValue) -> Result<String, OptionsError> {
    match value {
        OptionValue::Str(s) => Ok(s.clone()),
        other => Err(wrong_type(key, "s", other)),
    }
}

fn boolean(key: &'static str, value: &OptionValue) -> Result<bool, OptionsError> {
    match value {
        OptionValue::Bool(b) => Ok(*b),
        other => Err(wrong_type(key, "b", other)),
    }
}

/// An `aay` of AIDs, each checked for length and listed once.
fn aid_list(key: &'static str, value: &OptionValue) -> Result<Vec<Vec<u8>>, OptionsError> {
    let OptionValue::Aids(list) = value else {
        return Err(wrong_type(key, "aay", value));
    };
    // Refuse an oversized list by its length: a bus message may carry millions of elements,
    // and the duplicate check below is quadratic in the list length.
    if list.count > MAX_AIDS_PER_SERVICE {
        return Err(OptionsError::TooManyAids(list.count));
    }
    let mut aids: Vec<Vec<u8>> = Vec::with_capacity(list.items.len());
    for (index, item) in list.items.iter().enumerate() {
        let aid = match item {
            Ok(aid) if aid.len() >= AID_MIN_LEN => aid,
            Ok(short) => {
                return Err(OptionsError::AidLength {
                    key,
                    index,
                    len: short.len(),
                })
            }
            Err(len) => {
                return Err(OptionsError::AidLength {
                    key,
                    index,
                    len: *len,
                })
            }
        };
        if aids.contains(aid) {
            return Err(OptionsError::DuplicateAid {
                key,
                aid: crate::hex(aid),
            });
        }
        aids.push(aid.clone());
    }
    Ok(aids)
}

fn check_id(id: &str) -> Result<(), OptionsError> {
    if id.is_empty() {
        return Err(OptionsError::Empty("Id"));
    }
    let element_ok = |e: &str| {
        !e.is_empty()
            && e.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if id.len() > MAX_ID_LEN || !id.contains('.') || !id.split('.').all(element_ok) {
        return Err(OptionsError::InvalidId(id.to_owned()));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), OptionsError> {
    if name.is_empty() {
        return Err(OptionsError::Empty("Name"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(OptionsError::InvalidName(format!(
            "is {} bytes; at most {MAX_NAME_LEN} are allowed",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(OptionsError::InvalidName(
            "holds control characters".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `options` as a message body carries it, read back as [`RegisterOptions`].
    fn through_the_wire(options: &HashMap<String, OwnedVariant>) -> RegisterOptions {
        let ctxt = zbus::wire::serialized::Context::new(zbus::wire::LE, 0);
        let data = zbus::wire::to_bytes(ctxt, options).expect("serialize a{sv}");
        let (decoded, used) = data
            .deserialize::<RegisterOptions>()
            .expect("deserialize RegisterOptions");
        assert_eq!(used, data.len());
        decoded
    }

    #[test]
    fn options_read_from_the_message_equal_the_generic_map() {
        let many: Vec<Vec<u8>> = (0..1_000u32)
            .map(|i| [&[0xF0, 0x01][..], &i.to_be_bytes()].concat())
            .collect();
        let nested = Variant::Variant(Box::new(Variant::from(vec![VISA.to_vec()])));
        let cases: Vec<(&str, Variant<'static>)> = vec![
            ("Name", Variant::from("Metro card")),
            ("Express", Variant::from(true)),
            (
                "PrefixAids",
                Variant::from(vec![MASTERCARD_RID.to_vec(), vec![0xF0; 40]]),
            ),
            ("SubsetAids", Variant::from(many)),
            ("Aids", Variant::from(vec!["A0000000031010".to_owned()])),
            ("Aids", nested),
            ("Aids", Variant::from(vec![vec![0x0Fu32]])),
            ("Aids", Variant::from(VISA.to_vec())),
            ("RequiresUnlock", Variant::I32(-1)),
            ("Colour", Variant::from((1u8, "x", vec![2u16]))),
            ("Aardvark", Variant::from(vec![vec![1u8; 3]])),
        ];
        for (key, value) in cases {
            let mut o = base();
            o.insert(key.to_owned(), v(value));
            let wire = through_the_wire(&o);
            assert_eq!(wire, RegisterOptions::from_variants(&o), "{key}");
            assert_eq!(
                RegisterRequest::from_values(&wire),
                RegisterRequest::from_options(&o),
                "{key}"
            );
        }
        // The first unknown key in sorted order is the one reported, as with the map.
        let mut o = base();
        o.insert("Zebra".into(), v(1u32));
        o.insert("Colour".into(), v(1u32));
        assert_eq!(
            RegisterRequest::from_values(&through_the_wire(&o)),
            Err(OptionsError::UnknownKey("Colour".into()))
        );
    }

    #[test]
    fn options_read_from_the_message_keep_only_what_the_limits_need() {
        // 100 000 AIDs and a 1 MiB one: 256 elements are kept, each of at most 16 octets.
        let mut o = base();
        let mut huge: Vec<Vec<u8>> = vec![vec![0xA0; 1 << 20]];
        huge.extend((0..100_000u32).map(|i| [&[0xF0][..], &i.to_be_bytes()].concat()));
        o.insert("Aids".into(), v(huge));
        let wire = through_the_wire(&o);
        let Some(OptionValue::Aids(list)) = wire.known.get("Aids") else {
            panic!("no Aids: {wire:?}");
        };
        assert_eq!(list.count, 100_001);
        assert_eq!(list.items.len(), MAX_AIDS_PER_SERVICE);
        assert_eq!(list.items[0], Err(1 << 20));
        assert!(list.items[1..]
            .iter()
            .all(|i| i.as_ref().is_ok_and(|a| a.len() == 5)));
        assert_eq!(
            RegisterRequest::from_values(&wire),
            Err(OptionsError::TooManyAids(100_001))
        );
    }

    #[test]
    fn long_client_strings_are_quoted_short() {
        assert_eq!(Quoted("org.example").to_string(), "\"org.example\"");
        let long = "é".repeat(1000);
        let shown = Quoted(&long).to_string();
        assert_eq!(
            shown,
            format!("{:?}… (2000 bytes)", "é".repeat(QUOTE_LIMIT))
        );
        let e = OptionsError::UnknownKey("K".repeat(1 << 16));
        assert!(e.to_string().len() < 200, "{e}");
        let e = OptionsError::InvalidId("x".repeat(1 << 20));
        assert!(e.to_string().ends_with("at most 255 bytes)"), "{e}");
        assert!(e.to_string().len() < 300, "{e}");
    }

    /// EMV PPSE-selected payment application (Visa credit/debit), 7 bytes.
    const VISA: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];
    /// Mastercard RID, used as a prefix.
    const MASTERCARD_RID: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x04];

    fn v<'a>(value: impl Into<Variant<'a>>) -> OwnedVariant {
        match value.into().try_into_owned() {
            Ok(v) => v,
            Err(e) => panic!("test value: {e}"),
        }
    }

    fn aay(aids: &[&[u8]]) -> OwnedVariant {
        v(aids.iter().map(|a| a.to_vec()).collect::<Vec<Vec<u8>>>())
    }

    fn base() -> HashMap<String, OwnedVariant> {
        let mut o = HashMap::new();
        o.insert("Id".to_owned(), v("com.example.wallet.visa"));
        o.insert("Category".to_owned(), v("payment"));
        o.insert("Aids".to_owned(), aay(&[VISA]));
        o
    }

    fn err(o: &HashMap<String, OwnedVariant>) -> OptionsError {
        match RegisterRequest::from_options(o) {
            Ok(r) => panic!("accepted {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn minimal_payment_service() {
        let r = RegisterRequest::from_options(&base()).expect("valid options");
        assert_eq!(
            r,
            RegisterRequest {
                id: "com.example.wallet.visa".into(),
                category: "payment".into(),
                aids: vec![VISA.to_vec()],
                prefix_aids: vec![],
                subset_aids: vec![],
                name: "com.example.wallet.visa".into(),
                requires_unlock: None,
                express: false,
            }
        );
    }

    #[test]
    fn every_option() {
        let mut o = base();
        o.insert("Category".into(), v("transit"));
        o.insert("PrefixAids".into(), aay(&[MASTERCARD_RID]));
        // A 16-byte AID: the longest ISO/IEC 7816-4 allows.
        o.insert("SubsetAids".into(), aay(&[&[0xF0; 16]]));
        o.insert("Name".into(), v("Metro card"));
        o.insert("Express".into(), v(true));
        o.insert("RequiresUnlock".into(), v(false));
        let r = RegisterRequest::from_options(&o).expect("valid options");
        assert_eq!(r.category, "transit");
        assert_eq!(r.prefix_aids, vec![MASTERCARD_RID.to_vec()]);
        assert_eq!(r.subset_aids, vec![vec![0xF0; 16]]);
        assert_eq!(r.name, "Metro card");
        assert!(r.express);
        assert_eq!(r.requires_unlock, Some(false));
    }

    #[test]
    fn unknown_key() {
        let mut o = base();
        o.insert("Colour".into(), v("blue"));
        assert_eq!(err(&o), OptionsError::UnknownKey("Colour".into()));
        assert_eq!(err(&o).to_string(), "unknown option \"Colour\"");
    }

    #[test]
    fn aids_as_strings_is_a_wrong_type() {
        let mut o = base();
        o.insert("Aids".into(), v(vec!["A0000000031010".to_owned()]));
        let e = err(&o);
        assert_eq!(e.to_string(), "Aids must be aay, got as");
        assert!(matches!(Error::from(e), Error::InvalidArguments(_)));
    }

    #[test]
    fn aids_as_one_flat_byte_array_is_a_wrong_type() {
        let mut o = base();
        o.insert("Aids".into(), v(VISA.to_vec()));
        assert_eq!(err(&o).to_string(), "Aids must be aay, got ay");
    }

    #[test]
    fn scalar_wrong_types() {
        let mut o = base();
        o.insert("Express".into(), v(1u32));
        assert_eq!(err(&o).to_string(), "Express must be b, got u");

        let mut o = base();
        o.insert("Id".into(), v(7i32));
        assert_eq!(err(&o).to_string(), "Id must be s, got i");

        let mut o = base();
        o.insert("Name".into(), v(true));
        assert_eq!(err(&o).to_string(), "Name must be s, got b");
    }

    #[test]
    fn missing_id_and_category() {
        let mut o = base();
        o.remove("Id");
        assert_eq!(err(&o), OptionsError::Missing("Id"));
        let mut o = base();
        o.remove("Category");
        assert_eq!(err(&o), OptionsError::Missing("Category"));
        assert_eq!(err(&o).to_string(), "option Category is mandatory");
    }

    #[test]
    fn empty_strings() {
        let mut o = base();
        o.insert("Id".into(), v(""));
        assert_eq!(err(&o), OptionsError::Empty("Id"));
        let mut o = base();
        o.insert("Category".into(), v(""));
        assert_eq!(err(&o), OptionsError::Empty("Category"));
        let mut o = base();
        o.insert("Name".into(), v(""));
        assert_eq!(err(&o), OptionsError::Empty("Name"));
    }

    #[test]
    fn id_must_be_reverse_dns() {
        for bad in [
            "wallet",
            "com..example",
            ".com.example",
            "com.example.",
            "com.ex ample",
        ] {
            let mut o = base();
            o.insert("Id".into(), v(bad));
            assert_eq!(err(&o), OptionsError::InvalidId(bad.into()), "{bad}");
        }
        let mut o = base();
        o.insert("Id".into(), v(format!("a.{}", "b".repeat(MAX_ID_LEN))));
        assert!(matches!(err(&o), OptionsError::InvalidId(_)));
    }

    #[test]
    fn unknown_category() {
        let mut o = base();
        o.insert("Category".into(), v("Payment"));
        let e = err(&o);
        assert_eq!(e, OptionsError::InvalidCategory("Payment".into()));
        assert!(matches!(Error::from(e), Error::InvalidArguments(_)));
    }

    #[test]
    fn no_aid_at_all() {
        let mut o = base();
        o.insert("Aids".into(), aay(&[]));
        assert_eq!(err(&o), OptionsError::NoAids);
        o.remove("Aids");
        assert_eq!(err(&o), OptionsError::NoAids);
    }

    #[test]
    fn aid_lengths_are_5_to_16_bytes() {
        let mut o = base();
        o.insert("Aids".into(), aay(&[VISA, &[0xA0, 0x00, 0x00, 0x00]]));
        let e = err(&o);
        assert_eq!(
            e,
            OptionsError::AidLength {
                key: "Aids",
                index: 1,
                len: 4
            }
        );
        assert_eq!(e.to_string(), "Aids[1] is 4 bytes; an AID is 5 to 16 bytes");
        assert!(matches!(Error::from(e), Error::InvalidAid(_)));

        let mut o = base();
        o.insert("PrefixAids".into(), aay(&[&[0xA0; 17]]));
        assert_eq!(
            err(&o),
            OptionsError::AidLength {
                key: "PrefixAids",
                index: 0,
                len: 17
            }
        );
    }

    #[test]
    fn duplicate_aid_in_one_list() {
        let mut o = base();
        o.insert("SubsetAids".into(), aay(&[MASTERCARD_RID, MASTERCARD_RID]));
        let e = err(&o);
        assert_eq!(e.to_string(), "SubsetAids lists A000000004 twice");
        assert!(matches!(Error::from(e), Error::InvalidAid(_)));
    }

    #[test]
    fn too_many_aids() {
        let many: Vec<Vec<u8>> = (0..=MAX_AIDS_PER_SERVICE)
            .map(|i| {
                let i = i as u16;
                vec![0xF0, 0x01, 0x02, (i >> 8) as u8, i as u8]
            })
            .collect();
        let mut o = base();
        o.insert("Aids".into(), v(many));
        let e = err(&o);
        assert_eq!(e, OptionsError::TooManyAids(MAX_AIDS_PER_SERVICE + 1));
        assert!(matches!(Error::from(e), Error::LimitExceeded(_)));
    }

    /// A list far over the limit is refused by its length alone, before its elements are
    /// decoded and compared. Found by the `dbus_options` fuzz target: 31 354 distinct 10-byte
    /// AIDs took seconds of duplicate checking (quadratic), and a 32 MiB message can carry
    /// over a million. The last AID repeats the first, so an implementation that still walks
    /// the list reports `DuplicateAid` instead (after that quadratic walk).
    #[test]
    fn huge_aid_list_is_refused_by_its_length() {
        let count: u16 = 31_354;
        let mut many: Vec<Vec<u8>> = (0..count)
            .map(|i| {
                let [hi, lo] = i.to_be_bytes();
                vec![0xA0, 0xA0, 0xA0, 0xA0, 0xA0, 0xA0, 0xA0, 0xA0, hi, lo]
            })
            .collect();
        many[usize::from(count) - 1] = many[0].clone();
        let mut o = base();
        o.insert("Aids".into(), v(many));
        assert_eq!(err(&o), OptionsError::TooManyAids(usize::from(count)));
    }

    #[test]
    fn express_is_for_transit_only() {
        let mut o = base();
        o.insert("Express".into(), v(true));
        assert_eq!(err(&o), OptionsError::ExpressNotTransit("payment".into()));

        let mut o = base();
        o.insert("Category".into(), v("transit"));
        o.insert("Express".into(), v(true));
        o.insert("RequiresUnlock".into(), v(true));
        assert_eq!(err(&o), OptionsError::ExpressRequiresUnlock);
    }

    #[test]
    fn name_limits() {
        let mut o = base();
        o.insert("Name".into(), v("x".repeat(MAX_NAME_LEN + 1)));
        assert!(matches!(err(&o), OptionsError::InvalidName(_)));
        let mut o = base();
        o.insert("Name".into(), v("Visa\n"));
        assert_eq!(err(&o).to_string(), "Name holds control characters");
    }
}

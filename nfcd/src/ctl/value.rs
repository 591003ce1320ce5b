//! Tolerant reading of D-Bus values: properties and `a{sv}` dictionaries as nfcd sends them.
//!
//! Contract: every accessor answers `None` for a key that is missing *or* holds a value of
//! another type than the documented one, so that a display shows `-` rather than failing on a
//! daemon older or newer than this client. Integer accessors take any unsigned or non-negative
//! signed D-Bus integer that fits. Variants nested in variants (`v` inside `a{sv}`) are looked
//! through. Nothing here allocates more than the values it returns, and nothing panics.

use std::collections::{BTreeMap, HashMap};

use zbus::{OwnedVariant, Variant};

/// Look through `v` wrappers: the values of an `a{sv}` arrive as `Variant::Variant`.
pub fn peel<'a, 'v>(mut v: &'a Variant<'v>) -> &'a Variant<'v> {
    while let Variant::Variant(inner) = v {
        v = inner;
    }
    v
}

/// A string (`s`) or object path (`o`).
pub fn as_str(v: &Variant<'_>) -> Option<String> {
    match peel(v) {
        Variant::Str(s) => Some(s.as_str().to_owned()),
        Variant::ObjectPath(p) => Some(p.as_str().to_owned()),
        _ => None,
    }
}

/// A boolean (`b`).
pub fn as_bool(v: &Variant<'_>) -> Option<bool> {
    match peel(v) {
        Variant::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Any integer type holding a value in `0..=u64::MAX`.
pub fn as_u64(v: &Variant<'_>) -> Option<u64> {
    match peel(v) {
        Variant::U8(n) => Some(u64::from(*n)),
        Variant::U16(n) => Some(u64::from(*n)),
        Variant::U32(n) => Some(u64::from(*n)),
        Variant::U64(n) => Some(*n),
        Variant::I16(n) => u64::try_from(*n).ok(),
        Variant::I32(n) => u64::try_from(*n).ok(),
        Variant::I64(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

/// Any integer type holding a value in `0..=u32::MAX`.
pub fn as_u32(v: &Variant<'_>) -> Option<u32> {
    as_u64(v).and_then(|n| u32::try_from(n).ok())
}

/// Any integer type holding a value in `0..=u16::MAX`.
pub fn as_u16(v: &Variant<'_>) -> Option<u16> {
    as_u64(v).and_then(|n| u16::try_from(n).ok())
}

/// A byte array (`ay`).
pub fn as_bytes(v: &Variant<'_>) -> Option<Vec<u8>> {
    match peel(v) {
        Variant::Array(a) => a
            .inner()
            .iter()
            .map(|e| match peel(e) {
                Variant::U8(b) => Some(*b),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// An array of byte arrays (`aay`), e.g. a list of AIDs.
pub fn as_byte_lists(v: &Variant<'_>) -> Option<Vec<Vec<u8>>> {
    match peel(v) {
        Variant::Array(a) => a.inner().iter().map(as_bytes).collect(),
        _ => None,
    }
}

/// An array of strings (`as`).
pub fn as_strings(v: &Variant<'_>) -> Option<Vec<String>> {
    match peel(v) {
        Variant::Array(a) => a.inner().iter().map(as_str).collect(),
        _ => None,
    }
}

/// A string-to-string dictionary (`a{ss}`).
pub fn as_string_map(v: &Variant<'_>) -> Option<BTreeMap<String, String>> {
    match peel(v) {
        Variant::Dict(d) => d
            .iter()
            .map(|(k, v)| Some((as_str(k)?, as_str(v)?)))
            .collect(),
        _ => None,
    }
}

/// The elements of an array (`a...`), whatever their type.
pub fn as_array<'a, 'v>(v: &'a Variant<'v>) -> Option<&'a [Variant<'v>]> {
    match peel(v) {
        Variant::Array(a) => Some(a.inner()),
        _ => None,
    }
}

/// The fields of a structure (`(...)`).
pub fn as_struct<'a, 'v>(v: &'a Variant<'v>) -> Option<&'a [Variant<'v>]> {
    match peel(v) {
        Variant::Structure(s) => Some(s.fields()),
        _ => None,
    }
}

/// A string-keyed dictionary (`a{sv}`, or the property map of `GetAll`), read key by key.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    map: BTreeMap<String, &'a Variant<'a>>,
}

impl<'a> Fields<'a> {
    /// The properties returned by `org.freedesktop.DBus.Properties.GetAll`.
    pub fn from_properties(props: &'a HashMap<String, OwnedVariant>) -> Fields<'a> {
        Fields {
            map: props.iter().map(|(k, v)| (k.clone(), &**v)).collect(),
        }
    }

    /// A dictionary value with string keys; `None` if `v` is not one. Entries whose key is not
    /// a string are skipped.
    pub fn from_dict(v: &'a Variant<'a>) -> Option<Fields<'a>> {
        match peel(v) {
            Variant::Dict(d) => Some(Fields {
                map: d
                    .iter()
                    .filter_map(|(k, v)| Some((as_str(k)?, v)))
                    .collect(),
            }),
            _ => None,
        }
    }

    /// The raw value under `key`.
    pub fn get(&self, key: &str) -> Option<&'a Variant<'a>> {
        self.map.get(key).copied()
    }

    /// `s` or `o` under `key`.
    pub fn str(&self, key: &str) -> Option<String> {
        self.get(key).and_then(as_str)
    }

    /// `b` under `key`.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(as_bool)
    }

    /// An unsigned 32-bit value under `key`.
    pub fn u32(&self, key: &str) -> Option<u32> {
        self.get(key).and_then(as_u32)
    }

    /// An unsigned 64-bit value under `key`.
    pub fn u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(as_u64)
    }

    /// An unsigned 16-bit value under `key`.
    pub fn u16(&self, key: &str) -> Option<u16> {
        self.get(key).and_then(as_u16)
    }

    /// `ay` under `key`.
    pub fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.get(key).and_then(as_bytes)
    }

    /// `aay` under `key`.
    pub fn byte_lists(&self, key: &str) -> Option<Vec<Vec<u8>>> {
        self.get(key).and_then(as_byte_lists)
    }

    /// `as` under `key`.
    pub fn strings(&self, key: &str) -> Option<Vec<String>> {
        self.get(key).and_then(as_strings)
    }

    /// `a{ss}` under `key`.
    pub fn string_map(&self, key: &str) -> Option<BTreeMap<String, String>> {
        self.get(key).and_then(as_string_map)
    }
}

pub use crate::hex;

/// Building `a{sv}` values for the tests of the commands.
#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::HashMap;

    use zbus::{OwnedVariant, Variant};

    /// An `a{sv}` dictionary value from `(key, value)` pairs.
    pub(crate) fn dict(pairs: Vec<(&str, Variant<'static>)>) -> Variant<'static> {
        let map: HashMap<String, OwnedVariant> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), OwnedVariant::try_from(v).unwrap()))
            .collect();
        Variant::from(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use zbus::{ObjectPath, Structure};

    fn owned<'v>(v: impl Into<Variant<'v>>) -> OwnedVariant {
        OwnedVariant::try_from(v.into()).unwrap()
    }

    #[test]
    fn scalars_and_wrong_types() {
        let s = Variant::from("nfc-a");
        assert_eq!(as_str(&s), Some("nfc-a".into()));
        assert_eq!(as_bool(&s), None);
        assert_eq!(as_u32(&s), None);
        let wrapped = Variant::Variant(Box::new(Variant::from(720u32)));
        assert_eq!(as_u32(&wrapped), Some(720));
        assert_eq!(as_u16(&Variant::from(0x9000u16)), Some(0x9000));
        assert_eq!(as_u32(&Variant::from(-1i32)), None);
        assert_eq!(as_u32(&Variant::from(u64::MAX)), None);
        let path = Variant::from(ObjectPath::try_from("/org/nfcd").unwrap());
        assert_eq!(as_str(&path), Some("/org/nfcd".into()));
    }

    #[test]
    fn arrays() {
        let aids = Variant::from(vec![vec![0xA0u8, 0, 0, 0, 4], vec![0xF0, 1, 2, 3, 4]]);
        assert_eq!(
            as_byte_lists(&aids),
            Some(vec![vec![0xA0, 0, 0, 0, 4], vec![0xF0, 1, 2, 3, 4]])
        );
        let techs = Variant::from(vec!["nfc-a", "nfc-b"]);
        assert_eq!(
            as_strings(&techs),
            Some(vec!["nfc-a".into(), "nfc-b".into()])
        );
        // An array of strings is not an array of byte arrays.
        assert_eq!(as_byte_lists(&techs), None);
        let entry = Variant::from(
            Structure::builder()
                .add_field("protocol")
                .add_field("iso-dep")
                .build()
                .unwrap(),
        );
        assert_eq!(as_struct(&entry).map(<[_]>::len), Some(2));
    }

    #[test]
    fn dictionaries() {
        let mut props = HashMap::new();
        props.insert("Version".to_owned(), owned("0.1.0"));
        props.insert("Powered".to_owned(), owned(true));
        let mut defaults = HashMap::new();
        defaults.insert("payment".to_owned(), "com.example.pay".to_owned());
        props.insert("DefaultServices".to_owned(), OwnedVariant::from(defaults));
        let fields = Fields::from_properties(&props);
        assert_eq!(fields.str("Version"), Some("0.1.0".into()));
        assert_eq!(fields.bool("Powered"), Some(true));
        assert_eq!(fields.bool("Version"), None);
        assert_eq!(fields.str("Missing"), None);
        let map = fields.string_map("DefaultServices").unwrap();
        assert_eq!(
            map.get("payment").map(String::as_str),
            Some("com.example.pay")
        );
    }

    #[test]
    fn hex_is_uppercase_without_separators() {
        assert_eq!(hex(&[0xA0, 0x00, 0x0f]), "A0000F");
        assert_eq!(hex(&[]), "");
    }
}

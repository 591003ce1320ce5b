//! Decoding of the `a{sv}` options of `org.nfcd.Manager1.RegisterService`.
//!
//! Turns the dictionary a client sent into a plain [`RegisterRequest`], or into an
//! [`OptionsError`] that names the offending key, what was expected and what was sent. Checks
//! only what can be checked from the options alone (types, presence, AID lengths, limits);
//! conflicts with other registrations are the registry's business, not this module's.

use std::collections::HashMap;
use std::fmt;

use zbus::{OwnedVariant, Variant};

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
            OptionsError::UnknownKey(k) => write!(f, "unknown option {k:?}"),
            OptionsError::WrongType { key, expected, got } => {
                write!(f, "{key} must be {expected}, got {got}")
            }
            OptionsError::Missing(k) => write!(f, "option {k} is mandatory"),
            OptionsError::Empty(k) => write!(f, "{k} is empty"),
            OptionsError::InvalidId(id) => write!(
                f,
                "Id {id:?} is not a reverse-DNS name (dot-separated elements of \
                 A-Z a-z 0-9 _ -, at least two, at most {MAX_ID_LEN} bytes)"
            ),
            OptionsError::InvalidCategory(c) => {
                write!(f, "Category {c:?} is not one of payment, transit, other")
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

/// Uppercase hex of an AID, the way AIDs are written in the EMV and ISO/IEC 7816-4 texts.
pub fn aid_hex(aid: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(aid.len() * 2);
    for b in aid {
        let _ = write!(s, "{b:02X}");
    }
    s
}

impl RegisterRequest {
    /// Decode and check `RegisterService` options.
    ///
    /// Every key must be known and of its documented type; `Id` and `Category` are mandatory;
    /// at least one AID must be given.
    pub fn from_options(options: &HashMap<String, OwnedVariant>) -> Result<Self, OptionsError> {
        let mut id = None;
        let mut category = None;
        let mut aids = Vec::new();
        let mut prefix_aids = Vec::new();
        let mut subset_aids = Vec::new();
        let mut name = None;
        let mut requires_unlock = None;
        let mut express = false;

        // Sorted so that, of several bad keys, the reported one does not depend on hashing.
        let mut keys: Vec<&String> = options.keys().collect();
        keys.sort();
        for key in keys {
            let Some(value) = options.get(key) else {
                continue;
            };
            let value: &Variant<'_> = value;
            match key.as_str() {
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

fn wrong_type(key: &'static str, expected: &'static str, value: &Variant<'_>) -> OptionsError {
    OptionsError::WrongType {
        key,
        expected,
        got: value.value_signature().to_string(),
    }
}

fn string(key: &'static str, value: &Variant<'_>) -> Result<String, OptionsError> {
    match value {
        Variant::Str(s) => Ok(s.as_str().to_owned()),
        other => Err(wrong_type(key, "s", other)),
    }
}

fn boolean(key: &'static str, value: &Variant<'_>) -> Result<bool, OptionsError> {
    match value {
        Variant::Bool(b) => Ok(*b),
        other => Err(wrong_type(key, "b", other)),
    }
}

/// An `aay` of AIDs, each checked for length and listed once.
fn aid_list(key: &'static str, value: &Variant<'_>) -> Result<Vec<Vec<u8>>, OptionsError> {
    let Variant::Array(outer) = value else {
        return Err(wrong_type(key, "aay", value));
    };
    if outer.element_signature().to_string() != "ay" {
        return Err(wrong_type(key, "aay", value));
    }
    // Refuse an oversized list before looking at its elements: a bus message may carry
    // millions of them, and the duplicate check below is quadratic in the list length.
    if outer.len() > MAX_AIDS_PER_SERVICE {
        return Err(OptionsError::TooManyAids(outer.len()));
    }
    let mut aids: Vec<Vec<u8>> = Vec::with_capacity(outer.len());
    for (index, element) in outer.inner().iter().enumerate() {
        let Variant::Array(bytes) = element else {
            return Err(wrong_type(key, "aay", value));
        };
        let mut aid = Vec::with_capacity(bytes.len());
        for b in bytes.inner() {
            match b {
                Variant::U8(b) => aid.push(*b),
                _ => return Err(wrong_type(key, "aay", value)),
            }
        }
        if !(AID_MIN_LEN..=AID_MAX_LEN).contains(&aid.len()) {
            return Err(OptionsError::AidLength {
                key,
                index,
                len: aid.len(),
            });
        }
        if aids.contains(&aid) {
            return Err(OptionsError::DuplicateAid {
                key,
                aid: aid_hex(&aid),
            });
        }
        aids.push(aid);
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

    #[test]
    fn aid_hex_is_uppercase() {
        assert_eq!(aid_hex(VISA), "A0000000031010");
    }
}

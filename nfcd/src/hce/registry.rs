//! Registry of host card emulation services and resolution of `SELECT` by AID.
//!
//! A *service* is one wallet object registered over D-Bus: a [`ServiceKey`] (the wallet's
//! unique bus name and object path), a stable reverse-DNS Id, a [`Category`] and the AIDs it
//! answers. This module decides who may register what and which service a `SELECT` by DF name
//! (ISO/IEC 7816-4 §11.2.2) reaches. It does no I/O, knows nothing of D-Bus, of the clock or of
//! the controller's routing table (HCE AIDs are routed to the host by the default route and
//! resolved here).
//!
//! # Matching (per registered AID entry, selected name `S`)
//! - exact `R`: `S == R`;
//! - prefix `P` (`A000000004*`): `P` is a prefix of `S`;
//! - subset `Q` (partial selection, ISO/IEC 7816-4 §11.2.2 "partial DF name"): `S` is a prefix
//!   of `Q`, i.e. the terminal selected a truncated form of the registered AID.
//!
//! `S` must itself be 5 to 16 bytes (a partial AID still carries the whole RID, ISO/IEC
//! 7816-5); shorter or longer names match nothing.
//!
//! Specificity, most specific first: (1) any entry whose bytes equal `S` — exact, a prefix as
//! long as `S`, or a subset selected in full; (2) prefix matches, longer prefix first;
//! (3) subset matches of a truncated name, all equally specific (partial selection is
//! ambiguous by nature; ties go to the rules below and are reported as conflicts).
//!
//! # Categories
//! - **payment**: only the *effective default payment service* takes part. It is the service
//!   whose Id is the persisted default; when no default is set and exactly one payment service
//!   is registered, that one is the implicit default. When the chosen default is not
//!   registered, no payment service is used at all: a tap must never pay with a wallet the user
//!   did not choose. Payment services overlapping each other is normal and not reported.
//! - **transit**: all transit services take part; among equally specific matches the default
//!   transit service wins, then the earliest registration.
//! - **other**: shared; among equally specific matches the preferred service
//!   ([`Registry::set_preferred`]) wins, then the earliest registration.
//!
//! For transit and other, a registration that ties with an earlier service of its category is
//! reported as a [`Conflict`] (the `AidConflict` signal), even when a default or preferred
//! service settles it. Two services tie on a name when their best matches for it are equally
//! specific; that happens on an AID both register (in any of the three lists), and on a
//! truncated name that selects two different subset AIDs (the longest such name is reported).
//! Overlaps that specificity settles (a prefix and a longer exact AID under it) are not
//! conflicts.
//!
//! Across categories the order is payment, then transit, then other, and it comes before
//! specificity: a payment prefix beats a transit exact AID. A user who picked a default
//! payment wallet expects every payment terminal to reach it, and transit gates select their
//! own transit AIDs, which payment wallets do not claim; when a gate selects an EMV AID
//! (open-loop fare payment) the payment default answers it like any terminal (see the lock
//! state below for express transit).
//!
//! # Next occurrence
//! All matching services, in the order above, are the "occurrences" of a name (ISO/IEC 7816-4
//! §11.2.2). A `SELECT` for the first occurrence gets the first usable one;
//! [`Registry::resolve_next`] walks on from the selected service, one service at a time.
//!
//! # Lock state
//! While the device is [`LockState::Locked`], a service is usable only if it does not require
//! unlock, or it is an express transit service (express means "works while locked", whatever
//! `requires_unlock` says). Unusable services are skipped as if they were not registered, so an
//! express transit service claiming an EMV AID answers the gate while a payment default that
//! requires unlock does not; if nothing usable matches but something would have matched
//! unlocked, the result is [`Resolution::LockedOut`] (answered with `6982`, security status not
//! satisfied, ISO/IEC 7816-4 §5.6) instead of [`Resolution::NotFound`] (`6A82`).
//!
//! # Limits
//! At most [`MAX_AIDS_PER_SERVICE`] (256) AIDs per service — room for a wallet holding many
//! cards under one object — and [`MAX_AIDS_TOTAL`] (4096) in the daemon, which bounds memory and
//! the cost of a registration. Ids and names are at most 255 bytes.
//!
//! # Speed
//! An index of sorted vectors (exact, prefix and subset entries, each AID packed into a
//! `u128` for one-instruction comparisons) is rebuilt on every change, so a resolution costs a
//! few binary searches: one for exact entries, one per distinct prefix length present, one for
//! subset entries. With 1,000 AIDs that is 100–200 ns in a release build; the only allocation
//! is the clone of the chosen key. Registration and removal are O(n log n) in the AIDs held.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use super::aid::{Aid, AidError, MAX_AID_LEN, MIN_AID_LEN};
use super::store::Defaults;

/// Most AIDs one service may register, all three lists together.
pub const MAX_AIDS_PER_SERVICE: usize = 256;
/// Most AIDs registered in the whole daemon, all services together.
pub const MAX_AIDS_TOTAL: usize = 4096;
/// Longest service Id, in bytes.
pub const MAX_ID_LEN: usize = 255;
/// Longest display name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Service category: decides who receives the service's AIDs when several claim them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Payment (EMV and the like): only the default payment service is used.
    Payment,
    /// Transit: the default transit service wins conflicts; may be express.
    Transit,
    /// Everything else: shared, conflicts resolved by the preferred service.
    Other,
}

impl Category {
    /// All categories, in resolution order.
    pub const ALL: [Category; 3] = [Category::Payment, Category::Transit, Category::Other];

    /// The name used on D-Bus and in the configuration: `payment`, `transit`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Payment => "payment",
            Category::Transit => "transit",
            Category::Other => "other",
        }
    }

    /// `RequiresUnlock` when the registration does not say: payment services require unlock
    /// (a lost, locked phone must not pay), the others do not.
    pub fn default_requires_unlock(self) -> bool {
        self == Category::Payment
    }

    /// Position in the cross-category order (payment first).
    fn order(self) -> usize {
        match self {
            Category::Payment => 0,
            Category::Transit => 1,
            Category::Other => 2,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A category name that is not `payment`, `transit` or `other`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseCategoryError(pub String);

impl fmt::Display for ParseCategoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown category {:?}: expected payment, transit or other",
            self.0
        )
    }
}

impl std::error::Error for ParseCategoryError {}

impl FromStr for Category {
    type Err = ParseCategoryError;

    fn from_str(s: &str) -> Result<Category, ParseCategoryError> {
        match s {
            "payment" => Ok(Category::Payment),
            "transit" => Ok(Category::Transit),
            "other" => Ok(Category::Other),
            _ => Err(ParseCategoryError(s.to_owned())),
        }
    }
}

/// How a registered AID matches a selected name (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AidKind {
    /// The `Aids` option: the selected name equals the AID.
    Exact,
    /// The `PrefixAids` option: the AID is a prefix of the selected name.
    Prefix,
    /// The `SubsetAids` option: the selected name is a prefix of the AID.
    Subset,
}

impl fmt::Display for AidKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AidKind::Exact => "exact",
            AidKind::Prefix => "prefix",
            AidKind::Subset => "subset",
        })
    }
}

/// Identity of one registration: the owner's unique bus name and the object path it exports
/// `org.nfcd.HostService1` at.
#[derive(Clone, PartialEq, Eq, Hash, Ord, PartialOrd, Debug)]
pub struct ServiceKey {
    /// Unique bus name of the registering connection, e.g. `:1.42`.
    pub owner: String,
    /// Object path of the service, e.g. `/com/example/wallet/card0`.
    pub path: String,
}

impl ServiceKey {
    /// Key for `owner` and `path`.
    pub fn new(owner: impl Into<String>, path: impl Into<String>) -> ServiceKey {
        ServiceKey {
            owner: owner.into(),
            path: path.into(),
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.owner, self.path)
    }
}

/// What a wallet registers (the `RegisterService` options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceOptions {
    /// Stable reverse-DNS Id (`com.example.wallet`), the name defaults are stored under.
    pub id: String,
    /// Category.
    pub category: Category,
    /// Exact AIDs.
    pub aids: Vec<Aid>,
    /// Prefix AIDs.
    pub prefix_aids: Vec<Aid>,
    /// Subset AIDs.
    pub subset_aids: Vec<Aid>,
    /// Display name for settings UIs.
    pub name: String,
    /// Refuse taps while the device is locked (unless express, see the module documentation).
    pub requires_unlock: bool,
    /// Express transit: usable while locked. Only valid for transit services.
    pub express: bool,
}

impl ServiceOptions {
    /// Options with no AIDs, the Id as name, [`Category::default_requires_unlock`] and not
    /// express.
    pub fn new(id: impl Into<String>, category: Category) -> ServiceOptions {
        let id = id.into();
        ServiceOptions {
            name: id.clone(),
            id,
            category,
            aids: Vec::new(),
            prefix_aids: Vec::new(),
            subset_aids: Vec::new(),
            requires_unlock: category.default_requires_unlock(),
            express: false,
        }
    }

    /// Every AID entry with its kind, exact first, then prefix, then subset.
    pub fn all_aids(&self) -> impl Iterator<Item = (AidKind, &Aid)> {
        let tag = |kind| move |aid| (kind, aid);
        self.aids
            .iter()
            .map(tag(AidKind::Exact))
            .chain(self.prefix_aids.iter().map(tag(AidKind::Prefix)))
            .chain(self.subset_aids.iter().map(tag(AidKind::Subset)))
    }

    /// Number of AID entries, all kinds.
    pub fn aid_count(&self) -> usize {
        self.aids.len() + self.prefix_aids.len() + self.subset_aids.len()
    }
}

/// Validate raw AIDs of one list (e.g. the `PrefixAids` option), naming the first bad one.
pub fn parse_aid_list<B: AsRef<[u8]>>(kind: AidKind, raw: &[B]) -> Result<Vec<Aid>, RegisterError> {
    raw.iter()
        .enumerate()
        .map(|(index, bytes)| {
            Aid::from_bytes(bytes.as_ref()).map_err(|error| RegisterError::InvalidAid {
                kind,
                index,
                error,
            })
        })
        .collect()
}

/// A user or group allowed to register a category.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A user id.
    Uid(u32),
    /// A group id (primary or supplementary).
    Gid(u32),
}

/// Credentials of the process that registers (from the bus: `GetConnectionCredentials`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Effective user id.
    pub uid: u32,
    /// Primary and supplementary group ids.
    pub gids: Vec<u32>,
}

/// Who may register payment and transit services. An empty list means anyone; `other`
/// services are open to anyone. There is no implicit exception for root: list `Uid(0)` to
/// allow it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Principals allowed to register payment services.
    pub payment: Vec<Principal>,
    /// Principals allowed to register transit services.
    pub transit: Vec<Principal>,
}

impl AccessPolicy {
    /// Whether `caller` may register a service of `category`.
    pub fn allows(&self, category: Category, caller: &Caller) -> bool {
        let list = match category {
            Category::Payment => &self.payment,
            Category::Transit => &self.transit,
            Category::Other => return true,
        };
        list.is_empty()
            || list.iter().any(|p| match *p {
                Principal::Uid(uid) => uid == caller.uid,
                Principal::Gid(gid) => caller.gids.contains(&gid),
            })
    }
}

/// Whether the device is locked (screen lock), which limits the usable services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Unlocked: every service may be used.
    Unlocked,
    /// Locked: only services without `RequiresUnlock` and express transit services.
    Locked,
}

/// A registered service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// Who registered it.
    pub key: ServiceKey,
    /// What was registered.
    pub options: ServiceOptions,
    /// Registration sequence number, increasing over the daemon's life; lower is earlier.
    pub seq: u64,
}

impl Service {
    /// Whether the service may be used in `lock` state (see the module documentation).
    pub fn usable(&self, lock: &LockState) -> bool {
        match lock {
            LockState::Unlocked => true,
            LockState::Locked => {
                !self.options.requires_unlock
                    || (self.options.category == Category::Transit && self.options.express)
            }
        }
    }
}

/// Result of a successful registration. Must be used: every conflict is owed to the wallets as
/// an `AidConflict` signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct Registered {
    /// AIDs the new service now shares with others of its category (each one is an
    /// `AidConflict` signal).
    pub conflicts: Vec<Conflict>,
}

/// Several services of one category claim a selected name equally (see the module
/// documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The contested name: the shared AID, or for two subset AIDs the longest partial AID that
    /// selects both.
    pub aid: Aid,
    /// Ids of all services involved, earliest registration first.
    pub ids: Vec<String>,
}

/// Which service a `SELECT` by DF name reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// This service gets the `SELECT`.
    Service {
        /// The chosen service.
        key: ServiceKey,
        /// Its category.
        category: Category,
        /// The kind of the entry that matched.
        kind: AidKind,
        /// The registered AID entry that matched.
        aid: Aid,
    },
    /// No usable service matches: answer `6A82` (file or application not found).
    NotFound,
    /// Services match, but none may be used while locked: answer `6982` (security status not
    /// satisfied). `key` is the one that would have been chosen unlocked.
    LockedOut {
        /// The service that would have been chosen if the device were unlocked.
        key: ServiceKey,
    },
}

impl Resolution {
    /// The chosen service, if any.
    pub fn key(&self) -> Option<&ServiceKey> {
        match self {
            Resolution::Service { key, .. } => Some(key),
            Resolution::NotFound | Resolution::LockedOut { .. } => None,
        }
    }
}

/// Why a registry operation was refused. The `Display` text says exactly what is wrong and
/// is meant to be passed to the wallet as the D-Bus error message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// The caller may not register services of this category ([`AccessPolicy`]).
    NotAuthorized {
        /// The category asked for.
        category: Category,
    },
    /// This bus name already registered a service at this path.
    AlreadyRegistered {
        /// The key.
        key: ServiceKey,
    },
    /// No service is registered with this key.
    NotRegistered {
        /// The key.
        key: ServiceKey,
    },
    /// The Id is empty.
    EmptyId,
    /// The Id is too long or contains whitespace or control characters.
    InvalidId {
        /// The Id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The display name is longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Another registration uses this Id.
    IdInUse {
        /// The Id.
        id: String,
        /// The registration that has it.
        key: ServiceKey,
    },
    /// `Express` was set on a service that is not in the transit category.
    ExpressNotTransit {
        /// The service's category.
        category: Category,
    },
    /// A raw AID is not 5 to 16 bytes.
    InvalidAid {
        /// The list it is in.
        kind: AidKind,
        /// Its position in that list, from 0.
        index: usize,
        /// What is wrong with it.
        error: AidError,
    },
    /// The registration has no AID at all.
    NoAids,
    /// The same AID appears twice in one registration (in one list or across lists).
    DuplicateAid {
        /// The AID.
        aid: Aid,
        /// The list of its first appearance.
        first: AidKind,
        /// The list of its second appearance.
        second: AidKind,
    },
    /// More than [`MAX_AIDS_PER_SERVICE`] AIDs in one registration.
    TooManyAids {
        /// Number of AIDs in the registration.
        count: usize,
    },
    /// The daemon would hold more than [`MAX_AIDS_TOTAL`] AIDs.
    DaemonAidLimit {
        /// AIDs already registered.
        registered: usize,
        /// AIDs in the refused registration.
        requested: usize,
    },
    /// No registered service has this Id.
    UnknownId {
        /// The Id.
        id: String,
    },
    /// The service with this Id belongs to another category.
    WrongCategory {
        /// The Id.
        id: String,
        /// The category asked for.
        requested: Category,
        /// The service's category.
        registered: Category,
    },
    /// Category `other` has no default service.
    NoDefaultForCategory {
        /// The category asked for.
        category: Category,
    },
    /// Only services of category `other` can be preferred.
    NotPreferable {
        /// The service's category.
        category: Category,
    },
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::NotAuthorized { category } => {
                write!(f, "not authorized to register {category} services")
            }
            RegisterError::AlreadyRegistered { key } => write!(
                f,
                "{} already registered a service at {}",
                key.owner, key.path
            ),
            RegisterError::NotRegistered { key } => write!(
                f,
                "no service registered by {} at {}",
                key.owner, key.path
            ),
            RegisterError::EmptyId => write!(f, "the Id option is missing or empty"),
            RegisterError::InvalidId { id, reason } => write!(f, "invalid Id {id:?}: {reason}"),
            RegisterError::NameTooLong { len } => write!(
                f,
                "Name is {len} bytes long; at most {MAX_NAME_LEN} allowed"
            ),
            RegisterError::IdInUse { id, key } => write!(
                f,
                "Id {id:?} is already registered by {} at {}",
                key.owner, key.path
            ),
            RegisterError::ExpressNotTransit { category } => write!(
                f,
                "Express is only allowed for transit services, not {category}"
            ),
            RegisterError::InvalidAid { kind, index, error } => {
                write!(f, "{} entry {index}: {error}", list_name(*kind))
            }
            RegisterError::NoAids => {
                write!(f, "no AIDs: give at least one in Aids, PrefixAids or SubsetAids")
            }
            RegisterError::DuplicateAid { aid, first, second } => {
                if first == second {
                    write!(f, "AID {aid} appears twice in {}", list_name(*first))
                } else {
                    write!(
                        f,
                        "AID {aid} appears in both {} and {}",
                        list_name(*first),
                        list_name(*second)
                    )
                }
            }
            RegisterError::TooManyAids { count } => write!(
                f,
                "{count} AIDs in one service; at most {MAX_AIDS_PER_SERVICE} allowed"
            ),
            RegisterError::DaemonAidLimit {
                registered,
                requested,
            } => write!(
                f,
                "{requested} more AIDs would exceed the daemon's limit of {MAX_AIDS_TOTAL} ({registered} already registered)"
            ),
            RegisterError::UnknownId { id } => write!(f, "no service with Id {id:?} is registered"),
            RegisterError::WrongCategory {
                id,
                requested,
                registered,
            } => write!(
                f,
                "service {id:?} is a {registered} service, not {requested}"
            ),
            RegisterError::NoDefaultForCategory { category } => write!(
                f,
                "category {category} has no default service; use SetPreferredService"
            ),
            RegisterError::NotPreferable { category } => write!(
                f,
                "only services of category other can be preferred, not {category}; use SetDefaultService"
            ),
        }
    }
}

impl std::error::Error for RegisterError {}

fn list_name(kind: AidKind) -> &'static str {
    match kind {
        AidKind::Exact => "Aids",
        AidKind::Prefix => "PrefixAids",
        AidKind::Subset => "SubsetAids",
    }
}

/// One AID entry in the index: the service (position in `Registry::services`) and its kind.
#[derive(Clone, Copy, Debug)]
struct Entry {
    svc: usize,
    kind: AidKind,
}

/// A name of up to 16 bytes packed for cheap comparison: the bytes big-endian in a
/// zero-padded `u128`, then the length. Ordering by (`bits`, `len`) is the lexicographic order
/// of the bytes (a name and its zero-extension pad alike; the shorter sorts first, as a prefix
/// does), so every name sorts right before the names it is a prefix of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    bits: u128,
    len: usize,
}

impl Key {
    /// Pack `bytes`; only the first 16 are kept (callers pass AIDs / checked names).
    fn new(bytes: &[u8]) -> Key {
        let mut padded = [0u8; MAX_AID_LEN];
        let len = bytes.len().min(MAX_AID_LEN);
        for (dst, src) in padded.iter_mut().zip(bytes) {
            *dst = *src;
        }
        Key {
            bits: u128::from_be_bytes(padded),
            len,
        }
    }

    /// The first `len` bytes (`len` <= `self.len`).
    fn truncated(self, len: usize) -> Key {
        let mask = match len {
            0 => 0,
            MAX_AID_LEN.. => u128::MAX,
            _ => u128::MAX << (8 * (MAX_AID_LEN - len)),
        };
        Key {
            bits: self.bits & mask,
            len,
        }
    }

    fn starts_with(self, head: Key) -> bool {
        self.len >= head.len && self.truncated(head.len) == head
    }

    fn to_aid(self) -> Option<Aid> {
        let bytes = self.bits.to_be_bytes();
        bytes.get(..self.len).and_then(|b| Aid::from_bytes(b).ok())
    }
}

/// Sorted AID entries by kind; see "Speed" in the module documentation.
#[derive(Default)]
struct Index {
    exact: Vec<(Key, Entry)>,
    prefix: Vec<(Key, Entry)>,
    subset: Vec<(Key, Entry)>,
    /// Bit `n` set when some prefix entry is `n` bytes long.
    prefix_lens: u32,
}

impl Index {
    fn build(services: &[Service]) -> Index {
        let mut index = Index::default();
        for (svc, service) in services.iter().enumerate() {
            for (kind, aid) in service.options.all_aids() {
                let item = (Key::new(aid.as_bytes()), Entry { svc, kind });
                match kind {
                    AidKind::Exact => index.exact.push(item),
                    AidKind::Prefix => {
                        index.prefix_lens |= 1 << aid.len();
                        index.prefix.push(item);
                    }
                    AidKind::Subset => index.subset.push(item),
                }
            }
        }
        for list in [&mut index.exact, &mut index.prefix, &mut index.subset] {
            list.sort_by_key(|(key, entry)| (*key, entry.svc));
        }
        index
    }

    /// Entries of `list` whose AID starts with `head`.
    fn starting_with(list: &[(Key, Entry)], head: Key) -> impl Iterator<Item = &(Key, Entry)> {
        let lo = list.partition_point(|(key, _)| *key < head);
        list.get(lo..)
            .unwrap_or_default()
            .iter()
            .take_while(move |(key, _)| key.starts_with(head))
    }

    /// Entries of `list` equal to `name`.
    fn equal_to(list: &[(Key, Entry)], name: Key) -> impl Iterator<Item = &(Key, Entry)> {
        Self::starting_with(list, name).take_while(move |(key, _)| *key == name)
    }
}

/// Specificity of one match; larger is more specific.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// Subset entry, truncated name selected.
    Subset,
    /// Prefix entry shorter than the selected name; the length orders prefixes.
    Prefix(usize),
    /// Entry bytes equal the selected name.
    Equal,
}

/// How entry `entry` of `kind` matches the selected `name` (see the module documentation).
fn rank(kind: AidKind, entry: Key, name: Key) -> Option<Rank> {
    if entry == name {
        return Some(Rank::Equal);
    }
    match kind {
        AidKind::Exact => None,
        AidKind::Prefix => name.starts_with(entry).then_some(Rank::Prefix(entry.len)),
        AidKind::Subset => entry.starts_with(name).then_some(Rank::Subset),
    }
}

/// One service matching one selected name.
#[derive(Clone, Copy, Debug)]
struct Candidate<'a> {
    svc: usize,
    category: Category,
    rank: Rank,
    /// Default transit or preferred other service.
    favoured: bool,
    entry: &'a (Key, Entry),
}

impl Candidate<'_> {
    /// Larger wins within a category: more specific, then favoured, then earlier.
    fn order_key(&self) -> (Rank, bool, Reverse<usize>) {
        (self.rank, self.favoured, Reverse(self.svc))
    }
}

/// The services registered in the daemon, their index, and the defaults and preference that
/// decide between them. See the module documentation for every rule.
pub struct Registry {
    policy: AccessPolicy,
    defaults: Defaults,
    preferred: Option<ServiceKey>,
    /// In registration order.
    services: Vec<Service>,
    positions: HashMap<ServiceKey, usize>,
    ids: HashMap<String, usize>,
    index: Index,
    total_aids: usize,
    next_seq: u64,
    payment_default: Option<usize>,
    transit_default: Option<usize>,
    preferred_pos: Option<usize>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("defaults", &self.defaults)
            .field("preferred", &self.preferred)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry with the registration `policy` and the persisted `defaults`
    /// (which may name services not registered yet).
    pub fn new(policy: AccessPolicy, defaults: Defaults) -> Registry {
        let mut registry = Registry {
            policy,
            defaults,
            preferred: None,
            services: Vec::new(),
            positions: HashMap::new(),
            ids: HashMap::new(),
            index: Index::default(),
            total_aids: 0,
            next_seq: 0,
            payment_default: None,
            transit_default: None,
            preferred_pos: None,
        };
        registry.refresh();
        registry
    }

    /// Register a service for `key` on behalf of `caller`.
    ///
    /// Checks, in order: authorization, key not yet registered, Id (non-empty, at most
    /// [`MAX_ID_LEN`] bytes, no whitespace or control characters, not used by another key),
    /// name length, `express` only for transit, at least one AID, at most
    /// [`MAX_AIDS_PER_SERVICE`], no AID twice, at most [`MAX_AIDS_TOTAL`] in the daemon.
    pub fn register(
        &mut self,
        key: ServiceKey,
        opts: ServiceOptions,
        caller: &Caller,
    ) -> Result<Registered, RegisterError> {
        if !self.policy.allows(opts.category, caller) {
            return Err(RegisterError::NotAuthorized {
                category: opts.category,
            });
        }
        if self.positions.contains_key(&key) {
            return Err(RegisterError::AlreadyRegistered { key });
        }
        validate_id(&opts.id)?;
        if opts.name.len() > MAX_NAME_LEN {
            return Err(RegisterError::NameTooLong {
                len: opts.name.len(),
            });
        }
        if let Some(&pos) = self.ids.get(&opts.id) {
            let key = self.services.get(pos).map(|s| s.key.clone()).unwrap_or(key);
            return Err(RegisterError::IdInUse { id: opts.id, key });
        }
        if opts.express && opts.category != Category::Transit {
            return Err(RegisterError::ExpressNotTransit {
                category: opts.category,
            });
        }
        let count = opts.aid_count();
        if count == 0 {
            return Err(RegisterError::NoAids);
        }
        if count > MAX_AIDS_PER_SERVICE {
            return Err(RegisterError::TooManyAids { count });
        }
        check_duplicates(&opts)?;
        if self.total_aids + count > MAX_AIDS_TOTAL {
            return Err(RegisterError::DaemonAidLimit {
                registered: self.total_aids,
                requested: count,
            });
        }

        let seq = self.next_seq;
        self.next_seq += 1;
        self.services.push(Service {
            key,
            options: opts,
            seq,
        });
        self.refresh();
        let conflicts = self.conflicts_of(self.services.len() - 1);
        Ok(Registered { conflicts })
    }

    /// Remove the registration of `key`. A persisted default naming its Id stays: it applies
    /// again when the wallet registers again.
    pub fn unregister(&mut self, key: &ServiceKey) -> Result<Service, RegisterError> {
        let pos = *self
            .positions
            .get(key)
            .ok_or_else(|| RegisterError::NotRegistered { key: key.clone() })?;
        let service = self.services.remove(pos);
        if self.preferred.as_ref() == Some(key) {
            self.preferred = None;
        }
        self.refresh();
        Ok(service)
    }

    /// Remove every registration of a bus name that left the bus; returns their keys in
    /// registration order.
    pub fn remove_owner(&mut self, owner: &str) -> Vec<ServiceKey> {
        let mut removed = Vec::new();
        self.services.retain(|s| {
            if s.key.owner == owner {
                removed.push(s.key.clone());
                false
            } else {
                true
            }
        });
        if self.preferred.as_ref().is_some_and(|p| p.owner == owner) {
            self.preferred = None;
        }
        if !removed.is_empty() {
            self.refresh();
        }
        removed
    }

    /// Make the service with Id `id` the default of `category` (payment or transit). The
    /// service must be registered in that category. The caller persists [`defaults`]
    /// afterwards.
    ///
    /// [`defaults`]: Registry::defaults
    pub fn set_default(&mut self, category: Category, id: &str) -> Result<(), RegisterError> {
        // Category `other` is refused before the Id is looked at.
        self.default_slot(category)?;
        let registered = self
            .get_by_id(id)
            .map(|s| s.options.category)
            .ok_or_else(|| RegisterError::UnknownId { id: id.to_owned() })?;
        if registered != category {
            return Err(RegisterError::WrongCategory {
                id: id.to_owned(),
                requested: category,
                registered,
            });
        }
        *self.default_slot(category)? = Some(id.to_owned());
        self.refresh_choices();
        Ok(())
    }

    /// Forget the default of `category` (payment or transit).
    pub fn clear_default(&mut self, category: Category) -> Result<(), RegisterError> {
        *self.default_slot(category)? = None;
        self.refresh_choices();
        Ok(())
    }

    fn default_slot(&mut self, category: Category) -> Result<&mut Option<String>, RegisterError> {
        match category {
            Category::Payment => Ok(&mut self.defaults.payment),
            Category::Transit => Ok(&mut self.defaults.transit),
            Category::Other => Err(RegisterError::NoDefaultForCategory { category }),
        }
    }

    /// Who may register (and choose defaults for) the restricted categories.
    pub fn policy(&self) -> &AccessPolicy {
        &self.policy
    }

    /// The persisted default Ids.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// The service that currently receives `category`'s contested AIDs by default: for
    /// payment the effective default (explicit, or implicit when only one payment service
    /// exists and none was chosen), for transit the registered default, for other the
    /// preferred service.
    pub fn effective_default(&self, category: Category) -> Option<&ServiceKey> {
        let pos = match category {
            Category::Payment => self.payment_default,
            Category::Transit => self.transit_default,
            Category::Other => self.preferred_pos,
        }?;
        self.services.get(pos).map(|s| &s.key)
    }

    /// Make `key` the preferred service: it wins ties between `other` services (typically set
    /// by the wallet in the foreground). Replaces any previous preferred service.
    pub fn set_preferred(&mut self, key: &ServiceKey) -> Result<(), RegisterError> {
        let service = self
            .get(key)
            .ok_or_else(|| RegisterError::NotRegistered { key: key.clone() })?;
        if service.options.category != Category::Other {
            return Err(RegisterError::NotPreferable {
                category: service.options.category,
            });
        }
        self.preferred = Some(key.clone());
        self.refresh_choices();
        Ok(())
    }

    /// Clear the preferred service if `owner` set it (a wallet can only clear its own).
    pub fn clear_preferred(&mut self, owner: &str) {
        if self.preferred.as_ref().is_some_and(|p| p.owner == owner) {
            self.preferred = None;
            self.refresh_choices();
        }
    }

    /// The preferred service, if any.
    pub fn preferred(&self) -> Option<&ServiceKey> {
        self.preferred.as_ref()
    }

    /// Every registered service, in registration order.
    pub fn services(&self) -> impl Iterator<Item = (&ServiceKey, &Service)> {
        self.services.iter().map(|s| (&s.key, s))
    }

    /// The service registered under `key`.
    pub fn get(&self, key: &ServiceKey) -> Option<&Service> {
        self.positions
            .get(key)
            .and_then(|&pos| self.services.get(pos))
    }

    /// The service registered with Id `id`.
    pub fn get_by_id(&self, id: &str) -> Option<&Service> {
        self.ids.get(id).and_then(|&pos| self.services.get(pos))
    }

    /// Number of AIDs registered, all services and kinds together.
    pub fn aid_count(&self) -> usize {
        self.total_aids
    }

    /// Which service receives a `SELECT` of the DF name `selected` (first or only
    /// occurrence); see the module documentation for the rules.
    ///
    /// The registry keeps no per-tap state, so it cannot advance from a previous occurrence:
    /// `next_occurrence` gives the same result as a first occurrence.
    /// [`resolve_next`](Registry::resolve_next) answers "next occurrence" relative to the
    /// selected service, as `Session` does.
    ///
    /// Allocation-free apart from cloning the chosen key; a few binary searches.
    pub fn resolve(&self, selected: &[u8], next_occurrence: bool, ctx: &LockState) -> Resolution {
        let _ = next_occurrence;
        let mut best_usable: [Option<Candidate<'_>>; 3] = [None; 3];
        let mut best_locked: [Option<Candidate<'_>>; 3] = [None; 3];
        self.for_each_match(selected, |cand| {
            let usable = self.services.get(cand.svc).is_some_and(|s| s.usable(ctx));
            let slot = if usable {
                &mut best_usable
            } else {
                &mut best_locked
            };
            if let Some(best) = slot.get_mut(cand.category.order()) {
                if best.is_none_or(|b| cand.order_key() > b.order_key()) {
                    *best = Some(cand);
                }
            }
        });
        if let Some(cand) = best_usable.iter().flatten().next() {
            return self.resolution(cand);
        }
        match best_locked.iter().flatten().next() {
            Some(cand) => match self.services.get(cand.svc) {
                Some(service) => Resolution::LockedOut {
                    key: service.key.clone(),
                },
                None => Resolution::NotFound,
            },
            None => Resolution::NotFound,
        }
    }

    /// "Next occurrence" of a partial name (ISO/IEC 7816-4 §11.2.2, P2 `02`): the usable
    /// service ranked after `current` among all services matching `selected`, in resolution
    /// order (category, specificity, default/preferred, registration). When `current` does
    /// not match `selected`, this is the first occurrence; when it is the last one,
    /// [`Resolution::NotFound`].
    pub fn resolve_next(
        &self,
        selected: &[u8],
        current: &ServiceKey,
        ctx: &LockState,
    ) -> Resolution {
        let mut all: Vec<(Candidate<'_>, bool)> = Vec::new();
        self.for_each_match(selected, |cand| {
            let usable = self.services.get(cand.svc).is_some_and(|s| s.usable(ctx));
            all.push((cand, usable));
        });
        all.sort_by_key(|(c, _)| (c.category.order(), Reverse(c.order_key())));
        let mut seen = BTreeSet::new();
        all.retain(|(c, _)| seen.insert(c.svc));
        let usable: Vec<&Candidate<'_>> = all.iter().filter(|(_, u)| *u).map(|(c, _)| c).collect();
        if usable.is_empty() {
            return match all.first().and_then(|(c, _)| self.services.get(c.svc)) {
                Some(service) => Resolution::LockedOut {
                    key: service.key.clone(),
                },
                None => Resolution::NotFound,
            };
        }
        let current = self.positions.get(current).copied();
        let next = match usable.iter().position(|c| Some(c.svc) == current) {
            Some(at) => usable.get(at + 1),
            None => usable.first(),
        };
        match next {
            Some(cand) => self.resolution(cand),
            None => Resolution::NotFound,
        }
    }

    fn resolution(&self, cand: &Candidate<'_>) -> Resolution {
        match self.services.get(cand.svc) {
            Some(service) => match cand.entry.0.to_aid() {
                Some(aid) => Resolution::Service {
                    key: service.key.clone(),
                    category: cand.category,
                    kind: cand.entry.1.kind,
                    aid,
                },
                None => Resolution::NotFound,
            },
            None => Resolution::NotFound,
        }
    }

    /// Call `f` for every (service, entry) matching `selected`, payment services other than
    /// the effective default left out.
    fn for_each_match<'a>(&'a self, selected: &'a [u8], mut f: impl FnMut(Candidate<'a>)) {
        if !(MIN_AID_LEN..=MAX_AID_LEN).contains(&selected.len()) {
            return;
        }
        let name = Key::new(selected);
        // The index only narrows down the entries; `rank` is the one statement of the rules.
        let mut emit = |entry: &'a (Key, Entry)| {
            let Some(rank) = rank(entry.1.kind, entry.0, name) else {
                return;
            };
            let Some(service) = self.services.get(entry.1.svc) else {
                return;
            };
            let category = service.options.category;
            let svc = entry.1.svc;
            let favoured = match category {
                Category::Payment => {
                    if self.payment_default != Some(svc) {
                        return;
                    }
                    true
                }
                Category::Transit => self.transit_default == Some(svc),
                Category::Other => self.preferred_pos == Some(svc),
            };
            f(Candidate {
                svc,
                category,
                rank,
                favoured,
                entry,
            });
        };
        Index::equal_to(&self.index.exact, name).for_each(&mut emit);
        for len in MIN_AID_LEN..=selected.len() {
            if self.index.prefix_lens & (1 << len) != 0 {
                Index::equal_to(&self.index.prefix, name.truncated(len)).for_each(&mut emit);
            }
        }
        Index::starting_with(&self.index.subset, name).for_each(&mut emit);
    }

    /// How specifically the service at `pos` matches `name`: its best entry, or `None`.
    fn service_rank(&self, pos: usize, name: Key) -> Option<Rank> {
        let service = self.services.get(pos)?;
        service
            .options
            .all_aids()
            .filter_map(|(kind, aid)| rank(kind, Key::new(aid.as_bytes()), name))
            .max()
    }

    /// Ties created by the service at `pos` with earlier services of its category (transit
    /// and other only).
    fn conflicts_of(&self, pos: usize) -> Vec<Conflict> {
        let Some(new) = self.services.get(pos) else {
            return Vec::new();
        };
        let category = new.options.category;
        if category == Category::Payment {
            return Vec::new();
        }
        let mut contested: BTreeMap<Aid, BTreeSet<usize>> = BTreeMap::new();
        // A pair of entries can only tie on a few names (see `subset_tie_lengths`); the pair is
        // a conflict when the two services' best matches for such a name are equally specific,
        // so an entry outranked by a more specific one of the same service does not count.
        let mut note = |name: Key, other: usize| {
            let same_category = self
                .services
                .get(other)
                .is_some_and(|s| s.options.category == category);
            if other == pos || !same_category {
                return false;
            }
            let ours = self.service_rank(pos, name);
            if ours.is_none() || ours != self.service_rank(other, name) {
                return false;
            }
            if let Some(aid) = name.to_aid() {
                let set = contested.entry(aid).or_default();
                set.insert(other);
                set.insert(pos);
            }
            true
        };
        for (kind, aid) in new.options.all_aids() {
            let name = Key::new(aid.as_bytes());
            // Same bytes, whatever the kinds: both rank "equal" when exactly this is selected.
            for list in [&self.index.exact, &self.index.prefix, &self.index.subset] {
                for (_, entry) in Index::equal_to(list, name) {
                    note(name, entry.svc);
                }
            }
            // Two subset AIDs also tie on truncated names that select both; the longest such
            // name is reported.
            if kind == AidKind::Subset {
                let rid = name.truncated(MIN_AID_LEN);
                for (other, entry) in Index::starting_with(&self.index.subset, rid) {
                    for len in subset_tie_lengths(name, *other).rev() {
                        if note(name.truncated(len), entry.svc) {
                            break;
                        }
                    }
                }
            }
        }
        contested
            .into_iter()
            .map(|(aid, svcs)| Conflict {
                aid,
                ids: svcs
                    .into_iter()
                    .filter_map(|p| self.services.get(p).map(|s| s.options.id.clone()))
                    .collect(),
            })
            .collect()
    }

    /// Recompute everything derived from `services`, `defaults` and `preferred`.
    fn refresh(&mut self) {
        self.positions = self
            .services
            .iter()
            .enumerate()
            .map(|(pos, s)| (s.key.clone(), pos))
            .collect();
        self.ids = self
            .services
            .iter()
            .enumerate()
            .map(|(pos, s)| (s.options.id.clone(), pos))
            .collect();
        self.total_aids = self.services.iter().map(|s| s.options.aid_count()).sum();
        self.index = Index::build(&self.services);
        self.refresh_choices();
    }

    /// Recompute the positions of the default and preferred services (after a change of
    /// `defaults` or `preferred`; `refresh` covers changes of `services`).
    fn refresh_choices(&mut self) {
        let in_category = |id: &Option<String>, category: Category| {
            id.as_ref()
                .and_then(|id| self.ids.get(id).copied())
                .filter(|&pos| {
                    self.services
                        .get(pos)
                        .is_some_and(|s| s.options.category == category)
                })
        };
        self.payment_default = match &self.defaults.payment {
            Some(_) => in_category(&self.defaults.payment, Category::Payment),
            None => {
                let mut payment = self
                    .services
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.options.category == Category::Payment)
                    .map(|(pos, _)| pos);
                match (payment.next(), payment.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        };
        self.transit_default = in_category(&self.defaults.transit, Category::Transit);
        self.preferred_pos = self
            .preferred
            .as_ref()
            .and_then(|key| self.positions.get(key).copied());
    }
}

/// Lengths of the truncated names that select both subset AIDs `a` and `b` with a subset
/// match (strict prefixes of both, at least 5 bytes). Selecting the shorter one in full is an
/// equal match for it alone, so when one is a prefix of the other only shorter names count.
/// Equal AIDs give none (they tie as "same bytes").
fn subset_tie_lengths(a: Key, b: Key) -> std::ops::Range<usize> {
    if a == b {
        return 0..0;
    }
    let common = ((a.bits ^ b.bits).leading_zeros() / 8) as usize;
    let shorter = a.len.min(b.len);
    let longest = if common < shorter {
        common
    } else {
        shorter - 1
    };
    MIN_AID_LEN..longest.max(MIN_AID_LEN - 1) + 1
}

/// Check that `id` can be a service Id: non-empty, at most [`MAX_ID_LEN`] bytes, no white
/// space or control characters. Also used for the Ids of stored identity bindings.
pub(crate) fn validate_id(id: &str) -> Result<(), RegisterError> {
    if id.is_empty() {
        return Err(RegisterError::EmptyId);
    }
    let invalid = |reason| {
        Err(RegisterError::InvalidId {
            id: id.to_owned(),
            reason,
        })
    };
    if id.len() > MAX_ID_LEN {
        return invalid("longer than 255 bytes");
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid("contains whitespace or control characters");
    }
    Ok(())
}

fn check_duplicates(opts: &ServiceOptions) -> Result<(), RegisterError> {
    let mut all: Vec<(&Aid, AidKind, usize)> = opts
        .all_aids()
        .enumerate()
        .map(|(order, (kind, aid))| (aid, kind, order))
        .collect();
    all.sort();
    for pair in all.windows(2) {
        if let [(a, first, _), (b, second, _)] = pair {
            if a == b {
                return Err(RegisterError::DuplicateAid {
                    aid: (*a).clone(),
                    first: *first,
                    second: *second,
                });
            }
        }
    }
    Ok(())
}

//! App identity binding: which user and which program may register a service `Id`.
//!
//! A service Id (`com.example.wallet.visa`) is what the user's choices are stored under: the
//! default payment and transit service is remembered by Id. If any client could register any Id,
//! a program could take over the default payment service by registering the wallet's Id while the
//! wallet is not running. So each Id is bound, on its first registration (trust on first use),
//! to the Unix user id of the caller and the SHA-256 of its executable
//! ([`crate::dbus::Caller::exe_sha256`]), and a later registration of the same Id by another
//! user or another executable is refused, unless the configuration's `[access] allow_id_rebind`
//! is true: then the Id is re-bound to the new caller and a warning is logged.
//!
//! # Rules of [`IdentityStore::check_and_bind`]
//!
//! | bound to | caller | result |
//! |---|---|---|
//! | nothing | uid U, digest D or unknown | bound to (U, D or unknown) |
//! | (U, D) | (U, D) | accepted |
//! | (U, unknown) | (U, unknown) | accepted |
//! | (U, unknown) | (U, D) | accepted, and the binding is upgraded to (U, D) |
//! | (U, D) | (U, E ≠ D) | refused: another executable |
//! | (U, D) | (U, unknown) | refused: the executable cannot be compared |
//! | (U, …) | (V ≠ U, …) | refused: another user |
//!
//! "Unknown" is a digest nfcd could not compute: reading another user's `/proc/PID/exe` needs
//! ptrace access, so a daemon running as its own unprivileged user (the shipped service, with
//! `ProtectProc=invisible`) sees no digest for other users' wallets, and those bindings are by
//! user id only. A process can also make its digest unknown on purpose (`PR_SET_DUMPABLE` 0,
//! or exiting while keeping its bus connection open in a child), so an unknown digest never
//! matches a recorded one: that would let any program of the same user pass for the wallet.
//! The other way round is safe: a binding by user id alone already trusts every program of that
//! user, so pinning it to the first of them that shows a digest gives nothing away, and from
//! then on the stronger check applies.
//!
//! Consequences worth knowing: an update of the wallet changes its digest and is refused until
//! the binding is removed or `allow_id_rebind` is set; every script run by the same interpreter
//! has the interpreter's digest (`/usr/bin/python3`), so the digest does not tell two Python
//! wallets of one user apart.
//!
//! # Limits
//!
//! At most [`MAX_BINDINGS`] Ids are bound in total and at most [`MAX_BINDINGS_PER_UID`] to one
//! user id; a registration that would exceed either is refused with
//! [`IdentityError::LimitExceeded`]. Bindings are never evicted: evicting the least recently used
//! one would let a program that registers many throw-away Ids free the wallet's Id and then take
//! it. The per-user cap keeps one user from using up the table for everyone else.
//!
//! # Persistence
//!
//! The bindings live in `identities.json` in the state directory, written atomically by the same
//! code as `defaults.json` ([`crate::hce::store`]), before [`IdentityStore::check_and_bind`]
//! accepts a new or changed binding; if that write fails nothing changes and the registration is
//! refused, so a binding that was accepted is one that survives a restart.
//!
//! ```json
//! {"version":1,"bindings":{"com.example.wallet.visa":{"uid":1000,"exe_sha256":"ba78…15ad"},
//!  "org.example.metro":{"uid":1001,"exe_sha256":null}}}
//! ```
//!
//! Digests are 64 lowercase hex digits, as `sha256sum` prints them (either case is read).
//! A corrupt file is moved to `identities.json.corrupt` and nfcd starts with no bindings (and
//! says so). A file of a newer format version, or one that cannot be read, is left alone and
//! the store refuses every new binding, so that neither the file is overwritten nor an Id
//! bound elsewhere can be claimed (fail closed).
//!
//! What this module does not do: it does not see live registrations (the registry refuses a
//! second live registration of an Id), decide who may register which category (the registry's
//! access policy), or offer a way to forget a binding: an administrator removes the entry from
//! `identities.json` while nfcd is stopped.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::hce::registry::validate_id;
use crate::hce::store::{read_versioned, to_json_line, write_atomic};
use crate::hce::StoreError;

/// File name of the bindings inside the state directory.
pub const IDENTITIES_FILE: &str = "identities.json";
/// Temporary file a save writes before renaming it over [`IDENTITIES_FILE`].
pub const IDENTITIES_TEMP_FILE: &str = ".identities.json.tmp";
/// Where a corrupt [`IDENTITIES_FILE`] is moved.
pub const IDENTITIES_CORRUPT_FILE: &str = "identities.json.corrupt";
/// Format version this module writes and reads.
pub const IDENTITIES_VERSION: u32 = 1;
/// Most Ids bound in total.
pub const MAX_BINDINGS: usize = 1024;
/// Most Ids bound to one user id.
pub const MAX_BINDINGS_PER_UID: usize = 64;

/// Who a service Id is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Unix user id of the process that registered the Id.
    pub uid: u32,
    /// SHA-256 of its executable, `None` when nfcd could not read it (see the module
    /// documentation for what that matches).
    pub exe_sha256: Option<[u8; 32]>,
}

impl Binding {
    /// The executable digest as 64 lowercase hex digits (the form `sha256sum` prints), for
    /// showing the binding in `Services`.
    pub fn exe_sha256_hex(&self) -> Option<String> {
        self.exe_sha256.as_ref().map(sha256_hex)
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.exe_sha256_hex() {
            Some(hex) => write!(f, "uid {} with executable SHA-256 {hex}", self.uid),
            None => write!(f, "uid {} with an unknown executable", self.uid),
        }
    }
}

/// What differs between a binding and a caller that was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The caller runs as another user.
    Uid,
    /// The caller runs another executable.
    Exe,
    /// The binding names an executable but the caller's could not be read.
    ExeUnknown,
}

/// Which limit a refused binding would have exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// [`MAX_BINDINGS`] in total.
    Total(usize),
    /// [`MAX_BINDINGS_PER_UID`] for one user id.
    PerUid(usize),
}

/// Why [`IdentityStore::check_and_bind`] refused a registration.
#[derive(Debug)]
pub enum IdentityError {
    /// The Id cannot be a service Id (empty, too long, white space or control characters).
    InvalidId(String),
    /// The Id is bound to another user or executable and re-binding is not allowed.
    Mismatch {
        /// The Id.
        id: String,
        /// Who it is bound to.
        bound: Binding,
        /// Who asked.
        caller: Binding,
        /// What differs.
        difference: Difference,
    },
    /// Binding the Id would exceed a limit.
    LimitExceeded {
        /// The Id.
        id: String,
        /// The user id it would be bound to.
        uid: u32,
        /// The limit.
        limit: Limit,
    },
    /// Writing the bindings failed; nothing changed.
    Save(StoreError),
    /// The bindings file could not be loaded at start-up and is left alone, so no binding can
    /// be added or changed.
    ReadOnly {
        /// Why the file was not loaded.
        reason: String,
    },
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::InvalidId(reason) => write!(f, "{reason}"),
            IdentityError::Mismatch {
                id,
                bound,
                caller,
                difference,
            } => {
                write!(f, "service Id {id:?} is bound to ")?;
                match difference {
                    Difference::Uid => write!(f, "uid {}; this caller runs as uid {}", bound.uid, caller.uid)?,
                    Difference::Exe => write!(
                        f,
                        "the executable with SHA-256 {}; this caller's executable has SHA-256 {}",
                        bound.exe_sha256_hex().unwrap_or_default(),
                        caller.exe_sha256_hex().unwrap_or_default()
                    )?,
                    Difference::ExeUnknown => write!(
                        f,
                        "the executable with SHA-256 {}; this caller's executable could not be read to compare",
                        bound.exe_sha256_hex().unwrap_or_default()
                    )?,
                }
                write!(f, " (access.allow_id_rebind lets another program take the Id over)")
            }
            IdentityError::LimitExceeded { id, uid, limit } => match limit {
                Limit::Total(n) => write!(f, "cannot bind service Id {id:?}: {n} Ids are bound already, the most nfcd keeps"),
                Limit::PerUid(n) => write!(f, "cannot bind service Id {id:?}: uid {uid} has {n} Ids bound already, the most one user may have"),
            },
            IdentityError::Save(e) => write!(f, "saving the service Id binding: {e}"),
            IdentityError::ReadOnly { reason } => write!(
                f,
                "service Id bindings cannot be changed: {reason}"
            ),
        }
    }
}

impl std::error::Error for IdentityError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IdentityError::Save(e) => Some(e),
            _ => None,
        }
    }
}

impl From<IdentityError> for crate::dbus::Error {
    /// The D-Bus error a refused `RegisterService` returns (doc/manager-api.md).
    fn from(e: IdentityError) -> crate::dbus::Error {
        use crate::dbus::Error;
        match &e {
            IdentityError::InvalidId(_) => Error::InvalidArguments(e.to_string()),
            IdentityError::Mismatch { .. } => Error::NotAuthorized(e.to_string()),
            IdentityError::LimitExceeded { .. } => Error::LimitExceeded(e.to_string()),
            IdentityError::Save(_) | IdentityError::ReadOnly { .. } => Error::Failed(e.to_string()),
        }
    }
}

/// [`IdentityStore::load`] could not use the file. `store` is what to run with instead: empty
/// and writable after a corrupt file (which was moved aside), empty and refusing every change
/// when the file was left in place (newer format, unreadable).
#[derive(Debug)]
pub struct IdentityLoadError {
    /// What went wrong.
    pub error: StoreError,
    /// The store to continue with.
    pub store: Box<IdentityStore>,
}

impl fmt::Display for IdentityLoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; ", self.error)?;
        match self.store.read_only {
            None => write!(f, "starting with no service Id bindings"),
            Some(_) => write!(f, "refusing to bind service Ids until it is fixed"),
        }
    }
}

impl std::error::Error for IdentityLoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// How many bindings the store accepts; constants outside tests.
#[derive(Clone, Copy, Debug)]
struct Limits {
    total: usize,
    per_uid: usize,
}

/// The service Id bindings of one state directory, loaded in memory and saved on every change.
#[derive(Debug)]
pub struct IdentityStore {
    dir: PathBuf,
    bindings: BTreeMap<String, Binding>,
    limits: Limits,
    /// Why changes are refused, when the file could not be loaded and was left in place.
    read_only: Option<String>,
}

/// On-disk shape; `version` first so a reader can tell formats apart.
#[derive(Serialize, Deserialize)]
struct IdentitiesFile {
    version: u32,
    bindings: BTreeMap<String, BindingRepr>,
}

#[derive(Serialize, Deserialize)]
struct BindingRepr {
    uid: u32,
    #[serde(default)]
    exe_sha256: Option<String>,
}

/// A change `check_and_bind` is about to make, for the log.
enum Change {
    New,
    Upgrade,
    Rebind(Binding, Difference),
}

impl IdentityStore {
    /// An empty store for `state_dir` that writes [`IDENTITIES_FILE`] there on the first
    /// binding.
    pub fn new(state_dir: impl Into<PathBuf>) -> IdentityStore {
        IdentityStore {
            dir: state_dir.into(),
            bindings: BTreeMap::new(),
            limits: Limits {
                total: MAX_BINDINGS,
                per_uid: MAX_BINDINGS_PER_UID,
            },
            read_only: None,
        }
    }

    /// Load the bindings of `state_dir`; a missing file means none yet. On error the
    /// [`IdentityLoadError`] carries the store to run with (see the module documentation).
    pub fn load(state_dir: impl Into<PathBuf>) -> Result<IdentityStore, IdentityLoadError> {
        let mut store = IdentityStore::new(state_dir);
        match read_versioned(
            &store.dir,
            IDENTITIES_FILE,
            IDENTITIES_CORRUPT_FILE,
            IDENTITIES_VERSION,
            decode,
        ) {
            Ok(bindings) => {
                store.bindings = bindings.unwrap_or_default();
                Ok(store)
            }
            Err(error @ StoreError::Corrupt { .. }) => Err(IdentityLoadError {
                error,
                store: Box::new(store),
            }),
            Err(error) => {
                store.read_only = Some(format!(
                    "{} was not loaded ({error})",
                    store.path().display()
                ));
                Err(IdentityLoadError {
                    error,
                    store: Box::new(store),
                })
            }
        }
    }

    /// Path of the bindings file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(IDENTITIES_FILE)
    }

    /// Who `id` is bound to, if anyone.
    pub fn get(&self, id: &str) -> Option<&Binding> {
        self.bindings.get(id)
    }

    /// How many Ids are bound.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether no Id is bound.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Check that the caller (user `uid`, executable digest `exe`) may register `id`, binding
    /// `id` to it if it is not bound yet, upgrading a binding without digest, or re-binding it
    /// when `allow_rebind` is set (the rules are in the module documentation). A new or changed
    /// binding is saved before this returns `Ok`; if saving fails nothing changes. Returns the
    /// binding now in force.
    pub fn check_and_bind(
        &mut self,
        id: &str,
        uid: u32,
        exe: Option<[u8; 32]>,
        allow_rebind: bool,
    ) -> Result<Binding, IdentityError> {
        validate_id(id).map_err(|e| IdentityError::InvalidId(e.to_string()))?;
        let caller = Binding {
            uid,
            exe_sha256: exe,
        };
        let change = match self.bindings.get(id).copied() {
            None => {
                self.check_room(id, uid, true)?;
                Change::New
            }
            Some(bound) => match compare(&bound, &caller) {
                Ok(false) => return Ok(bound),
                Ok(true) => Change::Upgrade,
                Err(difference) if allow_rebind => {
                    if bound.uid != uid {
                        self.check_room(id, uid, false)?;
                    }
                    Change::Rebind(bound, difference)
                }
                Err(difference) => {
                    return Err(IdentityError::Mismatch {
                        id: id.to_owned(),
                        bound,
                        caller,
                        difference,
                    })
                }
            },
        };
        if let Some(reason) = &self.read_only {
            return Err(IdentityError::ReadOnly {
                reason: reason.clone(),
            });
        }
        let previous = self.bindings.insert(id.to_owned(), caller);
        if let Err(e) = self.save() {
            // Keep memory and disk in agreement: undo.
            match previous {
                Some(p) => self.bindings.insert(id.to_owned(), p),
                None => self.bindings.remove(id),
            };
            return Err(IdentityError::Save(e));
        }
        match change {
            Change::New => info!("service Id {id:?} is now bound to {caller}"),
            Change::Upgrade => info!("service Id {id:?}: executable now known, bound to {caller}"),
            Change::Rebind(old, difference) => warn!(
                "service Id {id:?} re-bound from {old} to {caller} ({}; access.allow_id_rebind is on)",
                match difference {
                    Difference::Uid => "another user",
                    Difference::Exe => "another executable",
                    Difference::ExeUnknown => "executable could not be read",
                }
            ),
        }
        Ok(caller)
    }

    /// Refuse a binding of `id` to `uid` that would exceed a limit; `adds` when it is a new Id.
    fn check_room(&self, id: &str, uid: u32, adds: bool) -> Result<(), IdentityError> {
        let refuse = |limit| {
            Err(IdentityError::LimitExceeded {
                id: id.to_owned(),
                uid,
                limit,
            })
        };
        if adds && self.bindings.len() >= self.limits.total {
            return refuse(Limit::Total(self.limits.total));
        }
        let of_uid = self.bindings.values().filter(|b| b.uid == uid).count();
        if of_uid >= self.limits.per_uid {
            return refuse(Limit::PerUid(self.limits.per_uid));
        }
        Ok(())
    }

    fn save(&self) -> Result<(), StoreError> {
        let file = IdentitiesFile {
            version: IDENTITIES_VERSION,
            bindings: self
                .bindings
                .iter()
                .map(|(id, b)| {
                    (
                        id.clone(),
                        BindingRepr {
                            uid: b.uid,
                            exe_sha256: b.exe_sha256_hex(),
                        },
                    )
                })
                .collect(),
        };
        let text = to_json_line(&file).map_err(|source| StoreError::Io {
            path: self.path(),
            source,
        })?;
        write_atomic(&self.dir, IDENTITIES_TEMP_FILE, IDENTITIES_FILE, &text)
    }
}

/// Compare a caller with the binding of the Id it registers: `Ok(false)` when it matches as is,
/// `Ok(true)` when it matches and the binding should be upgraded with the caller's digest.
fn compare(bound: &Binding, caller: &Binding) -> Result<bool, Difference> {
    if bound.uid != caller.uid {
        return Err(Difference::Uid);
    }
    match (&bound.exe_sha256, &caller.exe_sha256) {
        (None, None) => Ok(false),
        (None, Some(_)) => Ok(true),
        (Some(b), Some(c)) if b == c => Ok(false),
        (Some(_), Some(_)) => Err(Difference::Exe),
        (Some(_), None) => Err(Difference::ExeUnknown),
    }
}

fn decode(text: &[u8]) -> Result<BTreeMap<String, Binding>, String> {
    let file: IdentitiesFile = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    file.bindings
        .into_iter()
        .map(|(id, b)| {
            validate_id(&id).map_err(|e| e.to_string())?;
            let exe_sha256 = match b.exe_sha256 {
                Some(hex) => Some(
                    parse_sha256_hex(&hex)
                        .ok_or_else(|| format!("Id {id:?}: {hex:?} is not a SHA-256 digest"))?,
                ),
                None => None,
            };
            Ok((
                id,
                Binding {
                    uid: b.uid,
                    exe_sha256,
                },
            ))
        })
        .collect()
}

/// Lowercase hex of a digest.
fn sha256_hex(digest: &[u8; 32]) -> String {
    crate::hex(digest).to_ascii_lowercase()
}

/// Exactly 64 hex digits (either case) as a digest.
fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    // from_str_radix alone would also take a sign ("+f").
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const WALLET: &str = "com.example.wallet.visa";
    const METRO: &str = "org.example.metro";
    /// SHA-256("abc"), FIPS 180-2 appendix B.1.
    const ABC: [u8; 32] = [
        0xBA, 0x78, 0x16, 0xBF, 0x8F, 0x01, 0xCF, 0xEA, 0x41, 0x41, 0x40, 0xDE, 0x5D, 0xAE, 0x22,
        0x23, 0xB0, 0x03, 0x61, 0xA3, 0x96, 0x17, 0x7A, 0x9C, 0xB4, 0x10, 0xFF, 0x61, 0xF2, 0x00,
        0x15, 0xAD,
    ];
    const ABC_HEX: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const OTHER: [u8; 32] = [0x11; 32];

    fn file_text(store: &IdentityStore) -> String {
        fs::read_to_string(store.path()).expect("identities.json")
    }

    fn refused(r: Result<Binding, IdentityError>) -> IdentityError {
        match r {
            Err(e) => e,
            Ok(b) => panic!("expected a refusal, got {b:?}"),
        }
    }

    fn difference(e: &IdentityError) -> Option<Difference> {
        match e {
            IdentityError::Mismatch { difference, .. } => Some(*difference),
            _ => None,
        }
    }

    #[test]
    fn identity_first_registration_binds_and_saves() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        assert_eq!(store.get(WALLET), None);
        let b = store
            .check_and_bind(WALLET, 1000, Some(ABC), false)
            .unwrap();
        assert_eq!(
            b,
            Binding {
                uid: 1000,
                exe_sha256: Some(ABC)
            }
        );
        assert_eq!(store.get(WALLET), Some(&b));
        assert_eq!(b.exe_sha256_hex().as_deref(), Some(ABC_HEX));
        store.check_and_bind(METRO, 1001, None, false).unwrap();
        assert_eq!(
            file_text(&store),
            format!(
                "{{\"version\":1,\"bindings\":{{\"com.example.wallet.visa\":{{\"uid\":1000,\
                 \"exe_sha256\":\"{ABC_HEX}\"}},\"org.example.metro\":{{\"uid\":1001,\
                 \"exe_sha256\":null}}}}}}\n"
            )
        );
        assert!(!dir.path().join(IDENTITIES_TEMP_FILE).exists());
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn identity_same_caller_is_accepted_without_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        store
            .check_and_bind(WALLET, 1000, Some(ABC), false)
            .unwrap();
        // A matching registration changes nothing, so it must not touch the disk: replace the
        // file with a marker and see it survive.
        fs::write(store.path(), "marker").unwrap();
        let b = store
            .check_and_bind(WALLET, 1000, Some(ABC), false)
            .unwrap();
        assert_eq!(b.exe_sha256, Some(ABC));
        assert_eq!(file_text(&store), "marker");
    }

    #[test]
    fn identity_other_uid_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        store
            .check_and_bind(WALLET, 1000, Some(ABC), false)
            .unwrap();
        for exe in [Some(ABC), Some(OTHER), None] {
            let e = refused(store.check_and_bind(WALLET, 1001, exe, false));
            assert_eq!(difference(&e), Some(Difference::Uid));
            assert_eq!(
                e.to_string(),
                "service Id \"com.example.wallet.visa\" is bound to uid 1000; this caller runs \
                 as uid 1001 (access.allow_id_rebind lets another program take the Id over)"
            );
            let wire = crate::dbus::Error::from(e);
            assert_eq!(wire.dbus_name(), "org.nfcd.Error.NotAuthorized");
        }
        // A binding without digest is still a binding to its user.
        store.check_and_bind(METRO, 1000, None, false).unwrap();
        let e = refused(store.check_and_bind(METRO, 0, Some(ABC), false));
        assert_eq!(difference(&e), Some(Difference::Uid));
        assert_eq!(
            store.get(WALLET),
            Some(&Binding {
                uid: 1000,
                exe_sha256: Some(ABC)
            })
        );
    }

    #[test]
    fn identity_other_executable_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        store
            .check_and_bind(WALLET, 1000, Some(ABC), false)
            .unwrap();
        let e = refused(store.check_and_bind(WALLET, 1000, Some(OTHER), false));
        assert_eq!(difference(&e), Some(Difference::Exe));
        assert_eq!(
            e.to_string(),
            format!(
                "service Id \"com.example.wallet.visa\" is bound to the executable with SHA-256 \
                 {ABC_HEX}; this caller's executable has SHA-256 {} (access.allow_id_rebind \
                 lets another program take the Id over)",
                "11".repeat(32)
            )
        );
        assert_eq!(
            crate::dbus::Error::from(e).dbus_name(),
            "org.nfcd.Error.NotAuthorized"
        );
    }

    #[test]
    fn identity_unknown_digest_never_matches_a_recorded_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        store
            .check_and_bind(WALLET, 1000, Some(ABC), false)
            .unwrap();
        let e = refused(store.check_and_bind(WALLET, 1000, None, false));
        assert_eq!(difference(&e), Some(Difference::ExeUnknown));
        assert!(
            e.to_string()
                .contains("this caller's executable could not be read to compare"),
            "{e}"
        );
        assert_eq!(store.get(WALLET).and_then(|b| b.exe_sha256), Some(ABC));
    }

    #[test]
    fn identity_unknown_digest_binds_by_uid_and_upgrades_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        let b = store.check_and_bind(WALLET, 1000, None, false).unwrap();
        assert_eq!(b.exe_sha256, None);
        // Unknown matches unknown for the same user.
        assert_eq!(store.check_and_bind(WALLET, 1000, None, false).unwrap(), b);
        // The first digest seen from that user pins the binding, on disk too.
        let b = store
            .check_and_bind(WALLET, 1000, Some(ABC), false)
            .unwrap();
        assert_eq!(b.exe_sha256, Some(ABC));
        assert!(file_text(&store).contains(ABC_HEX));
        // From then on the stronger check applies.
        let e = refused(store.check_and_bind(WALLET, 1000, None, false));
        assert_eq!(difference(&e), Some(Difference::ExeUnknown));
        let e = refused(store.check_and_bind(WALLET, 1000, Some(OTHER), false));
        assert_eq!(difference(&e), Some(Difference::Exe));
    }

    #[test]
    fn identity_rebind_when_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        store
            .check_and_bind(WALLET, 1000, Some(ABC), false)
            .unwrap();
        // Another executable of the same user (an updated wallet).
        let b = store
            .check_and_bind(WALLET, 1000, Some(OTHER), true)
            .unwrap();
        assert_eq!(b.exe_sha256, Some(OTHER));
        // Another user.
        let b = store
            .check_and_bind(WALLET, 1001, Some(OTHER), true)
            .unwrap();
        assert_eq!(b.uid, 1001);
        // An unknown digest re-binds by user id only: the last registration wins.
        let b = store.check_and_bind(WALLET, 1001, None, true).unwrap();
        assert_eq!(
            b,
            Binding {
                uid: 1001,
                exe_sha256: None
            }
        );
        let reloaded = IdentityStore::load(dir.path()).unwrap();
        assert_eq!(reloaded.get(WALLET), Some(&b));
        // allow_rebind changes nothing for a matching caller or a new Id.
        assert_eq!(store.check_and_bind(WALLET, 1001, None, true).unwrap(), b);
    }

    #[test]
    fn identity_restart_keeps_bindings() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = IdentityStore::new(dir.path());
            store
                .check_and_bind(WALLET, 1000, Some(ABC), false)
                .unwrap();
            store.check_and_bind(METRO, 1001, None, false).unwrap();
        }
        let mut store = IdentityStore::load(dir.path()).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(
            store.get(METRO),
            Some(&Binding {
                uid: 1001,
                exe_sha256: None
            })
        );
        let e = refused(store.check_and_bind(WALLET, 1000, Some(OTHER), false));
        assert_eq!(difference(&e), Some(Difference::Exe));
        store
            .check_and_bind(WALLET, 1000, Some(ABC), false)
            .unwrap();
    }

    #[test]
    fn identity_missing_file_and_dir() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("not-yet");
        let mut store = IdentityStore::load(&state).unwrap();
        assert!(store.is_empty());
        // The first binding creates the state directory.
        store.check_and_bind(WALLET, 1000, None, false).unwrap();
        assert!(state.join(IDENTITIES_FILE).exists());
    }

    #[test]
    fn identity_uppercase_digest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(IDENTITIES_FILE),
            format!(
                "{{\"version\":1,\"bindings\":{{\"{WALLET}\":{{\"uid\":7,\"exe_sha256\":\"{}\"}},\
                 \"{METRO}\":{{\"uid\":8}}}}}}",
                ABC_HEX.to_uppercase()
            ),
        )
        .unwrap();
        let store = IdentityStore::load(dir.path()).unwrap();
        assert_eq!(store.get(WALLET).and_then(|b| b.exe_sha256), Some(ABC));
        assert_eq!(
            store.get(METRO).map(|b| (b.uid, b.exe_sha256)),
            Some((8, None))
        );
    }

    #[test]
    fn identity_corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(IDENTITIES_FILE);
        let corrupt = dir.path().join(IDENTITIES_CORRUPT_FILE);
        let bad_digest = format!("{}+f", &ABC_HEX[..62]);
        let cases = [
            "{\"version\":1,\"bindings\":".to_owned(),
            "not json".to_owned(),
            "{\"bindings\":{}}".to_owned(),
            "{\"version\":0,\"bindings\":{}}".to_owned(),
            "{\"version\":1}".to_owned(),
            "{\"version\":1,\"bindings\":{\"\":{\"uid\":1}}}".to_owned(),
            "{\"version\":1,\"bindings\":{\"a b\":{\"uid\":1}}}".to_owned(),
            "{\"version\":1,\"bindings\":{\"a.b\":{\"uid\":-1}}}".to_owned(),
            "{\"version\":1,\"bindings\":{\"a.b\":{\"exe_sha256\":null}}}".to_owned(),
            format!("{{\"version\":1,\"bindings\":{{\"a.b\":{{\"uid\":1,\"exe_sha256\":\"{}\"}}}}}}", &ABC_HEX[..62]),
            format!("{{\"version\":1,\"bindings\":{{\"a.b\":{{\"uid\":1,\"exe_sha256\":\"{bad_digest}\"}}}}}}"),
            format!("{{\"version\":1,\"bindings\":{{\"a.b\":{{\"uid\":1,\"exe_sha256\":\"{}\"}}}}}}", "zz".repeat(32)),
        ];
        for bad in &cases {
            fs::write(&path, bad).unwrap();
            let e = match IdentityStore::load(dir.path()) {
                Err(e) => e,
                Ok(s) => panic!("{bad} loaded as {s:?}"),
            };
            assert!(
                matches!(&e.error, StoreError::Corrupt { kept: Some(k), .. } if *k == corrupt),
                "{bad}: {e}"
            );
            assert_eq!(fs::read_to_string(&corrupt).unwrap(), *bad);
            assert!(!path.exists(), "{bad}");
            assert!(
                e.to_string()
                    .ends_with("starting with no service Id bindings"),
                "{e}"
            );
            // The fallback store is empty and writable: it binds and writes a fresh file.
            let mut store = e.store;
            assert!(store.is_empty());
            store.check_and_bind(WALLET, 1000, None, false).unwrap();
            assert_eq!(IdentityStore::load(dir.path()).unwrap().len(), 1);
            fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn identity_newer_or_unreadable_file_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(IDENTITIES_FILE);
        let newer = "{\"version\":2,\"bindings\":[]}";
        fs::write(&path, newer).unwrap();
        let e = IdentityStore::load(dir.path()).unwrap_err();
        assert!(
            matches!(
                e.error,
                StoreError::UnsupportedVersion {
                    version: 2,
                    supported: 1,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e
            .to_string()
            .ends_with("refusing to bind service Ids until it is fixed"));
        let mut store = e.store;
        let e = refused(store.check_and_bind(WALLET, 1000, Some(ABC), false));
        assert!(matches!(e, IdentityError::ReadOnly { .. }), "{e}");
        assert_eq!(
            crate::dbus::Error::from(e).dbus_name(),
            "org.nfcd.Error.Failed"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), newer);
        assert_eq!(store.get(WALLET), None);

        // A file that cannot be read (here: a directory in its place) is not overwritten either.
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        let e = IdentityStore::load(dir.path()).unwrap_err();
        assert!(matches!(e.error, StoreError::Io { .. }), "{e}");
        let mut store = e.store;
        let e = refused(store.check_and_bind(WALLET, 1000, None, false));
        assert!(matches!(e, IdentityError::ReadOnly { .. }), "{e}");
        assert!(path.is_dir());
    }

    #[test]
    fn identity_failed_save_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        store.check_and_bind(WALLET, 1000, None, false).unwrap();
        // A directory where the temp file goes makes the next save fail.
        fs::create_dir(dir.path().join(IDENTITIES_TEMP_FILE)).unwrap();
        let e = refused(store.check_and_bind(METRO, 1000, None, false));
        assert!(
            matches!(e, IdentityError::Save(StoreError::Io { .. })),
            "{e}"
        );
        assert_eq!(
            crate::dbus::Error::from(e).dbus_name(),
            "org.nfcd.Error.Failed"
        );
        assert_eq!(store.get(METRO), None);
        // An upgrade that cannot be saved is undone too.
        let e = refused(store.check_and_bind(WALLET, 1000, Some(ABC), false));
        assert!(matches!(e, IdentityError::Save(_)), "{e}");
        assert_eq!(store.get(WALLET).and_then(|b| b.exe_sha256), None);
        fs::remove_dir(dir.path().join(IDENTITIES_TEMP_FILE)).unwrap();
        store.check_and_bind(METRO, 1000, None, false).unwrap();
        assert_eq!(IdentityStore::load(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn identity_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        store.limits = Limits {
            total: 5,
            per_uid: 2,
        };
        store.check_and_bind("a.one", 1, None, false).unwrap();
        store.check_and_bind("a.two", 1, None, false).unwrap();
        let e = refused(store.check_and_bind("a.three", 1, None, false));
        assert!(
            matches!(
                e,
                IdentityError::LimitExceeded {
                    uid: 1,
                    limit: Limit::PerUid(2),
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "cannot bind service Id \"a.three\": uid 1 has 2 Ids bound already, the most one \
             user may have"
        );
        assert_eq!(
            crate::dbus::Error::from(e).dbus_name(),
            "org.nfcd.Error.LimitExceeded"
        );
        // Existing bindings of a full user still match and upgrade.
        store.check_and_bind("a.one", 1, None, false).unwrap();
        store.check_and_bind("a.one", 1, Some(ABC), false).unwrap();
        store.check_and_bind("b.one", 2, None, false).unwrap();
        store.check_and_bind("b.two", 2, None, false).unwrap();
        // Re-binding to a user that is full is refused like a new binding; to its own user not.
        let e = refused(store.check_and_bind("b.one", 1, None, true));
        assert!(
            matches!(
                e,
                IdentityError::LimitExceeded {
                    limit: Limit::PerUid(2),
                    ..
                }
            ),
            "{e}"
        );
        store.check_and_bind("b.one", 2, Some(ABC), false).unwrap();
        store.check_and_bind("b.one", 2, Some(OTHER), true).unwrap();
        store.check_and_bind("c.one", 3, None, false).unwrap();
        let e = refused(store.check_and_bind("d.one", 4, None, false));
        assert!(
            matches!(
                e,
                IdentityError::LimitExceeded {
                    uid: 4,
                    limit: Limit::Total(5),
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(store.len(), 5);
        // The limits are not a reason to drop anything that was already bound.
        assert_eq!(IdentityStore::load(dir.path()).unwrap().len(), 5);
    }

    #[test]
    fn identity_invalid_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = IdentityStore::new(dir.path());
        for id in [
            "",
            "com.example wallet",
            "com.example\u{7}",
            &"a".repeat(256),
        ] {
            let e = refused(store.check_and_bind(id, 1000, None, false));
            assert!(matches!(e, IdentityError::InvalidId(_)), "{id:?}: {e}");
            assert_eq!(
                crate::dbus::Error::from(e).dbus_name(),
                "org.nfcd.Error.InvalidArguments"
            );
        }
        assert!(store.is_empty());
        assert!(!store.path().exists());
    }

    #[test]
    fn identity_binding_display() {
        let known = Binding {
            uid: 1000,
            exe_sha256: Some(ABC),
        };
        assert_eq!(
            known.to_string(),
            format!("uid 1000 with executable SHA-256 {ABC_HEX}")
        );
        let unknown = Binding {
            uid: 0,
            exe_sha256: None,
        };
        assert_eq!(unknown.to_string(), "uid 0 with an unknown executable");
        assert_eq!(unknown.exe_sha256_hex(), None);
        assert_eq!(parse_sha256_hex(ABC_HEX), Some(ABC));
        assert_eq!(parse_sha256_hex(&ABC_HEX[..63]), None);
        assert_eq!(parse_sha256_hex(&format!("{ABC_HEX}0")), None);
    }
}

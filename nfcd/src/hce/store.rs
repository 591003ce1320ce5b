//! Persistence of the user's default payment and transit services.
//!
//! Registrations live only as long as the wallet's bus connection, but the user's choice of
//! default payment and transit service must survive reboots. This module reads and writes that
//! choice as a small versioned JSON file in the state directory (`StateDirectory=nfcd` →
//! `/var/lib/nfcd/defaults.json`):
//!
//! ```json
//! {"version":1,"payment":"com.example.wallet","transit":null}
//! ```
//!
//! Writes are atomic: the new content goes to `.defaults.json.tmp` in the same directory, is
//! fsynced, renamed over `defaults.json`, and the directory is fsynced, so after a crash or power
//! loss the file holds either the old or the new defaults, never a mix. A temp file left behind
//! by a crash is never read and is overwritten by the next save.
//!
//! Loading tolerates a missing file (no defaults chosen yet). A file that cannot be decoded is
//! moved aside to `defaults.json.corrupt` (replacing an older one) and reported as
//! [`StoreError::Corrupt`]; the daemon then starts with empty defaults and the next save
//! writes a fresh file. A file of a newer format version is reported as
//! [`StoreError::UnsupportedVersion`] and left in place. This module does no locking: one
//! daemon owns the state directory.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the defaults inside the state directory.
pub const DEFAULTS_FILE: &str = "defaults.json";
/// Temporary file a save writes before renaming it over [`DEFAULTS_FILE`].
pub const DEFAULTS_TEMP_FILE: &str = ".defaults.json.tmp";
/// Where a corrupt [`DEFAULTS_FILE`] is moved.
pub const DEFAULTS_CORRUPT_FILE: &str = "defaults.json.corrupt";
/// Format version this module writes and reads.
pub const DEFAULTS_VERSION: u32 = 1;

/// The user's default service Id per category (see `registry` for how they are applied).
///
/// Only payment and transit have defaults; `other` AIDs are shared and resolved by the
/// preferred service instead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Defaults {
    /// Id of the default payment service.
    pub payment: Option<String>,
    /// Id of the default transit service.
    pub transit: Option<String>,
}

/// On-disk shape; `version` first so a reader can tell formats apart.
#[derive(Serialize, Deserialize)]
struct DefaultsFile {
    version: u32,
    #[serde(default)]
    payment: Option<String>,
    #[serde(default)]
    transit: Option<String>,
}

/// Only the version, read first so a newer format is recognised even if the rest differs.
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// Why defaults could not be loaded or saved.
#[derive(Debug)]
pub enum StoreError {
    /// Reading, writing, syncing or renaming failed.
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The operating system error.
        source: io::Error,
    },
    /// The file exists but is not a valid defaults file.
    Corrupt {
        /// The file that was read.
        path: PathBuf,
        /// Where it was moved, or `None` if moving it failed too.
        kept: Option<PathBuf>,
        /// What is wrong with it.
        reason: String,
    },
    /// The file was written by a newer format version; it is left untouched.
    UnsupportedVersion {
        /// The file that was read.
        path: PathBuf,
        /// The version it declares.
        version: u32,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StoreError::Corrupt { path, kept, reason } => {
                write!(f, "{}: corrupt defaults file ({reason})", path.display())?;
                match kept {
                    Some(kept) => write!(f, "; moved to {}", kept.display()),
                    None => write!(f, "; could not move it aside"),
                }
            }
            StoreError::UnsupportedVersion { path, version } => write!(
                f,
                "{}: defaults file version {version} is newer than the supported version {DEFAULTS_VERSION}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The defaults file of one state directory.
#[derive(Clone, Debug)]
pub struct DefaultsStore {
    dir: PathBuf,
}

impl DefaultsStore {
    /// A store in `state_dir` (created on first save if missing).
    pub fn new(state_dir: impl Into<PathBuf>) -> DefaultsStore {
        DefaultsStore {
            dir: state_dir.into(),
        }
    }

    /// Path of the defaults file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(DEFAULTS_FILE)
    }

    /// Read the defaults; a missing file gives empty defaults (see the module documentation
    /// for corrupt and newer files).
    pub fn load(&self) -> Result<Defaults, StoreError> {
        let path = self.path();
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Defaults::default()),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        match decode(&text) {
            Ok(defaults) => Ok(defaults),
            Err(Decode::NewerVersion(version)) => {
                Err(StoreError::UnsupportedVersion { path, version })
            }
            Err(Decode::Invalid(reason)) => {
                let corrupt = self.dir.join(DEFAULTS_CORRUPT_FILE);
                let kept = fs::rename(&path, &corrupt).ok().map(|()| corrupt);
                Err(StoreError::Corrupt { path, kept, reason })
            }
        }
    }

    /// Write `defaults` atomically (temp file, fsync, rename, fsync of the directory).
    pub fn save(&self, defaults: &Defaults) -> Result<(), StoreError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let file = DefaultsFile {
            version: DEFAULTS_VERSION,
            payment: defaults.payment.clone(),
            transit: defaults.transit.clone(),
        };
        let mut text = serde_json::to_vec(&file)
            .map_err(|e| io_err(&self.dir)(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        text.push(b'\n');

        let temp = self.dir.join(DEFAULTS_TEMP_FILE);
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(io_err(&temp))?;
        out.write_all(&text).map_err(io_err(&temp))?;
        out.sync_all().map_err(io_err(&temp))?;
        drop(out);

        let path = self.path();
        fs::rename(&temp, &path).map_err(io_err(&path))?;
        // The rename is durable only once the directory entry itself is on disk.
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_err(&self.dir))
    }
}

enum Decode {
    NewerVersion(u32),
    Invalid(String),
}

fn decode(text: &[u8]) -> Result<Defaults, Decode> {
    let version = serde_json::from_slice::<VersionOnly>(text)
        .map_err(|e| Decode::Invalid(e.to_string()))?
        .version;
    if version > DEFAULTS_VERSION {
        return Err(Decode::NewerVersion(version));
    }
    if version != DEFAULTS_VERSION {
        return Err(Decode::Invalid(format!("unknown version {version}")));
    }
    let file: DefaultsFile =
        serde_json::from_slice(text).map_err(|e| Decode::Invalid(e.to_string()))?;
    let check = |field: &str, id: Option<String>| match id {
        Some(id) if id.is_empty() => Err(Decode::Invalid(format!("empty {field} id"))),
        id => Ok(id),
    };
    Ok(Defaults {
        payment: check("payment", file.payment)?,
        transit: check("transit", file.transit)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh, empty directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "nfcd-store-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn hce_store_round_trip() {
        let dir = TempDir::new();
        let store = DefaultsStore::new(&dir.0);
        let defaults = Defaults {
            payment: Some("com.example.wallet".into()),
            transit: None,
        };
        store.save(&defaults).unwrap();
        assert_eq!(store.load().unwrap(), defaults);
        let text = fs::read_to_string(store.path()).unwrap();
        assert_eq!(
            text,
            "{\"version\":1,\"payment\":\"com.example.wallet\",\"transit\":null}\n"
        );
        // Overwrite, and no temp file stays behind.
        let defaults = Defaults {
            payment: None,
            transit: Some("org.example.metro".into()),
        };
        store.save(&defaults).unwrap();
        assert_eq!(store.load().unwrap(), defaults);
        assert!(!dir.0.join(DEFAULTS_TEMP_FILE).exists());
    }

    #[test]
    fn hce_store_missing_file_and_dir() {
        let dir = TempDir::new();
        let store = DefaultsStore::new(dir.0.join("not-yet"));
        assert_eq!(store.load().unwrap(), Defaults::default());
        // Saving creates the state directory.
        store.save(&Defaults::default()).unwrap();
        assert_eq!(store.load().unwrap(), Defaults::default());
    }

    #[test]
    fn hce_store_corrupt_file_is_moved_aside() {
        let dir = TempDir::new();
        let store = DefaultsStore::new(&dir.0);
        fs::write(store.path(), b"{\"version\":1,\"payment\":").unwrap();
        match store.load() {
            Err(StoreError::Corrupt {
                kept: Some(kept), ..
            }) => {
                assert_eq!(kept, dir.0.join(DEFAULTS_CORRUPT_FILE));
                assert_eq!(fs::read(&kept).unwrap(), b"{\"version\":1,\"payment\":");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // The corrupt file no longer shadows a fresh start.
        assert_eq!(store.load().unwrap(), Defaults::default());

        for bad in [
            &b"not json"[..],
            b"{\"payment\":\"a\"}",
            b"{\"version\":0}",
            b"{\"version\":1,\"payment\":\"\"}",
            b"{\"version\":1,\"payment\":7}",
        ] {
            fs::write(store.path(), bad).unwrap();
            assert!(
                matches!(store.load(), Err(StoreError::Corrupt { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn hce_store_newer_version_is_left_alone() {
        let dir = TempDir::new();
        let store = DefaultsStore::new(&dir.0);
        fs::write(store.path(), b"{\"version\":2,\"defaults\":[]}").unwrap();
        assert!(matches!(
            store.load(),
            Err(StoreError::UnsupportedVersion { version: 2, .. })
        ));
        assert!(store.path().exists());
    }

    #[test]
    fn hce_store_temp_leftover_ignored() {
        let dir = TempDir::new();
        let store = DefaultsStore::new(&dir.0);
        let defaults = Defaults {
            payment: Some("com.example.wallet".into()),
            transit: Some("org.example.metro".into()),
        };
        store.save(&defaults).unwrap();
        // A crash between write and rename leaves a partial temp file.
        fs::write(dir.0.join(DEFAULTS_TEMP_FILE), b"{\"vers").unwrap();
        assert_eq!(store.load().unwrap(), defaults);
        store.save(&Defaults::default()).unwrap();
        assert_eq!(store.load().unwrap(), Defaults::default());
        assert!(!dir.0.join(DEFAULTS_TEMP_FILE).exists());
    }
}

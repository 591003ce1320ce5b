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
//!
//! The reading and writing rules above belong to every state file, so they live in two
//! crate-internal functions, `read_versioned` and `write_atomic`, that the other state files
//! (`identities.json`, see [`crate::identity`]) use too.

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
        /// The newest version this nfcd reads.
        supported: u32,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            StoreError::Corrupt { path, kept, reason } => {
                write!(f, "{}: corrupt state file ({reason})", path.display())?;
                match kept {
                    Some(kept) => write!(f, "; moved to {}", kept.display()),
                    None => write!(f, "; could not move it aside"),
                }
            }
            StoreError::UnsupportedVersion {
                path,
                version,
                supported,
            } => write!(
                f,
                "{}: file format version {version} is newer than the supported version {supported}",
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
        read_versioned(
            &self.dir,
            DEFAULTS_FILE,
            DEFAULTS_CORRUPT_FILE,
            DEFAULTS_VERSION,
            decode,
        )
        .map(Option::unwrap_or_default)
    }

    /// Write `defaults` atomically (temp file, fsync, rename, fsync of the directory).
    pub fn save(&self, defaults: &Defaults) -> Result<(), StoreError> {
        let file = DefaultsFile {
            version: DEFAULTS_VERSION,
            payment: defaults.payment.clone(),
            transit: defaults.transit.clone(),
        };
        let text = to_json_line(&file).map_err(|source| StoreError::Io {
            path: self.path(),
            source,
        })?;
        write_atomic(&self.dir, DEFAULTS_TEMP_FILE, DEFAULTS_FILE, &text)
    }
}

/// `value` as one line of JSON.
pub(crate) fn to_json_line(value: &impl Serialize) -> io::Result<Vec<u8>> {
    let mut text = serde_json::to_vec(value).map_err(io::Error::other)?;
    text.push(b'\n');
    Ok(text)
}

/// Replace `dir/name` with `bytes` atomically: write `dir/temp_name`, fsync it, rename it over
/// `dir/name`, fsync `dir`. After a crash or power loss the file holds either the old or the
/// new content. `dir` is created if missing. Every state file of nfcd is written this way.
pub(crate) fn write_atomic(
    dir: &Path,
    temp_name: &str,
    name: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let temp = dir.join(temp_name);
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .map_err(io_err(&temp))?;
    out.write_all(bytes).map_err(io_err(&temp))?;
    out.sync_all().map_err(io_err(&temp))?;
    drop(out);

    let path = dir.join(name);
    fs::rename(&temp, &path).map_err(io_err(&path))?;
    // The rename is durable only once the directory entry itself is on disk.
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_err(dir))
}

/// Read the versioned JSON state file `dir/name` (an object whose `version` member is the
/// format version) and `decode` it. A missing file is `Ok(None)`. A file that is not such an
/// object, declares another version below `version`, or that `decode` refuses, is moved to
/// `dir/corrupt_name` (replacing an older one) and reported as [`StoreError::Corrupt`]. A file
/// of a newer version is left in place and reported as [`StoreError::UnsupportedVersion`].
pub(crate) fn read_versioned<T>(
    dir: &Path,
    name: &str,
    corrupt_name: &str,
    version: u32,
    decode: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Result<Option<T>, StoreError> {
    let path = dir.join(name);
    let text = match fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    let checked = match serde_json::from_slice::<VersionOnly>(&text) {
        Err(e) => Err(e.to_string()),
        Ok(v) if v.version > version => {
            return Err(StoreError::UnsupportedVersion {
                path,
                version: v.version,
                supported: version,
            })
        }
        Ok(v) if v.version != version => Err(format!("unknown version {}", v.version)),
        Ok(_) => decode(&text),
    };
    checked.map(Some).map_err(|reason| {
        let corrupt = dir.join(corrupt_name);
        let kept = fs::rename(&path, &corrupt).ok().map(|()| corrupt);
        StoreError::Corrupt { path, kept, reason }
    })
}

fn decode(text: &[u8]) -> Result<Defaults, String> {
    let file: DefaultsFile = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let check = |field: &str, id: Option<String>| match id {
        Some(id) if id.is_empty() => Err(format!("empty {field} id")),
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

//! End-to-end test harness of nfcd (testing tier 4 of DESIGN.md; doc/testing.md).
//!
//! What it does: puts the real pieces together, each as it runs in the field, and watches them
//! from outside.
//! - a private `dbus-daemon` per test ([`TestBus`], the nfcd tests' own helper);
//! - the virtual controller of [`nfcd::simhost`] (a PN7150 or an NCI 2.0 controller, with the
//!   virtual reader and fault injection) served on a pseudo-terminal or a TCP port in this
//!   process;
//! - the `nfcd` binary as a child process on that line, with a state directory and a
//!   configuration file of the test's own ([`process::Nfcd`]);
//! - the wallet binaries (`payment-wallet`, `transit-wallet`, `test-wallet`) as child
//!   processes whose stdout lines say what they saw ([`process::Wallet`]);
//! - D-Bus clients for `org.nfcd.Manager1` / `Adapter1` and a bus monitor ([`bus`]);
//! - reader scripts beyond the named ones of the virtual reader ([`scripts`]);
//! - [`rig::Rig`], which starts all of it, waits for each piece on a condition it can observe
//!   (a bus name, a property, the controller's RF state, a wallet's line), with a bound, and
//!   tears it down: nfcd with SIGTERM and a check of its log, everything else killed.
//!
//! What it does not do: build anything (the binaries come from `cargo build --workspace`; see
//! [`binary`]), mock anything, or sleep to synchronise. Every wait is on a condition and
//! bounded by [`WAIT`] unless a test says otherwise; a failed test keeps its scratch directory
//! (logs, configuration, state) and prints where it is.

pub mod bus;
pub mod process;
pub mod rig;
pub mod scratch;
pub mod scripts;

// The private bus of the nfcd tests, reused rather than written twice.
#[path = "../../nfcd/tests/dbus_common/mod.rs"]
mod dbus_common;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

pub use dbus_common::TestBus;

/// How long any one condition may take before a test fails instead of hanging. Generous: the
/// conditions normally hold within milliseconds, but two cores are shared by several builds.
pub const WAIT: Duration = Duration::from_secs(10);

/// Await `fut`, failing the test with `what` if it takes longer than `limit`.
pub async fn within<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not within {} ms", limit.as_millis()),
    }
}

/// Environment variable naming the directory of the binaries under test; by default the
/// target directory this test executable was built into.
pub const BIN_DIR_ENV: &str = "NFCD_E2E_BIN_DIR";

/// Path of the workspace binary `name` (`nfcd`, `payment-wallet`, ...), built by
/// `cargo build --workspace` next to this test executable (`target/<profile>/`), or in
/// [`BIN_DIR_ENV`]. Panics with instructions when it is not there: the tests never run cargo.
pub fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os(BIN_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => {
            // target/<profile>/deps/e2e-<hash> → target/<profile>/
            let exe = std::env::current_exe().unwrap_or_else(|e| {
                panic!("cannot locate the test executable to find {name} next to it: {e}")
            });
            match exe.parent().and_then(|deps| deps.parent()) {
                Some(dir) => dir.to_path_buf(),
                None => panic!(
                    "the test executable {} has no target directory above it",
                    exe.display()
                ),
            }
        }
    };
    let path = dir.join(name);
    if !path.is_file() {
        panic!(
            "{} does not exist. The end-to-end tests run the workspace's binaries and do not \
             build them: run `cargo build --workspace` first (same profile as the tests), or \
             point {BIN_DIR_ENV} at a directory holding nfcd, payment-wallet, transit-wallet \
             and test-wallet.",
            path.display()
        );
    }
    path
}

/// Upper-case hex, as the wallets print APDUs.
pub use nfcd::hex;

/// Bytes from hex written in a test (spaces allowed). Panics on a typo: test data only.
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(
        digits.len() % 2 == 0,
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).unwrap_or("");
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("bad hex {pair:?} in {text:?}"))
        })
        .collect()
}

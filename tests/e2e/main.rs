//! End-to-end scenarios of nfcd (testing tier 4): a private dbus-daemon, the nfcd binary on a
//! virtual controller served over a pty or TCP, wallets as separate processes, and the virtual
//! reader tapping. One test binary, so the workspace links it once; modules by theme.
//!
//! Needs `cargo build --workspace` first (the binaries under test) and `dbus-daemon`.

mod api;
mod builtin;
mod crash_safety;
mod failures;
mod fastpath;
mod hostile;
mod hostile_wallet;
mod lifecycle;
mod long_apdus;
mod payment;
mod routing;
mod soak;
mod transit;

//! End-to-end scenarios of nfcd (testing tier 4): a private dbus-daemon, the nfcd binary on a
//! virtual controller served over a pty or TCP, wallets as separate processes, and the virtual
//! reader tapping. One test binary, so the workspace links it once; modules by theme.
//!
//! Needs `cargo build --workspace` first (the binaries under test) and `dbus-daemon`.

mod api;
mod bench;
mod builtin;
mod crash_safety;
mod failures;
mod fastpath;
mod faults;
mod hostile;
mod hostile_wallet;
mod hotplug;
mod lifecycle;
mod long_apdus;
mod payment;
mod routing;
mod soak;
mod transit;

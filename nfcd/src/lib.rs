//! nfcd: a Linux NFC host card emulation daemon for PN7150-class controllers.
//!
//! Layers (see DESIGN.md): transports move whole NCI packets; libnci speaks NCI; the HCE
//! logic routes APDUs; the D-Bus layer exposes it. This crate holds the daemon side.

pub mod cli;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod dbus;
pub mod hce;
pub mod identity;
pub mod lock;
pub mod logging;
pub mod notify;
pub mod simhost;
pub mod transport;
pub mod uevent;

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
mod readiness;
pub mod simhost;
pub mod transport;
pub mod uevent;

/// Bytes in uppercase hex without separators (`A0000000041010`), the way AIDs are written.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02X}");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_uppercase_without_separators() {
        assert_eq!(
            super::hex(&[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10]),
            "A0000000031010"
        );
    }
}

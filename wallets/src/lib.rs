//! Wallet side of nfcd host card emulation.
//!
//! A wallet is an ordinary process that exports `org.nfcd.HostService1` on the bus, registers
//! it with the daemon's `org.nfcd.Manager1.RegisterService`, and answers the APDUs of each tap
//! (DESIGN.md "D-Bus API", "Card emulation model"). This crate gives that process:
//! - [`Registration`] / [`RegistrationHandle`]: register an [`ApduHandler`], optionally with
//!   the `OpenApduChannel` fast path; dropping the handle unregisters;
//! - [`payment`] and [`transit`]: the test card applications behind the `payment-wallet` and
//!   `transit-wallet` binaries (the `test-wallet` binary is for end-to-end tests).
//!
//! The ISO/IEC 7816-4 and EMV pieces card applications need come from `libnci`: C-APDUs and
//! status words from [`libnci::apdu`], R-APDU building from [`libnci::sim::cards`], BER-TLV and
//! data object lists from [`libnci::sim::tlv`].
//!
//! It does not talk to NFC hardware, does not resolve AIDs (the daemon does), and does not
//! implement real scheme cryptography: the cards here are for testing a reader path end to end.

pub mod cli;
pub mod hex;
pub mod payment;
pub mod registration;
pub mod transit;

pub use registration::{ApduHandler, Bus, Error, Registration, RegistrationHandle, ServiceOptions};

//! Host card emulation logic: which wallet service answers which APDU.
//!
//! Layer 3 of the daemon, between libnci and the D-Bus interfaces: pure logic, no D-Bus, no
//! async runtime, no clock, no controller. The D-Bus layer translates `RegisterService` and
//! the other `Manager1` calls into [`Registry`] calls and runs one [`Session`] per RF
//! activation; the daemon persists [`Defaults`] with [`DefaultsStore`].
//!
//! - [`aid`]: validated application identifiers (ISO/IEC 7816-4 §8.2.1.2).
//! - [`registry`]: registrations, categories, access policy, conflicts and AID resolution.
//! - [`session`]: routing of the APDUs of one tap (ISO/IEC 7816-4 §11.2.2 `SELECT`).
//! - [`store`]: atomic persistence of the default payment and transit services.

pub mod aid;
pub mod registry;
pub mod session;
pub mod store;

#[cfg(test)]
mod tests;

pub use aid::{Aid, AidError};
pub use registry::{
    AccessPolicy, AidKind, Caller, Category, Conflict, LockState, Principal, RegisterError,
    Registered, Registry, Resolution, Service, ServiceKey, ServiceOptions,
};
pub use session::{Action, Session};
pub use store::{Defaults, DefaultsStore, StoreError};

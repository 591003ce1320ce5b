//! Simulation: a virtual NFC controller, a virtual contactless reader and a deterministic
//! harness that runs them against a device host with simulated time.
//!
//! Pieces (each usable alone):
//! - [`nfcc`]: the virtual NFCC (PN7150 or generic NCI 2.0), sans-IO like the rest of the crate.
//! - [`fault`]: a fault-injecting wrapper around any [`nfcc::NfccEndpoint`].
//! - [`bus`]: an I²C timing model; [`rf`]: ISO-DEP over-the-air timing.
//! - [`reader`] and [`scripts`]: a payment terminal or transit gate running scripted taps.
//! - [`cards`]: small card applications answering those scripts.
//! - [`harness`]: drives a DH endpoint, the NFCC and a reader in simulated time.
//! - [`rng`]: the seeded generator all random choices come from; [`tlv`]: BER-TLV for the EMV
//!   script and card.
//!
//! Nothing here reads a clock, sleeps or does I/O: a run is a pure function of its inputs and
//! seeds, so failures replay exactly.

pub mod bus;
pub mod cards;
pub mod fault;
pub mod harness;
pub mod nfcc;
pub mod reader;
pub mod rf;
pub mod rng;
pub mod scripts;
pub mod tlv;

pub use bus::{BusSpeed, BusStats, Direction, I2cBus};
pub use cards::{CardApplet, EmvCard, SweepCard, TransitCard};
pub use fault::{Fault, FaultInjector, Trigger};
pub use harness::{
    nci2_setup, pn7150_setup, ControllerDh, DhEndpoint, DhRecord, DhTimelineEntry, Harness,
    HarnessError, HostApps, HostExchange, ScriptedDh, TraceEntry,
};
pub use nfcc::{Nfcc, NfccConfig, NfccEndpoint, Profile, RfError, RfEvent, RfState, Transmit};
pub use reader::{ApduRecord, Reader, ReaderConfig, TapEnd, TapOutcome, TapReport};
pub use rf::RfTiming;
pub use rng::XorShift64;
pub use scripts::{Expect, Script, Step};

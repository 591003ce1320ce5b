//! # libnci — the NFC Controller Interface as a sans-IO library
//!
//! `libnci` speaks NCI (NFC Forum NCI 1.0 and 2.0) to an NFC controller (NFCC) from the device
//! host (DH) side, and — behind the `sim` feature — plays the controller and a contactless reader
//! for tests.
//!
//! The core never does I/O, never reads a clock and never spawns: callers feed it bytes and the
//! current [`time::Instant`], and poll it for bytes to send, the next deadline and events. This
//! keeps every behaviour testable byte for byte and lets the same code run on a Raspberry Pi, in
//! a daemon or inside a deterministic simulation.
//!
//! Layout:
//! - [`wire`]: packet layout only — header views, message `Repr`s, code spaces, configuration
//!   TLVs, segmentation and reassembly.
//! - [`apdu`]: ISO/IEC 7816-4 command APDUs, SELECT by DF name, status words.
//! - [`time`]: the caller-supplied notion of time.
//! - [`routing`]: the listen-mode routing table builder (default route = host).
//!
//! Without the default `std` feature the crate is `#![no_std]` and needs no allocator.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod apdu;
pub mod controller;
pub mod routing;
#[cfg(feature = "sim")]
pub mod sim;
pub mod time;
pub mod wire;

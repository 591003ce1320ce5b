#![no_std]

pub mod apdu;

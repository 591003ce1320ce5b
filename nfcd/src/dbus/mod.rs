//! The D-Bus layer of nfcd.
pub mod error;
pub mod options;

pub mod hce;

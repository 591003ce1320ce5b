pub mod notify;
pub mod uevent;

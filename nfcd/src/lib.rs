pub mod dbus;

//! `nfcd::uevent::Uevent::parse` on arbitrary datagrams, as anything able to send to the
//! `NETLINK_KOBJECT_UEVENT` socket could (lib/kobject_uevent.c format:
//! `action@devpath\0KEY=VALUE\0...`), and `DeviceWatch::classify` on what parses.
//!
//! Checks, for every datagram that parses: the action and devpath are the header's; every
//! entry has a non-empty key without `=`; the named fields are the first value of their key;
//! written back in the kernel's format it parses to the same event; a watch on a node only
//! reports events that name that node.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nfcd::uevent::{DeviceWatch, Uevent};

fn watches() -> &'static [DeviceWatch] {
    static WATCHES: OnceLock<Vec<DeviceWatch>> = OnceLock::new();
    WATCHES.get_or_init(|| {
        [
            "/dev/i2c-1",
            "/dev/ttyUSB0",
            "/dev/gpiochip0",
            "/dev/nfc-pn7150",
        ]
        .iter()
        .filter_map(|p| DeviceWatch::new(Path::new(p)).ok())
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = Uevent::parse(data) else {
        return;
    };
    let header_end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let header = std::str::from_utf8(&data[..header_end]).expect("a parsed header is UTF-8");
    let (action, devpath) = header.split_once('@').expect("a parsed header has '@'");
    assert_eq!(event.action.as_str(), action);
    assert_eq!(event.devpath, devpath);
    assert!(event.devpath.starts_with('/'));

    let first = |key: &str| {
        event
            .env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    for (key, value) in &event.env {
        assert!(!key.is_empty() && !key.contains('=') && !key.contains('\0'));
        assert!(!value.contains('\0'));
        assert_eq!(event.get(key), first(key).as_deref());
    }
    assert_eq!(event.subsystem, first("SUBSYSTEM"));
    assert_eq!(event.devname, first("DEVNAME"));
    assert_eq!(event.devtype, first("DEVTYPE"));
    assert_eq!(event.driver, first("DRIVER"));

    let mut rewritten = format!("{}@{}\0", event.action, event.devpath).into_bytes();
    for (key, value) in &event.env {
        rewritten.extend_from_slice(key.as_bytes());
        rewritten.push(b'=');
        rewritten.extend_from_slice(value.as_bytes());
        rewritten.push(0);
    }
    assert_eq!(Uevent::parse(&rewritten).as_ref(), Ok(&event));

    for watch in watches() {
        if watch.classify(&event).is_some() {
            assert_eq!(event.devname.as_deref(), Some(watch.devname()));
            if let Some(subsystem) = watch.subsystem() {
                assert_eq!(event.subsystem.as_deref(), Some(subsystem));
            }
        }
    }
});

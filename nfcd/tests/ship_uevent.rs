//! Kernel uevent parsing and device-node watching, on the kernel's own message bytes
//! (`action@devpath\0KEY=VALUE\0...`, lib/kobject_uevent.c), plus one live round trip through
//! the real NETLINK_KOBJECT_UEVENT socket.

use std::path::Path;
use std::time::Duration;

use nfcd::uevent::{
    DeviceEvent, DeviceWatch, Uevent, UeventAction, UeventError, UeventSocket, WatchError,
};

// `echo change > /sys/class/tty/tty0/uevent`, captured from the netlink socket (kernel 6.18).
const TTY0_CHANGE: &[u8] = b"change@/devices/virtual/tty/tty0\0\
ACTION=change\0DEVPATH=/devices/virtual/tty/tty0\0SUBSYSTEM=tty\0SYNTH_UUID=0\0\
MAJOR=4\0MINOR=0\0DEVNAME=tty0\0SEQNUM=815\0";

// A CP2102 USB-serial adapter on a Raspberry Pi 4 (VL805 xHCI), plugged in: the usb-serial
// port device first (no node), then its tty.
const USB_SERIAL_PORT_ADD: &[u8] = b"add@/devices/platform/scb/fd500000.pcie/pci0000:00/\
0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0\0\
ACTION=add\0DEVPATH=/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/\
usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0\0SUBSYSTEM=usb-serial\0SEQNUM=2344\0";

const USB_SERIAL_PORT_BIND: &[u8] = b"bind@/devices/platform/scb/fd500000.pcie/pci0000:00/\
0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0\0\
ACTION=bind\0DEVPATH=/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/\
usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0\0SUBSYSTEM=usb-serial\0DRIVER=cp210x\0SEQNUM=2346\0";

const TTYUSB0_ADD: &[u8] = b"add@/devices/platform/scb/fd500000.pcie/pci0000:00/\
0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0/tty/ttyUSB0\0\
ACTION=add\0DEVPATH=/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/\
usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0/tty/ttyUSB0\0SUBSYSTEM=tty\0MAJOR=188\0MINOR=0\0\
DEVNAME=ttyUSB0\0SEQNUM=2345\0";

// ... and unplugged: the tty goes first, then the usb-serial port.
const TTYUSB0_REMOVE: &[u8] = b"remove@/devices/platform/scb/fd500000.pcie/pci0000:00/\
0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0/tty/ttyUSB0\0\
ACTION=remove\0DEVPATH=/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/\
0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0/tty/ttyUSB0\0SUBSYSTEM=tty\0MAJOR=188\0MINOR=0\0\
DEVNAME=ttyUSB0\0SEQNUM=2391\0";

const USB_SERIAL_PORT_REMOVE: &[u8] = b"remove@/devices/platform/scb/fd500000.pcie/pci0000:00/\
0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0\0\
ACTION=remove\0DEVPATH=/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/\
0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/ttyUSB0\0SUBSYSTEM=usb-serial\0SEQNUM=2392\0";

// A second adapter's tty, removed: same subsystem, another node.
const TTYUSB1_REMOVE: &[u8] = b"remove@/devices/platform/scb/fd500000.pcie/pci0000:00/\
0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.4/1-1.4:1.0/ttyUSB1/tty/ttyUSB1\0\
ACTION=remove\0DEVPATH=/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/\
0000:01:00.0/usb1/1-1/1-1.4/1-1.4:1.0/ttyUSB1/tty/ttyUSB1\0SUBSYSTEM=tty\0MAJOR=188\0MINOR=1\0\
DEVNAME=ttyUSB1\0SEQNUM=2401\0";

// `modprobe i2c-dev` / `rmmod i2c-dev` on a Raspberry Pi 4 with dtparam=i2c_arm=on.
const I2C1_ADD: &[u8] = b"add@/devices/platform/soc/fe804000.i2c/i2c-1/i2c-dev/i2c-1\0\
ACTION=add\0DEVPATH=/devices/platform/soc/fe804000.i2c/i2c-1/i2c-dev/i2c-1\0\
SUBSYSTEM=i2c-dev\0MAJOR=89\0MINOR=1\0DEVNAME=i2c-1\0SEQNUM=1523\0";

const I2C1_REMOVE: &[u8] = b"remove@/devices/platform/soc/fe804000.i2c/i2c-1/i2c-dev/i2c-1\0\
ACTION=remove\0DEVPATH=/devices/platform/soc/fe804000.i2c/i2c-1/i2c-dev/i2c-1\0\
SUBSYSTEM=i2c-dev\0MAJOR=89\0MINOR=1\0DEVNAME=i2c-1\0SEQNUM=1601\0";

// The I²C adapter itself going away (driver unbound): no node, so not ours to report.
const I2C1_ADAPTER_REMOVE: &[u8] = b"remove@/devices/platform/soc/fe804000.i2c/i2c-1\0\
ACTION=remove\0DEVPATH=/devices/platform/soc/fe804000.i2c/i2c-1\0SUBSYSTEM=i2c\0\
DEVTYPE=i2c_adapter\0SEQNUM=1602\0";

// The BCM2711 GPIO controller's character device.
const GPIOCHIP0_ADD: &[u8] = b"add@/devices/platform/soc/fe200000.gpio/gpiochip0\0\
ACTION=add\0DEVPATH=/devices/platform/soc/fe200000.gpio/gpiochip0\0SUBSYSTEM=gpio\0\
MAJOR=254\0MINOR=0\0DEVNAME=gpiochip0\0SEQNUM=412\0";

const GPIOCHIP0_REMOVE: &[u8] = b"remove@/devices/platform/soc/fe200000.gpio/gpiochip0\0\
ACTION=remove\0DEVPATH=/devices/platform/soc/fe200000.gpio/gpiochip0\0SUBSYSTEM=gpio\0\
MAJOR=254\0MINOR=0\0DEVNAME=gpiochip0\0SEQNUM=3120\0";

// udevd's re-broadcast on group 2: "libudev\0", magic 0xfeedcafe (network order), header
// fields, then the property block. Never a kernel message.
const LIBUDEV_TTYUSB0_REMOVE: &[u8] = b"libudev\0\xfe\xed\xca\xfe\x28\x00\x00\x00\x28\x00\x00\x00\
\x60\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
ACTION=remove\0DEVPATH=/devices/virtual/tty/ttyUSB0\0SUBSYSTEM=tty\0DEVNAME=/dev/ttyUSB0\0";

fn parse(bytes: &[u8]) -> Uevent {
    match Uevent::parse(bytes) {
        Ok(e) => e,
        Err(e) => panic!("kernel uevent refused: {e}"),
    }
}

fn watch(node: &str) -> DeviceWatch {
    match DeviceWatch::new(Path::new(node)) {
        Ok(w) => w,
        Err(e) => panic!("{node}: {e}"),
    }
}

#[test]
fn ship_uevent_parse_tty_change() {
    let e = parse(TTY0_CHANGE);
    assert_eq!(e.action, UeventAction::Change);
    assert_eq!(e.devpath, "/devices/virtual/tty/tty0");
    assert_eq!(e.subsystem.as_deref(), Some("tty"));
    assert_eq!(e.devname.as_deref(), Some("tty0"));
    assert_eq!(e.devnum, Some((4, 0)));
    assert_eq!(e.seqnum, Some(815));
    assert_eq!(e.get("SYNTH_UUID"), Some("0"));
    assert_eq!(e.get("ACTION"), Some("change"));
    assert_eq!(e.env.len(), 8);
    assert_eq!(e.env[0], ("ACTION".to_owned(), "change".to_owned()));
    assert_eq!(e.env[7], ("SEQNUM".to_owned(), "815".to_owned()));
}

#[test]
fn ship_uevent_parse_usb_serial_plug_sequence() {
    let port = parse(USB_SERIAL_PORT_ADD);
    assert_eq!(port.action, UeventAction::Add);
    assert_eq!(port.subsystem.as_deref(), Some("usb-serial"));
    assert_eq!(port.devname, None, "the usb-serial port has no node");
    assert_eq!(port.devnum, None);

    let bind = parse(USB_SERIAL_PORT_BIND);
    assert_eq!(bind.action, UeventAction::Bind);
    assert_eq!(bind.driver.as_deref(), Some("cp210x"));

    let tty = parse(TTYUSB0_ADD);
    assert_eq!(tty.action, UeventAction::Add);
    assert!(tty.devpath.ends_with("/ttyUSB0/tty/ttyUSB0"));
    assert_eq!(tty.subsystem.as_deref(), Some("tty"));
    assert_eq!(tty.devname.as_deref(), Some("ttyUSB0"));
    assert_eq!(tty.devnum, Some((188, 0)));
    assert_eq!(tty.seqnum, Some(2345));

    let gone = parse(TTYUSB0_REMOVE);
    assert_eq!(gone.action, UeventAction::Remove);
    assert_eq!(gone.devname.as_deref(), Some("ttyUSB0"));
}

#[test]
fn ship_uevent_parse_i2c_dev_and_gpio() {
    let i2c = parse(I2C1_ADD);
    assert_eq!(i2c.action, UeventAction::Add);
    assert_eq!(
        i2c.devpath,
        "/devices/platform/soc/fe804000.i2c/i2c-1/i2c-dev/i2c-1"
    );
    assert_eq!(i2c.subsystem.as_deref(), Some("i2c-dev"));
    assert_eq!(i2c.devname.as_deref(), Some("i2c-1"));
    assert_eq!(i2c.devnum, Some((89, 1)));

    let adapter = parse(I2C1_ADAPTER_REMOVE);
    assert_eq!(adapter.subsystem.as_deref(), Some("i2c"));
    assert_eq!(adapter.devtype.as_deref(), Some("i2c_adapter"));
    assert_eq!(adapter.devname, None);

    let gpio = parse(GPIOCHIP0_ADD);
    assert_eq!(gpio.subsystem.as_deref(), Some("gpio"));
    assert_eq!(gpio.devname.as_deref(), Some("gpiochip0"));
    assert_eq!(gpio.devnum, Some((254, 0)));
}

#[test]
fn ship_uevent_parse_refuses_what_is_not_a_kernel_uevent() {
    assert_eq!(
        Uevent::parse(LIBUDEV_TTYUSB0_REMOVE),
        Err(UeventError::Libudev)
    );
    assert_eq!(Uevent::parse(b""), Err(UeventError::Empty));
    // No '@' in the header.
    assert_eq!(
        Uevent::parse(b"add\0ACTION=add\0"),
        Err(UeventError::BadHeader)
    );
    // Empty action, relative devpath.
    assert_eq!(Uevent::parse(b"@/devices/x\0"), Err(UeventError::BadHeader));
    assert_eq!(
        Uevent::parse(b"add@devices/x\0"),
        Err(UeventError::BadHeader)
    );
    // An entry without '=' and one with an empty key.
    assert_eq!(
        Uevent::parse(b"add@/devices/x\0ACTION=add\0GARBAGE\0"),
        Err(UeventError::BadEntry)
    );
    assert_eq!(
        Uevent::parse(b"add@/devices/x\0=add\0"),
        Err(UeventError::BadEntry)
    );
    assert_eq!(
        Uevent::parse(b"add@/devices/\xff\0"),
        Err(UeventError::NotUtf8)
    );
    assert_eq!(
        Uevent::parse(b"add@/devices/x\0DEVNAME=\xfe\0"),
        Err(UeventError::NotUtf8)
    );
}

#[test]
fn ship_uevent_parse_tolerates_missing_terminator_and_unknown_action() {
    // The last NUL cut off, an action the module does not name, a MAJOR without MINOR.
    let e = parse(b"frobnicate@/devices/virtual/misc/x\0SUBSYSTEM=misc\0MAJOR=10");
    assert_eq!(e.action, UeventAction::Other("frobnicate".to_owned()));
    assert_eq!(e.action.to_string(), "frobnicate");
    assert_eq!(e.subsystem.as_deref(), Some("misc"));
    assert_eq!(e.devnum, None);
    assert_eq!(e.seqnum, None);
    // A value may itself contain '='.
    let e = parse(b"change@/devices/x\0MODALIAS=of:Nnfc\0X=a=b\0");
    assert_eq!(e.get("X"), Some("a=b"));
    assert_eq!(e.get("NOPE"), None);
}

#[test]
fn ship_uevent_watch_usb_serial_unplug_and_replug() {
    let w = watch("/dev/ttyUSB0");
    assert_eq!(w.devname(), "ttyUSB0");
    assert_eq!(w.subsystem(), Some("tty"));
    let seen: Vec<_> = [
        USB_SERIAL_PORT_ADD,
        USB_SERIAL_PORT_BIND,
        TTYUSB0_ADD,
        TTY0_CHANGE,
        TTYUSB1_REMOVE,
        TTYUSB0_REMOVE,
        USB_SERIAL_PORT_REMOVE,
        I2C1_REMOVE,
    ]
    .iter()
    .map(|b| w.classify(&parse(b)))
    .collect();
    assert_eq!(
        seen,
        [
            None,                       // usb-serial port add: no node
            None,                       // driver bind
            Some(DeviceEvent::Added),   // tty ttyUSB0 add
            None,                       // another tty changed
            None,                       // another adapter's tty removed
            Some(DeviceEvent::Removed), // tty ttyUSB0 remove
            None,                       // usb-serial port remove
            None,                       // unrelated subsystem
        ]
    );
}

#[test]
fn ship_uevent_watch_i2c_dev_and_gpiochip() {
    let i2c = watch("/dev/i2c-1");
    assert_eq!(i2c.subsystem(), Some("i2c-dev"));
    assert_eq!(i2c.classify(&parse(I2C1_ADD)), Some(DeviceEvent::Added));
    assert_eq!(
        i2c.classify(&parse(I2C1_REMOVE)),
        Some(DeviceEvent::Removed)
    );
    assert_eq!(i2c.classify(&parse(I2C1_ADAPTER_REMOVE)), None);
    assert_eq!(i2c.classify(&parse(GPIOCHIP0_REMOVE)), None);

    let gpio = watch("/dev/gpiochip0");
    assert_eq!(gpio.subsystem(), Some("gpio"));
    assert_eq!(
        gpio.classify(&parse(GPIOCHIP0_ADD)),
        Some(DeviceEvent::Added)
    );
    assert_eq!(
        gpio.classify(&parse(GPIOCHIP0_REMOVE)),
        Some(DeviceEvent::Removed)
    );
    assert_eq!(gpio.classify(&parse(I2C1_REMOVE)), None);

    // gpiochip1 is another chip.
    assert_eq!(
        watch("/dev/gpiochip1").classify(&parse(GPIOCHIP0_REMOVE)),
        None
    );
}

#[test]
fn ship_uevent_watch_requires_matching_subsystem() {
    // Same DEVNAME from a subsystem that does not create i2c-N nodes: not ours.
    let forged = parse(
        b"remove@/devices/virtual/misc/i2c-1\0ACTION=remove\0DEVPATH=/devices/virtual/misc/i2c-1\0\
SUBSYSTEM=misc\0MAJOR=10\0MINOR=99\0DEVNAME=i2c-1\0SEQNUM=9\0",
    );
    assert_eq!(watch("/dev/i2c-1").classify(&forged), None);
    // A node name with no known subsystem matches on DEVNAME alone.
    let w = watch("/dev/nfc-controller");
    assert_eq!(w.subsystem(), None);
    let e = parse(
        b"remove@/devices/virtual/misc/nfc-controller\0ACTION=remove\0SUBSYSTEM=misc\0\
DEVNAME=nfc-controller\0",
    );
    assert_eq!(w.classify(&e), Some(DeviceEvent::Removed));
}

#[test]
fn ship_uevent_watch_refuses_paths_outside_dev() {
    assert!(matches!(
        DeviceWatch::new(Path::new("/tmp/ttyUSB0")),
        Err(WatchError::NotUnderDev(_))
    ));
    assert!(matches!(
        DeviceWatch::new(Path::new("ttyUSB0")),
        Err(WatchError::NotUnderDev(_))
    ));
    assert!(matches!(
        DeviceWatch::new(Path::new("/dev")),
        Err(WatchError::NotUnderDev(_))
    ));
}

#[test]
fn ship_uevent_watch_resolves_symlinks_to_the_kernel_node() {
    // /dev/null stands in for a udev symlink target such as ../../ttyUSB0.
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("by-id-link");
    std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
    let w = DeviceWatch::new(&link).expect("symlink into /dev is watchable");
    assert_eq!(w.devname(), "null");
    assert!(w.present());
    assert!(!watch("/dev/ttyUSB97").present());
}

#[test]
fn ship_uevent_watch_follows_a_repointed_link_on_refresh() {
    // A /dev/serial/by-id/... link whose adapter came back under another name: /dev/null and
    // /dev/zero stand in for ttyUSB0 and ttyUSB1.
    let dir = tempfile::tempdir().expect("temp dir");
    let link = dir.path().join("usb-NXP_PN7150-if00-port0");
    std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
    let mut w = DeviceWatch::new(&link).expect("symlink into /dev is watchable");
    assert!(w.follows_link());
    assert_eq!(w.devname(), "null");
    assert!(!w.refresh(), "nothing changed");
    // Unplugged: udev removed the link. The watch keeps the last node it knew.
    std::fs::remove_file(&link).expect("remove link");
    assert!(!w.refresh());
    assert_eq!(w.devname(), "null");
    // Re-plugged under another name.
    std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink again");
    assert!(w.refresh());
    assert_eq!(w.devname(), "zero");
    assert!(w.follows_link());
    let null_gone =
        parse(b"remove@/devices/virtual/mem/null\0ACTION=remove\0SUBSYSTEM=mem\0DEVNAME=null\0");
    let zero_gone =
        parse(b"remove@/devices/virtual/mem/zero\0ACTION=remove\0SUBSYSTEM=mem\0DEVNAME=zero\0");
    assert_eq!(
        w.classify(&null_gone),
        None,
        "the old name is no longer ours"
    );
    assert_eq!(w.classify(&zero_gone), Some(DeviceEvent::Removed));

    // A node given directly is no link and never changes.
    let mut plain = watch("/dev/null");
    assert!(!plain.follows_link());
    assert!(!plain.refresh());
}

/// Opens the real socket, makes the kernel emit `change` for tty0 and waits for it.
#[test]
fn ship_uevent_live_netlink_round_trip() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let mut sock = match UeventSocket::open() {
            Ok(s) => s,
            Err(e) => {
                println!("skipped: cannot open NETLINK_KOBJECT_UEVENT socket: {e}");
                return;
            }
        };
        // Writing an action to a device's uevent file makes the kernel emit it (sysfs-uevent
        // ABI); this needs root and a writable /sys.
        let mut refused = Vec::new();
        let mut path = None;
        for p in [
            "/sys/class/tty/tty0/uevent",
            "/sys/devices/virtual/tty/tty0/uevent",
        ] {
            match std::fs::write(p, "change") {
                Ok(()) => {
                    path = Some(p);
                    break;
                }
                Err(e) => refused.push(format!("{p}: {e}")),
            }
        }
        let Some(path) = path else {
            println!("skipped: cannot trigger a uevent ({})", refused.join("; "));
            return;
        };
        let found = tokio::time::timeout(Duration::from_secs(2), async {
            loop {
                match sock.next().await {
                    Ok(e) if e.devpath == "/devices/virtual/tty/tty0" => return Ok(e),
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await;
        let event = match found {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => panic!("uevent socket failed: {e}"),
            Err(_) => panic!("wrote {path} but no uevent for tty0 arrived within 2 s"),
        };
        assert_eq!(event.action, UeventAction::Change);
        assert_eq!(event.subsystem.as_deref(), Some("tty"));
        assert_eq!(event.devname.as_deref(), Some("tty0"));
        assert!(event.seqnum.is_some());
        assert_eq!(
            watch("/dev/tty0").classify(&event),
            None,
            "change is neither"
        );
    });
}

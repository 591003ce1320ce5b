//! Kernel uevents: notices that the controller's device node appeared or went away.
//!
//! A USB-serial adapter can be unplugged, an I²C bus driver unbound, a GPIO chip removed by a
//! device-tree overlay. The kernel announces each of these as a uevent on the
//! `NETLINK_KOBJECT_UEVENT` netlink family, multicast group 1. This module
//! - parses the kernel's message format (`action@devpath\0KEY=VALUE\0...`) into [`Uevent`],
//! - listens on that socket with tokio ([`UeventSocket`]),
//! - and says, for the one device node a transport uses, whether an event means that node was
//!   [`DeviceEvent::Added`] or [`DeviceEvent::Removed`] ([`DeviceWatch`]).
//!
//! What it does not do: it does not talk to udev (group 2 carries udevd's re-broadcast, which
//! starts with `libudev\0` and a magic number; those messages are refused), it does not walk
//! /sys to enumerate devices, and it does not reopen anything: the transport decides what a
//! removal means (stop, wait for `Added`, reset by VEN).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use netlink_sys::{
    protocols::NETLINK_KOBJECT_UEVENT, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket,
};

/// Multicast group of kernel-originated uevents (lib/kobject_uevent.c sends to group 1).
pub const KERNEL_GROUP: u32 = 1;

/// Largest datagram the kernel sends: `action@devpath\0` (devpath < PATH_MAX = 4096) plus at
/// most UEVENT_BUFFER_SIZE (2048) bytes of environment (include/linux/kobject.h).
pub const UEVENT_MAX_LEN: usize = 4096 + 2048 + 64;

/// Prefix of the messages udevd re-broadcasts on group 2 (`libudev\0` + magic `0xfeedcafe`).
const LIBUDEV_PREFIX: &[u8] = b"libudev\0";

/// What happened to a device (`ACTION=`, lib/kobject_uevent.c `kobject_actions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UeventAction {
    /// `add`: the device was registered; its node is about to exist.
    Add,
    /// `remove`: the device was unregistered; its node is gone.
    Remove,
    /// `change`: something about the device changed (also what `echo change > uevent` sends).
    Change,
    /// `move`: the device was renamed or re-parented.
    Move,
    /// `online`: a CPU or memory block came online.
    Online,
    /// `offline`: a CPU or memory block went offline.
    Offline,
    /// `bind`: a driver was bound to the device.
    Bind,
    /// `unbind`: the driver was unbound from the device.
    Unbind,
    /// An action this module does not know, kept verbatim.
    Other(String),
}

impl UeventAction {
    fn from_str(s: &str) -> Self {
        match s {
            "add" => Self::Add,
            "remove" => Self::Remove,
            "change" => Self::Change,
            "move" => Self::Move,
            "online" => Self::Online,
            "offline" => Self::Offline,
            "bind" => Self::Bind,
            "unbind" => Self::Unbind,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The action as the kernel spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Change => "change",
            Self::Move => "move",
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Bind => "bind",
            Self::Unbind => "unbind",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for UeventAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a datagram is not a kernel uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UeventError {
    /// Zero bytes.
    Empty,
    /// udevd's re-broadcast (`libudev\0` + magic), not the kernel's own message.
    Libudev,
    /// The first string is not `action@devpath`.
    BadHeader,
    /// An environment entry has no `=`.
    BadEntry,
    /// The message is not valid UTF-8 (the kernel only sends ASCII keys and values).
    NotUtf8,
}

impl fmt::Display for UeventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty uevent",
            Self::Libudev => "libudev message, not a kernel uevent",
            Self::BadHeader => "uevent header is not action@devpath",
            Self::BadEntry => "uevent entry without '='",
            Self::NotUtf8 => "uevent is not UTF-8",
        })
    }
}

impl std::error::Error for UeventError {}

/// One kernel uevent.
///
/// The named fields are the ones device matching needs; every `KEY=VALUE` of the message,
/// those included, is kept in order in `env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent {
    /// What happened, from the `action@` header.
    pub action: UeventAction,
    /// Path below /sys, from the `@devpath` header (`/devices/...`).
    pub devpath: String,
    /// `SUBSYSTEM=` (`tty`, `i2c-dev`, `gpio`, `usb-serial`, ...).
    pub subsystem: Option<String>,
    /// `DEVNAME=`: the device node relative to /dev (`ttyUSB0`, `i2c-1`, `bus/usb/001/004`).
    pub devname: Option<String>,
    /// `DEVTYPE=` (`usb_device`, `usb_interface`, ...).
    pub devtype: Option<String>,
    /// `DRIVER=`, present on `bind`/`unbind` and some `add` events.
    pub driver: Option<String>,
    /// `MAJOR=`/`MINOR=`, present when the device has a node.
    pub devnum: Option<(u32, u32)>,
    /// `SEQNUM=`: the kernel's event counter; a gap means events were lost.
    pub seqnum: Option<u64>,
    /// Every `KEY=VALUE` pair in message order.
    pub env: Vec<(String, String)>,
}

impl Uevent {
    /// Parses one datagram from multicast group 1 of `NETLINK_KOBJECT_UEVENT`.
    ///
    /// Format (lib/kobject_uevent.c, `kobject_uevent_env`): the NUL-terminated header
    /// `action@devpath`, then NUL-terminated `KEY=VALUE` strings (`ACTION`, `DEVPATH`,
    /// `SUBSYSTEM`, the subsystem's own keys, `SEQNUM` last). Empty strings are skipped.
    pub fn parse(buf: &[u8]) -> Result<Self, UeventError> {
        if buf.is_empty() {
            return Err(UeventError::Empty);
        }
        if buf.starts_with(LIBUDEV_PREFIX) {
            return Err(UeventError::Libudev);
        }
        let mut parts = buf.split(|&b| b == 0);
        let header = parts.next().ok_or(UeventError::Empty)?;
        let header = std::str::from_utf8(header).map_err(|_| UeventError::NotUtf8)?;
        let (action, devpath) = header.split_once('@').ok_or(UeventError::BadHeader)?;
        if action.is_empty() || !devpath.starts_with('/') {
            return Err(UeventError::BadHeader);
        }
        let mut env = Vec::new();
        for part in parts.filter(|p| !p.is_empty()) {
            let entry = std::str::from_utf8(part).map_err(|_| UeventError::NotUtf8)?;
            let (key, value) = entry.split_once('=').ok_or(UeventError::BadEntry)?;
            if key.is_empty() {
                return Err(UeventError::BadEntry);
            }
            env.push((key.to_owned(), value.to_owned()));
        }
        let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let num = |k: &str| get(k).and_then(|v| v.parse::<u32>().ok());
        let devnum = num("MAJOR").zip(num("MINOR"));
        Ok(Self {
            action: UeventAction::from_str(action),
            devpath: devpath.to_owned(),
            subsystem: get("SUBSYSTEM"),
            devname: get("DEVNAME"),
            devtype: get("DEVTYPE"),
            driver: get("DRIVER"),
            devnum,
            seqnum: get("SEQNUM").and_then(|v| v.parse().ok()),
            env,
        })
    }

    /// The value of `key`, if the event carries it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a [`DeviceWatch`] concluded from an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// The watched node (re)appeared: the transport may reopen it.
    Added,
    /// The watched node is gone: the transport must stop using it.
    Removed,
}

/// Why a device node cannot be watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchError {
    /// The path does not name a node below /dev.
    NotUnderDev(PathBuf),
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUnderDev(p) => write!(f, "{} is not a device node under /dev", p.display()),
        }
    }
}

impl std::error::Error for WatchError {}

/// Watches one device node (a transport's `/dev/ttyUSB0`, `/dev/i2c-1` or `/dev/gpiochip0`)
/// for removal and re-addition.
///
/// An event concerns the node when its `DEVNAME` equals the node's path relative to /dev and,
/// for node names whose subsystem is known, its `SUBSYSTEM` matches too: `tty*` → `tty`,
/// `i2c-N` → `i2c-dev`, `gpiochipN` → `gpio`. The parent devices' events (`usb-serial`,
/// `usb`, the I²C adapter itself) carry no `DEVNAME` of ours and are ignored; the node's own
/// `remove` always follows them.
///
/// A node reached through a symlink is watched under the name the link points to when the
/// watch is made or [refreshed](DeviceWatch::refresh); a re-plugged USB-serial adapter may come
/// back under another name (`ttyUSB1`) behind the same `/dev/serial/by-id/...` link, whose
/// `add` this watch cannot recognise ([`DeviceWatch::follows_link`] says when that can happen).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceWatch {
    /// The path as configured, symlink or not.
    configured: PathBuf,
    path: PathBuf,
    devname: String,
    subsystem: Option<&'static str>,
    via_link: bool,
}

impl DeviceWatch {
    /// Watches `node`. A symlink (`/dev/serial/by-id/...`, a udev `SYMLINK+=` name) is
    /// resolved first while it still exists, because uevents name the kernel's node.
    pub fn new(node: &Path) -> Result<Self, WatchError> {
        let path = std::fs::canonicalize(node).unwrap_or_else(|_| node.to_path_buf());
        let devname =
            devname_of(&path).ok_or_else(|| WatchError::NotUnderDev(node.to_path_buf()))?;
        Ok(Self {
            configured: node.to_path_buf(),
            via_link: path != node,
            path,
            subsystem: subsystem_of(&devname),
            devname,
        })
    }

    /// Resolves the configured path again, as the transport's `open` just did, so that the
    /// watch names the node in use now. Returns whether that node differs from the one watched
    /// before. A dangling link or a target outside /dev leaves the watch as it was.
    pub fn refresh(&mut self) -> bool {
        let Ok(path) = std::fs::canonicalize(&self.configured) else {
            return false;
        };
        let Some(devname) = devname_of(&path) else {
            return false;
        };
        self.via_link = path != self.configured;
        if path == self.path {
            return false;
        }
        self.subsystem = subsystem_of(&devname);
        self.path = path;
        self.devname = devname;
        true
    }

    /// Whether the configured path was a symlink to the watched node when last resolved: the
    /// device may then return under another kernel name behind the same link, so an `add`
    /// for the watched name is not the only way it comes back.
    pub fn follows_link(&self) -> bool {
        self.via_link
    }

    /// The node's name relative to /dev, as uevents spell it in `DEVNAME`.
    pub fn devname(&self) -> &str {
        &self.devname
    }

    /// The subsystem events must come from, when the node name implies one.
    pub fn subsystem(&self) -> Option<&'static str> {
        self.subsystem
    }

    /// Whether the node exists now. After [`RecvError::Overrun`] events were lost; this is how
    /// to find out where things stand.
    pub fn present(&self) -> bool {
        self.path.exists()
    }

    /// What `event` means for the watched node, if anything.
    pub fn classify(&self, event: &Uevent) -> Option<DeviceEvent> {
        if event.devname.as_deref() != Some(self.devname.as_str()) {
            return None;
        }
        if let Some(want) = self.subsystem {
            if event.subsystem.as_deref() != Some(want) {
                return None;
            }
        }
        match event.action {
            UeventAction::Add => Some(DeviceEvent::Added),
            UeventAction::Remove => Some(DeviceEvent::Removed),
            _ => None,
        }
    }
}

/// The name of node `path` relative to /dev, as uevents spell it in `DEVNAME`.
fn devname_of(path: &Path) -> Option<String> {
    path.strip_prefix("/dev")
        .ok()
        .and_then(|p| p.to_str())
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
}

/// The subsystem whose device class creates nodes named like `devname`.
fn subsystem_of(devname: &str) -> Option<&'static str> {
    let digits_after = |prefix: &str| {
        devname
            .strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if digits_after("i2c-") {
        Some("i2c-dev")
    } else if digits_after("gpiochip") {
        Some("gpio")
    } else if devname.starts_with("tty") || devname.starts_with("rfcomm") {
        Some("tty")
    } else {
        None
    }
}

/// Why [`UeventSocket::next`] returned without an event.
#[derive(Debug)]
pub enum RecvError {
    /// The socket's receive queue overflowed (`ENOBUFS`) and events were dropped; re-check
    /// the device with [`DeviceWatch::present`].
    Overrun,
    /// Any other socket error.
    Io(io::Error),
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Overrun => f.write_str("uevent receive queue overflowed, events were lost"),
            Self::Io(e) => write!(f, "uevent socket: {e}"),
        }
    }
}

impl std::error::Error for RecvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Overrun => None,
            Self::Io(e) => Some(e),
        }
    }
}

/// A netlink socket subscribed to the kernel's uevents.
pub struct UeventSocket {
    socket: TokioSocket,
    buf: Vec<u8>,
}

impl fmt::Debug for UeventSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UeventSocket").finish_non_exhaustive()
    }
}

impl UeventSocket {
    /// Opens `NETLINK_KOBJECT_UEVENT` and joins [`KERNEL_GROUP`]. Needs no privilege (the
    /// kernel lets anyone receive uevents), only `AF_NETLINK` in `RestrictAddressFamilies=`.
    /// Must be called inside a tokio runtime.
    pub fn open() -> io::Result<Self> {
        let mut socket = TokioSocket::new(NETLINK_KOBJECT_UEVENT)?;
        // A burst (a USB hub with several adapters) must not overflow the default queue;
        // SO_RCVBUF is capped by net.core.rmem_max, which is fine.
        let _ = socket.socket_ref().set_rx_buf_sz(256 * 1024);
        socket
            .socket_mut()
            .bind(&SocketAddr::new(0, 1 << (KERNEL_GROUP - 1)))?;
        Ok(Self {
            socket,
            buf: Vec::with_capacity(UEVENT_MAX_LEN),
        })
    }

    /// Waits for the next kernel uevent.
    ///
    /// Datagrams that do not come from the kernel (sender port id other than 0, which only a
    /// process with CAP_NET_ADMIN could forge anyway) or do not parse are skipped.
    pub async fn next(&mut self) -> Result<Uevent, RecvError> {
        loop {
            self.buf.clear();
            self.buf.reserve(UEVENT_MAX_LEN);
            let from = match self.socket.recv_from(&mut self.buf).await {
                Ok(from) => from,
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENOBUFS as i32) => {
                    return Err(RecvError::Overrun)
                }
                Err(e) => return Err(RecvError::Io(e)),
            };
            if from.port_number() != 0 {
                continue;
            }
            if let Ok(event) = Uevent::parse(&self.buf) {
                return Ok(event);
            }
        }
    }
}

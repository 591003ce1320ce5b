//! sd_notify(3) datagrams as a service manager receives them: a real `UnixDatagram` stands in
//! for systemd's notification socket, in the file system and in the abstract namespace.
//!
//! These tests change the process environment, so every one of them holds `ENV` for its whole
//! run: they are serialised even though the harness runs tests on several threads.

use std::io::IoSliceMut;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use nfcd::notify::{Notifier, NotifyAddr, NotifyState, NOTIFY_SOCKET, WATCHDOG_PID, WATCHDOG_USEC};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, UnixAddr};

static ENV: Mutex<()> = Mutex::new(());

/// Holds the environment lock and leaves the three variables unset when dropped.
struct EnvGuard(#[allow(dead_code)] MutexGuard<'static, ()>);

impl EnvGuard {
    fn take() -> Self {
        let guard = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        clear_env();
        Self(guard)
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        clear_env();
    }
}

fn clear_env() {
    std::env::remove_var(NOTIFY_SOCKET);
    std::env::remove_var(WATCHDOG_USEC);
    std::env::remove_var(WATCHDOG_PID);
}

/// Receives one datagram within a second.
fn recv(sock: &UnixDatagram) -> String {
    sock.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("read timeout");
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification datagram");
    String::from_utf8(buf[..n].to_vec()).expect("notifications are text")
}

fn assert_nothing_queued(sock: &UnixDatagram) {
    sock.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 64];
    let r = sock.recv(&mut buf);
    sock.set_nonblocking(false).expect("blocking");
    assert!(r.is_err(), "unexpected datagram {:?}", r.map(|n| &buf[..n]));
}

/// The sequence a daemon sends over its life, checked datagram by datagram.
fn exercise(notifier: &Notifier, manager: &UnixDatagram) {
    assert!(notifier.is_enabled());
    notifier
        .status("initialising PN7150 on /dev/i2c-1")
        .unwrap();
    assert_eq!(recv(manager), "STATUS=initialising PN7150 on /dev/i2c-1");
    notifier.ready().unwrap();
    assert_eq!(recv(manager), "READY=1");
    notifier.watchdog().unwrap();
    assert_eq!(recv(manager), "WATCHDOG=1");
    // A newline from a controller string must not smuggle in a second assignment.
    notifier.status("firmware 12.50.5\nREADY=1").unwrap();
    assert_eq!(recv(manager), "STATUS=firmware 12.50.5 READY=1");
    notifier
        .notify(&[NotifyState::Ready, NotifyState::Status("listening")])
        .unwrap();
    assert_eq!(recv(manager), "READY=1\nSTATUS=listening");
    notifier.stopping().unwrap();
    assert_eq!(recv(manager), "STOPPING=1");
    assert_nothing_queued(manager);
}

#[test]
fn ship_notify_unset_socket_is_a_no_op() {
    let _env = EnvGuard::take();
    std::env::set_var(WATCHDOG_USEC, "30000000");
    let n = Notifier::from_env().expect("no NOTIFY_SOCKET is not an error");
    assert!(!n.is_enabled());
    n.ready().unwrap();
    n.status("x").unwrap();
    n.watchdog().unwrap();
    n.stopping().unwrap();
    // Nobody to pet: no interval even though WATCHDOG_USEC is set.
    assert_eq!(n.watchdog_interval(), None);
    assert!(!Notifier::disabled().is_enabled());
}

#[test]
fn ship_notify_path_socket_datagrams() {
    let _env = EnvGuard::take();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify");
    let manager = UnixDatagram::bind(&path).expect("bind fake NOTIFY_SOCKET");
    std::env::set_var(NOTIFY_SOCKET, &path);
    let notifier = Notifier::from_env().expect("absolute path accepted");
    exercise(&notifier, &manager);
}

#[test]
fn ship_notify_abstract_socket_datagrams() {
    let _env = EnvGuard::take();
    let name = format!("nfcd-test-notify-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
    let manager = UnixDatagram::bind_addr(&addr).expect("bind abstract socket");
    std::env::set_var(NOTIFY_SOCKET, format!("@{name}"));
    let notifier = Notifier::from_env().expect("@name accepted");
    exercise(&notifier, &manager);
}

/// systemd's `NotifyAccess=main` accepts a datagram only if its SCM_CREDENTIALS name the main
/// pid; the kernel attaches them when the receiver sets SO_PASSCRED.
#[test]
fn ship_notify_datagram_carries_sender_credentials() {
    let _env = EnvGuard::take();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify");
    let manager = UnixDatagram::bind(&path).expect("bind");
    setsockopt(&manager, sockopt::PassCred, &true).expect("SO_PASSCRED");
    let notifier = Notifier::with_addr(path.as_os_str(), None).expect("notifier");
    notifier.ready().unwrap();

    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(nix::sys::socket::UnixCredentials);
    let msg = recvmsg::<UnixAddr>(
        std::os::fd::AsRawFd::as_raw_fd(&manager),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("recvmsg");
    let creds = msg
        .cmsgs()
        .expect("control messages")
        .find_map(|c| match c {
            ControlMessageOwned::ScmCredentials(c) => Some(c),
            _ => None,
        })
        .expect("SCM_CREDENTIALS attached");
    assert_eq!(creds.pid(), std::process::id() as i32);
    assert_eq!(msg.bytes, b"READY=1".len());
}

#[test]
fn ship_notify_watchdog_interval_is_half_of_watchdog_usec() {
    let _env = EnvGuard::take();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify");
    let _manager = UnixDatagram::bind(&path).expect("bind");
    std::env::set_var(NOTIFY_SOCKET, &path);

    let interval = |usec: Option<&str>, pid: Option<String>| {
        match usec {
            Some(v) => std::env::set_var(WATCHDOG_USEC, v),
            None => std::env::remove_var(WATCHDOG_USEC),
        }
        match pid {
            Some(v) => std::env::set_var(WATCHDOG_PID, v),
            None => std::env::remove_var(WATCHDOG_PID),
        }
        Notifier::from_env().expect("notifier").watchdog_interval()
    };
    let me = std::process::id();

    // WatchdogSec=30 in nfcd.service → WATCHDOG_USEC=30000000 → pet every 15 s.
    assert_eq!(
        interval(Some("30000000"), None),
        Some(Duration::from_secs(15))
    );
    assert_eq!(
        interval(Some("30000000"), Some(me.to_string())),
        Some(Duration::from_secs(15))
    );
    assert_eq!(
        interval(Some("3"), Some(me.to_string())),
        Some(Duration::from_nanos(1500))
    );
    // Meant for another process (a parent that exec'd us without clearing it).
    assert_eq!(interval(Some("30000000"), Some((me + 1).to_string())), None);
    assert_eq!(interval(Some("30000000"), Some("not-a-pid".into())), None);
    // No watchdog, a zero one (tokio's interval would panic on it), or garbage.
    assert_eq!(interval(None, None), None);
    assert_eq!(interval(Some("0"), None), None);
    assert_eq!(interval(Some("thirty"), None), None);
    assert_eq!(interval(Some("-5"), None), None);

    // The explicit constructor takes the full timeout and halves it the same way.
    let n = Notifier::with_addr(path.as_os_str(), Some(Duration::from_secs(10))).unwrap();
    assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(5)));
    let n = Notifier::with_addr(path.as_os_str(), Some(Duration::ZERO)).unwrap();
    assert_eq!(n.watchdog_interval(), None);
}

#[test]
fn ship_notify_refuses_unusable_addresses() {
    let _env = EnvGuard::take();
    for bad in ["run/notify", "", "@", "vsock:2:1234"] {
        std::env::set_var(NOTIFY_SOCKET, bad);
        let err = Notifier::from_env().expect_err(bad);
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
    }
    assert_eq!(
        NotifyAddr::parse("@x".as_ref()).unwrap(),
        NotifyAddr::Abstract(b"x".to_vec())
    );
    assert_eq!(
        NotifyAddr::parse("/run/systemd/notify".as_ref()).unwrap(),
        NotifyAddr::Path("/run/systemd/notify".into())
    );
}

#[test]
fn ship_notify_missing_manager_is_an_error_not_a_panic() {
    let _env = EnvGuard::take();
    let dir = tempfile::tempdir().expect("temp dir");
    std::env::set_var(NOTIFY_SOCKET, dir.path().join("gone"));
    let n = Notifier::from_env().expect("address is well-formed");
    assert!(n.ready().is_err());
    assert!(n.watchdog().is_err());
}

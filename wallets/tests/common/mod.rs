//! Shared fixtures of the integration tests: a private `dbus-daemon` and a stand-in
//! `org.nfcd.Manager1` that records what wallets send.
//!
//! The stand-in refuses registrations without `Aids` (`org.nfcd.Error.InvalidArguments`) and
//! `UnregisterService` of unknown paths (`org.nfcd.Error.NotRegistered`), like nfcd; it does no
//! AID resolution and never calls wallets on its own: the tests do, through its connection.

#![allow(dead_code)] // each test crate uses a different part

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nfcd_wallets::Bus;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use zbus::message::Header;
use zbus::{fdo, interface, Connection, DBusError, OwnedObjectPath, OwnedVariant};

/// A private bus: `dbus-daemon --session --nofork --print-address=1 --address=unix:path=…`.
pub struct PrivateBus {
    child: Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let socket = dir.path().join("bus");
        let mut child = Command::new("dbus-daemon")
            .args([
                "--session",
                "--nofork",
                "--print-address=1",
                &format!("--address=unix:path={}", socket.display()),
            ])
            .stdout(Stdio::piped())
            // Its complaints about fd limits in containers are noise; failures show as bus errors.
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon must be installed to run these tests");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut address = String::new();
        BufReader::new(stdout)
            .read_line(&mut address)
            .expect("dbus-daemon prints its address");
        PrivateBus {
            child,
            address: address.trim().to_owned(),
            _dir: dir,
        }
    }

    pub fn bus(&self) -> Bus {
        Bus::Address(self.address.clone())
    }

    pub async fn connect(&self) -> Connection {
        self.bus()
            .connect()
            .await
            .expect("connect to the private bus")
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the stand-in daemon saw.
#[derive(Default)]
pub struct Recorded {
    /// (caller's unique name, service path, options)
    pub registrations: Vec<(String, OwnedObjectPath, HashMap<String, OwnedVariant>)>,
    pub unregistrations: Vec<OwnedObjectPath>,
    pub defaults: Vec<(String, String)>,
    /// The daemon's end of each APDU channel handed out.
    pub channels: Vec<OwnedFd>,
}

/// The errors the stand-in daemon answers with, named like nfcd's.
#[derive(Debug, DBusError)]
#[zbus(prefix = "org.nfcd.Error")]
enum ManagerError {
    #[zbus(error)]
    ZBus(zbus::Error),
    InvalidArguments(String),
    NotRegistered(String),
}

/// Stand-in `org.nfcd.Manager1`: refuses registrations without AIDs, records everything.
struct FakeManager {
    recorded: Arc<Mutex<Recorded>>,
}

#[interface(name = "org.nfcd.Manager1")]
impl FakeManager {
    async fn register_service(
        &self,
        #[zbus(header)] header: Header<'_>,
        service: OwnedObjectPath,
        options: HashMap<String, OwnedVariant>,
    ) -> Result<(), ManagerError> {
        if !options.contains_key("Aids") {
            return Err(ManagerError::InvalidArguments(
                "a service needs at least one AID".to_owned(),
            ));
        }
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        self.recorded
            .lock()
            .unwrap()
            .registrations
            .push((sender, service, options));
        Ok(())
    }

    async fn unregister_service(&self, service: OwnedObjectPath) -> Result<(), ManagerError> {
        let mut recorded = self.recorded.lock().unwrap();
        if !recorded
            .registrations
            .iter()
            .any(|(_, path, _)| *path == service)
        {
            return Err(ManagerError::NotRegistered(service.to_string()));
        }
        recorded.unregistrations.push(service);
        Ok(())
    }

    async fn set_default_service(&self, category: String, id: String) {
        self.recorded.lock().unwrap().defaults.push((category, id));
    }

    async fn open_apdu_channel(&self, _service: OwnedObjectPath) -> fdo::Result<zbus::OwnedFd> {
        let (daemon_end, wallet_end) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| fdo::Error::Failed(e.to_string()))?;
        self.recorded.lock().unwrap().channels.push(daemon_end);
        Ok(zbus::OwnedFd::from(wallet_end))
    }
}

/// Starts the stand-in daemon on `bus`: owns `org.nfcd`, serves Manager1 at `/org/nfcd`.
pub async fn fake_daemon(bus: &PrivateBus) -> (Connection, Arc<Mutex<Recorded>>) {
    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let connection = zbus::connection::Builder::address(bus.address.as_str())
        .name("org.nfcd")
        .serve_at(
            "/org/nfcd",
            FakeManager {
                recorded: recorded.clone(),
            },
        )
        .build()
        .await
        .expect("stand-in daemon on the private bus");
    (connection, recorded)
}

/// Calls `ProcessApdu(command)` on the wallet `wallet` (a unique name) at `path`, as the daemon.
pub async fn process_apdu(
    from: &Connection,
    wallet: &str,
    path: &str,
    command: &[u8],
) -> zbus::Result<Vec<u8>> {
    let reply = from
        .call_method(
            Some(wallet),
            path,
            Some("org.nfcd.HostService1"),
            "ProcessApdu",
            &(command,),
        )
        .await?;
    reply.body().deserialize()
}

/// Bounds every test: a bug here must fail, not hang the suite.
pub async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), future)
        .await
        .expect("test timed out")
}

//! The whole set-up of one end-to-end test: private bus, virtual controller, nfcd, clients.
//!
//! Contract: [`Rig::start`] returns once nfcd owns `org.nfcd`, reports the controller
//! `Present`, and the virtual controller is discovering (a tap can start). Wallets are started
//! through the rig ([`Rig::wallet`]) and owned by the test. [`Rig::finish`] stops nfcd with
//! SIGTERM and checks that it exited 0 and that none of its logs (one per start) holds a panic;
//! every test ends with it. On a failure the end of nfcd's log is printed and the scratch
//! directory is kept.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use nfcd::simhost::{
    Profile, SimError, SimHandle, SimHost, SimOptions, TapOptions, TapReport, TapScript,
};
use tokio::task::JoinHandle;
use zbus::Connection;

use crate::bus::{self, Adapter1Proxy, Manager1Proxy};
use crate::process::{Memory, Nfcd, NfcdArgs, Wallet, WalletKind};
use crate::scratch::Scratch;
use crate::scripts::ScriptBuilder;
use crate::{within, TestBus, WAIT};

/// The well-known name of nfcd.
pub const BUS_NAME: &str = "org.nfcd";

/// How nfcd reaches the virtual controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A pseudo-terminal: nfcd's UART transport (`uart:/dev/pts/N`).
    Pty,
    /// A TCP connection to an ephemeral port on 127.0.0.1: nfcd's TCP transport.
    Tcp,
    /// nfcd's own in-process virtual controller (`--transport sim[:nci2]`), driven through
    /// `org.nfcd.Simulator1`; the test has no [`SimHandle`] then.
    Builtin,
}

/// What to set up.
#[derive(Debug, Clone)]
pub struct RigOptions {
    /// The controller simulated: PN7150 (NCI 1.0) or an NCI 2.0 controller.
    pub profile: Profile,
    /// How nfcd reaches it.
    pub link: Link,
    /// `hce.apdu_deadline_ms`; nfcd's default (500 ms) when `None`.
    pub apdu_deadline_ms: Option<u32>,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            profile: Profile::Pn7150,
            link: Link::Pty,
            apdu_deadline_ms: None,
        }
    }
}

/// A running set-up. See the module documentation.
pub struct Rig {
    nfcd: Nfcd,
    /// Earlier nfcd processes of this test (restarts), kept for their logs.
    stopped: Vec<Nfcd>,
    args: NfcdArgs,
    conn: Connection,
    manager: Manager1Proxy<'static>,
    adapter: Adapter1Proxy<'static>,
    /// The virtual controller this process serves, and its serving task; `None` with
    /// [`Link::Builtin`].
    host: Option<(SimHost, JoinHandle<Result<(), SimError>>)>,
    bus: TestBus,
    logs: AtomicU32,
    scratch: Scratch,
}

impl Rig {
    /// Start everything with `options`; see the module documentation for when it returns.
    pub async fn start(options: RigOptions) -> Rig {
        Rig::start_with_sim(options, SimOptions::default()).await
    }

    /// [`Rig::start`] with a virtual controller that behaves in time as `sim` says (e.g.
    /// without the reader's air time, for taps that move megabytes). Not for
    /// [`Link::Builtin`], whose controller is nfcd's own.
    pub async fn start_with_sim(options: RigOptions, sim: SimOptions) -> Rig {
        let scratch = Scratch::new(&test_tag());
        let bus = TestBus::session();
        let host = SimHost::new(options.profile, sim);
        let (transport, host) = match options.link {
            Link::Pty => {
                let (path, task) = host
                    .serve_pty()
                    .unwrap_or_else(|e| panic!("serving the virtual controller on a pty: {e}"));
                (format!("uart:{}", path.display()), Some((host, task)))
            }
            Link::Tcp => {
                let any = SocketAddr::from(([127, 0, 0, 1], 0));
                let (addr, task) = host
                    .serve_tcp(any)
                    .await
                    .unwrap_or_else(|e| panic!("serving the virtual controller on TCP: {e}"));
                (format!("tcp:{addr}"), Some((host, task)))
            }
            Link::Builtin => {
                let transport = match options.profile {
                    Profile::Pn7150 => "sim:pn7150",
                    Profile::Nci2 => "sim:nci2",
                };
                (transport.to_owned(), None)
            }
        };
        let config = scratch.join("nfcd.toml");
        let mut text = String::from("[lock]\nmode = \"unlocked\"\n");
        if let Some(ms) = options.apdu_deadline_ms {
            text.push_str(&format!("\n[hce]\napdu_deadline_ms = {ms}\n"));
        }
        write(&config, &text);
        let state_dir = scratch.join("state");
        if let Err(e) = std::fs::create_dir_all(&state_dir) {
            panic!("cannot create {}: {e}", state_dir.display());
        }
        let args = NfcdArgs {
            transport,
            bus: bus.address().to_owned(),
            state_dir,
            config,
        };
        let mut nfcd = Nfcd::spawn(&args, scratch.join("nfcd-1.log"));
        let conn = connect(bus.address()).await;
        let (manager, adapter) = await_nfcd(&conn, &mut nfcd, None).await;
        let rig = Rig {
            nfcd,
            stopped: Vec::new(),
            args,
            conn,
            manager,
            adapter,
            host,
            bus,
            logs: AtomicU32::new(0),
            scratch,
        };
        rig.wait_discovering("the virtual controller discovering (RFST_DISCOVERY)")
            .await;
        rig
    }

    /// Wait until the virtual controller served here is discovering; with
    /// [`Link::Builtin`] the daemon's `Present` (already waited for) is all there is.
    async fn wait_discovering(&self, what: &str) {
        if let Some((host, _)) = &self.host {
            within(what, WAIT, host.handle().wait_ready()).await;
        }
    }

    /// The controller goes away: the TCP link to the virtual controller is cut, as when its
    /// device is unplugged. [`Link::Tcp`] only.
    pub fn cut_link(&mut self) {
        match &self.host {
            Some((_, task)) if self.args.transport.starts_with("tcp:") => task.abort(),
            _ => panic!("cut_link needs Link::Tcp"),
        }
    }

    /// The controller comes back: the same virtual controller (its stored configuration
    /// kept) is served again on the address nfcd was given.
    pub async fn restore_link(&mut self) {
        let addr: SocketAddr = self
            .args
            .transport
            .strip_prefix("tcp:")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("restore_link needs Link::Tcp, not {}", self.args.transport));
        let Some((host, task)) = self.host.take() else {
            panic!("restore_link needs a virtual controller served here");
        };
        let (_, task_again) = within("serving the virtual controller again", WAIT, async {
            // The aborted listener may take a moment to release the port.
            loop {
                match host.serve_tcp(addr).await {
                    Ok(served) => break served,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                }
            }
        })
        .await;
        drop(task);
        self.host = Some((host, task_again));
    }

    /// Wait until the virtual controller served here is discovering again.
    pub async fn wait_listening(&self) {
        self.wait_discovering("the virtual controller discovering again")
            .await;
    }

    /// A PN7150 on a pty with `apdu_deadline_ms`.
    pub async fn with_deadline(apdu_deadline_ms: u32) -> Rig {
        Rig::start(RigOptions {
            apdu_deadline_ms: Some(apdu_deadline_ms),
            ..RigOptions::default()
        })
        .await
    }

    /// The virtual controller and reader. Not with [`Link::Builtin`] (use
    /// `org.nfcd.Simulator1` then).
    pub fn sim(&self) -> SimHandle {
        match &self.host {
            Some((host, _)) => host.handle(),
            None => panic!("the controller is nfcd's own (Link::Builtin): use org.nfcd.Simulator1"),
        }
    }

    /// The test's own bus connection.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// `org.nfcd.Manager1`.
    pub fn manager(&self) -> &Manager1Proxy<'static> {
        &self.manager
    }

    /// `org.nfcd.Adapter1`.
    pub fn adapter(&self) -> &Adapter1Proxy<'static> {
        &self.adapter
    }

    /// A new connection to the private bus: a client of its own (its own unique name), as a
    /// second program would be.
    pub async fn new_client(&self) -> Connection {
        connect(self.bus.address()).await
    }

    /// The private bus's address.
    pub fn bus_address(&self) -> &str {
        self.bus.address()
    }

    /// The scratch directory (logs, configuration, state).
    pub fn scratch(&self) -> &Scratch {
        &self.scratch
    }

    /// nfcd's `--transport` argument.
    pub fn transport(&self) -> &str {
        &self.args.transport
    }

    /// Everything the running nfcd logged so far.
    pub fn nfcd_log(&self) -> String {
        self.nfcd.log()
    }

    /// Start a wallet without waiting for it.
    pub fn spawn_wallet(&self, kind: WalletKind, id: &str, extra: &[&str]) -> Wallet {
        let n = self.logs.fetch_add(1, Ordering::Relaxed) + 1;
        let log = self
            .scratch
            .join(&format!("{n}-{}-{id}.log", kind.binary_name()));
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        Wallet::spawn(kind, id, self.bus.address(), &extra, log)
    }

    /// Start a wallet and wait until it is registered: its `READY` line (test-wallet), or its
    /// Id in `Services` (payment and transit wallets, which print no such line).
    pub async fn wallet(&self, kind: WalletKind, id: &str, extra: &[&str]) -> Wallet {
        let mut wallet = self.spawn_wallet(kind, id, extra);
        match kind {
            WalletKind::Test => wallet.wait_ready().await,
            WalletKind::Payment | WalletKind::Transit => {
                tokio::select! {
                    _ = bus::wait_registered(&self.manager, id) => {}
                    status = wallet.wait_exit(WAIT) => {
                        if let Some(status) = status {
                            panic!(
                                "{} {id} exited ({status}) instead of registering:\n{}",
                                kind.binary_name(),
                                wallet.log_tail()
                            );
                        }
                    }
                }
            }
        }
        wallet
    }

    /// Run a tap with a named script of the virtual reader, default options.
    pub async fn tap(&self, script: TapScript) -> TapReport {
        let sim = self.sim();
        within("RFST_DISCOVERY before the tap", WAIT, sim.wait_ready()).await;
        let options = TapOptions {
            timeout: WAIT,
            ..TapOptions::default()
        };
        match sim.tap(script, options).await {
            Ok(report) => report,
            Err(e) => panic!("tap {script}: {e}"),
        }
    }

    /// Run a tap with any script ([`crate::scripts`]). `options.timeout` bounds it.
    pub async fn tap_with(&self, script: ScriptBuilder, options: TapOptions) -> TapReport {
        let sim = self.sim();
        within("RFST_DISCOVERY before the tap", WAIT, sim.wait_ready()).await;
        match sim.tap_with(script, options).await {
            Ok(report) => report,
            Err(e) => panic!("tap: {e}"),
        }
    }

    /// Stop nfcd (SIGTERM, checked) and start it again on the same line, bus, configuration and
    /// state directory; returns once the new one is up as after [`Rig::start`].
    pub async fn restart_nfcd(&mut self) {
        let old_owner = bus::name_owner(&self.conn, BUS_NAME).await;
        self.nfcd.stop().await;
        self.nfcd.assert_log_clean();
        let log = self
            .scratch
            .join(&format!("nfcd-{}.log", self.stopped.len() + 2));
        let old = std::mem::replace(&mut self.nfcd, Nfcd::spawn(&self.args, log));
        self.stopped.push(old);
        let (manager, adapter) = await_nfcd(&self.conn, &mut self.nfcd, old_owner).await;
        self.manager = manager;
        self.adapter = adapter;
        self.wait_discovering("the virtual controller discovering after the restart")
            .await;
    }

    /// nfcd's state directory (`--state-dir`).
    pub fn state_dir(&self) -> &std::path::Path {
        &self.args.state_dir
    }

    /// The running nfcd's memory use (`/proc/PID/status`).
    pub fn nfcd_memory(&self) -> Memory {
        self.nfcd.memory()
    }

    /// End nfcd with SIGKILL, as a crash, the OOM killer or a power cut would (no shutdown code
    /// runs), and reap it. Returns the unique bus name it had, for [`Rig::respawn_nfcd`].
    pub async fn kill_nfcd(&mut self) -> Option<String> {
        let old_owner = bus::name_owner(&self.conn, BUS_NAME).await;
        let status = self.nfcd.kill().await;
        assert!(
            !status.success(),
            "nfcd exited 0 although it was killed: {status}"
        );
        old_owner
    }

    /// Start nfcd again after [`Rig::kill_nfcd`] on the same line, bus, configuration and state
    /// directory; returns once the new one (another owner than `old_owner`) is up as after
    /// [`Rig::start`].
    pub async fn respawn_nfcd(&mut self, old_owner: Option<String>) {
        let log = self
            .scratch
            .join(&format!("nfcd-{}.log", self.stopped.len() + 2));
        let old = std::mem::replace(&mut self.nfcd, Nfcd::spawn(&self.args, log));
        self.stopped.push(old);
        let (manager, adapter) = await_nfcd(&self.conn, &mut self.nfcd, old_owner).await;
        self.manager = manager;
        self.adapter = adapter;
        self.wait_discovering("the virtual controller discovering after the respawn")
            .await;
    }

    /// End of the test: stop nfcd with SIGTERM, check it exited 0, and that no log of any of
    /// its runs holds a panic.
    pub async fn finish(mut self) {
        self.nfcd.stop().await;
        for nfcd in self.stopped.iter().chain(std::iter::once(&self.nfcd)) {
            nfcd.assert_log_clean();
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some((_, task)) = &self.host {
            task.abort();
        }
    }
}

/// Wait until nfcd owns its name (a new owner, not `old_owner`) and reports the controller
/// present; fails the test at once if nfcd exits meanwhile.
async fn await_nfcd(
    conn: &Connection,
    nfcd: &mut Nfcd,
    old_owner: Option<String>,
) -> (Manager1Proxy<'static>, Adapter1Proxy<'static>) {
    tokio::select! {
        _ = bus::wait_for_new_owner(conn, BUS_NAME, old_owner.as_deref()) => {}
        status = nfcd.wait_exit(WAIT) => {
            if let Some(status) = status {
                panic!("nfcd exited ({status}) before taking {BUS_NAME}:\n{}", nfcd.log_tail());
            }
        }
    }
    let manager = Manager1Proxy::new(conn)
        .await
        .unwrap_or_else(|e| panic!("Manager1 proxy: {e}"));
    let adapter = Adapter1Proxy::new(conn)
        .await
        .unwrap_or_else(|e| panic!("Adapter1 proxy: {e}"));
    bus::wait_present(&adapter, true).await;
    (manager, adapter)
}

async fn connect(address: &str) -> Connection {
    let builder = zbus::connection::Builder::address(address);
    within("connecting to the private bus", WAIT, builder.build())
        .await
        .unwrap_or_else(|e| panic!("connecting to {address}: {e}"))
}

fn write(path: &std::path::Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("cannot write {}: {e}", path.display());
    }
}

/// The running test's name (libtest names the thread after it), fit for a directory name.
fn test_tag() -> String {
    let name = std::thread::current()
        .name()
        .unwrap_or("test")
        .rsplit("::")
        .next()
        .unwrap_or("test")
        .to_owned();
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(48)
        .collect()
}

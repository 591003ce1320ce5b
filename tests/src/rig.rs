//! The whole set-up of one end-to-end test: private bus, virtual controller, nfcd, clients.
//!
//! Contract: [`Rig::start`] returns once nfcd owns `org.nfcd`, reports the controller
//! `Present`, and the virtual controller is discovering (a tap can start). Wallets are started
//! through the rig ([`Rig::wallet`]) and owned by the test. [`Rig::finish`] stops nfcd with
//! SIGTERM and checks that it exited 0 and that none of its logs (one per start) holds a panic;
//! every test ends with it. On a failure the end of nfcd's log is printed and the scratch
//! directory is kept.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nfcd::simhost::{
    Profile, Pty, SimError, SimHandle, SimHost, SimOptions, TapOptions, TapReport, TapScript,
};
use tokio::task::JoinHandle;
use zbus::Connection;

use crate::bus::{self, Adapter1Proxy, Manager1Proxy};
use crate::dbus_common::session_config;
use crate::process::{Memory, Nfcd, NfcdArgs, Wallet, WalletKind};
use crate::scratch::Scratch;
use crate::scripts::ScriptBuilder;
use crate::{within, TestBus, WAIT};

/// The well-known name of nfcd.
pub const BUS_NAME: &str = "org.nfcd";

/// How nfcd reaches the virtual controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A pseudo-terminal: nfcd's UART transport, through a link to `/dev/pts/N` in the
    /// test's scratch directory (`uart:<scratch>/controller-tty`).
    Pty,
    /// A TCP connection to an ephemeral port on 127.0.0.1: nfcd's TCP transport.
    Tcp,
    /// nfcd's own in-process virtual controller (`--transport sim[:nci2]`), driven through
    /// `org.nfcd.Simulator1`; the test has no [`SimHandle`] then.
    Builtin,
    /// nfcd's own virtual controller behind a simulated PN7150 I²C slave, reached through
    /// nfcd's real I²C transport (`--transport sim:pn7150@i2c`); like [`Link::Builtin`].
    BuiltinI2c,
}

impl Link {
    /// Whether the virtual controller is nfcd's own, driven through `org.nfcd.Simulator1`.
    pub fn is_builtin(self) -> bool {
        matches!(self, Link::Builtin | Link::BuiltinI2c)
    }
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

/// How the tests tap: the reader waits [`WAIT`] for each answer (not the 1 s a real reader
/// grants), so that a slow, loaded machine shows as a slow tap rather than a lost one.
pub fn tap_options() -> TapOptions {
    TapOptions {
        timeout: WAIT,
        ..TapOptions::default()
    }
}

/// A virtual controller without the RF air time: for taps that move megabytes or thousands of
/// APDUs, where the time the air would take is not what is tested.
pub fn no_air_time() -> SimOptions {
    SimOptions {
        rf_timing: None,
        ..SimOptions::default()
    }
}

/// The reader's round trip of exchange `index` of `report`.
pub fn latency(report: &TapReport, index: usize) -> Duration {
    match report.apdus.get(index) {
        Some(record) => record.latency(),
        None => panic!(
            "no exchange {index} of {}: {:?}",
            report.apdus.len(),
            report.outcome
        ),
    }
}

/// The Ids in `manager`'s `Services`, sorted.
pub async fn service_ids(manager: &Manager1Proxy<'_>) -> Vec<String> {
    let mut ids: Vec<String> = manager
        .services()
        .await
        .unwrap_or_else(|e| panic!("Services: {e}"))
        .into_iter()
        .map(|s| s.id)
        .collect();
    ids.sort();
    ids
}

/// A virtual controller served on a new pseudo-terminal before nfcd starts, for tests that put
/// the line somewhere else first — behind a symlink, bind-mounted over a real tty node — and
/// then start nfcd there with [`Rig::start_on_line`].
pub struct ServedPty {
    host: SimHost,
    task: JoinHandle<Result<(), SimError>>,
    path: PathBuf,
}

impl ServedPty {
    /// Serve a controller of `profile` on a new pty. Must run inside a tokio runtime.
    pub fn new(profile: Profile) -> ServedPty {
        let host = SimHost::new(profile, SimOptions::default());
        let (path, task) = host
            .serve_pty()
            .unwrap_or_else(|e| panic!("serving the virtual controller on a pty: {e}"));
        ServedPty { host, task, path }
    }

    /// The pty's slave side, `/dev/pts/N`.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How the pieces run, beyond what [`RigOptions`] sets up: the virtual controller's timing and
/// nfcd's log level. The tests keep the defaults; the benchmark (`nfcd-bench`) runs nfcd as a
/// service would and models the I²C bus.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// Timing of the virtual controller served here (I²C bus model, RF air time). Not used
    /// with [`Link::Builtin`].
    pub sim: SimOptions,
    /// nfcd with `-v` (debug log with the NCI packet trace), as the tests want it for
    /// diagnosis; `false` runs it at its default level, as a service runs.
    pub debug_log: bool,
    /// Let processes of any uid connect to the private bus (by default dbus-daemon admits its
    /// own uid only): for clients started under other uids, as wallets of several users are.
    pub bus_any_user: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            sim: SimOptions::default(),
            debug_log: true,
            bus_any_user: false,
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
        Rig::start_tuned(options, Tuning::default()).await
    }

    /// [`Rig::start`] with the pieces running as `tuning` says.
    pub async fn start_tuned(options: RigOptions, tuning: Tuning) -> Rig {
        Rig::launch_tuned(options, tuning, |_| {})
            .await
            .ready()
            .await
    }

    /// Start everything with `options` like [`Rig::start`], but first run `prepare` on the
    /// virtual controller (e.g. to arm a fault that hits nfcd's start-up — with [`Link::Pty`]:
    /// each TCP connection power-cycles the controller, which disarms faults; not called with
    /// [`Link::Builtin`]), and return as soon as nfcd owns its bus name, whether or not the
    /// controller answers.
    pub async fn launch(options: RigOptions, prepare: impl FnOnce(&SimHandle)) -> Rig {
        Rig::launch_tuned(options, Tuning::default(), prepare).await
    }

    async fn launch_tuned(
        options: RigOptions,
        tuning: Tuning,
        prepare: impl FnOnce(&SimHandle),
    ) -> Rig {
        let scratch = Scratch::new(&test_tag());
        let bus = if tuning.bus_any_user {
            let config = session_config(std::path::Path::new("{dir}")).replace(
                "<policy context=\"default\">",
                "<policy context=\"default\">\n    <allow user=\"*\"/>",
            );
            TestBus::with_config(&config)
                .unwrap_or_else(|e| panic!("starting the private bus: {e}"))
        } else {
            TestBus::session()
        };
        let host = SimHost::new(options.profile, tuning.sim);
        if !options.link.is_builtin() {
            prepare(&host.handle());
        }
        let (transport, host) = match options.link {
            Link::Pty => {
                let (path, task) = host
                    .serve_pty()
                    .unwrap_or_else(|e| panic!("serving the virtual controller on a pty: {e}"));
                // nfcd reaches the pty through a link of this test's own, as it would a
                // `/dev/serial/by-id/...` name: pty numbers are recycled at once, and a link
                // removed when the line is cut keeps nfcd from reopening a number that
                // another test's controller has taken meanwhile.
                let line = scratch.join("controller-tty");
                if let Err(e) = std::os::unix::fs::symlink(&path, &line) {
                    panic!("cannot link {} to {}: {e}", line.display(), path.display());
                }
                (format!("uart:{}", line.display()), Some((host, task)))
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
            Link::BuiltinI2c => {
                let transport = match options.profile {
                    Profile::Pn7150 => "sim:pn7150@i2c",
                    Profile::Nci2 => "sim:nci2@i2c",
                };
                (transport.to_owned(), None)
            }
        };
        Rig::spawn_nfcd(
            scratch,
            bus,
            transport,
            options.apdu_deadline_ms,
            tuning.debug_log,
            host,
        )
        .await
    }

    /// Write nfcd's configuration and state directory into `scratch`, start nfcd on
    /// `transport` and the private `bus`, and return once it owns its bus name.
    async fn spawn_nfcd(
        scratch: Scratch,
        bus: TestBus,
        transport: String,
        apdu_deadline_ms: Option<u32>,
        debug_log: bool,
        host: Option<(SimHost, JoinHandle<Result<(), SimError>>)>,
    ) -> Rig {
        let config = scratch.join("nfcd.toml");
        let mut text = String::from("[lock]\nmode = \"unlocked\"\n");
        if let Some(ms) = apdu_deadline_ms {
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
            debug_log,
        };
        let mut nfcd = Nfcd::spawn(&args, scratch.join("nfcd-1.log"));
        let conn = connect(bus.address()).await;
        let (manager, adapter) = await_name(&conn, &mut nfcd, None).await;
        Rig {
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
        }
    }

    /// Wait until nfcd reports the controller present and the virtual controller served here
    /// is discovering.
    async fn ready(self) -> Rig {
        bus::wait_present(&self.adapter, true).await;
        self.wait_discovering("the virtual controller discovering (RFST_DISCOVERY)")
            .await;
        self
    }

    /// Start as [`Rig::start`] with the defaults of [`RigOptions`], on a line the test prepared:
    /// the controller is `served`, and nfcd is started on `uart:<device>`, where `device` is
    /// what `line` returns — given the test's scratch directory, before nfcd starts — e.g. a
    /// symlink to [`ServedPty::path`] or a tty node the pty was bind-mounted over.
    pub async fn start_on_line(served: ServedPty, line: impl FnOnce(&Scratch) -> PathBuf) -> Rig {
        let scratch = Scratch::new(&test_tag());
        let bus = TestBus::session();
        let transport = format!("uart:{}", line(&scratch).display());
        let host = Some((served.host, served.task));
        Rig::spawn_nfcd(scratch, bus, transport, None, true, host)
            .await
            .ready()
            .await
    }

    /// The pty the controller is served on goes away, as a USB-serial adapter pulled out:
    /// master and slave are closed, `/dev/pts/N` disappears, nfcd reads a hang-up. The
    /// controller itself (a [`SimHandle`]) stays. A pty line only ([`Link::Pty`],
    /// [`Rig::start_on_line`]); returns once the pty is closed.
    pub async fn unplug_pty(&mut self) {
        if !self.args.transport.starts_with("uart:") {
            panic!("unplug_pty needs a pty line, not {}", self.args.transport);
        }
        let Some((_, task)) = self.host.as_mut() else {
            panic!("unplug_pty needs a virtual controller served here");
        };
        task.abort();
        // The serving future owns both ends of the pty; they are closed when it is dropped.
        let _ = within("the pty's serving task ending", WAIT, task).await;
    }

    /// The controller comes back on `pty` (made with [`nfcd::simhost::open_pty`]; opened
    /// before [`Rig::unplug_pty`] it is sure to get another number, as a re-plugged adapter
    /// may come back as `ttyUSB1`); returns its slave's path, which the test then makes
    /// reachable where nfcd looks.
    pub fn replug_pty(&mut self, pty: Pty) -> PathBuf {
        let Some((host, task)) = self.host.as_mut() else {
            panic!("replug_pty needs a virtual controller served here");
        };
        let Pty {
            master,
            slave,
            slave_path,
        } = pty;
        let serve = host.serve(master);
        task.abort();
        *task = tokio::spawn(async move {
            // The slave stays open while the line is served, so the master never hangs up
            // between nfcd's opens (as `SimHost::serve_pty` does).
            let _slave = slave;
            serve.await
        });
        slave_path
    }

    /// The running nfcd's process id.
    pub fn nfcd_pid(&self) -> u32 {
        match self.nfcd.pid() {
            Some(pid) => pid,
            None => panic!("nfcd has exited:\n{}", self.nfcd.log_tail()),
        }
    }

    /// Wait until the virtual controller served here is discovering; with
    /// [`Link::Builtin`] the daemon's `Present` (already waited for) is all there is.
    async fn wait_discovering(&self, what: &str) {
        if let Some((host, _)) = &self.host {
            within(what, WAIT, host.handle().wait_ready()).await;
        }
    }

    /// The controller goes away: the TCP link to the virtual controller is cut, or the
    /// master side of its pseudo-terminal is closed, as when its device is unplugged: nfcd's
    /// transport reads end of file (TCP) or a hang-up (pty). Not with [`Link::Builtin`].
    pub fn cut_link(&mut self) {
        if let Some(line) = self.args.transport.strip_prefix("uart:") {
            // The line's name goes with the line (see `Rig::launch_tuned`) — only a link of
            // this test's own, never a device node a test started nfcd on.
            let line = Path::new(line);
            if line.starts_with(self.scratch.path()) && line.is_symlink() {
                let _ = std::fs::remove_file(line);
            }
        }
        match &self.host {
            Some((_, task)) => task.abort(),
            None => panic!("cut_link needs a controller served here, not Link::Builtin"),
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
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
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

    /// Wait up to `limit` until `look` finds what it wants in nfcd's log; panics with `what`
    /// and the log otherwise. The log is a file written by another process: nothing to wait
    /// on but time, so it is read again every 20 ms.
    pub async fn wait_log<T>(
        &self,
        what: &str,
        limit: Duration,
        look: impl Fn(&str) -> Option<T>,
    ) -> T {
        let found = tokio::time::timeout(limit, async {
            loop {
                if let Some(found) = look(&self.nfcd_log()) {
                    return found;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            panic!(
                "{what}: not within {} ms; nfcd's log:\n{}",
                limit.as_millis(),
                self.nfcd_log()
            )
        })
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
        self.tap_script_with(script, tap_options()).await
    }

    /// Run one of the built-in reader scripts with reader `options`.
    pub async fn tap_script_with(&self, script: TapScript, options: TapOptions) -> TapReport {
        let sim = self.sim();
        within("RFST_DISCOVERY before the tap", WAIT, sim.wait_ready()).await;
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
        self.spawn_again(
            old_owner,
            "the virtual controller discovering after the restart",
        )
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

    /// The bus goes away: the private `dbus-daemon` is killed. Every client's connection,
    /// nfcd's and the test's own, is closed; nothing on the bus works after this.
    pub fn kill_bus(&mut self) {
        self.bus.kill();
    }

    /// Wait (at most [`WAIT`]) for nfcd to exit on its own; its exit status, its log, and
    /// whether the log is free of panics are the caller's to check.
    pub async fn wait_nfcd_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.nfcd.wait_exit(WAIT).await
    }

    /// Start nfcd again after [`Rig::kill_nfcd`] on the same line, bus, configuration and state
    /// directory; returns once the new one (another owner than `old_owner`) is up as after
    /// [`Rig::start`].
    pub async fn respawn_nfcd(&mut self, old_owner: Option<String>) {
        self.spawn_again(
            old_owner,
            "the virtual controller discovering after the respawn",
        )
        .await;
    }

    /// Start nfcd again in place of the one that ended (kept for its log), with a log file of
    /// its own; wait for it to own the bus name (another owner than `old_owner`) and discover.
    async fn spawn_again(&mut self, old_owner: Option<String>, what: &str) {
        let log = self
            .scratch
            .join(&format!("nfcd-{}.log", self.stopped.len() + 2));
        let old = std::mem::replace(&mut self.nfcd, Nfcd::spawn(&self.args, log));
        self.stopped.push(old);
        let (manager, adapter) = await_nfcd(&self.conn, &mut self.nfcd, old_owner).await;
        self.manager = manager;
        self.adapter = adapter;
        self.wait_discovering(what).await;
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
    let (manager, adapter) = await_name(conn, nfcd, old_owner).await;
    bus::wait_present(&adapter, true).await;
    (manager, adapter)
}

/// Wait until nfcd owns its name (a new owner, not `old_owner`); fails the test at once if
/// nfcd exits meanwhile.
async fn await_name(
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

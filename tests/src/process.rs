//! The processes under test: the `nfcd` daemon and the wallets, each a real binary run as a
//! child process.
//!
//! Contract: stderr of every child goes to a log file in the test's scratch directory; a
//! wallet's stdout is read line by line into a history the test waits on (the wallets' line
//! protocol, wallets/README.md). Children are stopped like a service manager would: SIGTERM,
//! then SIGKILL when they do not exit within a grace period — explicitly by the test
//! ([`Nfcd::stop`], [`Wallet::stop`]) or, as a fallback, on drop. Nothing here decides whether
//! what a process did was right, except [`Nfcd::assert_log_clean`].

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{binary, WAIT};

/// How long a process may take to exit after SIGTERM before it gets SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// Lines of a log shown in a failure message.
const TAIL_LINES: usize = 60;

/// A child process with its stderr in a log file.
#[derive(Debug)]
pub struct Child {
    name: String,
    child: tokio::process::Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Child {
    /// Start `cmd` (its stdin and stderr are set here; stdout as the caller set it).
    fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Child {
        let file = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        cmd.stdin(Stdio::null())
            .stderr(Stdio::from(file))
            // Neither the journal nor a service manager is there; logs go to stderr.
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("RUST_LOG")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Child {
            name: name.to_owned(),
            child,
            log,
            status: None,
        }
    }

    /// What the process wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last lines of [`Child::log`], for failure messages.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        lines[start..].join("\n")
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn signal(&self, signal: Signal) {
        if self.status.is_some() {
            return;
        }
        if let Some(pid) = self.child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }

    /// The exit status once the process has ended, waiting at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.status {
            return Some(status);
        }
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.status = Some(status);
                Some(status)
            }
            Ok(Err(e)) => panic!("waiting for {}: {e}", self.name),
            Err(_) => None,
        }
    }

    /// SIGTERM, then SIGKILL after [`GRACE`]; the exit status, and whether SIGTERM sufficed.
    pub async fn terminate(&mut self) -> (ExitStatus, bool) {
        self.signal(Signal::SIGTERM);
        if let Some(status) = self.wait_exit(GRACE).await {
            return (status, true);
        }
        let _ = self.child.start_kill();
        match self.wait_exit(GRACE).await {
            Some(status) => (status, false),
            None => panic!("{} survived SIGKILL", self.name),
        }
    }

    /// Its process id, while it has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        if self.status.is_some() {
            return None;
        }
        self.child.id()
    }

    /// SIGKILL, as a crash or the OOM killer would end it: no handler runs. Returns the exit
    /// status once it has been reaped.
    pub async fn kill(&mut self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        match self.wait_exit(GRACE).await {
            Some(status) => status,
            None => panic!("{} survived SIGKILL", self.name),
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.status = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.is_running() {
            return;
        }
        // Not awaited by the test (it failed, or forgot): the same SIGTERM-then-SIGKILL, with
        // a blocking wait for the exit.
        self.signal(Signal::SIGTERM);
        let deadline = std::time::Instant::now() + GRACE;
        while std::time::Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.start_kill();
    }
}

/// How nfcd is started.
#[derive(Debug, Clone)]
pub struct NfcdArgs {
    /// `--transport`, e.g. `uart:/dev/pts/3` or `tcp:127.0.0.1:40000`.
    pub transport: String,
    /// `--bus`: the private bus address.
    pub bus: String,
    /// `--state-dir`.
    pub state_dir: PathBuf,
    /// `--config`.
    pub config: PathBuf,
    /// Whether to pass `-v` (debug log with the NCI packet trace).
    pub debug_log: bool,
}

/// A running `nfcd`.
#[derive(Debug)]
pub struct Nfcd {
    child: Child,
}

impl Nfcd {
    /// Start `nfcd` with `args` (and `-v`, the debug log with the NCI packet trace, if
    /// [`NfcdArgs::debug_log`]) logging on stderr into `log`. Does not wait for anything.
    pub fn spawn(args: &NfcdArgs, log: PathBuf) -> Nfcd {
        let mut cmd = Command::new(binary("nfcd"));
        cmd.arg("--transport")
            .arg(&args.transport)
            .arg("--bus")
            .arg(&args.bus)
            .arg("--state-dir")
            .arg(&args.state_dir)
            .arg("--config")
            .arg(&args.config)
            .stdout(Stdio::null());
        if args.debug_log {
            cmd.arg("-v");
        }
        Nfcd {
            child: Child::spawn("nfcd", cmd, log),
        }
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// The end of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        self.child.log_tail()
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// Its process id, until it has been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.pid()
    }

    /// Wait at most `limit` for it to exit.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.child.wait_exit(limit).await
    }

    /// Its memory now ([`Memory::of`]); panics when it is not running.
    pub fn memory(&self) -> Memory {
        let pid = self.pid().unwrap_or_else(|| panic!("nfcd is not running"));
        Memory::of(pid).unwrap_or_else(|| panic!("cannot read /proc/{pid}/status"))
    }

    /// End it with SIGKILL (no shutdown code runs) and reap it.
    pub async fn kill(&mut self) -> ExitStatus {
        self.child.kill().await
    }

    /// Stop it as systemd would (SIGTERM) and check that it exited 0 within [`GRACE`].
    pub async fn stop(&mut self) {
        let (status, graceful) = self.child.terminate().await;
        assert!(
            graceful && status.success(),
            "nfcd did not exit cleanly on SIGTERM ({status}); log:\n{}",
            self.log_tail()
        );
    }

    /// The log holds no panic (`panicked at`), in the main task or in any other.
    pub fn assert_log_clean(&self) {
        let log = self.log();
        if let Some(at) = log.find("panicked") {
            let start = log[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = log[at..].find('\n').map_or(log.len(), |i| at + i);
            panic!(
                "nfcd panicked ({}): {}",
                self.child.log_path().display(),
                &log[start..end]
            );
        }
    }
}

impl Drop for Nfcd {
    fn drop(&mut self) {
        // The child is stopped by its own drop, after this.
        if std::thread::panicking() {
            eprintln!(
                "---- end of the nfcd log {} ----\n{}\n----",
                self.child.log_path().display(),
                self.log_tail()
            );
        }
    }
}

/// Memory use of a process, from `/proc/PID/status` (proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident set size now, KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the largest resident set size so far, KiB.
    pub peak_rss_kib: u64,
}

impl Memory {
    /// The figures of process `pid`; `None` when it does not exist (any more) or the file
    /// lacks them.
    pub fn of(pid: u32) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(name)?.strip_prefix(':')?;
                value.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()
            })
        };
        Some(Memory {
            rss_kib: field("VmRSS")?,
            peak_rss_kib: field("VmHWM")?,
        })
    }
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RSS {} KiB (peak {} KiB)",
            self.rss_kib, self.peak_rss_kib
        )
    }
}

/// The three wallet binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalletKind {
    /// `payment-wallet`: EMV contactless card, category payment, PPSE + `A0000000041010`.
    Payment,
    /// `transit-wallet`: stored value with signed receipts, category transit.
    Transit,
    /// `test-wallet`: scriptable behaviour, line protocol with `READY`.
    Test,
}

impl WalletKind {
    /// The binary's name.
    pub fn binary_name(self) -> &'static str {
        match self {
            WalletKind::Payment => "payment-wallet",
            WalletKind::Transit => "transit-wallet",
            WalletKind::Test => "test-wallet",
        }
    }
}

/// What a wallet printed on stdout so far.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Every line, in order.
    pub lines: Vec<String>,
    /// stdout reached its end: the process exited (or closed it).
    pub closed: bool,
}

/// What a wallet line says (wallets/README.md): `test-wallet` prints `READY`,
/// `APDU <hex>`, `DEACTIVATED <reason>`, `ERROR <name> <message>`; the payment and transit
/// wallets with `--verbose` print `C-APDU <hex>`, `R-APDU <hex>`, `DEACTIVATED <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `READY`.
    Ready,
    /// A C-APDU reached the wallet.
    Command(Vec<u8>),
    /// The wallet answered this R-APDU.
    Response(Vec<u8>),
    /// `Deactivated(reason)` reached the wallet.
    Deactivated(String),
    /// Registration failed with this D-Bus error name and message.
    Error(String, String),
    /// Anything else.
    Other(String),
}

impl Line {
    /// Parse one stdout line.
    pub fn parse(line: &str) -> Line {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let hex = |text: &str| nfcd_wallets::hex::decode(text).ok();
        match word {
            "READY" if rest.is_empty() => Line::Ready,
            "APDU" | "C-APDU" => {
                hex(rest).map_or_else(|| Line::Other(line.to_owned()), Line::Command)
            }
            "R-APDU" => hex(rest).map_or_else(|| Line::Other(line.to_owned()), Line::Response),
            "DEACTIVATED" => Line::Deactivated(rest.to_owned()),
            "ERROR" => {
                let (name, message) = rest.split_once(' ').unwrap_or((rest, ""));
                Line::Error(name.to_owned(), message.to_owned())
            }
            _ => Line::Other(line.to_owned()),
        }
    }
}

/// A running wallet.
#[derive(Debug)]
pub struct Wallet {
    kind: WalletKind,
    id: String,
    child: Child,
    output: watch::Receiver<Output>,
    reader: JoinHandle<()>,
}

impl Wallet {
    /// Start wallet `kind` with service Id `id` on the bus at `bus`, with `extra` arguments;
    /// payment and transit wallets get `--verbose` so that they print their APDUs. Does not
    /// wait for anything.
    pub fn spawn(kind: WalletKind, id: &str, bus: &str, extra: &[String], log: PathBuf) -> Wallet {
        let mut cmd = Command::new(binary(kind.binary_name()));
        cmd.arg("--bus").arg(bus).arg("--id").arg(id);
        if kind != WalletKind::Test {
            cmd.arg("--verbose");
        }
        cmd.args(extra).stdout(Stdio::piped());
        let mut child = Child::spawn(kind.binary_name(), cmd, log);
        let stdout = child.child.stdout.take();
        let (tx, output) = watch::channel(Output::default());
        let reader = tokio::spawn(async move {
            if let Some(stdout) = stdout {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tx.send_modify(|o| o.lines.push(line));
                }
            }
            tx.send_modify(|o| o.closed = true);
        });
        Wallet {
            kind,
            id: id.to_owned(),
            child,
            output,
            reader,
        }
    }

    /// Which binary this is.
    pub fn kind(&self) -> WalletKind {
        self.kind
    }

    /// Its service Id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every stdout line so far, parsed.
    pub fn lines(&self) -> Vec<Line> {
        self.output
            .borrow()
            .lines
            .iter()
            .map(|l| Line::parse(l))
            .collect()
    }

    /// The C-APDUs that reached it so far, in order.
    pub fn commands(&self) -> Vec<Vec<u8>> {
        self.lines()
            .into_iter()
            .filter_map(|l| match l {
                Line::Command(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// The `Deactivated` reasons it got so far, in order.
    pub fn deactivations(&self) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter_map(|l| match l {
                Line::Deactivated(reason) => Some(reason),
                _ => None,
            })
            .collect()
    }

    /// Wait (at most [`WAIT`]) until `count` lines satisfy `want`; fails the test if the
    /// wallet exits first.
    pub async fn wait_lines(&mut self, what: &str, count: usize, want: impl Fn(&Line) -> bool) {
        let matching = |o: &Output| o.lines.iter().filter(|l| want(&Line::parse(l))).count();
        let timed_out = tokio::time::timeout(
            WAIT,
            self.output.wait_for(|o| matching(o) >= count || o.closed),
        )
        .await
        .is_err();
        let output = self.output.borrow().clone();
        if matching(&output) >= count {
            return;
        }
        let why = if timed_out {
            format!("not within {} ms", WAIT.as_millis())
        } else {
            "its stdout closed first (the process exited)".to_owned()
        };
        panic!(
            "{} {}: waiting for {what}: {why}\nstdout:\n{}\nstderr:\n{}",
            self.kind.binary_name(),
            self.id,
            output.lines.join("\n"),
            self.child.log_tail()
        );
    }

    /// Wait for `READY` (test-wallet): registered, channel opened and default set as asked.
    /// Fails the test on an `ERROR` line.
    pub async fn wait_ready(&mut self) {
        self.wait_lines("READY", 1, |l| matches!(l, Line::Ready | Line::Error(..)))
            .await;
        if let Some((name, message)) = self.error() {
            panic!(
                "{} {}: registration failed: {name} {message}",
                self.kind.binary_name(),
                self.id
            );
        }
    }

    /// The `ERROR` line, if the wallet printed one.
    pub fn error(&self) -> Option<(String, String)> {
        self.lines().into_iter().find_map(|l| match l {
            Line::Error(name, message) => Some((name, message)),
            _ => None,
        })
    }

    /// Wait until it got `Deactivated(reason)` (`count` such calls in all).
    pub async fn wait_deactivated(&mut self, reason: &str, count: usize) {
        let what = format!("Deactivated({reason:?}) × {count}");
        self.wait_lines(&what, count, |l| *l == Line::Deactivated(reason.to_owned()))
            .await;
    }

    /// Wait at most `limit` for the process to exit and for everything it printed to be read
    /// (its stdout's end), so that [`Wallet::lines`] then holds its last words.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        let status = self.child.wait_exit(limit).await?;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::timeout(left, self.output.wait_for(|o| o.closed))
            .await
            .ok()?
            .ok()?;
        Some(status)
    }

    /// Stop it with SIGTERM (the wallets unregister and exit 0); the exit status.
    pub async fn stop(&mut self) -> ExitStatus {
        let (status, graceful) = self.child.terminate().await;
        assert!(
            graceful,
            "{} {} ignored SIGTERM; stderr:\n{}",
            self.kind.binary_name(),
            self.id,
            self.child.log_tail()
        );
        status
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// End it with SIGKILL, a crash: it neither unregisters nor closes anything itself.
    pub async fn kill(&mut self) -> ExitStatus {
        self.child.kill().await
    }

    /// The end of its stderr, for failure messages.
    pub fn log_tail(&self) -> String {
        self.child.log_tail()
    }
}

impl Drop for Wallet {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

//! A private `dbus-daemon` for tests: started in a temporary directory with a config written
//! there, stopped (and the directory removed) on drop.
//!
//! `TestBus::session()` is a permissive bus for exercising interfaces; `TestBus::with_config`
//! runs any config (e.g. a system-style one that includes `dbus/org.nfcd.conf`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Where dbus-daemon is looked for; `NFCD_TEST_DBUS_DAEMON` overrides.
pub fn dbus_daemon_path() -> PathBuf {
    std::env::var_os("NFCD_TEST_DBUS_DAEMON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/dbus-daemon"))
}

/// A fresh, empty temporary directory, removed by the returned guard.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("nfcd-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temporary directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running private bus.
pub struct TestBus {
    child: Child,
    address: String,
    dir: TempDir,
}

/// Config of a permissive session-type bus listening in `dir`.
pub fn session_config(dir: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        dir.display()
    )
}

impl TestBus {
    /// A permissive session-type bus.
    pub fn session() -> TestBus {
        let dir = TempDir::new("bus");
        let config = session_config(dir.path());
        TestBus::start(dir, &config).expect("start dbus-daemon")
    }

    /// A bus running `config`, which may use `{dir}` for the temporary directory (its listen
    /// address must be there so that it is cleaned up).
    pub fn with_config(config: &str) -> Result<TestBus, String> {
        let dir = TempDir::new("bus");
        let config = config.replace("{dir}", &dir.path().display().to_string());
        TestBus::start(dir, &config)
    }

    fn start(dir: TempDir, config: &str) -> Result<TestBus, String> {
        let config_path = dir.path().join("bus.conf");
        std::fs::write(&config_path, config).map_err(|e| format!("write config: {e}"))?;
        let mut child = Command::new(dbus_daemon_path())
            .arg(format!("--config-file={}", config_path.display()))
            .arg("--print-address")
            .arg("--nofork")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", dbus_daemon_path().display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let address = line.trim().to_owned();
        if read.is_err() || address.is_empty() {
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!("dbus-daemon did not start: {err}"));
        }
        Ok(TestBus {
            child,
            address,
            dir,
        })
    }

    /// `dbus-daemon` dies (SIGKILL) and is reaped: every connection to it is closed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The bus address, e.g. `unix:path=/tmp/.../bus,guid=...`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The temporary directory of this bus.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The address as an nfcd `Bus`.
    pub fn bus(&self) -> nfcd::config::BusSpec {
        nfcd::config::BusSpec::Address(self.address.clone())
    }

    /// A new client connection.
    pub async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await
            .expect("connect to the test bus")
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Await `f`, failing the test after `secs` seconds instead of hanging.
pub async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("timed out")
}

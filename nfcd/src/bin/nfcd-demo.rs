//! `nfcd-demo`: a whole contactless tap, end to end, without hardware.
//!
//! Starts a private `dbus-daemon`, `nfcd` on its built-in virtual controller
//! (`--transport sim:pn7150`, or `--nci2`), the example payment and transit wallets as
//! separate processes, and then makes the virtual reader tap twice through
//! `org.nfcd.Simulator1.Tap`: an EMV payment (PPSE, SELECT, GPO, READ RECORDs, GENERATE AC)
//! and a transit gate (SELECT, READ BALANCE, DEBIT). Every APDU is printed with its timing,
//! then the outcome. The other programs are expected next to this one (as `cargo build`
//! leaves them in `target/<profile>/`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use zbus::{Connection, OwnedVariant};

/// A full simulated tap through nfcd, with the example wallets.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Emulate a generic NCI 2.0 controller instead of the PN7150 (NCI 1.0).
    #[arg(long)]
    nci2: bool,
    /// Show nfcd's log (with the decoded NCI traffic) on stderr.
    #[arg(short, long)]
    verbose: bool,
}

/// Child processes, stopped in reverse order when dropped.
struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in self.0.iter_mut().rev() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        for (name, child) in self.0.iter_mut().rev() {
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        eprintln!("{name} did not stop; killing it");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nfcd-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("nfcd-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn sibling(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating this program: {e}"))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found; build everything first: cargo build --release",
            path.display()
        ))
    }
}

async fn run(args: &Args) -> Result<bool, String> {
    let nfcd = sibling("nfcd")?;
    let payment = sibling("payment-wallet")?;
    let transit = sibling("transit-wallet")?;
    let dir = std::env::temp_dir().join(format!("nfcd-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = demo(args, &dir, &nfcd, &payment, &transit).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn demo(
    args: &Args,
    dir: &Path,
    nfcd: &Path,
    payment: &Path,
    transit: &Path,
) -> Result<bool, String> {
    let mut children = Children(Vec::new());

    // A private bus, so nothing on this machine is touched.
    let socket = dir.join("bus");
    let address = format!("unix:path={}", socket.display());
    let bus = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--address", &address])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting dbus-daemon (install the dbus-daemon package): {e}"))?;
    children.0.push(("dbus-daemon".into(), bus));
    wait_for(Duration::from_secs(5), || socket.exists()).await?;

    let profile = if args.nci2 { "sim:nci2" } else { "sim:pn7150" };
    let config = dir.join("nfcd.toml");
    std::fs::write(&config, "[lock]\nmode = \"unlocked\"\n")
        .map_err(|e| format!("{}: {e}", config.display()))?;
    let mut cmd = Command::new(nfcd);
    cmd.args(["--transport", profile, "--bus", &address, "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.join("state"));
    if args.verbose {
        cmd.arg("-v");
    } else {
        cmd.stderr(Stdio::null());
    }
    children.0.push(("nfcd".into(), spawn(&mut cmd, "nfcd")?));

    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .map_err(|e| format!("connecting to the private bus: {e}"))?;
    println!("nfcd is starting on the virtual controller ({profile})");
    wait_async(Duration::from_secs(10), || async {
        get_property(&conn, "/org/nfcd/adapter0", "org.nfcd.Adapter1", "Present")
            .await
            .ok()
            .and_then(|v| bool::try_from(&*v).ok())
            .unwrap_or(false)
    })
    .await
    .map_err(|_| "nfcd did not bring the virtual controller up within 10 s".to_owned())?;
    let controller = get_property(
        &conn,
        "/org/nfcd/adapter0",
        "org.nfcd.Adapter1",
        "Controller",
    )
    .await
    .ok()
    .and_then(|v| String::try_from(v).ok())
    .unwrap_or_default();
    println!("controller ready: {controller}");

    for (name, path, extra) in [
        ("payment-wallet", payment, &["--set-default"][..]),
        ("transit-wallet", transit, &["--set-default"][..]),
    ] {
        let mut cmd = Command::new(path);
        cmd.args(["--bus", &address])
            .args(extra)
            .stdout(Stdio::null());
        if !args.verbose {
            cmd.stderr(Stdio::null());
        }
        children.0.push((name.into(), spawn(&mut cmd, name)?));
    }
    wait_async(Duration::from_secs(10), || async {
        registered_ids(&conn).await.len() >= 2
    })
    .await
    .map_err(|_| "the wallets did not register within 10 s".to_owned())?;
    println!(
        "wallets registered: {}\n",
        registered_ids(&conn).await.join(", ")
    );

    let mut all_ok = true;
    for (script, title) in [
        ("emv", "Payment tap (EMV terminal)"),
        ("transit", "Transit gate"),
    ] {
        println!("== {title}");
        all_ok &= tap(&conn, script).await?;
        println!();
    }
    drop(children);
    println!(
        "{}",
        if all_ok {
            "both taps succeeded"
        } else {
            "a tap failed"
        }
    );
    Ok(all_ok)
}

fn spawn(cmd: &mut Command, name: &str) -> Result<Child, String> {
    cmd.spawn().map_err(|e| format!("starting {name}: {e}"))
}

async fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let end = Instant::now() + limit;
    while !ready() {
        if Instant::now() >= end {
            return Err("timed out waiting for the private bus".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn wait_async<F, Fut>(limit: Duration, mut ready: F) -> Result<(), ()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + limit;
    while !ready().await {
        if Instant::now() >= end {
            return Err(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn get_property(
    conn: &Connection,
    path: &str,
    interface: &str,
    name: &str,
) -> Result<OwnedVariant, zbus::Error> {
    let reply = conn
        .call_method(
            Some("org.nfcd"),
            path,
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &(interface, name),
        )
        .await?;
    reply.body().deserialize::<OwnedVariant>()
}

async fn registered_ids(conn: &Connection) -> Vec<String> {
    let Ok(services) = get_property(conn, "/org/nfcd", "org.nfcd.Manager1", "Services").await
    else {
        return Vec::new();
    };
    let Ok(list) = Vec::<HashMap<String, OwnedVariant>>::try_from(services) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|s| s.get("Id"))
        .filter_map(|v| String::try_from(v.clone()).ok())
        .collect()
}

/// Run one reader script and print it; `true` when the tap succeeded.
async fn tap(conn: &Connection, script: &str) -> Result<bool, String> {
    let reply = conn
        .call_method(
            Some("org.nfcd"),
            "/org/nfcd/adapter0",
            Some("org.nfcd.Simulator1"),
            "Tap",
            &(script, HashMap::<String, OwnedVariant>::new()),
        )
        .await
        .map_err(|e| format!("Tap({script}): {e}"))?;
    let records: Vec<HashMap<String, OwnedVariant>> = reply
        .body()
        .deserialize()
        .map_err(|e| format!("Tap({script}) reply: {e}"))?;
    let text = |r: &HashMap<String, OwnedVariant>, k: &str| {
        r.get(k)
            .and_then(|v| String::try_from(v.clone()).ok())
            .unwrap_or_default()
    };
    let bytes = |r: &HashMap<String, OwnedVariant>, k: &str| {
        r.get(k)
            .and_then(|v| Vec::<u8>::try_from(v.clone()).ok())
            .unwrap_or_default()
    };
    let micros = |r: &HashMap<String, OwnedVariant>, k: &str| {
        r.get(k).and_then(|v| u64::try_from(&**v).ok()).unwrap_or(0)
    };
    let mut ok = false;
    for record in &records {
        match text(record, "Kind").as_str() {
            "apdu" => {
                let cmd = bytes(record, "Command");
                let rsp = bytes(record, "Response");
                println!(
                    "  {:>8.2} ms  → {}  {}",
                    micros(record, "SentAtUs") as f64 / 1000.0,
                    describe_command(&cmd),
                    hex(&cmd, 24)
                );
                let service = text(record, "Service");
                println!(
                    "  {:>8.2} ms  ← {}  {}{}",
                    micros(record, "ElapsedUs") as f64 / 1000.0,
                    describe_sw(&rsp),
                    hex(&rsp, 24),
                    if service.is_empty() {
                        String::new()
                    } else {
                        format!("  [{service}]")
                    }
                );
            }
            "summary" => {
                let result = text(record, "Result");
                ok = result == "ok";
                let error = text(record, "Error");
                println!(
                    "  result: {result}{}; {} APDUs, {:.1} ms from activation to field off",
                    if error.is_empty() {
                        String::new()
                    } else {
                        format!(" ({error})")
                    },
                    record
                        .get("Apdus")
                        .and_then(|v| u32::try_from(&**v).ok())
                        .unwrap_or(0),
                    micros(record, "ElapsedUs") as f64 / 1000.0
                );
            }
            _ => {}
        }
    }
    Ok(ok)
}

fn hex(bytes: &[u8], max: usize) -> String {
    let shown = nfcd::hex(bytes.get(..max).unwrap_or(bytes));
    if bytes.len() > max {
        format!("{shown}… ({} bytes)", bytes.len())
    } else {
        shown
    }
}

fn describe_command(cmd: &[u8]) -> String {
    let name = match cmd.get(..2) {
        Some([0x00, 0xA4]) => "SELECT",
        Some([0x80, 0xA8]) => "GET PROCESSING OPTIONS",
        Some([0x00, 0xB2]) => "READ RECORD",
        Some([0x80, 0xAE]) => "GENERATE AC",
        Some([0x80, 0x5C]) => "READ BALANCE",
        Some([0x80, 0x54]) => "DEBIT",
        _ => "command",
    };
    format!("{name:<22}")
}

fn describe_sw(rsp: &[u8]) -> String {
    match rsp.len().checked_sub(2).and_then(|i| rsp.get(i..)) {
        Some([0x90, 0x00]) => format!("{:<22}", "9000 OK"),
        Some([a, b]) => format!("{:<22}", format!("{a:02X}{b:02X}")),
        _ => format!("{:<22}", "(no status word)"),
    }
}

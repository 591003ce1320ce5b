//! The shipped systemd files: nfcd.service passes `systemd-analyze verify` without a single
//! warning, scores an exposure of at most 2.0 in `systemd-analyze security`, and asks for the
//! settings the daemon depends on; nfcd.sysusers creates the user and every group the unit
//! names.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn read(rel: &str) -> String {
    let path = repo_file(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Whether a tool can be run at all; `None` with the reason when not.
fn tool(name: &str) -> Option<String> {
    match Command::new(name).arg("--version").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("{name} --version failed: {}", o.status)),
        Err(e) => Some(format!("{name} not runnable: {e}")),
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `[Section]` → `Key=Value` pairs in order, with backslash continuations joined.
fn unit_entries(unit: &str) -> Vec<(String, String, String)> {
    let mut entries = Vec::new();
    let mut section = String::new();
    let mut pending = String::new();
    for raw in unit.lines() {
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let logical = std::mem::take(&mut pending);
        if let Some(name) = logical.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((k, v)) = logical.split_once('=') {
            entries.push((section.clone(), k.trim().to_owned(), v.trim().to_owned()));
        } else {
            panic!("not a unit file line: {raw:?}");
        }
    }
    entries
}

fn values<'a>(entries: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    entries
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

/// The unit as the tests feed it to systemd-analyze: ExecStart points at the nfcd binary
/// cargo just built, because `verify` insists that the executable exists and /usr/bin/nfcd
/// does not on a build machine. Nothing else is changed.
fn unit_under_test() -> (tempfile::TempDir, PathBuf) {
    let unit = read("systemd/nfcd.service");
    let binary = env!("CARGO_BIN_EXE_nfcd").replace('%', "%%");
    let rewritten = unit.replacen(
        "ExecStart=/usr/bin/nfcd ",
        &format!("ExecStart=\"{binary}\" "),
        1,
    );
    assert_ne!(
        rewritten, unit,
        "ExecStart=/usr/bin/nfcd not found in the unit"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nfcd.service");
    std::fs::write(&path, rewritten).expect("write unit copy");
    (dir, path)
}

/// A line of `verify` output is the test environment's, not ours, only when it is about
/// another unit: systemd loads the units ours refers to (dbus.socket, multi-user.target, ...)
/// from the host, and a host's own broken units are not a defect of nfcd.service. Such lines
/// start with that unit's name or file path. Everything else counts.
fn foreign_unit_line(line: &str, ours: &Path) -> bool {
    let Some((subject, _)) = line.split_once(": ") else {
        return false;
    };
    let subject = subject.split(':').next().unwrap_or(subject);
    if subject.starts_with('/') {
        return !subject.starts_with(&*ours.to_string_lossy()) && !subject.contains("nfcd");
    }
    let is_unit_name = [
        ".service", ".socket", ".target", ".mount", ".slice", ".path", ".timer", ".device",
    ]
    .iter()
    .any(|t| subject.ends_with(t));
    is_unit_name && !subject.contains("nfcd")
}

#[test]
fn ship_systemd_unit_verifies_without_warnings() {
    if let Some(why) = tool("systemd-analyze") {
        println!("skipped: {why}");
        return;
    }
    let (_dir, unit) = unit_under_test();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("run systemd-analyze verify");
    let all = text(&out);
    let mut ours = Vec::new();
    for line in all.lines().filter(|l| !l.trim().is_empty()) {
        if foreign_unit_line(line, &unit) {
            println!("ignored (another unit, from this host): {line}");
        } else {
            ours.push(line);
        }
    }
    assert!(
        ours.is_empty(),
        "systemd-analyze verify complained:\n{}",
        ours.join("\n")
    );
    assert!(out.status.success(), "verify failed: {}\n{all}", out.status);
}

#[test]
fn ship_systemd_unit_exposure_at_most_2() {
    if let Some(why) = tool("systemd-analyze") {
        println!("skipped: {why}");
        return;
    }
    let (_dir, unit) = unit_under_test();
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("run systemd-analyze security");
    let all = text(&out);
    assert!(
        out.status.success(),
        "security failed: {}\n{all}",
        out.status
    );
    let line = all
        .lines()
        .find(|l| l.contains("Overall exposure level for nfcd.service:"))
        .unwrap_or_else(|| panic!("no overall exposure line in:\n{all}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unparsable exposure line {line:?}"));
    println!("{}", line.trim());
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{all}");
}

#[test]
fn ship_systemd_unit_has_what_the_daemon_relies_on() {
    let e = unit_entries(&read("systemd/nfcd.service"));
    let one = |key: &str| {
        let v = values(&e, "Service", key);
        assert_eq!(v.len(), 1, "{key} set {} times", v.len());
        v[0].to_owned()
    };
    // sd_notify: READY=1 from the main process, WATCHDOG=1 at least every 30 s.
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("NotifyAccess"), "main");
    assert_eq!(one("WatchdogSec"), "30");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("BusName"), "org.nfcd");
    assert_eq!(
        one("ExecStart"),
        "/usr/bin/nfcd --config /etc/nfcd/nfcd.toml"
    );
    assert_eq!(one("User"), "nfcd");
    assert_eq!(one("Group"), "nfcd");
    assert_eq!(one("StateDirectory"), "nfcd");
    assert_eq!(one("ConfigurationDirectory"), "nfcd");
    assert_eq!(one("DevicePolicy"), "closed");
    // Netlink is how unplugging is noticed; IP is never needed on hardware.
    let families = one("RestrictAddressFamilies");
    let mut families: Vec<_> = families.split_whitespace().collect();
    families.sort_unstable();
    assert_eq!(families, ["AF_NETLINK", "AF_UNIX"]);
    // PrivateDevices= would hide /dev/i2c-*, /dev/gpiochip* and the UARTs.
    assert!(values(&e, "Service", "PrivateDevices").is_empty());
    let allowed = values(&e, "Service", "DeviceAllow");
    for class in ["char-i2c rw", "char-gpiochip rw", "char-ttyUSB rw"] {
        assert!(allowed.contains(&class), "DeviceAllow={class} missing");
    }
    assert_eq!(values(&e, "Service", "CapabilityBoundingSet"), [""]);
    assert_eq!(values(&e, "Service", "AmbientCapabilities"), [""]);
    assert_eq!(values(&e, "Install", "WantedBy"), ["multi-user.target"]);
}

#[test]
fn ship_systemd_sysusers_creates_user_and_every_unit_group() {
    let unit = unit_entries(&read("systemd/nfcd.service"));
    let sysusers = read("systemd/nfcd.sysusers");
    let declared: Vec<(String, String)> = sysusers
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split_whitespace();
            let kind = f.next().unwrap_or_default().to_owned();
            let name = f.next().unwrap_or_default().to_owned();
            (kind, name)
        })
        .collect();
    let has = |kind: &str, name: &str| declared.iter().any(|(k, n)| k == kind && n == name);
    assert!(has("u", "nfcd"), "user nfcd not declared");
    // systemd refuses to start (status 216/GROUP) when SupplementaryGroups= names a group
    // that does not exist; each one must be declared.
    for group in values(&unit, "Service", "SupplementaryGroups")
        .iter()
        .flat_map(|v| v.split_whitespace())
    {
        assert!(
            has("g", group),
            "SupplementaryGroups={group} not in nfcd.sysusers"
        );
    }

    if let Some(why) = tool("systemd-sysusers") {
        println!("skipped: applying nfcd.sysusers: {why}");
        return;
    }
    // Apply it to an empty root that already has Debian's dialout (gid 20), as a real
    // system would: dialout must be left alone, the rest created.
    let root = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(root.path().join("etc")).expect("etc");
    std::fs::write(root.path().join("etc/group"), "dialout:x:20:\n").expect("group");
    std::fs::write(root.path().join("etc/passwd"), "").expect("passwd");
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(repo_file("systemd/nfcd.sysusers"))
        .output()
        .expect("run systemd-sysusers");
    assert!(out.status.success(), "systemd-sysusers: {}", text(&out));
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).expect("passwd");
    let group = std::fs::read_to_string(root.path().join("etc/group")).expect("group");
    let user: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("nfcd:"))
        .unwrap_or_else(|| panic!("no nfcd in passwd:\n{passwd}"))
        .split(':')
        .collect();
    assert_eq!(user.len(), 7);
    assert_eq!(user[5], "/var/lib/nfcd");
    assert!(user[6].ends_with("nologin"), "shell {}", user[6]);
    let uid: u32 = user[2].parse().expect("uid");
    assert!(uid > 0 && uid < 1000, "not a system uid: {uid}");
    let gid_of = |name: &str| -> Option<(String, String)> {
        group.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() == 4 && f[0] == name).then(|| (f[2].to_owned(), f[3].to_owned()))
        })
    };
    assert_eq!(gid_of("nfcd").map(|g| g.0), Some(user[3].to_owned()));
    assert_eq!(gid_of("dialout"), Some(("20".to_owned(), String::new())));
    let (_, nfc_members) = gid_of("nfc").expect("group nfc");
    assert_eq!(nfc_members, "nfcd");
    for g in ["i2c", "gpio"] {
        assert!(gid_of(g).is_some(), "group {g} not created");
    }
}

#[test]
fn ship_systemd_modules_load_has_i2c_dev() {
    let text = read("systemd/nfcd.modules-load");
    let modules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .collect();
    for m in &modules {
        assert!(
            m.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "modules-load.d takes one module name per line, not {m:?}"
        );
    }
    // DeviceAllow=char-i2c only matches once i2c-dev has registered the "i2c" class.
    assert_eq!(modules, ["i2c-dev"]);
    let unit = unit_entries(&read("systemd/nfcd.service"));
    assert!(values(&unit, "Service", "DeviceAllow").contains(&"char-i2c rw"));
    assert!(values(&unit, "Unit", "After").iter().any(|v| v
        .split_whitespace()
        .any(|u| u == "systemd-modules-load.service")));
}

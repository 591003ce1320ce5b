//! The Debian package built by `cargo deb -p nfcd` from `[package.metadata.deb]`.
//!
//! A release build takes minutes, so this runs only when asked: `NFCD_TEST_DEB=1`, with
//! cargo-deb and dpkg-deb installed. `NFCD_DEB_TARGET=aarch64-unknown-linux-gnu` builds the
//! cross package instead (doc/packaging.md has the toolchain set-up). Otherwise it prints
//! `skipped:` and why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn cargo() -> &'static str {
    option_env!("CARGO").unwrap_or("cargo")
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Why the package cannot be built here, if it cannot.
fn skip_reason() -> Option<String> {
    if std::env::var_os("NFCD_TEST_DEB").as_deref() != Some("1".as_ref()) {
        return Some("NFCD_TEST_DEB=1 not set (builds a release .deb)".to_owned());
    }
    match Command::new(cargo()).args(["deb", "--version"]).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => return Some(format!("cargo deb --version failed: {}", o.status)),
        Err(e) => return Some(format!("cargo deb not runnable: {e}")),
    }
    match Command::new("dpkg-deb").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!("dpkg-deb --version failed: {}", o.status)),
        Err(e) => Some(format!("dpkg-deb not runnable: {e}")),
    }
}

/// Every file the package must install, with its mode.
const EXPECTED: &[(&str, &str)] = &[
    ("./usr/bin/nfcd", "-rwxr-xr-x"),
    ("./usr/bin/nfcctl", "-rwxr-xr-x"),
    ("./usr/lib/systemd/system/nfcd.service", "-rw-r--r--"),
    ("./usr/lib/sysusers.d/nfcd.conf", "-rw-r--r--"),
    ("./usr/lib/udev/rules.d/60-nfcd.rules", "-rw-r--r--"),
    ("./usr/lib/modprobe.d/nfcd-blacklist.conf", "-rw-r--r--"),
    ("./usr/lib/modules-load.d/nfcd.conf", "-rw-r--r--"),
    ("./usr/share/dbus-1/system.d/org.nfcd.conf", "-rw-r--r--"),
    (
        "./usr/share/dbus-1/system-services/org.nfcd.service",
        "-rw-r--r--",
    ),
    ("./etc/nfcd/nfcd.toml", "-rw-r--r--"),
    ("./usr/share/doc/nfcd/README.md", "-rw-r--r--"),
    ("./usr/share/doc/nfcd/raspberry-pi.md", "-rw-r--r--"),
    ("./usr/share/doc/nfcd/packaging.md", "-rw-r--r--"),
    (
        "./usr/share/doc/nfcd/examples/59-nfcd-board.rules",
        "-rw-r--r--",
    ),
    ("./usr/share/doc/nfcd/copyright", "-rw-r--r--"),
];

/// Files shipped verbatim from the source tree.
const VERBATIM: &[(&str, &str)] = &[
    (
        "systemd/nfcd.service",
        "usr/lib/systemd/system/nfcd.service",
    ),
    ("systemd/nfcd.sysusers", "usr/lib/sysusers.d/nfcd.conf"),
    ("udev/60-nfcd.rules", "usr/lib/udev/rules.d/60-nfcd.rules"),
    (
        "udev/nfcd-blacklist.conf",
        "usr/lib/modprobe.d/nfcd-blacklist.conf",
    ),
    (
        "dbus/org.nfcd.conf",
        "usr/share/dbus-1/system.d/org.nfcd.conf",
    ),
    ("config/nfcd.toml", "etc/nfcd/nfcd.toml"),
];

fn debian_arch(target: &str) -> Option<&'static str> {
    match target.split('-').next()? {
        "aarch64" => Some("arm64"),
        "x86_64" => Some("amd64"),
        "armv7" => Some("armhf"),
        "riscv64gc" => Some("riscv64"),
        _ => None,
    }
}

#[test]
fn ship_package_deb_contents() {
    if let Some(why) = skip_reason() {
        println!("skipped: {why}");
        return;
    }
    let out_dir = tempfile::tempdir().expect("temp dir");
    let target = std::env::var("NFCD_DEB_TARGET")
        .ok()
        .filter(|t| !t.is_empty());
    let mut build = Command::new(cargo());
    build
        .current_dir(repo_file(""))
        .args(["deb", "-p", "nfcd", "--output"])
        .arg(out_dir.path());
    if let Some(t) = &target {
        build.args(["--target", t]);
    }
    run(&mut build);
    let deb = std::fs::read_dir(out_dir.path())
        .expect("output dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .expect("a .deb in the output dir");
    println!("built {}", deb.display());

    // Contents: every path, with its mode, owned by root.
    let listing = stdout(&run(Command::new("dpkg-deb").arg("-c").arg(&deb)));
    let entries: Vec<(&str, &str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((*f.first()?, *f.get(1)?, *f.last()?))
        })
        .collect();
    for (path, mode) in EXPECTED {
        let found = entries
            .iter()
            .find(|(_, _, p)| p == path)
            .unwrap_or_else(|| panic!("{path} missing from the package:\n{listing}"));
        assert_eq!(found.0, *mode, "{path}");
        assert_eq!(found.1, "0/0", "{path} not owned by root");
    }

    // Control fields.
    let field = |name: &str| {
        stdout(&run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name)))
            .trim()
            .to_owned()
    };
    assert_eq!(field("Package"), "nfcd");
    if let Some(arch) = target.as_deref().and_then(debian_arch) {
        assert_eq!(field("Architecture"), arch);
    }
    let depends = field("Depends");
    for dep in ["dbus", "systemd | systemd-sysusers", "libc6"] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }

    // Control files: the config is a conffile; the scripts carry the generated fragments.
    let control = tempfile::tempdir().expect("temp dir");
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path().join("DEBIAN")));
    let ctl = |name: &str| {
        std::fs::read_to_string(control.path().join("DEBIAN").join(name))
            .unwrap_or_else(|e| panic!("control file {name}: {e}"))
    };
    assert_eq!(ctl("conffiles").trim(), "/etc/nfcd/nfcd.toml");
    let postinst = ctl("postinst");
    assert!(!postinst.contains("#DEBHELPER#"), "token left unreplaced");
    let accounts = postinst.find("create_accounts\n").expect("accounts step");
    let enable = postinst
        .find("deb-systemd-helper enable nfcd.service")
        .expect("unit enabled on install");
    assert!(
        accounts < enable,
        "user must exist before the unit is enabled"
    );
    assert!(postinst.contains("systemd-sysusers"));
    assert!(postinst.contains("udevadm control --reload-rules"));
    assert!(postinst.contains("org.freedesktop.DBus.ReloadConfig"));
    assert!(ctl("prerm").contains("deb-systemd-invoke stop nfcd.service"));
    assert!(ctl("postrm").contains("deb-systemd-helper purge nfcd.service"));
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh")
            .arg("-n")
            .arg(control.path().join("DEBIAN").join(script)));
    }

    // Shipped files are the source files, unchanged.
    let root = tempfile::tempdir().expect("temp dir");
    run(Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(root.path()));
    for (src, dest) in VERBATIM {
        let a = std::fs::read(repo_file(src)).unwrap_or_else(|e| panic!("{src}: {e}"));
        let b = std::fs::read(root.path().join(dest)).unwrap_or_else(|e| panic!("{dest}: {e}"));
        assert!(a == b, "{dest} differs from {src}");
    }
}

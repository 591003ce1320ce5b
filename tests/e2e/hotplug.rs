//! Hotplug: the controller's device node goes away and comes back while nfcd runs.
//!
//! - A pty behind a symlink (as a `/dev/serial/by-id/...` name is) is closed and the link
//!   removed: nfcd reads a hang-up, shows `Present=false`, keeps every registration and default,
//!   and retries opening the link with back-off without spinning. A new pty under another
//!   number, the link re-pointed to it: nfcd opens the link again (resolving it anew),
//!   initialises the controller, and the next tap works — same nfcd process.
//! - Real kernel uevents (root only): the virtual controller's pty is bind-mounted over a real
//!   serial node `/dev/ttySN`, nfcd is configured with `uart:/dev/ttySN`, and
//!   `echo remove|add|change > /sys/class/tty/ttySN/uevent` makes the kernel announce the node
//!   on NETLINK_KOBJECT_UEVENT as it does for a real unplug. `remove` closes the line
//!   (`Present=false`) and nfcd waits; `add` re-opens and re-initialises it; `change` leaves a
//!   working line alone. Behind a symlink nfcd does not wait for an `add` (the device may return
//!   under another name) but keeps retrying the link. Skipped, with a message, without root, without a `ttyS` node in
//!   sysfs, when the bind mount or the uevent write is refused, or when something on the
//!   machine acts on uevents (udevd, mdev, a kernel hotplug helper): for those a synthetic
//!   `remove` is a real removal (symlinks dropped, systemd stopping units bound to the node,
//!   mdev deleting it).
//!
//! Not covered: the I²C transport. Its node is an `i2c-dev` character device in front of a real
//! adapter, which no pty can stand in for; see doc/testing.md.

use std::fs::File;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use nfcd::simhost::{open_pty, Profile, TapOutcome, TapScript};
use nfcd::uevent::{UeventAction, UeventSocket};
use nfcd_e2e::bus::{wait_default, wait_present, wait_registered};
use nfcd_e2e::process::{Wallet, WalletKind};
use nfcd_e2e::rig::{Rig, ServedPty};
use nfcd_e2e::scripts::status_words;
use nfcd_e2e::{within, WAIT};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{stat, FileStat};

/// The name of the symlink nfcd is configured with, in the test's scratch directory.
const LINK: &str = "nfc-tty";

/// The transit wallet every scenario registers and makes the default transit service.
const TRANSIT_ID: &str = "org.e2e.transit.hotplug";

/// nfcd's back-off between attempts to open the transport (daemon::engine): doubling from
/// 100 ms up to 5 s.
const FIRST_RETRY_MS: u64 = 100;
const MAX_RETRY_MS: u64 = 5_000;

/// The pty behind `<scratch>/nfc-tty` is closed and the link removed, then a new pty under
/// another number is served and the link re-pointed to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pty_behind_a_symlink_goes_away_and_comes_back() {
    let served = ServedPty::new(Profile::Pn7150);
    let first = served.path().to_path_buf();
    let mut rig = Rig::start_on_line(served, |scratch| {
        let link = scratch.join(LINK);
        symlink(&first, &link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        link
    })
    .await;
    let link = rig.scratch().join(LINK);
    let wallet = transit_wallet(&rig).await;
    let pid = rig.nfcd_pid();
    let sim = rig.sim();
    // Taken now, while the first pty still holds its number, so that the controller comes
    // back under another name.
    let spare = open_pty().unwrap_or_else(|e| panic!("opening a pty: {e}"));
    assert_ne!(spare.slave_path, first);

    // Unplugged: the pty closes (nfcd reads a hang-up), udev would remove the link.
    let unplugged = Instant::now();
    rig.unplug_pty().await;
    std::fs::remove_file(&link).unwrap_or_else(|e| panic!("removing {}: {e}", link.display()));
    wait_present(rig.adapter(), false).await;
    let to_absent = unplugged.elapsed();
    let cpu_absent = cpu_time(pid);
    wait_registered(rig.manager(), TRANSIT_ID).await;
    wait_default(rig.manager(), "transit", TRANSIT_ID).await;

    // nfcd keeps trying the link, each wait twice the one before: 100, 200, 400, 800 ms.
    rig.wait_log(
        "nfcd retrying the link with an 800 ms back-off",
        WAIT,
        |log| retry_delays(log).contains(&800).then_some(()),
    )
    .await;
    let absent_for = unplugged.elapsed();
    let cpu_used = cpu_time(pid).saturating_sub(cpu_absent);
    assert!(alive(pid), "nfcd exited:\n{}", rig.nfcd_log());
    let delays = retry_delays(&rig.nfcd_log());
    assert_back_off(&delays);
    assert!(
        cpu_used * 4 < absent_for,
        "nfcd used {} ms of CPU in {} ms without a controller",
        cpu_used.as_millis(),
        absent_for.as_millis()
    );
    assert_eq!(opens(&rig.nfcd_log()), 1, "nothing to open meanwhile");

    // Plugged in again: the controller was unpowered with its adapter; it comes back on
    // another pty and the link now points there.
    sim.power_cycle().await;
    assert!(!sim.is_ready());
    let second = rig.replug_pty(spare);
    let back = Instant::now();
    repoint(&link, &second);
    within(
        "the controller discovering on the new pty",
        WAIT,
        sim.wait_ready(),
    )
    .await;
    let to_discovering = back.elapsed();
    wait_present(rig.adapter(), true).await;
    let log = rig.nfcd_log();
    assert_eq!(opens(&log), 2, "one more open, no restart:\n{log}");
    assert!(
        log.contains(&format!("watching {} for hotplug now", second.display())),
        "the device watch follows the link to {}:\n{log}",
        second.display()
    );
    eprintln!(
        "pty behind a symlink: hang-up → Present=false {} ms; back-off {delays:?} ms; \
         nfcd CPU while absent {} ms in {} ms; link re-pointed → discovering {} ms",
        to_absent.as_millis(),
        cpu_used.as_millis(),
        absent_for.as_millis(),
        to_discovering.as_millis()
    );

    same_nfcd_serves_then_finish(rig, wallet, pid).await;
}

/// `remove` for the controller's real tty node: nfcd closes it and waits; `add`: nfcd opens
/// it again and re-initialises the controller, which never lost power.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_remove_and_add_uevents_close_and_reopen_the_tty() {
    let Some((tty, served, bound)) = kernel_tty_over_a_pty().await else {
        return;
    };
    let node = tty.node.clone();
    let rig = Rig::start_on_line(served, |_| node.clone()).await;
    let wallet = transit_wallet(&rig).await;
    let pid = rig.nfcd_pid();
    let sim = rig.sim();
    assert_eq!(
        fds_to(pid, &tty.node),
        1,
        "nfcd holds {}",
        tty.node.display()
    );
    let commands = sim.stats().nfcc.commands;
    assert_eq!(resets(&rig.nfcd_log()), 1);

    let removed = Instant::now();
    tty.uevent("remove");
    wait_present(rig.adapter(), false).await;
    let to_absent = removed.elapsed();
    assert_eq!(fds_to(pid, &tty.node), 0, "nfcd closed the node");
    let log = rig.nfcd_log();
    assert!(log.contains("device removed"), "{log}");
    wait_registered(rig.manager(), TRANSIT_ID).await;
    wait_default(rig.manager(), "transit", TRANSIT_ID).await;
    // Removed means gone until the kernel says otherwise: no retries behind its back, although
    // the node (really a pty) is still there. nfcd's first retry would come after 100 ms.
    tokio::time::sleep(Duration::from_millis(6 * FIRST_RETRY_MS)).await;
    assert_eq!(fds_to(pid, &tty.node), 0, "nfcd left the node alone");
    assert_eq!(opens(&rig.nfcd_log()), 1);
    assert_eq!(
        sim.stats().nfcc.commands,
        commands,
        "nothing sent meanwhile"
    );
    assert!(sim.is_ready(), "the controller itself never stopped");

    let added = Instant::now();
    tty.uevent("add");
    wait_present(rig.adapter(), true).await;
    let to_discovering = added.elapsed();
    // Present comes with the controller's Ready, after RF_DISCOVER_RSP: it is discovering.
    assert!(sim.is_ready());
    let log = rig.nfcd_log();
    assert_eq!(opens(&log), 2, "{log}");
    assert_eq!(
        resets(&log),
        2,
        "re-initialised from CORE_RESET_CMD:\n{log}"
    );
    assert!(sim.stats().nfcc.commands > commands);
    assert_eq!(fds_to(pid, &tty.node), 1);
    eprintln!(
        "kernel uevents on {}: remove → Present=false {} ms; add → discovering (Present=true) {} ms",
        tty.node.display(),
        to_absent.as_millis(),
        to_discovering.as_millis()
    );

    same_nfcd_serves_then_finish(rig, wallet, pid).await;
    tty.unbind(bound);
}

/// nfcd reaches the real tty node through a symlink (as through `/dev/serial/by-id/...`). The
/// line hangs up, the kernel says `remove`, udev would drop the link; the controller returns
/// under another name (a new pty, as an adapter re-plugged as `ttyUSB1`), whose arrival no
/// watched `add` announces: nfcd keeps reopening the link with back-off and finds it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_remove_behind_a_link_keeps_retrying_until_it_returns_elsewhere() {
    let Some((tty, served, bound)) = kernel_tty_over_a_pty().await else {
        return;
    };
    let node = tty.node.clone();
    let mut rig = Rig::start_on_line(served, |scratch| {
        let link = scratch.join(LINK);
        symlink(&node, &link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        link
    })
    .await;
    let link = rig.scratch().join(LINK);
    let wallet = transit_wallet(&rig).await;
    let pid = rig.nfcd_pid();
    let sim = rig.sim();
    let spare = open_pty().unwrap_or_else(|e| panic!("opening a pty: {e}"));

    // Unplugged: the line hangs up, the kernel announces the removal, udev drops the link.
    rig.unplug_pty().await;
    wait_present(rig.adapter(), false).await;
    tty.uevent("remove");
    std::fs::remove_file(&link).unwrap_or_else(|e| panic!("removing {}: {e}", link.display()));
    let removed = "controller device removed; reopening its link with back-off";
    rig.wait_log("nfcd handling the remove uevent", WAIT, |log| {
        log.contains(removed).then_some(())
    })
    .await;
    let tried = |log: &str| {
        log.split_once(removed)
            .map_or(0, |(_, after)| retry_delays(after).len())
    };
    rig.wait_log("nfcd still retrying after the removal", WAIT, |log| {
        (tried(log) >= 2).then_some(())
    })
    .await;
    assert_back_off(&retry_delays(&rig.nfcd_log()));
    wait_registered(rig.manager(), TRANSIT_ID).await;

    sim.power_cycle().await;
    let second = rig.replug_pty(spare);
    let back = Instant::now();
    repoint(&link, &second);
    wait_present(rig.adapter(), true).await;
    let to_discovering = back.elapsed();
    assert!(sim.is_ready());
    let log = rig.nfcd_log();
    assert_eq!(opens(&log), 2, "{log}");
    assert!(
        log.contains(&format!("watching {} for hotplug now", second.display())),
        "{log}"
    );
    eprintln!(
        "remove behind a link: back in {} ms on {}",
        to_discovering.as_millis(),
        second.display()
    );

    same_nfcd_serves_then_finish(rig, wallet, pid).await;
    tty.unbind(bound);
}

/// `change` for the controller's tty node is neither a removal nor an addition: the open line
/// stays as it is, no re-initialisation, and a tap right after it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_change_uevent_leaves_a_working_tty_alone() {
    let Some((tty, served, bound)) = kernel_tty_over_a_pty().await else {
        return;
    };
    let node = tty.node.clone();
    let rig = Rig::start_on_line(served, |_| node.clone()).await;
    let mut wallet = transit_wallet(&rig).await;
    let pid = rig.nfcd_pid();
    let sim = rig.sim();
    let mut present = rig.adapter().receive_present_changed().await;
    let mut events = UeventSocket::open().unwrap_or_else(|e| panic!("uevent socket: {e}"));
    let commands = sim.stats().nfcc.commands;

    tty.uevent("change");
    // The kernel has broadcast it to nfcd's socket as to this one.
    let devname = tty.devname();
    within("the change uevent", WAIT, async {
        loop {
            match events.next().await {
                Ok(e) if e.devname.as_deref() == Some(devname) => {
                    assert_eq!(e.action, UeventAction::Change);
                    return;
                }
                Ok(_) => {}
                Err(e) => panic!("uevent socket: {e}"),
            }
        }
    })
    .await;
    transit_tap_reaches(&rig, &mut wallet).await;

    let log = rig.nfcd_log();
    assert_eq!(opens(&log), 1, "{log}");
    assert_eq!(resets(&log), 1, "no re-initialisation:\n{log}");
    assert_eq!(sim.stats().nfcc.commands, commands, "no command from nfcd");
    assert_eq!(fds_to(pid, &tty.node), 1);
    let mut seen = Vec::new();
    while let Some(Some(change)) = present.next().now_or_never() {
        seen.push(change.get().await.ok());
    }
    assert!(
        seen.iter().all(|p| *p == Some(true)),
        "Present stayed true: {seen:?}"
    );
    assert_eq!(rig.nfcd_pid(), pid);

    wallet.stop().await;
    rig.finish().await;
    tty.unbind(bound);
}

/// `transit-wallet`, registered and made the default transit service.
async fn transit_wallet(rig: &Rig) -> Wallet {
    let wallet = rig
        .wallet(WalletKind::Transit, TRANSIT_ID, &["--set-default"])
        .await;
    wait_default(rig.manager(), "transit", TRANSIT_ID).await;
    wallet
}

/// After the controller came back: a transit tap reaches `wallet`, in the same nfcd process
/// (`pid`), with its registration and its default kept; then the wallet and nfcd stop cleanly.
async fn same_nfcd_serves_then_finish(rig: Rig, mut wallet: Wallet, pid: u32) {
    transit_tap_reaches(&rig, &mut wallet).await;
    assert_eq!(rig.nfcd_pid(), pid, "the same nfcd");
    wait_registered(rig.manager(), TRANSIT_ID).await;
    wait_default(rig.manager(), "transit", TRANSIT_ID).await;
    wallet.stop().await;
    rig.finish().await;
}

/// The gate's transit script (SELECT, READ BALANCE, DEBIT) completes against `wallet`.
async fn transit_tap_reaches(rig: &Rig, wallet: &mut Wallet) {
    let before = wallet.commands().len();
    let deselected = wallet
        .deactivations()
        .iter()
        .filter(|r| *r == "deselected")
        .count();
    let report = rig.tap(TapScript::Transit).await;
    assert_eq!(report.outcome, TapOutcome::Completed, "{report:#?}");
    assert_eq!(status_words(&report), [0x9000; 3]);
    // The end of the tap (DESELECT) has reached the wallet, and with it every APDU.
    wallet.wait_deactivated("deselected", deselected + 1).await;
    assert_eq!(wallet.commands().len() - before, report.apdus.len());
}

/// Lines of nfcd's log saying the transport was opened (`transport uart:... open`).
fn opens(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("transport uart:") && l.trim_end().ends_with(" open"))
        .count()
}

/// CORE_RESET_CMDs nfcd sent, from its NCI trace (`> CORE_RESET_CMD ...`).
fn resets(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("> CORE_RESET_CMD"))
        .count()
}

/// The delays nfcd announced before its attempts to open the transport again, in order
/// (`...; reopening in N ms`, `...; retrying in N ms`).
fn retry_delays(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| {
            let rest = l
                .split_once("; reopening in ")
                .or_else(|| l.split_once("; retrying in "))?
                .1;
            rest.strip_suffix(" ms")?.trim().parse().ok()
        })
        .collect()
}

/// Each delay is twice the one before, up to the maximum, starting from the first.
fn assert_back_off(delays: &[u64]) {
    assert_eq!(delays.first(), Some(&FIRST_RETRY_MS), "{delays:?}");
    for pair in delays.windows(2) {
        assert_eq!(pair[1], (pair[0] * 2).min(MAX_RETRY_MS), "{delays:?}");
    }
}

/// Point the symlink `link` at `target` in one step (a new link renamed over the old path),
/// as udev does.
fn repoint(link: &Path, target: &Path) {
    let fresh = link.with_extension("new");
    symlink(target, &fresh).unwrap_or_else(|e| panic!("symlink {}: {e}", fresh.display()));
    std::fs::rename(&fresh, link).unwrap_or_else(|e| panic!("rename to {}: {e}", link.display()));
}

/// User plus system CPU time process `pid` has used (/proc/PID/stat fields 14 and 15).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after_comm
        .split_whitespace()
        .skip(11) // state .. cmajflt: fields 3 to 13
        .take(2)
        .map(|f| {
            f.parse()
                .unwrap_or_else(|e| panic!("/proc/{pid}/stat {f}: {e}"))
        })
        .collect();
    let ticks: u64 = fields.iter().sum();
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|hz| u64::try_from(hz).ok())
        .filter(|hz| *hz > 0)
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / hz)
}

/// Whether process `pid` runs (is neither gone nor a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_owned))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

/// How many of process `pid`'s file descriptors are open on `path` (as /proc shows them:
/// the path it was opened by, mount points included).
fn fds_to(pid: u32, path: &Path) -> usize {
    let dir = format!("/proc/{pid}/fd");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}"));
    entries
        .filter_map(Result::ok)
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|target| target == path))
        .count()
}

/// Where the lock serialising the tests that use a real tty node lives: in this binary the
/// tests run in parallel, and another checkout's tests may run at the same time.
fn lock_path() -> PathBuf {
    std::env::temp_dir().join("nfcd-e2e-kernel-tty.lock")
}

/// A real serial node whose uevents the test may trigger, held exclusively.
/// A real tty node with a virtual PN7150's pty bind-mounted over it; `None` (the test is
/// skipped, and says why) where that cannot be done here.
async fn kernel_tty_over_a_pty() -> Option<(KernelTty, ServedPty, BindMount)> {
    let tty = KernelTty::take().await?;
    let served = ServedPty::new(Profile::Pn7150);
    let bound = tty.bind(served.path())?;
    Some((tty, served, bound))
}

struct KernelTty {
    /// `/dev/ttySN`.
    node: PathBuf,
    /// `/sys/class/tty/ttySN/uevent`.
    uevent: PathBuf,
    /// The node as it was before the test.
    before: FileStat,
    _lock: Flock<File>,
}

impl KernelTty {
    /// The highest-numbered `ttyS` with a sysfs entry and a character node, locked for this
    /// test; `None` (with the reason printed) when the scenario cannot run here.
    async fn take() -> Option<KernelTty> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: real uevents need root (writing /sys/class/tty/*/uevent, mount)");
            return None;
        }
        if let Some(reason) = uevent_consumer() {
            eprintln!(
                "skipped: {reason}; a synthetic remove would be a real removal of the node for it"
            );
            return None;
        }
        let Some((node, uevent)) = serial_node() else {
            eprintln!("skipped: no /sys/class/tty/ttyS*/uevent with a /dev/ttyS* node");
            return None;
        };
        let path = lock_path();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let lock = tokio::task::spawn_blocking(move || Flock::lock(file, FlockArg::LockExclusive));
        let lock = match within("the lock on the real tty node", 6 * WAIT, lock).await {
            Ok(Ok(lock)) => lock,
            Ok(Err((_, e))) => panic!("flock {}: {e}", path.display()),
            Err(e) => panic!("flock {}: {e}", path.display()),
        };
        // A uevent the test may write at all (sysfs may be read-only in a container).
        if let Err(e) = std::fs::write(&uevent, "change") {
            eprintln!("skipped: cannot write {}: {e}", uevent.display());
            return None;
        }
        let before = stat(&node).unwrap_or_else(|e| panic!("stat {}: {e}", node.display()));
        Some(KernelTty {
            node,
            uevent,
            before,
            _lock: lock,
        })
    }

    /// The node's name as uevents spell it (`DEVNAME`).
    fn devname(&self) -> &str {
        self.node
            .strip_prefix("/dev")
            .ok()
            .and_then(Path::to_str)
            .unwrap_or_default()
    }

    /// Bind-mount `pty` over the node; `None` (printed) when mounting is not permitted.
    fn bind(&self, pty: &Path) -> Option<BindMount> {
        match BindMount::new(pty, &self.node) {
            Ok(bound) => Some(bound),
            Err(Errno::EPERM) => {
                eprintln!("skipped: bind-mounting over {}: EPERM", self.node.display());
                None
            }
            Err(e) => panic!(
                "bind-mounting {} over {}: {e}",
                pty.display(),
                self.node.display()
            ),
        }
    }

    /// `echo <action> > /sys/class/tty/ttySN/uevent`: the kernel sends that uevent.
    fn uevent(&self, action: &str) {
        if let Err(e) = std::fs::write(&self.uevent, action) {
            panic!("writing {action} to {}: {e}", self.uevent.display());
        }
    }

    /// Undo the bind mount and check that the node is what it was before the test.
    fn unbind(&self, bound: BindMount) {
        if let Err(e) = bound.release() {
            panic!("unmounting {}: {e}", self.node.display());
        }
        let after =
            stat(&self.node).unwrap_or_else(|e| panic!("stat {}: {e}", self.node.display()));
        let key = |s: &FileStat| (s.st_dev, s.st_ino, s.st_rdev, s.st_mode, s.st_uid, s.st_gid);
        assert_eq!(
            key(&after),
            key(&self.before),
            "{} changed",
            self.node.display()
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let node = self.node.display().to_string();
        assert!(
            !mounts
                .lines()
                .any(|l| l.split(' ').nth(4) == Some(node.as_str())),
            "{node} is still a mount point"
        );
    }
}

/// Whatever on this machine would treat a synthetic uevent as the real thing: a udev daemon,
/// mdev, or a kernel hotplug helper (/proc/sys/kernel/hotplug). Unknown (so assumed) when this
/// process is not in the initial PID namespace.
fn uevent_consumer() -> Option<String> {
    // In another PID namespace (a container) the host's udevd is out of sight but would still
    // get every uevent written to a shared /sys. PROC_PID_INIT_INO (include/linux/proc_ns.h).
    let pid_ns = std::fs::read_link("/proc/self/ns/pid").unwrap_or_default();
    if pid_ns != Path::new("pid:[4026531836]") {
        return Some("a udev daemon outside this PID namespace may act on uevents".to_owned());
    }
    if Path::new("/run/udev/control").exists() {
        return Some("a udev daemon (/run/udev/control) acts on uevents".to_owned());
    }
    let helper = std::fs::read_to_string("/proc/sys/kernel/hotplug").unwrap_or_default();
    if !helper.trim().is_empty() {
        return Some(format!(
            "the kernel hotplug helper {} acts on uevents",
            helper.trim()
        ));
    }
    let procs = std::fs::read_dir("/proc").ok()?;
    procs.filter_map(Result::ok).find_map(|entry| {
        let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
        let comm = comm.trim();
        ["systemd-udevd", "udevd", "mdev"].contains(&comm).then(|| {
            format!(
                "{comm} (pid {}) acts on uevents",
                entry.file_name().to_string_lossy()
            )
        })
    })
}

/// The highest-numbered `ttySN` with `/sys/class/tty/ttySN/uevent` and a character device at
/// `/dev/ttySN`: a high number is the least likely to be the console or in use.
fn serial_node() -> Option<(PathBuf, PathBuf)> {
    let entries = std::fs::read_dir("/sys/class/tty").ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let n: u32 = name.strip_prefix("ttyS")?.parse().ok()?;
            let uevent = e.path().join("uevent");
            let node = Path::new("/dev").join(&name);
            let is_char =
                stat(&node).is_ok_and(|s| s.st_mode & nix::libc::S_IFMT == nix::libc::S_IFCHR);
            (uevent.exists() && is_char).then_some((n, node, uevent))
        })
        .max_by_key(|(n, _, _)| *n)
        .map(|(_, node, uevent)| (node, uevent))
}

/// A bind mount, undone when dropped (also on a panic: lazily if the node is still open).
struct BindMount {
    target: PathBuf,
    mounted: bool,
}

impl BindMount {
    fn new(source: &Path, target: &Path) -> Result<BindMount, Errno> {
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )?;
        Ok(BindMount {
            target: target.to_path_buf(),
            mounted: true,
        })
    }

    /// Unmount now, reporting a failure.
    fn release(mut self) -> Result<(), Errno> {
        self.mounted = false;
        umount2(&self.target, MntFlags::empty())
    }
}

impl Drop for BindMount {
    fn drop(&mut self) {
        if !self.mounted {
            return;
        }
        if umount2(&self.target, MntFlags::empty()).is_err() {
            // Still open by a process the failed test left behind: detach it now, the kernel
            // drops it when the last descriptor goes.
            let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        }
    }
}

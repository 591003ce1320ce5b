//! Who is calling: the identity of the process behind a D-Bus method call.
//!
//! From the unique bus name in the message header (the `sender` field, which the bus sets and a
//! client cannot forge), asks the bus for the caller's credentials (`GetConnectionCredentials`,
//! with `GetConnectionUnixUser` / `GetConnectionUnixProcessID` as fallback on buses without it),
//! and optionally hashes the caller's executable. Does not decide what a caller may do: that is
//! the registry's policy.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use zbus::fdo::ConnectionCredentials;
use zbus::message::Header;
use zbus::names::UniqueName;
use zbus::Connection;

const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

/// Whether [`Caller::resolve`] hashes the caller's executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeDigest {
    /// Leave [`Caller::exe_sha256`] empty (one bus round trip, nothing else).
    Skip,
    /// Read `/proc/PID/exe` and hash it (reads the whole executable; done off the async loop).
    Compute,
}

/// The identity of a D-Bus caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Unique bus name of the calling connection, e.g. `:1.42`.
    pub unique_name: String,
    /// Unix user id of the process that opened the connection.
    pub uid: u32,
    /// Process id of that process.
    pub pid: u32,
    /// Every group the process is in (primary and supplementary), sorted, without duplicates.
    pub gids: Vec<u32>,
    /// SHA-256 of the executable (`/proc/PID/exe`) when asked for and readable. Reading another
    /// user's `/proc/PID/exe` needs ptrace access (CAP_SYS_PTRACE), so a daemon running as its
    /// own user gets `None` for other users' processes.
    pub exe_sha256: Option<[u8; 32]>,
}

/// Why the caller could not be identified.
#[derive(Debug)]
pub enum CallerError {
    /// The message has no sender (a peer-to-peer connection, not a bus).
    NoSender,
    /// The bus refused or failed a credentials query (e.g. the caller disconnected).
    Bus(zbus::Error),
    /// The bus answered without the user id or process id.
    MissingCredential(&'static str),
}

impl std::fmt::Display for CallerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallerError::NoSender => write!(f, "the call has no sender"),
            CallerError::Bus(e) => write!(f, "asking the bus for the caller's credentials: {e}"),
            CallerError::MissingCredential(what) => {
                write!(f, "the bus did not report the caller's {what}")
            }
        }
    }
}

impl std::error::Error for CallerError {}

impl From<zbus::Error> for CallerError {
    fn from(e: zbus::Error) -> Self {
        CallerError::Bus(e)
    }
}

impl Caller {
    /// Identify the sender of the method call whose header is `header`.
    pub async fn from_header(
        conn: &Connection,
        header: &Header<'_>,
        digest: ExeDigest,
    ) -> Result<Caller, CallerError> {
        let sender = header.sender().ok_or(CallerError::NoSender)?;
        Caller::resolve(conn, sender, digest).await
    }

    /// Identify the connection `sender` on the bus of `conn`.
    pub async fn resolve(
        conn: &Connection,
        sender: &UniqueName<'_>,
        digest: ExeDigest,
    ) -> Result<Caller, CallerError> {
        let (uid, pid, groups, pidfd) = match credentials(conn, sender).await {
            Ok(creds) => {
                let uid = creds
                    .unix_user_id()
                    .ok_or(CallerError::MissingCredential("user id"))?;
                let pid = creds
                    .process_id()
                    .ok_or(CallerError::MissingCredential("process id"))?;
                let groups = creds.unix_group_ids().cloned();
                (uid, pid, groups, creds.into_process_fd().map(OwnedFd::from))
            }
            // Older buses lack GetConnectionCredentials; ask for the two ids one by one.
            Err(zbus::Error::FDO(e)) if matches!(*e, zbus::fdo::Error::UnknownMethod(_)) => {
                let uid: u32 = bus_call(conn, "GetConnectionUnixUser", sender).await?;
                let pid: u32 = bus_call(conn, "GetConnectionUnixProcessID", sender).await?;
                (uid, pid, None, None)
            }
            Err(e) => return Err(e.into()),
        };

        let mut gids = match groups {
            Some(g) => g,
            // The bus could not name every group; the kernel's view of the process can.
            None => proc_groups(pid).unwrap_or_default(),
        };
        gids.sort_unstable();
        gids.dedup();

        let exe_sha256 = match digest {
            ExeDigest::Skip => None,
            ExeDigest::Compute => tokio::task::spawn_blocking(move || exe_digest(pid, pidfd))
                .await
                .ok()
                .flatten(),
        };

        Ok(Caller {
            unique_name: sender.as_str().to_owned(),
            uid,
            pid,
            gids,
            exe_sha256,
        })
    }

    /// Whether the caller is in group `gid`.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gids.binary_search(&gid).is_ok()
    }
}

async fn credentials(
    conn: &Connection,
    sender: &UniqueName<'_>,
) -> zbus::Result<ConnectionCredentials> {
    bus_call(conn, "GetConnectionCredentials", sender).await
}

/// Call a method of the bus itself that takes one bus name, built directly (no proxy).
async fn bus_call<T>(conn: &Connection, method: &str, sender: &UniqueName<'_>) -> zbus::Result<T>
where
    T: for<'d> serde::Deserialize<'d> + zbus::Type,
{
    let reply = conn
        .call_method(Some(BUS_NAME), BUS_PATH, Some(BUS_NAME), method, &(sender,))
        .await?;
    reply.body().deserialize::<T>()
}

/// Groups of process `pid` from `/proc/PID/status`: the effective gid and the `Groups:` line
/// (proc(5)).
pub fn proc_groups(pid: u32) -> io::Result<Vec<u32>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(parse_status_groups(&status))
}

/// The effective gid (second field of `Gid:`) and supplementary groups of a proc(5) status file.
pub fn parse_status_groups(status: &str) -> Vec<u32> {
    let mut gids = Vec::new();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Gid:") {
            // Real, effective, saved set, filesystem.
            if let Some(egid) = rest.split_whitespace().nth(1).and_then(|g| g.parse().ok()) {
                gids.push(egid);
            }
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            gids.extend(
                rest.split_whitespace()
                    .filter_map(|g| g.parse::<u32>().ok()),
            );
        }
    }
    gids.sort_unstable();
    gids.dedup();
    gids
}

/// SHA-256 of the executable of `pid`, or `None` when it cannot be read or the process is gone.
///
/// With a pidfd from the bus (`ProcessFD`), a process that exited while it was being hashed is
/// detected, so a recycled pid cannot lend its executable to a dead caller. Without one (buses or
/// kernels that do not provide it), that check is not possible.
fn exe_digest(pid: u32, pidfd: Option<OwnedFd>) -> Option<[u8; 32]> {
    let path = PathBuf::from(format!("/proc/{pid}/exe"));
    let digest = sha256_file(File::open(path).ok()?).ok()?;
    if let Some(pidfd) = pidfd {
        if process_exited(&pidfd) {
            return None;
        }
    }
    Some(digest)
}

/// SHA-256 of everything `reader` yields, read in 64 KiB pieces.
pub fn sha256_file(mut reader: impl Read) -> io::Result<[u8; 32]> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => ctx.update(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(out)
}

/// Whether the process a pidfd pins has exited and been reaped, so that its pid may have been
/// recycled: the `Pid:` line of the pidfd's fdinfo then reads -1 (pidfd_open(2), proc(5)).
fn process_exited(pidfd: &OwnedFd) -> bool {
    let fdinfo = format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd());
    match std::fs::read_to_string(fdinfo) {
        Ok(info) => pidfd_pid(&info).is_none_or(|pid| pid < 0),
        // Cannot tell: do not vouch for the digest.
        Err(_) => true,
    }
}

/// The `Pid:` field of a pidfd's fdinfo.
fn pidfd_pid(fdinfo: &str) -> Option<i64> {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_groups() {
        let status = "Name:\twallet\nUid:\t1000\t1000\t1000\t1000\n\
                      Gid:\t1000\t100\t1000\t1000\nFDSize:\t64\nGroups:\t27 100 991 \n";
        assert_eq!(parse_status_groups(status), vec![27, 100, 991]);
        assert_eq!(parse_status_groups("Groups:\n"), Vec::<u32>::new());
        assert_eq!(parse_status_groups("Gid:\tx\n"), Vec::<u32>::new());
    }

    #[test]
    fn sha256_of_known_input() {
        // FIPS 180-2 appendix B.1 test vector: SHA-256("abc").
        let d = sha256_file(&b"abc"[..]).expect("in-memory read");
        assert_eq!(
            crate::hex(&d),
            "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"
        );
    }

    #[test]
    fn pidfd_fdinfo_pid() {
        assert_eq!(
            pidfd_pid("pos:\t0\nflags:\t02000002\nPid:\t4242\nNSpid:\t4242\n"),
            Some(4242)
        );
        assert_eq!(pidfd_pid("Pid:\t-1\n"), Some(-1));
        assert_eq!(pidfd_pid("pos:\t0\n"), None);
    }

    #[test]
    fn own_groups_from_proc() {
        let gids = proc_groups(std::process::id()).expect("own /proc status");
        let egid = nix::unistd::getegid().as_raw();
        assert!(gids.contains(&egid), "{gids:?} lacks {egid}");
    }

    #[test]
    fn own_exe_digest_matches_a_plain_read() {
        let pid = std::process::id();
        let expected = sha256_file(File::open("/proc/self/exe").expect("own exe")).expect("read");
        assert_eq!(exe_digest(pid, None), Some(expected));
    }
}

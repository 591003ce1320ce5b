//! The other end of every APDU hop measured: one small process that answers at once, both as
//! the wallet nfcd calls during a tap and as the server of the bare echoes it is compared with.
//!
//! Contract: `nfcd-bench --echo-server --bus ADDR [--target] [--channel] [--fillers A..B]
//! [--seqpacket-fd FD]` connects to the bus at ADDR on a single-threaded tokio runtime (the
//! flavour nfcd runs on) and serves `org.nfcd.HostService1.ProcessApdu` with [`answer`]: the
//! C-APDU's data field followed by `90 00` (ISO/IEC 7816-4 §5.1), so a command and its bare echo
//! carry the same octets each way. It registers with nfcd (`org.nfcd.Manager1.RegisterService`,
//! doc/manager-api.md): with `--target`, [`DBUS_SERVICE`] at [`DBUS_AID`]; with `--channel`,
//! [`CHANNEL_SERVICE`] at [`CHANNEL_AID`], which opens the fast path (`OpenApduChannel`) and
//! answers there; with `--fillers A..B`, fillers number A to B − 1, ten AIDs each (five exact,
//! five prefix). `--seqpacket-fd` names an inherited `SOCK_SEQPACKET` socket on which it answers
//! the bare SEQPACKET echo, with the same function that serves nfcd's channel. When all of that
//! is in place it prints `READY <unique bus name>` on stdout, and then runs until killed.
//!
//! Because the same process, runtime and code answer nfcd and the bare echo client, the
//! difference between an APDU's time inside nfcd and a bare echo is nfcd's own.
//!
//! What it does not do: check who calls (nfcd or the bench: both must get answers), keep any
//! state, or print anything per APDU (an answer costs nothing but the answer).

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Stdio;

use libnci::apdu::{CommandApdu, StatusWord};
use libnci::sim::cards::{response, status};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{getsockopt, recv, send, sockopt, MsgFlags, SockType};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, BufReader, Interest};
use tokio::process::{Child, Command};
use zbus::{interface, Connection, ObjectPath, OwnedFd as ZOwnedFd, Variant};

use nfcd_e2e::{within, WAIT};

/// Service Id of the service answered over D-Bus (`ProcessApdu`).
pub const DBUS_SERVICE: &str = "org.nfcd.bench.dbus";
/// Its object path; also where the bare zbus echo calls.
pub const DBUS_PATH: &str = "/org/nfcd/bench/dbus";
/// Its AID (proprietary category `F`, ISO/IEC 7816-5).
pub const DBUS_AID: [u8; 7] = [0xF0, 0x42, 0x45, 0x4E, 0x43, 0x48, 0x01];
/// Service Id of the service answered over its APDU channel.
pub const CHANNEL_SERVICE: &str = "org.nfcd.bench.channel";
/// Its object path.
pub const CHANNEL_PATH: &str = "/org/nfcd/bench/channel";
/// Its AID.
pub const CHANNEL_AID: [u8; 7] = [0xF0, 0x42, 0x45, 0x4E, 0x43, 0x48, 0x02];

/// The answer to every command: its data field and `90 00`; just `90 00` for a command without
/// data or one that does not parse.
pub fn answer(command: &[u8]) -> Vec<u8> {
    match CommandApdu::parse(command) {
        Ok(apdu) => response(apdu.data, StatusWord::NO_ERROR),
        Err(_) => status(StatusWord::NO_ERROR),
    }
}

/// `org.nfcd.HostService1`, answering at once.
struct Echo;

/// `spawn = false`: each call is answered in the connection's own task, as a wallet that
/// answers in order does, without a task hand-over.
#[interface(name = "org.nfcd.HostService1", spawn = false)]
impl Echo {
    /// `ProcessApdu(ay command) → ay response`.
    #[zbus(out_args("response"))]
    async fn process_apdu(&self, command: Vec<u8>) -> Vec<u8> {
        answer(&command)
    }

    /// `Deactivated(s reason)`: nothing to do.
    async fn deactivated(&self, reason: String) {
        let _ = reason;
    }
}

/// The arguments of the helper process.
#[derive(Debug, Default)]
struct EchoArgs {
    bus: Option<String>,
    target: bool,
    channel: bool,
    fillers: Range<usize>,
    seqpacket_fd: Option<RawFd>,
}

fn parse_args(args: &[String]) -> Result<EchoArgs, String> {
    let mut parsed = EchoArgs::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--echo-server" => {}
            "--bus" => parsed.bus = Some(value("--bus")?),
            "--target" => parsed.target = true,
            "--channel" => parsed.channel = true,
            "--fillers" => {
                let v = value("--fillers")?;
                let bad = || format!("--fillers {v:?}: expected A..B");
                let (a, b) = v.split_once("..").ok_or_else(bad)?;
                parsed.fillers = a.parse().map_err(|_| bad())?..b.parse().map_err(|_| bad())?;
            }
            "--seqpacket-fd" => {
                let v = value("--seqpacket-fd")?;
                parsed.seqpacket_fd = Some(v.parse().map_err(|_| format!("--seqpacket-fd {v:?}"))?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

/// `main` of the helper process. Returns a message on failure.
pub fn main(args: &[String]) -> Result<(), String> {
    let args = parse_args(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(serve(args))
}

async fn serve(args: EchoArgs) -> Result<(), String> {
    let address = args.bus.ok_or("--bus is required")?;
    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await
        .map_err(|e| format!("connecting to {address}: {e}"))?;
    export(&conn, DBUS_PATH).await?;
    let mut tasks = Vec::new();
    if let Some(fd) = args.seqpacket_fd {
        // SAFETY: the parent passed this descriptor to us open and owned by nobody else here;
        // it is checked to be a SEQPACKET socket before use.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let socket = SeqpacketEcho::new(fd).map_err(|e| format!("--seqpacket-fd: {e}"))?;
        tasks.push(tokio::spawn(async move { socket.serve().await }));
    }
    if args.target {
        register(&conn, DBUS_SERVICE, DBUS_PATH, &[DBUS_AID.to_vec()], &[]).await?;
    }
    for i in args.fillers {
        let path = format!("/org/nfcd/bench/filler{i}");
        export(&conn, &path).await?;
        let (exact, prefix) = filler_aids(i);
        register(
            &conn,
            &format!("org.nfcd.bench.filler{i}"),
            &path,
            &exact,
            &prefix,
        )
        .await?;
    }
    if args.channel {
        export(&conn, CHANNEL_PATH).await?;
        register(
            &conn,
            CHANNEL_SERVICE,
            CHANNEL_PATH,
            &[CHANNEL_AID.to_vec()],
            &[],
        )
        .await?;
        let fd = open_channel(&conn, CHANNEL_PATH).await?;
        let socket = SeqpacketEcho::new(fd).map_err(|e| format!("APDU channel: {e}"))?;
        tasks.push(tokio::spawn(async move { socket.serve().await }));
    }
    let name = conn
        .unique_name()
        .map(|n| n.to_string())
        .ok_or("no unique name")?;
    println!("READY {name}");
    // Runs until the bench kills it; a socket ending (its peer closed) ends nothing else.
    std::future::pending::<()>().await;
    drop(tasks);
    Ok(())
}

async fn export(conn: &Connection, path: &str) -> Result<(), String> {
    conn.object_server()
        .at(path, Echo)
        .await
        .map(|_| ())
        .map_err(|e| format!("exporting {path}: {e}"))
}

/// Filler `i`'s AIDs: five exact ones of 8 octets (`F1 i i 00 00 00 00 k`) and five prefixes of
/// 6 octets (`F2 i i 00 00 k`), distinct from each other's and from the measured services'.
fn filler_aids(i: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let [hi, lo] = u16::try_from(i).unwrap_or(u16::MAX).to_be_bytes();
    let exact = (0..5u8)
        .map(|k| vec![0xF1, hi, lo, 0, 0, 0, 0, k])
        .collect();
    let prefix = (0..5u8).map(|k| vec![0xF2, hi, lo, 0, 0, k]).collect();
    (exact, prefix)
}

/// `RegisterService(path, {Id, Category: other, Aids, PrefixAids})`.
async fn register(
    conn: &Connection,
    id: &str,
    path: &str,
    aids: &[Vec<u8>],
    prefix_aids: &[Vec<u8>],
) -> Result<(), String> {
    let object = ObjectPath::try_from(path).map_err(|e| format!("{path}: {e}"))?;
    let mut options: HashMap<&str, Variant<'_>> = HashMap::new();
    options.insert("Id", Variant::from(id));
    options.insert("Category", Variant::from("other"));
    options.insert("Aids", Variant::from(aids.to_vec()));
    if !prefix_aids.is_empty() {
        options.insert("PrefixAids", Variant::from(prefix_aids.to_vec()));
    }
    conn.call_method(
        Some("org.nfcd"),
        "/org/nfcd",
        Some("org.nfcd.Manager1"),
        "RegisterService",
        &(object, options),
    )
    .await
    .map(|_| ())
    .map_err(|e| format!("RegisterService {id}: {e}"))
}

/// `OpenApduChannel(path) → h`.
async fn open_channel(conn: &Connection, path: &str) -> Result<OwnedFd, String> {
    let object = ObjectPath::try_from(path).map_err(|e| format!("{path}: {e}"))?;
    let reply = conn
        .call_method(
            Some("org.nfcd"),
            "/org/nfcd",
            Some("org.nfcd.Manager1"),
            "OpenApduChannel",
            &(object,),
        )
        .await
        .map_err(|e| format!("OpenApduChannel: {e}"))?;
    let fd: ZOwnedFd = reply
        .body()
        .deserialize()
        .map_err(|e| format!("OpenApduChannel reply: {e}"))?;
    Ok(fd.into())
}

/// A `SOCK_SEQPACKET` socket answered one message at a time with [`answer`].
struct SeqpacketEcho {
    fd: AsyncFd<OwnedFd>,
}

impl SeqpacketEcho {
    fn new(fd: OwnedFd) -> io::Result<SeqpacketEcho> {
        let kind = getsockopt(&fd, sockopt::SockType).map_err(io::Error::from)?;
        if kind != SockType::SeqPacket {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("expected a SOCK_SEQPACKET socket, got {kind:?}"),
            ));
        }
        let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // Readable only, as nfcd registers its end: registered for writability too, each answer
        // nfcd reads would wake this process with an EPOLLOUT for nothing.
        // SAFETY: `fd` is an open descriptor that the AsyncFd owns from here on and closes
        // when dropped; its number stays the same meanwhile.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(SeqpacketEcho { fd })
    }

    /// Answer until the peer closes its end.
    async fn serve(&self) -> io::Result<()> {
        // The longest C-APDU: extended case 4 (ISO/IEC 7816-4 §5.1).
        let mut buf = vec![0u8; 4 + 3 + 65_535 + 2];
        loop {
            let len = loop {
                let mut ready = self.fd.readable().await?;
                let flags = MsgFlags::MSG_DONTWAIT;
                match ready
                    .try_io(|fd| recv(fd.as_raw_fd(), &mut buf, flags).map_err(io::Error::from))
                {
                    Ok(result) => break result?,
                    Err(_would_block) => continue,
                }
            };
            if len == 0 {
                return Ok(());
            }
            let reply = answer(buf.get(..len).unwrap_or_default());
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
            let mut write_wait: Option<AsyncFd<OwnedFd>> = None;
            loop {
                if let Some(waiting) = write_wait.as_ref() {
                    waiting.writable().await?.clear_ready();
                }
                match send(self.fd.get_ref().as_raw_fd(), &reply, flags) {
                    Ok(_) => break,
                    Err(Errno::EAGAIN) if write_wait.is_none() => {
                        // The socket is full: wait for room on a duplicate registered for it.
                        let dup = self.fd.get_ref().try_clone()?;
                        // SAFETY: `dup` is a new descriptor owned by the AsyncFd until this
                        // answer is sent.
                        write_wait = Some(unsafe {
                            AsyncFd::register_with_interest(dup, Interest::WRITABLE)
                        }?);
                    }
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
}

/// The helper process as the bench sees it.
pub struct EchoServer {
    child: Child,
    /// Its unique bus name, the destination of the bare zbus echo.
    pub name: String,
}

/// What the helper is to set up.
#[derive(Debug, Clone, Default)]
pub struct EchoSetup {
    /// Register [`DBUS_SERVICE`].
    pub target: bool,
    /// Register [`CHANNEL_SERVICE`] with an APDU channel.
    pub channel: bool,
    /// Register these filler services.
    pub fillers: Range<usize>,
    /// Run as this uid (and the same gid) rather than the bench's: nfcd binds at most 64
    /// service Ids to one uid (`crate::identity` in nfcd), so a hundred services need a second
    /// user, as they would have on a real system.
    pub uid: Option<u32>,
}

impl EchoServer {
    /// Start the helper on the bus at `bus`, serving `seqpacket` (its end of the bare
    /// SEQPACKET echo) if given, and wait for its `READY` line.
    pub async fn start(
        bus: &str,
        setup: EchoSetup,
        seqpacket: Option<&OwnedFd>,
    ) -> Result<EchoServer, String> {
        let exe = std::env::current_exe().map_err(|e| format!("locating nfcd-bench: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--echo-server").arg("--bus").arg(bus);
        if setup.target {
            cmd.arg("--target");
        }
        if setup.channel {
            cmd.arg("--channel");
        }
        if !setup.fillers.is_empty() {
            cmd.arg("--fillers")
                .arg(format!("{}..{}", setup.fillers.start, setup.fillers.end));
        }
        if let Some(uid) = setup.uid {
            cmd.uid(uid).gid(uid);
        }
        if let Some(fd) = seqpacket {
            // Inherited across exec: the one descriptor the child is meant to get.
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
                .map_err(|e| format!("passing the SEQPACKET socket: {e}"))?;
            cmd.arg("--seqpacket-fd").arg(fd.as_raw_fd().to_string());
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .kill_on_drop(true);
        let spawned = cmd.spawn();
        if let Some(fd) = seqpacket {
            // Later children must not hold the socket open.
            let _ = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
        let mut child = spawned.map_err(|e| format!("starting the echo server: {e}"))?;
        let stdout = child.stdout.take().ok_or("the echo server has no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        // Registering many services takes a while: nfcd hashes the caller's executable.
        let line = within("the echo server's READY line", 6 * WAIT, lines.next_line())
            .await
            .map_err(|e| format!("reading the echo server: {e}"))?
            .ok_or("the echo server exited before READY")?;
        let name = line
            .strip_prefix("READY ")
            .ok_or_else(|| format!("the echo server said {line:?}"))?
            .to_owned();
        Ok(EchoServer { child, name })
    }

    /// Kill it and wait until it is gone (its registrations die with its bus name).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

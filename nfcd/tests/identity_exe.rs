//! The executable digest nfcd binds service Ids to, for a real, separate process on a private
//! bus: `dbus-send` calls a method this test exports and blocks on the reply; while it waits, the
//! handler identifies it with `Caller::from_header(.., ExeDigest::Compute)` (what
//! `RegisterService` does) and the test hashes `/proc/PID/exe` of that process with ring itself.
//! Then the identity rules run on real digests: the same program is accepted again, another
//! program of the same user is refused.

mod dbus_common;

mod identity {
    use std::process::{Command, Stdio};
    use std::sync::Arc;

    use nfcd::dbus::{Caller, ExeDigest};
    use nfcd::identity::{Difference, IdentityError, IdentityStore};
    use tokio::sync::{mpsc, Notify};
    use zbus::message::Header;
    use zbus::{interface, Connection};

    use crate::dbus_common::{within, TempDir, TestBus};

    const PROBE_PATH: &str = "/org/nfcd/test/probe";
    const PROBE_IFACE: &str = "org.nfcd.test.IdentityProbe";
    const WALLET_ID: &str = "com.example.wallet.visa";

    /// What the probe saw of one call: the caller as nfcd identifies it.
    type Seen = Result<Caller, String>;

    /// Exported by the test: `Hold()` identifies its caller, reports it, and only replies once
    /// the test says so, so the calling process is alive while the test looks at it.
    struct Probe {
        seen: mpsc::UnboundedSender<Seen>,
        release: Arc<Notify>,
    }

    #[interface(name = "org.nfcd.test.IdentityProbe")]
    impl Probe {
        async fn hold(
            &self,
            #[zbus(header)] header: Header<'_>,
            #[zbus(connection)] conn: &Connection,
        ) -> String {
            let caller = Caller::from_header(conn, &header, ExeDigest::Compute)
                .await
                .map_err(|e| e.to_string());
            let _ = self.seen.send(caller);
            self.release.notified().await;
            "held".to_owned()
        }
    }

    struct Harness {
        _bus: TestBus,
        address: String,
        server: Connection,
        seen: mpsc::UnboundedReceiver<Seen>,
        release: Arc<Notify>,
    }

    async fn harness() -> Harness {
        let bus = TestBus::session();
        let server = bus.connect().await;
        let (tx, seen) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        server
            .object_server()
            .at(
                PROBE_PATH,
                Probe {
                    seen: tx,
                    release: release.clone(),
                },
            )
            .await
            .expect("export probe");
        Harness {
            address: bus.address().to_owned(),
            _bus: bus,
            server,
            seen,
            release,
        }
    }

    impl Harness {
        fn dest(&self) -> String {
            self.server.unique_name().expect("unique name").to_string()
        }

        /// Start `dbus-send` calling `Hold()`; it blocks until [`Harness::release`].
        fn spawn_dbus_send(&self) -> std::process::Child {
            Command::new("dbus-send")
                .arg(format!("--bus={}", self.address))
                .arg(format!("--dest={}", self.dest()))
                .arg("--print-reply")
                .arg("--reply-timeout=20000")
                .arg(PROBE_PATH)
                .arg(format!("{PROBE_IFACE}.Hold"))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn dbus-send")
        }

        async fn next_caller(&mut self) -> Caller {
            within(10, self.seen.recv())
                .await
                .expect("probe channel open")
                .expect("caller identified")
        }

        /// Let the held call reply and check that `dbus-send` got the reply.
        async fn release(&self, child: std::process::Child) {
            self.release.notify_one();
            let out = tokio::task::spawn_blocking(move || child.wait_with_output())
                .await
                .expect("join")
                .expect("dbus-send output");
            assert!(
                out.status.success(),
                "dbus-send failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("string \"held\""),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }

    /// ring's SHA-256 of a file, independent of nfcd's own hashing code.
    fn ring_sha256(path: &str) -> [u8; 32] {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }

    #[tokio::test]
    async fn identity_exe_digest_of_another_process() {
        let mut h = harness().await;
        let child = h.spawn_dbus_send();
        let pid = child.id();
        let caller = h.next_caller().await;

        // dbus-send is blocked on the reply, so /proc/PID/exe is still its executable.
        let expected = ring_sha256(&format!("/proc/{pid}/exe"));
        assert_eq!(caller.pid, pid);
        assert_eq!(caller.uid, nix::unistd::getuid().as_raw());
        assert_eq!(caller.exe_sha256, Some(expected));
        // It is the program on disk, and not this test binary.
        let on_disk = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe link");
        assert!(on_disk.ends_with("dbus-send"), "{}", on_disk.display());
        assert_eq!(
            ring_sha256(&on_disk.display().to_string()),
            expected,
            "{}",
            on_disk.display()
        );
        assert_ne!(ring_sha256("/proc/self/exe"), expected);
        h.release(child).await;
    }

    #[tokio::test]
    async fn identity_binding_follows_the_real_program() {
        let mut h = harness().await;
        let state = TempDir::new("identity");
        let mut store = IdentityStore::load(state.path()).expect("empty state directory");

        // First registration: dbus-send binds the Id to its uid and digest.
        let child = h.spawn_dbus_send();
        let first = h.next_caller().await;
        let bound = store
            .check_and_bind(WALLET_ID, first.uid, first.exe_sha256, false)
            .expect("first registration binds");
        h.release(child).await;
        assert_eq!(bound.exe_sha256, first.exe_sha256);
        assert!(
            bound.exe_sha256.is_some(),
            "digest readable as the same user"
        );

        // The same program again, as another process: accepted.
        let child = h.spawn_dbus_send();
        let again = h.next_caller().await;
        assert_ne!(again.pid, first.pid);
        store
            .check_and_bind(WALLET_ID, again.uid, again.exe_sha256, false)
            .expect("same program accepted");
        h.release(child).await;

        // Another program of the same user (this test binary, on its own connection): refused.
        let client = within(5, connect(&h.address)).await;
        let dest = h.dest();
        let call = tokio::spawn(async move {
            client
                .call_method(
                    Some(dest.as_str()),
                    PROBE_PATH,
                    Some(PROBE_IFACE),
                    "Hold",
                    &(),
                )
                .await
                .map(|_| ())
        });
        let impostor = h.next_caller().await;
        assert_eq!(impostor.pid, std::process::id());
        assert_eq!(impostor.uid, first.uid);
        match store.check_and_bind(WALLET_ID, impostor.uid, impostor.exe_sha256, false) {
            Err(e @ IdentityError::Mismatch { .. }) => {
                assert!(
                    matches!(
                        e,
                        IdentityError::Mismatch {
                            difference: Difference::Exe,
                            ..
                        }
                    ),
                    "{e}"
                );
                let wire = nfcd::dbus::Error::from(e);
                assert_eq!(wire.dbus_name(), "org.nfcd.Error.NotAuthorized");
                assert!(wire.message().contains(WALLET_ID), "{}", wire.message());
            }
            other => panic!("another program was not refused: {other:?}"),
        }
        h.release.notify_one();
        within(10, call).await.expect("join").expect("Hold reply");

        // The binding survives a restart of the store and still names dbus-send.
        let reloaded = IdentityStore::load(state.path()).expect("reload");
        assert_eq!(reloaded.get(WALLET_ID), Some(&bound));
    }

    async fn connect(address: &str) -> Connection {
        zbus::connection::Builder::address(address)
            .build()
            .await
            .expect("connect")
    }
}

//! `nfcctl` end to end: the real binary against a private `dbus-daemon`.
//!
//! The `org.nfcd` objects are served by this test process from fixed data — a *fixture* of the
//! daemon for the client, not the daemon itself (its D-Bus layer has its own tests). Each test
//! starts its own bus, so they run in parallel without sharing names. The fixture records the
//! calls it receives, so the tests check both what `nfcctl` printed and what it sent.

mod dbus_common;

// One module, so that `cargo test -p nfcd nfcctl` selects these tests by name.
mod nfcctl {
    use std::collections::{BTreeMap, HashMap};
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Output, Stdio};
    use std::sync::{Arc, Mutex};

    use nfcd::dbus::{AdapterState, ManagerRequest, ManagerState, RoutingEntry, ServiceInfo};
    use tokio::sync::mpsc;
    use zbus::message::Header;
    use zbus::names::BusName;
    use zbus::object_server::SignalEmitter;
    use zbus::{
        connection, interface, Connection, DBusError, ObjectPath, OwnedObjectPath, OwnedVariant,
        Variant,
    };

    use crate::dbus_common::{within, TestBus};

    const BUS_NAME: &str = "org.nfcd";
    const MANAGER_PATH: &str = "/org/nfcd";
    const ADAPTER_PATH: &str = "/org/nfcd/adapter0";
    const MONITOR1_XML: &str = include_str!("../../dbus/org.nfcd.Monitor1.xml");
    const SIMULATOR1_XML: &str = include_str!("../../dbus/org.nfcd.Simulator1.xml");

    // ---------------------------------------------------------------------------------------------
    // The fixture: fixed answers of org.nfcd, and a record of what the client asked.

    fn v<'a>(value: impl Into<Variant<'a>>) -> OwnedVariant {
        OwnedVariant::try_from(value.into()).expect("owned variant")
    }

    fn dict(pairs: Vec<(&str, OwnedVariant)>) -> HashMap<String, OwnedVariant> {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// Errors the fixture answers with, named like nfcd's.
    #[derive(DBusError, Debug)]
    #[zbus(prefix = "org.nfcd.Error")]
    enum FixtureError {
        DoesNotExist(String),
    }

    /// What the fixture saw.
    #[derive(Debug, Default)]
    struct Calls {
        set_default: Vec<(String, String)>,
        taps: Vec<(String, Option<String>)>,
        unsubscribed: Vec<String>,
    }

    type Shared = Arc<Mutex<Calls>>;

    struct FixtureManager {
        calls: Shared,
    }

    #[interface(name = "org.nfcd.Manager1")]
    impl FixtureManager {
        async fn set_default_service(&self, category: &str, id: &str) -> Result<(), FixtureError> {
            if id == "com.example.slow" {
                // A daemon that does not answer in time.
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            }
            if id == "com.example.missing" {
                return Err(FixtureError::DoesNotExist(format!(
                    "no service with Id {id} is registered"
                )));
            }
            if let Ok(mut calls) = self.calls.lock() {
                calls.set_default.push((category.to_owned(), id.to_owned()));
            }
            Ok(())
        }

        #[zbus(property)]
        fn version(&self) -> String {
            "0.1.0".to_owned()
        }

        /// Two services: one with every key of doc/nfcctl.md except `Default` (derived from
        /// `DefaultServices`), one with only a few keys.
        #[zbus(property)]
        fn services(&self) -> Vec<HashMap<String, OwnedVariant>> {
            vec![
                dict(vec![
                    ("Id", v("com.example.pay")),
                    ("Name", v("Example Pay")),
                    ("Category", v("payment")),
                    ("Owner", v(":1.42")),
                    (
                        "Path",
                        v(ObjectPath::try_from("/com/example/pay").expect("path")),
                    ),
                    ("Uid", v(1000u32)),
                    ("Exe", v("/usr/bin/example-pay")),
                    (
                        "ExeSha256",
                        v("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
                    ),
                    (
                        "Aids",
                        v(vec![
                            vec![0xA0u8, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10],
                            vec![0xA0u8, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10],
                        ]),
                    ),
                    ("PrefixAids", v(Vec::<Vec<u8>>::new())),
                    ("SubsetAids", v(Vec::<Vec<u8>>::new())),
                    ("RequiresUnlock", v(true)),
                    ("Express", v(false)),
                    ("Preferred", v(false)),
                ]),
                dict(vec![
                    ("Id", v("org.example.transit")),
                    ("Category", v("transit")),
                    ("Express", v(true)),
                    ("PrefixAids", v(vec![vec![0xF0u8, 0x54, 0x52, 0x41, 0x4E]])),
                ]),
            ]
        }

        #[zbus(property)]
        fn default_services(&self) -> HashMap<String, String> {
            HashMap::from([("payment".to_owned(), "com.example.pay".to_owned())])
        }
    }

    struct FixtureAdapter;

    #[interface(name = "org.nfcd.Adapter1")]
    impl FixtureAdapter {
        #[zbus(property)]
        fn powered(&self) -> bool {
            true
        }
        #[zbus(property)]
        fn present(&self) -> bool {
            true
        }
        #[zbus(property)]
        fn transport(&self) -> String {
            "i2c:/dev/i2c-1@0x28".to_owned()
        }
        #[zbus(property)]
        fn controller(&self) -> String {
            "NXP PN7150".to_owned()
        }
        #[zbus(property)]
        fn nci_version(&self) -> String {
            "1.0".to_owned()
        }
        #[zbus(property)]
        fn listen_technologies(&self) -> Vec<String> {
            vec!["nfc-a".to_owned(), "nfc-b".to_owned()]
        }
        #[zbus(property)]
        fn routing_capacity(&self) -> u32 {
            720
        }
        #[zbus(property)]
        fn routing_used(&self) -> u32 {
            14
        }
        #[zbus(property)]
        fn routing_mode(&self) -> String {
            "mixed".to_owned()
        }
        #[zbus(property)]
        fn field_present(&self) -> bool {
            false
        }
        /// ISO-DEP to the host in every NCI 1.0 power state, an AID prefix to the eSE (0xC0)
        /// while switched on, and a blocked NFC-B technology entry.
        #[zbus(property)]
        fn routing_table(&self) -> Vec<HashMap<String, OwnedVariant>> {
            vec![
                dict(vec![
                    ("Type", v("protocol")),
                    ("Value", v("ISO-DEP")),
                    ("Target", v("host")),
                    ("Power", v("on,off,battery")),
                    ("Blocked", v(false)),
                ]),
                dict(vec![
                    ("Type", v("aid")),
                    ("Value", v("A000000151*")),
                    ("Target", v("nfcee:0xC0")),
                    ("Power", v("on")),
                    ("Blocked", v(false)),
                ]),
                dict(vec![
                    ("Type", v("technology")),
                    ("Value", v("NFC-B")),
                    ("Target", v("host")),
                    ("Power", v("on")),
                    ("Blocked", v(true)),
                ]),
            ]
        }

        #[zbus(signal)]
        async fn transaction_started(
            emitter: &SignalEmitter<'_>,
            id: &str,
            aid: &[u8],
        ) -> zbus::Result<()>;
    }

    struct FixtureMonitor {
        subscribed: mpsc::UnboundedSender<String>,
        calls: Shared,
    }

    #[interface(name = "org.nfcd.Monitor1")]
    impl FixtureMonitor {
        fn subscribe(&self, #[zbus(header)] header: Header<'_>) {
            if let Some(sender) = header.sender() {
                let _ = self.subscribed.send(sender.to_string());
            }
        }

        fn unsubscribe(&self, #[zbus(header)] header: Header<'_>) {
            if let (Some(sender), Ok(mut calls)) = (header.sender(), self.calls.lock()) {
                calls.unsubscribed.push(sender.to_string());
            }
        }

        #[zbus(signal)]
        async fn nci(
            emitter: &SignalEmitter<'_>,
            timestamp_us: u64,
            direction: &str,
            packet: &[u8],
        ) -> zbus::Result<()>;

        #[zbus(signal)]
        async fn apdu(
            emitter: &SignalEmitter<'_>,
            timestamp_us: u64,
            direction: &str,
            service_id: &str,
            apdu: &[u8],
        ) -> zbus::Result<()>;

        #[zbus(signal)]
        async fn lost(
            emitter: &SignalEmitter<'_>,
            timestamp_us: u64,
            count: u32,
        ) -> zbus::Result<()>;
    }

    struct FixtureSimulator {
        calls: Shared,
    }

    #[interface(name = "org.nfcd.Simulator1")]
    impl FixtureSimulator {
        /// Accepted and ignored: nfcctl has no command for it.
        fn inject_fault(&self, fault: &str) {
            let _ = fault;
        }

        /// Accepted and ignored: nfcctl has no command for it.
        fn field(&self, on: bool) {
            let _ = on;
        }

        /// `emv`: an EMV kernel's first five commands, all answered 9000. `transit`: the gate's
        /// SELECT answered 6A82, a failed tap.
        #[zbus(out_args("records"))]
        fn tap(
            &self,
            script: &str,
            options: HashMap<String, OwnedVariant>,
        ) -> Vec<HashMap<String, OwnedVariant>> {
            let technology = options
                .get("Technology")
                .and_then(|t| String::try_from(t.try_clone().ok()?).ok());
            if let Ok(mut calls) = self.calls.lock() {
                calls.taps.push((script.to_owned(), technology.clone()));
            }
            let technology = technology.unwrap_or_else(|| "a".to_owned());
            let apdu = |command: Vec<u8>, response: Vec<u8>, sw: u16, us: u64| {
                dict(vec![
                    ("Kind", v("apdu")),
                    ("Command", v(command)),
                    ("Response", v(response)),
                    ("Sw", v(sw)),
                    ("ElapsedUs", v(us)),
                    ("Service", v("com.example.pay")),
                ])
            };
            let summary = |result: &str, error: &str, apdus: u32, us: u64| {
                dict(vec![
                    ("Kind", v("summary")),
                    ("Script", v(script)),
                    ("Technology", v(technology.as_str())),
                    ("Result", v(result)),
                    ("Error", v(error)),
                    ("Apdus", v(apdus)),
                    ("ElapsedUs", v(us)),
                ])
            };
            match script {
                "emv" => vec![
                    // SELECT 2PAY.SYS.DDF01 (PPSE).
                    apdu(
                        b"\x00\xA4\x04\x00\x0E2PAY.SYS.DDF01\x00".to_vec(),
                        vec![0x6F, 0x00, 0x90, 0x00],
                        0x9000,
                        2_100,
                    ),
                    // SELECT A0000000041010.
                    apdu(
                        vec![
                            0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0, 0, 0, 0x04, 0x10, 0x10, 0x00,
                        ],
                        vec![0x6F, 0x00, 0x90, 0x00],
                        0x9000,
                        1_900,
                    ),
                    // GET PROCESSING OPTIONS, empty PDOL.
                    apdu(
                        vec![0x80, 0xA8, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00],
                        vec![0x77, 0x00, 0x90, 0x00],
                        0x9000,
                        3_000,
                    ),
                    // READ RECORD SFI 1, records 1 and 2.
                    apdu(
                        vec![0x00, 0xB2, 0x01, 0x0C, 0x00],
                        vec![0x70, 0x00, 0x90, 0x00],
                        0x9000,
                        1_500,
                    ),
                    apdu(
                        vec![0x00, 0xB2, 0x02, 0x0C, 0x00],
                        vec![0x70, 0x00, 0x90, 0x00],
                        0x9000,
                        1_500,
                    ),
                    summary("ok", "", 5, 48_250),
                ],
                _ => vec![
                    apdu(
                        vec![
                            0x00, 0xA4, 0x04, 0x00, 0x05, 0xF0, 0x54, 0x52, 0x41, 0x4E, 0x00,
                        ],
                        vec![0x6A, 0x82],
                        0x6A82,
                        900,
                    ),
                    summary(
                        "unexpected-status",
                        "SELECT F05452414E answered 6A82",
                        1,
                        9_000,
                    ),
                ],
            }
        }
    }

    /// The fixture on `bus`: what it serves and what it saw.
    struct Fixture {
        conn: Connection,
        calls: Shared,
        subscribed: mpsc::UnboundedReceiver<String>,
    }

    /// Serve the fixture objects as `org.nfcd`; `simulator` adds `Simulator1` (a daemon on the
    /// virtual controller).
    async fn serve(bus: &TestBus, simulator: bool) -> Fixture {
        let calls = Shared::default();
        let (tx, subscribed) = mpsc::unbounded_channel();
        let mut builder = connection::Builder::address(bus.address())
            .name(BUS_NAME)
            .serve_at(
                MANAGER_PATH,
                FixtureManager {
                    calls: Arc::clone(&calls),
                },
            )
            .serve_at(ADAPTER_PATH, FixtureAdapter)
            .serve_at(
                ADAPTER_PATH,
                FixtureMonitor {
                    subscribed: tx,
                    calls: Arc::clone(&calls),
                },
            );
        if simulator {
            builder = builder.serve_at(
                ADAPTER_PATH,
                FixtureSimulator {
                    calls: Arc::clone(&calls),
                },
            );
        }
        let conn = builder.build().await.expect("serve the fixture");
        Fixture {
            conn,
            calls,
            subscribed,
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Running the binary.

    /// Run `nfcctl --bus <address> args...` to completion without blocking the fixture's runtime.
    async fn nfcctl(address: &str, args: &[&str]) -> Output {
        let mut all = vec!["--bus".to_owned(), address.to_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let run = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_nfcctl"))
                .args(&all)
                .stdin(Stdio::null())
                .output()
                .expect("run nfcctl")
        });
        within(30, run).await.expect("nfcctl thread")
    }

    fn stdout(out: &Output) -> String {
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stderr(out: &Output) -> String {
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn json(out: &Output) -> serde_json::Value {
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
    }

    // ---------------------------------------------------------------------------------------------
    // The tests.

    #[tokio::test]
    async fn status_human_and_json() {
        let bus = TestBus::session();
        let _fixture = serve(&bus, false).await;

        let out = nfcctl(bus.address(), &["status"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "Adapter /org/nfcd/adapter0\n\
             \x20 Powered              yes\n\
             \x20 Present              yes\n\
             \x20 Transport            i2c:/dev/i2c-1@0x28\n\
             \x20 Controller           NXP PN7150\n\
             \x20 NCI version          1.0\n\
             \x20 Listen technologies  nfc-a, nfc-b\n\
             \x20 Routing capacity     720 bytes\n\
             \x20 Field present        no\n\
             Daemon /org/nfcd\n\
             \x20 Version          0.1.0\n\
             \x20 Default payment  com.example.pay\n"
        );

        let out = nfcctl(bus.address(), &["--json", "status"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json(&out);
        assert_eq!(v["adapter"]["powered"], true);
        assert_eq!(v["adapter"]["controller"], "NXP PN7150");
        assert_eq!(v["adapter"]["listen_technologies"][1], "nfc-b");
        assert_eq!(v["adapter"]["routing_capacity"], 720);
        assert_eq!(v["manager"]["version"], "0.1.0");
        assert_eq!(
            v["manager"]["default_services"]["payment"],
            "com.example.pay"
        );
    }

    #[tokio::test]
    async fn services_with_owner_and_missing_keys() {
        let bus = TestBus::session();
        let _fixture = serve(&bus, false).await;

        let out = nfcctl(bus.address(), &["services"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[0].starts_with("ID  ") && lines[0].ends_with("FLAGS           AIDS"),
            "{text}"
        );
        // Default comes from DefaultServices; the digest is shortened to 12 digits.
        assert!(
            lines[1].starts_with("com.example.pay      payment   Example Pay  :1.42  1000  /usr/bin/example-pay  9f86d081884c  default,unlock  A0000000041010"),
            "{text}"
        );
        assert_eq!(lines[2].trim(), "A0000000031010");
        assert!(
            lines[3].starts_with("org.example.transit  transit   -  "),
            "{text}"
        );
        assert!(lines[3].ends_with("express         F05452414E*"), "{text}");

        let out = nfcctl(bus.address(), &["services", "--json"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json(&out);
        assert_eq!(v[0]["id"], "com.example.pay");
        assert_eq!(v[0]["owner"], ":1.42");
        assert_eq!(v[0]["path"], "/com/example/pay");
        assert_eq!(v[0]["uid"], 1000);
        assert_eq!(v[0]["aids"][1], "A0000000031010");
        assert_eq!(v[0]["default"], true);
        assert_eq!(v[1]["default"], false);
        assert_eq!(v[1]["name"], serde_json::Value::Null);
        assert_eq!(v[1]["prefix_aids"][0], "F05452414E");
    }

    #[tokio::test]
    async fn routing_table() {
        let bus = TestBus::session();
        let _fixture = serve(&bus, false).await;

        let out = nfcctl(bus.address(), &["routing"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "Routing mode  mixed\n\
             Table size    14 of 720 bytes used\n\
             \n\
             TYPE        VALUE        TARGET      POWER           BLOCKED\n\
             protocol    ISO-DEP      host        on,off,battery  no\n\
             aid         A000000151*  nfcee:0xC0  on              no\n\
             technology  NFC-B        host        on              yes\n"
        );

        let out = nfcctl(bus.address(), &["--json", "routing"]).await;
        let v = json(&out);
        assert_eq!(v["mode"], "mixed");
        assert_eq!(v["entries"][1]["target"], "nfcee:0xC0");
        assert_eq!(v["entries"][2]["blocked"], true);
    }

    #[tokio::test]
    async fn set_default_reaches_the_daemon_and_errors_show_their_name() {
        let bus = TestBus::session();
        let fixture = serve(&bus, false).await;

        let out = nfcctl(
            bus.address(),
            &["set-default", "payment", "com.example.pay"],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "Default payment service is now com.example.pay\n"
        );
        assert_eq!(
            fixture.calls.lock().expect("calls").set_default,
            vec![("payment".to_owned(), "com.example.pay".to_owned())]
        );

        let out = nfcctl(
            bus.address(),
            &["set-default", "payment", "com.example.missing"],
        )
        .await;
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stdout(&out), "");
        assert_eq!(
            stderr(&out),
            "nfcctl: org.nfcd.Error.DoesNotExist: no service with Id com.example.missing is registered\n"
        );
        assert_eq!(fixture.calls.lock().expect("calls").set_default.len(), 1);
    }

    #[tokio::test]
    async fn daemon_absent_and_bus_unreachable() {
        let bus = TestBus::session();
        // Nobody owns org.nfcd on this bus.
        let out = nfcctl(bus.address(), &["status"]).await;
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(
            stderr(&out),
            format!(
                "nfcctl: nfcd is not running on the bus at {} (org.nfcd has no owner)\n",
                bus.address()
            )
        );
        assert_eq!(stdout(&out), "");

        let dir = tempfile::tempdir().expect("temporary directory");
        let nowhere = format!("unix:path={}/no-bus", dir.path().display());
        let out = nfcctl(&nowhere, &["services"]).await;
        assert_eq!(out.status.code(), Some(4));
        assert!(
            stderr(&out).starts_with(&format!("nfcctl: cannot connect to the bus at {nowhere}: ")),
            "{}",
            stderr(&out)
        );
    }

    #[tokio::test]
    async fn replies_wait_at_most_the_timeout() {
        let bus = TestBus::session();
        let _fixture = serve(&bus, false).await;
        let out = nfcctl(
            bus.address(),
            &[
                "--timeout",
                "1",
                "set-default",
                "payment",
                "com.example.slow",
            ],
        )
        .await;
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(stderr(&out), "nfcctl: nfcd did not answer within 1 s\n");

        // A socket that accepts connections but never speaks D-Bus.
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("mute");
        let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        let mute = format!("unix:path={}", path.display());
        let out = nfcctl(&mute, &["--timeout", "1", "status"]).await;
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(stderr(&out), "nfcctl: the bus did not answer within 1 s\n");
    }

    #[tokio::test]
    async fn usage_errors_exit_with_2() {
        let out = nfcctl("unix:path=/nonexistent", &["tap", "--script", "visa"]).await;
        assert_eq!(out.status.code(), Some(2));
        let out = nfcctl("unix:path=/nonexistent", &["set-default", "payment"]).await;
        assert_eq!(out.status.code(), Some(2));
    }

    #[tokio::test]
    async fn monitor_decodes_signals_until_sigint() {
        let bus = TestBus::session();
        let mut fixture = serve(&bus, false).await;

        let mut child = Command::new(env!("CARGO_BIN_EXE_nfcctl"))
            .args(["--bus", bus.address(), "monitor"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nfcctl monitor");
        let (line_tx, mut lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        if line_tx.send(line).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });

        let subscriber = within(15, fixture.subscribed.recv())
            .await
            .expect("Subscribe call");
        // Monitor1 signals go to the subscriber alone (doc/monitor-api.md).
        let to_subscriber = SignalEmitter::new(&fixture.conn, ADAPTER_PATH)
            .expect("emitter")
            .set_destination(BusName::try_from(subscriber.clone()).expect("unique name"));
        // CORE_RESET_CMD (reset configuration), then CORE_RESET_RSP: STATUS_OK, NCI 1.0.
        FixtureMonitor::nci(&to_subscriber, 7_000_000, "tx", &[0x20, 0x00, 0x01, 0x01])
            .await
            .expect("emit Nci");
        FixtureMonitor::nci(
            &to_subscriber,
            7_000_850,
            "rx",
            &[0x40, 0x00, 0x03, 0x00, 0x10, 0x01],
        )
        .await
        .expect("emit Nci");
        // The reader's SELECT, as the daemon reports it for the service it routed it to.
        FixtureMonitor::apdu(
            &to_subscriber,
            7_100_000,
            "command",
            "com.example.pay",
            &[
                0x00, 0xA4, 0x04, 0x00, 0x07, 0xA0, 0, 0, 0, 0x04, 0x10, 0x10, 0x00,
            ],
        )
        .await
        .expect("emit Apdu");
        FixtureMonitor::lost(&to_subscriber, 7_200_000, 2)
            .await
            .expect("emit Lost");
        // And the Adapter1 broadcast.
        let emitter = SignalEmitter::new(&fixture.conn, ADAPTER_PATH).expect("emitter");
        FixtureAdapter::transaction_started(
            &emitter,
            "com.example.pay",
            &[0xA0, 0, 0, 0, 0x04, 0x10, 0x10],
        )
        .await
        .expect("emit TransactionStarted");

        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(within(15, lines.recv()).await.expect("a trace line"));
        }
        assert!(
            got[0].ends_with(" < NCI  CORE_RESET_CMD reset_type=RESET_CONFIGURATION"),
            "{got:#?}"
        );
        assert!(
            got[1].ends_with(
                " > NCI  CORE_RESET_RSP status=STATUS_OK nci_version=1.0 config_status=NCI_RF_CONFIGURATION_RESET"
            ),
            "{got:#?}"
        );
        // The daemon's clock sets the spacing: 850 µs between the two packets.
        let seconds = |line: &str| -> f64 {
            line.split_whitespace()
                .next()
                .and_then(|t| t.parse().ok())
                .expect("timestamp")
        };
        let gap = seconds(&got[1]) - seconds(&got[0]);
        assert!((gap - 0.000_850).abs() < 1e-9, "{got:#?}");
        assert!(
            got[2].ends_with(" > APDU com.example.pay  SELECT A0000000041010"),
            "{got:#?}"
        );
        assert!(got[3].ends_with(" ! LOST 2 signals"), "{got:#?}");
        assert!(
            got[4].ends_with(" @ TRANSACTION started com.example.pay AID A0000000041010"),
            "{got:#?}"
        );

        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
            nix::sys::signal::Signal::SIGINT,
        )
        .expect("SIGINT");
        let status = within(15, tokio::task::spawn_blocking(move || child.wait()))
            .await
            .expect("wait thread")
            .expect("wait");
        assert_eq!(status.code(), Some(0));
        assert_eq!(
            fixture.calls.lock().expect("calls").unsubscribed,
            vec![subscriber]
        );
    }

    #[tokio::test]
    async fn monitor_json_lines() {
        let bus = TestBus::session();
        let mut fixture = serve(&bus, false).await;
        let mut child = Command::new(env!("CARGO_BIN_EXE_nfcctl"))
            .args(["--bus", bus.address(), "--json", "monitor"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nfcctl monitor");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            line
        });
        let subscriber = within(15, fixture.subscribed.recv())
            .await
            .expect("Subscribe call");
        // RF_FIELD_INFO_NTF: a reader's field appeared.
        let to_subscriber = SignalEmitter::new(&fixture.conn, ADAPTER_PATH)
            .expect("emitter")
            .set_destination(BusName::try_from(subscriber).expect("unique name"));
        FixtureMonitor::nci(&to_subscriber, 1, "rx", &[0x61, 0x07, 0x01, 0x01])
            .await
            .expect("emit Nci");
        let line = within(15, tokio::task::spawn_blocking(move || reader.join()))
            .await
            .expect("reader thread")
            .expect("line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
        assert_eq!(v["event"], "nci");
        assert_eq!(v["direction"], "rx");
        assert_eq!(v["packet"], "61070101");
        assert_eq!(v["message"], "RF_FIELD_INFO_NTF");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let status = within(15, tokio::task::spawn_blocking(move || child.wait()))
            .await
            .expect("wait thread")
            .expect("wait");
        assert_eq!(status.code(), Some(0));
    }

    #[tokio::test]
    async fn tap_prints_each_apdu_and_the_result() {
        let bus = TestBus::session();
        let fixture = serve(&bus, true).await;

        let out = nfcctl(bus.address(), &["tap", "--script", "emv"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "Tap: script emv, NFC-A\n\
             #  TIME      SERVICE          COMMAND                                         RESPONSE\n\
             1  2.100 ms  com.example.pay  SELECT 325041592E5359532E4444463031             9000 ok, 2 bytes\n\
             2  1.900 ms  com.example.pay  SELECT A0000000041010                           9000 ok, 2 bytes\n\
             3  3.000 ms  com.example.pay  GET PROCESSING OPTIONS P1=00 P2=00 Lc=2 Le=256  9000 ok, 2 bytes\n\
             4  1.500 ms  com.example.pay  READ RECORD P1=01 P2=0C Le=256                  9000 ok, 2 bytes\n\
             5  1.500 ms  com.example.pay  READ RECORD P1=02 P2=0C Le=256                  9000 ok, 2 bytes\n\
             Result: ok, 5 APDUs in 48.250 ms\n"
        );

        let out = nfcctl(
            bus.address(),
            &["--json", "tap", "--script", "emv", "--tech", "b"],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json(&out);
        assert_eq!(v["technology"], "b");
        assert_eq!(v["apdus"][2]["command"], "80A8000002830000");
        assert_eq!(v["apdus"][2]["sw"], "9000");
        assert_eq!(v["summary"]["elapsed_us"], 48_250);
        assert_eq!(
            fixture.calls.lock().expect("calls").taps,
            vec![
                ("emv".to_owned(), Some("a".to_owned())),
                ("emv".to_owned(), Some("b".to_owned()))
            ]
        );

        // A tap that ran but failed: printed, then exit status 6.
        let out = nfcctl(bus.address(), &["tap", "--script", "transit"]).await;
        assert_eq!(out.status.code(), Some(6));
        assert!(
            stdout(&out).ends_with(
                "Result: unexpected-status, 1 APDU in 9.000 ms (SELECT F05452414E answered 6A82)\n"
            ),
            "{}",
            stdout(&out)
        );
        assert_eq!(
            stderr(&out),
            "nfcctl: the simulated tap failed: unexpected-status: SELECT F05452414E answered 6A82\n"
        );
    }

    #[tokio::test]
    async fn tap_without_the_virtual_controller() {
        let bus = TestBus::session();
        let _fixture = serve(&bus, false).await;
        let out = nfcctl(bus.address(), &["tap", "--script", "unknown-aid"]).await;
        assert_eq!(out.status.code(), Some(5));
        assert_eq!(
            stderr(&out),
            "nfcctl: the daemon is not running on the virtual controller (start it with --transport sim)\n"
        );
    }

    #[tokio::test]
    async fn fixture_serves_the_shipped_monitor_and_simulator_interfaces() {
        let bus = TestBus::session();
        let fixture = serve(&bus, true).await;
        for (interface, xml) in [
            ("org.nfcd.Monitor1", MONITOR1_XML),
            ("org.nfcd.Simulator1", SIMULATOR1_XML),
        ] {
            nfcd::dbus::check_served_interface(
                &fixture.conn,
                BUS_NAME,
                ADAPTER_PATH,
                interface,
                xml,
            )
            .await
            .unwrap_or_else(|e| panic!("{interface}: {e}"));
        }
    }

    /// The same commands against nfcd's own `Manager1` and `Adapter1` objects, with a stand-in
    /// core answering their requests: the shapes the daemon really serves (`RoutingTable` as
    /// `a(ssyy)`, `Services` with the owner's identity keys) read as documented.
    #[tokio::test]
    async fn against_the_daemons_own_dbus_objects() {
        let bus = TestBus::session();
        let manager = ManagerState {
            services: vec![ServiceInfo {
                path: OwnedObjectPath::try_from("/com/example/pay").expect("path"),
                owner: ":1.7".to_owned(),
                id: "com.example.pay".to_owned(),
                category: "payment".to_owned(),
                name: "Example Pay".to_owned(),
                aids: vec![vec![0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10]],
                prefix_aids: vec![],
                subset_aids: vec![],
                requires_unlock: false,
                express: false,
                preferred: true,
                default: true,
                uid: 1000,
                exe_sha256: String::new(),
            }],
            default_services: BTreeMap::from([(
                "payment".to_owned(),
                "com.example.pay".to_owned(),
            )]),
        };
        let adapter = AdapterState {
            powered: true,
            present: true,
            transport: "sim".to_owned(),
            controller: "virtual PN7150".to_owned(),
            nci_version: "1.0".to_owned(),
            listen_technologies: vec!["nfc-a".to_owned()],
            routing_table: vec![
                // ISO-DEP → DH, every NCI 1.0 power state.
                RoutingEntry {
                    kind: "protocol".to_owned(),
                    value: "iso-dep".to_owned(),
                    route: 0x00,
                    power_state: 0x07,
                },
                // Prefix AID → eSE 0xC0, switched on.
                RoutingEntry {
                    kind: "aid-prefix".to_owned(),
                    value: "A000000151".to_owned(),
                    route: 0xC0,
                    power_state: 0x01,
                },
            ],
            routing_capacity: 720,
            field_present: false,
        };
        let (_served, mut requests) = nfcd::dbus::serve(&bus.bus(), manager, adapter)
            .await
            .expect("serve nfcd's objects");

        let out = nfcctl(bus.address(), &["status"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            text.contains("  Controller           virtual PN7150\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  Version          {}\n",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );

        let out = nfcctl(bus.address(), &["routing"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            stdout(&out),
            "Routing mode  -\n\
             Table size    720 bytes capacity\n\
             \n\
             TYPE      VALUE        TARGET      POWER           BLOCKED\n\
             protocol  ISO-DEP      host        on,off,battery  -\n\
             aid       A000000151*  nfcee:0xC0  on              -\n"
        );

        let out = nfcctl(bus.address(), &["--json", "services"]).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let v = json(&out);
        assert_eq!(v[0]["id"], "com.example.pay");
        assert_eq!(v[0]["owner"], ":1.7");
        assert_eq!(v[0]["aids"][0], "A0000000031010");
        assert_eq!(v[0]["default"], true);
        assert_eq!(v[0]["preferred"], true);
        assert_eq!(v[0]["uid"], 1000);

        let core = tokio::spawn(async move {
            match requests.manager.recv().await {
                Some(ManagerRequest::SetDefaultService {
                    category,
                    id,
                    reply,
                    ..
                }) => {
                    let _ = reply.send(Ok(()));
                    Some((category, id))
                }
                _ => None,
            }
        });
        let out = nfcctl(
            bus.address(),
            &["set-default", "transit", "org.example.metro"],
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            within(15, core).await.expect("core task"),
            Some(("transit".to_owned(), "org.example.metro".to_owned()))
        );

        // The daemon's own argument check, as an org.nfcd.Error on stderr.
        let out = nfcctl(
            bus.address(),
            &["set-default", "other", "org.example.notes"],
        )
        .await;
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).starts_with("nfcctl: org.nfcd.Error.InvalidArguments: "),
            "{}",
            stderr(&out)
        );
    }
}

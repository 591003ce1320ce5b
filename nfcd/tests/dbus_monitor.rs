//! org.nfcd.Monitor1 on a private bus: Subscribe/Unsubscribe and their errors, unicast `Nci`
//! and `Apdu` signals in order (decoded by `nfcctl monitor`'s own decoder), `Lost` for a
//! subscriber that falls behind, the subscriber limit, root-only subscription, subscriptions
//! ending with their connection, a tap path that costs nothing without subscribers, and the
//! served interface against `dbus/org.nfcd.Monitor1.xml`.

mod dbus_common;

/// Counts this thread's heap use, to show what the tap path allocates.
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
        static LIVE_BYTES: Cell<i64> = const { Cell::new(0) };
    }

    fn count(allocations: u64, bytes: i64) {
        // `try_with`: allocations during thread teardown go uncounted rather than panic.
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + allocations));
        let _ = LIVE_BYTES.try_with(|b| b.set(b.get() + bytes));
    }

    fn bytes(layout: Layout) -> i64 {
        i64::try_from(layout.size()).unwrap_or(i64::MAX)
    }

    // SAFETY: every call is passed on unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count(1, bytes(layout));
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            count(0, -bytes(layout));
            // SAFETY: `ptr` came from `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count(
                1,
                i64::try_from(new_size).unwrap_or(i64::MAX) - bytes(layout),
            );
            // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    /// Allocations made by this thread so far.
    pub fn allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    /// Bytes allocated and not yet freed by this thread.
    pub fn live_bytes() -> i64 {
        LIVE_BYTES.with(Cell::get)
    }
}

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

mod monitor {
    use std::num::NonZeroUsize;
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    use futures_util::StreamExt;
    use nfcd::ctl::monitor::Event;
    use nfcd::dbus::monitor::{
        export, ApduDirection, MonitorHandle, NciDirection, MAX_SUBSCRIBERS, MONITOR1_XML,
        MONITOR_INTERFACE, QUEUE_CAPACITY,
    };
    use nfcd::dbus::{check_served_interface, ADAPTER_PATH};
    use nix::time::{clock_gettime, ClockId};
    use zbus::message::Type as MessageType;
    use zbus::{Connection, MatchRule, MessageStream};

    use crate::dbus_common::{session_config, within, TestBus};
    use crate::heap;

    /// Sent by the tests themselves, never by nfcd (which reports no `Lost` of 0): whatever a
    /// client receives before it was sent before it.
    const MARKER: Event = Event::Lost {
        timestamp_us: u64::MAX,
        count: 0,
    };

    /// nfcd's side: a connection serving Monitor1, and the handle the core would use.
    struct Daemon {
        bus: TestBus,
        conn: Connection,
        monitor: MonitorHandle,
    }

    impl Daemon {
        async fn start() -> Daemon {
            Daemon::on(TestBus::session()).await
        }

        async fn on(bus: TestBus) -> Daemon {
            let conn = bus.connect().await;
            let monitor = export(&conn).await.expect("export Monitor1");
            Daemon { bus, conn, monitor }
        }

        fn name(&self) -> String {
            unique_name(&self.conn)
        }

        /// Call `method` of Monitor1 from `client`.
        async fn call(&self, client: &Connection, method: &str) -> zbus::Result<zbus::Message> {
            within(
                10,
                client.call_method(
                    Some(self.name().as_str()),
                    ADAPTER_PATH,
                    Some(MONITOR_INTERFACE),
                    method,
                    &(),
                ),
            )
            .await
        }

        async fn subscribe(&self, client: &Connection) {
            self.call(client, "Subscribe").await.expect("Subscribe");
        }

        /// A client connection with a stream of this daemon's Monitor1 signals, subscribed.
        async fn subscriber(&self) -> (Connection, MessageStream) {
            let client = self.bus.connect().await;
            let stream = self.signals(&client).await;
            self.subscribe(&client).await;
            (client, stream)
        }

        /// Monitor1 signals from this daemon that reach `client` (the match rule has no
        /// `eavesdrop`: only broadcasts and signals addressed to `client`).
        async fn signals(&self, client: &Connection) -> MessageStream {
            let rule = MatchRule::builder()
                .msg_type(MessageType::Signal)
                .sender(self.name())
                .path(ADAPTER_PATH)
                .interface(MONITOR_INTERFACE)
                .build()
                .expect("match rule");
            MessageStream::for_match_rule(rule, client, NonZeroUsize::new(4 * QUEUE_CAPACITY))
                .await
                .expect("signal stream")
        }

        /// Send [`MARKER`] from the daemon's connection: to `to`, or to everyone.
        async fn marker(&self, to: Option<&str>) {
            let Event::Lost {
                timestamp_us,
                count,
            } = MARKER
            else {
                unreachable!("the marker is a Lost")
            };
            self.conn
                .emit_signal(
                    to,
                    ADAPTER_PATH,
                    MONITOR_INTERFACE,
                    "Lost",
                    &(timestamp_us, count),
                )
                .await
                .expect("send the marker");
        }

        /// Wait (bounded) until nobody is subscribed.
        async fn inactive(&self) {
            within(10, async {
                while self.monitor.active() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await;
        }
    }

    fn unique_name(conn: &Connection) -> String {
        conn.unique_name()
            .map(|n| n.to_string())
            .expect("bus connections have a unique name")
    }

    /// The next Monitor1 signal, decoded as `nfcctl monitor` decodes it.
    async fn next(stream: &mut MessageStream) -> Event {
        let msg = within(10, stream.next())
            .await
            .expect("stream open")
            .expect("readable message");
        Event::from_signal(&msg)
            .expect("a Monitor1 signal")
            .expect("with the documented arguments")
    }

    fn error_name(result: zbus::Result<zbus::Message>) -> String {
        match result {
            Err(zbus::Error::MethodError(name, _, _)) => name.to_string(),
            other => panic!("expected an error reply, got {other:?}"),
        }
    }

    fn now_us() -> u64 {
        let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC");
        u64::try_from(t.tv_sec()).expect("positive") * 1_000_000
            + u64::try_from(t.tv_nsec()).expect("positive") / 1_000
    }

    /// Only uid 0 may subscribe; everything but the refusal needs the tests to run as root.
    fn root_or_skip() -> bool {
        let root = nix::unistd::geteuid().is_root();
        if !root {
            eprintln!("skipped: Subscribe is for uid 0 and this test does not run as root");
        }
        root
    }

    // CORE_RESET_CMD, reset type 0x01 (reset configuration).
    const CORE_RESET_CMD: &[u8] = &[0x20, 0x00, 0x01, 0x01];
    // CORE_RESET_RSP (NCI 1.0 layout): STATUS_OK, NCI version 1.0, configuration reset.
    const CORE_RESET_RSP: &[u8] = &[0x40, 0x00, 0x03, 0x00, 0x10, 0x01];
    // DATA on the static RF connection: SELECT 2PAY.SYS.DDF01 (PPSE).
    const DATA_SELECT_PPSE: &[u8] = &[
        0x00, 0x00, 0x14, 0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59,
        0x53, 0x2E, 0x44, 0x44, 0x46, 0x30, 0x31, 0x00,
    ];
    // The C-APDU inside: SELECT by name 2PAY.SYS.DDF01.
    const SELECT_PPSE: &[u8] = &[
        0x00, 0xA4, 0x04, 0x00, 0x0E, 0x32, 0x50, 0x41, 0x59, 0x2E, 0x53, 0x59, 0x53, 0x2E, 0x44,
        0x44, 0x46, 0x30, 0x31, 0x00,
    ];
    // R-APDU: an FCI template (6F) cut short, then 9000.
    const FCI_OK: &[u8] = &[0x6F, 0x02, 0x84, 0x00, 0x90, 0x00];
    // R-APDU from nfcd itself: 6A82, file or application not found.
    const NOT_FOUND: &[u8] = &[0x6A, 0x82];

    /// A DATA packet on connection 0 whose 4-byte payload numbers it.
    fn numbered(n: u32) -> Vec<u8> {
        let mut packet = vec![0x00, 0x00, 0x04];
        packet.extend_from_slice(&n.to_be_bytes());
        packet
    }

    fn number(packet: &[u8]) -> u32 {
        let payload: [u8; 4] = packet
            .get(3..7)
            .and_then(|p| p.try_into().ok())
            .expect("a numbered DATA packet");
        u32::from_be_bytes(payload)
    }

    #[tokio::test]
    async fn serves_the_shipped_interface() {
        let daemon = Daemon::start().await;
        let client = daemon.bus.connect().await;
        check_served_interface(
            &client,
            &daemon.name(),
            ADAPTER_PATH,
            MONITOR_INTERFACE,
            MONITOR1_XML,
        )
        .await
        .expect("served Monitor1 matches dbus/org.nfcd.Monitor1.xml");
        // A second export would leave the first handle feeding nothing.
        assert!(export(&daemon.conn).await.is_err());
    }

    #[tokio::test]
    async fn subscriber_receives_nci_and_apdus_in_order() {
        if !root_or_skip() {
            return;
        }
        let daemon = Daemon::start().await;
        assert!(!daemon.monitor.active());
        let (_client, mut stream) = daemon.subscriber().await;
        assert!(daemon.monitor.active());

        let before = now_us();
        daemon.monitor.nci(NciDirection::Tx, CORE_RESET_CMD);
        daemon.monitor.nci(NciDirection::Rx, CORE_RESET_RSP);
        daemon.monitor.nci(NciDirection::Rx, DATA_SELECT_PPSE);
        daemon
            .monitor
            .apdu(ApduDirection::Command, "com.example.pay", SELECT_PPSE);
        daemon
            .monitor
            .apdu(ApduDirection::Response, "com.example.pay", FCI_OK);
        daemon.monitor.apdu(ApduDirection::Response, "", NOT_FOUND);
        let after = now_us();

        let expected = [
            (NciDirection::Tx, CORE_RESET_CMD),
            (NciDirection::Rx, CORE_RESET_RSP),
            (NciDirection::Rx, DATA_SELECT_PPSE),
        ];
        let mut last = before;
        for (direction, packet) in expected {
            match next(&mut stream).await {
                Event::Nci {
                    timestamp_us,
                    direction: d,
                    packet: p,
                } => {
                    assert_eq!((d, p.as_slice()), (direction, packet));
                    assert!(last <= timestamp_us && timestamp_us <= after);
                    last = timestamp_us;
                }
                other => panic!("expected Nci {packet:02X?}, got {other:?}"),
            }
        }
        let expected = [
            (ApduDirection::Command, "com.example.pay", SELECT_PPSE),
            (ApduDirection::Response, "com.example.pay", FCI_OK),
            (ApduDirection::Response, "", NOT_FOUND),
        ];
        for (direction, service, apdu) in expected {
            match next(&mut stream).await {
                Event::Apdu {
                    timestamp_us,
                    direction: d,
                    service_id,
                    apdu: a,
                } => {
                    assert_eq!(
                        (d, service_id.as_str(), a.as_slice()),
                        (direction, service, apdu)
                    );
                    assert!(last <= timestamp_us && timestamp_us <= after);
                    last = timestamp_us;
                }
                other => panic!("expected Apdu {apdu:02X?}, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn signals_are_unicast() {
        if !root_or_skip() {
            return;
        }
        let daemon = Daemon::start().await;
        let onlooker = daemon.bus.connect().await;
        let mut overheard = daemon.signals(&onlooker).await;
        let (_client, mut stream) = daemon.subscriber().await;

        daemon.monitor.nci(NciDirection::Tx, CORE_RESET_CMD);
        daemon
            .monitor
            .apdu(ApduDirection::Command, "com.example.pay", SELECT_PPSE);
        assert!(matches!(next(&mut stream).await, Event::Nci { .. }));
        assert!(matches!(next(&mut stream).await, Event::Apdu { .. }));
        // Both were sent before this broadcast; a match rule alone saw neither.
        daemon.marker(None).await;
        assert_eq!(next(&mut overheard).await, MARKER);
        assert_eq!(next(&mut stream).await, MARKER);
    }

    #[tokio::test]
    async fn unsubscribe_stops_delivery() {
        if !root_or_skip() {
            return;
        }
        let daemon = Daemon::start().await;
        let (client, mut stream) = daemon.subscriber().await;
        // Subscribing again changes nothing: one Unsubscribe ends it.
        daemon.subscribe(&client).await;

        daemon.monitor.nci(NciDirection::Tx, CORE_RESET_CMD);
        assert!(matches!(next(&mut stream).await, Event::Nci { .. }));
        daemon
            .call(&client, "Unsubscribe")
            .await
            .expect("Unsubscribe");
        assert!(!daemon.monitor.active());
        daemon.monitor.nci(NciDirection::Rx, CORE_RESET_RSP);
        daemon.marker(Some(&unique_name(&client))).await;
        assert_eq!(next(&mut stream).await, MARKER);

        assert_eq!(
            error_name(daemon.call(&client, "Unsubscribe").await),
            "org.nfcd.Error.DoesNotExist"
        );
        // A client that never subscribed.
        let other = daemon.bus.connect().await;
        assert_eq!(
            error_name(daemon.call(&other, "Unsubscribe").await),
            "org.nfcd.Error.DoesNotExist"
        );
        // And subscribing anew works.
        daemon.subscribe(&client).await;
        daemon.monitor.nci(NciDirection::Tx, CORE_RESET_CMD);
        match next(&mut stream).await {
            Event::Nci { packet, .. } => assert_eq!(packet, CORE_RESET_CMD),
            other => panic!("expected Nci, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn at_most_eight_subscribers() {
        if !root_or_skip() {
            return;
        }
        let daemon = Daemon::start().await;
        let mut clients = Vec::new();
        for _ in 0..MAX_SUBSCRIBERS {
            let client = daemon.bus.connect().await;
            daemon.subscribe(&client).await;
            clients.push(client);
        }
        let ninth = daemon.bus.connect().await;
        assert_eq!(
            error_name(daemon.call(&ninth, "Subscribe").await),
            "org.nfcd.Error.LimitExceeded"
        );
        // A subscriber subscribing again is not a ninth subscription.
        daemon.subscribe(&clients[0]).await;
        daemon
            .call(&clients[3], "Unsubscribe")
            .await
            .expect("Unsubscribe");
        daemon.subscribe(&ninth).await;
        assert_eq!(
            error_name(daemon.call(&clients[3], "Subscribe").await),
            "org.nfcd.Error.LimitExceeded"
        );
    }

    /// A session bus that lets any uid connect (the default lets only the bus's own).
    fn any_user_config() -> String {
        session_config(Path::new("{dir}")).replace(
            r#"<policy context="default">"#,
            r#"<policy context="default">
    <allow user="*"/>"#,
        )
    }

    /// Whether `tool` can be started at all (dbus-send has no `--version`).
    fn have(tool: &str) -> bool {
        Command::new(tool).arg("--help").output().is_ok()
    }

    #[tokio::test]
    async fn only_root_may_subscribe() {
        if !nix::unistd::geteuid().is_root() {
            // Then this test process itself is the non-root caller.
            let daemon = Daemon::start().await;
            let client = daemon.bus.connect().await;
            assert_eq!(
                error_name(daemon.call(&client, "Subscribe").await),
                "org.nfcd.Error.NotAuthorized"
            );
            assert!(!daemon.monitor.active());
            return;
        }
        if !have("setpriv") || !have("dbus-send") {
            eprintln!("skipped: needs setpriv and dbus-send to call as another user");
            return;
        }
        let bus = TestBus::with_config(&any_user_config()).expect("bus");
        {
            // Let uid 65534 reach the socket.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(bus.dir(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let daemon = Daemon::on(bus).await;
        let address = daemon.bus.address().to_owned();
        let dest = daemon.name();
        let out = within(
            10,
            tokio::task::spawn_blocking(move || {
                Command::new("setpriv")
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg("dbus-send")
                    .arg(format!("--bus={address}"))
                    .arg("--print-reply")
                    .arg(format!("--dest={dest}"))
                    .arg(ADAPTER_PATH)
                    .arg(format!("{MONITOR_INTERFACE}.Subscribe"))
                    .output()
            }),
        )
        .await
        .expect("join")
        .expect("run setpriv dbus-send");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "uid 65534 subscribed: {text}");
        assert!(text.contains("org.nfcd.Error.NotAuthorized"), "{text}");
        assert!(!daemon.monitor.active());
        // Root, on the same bus, may.
        let client = daemon.bus.connect().await;
        daemon.subscribe(&client).await;
        assert!(daemon.monitor.active());
    }

    #[tokio::test]
    async fn slow_subscriber_is_told_what_it_lost() {
        if !root_or_skip() {
            return;
        }
        const FLOOD: u32 = 10_000;
        let daemon = Daemon::start().await;
        let (_client, mut stream) = daemon.subscriber().await;

        // A burst the subscriber cannot follow: nothing is delivered while it lasts (this
        // runtime has one thread and the loop never yields), so the queue fills and stays full.
        let live_before = heap::live_bytes();
        for n in 0..FLOOD {
            daemon.monitor.nci(NciDirection::Rx, &numbered(n));
        }
        let growth = heap::live_bytes() - live_before;
        // What stays allocated is the queue's content; unbounded, 10,000 events would hold
        // several times this.
        let bound = i64::try_from(QUEUE_CAPACITY * 160).expect("small");
        assert!(growth < bound, "{growth} bytes held after the flood");

        let mut expected = 0u32;
        let mut delivered = 0u32;
        let mut lost_total = 0u32;
        let mut pending: Option<(u64, u32)> = None;
        let mut last_sent = false;
        while expected <= FLOOD {
            let event = next(&mut stream).await;
            if !last_sent {
                // The subscriber received one, so its queue has room again: one more event,
                // which it learns of the drops with.
                daemon.monitor.nci(NciDirection::Rx, &numbered(FLOOD));
                last_sent = true;
            }
            match event {
                Event::Lost {
                    timestamp_us,
                    count,
                } => {
                    assert!(pending.is_none(), "two Lost in a row");
                    assert!(count > 0);
                    pending = Some((timestamp_us, count));
                }
                Event::Nci {
                    timestamp_us,
                    packet,
                    ..
                } => {
                    let n = number(&packet);
                    let (lost_at, lost) = pending.take().unwrap_or((timestamp_us, 0));
                    assert_eq!(n - expected, lost, "packet {n} after {expected}");
                    assert_eq!(lost_at, timestamp_us, "Lost carries the next one's time");
                    lost_total += lost;
                    delivered += 1;
                    expected = n + 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(lost_total > 0, "a full queue dropped nothing");
        assert_eq!(delivered + lost_total, FLOOD + 1);
        let capacity = u32::try_from(QUEUE_CAPACITY).expect("small");
        assert!(
            delivered <= capacity + 1,
            "{delivered} delivered: the queue held more than {QUEUE_CAPACITY}"
        );
    }

    #[tokio::test]
    async fn nothing_is_allocated_without_subscribers() {
        let daemon = Daemon::start().await;
        assert!(!daemon.monitor.active());
        let before = heap::allocations();
        for _ in 0..1000 {
            daemon.monitor.nci(NciDirection::Rx, DATA_SELECT_PPSE);
            daemon
                .monitor
                .apdu(ApduDirection::Command, "com.example.pay", SELECT_PPSE);
        }
        assert_eq!(heap::allocations() - before, 0);
    }

    #[tokio::test]
    async fn subscription_ends_with_its_connection() {
        if !root_or_skip() {
            return;
        }
        let daemon = Daemon::start().await;
        let client = daemon.bus.connect().await;
        daemon.subscribe(&client).await;
        assert!(daemon.monitor.active());
        // The core never forwards this departure: the monitor notices by itself.
        client.close().await.expect("close");
        daemon.inactive().await;
        daemon.monitor.nci(NciDirection::Tx, CORE_RESET_CMD);
        assert!(!daemon.monitor.active());
    }

    #[tokio::test]
    async fn owner_gone_ends_the_subscription_at_once() {
        if !root_or_skip() {
            return;
        }
        let daemon = Daemon::start().await;
        let (client, mut stream) = daemon.subscriber().await;
        let (other, mut other_stream) = daemon.subscriber().await;
        daemon.monitor.owner_gone(&unique_name(&client));
        assert!(daemon.monitor.active(), "the other subscriber remains");
        daemon.monitor.nci(NciDirection::Tx, CORE_RESET_CMD);
        assert!(matches!(next(&mut other_stream).await, Event::Nci { .. }));
        daemon.marker(Some(&unique_name(&client))).await;
        assert_eq!(next(&mut stream).await, MARKER);
        daemon.monitor.owner_gone(&unique_name(&other));
        assert!(!daemon.monitor.active());
    }
}

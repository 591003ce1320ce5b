//! LockWatcher against a fake systemd-logind on a private bus.
//!
//! The test serves its own `org.freedesktop.login1`: seat0 (`org.freedesktop.login1.Seat`,
//! `ActiveSession`) and sessions (`org.freedesktop.login1.Session`, `Class`, `LockedHint`),
//! whose setters emit `PropertiesChanged` the way logind does (with the new value, or as an
//! invalidation only). The watcher runs on its own connection, as in the daemon, and its
//! published state must follow: LockedHint flips, active-session switches, nobody logged in,
//! a greeter, logind leaving and coming back, and the constant modes.

mod dbus_common;

mod lock {
    use std::collections::HashMap;
    use std::time::Duration;

    use nfcd::config::LockMode;
    use nfcd::hce::LockState::{self, Locked, Unlocked};
    use nfcd::lock::{LockWatcher, LOGIND_NAME, SEAT0_PATH, SESSION_INTERFACE};
    use tokio::sync::watch;
    use zbus::names::InterfaceName;
    use zbus::{interface, Connection, ObjectPath, OwnedObjectPath, Variant};

    use crate::dbus_common::{within, TestBus};

    const SESSION_PATH: &str = "/org/freedesktop/login1/session/";

    fn session_path(id: &str) -> OwnedObjectPath {
        OwnedObjectPath::try_from(format!("{SESSION_PATH}{id}")).expect("session path")
    }

    /// The test's fake of logind's seat0.
    struct FakeSeat {
        active: (String, OwnedObjectPath),
    }

    #[interface(name = "org.freedesktop.login1.Seat")]
    impl FakeSeat {
        #[zbus(property)]
        fn active_session(&self) -> (String, OwnedObjectPath) {
            self.active.clone()
        }
    }

    /// The test's fake of one logind session.
    struct FakeSession {
        class: String,
        locked_hint: bool,
    }

    #[interface(name = "org.freedesktop.login1.Session")]
    impl FakeSession {
        #[zbus(property)]
        fn class(&self) -> String {
            self.class.clone()
        }

        #[zbus(property)]
        fn locked_hint(&self) -> bool {
            self.locked_hint
        }
    }

    /// How a fake setter announces the change.
    #[derive(Clone, Copy)]
    enum Announce {
        /// `PropertiesChanged` with the new value (what logind does).
        Value,
        /// `PropertiesChanged` naming the property as invalidated, without a value.
        Invalidate,
    }

    /// The test's fake `org.freedesktop.login1`: one connection owning the name and serving
    /// seat0 and the sessions given to [`FakeLogind::start`].
    struct FakeLogind {
        conn: Connection,
    }

    impl FakeLogind {
        /// Serve `sessions` (id, class, LockedHint) with `active` active on seat0, then take
        /// the name (objects first, as logind does, so that the name means ready).
        async fn start(
            bus: &TestBus,
            sessions: &[(&str, &str, bool)],
            active: Option<&str>,
        ) -> FakeLogind {
            let conn = bus.connect().await;
            let server = conn.object_server();
            for (id, class, locked_hint) in sessions {
                server
                    .at(
                        session_path(id),
                        FakeSession {
                            class: (*class).to_owned(),
                            locked_hint: *locked_hint,
                        },
                    )
                    .await
                    .expect("serve session");
            }
            server
                .at(
                    SEAT0_PATH,
                    FakeSeat {
                        active: active_value(active),
                    },
                )
                .await
                .expect("serve seat0");
            conn.request_name(LOGIND_NAME)
                .await
                .expect("own org.freedesktop.login1");
            FakeLogind { conn }
        }

        /// Set a session's LockedHint and announce it.
        async fn set_locked_hint(&self, id: &str, locked_hint: bool, announce: Announce) {
            let iface = self
                .conn
                .object_server()
                .interface::<_, FakeSession>(session_path(id))
                .await
                .expect("session served");
            iface.get_mut().await.locked_hint = locked_hint;
            match announce {
                Announce::Value => iface
                    .get()
                    .await
                    .locked_hint_changed(iface.signal_emitter())
                    .await
                    .expect("emit"),
                Announce::Invalidate => {
                    invalidate(iface.signal_emitter(), SESSION_INTERFACE, "LockedHint")
                        .await
                        .expect("emit")
                }
            }
        }

        /// Make session `id` (or nobody) active on seat0 and announce it.
        async fn activate(&self, id: Option<&str>, announce: Announce) {
            let iface = self
                .conn
                .object_server()
                .interface::<_, FakeSeat>(SEAT0_PATH)
                .await
                .expect("seat0 served");
            iface.get_mut().await.active = active_value(id);
            match announce {
                Announce::Value => iface
                    .get()
                    .await
                    .active_session_changed(iface.signal_emitter())
                    .await
                    .expect("emit"),
                Announce::Invalidate => invalidate(
                    iface.signal_emitter(),
                    "org.freedesktop.login1.Seat",
                    "ActiveSession",
                )
                .await
                .expect("emit"),
            }
        }

        /// Leave the bus (logind stopping).
        async fn leave(self) {
            self.conn
                .close()
                .await
                .expect("close the fake's connection");
        }
    }

    /// seat0's ActiveSession for `id`; logind reports `("", "/")` when nobody is active.
    fn active_value(id: Option<&str>) -> (String, OwnedObjectPath) {
        match id {
            Some(id) => (id.to_owned(), session_path(id)),
            None => (String::new(), OwnedObjectPath::try_from("/").expect("root")),
        }
    }

    async fn invalidate(
        emitter: &zbus::object_server::SignalEmitter<'_>,
        interface: &'static str,
        property: &'static str,
    ) -> zbus::Result<()> {
        zbus::fdo::Properties::properties_changed(
            emitter,
            InterfaceName::from_static_str_unchecked(interface),
            HashMap::new(),
            std::borrow::Cow::Borrowed(&[property]),
        )
        .await
    }

    async fn watch(
        bus: &TestBus,
        mode: LockMode,
    ) -> (LockWatcher, watch::Receiver<LockState>, Connection) {
        let conn = bus.connect().await;
        let (watcher, rx) = within(10, LockWatcher::start(&conn, mode))
            .await
            .expect("start the lock watcher");
        (watcher, rx, conn)
    }

    /// Wait until the published state is `want`.
    async fn until(rx: &mut watch::Receiver<LockState>, want: LockState) {
        within(10, rx.wait_for(|s| *s == want))
            .await
            .expect("watcher running");
    }

    /// The published state does not change for a while. A change the watcher should not have
    /// made would be published within milliseconds of the signal; 300 ms of silence checks it.
    async fn stays(rx: &mut watch::Receiver<LockState>, want: LockState) {
        assert_eq!(*rx.borrow_and_update(), want);
        let r = tokio::time::timeout(Duration::from_millis(300), rx.changed()).await;
        assert!(r.is_err(), "state changed to {:?}", *rx.borrow());
    }

    #[tokio::test]
    async fn lock_follows_locked_hint() {
        let bus = TestBus::session();
        let logind = FakeLogind::start(&bus, &[("c1", "user", false)], Some("c1")).await;
        let (_w, mut rx, _conn) = watch(&bus, LockMode::Logind).await;
        // start() returns with the state already read.
        assert_eq!(*rx.borrow_and_update(), Unlocked);

        logind.set_locked_hint("c1", true, Announce::Value).await;
        until(&mut rx, Locked).await;
        logind.set_locked_hint("c1", false, Announce::Value).await;
        until(&mut rx, Unlocked).await;
        // logind may announce only that LockedHint changed: the watcher reads it again.
        logind
            .set_locked_hint("c1", true, Announce::Invalidate)
            .await;
        until(&mut rx, Locked).await;
        logind
            .set_locked_hint("c1", false, Announce::Invalidate)
            .await;
        until(&mut rx, Unlocked).await;
    }

    #[tokio::test]
    async fn lock_follows_the_active_session() {
        let bus = TestBus::session();
        let logind = FakeLogind::start(
            &bus,
            &[
                ("c1", "user", false),
                ("c2", "user", true),
                ("c3", "greeter", false),
            ],
            Some("c1"),
        )
        .await;
        let (_w, mut rx, _conn) = watch(&bus, LockMode::Logind).await;
        assert_eq!(*rx.borrow_and_update(), Unlocked);

        // Switch to a locked session.
        logind.activate(Some("c2"), Announce::Value).await;
        until(&mut rx, Locked).await;
        // Only the active session counts: the one left behind unlocking changes nothing...
        logind.set_locked_hint("c1", false, Announce::Value).await;
        logind.set_locked_hint("c1", true, Announce::Value).await;
        logind.set_locked_hint("c1", false, Announce::Value).await;
        stays(&mut rx, Locked).await;
        // ...the active one unlocking does.
        logind.set_locked_hint("c2", false, Announce::Value).await;
        until(&mut rx, Unlocked).await;
        // The display manager's login screen is not an unlocked device.
        logind.activate(Some("c3"), Announce::Value).await;
        until(&mut rx, Locked).await;
        // A switch announced as an invalidation is read again.
        logind.activate(Some("c1"), Announce::Invalidate).await;
        until(&mut rx, Unlocked).await;
        // Nobody at the seat.
        logind.activate(None, Announce::Value).await;
        until(&mut rx, Locked).await;
        logind.activate(Some("c1"), Announce::Value).await;
        until(&mut rx, Unlocked).await;
    }

    #[tokio::test]
    async fn lock_nobody_logged_in_at_start() {
        let bus = TestBus::session();
        let logind = FakeLogind::start(&bus, &[("c1", "user", false)], None).await;
        let (_w, mut rx, _conn) = watch(&bus, LockMode::Logind).await;
        assert_eq!(*rx.borrow_and_update(), Locked);
        logind.activate(Some("c1"), Announce::Value).await;
        until(&mut rx, Unlocked).await;
    }

    #[tokio::test]
    async fn lock_logind_leaves_and_comes_back() {
        let bus = TestBus::session();
        let logind = FakeLogind::start(&bus, &[("c1", "user", false)], Some("c1")).await;
        let (_w, mut rx, _conn) = watch(&bus, LockMode::Logind).await;
        assert_eq!(*rx.borrow_and_update(), Unlocked);

        logind.leave().await;
        until(&mut rx, Locked).await;

        // A new logind (a new unique name) with the same session unlocked.
        let logind = FakeLogind::start(&bus, &[("c1", "user", false)], Some("c1")).await;
        until(&mut rx, Unlocked).await;
        // And its signals are followed.
        logind.set_locked_hint("c1", true, Announce::Value).await;
        until(&mut rx, Locked).await;
    }

    #[tokio::test]
    async fn lock_logind_absent_at_start() {
        let bus = TestBus::session();
        let (_w, mut rx, _conn) = watch(&bus, LockMode::Logind).await;
        assert_eq!(*rx.borrow_and_update(), Locked);
        let logind = FakeLogind::start(&bus, &[("c1", "user", false)], Some("c1")).await;
        until(&mut rx, Unlocked).await;
        logind
            .set_locked_hint("c1", true, Announce::Invalidate)
            .await;
        until(&mut rx, Locked).await;
    }

    /// A client that sends the watcher's connection unicast signals dressed up as logind's
    /// and the bus's.
    struct Forger {
        conn: Connection,
        watcher: String,
    }

    impl Forger {
        async fn locked_hint(&self, session: &str, locked_hint: bool) {
            let mut changed: HashMap<&str, Variant<'_>> = HashMap::new();
            changed.insert("LockedHint", Variant::from(locked_hint));
            self.conn
                .emit_signal(
                    Some(self.watcher.as_str()),
                    ObjectPath::try_from(format!("{SESSION_PATH}{session}")).expect("path"),
                    "org.freedesktop.DBus.Properties",
                    "PropertiesChanged",
                    &(SESSION_INTERFACE, changed, Vec::<String>::new()),
                )
                .await
                .expect("send forged PropertiesChanged");
        }

        /// `NameOwnerChanged(org.freedesktop.login1, old, new)`.
        async fn logind_owner(&self, old: &str, new: &str) {
            self.conn
                .emit_signal(
                    Some(self.watcher.as_str()),
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "NameOwnerChanged",
                    &(LOGIND_NAME, old, new),
                )
                .await
                .expect("send forged NameOwnerChanged");
        }
    }

    #[tokio::test]
    async fn lock_forged_signals_are_ignored() {
        let bus = TestBus::session();
        let logind = FakeLogind::start(&bus, &[("c1", "user", true)], Some("c1")).await;
        let (_w, mut rx, conn) = watch(&bus, LockMode::Logind).await;
        assert_eq!(*rx.borrow_and_update(), Locked);
        let forger = Forger {
            conn: bus.connect().await,
            watcher: conn.unique_name().expect("unique name").to_string(),
        };
        let real = logind.conn.unique_name().expect("name").to_string();
        let fake = forger.conn.unique_name().expect("name").to_string();

        // Logind unlocking the session, said by someone else.
        forger.locked_hint("c1", false).await;
        stays(&mut rx, Locked).await;

        // The real logind is still followed.
        logind.set_locked_hint("c1", false, Announce::Value).await;
        until(&mut rx, Unlocked).await;

        // "logind left" would lock; "logind is now the forger" would make the watcher take
        // the forger's word, which then says the session is locked. Neither is believed.
        forger.logind_owner(&real, "").await;
        forger.logind_owner("", &fake).await;
        forger.locked_hint("c1", true).await;
        stays(&mut rx, Unlocked).await;
        logind.set_locked_hint("c1", true, Announce::Value).await;
        until(&mut rx, Locked).await;
    }

    #[tokio::test]
    async fn lock_constant_modes() {
        let bus = TestBus::session();
        // No logind at all: the constant modes do not need one.
        let (_w, mut rx, _conn) = watch(&bus, LockMode::Unlocked).await;
        stays(&mut rx, Unlocked).await;
        let (_w, mut rx, _conn) = watch(&bus, LockMode::Locked).await;
        stays(&mut rx, Locked).await;

        // With a logind that says otherwise, and changes its mind, they do not follow it.
        let logind = FakeLogind::start(&bus, &[("c1", "user", true)], Some("c1")).await;
        let (_wu, mut unlocked, _cu) = watch(&bus, LockMode::Unlocked).await;
        logind.set_locked_hint("c1", false, Announce::Value).await;
        let (_wl, mut locked, _cl) = watch(&bus, LockMode::Locked).await;
        logind.set_locked_hint("c1", true, Announce::Value).await;
        logind.set_locked_hint("c1", false, Announce::Value).await;
        stays(&mut unlocked, Unlocked).await;
        stays(&mut locked, Locked).await;
    }
}

//! The device's lock state, for services registered with `RequiresUnlock`.
//!
//! [`LockWatcher`] publishes a [`LockState`] on a `tokio::sync::watch` channel, from the source
//! the configuration names (`[lock] mode`, [`LockMode`]):
//!
//! - `locked` / `unlocked`: that state, forever.
//! - `logind`: the state systemd-logind (`org.freedesktop.login1`) reports for the session in
//!   front of the user: the active session of seat `seat0` (`Seat.ActiveSession`, `(so)`), and
//!   that session's `Session.LockedHint` (`b`), which the lock screen sets. Changes are followed
//!   without polling, from `org.freedesktop.DBus.Properties.PropertiesChanged` of the seat (the
//!   active session switches) and of the active session (`LockedHint`; a signal that only
//!   invalidates a property makes the watcher read it again), and from `NameOwnerChanged` of
//!   `org.freedesktop.login1` (logind stops or starts).
//!
//! The rule in `logind` mode: the device is unlocked only while logind reports an active session
//! on seat0 whose `LockedHint` is false and whose `Class` is not `greeter` or `lock-screen`.
//! Everything else is locked: nobody logged in at the seat (`ActiveSession` is `("", "/")`,
//! e.g. a headless board, or a user logged in only over SSH), the display manager's login
//! screen (a greeter session has no lock to report), logind not on the bus (a board without
//! it; one warning each time it goes away, and its return is picked up), or logind not
//! answering (read again with back-off). A device nobody has unlocked must not hand out
//! services that ask for an unlocked device; a board without a screen sets
//! `mode = "unlocked"` instead.
//!
//! Only signals whose sender is the current owner of `org.freedesktop.login1` (or, for
//! `NameOwnerChanged`, the bus itself) are believed: any client may send a unicast signal to
//! nfcd, and the match rules alone do not keep those out.
//!
//! What this module does not do: decide what a locked device may do (the registry,
//! [`crate::hce::registry`]), watch seats other than seat0, or watch the screen (a blanked but
//! unlocked screen counts as unlocked).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use zbus::message::Type as MessageType;
use zbus::{Connection, MatchRule, Message, MessageStream, OwnedObjectPath, OwnedVariant};

use crate::config::LockMode;
use crate::hce::LockState;

/// Bus name of systemd-logind.
pub const LOGIND_NAME: &str = "org.freedesktop.login1";
/// Object path of seat0, the seat with the built-in screen and keyboard.
pub const SEAT0_PATH: &str = "/org/freedesktop/login1/seat/seat0";
/// Interface of logind seats.
pub const SEAT_INTERFACE: &str = "org.freedesktop.login1.Seat";
/// Interface of logind sessions.
pub const SESSION_INTERFACE: &str = "org.freedesktop.login1.Session";
/// Session classes that never count as unlocked: nobody is logged in behind them.
pub const LOCKED_CLASSES: [&str; 2] = ["greeter", "lock-screen"];

const LOGIND_PATH_NAMESPACE: &str = "/org/freedesktop/login1";
const PROPERTIES_INTERFACE: &str = "org.freedesktop.DBus.Properties";
const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";
/// How long one property read may take before logind counts as not answering.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// First and longest delay before logind is asked again after it did not answer.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Signals queued for the watcher before the bus connection's reader waits for it.
const QUEUE: usize = 64;

/// Publishes the lock state; stops when dropped.
#[derive(Debug)]
pub struct LockWatcher {
    task: Option<JoinHandle<()>>,
    /// Kept in the constant modes so that receivers never see the channel close.
    _constant: Option<watch::Sender<LockState>>,
}

impl LockWatcher {
    /// Start publishing the lock state of `mode`, following logind on `conn` (the daemon's own
    /// bus connection: the system bus in production) in [`LockMode::Logind`].
    ///
    /// When this returns the receiver already holds the state logind reported: the match rules
    /// are added first, then the state is read, so no change after that is missed. The only
    /// error is the bus refusing the match rules; logind being absent or failing is a state
    /// (locked), not an error.
    pub async fn start(
        conn: &Connection,
        mode: LockMode,
    ) -> zbus::Result<(LockWatcher, watch::Receiver<LockState>)> {
        let constant = |state| {
            let (tx, rx) = watch::channel(state);
            let watcher = LockWatcher {
                task: None,
                _constant: Some(tx),
            };
            info!("lock state: {} (lock.mode)", describe(state));
            Ok((watcher, rx))
        };
        match mode {
            LockMode::Locked => constant(LockState::Locked),
            LockMode::Unlocked => constant(LockState::Unlocked),
            LockMode::Logind => {
                let mut follower = Follower::subscribe(conn).await?;
                follower.refresh().await;
                let state = follower.view.state();
                info!("lock state: {} ({})", describe(state), follower.view);
                let (tx, rx) = watch::channel(state);
                let task = tokio::spawn(follower.run(tx));
                Ok((
                    LockWatcher {
                        task: Some(task),
                        _constant: None,
                    },
                    rx,
                ))
            }
        }
    }
}

impl Drop for LockWatcher {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn describe(state: LockState) -> &'static str {
    match state {
        LockState::Locked => "locked",
        LockState::Unlocked => "unlocked",
    }
}

/// What logind reports, as far as the lock state goes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum View {
    /// `org.freedesktop.login1` has no owner.
    Absent,
    /// logind is there but a read failed.
    Unreadable(String),
    /// seat0 has no active session.
    NoSession,
    /// The active session of seat0.
    Session(SessionView),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct SessionView {
    id: String,
    path: OwnedObjectPath,
    class: String,
    locked_hint: bool,
}

impl View {
    /// The rule of the module documentation.
    fn state(&self) -> LockState {
        match self {
            View::Session(s) if !s.locked_hint && !LOCKED_CLASSES.contains(&s.class.as_str()) => {
                LockState::Unlocked
            }
            _ => LockState::Locked,
        }
    }
}

impl std::fmt::Display for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            View::Absent => write!(f, "{LOGIND_NAME} is not on the bus"),
            View::Unreadable(e) => write!(f, "logind did not answer: {e}"),
            View::NoSession => write!(f, "no active session on seat0"),
            View::Session(s) => write!(
                f,
                "session {} ({}) is active on seat0, LockedHint={}",
                s.id, s.class, s.locked_hint
            ),
        }
    }
}

/// The logind side of the watcher: its signal streams and what it last saw.
struct Follower {
    conn: Connection,
    owners: MessageStream,
    props: MessageStream,
    /// Unique name of logind's connection.
    owner: Option<String>,
    view: View,
    retry_delay: Duration,
}

impl Follower {
    /// Add the match rules: `NameOwnerChanged` for logind's name, and `PropertiesChanged` of
    /// every logind object (seat0 and whichever session is active).
    async fn subscribe(conn: &Connection) -> zbus::Result<Follower> {
        let owners = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(BUS_NAME)
            .path(BUS_PATH)
            .interface(BUS_NAME)
            .member("NameOwnerChanged")
            .arg(0, LOGIND_NAME)
            .build()?;
        let props = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(LOGIND_NAME)
            .path_namespace(LOGIND_PATH_NAMESPACE)
            .interface(PROPERTIES_INTERFACE)
            .member("PropertiesChanged")
            .build()?;
        let capacity = std::num::NonZeroUsize::new(QUEUE);
        Ok(Follower {
            conn: conn.clone(),
            owners: MessageStream::for_match_rule(owners, conn, capacity).await?,
            props: MessageStream::for_match_rule(props, conn, capacity).await?,
            owner: None,
            // Not `Absent`, so that finding logind absent at start warns like losing it later.
            view: View::Unreadable("not read yet".to_owned()),
            retry_delay: FIRST_RETRY,
        })
    }

    async fn run(mut self, tx: watch::Sender<LockState>) {
        loop {
            let retry_at = matches!(self.view, View::Unreadable(_)).then_some(self.retry_delay);
            tokio::select! {
                msg = self.owners.next() => match msg {
                    Some(Ok(msg)) => self.on_name_owner_changed(&msg).await,
                    Some(Err(e)) => debug!("lock watcher: {e}"),
                    None => break,
                },
                msg = self.props.next() => match msg {
                    Some(Ok(msg)) => self.on_properties_changed(&msg).await,
                    Some(Err(e)) => debug!("lock watcher: {e}"),
                    None => break,
                },
                _ = sleep(retry_at) => {
                    self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY);
                    self.refresh().await;
                }
                _ = tx.closed() => break,
            }
            if !matches!(self.view, View::Unreadable(_)) {
                self.retry_delay = FIRST_RETRY;
            }
            let state = self.view.state();
            tx.send_if_modified(|s| {
                let changed = *s != state;
                if changed {
                    info!("lock state: {} ({})", describe(state), self.view);
                }
                *s = state;
                changed
            });
        }
    }

    /// Ask the bus who owns logind's name, then read everything.
    async fn refresh(&mut self) {
        let reply = self
            .conn
            .call_method(
                Some(BUS_NAME),
                BUS_PATH,
                Some(BUS_NAME),
                "GetNameOwner",
                &(LOGIND_NAME,),
            )
            .await;
        match reply.and_then(|r| r.body().deserialize::<String>()) {
            Ok(owner) => {
                self.owner = Some(owner);
                self.view = self.read_seat().await;
            }
            Err(zbus::Error::FDO(e)) if matches!(*e, zbus::fdo::Error::NameHasNoOwner(_)) => {
                self.set_absent();
            }
            Err(e) => self.view = View::Unreadable(format!("GetNameOwner: {e}")),
        }
        self.warn_if_unreadable();
    }

    fn set_absent(&mut self) {
        self.owner = None;
        if self.view != View::Absent {
            warn!("{LOGIND_NAME} is not on the bus: treating the device as locked until it appears (a device without a lock screen sets [lock] mode = \"unlocked\")");
        }
        self.view = View::Absent;
    }

    fn warn_if_unreadable(&self) {
        if let View::Unreadable(e) = &self.view {
            warn!(
                "cannot read the lock state from logind ({e}); treating the device as locked, asking again in {} s",
                self.retry_delay.as_secs()
            );
        }
    }

    async fn on_name_owner_changed(&mut self, msg: &Message) {
        let header = msg.header();
        if header.sender().map(|s| s.as_str()) != Some(BUS_NAME) {
            return;
        }
        let Ok((name, _old, new)) = msg.body().deserialize::<(String, String, String)>() else {
            return;
        };
        if name != LOGIND_NAME {
            return;
        }
        if new.is_empty() {
            self.set_absent();
        } else {
            info!("{LOGIND_NAME} is on the bus ({new})");
            self.owner = Some(new);
            self.view = self.read_seat().await;
            self.warn_if_unreadable();
        }
    }

    async fn on_properties_changed(&mut self, msg: &Message) {
        let header = msg.header();
        let sender = header.sender().map(|s| s.as_str());
        if sender.is_none() || sender != self.owner.as_deref() {
            debug!(
                "ignoring PropertiesChanged from {} (logind is {:?})",
                sender.unwrap_or("?"),
                self.owner
            );
            return;
        }
        let Some(path) = header.path().map(|p| p.as_str().to_owned()) else {
            return;
        };
        let Ok((interface, changed, invalidated)) =
            msg.body()
                .deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
        else {
            return;
        };
        let is_invalidated = |name: &str| invalidated.iter().any(|p| p == name);

        if path == SEAT0_PATH && interface == SEAT_INTERFACE {
            if let Some(value) = changed.get("ActiveSession") {
                self.view = match active_session(value) {
                    Some(active) => self.read_session(active).await,
                    // Not the documented `(so)`: read it properly.
                    None => self.read_seat().await,
                };
            } else if is_invalidated("ActiveSession") {
                self.view = self.read_seat().await;
            } else {
                return;
            }
        } else if interface == SESSION_INTERFACE {
            let View::Session(current) = &self.view else {
                return;
            };
            if current.path.as_str() != path {
                return;
            }
            let hint = match changed.get("LockedHint") {
                Some(value) => match bool::try_from(value) {
                    Ok(hint) => Ok(hint),
                    Err(_) => self.read_bool(&path, "LockedHint").await,
                },
                None if is_invalidated("LockedHint") => self.read_bool(&path, "LockedHint").await,
                None => return,
            };
            match (hint, &mut self.view) {
                (Ok(hint), View::Session(s)) => s.locked_hint = hint,
                (Err(e), _) => self.view = View::Unreadable(e),
                (Ok(_), _) => {}
            }
        } else {
            return;
        }
        self.warn_if_unreadable();
    }

    /// Read seat0's active session and, if there is one, the session.
    async fn read_seat(&self) -> View {
        let value = match self.get(SEAT0_PATH, SEAT_INTERFACE, "ActiveSession").await {
            Ok(v) => v,
            Err(e) => return View::Unreadable(e),
        };
        match active_session(&value) {
            Some(active) => self.read_session(active).await,
            None => View::Unreadable(format!(
                "seat0 ActiveSession is {}, not (so)",
                value.value_signature()
            )),
        }
    }

    /// Read what matters of the session seat0 says is active; `None` means no session.
    async fn read_session(&self, active: Option<(String, OwnedObjectPath)>) -> View {
        let Some((id, path)) = active else {
            return View::NoSession;
        };
        let class = match self.get(path.as_str(), SESSION_INTERFACE, "Class").await {
            Ok(v) => match String::try_from(v) {
                Ok(class) => class,
                Err(e) => return View::Unreadable(format!("session {id} Class: {e}")),
            },
            Err(e) => return View::Unreadable(e),
        };
        match self.read_bool(path.as_str(), "LockedHint").await {
            Ok(locked_hint) => View::Session(SessionView {
                id,
                path,
                class,
                locked_hint,
            }),
            Err(e) => View::Unreadable(e),
        }
    }

    async fn read_bool(&self, path: &str, property: &str) -> Result<bool, String> {
        let value = self.get(path, SESSION_INTERFACE, property).await?;
        bool::try_from(&value).map_err(|e| format!("{path} {property}: {e}"))
    }

    /// `Properties.Get`, addressed to logind's unique name so that the answer comes from the
    /// connection whose signals are followed.
    async fn get(
        &self,
        path: &str,
        interface: &str,
        property: &str,
    ) -> Result<OwnedVariant, String> {
        let owner = self
            .owner
            .as_deref()
            .ok_or_else(|| format!("{LOGIND_NAME} has no owner"))?;
        let args = (interface, property);
        let call =
            self.conn
                .call_method(Some(owner), path, Some(PROPERTIES_INTERFACE), "Get", &args);
        let reply = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| {
                format!(
                    "{path} {property}: no answer within {} s",
                    CALL_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("{path} {property}: {e}"))?;
        reply
            .body()
            .deserialize::<OwnedVariant>()
            .map_err(|e| format!("{path} {property}: {e}"))
    }
}

/// seat0's `ActiveSession` `(so)`: `Some(None)` for no session (logind reports `("", "/")`),
/// `None` if the value is not `(so)`.
fn active_session(value: &OwnedVariant) -> Option<Option<(String, OwnedObjectPath)>> {
    let owned = value.try_clone().ok()?;
    let (id, path) = <(String, OwnedObjectPath)>::try_from(owned).ok()?;
    Some((path.as_str() != "/").then_some((id, path)))
}

async fn sleep(after: Option<Duration>) {
    match after {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(class: &str, locked_hint: bool) -> View {
        View::Session(SessionView {
            id: "c1".into(),
            path: OwnedObjectPath::try_from("/org/freedesktop/login1/session/c1").unwrap(),
            class: class.into(),
            locked_hint,
        })
    }

    #[test]
    fn lock_rule() {
        let cases = [
            (session("user", false), LockState::Unlocked),
            (session("user", true), LockState::Locked),
            (session("greeter", false), LockState::Locked),
            (session("lock-screen", false), LockState::Locked),
            (session("user-early", false), LockState::Unlocked),
            (View::NoSession, LockState::Locked),
            (View::Absent, LockState::Locked),
            (View::Unreadable("timeout".into()), LockState::Locked),
        ];
        for (view, want) in cases {
            assert_eq!(view.state(), want, "{view}");
        }
    }

    #[test]
    fn lock_active_session_value() {
        let v = |id: &str, path: &str| -> OwnedVariant {
            zbus::Variant::from((id, zbus::ObjectPath::try_from(path).unwrap()))
                .try_into_owned()
                .unwrap()
        };
        assert_eq!(
            active_session(&v("c2", "/org/freedesktop/login1/session/c2")),
            Some(Some((
                "c2".to_owned(),
                OwnedObjectPath::try_from("/org/freedesktop/login1/session/c2").unwrap()
            )))
        );
        // logind's "no session": empty id and the root path.
        assert_eq!(active_session(&v("", "/")), Some(None));
        let not_so: OwnedVariant = zbus::Variant::from("c2").try_into_owned().unwrap();
        assert_eq!(active_session(&not_so), None);
    }
}

//! Noticing clients that leave the bus.
//!
//! Registrations die with the client's bus name, and an APDU in flight to a client that is gone
//! must fail at once rather than at its deadline. [`NameWatcher`] subscribes to the bus's
//! `NameOwnerChanged` signal (D-Bus specification, "org.freedesktop.DBus.NameOwnerChanged") and
//! delivers an [`OwnerGone`] for every unique name that loses its owner, i.e. every connection
//! that closed. It reports all of them; which ones matter is the core's business.
//!
//! Ordering: the event travels on its own channel, so the core may see a client's `OwnerGone`
//! before a method call that client made just before leaving. A registration accepted after
//! the owner is gone is caught with [`name_has_owner`].

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zbus::message::Type as MessageType;
use zbus::{Connection, MatchRule, MessageStream};

const BUS_NAME: &str = "org.freedesktop.DBus";
const BUS_PATH: &str = "/org/freedesktop/DBus";

/// A connection closed: its unique name (e.g. `:1.42`) has no owner any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerGone {
    /// The unique bus name that vanished.
    pub name: String,
}

/// Watches `NameOwnerChanged`; stops when dropped or when the receiver is dropped.
#[derive(Debug)]
pub struct NameWatcher {
    task: JoinHandle<()>,
}

impl NameWatcher {
    /// Subscribe on `conn` and start delivering [`OwnerGone`] events.
    ///
    /// The match rule is in place when this returns, so no disconnection after that is missed.
    /// The receiver ends when the connection closes. The channel is unbounded so that a busy core never stalls the bus connection's reader;
    /// events are small and there is one per client that leaves.
    pub async fn start(
        conn: &Connection,
    ) -> zbus::Result<(NameWatcher, mpsc::UnboundedReceiver<OwnerGone>)> {
        let rule = MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(BUS_NAME)
            .path(BUS_PATH)
            .interface(BUS_NAME)
            .member("NameOwnerChanged")
            .build()?;
        let capacity = std::num::NonZeroUsize::new(1024);
        let mut stream = MessageStream::for_match_rule(rule, conn, capacity).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let Ok(msg) = msg else { continue };
                let Ok((name, _old, new)) = msg.body().deserialize::<(String, String, String)>()
                else {
                    continue;
                };
                if let Some(gone) = owner_gone(name, &new) {
                    if tx.send(gone).is_err() {
                        break;
                    }
                }
            }
        });
        Ok((NameWatcher { task }, rx))
    }
}

impl Drop for NameWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `NameOwnerChanged(name, old_owner, new_owner)` means a connection closed when `name` is a
/// unique name (they start with ':') and the new owner is empty.
fn owner_gone(name: String, new_owner: &str) -> Option<OwnerGone> {
    (name.starts_with(':') && new_owner.is_empty()).then_some(OwnerGone { name })
}

/// Whether `name` currently has an owner on the bus of `conn` (`NameHasOwner`).
pub async fn name_has_owner(conn: &Connection, name: &str) -> zbus::Result<bool> {
    conn.call_method(
        Some(BUS_NAME),
        BUS_PATH,
        Some(BUS_NAME),
        "NameHasOwner",
        &(name,),
    )
    .await?
    .body()
    .deserialize::<bool>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_vanished_unique_names_count() {
        // NameOwnerChanged(":1.7", ":1.7", "") — connection :1.7 closed.
        assert_eq!(
            owner_gone(":1.7".into(), ""),
            Some(OwnerGone {
                name: ":1.7".into()
            })
        );
        // NameOwnerChanged(":1.8", "", ":1.8") — connection :1.8 appeared.
        assert_eq!(owner_gone(":1.8".into(), ":1.8"), None);
        // NameOwnerChanged("com.example.Wallet", ":1.7", "") — a well-known name released.
        assert_eq!(owner_gone("com.example.Wallet".into(), ""), None);
    }
}

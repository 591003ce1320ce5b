//! `org.nfcd.HostService1` on a real message bus, without nfcd: a private `dbus-daemon`, a
//! stand-in `org.nfcd.Manager1` on a second connection that records what wallets send and calls
//! them back, and the wallet side under test.
//!
//! Covers: the RegisterService options on the wire, ProcessApdu / Deactivated delivery, that
//! only the daemon's connection may call ProcessApdu, daemon errors passed through unchanged,
//! unregistering (explicitly and by drop), and the OpenApduChannel fast path.

mod common;

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{fake_daemon, within, PrivateBus};
use libnci::apdu::{CommandApdu, StatusWord};
use libnci::sim::cards::{response, status};
use nfcd_wallets::{ApduHandler, Registration};
use nix::sys::socket::{recv, send, MsgFlags};
use zbus::{fdo, Connection, OwnedObjectPath};

/// Echoes the C-APDU data field + 9000 and logs every call.
struct Echo {
    log: Arc<Mutex<Vec<String>>>,
}

impl ApduHandler for Echo {
    fn process_apdu(&mut self, command: &[u8]) -> Vec<u8> {
        self.log
            .lock()
            .unwrap()
            .push(format!("apdu {command:02X?}"));
        match CommandApdu::parse(command) {
            Ok(apdu) => response(apdu.data, StatusWord::NO_ERROR),
            Err(_) => status(StatusWord::WRONG_LENGTH),
        }
    }

    fn deactivated(&mut self, reason: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("deactivated {reason}"));
    }
}

const PATH: &str = "/com/example/Wallet";
const AID: [u8; 7] = [0xF0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06];
/// SELECT F0010203040506 with Le.
const SELECT: [u8; 13] = [
    0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x00,
];

async fn process_apdu(from: &Connection, wallet: &str, command: &[u8]) -> zbus::Result<Vec<u8>> {
    common::process_apdu(from, wallet, PATH, command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_calls_process_apdu_and_deactivated_on_the_registered_service() {
    let bus = PrivateBus::start();
    within(async {
        let (daemon, recorded) = fake_daemon(&bus).await;
        let log = Arc::new(Mutex::new(Vec::new()));
        // The test keeps a clone of the wallet's connection so that, after unregistering, the
        // wallet is still on the bus and only its object is gone.
        let wallet_connection = bus.connect().await;
        let handle = Registration::new(PATH)
            .connection(wallet_connection.clone())
            .id("com.example.wallet")
            .category("other")
            .name("Example")
            .aid(AID.to_vec())
            .prefix_aid(vec![0xF0, 0x01, 0x02, 0x03, 0x04])
            .register(Echo { log: log.clone() })
            .await
            .expect("registration");

        // RegisterService(o, a{sv}) arrived with the options the builder set.
        let (wallet, path, options) = recorded.lock().unwrap().registrations[0].clone();
        assert_eq!(path.as_str(), PATH);
        assert_eq!(
            String::try_from(options["Id"].clone()).unwrap(),
            "com.example.wallet"
        );
        assert_eq!(
            String::try_from(options["Category"].clone()).unwrap(),
            "other"
        );
        assert_eq!(
            Vec::<Vec<u8>>::try_from(options["Aids"].clone()).unwrap(),
            [AID.to_vec()]
        );
        assert_eq!(
            Vec::<Vec<u8>>::try_from(options["PrefixAids"].clone()).unwrap(),
            [vec![0xF0, 0x01, 0x02, 0x03, 0x04]]
        );
        assert!(!options.contains_key("SubsetAids"));
        assert!(!options.contains_key("Express"));

        // The daemon's connection calls ProcessApdu(SELECT) -> F0010203040506 9000
        let response = process_apdu(&daemon, &wallet, &SELECT).await.unwrap();
        assert_eq!(
            response,
            [0xF0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x90, 0x00]
        );

        // Deactivated("link-loss") reaches the handler, after the APDU.
        daemon
            .call_method(
                Some(wallet.as_str()),
                PATH,
                Some("org.nfcd.HostService1"),
                "Deactivated",
                &("link-loss",),
            )
            .await
            .unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                format!("apdu {:02X?}", SELECT),
                "deactivated link-loss".to_owned()
            ]
        );

        // Any other peer is refused: APDUs carry credentials.
        let stranger = bus.connect().await;
        match process_apdu(&stranger, &wallet, &SELECT).await {
            Err(zbus::Error::FDO(e)) => assert!(matches!(*e, fdo::Error::AccessDenied(_))),
            other => panic!("a stranger must get AccessDenied, got {other:?}"),
        }
        assert_eq!(log.lock().unwrap().len(), 2, "the handler never saw it");

        // SetDefaultService goes to the manager.
        handle
            .set_default_service("other", "com.example.wallet")
            .await
            .unwrap();
        assert_eq!(
            recorded.lock().unwrap().defaults,
            [("other".to_owned(), "com.example.wallet".to_owned())]
        );

        // Unregistering calls UnregisterService and stops serving.
        handle.unregister().await.unwrap();
        assert_eq!(
            recorded.lock().unwrap().unregistrations,
            [OwnedObjectPath::try_from(PATH).unwrap()]
        );
        match process_apdu(&daemon, &wallet, &SELECT).await {
            Err(zbus::Error::FDO(e)) => assert!(matches!(*e, fdo::Error::UnknownObject(_))),
            other => panic!("an unregistered service must be gone, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_registration_reports_the_daemon_error_and_exports_nothing() {
    let bus = PrivateBus::start();
    within(async {
        let (daemon, _recorded) = fake_daemon(&bus).await;
        let wallet = bus.connect().await;
        let error = Registration::new(PATH)
            .connection(wallet.clone())
            .id("com.example.empty")
            .register(Echo {
                log: Arc::default(),
            })
            .await
            .expect_err("no AIDs: the daemon refuses");
        assert_eq!(error.dbus_name(), "org.nfcd.Error.InvalidArguments");
        assert_eq!(error.message(), "a service needs at least one AID");

        let unique = wallet.unique_name().unwrap().to_string();
        match process_apdu(&daemon, &unique, &SELECT).await {
            Err(zbus::Error::FDO(e)) => assert!(matches!(*e, fdo::Error::UnknownObject(_))),
            other => panic!("nothing may stay exported, got {other:?}"),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_without_a_daemon_says_so() {
    let bus = PrivateBus::start();
    within(async {
        let error = Registration::new(PATH)
            .bus(bus.bus())
            .aid(AID.to_vec())
            .register(Echo {
                log: Arc::default(),
            })
            .await
            .expect_err("nobody owns org.nfcd");
        assert_eq!(
            error.dbus_name(),
            "org.freedesktop.DBus.Error.NameHasNoOwner"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_unregisters() {
    let bus = PrivateBus::start();
    within(async {
        let (_daemon, recorded) = fake_daemon(&bus).await;
        let handle = Registration::new(PATH)
            .bus(bus.bus())
            .aid(AID.to_vec())
            .register(Echo {
                log: Arc::default(),
            })
            .await
            .unwrap();
        drop(handle);
        // The unregistration runs on a task; wait for the daemon to see it.
        while recorded.lock().unwrap().unregistrations.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(recorded.lock().unwrap().unregistrations[0].as_str(), PATH);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apdu_channel_serves_seqpacket_messages_alongside_dbus() {
    let bus = PrivateBus::start();
    within(async {
        let (daemon, recorded) = fake_daemon(&bus).await;
        let log = Arc::new(Mutex::new(Vec::new()));
        let handle = Registration::new(PATH)
            .bus(bus.bus())
            .aid(AID.to_vec())
            .use_channel(true)
            .register(Echo { log: log.clone() })
            .await
            .unwrap();
        assert!(handle.has_channel());
        let channel = recorded.lock().unwrap().channels.pop().expect("a channel");

        // SELECT over the socket -> F0010203040506 9000, one message each way.
        let response = tokio::task::spawn_blocking(move || {
            send(channel.as_raw_fd(), &SELECT, MsgFlags::empty()).unwrap();
            let mut buf = [0u8; 512];
            let len = recv(channel.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
            (buf[..len].to_vec(), channel)
        })
        .await
        .unwrap();
        let (response, channel) = response;
        assert_eq!(
            response,
            [0xF0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x90, 0x00]
        );

        // ProcessApdu is still served, by the same handler.
        let wallet = recorded.lock().unwrap().registrations[0].0.clone();
        let response = process_apdu(&daemon, &wallet, &[0x00, 0xB2, 0x01, 0x0C, 0x00])
            .await
            .unwrap();
        assert_eq!(response, [0x90, 0x00]);
        assert_eq!(log.lock().unwrap().len(), 2);

        // The daemon closing its end ends the channel, not the registration.
        drop(channel);
        while handle.has_channel() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.unregister().await.unwrap();
    })
    .await;
}

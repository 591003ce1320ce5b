//! The wallet binaries as processes against a stand-in `org.nfcd.Manager1` on a private bus:
//! the `test-wallet` line protocol (`READY`, `APDU`, `DEACTIVATED`, `ERROR` + exit 2), its
//! behaviours that end tests rely on (hang still exits on SIGTERM, crash-after aborts), and the
//! payment and transit wallets registering and answering a first command.

mod common;

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::sync::{Arc, Mutex};

use common::{fake_daemon, process_apdu, PrivateBus, Recorded};
use nix::sys::socket::{recv, send, MsgFlags};
use tokio::runtime::Runtime;
use zbus::Connection;

const TEST_WALLET: &str = env!("CARGO_BIN_EXE_test-wallet");
const PAYMENT_WALLET: &str = env!("CARGO_BIN_EXE_payment-wallet");
const TRANSIT_WALLET: &str = env!("CARGO_BIN_EXE_transit-wallet");

const WAIT: Duration = Duration::from_secs(10);

/// SELECT F0010203040506 with Le.
const SELECT: [u8; 13] = [
    0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x00,
];

/// A wallet process with its stdout read line by line on a thread.
struct WalletProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl WalletProcess {
    fn spawn(binary: &str, args: &[&str]) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wallet binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        WalletProcess { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("the wallet printed a line in time")
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the wallet") {
                return status;
            }
            assert!(Instant::now() < deadline, "the wallet did not exit in time");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill(1)");
        assert!(status.success());
        self.wait()
    }
}

impl Drop for WalletProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private bus with the stand-in daemon, its connection driven by a runtime of its own.
struct Fixture {
    runtime: Runtime,
    bus: PrivateBus,
    daemon: Connection,
    recorded: Arc<Mutex<Recorded>>,
}

impl Fixture {
    fn start() -> Self {
        let runtime = Runtime::new().expect("tokio runtime");
        let bus = PrivateBus::start();
        let (daemon, recorded) = runtime.block_on(fake_daemon(&bus));
        Fixture {
            runtime,
            bus,
            daemon,
            recorded,
        }
    }

    /// Starts `test-wallet --bus <this bus> <args>` and waits for its `READY`.
    fn test_wallet(&self, args: &[&str]) -> WalletProcess {
        let mut all = vec!["--bus", self.bus.address.as_str()];
        all.extend_from_slice(args);
        let wallet = WalletProcess::spawn(TEST_WALLET, &all);
        assert_eq!(wallet.next_line(), "READY");
        wallet
    }

    /// Waits until the stand-in daemon has seen `count` registrations.
    fn wait_for_registrations(&self, count: usize) {
        let deadline = Instant::now() + WAIT;
        while self.recorded.lock().unwrap().registrations.len() < count {
            assert!(Instant::now() < deadline, "no RegisterService in time");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The unique name of the n-th registered wallet.
    fn wallet(&self, n: usize) -> String {
        self.recorded.lock().unwrap().registrations[n].0.clone()
    }

    fn option<T: TryFrom<zbus::OwnedVariant>>(&self, n: usize, key: &str) -> Option<T> {
        let recorded = self.recorded.lock().unwrap();
        let value = recorded.registrations[n].2.get(key)?.clone();
        T::try_from(value).ok()
    }

    fn process_apdu(&self, wallet: &str, path: &str, command: &[u8]) -> zbus::Result<Vec<u8>> {
        self.runtime
            .block_on(process_apdu(&self.daemon, wallet, path, command))
    }
}

#[test]
fn test_wallet_prints_ready_apdu_and_deactivated_and_exits_on_sigterm() {
    let fixture = Fixture::start();
    let mut wallet = fixture.test_wallet(&[
        "--aid",
        "F0010203040506",
        "--subset-aid",
        "F00102030405",
        "--behaviour",
        "echo",
        "--id",
        "com.example.t",
    ]);
    assert_eq!(
        fixture.option::<String>(0, "Category").as_deref(),
        Some("other")
    );
    assert_eq!(
        fixture.option::<Vec<Vec<u8>>>(0, "SubsetAids"),
        Some(vec![vec![0xF0, 0x01, 0x02, 0x03, 0x04, 0x05]])
    );

    // ProcessApdu(SELECT) -> echo of the AID + 9000, and an APDU line.
    let unique = fixture.wallet(0);
    let response = fixture
        .process_apdu(&unique, "/org/nfcd/wallets/test", &SELECT)
        .unwrap();
    assert_eq!(
        response,
        [0xF0, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x90, 0x00]
    );
    assert_eq!(wallet.next_line(), "APDU 00A4040007F001020304050600");

    // Deactivated("deselected") -> DEACTIVATED line.
    fixture
        .runtime
        .block_on(fixture.daemon.call_method(
            Some(unique.as_str()),
            "/org/nfcd/wallets/test",
            Some("org.nfcd.HostService1"),
            "Deactivated",
            &("deselected",),
        ))
        .unwrap();
    assert_eq!(wallet.next_line(), "DEACTIVATED deselected");

    // SIGTERM -> UnregisterService, exit 0.
    assert!(wallet.terminate().success());
    assert_eq!(fixture.recorded.lock().unwrap().unregistrations.len(), 1);
}

#[test]
fn test_wallet_prints_the_daemon_error_and_exits_2() {
    let fixture = Fixture::start();
    // No AID at all: the daemon refuses.
    let mut wallet = WalletProcess::spawn(TEST_WALLET, &["--bus", &fixture.bus.address]);
    assert_eq!(
        wallet.next_line(),
        "ERROR org.nfcd.Error.InvalidArguments a service needs at least one AID"
    );
    assert_eq!(wallet.wait().code(), Some(2));
}

#[test]
fn hanging_test_wallet_still_exits_on_sigterm() {
    let fixture = Fixture::start();
    let mut wallet = fixture.test_wallet(&["--aid", "F0010203040506", "--behaviour", "hang"]);
    let unique = fixture.wallet(0);
    let daemon = fixture.daemon.clone();
    // This call never gets an answer; it is left running.
    let _pending = fixture.runtime.spawn(async move {
        process_apdu(&daemon, &unique, "/org/nfcd/wallets/test", &SELECT).await
    });
    assert!(wallet.next_line().starts_with("APDU 00A40400"));
    assert!(wallet.terminate().success());
    assert_eq!(fixture.recorded.lock().unwrap().unregistrations.len(), 1);
}

#[test]
fn crash_after_answers_n_apdus_then_dies() {
    let fixture = Fixture::start();
    let mut wallet = fixture.test_wallet(&[
        "--aid",
        "F0010203040506",
        "--behaviour",
        "crash-after=1",
        "--id",
        "t1",
    ]);
    let unique = fixture.wallet(0);
    // ok-style answer: "t1" + 9000
    assert_eq!(
        fixture
            .process_apdu(&unique, "/org/nfcd/wallets/test", &SELECT)
            .unwrap(),
        [b't', b'1', 0x90, 0x00]
    );
    assert!(fixture
        .process_apdu(&unique, "/org/nfcd/wallets/test", &SELECT)
        .is_err());
    // Killed by SIGKILL (9): no exit code, no UnregisterService.
    assert_eq!(wallet.wait().signal(), Some(9));
    assert!(fixture.recorded.lock().unwrap().unregistrations.is_empty());
}

#[test]
fn test_wallet_with_many_aids_serves_the_apdu_channel() {
    let fixture = Fixture::start();
    let mut wallet = fixture.test_wallet(&["--many-aids", "3", "--channel", "--id", "ch"]);
    let aids = fixture.option::<Vec<Vec<u8>>>(0, "Aids").unwrap();
    assert_eq!(
        aids,
        [
            vec![0xF0, 0, 0, 0, 0, 0, 0, 0],
            vec![0xF0, 0, 0, 0, 0, 0, 0, 1],
            vec![0xF0, 0, 0, 0, 0, 0, 0, 2]
        ]
    );
    let channel = fixture
        .recorded
        .lock()
        .unwrap()
        .channels
        .pop()
        .expect("OpenApduChannel was called before READY");
    send(channel.as_raw_fd(), &SELECT, MsgFlags::empty()).unwrap();
    let mut buf = [0u8; 64];
    let len = recv(channel.as_raw_fd(), &mut buf, MsgFlags::empty()).unwrap();
    assert_eq!(buf[..len], [b'c', b'h', 0x90, 0x00]);
    assert!(wallet.next_line().starts_with("APDU 00A40400"));
    assert!(wallet.terminate().success());
}

#[test]
fn payment_wallet_registers_sets_default_and_answers_ppse() {
    let fixture = Fixture::start();
    let mut wallet = WalletProcess::spawn(
        PAYMENT_WALLET,
        &[
            "--bus",
            &fixture.bus.address,
            "--id",
            "com.example.pay",
            "--set-default",
        ],
    );
    fixture.wait_for_registrations(1);
    assert_eq!(
        fixture.option::<String>(0, "Category").as_deref(),
        Some("payment")
    );
    assert_eq!(
        fixture.option::<Vec<Vec<u8>>>(0, "Aids"),
        Some(vec![
            b"2PAY.SYS.DDF01".to_vec(),
            vec![0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10]
        ])
    );
    let deadline = Instant::now() + WAIT;
    while fixture.recorded.lock().unwrap().defaults.is_empty() {
        assert!(Instant::now() < deadline, "no SetDefaultService in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        fixture.recorded.lock().unwrap().defaults,
        [("payment".to_owned(), "com.example.pay".to_owned())]
    );

    // SELECT 2PAY.SYS.DDF01 -> 6F ... 9000 listing A0000000041010
    let mut select_ppse = vec![0x00, 0xA4, 0x04, 0x00, 0x0E];
    select_ppse.extend_from_slice(b"2PAY.SYS.DDF01");
    select_ppse.push(0x00);
    let response = fixture
        .process_apdu(
            &fixture.wallet(0),
            "/org/nfcd/wallets/payment",
            &select_ppse,
        )
        .unwrap();
    assert_eq!(response.first(), Some(&0x6F));
    assert_eq!(response[response.len() - 2..], [0x90, 0x00]);
    assert!(response
        .windows(9)
        .any(|w| w == [0x4F, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10]));
    assert!(wallet.terminate().success());
}

#[test]
fn transit_wallet_registers_express_and_persists_a_debit() {
    let fixture = Fixture::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("transit.state");
    let mut wallet = WalletProcess::spawn(
        TRANSIT_WALLET,
        &[
            "--bus",
            &fixture.bus.address,
            "--express",
            "--balance",
            "500",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    fixture.wait_for_registrations(1);
    assert_eq!(fixture.option::<bool>(0, "Express"), Some(true));
    assert_eq!(
        fixture.option::<String>(0, "Category").as_deref(),
        Some("transit")
    );

    // DEBIT 2.75 at gate "GATE0001" -> balance 2.25, counter 1, signature, 9000
    let mut debit = vec![0x80, 0x54, 0x00, 0x00, 0x10];
    debit.extend_from_slice(&275u32.to_be_bytes());
    debit.extend_from_slice(b"GATE0001");
    debit.extend_from_slice(&1_767_225_600u32.to_be_bytes());
    debit.push(0x48);
    let response = fixture
        .process_apdu(&fixture.wallet(0), "/org/nfcd/wallets/transit", &debit)
        .unwrap();
    assert_eq!(response.len(), 4 + 4 + 64 + 2);
    assert_eq!(response[..8], [0, 0, 0, 225, 0, 0, 0, 1]);
    assert_eq!(
        std::fs::read_to_string(&state).unwrap(),
        "balance=225\ncounter=1\n"
    );
    assert!(wallet.terminate().success());
}

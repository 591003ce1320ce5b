//! `nci-sim` as a process: a device host (libnci's controller over the real UART or TCP
//! transport) initialises it through the pty or socket it names, then taps are asked for on its
//! standard input and read back from its standard output.

mod simhost_common;

/// Named `simhost::*` so that `cargo test -p nfcd simhost` selects these tests.
mod simhost {
    use std::io::{BufRead, BufReader, Write};
    use std::path::PathBuf;
    use std::process::{Child, ChildStdin, Command, Stdio};

    use crate::simhost_common::{spawn_dh, within};
    use libnci::sim::cards::EmvCard;
    use libnci::sim::scripts::SELECT_PPSE;
    use nfcd::transport::{TcpSpec, TcpTransport, UartSpec, UartTransport};
    use tokio::sync::mpsc;

    /// A running `nci-sim`, killed on drop.
    struct NciSim {
        child: Child,
        stdin: ChildStdin,
        lines: mpsc::UnboundedReceiver<String>,
    }

    impl NciSim {
        fn start(args: &[&str]) -> NciSim {
            let mut child = Command::new(env!("CARGO_BIN_EXE_nci-sim"))
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start nci-sim");
            let stdin = child.stdin.take().expect("stdin");
            let stdout = child.stdout.take().expect("stdout");
            let (tx, lines) = mpsc::unbounded_channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            NciSim {
                child,
                stdin,
                lines,
            }
        }

        async fn line(&mut self) -> String {
            within("a line from nci-sim", self.lines.recv())
                .await
                .expect("nci-sim closed its output")
        }

        async fn ask(&mut self, command: &str) -> String {
            writeln!(self.stdin, "{command}").expect("write a command");
            self.stdin.flush().expect("flush");
            self.line().await
        }
    }

    impl Drop for NciSim {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// `TAP completed 7 <us>` → ("completed", 7).
    fn tap_line(line: &str) -> (String, usize) {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["TAP", outcome, apdus, total_us] => {
                assert!(total_us.parse::<u64>().is_ok(), "{line}");
                (
                    (*outcome).to_owned(),
                    apdus.parse().unwrap_or_else(|_| panic!("{line}")),
                )
            }
            _ => panic!("not a TAP line: {line}"),
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }

    #[tokio::test]
    async fn nci_sim_on_a_pty_answers_a_tap_after_the_host_initialised_it() {
        let mut sim = NciSim::start(&["--profile", "pn7150", "--pty"]);
        let banner = sim.line().await;
        let path = banner
            .strip_prefix("PTY ")
            .unwrap_or_else(|| panic!("first line names the pty: {banner}"));
        let transport = UartTransport::open(&UartSpec {
            device: PathBuf::from(path),
            baud: 115_200,
        })
        .expect("open the pty");
        let mut dh = spawn_dh(transport, EmvCard::demo());
        dh.ready().await;
        assert_eq!(sim.ask("wait-ready").await, "OK");

        let (outcome, apdus) = tap_line(&sim.ask("tap emv a").await);
        assert_eq!((outcome.as_str(), apdus), ("completed", 7));
        let mut records = Vec::new();
        for _ in 0..apdus {
            records.push(sim.line().await);
        }
        let first: Vec<&str> = records[0].split(' ').collect();
        assert_eq!(first.first(), Some(&"APDU"));
        assert_eq!(first.get(1), Some(&hex(&SELECT_PPSE).as_str()));
        for record in &records {
            // Every response ends in 9000.
            let rsp = record.split(' ').nth(2).unwrap_or_default();
            assert!(rsp.ends_with("9000"), "{record}");
        }

        assert!(sim.ask("fault melt").await.starts_with("ERR "));
        assert!(sim.ask("tap ppse").await.starts_with("ERR "));
        assert_eq!(sim.ask("field on").await, "OK");
        assert_eq!(sim.ask("field off").await, "OK");

        writeln!(sim.stdin, "quit").expect("quit");
        sim.stdin.flush().expect("flush");
        // Its standard output closes when it exits.
        let rest = within("nci-sim exits", sim.lines.recv()).await;
        assert_eq!(rest, None);
        let exited = sim.child.wait().expect("wait");
        assert!(exited.success(), "{exited:?}");
    }

    #[tokio::test]
    async fn nci_sim_on_tcp() {
        let mut sim = NciSim::start(&["--profile", "nci2", "--tcp", "127.0.0.1:0"]);
        let banner = sim.line().await;
        let addr: std::net::SocketAddr = banner
            .strip_prefix("TCP ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("first line names the address: {banner}"));
        let transport = TcpTransport::connect(&TcpSpec {
            host: addr.ip().to_string(),
            port: addr.port(),
        })
        .await
        .expect("connect");
        let mut dh = spawn_dh(transport, EmvCard::demo());
        dh.ready().await;
        assert_eq!(sim.ask("wait-ready").await, "OK");
        // The demo card knows no such AID: 6A82, which is what the script expects.
        let (outcome, apdus) = tap_line(&sim.ask("tap unknown-aid b").await);
        assert_eq!((outcome.as_str(), apdus), ("completed", 1));
        let record = sim.line().await;
        assert!(record.split(' ').nth(2) == Some("6A82"), "{record}");
    }
}

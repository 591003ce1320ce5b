//! The client side of the bare echoes: the same hop as nfcd's, without nfcd.
//!
//! Contract: [`BareClient::start`] starts a thread with a single-threaded tokio runtime (the
//! flavour nfcd runs on) holding a connection to the bus and nfcd's own client code for both
//! hops: [`HostServiceClient::process_apdu`] (one `ProcessApdu` method call through
//! dbus-daemon) and [`ApduChannel::exchange`] (one message each way on a `SOCK_SEQPACKET`
//! socket). The socket's other end is handed back, for the echo server to inherit. Each job
//! sends one command `count` times, back to back or after a pause each, and returns the time
//! of each round trip, taken with `CLOCK_MONOTONIC` around the call.
//!
//! What it does not do: check the answers beyond their being answers (the echo server is the
//! one nfcd calls during the measured taps, so both get the same octets back).

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nfcd::dbus::{ApduChannel, HostServiceClient};
use tokio::sync::{mpsc, oneshot};

/// Which hop a job measures.
#[derive(Debug, Clone)]
pub enum Hop {
    /// `ProcessApdu` on `path` of bus name `dest`.
    Zbus {
        /// Unique name of the echo server.
        dest: String,
        /// Object path.
        path: String,
    },
    /// One message on the SEQPACKET socket and its answer.
    Seqpacket,
}

struct Job {
    hop: Hop,
    command: Vec<u8>,
    count: usize,
    /// Idle time before each exchange.
    pause: Duration,
    reply: oneshot::Sender<Result<Vec<Duration>, String>>,
}

/// The bare-echo client thread.
pub struct BareClient {
    jobs: mpsc::UnboundedSender<Job>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BareClient {
    /// Start the thread, connected to the bus at `bus`; returns it and the echo server's end
    /// of the SEQPACKET socket.
    pub async fn start(bus: &str) -> Result<(BareClient, OwnedFd), String> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let (ready_tx, ready_rx) = oneshot::channel::<Result<OwnedFd, String>>();
        let bus = bus.to_owned();
        let thread = std::thread::Builder::new()
            .name("bare-echo".to_owned())
            .spawn(move || {
                // Sleeps of tens of µs end when asked, not up to the default 50 µs late.
                let _ = nix::sys::prctl::set_timerslack(1_000);
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("runtime: {e}")));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let conn = zbus::connection::Builder::address(bus.as_str())
                        .build()
                        .await;
                    let conn = match conn {
                        Ok(conn) => conn,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("connecting to {bus}: {e}")));
                            return;
                        }
                    };
                    let (channel, theirs) = match ApduChannel::pair() {
                        Ok(pair) => pair,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("socketpair: {e}")));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(theirs));
                    let client = HostServiceClient::new(conn);
                    while let Some(job) = queue.recv().await {
                        let result = run(&client, &channel, &job).await;
                        let _ = job.reply.send(result);
                    }
                });
            })
            .map_err(|e| format!("starting the bare-echo thread: {e}"))?;
        let theirs = ready_rx
            .await
            .map_err(|_| "the bare-echo thread ended".to_owned())??;
        Ok((
            BareClient {
                jobs,
                thread: Some(thread),
            },
            theirs,
        ))
    }

    /// Send `command` `count` times over `hop`; the round trip of each.
    pub async fn measure(
        &self,
        hop: Hop,
        command: &[u8],
        count: usize,
    ) -> Result<Vec<Duration>, String> {
        self.measure_paced(hop, command, count, Duration::ZERO)
            .await
    }

    /// As [`BareClient::measure`], with both processes left idle for `pause` before each
    /// exchange, as nfcd and the wallet are between two APDUs of a tap (the comparator of parts
    /// 1 and 2 paced like the tap) or between two taps (the comparator of a tap's first APDU).
    pub async fn measure_paced(
        &self,
        hop: Hop,
        command: &[u8],
        count: usize,
        pause: Duration,
    ) -> Result<Vec<Duration>, String> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                hop,
                command: command.to_vec(),
                count,
                pause,
                reply,
            })
            .map_err(|_| "the bare-echo thread ended".to_owned())?;
        answer
            .await
            .map_err(|_| "the bare-echo thread ended".to_owned())?
    }
}

impl Drop for BareClient {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop.
        let (closed, _) = mpsc::unbounded_channel();
        self.jobs = closed;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run(
    client: &HostServiceClient,
    channel: &ApduChannel,
    job: &Job,
) -> Result<Vec<Duration>, String> {
    let mut times = Vec::with_capacity(job.count);
    for _ in 0..job.count {
        if !job.pause.is_zero() {
            // A plain sleep of the thread, not the runtime's timer (whole milliseconds): the
            // pauses of parts 1 and 2 are tens of µs. Nothing else runs on this thread.
            std::thread::sleep(job.pause);
        }
        let start = Instant::now();
        let answer = match &job.hop {
            Hop::Zbus { dest, path } => client
                .process_apdu(dest, path, &job.command)
                .await
                .map_err(|e| format!("ProcessApdu: {e}"))?,
            Hop::Seqpacket => channel
                .exchange(&job.command)
                .await
                .map_err(|e| format!("SEQPACKET echo: {e}"))?,
        };
        times.push(start.elapsed());
        if answer.len() < 2 {
            return Err(format!("an answer of {} octets", answer.len()));
        }
    }
    Ok(times)
}

//! A device host for the simhost tests: libnci's controller state machine driven by a small
//! tokio loop over a real transport (transport.recv → handle_packet; poll_transmit → send;
//! poll_timeout → sleep), answering every command APDU with a card applet from
//! `libnci::sim::cards`. Events are forwarded to the test, which waits on them with bounded
//! timeouts.
#![allow(dead_code)]

use std::future::pending;
use std::time::Duration;

use libnci::controller::{Config, Controller, Event};
use libnci::sim::CardApplet;
use libnci::time::Instant;
use libnci::wire::RfTechMode;
use nfcd::transport::{Transport, TransportError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long any single condition may take before a test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the controller state machine reported, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhEvent {
    /// `Event::Ready`.
    Ready,
    /// `Event::Activated` in this mode.
    Activated(RfTechMode),
    /// `Event::Data`: a command APDU, and what the card answered.
    Apdu { command: Vec<u8>, response: Vec<u8> },
    /// `Event::Deactivated`, by its reason string.
    Deactivated(&'static str),
    /// `Event::FieldOn`.
    FieldOn,
    /// `Event::FieldOff`.
    FieldOff,
    /// `Event::RoutingProgrammed`.
    RoutingProgrammed,
    /// `Event::Reinitializing`, by its cause.
    Reinitializing(String),
    /// `Event::Error`, by its text.
    Error(String),
}

/// A running device host.
pub struct Dh {
    events: mpsc::UnboundedReceiver<DhEvent>,
    seen: Vec<DhEvent>,
    task: JoinHandle<Result<(), TransportError>>,
}

impl Drop for Dh {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start a device host on `transport`, answering APDUs with `card`. Must run inside a tokio
/// runtime.
pub fn spawn_dh<T, A>(transport: T, card: A) -> Dh
where
    T: Transport + 'static,
    A: CardApplet + Send + 'static,
{
    spawn_dh_with(transport, Config::default(), card)
}

/// [`spawn_dh`] with a controller configuration of the test's choosing.
pub fn spawn_dh_with<T, A>(transport: T, config: Config, card: A) -> Dh
where
    T: Transport + 'static,
    A: CardApplet + Send + 'static,
{
    let (tx, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(transport, config, card, tx));
    Dh {
        events,
        seen: Vec::new(),
        task,
    }
}

impl Dh {
    /// Wait for the next event that `want` accepts, failing the test after [`WAIT`].
    pub async fn wait_for(&mut self, what: &str, want: impl Fn(&DhEvent) -> bool) -> DhEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => {
                    self.seen.push(event.clone());
                    if want(&event) {
                        return event;
                    }
                }
                Ok(None) => panic!(
                    "device host stopped while waiting for {what}; events: {:?}",
                    self.seen
                ),
                Err(_) => panic!("no {what} within {WAIT:?}; events: {:?}", self.seen),
            }
        }
    }

    /// Wait for `Event::Ready`.
    pub async fn ready(&mut self) {
        self.wait_for("Ready", |e| *e == DhEvent::Ready).await;
    }

    /// Every event received so far, in order.
    pub fn seen(&self) -> &[DhEvent] {
        &self.seen
    }
}

async fn run<T, A>(
    mut transport: T,
    config: Config,
    mut card: A,
    events: mpsc::UnboundedSender<DhEvent>,
) -> Result<(), TransportError>
where
    T: Transport,
    A: CardApplet,
{
    let epoch = tokio::time::Instant::now();
    let now = move || {
        Instant::from_micros(u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    };
    let to_tokio = move |t: Instant| epoch + Duration::from_micros(t.total_micros());
    let mut ctl = Box::new(Controller::new(config));
    ctl.start(now());
    loop {
        // Outputs after every input, in the documented order: transmit, events, timer.
        loop {
            while let Some(packet) = ctl.poll_transmit() {
                transport.send(&packet).await?;
            }
            let mut answers = Vec::new();
            while let Some(event) = ctl.poll_event() {
                let owned = match event {
                    Event::Ready => DhEvent::Ready,
                    Event::Activated(a) => DhEvent::Activated(a.mode),
                    Event::Data(apdu) => {
                        let response = card.process(apdu);
                        answers.push(response.clone());
                        DhEvent::Apdu {
                            command: apdu.to_vec(),
                            response,
                        }
                    }
                    Event::Deactivated(d) => DhEvent::Deactivated(d.reason_str()),
                    Event::FieldOn => DhEvent::FieldOn,
                    Event::FieldOff => DhEvent::FieldOff,
                    Event::RoutingProgrammed { .. } => DhEvent::RoutingProgrammed,
                    Event::Reinitializing { cause, .. } => {
                        DhEvent::Reinitializing(cause.to_string())
                    }
                    Event::Error(e) => DhEvent::Error(e.to_string()),
                };
                let _ = events.send(owned);
            }
            if answers.is_empty() {
                break;
            }
            for answer in answers {
                if let Err(e) = ctl.send_data(&answer, now()) {
                    let _ = events.send(DhEvent::Error(format!("send_data: {e}")));
                }
            }
        }
        let deadline = ctl.poll_timeout().map(to_tokio);
        tokio::select! {
            packet = transport.recv() => {
                let packet = packet?;
                ctl.handle_packet(&packet, now());
            }
            () = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => pending().await,
                }
            } => ctl.handle_timeout(now()),
        }
    }
}

/// Await `f`, failing the test after [`WAIT`] instead of hanging.
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: not done within {WAIT:?}"),
    }
}

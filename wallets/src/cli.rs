//! Plumbing shared by the wallet binaries: logging to stderr (stdout belongs to the APDU trace
//! and to the test wallet's machine-readable lines) and orderly shutdown on SIGTERM/SIGINT.
//!
//! Nothing here talks to the daemon; see [`crate::registration`] for that.

use std::io;
use std::process::ExitCode;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::hex;
use crate::registration::{ApduHandler, Error, Registration, RegistrationHandle};

/// How long a wallet waits for `UnregisterService` on shutdown before exiting anyway; closing
/// the bus connection ends the registration in any case.
pub const UNREGISTER_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default `info` when `verbose`,
/// else `warn`).
pub fn init_tracing(verbose: bool) {
    let default = if verbose { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // A second initialisation (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .try_init();
}

/// SIGTERM and SIGINT, installed before a wallet registers so that a signal arriving right
/// after `READY` is not lost.
#[derive(Debug)]
pub struct ShutdownSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl ShutdownSignals {
    /// Installs the handlers. Must be called from within a tokio runtime.
    pub fn install() -> io::Result<Self> {
        Ok(ShutdownSignals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the first of the two signals and returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Registers `handler` and, with `default_category`, calls `SetDefaultService(category, id)`
/// with the registration's `Id`. If that second call fails the service is unregistered again,
/// so a wallet that asked to be the default never runs as a non-default one.
pub async fn register_service<H: ApduHandler>(
    registration: Registration,
    handler: H,
    default_category: Option<&str>,
) -> Result<RegistrationHandle, Error> {
    let id = registration.options().id.clone().unwrap_or_default();
    let handle = registration.register(handler).await?;
    if let Some(category) = default_category {
        if let Err(e) = handle.set_default_service(category, &id).await {
            unregister_on_exit(handle).await;
            return Err(e);
        }
    }
    Ok(handle)
}

/// Serves until SIGTERM or SIGINT, then unregisters: exit code 0. Or until the bus connection
/// closes (`dbus-daemon` gone), when nobody can reach the wallet any more and there is nothing
/// to unregister from: the loss is logged, exit code 1, for a service manager to restart it.
pub async fn serve_until_signal(
    handle: RegistrationHandle,
    signals: &mut ShutdownSignals,
) -> ExitCode {
    let conn = handle.connection().clone();
    tokio::select! {
        signal = signals.recv() => {
            tracing::info!("{signal}: shutting down");
            unregister_on_exit(handle).await;
            ExitCode::SUCCESS
        }
        () = conn.closed() => {
            tracing::error!("lost the connection to the D-Bus bus");
            ExitCode::FAILURE
        }
    }
}

/// Unregisters, bounded by [`UNREGISTER_TIMEOUT`], logging instead of failing: on the way out
/// there is nobody left to report to.
pub async fn unregister_on_exit(handle: RegistrationHandle) {
    match tokio::time::timeout(UNREGISTER_TIMEOUT, handle.unregister()).await {
        Ok(Ok(())) => tracing::info!("service unregistered"),
        Ok(Err(e)) => tracing::warn!("unregistering failed: {e}"),
        Err(_) => tracing::warn!("unregistering timed out"),
    }
}

/// Wraps a handler and prints every exchange on stdout (`C-APDU <hex>`, `R-APDU <hex>`,
/// `DEACTIVATED <reason>`): the `--verbose` trace of the example wallets.
#[derive(Debug)]
pub struct Traced<H> {
    inner: H,
}

impl<H> Traced<H> {
    /// Traces `inner`.
    pub fn new(inner: H) -> Self {
        Traced { inner }
    }
}

impl<H: ApduHandler> ApduHandler for Traced<H> {
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        println!("C-APDU {}", hex::encode_upper(apdu));
        let response = self.inner.process_apdu(apdu);
        println!("R-APDU {}", hex::encode_upper(&response));
        response
    }

    fn deactivated(&mut self, reason: &str) {
        println!("DEACTIVATED {reason}");
        self.inner.deactivated(reason);
    }
}

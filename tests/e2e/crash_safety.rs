//! `kill -9` of nfcd while it writes its state files.
//!
//! nfcd persists two files in its state directory, both with the same atomic write (temp file
//! in the same directory, fsync, rename, fsync of the directory; `nfcd::hce::store`):
//! `defaults.json` on every `SetDefaultService`, `identities.json` when a registration binds a
//! new Id. Here a client changes the default payment service in a tight loop (and registers
//! one new Id at a random point of it) while nfcd is killed with SIGKILL at a random moment,
//! over and over. After each kill, before nfcd starts again, both files must parse and hold the
//! last acknowledged state, or the one of the call in flight at the kill — never an empty,
//! partial or older one; the restarted nfcd must serve what is on disk.
//!
//! `NFCD_KILL_ITERATIONS` sets the number of kills (default [`DEFAULT_ITERATIONS`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use libnci::sim::XorShift64;
use nfcd::hce::store::{DefaultsStore, DEFAULTS_CORRUPT_FILE, DEFAULTS_FILE, DEFAULTS_TEMP_FILE};
use nfcd::identity::{IdentityStore, IDENTITIES_FILE, IDENTITIES_TEMP_FILE};
use nfcd_e2e::bus::Manager1Proxy;
use nfcd_e2e::rig::{Rig, RigOptions};
use nfcd_e2e::{within, WAIT};
use zbus::{Connection, ObjectPath, Variant};

/// Kills of a default run (doc/reliability.md has the figures of longer ones).
const DEFAULT_ITERATIONS: u64 = 30;
/// The kill comes this long after the client starts its loop, at most.
const MAX_KILL_DELAY_MS: u32 = 30;
/// The payment services whose Ids the client makes the default, in turn.
const PAYMENT_IDS: [&str; 3] = ["org.e2e.kill.a", "org.e2e.kill.b", "org.e2e.kill.c"];

/// What the client got done, as far as it knows.
#[derive(Debug, Default)]
struct Progress {
    /// The default of the last acknowledged `SetDefaultService`.
    acked_default: Option<String>,
    /// A `SetDefaultService` sent and not answered.
    pending_default: Option<String>,
    /// Ids whose registration (and so binding) was acknowledged.
    acked_ids: Vec<String>,
    /// An Id whose `RegisterService` was sent and not answered.
    pending_id: Option<String>,
    /// Acknowledged `SetDefaultService` calls, all iterations.
    writes: u64,
}

fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(PoisonError::into_inner)
}

fn registration(id: &str, aid: Vec<u8>, category: &str) -> HashMap<&'static str, Variant<'static>> {
    let mut options = HashMap::new();
    options.insert("Id", Variant::from(id.to_owned()));
    options.insert("Category", Variant::from(category.to_owned()));
    options.insert("Aids", Variant::from(vec![aid]));
    options
}

fn path(text: String) -> ObjectPath<'static> {
    ObjectPath::try_from(text).unwrap_or_else(|e| panic!("object path: {e}"))
}

/// The client's loop: `SetDefaultService("payment", …)` cycling through [`PAYMENT_IDS`], with
/// one `RegisterService` of `new_id` as step `register_at`; until a call fails (nfcd died).
async fn hammer(
    manager: Manager1Proxy<'static>,
    progress: Arc<Mutex<Progress>>,
    new_id: String,
    register_at: usize,
) {
    for step in 0.. {
        if step == register_at {
            lock(&progress).pending_id = Some(new_id.clone());
            let options = registration(&new_id, new_id_aid(&new_id), "other");
            let at = path(format!("/org/e2e/kill/{}", new_id.replace('.', "_")));
            if manager.register_service(&at, options).await.is_err() {
                return;
            }
            let mut p = lock(&progress);
            p.acked_ids.push(new_id.clone());
            p.pending_id = None;
            continue;
        }
        let id = PAYMENT_IDS[step % PAYMENT_IDS.len()];
        lock(&progress).pending_default = Some(id.to_owned());
        if manager.set_default_service("payment", id).await.is_err() {
            return;
        }
        let mut p = lock(&progress);
        p.acked_default = Some(id.to_owned());
        p.pending_default = None;
        p.writes += 1;
    }
}

/// A distinct 8-octet AID per new Id (its iteration number in the last octets).
fn new_id_aid(id: &str) -> Vec<u8> {
    let n: u32 = id
        .rsplit('n')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    [&[0xF0, 0xE2, 0xE0, 0x99][..], &n.to_be_bytes()].concat()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_state_writes_never_leaves_a_corrupt_or_stale_state() {
    let iterations = match std::env::var("NFCD_KILL_ITERATIONS") {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("NFCD_KILL_ITERATIONS={text:?} is not a number")),
        Err(_) => DEFAULT_ITERATIONS,
    };
    let mut rng = XorShift64::new(0x0C2A_5E5A);
    let mut rig = Rig::start(RigOptions::default()).await;
    let state = rig.state_dir().to_path_buf();
    // The client lives across nfcd's deaths, like a wallet would.
    let conn: Connection = rig.new_client().await;
    let progress = Arc::new(Mutex::new(Progress::default()));
    let (mut mid_write, mut landed, mut respawn_total) = (0u32, 0u32, Duration::ZERO);
    let started = Instant::now();

    for i in 0..iterations {
        // Registrations die with nfcd: register the payment services again.
        let manager = Manager1Proxy::new(&conn)
            .await
            .unwrap_or_else(|e| panic!("Manager1 proxy: {e}"));
        for (n, id) in PAYMENT_IDS.iter().enumerate() {
            let aid = vec![0xF0, 0xE2, 0xE0, 0x98, n as u8];
            let result = manager
                .register_service(
                    &path(format!("/org/e2e/kill/p{n}")),
                    registration(id, aid, "payment"),
                )
                .await;
            assert!(
                result.is_ok(),
                "iteration {i}: registering {id}: {result:?}"
            );
        }

        let new_id = format!("org.e2e.kill.n{i}");
        let register_at = rng.next_u32() as usize % 4;
        let task = tokio::spawn(hammer(manager, Arc::clone(&progress), new_id, register_at));
        let delay = Duration::from_millis(u64::from(rng.next_u32() % (MAX_KILL_DELAY_MS + 1)));
        tokio::time::sleep(delay).await;
        let old_owner = rig.kill_nfcd().await;
        within("the client noticing nfcd is gone", WAIT, task)
            .await
            .unwrap_or_else(|e| panic!("the client's loop: {e}"));

        // What is on disk, before anything starts again.
        if state.join(DEFAULTS_TEMP_FILE).exists() || state.join(IDENTITIES_TEMP_FILE).exists() {
            mid_write += 1;
        }
        let (acked, pending, acked_ids, pending_id) = {
            let p = lock(&progress);
            (
                p.acked_default.clone(),
                p.pending_default.clone(),
                p.acked_ids.clone(),
                p.pending_id.clone(),
            )
        };
        let defaults = DefaultsStore::new(&state)
            .load()
            .unwrap_or_else(|e| panic!("iteration {i}: {DEFAULTS_FILE}: {e}"));
        assert!(
            defaults.payment.is_some()
                && (defaults.payment == acked || defaults.payment == pending),
            "iteration {i}: {DEFAULTS_FILE} names {:?}; the last acknowledged default is \
             {acked:?}, the one in flight {pending:?}",
            defaults.payment
        );
        let identities = IdentityStore::load(&state)
            .unwrap_or_else(|e| panic!("iteration {i}: {IDENTITIES_FILE}: {e}"));
        for id in PAYMENT_IDS.iter().map(|s| s.to_string()).chain(acked_ids) {
            assert!(
                identities.get(&id).is_some(),
                "iteration {i}: {id} was bound and acknowledged, but {IDENTITIES_FILE} lacks it"
            );
        }
        assert!(!state.join(DEFAULTS_CORRUPT_FILE).exists());
        if pending.is_some() && defaults.payment == pending && pending != acked {
            // Written, renamed and synced, but killed before the reply went out.
            landed += 1;
        }
        // What is on disk is the truth from now on: the call in flight may have made it.
        {
            let mut p = lock(&progress);
            p.acked_default = defaults.payment.clone();
            p.pending_default = None;
            if let Some(id) = pending_id {
                if identities.get(&id).is_some() {
                    p.acked_ids.push(id);
                }
            }
            p.pending_id = None;
        }

        let respawn = Instant::now();
        rig.respawn_nfcd(old_owner).await;
        respawn_total += respawn.elapsed();
        let served = rig
            .manager()
            .default_services()
            .await
            .unwrap_or_else(|e| panic!("DefaultServices: {e}"));
        assert_eq!(
            served.get("payment"),
            defaults.payment.as_ref(),
            "iteration {i}: the restarted nfcd serves another default than its file holds"
        );
    }

    let writes = lock(&progress).writes;
    println!(
        "kill -9: {iterations} kills in {:.1} s ({} ms per restart); {writes} acknowledged \
         default writes; {mid_write} kills left a temp file behind (killed between its creation \
         and the rename); {landed} kills came after the write of the call in flight but before \
         its reply; every state file parsed and held the last acknowledged state or the one in \
         flight",
        started.elapsed().as_secs_f64(),
        respawn_total.as_millis() / u128::from(iterations.max(1)),
    );
    rig.finish().await;
}

//! Hostile wallets and clients: answers too big, empty or late; thousands of AIDs; reaching for
//! other clients' objects and Ids; forged options and argument types. Each gets a clear,
//! documented answer (a status word for the reader, an `org.nfcd.Error.*` for the client; the
//! limits are in doc/reliability.md), and the honest wallets next to them notice nothing.
//!
//! The reader's air time is off (`SimOptions::rf_timing`): 64 KiB responses would take seconds
//! of air at 106 kbit/s, and the reader would give up on them before the daemon had a say.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nfcd::hce::registry::{MAX_AIDS_PER_SERVICE, MAX_AIDS_TOTAL};
use nfcd::simhost::TapOutcome;
use nfcd_e2e::bus::{wait_registered, Manager1Proxy};
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{
    latency, no_air_time, service_ids, tap_options, Rig, RigOptions, Tuning, BUS_NAME,
};
use nfcd_e2e::scripts::{response_data, status_words, Apdus, GET_DATA_ATC, SW_NO_DIAGNOSIS, SW_OK};
use nfcd_e2e::{hex, unhex};
use zbus::{Connection, ObjectPath, Variant};

const INVALID_ARGUMENTS: &str = "org.nfcd.Error.InvalidArguments";
const INVALID_AID: &str = "org.nfcd.Error.InvalidAid";
const LIMIT_EXCEEDED: &str = "org.nfcd.Error.LimitExceeded";
const ALREADY_EXISTS: &str = "org.nfcd.Error.AlreadyExists";
const DOES_NOT_EXIST: &str = "org.nfcd.Error.DoesNotExist";
const NOT_AUTHORIZED: &str = "org.nfcd.Error.NotAuthorized";
/// What zbus answers a call whose arguments do not have the method's signature.
const FDO_INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";

/// Any refusal must come back at once, however big the request.
const QUICK: Duration = Duration::from_secs(2);
/// nfcd's peak resident set after a 12 MB request: the message and little more.
const PEAK_RSS_LIMIT_KIB: u64 = 64 * 1024;

/// `RegisterService` options serialized from plain values, so that a million AIDs cost the
/// client megabytes too (a generic D-Bus value per octet would cost it gigabytes).
struct PlainOptions {
    id: String,
    category: String,
    aids: Vec<Vec<u8>>,
}

impl zbus::wire::export::serde::Serialize for PlainOptions {
    fn serialize<S: zbus::wire::export::serde::Serializer>(
        &self,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        use zbus::as_variant::Serialize as AsVariant;
        use zbus::wire::export::serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("Id", &AsVariant(&self.id))?;
        map.serialize_entry("Category", &AsVariant(&self.category))?;
        map.serialize_entry("Aids", &AsVariant(&self.aids))?;
        map.end()
    }
}

impl zbus::Type for PlainOptions {
    const SIGNATURE: &'static zbus::Signature =
        <HashMap<String, zbus::OwnedVariant> as zbus::Type>::SIGNATURE;
}

/// The D-Bus error name of a failed call (`org.nfcd.Error.*` or `org.freedesktop.DBus.Error.*`).
fn error_of<T: std::fmt::Debug>(result: &zbus::Result<T>) -> String {
    match result {
        Ok(value) => format!("no error (got {value:?})"),
        Err(zbus::Error::MethodError(name, _, _)) => name.to_string(),
        Err(zbus::Error::FDO(e)) => zbus::DBusError::name(e.as_ref()).to_string(),
        Err(other) => format!("not a D-Bus error reply: {other}"),
    }
}

/// The error's message, for checking that it says what was wrong.
fn message_of<T>(result: &zbus::Result<T>) -> String {
    match result {
        Err(zbus::Error::MethodError(_, message, _)) => message.clone().unwrap_or_default(),
        Err(e) => e.to_string(),
        Ok(_) => String::new(),
    }
}

/// A client of its own on the test bus: not a wallet process, just a connection that calls
/// `Manager1` with whatever it likes.
async fn client(rig: &Rig) -> (Connection, Manager1Proxy<'static>) {
    let conn = rig.new_client().await;
    let manager = Manager1Proxy::new(&conn)
        .await
        .unwrap_or_else(|e| panic!("Manager1 proxy: {e}"));
    (conn, manager)
}

fn path(text: &str) -> ObjectPath<'static> {
    ObjectPath::try_from(text.to_owned()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Options of an `other` service with `aids`.
fn service(id: &str, aids: Vec<Vec<u8>>) -> HashMap<&'static str, Variant<'static>> {
    let mut options = HashMap::new();
    options.insert("Id", Variant::from(id.to_owned()));
    options.insert("Category", Variant::from("other"));
    options.insert("Aids", Variant::from(aids));
    options
}

/// `n` distinct 8-octet AIDs `F0 E2 <tag> 00 <i as 4 octets>`.
fn aids(tag: u8, n: usize) -> Vec<Vec<u8>> {
    (0..n as u32)
        .map(|i| [&[0xF0, 0xE2, tag, 0x00][..], &i.to_be_bytes()].concat())
        .collect()
}

/// Answers too big, empty and late. nfcd's per-APDU deadline is 500 ms here.
///
/// - 65 536 data octets + SW (65 538, the largest R-APDU, ISO/IEC 7816-4 §5.1) reach the reader
///   whole; one octet more is no R-APDU and the reader gets `6F00`; so does an empty answer.
/// - `late=2:750`: the second command is answered 750 ms late. The reader gets `6F00` at the
///   deadline; the late answer is dropped — over D-Bus and over the APDU channel — and the next
///   commands get their own answers (the echo of their own data), not the late one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_empty_and_late_answers_get_6f00_and_leave_the_next_apdu_alone() {
    const DEADLINE_MS: u32 = 500;
    let rig = Rig::start_tuned(
        RigOptions {
            apdu_deadline_ms: Some(DEADLINE_MS),
            ..RigOptions::default()
        },
        Tuning {
            sim: no_air_time(),
            ..Tuning::default()
        },
    )
    .await;
    let (largest, too_big, empty, late, late_channel) = (
        unhex("F0E2E0F001"),
        unhex("F0E2E0F002"),
        unhex("F0E2E0F003"),
        unhex("F0E2E0F004"),
        unhex("F0E2E0F005"),
    );
    let mut wallets = Vec::new();
    for (id, aid, behaviour, channel) in [
        ("org.e2e.largest", &largest, "huge=65536", false),
        ("org.e2e.toobig", &too_big, "huge=65537", false),
        ("org.e2e.empty", &empty, "empty", false),
        ("org.e2e.late", &late, "late=2:750", false),
        ("org.e2e.latechannel", &late_channel, "late=2:750", true),
    ] {
        let aid = hex(aid);
        let mut args = vec!["--aid", aid.as_str(), "--behaviour", behaviour];
        if channel {
            args.push("--channel");
        }
        wallets.push(rig.wallet(WalletKind::Test, id, &args).await);
    }
    let registered = service_ids(rig.manager()).await;

    let put = |data: &[u8]| {
        let mut apdu = vec![0x00, 0xDA, 0x01, 0x00, data.len() as u8];
        apdu.extend_from_slice(data);
        apdu
    };
    let (first, second) = (unhex("0102030405"), unhex("A1A2A3"));
    let mut script = Apdus::new("hostile answers")
        .select(&largest, SW_OK)
        .select(&too_big, SW_NO_DIAGNOSIS)
        .send(GET_DATA_ATC, SW_NO_DIAGNOSIS)
        .select(&empty, SW_NO_DIAGNOSIS);
    for aid in [&late, &late_channel] {
        script = script
            .select(aid, SW_OK)
            .send(put(&first), SW_NO_DIAGNOSIS)
            .select(aid, SW_OK)
            .send(put(&second), SW_OK);
    }
    let report = rig.tap_with(script.build(), tap_options()).await;
    assert_eq!(
        report.outcome,
        TapOutcome::Completed,
        "{:?}",
        report.outcome
    );

    // The largest R-APDU, whole: 00 01 02 … for 65 536 octets.
    let counted: Vec<u8> = (0..65_536usize).map(|i| i as u8).collect();
    assert_eq!(response_data(&report, 0), counted.as_slice());
    // Too big or empty: the status word alone.
    for i in [1, 2, 3] {
        assert_eq!(report.apdus[i].rsp, [0x6F, 0x00], "exchange {i}");
    }
    let deadline = Duration::from_millis(u64::from(DEADLINE_MS));
    for (base, what, aid) in [(4, "D-Bus", &late), (8, "APDU channel", &late_channel)] {
        let missed = latency(&report, base + 1);
        assert!(
            missed >= deadline && missed < deadline + Duration::from_millis(300),
            "{what}: 6F00 after {} ms, deadline {} ms",
            missed.as_millis(),
            deadline.as_millis()
        );
        // Each answer is the echo of its own command, never the late one's.
        assert_eq!(
            response_data(&report, base + 2),
            &aid[..],
            "{what}: SELECT echo"
        );
        assert_eq!(
            response_data(&report, base + 3),
            &second[..],
            "{what}: PUT DATA echo"
        );
    }
    assert_eq!(
        status_words(&report),
        [
            SW_OK,
            SW_NO_DIAGNOSIS,
            SW_NO_DIAGNOSIS,
            SW_NO_DIAGNOSIS,
            SW_OK,
            SW_NO_DIAGNOSIS,
            SW_OK,
            SW_OK,
            SW_OK,
            SW_NO_DIAGNOSIS,
            SW_OK,
            SW_OK
        ]
    );

    // None of it cost anyone a registration, and the next tap is an ordinary one.
    assert_eq!(service_ids(rig.manager()).await, registered);
    let report = rig
        .tap_with(
            Apdus::new("after")
                .select(&late_channel, SW_OK)
                .send(put(&first), SW_OK)
                .build(),
            tap_options(),
        )
        .await;
    assert_eq!(response_data(&report, 1), &first[..]);
    for mut wallet in wallets {
        wallet.stop().await;
    }
    rig.finish().await;
}

/// Thousands of AIDs: a list longer than a service may hold is refused by its length at once,
/// whatever its size; services up to the daemon's limit are accepted, and the one that would
/// pass it is refused with `LimitExceeded`; the wallet registered before keeps working, and
/// when the greedy client leaves every one of its AIDs goes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_aids_meet_the_documented_limits_and_spare_the_others() {
    let rig = Rig::start(RigOptions::default()).await;
    let bystander_aid = unhex("F0E2E0B0B0B0");
    let mut bystander = rig
        .wallet(
            WalletKind::Test,
            "org.e2e.bystander",
            &["--aid", &hex(&bystander_aid)],
        )
        .await;
    let (greedy, manager) = client(&rig).await;

    // A million AIDs in one 12 MB message (the bus passes up to 32 MiB): refused by the list's
    // length, at once, and nfcd reads it without holding more than the message (a generic
    // D-Bus value per AID octet would be over a gigabyte).
    let body = (
        path("/org/e2e/greedy/million"),
        PlainOptions {
            id: "org.e2e.greedy.million".to_owned(),
            category: "other".to_owned(),
            aids: aids(0xAA, 1_000_000),
        },
    );
    let started = Instant::now();
    let result = greedy
        .call_method(
            Some(BUS_NAME),
            "/org/nfcd",
            Some("org.nfcd.Manager1"),
            "RegisterService",
            &body,
        )
        .await;
    assert_eq!(error_of(&result), LIMIT_EXCEEDED, "a million AIDs");
    assert!(
        message_of(&result).contains("1000000 AIDs"),
        "{}",
        message_of(&result)
    );
    assert!(
        started.elapsed() < QUICK * 2,
        "a million AIDs took {:?}",
        started.elapsed()
    );
    let after_million = rig.nfcd_memory();
    println!("nfcd after a 12 MB RegisterService of a million AIDs: {after_million}");
    assert!(
        after_million.peak_rss_kib < PEAK_RSS_LIMIT_KIB,
        "nfcd peaked at {after_million}"
    );

    // One service, too many AIDs: 5 000 and 100 000 (1.2 MB of message).
    for n in [MAX_AIDS_PER_SERVICE + 1, 5_000, 100_000] {
        let started = Instant::now();
        let result = manager
            .register_service(
                &path("/org/e2e/greedy/big"),
                service("org.e2e.greedy.big", aids(0xBB, n)),
            )
            .await;
        assert_eq!(error_of(&result), LIMIT_EXCEEDED, "{n} AIDs: {result:?}");
        assert!(
            message_of(&result).contains(&MAX_AIDS_PER_SERVICE.to_string()),
            "the message names the limit: {}",
            message_of(&result)
        );
        assert!(
            started.elapsed() < QUICK,
            "{n} AIDs took {:?}",
            started.elapsed()
        );
    }

    // Full services until the daemon is full: the bystander holds 1 AID, so 15 services of 256
    // fit, a 16th of 256 does not, one of 255 does, and then not a single AID more.
    let full = MAX_AIDS_TOTAL / MAX_AIDS_PER_SERVICE - 1;
    for i in 0..full {
        let result = manager
            .register_service(
                &path(&format!("/org/e2e/greedy/s{i}")),
                service(
                    &format!("org.e2e.greedy.s{i}"),
                    aids(i as u8, MAX_AIDS_PER_SERVICE),
                ),
            )
            .await;
        assert!(result.is_ok(), "service {i}: {result:?}");
    }
    let over = manager
        .register_service(
            &path("/org/e2e/greedy/over"),
            service("org.e2e.greedy.over", aids(0xEE, MAX_AIDS_PER_SERVICE)),
        )
        .await;
    assert_eq!(error_of(&over), LIMIT_EXCEEDED, "{over:?}");
    assert!(
        message_of(&over).contains(&MAX_AIDS_TOTAL.to_string()),
        "the message names the daemon's limit: {}",
        message_of(&over)
    );
    let last = manager
        .register_service(
            &path("/org/e2e/greedy/last"),
            service("org.e2e.greedy.last", aids(0xEE, MAX_AIDS_PER_SERVICE - 1)),
        )
        .await;
    assert!(last.is_ok(), "{last:?}");
    let one_more = manager
        .register_service(
            &path("/org/e2e/greedy/one"),
            service("org.e2e.greedy.one", aids(0xEF, 1)),
        )
        .await;
    assert_eq!(error_of(&one_more), LIMIT_EXCEEDED, "{one_more:?}");
    let held: usize = manager
        .services()
        .await
        .unwrap_or_else(|e| panic!("Services: {e}"))
        .iter()
        .map(|s| s.aids.len() + s.prefix_aids.len() + s.subset_aids.len())
        .sum();
    assert_eq!(held, MAX_AIDS_TOTAL);
    println!("nfcd holding {MAX_AIDS_TOTAL} AIDs: {}", rig.nfcd_memory());

    // The bystander answers as before.
    let report = rig
        .tap_with(
            Apdus::new("bystander")
                .select(&bystander_aid, SW_OK)
                .build(),
            tap_options(),
        )
        .await;
    assert_eq!(response_data(&report, 0), b"org.e2e.bystander");

    // The greedy client leaves: all of its AIDs go, the bystander's stay.
    drop(manager);
    drop(greedy);
    nfcd_e2e::bus::wait_services(rig.manager(), "only the bystander left", |s| {
        s.len() == 1 && s[0].id == "org.e2e.bystander"
    })
    .await;
    bystander.stop().await;
    rig.finish().await;
}

/// Another client's object path and Id are out of reach: it cannot unregister, prefer, open a
/// channel for or re-register them, a registration at the same path is its own object, and
/// once the owner left its Id stays bound to the owner's program (trust on first use).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clients_path_and_id_are_out_of_reach() {
    let rig = Rig::start(RigOptions::default()).await;
    let aid = unhex("F0E2E0C0C0C0");
    let mut owner = rig
        .wallet(WalletKind::Test, "org.e2e.owner", &["--aid", &hex(&aid)])
        .await;
    let info = wait_registered(rig.manager(), "org.e2e.owner").await;
    let owners_path = info.path.clone();
    let (_squatter, manager) = client(&rig).await;

    let result = manager
        .register_service(
            &owners_path,
            service("org.e2e.owner", vec![unhex("F0E2E0C0C0C1")]),
        )
        .await;
    assert_eq!(
        error_of(&result),
        ALREADY_EXISTS,
        "the owner's Id: {result:?}"
    );
    let result = manager.unregister_service(&owners_path).await;
    assert_eq!(error_of(&result), DOES_NOT_EXIST, "unregister: {result:?}");
    let result = manager.set_preferred_service(&owners_path).await;
    assert_eq!(error_of(&result), DOES_NOT_EXIST, "prefer: {result:?}");
    let result = manager.open_apdu_channel(&owners_path).await;
    assert_eq!(error_of(&result), DOES_NOT_EXIST, "channel: {result:?}");

    // The same path on another connection is another object; the shared AID stays with the
    // service that registered it first (doc/manager-api.md, category other).
    let result = manager
        .register_service(&owners_path, service("org.e2e.squatter", vec![aid.clone()]))
        .await;
    assert!(result.is_ok(), "{result:?}");
    let report = rig
        .tap_with(
            Apdus::new("owner").select(&aid, SW_OK).build(),
            tap_options(),
        )
        .await;
    assert_eq!(response_data(&report, 0), b"org.e2e.owner");
    let result = manager.unregister_service(&owners_path).await;
    assert!(result.is_ok(), "its own: {result:?}");
    wait_registered(rig.manager(), "org.e2e.owner").await;

    // Gone, the owner's Id is still its program's.
    owner.stop().await;
    nfcd_e2e::bus::wait_unregistered(rig.manager(), "org.e2e.owner").await;
    let result = manager
        .register_service(&path("/org/e2e/squat"), service("org.e2e.owner", vec![aid]))
        .await;
    assert_eq!(error_of(&result), NOT_AUTHORIZED, "{result:?}");
    rig.finish().await;
}

/// Forged options and arguments beyond the ones `api.rs` tries: signed and odd numbers, nested
/// variants, other array types, megabytes of strings, thousands of keys, wrong method
/// signatures. Each is refused at once with its documented error; nothing is registered by any
/// of it; the honest wallet keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_options_and_arguments_get_clear_errors() {
    let rig = Rig::start(RigOptions::default()).await;
    let honest_aid = unhex("F0E2E0D0D0D0");
    let mut honest = rig
        .wallet(
            WalletKind::Test,
            "org.e2e.honest",
            &["--aid", &hex(&honest_aid)],
        )
        .await;
    let (conn, manager) = client(&rig).await;
    let good = || service("org.e2e.forged", vec![unhex("F0E2E0D1D1D1")]);
    let with = |key: &'static str, value: Variant<'static>| {
        let mut options = good();
        options.insert(key, value);
        options
    };
    let nested_aids = Variant::Variant(Box::new(Variant::from(vec![unhex("F0E2E0D1D1D1")])));
    let aau = Variant::from(vec![vec![0xF0u32, 0xE2, 0xE0, 0xD1, 0xD1]]);
    let keys: Vec<String> = (0..5_000).map(|i| format!("Key{i}")).collect();
    let many_keys = {
        let mut options: HashMap<&str, Variant<'static>> = good();
        for (i, key) in keys.iter().enumerate() {
            options.insert(key.as_str(), Variant::from(i as u32));
        }
        options
    };
    let long_key = "K".repeat(1 << 16);
    let mut with_long_key: HashMap<&str, Variant<'static>> = good();
    with_long_key.insert(long_key.as_str(), Variant::from(true));
    let cases: Vec<(&str, HashMap<&str, Variant<'static>>, &str)> = vec![
        (
            "RequiresUnlock as -1 (i)",
            with("RequiresUnlock", Variant::I32(-1)),
            INVALID_ARGUMENTS,
        ),
        (
            "Express as 1 (u)",
            with("Express", Variant::U32(1)),
            INVALID_ARGUMENTS,
        ),
        (
            "Express as \"true\"",
            with("Express", Variant::from("true")),
            INVALID_ARGUMENTS,
        ),
        (
            "Id as a number",
            with("Id", Variant::I64(-7)),
            INVALID_ARGUMENTS,
        ),
        (
            "Category in capitals",
            with("Category", Variant::from("OTHER")),
            INVALID_ARGUMENTS,
        ),
        (
            "Aids in a nested variant",
            with("Aids", nested_aids),
            INVALID_ARGUMENTS,
        ),
        ("Aids as aau", with("Aids", aau), INVALID_ARGUMENTS),
        (
            "Aids as one ay",
            with("Aids", Variant::from(unhex("F0E2E0D1D1D1"))),
            INVALID_ARGUMENTS,
        ),
        (
            "an empty AID",
            with("Aids", Variant::from(vec![Vec::<u8>::new()])),
            INVALID_AID,
        ),
        (
            "a 1 MiB AID",
            with("Aids", Variant::from(vec![vec![0xF0u8; 1 << 20]])),
            INVALID_AID,
        ),
        (
            "a 1 MiB Name",
            with("Name", Variant::from("N".repeat(1 << 20))),
            INVALID_ARGUMENTS,
        ),
        (
            "a Name with a control character",
            with("Name", Variant::from("Card\u{1b}[2J")),
            INVALID_ARGUMENTS,
        ),
        (
            "a 300-byte Id",
            with("Id", Variant::from(format!("org.{}", "e".repeat(296)))),
            INVALID_ARGUMENTS,
        ),
        (
            "a non-ASCII Id",
            with("Id", Variant::from("org.e2e.wället")),
            INVALID_ARGUMENTS,
        ),
        ("5 000 unknown keys", many_keys, INVALID_ARGUMENTS),
        ("a 64 KiB unknown key", with_long_key, INVALID_ARGUMENTS),
        (
            "100 000 prefix AIDs",
            with("PrefixAids", Variant::from(aids(0xD2, 100_000))),
            LIMIT_EXCEEDED,
        ),
    ];
    let forged = path("/org/e2e/forged");
    for (what, options, expected) in cases {
        let started = Instant::now();
        let result = manager.register_service(&forged, options).await;
        assert_eq!(error_of(&result), expected, "{what}: {result:?}");
        let message = message_of(&result);
        assert!(
            !message.is_empty() && message.len() < 1024,
            "{what}: a message of {} bytes",
            message.len()
        );
        assert!(
            started.elapsed() < QUICK,
            "{what} took {:?}",
            started.elapsed()
        );
    }

    // Wrong signatures: the bus binding refuses them before nfcd looks at them.
    let calls: Vec<(&str, zbus::Result<zbus::Message>)> = vec![
        (
            "RegisterService(s, a{sv})",
            conn.call_method(
                Some(BUS_NAME),
                "/org/nfcd",
                Some("org.nfcd.Manager1"),
                "RegisterService",
                &("/org/e2e/forged", good()),
            )
            .await,
        ),
        (
            "RegisterService(o)",
            conn.call_method(
                Some(BUS_NAME),
                "/org/nfcd",
                Some("org.nfcd.Manager1"),
                "RegisterService",
                &(forged.clone(),),
            )
            .await,
        ),
        (
            "SetDefaultService(u, s)",
            conn.call_method(
                Some(BUS_NAME),
                "/org/nfcd",
                Some("org.nfcd.Manager1"),
                "SetDefaultService",
                &(7u32, "org.e2e.honest"),
            )
            .await,
        ),
        (
            "UnregisterService(i)",
            conn.call_method(
                Some(BUS_NAME),
                "/org/nfcd",
                Some("org.nfcd.Manager1"),
                "UnregisterService",
                &(-1i32,),
            )
            .await,
        ),
    ];
    for (what, result) in calls {
        assert_eq!(error_of(&result), FDO_INVALID_ARGS, "{what}: {result:?}");
    }

    // The other methods, with odd values: a megabyte Id or category is refused without
    // being echoed back whole.
    for (what, category, id, expected) in [
        (
            "a 1 MiB Id",
            "payment".to_owned(),
            "x".repeat(1 << 20),
            INVALID_ARGUMENTS,
        ),
        (
            "a 1 MiB category",
            "p".repeat(1 << 20),
            "org.e2e.honest".to_owned(),
            INVALID_ARGUMENTS,
        ),
        (
            "a category with a space",
            "transit ".to_owned(),
            "org.e2e.honest".to_owned(),
            INVALID_ARGUMENTS,
        ),
        (
            "an unknown Id",
            "payment".to_owned(),
            "org.e2e.nobody".to_owned(),
            DOES_NOT_EXIST,
        ),
        // The honest service is of category other, not transit.
        (
            "another category's service",
            "transit".to_owned(),
            "org.e2e.honest".to_owned(),
            INVALID_ARGUMENTS,
        ),
    ] {
        let result = manager.set_default_service(&category, &id).await;
        assert_eq!(error_of(&result), expected, "{what}: {result:?}");
        assert!(
            message_of(&result).len() < 1024,
            "{what}: {}",
            message_of(&result).len()
        );
    }

    // Nothing registered by any of it; the honest wallet answers.
    assert_eq!(service_ids(&manager).await, ["org.e2e.honest"]);
    let report = rig
        .tap_with(
            Apdus::new("honest").select(&honest_aid, SW_OK).build(),
            tap_options(),
        )
        .await;
    assert_eq!(response_data(&report, 0), b"org.e2e.honest");
    honest.stop().await;
    rig.finish().await;
}

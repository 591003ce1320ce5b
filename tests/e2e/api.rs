//! The D-Bus API as clients see it: what `RegisterService` and friends refuse, with the exact
//! `org.nfcd.Error.*` names of doc/manager-api.md, and the running daemon's introspection
//! against the shipped `dbus/*.xml`.

use std::collections::HashMap;

use nfcd::dbus::introspect::compare_xml;
use nfcd::dbus::{ADAPTER1_XML, HOSTSERVICE1_XML, MANAGER1_XML};
use nfcd_e2e::bus::{error_name, introspect, wait_registered};
use nfcd_e2e::process::WalletKind;
use nfcd_e2e::rig::{Rig, RigOptions, BUS_NAME};
use nfcd_e2e::{unhex, WAIT};
use zbus::{ObjectPath, Variant};

const INVALID_ARGUMENTS: &str = "org.nfcd.Error.InvalidArguments";
const INVALID_AID: &str = "org.nfcd.Error.InvalidAid";
const LIMIT_EXCEEDED: &str = "org.nfcd.Error.LimitExceeded";
const DOES_NOT_EXIST: &str = "org.nfcd.Error.DoesNotExist";

/// Valid options: an `other` service with one 7-byte AID.
fn valid() -> HashMap<&'static str, Variant<'static>> {
    let mut options = HashMap::new();
    options.insert("Id", Variant::from("org.e2e.api"));
    options.insert("Category", Variant::from("other"));
    options.insert("Aids", Variant::from(vec![unhex("F0E2E0A1A1A1A1")]));
    options
}

fn with(key: &'static str, value: Variant<'static>) -> HashMap<&'static str, Variant<'static>> {
    let mut options = valid();
    options.insert(key, value);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_registrations_and_arguments_are_refused_by_name() {
    let rig = Rig::start(RigOptions::default()).await;
    let manager = rig.manager();
    let path = ObjectPath::try_from("/org/e2e/api").unwrap_or_else(|e| panic!("{e}"));
    let seventeen = vec![0xF0u8; 17];
    let cases: Vec<(&str, HashMap<&'static str, Variant<'static>>, &str)> = vec![
        (
            "4-byte AID",
            with("Aids", Variant::from(vec![unhex("F0E2E0A1")])),
            INVALID_AID,
        ),
        (
            "17-byte AID",
            with("Aids", Variant::from(vec![seventeen.clone()])),
            INVALID_AID,
        ),
        (
            "4-byte prefix AID",
            with("PrefixAids", Variant::from(vec![unhex("A0000000")])),
            INVALID_AID,
        ),
        (
            "an AID listed twice",
            with(
                "Aids",
                Variant::from(vec![unhex("F0E2E0A1A1"), unhex("F0E2E0A1A1")]),
            ),
            INVALID_AID,
        ),
        (
            "unknown option",
            with("Colour", Variant::from("blue")),
            INVALID_ARGUMENTS,
        ),
        (
            "AIDs as hex strings (as, not aay)",
            with("Aids", Variant::from(vec!["F0E2E0A1A1A1A1"])),
            INVALID_ARGUMENTS,
        ),
        (
            "Category of the wrong type",
            with("Category", Variant::from(true)),
            INVALID_ARGUMENTS,
        ),
        (
            "bad category",
            with("Category", Variant::from("banking")),
            INVALID_ARGUMENTS,
        ),
        ("empty Id", with("Id", Variant::from("")), INVALID_ARGUMENTS),
        (
            "Id not reverse-DNS",
            with("Id", Variant::from("wallet")),
            INVALID_ARGUMENTS,
        ),
        (
            "Express outside transit",
            with("Express", Variant::from(true)),
            INVALID_ARGUMENTS,
        ),
        (
            "more AIDs than a service may hold",
            with(
                "Aids",
                Variant::from(
                    (0..257u32)
                        .map(|i| [&[0xF0, 0xE2][..], &i.to_be_bytes()].concat())
                        .collect::<Vec<_>>(),
                ),
            ),
            LIMIT_EXCEEDED,
        ),
    ];
    for (what, options, expected) in cases {
        let result = manager.register_service(&path, options).await;
        assert_eq!(error_name(&result), expected, "{what}: {result:?}");
    }
    // Missing mandatory options.
    let mut no_id = valid();
    no_id.remove("Id");
    let result = manager.register_service(&path, no_id).await;
    assert_eq!(error_name(&result), INVALID_ARGUMENTS, "no Id: {result:?}");
    let mut no_aids = valid();
    no_aids.remove("Aids");
    let result = manager.register_service(&path, no_aids).await;
    assert_eq!(error_name(&result), INVALID_ARGUMENTS, "no AID: {result:?}");

    // The other methods.
    let result = manager.set_default_service("payment", "").await;
    assert_eq!(
        error_name(&result),
        INVALID_ARGUMENTS,
        "empty Id: {result:?}"
    );
    let result = manager.set_default_service("other", "org.e2e.api").await;
    assert_eq!(error_name(&result), INVALID_ARGUMENTS, "other: {result:?}");
    let result = manager
        .set_default_service("payment", "org.e2e.nobody")
        .await;
    assert_eq!(
        error_name(&result),
        DOES_NOT_EXIST,
        "unknown Id: {result:?}"
    );
    let result = manager.unregister_service(&path).await;
    assert_eq!(
        error_name(&result),
        DOES_NOT_EXIST,
        "not registered: {result:?}"
    );
    let result = manager.open_apdu_channel(&path).await;
    assert_eq!(
        error_name(&result),
        DOES_NOT_EXIST,
        "no service: {result:?}"
    );

    // A wallet process gets the same error and says so (wallets/README.md, test-wallet).
    let mut wallet = rig.spawn_wallet(WalletKind::Test, "org.e2e.short", &["--aid", "F0E2E0A1"]);
    let status = wallet.wait_exit(WAIT).await;
    assert_eq!(status.and_then(|s| s.code()), Some(2));
    assert_eq!(
        wallet.error().map(|(name, _)| name).as_deref(),
        Some(INVALID_AID)
    );

    // Nothing got registered by any of it.
    assert_eq!(manager.services().await.map(|s| s.len()).ok(), Some(0));
    rig.finish().await;
}

/// What the running daemon serves is what `dbus/*.xml` ships: Manager1 at `/org/nfcd`,
/// Adapter1 at `/org/nfcd/adapter0`, and HostService1 as a wallet exports it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_interfaces_match_the_shipped_introspection_xml() {
    let rig = Rig::start(RigOptions::default()).await;
    let conn = rig.conn();
    let manager_xml = introspect(conn, BUS_NAME, "/org/nfcd").await;
    if let Err(e) = compare_xml(&manager_xml, MANAGER1_XML, "org.nfcd.Manager1") {
        panic!("org.nfcd.Manager1: {e}\nserved:\n{manager_xml}");
    }
    let adapter_xml = introspect(conn, BUS_NAME, "/org/nfcd/adapter0").await;
    if let Err(e) = compare_xml(&adapter_xml, ADAPTER1_XML, "org.nfcd.Adapter1") {
        panic!("org.nfcd.Adapter1: {e}\nserved:\n{adapter_xml}");
    }

    let mut wallet = rig
        .wallet(
            WalletKind::Test,
            "org.e2e.introspect",
            &["--aid", "F0E2E0B1B1"],
        )
        .await;
    let info = wait_registered(rig.manager(), "org.e2e.introspect").await;
    let wallet_xml = introspect(conn, &info.owner, info.path.as_str()).await;
    if let Err(e) = compare_xml(&wallet_xml, HOSTSERVICE1_XML, "org.nfcd.HostService1") {
        panic!("org.nfcd.HostService1: {e}\nserved:\n{wallet_xml}");
    }

    wallet.stop().await;
    rig.finish().await;
}

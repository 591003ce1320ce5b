//! The shipped bus policy (dbus/org.nfcd.conf) on a system-style private bus: it parses, it
//! keeps the name org.nfcd from anyone but its user, and (when the tests run as root, so that
//! clients of another uid can be started) the default context may only read while group members
//! may call.

mod dbus_common;

mod dbus {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use nfcd::dbus::{
        serve, AdapterRequest, AdapterState, Error, ManagerRequest, ManagerState, BUS_NAME,
    };
    use zbus::fdo::RequestNameFlags;

    use crate::dbus_common::{within, TempDir, TestBus};

    fn shipped_policy() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbus/org.nfcd.conf")
    }

    /// A system bus as distributions configure it (deny by default, holes punched by included
    /// files), including `policy`.
    fn system_config(policy: &Path) -> String {
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={{dir}}/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
  </policy>
  <include>{}</include>
</busconfig>
"#,
            policy.display()
        )
    }

    #[tokio::test]
    async fn policy_parses_and_guards_the_name() {
        let policy = shipped_policy();
        assert!(policy.exists(), "{}", policy.display());
        let bus =
            TestBus::with_config(&system_config(&policy)).expect("bus starts with the policy");

        let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name);
        if me.as_deref() == Some("nfcd") {
            return;
        }
        let conn = bus.connect().await;
        match conn
            .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
            .await
        {
            Err(zbus::Error::FDO(e)) => {
                assert!(matches!(*e, zbus::fdo::Error::AccessDenied(_)), "{e:?}")
            }
            other => panic!("{me:?} could own {BUS_NAME}: {other:?}"),
        }
    }

    /// Run `dbus-send` as uid/gid 65534 with the given supplementary groups; its exit status and
    /// output.
    fn dbus_send_as_nobody(address: &str, groups: Option<&str>, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("setpriv");
        cmd.arg("--reuid=65534").arg("--regid=65534");
        match groups {
            Some(g) => cmd.arg(format!("--groups={g}")),
            None => cmd.arg("--clear-groups"),
        };
        cmd.arg("dbus-send")
            .arg(format!("--bus={address}"))
            .arg("--print-reply")
            .arg(format!("--dest={BUS_NAME}"))
            .args(args);
        let out = cmd.output().expect("run setpriv dbus-send");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Whether `tool` can be started at all (dbus-send has no `--version`).
    fn have(tool: &str) -> bool {
        Command::new(tool).arg("--help").output().is_ok()
    }

    #[tokio::test]
    async fn default_context_reads_group_calls() {
        if !nix::unistd::geteuid().is_root() || !have("setpriv") || !have("dbus-send") {
            eprintln!("needs root, setpriv and dbus-send to run clients as another user; skipped");
            return;
        }
        // The shipped policy with the daemon's user mapped to root (who runs this test) and the
        // client group mapped to "users" (gid 100).
        let tmp = TempDir::new("policy");
        let text = std::fs::read_to_string(shipped_policy()).expect("read policy");
        assert!(text.contains(r#"user="nfcd""#) && text.contains(r#"group="nfc""#));
        let policy = tmp.path().join("org.nfcd.conf");
        std::fs::write(
            &policy,
            text.replace(r#"user="nfcd""#, r#"user="root""#)
                .replace(r#"group="nfc""#, r#"group="users""#),
        )
        .expect("write policy");
        let bus = TestBus::with_config(&system_config(&policy)).expect("bus");
        // Let uid 65534 reach the socket in our temporary directory.
        for dir in [tmp.path(), bus.dir()] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }

        let (_served, mut requests) =
            serve(&bus.bus(), ManagerState::default(), AdapterState::default())
                .await
                .expect("root, standing in for nfcd, owns org.nfcd");
        let mut adapter_requests = requests.adapter;
        tokio::spawn(async move {
            while let Some(AdapterRequest::SetPowered { reply, .. }) = adapter_requests.recv().await
            {
                let _ = reply.send(Err(Error::NotReady("no controller".into())));
            }
        });
        tokio::spawn(async move {
            while let Some(req) = requests.manager.recv().await {
                if let ManagerRequest::UnregisterService { reply, .. } = req {
                    let _ = reply.send(Err(Error::DoesNotExist("no service at /w".into())));
                }
            }
        });

        let address = bus.address().to_owned();
        let run = |groups: Option<&'static str>, args: &'static [&'static str]| {
            let address = address.clone();
            tokio::task::spawn_blocking(move || dbus_send_as_nobody(&address, groups, args))
        };
        let get_powered: &[&str] = &[
            "/org/nfcd/adapter0",
            "org.freedesktop.DBus.Properties.Get",
            "string:org.nfcd.Adapter1",
            "string:Powered",
        ];
        let get_all: &[&str] = &[
            "/org/nfcd/adapter0",
            "org.freedesktop.DBus.Properties.GetAll",
            "string:org.nfcd.Adapter1",
        ];
        let managed: &[&str] = &[
            "/org/nfcd",
            "org.freedesktop.DBus.ObjectManager.GetManagedObjects",
        ];
        let introspect: &[&str] = &[
            "/org/nfcd",
            "org.freedesktop.DBus.Introspectable.Introspect",
        ];
        let set_powered: &[&str] = &[
            "/org/nfcd/adapter0",
            "org.freedesktop.DBus.Properties.Set",
            "string:org.nfcd.Adapter1",
            "string:Powered",
            "variant:boolean:true",
        ];
        let unregister: &[&str] = &[
            "/org/nfcd",
            "org.nfcd.Manager1.UnregisterService",
            "objpath:/w",
        ];

        for args in [get_powered, get_all, managed, introspect] {
            let (ok, out) = within(10, run(None, args)).await.expect("dbus-send");
            assert!(ok, "{args:?} denied to the default context: {out}");
        }
        for args in [set_powered, unregister] {
            let (ok, out) = within(10, run(None, args)).await.expect("dbus-send");
            assert!(!ok && out.contains("AccessDenied"), "{args:?}: {out}");
        }
        // A member of the group reaches the manager and the adapter (which answer for
        // themselves).
        let (ok, out) = within(10, run(Some("100"), unregister))
            .await
            .expect("dbus-send");
        assert!(!ok && out.contains("org.nfcd.Error.DoesNotExist"), "{out}");
        let (ok, out) = within(10, run(Some("100"), set_powered))
            .await
            .expect("dbus-send");
        assert!(!ok && out.contains("org.nfcd.Error.NotReady"), "{out}");
    }
}

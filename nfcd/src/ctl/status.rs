//! `nfcctl status`: the adapter's properties (`org.nfcd.Adapter1`) and the daemon's
//! (`org.nfcd.Manager1` `Version`, `DefaultServices`).
//!
//! Contract: one `GetAll` per object; a property the daemon does not have is shown as `-`
//! (`null` in JSON), and a missing adapter object shows every adapter field so.

use std::collections::BTreeMap;

use serde::Serialize;

use super::bus::{Client, ADAPTER_INTERFACE, ADAPTER_PATH, MANAGER_INTERFACE, MANAGER_PATH};
use super::error::CtlError;
use super::output::{dash, yes_no, Block, Output};
use super::value::Fields;

/// `org.nfcd.Adapter1` as shown by `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdapterStatus {
    /// `Powered`.
    pub powered: Option<bool>,
    /// `Present`.
    pub present: Option<bool>,
    /// `Transport`.
    pub transport: Option<String>,
    /// `Controller`.
    pub controller: Option<String>,
    /// `NciVersion`.
    pub nci_version: Option<String>,
    /// `ListenTechnologies`.
    pub listen_technologies: Option<Vec<String>>,
    /// `RoutingCapacity`, bytes (NCI "Max Routing Table Size").
    pub routing_capacity: Option<u32>,
    /// `FieldPresent`.
    pub field_present: Option<bool>,
}

impl AdapterStatus {
    /// Read the fields from `Adapter1`'s properties.
    pub fn from_properties(props: &Fields<'_>) -> AdapterStatus {
        AdapterStatus {
            powered: props.bool("Powered"),
            present: props.bool("Present"),
            transport: props.str("Transport"),
            controller: props.str("Controller"),
            nci_version: props.str("NciVersion"),
            listen_technologies: props.strings("ListenTechnologies"),
            routing_capacity: props.u32("RoutingCapacity"),
            field_present: props.bool("FieldPresent"),
        }
    }
}

/// `org.nfcd.Manager1` as shown by `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ManagerStatus {
    /// `Version` of nfcd.
    pub version: Option<String>,
    /// `DefaultServices`: category → service Id.
    pub default_services: Option<BTreeMap<String, String>>,
}

impl ManagerStatus {
    /// Read the fields from `Manager1`'s properties.
    pub fn from_properties(props: &Fields<'_>) -> ManagerStatus {
        ManagerStatus {
            version: props.str("Version"),
            default_services: props.string_map("DefaultServices"),
        }
    }
}

/// Everything `status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The adapter.
    pub adapter: AdapterStatus,
    /// The daemon.
    pub manager: ManagerStatus,
}

/// Fetch and print.
pub async fn run(client: &Client, json: bool, out: &Output) -> Result<(), CtlError> {
    let status = fetch(client).await?;
    if json {
        out.json(&status)
    } else {
        out.write(&render(&status))
    }
}

/// Read both objects.
pub async fn fetch(client: &Client) -> Result<Status, CtlError> {
    let adapter = client.properties(ADAPTER_PATH, ADAPTER_INTERFACE).await?;
    let manager = client.properties(MANAGER_PATH, MANAGER_INTERFACE).await?;
    let adapter = adapter.unwrap_or_default();
    let manager = manager.unwrap_or_default();
    Ok(Status {
        adapter: AdapterStatus::from_properties(&Fields::from_properties(&adapter)),
        manager: ManagerStatus::from_properties(&Fields::from_properties(&manager)),
    })
}

/// The human form.
pub fn render(status: &Status) -> String {
    let a = &status.adapter;
    let mut adapter = Block::new(format!("Adapter {ADAPTER_PATH}"));
    adapter.line("Powered", yes_no(a.powered));
    adapter.line("Present", yes_no(a.present));
    adapter.line("Transport", dash(a.transport.as_deref()));
    adapter.line("Controller", dash(a.controller.as_deref()));
    adapter.line("NCI version", dash(a.nci_version.as_deref()));
    adapter.line(
        "Listen technologies",
        match &a.listen_technologies {
            Some(t) if t.is_empty() => "none".to_owned(),
            Some(t) => t.join(", "),
            None => "-".to_owned(),
        },
    );
    adapter.line(
        "Routing capacity",
        a.routing_capacity
            .map_or_else(|| "-".to_owned(), |n| format!("{n} bytes")),
    );
    adapter.line("Field present", yes_no(a.field_present));

    let m = &status.manager;
    let mut manager = Block::new(format!("Daemon {MANAGER_PATH}"));
    manager.line("Version", dash(m.version.as_deref()));
    match &m.default_services {
        None => manager.line("Default services", "-"),
        Some(defaults) if defaults.is_empty() => manager.line("Default services", "none"),
        Some(defaults) => {
            for (category, id) in defaults {
                manager.line(format!("Default {category}"), id.clone());
            }
        }
    }
    format!("{}{}", adapter.render(), manager.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            adapter: AdapterStatus {
                powered: Some(true),
                present: Some(true),
                transport: Some("i2c:/dev/i2c-1@0x28".into()),
                controller: Some("NXP PN7150".into()),
                nci_version: Some("1.0".into()),
                listen_technologies: Some(vec!["nfc-a".into(), "nfc-b".into()]),
                routing_capacity: Some(720),
                field_present: None,
            },
            manager: ManagerStatus {
                version: Some("0.1.0".into()),
                default_services: Some(BTreeMap::from([(
                    "payment".to_owned(),
                    "com.example.pay".to_owned(),
                )])),
            },
        }
    }

    #[test]
    fn human_form() {
        assert_eq!(
            render(&sample()),
            "Adapter /org/nfcd/adapter0\n\
             \x20 Powered              yes\n\
             \x20 Present              yes\n\
             \x20 Transport            i2c:/dev/i2c-1@0x28\n\
             \x20 Controller           NXP PN7150\n\
             \x20 NCI version          1.0\n\
             \x20 Listen technologies  nfc-a, nfc-b\n\
             \x20 Routing capacity     720 bytes\n\
             \x20 Field present        -\n\
             Daemon /org/nfcd\n\
             \x20 Version          0.1.0\n\
             \x20 Default payment  com.example.pay\n"
        );
    }

    #[test]
    fn json_form_uses_null_for_missing() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(v["adapter"]["routing_capacity"], 720);
        assert_eq!(v["adapter"]["field_present"], serde_json::Value::Null);
        assert_eq!(
            v["manager"]["default_services"]["payment"],
            "com.example.pay"
        );
    }

    #[test]
    fn nothing_known_is_all_dashes() {
        let text = render(&Status::default());
        assert!(text.contains("Powered              -\n"), "{text}");
        assert!(text.contains("Default services  -\n"), "{text}");
    }
}

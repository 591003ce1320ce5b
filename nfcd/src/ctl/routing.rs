//! `nfcctl routing`: the listen-mode routing table the controller holds (`Adapter1`
//! `RoutingTable`, `RoutingMode`, `RoutingCapacity`, `RoutingUsed`).
//!
//! Contract: entries are read in both forms doc/nfcctl.md describes: the structure `a(ssyy)`
//! of doc/adapter-api.md (kind, value, NFCEE id, power state octet) and the dictionary
//! `aa{sv}` (`Type`, `Value`, `Target`, `Power`, `Blocked`), and shown alike. Route `0x00` is
//! the device host (NCI 2.0 §10.1 "NFCEE ID"); the power state octet is named after NCI 2.0
//! §6.3.2 ("Value Field for Power State"). Entries of another shape are skipped; missing
//! properties are shown as `-`.

use serde::Serialize;

use libnci::wire::routing::PowerState;

use super::bus::{Client, ADAPTER_INTERFACE, ADAPTER_PATH};
use super::error::CtlError;
use super::output::{dash, yes_no, Block, Output, Table};
use super::value::{as_array, as_str, as_struct, as_u64, Fields};
use zbus::Variant;

/// One routing entry as displayed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteEntry {
    /// `Type`: `technology`, `protocol`, `aid`, `system-code`, ...
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `Value`: `NFC-A`, `ISO-DEP`, or an AID in hex with `*` (prefix) / `#` (subset).
    pub value: Option<String>,
    /// `Target`: `host` or `nfcee:0xNN`.
    pub target: Option<String>,
    /// `Power`: the power states the entry applies in, e.g. `on,off,battery`.
    pub power: Option<String>,
    /// `Blocked`: the route is blocked (NCI 2.0 qualifier bit 6).
    pub blocked: Option<bool>,
}

impl RouteEntry {
    /// Read one entry in either form; `None` for a shape this client does not know.
    pub fn from_variant(v: &Variant<'_>) -> Option<RouteEntry> {
        if let Some(f) = Fields::from_dict(v) {
            return Some(RouteEntry {
                kind: f.str("Type"),
                value: f.str("Value"),
                target: f.str("Target"),
                power: f.str("Power"),
                blocked: f.bool("Blocked"),
            });
        }
        match as_struct(v)? {
            [kind, value, route, power] => Some(from_structure(
                &as_str(kind)?,
                &as_str(value)?,
                as_u64(route)?,
                as_u64(power)?,
            )),
            _ => None,
        }
    }
}

/// The `(ssyy)` form: kind (`technology`, `protocol`, `aid`, `aid-prefix`, `aid-subset`, ...),
/// value (`nfc-a`, `iso-dep`, hex), NFCEE id, power state octet.
fn from_structure(kind: &str, value: &str, route: u64, power: u64) -> RouteEntry {
    let (kind, value) = match kind {
        "aid-prefix" => ("aid".to_owned(), format!("{}*", value.to_uppercase())),
        "aid-subset" => ("aid".to_owned(), format!("{}#", value.to_uppercase())),
        other => (other.to_owned(), value.to_uppercase()),
    };
    RouteEntry {
        kind: Some(kind),
        value: Some(value),
        target: Some(target_name(route)),
        power: u8::try_from(power).ok().map(power_names),
        blocked: None,
    }
}

/// `host` for the device host (NFCEE id 0x00), `nfcee:0xNN` otherwise.
pub fn target_name(route: u64) -> String {
    if route == 0 {
        "host".to_owned()
    } else {
        format!("nfcee:0x{route:02X}")
    }
}

/// Short names of the power states in a power state octet (NCI 2.0 §6.3.2), comma separated;
/// bits without a name are shown in hex.
pub fn power_names(bits: u8) -> String {
    const NAMES: [(PowerState, &str); 6] = [
        (PowerState::SWITCHED_ON, "on"),
        (PowerState::SWITCHED_OFF, "off"),
        (PowerState::BATTERY_OFF, "battery"),
        (PowerState::SWITCHED_ON_SUB_STATE_1, "screen-off"),
        (PowerState::SWITCHED_ON_SUB_STATE_2, "screen-locked"),
        (PowerState::SWITCHED_ON_SUB_STATE_3, "screen-off-locked"),
    ];
    let state = PowerState::from_bits_retain(bits);
    let mut names: Vec<String> = NAMES
        .iter()
        .filter(|(s, _)| state.contains(*s))
        .map(|(_, n)| (*n).to_owned())
        .collect();
    let named = NAMES.iter().fold(0u8, |acc, (s, _)| acc | s.bits());
    let rest = bits & !named;
    if rest != 0 {
        names.push(format!("0x{rest:02X}"));
    }
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(",")
    }
}

/// Everything `routing` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Routing {
    /// `RoutingMode`: `mixed`, `protocol` or `technology`.
    pub mode: Option<String>,
    /// `RoutingCapacity`, bytes.
    pub capacity: Option<u32>,
    /// `RoutingUsed`, bytes.
    pub used: Option<u32>,
    /// `RoutingTable`; `None` when the property is missing.
    pub entries: Option<Vec<RouteEntry>>,
}

impl Routing {
    /// Read from `Adapter1`'s properties.
    pub fn from_properties(f: &Fields<'_>) -> Routing {
        Routing {
            mode: f.str("RoutingMode"),
            capacity: f.u32("RoutingCapacity"),
            used: f.u32("RoutingUsed"),
            entries: f
                .get("RoutingTable")
                .and_then(as_array)
                .map(|a| a.iter().filter_map(RouteEntry::from_variant).collect()),
        }
    }
}

/// Fetch and print.
pub async fn run(client: &Client, json: bool, out: &Output) -> Result<(), CtlError> {
    let props = client
        .properties(ADAPTER_PATH, ADAPTER_INTERFACE)
        .await?
        .ok_or_else(|| CtlError::Unsupported {
            what: format!("nfcd does not serve {ADAPTER_INTERFACE} at {ADAPTER_PATH}"),
        })?;
    let routing = Routing::from_properties(&Fields::from_properties(&props));
    if json {
        out.json(&routing)
    } else {
        out.write(&render(&routing))
    }
}

/// The human form: a summary block, then the entries in the controller's order.
pub fn render(r: &Routing) -> String {
    let mut head = Block::new("");
    head.line("Routing mode", dash(r.mode.as_deref()));
    let size = match (r.used, r.capacity) {
        (Some(used), Some(cap)) => format!("{used} of {cap} bytes used"),
        (None, Some(cap)) => format!("{cap} bytes capacity"),
        (Some(used), None) => format!("{used} bytes used"),
        (None, None) => "-".to_owned(),
    };
    head.line("Table size", size);
    let mut text = head.render();
    text.push('\n');
    match &r.entries {
        None => text.push_str("Routing table: -\n"),
        Some(entries) if entries.is_empty() => text.push_str("No routing entries.\n"),
        Some(entries) => {
            let mut table = Table::new(&["TYPE", "VALUE", "TARGET", "POWER", "BLOCKED"]);
            for e in entries {
                table.push(vec![
                    dash(e.kind.as_deref()),
                    dash(e.value.as_deref()),
                    dash(e.target.as_deref()),
                    dash(e.power.as_deref()),
                    yes_no(e.blocked),
                ]);
            }
            text.push_str(&table.render());
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::value::test_support::dict;
    use zbus::Structure;

    #[test]
    fn dictionary_entries() {
        let v = dict(vec![
            ("Type", "protocol".into()),
            ("Value", "ISO-DEP".into()),
            ("Target", "host".into()),
            ("Power", "on,off,battery".into()),
            ("Blocked", false.into()),
        ]);
        assert_eq!(
            RouteEntry::from_variant(&v),
            Some(RouteEntry {
                kind: Some("protocol".into()),
                value: Some("ISO-DEP".into()),
                target: Some("host".into()),
                power: Some("on,off,battery".into()),
                blocked: Some(false),
            })
        );
    }

    #[test]
    fn structure_entries() {
        // (kind, value, NFCEE id, power state): an AID prefix routed to the eSE 0xC0 when
        // switched on, and ISO-DEP to the host in every NCI 2.0 state.
        let aid = Variant::from(
            Structure::builder()
                .add_field("aid-prefix")
                .add_field("a000000004")
                .add_field(0xC0u8)
                .add_field(0x01u8)
                .build()
                .unwrap(),
        );
        let iso_dep = Variant::from(
            Structure::builder()
                .add_field("protocol")
                .add_field("iso-dep")
                .add_field(0x00u8)
                .add_field(0x3Fu8)
                .build()
                .unwrap(),
        );
        let a = RouteEntry::from_variant(&aid).unwrap();
        assert_eq!(a.kind.as_deref(), Some("aid"));
        assert_eq!(a.value.as_deref(), Some("A000000004*"));
        assert_eq!(a.target.as_deref(), Some("nfcee:0xC0"));
        assert_eq!(a.power.as_deref(), Some("on"));
        assert_eq!(a.blocked, None);
        let p = RouteEntry::from_variant(&iso_dep).unwrap();
        assert_eq!(p.value.as_deref(), Some("ISO-DEP"));
        assert_eq!(p.target.as_deref(), Some("host"));
        assert_eq!(
            p.power.as_deref(),
            Some("on,off,battery,screen-off,screen-locked,screen-off-locked")
        );
        // Neither form.
        assert_eq!(RouteEntry::from_variant(&Variant::from(7u32)), None);
    }

    #[test]
    fn power_state_names() {
        assert_eq!(power_names(0x07), "on,off,battery");
        assert_eq!(power_names(0x00), "none");
        assert_eq!(power_names(0x41), "on,0x40");
    }

    #[test]
    fn human_form() {
        let r = Routing {
            mode: Some("mixed".into()),
            capacity: Some(720),
            used: Some(12),
            entries: Some(vec![
                RouteEntry {
                    kind: Some("protocol".into()),
                    value: Some("ISO-DEP".into()),
                    target: Some("host".into()),
                    power: Some("on".into()),
                    blocked: Some(false),
                },
                RouteEntry {
                    kind: Some("technology".into()),
                    value: Some("NFC-A".into()),
                    target: Some("host".into()),
                    power: None,
                    blocked: None,
                },
            ]),
        };
        assert_eq!(
            render(&r),
            "Routing mode  mixed\n\
             Table size    12 of 720 bytes used\n\
             \n\
             TYPE        VALUE    TARGET  POWER  BLOCKED\n\
             protocol    ISO-DEP  host    on     no\n\
             technology  NFC-A    host    -      -\n"
        );
        let empty = render(&Routing::default());
        assert!(empty.ends_with("Routing table: -\n"), "{empty}");
    }
}

//! `nfcctl services` (the `Manager1.Services` property) and `nfcctl set-default`
//! (`Manager1.SetDefaultService`).
//!
//! Contract: `Services` is read as `aa{sv}` with the keys of doc/nfcctl.md ("Services"); every
//! key may be missing and is then shown as `-`. When a record has no `Default` key, whether
//! the service is its category's default is taken from the `DefaultServices` property.
//! AIDs are shown in hex, prefix AIDs with a `*` suffix and subset AIDs with `#`, the
//! notation of the routing table.

use std::collections::BTreeMap;

use serde::Serialize;

use super::bus::{Client, MANAGER_INTERFACE, MANAGER_PATH};
use super::error::CtlError;
use super::output::{dash, Output, Table};
use super::value::{as_array, hex, Fields};

/// One registered service as `services` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceEntry {
    /// `Id`: stable reverse-DNS id.
    pub id: Option<String>,
    /// `Name`: display name.
    pub name: Option<String>,
    /// `Category`: `payment`, `transit` or `other`.
    pub category: Option<String>,
    /// `Owner`: unique bus name of the registering client.
    pub owner: Option<String>,
    /// `Path`: where the owner exports `org.nfcd.HostService1`.
    pub path: Option<String>,
    /// `Uid`: user id of the owner process.
    pub uid: Option<u32>,
    /// `Exe`: executable of the owner process.
    pub exe: Option<String>,
    /// `ExeSha256`: SHA-256 of that executable, hex.
    pub exe_sha256: Option<String>,
    /// `Aids`: exact-match AIDs, hex.
    pub aids: Option<Vec<String>>,
    /// `PrefixAids`: prefix-match AIDs, hex.
    pub prefix_aids: Option<Vec<String>>,
    /// `SubsetAids`: subset-match AIDs, hex.
    pub subset_aids: Option<Vec<String>>,
    /// `RequiresUnlock`: only reachable while the device is unlocked.
    pub requires_unlock: Option<bool>,
    /// `Express`: transit express mode (works while locked).
    pub express: Option<bool>,
    /// `Default`: the default service of its category.
    pub default: Option<bool>,
    /// `Preferred`: the preferred service (`SetPreferredService`).
    pub preferred: Option<bool>,
}

impl ServiceEntry {
    /// Read one `a{sv}` record. `defaults` (category → Id, from `DefaultServices`) fills in
    /// `default` when the record has no `Default` key.
    pub fn from_fields(f: &Fields<'_>, defaults: Option<&BTreeMap<String, String>>) -> Self {
        let aids = |key: &str| {
            f.byte_lists(key)
                .map(|list| list.iter().map(|aid| hex(aid)).collect::<Vec<_>>())
        };
        let id = f.str("Id");
        let category = f.str("Category");
        let default = f.bool("Default").or_else(|| {
            let (defaults, category, id) = (defaults?, category.as_ref()?, id.as_ref()?);
            Some(defaults.get(category) == Some(id))
        });
        ServiceEntry {
            name: f.str("Name"),
            owner: f.str("Owner"),
            path: f.str("Path"),
            uid: f.u32("Uid"),
            exe: f.str("Exe"),
            exe_sha256: f.str("ExeSha256"),
            aids: aids("Aids"),
            prefix_aids: aids("PrefixAids"),
            subset_aids: aids("SubsetAids"),
            requires_unlock: f.bool("RequiresUnlock"),
            express: f.bool("Express"),
            preferred: f.bool("Preferred"),
            default,
            id,
            category,
        }
    }

    /// The flags that are set, by name.
    fn flags(&self) -> Vec<&'static str> {
        [
            (self.default, "default"),
            (self.preferred, "preferred"),
            (self.express, "express"),
            (self.requires_unlock, "unlock"),
        ]
        .into_iter()
        .filter_map(|(set, name)| (set == Some(true)).then_some(name))
        .collect()
    }

    /// All AIDs in routing notation (`HEX`, `HEX*`, `HEX#`); `None` when no AID key is present.
    fn aid_cells(&self) -> Option<Vec<String>> {
        if self.aids.is_none() && self.prefix_aids.is_none() && self.subset_aids.is_none() {
            return None;
        }
        let with = |list: &Option<Vec<String>>, suffix: &str| {
            list.iter()
                .flatten()
                .map(|a| format!("{a}{suffix}"))
                .collect::<Vec<_>>()
        };
        let mut cells = with(&self.aids, "");
        cells.extend(with(&self.prefix_aids, "*"));
        cells.extend(with(&self.subset_aids, "#"));
        Some(cells)
    }
}

/// Read the `Services` property (and `DefaultServices` for the default flag).
pub async fn fetch(client: &Client) -> Result<Vec<ServiceEntry>, CtlError> {
    let props = client
        .properties(MANAGER_PATH, MANAGER_INTERFACE)
        .await?
        .ok_or_else(|| CtlError::Unsupported {
            what: format!("nfcd does not serve {MANAGER_INTERFACE} at {MANAGER_PATH}"),
        })?;
    let fields = Fields::from_properties(&props);
    let defaults = fields.string_map("DefaultServices");
    let records = fields
        .get("Services")
        .and_then(as_array)
        .ok_or_else(|| CtlError::BadReply {
            what: "Manager1 has no Services property of type aa{sv}".to_owned(),
        })?;
    Ok(records
        .iter()
        .filter_map(Fields::from_dict)
        .map(|f| ServiceEntry::from_fields(&f, defaults.as_ref()))
        .collect())
}

/// Fetch and print.
pub async fn run(client: &Client, json: bool, out: &Output) -> Result<(), CtlError> {
    let services = fetch(client).await?;
    if json {
        out.json(&services)
    } else {
        out.write(&render(&services))
    }
}

/// The human form: one row per service, one continuation row per further AID.
pub fn render(services: &[ServiceEntry]) -> String {
    if services.is_empty() {
        return "No services registered.\n".to_owned();
    }
    let mut table = Table::new(&[
        "ID", "CATEGORY", "NAME", "OWNER", "UID", "EXE", "SHA256", "FLAGS", "AIDS",
    ]);
    for s in services {
        let flags = s.flags();
        let aids = s.aid_cells();
        let first_aid = match &aids {
            None => "-".to_owned(),
            Some(a) if a.is_empty() => "none".to_owned(),
            Some(a) => a.first().cloned().unwrap_or_default(),
        };
        table.push(vec![
            dash(s.id.as_deref()),
            dash(s.category.as_deref()),
            dash(s.name.as_deref()),
            dash(s.owner.as_deref()),
            dash(s.uid),
            dash(s.exe.as_deref()),
            dash(s.exe_sha256.as_deref().map(short_digest)),
            if flags.is_empty() {
                "-".to_owned()
            } else {
                flags.join(",")
            },
            first_aid,
        ]);
        for aid in aids.iter().flatten().skip(1) {
            let mut row = vec![String::new(); 8];
            row.push(aid.clone());
            table.push(row);
        }
    }
    table.render()
}

/// The first 12 hex digits of a digest: enough to tell builds apart at a glance (`--json` has
/// all of it).
fn short_digest(digest: &str) -> String {
    digest.chars().take(12).collect()
}

/// What `set-default` prints with `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefaultSet<'a> {
    /// The category.
    pub category: &'a str,
    /// Its new default service.
    pub id: &'a str,
}

/// `Manager1.SetDefaultService(category, id)`.
pub async fn set_default(
    client: &Client,
    category: &str,
    id: &str,
    json: bool,
    out: &Output,
) -> Result<(), CtlError> {
    let manager = client.manager().await?;
    manager
        .set_default_service(category, id)
        .await
        .map_err(|e| {
            client.error(e, || {
                format!("nfcd does not offer {MANAGER_INTERFACE}.SetDefaultService")
            })
        })?;
    if json {
        out.json(&DefaultSet { category, id })
    } else {
        out.write(&format!("Default {category} service is now {id}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::value::test_support::dict;
    use zbus::ObjectPath;

    #[test]
    fn full_record_and_derived_default() {
        let full = dict(vec![
            ("Id", "com.example.pay".into()),
            ("Name", "Example Pay".into()),
            ("Category", "payment".into()),
            ("Owner", ":1.42".into()),
            (
                "Path",
                ObjectPath::try_from("/com/example/pay").unwrap().into(),
            ),
            ("Uid", 1000u32.into()),
            ("Exe", "/usr/bin/example-pay".into()),
            ("ExeSha256", "3f2a9c0d11e5b7a6c4d2e8f0a1b3c5d7".into()),
            (
                "Aids",
                vec![
                    vec![0xA0u8, 0, 0, 0, 0x04, 0x10, 0x10],
                    vec![0xA0, 0, 0, 0, 0x03, 0x10, 0x10],
                ]
                .into(),
            ),
            ("PrefixAids", Vec::<Vec<u8>>::new().into()),
            ("SubsetAids", vec![vec![0xF0u8, 1, 2, 3, 4]].into()),
            ("RequiresUnlock", true.into()),
            ("Express", false.into()),
            ("Preferred", false.into()),
        ]);
        let defaults = BTreeMap::from([("payment".to_owned(), "com.example.pay".to_owned())]);
        let entry = ServiceEntry::from_fields(&Fields::from_dict(&full).unwrap(), Some(&defaults));
        assert_eq!(entry.default, Some(true));
        assert_eq!(entry.uid, Some(1000));
        assert_eq!(entry.path.as_deref(), Some("/com/example/pay"));
        assert_eq!(
            entry.aid_cells(),
            Some(vec![
                "A0000000041010".to_owned(),
                "A0000000031010".to_owned(),
                "F001020304#".to_owned()
            ])
        );

        let sparse = dict(vec![
            ("Id", "org.example.notes".into()),
            ("Category", "other".into()),
            (
                "PrefixAids",
                vec![vec![0xF0u8, 0x4E, 0x46, 0x43, 0x44]].into(),
            ),
        ]);
        let sparse = ServiceEntry::from_fields(&Fields::from_dict(&sparse).unwrap(), None);
        assert_eq!(sparse.default, None);

        let text = render(&[entry, sparse]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ID                 CATEGORY  NAME         OWNER  UID   EXE                   SHA256        FLAGS           AIDS"
        );
        assert_eq!(
            lines[1],
            "com.example.pay    payment   Example Pay  :1.42  1000  /usr/bin/example-pay  3f2a9c0d11e5  default,unlock  A0000000041010"
        );
        // Further AIDs of a service: continuation rows, blank but for the AIDS column.
        let aids_at = lines[0].find("AIDS").unwrap();
        for (line, aid) in [(lines[2], "A0000000031010"), (lines[3], "F001020304#")] {
            assert_eq!(line.split_at(aids_at), (" ".repeat(aids_at).as_str(), aid));
        }
        assert_eq!(
            lines[4],
            "org.example.notes  other     -            -      -     -                     -             -               F04E464344*"
        );
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn explicit_default_key_wins() {
        let r = dict(vec![
            ("Id", "com.example.pay".into()),
            ("Category", "payment".into()),
            ("Default", false.into()),
        ]);
        let defaults = BTreeMap::from([("payment".to_owned(), "com.example.pay".to_owned())]);
        let e = ServiceEntry::from_fields(&Fields::from_dict(&r).unwrap(), Some(&defaults));
        assert_eq!(e.default, Some(false));
    }

    #[test]
    fn empty_list() {
        assert_eq!(render(&[]), "No services registered.\n");
    }

    #[test]
    fn json_keys() {
        let e = ServiceEntry {
            id: Some("a.b".into()),
            aids: Some(vec!["A000000004".into()]),
            ..ServiceEntry::default()
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["id"], "a.b");
        assert_eq!(v["aids"][0], "A000000004");
        assert_eq!(v["exe_sha256"], serde_json::Value::Null);
    }
}

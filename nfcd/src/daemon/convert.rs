//! Translations between the layers' own types: configuration → controller and registry
//! settings, D-Bus requests → HCE options, HCE errors → D-Bus errors, controller state →
//! D-Bus properties. No behaviour lives here.

use std::collections::BTreeMap;

use libnci::controller::{self, ListenTechs, Param};
use libnci::wire::routing::{Qualifiers, RoutingEntryRepr};
use libnci::wire::{RfProtocol, RfTechnology};
use nix::unistd::{Group, User};

use crate::config::{self, AccessConfig, Config, ListenConfig, Technology};
use crate::dbus::{self, RegisterRequest, RoutingEntry, ServiceInfo};
use crate::hce::registry::{parse_aid_list, AidKind, Principal};
use crate::hce::{AccessPolicy, Category, Defaults, RegisterError, Registry, ServiceOptions};
use crate::hex;
use crate::identity::IdentityStore;

/// Resolve the configured user and group names to ids (done once at start).
pub fn access_policy(access: &AccessConfig) -> Result<AccessPolicy, String> {
    let resolve = |list: &[config::Principal]| -> Result<Vec<Principal>, String> {
        list.iter()
            .map(|p| match p {
                config::Principal::Uid(uid) => Ok(Principal::Uid(*uid)),
                config::Principal::Gid(gid) => Ok(Principal::Gid(*gid)),
                config::Principal::User(name) => match User::from_name(name) {
                    Ok(Some(user)) => Ok(Principal::Uid(user.uid.as_raw())),
                    Ok(None) => Err(format!("user {name:?} does not exist")),
                    Err(e) => Err(format!("looking up user {name:?}: {e}")),
                },
                config::Principal::Group(name) => match Group::from_name(name) {
                    Ok(Some(group)) => Ok(Principal::Gid(group.gid.as_raw())),
                    Ok(None) => Err(format!("group {name:?} does not exist")),
                    Err(e) => Err(format!("looking up group {name:?}: {e}")),
                },
            })
            .collect()
    };
    Ok(AccessPolicy {
        payment: resolve(&access.payment)?,
        transit: resolve(&access.transit)?,
    })
}

/// The controller configuration for the daemon's settings.
pub fn controller_config(config: &Config) -> controller::Config {
    let mut out = controller::Config {
        listen: listen_techs(&config.listen),
        fwi: Some(config.listen.li_a_rats_tb1 >> 4),
        sfgi: config.listen.li_a_rats_tb1 & 0x0F,
        ..controller::Config::default()
    };
    if !config.listen.historical_bytes.is_empty() {
        out.historical_bytes = heapless::Vec::from_slice(&config.listen.historical_bytes).ok();
    }
    for tlv in config.nxp.tlvs() {
        match Param::nxp(tlv.tag, &tlv.value) {
            Ok(param) => {
                if controller::set_param(&mut out.nxp_params, param).is_err() {
                    tracing::warn!("too many NXP parameters; 0x{:04X} left out", tlv.tag);
                }
            }
            Err(e) => tracing::warn!("NXP parameter 0x{:04X} left out: {e}", tlv.tag),
        }
    }
    out
}

/// The listen technologies of the configuration.
pub fn listen_techs(listen: &ListenConfig) -> ListenTechs {
    let has = |t| listen.technologies.contains(&t);
    ListenTechs {
        a: has(Technology::A),
        b: has(Technology::B),
        f: has(Technology::F),
    }
}

/// `ListenTechnologies` property values.
pub fn listen_names(listen: &ListenConfig) -> Vec<String> {
    listen
        .technologies
        .iter()
        .map(|t| match t {
            Technology::A => "nfc-a",
            Technology::B => "nfc-b",
            Technology::F => "nfc-f",
        })
        .map(str::to_owned)
        .collect()
}

/// `DefaultServices` property value.
pub fn default_services(defaults: &Defaults) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(id) = &defaults.payment {
        out.insert(Category::Payment.as_str().to_owned(), id.clone());
    }
    if let Some(id) = &defaults.transit {
        out.insert(Category::Transit.as_str().to_owned(), id.clone());
    }
    out
}

/// `RegisterService` options as HCE options (AID validation happens here, in the registry's
/// own parser, so the limits live in one place).
pub fn service_options(request: &RegisterRequest) -> Result<ServiceOptions, dbus::Error> {
    let category: Category =
        request
            .category
            .parse()
            .map_err(|e: crate::hce::registry::ParseCategoryError| {
                dbus::Error::InvalidArguments(format!("Category: {}", e.0))
            })?;
    let mut options = ServiceOptions::new(request.id.clone(), category);
    options.name = request.name.clone();
    options.aids = parse_aid_list(AidKind::Exact, &request.aids).map_err(register_error)?;
    options.prefix_aids =
        parse_aid_list(AidKind::Prefix, &request.prefix_aids).map_err(register_error)?;
    options.subset_aids =
        parse_aid_list(AidKind::Subset, &request.subset_aids).map_err(register_error)?;
    if let Some(requires_unlock) = request.requires_unlock {
        options.requires_unlock = requires_unlock;
    }
    options.express = request.express;
    Ok(options)
}

/// A category name from a D-Bus argument called `what`.
pub fn category(name: &str, what: &str) -> Result<Category, dbus::Error> {
    name.parse()
        .map_err(|e: crate::hce::registry::ParseCategoryError| {
            dbus::Error::InvalidArguments(format!("{what}: {}", e.0))
        })
}

/// The registry's view of a D-Bus caller.
pub fn hce_caller(caller: &dbus::Caller) -> crate::hce::Caller {
    crate::hce::Caller {
        uid: caller.uid,
        gids: caller.gids.clone(),
    }
}

/// The D-Bus error for a registry refusal; the message is the registry's own text.
pub fn register_error(e: RegisterError) -> dbus::Error {
    let message = e.to_string();
    match e {
        RegisterError::NotAuthorized { .. } => dbus::Error::NotAuthorized(message),
        RegisterError::AlreadyRegistered { .. } | RegisterError::IdInUse { .. } => {
            dbus::Error::AlreadyExists(message)
        }
        RegisterError::NotRegistered { .. } | RegisterError::UnknownId { .. } => {
            dbus::Error::DoesNotExist(message)
        }
        RegisterError::InvalidAid { .. } | RegisterError::DuplicateAid { .. } => {
            dbus::Error::InvalidAid(message)
        }
        RegisterError::TooManyAids { .. } | RegisterError::DaemonAidLimit { .. } => {
            dbus::Error::LimitExceeded(message)
        }
        RegisterError::EmptyId
        | RegisterError::InvalidId { .. }
        | RegisterError::NameTooLong { .. }
        | RegisterError::ExpressNotTransit { .. }
        | RegisterError::NoAids
        | RegisterError::WrongCategory { .. }
        | RegisterError::NoDefaultForCategory { .. }
        | RegisterError::NotPreferable { .. } => dbus::Error::InvalidArguments(message),
    }
}

/// `Services` property value.
pub fn services(registry: &Registry, identities: &IdentityStore) -> Vec<ServiceInfo> {
    let preferred = registry.preferred();
    let bytes = |list: &[crate::hce::Aid]| list.iter().map(|a| a.as_bytes().to_vec()).collect();
    registry
        .services()
        .filter_map(|(key, service)| {
            let path = zbus::OwnedObjectPath::try_from(key.path.clone()).ok()?;
            let o = &service.options;
            let binding = identities.get(&o.id);
            Some(ServiceInfo {
                path,
                owner: key.owner.clone(),
                id: o.id.clone(),
                category: o.category.as_str().to_owned(),
                name: o.name.clone(),
                aids: bytes(&o.aids),
                prefix_aids: bytes(&o.prefix_aids),
                subset_aids: bytes(&o.subset_aids),
                requires_unlock: o.requires_unlock,
                express: o.express,
                preferred: preferred == Some(key),
                default: registry.effective_default(o.category) == Some(key),
                uid: binding.map(|b| b.uid).unwrap_or(u32::MAX),
                exe_sha256: binding.and_then(|b| b.exe_sha256_hex()).unwrap_or_default(),
            })
        })
        .collect()
}

/// `RoutingTable` property value.
pub fn routing_entries(table: &libnci::routing::RoutingTable) -> Vec<RoutingEntry> {
    table.entries().map(|e| routing_entry(&e)).collect()
}

fn routing_entry(entry: &RoutingEntryRepr<'_>) -> RoutingEntry {
    let (kind, value) = match entry {
        RoutingEntryRepr::Technology { technology, .. } => (
            "technology".to_owned(),
            match technology {
                RfTechnology::NfcA => "nfc-a".to_owned(),
                RfTechnology::NfcB => "nfc-b".to_owned(),
                RfTechnology::NfcF => "nfc-f".to_owned(),
                RfTechnology::NfcV => "nfc-v".to_owned(),
                RfTechnology::Unknown(raw) => format!("0x{raw:02X}"),
            },
        ),
        RoutingEntryRepr::Protocol { protocol, .. } => (
            "protocol".to_owned(),
            match protocol {
                RfProtocol::IsoDep => "iso-dep".to_owned(),
                RfProtocol::NfcDep => "nfc-dep".to_owned(),
                RfProtocol::T1t => "t1t".to_owned(),
                RfProtocol::T2t => "t2t".to_owned(),
                RfProtocol::T3t => "t3t".to_owned(),
                RfProtocol::T5t => "t5t".to_owned(),
                other => format!("0x{:02X}", u8::from(*other)),
            },
        ),
        RoutingEntryRepr::Aid {
            qualifiers, aid, ..
        } => {
            let kind = if qualifiers.contains(Qualifiers::MATCH_PREFIX) {
                "aid-prefix"
            } else if qualifiers.contains(Qualifiers::MATCH_SUBSET) {
                "aid-subset"
            } else {
                "aid"
            };
            (kind.to_owned(), hex(aid))
        }
        RoutingEntryRepr::SystemCode { system_codes, .. } => {
            ("system-code".to_owned(), hex(system_codes))
        }
        RoutingEntryRepr::ApduPattern {
            reference, mask, ..
        } => (
            "apdu-pattern".to_owned(),
            format!("{}/{}", hex(reference), hex(mask)),
        ),
        RoutingEntryRepr::Unknown {
            qualifier_type,
            value,
        } => (format!("unknown-0x{qualifier_type:02X}"), hex(value)),
    };
    RoutingEntry {
        kind,
        value,
        route: entry.route().unwrap_or(0),
        power_state: entry.power_state().map(|p| p.bits()).unwrap_or(0),
    }
}

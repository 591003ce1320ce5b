//! What the host wants from the controller: listen technologies, ISO-DEP card parameters, extra
//! NCI and NXP configuration parameters, listen-mode routes, and the timing of the state
//! machine itself.
//!
//! This module only holds the wishes and turns them into the list of configuration parameters
//! for one controller ([`Config::wanted_core_params`], [`Config::wanted_nxp_params`]). Reading
//! the controller's current values and writing only those that differ is the state machine's
//! job (see the `controller` module documentation, "Configuration without needless writes").

use heapless::Vec;

use crate::routing::{RoutingRule, MAX_RULES};
use crate::time::Duration;
use crate::wire::config::{ConfigParam, ParamId, LA_SEL_INFO_ISO_DEP, LB_SENSB_INFO_ISO_DEP};
use crate::wire::routing::{PowerState, ROUTE_DH};
use crate::wire::{NciVersion, RfProtocol, RfTechMode, RfTechnology};

/// Longest configuration value [`Param`] holds. NCI allows 255 octets; every parameter a card
/// emulation host sets (LI_A_HIST_BY: 15, LA_NFCID1: 10, NXP PMU/TVDD A0 0E: 11) is far shorter.
pub const MAX_PARAM_LEN: usize = 64;

/// Most parameters in one list ([`Config::extra_params`], [`Config::nxp_params`]).
pub const MAX_PARAMS: usize = 16;

/// Most parameters the controller asks for in one configuration step: the computed card
/// emulation parameters plus [`MAX_PARAMS`] extra ones.
pub const MAX_WANTED_PARAMS: usize = MAX_PARAMS + 8;

/// Longest historical byte string in an ATS (ISO/IEC 14443-4 §5.2.7: the ATS is at most FSD
/// octets, NCI 1.0 Table 101 limits LA_HIST_BY to 15 octets).
pub const MAX_HISTORICAL_BYTES: usize = 15;

/// NXP extension tags that the firmware reads only while it boots (UM10936 §10; NXP's own HAL
/// resets the controller after writing them): the clock source and frequency selection
/// (A0 03) and clock request settings (A0 04), the RF transition register settings (A0 0D) and
/// the power management / TVDD configuration (A0 0E). When any of them was written, the
/// controller is reset and initialised once more so that the new values take effect.
pub const NXP_TAGS_NEEDING_RESET: [u16; 4] = [0xA003, 0xA004, 0xA00D, 0xA00E];

/// The RF technologies the controller listens on (NCI 1.0 §7.1, RF_DISCOVER_CMD listen modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenTechs {
    /// NFC-A passive listen (ISO/IEC 14443 Type A): what EMV terminals and most gates poll.
    pub a: bool,
    /// NFC-B passive listen (ISO/IEC 14443 Type B).
    pub b: bool,
    /// NFC-F passive listen (FeliCa). The controller emulates NFC-F only with T3T parameters
    /// configured through [`Config::extra_params`]; ISO-DEP never runs over NFC-F.
    pub f: bool,
}

impl ListenTechs {
    /// NFC-A and NFC-B: the ISO-DEP card emulation default.
    pub const AB: ListenTechs = ListenTechs {
        a: true,
        b: true,
        f: false,
    };

    /// No technology: the controller does not listen.
    pub const NONE: ListenTechs = ListenTechs {
        a: false,
        b: false,
        f: false,
    };

    /// `true` when no technology is enabled.
    pub fn is_empty(&self) -> bool {
        !(self.a || self.b || self.f)
    }

    /// The RF_DISCOVER_CMD listen modes, in the order A, B, F (NCI 1.0 Table 96).
    pub fn tech_modes(&self) -> Vec<RfTechMode, 3> {
        let mut modes = Vec::new();
        for (on, mode) in [
            (self.a, RfTechMode::NfcAPassiveListen),
            (self.b, RfTechMode::NfcBPassiveListen),
            (self.f, RfTechMode::NfcFPassiveListen),
        ] {
            if on {
                // Three slots for at most three modes.
                let _ = modes.push(mode);
            }
        }
        modes
    }
}

impl Default for ListenTechs {
    fn default() -> Self {
        ListenTechs::AB
    }
}

/// Why a [`Param`] could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamError {
    /// The value is longer than [`MAX_PARAM_LEN`].
    TooLong,
    /// The identifier is not an NXP two-octet tag (`0xA0xx` / `0xA1xx`), or an NCI identifier
    /// uses an NXP prefix octet.
    BadId,
    /// The list already holds [`MAX_PARAMS`] parameters.
    ListFull,
}

impl core::fmt::Display for ParamError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ParamError::TooLong => "configuration value too long",
            ParamError::BadId => "configuration parameter identifier not valid here",
            ParamError::ListFull => "too many configuration parameters",
        })
    }
}

impl core::error::Error for ParamError {}

/// One configuration parameter the host wants, owned (NCI 1.0 §4.3 Table 12: ID, length,
/// value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Param {
    /// The identifier: an NCI octet or an NXP two-octet tag.
    pub id: ParamId,
    /// The value.
    pub value: Vec<u8, MAX_PARAM_LEN>,
}

impl Param {
    /// A parameter with any identifier.
    pub fn new(id: ParamId, value: &[u8]) -> Result<Param, ParamError> {
        if let ParamId::Nci(raw) = id {
            if ParamId::is_nxp_prefix(u8::from(raw)) {
                return Err(ParamError::BadId);
            }
        }
        let value = Vec::from_slice(value).map_err(|_| ParamError::TooLong)?;
        Ok(Param { id, value })
    }

    /// An NXP extension parameter `tag` (`0xA0xx` or `0xA1xx`, UM10936 §10).
    pub fn nxp(tag: u16, value: &[u8]) -> Result<Param, ParamError> {
        let [first, _] = tag.to_be_bytes();
        if !ParamId::is_nxp_prefix(first) {
            return Err(ParamError::BadId);
        }
        Param::new(ParamId::Nxp(tag), value)
    }

    /// A borrowed wire view for CORE_SET_CONFIG_CMD.
    pub fn as_config_param(&self) -> ConfigParam<'_> {
        ConfigParam::new(self.id, &self.value)
    }

    fn from_config_param(param: &ConfigParam<'_>) -> Option<Param> {
        Param::new(param.id, param.value()).ok()
    }
}

/// A list of wanted parameters; a later entry with the same identifier replaces an earlier one.
pub type ParamList = Vec<Param, MAX_PARAMS>;

/// Set `param` in `list`, replacing an entry with the same identifier.
pub fn set_param<const N: usize>(list: &mut Vec<Param, N>, param: Param) -> Result<(), ParamError> {
    if let Some(existing) = list.iter_mut().find(|p| p.id == param.id) {
        *existing = param;
        return Ok(());
    }
    list.push(param).map_err(|_| ParamError::ListFull)
}

/// Everything the controller state machine is told by the host. [`Config::default`] is a plain
/// ISO-DEP card emulation host on NFC-A and NFC-B with every route to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Technologies to listen on.
    pub listen: ListenTechs,
    /// Whether RF discovery runs at all (the daemon's `Adapter1.Powered`).
    pub enabled: bool,
    /// Frame Waiting time Integer announced to readers (ISO/IEC 14443-4 §7.2, 0–14; FWT =
    /// 302 µs × 2^FWI). Written as LI_FWI under NCI 1.0 and as the high nibble of
    /// LI_A_RATS_TB1 under NCI 2.0 (both parameter 0x58). `None` keeps the controller's value.
    pub fwi: Option<u8>,
    /// Start-up Frame Guard time Integer, the low nibble of LI_A_RATS_TB1 (NCI 2.0 only,
    /// ISO/IEC 14443-4 §5.2.5). Ignored when [`Config::fwi`] is `None` or under NCI 1.0.
    pub sfgi: u8,
    /// Historical bytes of the ATS (LI_A_HIST_BY, 0x59). `None` keeps the controller's value.
    pub historical_bytes: Option<Vec<u8, MAX_HISTORICAL_BYTES>>,
    /// Whether the controller reports the reader's field (RF_FIELD_INFO, 0x80;
    /// RF_FIELD_INFO_NTF → [`crate::controller::Event::FieldOn`] / `FieldOff`).
    pub field_info: bool,
    /// Further NCI configuration parameters, written after the card emulation ones; an entry
    /// for a parameter this module computes (e.g. LA_SEL_INFO) replaces the computed value.
    pub extra_params: ParamList,
    /// NXP extension parameters (`A0xx` tags, UM10936 §10), read and written only on an NXP
    /// controller after NCI_PROPRIETARY_ACT. Each tag at most once: the controller reads back
    /// one value per tag.
    pub nxp_params: ParamList,
    /// Wanted listen-mode routes, as the routing table builder takes them.
    pub routes: Vec<RoutingRule, MAX_RULES>,
    /// How long to wait for a response (and for CORE_RESET_NTF / RF_DEACTIVATE_NTF). The
    /// PN7150 answers within milliseconds; NCI itself sets no limit.
    pub command_timeout: Duration,
    /// How long a waiting data packet may wait for CORE_CONN_CREDITS_NTF before the credit is
    /// taken as lost and the controller re-initialised.
    pub credit_timeout: Duration,
    /// Delay before the first re-initialisation attempt; each further attempt doubles it.
    pub retry_delay: Duration,
    /// Longest delay between two re-initialisation attempts.
    pub max_retry_delay: Duration,
    /// Re-initialisation attempts in a row before the state machine gives up
    /// ([`crate::controller::State::Failed`]) and waits for [`crate::controller::Controller::start`].
    pub max_reinit_attempts: u8,
}

impl Default for Config {
    fn default() -> Self {
        let mut routes = Vec::new();
        let power_state = PowerState::SWITCHED_ON;
        // ISO-DEP to the host, and NFC-A / NFC-B to the host for when the controller only
        // keeps technology entries (see crate::routing).
        let defaults = [
            RoutingRule::Protocol {
                route: ROUTE_DH,
                power_state,
                protocol: RfProtocol::IsoDep,
            },
            RoutingRule::Technology {
                route: ROUTE_DH,
                power_state,
                technology: RfTechnology::NfcA,
            },
            RoutingRule::Technology {
                route: ROUTE_DH,
                power_state,
                technology: RfTechnology::NfcB,
            },
        ];
        for rule in defaults {
            // Three rules fit MAX_RULES.
            let _ = routes.push(rule);
        }
        Config {
            listen: ListenTechs::AB,
            enabled: true,
            fwi: Some(7),
            sfgi: 0,
            historical_bytes: None,
            field_info: true,
            extra_params: ParamList::new(),
            nxp_params: ParamList::new(),
            routes,
            command_timeout: Duration::from_secs(1),
            credit_timeout: Duration::from_secs(1),
            retry_delay: Duration::from_millis(10),
            max_retry_delay: Duration::from_secs(2),
            max_reinit_attempts: 5,
        }
    }
}

impl Config {
    /// The NCI parameters to read and, where they differ, write (NCI 1.0 Table 101, NCI 2.0
    /// Table 150), in this order:
    ///
    /// - LA_SEL_INFO (0x32) = 0x20: SEL_RES announces ISO/IEC 14443-4 (ISO-DEP) on NFC-A;
    /// - LB_SENSB_INFO (0x38) = 0x01: SENSB_RES announces ISO-DEP on NFC-B;
    /// - LI_FWI (NCI 1.0) / LI_A_RATS_TB1 (NCI 2.0), 0x58, from [`Config::fwi`];
    /// - LI_A_HIST_BY (0x59) from [`Config::historical_bytes`];
    /// - RF_FIELD_INFO (0x80) from [`Config::field_info`];
    /// - then [`Config::extra_params`], an entry for one of the above replacing it in place.
    ///
    /// LA_SEL_INFO and LB_SENSB_INFO are written whatever the listen technologies, so that
    /// [`crate::controller::Controller::set_listen`] only has to restart discovery.
    pub fn wanted_core_params(&self, version: NciVersion) -> Vec<Param, MAX_WANTED_PARAMS> {
        let mut wanted: Vec<Param, MAX_WANTED_PARAMS> = Vec::new();
        let mut add = |param: Option<ConfigParam<'_>>| {
            if let Some(param) = param.as_ref().and_then(Param::from_config_param) {
                // Capacity covers the computed parameters plus every extra one.
                let _ = set_param(&mut wanted, param);
            }
        };
        add(Some(ConfigParam::la_sel_info(LA_SEL_INFO_ISO_DEP)));
        add(Some(ConfigParam::lb_sensb_info(LB_SENSB_INFO_ISO_DEP)));
        if let Some(fwi) = self.fwi {
            let param = if version.is_v2() {
                ConfigParam::li_a_rats_tb1(fwi, self.sfgi).ok()
            } else {
                ConfigParam::li_fwi(fwi).ok()
            };
            add(param);
        }
        if let Some(historical) = &self.historical_bytes {
            add(ConfigParam::li_a_hist_by(historical).ok());
        }
        add(Some(ConfigParam::rf_field_info(self.field_info)));
        for extra in &self.extra_params {
            let _ = set_param(&mut wanted, extra.clone());
        }
        wanted
    }

    /// The NXP extension parameters to read and, where they differ, write; only NXP two-octet
    /// tags are kept, later entries replacing earlier ones with the same tag.
    pub fn wanted_nxp_params(&self) -> Vec<Param, MAX_WANTED_PARAMS> {
        let mut wanted = Vec::new();
        for param in &self.nxp_params {
            if matches!(param.id, ParamId::Nxp(_)) {
                let _ = set_param(&mut wanted, param.clone());
            }
        }
        wanted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_wanted_params_per_version() {
        let config = Config::default();
        let ids = |v| {
            config
                .wanted_core_params(v)
                .iter()
                .map(|p| (p.id, p.value.to_vec()))
                .collect::<std::vec::Vec<_>>()
        };
        let v1 = ids(NciVersion::V1_0);
        assert_eq!(
            v1,
            [
                (ParamId::LA_SEL_INFO, vec![0x20]),
                (ParamId::LB_SENSB_INFO, vec![0x01]),
                (ParamId::LI_A_RATS_TB1, vec![0x07]),
                (ParamId::RF_FIELD_INFO, vec![0x01]),
            ]
        );
        // NCI 2.0: the same code point holds the whole TB(1), FWI in the high nibble.
        let v2 = ids(NciVersion::V2_0);
        assert_eq!(v2[2], (ParamId::LI_A_RATS_TB1, vec![0x70]));
    }

    #[test]
    fn extra_params_replace_computed_ones() {
        let mut config = Config::default();
        config
            .extra_params
            .push(Param::new(ParamId::LA_SEL_INFO, &[0x60]).unwrap())
            .unwrap();
        let wanted = config.wanted_core_params(NciVersion::V1_0);
        assert_eq!(wanted.len(), 4);
        assert_eq!(wanted[0].value, [0x60]);
    }

    #[test]
    fn nxp_param_ids_are_checked() {
        assert!(Param::nxp(0xA00E, &[0x16, 0x09, 0x00]).is_ok());
        assert_eq!(Param::nxp(0x5000, &[0]), Err(ParamError::BadId));
        assert_eq!(
            Param::new(ParamId::LA_SEL_INFO, &[0u8; MAX_PARAM_LEN + 1]),
            Err(ParamError::TooLong)
        );
    }

    #[test]
    fn listen_modes_in_order() {
        let techs = ListenTechs {
            a: true,
            b: false,
            f: true,
        };
        assert_eq!(
            techs.tech_modes().as_slice(),
            [RfTechMode::NfcAPassiveListen, RfTechMode::NfcFPassiveListen]
        );
        assert!(ListenTechs::NONE.is_empty());
    }
}

//! Daemon configuration: the TOML file, command-line overrides, and the validated result.
//!
//! Contract: [`Config::load`] reads the file (default [`DEFAULT_CONFIG_PATH`]; a missing
//! default file means built-in defaults, a missing file named with `--config` is an error),
//! rejects unknown keys, checks every value, applies the command-line overrides and returns a
//! [`Config`] of plain Rust values — no TOML types leak out. Errors name the file, the line and
//! column, the key and what is wrong (`nfcd.toml:12:22: hce.apdu_deadline_ms: 3 is below the
//! minimum 10`). Nothing here acts on the values: turning them into NCI parameters, routing or
//! access checks is the job of the layers that use them. The schema is documented in
//! `doc/config.md`.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cli::Cli;
use crate::transport::TransportSpec;

/// Configuration file read when `--config` is not given (it may be absent).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/nfcd/nfcd.toml";

/// Where persistent state lives unless configured otherwise.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/nfcd";

/// Default Frame Waiting time Integer: FWT = 302 µs × 2^7 ≈ 38.7 ms (ISO/IEC 14443-4 §7.2).
pub const DEFAULT_FWI: u8 = 7;

/// Largest FWI; 15 is reserved (ISO/IEC 14443-4 §5.2.5).
pub const MAX_FWI: u8 = 14;

/// Default deadline for a wallet to answer one APDU.
pub const DEFAULT_APDU_DEADLINE_MS: u64 = 500;

/// Smallest accepted `hce.apdu_deadline_ms`.
pub const MIN_APDU_DEADLINE_MS: u16 = 10;

/// Largest accepted `hce.apdu_deadline_ms`.
pub const MAX_APDU_DEADLINE_MS: u16 = 5000;

/// Most ATS historical bytes accepted. ISO/IEC 14443-4 §5.2 bounds the whole ATS by the
/// reader's frame size (FSD − 2), so short is safer.
pub const MAX_HISTORICAL_BYTES: usize = 15;

/// Which D-Bus bus the daemon serves on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusSpec {
    /// The system bus (production).
    System,
    /// The session bus of the invoking user (development).
    Session,
    /// A private bus at a D-Bus address, e.g. `unix:path=/tmp/nfcd-test/bus` (tests).
    Address(String),
}

/// A `--bus` / `daemon.bus` value that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusSpecError(String);

impl fmt::Display for BusSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not system, session or a D-Bus address (e.g. unix:path=/run/nfcd/bus)",
            self.0
        )
    }
}

impl std::error::Error for BusSpecError {}

impl FromStr for BusSpec {
    type Err = BusSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(BusSpec::System),
            "session" => Ok(BusSpec::Session),
            // D-Bus addresses are `transport:key=value,...` (D-Bus specification, "Server
            // Addresses"); several may be joined by ';'.
            _ if s.contains(':') && s.contains('=') => Ok(BusSpec::Address(s.to_owned())),
            _ => Err(BusSpecError(s.to_owned())),
        }
    }
}

impl fmt::Display for BusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusSpec::System => f.write_str("system"),
            BusSpec::Session => f.write_str("session"),
            BusSpec::Address(address) => f.write_str(address),
        }
    }
}

/// RF technology of a listen mode (NFC-A, NFC-B, NFC-F as in NCI 1.0 RF technology values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Technology {
    /// NFC-A (ISO/IEC 14443-3 Type A).
    A,
    /// NFC-B (ISO/IEC 14443-3 Type B).
    B,
    /// NFC-F (FeliCa).
    F,
}

impl fmt::Display for Technology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Technology::A => "a",
            Technology::B => "b",
            Technology::F => "f",
        })
    }
}

/// Card-emulation (listen mode) settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    /// Technologies to listen on, in the order given.
    pub technologies: Vec<Technology>,
    /// Frame Waiting time Integer announced to readers (ISO/IEC 14443-4 §7.2).
    pub fwi: u8,
    /// TB(1) of the ATS: FWI in the high nibble, SFGI in the low nibble (ISO/IEC 14443-4
    /// §5.2.5); the NCI parameter LI_A_RATS_TB1 (0x58). Derived from `fwi` (SFGI 0) unless
    /// configured.
    pub li_a_rats_tb1: u8,
    /// ATS historical bytes (NCI LI_A_HIST_BY, 0x59); empty = none.
    pub historical_bytes: Vec<u8>,
}

impl ListenConfig {
    /// Frame waiting time for the configured FWI: FWT = (256 × 16 / fc) × 2^FWI with
    /// fc = 13.56 MHz, i.e. ≈ 302 µs × 2^FWI (ISO/IEC 14443-4 §7.2).
    pub fn fwt(&self) -> Duration {
        // 4096 / 13.56 MHz = 302 064 ns (rounded down).
        Duration::from_nanos(302_064u64 << self.fwi.min(MAX_FWI))
    }
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            technologies: vec![Technology::A, Technology::B],
            fwi: DEFAULT_FWI,
            li_a_rats_tb1: DEFAULT_FWI << 4,
            historical_bytes: Vec::new(),
        }
    }
}

/// Host card emulation settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HceConfig {
    /// How long a wallet may take to answer one APDU before the reader gets `6F00`.
    pub apdu_deadline: Duration,
}

impl Default for HceConfig {
    fn default() -> Self {
        HceConfig {
            apdu_deadline: Duration::from_millis(DEFAULT_APDU_DEADLINE_MS),
        }
    }
}

/// A user or group allowed to register services of a category.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// `user:NAME`: the user with this login name.
    User(String),
    /// `uid:N`: the user with this numeric id.
    Uid(u32),
    /// `group:NAME`: members of this group.
    Group(String),
    /// `gid:N`: members of the group with this numeric id.
    Gid(u32),
}

/// An access entry that is not `user:NAME`, `uid:N`, `group:NAME` or `gid:N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalError(String);

impl fmt::Display for PrincipalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrincipalError {}

impl FromStr for Principal {
    type Err = PrincipalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            PrincipalError(format!(
                "'{s}' is not user:NAME, uid:N, group:NAME or gid:N"
            ))
        };
        let (kind, value) = s.split_once(':').ok_or_else(bad)?;
        let name = |value: &str| {
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c == ':') {
                Err(PrincipalError(format!(
                    "'{s}': '{value}' is not a valid name"
                )))
            } else {
                Ok(value.to_owned())
            }
        };
        let id = |value: &str| {
            value
                .parse::<u32>()
                .map_err(|_| PrincipalError(format!("'{s}': '{value}' is not a numeric id")))
        };
        match kind {
            "user" => name(value).map(Principal::User),
            "uid" => id(value).map(Principal::Uid),
            "group" => name(value).map(Principal::Group),
            "gid" => id(value).map(Principal::Gid),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(name) => write!(f, "user:{name}"),
            Principal::Uid(uid) => write!(f, "uid:{uid}"),
            Principal::Group(name) => write!(f, "group:{name}"),
            Principal::Gid(gid) => write!(f, "gid:{gid}"),
        }
    }
}

/// Who may register services of the restricted categories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessConfig {
    /// Callers allowed to register `payment` services; empty = anyone.
    pub payment: Vec<Principal>,
    /// Callers allowed to register `transit` services; empty = anyone.
    pub transit: Vec<Principal>,
    /// Whether a service `Id` bound to one user and program (see `crate::identity`) may be
    /// registered by another, re-binding it. Off: such a registration is refused. An Id held
    /// by a connected client is never taken over either way.
    pub allow_id_rebind: bool,
}

/// Frequency of the clock fed to the PN7150 PLL input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PllFreq {
    /// 13 MHz.
    Mhz13,
    /// 19.2 MHz.
    Mhz19_2,
    /// 24 MHz.
    Mhz24,
    /// 26 MHz.
    Mhz26,
    /// 38.4 MHz.
    Mhz38_4,
    /// 52 MHz.
    Mhz52,
}

impl PllFreq {
    /// Index of the frequency in the low bits of CLOCK_SEL_CFG.
    fn index(self) -> u8 {
        match self {
            PllFreq::Mhz13 => 0,
            PllFreq::Mhz19_2 => 1,
            PllFreq::Mhz24 => 2,
            PllFreq::Mhz26 => 3,
            PllFreq::Mhz38_4 => 4,
            PllFreq::Mhz52 => 5,
        }
    }

    fn from_mhz(mhz: f64) -> Option<Self> {
        const TABLE: [(f64, PllFreq); 6] = [
            (13.0, PllFreq::Mhz13),
            (19.2, PllFreq::Mhz19_2),
            (24.0, PllFreq::Mhz24),
            (26.0, PllFreq::Mhz26),
            (38.4, PllFreq::Mhz38_4),
            (52.0, PllFreq::Mhz52),
        ];
        TABLE
            .iter()
            .find(|(f, _)| (f - mhz).abs() < 1e-6)
            .map(|&(_, p)| p)
    }
}

/// PN7150 system clock source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NxpClock {
    /// 27.12 MHz crystal on the board (OM5578 and most PN7150 modules).
    Xtal,
    /// External clock into the PLL.
    Pll {
        /// Input frequency.
        freq: PllFreq,
        /// CLOCK_TO_CFG: clock-request acknowledge timeout, raw value 1..=26.
        clock_timeout: u8,
    },
}

/// PN7150 transmitter supply (TVDD) configuration, PMU_CFG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tvdd {
    /// TVDD generated from VBAT through the TX LDO at 3.3 V, reader and card mode.
    V3_3,
    /// External 5 V on VBAT2; TX LDO output 4.7 V, reader and card mode.
    V5,
}

/// NXP parameter tag: clock source and PLL frequency (CLOCK_SEL_CFG).
pub const NXP_TAG_CLOCK_SEL_CFG: u16 = 0xA003;
/// NXP parameter tag: clock request timeout (CLOCK_TO_CFG).
pub const NXP_TAG_CLOCK_TO_CFG: u16 = 0xA004;
/// NXP parameter tag: power management unit / TVDD (PMU_CFG).
pub const NXP_TAG_PMU_CFG: u16 = 0xA00E;

/// One configuration parameter for CORE_SET_CONFIG_CMD (NCI 1.0 §4.3): a standard one-octet
/// parameter ID, or an NXP proprietary two-octet ID `A0 xx` (UM10936, proprietary
/// configuration parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NxpTlv {
    /// Parameter ID: 0x00..=0xFF for NCI parameters, 0xA000..=0xA0FF for NXP ones.
    pub tag: u16,
    /// Parameter value, at most 255 octets.
    pub value: Vec<u8>,
}

impl NxpTlv {
    /// The TLV as it goes into CORE_SET_CONFIG_CMD: ID (1 or 2 octets), length, value. A
    /// value longer than the one-octet length allows is cut at 255 octets (values parsed from
    /// the configuration never are).
    pub fn encode(&self) -> Vec<u8> {
        let value = self.value.get(..255).unwrap_or(&self.value);
        let mut out = Vec::with_capacity(value.len() + 3);
        match u8::try_from(self.tag) {
            Ok(tag) => out.push(tag),
            Err(_) => out.extend_from_slice(&self.tag.to_be_bytes()),
        }
        out.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(value);
        out
    }

    /// Parse one TLV from its octets; the length octet must match the value exactly.
    fn decode(octets: &[u8]) -> Result<Self, String> {
        let (tag, rest) = match octets {
            [0xA0, id, rest @ ..] => (u16::from_be_bytes([0xA0, *id]), rest),
            [id, rest @ ..] if *id != 0xA0 => (u16::from(*id), rest),
            _ => return Err("is too short for a TLV".into()),
        };
        let Some((&len, value)) = rest.split_first() else {
            return Err(format!("has tag {tag:04X} but no length octet"));
        };
        if value.len() != usize::from(len) {
            return Err(format!(
                "length octet says {len} but {} value octets follow",
                value.len()
            ));
        }
        Ok(NxpTlv {
            tag,
            value: value.to_vec(),
        })
    }
}

/// PN7150 board settings, sent as NXP proprietary configuration parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NxpConfig {
    /// Clock source; `None` leaves the controller's stored setting alone.
    pub clock: Option<NxpClock>,
    /// TVDD configuration; `None` leaves the controller's stored setting alone.
    pub tvdd: Option<Tvdd>,
    /// Extra parameters given verbatim, in file order.
    pub raw: Vec<NxpTlv>,
}

impl NxpConfig {
    /// Every parameter to send with CORE_SET_CONFIG_CMD: the ones derived from `clock` and
    /// `tvdd`, then `raw`. Values follow NXP's PN7150 Linux HAL (linux_libnfc-nci,
    /// `phNxpNciHal_set_clock` and the PN7150 `libnfc-nxp.conf` TVDD settings):
    ///
    /// | setting | tag | value |
    /// |---|---|---|
    /// | `clock = "xtal"` | CLOCK_SEL_CFG A003 | `08` |
    /// | `clock = "pll"` | CLOCK_SEL_CFG A003 | `10` + frequency index (13 MHz = 0 … 52 MHz = 5) |
    /// | `clock = "pll"` | CLOCK_TO_CFG A004 | `clock_timeout` |
    /// | `tvdd = "3.3V"` | PMU_CFG A00E | `02 09 00` |
    /// | `tvdd = "5V"` | PMU_CFG A00E | `06 64 00` |
    pub fn tlvs(&self) -> Vec<NxpTlv> {
        let mut out = Vec::new();
        match self.clock {
            Some(NxpClock::Xtal) => out.push(NxpTlv {
                tag: NXP_TAG_CLOCK_SEL_CFG,
                value: vec![0x08],
            }),
            Some(NxpClock::Pll {
                freq,
                clock_timeout,
            }) => {
                out.push(NxpTlv {
                    tag: NXP_TAG_CLOCK_SEL_CFG,
                    value: vec![0x10 | freq.index()],
                });
                out.push(NxpTlv {
                    tag: NXP_TAG_CLOCK_TO_CFG,
                    value: vec![clock_timeout],
                });
            }
            None => {}
        }
        match self.tvdd {
            Some(Tvdd::V3_3) => out.push(NxpTlv {
                tag: NXP_TAG_PMU_CFG,
                value: vec![0x02, 0x09, 0x00],
            }),
            Some(Tvdd::V5) => out.push(NxpTlv {
                tag: NXP_TAG_PMU_CFG,
                value: vec![0x06, 0x64, 0x00],
            }),
            None => {}
        }
        out.extend(self.raw.iter().cloned());
        out
    }
}

/// How the daemon learns whether the device is locked (for `RequiresUnlock` services).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LockMode {
    /// Follow the session lock state from systemd-logind.
    #[default]
    Logind,
    /// Always treat the device as locked (kiosk, headless with express transit only).
    Locked,
    /// Always treat the device as unlocked (single-board computers without a screen).
    Unlocked,
}

/// The validated configuration the daemon runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Controller transport.
    pub transport: TransportSpec,
    /// D-Bus bus to serve on.
    pub bus: BusSpec,
    /// Directory for persistent state.
    pub state_dir: PathBuf,
    /// Listen-mode settings.
    pub listen: ListenConfig,
    /// Host card emulation settings.
    pub hce: HceConfig,
    /// Registration access control.
    pub access: AccessConfig,
    /// PN7150 board settings.
    pub nxp: NxpConfig,
    /// Lock-state source.
    pub lock: LockMode,
    /// The file the settings came from; `None` when only built-in defaults and flags were used.
    pub source: Option<PathBuf>,
}

/// Where in the file a problem is (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line number.
    pub line: usize,
    /// Column, in characters.
    pub column: usize,
}

/// Why the configuration could not be loaded.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read (a file named with `--config` that does not exist, or any
    /// file that cannot be opened).
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    Syntax {
        /// The file (or `<built-in>`).
        file: String,
        /// Where.
        location: Location,
        /// What the TOML parser says.
        message: String,
    },
    /// A value is well-formed but not acceptable.
    Invalid {
        /// The file (or `<built-in>`).
        file: String,
        /// Where, when known.
        location: Option<Location>,
        /// Dotted key, e.g. `hce.apdu_deadline_ms`.
        key: String,
        /// What is wrong with the value.
        message: String,
    },
    /// Neither the file nor the command line names a transport.
    NoTransport {
        /// The file that was read, or the default path that was looked for.
        file: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ConfigError::Syntax {
                file,
                location,
                message,
            } => write!(f, "{file}:{}:{}: {message}", location.line, location.column),
            ConfigError::Invalid {
                file,
                location: Some(location),
                key,
                message,
            } => write!(
                f,
                "{file}:{}:{}: {key}: {message}",
                location.line, location.column
            ),
            ConfigError::Invalid {
                file,
                location: None,
                key,
                message,
            } => write!(f, "{file}: {key}: {message}"),
            ConfigError::NoTransport { file } => write!(
                f,
                "no transport configured: set `transport` in the [daemon] section of {file} \
                 or pass --transport"
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// File schema. Every leaf is `Spanned` so that value errors can point at the line.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRepr {
    #[serde(default)]
    daemon: DaemonRepr,
    #[serde(default)]
    listen: ListenRepr,
    #[serde(default)]
    hce: HceRepr,
    #[serde(default)]
    access: AccessRepr,
    #[serde(default)]
    nxp: NxpRepr,
    #[serde(default)]
    lock: LockRepr,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonRepr {
    transport: Option<Spanned<String>>,
    bus: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenRepr {
    technologies: Option<Spanned<Vec<Spanned<String>>>>,
    li_a_rats_tb1: Option<Spanned<i64>>,
    fwi: Option<Spanned<i64>>,
    historical_bytes: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HceRepr {
    apdu_deadline_ms: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessRepr {
    payment: Option<Vec<Spanned<String>>>,
    transit: Option<Vec<Spanned<String>>>,
    allow_id_rebind: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NxpRepr {
    clock: Option<Spanned<String>>,
    pll_freq_mhz: Option<Spanned<f64>>,
    clock_timeout: Option<Spanned<i64>>,
    tvdd: Option<Spanned<String>>,
    raw: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockRepr {
    mode: Option<Spanned<String>>,
}

/// Turns spans into locations and builds errors for one file.
struct Checker<'a> {
    text: &'a str,
    file: String,
}

impl Checker<'_> {
    fn location(&self, span: &Range<usize>) -> Location {
        let before = self.text.get(..span.start).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Location { line, column }
    }

    /// Best-effort dotted key of the value at `span`, for parser errors that do not name it:
    /// the `key =` on the same line plus the nearest `[section]` above. `None` when the span
    /// is not inside a one-line `key = value`.
    fn key_at(&self, span: &Range<usize>) -> Option<String> {
        let before = self.text.get(..span.start)?;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let (key, _) = before.get(line_start..)?.split_once('=')?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return None;
        }
        let section = before.get(..line_start)?.lines().rev().find_map(|line| {
            let line = line.trim();
            line.strip_prefix('[')
                .and_then(|l| l.strip_suffix(']'))
                .map(str::trim)
        });
        Some(match section {
            Some(section) => format!("{section}.{key}"),
            None => key.to_owned(),
        })
    }

    fn invalid<T>(&self, key: &str, value: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            location: Some(self.location(&value.span())),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn int_in_range(
        &self,
        key: &str,
        value: &Spanned<i64>,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<i64, ConfigError> {
        let v = *value.get_ref();
        if v < *range.start() {
            Err(self.invalid(
                key,
                value,
                format!("{v} is below the minimum {}", range.start()),
            ))
        } else if v > *range.end() {
            Err(self.invalid(
                key,
                value,
                format!("{v} is above the maximum {}", range.end()),
            ))
        } else {
            Ok(v)
        }
    }

    fn hex(&self, key: &str, value: &Spanned<String>) -> Result<Vec<u8>, ConfigError> {
        parse_hex(value.get_ref()).map_err(|msg| self.invalid(key, value, msg))
    }
}

/// Hex octets, optionally separated by white space: `"80 73 C0 21"` or `"8073C021"`.
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    if digits.len() % 2 != 0 {
        return Err(format!("'{text}' has an odd number of hex digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s: String = pair.iter().collect();
            u8::from_str_radix(&s, 16).map_err(|_| format!("'{text}' is not hex ('{s}')"))
        })
        .collect()
}

/// Values given on the command line, applied over the file.
struct Overrides<'a> {
    transport: Option<&'a TransportSpec>,
    bus: Option<&'a BusSpec>,
    state_dir: Option<&'a Path>,
}

impl Config {
    /// Load the configuration for `cli`: read `cli.config` (which must exist) or
    /// [`DEFAULT_CONFIG_PATH`] (which may be absent), validate it, apply the command-line
    /// overrides.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        Self::load_with_default(cli, Path::new(DEFAULT_CONFIG_PATH))
    }

    fn load_with_default(cli: &Cli, default_path: &Path) -> Result<Config, ConfigError> {
        let (text, source) = match &cli.config {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => (text, Some(path.as_path())),
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: path.clone(),
                        source,
                    })
                }
            },
            None => match std::fs::read_to_string(default_path) {
                Ok(text) => (text, Some(default_path)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => (String::new(), None),
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: default_path.to_owned(),
                        source,
                    })
                }
            },
        };
        let overrides = Overrides {
            transport: cli.transport.as_ref(),
            bus: cli.bus.as_ref(),
            state_dir: cli.state_dir.as_deref(),
        };
        Self::build(&text, source, default_path, &overrides)
    }

    /// Validate configuration text as if read from `source` (`None`: built-in), with the
    /// command-line overrides of `cli` (its `config` field is ignored).
    pub fn from_toml(text: &str, source: Option<&Path>, cli: &Cli) -> Result<Config, ConfigError> {
        let overrides = Overrides {
            transport: cli.transport.as_ref(),
            bus: cli.bus.as_ref(),
            state_dir: cli.state_dir.as_deref(),
        };
        Self::build(text, source, Path::new(DEFAULT_CONFIG_PATH), &overrides)
    }

    fn build(
        text: &str,
        source: Option<&Path>,
        default_path: &Path,
        overrides: &Overrides<'_>,
    ) -> Result<Config, ConfigError> {
        let checker = Checker {
            text,
            file: source.map_or_else(|| "<built-in>".to_owned(), |p| p.display().to_string()),
        };
        let file: FileRepr = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim_end();
            ConfigError::Syntax {
                file: checker.file.clone(),
                location: checker.location(&span),
                message: match checker.key_at(&span) {
                    Some(key) => format!("{key}: {message}"),
                    None => message.to_owned(),
                },
            }
        })?;

        // The file is validated in full even where a flag overrides it: a broken file is
        // reported, not silently masked.
        let file_transport = match &file.daemon.transport {
            Some(text) => Some(
                text.get_ref()
                    .parse::<TransportSpec>()
                    .map_err(|e| checker.invalid("daemon.transport", text, e.to_string()))?,
            ),
            None => None,
        };
        let file_bus = match &file.daemon.bus {
            Some(text) => Some(
                text.get_ref()
                    .parse::<BusSpec>()
                    .map_err(|e| checker.invalid("daemon.bus", text, e.to_string()))?,
            ),
            None => None,
        };
        let file_state_dir = match &file.daemon.state_dir {
            Some(text) => {
                let path = PathBuf::from(text.get_ref());
                if !path.is_absolute() {
                    return Err(checker.invalid(
                        "daemon.state_dir",
                        text,
                        format!("'{}' is not an absolute path", path.display()),
                    ));
                }
                Some(path)
            }
            None => None,
        };

        let Some(transport) = overrides.transport.cloned().or(file_transport) else {
            return Err(ConfigError::NoTransport {
                file: source.unwrap_or(default_path).display().to_string(),
            });
        };
        let bus = overrides
            .bus
            .cloned()
            .or(file_bus)
            .unwrap_or(BusSpec::System);
        let state_dir = overrides
            .state_dir
            .map(Path::to_owned)
            .or(file_state_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));

        Ok(Config {
            transport,
            bus,
            state_dir,
            listen: check_listen(&checker, &file.listen)?,
            hce: check_hce(&checker, &file.hce)?,
            access: check_access(&checker, &file.access)?,
            nxp: check_nxp(&checker, &file.nxp)?,
            lock: check_lock(&checker, &file.lock)?,
            source: source.map(Path::to_owned),
        })
    }
}

fn check_listen(c: &Checker<'_>, raw: &ListenRepr) -> Result<ListenConfig, ConfigError> {
    let mut listen = ListenConfig::default();
    if let Some(list) = &raw.technologies {
        if list.get_ref().is_empty() {
            return Err(c.invalid(
                "listen.technologies",
                list,
                "must name at least one of \"a\", \"b\", \"f\"",
            ));
        }
        let mut seen = Vec::new();
        for item in list.get_ref() {
            let tech = match item.get_ref().to_ascii_lowercase().as_str() {
                "a" => Technology::A,
                "b" => Technology::B,
                "f" => Technology::F,
                other => {
                    return Err(c.invalid(
                        "listen.technologies",
                        item,
                        format!("'{other}' is not a technology (expected \"a\", \"b\" or \"f\")"),
                    ))
                }
            };
            if seen.contains(&tech) {
                return Err(c.invalid(
                    "listen.technologies",
                    item,
                    format!("\"{tech}\" is listed twice"),
                ));
            }
            seen.push(tech);
        }
        listen.technologies = seen;
    }

    let fwi = match &raw.fwi {
        Some(v) => Some(c.int_in_range("listen.fwi", v, 0..=i64::from(MAX_FWI))? as u8),
        None => None,
    };
    match &raw.li_a_rats_tb1 {
        Some(v) => {
            let tb1 = c.int_in_range("listen.li_a_rats_tb1", v, 0..=0xFF)? as u8;
            let tb1_fwi = tb1 >> 4;
            if tb1_fwi == 0x0F || tb1 & 0x0F == 0x0F {
                return Err(c.invalid(
                    "listen.li_a_rats_tb1",
                    v,
                    format!("{tb1:#04x} uses the reserved value 15 for FWI or SFGI (ISO/IEC 14443-4 §5.2.5)"),
                ));
            }
            if let Some(fwi) = fwi.filter(|&fwi| fwi != tb1_fwi) {
                return Err(c.invalid(
                    "listen.li_a_rats_tb1",
                    v,
                    format!("{tb1:#04x} announces FWI {tb1_fwi} but listen.fwi is {fwi}"),
                ));
            }
            listen.li_a_rats_tb1 = tb1;
            listen.fwi = tb1_fwi;
        }
        None => {
            listen.fwi = fwi.unwrap_or(DEFAULT_FWI);
            listen.li_a_rats_tb1 = listen.fwi << 4;
        }
    }

    if let Some(text) = &raw.historical_bytes {
        let bytes = c.hex("listen.historical_bytes", text)?;
        if bytes.len() > MAX_HISTORICAL_BYTES {
            return Err(c.invalid(
                "listen.historical_bytes",
                text,
                format!(
                    "{} octets is more than the maximum {MAX_HISTORICAL_BYTES}",
                    bytes.len()
                ),
            ));
        }
        listen.historical_bytes = bytes;
    }
    Ok(listen)
}

fn check_hce(c: &Checker<'_>, raw: &HceRepr) -> Result<HceConfig, ConfigError> {
    let mut hce = HceConfig::default();
    if let Some(v) = &raw.apdu_deadline_ms {
        let range = i64::from(MIN_APDU_DEADLINE_MS)..=i64::from(MAX_APDU_DEADLINE_MS);
        let ms = c.int_in_range("hce.apdu_deadline_ms", v, range)?;
        hce.apdu_deadline = Duration::from_millis(ms.unsigned_abs());
    }
    Ok(hce)
}

fn check_principals(
    c: &Checker<'_>,
    key: &str,
    raw: &Option<Vec<Spanned<String>>>,
) -> Result<Vec<Principal>, ConfigError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, item) in raw.iter().flatten().enumerate() {
        let key = format!("{key}[{i}]");
        let principal = item
            .get_ref()
            .parse::<Principal>()
            .map_err(|e| c.invalid(&key, item, e.to_string()))?;
        if !seen.insert(principal.clone()) {
            return Err(c.invalid(&key, item, format!("'{principal}' is listed twice")));
        }
        out.push(principal);
    }
    Ok(out)
}

fn check_access(c: &Checker<'_>, raw: &AccessRepr) -> Result<AccessConfig, ConfigError> {
    Ok(AccessConfig {
        payment: check_principals(c, "access.payment", &raw.payment)?,
        transit: check_principals(c, "access.transit", &raw.transit)?,
        allow_id_rebind: raw.allow_id_rebind.unwrap_or(false),
    })
}

fn check_nxp(c: &Checker<'_>, raw: &NxpRepr) -> Result<NxpConfig, ConfigError> {
    let mut nxp = NxpConfig::default();
    let pll = match &raw.clock {
        None => None,
        Some(v) => match v.get_ref().as_str() {
            "xtal" => Some(false),
            "pll" => Some(true),
            other => {
                return Err(c.invalid(
                    "nxp.clock",
                    v,
                    format!("'{other}' is not a clock source (expected \"xtal\" or \"pll\")"),
                ))
            }
        },
    };
    let pll_only = |key: &str, span: &Range<usize>| ConfigError::Invalid {
        file: c.file.clone(),
        location: Some(c.location(span)),
        key: key.to_owned(),
        message: "only applies with nxp.clock = \"pll\"".to_owned(),
    };
    match pll {
        Some(true) => {
            let Some(freq) = &raw.pll_freq_mhz else {
                return Err(ConfigError::Invalid {
                    file: c.file.clone(),
                    location: raw.clock.as_ref().map(|v| c.location(&v.span())),
                    key: "nxp.pll_freq_mhz".to_owned(),
                    message: "required with nxp.clock = \"pll\" (13, 19.2, 24, 26, 38.4 or 52)"
                        .to_owned(),
                });
            };
            let Some(pll_freq) = PllFreq::from_mhz(*freq.get_ref()) else {
                return Err(c.invalid(
                    "nxp.pll_freq_mhz",
                    freq,
                    format!(
                        "{} MHz is not a PLL input frequency (13, 19.2, 24, 26, 38.4 or 52)",
                        freq.get_ref()
                    ),
                ));
            };
            let clock_timeout = match &raw.clock_timeout {
                Some(v) => c.int_in_range("nxp.clock_timeout", v, 1..=0x1A)? as u8,
                None => 1,
            };
            nxp.clock = Some(NxpClock::Pll {
                freq: pll_freq,
                clock_timeout,
            });
        }
        Some(false) | None => {
            if let Some(v) = &raw.pll_freq_mhz {
                return Err(pll_only("nxp.pll_freq_mhz", &v.span()));
            }
            if let Some(v) = &raw.clock_timeout {
                return Err(pll_only("nxp.clock_timeout", &v.span()));
            }
            if pll == Some(false) {
                nxp.clock = Some(NxpClock::Xtal);
            }
        }
    }
    if let Some(v) = &raw.tvdd {
        nxp.tvdd = Some(match v.get_ref().to_ascii_uppercase().as_str() {
            "3.3V" => Tvdd::V3_3,
            "5V" => Tvdd::V5,
            other => {
                return Err(c.invalid(
                    "nxp.tvdd",
                    v,
                    format!("'{other}' is not a TVDD setting (expected \"3.3V\" or \"5V\"; use nxp.raw for others)"),
                ))
            }
        });
    }
    let mut tags: Vec<(u16, &'static str)> = nxp
        .tlvs()
        .iter()
        .map(|tlv| {
            let owner = if tlv.tag == NXP_TAG_PMU_CFG {
                "nxp.tvdd"
            } else {
                "nxp.clock"
            };
            (tlv.tag, owner)
        })
        .collect();
    for (i, item) in raw.raw.iter().flatten().enumerate() {
        let key = format!("nxp.raw[{i}]");
        let octets = c.hex(&key, item)?;
        let tlv = NxpTlv::decode(&octets)
            .map_err(|msg| c.invalid(&key, item, format!("'{}' {msg}", item.get_ref())))?;
        if let Some((_, owner)) = tags.iter().find(|(tag, _)| *tag == tlv.tag) {
            return Err(c.invalid(
                &key,
                item,
                format!("tag {:04X} is already set by {owner}", tlv.tag),
            ));
        }
        tags.push((tlv.tag, "an earlier nxp.raw entry"));
        nxp.raw.push(tlv);
    }
    Ok(nxp)
}

fn check_lock(c: &Checker<'_>, raw: &LockRepr) -> Result<LockMode, ConfigError> {
    match &raw.mode {
        None => Ok(LockMode::default()),
        Some(v) => match v.get_ref().as_str() {
            "logind" => Ok(LockMode::Logind),
            "locked" => Ok(LockMode::Locked),
            "unlocked" => Ok(LockMode::Unlocked),
            other => Err(c.invalid(
                "lock.mode",
                v,
                format!("'{other}' is not a lock mode (expected \"logind\", \"locked\" or \"unlocked\")"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{GpioLine, GpioLineSpec, I2cSpec, SimProfile};

    const EXAMPLE: &str = include_str!("../../config/nfcd.toml");

    fn parse(text: &str) -> Result<Config, String> {
        let cli = Cli {
            transport: Some(TransportSpec::Sim(SimProfile::Pn7150)),
            ..Cli::default()
        };
        Config::from_toml(text, Some(Path::new("nfcd.toml")), &cli).map_err(|e| e.to_string())
    }

    fn parse_no_override(text: &str) -> Result<Config, String> {
        Config::from_toml(text, Some(Path::new("nfcd.toml")), &Cli::default())
            .map_err(|e| e.to_string())
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(cfg) => panic!("accepted: {cfg:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn empty_file_gives_defaults() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg.transport, TransportSpec::Sim(SimProfile::Pn7150));
        assert_eq!(cfg.bus, BusSpec::System);
        assert_eq!(cfg.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(cfg.listen, ListenConfig::default());
        assert_eq!(cfg.listen.li_a_rats_tb1, 0x70);
        assert_eq!(cfg.hce.apdu_deadline, Duration::from_millis(500));
        assert_eq!(cfg.access, AccessConfig::default());
        assert_eq!(cfg.nxp, NxpConfig::default());
        assert!(cfg.nxp.tlvs().is_empty());
        assert_eq!(cfg.lock, LockMode::Logind);
    }

    #[test]
    fn shipped_example_parses() {
        let cfg = parse_no_override(EXAMPLE).unwrap();
        assert_eq!(
            cfg.transport,
            TransportSpec::I2c(I2cSpec {
                device: "/dev/i2c-1".into(),
                address: 0x28,
                irq: GpioLineSpec {
                    chip: "gpiochip0".into(),
                    line: GpioLine::Offset(23)
                },
                ven: Some(GpioLineSpec {
                    chip: "gpiochip0".into(),
                    line: GpioLine::Offset(24)
                }),
            })
        );
        assert_eq!(cfg.bus, BusSpec::System);
        assert_eq!(cfg.state_dir, PathBuf::from("/var/lib/nfcd"));
        assert_eq!(cfg.listen, ListenConfig::default());
        assert_eq!(cfg.hce, HceConfig::default());
        assert_eq!(cfg.access, AccessConfig::default());
        assert_eq!(cfg.nxp, NxpConfig::default());
        assert_eq!(cfg.lock, LockMode::Logind);
    }

    /// Every commented-out `# key = value` line of the example is valid too.
    #[test]
    fn shipped_example_alternatives_parse() {
        let uncommented: String = EXAMPLE
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
                {
                    rest
                }
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        assert_ne!(uncommented, EXAMPLE);
        let cfg = parse_no_override(&uncommented).unwrap();
        assert!(matches!(cfg.nxp.clock, Some(NxpClock::Pll { .. })));
        assert!(cfg.nxp.tvdd.is_some());
        assert!(!cfg.access.payment.is_empty());
    }

    #[test]
    fn full_file() {
        let cfg = parse_no_override(
            r#"
[daemon]
transport = "uart:/dev/ttyACM0@921600"
bus = "unix:path=/tmp/nfcd-bus"
state_dir = "/tmp/nfcd"

[listen]
technologies = ["a", "B"]
fwi = 8
historical_bytes = "80 73 C0 21"

[hce]
apdu_deadline_ms = 300

[access]
payment = ["user:wallet", "gid:1001"]
transit = ["group:transit", "uid:0"]
allow_id_rebind = true

[nxp]
clock = "pll"
pll_freq_mhz = 19.2
clock_timeout = 0x17
tvdd = "5V"
raw = ["A0 40 01 00", "18 01 01"]

[lock]
mode = "unlocked"
"#,
        )
        .unwrap();
        assert_eq!(
            cfg.transport.to_string(),
            "uart:/dev/ttyACM0@921600".to_string()
        );
        assert_eq!(cfg.bus, BusSpec::Address("unix:path=/tmp/nfcd-bus".into()));
        assert_eq!(cfg.state_dir, PathBuf::from("/tmp/nfcd"));
        assert_eq!(cfg.listen.technologies, vec![Technology::A, Technology::B]);
        assert_eq!(cfg.listen.fwi, 8);
        assert_eq!(cfg.listen.li_a_rats_tb1, 0x80);
        assert_eq!(cfg.listen.fwt(), Duration::from_nanos(302_064 * 256));
        assert_eq!(cfg.listen.historical_bytes, vec![0x80, 0x73, 0xC0, 0x21]);
        assert_eq!(cfg.hce.apdu_deadline, Duration::from_millis(300));
        assert_eq!(
            cfg.access.payment,
            vec![Principal::User("wallet".into()), Principal::Gid(1001)]
        );
        assert_eq!(
            cfg.access.transit,
            vec![Principal::Group("transit".into()), Principal::Uid(0)]
        );
        assert!(cfg.access.allow_id_rebind);
        assert_eq!(cfg.lock, LockMode::Unlocked);
        assert_eq!(cfg.source, Some(PathBuf::from("nfcd.toml")));
        // CORE_SET_CONFIG parameters: CLOCK_SEL_CFG = PLL 19.2 MHz, CLOCK_TO_CFG = 0x17,
        // PMU_CFG = 5 V, then the raw ones (NXP tag A040, NCI tag 0x18).
        let encoded: Vec<Vec<u8>> = cfg.nxp.tlvs().iter().map(NxpTlv::encode).collect();
        assert_eq!(
            encoded,
            vec![
                vec![0xA0, 0x03, 0x01, 0x11],
                vec![0xA0, 0x04, 0x01, 0x17],
                vec![0xA0, 0x0E, 0x03, 0x06, 0x64, 0x00],
                vec![0xA0, 0x40, 0x01, 0x00],
                vec![0x18, 0x01, 0x01],
            ]
        );
    }

    #[test]
    fn xtal_and_3v3() {
        let cfg = parse("[nxp]\nclock = \"xtal\"\ntvdd = \"3.3v\"\n").unwrap();
        let encoded: Vec<Vec<u8>> = cfg.nxp.tlvs().iter().map(NxpTlv::encode).collect();
        assert_eq!(
            encoded,
            vec![
                vec![0xA0, 0x03, 0x01, 0x08],
                vec![0xA0, 0x0E, 0x03, 0x02, 0x09, 0x00]
            ]
        );
    }

    #[test]
    fn rats_tb1_alone_sets_fwi() {
        let cfg = parse("[listen]\nli_a_rats_tb1 = 0x92\n").unwrap();
        assert_eq!(cfg.listen.fwi, 9);
        assert_eq!(cfg.listen.li_a_rats_tb1, 0x92);
    }

    #[test]
    fn command_line_overrides_file() {
        let cli = Cli {
            transport: "tcp:127.0.0.1:4000".parse().ok(),
            bus: Some(BusSpec::Session),
            state_dir: Some("relative/state".into()),
            ..Cli::default()
        };
        let text = "[daemon]\ntransport = \"sim\"\nbus = \"system\"\nstate_dir = \"/var/lib/x\"\n";
        let cfg = Config::from_toml(text, None, &cli).unwrap();
        assert_eq!(cfg.transport.to_string(), "tcp:127.0.0.1:4000");
        assert_eq!(cfg.bus, BusSpec::Session);
        assert_eq!(cfg.state_dir, PathBuf::from("relative/state"));
        assert_eq!(cfg.source, None);
    }

    #[test]
    fn no_transport_anywhere() {
        assert_eq!(
            parse_no_override("[hce]\napdu_deadline_ms = 100\n"),
            Err(
                "no transport configured: set `transport` in the [daemon] section of \
                 nfcd.toml or pass --transport"
                    .into()
            )
        );
    }

    #[test]
    fn syntax_error_has_file_line_column() {
        assert_eq!(
            err("[daemon]\nbus = \"system\n"),
            "nfcd.toml:2:14: daemon.bus: invalid basic string, expected `\"`"
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = err("[daemon]\nbus = \"system\"\nstate-dir = \"/x\"\n");
        assert!(
            e.starts_with("nfcd.toml:3:1: unknown field `state-dir`"),
            "{e}"
        );
        let e = err("[listen]\nfwii = 3\n");
        assert!(e.starts_with("nfcd.toml:2:1: unknown field `fwii`"), "{e}");
        let e = err("[hcee]\n");
        assert!(e.starts_with("nfcd.toml:1:2: unknown field `hcee`"), "{e}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let e = err("[hce]\napdu_deadline_ms = \"500\"\n");
        assert!(
            e.starts_with("nfcd.toml:2:20: hce.apdu_deadline_ms: invalid type: string \"500\""),
            "{e}"
        );
        let e = err("[access]\nallow_id_rebind = 1\n");
        assert!(
            e.starts_with("nfcd.toml:2:19: access.allow_id_rebind: invalid type: integer"),
            "{e}"
        );
        let e = err("# comment\n[ listen ]\ntechnologies = \"a\"\n");
        assert!(
            e.starts_with("nfcd.toml:3:16: listen.technologies: invalid type: string \"a\""),
            "{e}"
        );
    }

    #[test]
    fn value_errors_name_the_key() {
        let cases = [
            (
                "[hce]\napdu_deadline_ms = 3\n",
                "nfcd.toml:2:20: hce.apdu_deadline_ms: 3 is below the minimum 10",
            ),
            (
                "[hce]\napdu_deadline_ms = 5001\n",
                "nfcd.toml:2:20: hce.apdu_deadline_ms: 5001 is above the maximum 5000",
            ),
            (
                "[listen]\nfwi = 15\n",
                "nfcd.toml:2:7: listen.fwi: 15 is above the maximum 14",
            ),
            (
                "[listen]\nfwi = -1\n",
                "nfcd.toml:2:7: listen.fwi: -1 is below the minimum 0",
            ),
            (
                "[listen]\nli_a_rats_tb1 = 256\n",
                "nfcd.toml:2:17: listen.li_a_rats_tb1: 256 is above the maximum 255",
            ),
            (
                "[listen]\nli_a_rats_tb1 = 0xF0\n",
                "nfcd.toml:2:17: listen.li_a_rats_tb1: 0xf0 uses the reserved value 15 for FWI or SFGI (ISO/IEC 14443-4 §5.2.5)",
            ),
            (
                "[listen]\nfwi = 7\nli_a_rats_tb1 = 0x80\n",
                "nfcd.toml:3:17: listen.li_a_rats_tb1: 0x80 announces FWI 8 but listen.fwi is 7",
            ),
            (
                "[listen]\ntechnologies = []\n",
                "nfcd.toml:2:16: listen.technologies: must name at least one of \"a\", \"b\", \"f\"",
            ),
            (
                "[listen]\ntechnologies = [\"a\", \"v\"]\n",
                "nfcd.toml:2:22: listen.technologies: 'v' is not a technology (expected \"a\", \"b\" or \"f\")",
            ),
            (
                "[listen]\ntechnologies = [\"a\", \"A\"]\n",
                "nfcd.toml:2:22: listen.technologies: \"a\" is listed twice",
            ),
            (
                "[listen]\nhistorical_bytes = \"80 7\"\n",
                "nfcd.toml:2:20: listen.historical_bytes: '80 7' has an odd number of hex digits",
            ),
            (
                "[listen]\nhistorical_bytes = \"8G\"\n",
                "nfcd.toml:2:20: listen.historical_bytes: '8G' is not hex ('8G')",
            ),
            (
                "[listen]\nhistorical_bytes = \"00112233445566778899AABBCCDDEEFF\"\n",
                "nfcd.toml:2:20: listen.historical_bytes: 16 octets is more than the maximum 15",
            ),
            (
                "[daemon]\ntransport = \"i2c:/dev/i2c-1@0x2G,irq=gpiochip0:23\"\n",
                "nfcd.toml:2:13: daemon.transport: i2c: address '0x2G' is not a hex number (e.g. 0x28)",
            ),
            (
                "[daemon]\nbus = \"sytem\"\n",
                "nfcd.toml:2:7: daemon.bus: 'sytem' is not system, session or a D-Bus address (e.g. unix:path=/run/nfcd/bus)",
            ),
            (
                "[daemon]\nstate_dir = \"state\"\n",
                "nfcd.toml:2:13: daemon.state_dir: 'state' is not an absolute path",
            ),
            (
                "[access]\npayment = [\"user:a\", \"usr:b\"]\n",
                "nfcd.toml:2:22: access.payment[1]: 'usr:b' is not user:NAME, uid:N, group:NAME or gid:N",
            ),
            (
                "[access]\ntransit = [\"uid:x\"]\n",
                "nfcd.toml:2:12: access.transit[0]: 'uid:x': 'x' is not a numeric id",
            ),
            (
                "[access]\ntransit = [\"group:\"]\n",
                "nfcd.toml:2:12: access.transit[0]: 'group:': '' is not a valid name",
            ),
            (
                "[access]\npayment = [\"gid:5\", \"gid:5\"]\n",
                "nfcd.toml:2:21: access.payment[1]: 'gid:5' is listed twice",
            ),
            (
                "[nxp]\nclock = \"osc\"\n",
                "nfcd.toml:2:9: nxp.clock: 'osc' is not a clock source (expected \"xtal\" or \"pll\")",
            ),
            (
                "[nxp]\nclock = \"pll\"\n",
                "nfcd.toml:2:9: nxp.pll_freq_mhz: required with nxp.clock = \"pll\" (13, 19.2, 24, 26, 38.4 or 52)",
            ),
            (
                "[nxp]\nclock = \"pll\"\npll_freq_mhz = 20\n",
                "nfcd.toml:3:16: nxp.pll_freq_mhz: 20 MHz is not a PLL input frequency (13, 19.2, 24, 26, 38.4 or 52)",
            ),
            (
                "[nxp]\nclock = \"pll\"\npll_freq_mhz = 26\nclock_timeout = 27\n",
                "nfcd.toml:4:17: nxp.clock_timeout: 27 is above the maximum 26",
            ),
            (
                "[nxp]\nclock = \"xtal\"\npll_freq_mhz = 26\n",
                "nfcd.toml:3:16: nxp.pll_freq_mhz: only applies with nxp.clock = \"pll\"",
            ),
            (
                "[nxp]\nclock_timeout = 2\n",
                "nfcd.toml:2:17: nxp.clock_timeout: only applies with nxp.clock = \"pll\"",
            ),
            (
                "[nxp]\ntvdd = \"4.75V\"\n",
                "nfcd.toml:2:8: nxp.tvdd: '4.75V' is not a TVDD setting (expected \"3.3V\" or \"5V\"; use nxp.raw for others)",
            ),
            (
                "[nxp]\nraw = [\"A0 0E 0B 11 01\"]\n",
                "nfcd.toml:2:8: nxp.raw[0]: 'A0 0E 0B 11 01' length octet says 11 but 2 value octets follow",
            ),
            (
                "[nxp]\nraw = [\"A0\"]\n",
                "nfcd.toml:2:8: nxp.raw[0]: 'A0' is too short for a TLV",
            ),
            (
                "[nxp]\nraw = [\"A0 40\"]\n",
                "nfcd.toml:2:8: nxp.raw[0]: 'A0 40' has tag A040 but no length octet",
            ),
            (
                "[nxp]\ntvdd = \"5V\"\nraw = [\"A0 0E 01 00\"]\n",
                "nfcd.toml:3:8: nxp.raw[0]: tag A00E is already set by nxp.tvdd",
            ),
            (
                "[nxp]\nclock = \"xtal\"\nraw = [\"A0 03 01 08\"]\n",
                "nfcd.toml:3:8: nxp.raw[0]: tag A003 is already set by nxp.clock",
            ),
            (
                "[nxp]\nraw = [\"A0 40 01 00\", \"A0 40 01 01\"]\n",
                "nfcd.toml:2:23: nxp.raw[1]: tag A040 is already set by an earlier nxp.raw entry",
            ),
            (
                "[lock]\nmode = \"auto\"\n",
                "nfcd.toml:2:8: lock.mode: 'auto' is not a lock mode (expected \"logind\", \"locked\" or \"unlocked\")",
            ),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter_map(|(text, want)| {
                let got = err(text);
                (got != *want).then(|| format!("{text:?}\n  got:  {got}\n  want: {want}"))
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn load_explicit_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nfcd.toml");
        std::fs::write(&path, "[daemon]\ntransport = \"sim:nci2\"\n").unwrap();
        let cli = Cli {
            config: Some(path.clone()),
            ..Cli::default()
        };
        let cfg = Config::load(&cli).unwrap();
        assert_eq!(cfg.transport, TransportSpec::Sim(SimProfile::Nci2));
        assert_eq!(cfg.source, Some(path));
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        let cli = Cli {
            config: Some(path.clone()),
            transport: Some(TransportSpec::Sim(SimProfile::Pn7150)),
            ..Cli::default()
        };
        let e = Config::load(&cli).unwrap_err();
        assert!(matches!(&e, ConfigError::Read { path: p, .. } if *p == path));
        assert!(
            e.to_string()
                .starts_with(&format!("cannot read {}: ", path.display())),
            "{e}"
        );
    }

    #[test]
    fn missing_default_file_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("nfcd.toml");
        let cli = Cli {
            transport: Some(TransportSpec::Sim(SimProfile::Pn7150)),
            ..Cli::default()
        };
        let cfg = Config::load_with_default(&cli, &default).unwrap();
        assert_eq!(cfg.source, None);
        assert_eq!(cfg.listen, ListenConfig::default());
        // Without --transport the message points at the default file.
        let e = Config::load_with_default(&Cli::default(), &default).unwrap_err();
        assert!(
            e.to_string().contains(&default.display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn present_default_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let default = dir.path().join("nfcd.toml");
        std::fs::write(
            &default,
            "[lock]\nmode = \"locked\"\n[daemon]\ntransport = \"sim\"\n",
        )
        .unwrap();
        let cfg = Config::load_with_default(&Cli::default(), &default).unwrap();
        assert_eq!(cfg.lock, LockMode::Locked);
        assert_eq!(cfg.source, Some(default));
    }

    #[test]
    fn bus_spec_forms() {
        assert_eq!("system".parse(), Ok(BusSpec::System));
        assert_eq!("session".parse(), Ok(BusSpec::Session));
        assert_eq!(
            "unix:path=/run/nfcd/bus".parse(),
            Ok(BusSpec::Address("unix:path=/run/nfcd/bus".into()))
        );
        assert!("unix".parse::<BusSpec>().is_err());
        assert_eq!(BusSpec::Session.to_string(), "session");
    }

    #[test]
    fn principal_round_trip() {
        for text in ["user:alice", "uid:1000", "group:wallet", "gid:0"] {
            assert_eq!(
                text.parse::<Principal>().map(|p| p.to_string()),
                Ok(text.into())
            );
        }
    }

    #[test]
    fn fwt_doubles_per_fwi() {
        let listen = ListenConfig::default();
        // FWI 7: 302 µs × 128 ≈ 38.7 ms.
        assert_eq!(listen.fwt().as_micros(), 38_664);
        let listen = ListenConfig {
            fwi: 0,
            ..ListenConfig::default()
        };
        assert_eq!(listen.fwt().as_micros(), 302);
    }
}

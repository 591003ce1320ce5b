//! Listen-mode routing entries: the payload of RF_SET_LISTEN_MODE_ROUTING_CMD and NCI 2.0
//! RF_GET_LISTEN_MODE_ROUTING_NTF (NCI 1.0 §6.3.2, Tables 46–50; NCI 2.0 §6.3.2).
//!
//! ```text
//! More (1) | Number of Routing Entries (1) | Routing Entry [1..n]
//! Routing Entry: Qualifier-Type (1) | Length (1) | Value (Length)
//! Value:         Route = NFCEE ID (1) | Power State (1) | technology, protocol, AID, …
//! ```
//!
//! NCI 1.0 (Table 46, "TLV Coding for Listen Mode Routing") uses the whole first octet as the
//! entry type: 0x00 technology, 0x01 protocol, 0x02 AID, 0x03–0x9F RFU, 0xA0–0xFF proprietary.
//! NCI 2.0 splits it: bits 3–0 are the type (adding 0x3 system code and 0x4 APDU pattern,
//! 0x9–0xF proprietary) and bits 6–4 are qualifiers (bit 6 route blocked, bit 5 AID subset
//! match, bit 4 AID prefix match; bit 7 RFU). Every NCI 1.0 entry a controller may send parses
//! the same way under the NCI 2.0 reading — the 1.0 proprietary range 0xA0–0xFF has bit 7 set
//! and is kept as [`RoutingEntryRepr::Unknown`] — so parsing needs no version.
//! NCI 2.0 table numbers differ between revisions of the 2.x specification; its tables are cited
//! here by title.
//!
//! This module knows the layout only. Which entries a table should hold, and whether it fits
//! the controller, is decided by [`crate::routing`].

use super::{Error, Result, RfProtocol, RfTechnology};

/// Route (NFCEE ID) of the device host: the NCI "NFCEE IDs" table reserves 0x00 for the DH-NFCEE.
pub const ROUTE_DH: u8 = 0x00;

/// Longest AID in an AID-based entry (NCI 1.0 Table 49: 0–16 octets; ISO/IEC 7816-4:2005 §8.2.1.2).
pub const MAX_AID_LEN: usize = 16;

/// Octets of an entry before its value: Qualifier-Type and Length.
pub const ENTRY_HEADER_LEN: usize = 2;

/// Octets of a routing message before its entries: More and Number of Routing Entries.
pub const MESSAGE_HEADER_LEN: usize = 2;

/// Octets every known entry type starts its value with: Route and Power State.
const ROUTE_AND_POWER_LEN: usize = 2;

open_enum! {
    /// Routing entry type: NCI 1.0 Table 46 (whole octet), NCI 2.0 "Listen Mode Routing Entry
    /// Types" (bits 3–0 of the Qualifier-Type octet).
    pub enum RoutingEntryType(u8) {
        /// Technology-based entry: route by the RF technology the reader uses.
        Technology = 0x0 => "TECHNOLOGY_BASED",
        /// Protocol-based entry: route by RF protocol (e.g. ISO-DEP).
        Protocol = 0x1 => "PROTOCOL_BASED",
        /// AID-based entry: route by the AID of an ISO/IEC 7816-4 SELECT.
        Aid = 0x2 => "AID_BASED",
        /// NCI 2.0: system-code-based entry (NFC-F / T3T).
        SystemCode = 0x3 => "SYSTEM_CODE_BASED",
        /// NCI 2.0: APDU-pattern-based entry.
        ApduPattern = 0x4 => "APDU_PATTERN_BASED",
    }
}

/// NCI 2.0 qualifiers: bits 6–4 of the Qualifier-Type octet, kept in place (NCI 2.0 §6.3.2,
/// "Qualifier-Type field"). Always empty under NCI 1.0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Qualifiers(u8);

impl Qualifiers {
    /// No qualifier: exact AID match, route not blocked.
    pub const NONE: Qualifiers = Qualifiers(0x00);
    /// Bit 4: the AID matches a SELECT whose AID is *longer* than the entry's (prefix match).
    pub const MATCH_PREFIX: Qualifiers = Qualifiers(0x10);
    /// Bit 5: the AID matches a SELECT whose AID is *shorter* than the entry's (subset match,
    /// the reader selects by a truncated AID).
    pub const MATCH_SUBSET: Qualifiers = Qualifiers(0x20);
    /// Bit 6: in power states the entry does not list, the NFCC blocks the route instead of
    /// falling through to other entries.
    pub const ROUTE_BLOCKED: Qualifiers = Qualifiers(0x40);
    /// Every bit the specification defines.
    const DEFINED: u8 = 0x70;

    /// Qualifiers from the Qualifier-Type octet's high bits, `None` if an undefined bit
    /// (bit 7, or any of bits 3–0, which hold the type) is set.
    pub const fn from_bits(bits: u8) -> Option<Qualifiers> {
        if bits & !Self::DEFINED == 0 {
            Some(Qualifiers(bits))
        } else {
            None
        }
    }

    /// The bits, in place (bits 6–4).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// `true` when every bit of `other` is set in `self`.
    pub const fn contains(self, other: Qualifiers) -> bool {
        self.0 & other.0 == other.0
    }

    /// `true` when no qualifier is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets of qualifiers.
    pub const fn union(self, other: Qualifiers) -> Qualifiers {
        Qualifiers(self.0 | other.0)
    }
}

impl core::ops::BitOr for Qualifiers {
    type Output = Qualifiers;
    fn bitor(self, rhs: Qualifiers) -> Qualifiers {
        self.union(rhs)
    }
}

/// The power states an entry applies in (NCI 1.0 Table 50, NCI 2.0 "Value Field for Power
/// State"). A bit set means "route this way in that state". Bits this crate does not name are
/// kept, so a value read from a controller emits back unchanged.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PowerState(u8);

impl PowerState {
    /// No power state: the entry never applies.
    pub const EMPTY: PowerState = PowerState(0x00);
    /// Bit 0: switched on (NCI 2.0: switched on, screen on and unlocked).
    pub const SWITCHED_ON: PowerState = PowerState(0x01);
    /// Bit 1: switched off (the NFCC runs from the field or a residual supply).
    pub const SWITCHED_OFF: PowerState = PowerState(0x02);
    /// Bit 2: battery off.
    pub const BATTERY_OFF: PowerState = PowerState(0x04);
    /// NCI 2.0 bit 3: switched on, sub-state 1 — screen off, unlocked, in the mapping NCI 2.0
    /// DH stacks use with CORE_SET_POWER_SUB_STATE_CMD.
    pub const SWITCHED_ON_SUB_STATE_1: PowerState = PowerState(0x08);
    /// NCI 2.0 bit 4: switched on, sub-state 2 — screen on, locked.
    pub const SWITCHED_ON_SUB_STATE_2: PowerState = PowerState(0x10);
    /// NCI 2.0 bit 5: switched on, sub-state 3 — screen off, locked.
    pub const SWITCHED_ON_SUB_STATE_3: PowerState = PowerState(0x20);
    /// Every state NCI 1.0 defines (bits 2–0).
    pub const ALL_NCI1: PowerState = PowerState(0x07);
    /// Every state NCI 2.0 defines (bits 5–0).
    pub const ALL_NCI2: PowerState = PowerState(0x3F);
    /// The NCI 2.0 sub-states, all refinements of "switched on".
    const SUB_STATES: u8 = 0x38;

    const NAMES: [(u8, &'static str); 6] = [
        (0x01, "SWITCHED_ON"),
        (0x02, "SWITCHED_OFF"),
        (0x04, "BATTERY_OFF"),
        (0x08, "SWITCHED_ON_SUB_STATE_1"),
        (0x10, "SWITCHED_ON_SUB_STATE_2"),
        (0x20, "SWITCHED_ON_SUB_STATE_3"),
    ];

    /// The power state octet as received, RFU bits included.
    pub const fn from_bits_retain(bits: u8) -> PowerState {
        PowerState(bits)
    }

    /// The octet.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// `true` when every state of `other` is in `self`.
    pub const fn contains(self, other: PowerState) -> bool {
        self.0 & other.0 == other.0
    }

    /// `true` when no state is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// States in either.
    pub const fn union(self, other: PowerState) -> PowerState {
        PowerState(self.0 | other.0)
    }

    /// States in both.
    pub const fn intersection(self, other: PowerState) -> PowerState {
        PowerState(self.0 & other.0)
    }

    /// The nearest NCI 1.0 value: the 2.0 sub-states are parts of "switched on", which NCI 1.0
    /// knows only as a whole, so any of them becomes [`PowerState::SWITCHED_ON`]; bits NCI 1.0
    /// reserves are cleared.
    pub const fn for_nci1(self) -> PowerState {
        let mut bits = self.0 & Self::ALL_NCI1.0;
        if self.0 & Self::SUB_STATES != 0 {
            bits |= Self::SWITCHED_ON.0;
        }
        PowerState(bits)
    }
}

impl core::ops::BitOr for PowerState {
    type Output = PowerState;
    fn bitor(self, rhs: PowerState) -> PowerState {
        self.union(rhs)
    }
}

impl core::fmt::Debug for PowerState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PowerState({self})")
    }
}

impl core::fmt::Display for PowerState {
    /// Names joined by `|`, unnamed bits in hex, `EMPTY` for none.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 == 0 {
            return f.write_str("EMPTY");
        }
        let mut rest = self.0;
        let mut first = true;
        for (bit, name) in Self::NAMES {
            if rest & bit != 0 {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                rest &= !bit;
                first = false;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "0x{rest:02X}")?;
        }
        Ok(())
    }
}

/// One listen-mode routing entry (NCI 1.0 Tables 46–50, NCI 2.0 §6.3.2).
///
/// Variable parts borrow the buffer they were parsed from (smoltcp style). `route` is the
/// NFCEE ID the entry sends matching traffic to ([`ROUTE_DH`] for the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutingEntryRepr<'a> {
    /// Technology-based (NCI 1.0 Table 47).
    Technology {
        /// NCI 2.0 qualifiers (only [`Qualifiers::ROUTE_BLOCKED`] has a meaning here).
        qualifiers: Qualifiers,
        /// NFCEE ID.
        route: u8,
        /// Power states the entry applies in.
        power_state: PowerState,
        /// RF technology.
        technology: RfTechnology,
    },
    /// Protocol-based (NCI 1.0 Table 48).
    Protocol {
        /// NCI 2.0 qualifiers (only [`Qualifiers::ROUTE_BLOCKED`] has a meaning here).
        qualifiers: Qualifiers,
        /// NFCEE ID.
        route: u8,
        /// Power states the entry applies in.
        power_state: PowerState,
        /// RF protocol.
        protocol: RfProtocol,
    },
    /// AID-based (NCI 1.0 Table 49).
    Aid {
        /// NCI 2.0 qualifiers: prefix / subset match, route blocked.
        qualifiers: Qualifiers,
        /// NFCEE ID.
        route: u8,
        /// Power states the entry applies in.
        power_state: PowerState,
        /// The AID, 0–16 octets (an empty AID matches no SELECT by name but may serve as a
        /// default AID route on NCI 2.0 controllers).
        aid: &'a [u8],
    },
    /// NCI 2.0 system-code-based ("Value Field for System Code-based Routing").
    SystemCode {
        /// NCI 2.0 qualifiers.
        qualifiers: Qualifiers,
        /// NFCEE ID.
        route: u8,
        /// Power states the entry applies in.
        power_state: PowerState,
        /// One or more 2-octet system codes, as sent.
        system_codes: &'a [u8],
    },
    /// NCI 2.0 APDU-pattern-based ("Value Field for APDU Pattern-based Routing"): a command
    /// APDU matches when `apdu & mask == reference & mask`.
    ApduPattern {
        /// NCI 2.0 qualifiers.
        qualifiers: Qualifiers,
        /// NFCEE ID.
        route: u8,
        /// Power states the entry applies in.
        power_state: PowerState,
        /// Reference data, `n` octets.
        reference: &'a [u8],
        /// Mask, the same `n` octets.
        mask: &'a [u8],
    },
    /// An RFU or proprietary type, kept whole.
    Unknown {
        /// The Qualifier-Type octet as received.
        qualifier_type: u8,
        /// The value, not interpreted.
        value: &'a [u8],
    },
}

/// Split one TLV off the front: `(qualifier-type, value, rest)`.
fn split_tlv(bytes: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let (&qualifier_type, rest) = bytes.split_first().ok_or(Error::Truncated)?;
    let (&len, rest) = rest.split_first().ok_or(Error::Truncated)?;
    if rest.len() < usize::from(len) {
        return Err(Error::Truncated);
    }
    let (value, rest) = rest.split_at(usize::from(len));
    Ok((qualifier_type, value, rest))
}

impl<'a> RoutingEntryRepr<'a> {
    /// Parse exactly one entry; bytes after it are `TrailingBytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<RoutingEntryRepr<'a>> {
        let (entry, rest) = RoutingEntryRepr::parse_first(bytes)?;
        if rest.is_empty() {
            Ok(entry)
        } else {
            Err(Error::TrailingBytes)
        }
    }

    /// Parse the entry at the front of `bytes` and return it with the bytes after it.
    ///
    /// Errors: `Truncated` when the TLV runs past the buffer; `BadLength` when the length does
    /// not suit a known type (technology and protocol: 3; AID: 2–18; system code: 2 plus a
    /// non-zero even count; APDU pattern: 2 plus twice a non-zero `n`).
    pub fn parse_first(bytes: &'a [u8]) -> Result<(RoutingEntryRepr<'a>, &'a [u8])> {
        let (qualifier_type, value, rest) = split_tlv(bytes)?;
        let qualifiers = Qualifiers::from_bits(qualifier_type & 0xF0);
        let entry_type = RoutingEntryType::from(qualifier_type & 0x0F);
        let (qualifiers, entry_type) = match (qualifiers, entry_type) {
            (Some(q), t) if !matches!(t, RoutingEntryType::Unknown(_)) => (q, t),
            _ => {
                let entry = RoutingEntryRepr::Unknown {
                    qualifier_type,
                    value,
                };
                return Ok((entry, rest));
            }
        };
        let Some((head, tail)) = value.split_first_chunk::<ROUTE_AND_POWER_LEN>() else {
            return Err(Error::BadLength);
        };
        let [route, power] = *head;
        let power_state = PowerState::from_bits_retain(power);
        let entry = match entry_type {
            RoutingEntryType::Technology | RoutingEntryType::Protocol => {
                let &[code] = tail else {
                    return Err(Error::BadLength);
                };
                if entry_type == RoutingEntryType::Technology {
                    RoutingEntryRepr::Technology {
                        qualifiers,
                        route,
                        power_state,
                        technology: RfTechnology::from(code),
                    }
                } else {
                    RoutingEntryRepr::Protocol {
                        qualifiers,
                        route,
                        power_state,
                        protocol: RfProtocol::from(code),
                    }
                }
            }
            RoutingEntryType::Aid => {
                if tail.len() > MAX_AID_LEN {
                    return Err(Error::BadLength);
                }
                RoutingEntryRepr::Aid {
                    qualifiers,
                    route,
                    power_state,
                    aid: tail,
                }
            }
            RoutingEntryType::SystemCode => {
                if tail.is_empty() || tail.len() % 2 != 0 {
                    return Err(Error::BadLength);
                }
                RoutingEntryRepr::SystemCode {
                    qualifiers,
                    route,
                    power_state,
                    system_codes: tail,
                }
            }
            RoutingEntryType::ApduPattern => {
                if tail.is_empty() || tail.len() % 2 != 0 {
                    return Err(Error::BadLength);
                }
                let (reference, mask) = tail.split_at(tail.len() / 2);
                RoutingEntryRepr::ApduPattern {
                    qualifiers,
                    route,
                    power_state,
                    reference,
                    mask,
                }
            }
            RoutingEntryType::Unknown(_) => {
                // Handled above; kept whole should a future type land here.
                RoutingEntryRepr::Unknown {
                    qualifier_type,
                    value,
                }
            }
        };
        Ok((entry, rest))
    }

    /// The entry type ([`RoutingEntryType::Unknown`] carries the whole Qualifier-Type octet of
    /// an unknown entry).
    pub fn entry_type(&self) -> RoutingEntryType {
        match self {
            RoutingEntryRepr::Technology { .. } => RoutingEntryType::Technology,
            RoutingEntryRepr::Protocol { .. } => RoutingEntryType::Protocol,
            RoutingEntryRepr::Aid { .. } => RoutingEntryType::Aid,
            RoutingEntryRepr::SystemCode { .. } => RoutingEntryType::SystemCode,
            RoutingEntryRepr::ApduPattern { .. } => RoutingEntryType::ApduPattern,
            RoutingEntryRepr::Unknown { qualifier_type, .. } => {
                RoutingEntryType::Unknown(*qualifier_type)
            }
        }
    }

    /// Qualifiers, `None` for an unknown entry.
    pub fn qualifiers(&self) -> Option<Qualifiers> {
        self.route_power_qualifiers().map(|(_, _, q)| q)
    }

    /// Route (NFCEE ID), `None` for an unknown entry.
    pub fn route(&self) -> Option<u8> {
        self.route_power_qualifiers().map(|(r, _, _)| r)
    }

    /// Power state, `None` for an unknown entry.
    pub fn power_state(&self) -> Option<PowerState> {
        self.route_power_qualifiers().map(|(_, p, _)| p)
    }

    fn route_power_qualifiers(&self) -> Option<(u8, PowerState, Qualifiers)> {
        match *self {
            RoutingEntryRepr::Technology {
                qualifiers,
                route,
                power_state,
                ..
            }
            | RoutingEntryRepr::Protocol {
                qualifiers,
                route,
                power_state,
                ..
            }
            | RoutingEntryRepr::Aid {
                qualifiers,
                route,
                power_state,
                ..
            }
            | RoutingEntryRepr::SystemCode {
                qualifiers,
                route,
                power_state,
                ..
            }
            | RoutingEntryRepr::ApduPattern {
                qualifiers,
                route,
                power_state,
                ..
            } => Some((route, power_state, qualifiers)),
            RoutingEntryRepr::Unknown { .. } => None,
        }
    }

    /// Length of the value field.
    fn value_len(&self) -> usize {
        match self {
            RoutingEntryRepr::Technology { .. } | RoutingEntryRepr::Protocol { .. } => 3,
            RoutingEntryRepr::Aid { aid, .. } => ROUTE_AND_POWER_LEN + aid.len(),
            RoutingEntryRepr::SystemCode { system_codes, .. } => {
                ROUTE_AND_POWER_LEN + system_codes.len()
            }
            RoutingEntryRepr::ApduPattern {
                reference, mask, ..
            } => ROUTE_AND_POWER_LEN + reference.len() + mask.len(),
            RoutingEntryRepr::Unknown { value, .. } => value.len(),
        }
    }

    /// Encoded length: 2 + value length. This is what the entry costs against the controller's
    /// "Max Routing Table Size" (CORE_INIT_RSP).
    pub fn buffer_len(&self) -> usize {
        ENTRY_HEADER_LEN + self.value_len()
    }

    /// Write the entry into the first [`buffer_len`](Self::buffer_len) octets of `out`.
    ///
    /// Errors: `BufferTooSmall`; `BadLength` for an AID over 16 octets, an empty or odd system
    /// code list, an empty APDU pattern or one whose mask and reference differ in length, or a
    /// value over 255 octets.
    pub fn emit(&self, out: &mut [u8]) -> Result<()> {
        let value_len = u8::try_from(self.value_len()).map_err(|_| Error::BadLength)?;
        match self {
            RoutingEntryRepr::Aid { aid, .. } if aid.len() > MAX_AID_LEN => {
                return Err(Error::BadLength)
            }
            RoutingEntryRepr::SystemCode { system_codes, .. }
                if system_codes.is_empty() || system_codes.len() % 2 != 0 =>
            {
                return Err(Error::BadLength)
            }
            RoutingEntryRepr::ApduPattern {
                reference, mask, ..
            } if reference.is_empty() || reference.len() != mask.len() => {
                return Err(Error::BadLength)
            }
            _ => {}
        }
        let out = out
            .get_mut(..self.buffer_len())
            .ok_or(Error::BufferTooSmall)?;
        let (header, value) = out.split_at_mut(ENTRY_HEADER_LEN);
        header[1] = value_len;
        let (type_code, qualifiers) = match *self {
            RoutingEntryRepr::Unknown {
                qualifier_type,
                value: raw,
            } => {
                header[0] = qualifier_type;
                value.copy_from_slice(raw);
                return Ok(());
            }
            ref known => (
                u8::from(known.entry_type()),
                known.qualifiers().unwrap_or(Qualifiers::NONE),
            ),
        };
        header[0] = qualifiers.bits() | type_code;
        let (head, tail) = value.split_at_mut(ROUTE_AND_POWER_LEN);
        if let Some((route, power_state, _)) = self.route_power_qualifiers() {
            head[0] = route;
            head[1] = power_state.bits();
        }
        match *self {
            RoutingEntryRepr::Technology { technology, .. } => {
                tail.copy_from_slice(&[u8::from(technology)])
            }
            RoutingEntryRepr::Protocol { protocol, .. } => {
                tail.copy_from_slice(&[u8::from(protocol)])
            }
            RoutingEntryRepr::Aid { aid, .. } => tail.copy_from_slice(aid),
            RoutingEntryRepr::SystemCode { system_codes, .. } => tail.copy_from_slice(system_codes),
            RoutingEntryRepr::ApduPattern {
                reference, mask, ..
            } => {
                let (r, m) = tail.split_at_mut(reference.len());
                r.copy_from_slice(reference);
                m.copy_from_slice(mask);
            }
            RoutingEntryRepr::Unknown { .. } => {}
        }
        Ok(())
    }
}

/// Iterator over a run of routing entries (the part of the message after its two header
/// octets). Yields each entry in order; after the first error it yields that error and stops.
#[derive(Debug, Clone)]
pub struct RoutingEntries<'a> {
    rest: &'a [u8],
}

impl<'a> RoutingEntries<'a> {
    /// Iterate the entries in `entries`.
    pub const fn new(entries: &'a [u8]) -> RoutingEntries<'a> {
        RoutingEntries { rest: entries }
    }
}

impl<'a> Iterator for RoutingEntries<'a> {
    type Item = Result<RoutingEntryRepr<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match RoutingEntryRepr::parse_first(self.rest) {
            Ok((entry, rest)) => {
                self.rest = rest;
                Some(Ok(entry))
            }
            Err(err) => {
                self.rest = &[];
                Some(Err(err))
            }
        }
    }
}

impl core::iter::FusedIterator for RoutingEntries<'_> {}

/// The payload shared by RF_SET_LISTEN_MODE_ROUTING_CMD and NCI 2.0
/// RF_GET_LISTEN_MODE_ROUTING_NTF (NCI 1.0 §6.3.2, the "More" field values and the entry list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoutingMessage<'a> {
    /// More: `true` (0x01) when further messages of the same table follow, `false` (0x00) for
    /// the last one.
    pub more: bool,
    /// Number of Routing Entries.
    pub count: u8,
    /// The entries, validated.
    pub entries: &'a [u8],
}

impl<'a> RoutingMessage<'a> {
    /// Wrap already encoded `entries`, counting and validating them.
    pub fn new(more: bool, entries: &'a [u8]) -> Result<RoutingMessage<'a>> {
        let mut count: u8 = 0;
        for entry in RoutingEntries::new(entries) {
            entry?;
            count = count.checked_add(1).ok_or(Error::BadLength)?;
        }
        Ok(RoutingMessage {
            more,
            count,
            entries,
        })
    }

    /// Parse a whole payload. Errors: `Truncated`; `BadValue` for a More octet other than 0x00
    /// or 0x01 (RFU); `BadLength` when the count disagrees with the entries present; any entry
    /// error.
    pub fn parse(payload: &'a [u8]) -> Result<RoutingMessage<'a>> {
        let Some((&[more, count], entries)) = payload.split_first_chunk::<MESSAGE_HEADER_LEN>()
        else {
            return Err(Error::Truncated);
        };
        let more = match more {
            0x00 => false,
            0x01 => true,
            _ => return Err(Error::BadValue),
        };
        let message = RoutingMessage::new(more, entries)?;
        if message.count != count {
            return Err(Error::BadLength);
        }
        Ok(message)
    }

    /// The entries, in order.
    pub fn iter(&self) -> RoutingEntries<'a> {
        RoutingEntries::new(self.entries)
    }

    /// Encoded length.
    pub fn buffer_len(&self) -> usize {
        MESSAGE_HEADER_LEN + self.entries.len()
    }

    /// Write the payload into the first [`buffer_len`](Self::buffer_len) octets of `out`.
    pub fn emit(&self, out: &mut [u8]) -> Result<()> {
        let out = out
            .get_mut(..self.buffer_len())
            .ok_or(Error::BufferTooSmall)?;
        let (header, entries) = out.split_at_mut(MESSAGE_HEADER_LEN);
        header[0] = u8::from(self.more);
        header[1] = self.count;
        entries.copy_from_slice(self.entries);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Technology-based: NFC-A → DH, switched on.
    const TECH_A_DH: [u8; 5] = [0x00, 0x03, 0x00, 0x01, 0x00];
    // Protocol-based: ISO-DEP → DH, switched on.
    const ISO_DEP_DH: [u8; 5] = [0x01, 0x03, 0x00, 0x01, 0x04];
    // AID-based, NCI 2.0 prefix match: A0 00 00 00 04 → NFCEE 0x10, on | off | battery off.
    const AID_PREFIX: [u8; 9] = [0x12, 0x07, 0x10, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x04];
    // NCI 2.0 system code 0x12FC (NDEF on FeliCa) → NFCEE 0x10, route blocked.
    const SYSTEM_CODE: [u8; 6] = [0x43, 0x04, 0x10, 0x01, 0x12, 0xFC];
    // NCI 2.0 APDU pattern: CLA/INS 80 CA with mask FF FF.
    const APDU_PATTERN: [u8; 8] = [0x04, 0x06, 0x00, 0x01, 0x80, 0xCA, 0xFF, 0xFF];
    // NCI 1.0 proprietary type 0xA0.
    const PROPRIETARY: [u8; 4] = [0xA0, 0x02, 0x55, 0x66];

    fn round_trip(bytes: &[u8]) -> RoutingEntryRepr<'_> {
        let entry = RoutingEntryRepr::parse(bytes).unwrap();
        assert_eq!(entry.buffer_len(), bytes.len());
        let mut out = [0u8; 32];
        entry.emit(&mut out).unwrap();
        assert_eq!(&out[..bytes.len()], bytes);
        entry
    }

    #[test]
    fn technology_entry() {
        assert_eq!(
            round_trip(&TECH_A_DH),
            RoutingEntryRepr::Technology {
                qualifiers: Qualifiers::NONE,
                route: ROUTE_DH,
                power_state: PowerState::SWITCHED_ON,
                technology: RfTechnology::NfcA,
            }
        );
    }

    #[test]
    fn protocol_entry() {
        let entry = round_trip(&ISO_DEP_DH);
        assert_eq!(entry.entry_type(), RoutingEntryType::Protocol);
        assert_eq!(
            entry,
            RoutingEntryRepr::Protocol {
                qualifiers: Qualifiers::NONE,
                route: ROUTE_DH,
                power_state: PowerState::SWITCHED_ON,
                protocol: RfProtocol::IsoDep,
            }
        );
    }

    #[test]
    fn aid_entry_with_prefix_qualifier() {
        let entry = round_trip(&AID_PREFIX);
        assert_eq!(
            entry,
            RoutingEntryRepr::Aid {
                qualifiers: Qualifiers::MATCH_PREFIX,
                route: 0x10,
                power_state: PowerState::ALL_NCI1,
                aid: &[0xA0, 0x00, 0x00, 0x00, 0x04],
            }
        );
        assert_eq!(entry.route(), Some(0x10));
    }

    #[test]
    fn nci2_system_code_and_apdu_pattern_entries() {
        let entry = round_trip(&SYSTEM_CODE);
        assert_eq!(entry.qualifiers(), Some(Qualifiers::ROUTE_BLOCKED));
        assert!(matches!(
            entry,
            RoutingEntryRepr::SystemCode {
                system_codes: &[0x12, 0xFC],
                ..
            }
        ));
        assert_eq!(
            round_trip(&APDU_PATTERN),
            RoutingEntryRepr::ApduPattern {
                qualifiers: Qualifiers::NONE,
                route: ROUTE_DH,
                power_state: PowerState::SWITCHED_ON,
                reference: &[0x80, 0xCA],
                mask: &[0xFF, 0xFF],
            }
        );
    }

    #[test]
    fn unknown_and_proprietary_entries_round_trip() {
        let entry = round_trip(&PROPRIETARY);
        assert_eq!(
            entry,
            RoutingEntryRepr::Unknown {
                qualifier_type: 0xA0,
                value: &[0x55, 0x66],
            }
        );
        assert_eq!(entry.entry_type(), RoutingEntryType::Unknown(0xA0));
        assert_eq!(entry.route(), None);
        // NCI 2.0 type 0x9 (proprietary) with a qualifier bit.
        round_trip(&[0x19, 0x00]);
    }

    #[test]
    fn bad_lengths_are_errors() {
        // Technology entry with a 2-octet value.
        assert_eq!(
            RoutingEntryRepr::parse(&[0x00, 0x02, 0x00, 0x01]),
            Err(Error::BadLength)
        );
        // AID of 17 octets.
        let mut long_aid = [0u8; 21];
        long_aid[..2].copy_from_slice(&[0x02, 19]);
        assert_eq!(RoutingEntryRepr::parse(&long_aid), Err(Error::BadLength));
        // Odd APDU pattern.
        assert_eq!(
            RoutingEntryRepr::parse(&[0x04, 0x03, 0x00, 0x01, 0x80]),
            Err(Error::BadLength)
        );
        // Length runs past the buffer.
        assert_eq!(
            RoutingEntryRepr::parse(&[0x02, 0x07, 0x10, 0x01]),
            Err(Error::Truncated)
        );
        assert_eq!(
            RoutingEntryRepr::parse(&[0x00, 0x03, 0x00, 0x01, 0x00, 0xFF]),
            Err(Error::TrailingBytes)
        );
        let bad_pattern = RoutingEntryRepr::ApduPattern {
            qualifiers: Qualifiers::NONE,
            route: 0,
            power_state: PowerState::SWITCHED_ON,
            reference: &[0x80],
            mask: &[0xFF, 0xFF],
        };
        assert_eq!(bad_pattern.emit(&mut [0u8; 16]), Err(Error::BadLength));
        assert_eq!(
            RoutingEntryRepr::parse(&TECH_A_DH)
                .unwrap()
                .emit(&mut [0u8; 4]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn routing_message_and_iterator() {
        // RF_SET_LISTEN_MODE_ROUTING_CMD payload: last message, 2 entries.
        let payload = [
            0x00, 0x02, 0x01, 0x03, 0x00, 0x01, 0x04, 0x00, 0x03, 0x00, 0x01, 0x00,
        ];
        let message = RoutingMessage::parse(&payload).unwrap();
        assert!(!message.more);
        assert_eq!(message.count, 2);
        let types: std::vec::Vec<_> = message.iter().map(|e| e.unwrap().entry_type()).collect();
        assert_eq!(
            types,
            [RoutingEntryType::Protocol, RoutingEntryType::Technology]
        );
        let mut out = [0u8; 12];
        message.emit(&mut out).unwrap();
        assert_eq!(out, payload);

        // Count says 3, two entries present.
        let mut wrong_count = payload;
        wrong_count[1] = 3;
        assert_eq!(RoutingMessage::parse(&wrong_count), Err(Error::BadLength));
        // More = 0x02 is RFU.
        let mut wrong_more = payload;
        wrong_more[0] = 2;
        assert_eq!(RoutingMessage::parse(&wrong_more), Err(Error::BadValue));
        // An iterator stops after its first error.
        let mut entries = RoutingEntries::new(&[0x00, 0x05, 0x00]);
        assert_eq!(entries.next(), Some(Err(Error::Truncated)));
        assert_eq!(entries.next(), None);
    }

    #[test]
    fn power_state_bits() {
        let screen_off_locked = PowerState::SWITCHED_ON_SUB_STATE_3;
        assert_eq!(screen_off_locked.for_nci1(), PowerState::SWITCHED_ON);
        assert_eq!(
            (PowerState::SWITCHED_OFF | PowerState::SWITCHED_ON_SUB_STATE_1).for_nci1(),
            PowerState::SWITCHED_ON | PowerState::SWITCHED_OFF
        );
        assert_eq!(
            PowerState::from_bits_retain(0xC0).for_nci1(),
            PowerState::EMPTY
        );
        assert_eq!(
            std::format!("{}", PowerState::from_bits_retain(0x85)),
            "SWITCHED_ON | BATTERY_OFF | 0x80"
        );
        assert!(PowerState::ALL_NCI2.contains(PowerState::SWITCHED_ON_SUB_STATE_2));
        assert_eq!(Qualifiers::from_bits(0x80), None);
        assert_eq!(
            Qualifiers::from_bits(0x30),
            Some(Qualifiers::MATCH_PREFIX | Qualifiers::MATCH_SUBSET)
        );
    }
}

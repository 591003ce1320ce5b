//! Listen-mode routing table builder (NCI 1.0 §6.3, NCI 2.0 §6.3).
//!
//! The card emulation model: the default route is the host. Host card emulation AIDs then cost
//! no routing-table space — the daemon resolves every SELECT itself — so the table holds
//! protocol and technology entries (ISO-DEP → host) plus AID entries only for off-host targets
//! (an NFCEE such as a secure element). The NFCC matches AID entries first, then protocol, then
//! technology entries (NCI 1.0 §6.3), so those few off-host AIDs leave the host route intact.
//!
//! What this module does:
//! - takes the wanted routes ([`RoutingRule`]) and the controller's limits ([`RoutingLimits`]:
//!   NCI version, "Max Routing Table Size" and "Max Control Packet Payload Size" from
//!   CORE_INIT_RSP);
//! - accounts the encoded size (the sum of the entries' TLV sizes, 2 + value length each)
//!   against the table size, falling back [`RoutingMode::Mixed`] → [`RoutingMode::Protocol`] →
//!   [`RoutingMode::Technology`] when a mode does not fit, and one more step on request when the
//!   controller refuses a table ([`RoutingTableBuilder::handle_refusal`]);
//! - emits the RF_SET_LISTEN_MODE_ROUTING_CMD payloads, each within the control packet limit,
//!   More = 1 on all but the last, and a decoded view of the table.
//!
//! What it does not do: send anything, wait for RF_SET_LISTEN_MODE_ROUTING_RSP, or decide which
//! service owns an AID. It needs no allocator: at most [`MAX_RULES`] rules, AIDs of at most 16
//! octets, and a table buffer of fixed size ([`RoutingTable`] is about 1.6 KiB).

use core::fmt;

use heapless::Vec;

use crate::wire::routing::{
    PowerState, Qualifiers, RoutingEntries, RoutingEntryRepr, ENTRY_HEADER_LEN, MAX_AID_LEN,
    MESSAGE_HEADER_LEN, ROUTE_DH,
};
use crate::wire::{Error, NciVersion, RfProtocol, RfTechnology, Status};

/// Most rules a builder holds (technology, protocol and AID rules together).
pub const MAX_RULES: usize = 64;

/// Shortest AID a rule accepts (ISO/IEC 7816-4:2005 §8.2.1.2: 5 to 16 octets).
pub const MIN_AID_LEN: usize = 5;

/// Largest entry the builder emits: an AID entry with a 16-octet AID.
const MAX_ENTRY_LEN: usize = ENTRY_HEADER_LEN + 2 + MAX_AID_LEN;

/// Every command holds at least one entry, so a table of [`MAX_RULES`] entries needs at most
/// that many commands and headers.
const TABLE_BUF_LEN: usize = MAX_RULES * (MAX_ENTRY_LEN + MESSAGE_HEADER_LEN);

/// An application identifier of 5 to 16 octets (ISO/IEC 7816-4:2005 §8.2.1.2).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Aid(Vec<u8, MAX_AID_LEN>);

impl Aid {
    /// An AID, or [`RoutingError::AidLength`] outside 5..=16 octets.
    pub fn new(bytes: &[u8]) -> Result<Aid, RoutingError> {
        if bytes.len() < MIN_AID_LEN {
            return Err(RoutingError::AidLength);
        }
        Vec::from_slice(bytes)
            .map(Aid)
            .map_err(|_| RoutingError::AidLength)
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Aid {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// How an AID rule matches the AID of a SELECT (NCI 2.0 §6.3.2, "Qualifier-Type field").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AidMatch {
    /// The SELECT names exactly this AID.
    Exact,
    /// The SELECT names this AID or a longer one starting with it (`A000000004*`).
    Prefix,
    /// The SELECT names a leading part of this AID (a reader selecting by truncated AID).
    Subset,
}

impl AidMatch {
    fn qualifiers(self) -> Qualifiers {
        match self {
            AidMatch::Exact => Qualifiers::NONE,
            AidMatch::Prefix => Qualifiers::MATCH_PREFIX,
            AidMatch::Subset => Qualifiers::MATCH_SUBSET,
        }
    }
}

/// One wanted route. `route` is the target NFCEE ID, [`ROUTE_DH`] (0x00) for the host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RoutingRule {
    /// Send everything activated over `technology` to `route`.
    Technology {
        /// Target NFCEE ID.
        route: u8,
        /// Power states the route applies in.
        power_state: PowerState,
        /// RF technology.
        technology: RfTechnology,
    },
    /// Send everything activated with `protocol` to `route`.
    Protocol {
        /// Target NFCEE ID.
        route: u8,
        /// Power states the route applies in.
        power_state: PowerState,
        /// RF protocol.
        protocol: RfProtocol,
    },
    /// Send SELECTs matching `aid` to `route`. Rules for the host are accepted and cost
    /// nothing: the default route already brings those SELECTs to the host.
    Aid {
        /// Target NFCEE ID.
        route: u8,
        /// Power states the route applies in.
        power_state: PowerState,
        /// The AID.
        aid: Aid,
        /// Exact, prefix or subset match.
        matching: AidMatch,
    },
}

impl RoutingRule {
    /// Two rules for the same thing: the same technology, protocol, or AID and match kind.
    fn same_key(&self, other: &RoutingRule) -> bool {
        match (self, other) {
            (
                RoutingRule::Technology { technology: a, .. },
                RoutingRule::Technology { technology: b, .. },
            ) => a == b,
            (
                RoutingRule::Protocol { protocol: a, .. },
                RoutingRule::Protocol { protocol: b, .. },
            ) => a == b,
            (
                RoutingRule::Aid {
                    aid: a,
                    matching: ma,
                    ..
                },
                RoutingRule::Aid {
                    aid: b,
                    matching: mb,
                    ..
                },
            ) => a == b && ma == mb,
            _ => false,
        }
    }
}

/// Which kinds of entries a table holds. Each step down drops a kind to save space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoutingMode {
    /// AID (off-host only), protocol and technology entries.
    Mixed,
    /// Protocol and technology entries; off-host AIDs are not routed and reach the host like
    /// any other SELECT.
    Protocol,
    /// Technology entries only.
    Technology,
}

impl RoutingMode {
    /// The next smaller mode, `None` after [`RoutingMode::Technology`].
    pub fn fallback(self) -> Option<RoutingMode> {
        match self {
            RoutingMode::Mixed => Some(RoutingMode::Protocol),
            RoutingMode::Protocol => Some(RoutingMode::Technology),
            RoutingMode::Technology => None,
        }
    }

    fn has_aids(self) -> bool {
        self == RoutingMode::Mixed
    }

    fn has_protocols(self) -> bool {
        self != RoutingMode::Technology
    }
}

impl fmt::Display for RoutingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoutingMode::Mixed => "mixed",
            RoutingMode::Protocol => "protocol",
            RoutingMode::Technology => "technology",
        })
    }
}

/// What the controller allows, from CORE_RESET and CORE_INIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoutingLimits {
    /// NCI version: qualifiers and power sub-states exist only from NCI 2.0.
    pub version: NciVersion,
    /// "Max Routing Table Size" in octets (CORE_INIT_RSP).
    pub max_table_size: u16,
    /// "Max Control Packet Payload Size" (CORE_INIT_RSP): the largest command payload.
    pub max_control_payload: u8,
}

impl RoutingLimits {
    /// The PN7150 (UM10936): NCI 1.0, a 720-octet routing table, 255-octet control payloads.
    pub const PN7150: RoutingLimits = RoutingLimits {
        version: NciVersion::V1_0,
        max_table_size: 720,
        max_control_payload: 255,
    };
}

/// Why a table could not be built or a rule not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutingError {
    /// More than [`MAX_RULES`] distinct rules.
    TooManyRules,
    /// An AID outside 5..=16 octets.
    AidLength,
    /// Even [`RoutingMode::Technology`] exceeds "Max Routing Table Size".
    TableTooLarge {
        /// Octets the technology-only table needs.
        needed: usize,
        /// Octets the controller allows.
        capacity: usize,
    },
    /// "Max Control Packet Payload Size" cannot hold the command header and one entry.
    ControlPayloadTooSmall,
    /// An entry could not be encoded (not expected for rules accepted by
    /// [`RoutingTableBuilder::add`]).
    Encoding(Error),
}

impl fmt::Display for RoutingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoutingError::TooManyRules => write!(f, "more than {MAX_RULES} routing rules"),
            RoutingError::AidLength => f.write_str("AID length outside 5..=16 octets"),
            RoutingError::TableTooLarge { needed, capacity } => write!(
                f,
                "routing table needs {needed} octets, the controller allows {capacity}"
            ),
            RoutingError::ControlPayloadTooSmall => {
                f.write_str("control packet payload too small for a routing entry")
            }
            RoutingError::Encoding(err) => write!(f, "routing entry encoding: {err}"),
        }
    }
}

impl core::error::Error for RoutingError {}

/// Collects routing rules and builds the table for one controller.
///
/// Call order: [`add`](Self::add) the rules (or [`add_host_iso_dep`](Self::add_host_iso_dep)),
/// [`build`](Self::build), send the commands; if RF_SET_LISTEN_MODE_ROUTING_RSP refuses the
/// table, [`handle_refusal`](Self::handle_refusal) with its status and, when it returns a mode,
/// build and send again. The mode only ever goes down by itself; [`set_mode`](Self::set_mode)
/// raises it again (e.g. after the rules shrank).
#[derive(Debug, Clone)]
pub struct RoutingTableBuilder {
    limits: RoutingLimits,
    rules: Vec<RoutingRule, MAX_RULES>,
    mode: RoutingMode,
}

impl RoutingTableBuilder {
    /// An empty builder for a controller with `limits`, starting in [`RoutingMode::Mixed`].
    pub fn new(limits: RoutingLimits) -> RoutingTableBuilder {
        RoutingTableBuilder {
            limits,
            rules: Vec::new(),
            mode: RoutingMode::Mixed,
        }
    }

    /// The controller's limits.
    pub fn limits(&self) -> RoutingLimits {
        self.limits
    }

    /// Add a rule. A rule for the same technology, protocol, or AID and match kind as an
    /// earlier one replaces it in place: the NFCC would otherwise get contradicting entries.
    pub fn add(&mut self, rule: RoutingRule) -> Result<(), RoutingError> {
        if let Some(existing) = self.rules.iter_mut().find(|r| r.same_key(&rule)) {
            *existing = rule;
            return Ok(());
        }
        self.rules
            .push(rule)
            .map_err(|_| RoutingError::TooManyRules)
    }

    /// The host card emulation routes: ISO-DEP → host, and NFC-A and NFC-B → host so that the
    /// host keeps the listen side in [`RoutingMode::Technology`] too.
    pub fn add_host_iso_dep(&mut self, power_state: PowerState) -> Result<(), RoutingError> {
        self.add(RoutingRule::Protocol {
            route: ROUTE_DH,
            power_state,
            protocol: RfProtocol::IsoDep,
        })?;
        for technology in [RfTechnology::NfcA, RfTechnology::NfcB] {
            self.add(RoutingRule::Technology {
                route: ROUTE_DH,
                power_state,
                technology,
            })?;
        }
        Ok(())
    }

    /// Drop every rule. The mode is kept.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// The rules, in the order they were added.
    pub fn rules(&self) -> &[RoutingRule] {
        &self.rules
    }

    /// The mode the next [`build`](Self::build) starts from.
    pub fn mode(&self) -> RoutingMode {
        self.mode
    }

    /// Start the next build from `mode`.
    pub fn set_mode(&mut self, mode: RoutingMode) {
        self.mode = mode;
    }

    /// Step the mode down once, after the controller refused the last table. `None` (mode
    /// unchanged) when already at [`RoutingMode::Technology`].
    pub fn next_fallback(&mut self) -> Option<RoutingMode> {
        let next = self.mode.fallback()?;
        self.mode = next;
        Some(next)
    }

    /// React to a refusing RF_SET_LISTEN_MODE_ROUTING_RSP: STATUS_MESSAGE_SIZE_EXCEEDED and
    /// STATUS_FAILED (the table does not fit however the NFCC counts it) step down like
    /// [`next_fallback`](Self::next_fallback). Other statuses (e.g. STATUS_REJECTED while RF
    /// discovery runs, a syntax error) are not about size: the mode stays and `None` is
    /// returned.
    pub fn handle_refusal(&mut self, status: Status) -> Option<RoutingMode> {
        match status {
            Status::MessageSizeExceeded | Status::Failed => self.next_fallback(),
            _ => None,
        }
    }

    /// Octets the table takes in `mode`: the sum of its entries' TLV sizes.
    pub fn encoded_len(&self, mode: RoutingMode) -> usize {
        let mut len = 0;
        self.for_each_entry(mode, |entry, _| {
            len += entry.buffer_len();
            Ok(())
        })
        .map_or(0, |()| len)
    }

    /// Build the table in the current mode, or the first smaller mode that fits
    /// "Max Routing Table Size" (equal fits). The mode used becomes the builder's mode.
    pub fn build(&mut self) -> Result<RoutingTable, RoutingError> {
        let capacity = usize::from(self.limits.max_table_size);
        let mut mode = self.mode;
        loop {
            let needed = self.encoded_len(mode);
            if needed <= capacity {
                break;
            }
            mode = mode
                .fallback()
                .ok_or(RoutingError::TableTooLarge { needed, capacity })?;
        }
        self.mode = mode;
        self.encode(mode)
    }

    /// Power state as this controller understands it.
    fn power_state(&self, power_state: PowerState) -> PowerState {
        if self.limits.version.is_v2() {
            power_state
        } else {
            power_state.for_nci1()
        }
    }

    /// Qualifiers for an AID rule on this controller, and whether NCI 1.0 narrowed the match.
    fn aid_qualifiers(&self, matching: AidMatch) -> (Qualifiers, bool) {
        if self.limits.version.is_v2() {
            (matching.qualifiers(), false)
        } else {
            (Qualifiers::NONE, matching != AidMatch::Exact)
        }
    }

    /// Call `f` with every entry the table holds in `mode`, in table order: AIDs, then
    /// protocols, then technologies (the order the NFCC consults them), each kind in rule
    /// order. The flag is `true` for an AID entry NCI 1.0 narrowed to an exact match.
    fn for_each_entry(
        &self,
        mode: RoutingMode,
        mut f: impl FnMut(RoutingEntryRepr<'_>, bool) -> Result<(), RoutingError>,
    ) -> Result<(), RoutingError> {
        if mode.has_aids() {
            for (index, rule) in self.rules.iter().enumerate() {
                let RoutingRule::Aid {
                    route,
                    power_state,
                    aid,
                    matching,
                } = rule
                else {
                    continue;
                };
                if *route == ROUTE_DH {
                    continue;
                }
                let (qualifiers, narrowed) = self.aid_qualifiers(*matching);
                // Under NCI 1.0 a prefix and an exact rule for the same octets become the same
                // entry; the first one added wins.
                let duplicate = self.rules.iter().take(index).any(|earlier| {
                    matches!(earlier, RoutingRule::Aid { route: r, aid: a, matching: m, .. }
                        if *r != ROUTE_DH && a == aid && self.aid_qualifiers(*m).0 == qualifiers)
                });
                if duplicate {
                    continue;
                }
                f(
                    RoutingEntryRepr::Aid {
                        qualifiers,
                        route: *route,
                        power_state: self.power_state(*power_state),
                        aid: aid.as_bytes(),
                    },
                    narrowed,
                )?;
            }
        }
        if mode.has_protocols() {
            for rule in &self.rules {
                if let RoutingRule::Protocol {
                    route,
                    power_state,
                    protocol,
                } = rule
                {
                    f(
                        RoutingEntryRepr::Protocol {
                            qualifiers: Qualifiers::NONE,
                            route: *route,
                            power_state: self.power_state(*power_state),
                            protocol: *protocol,
                        },
                        false,
                    )?;
                }
            }
        }
        for rule in &self.rules {
            if let RoutingRule::Technology {
                route,
                power_state,
                technology,
            } = rule
            {
                f(
                    RoutingEntryRepr::Technology {
                        qualifiers: Qualifiers::NONE,
                        route: *route,
                        power_state: self.power_state(*power_state),
                        technology: *technology,
                    },
                    false,
                )?;
            }
        }
        Ok(())
    }

    /// Pack the entries of `mode` into commands of at most "Max Control Packet Payload Size".
    fn encode(&self, mode: RoutingMode) -> Result<RoutingTable, RoutingError> {
        let max_payload = usize::from(self.limits.max_control_payload);
        if max_payload < MESSAGE_HEADER_LEN {
            return Err(RoutingError::ControlPayloadTooSmall);
        }
        let mut table = RoutingTable {
            mode,
            encoded_len: 0,
            capacity: usize::from(self.limits.max_table_size),
            aids_narrowed: 0,
            buf: Vec::new(),
            starts: Vec::new(),
        };
        table.open_command()?;
        let mut count: u8 = 0;
        self.for_each_entry(mode, |entry, narrowed| {
            let len = entry.buffer_len();
            if MESSAGE_HEADER_LEN + len > max_payload {
                return Err(RoutingError::ControlPayloadTooSmall);
            }
            if table.current_command_len() + len > max_payload {
                table.close_command(count, true);
                table.open_command()?;
                count = 0;
            }
            let mut scratch = [0u8; MAX_ENTRY_LEN];
            let encoded = scratch
                .get_mut(..len)
                .ok_or(RoutingError::Encoding(Error::BufferTooSmall))?;
            entry.emit(encoded).map_err(RoutingError::Encoding)?;
            table
                .buf
                .extend_from_slice(encoded)
                .map_err(|_| RoutingError::Encoding(Error::Capacity))?;
            table.encoded_len += len;
            table.aids_narrowed += usize::from(narrowed);
            count = count
                .checked_add(1)
                .ok_or(RoutingError::Encoding(Error::Capacity))?;
            Ok(())
        })?;
        table.close_command(count, false);
        Ok(table)
    }
}

/// A built routing table: the RF_SET_LISTEN_MODE_ROUTING_CMD payloads to send in order, and
/// what they contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingTable {
    mode: RoutingMode,
    encoded_len: usize,
    capacity: usize,
    aids_narrowed: usize,
    /// The command payloads back to back.
    buf: Vec<u8, TABLE_BUF_LEN>,
    /// Where each command starts in `buf`.
    starts: Vec<u16, MAX_RULES>,
}

impl RoutingTable {
    fn open_command(&mut self) -> Result<(), RoutingError> {
        let start =
            u16::try_from(self.buf.len()).map_err(|_| RoutingError::Encoding(Error::Capacity))?;
        self.starts
            .push(start)
            .map_err(|_| RoutingError::Encoding(Error::Capacity))?;
        self.buf
            .extend_from_slice(&[0x00, 0x00])
            .map_err(|_| RoutingError::Encoding(Error::Capacity))
    }

    fn current_start(&self) -> usize {
        self.starts.last().map_or(0, |&s| usize::from(s))
    }

    fn current_command_len(&self) -> usize {
        self.buf.len() - self.current_start()
    }

    /// Fill in More and Number of Routing Entries of the open command.
    fn close_command(&mut self, count: u8, more: bool) {
        let start = self.current_start();
        if let Some(header) = self.buf.get_mut(start..start + MESSAGE_HEADER_LEN) {
            header[0] = u8::from(more);
            header[1] = count;
        }
    }

    /// The mode the table was built in.
    pub fn mode(&self) -> RoutingMode {
        self.mode
    }

    /// Octets the entries take against "Max Routing Table Size".
    pub fn encoded_len(&self) -> usize {
        self.encoded_len
    }

    /// "Max Routing Table Size" the table was built for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// NCI 1.0 only: prefix or subset AID rules emitted as plain AID entries. NCI 1.0 has no
    /// qualifier bits, so such an entry stands for exactly the registered octets: the NFCEE
    /// receives SELECTs naming that AID, and a SELECT that would only match by prefix (a longer
    /// AID) or subset (a shorter one) falls through to the protocol route — the host, whose
    /// resolver answers 6A82 unless a host service claims it.
    pub fn aids_narrowed(&self) -> usize {
        self.aids_narrowed
    }

    /// Number of RF_SET_LISTEN_MODE_ROUTING_CMD messages.
    pub fn command_count(&self) -> usize {
        self.starts.len()
    }

    /// The payload of the `index`-th RF_SET_LISTEN_MODE_ROUTING_CMD.
    pub fn command(&self, index: usize) -> Option<&[u8]> {
        let start = usize::from(*self.starts.get(index)?);
        let end = self
            .starts
            .get(index + 1)
            .map_or(self.buf.len(), |&e| usize::from(e));
        self.buf.get(start..end)
    }

    /// The RF_SET_LISTEN_MODE_ROUTING_CMD payloads, in sending order: More, Number of Routing
    /// Entries, entries; each at most "Max Control Packet Payload Size" octets. An empty table
    /// is one command with no entries (it clears the NFCC's table).
    pub fn commands(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.command_count()).filter_map(move |i| self.command(i))
    }

    /// The entries in table order, decoded from the commands: what the controller is told,
    /// for the daemon's `RoutingTable` property (type, route, power state, value).
    pub fn entries(&self) -> impl Iterator<Item = RoutingEntryRepr<'_>> + '_ {
        self.commands().flat_map(|command| {
            // The table was emitted by this module, so every entry parses; `map_while` ends
            // the walk at the first one that would not rather than invent a value.
            RoutingEntries::new(command.get(MESSAGE_HEADER_LEN..).unwrap_or(&[]))
                .map_while(|entry| entry.ok())
        })
    }
}

//! What the controller told about itself during start-up: NCI version, manufacturer, limits
//! and RF interfaces (CORE_RESET_RSP/NTF and CORE_INIT_RSP, NCI 1.0 §4.1–4.2, NCI 2.0 §4.1–4.2),
//! and the number of NFCEEs (NFCEE_DISCOVER_RSP, NCI 1.0 §9.2).

use heapless::Vec;

use crate::routing::RoutingLimits;
use crate::wire::core::{CoreInitRsp, CoreInitRspLayout, ManufacturerId, NfccFeatures};
use crate::wire::nxp::NxpVersionInfo;
use crate::wire::{NciVersion, RfInterface};

/// Most RF interfaces recorded (the PN7150 reports 8).
pub const MAX_INTERFACES: usize = 16;

/// Longest manufacturer specific information recorded (NCI 1.0: 4 octets; NCI 2.0: a
/// length-prefixed field, 26 octets on some controllers).
pub const MAX_MANUFACTURER_INFO: usize = 32;

/// The controller's description of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerInfo {
    /// NCI version (CORE_RESET_RSP under NCI 1.0, CORE_RESET_NTF under NCI 2.0).
    pub nci_version: NciVersion,
    /// Manufacturer ID (CORE_INIT_RSP under NCI 1.0, CORE_RESET_NTF under NCI 2.0): 0x04 NXP.
    pub manufacturer: ManufacturerId,
    /// Manufacturer specific information, as received (truncated to
    /// [`MAX_MANUFACTURER_INFO`]).
    pub manufacturer_info: Vec<u8, MAX_MANUFACTURER_INFO>,
    /// NFCC Features (NCI 1.0 Table 9).
    pub features: NfccFeatures,
    /// Supported RF interfaces.
    pub interfaces: Vec<RfInterface, MAX_INTERFACES>,
    /// Max Logical Connections.
    pub max_logical_connections: u8,
    /// Max Routing Table Size, octets (PN7150: 720).
    pub max_routing_table_size: u16,
    /// Max Control Packet Payload Size, octets (PN7150: 255).
    pub max_control_payload: u8,
    /// Number of NFCEEs from NFCEE_DISCOVER_RSP; `None` until discovered. 0 on a plain PN7150.
    pub nfcee_count: Option<u8>,
}

impl ControllerInfo {
    /// Record CORE_INIT_RSP. Under NCI 2.0 the manufacturer came earlier, with CORE_RESET_NTF,
    /// and is passed in.
    pub(crate) fn from_init_rsp(
        version: NciVersion,
        rsp: &CoreInitRsp<'_>,
        reset_manufacturer: Option<(ManufacturerId, &[u8])>,
    ) -> ControllerInfo {
        let mut interfaces = Vec::new();
        let (manufacturer, info): (ManufacturerId, &[u8]) = match &rsp.layout {
            CoreInitRspLayout::Nci1 {
                interfaces: list,
                manufacturer_id,
                manufacturer_info,
                ..
            } => {
                for interface in list.iter() {
                    let _ = interfaces.push(interface);
                }
                (*manufacturer_id, manufacturer_info)
            }
            CoreInitRspLayout::Nci2 {
                interfaces: list, ..
            } => {
                for interface in list.iter() {
                    let _ = interfaces.push(interface.interface);
                }
                reset_manufacturer.unwrap_or((ManufacturerId(0), &[]))
            }
        };
        let take = info.len().min(MAX_MANUFACTURER_INFO);
        ControllerInfo {
            nci_version: version,
            manufacturer,
            manufacturer_info: Vec::from_slice(info.get(..take).unwrap_or(&[])).unwrap_or_default(),
            features: rsp.features,
            interfaces,
            max_logical_connections: rsp.max_logical_connections,
            max_routing_table_size: rsp.max_routing_table_size,
            max_control_payload: rsp.max_control_packet_payload,
            nfcee_count: None,
        }
    }

    /// `true` for an NXP controller (PN7120, PN7150, PN7160): manufacturer ID 0x04.
    pub fn is_nxp(&self) -> bool {
        self.manufacturer == ManufacturerId::NXP
    }

    /// NXP's reading of the manufacturer specific information (hardware, ROM code and firmware
    /// versions, UM10936), `None` for other manufacturers.
    pub fn nxp_version(&self) -> Option<NxpVersionInfo> {
        if !self.is_nxp() {
            return None;
        }
        NxpVersionInfo::from_manufacturer_info(&self.manufacturer_info)
    }

    /// The limits the routing table builder needs.
    pub fn routing_limits(&self) -> RoutingLimits {
        RoutingLimits {
            version: self.nci_version,
            max_table_size: self.max_routing_table_size,
            max_control_payload: self.max_control_payload,
        }
    }
}

//! Reader scripts the named ones of the virtual reader do not cover, for
//! [`SimHandle::tap_with`](nfcd::simhost::SimHandle::tap_with).
//!
//! Contract: a script here is plain data — C-APDUs with the status word each must get — built
//! on the reader's thread by the closure [`Apdus::build`] returns. Checking what came back
//! beyond the status words is the test's business, on the [`TapReport`].
//!
//! Command encodings follow ISO/IEC 7816-4 §5.1 (short and extended length) and §11.2.2
//! (SELECT by DF name); application commands come from `libnci::sim::scripts`, where the
//! reader and the wallets share them.

use libnci::apdu::StatusWord;
use libnci::sim::scripts::select_aid;
use libnci::sim::{Expect, Script, Step, TapReport};
use nfcd::simhost::SimError;

/// A script that builds itself on the reader's thread.
pub type ScriptBuilder = Box<dyn FnOnce() -> Result<Script, SimError> + Send + 'static>;

/// A script of fixed steps.
#[derive(Debug, Clone)]
pub struct Apdus {
    name: String,
    steps: Vec<(Vec<u8>, Expect)>,
}

impl Apdus {
    /// An empty script called `name`.
    pub fn new(name: &str) -> Apdus {
        Apdus {
            name: name.to_owned(),
            steps: Vec::new(),
        }
    }

    /// Send `apdu`, expecting status word `sw`.
    pub fn send(mut self, apdu: impl Into<Vec<u8>>, sw: u16) -> Apdus {
        self.steps.push((apdu.into(), Expect::Sw(StatusWord(sw))));
        self
    }

    /// Send `apdu`, whatever it gets back.
    pub fn send_any(mut self, apdu: impl Into<Vec<u8>>) -> Apdus {
        self.steps.push((apdu.into(), Expect::Any));
        self
    }

    /// SELECT `aid` by DF name, expecting `sw`.
    pub fn select(self, aid: &[u8], sw: u16) -> Apdus {
        self.send(select_aid(aid), sw)
    }

    /// The builder [`SimHandle::tap_with`](nfcd::simhost::SimHandle::tap_with) takes.
    pub fn build(self) -> ScriptBuilder {
        Box::new(move || {
            Ok(Script {
                name: self.name,
                steps: self
                    .steps
                    .into_iter()
                    .map(|(apdu, expect)| Step::send(apdu, expect))
                    .collect(),
            })
        })
    }
}

/// `9000`.
pub const SW_OK: u16 = 0x9000;
/// `6A82`: file or application not found.
pub const SW_NOT_FOUND: u16 = 0x6A82;
/// `6F00`: no precise diagnosis — what nfcd answers when nothing is selected or a wallet fails.
pub const SW_NO_DIAGNOSIS: u16 = 0x6F00;

/// GET DATA of tag `9F36` (ATC), a harmless case 2 command (ISO/IEC 7816-4 §11.4.3).
pub const GET_DATA_ATC: [u8; 5] = [0x80, 0xCA, 0x9F, 0x36, 0x00];

/// A case 4 command with an extended-length data field of `data` and Le `0000` (up to 65 536
/// octets back): `CLA INS P1 P2 00 Lc1 Lc2 data Le1 Le2` (ISO/IEC 7816-4 §5.1). `data` must be
/// 1 to 65 535 octets.
pub fn extended_case4(cla: u8, ins: u8, data: &[u8]) -> Vec<u8> {
    let lc = u16::try_from(data.len()).unwrap_or_else(|_| panic!("{} octets of data", data.len()));
    assert!(lc > 0, "an extended Lc is 1 to 65 535");
    let mut apdu = vec![cla, ins, 0x00, 0x00, 0x00];
    apdu.extend_from_slice(&lc.to_be_bytes());
    apdu.extend_from_slice(data);
    apdu.extend_from_slice(&[0x00, 0x00]);
    apdu
}

/// The response data (status word stripped) of exchange `index` of a tap; panics with the
/// report if there is no such exchange.
pub fn response_data(report: &TapReport, index: usize) -> &[u8] {
    let Some(record) = report.apdus.get(index) else {
        panic!("no exchange {index} in the tap: {report:#?}");
    };
    let len = record.rsp.len().saturating_sub(2);
    &record.rsp[..len]
}

/// The status words of a tap, in order, as numbers (`0` for a response without one).
pub fn status_words(report: &TapReport) -> Vec<u16> {
    report
        .apdus
        .iter()
        .map(|r| r.sw.map_or(0, |sw| sw.0))
        .collect()
}

//! `org.nfcd.Simulator1` at `/org/nfcd/adapter0`: simulated taps, field and faults, served only
//! while the daemon runs on its virtual controller (doc/simulator-api.md).
//!
//! Translates D-Bus calls into [`SimHandle`] calls and reports into records, nothing else: the
//! tap itself, the scripts and the faults are the simulator's ([`crate::simhost`], and for
//! the bus of `sim:…@i2c` [`crate::transport::sim_i2c`]). The daemon calls [`export`] with the
//! handle of the `sim` transport ([`crate::transport::AnyTransport::sim_handle`]) and, on
//! `sim:…@i2c`, its I²C slave; on a real controller nothing is exported.

use std::collections::HashMap;
use std::time::Duration;

use zbus::{interface, Connection, OwnedVariant, Str, Variant};

use super::adapter::ADAPTER_PATH;
use super::error::Error;
use super::options::{AID_MAX_LEN, AID_MIN_LEN};
use crate::simhost::{
    outcome_detail, outcome_name, FaultSpec, SimError, SimHandle, TapOptions, TapOutcome,
    TapReport, TapScript, Tech,
};
use crate::transport::i2c_sim::I2cSim;
use crate::transport::sim_i2c::I2cFault;

/// Interface name.
pub const SIMULATOR_INTERFACE: &str = "org.nfcd.Simulator1";

/// Shipped introspection data of `org.nfcd.Simulator1` (`dbus/org.nfcd.Simulator1.xml`).
pub const SIMULATOR1_XML: &str = include_str!("../../../dbus/org.nfcd.Simulator1.xml");

/// One record of a `Tap` reply, `a{sv}`.
pub type Record = HashMap<String, OwnedVariant>;

/// The exported `org.nfcd.Simulator1` object.
pub struct Simulator {
    sim: SimHandle,
    i2c: Option<I2cSim>,
}

impl Simulator {
    /// The interface object for `sim`, with the I²C slave `i2c` in front of it when the
    /// virtual controller sits behind a simulated I²C bus.
    pub fn new(sim: SimHandle, i2c: Option<I2cSim>) -> Simulator {
        Simulator { sim, i2c }
    }
}

/// Export `org.nfcd.Simulator1` for `sim` (and its I²C slave `i2c`, if any) at
/// [`ADAPTER_PATH`] on `conn`, next to `org.nfcd.Adapter1`.
pub async fn export(conn: &Connection, sim: SimHandle, i2c: Option<I2cSim>) -> zbus::Result<()> {
    let server = conn.object_server();
    // A reopened virtual controller replaces the one before it.
    // Nothing to remove the first time: that error is expected.
    let _ = server.remove::<Simulator, _>(ADAPTER_PATH).await;
    server
        .at(ADAPTER_PATH, Simulator::new(sim, i2c))
        .await
        .map(|_| ())
}

/// `Tap` options, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRequest {
    /// What the reader does.
    pub options: TapOptions,
    /// `DeadlineMs`, else the script's own budget.
    pub budget: Duration,
}

impl TapRequest {
    /// Decode the `a{sv}` options of `Tap` for `script`: `Technology` s, `Aid` ay,
    /// `DeadlineMs` u, `LinkLossAfter` u. Anything else, or a wrong type or value, is
    /// `InvalidArguments`.
    pub fn from_options(
        script: TapScript,
        options: &HashMap<String, OwnedVariant>,
    ) -> Result<Self, Error> {
        let mut request = TapRequest {
            options: TapOptions::default(),
            budget: script.budget(),
        };
        // Sorted so that, of several bad keys, the reported one does not depend on hashing.
        let mut keys: Vec<&String> = options.keys().collect();
        keys.sort();
        for key in keys {
            let Some(value) = options.get(key) else {
                continue;
            };
            let value: &Variant<'_> = value;
            match key.as_str() {
                "Technology" => {
                    let Variant::Str(tech) = value else {
                        return Err(wrong_type("Technology", "s", value));
                    };
                    request.options.tech = tech.as_str().parse::<Tech>().map_err(invalid)?;
                }
                "Aid" => {
                    let aid = bytes("Aid", value)?;
                    if !(AID_MIN_LEN..=AID_MAX_LEN).contains(&aid.len()) {
                        return Err(Error::InvalidArguments(format!(
                            "Aid {} is {} bytes; an AID has {AID_MIN_LEN} to {AID_MAX_LEN}",
                            crate::hex(&aid),
                            aid.len()
                        )));
                    }
                    if !script.takes_aid() {
                        return Err(Error::InvalidArguments(format!(
                            "script {script} selects its own AIDs; it takes no Aid"
                        )));
                    }
                    request.options.aid = Some(aid);
                }
                "DeadlineMs" => {
                    let Variant::U32(ms) = value else {
                        return Err(wrong_type("DeadlineMs", "u", value));
                    };
                    request.budget = Duration::from_millis(u64::from(*ms));
                }
                "LinkLossAfter" => {
                    let Variant::U32(n) = value else {
                        return Err(wrong_type("LinkLossAfter", "u", value));
                    };
                    request.options.link_loss_after = Some(*n);
                }
                other => {
                    return Err(Error::InvalidArguments(format!(
                        "unknown option {other:?} (expected Technology, Aid, DeadlineMs, \
                         LinkLossAfter)"
                    )))
                }
            }
        }
        Ok(request)
    }
}

fn wrong_type(key: &str, expected: &str, value: &Variant<'_>) -> Error {
    Error::InvalidArguments(format!(
        "{key} must be {expected}, got {}",
        value.value_signature()
    ))
}

fn bytes(key: &str, value: &Variant<'_>) -> Result<Vec<u8>, Error> {
    let Variant::Array(array) = value else {
        return Err(wrong_type(key, "ay", value));
    };
    array
        .inner()
        .iter()
        .map(|b| match b {
            Variant::U8(b) => Ok(*b),
            _ => Err(wrong_type(key, "ay", value)),
        })
        .collect()
}

fn invalid(e: SimError) -> Error {
    Error::InvalidArguments(e.to_string())
}

/// The D-Bus error for a tap or action the simulator refused.
fn sim_error(e: SimError) -> Error {
    match e {
        SimError::InvalidArgument(m) => Error::InvalidArguments(m),
        e @ (SimError::NotDiscovering(_) | SimError::Busy) => Error::NotReady(e.to_string()),
        e @ (SimError::Timeout(_) | SimError::Io { .. } | SimError::Stopped) => {
            Error::Failed(e.to_string())
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn owned(value: Variant<'_>) -> Result<OwnedVariant, Error> {
    value
        .try_into_owned()
        .map_err(|e| Error::Failed(format!("encoding a record: {e}")))
}

fn string(s: &str) -> OwnedVariant {
    OwnedVariant::from(Str::from(s.to_owned()))
}

/// The verdict of a tap: `ok`, `unexpected-status`, `timeout`, `link-loss`, `too-slow` or
/// `error`, with what went wrong for people.
pub fn verdict(report: &TapReport, elapsed: Duration, budget: Duration) -> (&'static str, String) {
    match &report.outcome {
        TapOutcome::Completed if elapsed > budget => (
            "too-slow",
            format!(
                "took {} µs, the budget is {} µs",
                micros(elapsed),
                micros(budget)
            ),
        ),
        TapOutcome::Completed => ("ok", String::new()),
        TapOutcome::UnexpectedStatus { .. } => {
            ("unexpected-status", outcome_detail(&report.outcome))
        }
        TapOutcome::Timeout { .. } => ("timeout", outcome_detail(&report.outcome)),
        TapOutcome::LinkLoss { .. } => ("link-loss", outcome_detail(&report.outcome)),
        TapOutcome::ActivationFailed(_)
        | TapOutcome::RfError { .. }
        | TapOutcome::ScriptError { .. } => ("error", outcome_detail(&report.outcome)),
    }
}

/// The reply of `Tap`: one record per APDU, then the summary (doc/simulator-api.md).
pub fn records(
    script: TapScript,
    tech: Tech,
    budget: Duration,
    report: &TapReport,
) -> Result<Vec<Record>, Error> {
    let activated = report.activated_at;
    let mut out = Vec::with_capacity(report.apdus.len() + 1);
    for apdu in &report.apdus {
        let sent_at = activated.map_or(Duration::ZERO, |a| apdu.sent_at - a);
        let mut record = Record::new();
        record.insert("Kind".into(), string("apdu"));
        record.insert("Command".into(), owned(Variant::from(apdu.cmd.clone()))?);
        record.insert("Response".into(), owned(Variant::from(apdu.rsp.clone()))?);
        record.insert(
            "Sw".into(),
            OwnedVariant::from(apdu.sw.map_or(0, |sw| sw.0)),
        );
        record.insert(
            "ElapsedUs".into(),
            OwnedVariant::from(micros(apdu.latency())),
        );
        record.insert("SentAtUs".into(), OwnedVariant::from(micros(sent_at)));
        out.push(record);
    }
    // From the activation to the field going off; the time before the activation is the
    // reader's polling and anticollision, not the card's.
    let elapsed = activated.map_or(Duration::ZERO, |a| {
        report.total.saturating_sub(a - report.field_on_at)
    });
    let (result, error) = verdict(report, elapsed, budget);
    let mut summary = Record::new();
    summary.insert("Kind".into(), string("summary"));
    summary.insert("Script".into(), string(script.name()));
    summary.insert("Technology".into(), string(tech.name()));
    summary.insert("Result".into(), string(result));
    summary.insert("Error".into(), string(&error));
    summary.insert(
        "Apdus".into(),
        OwnedVariant::from(u32::try_from(report.apdus.len()).unwrap_or(u32::MAX)),
    );
    summary.insert("ElapsedUs".into(), OwnedVariant::from(micros(elapsed)));
    summary.insert("TotalUs".into(), OwnedVariant::from(micros(report.total)));
    summary.insert("Outcome".into(), string(outcome_name(&report.outcome)));
    out.push(summary);
    Ok(out)
}

#[interface(name = "org.nfcd.Simulator1")]
impl Simulator {
    /// Run a reader script against the virtual controller; returns when the field is off.
    #[zbus(out_args("records"))]
    async fn tap(
        &self,
        script: &str,
        options: HashMap<String, OwnedVariant>,
    ) -> Result<Vec<Record>, Error> {
        let script: TapScript = script.parse().map_err(invalid)?;
        let request = TapRequest::from_options(script, &options)?;
        let tech = request.options.tech;
        let report = self
            .sim
            .tap(script, request.options)
            .await
            .map_err(sim_error)?;
        records(script, tech, request.budget, &report)
    }

    /// Arm a fault of the virtual controller, or of its I²C bus, by name (`NAME` or
    /// `NAME@N`).
    async fn inject_fault(&self, fault: &str) -> Result<(), Error> {
        if I2cFault::is_i2c_fault(fault) {
            let i2c_fault: I2cFault = fault.parse().map_err(invalid)?;
            let Some(i2c) = &self.i2c else {
                return Err(Error::InvalidArguments(format!(
                    "{fault} is a fault of the I²C bus: only with a virtual controller on \
                     I²C (sim:pn7150@i2c)"
                )));
            };
            i2c_fault.apply(i2c);
            return Ok(());
        }
        let spec: FaultSpec = fault.parse().map_err(invalid)?;
        self.sim.arm_fault(spec.fault, spec.trigger);
        Ok(())
    }

    /// Switch the virtual reader's field on or off.
    async fn field(&self, on: bool) -> Result<(), Error> {
        self.sim.field(on).map_err(sim_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libnci::apdu::StatusWord;
    use libnci::sim::scripts::Values;
    use libnci::sim::ApduRecord;
    use libnci::time::Instant;
    use libnci::wire::RfTechnology;

    fn report(outcome: TapOutcome, total_ms: u64) -> TapReport {
        TapReport {
            script: "unknown_aid".to_owned(),
            technology: RfTechnology::NfcA,
            field_on_at: Instant::from_millis(100),
            activated_at: Some(Instant::from_millis(105)),
            apdus: vec![ApduRecord {
                // SELECT F0DEADBEEF000001 → 6A82
                cmd: vec![
                    0x00, 0xA4, 0x04, 0x00, 0x08, 0xF0, 0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x00, 0x01,
                    0x00,
                ],
                rsp: vec![0x6A, 0x82],
                sw: Some(StatusWord::FILE_NOT_FOUND),
                sent_at: Instant::from_micros(105_000),
                answered_at: Instant::from_micros(106_250),
            }],
            total: Duration::from_millis(total_ms),
            outcome,
            values: Values::new(),
        }
    }

    fn get<'a>(record: &'a Record, key: &str) -> &'a Variant<'static> {
        record
            .get(key)
            .map(|v| -> &Variant<'static> { v })
            .unwrap_or_else(|| panic!("no {key} in {record:?}"))
    }

    #[test]
    fn apdu_records_then_a_summary() {
        let r = report(TapOutcome::Completed, 8);
        let recs = records(
            TapScript::UnknownAid,
            Tech::A,
            Duration::from_millis(100),
            &r,
        )
        .expect("records");
        assert_eq!(recs.len(), 2);
        assert_eq!(get(&recs[0], "Kind"), &Variant::from("apdu"));
        assert_eq!(get(&recs[0], "Sw"), &Variant::U16(0x6A82));
        assert_eq!(get(&recs[0], "ElapsedUs"), &Variant::U64(1_250));
        assert_eq!(get(&recs[0], "SentAtUs"), &Variant::U64(0));
        assert_eq!(
            get(&recs[0], "Response"),
            &Variant::from(vec![0x6Au8, 0x82])
        );
        let summary = &recs[1];
        assert_eq!(get(summary, "Kind"), &Variant::from("summary"));
        assert_eq!(get(summary, "Script"), &Variant::from("unknown-aid"));
        assert_eq!(get(summary, "Technology"), &Variant::from("a"));
        assert_eq!(get(summary, "Result"), &Variant::from("ok"));
        assert_eq!(get(summary, "Error"), &Variant::from(""));
        assert_eq!(get(summary, "Apdus"), &Variant::U32(1));
        // 8 ms from field on, of which 5 ms before the activation.
        assert_eq!(get(summary, "ElapsedUs"), &Variant::U64(3_000));
        assert_eq!(get(summary, "TotalUs"), &Variant::U64(8_000));
        assert_eq!(get(summary, "Outcome"), &Variant::from("completed"));
    }

    #[test]
    fn verdicts() {
        let budget = Duration::from_millis(2);
        let r = report(TapOutcome::Completed, 8);
        assert_eq!(verdict(&r, Duration::from_millis(3), budget).0, "too-slow");
        let r = report(TapOutcome::Timeout { step: 1 }, 8);
        let (result, error) = verdict(&r, Duration::from_millis(1), budget);
        assert_eq!(
            (result, error.as_str()),
            ("timeout", "APDU 2: no response in time")
        );
    }

    fn options(pairs: Vec<(&str, Variant<'static>)>) -> HashMap<String, OwnedVariant> {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), OwnedVariant::try_from(v).expect("owned")))
            .collect()
    }

    #[test]
    fn tap_options() {
        let request = TapRequest::from_options(
            TapScript::Transit,
            &options(vec![
                ("Technology", Variant::from("b")),
                ("LinkLossAfter", Variant::U32(1)),
                ("DeadlineMs", Variant::U32(50)),
                ("Aid", Variant::from(vec![0xF0u8, 0x01, 0x02, 0x03, 0x04])),
            ]),
        )
        .expect("valid options");
        assert_eq!(request.options.tech, Tech::B);
        assert_eq!(request.options.link_loss_after, Some(1));
        assert_eq!(
            request.options.aid.as_deref(),
            Some(&[0xF0, 1, 2, 3, 4][..])
        );
        assert_eq!(request.budget, Duration::from_millis(50));

        let bad = [
            vec![("Speed", Variant::U32(1))],
            vec![("Technology", Variant::from("f"))],
            vec![("Technology", Variant::U32(1))],
            vec![("Aid", Variant::from(vec![0xF0u8, 0x01]))],
            vec![("LinkLossAfter", Variant::from("two"))],
        ];
        for pairs in bad {
            let err = TapRequest::from_options(TapScript::Transit, &options(pairs.clone()));
            assert!(matches!(err, Err(Error::InvalidArguments(_))), "{pairs:?}");
        }
        let aid_for_emv = TapRequest::from_options(
            TapScript::Emv,
            &options(vec![("Aid", Variant::from(vec![0xF0u8, 1, 2, 3, 4]))]),
        );
        assert!(matches!(aid_for_emv, Err(Error::InvalidArguments(_))));
    }
}

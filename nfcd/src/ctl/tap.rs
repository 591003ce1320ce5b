//! `nfcctl tap`: a simulated reader tap, `org.nfcd.Simulator1.Tap` (doc/simulator-api.md).
//!
//! Contract: one call, then the exchange is printed: one row per APDU record (command,
//! response, status word, time) and the summary. A daemon without `Simulator1` (one driving a
//! real controller) answers `UnknownInterface` / `UnknownObject`, reported as
//! [`CtlError::Unsupported`] with the hint to start it with `--transport sim`. A summary whose
//! `Result` is not `ok` is printed, then reported as [`CtlError::TapFailed`] (exit status 6).

use std::collections::HashMap;

use serde::Serialize;
use zbus::{OwnedVariant, Variant};

use libnci::apdu::StatusWord;

use super::apdu::{describe_command, describe_response};
use super::args::{Script, Tech};
use super::bus::Client;
use super::error::CtlError;
use super::output::{dash, Output, Table};
use super::value::{hex, Fields};

/// What `nfcctl` reports when the daemon has no simulator.
pub const NOT_SIMULATED: &str =
    "the daemon is not running on the virtual controller (start it with --transport sim)";

/// The command line's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapRequest {
    /// Reader script.
    pub script: Script,
    /// Reader technology.
    pub tech: Tech,
    /// AID overriding the script's default.
    pub aid: Option<Vec<u8>>,
}

/// One APDU exchange of the tap (`Kind` = `apdu`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApduRecord {
    /// `Command`, hex.
    pub command: Option<String>,
    /// `Response`, hex (data and status word).
    pub response: Option<String>,
    /// `Sw`, four hex digits.
    pub sw: Option<String>,
    /// `ElapsedUs`: command sent to response received, µs.
    pub elapsed_us: Option<u64>,
    /// `Service`: Id of the answering service; empty when nfcd answered itself.
    pub service: Option<String>,
    #[serde(skip)]
    command_bytes: Option<Vec<u8>>,
    #[serde(skip)]
    response_bytes: Option<Vec<u8>>,
}

/// The final record (`Kind` = `summary`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `Result`: `ok`, `unexpected-status`, `timeout`, `link-loss`, `error`.
    pub result: Option<String>,
    /// `Error`: what went wrong; empty when `ok`.
    pub error: Option<String>,
    /// `Apdus`: exchanges completed.
    pub apdus: Option<u32>,
    /// `ElapsedUs`: activation to deactivation, µs.
    pub elapsed_us: Option<u64>,
    /// `Script` run.
    pub script: Option<String>,
    /// `Technology` used.
    pub technology: Option<String>,
}

/// A whole tap as printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TapReport {
    /// Script asked for.
    pub script: String,
    /// Technology asked for.
    pub technology: String,
    /// The APDU records, in order.
    pub apdus: Vec<ApduRecord>,
    /// The summary; `None` if the reply had none.
    pub summary: Option<Summary>,
}

impl TapReport {
    /// Sort the reply's records. A record is a summary when its `Kind` says so, or, without a
    /// `Kind`, when it has a `Result` and no `Command`.
    pub fn from_records(
        request: &TapRequest,
        records: &[HashMap<String, OwnedVariant>],
    ) -> TapReport {
        let mut report = TapReport {
            script: request.script.wire_name().to_owned(),
            technology: request.tech.wire_name().to_owned(),
            ..TapReport::default()
        };
        for record in records {
            let f = Fields::from_properties(record);
            let kind = f.str("Kind");
            let is_summary = match kind.as_deref() {
                Some("summary") => true,
                Some(_) => false,
                None => f.get("Result").is_some() && f.get("Command").is_none(),
            };
            if is_summary {
                report.summary = Some(Summary {
                    result: f.str("Result"),
                    error: f.str("Error"),
                    apdus: f.u32("Apdus"),
                    elapsed_us: f.u64("ElapsedUs"),
                    script: f.str("Script"),
                    technology: f.str("Technology"),
                });
            } else if kind.as_deref().is_none_or(|k| k == "apdu") {
                let command = f.bytes("Command");
                let response = f.bytes("Response");
                let sw = f
                    .u16("Sw")
                    .map(StatusWord)
                    .or_else(|| response.as_deref().and_then(StatusWord::from_response));
                report.apdus.push(ApduRecord {
                    command: command.as_deref().map(hex),
                    response: response.as_deref().map(hex),
                    sw: sw.map(|sw| sw.to_string()),
                    elapsed_us: f.u64("ElapsedUs"),
                    service: f.str("Service"),
                    command_bytes: command,
                    response_bytes: response,
                });
            }
        }
        report
    }
}

/// Milliseconds with three decimals.
fn ms(us: u64) -> String {
    format!("{}.{:03} ms", us / 1000, us % 1000)
}

/// The human form.
pub fn render(report: &TapReport) -> String {
    let tech = match report.technology.as_str() {
        "a" => "NFC-A",
        "b" => "NFC-B",
        other => other,
    };
    let mut text = format!("Tap: script {}, {tech}\n", report.script);
    if report.apdus.is_empty() {
        text.push_str("No APDUs exchanged.\n");
    } else {
        let mut table = Table::new(&["#", "TIME", "SERVICE", "COMMAND", "RESPONSE"]);
        for (i, r) in report.apdus.iter().enumerate() {
            let service = match r.service.as_deref() {
                Some("") => "nfcd".to_owned(),
                other => dash(other),
            };
            table.push(vec![
                (i + 1).to_string(),
                dash(r.elapsed_us.map(ms)),
                service,
                dash(r.command_bytes.as_deref().map(describe_command)),
                dash(r.response_bytes.as_deref().map(describe_response)),
            ]);
        }
        text.push_str(&table.render());
    }
    match &report.summary {
        None => text.push_str("Result: - (the reply has no summary)\n"),
        Some(s) => {
            text.push_str(&format!("Result: {}", dash(s.result.as_deref())));
            if let Some(n) = s.apdus {
                text.push_str(&format!(", {n} APDU{}", if n == 1 { "" } else { "s" }));
            }
            if let Some(us) = s.elapsed_us {
                text.push_str(&format!(" in {}", ms(us)));
            }
            if let Some(err) = s.error.as_deref().filter(|e| !e.is_empty()) {
                text.push_str(&format!(" ({err})"));
            }
            text.push('\n');
        }
    }
    text
}

/// Run the tap and print it.
pub async fn run(
    client: &Client,
    request: &TapRequest,
    json: bool,
    out: &Output,
) -> Result<(), CtlError> {
    let simulator = client.simulator().await?;
    let mut options: HashMap<&str, Variant<'_>> = HashMap::new();
    options.insert("Technology", Variant::from(request.tech.wire_name()));
    if let Some(aid) = &request.aid {
        options.insert("Aid", Variant::from(aid.clone()));
    }
    let records = simulator
        .tap(request.script.wire_name(), options)
        .await
        .map_err(|e| client.error(e, || NOT_SIMULATED.to_owned()))?;
    let report = TapReport::from_records(request, &records);
    if json {
        out.json(&report)?;
    } else {
        out.write(&render(&report))?;
    }
    match &report.summary {
        Some(Summary {
            result: Some(result),
            ..
        }) if result == "ok" => Ok(()),
        Some(summary) => Err(CtlError::TapFailed {
            result: dash(summary.result.as_deref()),
            error: summary.error.clone().unwrap_or_default(),
        }),
        None => Err(CtlError::BadReply {
            what: "Simulator1.Tap returned no summary record".to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: Vec<(&str, Variant<'static>)>) -> HashMap<String, OwnedVariant> {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), OwnedVariant::try_from(v).unwrap()))
            .collect()
    }

    fn request() -> TapRequest {
        TapRequest {
            script: Script::UnknownAid,
            tech: Tech::A,
            aid: None,
        }
    }

    #[test]
    fn unknown_aid_tap() {
        let records = vec![
            rec(vec![
                ("Kind", "apdu".into()),
                // SELECT F0 00 00 00 00 00 01, Le=00.
                (
                    "Command",
                    vec![
                        0x00u8, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0, 0, 0, 0, 0, 0x01, 0x00,
                    ]
                    .into(),
                ),
                ("Response", vec![0x6Au8, 0x82].into()),
                ("Sw", 0x6A82u16.into()),
                ("ElapsedUs", 1_234u64.into()),
                ("Service", "".into()),
            ]),
            rec(vec![
                ("Kind", "summary".into()),
                ("Result", "ok".into()),
                ("Error", "".into()),
                ("Apdus", 1u32.into()),
                ("ElapsedUs", 20_500u64.into()),
            ]),
        ];
        let report = TapReport::from_records(&request(), &records);
        assert_eq!(report.apdus.len(), 1);
        assert_eq!(report.apdus[0].sw.as_deref(), Some("6A82"));
        assert_eq!(
            render(&report),
            "Tap: script unknown-aid, NFC-A\n\
             #  TIME      SERVICE  COMMAND                RESPONSE\n\
             1  1.234 ms  nfcd     SELECT F0000000000001  6A82 file or application not found\n\
             Result: ok, 1 APDU in 20.500 ms\n"
        );
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["apdus"][0]["command"], "00A4040007F000000000000100");
        assert_eq!(v["summary"]["result"], "ok");
    }

    #[test]
    fn records_without_kind_and_sw() {
        let records = vec![
            rec(vec![
                ("Command", vec![0x00u8, 0xB2, 0x01, 0x0C, 0x00].into()),
                ("Response", vec![0x01u8, 0x90, 0x00].into()),
            ]),
            rec(vec![
                ("Result", "timeout".into()),
                ("Error", "no answer within FWT".into()),
            ]),
        ];
        let report = TapReport::from_records(&request(), &records);
        assert_eq!(report.apdus[0].sw.as_deref(), Some("9000"));
        let text = render(&report);
        assert!(
            text.contains("READ RECORD P1=01 P2=0C Le=256  9000 ok, 1 byte"),
            "{text}"
        );
        assert!(
            text.ends_with("Result: timeout (no answer within FWT)\n"),
            "{text}"
        );
    }
}

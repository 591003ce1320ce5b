//! What a run found: summaries of timed series, single values, and the targets they are held
//! to; printed as a table for people or as one JSON document for programs.
//!
//! Contract: a series is summarised by its count, median and 99th percentile (nearest-rank:
//! the smallest sample with at least 99 % of the samples at or below it). Keys are stable,
//! dotted names (`dbus.short.nfcd`, `rss.idle_kib`) that the JSON output and the smoke test use.
//! Nothing here measures anything.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Map, Value};

/// Count, median and p99 of a series of durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Median, µs.
    pub median_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
}

impl Summary {
    /// Summarise `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted: Vec<Duration> = samples.to_vec();
        sorted.sort_unstable();
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        };
        // Nearest rank: ceil(0.99 n), 1-based.
        let rank = (n * 99).div_ceil(100).max(1);
        let p99 = sorted[rank - 1];
        Some(Summary {
            n,
            median_us: micros(median),
            p99_us: micros(p99),
        })
    }
}

/// A duration in µs, fractional.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One line of a section.
#[derive(Debug, Clone)]
pub enum Row {
    /// A timed series.
    Series {
        key: String,
        label: String,
        summary: Summary,
    },
    /// A single figure.
    Value {
        key: String,
        label: String,
        value: f64,
        unit: &'static str,
    },
    /// A figure held to a target.
    Target {
        key: String,
        label: String,
        value: f64,
        unit: &'static str,
        target: String,
        met: bool,
    },
    /// Free text.
    Note(String),
}

/// One numbered part of the report.
#[derive(Debug, Clone)]
pub struct Section {
    /// Heading.
    pub title: String,
    /// Its lines.
    pub rows: Vec<Row>,
}

impl Section {
    /// An empty section.
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            rows: Vec::new(),
        }
    }

    /// Add a series; an empty one becomes a note saying so.
    pub fn series(&mut self, key: &str, label: &str, samples: &[Duration]) -> Option<Summary> {
        match Summary::of(samples) {
            Some(summary) => {
                self.rows.push(Row::Series {
                    key: key.to_owned(),
                    label: label.to_owned(),
                    summary,
                });
                Some(summary)
            }
            None => {
                self.note(format!("{label}: no samples"));
                None
            }
        }
    }

    /// Add a single figure.
    pub fn value(&mut self, key: &str, label: &str, value: f64, unit: &'static str) {
        self.rows.push(Row::Value {
            key: key.to_owned(),
            label: label.to_owned(),
            value,
            unit,
        });
    }

    /// Add a figure with its target: met when `value <= limit`.
    pub fn target(&mut self, key: &str, label: &str, value: f64, unit: &'static str, limit: f64) {
        let shown = if unit == "×" {
            format!("≤ {limit} ×")
        } else {
            format!("≤ {limit} {unit}")
        };
        self.rows.push(Row::Target {
            key: key.to_owned(),
            label: label.to_owned(),
            value,
            unit,
            target: shown,
            met: value.is_finite() && value <= limit,
        });
    }

    /// Add free text.
    pub fn note(&mut self, text: impl Into<String>) {
        self.rows.push(Row::Note(text.into()));
    }
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The machine and build, as (key, value).
    pub env: Vec<(String, String)>,
    /// Parts 1–5.
    pub sections: Vec<Section>,
}

fn number(value: f64, unit: &str) -> String {
    let digits = if value.abs() >= 100.0 || value == value.trunc() && unit != "×" {
        0
    } else if value.abs() >= 10.0 {
        1
    } else {
        2
    };
    if unit.is_empty() {
        format!("{value:.digits$}")
    } else if unit == "×" {
        format!("{value:.2} ×")
    } else {
        format!("{value:.digits$} {unit}")
    }
}

impl Report {
    /// The report as a table.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (key, value) in &self.env {
            let _ = writeln!(out, "{key:<14} {value}");
        }
        for section in &self.sections {
            let _ = writeln!(out, "\n{}", section.title);
            let series = section.rows.iter().any(|r| matches!(r, Row::Series { .. }));
            if series {
                let _ = writeln!(
                    out,
                    "  {:<62} {:>6} {:>11} {:>11}",
                    "", "n", "median", "p99"
                );
            }
            for row in &section.rows {
                match row {
                    Row::Series { label, summary, .. } => {
                        let _ = writeln!(
                            out,
                            "  {label:<62} {:>6} {:>8.1} µs {:>8.1} µs",
                            summary.n, summary.median_us, summary.p99_us
                        );
                    }
                    Row::Value {
                        label, value, unit, ..
                    } => {
                        let _ = writeln!(out, "  {label:<62} {}", number(*value, unit));
                    }
                    Row::Target {
                        label,
                        value,
                        unit,
                        target,
                        met,
                        ..
                    } => {
                        let verdict = if *met { "met" } else { "MISSED" };
                        let _ = writeln!(
                            out,
                            "  {label:<62} {:<14} target {target:<12} {verdict}",
                            number(*value, unit)
                        );
                    }
                    Row::Note(text) => {
                        let _ = writeln!(out, "  {text}");
                    }
                }
            }
        }
        out
    }

    /// The report as JSON: `env`, `series` (key → n, median_us, p99_us), `values` (key →
    /// value, unit) and `targets` (key → value, unit, target, met).
    pub fn json(&self) -> Value {
        let env: Map<String, Value> = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        let mut series = Map::new();
        let mut values = Map::new();
        let mut targets = Map::new();
        let mut notes = Vec::new();
        for row in self.sections.iter().flat_map(|s| s.rows.iter()) {
            match row {
                Row::Series {
                    key,
                    label,
                    summary,
                } => {
                    series.insert(
                        key.clone(),
                        json!({
                            "label": label,
                            "n": summary.n,
                            "median_us": summary.median_us,
                            "p99_us": summary.p99_us,
                        }),
                    );
                }
                Row::Value {
                    key,
                    label,
                    value,
                    unit,
                } => {
                    values.insert(
                        key.clone(),
                        json!({ "label": label, "value": value, "unit": unit }),
                    );
                }
                Row::Target {
                    key,
                    label,
                    value,
                    unit,
                    target,
                    met,
                } => {
                    targets.insert(
                        key.clone(),
                        json!({
                            "label": label,
                            "value": value,
                            "unit": unit,
                            "target": target,
                            "met": met,
                        }),
                    );
                }
                Row::Note(text) => notes.push(Value::from(text.clone())),
            }
        }
        json!({
            "env": env,
            "series": series,
            "values": values,
            "targets": targets,
            "notes": notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_nearest_rank_p99() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_micros).collect();
        let s = Summary::of(&samples).unwrap();
        // 200 samples: median between the 100th and 101st, p99 the 198th.
        assert_eq!((s.n, s.median_us, s.p99_us), (200, 100.5, 198.0));
        let one = Summary::of(&[Duration::from_micros(7)]).unwrap();
        assert_eq!((one.median_us, one.p99_us), (7.0, 7.0));
        assert!(Summary::of(&[]).is_none());
    }
}

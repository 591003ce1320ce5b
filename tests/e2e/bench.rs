//! `nfcd-bench`, the tap-timing benchmark (doc/performance.md), run quickly so that it cannot
//! rot: every series and figure it reports is there and sane. How fast anything is, is not
//! checked here: that is a measurement, not a test.

use std::process::Stdio;
use std::time::Duration;

use nfcd_e2e::within;
use serde_json::Value;

/// A quick run takes a few seconds; a loaded machine may take much longer.
const QUICK_RUN: Duration = Duration::from_secs(180);

/// The quick run's registry sizes (part 3).
const REGISTRIES: [u32; 3] = [1, 2, 3];

fn series_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for path in ["dbus", "channel"] {
        for size in ["short", "long"] {
            for what in [
                "nfcd",
                "bare",
                "bare_paced",
                "inbound",
                "hop",
                "outbound",
                "reader",
                "reader_unmonitored",
            ] {
                keys.push(format!("{path}.{size}.{what}"));
            }
        }
    }
    for n in REGISTRIES {
        for what in [
            "nfcd",
            "select",
            "select_hop",
            "bare_paced",
            "reader",
            "reader_unmonitored",
        ] {
            keys.push(format!("tap.{n}.{what}"));
        }
    }
    keys.push("startup.ready".to_owned());
    keys
}

/// Figures that must be positive: (key, in `values` or `targets`).
fn positive_keys() -> Vec<String> {
    let mut keys = vec![
        "rss.idle_kib".to_owned(),
        "rss.tenth_kib".to_owned(),
        "rss.after_kib".to_owned(),
        "taps.per_s".to_owned(),
        "binary.size_bytes".to_owned(),
        "binary.stripped_mib".to_owned(),
        "tap.largest.median".to_owned(),
    ];
    for path in ["dbus", "channel"] {
        for size in ["short", "long"] {
            keys.push(format!("{path}.{size}.ratio_median"));
            keys.push(format!("{path}.{size}.ratio_p99"));
            keys.push(format!("{path}.{size}.ratio_paced_median"));
            keys.push(format!("{path}.{size}.ratio_paced_p99"));
        }
    }
    for size in ["short", "long"] {
        keys.push(format!("channel.{size}.median"));
    }
    for script in ["emv", "transit"] {
        for khz in [100, 400, 3400] {
            for what in ["total_ms", "bus_pct", "nfcd_pct", "wallet_pct", "nfcd_us"] {
                keys.push(format!("txn.{script}.{khz}.{what}"));
            }
        }
    }
    keys
}

/// A figure under `key` in `values` or `targets`.
fn figure(report: &Value, key: &str) -> Option<f64> {
    ["values", "targets"]
        .iter()
        .find_map(|map| report[map][key]["value"].as_f64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_benchmark_run_reports_every_series() {
    // The bench reads nfcd's trace (Monitor1, uid 0 only) and runs echo servers as other uids.
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "skipped: nfcd-bench needs uid 0 (Monitor1.Subscribe, echo servers as other uids)"
        );
        return;
    }
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_nfcd-bench"))
        .args(["--quick", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = within("nfcd-bench --quick", QUICK_RUN, run)
        .await
        .unwrap_or_else(|e| panic!("running nfcd-bench: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "nfcd-bench --quick failed ({}):\n{stderr}",
        output.status
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "nfcd-bench --json printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });

    for key in series_keys() {
        let series = &report["series"][&key];
        let n = series["n"].as_u64().unwrap_or(0);
        let median = series["median_us"].as_f64().unwrap_or(f64::NAN);
        let p99 = series["p99_us"].as_f64().unwrap_or(f64::NAN);
        assert!(n > 0, "series {key} has no samples: {series}");
        assert!(
            median.is_finite() && median > 0.0 && p99.is_finite() && p99 >= median,
            "series {key}: median {median} µs, p99 {p99} µs"
        );
    }
    for key in positive_keys() {
        let value = figure(&report, &key);
        assert!(
            value.is_some_and(|v| v.is_finite() && v > 0.0),
            "{key} = {value:?}"
        );
    }
    // These may be zero (and should be), but must be there.
    for key in ["idle.wakeups_per_s", "rss.growth_kib"] {
        assert!(
            figure(&report, key).is_some_and(f64::is_finite),
            "{key} missing"
        );
    }
    // Every target row says whether it is met.
    let targets = report["targets"].as_object().cloned().unwrap_or_default();
    assert!(targets.len() >= 14, "{} targets", targets.len());
    for (key, target) in targets {
        assert!(target["met"].is_boolean(), "target {key}: {target}");
    }
}

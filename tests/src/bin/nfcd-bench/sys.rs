//! What the kernel says about a process and the machine (proc(5)).
//!
//! Contract: plain readers of `/proc`; each returns an error text instead of panicking when a
//! file is missing or unreadable (the process may be gone). Nothing here starts, stops or
//! times anything.

use std::path::Path;

/// `VmRSS` of process `pid`, in KiB (proc(5), `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let status = read(&format!("/proc/{pid}/status"))?;
    field(&status, "VmRSS:").ok_or_else(|| format!("no VmRSS for process {pid}"))
}

/// Context switches of every thread of process `pid` so far, voluntary and not, summed over
/// `/proc/PID/task/*/status`; and the number of threads. A thread that sleeps and is woken
/// counts one voluntary switch when it sleeps again.
pub fn context_switches(pid: u32) -> Result<(u64, usize), String> {
    let dir = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    let mut total = 0;
    let mut threads = 0;
    for entry in entries.flatten() {
        let path = entry.path().join("status");
        // A thread may end between the listing and the read.
        let Ok(status) = std::fs::read_to_string(&path) else {
            continue;
        };
        threads += 1;
        total += field(&status, "voluntary_ctxt_switches:").unwrap_or(0);
        total += field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
    }
    Ok((total, threads))
}

/// The first number after `name` on its line of a `/proc` status file.
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// The CPU model named in `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The kernel release (`/proc/sys/kernel/osrelease`).
pub fn kernel() -> String {
    read("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The three load averages (`/proc/loadavg`).
pub fn load_average() -> String {
    read("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Size of a file in octets.
pub fn file_size(path: &Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let status = "Name:\tnfcd\nVmRSS:\t    5120 kB\nvoluntary_ctxt_switches:\t12\n";
        assert_eq!(field(status, "VmRSS:"), Some(5120));
        assert_eq!(field(status, "voluntary_ctxt_switches:"), Some(12));
        assert_eq!(field(status, "nonvoluntary_ctxt_switches:"), None);
    }

    #[test]
    fn this_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        let (_, threads) = context_switches(pid).unwrap();
        assert!(threads >= 1);
    }
}

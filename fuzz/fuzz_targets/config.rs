//! `nfcd::config::Config::from_toml` on arbitrary UTF-8: the daemon's configuration file,
//! including the transport and bus specs, principals, hex strings and NXP settings inside it.
//!
//! Checks: it never panics; an error that comes from the TOML parser (`ConfigError::Syntax`)
//! always carries a 1-based line and column inside the text (a line no further than one past
//! the last, a column no further than one past the end of that line); a value error that
//! names a location obeys the same bounds; every error renders as text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nfcd::cli::Cli;
use nfcd::config::{Config, ConfigError, Location};

fn check_location(text: &str, location: Location, what: &ConfigError) {
    assert!(location.line >= 1, "line 0 in {what}");
    assert!(location.column >= 1, "column 0 in {what}");
    // `str::lines` drops a final empty line; the parser may point just past the last octet.
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        location.line <= lines.len(),
        "line {} of {} in {what}",
        location.line,
        lines.len()
    );
    let line = lines[location.line - 1];
    assert!(
        location.column <= line.chars().count() + 1,
        "column {} of a {}-character line in {what}",
        location.column,
        line.chars().count()
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cli = Cli::default();
    match Config::from_toml(text, Some(Path::new("nfcd.toml")), &cli) {
        Ok(config) => {
            assert_eq!(config.source.as_deref(), Some(Path::new("nfcd.toml")));
        }
        Err(err) => {
            let rendered = err.to_string();
            if matches!(
                err,
                ConfigError::Syntax { .. } | ConfigError::Invalid { .. }
            ) {
                assert!(rendered.starts_with("nfcd.toml:"), "{rendered}");
            }
            match &err {
                ConfigError::Syntax { location, .. } => check_location(text, *location, &err),
                ConfigError::Invalid {
                    location: Some(location),
                    ..
                } => check_location(text, *location, &err),
                ConfigError::Invalid { location: None, .. } | ConfigError::NoTransport { .. } => {}
                ConfigError::Read { .. } => panic!("from_toml read a file: {err}"),
            }
        }
    }
});

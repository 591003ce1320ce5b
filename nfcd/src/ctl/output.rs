//! Writing results: aligned text tables for people, JSON for scripts.
//!
//! Contract: the commands render their whole answer into a `String` (pure functions, unit
//! tested) and hand it to [`Output`], which writes and flushes it. A reader that closed stdout
//! becomes [`CtlError::OutputClosed`] (a quiet end), never a panic: `println!` is not used.

use std::fmt::Display;
use std::io::{self, Write};

use serde::Serialize;

use super::error::CtlError;

/// Where answers go: stdout.
#[derive(Debug, Default)]
pub struct Output {
    _private: (),
}

impl Output {
    /// Standard output.
    pub fn stdout() -> Output {
        Output { _private: () }
    }

    /// Write `text` as it is and flush (a monitor line must show up at once).
    pub fn write(&self, text: &str) -> Result<(), CtlError> {
        let mut out = io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(CtlError::from_output)
    }

    /// One JSON document, pretty-printed, with a final newline.
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), CtlError> {
        let mut text = serde_json::to_string_pretty(value).map_err(|e| CtlError::BadReply {
            what: format!("cannot encode the answer as JSON: {e}"),
        })?;
        text.push('\n');
        self.write(&text)
    }

    /// One JSON object on one line (for streams: `monitor --json`).
    pub fn json_line<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), CtlError> {
        let mut text = serde_json::to_string(value).map_err(|e| CtlError::BadReply {
            what: format!("cannot encode the event as JSON: {e}"),
        })?;
        text.push('\n');
        self.write(&text)
    }
}

/// `value`, or `-` when it is missing or shows as nothing (nfcd sends `""` for a string it
/// does not know yet, e.g. `Controller` before the controller answered).
pub fn dash<T: Display>(value: Option<T>) -> String {
    value
        .map(|v| v.to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

/// `yes` / `no`, or `-` when missing.
pub fn yes_no(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "-".to_owned(),
    }
}

/// A text table: a header row and data rows, columns padded to their widest cell and separated
/// by two spaces. The last column is not padded, and no line ends in spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Append a row; missing trailing cells are empty, surplus cells are kept as extra columns.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// `true` without data rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines of text, each ending in `\n`.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain(std::iter::once(self.header.len()))
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                if i + 1 < columns {
                    let pad = width.saturating_sub(cell.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// Aligned `label  value` lines under an optional title, for single objects (`status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    title: String,
    lines: Vec<(String, String)>,
}

impl Block {
    /// A block titled `title` (empty: no title line).
    pub fn new(title: impl Into<String>) -> Block {
        Block {
            title: title.into(),
            lines: Vec::new(),
        }
    }

    /// Add a `label  value` line.
    pub fn line(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.lines.push((label.into(), value.into()));
    }

    /// The block as text; values are aligned to the longest label of the block.
    pub fn render(&self) -> String {
        let width = self
            .lines
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        let mut text = String::new();
        let indent = if self.title.is_empty() {
            ""
        } else {
            text.push_str(&self.title);
            text.push('\n');
            "  "
        };
        for (label, value) in &self.lines {
            let pad = width.saturating_sub(label.chars().count());
            let line = format!("{indent}{label}{}  {value}", " ".repeat(pad));
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_align() {
        let mut t = Table::new(&["ID", "CATEGORY", "AIDS"]);
        t.push(vec![
            "com.example.pay".into(),
            "payment".into(),
            "A0000000041010".into(),
        ]);
        t.push(vec!["".into(), "".into(), "A0000000031010".into()]);
        t.push(vec!["x".into(), "other".into()]);
        assert_eq!(
            t.render(),
            "ID               CATEGORY  AIDS\n\
             com.example.pay  payment   A0000000041010\n\
             \x20                          A0000000031010\n\
             x                other\n"
        );
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn block_aligns_values() {
        let mut b = Block::new("Adapter /org/nfcd/adapter0");
        b.line("Powered", "yes");
        b.line("NCI version", "2.0");
        b.line("Controller", "");
        assert_eq!(
            b.render(),
            "Adapter /org/nfcd/adapter0\n  Powered      yes\n  NCI version  2.0\n  Controller\n"
        );
    }

    #[test]
    fn missing_values() {
        assert_eq!(dash(None::<u32>), "-");
        assert_eq!(dash(Some(720)), "720");
        assert_eq!(dash(Some("")), "-");
        assert_eq!(yes_no(Some(false)), "no");
        assert_eq!(yes_no(None), "-");
    }
}

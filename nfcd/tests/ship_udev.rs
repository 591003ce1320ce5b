//! The shipped udev rules and modprobe blacklist.
//!
//! `udevadm verify` only exists from systemd 253 on, so the rules also go through a checker
//! written here from udev(7): every logical line (backslash continuations joined) is a comment,
//! blank, or comma-separated `KEY[{attr}] OP "value"` pairs, where the key is one udev knows,
//! the operator is one that key accepts (a match key cannot be assigned, an assignment key
//! cannot be matched), the value is a closed double-quoted string, every GOTO has its LABEL,
//! and MODE is octal. The checker is itself tested on lines udev would refuse.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn read(rel: &str) -> String {
    let path = repo_file(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Match,    // ==
    NotMatch, // !=
    Assign,   // =
    Add,      // +=
    Remove,   // -=
    Final,    // :=
}

const M: &[Op] = &[Op::Match, Op::NotMatch];
const ASSIGN_FINAL: &[Op] = &[Op::Assign, Op::Final];
const ALL: &[Op] = &[
    Op::Match,
    Op::NotMatch,
    Op::Assign,
    Op::Add,
    Op::Remove,
    Op::Final,
];

/// Attribute in braces: required, optional, or not allowed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attr {
    Required,
    Optional,
    None,
}

/// udev(7) keys, the operators each accepts and whether it takes `{attr}`.
fn key_spec(key: &str) -> Option<(&'static [Op], Attr)> {
    Some(match key {
        "ACTION" | "DEVPATH" | "KERNEL" | "KERNELS" | "SUBSYSTEM" | "SUBSYSTEMS" | "DRIVER"
        | "DRIVERS" | "TAGS" | "PROGRAM" | "RESULT" => (M, Attr::None),
        "ATTRS" | "CONST" => (M, Attr::Required),
        "TEST" => (M, Attr::Optional),
        "NAME" => (
            &[Op::Match, Op::NotMatch, Op::Assign, Op::Final],
            Attr::None,
        ),
        "SYMLINK" | "TAG" => (ALL, Attr::None),
        "OWNER" | "GROUP" | "MODE" => (ASSIGN_FINAL, Attr::None),
        "ATTR" | "SYSCTL" => (
            &[Op::Match, Op::NotMatch, Op::Assign, Op::Final],
            Attr::Required,
        ),
        "ENV" => (
            &[Op::Match, Op::NotMatch, Op::Assign, Op::Add, Op::Final],
            Attr::Required,
        ),
        "SECLABEL" => (&[Op::Assign, Op::Add, Op::Final], Attr::Required),
        "RUN" => (&[Op::Assign, Op::Add, Op::Final], Attr::Optional),
        "IMPORT" => (&[Op::Match, Op::NotMatch, Op::Assign], Attr::Required),
        "OPTIONS" => (&[Op::Assign, Op::Add], Attr::None),
        "LABEL" | "GOTO" => (&[Op::Assign], Attr::None),
        _ => return None,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pair {
    key: String,
    attr: Option<String>,
    op: Op,
    value: String,
}

/// Parses one logical rule line into its pairs.
fn parse_rule(line: &str) -> Result<Vec<Pair>, String> {
    let mut pairs = Vec::new();
    let mut rest = line.trim_start();
    loop {
        let key_len = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .unwrap_or(rest.len());
        if key_len == 0 {
            return Err(format!("expected a key at {rest:?}"));
        }
        let key = &rest[..key_len];
        rest = &rest[key_len..];
        let (ops, attr_rule) = key_spec(key).ok_or_else(|| format!("unknown key {key}"))?;
        let attr = match rest.strip_prefix('{') {
            Some(after) => {
                let end = after
                    .find('}')
                    .ok_or_else(|| format!("{key}{{ not closed"))?;
                let a = &after[..end];
                if a.is_empty() {
                    return Err(format!("{key}{{}} is empty"));
                }
                rest = &after[end + 1..];
                Some(a.to_owned())
            }
            None => None,
        };
        match (attr_rule, &attr) {
            (Attr::Required, None) => return Err(format!("{key} needs {{attribute}}")),
            (Attr::None, Some(a)) => return Err(format!("{key} takes no {{{a}}}")),
            _ => {}
        }
        rest = rest.trim_start();
        let (op, len) = [
            ("==", Op::Match),
            ("!=", Op::NotMatch),
            ("+=", Op::Add),
            ("-=", Op::Remove),
            (":=", Op::Final),
            ("=", Op::Assign),
        ]
        .iter()
        .find(|(s, _)| rest.starts_with(s))
        .map(|(s, op)| (*op, s.len()))
        .ok_or_else(|| format!("no operator after {key}"))?;
        if !ops.contains(&op) {
            return Err(format!("{key} does not take {op:?}"));
        }
        rest = rest[len..].trim_start();
        let body = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("{key}: value is not double-quoted"))?;
        let mut value = String::new();
        let mut chars = body.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) => {
                        value.push('\\');
                        value.push(e);
                    }
                    None => break,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("{key}: value not closed"))?;
        rest = &body[end + 1..];
        pairs.push(Pair {
            key: key.to_owned(),
            attr,
            op,
            value,
        });
        let after = rest.trim_start();
        if after.is_empty() {
            return Ok(pairs);
        }
        rest = after
            .strip_prefix(',')
            .ok_or_else(|| format!("missing comma before {after:?}"))?
            .trim_start();
        if rest.is_empty() {
            return Err("trailing comma".to_owned());
        }
    }
}

/// Checks a whole rules file; returns its rules (line number, pairs).
fn check_rules(text: &str) -> Result<Vec<(usize, Vec<Pair>)>, String> {
    let mut rules = Vec::new();
    let mut pending = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if pending.is_empty() {
            start = n;
            let t = raw.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
        }
        if let Some(cont) = raw.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        pending.push_str(raw);
        let line = std::mem::take(&mut pending);
        let pairs = parse_rule(&line).map_err(|e| format!("line {start}: {e}"))?;
        rules.push((start, pairs));
    }
    if !pending.is_empty() {
        return Err(format!("line {start}: continuation at end of file"));
    }
    let mut labels = BTreeSet::new();
    for (n, pairs) in &rules {
        for p in pairs.iter().filter(|p| p.key == "LABEL") {
            if !labels.insert(p.value.clone()) {
                return Err(format!("line {n}: LABEL {} defined twice", p.value));
            }
        }
    }
    for (n, pairs) in &rules {
        for p in pairs {
            if p.key == "GOTO" && !labels.contains(&p.value) {
                return Err(format!("line {n}: GOTO {} has no LABEL", p.value));
            }
            let octal = (3..=4).contains(&p.value.len())
                && p.value.bytes().all(|b| (b'0'..=b'7').contains(&b));
            if p.key == "MODE" && !octal {
                return Err(format!("line {n}: MODE {:?} is not octal", p.value));
            }
        }
    }
    Ok(rules)
}

fn shipped_rules() -> Vec<&'static str> {
    vec!["udev/60-nfcd.rules", "udev/59-nfcd-board.rules"]
}

#[test]
fn ship_udev_rules_syntax() {
    for file in shipped_rules() {
        let rules = check_rules(&read(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(!rules.is_empty(), "{file} has no rules");
    }
}

#[test]
fn ship_udev_rules_udevadm_verify() {
    let probe = Command::new("udevadm").args(["verify", "--help"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(_) => {
            println!(
                "skipped: udevadm has no verify (systemd < 253); ship_udev_rules_syntax covers it"
            );
            return;
        }
        Err(e) => {
            println!("skipped: udevadm not runnable ({e}); ship_udev_rules_syntax covers it");
            return;
        }
    }
    for file in shipped_rules() {
        let out = Command::new("udevadm")
            .args(["verify", "--resolve-names=never"])
            .arg(repo_file(file))
            .output()
            .expect("udevadm verify");
        assert!(
            out.status.success(),
            "{file}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn ship_udev_checker_refuses_what_udev_refuses() {
    let bad = [
        // Assignment to a match-only key (udev: "Invalid operator for KERNEL").
        r#"SUBSYSTEM="tty", GROUP="nfc""#,
        // Matching an assignment-only key.
        r#"SUBSYSTEM=="tty", GROUP=="nfc""#,
        r#"KERNEL=="i2c-1" GROUP="nfc""#,
        r#"SUBSYSTEM=="tty", GROUP="nfc"#,
        r#"SUBSYSTEM=="tty", GROUP=nfc"#,
        r#"FOO=="bar""#,
        r#"ENV=="1""#,
        r#"KERNEL{x}=="1""#,
        r#"ENV{}=="1""#,
        r#"ENV{X}-="1""#,
        r#"SUBSYSTEM=="tty","#,
        r#"SUBSYSTEM"tty""#,
        r#"LABEL=="end""#,
        r#"ACTION=="add", GOTO="nowhere""#,
        r#"SUBSYSTEM=="tty", MODE="rw""#,
        r#"SUBSYSTEM=="tty", MODE="06600""#,
        "SUBSYSTEM==\"tty\", \\",
        "LABEL=\"x\"\nLABEL=\"x\"",
    ];
    for rule in bad {
        assert!(check_rules(rule).is_err(), "accepted: {rule}");
    }
    let good = r#"
# comment
ACTION=="remove", GOTO="x_end"
SUBSYSTEM=="tty", ATTRS{idVendor}=="1fc9", ENV{ID_X}=="a\"b", \
  MODE="0660", GROUP:="nfc", TAG+="systemd", ENV{SYSTEMD_WANTS}+="nfcd.service"
KERNEL!="i2c-[0-9]*",GOTO="x_end"
TEST{0600}=="/dev/x", RUN+="/bin/true", IMPORT{builtin}="path_id", OPTIONS+="nowatch"
LABEL="x_end"
"#;
    let rules = check_rules(good).expect("valid rules");
    assert_eq!(rules.len(), 5);
    assert_eq!(rules[1].0, 4);
    assert_eq!(
        rules[1].1[2],
        Pair {
            key: "ENV".into(),
            attr: Some("ID_X".into()),
            op: Op::Match,
            value: "a\\\"b".into()
        }
    );
    assert_eq!(rules[1].1.len(), 7);
}

#[test]
fn ship_udev_rules_give_marked_nodes_to_the_service_group() {
    let rules = check_rules(&read("udev/60-nfcd.rules")).expect("valid");
    let sysusers = read("systemd/nfcd.sysusers");
    let unit = read("systemd/nfcd.service");
    let find = |subsystem: &str| {
        rules
            .iter()
            .map(|(_, p)| p)
            .find(|p| {
                p.iter()
                    .any(|x| x.key == "SUBSYSTEM" && x.op == Op::Match && x.value == subsystem)
            })
            .unwrap_or_else(|| panic!("no rule for SUBSYSTEM=={subsystem}"))
    };
    for subsystem in ["i2c-dev", "gpio", "tty"] {
        let rule = find(subsystem);
        let group = rule
            .iter()
            .find(|p| p.key == "GROUP")
            .map(|p| p.value.as_str())
            .unwrap_or_else(|| panic!("{subsystem}: no GROUP"));
        assert_eq!(group, "nfc");
        assert!(rule.iter().any(|p| p.key == "MODE" && p.value == "0660"));
    }
    // The group exists and the service has it.
    assert!(sysusers
        .lines()
        .any(|l| l.split_whitespace().take(2).eq(["g", "nfc"])));
    assert!(unit
        .lines()
        .any(|l| l.starts_with("SupplementaryGroups=") && l.split([' ', '=']).any(|g| g == "nfc")));
    // Only controllers marked by a board rule are touched.
    let gate = &rules
        .iter()
        .find(|(_, p)| {
            p.iter()
                .any(|x| x.key == "ENV" && x.attr.as_deref() == Some("NFCD_CONTROLLER"))
        })
        .expect("NFCD_CONTROLLER gate")
        .1;
    assert_eq!(gate[0].op, Op::NotMatch);
    assert_eq!(gate[1].key, "GOTO");
    // A UART controller plugged in starts the daemon.
    let tty = find("tty");
    assert!(tty
        .iter()
        .any(|p| p.key == "TAG" && p.op == Op::Add && p.value == "systemd"));
    assert!(tty.iter().any(|p| p.key == "ENV"
        && p.attr.as_deref() == Some("SYSTEMD_WANTS")
        && p.value == "nfcd.service"));
    // The board example marks nodes, it does not set permissions itself.
    let board = check_rules(&read("udev/59-nfcd-board.rules")).expect("valid");
    for (n, pairs) in &board {
        assert!(
            pairs.iter().any(|p| p.key == "ENV"
                && p.attr.as_deref() == Some("NFCD_CONTROLLER")
                && p.op == Op::Assign
                && p.value == "1"),
            "board rule at line {n} does not mark a controller"
        );
    }
}

#[test]
fn ship_udev_modprobe_blacklist() {
    let text = read("udev/nfcd-blacklist.conf");
    let mut blacklisted = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        match words.as_slice() {
            ["blacklist", module] => {
                assert!(
                    module
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                    "line {}: bad module name {module}",
                    i + 1
                );
                // modprobe treats '-' and '_' alike; the kernel names are nxp-nci(_i2c).
                blacklisted.insert(module.replace('-', "_"));
            }
            _ => panic!("line {}: not a modprobe.d blacklist line: {line:?}", i + 1),
        }
    }
    assert_eq!(
        blacklisted,
        BTreeSet::from(["nxp_nci".to_owned(), "nxp_nci_i2c".to_owned()])
    );
}

//! `ncidump` run as a program: transcripts in, one decoded line (or JSON object) per packet out.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn ncidump(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ncidump"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ncidump");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for ncidump")
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .expect("UTF-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The PN7150 start-up and one card-emulation tap, as a host would log it.
const PN7150_TRANSCRIPT: &str = "\
# PN7150 start-up
> 20 00 01 01
< 40 00 03 00 10 01
> 20 01 00
< 40 01 19 00 03 1E 03 00 08 00 01 02 03 80 81 82 83 02 D0 02 FF 02 00 04 88 10 01 A0
> 2F 02 00
< 4F 02 05 00 00 10 01 A0

> 20:02:08:02:A0:03:01:08:32:01:20   # clock source, SEL_RES
< 40 02 02 00 00
> 21 03 05 02 80 01 81 01
< 41 03 01 00
# a reader taps
< 61 07 01 01
< 61 05 0C 01 02 04 80 FF 01 00 80 00 00 01 80
< 00 00 0C 00 A4 04 00 07 A0 00 00 00 04 10 10
> 00 00 02 90 00
< 60 06 03 01 00 01
< 61 06 02 03 02
< 61 07 01 00
";

#[test]
fn decodes_a_pn7150_transcript() {
    let output = ncidump(&[], PN7150_TRANSCRIPT);
    assert!(output.status.success(), "{output:?}");
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 17, "{lines:#?}");
    assert_eq!(lines[0], "> CORE_RESET_CMD reset_type=RESET_CONFIGURATION");
    assert_eq!(
        lines[1],
        "< CORE_RESET_RSP status=STATUS_OK nci_version=1.0 config_status=NCI_RF_CONFIGURATION_RESET"
    );
    assert_eq!(lines[2], "> CORE_INIT_CMD");
    assert!(
        lines[3].starts_with(
            "< CORE_INIT_RSP status=STATUS_OK features=03 1E 03 00 interfaces=[NFCEE_DIRECT_RF_INTERFACE"
        ),
        "{}",
        lines[3]
    );
    assert!(
        lines[3].contains("max_conns=2 routing_table=720 max_ctrl_payload=255"),
        "{}",
        lines[3]
    );
    assert!(lines[3].contains("chip=PN7150"), "{}", lines[3]);
    assert_eq!(lines[4], "> NCI_PROPRIETARY_ACT_CMD");
    assert_eq!(
        lines[5],
        "< NCI_PROPRIETARY_ACT_RSP status=STATUS_OK fw_build=00 10 01 A0"
    );
    assert_eq!(
        lines[6],
        "> CORE_SET_CONFIG_CMD params=[{id=0xA003 value=08} {id=LA_SEL_INFO value=20}]"
    );
    assert_eq!(lines[9], "< RF_DISCOVER_RSP status=STATUS_OK");
    assert_eq!(lines[10], "< RF_FIELD_INFO_NTF field_on=true");
    assert!(lines[11]
        .starts_with("< RF_INTF_ACTIVATED_NTF discovery_id=1 interface=ISO_DEP_RF_INTERFACE"));
    assert!(lines[11].ends_with("activation={rats_param=80 fsdi=8 fsd=256 did=0}"));
    assert_eq!(
        lines[12],
        "< DATA conn_id=0 credits=0 len=12 payload=00 A4 04 00 07 A0 00 00 00 04 10 10"
    );
    assert_eq!(lines[13], "> DATA conn_id=0 credits=0 len=2 payload=90 00");
    assert_eq!(
        lines[14],
        "< CORE_CONN_CREDITS_NTF entries=[{conn_id=0 credits=1}]"
    );
    assert_eq!(
        lines[15],
        "< RF_DEACTIVATE_NTF type=DISCOVERY reason=RF_LINK_LOSS"
    );
    assert_eq!(lines[16], "< RF_FIELD_INFO_NTF field_on=false");
}

#[test]
fn reads_a_file_argument() {
    let path = std::env::temp_dir().join(format!("ncidump-test-{}.txt", std::process::id()));
    std::fs::write(&path, "20 00 01 00\n40 00 01 00\n").expect("write temp file");
    let output = ncidump(&[path.to_str().expect("UTF-8 path")], "");
    std::fs::remove_file(&path).ok();
    assert!(output.status.success(), "{output:?}");
    // Without a direction mark, commands go right and responses left.
    assert_eq!(
        stdout_lines(&output),
        [
            "> CORE_RESET_CMD reset_type=KEEP_CONFIGURATION",
            "< CORE_RESET_RSP status=STATUS_OK",
        ]
    );
}

#[test]
fn undecodable_lines_are_reported_and_the_run_goes_on() {
    let input = "\
> 20 01 00
< 40 01 19 00 03
< 61 3F 00
not hex
< 20 0
< 61 07 01 01
";
    let output = ncidump(&[], input);
    assert!(output.status.success(), "{output:?}");
    let lines = stdout_lines(&output);
    assert_eq!(
        lines,
        [
            "> CORE_INIT_CMD",
            "< line 2: cannot decode CORE_INIT_RSP: truncated [40 01 19 00 03]",
            "< line 3: cannot decode: unknown message [61 3F 00]",
            "? line 4: cannot decode: 'n' is not a hex digit [not hex]",
            "< line 5: cannot decode: odd number of hex digits [< 20 0]",
            "< RF_FIELD_INFO_NTF field_on=true",
        ]
    );
}

#[test]
fn segments_are_shown_and_the_message_decoded_when_complete() {
    let input = "\
> 30 02 04 02 00 02 F4
> 20 02 04 01 32 01 20
< 10 00 02 90 00
< 00 00 01 00
< 10 00 01 6A
";
    let output = ncidump(&[], input);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout_lines(&output),
        [
            "> CORE_SET_CONFIG_CMD segment=1 more=true len=4 payload=02 00 02 F4",
            "> CORE_SET_CONFIG_CMD segments=2 params=[{id=TOTAL_DURATION value=F4 01} {id=LA_SEL_INFO value=20}]",
            "< DATA segment=1 more=true len=2 payload=90 00",
            "< DATA segments=2 conn_id=0 credits=0 len=3 payload=90 00 00",
            "< DATA segment=1 more=true len=1 payload=6A",
            "< line 5: input ended after 1 segment(s) of a message (1 octets), last segment missing",
        ]
    );
}

const NCI2_STARTUP: &str = "\
> 20 00 01 01
< 40 00 01 00
< 60 00 09 02 01 20 04 04 51 12 01 90
> 20 01 02 00 00
< 40 01 15 00 01 0E 02 00 01 00 02 FF FF 01 00 02 03 01 00 02 01 00 03 00
";

#[test]
fn nci_version_follows_the_input() {
    let output = ncidump(&[], NCI2_STARTUP);
    assert!(output.status.success(), "{output:?}");
    let lines = stdout_lines(&output);
    assert_eq!(lines[1], "< CORE_RESET_RSP status=STATUS_OK");
    assert_eq!(lines[3], "> CORE_INIT_CMD feature_enable=00 00");
    assert!(
        lines[4].contains("max_data_payload=255 credits=1 max_nfcv_frame=512"),
        "{}",
        lines[4]
    );

    // A lone NCI 2.0 CORE_INIT_RSP: the default NCI 1.0 layout does not fit, NCI 2.0 does.
    let lone = "< 40 01 15 00 01 0E 02 00 01 00 02 FF FF 01 00 02 03 01 00 02 01 00 03 00\n";
    let output = ncidump(&[], lone);
    assert!(stdout_lines(&output)[0].contains("max_nfcv_frame=512"));

    // Forcing NCI 1.0 makes the NCI 2.0 messages undecodable, and only those.
    let output = ncidump(&["--nci1"], NCI2_STARTUP);
    assert!(output.status.success());
    let lines = stdout_lines(&output);
    assert_eq!(
        lines[3],
        "> line 4: cannot decode CORE_INIT_CMD: trailing bytes after the end of the structure [20 01 02 00 00]"
    );
    assert!(lines[4].starts_with("< line 5: cannot decode CORE_INIT_RSP"));

    // Forcing NCI 2.0 decodes an NCI 1.0 CORE_INIT_CMD as an error.
    let output = ncidump(&["--nci2"], "> 20 01 00\n");
    assert_eq!(
        stdout_lines(&output),
        ["> line 1: cannot decode CORE_INIT_CMD: truncated [20 01 00]"]
    );
}

#[test]
fn json_lines() {
    let output = ncidump(&["--json"], PN7150_TRANSCRIPT);
    assert!(output.status.success(), "{output:?}");
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 17);
    let objects: Vec<Json> = lines.iter().map(|l| Json::parse(l)).collect();
    for object in &objects {
        for key in ["line", "mt", "name", "payload", "fields"] {
            assert!(object.get(key).is_some(), "{key} missing in {object:?}");
        }
    }
    let init = &objects[3];
    assert_eq!(init.get("mt"), Some(&Json::Str("rsp".into())));
    assert_eq!(init.get("gid"), Some(&Json::Num(0.0)));
    assert_eq!(init.get("oid"), Some(&Json::Num(1.0)));
    assert_eq!(init.get("name"), Some(&Json::Str("CORE_INIT_RSP".into())));
    let fields = init.get("fields").expect("fields");
    assert_eq!(fields.get("routing_table"), Some(&Json::Num(720.0)));
    assert_eq!(fields.get("max_ctrl_payload"), Some(&Json::Num(255.0)));
    assert_eq!(fields.get("manufacturer"), Some(&Json::Str("NXP".into())));
    let Some(Json::Arr(interfaces)) = fields.get("interfaces") else {
        panic!("{fields:?}")
    };
    assert_eq!(interfaces.len(), 8);
    assert_eq!(interfaces[2], Json::Str("ISO_DEP_RF_INTERFACE".into()));

    let data = &objects[12];
    assert_eq!(data.get("mt"), Some(&Json::Str("data".into())));
    assert_eq!(data.get("name"), Some(&Json::Str("DATA".into())));
    assert_eq!(data.get("conn_id"), Some(&Json::Num(0.0)));
    assert_eq!(
        data.get("payload"),
        Some(&Json::Str("00A4040007A0000000041010".into()))
    );
    assert_eq!(data.get("dir"), Some(&Json::Str("<".into())));

    let activated = objects[11].get("fields").expect("fields");
    let activation = activated.get("activation").expect("activation");
    assert_eq!(activation.get("fsd"), Some(&Json::Num(256.0)));
}

#[test]
fn json_errors_carry_the_reason_and_line() {
    let input = "< 40 01 19 00\n\"quoted\\\" \t\n< 61 07 01 01\n";
    let output = ncidump(&["--json"], input);
    assert!(output.status.success(), "{output:?}");
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 3);
    let first = Json::parse(&lines[0]);
    assert_eq!(first.get("line"), Some(&Json::Num(1.0)));
    assert_eq!(first.get("error"), Some(&Json::Str("truncated".into())));
    assert_eq!(first.get("name"), Some(&Json::Str("CORE_INIT_RSP".into())));
    let second = Json::parse(&lines[1]);
    assert_eq!(second.get("line"), Some(&Json::Num(2.0)));
    assert_eq!(second.get("input"), Some(&Json::Str("\"quoted\\\"".into())));
    assert!(matches!(second.get("error"), Some(Json::Str(_))));
    let third = Json::parse(&lines[2]);
    assert_eq!(
        third.get("fields").and_then(|f| f.get("field_on")),
        Some(&Json::Bool(true))
    );
}

#[test]
fn exit_status() {
    let output = Command::new(env!("CARGO_BIN_EXE_ncidump"))
        .arg("/nonexistent/ncidump-input")
        .output()
        .expect("run ncidump");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/ncidump-input"));

    let output = ncidump(&["--no-such-option"], "");
    assert_eq!(output.status.code(), Some(2));

    let output = ncidump(&["--help"], "");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("--json"));
    assert!(help.contains("EXIT STATUS"));
    assert!(help.contains("even if some lines could not be decoded"));
}

// ---------------------------------------------------------------------------------------------
// A small JSON reader, enough to check ncidump's output is well-formed and to read it back.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Json {
        let mut p = JsonParser {
            chars: text.chars().collect(),
            pos: 0,
        };
        let value = p.value();
        p.ws();
        assert_eq!(p.pos, p.chars.len(), "trailing characters in {text}");
        value
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => {
                let mut found = fields.iter().filter(|(k, _)| k == key);
                let first = found.next().map(|(_, v)| v);
                assert!(found.next().is_none(), "duplicate key {key}");
                first
            }
            _ => None,
        }
    }
}

struct JsonParser {
    chars: Vec<char>,
    pos: usize,
}

impl JsonParser {
    fn peek(&self) -> char {
        *self.chars.get(self.pos).expect("unexpected end of JSON")
    }

    fn next(&mut self) -> char {
        let c = self.peek();
        self.pos += 1;
        c
    }

    fn ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, word: &str) {
        for c in word.chars() {
            assert_eq!(self.next(), c, "in literal {word}");
        }
    }

    fn value(&mut self) -> Json {
        self.ws();
        match self.peek() {
            '{' => {
                self.next();
                let mut fields = Vec::new();
                self.ws();
                if self.peek() == '}' {
                    self.next();
                    return Json::Obj(fields);
                }
                loop {
                    self.ws();
                    let Json::Str(key) = self.value() else {
                        panic!("object key is not a string")
                    };
                    self.ws();
                    assert_eq!(self.next(), ':');
                    let value = self.value();
                    fields.push((key, value));
                    self.ws();
                    match self.next() {
                        ',' => continue,
                        '}' => return Json::Obj(fields),
                        c => panic!("unexpected {c:?} in object"),
                    }
                }
            }
            '[' => {
                self.next();
                let mut items = Vec::new();
                self.ws();
                if self.peek() == ']' {
                    self.next();
                    return Json::Arr(items);
                }
                loop {
                    items.push(self.value());
                    self.ws();
                    match self.next() {
                        ',' => continue,
                        ']' => return Json::Arr(items),
                        c => panic!("unexpected {c:?} in array"),
                    }
                }
            }
            '"' => {
                self.next();
                let mut s = String::new();
                loop {
                    match self.next() {
                        '"' => return Json::Str(s),
                        '\\' => match self.next() {
                            '"' => s.push('"'),
                            '\\' => s.push('\\'),
                            '/' => s.push('/'),
                            'n' => s.push('\n'),
                            'r' => s.push('\r'),
                            't' => s.push('\t'),
                            'b' => s.push('\u{8}'),
                            'f' => s.push('\u{c}'),
                            'u' => {
                                let hex: String = (0..4).map(|_| self.next()).collect();
                                let code = u32::from_str_radix(&hex, 16).expect("\\u escape");
                                s.push(char::from_u32(code).expect("scalar value"));
                            }
                            c => panic!("bad escape \\{c}"),
                        },
                        c if (c as u32) < 0x20 => panic!("unescaped control character"),
                        c => s.push(c),
                    }
                }
            }
            't' => {
                self.expect("true");
                Json::Bool(true)
            }
            'f' => {
                self.expect("false");
                Json::Bool(false)
            }
            'n' => {
                self.expect("null");
                Json::Null
            }
            _ => {
                let start = self.pos;
                while self.pos < self.chars.len()
                    && matches!(
                        self.chars[self.pos],
                        '-' | '+' | '.' | 'e' | 'E' | '0'..='9'
                    )
                {
                    self.pos += 1;
                }
                let number: String = self.chars[start..self.pos].iter().collect();
                Json::Num(number.parse().expect("JSON number"))
            }
        }
    }
}

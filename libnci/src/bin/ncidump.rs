//! `ncidump`: decode NCI packets written as hex, one per line, into one line of text (or one
//! JSON object) per packet. A debugging aid over `libnci::wire`; it keeps no state beyond the
//! NCI version in use and the segments of messages not yet complete.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::io::{self, Read, Write};
use std::process::ExitCode;

use libnci::wire::core::{CoreResetNtf, CoreResetRsp};
use libnci::wire::message::TextFields;
use libnci::wire::{
    FieldVisitor, HeaderRepr, HexBytes, Message, MessageType, NciVersion, Packet, PacketId, Value,
};

const HELP: &str = "\
ncidump - decode NFC Controller Interface (NCI) packets

USAGE:
    ncidump [OPTIONS] [FILE]

Reads NCI packets written as hex, one packet per line, from FILE (or standard input when
FILE is absent or '-'), and prints one decoded line per packet.

INPUT:
    Each line holds one whole packet: header and payload, e.g. `40 01 19 00 03 1E ...`.
    Hex digits may be separated by spaces, colons or commas, and may carry a 0x prefix.
    A leading '>' marks a packet from host to controller, '<' one from controller to host;
    without it the direction of control packets follows from the message type.
    Blank lines and everything after '#' are ignored.
    Packets with the packet boundary flag set are shown as segments; the message is decoded
    when its last segment arrives.

OPTIONS:
    --json      print one JSON object per packet (keys: line, dir, mt, gid, oid or conn_id and
                credits, name, payload, fields; segments add segment/more or segments; lines
                that cannot be decoded give an object with error and line)
    --nci1      decode with NCI 1.0 layouts only
    --nci2      decode with NCI 2.0 layouts only
    -h, --help  print this help

    By default the NCI version starts as 1.0 and follows what the input shows: the version
    field of CORE_RESET_RSP (NCI 1.0 layout) or CORE_RESET_NTF (NCI 2.0 layout), an NCI 2.0
    CORE_RESET_RSP, or a CORE_INIT_CMD/CORE_INIT_RSP that only decodes in the other version.

EXIT STATUS:
    0  the input was read to the end, even if some lines could not be decoded (those lines
       are reported in the output and the run goes on)
    1  an I/O error (FILE cannot be opened or read, output cannot be written)
    2  invalid command line
";

struct Options {
    json: bool,
    version: Option<NciVersion>,
    input: Option<String>,
}

enum Command {
    Run(Options),
    Help,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        json: false,
        version: None,
        input: None,
    };
    for arg in args {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--json" => options.json = true,
            "--nci1" => options.version = Some(NciVersion::V1_0),
            "--nci2" => options.version = Some(NciVersion::V2_0),
            s if s.starts_with('-') && s != "-" => return Err(format!("unknown option '{s}'")),
            _ if options.input.is_some() => return Err("more than one input file".into()),
            _ => options.input = Some(arg),
        }
    }
    Ok(Command::Run(options))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    HostToController,
    ControllerToHost,
    Unknown,
}

impl Direction {
    fn arrow(self) -> &'static str {
        match self {
            Direction::HostToController => ">",
            Direction::ControllerToHost => "<",
            Direction::Unknown => "?",
        }
    }

    /// Commands go to the controller, responses and notifications come from it.
    fn infer(self, mt: MessageType) -> Direction {
        match (self, mt) {
            (Direction::Unknown, MessageType::Command) => Direction::HostToController,
            (Direction::Unknown, MessageType::Response | MessageType::Notification) => {
                Direction::ControllerToHost
            }
            (dir, _) => dir,
        }
    }
}

/// The direction mark at the start of a line, if any.
fn direction_mark(text: &str) -> Direction {
    match text.trim_start().chars().next() {
        Some('>') => Direction::HostToController,
        Some('<') => Direction::ControllerToHost,
        _ => Direction::Unknown,
    }
}

/// One input line: `Ok(None)` for a line without a packet.
fn parse_line(text: &str) -> Result<Option<(Direction, Vec<u8>)>, String> {
    let text = text.split('#').next().unwrap_or("").trim();
    let dir = direction_mark(text);
    let hex = match dir {
        Direction::Unknown => text,
        _ => text.get(1..).unwrap_or(""),
    };
    let mut digits = Vec::new();
    for token in hex.split(|c: char| c.is_whitespace() || c == ':' || c == ',') {
        let token = token
            .strip_prefix("0x")
            .or_else(|| token.strip_prefix("0X"))
            .unwrap_or(token);
        for c in token.chars() {
            let digit = c
                .to_digit(16)
                .ok_or_else(|| format!("'{c}' is not a hex digit"))?;
            digits.push(digit as u8);
        }
    }
    if digits.is_empty() {
        return if dir == Direction::Unknown {
            Ok(None)
        } else {
            Err("no packet after the direction mark".into())
        };
    }
    if digits.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    let bytes = digits
        .chunks_exact(2)
        .map(|pair| pair.iter().fold(0u8, |acc, digit| (acc << 4) | digit))
        .collect();
    Ok(Some((dir, bytes)))
}

fn mt_label(mt: MessageType) -> &'static str {
    match mt {
        MessageType::Command => "cmd",
        MessageType::Response => "rsp",
        MessageType::Notification => "ntf",
        MessageType::Data => "data",
        MessageType::Unknown(_) => "rfu",
    }
}

// ---------------------------------------------------------------------------------------------
// JSON, written by hand
// ---------------------------------------------------------------------------------------------

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7F}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_json_hex(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out.push('"');
}

/// One JSON object being written, and a [`FieldVisitor`] writing decoded fields into it.
struct JsonObject {
    out: String,
    need_comma: bool,
}

impl JsonObject {
    fn new() -> JsonObject {
        JsonObject {
            out: String::from("{"),
            need_comma: false,
        }
    }

    fn key(&mut self, key: &str) {
        if self.need_comma {
            self.out.push(',');
        }
        push_json_str(&mut self.out, key);
        self.out.push(':');
        self.need_comma = true;
    }

    fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_str(&mut self.out, value);
    }

    fn num(&mut self, key: &str, value: u64) {
        self.key(key);
        let _ = write!(self.out, "{value}");
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
    }

    fn hex(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        push_json_hex(&mut self.out, value);
    }

    fn sep(&mut self) {
        if self.need_comma {
            self.out.push(',');
        }
    }

    fn value(&mut self, value: Value<'_>) {
        match value {
            Value::Num(n) => {
                let _ = write!(self.out, "{n}");
            }
            Value::Hex(bytes) => push_json_hex(&mut self.out, bytes),
            Value::Name(name) => push_json_str(&mut self.out, &name.to_string()),
            Value::Flag(b) => self.out.push_str(if b { "true" } else { "false" }),
        }
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

impl FieldVisitor for JsonObject {
    fn field(&mut self, key: &str, value: Value<'_>) -> fmt::Result {
        self.key(key);
        self.value(value);
        Ok(())
    }

    fn list_begin(&mut self, key: &str) -> fmt::Result {
        self.key(key);
        self.out.push('[');
        self.need_comma = false;
        Ok(())
    }

    fn list_end(&mut self) -> fmt::Result {
        self.out.push(']');
        self.need_comma = true;
        Ok(())
    }

    fn item(&mut self, value: Value<'_>) -> fmt::Result {
        self.sep();
        self.value(value);
        self.need_comma = true;
        Ok(())
    }

    fn item_record_begin(&mut self) -> fmt::Result {
        self.sep();
        self.out.push('{');
        self.need_comma = false;
        Ok(())
    }

    fn record_begin(&mut self, key: &str) -> fmt::Result {
        self.key(key);
        self.out.push('{');
        self.need_comma = false;
        Ok(())
    }

    fn record_end(&mut self) -> fmt::Result {
        self.out.push('}');
        self.need_comma = true;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// The header identity of a packet, with the data credits left out so that segments of one
/// data message match whatever credits they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SegmentKey {
    dir: Direction,
    mt: u8,
    low: u8,
    oid: u8,
}

impl SegmentKey {
    fn new(dir: Direction, mt: MessageType, id: PacketId) -> SegmentKey {
        let (low, oid) = match id {
            PacketId::Control { gid, oid } => (u8::from(gid), oid),
            PacketId::Data { conn_id, .. } => (conn_id, 0),
        };
        SegmentKey {
            dir,
            mt: u8::from(mt),
            low,
            oid,
        }
    }
}

struct Pending {
    first_line: usize,
    payload: Vec<u8>,
    segments: usize,
}

struct Decoder {
    json: bool,
    forced: Option<NciVersion>,
    version: NciVersion,
    pending: HashMap<SegmentKey, Pending>,
}

/// What could not be decoded: the packet (or reassembled payload), or the text of a line that
/// is not hex at all.
enum Input<'a> {
    Bytes(&'a [u8]),
    Text(&'a str),
}

/// What went wrong with one input line.
struct LineError<'a> {
    number: usize,
    dir: Direction,
    header: Option<HeaderRepr>,
    reason: String,
    input: Input<'a>,
}

impl Decoder {
    fn new(forced: Option<NciVersion>, json: bool) -> Decoder {
        Decoder {
            json,
            forced,
            version: forced.unwrap_or(NciVersion::V1_0),
            pending: HashMap::new(),
        }
    }

    /// Decode one input line into one output line (`None` for lines without a packet).
    fn line(&mut self, number: usize, text: &str) -> Option<String> {
        match parse_line(text) {
            Ok(None) => None,
            Ok(Some((dir, bytes))) => Some(self.packet(number, dir, &bytes)),
            Err(reason) => Some(self.error(&LineError {
                number,
                dir: direction_mark(text),
                header: None,
                reason,
                input: Input::Text(text.trim()),
            })),
        }
    }

    fn packet(&mut self, number: usize, dir: Direction, bytes: &[u8]) -> String {
        let header = HeaderRepr::parse_prefix(bytes).ok();
        let dir = header.map_or(dir, |h| dir.infer(h.mt));
        let checked = Packet::new_checked(bytes).and_then(|p| Ok((HeaderRepr::parse(&p)?, p)));
        let (header, packet) = match checked {
            Ok(ok) => ok,
            Err(e) => {
                return self.error(&LineError {
                    number,
                    dir,
                    header,
                    reason: e.to_string(),
                    input: Input::Bytes(bytes),
                })
            }
        };
        let payload = packet.payload();
        let key = SegmentKey::new(dir, header.mt, header.id);
        if header.pbf {
            let pending = self.pending.entry(key).or_insert(Pending {
                first_line: number,
                payload: Vec::new(),
                segments: 0,
            });
            pending.payload.extend_from_slice(payload);
            pending.segments += 1;
            let segment = pending.segments;
            return self.segment(number, dir, &header, segment, payload);
        }
        match self.pending.remove(&key) {
            Some(mut pending) => {
                pending.payload.extend_from_slice(payload);
                let segments = Some(pending.segments + 1);
                let whole = &pending.payload;
                self.message(number, dir, &header, whole, segments, whole)
            }
            None => self.message(number, dir, &header, payload, None, bytes),
        }
    }

    fn parse<'p>(&mut self, header: &HeaderRepr, payload: &'p [u8]) -> Result<Message<'p>, String> {
        let parsed = Message::parse(header.mt, header.id, payload, self.version);
        let msg = match (parsed, self.forced) {
            (Ok(msg), _) => msg,
            (Err(e), Some(_)) => return Err(e.to_string()),
            (Err(e), None) => {
                // Only CORE_INIT and NFCEE_DISCOVER differ between versions; if the other
                // version's layout fits, the input is in that version.
                let other = if self.version.is_v2() {
                    NciVersion::V1_0
                } else {
                    NciVersion::V2_0
                };
                match Message::parse(header.mt, header.id, payload, other) {
                    Ok(msg) => {
                        self.version = other;
                        msg
                    }
                    Err(_) => return Err(e.to_string()),
                }
            }
        };
        if self.forced.is_none() {
            match msg {
                Message::CoreResetRsp(CoreResetRsp::Nci1 { nci_version, .. })
                | Message::CoreResetNtf(CoreResetNtf::Nci2 { nci_version, .. }) => {
                    self.version = nci_version
                }
                Message::CoreResetRsp(CoreResetRsp::Nci2 { .. }) => self.version = NciVersion::V2_0,
                _ => {}
            }
        }
        Ok(msg)
    }

    fn message(
        &mut self,
        number: usize,
        dir: Direction,
        header: &HeaderRepr,
        payload: &[u8],
        segments: Option<usize>,
        input: &[u8],
    ) -> String {
        let msg = match self.parse(header, payload) {
            Ok(msg) => msg,
            Err(reason) => {
                return self.error(&LineError {
                    number,
                    dir,
                    header: Some(*header),
                    reason,
                    input: Input::Bytes(input),
                })
            }
        };
        if self.json {
            let mut obj = JsonObject::new();
            obj.num("line", number as u64);
            put_header(&mut obj, dir, header.mt, header.id);
            obj.str("name", msg.name());
            if let Some(segments) = segments {
                obj.num("segments", segments as u64);
            }
            obj.hex("payload", payload);
            // Writing into a String cannot fail.
            let _ = obj
                .record_begin("fields")
                .and_then(|()| msg.visit(&mut obj))
                .and_then(|()| obj.record_end());
            obj.finish()
        } else {
            format!(
                "{} {}",
                dir.arrow(),
                MessageLine {
                    msg: &msg,
                    segments
                }
            )
        }
    }

    fn segment(
        &self,
        number: usize,
        dir: Direction,
        header: &HeaderRepr,
        segment: usize,
        payload: &[u8],
    ) -> String {
        let name = Message::name_for(header.mt, header.id).unwrap_or("UNKNOWN");
        if self.json {
            let mut obj = JsonObject::new();
            obj.num("line", number as u64);
            put_header(&mut obj, dir, header.mt, header.id);
            obj.str("name", name);
            obj.num("segment", segment as u64);
            obj.bool("more", true);
            obj.hex("payload", payload);
            obj.finish()
        } else {
            format!(
                "{} {name} segment={segment} more=true len={} payload={}",
                dir.arrow(),
                payload.len(),
                HexBytes(payload)
            )
        }
    }

    fn error(&self, e: &LineError<'_>) -> String {
        let name = e.header.and_then(|h| Message::name_for(h.mt, h.id));
        if self.json {
            let mut obj = JsonObject::new();
            obj.num("line", e.number as u64);
            if let Some(h) = e.header {
                put_header(&mut obj, e.dir, h.mt, h.id);
                if let Some(name) = name {
                    obj.str("name", name);
                }
            }
            obj.str("error", &e.reason);
            match e.input {
                Input::Bytes(bytes) => obj.hex("input", bytes),
                Input::Text(text) => obj.str("input", text),
            }
            obj.finish()
        } else {
            let what = name.map(|n| format!(" {n}")).unwrap_or_default();
            let input = match e.input {
                Input::Bytes(bytes) => HexBytes(bytes).to_string(),
                Input::Text(text) => text.to_string(),
            };
            format!(
                "{} line {}: cannot decode{what}: {} [{input}]",
                e.dir.arrow(),
                e.number,
                e.reason,
            )
        }
    }

    /// Messages whose last segment never came, in input order.
    fn unfinished(&self) -> Vec<(SegmentKey, &Pending)> {
        let mut unfinished: Vec<_> = self.pending.iter().map(|(k, p)| (*k, p)).collect();
        unfinished.sort_by_key(|(_, p)| p.first_line);
        unfinished
    }
}

fn put_header(obj: &mut JsonObject, dir: Direction, mt: MessageType, id: PacketId) {
    if dir != Direction::Unknown {
        obj.str("dir", dir.arrow());
    }
    obj.str("mt", mt_label(mt));
    match id {
        PacketId::Control { gid, oid } => {
            obj.num("gid", u64::from(u8::from(gid)));
            obj.num("oid", u64::from(oid));
        }
        PacketId::Data { conn_id, credits } => {
            obj.num("conn_id", u64::from(conn_id));
            obj.num("credits", u64::from(credits));
        }
    }
}

/// The text line of a decoded message: name, segment count when reassembled, fields.
struct MessageLine<'m> {
    msg: &'m Message<'m>,
    segments: Option<usize>,
}

impl fmt::Display for MessageLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.msg.name())?;
        if let Some(n) = self.segments {
            write!(f, " segments={n}")?;
        }
        self.msg.visit(&mut TextFields::new(f, true))
    }
}

fn read_input(path: Option<&str>) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    match path {
        None | Some("-") => {
            io::stdin().lock().read_to_end(&mut data)?;
        }
        Some(path) => {
            std::fs::File::open(path)?.read_to_end(&mut data)?;
        }
    }
    Ok(data)
}

fn run(options: &Options) -> io::Result<()> {
    let data = read_input(options.input.as_deref()).map_err(|e| {
        let what = options.input.as_deref().unwrap_or("standard input");
        io::Error::new(e.kind(), format!("{what}: {e}"))
    })?;
    let text = String::from_utf8_lossy(&data);
    let mut decoder = Decoder::new(options.version, options.json);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for (index, line) in text.lines().enumerate() {
        if let Some(decoded) = decoder.line(index + 1, line) {
            writeln!(out, "{decoded}")?;
        }
    }
    for (key, pending) in decoder.unfinished() {
        let reason = format!(
            "input ended after {} segment(s) of a message ({} octets), last segment missing",
            pending.segments,
            pending.payload.len()
        );
        if options.json {
            let mut obj = JsonObject::new();
            obj.num("line", pending.first_line as u64);
            if key.dir != Direction::Unknown {
                obj.str("dir", key.dir.arrow());
            }
            obj.str("error", &reason);
            obj.hex("input", &pending.payload);
            writeln!(out, "{}", obj.finish())?;
        } else {
            writeln!(
                out,
                "{} line {}: {reason}",
                key.dir.arrow(),
                pending.first_line
            )?;
        }
    }
    out.flush()
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ncidump: {e}\n(see ncidump --help)");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ncidump: {e}");
            ExitCode::FAILURE
        }
    }
}

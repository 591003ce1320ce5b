//! Comparing introspection XML: what the daemon serves against the shipped `dbus/*.xml`.
//!
//! Reads the subset of XML that D-Bus introspection data uses (D-Bus specification,
//! "Introspection Data Format": elements, attributes, comments, a DOCTYPE) into an
//! [`InterfaceDesc`] per interface, normalised: methods, signals and properties by name; method
//! arguments as the ordered in- and out-lists with names and types; signal arguments as one
//! ordered list; properties with type, access and their `EmitsChangedSignal` value (default
//! `true`, or the interface's own annotation). Documentation, comments, child nodes and other
//! annotations are ignored. Not a general XML parser.

use std::collections::BTreeMap;
use std::fmt;

const EMITS_CHANGED: &str = "org.freedesktop.DBus.Property.EmitsChangedSignal";

/// A method or signal argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// Argument name (optional in introspection data).
    pub name: Option<String>,
    /// D-Bus type signature.
    pub ty: String,
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.ty,
            self.name.as_deref().unwrap_or("(unnamed)")
        )
    }
}

/// A method: in-arguments and out-arguments, each in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Method {
    /// Arguments with `direction="in"` (the default).
    pub inputs: Vec<Arg>,
    /// Arguments with `direction="out"`.
    pub outputs: Vec<Arg>,
}

/// A property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// D-Bus type signature.
    pub ty: String,
    /// `read`, `write` or `readwrite`.
    pub access: String,
    /// `true`, `invalidates`, `const` or `false`.
    pub emits_changed: String,
}

/// One interface, normalised for comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceDesc {
    /// Interface name.
    pub name: String,
    /// Methods by name.
    pub methods: BTreeMap<String, Method>,
    /// Signals by name.
    pub signals: BTreeMap<String, Vec<Arg>>,
    /// Properties by name.
    pub properties: BTreeMap<String, Property>,
}

/// Why introspection data could not be read or does not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntrospectError {
    /// Not well-formed introspection XML; the string says where.
    Xml(String),
    /// The named interface is not in the data.
    MissingInterface(String),
    /// The interfaces differ; one line per difference.
    Mismatch(Vec<String>),
}

impl fmt::Display for IntrospectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntrospectError::Xml(e) => write!(f, "introspection XML: {e}"),
            IntrospectError::MissingInterface(i) => write!(f, "interface {i} is not there"),
            IntrospectError::Mismatch(lines) => {
                write!(f, "interfaces differ: {}", lines.join("; "))
            }
        }
    }
}

impl std::error::Error for IntrospectError {}

enum Event<'a> {
    Start {
        name: &'a str,
        attrs: Vec<(&'a str, String)>,
        empty: bool,
    },
    End(&'a str),
}

fn xml_err(pos: usize, what: &str) -> IntrospectError {
    IntrospectError::Xml(format!("{what} at byte {pos}"))
}

fn unescape(v: &str) -> String {
    v.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Split `xml` into start and end tags; text, comments, processing instructions and
/// declarations are skipped.
fn events(xml: &str) -> Result<Vec<Event<'_>>, IntrospectError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(off) = xml.get(pos..).and_then(|r| r.find('<')) {
        let start = pos + off;
        let rest = xml.get(start..).unwrap_or_default();
        let skip_to = |end: &str| {
            rest.find(end)
                .map(|i| start + i + end.len())
                .ok_or_else(|| xml_err(start, &format!("no closing {end:?}")))
        };
        if rest.starts_with("<!--") {
            pos = skip_to("-->")?;
        } else if rest.starts_with("<?") {
            pos = skip_to("?>")?;
        } else if rest.starts_with("<!") {
            pos = skip_to(">")?;
        } else if let Some(end_tag) = rest.strip_prefix("</") {
            let close = end_tag
                .find('>')
                .ok_or_else(|| xml_err(start, "unterminated end tag"))?;
            let name = end_tag.get(..close).unwrap_or_default().trim();
            out.push(Event::End(name));
            pos = start + 2 + close + 1;
        } else {
            let (event, len) = start_tag(rest).map_err(|what| xml_err(start, what))?;
            out.push(event);
            pos = start + len;
        }
    }
    Ok(out)
}

/// Parse `<name a="v" ...>` or `<name .../>` at the start of `s`; returns the event and its
/// length in bytes.
fn start_tag(s: &str) -> Result<(Event<'_>, usize), &'static str> {
    let bytes = s.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let is_space = |i: usize| at(i).is_some_and(|b| b.is_ascii_whitespace());
    let mut i = 1;
    let name_start = i;
    while at(i).is_some_and(|b| !b.is_ascii_whitespace() && b != b'>' && b != b'/') {
        i += 1;
    }
    let name = s.get(name_start..i).ok_or("bad element name")?;
    if name.is_empty() {
        return Err("empty element name");
    }
    let mut attrs = Vec::new();
    loop {
        while is_space(i) {
            i += 1;
        }
        match bytes.get(i) {
            None => return Err("unterminated start tag"),
            Some(b'>') => {
                return Ok((
                    Event::Start {
                        name,
                        attrs,
                        empty: false,
                    },
                    i + 1,
                ))
            }
            Some(b'/') => {
                if bytes.get(i + 1) != Some(&b'>') {
                    return Err("'/' not followed by '>'");
                }
                return Ok((
                    Event::Start {
                        name,
                        attrs,
                        empty: true,
                    },
                    i + 2,
                ));
            }
            Some(_) => {
                let attr_start = i;
                while at(i).is_some_and(|b| b != b'=' && !b.is_ascii_whitespace() && b != b'>') {
                    i += 1;
                }
                let attr = s.get(attr_start..i).ok_or("bad attribute name")?;
                while is_space(i) {
                    i += 1;
                }
                if bytes.get(i) != Some(&b'=') {
                    return Err("attribute without value");
                }
                i += 1;
                while is_space(i) {
                    i += 1;
                }
                let quote = match bytes.get(i) {
                    Some(q @ (b'"' | b'\'')) => *q,
                    _ => return Err("unquoted attribute value"),
                };
                i += 1;
                let value_start = i;
                while at(i).is_some_and(|b| b != quote) {
                    i += 1;
                }
                if at(i).is_none() {
                    return Err("unterminated attribute value");
                }
                let value = s.get(value_start..i).ok_or("bad attribute value")?;
                attrs.push((attr, unescape(value)));
                i += 1;
            }
        }
    }
}

fn attr<'a>(attrs: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

enum Member {
    None,
    Method(String),
    Signal(String),
    Property(String),
}

/// Every interface in introspection data `xml`.
pub fn parse_interfaces(xml: &str) -> Result<Vec<InterfaceDesc>, IntrospectError> {
    let mut interfaces = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    let mut iface: Option<InterfaceDesc> = None;
    // Properties whose EmitsChangedSignal was set on the property itself.
    let mut explicit_emits: Vec<String> = Vec::new();
    let mut iface_emits: Option<String> = None;
    let mut member = Member::None;

    for event in events(xml)? {
        match event {
            Event::End(name) => {
                match open.pop() {
                    Some(o) if o == name => {}
                    _ => return Err(IntrospectError::Xml(format!("unexpected </{name}>"))),
                }
                match name {
                    "interface" => {
                        if let Some(mut done) = iface.take() {
                            let default = iface_emits.take().unwrap_or_else(|| "true".to_owned());
                            for (pname, p) in done.properties.iter_mut() {
                                if !explicit_emits.contains(pname) {
                                    p.emits_changed = default.clone();
                                }
                            }
                            explicit_emits.clear();
                            interfaces.push(done);
                        }
                    }
                    "method" | "signal" | "property" => member = Member::None,
                    _ => {}
                }
            }
            Event::Start { name, attrs, empty } => {
                let in_iface = iface.is_some();
                match (name, in_iface, &member, iface.as_mut()) {
                    ("interface", false, _, _) => {
                        let iname = attr(&attrs, "name")
                            .ok_or_else(|| IntrospectError::Xml("interface without name".into()))?;
                        iface = Some(InterfaceDesc {
                            name: iname.to_owned(),
                            ..InterfaceDesc::default()
                        });
                    }
                    ("method" | "signal" | "property", true, Member::None, Some(i)) => {
                        let mname = attr(&attrs, "name")
                            .ok_or_else(|| IntrospectError::Xml(format!("{name} without name")))?
                            .to_owned();
                        match name {
                            "method" => {
                                i.methods.insert(mname.clone(), Method::default());
                                member = Member::Method(mname);
                            }
                            "signal" => {
                                i.signals.insert(mname.clone(), Vec::new());
                                member = Member::Signal(mname);
                            }
                            _ => {
                                let ty = attr(&attrs, "type").ok_or_else(|| {
                                    IntrospectError::Xml(format!("property {mname} without type"))
                                })?;
                                let access = attr(&attrs, "access").ok_or_else(|| {
                                    IntrospectError::Xml(format!("property {mname} without access"))
                                })?;
                                i.properties.insert(
                                    mname.clone(),
                                    Property {
                                        ty: ty.to_owned(),
                                        access: access.to_owned(),
                                        emits_changed: String::new(),
                                    },
                                );
                                member = Member::Property(mname);
                            }
                        }
                    }
                    ("arg", true, Member::Method(m) | Member::Signal(m), Some(i)) => {
                        let ty = attr(&attrs, "type").ok_or_else(|| {
                            IntrospectError::Xml(format!("arg of {m} without type"))
                        })?;
                        let arg = Arg {
                            name: attr(&attrs, "name").map(str::to_owned),
                            ty: ty.to_owned(),
                        };
                        if let Member::Method(m) = &member {
                            let out = attr(&attrs, "direction") == Some("out");
                            if let Some(method) = i.methods.get_mut(m) {
                                if out {
                                    method.outputs.push(arg);
                                } else {
                                    method.inputs.push(arg);
                                }
                            }
                        } else if let Some(args) = i.signals.get_mut(m) {
                            args.push(arg);
                        }
                    }
                    ("annotation", true, _, Some(i))
                        if attr(&attrs, "name") == Some(EMITS_CHANGED) =>
                    {
                        let value = attr(&attrs, "value").unwrap_or("true").to_owned();
                        match &member {
                            Member::Property(p) => {
                                if let Some(prop) = i.properties.get_mut(p) {
                                    prop.emits_changed = value;
                                    explicit_emits.push(p.clone());
                                }
                            }
                            Member::None => iface_emits = Some(value),
                            _ => {}
                        }
                    }
                    _ => {}
                }
                if !empty {
                    open.push(name);
                } else if matches!(name, "method" | "signal" | "property") {
                    member = Member::None;
                } else if name == "interface" {
                    // `<interface name="x"/>`: an interface with nothing in it.
                    if let Some(done) = iface.take() {
                        interfaces.push(done);
                    }
                }
            }
        }
    }
    if let Some(o) = open.pop() {
        return Err(IntrospectError::Xml(format!("<{o}> is not closed")));
    }
    Ok(interfaces)
}

/// The interface `name` of introspection data `xml`.
pub fn find_interface(xml: &str, name: &str) -> Result<InterfaceDesc, IntrospectError> {
    parse_interfaces(xml)?
        .into_iter()
        .find(|i| i.name == name)
        .ok_or_else(|| IntrospectError::MissingInterface(name.to_owned()))
}

fn args_line(args: &[Arg]) -> String {
    let parts: Vec<String> = args.iter().map(Arg::to_string).collect();
    format!("({})", parts.join(", "))
}

/// Every difference between interface `served` and interface `shipped`, one line each.
pub fn differences(served: &InterfaceDesc, shipped: &InterfaceDesc) -> Vec<String> {
    let mut out = Vec::new();
    if served.name != shipped.name {
        out.push(format!(
            "interface is {} but {} is shipped",
            served.name, shipped.name
        ));
    }
    for (name, m) in &shipped.methods {
        match served.methods.get(name) {
            None => out.push(format!("method {name} is shipped but not served")),
            Some(s) => {
                if s.inputs != m.inputs {
                    out.push(format!(
                        "method {name} takes {} but {} is shipped",
                        args_line(&s.inputs),
                        args_line(&m.inputs)
                    ));
                }
                if s.outputs != m.outputs {
                    out.push(format!(
                        "method {name} returns {} but {} is shipped",
                        args_line(&s.outputs),
                        args_line(&m.outputs)
                    ));
                }
            }
        }
    }
    for name in served.methods.keys() {
        if !shipped.methods.contains_key(name) {
            out.push(format!("method {name} is served but not shipped"));
        }
    }
    for (name, args) in &shipped.signals {
        match served.signals.get(name) {
            None => out.push(format!("signal {name} is shipped but not served")),
            Some(s) if s != args => out.push(format!(
                "signal {name} carries {} but {} is shipped",
                args_line(s),
                args_line(args)
            )),
            Some(_) => {}
        }
    }
    for name in served.signals.keys() {
        if !shipped.signals.contains_key(name) {
            out.push(format!("signal {name} is served but not shipped"));
        }
    }
    for (name, p) in &shipped.properties {
        match served.properties.get(name) {
            None => out.push(format!("property {name} is shipped but not served")),
            Some(s) => {
                if s.ty != p.ty {
                    out.push(format!(
                        "property {name} is {} but {} is shipped",
                        s.ty, p.ty
                    ));
                }
                if s.access != p.access {
                    out.push(format!(
                        "property {name} is {} but {} is shipped",
                        s.access, p.access
                    ));
                }
                if s.emits_changed != p.emits_changed {
                    out.push(format!(
                        "property {name} emits-changed is {} but {} is shipped",
                        s.emits_changed, p.emits_changed
                    ));
                }
            }
        }
    }
    for name in served.properties.keys() {
        if !shipped.properties.contains_key(name) {
            out.push(format!("property {name} is served but not shipped"));
        }
    }
    out
}

/// Check that interface `name` in `served_xml` matches the one in `shipped_xml`.
pub fn compare_xml(served_xml: &str, shipped_xml: &str, name: &str) -> Result<(), IntrospectError> {
    let served = find_interface(served_xml, name)?;
    let shipped = find_interface(shipped_xml, name)?;
    let diff = differences(&served, &shipped);
    if diff.is_empty() {
        Ok(())
    } else {
        Err(IntrospectError::Mismatch(diff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = r#"<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<!-- a comment with <tags> inside -->
<node>
  <interface name="org.example.Thing1">
    <method name="Do">
      <arg name="what" type="s" direction="in"/>
      <arg name="how" type="a{sv}"/>
      <arg name="result" type="ay" direction="out"/>
    </method>
    <method name="Ping"/>
    <signal name="Done">
      <arg name="what" type="s"/>
    </signal>
    <property name="Level" type="u" access="readwrite"/>
    <property name="Model" type="s" access="read">
      <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="const"/>
    </property>
  </interface>
</node>
"#;

    /// The same interface in the shape zbus serves it: other attribute order and quoting,
    /// direction on in-args, doc comments, standard interfaces, a child node.
    const SERVED: &str = r#"<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<node>
  <interface name="org.freedesktop.DBus.Peer">
    <method name="Ping">
    </method>
  </interface>
  <interface name='org.example.Thing1'>
    <!--
     Do it.
     -->
    <method name="Do">
      <arg type="s" name="what" direction="in"/>
      <arg name="how" type="a{sv}" direction="in"/>
      <arg name="result" type="ay" direction="out"/>
    </method>
    <method name="Ping">
    </method>
    <signal name="Done">
      <arg name="what" type="s"/>
    </signal>
    <property name="Level" type="u" access="readwrite"/>
    <property name="Model" type="s" access="read">
      <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="const"/>
    </property>
  </interface>
  <node name="child"/>
</node>
"#;

    fn served_with(from: &str, to: &str) -> String {
        assert!(SERVED.contains(from), "{from}");
        SERVED.replacen(from, to, 1)
    }

    fn mismatch(served: &str) -> Vec<String> {
        match compare_xml(served, SHIPPED, "org.example.Thing1") {
            Err(IntrospectError::Mismatch(lines)) => lines,
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_shipped_shape() {
        let i = find_interface(SHIPPED, "org.example.Thing1").expect("parse");
        let m = &i.methods["Do"];
        assert_eq!(m.inputs.len(), 2);
        assert_eq!(m.inputs[1].ty, "a{sv}");
        assert_eq!(m.outputs[0].name.as_deref(), Some("result"));
        assert!(i.methods["Ping"].inputs.is_empty());
        assert_eq!(i.signals["Done"][0].ty, "s");
        assert_eq!(i.properties["Level"].emits_changed, "true");
        assert_eq!(i.properties["Model"].emits_changed, "const");
    }

    #[test]
    fn equivalent_documents_match() {
        assert_eq!(compare_xml(SERVED, SHIPPED, "org.example.Thing1"), Ok(()));
    }

    #[test]
    fn missing_and_extra_members() {
        let served = served_with(
            "<method name=\"Ping\">\n    </method>\n    <signal",
            "<method name=\"Pong\"/>\n    <signal",
        );
        assert_eq!(
            mismatch(&served),
            vec![
                "method Ping is shipped but not served",
                "method Pong is served but not shipped"
            ]
        );
    }

    #[test]
    fn argument_name_type_and_direction() {
        let served = served_with(
            "<arg type=\"s\" name=\"what\"",
            "<arg type=\"s\" name=\"which\"",
        );
        assert_eq!(
            mismatch(&served),
            vec!["method Do takes (s which, a{sv} how) but (s what, a{sv} how) is shipped"]
        );
        let served = served_with(
            "name=\"result\" type=\"ay\" direction=\"out\"",
            "name=\"result\" type=\"ay\" direction=\"in\"",
        );
        assert_eq!(mismatch(&served).len(), 2);
        let served = served_with(
            "<arg name=\"what\" type=\"s\"/>\n    </signal>",
            "<arg name=\"what\" type=\"as\"/>\n    </signal>",
        );
        assert_eq!(
            mismatch(&served),
            vec!["signal Done carries (as what) but (s what) is shipped"]
        );
    }

    #[test]
    fn property_type_access_and_emission() {
        let served = served_with(
            "\"Level\" type=\"u\" access=\"readwrite\"",
            "\"Level\" type=\"i\" access=\"read\"",
        );
        assert_eq!(
            mismatch(&served),
            vec![
                "property Level is i but u is shipped",
                "property Level is read but readwrite is shipped"
            ]
        );
        let served = served_with("value=\"const\"", "value=\"false\"");
        assert_eq!(
            mismatch(&served),
            vec!["property Model emits-changed is false but const is shipped"]
        );
    }

    #[test]
    fn interface_level_emission_default() {
        let xml = r#"<node><interface name="a.B">
            <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="invalidates"/>
            <property name="X" type="b" access="read"/>
            <property name="Y" type="b" access="read">
              <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="true"/>
            </property>
        </interface></node>"#;
        let i = find_interface(xml, "a.B").expect("parse");
        assert_eq!(i.properties["X"].emits_changed, "invalidates");
        assert_eq!(i.properties["Y"].emits_changed, "true");
    }

    #[test]
    fn malformed_documents() {
        assert!(matches!(
            parse_interfaces("<node><interface name=\"a.B\"></node>"),
            Err(IntrospectError::Xml(_))
        ));
        assert!(matches!(
            parse_interfaces("<node><interface name=a.B/></node>"),
            Err(IntrospectError::Xml(_))
        ));
        assert!(matches!(
            parse_interfaces("<node><!-- unterminated"),
            Err(IntrospectError::Xml(_))
        ));
        assert!(matches!(
            parse_interfaces("<node>"),
            Err(IntrospectError::Xml(_))
        ));
        assert_eq!(
            find_interface("<node/>", "a.B"),
            Err(IntrospectError::MissingInterface("a.B".into()))
        );
    }

    #[test]
    fn shipped_files_parse() {
        for (xml, name, methods, signals, properties) in [
            (super::super::MANAGER1_XML, "org.nfcd.Manager1", 6, 1, 3),
            (super::super::ADAPTER1_XML, "org.nfcd.Adapter1", 0, 2, 9),
            (
                super::super::HOSTSERVICE1_XML,
                "org.nfcd.HostService1",
                2,
                0,
                0,
            ),
        ] {
            let i = find_interface(xml, name).expect(name);
            assert_eq!(
                (i.methods.len(), i.signals.len(), i.properties.len()),
                (methods, signals, properties),
                "{name}"
            );
        }
    }
}

//! Generates the zero-copy views of `schema/spot_3_5.xml` into `$OUT_DIR/spot.rs`.
//!
//! One pass over the schema builds a small model (types, then messages with their fields, groups
//! and data, offsets computed in order); a second writes Rust from it. The generated code calls
//! only `crate::codec`, which holds every bounds check.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

const SCHEMA: &str = "schema/spot_3_5.xml";

/// A primitive as it appears in the frame.
#[derive(Clone, Copy)]
struct Prim {
    rust: &'static str,
    size: usize,
    /// The schema's default null value for an optional field of this type, as a Rust expression.
    null: &'static str,
}

fn prim(name: &str) -> Option<Prim> {
    let (rust, size, null) = match name {
        "char" | "uint8" => ("u8", 1, "u8::MAX"),
        "int8" => ("i8", 1, "i8::MIN"),
        "uint16" => ("u16", 2, "u16::MAX"),
        "int16" => ("i16", 2, "i16::MIN"),
        "uint32" => ("u32", 4, "u32::MAX"),
        "int32" => ("i32", 4, "i32::MIN"),
        "uint64" => ("u64", 8, "u64::MAX"),
        "int64" => ("i64", 8, "i64::MIN"),
        "float" => ("f32", 4, "NAN"),
        _ => return None,
    };
    Some(Prim { rust, size, null })
}

/// What a field's bytes mean.
#[derive(Clone)]
enum Kind {
    Prim(Prim),
    /// A 16-byte little-endian signed mantissa (`mantissa128`).
    I128,
    Enum {
        name: String,
        prim: Prim,
    },
    Set {
        name: String,
        prim: Prim,
    },
}

impl Kind {
    fn size(&self) -> usize {
        match self {
            Kind::Prim(p) | Kind::Enum { prim: p, .. } | Kind::Set { prim: p, .. } => p.size,
            Kind::I128 => 16,
        }
    }
}

struct Field {
    name: String,
    kind: Kind,
    offset: usize,
    optional: bool,
    since: u16,
    /// `presence="constant"`: the enum value it always has (no bytes in the frame).
    constant: Option<(String, String)>,
    /// The exponent field of a mantissa (`mbx:exponent`).
    exponent: Option<String>,
}

struct Data {
    name: String,
    len: &'static str,
    string: bool,
    optional: bool,
}

struct Level {
    /// Rust type name of the view.
    rust: String,
    /// For messages and groups, the schema name (for error messages).
    label: String,
    fields: Vec<Field>,
    groups: Vec<Group>,
    data: Vec<Data>,
}

struct Group {
    name: String,
    dim: &'static str,
    level: Level,
}

struct Message {
    id: u16,
    description: Option<String>,
    level: Level,
}

fn upper_camel(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn snake(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        if ch.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) {
                out.push('_');
            }
            out.extend(ch.to_lowercase());
        } else {
            out.push(ch);
        }
    }
    match out.as_str() {
        "type" | "match" | "ref" | "loop" | "move" | "self" | "use" | "where" | "in" | "fn" => {
            format!("r#{out}")
        }
        _ => out,
    }
}

fn attr<'a>(n: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    n.attributes().find(|a| a.name() == name).map(|a| a.value())
}

fn since(n: roxmltree::Node<'_, '_>) -> u16 {
    attr(n, "sinceVersion").map_or(0, |v| v.parse().expect("sinceVersion is a number"))
}

/// The schema's named types, resolved to what a field needs.
struct Types {
    fields: HashMap<String, (Kind, u16)>,
    /// Data composites: length primitive, whether UTF-8, whether empty means null.
    data: HashMap<String, (&'static str, bool, bool)>,
}

fn read_types(types: roxmltree::Node<'_, '_>) -> Types {
    let mut fields = HashMap::new();
    let mut data = HashMap::new();
    for t in types.children().filter(|n| n.is_element()) {
        let name = attr(t, "name").expect("type has a name").to_string();
        match t.tag_name().name() {
            "type" => {
                let p = attr(t, "primitiveType").expect("type has a primitiveType");
                let kind = if attr(t, "length") == Some("16") && p == "uint8" {
                    Kind::I128
                } else {
                    Kind::Prim(
                        prim(p).unwrap_or_else(|| panic!("type {name}: unknown primitive {p}")),
                    )
                };
                fields.insert(name, (kind, since(t)));
            }
            "enum" | "set" => {
                let enc = attr(t, "encodingType").expect("enum has an encodingType");
                let prim = prim(enc).unwrap_or_else(|| panic!("{name}: unknown encoding {enc}"));
                let rust = upper_camel(&name);
                let kind = if t.tag_name().name() == "enum" {
                    Kind::Enum { name: rust, prim }
                } else {
                    Kind::Set { name: rust, prim }
                };
                fields.insert(name, (kind, since(t)));
            }
            "composite" => {
                let parts: Vec<_> = t.children().filter(|n| n.is_element()).collect();
                if let [len, var] = parts.as_slice()
                    && attr(*var, "name") == Some("varData")
                {
                    let len = match attr(*len, "primitiveType") {
                        Some("uint8") => "U8",
                        Some("uint16") => "U16",
                        Some("uint32") => "U32",
                        other => panic!("{name}: length type {other:?}"),
                    };
                    let string = attr(*var, "characterEncoding").is_some();
                    data.insert(name.clone(), (len, string, name.starts_with("optional")));
                }
            }
            other => panic!("unknown type element {other}"),
        }
    }
    Types { fields, data }
}

fn read_level(node: roxmltree::Node<'_, '_>, rust: String, label: String, types: &Types) -> Level {
    let mut level = Level {
        rust,
        label,
        fields: Vec::new(),
        groups: Vec::new(),
        data: Vec::new(),
    };
    let mut offset = 0;
    for n in node.children().filter(|n| n.is_element()) {
        let name = attr(n, "name").expect("member has a name");
        match n.tag_name().name() {
            "field" => {
                let ty = attr(n, "type").expect("field has a type");
                let (kind, type_since) = match prim(ty) {
                    Some(p) => (Kind::Prim(p), 0),
                    None => types
                        .fields
                        .get(ty)
                        .cloned()
                        .unwrap_or_else(|| panic!("{name}: unknown type {ty}")),
                };
                let presence = attr(n, "presence").unwrap_or("required");
                let constant = (presence == "constant").then(|| {
                    let r = attr(n, "valueRef").expect("constant has a valueRef");
                    let (e, v) = r.split_once('.').expect("valueRef is enum.value");
                    (upper_camel(e), v.to_string())
                });
                let size = if constant.is_some() { 0 } else { kind.size() };
                level.fields.push(Field {
                    name: name.to_string(),
                    kind,
                    offset,
                    optional: presence == "optional",
                    since: since(n).max(type_since),
                    constant,
                    exponent: attr(n, "exponent").map(str::to_string),
                });
                offset += size;
            }
            "group" => {
                let dim = match attr(n, "dimensionType").unwrap_or("groupSizeEncoding") {
                    "groupSizeEncoding" => "Count32",
                    "groupSize16Encoding" => "Count16",
                    other => panic!("{name}: dimension {other}"),
                };
                assert!(
                    since(n) == 0,
                    "{name}: groups added in a later version are not handled"
                );
                let rust = format!(
                    "{}{}Entry",
                    level
                        .rust
                        .trim_end_matches("View")
                        .trim_end_matches("Entry"),
                    upper_camel(name)
                );
                let inner = read_level(n, rust, format!("{}.{name}", level.label), types);
                level.groups.push(Group {
                    name: name.to_string(),
                    dim,
                    level: inner,
                });
            }
            "data" => {
                let ty = attr(n, "type").expect("data has a type");
                let &(len, string, optional) = types
                    .data
                    .get(ty)
                    .unwrap_or_else(|| panic!("{name}: unknown data {ty}"));
                assert!(
                    since(n) == 0,
                    "{name}: data added in a later version is not handled"
                );
                level.data.push(Data {
                    name: name.to_string(),
                    len,
                    string,
                    optional,
                });
            }
            other => panic!("unknown member {other}"),
        }
    }
    level
}

fn main() {
    println!("cargo::rerun-if-changed={SCHEMA}");
    println!("cargo::rerun-if-changed=build.rs");
    let xml = std::fs::read_to_string(SCHEMA).expect("the schema is in the crate");
    let doc = roxmltree::Document::parse(&xml).expect("the schema is XML");
    let root = doc.root_element();
    assert_eq!(attr(root, "id"), Some("3"), "codec.rs pins schema id 3");
    assert_eq!(
        attr(root, "version"),
        Some("5"),
        "codec.rs pins schema version 5"
    );
    let types_node = root
        .children()
        .find(|n| n.has_tag_name("types"))
        .expect("schema has types");
    let types = read_types(types_node);

    let mut out = String::new();
    write_types(&mut out, types_node);
    let mut messages = Vec::new();
    for m in root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "message")
    {
        let name = attr(m, "name").expect("message has a name");
        let id = attr(m, "id")
            .expect("message has an id")
            .parse()
            .expect("id is a number");
        let level = read_level(m, format!("{name}View"), name.to_string(), &types);
        messages.push(Message {
            id,
            description: attr(m, "description").map(str::to_string),
            level,
        });
    }
    for m in &messages {
        write_level(&mut out, &m.level, Some(m));
    }
    write_dispatch(&mut out, &messages);
    let path =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("spot.rs");
    std::fs::write(path, out).expect("OUT_DIR is writable");
}

fn write_types(out: &mut String, types: roxmltree::Node<'_, '_>) {
    for t in types.children().filter(|n| n.is_element()) {
        let name = upper_camel(attr(t, "name").unwrap_or_default());
        let Some(p) = attr(t, "encodingType").and_then(prim) else {
            continue;
        };
        let values: Vec<(String, String)> = t
            .children()
            .filter(|n| n.is_element())
            .map(|v| {
                (
                    attr(v, "name").expect("value has a name").to_string(),
                    v.text().unwrap_or("").trim().to_string(),
                )
            })
            .collect();
        // `mbx:jsonValue`: the text the JSON API shows for each value.
        let json: Vec<Option<String>> = t
            .children()
            .filter(|n| n.is_element())
            .map(|v| attr(v, "jsonValue").map(str::to_string))
            .collect();
        let r = p.rust;
        if t.has_tag_name("enum") {
            let _ = writeln!(
                out,
                "/// The schema's `{}` enum.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub enum {name} {{",
                attr(t, "name").unwrap_or_default()
            );
            for (v, raw) in &values {
                let _ = writeln!(out, "    /// `{v}` (`{raw}` on the wire).\n    {v},");
            }
            let _ = writeln!(
                out,
                "    /// A value this schema version does not name.\n    Unrecognised({r}),\n}}\n"
            );
            let _ = writeln!(
                out,
                "impl {name} {{\n    /// The value for a raw wire byte.\n    pub const fn from_raw(raw: {r}) -> Self {{\n        match raw {{"
            );
            for (v, raw) in &values {
                let _ = writeln!(out, "            {raw} => Self::{v},");
            }
            let _ = writeln!(
                out,
                "            other => Self::Unrecognised(other),\n        }}\n    }}\n\n    /// The raw wire value.\n    pub const fn to_raw(self) -> {r} {{\n        match self {{"
            );
            for (v, raw) in &values {
                let _ = writeln!(out, "            Self::{v} => {raw},");
            }
            let _ = writeln!(
                out,
                "            Self::Unrecognised(raw) => raw,\n        }}\n    }}\n"
            );
            let _ = writeln!(
                out,
                "    /// The text the JSON API shows for this value (`mbx:jsonValue`); `None` for a\n    /// value this schema version does not name.\n    pub const fn json_value(self) -> Option<&'static str> {{\n        match self {{"
            );
            for ((v, _), j) in values.iter().zip(&json) {
                match j {
                    Some(j) => {
                        let _ = writeln!(out, "            Self::{v} => Some({j:?}),");
                    }
                    None => {
                        let _ = writeln!(out, "            Self::{v} => None,");
                    }
                }
            }
            let _ = writeln!(
                out,
                "            Self::Unrecognised(_) => None,\n        }}\n    }}\n\n    /// The value the JSON API's text `s` names (`mbx:jsonValue`), if any.\n    pub fn from_json_value(s: &str) -> Option<Self> {{\n        match s {{"
            );
            let mut seen = std::collections::HashSet::new();
            for ((v, _), j) in values.iter().zip(&json) {
                if let Some(j) = j
                    && seen.insert(j.clone())
                {
                    let _ = writeln!(out, "            {j:?} => Some(Self::{v}),");
                }
            }
            let _ = writeln!(out, "            _ => None,\n        }}\n    }}\n}}\n");
        } else {
            let _ = writeln!(
                out,
                "/// The schema's `{}` bit set.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\npub struct {name}(pub {r});\n\nimpl {name} {{",
                attr(t, "name").unwrap_or_default()
            );
            for (v, bit) in &values {
                let _ = writeln!(
                    out,
                    "    /// Whether `{v}` (bit {bit}) is set.\n    pub const fn has_{}(self) -> bool {{\n        self.0 & (1 << {bit}) != 0\n    }}\n",
                    snake(v).trim_start_matches("r#")
                );
            }
            let _ = writeln!(out, "}}\n");
        }
    }
}

fn min_len(level: &Level) -> usize {
    let block: usize = level
        .fields
        .iter()
        .map(|f| {
            if f.constant.is_some() {
                0
            } else {
                f.kind.size()
            }
        })
        .sum();
    let dims: usize = level
        .groups
        .iter()
        .map(|g| if g.dim == "Count32" { 6 } else { 4 })
        .sum();
    let data: usize = level
        .data
        .iter()
        .map(|d| match d.len {
            "U8" => 1,
            "U16" => 2,
            _ => 4,
        })
        .sum();
    block + dims + data
}

fn write_level(out: &mut String, level: &Level, message: Option<&Message>) {
    for g in &level.groups {
        write_level(out, &g.level, None);
    }
    let rust = &level.rust;
    let label = &level.label;
    let marks = level.groups.len() + level.data.len();
    match message {
        Some(m) => {
            let desc = m
                .description
                .as_deref()
                .map(|d| format!(" {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "/// A view over a `{label}` message (template {}).{desc}",
                m.id
            );
        }
        None => {
            let _ = writeln!(out, "/// One entry of the `{label}` group.");
        }
    }
    let _ = writeln!(
        out,
        "\
#[derive(Debug, Clone, Copy)]
pub struct {rust}<'a> {{
    buf: &'a [u8],
    at: usize,
    version: u16,
    /// Where each group and data field starts, in schema order.
{}    marks: [usize; {marks}],
    end: usize,
}}
",
        if marks == 0 {
            "    #[allow(dead_code)]\n"
        } else {
            ""
        }
    );

    // The block length the fields of a version need.
    let mut by_since: std::collections::BTreeMap<u16, usize> = std::collections::BTreeMap::new();
    for f in level.fields.iter().filter(|f| f.constant.is_none()) {
        let end = by_since.entry(f.since).or_default();
        *end = (*end).max(f.offset + f.kind.size());
    }
    let mut needs = format!(
        "        let mut needed = {}usize;\n",
        by_since.get(&0).copied().unwrap_or(0)
    );
    for (since, end) in by_since.range(1..) {
        let _ = write!(
            needs,
            "        if version >= {since} {{\n            needed = needed.max({end});\n        }}\n"
        );
    }
    let _ = writeln!(
        out,
        "\
impl<'a> crate::codec::Level<'a> for {rust}<'a> {{
    const MIN_LEN: usize = {};

    #[allow(unused_mut, unused_variables)]
    fn parse(buf: &'a [u8], at: usize, block_length: u16, version: u16) -> Result<(Self, usize), SbeError> {{
{needs}        let mut pos = crate::codec::block(buf, at, block_length, needed, version, {label:?})?;
        let mut marks = [0usize; {marks}];",
        min_len(level)
    );
    let mut i = 0;
    for g in &level.groups {
        let _ = writeln!(
            out,
            "        marks[{i}] = pos;\n        pos = crate::codec::walk_group::<{}<'a>>(buf, pos, crate::codec::Dim::{}, version, {:?})?;",
            g.level.rust, g.dim, g.level.label
        );
        i += 1;
    }
    for d in &level.data {
        let _ = writeln!(
            out,
            "        marks[{i}] = pos;\n        pos = crate::codec::walk_data(buf, pos, crate::codec::Len::{}, \"{label}.{}\")?;",
            d.len, d.name
        );
        i += 1;
    }
    let _ = writeln!(
        out,
        "        Ok((Self {{ buf, at, version, marks, end: pos }}, pos))\n    }}\n}}\n"
    );

    let block_length: usize = level
        .fields
        .iter()
        .filter(|f| f.constant.is_none())
        .map(|f| f.kind.size())
        .sum();
    let _ = writeln!(out, "impl<'a> {rust}<'a> {{");
    let _ = writeln!(
        out,
        "    /// The block length of this schema version: every field, none added later.\n    pub const BLOCK_LENGTH: u16 = {block_length};\n"
    );
    if let Some(m) = message {
        let _ = writeln!(
            out,
            "    \
    /// The template id in the message header.
    pub const TEMPLATE_ID: u16 = {};

    /// Reads a whole frame (header first): the schema id must be [`crate::SCHEMA_ID`] and the
    /// template this one.
    ///
    /// # Errors
    /// Any [`SbeError`] the header, block, groups or data give.
    pub fn decode(frame: &'a [u8]) -> Result<Self, SbeError> {{
        let header = Header::read(frame)?;
        if header.template_id != Self::TEMPLATE_ID {{
            return Err(SbeError::WrongTemplate {{ seen: header.template_id, expected: Self::TEMPLATE_ID }});
        }}
        Self::from_body(frame, HEADER_LEN, header.block_length, header.version)
    }}

    /// Reads the message whose root block starts at `at` in `buf`, with the block length and
    /// version its header gave.
    ///
    /// # Errors
    /// Any [`SbeError`] the block, groups or data give.
    pub fn from_body(buf: &'a [u8], at: usize, block_length: u16, version: u16) -> Result<Self, SbeError> {{
        <Self as crate::codec::Level<'a>>::parse(buf, at, block_length, version).map(|(v, _)| v)
    }}
",
            m.id
        );
    }
    let _ = writeln!(
        out,
        "    /// The schema version the frame was encoded with.\n    pub fn acting_version(&self) -> u16 {{\n        self.version\n    }}\n\n    /// Where this {0} ends in the buffer (after its groups and data).\n    pub fn end(&self) -> usize {{\n        self.end\n    }}\n\n    /// This {0}'s bytes: its block, groups and data.\n    pub fn bytes(&self) -> &'a [u8] {{\n        self.buf.get(self.at..self.end).unwrap_or(&[])\n    }}\n",
        if message.is_some() {
            "message"
        } else {
            "entry"
        }
    );
    let by_name: HashMap<&str, &Field> =
        level.fields.iter().map(|f| (f.name.as_str(), f)).collect();
    for f in &level.fields {
        write_field(out, f, &by_name);
    }
    let mut i = 0;
    for g in &level.groups {
        let _ = writeln!(
            out,
            "    /// The `{}` group's entries.\n    pub fn {}(&self) -> crate::codec::GroupIter<'a, {}<'a>> {{\n        crate::codec::GroupIter::new(self.buf, self.marks[{i}], crate::codec::Dim::{}, self.version, {:?})\n    }}\n",
            g.name,
            snake(&g.name),
            g.level.rust,
            g.dim,
            g.level.label
        );
        i += 1;
    }
    for d in &level.data {
        let fname = snake(&d.name);
        let what = format!("{label}.{}", d.name);
        let len = d.len;
        match (d.string, d.optional) {
            (true, false) => {
                let _ = writeln!(
                    out,
                    "    /// The `{}` string.\n    ///\n    /// # Errors\n    /// [`SbeError::NotUtf8`] if its bytes are not UTF-8.\n    pub fn {fname}(&self) -> Result<&'a str, SbeError> {{\n        crate::codec::data_str(self.buf, self.marks[{i}], crate::codec::Len::{len}, {what:?})\n    }}\n",
                    d.name
                );
            }
            (true, true) => {
                let _ = writeln!(
                    out,
                    "    /// The `{}` string; `None` when empty (the schema's null).\n    ///\n    /// # Errors\n    /// [`SbeError::NotUtf8`] if its bytes are not UTF-8.\n    pub fn {fname}(&self) -> Result<Option<&'a str>, SbeError> {{\n        crate::codec::data_str(self.buf, self.marks[{i}], crate::codec::Len::{len}, {what:?}).map(|s| (!s.is_empty()).then_some(s))\n    }}\n",
                    d.name
                );
            }
            (false, false) => {
                let _ = writeln!(
                    out,
                    "    /// The `{}` bytes: an embedded SBE frame (header and message).\n    pub fn {fname}(&self) -> &'a [u8] {{\n        crate::codec::data_bytes(self.buf, self.marks[{i}], crate::codec::Len::{len})\n    }}\n",
                    d.name
                );
            }
            (false, true) => {
                let _ = writeln!(
                    out,
                    "    /// The `{}` bytes: an embedded SBE frame, `None` when empty (the schema's null).\n    pub fn {fname}(&self) -> Option<&'a [u8]> {{\n        let b = crate::codec::data_bytes(self.buf, self.marks[{i}], crate::codec::Len::{len});\n        (!b.is_empty()).then_some(b)\n    }}\n",
                    d.name
                );
            }
        }
        i += 1;
    }
    // Every accessor once, for the no-panic tests and the fuzz target.
    let _ = writeln!(
        out,
        "    /// Calls every accessor and walks every group; returns how many values were read.\n    #[doc(hidden)]\n    #[allow(unused_mut)]\n    pub fn touch(&self) -> usize {{\n        let mut n = 0usize;"
    );
    for f in &level.fields {
        let _ = writeln!(
            out,
            "        core::hint::black_box(self.{}());\n        n += 1;",
            snake(&f.name)
        );
    }
    for g in &level.groups {
        let _ = writeln!(
            out,
            "        for e in self.{}() {{\n            n += e.map_or(1, |e| e.touch());\n        }}",
            snake(&g.name)
        );
    }
    for d in &level.data {
        let _ = writeln!(
            out,
            "        let _ = core::hint::black_box(self.{}());\n        n += 1;",
            snake(&d.name)
        );
    }
    let _ = writeln!(out, "        n\n    }}\n}}\n");
}

fn write_field(out: &mut String, f: &Field, by_name: &HashMap<&str, &Field>) {
    let name = snake(&f.name);
    if let Some((e, v)) = &f.constant {
        let _ = writeln!(
            out,
            "    /// `{}`: always `{e}::{v}` (a constant, not on the wire).\n    pub fn {name}(&self) -> {e} {{\n        {e}::{v}\n    }}\n",
            f.name
        );
        return;
    }
    let at = format!("self.at + {}", f.offset);
    let (ty, raw, null_check, value) = match &f.kind {
        Kind::I128 => {
            let raw = format!("crate::codec::read_i128(self.buf, {at})");
            match f.exponent.as_deref().and_then(|e| by_name.get(e)) {
                Some(exp) => (
                    "Decimal128".to_string(),
                    raw,
                    "raw == i128::MIN".to_string(),
                    format!(
                        "Decimal128 {{ mantissa: raw, exponent: crate::codec::read_i8(self.buf, self.at + {}) }}",
                        exp.offset
                    ),
                ),
                // The exponent is in an enclosing block: the mantissa alone.
                None => (
                    "i128".to_string(),
                    raw,
                    "raw == i128::MIN".to_string(),
                    "raw".to_string(),
                ),
            }
        }
        Kind::Prim(p) => {
            let raw = format!("crate::codec::read_{}(self.buf, {at})", p.rust);
            let null = if p.null == "NAN" {
                "raw.is_nan()".to_string()
            } else {
                format!("raw == {}", p.null)
            };
            match f.exponent.as_deref().and_then(|e| by_name.get(e)) {
                Some(exp) if p.rust == "i64" => (
                    "Decimal".to_string(),
                    raw,
                    null,
                    format!(
                        "Decimal {{ mantissa: raw, exponent: crate::codec::read_i8(self.buf, self.at + {}) }}",
                        exp.offset
                    ),
                ),
                _ => (p.rust.to_string(), raw, null, "raw".to_string()),
            }
        }
        Kind::Enum { name, prim } => (
            name.clone(),
            format!("crate::codec::read_{}(self.buf, {at})", prim.rust),
            format!("raw == {}", prim.null),
            format!("{name}::from_raw(raw)"),
        ),
        Kind::Set { name, prim } => (
            name.clone(),
            format!("crate::codec::read_{}(self.buf, {at})", prim.rust),
            format!("raw == {}", prim.null),
            format!("{name}(raw)"),
        ),
    };
    let optional = f.optional || f.since > 0;
    let mut doc = format!("    /// `{}`", f.name);
    if let Some(e) = &f.exponent {
        if by_name.contains_key(e.as_str()) {
            let _ = write!(doc, " (with its exponent `{e}`)");
        } else {
            let _ = write!(
                doc,
                " (the mantissa; its exponent `{e}` is in the enclosing block)"
            );
        }
    }
    if f.optional {
        doc.push_str("; `None` when the frame carries the schema's null");
    }
    if f.since > 0 {
        let _ = write!(doc, "; `None` in frames older than version {}", f.since);
    }
    doc.push('.');
    if !optional {
        let _ = writeln!(
            out,
            "{doc}\n    pub fn {name}(&self) -> {ty} {{\n        let raw = {raw};\n        {value}\n    }}\n"
        );
        return;
    }
    let since = if f.since > 0 {
        format!(
            "        if self.version < {} {{\n            return None;\n        }}\n",
            f.since
        )
    } else {
        String::new()
    };
    let null = if f.optional {
        format!("        if {null_check} {{\n            return None;\n        }}\n")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{doc}\n    pub fn {name}(&self) -> Option<{ty}> {{\n{since}        let raw = {raw};\n{null}        Some({value})\n    }}\n"
    );
}

fn write_dispatch(out: &mut String, messages: &[Message]) {
    let _ = writeln!(
        out,
        "/// Any message of the schema, chosen by the header's template id.\n#[derive(Debug, Clone, Copy)]\npub enum Message<'a> {{"
    );
    for m in messages {
        let name = m.level.rust.trim_end_matches("View");
        let _ = writeln!(
            out,
            "    /// A `{name}` (template {}).\n    {name}({}<'a>),",
            m.id, m.level.rust
        );
    }
    let _ = writeln!(
        out,
        "}}\n\n/// Reads a whole frame as whichever message its header names.\n///\n/// # Errors\n/// [`SbeError::UnknownTemplate`] for a template the schema lacks; any other [`SbeError`] the\n/// header, block, groups or data give.\npub fn decode(frame: &[u8]) -> Result<Message<'_>, SbeError> {{\n    let h = Header::read(frame)?;\n    Ok(match h.template_id {{"
    );
    for m in messages {
        let name = m.level.rust.trim_end_matches("View");
        let _ = writeln!(
            out,
            "        {} => Message::{name}({}::from_body(frame, HEADER_LEN, h.block_length, h.version)?),",
            m.id, m.level.rust
        );
    }
    let _ = writeln!(
        out,
        "        seen => return Err(SbeError::UnknownTemplate {{ seen }}),\n    }})\n}}\n"
    );
    let _ = writeln!(
        out,
        "impl Message<'_> {{\n    /// Calls every accessor of the message and walks every group; returns how many values were read.\n    #[doc(hidden)]\n    pub fn touch(&self) -> usize {{\n        match self {{"
    );
    for m in messages {
        let _ = writeln!(
            out,
            "            Message::{}(v) => v.touch(),",
            m.level.rust.trim_end_matches("View")
        );
    }
    let _ = writeln!(out, "        }}\n    }}\n}}\n");
    let _ = writeln!(
        out,
        "/// Reads `body` as a root block of every message in turn (whatever the bytes) and calls every\n/// accessor of each view that builds; returns how many values were read. For the no-panic\n/// tests and the fuzz target.\n#[doc(hidden)]\npub fn exercise_every_view(body: &[u8], block_length: u16, version: u16) -> usize {{\n    let mut n = 0;"
    );
    for m in messages {
        let _ = writeln!(
            out,
            "    if let Ok(v) = {}::from_body(body, 0, block_length, version) {{\n        n += v.touch();\n    }}",
            m.level.rust
        );
    }
    let _ = writeln!(out, "    n\n}}");
}

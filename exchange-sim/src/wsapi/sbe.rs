//! The WS API's answers and user data in SBE, for sessions that connect with
//! `responseFormat=sbe&sbeSchemaId=3&sbeSchemaVersion=5`.
//!
//! The simulator makes every answer and event as JSON first (one code path for both formats);
//! this module writes that JSON out in schema 3:5, driven by the schema itself
//! (`pinion_sbe_spot::SCHEMA_XML`, read once): each message's fields in order, a field's JSON
//! key its `mbx:jsonPath` or its name, enums by their `mbx:jsonValue`, decimals as a mantissa at
//! the exponent that holds every decimal sharing it exactly (the most decimals any of them is
//! written with), timestamps from the JSON API's milliseconds to microseconds, an optional
//! field absent or at its `mbx:jsonDefaultValue` as the null value, groups from arrays (`..`:
//! the value itself), data from strings. Which message a result is written as follows from the
//! method (and, for `order.place` and nested answers, the result's shape). A result the
//! simulator cannot say in this schema is sent as `NonRepresentableMessage`, as the exchange
//! does.
//!
//! Off the order path of the client under test: the simulator allocates freely here.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// A primitive SBE type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prim {
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
}

impl Prim {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "int8" | "char" => Prim::I8,
            "uint8" => Prim::U8,
            "int16" => Prim::I16,
            "uint16" => Prim::U16,
            "int32" => Prim::I32,
            "uint32" => Prim::U32,
            "int64" => Prim::I64,
            "uint64" => Prim::U64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Prim::I8 | Prim::U8 => 1,
            Prim::I16 | Prim::U16 => 2,
            Prim::I32 | Prim::U32 => 4,
            Prim::I64 | Prim::U64 => 8,
        }
    }

    /// SBE's null value for an optional field of this type.
    fn null(self) -> i128 {
        match self {
            Prim::I8 => i128::from(i8::MIN),
            Prim::U8 => i128::from(u8::MAX),
            Prim::I16 => i128::from(i16::MIN),
            Prim::U16 => i128::from(u16::MAX),
            Prim::I32 => i128::from(i32::MIN),
            Prim::U32 => i128::from(u32::MAX),
            Prim::I64 => i128::from(i64::MIN),
            Prim::U64 => i128::from(u64::MAX),
        }
    }

    fn write(self, out: &mut Vec<u8>, v: i128) {
        let bytes = v.to_le_bytes();
        out.extend_from_slice(&bytes[..self.size()]);
    }
}

/// What a field holds.
#[derive(Debug, Clone)]
enum FieldKind {
    /// An integer (ids, counts, exponents, mantissas).
    Int(Prim),
    /// Microseconds since the epoch (the JSON API's milliseconds × 1000).
    Timestamp,
    /// An enum: its JSON texts and raw values.
    Enum(Prim, HashMap<String, i128>),
    /// A bit set, written empty.
    Set(Prim),
    /// A 128-bit mantissa (16 bytes).
    Mantissa128,
    /// A `float` (4 bytes) or `double` (8 bytes).
    Float(usize),
    /// A constant: no bytes.
    Constant,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    json: String,
    kind: FieldKind,
    optional: bool,
    /// For a mantissa: the name of its exponent field.
    exponent: Option<String>,
    /// `mbx:jsonDefaultValue`: the JSON value that means null.
    default: Option<String>,
}

impl Field {
    fn size(&self) -> usize {
        match &self.kind {
            FieldKind::Int(p) | FieldKind::Enum(p, _) | FieldKind::Set(p) => p.size(),
            FieldKind::Timestamp => 8,
            FieldKind::Mantissa128 => 16,
            FieldKind::Float(n) => *n,
            FieldKind::Constant => 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Data {
    json: String,
    len: Prim,
    /// A nested message (`messageData*`), not text.
    message: bool,
}

#[derive(Debug, Clone)]
struct Group {
    json: String,
    dim16: bool,
    level: Level,
}

#[derive(Debug, Clone, Default)]
struct Level {
    fields: Vec<Field>,
    groups: Vec<Group>,
    data: Vec<Data>,
}

impl Level {
    fn block_length(&self) -> usize {
        self.fields.iter().map(Field::size).sum()
    }
}

#[derive(Debug)]
struct Schema {
    id: u16,
    version: u16,
    messages: HashMap<String, (u16, Level)>,
}

fn attr<'a>(n: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    n.attributes().find(|a| a.name() == name).map(|a| a.value())
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| load(pinion_sbe_spot::SCHEMA_XML).expect("the bundled schema reads"))
}

fn load(xml: &str) -> Result<Schema, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let mut kinds: HashMap<String, FieldKind> = HashMap::new();
    let mut data_len: HashMap<String, (Prim, bool)> = HashMap::new();
    for types in root.children().filter(|n| n.has_tag_name("types")) {
        for t in types.children().filter(|n| n.is_element()) {
            let name = attr(t, "name").unwrap_or_default().to_owned();
            match t.tag_name().name() {
                "type" => {
                    let kind = match (name.as_str(), attr(t, "primitiveType")) {
                        ("utcTimestampUs", _) => FieldKind::Timestamp,
                        ("mantissa128", _) => FieldKind::Mantissa128,
                        (_, Some(p)) => FieldKind::Int(Prim::parse(p).ok_or(p)?),
                        _ => continue,
                    };
                    kinds.insert(name, kind);
                }
                "enum" => {
                    let p = attr(t, "encodingType")
                        .and_then(Prim::parse)
                        .ok_or("enum type")?;
                    let mut values = HashMap::new();
                    for v in t.children().filter(|n| n.is_element()) {
                        let raw: i128 = v.text().unwrap_or("").trim().parse().map_err(|_| "raw")?;
                        let key = attr(v, "jsonValue")
                            .map(str::to_owned)
                            .unwrap_or_else(|| attr(v, "name").unwrap_or_default().to_lowercase());
                        values.entry(key).or_insert(raw);
                    }
                    kinds.insert(name, FieldKind::Enum(p, values));
                }
                "set" => {
                    let p = attr(t, "encodingType")
                        .and_then(Prim::parse)
                        .ok_or("set type")?;
                    kinds.insert(name, FieldKind::Set(p));
                }
                "composite" => {
                    let parts: Vec<_> = t.children().filter(|n| n.is_element()).collect();
                    if let [len, var] = parts.as_slice()
                        && attr(*var, "name") == Some("varData")
                    {
                        let p = attr(*len, "primitiveType")
                            .and_then(Prim::parse)
                            .ok_or("len")?;
                        data_len.insert(name, (p, attr(*var, "characterEncoding").is_none()));
                    }
                }
                _ => {}
            }
        }
    }
    let level = |node: roxmltree::Node<'_, '_>| read_level(node, &kinds, &data_len);
    let mut messages = HashMap::new();
    for m in root.children().filter(|n| n.has_tag_name("message")) {
        let id: u16 = attr(m, "id").and_then(|s| s.parse().ok()).ok_or("id")?;
        let name = attr(m, "name").ok_or("name")?.to_owned();
        messages.insert(name, (id, level(m)?));
    }
    Ok(Schema {
        id: attr(root, "id")
            .and_then(|s| s.parse().ok())
            .ok_or("schema id")?,
        version: attr(root, "version")
            .and_then(|s| s.parse().ok())
            .ok_or("version")?,
        messages,
    })
}

fn read_level(
    node: roxmltree::Node<'_, '_>,
    kinds: &HashMap<String, FieldKind>,
    data_len: &HashMap<String, (Prim, bool)>,
) -> Result<Level, String> {
    let mut level = Level::default();
    for c in node.children().filter(|n| n.is_element()) {
        let name = attr(c, "name").unwrap_or_default().to_owned();
        let json = attr(c, "jsonPath").unwrap_or(&name).to_owned();
        match c.tag_name().name() {
            "field" => {
                let ty = attr(c, "type").unwrap_or_default();
                let kind = if attr(c, "presence") == Some("constant") {
                    FieldKind::Constant
                } else {
                    match (kinds.get(ty), Prim::parse(ty), ty) {
                        (Some(k), _, _) => k.clone(),
                        (None, Some(p), _) => FieldKind::Int(p),
                        (None, None, "float") => FieldKind::Float(4),
                        (None, None, "double") => FieldKind::Float(8),
                        (None, None, _) => return Err(format!("field {name}: type {ty}")),
                    }
                };
                level.fields.push(Field {
                    name,
                    json,
                    kind,
                    optional: attr(c, "presence") == Some("optional"),
                    exponent: attr(c, "exponent").map(str::to_owned),
                    default: attr(c, "jsonDefaultValue").map(str::to_owned),
                });
            }
            "group" => level.groups.push(Group {
                json,
                dim16: attr(c, "dimensionType") == Some("groupSize16Encoding"),
                level: read_level(c, kinds, data_len)?,
            }),
            "data" => {
                let ty = attr(c, "type").unwrap_or_default();
                let (len, message) = *data_len
                    .get(ty)
                    .ok_or_else(|| format!("data {name}: type {ty}"))?;
                level.data.push(Data { json, len, message });
            }
            _ => {}
        }
    }
    Ok(level)
}

/// The value at `path` (dotted; `..` is the value itself).
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path == ".." {
        return Some(v);
    }
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// A decimal's digits and scale: `"-12.340"` → (-12340, 3).
fn decimal(v: &Value) -> Option<(i128, u32)> {
    let text = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return n.as_i64().map(|i| (i128::from(i), 0)),
        _ => return None,
    };
    let (neg, body) = text
        .strip_prefix('-')
        .map_or((false, text), |rest| (true, rest));
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut m: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        if !b.is_ascii_digit() {
            return None;
        }
        m = m.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    Some((if neg { -m } else { m }, frac.len() as u32))
}

/// The exponent of each exponent field of `level` for `obj`: minus the most decimals of the
/// mantissas that share it.
fn exponents(level: &Level, obj: &Value) -> HashMap<String, i128> {
    let mut out: HashMap<String, i128> = HashMap::new();
    for f in &level.fields {
        if let (Some(e), Some((_, scale))) = (&f.exponent, lookup(obj, &f.json).and_then(decimal)) {
            let x = out.entry(e.clone()).or_insert(0);
            *x = (*x).min(-i128::from(scale));
        }
    }
    out
}

fn is_default(f: &Field, v: &Value) -> bool {
    let Some(d) = &f.default else {
        return false;
    };
    match v {
        Value::String(s) => s == d,
        Value::Number(n) => n.to_string() == *d,
        Value::Bool(b) => b.to_string() == *d,
        _ => false,
    }
}

fn write_level(level: &Level, v: &Value, out: &mut Vec<u8>, pick: &dyn Fn(&Value) -> &'static str) {
    let exps = exponents(level, v);
    for f in &level.fields {
        let value = lookup(v, &f.json).filter(|x| !x.is_null());
        let value = if f.optional {
            value.filter(|x| !is_default(f, x))
        } else {
            value
        };
        match &f.kind {
            FieldKind::Constant => {}
            FieldKind::Set(p) => p.write(out, 0),
            FieldKind::Float(n) => {
                let x = value
                    .and_then(|x| match x {
                        Value::Number(n) => n.as_f64(),
                        Value::String(s) => s.parse().ok(),
                        _ => None,
                    })
                    .unwrap_or(f64::NAN);
                if *n == 4 {
                    out.extend_from_slice(&(x as f32).to_le_bytes());
                } else {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            FieldKind::Mantissa128 => {
                let m = if f.optional { i128::MIN } else { 0 };
                out.extend_from_slice(&m.to_le_bytes());
            }
            FieldKind::Timestamp => {
                let t = value
                    .and_then(Value::as_i64)
                    .map(|ms| i128::from(ms) * 1000);
                Prim::I64.write(
                    out,
                    t.unwrap_or(if f.optional { Prim::I64.null() } else { 0 }),
                );
            }
            FieldKind::Enum(p, values) => {
                let raw = match value {
                    Some(Value::String(s)) => values.get(s.as_str()).copied(),
                    Some(Value::Bool(b)) => values.get(if *b { "true" } else { "false" }).copied(),
                    _ => None,
                };
                let raw = raw.unwrap_or_else(|| match value {
                    None if f.optional => p.null(),
                    None if values.contains_key("false") => 0,
                    _ => values
                        .get("NON_REPRESENTABLE")
                        .copied()
                        .unwrap_or_else(|| p.null()),
                });
                p.write(out, raw);
            }
            FieldKind::Int(p) => {
                let raw = if let Some(e) = exps.get(&f.name) {
                    // An exponent field: fixed by the mantissas that name it.
                    Some(*e)
                } else if let Some(e) = &f.exponent {
                    let exp = exps.get(e).copied().unwrap_or(0);
                    value.and_then(decimal).map(|(m, scale)| {
                        let shift = (-exp) as u32 - scale;
                        m * 10i128.pow(shift)
                    })
                } else {
                    value.and_then(|x| match x {
                        Value::Number(n) => n
                            .as_i64()
                            .map(i128::from)
                            .or_else(|| n.as_u64().map(i128::from)),
                        Value::Bool(b) => Some(i128::from(*b)),
                        Value::String(s) => s.parse().ok(),
                        _ => None,
                    })
                };
                p.write(out, raw.unwrap_or(if f.optional { p.null() } else { 0 }));
            }
        }
    }
    for g in &level.groups {
        let items: &[Value] = lookup(v, &g.json)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let block = g.level.block_length() as i128;
        Prim::U16.write(out, block);
        let count = if g.dim16 { Prim::U16 } else { Prim::U32 };
        count.write(out, items.len() as i128);
        for item in items {
            write_level(&g.level, item, out, pick);
        }
    }
    for d in &level.data {
        let mut value = lookup(v, &d.json).filter(|x| !x.is_null());
        if value.is_none() && d.message && level.fields.is_empty() && level.data.len() == 1 {
            // An entry that is only a message (`openOrders.cancelAll`'s): the entry itself.
            value = Some(v);
        }
        let bytes = match value {
            Some(x) if d.message => message(pick(x), x, pick),
            Some(Value::String(s)) => s.clone().into_bytes(),
            Some(Value::Number(n)) => n.to_string().into_bytes(),
            _ => Vec::new(),
        };
        d.len.write(out, bytes.len() as i128);
        out.extend_from_slice(&bytes);
    }
}

/// `value` as message `name`, header first.
fn message(name: &str, value: &Value, pick: &dyn Fn(&Value) -> &'static str) -> Vec<u8> {
    let schema = schema();
    let Some((id, level)) = schema.messages.get(name) else {
        return non_representable();
    };
    let mut out = Vec::with_capacity(256);
    Prim::U16.write(&mut out, level.block_length() as i128);
    Prim::U16.write(&mut out, i128::from(*id));
    Prim::U16.write(&mut out, i128::from(schema.id));
    Prim::U16.write(&mut out, i128::from(schema.version));
    write_level(level, value, &mut out, pick);
    out
}

fn non_representable() -> Vec<u8> {
    let schema = schema();
    let mut out = Vec::with_capacity(8);
    for v in [0, 999, schema.id, schema.version] {
        Prim::U16.write(&mut out, i128::from(v));
    }
    out
}

/// The message a nested answer is, by its shape: an error, a cancel of an order or of a list
/// (`openOrders.cancelAll`'s entries, `order.cancelReplace`'s `cancelResponse`), or a new
/// order's `ACK`, `RESULT` or `FULL` (`order.cancelReplace`'s `newOrderResponse`).
fn nested_kind(v: &Value) -> &'static str {
    if v.get("code").is_some() {
        "ErrorResponse"
    } else if v.get("contingencyType").is_some() {
        "CancelOrderListResponse"
    } else if v.get("origClientOrderId").is_some() {
        "CancelOrderResponse"
    } else if v.get("fills").is_some() {
        "NewOrderFullResponse"
    } else if v.get("status").is_some() {
        "NewOrderResultResponse"
    } else {
        "NewOrderAckResponse"
    }
}

/// The message `method`'s result `result` is written as.
fn result_message(method: &str, result: &Value) -> &'static str {
    let list_kind = |v: &Value| {
        if v.get("orderReports").is_some() {
            "NewOrderListResultResponse"
        } else {
            "NewOrderListAckResponse"
        }
    };
    match method {
        "time" => "ServerTimeResponse",
        "session.logon" => "WebSocketSessionLogonResponse",
        "session.status" => "WebSocketSessionStatusResponse",
        "userDataStream.subscribe" | "userDataStream.subscribe.signature" => {
            "UserDataStreamSubscribeResponse"
        }
        "order.place" if result.get("fills").is_some() => "NewOrderFullResponse",
        "order.place" if result.get("status").is_some() => "NewOrderResultResponse",
        "order.place" => "NewOrderAckResponse",
        "order.cancel" => nested_kind(result),
        "order.cancelReplace" => "CancelReplaceOrderResponse",
        "openOrders.cancelAll" => "CancelOpenOrdersResponse",
        "order.status" => "OrderResponse",
        "openOrders.status" => "OrdersResponse",
        "order.amend.keepPriority" => "OrderAmendKeepPriorityResponse",
        "myTrades" => "AccountTradesResponse",
        "account.status" => "AccountResponse",
        "account.commission" => "AccountCommissionResponse",
        "orderList.place.oco" | "orderList.place.oto" | "orderList.place.otoco" => {
            list_kind(result)
        }
        "orderList.cancel" => "CancelOrderListResponse",
        "orderList.status" => "OrderListResponse",
        "openOrderLists.status" => "OrderListsResponse",
        // Anything else: not written by this simulator.
        _ => "",
    }
}

/// A WS API answer (the simulator's JSON `answer`) to `method`, as a `WebSocketResponse`.
pub fn response(answer: &str, method: &str) -> Vec<u8> {
    let Ok(v) = serde_json::from_str::<Value>(answer) else {
        return non_representable();
    };
    let inner = if let Some(e) = v.get("error") {
        // `data` (retryAfter, serverTime) beside code and msg, as the message lays them out.
        let mut flat = e.as_object().cloned().unwrap_or_default();
        if let Some(Value::Object(data)) = e.get("data") {
            for (k, x) in data {
                flat.entry(k.clone()).or_insert_with(|| x.clone());
            }
        }
        flat.remove("data");
        message("ErrorResponse", &Value::Object(flat), &nested_kind)
    } else {
        let result = v.get("result").cloned().unwrap_or(Value::Null);
        let name = result_message(method, &result);
        let result = if name == "OrderAmendKeepPriorityResponse" {
            // The amended order's fields are the message's own.
            let mut flat = result.as_object().cloned().unwrap_or_default();
            if let Some(Value::Object(o)) = flat.remove("amendedOrder") {
                for (k, x) in o {
                    flat.entry(if k == "origQty" { "qty".to_owned() } else { k })
                        .or_insert(x);
                }
            }
            Value::Object(flat)
        } else {
            result
        };
        message(name, &result, &nested_kind)
    };
    let id = match v.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let mut envelope = Map::new();
    envelope.insert("sbeSchemaIdVersionDeprecated".into(), Value::Bool(false));
    envelope.insert(
        "status".into(),
        v.get("status").cloned().unwrap_or(Value::Null),
    );
    envelope.insert(
        "rateLimits".into(),
        v.get("rateLimits")
            .cloned()
            .unwrap_or(Value::Array(Vec::new())),
    );
    envelope.insert("id".into(), Value::String(id));
    let mut out = message("WebSocketResponse", &Value::Object(envelope), &nested_kind);
    // The result goes last: a `messageData` (u32 length, then the message).
    out.truncate(out.len() - 4);
    Prim::U32.write(&mut out, inner.len() as i128);
    out.extend_from_slice(&inner);
    out
}

/// A user data event (the simulator's JSON `{"subscriptionId":N,"event":{…}}`) as its message.
pub fn event(text: &str) -> Vec<u8> {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return non_representable();
    };
    let mut event = v.get("event").cloned().unwrap_or(Value::Null);
    if let (Some(sub), Value::Object(e)) = (v.get("subscriptionId"), &mut event) {
        e.insert("subscriptionId".into(), sub.clone());
    }
    let name = match event.get("e").and_then(Value::as_str) {
        Some("executionReport") => "ExecutionReportEvent",
        Some("outboundAccountPosition") => "OutboundAccountPositionEvent",
        Some("balanceUpdate") => "BalanceUpdateEvent",
        Some("listStatus") => "ListStatusEvent",
        Some("eventStreamTerminated") => "EventStreamTerminatedEvent",
        Some("serverShutdown") => "ServerShutdownEvent",
        _ => "",
    };
    message(name, &event, &nested_kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_schema_reads_with_its_messages_and_block_lengths() {
        let s = schema();
        assert_eq!((s.id, s.version), (3, 5));
        let (id, level) = &s.messages["ExecutionReportEvent"];
        assert_eq!(*id, 603);
        assert!(level.block_length() > 200);
        assert_eq!(s.messages["ServerTimeResponse"].1.block_length(), 8);
        assert_eq!(s.messages["WebSocketResponse"].1.block_length(), 3);
    }

    #[test]
    fn decimals_take_the_exponent_of_the_most_decimals_sharing_it() {
        assert_eq!(decimal(&Value::from("-12.340")), Some((-12_340, 3)));
        assert_eq!(decimal(&Value::from("7")), Some((7, 0)));
        assert_eq!(decimal(&Value::from("1.2.3")), None);
        assert_eq!(decimal(&Value::from("")), None);
    }
}

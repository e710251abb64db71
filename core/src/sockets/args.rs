//! Event arguments between clients and the host: all of them, in order, as one
//! JSON array, binary attachments beside it.
//!
//! Incoming events are split once into their name and the JSON text of their
//! arguments (no value is decoded on the way to the host); outgoing arguments
//! serialize as a tuple, so that socketioxide sends each element as its own
//! argument, and a placeholder `{"_placeholder":true,"num":n}` goes out as binary
//! attachment `n`.

use std::sync::Arc;

use bytes::Bytes;
use serde::ser::{SerializeMap, SerializeSeq, SerializeTuple};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::handler::FromMessageParts;
use socketioxide::socket::Socket;
use socketioxide_core::Str;

/// The arguments of an event, as the JSON text of one array (`[]` when there are
/// none).
#[derive(Debug, Clone)]
pub struct JsonArgs(Box<RawValue>);

impl JsonArgs {
    /// The JSON text of the array.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The arguments decoded.
    pub fn values(&self) -> Vec<Value> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }

    /// `[]`
    pub fn empty() -> Self {
        Self(RawValue::from_string("[]".into()).expect("valid JSON"))
    }

    pub(crate) fn from_raw(raw: Box<RawValue>) -> Self {
        Self(raw)
    }

    /// Text that is known to be a JSON array.
    fn from_array_text(json: String) -> Self {
        RawValue::from_string(json)
            .map(Self)
            .unwrap_or_else(|_| Self::empty())
    }
}

impl PartialEq for JsonArgs {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Serialize for JsonArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonArgs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        if !raw.get().trim_start().starts_with('[') {
            return Err(serde::de::Error::custom("not an array"));
        }
        Ok(JsonArgs::from_raw(raw))
    }
}

/// An incoming event as the parser left it: `["name", arg, ...]` and its binary
/// attachments. Extracting it copies nothing but reference counts.
pub(crate) struct RawEvent {
    json: Option<Str>,
    attachments: Vec<Bytes>,
}

impl<A: Adapter> FromMessageParts<A> for RawEvent {
    type Error = std::convert::Infallible;

    fn from_message_parts(
        _: &Arc<Socket<A>>,
        value: &mut socketioxide::handler::Value,
        _: &Option<i64>,
    ) -> Result<Self, Self::Error> {
        Ok(Self::of(value))
    }
}

impl RawEvent {
    pub(crate) fn of(value: &socketioxide::handler::Value) -> Self {
        match value {
            socketioxide::handler::Value::Str(json, attachments) => Self {
                json: Some(json.clone()),
                attachments: attachments
                    .as_ref()
                    .map(|a| a.iter().cloned().collect())
                    .unwrap_or_default(),
            },
            socketioxide::handler::Value::Bytes(_) => Self {
                json: None,
                attachments: Vec::new(),
            },
        }
    }

    /// The event split into name and arguments (see [`split_event`]).
    pub(crate) fn split(self) -> Option<IncomingEvent> {
        split_event(self.json.as_ref()?, self.attachments)
    }
}

/// An incoming event split into its parts.
pub(crate) struct IncomingEvent {
    /// The name as the client sent it; a numeric name is its decimal text, as
    /// Node's socket.io hands it to listeners.
    pub name: String,
    /// Whether the client sent the name as a number.
    pub numeric: bool,
    /// Every argument after the name.
    pub args: JsonArgs,
    /// Binary attachments the placeholders in `args` refer to.
    pub attachments: Vec<Bytes>,
}

/// Splits an event packet's data (`["name", arg, ...]` and its attachments).
/// `None` when the data is not an array that starts with a string or a number
/// (socketioxide does not hand such packets to handlers).
pub(crate) fn split_event(json: &Str, attachments: Vec<Bytes>) -> Option<IncomingEvent> {
    let items: Vec<&RawValue> = serde_json::from_str(json.as_str()).ok()?;
    let (first, rest) = items.split_first()?;
    let name = event_name(first)?;
    let numeric = !first.get().starts_with('"');
    let mut args = String::with_capacity(json.len().saturating_sub(first.get().len()));
    args.push('[');
    for (i, item) in rest.iter().enumerate() {
        if i > 0 {
            args.push(',');
        }
        args.push_str(item.get());
    }
    args.push(']');
    Some(IncomingEvent {
        name,
        numeric,
        args: JsonArgs::from_array_text(args),
        attachments,
    })
}

/// An event name: a string, or a number written as JavaScript's `String(n)`
/// writes it for the numbers apps use (integers; other numbers in their
/// shortest round-trip form).
fn event_name(raw: &RawValue) -> Option<String> {
    match serde_json::from_str::<Value>(raw.get()).ok()? {
        Value::String(name) => Some(name),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(u)) => u.to_string(),
            _ => n.as_f64().map(|f| f.to_string())?,
        }),
        _ => None,
    }
}

/// Why arguments could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the arguments must be a JSON array: {0}")]
pub struct ArgsError(String);

/// Arguments going out: a JSON array whose elements become the event's
/// arguments, and the binary attachments its placeholders name.
#[derive(Debug, Clone)]
pub struct OutArgs {
    json: Box<RawValue>,
    attachments: Vec<Bytes>,
}

impl Default for OutArgs {
    fn default() -> Self {
        Self {
            json: RawValue::from_string("[]".into()).expect("valid JSON"),
            attachments: Vec::new(),
        }
    }
}

impl OutArgs {
    /// Arguments from a JSON array's text and the attachments its placeholders
    /// `{"_placeholder":true,"num":n}` name.
    pub fn from_json(json: &str, attachments: Vec<Bytes>) -> Result<Self, ArgsError> {
        let json: Box<RawValue> =
            serde_json::from_str(json).map_err(|e| ArgsError(e.to_string()))?;
        Self::from_raw(json, attachments)
    }

    /// Arguments from a parsed JSON array.
    pub(crate) fn from_raw(
        json: Box<RawValue>,
        attachments: Vec<Bytes>,
    ) -> Result<Self, ArgsError> {
        if !json.get().trim_start().starts_with('[') {
            return Err(ArgsError("not an array".into()));
        }
        Ok(Self { json, attachments })
    }

    /// Arguments from values (no attachments).
    pub fn from_values(values: &[Value]) -> Self {
        let json = serde_json::to_string(values).unwrap_or_else(|_| "[]".into());
        Self {
            json: RawValue::from_string(json).expect("serialized JSON is valid"),
            attachments: Vec::new(),
        }
    }

    /// The JSON text of the array.
    pub fn json(&self) -> &str {
        self.json.get()
    }

    /// The binary attachments.
    pub fn attachments(&self) -> &[Bytes] {
        &self.attachments
    }

    /// Bytes this takes: for queue budgets.
    pub(crate) fn size(&self) -> usize {
        self.json.get().len() + self.attachments.iter().map(Bytes::len).sum::<usize>()
    }

    /// The same arguments with `text` appended as a last string argument (the
    /// offset of a broadcast that can be replayed).
    pub(crate) fn with_last_string(self, text: &str) -> Self {
        let json = self.json.get().trim_end();
        let body = json[..json.len() - 1].trim_end();
        let quoted = serde_json::to_string(text).expect("a string serializes");
        let joined = if body.ends_with('[') {
            format!("{body}{quoted}]")
        } else {
            format!("{body},{quoted}]")
        };
        Self {
            json: RawValue::from_string(joined).expect("an array with one more string"),
            attachments: self.attachments,
        }
    }

    /// Moves the arguments into a shared, cheaply cloned form.
    pub(crate) fn shared(self) -> Arc<Self> {
        Arc::new(self)
    }
}

impl Serialize for OutArgs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let items: Vec<&RawValue> =
            serde_json::from_str(self.json.get()).map_err(S::Error::custom)?;
        // A tuple, so that socketioxide sends every element as its own argument.
        let mut tuple = serializer.serialize_tuple(items.len())?;
        if self.attachments.is_empty() {
            // Passed through as written: nothing to decode.
            for item in items {
                tuple.serialize_element(item)?;
            }
        } else {
            for item in items {
                let value: Value = serde_json::from_str(item.get()).map_err(S::Error::custom)?;
                tuple.serialize_element(&WithAttachments {
                    value: &value,
                    attachments: &self.attachments,
                })?;
            }
        }
        tuple.end()
    }
}

/// A JSON value whose placeholders serialize as bytes.
struct WithAttachments<'a> {
    value: &'a Value,
    attachments: &'a [Bytes],
}

impl WithAttachments<'_> {
    fn placeholder(&self) -> Option<&Bytes> {
        let Value::Object(map) = self.value else {
            return None;
        };
        if map.len() != 2 || map.get("_placeholder") != Some(&Value::Bool(true)) {
            return None;
        }
        let num = map.get("num")?.as_u64()?;
        self.attachments.get(usize::try_from(num).ok()?)
    }
}

impl Serialize for WithAttachments<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(bytes) = self.placeholder() {
            return serializer.serialize_bytes(bytes);
        }
        let nested = |value| WithAttachments {
            value,
            attachments: self.attachments,
        };
        match self.value {
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&nested(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (key, item) in map {
                    out.serialize_entry(key, &nested(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketioxide_core::parser::Parse;

    fn encode(args: &OutArgs) -> socketioxide::handler::Value {
        socketioxide_parser_common::CommonParser
            .encode_value(args, Some("ev"))
            .unwrap()
    }

    fn text(args: &OutArgs) -> String {
        encode(args).as_str().unwrap().as_str().to_string()
    }

    #[test]
    fn every_value_is_its_own_argument() {
        let args = OutArgs::from_json(r#"["ann", {"a":1},[2]]"#, vec![]).unwrap();
        assert_eq!(text(&args), r#"["ev","ann",{"a":1},[2]]"#);
        assert_eq!(text(&OutArgs::default()), r#"["ev"]"#);
        assert_eq!(
            text(&OutArgs::from_values(&[Value::Null])),
            r#"["ev",null]"#
        );
    }

    #[test]
    fn placeholders_become_attachments() {
        let args = OutArgs::from_json(
            r#"[{"file":{"_placeholder":true,"num":0}}]"#,
            vec![Bytes::from_static(b"\x01\x02")],
        )
        .unwrap();
        match encode(&args) {
            socketioxide::handler::Value::Str(json, Some(bins)) => {
                assert_eq!(
                    json.as_str(),
                    r#"["ev",{"file":{"_placeholder":true,"num":0}}]"#
                );
                assert_eq!(bins.len(), 1);
                assert_eq!(&bins[0][..], b"\x01\x02");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn not_an_array_is_refused() {
        assert!(OutArgs::from_json(r#"{"a":1}"#, vec![]).is_err());
        assert!(OutArgs::from_json("[", vec![]).is_err());
        assert!(OutArgs::from_json("3", vec![]).is_err());
    }

    #[test]
    fn incoming_names_and_args() {
        let split = |json: &str| split_event(&Str::from(json.to_string()), Vec::new());
        let event = split(r#"["chat message","hi",{"a":[1]}]"#).unwrap();
        assert_eq!(event.name, "chat message");
        assert!(!event.numeric);
        assert_eq!(event.args.as_str(), r#"["hi",{"a":[1]}]"#);
        let event = split(r#"[2,{"data":"x"}]"#).unwrap();
        assert_eq!(event.name, "2");
        assert!(event.numeric);
        assert_eq!(event.args.values(), vec![serde_json::json!({"data": "x"})]);
        assert_eq!(split(r#"[-3]"#).unwrap().name, "-3");
        assert_eq!(split(r#"[1.5]"#).unwrap().name, "1.5");
        assert_eq!(split(r#"["a\"b"]"#).unwrap().name, "a\"b");
        assert_eq!(split(r#"["x"]"#).unwrap().args.as_str(), "[]");
        assert!(split("[]").is_none());
        assert!(split("[null]").is_none());
        assert!(split(r#"[{"a":1}]"#).is_none());
        assert!(split("{}").is_none());
    }
}

//! Codecs: turn a frame of bytes into an event value (source side) and back (sink side).
//!
//! Built in for now: `json`, `string`, `binary`. The interface is narrow (bytes in, value
//! out; value in, bytes out) so codecs can become a plugin kind later.

use std::ops::Range;

use bytes::Bytes;

/// An event's value inside the host.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Raw bytes (`binary` codec). Shares the source batch's buffer: no copy per event.
    Bytes(Bytes),
    /// UTF-8 text (`string` codec), checked at decode time.
    Text(Bytes),
    /// A JSON document (`json` codec): a `sonic_rs` value, whose strings and containers
    /// live in one arena per document (no allocation per field, one free at drop).
    Json(sonic_rs::Value),
}

impl Value {
    /// The value's own bytes, for values that are bytes already.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(bytes) | Value::Text(bytes) => Some(bytes),
            Value::Json(_) => None,
        }
    }
}

/// Where an encoded event's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoded {
    /// The value's own bytes ([`Value::as_bytes`]) are its encoding: nothing was copied.
    AsIs,
    /// The encoding was appended to the output buffer at this range.
    Appended(Range<usize>),
}

/// Why a frame could not be decoded or a value encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{codec} codec: {message}")]
pub struct CodecError {
    /// The codec's name.
    pub codec: &'static str,
    /// What went wrong.
    pub message: String,
}

/// The deepest nesting of arrays and objects the `json` codec decodes (as `serde_json`):
/// deeper documents are an error, not a stack overflow.
pub const JSON_MAX_DEPTH: usize = 128;

/// Where a JSON document's nesting first goes deeper than `limit`, if it does (a byte
/// offset). Brackets inside strings do not count.
fn too_deep(json: &[u8], limit: usize) -> Option<usize> {
    // Most documents have fewer brackets in all than the limit: counting them is a fast
    // (vectorised) pass, and then no nesting can be deeper.
    // (`[` is 0x5B, `{` 0x7B: one comparison finds both.)
    let brackets = json.iter().filter(|&&b| b | 0x20 == b'{').count();
    if brackets <= limit {
        return None;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (offset, &byte) in json.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(offset);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Names of the codecs, for configuration errors.
pub const CODEC_NAMES: &[&str] = &["json", "string", "binary"];

/// A codec, chosen by name in a connector's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// JSON documents.
    Json,
    /// UTF-8 text.
    String,
    /// Bytes as they are.
    Binary,
}

impl Codec {
    /// The codec called `name`.
    ///
    /// # Errors
    /// A message listing the codecs when `name` is none of them.
    pub fn by_name(name: &str) -> Result<Self, String> {
        match name {
            "json" => Ok(Codec::Json),
            "string" => Ok(Codec::String),
            "binary" => Ok(Codec::Binary),
            other => Err(format!(
                "unknown codec `{other}`: expected one of {}{}",
                CODEC_NAMES.join(", "),
                crate::suggest::did_you_mean(other, CODEC_NAMES.iter().copied())
            )),
        }
    }

    /// The codec's name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Json => "json",
            Codec::String => "string",
            Codec::Binary => "binary",
        }
    }

    fn error(self, message: impl Into<String>) -> CodecError {
        CodecError {
            codec: self.name(),
            message: message.into(),
        }
    }

    /// Decodes one frame.
    ///
    /// # Errors
    /// Invalid JSON (`json`) or invalid UTF-8 (`string`).
    pub fn decode(self, frame: Bytes) -> Result<Value, CodecError> {
        match self {
            Codec::Json => {
                if let Some(offset) = too_deep(&frame, JSON_MAX_DEPTH) {
                    return Err(self.error(format!(
                        "invalid JSON: nested deeper than {JSON_MAX_DEPTH} levels at byte {offset}"
                    )));
                }
                sonic_rs::from_slice(&frame)
                    .map(Value::Json)
                    .map_err(|e| self.error(format!("invalid JSON: {}", one_line(&e))))
            }
            Codec::String => match std::str::from_utf8(&frame) {
                Ok(_) => Ok(Value::Text(frame)),
                Err(e) => Err(self.error(format!("invalid UTF-8: {e}"))),
            },
            Codec::Binary => Ok(Value::Bytes(frame)),
        }
    }

    /// Encodes one value, appending to `out` unless the value's own bytes are its encoding.
    ///
    /// # Errors
    /// A non-UTF-8 binary value encoded as `json`.
    pub fn encode(self, value: &Value, out: &mut Vec<u8>) -> Result<Encoded, CodecError> {
        let start = out.len();
        match (self, value) {
            (Codec::String | Codec::Binary, Value::Bytes(_) | Value::Text(_)) => {
                return Ok(Encoded::AsIs);
            }
            (_, Value::Json(json)) => match sonic_rs::JsonValueTrait::as_str(json) {
                // A JSON string is its text to the text codecs.
                Some(text) if self != Codec::Json => out.extend_from_slice(text.as_bytes()),
                _ => {
                    sonic_rs::to_writer(&mut *out, json).map_err(|e| self.error(e.to_string()))?;
                }
            },
            (Codec::Json, Value::Text(bytes) | Value::Bytes(bytes)) => {
                let text = std::str::from_utf8(bytes).map_err(|e| {
                    self.error(format!(
                        "cannot encode non-UTF-8 bytes as a JSON string: {e}"
                    ))
                })?;
                sonic_rs::to_writer(&mut *out, text).map_err(|e| self.error(e.to_string()))?;
            }
        }
        Ok(Encoded::Appended(start..out.len()))
    }
}

/// A `sonic_rs` error on one line: its message says where, then quotes the input around
/// it on further lines, which a log line or an `err` event does not need.
fn one_line(error: &sonic_rs::Error) -> String {
    let text = error.to_string();
    text.lines().next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sonic_rs::json;

    fn encode(codec: Codec, value: &Value) -> Vec<u8> {
        let mut out = b"prefix".to_vec();
        match codec.encode(value, &mut out).unwrap() {
            Encoded::AsIs => value.as_bytes().unwrap().to_vec(),
            Encoded::Appended(range) => out[range].to_vec(),
        }
    }

    #[test]
    fn json_round_trip() {
        let frame = Bytes::from_static(br#"{"a":[1,2.5,"x"],"b":null}"#);
        let value = Codec::Json.decode(frame.clone()).unwrap();
        assert_eq!(value, Value::Json(json!({"a": [1, 2.5, "x"], "b": null})));
        assert_eq!(encode(Codec::Json, &value), frame.to_vec());
    }

    #[test]
    fn decode_errors_say_what_is_wrong() {
        let error = Codec::Json
            .decode(Bytes::from_static(b"{not json"))
            .unwrap_err();
        assert_eq!(error.codec, "json");
        assert!(
            error
                .to_string()
                .starts_with("json codec: invalid JSON: Expected this character to be '\"' or '}' at line 1 column 2"),
            "{error}"
        );
        let error = Codec::String
            .decode(Bytes::from_static(b"\xff\xfe"))
            .unwrap_err();
        assert!(
            error.to_string().starts_with("string codec: invalid UTF-8"),
            "{error}"
        );
    }

    #[test]
    fn json_nested_deeper_than_the_limit_is_an_error_not_a_crash() {
        let nested =
            |depth: usize| Bytes::from(format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
        assert!(Codec::Json.decode(nested(JSON_MAX_DEPTH)).is_ok());
        for depth in [JSON_MAX_DEPTH + 1, 1_000_000] {
            let error = Codec::Json.decode(nested(depth)).unwrap_err();
            assert_eq!(
                error.message,
                format!("invalid JSON: nested deeper than 128 levels at byte 128")
            );
        }
        // Brackets in strings are text, and escaped quotes do not end a string.
        let text = format!(r#"{{"a": "\"{}"}}"#, "[".repeat(1000));
        assert!(Codec::Json.decode(Bytes::from(text)).is_ok());
    }

    #[test]
    fn json_round_trips_the_bundled_events_as_serde_json_reads_them() {
        let data = include_bytes!("../../examples/data/bench-events.json");
        let mut out = Vec::new();
        let mut events = 0;
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let value = Codec::Json.decode(Bytes::copy_from_slice(line)).unwrap();
            out.clear();
            let Encoded::Appended(range) = Codec::Json.encode(&value, &mut out).unwrap() else {
                panic!("json is encoded");
            };
            let expected: serde_json::Value = serde_json::from_slice(line).unwrap();
            let read_back: serde_json::Value = serde_json::from_slice(&out[range]).unwrap();
            assert_eq!(read_back, expected);
            events += 1;
        }
        assert_eq!(events, 100);
    }

    #[test]
    fn binary_and_string_pass_bytes_through_without_copying() {
        let value = Codec::Binary
            .decode(Bytes::from_static(b"\x00\x01"))
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(
            Codec::Binary.encode(&value, &mut out).unwrap(),
            Encoded::AsIs
        );
        assert_eq!(
            Codec::String.encode(&value, &mut out).unwrap(),
            Encoded::AsIs
        );
        assert!(out.is_empty());
    }

    #[test]
    fn values_cross_codecs() {
        let text = Value::Text(Bytes::from_static(b"he said \"hi\""));
        assert_eq!(encode(Codec::Json, &text), br#""he said \"hi\"""#);
        let json = Value::Json(json!({"k": 1}));
        assert_eq!(encode(Codec::String, &json), br#"{"k":1}"#);
        assert_eq!(
            encode(Codec::Binary, &Value::Json(json!("plain"))),
            b"plain"
        );
        let error = Codec::Json
            .encode(&Value::Bytes(Bytes::from_static(b"\xff")), &mut Vec::new())
            .unwrap_err();
        assert!(error.message.contains("non-UTF-8"), "{error}");
    }

    #[test]
    fn unknown_codec_lists_the_known_ones() {
        assert_eq!(
            Codec::by_name("yaml").unwrap_err(),
            "unknown codec `yaml`: expected one of json, string, binary"
        );
        assert_eq!(Codec::by_name("string").unwrap(), Codec::String);
    }
}

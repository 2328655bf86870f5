//! AMF0 (Adobe's Action Message Format 0), as RTMP commands and `onMetaData` use it.
//!
//! Ours rather than `rml_amf0`'s: that decoder recurses once per nested object with no
//! limit, so a command of nested objects would overflow the connection task's stack
//! (an abort, which no error handling survives), and it refuses the long-string and
//! date markers some encoders put in `onMetaData`. This one bounds nesting at
//! [`MAX_DEPTH`], never allocates more than the input it has read, and keeps object
//! properties in wire order (replies are written in the order Flash servers use).

/// Objects nested deeper than this are refused; RTMP commands use 2 levels.
pub const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Boolean(bool),
    String(String),
    /// Object, ECMA array and typed object alike: named properties in wire order.
    Object(Vec<(String, Value)>),
    Null,
    Undefined,
    StrictArray(Vec<Value>),
    /// Milliseconds since the epoch.
    Date(f64),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A property of an object; `None` for anything else.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(properties) => properties.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Amf0Error {
    #[error("AMF0 value cut short")]
    Truncated,
    #[error("AMF0 marker {0:#04x} is not supported")]
    UnknownMarker(u8),
    #[error("AMF0 objects nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("AMF0 object end marker outside an object")]
    StrayObjectEnd,
}

mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0a;
    pub const DATE: u8 = 0x0b;
    pub const LONG_STRING: u8 = 0x0c;
    pub const UNSUPPORTED: u8 = 0x0d;
    pub const XML_DOCUMENT: u8 = 0x0f;
    pub const TYPED_OBJECT: u8 = 0x10;
}

/// Every value in `bytes`, in order.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<Value>, Amf0Error> {
    let mut reader = Reader { bytes };
    let mut values = Vec::new();
    while !reader.bytes.is_empty() {
        values.push(reader.value(0)?);
    }
    Ok(values)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Amf0Error> {
        if self.bytes.len() < n {
            return Err(Amf0Error::Truncated);
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Amf0Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Amf0Error> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Amf0Error> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, Amf0Error> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    fn string(&mut self, len: usize) -> Result<String, Amf0Error> {
        // Lossy: a stream name or encoder string with bad UTF-8 is still usable.
        Ok(String::from_utf8_lossy(self.take(len)?).into_owned())
    }

    fn value(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        if depth > MAX_DEPTH {
            return Err(Amf0Error::TooDeep);
        }
        Ok(match self.u8()? {
            marker::NUMBER => Value::Number(self.f64()?),
            marker::BOOLEAN => Value::Boolean(self.u8()? != 0),
            marker::STRING => {
                let len = self.u16()?;
                Value::String(self.string(len.into())?)
            }
            marker::LONG_STRING | marker::XML_DOCUMENT => {
                let len = self.u32()?;
                Value::String(self.string(len as usize)?)
            }
            marker::OBJECT => Value::Object(self.properties(depth)?),
            marker::TYPED_OBJECT => {
                let len = self.u16()?;
                self.take(len.into())?;
                Value::Object(self.properties(depth)?)
            }
            marker::ECMA_ARRAY => {
                // The count is advisory (encoders get it wrong); the end marker is not.
                self.u32()?;
                Value::Object(self.properties(depth)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.u32()?;
                let mut values = Vec::new();
                // Every value takes at least one byte, so `count` cannot outrun the input.
                for _ in 0..count {
                    values.push(self.value(depth + 1)?);
                }
                Value::StrictArray(values)
            }
            marker::DATE => {
                let ms = self.f64()?;
                self.u16()?; // time zone, reserved
                Value::Date(ms)
            }
            marker::NULL => Value::Null,
            marker::UNDEFINED | marker::UNSUPPORTED => Value::Undefined,
            marker::OBJECT_END => return Err(Amf0Error::StrayObjectEnd),
            other => return Err(Amf0Error::UnknownMarker(other)),
        })
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Amf0Error> {
        let mut properties = Vec::new();
        loop {
            let len = self.u16()?;
            if len == 0 && self.bytes.first() == Some(&marker::OBJECT_END) {
                self.take(1)?;
                return Ok(properties);
            }
            let key = self.string(len.into())?;
            let value = self.value(depth + 1)?;
            properties.push((key, value));
        }
    }
}

/// Appends the encoding of `value`.
pub fn encode(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Boolean(b) => out.extend_from_slice(&[marker::BOOLEAN, u8::from(*b)]),
        Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.push(marker::STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => {
                out.push(marker::LONG_STRING);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        },
        Value::Object(properties) => {
            out.push(marker::OBJECT);
            for (key, value) in properties {
                // Keys are ours (reply fields), far below 64 KiB; a longer one is cut
                // at a character boundary.
                let mut end = key.len().min(usize::from(u16::MAX));
                while !key.is_char_boundary(end) {
                    end -= 1;
                }
                let key = &key.as_bytes()[..end];
                out.extend_from_slice(&(key.len() as u16).to_be_bytes());
                out.extend_from_slice(key);
                encode(out, value);
            }
            out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
        }
        Value::Null => out.push(marker::NULL),
        Value::Undefined => out.push(marker::UNDEFINED),
        Value::StrictArray(values) => {
            out.push(marker::STRICT_ARRAY);
            out.extend_from_slice(&(values.len() as u32).to_be_bytes());
            for value in values {
                encode(out, value);
            }
        }
        Value::Date(ms) => {
            out.push(marker::DATE);
            out.extend_from_slice(&ms.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn round_trips_a_connect_command() {
        let values = vec![
            Value::String("connect".into()),
            Value::Number(1.0),
            object(&[
                ("app", Value::String("live".into())),
                ("fpad", Value::Boolean(false)),
                (
                    "fourCcList",
                    Value::StrictArray(vec![Value::String("hvc1".into())]),
                ),
                ("nested", object(&[("x", Value::Null)])),
            ]),
            Value::Undefined,
            Value::Date(5.0),
        ];
        let mut wire = Vec::new();
        for v in &values {
            encode(&mut wire, v);
        }
        assert_eq!(decode_all(&wire).unwrap(), values);
        assert_eq!(values[2].get("app").and_then(Value::as_str), Some("live"));
    }

    #[test]
    fn ecma_arrays_and_long_strings_decode() {
        // onMetaData as ffmpeg writes it: an ECMA array with a (wrong) count.
        let mut wire = vec![marker::ECMA_ARRAY, 0, 0, 0, 9];
        wire.extend_from_slice(&[0, 5]);
        wire.extend_from_slice(b"width");
        encode(&mut wire, &Value::Number(640.0));
        wire.extend_from_slice(&[0, 1, b's', marker::LONG_STRING, 0, 0, 0, 2, b'h', b'i']);
        wire.extend_from_slice(&[0, 0, marker::OBJECT_END]);
        let got = decode_all(&wire).unwrap();
        assert_eq!(got[0].get("width"), Some(&Value::Number(640.0)));
        assert_eq!(got[0].get("s").and_then(Value::as_str), Some("hi"));
    }

    #[test]
    fn hostile_input_is_an_error() {
        let mut deep = Vec::new();
        for _ in 0..100_000 {
            deep.extend_from_slice(&[marker::OBJECT, 0, 1, b'a']);
        }
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));
        let mut array = vec![marker::STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff];
        array.push(marker::NULL);
        assert_eq!(decode_all(&array), Err(Amf0Error::Truncated));
        assert_eq!(
            decode_all(&[marker::STRING, 0, 9, b'a']),
            Err(Amf0Error::Truncated)
        );
        assert_eq!(decode_all(&[0x11]), Err(Amf0Error::UnknownMarker(0x11)));
        assert_eq!(
            decode_all(&[marker::OBJECT_END]),
            Err(Amf0Error::StrayObjectEnd)
        );
    }
}

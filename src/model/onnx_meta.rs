//! Reads `metadata_props` and the producer out of an ONNX file's protobuf bytes.
//!
//! tract's ort backend does not implement ONNX Runtime's metadata calls, so the contract is
//! read here, identically for every backend, with a minimal protobuf wire-format walker
//! (ModelProto field 14: repeated StringStringEntryProto {key = 1, value = 2}).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a valid ONNX protobuf: {}", self.0)
    }
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| WireError("truncated varint".into()))?;
            self.pos += 1;
            v |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WireError("varint longer than 10 bytes".into()))
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], WireError> {
        let end = self.pos.checked_add(usize::try_from(n).map_err(|_| WireError("length overflow".into()))?);
        match end {
            Some(end) if end <= self.buf.len() => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            _ => Err(WireError("field runs past the end of the file".into())),
        }
    }

    /// Next field: its number and value.
    fn field(&mut self) -> Result<(u64, Value<'a>), WireError> {
        let key = self.varint()?;
        let num = key >> 3;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.bytes(8)?;
                Value::Fixed
            }
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.bytes(n)?)
            }
            5 => {
                self.bytes(4)?;
                Value::Fixed
            }
            other => return Err(WireError(format!("unsupported wire type {other}"))),
        };
        if num == 0 {
            return Err(WireError("field number 0".into()));
        }
        Ok((num, value))
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// What the analyser needs from the ONNX file without building a graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnnxInfo {
    pub ir_version: u64,
    pub producer: String,
    pub has_graph: bool,
    pub metadata: Vec<(String, String)>,
}

/// Walks the top level of a ModelProto.
pub fn read(bytes: &[u8]) -> Result<OnnxInfo, WireError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let mut info = OnnxInfo::default();
    while !r.done() {
        match r.field()? {
            (1, Value::Varint(v)) => info.ir_version = v,
            (2, Value::Bytes(p)) => info.producer = String::from_utf8_lossy(p).into_owned(),
            (7, Value::Bytes(_)) => info.has_graph = true,
            (14, Value::Bytes(p)) => info.metadata.push(entry(p)?),
            _ => {}
        }
    }
    Ok(info)
}

fn entry(p: &[u8]) -> Result<(String, String), WireError> {
    let mut r = Reader { buf: p, pos: 0 };
    let (mut k, mut v) = (String::new(), String::new());
    while !r.done() {
        match r.field()? {
            (1, Value::Bytes(s)) => k = String::from_utf8_lossy(s).into_owned(),
            (2, Value::Bytes(s)) => v = String::from_utf8_lossy(s).into_owned(),
            _ => {}
        }
    }
    Ok((k, v))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(num: u64, payload: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(payload.len() as u64, out);
        out.extend_from_slice(payload);
    }

    /// A hand-built ModelProto: ir_version 8, producer, an empty graph, two metadata entries.
    pub(crate) fn model_bytes(meta: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        varint(1 << 3, &mut out);
        varint(8, &mut out);
        field(2, b"test", &mut out);
        field(7, b"", &mut out);
        for (k, v) in meta {
            let mut e = Vec::new();
            field(1, k.as_bytes(), &mut e);
            field(2, v.as_bytes(), &mut e);
            field(14, &e, &mut out);
        }
        out
    }

    #[test]
    fn reads_metadata_props_and_header() {
        let info = read(&model_bytes(&[("a", "1"), ("scalpmap.classes", "x,y")])).unwrap();
        assert_eq!(info.ir_version, 8);
        assert_eq!(info.producer, "test");
        assert!(info.has_graph);
        assert_eq!(info.metadata, vec![("a".into(), "1".into()), ("scalpmap.classes".into(), "x,y".into())]);
    }

    #[test]
    fn truncated_or_garbage_input_is_an_error_not_a_panic() {
        let bytes = model_bytes(&[("k", "v")]);
        for cut in 0..bytes.len() {
            let _ = read(&bytes[..cut]); // must not panic
        }
        assert!(read(&bytes[..bytes.len() - 1]).is_err());
        assert!(read(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
        assert!(read(b"PK\x03\x04 this is a zip").is_err() || !read(b"PK\x03\x04 this is a zip").unwrap().has_graph);
    }
}

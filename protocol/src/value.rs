//! The value model: MessagePack on the wire, decoded only when a method needs to look inside.
//!
//! The node stores values as the encoded bytes it received and hands them back untouched.
//! It decodes when Python semantics require it: a dict key is hashed by its *canonical*
//! encoding, in which `1`, `1.0` and `True` are the same key (as in Python, where they are
//! equal and hash alike); `list.index`, `count`, `remove` and `sort` compare with Python's
//! rules. Arrays are treated as tuples (hashable when their items are); maps are unhashable.
//!
//! Extension types reserved by syncman: [`EXT_BIGINT`] for integers beyond 64 bits and
//! [`EXT_SLICE`] for Python slices. Other extension values are opaque and round-trip as sent.

use std::cmp::Ordering;
use std::fmt::Write as _;

use bytes::Bytes;

use crate::error::RemoteError;

/// Extension type for integers that do not fit 64 bits: big-endian two's complement.
pub const EXT_BIGINT: i8 = 1;
/// Extension type for a slice: a MessagePack array `[start, stop, step]` (each int or nil).
pub const EXT_SLICE: i8 = 2;

/// Nesting deeper than this is refused rather than recursed into.
const MAX_DEPTH: usize = 128;

/// Most items one decode builds. A decoded item takes far more memory than its encoding
/// (a nil is 1 byte on the wire, a `Value` 40), so the count is bounded, not just the
/// bytes: a 60 MiB tuple of nils must not become gigabytes. Stored values are never
/// decoded whole; this bounds keys, sort elements and comparison needles.
pub const MAX_DECODED_ITEMS: usize = 1 << 20;

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Slice(Option<i128>, Option<i128>, Option<i128>),
    Ext(i8, Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed MessagePack: {0}")]
pub struct DecodeError(pub &'static str);

impl From<DecodeError> for RemoteError {
    fn from(e: DecodeError) -> Self {
        RemoteError::protocol_error(e.to_string())
    }
}

/// A cursor over MessagePack bytes that can read headers, skip whole values without
/// decoding them, or decode a value into [`Value`].
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Items [`Reader::read_value`] may still build.
    budget: usize,
}

/// What one MessagePack header says.
enum Head<'a> {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a [u8]),
    Bin(&'a [u8]),
    Array(u32),
    Map(u32),
    Ext(i8, &'a [u8]),
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            pos: 0,
            budget: MAX_DECODED_ITEMS,
        }
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(DecodeError("unexpected end of data"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn be<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn len(&mut self, width: usize) -> Result<usize, DecodeError> {
        Ok(match width {
            1 => self.u8()? as usize,
            2 => u16::from_be_bytes(self.be()?) as usize,
            _ => u32::from_be_bytes(self.be()?) as usize,
        })
    }

    fn head(&mut self) -> Result<Head<'a>, DecodeError> {
        let m = self.u8()?;
        Ok(match m {
            0x00..=0x7f => Head::Int(m as i128),
            0x80..=0x8f => Head::Map((m & 0x0f) as u32),
            0x90..=0x9f => Head::Array((m & 0x0f) as u32),
            0xa0..=0xbf => Head::Str(self.take((m & 0x1f) as usize)?),
            0xc0 => Head::Nil,
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len(1 << (m - 0xc4))?;
                Head::Bin(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.len(1 << (m - 0xc7))?;
                let ty = self.u8()? as i8;
                Head::Ext(ty, self.take(n)?)
            }
            0xca => Head::Float(f32::from_be_bytes(self.be()?) as f64),
            0xcb => Head::Float(f64::from_be_bytes(self.be()?)),
            0xcc => Head::Int(self.u8()? as i128),
            0xcd => Head::Int(u16::from_be_bytes(self.be()?) as i128),
            0xce => Head::Int(u32::from_be_bytes(self.be()?) as i128),
            0xcf => Head::Int(u64::from_be_bytes(self.be()?) as i128),
            0xd0 => Head::Int(self.u8()? as i8 as i128),
            0xd1 => Head::Int(i16::from_be_bytes(self.be()?) as i128),
            0xd2 => Head::Int(i32::from_be_bytes(self.be()?) as i128),
            0xd3 => Head::Int(i64::from_be_bytes(self.be()?) as i128),
            0xd4..=0xd8 => {
                let ty = self.u8()? as i8;
                Head::Ext(ty, self.take(1 << (m - 0xd4))?)
            }
            0xd9..=0xdb => {
                let n = self.len(1 << (m - 0xd9))?;
                Head::Str(self.take(n)?)
            }
            0xdc | 0xdd => Head::Array(self.len(if m == 0xdc { 2 } else { 4 })? as u32),
            0xde | 0xdf => Head::Map(self.len(if m == 0xde { 2 } else { 4 })? as u32),
            0xe0..=0xff => Head::Int(m as i8 as i128),
            0xc1 => return Err(DecodeError("reserved marker 0xc1")),
        })
    }

    /// Reads an array header.
    pub fn read_array_len(&mut self) -> Result<u32, DecodeError> {
        match self.head()? {
            Head::Array(n) => Ok(n),
            _ => Err(DecodeError("expected an array")),
        }
    }

    /// Reads an integer that fits `u64`.
    pub fn read_u64(&mut self) -> Result<u64, DecodeError> {
        match self.head()? {
            Head::Int(i) => u64::try_from(i).map_err(|_| DecodeError("integer out of range")),
            _ => Err(DecodeError("expected an integer")),
        }
    }

    /// Reads a string, borrowed from the buffer.
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        match self.head()? {
            Head::Str(s) => std::str::from_utf8(s).map_err(|_| DecodeError("invalid UTF-8")),
            _ => Err(DecodeError("expected a string")),
        }
    }

    /// Skips one whole value without decoding it; returns its byte range. Iterative, so
    /// deep nesting costs no stack.
    pub fn skip_value(&mut self) -> Result<std::ops::Range<usize>, DecodeError> {
        let start = self.pos;
        let mut remaining: u64 = 1;
        while remaining > 0 {
            remaining -= 1;
            match self.head()? {
                Head::Array(n) => remaining += n as u64,
                Head::Map(n) => remaining += 2 * n as u64,
                _ => {}
            }
        }
        Ok(start..self.pos)
    }

    /// Decodes one value.
    pub fn read_value(&mut self) -> Result<Value, DecodeError> {
        self.value_at(0)
    }

    fn value_at(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError("nesting too deep"));
        }
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or(DecodeError("value has too many items to decode"))?;
        Ok(match self.head()? {
            Head::Nil => Value::Nil,
            Head::Bool(b) => Value::Bool(b),
            Head::Int(i) => Value::Int(i),
            Head::Float(f) => Value::Float(f),
            Head::Str(s) => Value::Str(
                std::str::from_utf8(s)
                    .map_err(|_| DecodeError("invalid UTF-8"))?
                    .to_owned(),
            ),
            Head::Bin(b) => Value::Bytes(b.to_vec()),
            Head::Array(n) => {
                // Never trust a declared count for preallocation: each item takes >= 1 byte.
                let mut items =
                    Vec::with_capacity((n as usize).min(self.buf.len() - self.pos).min(1024));
                for _ in 0..n {
                    items.push(self.value_at(depth + 1)?);
                }
                Value::Array(items)
            }
            Head::Map(n) => {
                let mut pairs =
                    Vec::with_capacity((n as usize).min(self.buf.len() - self.pos).min(1024));
                for _ in 0..n {
                    let k = self.value_at(depth + 1)?;
                    let v = self.value_at(depth + 1)?;
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
            Head::Ext(EXT_BIGINT, data) => Value::Int(bigint_from_bytes(data)?),
            Head::Ext(EXT_SLICE, data) => decode_slice(data, depth)?,
            Head::Ext(ty, data) => Value::Ext(ty, data.to_vec()),
        })
    }
}

fn bigint_from_bytes(data: &[u8]) -> Result<i128, DecodeError> {
    if data.is_empty() || data.len() > 16 {
        return Err(DecodeError("integer beyond 128 bits"));
    }
    let fill = if data[0] & 0x80 != 0 { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - data.len()..].copy_from_slice(data);
    Ok(i128::from_be_bytes(full))
}

fn decode_slice(data: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let mut r = Reader::new(data);
    if r.read_array_len()? != 3 {
        return Err(DecodeError("a slice has three parts"));
    }
    let mut part = || match r.value_at(depth + 1)? {
        Value::Nil => Ok(None),
        Value::Int(i) => Ok(Some(i)),
        _ => Err(DecodeError("slice parts are integers or nil")),
    };
    Ok(Value::Slice(part()?, part()?, part()?))
}

/// Decodes exactly one value that fills `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = r.read_value()?;
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes after value"));
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// Encoding

impl Value {
    /// Appends the MessagePack encoding of this value.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail; rmp's Result only reflects the writer.
        match self {
            Value::Nil => rmp::encode::write_nil(out).unwrap_or(()),
            Value::Bool(b) => rmp::encode::write_bool(out, *b).unwrap_or(()),
            Value::Int(i) => encode_int(*i, out),
            Value::Float(f) => {
                let _ = rmp::encode::write_f64(out, *f);
            }
            Value::Str(s) => {
                let _ = rmp::encode::write_str(out, s);
            }
            Value::Bytes(b) => {
                let _ = rmp::encode::write_bin(out, b);
            }
            Value::Array(items) => {
                let _ = rmp::encode::write_array_len(out, items.len() as u32);
                for item in items {
                    item.encode(out);
                }
            }
            Value::Map(pairs) => {
                let _ = rmp::encode::write_map_len(out, pairs.len() as u32);
                for (k, v) in pairs {
                    k.encode(out);
                    v.encode(out);
                }
            }
            Value::Slice(a, b, c) => {
                let mut body = Vec::with_capacity(16);
                let _ = rmp::encode::write_array_len(&mut body, 3);
                for part in [a, b, c] {
                    match part {
                        Some(i) => encode_int(*i, &mut body),
                        None => {
                            let _ = rmp::encode::write_nil(&mut body);
                        }
                    }
                }
                write_ext(out, EXT_SLICE, &body);
            }
            Value::Ext(ty, data) => write_ext(out, *ty, data),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.encode(&mut out);
        Bytes::from(out)
    }
}

fn write_ext(out: &mut Vec<u8>, ty: i8, data: &[u8]) {
    let _ = rmp::encode::write_ext_meta(out, data.len() as u32, ty);
    out.extend_from_slice(data);
}

fn encode_int(i: i128, out: &mut Vec<u8>) {
    if let Ok(u) = u64::try_from(i) {
        let _ = rmp::encode::write_uint(out, u);
    } else if let Ok(s) = i64::try_from(i) {
        let _ = rmp::encode::write_sint(out, s);
    } else {
        let bytes = i.to_be_bytes();
        // Shortest two's complement form.
        let mut start = 0;
        while start < 15 {
            let (b, next) = (bytes[start], bytes[start + 1]);
            if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                start += 1;
            } else {
                break;
            }
        }
        write_ext(out, EXT_BIGINT, &bytes[start..]);
    }
}

/// Encodes a value (convenience for callers that hold one).
pub fn encode(value: &Value) -> Bytes {
    value.to_bytes()
}

// ---------------------------------------------------------------------------------------
// Python semantics

impl Value {
    /// Python's name for this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "tuple",
            Value::Map(_) => "dict",
            Value::Slice(..) => "slice",
            Value::Ext(..) => "object",
        }
    }

    /// The value as Python's `int`, counting `bool` as one (Python does).
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i128),
            _ => None,
        }
    }

    /// The value as a float, for ints, bools and floats.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            other => other.as_int().map(|i| i as f64),
        }
    }

    /// Python truthiness for the scalar kinds used as flags.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Slice(..) | Value::Ext(..) => true,
        }
    }

    /// Python `==`.
    pub fn py_eq(&self, other: &Value) -> bool {
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            return a.cmp_num(&b) == Some(Ordering::Equal);
        }
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.iter().any(|(k2, v2)| k.py_eq(k2) && v.py_eq(v2)))
            }
            (Value::Slice(a, b, c), Value::Slice(d, e, f)) => (a, b, c) == (d, e, f),
            (Value::Ext(t1, d1), Value::Ext(t2, d2)) => t1 == t2 && d1 == d2,
            _ => false,
        }
    }

    /// Python `<` ordering; a `TypeError` where Python has none (e.g. `str < int`, `None`).
    pub fn py_cmp(&self, other: &Value) -> Result<Ordering, RemoteError> {
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            // NaN compares as neither less nor greater: treat as equal for sorting.
            return Ok(a.cmp_num(&b).unwrap_or(Ordering::Equal));
        }
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Ok(a.cmp(b)),
            (Value::Bytes(a), Value::Bytes(b)) => Ok(a.cmp(b)),
            (Value::Array(a), Value::Array(b)) => {
                for (x, y) in a.iter().zip(b) {
                    if !x.py_eq(y) {
                        return x.py_cmp(y);
                    }
                }
                Ok(a.len().cmp(&b.len()))
            }
            _ => Err(RemoteError::type_error(format!(
                "'<' not supported between instances of '{}' and '{}'",
                self.type_name(),
                other.type_name()
            ))),
        }
    }

    fn number(&self) -> Option<Number> {
        match self {
            Value::Bool(b) => Some(Number::Int(*b as i128)),
            Value::Int(i) => Some(Number::Int(*i)),
            Value::Float(f) => Some(Number::Float(*f)),
            _ => None,
        }
    }

    /// Appends the canonical encoding used to hash and compare dict keys; a `TypeError` for
    /// unhashable values, as Python raises.
    fn encode_key(&self, out: &mut Vec<u8>) -> Result<(), RemoteError> {
        match self {
            Value::Bool(b) => encode_int(*b as i128, out),
            Value::Float(f) => match float_as_int(*f) {
                Some(i) => encode_int(i, out),
                None if f.is_nan() => {
                    let _ = rmp::encode::write_f64(out, f64::NAN);
                }
                None => {
                    let _ = rmp::encode::write_f64(out, *f);
                }
            },
            Value::Array(items) => {
                let _ = rmp::encode::write_array_len(out, items.len() as u32);
                for item in items {
                    item.encode_key(out)?;
                }
            }
            Value::Map(_) | Value::Slice(..) => {
                return Err(RemoteError::type_error(format!(
                    "unhashable type: '{}'",
                    self.type_name()
                )))
            }
            other => other.encode(out),
        }
        Ok(())
    }

    /// Python `repr()`, close enough for error messages (`KeyError: 'x'`).
    pub fn py_repr(&self) -> String {
        let mut s = String::new();
        self.write_repr(&mut s);
        s
    }

    fn write_repr(&self, s: &mut String) {
        match self {
            Value::Nil => s.push_str("None"),
            Value::Bool(true) => s.push_str("True"),
            Value::Bool(false) => s.push_str("False"),
            Value::Int(i) => {
                let _ = write!(s, "{i}");
            }
            Value::Float(f) => {
                let _ = write!(s, "{f:?}");
            }
            Value::Str(v) => {
                // Python prefers single quotes unless the text holds one and no double.
                let q = if v.contains('\'') && !v.contains('"') {
                    '"'
                } else {
                    '\''
                };
                s.push(q);
                for c in v.chars() {
                    match c {
                        c if c == q => {
                            s.push('\\');
                            s.push(c);
                        }
                        '\\' => s.push_str("\\\\"),
                        '\n' => s.push_str("\\n"),
                        c => s.push(c),
                    }
                }
                s.push(q);
            }
            Value::Bytes(b) => {
                s.push_str("b'");
                for &c in b {
                    if c.is_ascii_graphic() && c != b'\'' && c != b'\\' || c == b' ' {
                        s.push(c as char);
                    } else {
                        let _ = write!(s, "\\x{c:02x}");
                    }
                }
                s.push('\'');
            }
            Value::Array(items) => {
                s.push('(');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    item.write_repr(s);
                }
                if items.len() == 1 {
                    s.push(',');
                }
                s.push(')');
            }
            Value::Map(pairs) => {
                s.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    k.write_repr(s);
                    s.push_str(": ");
                    v.write_repr(s);
                }
                s.push('}');
            }
            Value::Slice(a, b, c) => {
                let part = |p: &Option<i128>| p.map_or("None".to_owned(), |i| i.to_string());
                let _ = write!(s, "slice({}, {}, {})", part(a), part(b), part(c));
            }
            Value::Ext(ty, _) => {
                let _ = write!(s, "<object ext {ty}>");
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn cmp_num(&self, other: &Number) -> Option<Ordering> {
        match (*self, *other) {
            (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
            (Number::Float(a), Number::Float(b)) => a.partial_cmp(&b),
            (Number::Int(a), Number::Float(b)) => cmp_int_float(a, b),
            (Number::Float(a), Number::Int(b)) => cmp_int_float(b, a).map(Ordering::reverse),
        }
    }
}

/// Exact int/float comparison (Python compares them exactly, not by converting the int).
fn cmp_int_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    match float_as_int(f) {
        Some(fi) => Some(i.cmp(&fi)),
        None if f.is_infinite() => Some(if f > 0.0 {
            Ordering::Less
        } else {
            Ordering::Greater
        }),
        None => {
            // Non-integral (or beyond i128): compare against its floor.
            let floor = f.floor();
            match float_as_int(floor) {
                Some(fl) if i <= fl => Some(Ordering::Less),
                Some(_) => Some(Ordering::Greater),
                None => Some(if f > 0.0 {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }),
            }
        }
    }
}

fn float_as_int(f: f64) -> Option<i128> {
    // 2^127 as f64 is exact; integral floats inside the range convert exactly.
    const LIMIT: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f.is_finite() && f.fract() == 0.0 && f > -LIMIT && f < LIMIT {
        Some(f as i128)
    } else {
        None
    }
}

/// The canonical form of an encoded dict key: equal Python keys have equal canonical bytes.
/// Strings and small integers are usually canonical already and are returned without a copy.
pub fn canonical_key(raw: &Bytes) -> Result<Bytes, RemoteError> {
    if is_canonical_fast(raw) {
        return Ok(raw.clone());
    }
    let value = decode(raw)?;
    let mut out = Vec::with_capacity(raw.len());
    value.encode_key(&mut out)?;
    if out[..] == raw[..] {
        Ok(raw.clone())
    } else {
        Ok(Bytes::from(out))
    }
}

/// True for encodings that are certainly canonical: fixints and minimally-sized strings.
fn is_canonical_fast(raw: &[u8]) -> bool {
    let Some(&m) = raw.first() else { return false };
    let len = raw.len();
    match m {
        0x00..=0x7f | 0xe0..=0xff => len == 1,
        0xa0..=0xbf => len == 1 + (m & 0x1f) as usize,
        0xd9 => len >= 2 && raw[1] >= 32 && len == 2 + raw[1] as usize,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> Bytes {
        v.to_bytes()
    }

    #[test]
    fn round_trips_every_kind() {
        let v = Value::Array(vec![
            Value::Nil,
            Value::Bool(true),
            Value::Int(-5),
            Value::Int(1 << 40),
            Value::Int(i128::from(u64::MAX) + 1),
            Value::Int(-(1i128 << 100)),
            Value::Float(2.5),
            Value::Str("héllo".into()),
            Value::Bytes(vec![0, 255]),
            Value::Map(vec![(Value::Str("k".into()), Value::Int(1))]),
            Value::Slice(Some(1), None, Some(-1)),
            Value::Ext(42, vec![1, 2, 3]),
        ]);
        assert_eq!(decode(&enc(&v)).unwrap(), v);
    }

    #[test]
    fn equal_python_keys_share_a_canonical_form() {
        let one = canonical_key(&enc(&Value::Int(1))).unwrap();
        assert_eq!(canonical_key(&enc(&Value::Float(1.0))).unwrap(), one);
        assert_eq!(canonical_key(&enc(&Value::Bool(true))).unwrap(), one);
        // A non-minimal int encoding (u64 marker) is normalised too.
        let wide = Bytes::from_static(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(canonical_key(&wide).unwrap(), one);
        let tuple = Value::Array(vec![Value::Int(1), Value::Float(2.0)]);
        let tuple2 = Value::Array(vec![Value::Bool(true), Value::Int(2)]);
        assert_eq!(
            canonical_key(&enc(&tuple)).unwrap(),
            canonical_key(&enc(&tuple2)).unwrap()
        );
        assert_ne!(canonical_key(&enc(&Value::Float(1.5))).unwrap(), one);
        assert_ne!(canonical_key(&enc(&Value::Str("1".into()))).unwrap(), one);
    }

    #[test]
    fn maps_are_unhashable() {
        let err = canonical_key(&enc(&Value::Map(vec![]))).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::TypeError);
        assert!(err.message.contains("unhashable"));
    }

    #[test]
    fn python_comparisons() {
        assert!(Value::Int(1).py_eq(&Value::Float(1.0)));
        assert!(Value::Bool(false).py_eq(&Value::Int(0)));
        assert_eq!(
            Value::Int(2).py_cmp(&Value::Float(2.5)).unwrap(),
            Ordering::Less
        );
        assert_eq!(
            Value::Int(3).py_cmp(&Value::Float(2.5)).unwrap(),
            Ordering::Greater
        );
        assert_eq!(
            Value::Int(-3).py_cmp(&Value::Float(-2.5)).unwrap(),
            Ordering::Less
        );
        assert!(Value::Str("a".into()).py_cmp(&Value::Int(1)).is_err());
        assert_eq!(
            Value::Str("b".into())
                .py_cmp(&Value::Str("a".into()))
                .unwrap(),
            Ordering::Greater
        );
    }

    #[test]
    fn hostile_input_is_an_error_not_a_crash() {
        // An array that claims four billion items, with none present.
        assert!(decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        // Deep nesting: decode refuses, skip copes without recursion.
        let deep = vec![0x91u8; 100_000];
        assert!(decode(&deep).is_err());
        assert!(Reader::new(&deep).skip_value().is_err());
        assert!(decode(&[0xc1]).is_err());
        // Two million nils: 2 MB on the wire, refused before it becomes 80 MB of values.
        let mut wide = vec![0xdd, 0x00, 0x1e, 0x84, 0x80];
        wide.extend(std::iter::repeat_n(0xc0, 2_000_000));
        assert_eq!(
            decode(&wide),
            Err(DecodeError("value has too many items to decode"))
        );
        assert!(
            Reader::new(&wide).skip_value().is_ok(),
            "skipping builds nothing"
        );
        assert!(decode(&[0xa3, b'a']).is_err());
        assert!(decode(&[0xa1, 0xff]).is_err());
        assert!(decode(&[0x01, 0x02]).is_err());
    }

    #[test]
    fn repr_matches_python_for_common_keys() {
        assert_eq!(Value::Str("it's".into()).py_repr(), "\"it's\"");
        assert_eq!(Value::Str("a'\"".into()).py_repr(), "'a\\'\"'");
        assert_eq!(Value::Float(1.0).py_repr(), "1.0");
        assert_eq!(Value::Array(vec![Value::Int(1)]).py_repr(), "(1,)");
        assert_eq!(Value::Nil.py_repr(), "None");
    }
}

/// Python `==` on two encoded values, decoding only when the bytes alone cannot decide
/// (numbers of different encodings, containers). Strings and bytes compare in place.
pub fn py_eq_encoded(a: &[u8], b: &[u8]) -> bool {
    Needle::new(b).matches(a)
}

/// A value searched for in many encoded values (`list.index`, `count`, `in`): decoded at
/// most once, and each candidate decoded only when its bytes cannot decide.
pub struct Needle<'a> {
    raw: &'a [u8],
    /// Decoded when the bytes of a candidate may not be enough (numbers, containers).
    value: Option<Value>,
}

impl<'a> Needle<'a> {
    pub fn new(raw: &'a [u8]) -> Self {
        let value = match Reader::new(raw).head() {
            Ok(Head::Str(_) | Head::Bin(_) | Head::Nil) | Err(_) => None,
            Ok(_) => decode(raw).ok(),
        };
        Needle { raw, value }
    }

    pub fn matches(&self, candidate: &[u8]) -> bool {
        if candidate == self.raw {
            // Identical encodings are equal, except NaN, which Python's `list.index`
            // still matches by identity; treating it as equal gives the same outcome.
            return true;
        }
        let (mut rn, mut rc) = (Reader::new(self.raw), Reader::new(candidate));
        match (rn.head(), rc.head()) {
            (Ok(Head::Str(x)), Ok(Head::Str(y))) => x == y,
            (Ok(Head::Bin(x)), Ok(Head::Bin(y))) => x == y,
            (Ok(Head::Nil), _) | (_, Ok(Head::Nil)) => false,
            (Ok(Head::Str(_) | Head::Bin(_)), _) | (_, Ok(Head::Str(_) | Head::Bin(_))) => false,
            // A number never equals a container, and the reverse: no decode needed.
            (
                Ok(Head::Int(_) | Head::Float(_) | Head::Bool(_)),
                Ok(Head::Array(_) | Head::Map(_) | Head::Ext(..)),
            )
            | (
                Ok(Head::Array(_) | Head::Map(_) | Head::Ext(..)),
                Ok(Head::Int(_) | Head::Float(_) | Head::Bool(_)),
            ) => false,
            _ => match (&self.value, decode(candidate)) {
                (Some(x), Ok(y)) => x.py_eq(&y),
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod encoded_eq_tests {
    use super::*;

    #[test]
    fn compares_without_decoding_when_it_can() {
        let e = |v: Value| v.to_bytes();
        assert!(py_eq_encoded(&e(Value::Int(1)), &e(Value::Float(1.0))));
        assert!(py_eq_encoded(
            &e(Value::Str("a".into())),
            &e(Value::Str("a".into()))
        ));
        assert!(!py_eq_encoded(
            &e(Value::Str("a".into())),
            &e(Value::Bytes(b"a".to_vec()))
        ));
        assert!(!py_eq_encoded(&e(Value::Nil), &e(Value::Int(0))));
        assert!(py_eq_encoded(
            &e(Value::Array(vec![Value::Bool(true)])),
            &e(Value::Array(vec![Value::Int(1)]))
        ));
    }
}

/// The items of an encoded array, each as a slice of `raw` (no copies); `None` if `raw` is
/// not an array.
pub fn split_array(raw: &Bytes) -> Result<Option<Vec<Bytes>>, DecodeError> {
    let mut r = Reader::new(raw);
    let n = match r.head()? {
        Head::Array(n) => n,
        _ => return Ok(None),
    };
    let mut items = Vec::with_capacity((n as usize).min(raw.len()));
    for _ in 0..n {
        items.push(raw.slice(r.skip_value()?));
    }
    Ok(Some(items))
}

/// The entries of an encoded map, as slices of `raw`; `None` if `raw` is not a map.
#[allow(clippy::type_complexity)]
pub fn split_map(raw: &Bytes) -> Result<Option<Vec<(Bytes, Bytes)>>, DecodeError> {
    let mut r = Reader::new(raw);
    let n = match r.head()? {
        Head::Map(n) => n,
        _ => return Ok(None),
    };
    let mut entries = Vec::with_capacity((n as usize).min(raw.len()));
    for _ in 0..n {
        let k = raw.slice(r.skip_value()?);
        let v = raw.slice(r.skip_value()?);
        entries.push((k, v));
    }
    Ok(Some(entries))
}

//! MessagePack, the encoding of every value the node stores: a reader that slices, skips and
//! decodes without trusting declared sizes, the encoder, and the constant results methods
//! answer with. Python's meaning of values (equality, order, hashing, repr) is `python.rs`.
//!
//! Extension types reserved by syncman: [`EXT_BIGINT`] for integers beyond 64 bits and
//! [`EXT_SLICE`] for Python slices. Other extension values are opaque and round-trip as sent.

use bytes::{BufMut, Bytes, BytesMut};

use super::Value;
use crate::error::RemoteError;

/// Extension type for integers that do not fit 64 bits: big-endian two's complement.
pub const EXT_BIGINT: i8 = 1;
/// Extension type for a slice: a MessagePack array `[start, stop, step]` (each int or nil).
pub const EXT_SLICE: i8 = 2;
/// Extension type for a Python `tuple` written by a Python client: an array inside. Arrays
/// are Python lists; Rust tuples are arrays too (they read tuples back as arrays).
pub const EXT_TUPLE: i8 = 3;
/// Extension type for a Python `set`: an array of its items inside.
pub const EXT_SET: i8 = 4;
/// Extension type for a Python `frozenset`: an array of its items inside.
pub const EXT_FROZENSET: i8 = 5;
/// Extension type for a Python `bytearray`: its bytes.
pub const EXT_BYTEARRAY: i8 = 6;
/// Extension type for a Python object the node does not interpret (a user class, a
/// `datetime`, a proxy): the object's own pickle, kept as sent and never executed.
pub const EXT_PICKLE: i8 = 7;

/// Nesting deeper than this is refused rather than recursed into.
pub const MAX_DEPTH: usize = 128;

/// Most items one decode builds. A decoded item takes far more memory than its encoding
/// (a nil is 1 byte on the wire, a `Value` 40), so the count is bounded, not just the
/// bytes: a 60 MiB tuple of nils must not become gigabytes. Stored values are never
/// decoded whole; this bounds keys, sort elements and comparison needles.
pub const MAX_DECODED_ITEMS: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed MessagePack: {0}")]
pub struct DecodeError(pub &'static str);

impl DecodeError {
    /// The value holds more items than one decode builds ([`MAX_DECODED_ITEMS`]): a limit,
    /// not a malformed value.
    pub const TOO_MANY_ITEMS: DecodeError = DecodeError("value has too many items to decode");
}

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
pub(crate) enum Head<'a> {
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

    pub(crate) fn head(&mut self) -> Result<Head<'a>, DecodeError> {
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

    /// The next marker byte, not consumed.
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Reads an array header.
    #[inline]
    pub fn read_array_len(&mut self) -> Result<u32, DecodeError> {
        // Every envelope and argument list is a short array: read it without the general
        // header (whose integers are `i128`), which stays for the rest.
        if let Some(m @ 0x90..=0x9f) = self.peek() {
            self.pos += 1;
            return Ok((m & 0x0f) as u32);
        }
        match self.head()? {
            Head::Array(n) => Ok(n),
            _ => Err(DecodeError("expected an array")),
        }
    }

    /// Reads an integer that fits `u64`.
    #[inline]
    pub fn read_u64(&mut self) -> Result<u64, DecodeError> {
        // Tags, ids and object ids: mostly small, else `uint 64`.
        match self.peek() {
            Some(m @ 0x00..=0x7f) => {
                self.pos += 1;
                return Ok(m as u64);
            }
            Some(0xcf) => {
                self.pos += 1;
                return Ok(u64::from_be_bytes(self.be()?));
            }
            _ => {}
        }
        match self.head()? {
            Head::Int(i) => u64::try_from(i).map_err(|_| DecodeError("integer out of range")),
            _ => Err(DecodeError("expected an integer")),
        }
    }

    /// Reads a string, borrowed from the buffer.
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        let s = match self.peek() {
            // A method name: a short string.
            Some(m @ 0xa0..=0xbf) => {
                self.pos += 1;
                self.take((m & 0x1f) as usize)?
            }
            _ => match self.head()? {
                Head::Str(s) => s,
                _ => return Err(DecodeError("expected a string")),
            },
        };
        if s.is_ascii() {
            // Method names: a few ASCII bytes, which `is_ascii` checks in a word or two,
            // where `from_utf8` cost 117 instructions a request (names of 3 and 11 bytes).
            // SAFETY: ASCII is valid UTF-8.
            return Ok(unsafe { std::str::from_utf8_unchecked(s) });
        }
        std::str::from_utf8(s).map_err(|_| DecodeError("invalid UTF-8"))
    }

    /// Skips one whole value without decoding it; returns its byte range. Iterative, so
    /// deep nesting costs no stack.
    pub fn skip_value(&mut self) -> Result<std::ops::Range<usize>, DecodeError> {
        let start = self.pos;
        let mut remaining: u64 = 1;
        while remaining > 0 {
            remaining -= 1;
            remaining += self.skip_head()?;
        }
        Ok(start..self.pos)
    }

    /// Moves past one header and the bytes it holds (a string's, an integer's), not the
    /// items an array or map holds: returns how many of those follow. The common forms are
    /// told by their marker alone, without building a [`Head`].
    #[inline]
    fn skip_head(&mut self) -> Result<u64, DecodeError> {
        let Some(m) = self.peek() else {
            return Err(DecodeError("unexpected end of data"));
        };
        let (bytes, items) = match m {
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, 0),
            0x80..=0x8f => (0, 2 * (m & 0x0f) as u64),
            0x90..=0x9f => (0, (m & 0x0f) as u64),
            0xa0..=0xbf => ((m & 0x1f) as usize, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            _ => {
                return Ok(match self.head()? {
                    Head::Array(n) => n as u64,
                    Head::Map(n) => 2 * n as u64,
                    _ => 0,
                })
            }
        };
        self.pos += 1;
        self.take(bytes)?;
        Ok(items)
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
            .ok_or(DecodeError::TOO_MANY_ITEMS)?;
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
            Head::Ext(EXT_TUPLE, data) => Value::Tuple(self.ext_items(data, depth)?),
            Head::Ext(EXT_SET, data) => Value::Set(self.ext_items(data, depth)?),
            Head::Ext(EXT_FROZENSET, data) => Value::FrozenSet(self.ext_items(data, depth)?),
            Head::Ext(EXT_BYTEARRAY, data) => Value::ByteArray(data.to_vec()),
            Head::Ext(ty, data) => Value::Ext(ty, data.to_vec()),
        })
    }

    /// The items of a tuple or set extension: an array filling `data`, decoded one level
    /// deeper and from this reader's item budget, so nesting through extensions is bounded
    /// like any other.
    fn ext_items(&mut self, data: &'a [u8], depth: usize) -> Result<Vec<Value>, DecodeError> {
        let mut inner = Reader {
            buf: data,
            pos: 0,
            budget: self.budget,
        };
        let n = inner.read_array_len()?;
        let mut items = Vec::with_capacity((n as usize).min(data.len()).min(1024));
        for _ in 0..n {
            items.push(inner.value_at(depth + 1)?);
        }
        if !inner.is_empty() {
            return Err(DecodeError("trailing bytes in a tuple or set"));
        }
        self.budget = inner.budget;
        Ok(items)
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
            Value::Tuple(items) => write_ext_items(out, EXT_TUPLE, items),
            Value::Set(items) => write_ext_items(out, EXT_SET, items),
            Value::FrozenSet(items) => write_ext_items(out, EXT_FROZENSET, items),
            Value::ByteArray(data) => write_ext(out, EXT_BYTEARRAY, data),
            Value::Ext(ty, data) => write_ext(out, *ty, data),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.encode(&mut out);
        Bytes::from(out)
    }
}

/// An extension wrapping an array of items (tuples, sets).
fn write_ext_items(out: &mut Vec<u8>, ty: i8, items: &[Value]) {
    let mut body = Vec::new();
    let _ = rmp::encode::write_array_len(&mut body, items.len() as u32);
    for item in items {
        item.encode(&mut body);
    }
    write_ext(out, ty, &body);
}

fn write_ext(out: &mut Vec<u8>, ty: i8, data: &[u8]) {
    let _ = rmp::encode::write_ext_meta(out, data.len() as u32, ty);
    out.extend_from_slice(data);
}

pub(crate) fn encode_int(i: i128, out: &mut Vec<u8>) {
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

/// Buffers up to this many bytes may be kept alive by any part of them: a stored value's
/// waste is bounded by it (less than a value's own bookkeeping).
const SMALL_BUFFER: usize = 64;

/// `part`, a slice of a buffer of `buffer_len` bytes, as a value to store: the slice itself
/// when keeping the buffer alive costs at most twice the part (or the buffer is small),
/// else a copy. So a stored value never pins a much bigger request that the byte budget
/// does not count (an item kept from `extend([0, <40 MB>])` would pin the 40 MB once the
/// big item is gone).
pub fn to_keep(part: Bytes, buffer_len: usize) -> Bytes {
    if shares_well(part.len(), buffer_len) {
        part
    } else {
        Bytes::copy_from_slice(&part)
    }
}

/// Whether a part of `part_len` bytes may keep alive the `buffer_len` bytes it lies in
/// (see [`to_keep`]).
pub fn shares_well(part_len: usize, buffer_len: usize) -> bool {
    buffer_len <= SMALL_BUFFER || part_len.saturating_mul(2) >= buffer_len
}

/// The items of an encoded array, each as a slice of `raw` (no copies); `None` if `raw` is
/// not an array. A caller that stores items as they are passes them through [`to_keep`].
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

/// The items of an encoded list, tuple, set or frozenset (what Python's `list.extend` takes
/// as it is), each as a slice of `raw`; `None` for any other value.
pub fn split_sequence(raw: &Bytes) -> Result<Option<Vec<Bytes>>, DecodeError> {
    let mut outer = Reader::new(raw);
    let (base, mut r) = match outer.head()? {
        Head::Array(_) => return split_array(raw),
        Head::Ext(EXT_TUPLE | EXT_SET | EXT_FROZENSET, data) => {
            (outer.pos - data.len(), Reader::new(data))
        }
        _ => return Ok(None),
    };
    let n = r.read_array_len()?;
    let mut items = Vec::with_capacity((n as usize).min(raw.len()));
    for _ in 0..n {
        let at = r.skip_value()?;
        items.push(raw.slice(base + at.start..base + at.end));
    }
    if !r.is_empty() {
        return Err(DecodeError("trailing bytes in a tuple or set"));
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

/// True for the shortest encodings of a fixint or a string: the forms in which such values
/// are already canonical as dict keys (so a key need not be decoded to be hashed).
pub fn is_minimal_scalar(raw: &[u8]) -> bool {
    let Some(&m) = raw.first() else { return false };
    let len = raw.len();
    match m {
        0x00..=0x7f | 0xe0..=0xff => len == 1,
        0xa0..=0xbf => len == 1 + (m & 0x1f) as usize,
        0xd9 => len >= 2 && raw[1] >= 32 && len == 2 + raw[1] as usize,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// Results: constant answers are static bytes, so they cost no allocation per call.

pub static NIL: Bytes = Bytes::from_static(&[0xc0]);
pub static TRUE: Bytes = Bytes::from_static(&[0xc3]);
pub static FALSE: Bytes = Bytes::from_static(&[0xc2]);

/// `None`.
pub fn nil() -> Bytes {
    NIL.clone()
}

pub fn bool(b: bool) -> Bytes {
    if b {
        TRUE.clone()
    } else {
        FALSE.clone()
    }
}

pub fn int(i: i128) -> Bytes {
    let mut out = Vec::with_capacity(9);
    encode_int(i, &mut out);
    Bytes::from(out)
}

pub fn str(s: &str) -> Bytes {
    let mut out = Vec::with_capacity(s.len() + 5);
    let _ = rmp::encode::write_str(&mut out, s);
    Bytes::from(out)
}

/// An array of already-encoded items.
pub fn array<T: AsRef<[u8]>>(items: impl ExactSizeIterator<Item = T>) -> Bytes {
    let mut out = BytesMut::new();
    let _ = rmp::encode::write_array_len(&mut (&mut out).writer(), items.len() as u32);
    for item in items {
        out.put_slice(item.as_ref());
    }
    out.freeze()
}

/// A map of already-encoded keys and values.
pub fn map<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: impl ExactSizeIterator<Item = (K, V)>) -> Bytes {
    let mut out = BytesMut::new();
    let _ = rmp::encode::write_map_len(&mut (&mut out).writer(), pairs.len() as u32);
    for (k, v) in pairs {
        out.put_slice(k.as_ref());
        out.put_slice(v.as_ref());
    }
    out.freeze()
}

/// An array of `[key, value]` pairs (what Python's `items()` gives).
pub fn pairs<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    pairs: impl ExactSizeIterator<Item = (K, V)>,
) -> Bytes {
    let mut out = BytesMut::new();
    let _ = rmp::encode::write_array_len(&mut (&mut out).writer(), pairs.len() as u32);
    for (k, v) in pairs {
        out.put_u8(0x92);
        out.put_slice(k.as_ref());
        out.put_slice(v.as_ref());
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the readers with a fast path answer through the general header alone: the
    /// result and where the reader stopped (errors compared by message).
    fn general(buf: &[u8], read: &str) -> (Result<String, DecodeError>, usize) {
        let mut r = Reader::new(buf);
        let out = match read {
            "u64" => r.head().and_then(|h| match h {
                Head::Int(i) => u64::try_from(i)
                    .map(|v| v.to_string())
                    .map_err(|_| DecodeError("integer out of range")),
                _ => Err(DecodeError("expected an integer")),
            }),
            "array" => r.head().and_then(|h| match h {
                Head::Array(n) => Ok(n.to_string()),
                _ => Err(DecodeError("expected an array")),
            }),
            "str" => r.head().and_then(|h| match h {
                Head::Str(s) => std::str::from_utf8(s)
                    .map(str::to_owned)
                    .map_err(|_| DecodeError("invalid UTF-8")),
                _ => Err(DecodeError("expected a string")),
            }),
            _ => {
                let mut remaining = 1u64;
                let mut out = Ok(String::new());
                while remaining > 0 {
                    remaining -= 1;
                    match r.head() {
                        Ok(Head::Array(n)) => remaining += n as u64,
                        Ok(Head::Map(n)) => remaining += 2 * n as u64,
                        Ok(_) => {}
                        Err(e) => {
                            out = Err(e);
                            break;
                        }
                    }
                }
                out.map(|_| format!("0..{}", r.pos))
            }
        };
        (out, r.pos)
    }

    fn fast(buf: &[u8], read: &str) -> (Result<String, DecodeError>, usize) {
        let mut r = Reader::new(buf);
        let out = match read {
            "u64" => r.read_u64().map(|v| v.to_string()),
            "array" => r.read_array_len().map(|n| n.to_string()),
            "str" => r.read_str().map(str::to_owned),
            _ => r.skip_value().map(|range| format!("{range:?}")),
        };
        (out, r.pos)
    }

    #[test]
    fn a_string_is_read_only_when_it_is_utf8() {
        let read = |bytes: &[u8]| Reader::new(bytes).read_str().map(str::to_owned);
        assert_eq!(read(b"\xab__setitem__").unwrap(), "__setitem__");
        assert_eq!(read(b"\xa3h\xc3\xa9").unwrap(), "h\u{e9}");
        // Invalid UTF-8, alone and after ASCII, short and past a word.
        for bad in [&b"\xa1\xff"[..], b"\xa3ab\xfe", b"\xaaabcdefghi\xc3"] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fast_paths_read_every_marker_as_the_general_header_does() {
        // Every marker byte, followed by nothing, by too little, and by enough for any
        // fixed-size form (bytes that also read as small items when skipped into).
        let tails: [&[u8]; 4] = [&[], &[0x01], &[0x00, 0x02, 0x41, 0x42], &[0x01; 40]];
        for m in 0..=255u8 {
            for tail in tails {
                let mut buf = vec![m];
                buf.extend_from_slice(tail);
                for read in ["u64", "array", "str", "skip"] {
                    let (want, want_pos) = general(&buf, read);
                    let (got, got_pos) = fast(&buf, read);
                    assert_eq!(got, want, "{read} of {buf:02x?}");
                    if want.is_ok() {
                        assert_eq!(got_pos, want_pos, "{read} of {buf:02x?} stops");
                    }
                }
            }
        }
    }

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
    fn a_tuple_set_or_frozenset_splits_into_its_items_as_a_list_does() {
        let items = vec![Value::Int(1), Value::Str("a".into()), Value::Array(vec![])];
        for v in [
            Value::Array(items.clone()),
            Value::Tuple(items.clone()),
            Value::Set(items.clone()),
            Value::FrozenSet(items.clone()),
        ] {
            let split = split_sequence(&enc(&v)).unwrap().unwrap();
            let got: Vec<Value> = split.iter().map(|b| decode(b).unwrap()).collect();
            assert_eq!(got, items, "{v:?}");
        }
        for other in [Value::Str("ab".into()), Value::Map(vec![]), Value::Int(3)] {
            assert_eq!(split_sequence(&enc(&other)).unwrap(), None, "{other:?}");
        }
        // A tuple whose body holds more than its items is refused.
        let mut body = Vec::new();
        rmp::encode::write_array_len(&mut body, 1).unwrap();
        body.extend_from_slice(&[0x01, 0x02]);
        let mut raw = Vec::new();
        write_ext(&mut raw, EXT_TUPLE, &body);
        assert!(split_sequence(&Bytes::from(raw)).is_err());
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
    fn minimal_scalars_are_recognised() {
        assert!(is_minimal_scalar(&enc(&Value::Int(5))));
        assert!(is_minimal_scalar(&enc(&Value::Str("abc".into()))));
        // A u64 marker for a small number is not minimal.
        assert!(!is_minimal_scalar(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 1]));
        assert!(!is_minimal_scalar(&enc(&Value::Float(1.0))));
        assert_eq!(int(300), enc(&Value::Int(300)));
    }

    #[test]
    fn python_tuples_sets_and_bytearrays_round_trip() {
        let values = [
            Value::Tuple(vec![Value::Int(1), Value::Tuple(vec![])]),
            Value::Set(vec![Value::Str("a".into())]),
            Value::FrozenSet(vec![Value::Int(3), Value::Int(4)]),
            Value::ByteArray(b"ba".to_vec()),
        ];
        for v in values {
            assert_eq!(decode(&v.to_bytes()).unwrap(), v);
        }
    }

    #[test]
    fn nesting_through_tuples_is_bounded_like_arrays() {
        let mut deep = Value::Nil;
        for _ in 0..MAX_DEPTH + 1 {
            deep = Value::Tuple(vec![deep]);
        }
        assert!(decode(&deep.to_bytes()).is_err());
        let mut mixed = Value::Nil;
        for _ in 0..MAX_DEPTH / 2 + 1 {
            mixed = Value::Array(vec![Value::Tuple(vec![mixed])]);
        }
        assert!(
            decode(&mixed.to_bytes()).is_err(),
            "each level counts, inside or out"
        );
        let mut fine = Value::Nil;
        for _ in 0..MAX_DEPTH / 4 {
            fine = Value::Array(vec![Value::Tuple(vec![fine])]);
        }
        assert_eq!(decode(&fine.to_bytes()).unwrap(), fine);
    }
}

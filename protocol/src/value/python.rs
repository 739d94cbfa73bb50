//! Python's meaning of values: equality (`1 == 1.0 == True`), ordering and its
//! `TypeError`s, hashing (the canonical form of a dict key) and `repr`. The node decodes a
//! stored value only when one of these needs to look inside it.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Write as _;

use super::msgpack::{
    decode, encode_int, is_minimal_scalar, Head, Reader, EXT_BIGINT, EXT_BYTEARRAY, EXT_FROZENSET,
    EXT_PICKLE,
};
use super::Value;
use crate::error::RemoteError;
use crate::pickle::{ordered, Ordered};

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
            Value::Array(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Set(_) => "set",
            Value::FrozenSet(_) => "frozenset",
            Value::ByteArray(_) => "bytearray",
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
            Value::Array(a) | Value::Tuple(a) | Value::Set(a) | Value::FrozenSet(a) => {
                !a.is_empty()
            }
            Value::ByteArray(b) => !b.is_empty(),
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
            // A tuple from Python and an array from Rust (whose tuples are arrays) compare
            // item by item; Python would call a list and a tuple unequal.
            (Value::Array(a) | Value::Tuple(a), Value::Array(b) | Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y))
            }
            // Equal when they hold the same distinct items, found by their key forms as
            // Python finds them by hash: a set from the wire may repeat an item (`{True, 1}`
            // is one item), and matching items pairwise would cost n² per level, exponential
            // in the nesting.
            (Value::Set(a) | Value::FrozenSet(a), Value::Set(b) | Value::FrozenSet(b)) => {
                match (distinct_keys(a), distinct_keys(b)) {
                    (Some(x), Some(y)) => x == y,
                    // Unhashable items (only a non-Python peer sends them): in order.
                    _ => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y)),
                }
            }
            (Value::Bytes(a) | Value::ByteArray(a), Value::Bytes(b) | Value::ByteArray(b)) => {
                a == b
            }
            // As dicts: the same keys (by key form, as Python finds them by hash), each with
            // an equal value. A MessagePack map may repeat a key; the last one counts, as in
            // a Python dict display. Each value is compared once, so nesting costs no more
            // than the values' size.
            (Value::Map(a), Value::Map(b)) => match (dict_entries(a), dict_entries(b)) {
                (Some(x), Some(y)) => {
                    x.len() == y.len()
                        && x.iter()
                            .zip(&y)
                            .all(|((ka, va), (kb, vb))| ka == kb && va.py_eq(vb))
                }
                // Unhashable keys (only a non-Python peer sends them): pairs in order.
                _ => {
                    a.len() == b.len()
                        && a.iter()
                            .zip(b)
                            .all(|((ka, va), (kb, vb))| ka.py_eq(kb) && va.py_eq(vb))
                }
            },
            (Value::Slice(a, b, c), Value::Slice(d, e, f)) => (a, b, c) == (d, e, f),
            (Value::Ext(t1, d1), Value::Ext(t2, d2)) => t1 == t2 && d1 == d2,
            _ => false,
        }
    }

    /// Python `<` ordering; a `TypeError` where Python has none (e.g. `str < int`, `None`).
    pub fn py_cmp(&self, other: &Value) -> Result<Ordering, RemoteError> {
        self.py_cmp_known(other, None)
    }

    /// The form `<` reads from a value kept as its pickle, if the node can order it
    /// (`pickle/order.rs`); read once per item, it spares a sort one pickle parse per
    /// comparison ([`Value::py_cmp_known`]).
    pub fn order_form(&self) -> Option<Ordered> {
        match self {
            Value::Ext(EXT_PICKLE, body) => ordered(body),
            _ => None,
        }
    }

    /// [`Value::py_cmp`], given the [`Value::order_form`]s of both values when the caller
    /// read them already.
    pub fn py_cmp_known(
        &self,
        other: &Value,
        forms: Option<(&Option<Ordered>, &Option<Ordered>)>,
    ) -> Result<Ordering, RemoteError> {
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            // NaN compares as neither less nor greater: treat as equal for sorting.
            return Ok(a.cmp_num(&b).unwrap_or(Ordering::Equal));
        }
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Ok(a.cmp(b)),
            (Value::Bytes(a), Value::Bytes(b)) => Ok(a.cmp(b)),
            (Value::Array(a), Value::Array(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                for (x, y) in a.iter().zip(b) {
                    if !x.py_eq(y) {
                        return x.py_cmp(y);
                    }
                }
                Ok(a.len().cmp(&b.len()))
            }
            _ => match forms {
                Some((mine, theirs)) => self.opaque_cmp(other, mine, theirs),
                None => self.opaque_cmp(other, &self.order_form(), &other.order_form()),
            },
        }
    }

    /// `<` where one side is a value kept as its pickle: the ones the node can order (big
    /// ints, `datetime`'s types; `pickle/order.rs`), among themselves and, for big ints,
    /// against numbers. Anything else is Python's `TypeError`.
    ///
    /// Values Python calls equal in different forms (one instant at two UTC offsets, a fold,
    /// `2**130` and `2.0**130`) are unequal to the node's `==`, which compares stored forms;
    /// so that `<` agrees with `==`, such a tie is broken by the stored form (numbers
    /// first, then pickles by their bytes), where Python would keep their order.
    fn opaque_cmp(
        &self,
        other: &Value,
        mine: &Option<Ordered>,
        theirs: &Option<Ordered>,
    ) -> Result<Ordering, RemoteError> {
        let against_number = |o: &Ordered, n: &Value| match n.number()? {
            Number::Int(_) => o.cmp_int(),
            Number::Float(f) => o.cmp_float(f),
        };
        let order = match (mine, theirs, self, other) {
            (Some(a), Some(b), Value::Ext(_, x), Value::Ext(_, y)) => {
                let order = a.py_cmp(b).map_err(RemoteError::type_error)?;
                Some(order.then_with(|| x.cmp(y)))
            }
            (Some(a), None, ..) => against_number(a, other).map(|o| o.then(Ordering::Greater)),
            (None, Some(b), ..) => {
                against_number(b, self).map(|o| o.reverse().then(Ordering::Less))
            }
            _ => None,
        };
        let name =
            |v: &Value, o: &Option<Ordered>| o.as_ref().map_or(v.type_name(), Ordered::type_name);
        order.ok_or_else(|| {
            RemoteError::type_error(format!(
                "'<' not supported between instances of '{}' and '{}'",
                name(self, mine),
                name(other, theirs)
            ))
        })
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
            // A Python tuple is the same key as a Rust tuple (an array).
            Value::Array(items) | Value::Tuple(items) => {
                let _ = rmp::encode::write_array_len(out, items.len() as u32);
                for item in items {
                    item.encode_key(out)?;
                }
            }
            // Order does not matter: the items' canonical forms, sorted.
            Value::FrozenSet(items) => {
                let mut keys = items
                    .iter()
                    .map(|item| {
                        let mut key = Vec::new();
                        item.encode_key(&mut key).map(|()| key)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                keys.sort_unstable();
                keys.dedup();
                let mut body = Vec::new();
                let _ = rmp::encode::write_array_len(&mut body, keys.len() as u32);
                keys.iter().for_each(|k| body.extend_from_slice(k));
                let _ = rmp::encode::write_ext_meta(out, body.len() as u32, EXT_FROZENSET);
                out.extend_from_slice(&body);
            }
            Value::Map(_) | Value::Slice(..) | Value::Set(_) | Value::ByteArray(_) => {
                return Err(RemoteError::type_error(format!(
                    "unhashable type: '{}'",
                    self.type_name()
                )))
            }
            other => other.encode(out),
        }
        Ok(())
    }

    /// Python's `repr()`: `str()` of a container proxy and error messages (`KeyError: 'x'`).
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
            Value::Float(f) => write_float_repr(s, *f),
            Value::Str(v) => write_str_repr(s, v),
            Value::Bytes(b) => write_bytes_repr(s, b),
            Value::Array(items) => {
                s.push('[');
                write_items(s, items);
                s.push(']');
            }
            Value::Tuple(items) => {
                s.push('(');
                write_items(s, items);
                if items.len() == 1 {
                    s.push(',');
                }
                s.push(')');
            }
            Value::Set(items) if items.is_empty() => s.push_str("set()"),
            Value::Set(items) => {
                s.push('{');
                write_items(s, items);
                s.push('}');
            }
            Value::FrozenSet(items) if items.is_empty() => s.push_str("frozenset()"),
            Value::FrozenSet(items) => {
                s.push_str("frozenset({");
                write_items(s, items);
                s.push_str("})");
            }
            Value::ByteArray(b) => {
                s.push_str("bytearray(");
                Value::Bytes(b.clone()).write_repr(s);
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

/// Python's `repr(float)`: the shortest digits that read back, in positional notation
/// from 1e-4 up to 1e16 and as `1e+16`, `1e-05` outside it.
fn write_float_repr(s: &mut String, f: f64) {
    if f.is_nan() {
        return s.push_str("nan");
    }
    if f.is_infinite() {
        return s.push_str(if f > 0.0 { "inf" } else { "-inf" });
    }
    // Rust's `{:e}` gives the same shortest digits: `-1.25e-7`, `0e0`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // Where the decimal point goes, counted from the first digit.
    let point = exp + 1;
    s.push_str(sign);
    if -4 < point && point <= 16 {
        let n = digits.len() as i32;
        if point <= 0 {
            s.push_str("0.");
            s.extend(std::iter::repeat_n('0', (-point) as usize));
            s.push_str(&digits);
        } else if point >= n {
            s.push_str(&digits);
            s.extend(std::iter::repeat_n('0', (point - n) as usize));
            s.push_str(".0");
        } else {
            s.push_str(&digits[..point as usize]);
            s.push('.');
            s.push_str(&digits[point as usize..]);
        }
    } else {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        let _ = write!(s, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Python's `repr(str)`: single quotes unless the text holds one and no double; the quote,
/// backslashes, `\t`, `\n`, `\r` and characters that do not print escaped.
fn write_str_repr(s: &mut String, v: &str) {
    let q = if v.contains('\'') && !v.contains('"') {
        '"'
    } else {
        '\''
    };
    s.push(q);
    for c in v.chars() {
        match c {
            c if c == q || c == '\\' => {
                s.push('\\');
                s.push(c);
            }
            '\t' => s.push_str("\\t"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            c if c.is_ascii() && (c < ' ' || c == '\x7f') => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii() || prints(c) => s.push(c),
            c if (c as u32) <= 0xff => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c if (c as u32) <= 0xffff => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(s, "\\U{:08x}", c as u32);
            }
        }
    }
    s.push(q);
}

/// Whether Python prints a non-ASCII character as it is (Unicode's letters, marks, numbers,
/// punctuation and symbols) rather than escaped (controls, format characters, separators,
/// unassigned). Rust's `escape_debug` draws the same line; after another character it
/// leaves combining marks alone, as Python does.
fn prints(c: char) -> bool {
    let mut buf = [0u8; 8];
    buf[0] = b'a';
    let len = 1 + c.encode_utf8(&mut buf[1..]).len();
    let text = std::str::from_utf8(&buf[..len]).unwrap_or("a");
    text.escape_debug().eq(text.chars())
}

/// Python's `repr(bytes)`: `b'...'` (double quotes if it holds a single quote and no
/// double), printable ASCII as it is, `\t`, `\n`, `\r`, and `\xNN` for the rest.
fn write_bytes_repr(s: &mut String, b: &[u8]) {
    let q = if b.contains(&b'\'') && !b.contains(&b'"') {
        b'"'
    } else {
        b'\''
    };
    s.push('b');
    s.push(q as char);
    for &c in b {
        match c {
            c if c == q || c == b'\\' => {
                s.push('\\');
                s.push(c as char);
            }
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b' '..=b'~' => s.push(c as char),
            c => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push(q as char);
}

/// Items separated by `, `.
fn write_items(s: &mut String, items: &[Value]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        item.write_repr(s);
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

/// The key forms of a set's items, sorted and without repeats; `None` if one is unhashable.
fn distinct_keys(items: &[Value]) -> Option<Vec<Vec<u8>>> {
    let mut keys = items.iter().map(key_form).collect::<Option<Vec<_>>>()?;
    keys.sort_unstable();
    keys.dedup();
    Some(keys)
}

/// A map's entries as a Python dict holds them: by key form, sorted, the last value of a
/// repeated key winning; `None` if a key is unhashable.
fn dict_entries(entries: &[(Value, Value)]) -> Option<std::collections::BTreeMap<Vec<u8>, &Value>> {
    entries
        .iter()
        .map(|(k, v)| key_form(k).map(|k| (k, v)))
        .collect()
}

/// The canonical key encoding of a value, `None` when it is unhashable.
fn key_form(v: &Value) -> Option<Vec<u8>> {
    let mut key = Vec::new();
    v.encode_key(&mut key).ok().map(|()| key)
}

/// The canonical form of an encoded dict key: equal Python keys have equal canonical bytes.
/// Strings and small integers are usually canonical already and are returned as they are.
pub fn canonical_key(raw: &[u8]) -> Result<Cow<'_, [u8]>, RemoteError> {
    if is_minimal_scalar(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let value = decode(raw)?;
    let mut out = Vec::with_capacity(raw.len());
    value.encode_key(&mut out)?;
    if out[..] == raw[..] {
        Ok(Cow::Borrowed(raw))
    } else {
        Ok(Cow::Owned(out))
    }
}

/// The `list.insert` index that puts an item taken by `list.pop(index)` back where it
/// was (a client's undo, the pickle dialect's give-back). From the end the list is one
/// shorter by then: `pop(-2)` of `[a, b, c]` leaves `[a, c]`, and `b` goes back at `-1`;
/// what `pop(-1)` took goes back at the end (an index past the end appends).
pub fn reinsert_index(pop_index: i64) -> i64 {
    match pop_index {
        -1 => i64::MAX,
        i if i < 0 => i + 1,
        i => i,
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
            // `b'x' == bytearray(b'x')` in Python.
            (Ok(Head::Bin(x)), Ok(Head::Ext(EXT_BYTEARRAY, y)))
            | (Ok(Head::Ext(EXT_BYTEARRAY, x)), Ok(Head::Bin(y))) => x == y,
            (Ok(Head::Nil), _) | (_, Ok(Head::Nil)) => false,
            (Ok(Head::Str(_) | Head::Bin(_)), _) | (_, Ok(Head::Str(_) | Head::Bin(_))) => false,
            // A number never equals a container or an extension value, and the reverse: no
            // decode needed. An EXT_BIGINT extension is a number, though, so it is decoded.
            (Ok(x), Ok(y)) if is_number(&x) && is_object(&y) || is_object(&x) && is_number(&y) => {
                false
            }
            _ => match (&self.value, decode(candidate)) {
                (Some(x), Ok(y)) => x.py_eq(&y),
                _ => false,
            },
        }
    }
}

fn is_number(head: &Head) -> bool {
    matches!(head, Head::Int(_) | Head::Float(_) | Head::Bool(_))
}

/// A container or an extension value other than a big integer: never equal to a number.
fn is_object(head: &Head) -> bool {
    match head {
        Head::Array(_) | Head::Map(_) => true,
        Head::Ext(ty, _) => *ty != EXT_BIGINT,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn enc(v: &Value) -> Bytes {
        v.to_bytes()
    }

    /// `<` on values kept as pickles agrees with `==`, which compares stored forms: values
    /// Python calls equal in two forms are ordered by their forms, never `Equal`.
    #[test]
    fn opaque_order_agrees_with_equality() {
        use crate::pickle::{dumps, global, Pickle};
        let td = |seconds: i128| Pickle::Reduce {
            callable: Box::new(global("datetime", "timedelta")),
            args: Box::new(Pickle::Tuple(vec![
                Pickle::Int(0),
                Pickle::Int(seconds),
                Pickle::Int(0),
            ])),
        };
        // 12:00 at UTC+2 and 10:00 at UTC: one instant.
        let at = |hour: u8, offset: i128| {
            let tz = Pickle::Reduce {
                callable: Box::new(global("datetime", "timezone")),
                args: Box::new(Pickle::Tuple(vec![td(offset)])),
            };
            let state = vec![0x07, 0xe8, 1, 2, hour, 0, 0, 0, 0, 0];
            Value::Ext(
                EXT_PICKLE,
                dumps(&Pickle::Reduce {
                    callable: Box::new(global("datetime", "datetime")),
                    args: Box::new(Pickle::Tuple(vec![Pickle::Bytes(state), tz])),
                }),
            )
        };
        let big = Value::Ext(
            EXT_PICKLE,
            dumps(&Pickle::BigInt([vec![0; 16], vec![4]].concat())),
        );
        let pairs = [
            (at(12, 7200), at(10, 0)),
            (big.clone(), Value::Float(2f64.powi(130))),
        ];
        for (a, b) in pairs {
            assert!(!a.py_eq(&b));
            let order = a.py_cmp(&b).unwrap();
            assert_ne!(order, Ordering::Equal, "{a:?} {b:?}");
            assert_eq!(b.py_cmp(&a).unwrap(), order.reverse());
        }
        assert_eq!(big.py_cmp(&big.clone()).unwrap(), Ordering::Equal);
        assert_eq!(at(9, 0).py_cmp(&at(12, 7200)).unwrap(), Ordering::Less);
    }

    #[test]
    fn equal_python_keys_share_a_canonical_form() {
        let one_encoded = enc(&Value::Int(1));
        let one = canonical_key(&one_encoded).unwrap();
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
    fn map_equality_is_symmetric_with_repeated_keys() {
        // Found by the value fuzz target: every pair of `a` was in `b`, but not the reverse.
        let pair = |k: i128, v: i128| (Value::Int(k), Value::Int(v));
        let repeated = Value::Map(vec![pair(0, 0), pair(0, 0)]);
        let distinct = Value::Map(vec![pair(0, 0), pair(1, 1)]);
        assert!(!repeated.py_eq(&distinct));
        assert!(!distinct.py_eq(&repeated));
        let swapped = Value::Map(vec![pair(1, 1), (Value::Float(0.0), Value::Bool(false))]);
        assert!(distinct.py_eq(&swapped) && swapped.py_eq(&distinct));
        assert!(repeated.py_eq(&repeated.clone()));
        // Comparing nested maps costs one comparison per level, not two (a chain 128 deep).
        let mut deep = Value::Nil;
        for _ in 0..128 {
            deep = Value::Map(vec![(Value::Nil, deep)]);
        }
        assert!(deep.py_eq(&deep.clone()));
    }

    #[test]
    fn python_tuples_are_the_same_keys_as_arrays_and_sets_are_refused() {
        let enc = |v: Value| v.to_bytes();
        let tuple = Value::Tuple(vec![Value::Int(1), Value::Str("a".into())]);
        let array = Value::Array(vec![Value::Float(1.0), Value::Str("a".into())]);
        assert_eq!(
            canonical_key(&enc(tuple.clone())).unwrap(),
            canonical_key(&enc(array)).unwrap()
        );
        let f1 = Value::FrozenSet(vec![Value::Int(1), Value::Int(2)]);
        let f2 = Value::FrozenSet(vec![Value::Int(2), Value::Float(1.0)]);
        assert_eq!(
            canonical_key(&enc(f1.clone())).unwrap(),
            canonical_key(&enc(f2)).unwrap()
        );
        assert!(f1.py_eq(&Value::Set(vec![Value::Int(2), Value::Int(1)])));
        // A repeated item is one item, as in Python's `frozenset([True, 1]) == {1}`.
        let repeated = Value::FrozenSet(vec![Value::Bool(true), Value::Int(1)]);
        assert!(repeated.py_eq(&Value::FrozenSet(vec![Value::Int(1)])));
        assert!(Value::FrozenSet(vec![Value::Int(1)]).py_eq(&repeated));
        assert_eq!(
            canonical_key(&enc(repeated)).unwrap(),
            canonical_key(&enc(Value::FrozenSet(vec![Value::Int(1)]))).unwrap()
        );
        assert!(!f1.py_eq(&Value::FrozenSet(vec![Value::Int(1)])));
        let e = canonical_key(&enc(Value::Set(vec![]))).unwrap_err();
        assert_eq!(e.message, "unhashable type: 'set'");
        assert!(Value::ByteArray(b"x".to_vec()).py_eq(&Value::Bytes(b"x".to_vec())));
        assert_eq!(tuple.type_name(), "tuple");
    }

    /// Each expected text is what CPython 3.11 prints for the same value.
    #[test]
    fn floats_strs_and_bytes_repr_as_python_does() {
        assert_eq!(Value::Float(1e+16_f64).py_repr(), "1e+16");
        assert_eq!(
            Value::Float(1000000000000000.0_f64).py_repr(),
            "1000000000000000.0"
        );
        assert_eq!(
            Value::Float(1.2345678901234568e+17_f64).py_repr(),
            "1.2345678901234568e+17"
        );
        assert_eq!(Value::Float(1e-05_f64).py_repr(), "1e-05");
        assert_eq!(Value::Float(0.0001_f64).py_repr(), "0.0001");
        assert_eq!(Value::Float(0.0001234_f64).py_repr(), "0.0001234");
        assert_eq!(Value::Float(1.5_f64).py_repr(), "1.5");
        assert_eq!(Value::Float(-0.0_f64).py_repr(), "-0.0");
        assert_eq!(Value::Float(0.0_f64).py_repr(), "0.0");
        assert_eq!(Value::Float(1e+100_f64).py_repr(), "1e+100");
        assert_eq!(Value::Float(-2.5e-300_f64).py_repr(), "-2.5e-300");
        assert_eq!(Value::Float(5e-324_f64).py_repr(), "5e-324");
        assert_eq!(
            Value::Float(1.7976931348623157e+308_f64).py_repr(),
            "1.7976931348623157e+308"
        );
        assert_eq!(Value::Float(0.1_f64).py_repr(), "0.1");
        assert_eq!(Value::Float(100.0_f64).py_repr(), "100.0");
        assert_eq!(Value::Float(12345.678_f64).py_repr(), "12345.678");
        assert_eq!(Value::Float(1e+22_f64).py_repr(), "1e+22");
        assert_eq!(Value::Float(f64::NAN).py_repr(), "nan");
        assert_eq!(Value::Float(f64::NEG_INFINITY).py_repr(), "-inf");
        assert_eq!(
            Value::Str("\u{0}\u{9}\u{a}\u{d}\u{7f}".into()).py_repr(),
            "'\\x00\\t\\n\\r\\x7f'"
        );
        assert_eq!(Value::Str("it's".into()).py_repr(), "\"it's\"");
        assert_eq!(Value::Str("a'\"".into()).py_repr(), "'a\\'\"'");
        assert_eq!(Value::Str("\\".into()).py_repr(), "'\\\\'");
        assert_eq!(
            Value::Str("\u{e9}\u{6f22}\u{1f600}".into()).py_repr(),
            "'\u{e9}\u{6f22}\u{1f600}'"
        );
        assert_eq!(
            Value::Str("\u{200b}\u{a0}\u{301}a\u{301}".into()).py_repr(),
            "'\\u200b\\xa0\u{301}a\u{301}'"
        );
        assert_eq!(
            Value::Str("\u{85}\u{d7ff}\u{e000}\u{e0001}".into()).py_repr(),
            "'\\x85\\ud7ff\\ue000\\U000e0001'"
        );
        assert_eq!(Value::Bytes(b"\x27".to_vec()).py_repr(), "b\"'\"");
        assert_eq!(Value::Bytes(b"\x22".to_vec()).py_repr(), "b'\"'");
        assert_eq!(Value::Bytes(b"\x27\x22".to_vec()).py_repr(), "b'\\'\"'");
        assert_eq!(
            Value::Bytes(b"\x09\x0a\x0d\x00\x7f\xff".to_vec()).py_repr(),
            "b'\\t\\n\\r\\x00\\x7f\\xff'"
        );
        assert_eq!(
            Value::Bytes(b"\x5c\x6f\x6b".to_vec()).py_repr(),
            "b'\\\\ok'"
        );
    }

    #[test]
    fn bytes_and_a_bytearray_of_the_same_bytes_are_equal_when_searched() {
        let (b, ba) = (Value::Bytes(b"x".to_vec()), Value::ByteArray(b"x".to_vec()));
        assert!(Needle::new(&enc(&b)).matches(&enc(&ba)));
        assert!(Needle::new(&enc(&ba)).matches(&enc(&b)));
        assert!(!Needle::new(&enc(&b)).matches(&enc(&Value::ByteArray(b"y".to_vec()))));
        assert!(!Needle::new(&enc(&Value::Str("x".into()))).matches(&enc(&ba)));
    }

    #[test]
    fn repr_matches_python_for_common_keys() {
        assert_eq!(Value::Str("it's".into()).py_repr(), "\"it's\"");
        assert_eq!(Value::Str("a'\"".into()).py_repr(), "'a\\'\"'");
        assert_eq!(Value::Float(1.0).py_repr(), "1.0");
        assert_eq!(Value::Array(vec![Value::Int(1)]).py_repr(), "[1]");
        assert_eq!(Value::Tuple(vec![Value::Int(1)]).py_repr(), "(1,)");
        assert_eq!(Value::FrozenSet(vec![]).py_repr(), "frozenset()");
        assert_eq!(Value::Nil.py_repr(), "None");
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
        assert!(!py_eq_encoded(
            &e(Value::Ext(5, vec![0])),
            &e(Value::Int(0))
        ));
    }

    #[test]
    fn big_integers_are_numbers_not_objects() {
        // Found by the value fuzz target: an EXT_BIGINT extension was taken for an opaque
        // object, never equal to a number, so `2**70` was not found by `index(2.0**70)`.
        let e = |v: Value| v.to_bytes();
        let big = e(Value::Int(1 << 70));
        assert!(py_eq_encoded(&big, &e(Value::Float((1u128 << 70) as f64))));
        assert!(py_eq_encoded(&e(Value::Float((1u128 << 70) as f64)), &big));
        assert!(!py_eq_encoded(&big, &e(Value::Float(1.5))));
        // A non-minimal big-integer encoding of 0 equals 0.
        let zero = [0xd4, EXT_BIGINT as u8, 0x00];
        assert!(py_eq_encoded(&zero, &[0x00]));
        assert!(py_eq_encoded(&[0x00], &zero));
        assert!(py_eq_encoded(&zero, &e(Value::Bool(false))));
    }
}

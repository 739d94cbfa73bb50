//! MessagePack values and Python semantics: `check_value`. The properties: see `mod.rs`.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::value::{
    self, canonical_key, is_minimal_scalar, py_eq_encoded, split_array, split_map, Reader, Value,
    EXT_BIGINT, EXT_BYTEARRAY, EXT_FROZENSET, EXT_SET, EXT_SLICE, EXT_TUPLE, MAX_DEPTH,
};
use crate::ErrorKind;

/// Equality that tells every value apart, NaN and -0.0 included (`Value`'s `==` is f64's).
pub(super) fn same(a: &Value, b: &Value) -> bool {
    let all =
        |x: &[Value], y: &[Value]| x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b));
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y))
        | (Value::Tuple(x), Value::Tuple(y))
        | (Value::Set(x), Value::Set(y))
        | (Value::FrozenSet(x), Value::FrozenSet(y)) => all(x, y),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same(k1, k2) && same(v1, v2))
        }
        _ => a == b,
    }
}

/// The items of a container that holds a list of values.
fn items(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(items) | Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
            Some(items)
        }
        _ => None,
    }
}

fn has_nan(v: &Value) -> bool {
    match v {
        Value::Float(f) => f.is_nan(),
        Value::Map(pairs) => pairs.iter().any(|(k, v)| has_nan(k) || has_nan(v)),
        v => items(v).is_some_and(|items| items.iter().any(has_nan)),
    }
}

/// Python's rule as the value model has it: dicts, sets, bytearrays and slices are
/// unhashable; lists (arrays), tuples and frozensets are when their items are.
fn hashable(v: &Value) -> bool {
    match v {
        Value::Map(_) | Value::Slice(..) | Value::Set(_) | Value::ByteArray(_) => false,
        v => items(v).is_none_or(|items| items.iter().all(hashable)),
    }
}

/// How deep the decoder goes to read `v`: the items of a container (tuples and sets
/// included) and the parts of a slice are one level below it.
fn depth(v: &Value) -> usize {
    match v {
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| 1 + depth(k).max(depth(v)))
            .max()
            .unwrap_or(0),
        Value::Slice(..) => 1,
        v => items(v).map_or(0, |items| {
            items.iter().map(|i| 1 + depth(i)).max().unwrap_or(0)
        }),
    }
}

/// Extension types the decoder reads as values of their own (not opaque `Value::Ext`).
const RESERVED_EXT: [i8; 6] = [
    EXT_BIGINT,
    EXT_SLICE,
    EXT_TUPLE,
    EXT_SET,
    EXT_FROZENSET,
    EXT_BYTEARRAY,
];

/// Deepest value [`gen_value`] builds: past the decoder's limit, within the stack's.
const GEN_NEST: usize = 2 * MAX_DEPTH + 8;

/// Builds a value from bytes: a tag byte, then what that kind needs. An opaque `Ext` never
/// has a type the decoder reads as a value of its own ([`RESERVED_EXT`]).
fn gen_value(bytes: &mut &[u8], budget: &mut usize, nest: usize) -> Value {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> &'a [u8] {
        let n = n.min(bytes.len());
        let (taken, rest) = bytes.split_at(n);
        *bytes = rest;
        taken
    }
    fn byte(bytes: &mut &[u8]) -> u8 {
        take(bytes, 1).first().copied().unwrap_or(0)
    }
    fn wide(bytes: &mut &[u8]) -> i128 {
        let mut full = [0u8; 16];
        let got = take(bytes, 16);
        full[..got.len()].copy_from_slice(got);
        i128::from_be_bytes(full)
    }
    fn part(bytes: &mut &[u8]) -> Option<i128> {
        match byte(bytes) % 3 {
            0 => None,
            1 => Some(byte(bytes) as i8 as i128),
            _ => Some(wide(bytes)),
        }
    }
    if bytes.is_empty() || *budget == 0 || nest >= GEN_NEST {
        return Value::Nil;
    }
    *budget -= 1;
    match byte(bytes) % 17 {
        0 => Value::Nil,
        1 => Value::Bool(byte(bytes) & 1 != 0),
        2 => Value::Int(byte(bytes) as i8 as i128),
        3 => {
            // Around the edges between encodings: a shift of a 64-bit pattern.
            let shift = byte(bytes) % 128;
            let base = i64::from_be_bytes(take(bytes, 8).try_into().unwrap_or([0x7f; 8]));
            Value::Int((base as i128).wrapping_shl(shift as u32))
        }
        4 => Value::Int(wide(bytes)),
        5 => {
            let bits = take(bytes, 8);
            let mut full = [0u8; 8];
            full[..bits.len()].copy_from_slice(bits);
            Value::Float(f64::from_bits(u64::from_be_bytes(full)))
        }
        6 => {
            let n = byte(bytes) as usize * 2;
            Value::Str(String::from_utf8_lossy(take(bytes, n)).into_owned())
        }
        7 => {
            let n = byte(bytes) as usize * 2;
            Value::Bytes(take(bytes, n).to_vec())
        }
        8 => {
            let n = byte(bytes) % 6;
            Value::Array((0..n).map(|_| gen_value(bytes, budget, nest + 1)).collect())
        }
        9 => {
            let n = byte(bytes) % 4;
            Value::Map(
                (0..n)
                    .map(|_| {
                        (
                            gen_value(bytes, budget, nest + 1),
                            gen_value(bytes, budget, nest + 1),
                        )
                    })
                    .collect(),
            )
        }
        10 => Value::Slice(part(bytes), part(bytes), part(bytes)),
        11 => {
            let ty = byte(bytes) as i8;
            let ty = if RESERVED_EXT.contains(&ty) {
                ty.wrapping_add(16)
            } else {
                ty
            };
            let n = byte(bytes) as usize % 20;
            Value::Ext(ty, take(bytes, n).to_vec())
        }
        12..=14 => {
            let kind = byte(bytes);
            let n = byte(bytes) % 5;
            let items = (0..n).map(|_| gen_value(bytes, budget, nest + 1)).collect();
            match kind % 3 {
                0 => Value::Tuple(items),
                1 => Value::Set(items),
                _ => Value::FrozenSet(items),
            }
        }
        15 => {
            let n = byte(bytes) as usize;
            Value::ByteArray(take(bytes, n).to_vec())
        }
        _ => {
            // Deep nesting: a value inside this many one-item arrays, maps or tuples.
            let levels = (byte(bytes) as usize).min(GEN_NEST - nest);
            let mut v = gen_value(bytes, budget, nest + levels);
            for _ in 0..levels {
                v = match levels % 3 {
                    0 => Value::Array(vec![v]),
                    1 => Value::Map(vec![(Value::Nil, v)]),
                    _ => Value::Tuple(vec![v]),
                };
            }
            v
        }
    }
}

/// What holds for `raw`, an encoding [`value::decode`] read as `v`.
pub(super) fn check_decoded(raw: &[u8], v: &Value) {
    assert_eq!(
        Reader::new(raw).skip_value(),
        Ok(0..raw.len()),
        "skip disagrees"
    );
    assert!(depth(v) <= MAX_DEPTH, "decoded nesting {} deep", depth(v));
    // The encoding of a decoded value decodes to it, and encoding again changes nothing.
    let encoded = v.to_bytes();
    let back = value::decode(&encoded).expect("an encoded value decodes");
    assert!(same(v, &back), "{v:?} came back as {back:?}");
    assert_eq!(back.to_bytes(), encoded, "encoding is not stable");
    if is_minimal_scalar(raw) {
        assert_eq!(&encoded[..], raw, "a minimal scalar re-encoded differently");
    }
    // Python's view of it.
    let _ = (v.py_repr(), v.type_name(), v.truthy(), v.as_f64());
    if let Value::Str(s) = v {
        let repr = v.py_repr();
        assert!(repr.len() >= s.len() + 2);
    }
    let raw = Bytes::copy_from_slice(raw);
    match canonical_key(&raw) {
        Ok(key) => {
            assert!(hashable(v), "{v:?} is unhashable but got a key");
            let k = value::decode(&key).expect("a canonical key decodes");
            if !has_nan(v) {
                assert!(k.py_eq(v), "the key {k:?} is not == {v:?}");
            }
            assert_eq!(
                canonical_key(&key),
                Ok(key.clone()),
                "canonical_key not idempotent"
            );
        }
        Err(e) => {
            assert!(!hashable(v), "{v:?} is hashable but got {e}");
            assert_eq!(e.kind, ErrorKind::TypeError);
        }
    }
    if !has_nan(v) {
        assert!(v.py_eq(v), "{v:?} != itself");
        assert!(py_eq_encoded(&raw, &raw));
        if let Ok(order) = v.py_cmp(v) {
            assert_eq!(
                order,
                Ordering::Equal,
                "{v:?} is not equal to itself in order"
            );
        }
    }
    match (split_array(&raw), v) {
        (Ok(Some(items)), Value::Array(vs)) => {
            assert_eq!(items.len(), vs.len());
            for (item, v) in items.iter().zip(vs) {
                assert!(same(&value::decode(item).expect("an item decodes"), v));
            }
        }
        (Ok(None), v) => assert!(!matches!(v, Value::Array(_))),
        (got, v) => panic!("split_array gave {got:?} for {v:?}"),
    }
    match (split_map(&raw), v) {
        (Ok(Some(entries)), Value::Map(vs)) => {
            assert_eq!(entries.len(), vs.len());
            for ((k, val), (vk, vv)) in entries.iter().zip(vs) {
                assert!(same(&value::decode(k).expect("a key decodes"), vk));
                assert!(same(&value::decode(val).expect("a value decodes"), vv));
            }
        }
        (Ok(None), v) => assert!(!matches!(v, Value::Map(_))),
        (got, v) => panic!("split_map gave {got:?} for {v:?}"),
    }
}

/// Python's equality, ordering and hashing on two decoded values agree with each other.
fn check_pair(a_raw: &[u8], a: &Value, b_raw: &[u8], b: &Value) {
    if has_nan(a) || has_nan(b) {
        return;
    }
    let eq = a.py_eq(b);
    assert_eq!(eq, b.py_eq(a), "== is not symmetric for {a:?} and {b:?}");
    assert_eq!(
        py_eq_encoded(a_raw, b_raw),
        eq,
        "py_eq_encoded disagrees with == for {a:?} and {b:?}"
    );
    if hashable(a) && hashable(b) {
        let ka = canonical_key(a_raw).expect("hashable");
        let kb = canonical_key(b_raw).expect("hashable");
        assert_eq!(ka == kb, eq, "keys and == disagree for {a:?} and {b:?}");
    }
    match (a.py_cmp(b), b.py_cmp(a)) {
        (Ok(x), Ok(y)) => {
            assert_eq!(x, y.reverse(), "< is not antisymmetric for {a:?}, {b:?}");
            assert_eq!(
                x == Ordering::Equal,
                eq,
                "< and == disagree for {a:?}, {b:?}"
            );
        }
        (Err(_), Err(_)) => {}
        (x, y) => panic!("{a:?} < {b:?}: {x:?}, but the other way {y:?}"),
    }
}

/// Input: MessagePack bytes, read three ways.
///
/// 1. As one value: decoding never panics, never builds nesting deeper than the limit;
///    a decoded value agrees with skipping, re-encodes to itself, and Python's views of it
///    (repr, key form, equality with itself, splitting) hold; when decoding fails, the key
///    form fails too (unless the bytes are a minimal scalar, taken as their own key).
/// 2. As two values in a row: equality, `py_eq_encoded`, key forms and ordering agree.
/// 3. As instructions that build a value: encoding it and decoding gives it back exactly
///    when its nesting is within the limit, and an error otherwise, at any depth.
pub fn check_value(data: &[u8]) {
    match &value::decode(data) {
        Ok(v) => check_decoded(data, v),
        Err(_) => {
            if !is_minimal_scalar(data) {
                assert!(canonical_key(&Bytes::copy_from_slice(data)).is_err());
            }
        }
    }

    let mut r = Reader::new(data);
    if let (Ok(ra), Ok(rb)) = (r.skip_value(), r.skip_value()) {
        let (a_raw, b_raw) = (&data[ra], &data[rb]);
        if let (Ok(a), Ok(b)) = (value::decode(a_raw), value::decode(b_raw)) {
            check_pair(a_raw, &a, b_raw, &b);
        }
    }

    let mut bytes = data;
    let mut budget = 4096;
    let v = gen_value(&mut bytes, &mut budget, 0);
    let encoded = v.to_bytes();
    match value::decode(&encoded) {
        Ok(back) => {
            assert!(depth(&v) <= MAX_DEPTH, "decoded nesting {} deep", depth(&v));
            assert!(same(&v, &back), "{v:?} came back as {back:?}");
            if let Value::Int(i) = v {
                assert_eq!(value::encode::int(i), encoded);
                assert_eq!(is_minimal_scalar(&encoded), (-32..=127).contains(&i));
            }
            if let Value::Str(s) = &v {
                assert_eq!(value::encode::str(s), encoded);
                assert_eq!(is_minimal_scalar(&encoded), s.len() <= 255);
            }
            check_decoded(&encoded, &back);
        }
        Err(e) => {
            assert!(depth(&v) > MAX_DEPTH, "{v:?} did not decode: {e}");
            assert_eq!(e, value::DecodeError("nesting too deep"));
            assert!(
                Reader::new(&encoded).skip_value().is_ok(),
                "skip is iterative"
            );
        }
    }
}

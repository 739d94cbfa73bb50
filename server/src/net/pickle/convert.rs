//! Python values (decoded pickles) ↔ the node's value model (MessagePack with syncman's
//! extension types), so a dict written by Python is read by Rust and the other way round.
//!
//! | Python | stored as |
//! |---|---|
//! | `None`, `bool`, `int` (to 128 bits), `float`, `str`, `bytes` | nil, bool, int, float, str, bin |
//! | `list` | array |
//! | `dict` | map |
//! | `tuple` | `Value::Tuple`, ext `EXT_TUPLE` (an array inside) |
//! | `set`, `frozenset` | `Value::Set`, `Value::FrozenSet`: ext `EXT_SET`, `EXT_FROZENSET` |
//! | `bytearray` | `Value::ByteArray`: ext `EXT_BYTEARRAY` |
//! | `slice` | `Value::Slice`: ext `EXT_SLICE` |
//! | anything else (user classes, `datetime`, proxies, ints past 128 bits) | ext `EXT_PICKLE`: the object's own pickle, kept as it came and sent back as it was |
//!
//! Arrays a Rust client writes come back to Python as lists.

use syncman_protocol::pickle::{self, Pickle};
use syncman_protocol::value::{decode, DecodeError, EXT_PICKLE, MAX_DECODED_ITEMS, MAX_DEPTH};
use syncman_protocol::{ArgList, RemoteError, Value};

use super::errors::ArgError;
use super::methods::Default;

/// A parameter's Python default as a value.
pub(super) fn default(d: Default) -> Pickle {
    match d {
        Default::Required | Default::None => Pickle::None,
        Default::True => Pickle::Bool(true),
        Default::False => Pickle::Bool(false),
        Default::Int(i) => Pickle::Int(i.into()),
    }
}

/// Deepest nesting a Python value may have: what the value model reads back
/// ([`MAX_DEPTH`]), less room for the containers a reply wraps stored values in (the pairs
/// of `items()` in their list).
const MAX_STORED_DEPTH: usize = MAX_DEPTH - 4;

/// The stored form of a Python value; a `ValueError` when it nests deeper than
/// [`MAX_STORED_DEPTH`], so nothing is stored that could not be read back.
pub(super) fn to_value(p: &Pickle) -> Result<Value, RemoteError> {
    to_value_at(p, 0)
}

fn to_value_at(p: &Pickle, depth: usize) -> Result<Value, RemoteError> {
    if depth > MAX_STORED_DEPTH {
        return Err(RemoteError::value_error(format!(
            "values nested deeper than {MAX_STORED_DEPTH} levels are not supported"
        )));
    }
    let to_values = |items: &[Pickle]| -> Result<Vec<Value>, RemoteError> {
        items.iter().map(|i| to_value_at(i, depth + 1)).collect()
    };
    Ok(match p {
        Pickle::None => Value::Nil,
        Pickle::Bool(b) => Value::Bool(*b),
        Pickle::Int(i) => Value::Int(*i),
        Pickle::Float(f) => Value::Float(*f),
        Pickle::Str(s) => Value::Str(s.clone()),
        Pickle::Bytes(b) => Value::Bytes(b.clone()),
        Pickle::ByteArray(b) => Value::ByteArray(b.clone()),
        Pickle::List(items) => Value::Array(to_values(items)?),
        Pickle::Tuple(items) => Value::Tuple(to_values(items)?),
        Pickle::Set(items) => Value::Set(to_values(items)?),
        Pickle::FrozenSet(items) => Value::FrozenSet(to_values(items)?),
        Pickle::Dict(pairs) => Value::Map(
            pairs
                .iter()
                .map(|(k, v)| Ok((to_value_at(k, depth + 1)?, to_value_at(v, depth + 1)?)))
                .collect::<Result<_, RemoteError>>()?,
        ),
        other => match pickle::as_slice(other) {
            Some(s) => Value::Slice(s.start, s.stop, s.step),
            // Kept whole, as the client pickled it.
            None => Value::Ext(EXT_PICKLE, pickle::dumps(other)),
        },
    })
}

/// The Python value of a stored one, built from at most `room` items (what it builds is
/// taken from `room`). A stored Python object is one item of the stored value but counts
/// every item of its tree: a value of many such objects must not build a far larger tree
/// than a value of plain items could.
fn from_value(v: Value, room: &mut usize) -> Result<Pickle, NotSent> {
    take(room, 1)?;
    Ok(match v {
        Value::Nil => Pickle::None,
        Value::Bool(b) => Pickle::Bool(b),
        Value::Int(i) => Pickle::Int(i),
        Value::Float(f) => Pickle::Float(f),
        Value::Str(s) => Pickle::Str(s),
        Value::Bytes(b) => Pickle::Bytes(b),
        Value::Array(items) => Pickle::List(from_values(items, room)?),
        Value::Map(pairs) => {
            let mut out = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                out.push((from_value(k, room)?, from_value(v, room)?));
            }
            Pickle::Dict(out)
        }
        Value::Slice(start, stop, step) => slice(start, stop, step),
        Value::Tuple(items) => Pickle::Tuple(from_values(items, room)?),
        Value::Set(items) => Pickle::Set(from_values(items, room)?),
        Value::FrozenSet(items) => Pickle::FrozenSet(from_values(items, room)?),
        Value::ByteArray(b) => Pickle::ByteArray(b),
        // Checked on the way out too: a native client may have stored any extension 7 value,
        // and a CPython reader would run what it names.
        Value::Ext(EXT_PICKLE, body) => {
            let stored = pickle::loads(&body, &pickle::Limits::default()).map_err(|e| {
                NotSent::Unreadable(format!("a stored Python object cannot be read: {e}"))
            })?;
            take(room, items(&stored) - 1)?;
            pickle::check_globals(&stored).map_err(|e| {
                NotSent::Unreadable(format!("a stored Python object is not sent: {e}"))
            })?;
            stored
        }
        // Another language's extension value: Python sees its bytes.
        Value::Ext(_, body) => Pickle::Bytes(body),
    })
}

fn from_values(items: Vec<Value>, room: &mut usize) -> Result<Vec<Pickle>, NotSent> {
    items.into_iter().map(|v| from_value(v, room)).collect()
}

/// Takes `n` items from `room`.
fn take(room: &mut usize, n: usize) -> Result<(), NotSent> {
    *room = room.checked_sub(n).ok_or(NotSent::TooManyItems)?;
    Ok(())
}

/// Items in a tree, itself included.
fn items(p: &Pickle) -> usize {
    let mut n = 1;
    p.for_each_child(|child| n += items(child));
    n
}

/// `slice(start, stop, step)` as CPython pickles it.
fn slice(start: Option<i128>, stop: Option<i128>, step: Option<i128>) -> Pickle {
    let part = |p: Option<i128>| p.map_or(Pickle::None, Pickle::Int);
    Pickle::Reduce {
        callable: Box::new(pickle::global("builtins", "slice")),
        args: Box::new(Pickle::Tuple(vec![part(start), part(stop), part(step)])),
    }
}

/// `(module, name)` of an opaque object's class, for reprs.
pub(super) fn class_of(p: &Pickle) -> Option<(&str, &str)> {
    match p {
        Pickle::Reduce { callable: c, .. }
        | Pickle::NewObj { class: c, .. }
        | Pickle::Obj { class: c, .. } => pickle::as_global(c),
        Pickle::Build { object: o, .. }
        | Pickle::Appends { target: o, .. }
        | Pickle::SetItems { target: o, .. }
        | Pickle::AddItems { target: o, .. } => class_of(o),
        _ => None,
    }
}

/// Why a node's answer is not sent to a Python client as a value.
#[derive(Debug)]
pub(super) enum NotSent {
    /// More items than the node converts at once ([`MAX_DECODED_ITEMS`], counting the
    /// items of stored Python objects): a limit, as a frame's is (`[None] * 2_000_000`).
    TooManyItems,
    /// It cannot be read, or names code: why.
    Unreadable(String),
}

/// A stored value, as sent by the node, as Python's: at most [`MAX_DECODED_ITEMS`] items
/// in all, those of stored Python objects included.
pub(super) fn from_bytes(bytes: &[u8]) -> Result<Pickle, NotSent> {
    let value = decode(bytes).map_err(|e: DecodeError| match e {
        DecodeError::TOO_MANY_ITEMS => NotSent::TooManyItems,
        e => NotSent::Unreadable(e.to_string()),
    })?;
    let mut room = MAX_DECODED_ITEMS;
    from_value(value, &mut room)
}

/// A call's arguments for the node.
pub(super) fn to_args(args: &[Pickle]) -> Result<ArgList, RemoteError> {
    let values = args.iter().map(to_value).collect::<Result<Vec<_>, _>>()?;
    Ok(ArgList::of(&values))
}

/// Python's `TypeError` for a key that cannot be hashed.
pub(super) fn check_hashable(p: &Pickle) -> Result<(), String> {
    let unhashable = |name: &str| Err(format!("unhashable type: '{name}'"));
    match p {
        Pickle::List(_) => unhashable("list"),
        Pickle::Dict(_) => unhashable("dict"),
        Pickle::Set(_) => unhashable("set"),
        Pickle::ByteArray(_) => unhashable("bytearray"),
        Pickle::Tuple(items) => items.iter().try_for_each(check_hashable),
        _ => Ok(()),
    }
}

/// Key/value pairs from a sequence of 2-item tuples or lists.
fn to_pairs(items: Vec<Pickle>) -> Result<Vec<(Pickle, Pickle)>, ArgError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Pickle::Tuple(kv) | Pickle::List(kv) => <[Pickle; 2]>::try_from(kv)
                .map(|[k, v]| (k, v))
                .map_err(|kv| {
                    ArgError::Value(format!(
                        "dictionary update sequence element #{i} has length {}; 2 is required",
                        kv.len()
                    ))
                }),
            _ => Err(ArgError::Type(format!(
                "cannot convert dictionary update sequence element #{i} to a sequence"
            ))),
        })
        .collect()
}

/// `dict.update(E, **F)` and `dict(E, **F)`: one dict of every pair, in order.
pub(super) fn merge_update(
    args: Vec<Pickle>,
    kwds: Vec<(String, Pickle)>,
) -> Result<Pickle, ArgError> {
    if args.len() > 1 {
        return Err(ArgError::Type(format!(
            "update expected at most 1 argument, got {}",
            args.len()
        )));
    }
    let mut pairs = Vec::new();
    if let Some(first) = args.into_iter().next() {
        match first {
            Pickle::Dict(items) => pairs.extend(items),
            Pickle::List(items) | Pickle::Tuple(items) => pairs.extend(to_pairs(items)?),
            Pickle::None => {}
            // A builtin iterator of pairs (`zip(keys, values)`, `enumerate(names)`).
            other => match super::iterators::expand(&other, &items_of) {
                Some(items) => pairs.extend(to_pairs(items?)?),
                None => {
                    return Err(ArgError::Type(
                        "update takes a dict or an iterable of key/value pairs".into(),
                    ))
                }
            },
        }
    }
    pairs.extend(kwds.into_iter().map(|(k, v)| (Pickle::Str(k), v)));
    for (k, _) in &pairs {
        check_hashable(k)?;
    }
    Ok(Pickle::Dict(pairs))
}

/// Most items a `list(iterable)` may expand to (a `range` could name billions).
const MAX_EXPANDED: i128 = 1 << 20;

fn too_many(len: i128) -> String {
    format!("{len} items are too many to expand on the node (at most {MAX_EXPANDED}); send a list")
}

/// Python's message for a value that is not iterable; for an object the node cannot look
/// into (a generator's pickle, an instance), what to send instead.
fn not_iterable(p: &Pickle) -> String {
    let name = match p {
        Pickle::None => "NoneType",
        Pickle::Bool(_) => "bool",
        Pickle::Int(_) | Pickle::BigInt(_) => "int",
        Pickle::Float(_) => "float",
        _ => return "the argument is not an iterable the node can read: send a list".into(),
    };
    format!("'{name}' object is not iterable")
}

/// `list(iterable)` for the iterables a client can send: a list, tuple, set, dict (its
/// keys), str (its characters), bytes (its numbers), range, or a builtin iterator over them
/// (`iter`, `reversed`, `zip`, `enumerate`: see `iterators.rs`).
pub(super) fn iterable_to_list(p: Pickle) -> Result<Pickle, ArgError> {
    items_of(p).map(Pickle::List)
}

/// The items `iterable_to_list` makes a list of.
fn items_of(p: Pickle) -> Result<Vec<Pickle>, ArgError> {
    let items = items_of_one(p)?;
    if items.len() as i128 > MAX_EXPANDED {
        return Err(too_many(items.len() as i128).into());
    }
    Ok(items)
}

fn items_of_one(p: Pickle) -> Result<Vec<Pickle>, ArgError> {
    Ok(match p {
        Pickle::List(items)
        | Pickle::Tuple(items)
        | Pickle::Set(items)
        | Pickle::FrozenSet(items) => items,
        Pickle::Dict(pairs) => pairs.into_iter().map(|(k, _)| k).collect(),
        // One value per character or byte: bounded like a range, so a 60 MB string does not
        // become 60 million values.
        Pickle::Str(s) if s.chars().count() as i128 > MAX_EXPANDED => {
            return Err(too_many(s.chars().count() as i128).into())
        }
        Pickle::Str(s) => s.chars().map(|c| Pickle::Str(c.into())).collect(),
        Pickle::Bytes(b) | Pickle::ByteArray(b) if b.len() as i128 > MAX_EXPANDED => {
            return Err(too_many(b.len() as i128).into())
        }
        Pickle::Bytes(b) | Pickle::ByteArray(b) => {
            b.into_iter().map(|x| Pickle::Int(x.into())).collect()
        }
        other => match pickle::as_range(&other) {
            Some(pickle::RangeArgs { start, stop, step }) => {
                if step == 0 {
                    return Err(ArgError::Value("range() arg 3 must not be zero".into()));
                }
                // Python's range length, without overflow for ends near the i128 limits.
                let (distance, stride) = if step > 0 {
                    (stop.checked_sub(start), Some(step))
                } else {
                    (start.checked_sub(stop), step.checked_neg())
                };
                let len = match (distance, stride) {
                    (Some(d), Some(s)) if d > 0 => (d - 1) / s + 1,
                    (Some(_), Some(_)) => 0,
                    _ => i128::MAX,
                };
                if len > MAX_EXPANDED {
                    return Err(too_many(len).into());
                }
                (0..len).map(|i| Pickle::Int(start + i * step)).collect()
            }
            None => match super::iterators::expand(&other, &items_of) {
                Some(items) => items?,
                None => return Err(not_iterable(&other).into()),
            },
        },
    })
}

/// Most bytes of an int printed in decimal: Python refuses ints over 4,300 digits (about
/// 1,786 bytes) in `repr` too, and converting costs time quadratic in the length.
const MAX_PRINTED_INT_BYTES: usize = 1_786;

/// The decimal digits of an int beyond `i128` (little-endian two's complement).
fn big_int_repr(le: &[u8]) -> String {
    if le.len() > MAX_PRINTED_INT_BYTES {
        return format!("<int of {} bytes, too long to print>", le.len());
    }
    let negative = le.last().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude = le.to_vec();
    if negative {
        // Two's complement: invert, add one.
        let mut carry = 1u16;
        for b in &mut magnitude {
            let v = u16::from(!*b) + carry;
            *b = v as u8;
            carry = v >> 8;
        }
    }
    // 32-bit limbs, least significant first, divided by 10^9 until nothing is left.
    let mut limbs: Vec<u32> = magnitude
        .chunks(4)
        .map(|c| {
            c.iter()
                .rev()
                .fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
        })
        .collect();
    let mut groups = Vec::new();
    while limbs.iter().any(|&l| l != 0) {
        let mut rest = 0u64;
        for limb in limbs.iter_mut().rev() {
            let current = (rest << 32) | u64::from(*limb);
            *limb = (current / 1_000_000_000) as u32;
            rest = current % 1_000_000_000;
        }
        groups.push(rest);
        while limbs.last() == Some(&0) {
            limbs.pop();
        }
    }
    let mut text = String::from(if negative { "-" } else { "" });
    match groups.split_last() {
        Some((most, rest)) => {
            text += &most.to_string();
            for group in rest.iter().rev() {
                text += &format!("{group:09}");
            }
        }
        None => text.push('0'),
    }
    text
}

/// Python's `repr` of a value, as CPython's server prints it for `__repr__`/`__str__`.
pub(super) fn py_repr(p: &Pickle) -> String {
    let join = |items: &[Pickle]| items.iter().map(py_repr).collect::<Vec<_>>().join(", ");
    match p {
        Pickle::List(items) => format!("[{}]", join(items)),
        Pickle::Tuple(items) if items.len() == 1 => format!("({},)", py_repr(&items[0])),
        Pickle::Tuple(items) => format!("({})", join(items)),
        Pickle::Set(items) if items.is_empty() => "set()".into(),
        Pickle::Set(items) => format!("{{{}}}", join(items)),
        Pickle::FrozenSet(items) if items.is_empty() => "frozenset()".into(),
        Pickle::FrozenSet(items) => format!("frozenset({{{}}})", join(items)),
        Pickle::Dict(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Pickle::ByteArray(b) => format!("bytearray({})", Value::Bytes(b.clone()).py_repr()),
        Pickle::BigInt(le) => big_int_repr(le),
        other => match to_value(other) {
            Ok(Value::Ext(EXT_PICKLE, _)) | Err(_) => match class_of(other) {
                Some((module, name)) => format!("<{module}.{name} object>"),
                None => "<object>".into(),
            },
            Ok(v) => v.py_repr(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(p: Pickle) -> Pickle {
        let stored = to_value(&p).unwrap().to_bytes();
        from_bytes(&stored).unwrap()
    }

    fn range(start: i128, stop: i128, step: i128) -> Pickle {
        Pickle::Reduce {
            callable: Box::new(pickle::global("builtins", "range")),
            args: Box::new(Pickle::Tuple(vec![
                Pickle::Int(start),
                Pickle::Int(stop),
                Pickle::Int(step),
            ])),
        }
    }

    #[test]
    fn list_of_an_iterable_has_python_lengths_and_a_bound() {
        let len = |p| match iterable_to_list(p) {
            Ok(Pickle::List(items)) => items.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!(len(range(0, 10, 3)), 4);
        assert_eq!(len(range(10, 0, -3)), 4);
        assert_eq!(len(range(5, 5, 1)), 0);
        assert_eq!(len(range(5, 0, 1)), 0);
        // Ends near the i128 limits: refused, not an overflow (found in review).
        for (start, stop, step) in [
            (-(1 << 126), 1 << 126, 1 << 100),
            (i128::MIN, i128::MAX, 1),
            (i128::MAX, i128::MIN, -1),
            (0, 1, i128::MIN),
        ] {
            let e = iterable_to_list(range(start, stop, step)).unwrap_err();
            assert!(e.to_string().contains("too many"), "{e}");
        }
        // One value per character or byte, bounded the same way.
        assert!(iterable_to_list(Pickle::Str("a".repeat(5_000_000))).is_err());
        assert!(iterable_to_list(Pickle::Bytes(vec![0; 5_000_000])).is_err());
        // Ints beyond i128 print their digits, as Python's repr (from `pickle.encode_long`).
        for (hex, digits) in [
            (
                "0000000000000000000000000000008000",
                "170141183460469231731687303715884105728",
            ),
            (
                "ffffffffffffffffffffffffffffff7fff",
                "-170141183460469231731687303715884105729",
            ),
            (
                "00000000000000000000000000000000fc",
                "-1361129467683753853853498429727072845824",
            ),
            (
                "000000000061f5b9abbfa45cc3f129631d",
                "10000000000000000000000000000000000000000",
            ),
            (
                "07000000009f0a4654405ba33c0ed69ce2",
                "-9999999999999999999999999999999999999993",
            ),
        ] {
            let le: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            assert_eq!(py_repr(&Pickle::BigInt(le)), digits);
        }
        assert!(py_repr(&Pickle::BigInt(vec![1; 10_000])).contains("too long"));
        // Python's words for what is not iterable; what to send for what the node cannot read.
        // A pair of the wrong length is Python's ValueError; a pair that is no sequence, its
        // TypeError.
        let triple = Pickle::List(vec![Pickle::Tuple(vec![Pickle::Int(1); 3])]);
        assert_eq!(
            merge_update(vec![triple], vec![]),
            Err(ArgError::Value(
                "dictionary update sequence element #0 has length 3; 2 is required".into()
            ))
        );
        let int = Pickle::List(vec![Pickle::Int(1)]);
        assert!(matches!(
            merge_update(vec![int], vec![]),
            Err(ArgError::Type(_))
        ));
        let not_iterable = |p| iterable_to_list(p).unwrap_err().to_string();
        assert_eq!(not_iterable(Pickle::Int(5)), "'int' object is not iterable");
        assert_eq!(
            not_iterable(Pickle::None),
            "'NoneType' object is not iterable"
        );
        let opaque = Pickle::Global {
            module: "builtins".into(),
            name: "object".into(),
        };
        assert!(not_iterable(opaque).ends_with("send a list"));
        assert_eq!(len(Pickle::Str("abc".into())), 3);
    }

    #[test]
    fn a_stored_pickle_that_names_code_is_not_sent() {
        // What a native client could store as extension 7.
        let evil = Pickle::Reduce {
            callable: Box::new(pickle::global("posix", "system")),
            args: Box::new(Pickle::Tuple(vec![Pickle::Str("echo hi".into())])),
        };
        let stored = Value::Ext(EXT_PICKLE, pickle::dumps(&evil)).to_bytes();
        let NotSent::Unreadable(e) = from_bytes(&stored).unwrap_err() else {
            panic!("not refused for what it names");
        };
        assert!(e.contains("posix.system"), "{e}");
    }

    #[test]
    fn python_values_come_back_as_they_went() {
        let values = vec![
            Pickle::None,
            Pickle::Bool(true),
            Pickle::Int(-(1 << 100)),
            Pickle::Float(1.5),
            Pickle::Str("café".into()),
            Pickle::Bytes(vec![0, 255]),
            Pickle::ByteArray(b"ba".to_vec()),
            Pickle::List(vec![Pickle::Int(1), Pickle::Tuple(vec![])]),
            Pickle::Tuple(vec![Pickle::Int(1), Pickle::Str("x".into())]),
            Pickle::Set(vec![Pickle::Int(1)]),
            Pickle::FrozenSet(vec![Pickle::Int(3)]),
            Pickle::Dict(vec![(
                Pickle::Tuple(vec![Pickle::Int(1), Pickle::Int(2)]),
                Pickle::List(vec![]),
            )]),
            pickle::exception("builtins", "KeyError", vec![Pickle::Str("k".into())]),
        ];
        for v in values {
            assert_eq!(round_trip(v.clone()), v);
        }
    }

    /// Found from a slow input of the `pickle_requests` fuzz target (a list of stored
    /// Python objects, repeated; its corpus keeps `regression-many-stored-objects`): each
    /// stored object is one item of the stored value but a tree of many once read, so a
    /// result under the node's item limit could build a far larger tree (`[token] *
    /// 1_000_000` took 2.5 s and 850 MB in a release build). The objects' own items count
    /// against the same limit.
    #[test]
    fn stored_objects_count_their_items_against_the_limit() {
        let token = pickle::token(
            "dict",
            Pickle::Tuple(vec![Pickle::Str("h".into()), Pickle::Int(1)]),
            "1",
        );
        let body = pickle::dumps(&token);
        // 8 items each once read: 200,000 of them are 1.6 million.
        let many = Value::Array(vec![Value::Ext(EXT_PICKLE, body.clone()); 200_000]);
        assert!(matches!(
            from_bytes(&many.to_bytes()),
            Err(NotSent::TooManyItems)
        ));
        let some = Value::Array(vec![Value::Ext(EXT_PICKLE, body); 1000]);
        match from_bytes(&some.to_bytes()) {
            Ok(Pickle::List(items)) => assert!(items.len() == 1000 && items[0] == token),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keys_python_cannot_hash_are_refused() {
        assert!(check_hashable(&Pickle::List(vec![])).is_err());
        let nested = Pickle::Tuple(vec![Pickle::Int(1), Pickle::Set(vec![])]);
        assert_eq!(
            check_hashable(&nested).unwrap_err(),
            "unhashable type: 'set'"
        );
        assert!(check_hashable(&Pickle::Tuple(vec![Pickle::Str("a".into())])).is_ok());
    }

    #[test]
    fn reprs_match_python() {
        let t1 = Pickle::Tuple(vec![Pickle::Int(1)]);
        assert_eq!(py_repr(&t1), "(1,)");
        let d = Pickle::Dict(vec![(Pickle::Str("a".into()), Pickle::List(vec![t1]))]);
        assert_eq!(py_repr(&d), "{'a': [(1,)]}");
        assert_eq!(py_repr(&Pickle::Set(vec![])), "set()");
        assert_eq!(
            py_repr(&Pickle::FrozenSet(vec![Pickle::Int(2)])),
            "frozenset({2})"
        );
    }
}

//! `dict`: insertion-ordered, keys compared with Python's equality (`1 == 1.0 == True`).
//! Keys and values are stored as the encoded bytes clients sent, packed one entry to a
//! block ([`packed`]) in an insertion-ordered table ([`table`]); only keys are decoded, and
//! only when they are not canonical already.

mod packed;
mod table;

use parking_lot::Mutex;
use std::sync::Arc;

use bytes::Bytes;
use syncman_protocol::value::{canonical_key, decode, split_array, split_map};
use syncman_protocol::{Args, RemoteError, Value};

use crate::node::budget::{memory_error, ByteBudget, HeldBytes};
use crate::node::object::{
    fits, unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject,
};
use syncman_protocol::value::encode;
use table::{Full, OrderedTable};

/// Python's `dict` methods as exposed by `DictProxy`, with their argument counts.
const METHODS: &[MethodSpec] = &[
    ("__getitem__", 1, 1),
    ("__setitem__", 2, 2),
    ("__delitem__", 1, 1),
    ("__contains__", 1, 1),
    ("__len__", 0, 0),
    ("get", 1, 2),
    ("keys", 0, 0),
    ("values", 0, 0),
    ("items", 0, 0),
    ("copy", 0, 0),
    ("update", 1, 1),
    ("pop", 1, 2),
    ("popitem", 0, 0),
    ("setdefault", 1, 2),
    ("clear", 0, 0),
];

pub struct Dict {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: OrderedTable,
    /// The encoded sizes of keys and values, charged to the node's budget.
    held: HeldBytes,
}

/// What an entry costs the budget: its key and value as sent.
fn cost(key: &[u8], value: &[u8]) -> usize {
    key.len() + value.len()
}

fn too_large(_: Full) -> RemoteError {
    memory_error("a dict holds at most 2**32 entries, each part under 4 GiB")
}

/// A stored part of an entry as a reply (replies are `Bytes`; entries are packed).
fn reply(part: &[u8]) -> Bytes {
    Bytes::copy_from_slice(part)
}

impl Dict {
    /// `dict()`, `dict(mapping)` or `dict(iterable_of_pairs)`.
    pub fn new(mut args: Args<'_>) -> Result<Dict, RemoteError> {
        let mut state = State::default();
        if let Some(init) = args.opt_raw() {
            update(&mut state.entries, &init)?;
        }
        args.finish()?;
        let bytes = state.entries.iter().map(|e| cost(e.key(), e.value())).sum();
        state.held.force_grow(bytes);
        Ok(Dict {
            state: Mutex::new(state),
        })
    }
}

fn key_error(raw_key: &[u8]) -> RemoteError {
    let shown = decode(raw_key).map(|v| v.py_repr()).unwrap_or_default();
    RemoteError::key_error(shown)
}

fn insert(entries: &mut OrderedTable, key: Bytes, value: Bytes) -> Result<(), RemoteError> {
    let canon = canonical_key(&key)?;
    // Python keeps the first key object and its position.
    entries.set(&canon, &key, &value).map_err(too_large)?;
    Ok(())
}

/// `dict.update`: a map, or an array of `[key, value]` pairs.
fn update(entries: &mut OrderedTable, other: &Bytes) -> Result<(), RemoteError> {
    if let Some(pairs) = split_map(other)? {
        for (k, v) in pairs {
            insert(entries, k, v)?;
        }
        return Ok(());
    }
    let Some(items) = split_array(other)? else {
        return Err(RemoteError::type_error(
            "update expects a mapping or an iterable of key/value pairs",
        ));
    };
    for (i, item) in items.iter().enumerate() {
        let (k, v) = pair_of(i, item)?;
        insert(entries, k, v)?;
    }
    Ok(())
}

/// Element `i` of `dict.update(iterable)` as a key and a value, by Python's rule: it must
/// be iterable (`TypeError` otherwise: a number, `None`, an opaque Python object) and yield
/// exactly two items (`ValueError` otherwise), so `"ab"` is the pair `'a'`, `'b'` and a map
/// gives its two keys, as in Python.
fn pair_of(i: usize, item: &Bytes) -> Result<(Bytes, Bytes), RemoteError> {
    let wrong_length = |n: usize| {
        RemoteError::value_error(format!(
            "dictionary update sequence element #{i} has length {n}; 2 is required"
        ))
    };
    // A list (a Rust tuple or array), without decoding its items.
    if let Some(kv) = split_array(item)? {
        return match <[Bytes; 2]>::try_from(kv) {
            Ok([k, v]) => Ok((k, v)),
            Err(kv) => Err(wrong_length(kv.len())),
        };
    }
    let two = |a: Value, b: Value| Ok((a.to_bytes(), b.to_bytes()));
    match decode(item)? {
        Value::Tuple(xs) | Value::Set(xs) | Value::FrozenSet(xs) => {
            match <[Value; 2]>::try_from(xs) {
                Ok([k, v]) => two(k, v),
                Err(xs) => Err(wrong_length(xs.len())),
            }
        }
        Value::Map(m) => match <[(Value, Value); 2]>::try_from(m) {
            Ok([(k, _), (v, _)]) => two(k, v),
            Err(m) => Err(wrong_length(m.len())),
        },
        Value::Str(text) => {
            let mut chars = text.chars();
            match (chars.next(), chars.next(), chars.next()) {
                (Some(k), Some(v), None) => two(Value::Str(k.into()), Value::Str(v.into())),
                _ => Err(wrong_length(text.chars().count())),
            }
        }
        Value::Bytes(b) | Value::ByteArray(b) => match b.as_slice() {
            &[k, v] => two(Value::Int(k.into()), Value::Int(v.into())),
            other => Err(wrong_length(other.len())),
        },
        _ => Err(RemoteError::type_error(format!(
            "cannot convert dictionary update sequence element #{i} to a sequence"
        ))),
    }
}

impl SharedObject for Dict {
    fn typeid(&self) -> &str {
        "dict"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, mut args: Args<'_>, ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, &mut args, ctx))
    }

    fn bind_budget(&self, budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        self.state.lock().held.bind(budget)
    }

    fn describe(&self) -> String {
        let st = self.state.lock();
        format!("dict, {} keys, {} bytes", st.entries.len(), st.held.bytes())
    }
}

impl Dict {
    /// Arguments are lent, not kept: entries copy what they store into their own packed
    /// form, and replies are encoded at once.
    fn dispatch(&self, method: &str, args: &mut Args<'_>, ctx: &CallCtx) -> Reply {
        match method {
            "__getitem__" => {
                let key = args.lend("key")?;
                let canon = canonical_key(key)?;
                let st = self.state.lock();
                st.entries
                    .get(&canon)
                    .map(|e| reply(e.value()))
                    .ok_or_else(|| key_error(key))
            }
            "get" => {
                let key = args.lend("key")?;
                let default = args.opt_lend();
                let canon = canonical_key(key)?;
                let st = self.state.lock();
                Ok(match st.entries.get(&canon) {
                    Some(e) => reply(e.value()),
                    None => default.map_or_else(encode::nil, Bytes::copy_from_slice),
                })
            }
            "__setitem__" => {
                let key = args.lend("key")?;
                let value = args.lend("value")?;
                let canon = canonical_key(key)?;
                self.state.lock().set(&canon, key, value)?;
                Ok(encode::nil())
            }
            "__delitem__" => {
                let key = args.lend("key")?;
                let canon = canonical_key(key)?;
                let removed = self.state.lock().remove(&canon);
                removed.map(|_| encode::nil()).ok_or_else(|| key_error(key))
            }
            "__contains__" => {
                let canon = canonical_key(args.lend("key")?)?;
                Ok(encode::bool(
                    self.state.lock().entries.get(&canon).is_some(),
                ))
            }
            "__len__" => Ok(encode::int(self.state.lock().entries.len() as i128)),
            "keys" => Ok(encode::array(
                self.state.lock().entries.iter().map(|e| e.key()),
            )),
            "values" => Ok(encode::array(
                self.state.lock().entries.iter().map(|e| e.value()),
            )),
            "items" => Ok(encode::pairs(
                self.state
                    .lock()
                    .entries
                    .iter()
                    .map(|e| (e.key(), e.value())),
            )),
            "copy" => Ok(encode::map(
                self.state
                    .lock()
                    .entries
                    .iter()
                    .map(|e| (e.key(), e.value())),
            )),
            "update" => {
                // Split into shared parts (copied into the entries).
                let other = Bytes::copy_from_slice(args.lend("other")?);
                // Validate everything before touching the dict, as an all-or-nothing step.
                let mut staged = OrderedTable::default();
                update(&mut staged, &other)?;
                let mut st = self.state.lock();
                // At most this much more; what replaced values freed comes back after.
                let most: usize = staged.iter().map(|e| cost(e.key(), e.value())).sum();
                st.held.grow(most)?;
                let mut unused = 0;
                let mut failed = None;
                for e in staged.iter() {
                    match st.entries.set(e.canon(), e.key(), e.value()) {
                        Ok(Some(replaced)) => unused += e.key().len() + replaced,
                        Ok(None) => {}
                        Err(full) => {
                            unused += cost(e.key(), e.value());
                            failed = Some(full);
                        }
                    }
                }
                st.held.shrink(unused);
                match failed {
                    Some(full) => Err(too_large(full)),
                    None => Ok(encode::nil()),
                }
            }
            "pop" => {
                let key = args.lend("key")?;
                let default = args.opt_lend();
                let canon = canonical_key(key)?;
                let mut st = self.state.lock();
                // A value the caller could not receive stays in the dict.
                if let Some(e) = st.entries.get(&canon) {
                    ctx.check_fits(e.value())?;
                }
                let removed = st.remove(&canon);
                drop(st);
                match (removed, default) {
                    (Some(e), _) => Ok(reply(e.value())),
                    (None, Some(d)) => Ok(Bytes::copy_from_slice(d)),
                    (None, None) => Err(key_error(key)),
                }
            }
            "popitem" => {
                let mut st = self.state.lock();
                if let Some(e) = st.entries.last() {
                    fits(cost(e.key(), e.value()), ctx.reply_limit)?;
                }
                let last = st.entries.pop_last();
                if let Some(e) = &last {
                    st.held.shrink(cost(e.key(), e.value()));
                }
                drop(st);
                match last {
                    Some(e) => Ok(encode::array([e.key(), e.value()].into_iter())),
                    None => Err(RemoteError::key_error("popitem(): dictionary is empty")),
                }
            }
            "setdefault" => {
                let key = args.lend("key")?;
                let default = args.opt_lend().unwrap_or(&encode::NIL[..]);
                let canon = canonical_key(key)?;
                let mut st = self.state.lock();
                if let Some(e) = st.entries.get(&canon) {
                    return Ok(reply(e.value()));
                }
                st.held.grow(cost(key, default))?;
                if let Err(full) = st.entries.set(&canon, key, default) {
                    st.held.shrink(cost(key, default));
                    return Err(too_large(full));
                }
                Ok(Bytes::copy_from_slice(default))
            }
            "clear" => {
                let mut st = self.state.lock();
                let old = std::mem::take(&mut st.entries);
                st.held.clear();
                drop(st);
                drop(old);
                Ok(encode::nil())
            }
            _ => unknown_method("dict", method),
        }
    }
}

impl State {
    /// Sets `key` (canonical form `canon`) to `value`, charging the difference; a call over
    /// the budget changes nothing.
    fn set(&mut self, canon: &[u8], key: &[u8], value: &[u8]) -> Result<(), RemoteError> {
        // Python keeps the first key object and its position.
        let charge = match self.entries.get(canon) {
            Some(e) => (e.value().len(), value.len()),
            None => (0, cost(key, value)),
        };
        self.held.replace(charge.0, charge.1)?;
        if let Err(full) = self.entries.set(canon, key, value) {
            // Unreachable in practice (4 GiB parts, 2**32 entries); undo the charge exactly.
            self.held.shrink(charge.1);
            self.held.force_grow(charge.0);
            return Err(too_large(full));
        }
        Ok(())
    }

    fn remove(&mut self, canon: &[u8]) -> Option<packed::PackedEntry> {
        let removed = self.entries.remove(canon)?;
        self.held.shrink(cost(removed.key(), removed.value()));
        Some(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::objects::testing::args;
    use syncman_protocol::{ErrorKind, Value};

    fn call(d: &Dict, method: &str, a: &[Value]) -> Reply {
        match d.call(method, args(a), &mut CallCtx::new(1)) {
            Outcome::Ready(r) => r,
            Outcome::Park(_) => panic!("a dict never parks"),
        }
    }

    /// The decoded answer of a call that must succeed.
    fn ok(d: &Dict, method: &str, a: &[Value]) -> Value {
        decode(&call(d, method, a).unwrap()).unwrap()
    }

    fn err(d: &Dict, method: &str, a: &[Value]) -> RemoteError {
        call(d, method, a).unwrap_err()
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn pair(k: Value, v: Value) -> Value {
        Value::Array(vec![k, v])
    }

    fn empty() -> Dict {
        Dict::new(Args::empty()).unwrap()
    }

    #[test]
    fn one_and_one_point_zero_and_true_are_one_key() {
        let d = empty();
        ok(&d, "__setitem__", &[Value::Int(1), s("int")]);
        ok(&d, "__setitem__", &[Value::Float(1.0), s("float")]);
        ok(&d, "__setitem__", &[Value::Bool(true), s("bool")]);
        assert_eq!(ok(&d, "__len__", &[]), Value::Int(1));
        // The first key object is kept; the value is the last one set.
        assert_eq!(ok(&d, "keys", &[]), Value::Array(vec![Value::Int(1)]));
        for key in [Value::Int(1), Value::Float(1.0), Value::Bool(true)] {
            let key = [key];
            assert_eq!(ok(&d, "__getitem__", &key), s("bool"));
            assert_eq!(ok(&d, "__contains__", &key), Value::Bool(true));
        }
    }

    #[test]
    fn an_equal_key_keeps_the_first_key_object_and_its_position() {
        let d = empty();
        ok(&d, "__setitem__", &[Value::Float(2.0), s("a")]);
        ok(&d, "__setitem__", &[s("x"), s("b")]);
        ok(&d, "__setitem__", &[Value::Int(2), s("c")]);
        assert_eq!(
            ok(&d, "items", &[]),
            Value::Array(vec![pair(Value::Float(2.0), s("c")), pair(s("x"), s("b"))])
        );
        assert_eq!(
            ok(&d, "copy", &[]),
            Value::Map(vec![(Value::Float(2.0), s("c")), (s("x"), s("b"))])
        );
    }

    #[test]
    fn a_map_key_is_unhashable() {
        let d = empty();
        let map = Value::Map(vec![(Value::Int(1), Value::Int(2))]);
        let in_tuple = Value::Array(vec![Value::Int(1), map.clone()]);
        for key in [map, in_tuple] {
            for (method, a) in [
                ("__setitem__", vec![key.clone(), Value::Int(0)]),
                ("__getitem__", vec![key.clone()]),
                ("__contains__", vec![key.clone()]),
                ("get", vec![key.clone(), Value::Int(0)]),
                ("setdefault", vec![key.clone()]),
            ] {
                let e = err(&d, method, &a);
                assert_eq!(e.kind, ErrorKind::TypeError, "{method}");
                assert_eq!(e.message, "unhashable type: 'dict'", "{method}");
            }
        }
        assert_eq!(ok(&d, "__len__", &[]), Value::Int(0));
    }

    #[test]
    fn a_tuple_of_hashables_is_a_key() {
        let d = empty();
        let key = Value::Array(vec![Value::Int(1), s("a")]);
        ok(&d, "__setitem__", &[key, Value::Int(7)]);
        let equal = Value::Array(vec![Value::Float(1.0), s("a")]);
        assert_eq!(ok(&d, "__getitem__", &[equal]), Value::Int(7));
    }

    #[test]
    fn a_missing_key_is_a_key_error_showing_its_repr() {
        let d = empty();
        for (method, key, shown) in [
            ("__getitem__", s("x"), "'x'"),
            ("__delitem__", Value::Int(2), "2"),
            ("pop", Value::Tuple(vec![Value::Int(1), s("a")]), "(1, 'a')"),
            ("__getitem__", Value::Float(1.5), "1.5"),
        ] {
            let e = err(&d, method, &[key]);
            assert_eq!(e.kind, ErrorKind::KeyError, "{method}");
            assert_eq!(e.message, shown, "{method}");
        }
    }

    #[test]
    fn keys_values_and_items_follow_insertion_order() {
        let d = empty();
        for (k, v) in [(s("b"), 1), (s("a"), 2), (Value::Int(3), 3)] {
            ok(&d, "__setitem__", &[k, Value::Int(v)]);
        }
        // Deleting and setting again moves a key to the end, as in Python.
        ok(&d, "__delitem__", &[s("b")]);
        ok(&d, "__setitem__", &[s("b"), Value::Int(4)]);
        // Overwriting keeps the position.
        ok(&d, "__setitem__", &[s("a"), Value::Int(5)]);
        assert_eq!(
            ok(&d, "keys", &[]),
            Value::Array(vec![s("a"), Value::Int(3), s("b")])
        );
        assert_eq!(
            ok(&d, "values", &[]),
            Value::Array(vec![Value::Int(5), Value::Int(3), Value::Int(4)])
        );
        assert_eq!(
            ok(&d, "items", &[]),
            Value::Array(vec![
                pair(s("a"), Value::Int(5)),
                pair(Value::Int(3), Value::Int(3)),
                pair(s("b"), Value::Int(4)),
            ])
        );
    }

    #[test]
    fn update_is_all_or_nothing_when_one_key_is_unhashable() {
        let d = empty();
        ok(&d, "__setitem__", &[s("a"), Value::Int(1)]);
        let unhashable = Value::Map(vec![]);
        let as_pairs = Value::Array(vec![
            pair(s("a"), Value::Int(9)),
            pair(s("b"), Value::Int(2)),
            pair(unhashable.clone(), Value::Int(3)),
        ]);
        let as_map = Value::Map(vec![
            (s("a"), Value::Int(9)),
            (s("b"), Value::Int(2)),
            (unhashable, Value::Int(3)),
        ]);
        for other in [as_pairs, as_map] {
            assert_eq!(err(&d, "update", &[other]).kind, ErrorKind::TypeError);
            assert_eq!(
                ok(&d, "items", &[]),
                Value::Array(vec![pair(s("a"), Value::Int(1))])
            );
        }
    }

    #[test]
    fn update_keeps_existing_keys_and_appends_new_ones() {
        let d = empty();
        ok(&d, "__setitem__", &[Value::Bool(true), s("t")]);
        ok(
            &d,
            "update",
            &[Value::Map(vec![
                (s("z"), Value::Int(1)),
                (Value::Float(1.0), s("one")),
            ])],
        );
        ok(
            &d,
            "update",
            &[Value::Array(vec![
                pair(s("y"), Value::Int(2)),
                pair(s("z"), Value::Int(3)),
            ])],
        );
        assert_eq!(
            ok(&d, "items", &[]),
            Value::Array(vec![
                pair(Value::Bool(true), s("one")),
                pair(s("z"), Value::Int(3)),
                pair(s("y"), Value::Int(2)),
            ])
        );
    }

    #[test]
    fn the_constructor_takes_a_mapping_or_pairs() {
        let from_map = Dict::new(args(&[Value::Map(vec![
            (s("a"), Value::Int(1)),
            (Value::Int(2), s("b")),
        ])]))
        .unwrap();
        let from_pairs = Dict::new(args(&[Value::Array(vec![
            pair(s("a"), Value::Int(1)),
            pair(Value::Int(2), s("b")),
        ])]))
        .unwrap();
        for d in [from_map, from_pairs] {
            assert_eq!(
                ok(&d, "items", &[]),
                Value::Array(vec![
                    pair(s("a"), Value::Int(1)),
                    pair(Value::Int(2), s("b"))
                ])
            );
        }
        let e = Dict::new(args(&[Value::Array(vec![Value::Array(vec![Value::Int(
            1,
        )])])]))
        .err()
        .unwrap();
        assert_eq!(e.kind, ErrorKind::ValueError);
    }

    #[test]
    fn a_pair_element_that_is_not_a_sequence_is_a_type_error() {
        // Python 3.11: {}.update([1]) -> TypeError: cannot convert dictionary update
        // sequence element #0 to a sequence (so for None, 1.5, True)
        let d = empty();
        for bad in [
            Value::Int(1),
            Value::Nil,
            Value::Float(1.5),
            Value::Bool(true),
        ] {
            let e = err(
                &d,
                "update",
                &[Value::Array(vec![pair(s("a"), Value::Int(1)), bad])],
            );
            assert_eq!(e.kind, ErrorKind::TypeError);
            assert_eq!(
                e.message,
                "cannot convert dictionary update sequence element #1 to a sequence"
            );
        }
        assert_eq!(ok(&d, "__len__", &[]), Value::Int(0), "all or nothing");
    }

    #[test]
    fn a_pair_element_of_another_length_is_a_value_error_and_any_iterable_of_two_is_a_pair() {
        // Python 3.11: {}.update([[1]]) -> ValueError: dictionary update sequence element #0
        // has length 1; 2 is required (also 'abc', (1, 2, 3)); ['ab'] -> {'a': 'b'},
        // [b'ab'] -> {97: 98}, [{1: 2, 3: 4}] -> {1: 3}.
        let d = empty();
        for (bad, n) in [
            (Value::Array(vec![Value::Int(1)]), 1),
            (s("abc"), 3),
            (
                Value::Tuple(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
                3,
            ),
            (Value::Bytes(vec![]), 0),
            (Value::Map(vec![(Value::Int(1), Value::Int(2))]), 1),
        ] {
            let e = err(&d, "update", &[Value::Array(vec![bad])]);
            assert_eq!(e.kind, ErrorKind::ValueError);
            assert_eq!(
                e.message,
                format!("dictionary update sequence element #0 has length {n}; 2 is required")
            );
        }
        let pairs = Value::Array(vec![
            s("ab"),
            Value::Bytes(b"ab".to_vec()),
            Value::Tuple(vec![s("t"), Value::Int(5)]),
            Value::Map(vec![
                (Value::Int(1), Value::Int(2)),
                (Value::Int(3), Value::Int(4)),
            ]),
        ]);
        ok(&d, "update", &[pairs]);
        assert_eq!(
            ok(&d, "items", &[]),
            Value::Array(vec![
                pair(s("a"), s("b")),
                pair(Value::Int(97), Value::Int(98)),
                pair(s("t"), Value::Int(5)),
                pair(Value::Int(1), Value::Int(3)),
            ])
        );
    }

    #[test]
    fn pop_answers_the_value_or_the_default() {
        let d = empty();
        ok(&d, "__setitem__", &[s("a"), Value::Int(1)]);
        assert_eq!(ok(&d, "pop", &[s("a"), Value::Int(0)]), Value::Int(1));
        assert_eq!(ok(&d, "__contains__", &[s("a")]), Value::Bool(false));
        assert_eq!(ok(&d, "pop", &[s("a"), Value::Int(0)]), Value::Int(0));
        assert_eq!(ok(&d, "pop", &[s("a"), Value::Nil]), Value::Nil);
        assert_eq!(err(&d, "pop", &[s("a")]).kind, ErrorKind::KeyError);
    }

    #[test]
    fn popitem_takes_the_last_inserted_pair() {
        let d = empty();
        ok(&d, "__setitem__", &[s("a"), Value::Int(1)]);
        ok(&d, "__setitem__", &[s("b"), Value::Int(2)]);
        assert_eq!(ok(&d, "popitem", &[]), pair(s("b"), Value::Int(2)));
        assert_eq!(ok(&d, "popitem", &[]), pair(s("a"), Value::Int(1)));
        let e = err(&d, "popitem", &[]);
        assert_eq!(e.kind, ErrorKind::KeyError);
        assert_eq!(e.message, "popitem(): dictionary is empty");
    }

    #[test]
    fn setdefault_inserts_only_a_missing_key() {
        let d = empty();
        assert_eq!(
            ok(&d, "setdefault", &[s("a"), Value::Int(1)]),
            Value::Int(1)
        );
        assert_eq!(
            ok(&d, "setdefault", &[s("a"), Value::Int(2)]),
            Value::Int(1)
        );
        assert_eq!(ok(&d, "setdefault", &[s("b")]), Value::Nil);
        ok(&d, "__setitem__", &[Value::Int(1), s("one")]);
        assert_eq!(
            ok(&d, "setdefault", &[Value::Bool(true), s("other")]),
            s("one")
        );
        assert_eq!(
            ok(&d, "items", &[]),
            Value::Array(vec![
                pair(s("a"), Value::Int(1)),
                pair(s("b"), Value::Nil),
                pair(Value::Int(1), s("one")),
            ])
        );
    }

    #[test]
    fn get_answers_the_default_or_none_for_a_missing_key() {
        let d = empty();
        ok(&d, "__setitem__", &[s("a"), Value::Int(1)]);
        assert_eq!(ok(&d, "get", &[s("a"), Value::Int(0)]), Value::Int(1));
        assert_eq!(ok(&d, "get", &[s("x")]), Value::Nil);
        assert_eq!(ok(&d, "get", &[s("x"), Value::Int(0)]), Value::Int(0));
        // get never inserts.
        assert_eq!(ok(&d, "__len__", &[]), Value::Int(1));
    }

    #[test]
    fn clear_empties_the_dict() {
        let d = Dict::new(args(&[Value::Map(vec![(s("a"), Value::Int(1))])])).unwrap();
        ok(&d, "clear", &[]);
        assert_eq!(ok(&d, "__len__", &[]), Value::Int(0));
        assert_eq!(ok(&d, "keys", &[]), Value::Array(vec![]));
        assert_eq!(err(&d, "__getitem__", &[s("a")]).kind, ErrorKind::KeyError);
    }

    /// Every mutation in a long random mix keeps the charge equal to the keys and values
    /// held; over the budget a call fails and changes nothing; dropping gives all back.
    #[test]
    fn the_byte_charge_follows_every_mutation() {
        let budget = crate::node::budget::ByteBudget::new(800);
        let d = Dict::new(args(&[Value::Map(vec![(s("seed"), s("x"))])])).unwrap();
        d.bind_budget(&budget).unwrap();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let expected = |d: &Dict| {
            let st = d.state.lock();
            st.entries
                .iter()
                .map(|e| cost(e.key(), e.value()))
                .sum::<usize>()
        };
        let mut refused = 0;
        for step in 0..5_000 {
            let key = Value::Int(next(50) as i128);
            let value = s(&"v".repeat(next(60) as usize));
            let before = expected(&d);
            let result = match next(8) {
                0 | 1 => call(&d, "__setitem__", &[key, value]),
                2 => call(&d, "__delitem__", &[key]),
                3 => call(&d, "pop", &[key, Value::Nil]),
                4 => call(&d, "popitem", &[]),
                5 => call(&d, "setdefault", &[key, value]),
                6 => call(
                    &d,
                    "update",
                    &[Value::Map(vec![(key, value.clone()), (s("k"), value)])],
                ),
                _ if next(20) == 0 => call(&d, "clear", &[]),
                _ => Ok(encode::nil()),
            };
            if let Err(e) = &result {
                if e.kind == ErrorKind::Other("MemoryError".into()) {
                    refused += 1;
                    assert_eq!(
                        expected(&d),
                        before,
                        "step {step}: a refused call changed the dict"
                    );
                }
            }
            let held = d.state.lock().held.bytes();
            assert_eq!(held, expected(&d), "step {step}");
            assert_eq!(budget.used(), held, "step {step}");
        }
        assert!(refused > 0, "the budget was never reached");
        drop(d);
        assert_eq!(budget.used(), 0);
    }
}

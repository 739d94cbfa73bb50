//! The value model: values are stored and passed on as the MessagePack bytes a client sent,
//! and decoded only when a method needs to look inside.
//!
//! The node decodes when Python semantics require it: a dict key is hashed by its
//! *canonical* encoding, in which `1`, `1.0` and `True` are the same key (as in Python, where
//! they are equal and hash alike); `list.index`, `count`, `remove` and `sort` compare with
//! Python's rules. Arrays are treated as tuples (hashable when their items are); maps are
//! unhashable.
//!
//! - `msgpack.rs`: reading (slicing, skipping, bounded decoding) and writing MessagePack.
//! - `python.rs`: Python's equality, ordering, hashing and repr over [`Value`].

mod msgpack;
mod python;

pub use msgpack::{
    decode, encode, is_minimal_scalar, shares_well, split_array, split_map, split_sequence,
    to_keep, DecodeError, Reader, EXT_BIGINT, EXT_BYTEARRAY, EXT_FROZENSET, EXT_PICKLE, EXT_SET,
    EXT_SLICE, EXT_TUPLE, MAX_DECODED_ITEMS,
};
pub use python::{canonical_key, py_eq_encoded, reinsert_index, Needle};

/// Deepest nesting [`decode`] accepts: a value nested deeper cannot be read back.
pub use msgpack::MAX_DEPTH;

/// Encoding results: `encode::nil()`, `encode::int(3)`, ... Constant answers are static.
pub mod encode {
    pub use super::msgpack::{array, bool, int, map, nil, pairs, str, FALSE, NIL, TRUE};
}

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
    /// A Python `tuple` (extension [`EXT_TUPLE`]); arrays are lists.
    Tuple(Vec<Value>),
    /// A Python `set` (extension [`EXT_SET`]), items in insertion order.
    Set(Vec<Value>),
    /// A Python `frozenset` (extension [`EXT_FROZENSET`]).
    FrozenSet(Vec<Value>),
    /// A Python `bytearray` (extension [`EXT_BYTEARRAY`]).
    ByteArray(Vec<u8>),
    Ext(i8, Vec<u8>),
}

impl Value {
    /// This value with Python's tuples, sets and frozensets as arrays and bytearrays as
    /// bytes: what a client without those types reads. `None` if there were none.
    pub fn without_python_types(self) -> Option<Value> {
        fn walk(v: Value, changed: &mut bool) -> Value {
            let all = |items: Vec<Value>, changed: &mut bool| {
                items.into_iter().map(|i| walk(i, changed)).collect()
            };
            match v {
                Value::Tuple(items) | Value::Set(items) | Value::FrozenSet(items) => {
                    *changed = true;
                    Value::Array(all(items, changed))
                }
                Value::ByteArray(b) => {
                    *changed = true;
                    Value::Bytes(b)
                }
                Value::Array(items) => Value::Array(all(items, changed)),
                Value::Map(pairs) => Value::Map(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (walk(k, changed), walk(v, changed)))
                        .collect(),
                ),
                other => other,
            }
        }
        let mut changed = false;
        let plain = walk(self, &mut changed);
        changed.then_some(plain)
    }
}

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
    decode, encode, is_minimal_scalar, split_array, split_map, DecodeError, Reader, EXT_BIGINT,
    EXT_SLICE, MAX_DECODED_ITEMS,
};
pub use python::{canonical_key, py_eq_encoded, Needle};

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
    Ext(i8, Vec<u8>),
}

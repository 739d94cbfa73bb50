//! Blocking `dict` and `list` proxies.

use std::ops::RangeBounds;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;

blocking_type! {
    /// A shared `dict` (blocking form of [`crate::proxy::DictProxy`]). Keys follow
    /// Python's equality on the node.
    DictProxy<K, V>
}

impl<K, V> DictProxy<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    blocking_fns! {
        crate::proxy::DictProxy;
        /// `d[key] = value`.
        fn insert(&self, key: &K, value: &V) -> Result<()>;
        /// `d[key]`, with `None` for a missing key.
        fn get(&self, key: &K) -> Result<Option<V>>;
        /// `d.pop(key)`, with `None` for a missing key.
        fn remove(&self, key: &K) -> Result<Option<V>>;
        /// `key in d`.
        fn contains_key(&self, key: &K) -> Result<bool>;
        /// `len(d)`.
        fn len(&self) -> Result<usize>;
        /// `len(d) == 0`.
        fn is_empty(&self) -> Result<bool>;
        /// `list(d.keys())`, in insertion order.
        fn keys(&self) -> Result<Vec<K>>;
        /// `list(d.values())`, in insertion order.
        fn values(&self) -> Result<Vec<V>>;
        /// `list(d.items())`, in insertion order.
        fn items(&self) -> Result<Vec<(K, V)>>;
        /// `d.update(pairs)`: all pairs are applied, or none.
        fn update(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<()>;
        /// `d.setdefault(key, default)`: the value now stored under `key`.
        fn setdefault(&self, key: &K, default: &V) -> Result<V>;
        /// `d.popitem()`: the most recently inserted pair, `None` if empty.
        fn pop_item(&self) -> Result<Option<(K, V)>>;
        /// `d.clear()`.
        fn clear(&self) -> Result<()>;
        /// `d.copy()` into any map type (`HashMap`, `BTreeMap`, ...).
        fn to_map<M: DeserializeOwned>(&self) -> Result<M>;
    }
}

blocking_type! {
    /// A shared `list` (blocking form of [`crate::proxy::ListProxy`]). Indexes are `i64`
    /// and may be negative (from the end), as in Python.
    ListProxy<T>
}

impl<T> ListProxy<T>
where
    T: Serialize + DeserializeOwned,
{
    blocking_fns! {
        crate::proxy::ListProxy;
        /// `l.append(value)`.
        fn push(&self, value: &T) -> Result<()>;
        /// `l.pop()`: the last item, `None` if empty.
        fn pop(&self) -> Result<Option<T>>;
        /// `l.pop(index)`: an `IndexError` if out of range.
        fn pop_at(&self, index: i64) -> Result<T>;
        /// `l[index]`, `None` if out of range.
        fn get(&self, index: i64) -> Result<Option<T>>;
        /// `l[index] = value`: an `IndexError` if out of range.
        fn set(&self, index: i64, value: &T) -> Result<()>;
        /// `l.insert(index, value)`.
        fn insert(&self, index: i64, value: &T) -> Result<()>;
        /// `l.extend(values)`.
        fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<()>;
        /// `len(l)`.
        fn len(&self) -> Result<usize>;
        /// `len(l) == 0`.
        fn is_empty(&self) -> Result<bool>;
        /// `l[:]`: every item.
        fn to_vec(&self) -> Result<Vec<T>>;
        /// `l[start:stop]` (Python slice rules: out-of-range bounds are clamped).
        fn slice(&self, range: impl RangeBounds<i64>) -> Result<Vec<T>>;
        /// `l[start:stop] = values` (may change the length).
        fn splice(
            &self,
            range: impl RangeBounds<i64>,
            values: impl IntoIterator<Item = T>,
        ) -> Result<()>;
        /// `del l[start:stop]`.
        fn delete_range(&self, range: impl RangeBounds<i64>) -> Result<()>;
        /// `value in l`.
        fn contains(&self, value: &T) -> Result<bool>;
        /// `l.index(value)`, `None` if absent.
        fn index_of(&self, value: &T) -> Result<Option<usize>>;
        /// `l.count(value)`.
        fn count(&self, value: &T) -> Result<usize>;
        /// `l.remove(value)`: removes the first equal item; false if there was none.
        fn remove(&self, value: &T) -> Result<bool>;
        /// `l.reverse()`.
        fn reverse(&self) -> Result<()>;
        /// `l.sort(reverse=...)` with Python's ordering.
        fn sort(&self, reverse: bool) -> Result<()>;
        /// `l.clear()`.
        fn clear(&self) -> Result<()>;
    }
}

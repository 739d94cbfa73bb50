//! Blocking `dict` proxy.

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

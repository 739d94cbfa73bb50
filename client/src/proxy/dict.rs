use serde::de::DeserializeOwned;
use serde::Serialize;

use super::proxy_type;
use crate::error::{ErrorKind, Result};

proxy_type! {
    /// A shared `dict`. Keys follow Python's equality on the node: `1`, `1.0` and `true`
    /// are one key; maps cannot be keys; arrays (Rust tuples) can.
    DictProxy<K, V>
}

impl<K, V> DictProxy<K, V>
where
    K: Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    /// `d[key] = value`.
    pub async fn insert(&self, key: &K, value: &V) -> Result<()> {
        self.handle
            .send(self.handle.req("__setitem__", 2).arg(key).arg(value))
            .await
    }

    /// `d[key]`, with `None` for a missing key (Python raises `KeyError`).
    pub async fn get(&self, key: &K) -> Result<Option<V>> {
        none_on(
            self.handle
                .send(self.handle.req("__getitem__", 1).arg(key))
                .await,
            ErrorKind::KeyError,
        )
    }

    /// `d.pop(key)`, with `None` for a missing key.
    pub async fn remove(&self, key: &K) -> Result<Option<V>> {
        none_on(
            self.handle.send(self.handle.req("pop", 1).arg(key)).await,
            ErrorKind::KeyError,
        )
    }

    /// `key in d`.
    pub async fn contains_key(&self, key: &K) -> Result<bool> {
        self.handle
            .send(self.handle.req("__contains__", 1).arg(key))
            .await
    }

    /// `len(d)`.
    pub async fn len(&self) -> Result<usize> {
        self.handle.send(self.handle.req("__len__", 0)).await
    }

    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// `list(d.keys())`, in insertion order.
    pub async fn keys(&self) -> Result<Vec<K>> {
        self.handle.send(self.handle.req("keys", 0)).await
    }

    /// `list(d.values())`, in insertion order.
    pub async fn values(&self) -> Result<Vec<V>> {
        self.handle.send(self.handle.req("values", 0)).await
    }

    /// `list(d.items())`, in insertion order.
    pub async fn items(&self) -> Result<Vec<(K, V)>> {
        self.handle.send(self.handle.req("items", 0)).await
    }

    /// `d.update(pairs)`: all pairs are applied, or none if one key is unhashable.
    pub async fn update<I>(&self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let pairs: Vec<(K, V)> = pairs.into_iter().collect();
        self.handle
            .send(self.handle.req("update", 1).arg(&pairs))
            .await
    }

    /// `d.setdefault(key, default)`: the value now stored under `key`.
    pub async fn setdefault(&self, key: &K, default: &V) -> Result<V> {
        self.handle
            .send(self.handle.req("setdefault", 2).arg(key).arg(default))
            .await
    }

    /// `d.popitem()`: the most recently inserted pair, `None` if empty.
    pub async fn pop_item(&self) -> Result<Option<(K, V)>> {
        none_on(
            self.handle.send(self.handle.req("popitem", 0)).await,
            ErrorKind::KeyError,
        )
    }

    /// `d.clear()`.
    pub async fn clear(&self) -> Result<()> {
        self.handle.send(self.handle.req("clear", 0)).await
    }

    /// `d.copy()` into any map type (`HashMap`, `BTreeMap`, ...).
    pub async fn to_map<M: DeserializeOwned>(&self) -> Result<M> {
        self.handle.send(self.handle.req("copy", 0)).await
    }
}

/// Maps one remote error kind to `Ok(None)`.
pub(crate) fn none_on<T>(r: Result<T>, kind: ErrorKind) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_kind(kind) => Ok(None),
        Err(e) => Err(e),
    }
}

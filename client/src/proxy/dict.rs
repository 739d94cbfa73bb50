use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{none_on, proxy_type};
use crate::connection::Undo;
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
        let h = &self.handle;
        h.conn.call(h.id, "__setitem__", &(key, value)).await
    }

    /// `d[key]`, with `None` for a missing key (Python raises `KeyError`).
    pub async fn get(&self, key: &K) -> Result<Option<V>> {
        let h = &self.handle;
        let r = h.conn.call(h.id, "__getitem__", &(key,)).await;
        none_on(r, ErrorKind::KeyError)
    }

    /// `d.pop(key)`, with `None` for a missing key. If this future is dropped after the
    /// value was taken (or it cannot be decoded into `V`), the entry is put back with
    /// `setdefault` (unless the key was set again meanwhile, which supersedes it).
    pub async fn remove(&self, key: &K) -> Result<Option<V>> {
        let h = &self.handle;
        let undo = Undo::give_back_with(h.id, "setdefault", key)?;
        let r = h.conn.call_undoable(h.id, "pop", &(key,), undo).await;
        none_on(r, ErrorKind::KeyError)
    }

    /// `key in d`.
    pub async fn contains_key(&self, key: &K) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "__contains__", &(key,)).await
    }

    /// `len(d)`.
    pub async fn len(&self) -> Result<usize> {
        let h = &self.handle;
        h.conn.call(h.id, "__len__", &()).await
    }

    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// `list(d.keys())`, in insertion order.
    pub async fn keys(&self) -> Result<Vec<K>> {
        let h = &self.handle;
        h.conn.call(h.id, "keys", &()).await
    }

    /// `list(d.values())`, in insertion order.
    pub async fn values(&self) -> Result<Vec<V>> {
        let h = &self.handle;
        h.conn.call(h.id, "values", &()).await
    }

    /// `list(d.items())`, in insertion order.
    pub async fn items(&self) -> Result<Vec<(K, V)>> {
        let h = &self.handle;
        h.conn.call(h.id, "items", &()).await
    }

    /// `d.update(pairs)`: all pairs are applied, or none if one key is unhashable.
    pub async fn update<I>(&self, pairs: I) -> Result<()>
    where
        I: IntoIterator<Item = (K, V)>,
    {
        let pairs: Vec<(K, V)> = pairs.into_iter().collect();
        let h = &self.handle;
        h.conn.call(h.id, "update", &(pairs,)).await
    }

    /// `d.setdefault(key, default)`: the value now stored under `key`.
    pub async fn setdefault(&self, key: &K, default: &V) -> Result<V> {
        let h = &self.handle;
        h.conn.call(h.id, "setdefault", &(key, default)).await
    }

    /// `d.popitem()`: the most recently inserted pair, `None` if empty. If this future is
    /// dropped after the pair was taken, it is put back as `remove` does.
    pub async fn pop_item(&self) -> Result<Option<(K, V)>> {
        let h = &self.handle;
        let undo = Undo::give_back_pair(h.id, "setdefault");
        let r = h.conn.call_undoable(h.id, "popitem", &(), undo).await;
        none_on(r, ErrorKind::KeyError)
    }

    /// `d.clear()`.
    pub async fn clear(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "clear", &()).await
    }

    /// `d.copy()` into any map type (`HashMap`, `BTreeMap`, ...).
    pub async fn to_map<M: DeserializeOwned>(&self) -> Result<M> {
        let h = &self.handle;
        h.conn.call(h.id, "copy", &()).await
    }
}

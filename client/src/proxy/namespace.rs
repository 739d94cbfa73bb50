use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{none_on, proxy_type};
use crate::error::{ErrorKind, Result};

proxy_type! {
    /// A shared `Namespace`: named attributes of any serde type.
    NamespaceProxy<>
}

impl NamespaceProxy {
    /// `ns.attr`, `None` if unset (Python raises `AttributeError`).
    pub async fn get<T: DeserializeOwned>(&self, attr: &str) -> Result<Option<T>> {
        let h = &self.handle;
        let r = h.conn.call(h.id, "__getattribute__", &(attr,)).await;
        none_on(r, ErrorKind::AttributeError)
    }

    /// `ns.attr = value`.
    pub async fn set<T: Serialize>(&self, attr: &str, value: &T) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "__setattr__", &(attr, value)).await
    }

    /// `del ns.attr`; false if it was not set.
    pub async fn remove(&self, attr: &str) -> Result<bool> {
        let h = &self.handle;
        let r = h.conn.call::<_, ()>(h.id, "__delattr__", &(attr,)).await;
        Ok(none_on(r, ErrorKind::AttributeError)?.is_some())
    }

    /// `hasattr(ns, attr)`.
    pub async fn contains(&self, attr: &str) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "__contains__", &(attr,)).await
    }

    /// Every attribute, decoded into a map type of your choice.
    pub async fn to_map<M: DeserializeOwned>(&self) -> Result<M> {
        let h = &self.handle;
        h.conn.call(h.id, "items", &()).await
    }

    /// Python's `repr(ns)`, e.g. `Namespace(a=1, b='x')`.
    pub async fn repr(&self) -> Result<String> {
        let h = &self.handle;
        h.conn.call(h.id, "__repr__", &()).await
    }
}

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::dict::none_on;
use super::proxy_type;
use crate::error::{ErrorKind, Result};

proxy_type! {
    /// A shared `Namespace`: named attributes of any serde type.
    NamespaceProxy<>
}

impl NamespaceProxy {
    /// `ns.attr`, `None` if unset (Python raises `AttributeError`).
    pub async fn get<T: DeserializeOwned>(&self, attr: &str) -> Result<Option<T>> {
        none_on(
            self.handle
                .send(self.handle.req("__getattribute__", 1).arg(attr))
                .await,
            ErrorKind::AttributeError,
        )
    }

    /// `ns.attr = value`.
    pub async fn set<T: Serialize>(&self, attr: &str, value: &T) -> Result<()> {
        self.handle
            .send(self.handle.req("__setattr__", 2).arg(attr).arg(value))
            .await
    }

    /// `del ns.attr`; false if it was not set.
    pub async fn remove(&self, attr: &str) -> Result<bool> {
        Ok(none_on(
            self.handle
                .send::<()>(self.handle.req("__delattr__", 1).arg(attr))
                .await,
            ErrorKind::AttributeError,
        )?
        .is_some())
    }

    /// `hasattr(ns, attr)`.
    pub async fn contains(&self, attr: &str) -> Result<bool> {
        self.handle
            .send(self.handle.req("__contains__", 1).arg(attr))
            .await
    }

    /// Every attribute, decoded into a map type of your choice.
    pub async fn to_map<M: DeserializeOwned>(&self) -> Result<M> {
        self.handle.send(self.handle.req("items", 0)).await
    }

    /// Python's `repr(ns)`, e.g. `Namespace(a=1, b='x')`.
    pub async fn repr(&self) -> Result<String> {
        self.handle.send(self.handle.req("__repr__", 0)).await
    }
}

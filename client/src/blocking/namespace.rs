//! Blocking `Namespace` proxy.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;

blocking_type! {
    /// A shared `Namespace` (blocking form of [`crate::proxy::NamespaceProxy`]): named
    /// attributes of any serde type.
    NamespaceProxy<>
}

impl NamespaceProxy {
    blocking_fns! {
        crate::proxy::NamespaceProxy;
        /// `ns.attr`, `None` if unset.
        fn get<T: DeserializeOwned>(&self, attr: &str) -> Result<Option<T>>;
        /// `ns.attr = value`.
        fn set<T: Serialize>(&self, attr: &str, value: &T) -> Result<()>;
        /// `del ns.attr`; false if it was not set.
        fn remove(&self, attr: &str) -> Result<bool>;
        /// `hasattr(ns, attr)`.
        fn contains(&self, attr: &str) -> Result<bool>;
        /// Every attribute, decoded into a map type of your choice.
        fn to_map<M: DeserializeOwned>(&self) -> Result<M>;
        /// Python's `repr(ns)`, e.g. `Namespace(a=1, b='x')`.
        fn repr(&self) -> Result<String>;
    }
}

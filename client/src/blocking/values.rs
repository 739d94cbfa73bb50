//! Blocking `Namespace`, `Value` and `Array` proxies.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;
use crate::proxy::ArrayElement;

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

blocking_type! {
    /// A shared `Value` (blocking form of [`crate::proxy::ValueProxy`]).
    ValueProxy<T>
}

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    blocking_fns! {
        crate::proxy::ValueProxy;
        /// `v.value`.
        fn get(&self) -> Result<T>;
        /// `v.value = value`.
        fn set(&self, value: &T) -> Result<()>;
    }
}

blocking_type! {
    /// A shared fixed-length typed array (blocking form of [`crate::proxy::ArrayProxy`]).
    ArrayProxy<T>
}

impl<T: ArrayElement> ArrayProxy<T> {
    blocking_fns! {
        crate::proxy::ArrayProxy;
        /// `len(a)`.
        fn len(&self) -> Result<usize>;
        /// `len(a) == 0`.
        fn is_empty(&self) -> Result<bool>;
        /// `a[index]` (negative from the end); `IndexError` if out of range.
        fn get(&self, index: i64) -> Result<T>;
        /// `a[index] = value`; `OverflowError` if the value does not fit the typecode.
        fn set(&self, index: i64, value: T) -> Result<()>;
        /// `a.tolist()`.
        fn to_vec(&self) -> Result<Vec<T>>;
    }
}

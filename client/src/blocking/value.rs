//! Blocking `Value` proxy.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;

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

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::proxy_type;
use crate::error::Result;

proxy_type! {
    /// A shared `Value`: one value of type `T`.
    ValueProxy<T>
}

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// `v.value`.
    pub async fn get(&self) -> Result<T> {
        let h = &self.handle;
        h.conn.call(h.id, "get", &()).await
    }

    /// `v.value = value`.
    pub async fn set(&self, value: &T) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "set", &(value,)).await
    }
}

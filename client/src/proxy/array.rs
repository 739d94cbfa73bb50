use serde::de::DeserializeOwned;
use serde::Serialize;

use super::proxy_type;
use crate::error::Result;

/// Element types an `Array` can hold, with Python's `array` typecode for each.
pub trait ArrayElement: Serialize + DeserializeOwned {
    const TYPECODE: &'static str;
}

macro_rules! elements {
    ($($t:ty => $code:literal),*) => {
        $(impl ArrayElement for $t { const TYPECODE: &'static str = $code; })*
    };
}
elements!(i8 => "b", u8 => "B", i16 => "h", u16 => "H", i32 => "i", u32 => "I",
          i64 => "q", u64 => "Q", f32 => "f", f64 => "d");

proxy_type! {
    /// A shared fixed-length typed array (Python's `Array(typecode, sequence)`).
    ArrayProxy<T>
}

impl<T: ArrayElement> ArrayProxy<T> {
    /// `len(a)`.
    pub async fn len(&self) -> Result<usize> {
        let h = &self.handle;
        h.conn.call(h.id, "__len__", &()).await
    }

    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// `a[index]` (negative from the end); `IndexError` if out of range.
    pub async fn get(&self, index: i64) -> Result<T> {
        let h = &self.handle;
        h.conn.call(h.id, "__getitem__", &(index,)).await
    }

    /// `a[index] = value`; `OverflowError` if the value does not fit the typecode.
    pub async fn set(&self, index: i64, value: T) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "__setitem__", &(index, value)).await
    }

    /// `a.tolist()`.
    pub async fn to_vec(&self) -> Result<Vec<T>> {
        let h = &self.handle;
        h.conn.call(h.id, "tolist", &()).await
    }
}

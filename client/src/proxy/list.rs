use std::ops::{Bound, RangeBounds};

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use syncman_protocol::value::{reinsert_index, EXT_SLICE};
use syncman_protocol::Value;

use super::{none_on, proxy_type};
use crate::connection::Undo;
use crate::error::{ErrorKind, Result};

proxy_type! {
    /// A shared `list`. Indexes are `i64` and may be negative (from the end), as in Python.
    ListProxy<T>
}

/// A Python slice `[start:stop]`, sent as syncman's slice extension type: an encoded
/// `[start, stop, step]` (serde's `_ExtStruct` is how rmp-serde writes an extension).
struct Slice(Vec<u8>);

impl Slice {
    fn of(range: impl RangeBounds<i64>) -> Slice {
        let bound = |b: Option<i128>| b.map_or(Value::Nil, Value::Int);
        let start = match range.start_bound() {
            Bound::Included(&s) => Some(s as i128),
            Bound::Excluded(&s) => Some(s as i128 + 1),
            Bound::Unbounded => None,
        };
        let stop = match range.end_bound() {
            Bound::Included(&e) => Some(e as i128 + 1),
            Bound::Excluded(&e) => Some(e as i128),
            Bound::Unbounded => None,
        };
        let parts = Value::Array(vec![bound(start), bound(stop), Value::Nil]);
        Slice(parts.to_bytes().to_vec())
    }
}

impl Serialize for Slice {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        /// Bytes as MessagePack `bin`, not as an array of integers.
        struct Bin<'a>(&'a [u8]);
        impl Serialize for Bin<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        s.serialize_newtype_struct(
            rmp_serde::MSGPACK_EXT_STRUCT_NAME,
            &(EXT_SLICE, Bin(&self.0)),
        )
    }
}

impl<T> ListProxy<T>
where
    T: Serialize + DeserializeOwned,
{
    /// `l.append(value)`.
    pub async fn push(&self, value: &T) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "append", &(value,)).await
    }

    /// `l.pop()`: the last item, `None` if empty. If this future is dropped after the item
    /// was taken (or it cannot be decoded into `T`), the item is appended back.
    pub async fn pop(&self) -> Result<Option<T>> {
        let h = &self.handle;
        let undo = Undo::give_back(h.id, "append");
        let r = h.conn.call_undoable(h.id, "pop", &(), undo).await;
        none_on(r, ErrorKind::IndexError)
    }

    /// `l.pop(index)`: an `IndexError` if out of range. If this future is dropped after the
    /// item was taken (or it cannot be decoded into `T`), it is inserted back where it was.
    pub async fn pop_at(&self, index: i64) -> Result<T> {
        let h = &self.handle;
        let undo = Undo::give_back_with(h.id, "insert", &reinsert_index(index))?;
        h.conn.call_undoable(h.id, "pop", &(index,), undo).await
    }

    /// `l[index]`, `None` if out of range.
    pub async fn get(&self, index: i64) -> Result<Option<T>> {
        let h = &self.handle;
        let r = h.conn.call(h.id, "__getitem__", &(index,)).await;
        none_on(r, ErrorKind::IndexError)
    }

    /// `l[index] = value`: an `IndexError` if out of range.
    pub async fn set(&self, index: i64, value: &T) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "__setitem__", &(index, value)).await
    }

    /// `l.insert(index, value)`.
    pub async fn insert(&self, index: i64, value: &T) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "insert", &(index, value)).await
    }

    /// `l.extend(values)`.
    pub async fn extend<I: IntoIterator<Item = T>>(&self, values: I) -> Result<()> {
        let values: Vec<T> = values.into_iter().collect();
        let h = &self.handle;
        h.conn.call(h.id, "extend", &(values,)).await
    }

    /// `len(l)`.
    pub async fn len(&self) -> Result<usize> {
        let h = &self.handle;
        h.conn.call(h.id, "__len__", &()).await
    }

    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// `l[:]`: every item.
    pub async fn to_vec(&self) -> Result<Vec<T>> {
        let h = &self.handle;
        h.conn.call(h.id, "copy", &()).await
    }

    /// `l[start:stop]` (Python slice rules: out-of-range bounds are clamped).
    pub async fn slice(&self, range: impl RangeBounds<i64>) -> Result<Vec<T>> {
        let h = &self.handle;
        h.conn.call(h.id, "__getitem__", &(Slice::of(range),)).await
    }

    /// `l[start:stop] = values` (may change the length).
    pub async fn splice<I: IntoIterator<Item = T>>(
        &self,
        range: impl RangeBounds<i64>,
        values: I,
    ) -> Result<()> {
        let values: Vec<T> = values.into_iter().collect();
        let h = &self.handle;
        h.conn
            .call(h.id, "__setitem__", &(Slice::of(range), values))
            .await
    }

    /// `del l[start:stop]`.
    pub async fn delete_range(&self, range: impl RangeBounds<i64>) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "__delitem__", &(Slice::of(range),)).await
    }

    /// `value in l`.
    pub async fn contains(&self, value: &T) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "__contains__", &(value,)).await
    }

    /// `l.index(value)`, `None` if absent.
    pub async fn index_of(&self, value: &T) -> Result<Option<usize>> {
        let h = &self.handle;
        none_on(
            h.conn.call(h.id, "index", &(value,)).await,
            ErrorKind::ValueError,
        )
    }

    /// `l.count(value)`.
    pub async fn count(&self, value: &T) -> Result<usize> {
        let h = &self.handle;
        h.conn.call(h.id, "count", &(value,)).await
    }

    /// `l.remove(value)`: removes the first equal item; false if there was none.
    pub async fn remove(&self, value: &T) -> Result<bool> {
        let h = &self.handle;
        let r = h.conn.call::<_, ()>(h.id, "remove", &(value,)).await;
        Ok(none_on(r, ErrorKind::ValueError)?.is_some())
    }

    /// `l.reverse()`.
    pub async fn reverse(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "reverse", &()).await
    }

    /// `l.sort(reverse=...)` with Python's ordering (`TypeError` for mixed types).
    pub async fn sort(&self, reverse: bool) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "sort", &(reverse,)).await
    }

    /// `l.clear()`.
    pub async fn clear(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "clear", &()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_is_sent_as_the_slice_extension() {
        let encoded = rmp_serde::to_vec(&Slice::of(2..5)).unwrap();
        assert_eq!(
            syncman_protocol::value::decode(&encoded).unwrap(),
            Value::Slice(Some(2), Some(5), None)
        );
        let encoded = rmp_serde::to_vec(&Slice::of(..=-2)).unwrap();
        assert_eq!(
            syncman_protocol::value::decode(&encoded).unwrap(),
            Value::Slice(None, Some(-1), None)
        );
    }
}

use std::ops::{Bound, RangeBounds};

use serde::de::DeserializeOwned;
use serde::Serialize;
use syncman_protocol::Value;

use super::dict::none_on;
use super::proxy_type;
use crate::error::{ErrorKind, Result};

proxy_type! {
    /// A shared `list`. Indexes are `i64` and may be negative (from the end), as in Python.
    ListProxy<T>
}

/// Encodes a Python slice `[start:stop]` for a range.
fn slice_of(range: impl RangeBounds<i64>) -> Vec<u8> {
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
    Value::Slice(start, stop, None).to_bytes().to_vec()
}

impl<T> ListProxy<T>
where
    T: Serialize + DeserializeOwned,
{
    /// `l.append(value)`.
    pub async fn push(&self, value: &T) -> Result<()> {
        self.handle
            .send(self.handle.req("append", 1).arg(value))
            .await
    }

    /// `l.pop()`: the last item, `None` if empty.
    pub async fn pop(&self) -> Result<Option<T>> {
        none_on(
            self.handle.send(self.handle.req("pop", 0)).await,
            ErrorKind::IndexError,
        )
    }

    /// `l.pop(index)`: an `IndexError` if out of range.
    pub async fn pop_at(&self, index: i64) -> Result<T> {
        self.handle
            .send(self.handle.req("pop", 1).arg(&index))
            .await
    }

    /// `l[index]`, `None` if out of range.
    pub async fn get(&self, index: i64) -> Result<Option<T>> {
        none_on(
            self.handle
                .send(self.handle.req("__getitem__", 1).arg(&index))
                .await,
            ErrorKind::IndexError,
        )
    }

    /// `l[index] = value`: an `IndexError` if out of range.
    pub async fn set(&self, index: i64, value: &T) -> Result<()> {
        self.handle
            .send(self.handle.req("__setitem__", 2).arg(&index).arg(value))
            .await
    }

    /// `l.insert(index, value)`.
    pub async fn insert(&self, index: i64, value: &T) -> Result<()> {
        self.handle
            .send(self.handle.req("insert", 2).arg(&index).arg(value))
            .await
    }

    /// `l.extend(values)`.
    pub async fn extend<I: IntoIterator<Item = T>>(&self, values: I) -> Result<()> {
        let values: Vec<T> = values.into_iter().collect();
        self.handle
            .send(self.handle.req("extend", 1).arg(&values))
            .await
    }

    /// `len(l)`.
    pub async fn len(&self) -> Result<usize> {
        self.handle.send(self.handle.req("__len__", 0)).await
    }

    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// `l[:]`: every item.
    pub async fn to_vec(&self) -> Result<Vec<T>> {
        self.handle.send(self.handle.req("copy", 0)).await
    }

    /// `l[start:stop]` (Python slice rules: out-of-range bounds are clamped).
    pub async fn slice(&self, range: impl RangeBounds<i64>) -> Result<Vec<T>> {
        self.handle
            .send(self.handle.req("__getitem__", 1).raw_arg(&slice_of(range)))
            .await
    }

    /// `l[start:stop] = values` (may change the length).
    pub async fn splice<I: IntoIterator<Item = T>>(
        &self,
        range: impl RangeBounds<i64>,
        values: I,
    ) -> Result<()> {
        let values: Vec<T> = values.into_iter().collect();
        let req = self
            .handle
            .req("__setitem__", 2)
            .raw_arg(&slice_of(range))
            .arg(&values);
        self.handle.send(req).await
    }

    /// `del l[start:stop]`.
    pub async fn delete_range(&self, range: impl RangeBounds<i64>) -> Result<()> {
        self.handle
            .send(self.handle.req("__delitem__", 1).raw_arg(&slice_of(range)))
            .await
    }

    /// `value in l`.
    pub async fn contains(&self, value: &T) -> Result<bool> {
        self.handle
            .send(self.handle.req("__contains__", 1).arg(value))
            .await
    }

    /// `l.index(value)`, `None` if absent.
    pub async fn index_of(&self, value: &T) -> Result<Option<usize>> {
        none_on(
            self.handle
                .send(self.handle.req("index", 1).arg(value))
                .await,
            ErrorKind::ValueError,
        )
    }

    /// `l.count(value)`.
    pub async fn count(&self, value: &T) -> Result<usize> {
        self.handle
            .send(self.handle.req("count", 1).arg(value))
            .await
    }

    /// `l.remove(value)`: removes the first equal item; false if there was none.
    pub async fn remove(&self, value: &T) -> Result<bool> {
        Ok(none_on(
            self.handle
                .send::<()>(self.handle.req("remove", 1).arg(value))
                .await,
            ErrorKind::ValueError,
        )?
        .is_some())
    }

    /// `l.reverse()`.
    pub async fn reverse(&self) -> Result<()> {
        self.handle.send(self.handle.req("reverse", 0)).await
    }

    /// `l.sort(reverse=...)` with Python's ordering (`TypeError` for mixed types).
    pub async fn sort(&self, reverse: bool) -> Result<()> {
        self.handle
            .send(self.handle.req("sort", 1).arg(&reverse))
            .await
    }

    /// `l.clear()`.
    pub async fn clear(&self) -> Result<()> {
        self.handle.send(self.handle.req("clear", 0)).await
    }
}

//! Blocking `list` proxy.

use std::ops::RangeBounds;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;

blocking_type! {
    /// A shared `list` (blocking form of [`crate::proxy::ListProxy`]). Indexes are `i64`
    /// and may be negative (from the end), as in Python.
    ListProxy<T>
}

impl<T> ListProxy<T>
where
    T: Serialize + DeserializeOwned,
{
    blocking_fns! {
        crate::proxy::ListProxy;
        /// `l.append(value)`.
        fn push(&self, value: &T) -> Result<()>;
        /// `l.pop()`: the last item, `None` if empty.
        fn pop(&self) -> Result<Option<T>>;
        /// `l.pop(index)`: an `IndexError` if out of range.
        fn pop_at(&self, index: i64) -> Result<T>;
        /// `l[index]`, `None` if out of range.
        fn get(&self, index: i64) -> Result<Option<T>>;
        /// `l[index] = value`: an `IndexError` if out of range.
        fn set(&self, index: i64, value: &T) -> Result<()>;
        /// `l.insert(index, value)`.
        fn insert(&self, index: i64, value: &T) -> Result<()>;
        /// `l.extend(values)`.
        fn extend(&self, values: impl IntoIterator<Item = T>) -> Result<()>;
        /// `len(l)`.
        fn len(&self) -> Result<usize>;
        /// `len(l) == 0`.
        fn is_empty(&self) -> Result<bool>;
        /// `l[:]`: every item.
        fn to_vec(&self) -> Result<Vec<T>>;
        /// `l[start:stop]` (Python slice rules: out-of-range bounds are clamped).
        fn slice(&self, range: impl RangeBounds<i64>) -> Result<Vec<T>>;
        /// `l[start:stop] = values` (may change the length).
        fn splice(
            &self,
            range: impl RangeBounds<i64>,
            values: impl IntoIterator<Item = T>,
        ) -> Result<()>;
        /// `del l[start:stop]`.
        fn delete_range(&self, range: impl RangeBounds<i64>) -> Result<()>;
        /// `value in l`.
        fn contains(&self, value: &T) -> Result<bool>;
        /// `l.index(value)`, `None` if absent.
        fn index_of(&self, value: &T) -> Result<Option<usize>>;
        /// `l.count(value)`.
        fn count(&self, value: &T) -> Result<usize>;
        /// `l.remove(value)`: removes the first equal item; false if there was none.
        fn remove(&self, value: &T) -> Result<bool>;
        /// `l.reverse()`.
        fn reverse(&self) -> Result<()>;
        /// `l.sort(reverse=...)` with Python's ordering.
        fn sort(&self, reverse: bool) -> Result<()>;
        /// `l.clear()`.
        fn clear(&self) -> Result<()>;
    }
}

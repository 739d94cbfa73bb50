//! Blocking `Array` proxy.

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;
use crate::proxy::ArrayElement;

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

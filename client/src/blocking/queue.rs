//! The blocking queue proxy.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;

blocking_type! {
    /// A shared FIFO queue, `Queue` or `JoinableQueue` (blocking form of
    /// [`crate::proxy::QueueProxy`]). Waits park on the node; timeouts are kept there.
    QueueProxy<T>
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    blocking_fns! {
        crate::proxy::QueueProxy;
        /// `q.put(item)`: waits for room in a bounded queue.
        fn put(&self, item: &T) -> Result<()>;
        /// `q.put(item, timeout=...)`: false if still full when the timeout passes.
        fn put_timeout(&self, item: &T, timeout: Duration) -> Result<bool>;
        /// `q.put_nowait(item)`: false if the queue is full.
        fn try_put(&self, item: &T) -> Result<bool>;
        /// `q.get()`: waits for an item.
        fn get(&self) -> Result<T>;
        /// `q.get(timeout=...)`: `None` if no item came in time.
        fn get_timeout(&self, timeout: Duration) -> Result<Option<T>>;
        /// `q.get_nowait()`: `None` if empty.
        fn try_get(&self) -> Result<Option<T>>;
        /// `q.qsize()`.
        fn len(&self) -> Result<usize>;
        /// `q.empty()`.
        fn is_empty(&self) -> Result<bool>;
        /// `q.full()`.
        fn is_full(&self) -> Result<bool>;
        /// `q.task_done()` (joinable queues).
        fn task_done(&self) -> Result<()>;
        /// `q.join()` (joinable queues): waits until every item put has been marked done.
        fn join(&self) -> Result<()>;
    }
}

//! The blocking queue proxy.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::macros::{blocking_fns, blocking_type};
use super::runtime::{wrap, FromAsync, Rt};
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
        /// Waits for an item and takes it on a lease (at-least-once).
        fn get_lease(&self) -> Result<LeasedItem<T>> => wrap;
        /// As `get_lease`, up to `timeout`: `None` if no item came.
        fn get_lease_timeout(&self, timeout: Duration) -> Result<Option<LeasedItem<T>>> => wrap;
        /// Takes the front item on a lease if there is one now.
        fn try_get_lease(&self) -> Result<Option<LeasedItem<T>>> => wrap;
        /// `q.qsize()`.
        fn len(&self) -> Result<usize>;
        /// `q.empty()`.
        fn is_empty(&self) -> Result<bool>;
        /// `q.full()`.
        fn is_full(&self) -> Result<bool>;
        /// `q.task_done()` (any queue, as in CPython).
        fn task_done(&self) -> Result<()>;
        /// `q.join()` (any queue): waits until every item put has been marked done.
        fn join(&self) -> Result<()>;
    }
}

/// An item lent out by [`QueueProxy::get_lease`] (blocking form of
/// [`crate::proxy::LeasedItem`]): acknowledge it once processed; dropped unacknowledged, it
/// goes back to the queue's front.
#[must_use = "the item goes back to the queue unless it is acknowledged"]
#[derive(Debug)]
pub struct LeasedItem<T> {
    inner: crate::proxy::LeasedItem<T>,
    rt: Arc<Rt>,
}

impl<T> LeasedItem<T> {
    /// The lease's receipt, unique within its queue.
    pub fn receipt(&self) -> u64 {
        self.inner.receipt()
    }

    /// The item was processed: the node drops its copy. Returns the item.
    pub fn ack(self) -> Result<T> {
        let LeasedItem { inner, rt } = self;
        rt.block_on(inner.ack())
    }

    /// Gives the item back to the front of the queue now.
    pub fn nack(self) -> Result<()> {
        let LeasedItem { inner, rt } = self;
        rt.block_on(inner.nack())
    }
}

impl<T> std::ops::Deref for LeasedItem<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> FromAsync<crate::proxy::LeasedItem<T>> for LeasedItem<T> {
    fn from_async(inner: crate::proxy::LeasedItem<T>, rt: &Arc<Rt>) -> Self {
        LeasedItem {
            inner,
            rt: rt.clone(),
        }
    }
}

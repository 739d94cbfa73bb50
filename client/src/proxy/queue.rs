use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{none_on, proxy_type, ObjectHandle};
use crate::connection::Undo;
use crate::error::{ErrorKind, Result};

proxy_type! {
    /// A shared FIFO queue (`Queue` or `JoinableQueue`). Blocking calls park on the node
    /// and cost no thread there; timeouts are kept by the node.
    ///
    /// # Cancellation
    /// Dropping a `get`, `get_timeout` or `try_get` future withdraws the wait on the node, so
    /// it takes no item. If the node had already handed an item over (or the item cannot be
    /// decoded into `T`), the item goes back to the queue's front.
    ///
    /// # Leases: at-least-once
    /// [`get_lease`](Self::get_lease) hands the item out with a receipt, as a
    /// [`LeasedItem`]: [`ack`](LeasedItem::ack) it once processed. Until then the node keeps a
    /// copy, and if the lease is dropped, given back with [`nack`](LeasedItem::nack), or this
    /// connection ends first (the process is killed, the session expires), the item goes
    /// back to the front of the queue for the next consumer. Nothing is lost; an item
    /// processed but not acknowledged is processed again. A leased item keeps its slot in a
    /// bounded queue (it counts for `full()`, not for `qsize()`).
    QueueProxy<T>
}

/// An item lent out by [`QueueProxy::get_lease`]: it derefs to the item. Acknowledge it
/// once processed; dropping it unacknowledged gives it back to the queue's front.
#[must_use = "the item goes back to the queue unless it is acknowledged"]
#[derive(Debug)]
pub struct LeasedItem<T> {
    handle: Arc<ObjectHandle>,
    receipt: u64,
    item: Option<T>,
}

impl<T> LeasedItem<T> {
    /// The lease's receipt, unique within its queue.
    pub fn receipt(&self) -> u64 {
        self.receipt
    }

    /// The item was processed: the node drops its copy. Returns the item. Fails with
    /// `ValueError` if the lease had already ended (its session ended first, and the item
    /// went back to the queue: someone else will process it again).
    pub async fn ack(mut self) -> Result<T> {
        let item = self.item.take();
        let h = &self.handle;
        h.conn.call::<_, ()>(h.id, "ack", &(self.receipt,)).await?;
        item.ok_or_else(|| crate::Error::Protocol("a lease without its item".into()))
    }

    /// Gives the item back to the front of the queue now, and waits for the node.
    pub async fn nack(mut self) -> Result<()> {
        self.item = None;
        let h = &self.handle;
        h.conn.call(h.id, "nack", &(self.receipt,)).await
    }
}

impl<T> std::ops::Deref for LeasedItem<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // Present until `ack` or `nack` consumes the lease.
        self.item.as_ref().expect("a live lease holds its item")
    }
}

impl<T> Drop for LeasedItem<T> {
    fn drop(&mut self) {
        if self.item.is_some() {
            let h = &self.handle;
            h.conn.forget(h.id, "nack", &(self.receipt,));
        }
    }
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// A late item goes back to the front of the queue.
    fn unget(&self) -> Undo {
        Undo::give_back(self.handle.id, "unget")
    }

    /// `q.put(item)`: waits for room in a bounded queue.
    pub async fn put(&self, item: &T) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "put", &(item,)).await
    }

    /// `q.put(item, timeout=...)`: false if still full when the timeout passes.
    pub async fn put_timeout(&self, item: &T, timeout: Duration) -> Result<bool> {
        let h = &self.handle;
        let args = (item, true, timeout.as_secs_f64());
        full_is_false(h.conn.call(h.id, "put", &args).await)
    }

    /// `q.put_nowait(item)`: false if the queue is full.
    pub async fn try_put(&self, item: &T) -> Result<bool> {
        let h = &self.handle;
        full_is_false(h.conn.call(h.id, "put_nowait", &(item,)).await)
    }

    /// `q.get()`: waits for an item.
    pub async fn get(&self) -> Result<T> {
        let h = &self.handle;
        h.conn.call_undoable(h.id, "get", &(), self.unget()).await
    }

    /// `q.get(timeout=...)`: `None` if no item came in time (Python raises `Empty`).
    pub async fn get_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        let h = &self.handle;
        let args = (true, timeout.as_secs_f64());
        let r = h.conn.call_undoable(h.id, "get", &args, self.unget()).await;
        none_on(r, ErrorKind::Empty)
    }

    /// `q.get_nowait()`: `None` if empty.
    pub async fn try_get(&self) -> Result<Option<T>> {
        let h = &self.handle;
        let r = h
            .conn
            .call_undoable(h.id, "get_nowait", &(), self.unget())
            .await;
        none_on(r, ErrorKind::Empty)
    }

    /// A late lease goes back: `nack(receipt)` with the answer's receipt.
    fn nack_late_lease(&self) -> Undo {
        Undo::release_element(self.handle.id, "nack", 0)
    }

    fn lease(&self, (receipt, item): (u64, T)) -> LeasedItem<T> {
        LeasedItem {
            handle: self.handle.clone(),
            receipt,
            item: Some(item),
        }
    }

    /// Waits for an item and takes it on a lease (at-least-once; see the type's docs).
    pub async fn get_lease(&self) -> Result<LeasedItem<T>> {
        let h = &self.handle;
        let answer = h
            .conn
            .call_undoable(h.id, "get_lease", &(), self.nack_late_lease())
            .await?;
        Ok(self.lease(answer))
    }

    /// As [`get_lease`](Self::get_lease), up to `timeout`: `None` if no item came.
    pub async fn get_lease_timeout(&self, timeout: Duration) -> Result<Option<LeasedItem<T>>> {
        let h = &self.handle;
        let args = (true, timeout.as_secs_f64());
        let r = h
            .conn
            .call_undoable(h.id, "get_lease", &args, self.nack_late_lease())
            .await;
        Ok(none_on(r, ErrorKind::Empty)?.map(|answer| self.lease(answer)))
    }

    /// Takes the front item on a lease if there is one now.
    pub async fn try_get_lease(&self) -> Result<Option<LeasedItem<T>>> {
        let h = &self.handle;
        let r = h
            .conn
            .call_undoable(h.id, "get_lease", &(false,), self.nack_late_lease())
            .await;
        Ok(none_on(r, ErrorKind::Empty)?.map(|answer| self.lease(answer)))
    }

    /// `q.qsize()`.
    pub async fn len(&self) -> Result<usize> {
        let h = &self.handle;
        h.conn.call(h.id, "qsize", &()).await
    }

    /// `q.empty()`.
    pub async fn is_empty(&self) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "empty", &()).await
    }

    /// `q.full()`.
    pub async fn is_full(&self) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "full", &()).await
    }

    /// `q.task_done()` (any queue, as in CPython): `ValueError` if called more times than items put.
    pub async fn task_done(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "task_done", &()).await
    }

    /// `q.join()` (any queue): waits until every item put has been marked done.
    pub async fn join(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "join", &()).await
    }
}

fn full_is_false(r: Result<()>) -> Result<bool> {
    Ok(none_on(r, ErrorKind::Full)?.is_some())
}

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{none_on, proxy_type};
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
    QueueProxy<T>
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

    /// `q.task_done()` (joinable queues): `ValueError` if called more times than items put.
    pub async fn task_done(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "task_done", &()).await
    }

    /// `q.join()` (joinable queues): waits until every item put has been marked done.
    pub async fn join(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "join", &()).await
    }
}

fn full_is_false(r: Result<()>) -> Result<bool> {
    Ok(none_on(r, ErrorKind::Full)?.is_some())
}

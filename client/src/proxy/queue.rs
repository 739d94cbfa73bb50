use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::dict::none_on;
use super::proxy_type;
use crate::connection::Undo;
use crate::error::{ErrorKind, Result};

proxy_type! {
    /// A shared FIFO queue (`Queue` or `JoinableQueue`). Blocking calls park on the node
    /// and cost no thread there; timeouts are kept by the node.
    ///
    /// # Cancellation
    /// Dropping a `get` future withdraws the wait on the node, so it takes no item. If the
    /// node had already handed an item over, the item goes back to the queue's front.
    QueueProxy<T>
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    fn undo_get(&self) -> Option<Undo> {
        Some(Undo {
            object: self.handle.id(),
            method: "unget",
            pass_result: true,
            ignore_falsy: false,
        })
    }

    /// `q.put(item)`: waits for room in a bounded queue.
    pub async fn put(&self, item: &T) -> Result<()> {
        self.handle.send(self.handle.req("put", 1).arg(item)).await
    }

    /// `q.put(item, timeout=...)`: false if still full when the timeout passes.
    pub async fn put_timeout(&self, item: &T, timeout: Duration) -> Result<bool> {
        let req = self
            .handle
            .req("put", 3)
            .arg(item)
            .arg(&true)
            .arg(&timeout.as_secs_f64());
        full_is_false(self.handle.send::<()>(req).await)
    }

    /// `q.put_nowait(item)`: false if the queue is full.
    pub async fn try_put(&self, item: &T) -> Result<bool> {
        full_is_false(
            self.handle
                .send::<()>(self.handle.req("put_nowait", 1).arg(item))
                .await,
        )
    }

    /// `q.get()`: waits for an item.
    pub async fn get(&self) -> Result<T> {
        self.handle
            .send_with_undo(self.handle.req("get", 0), self.undo_get())
            .await
    }

    /// `q.get(timeout=...)`: `None` if no item came in time (Python raises `Empty`).
    pub async fn get_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        let req = self
            .handle
            .req("get", 2)
            .arg(&true)
            .arg(&timeout.as_secs_f64());
        none_on(
            self.handle.send_with_undo(req, self.undo_get()).await,
            ErrorKind::Empty,
        )
    }

    /// `q.get_nowait()`: `None` if empty.
    pub async fn try_get(&self) -> Result<Option<T>> {
        none_on(
            self.handle.send(self.handle.req("get_nowait", 0)).await,
            ErrorKind::Empty,
        )
    }

    /// `q.qsize()`.
    pub async fn len(&self) -> Result<usize> {
        self.handle.send(self.handle.req("qsize", 0)).await
    }

    /// `q.empty()`.
    pub async fn is_empty(&self) -> Result<bool> {
        self.handle.send(self.handle.req("empty", 0)).await
    }

    /// `q.full()`.
    pub async fn is_full(&self) -> Result<bool> {
        self.handle.send(self.handle.req("full", 0)).await
    }

    /// `q.task_done()` (joinable queues): `ValueError` if called more times than items put.
    pub async fn task_done(&self) -> Result<()> {
        self.handle.send(self.handle.req("task_done", 0)).await
    }

    /// `q.join()` (joinable queues): waits until every item put has been marked done.
    pub async fn join(&self) -> Result<()> {
        self.handle.send(self.handle.req("join", 0)).await
    }
}

fn full_is_false(r: Result<()>) -> Result<bool> {
    Ok(none_on(r, ErrorKind::Full)?.is_some())
}

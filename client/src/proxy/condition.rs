use std::future::Future;
use std::time::Duration;

use super::proxy_type;
use crate::connection::Undo;
use crate::error::Result;

proxy_type! {
    /// A shared `Condition` (over a re-entrant lock held by this connection).
    ///
    /// # Cancellation
    /// A `wait` whose future is dropped is withdrawn and does *not* take the lock back.
    ConditionProxy<>
}

impl ConditionProxy {
    /// Takes the condition's lock (re-entrant for this connection).
    ///
    /// If this future is dropped and the grant raced the cancel, the lock is released
    /// again (as for [`crate::LockProxy::acquire`]).
    pub async fn acquire(&self) -> Result<()> {
        let h = &self.handle;
        let undo = Undo::release(h.id, "release", false);
        h.conn
            .call_undoable::<_, bool>(h.id, "acquire", &(), undo)
            .await
            .map(|_| ())
    }

    /// Releases one level of the lock.
    pub async fn release(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "release", &()).await
    }

    /// Releases the lock, waits for a notify, takes the lock back.
    pub async fn wait(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call::<_, bool>(h.id, "wait", &()).await.map(|_| ())
    }

    /// As `wait`, up to `timeout`: true if notified, false if the time ran out (the lock
    /// is held again either way).
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "wait", &(timeout.as_secs_f64(),)).await
    }

    /// Python's `wait_for`: waits until `predicate` (evaluated with the lock held) is true,
    /// or `timeout` passes; returns the predicate's last value.
    pub async fn wait_for<F, Fut>(
        &self,
        mut predicate: F,
        timeout: Option<Duration>,
    ) -> Result<bool>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool>>,
    {
        let end = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            if predicate().await? {
                return Ok(true);
            }
            match end {
                None => self.wait().await?,
                Some(end) => {
                    let left = end.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return predicate().await;
                    }
                    self.wait_timeout(left).await?;
                }
            }
        }
    }

    /// Wakes up to `n` waiters (the lock must be held).
    pub async fn notify(&self, n: usize) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "notify", &(n,)).await
    }

    /// Wakes every waiter (the lock must be held).
    pub async fn notify_all(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "notify_all", &()).await
    }
}

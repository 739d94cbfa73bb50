//! Condition, Event and Barrier proxies.

use std::future::Future;
use std::time::Duration;

use super::proxy_type;
use crate::error::{ErrorKind, Result};

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
        let undo = crate::connection::Undo {
            object: self.handle.id(),
            method: "release",
            pass_result: false,
            ignore_falsy: true,
        };
        self.handle
            .send_with_undo::<bool>(self.handle.req("acquire", 0), Some(undo))
            .await
            .map(|_| ())
    }

    /// Releases one level of the lock.
    pub async fn release(&self) -> Result<()> {
        self.handle.send(self.handle.req("release", 0)).await
    }

    /// Releases the lock, waits for a notify, takes the lock back.
    pub async fn wait(&self) -> Result<()> {
        self.handle
            .send::<bool>(self.handle.req("wait", 0))
            .await
            .map(|_| ())
    }

    /// As `wait`, up to `timeout`: true if notified, false if the time ran out (the lock
    /// is held again either way).
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.handle
            .send(self.handle.req("wait", 1).arg(&timeout.as_secs_f64()))
            .await
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
        self.handle.send(self.handle.req("notify", 1).arg(&n)).await
    }

    /// Wakes every waiter (the lock must be held).
    pub async fn notify_all(&self) -> Result<()> {
        self.handle.send(self.handle.req("notify_all", 0)).await
    }
}

proxy_type! {
    /// A shared `Event`.
    EventProxy<>
}

impl EventProxy {
    pub async fn set(&self) -> Result<()> {
        self.handle.send(self.handle.req("set", 0)).await
    }

    pub async fn clear(&self) -> Result<()> {
        self.handle.send(self.handle.req("clear", 0)).await
    }

    pub async fn is_set(&self) -> Result<bool> {
        self.handle.send(self.handle.req("is_set", 0)).await
    }

    /// Waits until the flag is set.
    pub async fn wait(&self) -> Result<()> {
        self.handle
            .send::<bool>(self.handle.req("wait", 0))
            .await
            .map(|_| ())
    }

    /// Waits up to `timeout`; the flag's state at the end.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.handle
            .send(self.handle.req("wait", 1).arg(&timeout.as_secs_f64()))
            .await
    }
}

proxy_type! {
    /// A shared `Barrier`.
    ///
    /// A party that times out, cancels its `wait` or disconnects breaks the barrier: every
    /// waiter gets an error of kind [`ErrorKind::BrokenBarrier`].
    BarrierProxy<>
}

impl BarrierProxy {
    /// Waits for all parties; returns this caller's arrival index (0..parties).
    pub async fn wait(&self) -> Result<u64> {
        self.handle.send(self.handle.req("wait", 0)).await
    }

    /// As `wait`, breaking the barrier if not all parties arrive within `timeout`.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<u64> {
        self.handle
            .send(self.handle.req("wait", 1).arg(&timeout.as_secs_f64()))
            .await
    }

    /// Breaks the barrier: current and future waiters fail until `reset`.
    pub async fn abort(&self) -> Result<()> {
        self.handle.send(self.handle.req("abort", 0)).await
    }

    /// Returns the barrier to its initial state; current waiters fail.
    pub async fn reset(&self) -> Result<()> {
        self.handle.send(self.handle.req("reset", 0)).await
    }

    pub async fn parties(&self) -> Result<u64> {
        self.handle.send(self.handle.req("parties", 0)).await
    }

    pub async fn n_waiting(&self) -> Result<u64> {
        self.handle.send(self.handle.req("n_waiting", 0)).await
    }

    pub async fn broken(&self) -> Result<bool> {
        self.handle.send(self.handle.req("broken", 0)).await
    }
}

/// True for the error a broken barrier gives.
pub fn is_broken_barrier(e: &crate::Error) -> bool {
    e.kind() == Some(&ErrorKind::BrokenBarrier)
}

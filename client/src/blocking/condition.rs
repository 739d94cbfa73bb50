//! Blocking `Condition` proxy and its guard.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::macros::{blocking_fns, blocking_type};
use super::runtime::{wrap, FromAsync, Rt};
use crate::error::Result;

blocking_type! {
    /// A shared `Condition` (blocking form of [`crate::proxy::ConditionProxy`]). The lock
    /// is held by the [`ConditionGuard`], so threads sharing one
    /// [`Manager`](super::Manager) exclude each other.
    ConditionProxy<>
}

impl ConditionProxy {
    blocking_fns! {
        crate::proxy::ConditionProxy;
        /// Waits for the condition's lock.
        fn acquire(&self) -> Result<ConditionGuard> => wrap;
        /// Takes the lock if it is free now.
        fn try_acquire(&self) -> Result<Option<ConditionGuard>> => wrap;
        /// Waits up to `timeout` for the lock.
        fn acquire_timeout(&self, timeout: Duration) -> Result<Option<ConditionGuard>> => wrap;
    }
}

/// A hold of a [`ConditionProxy`]'s lock (blocking form of
/// [`crate::proxy::ConditionGuard`]); dropping it releases the lock if it is held.
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct ConditionGuard {
    inner: crate::proxy::ConditionGuard,
    rt: Arc<Rt>,
}

impl ConditionGuard {
    /// The fencing token of the current grant.
    pub fn fencing_token(&self) -> u64 {
        self.inner.fencing_token()
    }

    /// Whether this guard holds the lock.
    pub fn is_held(&self) -> bool {
        self.inner.is_held()
    }

    /// Releases the lock, waits for a notify, takes the lock back.
    pub fn wait(&mut self) -> Result<()> {
        self.rt.block_on(self.inner.wait())
    }

    /// As `wait`, up to `timeout`: true if notified, false if the time ran out (the lock
    /// is held again either way).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool> {
        self.rt.block_on(self.inner.wait_timeout(timeout))
    }

    /// Python's `wait_for`: waits until `predicate` (evaluated with the lock held) is true,
    /// or `timeout` passes; returns the predicate's last value. The predicate may make
    /// blocking calls (it runs on this thread, between waits).
    pub fn wait_for<F>(&mut self, mut predicate: F, timeout: Option<Duration>) -> Result<bool>
    where
        F: FnMut() -> Result<bool>,
    {
        let end = timeout.map(|t| Instant::now() + t);
        loop {
            if predicate()? {
                return Ok(true);
            }
            match end {
                None => self.wait()?,
                Some(end) => {
                    let left = end.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return predicate();
                    }
                    self.wait_timeout(left)?;
                }
            }
        }
    }

    /// Wakes up to `n` waiters.
    pub fn notify(&self, n: usize) -> Result<()> {
        self.rt.block_on(self.inner.notify(n))
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) -> Result<()> {
        self.rt.block_on(self.inner.notify_all())
    }

    /// Takes the lock once more through this guard (re-entry).
    pub fn reenter(&self) -> Result<ConditionGuard> {
        let inner = self.rt.block_on(self.inner.reenter())?;
        Ok(ConditionGuard::from_async(inner, &self.rt))
    }

    /// Releases one level of the lock and waits for the node to confirm.
    pub fn release(self) -> Result<()> {
        let ConditionGuard { inner, rt } = self;
        rt.block_on(inner.release())
    }
}

impl FromAsync<crate::proxy::ConditionGuard> for ConditionGuard {
    fn from_async(inner: crate::proxy::ConditionGuard, rt: &Arc<Rt>) -> Self {
        ConditionGuard {
            inner,
            rt: rt.clone(),
        }
    }
}

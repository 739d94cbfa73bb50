//! Blocking `Condition` proxy.

use std::time::{Duration, Instant};

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;

blocking_type! {
    /// A shared `Condition` over a re-entrant lock held by this connection (blocking form
    /// of [`crate::proxy::ConditionProxy`]).
    ConditionProxy<>
}

impl ConditionProxy {
    blocking_fns! {
        crate::proxy::ConditionProxy;
        /// Takes the condition's lock (re-entrant for this connection).
        fn acquire(&self) -> Result<()>;
        /// Releases one level of the lock.
        fn release(&self) -> Result<()>;
        /// Releases the lock, waits for a notify, takes the lock back.
        fn wait(&self) -> Result<()>;
        /// As `wait`, up to `timeout`: true if notified, false if the time ran out (the
        /// lock is held again either way).
        fn wait_timeout(&self, timeout: Duration) -> Result<bool>;
        /// Wakes up to `n` waiters (the lock must be held).
        fn notify(&self, n: usize) -> Result<()>;
        /// Wakes every waiter (the lock must be held).
        fn notify_all(&self) -> Result<()>;
    }

    /// Python's `wait_for`: waits until `predicate` (evaluated with the lock held) is true,
    /// or `timeout` passes; returns the predicate's last value. The predicate may make
    /// blocking calls (it runs on this thread, between waits).
    ///
    /// The same loop as [`crate::proxy::ConditionProxy::wait_for`], with a plain closure.
    pub fn wait_for<F>(&self, mut predicate: F, timeout: Option<Duration>) -> Result<bool>
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
}

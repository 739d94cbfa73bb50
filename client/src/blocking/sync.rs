//! Blocking `Condition`, `Event` and `Barrier` proxies.

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

blocking_type! {
    /// A shared `Event` (blocking form of [`crate::proxy::EventProxy`]).
    EventProxy<>
}

impl EventProxy {
    blocking_fns! {
        crate::proxy::EventProxy;
        /// Sets the flag, waking every waiter.
        fn set(&self) -> Result<()>;
        /// Clears the flag.
        fn clear(&self) -> Result<()>;
        /// The flag's state.
        fn is_set(&self) -> Result<bool>;
        /// Waits until the flag is set.
        fn wait(&self) -> Result<()>;
        /// Waits up to `timeout`; the flag's state at the end.
        fn wait_timeout(&self, timeout: Duration) -> Result<bool>;
    }
}

blocking_type! {
    /// A shared `Barrier` (blocking form of [`crate::proxy::BarrierProxy`]). A party that
    /// times out or disconnects breaks it: waiters get an error for which
    /// [`is_broken_barrier`](crate::proxy::is_broken_barrier) is true.
    BarrierProxy<>
}

impl BarrierProxy {
    blocking_fns! {
        crate::proxy::BarrierProxy;
        /// Waits for all parties; returns this caller's arrival index (0..parties).
        fn wait(&self) -> Result<u64>;
        /// As `wait`, breaking the barrier if not all parties arrive within `timeout`.
        fn wait_timeout(&self, timeout: Duration) -> Result<u64>;
        /// Breaks the barrier: current and future waiters fail until `reset`.
        fn abort(&self) -> Result<()>;
        /// Returns the barrier to its initial state; current waiters fail.
        fn reset(&self) -> Result<()>;
        /// The number of parties.
        fn parties(&self) -> Result<u64>;
        /// Parties waiting now.
        fn n_waiting(&self) -> Result<u64>;
        /// Whether the barrier is broken.
        fn broken(&self) -> Result<bool>;
    }
}

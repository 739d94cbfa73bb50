//! Blocking `Barrier` proxy.

use std::time::Duration;

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;

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

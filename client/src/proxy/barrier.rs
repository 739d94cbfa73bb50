use std::time::Duration;

use super::proxy_type;
use crate::error::{ErrorKind, Result};

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
        let h = &self.handle;
        h.conn.call(h.id, "wait", &()).await
    }

    /// As `wait`, breaking the barrier if not all parties arrive within `timeout`.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<u64> {
        let h = &self.handle;
        h.conn.call(h.id, "wait", &(timeout.as_secs_f64(),)).await
    }

    /// Breaks the barrier: current and future waiters fail until `reset`.
    pub async fn abort(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "abort", &()).await
    }

    /// Returns the barrier to its initial state; current waiters fail.
    pub async fn reset(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "reset", &()).await
    }

    /// The number of parties.
    pub async fn parties(&self) -> Result<u64> {
        let h = &self.handle;
        h.conn.call(h.id, "parties", &()).await
    }

    /// Parties waiting now.
    pub async fn n_waiting(&self) -> Result<u64> {
        let h = &self.handle;
        h.conn.call(h.id, "n_waiting", &()).await
    }

    /// Whether the barrier is broken.
    pub async fn broken(&self) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "broken", &()).await
    }
}

/// True for the error a broken barrier gives.
pub fn is_broken_barrier(e: &crate::Error) -> bool {
    e.kind() == Some(&ErrorKind::BrokenBarrier)
}

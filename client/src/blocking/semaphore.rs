//! Blocking `Semaphore` proxy and its permit.

use std::sync::Arc;
use std::time::Duration;

use super::macros::{blocking_fns, blocking_type};
use super::runtime::{wrap, FromAsync, Rt};
use crate::error::Result;

blocking_type! {
    /// A shared `Semaphore` or `BoundedSemaphore` (blocking form of
    /// [`crate::proxy::SemaphoreProxy`]).
    SemaphoreProxy<>
}

impl SemaphoreProxy {
    blocking_fns! {
        crate::proxy::SemaphoreProxy;
        /// Waits for a unit.
        fn acquire(&self) -> Result<SemaphorePermit> => wrap;
        /// Takes a unit if one is free now.
        fn try_acquire(&self) -> Result<Option<SemaphorePermit>> => wrap;
        /// Waits up to `timeout` for a unit.
        fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphorePermit>> => wrap;
        /// `s.release()`: adds a unit (`ValueError` past a bounded semaphore's initial value).
        fn release(&self) -> Result<()>;
        /// Free units now.
        fn value(&self) -> Result<u64>;
    }
}

/// One acquired unit; dropping it releases the unit (fire and forget).
#[must_use = "the unit is released when the permit is dropped"]
#[derive(Debug)]
pub struct SemaphorePermit {
    inner: crate::proxy::SemaphorePermit,
    rt: Arc<Rt>,
}

impl SemaphorePermit {
    /// Releases the unit and waits for the node to confirm.
    pub fn release(self) -> Result<()> {
        let SemaphorePermit { inner, rt } = self;
        rt.block_on(inner.release())
    }

    /// Keeps the unit acquired (someone else will `release` it).
    pub fn forget(self) {
        self.inner.forget();
    }
}

impl FromAsync<crate::proxy::SemaphorePermit> for SemaphorePermit {
    fn from_async(inner: crate::proxy::SemaphorePermit, rt: &Arc<Rt>) -> Self {
        SemaphorePermit {
            inner,
            rt: rt.clone(),
        }
    }
}

//! Blocking `Lock`/`RLock` proxy and its guard.

use std::sync::Arc;
use std::time::Duration;

use super::macros::{blocking_fns, blocking_type};
use super::runtime::{wrap, FromAsync, Rt};
use crate::error::Result;

blocking_type! {
    /// A shared `Lock` or `RLock` (blocking form of [`crate::proxy::LockProxy`]). The holder
    /// is the [`LockGuard`]: threads sharing one [`Manager`](super::Manager) exclude each
    /// other, and an `RLock` is re-entered through the guard.
    LockProxy<>
}

impl LockProxy {
    /// The async proxy this one wraps (a `Condition` made over it names it).
    pub(crate) fn as_async(&self) -> &crate::proxy::LockProxy {
        &self.inner
    }

    blocking_fns! {
        crate::proxy::LockProxy;
        /// Waits for the lock.
        fn acquire(&self) -> Result<LockGuard> => wrap;
        /// Takes the lock if it is free now.
        fn try_acquire(&self) -> Result<Option<LockGuard>> => wrap;
        /// Waits up to `timeout` for the lock; `None` if it did not come.
        fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> => wrap;
        /// Whether anyone holds the lock.
        fn locked(&self) -> Result<bool>;
    }
}

/// A held lock; dropping it releases it (fire and forget), [`LockGuard::release`] waits
/// for the node's answer.
#[must_use = "the lock is released when the guard is dropped"]
#[derive(Debug)]
pub struct LockGuard {
    inner: crate::proxy::LockGuard,
    rt: Arc<Rt>,
}

impl LockGuard {
    /// This grant's fencing token: larger than every earlier grant's.
    pub fn fencing_token(&self) -> u64 {
        self.inner.fencing_token()
    }

    /// Whether this guard still holds the lock as far as the client knows: false once the
    /// connection is gone and the node has released it.
    pub fn is_held(&self) -> bool {
        self.inner.is_held()
    }

    /// Takes an `RLock` once more through this guard (re-entry): another guard for the
    /// same grant, released on its own.
    pub fn reenter(&self) -> Result<LockGuard> {
        let inner = self.rt.block_on(self.inner.reenter())?;
        Ok(LockGuard::from_async(inner, &self.rt))
    }

    /// Releases the lock and waits for the node to confirm. An error means the lock was
    /// not held under this token any more (e.g. released when the session was cut).
    pub fn release(self) -> Result<()> {
        let LockGuard { inner, rt } = self;
        rt.block_on(inner.release())
    }
}

impl FromAsync<crate::proxy::LockGuard> for LockGuard {
    fn from_async(inner: crate::proxy::LockGuard, rt: &Arc<Rt>) -> Self {
        LockGuard {
            inner,
            rt: rt.clone(),
        }
    }
}

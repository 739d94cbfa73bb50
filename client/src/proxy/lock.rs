use std::sync::Arc;
use std::time::Duration;

use super::{proxy_type, ObjectHandle};
use crate::connection::Undo;
use crate::error::Result;

proxy_type! {
    /// A shared `Lock` or `RLock`.
    ///
    /// # Ownership
    /// The holder is the [`LockGuard`], not the connection: tasks and threads that share
    /// one [`crate::Manager`] exclude each other, as CPython threads do. An `RLock` is
    /// re-entered through the guard ([`LockGuard::reenter`]), never by a second
    /// `acquire`. Each grant carries a fencing token that grows with every grant. If the
    /// connection ends, the node releases what it held and the next waiter gets a larger
    /// token.
    ///
    /// # Cancellation
    /// Dropping an `acquire` future withdraws the wait; a grant that raced with the drop
    /// is released again.
    LockProxy<>
}

/// A held lock; dropping it releases it (fire and forget), [`LockGuard::release`] waits
/// for the node's answer.
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard {
    handle: Arc<ObjectHandle>,
    token: u64,
    released: bool,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("token", &self.token)
            .finish()
    }
}

impl LockGuard {
    /// This grant's fencing token: larger than every earlier grant's.
    pub fn fencing_token(&self) -> u64 {
        self.token
    }

    /// Whether this guard still holds the lock as far as the client knows: false once the
    /// connection is gone (its session ended, so the node released the lock; e.g. the
    /// heartbeat deadline passed while this process was stopped). A true answer is not
    /// proof against a node that has just expired the session: pass the fencing token to
    /// whatever the lock protects.
    pub fn is_held(&self) -> bool {
        !self.released && !self.handle.conn.is_closed()
    }

    /// Takes an `RLock` once more through this guard (Python's re-entry by the owning
    /// thread): another guard for the same grant, released on its own. A `Lock` is not
    /// re-entrant: `RuntimeError`.
    pub async fn reenter(&self) -> Result<LockGuard> {
        let h = &self.handle;
        let undo = Undo::release(h.id, "release_fenced", true);
        let token = h
            .conn
            .call_undoable(h.id, "reenter_fenced", &(self.token,), undo)
            .await?;
        Ok(LockGuard {
            handle: self.handle.clone(),
            token,
            released: false,
        })
    }

    /// Releases the lock and waits for the node to confirm. An error means the lock was
    /// not held under this token any more (e.g. released when the session was cut).
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        let h = &self.handle;
        h.conn.call(h.id, "release_fenced", &(self.token,)).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            let h = &self.handle;
            h.conn.forget(h.id, "release_fenced", &(self.token,));
        }
    }
}

impl LockProxy {
    /// A late grant is released by its token.
    fn release_late_grant(&self) -> Undo {
        Undo::release(self.handle.id, "release_fenced", true)
    }

    fn guard(&self, token: Option<u64>) -> Option<LockGuard> {
        token.map(|token| LockGuard {
            handle: self.handle.clone(),
            token,
            released: false,
        })
    }

    /// Waits for the lock.
    pub async fn acquire(&self) -> Result<LockGuard> {
        let h = &self.handle;
        let undo = self.release_late_grant();
        let token = h
            .conn
            .call_undoable(h.id, "acquire_fenced", &(), undo)
            .await?;
        self.guard(token)
            .ok_or_else(|| crate::Error::Protocol("a blocking acquire returned no grant".into()))
    }

    /// Takes the lock if it is free now.
    pub async fn try_acquire(&self) -> Result<Option<LockGuard>> {
        let h = &self.handle;
        let undo = self.release_late_grant();
        let token = h
            .conn
            .call_undoable(h.id, "acquire_fenced", &(false,), undo)
            .await?;
        Ok(self.guard(token))
    }

    /// Waits up to `timeout` for the lock; `None` if it did not come.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<LockGuard>> {
        let h = &self.handle;
        let args = (true, timeout.as_secs_f64());
        let undo = self.release_late_grant();
        let token = h
            .conn
            .call_undoable(h.id, "acquire_fenced", &args, undo)
            .await?;
        Ok(self.guard(token))
    }

    /// Whether anyone holds the lock.
    pub async fn locked(&self) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "locked", &()).await
    }
}

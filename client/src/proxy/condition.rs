use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{proxy_type, ObjectHandle};
use crate::connection::Undo;
use crate::error::{Error, ErrorKind, Result};

proxy_type! {
    /// A shared `Condition`: a re-entrant lock plus waits for `notify`.
    ///
    /// # Ownership
    /// The lock is held by the [`ConditionGuard`] that [`acquire`](Self::acquire) returns,
    /// not by the connection: tasks and threads that share one [`crate::Manager`] exclude
    /// each other. `wait`, `notify` and re-entry go through the guard.
    ///
    /// # Cancellation
    /// Dropping an `acquire` withdraws it, and a grant that raced the drop is released.
    /// Dropping a `wait` leaves the lock released, never held by nobody: the guard then
    /// says so ([`ConditionGuard::is_held`] is false), and a re-grant that raced the drop
    /// is released again. A completed `wait` holds the lock again, as Python's always does.
    ConditionProxy<>
}

impl ConditionProxy {
    fn guard(&self, token: Option<u64>) -> Option<ConditionGuard> {
        token.map(|token| ConditionGuard {
            handle: self.handle.clone(),
            token,
            held: true,
        })
    }

    fn release_late_grant(&self) -> Undo {
        Undo::release(self.handle.id, "release_fenced", true)
    }

    /// Waits for the condition's lock.
    pub async fn acquire(&self) -> Result<ConditionGuard> {
        let h = &self.handle;
        let undo = self.release_late_grant();
        let token = h
            .conn
            .call_undoable(h.id, "acquire_fenced", &(), undo)
            .await?;
        self.guard(token)
            .ok_or_else(|| Error::Protocol("a blocking acquire returned no grant".into()))
    }

    /// Takes the lock if it is free now.
    pub async fn try_acquire(&self) -> Result<Option<ConditionGuard>> {
        let h = &self.handle;
        let undo = self.release_late_grant();
        let token = h
            .conn
            .call_undoable(h.id, "acquire_fenced", &(false,), undo)
            .await?;
        Ok(self.guard(token))
    }

    /// Waits up to `timeout` for the lock.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<ConditionGuard>> {
        let h = &self.handle;
        let args = (true, timeout.as_secs_f64());
        let undo = self.release_late_grant();
        let token = h
            .conn
            .call_undoable(h.id, "acquire_fenced", &args, undo)
            .await?;
        Ok(self.guard(token))
    }
}

/// A hold of a [`ConditionProxy`]'s lock. Dropping it releases the lock (fire and forget)
/// if it is held.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ConditionGuard {
    handle: Arc<ObjectHandle>,
    token: u64,
    held: bool,
}

impl std::fmt::Debug for ConditionGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("token", &self.token)
            .field("held", &self.held)
            .finish()
    }
}

impl ConditionGuard {
    /// The fencing token of the current grant (a `wait` takes the lock back under a new
    /// one).
    pub fn fencing_token(&self) -> u64 {
        self.token
    }

    /// Whether this guard holds the lock: true after `acquire` and after every `wait`
    /// that returned; false after a `wait` whose future was dropped (the lock was
    /// released), a `release`, or once the connection is gone (the session ended and the
    /// node released the lock).
    pub fn is_held(&self) -> bool {
        self.held && !self.handle.conn.is_closed()
    }

    /// Releases the lock, waits for a notify, takes the lock back.
    pub async fn wait(&mut self) -> Result<()> {
        self.wait_on(None).await.map(|_| ())
    }

    /// As `wait`, up to `timeout`: true if notified, false if the time ran out (the lock
    /// is held again either way).
    pub async fn wait_timeout(&mut self, timeout: Duration) -> Result<bool> {
        self.wait_on(Some(timeout.as_secs_f64())).await
    }

    async fn wait_on(&mut self, timeout: Option<f64>) -> Result<bool> {
        let h = &self.handle;
        // The node releases the lock as the wait begins; until the wait returns, or if
        // this future is dropped, this guard does not hold it.
        let was_held = std::mem::replace(&mut self.held, false);
        let undo = Undo::release_element(h.id, "release_fenced", 1);
        let answer: Result<(bool, u64)> = match timeout {
            None => {
                h.conn
                    .call_undoable(h.id, "wait_fenced", &(self.token,), undo)
                    .await
            }
            Some(secs) => {
                h.conn
                    .call_undoable(h.id, "wait_fenced", &(self.token, secs), undo)
                    .await
            }
        };
        match answer {
            Ok((notified, token)) => {
                self.token = token;
                self.held = true;
                Ok(notified)
            }
            Err(e) => {
                // A wait refused before it began changed nothing.
                if refused_before_it_began(&e) {
                    self.held = was_held;
                }
                Err(e)
            }
        }
    }

    /// Python's `wait_for`: waits until `predicate` (evaluated with the lock held) is true,
    /// or `timeout` passes; returns the predicate's last value.
    pub async fn wait_for<F, Fut>(
        &mut self,
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

    /// Wakes up to `n` waiters.
    pub async fn notify(&self, n: usize) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "notify_fenced", &(self.token, n)).await
    }

    /// Wakes every waiter.
    pub async fn notify_all(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "notify_all_fenced", &(self.token,)).await
    }

    /// Takes the lock once more through this guard (re-entry): another guard for the
    /// same grant, released on its own.
    pub async fn reenter(&self) -> Result<ConditionGuard> {
        let h = &self.handle;
        let undo = Undo::release(h.id, "release_fenced", true);
        let token = h
            .conn
            .call_undoable(h.id, "reenter_fenced", &(self.token,), undo)
            .await?;
        Ok(ConditionGuard {
            handle: self.handle.clone(),
            token,
            held: true,
        })
    }

    /// Releases one level of the lock and waits for the node to confirm.
    pub async fn release(mut self) -> Result<()> {
        self.held = false;
        let h = &self.handle;
        h.conn.call(h.id, "release_fenced", &(self.token,)).await
    }
}

impl Drop for ConditionGuard {
    fn drop(&mut self) {
        if self.held {
            let h = &self.handle;
            h.conn.forget(h.id, "release_fenced", &(self.token,));
        }
    }
}

/// Errors with which a `wait` is refused before it releases anything.
fn refused_before_it_began(e: &Error) -> bool {
    match e {
        Error::Encode(_) | Error::FrameTooLarge { .. } => true,
        Error::Remote { kind, .. } => matches!(kind, ErrorKind::Busy | ErrorKind::TypeError),
        _ => false,
    }
}

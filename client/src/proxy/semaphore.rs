use std::sync::Arc;
use std::time::Duration;

use super::{proxy_type, ObjectHandle};
use crate::connection::Undo;
use crate::error::Result;

proxy_type! {
    /// A shared `Semaphore` or `BoundedSemaphore`.
    ///
    /// A unit taken with [`acquire`](Self::acquire) is a lease held by its
    /// [`SemaphorePermit`]: it comes back exactly once, when the permit is released or
    /// dropped, or when this connection ends. [`SemaphorePermit::forget`] consumes it
    /// instead (a signal a producer sent). [`release`](Self::release) adds a unit, as a
    /// producer does; it is never booked against anyone's lease.
    SemaphoreProxy<>
}

/// One leased unit; dropping it gives the unit back.
#[must_use = "the unit is released when the permit is dropped"]
#[derive(Debug)]
pub struct SemaphorePermit {
    handle: Arc<ObjectHandle>,
    released: bool,
}

impl SemaphorePermit {
    /// Gives the unit back and waits for the node to confirm.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        let h = &self.handle;
        h.conn.call(h.id, "release_lease", &()).await
    }

    /// Keeps the unit for good (a consumer of a signalling semaphore): it is not
    /// released on drop, and the node will not return it when this connection ends.
    pub fn forget(mut self) {
        self.released = true;
        let h = &self.handle;
        h.conn.forget(h.id, "disown", &());
    }
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        if !self.released {
            let h = &self.handle;
            h.conn.forget(h.id, "release_lease", &());
        }
    }
}

impl SemaphoreProxy {
    /// A late lease is given back.
    fn release_late_unit(&self) -> Undo {
        Undo::release(self.handle.id, "release_lease", false)
    }

    fn permit(&self, granted: bool) -> Option<SemaphorePermit> {
        granted.then(|| SemaphorePermit {
            handle: self.handle.clone(),
            released: false,
        })
    }

    /// Waits for a unit.
    pub async fn acquire(&self) -> Result<SemaphorePermit> {
        let h = &self.handle;
        let undo = self.release_late_unit();
        let granted: bool = h
            .conn
            .call_undoable(h.id, "acquire_lease", &(), undo)
            .await?;
        self.permit(granted)
            .ok_or_else(|| crate::Error::Protocol("a blocking acquire returned no grant".into()))
    }

    /// Takes a unit if one is free now.
    pub async fn try_acquire(&self) -> Result<Option<SemaphorePermit>> {
        let h = &self.handle;
        let undo = self.release_late_unit();
        let granted = h
            .conn
            .call_undoable(h.id, "acquire_lease", &(false,), undo)
            .await?;
        Ok(self.permit(granted))
    }

    /// Waits up to `timeout` for a unit.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphorePermit>> {
        let h = &self.handle;
        let args = (true, timeout.as_secs_f64());
        let undo = self.release_late_unit();
        let granted = h
            .conn
            .call_undoable(h.id, "acquire_lease", &args, undo)
            .await?;
        Ok(self.permit(granted))
    }

    /// `s.release()`: adds a unit, as a producer does (`ValueError` past a bounded
    /// semaphore's initial value). To give back a unit you hold, release its permit.
    pub async fn release(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "release", &()).await
    }

    /// Free units now.
    pub async fn value(&self) -> Result<u64> {
        let h = &self.handle;
        h.conn.call(h.id, "get_value", &()).await
    }
}

use std::sync::Arc;
use std::time::Duration;

use super::{proxy_type, ObjectHandle};
use crate::connection::Undo;
use crate::error::Result;

proxy_type! {
    /// A shared `Semaphore` or `BoundedSemaphore`. Units this connection holds when it
    /// ends are returned by the node.
    SemaphoreProxy<>
}

/// One acquired unit; dropping it releases the unit.
#[must_use = "the unit is released when the permit is dropped"]
#[derive(Debug)]
pub struct SemaphorePermit {
    handle: Arc<ObjectHandle>,
    released: bool,
}

impl SemaphorePermit {
    /// Releases the unit and waits for the node to confirm.
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        let h = &self.handle;
        h.conn.call(h.id, "release", &()).await
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
            h.conn.forget(h.id, "release", &());
        }
    }
}

impl SemaphoreProxy {
    /// A late unit is released.
    fn release_late_unit(&self) -> Undo {
        Undo::release(self.handle.id, "release", false)
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
        let granted: bool = h.conn.call_undoable(h.id, "acquire", &(), undo).await?;
        self.permit(granted)
            .ok_or_else(|| crate::Error::Protocol("a blocking acquire returned no grant".into()))
    }

    /// Takes a unit if one is free now.
    pub async fn try_acquire(&self) -> Result<Option<SemaphorePermit>> {
        let h = &self.handle;
        let undo = self.release_late_unit();
        let granted = h
            .conn
            .call_undoable(h.id, "acquire", &(false,), undo)
            .await?;
        Ok(self.permit(granted))
    }

    /// Waits up to `timeout` for a unit.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphorePermit>> {
        let h = &self.handle;
        let args = (true, timeout.as_secs_f64());
        let undo = self.release_late_unit();
        let granted = h.conn.call_undoable(h.id, "acquire", &args, undo).await?;
        Ok(self.permit(granted))
    }

    /// `s.release()`: adds a unit (`ValueError` past a bounded semaphore's initial value).
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

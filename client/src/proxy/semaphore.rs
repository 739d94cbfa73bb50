use std::sync::Arc;
use std::time::Duration;

use super::proxy_type;
use super::ObjectHandle;
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
        self.handle.send(self.handle.req("release", 0)).await
    }

    /// Keeps the unit for good (a consumer of a signalling semaphore): it is not
    /// released on drop, and the node will not return it when this connection ends.
    pub fn forget(mut self) {
        self.released = true;
        self.handle
            .manager()
            .conn
            .send_forget(self.handle.id(), "disown", None);
    }
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        if !self.released {
            self.handle
                .manager()
                .conn
                .send_forget(self.handle.id(), "release", None);
        }
    }
}

impl SemaphoreProxy {
    fn undo(&self) -> Option<Undo> {
        Some(Undo {
            object: self.handle.id(),
            method: "release",
            pass_result: false,
            ignore_falsy: true,
        })
    }

    fn permit(&self, granted: bool) -> Option<SemaphorePermit> {
        granted.then(|| SemaphorePermit {
            handle: self.handle.clone(),
            released: false,
        })
    }

    /// Waits for a unit.
    pub async fn acquire(&self) -> Result<SemaphorePermit> {
        let granted: bool = self
            .handle
            .send_with_undo(self.handle.req("acquire", 0), self.undo())
            .await?;
        self.permit(granted)
            .ok_or_else(|| crate::Error::Protocol("a blocking acquire returned no grant".into()))
    }

    /// Takes a unit if one is free now.
    pub async fn try_acquire(&self) -> Result<Option<SemaphorePermit>> {
        let granted = self
            .handle
            .send_with_undo(self.handle.req("acquire", 1).arg(&false), self.undo())
            .await?;
        Ok(self.permit(granted))
    }

    /// Waits up to `timeout` for a unit.
    pub async fn acquire_timeout(&self, timeout: Duration) -> Result<Option<SemaphorePermit>> {
        let req = self
            .handle
            .req("acquire", 2)
            .arg(&true)
            .arg(&timeout.as_secs_f64());
        let granted = self.handle.send_with_undo(req, self.undo()).await?;
        Ok(self.permit(granted))
    }

    /// `s.release()`: adds a unit (`ValueError` past a bounded semaphore's initial value).
    pub async fn release(&self) -> Result<()> {
        self.handle.send(self.handle.req("release", 0)).await
    }

    /// Free units now.
    pub async fn value(&self) -> Result<u64> {
        self.handle.send(self.handle.req("get_value", 0)).await
    }
}

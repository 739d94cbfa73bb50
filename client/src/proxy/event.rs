use std::time::Duration;

use super::proxy_type;
use crate::error::Result;

proxy_type! {
    /// A shared `Event`.
    EventProxy<>
}

impl EventProxy {
    /// Sets the flag, waking every waiter.
    pub async fn set(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "set", &()).await
    }

    /// Clears the flag.
    pub async fn clear(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call(h.id, "clear", &()).await
    }

    /// The flag's state.
    pub async fn is_set(&self) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "is_set", &()).await
    }

    /// Waits until the flag is set.
    pub async fn wait(&self) -> Result<()> {
        let h = &self.handle;
        h.conn.call::<_, bool>(h.id, "wait", &()).await.map(|_| ())
    }

    /// Waits up to `timeout`; the flag's state at the end.
    pub async fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        let h = &self.handle;
        h.conn.call(h.id, "wait", &(timeout.as_secs_f64(),)).await
    }
}

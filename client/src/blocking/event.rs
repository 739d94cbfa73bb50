//! Blocking `Event` proxy.

use std::time::Duration;

use super::macros::{blocking_fns, blocking_type};
use crate::error::Result;

blocking_type! {
    /// A shared `Event` (blocking form of [`crate::proxy::EventProxy`]).
    EventProxy<>
}

impl EventProxy {
    blocking_fns! {
        crate::proxy::EventProxy;
        /// Sets the flag, waking every waiter.
        fn set(&self) -> Result<()>;
        /// Clears the flag.
        fn clear(&self) -> Result<()>;
        /// The flag's state.
        fn is_set(&self) -> Result<bool>;
        /// Waits until the flag is set.
        fn wait(&self) -> Result<()>;
        /// Waits up to `timeout`; the flag's state at the end.
        fn wait_timeout(&self, timeout: Duration) -> Result<bool>;
    }
}

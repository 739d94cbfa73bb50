//! Typed proxies to shared objects on a syncman node.
//!
//! ```no_run
//! # async fn demo() -> syncman_client::Result<()> {
//! use syncman_client::Manager;
//! let mgr = Manager::connect("127.0.0.1:50000", b"secret").await?;
//! let seen = mgr.dict::<String, u64>("seen").await?;
//! seen.insert(&"alice".to_string(), &3).await?;
//! assert_eq!(seen.get(&"alice".to_string()).await?, Some(3));
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`Manager`] (`manager.rs`): connect, create and find objects, status, shutdown.
//! - `connection.rs`: the multiplexed connection (writer task, reader task, calls in flight);
//!   `Connection::call` encodes a request, waits for its answer and decodes it.
//! - [`proxy`]: one file per proxy type over serde types; each method calls the connection
//!   directly.
//! - [`blocking`]: the same proxies with plain (blocking) methods, for code without a runtime,
//!   one file per type.
//! - [`Error`] (`error.rs`): transport, auth, TLS and remote errors with Python's kinds.
//! - [`tls`]: [`TlsOptions`] for a node's TLS port, and [`TlsError`]; `address.rs`:
//!   [`NodeAddr`], whose host part is the name TLS checks by default.
//!
//! # Values
//! Arguments and results travel as MessagePack (structs as maps, so Python clients see
//! field names). `Vec<u8>` is an array of integers unless wrapped with `serde_bytes`.
//!
//! # Cancellation
//! Dropping a call's future before it completes sends `Cancel`: the node withdraws the
//! call if it is still waiting, so it takes nothing on your behalf.

mod address;
pub mod blocking;
mod connection;
pub mod error;
mod manager;
mod outgoing;
pub mod proxy;
pub mod tls;

pub use address::NodeAddr;
pub use connection::ConnectOptions;
pub use error::{Error, ErrorKind, Result};
pub use manager::{Manager, ObjectStatus, Status};
pub use proxy::{
    ArrayElement, ArrayProxy, BarrierProxy, ConditionGuard, ConditionProxy, DictProxy, EventProxy,
    LeasedItem, ListProxy, LockGuard, LockProxy, NamespaceProxy, ObjectHandle, QueueProxy,
    SemaphorePermit, SemaphoreProxy, ValueProxy,
};
pub use tls::{TlsError, TlsOptions};
/// rustls as this crate uses it, to build a [`rustls::RootCertStore`] or certificates for
/// [`TlsOptions`] without depending on a matching version yourself.
pub use tokio_rustls::rustls;

#[cfg(test)]
mod tests {
    /// The handle and proxies can be shared across tasks and threads.
    #[test]
    fn handles_are_send_sync_and_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<crate::Manager>();
        check::<crate::DictProxy<String, u64>>();
        check::<crate::QueueProxy<Vec<u8>>>();
        check::<crate::LockProxy>();
        check::<crate::BarrierProxy>();
        fn send<T: Send + 'static>() {}
        send::<crate::LockGuard>();
        send::<crate::SemaphorePermit>();
    }
}

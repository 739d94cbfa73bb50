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
//! - `connection.rs`: the multiplexed connection (writer task, reader task, calls in flight).
//! - [`proxy`]: one file per proxy type over serde types.
//! - [`Error`] (`error.rs`): transport, auth and remote errors with Python's kinds.
//!
//! # Values
//! Arguments and results travel as MessagePack (structs as maps, so Python clients see
//! field names). `Vec<u8>` is an array of integers unless wrapped with `serde_bytes`.
//!
//! # Cancellation
//! Dropping a call's future before it completes sends `Cancel`: the node withdraws the
//! call if it is still waiting, so it takes nothing on your behalf.

mod connection;
pub mod error;
mod manager;
pub mod proxy;

pub use connection::ConnectOptions;
pub use error::{Error, ErrorKind, Result};
pub use manager::{Manager, ObjectStatus, Status};
pub use proxy::{
    ArrayElement, ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy,
    LockGuard, LockProxy, NamespaceProxy, ObjectHandle, QueueProxy, SemaphorePermit,
    SemaphoreProxy, ValueProxy,
};

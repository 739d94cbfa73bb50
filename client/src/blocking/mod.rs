//! A blocking facade over the async client, for programs without an async runtime (as
//! `reqwest::blocking` is for `reqwest`).
//!
//! ```no_run
//! # fn demo() -> syncman_client::Result<()> {
//! use syncman_client::blocking::Manager;
//! let mgr = Manager::connect("127.0.0.1:50000", b"secret")?;
//! let seen = mgr.dict::<String, u64>("seen")?;
//! seen.insert(&"alice".to_string(), &3)?;
//! assert_eq!(seen.get(&"alice".to_string())?, Some(3));
//! let lock = mgr.lock("jobs")?;
//! let guard = lock.acquire()?;
//! println!("fencing token {}", guard.fencing_token());
//! guard.release()?;
//! # Ok(()) }
//! ```
//!
//! A blocking [`Manager`] owns a private tokio runtime with one worker thread, which runs
//! the connection's reader and writer tasks between calls. Each proxy method is the async
//! method run to completion on the calling thread, so the proxies have the same methods,
//! arguments and results as in [`crate::proxy`], without `.await`. Managers, proxies and
//! clones of them may be used from any number of threads at once; every call waits only
//! for its own reply.
//!
//! # Not for async code
//! Do not use this module from async code. On a thread with a tokio runtime context (a
//! runtime's worker, inside `block_on`, or a `spawn_blocking` thread) `connect` and every
//! call return [`Error::InsideRuntime`](crate::Error::InsideRuntime) instead of blocking
//! the runtime (or panicking, as a nested `block_on` would). Use the async
//! [`crate::Manager`] there. Dropping blocking handles in async code is allowed.
//!
//! # Layout
//! - `manager.rs`: [`Manager`], connect and the object constructors.
//! - One file per object type, as in [`crate::proxy`]: `dict.rs`, `list.rs`,
//!   `namespace.rs`, `value.rs`, `array.rs`, `queue.rs`, `lock.rs` (with its guard),
//!   `semaphore.rs` (with its permit), `condition.rs`, `event.rs`, `barrier.rs`.
//! - `macros.rs`: `blocking_type!` (a wrapper type) and `blocking_fns!` (its methods).
//! - `runtime.rs`: the owned runtime and the refusal inside async code.

mod array;
mod barrier;
mod condition;
mod dict;
mod event;
mod list;
mod lock;
mod macros;
mod manager;
mod namespace;
mod queue;
mod runtime;
mod semaphore;
mod value;

pub use array::ArrayProxy;
pub use barrier::BarrierProxy;
pub use condition::{ConditionGuard, ConditionProxy};
pub use dict::DictProxy;
pub use event::EventProxy;
pub use list::ListProxy;
pub use lock::{LockGuard, LockProxy};
pub use manager::Manager;
pub use namespace::NamespaceProxy;
pub use queue::{LeasedItem, QueueProxy};
pub use semaphore::{SemaphorePermit, SemaphoreProxy};
pub use value::ValueProxy;

pub use crate::connection::ConnectOptions;
pub use crate::manager::{ObjectStatus, Status};
pub use crate::proxy::{is_broken_barrier, ArrayElement, ObjectHandle};

//! The syncman node: shared objects with Python's semantics, served over TCP to Rust clients
//! (native MessagePack dialect) and, in time, unmodified CPython clients.
//!
//! # Layout
//! - [`server`]: [`Server`] and its builder; the accept loop, limits, shutdown.
//! - `connection`: one socket from accept to close: handshake, dialect choice.
//! - `session`: a native session: requests, parked calls, cancellation, cleanup.
//! - `writer`: batches replies into few writes.
//! - `control`: methods of the node itself (create, get-or-create, delete, status, shutdown).
//! - [`object`]: the [`SharedObject`] trait every type implements, and the typeid registry.
//! - [`table`]: object ids, names and reference counts.
//! - [`objects`]: the built-in types, one file each.
//! - [`config`]: settings with their defaults.
//!
//! # Security
//! Every connection runs CPython's HMAC challenge-response before anything else is read;
//! frames are capped at 256 bytes until it succeeds. The node never executes client data.
//! Locks and permits are tied to the session that holds them and released when it ends.

pub mod config;
mod connection;
mod control;
pub mod encode;
pub mod object;
pub mod objects;
pub mod server;
mod session;
pub mod table;
pub mod waiter;
mod writer;

pub use config::{Config, ConfigError};
pub use object::{CallCtx, Outcome, Registry, Reply, SharedObject};
pub use server::{bind, Server, ServerBuilder, ShutdownHandle};

//! The syncman node: shared objects with Python's semantics, served over TCP to Rust clients
//! (native MessagePack dialect) and, in time, unmodified CPython clients.
//!
//! # Layout
//! Two layers, one folder each:
//! - [`node`]: the node core. Objects ([`node::objects`], one file per type), the
//!   [`SharedObject`] trait, waiters, the dialect-neutral session (calls, parked calls,
//!   cancellation, deadlines, cleanup), and the [`Backend`] seam with its in-memory
//!   implementation. It knows nothing of sockets or wire dialects.
//! - `net`: the network layer. The accept loop and limits ([`Server`]), one connection from
//!   handshake to dialect choice, and the native dialect (request loop, control calls, reply
//!   writer), and TLS ([`ServerTls`]) on a listener of its own beside the plain one
//!   ([`Listeners`]). It drives the core.
//! - [`config`]: settings with their defaults.
//!
//! # Security
//! Every connection runs CPython's HMAC challenge-response before anything else is read;
//! frames are capped at 256 bytes until it succeeds. The node never executes client data.
//! Locks and permits are tied to the session that holds them and released when it ends.

pub mod config;
/// The fuzz targets' properties (`fuzz/`), shared with the corpus replay test.
#[doc(hidden)]
pub mod fuzzing;
mod net;
pub mod node;

pub use config::{Config, ConfigError};
pub use net::listeners::Listeners;
pub use net::metrics::Metrics;
pub use net::server::{bind, Server, ServerBuilder, ShutdownHandle};
pub use net::tls::{ServerTls, TlsSetupError};
pub use node::backend::{Backend, FencingTokens, ObjectId};
pub use node::memory::MemoryBackend;
pub use node::object::{CallCtx, MethodSpec, Outcome, Reply, SessionId, SharedObject};
pub use node::registry::Registry;
pub use node::session::check_call;

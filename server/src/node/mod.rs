//! The node core: objects, their waiters, and sessions, with no knowledge of sockets or of
//! either wire dialect. The network layer (`crate::net`) drives it.
//!
//! # Layout
//! - [`Node`] (this file): what every session of a node shares.
//! - [`object`]: the [`SharedObject`](object::SharedObject) trait and what a call produces.
//! - [`wait`]: the queue of parked callers an object keeps.
//! - [`session`]: the dialect-neutral session: calls, parked calls, cancellation,
//!   deadlines, answers that race a cancel, and cleanup when it ends.
//! - [`backend`]: the seam to where objects and sessions live; [`memory`] is the in-memory
//!   implementation, [`registry`] its typeid → constructor map.
//! - [`objects`]: the built-in types, one file each.
//! - [`budget`]: the bytes all objects may hold, and each object's share.
//! - [`metrics`]: calls and their latency by typeid and method, when the node collects
//!   metrics.

pub mod backend;
pub mod budget;
pub mod memory;
pub mod metrics;
pub mod object;
pub mod objects;
pub mod registry;
pub mod session;
pub mod wait;

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use backend::Backend;
use memory::MemoryBackend;
use metrics::CallStats;

/// What every session of a node shares: its settings, its backend, and the tokens that
/// stop it.
pub struct Node<B: Backend = MemoryBackend> {
    pub config: Config,
    pub backend: B,
    /// Cancelled once, when the node starts shutting down.
    pub shutdown: CancellationToken,
    /// Cancelled `drain_timeout` after `shutdown`: whatever still waits to hand a reply to
    /// a client (one that does not read) gives up, so every session ends.
    pub drain_over: CancellationToken,
    /// Calls by typeid and method, when the node collects metrics
    /// ([`Config::collect_metrics`]).
    pub calls: Option<Arc<CallStats>>,
    /// When the node was made: `status` reports its uptime from it.
    pub started: Instant,
}

impl<B: Backend> Node<B> {
    pub fn new(config: Config, backend: B) -> Self {
        Node {
            calls: config.collect_metrics.then(Arc::default),
            config,
            backend,
            shutdown: CancellationToken::new(),
            drain_over: CancellationToken::new(),
            started: Instant::now(),
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

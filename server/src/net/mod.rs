//! The network layer: it owns the sockets and drives the node core (`crate::node`).
//!
//! # Layout
//! - [`server`]: [`Server`](server::Server) and its builder; the accept loop, connection
//!   limits, shutdown.
//! - `admission`: who may start a handshake (node-wide and per-address limits).
//! - `backoff`: per-address back-off for wrong keys, consulted by `admission`.
//! - `connection`: one socket from accept to close: keepalive, handshake, dialect choice.
//! - `frame_reader`: reads frames without a buffer held while a connection is idle.
//! - `log_limit`: rate-limited log lines for storms of failed handshakes.
//! - [`metrics`]: the node's metrics for Prometheus, and `GET /metrics`.
//! - `listeners`: the plain and TLS listeners one accept loop serves.
//! - `tls`: the TLS listener's settings and its connections' TLS handshake.
//! - `transport`: what the connection code runs over (TCP, or TLS over TCP).
//! - `native`: the native (MessagePack) dialect: the request loop, control-call decoding,
//!   and its replies.
//! - `pickle`: CPython's manager protocol, for unmodified Python clients.
//! - `wake_gate`: polls a rarely ready branch of a session loop only once it was woken.

mod admission;
mod backoff;
mod connection;
mod frame_reader;
pub(crate) mod listeners;
mod log_limit;
pub mod metrics;
mod native;
pub(crate) mod pickle;
pub mod server;
pub(crate) mod tls;
mod transport;
mod wake_gate;

//! The network layer: it owns the sockets and drives the node core (`crate::node`).
//!
//! # Layout
//! - [`server`]: [`Server`](server::Server) and its builder; the accept loop, connection
//!   limits, shutdown.
//! - `connection`: one socket from accept to close: keepalive, handshake, dialect choice.
//! - `native`: the native (MessagePack) dialect: the request loop, control-call decoding,
//!   and the reply writer.

mod connection;
mod native;
pub mod server;

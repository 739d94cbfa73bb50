//! The node's front door: the accept loop, connection limits and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use syncman_protocol::{Args, RemoteError};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::admission::{HandshakeSlots, PerAddress};
use super::connection::SessionSpawner;
use super::listeners::{Accepted, Listeners};
use super::metrics::{HandshakeFailure, Metrics};
use crate::config::{Config, ConfigError};
use crate::node::backend::Backend;
use crate::node::memory::{MemoryBackend, TokenCounter};
use crate::node::object::SharedObject;
use crate::node::objects::register_builtins;
use crate::node::registry::Registry;
use crate::node::Node;

/// A syncman node. The `syncman` binary is a thin user of this.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let server = syncman_server::Server::builder(b"secret".to_vec()).build().unwrap();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// server.run(listener).await
/// # }
/// ```
pub struct Server<B: Backend = MemoryBackend> {
    node: Arc<Node<B>>,
    /// When the node collects metrics.
    metrics: Option<Metrics>,
}

/// Configures an in-memory [`Server`]: settings and the typeids it serves.
pub struct ServerBuilder {
    config: Config,
    registry: Registry,
}

impl ServerBuilder {
    /// Replaces the whole configuration (the authkey included).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Adjusts the configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// Collects metrics ([`Config::collect_metrics`]), to be read through
    /// [`Server::metrics`].
    pub fn metrics(self) -> Self {
        self.configure(|c| c.collect_metrics = true)
    }

    /// Adds a typeid, as Python's `BaseManager.register`.
    pub fn register<F>(mut self, typeid: impl Into<String>, factory: F) -> Self
    where
        F: Fn(Args) -> Result<Arc<dyn SharedObject>, RemoteError> + Send + Sync + 'static,
    {
        self.registry.register(typeid, factory);
        self
    }

    pub fn build(self) -> Result<Server, ConfigError> {
        let backend = MemoryBackend::with_limits(
            self.registry,
            self.config.max_objects,
            self.config.max_bytes,
        );
        Server::with_backend(self.config, backend)
    }
}

/// Stops a running node from elsewhere (signal handler, test, embedding program).
#[derive(Clone)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

impl Server {
    /// An in-memory node with every built-in typeid.
    pub fn builder(authkey: Vec<u8>) -> ServerBuilder {
        let mut registry = Registry::default();
        register_builtins::<TokenCounter>(&mut registry);
        ServerBuilder {
            config: Config::new(authkey),
            registry,
        }
    }
}

impl<B: Backend> Server<B> {
    /// A node over any [`Backend`].
    pub fn with_backend(config: Config, backend: B) -> Result<Self, ConfigError> {
        config.validate()?;
        super::pickle::check_served_typeids(&config)?;
        let node = Arc::new(Node::new(config, backend));
        let metrics = node
            .config
            .collect_metrics
            .then(|| Metrics::new(node.clone()));
        Ok(Server { node, metrics })
    }

    /// The node's metrics, if it collects them ([`Config::collect_metrics`]): to encode,
    /// to add to a registry of your own, or to serve (`Metrics::serve`).
    pub fn metrics(&self) -> Option<Metrics> {
        self.metrics.clone()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.node.shutdown.clone())
    }

    /// Serves plain connections on `listener` until shutdown (a [`ShutdownHandle`] or a
    /// client's `shutdown`), then stops accepting, ends every session (parked calls get
    /// `ShuttingDown`), waits up to `drain_timeout` for replies to be flushed, and returns
    /// once every session has ended (a session whose client does not read is ended at the
    /// drain timeout).
    pub async fn run(self, listener: TcpListener) -> std::io::Result<()> {
        self.serve(Listeners::new().plain(listener)).await
    }

    /// As [`run`](Self::run), on a plain listener, a TLS listener or both at once; they
    /// share the node's limits (`max_connections`, the handshake places).
    pub async fn serve(self, listeners: Listeners) -> std::io::Result<()> {
        if listeners.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no listener to serve on",
            ));
        }
        let node = self.node;
        let net = self
            .metrics
            .as_ref()
            .map(Metrics::net)
            .cloned()
            .unwrap_or_default();
        for (local, tls) in listeners.local_addrs()? {
            info!(%local, tls, "serving");
        }
        let connections = Arc::new(Semaphore::new(node.config.max_connections));
        // Peers that have not authenticated yet hold these: node-wide (when all are taken,
        // accepting waits and new peers queue in the backlog) and per source address.
        let handshakes = Arc::new(Semaphore::new(node.config.max_handshakes));
        let per_address = PerAddress::new(
            node.config.max_handshakes_per_address,
            node.config.wrong_keys,
        );
        let tracker = TaskTracker::new();
        let mut backoff = Duration::from_millis(5);
        loop {
            let taken = tokio::select! {
                _ = node.shutdown.cancelled() => break,
                p = async {
                    let connection = connections.clone().acquire_owned().await?;
                    let handshake = handshakes.clone().acquire_owned().await?;
                    Ok::<_, tokio::sync::AcquireError>((connection, handshake))
                } => p,
            };
            let Ok((connection, node_wide)) = taken else {
                break;
            };
            let accepted = tokio::select! {
                _ = node.shutdown.cancelled() => break,
                a = listeners.accept() => a,
            };
            match accepted {
                Ok(Accepted { stream, peer, tls }) => {
                    backoff = Duration::from_millis(5);
                    let node = node.clone();
                    match per_address.admit(peer.ip()) {
                        Ok(address) => {
                            let slots = HandshakeSlots::new(node_wide, address);
                            // Two tasks of their own types: a plain connection's task is
                            // not sized for a TLS one's state (rustls' is several KiB).
                            // The connection's place goes with its session's task.
                            let sessions = SessionSpawner::new(tracker.clone(), connection);
                            let net = net.clone();
                            match tls {
                                None => tracker.spawn(super::connection::handle(
                                    stream, peer, node, slots, sessions, net,
                                )),
                                Some(tls) => tracker.spawn(super::tls::handle(
                                    stream, peer, node, slots, tls, sessions, net,
                                )),
                            };
                        }
                        // A TLS client could not read a plain `#REFUSED#` frame, and a TLS
                        // handshake is work the limit is there to bound: it is closed.
                        Err(why) if tls.is_some() => {
                            net.handshake_failed(HandshakeFailure::Refused);
                            super::connection::log_refusal(peer, &why);
                        }
                        Err(why) => {
                            net.handshake_failed(HandshakeFailure::Refused);
                            tracker.spawn(super::connection::refuse_before_handshake(
                                stream, peer, why,
                            ));
                        }
                    }
                }
                Err(e) => {
                    // Typically EMFILE: wait a little rather than spin.
                    error!("accept failed: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        drop(listeners);
        info!("shutting down: no longer accepting; ending sessions");
        tracker.close();
        // Sessions answer what they have and flush; past `drain_timeout`, whatever still
        // waits on a client that does not read gives up, and every session ends.
        if tokio::time::timeout(node.config.drain_timeout, tracker.wait())
            .await
            .is_err()
        {
            node.drain_over.cancel();
            warn!(
                "some sessions were still flushing replies after {:?}; ending them",
                node.config.drain_timeout
            );
            // They end promptly now; the bound only guards against a bug.
            if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
                .await
                .is_err()
            {
                error!("stopped, but some connections did not end after the drain");
                return Ok(());
            }
        }
        info!("stopped: every session has ended");
        Ok(())
    }
}

/// Connections the kernel may queue before the node accepts them (bursts of connects wait
/// here, not refused); the kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` and returns the listener with its actual address (port 0 picks one).
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let mut last = None;
    for candidate in tokio::net::lookup_host(addr).await? {
        let socket = if candidate.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(candidate)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => {
                let local = listener.local_addr()?;
                return Ok((listener, local));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr} resolves to no address"),
        )
    }))
}

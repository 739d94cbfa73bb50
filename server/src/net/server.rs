//! The node's front door: the accept loop, connection limits and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use syncman_protocol::{Args, RemoteError};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

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

    /// Adds a typeid, as Python's `BaseManager.register`.
    pub fn register<F>(mut self, typeid: impl Into<String>, factory: F) -> Self
    where
        F: Fn(Args) -> Result<Arc<dyn SharedObject>, RemoteError> + Send + Sync + 'static,
    {
        self.registry.register(typeid, factory);
        self
    }

    pub fn build(self) -> Result<Server, ConfigError> {
        Server::with_backend(self.config, MemoryBackend::new(self.registry))
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
        Ok(Server {
            node: Arc::new(Node::new(config, backend)),
        })
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.node.shutdown.clone())
    }

    /// Serves `listener` until shutdown (a [`ShutdownHandle`] or a client's `shutdown`),
    /// then stops accepting, ends every session (parked calls get `ShuttingDown`), and
    /// waits up to `drain_timeout` for replies to be flushed.
    pub async fn run(self, listener: TcpListener) -> std::io::Result<()> {
        let node = self.node;
        let local = listener.local_addr()?;
        info!(%local, "serving");
        let limit = Arc::new(Semaphore::new(node.config.max_connections));
        // Unauthenticated peers may hold only these slots, so they cannot crowd out
        // clients that hold the key.
        let handshakes = Arc::new(Semaphore::new(node.config.max_handshakes));
        let tracker = TaskTracker::new();
        let mut backoff = Duration::from_millis(5);
        loop {
            let permit = tokio::select! {
                _ = node.shutdown.cancelled() => break,
                p = limit.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                _ = node.shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    let Ok(handshake_slot) = handshakes.clone().try_acquire_owned() else {
                        warn!(%peer, "refusing connection: {} handshakes already in progress", node.config.max_handshakes);
                        continue;
                    };
                    let node = node.clone();
                    tracker.spawn(async move {
                        super::connection::handle(stream, peer, node, handshake_slot).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Typically EMFILE: wait a little rather than spin.
                    error!("accept failed: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        drop(listener);
        info!("shutting down: no longer accepting; ending sessions");
        tracker.close();
        let drain = node.config.drain_timeout + Duration::from_secs(1);
        if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
            warn!("some connections did not finish within {drain:?}");
        }
        info!("stopped");
        Ok(())
    }
}

/// Binds `addr` and returns the listener with its actual address (port 0 picks one).
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

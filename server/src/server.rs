//! The node: accept loop, connection limits and graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use syncman_protocol::RemoteError;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError};
use crate::object::{Registry, SharedObject};
use crate::table::ObjectTable;

/// What every connection of a node shares.
pub(crate) struct Shared {
    pub config: Config,
    pub registry: Registry,
    pub table: ObjectTable,
    pub shutdown: CancellationToken,
    next_session: AtomicU64,
    live_sessions: AtomicUsize,
}

impl Shared {
    pub fn live_sessions(&self) -> usize {
        self.live_sessions.load(Ordering::Relaxed)
    }

    pub fn open_session(&self) -> u64 {
        self.live_sessions.fetch_add(1, Ordering::Relaxed);
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    pub fn close_session(&self) {
        self.live_sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A syncman node. The `syncman` binary is a thin user of this.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let server = syncman_server::Server::builder(b"secret".to_vec()).build().unwrap();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// server.run(listener).await
/// # }
/// ```
pub struct Server {
    shared: Arc<Shared>,
}

/// Configures a [`Server`]: settings and the typeids it serves.
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
        F: Fn(syncman_protocol::Args) -> Result<Arc<dyn SharedObject>, RemoteError>
            + Send
            + Sync
            + 'static,
    {
        self.registry.register(typeid, factory);
        self
    }

    pub fn build(self) -> Result<Server, ConfigError> {
        self.config.validate()?;
        Ok(Server {
            shared: Arc::new(Shared {
                config: self.config,
                registry: self.registry,
                table: ObjectTable::default(),
                shutdown: CancellationToken::new(),
                next_session: AtomicU64::new(1),
                live_sessions: AtomicUsize::new(0),
            }),
        })
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
    pub fn builder(authkey: Vec<u8>) -> ServerBuilder {
        ServerBuilder {
            config: Config::new(authkey),
            registry: Registry::with_builtins(),
        }
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shared.shutdown.clone())
    }

    /// Serves `listener` until shutdown (a [`ShutdownHandle`] or a client's `shutdown`),
    /// then stops accepting, ends every session (parked calls get `ShuttingDown`), and
    /// waits up to `drain_timeout` for replies to be flushed.
    pub async fn run(self, listener: TcpListener) -> std::io::Result<()> {
        let shared = self.shared;
        let local = listener.local_addr()?;
        info!(%local, "serving");
        let limit = Arc::new(Semaphore::new(shared.config.max_connections));
        // Unauthenticated peers may hold only these slots, so they cannot crowd out
        // clients that hold the key.
        let handshakes = Arc::new(Semaphore::new(shared.config.max_handshakes));
        let tracker = TaskTracker::new();
        let mut backoff = Duration::from_millis(5);
        loop {
            let permit = tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                p = limit.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    let Ok(handshake_slot) = handshakes.clone().try_acquire_owned() else {
                        warn!(%peer, "refusing connection: {} handshakes already in progress", shared.config.max_handshakes);
                        continue;
                    };
                    let shared = shared.clone();
                    tracker.spawn(async move {
                        crate::connection::handle(stream, peer, shared, handshake_slot).await;
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
        let drain = shared.config.drain_timeout + Duration::from_secs(1);
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

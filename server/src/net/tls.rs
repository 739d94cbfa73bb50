//! TLS for the node's TLS listener (rustls, `ring` provider). A TLS connection runs its
//! TLS handshake first, under the same handshake places (`admission.rs`) and deadlines as
//! the rest of the handshake, then the ordinary connection (`connection.rs`): CPython's
//! HMAC handshake, then the dialect, unchanged, inside TLS.
//!
//! A peer that says nothing, or speaks plain bytes, to the TLS port is closed when its TLS
//! handshake fails or runs out of time, and is logged like any other failed handshake;
//! nothing it sent reaches the node's code beyond rustls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use syncman_protocol::tls::{certificates, private_key, root_store, PemError};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::rustls::crypto::{ring, CryptoProvider};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::admission::HandshakeSlots;
use super::connection;
use super::log_limit::LogLimit;
use super::metrics::{HandshakeFailure, NetMetrics};
use super::transport::Transport;
use crate::node::backend::Backend;
use crate::node::Node;

/// A node's TLS settings: its certificate and key, and whom it asks for a client
/// certificate. Cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

/// Why TLS cannot be set up with the files given.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    Pem(#[from] PemError),
    #[error("the private key in {} does not match the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot use the certificate {} with the key {}: {reason}", cert.display(), key.display())]
    Certificate {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("cannot verify clients against the CA file {}: {reason}", path.display())]
    ClientCa { path: PathBuf, reason: String },
}

impl ServerTls {
    /// The node's certificate chain (`cert`, leaf first) and private key (`key`), both
    /// PEM. With `client_ca`, every client must present a certificate that chains up to a
    /// certificate in that PEM file (mutual TLS); without it, none is asked for.
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<ServerTls, TlsSetupError> {
        let chain = certificates(cert)?;
        let private = private_key(key)?;
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::Certificate {
                cert: cert.to_owned(),
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
        let builder = match client_ca {
            Some(path) => {
                let roots = Arc::new(root_store(path)?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| TlsSetupError::ClientCa {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(chain, private)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => TlsSetupError::KeyMismatch {
                    cert: cert.to_owned(),
                    key: key.to_owned(),
                },
                e => TlsSetupError::Certificate {
                    cert: cert.to_owned(),
                    key: key.to_owned(),
                    reason: e.to_string(),
                },
            })?;
        Ok(ServerTls::from_config(Arc::new(config)))
    }

    /// A rustls configuration made by the embedding program.
    pub fn from_config(config: Arc<ServerConfig>) -> ServerTls {
        ServerTls {
            acceptor: TlsAcceptor::from(config),
        }
    }
}

/// rustls' `ring` provider, named explicitly so that no other crate's choice of provider
/// (the process-wide default) changes the node's.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

impl Transport for TlsStream<TcpStream> {
    type Reader = ReadHalf<Self>;
    type Writer = WriteHalf<Self>;

    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }

    /// One TLS session carries both directions, so the halves share it behind tokio's
    /// lock (held for one poll at a time).
    fn split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }
}

/// Serves one connection on the TLS listener: the TLS handshake, then the ordinary
/// connection inside it. `handshake_slots` are held until the peer has authenticated.
///
/// The TLS handshake must finish within `first_answer_timeout` (an honest client sends
/// its hello at once and is done in two round trips), so a silent peer lets its place go
/// as early as on the plain port; the whole handshake, TLS and HMAC, within
/// `handshake_timeout` of the accept.
pub(crate) async fn handle<B: Backend>(
    stream: TcpStream,
    peer: SocketAddr,
    node: Arc<Node<B>>,
    handshake_slots: HandshakeSlots,
    tls: ServerTls,
    sessions: connection::SessionSpawner,
    metrics: NetMetrics,
) {
    let metrics = metrics.connection_accepted();
    let accepted = Instant::now();
    connection::set_socket_options(&stream, peer, &node);
    let limit = node
        .config
        .first_answer_timeout
        .min(node.config.handshake_timeout);
    let shutdown = node.shutdown.clone();
    let result = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = tokio::time::timeout(limit, tls.acceptor.accept(stream)) => r,
    };
    // Rate-limited like the plain handshake's failures: a scan of the TLS port or a
    // plain client pointed at it in a loop writes a few lines a second.
    static TIMED_OUT: LogLimit = LogLimit::new();
    static FAILED: LogLimit = LogLimit::new();
    let stream = match result {
        Err(_) => {
            metrics.handshake_failed(HandshakeFailure::Timeout);
            if let Some(left_out) = TIMED_OUT.allow() {
                warn!(%peer, left_out, "TLS handshake timed out after {limit:?}; closing");
            }
            return;
        }
        Ok(Err(e)) => {
            metrics.handshake_failed(HandshakeFailure::of_tls(&e));
            if let Some(left_out) = FAILED.allow() {
                warn!(%peer, left_out, "TLS handshake failed: {e}; closing");
            }
            return;
        }
        Ok(Ok(stream)) => stream,
    };
    let session = stream.get_ref().1;
    debug!(
        %peer,
        version = ?session.protocol_version(),
        client_certificate = session.peer_certificates().is_some(),
        "TLS established"
    );
    connection::serve(
        stream,
        peer,
        node,
        handshake_slots,
        accepted,
        sessions,
        metrics,
    )
    .await;
}

//! TLS to a node's TLS listener (`syncman serve --tls-bind`), with rustls and its `ring`
//! provider. The authkey handshake and the native dialect then run inside TLS, unchanged.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use syncman_client::{ConnectOptions, Manager, TlsOptions};
//! let options = ConnectOptions {
//!     tls: Some(TlsOptions::from_ca_file("ca.pem")?.server_name("node.example")),
//!     ..ConnectOptions::default()
//! };
//! let mgr = Manager::connect_with("10.0.0.5:50001", b"secret", options).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;

pub use syncman_protocol::tls::PemError;
use syncman_protocol::tls::{certificates, private_key, root_store};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, AlertDescription, CertificateError, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// How a client speaks TLS to a node: whom it trusts, the name it expects the node's
/// certificate to carry, and its own certificate if the node asks for one (mutual TLS).
/// Set it as [`ConnectOptions::tls`](crate::ConnectOptions::tls). Cheap to clone.
#[derive(Clone)]
pub struct TlsOptions {
    roots: Arc<RootCertStore>,
    identity: Option<Arc<Identity>>,
    config: Arc<ClientConfig>,
    server_name: Option<String>,
}

/// A client certificate chain and its key.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// Why TLS to the node could not be set up or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The node's certificate did not verify: not signed by a CA this client trusts,
    /// not issued for the name the client expected, expired, ...
    #[error("the node's certificate was not trusted for {server_name}: {reason}")]
    Untrusted { server_name: String, reason: String },
    /// The node turned this client away in the TLS handshake: it asks for a client
    /// certificate (mutual TLS) and got none, or one it does not trust.
    #[error("the node refused this client's TLS handshake: {0}")]
    ClientRefused(String),
    /// The TLS handshake failed otherwise (e.g. the address is the node's plain port).
    #[error("the TLS handshake with the node failed: {0}")]
    Handshake(String),
    /// [`TlsOptions::server_name`] (or the address's host) is not a DNS name or IP address.
    #[error("{0:?} is not a valid TLS server name")]
    InvalidServerName(String),
    /// The address has no host part to check the certificate against, and no
    /// [`TlsOptions::server_name`] was set.
    #[error("no TLS server name: the address has no host part; set TlsOptions::server_name")]
    NoServerName,
    /// A CA, certificate or key file could not be used.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// rustls refused the configuration (e.g. a client key that does not match its
    /// certificate).
    #[error("cannot use this TLS configuration: {0}")]
    Config(String),
}

impl TlsOptions {
    /// Trusts the CA certificates in a PEM file (the node's own certificate, if it is
    /// self-signed).
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<TlsOptions, TlsError> {
        TlsOptions::with_roots(root_store(path.as_ref())?)
    }

    /// Trusts the certificates in `roots`.
    pub fn with_roots(roots: RootCertStore) -> Result<TlsOptions, TlsError> {
        let roots = Arc::new(roots);
        let config = client_config(&roots, None)?;
        Ok(TlsOptions {
            roots,
            identity: None,
            config,
            server_name: None,
        })
    }

    /// The name the node's certificate must carry (a DNS name or an IP address). Default:
    /// the host part of the address connected to.
    pub fn server_name(mut self, name: impl Into<String>) -> TlsOptions {
        self.server_name = Some(name.into());
        self
    }

    /// Presents this certificate chain (PEM, leaf first) and key (PEM) to a node that
    /// asks for one (`--tls-client-ca`, mutual TLS).
    pub fn client_cert_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsOptions, TlsError> {
        self.client_cert(certificates(cert.as_ref())?, private_key(key.as_ref())?)
    }

    /// As [`client_cert_files`](Self::client_cert_files), with the chain and key in memory.
    pub fn client_cert(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsOptions, TlsError> {
        let identity = Arc::new(Identity { chain, key });
        self.config = client_config(&self.roots, Some(&identity))?;
        self.identity = Some(identity);
        Ok(self)
    }

    /// The connector and the name to check, for a node at `host`.
    pub(crate) fn connector(
        &self,
        host: Option<String>,
    ) -> Result<(TlsConnector, ServerName<'static>), TlsError> {
        let name = self
            .server_name
            .clone()
            .or(host)
            .ok_or(TlsError::NoServerName)?;
        let name =
            ServerName::try_from(name.clone()).map_err(|_| TlsError::InvalidServerName(name))?;
        Ok((TlsConnector::from(self.config.clone()), name))
    }
}

impl fmt::Debug for TlsOptions {
    /// Never shows the client key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("trusted_roots", &self.roots.len())
            .field("client_certificate", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// A client configuration with rustls' `ring` provider, named explicitly so that no other
/// crate's choice (the process-wide default provider) changes it.
fn client_config(
    roots: &Arc<RootCertStore>,
    identity: Option<&Identity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots.clone());
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The TLS failure inside an I/O error from a TLS stream, said plainly; `None` if the error
/// is not a TLS one (the connection was simply lost).
pub(crate) fn classify(e: &std::io::Error, server_name: &ServerName<'_>) -> Option<TlsError> {
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(match tls {
        rustls::Error::InvalidCertificate(why) => TlsError::Untrusted {
            server_name: server_name.to_str().into_owned(),
            reason: untrusted_because(why),
        },
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired) => {
            TlsError::ClientRefused(
                "it requires a client certificate (mutual TLS) and this client sent none".into(),
            )
        }
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied),
        ) => TlsError::ClientRefused(format!(
            "it did not accept this client's certificate ({alert:?})"
        )),
        rustls::Error::InvalidMessage(_) => TlsError::Handshake(format!(
            "{tls}: the peer does not speak TLS (is this the node's plain port?)"
        )),
        other => TlsError::Handshake(other.to_string()),
    })
}

/// A failed TLS handshake, said plainly. A node that closes the connection before
/// answering is usually turning this address away (too many of its connections in the
/// handshake at once).
pub(crate) fn tls_connect_error(e: std::io::Error, server_name: &ServerName<'_>) -> TlsError {
    use std::io::ErrorKind::{ConnectionReset, UnexpectedEof};
    classify(&e, server_name).unwrap_or_else(|| match e.kind() {
        UnexpectedEof | ConnectionReset => TlsError::Handshake(format!(
            "the node closed the connection before the TLS handshake finished ({e}); it \
             may be refusing connections from this address for now"
        )),
        _ => TlsError::Handshake(e.to_string()),
    })
}

fn untrusted_because(why: &CertificateError) -> String {
    match why {
        CertificateError::UnknownIssuer => {
            "it is not signed by a CA this client trusts (unknown issuer)".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("it was issued for another name ({why})")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            format!("it has expired ({why})")
        }
        other => other.to_string(),
    }
}

//! The client's one error type: local failures (transport, auth, encoding) and remote
//! errors that carry the Python exception kind the node raised.

pub use syncman_protocol::ErrorKind;
use syncman_protocol::RemoteError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection to the node is gone; calls in flight and later calls fail with this.
    #[error("disconnected from the node")]
    Disconnected,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The authkeys differ (either side rejected the other's answer).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The node would not take the connection now, and said why (e.g. too many
    /// connections still in the handshake from this address). Retrying later may work.
    #[error("the node refused the connection: {0}")]
    Refused(String),
    /// The handshake or hello failed for another reason (not a syncman node, bad version).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// TLS failed: the node's certificate was not trusted, the node refused this client's
    /// certificate, or the files given for TLS cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Connecting or the handshake took longer than allowed.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// This call's request is larger than the frame limit (the client's own, or the
    /// node's, learnt when connecting): nothing was sent. Or its reply was larger than the
    /// client's limit and was skipped. Either way the connection carries on.
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u64, max: usize },
    /// The node raised an error: `kind` is the Python exception name (`KeyError`, ...).
    #[error("{kind}: {message}")]
    Remote { kind: ErrorKind, message: String },
    #[error("cannot encode an argument: {0}")]
    Encode(String),
    #[error("cannot decode the result: {0}")]
    Decode(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A [`crate::blocking`] call was made on a thread with a tokio runtime context, where
    /// blocking would stall (or panic) that runtime; nothing was sent.
    #[error(
        "the blocking client cannot be used inside an async runtime; \
         use the async syncman_client::Manager there"
    )]
    InsideRuntime,
}

impl Error {
    /// The remote error kind, if the node raised this error.
    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            Error::Remote { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// The node ended the session because its heartbeat deadline passed (this process
    /// was stopped or wedged): what the session held was released.
    pub fn is_session_expired(&self) -> bool {
        self.is_kind(ErrorKind::SessionExpired)
    }

    pub fn is_disconnected(&self) -> bool {
        matches!(self, Error::Disconnected | Error::Io(_))
    }

    /// A timeout, local (connect) or remote (a wait that ran out).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_)) || self.kind() == Some(&ErrorKind::Timeout)
    }

    pub(crate) fn is_kind(&self, kind: ErrorKind) -> bool {
        self.kind() == Some(&kind)
    }
}

impl From<RemoteError> for Error {
    fn from(e: RemoteError) -> Self {
        Error::Remote {
            kind: e.kind,
            message: e.message,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

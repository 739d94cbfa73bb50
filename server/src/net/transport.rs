//! What a connection runs over: a plain TCP stream, or TLS over one (`tls.rs`). The
//! connection code is generic over [`Transport`], so each kind gets its own compiled copy
//! and the plain path stays exactly what it was: no boxing, no dynamic dispatch, and a
//! TCP stream still splits into its two owned halves without a lock.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A byte stream over a TCP socket.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    type Reader: AsyncRead + Unpin + Send + 'static;
    type Writer: AsyncWrite + Unpin + Send + 'static;

    /// The socket underneath, for socket options (`TCP_QUICKACK` after the handshake).
    fn tcp(&self) -> &TcpStream;

    /// Splits the stream so replies are written while requests are read.
    fn split(self) -> (Self::Reader, Self::Writer);
}

impl Transport for TcpStream {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    fn tcp(&self) -> &TcpStream {
        self
    }

    fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

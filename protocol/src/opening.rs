//! The client's opening of a native session: CPython's handshake, then the hello. Written
//! once here for every native client: the client crate, `syncman status` and the tests.

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::error::RemoteError;
use crate::frame::{FrameCodec, FrameError};
use crate::handshake::{client_handshake, HandshakeError};
use crate::message::{decode_response, encode_hello, HELLO_ID, NATIVE_VERSION};

/// Why a native session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The handshake failed; [`HandshakeError::is_auth_failure`] tells a wrong key apart.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The node answered the hello with an error (e.g. an unsupported version).
    #[error("the node refused the session: {0}")]
    Refused(RemoteError),
    #[error("the node closed the connection after authentication")]
    Closed,
    #[error("unexpected answer to the hello (this client speaks version {NATIVE_VERSION})")]
    BadHello,
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl OpenError {
    /// True when the two sides hold different authkeys.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, OpenError::Handshake(e) if e.is_auth_failure())
    }
}

/// Runs the client's side of the handshake on `framed`, raises its frame limit to
/// `max_frame`, sends the hello and waits for the node to accept it. Afterwards `framed`
/// carries native requests and responses.
pub async fn open_native<S>(
    framed: &mut Framed<S, FrameCodec>,
    authkey: &[u8],
    max_frame: usize,
) -> Result<(), OpenError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    client_handshake(framed, authkey).await?;
    framed.codec_mut().set_max_len(max_frame);
    let mut hello = BytesMut::new();
    encode_hello(&mut hello);
    framed.send(hello.freeze()).await?;
    let answer = match framed.next().await {
        Some(frame) => frame?.freeze(),
        None => return Err(OpenError::Closed),
    };
    match decode_response(answer) {
        Ok((HELLO_ID, Ok(_))) => Ok(()),
        Ok((HELLO_ID, Err(e))) => Err(OpenError::Refused(e)),
        _ => Err(OpenError::BadHello),
    }
}

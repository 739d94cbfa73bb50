//! The client's opening of a native session: CPython's handshake, then the hello. Written
//! once here for every native client: the client crate, `syncman status` and the tests.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::error::RemoteError;
use crate::frame::{FrameCodec, FrameError};
use crate::handshake::{client_handshake, HandshakeError};
use crate::message::{
    decode_hello_answer, decode_response, encode_hello_with_limit, HELLO_ID, NATIVE_VERSION,
};

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

/// What the node said in answer to the hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The node's frame limit; `None` from a node that does not say.
    pub node_max_frame: Option<u64>,
    /// The heartbeat deadline the node granted; `None`: no heartbeat is expected.
    pub heartbeat_ttl: Option<Duration>,
}

impl Opened {
    /// The largest request this client may send: its own limit and the node's, the smaller.
    pub fn send_limit(&self, own: usize) -> usize {
        self.node_max_frame.map_or(own, |node| {
            own.min(usize::try_from(node).unwrap_or(usize::MAX))
        })
    }
}

/// Runs the client's side of the handshake on `framed`, raises its frame limit to
/// `max_frame`, sends the hello (stating that limit, and the heartbeat deadline the client
/// asks for if it will heartbeat) and waits for the node to accept it. Afterwards `framed`
/// carries native requests and responses.
pub async fn open_native<S>(
    framed: &mut Framed<S, FrameCodec>,
    authkey: &[u8],
    max_frame: usize,
    heartbeat_ttl: Option<Duration>,
) -> Result<Opened, OpenError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    client_handshake(framed, authkey).await?;
    framed.codec_mut().set_max_len(max_frame);
    let mut hello = BytesMut::new();
    let ttl_ms = heartbeat_ttl.map(|t| t.as_millis().min(u64::MAX as u128) as u64);
    encode_hello_with_limit(&mut hello, max_frame as u64, ttl_ms);
    framed.send(hello.freeze()).await?;
    let answer = match framed.next().await {
        Some(frame) => frame?.freeze(),
        None => return Err(OpenError::Closed),
    };
    match decode_response(answer) {
        Ok((HELLO_ID, Ok(answer))) => {
            let answer = decode_hello_answer(&answer).map_err(|_| OpenError::BadHello)?;
            Ok(Opened {
                node_max_frame: answer.max_frame,
                heartbeat_ttl: answer.heartbeat_ttl_ms.map(Duration::from_millis),
            })
        }
        Ok((HELLO_ID, Err(e))) => Err(OpenError::Refused(e)),
        _ => Err(OpenError::BadHello),
    }
}

//! Talking to a running node from the command line (`status`, `shutdown`): one native
//! session and the node's own calls (object 0), using only the protocol crate (the node's
//! binary does not depend on the client crate).

use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use syncman_protocol::handshake::HandshakeError;
use syncman_protocol::message::{self, decode_response, CONTROL_OBJECT};
use syncman_protocol::opening::{open_native, OpenError};
use syncman_protocol::{FrameCodec, RemoteError, Value, DEFAULT_MAX_FRAME};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// How long one command may take, connecting included.
const DEADLINE: Duration = Duration::from_secs(10);

/// Why a command could not get its answer from the node.
#[derive(Debug, thiserror::Error)]
pub enum RemoteFailure {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("authkey mismatch: the node at {addr} did not accept this key")]
    WrongKey { addr: String },
    #[error("the node at {addr} refused the connection: {why}")]
    Refused { addr: String, why: String },
    #[error("cannot open a session with {addr}: {source}")]
    Open { addr: String, source: OpenError },
    #[error("{addr} did not answer within {DEADLINE:?}")]
    Timeout { addr: String },
    #[error("the node at {addr} closed the connection before answering")]
    Closed { addr: String },
    #[error("the node at {addr} answered {method} with an error: {source}")]
    Call {
        addr: String,
        method: &'static str,
        source: RemoteError,
    },
    #[error("unreadable answer from {addr}: {why}")]
    BadAnswer { addr: String, why: String },
}

/// Authenticates with `addr`, makes the control call `method` (no arguments) and returns
/// its result, all within [`DEADLINE`].
pub async fn control_call(
    addr: &str,
    authkey: &[u8],
    method: &'static str,
) -> Result<Value, RemoteFailure> {
    let work = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| RemoteFailure::Connect {
                addr: addr.into(),
                source,
            })?;
        let mut framed = Framed::new(stream, FrameCodec::handshake());
        open_native(&mut framed, authkey, DEFAULT_MAX_FRAME, None)
            .await
            .map_err(|e| opening_failed(addr, e))?;
        let bad = |why: String| RemoteFailure::BadAnswer {
            addr: addr.into(),
            why,
        };
        let mut req = BytesMut::new();
        message::encode_request_head(&mut req, 1, CONTROL_OBJECT, method);
        message::encode_args_len(&mut req, 0);
        framed
            .send(req.freeze())
            .await
            .map_err(|e| bad(e.to_string()))?;
        let frame = framed
            .next()
            .await
            .ok_or_else(|| RemoteFailure::Closed { addr: addr.into() })?
            .map_err(|e| bad(e.to_string()))?;
        let (id, result) = decode_response(frame.freeze()).map_err(|e| bad(e.to_string()))?;
        if id != 1 {
            return Err(bad(format!("unexpected reply id {id}")));
        }
        let raw = result.map_err(|source| RemoteFailure::Call {
            addr: addr.into(),
            method,
            source,
        })?;
        syncman_protocol::value::decode(&raw).map_err(|e| bad(e.to_string()))
    };
    tokio::time::timeout(DEADLINE, work)
        .await
        .map_err(|_| RemoteFailure::Timeout { addr: addr.into() })?
}

/// A wrong key and a refusal (with the node's reason) get their own words.
fn opening_failed(addr: &str, e: OpenError) -> RemoteFailure {
    match e {
        e if e.is_auth_failure() => RemoteFailure::WrongKey { addr: addr.into() },
        OpenError::Handshake(HandshakeError::Refused(why)) => RemoteFailure::Refused {
            addr: addr.into(),
            why,
        },
        source => RemoteFailure::Open {
            addr: addr.into(),
            source,
        },
    }
}

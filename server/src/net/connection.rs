//! One TCP connection from accept to close: handshake under a deadline, then the dialect
//! named by the first frame. Nothing a client sends is processed before the handshake
//! succeeds, and no buffer grows past CPython's 256-byte handshake limit until then.
//! A TLS connection (`tls.rs`) runs its TLS handshake first and then the same code, over
//! any [`Transport`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::{FutureExt, SinkExt, StreamExt};
use syncman_protocol::frame::SkippingFrameCodec;
use syncman_protocol::handshake::{server_handshake, ChallengePolicy, HandshakeError};
use syncman_protocol::message::{decode_hello, encode_response, Hello, HELLO_ID, NATIVE_VERSION};
use syncman_protocol::{FrameCodec, RemoteError};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_util::codec::{Framed, FramedParts};
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::admission::HandshakeSlots;
use super::frame_reader::FrameReader;
use super::log_limit::LogLimit;
use super::metrics::{ConnectionMetrics, NetMetrics};
use super::native;
use super::pickle;
use super::transport::Transport;
use crate::node::backend::Backend;
use crate::node::session::Session;
use crate::node::Node;

/// First byte of a CPython pickle (the PROTO opcode).
const PICKLE_PROTO: u8 = 0x80;

/// Serves one plain connection. `handshake_slots` are held until the peer has authenticated.
pub(crate) async fn handle<B: Backend>(
    stream: TcpStream,
    peer: SocketAddr,
    node: Arc<Node<B>>,
    handshake_slots: HandshakeSlots,
    sessions: SessionSpawner,
    metrics: NetMetrics,
) {
    let metrics = metrics.connection_accepted();
    set_socket_options(&stream, peer, &node);
    serve(
        stream,
        peer,
        node,
        handshake_slots,
        Instant::now(),
        sessions,
        metrics,
    )
    .await;
}

/// Where a native session runs once its handshake is over: a task of its own, so that the
/// handshake's state is freed instead of being kept in the session's task for its whole
/// life (about 1 KiB per idle connection). It carries the connection's place.
pub(crate) struct SessionSpawner {
    tracker: TaskTracker,
    place: OwnedSemaphorePermit,
}

impl SessionSpawner {
    pub(crate) fn new(tracker: TaskTracker, place: OwnedSemaphorePermit) -> Self {
        SessionSpawner { tracker, place }
    }

    fn spawn(self, session: impl Future<Output = ()> + Send + 'static) {
        let SessionSpawner { tracker, place } = self;
        // A combinator, not an `async` block: that would hold `session` twice (as its
        // capture and as the future it awaits).
        tracker.spawn(session.map(move |()| drop(place)));
    }
}

/// Options every accepted socket gets, plain or TLS.
pub(crate) fn set_socket_options<B: Backend>(stream: &TcpStream, peer: SocketAddr, node: &Node<B>) {
    let _ = stream.set_nodelay(true);
    if let Some(idle) = node.config.keepalive {
        if let Err(e) = detect_dead_peers(stream, idle) {
            warn!(%peer, "cannot enable keepalive: {e}");
        }
    }
}

/// The handshake, then the dialect, over `stream`; the handshake must be over by
/// `accepted` + `handshake_timeout`. The connection counts as handshaking in the metrics
/// until then.
pub(crate) async fn serve<S: Transport, B: Backend>(
    stream: S,
    peer: SocketAddr,
    node: Arc<Node<B>>,
    handshake_slots: HandshakeSlots,
    accepted: Instant,
    sessions: SessionSpawner,
    metrics: ConnectionMetrics,
) {
    let mut framed = Framed::new(stream, FrameCodec::handshake());
    let policy = ChallengePolicy {
        require_sha256: node.config.require_sha256,
        answer_timeout: Some(node.config.first_answer_timeout),
    };
    // Boxed: its state lives only during the handshake, not in every session's task.
    let handshake = Box::pin(server_handshake(&mut framed, &node.config.authkey, policy));
    let shutdown = node.shutdown.clone();
    let result = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = tokio::time::timeout_at(accepted + node.config.handshake_timeout, handshake) => r,
    };
    metrics.record_handshake(&result);
    // Storms of failures (a scan, a client with the wrong key in a loop) are rate-limited
    // in the log: a few lines a second per kind, then a count of those left out.
    static TIMED_OUT: LogLimit = LogLimit::new();
    static AUTH_FAILED: LogLimit = LogLimit::new();
    static FAILED: LogLimit = LogLimit::new();
    match result {
        Err(_) => {
            if let Some(left_out) = TIMED_OUT.allow() {
                warn!(%peer, left_out, "handshake timed out after {:?}; closing", node.config.handshake_timeout);
            }
            return;
        }
        Ok(Err(e)) if e.is_auth_failure() => {
            if let Some(left_out) = AUTH_FAILED.allow() {
                warn!(%peer, left_out, "authentication failed: {e}");
            }
            if matches!(e, HandshakeError::PeerRejected) {
                handshake_slots.wrong_key(peer);
            }
            return;
        }
        Ok(Err(e)) => {
            if let Some(left_out) = FAILED.allow() {
                warn!(%peer, left_out, "handshake failed: {e}");
            }
            return;
        }
        Ok(Ok(())) => {
            debug!(%peer, "authenticated");
            handshake_slots.right_key();
        }
    }
    ack_now(framed.get_ref().tcp());
    drop(handshake_slots);
    let metrics = metrics.authenticated();
    framed.codec_mut().set_max_len(node.config.max_frame);

    let first = tokio::select! {
        _ = shutdown.cancelled() => return,
        f = framed.next() => f,
    };
    let first = match first {
        None => return debug!(%peer, "closed after the handshake"),
        Some(Err(e)) => return warn!(%peer, "bad first frame: {e}"),
        Some(Ok(frame)) => frame,
    };
    let hello = match decode_hello(&first) {
        Some(Ok(hello)) if hello.version == NATIVE_VERSION => hello,
        Some(Ok(Hello { version, .. })) => {
            return refuse(
                &mut framed,
                peer,
                format!(
                "unsupported native protocol version {version}; this node speaks {NATIVE_VERSION}"
            ),
            )
            .await
        }
        Some(Err(e)) => return refuse(&mut framed, peer, format!("malformed hello: {e}")).await,
        None if first.first() == Some(&PICKLE_PROTO) => {
            // Boxed: a native session's task need not be sized for the pickle dialect.
            return Box::pin(pickle::serve(framed, first, node, peer, metrics)).await;
        }
        None => {
            return warn!(%peer, "unknown dialect (first frame is neither a hello nor a pickle); closing")
        }
    };

    let session = match Box::pin(Session::open(node)).await {
        Ok(session) => session,
        Err(e) => return refuse(&mut framed, peer, format!("cannot open a session: {e}")).await,
    };
    info!(session = session.id(), %peer, "session started");
    // Split the socket so replies are written while requests are read; keep any bytes the
    // client already pipelined after its hello.
    // From here an oversized request is skipped and answered, not a reason to close.
    // The handshake's buffers (8 KiB each way) are freed here, not kept for the session's
    // life: only what the client already sent moves on.
    let FramedParts {
        io,
        codec,
        read_buf,
        ..
    } = framed.into_parts();
    let (rd, wr) = io.split();
    let reader = FrameReader::new(rd, SkippingFrameCodec::new(codec.max_len()), &read_buf);
    drop(read_buf);
    sessions.spawn(native::serve(session, reader, wr, peer, hello, metrics));
}

/// Sends the ACK of the client's last handshake frame now instead of after the delayed-ACK
/// timer (about 40 ms). CPython's client writes its `#WELCOME#` and then, at once, its first
/// request; with Nagle's algorithm on (CPython does not turn it off) the request waits for
/// that ACK, so every CPython connection would stall 40 ms after authenticating. Setting
/// `TCP_QUICKACK` leaves delayed-ACK mode and flushes an ACK that is pending.
fn ack_now(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

/// TCP keepalive, plus a user timeout so that unacknowledged data (replies to a vanished
/// peer) fails the connection in about the same time instead of the kernel's ~15 minutes.
fn detect_dead_peers(stream: &TcpStream, idle: std::time::Duration) -> std::io::Result<()> {
    const PROBES: u32 = 3;
    let interval = (idle / PROBES).max(std::time::Duration::from_secs(1));
    let socket = socket2::SockRef::from(stream);
    socket.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(interval)
            .with_retries(PROBES),
    )?;
    socket.set_tcp_user_timeout(Some(idle + interval * PROBES))
}

async fn refuse<S: Transport>(framed: &mut Framed<S, FrameCodec>, peer: SocketAddr, why: String) {
    warn!(%peer, "{why}; closing");
    let mut payload = BytesMut::new();
    encode_response(
        &mut payload,
        HELLO_ID,
        &Err(RemoteError::protocol_error(why)),
    );
    let _ = framed.send(payload.freeze()).await;
}

/// Turns a connection away before its handshake with a `#REFUSED#` frame that says why
/// (CPython clients show it in their `AuthenticationError`), then closes it.
pub(crate) async fn refuse_before_handshake(stream: TcpStream, peer: SocketAddr, why: String) {
    log_refusal(peer, &why);
    let mut framed = Framed::new(stream, FrameCodec::handshake());
    let frame = syncman_protocol::handshake::refusal(&why);
    // Best effort and bounded: a peer that does not read is simply closed.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), framed.send(&frame[..])).await;
}

/// Logs a connection turned away before its handshake (rate-limited).
pub(crate) fn log_refusal(peer: SocketAddr, why: &str) {
    static REFUSED: LogLimit = LogLimit::new();
    if let Some(left_out) = REFUSED.allow() {
        warn!(%peer, left_out, "refusing connection: {why}");
    }
}

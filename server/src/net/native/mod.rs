//! The native dialect: MessagePack envelopes with request ids, many calls in flight on one
//! connection, replies in any order.
//!
//! One task per connection reads requests, hands them to the session core (which runs
//! fast methods inline and parks the rest) and writes the replies itself (`replies.rs`):
//! it reads what has arrived, then writes every reply made meanwhile in one write.
//! Control calls (object 0) are decoded in `control.rs`.
//!
//! # Back-pressure
//! Replies not yet written are bounded in count and bytes. While they are over either,
//! this task reads no requests and only writes: a client that does not read its replies
//! pushes back on itself through TCP, never on other sessions.

mod control;
mod heartbeat;
mod replies;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use syncman_protocol::frame::Received;
use syncman_protocol::message::{
    decode_client_message, encode_hello_answer, peek_request_id, ClientMessage, Hello,
    CONTROL_OBJECT, HELLO_ID, NATIVE_VERSION,
};
use syncman_protocol::value::encode;
use syncman_protocol::{ErrorKind, RemoteError};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, warn};

use super::frame_reader::FrameReader;
use super::metrics::{Dialect, NetMetrics, SessionEnd};
use super::wake_gate::WakeGated;
use crate::node::backend::Backend;
use crate::node::object::WithdrawReason;
use crate::node::session::Session;
use heartbeat::HeartbeatWatch;
use replies::Replies;

/// Serves a native session until the client leaves, the node shuts down, or the backend
/// ends the session.
///
/// The setup runs when this is called and the future holds only what the session needs
/// while it runs: an async fn would keep its arguments beside the values made from them,
/// and ten thousand idle sessions pay for every byte of it.
pub(crate) fn serve<R, W, B>(
    mut session: Session<B>,
    mut reader: FrameReader<R>,
    writer: W,
    peer: SocketAddr,
    hello: Hello,
    metrics: NetMetrics,
) -> impl std::future::Future<Output = ()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    B: Backend,
{
    let node = session.node().clone();
    let id = session.id();
    // Replies never exceed what the client said it accepts, nor the node's own limit.
    let reply_limit = hello.max_frame.map_or(node.config.max_frame, |client| {
        node.config
            .max_frame
            .min(usize::try_from(client).unwrap_or(usize::MAX))
    });
    session.set_reply_limit(reply_limit);
    let mut conn = NativeSession {
        session,
        replies: Replies::new(
            writer,
            reply_limit,
            node.config.reply_queue,
            node.config.reply_queue_bytes,
            metrics.enabled(),
        ),
    };
    let mut counted = metrics.session_started(id, Dialect::Native);
    counted.watch_reply_queue(|| conn.replies.probe());
    // A client that heartbeats gets the deadline it asked for, within the node's bounds.
    let (low, high) = node.config.heartbeat_ttl_bounds;
    let heartbeat_ttl = hello
        .heartbeat_ttl_ms
        .map(|ms| Duration::from_millis(ms).clamp(low, high));
    // A client that stated its limit learns the node's.
    let answer = match hello.max_frame {
        Some(_) => encode_hello_answer(
            node.config.max_frame as u64,
            heartbeat_ttl.map(|t| t.as_millis() as u64),
        ),
        None => encode::int(NATIVE_VERSION as i128),
    };
    conn.replies.push(HELLO_ID, Ok(answer));
    async move {
        let (reason, ending) = conn.serve(&mut reader, heartbeat_ttl).await;
        info!(session = id, %peer, "session ended: {ending}");
        counted.ended(reason);
        // Boxed: an idle session's task need not be sized for its ending.
        Box::pin(finish(conn)).await;
        // Open in the metrics until it has ended.
        drop(counted);
    }
}

/// Ends the session and writes what is left, within the drain's bounds.
async fn finish<B: Backend, W: AsyncWrite + Unpin>(conn: NativeSession<B, W>) {
    let node = conn.session.node().clone();
    let id = conn.session.id();
    let NativeSession {
        session,
        mut replies,
    } = conn;
    let why = if node.is_shutting_down() {
        WithdrawReason::Shutdown
    } else {
        WithdrawReason::Cancelled
    };
    let withdrawn = session.end(why).await;
    if why == WithdrawReason::Shutdown {
        // The client is still there to hear `ShuttingDown`.
        for (call, reply) in withdrawn {
            replies.push(call, reply);
        }
    }
    // A client that does not read (a stopped process) is given `drain_timeout`, or until
    // the node's own drain is over.
    tokio::select! {
        done = replies.close() => {
            if let Err(e) = done {
                debug!(session = id, "writing the last replies: {e}");
            }
        }
        _ = node.drain_over.cancelled() => {
            warn!(session = id, "replies not written by the end of the drain; closing");
        }
        _ = tokio::time::sleep(node.config.drain_timeout) => {
            warn!(session = id, "the client read no replies for {:?}; closing", node.config.drain_timeout);
        }
    }
}

/// A native connection's session: the core plus its replies on their way out.
struct NativeSession<B: Backend, W> {
    session: Session<B>,
    replies: Replies<W>,
}

impl<B: Backend, W: AsyncWrite + Unpin> NativeSession<B, W> {
    /// Reads and answers requests until the session should end; returns why.
    async fn serve<R>(
        &mut self,
        reader: &mut FrameReader<R>,
        heartbeat_ttl: Option<Duration>,
    ) -> (SessionEnd, String)
    where
        R: AsyncRead + Unpin,
    {
        let node = self.session.node().clone();
        let lost = node.backend.session_lost(self.session.id());
        tokio::pin!(lost);
        // Cancelled by the node's shutdown or by the heartbeat watchdog. Pinned once: a
        // cancellation future made afresh on every turn would register and deregister a
        // waiter each time. Gated: it is looked at again only once it has been woken.
        let end = node.shutdown.child_token();
        let mut heartbeat = heartbeat_ttl.map(|ttl| HeartbeatWatch::start(ttl, end.clone()));
        let ended = end.cancelled();
        tokio::pin!(ended);
        let mut ended = WakeGated::new(ended);
        let mut said_full = false;
        loop {
            let room = self.replies.has_room();
            if !room && !said_full {
                debug!(
                    session = self.session.id(),
                    "reply queue full: not reading requests until the client reads"
                );
            }
            said_full = !room;
            // In order: parked answers and requests while there is room; the session's
            // end, looked at only when nothing is waiting to be read (a client that never
            // pauses still meets it: the runtime's budget makes the socket wait now and
            // then); then, when the socket could not take them at once, the replies made
            // meanwhile.
            tokio::select! {
                biased;
                (call, reply) = self.session.next_answer(), if room && self.session.awaits_answers() => {
                    self.replies.push(call, reply);
                    if let Err(e) = self.write_if_caught_up(reader) {
                        return write_failed(e);
                    }
                }
                frame = reader.next(), if room => match frame {
                    None => return (SessionEnd::ClientClosed, "client closed the connection".into()),
                    Some(Err(e)) => {
                        warn!(session = self.session.id(), "closing connection: {e}");
                        return (SessionEnd::Error, format!("bad frame: {e}"));
                    }
                    Some(Ok(received)) => {
                        if let Some(heartbeat) = &mut heartbeat {
                            heartbeat.heard();
                        }
                        if let Err(why) = self.handle_received(received).await {
                            warn!(session = self.session.id(), "closing connection: {why}");
                            return (SessionEnd::Error, why);
                        }
                        if let Err(e) = self.write_if_caught_up(reader) {
                            return write_failed(e);
                        }
                    }
                },
                () = &mut ended => {
                    if let Some(ttl) = heartbeat.as_ref().and_then(HeartbeatWatch::expired) {
                        let why = format!("no heartbeat from the client within {ttl:?}");
                        // Best effort: a stopped client reads it when it resumes.
                        let notice = RemoteError::new(ErrorKind::SessionExpired, why.clone());
                        self.replies.push(HELLO_ID, Err(notice));
                        warn!(session = self.session.id(), "session expired: {why}");
                        return (SessionEnd::HeartbeatExpired, format!("expired: {why}"));
                    }
                    Box::pin(self.drain_buffered(reader)).await;
                    return (SessionEnd::Shutdown, "node shutting down".into());
                }
                () = &mut lost => {
                    return (SessionEnd::BackendLost, "the backend ended the session".into());
                }
                written = self.replies.write_out(), if !self.replies.is_empty() => {
                    if let Err(e) = written {
                        return write_failed(e);
                    }
                }
            }
        }
    }

    /// Writes the replies made so far, if the socket takes them now, once every request
    /// that arrived is answered (so a burst of requests is answered in one write), or once
    /// enough is buffered (so a client that never pauses still hears back). What the
    /// socket does not take now waits for the loop's write branch.
    fn write_if_caught_up<R: AsyncRead + Unpin>(
        &mut self,
        reader: &FrameReader<R>,
    ) -> std::io::Result<()> {
        if self.replies.is_empty() || (reader.has_buffered() && !self.replies.should_write()) {
            return Ok(());
        }
        self.replies.write_now()
    }

    /// On shutdown, answers the requests that already arrived (they are in the read
    /// buffer) instead of dropping them; nothing more is read from the socket.
    async fn drain_buffered<R>(&mut self, reader: &mut FrameReader<R>)
    where
        R: AsyncRead + Unpin,
    {
        while let Some(received) = reader.next_buffered() {
            if self.handle_received(received).await.is_err() {
                return;
            }
        }
    }

    /// Handles one frame. A request over the frame limit was skipped as it arrived: it is
    /// answered with an error and the connection carries on.
    async fn handle_received(&mut self, received: Received) -> Result<(), String> {
        match received {
            Received::Frame { frame, pins } => self.handle_frame(frame.freeze(), pins).await,
            Received::TooLarge { len, head } => {
                let Some(id) = peek_request_id(&head) else {
                    return Err(format!(
                        "a frame of {len} bytes over the limit that is not a request"
                    ));
                };
                let max = self.session.node().config.max_frame;
                let why = RemoteError::value_error(format!(
                    "request of {len} bytes exceeds the node's frame limit of {max} bytes"
                ));
                debug!(session = self.session.id(), id, "{why}");
                self.replies.push(id, Err(why));
                Ok(())
            }
        }
    }

    /// Handles one frame. An undecodable envelope closes the connection (framing can no
    /// longer be trusted to mean what the client meant); everything else is a reply.
    /// `pins`: what a part of the frame kept alive would keep with it (the codec says).
    async fn handle_frame(&mut self, frame: Bytes, pins: usize) -> Result<(), String> {
        let message = decode_client_message(&frame, pins).map_err(|e| e.to_string())?;
        self.dispatch(message).await;
        Ok(())
    }

    async fn dispatch(&mut self, message: ClientMessage<'_>) {
        match message {
            ClientMessage::Request {
                id,
                object: CONTROL_OBJECT,
                method,
                args,
            } => {
                let reply = Box::pin(control::call(&mut self.session, method, args)).await;
                if let Err(e) = &reply {
                    debug!(
                        session = self.session.id(),
                        method, "control error reply: {e}"
                    );
                }
                self.replies.push(id, reply);
            }
            ClientMessage::Request {
                id,
                object,
                method,
                args,
            } => {
                if let Some(reply) = self.session.call(id, object, method, args) {
                    self.replies.push(id, reply);
                }
            }
            ClientMessage::Cancel { id } => {
                if let Some(reply) = self.session.cancel(id) {
                    self.replies.push(id, reply);
                }
            }
            ClientMessage::Release { object } => self.session.release(object).await,
            // Counted as a sign of life by the loop; nothing to answer.
            ClientMessage::Heartbeat => {}
        }
    }
}

/// The session ends when its replies cannot be written (the client is gone).
fn write_failed(e: std::io::Error) -> (SessionEnd, String) {
    (SessionEnd::Error, format!("writing replies: {e}"))
}

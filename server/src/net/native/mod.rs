//! The native dialect: MessagePack envelopes with request ids, many calls in flight on one
//! connection, replies in any order.
//!
//! One task reads requests and hands them to the session core, which runs fast methods
//! inline and parks the rest; a writer task (`writer.rs`) batches replies into few writes.
//! Control calls (object 0) are decoded in `control.rs`.
//!
//! # Back-pressure
//! Replies wait in a queue bounded in count and bytes. When it is full this task waits,
//! and so stops reading requests: a client that does not read its replies pushes back on
//! itself through TCP, never on other sessions.

mod control;
mod heartbeat;
mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::SinkExt;
use syncman_protocol::frame::Received;
use syncman_protocol::message::{
    decode_client_message, encode_hello_answer, peek_request_id, ClientMessage, Hello,
    CONTROL_OBJECT, HELLO_ID, NATIVE_VERSION,
};
use syncman_protocol::value::encode;
use syncman_protocol::{ErrorKind, RemoteError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::frame_reader::FrameReader;
use super::metrics::{Dialect, NetMetrics, QueueProbe, SessionEnd};
use crate::node::backend::Backend;
use crate::node::object::{Reply, SessionId, WithdrawReason};
use crate::node::session::{CallId, Session};
use heartbeat::HeartbeatWatch;
use writer::{reply_cost, write_replies, QueuedReply};

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
    // Holds `reply_queue` replies, plus one per sender (the one here); no memory while
    // empty, so an idle session costs nothing for it.
    let (tx, rx) = mpsc::channel(node.config.reply_queue.saturating_sub(1));
    // Replies queued and not yet taken by the writer, counted only for the metrics.
    let queued = metrics.enabled().then(Arc::<AtomicIsize>::default);
    let writer_task = tokio::spawn(write_replies(writer, reply_limit, rx, queued.clone()));
    let mut conn = NativeSession {
        session,
        replies: Replies {
            tx,
            budget: Arc::new(Semaphore::new(node.config.reply_queue_bytes)),
            max_bytes: node.config.reply_queue_bytes,
            drain_over: node.drain_over.clone(),
            session: id,
            queued,
        },
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
    // The queue is empty and its byte budget whole, so the answer fits now.
    let greeted = conn.replies.try_send(HELLO_ID, Ok(answer));
    async move {
        let (reason, ending) = if greeted {
            conn.serve(&mut reader, heartbeat_ttl).await
        } else {
            let gone = ReplyError::WriterGone;
            (gone.reason(), gone.to_string())
        };
        info!(session = id, %peer, "session ended: {ending}");
        counted.ended(reason);
        // Boxed: an idle session's task need not be sized for its ending.
        Box::pin(finish(conn, writer_task)).await;
        // Open in the metrics until it has ended.
        drop(counted);
    }
}

/// Ends the session and lets the writer flush what is left, within the drain's bounds.
async fn finish<B: Backend>(
    conn: NativeSession<B>,
    mut writer_task: tokio::task::JoinHandle<std::io::Result<()>>,
) {
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
            if replies.send(call, reply).await.is_err() {
                break;
            }
        }
    }
    // Dropping the last sender lets the writer flush what is queued and finish; a client
    // that does not read (a stopped process) is given `drain_timeout`, or until the node's
    // own drain is over.
    drop(replies);
    tokio::select! {
        done = &mut writer_task => {
            if let Ok(Err(e)) = done {
                debug!(session = id, "reply writer: {e}");
            }
        }
        _ = node.drain_over.cancelled() => {
            writer_task.abort();
            warn!(session = id, "replies not flushed by the end of the drain; closing");
        }
        _ = tokio::time::sleep(node.config.drain_timeout) => {
            writer_task.abort();
            warn!(session = id, "the client read no replies for {:?}; closing", node.config.drain_timeout);
        }
    }
}

/// Why a reply could not be queued.
#[derive(Debug, thiserror::Error)]
enum ReplyError {
    #[error("the reply writer is gone (the socket failed)")]
    WriterGone,
    #[error("the client did not read its replies before the node's drain ended")]
    DrainOver,
}

impl ReplyError {
    fn reason(&self) -> SessionEnd {
        match self {
            ReplyError::WriterGone => SessionEnd::Error,
            ReplyError::DrainOver => SessionEnd::Shutdown,
        }
    }
}

/// The sending side of a session's reply queue.
struct Replies {
    tx: mpsc::Sender<QueuedReply>,
    /// Bytes of replies this session may have queued (`reply_queue_bytes`).
    budget: Arc<Semaphore>,
    max_bytes: usize,
    /// The node's drain is over: stop waiting for a client to make room.
    drain_over: CancellationToken,
    /// For log lines.
    session: SessionId,
    /// Replies queued and not yet written, when the node collects metrics (the channel
    /// cannot say). Briefly below zero when the writer writes a reply before it is counted.
    queued: Option<Arc<AtomicIsize>>,
}

impl Replies {
    /// Reads this queue for the metrics: replies and bytes waiting for the writer.
    fn probe(&self) -> QueueProbe {
        let queued = self.queued.clone();
        let budget = self.budget.clone();
        let max_bytes = self.max_bytes;
        Box::new(move || {
            let replies = queued
                .as_ref()
                .map_or(0, |q| q.load(Ordering::Relaxed).max(0));
            let bytes = max_bytes.saturating_sub(budget.available_permits());
            (replies as usize, bytes)
        })
    }

    /// One more reply in the queue, for the metrics.
    fn count_queued(&self) {
        if let Some(queued) = &self.queued {
            queued.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a reply if there is room now, without waiting; false if there was none.
    fn try_send(&mut self, call: CallId, reply: Reply) -> bool {
        let cost = reply_cost(&reply).min(self.max_bytes) as u32;
        let Ok(budget) = self.budget.clone().try_acquire_many_owned(cost) else {
            return false;
        };
        let queued = QueuedReply {
            id: call,
            reply,
            budget,
        };
        let sent = self.tx.try_send(queued).is_ok();
        if sent {
            self.count_queued();
        }
        sent
    }

    /// Queues a reply, waiting for room (which stops this session reading requests), but
    /// never past the end of the node's drain.
    async fn send(&mut self, call: CallId, reply: Reply) -> Result<(), ReplyError> {
        let cost = reply_cost(&reply).min(self.max_bytes) as u32;
        // The common case: room in both the byte budget and the queue, no waiting. The
        // waiting case is boxed, so that every session's task is not sized for it.
        match self.budget.clone().try_acquire_many_owned(cost) {
            Ok(budget) => match self.try_queue(call, reply, budget)? {
                None => Ok(()),
                Some(full) => Box::pin(self.wait_to_queue(full)).await,
            },
            Err(TryAcquireError::Closed) => Err(ReplyError::WriterGone),
            Err(TryAcquireError::NoPermits) => Box::pin(self.wait_to_send(call, reply, cost)).await,
        }
    }

    /// `send` when the byte budget is used up: waits for the writer to make room.
    async fn wait_to_send(
        &mut self,
        call: CallId,
        reply: Reply,
        cost: u32,
    ) -> Result<(), ReplyError> {
        let budget = match self.budget.clone().try_acquire_many_owned(cost) {
            Ok(budget) => budget,
            Err(TryAcquireError::Closed) => return Err(ReplyError::WriterGone),
            Err(TryAcquireError::NoPermits) => {
                debug!(
                    session = self.session,
                    "reply queue full: not reading requests until the client reads"
                );
                let wait = self.budget.clone().acquire_many_owned(cost);
                tokio::select! {
                    biased;
                    budget = wait => budget.map_err(|_| ReplyError::WriterGone)?,
                    _ = self.drain_over.cancelled() => return Err(ReplyError::DrainOver),
                }
            }
        };
        match self.try_queue(call, reply, budget)? {
            None => Ok(()),
            Some(full) => self.wait_to_queue(full).await,
        }
    }

    /// Queues a reply whose bytes are paid for, if the queue has room now; gives it back
    /// when the queue is full (its count, not its bytes).
    fn try_queue(
        &mut self,
        call: CallId,
        reply: Reply,
        budget: OwnedSemaphorePermit,
    ) -> Result<Option<QueuedReply>, ReplyError> {
        let queued = QueuedReply {
            id: call,
            reply,
            budget,
        };
        match self.tx.try_send(queued) {
            Ok(()) => {
                self.count_queued();
                Ok(None)
            }
            Err(e) if e.is_full() => Ok(Some(e.into_inner())),
            Err(_) => Err(ReplyError::WriterGone),
        }
    }

    /// `send` when the queue is full (its count, not its bytes).
    async fn wait_to_queue(&mut self, queued: QueuedReply) -> Result<(), ReplyError> {
        tokio::select! {
            biased;
            sent = self.tx.send(queued) => {
                sent.map_err(|_| ReplyError::WriterGone)?;
                self.count_queued();
                Ok(())
            }
            _ = self.drain_over.cancelled() => Err(ReplyError::DrainOver),
        }
    }
}

/// A native connection's session: the core plus its reply queue.
struct NativeSession<B: Backend> {
    session: Session<B>,
    replies: Replies,
}

impl<B: Backend> NativeSession<B> {
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
        // waiter each time.
        let end = node.shutdown.child_token();
        let mut heartbeat = heartbeat_ttl.map(|ttl| HeartbeatWatch::start(ttl, end.clone()));
        let ended = end.cancelled();
        tokio::pin!(ended);
        loop {
            tokio::select! {
                biased;
                () = &mut ended => {
                    if let Some(ttl) = heartbeat.as_ref().and_then(HeartbeatWatch::expired) {
                        let why = format!("no heartbeat from the client within {ttl:?}");
                        // Best effort: a stopped client reads it when it resumes.
                        let notice = RemoteError::new(ErrorKind::SessionExpired, why.clone());
                        self.replies.try_send(HELLO_ID, Err(notice));
                        warn!(session = self.session.id(), "session expired: {why}");
                        return (SessionEnd::HeartbeatExpired, format!("expired: {why}"));
                    }
                    Box::pin(self.drain_buffered(reader)).await;
                    return (SessionEnd::Shutdown, "node shutting down".into());
                }
                () = &mut lost => {
                    return (SessionEnd::BackendLost, "the backend ended the session".into());
                }
                (call, reply) = self.session.next_answer(), if self.session.awaits_answers() => {
                    if let Err(e) = self.replies.send(call, reply).await {
                        return (e.reason(), e.to_string());
                    }
                }
                frame = reader.next() => match frame {
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
                            // A client that did not read its replies before the drain ended
                            // is ended by the shutdown; anything else is its error.
                            let reason = if node.drain_over.is_cancelled() {
                                SessionEnd::Shutdown
                            } else {
                                SessionEnd::Error
                            };
                            return (reason, why);
                        }
                    }
                },
            }
        }
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
            Received::Frame(frame) => self.handle_frame(frame.freeze()).await,
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
                self.replies
                    .send(id, Err(why))
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Handles one frame. An undecodable envelope closes the connection (framing can no
    /// longer be trusted to mean what the client meant); everything else is a reply.
    async fn handle_frame(&mut self, frame: Bytes) -> Result<(), String> {
        let message = decode_client_message(&frame).map_err(|e| e.to_string())?;
        self.dispatch(message).await.map_err(|e| e.to_string())
    }

    async fn dispatch(&mut self, message: ClientMessage<'_>) -> Result<(), ReplyError> {
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
                self.replies.send(id, reply).await?;
            }
            ClientMessage::Request {
                id,
                object,
                method,
                args,
            } => {
                if let Some(reply) = self.session.call(id, object, method, args) {
                    self.replies.send(id, reply).await?;
                }
            }
            ClientMessage::Cancel { id } => {
                if let Some(reply) = self.session.cancel(id) {
                    self.replies.send(id, reply).await?;
                }
            }
            ClientMessage::Release { object } => self.session.release(object).await,
            // Counted as a sign of life by the loop; nothing to answer.
            ClientMessage::Heartbeat => {}
        }
        Ok(())
    }
}

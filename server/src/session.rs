//! A native session: one authenticated connection speaking the MessagePack dialect.
//!
//! One task reads requests and runs fast methods inline; parked calls wait in a local
//! `FuturesUnordered` (no task, no thread each); a writer task batches replies. All session
//! state is owned by this one task, so it needs no lock.
//!
//! # Cancellation
//! A parked call ends in exactly one of three ways: the object answers it; its deadline
//! passes and the node withdraws it (the object answers as Python would, e.g. `Empty`); or
//! the client cancels it / the session ends and the node withdraws it. Withdrawal and
//! answering are mutually exclusive under the object's lock, so nothing is handed to a
//! caller that has gone. If the answer won the race with a `Cancel`, the reply is still
//! sent: the client decides what a late answer means.
//!
//! # Failure
//! When the session ends for any reason (close, crash, network cut, shutdown), its parked
//! calls are withdrawn, its references dropped, and (by default) the locks and permits it
//! holds released.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use syncman_protocol::message::{decode_client_message, ClientMessage, CONTROL_OBJECT};
use syncman_protocol::{ErrorKind, FrameCodec, RemoteError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tracing::{debug, error, info, warn};

use crate::object::{
    CallCtx, Outcome, Parked, Reply, SessionId, SharedObject, WaiterId, Withdraw, Withdrawn,
};
use crate::server::Shared;
use crate::table::{no_such_object, ObjectId};

/// How a parked call's future ended.
enum ParkEnd {
    Answered(Reply),
    /// The deadline passed; the receiver comes back so a racing answer is not lost.
    TimedOut(oneshot::Receiver<Reply>),
    /// The object dropped the waiter without answering (withdrawn, or object freed).
    Dropped,
}

type ParkFuture = Pin<Box<dyn Future<Output = (u64, ParkEnd)> + Send>>;

struct ParkedCall {
    object: Arc<dyn SharedObject>,
    waiter: WaiterId,
    purpose: u8,
    /// The client cancelled after the object had answered but before the answer left:
    /// the answer goes back to the object instead of to the client.
    cancelled: bool,
}

/// State one session owns.
pub(crate) struct Session {
    pub id: SessionId,
    pub shared: Arc<Shared>,
    /// References this session holds on anonymous objects.
    pub refs: HashMap<ObjectId, u32>,
    /// Objects in which this session may hold locks or permits. Weak, so a freed object
    /// is not kept alive by a session that once locked it.
    holds: HashMap<ObjectId, Weak<dyn SharedObject>>,
    /// `holds` is pruned of freed objects when it grows past this.
    prune_holds_at: usize,
    parked: HashMap<u64, ParkedCall>,
    park_futures: FuturesUnordered<ParkFuture>,
    replies: mpsc::Sender<crate::writer::QueuedReply>,
    /// Bytes of replies this session may have queued (`reply_queue_bytes`).
    reply_budget: Arc<tokio::sync::Semaphore>,
}

/// Serves a native session until the client leaves or the node shuts down.
pub(crate) async fn run<R, W>(
    reader: FramedRead<R, FrameCodec>,
    writer: W,
    shared: Arc<Shared>,
    id: SessionId,
    peer: String,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(shared.config.reply_queue);
    let writer_task = tokio::spawn(crate::writer::write_replies(
        writer,
        shared.config.max_frame,
        rx,
    ));
    let hello = crate::encode::int(syncman_protocol::message::NATIVE_VERSION as i128);
    let mut session = Session {
        id,
        shared: shared.clone(),
        refs: HashMap::new(),
        holds: HashMap::new(),
        prune_holds_at: 64,
        parked: HashMap::new(),
        park_futures: FuturesUnordered::new(),
        replies: tx,
        reply_budget: Arc::new(tokio::sync::Semaphore::new(shared.config.reply_queue_bytes)),
    };
    session
        .reply(syncman_protocol::message::HELLO_ID, Ok(hello))
        .await;
    let ending = session.serve(reader).await;
    info!(session = id, %peer, "session ended: {ending}");
    session
        .end(if shared.shutdown.is_cancelled() {
            Withdraw::Shutdown
        } else {
            Withdraw::Cancelled
        })
        .await;
    // Dropping the last sender lets the writer flush what is queued and finish.
    drop(session);
    match tokio::time::timeout(shared.config.drain_timeout, writer_task).await {
        Ok(Ok(Err(e))) => debug!(session = id, "reply writer: {e}"),
        Err(_) => warn!(session = id, "reply writer did not drain in time"),
        _ => {}
    }
}

impl Session {
    async fn serve<R>(&mut self, mut reader: FramedRead<R, FrameCodec>) -> String
    where
        R: AsyncRead + Unpin,
    {
        let shutdown = self.shared.shutdown.clone();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    self.drain_buffered(&mut reader).await;
                    return "node shutting down".into();
                }
                Some((req, end)) = self.park_futures.next(), if !self.park_futures.is_empty() => {
                    self.finish_parked(req, end).await;
                }
                frame = reader.next() => match frame {
                    None => return "client closed the connection".into(),
                    Some(Err(e)) => {
                        warn!(session = self.id, "closing connection: {e}");
                        return format!("bad frame: {e}");
                    }
                    Some(Ok(frame)) => {
                        if let Err(why) = self.handle_frame(frame.freeze()).await {
                            warn!(session = self.id, "closing connection: {why}");
                            return why;
                        }
                    }
                },
            }
        }
    }

    /// On shutdown, answers the requests that already arrived (they are in the read
    /// buffer) instead of dropping them; nothing more is read from the socket.
    async fn drain_buffered<R>(&mut self, reader: &mut FramedRead<R, FrameCodec>)
    where
        R: AsyncRead + Unpin,
    {
        use tokio_util::codec::Decoder;
        loop {
            let mut codec = reader.decoder().clone();
            let frame = match codec.decode(reader.read_buffer_mut()) {
                Ok(Some(frame)) => frame,
                _ => return,
            };
            if self.handle_frame(frame.freeze()).await.is_err() {
                return;
            }
        }
    }

    async fn reply(&mut self, id: u64, reply: Reply) {
        // Fails only if the writer is gone (socket dead); the read side will notice.
        // Waiting here for budget or queue room stops this session reading requests:
        // a client that does not read its replies pushes back only on itself.
        let cost =
            crate::writer::reply_cost(&reply).min(self.shared.config.reply_queue_bytes) as u32;
        let Ok(budget) = self.reply_budget.clone().acquire_many_owned(cost).await else {
            return;
        };
        let _ = self
            .replies
            .send(crate::writer::QueuedReply { id, reply, budget })
            .await;
    }

    /// Handles one frame. An undecodable envelope closes the connection (framing can no
    /// longer be trusted to mean what the client meant); everything else is a reply.
    async fn handle_frame(&mut self, frame: Bytes) -> Result<(), String> {
        let message = decode_client_message(&frame).map_err(|e| e.to_string())?;
        match message {
            ClientMessage::Request {
                id,
                object,
                method,
                args,
            } => {
                if object == CONTROL_OBJECT {
                    let reply = crate::control::call(self, method, args);
                    self.answer(id, object, method, reply).await;
                    return Ok(());
                }
                if self.parked.contains_key(&id) {
                    // A client bug: two waiting calls under one id. Refused before the
                    // object runs it, so it changes nothing.
                    let why =
                        RemoteError::protocol_error(format!("request id {id} is already waiting"));
                    self.answer(id, object, method, Err(why)).await;
                    return Ok(());
                }
                let Some(target) = self.shared.table.get(object) else {
                    self.answer(id, object, method, Err(no_such_object(object)))
                        .await;
                    return Ok(());
                };
                let mut ctx = CallCtx::new(self.id);
                ctx.may_park = self.parked.len() < self.shared.config.max_parked_per_session;
                // A bug in one object must not take the session (and what it holds) down
                // without cleanup: a panic becomes an error reply and a log line.
                let call = std::panic::AssertUnwindSafe(|| target.call(method, args, &mut ctx));
                let outcome = std::panic::catch_unwind(call).unwrap_or_else(|_| {
                    error!(session = self.id, object, method, "object method panicked");
                    Outcome::Ready(Err(RemoteError::runtime_error(
                        "internal error in the node (logged there)",
                    )))
                });
                if ctx.holds_state {
                    self.holds
                        .entry(object)
                        .or_insert_with(|| Arc::downgrade(&target));
                    if self.holds.len() > self.prune_holds_at {
                        self.holds.retain(|_, o| o.strong_count() > 0);
                        self.prune_holds_at = (self.holds.len() * 2).max(64);
                    }
                }
                match outcome {
                    Outcome::Ready(reply) => self.answer(id, object, method, reply).await,
                    Outcome::Park(parked) => self.park(id, target, parked).await,
                }
            }
            ClientMessage::Cancel { id } => {
                let Some(call) = self.parked.get_mut(&id) else {
                    return Ok(()); // already answered and sent: the client handles it
                };
                match call.object.withdraw(call.waiter, Withdraw::Cancelled) {
                    Withdrawn::Answer(reply) => {
                        self.parked.remove(&id);
                        self.reply(id, reply).await;
                    }
                    Withdrawn::AlreadyAnswered | Withdrawn::StillWaiting => call.cancelled = true,
                }
            }
            ClientMessage::Release { object } => self.release(object),
        }
        Ok(())
    }

    /// Sends an immediate answer (errors are logged at debug level: they are the
    /// client's business, not the operator's).
    async fn answer(&mut self, id: u64, object: ObjectId, method: &str, reply: Reply) {
        if let Err(e) = &reply {
            debug!(session = self.id, object, method, "error reply: {e}");
        }
        self.reply(id, reply).await
    }

    async fn park(&mut self, id: u64, target: Arc<dyn SharedObject>, parked: Parked) {
        self.parked.insert(
            id,
            ParkedCall {
                object: target,
                waiter: parked.waiter,
                purpose: parked.purpose,
                cancelled: false,
            },
        );
        self.park_futures
            .push(Box::pin(wait_parked(id, parked.reply, parked.deadline)));
    }

    async fn finish_parked(&mut self, id: u64, end: ParkEnd) {
        match end {
            ParkEnd::Answered(reply) => self.deliver(id, reply).await,
            ParkEnd::TimedOut(mut rx) => {
                let Some(call) = self.parked.get(&id) else {
                    return;
                };
                match call.object.withdraw(call.waiter, Withdraw::Timeout) {
                    Withdrawn::Answer(reply) => {
                        self.parked.remove(&id);
                        self.reply(id, reply).await;
                    }
                    // Answered just before the deadline: the answer is in the channel.
                    Withdrawn::AlreadyAnswered => match rx.try_recv() {
                        Ok(reply) => self.deliver(id, reply).await,
                        Err(_) => self.finish_dropped(id).await,
                    },
                    Withdrawn::StillWaiting => {
                        self.park_futures.push(Box::pin(wait_parked(id, rx, None)));
                    }
                }
            }
            ParkEnd::Dropped => self.finish_dropped(id).await,
        }
    }

    /// An answer came for a parked call: send it, or give it back if the call was
    /// cancelled meanwhile.
    async fn deliver(&mut self, id: u64, reply: Reply) {
        match self.parked.remove(&id) {
            Some(call) if call.cancelled => {
                call.object.undelivered(call.purpose, self.id, reply);
                self.reply(id, Err(cancelled())).await;
            }
            _ => self.reply(id, reply).await,
        }
    }

    /// The object dropped a waiter without answering it.
    async fn finish_dropped(&mut self, id: u64) {
        let reply = match self.parked.remove(&id) {
            None => return,
            Some(call) if call.cancelled => Err(cancelled()),
            Some(_) => Err(RemoteError::not_found(
                "the object was freed while the call waited",
            )),
        };
        self.reply(id, reply).await;
    }

    /// Drops one of this session's references to an anonymous object.
    pub(crate) fn release(&mut self, object: ObjectId) {
        match self.refs.get_mut(&object) {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0 {
                    self.refs.remove(&object);
                }
                self.shared.table.decref(object);
            }
            _ => debug!(
                session = self.id,
                object, "release of a reference this session does not hold"
            ),
        }
    }

    pub(crate) fn add_ref(&mut self, object: ObjectId) {
        let n = self.refs.entry(object).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Ends the session: withdraw parked calls (giving back anything already handed to
    /// them but not yet sent), release held state, drop references.
    async fn end(&mut self, why: Withdraw) {
        let mut answered = HashMap::new();
        let mut replies = Vec::new();
        for (id, call) in self.parked.drain() {
            match call.object.withdraw(call.waiter, why) {
                // On shutdown the client is still there to hear `ShuttingDown`.
                Withdrawn::Answer(reply) => replies.push((id, reply)),
                _ => {
                    answered.insert(id, call);
                }
            }
        }
        if why == Withdraw::Shutdown {
            for (id, reply) in replies {
                self.reply(id, reply).await;
            }
        }
        // Every parked future is ready now (answered, or its sender dropped); polled
        // outside tokio's cooperative budget so none looks pending for budget reasons.
        while let Some(Some((id, end))) =
            tokio::task::unconstrained(self.park_futures.next()).now_or_never()
        {
            let reply = match end {
                ParkEnd::Answered(reply) => reply,
                ParkEnd::TimedOut(mut rx) => match rx.try_recv() {
                    Ok(reply) => reply,
                    Err(_) => continue,
                },
                ParkEnd::Dropped => continue,
            };
            if let Some(call) = answered.remove(&id) {
                call.object.undelivered(call.purpose, self.id, reply);
            }
        }
        self.park_futures = FuturesUnordered::new();
        if self.shared.config.release_on_disconnect {
            for (_, object) in self.holds.drain() {
                if let Some(object) = object.upgrade() {
                    object.session_ended(self.id);
                }
            }
        }
        for (object, n) in std::mem::take(&mut self.refs) {
            for _ in 0..n {
                self.shared.table.decref(object);
            }
        }
    }
}

fn cancelled() -> RemoteError {
    RemoteError::new(ErrorKind::Cancelled, "the call was cancelled by its caller")
}

async fn wait_parked(
    id: u64,
    mut rx: oneshot::Receiver<Reply>,
    deadline: Option<Instant>,
) -> (u64, ParkEnd) {
    let end = match deadline {
        None => match (&mut rx).await {
            Ok(reply) => ParkEnd::Answered(reply),
            Err(_) => ParkEnd::Dropped,
        },
        Some(deadline) => tokio::select! {
            r = &mut rx => match r {
                Ok(reply) => ParkEnd::Answered(reply),
                Err(_) => ParkEnd::Dropped,
            },
            _ = tokio::time::sleep_until(deadline) => ParkEnd::TimedOut(rx),
        },
    };
    (id, end)
}

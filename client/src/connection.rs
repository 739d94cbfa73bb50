//! One multiplexed connection: a writer task (which callers skip when it is idle, see
//! `outgoing.rs`), a reader task routing replies by id, and a table of calls in flight. Proxies call [`Connection::call`] directly; it encodes the
//! request, waits for the reply and decodes it, in one place.
//!
//! # Cancellation
//! A call's future registers itself before its request is sent; if it is dropped before the
//! reply arrives, it removes itself and sends `Cancel` so the node withdraws a parked wait
//! (a queue get or lock acquire) instead of handing an item or permit to nobody. A call
//! that may be granted something carries an [`Undo`]: if the grant raced the drop, the
//! client gives it back.
//!
//! # Drop behaviour
//! When the last `Manager` clone and proxy is dropped, the writer closes the socket's write
//! side; the node ends the session and frees what it held for it.

use std::collections::HashMap;
use std::future::poll_fn;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use syncman_protocol::frame::{FrameBuilder, FrameError, Received, SkippingFrameCodec};
use syncman_protocol::handshake::HandshakeError;
use syncman_protocol::message::{self, decode_response, peek_response_id, FORGET_ID, HELLO_ID};
use syncman_protocol::opening::{open_native, OpenError, Opened};
use syncman_protocol::value::split_array;
use syncman_protocol::{FrameCodec, RemoteError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::codec::{Framed, FramedRead};
use tokio_util::sync::CancellationToken;

use crate::address::NodeAddr;
use crate::error::{Error, Result};
use crate::outgoing::{outgoing, Outgoing, WeakOutgoing, WriteHalf};
use crate::tls::{classify, tls_connect_error, TlsOptions};

/// Connection settings; each field says its default.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Largest frame sent or accepted. Default 64 MiB (the node's default too).
    pub max_frame: usize,
    /// Time allowed for TCP connect plus handshake. Default 10 s.
    pub connect_timeout: Duration,
    /// The heartbeat deadline asked of the node: the client sends a heartbeat whenever it
    /// has sent nothing for a third of it, and the node ends the session (releasing its
    /// locks, permits and parked calls) once it has heard nothing for all of it. This is
    /// what frees a lock held by a stopped or wedged process, which TCP alone never
    /// notices. The node keeps it within its bounds (1 s to 300 s by default). `None`: no
    /// heartbeat; the session lasts as long as the connection. Default 10 s.
    pub heartbeat_ttl: Option<Duration>,
    /// Bytes of requests queued for the socket at most: past it, calls wait for room
    /// (back-pressure) instead of queueing without limit while the node or the network is
    /// slower than the program. Calls get room in the order they ask for it. Default
    /// 64 MiB; at most 4 GiB.
    pub max_outgoing_bytes: usize,
    /// Speak TLS to the node (its `--tls-bind` port): whom to trust, the name to expect,
    /// a client certificate for mutual TLS. `None`: plain TCP. Default `None`.
    pub tls: Option<TlsOptions>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_frame: syncman_protocol::DEFAULT_MAX_FRAME,
            connect_timeout: Duration::from_secs(10),
            heartbeat_ttl: Some(Duration::from_secs(10)),
            max_outgoing_bytes: 64 * 1024 * 1024,
            tls: None,
        }
    }
}

type Reply = Result<Bytes>;

/// What to do with an answer its caller never took (it dropped the call first, or the
/// answer could not be decoded into the caller's type): give back what the node handed out
/// (an item, a lock grant, a unit) with a fire-and-forget call.
#[derive(Debug, Clone)]
pub(crate) struct Undo {
    object: u64,
    method: &'static str,
    args: UndoArgs,
    /// A `false` or nil answer granted nothing (a failed try-acquire): no undo. Off for
    /// items, where `false` and nil are items like any other.
    ignore_falsy: bool,
}

/// The arguments of an undo call, built around the late answer.
#[derive(Debug, Clone)]
enum UndoArgs {
    /// None (`release` a unit or a Condition's lock).
    None,
    /// The answer (`unget(item)`, `append(item)`, `release_fenced(token)`).
    Answer,
    /// An encoded argument, then the answer (`insert(index, item)`, `setdefault(key, value)`).
    AfterArg(Bytes),
    /// The answer is an array of the arguments (`popitem`'s `[key, value]` for
    /// `setdefault(key, value)`).
    Spread,
    /// One element of an array answer (the token in a Condition wait's `[notified, token]`).
    Element(usize),
}

impl Undo {
    /// `method(item)`: an item taken out goes back.
    pub(crate) fn give_back(object: u64, method: &'static str) -> Undo {
        Undo {
            object,
            method,
            args: UndoArgs::Answer,
            ignore_falsy: false,
        }
    }

    /// `method(first, item)`: an item goes back with the argument it was taken by
    /// (`insert(index, item)`, `setdefault(key, value)`).
    pub(crate) fn give_back_with<T: Serialize + ?Sized>(
        object: u64,
        method: &'static str,
        first: &T,
    ) -> Result<Undo> {
        let first = rmp_serde::to_vec_named(first).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(Undo {
            object,
            method,
            args: UndoArgs::AfterArg(first.into()),
            ignore_falsy: false,
        })
    }

    /// `method(key, value)` from a `[key, value]` answer (`popitem` given back with
    /// `setdefault`).
    pub(crate) fn give_back_pair(object: u64, method: &'static str) -> Undo {
        Undo {
            object,
            method,
            args: UndoArgs::Spread,
            ignore_falsy: false,
        }
    }

    /// Releases a grant named by element `index` of an array answer:
    /// `method(answer[index])` (a Condition wait's re-grant, `[notified, token]`).
    pub(crate) fn release_element(object: u64, method: &'static str, index: usize) -> Undo {
        Undo {
            object,
            method,
            args: UndoArgs::Element(index),
            ignore_falsy: true,
        }
    }

    /// Releases a grant: `method(token)` with the answer, or `method()`; a `None` or
    /// `False` answer granted nothing.
    pub(crate) fn release(object: u64, method: &'static str, pass_answer: bool) -> Undo {
        Undo {
            object,
            method,
            args: if pass_answer {
                UndoArgs::Answer
            } else {
                UndoArgs::None
            },
            ignore_falsy: true,
        }
    }
}

/// A call in flight, in the table the callers and the reader share. The answer is left
/// in the table for its caller to take, instead of being sent over a channel of its own:
/// that saved an allocation and three atomic hand-offs per call.
enum Slot {
    /// A caller awaits the answer; the reader wakes it when the answer is in.
    Waiting(Waker),
    /// The answer, for the caller to take. A caller that drops its call first finds it
    /// here and gives back what it granted (its undo).
    Answered(Reply),
    /// The caller is gone; on an `Ok` answer, run this.
    Abandoned(Undo),
}

/// Hashes call ids, which this client counts up from 1: one multiply spreads them over
/// every bit of the hash. (The default, SipHash, guards against keys chosen by an
/// attacker, which these are not, at several times the cost.)
#[derive(Default)]
struct CallIdHasher(u64);

impl Hasher for CallIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Calls in flight, shared by the callers and the reader task.
#[derive(Default)]
struct Pending {
    calls: Mutex<PendingCalls>,
}

#[derive(Default)]
struct PendingCalls {
    waiting: HashMap<u64, Slot, BuildHasherDefault<CallIdHasher>>,
    closed: bool,
    /// Why the node ended the session, if it said (an expired heartbeat deadline).
    ended_by_node: Option<RemoteError>,
    /// Answers left for their callers since a call last set out. More than one means a
    /// burst came back, and its callers may all be about to call again: a call that finds
    /// the table empty is then not alone (one task awaiting a round of calls together
    /// takes every answer before it makes the next round's first call).
    answered_since_a_call: u32,
}

impl PendingCalls {
    /// The error for calls on a closed connection.
    fn closed_error(&self) -> Error {
        match &self.ended_by_node {
            Some(why) => Error::from(why.clone()),
            None => Error::Disconnected,
        }
    }
}

impl PendingCalls {
    /// Calls whose caller gave up and whose answer must still be given back.
    fn has_abandoned(&self) -> bool {
        self.waiting
            .values()
            .any(|s| matches!(s, Slot::Abandoned(_)))
    }

    /// Takes a call's slot out of the table.
    fn take(&mut self, id: u64) -> Option<Slot> {
        self.waiting.remove(&id)
    }

    /// Leaves `result` for the caller of `id`: its waker to wake, or, when the caller is
    /// gone, what to give back.
    fn answer(&mut self, id: u64, result: Reply) -> Routed {
        let Some(slot) = self.waiting.get_mut(&id) else {
            return Routed::Nobody;
        };
        match slot {
            Slot::Waiting(_) => {
                self.answered_since_a_call = self.answered_since_a_call.saturating_add(1);
                match std::mem::replace(slot, Slot::Answered(result)) {
                    Slot::Waiting(waker) => Routed::Wake(waker),
                    // Just matched as waiting.
                    _ => Routed::Nobody,
                }
            }
            Slot::Abandoned(_) => match self.waiting.remove(&id) {
                Some(Slot::Abandoned(undo)) => Routed::GiveBack(undo, result),
                _ => Routed::Nobody,
            },
            // A second answer for one call: the node's bug; the first stands.
            Slot::Answered(_) => Routed::Nobody,
        }
    }
}

/// Where an answer went ([`PendingCalls::answer`]); acted on once the table is unlocked.
enum Routed {
    Wake(Waker),
    GiveBack(Undo, Reply),
    Nobody,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingCalls> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails every call in flight and refuses new ones, with the node's reason if it gave
    /// one.
    fn close(&self, ended_by_node: Option<RemoteError>) {
        let mut wakers = Vec::new();
        {
            let mut calls = self.lock();
            calls.closed = true;
            if calls.ended_by_node.is_none() {
                calls.ended_by_node = ended_by_node;
            }
            let error = calls.closed_error();
            calls.waiting.retain(|_, slot| match slot {
                Slot::Waiting(_) => {
                    if let Slot::Waiting(waker) =
                        std::mem::replace(slot, Slot::Answered(Err(clone_error(&error))))
                    {
                        wakers.push(waker);
                    }
                    true
                }
                Slot::Answered(_) => true,
                // Nothing will answer them now: nothing to give back.
                Slot::Abandoned(_) => false,
            });
        }
        // Woken outside the lock: a woken caller takes it at once.
        for waker in wakers {
            waker.wake();
        }
    }
}

/// A copy of a connection-ending error, for each call it fails.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::Remote { kind, message } => Error::Remote {
            kind: kind.clone(),
            message: message.clone(),
        },
        _ => Error::Disconnected,
    }
}

/// One request frame: `[0, id, object, method, args]`, with the arguments written by
/// `write_args` as one array.
fn request_frame(
    id: u64,
    object: u64,
    method: &str,
    max_frame: usize,
    write_args: impl FnOnce(&mut FrameBuilder) -> Result<()>,
) -> Result<BytesMut> {
    let mut frame = FrameBuilder::default();
    message::encode_request_head(&mut frame, id, object, method);
    write_args(&mut frame)?;
    frame.finish_mut(max_frame).map_err(|e| match e {
        FrameError::TooLarge { len, max } => Error::FrameTooLarge { len, max },
        other => Error::Protocol(other.to_string()),
    })
}

/// Writes serde arguments: a tuple (an array), or `()` for none. Structs become maps, so
/// other languages see field names.
fn serde_args<A: Serialize + ?Sized>(
    args: &A,
) -> impl FnOnce(&mut FrameBuilder) -> Result<()> + '_ {
    move |frame| {
        let start = frame.payload_len();
        rmp_serde::encode::write_named(&mut frame.writer(), args)
            .map_err(|e| Error::Encode(e.to_string()))?;
        match frame.payload()[start..].first() {
            Some(0x90..=0x9f | 0xdc | 0xdd) => Ok(()),
            // `()` encodes as nil: no arguments.
            Some(0xc0) => {
                frame.truncate_payload(start);
                message::encode_args_len(frame, 0);
                Ok(())
            }
            _ => Err(Error::Encode("arguments must be a tuple".into())),
        }
    }
}

/// Sends an undo for an answer nobody took. A `false`/nil answer granted nothing; an error
/// handed out nothing.
fn run_undo(out: &Outgoing, max_frame: usize, undo: &Undo, result: Reply) {
    let Ok(value) = result else { return };
    if undo.ignore_falsy && matches!(&value[..], [0xc2] | [0xc0]) {
        return;
    }
    let frame = request_frame(FORGET_ID, undo.object, undo.method, max_frame, |f| {
        match &undo.args {
            UndoArgs::None => message::encode_args_len(f, 0),
            UndoArgs::Answer => {
                message::encode_args_len(f, 1);
                f.put_slice(&value);
            }
            UndoArgs::AfterArg(first) => {
                message::encode_args_len(f, 2);
                f.put_slice(first);
                f.put_slice(&value);
            }
            UndoArgs::Spread => f.put_slice(&value),
            UndoArgs::Element(i) => {
                let Ok(Some(items)) = split_array(&value) else {
                    return Err(Error::Protocol("an undo expected an array answer".into()));
                };
                let Some(item) = items.get(*i) else {
                    return Err(Error::Protocol("an undo's answer is too short".into()));
                };
                message::encode_args_len(f, 1);
                f.put_slice(item);
            }
        }
        Ok(())
    });
    if let Ok(frame) = frame {
        let _ = out.send_now(frame);
    }
}

/// Decodes a result into the caller's type.
///
/// Values written by Python clients may hold tuples, sets and bytearrays, which the node
/// stores as extension types serde does not know: when decoding fails, they are rewritten
/// as plain arrays and bytes and decoding is tried once more (only then, so the common case
/// costs nothing).
fn decode<R: DeserializeOwned>(bytes: &[u8]) -> Result<R> {
    rmp_serde::from_slice(bytes).or_else(|first| {
        let plain = syncman_protocol::value::decode(bytes)
            .ok()
            .and_then(|v| v.without_python_types())
            .ok_or_else(|| Error::Decode(first.to_string()))?;
        rmp_serde::from_slice(&plain.to_bytes()).map_err(|_| Error::Decode(first.to_string()))
    })
}

pub(crate) struct Connection {
    outgoing: Outgoing,
    pending: Arc<Pending>,
    next_id: AtomicU64,
    /// The largest request sent: the client's own limit and the node's, the smaller.
    max_frame: usize,
    /// Cancelled when this, the last handle, is dropped.
    closing: CancellationToken,
    /// Cancelled when the writer has closed the socket.
    closed: CancellationToken,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.closing.cancel();
    }
}

/// The handshake and hello on a fresh stream. `tls`: the server name, when the stream
/// is TLS (a TLS failure surfaces here too: with mutual TLS, the node's refusal of this
/// client's certificate arrives as the first read).
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    authkey: &[u8],
    opts: &ConnectOptions,
    tls: Option<&ServerName<'_>>,
) -> Result<(Framed<S, FrameCodec>, Opened)> {
    let mut framed = Framed::new(stream, FrameCodec::handshake());
    match open_native(&mut framed, authkey, opts.max_frame, opts.heartbeat_ttl).await {
        Ok(opened) => Ok((framed, opened)),
        Err(e) => Err(open_error(e, tls)),
    }
}

fn open_error(e: OpenError, tls: Option<&ServerName<'_>>) -> Error {
    let io = match &e {
        OpenError::Handshake(HandshakeError::Frame(FrameError::Io(io)))
        | OpenError::Frame(FrameError::Io(io)) => Some(io),
        _ => None,
    };
    if let Some(tls) = tls.zip(io).and_then(|(name, io)| classify(io, name)) {
        return Error::Tls(tls);
    }
    match e {
        e if e.is_auth_failure() => Error::Auth(e.to_string()),
        OpenError::Handshake(HandshakeError::Refused(why)) => Error::Refused(why),
        e => Error::Handshake(e.to_string()),
    }
}

/// How long a connection whose handles are all gone stays open for the answers of calls
/// its callers abandoned, so that what they were given is given back.
const LINGER: Duration = Duration::from_secs(5);

/// The reader task: routes replies by id; runs undos for answers nobody takes; after the
/// last handle is gone, lingers until no abandoned call is left.
async fn read_replies<R: AsyncRead + Unpin>(
    mut reader: FramedRead<R, SkippingFrameCodec>,
    routes: Arc<Pending>,
    out: Outgoing,
    max_frame: usize,
    closing: CancellationToken,
    lost: CancellationToken,
) {
    let reply_limit = reader.decoder().max_len();
    let mut ended_by_node = None;
    // Pinned once: made afresh on every turn, it would register and deregister a waiter
    // for each reply.
    let closed_by_caller = closing.cancelled();
    tokio::pin!(closed_by_caller);
    // Armed when the last handle goes.
    let linger = tokio::time::sleep(LINGER);
    tokio::pin!(linger);
    let mut caller_gone = false;
    loop {
        if caller_gone && !routes.lock().has_abandoned() {
            // A clean close: nothing more to give back. The writer sends what is queued.
            routes.close(None);
            return;
        }
        // Replies first: the other branches are polled only when none is waiting.
        let frame = tokio::select! {
            biased;
            frame = reader.next() => frame,
            // Woken when the last handle goes, to check for abandoned calls.
            _ = &mut closed_by_caller, if !caller_gone => {
                caller_gone = true;
                linger.as_mut().reset(tokio::time::Instant::now() + LINGER);
                continue;
            }
            _ = &mut linger, if caller_gone => {
                tracing::debug!("closing with abandoned calls unanswered");
                break;
            }
        };
        let (id, result) = match frame {
            Some(Ok(Received::Frame { frame, .. })) => match decode_response(frame.freeze()) {
                // Id 0 is the session's own: the node ends it and says why.
                Ok((HELLO_ID, Err(why))) => {
                    tracing::warn!("the node ended the session: {why}");
                    ended_by_node = Some(why);
                    break;
                }
                Ok((id, result)) => (id, result.map_err(Error::from)),
                Err(_) => {
                    tracing::warn!("undecodable reply from the node; closing the connection");
                    break;
                }
            },
            // A reply over this client's limit (a node that did not learn it) was skipped:
            // that call fails, the connection carries on.
            Some(Ok(Received::TooLarge { len, head })) => match peek_response_id(&head) {
                Some(id) => (
                    id,
                    Err(Error::FrameTooLarge {
                        len,
                        max: reply_limit,
                    }),
                ),
                None => {
                    tracing::warn!("an oversized frame from the node that is not a reply");
                    break;
                }
            },
            Some(Err(e)) => {
                tracing::warn!("closing the connection to the node: {e}");
                break;
            }
            None => break,
        };
        let routed = routes.lock().answer(id, result);
        match routed {
            Routed::Wake(caller) => caller.wake(),
            Routed::GiveBack(undo, result) => run_undo(&out, max_frame, &undo, result),
            Routed::Nobody => tracing::trace!(id, "reply for a call nobody awaits"),
        }
    }
    // The connection is lost (or gave up lingering): fail what is in flight, stop writing.
    routes.close(ended_by_node);
    lost.cancel();
}

impl Connection {
    pub(crate) async fn open<A: NodeAddr>(
        addr: A,
        authkey: &[u8],
        opts: &ConnectOptions,
    ) -> Result<Connection> {
        let tls = match &opts.tls {
            Some(tls) => Some(tls.connector(addr.host())?),
            None => None,
        };
        let setup = async {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            match tls {
                None => {
                    let (framed, opened) = authenticate(stream, authkey, opts, None).await?;
                    let parts = framed.into_parts();
                    let (rd, wr) = parts.io.into_split();
                    let wr = WriteHalf::Tcp(Arc::new(wr));
                    Ok(Connection::start(rd, wr, &parts.read_buf, opened, opts))
                }
                Some((connector, name)) => {
                    let stream = connector
                        .connect(name.clone(), stream)
                        .await
                        .map_err(|e| Error::Tls(tls_connect_error(e, &name)))?;
                    let (framed, opened) = authenticate(stream, authkey, opts, Some(&name)).await?;
                    let parts = framed.into_parts();
                    // One TLS session carries both directions: the halves share it.
                    let (rd, wr) = tokio::io::split(parts.io);
                    let wr = WriteHalf::Stream(Box::new(wr));
                    Ok(Connection::start(rd, wr, &parts.read_buf, opened, opts))
                }
            }
        };
        tokio::time::timeout(opts.connect_timeout, setup)
            .await
            .map_err(|_| Error::Timeout("connecting"))?
    }

    /// Starts the writer and reader tasks on an authenticated stream's halves;
    /// `read_buf` holds what the node already sent after its hello answer.
    fn start<R>(
        rd: R,
        wr: WriteHalf,
        read_buf: &[u8],
        opened: Opened,
        opts: &ConnectOptions,
    ) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        // Requests fit both limits: over either, the call fails here, before it is sent.
        let send_limit = opened.send_limit(opts.max_frame);

        // Each reply is decoded and dropped at once: it may share the read buffer.
        let mut codec = SkippingFrameCodec::new(opts.max_frame);
        codec.set_frames_share_the_buffer(true);
        let mut reader = FramedRead::new(rd, codec);
        reader.read_buffer_mut().extend_from_slice(read_buf);
        let pending = Arc::new(Pending::default());

        let (tx, rx) = outgoing(opts.max_outgoing_bytes, &wr);

        // Writer (`outgoing.rs`): writes what callers queued, coalesced. It stops when every
        // sender is gone (the handles and the reader), or when the reader has lost the
        // connection (`lost`); then it closes the socket and says so (`closed`).
        let lost = CancellationToken::new();
        let closed = CancellationToken::new();
        tokio::spawn({
            let (lost, closed) = (lost.clone(), closed.clone());
            async move {
                rx.write_until_closed(wr, lost).await;
                closed.cancel();
            }
        });
        if let Some(ttl) = opened.heartbeat_ttl {
            tokio::spawn(heartbeat(ttl, tx.downgrade(), lost.clone()));
        }

        // Reader: route each reply to the call waiting for it. Once every handle is gone
        // (`closing`), it stays until the answers of abandoned calls have come and been
        // given back (bounded by `LINGER`), then drops its sender so the writer can finish.
        let closing = CancellationToken::new();
        tokio::spawn(read_replies(
            reader,
            pending.clone(),
            tx.clone(),
            send_limit,
            closing.clone(),
            lost,
        ));

        Connection {
            outgoing: tx,
            pending,
            next_id: AtomicU64::new(1),
            max_frame: send_limit,
            closing,
            closed,
        }
    }

    /// Cancelled once the socket is closed, after the last handle is gone and the answers
    /// of abandoned calls have been given back.
    pub(crate) fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }

    /// Calls `method` on `object` with `args` (a tuple, or `()` for none) and decodes the
    /// result.
    pub(crate) async fn call<A, R>(&self, object: u64, method: &str, args: &A) -> Result<R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let answer = self
            .round_trip(object, method, serde_args(args), None)
            .await?;
        decode(&answer)
    }

    /// Like [`call`](Self::call), for a call that may be granted something: if the caller
    /// drops the future and the node's answer comes anyway (it won the race with `Cancel`),
    /// `undo` gives back what was granted.
    pub(crate) async fn call_undoable<A, R>(
        &self,
        object: u64,
        method: &str,
        args: &A,
        undo: Undo,
    ) -> Result<R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let answer = self
            .round_trip(object, method, serde_args(args), Some(undo.clone()))
            .await?;
        decode(&answer).inspect_err(|_| {
            // The caller cannot take what it was given: give it back.
            run_undo(&self.outgoing, self.max_frame, &undo, Ok(answer));
        })
    }

    /// Calls with arguments that are already encoded, one MessagePack value each.
    pub(crate) async fn call_encoded<R: DeserializeOwned>(
        &self,
        object: u64,
        method: &str,
        args: &[&[u8]],
    ) -> Result<R> {
        let write = |frame: &mut FrameBuilder| {
            message::encode_args_len(frame, args.len() as u32);
            for arg in args {
                frame.put_slice(arg);
            }
            Ok(())
        };
        let answer = self.round_trip(object, method, write, None).await?;
        decode(&answer)
    }

    /// Sends a request and waits for its reply, cancelling it if this future is dropped.
    async fn round_trip(
        &self,
        object: u64,
        method: &str,
        write_args: impl FnOnce(&mut FrameBuilder) -> Result<()>,
        undo: Option<Undo>,
    ) -> Result<Bytes> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = request_frame(id, object, method, self.max_frame, write_args)?;
        // Room first: a call dropped while it waits for room has sent and left nothing.
        let room = self
            .outgoing
            .reserve(frame.len())
            .await
            .map_err(|_| self.pending.lock().closed_error())?;
        // This task's waker, registered with the call so the reader can wake it.
        let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        let alone = {
            let mut calls = self.pending.lock();
            if calls.closed {
                return Err(calls.closed_error());
            }
            // Alone: no other call in flight, no answer left for a caller that is about
            // to take it (and, likely, to call again at once), and not the first call
            // after a burst of answers, whose callers may be calling again too.
            let alone = calls.waiting.is_empty() && calls.answered_since_a_call <= 1;
            calls.answered_since_a_call = 0;
            calls.waiting.insert(id, Slot::Waiting(waker));
            alone
        };
        // Armed before the request leaves, so a drop at any point after cancels it.
        let mut guard = CallGuard {
            conn: self,
            id,
            undo,
            armed: true,
        };
        // Alone, the call writes its request itself (no hand-off); otherwise it queues, so
        // requests made together leave in one write. Counting the answers not yet taken
        // matters: when a read brings every answer of a batch, the first caller to run
        // would otherwise find nothing in flight and write alone, and the batch would
        // leave in two writes (one CPU, 16 calls in flight: 0.139 sends per call against
        // 0.081, and 316k calls a second against 402k).
        if room.send(frame, alone).is_err() {
            guard.disarm();
            return Err(Error::Disconnected);
        }
        // The first look is skipped: the waker registered above is this very poll's, so an
        // answer that came meanwhile has already asked for this task to be polled again.
        let mut first = true;
        poll_fn(|cx| {
            if std::mem::take(&mut first) {
                return Poll::Pending;
            }
            guard.poll_answer(cx)
        })
        .await
    }

    /// Sends a call whose answer nobody awaits (releases from destructors).
    pub(crate) fn forget<A: Serialize + ?Sized>(&self, object: u64, method: &str, args: &A) {
        if let Ok(frame) =
            request_frame(FORGET_ID, object, method, self.max_frame, serde_args(args))
        {
            let _ = self.outgoing.send_now(frame);
        }
    }

    /// Drops one reference to an anonymous object (fire and forget).
    pub(crate) fn release(&self, object: u64) {
        let mut frame = FrameBuilder::default();
        message::encode_release(&mut frame, object);
        if let Ok(frame) = frame.finish_mut(self.max_frame) {
            let _ = self.outgoing.send_now(frame);
        }
    }

    fn send_cancel(&self, id: u64) {
        let mut frame = FrameBuilder::default();
        message::encode_cancel(&mut frame, id);
        if let Ok(frame) = frame.finish_mut(self.max_frame) {
            let _ = self.outgoing.send_now(frame);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.pending.lock().closed || self.outgoing.is_closed()
    }

    /// Bytes of requests queued and not yet written to the socket.
    pub(crate) fn outgoing_bytes(&self) -> usize {
        self.outgoing.queued_bytes()
    }
}

/// The client's side of the heartbeat: whenever a third of the deadline passes with
/// nothing written (two beats may be lost or late), queues a heartbeat. A timer task of its
/// own, so the writer's loop carries no timer; it holds only a weak sender, so it never
/// keeps the connection open, and it stops once the writer can take no more.
async fn heartbeat(ttl: Duration, out: WeakOutgoing, lost: CancellationToken) {
    let period = (ttl / 3).max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut frame = FrameBuilder::default();
    message::encode_heartbeat(&mut frame);
    // Two bytes: within any limit.
    let Ok(frame) = frame.finish_mut(usize::MAX) else {
        return;
    };
    let mut writes_at_last_tick = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = lost.cancelled() => return,
        }
        let writes = out.writes();
        if writes != writes_at_last_tick {
            writes_at_last_tick = writes;
            continue;
        }
        match out.upgrade() {
            // The beat's own write is not a sign of other traffic.
            Some(out) if out.send_now(frame.clone()).is_ok() => writes_at_last_tick = writes + 1,
            _ => return,
        }
    }
}

/// Takes the call's answer, and cancels the call if its future is dropped first.
///
/// Two cases on drop, decided under the table's lock, so the reader cannot cross them:
/// the answer has not come (the slot is still waiting): mark it abandoned (with its undo)
/// and send `Cancel`, and the reader gives back what the answer grants; the answer came
/// but was never taken: give it back now.
struct CallGuard<'a> {
    conn: &'a Connection,
    id: u64,
    undo: Option<Undo>,
    /// The call's slot is in the table.
    armed: bool,
}

impl CallGuard<'_> {
    fn disarm(&mut self) {
        self.conn.pending.lock().take(self.id);
        self.armed = false;
    }

    /// The answer, once the reader has left it; until then, keeps the caller's waker.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Result<Bytes>> {
        let mut calls = self.conn.pending.lock();
        match calls.waiting.get_mut(&self.id) {
            Some(Slot::Waiting(waker)) => {
                // Moved to another task (or runtime) since: wake that one instead.
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                Poll::Pending
            }
            Some(Slot::Answered(_)) => {
                let taken = calls.take(self.id);
                drop(calls);
                self.armed = false;
                match taken {
                    Some(Slot::Answered(reply)) => Poll::Ready(reply),
                    _ => Poll::Ready(Err(Error::Disconnected)),
                }
            }
            // Not reached: only this guard abandons or takes its slot.
            Some(Slot::Abandoned(_)) | None => {
                self.armed = false;
                Poll::Ready(Err(Error::Disconnected))
            }
        }
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let unanswered = {
            let mut calls = self.conn.pending.lock();
            match calls.take(self.id) {
                Some(Slot::Waiting(_)) => {
                    if let Some(undo) = self.undo.take() {
                        calls.waiting.insert(self.id, Slot::Abandoned(undo));
                    }
                    None
                }
                answered => Some(answered),
            }
        };
        match unanswered {
            None => self.conn.send_cancel(self.id),
            Some(Some(Slot::Answered(reply))) => {
                if let Some(undo) = &self.undo {
                    run_undo(&self.conn.outgoing, self.conn.max_frame, undo, reply);
                }
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncman_protocol::message::{decode_client_message, encode_response, ClientMessage};
    use syncman_protocol::FrameCodec;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;
    use tokio_util::codec::Encoder;

    /// The ids of the next `n` requests the fake node reads.
    async fn read_requests<R: AsyncRead + Unpin>(
        node: &mut FramedRead<R, FrameCodec>,
        n: usize,
    ) -> Vec<u64> {
        let mut ids = Vec::new();
        while ids.len() < n {
            let frame = node.next().await.expect("a request").expect("a frame");
            match decode_client_message(&frame.freeze(), 0) {
                Ok(ClientMessage::Request { id, .. }) => ids.push(id),
                other => panic!("expected a request, got {other:?}"),
            }
        }
        ids
    }

    /// One framed answer, the integer 7, to each of `ids`, back to back.
    fn answers_of_seven(ids: &[u64]) -> BytesMut {
        let mut answers = BytesMut::new();
        for id in ids {
            let mut payload = BytesMut::new();
            encode_response(&mut payload, *id, &Ok(Bytes::from_static(&[7])));
            FrameCodec::new(1 << 20)
                .encode(&payload[..], &mut answers)
                .unwrap();
        }
        answers
    }

    /// When one read brings the answers of several calls, the calls their callers make
    /// next leave together, in one write: the first of them to run must not take the
    /// connection for idle and write alone while the others' answers wait to be taken.
    #[tokio::test]
    async fn calls_made_on_answers_that_came_together_leave_in_one_write() {
        answered_together_then_called_again(Callers::TaskEach).await;
    }

    /// The same on a multi-thread runtime, whose workers run a task just woken by the
    /// running one next: the writer, woken by the first follow-up call, must let the other
    /// callers queue theirs before it writes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn calls_made_on_answers_that_came_together_leave_in_one_write_on_a_worker() {
        answered_together_then_called_again(Callers::TaskEach).await;
    }

    /// The same when one task makes the calls, a round at a time: it takes every answer of
    /// a round before it makes the next round's first call, which finds nothing in flight
    /// and must still not write alone.
    #[tokio::test]
    async fn a_round_of_calls_made_by_one_task_leaves_in_one_write() {
        answered_together_then_called_again(Callers::OneTask).await;
    }

    /// Who makes the calls of [`answered_together_then_called_again`].
    enum Callers {
        /// A task for each call, calling again as soon as its answer is in.
        TaskEach,
        /// One task, awaiting each round's calls together.
        OneTask,
    }

    async fn answered_together_then_called_again(callers: Callers) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (node, _) = listener.accept().await.unwrap();
        let (rd, wr) = client.into_split();
        let opened = Opened {
            node_max_frame: None,
            heartbeat_ttl: None,
        };
        let conn = Arc::new(Connection::start(
            rd,
            WriteHalf::Tcp(Arc::new(wr)),
            &[],
            opened,
            &ConnectOptions::default(),
        ));
        const CALLERS: usize = 4;
        let callers: Vec<_> = match callers {
            Callers::TaskEach => (0..CALLERS)
                .map(|_| {
                    let conn = conn.clone();
                    tokio::spawn(async move {
                        for _ in 0..2 {
                            let answer: u64 = conn.call_encoded(1, "m", &[]).await.unwrap();
                            assert_eq!(answer, 7);
                        }
                    })
                })
                .collect(),
            Callers::OneTask => {
                let conn = conn.clone();
                vec![tokio::spawn(async move {
                    for _ in 0..2 {
                        let round = (0..CALLERS).map(|_| conn.call_encoded::<u64>(1, "m", &[]));
                        for answer in futures_util::future::join_all(round).await {
                            assert_eq!(answer.unwrap(), 7);
                        }
                    }
                })]
            }
        };
        let (node_rd, mut node_wr) = node.into_split();
        let mut node_rd = FramedRead::new(node_rd, FrameCodec::new(1 << 20));
        // Every answer of the first round in one write, so one read brings them all.
        let first = read_requests(&mut node_rd, CALLERS).await;
        let writes_before = conn.outgoing.downgrade().writes();
        node_wr.write_all(&answers_of_seven(&first)).await.unwrap();
        let second = read_requests(&mut node_rd, CALLERS).await;
        assert_eq!(
            conn.outgoing.downgrade().writes() - writes_before,
            1,
            "the second round's requests left in more than one write"
        );
        node_wr.write_all(&answers_of_seven(&second)).await.unwrap();
        for caller in callers {
            caller.await.unwrap();
        }
    }
}

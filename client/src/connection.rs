//! One multiplexed connection: a writer task, a reader task routing replies by id, and a
//! table of calls in flight.
//!
//! # Cancellation
//! A call's future registers itself before its request is sent; if it is dropped before the
//! reply arrives, it removes itself and sends `Cancel` so the node withdraws a parked wait
//! (a queue get or lock acquire) instead of handing an item or permit to nobody.
//!
//! # Drop behaviour
//! When the last `Manager` clone and proxy is dropped, the writer closes the socket's write
//! side; the node ends the session and frees what it held for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use syncman_protocol::frame::{encode_frame_with, FrameError};
use syncman_protocol::handshake::client_handshake;
use syncman_protocol::message::{self, decode_response, HELLO_ID, NATIVE_VERSION};
use syncman_protocol::FrameCodec;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{Framed, FramedRead};

use crate::error::{Error, Result};

/// Connection settings; each field says its default.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Largest frame sent or accepted. Default 64 MiB (the node's default too).
    pub max_frame: usize,
    /// Time allowed for TCP connect plus handshake. Default 10 s.
    pub connect_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_frame: syncman_protocol::DEFAULT_MAX_FRAME,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

type Reply = Result<Bytes>;

/// What to do with an answer that arrives after its caller gave up: give back what the node
/// handed out (an item, a lock grant, a permit) with a fire-and-forget call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Undo {
    pub object: u64,
    pub method: &'static str,
    /// Pass the late result as the call's one argument (a queue item, a fencing token).
    pub pass_result: bool,
    /// A `false` or nil answer granted nothing (a failed try-acquire): no undo. Off for
    /// queue items, where `false` and nil are items like any other.
    pub ignore_falsy: bool,
}

enum Slot {
    /// A caller awaits the answer; if it turns out to be gone when the answer is sent,
    /// the undo (if any) runs instead.
    Waiting(oneshot::Sender<Reply>, Option<Undo>),
    /// The caller is gone; on an `Ok` answer, run this.
    Abandoned(Undo),
}

/// Calls in flight, shared by the callers and the reader task.
#[derive(Default)]
struct Pending {
    calls: Mutex<PendingCalls>,
}

#[derive(Default)]
struct PendingCalls {
    waiting: HashMap<u64, Slot>,
    closed: bool,
}

/// Sends an undo for a late answer. A `false`/nil answer granted nothing.
fn run_undo(out: &mpsc::UnboundedSender<Bytes>, max_frame: usize, undo: Undo, result: Reply) {
    let Ok(value) = result else { return };
    if undo.ignore_falsy && matches!(&value[..], [0xc2] | [0xc0]) {
        return;
    }
    let mut buf = BytesMut::new();
    let encoded = encode_frame_with(&mut buf, max_frame, |b| {
        message::encode_request_head(b, message::FORGET_ID, undo.object, undo.method);
        message::encode_args_len(b, undo.pass_result as u32);
        if undo.pass_result {
            b.put_slice(&value);
        }
    });
    if encoded.is_ok() {
        let _ = out.send(buf.freeze());
    }
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingCalls> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails every call in flight and refuses new ones.
    fn close(&self) {
        let waiting = {
            let mut calls = self.lock();
            calls.closed = true;
            std::mem::take(&mut calls.waiting)
        };
        for (_, slot) in waiting {
            if let Slot::Waiting(tx, _) = slot {
                let _ = tx.send(Err(Error::Disconnected));
            }
        }
    }
}

pub(crate) struct Connection {
    outgoing: mpsc::UnboundedSender<Bytes>,
    pending: Arc<Pending>,
    next_id: AtomicU64,
    max_frame: usize,
}

impl Connection {
    pub(crate) async fn open<A: ToSocketAddrs>(
        addr: A,
        authkey: &[u8],
        opts: &ConnectOptions,
    ) -> Result<Connection> {
        let setup = async {
            let stream = TcpStream::connect(addr).await?;
            let _ = stream.set_nodelay(true);
            let mut framed = Framed::new(stream, FrameCodec::handshake());
            client_handshake(&mut framed, authkey).await.map_err(|e| {
                if e.is_auth_failure() {
                    Error::Auth(e.to_string())
                } else {
                    Error::Handshake(e.to_string())
                }
            })?;
            framed.codec_mut().set_max_len(opts.max_frame);
            let mut hello = BytesMut::new();
            message::encode_hello(&mut hello);
            framed
                .send(hello.freeze())
                .await
                .map_err(|e| Error::Handshake(e.to_string()))?;
            let answer = match framed.next().await {
                Some(Ok(frame)) => frame.freeze(),
                Some(Err(e)) => return Err(Error::Handshake(e.to_string())),
                None => {
                    return Err(Error::Handshake(
                        "the node closed the connection after authentication".into(),
                    ))
                }
            };
            match decode_response(answer) {
                Ok((HELLO_ID, Ok(_))) => Ok(framed),
                Ok((_, Err(e))) => Err(Error::Handshake(e.to_string())),
                _ => Err(Error::Handshake(format!(
                    "unexpected hello answer (this client speaks version {NATIVE_VERSION})"
                ))),
            }
        };
        let framed = tokio::time::timeout(opts.connect_timeout, setup)
            .await
            .map_err(|_| Error::Timeout("connecting"))??;

        let parts = framed.into_parts();
        let (rd, mut wr) = parts.io.into_split();
        let mut reader = FramedRead::new(rd, parts.codec);
        reader.read_buffer_mut().extend_from_slice(&parts.read_buf);
        let pending = Arc::new(Pending::default());
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();

        // Writer: coalesce whatever requests are queued into one write. It stops when every
        // handle is gone, or when the reader has lost the connection (`reader_gone`).
        let reader_gone = tokio_util::sync::CancellationToken::new();
        let writer_stop = reader_gone.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            loop {
                let first = tokio::select! {
                    _ = writer_stop.cancelled() => break,
                    next = rx.recv() => match next {
                        Some(first) => first,
                        None => break,
                    },
                };
                buf.put_slice(&first);
                while buf.len() < 64 * 1024 {
                    match rx.try_recv() {
                        Ok(more) => buf.put_slice(&more),
                        Err(_) => break,
                    }
                }
                if wr.write_all_buf(&mut buf).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });

        // Reader: route each reply to the call waiting for it. It holds only a weak sender
        // (for undo calls), so the connection still closes when the last handle goes.
        let routes = pending.clone();
        let undo_out = tx.downgrade();
        let max_frame = opts.max_frame;
        tokio::spawn(async move {
            while let Some(frame) = reader.next().await {
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(e) => {
                        // e.g. a reply over this client's `max_frame`: framing is lost.
                        tracing::warn!("closing the connection to the node: {e}");
                        break;
                    }
                };
                let Ok((id, result)) = decode_response(frame.freeze()) else {
                    tracing::warn!("undecodable reply from the node; closing the connection");
                    break;
                };
                let slot = routes.lock().waiting.remove(&id);
                match slot {
                    Some(Slot::Waiting(tx, undo)) => {
                        // The caller may have dropped its future after we took the slot:
                        // then the answer comes back here and is given back.
                        if let (Err(result), Some(undo)) =
                            (tx.send(result.map_err(Error::from)), undo)
                        {
                            if let Some(out) = undo_out.upgrade() {
                                run_undo(&out, max_frame, undo, result);
                            }
                        }
                    }
                    Some(Slot::Abandoned(undo)) => {
                        if let Some(out) = undo_out.upgrade() {
                            run_undo(&out, max_frame, undo, result.map_err(Error::from));
                        }
                    }
                    None => tracing::trace!(id, "reply for a call nobody awaits"),
                }
            }
            routes.close();
            reader_gone.cancel();
        });

        Ok(Connection {
            outgoing: tx,
            pending,
            next_id: AtomicU64::new(1),
            max_frame: opts.max_frame,
        })
    }

    /// Starts a request; arguments are appended to the returned builder.
    pub(crate) fn request(&self, object: u64, method: &str, nargs: u32) -> RequestBuilder {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut buf = BytesMut::with_capacity(64);
        buf.put_u32(0); // frame length, patched in `finish`
        message::encode_request_head(&mut buf, id, object, method);
        message::encode_args_len(&mut buf, nargs);
        RequestBuilder {
            id,
            buf,
            error: None,
        }
    }

    /// Sends a built request and waits for its reply.
    pub(crate) async fn call(&self, req: RequestBuilder) -> Result<Bytes> {
        self.call_with_undo(req, None).await
    }

    /// Like [`call`](Self::call); if the caller drops the future and the node's answer
    /// comes anyway (it won the race with `Cancel`), `undo` gives back what was granted.
    pub(crate) async fn call_with_undo(
        &self,
        req: RequestBuilder,
        undo: Option<Undo>,
    ) -> Result<Bytes> {
        let (id, frame) = req.finish(self.max_frame)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut calls = self.pending.lock();
            if calls.closed {
                return Err(Error::Disconnected);
            }
            calls.waiting.insert(id, Slot::Waiting(tx, undo));
        }
        // Armed before the request leaves, so a drop at any point after cancels it.
        let mut guard = CallGuard {
            conn: self,
            id,
            undo,
            rx: Some(rx),
        };
        if self.outgoing.send(frame).is_err() {
            guard.disarm();
            return Err(Error::Disconnected);
        }
        let reply = match guard.rx.as_mut() {
            Some(rx) => rx.await.unwrap_or(Err(Error::Disconnected)),
            None => Err(Error::Disconnected),
        };
        guard.rx = None;
        reply
    }

    /// Sends a call whose answer nobody awaits (releases from destructors).
    pub(crate) fn send_forget(&self, object: u64, method: &str, arg: Option<&[u8]>) {
        let mut buf = BytesMut::new();
        let encoded = encode_frame_with(&mut buf, self.max_frame, |b| {
            message::encode_request_head(b, message::FORGET_ID, object, method);
            message::encode_args_len(b, arg.is_some() as u32);
            if let Some(arg) = arg {
                b.put_slice(arg);
            }
        });
        if encoded.is_ok() {
            let _ = self.outgoing.send(buf.freeze());
        }
    }

    /// Drops one reference to an anonymous object (fire and forget).
    pub(crate) fn release(&self, object: u64) {
        let mut buf = BytesMut::new();
        let _ = encode_frame_with(&mut buf, self.max_frame, |b| {
            message::encode_release(b, object)
        });
        let _ = self.outgoing.send(buf.freeze());
    }

    fn send_cancel(&self, id: u64) {
        let mut buf = BytesMut::new();
        let _ = encode_frame_with(&mut buf, self.max_frame, |b| message::encode_cancel(b, id));
        let _ = self.outgoing.send(buf.freeze());
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.pending.lock().closed || self.outgoing.is_closed()
    }
}

/// Cancels the call if its future is dropped before the answer is taken.
///
/// Three cases on drop: the answer has not come (the slot is still waiting): mark it
/// abandoned (with its undo) and send `Cancel`; the answer came but was never taken (it
/// sits in `rx`): run the undo now; the answer was taken: nothing to do.
struct CallGuard<'a> {
    conn: &'a Connection,
    id: u64,
    undo: Option<Undo>,
    rx: Option<oneshot::Receiver<Reply>>,
}

impl CallGuard<'_> {
    fn disarm(&mut self) {
        self.conn.pending.lock().waiting.remove(&self.id);
        self.rx = None;
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        let still_waiting = {
            let mut calls = self.conn.pending.lock();
            match (calls.waiting.remove(&self.id), self.undo) {
                (Some(_), Some(undo)) => {
                    calls.waiting.insert(self.id, Slot::Abandoned(undo));
                    true
                }
                (Some(_), None) => true,
                (None, _) => false,
            }
        };
        if still_waiting {
            self.conn.send_cancel(self.id);
            return;
        }
        // The reader took the slot. Closing first makes its send fail from now on (it then
        // runs the undo itself); an answer it already sent is still here to give back.
        rx.close();
        if let (Ok(reply), Some(undo)) = (rx.try_recv(), self.undo) {
            run_undo(&self.conn.outgoing, self.conn.max_frame, undo, reply);
        }
    }
}

/// A request being built: its head is written; arguments follow.
pub(crate) struct RequestBuilder {
    id: u64,
    buf: BytesMut,
    error: Option<Error>,
}

impl RequestBuilder {
    /// Appends a serde value (structs become maps, so other languages see field names).
    pub(crate) fn arg<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        if self.error.is_none() {
            let mut w = (&mut self.buf).writer();
            if let Err(e) = rmp_serde::encode::write_named(&mut w, value) {
                self.error = Some(Error::Encode(e.to_string()));
            }
        }
        self
    }

    /// Appends an already-encoded MessagePack value.
    pub(crate) fn raw_arg(mut self, encoded: &[u8]) -> Self {
        self.buf.put_slice(encoded);
        self
    }

    fn finish(mut self, max_frame: usize) -> Result<(u64, Bytes)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let len = self.buf.len() - 4;
        if len > max_frame {
            return Err(Error::FrameTooLarge {
                len: len as u64,
                max: max_frame,
            });
        }
        if len > i32::MAX as usize {
            // Over 2 GiB: re-frame with CPython's long header.
            let mut framed = BytesMut::new();
            encode_frame_with(&mut framed, max_frame, |b| b.put_slice(&self.buf[4..])).map_err(
                |e| match e {
                    FrameError::TooLarge { len, max } => Error::FrameTooLarge { len, max },
                    other => Error::Protocol(other.to_string()),
                },
            )?;
            return Ok((self.id, framed.freeze()));
        }
        self.buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok((self.id, self.buf.freeze()))
    }
}

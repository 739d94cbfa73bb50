//! A native session's replies on their way out. They are encoded straight into the
//! session's write buffer and written by the session's own task once it has nothing more
//! to read: a call costs no hand-off to another task, and a burst of replies costs one
//! write.
//!
//! # Back-pressure
//! The buffer is bounded in replies and in bytes (`reply_queue`, `reply_queue_bytes`).
//! While it is full the session reads no requests and takes no answers of parked calls,
//! so a client that does not read its replies pushes back on itself through TCP, never on
//! other sessions.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use futures_util::FutureExt;
use syncman_protocol::frame::{encode_frame_with, FrameError};
use syncman_protocol::message::encode_response;
use syncman_protocol::RemoteError;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::net::metrics::QueueProbe;
use crate::node::object::Reply;

/// Bytes buffered past which the session writes before it reads more, so that a client
/// streaming requests still gets its replies as it goes.
pub(super) const WRITE_AT: usize = 64 * 1024;

/// Room always given to the error that replaces a result too large for the client (its
/// message and envelope take under 128 bytes), whatever limit the client stated.
const ERROR_ROOM: usize = 256;

/// A buffer that held at most this much is kept for the next replies once written; a
/// larger one is given back, so an idle session holds little.
const KEEP: usize = 1024;

/// The replies of one session not yet written, and the socket's write half.
pub(super) struct Replies<W> {
    io: W,
    buf: BytesMut,
    /// Where each reply in `buf` ends, counted in bytes since the session began: the
    /// replies not yet fully written are the entries past `written`.
    ends: VecDeque<u64>,
    encoded: u64,
    written: u64,
    /// Bytes written since `buf` was last empty (how large it grew).
    batch: usize,
    max_frame: usize,
    max_replies: usize,
    max_bytes: usize,
    /// Replies and bytes waiting, published for the metrics when the node collects them.
    gauge: Option<Arc<Gauge>>,
}

/// What the metrics read of a session's replies: how many wait, and their bytes, read
/// together (a scrape never sees one updated and not the other).
#[derive(Default)]
struct Gauge(Mutex<(usize, usize)>);

impl<W: AsyncWrite + Unpin> Replies<W> {
    /// Replies to `io`, each at most `max_frame` bytes, at most `max_replies` and
    /// `max_bytes` waiting before the session stops reading.
    pub fn new(
        io: W,
        max_frame: usize,
        max_replies: usize,
        max_bytes: usize,
        metrics: bool,
    ) -> Self {
        Replies {
            io,
            buf: BytesMut::new(),
            ends: VecDeque::new(),
            encoded: 0,
            written: 0,
            batch: 0,
            max_frame,
            max_replies: max_replies.max(1),
            max_bytes: max_bytes.max(1),
            gauge: metrics.then(Arc::default),
        }
    }

    /// Reads this session's replies for the metrics: replies and bytes waiting.
    pub fn probe(&self) -> QueueProbe {
        let gauge = self.gauge.clone();
        Box::new(move || {
            gauge
                .as_ref()
                .map_or((0, 0), |g| *g.0.lock().unwrap_or_else(|p| p.into_inner()))
        })
    }

    /// Whether another reply may be made now: the session reads requests and takes
    /// parked answers only while this holds.
    pub fn has_room(&self) -> bool {
        self.ends.len() < self.max_replies && self.buf.len() < self.max_bytes
    }

    /// Nothing is waiting to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Enough is buffered that it should be written before more is read.
    pub fn should_write(&self) -> bool {
        self.buf.len() >= WRITE_AT
    }

    /// Adds a reply, whatever the room (the caller checks [`has_room`](Self::has_room)
    /// before it reads what makes replies). A result too large for a frame becomes an
    /// error reply for that call alone.
    pub fn push(&mut self, id: u64, reply: Reply) {
        let before = self.buf.len();
        // One allocation for the reply, not one per field as the encoder grows it.
        self.buf.reserve(reply_len_hint(&reply));
        let encoded = match encode_frame_with(&mut self.buf, self.max_frame, |b| {
            encode_response(b, id, &reply)
        }) {
            Err(FrameError::TooLarge { len, max }) => {
                let err = RemoteError::value_error(format!(
                    "result of {len} bytes exceeds the frame limit of {max} bytes"
                ));
                // Sent even past a limit too small for it: a client that skips it fails
                // that call rather than waiting for an answer that never comes.
                encode_frame_with(&mut self.buf, self.max_frame.max(ERROR_ROOM), |b| {
                    encode_response(b, id, &Err(err))
                })
            }
            other => other,
        };
        if encoded.is_err() {
            // Not reached: the error above fits `ERROR_ROOM`. Nothing half-written stays.
            self.buf.truncate(before);
            return;
        }
        self.encoded += (self.buf.len() - before) as u64;
        self.ends.push_back(self.encoded);
        self.publish();
    }

    /// Writes until everything buffered is written and flushed. Cancel-safe: what was
    /// written is accounted for as it goes.
    pub async fn write_out(&mut self) -> std::io::Result<()> {
        poll_fn(|cx| self.poll_write_out(cx)).await
    }

    /// Writes what the socket takes without waiting; the rest stays buffered.
    pub fn write_now(&mut self) -> std::io::Result<()> {
        // Polled once, with a waker that does nothing: when the socket is full, the
        // session's loop polls `write_out` again with its own.
        self.write_out().now_or_never().unwrap_or(Ok(()))
    }

    /// Writes what is left, then closes the write side (over TLS this sends
    /// `close_notify`, so the client reads a clean end rather than a truncated one).
    pub async fn close(&mut self) -> std::io::Result<()> {
        self.write_out().await?;
        self.io.shutdown().await
    }

    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.buf.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.buf))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.wrote(n);
        }
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        Poll::Ready(Ok(()))
    }

    /// `n` bytes from the front were written.
    fn wrote(&mut self, n: usize) {
        self.buf.advance(n);
        self.batch += n;
        self.written += n as u64;
        while self.ends.front().is_some_and(|&end| end <= self.written) {
            self.ends.pop_front();
        }
        if self.buf.is_empty() {
            // Written to its end, the buffer reports no capacity but still holds its
            // allocation, which the next reply reuses; a large one is given back.
            if self.buf.capacity() + self.batch > KEEP {
                self.buf = BytesMut::new();
            }
            self.batch = 0;
        }
        self.publish();
    }

    fn publish(&self) {
        if let Some(gauge) = &self.gauge {
            *gauge.0.lock().unwrap_or_else(|p| p.into_inner()) = (self.ends.len(), self.buf.len());
        }
    }
}

/// About the bytes a reply takes encoded: its value and the envelope around it.
fn reply_len_hint(reply: &Reply) -> usize {
    match reply {
        Ok(value) => value.len() + 24,
        Err(e) => e.message.len() + 48,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn counts_replies_until_their_last_byte_is_written() {
        // A pipe that takes 10 bytes at a time.
        let (client, server) = tokio::io::duplex(10);
        let mut replies = Replies::new(server, 1 << 20, 2, 1 << 20, true);
        let probe = replies.probe();
        assert!(replies.has_room());
        replies.push(1, Ok(Bytes::from_static(&[0xc3])));
        replies.push(2, Ok(Bytes::from(vec![0xc4; 8])));
        // Two replies: the count is full.
        assert!(!replies.has_room());
        let (waiting, bytes) = probe();
        assert_eq!(waiting, 2);
        assert_eq!(bytes, replies.buf.len());
        let total = replies.buf.len();
        // Write what the pipe takes, then read it off, until everything is through.
        let mut client = client;
        let mut got = Vec::new();
        let mut saw_one_left = false;
        while got.len() < total {
            let _ = futures_util::poll!(Box::pin(replies.write_out()));
            saw_one_left |= probe().0 == 1;
            let mut chunk = [0u8; 10];
            let n = client.read(&mut chunk).await.unwrap();
            got.extend_from_slice(&chunk[..n]);
        }
        replies.write_out().await.unwrap();
        assert!(
            saw_one_left,
            "the first reply counted off before the second"
        );
        assert_eq!(probe(), (0, 0));
        assert!(replies.has_room());
        assert_eq!(got.len(), total);
    }

    /// What a client reads when a session with frame limit `max_frame` answers call `id`
    /// with a `len`-byte result.
    async fn the_reply(max_frame: usize, id: u64, len: usize) -> (u64, Reply) {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut replies = Replies::new(server, max_frame, 16, 1 << 20, false);
        replies.push(id, Ok(Bytes::from(vec![0xc4; len])));
        replies.close().await.unwrap();
        let mut out = Vec::new();
        client.read_to_end(&mut out).await.unwrap();
        syncman_protocol::message::decode_response(Bytes::from(out[4..].to_vec())).unwrap()
    }

    #[tokio::test]
    async fn a_result_too_large_for_a_frame_becomes_an_error_reply() {
        let (id, result) = the_reply(128, 7, 200).await;
        assert_eq!(id, 7);
        let err = result.unwrap_err();
        assert!(err.message.contains("exceeds the frame limit"), "{err}");
    }

    #[tokio::test]
    async fn a_limit_too_small_for_any_error_still_gets_the_error() {
        let (id, result) = the_reply(8, 3, 20).await;
        assert_eq!(id, 3);
        assert!(result.is_err(), "an error, not nothing");
    }

    #[tokio::test]
    async fn a_large_buffer_is_given_back_once_written() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut replies = Replies::new(server, 1 << 20, 16, 1 << 20, false);
        replies.push(1, Ok(Bytes::from(vec![0xc4; 10])));
        replies.write_out().await.unwrap();
        // An empty `BytesMut` that holds nothing points where every new one does.
        let holds_nothing = |buf: &BytesMut| buf.as_ptr() == BytesMut::new().as_ptr();
        assert!(
            !holds_nothing(&replies.buf),
            "a small buffer is kept for reuse"
        );
        replies.push(2, Ok(Bytes::from(vec![0xc4; 8 * KEEP])));
        replies.write_out().await.unwrap();
        assert!(holds_nothing(&replies.buf), "a large one is given back");
        let mut sink = vec![0u8; 16 * KEEP];
        let _ = client.read(&mut sink).await.unwrap();
    }
}

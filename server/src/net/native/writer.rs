//! The native dialect's reply writer: one task per connection that batches replies into
//! few syscalls.

use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use futures_channel::mpsc;
use futures_util::{SinkExt, StreamExt};
use syncman_protocol::frame::{encode_frame_with, FrameError};
use syncman_protocol::message::encode_response;
use syncman_protocol::RemoteError;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::codec::{Encoder, FramedWrite};

use crate::node::object::Reply;

/// Encodes `(id, reply)` straight into the socket buffer. A result too large for a frame
/// becomes an error reply for that call alone.
pub(super) struct ReplyEncoder {
    pub max_frame: usize,
}

impl Encoder<(u64, Reply)> for ReplyEncoder {
    type Error = std::io::Error;

    fn encode(&mut self, (id, reply): (u64, Reply), dst: &mut BytesMut) -> Result<(), Self::Error> {
        match encode_frame_with(dst, self.max_frame, |b| encode_response(b, id, &reply)) {
            Ok(()) => Ok(()),
            Err(FrameError::TooLarge { len, max }) => {
                let err = RemoteError::value_error(format!(
                    "result of {len} bytes exceeds the frame limit of {max} bytes"
                ));
                encode_frame_with(dst, self.max_frame, |b| encode_response(b, id, &Err(err)))
                    .map_err(|e| std::io::Error::other(e.to_string()))
            }
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }
}

/// A reply waiting for the writer, holding its share of the session's reply byte budget
/// until it has been encoded.
pub(super) struct QueuedReply {
    pub id: u64,
    pub reply: Reply,
    pub budget: tokio::sync::OwnedSemaphorePermit,
}

/// What a reply costs against the byte budget (its encoding, roughly).
pub(super) fn reply_cost(reply: &Reply) -> usize {
    match reply {
        Ok(value) => value.len() + 16,
        Err(e) => e.message.len() + 32,
    }
}

/// Bytes buffered before a flush is forced even if more replies are waiting.
const FLUSH_AT: usize = 64 * 1024;

/// Encodes one reply into the write buffer, then returns its byte budget.
async fn feed<W: AsyncWrite + Unpin>(
    sink: &mut FramedWrite<W, ReplyEncoder>,
    queued: QueuedReply,
) -> std::io::Result<()> {
    let QueuedReply { id, reply, budget } = queued;
    sink.feed((id, reply)).await?;
    drop(budget);
    Ok(())
}

/// Writes replies until every sender is gone, then flushes and returns.
pub(super) async fn write_replies<W>(
    io: W,
    max_frame: usize,
    mut rx: mpsc::Receiver<QueuedReply>,
    queued: Option<Arc<AtomicIsize>>,
) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut sink = FramedWrite::new(io, ReplyEncoder { max_frame });
    sink.set_backpressure_boundary(FLUSH_AT);
    while let Some(first) = rx.next().await {
        feed(&mut sink, first).await?;
        // Take whatever else is ready, so a burst of replies costs one write.
        let mut taken = 1;
        while sink.write_buffer().len() < FLUSH_AT {
            match rx.try_recv() {
                Ok(next) => {
                    feed(&mut sink, next).await?;
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        // Off the metrics' count of replies queued, once per batch.
        if let Some(queued) = &queued {
            queued.fetch_sub(taken, Ordering::Relaxed);
        }
        sink.flush().await?;
        // An idle connection holds no write buffer; the next reply allocates what it needs.
        // (Flushed bytes are consumed from the front, so `capacity()` cannot tell whether
        // an allocation is still held: replace it regardless.)
        *sink.write_buffer_mut() = BytesMut::new();
    }
    sink.flush().await?;
    // Closes the write side: over TLS this also sends `close_notify`, so the client
    // reads a clean end of the session rather than a truncated one.
    sink.get_mut().shutdown().await
}

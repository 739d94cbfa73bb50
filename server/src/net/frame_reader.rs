//! Reads frames after authentication without holding a read buffer while the connection
//! is idle.
//!
//! `tokio_util`'s `FramedRead` keeps an 8 KiB buffer for a connection's whole life; with
//! ten thousand idle clients that is most of what the node holds for them. Here, when
//! nothing is buffered, a read lands in a scratch buffer owned by the thread and only the
//! bytes that arrived are kept, until they are decoded. While a frame is partly in, reads
//! go straight into the connection's own buffer, which the codec has sized for it. A
//! buffer made for one read holds exactly what arrived (at most 16 KiB), so its frames are
//! taken whole or split off by the codec instead of copied out, each saying it pins that
//! read (`Received::Frame`).

use std::cell::RefCell;
use std::future::poll_fn;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use syncman_protocol::frame::{FrameError, Received, SkippingFrameCodec};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::codec::Decoder;

/// Bytes one read takes at most when nothing is buffered.
const SCRATCH: usize = 16 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

pub(crate) struct FrameReader<R> {
    io: R,
    codec: SkippingFrameCodec,
    /// Bytes read but not yet decoded; no allocation when empty.
    buf: BytesMut,
    eof: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader of `io`, starting with the bytes the client already sent.
    pub fn new(io: R, codec: SkippingFrameCodec, already: &[u8]) -> Self {
        FrameReader {
            io,
            codec,
            buf: BytesMut::from(already),
            eof: false,
        }
    }

    /// The next frame; `None` once the peer has closed. Cancel-safe: bytes read are kept.
    pub async fn next(&mut self) -> Option<Result<Received, FrameError>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// A frame that already arrived, without reading (what is left to answer at shutdown).
    pub fn next_buffered(&mut self) -> Option<Received> {
        let frame = self.codec.decode(&mut self.buf).ok().flatten();
        self.release_if_drained();
        frame
    }

    /// Bytes have arrived that are not decoded yet (a frame, or part of one).
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Received, FrameError>>> {
        loop {
            let had_bytes = !self.buf.is_empty();
            let decoded = if self.eof {
                self.codec.decode_eof(&mut self.buf)
            } else {
                self.codec.decode(&mut self.buf)
            };
            match decoded {
                Ok(Some(frame)) => {
                    self.release_if_drained();
                    return Poll::Ready(Some(Ok(frame)));
                }
                Ok(None) if self.eof => return Poll::Ready(None),
                // Skipping an oversized frame may have emptied the buffer: let it go.
                Ok(None) if had_bytes => self.release_if_drained(),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            let read = if self.buf.is_empty() {
                ready!(self.poll_read_idle(cx))
            } else {
                // Reading on into a partly filled buffer grows it: no longer exact.
                self.codec.set_buffer_is_exact(false);
                self.buf.reserve(1);
                ready!(tokio_util::io::poll_read_buf(
                    Pin::new(&mut self.io),
                    cx,
                    &mut self.buf
                ))
            };
            match read {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(FrameError::Io(e)))),
            }
        }
    }

    /// Reads into the thread's scratch buffer and keeps only what arrived.
    fn poll_read_idle(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        SCRATCH_BUF.with_borrow_mut(|scratch| {
            let mut read = ReadBuf::new(scratch);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
            // Called with nothing buffered, and every path that drains the buffer lets its
            // allocation go (`release_if_drained`), so this makes a fresh one sized to what
            // arrived. (An emptied buffer still holding its allocation would be reused
            // here, with room that a small frame taking it over would pin.)
            debug_assert!(self.buf.is_empty());
            self.buf.extend_from_slice(read.filled());
            self.codec.set_buffer_is_exact(!self.buf.is_empty());
            Poll::Ready(Ok(read.filled().len()))
        })
    }

    /// Gives the buffer's memory back once everything in it has been decoded. (Not judged
    /// by `capacity()`: a buffer read to its end reports none left but still holds it.)
    fn release_if_drained(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A frame as CPython writes it: a 4-byte big-endian length, then the payload.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    /// True when the buffer holds no allocation: an unallocated `BytesMut` points nowhere
    /// (a dangling, never-allocated pointer, the same for every empty one).
    fn holds_nothing(buf: &BytesMut) -> bool {
        buf.is_empty() && buf.as_ptr() == BytesMut::new().as_ptr()
    }

    fn payload(received: Option<Result<Received, FrameError>>) -> Vec<u8> {
        match received {
            Some(Ok(Received::Frame { frame, .. })) => frame.to_vec(),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn holds_no_buffer_once_what_arrived_is_decoded() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(server, SkippingFrameCodec::new(1 << 20), &[]);
        // Two frames in one write, then one split across writes.
        let mut both = frame(b"first");
        both.extend(frame(b"second"));
        client.write_all(&both).await.unwrap();
        assert_eq!(payload(reader.next().await), b"first");
        assert!(
            reader.buf.capacity() > 0,
            "the second frame is still buffered"
        );
        assert_eq!(payload(reader.next().await), b"second");
        assert!(holds_nothing(&reader.buf), "idle: nothing held");
        let third = frame(&[9u8; 40_000]);
        client.write_all(&third[..10]).await.unwrap();
        client.flush().await.unwrap();
        let rest = third[10..].to_vec();
        let writer = tokio::spawn(async move { client.write_all(&rest).await.map(|()| client) });
        assert_eq!(payload(reader.next().await), vec![9u8; 40_000]);
        assert!(holds_nothing(&reader.buf));
        let mut client = writer.await.unwrap().unwrap();
        client.shutdown().await.unwrap();
        assert!(
            reader.next().await.is_none(),
            "a clean close ends the stream"
        );
    }

    #[tokio::test]
    async fn a_close_in_the_middle_of_a_frame_is_an_error() {
        let (mut client, server) = tokio::io::duplex(1024);
        let mut reader = FrameReader::new(server, SkippingFrameCodec::new(1024), &[0, 0]);
        client.write_all(&[0, 9, b'x']).await.unwrap();
        drop(client);
        assert!(matches!(
            reader.next().await,
            Some(Err(FrameError::Truncated))
        ));
    }

    #[tokio::test]
    async fn an_oversized_frame_is_reported_and_skipped_and_the_next_one_read() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(server, SkippingFrameCodec::new(100), &[]);
        let mut bytes = frame(&[1u8; 5_000]);
        bytes.extend(frame(b"after"));
        let writer = tokio::spawn(async move { client.write_all(&bytes).await.map(|()| client) });
        assert!(matches!(
            reader.next().await,
            Some(Ok(Received::TooLarge { len: 5_000, .. }))
        ));
        assert_eq!(payload(reader.next().await), b"after");
        assert!(holds_nothing(&reader.buf));
        drop(writer.await.unwrap().unwrap());
        assert!(reader.next().await.is_none());
    }

    /// Hands out one scripted chunk per read, then the end of the stream; each chunk
    /// fills the read exactly when it is as long as the scratch buffer.
    struct Chunks(std::collections::VecDeque<Vec<u8>>);

    impl AsyncRead for Chunks {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            if let Some(chunk) = self.0.pop_front() {
                assert!(chunk.len() <= buf.remaining(), "a chunk larger than a read");
                buf.put_slice(&chunk);
            }
            Poll::Ready(Ok(()))
        }
    }

    /// A peer can time its writes so that skipping an oversized frame ends exactly at the
    /// end of a read: the small frame after it must still come in a buffer of its own,
    /// not in the skipped bytes' allocation (which a stored value would then pin).
    #[tokio::test]
    async fn a_small_frame_after_a_skipped_one_keeps_no_more_than_itself() {
        let over_two_reads = frame(&vec![1u8; 2 * SCRATCH - 4]);
        let cases = [
            // limit, reads
            (100, vec![frame(&[1u8; 1_000]), frame(b"small")]),
            (1_000, vec![frame(&[1u8; 2_000]), frame(b"small")]),
            (
                20_000,
                vec![
                    over_two_reads[..SCRATCH].to_vec(),
                    over_two_reads[SCRATCH..].to_vec(),
                    frame(b"small"),
                ],
            ),
        ];
        for (limit, reads) in cases {
            let chunks = Chunks(reads.into_iter().collect());
            let mut reader = FrameReader::new(chunks, SkippingFrameCodec::new(limit), &[]);
            assert!(matches!(
                reader.next().await,
                Some(Ok(Received::TooLarge { .. }))
            ));
            let Some(Ok(Received::Frame { frame: small, .. })) = reader.next().await else {
                panic!("the small frame after the skipped one (limit {limit})");
            };
            assert_eq!(&small[..], b"small");
            assert!(
                small.capacity() < 64,
                "limit {limit}: a 5-byte frame holds {} bytes",
                small.capacity()
            );
        }
    }

    /// Once an oversized frame is skipped to its end, an idle connection holds no buffer.
    #[tokio::test]
    async fn holds_no_buffer_after_skipping_to_the_end_of_what_arrived() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut reader = FrameReader::new(server, SkippingFrameCodec::new(100), &[]);
        client.write_all(&frame(&[1u8; 1_000])).await.unwrap();
        assert!(matches!(
            reader.next().await,
            Some(Ok(Received::TooLarge { len: 1_000, .. }))
        ));
        // The rest of the oversized frame is skipped, then the read finds nothing more.
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(reader.poll_next(&mut cx).is_pending());
        assert!(
            holds_nothing(&reader.buf),
            "an idle connection holds a buffer"
        );
        client.write_all(&frame(b"next")).await.unwrap();
        assert_eq!(payload(reader.next().await), b"next");
    }

    #[tokio::test]
    async fn frames_that_came_with_the_handshake_are_read_first() {
        let (client, server) = tokio::io::duplex(64);
        let already = frame(b"early");
        let mut reader = FrameReader::new(server, SkippingFrameCodec::new(100), &already);
        assert_eq!(
            reader.next_buffered().map(|r| match r {
                Received::Frame { frame, .. } => frame.to_vec(),
                other => panic!("{other:?}"),
            }),
            Some(b"early".to_vec())
        );
        assert!(reader.next_buffered().is_none());
        drop(client);
        assert!(reader.next().await.is_none());
    }
}

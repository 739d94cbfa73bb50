//! CPython's `multiprocessing.connection` framing as a tokio-util codec.
//!
//! A frame is a 4-byte big-endian signed length and the payload; a length of -1 means an
//! 8-byte unsigned length follows (CPython 3.8+ for payloads over 2 GiB). The decoder compares
//! the declared length with its limit *before* it buffers anything, and grows its buffer only
//! as bytes arrive, so a peer cannot make the node reserve memory by merely claiming a size.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// CPython reads every handshake frame with `recv_bytes(256)`; so does syncman before
/// authentication succeeds.
pub const HANDSHAKE_MAX_FRAME: usize = 256;

/// Default limit for frames after authentication (both directions): 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// How much buffer the decoder reserves at a time while a large frame arrives.
pub(crate) const GROW_STEP: usize = 64 * 1024;

/// The node stores argument bytes as slices of the frame they came in, so a small stored
/// value must not keep a long-lived read buffer (or a neighbouring large frame) alive.
/// Frames are therefore copied out of such a buffer, except a large frame that is the
/// buffer's only content, which takes the buffer over instead (no copy of big payloads in
/// the common case). (Frames of a buffer made for one read share it instead, and say so:
/// see [`FrameCodec::set_buffer_is_exact`].)
pub(crate) const COPY_AT_MOST: usize = 16 * 1024;

/// Why a byte stream stopped being a valid frame stream. Any of these closes the connection:
/// once framing is lost, nothing after it can be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: usize },
    #[error("invalid frame length {0}")]
    BadLength(i32),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The framing codec. `max_len` applies to decoding and encoding alike.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_len: usize,
    /// See [`FrameCodec::set_buffer_is_exact`].
    buffer_is_exact: bool,
    /// The length of the buffer frames are being split off, while it is still one read's
    /// own allocation (see [`FrameCodec::set_buffer_is_exact`]).
    splitting_read_of: Option<usize>,
    /// See [`FrameCodec::set_frames_share_the_buffer`].
    frames_share_the_buffer: bool,
}

impl FrameCodec {
    pub fn new(max_len: usize) -> Self {
        FrameCodec {
            max_len,
            buffer_is_exact: false,
            splitting_read_of: None,
            frames_share_the_buffer: false,
        }
    }

    /// Frames are split off the read buffer instead of copied out of it: for a reader
    /// that drops each frame soon after decoding it (the client with its replies), which
    /// saves an allocation and a copy per frame. A frame kept keeps the read buffer alive,
    /// so the node, which stores argument bytes as slices of their frames, never says so.
    pub fn set_frames_share_the_buffer(&mut self, share: bool) {
        self.frames_share_the_buffer = share;
    }

    /// Tells the next decode that the buffer's allocation holds exactly the bytes in it
    /// (a buffer made for what one read brought, none of it consumed yet). A frame that is
    /// then all the buffer holds takes the buffer over, whatever its size; several frames
    /// are split off it instead of copied out, each saying that it pins the whole read
    /// (see [`Received::Frame`]). That lasts until the buffer is drained, or must grow
    /// because a frame is not all in, or is told `false` here. (A long-lived read buffer
    /// must not say so: it keeps consumed bytes and spare room that a small frame would
    /// pin.)
    pub fn set_buffer_is_exact(&mut self, exact: bool) {
        self.buffer_is_exact = exact;
        if !exact {
            self.splitting_read_of = None;
        }
    }

    /// The codec used during the handshake (CPython's 256-byte limit).
    pub fn handshake() -> Self {
        FrameCodec::new(HANDSHAKE_MAX_FRAME)
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn set_max_len(&mut self, max_len: usize) {
        self.max_len = max_len;
    }
}

/// A frame header at the front of `src`: its own length and the payload's, or `None` if
/// the header has not fully arrived.
fn read_header(src: &[u8]) -> Result<Option<(usize, u64)>, FrameError> {
    if src.len() < 4 {
        return Ok(None);
    }
    let short = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
    match short {
        -1 => {
            if src.len() < 12 {
                return Ok(None);
            }
            let mut long = [0u8; 8];
            long.copy_from_slice(&src[4..12]);
            Ok(Some((12, u64::from_be_bytes(long))))
        }
        n if n < 0 => Err(FrameError::BadLength(n)),
        n => Ok(Some((4, n as u64))),
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        Ok(self.decode_frame(src)?.map(|(frame, _pins)| frame))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(FrameError::Truncated),
        }
    }
}

impl FrameCodec {
    /// The next frame and the bytes it pins (see [`Received::Frame`]).
    fn decode_frame(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<(BytesMut, usize)>, FrameError> {
        if std::mem::take(&mut self.buffer_is_exact) {
            self.splitting_read_of = Some(src.len());
        }
        let Some((header, len)) = read_header(src)? else {
            // The buffer will grow: no longer one read's own.
            self.splitting_read_of = None;
            return Ok(None);
        };
        if len > self.max_len as u64 {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_len,
            });
        }
        // Within `max_len`, so a usize; but `header + len` may overflow under a limit near
        // `usize::MAX`, hence comparing with the payload bytes that arrived instead.
        let len = len as usize;
        let arrived = src.len() - header;
        if arrived < len {
            src.reserve((len - arrived).min(GROW_STEP));
            self.splitting_read_of = None;
            return Ok(None);
        }
        src.advance(header);
        let whole = src.len() == len;
        if let Some(read) = self.splitting_read_of {
            // One read's own allocation, at most what one read brings: its frames share
            // it, each pinning all of it, and the copies are saved. The last frame takes
            // what is left, and the next read starts a fresh one.
            if whole {
                self.splitting_read_of = None;
                return Ok(Some((std::mem::take(src), read)));
            }
            return Ok(Some((src.split_to(len), read)));
        }
        if whole && len > COPY_AT_MOST {
            // A big frame that is all the buffer holds takes the whole allocation with it,
            // and the next read starts a fresh one: nothing else ever shares it.
            return Ok(Some((std::mem::take(src), len)));
        }
        if self.frames_share_the_buffer {
            // A long-lived buffer: what a frame kept would pin is not bounded.
            return Ok(Some((src.split_to(len), usize::MAX)));
        }
        let frame = BytesMut::from(&src[..len]);
        src.advance(len);
        Ok(Some((frame, len)))
    }
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        check_len(payload.len(), self.max_len)?;
        put_header(dst, payload.len());
        dst.put_slice(payload);
        Ok(())
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&payload[..], dst)
    }
}

/// Bytes of an oversized frame kept (its start, where a request or response id is).
pub const OVERSIZED_HEAD: usize = 64;

/// What [`SkippingFrameCodec`] yields.
#[derive(Debug)]
pub enum Received {
    /// A frame within the limit, and the bytes that any part of it kept alive would keep
    /// with it (`pins`): its own length when it was copied or took a buffer over, the
    /// whole read when it shares one read's allocation with other frames, and
    /// `usize::MAX` when it shares a long-lived buffer. A part stored for longer than the
    /// call goes through [`to_keep`](crate::value::to_keep) with it.
    Frame { frame: BytesMut, pins: usize },
    /// A frame over the limit: its length and its first [`OVERSIZED_HEAD`] bytes, yielded
    /// as soon as those have arrived, so the one message it carries can be answered or
    /// failed at once. The rest is read and thrown away as it arrives, and the connection
    /// carries on after it.
    TooLarge { len: u64, head: Bytes },
}

/// The framing after authentication, where one oversized message must not cost the whole
/// connection: a frame over the limit is never buffered; its start is reported as
/// [`Received::TooLarge`] and the rest skipped.
#[derive(Debug, Clone)]
pub struct SkippingFrameCodec {
    frames: FrameCodec,
    skipping: Option<Skipping>,
}

#[derive(Debug, Clone)]
struct Skipping {
    len: u64,
    /// Payload bytes still to come.
    left: u64,
    head: BytesMut,
    reported: bool,
}

impl SkippingFrameCodec {
    pub fn new(max_len: usize) -> Self {
        SkippingFrameCodec {
            frames: FrameCodec::new(max_len),
            skipping: None,
        }
    }

    pub fn max_len(&self) -> usize {
        self.frames.max_len()
    }

    /// See [`FrameCodec::set_buffer_is_exact`].
    pub fn set_buffer_is_exact(&mut self, exact: bool) {
        self.frames.set_buffer_is_exact(exact);
    }

    /// See [`FrameCodec::set_frames_share_the_buffer`].
    pub fn set_frames_share_the_buffer(&mut self, share: bool) {
        self.frames.set_frames_share_the_buffer(share);
    }
}

impl Decoder for SkippingFrameCodec {
    type Item = Received;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Received>, FrameError> {
        loop {
            let Some(skip) = self.skipping.as_mut() else {
                let Some((header, len)) = read_header(src)? else {
                    // The rest of the header is still to come: the buffer will grow.
                    self.frames.set_buffer_is_exact(false);
                    return Ok(None);
                };
                if len <= self.frames.max_len() as u64 {
                    return Ok(self
                        .frames
                        .decode_frame(src)?
                        .map(|(frame, pins)| Received::Frame { frame, pins }));
                }
                src.advance(header);
                self.frames.set_buffer_is_exact(false);
                self.skipping = Some(Skipping {
                    len,
                    left: len,
                    head: BytesMut::with_capacity(OVERSIZED_HEAD),
                    reported: false,
                });
                continue;
            };
            // Skipping consumes the buffer: whatever follows shares it.
            self.frames.set_buffer_is_exact(false);
            let keep = (OVERSIZED_HEAD - skip.head.len())
                .min(src.len())
                .min(skip.left as usize);
            skip.head.extend_from_slice(&src[..keep]);
            src.advance(keep);
            skip.left -= keep as u64;
            let head_done = skip.head.len() == OVERSIZED_HEAD || skip.left == 0;
            if head_done && !skip.reported {
                skip.reported = true;
                return Ok(Some(Received::TooLarge {
                    len: skip.len,
                    head: skip.head.clone().freeze(),
                }));
            }
            let drop = (src.len() as u64).min(skip.left) as usize;
            src.advance(drop);
            skip.left -= drop as u64;
            if skip.left > 0 {
                return Ok(None);
            }
            self.skipping = None;
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Received>, FrameError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() && self.skipping.is_none() => Ok(None),
            None => Err(FrameError::Truncated),
        }
    }
}

fn check_len(len: usize, max: usize) -> Result<(), FrameError> {
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    Ok(())
}

fn put_header(dst: &mut BytesMut, len: usize) {
    if len <= i32::MAX as usize {
        dst.reserve(4 + len);
        dst.put_i32(len as i32);
    } else {
        dst.reserve(12 + len);
        dst.put_i32(-1);
        dst.put_u64(len as u64);
    }
}

/// Appends one frame to `dst` whose payload `write` produces in place, so a message is
/// serialised straight into the output buffer with no intermediate copy. If the payload
/// turns out larger than `max`, `dst` is restored and the error returned: the caller fails
/// that one message, not the connection.
pub fn encode_frame_with<F>(dst: &mut BytesMut, max: usize, write: F) -> Result<(), FrameError>
where
    F: FnOnce(&mut BytesMut),
{
    let start = dst.len();
    dst.put_i32(0);
    write(dst);
    close_frame(dst, start, max)
}

/// Fills in the header reserved at `start` for the payload that follows it, or, if the
/// payload is over `max`, truncates `dst` back to `start`.
fn close_frame(dst: &mut BytesMut, start: usize, max: usize) -> Result<(), FrameError> {
    let len = dst.len() - start - 4;
    if let Err(e) = check_len(len, max) {
        dst.truncate(start);
        return Err(e);
    }
    if len <= i32::MAX as usize {
        dst[start..start + 4].copy_from_slice(&(len as i32).to_be_bytes());
    } else {
        // Over 2 GiB: CPython's long form. Rare enough that a copy is fine.
        let payload = dst.split_off(start + 4);
        dst.truncate(start);
        put_header(dst, len);
        dst.unsplit(payload);
    }
    Ok(())
}

/// One outgoing frame whose payload is written in place (it is a [`BufMut`], append-only),
/// then closed with [`FrameBuilder::finish`]: the header is filled in there, so callers never
/// deal with the frame layout.
#[derive(Debug)]
pub struct FrameBuilder {
    buf: BytesMut,
}

impl Default for FrameBuilder {
    fn default() -> Self {
        Self::with_capacity(64)
    }
}

impl FrameBuilder {
    /// A frame with room for a payload of `capacity` bytes before it reallocates.
    #[inline]
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = BytesMut::with_capacity(4 + capacity);
        buf.put_i32(0);
        FrameBuilder { buf }
    }

    /// Bytes of payload written so far.
    #[inline]
    pub fn payload_len(&self) -> usize {
        self.buf.len() - 4
    }

    /// The payload written so far.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buf[4..]
    }

    /// Drops the payload past its first `len` bytes (to rewrite a part just written).
    #[inline]
    pub fn truncate_payload(&mut self, len: usize) {
        self.buf.truncate(4 + len);
    }

    /// The whole frame, header included; `TooLarge` if the payload is over `max`.
    #[inline]
    pub fn finish(self, max: usize) -> Result<Bytes, FrameError> {
        self.finish_mut(max).map(BytesMut::freeze)
    }

    /// Like [`finish`](Self::finish), still a `BytesMut`: for a frame written once and
    /// dropped, whose freezing would allocate (a frozen buffer with room to spare shares
    /// itself through one more allocation).
    #[inline]
    pub fn finish_mut(mut self, max: usize) -> Result<BytesMut, FrameError> {
        close_frame(&mut self.buf, 0, max)?;
        Ok(self.buf)
    }
}

// SAFETY: every method forwards to the inner `BytesMut`, which upholds `BufMut`'s contract;
// writes only ever append after the reserved header.
unsafe impl BufMut for FrameBuilder {
    #[inline]
    fn remaining_mut(&self) -> usize {
        self.buf.remaining_mut()
    }

    #[inline]
    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of `chunk_mut`, which is the inner
        // buffer's own spare capacity.
        unsafe { self.buf.advance_mut(cnt) }
    }

    #[inline]
    fn chunk_mut(&mut self) -> &mut bytes::buf::UninitSlice {
        self.buf.chunk_mut()
    }

    // `BytesMut`'s own versions: one reserve and copy instead of the chunked default.
    #[inline]
    fn put_slice(&mut self, src: &[u8]) {
        self.buf.put_slice(src);
    }

    #[inline]
    fn put_u8(&mut self, n: u8) {
        self.buf.put_u8(n);
    }

    #[inline]
    fn put_bytes(&mut self, val: u8, cnt: usize) {
        self.buf.put_bytes(val, cnt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut FrameCodec, bytes: &[u8]) -> Result<Vec<BytesMut>, FrameError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn round_trips_short_and_empty_frames() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::new();
        codec.encode(&b"hello"[..], &mut buf).unwrap();
        codec.encode(&b""[..], &mut buf).unwrap();
        assert_eq!(&buf[..4], &[0, 0, 0, 5]);
        let frames = decode_all(&mut codec, &buf).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(&frames[0][..], b"hello");
        assert!(frames[1].is_empty());
    }

    #[test]
    fn accepts_the_long_form_header() {
        let mut codec = FrameCodec::new(1024);
        let mut bytes = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3];
        bytes.extend_from_slice(b"abc");
        let frames = decode_all(&mut codec, &bytes).unwrap();
        assert_eq!(&frames[0][..], b"abc");
    }

    #[test]
    fn waits_for_partial_headers_and_payloads() {
        let mut codec = FrameCodec::new(1024);
        let mut buf = BytesMut::from(&[0u8, 0][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&[0, 3, b'a']);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"bc");
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"abc");
    }

    #[test]
    fn rejects_oversized_declared_length_before_buffering() {
        let mut codec = FrameCodec::new(256);
        let mut buf = BytesMut::from(&0x7fff_ffffi32.to_be_bytes()[..]);
        let cap_before = buf.capacity();
        match codec.decode(&mut buf) {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, 0x7fff_ffff);
                assert_eq!(max, 256);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        assert_eq!(buf.capacity(), cap_before);
    }

    #[test]
    fn growth_is_bounded_by_arrived_bytes() {
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME);
        let mut buf = BytesMut::from(&(50_000_000i32).to_be_bytes()[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(
            buf.capacity() <= GROW_STEP + 64,
            "reserved {}",
            buf.capacity()
        );
    }

    #[test]
    fn a_small_frame_is_never_a_window_into_a_big_one() {
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME);
        let big = vec![1u8; 100_000];
        let mut buf = BytesMut::new();
        codec.encode(&big[..], &mut buf).unwrap();
        codec.encode(&b"small"[..], &mut buf).unwrap();
        let first = codec.decode(&mut buf).unwrap().unwrap();
        let second = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(first.len(), 100_000);
        // The small frame is its own allocation, not a window into the big one.
        let (a, b) = (first.as_ptr() as usize, second.as_ptr() as usize);
        assert!(
            b < a || b >= a + first.capacity(),
            "small frame lies inside the big one"
        );
        // A large frame alone in the buffer takes the buffer over, leaving it empty.
        let mut alone = BytesMut::new();
        codec.encode(&big[..], &mut alone).unwrap();
        let taken = codec.decode(&mut alone).unwrap().unwrap();
        assert_eq!(taken.len(), 100_000);
        assert_eq!(alone.capacity(), 0);
    }

    #[test]
    fn a_small_frame_takes_a_buffer_only_when_told_it_holds_only_it() {
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME);
        let mut encoded = BytesMut::new();
        codec.encode(&b"request"[..], &mut encoded).unwrap();
        let inside = |frame: &BytesMut, buf_at: usize, len: usize| {
            let at = frame.as_ptr() as usize;
            at >= buf_at && at < buf_at + len
        };
        // Sized to what arrived, as the node's reader sizes it: taken over, no copy.
        codec.set_buffer_is_exact(true);
        let mut exact = BytesMut::from(&encoded[..]);
        let at = exact.as_ptr() as usize;
        let frame = codec.decode(&mut exact).unwrap().unwrap();
        assert_eq!(&frame[..], b"request");
        assert_eq!(frame.as_ptr() as usize, at + 4, "the frame is the buffer");
        assert_eq!(exact.capacity(), 0, "the buffer went with the frame");
        // Not told: copied, even from a buffer with no room to spare.
        codec.set_buffer_is_exact(false);
        let mut exact = BytesMut::from(&encoded[..]);
        let at = exact.as_ptr() as usize;
        let frame = codec.decode(&mut exact).unwrap().unwrap();
        assert!(!inside(&frame, at, encoded.len()), "copied");
        // A long-lived read buffer near its end: little room left after the frame, but the
        // consumed bytes before it share the allocation. The frame is copied out.
        let mut roomy = BytesMut::with_capacity(1024);
        let at = roomy.as_ptr() as usize;
        roomy.extend_from_slice(&[0u8; 1024 - 11]);
        roomy.advance(1024 - 11);
        roomy.extend_from_slice(&encoded);
        let frame = codec.decode(&mut roomy).unwrap().unwrap();
        assert_eq!(&frame[..], b"request");
        assert!(!inside(&frame, at, 1024), "copied out of the read buffer");
    }

    /// A frame's payload and what it pins.
    fn frame_and_pins(received: Option<Received>) -> (BytesMut, usize) {
        match received {
            Some(Received::Frame { frame, pins }) => (frame, pins),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn frames_of_one_read_share_it_and_say_they_pin_all_of_it() {
        let mut encoded = BytesMut::new();
        let mut plain = FrameCodec::new(DEFAULT_MAX_FRAME);
        for payload in [&b"first"[..], &b"second"[..], &b"third"[..]] {
            plain.encode(payload, &mut encoded).unwrap();
        }
        let read_len = encoded.len();
        let mut codec = SkippingFrameCodec::new(DEFAULT_MAX_FRAME);
        let mut buf = BytesMut::from(&encoded[..]);
        let at = buf.as_ptr() as usize;
        codec.set_buffer_is_exact(true);
        let frames: Vec<_> = (0..3)
            .map(|_| frame_and_pins(codec.decode(&mut buf).unwrap()))
            .collect();
        for ((frame, pins), payload) in frames.iter().zip(["first", "second", "third"]) {
            assert_eq!(&frame[..], payload.as_bytes());
            let p = frame.as_ptr() as usize;
            assert!(
                p > at && p < at + read_len,
                "split off the read, not copied"
            );
            assert_eq!(*pins, read_len, "pins the whole read");
        }
        assert!(buf.is_empty());

        // A read that ends in part of a frame: the frames before it share the read; once
        // the buffer must grow for the rest, later frames are copied out and pin only
        // themselves.
        let mut buf = BytesMut::from(&encoded[..encoded.len() - 2]);
        let (at, len) = (buf.as_ptr() as usize, buf.len());
        codec.set_buffer_is_exact(true);
        for _ in 0..2 {
            let (frame, pins) = frame_and_pins(codec.decode(&mut buf).unwrap());
            assert!((frame.as_ptr() as usize) < at + len);
            assert_eq!(pins, len);
        }
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(&encoded[encoded.len() - 2..]);
        let (frame, pins) = frame_and_pins(codec.decode(&mut buf).unwrap());
        assert_eq!(&frame[..], b"third");
        assert_eq!(pins, 5, "copied: it pins only itself");
        let p = frame.as_ptr() as usize;
        assert!(p < at || p >= at + len, "copied out of the grown buffer");

        // Not told: every frame is copied and pins only itself.
        let mut buf = BytesMut::from(&encoded[..]);
        let at = buf.as_ptr() as usize;
        for payload in ["first", "second", "third"] {
            let (frame, pins) = frame_and_pins(codec.decode(&mut buf).unwrap());
            assert_eq!(pins, payload.len());
            let p = frame.as_ptr() as usize;
            assert!(p < at || p >= at + read_len, "copied");
        }

        // A reader that drops its frames at once shares a long-lived buffer: unbounded.
        codec.set_frames_share_the_buffer(true);
        let mut buf = BytesMut::from(&encoded[..]);
        assert_eq!(
            frame_and_pins(codec.decode(&mut buf).unwrap()).1,
            usize::MAX
        );
    }

    #[test]
    fn a_frame_after_a_skipped_one_is_copied_out_of_an_exact_buffer() {
        let mut encoded = BytesMut::new();
        let mut unlimited = FrameCodec::new(DEFAULT_MAX_FRAME);
        unlimited.encode(&[7u8; 500][..], &mut encoded).unwrap();
        unlimited.encode(&b"after"[..], &mut encoded).unwrap();
        let mut codec = SkippingFrameCodec::new(100);
        let mut buf = BytesMut::from(&encoded[..]);
        let (at, len) = (buf.as_ptr() as usize, buf.len());
        codec.set_buffer_is_exact(true);
        assert!(matches!(
            codec.decode(&mut buf).unwrap(),
            Some(Received::TooLarge { len: 500, .. })
        ));
        let Some(Received::Frame { frame: after, .. }) = codec.decode(&mut buf).unwrap() else {
            panic!("the frame after the skipped one");
        };
        assert_eq!(&after[..], b"after");
        let p = after.as_ptr() as usize;
        assert!(
            p < at || p >= at + len,
            "a small frame must not keep the skipped bytes' buffer"
        );
    }

    #[test]
    fn the_exact_mark_is_forgotten_when_the_header_is_not_in_yet() {
        let mut encoded = BytesMut::new();
        FrameCodec::new(DEFAULT_MAX_FRAME)
            .encode(&b"small"[..], &mut encoded)
            .unwrap();
        for skipping in [false, true] {
            let mut plain = FrameCodec::new(DEFAULT_MAX_FRAME);
            let mut skipper = SkippingFrameCodec::new(DEFAULT_MAX_FRAME);
            let mut buf = BytesMut::from(&encoded[..2]);
            // Two bytes of the header: told exact, then the caller grows the buffer.
            let decoded = if skipping {
                skipper.set_buffer_is_exact(true);
                skipper.decode(&mut buf).unwrap().map(|_| ())
            } else {
                plain.set_buffer_is_exact(true);
                plain.decode(&mut buf).unwrap().map(|_| ())
            };
            assert!(decoded.is_none());
            buf.reserve(4096);
            buf.extend_from_slice(&encoded[2..]);
            let frame = if skipping {
                match skipper.decode(&mut buf).unwrap() {
                    Some(Received::Frame { frame, .. }) => frame,
                    other => panic!("{other:?}"),
                }
            } else {
                plain.decode(&mut buf).unwrap().unwrap()
            };
            assert_eq!(&frame[..], b"small");
            assert!(
                frame.capacity() < 64,
                "a 5-byte frame kept a grown buffer of {} bytes (skipping codec: {skipping})",
                frame.capacity()
            );
        }
    }

    #[test]
    fn frames_told_they_may_share_are_split_off_the_read_buffer() {
        let mut codec = FrameCodec::new(DEFAULT_MAX_FRAME);
        codec.set_frames_share_the_buffer(true);
        let mut buf = BytesMut::with_capacity(1024);
        for payload in [&b"first"[..], &b"second"[..], &[3u8; 300][..]] {
            codec.encode(payload, &mut buf).unwrap();
        }
        let at = buf.as_ptr() as usize;
        let frames: Vec<BytesMut> = (0..3)
            .map(|_| codec.decode(&mut buf).unwrap().unwrap())
            .collect();
        assert_eq!(&frames[0][..], b"first");
        assert_eq!(&frames[1][..], b"second");
        assert_eq!(&frames[2][..], &[3u8; 300][..]);
        for f in &frames[..2] {
            let p = f.as_ptr() as usize;
            assert!(p > at && p < at + 1024, "split off, not copied");
        }
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn a_limit_near_usize_max_does_not_overflow() {
        // Found by the frame_codec fuzz target: `header + len` overflowed.
        // A long header claiming `usize::MAX - 8` bytes, within both limits.
        let mut bytes = vec![0xff; 4];
        bytes.extend_from_slice(&(usize::MAX as u64 - 8).to_be_bytes());
        bytes.extend_from_slice(b"abc");
        for max in [usize::MAX, usize::MAX - 5] {
            let mut buf = BytesMut::from(&bytes[..]);
            assert!(FrameCodec::new(max).decode(&mut buf).unwrap().is_none());
            assert!(buf.capacity() <= bytes.len() + GROW_STEP + 64);
            let mut buf = BytesMut::from(&bytes[..]);
            assert!(SkippingFrameCodec::new(max)
                .decode(&mut buf)
                .unwrap()
                .is_none());
            assert!(matches!(
                FrameCodec::new(max).decode_eof(&mut BytesMut::from(&bytes[..])),
                Err(FrameError::Truncated)
            ));
        }
    }

    #[test]
    fn rejects_negative_lengths_and_truncation() {
        let mut codec = FrameCodec::new(256);
        assert!(matches!(
            decode_all(&mut codec, &(-2i32).to_be_bytes()),
            Err(FrameError::BadLength(-2))
        ));
        let mut buf = BytesMut::from(&[0u8, 0, 0, 9, 1, 2][..]);
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn encode_with_patches_length_and_refuses_oversize() {
        let mut buf = BytesMut::new();
        encode_frame_with(&mut buf, 16, |b| b.put_slice(b"xyz")).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 3, b'x', b'y', b'z']);
        let err = encode_frame_with(&mut buf, 16, |b| b.put_slice(&[0u8; 17])).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { len: 17, max: 16 }));
        assert_eq!(buf.len(), 7, "a refused frame leaves the buffer as it was");
        assert!(FrameCodec::new(4).encode(&b"12345"[..], &mut buf).is_err());
    }

    #[test]
    fn a_built_frame_has_its_header_and_refuses_oversize() {
        let mut f = FrameBuilder::default();
        f.put_slice(b"hello");
        assert_eq!(f.payload_len(), 5);
        assert_eq!(&f.finish(16).unwrap()[..], b"\0\0\0\x05hello");
        let mut big = FrameBuilder::default();
        big.put_slice(&[0u8; 17]);
        assert!(matches!(
            big.finish(16),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
    }

    #[test]
    fn an_oversized_frame_is_reported_as_soon_as_its_head_arrives() {
        let mut codec = SkippingFrameCodec::new(16);
        let mut buf = BytesMut::from(&(1_000_000i32).to_be_bytes()[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none(), "no head yet");
        buf.extend_from_slice(&[1u8; 100]);
        match codec.decode(&mut buf).unwrap() {
            Some(Received::TooLarge { len, head }) => {
                assert_eq!(len, 1_000_000);
                assert_eq!(head.len(), OVERSIZED_HEAD);
            }
            other => panic!("{other:?}"),
        }
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.is_empty(), "the rest is thrown away as it arrives");
    }

    #[test]
    fn an_oversized_frame_is_skipped_as_it_arrives_and_the_next_one_is_read() {
        let mut codec = SkippingFrameCodec::new(16);
        let mut wire = BytesMut::new();
        FrameCodec::new(1 << 20)
            .encode(&[7u8; 100_000][..], &mut wire)
            .unwrap();
        FrameCodec::new(16).encode(&b"next"[..], &mut wire).unwrap();
        // Fed in small pieces, as a socket would: the buffer never holds the big frame.
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(1000) {
            buf.extend_from_slice(chunk);
            while let Some(item) = codec.decode(&mut buf).unwrap() {
                out.push(item);
            }
            assert!(buf.len() <= 1000 + 4, "buffered {} bytes", buf.len());
        }
        match &out[..] {
            [Received::TooLarge { len, head }, Received::Frame { frame: next, .. }] => {
                assert_eq!(*len, 100_000);
                assert_eq!(&head[..], &[7u8; OVERSIZED_HEAD][..]);
                assert_eq!(&next[..], b"next");
            }
            other => panic!("{other:?}"),
        }
        // A connection cut in the middle of a skipped frame is a truncation.
        let mut codec = SkippingFrameCodec::new(16);
        let mut cut = BytesMut::from(&wire[..500]);
        assert!(matches!(
            codec.decode_eof(&mut cut),
            Ok(Some(Received::TooLarge { len: 100_000, .. }))
        ));
        assert!(matches!(
            codec.decode_eof(&mut cut),
            Err(FrameError::Truncated)
        ));
    }
}

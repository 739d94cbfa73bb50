//! The frame codecs: `check_frame_codec`. The properties are listed in `mod.rs`.

use bytes::{BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::{
    encode_frame_with, FrameBuilder, FrameCodec, FrameError, Received, SkippingFrameCodec,
    COPY_AT_MOST, DEFAULT_MAX_FRAME, GROW_STEP, HANDSHAKE_MAX_FRAME, OVERSIZED_HEAD,
};

use super::Rng;

/// Frame limits an input can pick: small ones directly (`0..=127`), or one of these.
const LIMITS: [usize; 8] = [
    0,
    OVERSIZED_HEAD,
    HANDSHAKE_MAX_FRAME,
    COPY_AT_MOST,
    COPY_AT_MOST + 1,
    DEFAULT_MAX_FRAME,
    i32::MAX as usize,
    usize::MAX,
];

fn pick_limit(b: u8) -> usize {
    if b & 0x80 == 0 {
        (b & 0x7f) as usize
    } else {
        LIMITS[(b & 7) as usize]
    }
}

/// Largest piece a stream is fed in (each piece is `1..=` this).
const PIECES: [usize; 8] = [1, 2, 3, 5, 12, 64, 4096, usize::MAX];

/// What a frame decoder yields, in the model's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item {
    Frame(Vec<u8>),
    TooLarge { len: u64, head: Vec<u8> },
}

/// How a frame stream ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum End {
    /// At a frame boundary.
    Clean,
    Truncated,
    TooLarge(u64),
    BadLength(i32),
}

/// The framing as the module docs describe it, on a whole stream at once: a 4-byte
/// big-endian signed length (-1: an 8-byte unsigned length follows) and the payload. Over
/// `max`, [`FrameCodec`] fails; [`SkippingFrameCodec`] (`skipping`) reports the length and
/// the payload's first [`OVERSIZED_HEAD`] bytes once those are there, and goes on after it.
pub(super) fn model(stream: &[u8], max: usize, skipping: bool) -> (Vec<Item>, End) {
    let mut items = Vec::new();
    let mut rest = stream;
    loop {
        if rest.is_empty() {
            return (items, End::Clean);
        }
        if rest.len() < 4 {
            return (items, End::Truncated);
        }
        let short = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let (header, len) = match short {
            -1 if rest.len() < 12 => return (items, End::Truncated),
            -1 => {
                let mut long = [0u8; 8];
                long.copy_from_slice(&rest[4..12]);
                (12, u64::from_be_bytes(long))
            }
            n if n < 0 => return (items, End::BadLength(n)),
            n => (4, n as u64),
        };
        let body = &rest[header..];
        if len > max as u64 {
            if !skipping {
                return (items, End::TooLarge(len));
            }
            let head = len.min(OVERSIZED_HEAD as u64) as usize;
            if body.len() < head {
                return (items, End::Truncated);
            }
            items.push(Item::TooLarge {
                len,
                head: body[..head].to_vec(),
            });
        }
        if (body.len() as u64) < len {
            return (items, End::Truncated);
        }
        let len = len as usize;
        if len <= max {
            items.push(Item::Frame(body[..len].to_vec()));
        }
        rest = &body[len..];
    }
}

fn end_of(e: FrameError, max: usize) -> End {
    match e {
        FrameError::TooLarge { len, max: said } => {
            assert_eq!(said, max, "TooLarge names another limit");
            End::TooLarge(len)
        }
        FrameError::BadLength(n) => End::BadLength(n),
        FrameError::Truncated => End::Truncated,
        FrameError::Io(e) => panic!("a codec made up an I/O error: {e}"),
    }
}

/// Feeds `stream` to `codec` in pieces of `1..=piece` bytes, decoding after each as a
/// `FramedRead` does (and `decode_eof` at the end), and checks what must hold between
/// pieces: nothing over the limit is yielded or kept buffered, and the buffer grows with
/// the bytes that arrived, never with the length a header claims.
///
/// With `exact`, the buffer is handled as the node's frame reader handles it: once
/// drained it is replaced by a fresh one, and a fresh buffer filled by one piece is marked
/// exact (`set_buffer_is_exact`) before it is decoded.
fn drive<D>(
    mut codec: D,
    max: usize,
    stream: &[u8],
    piece: usize,
    rng: &mut Rng,
    item: impl Fn(D::Item) -> Item,
    exact: Option<fn(&mut D)>,
) -> (Vec<Item>, End)
where
    D: Decoder<Error = FrameError>,
{
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut fed = 0usize;
    let mut rest = stream;
    let check = |item: &Item| match item {
        Item::Frame(f) => assert!(f.len() <= max, "a {}-byte frame over {max}", f.len()),
        Item::TooLarge { len, head } => {
            assert!(
                *len > max as u64,
                "{len} bytes reported over a limit of {max}"
            );
            assert_eq!(head.len() as u64, (*len).min(OVERSIZED_HEAD as u64));
        }
    };
    while !rest.is_empty() {
        let n = (1 + rng.below(piece.min(rest.len()))).min(rest.len());
        match exact.filter(|_| buf.is_empty()) {
            // As the reader makes it: an allocation of exactly what arrived.
            Some(mark) => {
                buf = BytesMut::from(&rest[..n]);
                mark(&mut codec);
            }
            None => buf.extend_from_slice(&rest[..n]),
        }
        rest = &rest[n..];
        fed += n;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(got)) => {
                    let got = item(got);
                    check(&got);
                    items.push(got);
                }
                Ok(None) => break,
                Err(e) => return (items, end_of(e, max)),
            }
        }
        // What stays buffered is a header or part of a frame within the limit.
        assert!(
            buf.len() < max.saturating_add(12),
            "{} bytes buffered with a limit of {max}",
            buf.len()
        );
        assert!(
            buf.capacity() <= 2 * (fed + GROW_STEP),
            "{} bytes reserved after {fed} arrived",
            buf.capacity()
        );
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(got)) => {
                let got = item(got);
                check(&got);
                items.push(got);
            }
            Ok(None) => return (items, End::Clean),
            Err(e) => return (items, end_of(e, max)),
        }
    }
}

/// A frame up to [`COPY_AT_MOST`] bytes has no room to spare, however it was made (copied,
/// split off, or an exact buffer taken over whole): a small frame that took over a read
/// buffer with room in it, grown or reused, would pin that room while it is stored.
fn keeps_no_more_than_itself(f: &BytesMut) {
    if f.len() <= COPY_AT_MOST {
        assert_eq!(
            f.capacity(),
            f.len(),
            "a {}-byte frame holds {} bytes",
            f.len(),
            f.capacity()
        );
    }
}

fn frame_item(f: BytesMut) -> Item {
    keeps_no_more_than_itself(&f);
    Item::Frame(f.to_vec())
}

/// What the skipping codec yielded, checked: a frame pins its own length, or, sharing
/// its buffer, at most `shared` bytes (what one read brings, or `usize::MAX` for a
/// long-lived buffer; 0 where no frame may share).
fn received_item_pinning_at_most(shared: usize) -> impl Fn(Received) -> Item {
    move |r| match r {
        Received::Frame { frame: f, pins } => {
            keeps_no_more_than_itself(&f);
            assert!(
                pins == f.len() || (pins > f.len() && pins <= shared),
                "a {}-byte frame says it pins {pins} bytes (shared at most {shared})",
                f.len()
            );
            Item::Frame(f.to_vec())
        }
        Received::TooLarge { len, head } => Item::TooLarge {
            len,
            head: head.to_vec(),
        },
    }
}

/// Input: a limit byte, two bytes that seed the split points, then the byte stream.
///
/// Both codecs, fed the stream in arbitrary pieces, yield exactly what the [`model`] of the
/// framing says (so the result never depends on how the bytes arrived), never a frame over
/// the limit, and [`SkippingFrameCodec`] reports an oversized frame as `TooLarge` and
/// carries on with the frame after it. Then the stream is cut into payloads, each framed
/// by [`FrameBuilder`], [`FrameCodec::encode`] and [`encode_frame_with`] (the same bytes),
/// and decoding the frames gives the payloads back.
pub fn check_frame_codec(data: &[u8]) {
    let (config, stream) = data.split_at(data.len().min(3));
    let config = [0, 1, 2].map(|i| config.get(i).copied().unwrap_or(0));
    let max = pick_limit(config[0]);
    let piece = PIECES[(config[1] & 7) as usize];
    let mut rng = Rng::new(&config[1..]);

    let framed = drive(
        FrameCodec::new(max),
        max,
        stream,
        piece,
        &mut rng,
        frame_item,
        None,
    );
    assert_eq!(framed, model(stream, max, false), "FrameCodec, limit {max}");
    // Plain; as the node's reader drives it (exact buffers taken whole); as the client's
    // does (frames split off the read buffer): the same frames, the model's.
    let expected = model(stream, max, true);
    for (how, share, exact, shared) in [
        ("", false, None, 0),
        (
            ", exact buffers",
            false,
            Some(mark_exact as fn(&mut SkippingFrameCodec)),
            piece,
        ),
        (", frames sharing the buffer", true, None, usize::MAX),
    ] {
        let mut codec = SkippingFrameCodec::new(max);
        codec.set_frames_share_the_buffer(share);
        let item = received_item_pinning_at_most(shared);
        let skipped = drive(codec, max, stream, piece, &mut rng, item, exact);
        assert_eq!(skipped, expected, "SkippingFrameCodec, limit {max}{how}");
    }

    // Round trip.
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = rng.below(rest.len().min(300) + 1);
        payloads.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    if config[1] & 0x80 != 0 {
        // One payload large enough that a frame alone in the buffer takes the buffer over.
        let fill: &[u8] = if stream.is_empty() { &[0x5a] } else { stream };
        let len = COPY_AT_MOST + 1 + rng.below(4096);
        payloads.insert(
            rng.below(payloads.len() + 1),
            fill.iter().copied().cycle().take(len).collect(),
        );
    }
    let limit = payloads.iter().map(Vec::len).max().unwrap_or(0);
    let mut wire = BytesMut::new();
    for p in &payloads {
        let mut built = FrameBuilder::with_capacity(rng.below(64));
        let cut = rng.below(p.len() + 1);
        built.put_slice(&p[..cut]);
        built.put_bytes(0xee, rng.below(8));
        built.truncate_payload(cut);
        built.put_slice(&p[cut..]);
        assert_eq!(built.payload(), &p[..]);
        assert_eq!(built.payload_len(), p.len());
        let built = built.finish(limit).expect("a payload within the limit");
        let mut encoded = BytesMut::new();
        FrameCodec::new(limit)
            .encode(&p[..], &mut encoded)
            .expect("a payload within the limit");
        let mut with = BytesMut::from(&b"before"[..]);
        encode_frame_with(&mut with, limit, |b| b.put_slice(p)).expect("within the limit");
        assert_eq!(
            &built[..],
            &encoded[..],
            "FrameBuilder and FrameCodec disagree"
        );
        assert_eq!(
            &with[6..],
            &encoded[..],
            "encode_frame_with and FrameCodec disagree"
        );
        if let Some(under) = p.len().checked_sub(1) {
            let mut over = FrameBuilder::default();
            over.put_slice(p);
            assert!(
                matches!(over.finish(under), Err(FrameError::TooLarge { len, max })
                if len == p.len() as u64 && max == under)
            );
            assert!(FrameCodec::new(under).encode(&p[..], &mut with).is_err());
            let before = with.clone();
            assert!(encode_frame_with(&mut with, under, |b| b.put_slice(p)).is_err());
            assert_eq!(
                with, before,
                "a refused frame must leave the buffer as it was"
            );
        }
        wire.extend_from_slice(&built);
    }
    // Byte-sized pieces are covered by the input stream; a large wire goes in larger ones.
    let piece = if wire.len() > 4096 {
        piece.max(512)
    } else {
        piece
    };
    let back = drive(
        FrameCodec::new(limit),
        limit,
        &wire,
        piece,
        &mut rng,
        frame_item,
        None,
    );
    let sent: Vec<Item> = payloads.iter().cloned().map(Item::Frame).collect();
    assert_eq!(
        back,
        (sent, End::Clean),
        "frames did not decode to their payloads"
    );
    // The skipping codec with the input's limit: the payloads within it, and the head of
    // each one over it, in order: it resynchronises after every oversized frame.
    let expected: Vec<Item> = payloads
        .iter()
        .map(|p| {
            if p.len() <= max {
                Item::Frame(p.clone())
            } else {
                Item::TooLarge {
                    len: p.len() as u64,
                    head: p[..p.len().min(OVERSIZED_HEAD)].to_vec(),
                }
            }
        })
        .collect();
    let expected = (expected, End::Clean);
    for exact in [None, Some(mark_exact as fn(&mut SkippingFrameCodec))] {
        let skipped = drive(
            SkippingFrameCodec::new(max),
            max,
            &wire,
            piece,
            &mut rng,
            received_item_pinning_at_most(if exact.is_some() { piece } else { 0 }),
            exact,
        );
        let how = if exact.is_some() {
            ", exact buffers"
        } else {
            ""
        };
        assert_eq!(skipped, expected, "skipping with limit {max}{how}");
    }
}

/// How the node's reader marks a buffer made for one read.
fn mark_exact(codec: &mut SkippingFrameCodec) {
    codec.set_buffer_is_exact(true);
}

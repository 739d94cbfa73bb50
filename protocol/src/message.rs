//! The native dialect: MessagePack envelopes with request ids, so one connection carries many
//! calls in flight and replies arrive in any order.
//!
//! ```text
//! client → node   hello     ["syncman", version, max_frame, heartbeat_ttl_ms]
//!                           (the last two optional)
//!                 request   [0, id, object, method, [args...]]
//!                 cancel    [1, id]            withdraw a parked call (dropped future)
//!                 release   [2, object]        drop one reference to an anonymous object
//!                 heartbeat [3]                the client is alive (no answer)
//! node → client   response  [id, 0, value]  |  [id, 1, kind, message]
//! ```
//!
//! The node answers the hello with response id 0: `[version, max_frame, heartbeat_ttl_ms]`
//! when the hello gave the client's frame limit, so each side learns the other's (a request
//! over the node's limit fails on the client before it is sent) and the client learns the
//! heartbeat deadline the node granted (nil: none), or just the version otherwise. A client
//! that asked for a heartbeat deadline and misses it is told with a last response id 0,
//! `SessionExpired`, before the node closes the connection.
//! Arguments and
//! results are raw MessagePack values: the node slices them out of the frame without
//! decoding them unless the method needs to look inside.

use bytes::buf::Writer;
use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{ErrorKind, RemoteError};
use crate::value::{DecodeError, Reader, Value};

/// First element of the hello frame; also how the node tells the native dialect from a pickle.
pub const NATIVE_MAGIC: &str = "syncman";
/// Version of the native dialect this build speaks.
pub const NATIVE_VERSION: u64 = 1;
/// The object id of the node itself (create, get-or-create, delete, shutdown, ...).
pub const CONTROL_OBJECT: u64 = 0;
/// The response id that answers a hello.
pub const HELLO_ID: u64 = 0;
/// Request id for calls whose reply nobody awaits (releases sent from a destructor); the
/// node answers it like any other and the client discards the answer.
pub const FORGET_ID: u64 = u64::MAX;

const TAG_REQUEST: u64 = 0;
const TAG_CANCEL: u64 = 1;
const TAG_RELEASE: u64 = 2;
const TAG_HEARTBEAT: u64 = 3;

/// A decoded client frame. Method names and arguments borrow from the frame.
#[derive(Debug)]
pub enum ClientMessage<'a> {
    Request {
        id: u64,
        object: u64,
        method: &'a str,
        args: Args<'a>,
    },
    Cancel {
        id: u64,
    },
    Release {
        object: u64,
    },
    Heartbeat,
}

/// Writes MessagePack into a buffer (infallible: a `BufMut` grows as needed).
fn w<B: BufMut>(dst: &mut B) -> Writer<&mut B> {
    dst.writer()
}

/// What a client's hello says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub version: u64,
    /// The largest frame the client sends or accepts; `None` from a client that does not
    /// say (the node then assumes its own limit).
    pub max_frame: Option<u64>,
    /// How long the node may hear nothing from the client before it ends the session
    /// (the client heartbeats well within it); `None`: the client does not heartbeat, and
    /// its session lives as long as its connection.
    pub heartbeat_ttl_ms: Option<u64>,
}

/// A hello that does not state a frame limit.
pub fn encode_hello(dst: &mut impl BufMut) {
    let _ = rmp::encode::write_array_len(&mut w(dst), 2);
    let _ = rmp::encode::write_str(&mut w(dst), NATIVE_MAGIC);
    let _ = rmp::encode::write_uint(&mut w(dst), NATIVE_VERSION);
}

/// A hello that states the client's frame limit and, if it heartbeats, the deadline it
/// asks for.
pub fn encode_hello_with_limit(
    dst: &mut impl BufMut,
    max_frame: u64,
    heartbeat_ttl_ms: Option<u64>,
) {
    let len = if heartbeat_ttl_ms.is_some() { 4 } else { 3 };
    let _ = rmp::encode::write_array_len(&mut w(dst), len);
    let _ = rmp::encode::write_str(&mut w(dst), NATIVE_MAGIC);
    let _ = rmp::encode::write_uint(&mut w(dst), NATIVE_VERSION);
    let _ = rmp::encode::write_uint(&mut w(dst), max_frame);
    if let Some(ttl) = heartbeat_ttl_ms {
        let _ = rmp::encode::write_uint(&mut w(dst), ttl);
    }
}

/// Reads a hello; `None` if the frame is not a native hello at all (another dialect).
pub fn decode_hello(frame: &[u8]) -> Option<Result<Hello, DecodeError>> {
    let mut r = Reader::new(frame);
    let len = r.read_array_len().ok()?;
    if !(2..=4).contains(&len) || r.read_str().ok()? != NATIVE_MAGIC {
        return None;
    }
    let hello = (|| {
        let version = r.read_u64()?;
        let max_frame = if len >= 3 { Some(r.read_u64()?) } else { None };
        let heartbeat_ttl_ms = if len == 4 { Some(r.read_u64()?) } else { None };
        Ok(Hello {
            version,
            max_frame,
            heartbeat_ttl_ms,
        })
    })();
    Some(hello)
}

/// What the node's answer to a hello that stated a limit says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelloAnswer {
    pub max_frame: Option<u64>,
    /// The heartbeat deadline the node granted (the client's, within the node's bounds).
    pub heartbeat_ttl_ms: Option<u64>,
}

/// The node's answer to a hello that stated a limit: its version, its own limit, and the
/// heartbeat deadline it granted.
pub fn encode_hello_answer(max_frame: u64, heartbeat_ttl_ms: Option<u64>) -> Bytes {
    let mut out = BytesMut::new();
    let _ = rmp::encode::write_array_len(&mut w(&mut out), 3);
    let _ = rmp::encode::write_uint(&mut w(&mut out), NATIVE_VERSION);
    let _ = rmp::encode::write_uint(&mut w(&mut out), max_frame);
    match heartbeat_ttl_ms {
        Some(ttl) => {
            let _ = rmp::encode::write_uint(&mut w(&mut out), ttl);
        }
        None => {
            let _ = rmp::encode::write_nil(&mut w(&mut out));
        }
    }
    out.freeze()
}

/// Reads the node's answer to a hello: empty from a node that answered with its version
/// alone.
pub fn decode_hello_answer(answer: &[u8]) -> Result<HelloAnswer, DecodeError> {
    let mut r = Reader::new(answer);
    match r.read_array_len() {
        Ok(n @ 2..=3) => {
            r.read_u64()?;
            let max_frame = Some(r.read_u64()?);
            let heartbeat_ttl_ms = match (n, r.read_value()) {
                (3, Ok(Value::Int(ttl))) => u64::try_from(ttl).ok(),
                _ => None,
            };
            Ok(HelloAnswer {
                max_frame,
                heartbeat_ttl_ms,
            })
        }
        _ => Ok(HelloAnswer::default()),
    }
}

/// A heartbeat: the client is alive; nothing is answered.
pub fn encode_heartbeat(dst: &mut impl BufMut) {
    let mut wr = w(dst);
    let _ = rmp::encode::write_array_len(&mut wr, 1);
    let _ = rmp::encode::write_uint(&mut wr, TAG_HEARTBEAT);
}

/// The request id at the start of a request envelope (what an oversized frame's first
/// bytes tell); `None` if they are not the start of a request.
pub fn peek_request_id(head: &[u8]) -> Option<u64> {
    let mut r = Reader::new(head);
    if r.read_array_len().ok()? != 5 || r.read_u64().ok()? != TAG_REQUEST {
        return None;
    }
    r.read_u64().ok()
}

/// The response id at the start of a response envelope.
pub fn peek_response_id(head: &[u8]) -> Option<u64> {
    let mut r = Reader::new(head);
    if !(3..=4).contains(&r.read_array_len().ok()?) {
        return None;
    }
    r.read_u64().ok()
}

/// Writes the head of a request; the caller appends the arguments as one MessagePack array
/// (a serialised tuple, or [`encode_args_len`] followed by each encoded argument).
pub fn encode_request_head(dst: &mut impl BufMut, id: u64, object: u64, method: &str) {
    let mut wr = w(dst);
    let _ = rmp::encode::write_array_len(&mut wr, 5);
    let _ = rmp::encode::write_uint(&mut wr, TAG_REQUEST);
    let _ = rmp::encode::write_uint(&mut wr, id);
    let _ = rmp::encode::write_uint(&mut wr, object);
    let _ = rmp::encode::write_str(&mut wr, method);
}

/// Writes the header of an argument array of `n` items, each appended encoded after it.
pub fn encode_args_len(dst: &mut impl BufMut, n: u32) {
    let _ = rmp::encode::write_array_len(&mut w(dst), n);
}

pub fn encode_cancel(dst: &mut impl BufMut, id: u64) {
    let mut wr = w(dst);
    let _ = rmp::encode::write_array_len(&mut wr, 2);
    let _ = rmp::encode::write_uint(&mut wr, TAG_CANCEL);
    let _ = rmp::encode::write_uint(&mut wr, id);
}

pub fn encode_release(dst: &mut impl BufMut, object: u64) {
    let mut wr = w(dst);
    let _ = rmp::encode::write_array_len(&mut wr, 2);
    let _ = rmp::encode::write_uint(&mut wr, TAG_RELEASE);
    let _ = rmp::encode::write_uint(&mut wr, object);
}

/// Decodes a client's frame: a request, cancel, release or heartbeat.
///
/// `pins`: what any part of `frame` kept alive would keep with it, as the codec said
/// ([`Received::Frame`](crate::frame::Received::Frame)); `frame.len()`, or 0, for a frame
/// that is its own allocation. Arguments taken to be stored are copied out when they are small
/// beside it ([`Args::raw`]).
pub fn decode_client_message(frame: &Bytes, pins: usize) -> Result<ClientMessage<'_>, DecodeError> {
    let mut r = Reader::new(frame);
    let len = r.read_array_len()?;
    let tag = r.read_u64()?;
    match (tag, len) {
        (TAG_REQUEST, 5) => {
            let id = r.read_u64()?;
            let object = r.read_u64()?;
            let method = r.read_str()?;
            let nargs = r.read_array_len()?;
            let start = r.position();
            // Validate the whole argument list once, so methods can slice it freely.
            for _ in 0..nargs {
                r.skip_value()?;
            }
            if !r.is_empty() {
                return Err(DecodeError("trailing bytes after request"));
            }
            Ok(ClientMessage::Request {
                id,
                object,
                method,
                args: Args {
                    frame,
                    pins: pins.max(frame.len()),
                    pos: start,
                    remaining: nargs,
                    taken: 0,
                },
            })
        }
        (TAG_CANCEL, 2) => Ok(ClientMessage::Cancel { id: r.read_u64()? }),
        (TAG_RELEASE, 2) => Ok(ClientMessage::Release {
            object: r.read_u64()?,
        }),
        (TAG_HEARTBEAT, 1) => Ok(ClientMessage::Heartbeat),
        _ => Err(DecodeError("unknown message")),
    }
}

/// Writes a response payload (no frame header).
pub fn encode_response(dst: &mut impl BufMut, id: u64, result: &Result<Bytes, RemoteError>) {
    match result {
        Ok(value) => {
            let _ = rmp::encode::write_array_len(&mut w(dst), 3);
            let _ = rmp::encode::write_uint(&mut w(dst), id);
            let _ = rmp::encode::write_uint(&mut w(dst), 0);
            dst.put_slice(value);
        }
        Err(e) => {
            let mut wr = w(dst);
            let _ = rmp::encode::write_array_len(&mut wr, 4);
            let _ = rmp::encode::write_uint(&mut wr, id);
            let _ = rmp::encode::write_uint(&mut wr, 1);
            let _ = rmp::encode::write_str(&mut wr, e.kind.as_str());
            let _ = rmp::encode::write_str(&mut wr, &e.message);
        }
    }
}

/// A decoded response: the request id and the raw result value or the remote error.
pub fn decode_response(frame: Bytes) -> Result<(u64, Result<Bytes, RemoteError>), DecodeError> {
    let mut r = Reader::new(&frame);
    let len = r.read_array_len()?;
    let id = r.read_u64()?;
    match (r.read_u64()?, len) {
        (0, 3) => {
            let range = r.skip_value()?;
            Ok((id, Ok(value_of(frame, range))))
        }
        (1, 4) => {
            let kind = ErrorKind::from_name(r.read_str()?);
            let message = r.read_str()?.to_owned();
            Ok((id, Err(RemoteError { kind, message })))
        }
        _ => Err(DecodeError("unknown response status")),
    }
}

/// The bytes of `frame` in `range`. The result value ends its frame, and then the frame
/// itself is narrowed: `slice` of a `Bytes` made from a `Vec` would allocate to share it.
fn value_of(mut frame: Bytes, range: std::ops::Range<usize>) -> Bytes {
    if range.end != frame.len() {
        return frame.slice(range);
    }
    frame.advance(range.start);
    frame
}

/// The positional arguments of a request, read one at a time. Reading past the end is a
/// `TypeError` naming the missing argument, as Python would raise; [`Args::finish`] rejects
/// arguments left over.
///
/// They borrow the frame they arrived in rather than share it: a request's arguments are
/// mostly looked at and dropped, and sharing a frame read into its own buffer would cost an
/// allocation per request (`bytes` promotes a buffer to shared on its first clone). Only
/// what is stored ([`raw`](Self::raw)) becomes a `Bytes` of its own.
#[derive(Debug, Clone)]
pub struct Args<'a> {
    frame: &'a Bytes,
    /// What a part of `frame` kept alive keeps with it: at least the frame.
    pins: usize,
    pos: usize,
    remaining: u32,
    taken: u32,
}

/// An argument list made on the node's side (converted from a pickle, or to undo a call):
/// it owns its encoding, and lends it as [`Args`] as often as needed.
#[derive(Debug, Clone)]
pub struct ArgList {
    encoded: Bytes,
    /// Where the first argument starts, after the array's head.
    start: usize,
    len: u32,
}

impl ArgList {
    /// `values`, encoded as one argument array.
    pub fn of(values: &[Value]) -> ArgList {
        // Encoded in place, as `Value::Array` would encode them, without copying them into one.
        let mut array = Vec::with_capacity(16 * values.len() + 1);
        let _ = rmp::encode::write_array_len(&mut array, values.len() as u32);
        let start = array.len();
        for value in values {
            value.encode(&mut array);
        }
        ArgList {
            encoded: array.into(),
            start,
            len: values.len() as u32,
        }
    }

    /// An encoded array, checked to hold whole values.
    pub fn from_array(encoded: Bytes) -> Result<ArgList, DecodeError> {
        let args = Args::from_array(&encoded)?;
        let (start, len) = (args.pos, args.remaining);
        Ok(ArgList {
            encoded,
            start,
            len,
        })
    }

    /// The arguments, to read.
    pub fn args(&self) -> Args<'_> {
        Args {
            frame: &self.encoded,
            pins: self.encoded.len(),
            pos: self.start,
            remaining: self.len,
            taken: 0,
        }
    }
}

/// What [`Args::empty`] borrows.
static NO_ARGS: Bytes = Bytes::new();

impl<'a> Args<'a> {
    /// Arguments from a standalone encoded array (e.g. constructor arguments), which the
    /// caller keeps while they are read.
    pub fn from_array(encoded: &'a Bytes) -> Result<Args<'a>, DecodeError> {
        let mut r = Reader::new(encoded);
        let n = r.read_array_len()?;
        let pos = r.position();
        for _ in 0..n {
            r.skip_value()?;
        }
        Ok(Args {
            pins: encoded.len(),
            frame: encoded,
            pos,
            remaining: n,
            taken: 0,
        })
    }

    /// No arguments.
    pub fn empty() -> Args<'static> {
        Args {
            frame: &NO_ARGS,
            pins: 0,
            pos: 0,
            remaining: 0,
            taken: 0,
        }
    }

    /// Arguments not read yet.
    pub fn len(&self) -> usize {
        self.remaining as usize
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The next argument's encoded bytes, to store: shared with the frame, unless it is
    /// a small part of what the frame pins, which a stored argument would keep alive
    /// ([`to_keep`](crate::value::to_keep)).
    pub fn raw(&mut self, name: &str) -> Result<Bytes, RemoteError> {
        let range = self.next_range().ok_or_else(|| self.missing(name))?;
        Ok(self.keep(range))
    }

    /// The next argument's encoded bytes to store, if there is one (see [`raw`](Self::raw)).
    pub fn opt_raw(&mut self) -> Option<Bytes> {
        let range = self.next_range()?;
        Some(self.keep(range))
    }

    /// The next argument's encoded bytes, to look at (a key to find, a value to copy or
    /// answer with), borrowed from the frame.
    pub fn lend(&mut self, name: &str) -> Result<&'a [u8], RemoteError> {
        self.opt_lend().ok_or_else(|| self.missing(name))
    }

    /// The next argument's encoded bytes to look at, if there is one (see
    /// [`lend`](Self::lend)).
    pub fn opt_lend(&mut self) -> Option<&'a [u8]> {
        let frame: &'a Bytes = self.frame;
        self.next_range().map(|range| &frame[range])
    }

    /// Where the next argument lies in the frame, and steps past it.
    fn next_range(&mut self) -> Option<std::ops::Range<usize>> {
        if self.remaining == 0 {
            return None;
        }
        let mut r = Reader::new(&self.frame[self.pos..]);
        // Validated when the request was decoded.
        let range = r.skip_value().ok()?;
        let out = self.pos + range.start..self.pos + range.end;
        self.pos += range.end;
        self.remaining -= 1;
        self.taken += 1;
        Some(out)
    }

    /// The part of the frame at `range` as a `Bytes` to store: shared, or copied out when
    /// sharing would pin much more than it holds.
    fn keep(&self, range: std::ops::Range<usize>) -> Bytes {
        if crate::value::shares_well(range.len(), self.pins) {
            self.frame.slice(range)
        } else {
            Bytes::copy_from_slice(&self.frame[range])
        }
    }

    fn missing(&self, name: &str) -> RemoteError {
        RemoteError::type_error(format!(
            "missing required argument '{name}' (position {})",
            self.taken + 1
        ))
    }

    /// The next argument decoded.
    pub fn value(&mut self, name: &str) -> Result<Value, RemoteError> {
        let lent = self.lend(name)?;
        Ok(crate::value::decode(lent)?)
    }

    /// The next argument decoded, if present.
    pub fn opt_value(&mut self) -> Result<Option<Value>, RemoteError> {
        match self.opt_lend() {
            Some(lent) => Ok(Some(crate::value::decode(lent)?)),
            None => Ok(None),
        }
    }

    /// The next argument as an integer (bool counts, as in Python).
    pub fn int(&mut self, name: &str) -> Result<i128, RemoteError> {
        let v = self.value(name)?;
        v.as_int().ok_or_else(|| {
            RemoteError::type_error(format!(
                "argument '{name}' must be an integer, not '{}'",
                v.type_name()
            ))
        })
    }

    /// The next argument as a string.
    pub fn string(&mut self, name: &str) -> Result<String, RemoteError> {
        match self.value(name)? {
            Value::Str(s) => Ok(s),
            v => Err(RemoteError::type_error(format!(
                "argument '{name}' must be a str, not '{}'",
                v.type_name()
            ))),
        }
    }

    /// Everything not read yet, as an encoded array (e.g. to pass constructor arguments on).
    pub fn rest(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        let _ = rmp::encode::write_array_len(&mut w(&mut out), self.remaining);
        out.put_slice(&self.frame[self.pos..]);
        self.pos = self.frame.len();
        self.taken += self.remaining;
        self.remaining = 0;
        out.freeze()
    }

    /// Rejects arguments left over.
    pub fn finish(&self) -> Result<(), RemoteError> {
        if self.remaining == 0 {
            Ok(())
        } else {
            Err(RemoteError::type_error(format!(
                "takes {} positional argument{} but {} were given",
                self.taken,
                if self.taken == 1 { "" } else { "s" },
                self.taken + self.remaining
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, args: &[Value]) -> Bytes {
        let mut b = BytesMut::new();
        encode_request_head(&mut b, 7, 3, method);
        encode_args_len(&mut b, args.len() as u32);
        for a in args {
            b.put_slice(&a.to_bytes());
        }
        b.freeze()
    }

    #[test]
    fn requests_round_trip_with_raw_args() {
        let frame = request("__setitem__", &[Value::Str("k".into()), Value::Int(5)]);
        match decode_client_message(&frame, 0).unwrap() {
            ClientMessage::Request {
                id,
                object,
                method,
                mut args,
            } => {
                assert_eq!((id, object, method), (7, 3, "__setitem__"));
                assert_eq!(args.len(), 2);
                assert_eq!(args.string("key").unwrap(), "k");
                assert_eq!(&args.raw("value").unwrap()[..], &[5]);
                args.finish().unwrap();
                assert_eq!(args.raw("x").unwrap_err().kind, ErrorKind::TypeError);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_argument_kept_from_a_frame_that_pins_a_whole_read_is_copied_out() {
        let frame = request("m", &[Value::Int(7), Value::Int(8), Value::Int(9)]);
        let inside = |part: &[u8]| {
            let (p, at) = (part.as_ptr() as usize, frame.as_ptr() as usize);
            p >= at && p < at + frame.len()
        };
        // The frame alone: small, so what is kept may share it.
        let ClientMessage::Request { mut args, .. } = decode_client_message(&frame, 0).unwrap()
        else {
            panic!()
        };
        assert!(inside(&args.raw("a").unwrap()));
        // Sharing a read of 4 KiB: a stored argument is copied out, a lent one is not.
        let ClientMessage::Request { mut args, .. } = decode_client_message(&frame, 4096).unwrap()
        else {
            panic!()
        };
        let kept = args.raw("a").unwrap();
        assert_eq!(&kept[..], &[7]);
        assert!(!inside(&kept), "a kept argument must not pin the read");
        let lent = args.lend("b").unwrap();
        assert_eq!(lent, &[8]);
        assert!(inside(lent), "a lent argument is not copied");
        assert_eq!(args.int("c").unwrap(), 9);
        args.finish().unwrap();
    }

    #[test]
    fn leftover_args_are_a_type_error() {
        let frame = request("m", &[Value::Int(1), Value::Int(2)]);
        let ClientMessage::Request { mut args, .. } = decode_client_message(&frame, 0).unwrap()
        else {
            panic!()
        };
        args.raw("a").unwrap();
        let err = args.finish().unwrap_err();
        assert_eq!(err.kind, ErrorKind::TypeError);
        assert!(
            err.message.contains("1 positional argument but 2"),
            "{}",
            err.message
        );
    }

    #[test]
    fn cancel_release_and_responses() {
        let mut b = BytesMut::new();
        encode_cancel(&mut b, 9);
        assert!(matches!(
            decode_client_message(&b.split().freeze(), 0).unwrap(),
            ClientMessage::Cancel { id: 9 }
        ));
        encode_release(&mut b, 4);
        assert!(matches!(
            decode_client_message(&b.split().freeze(), 0).unwrap(),
            ClientMessage::Release { object: 4 }
        ));
        encode_response(&mut b, 5, &Ok(Value::Str("v".into()).to_bytes()));
        let (id, res) = decode_response(b.split().freeze()).unwrap();
        assert_eq!(id, 5);
        assert_eq!(
            crate::value::decode(&res.unwrap()).unwrap(),
            Value::Str("v".into())
        );
        encode_response(&mut b, 6, &Err(RemoteError::key_error("'x'")));
        let (_, res) = decode_response(b.split().freeze()).unwrap();
        assert_eq!(res.unwrap_err(), RemoteError::key_error("'x'"));
    }

    #[test]
    fn garbage_is_a_decode_error() {
        for bad in [
            &b""[..],
            b"\x95\x00",
            b"\x92\x07\x01",
            b"\x80",
            b"\x95\x00\x01\x02\xa1m\x91",
        ] {
            assert!(decode_client_message(&Bytes::copy_from_slice(bad), 0).is_err());
        }
    }

    #[test]
    fn hello_is_recognised_and_pickles_are_not() {
        let mut b = BytesMut::new();
        encode_hello(&mut b);
        let plain = Hello {
            version: NATIVE_VERSION,
            max_frame: None,
            heartbeat_ttl_ms: None,
        };
        assert_eq!(decode_hello(&b.split()), Some(Ok(plain)));
        encode_hello_with_limit(&mut b, 4096, None);
        let stated = Hello {
            max_frame: Some(4096),
            ..plain
        };
        assert_eq!(decode_hello(&b.split()), Some(Ok(stated)));
        encode_hello_with_limit(&mut b, 4096, Some(10_000));
        let heartbeating = Hello {
            heartbeat_ttl_ms: Some(10_000),
            ..stated
        };
        assert_eq!(decode_hello(&b.split()), Some(Ok(heartbeating)));
        assert_eq!(decode_hello(b"\x80\x04\x95"), None);
        assert_eq!(
            decode_hello_answer(&encode_hello_answer(77, Some(5))),
            Ok(HelloAnswer {
                max_frame: Some(77),
                heartbeat_ttl_ms: Some(5)
            })
        );
        assert_eq!(
            decode_hello_answer(&encode_hello_answer(77, None))
                .unwrap()
                .heartbeat_ttl_ms,
            None
        );
        assert_eq!(decode_hello_answer(&[0x01]), Ok(HelloAnswer::default()));
        encode_heartbeat(&mut b);
        assert!(matches!(
            decode_client_message(&b.split().freeze(), 0),
            Ok(ClientMessage::Heartbeat)
        ));
    }

    #[test]
    fn ids_are_read_from_the_start_of_an_envelope() {
        let head = request("m", &[Value::Str("x".repeat(100))]);
        assert_eq!(peek_request_id(&head[..12]), Some(7));
        let mut b = BytesMut::new();
        encode_response(&mut b, 9, &Ok(Value::Str("y".repeat(100)).to_bytes()));
        assert_eq!(peek_response_id(&b.split()[..6]), Some(9));
        encode_cancel(&mut b, 3);
        assert_eq!(peek_request_id(&b.split()[..]), None);
    }
}

//! The native envelopes: `check_envelope`. The properties are listed in `mod.rs`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::OVERSIZED_HEAD;
use crate::message::{
    decode_client_message, decode_hello, decode_hello_answer, decode_response, encode_args_len,
    encode_cancel, encode_heartbeat, encode_hello, encode_hello_answer, encode_hello_with_limit,
    encode_release, encode_request_head, encode_response, peek_request_id, peek_response_id, Args,
    ClientMessage, Hello, NATIVE_VERSION,
};
use crate::value::{self, Reader, Value};
use crate::ErrorKind;

use super::check_value;
use super::value::{check_decoded, same};

/// Input: one frame's payload, read as every kind of envelope.
///
/// A request's arguments are each one whole MessagePack value (that decodes, or fails
/// cleanly, the same way through [`Args`] as through [`value::decode`]) and together fill
/// the rest of the frame; a request, cancel, release or heartbeat, a hello, a hello answer
/// and a response each re-encode to an envelope that decodes to the same; the ids peeked
/// from the first [`OVERSIZED_HEAD`] bytes of an envelope are the ids it holds; a pickle
/// (0x80) is never taken for a hello.
pub fn check_envelope(data: &[u8]) {
    let frame = Bytes::copy_from_slice(data);
    let head = &data[..data.len().min(OVERSIZED_HEAD)];

    match decode_client_message(&frame, 0) {
        Ok(ClientMessage::Request {
            id,
            object,
            method,
            args,
        }) => {
            let raws = check_args(&args);
            let joined: Vec<u8> = raws.iter().flat_map(|r| r.iter().copied()).collect();
            assert!(
                data.ends_with(&joined),
                "the arguments do not end the frame"
            );
            assert_eq!(peek_request_id(data), Some(id));
            assert_eq!(peek_request_id(head), Some(id), "the id is not in the head");
            let mut again = BytesMut::new();
            encode_request_head(&mut again, id, object, method);
            encode_args_len(&mut again, raws.len() as u32);
            for raw in &raws {
                again.put_slice(raw);
            }
            let again = again.freeze();
            match decode_client_message(&again, 0) {
                Ok(ClientMessage::Request {
                    id: id2,
                    object: object2,
                    method: method2,
                    args: args2,
                }) => {
                    assert_eq!((id2, object2, method2), (id, object, method));
                    assert_eq!(check_args(&args2), raws);
                }
                other => panic!("a re-encoded request decoded as {other:?}"),
            }
        }
        Ok(ClientMessage::Cancel { id }) => {
            let mut again = BytesMut::new();
            encode_cancel(&mut again, id);
            assert!(matches!(
                decode_client_message(&again.freeze(), 0),
                Ok(ClientMessage::Cancel { id: id2 }) if id2 == id
            ));
        }
        Ok(ClientMessage::Release { object }) => {
            let mut again = BytesMut::new();
            encode_release(&mut again, object);
            assert!(matches!(
                decode_client_message(&again.freeze(), 0),
                Ok(ClientMessage::Release { object: o }) if o == object
            ));
        }
        Ok(ClientMessage::Heartbeat) => {
            let mut again = BytesMut::new();
            encode_heartbeat(&mut again);
            assert!(matches!(
                decode_client_message(&again.freeze(), 0),
                Ok(ClientMessage::Heartbeat)
            ));
        }
        Err(_) => {}
    }

    if let Ok(args) = Args::from_array(&frame) {
        check_args(&args);
    }

    if data.first() == Some(&0x80) {
        assert_eq!(decode_hello(data), None, "a pickle taken for a hello");
    }
    if let Some(Ok(hello)) = decode_hello(data) {
        let mut again = BytesMut::new();
        match (hello.max_frame, hello.heartbeat_ttl_ms) {
            (None, None) => encode_hello(&mut again),
            (Some(max), ttl) => encode_hello_with_limit(&mut again, max, ttl),
            (None, Some(_)) => panic!("a heartbeat deadline without a frame limit: {hello:?}"),
        }
        let again = again.freeze();
        let ours = Hello {
            version: NATIVE_VERSION,
            ..hello
        };
        assert_eq!(decode_hello(&again), Some(Ok(ours)));
    }

    if let Ok(answer) = decode_hello_answer(data) {
        if let Some(max) = answer.max_frame {
            let again = encode_hello_answer(max, answer.heartbeat_ttl_ms);
            assert_eq!(decode_hello_answer(&again), Ok(answer));
        }
    }

    match decode_response(frame.clone()) {
        Ok((id, result)) => {
            assert_eq!(peek_response_id(data), Some(id));
            assert_eq!(
                peek_response_id(head),
                Some(id),
                "the id is not in the head"
            );
            if let Ok(raw) = &result {
                let mut r = Reader::new(raw);
                assert_eq!(r.skip_value(), Ok(0..raw.len()), "a result is one value");
                check_value(raw);
            }
            let mut again = BytesMut::new();
            encode_response(&mut again, id, &result);
            assert_eq!(decode_response(again.freeze()), Ok((id, result)));
        }
        Err(_) => {
            let _ = peek_response_id(data);
        }
    }
}

/// Reads every argument of `args` (a clone) every way, and returns their encodings.
fn check_args(args: &Args) -> Vec<Bytes> {
    let n = args.len();
    let mut raw_reader = args.clone();
    let mut raws = Vec::with_capacity(n);
    while let Some(raw) = raw_reader.opt_raw() {
        let mut r = Reader::new(&raw);
        assert_eq!(
            r.skip_value(),
            Ok(0..raw.len()),
            "an argument is one whole value"
        );
        raws.push(raw);
    }
    assert_eq!(raws.len(), n, "Args::len disagrees with the arguments read");
    assert!(raw_reader.is_empty());
    raw_reader.finish().expect("no argument left over");
    assert!(raw_reader.raw("past").is_err());

    let mut values = args.clone();
    let mut ints = args.clone();
    let mut strings = args.clone();
    for raw in &raws {
        let decoded = value::decode(raw);
        match values.opt_value() {
            Ok(Some(v)) => assert!(same(&v, decoded.as_ref().expect("decodes"))),
            Ok(None) => panic!("fewer values than arguments"),
            Err(e) => {
                assert!(decoded.is_err());
                assert_eq!(e.kind, ErrorKind::ProtocolError);
            }
        }
        match ints.int("i") {
            Ok(i) => assert_eq!(decoded.as_ref().ok().and_then(Value::as_int), Some(i)),
            Err(e) => assert!(matches!(
                e.kind,
                ErrorKind::TypeError | ErrorKind::ProtocolError
            )),
        }
        match strings.string("s") {
            Ok(s) => assert_eq!(decoded.as_ref().ok(), Some(&Value::Str(s))),
            Err(e) => assert!(matches!(
                e.kind,
                ErrorKind::TypeError | ErrorKind::ProtocolError
            )),
        }
        if let Ok(v) = decoded {
            check_decoded(raw, &v);
        }
    }
    assert!(matches!(values.opt_value(), Ok(None)));

    let mut rest = args.clone();
    if let Some(first) = rest.opt_raw() {
        assert_eq!(first, raws[0]);
    }
    let tail = rest.rest();
    assert!(rest.is_empty());
    let reread = Args::from_array(&tail).expect("rest() is an argument array");
    let mut reread_raws = Vec::new();
    let mut reread = reread;
    while let Some(raw) = reread.opt_raw() {
        reread_raws.push(raw);
    }
    assert_eq!(
        reread_raws[..],
        raws[raws.len().min(1)..],
        "rest() lost arguments"
    );
    raws
}

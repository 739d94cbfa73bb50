//! Hostile and malformed input against the real `syncman` binary.
//!
//! Every case checks three things: the offending connection gets a clear error or is
//! closed; the node logged why (matched to that very connection through its `peer=` or
//! `session=` field); and a well-behaved client still works, with the data stored before the
//! attack intact.
//!
//! The raw connections below speak the wire by hand (4-byte big-endian length prefix, as in
//! `protocol/src/frame.rs`) over tokio's `AsyncRead`/`AsyncWrite`, and use
//! `syncman_protocol::handshake::{create_answer, verify_answer}` for the HMAC steps, so this
//! file needs no codec crate.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use syncman_client::{ConnectOptions, Error, ErrorKind, Manager};
use syncman_protocol::handshake::{
    create_answer, verify_answer, ChallengePolicy, CHALLENGE, FAILURE, WELCOME,
};
use syncman_protocol::message::{self, CONTROL_OBJECT, HELLO_ID, NATIVE_VERSION};
use syncman_protocol::{RemoteError, Value};
use syncman_tests::TestNode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound for every single wait in this file.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The named dict written before each attack and checked after it.
const PRECIOUS: &str = "precious";

fn precious_items() -> Vec<(String, i64)> {
    vec![("alpha".into(), 1), ("beta".into(), 2)]
}

// ---------------------------------------------------------------------------------------
// Helpers: bounded waits, the node's log, the data that must survive.

/// Runs `fut`, failing the test if it takes longer than [`WAIT`].
pub(crate) async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// The log with its ANSI colour codes removed (the node colours fields even into a file).
pub(crate) fn plain_log(node: &TestNode) -> String {
    let raw = node.log();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC '[' parameters, ended by a letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// True if the log line carries the structured field `field` (e.g. `peer=127.0.0.1:5000`).
fn has_field(line: &str, field: &str) -> bool {
    line.split_whitespace().any(|token| token == field)
}

/// Waits (bounded) until the node logs a line for which `pred` holds, and returns it.
pub(crate) async fn log_line(node: &TestNode, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + WAIT;
    loop {
        let log = plain_log(node);
        if let Some(line) = log.lines().find(|l| pred(l)) {
            return line.to_owned();
        }
        if Instant::now() >= end {
            panic!("the node never logged {what} within {WAIT:?}; log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for a log line containing `needle` about the connection from `peer`.
pub(crate) async fn logged_for_peer(node: &TestNode, peer: SocketAddr, needle: &str) -> String {
    let field = format!("peer={peer}");
    log_line(node, &format!("{needle:?} for {field}"), |l| {
        l.contains(needle) && has_field(l, &field)
    })
    .await
}

/// Waits for a log line containing `needle` about session `session`.
async fn logged_for_session(node: &TestNode, session: u64, needle: &str) -> String {
    let field = format!("session={session}");
    log_line(node, &format!("{needle:?} for {field}"), |l| {
        l.contains(needle) && has_field(l, &field)
    })
    .await
}

/// Connects a well-behaved client and stores the data every test checks after its attack.
pub(crate) async fn seed(node: &TestNode) -> Manager {
    let mgr = within("connect the first good client", node.manager()).await;
    let d = within("open the precious dict", mgr.dict::<String, i64>(PRECIOUS))
        .await
        .expect("open the precious dict");
    for (k, v) in precious_items() {
        within("seed the precious dict", d.insert(&k, &v))
            .await
            .expect("seed the precious dict");
    }
    mgr
}

/// The client connected before the attack and a fresh one both work, and both see the
/// precious dict exactly as it was written.
pub(crate) async fn assert_intact(node: &TestNode, before: &Manager) {
    let fresh = within("connect a fresh good client", node.manager()).await;
    for (who, mgr) in [("the earlier client", before), ("a fresh client", &fresh)] {
        within("ping", mgr.ping())
            .await
            .unwrap_or_else(|e| panic!("{who} cannot ping: {e}"));
        let d = within("open the precious dict", mgr.dict::<String, i64>(PRECIOUS))
            .await
            .unwrap_or_else(|e| panic!("{who} cannot open the precious dict: {e}"));
        let items = within("read the precious dict", d.items())
            .await
            .unwrap_or_else(|e| panic!("{who} cannot read the precious dict: {e}"));
        assert_eq!(items, precious_items(), "{who} sees altered data");
    }
    // And the node still accepts writes.
    let scratch = within("open a scratch dict", fresh.dict::<String, i64>("scratch"))
        .await
        .expect("open a scratch dict");
    within("write after the attack", scratch.insert(&"k".into(), &7))
        .await
        .expect("write after the attack");
    assert_eq!(
        within("read back", scratch.get(&"k".into())).await.unwrap(),
        Some(7)
    );
}

/// `n` unpredictable bytes (std's per-instance random hash keys; no extra crate needed).
fn random_bytes(n: usize) -> Vec<u8> {
    let state = RandomState::new();
    (0..n)
        .map(|i| {
            let mut h = state.build_hasher();
            h.write_usize(i);
            h.finish() as u8
        })
        .collect()
}

/// A frame: 4-byte big-endian length, then the payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

/// A request envelope with the given arguments.
fn request(id: u64, object: u64, method: &str, args: &[Value]) -> Bytes {
    let mut b = BytesMut::new();
    message::encode_request_head(&mut b, id, object, method);
    message::encode_args_len(&mut b, args.len() as u32);
    for a in args {
        b.extend_from_slice(&a.to_bytes());
    }
    b.freeze()
}

/// Splits a byte stream into complete frames (a trailing partial frame is ignored).
fn split_frames(mut bytes: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if bytes.len() < 4 + len {
            break;
        }
        out.push(Bytes::copy_from_slice(&bytes[4..4 + len]));
        bytes = &bytes[4 + len..];
    }
    out
}

fn str_(s: &str) -> Value {
    Value::Str(s.into())
}

// ---------------------------------------------------------------------------------------
// A raw connection, driven by hand.

struct Raw {
    stream: TcpStream,
    /// Our address: the node logs it as `peer=`.
    local: SocketAddr,
    next_id: u64,
}

impl Raw {
    async fn connect(node: &TestNode) -> Raw {
        let stream = within("TCP connect", TcpStream::connect(node.addr()))
            .await
            .expect("TCP connect to the node");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        let local = stream.local_addr().expect("local address");
        Raw {
            stream,
            local,
            next_id: 1,
        }
    }

    /// Connects and completes CPython's mutual HMAC handshake (no hello yet).
    async fn authenticated(node: &TestNode) -> Raw {
        let mut raw = Raw::connect(node).await;
        raw.handshake(node.authkey()).await;
        raw
    }

    /// Connects, authenticates, says hello; returns the connection and its session id.
    async fn session(node: &TestNode) -> (Raw, u64) {
        let mut raw = Raw::authenticated(node).await;
        let mut hello = BytesMut::new();
        message::encode_hello(&mut hello);
        raw.send(&hello).await;
        let answer = raw.must_recv("the hello answer").await;
        let (id, result) = message::decode_response(answer).expect("hello answer decodes");
        assert_eq!(id, HELLO_ID);
        let version = result.expect("hello accepted");
        assert_eq!(
            syncman_protocol::value::decode(&version).unwrap(),
            Value::Int(NATIVE_VERSION as i128)
        );
        let started = logged_for_peer(node, raw.local, "session started").await;
        let session = started
            .split_whitespace()
            .find_map(|t| t.strip_prefix("session="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no session id in {started:?}"));
        (raw, session)
    }

    async fn handshake(&mut self, key: &[u8]) {
        // The node challenges first.
        let challenge = self.must_recv("the node's challenge").await;
        let body = challenge
            .strip_prefix(CHALLENGE)
            .unwrap_or_else(|| panic!("not a challenge: {challenge:?}"));
        let answer = create_answer(key, body).expect("answer the node's challenge");
        self.send(&answer).await;
        assert_eq!(&self.must_recv("the node's verdict").await[..], WELCOME);
        // Then we challenge the node.
        let mut ours = b"{sha256}".to_vec();
        ours.extend_from_slice(&random_bytes(40));
        let mut challenge = CHALLENGE.to_vec();
        challenge.extend_from_slice(&ours);
        self.send(&challenge).await;
        let answer = self.must_recv("the node's answer").await;
        verify_answer(key, &ours, &answer, ChallengePolicy::default())
            .expect("the node proves it holds the authkey");
        self.send(WELCOME).await;
    }

    /// Writes raw bytes; the result is returned because the node may already have closed.
    async fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        within("write", self.stream.write_all(bytes)).await
    }

    /// Writes one frame, which must succeed.
    async fn send(&mut self, payload: &[u8]) {
        self.write_raw(&frame(payload))
            .await
            .expect("write a frame to the node");
    }

    /// Reads one frame; `None` if the node closed the connection at a frame boundary.
    async fn recv(&mut self) -> Option<Bytes> {
        within("read a frame", async {
            let mut header = [0u8; 4];
            match self.stream.read_exact(&mut header).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
                Err(e) => panic!("reading a frame header: {e}"),
            }
            let len = i32::from_be_bytes(header);
            assert!(
                (0..=16 * 1024 * 1024).contains(&len),
                "implausible frame length {len} from the node"
            );
            let mut payload = vec![0u8; len as usize];
            self.stream
                .read_exact(&mut payload)
                .await
                .expect("the node sent a truncated frame");
            Some(Bytes::from(payload))
        })
        .await
    }

    async fn must_recv(&mut self, what: &str) -> Bytes {
        match self.recv().await {
            Some(frame) => frame,
            None => panic!("the node closed the connection instead of sending {what}"),
        }
    }

    /// Sends a request; returns its id.
    async fn send_request(&mut self, object: u64, method: &str, args: &[Value]) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&request(id, object, method, args)).await;
        id
    }

    /// One request, one reply (matched by id); the result value decoded.
    async fn call(
        &mut self,
        object: u64,
        method: &str,
        args: &[Value],
    ) -> Result<Value, RemoteError> {
        let id = self.send_request(object, method, args).await;
        let reply = self.must_recv(&format!("the reply to {method}")).await;
        let (got, result) = message::decode_response(reply).expect("reply decodes");
        assert_eq!(got, id, "reply to {method} carries another request's id");
        result.map(|raw| syncman_protocol::value::decode(&raw).expect("reply value decodes"))
    }

    /// A call that must succeed.
    async fn ok(&mut self, object: u64, method: &str, args: &[Value]) -> Value {
        self.call(object, method, args)
            .await
            .unwrap_or_else(|e| panic!("{method} failed: {e}"))
    }

    /// A call that must fail with `kind`; returns the error message.
    async fn err(&mut self, object: u64, method: &str, args: &[Value], kind: ErrorKind) -> String {
        match self.call(object, method, args).await {
            Ok(v) => panic!("{method}{args:?} succeeded with {v:?}; expected {kind}"),
            Err(e) => {
                assert_eq!(e.kind, kind, "{method}{args:?}: {e}");
                e.message
            }
        }
    }

    /// Reads until the node closes the connection (EOF or reset), within [`WAIT`]; returns
    /// whatever arrived first.
    async fn expect_closed(&mut self, what: &str) -> Vec<u8> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 8192];
        within(
            &format!("the node to close the connection after {what}"),
            async {
                loop {
                    match self.stream.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                        // A reset (the node closed with our bytes unread) is closed too.
                        Err(_) => break,
                    }
                }
            },
        )
        .await;
        seen
    }
}

// ---------------------------------------------------------------------------------------
// 1. Wrong authkey.

#[tokio::test]
async fn wrong_authkey_is_refused_with_an_auth_error() {
    let node = TestNode::start();
    let good = seed(&node).await;

    match within(
        "connect with a wrong key",
        Manager::connect(node.addr(), b"wrong"),
    )
    .await
    {
        Err(Error::Auth(msg)) => assert!(msg.contains("authkey"), "{msg}"),
        Err(other) => panic!("expected Error::Auth, got {other:?}"),
        Ok(_) => panic!("a client with the wrong authkey was let in"),
    }
    log_line(&node, "an authentication failure", |l| {
        l.contains("WARN") && l.contains("authentication failed")
    })
    .await;

    // The same by hand: a wrong answer gets #FAILURE#, then the connection closes.
    let mut raw = Raw::connect(&node).await;
    let challenge = raw.must_recv("the challenge").await;
    let answer = create_answer(b"wrong", challenge.strip_prefix(CHALLENGE).unwrap()).unwrap();
    raw.send(&answer).await;
    assert_eq!(&raw.must_recv("the verdict").await[..], FAILURE);
    raw.expect_closed("a wrong answer").await;
    logged_for_peer(&node, raw.local, "authentication failed").await;

    assert_intact(&node, &good).await;
}

// ---------------------------------------------------------------------------------------
// 2. Silent and stalling clients.

#[tokio::test]
async fn silent_client_is_closed_at_the_handshake_deadline() {
    let node = TestNode::start_with(&["--handshake-timeout", "0.5"]);
    let good = seed(&node).await;

    // Authenticated in time, then idle: the handshake deadline must not cut it off.
    let mut idle = Raw::authenticated(&node).await;

    // Says nothing at all.
    let started = Instant::now();
    let mut silent = Raw::connect(&node).await;
    let seen = silent.expect_closed("saying nothing").await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400),
        "closed after only {elapsed:?}: before the 0.5 s deadline"
    );
    let frames = split_frames(&seen);
    assert!(
        frames.len() == 1 && frames[0].starts_with(CHALLENGE),
        "the node should have sent only its challenge, got {seen:?}"
    );
    logged_for_peer(&node, silent.local, "handshake timed out").await;
    assert_intact(&node, &good).await;

    // Starts a frame header and stalls (slowloris): the same deadline applies.
    let mut stalling = Raw::connect(&node).await;
    stalling.must_recv("the challenge").await;
    stalling.write_raw(&[0, 0]).await.unwrap();
    stalling.expect_closed("half a frame header").await;
    logged_for_peer(&node, stalling.local, "handshake timed out").await;

    assert_intact(&node, &good).await;

    // Two deadlines have passed since `idle` authenticated (the closures above are the
    // clock): it is still open and its hello is answered.
    let mut hello = BytesMut::new();
    message::encode_hello(&mut hello);
    idle.send(&hello).await;
    let (id, result) = message::decode_response(idle.must_recv("the hello answer").await).unwrap();
    assert_eq!(id, HELLO_ID);
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(idle.ok(CONTROL_OBJECT, "ping", &[]).await, Value::Nil);
}

// ---------------------------------------------------------------------------------------
// 3. Garbage before authentication.

#[tokio::test]
async fn garbage_before_auth_closes_the_connection() {
    let node = TestNode::start();
    let good = seed(&node).await;

    // 64 random bytes instead of an answer. Their first four bytes are read as a frame
    // length; lengths 61..=256 would make the node (rightly) wait for the rest until the
    // handshake deadline, so those draws are re-rolled.
    let garbage = loop {
        let bytes = random_bytes(64);
        let len = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if !(61..=256).contains(&len) {
            break bytes;
        }
    };
    let started = Instant::now();
    let mut raw = Raw::connect(&node).await;
    raw.write_raw(&garbage).await.unwrap();
    raw.expect_closed("64 random bytes").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed only after {:?}: the node waited instead of rejecting",
        started.elapsed()
    );
    let peer = format!("peer={}", raw.local);
    log_line(&node, "a handshake failure for the garbage sender", |l| {
        has_field(l, &peer)
            && (l.contains("handshake failed") || l.contains("authentication failed"))
    })
    .await;
    assert_intact(&node, &good).await;

    // A well-framed answer that is garbage: a clear #FAILURE#, then closed.
    let mut raw = Raw::connect(&node).await;
    raw.must_recv("the challenge").await;
    raw.send(b"this is not an HMAC answer at all, not even close")
        .await;
    assert_eq!(&raw.must_recv("the verdict").await[..], FAILURE);
    raw.expect_closed("a malformed answer").await;
    logged_for_peer(&node, raw.local, "malformed handshake message").await;

    // Headers announcing huge (or negative) lengths: rejected from the header alone, with
    // no body sent. The node's handshake deadline is 10 s; closing within 5 s shows it did
    // not sit waiting for (or reserve room for) 2 GiB.
    let headers: [(&[u8], &str); 3] = [
        (&0x7fff_ffffi32.to_be_bytes(), "exceeds the limit"),
        (
            &[0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0, 0, 0, 0, 0],
            "exceeds the limit",
        ),
        (&(-2i32).to_be_bytes(), "invalid frame length -2"),
    ];
    for (header, needle) in headers {
        let started = Instant::now();
        let mut raw = Raw::connect(&node).await;
        raw.write_raw(header).await.unwrap();
        raw.expect_closed(&format!("header {header:02x?}")).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "header {header:02x?}: closed only after {:?}",
            started.elapsed()
        );
        let line = logged_for_peer(&node, raw.local, needle).await;
        assert!(line.contains("WARN"), "{line}");
        assert_intact(&node, &good).await;
    }
}

// ---------------------------------------------------------------------------------------
// 4. Bad frames after authentication.

#[tokio::test]
async fn bad_frames_after_auth_close_only_that_connection() {
    let node = TestNode::start_with(&["--max-frame", "4096"]);
    let good = seed(&node).await;

    // At the limit exactly: served.
    let (mut raw, _) = Raw::session(&node).await;
    let Value::Int(scratch) = raw
        .ok(
            CONTROL_OBJECT,
            "get_or_create",
            &[str_("dict"), str_("big")],
        )
        .await
    else {
        panic!("get_or_create returns an id")
    };
    let scratch = scratch as u64;
    let sized = |key: &str, n: usize| {
        request(
            1000,
            scratch,
            "__setitem__",
            &[str_(key), str_(&"x".repeat(n))],
        )
    };
    let overhead = sized("a", 300).len() - 300; // str16 header from 256 chars on
    for key in ["a", "b"] {
        let at_limit = sized(key, 4096 - overhead);
        assert_eq!(at_limit.len(), 4096);
        raw.send(&at_limit).await;
        let (id, result) = message::decode_response(raw.must_recv("the reply").await).unwrap();
        assert_eq!((id, result.map(|_| ())), (1000, Ok(())));
    }
    // A result over the limit (both values, ~8 KiB) fails that call alone.
    let msg = raw.err(scratch, "values", &[], ErrorKind::ValueError).await;
    assert!(
        msg.contains("exceeds the frame limit of 4096 bytes"),
        "{msg}"
    );
    assert_eq!(raw.ok(scratch, "__len__", &[]).await, Value::Int(2));

    // One byte over: skipped as it arrives and answered with an error for that request;
    // the connection carries on, and the write did not happen.
    let over = sized("c", 4097 - overhead);
    assert_eq!(over.len(), 4097);
    raw.write_raw(&frame(&over)).await.unwrap();
    let (id, result) = message::decode_response(raw.must_recv("the reply").await).unwrap();
    assert_eq!(id, 1000);
    let err = result.unwrap_err();
    assert_eq!(err.kind, ErrorKind::ValueError);
    assert!(
        err.message
            .contains("request of 4097 bytes exceeds the node's frame limit of 4096 bytes"),
        "{}",
        err.message
    );
    assert_eq!(raw.ok(scratch, "__len__", &[]).await, Value::Int(2));
    assert_intact(&node, &good).await;

    // A header announcing 2 GiB then the start of a request: answered at once, before the
    // body (which is never buffered) arrives.
    let (mut raw, _) = Raw::session(&node).await;
    let mut start = 0x7fff_ffffi32.to_be_bytes().to_vec();
    start.extend_from_slice(&sized("d", 100)[..64]);
    raw.write_raw(&start).await.unwrap();
    let (id, result) = message::decode_response(raw.must_recv("the reply").await).unwrap();
    assert_eq!(id, 1000);
    assert!(
        result
            .unwrap_err()
            .message
            .contains("request of 2147483647 bytes"),
        "answered with the announced length"
    );
    assert_intact(&node, &good).await;

    // A huge frame that is not a request: closed, the node says why.
    let (mut raw, session) = Raw::session(&node).await;
    let mut start = 0x7fff_ffffi32.to_be_bytes().to_vec();
    start.extend_from_slice(&[7u8; 64]);
    raw.write_raw(&start).await.unwrap();
    raw.expect_closed("a huge frame that is not a request")
        .await;
    logged_for_session(&node, session, "over the limit that is not a request").await;
    assert_intact(&node, &good).await;

    // Truncated: the header promises 100 bytes, 10 come, then the write side closes.
    let (mut raw, session) = Raw::session(&node).await;
    raw.write_raw(&100u32.to_be_bytes()).await.unwrap();
    raw.write_raw(&[7u8; 10]).await.unwrap();
    within("shut down the write side", raw.stream.shutdown())
        .await
        .unwrap();
    raw.expect_closed("a truncated frame").await;
    logged_for_session(&node, session, "connection closed in the middle of a frame").await;
    assert_intact(&node, &good).await;

    // Well framed, but not an envelope. A valid request pipelined before the garbage is
    // still answered; then the connection is closed.
    let mut wrong_tag = Vec::new();
    Value::Array(vec![Value::Int(7), Value::Int(1)]).encode(&mut wrong_tag);
    let mut trailing = request(1, CONTROL_OBJECT, "ping", &[]).to_vec();
    trailing.push(0xc0);
    let bad_envelopes: [(&str, Vec<u8>, &str); 5] = [
        (
            "reserved marker",
            vec![0xc1, 0xff, 0x00],
            "reserved marker 0xc1",
        ),
        (
            "cut-off request",
            vec![0x95, 0x00, 0x01],
            "unexpected end of data",
        ),
        ("a map", vec![0x81, 0xa1, b'k', 0x01], "expected an array"),
        ("an unknown tag", wrong_tag, "unknown message"),
        ("trailing bytes", trailing, "trailing bytes after request"),
    ];
    for (what, payload, needle) in bad_envelopes {
        let (mut raw, session) = Raw::session(&node).await;
        let mut pipelined = frame(&request(41, CONTROL_OBJECT, "ping", &[]));
        pipelined.extend_from_slice(&frame(&payload));
        raw.write_raw(&pipelined).await.unwrap();
        let seen = raw.expect_closed(what).await;
        let replies = split_frames(&seen);
        assert_eq!(replies.len(), 1, "{what}: expected only the ping's reply");
        let (id, result) = message::decode_response(replies[0].clone()).unwrap();
        assert_eq!(id, 41, "{what}");
        assert!(result.is_ok(), "{what}: {result:?}");
        let line = logged_for_session(&node, session, "closing connection").await;
        assert!(
            line.contains(needle),
            "{what}: expected {needle:?} in {line:?}"
        );
        assert_intact(&node, &good).await;
    }
}

// ---------------------------------------------------------------------------------------
// 5. Valid envelopes, wrong calls: error replies, and the connection stays usable.

#[tokio::test]
async fn wrong_calls_get_python_errors_and_the_connection_carries_on() {
    let node = TestNode::start();
    let good = seed(&node).await;
    let (mut raw, session) = Raw::session(&node).await;

    let Value::Int(dict) = raw
        .ok(
            CONTROL_OBJECT,
            "get_or_create",
            &[str_("dict"), str_(PRECIOUS)],
        )
        .await
    else {
        panic!("get_or_create returns an id")
    };
    let dict = dict as u64;
    let dict_len = Value::Int(precious_items().len() as i128);

    // Unknown object id.
    let msg = raw.err(999_999, "__len__", &[], ErrorKind::NotFound).await;
    assert!(msg.contains("999999"), "{msg}");
    logged_for_session(&node, session, "error reply: NotFound").await;
    assert_eq!(raw.ok(dict, "__len__", &[]).await, dict_len);

    // Unknown method, on an object and on the node itself.
    let msg = raw.err(dict, "nope", &[], ErrorKind::AttributeError).await;
    assert_eq!(msg, "'dict' object has no attribute 'nope'");
    logged_for_session(&node, session, "error reply: AttributeError: 'dict' object").await;
    raw.err(CONTROL_OBJECT, "nope", &[], ErrorKind::AttributeError)
        .await;

    // Wrong argument count: TypeError, and nothing changes.
    let msg = raw
        .err(dict, "__setitem__", &[str_("alpha")], ErrorKind::TypeError)
        .await;
    assert!(msg.contains("expected exactly 2 arguments, got 1"), "{msg}");
    let msg = raw
        .err(
            dict,
            "__setitem__",
            &[str_("alpha"), Value::Int(100), Value::Int(200)],
            ErrorKind::TypeError,
        )
        .await;
    assert!(msg.contains("got 3"), "{msg}");
    raw.err(dict, "__len__", &[Value::Int(1)], ErrorKind::TypeError)
        .await;
    logged_for_session(
        &node,
        session,
        "error reply: TypeError: __setitem__ expected",
    )
    .await;
    assert_eq!(
        raw.ok(dict, "__getitem__", &[str_("alpha")]).await,
        Value::Int(1)
    );
    assert_eq!(raw.ok(dict, "__len__", &[]).await, dict_len);

    // Wrong argument types: a map is not hashable; nothing changes.
    let map = Value::Map(vec![(str_("k"), Value::Int(1))]);
    let msg = raw
        .err(
            dict,
            "__setitem__",
            &[map.clone(), Value::Int(5)],
            ErrorKind::TypeError,
        )
        .await;
    assert_eq!(msg, "unhashable type: 'dict'");
    raw.err(dict, "__getitem__", &[map], ErrorKind::TypeError)
        .await;
    logged_for_session(&node, session, "unhashable type").await;
    assert_eq!(raw.ok(dict, "__len__", &[]).await, dict_len);

    // A list indexed by a string.
    let Value::Int(list) = raw
        .ok(
            CONTROL_OBJECT,
            "get_or_create",
            &[str_("list"), str_("nums")],
        )
        .await
    else {
        panic!("get_or_create returns an id")
    };
    let list = list as u64;
    raw.ok(list, "append", &[Value::Int(10)]).await;
    let msg = raw
        .err(list, "__getitem__", &[str_("0")], ErrorKind::TypeError)
        .await;
    assert_eq!(msg, "list indices must be integers or slices, not str");
    logged_for_session(&node, session, "list indices must be integers").await;
    assert_eq!(
        raw.ok(list, "__getitem__", &[Value::Int(0)]).await,
        Value::Int(10)
    );

    // An existing name asked for with another typeid.
    let msg = raw
        .err(
            CONTROL_OBJECT,
            "get_or_create",
            &[str_("list"), str_(PRECIOUS)],
            ErrorKind::TypeError,
        )
        .await;
    assert!(
        msg.contains(PRECIOUS) && msg.contains("'dict'") && msg.contains("'list'"),
        "{msg}"
    );
    logged_for_session(&node, session, "exists with typeid 'dict', not 'list'").await;
    // The control object's own argument types.
    raw.err(
        CONTROL_OBJECT,
        "get_or_create",
        &[Value::Int(1), str_("x")],
        ErrorKind::TypeError,
    )
    .await;

    // A release of a reference never held, and a cancel of a call never made: logged or
    // ignored, and no stray reply (the next reply carries the next request's id).
    let mut release = BytesMut::new();
    message::encode_release(&mut release, dict);
    raw.send(&release).await;
    let mut cancel = BytesMut::new();
    message::encode_cancel(&mut cancel, 424_242);
    raw.send(&cancel).await;
    logged_for_session(
        &node,
        session,
        "release of a reference this session does not hold",
    )
    .await;
    assert_eq!(raw.ok(CONTROL_OBJECT, "ping", &[]).await, Value::Nil);
    assert_eq!(raw.ok(dict, "__len__", &[]).await, dict_len);

    // The same typeid clash through the Rust client.
    let mgr = within("connect", node.manager()).await;
    let x = within("dict x", mgr.dict::<String, i64>("x"))
        .await
        .unwrap();
    within("insert", x.insert(&"a".into(), &1)).await.unwrap();
    let err = within("list x", mgr.list::<i64>("x"))
        .await
        .expect_err("a list under a dict's name");
    assert_eq!(err.kind(), Some(&ErrorKind::TypeError), "{err}");
    let text = err.to_string();
    assert!(text.contains("'dict'") && text.contains("'list'"), "{text}");
    assert_eq!(within("get", x.get(&"a".into())).await.unwrap(), Some(1));

    assert_intact(&node, &good).await;
}

// ---------------------------------------------------------------------------------------
// 6. A request too large for the client's own limit.

#[tokio::test]
async fn client_side_oversize_fails_that_call_only() {
    let node = TestNode::start();
    let good = seed(&node).await;
    let small = ConnectOptions {
        max_frame: 1024,
        ..Default::default()
    };
    let mgr = within(
        "connect with a 1 KiB frame limit",
        Manager::connect_with(node.addr(), node.authkey(), small),
    )
    .await
    .expect("connect with a 1 KiB frame limit");
    let d = within("open a dict", mgr.dict::<String, String>("texts"))
        .await
        .unwrap();

    let big = "x".repeat(4096);
    match within("insert 4 KiB", d.insert(&"big".into(), &big)).await {
        Err(Error::FrameTooLarge { len, max }) => {
            assert_eq!(max, 1024);
            assert!(len > 4096, "len {len}");
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    // Same manager, same connection: the next small call works, and nothing was stored.
    within("insert small", d.insert(&"small".into(), &"ok".into()))
        .await
        .expect("a small call after the refused one");
    assert_eq!(
        within("keys", d.keys()).await.unwrap(),
        vec!["small".to_string()]
    );
    within("ping", mgr.ping()).await.unwrap();

    // Nothing reached the node, so it closed nothing.
    let log = plain_log(&node);
    assert!(
        !log.contains("closing connection") && !log.contains("session ended"),
        "the node dropped a session:\n{log}"
    );
    assert_intact(&node, &good).await;
}

// ---------------------------------------------------------------------------------------
// 7. Other dialects after authentication.

#[tokio::test]
async fn unsupported_dialects_are_refused_and_logged() {
    let node = TestNode::start();
    let good = seed(&node).await;

    // A broken CPython pickle (PROTO 4, cut short) as the first frame: the pickle
    // dialect answers with the error as CPython's client reads it, logs it, and closes.
    let mut raw = Raw::authenticated(&node).await;
    raw.send(&[
        0x80, 0x04, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x8c, 0x05, b'd', b'u', b'm', b'm', b'y',
    ])
    .await;
    let reply = raw.expect_closed("a broken pickle").await;
    let traceback = b"#TRACEBACK";
    assert!(
        reply.windows(traceback.len()).any(|w| w == traceback),
        "no #TRACEBACK reply: {reply:?}"
    );
    let line = logged_for_peer(&node, raw.local, "bad CPython request").await;
    assert!(line.contains("WARN"), "{line}");
    assert_intact(&node, &good).await;

    // Neither hello nor pickle.
    let mut raw = Raw::authenticated(&node).await;
    raw.send(b"GET / HTTP/1.1\r\n\r\n").await;
    raw.expect_closed("an unknown dialect").await;
    logged_for_peer(&node, raw.local, "unknown dialect").await;
    assert_intact(&node, &good).await;

    // A hello for a version this node does not speak: a clear error reply, then closed.
    let mut raw = Raw::authenticated(&node).await;
    let mut hello = Vec::new();
    Value::Array(vec![str_("syncman"), Value::Int(99)]).encode(&mut hello);
    raw.send(&hello).await;
    let (id, result) = message::decode_response(raw.must_recv("the refusal").await).unwrap();
    assert_eq!(id, HELLO_ID);
    let err = result.expect_err("version 99 refused");
    assert_eq!(err.kind, ErrorKind::ProtocolError);
    assert!(err.message.contains("version 99"), "{}", err.message);
    raw.expect_closed("an unsupported version").await;
    logged_for_peer(&node, raw.local, "unsupported native protocol version 99").await;
    assert_intact(&node, &good).await;
}

#[tokio::test]
async fn a_client_that_does_not_read_cannot_make_the_node_hoard_replies() {
    let node = TestNode::start();
    let rss_kib = || -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", node.pid().unwrap())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    let mut raw = syncman_tests::RawSession::connect(node.addr(), node.authkey()).await;
    let list = match raw
        .call(CONTROL_OBJECT, "create", &[str_("list")])
        .await
        .unwrap()
    {
        Value::Int(id) => id as u64,
        other => panic!("{other:?}"),
    };
    let big = "x".repeat(4 << 20);
    raw.call(list, "append", &[Value::Str(big)]).await.unwrap();
    let before = rss_kib();
    // 100 requests for a 4 MiB result each, and no reading: 400 MiB if the node queued
    // them all; the reply byte budget (64 MiB) makes it stop reading instead.
    for _ in 0..100 {
        raw.feed(list, "copy", &[]).await;
    }
    raw.flush().await;
    // The node says when it stops reading this client (its reply budget is spent).
    log_line(&node, "a full reply queue", |l| {
        l.contains("reply queue full")
    })
    .await;
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 200,
        "the node grew by {grown_mib} MiB for an unread client"
    );
    // Nothing was lost: every reply arrives once the client reads.
    for _ in 0..100 {
        let (_, result) = within("read a queued reply", raw.recv()).await;
        match result.unwrap() {
            Value::Array(items) => assert_eq!(items.len(), 1),
            other => panic!("{other:?}"),
        }
    }
    // Other clients were served all along.
    within("ping", node.manager().await.ping()).await.unwrap();
}

#[tokio::test]
async fn frame_limits_are_learnt_at_the_hello_and_an_oversized_call_fails_alone() {
    let node = TestNode::start_with(&["--max-frame", "4096"]);
    let good = seed(&node).await;
    // This client allows 64 MiB itself, but learns the node's 4 KiB limit at the hello.
    let mgr = within("connect", node.manager()).await;
    let lock = mgr.lock("held").await.unwrap();
    let guard = within("acquire", lock.acquire()).await.unwrap();
    let q = mgr.queue::<String>("q").await.unwrap();
    match within("put 8 KiB", q.put(&"x".repeat(8192))).await {
        Err(Error::FrameTooLarge { len, max }) => {
            assert_eq!(max, 4096, "the node's limit, not the client's");
            assert!(len > 8192, "len {len}");
        }
        other => panic!("expected FrameTooLarge before sending, got {other:?}"),
    }
    // Nothing reached the node; the connection, its other calls and its lock carry on.
    within("put small", q.put(&"ok".into())).await.unwrap();
    assert_eq!(within("len", q.len()).await.unwrap(), 1);
    assert!(within("locked", lock.locked()).await.unwrap());
    within("release", guard.release()).await.unwrap();
    assert_intact(&node, &good).await;
}

#[tokio::test]
async fn an_item_too_large_for_its_reader_stays_where_it_is() {
    let node = TestNode::start();
    let writer = within("connect", node.manager()).await;
    let small = ConnectOptions {
        max_frame: 4096,
        ..Default::default()
    };
    let reader = within(
        "connect with a 4 KiB limit",
        Manager::connect_with(node.addr(), node.authkey(), small),
    )
    .await
    .unwrap();
    let big = "x".repeat(8192);
    let q = writer.queue::<String>("q").await.unwrap();
    q.put(&big).await.unwrap();
    let rq = reader.queue::<String>("q").await.unwrap();
    for (what, result) in [
        ("get", rq.get().await.map(Some)),
        ("try_get", rq.try_get().await),
    ] {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), Some(&ErrorKind::ValueError), "{what}: {err}");
        assert!(
            err.to_string().contains("frame limit of 4096"),
            "{what}: {err}"
        );
    }
    // The item is still there for a reader that can take it.
    assert_eq!(within("take the item", q.get()).await.unwrap(), big);
    // A parked get is answered with the same error when such an item arrives.
    let parked = tokio::spawn({
        let rq = rq.clone();
        async move { rq.get().await }
    });
    syncman_tests::wait_for_waiters(&writer, "q", 1).await;
    q.put(&big).await.unwrap();
    let err = within("the parked get", parked).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::ValueError), "{err}");
    // That item went into the queue instead.
    assert_eq!(q.len().await.unwrap(), 1);
    assert_eq!(within("take the item", q.get()).await.unwrap(), big);
    // The same for a list and a dict.
    let l = writer.list::<String>("l").await.unwrap();
    l.push(&big).await.unwrap();
    let rl = reader.list::<String>("l").await.unwrap();
    assert!(rl.pop().await.is_err());
    assert_eq!(l.len().await.unwrap(), 1);
    let d = writer.dict::<String, String>("d").await.unwrap();
    d.insert(&"k".into(), &big).await.unwrap();
    let rd = reader.dict::<String, String>("d").await.unwrap();
    assert!(rd.remove(&"k".into()).await.is_err());
    assert!(rd.pop_item().await.is_err());
    assert_eq!(d.len().await.unwrap(), 1);
    // Results that take nothing are refused the same way, and the reader carries on.
    let err = rl.to_vec().await.unwrap_err();
    assert_eq!(err.kind(), Some(&ErrorKind::ValueError), "{err}");
    within("ping", reader.ping()).await.unwrap();
}

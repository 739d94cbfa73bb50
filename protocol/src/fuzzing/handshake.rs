//! The HMAC handshake: `check_handshake`. The properties are listed in `mod.rs`.

use std::mem::discriminant;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::codec::Framed;

use super::block_on;
use crate::frame::{FrameCodec, FrameError, COPY_AT_MOST, DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME};
use crate::handshake::{
    answer_challenge, client_handshake, create_answer, refusal, server_handshake, verify_answer,
    ChallengePolicy, HandshakeError, CHALLENGE, FAILURE, REFUSED, WELCOME,
};
use crate::message::{
    decode_hello, decode_hello_answer, decode_response, Hello, HELLO_ID, NATIVE_VERSION,
};
use crate::opening::{open_native, OpenError, Opened};

use super::frame_codec::{model, End, Item};

/// Room in each direction of the in-memory pipe.
const PIPE: usize = 1 << 16;

/// The peer as raw bytes: writes `bytes` and closes its side, while reading all that
/// comes back until the other side is gone.
async fn raw_peer(io: DuplexStream, bytes: &[u8]) -> Vec<u8> {
    let (mut rd, mut wr) = tokio::io::split(io);
    let write = async move {
        let _ = wr.write_all(bytes).await;
        let _ = wr.shutdown().await;
    };
    let read = async move {
        let mut out = Vec::new();
        let _ = rd.read_to_end(&mut out).await;
        out
    };
    tokio::join!(write, read).1
}

/// The frames in what one side wrote (all complete: a side writes whole frames).
fn frames_of(out: &[u8]) -> Vec<Vec<u8>> {
    let (items, end) = model(out, HANDSHAKE_MAX_FRAME, false);
    assert_eq!(end, End::Clean, "a side wrote a broken frame stream");
    items
        .into_iter()
        .map(|i| match i {
            Item::Frame(f) => f,
            Item::TooLarge { .. } => unreachable!(),
        })
        .collect()
}

/// A challenge this side sent: `#CHALLENGE#{sha256}` and 40 random bytes.
fn challenge_message(frame: &[u8]) -> &[u8] {
    let message = frame.strip_prefix(CHALLENGE).expect("a challenge");
    assert!(message.starts_with(b"{sha256}") && message.len() == 8 + 40);
    message
}

fn same_kind(got: &HandshakeError, expected: &HandshakeError) {
    assert_eq!(
        discriminant(got),
        discriminant(expected),
        "got {got:?}, expected {expected:?}"
    );
}

/// Input: a byte that picks the scenario and its options, then the peer's bytes.
///
/// The key is random, so the peer's bytes never hold a right answer; each scenario
/// predicts, from the frames in those bytes, exactly what the side under test sends and how
/// it ends:
/// - 0: the node's side ([`server_handshake`]) against raw bytes: never authenticates; the
///   first frame is checked as the answer ([`verify_answer`]'s verdict) and `#FAILURE#`
///   sent.
/// - 1: the node's side after an honest first exchange, then raw bytes as the client's
///   challenge: the node sends the answer [`create_answer`] gives (none for a malformed or
///   refused challenge) and succeeds only if the next frame is `#WELCOME#`.
/// - 2: the client's side ([`client_handshake`]) against raw bytes: never authenticates;
///   it answers a well-formed challenge, then challenges the node and rejects its answer.
/// - 3: an honest handshake, then raw bytes as the node's answer to the hello
///   ([`open_native`]): it opens only when that frame is a well-formed hello answer.
///
/// Every input also checks, directly: an answer made with the key verifies, one made with
/// another key does not, the input as an answer never does, and a refusal fits its frame.
pub fn check_handshake(data: &[u8]) {
    let (&options, peer) = data.split_first().unwrap_or((&0, &[]));
    let peer = &peer[..peer.len().min(PIPE / 2)];
    let key: [u8; 32] = rand::random();
    let policy = ChallengePolicy {
        require_sha256: options & 4 != 0,
        answer_timeout: (options & 8 != 0).then_some(Duration::from_secs(600)),
    };
    let frames = PeerFrames::new(peer);

    direct_checks(&key, peer);

    match options & 3 {
        0 => {
            let (node_io, peer_io) = tokio::io::duplex(PIPE);
            let (result, out) = block_on(async {
                let node = async move {
                    let mut framed = Framed::new(node_io, FrameCodec::handshake());
                    server_handshake(&mut framed, &key, policy).await
                };
                tokio::join!(node, raw_peer(peer_io, peer))
            });
            let err = result.expect_err("the node authenticated a peer without the key");
            let out = frames_of(&out);
            let message = challenge_message(&out[0]);
            match frames.get(0) {
                None => {
                    same_kind(&err, &frames.past_end());
                    assert_eq!(out.len(), 1, "the node answered no answer");
                }
                Some(answer) => {
                    let expected = verify_answer(&key, message, answer, policy)
                        .expect_err("an answer made without the key verified");
                    same_kind(&err, &expected);
                    assert_eq!(&out[1..], [FAILURE.to_vec()]);
                }
            }
        }
        1 => {
            let (node_io, peer_io) = tokio::io::duplex(PIPE);
            let (result, out) = block_on(async {
                let node = async move {
                    let mut framed = Framed::new(node_io, FrameCodec::handshake());
                    server_handshake(&mut framed, &key, policy).await
                };
                let client = async move {
                    let mut framed = Framed::new(peer_io, FrameCodec::handshake());
                    answer_challenge(&mut framed, &key)
                        .await
                        .expect("the node rejected the right key");
                    let parts = framed.into_parts();
                    assert!(parts.read_buf.is_empty(), "the node sent more than asked");
                    raw_peer(parts.io, peer).await
                };
                tokio::join!(node, client)
            });
            let out = frames_of(&out);
            let expected = answer_model(&key, &frames);
            assert_eq!(out, expected.sent, "what the node sent");
            match (result, expected.result) {
                (Ok(()), Ok(())) => {}
                (Err(got), Err(want)) => same_kind(&got, &want),
                (got, want) => panic!("node: {got:?}, expected {want:?}"),
            }
        }
        2 => {
            let (client_io, peer_io) = tokio::io::duplex(PIPE);
            let (result, out) = block_on(async {
                let client = async move {
                    let mut framed = Framed::new(client_io, FrameCodec::handshake());
                    client_handshake(&mut framed, &key).await
                };
                tokio::join!(client, raw_peer(peer_io, peer))
            });
            let err = result.expect_err("the client authenticated a node without the key");
            let out = frames_of(&out);
            let expected = answer_model(&key, &frames);
            assert_eq!(
                out[..out.len().min(1)],
                expected.sent[..],
                "the client's answer"
            );
            match expected.result {
                Err(want) => {
                    same_kind(&err, &want);
                    assert_eq!(out.len(), expected.sent.len());
                }
                Ok(()) => {
                    // Welcomed: the client challenges the node and checks its answer.
                    let message = challenge_message(&out[1]);
                    match frames.get(2) {
                        None => {
                            same_kind(&err, &frames.past_end());
                            assert_eq!(out.len(), 2);
                        }
                        Some(answer) => {
                            let want = verify_answer(&key, message, answer, Default::default())
                                .expect_err("an answer made without the key verified");
                            same_kind(&err, &want);
                            assert_eq!(&out[2..], [FAILURE.to_vec()]);
                        }
                    }
                }
            }
        }
        _ => check_opening(&key, options, policy, peer),
    }
}

/// The peer's frames as a side reading them with the handshake limit sees them (up to
/// the first broken one), and the error of reading past them.
struct PeerFrames {
    frames: Vec<Vec<u8>>,
    clean: bool,
}

impl PeerFrames {
    fn new(peer: &[u8]) -> PeerFrames {
        let (items, end) = model(peer, HANDSHAKE_MAX_FRAME, false);
        let frames = items
            .into_iter()
            .map(|i| match i {
                Item::Frame(f) => f,
                Item::TooLarge { .. } => unreachable!(),
            })
            .collect();
        PeerFrames {
            frames,
            clean: end == End::Clean,
        }
    }

    fn get(&self, i: usize) -> Option<&Vec<u8>> {
        self.frames.get(i)
    }

    /// The error of reading past the last frame: the peer closed, or broke the framing.
    fn past_end(&self) -> HandshakeError {
        if self.clean {
            HandshakeError::Closed
        } else {
            HandshakeError::Frame(FrameError::Truncated)
        }
    }
}

/// What [`answer_challenge`] does with the peer's `frames`.
struct Answered {
    sent: Vec<Vec<u8>>,
    result: Result<(), HandshakeError>,
}

fn answer_model(key: &[u8], frames: &PeerFrames) -> Answered {
    let fail = |e| Answered {
        sent: Vec::new(),
        result: Err(e),
    };
    let Some(challenge) = frames.get(0) else {
        return fail(frames.past_end());
    };
    if let Some(reason) = challenge.strip_prefix(REFUSED) {
        return fail(HandshakeError::Refused(
            String::from_utf8_lossy(reason).into_owned(),
        ));
    }
    let Some(message) = challenge.strip_prefix(CHALLENGE) else {
        return fail(HandshakeError::Malformed(""));
    };
    let answer = match create_answer(key, message) {
        Ok(answer) => answer,
        Err(e) => return fail(e),
    };
    let result = match frames.get(1) {
        Some(verdict) if verdict[..] == *WELCOME => Ok(()),
        Some(_) => Err(HandshakeError::WeWereRejected),
        None => Err(frames.past_end()),
    };
    Answered {
        sent: vec![answer],
        result,
    }
}

fn direct_checks(key: &[u8], peer: &[u8]) {
    let other: [u8; 32] = rand::random();
    if let Ok(answer) = create_answer(key, peer) {
        verify_answer(key, peer, &answer, ChallengePolicy::default())
            .expect("an answer made with the key must verify");
        assert!(
            verify_answer(&other, peer, &answer, ChallengePolicy::default()).is_err(),
            "an answer verified under another key"
        );
    }
    let mut message = b"{sha256}".to_vec();
    message.extend_from_slice(&rand::random::<[u8; 32]>());
    message.extend_from_slice(&rand::random::<[u8; 8]>());
    assert!(
        verify_answer(key, &message, peer, ChallengePolicy::default()).is_err(),
        "an answer made without the key verified"
    );
    let reason = String::from_utf8_lossy(peer);
    let frame = refusal(&reason);
    assert!(frame.len() <= HANDSHAKE_MAX_FRAME && frame.starts_with(REFUSED));
    let said = std::str::from_utf8(&frame[REFUSED.len()..]).expect("a refusal is UTF-8");
    assert!(reason.starts_with(said));
}

/// Scenario 3: an honest handshake, then the peer's bytes as the node's answer to the hello.
fn check_opening(key: &[u8; 32], options: u8, policy: ChallengePolicy, peer: &[u8]) {
    let key = *key;
    let max_frame = [
        HANDSHAKE_MAX_FRAME,
        4096,
        COPY_AT_MOST + 1,
        DEFAULT_MAX_FRAME,
    ][(options >> 4 & 3) as usize];
    let ttl = (options & 0x40 != 0).then(|| Duration::from_millis(1 + 997 * options as u64));
    let (client_io, node_io) = tokio::io::duplex(PIPE);
    let (result, hello) = block_on(async {
        let client = async move {
            let mut framed = Framed::new(client_io, FrameCodec::handshake());
            open_native(&mut framed, &key, max_frame, ttl).await
        };
        let node = async move {
            let mut framed = Framed::new(node_io, FrameCodec::handshake());
            server_handshake(&mut framed, &key, policy)
                .await
                .expect("the node rejected the right key");
            framed.codec_mut().set_max_len(DEFAULT_MAX_FRAME);
            let hello = framed.next().await.expect("a hello").expect("a frame");
            let parts = framed.into_parts();
            assert!(
                parts.read_buf.is_empty(),
                "the client sent more than its hello"
            );
            let more = raw_peer(parts.io, peer).await;
            assert!(more.is_empty(), "the client sent more than its hello");
            hello
        };
        tokio::join!(client, node)
    });
    let asked = Hello {
        version: NATIVE_VERSION,
        max_frame: Some(max_frame as u64),
        heartbeat_ttl_ms: ttl.map(|t| t.as_millis() as u64),
    };
    assert_eq!(decode_hello(&hello), Some(Ok(asked)), "the client's hello");

    let (items, end) = model(peer, max_frame, false);
    let expected: Result<Opened, OpenError> = match items.first() {
        None if end == End::Clean => Err(OpenError::Closed),
        None => Err(OpenError::Frame(FrameError::Truncated)),
        Some(Item::TooLarge { .. }) => unreachable!(),
        Some(Item::Frame(answer)) => match decode_response(Bytes::copy_from_slice(answer)) {
            Ok((HELLO_ID, Ok(answer))) => match decode_hello_answer(&answer) {
                Ok(a) => Ok(Opened {
                    node_max_frame: a.max_frame,
                    heartbeat_ttl: a.heartbeat_ttl_ms.map(Duration::from_millis),
                }),
                Err(_) => Err(OpenError::BadHello),
            },
            Ok((HELLO_ID, Err(e))) => Err(OpenError::Refused(e)),
            _ => Err(OpenError::BadHello),
        },
    };
    match (&result, &expected) {
        (Ok(got), Ok(want)) => assert_eq!(got, want),
        (Err(OpenError::Refused(got)), Err(OpenError::Refused(want))) => assert_eq!(got, want),
        (Err(got), Err(want)) => assert_eq!(
            discriminant(got),
            discriminant(want),
            "got {got:?}, expected {want:?}"
        ),
        _ => panic!("opened {result:?}, expected {expected:?}"),
    }
}

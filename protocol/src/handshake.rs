//! CPython's mutual HMAC challenge-response, byte for byte (`multiprocessing.connection`).
//!
//! Each side proves it holds the authkey; the key itself never travels. Two exchanges run on
//! every connection, the server's first:
//!
//! ```text
//! S→C  #CHALLENGE#{sha256}<40 random bytes>
//! C→S  {sha256}<HMAC-SHA256(key, message)>   or raw HMAC-MD5 (CPython ≤ 3.11)
//! S→C  #WELCOME#  |  #FAILURE#
//! C→S  #CHALLENGE#...                          the client challenges the server
//! S→C  answer
//! C→S  #WELCOME#  |  #FAILURE#
//! ```
//!
//! Security: the MAC is checked in constant time; every handshake frame is read with CPython's
//! 256-byte limit; the caller bounds the whole exchange with a deadline. MD5 answers exist only
//! for CPython 3.11 clients and can be refused ([`ChallengePolicy::require_sha256`]).

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use rand::RngCore;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::frame::{FrameCodec, FrameError};

pub const CHALLENGE: &[u8] = b"#CHALLENGE#";
pub const WELCOME: &[u8] = b"#WELCOME#";
pub const FAILURE: &[u8] = b"#FAILURE#";
/// syncman's own: sent instead of a challenge when the node will not take the connection
/// now, followed by the reason in words. CPython clients show it in their
/// `AuthenticationError` ("expected challenge").
pub const REFUSED: &[u8] = b"#REFUSED#";
/// Random bytes in a challenge (CPython 3.12+ uses 40; it must be over 20).
const CHALLENGE_RANDOM_LEN: usize = 40;
/// The digest syncman challenges with, as CPython 3.12+ does.
const CHALLENGE_DIGEST: &str = "sha256";
/// Longest digest name CPython accepts inside `{...}` (`sha3_384`).
const MAX_DIGEST_NAME: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer's answer to our challenge was wrong: it does not hold the authkey.
    #[error("the peer's answer to our challenge was wrong (authkey mismatch)")]
    PeerRejected,
    /// The peer refused our answer: we do not hold the authkey it expects.
    #[error("the peer rejected our answer to its challenge (authkey mismatch)")]
    WeWereRejected,
    #[error("the peer answered with MD5, and this node requires SHA-256")]
    Md5Refused,
    #[error("unsupported digest {0:?}")]
    UnsupportedDigest(String),
    #[error("malformed handshake message: {0}")]
    Malformed(&'static str),
    #[error("connection closed during the handshake")]
    Closed,
    /// The peer did not answer our challenge in time.
    #[error("the peer did not answer the challenge within {0:?}")]
    NoAnswer(std::time::Duration),
    /// The node refused the connection before the handshake, and said why.
    #[error("the node refused the connection: {0}")]
    Refused(String),
    #[error("handshake frame: {0}")]
    Frame(#[from] FrameError),
}

impl HandshakeError {
    /// True when the failure means the two sides hold different authkeys.
    pub fn is_auth_failure(&self) -> bool {
        matches!(
            self,
            HandshakeError::PeerRejected
                | HandshakeError::WeWereRejected
                | HandshakeError::Md5Refused
        )
    }
}

/// What a challenger accepts as an answer, and how long it waits for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChallengePolicy {
    /// Refuse legacy raw HMAC-MD5 answers (this locks out CPython 3.11 and older).
    pub require_sha256: bool,
    /// How long the peer has to answer the challenge (a client answers at once; a silent
    /// peer is let go early instead of holding its slot for the whole handshake).
    /// `None`: no limit of its own.
    pub answer_timeout: Option<std::time::Duration>,
}

/// The frame a node sends instead of a challenge when it refuses a connection: `#REFUSED#`
/// and the reason, cut to fit the 256 bytes a handshake frame may hold.
pub fn refusal(reason: &str) -> Vec<u8> {
    let mut frame = REFUSED.to_vec();
    let room = crate::frame::HANDSHAKE_MAX_FRAME - REFUSED.len();
    let mut end = reason.len().min(room);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    frame.extend_from_slice(&reason.as_bytes()[..end]);
    frame
}

type Transport<S> = Framed<S, FrameCodec>;

/// The server's side: challenge the client, then answer its challenge.
pub async fn server_handshake<S>(
    framed: &mut Transport<S>,
    authkey: &[u8],
    policy: ChallengePolicy,
) -> Result<(), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    deliver_challenge(framed, authkey, policy).await?;
    answer_challenge(framed, authkey).await
}

/// The client's side: answer the server's challenge, then challenge it.
pub async fn client_handshake<S>(
    framed: &mut Transport<S>,
    authkey: &[u8],
) -> Result<(), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    answer_challenge(framed, authkey).await?;
    deliver_challenge(framed, authkey, ChallengePolicy::default()).await
}

/// Sends `#CHALLENGE#{sha256}<random>`, checks the answer, replies `#WELCOME#` or `#FAILURE#`.
pub async fn deliver_challenge<S>(
    framed: &mut Transport<S>,
    authkey: &[u8],
    policy: ChallengePolicy,
) -> Result<(), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut message = Vec::with_capacity(2 + CHALLENGE_DIGEST.len() + CHALLENGE_RANDOM_LEN);
    message.extend_from_slice(b"{");
    message.extend_from_slice(CHALLENGE_DIGEST.as_bytes());
    message.extend_from_slice(b"}");
    let mut random = [0u8; CHALLENGE_RANDOM_LEN];
    rand::thread_rng().fill_bytes(&mut random);
    message.extend_from_slice(&random);

    let mut frame = BytesMut::with_capacity(CHALLENGE.len() + message.len());
    frame.put_slice(CHALLENGE);
    frame.put_slice(&message);
    framed.send(frame.freeze()).await?;

    let answer = match policy.answer_timeout {
        None => recv(framed).await?,
        Some(limit) => tokio::time::timeout(limit, recv(framed))
            .await
            .map_err(|_| HandshakeError::NoAnswer(limit))??,
    };
    match verify_answer(authkey, &message, &answer, policy) {
        Ok(()) => {
            framed.send(WELCOME).await?;
            Ok(())
        }
        Err(e) => {
            // Best effort: the peer learns it failed; we are closing either way.
            let _ = framed.send(FAILURE).await;
            Err(e)
        }
    }
}

/// Receives `#CHALLENGE#<message>`, answers with the MAC CPython would, awaits `#WELCOME#`.
pub async fn answer_challenge<S>(
    framed: &mut Transport<S>,
    authkey: &[u8],
) -> Result<(), HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let challenge = recv(framed).await?;
    if let Some(reason) = challenge.strip_prefix(REFUSED) {
        return Err(HandshakeError::Refused(
            String::from_utf8_lossy(reason).into_owned(),
        ));
    }
    let message = challenge
        .strip_prefix(CHALLENGE)
        .ok_or(HandshakeError::Malformed("expected #CHALLENGE#"))?;
    let answer = create_answer(authkey, message)?;
    framed.send(&answer[..]).await?;
    let verdict = recv(framed).await?;
    if verdict[..] == *WELCOME {
        Ok(())
    } else {
        Err(HandshakeError::WeWereRejected)
    }
}

async fn recv<S>(framed: &mut Transport<S>) -> Result<BytesMut, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match framed.next().await {
        Some(frame) => Ok(frame?),
        None => Err(HandshakeError::Closed),
    }
}

/// The answer to a challenge `message` (what follows `#CHALLENGE#`), as CPython 3.12's
/// `_create_response`: a 20-byte message is a legacy challenge and gets raw HMAC-MD5;
/// otherwise `{name}` selects the digest and the answer is `{name}` + HMAC over the whole
/// message.
pub fn create_answer(authkey: &[u8], message: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    if message.len() == 20 {
        return Ok(Digest::Md5.mac(authkey, message));
    }
    if message.len() < 20 {
        return Err(HandshakeError::Malformed("challenge shorter than 20 bytes"));
    }
    let (digest, _) = parse_digest_prefix(message)?;
    let mut answer = Vec::with_capacity(2 + digest.name().len() + 48);
    answer.extend_from_slice(b"{");
    answer.extend_from_slice(digest.name().as_bytes());
    answer.extend_from_slice(b"}");
    answer.extend_from_slice(&digest.mac(authkey, message));
    Ok(answer)
}

/// Checks `answer` against our challenge `message`, as CPython 3.12's `_verify_challenge`:
/// 16 or 20 raw bytes are legacy MD5; otherwise `{name}` + MAC. Constant-time comparison.
pub fn verify_answer(
    authkey: &[u8],
    message: &[u8],
    answer: &[u8],
    policy: ChallengePolicy,
) -> Result<(), HandshakeError> {
    let (digest, mac) = if answer.len() == 16 || answer.len() == 20 {
        (Digest::Md5, answer)
    } else {
        parse_digest_prefix(answer)?
    };
    if policy.require_sha256 && digest == Digest::Md5 {
        return Err(HandshakeError::Md5Refused);
    }
    if digest.verify(authkey, message, mac) {
        Ok(())
    } else {
        Err(HandshakeError::PeerRejected)
    }
}

fn parse_digest_prefix(bytes: &[u8]) -> Result<(Digest, &[u8]), HandshakeError> {
    if bytes.first() != Some(&b'{') {
        return Err(HandshakeError::Malformed("expected a {digest} prefix"));
    }
    let close = bytes
        .iter()
        .take(MAX_DIGEST_NAME + 2)
        .position(|&b| b == b'}')
        .ok_or(HandshakeError::Malformed("unterminated {digest} prefix"))?;
    let name = &bytes[1..close];
    let digest = Digest::from_name(name).ok_or_else(|| {
        HandshakeError::UnsupportedDigest(String::from_utf8_lossy(name).into_owned())
    })?;
    Ok((digest, &bytes[close + 1..]))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    Md5,
    Sha256,
    Sha384,
    Sha3_256,
    Sha3_384,
}

impl Digest {
    fn from_name(name: &[u8]) -> Option<Digest> {
        match name {
            b"md5" => Some(Digest::Md5),
            b"sha256" => Some(Digest::Sha256),
            b"sha384" => Some(Digest::Sha384),
            b"sha3_256" => Some(Digest::Sha3_256),
            b"sha3_384" => Some(Digest::Sha3_384),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Digest::Md5 => "md5",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
            Digest::Sha3_256 => "sha3_256",
            Digest::Sha3_384 => "sha3_384",
        }
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC takes any key length");
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            Digest::Md5 => run::<Hmac<md5::Md5>>(key, message),
            Digest::Sha256 => run::<Hmac<sha2::Sha256>>(key, message),
            Digest::Sha384 => run::<Hmac<sha2::Sha384>>(key, message),
            Digest::Sha3_256 => run::<Hmac<sha3::Sha3_256>>(key, message),
            Digest::Sha3_384 => run::<Hmac<sha3::Sha3_384>>(key, message),
        }
    }

    fn verify(self, key: &[u8], message: &[u8], mac: &[u8]) -> bool {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .expect("HMAC takes any key length");
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        }
        match self {
            Digest::Md5 => run::<Hmac<md5::Md5>>(key, message, mac),
            Digest::Sha256 => run::<Hmac<sha2::Sha256>>(key, message, mac),
            Digest::Sha384 => run::<Hmac<sha2::Sha384>>(key, message, mac),
            Digest::Sha3_256 => run::<Hmac<sha3::Sha3_256>>(key, message, mac),
            Digest::Sha3_384 => run::<Hmac<sha3::Sha3_384>>(key, message, mac),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn legacy_md5_matches_the_cpython_capture() {
        // Captured 3.11.7 exchange with authkey b'secretkey' (reference section 2.6).
        let m_s = hex("0e 36 cb 50 5e 2d 59 81 03 c2 27 f6 01 d6 3c 3e 21 e6 94 d4");
        let answer = create_answer(b"secretkey", &m_s).unwrap();
        assert_eq!(
            answer,
            hex("d7 f1 c1 08 0b 9a 9a a3 e7 a9 5a 40 37 e3 61 a0")
        );
        verify_answer(b"secretkey", &m_s, &answer, ChallengePolicy::default()).unwrap();
    }

    #[test]
    fn sha256_answers_carry_the_prefix_and_verify() {
        let mut message = b"{sha256}".to_vec();
        message.extend_from_slice(&[7u8; 40]);
        let answer = create_answer(b"k", &message).unwrap();
        assert!(answer.starts_with(b"{sha256}"));
        assert_eq!(answer.len(), 8 + 32);
        verify_answer(b"k", &message, &answer, ChallengePolicy::default()).unwrap();
        assert!(matches!(
            verify_answer(b"other", &message, &answer, ChallengePolicy::default()),
            Err(HandshakeError::PeerRejected)
        ));
    }

    #[test]
    fn md5_answer_over_a_modern_challenge_is_legacy_and_can_be_refused() {
        let mut message = b"{sha256}".to_vec();
        message.extend_from_slice(&[1u8; 40]);
        let md5 = Digest::Md5.mac(b"k", &message);
        verify_answer(b"k", &message, &md5, ChallengePolicy::default()).unwrap();
        let strict = ChallengePolicy {
            require_sha256: true,
            ..ChallengePolicy::default()
        };
        assert!(matches!(
            verify_answer(b"k", &message, &md5, strict),
            Err(HandshakeError::Md5Refused)
        ));
    }

    #[test]
    fn every_cpython_digest_answers_and_verifies() {
        for name in ["md5", "sha256", "sha384", "sha3_256", "sha3_384"] {
            let mut message = format!("{{{name}}}").into_bytes();
            message.extend_from_slice(&[9u8; 40]);
            let answer = create_answer(b"k", &message).unwrap();
            assert!(answer.starts_with(format!("{{{name}}}").as_bytes()));
            verify_answer(b"k", &message, &answer, ChallengePolicy::default()).unwrap();
        }
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        let msg = [0u8; 48];
        for bad in [
            &b""[..],
            b"{",
            b"{sha256",
            b"{nope}abc",
            b"xxxxxxxxxxxxxxxxxxxxxxxxx",
        ] {
            assert!(verify_answer(b"k", &msg, bad, ChallengePolicy::default()).is_err());
        }
        assert!(create_answer(b"k", b"short").is_err());
        assert!(create_answer(b"k", b"{whirlpool}0123456789012345").is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_tells_the_client_why() {
        let (a, b) = tokio::io::duplex(1024);
        let mut node = Framed::new(a, FrameCodec::handshake());
        let mut client = Framed::new(b, FrameCodec::handshake());
        let reason = "x".repeat(400);
        let frame = refusal(&reason);
        assert_eq!(frame.len(), crate::frame::HANDSHAKE_MAX_FRAME);
        node.send(&frame[..]).await.unwrap();
        match client_handshake(&mut client, b"key").await {
            Err(HandshakeError::Refused(why)) => assert!(reason.starts_with(&why)),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_silent_peer_is_let_go_at_the_answer_deadline() {
        let (a, _silent) = tokio::io::duplex(1024);
        let mut node = Framed::new(a, FrameCodec::handshake());
        let policy = ChallengePolicy {
            answer_timeout: Some(std::time::Duration::from_millis(50)),
            ..ChallengePolicy::default()
        };
        let started = std::time::Instant::now();
        let result = server_handshake(&mut node, b"key", policy).await;
        assert!(
            matches!(result, Err(HandshakeError::NoAnswer(_))),
            "{result:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

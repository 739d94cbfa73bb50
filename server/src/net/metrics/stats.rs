//! What the network layer counts for the metrics: connections in the handshake and how
//! handshakes fail, sessions by dialect and how they end, and the native sessions' reply
//! queues. All of it happens once per connection or session, never per call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use syncman_protocol::frame::FrameError;
use syncman_protocol::handshake::HandshakeError;

use crate::node::object::SessionId;

/// Why a connection did not get past the handshake (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// The peer's answer to the challenge was wrong, or it refused ours: another authkey.
    WrongKey,
    /// The peer did not answer the challenge in time, or did not finish the handshake in
    /// time.
    Timeout,
    /// The node turned the peer away: too many handshakes from its address, its address
    /// in a penalty for wrong keys, or a legacy MD5 answer when SHA-256 is required.
    Refused,
    /// The peer closed or reset the connection during the handshake (a port scan, a TCP
    /// health check).
    Closed,
    /// The TLS handshake failed: not TLS (a plain client at the TLS port), a certificate
    /// not trusted, no client certificate where one is required.
    Tls,
    /// Anything else: a malformed message, an unknown digest, another socket error.
    Other,
}

impl HandshakeFailure {
    pub const ALL: [HandshakeFailure; 6] = [
        HandshakeFailure::WrongKey,
        HandshakeFailure::Timeout,
        HandshakeFailure::Refused,
        HandshakeFailure::Closed,
        HandshakeFailure::Tls,
        HandshakeFailure::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            HandshakeFailure::WrongKey => "wrong_key",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::Refused => "refused",
            HandshakeFailure::Closed => "closed",
            HandshakeFailure::Tls => "tls",
            HandshakeFailure::Other => "other",
        }
    }

    pub fn of(error: &HandshakeError) -> HandshakeFailure {
        match error {
            HandshakeError::PeerRejected | HandshakeError::WeWereRejected => {
                HandshakeFailure::WrongKey
            }
            HandshakeError::NoAnswer(_) => HandshakeFailure::Timeout,
            HandshakeError::Md5Refused | HandshakeError::Refused(_) => HandshakeFailure::Refused,
            HandshakeError::Closed | HandshakeError::Frame(FrameError::Truncated) => {
                HandshakeFailure::Closed
            }
            // A peer that hangs up before reading the challenge resets the connection.
            HandshakeError::Frame(FrameError::Io(e)) if gone(e.kind()) => HandshakeFailure::Closed,
            HandshakeError::UnsupportedDigest(_)
            | HandshakeError::Malformed(_)
            | HandshakeError::Frame(_) => HandshakeFailure::Other,
        }
    }

    /// A failed TLS handshake: a peer that hung up, or TLS refused.
    pub fn of_tls(error: &std::io::Error) -> HandshakeFailure {
        if gone(error.kind()) {
            HandshakeFailure::Closed
        } else {
            HandshakeFailure::Tls
        }
    }
}

/// True for the socket errors of a peer that has gone.
fn gone(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
    )
}

/// Why a session ended (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The client closed its connection.
    ClientClosed,
    /// The client asked for a heartbeat deadline and fell silent past it.
    HeartbeatExpired,
    /// The node is shutting down.
    Shutdown,
    /// The backend ended the session (a remote backend's lease; never the in-memory one).
    BackendLost,
    /// The connection failed or broke the protocol: a socket error, a malformed frame.
    Error,
}

impl SessionEnd {
    pub const ALL: [SessionEnd; 5] = [
        SessionEnd::ClientClosed,
        SessionEnd::HeartbeatExpired,
        SessionEnd::Shutdown,
        SessionEnd::BackendLost,
        SessionEnd::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SessionEnd::ClientClosed => "client_closed",
            SessionEnd::HeartbeatExpired => "heartbeat_expired",
            SessionEnd::Shutdown => "shutdown",
            SessionEnd::BackendLost => "backend_lost",
            SessionEnd::Error => "error",
        }
    }
}

/// The wire a session speaks (the `dialect` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Native,
    Pickle,
}

impl Dialect {
    pub const ALL: [Dialect; 2] = [Dialect::Native, Dialect::Pickle];

    pub fn label(self) -> &'static str {
        match self {
            Dialect::Native => "native",
            Dialect::Pickle => "pickle",
        }
    }
}

/// Reads one session's replies at scrape time: replies and bytes waiting to be written.
pub(crate) type QueueProbe = Box<dyn Fn() -> (usize, usize) + Send + Sync>;

/// The network layer's counts.
#[derive(Default)]
pub(crate) struct NetStats {
    handshaking: AtomicI64,
    handshake_failures: [AtomicU64; HandshakeFailure::ALL.len()],
    sessions: [AtomicI64; Dialect::ALL.len()],
    sessions_ended: [AtomicU64; SessionEnd::ALL.len()],
    reply_queues: Mutex<HashMap<SessionId, QueueProbe>>,
}

impl NetStats {
    pub fn handshaking(&self) -> i64 {
        self.handshaking.load(Ordering::Relaxed)
    }

    pub fn handshake_failures(&self, why: HandshakeFailure) -> u64 {
        self.handshake_failures[why as usize].load(Ordering::Relaxed)
    }

    /// Sessions open now. SeqCst with [`Self::sessions_ended`]: a scrape that reads the ended
    /// counts first never shows a session as both ended and open.
    pub fn sessions(&self, dialect: Dialect) -> i64 {
        self.sessions[dialect as usize].load(Ordering::SeqCst)
    }

    pub fn sessions_ended(&self, why: SessionEnd) -> u64 {
        self.sessions_ended[why as usize].load(Ordering::SeqCst)
    }

    /// Replies and their bytes queued now, over every native session.
    pub fn replies_queued(&self) -> (usize, usize) {
        let queues = self.reply_queues.lock();
        queues.values().fold((0, 0), |(n, bytes), probe| {
            let (more, more_bytes) = probe();
            (n + more, bytes + more_bytes)
        })
    }
}

/// Where the network layer records; a no-op when the node does not collect metrics.
#[derive(Clone, Default)]
pub(crate) struct NetMetrics(Option<Arc<NetStats>>);

impl NetMetrics {
    pub fn new(stats: Arc<NetStats>) -> Self {
        NetMetrics(Some(stats))
    }

    /// True when the node collects metrics.
    pub fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// A connection starts its handshake; it counts as handshaking until the guard drops.
    pub fn handshake_started(&self) -> Handshaking {
        if let Some(stats) = &self.0 {
            stats.handshaking.fetch_add(1, Ordering::Relaxed);
        }
        Handshaking(self.0.clone())
    }

    /// A connection accepted: handshaking until [`ConnectionMetrics::authenticated`] (or
    /// until it is dropped, if it never authenticates).
    pub fn connection_accepted(&self) -> ConnectionMetrics {
        ConnectionMetrics {
            handshaking: self.handshake_started(),
            net: self.clone(),
        }
    }

    /// Counts a handshake that failed (`Err(_)` of the outer result: the deadline passed).
    pub fn record_handshake<E>(&self, result: &Result<Result<(), HandshakeError>, E>) {
        let why = match result {
            Ok(Ok(())) => return,
            Ok(Err(e)) => HandshakeFailure::of(e),
            Err(_) => HandshakeFailure::Timeout,
        };
        self.handshake_failed(why);
    }

    pub fn handshake_failed(&self, why: HandshakeFailure) {
        if let Some(stats) = &self.0 {
            stats.handshake_failures[why as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A session opened; it counts as open until the handle drops.
    pub fn session_started(&self, session: SessionId, dialect: Dialect) -> SessionMetrics {
        SessionMetrics(self.0.as_ref().map(|stats| {
            stats.sessions[dialect as usize].fetch_add(1, Ordering::SeqCst);
            OpenSession {
                stats: stats.clone(),
                session,
                dialect,
                watched: false,
                ended: None,
            }
        }))
    }
}

/// A connection between accept and authentication, in the metrics.
pub(crate) struct ConnectionMetrics {
    net: NetMetrics,
    handshaking: Handshaking,
}

impl ConnectionMetrics {
    pub fn record_handshake<E>(&self, result: &Result<Result<(), HandshakeError>, E>) {
        self.net.record_handshake(result);
    }

    pub fn handshake_failed(&self, why: HandshakeFailure) {
        self.net.handshake_failed(why);
    }

    /// The peer authenticated: no longer handshaking; its session records into the result.
    pub fn authenticated(self) -> NetMetrics {
        drop(self.handshaking);
        self.net
    }
}

/// A connection in the handshake, until this drops.
pub(crate) struct Handshaking(Option<Arc<NetStats>>);

impl Drop for Handshaking {
    fn drop(&mut self) {
        if let Some(stats) = &self.0 {
            stats.handshaking.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// One session's place in the metrics: open until this drops, and meanwhile its reply
/// queue read at each scrape (native sessions). One small field of the session's task,
/// which an idle session keeps for its whole life.
pub(crate) struct SessionMetrics(Option<OpenSession>);

struct OpenSession {
    stats: Arc<NetStats>,
    session: SessionId,
    dialect: Dialect,
    /// Its reply queue is read at each scrape.
    watched: bool,
    /// Why it ended, counted when it stops being open (at drop).
    ended: Option<SessionEnd>,
}

impl SessionMetrics {
    /// Reads this session's reply queue at each scrape from now on. `probe` is only built
    /// when the node collects metrics.
    pub fn watch_reply_queue(&mut self, probe: impl FnOnce() -> QueueProbe) {
        if let Some(open) = &mut self.0 {
            open.stats.reply_queues.lock().insert(open.session, probe());
            open.watched = true;
        }
    }

    /// Why the session ended. It is counted as ended when this drops, in the same moment
    /// it stops counting as open, so no scrape sees it as both.
    pub fn ended(&mut self, why: SessionEnd) {
        if let Some(open) = &mut self.0 {
            open.ended = Some(why);
        }
    }
}

impl Drop for SessionMetrics {
    fn drop(&mut self) {
        if let Some(open) = &self.0 {
            if open.watched {
                open.stats.reply_queues.lock().remove(&open.session);
            }
            // Open first, ended second: see `NetStats::sessions`.
            open.stats.sessions[open.dialect as usize].fetch_sub(1, Ordering::SeqCst);
            if let Some(why) = open.ended {
                open.stats.sessions_ended[why as usize].fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_follow_their_guards_and_failures_their_reasons() {
        let stats = Arc::new(NetStats::default());
        let metrics = NetMetrics::new(stats.clone());
        let a = metrics.handshake_started();
        let b = metrics.session_started(1, Dialect::Pickle);
        assert_eq!(
            (stats.handshaking(), stats.sessions(Dialect::Pickle)),
            (1, 1)
        );
        assert_eq!(stats.sessions(Dialect::Native), 0);
        drop((a, b));
        assert_eq!(
            (stats.handshaking(), stats.sessions(Dialect::Pickle)),
            (0, 0)
        );

        let timed_out: Result<Result<(), HandshakeError>, ()> = Err(());
        metrics.record_handshake(&timed_out);
        metrics.record_handshake::<()>(&Ok(Err(HandshakeError::PeerRejected)));
        metrics.record_handshake::<()>(&Ok(Err(HandshakeError::NoAnswer(Default::default()))));
        metrics.record_handshake::<()>(&Ok(Ok(())));
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        metrics.record_handshake::<()>(&Ok(Err(HandshakeError::Frame(reset.into()))));
        let other = std::io::Error::other("disk on fire");
        metrics.record_handshake::<()>(&Ok(Err(HandshakeError::Frame(other.into()))));
        let counts: Vec<_> = HandshakeFailure::ALL
            .iter()
            .map(|&why| (why.label(), stats.handshake_failures(why)))
            .collect();
        assert_eq!(
            counts,
            [
                ("wrong_key", 1),
                ("timeout", 2),
                ("refused", 0),
                ("closed", 1),
                ("tls", 0),
                ("other", 1)
            ]
        );

        let mut watched = metrics.session_started(7, Dialect::Native);
        watched.watch_reply_queue(|| Box::new(|| (3, 300)));
        let mut also = metrics.session_started(8, Dialect::Native);
        also.watch_reply_queue(|| Box::new(|| (1, 10)));
        assert_eq!(stats.replies_queued(), (4, 310));
        watched.ended(SessionEnd::ClientClosed);
        // Still open while it drains: not yet counted as ended.
        assert_eq!(stats.sessions(Dialect::Native), 2);
        assert_eq!(stats.sessions_ended(SessionEnd::ClientClosed), 0);
        drop(watched);
        assert_eq!(stats.replies_queued(), (1, 10));
        assert_eq!(stats.sessions(Dialect::Native), 1);
        assert_eq!(stats.sessions_ended(SessionEnd::ClientClosed), 1);
    }

    #[test]
    fn without_stats_nothing_is_built_or_counted() {
        let metrics = NetMetrics::default();
        let _guard = metrics.handshake_started();
        let mut session = metrics.session_started(1, Dialect::Native);
        session.ended(SessionEnd::Error);
        let probe_built = std::cell::Cell::new(false);
        session.watch_reply_queue(|| {
            probe_built.set(true);
            Box::new(|| (0, 0))
        });
        assert!(session.0.is_none() && !probe_built.get());
    }
}

//! Node settings. Every field states its default and when to change it.

use std::time::Duration;

use syncman_protocol::{DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME};

/// How a node behaves. Build it with [`Config::new`] and adjust fields; [`Config::validate`]
/// (called by the builder) rejects values that cannot work. `Debug` never shows the authkey.
#[derive(Clone)]
pub struct Config {
    /// The shared secret every client proves it holds. An empty key still runs the
    /// handshake (as CPython does) but protects nothing.
    pub authkey: Vec<u8>,
    /// Largest frame accepted or sent after authentication. Default 64 MiB. Before
    /// authentication the limit is always CPython's 256 bytes.
    pub max_frame: usize,
    /// Connections served at once, authenticated or not; further clients wait in the listen
    /// backlog. Each needs a file descriptor (the `syncman` binary raises its open-file
    /// limit to the hard limit at start). Default 8192.
    pub max_connections: usize,
    /// Connections in the handshake (not yet authenticated) at once, node-wide; when
    /// reached, the node stops accepting until one finishes, so new clients wait in the
    /// listen backlog rather than being turned away. Default 4096.
    pub max_handshakes: usize,
    /// Connections in the handshake at once from one IP address; past it a connection is
    /// refused with a reason (`#REFUSED#`), so one address cannot take every handshake
    /// place. High enough for a burst of a thousand honest connects. Default 1024.
    pub max_handshakes_per_address: usize,
    /// Time a client has to answer the node's challenge: honest clients answer at once,
    /// so a silent peer is let go after this instead of holding its place for the whole
    /// `handshake_timeout`. On a TLS listener it also bounds the TLS handshake, which
    /// comes first. Default 3 s.
    pub first_answer_timeout: Duration,
    /// How long a connection may be silent before the node probes whether its peer is
    /// still there (TCP keepalive; then 3 probes `keepalive / 3` apart, at least 1 s). A
    /// peer cut off without a FIN or RST (network cut, host down) is thereby found dead
    /// within about twice this time, and its session ends: locks released, waits withdrawn.
    /// `None` disables it. Default 30 s.
    pub keepalive: Option<Duration>,
    /// Time a client has to complete the handshake (on a TLS listener, the TLS handshake
    /// and the authkey handshake together). Default 10 s.
    pub handshake_timeout: Duration,
    /// Refuse CPython ≤ 3.11's MD5 answers. Default false (3.11 clients welcome).
    pub require_sha256: bool,
    /// Release the locks and semaphore units a session holds when it ends. Default true;
    /// false keeps CPython's behaviour (held until someone releases them).
    pub release_on_disconnect: bool,
    /// Calls one session may have parked at once; beyond it a call fails with `Busy`.
    /// Default 10 000.
    pub max_parked_per_session: usize,
    /// Replies queued for one connection before the node stops reading its requests
    /// (back-pressure on a client that does not read). Default 1024.
    pub reply_queue: usize,
    /// Bytes of replies queued for one connection before the node stops reading its
    /// requests: bounds what a client that does not read can make the node hold (a few
    /// large results would otherwise pass the count limit). Default 64 MiB.
    pub reply_queue_bytes: usize,
    /// How long shutdown waits for connections to flush their replies. Default 5 s.
    pub drain_timeout: Duration,
    /// Objects the node holds at most; creating one more fails with `MemoryError`.
    /// Default 1 000 000.
    pub max_objects: usize,
    /// Anonymous objects one session may hold references to at once (named objects count
    /// only towards `max_objects`); beyond it `create` fails with `MemoryError`. Default
    /// 100 000.
    pub max_objects_per_session: usize,
    /// Bytes all objects may hold, counted as the encoded size of their keys, values and
    /// items, including the items of parked `put`s; a call that would hold more fails with
    /// `MemoryError` and changes nothing. Default a quarter of the machine's memory.
    pub max_bytes: usize,
    /// Bounds on the heartbeat deadline a client may ask for in its hello: a client that
    /// heartbeats and then falls silent this long (a stopped or wedged process, whose
    /// kernel still answers TCP keepalive) loses its session and what it held. Clients
    /// that do not heartbeat (CPython's) are not subject to it. Default 1 s to 300 s.
    pub heartbeat_ttl_bounds: (Duration, Duration),
    /// Typeids CPython clients may ask for beyond SyncManager's, as served by a CPython
    /// server that registered them (`BaseManager.register('get_queue', callable=...)`).
    /// Empty by default.
    pub served_typeids: Vec<ServedTypeid>,
    /// Collect metrics for [`Server::metrics`](crate::Server::metrics): calls and their
    /// latency by typeid and method, sessions, handshakes, reply queues
    /// (`docs/operations/metrics.md`). Default false: collecting adds two clock reads and a
    /// few atomic additions to every call.
    pub collect_metrics: bool,
    /// Back-off for wrong keys from one IP address ([`WrongKeyPolicy`]).
    pub wrong_keys: WrongKeyPolicy,
}

/// How the node slows down guessing of its key: after `limit` wrong keys from one IP
/// address within `window`, that address's new connections are refused (with a
/// `#REFUSED#` frame that says why and for how long) for `penalty`, doubled for each
/// further penalty up to `max_penalty`. A right key from the address, or a quiet spell as
/// long as `max_penalty`, forgets it. Other addresses are never affected; clients behind
/// one NAT address share its fate. `limit` 0 turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongKeyPolicy {
    /// Wrong keys within `window` that start a penalty. Default 5; 0 disables.
    pub limit: u32,
    /// Default 60 s.
    pub window: Duration,
    /// The first penalty. Default 10 s.
    pub penalty: Duration,
    /// The longest penalty. Default 10 min.
    pub max_penalty: Duration,
    /// Addresses remembered at most; past it the least recently seen is forgotten, so the
    /// table's memory is bounded (about 100 bytes an address). Default 16 384.
    pub table_size: usize,
}

impl Default for WrongKeyPolicy {
    fn default() -> Self {
        WrongKeyPolicy {
            limit: Self::DEFAULT_LIMIT,
            window: Self::DEFAULT_WINDOW,
            penalty: Self::DEFAULT_PENALTY,
            max_penalty: Self::DEFAULT_MAX_PENALTY,
            table_size: Self::DEFAULT_TABLE_SIZE,
        }
    }
}

impl WrongKeyPolicy {
    /// Default of [`WrongKeyPolicy::limit`].
    pub const DEFAULT_LIMIT: u32 = 5;
    /// Default of [`WrongKeyPolicy::window`].
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
    /// Default of [`WrongKeyPolicy::penalty`].
    pub const DEFAULT_PENALTY: Duration = Duration::from_secs(10);
    /// Default of [`WrongKeyPolicy::max_penalty`].
    pub const DEFAULT_MAX_PENALTY: Duration = Duration::from_secs(600);
    /// Default of [`WrongKeyPolicy::table_size`].
    pub const DEFAULT_TABLE_SIZE: usize = 16_384;

    fn validate(&self) -> Result<(), ConfigError> {
        if self.limit == 0 {
            return Ok(());
        }
        if self.window.is_zero() || self.penalty.is_zero() || self.table_size == 0 {
            return Err(ConfigError(
                "the wrong-key window, penalty and table size must be positive".into(),
            ));
        }
        if self.penalty > self.max_penalty {
            return Err(ConfigError(
                "the wrong-key penalty must not exceed its maximum".into(),
            ));
        }
        Ok(())
    }
}

/// A typeid served to CPython clients that registered it without a callable
/// (`QueueManager.register('get_queue')` then `m.get_queue()`): each call answers with one
/// named object, made on first use and shared with every client (Rust clients reach it by
/// its name), or with a new anonymous object of a type.
///
/// Written `TYPEID=TYPE:NAME` (`get_queue=Queue:jobs`) or `TYPEID=TYPE` (`new_board=dict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedTypeid {
    /// The name the client registered and calls (`get_queue`).
    pub typeid: String,
    /// A SyncManager typeid the node serves (`Queue`, `dict`, ...).
    pub object_type: String,
    /// The named object every call answers with; `None` for a new object per call.
    pub name: Option<String>,
}

impl std::str::FromStr for ServedTypeid {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let bad = || {
            ConfigError(format!(
                "a served typeid is TYPEID=TYPE or TYPEID=TYPE:NAME (get_queue=Queue:jobs), not {s:?}"
            ))
        };
        let (typeid, target) = s.split_once('=').ok_or_else(bad)?;
        let (object_type, name) = match target.split_once(':') {
            Some((t, n)) if !n.is_empty() => (t, Some(n.to_owned())),
            Some(_) => return Err(bad()),
            None => (target, None),
        };
        let identifier = |w: &str| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !identifier(typeid) || !identifier(object_type) {
            return Err(ConfigError(format!(
                "{s:?}: the typeid and the type must be Python identifiers"
            )));
        }
        Ok(ServedTypeid {
            typeid: typeid.to_owned(),
            object_type: object_type.to_owned(),
            name,
        })
    }
}

impl Config {
    /// Default of [`Config::max_frame`].
    pub const DEFAULT_MAX_FRAME: usize = DEFAULT_MAX_FRAME;
    /// Default of [`Config::max_connections`].
    pub const DEFAULT_MAX_CONNECTIONS: usize = 8192;
    /// Default of [`Config::max_handshakes`].
    pub const DEFAULT_MAX_HANDSHAKES: usize = 4096;
    /// Default of [`Config::max_handshakes_per_address`].
    pub const DEFAULT_MAX_HANDSHAKES_PER_ADDRESS: usize = 1024;
    /// Default of [`Config::first_answer_timeout`].
    pub const DEFAULT_FIRST_ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
    /// Default of [`Config::handshake_timeout`].
    pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of [`Config::keepalive`].
    pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);
    /// Default of [`Config::max_parked_per_session`].
    pub const DEFAULT_MAX_PARKED: usize = 10_000;
    /// Default of [`Config::reply_queue`].
    pub const DEFAULT_REPLY_QUEUE: usize = 1024;
    /// Default of [`Config::reply_queue_bytes`].
    pub const DEFAULT_REPLY_QUEUE_BYTES: usize = 64 * 1024 * 1024;
    /// Default of [`Config::max_objects`].
    pub const DEFAULT_MAX_OBJECTS: usize = 1_000_000;
    /// Default of [`Config::max_objects_per_session`].
    pub const DEFAULT_MAX_OBJECTS_PER_SESSION: usize = 100_000;

    /// Default of [`Config::max_bytes`]: a quarter of the machine's physical memory (1 GiB
    /// where it cannot be read), and at least 64 MiB.
    pub fn default_max_bytes() -> usize {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        let (pages, page) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        let physical = if pages > 0 && page > 0 {
            (pages as u128 * page as u128).min(usize::MAX as u128) as usize
        } else {
            4 << 30
        };
        (physical / 4).max(64 << 20)
    }

    /// Default of [`Config::drain_timeout`].
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default of [`Config::heartbeat_ttl_bounds`].
    pub const DEFAULT_HEARTBEAT_TTL_BOUNDS: (Duration, Duration) =
        (Duration::from_secs(1), Duration::from_secs(300));

    pub fn new(authkey: impl Into<Vec<u8>>) -> Self {
        Config {
            authkey: authkey.into(),
            max_frame: Self::DEFAULT_MAX_FRAME,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_handshakes: Self::DEFAULT_MAX_HANDSHAKES,
            max_handshakes_per_address: Self::DEFAULT_MAX_HANDSHAKES_PER_ADDRESS,
            first_answer_timeout: Self::DEFAULT_FIRST_ANSWER_TIMEOUT,
            handshake_timeout: Self::DEFAULT_HANDSHAKE_TIMEOUT,
            keepalive: Some(Self::DEFAULT_KEEPALIVE),
            require_sha256: false,
            release_on_disconnect: true,
            max_parked_per_session: Self::DEFAULT_MAX_PARKED,
            reply_queue: Self::DEFAULT_REPLY_QUEUE,
            reply_queue_bytes: Self::DEFAULT_REPLY_QUEUE_BYTES,
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
            heartbeat_ttl_bounds: Self::DEFAULT_HEARTBEAT_TTL_BOUNDS,
            max_objects: Self::DEFAULT_MAX_OBJECTS,
            max_objects_per_session: Self::DEFAULT_MAX_OBJECTS_PER_SESSION,
            max_bytes: Self::default_max_bytes(),
            served_typeids: Vec::new(),
            collect_metrics: false,
            wrong_keys: WrongKeyPolicy::default(),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_frame < HANDSHAKE_MAX_FRAME {
            return Err(ConfigError(format!(
                "max_frame must be at least {HANDSHAKE_MAX_FRAME} bytes"
            )));
        }
        if self.max_connections == 0
            || self.max_handshakes == 0
            || self.max_handshakes_per_address == 0
        {
            return Err(ConfigError(
                "max_connections, max_handshakes and max_handshakes_per_address must be at least 1"
                    .into(),
            ));
        }
        let (low, high) = self.heartbeat_ttl_bounds;
        if low.is_zero() || low > high {
            return Err(ConfigError(
                "heartbeat_ttl_bounds must be positive and in order".into(),
            ));
        }
        if self.max_objects == 0 || self.max_objects_per_session == 0 {
            return Err(ConfigError(
                "max_objects and max_objects_per_session must be at least 1".into(),
            ));
        }
        if self.first_answer_timeout.is_zero() {
            return Err(ConfigError("first_answer_timeout must be positive".into()));
        }
        if self.keepalive.is_some_and(|k| k < Duration::from_secs(1)) {
            return Err(ConfigError("keepalive must be at least 1 s".into()));
        }
        if self.handshake_timeout.is_zero() {
            return Err(ConfigError("handshake_timeout must be positive".into()));
        }
        if !(1..=u32::MAX as usize).contains(&self.reply_queue_bytes) {
            return Err(ConfigError(
                "reply_queue_bytes must be between 1 and 4 GiB".into(),
            ));
        }
        for (i, served) in self.served_typeids.iter().enumerate() {
            for earlier in &self.served_typeids[..i] {
                if earlier.typeid == served.typeid {
                    return Err(ConfigError(format!(
                        "the typeid {:?} is served twice",
                        served.typeid
                    )));
                }
                if served.name.is_some()
                    && earlier.name == served.name
                    && earlier.object_type != served.object_type
                {
                    return Err(ConfigError(format!(
                        "the name {:?} is served as a {} and as a {}",
                        served.name.as_deref().unwrap_or_default(),
                        earlier.object_type,
                        served.object_type
                    )));
                }
            }
        }
        self.wrong_keys.validate()?;
        if self.max_parked_per_session == 0 || self.reply_queue == 0 {
            return Err(ConfigError(
                "max_parked_per_session and reply_queue must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Config {
            authkey,
            max_frame,
            max_connections,
            max_handshakes,
            max_handshakes_per_address,
            first_answer_timeout,
            keepalive,
            handshake_timeout,
            require_sha256,
            release_on_disconnect,
            max_parked_per_session,
            reply_queue,
            reply_queue_bytes,
            drain_timeout,
            heartbeat_ttl_bounds,
            max_objects,
            max_objects_per_session,
            max_bytes,
            served_typeids,
            collect_metrics,
            wrong_keys,
        } = self;
        let key = if authkey.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        };
        f.debug_struct("Config")
            .field("authkey", &key)
            .field("max_frame", max_frame)
            .field("max_connections", max_connections)
            .field("max_handshakes", max_handshakes)
            .field("max_handshakes_per_address", max_handshakes_per_address)
            .field("first_answer_timeout", first_answer_timeout)
            .field("keepalive", keepalive)
            .field("handshake_timeout", handshake_timeout)
            .field("require_sha256", require_sha256)
            .field("release_on_disconnect", release_on_disconnect)
            .field("max_parked_per_session", max_parked_per_session)
            .field("reply_queue", reply_queue)
            .field("reply_queue_bytes", reply_queue_bytes)
            .field("drain_timeout", drain_timeout)
            .field("heartbeat_ttl_bounds", heartbeat_ttl_bounds)
            .field("max_objects", max_objects)
            .field("max_objects_per_session", max_objects_per_session)
            .field("max_bytes", max_bytes)
            .field("served_typeids", served_typeids)
            .field("collect_metrics", collect_metrics)
            .field("wrong_keys", wrong_keys)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_authkey() {
        let shown = format!("{:?}", Config::new(b"hunter2-secret".to_vec()));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains("max_frame"),
            "{shown}"
        );
    }
}

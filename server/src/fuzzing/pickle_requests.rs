//! CPython's requests through the pickle dialect: `check_pickle_requests`.
//!
//! The harness plays a CPython client's side of the sockets and nothing else: each frame
//! goes to the dialect's own entry points (`net/pickle/mod.rs`: `open` for a connection's
//! first frame, `start_call` and `NodeCall::finish` for a proxy connection's calls),
//! which are what the connection task runs between reading a frame and writing its reply.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::FutureExt;
use syncman_protocol::fuzzing::block_on;
use syncman_protocol::pickle::{self, Limits, Pickle};

use crate::config::{Config, ServedTypeid};
use crate::net::pickle::{open, start_call, NodeCall, Opening, PyReply, Started, CALL};
use crate::node::backend::{Backend, ObjectId};
use crate::node::memory::{MemoryBackend, TokenCounter};
use crate::node::object::WithdrawReason;
use crate::node::objects::register_builtins;
use crate::node::registry::Registry;
use crate::node::session::Session;
use crate::node::Node;

/// Separates the records of one input.
pub const SEPARATOR: &[u8] = b"\n%%\n";

/// Records read from one input; the rest is ignored, so one input stays quick.
const MAX_RECORDS: usize = 64;

/// Proxy connections open at once (CPython opens one per client thread).
const CONNECTIONS: usize = 3;

/// The node's limits, small so that the fuzzer reaches them.
const MAX_OBJECTS: usize = 48;
const MAX_BYTES: usize = 256 << 10;
const MAX_FRAME: usize = 1 << 20;

/// The objects every run starts with, made by one-shot `create` calls as CPython's client
/// makes them, before the input is read: their idents are `"1"`, `"2"`, ... in this
/// order, so the corpus can name them. `get_jobs` is a served typeid (`get_jobs=Queue:jobs`,
/// a named object); `new_board` (`new_board=dict`) is served too, not made here.
pub const SEEDED: &[&str] = &[
    "dict",
    "list",
    "Queue",
    "JoinableQueue",
    "Lock",
    "RLock",
    "Condition",
    "Event",
    "Semaphore",
    "BoundedSemaphore",
    "Barrier",
    "Namespace",
    "Value",
    "Array",
    "get_jobs",
];

/// The constructor arguments of a [`SEEDED`] typeid.
fn seed_args(typeid: &str) -> Vec<Pickle> {
    let int = |n| Pickle::Int(n);
    match typeid {
        "Semaphore" => vec![int(2)],
        "Barrier" => vec![int(2)],
        "Value" => vec![Pickle::Str("i".into()), int(7)],
        "Array" => vec![
            Pickle::Str("i".into()),
            Pickle::List(vec![int(1), int(2), int(3)]),
        ],
        _ => vec![],
    }
}

/// A request as CPython's client pickles it: `(ident, methodname, args, kwds)`.
pub(crate) fn request(ident: Option<&str>, method: &str, args: Vec<Pickle>) -> Vec<u8> {
    pickle::dumps(&Pickle::Tuple(vec![
        ident.map_or(Pickle::None, |i| Pickle::Str(i.into())),
        Pickle::Str(method.into()),
        Pickle::Tuple(args),
        Pickle::Dict(vec![]),
    ]))
}

fn str_of(s: &str) -> Pickle {
    Pickle::Str(s.into())
}

/// The input's records: split at [`SEPARATOR`], at most [`MAX_RECORDS`].
fn records(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < MAX_RECORDS {
        match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => {
                out.push(rest);
                break;
            }
        }
    }
    out
}

/// Input: records separated by [`SEPARATOR`] (at most [`MAX_RECORDS`]), each a routing
/// byte and then one frame's payload, a pickled request as CPython's client sends it. The
/// routing byte's low two bits pick the connection: 0 a new one-shot connection (the frame
/// is its first), 1 to 3 one of three proxy connections (open at the start; once closed,
/// the next frame routed to it opens it again as a new connection's first frame). Bit
/// 0x80: the client closes that connection after its reply. The node starts with the
/// [`SEEDED`] objects and three open proxy connections.
///
/// Every request gets what CPython's server sends: one reply (two for `shutdown`), or,
/// for a call that waits, its reply when the wait ends, or nothing when the client leaves
/// or sends another request meanwhile (the call is withdrawn). Each reply is a pickle of
/// `('#RETURN'|'#ERROR'|'#TRACEBACK'|'#PROXY', value)` that reads back, fits in a frame, and
/// names no global that [`pickle::check_globals`] refuses; an `#ERROR` carries an exception
/// a client can import; a `#PROXY` a token for a live object of its typeid; `create`
/// answers `(ident, exposed)` for a live object of the type asked for; `number_of_objects`
/// the node's count; no reply tells of a stored value that cannot be read or of a method
/// that panicked. A key stored in a dict (`__setitem__` answered) is in it right after.
///
/// After every record the node's books agree: one live session per open connection, no
/// more objects or bytes than the limits, named objects uncounted and anonymous ones held
/// at least once (no reference count at zero, none wrapped), no more parked calls than
/// waiting connections. After the last, once every connection is closed: no session, no
/// parked call, no re-entrant lock held; and unless a client shut the node down, it still
/// creates, fills, reads and frees a dict and counts its objects right.
pub fn check_pickle_requests(data: &[u8]) {
    block_on(async {
        let mut run = Run::start().await;
        for record in records(data) {
            let Some((&route, frame)) = record.split_first() else {
                continue;
            };
            if run.shut_down {
                // The node takes no more connections, and its proxy connections ended.
                break;
            }
            if frame.len() > MAX_FRAME {
                // The frame codec refuses it before the dialect sees it.
                continue;
            }
            match (route & 0x03) as usize {
                0 => {
                    if let Some(session) = run.first_frame(frame).await {
                        // The client opened a proxy connection and left at once.
                        session.end(WithdrawReason::Cancelled).await;
                    }
                }
                k => run.on_connection(k - 1, frame, route & 0x80 != 0).await,
            }
            run.poll_waiting().await;
            run.check_books().await;
        }
        run.finish().await;
    })
}

/// One of the client's proxy connections.
enum Connection {
    Closed,
    Idle(Session<MemoryBackend>),
    /// Its call waits on the node (boxed: a call is larger than a session).
    Waiting(Session<MemoryBackend>, Box<NodeCall>),
}

struct Run {
    node: Arc<Node<MemoryBackend>>,
    connections: [Connection; CONNECTIONS],
    /// A client asked the node to shut down.
    shut_down: bool,
}

/// Where the harness's connections come from, for log lines.
fn peer() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1))
}

/// What a frame asks, as far as the harness can read it (for request-specific checks).
struct Asked {
    ident: Option<String>,
    method: String,
    args: Vec<Pickle>,
}

impl Asked {
    fn of(frame: &[u8]) -> Option<Asked> {
        let Ok(Pickle::Tuple(parts)) = pickle::loads(frame, &Limits::default()) else {
            return None;
        };
        let [ident, Pickle::Str(method), args, _] = &parts[..] else {
            return None;
        };
        let ident = match ident {
            Pickle::Str(ident) => Some(ident.clone()),
            _ => None,
        };
        let args = match pickle::normalize(args.clone()) {
            Pickle::Tuple(items) | Pickle::List(items) => items,
            _ => return None,
        };
        Some(Asked {
            ident,
            method: method.clone(),
            args,
        })
    }
}

/// Limits for reading a reply back: CPython's client reads any size.
fn reply_limits() -> Limits {
    Limits {
        max_depth: 1000,
        max_nodes: usize::MAX,
        max_bytes: usize::MAX,
        max_memo: usize::MAX,
        max_stack: usize::MAX,
        max_marks: 1000,
    }
}

/// Tracebacks that mean the node is wrong, not the request.
const BROKEN: &[&str] = &[
    "internal error in the node",
    "cannot read a stored value",
    "waited on the node",
    "a dict iterator without its dict",
    "a list's copy is not a list",
];

impl Run {
    async fn start() -> Run {
        let mut registry = Registry::default();
        register_builtins::<TokenCounter>(&mut registry);
        let mut config = Config::new(b"fuzz".to_vec());
        config.max_objects = MAX_OBJECTS;
        config.max_bytes = MAX_BYTES;
        config.max_frame = MAX_FRAME;
        config.served_typeids = vec![
            ServedTypeid {
                typeid: "get_jobs".into(),
                object_type: "Queue".into(),
                name: Some("jobs".into()),
            },
            ServedTypeid {
                typeid: "new_board".into(),
                object_type: "dict".into(),
                name: None,
            },
        ];
        let backend = MemoryBackend::with_limits(registry, MAX_OBJECTS, MAX_BYTES);
        let node = Arc::new(Node::new(config, backend));
        let mut run = Run {
            node,
            connections: [Connection::Closed, Connection::Closed, Connection::Closed],
            shut_down: false,
        };
        for (i, typeid) in SEEDED.iter().enumerate() {
            let mut args = seed_args(typeid);
            args.insert(0, str_of(typeid));
            let created = run.one_shot(&request(None, "create", args)).await;
            let (ident, _) = created_ident(&created);
            assert_eq!(ident, (i + 1) as ObjectId, "seeded {typeid} has another id");
        }
        let accept = request(None, "accept_connection", vec![str_of("MainProcess|T")]);
        for k in 0..CONNECTIONS {
            let session = run.first_frame(&accept).await.expect("a proxy connection");
            run.connections[k] = Connection::Idle(session);
        }
        run.check_books().await;
        run
    }

    /// A one-shot control call that must answer with one reply: that reply.
    async fn one_shot(&mut self, frame: &[u8]) -> (String, Pickle) {
        match open(&self.node, frame, peer()).await {
            Opening::OneShot {
                mut replies,
                shutdown: false,
            } if replies.len() == 1 => {
                let reply = replies.pop().expect("one reply");
                self.check_reply(reply, Asked::of(frame).as_ref(), true)
                    .await
            }
            _ => panic!("a control call did not get one reply"),
        }
    }

    /// A connection's first frame: checks its replies; the session if it opened a proxy
    /// connection.
    async fn first_frame(&mut self, frame: &[u8]) -> Option<Session<MemoryBackend>> {
        let asked = Asked::of(frame);
        match open(&self.node, frame, peer()).await {
            Opening::Proxy(session) => {
                let (kind, value) = self
                    .check_reply(PyReply::Return(Pickle::None), asked.as_ref(), false)
                    .await;
                assert_eq!((kind.as_str(), value), ("#RETURN", Pickle::None));
                Some(session)
            }
            Opening::OneShot { replies, shutdown } => {
                let asked_shutdown = asked.as_ref().is_some_and(|a| a.method == "shutdown");
                assert!(!shutdown || asked_shutdown, "a shutdown nobody asked for");
                assert_eq!(
                    replies.len(),
                    if shutdown { 2 } else { 1 },
                    "a one-shot connection's replies"
                );
                for reply in replies {
                    let (kind, value) = self.check_reply(reply, asked.as_ref(), true).await;
                    if shutdown {
                        assert_eq!((kind.as_str(), value), ("#RETURN", Pickle::None));
                    }
                }
                if shutdown {
                    self.node.shutdown.cancel();
                    self.shut_down = true;
                }
                None
            }
        }
    }

    /// A frame on proxy connection `k`; `close`: the client closes it afterwards.
    async fn on_connection(&mut self, k: usize, frame: &[u8], close: bool) {
        let connection = std::mem::replace(&mut self.connections[k], Connection::Closed);
        let connection = match connection {
            Connection::Closed => match self.first_frame(frame).await {
                Some(session) => Connection::Idle(session),
                None => Connection::Closed,
            },
            Connection::Idle(mut session) => match start_call(&mut session, frame).await {
                Started::Answered(reply) => {
                    let asked = Asked::of(frame);
                    let (kind, _) = self.check_reply(reply, asked.as_ref(), false).await;
                    if let (Some(asked), "#RETURN") = (&asked, kind.as_str()) {
                        self.stored_key_is_found(&mut session, asked).await;
                    }
                    Connection::Idle(session)
                }
                Started::Waiting(call) => {
                    assert_eq!(session.parked(), 1, "a waiting call is parked");
                    Connection::Waiting(session, Box::new(call))
                }
            },
            Connection::Waiting(session, _) => {
                // A request while a call waits: the client gave up on the call; the node
                // withdraws it and the connection ends, with no reply to either.
                close_connection(session).await;
                Connection::Closed
            }
        };
        self.connections[k] = match connection {
            Connection::Idle(session) | Connection::Waiting(session, _) if close => {
                close_connection(session).await;
                Connection::Closed
            }
            other => other,
        };
    }

    /// Replies to waiting calls that have their answer.
    async fn poll_waiting(&mut self) {
        for k in 0..CONNECTIONS {
            let connection = std::mem::replace(&mut self.connections[k], Connection::Closed);
            self.connections[k] = match connection {
                Connection::Waiting(mut session, call) => {
                    // Outside tokio's cooperative budget, so an answer that is there is seen.
                    match tokio::task::unconstrained(session.next_answer()).now_or_never() {
                        Some((id, reply)) => {
                            assert_eq!(id, CALL, "an answer to a call nobody made");
                            let reply = (*call).finish(&mut session, reply).await;
                            self.check_reply(reply, None, false).await;
                            assert_eq!(session.parked(), 0, "answered, and still parked");
                            Connection::Idle(session)
                        }
                        None => Connection::Waiting(session, call),
                    }
                }
                other => other,
            };
        }
    }

    /// After `dict[key] = value` succeeded, the same connection finds `key` again (the
    /// node's canonical keys agree with themselves, whatever Python value the key is).
    async fn stored_key_is_found(&self, session: &mut Session<MemoryBackend>, asked: &Asked) {
        let (Some(ident), "__setitem__", [key, _]) =
            (&asked.ident, asked.method.as_str(), &asked.args[..])
        else {
            return;
        };
        let is_dict = ident
            .parse::<ObjectId>()
            .ok()
            .and_then(|id| self.node.backend.object(id))
            .is_some_and(|o| o.typeid() == "dict");
        if !is_dict {
            return;
        }
        let contains = request(Some(ident), "__contains__", vec![key.clone()]);
        let (kind, value) = self.call(session, &contains).await;
        assert_eq!(
            (kind.as_str(), &value),
            ("#RETURN", &Pickle::Bool(true)),
            "a key just stored is not in the dict: {key:?}"
        );
    }

    /// Pickles a reply as the connection sends it (its frame limit is the node's) and checks
    /// what a client reads.
    async fn check_reply(
        &self,
        reply: PyReply,
        asked: Option<&Asked>,
        control: bool,
    ) -> (String, Pickle) {
        let mut bytes = Vec::new();
        reply.encode_into(&mut bytes, self.node.config.max_frame);
        assert!(
            bytes.len() <= self.node.config.max_frame,
            "a reply of {} bytes is over the frame limit ({}): the connection cannot send it",
            bytes.len(),
            self.node.config.max_frame
        );
        let read = pickle::loads(&bytes, &reply_limits()).expect("a reply reads back");
        if let Err(e) = pickle::check_globals(&read) {
            panic!("a reply names code to run: {e}");
        }
        let Pickle::Tuple(parts) = read else {
            panic!("a reply is not a tuple: {read:?}");
        };
        let Ok([Pickle::Str(kind), value]) = <[Pickle; 2]>::try_from(parts) else {
            panic!("a reply is not (kind, value)");
        };
        match kind.as_str() {
            "#RETURN" => {}
            "#ERROR" => check_exception(&value),
            "#TRACEBACK" => {
                let Pickle::Str(text) = &value else {
                    panic!("a #TRACEBACK without its text: {value:?}");
                };
                for broken in BROKEN {
                    assert!(!text.contains(broken), "the node failed: {text}");
                }
            }
            "#PROXY" => self.check_proxy(&value),
            other => panic!("a reply of kind {other:?}"),
        }
        if let (true, Some(asked)) = (control, asked) {
            if kind == "#RETURN" {
                self.check_control_result(asked, &value).await;
            }
        }
        (kind, value)
    }

    /// `('#PROXY', (exposed, token))`: the token names a live object of its typeid.
    fn check_proxy(&self, value: &Pickle) {
        let Pickle::Tuple(parts) = value else {
            panic!("a #PROXY value is not a tuple: {value:?}");
        };
        let [Pickle::Tuple(exposed), token] = &parts[..] else {
            panic!("a #PROXY value is not (exposed, token): {value:?}");
        };
        assert!(
            !exposed.is_empty() && exposed.iter().all(|m| matches!(m, Pickle::Str(_))),
            "a proxy's exposed methods: {exposed:?}"
        );
        let token = pickle::as_token(token).expect("a #PROXY carries a Token");
        let id: ObjectId = token.id.parse().expect("a token's id is the node's");
        let object = self
            .node
            .backend
            .object(id)
            .expect("a #PROXY names a live object");
        assert_eq!(object.typeid(), token.typeid);
    }

    /// What a control call answers, when it succeeds.
    async fn check_control_result(&self, asked: &Asked, value: &Pickle) {
        match asked.method.as_str() {
            "create" => {
                let (id, exposed) = created_ident(&("#RETURN".into(), value.clone()));
                let object = self
                    .node
                    .backend
                    .object(id)
                    .expect("create answered with a live object");
                let Some(Pickle::Str(typeid)) = asked.args.first() else {
                    panic!("create succeeded without a typeid");
                };
                let expected = self
                    .node
                    .config
                    .served_typeids
                    .iter()
                    .find(|s| &s.typeid == typeid)
                    .map_or(typeid.as_str(), |s| s.object_type.as_str());
                assert_eq!(object.typeid(), expected, "create made another type");
                assert!(!exposed.is_empty(), "create exposes no methods");
            }
            "number_of_objects" => {
                let count = self.node.backend.object_count().await;
                assert_eq!(value, &Pickle::Int(count as i128));
            }
            "dummy" | "incref" | "decref" | "shutdown" => assert_eq!(value, &Pickle::None),
            "debug_info" => assert!(matches!(value, Pickle::Str(_)), "{value:?}"),
            "get_methods" => match value {
                Pickle::Tuple(methods) => assert!(
                    methods.iter().all(|m| matches!(m, Pickle::Str(_))),
                    "{methods:?}"
                ),
                other => panic!("get_methods answered {other:?}"),
            },
            other => panic!("the control call {other:?} succeeded"),
        }
    }

    /// The node's books agree with each other and with the connections.
    async fn check_books(&self) {
        let backend = &self.node.backend;
        let open = self
            .connections
            .iter()
            .filter(|c| !matches!(c, Connection::Closed))
            .count();
        let waiting = self
            .connections
            .iter()
            .filter(|c| matches!(c, Connection::Waiting(..)))
            .count();
        assert_eq!(
            backend.live_sessions().await,
            open,
            "live sessions against open proxy connections"
        );
        let rows = backend.snapshot().await;
        assert_eq!(rows.len(), backend.object_count().await);
        assert!(rows.len() <= MAX_OBJECTS, "{} objects", rows.len());
        for row in &rows {
            match &row.name {
                Some(name) => assert_eq!(row.refs, 0, "named object {name} counted"),
                None => assert!(
                    (1..=u32::MAX as u64).contains(&row.refs),
                    "object {} ({}) has {} references",
                    row.id,
                    row.typeid,
                    row.refs
                ),
            }
        }
        let parked: u64 = rows.iter().map(|r| r.waiters).sum();
        assert!(
            parked <= waiting as u64,
            "{parked} calls parked on objects, {waiting} connections waiting"
        );
        let budget = backend.budget();
        assert!(budget.used() <= budget.limit(), "over the byte budget");
    }

    /// Every connection closes; then the final checks.
    async fn finish(mut self) {
        let why = if self.shut_down {
            WithdrawReason::Shutdown
        } else {
            WithdrawReason::Cancelled
        };
        for k in 0..CONNECTIONS {
            match std::mem::replace(&mut self.connections[k], Connection::Closed) {
                Connection::Closed => {}
                Connection::Idle(session) => {
                    session.end(why).await;
                }
                Connection::Waiting(mut session, _) => {
                    let _ = session.cancel(CALL);
                    session.end(why).await;
                }
            }
        }
        self.check_books().await;
        assert_eq!(self.node.backend.live_sessions().await, 0);
        let census = self
            .node
            .backend
            .census()
            .expect("the memory backend counts");
        let parked: u64 = census.iter().map(|c| c.waiters).sum();
        assert_eq!(parked, 0, "calls parked with no session: {census:?}");
        if self.shut_down {
            return;
        }
        self.locks_are_free().await;
        self.still_serves().await;
    }

    /// With every connection gone, no re-entrant lock is held: a new connection takes each
    /// `RLock`, and each `Condition` that is not over a plain `Lock`, at once. (A plain
    /// `Lock`'s Python hold outlives its connection, as CPython lets anyone release it.)
    async fn locks_are_free(&mut self) {
        let rows = self.node.backend.snapshot().await;
        let accept = request(None, "accept_connection", vec![str_of("MainProcess|check")]);
        for row in rows {
            let Some(object) = self.node.backend.object(row.id) else {
                continue;
            };
            let over_plain_lock = object
                .shares_state_with()
                .is_some_and(|(_, lock)| lock.typeid() == "Lock");
            let re_entrant = match row.typeid.as_str() {
                "RLock" => true,
                "Condition" => !over_plain_lock,
                _ => false,
            };
            if !re_entrant {
                continue;
            }
            let mut session = self.first_frame(&accept).await.expect("a proxy connection");
            let ident = row.id.to_string();
            let acquire = request(Some(&ident), "acquire", vec![Pickle::Bool(false)]);
            let (kind, value) = self.call(&mut session, &acquire).await;
            assert_eq!(
                (kind.as_str(), &value),
                ("#RETURN", &Pickle::Bool(true)),
                "{} {ident} is held with every connection gone: {}",
                row.typeid,
                object.describe()
            );
            let release = request(Some(&ident), "release", vec![]);
            let (kind, value) = self.call(&mut session, &release).await;
            assert_eq!((kind.as_str(), value), ("#RETURN", Pickle::None));
            session.end(WithdrawReason::Cancelled).await;
        }
    }

    /// A call that must answer at once.
    async fn call(&self, session: &mut Session<MemoryBackend>, frame: &[u8]) -> (String, Pickle) {
        match start_call(session, frame).await {
            Started::Answered(reply) => self.check_reply(reply, None, false).await,
            Started::Waiting(_) => panic!("a call that cannot wait waited"),
        }
    }

    /// A known-good sequence: a new connection, a dict made, filled, read and freed.
    async fn still_serves(&mut self) {
        let accept = request(None, "accept_connection", vec![str_of("MainProcess|check")]);
        let mut session = self.first_frame(&accept).await.expect("a proxy connection");
        let before = self.node.backend.object_count().await;
        let budget = self.node.backend.budget();
        let room = budget.limit() - budget.used() > 4096;
        let (kind, value) = self
            .one_shot(&request(None, "create", vec![str_of("dict")]))
            .await;
        if before >= MAX_OBJECTS || (!room && kind != "#RETURN") {
            assert_eq!(kind, "#TRACEBACK", "create past the node's limits");
            assert!(matches!(&value, Pickle::Str(t) if t.contains("MemoryError")));
        } else {
            let (id, _) = created_ident(&(kind, value));
            let ident = id.to_string();
            let key = || str_of("key");
            let set = request(Some(&ident), "__setitem__", vec![key(), Pickle::Int(1)]);
            let (kind, value) = self.call(&mut session, &set).await;
            if room {
                assert_eq!((kind.as_str(), value), ("#RETURN", Pickle::None));
                let get = request(Some(&ident), "__getitem__", vec![key()]);
                let got = self.call(&mut session, &get).await;
                assert_eq!((got.0.as_str(), got.1), ("#RETURN", Pickle::Int(1)));
                let len = request(Some(&ident), "__len__", vec![]);
                let got = self.call(&mut session, &len).await;
                assert_eq!((got.0.as_str(), got.1), ("#RETURN", Pickle::Int(1)));
            }
            let (kind, _) = self
                .one_shot(&request(None, "decref", vec![str_of(&ident)]))
                .await;
            assert_eq!(kind, "#RETURN");
            assert!(self.node.backend.object(id).is_none(), "decref left it");
        }
        let (kind, value) = self
            .one_shot(&request(None, "number_of_objects", vec![]))
            .await;
        assert_eq!(
            (kind.as_str(), value),
            ("#RETURN", Pickle::Int(before as i128))
        );
        let (kind, value) = self.one_shot(&request(None, "dummy", vec![])).await;
        assert_eq!((kind.as_str(), value), ("#RETURN", Pickle::None));
        session.end(WithdrawReason::Cancelled).await;
        assert_eq!(self.node.backend.live_sessions().await, 0);
    }
}

/// Closes a proxy connection from the client's side: a waiting call is withdrawn, then the
/// session ends (what the connection task does when the socket reaches EOF).
async fn close_connection(mut session: Session<MemoryBackend>) {
    if session.parked() > 0 {
        let _ = session.cancel(CALL);
    }
    session.end(WithdrawReason::Cancelled).await;
}

/// An `#ERROR`'s value: an exception a CPython client can import and raise.
fn check_exception(value: &Pickle) {
    let Pickle::Reduce { callable, args } = value else {
        panic!("an #ERROR is not an exception: {value:?}");
    };
    let Some((module, name)) = pickle::as_global(callable) else {
        panic!("an #ERROR's class is not a global: {callable:?}");
    };
    let known = match module {
        "builtins" => name.ends_with("Error") || name == "StopIteration",
        "queue" => matches!(name, "Empty" | "Full"),
        "threading" => name == "BrokenBarrierError",
        _ => false,
    };
    assert!(known, "an #ERROR raises {module}.{name}");
    assert!(matches!(**args, Pickle::Tuple(_)), "{args:?}");
}

/// `create`'s answer: `('#RETURN', (ident, exposed))`, the ident as the node's id.
fn created_ident(reply: &(String, Pickle)) -> (ObjectId, Vec<Pickle>) {
    match reply {
        (kind, Pickle::Tuple(parts)) if kind == "#RETURN" => match &parts[..] {
            [Pickle::Str(ident), Pickle::Tuple(exposed)] => (
                ident.parse().expect("an ident is the node's id"),
                exposed.clone(),
            ),
            _ => panic!("create answered {parts:?}"),
        },
        other => panic!("create failed: {other:?}"),
    }
}

//! The pickle dialect: CPython's manager protocol, for unmodified `BaseManager` /
//! `SyncManager` clients (`docs/ARCHITECTURE.md`, "The pickle dialect").
//!
//! A CPython client opens two kinds of connections. A one-shot connection carries one
//! control call (`create`, `incref`, `decref`, `dummy`, ...) and is closed by the node after
//! the answer (`control.rs`). A proxy connection starts with `accept_connection` and then
//! carries the method calls of one client thread, one at a time: this file runs them on the
//! same session core as the native dialect, so a CPython thread is one session (lock
//! ownership, release on disconnect, parked waits that cost no thread).
//!
//! Messages are pickles (`syncman_protocol::pickle`), decoded into inert trees: nothing a
//! pickle names is imported, called or evaluated. `convert.rs` maps their plain data to the
//! node's value model and back; `methods.rs` holds each typeid's CPython-facing method
//! list; `errors.rs` turns node errors into the exceptions CPython clients raise.

mod control;
mod convert;
mod errors;
mod iterators;
mod methods;
mod nested;
mod objects;
mod served;

pub(crate) use objects::NodeCall;
pub(crate) use served::check as check_served_typeids;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use syncman_protocol::pickle::{self, Pickle};
use syncman_protocol::{FrameCodec, RemoteError};
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use super::metrics::{Dialect, NetMetrics, SessionEnd};
use super::transport::Transport;
use super::wake_gate::WakeGated;
use crate::node::backend::Backend;
use crate::node::object::WithdrawReason;
use crate::node::session::Session;
use crate::node::Node;
use errors::PyFailure;

/// A request: `(ident, methodname, args, kwds)`.
struct Request {
    /// The object's ident on a proxy connection; `None` for control calls.
    pub ident: Option<String>,
    pub method: String,
    pub args: Vec<Pickle>,
    pub kwds: Vec<(String, Pickle)>,
}

/// How much bigger than its request a request's tree may grow through shared references
/// (a memo entry used again copies its value): `[big] * 250` in a 1 MiB pickle would
/// otherwise build 250 MiB, and more in the values made from it.
const REQUEST_GROWTH: usize = 8;

/// The reader's limits for one request: the defaults, with the strings' bytes and the
/// nodes a request of `len` bytes may build bounded by [`REQUEST_GROWTH`] times its size.
fn request_limits(len: usize) -> pickle::Limits {
    let default = pickle::Limits::default();
    let grown = len.saturating_mul(REQUEST_GROWTH);
    pickle::Limits {
        max_bytes: grown.max(1 << 20).min(default.max_bytes),
        max_nodes: grown.max(1 << 16).min(default.max_nodes),
        ..default
    }
}

impl Request {
    /// Reads a request; the error is what CPython's server would have said.
    fn parse(frame: &[u8]) -> Result<Request, String> {
        let value = pickle::loads(frame, &request_limits(frame.len()))
            .map(pickle::normalize)
            .map_err(|e| format!("cannot read the request: {e}"))?;
        // Stored values go back to other clients, who unpickle them: nothing that names a
        // way to run code on them is taken.
        pickle::check_globals(&value).map_err(|e| format!("refused the request: {e}"))?;
        let Pickle::Tuple(parts) = value else {
            return Err("a request is a 4-tuple (ident, method, args, kwds)".into());
        };
        let Ok([ident, method, args, kwds]) = <[Pickle; 4]>::try_from(parts) else {
            return Err("a request is a 4-tuple (ident, method, args, kwds)".into());
        };
        let ident = match ident {
            Pickle::None => None,
            Pickle::Str(s) => Some(s),
            _ => return Err("the ident must be a str or None".into()),
        };
        let Pickle::Str(method) = method else {
            return Err("the method name must be a str".into());
        };
        let args = match args {
            Pickle::Tuple(items) | Pickle::List(items) => items,
            _ => return Err("args must be a tuple".into()),
        };
        let kwds = match kwds {
            Pickle::Dict(pairs) => pairs
                .into_iter()
                .map(|(k, v)| match k {
                    Pickle::Str(k) => Ok((k, v)),
                    _ => Err("keyword names must be str".to_owned()),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err("kwds must be a dict".into()),
        };
        Ok(Request {
            ident,
            method,
            args,
            kwds,
        })
    }
}

/// What the node answers a CPython request with.
pub(crate) enum PyReply {
    /// `('#RETURN', value)`
    Return(Pickle),
    /// `('#ERROR', exception)` or `('#TRACEBACK', text)`.
    Failure(PyFailure),
    /// `('#PROXY', (exposed, token))`: a new object the client gets a proxy for.
    Proxy {
        exposed: &'static [&'static str],
        token: Pickle,
    },
    /// `('#RETURN', value)` already pickled and found to fit the frame limit (an item taken
    /// out of a queue, which goes back if it would not fit: `NodeCall::finish`).
    Encoded(Vec<u8>),
}

impl PyReply {
    pub fn traceback(text: impl Into<String>) -> PyReply {
        PyReply::Failure(PyFailure::Traceback(text.into()))
    }

    /// Appends the reply's pickle, `(kind, value)`, to `out`: at most `max` bytes (the
    /// connection's frame limit). A larger one could not be sent; it becomes Python's
    /// `ValueError` for that call alone, as in the native dialect.
    pub(crate) fn encode_into(self, out: &mut Vec<u8>, max: usize) {
        let start = out.len();
        let (kind, value) = match self {
            PyReply::Encoded(pickled) => return out.extend_from_slice(&pickled),
            PyReply::Return(v) => ("#RETURN", v),
            PyReply::Failure(PyFailure::Error(e)) => ("#ERROR", e),
            PyReply::Failure(PyFailure::Traceback(t)) => ("#TRACEBACK", Pickle::Str(t)),
            PyReply::Proxy { exposed, token } => {
                let exposed = exposed.iter().map(|m| Pickle::Str((*m).into())).collect();
                ("#PROXY", Pickle::Tuple(vec![Pickle::Tuple(exposed), token]))
            }
        };
        pickle::dumps_pair_into(out, kind, &value);
        let len = out.len() - start;
        if len > max {
            out.truncate(start);
            // Under 256 bytes, which every frame limit allows.
            PyReply::too_large(len, max).encode_into(out, usize::MAX);
        }
    }

    /// Python's `ValueError` for a reply of `len` bytes over the frame limit `max`.
    pub(crate) fn too_large(len: usize, max: usize) -> PyReply {
        let e = RemoteError::value_error(format!(
            "result of {len} bytes exceeds the frame limit of {max} bytes"
        ));
        PyReply::Failure(errors::to_python(&e, None))
    }
}

/// What a connection's first frame asks for, answered without the socket ([`open`]).
pub(crate) enum Opening<B: Backend> {
    /// A one-shot connection: send `replies` (two for `shutdown`, as CPython's server
    /// does; one otherwise), close, and stop the node if `shutdown`.
    OneShot {
        replies: Vec<PyReply>,
        shutdown: bool,
    },
    /// `accept_connection`: a proxy connection, served by this session once
    /// `('#RETURN', None)` is sent.
    Proxy(Session<B>),
}

/// Answers a connection's first frame: a control call (one-shot), or the start of a proxy
/// connection. `peer` is for log lines only.
pub(crate) async fn open<B: Backend>(
    node: &Arc<Node<B>>,
    first: &[u8],
    peer: SocketAddr,
) -> Opening<B> {
    let one = |reply| Opening::OneShot {
        replies: vec![reply],
        shutdown: false,
    };
    let request = match Request::parse(first) {
        Ok(request) => request,
        Err(why) => {
            warn!(%peer, "bad CPython request: {why}");
            return one(PyReply::traceback(why));
        }
    };
    if request.ident.is_some() {
        return one(PyReply::traceback(
            "the first request on a connection must be a control call",
        ));
    }
    if request.method == "accept_connection" {
        return match Session::open(node.clone()).await {
            Ok(session) => Opening::Proxy(session),
            Err(e) => one(PyReply::traceback(e.to_string())),
        };
    }
    // A one-shot connection: one control call, then the node closes (CPython's client
    // does not always close its end).
    let shutdown = request.method == "shutdown";
    let reply = control::call(node, request).await;
    if !shutdown {
        return one(reply);
    }
    Opening::OneShot {
        // CPython's server sends this answer twice; its clients read one.
        replies: vec![PyReply::Return(Pickle::None), reply],
        shutdown,
    }
}

/// Serves a connection whose first frame after the handshake is a pickle.
pub(crate) async fn serve<S: Transport, B: Backend>(
    mut framed: Framed<S, FrameCodec>,
    first: BytesMut,
    node: Arc<Node<B>>,
    peer: SocketAddr,
    metrics: NetMetrics,
) {
    let session = match open(&node, &first, peer).await {
        Opening::Proxy(session) => session,
        Opening::OneShot { replies, shutdown } => {
            for reply in replies {
                let _ = send(&mut framed, reply, &mut Vec::new()).await;
            }
            if shutdown {
                info!(%peer, "shutdown requested by a CPython client");
                node.shutdown.cancel();
            }
            return;
        }
    };
    let mut counted = metrics.session_started(session.id(), Dialect::Pickle);
    let mut reply_buf = Vec::new();
    if send(&mut framed, PyReply::Return(Pickle::None), &mut reply_buf)
        .await
        .is_err()
    {
        session.end(WithdrawReason::Cancelled).await;
        counted.ended(SessionEnd::Error);
        return;
    }
    let id = session.id();
    info!(session = id, %peer, "CPython proxy connection started");
    let (reason, ending) = ProxyConnection {
        framed,
        session,
        reply_buf,
    }
    .serve()
    .await;
    info!(session = id, %peer, "CPython proxy connection ended: {ending}");
    counted.ended(reason);
}

/// A proxy connection: one client thread's calls, one at a time.
struct ProxyConnection<B: Backend, S> {
    framed: Framed<S, FrameCodec>,
    session: Session<B>,
    /// Where each reply is pickled, kept from one reply to the next.
    reply_buf: Vec<u8>,
}

/// The call id of a proxy connection's one call in flight.
pub(crate) const CALL: u64 = 1;

impl<B: Backend, S: Transport> ProxyConnection<B, S> {
    /// Serves requests until the client leaves or the node stops; returns why it ended.
    async fn serve(mut self) -> (SessionEnd, String) {
        let node = self.session.node().clone();
        // Pinned once: made afresh for every call, it would register and deregister a
        // waiter each time. Gated: it is looked at again only once it has been woken.
        let shutdown = node.shutdown.cancelled();
        tokio::pin!(shutdown);
        let mut shutdown = WakeGated::new(shutdown);
        let ending = loop {
            let frame = tokio::select! {
                // A request first: the shutdown is looked at when none is waiting (a
                // CPython client sends the next only after its answer).
                biased;
                frame = self.framed.next() => frame,
                _ = &mut shutdown => {
                    break (SessionEnd::Shutdown, "node shutting down".to_owned());
                }
            };
            let frame = match frame {
                None => {
                    break (
                        SessionEnd::ClientClosed,
                        "client closed the connection".to_owned(),
                    )
                }
                Some(Err(e)) => break (SessionEnd::Error, format!("bad frame: {e}")),
                Some(Ok(frame)) => frame,
            };
            let reply = self.call(&frame).await;
            // `None`: the client left while its call waited.
            let Some(reply) = reply else {
                let why = "client closed the connection while a call waited";
                break (SessionEnd::ClientClosed, why.to_owned());
            };
            if let Err(e) = send(&mut self.framed, reply, &mut self.reply_buf).await {
                break (SessionEnd::Error, format!("cannot send: {e}"));
            }
        };
        let why = if node.is_shutting_down() {
            WithdrawReason::Shutdown
        } else {
            WithdrawReason::Cancelled
        };
        self.session.end(why).await;
        ending
    }

    /// Runs one request to its answer, waiting if the call parks. `None` if the client
    /// closed the connection meanwhile (the call is withdrawn when the session ends).
    async fn call(&mut self, frame: &[u8]) -> Option<PyReply> {
        let call = match start_call(&mut self.session, frame).await {
            Started::Answered(reply) => return Some(reply),
            Started::Waiting(call) => call,
        };
        let node = self.session.node().clone();
        let reply = tokio::select! {
            (_, reply) = self.session.next_answer() => reply,
            // A CPython client sends nothing while it waits: anything here means it has
            // gone (EOF) or given up on the call (a new request after an interrupt), and
            // the call is withdrawn.
            frame = self.framed.next() => {
                let _ = self.session.cancel(CALL);
                if let Some(Ok(_)) = frame {
                    debug!(session = self.session.id(), "a request arrived while a call waited; the wait was withdrawn");
                }
                return None;
            }
            _ = node.shutdown.cancelled() => {
                let _ = self.session.cancel(CALL);
                return Some(PyReply::traceback("syncman: ShuttingDown: the node is stopping"));
            }
        };
        Some(call.finish(&mut self.session, reply).await)
    }
}

/// A request on a proxy connection, after its first step ([`start_call`]).
pub(crate) enum Started {
    /// Its reply, to send now.
    Answered(PyReply),
    /// The call waits on the node (it parked under the id [`CALL`]): when
    /// [`Session::next_answer`] gives its answer, [`NodeCall::finish`] makes the reply.
    Waiting(NodeCall),
}

/// Runs a proxy connection's request as far as it goes without waiting: parsed, resolved
/// (`objects.rs`) and called on the node.
pub(crate) async fn start_call<B: Backend>(session: &mut Session<B>, frame: &[u8]) -> Started {
    let request = match Request::parse(frame) {
        Ok(request) => request,
        Err(why) => return Started::Answered(PyReply::traceback(why)),
    };
    let call = match objects::prepare(session, request).await {
        Ok(objects::Prepared::Call(call)) => call,
        Ok(objects::Prepared::Done(reply)) | Err(reply) => return Started::Answered(reply),
    };
    match session.call(CALL, call.object, call.node_method, call.args.args()) {
        Some(reply) => Started::Answered(call.finish(session, reply).await),
        None => Started::Waiting(call),
    }
}

/// A reply buffer grown past this (by a large result) is freed once that reply is sent.
const KEEP_REPLY_BUF: usize = 16 * 1024;

/// Pickles `reply` into `buf` and sends it.
async fn send<S: Transport>(
    framed: &mut Framed<S, FrameCodec>,
    reply: PyReply,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    buf.clear();
    reply.encode_into(buf, framed.codec().max_len());
    let sent = framed
        .send(&buf[..])
        .await
        .map_err(|e| std::io::Error::other(e.to_string()));
    if buf.capacity() > KEEP_REPLY_BUF {
        *buf = Vec::new();
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::request;
    use crate::node::backend::ObjectId;
    use syncman_protocol::{ArgList, Value};

    /// `(None, 'extend', ([data, data, ...],), {})`: one bytes object and `copies - 1`
    /// memo references to it.
    fn extend_with_copies(data: &[u8], copies: usize) -> Vec<u8> {
        let mut p = vec![0x80, 0x03, b'(', b'N', b'X'];
        p.extend((6u32).to_le_bytes());
        p.extend(b"extend");
        p.extend([b']', b'(', b'B']);
        p.extend((data.len() as u32).to_le_bytes());
        p.extend(data);
        p.extend([b'q', 0]);
        for _ in 1..copies {
            p.extend([b'h', 0]);
        }
        p.extend([b'e', 0x85, b'}', b't', b'.']);
        p
    }

    #[test]
    fn shared_references_may_not_grow_a_request_far_beyond_its_size() {
        let data = vec![b'x'; 10_000];
        // 10 kB of pickle naming 20 MB: refused, not built.
        let bomb = extend_with_copies(&data, 2_000);
        assert!(bomb.len() < 20_000);
        let refused = Request::parse(&bomb)
            .err()
            .expect("a 2,000-fold request refused");
        assert!(refused.contains("cannot read the request"), "{refused}");
        // Shared references within the bound are read as CPython's server would.
        let shared = Request::parse(&extend_with_copies(&data, 50)).expect("50 copies");
        assert_eq!(shared.method, "extend");
        match &shared.args[..] {
            [Pickle::List(items)] => assert_eq!(items.len(), 50),
            other => panic!("{other:?}"),
        }
    }

    /// A CPython client's connection to `node` over loopback TCP, served by [`serve`] from
    /// its first frame `first`, with the frame limit the connection task sets.
    async fn connect(
        node: &Arc<Node<crate::MemoryBackend>>,
        first: &[u8],
    ) -> Framed<tokio::net::TcpStream, FrameCodec> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = Framed::new(
            tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap(),
            FrameCodec::new(usize::MAX),
        );
        let (stream, peer) = listener.accept().await.unwrap();
        let mut framed = Framed::new(stream, FrameCodec::new(node.config.max_frame));
        client.send(first).await.unwrap();
        let first = framed.next().await.unwrap().unwrap();
        let node = node.clone();
        tokio::spawn(serve(framed, first, node, peer, NetMetrics::default()));
        client
    }

    /// The next reply on a client's connection, as `(kind, value)`.
    async fn reply(client: &mut Framed<tokio::net::TcpStream, FrameCodec>) -> (String, Pickle) {
        let frame = client
            .next()
            .await
            .expect("a reply, not the end of the connection")
            .unwrap();
        kind_and_value(&frame)
    }

    /// A reply's pickle read as a client reads it: `(kind, value)`.
    fn kind_and_value(pickled: &[u8]) -> (String, Pickle) {
        match pickle::loads(pickled, &pickle::Limits::default()).unwrap() {
            Pickle::Tuple(parts) => match <[Pickle; 2]>::try_from(parts) {
                Ok([Pickle::Str(kind), value]) => (kind, value),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    /// A node with every built-in typeid and a frame limit of `max_frame` bytes, and a
    /// proxy connection to it on which a list was made: (node, connection, list ident).
    async fn proxy_with_a_list(
        max_frame: usize,
    ) -> (
        Arc<Node<crate::MemoryBackend>>,
        Framed<tokio::net::TcpStream, FrameCodec>,
        String,
    ) {
        let mut registry = crate::Registry::default();
        crate::node::objects::register_builtins::<crate::node::memory::TokenCounter>(&mut registry);
        let mut config = crate::Config::new(b"k".to_vec());
        config.max_frame = max_frame;
        let node = Arc::new(Node::new(config, crate::MemoryBackend::new(registry)));
        let create = request(None, "create", vec![Pickle::Str("list".into())]);
        let mut one_shot = connect(&node, &create).await;
        let ident = match reply(&mut one_shot).await {
            (kind, Pickle::Tuple(parts)) if kind == "#RETURN" => match &parts[..] {
                [Pickle::Str(ident), _] => ident.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        let accept = request(None, "accept_connection", vec![Pickle::Str("T".into())]);
        let mut proxy = connect(&node, &accept).await;
        assert_eq!(reply(&mut proxy).await, ("#RETURN".into(), Pickle::None));
        (node, proxy, ident)
    }

    /// The `(kind, value)` a reply pickles to, read back as a client reads it.
    fn read_reply(reply: PyReply) -> (String, Pickle) {
        let mut out = Vec::new();
        reply.encode_into(&mut out, usize::MAX);
        kind_and_value(&out)
    }

    /// A node with a frame limit of 4 KiB and an object of `typeid` on it, with a Python
    /// proxy connection and a native session: (node, python, native, ident, object).
    async fn python_and_native_on(
        typeid: &str,
    ) -> (
        Arc<Node<crate::MemoryBackend>>,
        Session<crate::MemoryBackend>,
        Session<crate::MemoryBackend>,
        String,
        ObjectId,
    ) {
        let mut registry = crate::Registry::default();
        crate::node::objects::register_builtins::<crate::node::memory::TokenCounter>(&mut registry);
        let mut config = crate::Config::new(b"k".to_vec());
        config.max_frame = 4096;
        let node = Arc::new(Node::new(config, crate::MemoryBackend::new(registry)));
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let create = request(None, "create", vec![Pickle::Str(typeid.into())]);
        let Opening::OneShot { mut replies, .. } = open(&node, &create, peer).await else {
            panic!("create is a one-shot call");
        };
        let ident = match read_reply(replies.remove(0)) {
            (kind, Pickle::Tuple(parts)) if kind == "#RETURN" => match &parts[..] {
                [Pickle::Str(ident), _] => ident.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        let object: ObjectId = ident.parse().unwrap();
        let accept = request(None, "accept_connection", vec![Pickle::Str("T".into())]);
        let Opening::Proxy(python) = open(&node, &accept, peer).await else {
            panic!("accept_connection opens a proxy connection");
        };
        let native = Session::open(node.clone()).await.unwrap();
        (node, python, native, ident, object)
    }

    /// Two values a native client can store and a Python client cannot be sent, with what
    /// the refusal names: one whose pickle is over the 4 KiB frame limit though its stored
    /// form is not (a list of small ints, larger pickled than stored), and a stored Python
    /// object that names code.
    fn unsendable() -> [(Value, &'static str); 2] {
        let too_large = Value::Array((0..3000).map(|i| Value::Int(i % 100)).collect());
        let names_code = Value::Ext(
            syncman_protocol::value::EXT_PICKLE,
            pickle::dumps(&Pickle::Reduce {
                callable: Box::new(pickle::global("posix", "system")),
                args: Box::new(Pickle::Tuple(vec![Pickle::Str("echo hi".into())])),
            }),
        );
        [(too_large, "ValueError"), (names_code, "posix.system")]
    }

    /// A native call that answers at once, decoded.
    fn native_call(
        native: &mut Session<crate::MemoryBackend>,
        object: ObjectId,
        method: &str,
        args: &[Value],
    ) -> Value {
        let answer = native.call(7, object, method, ArgList::of(args).args());
        let answer = answer.expect("answered at once").expect("no error");
        syncman_protocol::value::decode(&answer).unwrap()
    }

    /// Asks `method(args)` of the Python connection, which must be refused naming `refused`.
    async fn refused(
        python: &mut Session<crate::MemoryBackend>,
        ident: &str,
        method: &str,
        args: Vec<Pickle>,
        refused: &str,
    ) {
        let call = request(Some(ident), method, args);
        let Started::Answered(reply) = start_call(python, &call).await else {
            panic!("{method} answers at once");
        };
        let (kind, why) = read_reply(reply);
        assert_ne!(kind, "#RETURN", "{method}, {refused}: {why:.200?}");
        assert!(format!("{why:?}").contains(refused), "{kind} {why:?}");
    }

    /// A queue item a Python client cannot be sent is not lost by its `get`: the client
    /// hears why, and the item stays at the front of the queue for a client that can take
    /// it.
    #[tokio::test]
    async fn a_queue_item_a_python_client_cannot_be_sent_stays_in_the_queue() {
        let (_node, mut python, mut native, ident, queue) = python_and_native_on("Queue").await;
        for (item, why) in unsendable() {
            native_call(&mut native, queue, "put", std::slice::from_ref(&item));
            refused(&mut python, &ident, "get_nowait", vec![], why).await;
            // Still there, whole, for a client that can take it.
            assert_eq!(native_call(&mut native, queue, "get_nowait", &[]), item);
        }
    }

    /// Nor by a list's `pop`, from either end: it goes back where it was.
    #[tokio::test]
    async fn a_list_item_a_python_client_cannot_be_sent_goes_back_where_it_was() {
        let (_node, mut python, mut native, ident, list) = python_and_native_on("list").await;
        for (item, why) in unsendable() {
            // The index given to `pop`, and where that is in a list of four.
            for (index, at) in [
                (None, 3),
                (Some(-1), 3),
                (Some(-2), 2),
                (Some(0), 0),
                (Some(1), 1),
            ] {
                let mut items: Vec<Value> = (0..3).map(Value::Int).collect();
                items.insert(at, item.clone());
                native_call(&mut native, list, "clear", &[]);
                native_call(&mut native, list, "extend", &[Value::Array(items.clone())]);
                let args = index.map(Pickle::Int).into_iter().collect();
                refused(&mut python, &ident, "pop", args, why).await;
                let now = native_call(&mut native, list, "copy", &[]);
                assert_eq!(now, Value::Array(items), "pop({index:?})");
            }
        }
    }

    /// Nor by a dict's `pop(key)` or `popitem()`: the entry goes back under its key.
    #[tokio::test]
    async fn a_dict_value_a_python_client_cannot_be_sent_goes_back_under_its_key() {
        let (_node, mut python, mut native, ident, dict) = python_and_native_on("dict").await;
        let key = || Value::Str("k".into());
        for (item, why) in unsendable() {
            for pop in [
                vec![Pickle::Str("k".into())],
                vec![Pickle::Str("k".into()), Pickle::None],
            ] {
                native_call(&mut native, dict, "__setitem__", &[key(), item.clone()]);
                refused(&mut python, &ident, "pop", pop, why).await;
                assert_eq!(native_call(&mut native, dict, "get", &[key()]), item);
            }
            // The last entry, and after it goes back, the last again.
            native_call(
                &mut native,
                dict,
                "__setitem__",
                &[Value::Str("a".into()), Value::Int(1)],
            );
            native_call(&mut native, dict, "__delitem__", &[key()]);
            native_call(&mut native, dict, "__setitem__", &[key(), item.clone()]);
            refused(&mut python, &ident, "popitem", vec![], why).await;
            let last = native_call(&mut native, dict, "popitem", &[]);
            assert_eq!(last, Value::Array(vec![key(), item]));
            native_call(&mut native, dict, "clear", &[]);
        }
        // A default that comes back took nothing: nothing is added.
        let call = request(
            Some(&ident),
            "pop",
            vec![Pickle::Str("absent".into()), Pickle::Int(5)],
        );
        let Started::Answered(reply) = start_call(&mut python, &call).await else {
            panic!("pop answers at once");
        };
        assert_eq!(read_reply(reply), ("#RETURN".into(), Pickle::Int(5)));
        assert_eq!(
            native_call(&mut native, dict, "__len__", &[]),
            Value::Int(0)
        );
    }

    /// The exception of an `#ERROR` reply: its class and its arguments.
    fn exception(kind: &str, error: &Pickle) -> (String, String) {
        assert_eq!(kind, "#ERROR", "{error:?}");
        let Pickle::Reduce { callable, args } = error else {
            panic!("{error:?}");
        };
        let (module, name) = pickle::as_global(callable).expect("a class");
        (format!("{module}.{name}"), format!("{args:?}"))
    }

    /// Found with the `pickle_requests` fuzz target's check that no reply tells of a stored
    /// value that cannot be read, on a hand-written input (its corpus keeps it as
    /// `regression-result-of-too-many-items`): a result of more items than the node decodes
    /// at once (`[None] * 1_100_000`) was answered `#TRACEBACK` "cannot read a stored value:
    /// malformed MessagePack". It is a limit, not a broken value: Python's `MemoryError`.
    #[tokio::test]
    async fn a_result_of_too_many_items_is_a_memory_error_and_the_connection_carries_on() {
        let (_node, mut proxy, ident) = proxy_with_a_list(64 << 20).await;
        let call = |method: &str, args| request(Some(&ident), method, args);
        proxy
            .send(&call("append", vec![Pickle::None])[..])
            .await
            .unwrap();
        assert_eq!(reply(&mut proxy).await, ("#RETURN".into(), Pickle::None));
        proxy
            .send(&call("__mul__", vec![Pickle::Int(1_100_000)])[..])
            .await
            .unwrap();
        let (kind, error) = reply(&mut proxy).await;
        let (class, args) = exception(&kind, &error);
        assert_eq!(class, "builtins.MemoryError");
        assert!(args.contains("more than 1048576 items"), "{args}");
        proxy.send(&call("__len__", vec![])[..]).await.unwrap();
        assert_eq!(reply(&mut proxy).await, ("#RETURN".into(), Pickle::Int(1)));
    }

    /// Found with the `pickle_requests` fuzz target's frame check, on a hand-written input
    /// (its corpus keeps it as `regression-reply-over-the-frame-limit`): a result whose
    /// pickle is larger than a frame (`list * n`) could not be sent, and the node closed
    /// the connection instead of answering. It is Python's `ValueError` for that call, as
    /// in the native dialect, whether the node's answer is already too large (refused
    /// before it is built) or only its pickle is (a small int is one byte of MessagePack
    /// and two of pickle).
    #[tokio::test]
    async fn a_result_too_large_for_a_frame_is_a_value_error_and_the_connection_carries_on() {
        let (_node, mut proxy, ident) = proxy_with_a_list(64 * 1024).await;
        let call = |method: &str, args| request(Some(&ident), method, args);
        proxy
            .send(&call("append", vec![Pickle::Int(1)])[..])
            .await
            .unwrap();
        assert_eq!(reply(&mut proxy).await, ("#RETURN".into(), Pickle::None));
        // 40,000 copies: 40 kB of MessagePack, 80 kB of pickle; then 200 kB of both.
        for times in [40_000, 200_000] {
            proxy
                .send(&call("__mul__", vec![Pickle::Int(times)])[..])
                .await
                .unwrap();
            let (kind, error) = reply(&mut proxy).await;
            let (class, args) = exception(&kind, &error);
            assert_eq!(class, "builtins.ValueError");
            assert!(
                args.contains("exceeds the frame limit of 65536 bytes"),
                "{args}"
            );
        }
        proxy.send(&call("__len__", vec![])[..]).await.unwrap();
        assert_eq!(reply(&mut proxy).await, ("#RETURN".into(), Pickle::Int(1)));
    }
}

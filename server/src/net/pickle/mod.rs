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
mod methods;
mod nested;
mod objects;
mod served;

pub(crate) use served::check as check_served_typeids;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use syncman_protocol::pickle::{self, Pickle};
use syncman_protocol::FrameCodec;
use tokio_util::codec::Framed;
use tracing::{debug, info, warn};

use super::metrics::{Dialect, NetMetrics, SessionEnd};
use super::transport::Transport;
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
enum PyReply {
    /// `('#RETURN', value)`
    Return(Pickle),
    /// `('#ERROR', exception)` or `('#TRACEBACK', text)`.
    Failure(PyFailure),
    /// `('#PROXY', (exposed, token))`: a new object the client gets a proxy for.
    Proxy {
        exposed: &'static [&'static str],
        token: Pickle,
    },
}

impl PyReply {
    pub fn traceback(text: impl Into<String>) -> PyReply {
        PyReply::Failure(PyFailure::Traceback(text.into()))
    }

    /// Appends the reply's pickle, `(kind, value)`, to `out`.
    fn encode_into(self, out: &mut Vec<u8>) {
        let (kind, value) = match self {
            PyReply::Return(v) => ("#RETURN", v),
            PyReply::Failure(PyFailure::Error(e)) => ("#ERROR", e),
            PyReply::Failure(PyFailure::Traceback(t)) => ("#TRACEBACK", Pickle::Str(t)),
            PyReply::Proxy { exposed, token } => {
                let exposed = exposed.iter().map(|m| Pickle::Str((*m).into())).collect();
                ("#PROXY", Pickle::Tuple(vec![Pickle::Tuple(exposed), token]))
            }
        };
        pickle::dumps_pair_into(out, kind, &value);
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
    let request = match Request::parse(&first) {
        Ok(request) => request,
        Err(why) => {
            warn!(%peer, "bad CPython request: {why}");
            let _ = send(&mut framed, PyReply::traceback(why), &mut Vec::new()).await;
            return;
        }
    };
    if request.ident.is_some() {
        let why = "the first request on a connection must be a control call";
        let _ = send(&mut framed, PyReply::traceback(why), &mut Vec::new()).await;
        return;
    }
    if request.method != "accept_connection" {
        // A one-shot connection: one control call, then the node closes (CPython's client
        // does not always close its end).
        let shutting_down = request.method == "shutdown";
        let reply = control::call(&node, request, &framed).await;
        if shutting_down {
            // CPython's server sends this answer twice; its clients read one.
            let _ = send(&mut framed, PyReply::Return(Pickle::None), &mut Vec::new()).await;
        }
        let _ = send(&mut framed, reply, &mut Vec::new()).await;
        if shutting_down {
            info!(%peer, "shutdown requested by a CPython client");
            node.shutdown.cancel();
        }
        return;
    }
    let session = match Session::open(node.clone()).await {
        Ok(session) => session,
        Err(e) => {
            let _ = send(
                &mut framed,
                PyReply::traceback(e.to_string()),
                &mut Vec::new(),
            )
            .await;
            return;
        }
    };
    let counted = metrics.session_started(session.id(), Dialect::Pickle);
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
const CALL: u64 = 1;

impl<B: Backend, S: Transport> ProxyConnection<B, S> {
    /// Serves requests until the client leaves or the node stops; returns why it ended.
    async fn serve(mut self) -> (SessionEnd, String) {
        let node = self.session.node().clone();
        // Pinned once: made afresh for every call, it would register and deregister a
        // waiter each time.
        let shutdown = node.shutdown.cancelled();
        tokio::pin!(shutdown);
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
            let reply = match Request::parse(&frame) {
                Ok(request) => self.call(request).await,
                Err(why) => Some(PyReply::traceback(why)),
            };
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
    async fn call(&mut self, request: Request) -> Option<PyReply> {
        let prepared = match objects::prepare(&mut self.session, request).await {
            Ok(prepared) => prepared,
            Err(reply) => return Some(reply),
        };
        let objects::Prepared::Call(call) = prepared else {
            let objects::Prepared::Done(reply) = prepared else {
                unreachable!("two variants")
            };
            return Some(reply);
        };
        let reply = match self
            .session
            .call(CALL, call.object, call.node_method, call.args.clone())
        {
            Some(reply) => reply,
            None => {
                let node = self.session.node().clone();
                tokio::select! {
                    (_, reply) = self.session.next_answer() => reply,
                    // A CPython client sends nothing while it waits: anything here means
                    // it has gone (EOF) or given up on the call (a new request after an
                    // interrupt), and the call is withdrawn.
                    frame = self.framed.next() => {
                        let _ = self.session.cancel(CALL);
                        match frame {
                            None | Some(Err(_)) => return None,
                            Some(Ok(_)) => {
                                debug!(session = self.session.id(), "a request arrived while a call waited; the wait was withdrawn");
                                return None;
                            }
                        }
                    }
                    _ = node.shutdown.cancelled() => {
                        let _ = self.session.cancel(CALL);
                        return Some(PyReply::traceback("syncman: ShuttingDown: the node is stopping"));
                    }
                }
            }
        };
        Some(call.finish(&mut self.session, reply).await)
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
    reply.encode_into(buf);
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
}

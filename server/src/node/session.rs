//! The session core: everything a session does besides its wire, for either dialect.
//!
//! A dialect decodes a request, hands it to [`Session::call`], and sends whatever comes
//! back, now or later from [`Session::next_answer`]. The session keeps the references the
//! client holds, the objects in which it holds locks or units, and its parked calls. It is
//! owned by the one task that serves the connection, so it needs no lock.
//!
//! # Cancellation
//! A parked call ends in exactly one of three ways: the object answers it; its deadline
//! passes and the node withdraws it (the object answers as Python would, e.g. `Empty`); or
//! the client cancels it / the session ends and the node withdraws it. Withdrawal and
//! answering are mutually exclusive under the object's lock, so nothing is handed to a
//! caller that has gone. If the answer won the race with a cancel but has not been sent,
//! it goes back to the object ([`SharedObject::undelivered`]) and the caller hears
//! `Cancelled`; an answer already sent is the client's to give back.
//!
//! # Failure
//! When the session ends for any reason (close, crash, network cut, shutdown),
//! [`Session::end`] withdraws its parked calls, releases (by default) the locks and units
//! it holds, and drops its references.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use syncman_protocol::{Args, RemoteError};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, error};

use super::backend::{no_such_object, Backend, ObjectId};
use super::budget::memory_error;
use super::metrics::{CallRecorder, CallStart, ParkedTiming};
use super::object::{
    no_such_method, CallCtx, Handover, MethodSpec, Outcome, Parked, Reply, SessionId, SharedObject,
    WaiterId, WithdrawReason, Withdrawal,
};
use super::Node;

/// Identifies one call within a session; the dialect chooses it (the native request id).
pub type CallId = u64;

/// How a parked call's future ended.
enum ParkEnd {
    Answered(Reply),
    /// The deadline passed; the receiver comes back so a racing answer is not lost.
    TimedOut(oneshot::Receiver<Reply>),
    /// The object dropped the waiter without answering (withdrawn, or object freed).
    Dropped,
}

/// A parked call's end, with the waiter it was for: an id may be used again once its call
/// was withdrawn, and a stale end must not touch the new call.
type ParkFuture = Pin<Box<dyn Future<Output = (CallId, WaiterId, ParkEnd)> + Send>>;

struct ParkedCall {
    object: Arc<dyn SharedObject>,
    waiter: WaiterId,
    handover: Handover,
    /// The client cancelled after the object had answered but before the answer left:
    /// the answer goes back to the object instead of to the client.
    cancelled: bool,
    /// Counts the call, with the time it waited, when it leaves `parked`.
    _timing: Option<ParkedTiming>,
}

/// One session's state.
pub struct Session<B: Backend> {
    id: SessionId,
    node: Arc<Node<B>>,
    /// References this session holds on anonymous objects.
    refs: HashMap<ObjectId, u32>,
    /// Objects in which this session may hold locks or units. Weak, so a freed object
    /// is not kept alive by a session that once locked it.
    holds: HashMap<ObjectId, Weak<dyn SharedObject>>,
    /// `holds` is pruned of freed objects when it grows past this.
    prune_holds_at: usize,
    parked: HashMap<CallId, ParkedCall>,
    park_futures: FuturesUnordered<ParkFuture>,
    /// The largest answer the client can receive (its dialect's frame limit).
    reply_limit: usize,
    /// Counts and times calls, when the node collects metrics. Boxed: its cache is some 140
    /// bytes that every idle session would otherwise carry, metrics or not.
    calls: Option<Box<CallRecorder>>,
}

impl<B: Backend> Session<B> {
    /// Opens a session on `node` (the backend gives it its identity).
    pub async fn open(node: Arc<Node<B>>) -> Result<Self, RemoteError> {
        let id = node.backend.open_session().await?;
        let reply_limit = node.config.max_frame;
        Ok(Session {
            id,
            reply_limit,
            refs: HashMap::new(),
            holds: HashMap::new(),
            prune_holds_at: 64,
            parked: HashMap::new(),
            park_futures: FuturesUnordered::new(),
            calls: node.calls.clone().map(|c| Box::new(CallRecorder::new(c))),
            node,
        })
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    pub fn node(&self) -> &Arc<Node<B>> {
        &self.node
    }

    /// The largest answer this session's client can receive (default: the node's frame
    /// limit). Objects refuse to hand out an item larger than this rather than lose it.
    pub fn set_reply_limit(&mut self, limit: usize) {
        self.reply_limit = limit;
    }

    /// Calls `method` on `object`. `Some(reply)`: answered now. `None`: the call parked;
    /// its answer comes from [`next_answer`](Self::next_answer).
    pub fn call(
        &mut self,
        call: CallId,
        object: ObjectId,
        method: &str,
        args: Args<'_>,
    ) -> Option<Reply> {
        let reply = self.run(call, object, method, args)?;
        if let Err(e) = &reply {
            // The client's business, not the operator's.
            debug!(session = self.id, object, method, "error reply: {e}");
        }
        Some(reply)
    }

    /// Runs a call: its answer, or `None` if it parked (and is kept here).
    fn run(
        &mut self,
        call: CallId,
        object: ObjectId,
        method: &str,
        args: Args<'_>,
    ) -> Option<Reply> {
        if self.parked.contains_key(&call) {
            // A client bug: two waiting calls under one id. Refused before the object
            // runs it, so it changes nothing.
            let why = RemoteError::protocol_error(format!("request id {call} is already waiting"));
            return Some(Err(why));
        }
        let Some(target) = self.node.backend.object(object) else {
            return Some(Err(no_such_object(object)));
        };
        let table = target.methods();
        let index = match table {
            Some(methods) => match find_method(target.typeid(), methods, method, &args) {
                Ok(index) => Some(index),
                Err(e) => return Some(Err(e)),
            },
            None => None,
        };
        // Timed from here, when the node collects metrics: the object's work and any wait.
        let started = self.calls.as_ref().map(|_| CallStart::now());
        let mut ctx = CallCtx {
            session: self.id,
            holds_state: false,
            may_park: self.parked.len() < self.node.config.max_parked_per_session,
            reply_limit: self.reply_limit,
        };
        // A bug in one object must not take the session (and what it holds) down without
        // cleanup: a panic becomes an error reply and a log line.
        let run = std::panic::AssertUnwindSafe(|| target.call(method, args, &mut ctx));
        let outcome = std::panic::catch_unwind(run).unwrap_or_else(|_| {
            error!(session = self.id, object, method, "object method panicked");
            Outcome::Ready(Err(RemoteError::runtime_error(
                "internal error in the node (logged there)",
            )))
        });
        if ctx.holds_state {
            self.note_hold(object, &target);
        }
        match outcome {
            Outcome::Ready(reply) => {
                if let Some(started) = started {
                    if let Some(calls) = &mut self.calls {
                        calls.record(object, &*target, table, index, started);
                    }
                }
                Some(reply)
            }
            Outcome::Park(parked) => {
                let timing = match (started, &mut self.calls) {
                    (Some(started), Some(calls)) => {
                        calls.parked(object, &*target, table, index, started)
                    }
                    _ => None,
                };
                self.park(call, target, parked, timing);
                None
            }
        }
    }

    fn note_hold(&mut self, object: ObjectId, target: &Arc<dyn SharedObject>) {
        self.holds
            .entry(object)
            .or_insert_with(|| Arc::downgrade(target));
        if let Some((id, shared)) = target.shares_state_with() {
            self.holds
                .entry(id)
                .or_insert_with(|| Arc::downgrade(&shared));
        }
        if self.holds.len() > self.prune_holds_at {
            self.holds.retain(|_, o| o.strong_count() > 0);
            self.prune_holds_at = (self.holds.len() * 2).max(64);
        }
    }

    fn park(
        &mut self,
        call: CallId,
        object: Arc<dyn SharedObject>,
        parked: Parked,
        timing: Option<ParkedTiming>,
    ) {
        let Parked {
            waiter,
            reply,
            deadline,
            handover,
        } = parked;
        self.parked.insert(
            call,
            ParkedCall {
                object,
                waiter,
                handover,
                cancelled: false,
                _timing: timing,
            },
        );
        self.park_futures
            .push(Box::pin(wait_parked(call, waiter, reply, deadline)));
    }

    /// Calls waiting now.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// True while [`next_answer`](Self::next_answer) has something to wait for; a dialect
    /// may skip polling it otherwise.
    pub fn awaits_answers(&self) -> bool {
        !self.park_futures.is_empty()
    }

    /// The client gave up on `call`. `Some(reply)`: the call was withdrawn and this is its
    /// answer. `None`: nothing waits under that id any more, or the object had answered
    /// already, and [`next_answer`](Self::next_answer) will give that answer back to the
    /// object and answer the call `Cancelled`.
    pub fn cancel(&mut self, call: CallId) -> Option<Reply> {
        let parked = self.parked.get_mut(&call)?;
        match parked
            .object
            .withdraw(parked.waiter, WithdrawReason::Cancelled)
        {
            Withdrawal::Answer(reply) => {
                self.parked.remove(&call);
                Some(reply)
            }
            Withdrawal::AlreadyAnswered | Withdrawal::StillWaiting => {
                parked.cancelled = true;
                None
            }
        }
    }

    /// The next answer to a parked call: answered by its object, ended by its deadline,
    /// or cancelled. Pending while nothing is parked. Cancel-safe: dropping the future
    /// loses no answer.
    pub async fn next_answer(&mut self) -> (CallId, Reply) {
        loop {
            let Some((call, waiter, end)) = self.park_futures.next().await else {
                return std::future::pending().await;
            };
            if let Some(reply) = self.finish_parked(call, waiter, end) {
                return (call, reply);
            }
        }
    }

    fn finish_parked(&mut self, call: CallId, waiter: WaiterId, end: ParkEnd) -> Option<Reply> {
        let current = self.parked.get(&call).map(|p| p.waiter);
        if current != Some(waiter) && !matches!(end, ParkEnd::Answered(_)) {
            // The end of a call withdrawn at once (its waiter dropped, or its deadline)
            // while a new call uses its id: nothing to do. (An answered call cannot be
            // stale: its id stays in use until its answer is taken.)
            return None;
        }
        match end {
            ParkEnd::Answered(reply) => Some(self.deliver(call, reply)),
            ParkEnd::TimedOut(mut rx) => {
                let parked = self.parked.get(&call)?;
                match parked
                    .object
                    .withdraw(parked.waiter, WithdrawReason::Timeout)
                {
                    Withdrawal::Answer(reply) => {
                        self.parked.remove(&call);
                        Some(reply)
                    }
                    // Answered just before the deadline: the answer is in the channel.
                    Withdrawal::AlreadyAnswered => match rx.try_recv() {
                        Ok(reply) => Some(self.deliver(call, reply)),
                        Err(_) => self.finish_dropped(call),
                    },
                    Withdrawal::StillWaiting => {
                        self.park_futures
                            .push(Box::pin(wait_parked(call, waiter, rx, None)));
                        None
                    }
                }
            }
            ParkEnd::Dropped => self.finish_dropped(call),
        }
    }

    /// An answer came for a parked call: it goes to the client, or back to the object if
    /// the call was cancelled meanwhile.
    fn deliver(&mut self, call: CallId, reply: Reply) -> Reply {
        match self.parked.remove(&call) {
            Some(parked) if parked.cancelled => {
                parked.object.undelivered(parked.handover, self.id, reply);
                Err(cancelled())
            }
            _ => reply,
        }
    }

    /// The object dropped a waiter without answering it.
    fn finish_dropped(&mut self, call: CallId) -> Option<Reply> {
        let parked = self.parked.remove(&call)?;
        Some(Err(if parked.cancelled {
            cancelled()
        } else {
            RemoteError::not_found("the object was freed while the call waited")
        }))
    }

    // -- References and the node's own operations ----------------------------------------

    /// Creates an anonymous object this session holds once.
    pub async fn create(&mut self, typeid: &str, ctor: Args<'_>) -> Result<ObjectId, RemoteError> {
        self.check_room_for_ref(None)?;
        let id = self.node.backend.create(typeid, ctor).await?;
        self.add_ref(id);
        Ok(id)
    }

    /// The object named `name`, created from `ctor` if absent; true if this call created
    /// it. Named objects are not reference-counted.
    pub async fn get_or_create(
        &mut self,
        typeid: &str,
        name: &str,
        ctor: Args<'_>,
    ) -> Result<(ObjectId, bool), RemoteError> {
        self.node.backend.get_or_create(name, typeid, ctor).await
    }

    /// Takes a reference on an object whose id came from elsewhere.
    pub async fn incref(&mut self, id: ObjectId) -> Result<(), RemoteError> {
        self.check_room_for_ref(Some(id))?;
        self.node.backend.incref(id).await?;
        self.add_ref(id);
        Ok(())
    }

    /// Drops one of this session's references to an anonymous object.
    pub async fn release(&mut self, object: ObjectId) {
        match self.refs.get_mut(&object) {
            Some(n) if *n > 0 => {
                *n -= 1;
                if *n == 0 {
                    self.refs.remove(&object);
                }
                self.node.backend.decref(object).await;
            }
            _ => debug!(
                session = self.id,
                object, "release of a reference this session does not hold"
            ),
        }
    }

    /// `MemoryError` if this session holds references to as many objects as it may, and
    /// `object` (if given) is not one of them.
    fn check_room_for_ref(&self, object: Option<ObjectId>) -> Result<(), RemoteError> {
        let limit = self.node.config.max_objects_per_session;
        if object.is_some_and(|id| self.refs.contains_key(&id)) || self.refs.len() < limit {
            return Ok(());
        }
        Err(memory_error(format!(
            "this connection holds its maximum of {limit} objects \
             (see --max-objects-per-session)"
        )))
    }

    fn add_ref(&mut self, object: ObjectId) {
        let n = self.refs.entry(object).or_insert(0);
        *n = n.saturating_add(1);
    }

    /// Ends the session: withdraws its parked calls (giving back anything already handed
    /// to them but not yet sent), releases what it holds, drops its references. Returns an
    /// answer for every call that was parked, for a client still there to hear them: the
    /// object's own answer to the withdrawal, or `ShuttingDown` / `Cancelled`.
    pub async fn end(mut self, why: WithdrawReason) -> Vec<(CallId, Reply)> {
        let mut answered = HashMap::new();
        let mut replies = Vec::new();
        for (call, parked) in self.parked.drain() {
            match parked.object.withdraw(parked.waiter, why) {
                Withdrawal::Answer(reply) => replies.push((call, reply)),
                _ => {
                    answered.insert(call, parked);
                }
            }
        }
        // Every parked future is ready now (answered, or its sender dropped); polled
        // outside tokio's cooperative budget so none looks pending for budget reasons.
        while let Some(Some((call, _waiter, end))) =
            tokio::task::unconstrained(self.park_futures.next()).now_or_never()
        {
            let reply = match end {
                ParkEnd::Answered(reply) => reply,
                ParkEnd::TimedOut(mut rx) => match rx.try_recv() {
                    Ok(reply) => reply,
                    Err(_) => continue,
                },
                ParkEnd::Dropped => continue,
            };
            // Answered, but not sent: it goes back, and the call ends like the others.
            if let Some(parked) = answered.remove(&call) {
                parked.object.undelivered(parked.handover, self.id, reply);
                replies.push((call, Err(why.error())));
            }
        }
        replies.extend(answered.into_keys().map(|call| (call, Err(why.error()))));
        self.park_futures = FuturesUnordered::new();
        if self.node.config.release_on_disconnect {
            for (_, object) in self.holds.drain() {
                if let Some(object) = object.upgrade() {
                    object.session_ended(self.id);
                }
            }
        }
        for (object, n) in std::mem::take(&mut self.refs) {
            for _ in 0..n {
                self.node.backend.decref(object).await;
            }
        }
        self.node.backend.close_session(self.id).await;
        replies
    }
}

/// Checks a call against an object's method table *before* anything runs, so a call with
/// the wrong number of arguments changes nothing. Unknown methods get Python's
/// `AttributeError`; wrong counts Python's `TypeError` wording.
pub fn check_call(
    typeid: &str,
    methods: &[MethodSpec],
    method: &str,
    args: &Args<'_>,
) -> Result<(), RemoteError> {
    find_method(typeid, methods, method, args).map(|_| ())
}

/// [`check_call`], giving the method's index in `methods` (the session counts calls by it).
fn find_method(
    typeid: &str,
    methods: &[MethodSpec],
    method: &str,
    args: &Args<'_>,
) -> Result<usize, RemoteError> {
    let found = methods
        .iter()
        .enumerate()
        .find(|(_, (name, _, _))| *name == method);
    let Some((index, &(_, min, max))) = found else {
        return Err(no_such_method(typeid, method));
    };
    let got = args.len();
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    if got < min {
        let bound = if min == max { "exactly" } else { "at least" };
        return Err(RemoteError::type_error(format!(
            "{method} expected {bound} {min} {}, got {got}",
            plural(min)
        )));
    }
    if got > max {
        let bound = if min == max { "exactly" } else { "at most" };
        return Err(RemoteError::type_error(format!(
            "{method} expected {bound} {max} {}, got {got}",
            plural(max)
        )));
    }
    Ok(index)
}

fn cancelled() -> RemoteError {
    WithdrawReason::Cancelled.error()
}

async fn wait_parked(
    call: CallId,
    waiter: WaiterId,
    mut rx: oneshot::Receiver<Reply>,
    deadline: Option<Instant>,
) -> (CallId, WaiterId, ParkEnd) {
    let end = match deadline {
        None => match (&mut rx).await {
            Ok(reply) => ParkEnd::Answered(reply),
            Err(_) => ParkEnd::Dropped,
        },
        Some(deadline) => tokio::select! {
            r = &mut rx => match r {
                Ok(reply) => ParkEnd::Answered(reply),
                Err(_) => ParkEnd::Dropped,
            },
            _ = tokio::time::sleep_until(deadline) => ParkEnd::TimedOut(rx),
        },
    };
    (call, waiter, end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::node::memory::{MemoryBackend, TokenCounter};
    use crate::node::objects::register_builtins;
    use crate::node::registry::Registry;
    use syncman_protocol::value::encode;
    use syncman_protocol::{ErrorKind, Value};

    fn node() -> Arc<Node<MemoryBackend>> {
        let mut registry = Registry::default();
        register_builtins::<TokenCounter>(&mut registry);
        Arc::new(Node::new(
            Config::new(b"k".to_vec()),
            MemoryBackend::new(registry),
        ))
    }

    /// Leaked, as the object tests' `args` are.
    fn args(values: &[Value]) -> Args<'static> {
        Box::leak(Box::new(syncman_protocol::ArgList::of(values))).args()
    }

    /// Two sessions of one node and the queue `jobs` they share.
    async fn consumer_and_producer() -> (Session<MemoryBackend>, Session<MemoryBackend>, ObjectId) {
        let node = node();
        let mut consumer = Session::open(node.clone()).await.unwrap();
        let producer = Session::open(node.clone()).await.unwrap();
        let (q, _) = consumer
            .get_or_create("Queue", "jobs", Args::empty())
            .await
            .unwrap();
        (consumer, producer, q)
    }

    #[tokio::test]
    async fn at_shutdown_every_parked_call_ends_and_an_unsent_answer_goes_back() {
        let (mut consumer, mut producer, q) = consumer_and_producer().await;
        assert!(consumer.call(1, q, "get", Args::empty()).is_none(), "parks");
        assert!(consumer.call(2, q, "get", Args::empty()).is_none(), "parks");
        // The first get is answered, but the answer has not left the session yet.
        let put = producer.call(1, q, "put", args(&[Value::Int(7)]));
        assert!(matches!(put, Some(Ok(_))), "{put:?}");

        let mut replies = consumer.end(WithdrawReason::Shutdown).await;
        replies.sort_by_key(|(call, _)| *call);
        let kinds: Vec<_> = replies
            .iter()
            .map(|(call, r)| (*call, r.as_ref().map_err(|e| e.kind.clone())))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (1, Err(ErrorKind::ShuttingDown)),
                (2, Err(ErrorKind::ShuttingDown))
            ]
        );
        // The item handed to the first get is back in the queue.
        let item = producer.call(2, q, "get_nowait", Args::empty());
        assert_eq!(item, Some(Ok(encode::int(7))));
    }

    /// `acquire(False)` through `object`: whether the lock was free.
    fn try_acquire(s: &mut Session<MemoryBackend>, call: CallId, object: ObjectId) -> bool {
        let reply = s.call(call, object, "acquire", args(&[Value::Bool(false)]));
        reply == Some(Ok(encode::bool(true)))
    }

    /// A call withdrawn at once by its cancel leaves its end behind; a new call that uses
    /// the same id is not ended by it, and gets its own answer.
    #[tokio::test]
    async fn an_id_used_again_after_a_cancel_gets_its_own_answer() {
        let (mut consumer, mut producer, q) = consumer_and_producer().await;
        assert!(consumer.call(1, q, "get", Args::empty()).is_none(), "parks");
        assert!(
            matches!(consumer.cancel(1), Some(Err(_))),
            "withdrawn at once"
        );
        assert!(
            consumer.call(1, q, "get", Args::empty()).is_none(),
            "parks again"
        );
        let put = producer.call(1, q, "put", args(&[Value::Int(7)]));
        assert_eq!(put, Some(Ok(encode::nil())));
        let answer =
            tokio::time::timeout(std::time::Duration::from_secs(10), consumer.next_answer())
                .await
                .expect("the second call was never answered");
        assert_eq!(answer, (1, Ok(encode::int(7))));
    }

    /// A Condition and its lock share one state. A hold taken through one of them is
    /// released at its session's end even when that object has left the table: the
    /// session notes the other too, and the Condition keeps its lock object alive.
    #[tokio::test]
    async fn a_hold_through_a_deleted_condition_or_lock_goes_back_at_session_end() {
        for delete_condition in [true, false] {
            let node = node();
            let mut a = Session::open(node.clone()).await.unwrap();
            let mut b = Session::open(node.clone()).await.unwrap();
            let lock = a.create("RLock", Args::empty()).await.unwrap();
            let cond = a
                .create("Condition", args(&[Value::Int(lock.into())]))
                .await
                .unwrap();
            let (through, deleted, survivor) = if delete_condition {
                (cond, cond, lock)
            } else {
                (lock, lock, cond)
            };
            assert!(try_acquire(&mut b, 1, through));
            a.release(deleted).await;
            assert!(node.backend.object(deleted).is_none(), "left the table");
            assert!(!try_acquire(&mut a, 1, survivor), "b holds it");
            b.end(WithdrawReason::Cancelled).await;
            assert!(
                try_acquire(&mut a, 2, survivor),
                "b's hold went back (deleted the condition: {delete_condition})"
            );
        }
    }
}

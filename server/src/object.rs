//! The one trait every object type implements, built-in or registered by an embedding
//! program, and the registry that maps a typeid to a constructor. There is no central match
//! over typeids: the node looks the type up here and calls it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use syncman_protocol::{Args, RemoteError};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A method's result: an encoded value, or a Python-style error.
pub type Reply = Result<Bytes, RemoteError>;

/// Identifies an authenticated connection.
pub type SessionId = u64;

/// Identifies one parked call, unique across the node.
pub type WaiterId = u64;

/// What a method call produced.
#[non_exhaustive]
pub enum Outcome {
    /// Answered at once.
    Ready(Reply),
    /// The call waits (queue get, lock acquire, ...). The object keeps the sending half and
    /// answers later; the session keeps this half.
    Park(Parked),
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Self {
        Outcome::Ready(reply)
    }
}

/// A method that may park, or failed before doing anything.
impl From<Result<Outcome, RemoteError>> for Outcome {
    fn from(result: Result<Outcome, RemoteError>) -> Self {
        result.unwrap_or_else(|e| Outcome::Ready(Err(e)))
    }
}

/// A call parked on an object.
///
/// Withdrawing a waiter ([`SharedObject::withdraw`]) and answering it happen under the
/// object's own lock, so they are mutually exclusive: an item or permit is never handed to
/// a caller that has gone.
pub struct Parked {
    pub waiter: WaiterId,
    pub reply: oneshot::Receiver<Reply>,
    /// When the node gives up on the caller's behalf (the call's timeout).
    pub deadline: Option<Instant>,
    /// What the call was for, in the object's own terms; handed back to
    /// [`SharedObject::undelivered`] if its answer cannot be delivered.
    pub purpose: u8,
}

/// The result of withdrawing a parked call.
#[derive(Debug)]
pub enum Withdrawn {
    /// It was still waiting and is now gone; send this reply.
    Answer(Reply),
    /// It had been answered already: the answer is in its channel.
    AlreadyAnswered,
    /// The wait goes on without a deadline (a `Condition` whose timeout passed must still
    /// re-acquire its lock before it returns, as in Python).
    StillWaiting,
}

/// Why a parked call is being withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdraw {
    /// The call's own timeout ran out: the object answers as Python would (`Empty`,
    /// `False`, `BrokenBarrierError`, ...).
    Timeout,
    /// The caller cancelled (dropped the future) or its session ended.
    Cancelled,
    /// The node is shutting down.
    Shutdown,
}

/// Context of one call.
pub struct CallCtx {
    /// The calling session: lock ownership and the like are per session.
    pub session: SessionId,
    /// Set by the object when the session now holds state in it (a lock, a permit) that
    /// must be released when the session ends.
    pub holds_state: bool,
    /// False when the session has as many calls parked as it may: a call that would
    /// wait fails with `Busy` instead, before it changes anything.
    pub may_park: bool,
    next_waiter: fn() -> WaiterId,
}

impl CallCtx {
    pub fn new(session: SessionId) -> Self {
        CallCtx {
            session,
            holds_state: false,
            may_park: true,
            next_waiter: crate::waiter::next_waiter_id,
        }
    }

    /// `Err(Busy)` if this call may not park.
    pub fn check_park(&self) -> Result<(), RemoteError> {
        if self.may_park {
            Ok(())
        } else {
            Err(RemoteError::new(
                syncman_protocol::ErrorKind::Busy,
                "too many calls waiting on this connection",
            ))
        }
    }

    /// Parks this call on `queue`, or answers `Busy` if the session may not park more.
    pub fn park<T>(
        &self,
        queue: &mut crate::waiter::WaitQueue<T>,
        want: T,
        deadline: Option<Instant>,
        purpose: u8,
    ) -> Outcome {
        if queue.is_closed() {
            // The object was deleted between this call's lookup and now.
            return Outcome::Ready(Err(RemoteError::not_found(
                "the object was deleted while the call waited",
            )));
        }
        match self.check_park() {
            Ok(()) => {
                Outcome::Park(queue.park(self.waiter_id(), self.session, want, deadline, purpose))
            }
            Err(e) => Outcome::Ready(Err(e)),
        }
    }

    /// A fresh waiter id for parking this call.
    pub fn waiter_id(&self) -> WaiterId {
        (self.next_waiter)()
    }
}

/// A shared object on the node.
///
/// Implementations keep their state behind their own lock and never hold it across an
/// `.await` (there is no `.await` here at all): a call runs to completion or parks.
pub trait SharedObject: Send + Sync + 'static {
    /// The typeid this object was created as (`dict`, `Queue`, ...).
    fn typeid(&self) -> &str;

    /// Runs `method`. Unknown methods and bad arguments are error replies, never panics.
    fn call(&self, method: &str, args: Args, ctx: &mut CallCtx) -> Outcome;

    /// Withdraws a parked call (its deadline passed, its caller cancelled, its session
    /// ended, or the node is stopping).
    fn withdraw(&self, _waiter: WaiterId, _why: Withdraw) -> Withdrawn {
        Withdrawn::AlreadyAnswered
    }

    /// An answer given to a parked call never reached its caller (it cancelled or vanished
    /// first): take back what it handed out (an item goes back to the queue's front, a lock
    /// grant is released). `purpose` is what the object put in [`Parked::purpose`].
    fn undelivered(&self, _purpose: u8, _session: SessionId, _reply: Reply) {}

    /// The session ended: release whatever it holds here (locks, permits).
    fn session_ended(&self, _session: SessionId) {}

    /// The object left the table (deleted, or its last reference dropped): answer every
    /// parked call with `NotFound` so none waits on an object nobody can reach.
    fn closed(&self) {}

    /// One line for `syncman status`.
    fn describe(&self) -> String {
        self.typeid().to_owned()
    }
}

/// Builds an object of one typeid from its constructor arguments.
pub type Factory = Arc<dyn Fn(Args) -> Result<Arc<dyn SharedObject>, RemoteError> + Send + Sync>;

/// Typeid → constructor.
#[derive(Clone, Default)]
pub struct Registry {
    factories: HashMap<String, Factory>,
}

impl Registry {
    /// A registry with every built-in typeid.
    pub fn with_builtins() -> Self {
        let mut r = Registry::default();
        crate::objects::register_builtins(&mut r);
        r
    }

    /// Adds (or replaces) a typeid.
    pub fn register<F>(&mut self, typeid: impl Into<String>, factory: F)
    where
        F: Fn(Args) -> Result<Arc<dyn SharedObject>, RemoteError> + Send + Sync + 'static,
    {
        self.factories.insert(typeid.into(), Arc::new(factory));
    }

    pub fn construct(
        &self,
        typeid: &str,
        args: Args,
    ) -> Result<Arc<dyn SharedObject>, RemoteError> {
        let factory = self
            .factories
            .get(typeid)
            .ok_or_else(|| RemoteError::key_error(format!("unknown typeid '{typeid}'")))?;
        factory(args)
    }

    pub fn typeids(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }
}

/// The error for a method an object does not have, worded as Python's.
pub fn unknown_method(typeid: &str, method: &str) -> Reply {
    Err(no_such_method(typeid, method))
}

pub fn no_such_method(typeid: &str, method: &str) -> RemoteError {
    RemoteError::attribute_error(format!("'{typeid}' object has no attribute '{method}'"))
}

/// A method an object exposes: name, and the least and most positional arguments it takes.
pub type MethodSpec = (&'static str, usize, usize);

/// Checks a call against an object's method table *before* anything runs, so a call with
/// the wrong number of arguments changes nothing. Unknown methods get Python's
/// `AttributeError`; wrong counts Python's `TypeError` wording.
pub fn check_call(
    typeid: &str,
    methods: &[MethodSpec],
    method: &str,
    args: &Args,
) -> Result<(), RemoteError> {
    let Some(&(_, min, max)) = methods.iter().find(|(name, _, _)| *name == method) else {
        return unknown_method(typeid, method).map(|_| ());
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
    Ok(())
}

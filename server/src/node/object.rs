//! The one trait every object type implements, built-in or registered by an embedding
//! program, and what a call on it produces. Nothing here knows of sockets or wire dialects:
//! arguments arrive as [`Args`] and results leave as encoded values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use syncman_protocol::{Args, ErrorKind, RemoteError};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::budget::ByteBudget;

/// A method's result: an encoded value, or a Python-style error.
pub type Reply = Result<Bytes, RemoteError>;

/// Identifies a session (an authenticated connection): locks and units are held by one.
pub type SessionId = u64;

/// Identifies one parked call, unique across the node.
pub type WaiterId = u64;

/// A fresh waiter id.
pub fn next_waiter_id() -> WaiterId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

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

/// What a parked call's answer hands its caller, so that an answer the caller never
/// received can be taken back ([`SharedObject::undelivered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handover {
    /// Nothing to take back (a put admitted, a join or an event wait ended).
    Nothing,
    /// An item taken out of the object (a queue `get`): it goes back to the front.
    Item,
    /// Something the caller now holds (a lock, a semaphore unit): it is released.
    Grant,
    /// A unit the caller holds through a guard until it gives it back or its session
    /// ends (a semaphore lease): it is released and taken off the session's books.
    Lease,
    /// An item lent out with a receipt (a queue `get_lease`): the lease is cancelled and
    /// the item goes back to the front.
    LeasedItem,
}

/// A call parked on an object: the half of its answer channel the session keeps.
///
/// Withdrawing a waiter ([`SharedObject::withdraw`]) and answering it happen under the
/// object's own lock, so they are mutually exclusive: an item or permit is never handed to
/// a caller that has gone.
pub struct Parked {
    pub waiter: WaiterId,
    pub reply: oneshot::Receiver<Reply>,
    /// When the node gives up on the caller's behalf (the call's timeout).
    pub deadline: Option<Instant>,
    /// What the answer hands over, passed back to [`SharedObject::undelivered`].
    pub handover: Handover,
}

/// Why the node withdraws a parked call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithdrawReason {
    /// The call's own timeout ran out: the object answers as Python would (`Empty`,
    /// `False`, `BrokenBarrierError`, ...).
    Timeout,
    /// The caller cancelled (dropped the future) or its session ended.
    Cancelled,
    /// The node is shutting down.
    Shutdown,
}

impl WithdrawReason {
    /// The error a call ends with when it is withdrawn for this reason and its object has
    /// no answer of its own: `ShuttingDown` when the node stops, else `Cancelled`.
    pub fn error(self) -> RemoteError {
        match self {
            WithdrawReason::Shutdown => {
                RemoteError::new(ErrorKind::ShuttingDown, "the node is shutting down")
            }
            _ => RemoteError::new(ErrorKind::Cancelled, "the call was cancelled"),
        }
    }
}

/// What withdrawing a parked call found.
#[derive(Debug)]
pub enum Withdrawal {
    /// It was still waiting and is now gone; send this reply.
    Answer(Reply),
    /// It had been answered already: the answer is in its channel.
    AlreadyAnswered,
    /// The wait goes on without a deadline (a `Condition` whose timeout passed must still
    /// re-acquire its lock before it returns, as in Python).
    StillWaiting,
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
    /// The largest answer the caller can receive: an object refuses to hand out an item
    /// larger than this (`ValueError`) instead of taking it and losing it on the way.
    pub reply_limit: usize,
}

impl CallCtx {
    pub fn new(session: SessionId) -> Self {
        CallCtx {
            session,
            holds_state: false,
            may_park: true,
            reply_limit: usize::MAX,
        }
    }

    /// `Err(ValueError)` if an answer carrying `item` could not reach this caller.
    pub fn check_fits(&self, item: &[u8]) -> Result<(), RemoteError> {
        fits(item.len(), self.reply_limit)
    }

    /// `Err(Busy)` if this call may not park.
    pub fn check_park(&self) -> Result<(), RemoteError> {
        if self.may_park {
            Ok(())
        } else {
            Err(RemoteError::new(
                ErrorKind::Busy,
                "too many calls waiting on this connection",
            ))
        }
    }
}

/// A shared object on the node.
///
/// Implementations keep their state behind their own lock and never hold it across an
/// `.await` (there is no `.await` here at all): a call runs to completion or parks.
pub trait SharedObject: Send + Sync + 'static {
    /// The typeid this object was created as (`dict`, `Queue`, ...).
    fn typeid(&self) -> &str;

    /// The methods this type exposes, with the arguments each takes. The session checks
    /// every call against them before the object runs it ([`crate::check_call`]), so an
    /// unknown method or a wrong argument count changes nothing. `None`: the object checks
    /// its own calls.
    fn methods(&self) -> Option<&'static [MethodSpec]> {
        None
    }

    /// Runs `method`. Unknown methods and bad arguments are error replies, never panics.
    fn call(&self, method: &str, args: Args<'_>, ctx: &mut CallCtx) -> Outcome;

    /// Withdraws a parked call (its deadline passed, its caller cancelled, its session
    /// ended, or the node is stopping).
    fn withdraw(&self, _waiter: WaiterId, _why: WithdrawReason) -> Withdrawal {
        Withdrawal::AlreadyAnswered
    }

    /// An answer given to a parked call never reached its caller (it cancelled or vanished
    /// first): take back what it handed out (an item goes back to the queue's front, a lock
    /// grant is released). `handover` is what the object put in [`Parked::handover`].
    fn undelivered(&self, _handover: Handover, _session: SessionId, _reply: Reply) {}

    /// The session ended: release whatever it holds here (locks, permits).
    fn session_ended(&self, _session: SessionId) {}

    /// Charges what the object holds to the node's byte budget, and its growth from now on
    /// (`node/budget.rs`); `MemoryError` if it does not fit, and the object is not added.
    /// Types that hold no data keep the default.
    fn bind_budget(&self, _budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        Ok(())
    }

    /// The object left the table (deleted, or its last reference dropped): answer every
    /// parked call with `NotFound` so none waits on an object nobody can reach.
    fn closed(&self) {}

    /// Calls parked on this object now (for `status`, and for tests that must see a call
    /// parked before they go on).
    fn waiting(&self) -> usize {
        0
    }

    /// One line for `syncman status`.
    fn describe(&self) -> String {
        self.typeid().to_owned()
    }

    /// The lock a `Condition(lock)` may share: a `Lock` or `RLock` answers with itself, to
    /// be downcast by the Condition's constructor. Other types have none.
    fn shareable_lock(&self) -> Option<&dyn std::any::Any> {
        None
    }

    /// Another object (its id, and itself) whose state this one shares: a `Condition(lock)`
    /// and its lock. A session that takes a hold here is noted there too, so that its end
    /// reaches the shared state through whichever of the two outlives the other.
    fn shares_state_with(&self) -> Option<(u64, Arc<dyn SharedObject>)> {
        None
    }
}

/// Room an answer needs besides its value: the response envelope and the frame header.
pub const ANSWER_OVERHEAD: usize = 32;

/// `Err(ValueError)` if an answer carrying `len` bytes of items would exceed a frame limit
/// of `limit`.
pub fn fits(len: usize, limit: usize) -> Result<(), RemoteError> {
    if len.saturating_add(ANSWER_OVERHEAD) <= limit {
        Ok(())
    } else {
        Err(RemoteError::value_error(format!(
            "an item of {len} bytes exceeds this connection's frame limit of {limit} bytes; \
             it stays where it is"
        )))
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

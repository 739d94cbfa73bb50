//! The queue of parked callers an object keeps: who waits, for what, and where the answer
//! goes.

use std::collections::VecDeque;

use syncman_protocol::RemoteError;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::object::{
    next_waiter_id, CallCtx, Handover, Outcome, Parked, Reply, SessionId, WaiterId,
};

/// One parked caller: its id, what it asked for, and where its answer goes.
pub struct Waiter<T> {
    pub id: WaiterId,
    pub session: SessionId,
    pub want: T,
    tx: oneshot::Sender<Reply>,
}

impl<T> Waiter<T> {
    /// Answers the waiter. Returns the reply back if the caller's half is gone, so the
    /// object can keep what it was about to hand out.
    pub fn answer(self, reply: Reply) -> Result<(), Reply> {
        self.tx.send(reply)
    }

    /// The same waiter (same id, same caller) waiting for something else: a Condition's
    /// notified waiter moving on to re-acquire the lock.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Waiter<U> {
        Waiter {
            id: self.id,
            session: self.session,
            want: f(self.want),
            tx: self.tx,
        }
    }
}

/// FIFO of waiters, with withdrawal by id.
pub struct WaitQueue<T> {
    waiters: VecDeque<Waiter<T>>,
    /// Set when the object left the table: nobody may park here any more.
    closed: bool,
}

impl<T> Default for WaitQueue<T> {
    fn default() -> Self {
        WaitQueue {
            waiters: VecDeque::new(),
            closed: false,
        }
    }
}

impl<T> WaitQueue<T> {
    /// Parks the calling session until the object answers it (or `deadline` passes), or
    /// answers at once with `NotFound` (the object was deleted meanwhile) or `Busy` (the
    /// session may park no more calls), in which case nothing changed.
    pub fn park(
        &mut self,
        ctx: &CallCtx,
        want: T,
        deadline: Option<Instant>,
        handover: Handover,
    ) -> Outcome {
        if self.closed {
            // The object was deleted between this call's lookup and now.
            return Outcome::Ready(Err(RemoteError::not_found(
                "the object was deleted while the call waited",
            )));
        }
        if let Err(busy) = ctx.check_park() {
            return Outcome::Ready(Err(busy));
        }
        let (tx, rx) = oneshot::channel();
        let id = next_waiter_id();
        self.waiters.push_back(Waiter {
            id,
            session: ctx.session,
            want,
            tx,
        });
        Outcome::Park(Parked {
            waiter: id,
            reply: rx,
            deadline,
            handover,
        })
    }

    /// Queues a waiter that was parked elsewhere.
    pub fn push_back(&mut self, waiter: Waiter<T>) {
        self.waiters.push_back(waiter);
    }

    pub fn get(&self, id: WaiterId) -> Option<&Waiter<T>> {
        self.waiters.iter().find(|w| w.id == id)
    }

    pub fn contains(&self, id: WaiterId) -> bool {
        self.waiters.iter().any(|w| w.id == id)
    }

    pub fn pop_front(&mut self) -> Option<Waiter<T>> {
        self.waiters.pop_front()
    }

    /// Removes a waiter by id; `None` if it was already answered.
    pub fn remove(&mut self, id: WaiterId) -> Option<Waiter<T>> {
        let at = self.waiters.iter().position(|w| w.id == id)?;
        self.waiters.remove(at)
    }

    /// Removes every waiter of a session.
    pub fn remove_session(&mut self, session: SessionId) -> Vec<Waiter<T>> {
        let mut gone = Vec::new();
        let mut kept = VecDeque::with_capacity(self.waiters.len());
        for w in self.waiters.drain(..) {
            if w.session == session {
                gone.push(w);
            } else {
                kept.push_back(w);
            }
        }
        self.waiters = kept;
        gone
    }

    /// Answers every waiter with `NotFound` (their object is gone) and refuses new ones.
    pub fn close_all(&mut self) {
        self.closed = true;
        for w in self.waiters.drain(..) {
            let _ = w.answer(Err(RemoteError::not_found(
                "the object was deleted while the call waited",
            )));
        }
    }

    pub fn drain(&mut self) -> impl Iterator<Item = Waiter<T>> + '_ {
        self.waiters.drain(..)
    }

    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }
}

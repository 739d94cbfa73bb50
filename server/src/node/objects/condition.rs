//! `Condition`: a lock plus waiters for `notify`.
//!
//! `wait` releases the lock completely, parks until notified (or timed out), then
//! re-acquires the lock at the depth it had before returning, exactly as Python's
//! `Condition.wait`. `wait_for(predicate)` runs on the client as a loop of `wait` calls.
//!
//! The lock is the Condition's own `RLock`, as Python's `Condition()`, or the state of the
//! `Lock` or `RLock` object it was made over (`Condition(lock)`), shared with that object.
//! Over a plain `Lock`, "owned" means "held, by anyone", as Python's `Condition` decides it
//! for a lock without `_is_owned`: `wait` and `notify` need the lock held, not held by the
//! caller.
//!
//! Python's calls (`acquire`, `wait`, `notify`, ...) are owned by the connection, as a
//! CPython thread owns its connection. The Rust client's guards use the `*_fenced` calls,
//! owned by their grant's token: tasks sharing one connection exclude each other, and a
//! `wait_fenced` answers `[notified, token]` with the new grant's token, so a guard always
//! knows whether it holds the lock (see `lock.rs`, [`Owner`]).

use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use syncman_protocol::{Args, RemoteError, Value};

use super::lock::{Attached, GrantAnswer, Lock, LockState, Owner, Via, Want};
use super::timeout::{condition_wait, lock_wait, seconds, Wait};
use crate::node::backend::{FencingTokens, ObjectId};
use crate::node::object::{
    CallCtx, Handover, MethodSpec, Outcome, Reply, SessionId, SharedObject, WaiterId,
    WithdrawReason, Withdrawal,
};
use crate::node::registry::Objects;
use crate::node::wait::{WaitQueue, Waiter};
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("acquire", 0, 2),
    ("release", 0, 0),
    ("__enter__", 0, 0),
    ("__exit__", 0, 3),
    ("wait", 0, 1),
    ("notify", 0, 1),
    ("notify_all", 0, 0),
    ("acquire_fenced", 0, 2),
    ("release_fenced", 1, 1),
    ("reenter_fenced", 1, 1),
    ("wait_fenced", 1, 2),
    ("notify_fenced", 1, 2),
    ("notify_all_fenced", 1, 1),
];

/// A wait parked for a notify: the depth to restore and who will own the lock again.
#[derive(Clone, Copy)]
struct Asleep {
    depth: u32,
    owner: Owner,
}

/// Both halves, locked in this order (the lock's state first) by every call.
struct State<'a, T> {
    lock: MutexGuard<'a, LockState<T>>,
    notified: MutexGuard<'a, WaitQueue<Asleep>>,
}

pub struct Condition<T: FencingTokens> {
    /// Its own lock, or the one it shares with a `Lock`/`RLock` object.
    lock: Attached<T>,
    /// An `RLock` (Python's default) or a plain `Lock`.
    reentrant: bool,
    /// The `Lock`/`RLock` object whose state it shares, kept alive while the Condition
    /// lives (as a Python Condition keeps its lock): a session that took a hold through
    /// that object ends through it ([`SharedObject::shares_state_with`]).
    lock_object: Option<LockObject>,
    /// Marks the waiters that came through this Condition in the lock's queue.
    via: Via,
    notified: Mutex<WaitQueue<Asleep>>,
}

/// The `Lock`/`RLock` object a Condition was made over: its id, and itself.
type LockObject = (ObjectId, Arc<dyn SharedObject>);

/// A wait taking its lock back; it answers whether it was notified.
fn reacquire(w: Waiter<Asleep>, notified: bool, via: Via) -> Waiter<Want> {
    w.map(|a| Want {
        depth: a.depth,
        answer: match a.owner {
            Owner::Session => GrantAnswer::Flag(notified),
            Owner::Grant => GrantAnswer::FlagAndToken(notified),
        },
        reacquire: true,
        via,
    })
}

impl<T: FencingTokens> Condition<T> {
    /// Python's `Condition(lock=None)`: `lock` is the id of a `Lock` or `RLock` object on
    /// this node, or absent (or None) for a Condition with an `RLock` of its own.
    pub fn new(mut args: Args<'_>, objects: &dyn Objects) -> Result<Self, RemoteError> {
        let lock = args.opt_value()?;
        args.finish()?;
        let (lock, reentrant, lock_object) = match lock {
            None | Some(Value::Nil) => (Attached::new_lock(), true, None),
            Some(Value::Int(id)) => Self::lock_of(id, objects)?,
            Some(_) => {
                return Err(RemoteError::type_error(
                    "Condition(lock): lock must be the id of a Lock or RLock",
                ))
            }
        };
        Ok(Condition {
            lock,
            reentrant,
            lock_object,
            via: Via::new_condition(),
            notified: Mutex::new(WaitQueue::default()),
        })
    }

    /// The shared state of the `Lock` or `RLock` object `id`, whether it is re-entrant, and
    /// the object.
    fn lock_of(
        id: i128,
        objects: &dyn Objects,
    ) -> Result<(Attached<T>, bool, Option<LockObject>), RemoteError> {
        let not_found =
            || RemoteError::not_found(format!("Condition(lock): no object {id} on this node"));
        let id = ObjectId::try_from(id).map_err(|_| not_found())?;
        let object = objects.find(id).ok_or_else(not_found)?;
        let Some(lock) = object
            .shareable_lock()
            .and_then(|any| any.downcast_ref::<Lock<T>>())
        else {
            return Err(RemoteError::type_error(format!(
                "Condition(lock): object {id} is a {}, not a Lock or RLock",
                object.typeid()
            )));
        };
        let (state, reentrant) = lock.share()?;
        Ok((state, reentrant, Some((id, object))))
    }

    fn state(&self) -> State<'_, T> {
        let lock = self.lock.lock();
        State {
            lock,
            notified: self.notified.lock(),
        }
    }

    /// The depth of the caller's hold: through Python's calls (`token` is `None`) or the
    /// grant `token`. Over a plain `Lock`, Python's calls own it whenever it is held.
    fn hold(&self, st: &State<'_, T>, session: SessionId, token: Option<i128>) -> Option<u32> {
        match token {
            Some(token) => st.lock.held_under(token),
            None if self.reentrant => st.lock.held_by_session(session),
            None => st.lock.holder.map(|h| h.depth),
        }
    }

    fn acquire(
        &self,
        st: &mut State<'_, T>,
        answer: GrantAnswer,
        wait: Wait,
        ctx: &mut CallCtx,
    ) -> Outcome {
        ctx.holds_state = true;
        let owner = answer.owner();
        if let Some(token) = st.lock.try_acquire(ctx.session, owner, self.reentrant) {
            return Outcome::Ready(Ok(match answer {
                GrantAnswer::Token => encode::int(token as i128),
                _ => encode::bool(true),
            }));
        }
        let want = Want {
            depth: 1,
            answer,
            reacquire: false,
            via: self.via,
        };
        match wait {
            Wait::No => Outcome::Ready(Ok(match answer {
                GrantAnswer::Token => encode::nil(),
                _ => encode::bool(false),
            })),
            Wait::Until(deadline) => st.lock.waiters.park(ctx, want, deadline, Handover::Grant),
        }
    }

    /// Releases the caller's hold completely, waits for a notify, takes the lock back at
    /// the same depth.
    fn wait(
        &self,
        st: &mut State<'_, T>,
        token: Option<i128>,
        wait: Wait,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        let depth = self
            .hold(st, ctx.session, token)
            .ok_or_else(|| RemoteError::runtime_error("cannot wait on un-acquired lock"))?;
        // Refuse before giving up the lock, so a refused wait changes nothing.
        ctx.check_park()?;
        ctx.holds_state = true;
        let owner = if token.is_some() {
            Owner::Grant
        } else {
            Owner::Session
        };
        st.lock.hand_over();
        Ok(match wait {
            // wait(0): release, then take the lock back at once if possible.
            Wait::No if st.lock.holder.is_none() && st.lock.waiters.is_empty() => {
                let token = st.lock.try_acquire(ctx.session, owner, true).unwrap_or(0);
                st.lock.set_depth(depth);
                let answer = match owner {
                    Owner::Session => GrantAnswer::Flag(false),
                    Owner::Grant => GrantAnswer::FlagAndToken(false),
                };
                Outcome::Ready(Ok(answer_with(answer, token)))
            }
            Wait::No => {
                let asleep = Asleep { depth, owner };
                // Parked straight into the lock's queue, as a timed-out wait is.
                let want = Want {
                    depth: asleep.depth,
                    answer: match owner {
                        Owner::Session => GrantAnswer::Flag(false),
                        Owner::Grant => GrantAnswer::FlagAndToken(false),
                    },
                    reacquire: true,
                    via: self.via,
                };
                st.lock.waiters.park(ctx, want, None, Handover::Grant)
            }
            Wait::Until(deadline) => {
                st.notified
                    .park(ctx, Asleep { depth, owner }, deadline, Handover::Grant)
            }
        })
    }

    /// Moves up to `n` waits from waiting for a notify to waiting for the lock.
    fn notify(&self, st: &mut State<'_, T>, n: i128) {
        let mut moved = 0;
        while moved < n {
            let Some(w) = st.notified.pop_front() else {
                break;
            };
            st.lock.waiters.push_back(reacquire(w, true, self.via));
            moved += 1;
        }
    }

    fn check_notify(
        &self,
        st: &State<'_, T>,
        session: SessionId,
        token: Option<i128>,
    ) -> Result<(), RemoteError> {
        match self.hold(st, session, token) {
            Some(_) => Ok(()),
            None => Err(RemoteError::runtime_error(
                "cannot notify on un-acquired lock",
            )),
        }
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args<'_>,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        let mut st = self.state();
        let count = |args: &mut Args| -> Result<i128, RemoteError> {
            match args.opt_value()? {
                None => Ok(1),
                Some(v) => v
                    .as_int()
                    .ok_or_else(|| RemoteError::type_error("n must be an integer")),
            }
        };
        Ok(match method {
            "acquire" | "__enter__" => {
                let wait = lock_wait(&mut args)?;
                self.acquire(&mut st, GrantAnswer::Flag(true), wait, ctx)
            }
            "acquire_fenced" => {
                let wait = lock_wait(&mut args)?;
                self.acquire(&mut st, GrantAnswer::Token, wait, ctx)
            }
            "reenter_fenced" => {
                let token = args.int("token")?;
                if !self.reentrant {
                    return Err(RemoteError::runtime_error(
                        "this Condition's lock is a Lock, which is not re-entrant",
                    ));
                }
                let token = st.lock.reenter(token)?;
                Outcome::Ready(Ok(encode::int(token as i128)))
            }
            "release" | "__exit__" => {
                st.lock.release(ctx.session, self.reentrant)?;
                Outcome::Ready(Ok(encode::nil()))
            }
            "release_fenced" => {
                st.lock.release_fenced(args.int("token")?)?;
                Outcome::Ready(Ok(encode::nil()))
            }
            "wait" => {
                let wait = condition_wait(seconds(args.opt_value()?)?);
                self.wait(&mut st, None, wait, ctx)?
            }
            "wait_fenced" => {
                let token = args.int("token")?;
                let wait = condition_wait(seconds(args.opt_value()?)?);
                self.wait(&mut st, Some(token), wait, ctx)?
            }
            "notify" => {
                self.check_notify(&st, ctx.session, None)?;
                let n = count(&mut args)?;
                self.notify(&mut st, n);
                Outcome::Ready(Ok(encode::nil()))
            }
            "notify_all" => {
                self.check_notify(&st, ctx.session, None)?;
                self.notify(&mut st, i128::MAX);
                Outcome::Ready(Ok(encode::nil()))
            }
            "notify_fenced" => {
                let token = args.int("token")?;
                self.check_notify(&st, ctx.session, Some(token))?;
                let n = count(&mut args)?;
                self.notify(&mut st, n);
                Outcome::Ready(Ok(encode::nil()))
            }
            "notify_all_fenced" => {
                let token = args.int("token")?;
                self.check_notify(&st, ctx.session, Some(token))?;
                self.notify(&mut st, i128::MAX);
                Outcome::Ready(Ok(encode::nil()))
            }
            _ => return Err(crate::node::object::no_such_method("Condition", method)),
        })
    }
}

fn answer_with(answer: GrantAnswer, token: u64) -> bytes::Bytes {
    match answer {
        GrantAnswer::Token => encode::int(token as i128),
        GrantAnswer::Flag(b) => encode::bool(b),
        GrantAnswer::FlagAndToken(b) => {
            encode::array([encode::bool(b), encode::int(token as i128)].iter())
        }
    }
}

impl<T: FencingTokens> SharedObject for Condition<T> {
    fn typeid(&self) -> &str {
        "Condition"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, args: Args<'_>, ctx: &mut CallCtx) -> Outcome {
        self.dispatch(method, args, ctx)
            .unwrap_or_else(|e| Outcome::Ready(Err(e)))
    }

    fn withdraw(&self, waiter: WaiterId, why: WithdrawReason) -> Withdrawal {
        let mut st = self.state();
        if why == WithdrawReason::Timeout {
            // Timed out before a notify: like Python, re-acquire the lock, then return False.
            if let Some(w) = st.notified.remove(waiter) {
                st.lock.waiters.push_back(reacquire(w, false, self.via));
                if st.lock.holder.is_none() {
                    st.lock.hand_over();
                }
                return if st.lock.waiters.contains(waiter) {
                    Withdrawal::StillWaiting
                } else {
                    Withdrawal::AlreadyAnswered
                };
            }
            // Waiting for the lock itself: an acquire's timeout applies; a wait that is
            // re-acquiring keeps waiting for the lock.
            return match st.lock.waiters.get(waiter).map(|w| w.want) {
                Some(want) if want.reacquire => Withdrawal::StillWaiting,
                Some(want) => {
                    st.lock.waiters.remove(waiter);
                    Withdrawal::Answer(Ok(match want.answer {
                        GrantAnswer::Token => encode::nil(),
                        _ => encode::bool(false),
                    }))
                }
                None => Withdrawal::AlreadyAnswered,
            };
        }
        if st.notified.remove(waiter).is_some() || st.lock.waiters.remove(waiter).is_some() {
            return Withdrawal::Answer(Err(why.error()));
        }
        Withdrawal::AlreadyAnswered
    }

    fn undelivered(&self, handover: Handover, session: SessionId, reply: Reply) {
        // A lock grant (acquire, or a wait's re-acquire) nobody received: release it.
        if handover == Handover::Grant {
            self.lock.lock().undelivered(session, reply);
        }
    }

    fn session_ended(&self, session: SessionId) {
        let mut st = self.state();
        st.notified.remove_session(session);
        // An RLock's hold only its owner could release goes back; a plain Lock's stays,
        // as the `Lock` object itself decides.
        st.lock.session_ended(session, !self.reentrant);
    }

    fn closed(&self) {
        self.notified.lock().close_all();
        // Waits already taking the lock back finish when they get it, unless this was the
        // lock's last object. (Takes the lock's state: nothing of ours is held here.)
        self.lock.detach();
    }

    fn waiting(&self) -> usize {
        let st = self.state();
        st.notified.len() + st.lock.waiting_via(self.via)
    }

    fn describe(&self) -> String {
        let st = self.state();
        format!(
            "Condition {}, {} waiting for notify, {} for the lock",
            if st.lock.holder.is_some() {
                "held"
            } else {
                "free"
            },
            st.notified.len(),
            st.lock.waiters.len()
        )
    }

    fn shares_state_with(&self) -> Option<(u64, Arc<dyn SharedObject>)> {
        self.lock_object.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::memory::TokenCounter;
    use crate::node::object::Parked;
    use crate::node::objects::testing::{args, park, ready, TestObjects};
    use syncman_protocol::{ErrorKind, Value};

    use std::sync::Arc;

    type TestCondition = Condition<TokenCounter>;

    fn cond() -> TestCondition {
        TestCondition::new(Args::empty(), &TestObjects::default()).unwrap()
    }

    fn call(c: &TestCondition, session: SessionId, method: &str, params: &[Value]) -> Outcome {
        c.call(method, args(params), &mut CallCtx::new(session))
    }

    fn acquire(c: &TestCondition, session: SessionId) {
        assert_eq!(
            ready(call(c, session, "acquire", &[])).unwrap(),
            encode::bool(true)
        );
    }

    /// `acquire(False)`: whether `session` got the lock at once.
    fn try_acquire(c: &TestCondition, session: SessionId) -> bool {
        ready(call(c, session, "acquire", &[Value::Bool(false)])).unwrap() == encode::bool(true)
    }

    fn release(c: &TestCondition, session: SessionId) -> Reply {
        ready(call(c, session, "release", &[]))
    }

    /// Acquires, then waits (without a timeout): the wait parks.
    fn acquire_and_wait(c: &TestCondition, session: SessionId) -> Parked {
        acquire(c, session);
        park(call(c, session, "wait", &[]))
    }

    /// Acquires, then waits with a timeout (which the node would enforce by withdrawing).
    fn acquire_and_wait_timed(c: &TestCondition, session: SessionId) -> Parked {
        acquire(c, session);
        park(call(c, session, "wait", &[Value::Float(60.0)]))
    }

    fn runtime_error(reply: Reply) -> String {
        let e = reply.unwrap_err();
        assert_eq!(e.kind, ErrorKind::RuntimeError);
        e.message
    }

    #[test]
    fn wait_without_the_lock_is_a_runtime_error() {
        let c = cond();
        let msg = runtime_error(ready(call(&c, 1, "wait", &[])));
        assert_eq!(msg, "cannot wait on un-acquired lock");
        // Held by another session is not held.
        acquire(&c, 2);
        runtime_error(ready(call(&c, 1, "wait", &[])));
        assert!(!try_acquire(&c, 1), "the refused wait changed nothing");
    }

    #[test]
    fn notify_without_the_lock_is_a_runtime_error() {
        let c = cond();
        let mut waiter = acquire_and_wait(&c, 1);
        for method in ["notify", "notify_all"] {
            let msg = runtime_error(ready(call(&c, 2, method, &[])));
            assert_eq!(msg, "cannot notify on un-acquired lock");
        }
        // Nobody was woken.
        acquire(&c, 2);
        release(&c, 2).unwrap();
        assert!(waiter.reply.try_recv().is_err());
    }

    #[test]
    fn wait_releases_the_lock_fully() {
        let c = cond();
        acquire(&c, 1);
        acquire(&c, 1);
        let _waiter = park(call(&c, 1, "wait", &[]));
        assert!(try_acquire(&c, 2), "the wait released both levels");
    }

    #[test]
    fn a_notified_waiter_takes_the_lock_back_at_its_depth_and_answers_true() {
        let c = cond();
        acquire(&c, 1);
        acquire(&c, 1);
        let mut waiter = park(call(&c, 1, "wait", &[]));
        acquire(&c, 2);
        ready(call(&c, 2, "notify", &[])).unwrap();
        // Notified, but the notifier still holds the lock.
        assert!(waiter.reply.try_recv().is_err());
        release(&c, 2).unwrap();
        assert_eq!(
            waiter.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
        // Held again at depth 2: two releases, then it is free.
        assert!(!try_acquire(&c, 2));
        release(&c, 1).unwrap();
        assert!(!try_acquire(&c, 2));
        release(&c, 1).unwrap();
        runtime_error(release(&c, 1));
        assert!(try_acquire(&c, 2));
    }

    #[test]
    fn notify_n_wakes_at_most_n_waiters_in_arrival_order() {
        let c = cond();
        let mut waiters: Vec<_> = (1..=4).map(|s| acquire_and_wait(&c, s)).collect();
        acquire(&c, 9);
        ready(call(&c, 9, "notify", &[Value::Int(2)])).unwrap();
        ready(call(&c, 9, "notify", &[])).unwrap();
        release(&c, 9).unwrap();
        // Three were notified; each takes the lock in turn as the previous one releases.
        for (i, w) in waiters.iter_mut().enumerate().take(3) {
            let session = i as SessionId + 1;
            assert_eq!(w.reply.try_recv().unwrap().unwrap(), encode::bool(true));
            release(&c, session).unwrap();
        }
        assert!(
            waiters[3].reply.try_recv().is_err(),
            "the fourth still waits"
        );
        assert!(try_acquire(&c, 9), "nobody else holds the lock");
    }

    #[test]
    fn notify_all_wakes_every_waiter() {
        let c = cond();
        let mut waiters: Vec<_> = (1..=3).map(|s| acquire_and_wait(&c, s)).collect();
        acquire(&c, 9);
        ready(call(&c, 9, "notify_all", &[])).unwrap();
        release(&c, 9).unwrap();
        for (i, w) in waiters.iter_mut().enumerate() {
            assert_eq!(w.reply.try_recv().unwrap().unwrap(), encode::bool(true));
            release(&c, i as SessionId + 1).unwrap();
        }
    }

    #[test]
    fn a_timed_out_wait_takes_the_lock_back_and_answers_false() {
        let c = cond();
        acquire(&c, 1);
        let mut waiter = acquire_and_wait_timed(&c, 1);
        assert!(matches!(
            c.withdraw(waiter.waiter, WithdrawReason::Timeout),
            Withdrawal::AlreadyAnswered
        ));
        assert_eq!(
            waiter.reply.try_recv().unwrap().unwrap(),
            encode::bool(false)
        );
        assert!(!try_acquire(&c, 2), "the lock is held again");
        release(&c, 1).unwrap();
        release(&c, 1).unwrap();
        assert!(try_acquire(&c, 2));
    }

    #[test]
    fn a_timed_out_wait_keeps_waiting_while_another_session_holds_the_lock() {
        let c = cond();
        let mut waiter = acquire_and_wait_timed(&c, 1);
        acquire(&c, 2);
        assert!(matches!(
            c.withdraw(waiter.waiter, WithdrawReason::Timeout),
            Withdrawal::StillWaiting
        ));
        assert!(waiter.reply.try_recv().is_err());
        // A notify now finds nobody: the timed-out wait no longer waits for one.
        ready(call(&c, 2, "notify", &[])).unwrap();
        release(&c, 2).unwrap();
        assert_eq!(
            waiter.reply.try_recv().unwrap().unwrap(),
            encode::bool(false)
        );
        assert!(!try_acquire(&c, 2), "session 1 holds the lock again");
    }

    #[test]
    fn a_wait_notified_before_its_timeout_still_answers_true() {
        let c = cond();
        let mut waiter = acquire_and_wait_timed(&c, 1);
        acquire(&c, 2);
        ready(call(&c, 2, "notify", &[])).unwrap();
        assert!(matches!(
            c.withdraw(waiter.waiter, WithdrawReason::Timeout),
            Withdrawal::StillWaiting
        ));
        release(&c, 2).unwrap();
        assert_eq!(
            waiter.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
    }

    #[test]
    fn a_timed_out_acquire_answers_false_and_never_gets_the_lock() {
        let c = cond();
        acquire(&c, 1);
        let timed = [Value::Bool(true), Value::Float(60.0)];
        let acquirer = park(call(&c, 2, "acquire", &timed));
        match c.withdraw(acquirer.waiter, WithdrawReason::Timeout) {
            Withdrawal::Answer(reply) => assert_eq!(reply.unwrap(), encode::bool(false)),
            other => panic!("expected an answer, got {other:?}"),
        }
        release(&c, 1).unwrap();
        assert!(try_acquire(&c, 3), "the lock was left free");
    }

    #[test]
    fn wait_zero_answers_false_holding_the_lock_at_its_depth() {
        let c = cond();
        acquire(&c, 1);
        acquire(&c, 1);
        assert_eq!(
            ready(call(&c, 1, "wait", &[Value::Int(0)])).unwrap(),
            encode::bool(false)
        );
        release(&c, 1).unwrap();
        release(&c, 1).unwrap();
        runtime_error(release(&c, 1));
    }

    #[test]
    fn wait_zero_lets_a_queued_acquirer_in_first() {
        let c = cond();
        acquire(&c, 1);
        let mut acquirer = park(call(&c, 2, "acquire", &[]));
        let mut waiter = park(call(&c, 1, "wait", &[Value::Int(0)]));
        assert_eq!(
            acquirer.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
        release(&c, 2).unwrap();
        assert_eq!(
            waiter.reply.try_recv().unwrap().unwrap(),
            encode::bool(false)
        );
        assert!(!try_acquire(&c, 3), "session 1 holds the lock again");
    }

    #[test]
    fn a_departed_holder_passes_the_lock_on() {
        let c = cond();
        acquire(&c, 1);
        acquire(&c, 1);
        let mut acquirer = park(call(&c, 2, "acquire", &[]));
        c.session_ended(1);
        assert_eq!(
            acquirer.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
    }

    #[test]
    fn a_departed_session_s_waiters_are_dropped() {
        let c = cond();
        let mut gone = acquire_and_wait(&c, 1);
        let mut staying = acquire_and_wait(&c, 2);
        c.session_ended(1);
        assert!(matches!(
            gone.reply.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Closed)
        ));
        acquire(&c, 3);
        ready(call(&c, 3, "notify", &[])).unwrap();
        release(&c, 3).unwrap();
        assert_eq!(
            staying.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
    }

    #[test]
    fn an_undelivered_regrant_is_released() {
        let c = cond();
        let mut waiter = acquire_and_wait(&c, 1);
        acquire(&c, 2);
        ready(call(&c, 2, "notify", &[])).unwrap();
        release(&c, 2).unwrap();
        // Re-granted to session 1, whose caller gave up before the answer left.
        assert!(matches!(
            c.withdraw(waiter.waiter, WithdrawReason::Cancelled),
            Withdrawal::AlreadyAnswered
        ));
        c.undelivered(waiter.handover, 1, waiter.reply.try_recv().unwrap());
        assert!(try_acquire(&c, 2));
    }

    #[test]
    fn closing_answers_every_waiter_with_not_found() {
        let c = cond();
        let mut waiter = acquire_and_wait(&c, 1);
        acquire(&c, 2);
        let mut acquirer = park(call(&c, 3, "acquire", &[]));
        c.closed();
        for reply in [waiter.reply.try_recv(), acquirer.reply.try_recv()] {
            assert_eq!(reply.unwrap().unwrap_err().kind, ErrorKind::NotFound);
        }
    }

    #[test]
    fn a_negative_timeout_answers_false_at_once() {
        // Python 3.11: with c: c.wait(-1) -> False at once, the lock held again (so is
        // wait(nan)); wait_for runs on the client, as a loop of wait.
        let c = cond();
        acquire(&c, 1);
        for timeout in [Value::Int(-1), Value::Float(-0.5), Value::Float(f64::NAN)] {
            assert_eq!(
                ready(call(&c, 1, "wait", std::slice::from_ref(&timeout))).unwrap(),
                encode::bool(false),
                "{timeout:?}"
            );
        }
        assert!(!try_acquire(&c, 2), "the lock is held again");
        release(&c, 1).unwrap();
        assert!(try_acquire(&c, 2));
        // The guard's wait too: [False, token], held again.
        let c = cond();
        let t = token_of(ready(call(&c, 1, "acquire_fenced", &[])));
        let answer = ready(call(&c, 1, "wait_fenced", &[Value::Int(t), Value::Int(-1)]));
        let t2 = token_of(answer.clone());
        assert_eq!(
            syncman_protocol::value::decode(&answer.unwrap()).unwrap(),
            Value::Array(vec![Value::Bool(false), Value::Int(t2)])
        );
        ready(call(&c, 1, "release_fenced", &[Value::Int(t2)])).unwrap();
    }

    #[test]
    fn acquire_parses_its_timeout_as_an_rlock_does() {
        // Python 3.11-3.13: Condition().acquire is its RLock's.
        let c = cond();
        acquire(&c, 1);
        for method in ["acquire", "acquire_fenced"] {
            // timeout=-1 is no timeout: it waits, without a deadline.
            let p = park(call(&c, 2, method, &[Value::Bool(true), Value::Int(-1)]));
            assert!(p.deadline.is_none(), "{method}");
            for (params, message) in [
                (
                    [Value::Bool(false), Value::Int(1)],
                    "can't specify a timeout for a non-blocking call",
                ),
                (
                    [Value::Bool(true), Value::Int(-2)],
                    "timeout value must be a non-negative number",
                ),
            ] {
                let e = ready(call(&c, 3, method, &params)).unwrap_err();
                assert_eq!(e.kind, ErrorKind::ValueError);
                assert_eq!(e.message, message);
            }
        }
    }

    fn token_of(reply: Reply) -> i128 {
        match syncman_protocol::value::decode(&reply.unwrap()).unwrap() {
            Value::Int(t) => t,
            Value::Array(items) => match items[1] {
                Value::Int(t) => t,
                _ => panic!("no token"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_guard_wait_is_owned_by_its_token_not_its_connection() {
        let c = cond();
        let s = 1; // one connection, two tasks
        let a = token_of(ready(call(&c, s, "acquire_fenced", &[])));
        // The other task of the same connection is excluded.
        let mut b_acq = park(call(&c, s, "acquire_fenced", &[]));
        // A wait through a stale token is refused and changes nothing.
        let e = ready(call(&c, s, "wait_fenced", &[Value::Int(a + 100)])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::RuntimeError);
        // The wait releases the lock: the other task gets it.
        let mut a_wait = park(call(&c, s, "wait_fenced", &[Value::Int(a)]));
        let b = token_of(b_acq.reply.try_recv().unwrap());
        // Python's notify from this connection does not count as holding a guard's lock.
        assert!(ready(call(&c, s, "notify", &[])).is_err());
        ready(call(&c, s, "notify_fenced", &[Value::Int(b)])).unwrap();
        ready(call(&c, s, "release_fenced", &[Value::Int(b)])).unwrap();
        // The waiter holds the lock again, under a new token it is told about.
        let answer = a_wait.reply.try_recv().unwrap();
        assert_eq!(
            syncman_protocol::value::decode(answer.as_ref().unwrap()).unwrap(),
            Value::Array(vec![Value::Bool(true), Value::Int(b + 1)])
        );
        let a2 = token_of(answer);
        ready(call(&c, s, "release_fenced", &[Value::Int(a2)])).unwrap();
        assert!(
            c.describe().starts_with("Condition free"),
            "{}",
            c.describe()
        );
    }

    // -- Condition(lock) ---------------------------------------------------------------

    type TestLock = Lock<TokenCounter>;

    /// A `Lock` (or `RLock`) as object 1, and a Condition made over it.
    fn over(reentrant: bool) -> (Arc<TestLock>, TestCondition) {
        let lock = Arc::new(TestLock::new(Args::empty(), reentrant).unwrap());
        let mut objects = TestObjects::default();
        objects.0.insert(1, lock.clone());
        let c = TestCondition::new(args(&[Value::Int(1)]), &objects).unwrap();
        (lock, c)
    }

    fn lock_call(l: &TestLock, session: SessionId, method: &str, params: &[Value]) -> Outcome {
        l.call(method, args(params), &mut CallCtx::new(session))
    }

    fn lock_try_acquire(l: &TestLock, session: SessionId) -> bool {
        ready(lock_call(l, session, "acquire", &[Value::Bool(false)])).unwrap()
            == encode::bool(true)
    }

    #[test]
    fn a_condition_over_a_lock_shares_its_hold_both_ways() {
        for reentrant in [false, true] {
            let (l, c) = over(reentrant);
            acquire(&c, 1);
            assert!(!lock_try_acquire(&l, 2), "held through the Condition");
            assert_eq!(
                ready(lock_call(&l, 2, "locked", &[])).unwrap(),
                encode::bool(true)
            );
            release(&c, 1).unwrap();
            assert!(lock_try_acquire(&l, 2));
            assert!(!try_acquire(&c, 3), "held through the Lock");
            // Re-entry by the holder: an RLock lets it in, a Lock does not.
            assert_eq!(try_acquire(&c, 2), reentrant);
        }
    }

    #[test]
    fn over_a_plain_lock_wait_and_notify_need_it_held_by_anyone() {
        let (l, c) = over(false);
        runtime_error(ready(call(&c, 1, "notify", &[])));
        acquire(&c, 1);
        let mut waiter = park(call(&c, 1, "wait", &[]));
        // The wait released the lock; session 2 takes it through the Lock object, and may
        // notify through the Condition (Python's Condition asks only whether it is held).
        assert!(lock_try_acquire(&l, 2));
        ready(call(&c, 3, "notify", &[])).unwrap();
        assert!(waiter.reply.try_recv().is_err(), "the lock is still held");
        // Released through the Lock: the waiter takes it back and answers True.
        ready(lock_call(&l, 2, "release", &[])).unwrap();
        assert_eq!(
            waiter.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
        assert!(!lock_try_acquire(&l, 2), "the waiter holds it again");
        ready(lock_call(&l, 2, "release", &[])).unwrap();
        assert!(lock_try_acquire(&l, 2));
    }

    #[test]
    fn over_an_rlock_wait_restores_a_depth_taken_through_the_rlock() {
        let (l, c) = over(true);
        ready(lock_call(&l, 1, "acquire", &[])).unwrap();
        ready(lock_call(&l, 1, "acquire", &[])).unwrap();
        let mut waiter = park(call(&c, 1, "wait", &[]));
        // Only the RLock's owner may notify.
        ready(lock_call(&l, 2, "acquire", &[])).unwrap();
        runtime_error(ready(call(&c, 3, "notify", &[])));
        ready(call(&c, 2, "notify", &[])).unwrap();
        ready(lock_call(&l, 2, "release", &[])).unwrap();
        assert_eq!(
            waiter.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
        // Depth 2 again: two releases through the RLock.
        ready(lock_call(&l, 1, "release", &[])).unwrap();
        assert!(!lock_try_acquire(&l, 2));
        ready(lock_call(&l, 1, "release", &[])).unwrap();
        assert!(lock_try_acquire(&l, 2));
    }

    #[test]
    fn each_object_counts_its_own_waiters_in_the_shared_queue() {
        let (l, c) = over(false);
        let _waiting_for_notify = acquire_and_wait(&c, 1);
        assert!(lock_try_acquire(&l, 4));
        let _by_lock = park(lock_call(&l, 2, "acquire", &[]));
        let _by_condition = park(call(&c, 3, "acquire", &[]));
        assert_eq!((l.waiting(), c.waiting()), (1, 2));
    }

    #[test]
    fn the_lock_lives_on_in_its_condition_until_both_are_gone() {
        let (l, c) = over(false);
        acquire(&c, 1);
        let mut by_lock = park(lock_call(&l, 2, "acquire", &[]));
        // The Lock object leaves the table; its waiter stays, the Condition still works.
        l.closed();
        assert!(by_lock.reply.try_recv().is_err());
        release(&c, 1).unwrap();
        assert_eq!(
            by_lock.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
        let mut by_condition = park(call(&c, 3, "acquire", &[]));
        // The last object goes: its waiters are answered NotFound.
        c.closed();
        let e = by_condition.reply.try_recv().unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[test]
    fn a_closed_condition_leaves_its_lock_and_the_lock_waiters_alone() {
        let (l, c) = over(true);
        ready(lock_call(&l, 1, "acquire", &[])).unwrap();
        let mut by_lock = park(lock_call(&l, 2, "acquire", &[]));
        c.closed();
        assert!(by_lock.reply.try_recv().is_err(), "still waiting");
        ready(lock_call(&l, 1, "release", &[])).unwrap();
        assert_eq!(
            by_lock.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
    }

    /// A wait that found the Condition in the table just before another session deleted
    /// it runs on the closed Condition. It answers `NotFound` with the lock released, as a
    /// wait parked when the Condition closes does: free, or passed to the next waiter of
    /// the `Lock` that lives on. Never held by a caller told `NotFound`, which could not
    /// release it through the Condition (a guard takes a `NotFound` wait as released).
    #[test]
    fn a_wait_on_a_closed_condition_answers_not_found_with_the_lock_released() {
        let not_found = |reply: Reply| assert_eq!(reply.unwrap_err().kind, ErrorKind::NotFound);
        for timeout in [None, Some(Value::Float(60.0))] {
            let timeout: Vec<Value> = timeout.into_iter().collect();
            // Its own lock, held at depth 2 through Python's calls: both levels go.
            let c = cond();
            acquire(&c, 1);
            acquire(&c, 1);
            c.closed();
            not_found(ready(call(&c, 1, "wait", &timeout)));
            assert!(c.lock.lock().holder.is_none(), "{}", c.describe());
            // A guard's wait.
            let c = cond();
            let t = token_of(ready(call(&c, 1, "acquire_fenced", &[])));
            c.closed();
            let params: Vec<Value> = [Value::Int(t)].into_iter().chain(timeout.clone()).collect();
            not_found(ready(call(&c, 1, "wait_fenced", &params)));
            assert!(c.lock.lock().holder.is_none(), "{}", c.describe());
            // Over a Lock or RLock that lives on: its waiter gets the lock.
            for reentrant in [false, true] {
                let (l, c) = over(reentrant);
                acquire(&c, 1);
                let mut by_lock = park(lock_call(&l, 2, "acquire", &[]));
                c.closed();
                not_found(ready(call(&c, 1, "wait", &timeout)));
                assert_eq!(
                    by_lock.reply.try_recv().unwrap().unwrap(),
                    encode::bool(true)
                );
                ready(lock_call(&l, 2, "release", &[])).unwrap();
                assert!(lock_try_acquire(&l, 3), "nobody holds it");
            }
        }
    }

    /// The Condition closes under a wait parked for a notify (answered `NotFound`, the lock
    /// released since the wait began), and under a notified wait taking the lock back
    /// (it finishes when it gets the lock, then holds it): over a `Lock` that lives on,
    /// the lock is never left held by nobody.
    #[test]
    fn closing_a_condition_under_its_waits_leaves_the_lock_usable() {
        for reentrant in [false, true] {
            // Waiting for a notify.
            let (l, c) = over(reentrant);
            let mut waiter = acquire_and_wait(&c, 1);
            assert!(lock_try_acquire(&l, 2), "the wait released the lock");
            c.closed();
            let e = waiter.reply.try_recv().unwrap().unwrap_err();
            assert_eq!(e.kind, ErrorKind::NotFound);
            ready(lock_call(&l, 2, "release", &[])).unwrap();
            assert!(lock_try_acquire(&l, 3), "free once its holder released it");

            // Notified, waiting for the lock.
            let (l, c) = over(reentrant);
            let mut waiter = acquire_and_wait(&c, 1);
            assert!(lock_try_acquire(&l, 2));
            ready(call(&c, 2, "notify", &[])).unwrap();
            c.closed();
            assert!(
                waiter.reply.try_recv().is_err(),
                "still taking the lock back"
            );
            ready(lock_call(&l, 2, "release", &[])).unwrap();
            assert_eq!(
                waiter.reply.try_recv().unwrap().unwrap(),
                encode::bool(true)
            );
            assert!(!lock_try_acquire(&l, 3), "the waiter holds it again");
            // Released through the Lock, which its session may do.
            ready(lock_call(&l, 1, "release", &[])).unwrap();
            assert!(lock_try_acquire(&l, 3));
        }
    }

    #[test]
    fn two_conditions_over_one_lock_each_count_their_own_waiters() {
        let (l, c) = over(false);
        let mut objects = TestObjects::default();
        objects.0.insert(1, l.clone());
        let c2 = TestCondition::new(args(&[Value::Int(1)]), &objects).unwrap();
        assert!(lock_try_acquire(&l, 9));
        let _a = park(call(&c, 1, "acquire", &[]));
        let _b = park(call(&c2, 2, "acquire", &[]));
        let _c = park(call(&c2, 3, "acquire", &[]));
        assert_eq!((l.waiting(), c.waiting(), c2.waiting()), (0, 1, 2));
    }

    #[test]
    fn a_condition_dropped_without_entering_the_table_gives_back_its_share() {
        let (l, c) = over(false);
        // The node could not add it (table full, or another creator of the name won).
        drop(c);
        assert!(lock_try_acquire(&l, 1));
        let mut by_lock = park(lock_call(&l, 2, "acquire", &[]));
        // The Lock is the state's last object again: its waiters are answered.
        l.closed();
        let e = by_lock.reply.try_recv().unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[test]
    fn a_condition_over_a_lock_that_left_the_table_is_refused() {
        let l = Arc::new(TestLock::new(Args::empty(), false).unwrap());
        let mut objects = TestObjects::default();
        objects.0.insert(1, l.clone());
        l.closed();
        let e = TestCondition::new(args(&[Value::Int(1)]), &objects)
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[test]
    fn a_timed_out_wait_whose_grant_never_arrived_releases_the_lock() {
        let (l, c) = over(false);
        let waiter = acquire_and_wait_timed(&c, 1);
        assert!(lock_try_acquire(&l, 2));
        // The wait times out: it waits for the lock again, which session 2 then releases.
        assert!(matches!(
            c.withdraw(waiter.waiter, WithdrawReason::Timeout),
            Withdrawal::StillWaiting
        ));
        ready(lock_call(&l, 2, "release", &[])).unwrap();
        let mut reply = waiter.reply;
        let answer = reply.try_recv().unwrap();
        assert_eq!(answer.clone().unwrap(), encode::bool(false));
        // That answer (a grant) never reached session 1: the lock goes back.
        c.undelivered(Handover::Grant, 1, answer);
        assert!(lock_try_acquire(&l, 3));
    }

    #[test]
    fn a_condition_over_anything_but_a_lock_is_refused() {
        let mut objects = TestObjects::default();
        objects.0.insert(
            1,
            Arc::new(crate::node::objects::event::Event::new(Args::empty()).unwrap()),
        );
        let kind = |params: &[Value]| {
            TestCondition::new(args(params), &objects)
                .err()
                .map(|e| e.kind)
        };
        assert_eq!(kind(&[Value::Int(1)]), Some(ErrorKind::TypeError));
        assert_eq!(kind(&[Value::Int(2)]), Some(ErrorKind::NotFound));
        assert_eq!(kind(&[Value::Int(-1)]), Some(ErrorKind::NotFound));
        assert_eq!(
            kind(&[Value::Str("lock".into())]),
            Some(ErrorKind::TypeError)
        );
        assert_eq!(
            kind(&[Value::Nil]),
            None,
            "Condition(None) has its own lock"
        );
    }
}

//! `Condition`: a reentrant lock (owned by a session) plus waiters for `notify`.
//!
//! `wait` releases the lock completely, parks until notified (or timed out), then
//! re-acquires the lock at the depth it had before returning, exactly as Python's
//! `Condition.wait`. `wait_for(predicate)` runs on the client as a loop of `wait` calls.

use parking_lot::Mutex;

use syncman_protocol::{Args, RemoteError};

use super::lock::{GrantAnswer, LockState, Want};
use super::timeout::{block_timeout, timeout_only, withdrawn_error, Wait};
use crate::node::backend::FencingTokens;
use crate::node::object::{
    CallCtx, Handover, MethodSpec, Outcome, Reply, SessionId, SharedObject, WaiterId,
    WithdrawReason, Withdrawal,
};
use crate::node::wait::WaitQueue;
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("acquire", 0, 2),
    ("release", 0, 0),
    ("__enter__", 0, 0),
    ("__exit__", 0, 3),
    ("wait", 0, 1),
    ("notify", 0, 1),
    ("notify_all", 0, 0),
];

#[derive(Default)]
struct State<T> {
    lock: LockState<T>,
    /// Waiting for a notify; carries the lock depth to restore.
    notified: WaitQueue<u32>,
}

pub struct Condition<T> {
    state: Mutex<State<T>>,
}

/// A lock waiter: `reacquire` for a wait taking its lock back (answers `result`), else a
/// plain acquire.
fn want(depth: u32, result: bool, reacquire: bool) -> Want {
    Want {
        depth,
        answer: GrantAnswer::Flag(result),
        reacquire,
    }
}

impl<T: FencingTokens> Condition<T> {
    pub fn new(args: Args) -> Result<Self, RemoteError> {
        args.finish()?;
        Ok(Condition {
            state: Mutex::new(State::default()),
        })
    }

    fn held_by(st: &State<T>, session: SessionId) -> Option<u32> {
        match st.lock.holder {
            Some((s, depth, _)) if s == session => Some(depth),
            _ => None,
        }
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        let mut st = self.state.lock();
        Ok(match method {
            "acquire" | "__enter__" => {
                let wait = block_timeout(&mut args, true)?;
                ctx.holds_state = true;
                if st.lock.try_acquire(ctx.session, true).is_some() {
                    return Ok(Outcome::Ready(Ok(encode::bool(true))));
                }
                match wait {
                    Wait::No => Outcome::Ready(Ok(encode::bool(false))),
                    Wait::Until(deadline) => {
                        st.lock
                            .waiters
                            .park(ctx, want(1, true, false), deadline, Handover::Grant)
                    }
                }
            }
            "release" | "__exit__" => {
                st.lock.release(ctx.session, true)?;
                Outcome::Ready(Ok(encode::nil()))
            }
            "wait" => {
                let wait = timeout_only(&mut args)?;
                let depth = Self::held_by(&st, ctx.session)
                    .ok_or_else(|| RemoteError::runtime_error("cannot wait on un-acquired lock"))?;
                // Refuse before giving up the lock, so a refused wait changes nothing.
                ctx.check_park()?;
                ctx.holds_state = true;
                st.lock.hand_over();
                match wait {
                    // wait(0): release, then take the lock back at once if possible.
                    Wait::No => {
                        if st.lock.holder.is_none() && st.lock.waiters.is_empty() {
                            st.lock.try_acquire(ctx.session, true);
                            if let Some((_, d, _)) = &mut st.lock.holder {
                                *d = depth;
                            }
                            Outcome::Ready(Ok(encode::bool(false)))
                        } else {
                            st.lock.waiters.park(
                                ctx,
                                want(depth, false, true),
                                None,
                                Handover::Grant,
                            )
                        }
                    }
                    Wait::Until(deadline) => {
                        st.notified.park(ctx, depth, deadline, Handover::Grant)
                    }
                }
            }
            "notify" | "notify_all" => {
                if Self::held_by(&st, ctx.session).is_none() {
                    return Err(RemoteError::runtime_error(
                        "cannot notify on un-acquired lock",
                    ));
                }
                let n = if method == "notify" {
                    match args.opt_value()? {
                        None => 1,
                        Some(v) => v
                            .as_int()
                            .ok_or_else(|| RemoteError::type_error("n must be an integer"))?,
                    }
                } else {
                    i128::MAX
                };
                let mut moved = 0;
                while moved < n {
                    let Some(w) = st.notified.pop_front() else {
                        break;
                    };
                    // Notified: now it waits for the lock, and will return True.
                    st.lock
                        .waiters
                        .push_back(w.map(|depth| want(depth, true, true)));
                    moved += 1;
                }
                Outcome::Ready(Ok(encode::nil()))
            }
            _ => return Err(crate::node::object::no_such_method("Condition", method)),
        })
    }
}

impl<T: FencingTokens> SharedObject for Condition<T> {
    fn typeid(&self) -> &str {
        "Condition"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, args: Args, ctx: &mut CallCtx) -> Outcome {
        self.dispatch(method, args, ctx)
            .unwrap_or_else(|e| Outcome::Ready(Err(e)))
    }

    fn withdraw(&self, waiter: WaiterId, why: WithdrawReason) -> Withdrawal {
        let mut st = self.state.lock();
        if why == WithdrawReason::Timeout {
            // Timed out before a notify: like Python, re-acquire the lock, then return False.
            if let Some(w) = st.notified.remove(waiter) {
                st.lock
                    .waiters
                    .push_back(w.map(|depth| want(depth, false, true)));
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
            return match st.lock.waiters.get(waiter).map(|w| w.want.reacquire) {
                Some(true) => Withdrawal::StillWaiting,
                Some(false) => {
                    st.lock.waiters.remove(waiter);
                    Withdrawal::Answer(Ok(encode::bool(false)))
                }
                None => Withdrawal::AlreadyAnswered,
            };
        }
        if st.notified.remove(waiter).is_some() || st.lock.waiters.remove(waiter).is_some() {
            return Withdrawal::Answer(Err(withdrawn_error(why)));
        }
        Withdrawal::AlreadyAnswered
    }

    fn undelivered(&self, handover: Handover, session: SessionId, reply: Reply) {
        // A lock grant (acquire, or a wait's re-acquire) nobody received: release it.
        if handover == Handover::Grant && reply.is_ok() {
            let mut st = self.state.lock();
            if Self::held_by(&st, session).is_some() {
                st.lock.hand_over();
            }
        }
    }

    fn session_ended(&self, session: SessionId) {
        let mut st = self.state.lock();
        st.notified.remove_session(session);
        st.lock.session_ended(session);
    }

    fn closed(&self) {
        let mut st = self.state.lock();
        st.notified.close_all();
        st.lock.waiters.close_all();
    }

    fn describe(&self) -> String {
        let st = self.state.lock();
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
}

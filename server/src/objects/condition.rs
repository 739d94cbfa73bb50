//! `Condition`: a reentrant lock (owned by a session) plus waiters for `notify`.
//!
//! `wait` releases the lock completely, parks until notified (or timed out), then
//! re-acquires the lock at the depth it had before returning, exactly as Python's
//! `Condition.wait`. `wait_for(predicate)` runs on the client as a loop of `wait` calls.

use std::sync::Mutex;

use syncman_protocol::{Args, RemoteError};

use super::blocking::{block_timeout, timeout_only, withdrawn_error, Wait};
use super::lock;
use super::lock::{LockState, Want};
use crate::encode;
use crate::object::{
    check_call, CallCtx, MethodSpec, Outcome, Reply, SessionId, SharedObject, WaiterId, Withdraw,
    Withdrawn,
};
use crate::waiter::WaitQueue;

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
struct State {
    lock: LockState,
    /// Waiting for a notify; carries the lock depth to restore.
    notified: WaitQueue<u32>,
}

pub struct Condition {
    state: Mutex<State>,
}

/// A lock waiter: `reacquire` for a wait taking its lock back (answers `result`), else a
/// plain acquire.
fn want(depth: u32, result: bool, reacquire: bool) -> Want {
    Want {
        depth,
        answer: 0,
        result,
        reacquire,
    }
}

impl Condition {
    pub fn new(args: Args) -> Result<Condition, RemoteError> {
        args.finish()?;
        Ok(Condition {
            state: Mutex::new(State::default()),
        })
    }

    fn held_by(st: &State, session: SessionId) -> Option<u32> {
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
        let mut st = lock(&self.state);
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
                        ctx.park(&mut st.lock.waiters, want(1, true, false), deadline, 0)
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
                            ctx.park(&mut st.lock.waiters, want(depth, false, true), None, 0)
                        }
                    }
                    Wait::Until(deadline) => ctx.park(&mut st.notified, depth, deadline, 0),
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
            _ => return Err(crate::object::no_such_method("Condition", method)),
        })
    }
}

impl SharedObject for Condition {
    fn typeid(&self) -> &str {
        "Condition"
    }

    fn call(&self, method: &str, args: Args, ctx: &mut CallCtx) -> Outcome {
        check_call("Condition", METHODS, method, &args)
            .and_then(|()| self.dispatch(method, args, ctx))
            .into()
    }

    fn withdraw(&self, waiter: WaiterId, why: Withdraw) -> Withdrawn {
        let mut st = lock(&self.state);
        if why == Withdraw::Timeout {
            // Timed out before a notify: like Python, re-acquire the lock, then return False.
            if let Some(w) = st.notified.remove(waiter) {
                st.lock
                    .waiters
                    .push_back(w.map(|depth| want(depth, false, true)));
                if st.lock.holder.is_none() {
                    st.lock.hand_over();
                }
                return if st.lock.waiters.contains(waiter) {
                    Withdrawn::StillWaiting
                } else {
                    Withdrawn::AlreadyAnswered
                };
            }
            // Waiting for the lock itself: an acquire's timeout applies; a wait that is
            // re-acquiring keeps waiting for the lock.
            return match st.lock.waiters.get(waiter).map(|w| w.want.reacquire) {
                Some(true) => Withdrawn::StillWaiting,
                Some(false) => {
                    st.lock.waiters.remove(waiter);
                    Withdrawn::Answer(Ok(encode::bool(false)))
                }
                None => Withdrawn::AlreadyAnswered,
            };
        }
        if st.notified.remove(waiter).is_some() || st.lock.waiters.remove(waiter).is_some() {
            return Withdrawn::Answer(Err(withdrawn_error(why)));
        }
        Withdrawn::AlreadyAnswered
    }

    fn undelivered(&self, _purpose: u8, session: SessionId, reply: Reply) {
        // A lock grant (acquire, or a wait's re-acquire) nobody received: release it.
        if reply.is_ok() {
            let mut st = lock(&self.state);
            if Self::held_by(&st, session).is_some() {
                st.lock.hand_over();
            }
        }
    }

    fn session_ended(&self, session: SessionId) {
        let mut st = lock(&self.state);
        st.notified.remove_session(session);
        st.lock.session_ended(session);
    }

    fn closed(&self) {
        let mut st = lock(&self.state);
        st.notified.close_all();
        st.lock.waiters.close_all();
    }

    fn describe(&self) -> String {
        let st = lock(&self.state);
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

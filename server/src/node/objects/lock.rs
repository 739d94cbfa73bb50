//! `Lock` and `RLock`, tied to sessions.
//!
//! A grant carries a fencing token that increases with every grant, so a resource guarded
//! by the lock can refuse a stale holder; where tokens come from is the backend's choice
//! ([`FencingTokens`]). The holder is the session (connection) that acquired it; when a
//! session ends, its holds are released (unless the node keeps CPython's behaviour). `Lock`
//! may be released by any session, as Python's `Lock` may be released by any thread;
//! `RLock` only by its owner.

use bytes::Bytes;
use parking_lot::Mutex;
use syncman_protocol::value::encode;
use syncman_protocol::{Args, RemoteError, Value};

use super::timeout::{block_timeout, withdrawn_reply, Wait};
use crate::node::backend::FencingTokens;
use crate::node::object::{
    no_such_method, CallCtx, Handover, MethodSpec, Outcome, Reply, SessionId, SharedObject,
    WaiterId, WithdrawReason, Withdrawal,
};
use crate::node::wait::WaitQueue;

const METHODS: &[MethodSpec] = &[
    ("acquire", 0, 2),
    ("acquire_fenced", 0, 2),
    ("release", 0, 0),
    ("release_fenced", 1, 1),
    ("locked", 0, 0),
    ("__enter__", 0, 0),
    ("__exit__", 0, 3),
];

/// What a grant answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantAnswer {
    /// The fencing token (native clients' `acquire_fenced`).
    Token,
    /// A boolean: `True` for Python's `acquire`; a Condition's `wait` returns whether it
    /// was notified (`False` when its timeout passed).
    Flag(bool),
}

impl GrantAnswer {
    fn encode(self, token: u64) -> Bytes {
        match self {
            GrantAnswer::Token => encode::int(token as i128),
            GrantAnswer::Flag(b) => encode::bool(b),
        }
    }

    /// The answer of an acquire that did not get the lock.
    fn refused(self) -> Bytes {
        match self {
            GrantAnswer::Token => encode::nil(),
            GrantAnswer::Flag(_) => encode::bool(false),
        }
    }
}

/// The lock's state, reusable by `Condition`.
#[derive(Default)]
pub struct LockState<T> {
    /// Holder session, recursion depth, fencing token of the current grant.
    pub holder: Option<(SessionId, u32, u64)>,
    pub waiters: WaitQueue<Want>,
    tokens: T,
}

/// What a parked acquire waits for.
#[derive(Clone, Copy)]
pub struct Want {
    /// Recursion depth to restore (1 for a plain acquire; a Condition's saved depth).
    pub depth: u32,
    pub answer: GrantAnswer,
    /// A Condition's wait taking its lock back (its own timeout no longer applies).
    pub reacquire: bool,
}

impl<T: FencingTokens> LockState<T> {
    fn grant(&mut self, session: SessionId, depth: u32) -> u64 {
        let token = self.tokens.next_token();
        self.holder = Some((session, depth, token));
        token
    }

    /// Tries to take the lock now. `reentrant` lets the holder take it again.
    pub fn try_acquire(&mut self, session: SessionId, reentrant: bool) -> Option<u64> {
        match &mut self.holder {
            None if self.waiters.is_empty() => Some(self.grant(session, 1)),
            Some((holder, depth, token)) if reentrant && *holder == session => {
                *depth = depth.saturating_add(1);
                Some(*token)
            }
            _ => None,
        }
    }

    /// Passes the lock to the first waiter still there, or leaves it free.
    pub fn hand_over(&mut self) {
        self.holder = None;
        while let Some(w) = self.waiters.pop_front() {
            let (session, want) = (w.session, w.want);
            let token = self.grant(session, want.depth);
            if w.answer(Ok(want.answer.encode(token))).is_ok() {
                return;
            }
            self.holder = None;
        }
    }

    /// Releases one level (or all, for a departed session). Errors as Python's.
    pub fn release(&mut self, session: SessionId, owner_checked: bool) -> Result<(), RemoteError> {
        match &mut self.holder {
            None => Err(RemoteError::runtime_error(if owner_checked {
                "cannot release un-acquired lock"
            } else {
                "release unlocked lock"
            })),
            Some((holder, _, _)) if owner_checked && *holder != session => Err(
                RemoteError::runtime_error("cannot release un-acquired lock"),
            ),
            Some((_, depth, _)) => {
                *depth -= 1;
                if *depth == 0 {
                    self.hand_over();
                }
                Ok(())
            }
        }
    }

    /// Drops every hold and waiter of a session.
    pub fn session_ended(&mut self, session: SessionId) {
        self.waiters.remove_session(session);
        if matches!(self.holder, Some((s, _, _)) if s == session) {
            self.hand_over();
        }
    }
}

pub struct Lock<T> {
    reentrant: bool,
    state: Mutex<LockState<T>>,
}

impl<T: FencingTokens> Lock<T> {
    pub fn new(args: Args, reentrant: bool) -> Result<Self, RemoteError> {
        args.finish()?;
        Ok(Lock {
            reentrant,
            state: Mutex::new(LockState::default()),
        })
    }

    fn typeid_str(&self) -> &'static str {
        if self.reentrant {
            "RLock"
        } else {
            "Lock"
        }
    }

    fn acquire(&self, wait: Wait, answer: GrantAnswer, ctx: &mut CallCtx) -> Outcome {
        let mut st = self.state.lock();
        ctx.holds_state = true;
        if let Some(token) = st.try_acquire(ctx.session, self.reentrant) {
            return Outcome::Ready(Ok(answer.encode(token)));
        }
        let want = Want {
            depth: 1,
            answer,
            reacquire: false,
        };
        match wait {
            Wait::No => Outcome::Ready(Ok(answer.refused())),
            Wait::Until(deadline) => st.waiters.park(ctx, want, deadline, Handover::Grant),
        }
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        Ok(match method {
            "acquire" | "__enter__" => {
                let wait = block_timeout(&mut args, true)?;
                self.acquire(wait, GrantAnswer::Flag(true), ctx)
            }
            "acquire_fenced" => {
                let wait = block_timeout(&mut args, true)?;
                self.acquire(wait, GrantAnswer::Token, ctx)
            }
            "release" | "__exit__" => {
                self.state.lock().release(ctx.session, self.reentrant)?;
                Outcome::Ready(Ok(encode::nil()))
            }
            "release_fenced" => {
                let token = args.int("token")?;
                let mut st = self.state.lock();
                match st.holder {
                    Some((_, _, current)) if current as i128 == token => {
                        st.release(ctx.session, self.reentrant)?;
                        Outcome::Ready(Ok(encode::nil()))
                    }
                    _ => {
                        return Err(RemoteError::runtime_error(format!(
                            "lock is not held under fencing token {token} (released already, or re-granted)"
                        )))
                    }
                }
            }
            "locked" => Outcome::Ready(Ok(encode::bool(self.state.lock().holder.is_some()))),
            _ => return Err(no_such_method(self.typeid_str(), method)),
        })
    }
}

impl<T: FencingTokens> SharedObject for Lock<T> {
    fn typeid(&self) -> &str {
        self.typeid_str()
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, args: Args, ctx: &mut CallCtx) -> Outcome {
        self.dispatch(method, args, ctx)
            .unwrap_or_else(|e| Outcome::Ready(Err(e)))
    }

    fn withdraw(&self, waiter: WaiterId, why: WithdrawReason) -> Withdrawal {
        match self.state.lock().waiters.remove(waiter) {
            Some(w) => Withdrawal::Answer(withdrawn_reply(why, || Ok(w.want.answer.refused()))),
            None => Withdrawal::AlreadyAnswered,
        }
    }

    fn undelivered(&self, handover: Handover, session: SessionId, reply: Reply) {
        if handover != Handover::Grant {
            return;
        }
        // A grant nobody received: release it if it is still that grant. A token answer
        // names the grant exactly; a `True` answer is matched by its session.
        let granted = reply
            .ok()
            .and_then(|b| syncman_protocol::value::decode(&b).ok());
        let mut st = self.state.lock();
        let still_that_grant = match (granted, st.holder) {
            (Some(Value::Int(token)), Some((_, _, current))) => token == current as i128,
            (Some(Value::Bool(true)), Some((holder, _, _))) => holder == session,
            _ => false,
        };
        if still_that_grant {
            st.hand_over();
        }
    }

    fn session_ended(&self, session: SessionId) {
        self.state.lock().session_ended(session);
    }

    fn closed(&self) {
        self.state.lock().waiters.close_all();
    }

    fn waiting(&self) -> usize {
        self.state.lock().waiters.len()
    }

    fn describe(&self) -> String {
        let st = self.state.lock();
        match st.holder {
            Some((s, depth, token)) => format!(
                "{} held by session {s} (depth {depth}, token {token}), {} waiting",
                self.typeid_str(),
                st.waiters.len()
            ),
            None => format!("{} free", self.typeid_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::memory::TokenCounter;
    use crate::node::objects::testing::park;

    type TestLock = Lock<TokenCounter>;

    fn token(o: Outcome) -> Bytes {
        match o {
            Outcome::Ready(r) => r.unwrap(),
            Outcome::Park(_) => panic!("expected a grant"),
        }
    }

    #[test]
    fn a_departed_holder_hands_over_with_a_larger_token() {
        let l = TestLock::new(Args::empty(), false).unwrap();
        let (mut a, mut b) = (CallCtx::new(1), CallCtx::new(2));
        assert_eq!(
            token(l.call("acquire_fenced", Args::empty(), &mut a)),
            encode::int(1)
        );
        let mut p = park(l.call("acquire_fenced", Args::empty(), &mut b));
        l.session_ended(1);
        assert_eq!(p.reply.try_recv().unwrap().unwrap(), encode::int(2));
    }

    #[test]
    fn waiters_are_granted_in_arrival_order() {
        let l = TestLock::new(Args::empty(), false).unwrap();
        let mut holder = CallCtx::new(1);
        token(l.call("acquire_fenced", Args::empty(), &mut holder));
        let mut parked: Vec<_> = (2..6)
            .map(|s| park(l.call("acquire_fenced", Args::empty(), &mut CallCtx::new(s))))
            .collect();
        // Each release hands the lock to the longest waiter, with the next token.
        token(l.call("release", Args::empty(), &mut holder));
        for (i, p) in parked.iter_mut().enumerate() {
            let granted = p.reply.try_recv().unwrap().unwrap();
            assert_eq!(granted, encode::int(i as i128 + 2));
            token(l.call("release", Args::empty(), &mut CallCtx::new(i as u64 + 2)));
        }
    }

    #[test]
    fn an_undelivered_grant_is_released() {
        let l = TestLock::new(Args::empty(), false).unwrap();
        let (mut a, mut b) = (CallCtx::new(1), CallCtx::new(2));
        token(l.call("acquire_fenced", Args::empty(), &mut a));
        let mut p = park(l.call("acquire_fenced", Args::empty(), &mut b));
        token(l.call("release", Args::empty(), &mut a));
        // Granted to session 2, whose caller gave up before the answer left.
        assert!(matches!(
            l.withdraw(p.waiter, WithdrawReason::Cancelled),
            Withdrawal::AlreadyAnswered
        ));
        l.undelivered(p.handover, 2, p.reply.try_recv().unwrap());
        assert_eq!(
            token(l.call("locked", Args::empty(), &mut a)),
            encode::bool(false)
        );
    }

    #[test]
    fn rlock_is_owned_and_reentrant() {
        let l = TestLock::new(Args::empty(), true).unwrap();
        let (mut a, mut b) = (CallCtx::new(1), CallCtx::new(2));
        token(l.call("acquire", Args::empty(), &mut a));
        token(l.call("acquire", Args::empty(), &mut a));
        match l.call("release", Args::empty(), &mut b) {
            Outcome::Ready(Err(e)) => assert_eq!(e.kind, syncman_protocol::ErrorKind::RuntimeError),
            _ => panic!("a non-owner released an RLock"),
        }
        token(l.call("release", Args::empty(), &mut a));
        assert_eq!(
            token(l.call("locked", Args::empty(), &mut b)),
            encode::bool(true)
        );
        token(l.call("release", Args::empty(), &mut a));
        assert_eq!(
            token(l.call("locked", Args::empty(), &mut b)),
            encode::bool(false)
        );
    }
}

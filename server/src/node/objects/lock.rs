//! `Lock` and `RLock`, tied to sessions.
//!
//! A grant carries a fencing token that increases with every grant, so a resource guarded
//! by the lock can refuse a stale holder; where tokens come from is the backend's choice
//! ([`FencingTokens`]). The holder is the session (connection) that acquired it, or the
//! guard's grant. `Lock` may be released by any session, as Python's `Lock` may be released
//! by any thread; `RLock` only by its owner. When a session ends, the holds only it could
//! release go back (a guard's grant, an `RLock`'s hold); a plain `Lock` taken by Python's
//! `acquire` stays held, as in CPython, since another process may be about to release it.
//! (`--keep-locks-on-disconnect` keeps every hold.)
//!
//! A `Condition(lock)` shares the lock's state ([`SharedLockState`]): a hold taken through
//! either object excludes the other, as Python's `threading.Condition(lock)`.

use std::any::Any;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use syncman_protocol::value::encode;
use syncman_protocol::{Args, RemoteError, Value};

use super::timeout::{lock_wait, withdrawn_reply, Wait};
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
    ("reenter_fenced", 1, 1),
    ("locked", 0, 0),
    ("__enter__", 0, 0),
    ("__exit__", 0, 3),
];

/// Who holds a lock.
///
/// Python's calls (`acquire`, `release`, `__enter__`, a Condition's `wait` and `notify`)
/// are owned by the connection: CPython gives each client thread its own connection, so
/// the connection is the thread. The Rust client's guards (`acquire_fenced`, ...) are owned
/// by their grant: tasks that share one connection exclude each other, and re-entry goes
/// through the guard (`reenter_fenced(token)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Session,
    Grant,
}

/// The current hold.
#[derive(Debug, Clone, Copy)]
pub struct Holder {
    pub session: SessionId,
    pub owner: Owner,
    /// Recursion depth (an `RLock` or a Condition taken again by its owner).
    pub depth: u32,
    /// The depth the grant itself gave (1, or a Condition wait's saved depth): what an
    /// undelivered grant takes back, leaving re-entries made since.
    pub granted: u32,
    /// The grant's fencing token; a guard's identity.
    pub token: u64,
}

/// What a grant answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantAnswer {
    /// The fencing token (native clients' `acquire_fenced`).
    Token,
    /// A boolean: `True` for Python's `acquire`; a Condition's `wait` returns whether it
    /// was notified (`False` when its timeout passed).
    Flag(bool),
    /// A Condition's `wait_fenced`: `[notified, token]`, the new grant's token.
    FlagAndToken(bool),
}

impl GrantAnswer {
    fn encode(self, token: u64) -> Bytes {
        match self {
            GrantAnswer::Token => encode::int(token as i128),
            GrantAnswer::Flag(b) => encode::bool(b),
            GrantAnswer::FlagAndToken(b) => {
                encode::array([encode::bool(b), encode::int(token as i128)].iter())
            }
        }
    }

    /// The answer of an acquire that did not get the lock.
    fn refused(self) -> Bytes {
        match self {
            GrantAnswer::Token => encode::nil(),
            GrantAnswer::Flag(_) | GrantAnswer::FlagAndToken(_) => encode::bool(false),
        }
    }

    /// Who a grant answered this way belongs to.
    pub fn owner(self) -> Owner {
        match self {
            GrantAnswer::Flag(_) => Owner::Session,
            GrantAnswer::Token | GrantAnswer::FlagAndToken(_) => Owner::Grant,
        }
    }
}

/// The lock's state, reusable by `Condition`.
#[derive(Default)]
pub struct LockState<T> {
    pub holder: Option<Holder>,
    pub waiters: WaitQueue<Want>,
    tokens: T,
    /// The objects using this state: a `Lock` or `RLock`, and each `Condition` made over
    /// it. The last to leave the table answers the waiters still parked.
    objects: u32,
}

/// A lock's state as its `Lock` and the Conditions made over it share it.
pub type SharedLockState<T> = Arc<Mutex<LockState<T>>>;

/// One object's use of a lock's state, counted in the state ([`LockState::attach`]) and
/// given up exactly once: when the object leaves the table ([`detach`](Self::detach), from
/// `closed`), or else when it is dropped (an object a constructor made that never entered
/// the table: the table was full, or another creator of the same name won).
pub struct Attached<T: FencingTokens> {
    state: SharedLockState<T>,
    detached: AtomicBool,
}

impl<T: FencingTokens> Attached<T> {
    /// The state of a new lock, used by one object.
    pub fn new_lock() -> Self {
        let state = Arc::new(Mutex::new(LockState {
            objects: 1,
            ..LockState::default()
        }));
        Attached {
            state,
            detached: AtomicBool::new(false),
        }
    }

    /// One more object uses `state`; `NotFound` if its last object has already left.
    fn share(state: &SharedLockState<T>) -> Result<Self, RemoteError> {
        let mut st = state.lock();
        if st.objects == 0 {
            return Err(RemoteError::not_found("the lock was deleted"));
        }
        st.objects += 1;
        Ok(Attached {
            state: state.clone(),
            detached: AtomicBool::new(false),
        })
    }

    /// This object no longer uses the state (see [`LockState::detach`]). Takes the state's
    /// lock: not to be called with it held.
    pub fn detach(&self) {
        if !self.detached.swap(true, Ordering::AcqRel) {
            self.state.lock().detach();
        }
    }
}

impl<T: FencingTokens> Deref for Attached<T> {
    type Target = Mutex<LockState<T>>;

    fn deref(&self) -> &Self::Target {
        &self.state
    }
}

impl<T: FencingTokens> Drop for Attached<T> {
    fn drop(&mut self) {
        self.detach();
    }
}

/// What a parked acquire waits for.
#[derive(Clone, Copy)]
pub struct Want {
    /// Recursion depth to restore (1 for a plain acquire; a Condition's saved depth).
    pub depth: u32,
    pub answer: GrantAnswer,
    /// A Condition's wait taking its lock back (its own timeout no longer applies).
    pub reacquire: bool,
    /// The object the call came through ([`Via`]): each object counts its own waiters in
    /// a shared queue.
    pub via: Via,
}

/// Which object of those sharing a lock's state a waiter came through: [`Via::LOCK`] for
/// the `Lock`/`RLock` object, a number of its own for each Condition.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Via(u64);

impl Via {
    pub const LOCK: Via = Via(0);

    /// A number no other Condition has.
    pub fn new_condition() -> Via {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Via(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl<T: FencingTokens> LockState<T> {
    /// An object using this state left the table. The last one answers every waiter
    /// `NotFound`; until then the lock lives on in the others, waiters and all, as a
    /// Python `Condition` keeps its lock alive.
    pub fn detach(&mut self) {
        self.objects = self.objects.saturating_sub(1);
        if self.objects == 0 {
            self.waiters.close_all();
        }
    }

    /// Waiters that came through the object `via`.
    pub fn waiting_via(&self, via: Via) -> usize {
        self.waiters.iter().filter(|w| w.want.via == via).count()
    }

    fn grant(&mut self, session: SessionId, owner: Owner, depth: u32) -> u64 {
        let token = self.tokens.next_token();
        self.holder = Some(Holder {
            session,
            owner,
            depth,
            granted: depth,
            token,
        });
        token
    }

    /// Tries to take the lock now. `reentrant` lets a connection that holds it through
    /// Python's calls take it again; a grant-owned hold is re-entered only through its
    /// token ([`reenter`](Self::reenter)).
    pub fn try_acquire(
        &mut self,
        session: SessionId,
        owner: Owner,
        reentrant: bool,
    ) -> Option<u64> {
        match &mut self.holder {
            None if self.waiters.is_empty() => Some(self.grant(session, owner, 1)),
            Some(h)
                if reentrant
                    && owner == Owner::Session
                    && h.owner == Owner::Session
                    && h.session == session =>
            {
                h.depth = h.depth.saturating_add(1);
                Some(h.token)
            }
            _ => None,
        }
    }

    /// Takes a re-entrant lock again through the grant `token` (a guard's re-entry).
    pub fn reenter(&mut self, token: i128) -> Result<u64, RemoteError> {
        match &mut self.holder {
            Some(h) if h.token as i128 == token => {
                h.depth = h.depth.saturating_add(1);
                Ok(h.token)
            }
            _ => Err(not_held_under(token)),
        }
    }

    /// The depth of the hold if `session` holds the lock through Python's calls.
    pub fn held_by_session(&self, session: SessionId) -> Option<u32> {
        match self.holder {
            Some(h) if h.owner == Owner::Session && h.session == session => Some(h.depth),
            _ => None,
        }
    }

    /// The depth of the hold if it is the grant `token`.
    pub fn held_under(&self, token: i128) -> Option<u32> {
        match self.holder {
            Some(h) if h.token as i128 == token => Some(h.depth),
            _ => None,
        }
    }

    /// Passes the lock to the first waiter still there, or leaves it free.
    pub fn hand_over(&mut self) {
        self.holder = None;
        while let Some(w) = self.waiters.pop_front() {
            let (session, want) = (w.session, w.want);
            let token = self.grant(session, want.answer.owner(), want.depth);
            if w.answer(Ok(want.answer.encode(token))).is_ok() {
                return;
            }
            self.holder = None;
        }
    }

    /// Python's release: one level. `owner_checked` (an `RLock`, a Condition) lets only
    /// the connection that holds it through Python's calls release it; a plain `Lock` may
    /// be released by anyone, as in Python.
    pub fn release(&mut self, session: SessionId, owner_checked: bool) -> Result<(), RemoteError> {
        let Some(h) = &mut self.holder else {
            return Err(RemoteError::runtime_error(if owner_checked {
                "cannot release un-acquired lock"
            } else {
                "release unlocked lock"
            }));
        };
        if owner_checked && (h.owner != Owner::Session || h.session != session) {
            return Err(RemoteError::runtime_error(
                "cannot release un-acquired lock",
            ));
        }
        self.release_one_level();
        Ok(())
    }

    /// A guard's release: one level of the hold `token`.
    pub fn release_fenced(&mut self, token: i128) -> Result<(), RemoteError> {
        if self.held_under(token).is_none() {
            return Err(not_held_under(token));
        }
        self.release_one_level();
        Ok(())
    }

    fn release_one_level(&mut self) {
        if let Some(h) = &mut self.holder {
            h.depth -= 1;
            if h.depth == 0 {
                self.hand_over();
            }
        }
    }

    /// Sets the depth of the current hold (a Condition's wait restoring its depth).
    pub fn set_depth(&mut self, depth: u32) {
        if let Some(h) = &mut self.holder {
            h.depth = depth;
        }
    }

    /// Drops a session's waiters, and its hold unless anyone may release that hold.
    ///
    /// `anyone_may_release` is true for a plain `Lock`: a hold taken by Python's `acquire`
    /// (owned by the connection, no guard) may be released by another process or thread,
    /// as CPython allows, so it outlives its session (a worker that acquires and exits
    /// while the parent releases is a CPython pattern); so does a Python hold on a
    /// Condition made over a plain `Lock`. A guard's grant, and an `RLock`'s or a Condition's
    /// own lock's hold, which only its owner could release, go back.
    pub fn session_ended(&mut self, session: SessionId, anyone_may_release: bool) {
        self.waiters.remove_session(session);
        if let Some(h) = self.holder {
            let kept = anyone_may_release && h.owner == Owner::Session;
            if h.session == session && !kept {
                self.hand_over();
            }
        }
    }

    /// An answer that granted the lock never reached its caller: release that grant if it
    /// is still the one holding. A token names the grant exactly; a flag answer (Python's
    /// calls) is matched by its connection.
    pub fn undelivered(&mut self, session: SessionId, reply: Reply) {
        let granted = reply
            .ok()
            .and_then(|b| syncman_protocol::value::decode(&b).ok());
        let token = match &granted {
            Some(Value::Int(token)) => Some(*token),
            Some(Value::Array(items)) => match items.get(1) {
                Some(Value::Int(token)) => Some(*token),
                _ => None,
            },
            _ => None,
        };
        match token {
            // Nobody could re-enter through a token its caller never received.
            Some(token) if self.held_under(token).is_some() => self.hand_over(),
            Some(_) => {}
            // `True` (an acquire, a notified wait) or `False` (a wait that timed out, then
            // took the lock back): either way a grant, whose depth goes; the connection
            // may have re-entered meanwhile, and keeps those levels.
            None if matches!(granted, Some(Value::Bool(_)))
                && self.held_by_session(session).is_some() =>
            {
                if let Some(h) = &mut self.holder {
                    h.depth = h.depth.saturating_sub(h.granted);
                    if h.depth == 0 {
                        self.hand_over();
                    }
                }
            }
            None => {}
        }
    }
}

fn not_held_under(token: i128) -> RemoteError {
    RemoteError::runtime_error(format!(
        "lock is not held under fencing token {token} (released already, or re-granted)"
    ))
}

pub struct Lock<T: FencingTokens> {
    reentrant: bool,
    state: Attached<T>,
}

impl<T: FencingTokens> Lock<T> {
    pub fn new(args: Args<'_>, reentrant: bool) -> Result<Self, RemoteError> {
        args.finish()?;
        Ok(Lock {
            reentrant,
            state: Attached::new_lock(),
        })
    }

    /// The lock's state for a `Condition(lock)`, and whether it is re-entrant; `NotFound`
    /// if the lock has left the table meanwhile.
    pub fn share(&self) -> Result<(Attached<T>, bool), RemoteError> {
        Ok((Attached::share(&self.state.state)?, self.reentrant))
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
        if let Some(token) = st.try_acquire(ctx.session, answer.owner(), self.reentrant) {
            return Outcome::Ready(Ok(answer.encode(token)));
        }
        let want = Want {
            depth: 1,
            answer,
            reacquire: false,
            via: Via::LOCK,
        };
        match wait {
            Wait::No => Outcome::Ready(Ok(answer.refused())),
            Wait::Until(deadline) => st.waiters.park(ctx, want, deadline, Handover::Grant),
        }
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args<'_>,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        Ok(match method {
            "acquire" | "__enter__" => {
                let wait = lock_wait(&mut args)?;
                self.acquire(wait, GrantAnswer::Flag(true), ctx)
            }
            "acquire_fenced" => {
                let wait = lock_wait(&mut args)?;
                self.acquire(wait, GrantAnswer::Token, ctx)
            }
            "reenter_fenced" => {
                let token = args.int("token")?;
                if !self.reentrant {
                    return Err(RemoteError::runtime_error(
                        "a Lock is not re-entrant (use an RLock)",
                    ));
                }
                let token = self.state.lock().reenter(token)?;
                Outcome::Ready(Ok(encode::int(token as i128)))
            }
            "release" | "__exit__" => {
                self.state.lock().release(ctx.session, self.reentrant)?;
                Outcome::Ready(Ok(encode::nil()))
            }
            "release_fenced" => {
                let token = args.int("token")?;
                self.state.lock().release_fenced(token)?;
                Outcome::Ready(Ok(encode::nil()))
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

    fn call(&self, method: &str, args: Args<'_>, ctx: &mut CallCtx) -> Outcome {
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
        if handover == Handover::Grant {
            self.state.lock().undelivered(session, reply);
        }
    }

    fn session_ended(&self, session: SessionId) {
        self.state.lock().session_ended(session, !self.reentrant);
    }

    fn closed(&self) {
        self.state.detach();
    }

    fn waiting(&self) -> usize {
        self.state.lock().waiting_via(Via::LOCK)
    }

    fn describe(&self) -> String {
        let st = self.state.lock();
        match st.holder {
            Some(h) => format!(
                "{} held by session {} (depth {}, token {}), {} waiting",
                self.typeid_str(),
                h.session,
                h.depth,
                h.token,
                st.waiters.len()
            ),
            None => format!("{} free", self.typeid_str()),
        }
    }

    fn shareable_lock(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::memory::TokenCounter;
    use crate::node::objects::testing::{args, park, ready};

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
    fn a_plain_locks_python_hold_outlives_its_session_and_an_rlocks_does_not() {
        // CPython's test_lock: a worker acquires and exits, the parent releases.
        let l = TestLock::new(Args::empty(), false).unwrap();
        let (mut worker, mut parent) = (CallCtx::new(1), CallCtx::new(2));
        ready(l.call("acquire", Args::empty(), &mut worker)).unwrap();
        l.session_ended(1);
        assert_eq!(
            ready(l.call("locked", Args::empty(), &mut parent)).unwrap(),
            encode::bool(true)
        );
        ready(l.call("release", Args::empty(), &mut parent)).unwrap();
        // A guard's grant goes back.
        token(l.call("acquire_fenced", Args::empty(), &mut worker));
        l.session_ended(1);
        assert_eq!(
            ready(l.call("locked", Args::empty(), &mut parent)).unwrap(),
            encode::bool(false)
        );
        // So does an RLock's hold: nobody else could release it.
        let r = TestLock::new(Args::empty(), true).unwrap();
        ready(r.call("acquire", Args::empty(), &mut worker)).unwrap();
        r.session_ended(1);
        assert_eq!(
            ready(r.call("locked", Args::empty(), &mut parent)).unwrap(),
            encode::bool(false)
        );
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

    /// An RLock granted to a Python-style acquire whose caller gave up, re-entered by
    /// the same connection before the answer came back: taking the grant back leaves the
    /// re-entry's level, so no other session gets the lock meanwhile.
    #[test]
    fn an_undelivered_flag_grant_leaves_a_reentry_held() {
        let l = TestLock::new(Args::empty(), true).unwrap();
        let (mut a, mut b) = (CallCtx::new(1), CallCtx::new(2));
        token(l.call("acquire", Args::empty(), &mut b));
        let mut first = park(l.call("acquire", Args::empty(), &mut a));
        // Granted to session 1's first call; the answer is on its way.
        token(l.call("release", Args::empty(), &mut b));
        // A second call of session 1 re-enters: depth 2.
        token(l.call("acquire", Args::empty(), &mut a));
        assert!(matches!(
            l.withdraw(first.waiter, WithdrawReason::Cancelled),
            Withdrawal::AlreadyAnswered
        ));
        l.undelivered(first.handover, 1, first.reply.try_recv().unwrap());
        assert_eq!(
            token(l.call("acquire", args(&[Value::Bool(false)]), &mut b)),
            encode::bool(false),
            "session 2 got the lock while session 1's second call holds it"
        );
        // That level is session 1's to release; then the lock is free.
        token(l.call("release", Args::empty(), &mut a));
        assert_eq!(
            token(l.call("locked", Args::empty(), &mut b)),
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

    #[test]
    fn guards_of_one_connection_exclude_each_other_and_reenter_through_their_token() {
        let l = TestLock::new(Args::empty(), true).unwrap();
        let mut same = CallCtx::new(1);
        let first = token(l.call("acquire_fenced", Args::empty(), &mut same));
        // A second caller on the same connection (another task) waits.
        let mut second = park(l.call("acquire_fenced", Args::empty(), &mut same));
        // Re-entry goes through the first guard's token, and only through it.
        let t = Value::Int(decode(&first));
        assert_eq!(
            token(l.call("reenter_fenced", args(std::slice::from_ref(&t)), &mut same)),
            first
        );
        let stale = args(&[Value::Int(999)]);
        assert!(matches!(
            l.call("reenter_fenced", stale, &mut same),
            Outcome::Ready(Err(_))
        ));
        // Python's release by the connection does not release a guard's hold.
        assert!(matches!(
            l.call("release", Args::empty(), &mut same),
            Outcome::Ready(Err(_))
        ));
        token(l.call("release_fenced", args(std::slice::from_ref(&t)), &mut same));
        assert!(second.reply.try_recv().is_err(), "still held at depth 1");
        token(l.call("release_fenced", args(&[t]), &mut same));
        assert_eq!(second.reply.try_recv().unwrap().unwrap(), encode::int(2));
    }

    fn decode(b: &Bytes) -> i128 {
        match syncman_protocol::value::decode(b).unwrap() {
            Value::Int(i) => i,
            other => panic!("{other:?}"),
        }
    }
    fn value_error(o: Outcome) -> String {
        match o {
            Outcome::Ready(Err(e)) => {
                assert_eq!(e.kind, syncman_protocol::ErrorKind::ValueError);
                e.message
            }
            Outcome::Ready(Ok(b)) => panic!("expected a ValueError, got {b:?}"),
            Outcome::Park(_) => panic!("expected a ValueError, parked"),
        }
    }

    const METHODS_OF_PYTHON_AND_GUARDS: [&str; 2] = ["acquire", "acquire_fenced"];

    #[test]
    fn a_timeout_of_minus_one_waits_forever() {
        // Python 3.11: Lock().acquire(timeout=-1) is acquire(): it blocks until released.
        for reentrant in [false, true] {
            let l = TestLock::new(Args::empty(), reentrant).unwrap();
            token(l.call("acquire_fenced", Args::empty(), &mut CallCtx::new(1)));
            for method in METHODS_OF_PYTHON_AND_GUARDS {
                for t in [Value::Int(-1), Value::Float(-1.0)] {
                    let p =
                        park(l.call(method, args(&[Value::Bool(true), t]), &mut CallCtx::new(2)));
                    assert!(p.deadline.is_none(), "{method}: no deadline");
                }
            }
            // acquire(False, -1) is acquire(False): a poll.
            let poll = args(&[Value::Bool(false), Value::Int(-1)]);
            assert_eq!(
                ready(l.call("acquire", poll, &mut CallCtx::new(3))).unwrap(),
                encode::bool(false)
            );
        }
    }

    #[test]
    fn other_negative_timeouts_are_a_value_error_and_take_nothing() {
        // Python 3.13: Lock().acquire(timeout=-2) -> ValueError('timeout value must be a
        // non-negative number') (3.11 and 3.12: 'timeout value must be positive').
        let l = TestLock::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        for method in METHODS_OF_PYTHON_AND_GUARDS {
            for t in [
                Value::Int(-2),
                Value::Float(-0.5),
                Value::Float(-1.000_000_01),
            ] {
                let msg = value_error(l.call(method, args(&[Value::Bool(true), t]), &mut ctx));
                assert_eq!(msg, "timeout value must be a non-negative number");
            }
            let nan = args(&[Value::Bool(true), Value::Float(f64::NAN)]);
            assert_eq!(
                value_error(l.call(method, nan, &mut ctx)),
                "Invalid value NaN (not a number)"
            );
        }
        assert_eq!(
            token(l.call("locked", Args::empty(), &mut ctx)),
            encode::bool(false)
        );
    }

    #[test]
    fn a_timeout_with_a_non_blocking_acquire_is_a_value_error() {
        // Python 3.11: Lock().acquire(False, 1) -> ValueError("can't specify a timeout for
        // a non-blocking call"), even with a timeout of 0. None (which CPython's proxy
        // leaves out) is no timeout.
        let l = TestLock::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        for method in METHODS_OF_PYTHON_AND_GUARDS {
            for t in [Value::Int(1), Value::Int(0), Value::Float(0.5)] {
                let msg = value_error(l.call(method, args(&[Value::Bool(false), t]), &mut ctx));
                assert_eq!(msg, "can't specify a timeout for a non-blocking call");
            }
        }
        assert_eq!(
            token(l.call("acquire", args(&[Value::Bool(false), Value::Nil]), &mut ctx)),
            encode::bool(true)
        );
    }

    #[test]
    fn a_zero_timeout_is_a_poll() {
        let l = TestLock::new(Args::empty(), false).unwrap();
        token(l.call("acquire", Args::empty(), &mut CallCtx::new(1)));
        let zero = args(&[Value::Bool(true), Value::Int(0)]);
        assert_eq!(
            token(l.call("acquire", zero, &mut CallCtx::new(2))),
            encode::bool(false)
        );
        let zero = args(&[Value::Bool(true), Value::Float(0.0)]);
        assert_eq!(
            token(l.call("acquire_fenced", zero, &mut CallCtx::new(2))),
            encode::nil()
        );
    }
}

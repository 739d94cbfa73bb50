//! `Semaphore` and `BoundedSemaphore`, with one rule for units whose holder goes away:
//!
//! - A unit taken through a permit guard (`acquire_lease`, the Rust client's `acquire`) is
//!   a **lease**: it comes back exactly once, when the guard releases it
//!   (`release_lease`) or when its session ends. A `release` by anyone else is never
//!   booked against it.
//! - A unit taken without a guard (`acquire`: every CPython client, `__enter__`) or whose
//!   lease was given up (`disown`, the Rust permit's `forget`) is a **consumed signal**: on
//!   a `Semaphore` it never comes back.
//! - On a `BoundedSemaphore` a unit taken without a guard stays taken until somebody
//!   releases it, whether or not its taker is still there, as in CPython (a worker may
//!   acquire and exit while its parent releases). A `release` returns such units first, then
//!   the releaser's leases, then other sessions' leases, so no unit is counted twice and the
//!   value never passes its bound.
//!
//! (With `--keep-locks-on-disconnect`, nothing is returned when a session ends.)

use parking_lot::Mutex;
use std::collections::HashMap;

use syncman_protocol::{Args, RemoteError};

use super::timeout::{semaphore_wait, withdrawn_reply, Wait};
use crate::node::object::{
    CallCtx, Handover, MethodSpec, Outcome, Reply, SessionId, SharedObject, WaiterId,
    WithdrawReason, Withdrawal,
};
use crate::node::wait::WaitQueue;
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("acquire", 0, 2),
    ("release", 0, 1),
    ("acquire_lease", 0, 2),
    ("release_lease", 0, 0),
    ("get_value", 0, 0),
    ("disown", 0, 0),
    ("__enter__", 0, 0),
    ("__exit__", 0, 3),
];

/// How an acquire takes its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taking {
    /// Through a guard: held by the session until released or the session ends.
    Lease,
    /// Without one: a consumed signal (held only by a bounded pool).
    Signal,
}

#[derive(Default)]
struct State {
    value: u64,
    waiters: WaitQueue<Taking>,
    /// Units each session holds through a guard (its leases), given back when it ends.
    held: HashMap<SessionId, u64>,
    /// A bounded semaphore's units taken without a guard: they stay taken until released.
    signals: u64,
}

impl State {
    fn held_by(&self, session: SessionId) -> u64 {
        self.held.get(&session).copied().unwrap_or(0)
    }

    fn hold(&mut self, session: SessionId) {
        *self.held.entry(session).or_insert(0) += 1;
    }

    /// Takes up to `n` of `session`'s held units off its books; how many it had.
    fn unhold_own(&mut self, session: SessionId, n: u64) -> u64 {
        let Some(h) = self.held.get_mut(&session) else {
            return 0;
        };
        let k = (*h).min(n);
        *h -= k;
        if *h == 0 {
            self.held.remove(&session);
        }
        k
    }

    /// Books a unit taken: a lease to its session, a bounded semaphore's signal to the pool.
    fn take(&mut self, session: SessionId, taking: Taking, bounded: bool) {
        match taking {
            Taking::Lease => self.hold(session),
            Taking::Signal if bounded => self.signals += 1,
            Taking::Signal => {}
        }
    }

    /// A bounded semaphore's release: units taken without a guard first, then the
    /// releaser's leases, then other sessions'.
    fn unhold_pooled(&mut self, session: SessionId, n: u64) {
        let signals = self.signals.min(n);
        self.signals -= signals;
        let mut left = n - signals;
        left -= self.unhold_own(session, left);
        let others: Vec<SessionId> = self.held.keys().copied().collect();
        for other in others {
            if left == 0 {
                break;
            }
            left -= self.unhold_own(other, left);
        }
    }

    /// Adds `n` free units and wakes waiters while units are free; a waiter whose caller
    /// is gone gets nothing.
    fn add_free(&mut self, n: u64, bounded: bool) {
        // Saturating: `release` refuses to overflow, but units given back by a session's
        // end or an undelivered answer may meet a value another client raised to the top.
        self.value = self.value.saturating_add(n);
        while self.value > 0 {
            let Some(w) = self.waiters.pop_front() else {
                break;
            };
            let (session, taking) = (w.session, w.want);
            if w.answer(Ok(encode::bool(true))).is_ok() {
                self.value -= 1;
                self.take(session, taking, bounded);
            }
        }
    }
}

pub struct Semaphore {
    bounded: bool,
    initial: u64,
    state: Mutex<State>,
}

impl Semaphore {
    /// `Semaphore(value=1)`.
    pub fn new(mut args: Args<'_>, bounded: bool) -> Result<Semaphore, RemoteError> {
        let value = match args.opt_value()? {
            None => 1,
            Some(v) => v
                .as_int()
                .ok_or_else(|| RemoteError::type_error("value must be an integer"))?,
        };
        args.finish()?;
        let value = u64::try_from(value)
            .map_err(|_| RemoteError::value_error("semaphore initial value must be >= 0"))?;
        Ok(Semaphore {
            bounded,
            initial: value,
            state: Mutex::new(State {
                value,
                ..State::default()
            }),
        })
    }

    fn typeid_str(&self) -> &'static str {
        if self.bounded {
            "BoundedSemaphore"
        } else {
            "Semaphore"
        }
    }

    fn acquire(&self, taking: Taking, wait: Wait, ctx: &mut CallCtx) -> Outcome {
        let mut st = self.state.lock();
        ctx.holds_state = true;
        if st.value > 0 && st.waiters.is_empty() {
            st.value -= 1;
            st.take(ctx.session, taking, self.bounded);
            return Outcome::Ready(Ok(encode::bool(true)));
        }
        let handover = match taking {
            Taking::Lease => Handover::Lease,
            Taking::Signal => Handover::Grant,
        };
        match wait {
            Wait::No => Outcome::Ready(Ok(encode::bool(false))),
            Wait::Until(deadline) => st.waiters.park(ctx, taking, deadline, handover),
        }
    }

    /// Refuses a release of `n` units that would overflow or pass a bounded semaphore's
    /// bound, before anything changes.
    fn check_release(&self, st: &State, n: u64) -> Result<(), RemoteError> {
        let Some(after) = st.value.checked_add(n) else {
            return Err(RemoteError::overflow_error("semaphore value too large"));
        };
        if self.bounded && after > self.initial {
            return Err(RemoteError::value_error(
                "Semaphore released too many times",
            ));
        }
        Ok(())
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args<'_>,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        Ok(match method {
            "acquire" | "__enter__" => {
                let wait = semaphore_wait(&mut args)?;
                self.acquire(Taking::Signal, wait, ctx)
            }
            "acquire_lease" => {
                let wait = semaphore_wait(&mut args)?;
                self.acquire(Taking::Lease, wait, ctx)
            }
            "release" | "__exit__" => {
                let n = if method == "release" {
                    match args.opt_value()? {
                        None => 1,
                        Some(v) => v
                            .as_int()
                            .ok_or_else(|| RemoteError::type_error("n must be an integer"))?,
                    }
                } else {
                    1
                };
                if n < 1 {
                    return Err(RemoteError::value_error("n must be one or more"));
                }
                let n = u64::try_from(n).map_err(|_| RemoteError::value_error("n is too large"))?;
                let mut st = self.state.lock();
                self.check_release(&st, n)?;
                // Off the books before the units are handed to waiters, whose grants are
                // booked anew.
                if self.bounded {
                    st.unhold_pooled(ctx.session, n);
                }
                st.add_free(n, self.bounded);
                Outcome::Ready(Ok(encode::nil()))
            }
            // A guard gives its leased unit back.
            "release_lease" => {
                let mut st = self.state.lock();
                if st.held_by(ctx.session) == 0 {
                    return Err(RemoteError::runtime_error(
                        "this connection holds no leased unit (returned already, or its session was ended)",
                    ));
                }
                self.check_release(&st, 1)?;
                st.unhold_own(ctx.session, 1);
                st.add_free(1, self.bounded);
                Outcome::Ready(Ok(encode::nil()))
            }
            // syncman's own: the caller keeps a leased unit for good (a consumer of a
            // signalling semaphore), so it is not returned when its session ends; on a
            // bounded semaphore it stays taken until somebody releases it.
            "disown" => {
                let mut st = self.state.lock();
                if st.unhold_own(ctx.session, 1) == 1 && self.bounded {
                    st.signals += 1;
                }
                Outcome::Ready(Ok(encode::nil()))
            }
            "get_value" => Outcome::Ready(Ok(encode::int(self.state.lock().value as i128))),
            _ => {
                return Err(crate::node::object::no_such_method(
                    self.typeid_str(),
                    method,
                ))
            }
        })
    }
}

impl SharedObject for Semaphore {
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
            Some(_) => Withdrawal::Answer(withdrawn_reply(why, || Ok(encode::bool(false)))),
            None => Withdrawal::AlreadyAnswered,
        }
    }

    fn undelivered(&self, handover: Handover, session: SessionId, reply: Reply) {
        // A unit granted to a caller that never heard of it was not taken after all.
        if !matches!(reply.as_deref(), Ok([0xc3])) {
            return;
        }
        // Unless another session's release already gave it back (taking it off the books).
        let mut st = self.state.lock();
        let still_taken = match handover {
            Handover::Lease => st.unhold_own(session, 1) == 1,
            Handover::Grant if self.bounded => {
                let taken = st.signals > 0;
                st.signals = st.signals.saturating_sub(1);
                taken
            }
            Handover::Grant => true,
            _ => return,
        };
        if still_taken {
            st.add_free(1, self.bounded);
        }
    }

    fn session_ended(&self, session: SessionId) {
        let mut st = self.state.lock();
        st.waiters.remove_session(session);
        if let Some(n) = st.held.remove(&session) {
            // Never past a bounded semaphore's initial value.
            let n = if self.bounded {
                n.min(self.initial.saturating_sub(st.value))
            } else {
                n
            };
            st.add_free(n, self.bounded);
        }
    }

    fn closed(&self) {
        self.state.lock().waiters.close_all();
    }

    fn waiting(&self) -> usize {
        self.state.lock().waiters.len()
    }

    fn describe(&self) -> String {
        let st = self.state.lock();
        format!(
            "{}, value {} of {}, {} waiting",
            self.typeid_str(),
            st.value,
            self.initial,
            st.waiters.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::objects::testing::{args, park, ready};
    use syncman_protocol::Value;

    fn value(s: &Semaphore) -> Reply {
        ready(s.call("get_value", Args::empty(), &mut CallCtx::new(99)))
    }

    /// BoundedSemaphore(1): a unit granted to a lease whose answer never arrives, and
    /// released meanwhile by another session, is given back once, not twice.
    #[test]
    fn an_undelivered_lease_already_released_by_another_is_not_given_back_again() {
        let s = Semaphore::new(args(&[Value::Int(1)]), true).unwrap();
        let (mut x, mut a, mut b) = (CallCtx::new(1), CallCtx::new(2), CallCtx::new(3));
        assert_eq!(
            ready(s.call("acquire", Args::empty(), &mut x)).unwrap(),
            encode::bool(true)
        );
        let mut leased = park(s.call("acquire_lease", Args::empty(), &mut a));
        // X's release grants the unit to A's lease; its answer is on its way.
        ready(s.call("release", Args::empty(), &mut x)).unwrap();
        // B releases it before A hears of it.
        ready(s.call("release", Args::empty(), &mut b)).unwrap();
        assert_eq!(value(&s).unwrap(), encode::int(1));
        // A's call was dropped: the answer comes back undelivered.
        assert!(matches!(
            s.withdraw(leased.waiter, WithdrawReason::Cancelled),
            Withdrawal::AlreadyAnswered
        ));
        s.undelivered(leased.handover, 2, leased.reply.try_recv().unwrap());
        assert_eq!(value(&s).unwrap(), encode::int(1), "past the bound");
    }

    /// Units given back by a session's end meet a value another client raised to the top:
    /// saturated, not overflowed (a panic there would cut the session's end short).
    #[test]
    fn units_given_back_at_the_top_of_the_range_saturate() {
        let s = Semaphore::new(args(&[Value::Int(1)]), false).unwrap();
        let (mut a, mut b) = (CallCtx::new(1), CallCtx::new(2));
        assert_eq!(
            ready(s.call("acquire_lease", Args::empty(), &mut a)).unwrap(),
            encode::bool(true)
        );
        ready(s.call("release", args(&[Value::Int(u64::MAX as i128)]), &mut b)).unwrap();
        s.session_ended(1);
        assert_eq!(value(&s).unwrap(), encode::int(u64::MAX as i128));
    }

    #[test]
    fn a_unit_released_by_another_session_is_not_returned_twice() {
        let s = Semaphore::new(Args::empty(), true).unwrap();
        let (mut a, mut b) = (CallCtx::new(1), CallCtx::new(2));
        assert_eq!(
            ready(s.call("acquire", Args::empty(), &mut a)).unwrap(),
            encode::bool(true)
        );
        ready(s.call("release", Args::empty(), &mut b)).unwrap();
        s.session_ended(1);
        assert_eq!(
            value(&s).unwrap(),
            encode::int(1),
            "bounded at its initial value"
        );
    }

    #[test]
    fn a_disowned_unit_stays_taken_when_its_session_ends() {
        let s = Semaphore::new(
            Args::from_array(&Value::Array(vec![Value::Int(0)]).to_bytes()).unwrap(),
            false,
        )
        .unwrap();
        let (mut producer, mut consumer) = (CallCtx::new(1), CallCtx::new(2));
        ready(s.call("release", Args::empty(), &mut producer)).unwrap();
        ready(s.call("acquire", Args::empty(), &mut consumer)).unwrap();
        ready(s.call("disown", Args::empty(), &mut consumer)).unwrap();
        s.session_ended(2);
        assert_eq!(value(&s).unwrap(), encode::int(0), "no false permit");
    }

    #[test]
    fn a_huge_release_is_an_error_not_an_overflow() {
        let s = Semaphore::new(Args::empty(), false).unwrap();
        let n = syncman_protocol::ArgList::of(&[Value::Int(u64::MAX as i128)]);
        let n = n.args();
        let e = ready(s.call("release", n, &mut CallCtx::new(1))).unwrap_err();
        assert_eq!(e.kind, syncman_protocol::ErrorKind::OverflowError);
        assert_eq!(value(&s).unwrap(), encode::int(1));
    }

    fn lease(s: &Semaphore, ctx: &mut CallCtx) -> Outcome {
        s.call("acquire_lease", Args::empty(), ctx)
    }

    #[test]
    fn leases_come_back_exactly_once_and_a_signal_is_not_booked_against_them() {
        // A Semaphore(0): a producer releases 100 units, a consumer leases them all and
        // leaves holding them: all 100 come back.
        let s = Semaphore::new(args(&[Value::Int(0)]), false).unwrap();
        let (mut producer, mut consumer) = (CallCtx::new(1), CallCtx::new(2));
        for _ in 0..100 {
            let parked = park(lease(&s, &mut consumer));
            ready(s.call("release", Args::empty(), &mut producer)).unwrap();
            drop(parked);
        }
        // Interleaved the other way round too: units first, then leases.
        for _ in 0..100 {
            ready(s.call("release", Args::empty(), &mut producer)).unwrap();
        }
        for _ in 0..100 {
            assert_eq!(ready(lease(&s, &mut consumer)).unwrap(), encode::bool(true));
        }
        assert_eq!(value(&s).unwrap(), encode::int(0));
        s.session_ended(2);
        assert_eq!(
            value(&s).unwrap(),
            encode::int(200),
            "every lease came back"
        );
        s.session_ended(2);
        assert_eq!(value(&s).unwrap(), encode::int(200), "and only once");
    }

    #[test]
    fn a_returned_lease_is_not_returned_again_and_a_disowned_one_is_consumed() {
        let s = Semaphore::new(args(&[Value::Int(2)]), false).unwrap();
        let mut c = CallCtx::new(1);
        ready(lease(&s, &mut c)).unwrap();
        ready(lease(&s, &mut c)).unwrap();
        ready(s.call("release_lease", Args::empty(), &mut c)).unwrap();
        ready(s.call("disown", Args::empty(), &mut c)).unwrap();
        let e = ready(s.call("release_lease", Args::empty(), &mut c)).unwrap_err();
        assert_eq!(e.kind, syncman_protocol::ErrorKind::RuntimeError);
        s.session_ended(1);
        assert_eq!(
            value(&s).unwrap(),
            encode::int(1),
            "the disowned unit stays consumed"
        );
    }

    #[test]
    fn plain_acquires_of_a_semaphore_are_consumed_signals() {
        let s = Semaphore::new(args(&[Value::Int(0)]), false).unwrap();
        let (mut producer, mut consumer) = (CallCtx::new(1), CallCtx::new(2));
        for _ in 0..100 {
            ready(s.call("release", Args::empty(), &mut producer)).unwrap();
            ready(s.call("acquire", Args::empty(), &mut consumer)).unwrap();
        }
        s.session_ended(2);
        assert_eq!(value(&s).unwrap(), encode::int(0));
    }

    #[test]
    fn a_bounded_semaphores_plain_acquire_outlives_its_session_until_released() {
        // CPython's test_bounded_semaphore: a worker acquires and exits, the parent releases.
        let s = Semaphore::new(Args::empty(), true).unwrap();
        let (mut worker, mut parent) = (CallCtx::new(1), CallCtx::new(2));
        ready(s.call("acquire", Args::empty(), &mut worker)).unwrap();
        s.session_ended(1);
        assert_eq!(value(&s).unwrap(), encode::int(0), "still taken");
        ready(s.call("release", Args::empty(), &mut parent)).unwrap();
        assert_eq!(value(&s).unwrap(), encode::int(1));
        let e = ready(s.call("release", Args::empty(), &mut parent)).unwrap_err();
        assert_eq!(e.kind, syncman_protocol::ErrorKind::ValueError);
    }

    #[test]
    fn a_bounded_pool_gets_its_leases_back_and_stays_bounded() {
        let s = Semaphore::new(args(&[Value::Int(2)]), true).unwrap();
        let (mut a, mut b, mut c) = (CallCtx::new(1), CallCtx::new(2), CallCtx::new(3));
        ready(s.call("acquire", Args::empty(), &mut a)).unwrap();
        ready(lease(&s, &mut a)).unwrap();
        let mut waiting = park(lease(&s, &mut b));
        // A release by a session that holds nothing hands a unit to the waiter.
        ready(s.call("release", Args::empty(), &mut c)).unwrap();
        assert_eq!(
            waiting.reply.try_recv().unwrap().unwrap(),
            encode::bool(true)
        );
        s.session_ended(1);
        s.session_ended(2);
        assert_eq!(value(&s).unwrap(), encode::int(2), "never past its bound");
        let e = ready(s.call("release", Args::empty(), &mut c)).unwrap_err();
        assert_eq!(e.kind, syncman_protocol::ErrorKind::ValueError);
    }
    /// `acquire(blocking, timeout)` and `acquire_lease(...)` on `s` for session 1.
    fn acquire_with(s: &Semaphore, method: &str, params: &[Value]) -> Outcome {
        s.call(method, args(params), &mut CallCtx::new(1))
    }

    #[test]
    fn a_negative_or_zero_timeout_is_a_poll() {
        // Python 3.11: Semaphore(0).acquire(timeout=-1) -> False at once;
        // Semaphore(1).acquire(timeout=-1) -> True.
        for bounded in [false, true] {
            let s = Semaphore::new(args(&[Value::Int(1)]), bounded).unwrap();
            for method in ["acquire", "acquire_lease"] {
                for timeout in [Value::Int(-1), Value::Float(-0.5), Value::Int(0)] {
                    let params = [Value::Bool(true), timeout.clone()];
                    assert_eq!(
                        ready(acquire_with(&s, method, &params)).unwrap(),
                        encode::bool(true)
                    );
                    assert_eq!(
                        ready(acquire_with(&s, method, &params)).unwrap(),
                        encode::bool(false),
                        "{method}({timeout:?}) with no unit left"
                    );
                    ready(s.call("release", Args::empty(), &mut CallCtx::new(2))).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_timeout_without_blocking_is_a_value_error() {
        // Python 3.11: Semaphore(0).acquire(False, 1) -> ValueError("can't specify
        // timeout for non-blocking acquire"), even a timeout of 0 or -1; None is allowed.
        let s = Semaphore::new(args(&[Value::Int(1)]), false).unwrap();
        for method in ["acquire", "acquire_lease"] {
            for timeout in [Value::Int(1), Value::Int(0), Value::Int(-1)] {
                let e =
                    ready(acquire_with(&s, method, &[Value::Bool(false), timeout])).unwrap_err();
                assert_eq!(e.kind, syncman_protocol::ErrorKind::ValueError);
                assert_eq!(e.message, "can't specify timeout for non-blocking acquire");
            }
        }
        assert_eq!(value(&s).unwrap(), encode::int(1), "nothing was taken");
        let none = [Value::Bool(false), Value::Nil];
        assert_eq!(
            ready(acquire_with(&s, "acquire", &none)).unwrap(),
            encode::bool(true)
        );
        assert_eq!(
            ready(acquire_with(&s, "acquire", &none)).unwrap(),
            encode::bool(false)
        );
    }

    #[test]
    fn a_nan_timeout_waits_forever() {
        // Python's loop never reaches a NaN deadline: acquire(timeout=nan) waits for a unit.
        let s = Semaphore::new(args(&[Value::Int(0)]), false).unwrap();
        let p = park(acquire_with(
            &s,
            "acquire",
            &[Value::Bool(true), Value::Float(f64::NAN)],
        ));
        assert!(p.deadline.is_none());
    }
}

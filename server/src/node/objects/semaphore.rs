//! `Semaphore` and `BoundedSemaphore`. Units a session acquired and did not release are
//! returned when it ends (unless the node keeps CPython's behaviour).

use parking_lot::Mutex;
use std::collections::HashMap;

use syncman_protocol::{Args, RemoteError};

use super::timeout::{block_timeout, withdrawn_reply, Wait};
use crate::node::object::{
    CallCtx, Handover, MethodSpec, Outcome, Reply, SessionId, SharedObject, WaiterId,
    WithdrawReason, Withdrawal,
};
use crate::node::wait::WaitQueue;
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("acquire", 0, 2),
    ("release", 0, 1),
    ("get_value", 0, 0),
    ("disown", 0, 0),
    ("__enter__", 0, 0),
    ("__exit__", 0, 3),
];

#[derive(Default)]
struct State {
    value: u64,
    waiters: WaitQueue<()>,
    /// Units each session holds.
    held: HashMap<SessionId, u64>,
}

impl State {
    fn take(&mut self, session: SessionId) {
        self.value -= 1;
        *self.held.entry(session).or_insert(0) += 1;
    }

    /// Units are fungible: a release first returns the releaser's own units, then units
    /// other sessions hold (Python lets anyone release), so no unit is counted as held
    /// twice and a departing session never returns a unit someone else already did.
    fn unhold(&mut self, session: SessionId, mut n: u64) {
        fn take_from(held: &mut HashMap<SessionId, u64>, s: SessionId, n: &mut u64) {
            if let Some(h) = held.get_mut(&s) {
                let k = (*h).min(*n);
                *h -= k;
                *n -= k;
                if *h == 0 {
                    held.remove(&s);
                }
            }
        }
        take_from(&mut self.held, session, &mut n);
        if n > 0 {
            let others: Vec<SessionId> = self.held.keys().copied().collect();
            for other in others {
                take_from(&mut self.held, other, &mut n);
                if n == 0 {
                    break;
                }
            }
        }
    }

    /// Adds `n` free units and wakes waiters while units are free; a waiter whose caller
    /// is gone gets nothing.
    fn add_free(&mut self, n: u64) {
        self.value += n;
        while self.value > 0 {
            let Some(w) = self.waiters.pop_front() else {
                break;
            };
            let session = w.session;
            if w.answer(Ok(encode::bool(true))).is_ok() {
                self.take(session);
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
    pub fn new(mut args: Args, bounded: bool) -> Result<Semaphore, RemoteError> {
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

    fn dispatch(
        &self,
        method: &str,
        mut args: Args,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        Ok(match method {
            "acquire" | "__enter__" => {
                let wait = block_timeout(&mut args, false)?;
                let mut st = self.state.lock();
                ctx.holds_state = true;
                if st.value > 0 && st.waiters.is_empty() {
                    st.take(ctx.session);
                    return Ok(Outcome::Ready(Ok(encode::bool(true))));
                }
                match wait {
                    Wait::No => Outcome::Ready(Ok(encode::bool(false))),
                    Wait::Until(deadline) => st.waiters.park(ctx, (), deadline, Handover::Grant),
                }
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
                let Some(after) = st.value.checked_add(n) else {
                    return Err(RemoteError::overflow_error("semaphore value too large"));
                };
                if self.bounded && after > self.initial {
                    return Err(RemoteError::value_error(
                        "Semaphore released too many times",
                    ));
                }
                st.unhold(ctx.session, n);
                st.add_free(n);
                Outcome::Ready(Ok(encode::nil()))
            }
            // syncman's own: the caller keeps a unit for good (a consumer of a signalling
            // semaphore), so it is not returned when the caller's session ends.
            "disown" => {
                let mut st = self.state.lock();
                if let Some(h) = st.held.get_mut(&ctx.session) {
                    *h = h.saturating_sub(1);
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

    fn call(&self, method: &str, args: Args, ctx: &mut CallCtx) -> Outcome {
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
        if handover == Handover::Grant && matches!(reply.as_deref(), Ok([0xc3])) {
            let mut st = self.state.lock();
            st.unhold(session, 1);
            st.add_free(1);
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
            st.add_free(n);
        }
    }

    fn closed(&self) {
        self.state.lock().waiters.close_all();
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
    use crate::node::objects::testing::ready;
    use syncman_protocol::Value;

    fn value(s: &Semaphore) -> Reply {
        ready(s.call("get_value", Args::empty(), &mut CallCtx::new(99)))
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
            Args::from_array(Value::Array(vec![Value::Int(0)]).to_bytes()).unwrap(),
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
        let n =
            Args::from_array(Value::Array(vec![Value::Int(u64::MAX as i128)]).to_bytes()).unwrap();
        let e = ready(s.call("release", n, &mut CallCtx::new(1))).unwrap_err();
        assert_eq!(e.kind, syncman_protocol::ErrorKind::OverflowError);
        assert_eq!(value(&s).unwrap(), encode::int(1));
    }
}

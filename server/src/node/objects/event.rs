//! `Event`: a flag that waiters park on until it is set.

use parking_lot::Mutex;

use syncman_protocol::{Args, RemoteError};

use super::timeout::{condition_wait, seconds, withdrawn_reply, Wait};
use crate::node::object::{
    CallCtx, Handover, MethodSpec, Outcome, SharedObject, WaiterId, WithdrawReason, Withdrawal,
};
use crate::node::wait::WaitQueue;
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("is_set", 0, 0),
    ("set", 0, 0),
    ("clear", 0, 0),
    ("wait", 0, 1),
];

#[derive(Default)]
struct State {
    flag: bool,
    waiters: WaitQueue<()>,
}

pub struct Event {
    state: Mutex<State>,
}

impl Event {
    pub fn new(args: Args<'_>) -> Result<Event, RemoteError> {
        args.finish()?;
        Ok(Event {
            state: Mutex::new(State::default()),
        })
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args<'_>,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        Ok(match method {
            "is_set" => Outcome::Ready(Ok(encode::bool(self.state.lock().flag))),
            "set" => {
                let mut st = self.state.lock();
                st.flag = true;
                for w in st.waiters.drain() {
                    let _ = w.answer(Ok(encode::bool(true)));
                }
                Outcome::Ready(Ok(encode::nil()))
            }
            "clear" => {
                self.state.lock().flag = false;
                Outcome::Ready(Ok(encode::nil()))
            }
            "wait" => {
                // Python's Event.wait is a Condition.wait: 0, negative and NaN are a poll.
                let wait = condition_wait(seconds(args.opt_value()?)?);
                let mut st = self.state.lock();
                if st.flag {
                    return Ok(Outcome::Ready(Ok(encode::bool(true))));
                }
                match wait {
                    Wait::No => Outcome::Ready(Ok(encode::bool(false))),
                    Wait::Until(deadline) => st.waiters.park(ctx, (), deadline, Handover::Nothing),
                }
            }
            _ => return Err(crate::node::object::no_such_method("Event", method)),
        })
    }
}

impl SharedObject for Event {
    fn typeid(&self) -> &str {
        "Event"
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

    fn closed(&self) {
        self.state.lock().waiters.close_all();
    }

    fn waiting(&self) -> usize {
        self.state.lock().waiters.len()
    }

    fn describe(&self) -> String {
        let st = self.state.lock();
        format!(
            "Event {}, {} waiting",
            if st.flag { "set" } else { "clear" },
            st.waiters.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::objects::testing::{args, park, ready};
    use syncman_protocol::{ErrorKind, Value};

    fn event() -> Event {
        Event::new(Args::empty()).unwrap()
    }

    fn call(e: &Event, method: &str, params: &[Value]) -> Outcome {
        e.call(method, args(params), &mut CallCtx::new(1))
    }

    fn is_set(e: &Event) -> bool {
        ready(call(e, "is_set", &[])).unwrap() == encode::bool(true)
    }

    #[test]
    fn wait_parks_until_set_and_set_wakes_every_waiter_with_true() {
        let e = event();
        let mut waiters: Vec<_> = (0..3).map(|_| park(call(&e, "wait", &[]))).collect();
        assert!(waiters.iter_mut().all(|w| w.reply.try_recv().is_err()));
        ready(call(&e, "set", &[])).unwrap();
        for w in &mut waiters {
            assert_eq!(w.reply.try_recv().unwrap().unwrap(), encode::bool(true));
        }
        assert!(is_set(&e));
    }

    #[test]
    fn a_set_event_answers_at_once() {
        let e = event();
        ready(call(&e, "set", &[])).unwrap();
        for timeout in [vec![], vec![Value::Nil], vec![Value::Int(0)]] {
            assert_eq!(
                ready(call(&e, "wait", &timeout)).unwrap(),
                encode::bool(true)
            );
        }
    }

    #[test]
    fn clear_makes_waits_park_again() {
        let e = event();
        ready(call(&e, "set", &[])).unwrap();
        ready(call(&e, "clear", &[])).unwrap();
        assert!(!is_set(&e));
        park(call(&e, "wait", &[]));
    }

    #[test]
    fn wait_zero_on_a_clear_event_answers_false_without_parking() {
        let e = event();
        assert_eq!(
            ready(call(&e, "wait", &[Value::Int(0)])).unwrap(),
            encode::bool(false)
        );
        assert_eq!(e.describe(), "Event clear, 0 waiting");
    }

    #[test]
    fn a_timed_out_waiter_answers_false_and_a_later_set_skips_it() {
        let e = event();
        let timed_out = park(call(&e, "wait", &[Value::Float(60.0)]));
        match e.withdraw(timed_out.waiter, WithdrawReason::Timeout) {
            Withdrawal::Answer(reply) => assert_eq!(reply.unwrap(), encode::bool(false)),
            other => panic!("expected an answer, got {other:?}"),
        }
        assert_eq!(e.describe(), "Event clear, 0 waiting");
        ready(call(&e, "set", &[])).unwrap();
        assert!(matches!(
            e.withdraw(timed_out.waiter, WithdrawReason::Timeout),
            Withdrawal::AlreadyAnswered
        ));
    }

    #[test]
    fn a_cancelled_waiter_answers_cancelled() {
        let e = event();
        let cancelled = park(call(&e, "wait", &[]));
        match e.withdraw(cancelled.waiter, WithdrawReason::Cancelled) {
            Withdrawal::Answer(reply) => {
                assert_eq!(reply.unwrap_err().kind, ErrorKind::Cancelled)
            }
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn closing_answers_waiters_with_not_found() {
        let e = event();
        let mut waiter = park(call(&e, "wait", &[]));
        e.closed();
        let err = waiter.reply.try_recv().unwrap().unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
        let err = ready(call(&e, "wait", &[])).unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound);
    }

    #[test]
    fn a_negative_timeout_answers_false_at_once() {
        // Python 3.11: Event().wait(-1) -> False at once (Condition.wait polls for any
        // timeout that is not > 0, NaN included); a set event answers True.
        let e = event();
        for timeout in [Value::Int(-1), Value::Float(-0.5), Value::Float(f64::NAN)] {
            assert_eq!(
                ready(call(&e, "wait", std::slice::from_ref(&timeout))).unwrap(),
                encode::bool(false),
                "{timeout:?}"
            );
        }
        assert_eq!(e.describe(), "Event clear, 0 waiting");
        ready(call(&e, "set", &[])).unwrap();
        assert_eq!(
            ready(call(&e, "wait", &[Value::Int(-1)])).unwrap(),
            encode::bool(true)
        );
    }
}

//! `Barrier`: `parties` callers wait until all have arrived. A timeout, an abort, a reset
//! while parties wait, or a waiting party that leaves (cancels or disconnects) breaks the
//! barrier: every waiter gets `BrokenBarrierError`, as in Python.

use parking_lot::Mutex;

use syncman_protocol::{Args, ErrorKind, RemoteError, Value};

use super::timeout::{deadline_wait, seconds, Wait};
use crate::node::object::{
    CallCtx, Handover, MethodSpec, Outcome, SharedObject, WaiterId, WithdrawReason, Withdrawal,
};
use crate::node::wait::WaitQueue;
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("wait", 0, 1),
    ("reset", 0, 0),
    ("abort", 0, 0),
    ("parties", 0, 0),
    ("n_waiting", 0, 0),
    ("broken", 0, 0),
    // CPython's BarrierProxy reads the three properties this way.
    ("__getattribute__", 1, 1),
];

#[derive(Default)]
struct State {
    /// Waiters of the current round; each knows its arrival index.
    waiting: WaitQueue<u64>,
    broken: bool,
}

pub struct Barrier {
    parties: u64,
    default_timeout: Option<f64>,
    state: Mutex<State>,
}

fn broken_error() -> RemoteError {
    RemoteError::new(ErrorKind::BrokenBarrier, "the barrier is broken")
}

impl Barrier {
    /// `Barrier(parties, action=None, timeout=None)`.
    pub fn new(mut args: Args<'_>) -> Result<Barrier, RemoteError> {
        let parties = args.int("parties")?;
        if parties < 1 {
            return Err(RemoteError::value_error("parties must be > 0"));
        }
        match args.opt_value()? {
            None | Some(Value::Nil) => {}
            Some(_) => {
                return Err(RemoteError::type_error(
                    "a barrier action is Python code and cannot run on the node",
                ))
            }
        }
        // Kept as given, as Python keeps it: a negative default makes every wait a poll.
        let default_timeout = seconds(args.opt_value()?)?;
        args.finish()?;
        Ok(Barrier {
            parties: u64::try_from(parties)
                .map_err(|_| RemoteError::value_error("too many parties"))?,
            default_timeout,
            state: Mutex::new(State::default()),
        })
    }

    /// Breaks the barrier: every waiter gets `BrokenBarrierError`.
    fn break_barrier(st: &mut State) {
        st.broken = true;
        for w in st.waiting.drain() {
            let _ = w.answer(Err(broken_error()));
        }
    }

    fn property(&self, st: &State, name: &str) -> Result<bytes::Bytes, RemoteError> {
        match name {
            "parties" => Ok(encode::int(self.parties as i128)),
            "n_waiting" => Ok(encode::int(st.waiting.len() as i128)),
            "broken" => Ok(encode::bool(st.broken)),
            other => Err(RemoteError::attribute_error(format!(
                "'Barrier' object has no attribute '{other}'"
            ))),
        }
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args<'_>,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        let mut st = self.state.lock();
        Ok(match method {
            "wait" => {
                // Python's `wait_for` loop: 0 or negative is one look (a poll), NaN forever.
                let secs = seconds(args.opt_value()?)?.or(self.default_timeout);
                if st.broken {
                    return Err(broken_error());
                }
                let index = st.waiting.len() as u64;
                if index + 1 == self.parties {
                    // The last arrival releases the round.
                    for w in st.waiting.drain() {
                        let i = w.want;
                        let _ = w.answer(Ok(encode::int(i as i128)));
                    }
                    return Ok(Outcome::Ready(Ok(encode::int(index as i128))));
                }
                match deadline_wait(secs) {
                    Wait::No => {
                        Self::break_barrier(&mut st);
                        return Err(broken_error());
                    }
                    Wait::Until(deadline) => {
                        st.waiting.park(ctx, index, deadline, Handover::Nothing)
                    }
                }
            }
            "reset" => {
                if !st.waiting.is_empty() {
                    Self::break_barrier(&mut st);
                }
                st.broken = false;
                Outcome::Ready(Ok(encode::nil()))
            }
            "abort" => {
                Self::break_barrier(&mut st);
                Outcome::Ready(Ok(encode::nil()))
            }
            "__getattribute__" => {
                let name = args.string("name")?;
                Outcome::Ready(self.property(&st, &name))
            }
            property => Outcome::Ready(self.property(&st, property)),
        })
    }
}

impl SharedObject for Barrier {
    fn typeid(&self) -> &str {
        "Barrier"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, args: Args<'_>, ctx: &mut CallCtx) -> Outcome {
        self.dispatch(method, args, ctx)
            .unwrap_or_else(|e| Outcome::Ready(Err(e)))
    }

    fn withdraw(&self, waiter: WaiterId, why: WithdrawReason) -> Withdrawal {
        let mut st = self.state.lock();
        if st.waiting.remove(waiter).is_none() {
            return Withdrawal::AlreadyAnswered;
        }
        // A party that gives up (timeout) or leaves (cancel, disconnect) breaks the
        // barrier for everyone, as a timeout does in Python.
        Self::break_barrier(&mut st);
        Withdrawal::Answer(Err(match why {
            WithdrawReason::Shutdown => why.error(),
            _ => broken_error(),
        }))
    }

    fn closed(&self) {
        self.state.lock().waiting.close_all();
    }

    fn waiting(&self) -> usize {
        self.state.lock().waiting.len()
    }

    fn describe(&self) -> String {
        let st = self.state.lock();
        format!(
            "Barrier of {}, {} waiting{}",
            self.parties,
            st.waiting.len(),
            if st.broken { ", broken" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::object::Reply;
    use crate::node::objects::testing::{args, park, ready};
    use syncman_protocol::value::decode;

    fn barrier(parties: i128) -> Barrier {
        Barrier::new(args(&[Value::Int(parties)])).unwrap()
    }

    fn wait(b: &Barrier, session: u64) -> Outcome {
        b.call("wait", Args::empty(), &mut CallCtx::new(session))
    }

    fn call(b: &Barrier, method: &str, params: &[Value]) -> Reply {
        ready(b.call(method, args(params), &mut CallCtx::new(99)))
    }

    fn property(b: &Barrier, name: &str) -> Value {
        let reply = call(b, "__getattribute__", &[Value::Str(name.into())]);
        decode(&reply.unwrap()).unwrap()
    }

    fn is_broken_error(reply: Reply) -> bool {
        matches!(reply, Err(e) if e.kind == ErrorKind::BrokenBarrier)
    }

    #[test]
    fn the_last_arrival_releases_every_waiter_with_distinct_indexes() {
        let b = barrier(3);
        let mut first = park(wait(&b, 1));
        let mut second = park(wait(&b, 2));
        assert_eq!(ready(wait(&b, 3)).unwrap(), encode::int(2));
        assert_eq!(first.reply.try_recv().unwrap().unwrap(), encode::int(0));
        assert_eq!(second.reply.try_recv().unwrap().unwrap(), encode::int(1));
        // The next round starts empty.
        assert_eq!(property(&b, "n_waiting"), Value::Int(0));
        let mut again = park(wait(&b, 1));
        park(wait(&b, 2));
        assert_eq!(ready(wait(&b, 3)).unwrap(), encode::int(2));
        assert_eq!(again.reply.try_recv().unwrap().unwrap(), encode::int(0));
    }

    #[test]
    fn a_timed_out_party_breaks_the_barrier_for_everyone() {
        let b = barrier(3);
        let mut other = park(wait(&b, 1));
        let timed_out = park(wait(&b, 2));
        match b.withdraw(timed_out.waiter, WithdrawReason::Timeout) {
            Withdrawal::Answer(reply) => assert!(is_broken_error(reply)),
            other => panic!("expected an answer, got {other:?}"),
        }
        assert!(is_broken_error(other.reply.try_recv().unwrap()));
        assert_eq!(property(&b, "broken"), Value::Bool(true));
        // Later waits fail at once, even the one that would have completed the round.
        assert!(is_broken_error(ready(wait(&b, 3))));
    }

    #[test]
    fn a_party_that_leaves_breaks_the_barrier_too() {
        let b = barrier(3);
        let mut other = park(wait(&b, 1));
        let leaving = park(wait(&b, 2));
        match b.withdraw(leaving.waiter, WithdrawReason::Cancelled) {
            Withdrawal::Answer(reply) => assert!(is_broken_error(reply)),
            other => panic!("expected an answer, got {other:?}"),
        }
        assert!(is_broken_error(other.reply.try_recv().unwrap()));
        assert!(is_broken_error(ready(wait(&b, 3))));
        // Withdrawing an answered waiter finds nothing.
        assert!(matches!(
            b.withdraw(other.waiter, WithdrawReason::Timeout),
            Withdrawal::AlreadyAnswered
        ));
    }

    #[test]
    fn abort_breaks_the_barrier_until_reset() {
        let b = barrier(2);
        let mut parked = park(wait(&b, 1));
        call(&b, "abort", &[]).unwrap();
        assert!(is_broken_error(parked.reply.try_recv().unwrap()));
        assert_eq!(property(&b, "broken"), Value::Bool(true));
        assert!(is_broken_error(ready(wait(&b, 1))));
        assert!(is_broken_error(ready(wait(&b, 2))));
        call(&b, "reset", &[]).unwrap();
        assert_eq!(property(&b, "broken"), Value::Bool(false));
        let mut first = park(wait(&b, 1));
        assert_eq!(ready(wait(&b, 2)).unwrap(), encode::int(1));
        assert_eq!(first.reply.try_recv().unwrap().unwrap(), encode::int(0));
    }

    #[test]
    fn reset_while_parties_wait_breaks_them_and_leaves_the_barrier_usable() {
        let b = barrier(3);
        let mut parked = park(wait(&b, 1));
        call(&b, "reset", &[]).unwrap();
        assert!(is_broken_error(parked.reply.try_recv().unwrap()));
        assert_eq!(property(&b, "broken"), Value::Bool(false));
        assert_eq!(property(&b, "n_waiting"), Value::Int(0));
        // A full round after the reset: the broken waiter is not counted.
        park(wait(&b, 1));
        park(wait(&b, 2));
        assert_eq!(ready(wait(&b, 3)).unwrap(), encode::int(2));
    }

    #[test]
    fn properties_are_read_through_getattribute() {
        let b = barrier(3);
        assert_eq!(property(&b, "parties"), Value::Int(3));
        assert_eq!(property(&b, "n_waiting"), Value::Int(0));
        assert_eq!(property(&b, "broken"), Value::Bool(false));
        park(wait(&b, 1));
        park(wait(&b, 2));
        assert_eq!(property(&b, "n_waiting"), Value::Int(2));
        // The same properties as methods.
        assert_eq!(call(&b, "n_waiting", &[]).unwrap(), encode::int(2));
        assert_eq!(call(&b, "parties", &[]).unwrap(), encode::int(3));
        call(&b, "abort", &[]).unwrap();
        assert_eq!(property(&b, "n_waiting"), Value::Int(0));
        assert_eq!(call(&b, "broken", &[]).unwrap(), encode::bool(true));
        let e = call(&b, "__getattribute__", &[Value::Str("action".into())]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AttributeError);
        assert_eq!(e.message, "'Barrier' object has no attribute 'action'");
    }

    #[test]
    fn an_action_is_refused() {
        let e = Barrier::new(args(&[Value::Int(2), Value::Str("print".into())]))
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::TypeError);
        // None is no action.
        Barrier::new(args(&[Value::Int(2), Value::Nil])).unwrap();
        let e = Barrier::new(args(&[Value::Int(0)])).err().unwrap();
        assert_eq!(e.kind, ErrorKind::ValueError);
    }

    #[test]
    fn the_constructor_timeout_applies_to_waits_without_their_own() {
        // Barrier(2, None, 0): a wait with no timeout of its own gives up at once.
        let b = Barrier::new(args(&[Value::Int(2), Value::Nil, Value::Int(0)])).unwrap();
        assert!(is_broken_error(ready(wait(&b, 1))));
        assert_eq!(property(&b, "broken"), Value::Bool(true));
        // A timeout of its own wins over the default.
        call(&b, "reset", &[]).unwrap();
        let own = args(&[Value::Float(60.0)]);
        let p = park(b.call("wait", own, &mut CallCtx::new(1)));
        assert!(p.deadline.is_some());
    }

    #[test]
    fn a_zero_timeout_breaks_the_barrier_unless_it_completes_the_round() {
        let b = barrier(2);
        let zero = || args(&[Value::Int(0)]);
        assert!(is_broken_error(ready(b.call(
            "wait",
            zero(),
            &mut CallCtx::new(1)
        ))));
        assert_eq!(property(&b, "broken"), Value::Bool(true));
        call(&b, "reset", &[]).unwrap();
        let mut first = park(wait(&b, 1));
        assert_eq!(
            ready(b.call("wait", zero(), &mut CallCtx::new(2))).unwrap(),
            encode::int(1)
        );
        assert_eq!(first.reply.try_recv().unwrap().unwrap(), encode::int(0));
    }

    #[test]
    fn closing_answers_waiters_with_not_found() {
        let b = barrier(3);
        let mut parked = park(wait(&b, 1));
        b.closed();
        let e = parked.reply.try_recv().unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = ready(wait(&b, 2)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[test]
    fn a_negative_timeout_breaks_the_barrier() {
        // Python 3.11: Barrier(2).wait(-1) -> BrokenBarrierError, broken afterwards.
        let b = barrier(2);
        let reply = ready(b.call("wait", args(&[Value::Int(-1)]), &mut CallCtx::new(1)));
        assert!(is_broken_error(reply));
        assert_eq!(property(&b, "broken"), Value::Bool(true));
        // Unless it completes the round: Barrier(1).wait(-1) -> 0.
        let one = barrier(1);
        let reply = ready(one.call("wait", args(&[Value::Float(-0.5)]), &mut CallCtx::new(1)));
        assert_eq!(reply.unwrap(), encode::int(0));
    }

    #[test]
    fn a_negative_default_timeout_is_kept_and_makes_waits_polls() {
        // Python 3.11: Barrier(2, timeout=-1).wait() -> BrokenBarrierError.
        let b = Barrier::new(args(&[Value::Int(2), Value::Nil, Value::Int(-1)])).unwrap();
        assert!(is_broken_error(ready(wait(&b, 1))));
        // A wait's own timeout still wins.
        call(&b, "reset", &[]).unwrap();
        let p = park(b.call("wait", args(&[Value::Float(60.0)]), &mut CallCtx::new(1)));
        assert!(p.deadline.is_some());
    }

    #[test]
    fn a_nan_timeout_waits_forever() {
        // Python's wait_for loop never reaches a NaN deadline.
        let b = barrier(2);
        let p = park(b.call(
            "wait",
            args(&[Value::Float(f64::NAN)]),
            &mut CallCtx::new(1),
        ));
        assert!(p.deadline.is_none());
        assert_eq!(property(&b, "broken"), Value::Bool(false));
    }
}

//! `Barrier`: `parties` callers wait until all have arrived. A timeout, an abort, a reset
//! while parties wait, or a waiting party that leaves (cancels or disconnects) breaks the
//! barrier: every waiter gets `BrokenBarrierError`, as in Python.

use parking_lot::Mutex;

use syncman_protocol::{Args, ErrorKind, RemoteError, Value};

use super::timeout::{timeout, wait, withdrawn_error, Wait};
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
    pub fn new(mut args: Args) -> Result<Barrier, RemoteError> {
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
        let default_timeout = timeout(args.opt_value()?, false)?;
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
        mut args: Args,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        let mut st = self.state.lock();
        Ok(match method {
            "wait" => {
                let secs = timeout(args.opt_value()?, false)?.or(self.default_timeout);
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
                match wait(true, secs) {
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

    fn call(&self, method: &str, args: Args, ctx: &mut CallCtx) -> Outcome {
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
            WithdrawReason::Shutdown => withdrawn_error(why),
            _ => broken_error(),
        }))
    }

    fn closed(&self) {
        self.state.lock().waiting.close_all();
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

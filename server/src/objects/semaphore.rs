//! `Semaphore` and `BoundedSemaphore`. Units a session acquired and did not release are
//! returned when it ends (unless the node keeps CPython's behaviour).

use std::collections::HashMap;
use std::sync::Mutex;

use syncman_protocol::{Args, RemoteError};

use super::blocking::{block_timeout, withdrawn_reply, Wait};
use super::lock;
use crate::encode;
use crate::object::{
    check_call, CallCtx, MethodSpec, Outcome, Reply, SessionId, SharedObject, WaiterId, Withdraw,
    Withdrawn,
};
use crate::waiter::WaitQueue;

const METHODS: &[MethodSpec] = &[
    ("acquire", 0, 2),
    ("release", 0, 1),
    ("get_value", 0, 0),
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

    fn give_back(&mut self, session: SessionId, n: u64) {
        if let Some(h) = self.held.get_mut(&session) {
            *h = h.saturating_sub(n);
            if *h == 0 {
                self.held.remove(&session);
            }
        }
        self.value += n;
        // Wake waiters while units are free; one whose caller is gone gets nothing.
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
                let mut st = lock(&self.state);
                ctx.holds_state = true;
                if st.value > 0 && st.waiters.is_empty() {
                    st.take(ctx.session);
                    return Ok(Outcome::Ready(Ok(encode::bool(true))));
                }
                match wait {
                    Wait::No => Outcome::Ready(Ok(encode::bool(false))),
                    Wait::Until(deadline) => ctx.park(&mut st.waiters, (), deadline, 0),
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
                let mut st = lock(&self.state);
                if self.bounded && st.value.saturating_add(n) > self.initial {
                    return Err(RemoteError::value_error(
                        "Semaphore released too many times",
                    ));
                }
                st.give_back(ctx.session, n);
                Outcome::Ready(Ok(encode::nil()))
            }
            "get_value" => Outcome::Ready(Ok(encode::int(lock(&self.state).value as i128))),
            _ => return Err(crate::object::no_such_method(self.typeid_str(), method)),
        })
    }
}

impl SharedObject for Semaphore {
    fn typeid(&self) -> &str {
        self.typeid_str()
    }

    fn call(&self, method: &str, args: Args, ctx: &mut CallCtx) -> Outcome {
        check_call(self.typeid_str(), METHODS, method, &args)
            .and_then(|()| self.dispatch(method, args, ctx))
            .into()
    }

    fn withdraw(&self, waiter: WaiterId, why: Withdraw) -> Withdrawn {
        match lock(&self.state).waiters.remove(waiter) {
            Some(_) => Withdrawn::Answer(withdrawn_reply(why, || Ok(encode::bool(false)))),
            None => Withdrawn::AlreadyAnswered,
        }
    }

    fn undelivered(&self, _purpose: u8, session: SessionId, reply: Reply) {
        if matches!(reply.as_deref(), Ok([0xc3])) {
            lock(&self.state).give_back(session, 1);
        }
    }

    fn session_ended(&self, session: SessionId) {
        let mut st = lock(&self.state);
        st.waiters.remove_session(session);
        if let Some(n) = st.held.get(&session).copied() {
            st.give_back(session, n);
        }
    }

    fn closed(&self) {
        lock(&self.state).waiters.close_all();
    }

    fn describe(&self) -> String {
        let st = lock(&self.state);
        format!(
            "{}, value {} of {}, {} waiting",
            self.typeid_str(),
            st.value,
            self.initial,
            st.waiters.len()
        )
    }
}

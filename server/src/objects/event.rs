//! `Event`: a flag that waiters park on until it is set.

use std::sync::Mutex;

use syncman_protocol::{Args, RemoteError};

use super::blocking::{timeout_only, withdrawn_reply, Wait};
use super::lock;
use crate::encode;
use crate::object::{
    check_call, CallCtx, MethodSpec, Outcome, SharedObject, WaiterId, Withdraw, Withdrawn,
};
use crate::waiter::WaitQueue;

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
    pub fn new(args: Args) -> Result<Event, RemoteError> {
        args.finish()?;
        Ok(Event {
            state: Mutex::new(State::default()),
        })
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        Ok(match method {
            "is_set" => Outcome::Ready(Ok(encode::bool(lock(&self.state).flag))),
            "set" => {
                let mut st = lock(&self.state);
                st.flag = true;
                for w in st.waiters.drain() {
                    let _ = w.answer(Ok(encode::bool(true)));
                }
                Outcome::Ready(Ok(encode::nil()))
            }
            "clear" => {
                lock(&self.state).flag = false;
                Outcome::Ready(Ok(encode::nil()))
            }
            "wait" => {
                let wait = timeout_only(&mut args)?;
                let mut st = lock(&self.state);
                if st.flag {
                    return Ok(Outcome::Ready(Ok(encode::bool(true))));
                }
                match wait {
                    Wait::No => Outcome::Ready(Ok(encode::bool(false))),
                    Wait::Until(deadline) => ctx.park(&mut st.waiters, (), deadline, 0),
                }
            }
            _ => return Err(crate::object::no_such_method("Event", method)),
        })
    }
}

impl SharedObject for Event {
    fn typeid(&self) -> &str {
        "Event"
    }

    fn call(&self, method: &str, args: Args, ctx: &mut CallCtx) -> Outcome {
        check_call("Event", METHODS, method, &args)
            .and_then(|()| self.dispatch(method, args, ctx))
            .into()
    }

    fn withdraw(&self, waiter: WaiterId, why: Withdraw) -> Withdrawn {
        match lock(&self.state).waiters.remove(waiter) {
            Some(_) => Withdrawn::Answer(withdrawn_reply(why, || Ok(encode::bool(false)))),
            None => Withdrawn::AlreadyAnswered,
        }
    }

    fn closed(&self) {
        lock(&self.state).waiters.close_all();
    }

    fn describe(&self) -> String {
        let st = lock(&self.state);
        format!(
            "Event {}, {} waiting",
            if st.flag { "set" } else { "clear" },
            st.waiters.len()
        )
    }
}

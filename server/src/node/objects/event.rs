//! `Event`: a flag that waiters park on until it is set.

use parking_lot::Mutex;

use syncman_protocol::{Args, RemoteError};

use super::timeout::{timeout_only, withdrawn_reply, Wait};
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
                let wait = timeout_only(&mut args)?;
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

    fn closed(&self) {
        self.state.lock().waiters.close_all();
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

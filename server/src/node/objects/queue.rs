//! `Queue` and `JoinableQueue`: FIFO with an optional bound, blocking `get`/`put` that park
//! instead of holding a thread, and `task_done`/`join` for the joinable kind.
//!
//! Hand-off is direct: a `put` with getters waiting answers the first getter with the item
//! (it never sits in the queue). If that getter has gone, the item goes to the next, or
//! into the queue: an item is never handed to a caller that is gone.

use parking_lot::Mutex;
use std::collections::VecDeque;

use bytes::Bytes;
use syncman_protocol::{Args, ErrorKind, RemoteError};

use super::timeout::{block_timeout, Wait};
use crate::node::object::{
    fits, CallCtx, Handover, MethodSpec, Outcome, Reply, SessionId, SharedObject, WaiterId,
    WithdrawReason, Withdrawal,
};
use crate::node::wait::WaitQueue;
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("put", 1, 3),
    ("put_nowait", 1, 1),
    ("get", 0, 2),
    ("get_nowait", 0, 0),
    ("qsize", 0, 0),
    ("empty", 0, 0),
    ("full", 0, 0),
    ("task_done", 0, 0),
    ("join", 0, 0),
    // syncman's own: a client whose `get` was answered after it gave up returns the item
    // to the front (bounds are ignored: the item was in the queue a moment ago).
    ("unget", 1, 1),
];

#[derive(Default)]
struct State {
    items: VecDeque<Bytes>,
    /// Parked gets, each with the largest item its caller can receive.
    getters: WaitQueue<usize>,
    putters: WaitQueue<Bytes>,
    joiners: WaitQueue<()>,
    unfinished: u64,
}

pub struct Queue {
    typeid: &'static str,
    maxsize: usize,
    joinable: bool,
    state: Mutex<State>,
}

fn empty() -> RemoteError {
    RemoteError::new(ErrorKind::Empty, "queue is empty")
}

fn full() -> RemoteError {
    RemoteError::new(ErrorKind::Full, "queue is full")
}

impl Queue {
    /// `Queue(maxsize=0)`; `maxsize <= 0` means unbounded, as in Python.
    pub fn new(mut args: Args, joinable: bool) -> Result<Queue, RemoteError> {
        let maxsize = match args.opt_value()? {
            None => 0,
            Some(v) => v
                .as_int()
                .ok_or_else(|| RemoteError::type_error("maxsize must be an integer"))?,
        };
        args.finish()?;
        Ok(Queue {
            typeid: if joinable { "JoinableQueue" } else { "Queue" },
            maxsize: usize::try_from(maxsize).unwrap_or(0),
            joinable,
            state: Mutex::new(State::default()),
        })
    }

    fn is_full(&self, st: &State) -> bool {
        self.maxsize > 0 && st.items.len() >= self.maxsize
    }

    /// Adds a new item: to the first getter still there, else to the back of the queue.
    fn push(&self, st: &mut State, item: Bytes) {
        st.unfinished += 1;
        if let Some(item) = hand_off(st, item) {
            st.items.push_back(item);
        }
    }

    /// After an item left the queue, admit parked putters while there is room.
    fn admit_putters(&self, st: &mut State) {
        while !self.is_full(st) {
            let Some(putter) = st.putters.pop_front() else {
                break;
            };
            let item = putter.want.clone();
            if putter.answer(Ok(encode::nil())).is_ok() {
                self.push(st, item);
            }
        }
    }

    fn put(&self, item: Bytes, wait: Wait, ctx: &CallCtx) -> Outcome {
        let mut st = self.state.lock();
        if !self.is_full(&st) {
            self.push(&mut st, item);
            return Outcome::Ready(Ok(encode::nil()));
        }
        match wait {
            Wait::No => Outcome::Ready(Err(full())),
            Wait::Until(deadline) => st.putters.park(ctx, item, deadline, Handover::Nothing),
        }
    }

    fn get(&self, wait: Wait, ctx: &CallCtx) -> Outcome {
        let mut st = self.state.lock();
        if let Some(front) = st.items.front() {
            // An item the caller could not receive stays at the front.
            if let Err(too_large) = ctx.check_fits(front) {
                return Outcome::Ready(Err(too_large));
            }
            let item = st.items.pop_front();
            self.admit_putters(&mut st);
            return Outcome::Ready(item.ok_or_else(empty));
        }
        match wait {
            Wait::No => Outcome::Ready(Err(empty())),
            Wait::Until(deadline) => {
                st.getters
                    .park(ctx, ctx.reply_limit, deadline, Handover::Item)
            }
        }
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        Ok(match method {
            "put" => {
                let item = args.raw("item")?;
                let wait = block_timeout(&mut args, false)?;
                self.put(item, wait, ctx)
            }
            "put_nowait" => self.put(args.raw("item")?, Wait::No, ctx),
            "get" => {
                let wait = block_timeout(&mut args, false)?;
                self.get(wait, ctx)
            }
            "get_nowait" => self.get(Wait::No, ctx),
            "unget" => {
                let item = args.raw("item")?;
                let mut st = self.state.lock();
                if let Some(item) = hand_off(&mut st, item) {
                    st.items.push_front(item);
                }
                Outcome::Ready(Ok(encode::nil()))
            }
            "qsize" => Outcome::Ready(Ok(encode::int(self.state.lock().items.len() as i128))),
            "empty" => Outcome::Ready(Ok(encode::bool(self.state.lock().items.is_empty()))),
            "full" => Outcome::Ready(Ok(encode::bool(self.is_full(&self.state.lock())))),
            "task_done" if self.joinable => {
                let mut st = self.state.lock();
                if st.unfinished == 0 {
                    return Err(RemoteError::value_error(
                        "task_done() called too many times",
                    ));
                }
                st.unfinished -= 1;
                if st.unfinished == 0 {
                    for joiner in st.joiners.drain() {
                        let _ = joiner.answer(Ok(encode::nil()));
                    }
                }
                Outcome::Ready(Ok(encode::nil()))
            }
            "join" if self.joinable => {
                let mut st = self.state.lock();
                if st.unfinished == 0 {
                    return Ok(Outcome::Ready(Ok(encode::nil())));
                }
                st.joiners.park(ctx, (), None, Handover::Nothing)
            }
            _ => return Err(crate::node::object::no_such_method(self.typeid, method)),
        })
    }
}

impl SharedObject for Queue {
    fn typeid(&self) -> &str {
        self.typeid
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
        if st.getters.remove(waiter).is_some() {
            return Withdrawal::Answer(Err(if why == WithdrawReason::Timeout {
                empty()
            } else {
                why.error()
            }));
        }
        if st.putters.remove(waiter).is_some() {
            return Withdrawal::Answer(Err(if why == WithdrawReason::Timeout {
                full()
            } else {
                why.error()
            }));
        }
        if st.joiners.remove(waiter).is_some() {
            let err = if why == WithdrawReason::Timeout {
                RemoteError::new(ErrorKind::Timeout, "join timed out")
            } else {
                why.error()
            };
            return Withdrawal::Answer(Err(err));
        }
        Withdrawal::AlreadyAnswered
    }

    fn undelivered(&self, handover: Handover, _session: SessionId, reply: Reply) {
        // An item handed to a getter that never received it goes to the next getter or
        // back to the front. It stays counted as unfinished, as it was when put.
        if let (Handover::Item, Ok(item)) = (handover, reply) {
            let mut st = self.state.lock();
            if let Some(item) = hand_off(&mut st, item) {
                st.items.push_front(item);
            }
        }
    }

    fn closed(&self) {
        let mut st = self.state.lock();
        st.getters.close_all();
        st.putters.close_all();
        st.joiners.close_all();
    }

    fn waiting(&self) -> usize {
        let st = self.state.lock();
        st.getters.len() + st.putters.len() + st.joiners.len()
    }

    fn describe(&self) -> String {
        let st = self.state.lock();
        format!(
            "{}, {} items, {} getters and {} putters waiting",
            self.typeid,
            st.items.len(),
            st.getters.len(),
            st.putters.len()
        )
    }
}

/// Gives `item` to the first parked getter whose caller is still there; returns it if
/// there is none. A getter that could not receive the item (over its connection's frame
/// limit) is answered with that error instead, and the item goes on to the next.
fn hand_off(st: &mut State, mut item: Bytes) -> Option<Bytes> {
    while let Some(getter) = st.getters.pop_front() {
        if let Err(too_large) = fits(item.len(), getter.want) {
            let _ = getter.answer(Err(too_large));
            continue;
        }
        match getter.answer(Ok(item)) {
            Ok(()) => return None,
            Err(Ok(back)) => item = back,
            // We sent `Ok`, so `Err` comes back only as `Ok`.
            Err(Err(_)) => return None,
        }
    }
    Some(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::objects::testing::{args, park, ready};
    use syncman_protocol::Value;

    fn int(i: i128) -> Bytes {
        Value::Int(i).to_bytes()
    }

    #[test]
    fn a_withdrawn_getter_never_receives_an_item() {
        let q = Queue::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        let p = park(q.call("get", Args::empty(), &mut ctx));
        assert!(
            matches!(q.withdraw(p.waiter, WithdrawReason::Timeout), Withdrawal::Answer(Err(e)) if e.kind == ErrorKind::Empty)
        );
        ready(q.call("put", args(&[Value::Int(1)]), &mut ctx)).unwrap();
        assert_eq!(
            ready(q.call("qsize", Args::empty(), &mut ctx)).unwrap(),
            int(1)
        );
        // Withdrawing again finds nothing: the waiter is gone for good.
        assert!(matches!(
            q.withdraw(p.waiter, WithdrawReason::Cancelled),
            Withdrawal::AlreadyAnswered
        ));
    }

    #[test]
    fn an_undelivered_item_returns_to_the_front() {
        let q = Queue::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        let mut p = park(q.call("get", Args::empty(), &mut ctx));
        ready(q.call("put", args(&[Value::Int(1)]), &mut ctx)).unwrap();
        // The getter was answered before its caller gave up.
        assert!(matches!(
            q.withdraw(p.waiter, WithdrawReason::Cancelled),
            Withdrawal::AlreadyAnswered
        ));
        ready(q.call("put", args(&[Value::Int(2)]), &mut ctx)).unwrap();
        let reply = p.reply.try_recv().unwrap();
        q.undelivered(p.handover, 1, reply);
        assert_eq!(
            ready(q.call("get_nowait", Args::empty(), &mut ctx)).unwrap(),
            int(1)
        );
        assert_eq!(
            ready(q.call("get_nowait", Args::empty(), &mut ctx)).unwrap(),
            int(2)
        );
    }

    #[test]
    fn a_getter_whose_caller_is_gone_is_skipped() {
        let q = Queue::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        let gone = park(q.call("get", Args::empty(), &mut ctx));
        drop(gone.reply);
        let mut live = park(q.call("get", Args::empty(), &mut ctx));
        ready(q.call("put", args(&[Value::Int(7)]), &mut ctx)).unwrap();
        assert_eq!(live.reply.try_recv().unwrap().unwrap(), int(7));
        assert_eq!(
            ready(q.call("qsize", Args::empty(), &mut ctx)).unwrap(),
            int(0)
        );
    }

    #[test]
    fn getters_are_served_in_arrival_order() {
        let q = Queue::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        let mut getters: Vec<_> = (0..4)
            .map(|_| park(q.call("get", Args::empty(), &mut ctx)))
            .collect();
        for i in 0..4 {
            ready(q.call("put", args(&[Value::Int(i)]), &mut ctx)).unwrap();
        }
        for (i, g) in getters.iter_mut().enumerate() {
            assert_eq!(g.reply.try_recv().unwrap().unwrap(), int(i as i128));
        }
    }

    #[test]
    fn a_closed_queue_parks_nobody() {
        let q = Queue::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        q.closed();
        let e = ready(q.call("get", Args::empty(), &mut ctx)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[test]
    fn bounded_put_parks_and_is_admitted_in_order() {
        let q = Queue::new(args(&[Value::Int(1)]), false).unwrap();
        let mut ctx = CallCtx::new(1);
        ready(q.call("put", args(&[Value::Int(1)]), &mut ctx)).unwrap();
        let e = ready(q.call("put_nowait", args(&[Value::Int(9)]), &mut ctx)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Full);
        let mut p2 = park(q.call("put", args(&[Value::Int(2)]), &mut ctx));
        assert_eq!(
            ready(q.call("get", Args::empty(), &mut ctx)).unwrap(),
            int(1)
        );
        assert!(p2.reply.try_recv().unwrap().is_ok(), "parked put admitted");
        assert_eq!(
            ready(q.call("get", Args::empty(), &mut ctx)).unwrap(),
            int(2)
        );
    }
}

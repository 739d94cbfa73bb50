//! `Queue` and `JoinableQueue`: FIFO with an optional bound, blocking `get`/`put` that park
//! instead of holding a thread, and `task_done`/`join`. The two typeids are one type, as in
//! CPython, whose `SyncManager` registers `queue.Queue` under both names: a plain `Queue`
//! has `task_done` and `join` too.
//!
//! Hand-off is direct: a `put` with getters waiting answers the first getter with the item
//! (it never sits in the queue). If that getter has gone, the item goes to the next, or
//! into the queue: an item is never handed to a caller that is gone.
//!
//! # Leases
//! `get_lease` hands an item out with a receipt and keeps a copy: `ack(receipt)` drops it
//! (the item was processed), `nack(receipt)` puts it back at the front, and so does the end
//! of the holder's session. A consumer killed mid-item loses nothing: at-least-once. A
//! leased item keeps its slot in a bounded queue, so it can always come back.

use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use syncman_protocol::{Args, ErrorKind, RemoteError};

use super::timeout::{queue_wait, Wait};
use crate::node::budget::{ByteBudget, HeldBytes};
use crate::node::object::{
    fits, CallCtx, Handover, MethodSpec, Outcome, Reply, SessionId, SharedObject, WaiterId,
    WithdrawReason, Withdrawal,
};
use crate::node::wait::WaitQueue;
use syncman_protocol::value::{encode, split_array};

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
    // syncman's own: at-least-once gets (module docs).
    ("get_lease", 0, 2),
    ("ack", 1, 1),
    ("nack", 1, 1),
];

/// What a parked get wants.
#[derive(Clone, Copy)]
struct Want {
    /// The largest item its caller can receive.
    limit: usize,
    /// Whether it takes the item on a lease.
    lease: bool,
}

/// An item lent out by `get_lease`, until acknowledged or given back.
struct Lease {
    session: SessionId,
    item: Bytes,
}

#[derive(Default)]
struct State {
    items: VecDeque<Bytes>,
    getters: WaitQueue<Want>,
    putters: WaitQueue<Bytes>,
    joiners: WaitQueue<()>,
    unfinished: u64,
    /// Items lent out, by receipt; in receipt order, so the oldest goes back first.
    leases: BTreeMap<u64, Lease>,
    last_receipt: u64,
    /// Bytes of the items it holds: queued, leased, and in parked puts; charged to the
    /// node's budget. An item handed straight to a getter is never charged.
    held: HeldBytes,
}

impl State {
    /// Lends `item` to `session`: the answer `[receipt, item]`.
    fn lend(&mut self, session: SessionId, item: Bytes) -> (u64, Bytes) {
        self.last_receipt += 1;
        let receipt = self.last_receipt;
        let answer = encode::array([encode::int(receipt as i128), item.clone()].iter());
        self.leases.insert(receipt, Lease { session, item });
        (receipt, answer)
    }

    /// Puts returned items back at the front, oldest first, each to a waiting getter if
    /// there is one. The items are charged to `held` already.
    fn give_back(&mut self, items: impl IntoIterator<Item = Bytes>) {
        let mut kept = Vec::new();
        for item in items {
            if let Some(item) = self.place(item) {
                kept.push(item);
            }
        }
        while let Some(item) = kept.pop() {
            self.items.push_front(item);
        }
    }

    /// Hands a charged item to the first getter still there; returns it if there is none.
    /// An item handed out (not lent) leaves the charge.
    fn place(&mut self, item: Bytes) -> Option<Bytes> {
        let len = item.len();
        match hand_off(self, item) {
            Placed::Delivered => {
                self.held.shrink(len);
                None
            }
            Placed::Lent => None,
            Placed::Kept(item) => Some(item),
        }
    }
}

fn no_such_lease(receipt: u64) -> RemoteError {
    RemoteError::value_error(format!(
        "no lease {receipt}: already acknowledged or given back (its session ended, \
         and the item went back to the queue)"
    ))
}

pub struct Queue {
    typeid: &'static str,
    maxsize: usize,
    state: Mutex<State>,
}

fn empty() -> RemoteError {
    RemoteError::new(ErrorKind::Empty, "queue is empty")
}

fn full() -> RemoteError {
    RemoteError::new(ErrorKind::Full, "queue is full")
}

impl Queue {
    /// `Queue(maxsize=0)`; `maxsize <= 0` means unbounded, as in Python. `joinable` only
    /// chooses the typeid it answers to.
    pub fn new(mut args: Args<'_>, joinable: bool) -> Result<Queue, RemoteError> {
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
            state: Mutex::new(State::default()),
        })
    }

    /// Leased items keep their slots, so they can always come back.
    fn is_full(&self, st: &State) -> bool {
        self.maxsize > 0 && st.items.len() + st.leases.len() >= self.maxsize
    }

    /// Adds a new item, charged already: to the first getter still there, else to the back
    /// of the queue.
    fn push(&self, st: &mut State, item: Bytes) {
        st.unfinished += 1;
        if let Some(item) = st.place(item) {
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
            } else {
                // Its caller is gone: the put never happened.
                st.held.shrink(item.len());
            }
        }
    }

    fn put(&self, item: Bytes, wait: Wait, ctx: &CallCtx) -> Outcome {
        let mut st = self.state.lock();
        let len = item.len();
        if !self.is_full(&st) {
            if let Err(e) = st.held.grow(len) {
                return Outcome::Ready(Err(e));
            }
            self.push(&mut st, item);
            return Outcome::Ready(Ok(encode::nil()));
        }
        match wait {
            Wait::No => Outcome::Ready(Err(full())),
            Wait::Until(deadline) => {
                // A parked put holds its item: it is charged while it waits.
                if let Err(e) = st.held.grow(len) {
                    return Outcome::Ready(Err(e));
                }
                let parked = st.putters.park(ctx, item, deadline, Handover::Nothing);
                if matches!(parked, Outcome::Ready(_)) {
                    st.held.shrink(len);
                }
                parked
            }
        }
    }

    fn get(&self, wait: Wait, ctx: &mut CallCtx, lease: bool) -> Outcome {
        if lease {
            // Whether answered now or later, the session may hold a lease here.
            ctx.holds_state = true;
        }
        let mut st = self.state.lock();
        if let Some(front) = st.items.front() {
            // An item the caller could not receive stays at the front.
            if let Err(too_large) = ctx.check_fits(front) {
                return Outcome::Ready(Err(too_large));
            }
            let Some(item) = st.items.pop_front() else {
                return Outcome::Ready(Err(empty()));
            };
            let answer = if lease {
                st.lend(ctx.session, item).1
            } else {
                st.held.shrink(item.len());
                self.admit_putters(&mut st);
                item
            };
            return Outcome::Ready(Ok(answer));
        }
        match wait {
            Wait::No => Outcome::Ready(Err(empty())),
            Wait::Until(deadline) => {
                let want = Want {
                    limit: ctx.reply_limit,
                    lease,
                };
                let handover = if lease {
                    Handover::LeasedItem
                } else {
                    Handover::Item
                };
                st.getters.park(ctx, want, deadline, handover)
            }
        }
    }

    /// Ends a lease: `ack` drops the item (its slot frees), `nack` puts it back in front.
    fn settle(&self, receipt: u64, processed: bool) -> Result<Outcome, RemoteError> {
        let mut st = self.state.lock();
        let lease = st
            .leases
            .remove(&receipt)
            .ok_or_else(|| no_such_lease(receipt))?;
        if processed {
            st.held.shrink(lease.item.len());
            self.admit_putters(&mut st);
        } else {
            st.give_back([lease.item]);
        }
        Ok(Outcome::Ready(Ok(encode::nil())))
    }

    fn dispatch(
        &self,
        method: &str,
        mut args: Args<'_>,
        ctx: &mut CallCtx,
    ) -> Result<Outcome, RemoteError> {
        Ok(match method {
            "put" => {
                let item = args.raw("item")?;
                // Python checks a put's timeout only on a bounded queue.
                let wait = queue_wait(&mut args, self.maxsize > 0)?;
                self.put(item, wait, ctx)
            }
            "put_nowait" => self.put(args.raw("item")?, Wait::No, ctx),
            "get" => {
                let wait = queue_wait(&mut args, true)?;
                self.get(wait, ctx, false)
            }
            "get_nowait" => self.get(Wait::No, ctx, false),
            "get_lease" => {
                let wait = queue_wait(&mut args, true)?;
                self.get(wait, ctx, true)
            }
            "ack" | "nack" => {
                let receipt = args
                    .value("receipt")?
                    .as_int()
                    .and_then(|r| u64::try_from(r).ok())
                    .ok_or_else(|| RemoteError::type_error("a receipt is a positive integer"))?;
                args.finish()?;
                self.settle(receipt, method == "ack")?
            }
            "unget" => {
                let item = args.raw("item")?;
                let mut st = self.state.lock();
                st.held.grow(item.len())?;
                st.give_back([item]);
                Outcome::Ready(Ok(encode::nil()))
            }
            "qsize" => Outcome::Ready(Ok(encode::int(self.state.lock().items.len() as i128))),
            "empty" => Outcome::Ready(Ok(encode::bool(self.state.lock().items.is_empty()))),
            "full" => Outcome::Ready(Ok(encode::bool(self.is_full(&self.state.lock())))),
            // Both typeids have them: CPython registers `queue.Queue` as `Queue` and as
            // `JoinableQueue`.
            "task_done" => {
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
            "join" => {
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

    fn call(&self, method: &str, args: Args<'_>, ctx: &mut CallCtx) -> Outcome {
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
        if let Some(putter) = st.putters.remove(waiter) {
            st.held.shrink(putter.want.len());
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
        let Ok(answer) = reply else { return };
        let mut st = self.state.lock();
        match handover {
            // It left the charge when handed out; coming back, it is never refused.
            Handover::Item => {
                st.held.force_grow(answer.len());
                st.give_back([answer]);
            }
            // `[receipt, item]`: the lease ends and its item goes back.
            Handover::LeasedItem => {
                if let Some(lease) = receipt_of(&answer).and_then(|r| st.leases.remove(&r)) {
                    st.give_back([lease.item]);
                }
            }
            _ => {}
        }
    }

    fn session_ended(&self, session: SessionId) {
        let mut st = self.state.lock();
        let receipts: Vec<u64> = st
            .leases
            .iter()
            .filter(|(_, lease)| lease.session == session)
            .map(|(&receipt, _)| receipt)
            .collect();
        let items: Vec<Bytes> = receipts
            .iter()
            .filter_map(|r| st.leases.remove(r))
            .map(|lease| lease.item)
            .collect();
        st.give_back(items);
    }

    fn closed(&self) {
        let mut st = self.state.lock();
        st.leases.clear();
        st.items.clear();
        st.held.clear();
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
            "{}, {} items, {} leased, {} getters and {} putters waiting",
            self.typeid,
            st.items.len(),
            st.leases.len(),
            st.getters.len(),
            st.putters.len()
        )
    }

    fn bind_budget(&self, budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        self.state.lock().held.bind(budget)
    }
}

/// Where [`hand_off`] put an item.
enum Placed {
    /// Handed to a getter: it left the queue.
    Delivered,
    /// Lent to a getter: the queue keeps a copy.
    Lent,
    /// No getter took it: here it is.
    Kept(Bytes),
}

/// Gives `item` to the first parked getter whose caller is still there (on a lease, if it
/// asked for one). A getter that could not receive the item (over its connection's frame
/// limit) is answered with that error instead, and the item goes on to the next.
fn hand_off(st: &mut State, mut item: Bytes) -> Placed {
    while let Some(getter) = st.getters.pop_front() {
        if let Err(too_large) = fits(item.len(), getter.want.limit) {
            let _ = getter.answer(Err(too_large));
            continue;
        }
        if getter.want.lease {
            let (receipt, answer) = st.lend(getter.session, item);
            match getter.answer(Ok(answer)) {
                Ok(()) => return Placed::Lent,
                // Its caller is gone: the lease never began.
                Err(_) => match st.leases.remove(&receipt) {
                    Some(lease) => item = lease.item,
                    None => return Placed::Lent,
                },
            }
            continue;
        }
        match getter.answer(Ok(item)) {
            Ok(()) => return Placed::Delivered,
            Err(Ok(back)) => item = back,
            // We sent `Ok`, so `Err` comes back only as `Ok`.
            Err(Err(_)) => return Placed::Delivered,
        }
    }
    Placed::Kept(item)
}

/// The receipt in a `get_lease` answer, `[receipt, item]`.
fn receipt_of(answer: &Bytes) -> Option<u64> {
    let parts = split_array(answer).ok()??;
    let receipt = syncman_protocol::value::decode(parts.first()?).ok()?;
    receipt.as_int().and_then(|r| u64::try_from(r).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::budget::ByteBudget;
    use crate::node::object::Parked;
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

    /// `[receipt, item]` from a `get_lease` answer.
    fn lease_of(answer: Bytes) -> (u64, Value) {
        match syncman_protocol::value::decode(&answer).unwrap() {
            Value::Array(parts) => match parts.as_slice() {
                [Value::Int(r), item] => (*r as u64, item.clone()),
                other => panic!("not a lease: {other:?}"),
            },
            other => panic!("not a lease: {other:?}"),
        }
    }

    fn receipt_arg(receipt: u64) -> Args<'static> {
        args(&[Value::Int(receipt as i128)])
    }

    #[test]
    fn a_lease_is_acknowledged_once() {
        let q = Queue::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        ready(q.call("put", args(&[Value::Int(1)]), &mut ctx)).unwrap();
        let (receipt, item) =
            lease_of(ready(q.call("get_lease", Args::empty(), &mut ctx)).unwrap());
        assert_eq!(item, Value::Int(1));
        assert!(ctx.holds_state, "the session must be told it holds a lease");
        assert_eq!(
            ready(q.call("qsize", Args::empty(), &mut ctx)).unwrap(),
            int(0)
        );
        ready(q.call("ack", receipt_arg(receipt), &mut ctx)).unwrap();
        let again = ready(q.call("ack", receipt_arg(receipt), &mut ctx)).unwrap_err();
        assert_eq!(again.kind, ErrorKind::ValueError);
        // Acknowledged items never come back.
        q.session_ended(1);
        assert_eq!(
            ready(q.call("qsize", Args::empty(), &mut ctx)).unwrap(),
            int(0)
        );
    }

    #[test]
    fn a_departed_sessions_leases_go_back_to_the_front_in_order() {
        let q = Queue::new(Args::empty(), false).unwrap();
        let (mut a, mut b) = (CallCtx::new(1), CallCtx::new(2));
        for i in 1..=4 {
            ready(q.call("put", args(&[Value::Int(i)]), &mut a)).unwrap();
        }
        let first = lease_of(ready(q.call("get_lease", Args::empty(), &mut a)).unwrap());
        let second = lease_of(ready(q.call("get_lease", Args::empty(), &mut b)).unwrap());
        let third = lease_of(ready(q.call("get_lease", Args::empty(), &mut a)).unwrap());
        assert_eq!(
            (first.1, second.1, third.1),
            (Value::Int(1), Value::Int(2), Value::Int(3))
        );
        q.session_ended(1);
        // a's two items are back in front, oldest first; b's lease stands.
        for want in [1, 3, 4] {
            assert_eq!(
                ready(q.call("get_nowait", Args::empty(), &mut b)).unwrap(),
                int(want)
            );
        }
        ready(q.call("nack", receipt_arg(second.0), &mut b)).unwrap();
        assert_eq!(
            ready(q.call("get_nowait", Args::empty(), &mut b)).unwrap(),
            int(2)
        );
        // a's receipts are void now.
        let late = ready(q.call("ack", receipt_arg(first.0), &mut a)).unwrap_err();
        assert_eq!(late.kind, ErrorKind::ValueError);
    }

    #[test]
    fn a_leased_item_keeps_its_slot_in_a_bounded_queue() {
        let q = Queue::new(args(&[Value::Int(1)]), false).unwrap();
        let mut ctx = CallCtx::new(1);
        ready(q.call("put", args(&[Value::Int(1)]), &mut ctx)).unwrap();
        let (receipt, _) = lease_of(ready(q.call("get_lease", Args::empty(), &mut ctx)).unwrap());
        let full = ready(q.call("put_nowait", args(&[Value::Int(2)]), &mut ctx)).unwrap_err();
        assert_eq!(full.kind, ErrorKind::Full);
        let mut putter = park(q.call("put", args(&[Value::Int(2)]), &mut ctx));
        ready(q.call("ack", receipt_arg(receipt), &mut ctx)).unwrap();
        assert!(
            putter.reply.try_recv().unwrap().is_ok(),
            "the freed slot admits the putter"
        );
        assert_eq!(
            ready(q.call("get_nowait", Args::empty(), &mut ctx)).unwrap(),
            int(2)
        );
    }

    #[test]
    fn a_parked_lease_is_handed_over_once_and_an_undelivered_one_comes_back() {
        let q = Queue::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        let gone = park(q.call("get_lease", Args::empty(), &mut ctx));
        drop(gone.reply);
        let mut live = park(q.call("get_lease", Args::empty(), &mut ctx));
        assert_eq!(live.handover, Handover::LeasedItem);
        ready(q.call("put", args(&[Value::Int(7)]), &mut ctx)).unwrap();
        let answer = live.reply.try_recv().unwrap();
        let (receipt, item) = lease_of(answer.clone().unwrap());
        assert_eq!(item, Value::Int(7));
        // Only the live getter's lease exists: the gone one's never began.
        assert_eq!(q.state.lock().leases.len(), 1);
        // Its caller gave up after the answer was decided: the item goes back.
        q.undelivered(live.handover, 1, answer);
        assert!(q.state.lock().leases.is_empty());
        let void = ready(q.call("ack", receipt_arg(receipt), &mut ctx)).unwrap_err();
        assert_eq!(void.kind, ErrorKind::ValueError);
        assert_eq!(
            ready(q.call("get_nowait", Args::empty(), &mut ctx)).unwrap(),
            int(7)
        );
    }

    /// The largest item `get_lease` hands out under a frame limit still fits that frame
    /// with its receipt, whether the lease is answered at once or to a parked getter: the
    /// room [`fits`] keeps beside an item covers `[receipt, item]` (an array header and a
    /// receipt of up to 9 bytes) and the response envelope (its header, a request id of up
    /// to 9 bytes, the status), so the answer is never replaced by a "too large" error
    /// after the item was lent. One byte more is refused, the item left in the queue.
    #[test]
    fn the_largest_item_a_lease_hands_out_fits_its_frame_with_its_receipt() {
        use bytes::BytesMut;
        use syncman_protocol::frame::encode_frame_with;
        use syncman_protocol::message::encode_response;

        const LIMIT: usize = 4096;
        let largest = (0..=LIMIT).rev().find(|&n| fits(n, LIMIT).is_ok()).unwrap();
        // An item of `len` bytes encoded: a str16 (3-byte header) for these sizes.
        let item = |len: usize| Value::Str("x".repeat(len - 3));
        assert_eq!(item(largest).to_bytes().len(), largest);
        // The payload of the frame the native dialect would send, as `Replies::push` makes
        // it, under the longest request id; `Err` if over the limit.
        let payload = |answer: &Reply| {
            let mut buf = BytesMut::new();
            encode_frame_with(&mut buf, LIMIT, |b| encode_response(b, u64::MAX, answer))
                .map(|()| buf.len() - 4)
        };
        // The longest receipt.
        let queue = || {
            let q = Queue::new(Args::empty(), false).unwrap();
            q.state.lock().last_receipt = u64::MAX - 1;
            q
        };
        let mut reader = CallCtx::new(1);
        reader.reply_limit = LIMIT;
        let mut writer = CallCtx::new(2);
        let check_lent = |q: &Queue, answer: Reply| {
            let len = payload(&answer).expect("the lease's answer fits its frame");
            assert!(len <= LIMIT, "{len}");
            let (receipt, lent) = lease_of(answer.unwrap());
            assert_eq!((receipt, lent), (u64::MAX, item(largest)));
            assert_eq!(q.state.lock().leases.len(), 1);
        };
        let check_refused = |q: &Queue, answer: Reply| {
            assert!(value_error_message(answer).contains("frame limit of 4096"));
            assert!(q.state.lock().leases.is_empty(), "nothing lent");
            assert_eq!(q.state.lock().items.len(), 1, "the item stays queued");
        };

        // Answered at once.
        let q = queue();
        ready(q.call("put", args(&[item(largest)]), &mut writer)).unwrap();
        check_lent(&q, ready(q.call("get_lease", Args::empty(), &mut reader)));
        let q = queue();
        ready(q.call("put", args(&[item(largest + 1)]), &mut writer)).unwrap();
        check_refused(&q, ready(q.call("get_lease", Args::empty(), &mut reader)));

        // Answered to a parked getter, by the put.
        let q = queue();
        let mut getter = park(q.call("get_lease", Args::empty(), &mut reader));
        ready(q.call("put", args(&[item(largest)]), &mut writer)).unwrap();
        check_lent(&q, getter.reply.try_recv().unwrap());
        let q = queue();
        let mut getter = park(q.call("get_lease", Args::empty(), &mut reader));
        ready(q.call("put", args(&[item(largest + 1)]), &mut writer)).unwrap();
        check_refused(&q, getter.reply.try_recv().unwrap());
    }

    /// What the queue should be charged: queued, leased and parked-put items.
    fn expected_bytes(q: &Queue) -> usize {
        let st = q.state.lock();
        st.items.iter().map(Bytes::len).sum::<usize>()
            + st.leases.values().map(|l| l.item.len()).sum::<usize>()
            + st.putters.iter().map(|p| p.want.len()).sum::<usize>()
    }

    /// A long random mix of every way items enter and leave a bounded queue: the charge
    /// always equals what the queue holds, the node's budget agrees, and it ends at 0.
    #[test]
    fn the_byte_charge_follows_every_way_items_come_and_go() {
        let budget = ByteBudget::new(usize::MAX);
        let q = Queue::new(args(&[Value::Int(4)]), false).unwrap();
        q.bind_budget(&budget).unwrap();
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut parked: Vec<Parked> = Vec::new();
        let mut receipts = Vec::new();
        for step in 0..5_000 {
            let session = 1 + next(3);
            let mut ctx = CallCtx::new(session);
            let item = Value::Str("x".repeat(next(40) as usize));
            match next(10) {
                0 | 1 => match q.call("put", args(&[item]), &mut ctx) {
                    Outcome::Park(p) => parked.push(p),
                    Outcome::Ready(r) => assert!(r.is_ok()),
                },
                2 => {
                    let _ = q.call("get_nowait", Args::empty(), &mut ctx);
                }
                3 => {
                    if let Outcome::Ready(Ok(answer)) =
                        q.call("get_lease", args(&[Value::Bool(false)]), &mut ctx)
                    {
                        receipts.push(lease_of(answer).0);
                    }
                }
                4 if !receipts.is_empty() => {
                    let r = receipts.swap_remove(next(receipts.len() as u64) as usize);
                    let method = if next(2) == 0 { "ack" } else { "nack" };
                    let _ = q.call(method, receipt_arg(r), &mut ctx);
                }
                5 => {
                    if let Outcome::Park(p) = q.call("get", Args::empty(), &mut ctx) {
                        parked.push(p);
                    }
                }
                6 if !parked.is_empty() => {
                    // A parked call withdrawn, or answered and then not delivered.
                    let p = parked.swap_remove(next(parked.len() as u64) as usize);
                    if let Withdrawal::AlreadyAnswered =
                        q.withdraw(p.waiter, WithdrawReason::Cancelled)
                    {
                        let mut rx = p.reply;
                        if let Ok(reply) = rx.try_recv() {
                            q.undelivered(p.handover, session, reply);
                        }
                    }
                }
                7 => q.session_ended(session),
                8 => {
                    let _ = q.call("unget", args(&[item]), &mut ctx);
                }
                _ => {}
            }
            let held = q.state.lock().held.bytes();
            assert_eq!(held, expected_bytes(&q), "step {step}");
            assert_eq!(budget.used(), held, "step {step}");
        }
        drop(parked);
        drop(q);
        assert_eq!(budget.used(), 0, "a dropped queue gives every byte back");
    }

    #[test]
    fn a_put_over_the_budget_fails_and_changes_nothing() {
        let budget = ByteBudget::new(10);
        let q = Queue::new(Args::empty(), false).unwrap();
        q.bind_budget(&budget).unwrap();
        let mut ctx = CallCtx::new(1);
        let big = Value::Str("y".repeat(20));
        let e = ready(q.call("put", args(&[big]), &mut ctx)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Other("MemoryError".into()));
        assert_eq!(
            ready(q.call("qsize", Args::empty(), &mut ctx)).unwrap(),
            int(0)
        );
        assert_eq!(budget.used(), 0);
    }
    fn value_error_message(reply: Reply) -> String {
        let e = reply.unwrap_err();
        assert_eq!(e.kind, ErrorKind::ValueError);
        e.message
    }

    const NEGATIVE_TIMEOUT: &str = "'timeout' must be a non-negative number";

    #[test]
    fn a_negative_timeout_is_a_value_error_for_a_blocking_get_even_with_items() {
        // Python 3.11: Queue().get(timeout=-1) -> ValueError, whether or not it has items;
        // get(False, -1) ignores the timeout: Empty, or the item.
        let q = Queue::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        let minus_one = || args(&[Value::Bool(true), Value::Int(-1)]);
        for method in ["get", "get_lease"] {
            let reply = ready(q.call(method, minus_one(), &mut ctx));
            assert_eq!(value_error_message(reply), NEGATIVE_TIMEOUT, "{method}");
        }
        let e = ready(q.call("get", args(&[Value::Bool(false), Value::Int(-1)]), &mut ctx));
        assert_eq!(e.unwrap_err().kind, ErrorKind::Empty);
        ready(q.call("put", args(&[Value::Int(1)]), &mut ctx)).unwrap();
        let reply = ready(q.call("get", minus_one(), &mut ctx));
        assert_eq!(value_error_message(reply), NEGATIVE_TIMEOUT);
        let reply = ready(q.call(
            "get",
            args(&[Value::Bool(false), Value::Float(-0.5)]),
            &mut ctx,
        ));
        assert_eq!(reply.unwrap(), int(1));
    }

    #[test]
    fn a_negative_put_timeout_is_a_value_error_only_on_a_bounded_queue() {
        // Python 3.11: Queue().put(1, timeout=-1) -> None; Queue(1).put(1, timeout=-1) ->
        // ValueError even with room; Queue(1) full: put(2, False, -1) -> Full.
        let mut ctx = CallCtx::new(1);
        let put = |item: i128, block: bool, timeout: i128| {
            args(&[Value::Int(item), Value::Bool(block), Value::Int(timeout)])
        };
        let unbounded = Queue::new(Args::empty(), false).unwrap();
        ready(unbounded.call("put", put(1, true, -1), &mut ctx)).unwrap();
        assert_eq!(
            ready(unbounded.call("qsize", Args::empty(), &mut ctx)).unwrap(),
            int(1)
        );
        let bounded = Queue::new(args(&[Value::Int(1)]), false).unwrap();
        let reply = ready(bounded.call("put", put(1, true, -1), &mut ctx));
        assert_eq!(value_error_message(reply), NEGATIVE_TIMEOUT);
        assert_eq!(
            ready(bounded.call("qsize", Args::empty(), &mut ctx)).unwrap(),
            int(0),
            "a refused put adds nothing"
        );
        ready(bounded.call("put", put(1, false, -1), &mut ctx)).unwrap();
        let e = ready(bounded.call("put", put(2, false, -1), &mut ctx)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Full);
        let reply = ready(bounded.call("put", put(2, true, -1), &mut ctx));
        assert_eq!(value_error_message(reply), NEGATIVE_TIMEOUT);
    }

    #[test]
    fn a_zero_timeout_is_a_poll() {
        let q = Queue::new(args(&[Value::Int(1)]), false).unwrap();
        let mut ctx = CallCtx::new(1);
        let zero = [Value::Bool(true), Value::Int(0)];
        let e = ready(q.call("get", args(&zero), &mut ctx)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Empty);
        let put = |item: i128| args(&[Value::Int(item), Value::Bool(true), Value::Float(0.0)]);
        ready(q.call("put", put(1), &mut ctx)).unwrap();
        let e = ready(q.call("put", put(2), &mut ctx)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Full);
        assert_eq!(ready(q.call("get", args(&zero), &mut ctx)).unwrap(), int(1));
    }

    #[test]
    fn a_plain_queue_has_task_done_and_join() {
        // CPython registers queue.Queue as both 'Queue' and 'JoinableQueue'.
        let q = Queue::new(Args::empty(), false).unwrap();
        let mut ctx = CallCtx::new(1);
        let too_many = ready(q.call("task_done", Args::empty(), &mut ctx));
        assert_eq!(
            value_error_message(too_many),
            "task_done() called too many times"
        );
        ready(q.call("join", Args::empty(), &mut ctx)).unwrap();
        ready(q.call("put", args(&[Value::Int(1)]), &mut ctx)).unwrap();
        let mut joiner = park(q.call("join", Args::empty(), &mut ctx));
        ready(q.call("get", Args::empty(), &mut ctx)).unwrap();
        assert!(joiner.reply.try_recv().is_err(), "the item is not done yet");
        ready(q.call("task_done", Args::empty(), &mut ctx)).unwrap();
        assert!(joiner.reply.try_recv().unwrap().is_ok());
        let again = ready(q.call("task_done", Args::empty(), &mut ctx));
        assert_eq!(
            value_error_message(again),
            "task_done() called too many times"
        );
    }
}

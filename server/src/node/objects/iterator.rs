//! `Iterator`: the keys of a dict as they were when iteration began, handed out one by one
//! (CPython's `dict.__iter__`, which its clients reach through an `Iterator` proxy). Like a
//! Python dict iterator it holds its dict: the dict lives as long as the iterator, even when
//! the proxy that made it is gone (`for k in m.dict(...)`), and a change in the dict's size
//! is Python's "dictionary changed size during iteration".

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use syncman_protocol::value::{decode, split_array};
use syncman_protocol::{Args, ErrorKind, RemoteError};

use crate::node::backend::ObjectId;
use crate::node::budget::{ByteBudget, HeldBytes};
use crate::node::object::{unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject};
use crate::node::registry::Objects;

const METHODS: &[MethodSpec] = &[("__next__", 0, 0)];

pub struct KeyIterator {
    dict: Arc<dyn SharedObject>,
    /// The dict's size when iteration began.
    len: i128,
    state: Mutex<State>,
}

struct State {
    keys: VecDeque<Bytes>,
    held: HeldBytes,
}

impl KeyIterator {
    /// `Iterator(keys, dict_id, dict_len)`: `dict_id` names a dict on this node.
    pub fn new(mut args: Args<'_>, objects: &dyn Objects) -> Result<KeyIterator, RemoteError> {
        let keys = args.raw("keys")?;
        let dict_id = args.int("dict")?;
        let len = args.int("len")?;
        args.finish()?;
        let dict = ObjectId::try_from(dict_id)
            .ok()
            .and_then(|id| objects.find(id))
            .ok_or_else(|| RemoteError::key_error(format!("no object {dict_id} to iterate")))?;
        let keys: VecDeque<Bytes> = split_array(&keys)?
            .ok_or_else(|| RemoteError::type_error("an iterator needs a list of keys"))?
            .into();
        let mut held = HeldBytes::default();
        held.force_grow(keys.iter().map(Bytes::len).sum());
        Ok(KeyIterator {
            dict,
            len,
            state: Mutex::new(State { keys, held }),
        })
    }

    /// The dict's size now; `None` if it does not say.
    fn dict_len(&self, ctx: &CallCtx) -> Option<i128> {
        match self
            .dict
            .call("__len__", Args::empty(), &mut CallCtx::new(ctx.session))
        {
            Outcome::Ready(Ok(len)) => decode(&len).ok()?.as_int(),
            _ => None,
        }
    }

    fn dispatch(&self, method: &str, ctx: &CallCtx) -> Reply {
        match method {
            "__next__" => {
                if self.dict_len(ctx) != Some(self.len) {
                    return Err(RemoteError::runtime_error(
                        "dictionary changed size during iteration",
                    ));
                }
                let mut st = self.state.lock();
                let key = st.keys.pop_front().ok_or_else(|| {
                    RemoteError::new(ErrorKind::Other("StopIteration".into()), "")
                })?;
                st.held.shrink(key.len());
                Ok(key)
            }
            _ => unknown_method("Iterator", method),
        }
    }
}

impl SharedObject for KeyIterator {
    fn typeid(&self) -> &str {
        "Iterator"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, _args: Args<'_>, ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, ctx))
    }

    fn bind_budget(&self, budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        self.state.lock().held.bind(budget)
    }

    fn describe(&self) -> String {
        format!("Iterator, {} keys left", self.state.lock().keys.len())
    }
}

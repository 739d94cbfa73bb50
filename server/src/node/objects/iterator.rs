//! `Iterator`: the keys of a dict as they were when iteration began, handed out one by one
//! (CPython's `dict.__iter__`, which its clients reach through an `Iterator` proxy). It
//! remembers its dict and the dict's size then, so the pickle dialect can raise Python's
//! "dictionary changed size during iteration" as a dict iterator would.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use syncman_protocol::value::{encode, split_array};
use syncman_protocol::{Args, ErrorKind, RemoteError};

use crate::node::budget::{ByteBudget, HeldBytes};
use crate::node::object::{unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject};

const METHODS: &[MethodSpec] = &[("__next__", 0, 0), ("source", 0, 0)];

pub struct KeyIterator {
    /// `[dict id, dict size at the start]`.
    source: Bytes,
    state: Mutex<State>,
}

struct State {
    keys: VecDeque<Bytes>,
    held: HeldBytes,
}

impl KeyIterator {
    /// `Iterator(keys, dict_id, dict_len)`.
    pub fn new(mut args: Args) -> Result<KeyIterator, RemoteError> {
        let keys = args.raw("keys")?;
        let dict = args.int("dict")?;
        let len = args.int("len")?;
        args.finish()?;
        let keys: VecDeque<Bytes> = split_array(&keys)?
            .ok_or_else(|| RemoteError::type_error("an iterator needs a list of keys"))?
            .into();
        let mut held = HeldBytes::default();
        held.force_grow(keys.iter().map(Bytes::len).sum());
        Ok(KeyIterator {
            source: encode::array([encode::int(dict), encode::int(len)].iter()),
            state: Mutex::new(State { keys, held }),
        })
    }
}

impl SharedObject for KeyIterator {
    fn typeid(&self) -> &str {
        "Iterator"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, _args: Args, _ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method))
    }

    fn bind_budget(&self, budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        self.state.lock().held.bind(budget)
    }

    fn describe(&self) -> String {
        format!("Iterator, {} keys left", self.state.lock().keys.len())
    }
}

impl KeyIterator {
    fn dispatch(&self, method: &str) -> Reply {
        match method {
            "__next__" => {
                let mut st = self.state.lock();
                let key = st.keys.pop_front().ok_or_else(|| {
                    RemoteError::new(ErrorKind::Other("StopIteration".into()), "")
                })?;
                st.held.shrink(key.len());
                Ok(key)
            }
            "source" => Ok(self.source.clone()),
            _ => unknown_method("Iterator", method),
        }
    }
}

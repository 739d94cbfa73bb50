//! `Value`: one shared value, as `SyncManager.Value(typecode, value)`. Like CPython's
//! manager, the typecode is kept for reference and not enforced.

use parking_lot::Mutex;

use bytes::Bytes;
use syncman_protocol::{Args, RemoteError};

use crate::node::object::{unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject};
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[("get", 0, 0), ("set", 1, 1)];

pub struct ValueCell {
    typecode: Bytes,
    value: Mutex<Bytes>,
}

impl ValueCell {
    /// `Value(typecode, value)`.
    pub fn new(mut args: Args) -> Result<ValueCell, RemoteError> {
        let typecode = args.raw("typecode")?;
        let value = args.raw("value")?;
        args.finish()?;
        Ok(ValueCell {
            typecode,
            value: Mutex::new(value),
        })
    }

    fn dispatch(&self, method: &str, args: &mut Args) -> Reply {
        match method {
            "get" => Ok(self.value.lock().clone()),
            "set" => {
                let v = args.raw("value")?;
                *self.value.lock() = v;
                Ok(encode::nil())
            }
            _ => unknown_method("Value", method),
        }
    }
}

impl SharedObject for ValueCell {
    fn typeid(&self) -> &str {
        "Value"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, mut args: Args, _ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, &mut args))
    }

    fn describe(&self) -> String {
        let tc = syncman_protocol::value::decode(&self.typecode)
            .map(|v| v.py_repr())
            .unwrap_or_default();
        format!("Value({tc})")
    }
}

//! `Value`: one shared value, as `SyncManager.Value(typecode, value)`. Like CPython's
//! manager, the typecode is kept for reference and not enforced.

use parking_lot::Mutex;
use std::sync::Arc;

use bytes::Bytes;
use syncman_protocol::{Args, RemoteError};

use crate::node::budget::{ByteBudget, HeldBytes};
use crate::node::object::{unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject};
use syncman_protocol::value::encode;

/// `typecode` is syncman's own: a copy of the object (CPython's `#GETVALUE`) carries it.
const METHODS: &[MethodSpec] = &[("get", 0, 0), ("set", 1, 1), ("typecode", 0, 0)];

pub struct ValueCell {
    typecode: Bytes,
    value: Mutex<Held>,
}

/// The value and its encoded size, charged to the node's budget.
struct Held {
    value: Bytes,
    held: HeldBytes,
}

impl ValueCell {
    /// `Value(typecode, value, lock=True)`: the lock argument is accepted and ignored, as
    /// CPython's `SyncManager.Value` ignores it (the node serialises every call anyway).
    pub fn new(mut args: Args<'_>) -> Result<ValueCell, RemoteError> {
        let typecode = args.raw("typecode")?;
        let value = args.raw("value")?;
        let _lock = args.opt_raw();
        args.finish()?;
        let mut held = HeldBytes::default();
        held.force_grow(typecode.len() + value.len());
        Ok(ValueCell {
            typecode,
            value: Mutex::new(Held { value, held }),
        })
    }

    fn dispatch(&self, method: &str, args: &mut Args<'_>) -> Reply {
        match method {
            "get" => Ok(self.value.lock().value.clone()),
            "typecode" => Ok(self.typecode.clone()),
            "set" => {
                let v = args.raw("value")?;
                let mut cell = self.value.lock();
                let old = cell.value.len();
                cell.held.replace(old, v.len())?;
                cell.value = v;
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

    fn call(&self, method: &str, mut args: Args<'_>, _ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, &mut args))
    }

    fn bind_budget(&self, budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        self.value.lock().held.bind(budget)
    }

    fn describe(&self) -> String {
        let tc = syncman_protocol::value::decode(&self.typecode)
            .map(|v| v.py_repr())
            .unwrap_or_default();
        format!("Value({tc})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::objects::testing::args;
    use syncman_protocol::{ErrorKind, Value};

    fn cell(typecode: &str, value: Value) -> ValueCell {
        ValueCell::new(args(&[Value::Str(typecode.into()), value])).unwrap()
    }

    fn call(v: &ValueCell, method: &str, a: Args<'_>) -> Reply {
        match v.call(method, a, &mut CallCtx::new(1)) {
            Outcome::Ready(r) => r,
            Outcome::Park(_) => panic!("a Value never parks"),
        }
    }

    #[test]
    fn get_and_set_round_trip_the_exact_bytes() {
        let v = cell("i", Value::Int(5));
        assert_eq!(call(&v, "get", Args::empty()).unwrap(), encode::int(5));
        // 1 as a uint16 (0xcd 0x00 0x01): not the shortest form, and kept as sent.
        let wide_one = Bytes::from_static(&[0x91, 0xcd, 0x00, 0x01]);
        let set = call(&v, "set", Args::from_array(&wide_one).unwrap());
        assert_eq!(set.unwrap(), encode::nil());
        assert_eq!(
            call(&v, "get", Args::empty()).unwrap(),
            Bytes::from_static(&[0xcd, 0x00, 0x01])
        );
    }

    #[test]
    fn the_typecode_is_kept_but_not_enforced() {
        let v = cell("i", Value::Str("not an int".into()));
        let get = |v: &ValueCell| {
            syncman_protocol::value::decode(&call(v, "get", Args::empty()).unwrap()).unwrap()
        };
        assert_eq!(get(&v), Value::Str("not an int".into()));
        call(&v, "set", args(&[Value::Float(1.5)])).unwrap();
        assert_eq!(get(&v), Value::Float(1.5));
        call(&v, "set", args(&[Value::Int(1 << 40)])).unwrap();
        assert_eq!(get(&v), Value::Int(1 << 40));
    }

    #[test]
    fn describe_shows_the_typecode() {
        assert_eq!(cell("d", Value::Float(0.5)).describe(), "Value('d')");
    }

    #[test]
    fn the_constructor_needs_a_typecode_and_a_value() {
        let e = ValueCell::new(args(&[Value::Str("i".into())]))
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::TypeError);
        let e = ValueCell::new(Args::empty()).err().unwrap();
        assert_eq!(e.kind, ErrorKind::TypeError);
    }

    #[test]
    fn a_lock_argument_is_accepted_and_ignored() {
        for lock in [Value::Bool(false), Value::Bool(true)] {
            let v = ValueCell::new(args(&[Value::Str("i".into()), Value::Int(1), lock])).unwrap();
            assert_eq!(call(&v, "get", Args::empty()).unwrap(), encode::int(1));
        }
        let four = args(&[
            Value::Str("i".into()),
            Value::Int(1),
            Value::Bool(false),
            Value::Nil,
        ]);
        let e = ValueCell::new(four).err().unwrap();
        assert_eq!(e.kind, ErrorKind::TypeError);
    }
}

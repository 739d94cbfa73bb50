//! `Array`: a fixed-length typed array, as `SyncManager.Array(typecode, sequence)` (an
//! `array.array`). The typecode is enforced: integer codes check their C range, float codes
//! store floats (an int assigned to a `'d'` array reads back as a float, as in Python).

use parking_lot::Mutex;
use std::sync::Arc;

use bytes::Bytes;
use syncman_protocol::value::{decode, split_array};
use syncman_protocol::{Args, ErrorKind, RemoteError, Value};

use super::list::{index_arg, slice_positions, Index};
use crate::node::budget::{ByteBudget, HeldBytes};
use crate::node::object::{unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject};
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("__len__", 0, 0),
    ("__getitem__", 1, 1),
    ("__setitem__", 2, 2),
    ("tolist", 0, 0),
    // syncman's own: a copy of the object (CPython's `#GETVALUE`) carries it.
    ("typecode", 0, 0),
];

#[derive(Clone, Copy)]
enum Kind {
    Int { min: i128, max: i128 },
    Float { single: bool },
}

fn kind_of(typecode: &str) -> Result<Kind, RemoteError> {
    let int = |min: i128, max: i128| Kind::Int { min, max };
    Ok(match typecode {
        "b" => int(i8::MIN as i128, i8::MAX as i128),
        "B" => int(0, u8::MAX as i128),
        "h" => int(i16::MIN as i128, i16::MAX as i128),
        "H" => int(0, u16::MAX as i128),
        "i" => int(i32::MIN as i128, i32::MAX as i128),
        "I" => int(0, u32::MAX as i128),
        // C long is 64 bits on the LP64 platforms syncman runs on.
        "l" | "q" => int(i64::MIN as i128, i64::MAX as i128),
        "L" | "Q" => int(0, u64::MAX as i128),
        "f" => Kind::Float { single: true },
        "d" => Kind::Float { single: false },
        other => {
            return Err(RemoteError::value_error(format!(
                "bad typecode (must be b, B, h, H, i, I, l, L, q, Q, f or d), not {other:?}"
            )))
        }
    })
}

fn coerce(kind: Kind, raw: &Bytes) -> Result<Bytes, RemoteError> {
    let v = decode(raw)?;
    // A bool is an int to Python's array: array('b', [True]) holds 1, array('d', [True]) 1.0.
    if let Value::Bool(b) = v {
        return coerce(kind, &Value::Int(b as i128).to_bytes());
    }
    match (kind, &v) {
        (Kind::Int { min, max }, Value::Int(i)) => {
            if (min..=max).contains(i) {
                Ok(raw.clone())
            } else {
                Err(RemoteError::new(
                    ErrorKind::OverflowError,
                    format!("{i} is out of range for this array"),
                ))
            }
        }
        (Kind::Float { single }, Value::Int(_) | Value::Float(_)) => {
            let f = match v {
                Value::Int(i) => i as f64,
                Value::Float(f) => f,
                _ => unreachable!("matched above"),
            };
            let f = if single { f as f32 as f64 } else { f };
            Ok(Value::Float(f).to_bytes())
        }
        (Kind::Int { .. }, _) => Err(RemoteError::type_error(format!(
            "'{}' object cannot be interpreted as an integer",
            v.type_name()
        ))),
        (Kind::Float { .. }, _) => Err(RemoteError::type_error(format!(
            "must be real number, not {}",
            v.type_name()
        ))),
    }
}

pub struct Array {
    typecode: String,
    kind: Kind,
    items: Mutex<Vec<Bytes>>,
    /// Charged once: the array's length is fixed, and no element encodes to more than
    /// [`MAX_ELEMENT_BYTES`].
    held: Mutex<HeldBytes>,
}

/// The longest encoding of an array element (a 64-bit number: marker and 8 bytes).
const MAX_ELEMENT_BYTES: usize = 9;

impl Array {
    /// `Array(typecode, sequence, lock=True)`: the lock argument is accepted and ignored,
    /// as CPython's `SyncManager.Array` ignores it (the node serialises every call anyway).
    pub fn new(mut args: Args<'_>) -> Result<Array, RemoteError> {
        let typecode = args.string("typecode")?;
        let kind = kind_of(&typecode)?;
        let init = args.raw("sequence")?;
        let _lock = args.opt_raw();
        args.finish()?;
        let items = split_array(&init)?
            .ok_or_else(|| RemoteError::type_error("Array needs a sequence of initial values"))?
            .iter()
            .map(|raw| coerce(kind, raw))
            .collect::<Result<Vec<_>, _>>()?;
        let mut held = HeldBytes::default();
        held.force_grow(items.len() * MAX_ELEMENT_BYTES);
        Ok(Array {
            typecode,
            kind,
            items: Mutex::new(items),
            held: Mutex::new(held),
        })
    }

    fn dispatch(&self, method: &str, args: &mut Args<'_>) -> Reply {
        match method {
            "__len__" => Ok(encode::int(self.items.lock().len() as i128)),
            "__getitem__" => {
                let index = index_arg(args.value("index")?, "array")?;
                let items = self.items.lock();
                match index {
                    // A list of the items; CPython's client gets an `array.array` of them.
                    Index::Slice(start, stop, step) => {
                        let (at, _) = slice_positions(start, stop, step, items.len())?;
                        Ok(encode::array(at.iter().map(|&p| &items[p])))
                    }
                    Index::At(i) => at(i, items.len()).map(|p| items[p].clone()),
                }
            }
            "__setitem__" => {
                let Index::At(i) = index_arg(args.value("index")?, "array")? else {
                    return Err(RemoteError::type_error(
                        "syncman's Array does not assign slices; assign items one at a time",
                    ));
                };
                let raw = args.raw("value")?;
                let mut items = self.items.lock();
                // The index first, as CPython: a[5] = 'x' on a short array is an IndexError.
                let p = at(i, items.len())
                    .map_err(|_| RemoteError::index_error("array assignment index out of range"))?;
                items[p] = coerce(self.kind, &raw)?;
                Ok(encode::nil())
            }
            "tolist" => Ok(encode::array(self.items.lock().iter())),
            "typecode" => Ok(encode::str(&self.typecode)),
            _ => unknown_method("Array", method),
        }
    }
}

fn at(i: i128, len: usize) -> Result<usize, RemoteError> {
    let j = if i < 0 { i + len as i128 } else { i };
    if (0..len as i128).contains(&j) {
        Ok(j as usize)
    } else {
        Err(RemoteError::index_error("array index out of range"))
    }
}

impl SharedObject for Array {
    fn typeid(&self) -> &str {
        "Array"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, mut args: Args<'_>, _ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, &mut args))
    }

    fn bind_budget(&self, budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        self.held.lock().bind(budget)
    }

    fn describe(&self) -> String {
        format!(
            "Array('{}'), {} items",
            self.typecode,
            self.items.lock().len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::objects::testing::args;

    fn array(typecode: &str, items: &[Value]) -> Result<Array, RemoteError> {
        Array::new(args(&[
            Value::Str(typecode.into()),
            Value::Array(items.to_vec()),
        ]))
    }

    fn call(a: &Array, method: &str, params: &[Value]) -> Reply {
        match a.call(method, args(params), &mut CallCtx::new(1)) {
            Outcome::Ready(r) => r,
            Outcome::Park(_) => panic!("an array never parks"),
        }
    }

    fn ok(a: &Array, method: &str, params: &[Value]) -> Value {
        decode(&call(a, method, params).unwrap()).unwrap()
    }

    fn ints(items: &[i128]) -> Vec<Value> {
        items.iter().map(|&i| Value::Int(i)).collect()
    }

    #[test]
    fn a_slice_reads_the_items_it_names_as_python_slices_do() {
        let a = array("i", &ints(&[1, 2, 3, 4])).unwrap();
        let slice = |start, stop, step| Value::Slice(start, stop, step);
        assert_eq!(
            ok(&a, "__getitem__", &[slice(None, None, None)]),
            Value::Array(ints(&[1, 2, 3, 4]))
        );
        assert_eq!(
            ok(&a, "__getitem__", &[slice(Some(1), Some(3), None)]),
            Value::Array(ints(&[2, 3]))
        );
        assert_eq!(
            ok(&a, "__getitem__", &[slice(None, None, Some(-2))]),
            Value::Array(ints(&[4, 2]))
        );
        assert_eq!(
            ok(&a, "__getitem__", &[slice(Some(9), None, None)]),
            Value::Array(vec![])
        );
        let zero_step = call(&a, "__getitem__", &[slice(None, None, Some(0))]).unwrap_err();
        assert_eq!(zero_step.kind, ErrorKind::ValueError);
        let by_str = call(&a, "__getitem__", &[Value::Str("x".into())]).unwrap_err();
        assert_eq!(by_str.kind, ErrorKind::TypeError);
        let assigned = call(
            &a,
            "__setitem__",
            &[slice(None, None, None), Value::Array(vec![])],
        );
        assert_eq!(assigned.unwrap_err().kind, ErrorKind::TypeError);
        assert_eq!(ok(&a, "tolist", &[]), Value::Array(ints(&[1, 2, 3, 4])));
    }

    #[test]
    fn integer_typecodes_refuse_values_outside_their_c_range() {
        for (code, min, max) in [
            ("b", -128, 127),
            ("B", 0, 255),
            ("h", -32768, 32767),
            ("H", 0, 65535),
            ("i", i32::MIN as i128, i32::MAX as i128),
            ("I", 0, u32::MAX as i128),
            ("l", i64::MIN as i128, i64::MAX as i128),
            ("L", 0, u64::MAX as i128),
            ("q", i64::MIN as i128, i64::MAX as i128),
            ("Q", 0, u64::MAX as i128),
        ] {
            let a = array(code, &ints(&[min, max])).unwrap();
            for bad in [min - 1, max + 1] {
                let e = call(&a, "__setitem__", &ints(&[0, bad])).unwrap_err();
                assert_eq!(e.kind, ErrorKind::OverflowError, "{code} {bad}");
                let e = array(code, &ints(&[bad])).err().unwrap();
                assert_eq!(e.kind, ErrorKind::OverflowError, "{code} {bad}");
            }
            assert_eq!(ok(&a, "tolist", &[]), Value::Array(ints(&[min, max])));
        }
    }

    #[test]
    fn a_str_or_a_float_in_an_int_array_is_a_type_error() {
        let a = array("i", &ints(&[1])).unwrap();
        for bad in [Value::Str("2".into()), Value::Float(2.0), Value::Nil] {
            let e = call(&a, "__setitem__", &[Value::Int(0), bad.clone()]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::TypeError);
            assert_eq!(
                e.message,
                format!(
                    "'{}' object cannot be interpreted as an integer",
                    bad.type_name()
                )
            );
            assert_eq!(array("i", &[bad]).err().unwrap().kind, ErrorKind::TypeError);
        }
        assert_eq!(ok(&a, "__getitem__", &[Value::Int(0)]), Value::Int(1));
    }

    #[test]
    fn a_str_in_a_float_array_is_a_type_error() {
        let a = array("d", &[Value::Float(0.5)]).unwrap();
        let e = call(&a, "__setitem__", &[Value::Int(0), Value::Str("1".into())]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TypeError);
        assert_eq!(e.message, "must be real number, not str");
        assert_eq!(ok(&a, "__getitem__", &[Value::Int(0)]), Value::Float(0.5));
    }

    #[test]
    fn an_int_stored_in_a_d_array_reads_back_as_a_float() {
        let a = array("d", &ints(&[1, -3])).unwrap();
        assert_eq!(
            ok(&a, "tolist", &[]),
            Value::Array(vec![Value::Float(1.0), Value::Float(-3.0)])
        );
        call(&a, "__setitem__", &ints(&[0, 2])).unwrap();
        assert_eq!(ok(&a, "__getitem__", &[Value::Int(0)]), Value::Float(2.0));
    }

    #[test]
    fn an_f_array_rounds_to_single_precision() {
        let a = array("f", &[Value::Float(0.1)]).unwrap();
        let single = 0.1f32 as f64;
        assert_ne!(single, 0.1);
        assert_eq!(
            ok(&a, "__getitem__", &[Value::Int(0)]),
            Value::Float(single)
        );
    }

    #[test]
    fn negative_indexes_count_from_the_end() {
        let a = array("h", &ints(&[1, 2, 3])).unwrap();
        assert_eq!(ok(&a, "__getitem__", &[Value::Int(-1)]), Value::Int(3));
        assert_eq!(ok(&a, "__getitem__", &[Value::Int(-3)]), Value::Int(1));
        call(&a, "__setitem__", &ints(&[-2, 9])).unwrap();
        assert_eq!(ok(&a, "tolist", &[]), Value::Array(ints(&[1, 9, 3])));
    }

    #[test]
    fn an_index_out_of_range_is_an_index_error() {
        let a = array("h", &ints(&[1, 2, 3])).unwrap();
        for i in [3, -4, i128::MAX, i128::MIN] {
            let e = call(&a, "__getitem__", &[Value::Int(i)]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::IndexError, "{i}");
            let e = call(&a, "__setitem__", &ints(&[i, 0])).unwrap_err();
            assert_eq!(e.kind, ErrorKind::IndexError, "{i}");
        }
        assert_eq!(ok(&a, "tolist", &[]), Value::Array(ints(&[1, 2, 3])));
        let empty = array("h", &[]).unwrap();
        let e = call(&empty, "__getitem__", &[Value::Int(0)]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::IndexError);
    }

    #[test]
    fn a_bad_typecode_is_a_value_error() {
        // One character that is no typecode (CPython: ValueError: bad typecode).
        for code in ["x", "D"] {
            let e = array(code, &[]).err().unwrap();
            assert_eq!(e.kind, ErrorKind::ValueError, "{code:?}");
        }
    }

    #[test]
    fn tolist_and_len_answer_every_item_in_order() {
        let a = array("Q", &ints(&[3, 1, 2])).unwrap();
        assert_eq!(ok(&a, "tolist", &[]), Value::Array(ints(&[3, 1, 2])));
        assert_eq!(ok(&a, "__len__", &[]), Value::Int(3));
        assert_eq!(a.describe(), "Array('Q'), 3 items");
    }

    #[test]
    fn a_bool_is_stored_as_an_int() {
        // Python 3.11: array('b', [True]).tolist() -> [1]; array('d', [True]) -> [1.0].
        let a = array("b", &[Value::Bool(true)]).unwrap();
        assert_eq!(ok(&a, "__getitem__", &[Value::Int(0)]), Value::Int(1));
        let d = array("d", &[Value::Bool(true)]).unwrap();
        assert_eq!(ok(&d, "__getitem__", &[Value::Int(0)]), Value::Float(1.0));
        // And when assigned: a[0] = False stores 0, in range for an unsigned code.
        let u = array("B", &ints(&[7])).unwrap();
        call(&u, "__setitem__", &[Value::Int(0), Value::Bool(false)]).unwrap();
        assert_eq!(ok(&u, "tolist", &[]), Value::Array(ints(&[0])));
    }

    #[test]
    fn an_assignment_out_of_range_is_an_index_error_whatever_the_value() {
        let a = array("i", &ints(&[1])).unwrap();
        // Python 3.11: a[5] = 'x' -> IndexError('array assignment index out of range').
        for value in [Value::Str("x".into()), Value::Int(1)] {
            let e = call(&a, "__setitem__", &[Value::Int(5), value]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::IndexError);
            assert_eq!(e.message, "array assignment index out of range");
        }
        // In range, the value is checked: a[0] = 'x' is a TypeError.
        let e = call(&a, "__setitem__", &[Value::Int(0), Value::Str("x".into())]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::TypeError);
    }

    #[test]
    fn a_lock_argument_is_accepted_and_ignored() {
        for lock in [Value::Bool(false), Value::Bool(true), Value::Nil] {
            let a = Array::new(args(&[
                Value::Str("i".into()),
                Value::Array(ints(&[1])),
                lock,
            ]))
            .unwrap();
            assert_eq!(ok(&a, "tolist", &[]), Value::Array(ints(&[1])));
        }
        // A fourth argument is still too many.
        let e = Array::new(args(&[
            Value::Str("i".into()),
            Value::Array(ints(&[1])),
            Value::Bool(false),
            Value::Nil,
        ]))
        .err()
        .unwrap();
        assert_eq!(e.kind, ErrorKind::TypeError);
    }
}

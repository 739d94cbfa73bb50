//! `Array`: a fixed-length typed array, as `SyncManager.Array(typecode, sequence)` (an
//! `array.array`). The typecode is enforced: integer codes check their C range, float codes
//! store floats (an int assigned to a `'d'` array reads back as a float, as in Python).

use parking_lot::Mutex;

use bytes::Bytes;
use syncman_protocol::value::{decode, split_array};
use syncman_protocol::{Args, ErrorKind, RemoteError, Value};

use crate::node::object::{unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject};
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("__len__", 0, 0),
    ("__getitem__", 1, 1),
    ("__setitem__", 2, 2),
    ("tolist", 0, 0),
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
}

impl Array {
    /// `Array(typecode, sequence)`.
    pub fn new(mut args: Args) -> Result<Array, RemoteError> {
        let typecode = args.string("typecode")?;
        let kind = kind_of(&typecode)?;
        let init = args.raw("sequence")?;
        args.finish()?;
        let items = split_array(&init)?
            .ok_or_else(|| RemoteError::type_error("Array needs a sequence of initial values"))?
            .iter()
            .map(|raw| coerce(kind, raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Array {
            typecode,
            kind,
            items: Mutex::new(items),
        })
    }

    fn dispatch(&self, method: &str, args: &mut Args) -> Reply {
        match method {
            "__len__" => Ok(encode::int(self.items.lock().len() as i128)),
            "__getitem__" => {
                let i = args.int("index")?;
                let items = self.items.lock();
                at(i, items.len()).map(|p| items[p].clone())
            }
            "__setitem__" => {
                let i = args.int("index")?;
                let value = coerce(self.kind, &args.raw("value")?)?;
                let mut items = self.items.lock();
                let p = at(i, items.len())?;
                items[p] = value;
                Ok(encode::nil())
            }
            "tolist" => Ok(encode::array(self.items.lock().iter())),
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

    fn call(&self, method: &str, mut args: Args, _ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, &mut args))
    }

    fn describe(&self) -> String {
        format!(
            "Array('{}'), {} items",
            self.typecode,
            self.items.lock().len()
        )
    }
}

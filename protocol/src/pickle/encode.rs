//! [`dumps`]: protocol 4 without framing or memo (both optional for `pickle.loads`), each
//! node written the way CPython's pickler writes it, opaque nodes as they came.

use super::num::i128_to_le;
use super::opcodes as op;
use super::Pickle;

/// Encodes `value` as protocol 4 (protocol 5 when it holds a [`Pickle::ByteArray`]: its
/// opcode, `BYTEARRAY8`, is the only exact one; CPython 3.8+ reads both).
///
/// `loads(&dumps(x)) == x` for every value in canonical form (see [`Pickle`]). Shared
/// references are not restored: the tree has none.
pub fn dumps(value: &Pickle) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::start(&mut out).finish(value);
    out
}

/// Appends to `out` what [`dumps`] writes for the pair `(first, second)`, without building
/// the tuple: a manager's reply, `("#RETURN", value)`, written into a buffer the connection
/// keeps.
pub fn dumps_pair_into(out: &mut Vec<u8>, first: &str, second: &Pickle) {
    let mut enc = Encoder::start(out);
    enc.str(first.as_bytes());
    enc.value(second);
    enc.op(op::TUPLE2);
    enc.out.push(op::STOP);
}

struct Encoder<'a> {
    out: &'a mut Vec<u8>,
    /// Where this pickle's protocol byte is (a `bytearray` raises it to 5).
    proto_at: usize,
}

impl<'a> Encoder<'a> {
    /// Writes the protocol header at the end of `out`.
    fn start(out: &'a mut Vec<u8>) -> Self {
        out.extend_from_slice(&[op::PROTO, 4]);
        let proto_at = out.len() - 1;
        Encoder { out, proto_at }
    }

    /// Writes `value`, then `STOP`.
    fn finish(mut self, value: &Pickle) {
        self.value(value);
        self.out.push(op::STOP);
    }

    fn op(&mut self, opcode: u8) {
        self.out.push(opcode);
    }

    /// `short` with a 1-byte length below 256, else `long` with a 4-byte one, else `huge` with
    /// an 8-byte one.
    fn sized(&mut self, bytes: &[u8], short: Option<u8>, long: Option<u8>, huge: u8) {
        let len = bytes.len();
        match (short, long) {
            (Some(short), _) if len < 256 => {
                self.out.push(short);
                self.out.push(len as u8);
            }
            (_, Some(long)) if u32::try_from(len).is_ok() => {
                self.out.push(long);
                self.out.extend_from_slice(&(len as u32).to_le_bytes());
            }
            _ => {
                self.out.push(huge);
                self.out.extend_from_slice(&(len as u64).to_le_bytes());
            }
        }
        self.out.extend_from_slice(bytes);
    }

    fn str(&mut self, utf8: &[u8]) {
        let (s, l, h) = (op::SHORT_BINUNICODE, op::BINUNICODE, op::BINUNICODE8);
        self.sized(utf8, Some(s), Some(l), h);
    }

    fn long(&mut self, le: &[u8]) {
        if le.len() < 256 {
            self.out.extend_from_slice(&[op::LONG1, le.len() as u8]);
        } else {
            // LONG4's length is a signed 4-byte int; nothing decodable is longer.
            self.op(op::LONG4);
            let len = i32::try_from(le.len()).unwrap_or(i32::MAX);
            self.out.extend_from_slice(&len.to_le_bytes());
        }
        self.out.extend_from_slice(le);
    }

    fn int(&mut self, v: i128) {
        if let Ok(b) = u8::try_from(v) {
            self.out.extend_from_slice(&[op::BININT1, b]);
        } else if let Ok(w) = u16::try_from(v) {
            self.op(op::BININT2);
            self.out.extend_from_slice(&w.to_le_bytes());
        } else if let Ok(i) = i32::try_from(v) {
            self.op(op::BININT);
            self.out.extend_from_slice(&i.to_le_bytes());
        } else {
            self.long(&i128_to_le(v));
        }
    }

    /// `MARK items... closing`.
    fn marked(&mut self, items: &[Pickle], closing: u8) {
        self.op(op::MARK);
        items.iter().for_each(|v| self.value(v));
        self.op(closing);
    }

    /// Items onto the object just written: `one` for a single item, as CPython does.
    fn items(&mut self, items: &[Pickle], one: u8, many: u8) {
        match items {
            [item] => {
                self.value(item);
                self.op(one);
            }
            _ => self.marked(items, many),
        }
    }

    fn pairs(&mut self, pairs: &[(Pickle, Pickle)]) {
        if let [(k, v)] = pairs {
            self.value(k);
            self.value(v);
            self.op(op::SETITEM);
        } else {
            self.op(op::MARK);
            for (k, v) in pairs {
                self.value(k);
                self.value(v);
            }
            self.op(op::SETITEMS);
        }
    }

    fn value(&mut self, value: &Pickle) {
        match value {
            Pickle::None => self.op(op::NONE),
            Pickle::Bool(true) => self.op(op::NEWTRUE),
            Pickle::Bool(false) => self.op(op::NEWFALSE),
            Pickle::Int(v) => self.int(*v),
            Pickle::BigInt(le) => self.long(le),
            Pickle::Float(f) => {
                self.op(op::BINFLOAT);
                self.out.extend_from_slice(&f.to_be_bytes());
            }
            Pickle::Str(s) => self.str(s.as_bytes()),
            Pickle::SurrogateStr(b) => self.str(b),
            Pickle::Bytes(b) => {
                let (s, l, h) = (op::SHORT_BINBYTES, op::BINBYTES, op::BINBYTES8);
                self.sized(b, Some(s), Some(l), h);
            }
            Pickle::ByteArray(b) => {
                self.out[self.proto_at] = 5;
                self.sized(b, None, None, op::BYTEARRAY8);
            }
            Pickle::Tuple(items) => match items.as_slice() {
                [] => self.op(op::EMPTY_TUPLE),
                [a] => {
                    self.value(a);
                    self.op(op::TUPLE1);
                }
                [a, b] => {
                    self.value(a);
                    self.value(b);
                    self.op(op::TUPLE2);
                }
                [a, b, c] => {
                    self.value(a);
                    self.value(b);
                    self.value(c);
                    self.op(op::TUPLE3);
                }
                _ => self.marked(items, op::TUPLE),
            },
            Pickle::List(items) => {
                self.op(op::EMPTY_LIST);
                if !items.is_empty() {
                    self.items(items, op::APPEND, op::APPENDS);
                }
            }
            Pickle::Dict(pairs) => {
                self.op(op::EMPTY_DICT);
                if !pairs.is_empty() {
                    self.pairs(pairs);
                }
            }
            Pickle::Set(items) => {
                self.op(op::EMPTY_SET);
                if !items.is_empty() {
                    self.marked(items, op::ADDITEMS);
                }
            }
            Pickle::FrozenSet(items) => self.marked(items, op::FROZENSET),
            Pickle::Global { module, name } => {
                if module.contains('\n') || name.contains('\n') {
                    self.str(module.as_bytes());
                    self.str(name.as_bytes());
                    self.op(op::STACK_GLOBAL);
                } else {
                    self.op(op::GLOBAL);
                    for part in [module, name] {
                        self.out.extend_from_slice(part.as_bytes());
                        self.out.push(b'\n');
                    }
                }
            }
            Pickle::Reduce { callable, args } => {
                self.value(callable);
                self.value(args);
                self.op(op::REDUCE);
            }
            Pickle::NewObj {
                class,
                args,
                kwargs,
            } => {
                self.value(class);
                self.value(args);
                match kwargs {
                    Some(kwargs) => {
                        self.value(kwargs);
                        self.op(op::NEWOBJ_EX);
                    }
                    None => self.op(op::NEWOBJ),
                }
            }
            Pickle::Obj { class, args } => {
                self.op(op::MARK);
                self.value(class);
                args.iter().for_each(|v| self.value(v));
                self.op(op::OBJ);
            }
            Pickle::Build { object, state } => {
                self.value(object);
                self.value(state);
                self.op(op::BUILD);
            }
            Pickle::Appends { target, items } => {
                self.value(target);
                self.items(items, op::APPEND, op::APPENDS);
            }
            Pickle::SetItems { target, items } => {
                self.value(target);
                self.pairs(items);
            }
            Pickle::AddItems { target, items } => {
                self.value(target);
                self.marked(items, op::ADDITEMS);
            }
        }
    }
}

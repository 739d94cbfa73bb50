//! [`loads`]: the unpickling machine, opcode by opcode as CPython's `Unpickler` runs them,
//! but building inert nodes (see `tree.rs`) instead of calling anything.

use std::cell::RefCell;
use std::collections::HashMap;

use super::compat::fix_import;
use super::num::{int_from_le, parse_decimal};
use super::opcodes::{self as op, name};
use super::text::{
    escape_decode, raw_unicode_escape, str_from_code_points, str_from_surrogatepass,
};
use super::tree::{build, recycle, BuildScratch, Id, Node};
use super::{Limits, Pickle, PickleError, PickleErrorKind};

/// Decodes one pickle (protocols 0-5) that must fill `data` exactly.
///
/// Never executes, imports or resolves anything. Rejects persistent ids, the extension
/// registry (`EXT1/2/4`), out-of-band buffers, unknown opcodes, truncated input, bytes after
/// `STOP`, a `STOP` that leaves values or marks behind, stack underflow, marks where a value is
/// expected, recursive structures, and anything over `limits`.
pub fn loads(data: &[u8], limits: &Limits) -> std::result::Result<Pickle, PickleError> {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            let result = loads_with(data, limits, &mut scratch);
            scratch.recycle();
            result
        }
        // Not reached (nothing decodes while decoding); correct regardless.
        Err(_) => loads_with(data, limits, &mut Scratch::default()),
    })
}

/// The buffers one decode works in, kept per thread from one decode to the next: a
/// manager request is a small pickle, and allocating and growing these afresh for each
/// was a large part of the node's work per CPython call.
#[derive(Default)]
struct Scratch {
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    dense_memo: Vec<Option<Id>>,
    build: BuildScratch,
}

/// A buffer grown past this many entries (by a large pickle) is freed, not kept.
const KEEP_AT_MOST: usize = 1024;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

impl Scratch {
    fn recycle(&mut self) {
        recycle(&mut self.nodes, KEEP_AT_MOST);
        recycle(&mut self.stack, KEEP_AT_MOST);
        recycle(&mut self.marks, KEEP_AT_MOST);
        recycle(&mut self.dense_memo, KEEP_AT_MOST);
        self.build.recycle(KEEP_AT_MOST);
    }
}

fn loads_with(
    data: &[u8],
    limits: &Limits,
    scratch: &mut Scratch,
) -> std::result::Result<Pickle, PickleError> {
    let mut machine = Machine {
        data,
        pos: 0,
        at: 0,
        limits,
        proto: 0,
        nodes: std::mem::take(&mut scratch.nodes),
        stack: std::mem::take(&mut scratch.stack),
        marks: std::mem::take(&mut scratch.marks),
        memo: Memo {
            dense: std::mem::take(&mut scratch.dense_memo),
            sparse: HashMap::new(),
            len: 0,
        },
    };
    let root = machine.run();
    let Machine {
        mut nodes,
        stack,
        marks,
        memo,
        at: stop,
        ..
    } = machine;
    scratch.stack = stack;
    scratch.marks = marks;
    scratch.dense_memo = memo.dense;
    let result = root.and_then(|root| {
        build(&mut nodes, root, limits, &mut scratch.build)
            .map_err(|kind| PickleError { offset: stop, kind })
    });
    scratch.nodes = nodes;
    result
}

struct Machine<'a, 'l> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being run, for errors.
    at: usize,
    limits: &'l Limits,
    /// The protocol announced by `PROTO` (0 without one): below 3, names are translated.
    proto: u8,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    /// Stack lengths at each open `MARK`; the last one is the fence pops may not cross.
    marks: Vec<usize>,
    memo: Memo,
}

/// Keys below this are kept in a vector: picklers number their memo entries 0, 1, 2, ...
/// (`MEMOIZE` always does), so a real pickle never needs the map.
const DENSE_MEMO: u64 = 4096;

/// The memo, by key: the small keys every pickler uses in a vector, any other (only a
/// hand-made pickle) in a map. Costs a fraction of a hashed map for the common case.
#[derive(Default)]
struct Memo {
    dense: Vec<Option<Id>>,
    sparse: HashMap<u64, Id>,
    len: usize,
}

impl Memo {
    /// Entries, as Python's `len(memo)` (the key `MEMOIZE` uses next).
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, key: u64) -> Option<Id> {
        if key < DENSE_MEMO {
            self.dense.get(key as usize).copied().flatten()
        } else {
            self.sparse.get(&key).copied()
        }
    }

    fn insert(&mut self, key: u64, id: Id) {
        let old = if key < DENSE_MEMO {
            let i = key as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, None);
            }
            self.dense[i].replace(id)
        } else {
            self.sparse.insert(key, id)
        };
        if old.is_none() {
            self.len += 1;
        }
    }
}

type Result<T> = std::result::Result<T, PickleError>;

fn invalid(opcode: u8, why: impl Into<String>) -> PickleErrorKind {
    PickleErrorKind::Invalid {
        opcode: name(opcode),
        why: why.into(),
    }
}

impl<'a> Machine<'a, '_> {
    fn fail<T>(&self, kind: PickleErrorKind) -> Result<T> {
        Err(PickleError {
            offset: self.at,
            kind,
        })
    }

    fn limit<T>(&self, what: &'static str, limit: usize) -> Result<T> {
        self.fail(PickleErrorKind::Limit { what, limit })
    }

    // ---- reading the input ----

    fn take(&mut self, len: u64) -> Result<&'a [u8]> {
        let remaining = self.data.len() - self.pos;
        if len > remaining as u64 {
            return self.fail(PickleErrorKind::Truncated);
        }
        let bytes = &self.data[self.pos..self.pos + len as usize];
        self.pos += len as usize;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N as u64)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A length prefix of `N` little-endian bytes (1, 2, 4 or 8), unsigned.
    fn len<const N: usize>(&mut self) -> Result<u64> {
        let bytes = self.array::<N>()?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b)))
    }

    /// A signed 4-byte length (`BINSTRING`, `LONG4`): negative is an error, as in CPython.
    fn signed_len(&mut self, opcode: u8) -> Result<u64> {
        let v = i32::from_le_bytes(self.array::<4>()?);
        u64::try_from(v).or_else(|_| self.fail(invalid(opcode, "negative byte count")))
    }

    /// The text up to the next newline (protocol 0 arguments), newline consumed.
    fn line(&mut self) -> Result<&'a [u8]> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => self.fail(PickleErrorKind::Truncated),
        }
    }

    fn utf8_line(&mut self, opcode: u8) -> Result<String> {
        let line = self.line()?;
        match std::str::from_utf8(line) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => self.fail(invalid(opcode, "name is not UTF-8")),
        }
    }

    // ---- the stack ----

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn alloc(&mut self, node: Node) -> Result<Id> {
        if self.nodes.len() >= self.limits.max_nodes {
            return self.limit("too many objects", self.limits.max_nodes);
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn push(&mut self, id: Id) -> Result<()> {
        if self.stack.len() >= self.limits.max_stack {
            return self.limit("unpickling stack too large", self.limits.max_stack);
        }
        self.stack.push(id);
        Ok(())
    }

    fn push_node(&mut self, node: Node) -> Result<()> {
        let id = self.alloc(node)?;
        self.push(id)
    }

    fn push_leaf(&mut self, value: Pickle) -> Result<()> {
        self.push_node(Node::Leaf(value))
    }

    /// Pops one value; values below the last `MARK` are out of reach, as in CPython.
    fn pop(&mut self, opcode: u8) -> Result<Id> {
        if self.stack.len() <= self.fence() {
            return self.fail(PickleErrorKind::StackUnderflow(name(opcode)));
        }
        Ok(self.stack.pop().unwrap_or_default())
    }

    fn top(&self, opcode: u8) -> Result<Id> {
        if self.stack.len() <= self.fence() {
            return self.fail(PickleErrorKind::StackUnderflow(name(opcode)));
        }
        Ok(self.stack.last().copied().unwrap_or_default())
    }

    /// Pops the last `MARK` and everything above it.
    fn pop_mark(&mut self, opcode: u8) -> Result<Vec<Id>> {
        match self.marks.pop() {
            Some(mark) => Ok(self.stack.split_off(mark)),
            None => self.fail(PickleErrorKind::MarkNotFound(name(opcode))),
        }
    }

    /// `MARK` items `...` as key/value pairs.
    fn pop_pairs(&mut self, opcode: u8) -> Result<Vec<(Id, Id)>> {
        let items = self.pop_mark(opcode)?;
        if items.len() % 2 != 0 {
            return self.fail(invalid(opcode, "odd number of items"));
        }
        Ok(items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect())
    }

    fn memo_put(&mut self, key: u64, opcode: u8) -> Result<()> {
        let top = self.top(opcode)?;
        if self.memo.get(key).is_none() && self.memo.len() >= self.limits.max_memo {
            return self.limit("too many memo entries", self.limits.max_memo);
        }
        self.memo.insert(key, top);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<()> {
        match self.memo.get(key) {
            Some(id) => self.push(id),
            None => self.fail(PickleErrorKind::MemoNotFound(key)),
        }
    }

    /// A `PUT`/`GET` argument: a non-negative decimal (`int()`, leading zeros allowed).
    fn memo_key_line(&mut self, opcode: u8) -> Result<u64> {
        let line = self.line()?;
        match parse_decimal(line, true) {
            Some(Pickle::Int(k)) => match u64::try_from(k) {
                Ok(k) => Ok(k),
                Err(_) => self.fail(invalid(opcode, "negative argument")),
            },
            Some(_) => self.fail(invalid(opcode, "argument too large")),
            None => self.fail(invalid(opcode, "argument is not a decimal int")),
        }
    }

    // ---- mutations of an object on the stack ----

    /// Replaces `target` by `wrap(inner)`, `inner` holding what `target` was: every reference
    /// to `target` (memo, `DUP`) now sees the wrapped object, as Python sees the mutation.
    fn wrap(&mut self, target: Id, wrap: impl FnOnce(Id) -> Node) -> Result<()> {
        let inner = self.alloc(Node::Leaf(Pickle::None))?;
        self.nodes.swap(target, inner);
        self.nodes[target] = wrap(inner);
        Ok(())
    }

    fn append(&mut self, opcode: u8, items: Vec<Id>) -> Result<()> {
        let target = self.top(opcode)?;
        match &mut self.nodes[target] {
            Node::List(v) | Node::Appends(_, v) => v.extend(items),
            n if n.is_opaque() => self.wrap(target, |inner| Node::Appends(inner, items))?,
            n => {
                let why = format!("cannot append to {}", n.kind());
                return self.fail(invalid(opcode, why));
            }
        }
        Ok(())
    }

    fn set_items(&mut self, opcode: u8, pairs: Vec<(Id, Id)>) -> Result<()> {
        let target = self.top(opcode)?;
        match &mut self.nodes[target] {
            Node::Dict(v) | Node::SetItems(_, v) => v.extend(pairs),
            n if n.is_opaque() => self.wrap(target, |inner| Node::SetItems(inner, pairs))?,
            n => {
                let why = format!("cannot set items on {}", n.kind());
                return self.fail(invalid(opcode, why));
            }
        }
        Ok(())
    }

    fn add_items(&mut self, opcode: u8, items: Vec<Id>) -> Result<()> {
        let target = self.top(opcode)?;
        match &mut self.nodes[target] {
            Node::Set(v) | Node::AddItems(_, v) => v.extend(items),
            n if n.is_opaque() => self.wrap(target, |inner| Node::AddItems(inner, items))?,
            n => {
                let why = format!("cannot add items to {}", n.kind());
                return self.fail(invalid(opcode, why));
            }
        }
        Ok(())
    }

    fn global(&mut self, module: String, name: String) -> Pickle {
        if self.proto < 3 {
            if let Some((m, n)) = fix_import(&module, &name) {
                return Pickle::Global {
                    module: m.to_owned(),
                    name: n.to_owned(),
                };
            }
        }
        Pickle::Global { module, name }
    }

    /// A `str` operand of `STACK_GLOBAL`.
    fn name_operand(&self, id: Id) -> Result<String> {
        match &self.nodes[id] {
            Node::Leaf(Pickle::Str(s)) => Ok(s.clone()),
            _ => self.fail(invalid(op::STACK_GLOBAL, "module and name must be str")),
        }
    }

    fn ascii(&self, opcode: u8, bytes: &[u8]) -> Result<Pickle> {
        // Python 2 `str`: CPython's default `encoding='ASCII'` decodes it to `str`.
        if bytes.is_ascii() {
            Ok(Pickle::Str(String::from_utf8_lossy(bytes).into_owned()))
        } else {
            self.fail(invalid(opcode, "non-ASCII bytes in a Python 2 string"))
        }
    }

    fn unicode(&self, opcode: u8, bytes: &[u8]) -> Result<Pickle> {
        match str_from_surrogatepass(bytes.to_vec()) {
            Some(s) => Ok(s),
            None => self.fail(invalid(opcode, "invalid UTF-8")),
        }
    }

    // ---- the loop ----

    /// Runs to `STOP`; returns the result's id.
    fn run(&mut self) -> Result<Id> {
        loop {
            self.at = self.pos;
            let opcode = self.u8()?;
            self.step(opcode)?;
            if opcode == op::STOP {
                let root = self.pop(opcode)?;
                if !self.marks.is_empty() {
                    return self.fail(PickleErrorKind::Unbalanced("an open MARK"));
                }
                if !self.stack.is_empty() {
                    return self.fail(PickleErrorKind::Unbalanced("values on the stack"));
                }
                if self.pos != self.data.len() {
                    let trailing = self.data.len() - self.pos;
                    return self.fail(PickleErrorKind::TrailingBytes(trailing));
                }
                return Ok(root);
            }
        }
    }

    fn step(&mut self, opcode: u8) -> Result<()> {
        let unsupported = |why| PickleErrorKind::Unsupported {
            opcode: name(opcode),
            why,
        };
        match opcode {
            // Framing and meta.
            op::STOP => {}
            op::PROTO => {
                let v = self.u8()?;
                if v > op::HIGHEST_PROTOCOL {
                    return self.fail(PickleErrorKind::Protocol(v));
                }
                self.proto = v;
            }
            op::FRAME => {
                // A frame only announces how many bytes follow; they are read as opcodes.
                let len = self.len::<8>()?;
                if len > (self.data.len() - self.pos) as u64 {
                    return self.fail(PickleErrorKind::Truncated);
                }
            }
            op::MARK => {
                if self.marks.len() >= self.limits.max_marks {
                    return self.limit("too many open MARKs", self.limits.max_marks);
                }
                self.marks.push(self.stack.len());
            }
            op::POP => {
                // As CPython: with nothing above the last MARK, POP removes the MARK.
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop(opcode)?;
                }
            }
            op::POP_MARK => {
                self.pop_mark(opcode)?;
            }
            op::DUP => {
                let top = self.top(opcode)?;
                self.push(top)?;
            }

            // Memo.
            op::MEMOIZE => self.memo_put(self.memo.len() as u64, opcode)?,
            op::PUT => {
                let key = self.memo_key_line(opcode)?;
                self.memo_put(key, opcode)?;
            }
            op::BINPUT => {
                let key = self.len::<1>()?;
                self.memo_put(key, opcode)?;
            }
            op::LONG_BINPUT => {
                let key = self.len::<4>()?;
                self.memo_put(key, opcode)?;
            }
            op::GET => {
                let key = self.memo_key_line(opcode)?;
                self.memo_get(key)?;
            }
            op::BINGET => {
                let key = self.len::<1>()?;
                self.memo_get(key)?;
            }
            op::LONG_BINGET => {
                let key = self.len::<4>()?;
                self.memo_get(key)?;
            }

            // Scalars.
            op::NONE => self.push_leaf(Pickle::None)?,
            op::NEWTRUE => self.push_leaf(Pickle::Bool(true))?,
            op::NEWFALSE => self.push_leaf(Pickle::Bool(false))?,
            op::INT => {
                let line = self.line()?;
                let value = match line {
                    b"00" => Some(Pickle::Bool(false)),
                    b"01" => Some(Pickle::Bool(true)),
                    _ => parse_decimal(line, false),
                };
                match value {
                    Some(v) => self.push_leaf(v)?,
                    None => return self.fail(invalid(opcode, "not a decimal int")),
                }
            }
            op::BININT => {
                let v = i32::from_le_bytes(self.array()?);
                self.push_leaf(Pickle::Int(v.into()))?;
            }
            op::BININT1 => {
                let v = self.u8()?;
                self.push_leaf(Pickle::Int(v.into()))?;
            }
            op::BININT2 => {
                let v = u16::from_le_bytes(self.array()?);
                self.push_leaf(Pickle::Int(v.into()))?;
            }
            op::LONG => {
                let line = self.line()?;
                let digits = line.strip_suffix(b"L").unwrap_or(line);
                match parse_decimal(digits, false) {
                    Some(v) => self.push_leaf(v)?,
                    None => return self.fail(invalid(opcode, "not a decimal int")),
                }
            }
            op::LONG1 => {
                let len = self.len::<1>()?;
                let bytes = self.take(len)?;
                self.push_leaf(int_from_le(bytes))?;
            }
            op::LONG4 => {
                let len = self.signed_len(opcode)?;
                let bytes = self.take(len)?;
                self.push_leaf(int_from_le(bytes))?;
            }
            op::FLOAT => {
                let line = self.line()?;
                let parsed = std::str::from_utf8(line)
                    .ok()
                    .and_then(|s| s.trim_ascii().parse::<f64>().ok());
                match parsed {
                    Some(v) => self.push_leaf(Pickle::Float(v))?,
                    None => return self.fail(invalid(opcode, "not a float")),
                }
            }
            op::BINFLOAT => {
                let v = f64::from_be_bytes(self.array()?);
                self.push_leaf(Pickle::Float(v))?;
            }

            // Strings and bytes.
            op::STRING => {
                let line = self.line()?;
                let quoted = line.len() >= 2
                    && line[0] == line[line.len() - 1]
                    && (line[0] == b'\'' || line[0] == b'"');
                if !quoted {
                    return self.fail(invalid(opcode, "argument must be quoted"));
                }
                match escape_decode(&line[1..line.len() - 1]) {
                    Ok(bytes) => {
                        let s = self.ascii(opcode, &bytes)?;
                        self.push_leaf(s)?;
                    }
                    Err(why) => return self.fail(invalid(opcode, why)),
                }
            }
            op::BINSTRING => {
                let len = self.signed_len(opcode)?;
                let bytes = self.take(len)?;
                let s = self.ascii(opcode, bytes)?;
                self.push_leaf(s)?;
            }
            op::SHORT_BINSTRING => {
                let len = self.len::<1>()?;
                let bytes = self.take(len)?;
                let s = self.ascii(opcode, bytes)?;
                self.push_leaf(s)?;
            }
            op::UNICODE => {
                let line = self.line()?;
                let s = raw_unicode_escape(line)
                    .ok()
                    .and_then(|cps| str_from_code_points(&cps));
                match s {
                    Some(s) => self.push_leaf(s)?,
                    None => return self.fail(invalid(opcode, "invalid raw-unicode-escape text")),
                }
            }
            op::SHORT_BINUNICODE | op::BINUNICODE | op::BINUNICODE8 => {
                let len = match opcode {
                    op::SHORT_BINUNICODE => self.len::<1>()?,
                    op::BINUNICODE => self.len::<4>()?,
                    _ => self.len::<8>()?,
                };
                let bytes = self.take(len)?;
                let s = self.unicode(opcode, bytes)?;
                self.push_leaf(s)?;
            }
            op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 | op::BYTEARRAY8 => {
                let len = match opcode {
                    op::SHORT_BINBYTES => self.len::<1>()?,
                    op::BINBYTES => self.len::<4>()?,
                    _ => self.len::<8>()?,
                };
                let bytes = self.take(len)?.to_vec();
                let value = if opcode == op::BYTEARRAY8 {
                    Pickle::ByteArray(bytes)
                } else {
                    Pickle::Bytes(bytes)
                };
                self.push_leaf(value)?;
            }

            // Containers.
            op::EMPTY_TUPLE => self.push_node(Node::Tuple(Vec::new()))?,
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = usize::from(opcode - op::TUPLE1 + 1);
                let mut items = vec![0; n];
                for slot in items.iter_mut().rev() {
                    *slot = self.pop(opcode)?;
                }
                self.push_node(Node::Tuple(items))?;
            }
            op::TUPLE => {
                let items = self.pop_mark(opcode)?;
                self.push_node(Node::Tuple(items))?;
            }
            op::EMPTY_LIST => self.push_node(Node::List(Vec::new()))?,
            op::LIST => {
                let items = self.pop_mark(opcode)?;
                self.push_node(Node::List(items))?;
            }
            op::APPEND => {
                let item = self.pop(opcode)?;
                self.append(opcode, vec![item])?;
            }
            op::APPENDS => {
                let items = self.pop_mark(opcode)?;
                self.append(opcode, items)?;
            }
            op::EMPTY_DICT => self.push_node(Node::Dict(Vec::new()))?,
            op::DICT => {
                let pairs = self.pop_pairs(opcode)?;
                self.push_node(Node::Dict(pairs))?;
            }
            op::SETITEM => {
                let value = self.pop(opcode)?;
                let key = self.pop(opcode)?;
                self.set_items(opcode, vec![(key, value)])?;
            }
            op::SETITEMS => {
                let pairs = self.pop_pairs(opcode)?;
                self.set_items(opcode, pairs)?;
            }
            op::EMPTY_SET => self.push_node(Node::Set(Vec::new()))?,
            op::ADDITEMS => {
                let items = self.pop_mark(opcode)?;
                self.add_items(opcode, items)?;
            }
            op::FROZENSET => {
                let items = self.pop_mark(opcode)?;
                self.push_node(Node::FrozenSet(items))?;
            }

            // Objects: inert nodes only.
            op::GLOBAL => {
                let module = self.utf8_line(opcode)?;
                let name = self.utf8_line(opcode)?;
                let global = self.global(module, name);
                self.push_leaf(global)?;
            }
            op::STACK_GLOBAL => {
                let name = self.pop(opcode)?;
                let module = self.pop(opcode)?;
                let (module, name) = (self.name_operand(module)?, self.name_operand(name)?);
                let global = self.global(module, name);
                self.push_leaf(global)?;
            }
            op::REDUCE => {
                let args = self.pop(opcode)?;
                let callable = self.pop(opcode)?;
                self.push_node(Node::Reduce(callable, args))?;
            }
            op::NEWOBJ => {
                let args = self.pop(opcode)?;
                let class = self.pop(opcode)?;
                self.push_node(Node::NewObj(class, args, None))?;
            }
            op::NEWOBJ_EX => {
                let kwargs = self.pop(opcode)?;
                let args = self.pop(opcode)?;
                let class = self.pop(opcode)?;
                self.push_node(Node::NewObj(class, args, Some(kwargs)))?;
            }
            op::BUILD => {
                let state = self.pop(opcode)?;
                let target = self.top(opcode)?;
                if !self.nodes[target].is_opaque() {
                    let why = format!("cannot set state on {}", self.nodes[target].kind());
                    return self.fail(invalid(opcode, why));
                }
                self.wrap(target, |inner| Node::Build(inner, state))?;
            }
            op::OBJ => {
                let mut items = self.pop_mark(opcode)?;
                if items.is_empty() {
                    return self.fail(invalid(opcode, "no class after the MARK"));
                }
                let class = items.remove(0);
                self.push_node(Node::Obj(class, items))?;
            }
            op::INST => {
                let module = self.utf8_line(opcode)?;
                let name = self.utf8_line(opcode)?;
                let args = self.pop_mark(opcode)?;
                let global = self.global(module, name);
                let class = self.alloc(Node::Leaf(global))?;
                self.push_node(Node::Obj(class, args))?;
            }

            // Refused.
            op::PERSID | op::BINPERSID => {
                return self.fail(unsupported("persistent ids are not supported"))
            }
            op::EXT1 | op::EXT2 | op::EXT4 => {
                return self.fail(unsupported(
                    "the copyreg extension registry is not supported",
                ))
            }
            op::NEXT_BUFFER | op::READONLY_BUFFER => {
                return self.fail(unsupported("out-of-band buffers are not supported"))
            }
            other => return self.fail(PickleErrorKind::UnknownOpcode(other)),
        }
        Ok(())
    }
}

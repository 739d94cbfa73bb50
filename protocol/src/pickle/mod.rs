//! A safe pickle codec for speaking CPython's manager protocol (the "pickle dialect").
//!
//! [`loads`] reads every opcode a CPython pickler of protocols 0-5 can emit into a [`Pickle`]
//! tree **without executing, importing or resolving anything**: a `GLOBAL` stays a name, a
//! `REDUCE` stays "this callable with these arguments", and so on. [`dumps`] writes any tree
//! back (protocol 4, no framing, no memo) so that CPython rebuilds the same objects, which is
//! how user objects and stored proxies survive a trip through the server untouched.
//!
//! # Design
//! - **Value semantics.** The result is a tree. Memo references (`BINGET` ...) and `DUP` are
//!   shared while decoding (an arena of nodes, so a later `APPENDS` to a memoized list is seen
//!   by every reference, as in Python) and cloned when the tree is built. A structure that
//!   contains itself cannot be a tree: it is rejected with [`PickleErrorKind::Recursive`]
//!   instead of being cut somewhere arbitrary.
//! - **Limits** ([`Limits`]) bound nesting depth, nodes, string/bytes payload (both counted
//!   *after* expanding shared references, before anything is cloned: a "billion laughs" of
//!   nested memo references fails in time proportional to its input), memo entries, stack and
//!   marks. No length read from the input reserves memory beyond the bytes actually present.
//!   Nothing recurses while decoding; building, cloning, comparing, encoding and dropping a tree
//!   recurse once per level, which [`Limits::max_depth`] keeps small.
//! - **Strings** are [`Pickle::Str`] when they are valid UTF-8, else [`Pickle::SurrogateStr`]:
//!   the bytes of CPython's `'surrogatepass'` UTF-8 (lone surrogates as 3-byte sequences, as
//!   `BINUNICODE` carries them). Every Python `str` has exactly one form, so `==` is exact.
//! - **Ints** are [`Pickle::Int`] when they fit an `i128`, else [`Pickle::BigInt`].
//! - **Protocol 0-2 names** are translated as CPython's unpickler does (`__builtin__.set` →
//!   `builtins.set`, `exceptions.KeyError` → `builtins.KeyError`, table in `compat.rs`):
//!   re-encoded as protocol 4 they would otherwise no longer load.
//! - `loads` keeps what it reads literally; [`normalize`] rewrites the exact builtin forms
//!   (`builtins.set(...)`, `bytearray(...)`, ...) into plain values, and the `as_*`
//!   recognisers read slices, ranges, complex numbers, tokens and proxies.
//! - **Hostile globals.** `loads` accepts any global, since it runs none; but a stored tree
//!   goes back to other clients, whose `pickle.loads` would import and call what it names.
//!   [`check_globals`] refuses trees naming dangerous callables (`os.system`, `builtins.eval`,
//!   `subprocess`, name resolvers, nested deserialisers, ...: the deny-list and its rules are
//!   in `unsafe_globals.rs`) with an [`UnsafeGlobal`] error, while instances of user classes,
//!   datetime, Decimal, OrderedDict, array, enum members, nested classes and the managers'
//!   proxies (`RebuildProxy`, `Token`, `AutoProxy`, `DictProxy`, ...) pass. It checks dotted
//!   names and `getattr` chains as the paths a protocol 4 reader resolves, and refuses calls of
//!   anything the pickle does not name. Run it on what is stored or forwarded, after `loads`.
//!
//! # Files
//! - `opcodes.rs`: the opcode bytes and names.
//! - `decode.rs`: the opcode machine ([`loads`]); `tree.rs`: checks and builds the tree.
//! - `text.rs`: protocol 0 text arguments and `'surrogatepass'` strings; `num.rs`: big ints.
//! - `compat.rs`: CPython's protocol 0-2 name mapping (`_compat_pickle`).
//! - `order.rs`: [`ordered`], Python's `<` for the opaque values the node can order (big
//!   ints, `datetime`'s types).
//! - `encode.rs`: [`dumps`]. `shapes.rs`: exception and token constructors, recognisers,
//!   [`normalize`].
//! - `unsafe_globals.rs`: [`check_globals`], the deny-list of globals (its unit tests are in
//!   `unsafe_globals_tests.rs`).

mod compat;
mod decode;
mod encode;
mod num;
pub mod opcodes;
mod order;
mod shapes;
mod text;
mod tree;
mod unsafe_globals;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod unsafe_globals_tests;

pub use decode::loads;
pub use encode::{dumps, dumps_pair_into};
pub use order::{ordered, Ordered};
pub use shapes::{
    as_complex, as_global, as_range, as_rebuild_proxy, as_slice, as_token, exception, global,
    normalize, token, ProxyRef, RangeArgs, SliceArgs, TokenRef, MANAGERS,
};
pub use unsafe_globals::{check_globals, UnsafeGlobal};

/// A decoded pickle: plain values, and inert nodes for everything that would run code.
///
/// Equality is structural and exact: floats compare by their bits (so `NaN == NaN` and
/// `0.0 != -0.0`), dicts and sets by their items in stream order. This is "same pickle", not
/// Python's `==`.
///
/// **Canonical form.** [`loads`] only produces values in canonical form, and
/// `loads(&dumps(x)) == x` holds for all of them: `BigInt` does not fit an `i128` and is
/// minimal; `SurrogateStr` is not valid UTF-8 (use [`Pickle::str_from_surrogatepass`]);
/// `Appends`/`SetItems`/`AddItems` are not nested in their own kind (batches are merged), and
/// these and `Build` wrap an opaque object (`Reduce`, `NewObj`, `Obj`, `Build`, `Appends`,
/// `SetItems`, `AddItems`), never a plain list, dict or set. Other hand-built values encode
/// fine and load back as their canonical equivalent.
#[derive(Debug, Clone)]
pub enum Pickle {
    None,
    Bool(bool),
    Int(i128),
    /// An int outside `i128`: little-endian two's complement, minimal (as `LONG1`/`LONG4`
    /// carry it).
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    /// A `str` holding lone surrogates: its UTF-8 bytes with surrogates encoded as 3-byte
    /// sequences (`'surrogatepass'`). Never valid UTF-8 (that is [`Pickle::Str`]).
    SurrogateStr(Vec<u8>),
    Bytes(Vec<u8>),
    ByteArray(Vec<u8>),
    Tuple(Vec<Pickle>),
    List(Vec<Pickle>),
    /// Pairs in stream order. Duplicate keys are kept: deciding that two keys are equal needs
    /// Python's `==` (`1 == 1.0 == True`), which is the caller's business.
    Dict(Vec<(Pickle, Pickle)>),
    /// Items in stream order, duplicates kept (as for [`Pickle::Dict`]).
    Set(Vec<Pickle>),
    FrozenSet(Vec<Pickle>),
    /// A module attribute (class or function) named by `GLOBAL`/`STACK_GLOBAL`/`INST`.
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args)`: `REDUCE`.
    Reduce {
        callable: Box<Pickle>,
        args: Box<Pickle>,
    },
    /// `class.__new__(class, *args, **kwargs)`: `NEWOBJ`, or `NEWOBJ_EX` when `kwargs` is set.
    NewObj {
        class: Box<Pickle>,
        args: Box<Pickle>,
        kwargs: Option<Box<Pickle>>,
    },
    /// An object built by `OBJ`/`INST` (protocol 0/1): `class(*args)`, or `class.__new__`
    /// when there are no args.
    Obj {
        class: Box<Pickle>,
        args: Vec<Pickle>,
    },
    /// `BUILD`: `object.__setstate__(state)` or its `__dict__` update.
    Build {
        object: Box<Pickle>,
        state: Box<Pickle>,
    },
    /// `APPEND`/`APPENDS` onto an opaque object (a list subclass): `target.extend(items)`.
    Appends {
        target: Box<Pickle>,
        items: Vec<Pickle>,
    },
    /// `SETITEM`/`SETITEMS` onto an opaque object (a dict subclass, an `OrderedDict`).
    SetItems {
        target: Box<Pickle>,
        items: Vec<(Pickle, Pickle)>,
    },
    /// `ADDITEMS` onto an opaque object (a set subclass).
    AddItems {
        target: Box<Pickle>,
        items: Vec<Pickle>,
    },
}

impl PartialEq for Pickle {
    fn eq(&self, other: &Self) -> bool {
        use Pickle as P;
        match (self, other) {
            (P::None, P::None) => true,
            (P::Bool(a), P::Bool(b)) => a == b,
            (P::Int(a), P::Int(b)) => a == b,
            (P::BigInt(a), P::BigInt(b)) => a == b,
            (P::Float(a), P::Float(b)) => a.to_bits() == b.to_bits(),
            (P::Str(a), P::Str(b)) => a == b,
            (P::SurrogateStr(a), P::SurrogateStr(b)) => a == b,
            (P::Bytes(a), P::Bytes(b)) => a == b,
            (P::ByteArray(a), P::ByteArray(b)) => a == b,
            (P::Tuple(a), P::Tuple(b)) => a == b,
            (P::List(a), P::List(b)) => a == b,
            (P::Dict(a), P::Dict(b)) => a == b,
            (P::Set(a), P::Set(b)) => a == b,
            (P::FrozenSet(a), P::FrozenSet(b)) => a == b,
            (
                P::Global { module, name },
                P::Global {
                    module: m2,
                    name: n2,
                },
            ) => module == m2 && name == n2,
            (
                P::Reduce { callable, args },
                P::Reduce {
                    callable: c2,
                    args: a2,
                },
            ) => callable == c2 && args == a2,
            (
                P::NewObj {
                    class,
                    args,
                    kwargs,
                },
                P::NewObj {
                    class: c2,
                    args: a2,
                    kwargs: k2,
                },
            ) => class == c2 && args == a2 && kwargs == k2,
            (
                P::Obj { class, args },
                P::Obj {
                    class: c2,
                    args: a2,
                },
            ) => class == c2 && args == a2,
            (
                P::Build { object, state },
                P::Build {
                    object: o2,
                    state: s2,
                },
            ) => object == o2 && state == s2,
            (
                P::Appends { target, items },
                P::Appends {
                    target: t2,
                    items: i2,
                },
            )
            | (
                P::AddItems { target, items },
                P::AddItems {
                    target: t2,
                    items: i2,
                },
            ) => target == t2 && items == i2,
            (
                P::SetItems { target, items },
                P::SetItems {
                    target: t2,
                    items: i2,
                },
            ) => target == t2 && items == i2,
            _ => false,
        }
    }
}

impl Eq for Pickle {}

impl Pickle {
    /// A `str` from CPython's `'surrogatepass'` UTF-8 bytes: [`Pickle::Str`] when they are
    /// valid UTF-8, [`Pickle::SurrogateStr`] when they hold surrogates, `None` when they are
    /// neither (CPython would fail to decode them too).
    pub fn str_from_surrogatepass(bytes: Vec<u8>) -> Option<Pickle> {
        text::str_from_surrogatepass(bytes)
    }

    /// A `str` from Python code points (surrogates allowed); `None` past U+10FFFF.
    pub fn str_from_code_points(code_points: &[u32]) -> Option<Pickle> {
        text::str_from_code_points(code_points)
    }

    /// The code points of a `Str` or `SurrogateStr` (for `repr`, `len`, indexing).
    pub fn code_points(&self) -> Option<Vec<u32>> {
        match self {
            Pickle::Str(s) => Some(s.chars().map(u32::from).collect()),
            Pickle::SurrogateStr(b) => Some(text::code_points(b)),
            _ => None,
        }
    }

    /// An int from little-endian two's complement bytes (any length, empty is 0), in
    /// canonical form: [`Pickle::Int`] when it fits, else a minimal [`Pickle::BigInt`].
    pub fn int_from_le_bytes(bytes: &[u8]) -> Pickle {
        num::int_from_le(bytes)
    }

    /// Calls `f` on each direct child (items, keys and values, callables and their
    /// arguments, targets and states), in stream order.
    pub fn for_each_child<'a>(&'a self, mut f: impl FnMut(&'a Pickle)) {
        match self {
            Pickle::Tuple(items)
            | Pickle::List(items)
            | Pickle::Set(items)
            | Pickle::FrozenSet(items) => items.iter().for_each(f),
            Pickle::Dict(pairs) => pairs.iter().for_each(|(k, v)| {
                f(k);
                f(v);
            }),
            Pickle::Reduce { callable, args } => {
                f(callable);
                f(args);
            }
            Pickle::NewObj {
                class,
                args,
                kwargs,
            } => {
                f(class);
                f(args);
                if let Some(kwargs) = kwargs {
                    f(kwargs);
                }
            }
            Pickle::Obj { class, args } => {
                f(class);
                args.iter().for_each(f);
            }
            Pickle::Build { object, state } => {
                f(object);
                f(state);
            }
            Pickle::Appends { target, items } | Pickle::AddItems { target, items } => {
                f(target);
                items.iter().for_each(f);
            }
            Pickle::SetItems { target, items } => {
                f(target);
                items.iter().for_each(|(k, v)| {
                    f(k);
                    f(v);
                });
            }
            Pickle::None
            | Pickle::Bool(_)
            | Pickle::Int(_)
            | Pickle::BigInt(_)
            | Pickle::Float(_)
            | Pickle::Str(_)
            | Pickle::SurrogateStr(_)
            | Pickle::Bytes(_)
            | Pickle::ByteArray(_)
            | Pickle::Global { .. } => {}
        }
    }

    /// The string, when this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Pickle::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Bounds on what [`loads`] accepts. The defaults suit a server reading untrusted requests
/// of up to 64 MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of the resulting tree; a scalar has depth 1, `[1]` depth 2 (opaque
    /// nodes count: `Reduce{Global, Tuple[x]}` is 3 deep). Default 200. Keeps recursion over
    /// trees (build, clone, compare, encode, drop) shallow; keep it in the low thousands at
    /// most.
    pub max_depth: usize,
    /// Most nodes in the resulting tree, counting every copy a memo reference makes, and most
    /// objects created while decoding. Default 1 << 20.
    pub max_nodes: usize,
    /// Most string, bytes, big-int and name bytes in the resulting tree, counting copies.
    /// Default 256 MiB.
    pub max_bytes: usize,
    /// Most memo entries. Default 1 << 20.
    pub max_memo: usize,
    /// Most values on the unpickling stack at once. Default 1 << 20.
    pub max_stack: usize,
    /// Most open `MARK`s. A CPython pickle opens at most one per nesting level, so keep it at
    /// least `max_depth`. Default 256.
    pub max_marks: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 200,
            max_nodes: 1 << 20,
            max_bytes: 256 << 20,
            max_memo: 1 << 20,
            max_stack: 1 << 20,
            max_marks: 256,
        }
    }
}

/// Why [`loads`] rejected its input, and where (the offset of the opcode at fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pickle at byte {offset}: {kind}")]
pub struct PickleError {
    pub offset: usize,
    pub kind: PickleErrorKind,
}

/// The reasons of a [`PickleError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleErrorKind {
    #[error("truncated input")]
    Truncated,
    #[error("unknown opcode 0x{0:02x}")]
    UnknownOpcode(u8),
    #[error("{opcode} is not supported: {why}")]
    Unsupported {
        opcode: &'static str,
        why: &'static str,
    },
    #[error("unsupported pickle protocol {0}")]
    Protocol(u8),
    #[error("{0} bytes after STOP")]
    TrailingBytes(usize),
    #[error("stack underflow in {0}")]
    StackUnderflow(&'static str),
    #[error("{0} without a MARK")]
    MarkNotFound(&'static str),
    #[error("STOP leaves {0}")]
    Unbalanced(&'static str),
    #[error("memo key {0} not found")]
    MemoNotFound(u64),
    #[error("invalid {opcode}: {why}")]
    Invalid { opcode: &'static str, why: String },
    #[error("recursive structures are not supported (an object contains itself)")]
    Recursive,
    #[error("limit exceeded: {what} (limit {limit})")]
    Limit { what: &'static str, limit: usize },
}

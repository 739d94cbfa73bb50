//! The shapes the server writes and reads (spec 3.7, 3.8 and 4.5): exceptions, manager
//! tokens and proxies, and the few builtin `REDUCE` forms that are exactly a plain value.
//! Recognising is by names only; nothing is resolved.

use super::Pickle;

/// The module of `Token`, `RebuildProxy`, `AutoProxy` and the proxy classes.
pub const MANAGERS: &str = "multiprocessing.managers";

/// `module.name` as a global.
pub fn global(module: &str, name: &str) -> Pickle {
    Pickle::Global {
        module: module.to_owned(),
        name: name.to_owned(),
    }
}

/// An exception instance as CPython's default `__reduce__` pickles it (`GLOBAL`, the args
/// tuple, `REDUCE`): `exception("builtins", "KeyError", vec![key])`. For `queue.Empty` write
/// `("queue", "Empty")`, not `_queue` (spec 3.8: older clients lack `_queue`).
pub fn exception(module: &str, name: &str, args: Vec<Pickle>) -> Pickle {
    Pickle::Reduce {
        callable: Box::new(global(module, name)),
        args: Box::new(Pickle::Tuple(args)),
    }
}

/// A `multiprocessing.managers.Token` as CPython pickles it: `Token` `()` `NEWOBJ`, then
/// `BUILD` with the state tuple `(typeid, address, id)`. `address` is `(host, port)` for TCP
/// or a str for a Unix socket.
pub fn token(typeid: &str, address: Pickle, id: &str) -> Pickle {
    Pickle::Build {
        object: Box::new(Pickle::NewObj {
            class: Box::new(global(MANAGERS, "Token")),
            args: Box::new(Pickle::Tuple(Vec::new())),
            kwargs: None,
        }),
        state: Box::new(Pickle::Tuple(vec![
            Pickle::Str(typeid.to_owned()),
            address,
            Pickle::Str(id.to_owned()),
        ])),
    }
}

/// A recognised `Token`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenRef<'a> {
    pub typeid: &'a str,
    pub address: &'a Pickle,
    pub id: &'a str,
}

/// A recognised `RebuildProxy(func, token, serializer, kwds)`: a proxy sent as a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProxyRef<'a> {
    /// `AutoProxy` or the proxy class (`DictProxy`, ...), usually a [`Pickle::Global`].
    pub func: &'a Pickle,
    pub token: TokenRef<'a>,
    pub serializer: &'a str,
    /// `{'exposed': (...)}` for auto proxies, else `{}`.
    pub kwds: &'a Pickle,
}

/// `(module, name)` of a [`Pickle::Global`].
pub fn as_global(value: &Pickle) -> Option<(&str, &str)> {
    match value {
        Pickle::Global { module, name } => Some((module, name)),
        _ => None,
    }
}

fn is_global(value: &Pickle, module: &str, name: &str) -> bool {
    as_global(value) == Some((module, name))
}

/// The argument tuple of `module.name(*args)`.
fn reduce_args<'a>(value: &'a Pickle, module: &str, name: &str) -> Option<&'a [Pickle]> {
    match value {
        Pickle::Reduce { callable, args } if is_global(callable, module, name) => match &**args {
            Pickle::Tuple(items) => Some(items),
            _ => None,
        },
        _ => None,
    }
}

/// Reads a `Token` in either of CPython's forms: `NEWOBJ` (protocol 2+) or
/// `copyreg._reconstructor(Token, object, None)` (protocols 0 and 1), then `BUILD` with the
/// state `(typeid, address, id)`.
pub fn as_token(value: &Pickle) -> Option<TokenRef<'_>> {
    let Pickle::Build { object, state } = value else {
        return None;
    };
    let is_token_class = |c: &Pickle| is_global(c, MANAGERS, "Token");
    let object_ok = match &**object {
        Pickle::NewObj {
            class,
            args,
            kwargs: None,
        } => is_token_class(class) && **args == Pickle::Tuple(Vec::new()),
        other => matches!(
            reduce_args(other, "copyreg", "_reconstructor"),
            Some([class, base, Pickle::None])
                if is_token_class(class) && is_global(base, "builtins", "object")
        ),
    };
    match &**state {
        Pickle::Tuple(items) if object_ok => match items.as_slice() {
            [Pickle::Str(typeid), address, Pickle::Str(id)] => Some(TokenRef {
                typeid,
                address,
                id,
            }),
            _ => None,
        },
        _ => None,
    }
}

/// Reads `multiprocessing.managers.RebuildProxy(func, token, serializer, kwds)`.
pub fn as_rebuild_proxy(value: &Pickle) -> Option<ProxyRef<'_>> {
    match reduce_args(value, MANAGERS, "RebuildProxy")? {
        [func, token, Pickle::Str(serializer), kwds] => Some(ProxyRef {
            func,
            token: as_token(token)?,
            serializer,
            kwds,
        }),
        _ => None,
    }
}

/// An int argument (bools are ints in Python).
fn small_int(value: &Pickle) -> Option<i128> {
    match value {
        Pickle::Int(v) => Some(*v),
        Pickle::Bool(b) => Some(i128::from(*b)),
        _ => None,
    }
}

fn int_or_none(value: &Pickle) -> Option<Option<i128>> {
    match value {
        Pickle::None => Some(None),
        other => small_int(other).map(Some),
    }
}

/// `slice(start, stop, step)` with int or `None` parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceArgs {
    pub start: Option<i128>,
    pub stop: Option<i128>,
    pub step: Option<i128>,
}

/// Reads `builtins.slice(...)` (1 to 3 arguments, as `slice()` takes them) whose parts are
/// ints that fit an `i128`, or `None`.
pub fn as_slice(value: &Pickle) -> Option<SliceArgs> {
    let args = reduce_args(value, "builtins", "slice")?;
    let parts = args.iter().map(int_or_none).collect::<Option<Vec<_>>>()?;
    let (start, stop, step) = match parts.as_slice() {
        [stop] => (None, *stop, None),
        [start, stop] => (*start, *stop, None),
        [start, stop, step] => (*start, *stop, *step),
        _ => return None,
    };
    Some(SliceArgs { start, stop, step })
}

/// `range(start, stop, step)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeArgs {
    pub start: i128,
    pub stop: i128,
    pub step: i128,
}

/// Reads `builtins.range(...)` (1 to 3 int arguments, a non-zero step).
pub fn as_range(value: &Pickle) -> Option<RangeArgs> {
    let args = reduce_args(value, "builtins", "range")?;
    let parts = args.iter().map(small_int).collect::<Option<Vec<_>>>()?;
    let (start, stop, step) = match parts.as_slice() {
        [stop] => (0, *stop, 1),
        [start, stop] => (*start, *stop, 1),
        [start, stop, step] => (*start, *stop, *step),
        _ => return None,
    };
    (step != 0).then_some(RangeArgs { start, stop, step })
}

/// A float argument; ints only when `float()` of them is exact.
fn exact_float(value: &Pickle) -> Option<f64> {
    const EXACT: i128 = 1 << 53;
    match value {
        Pickle::Float(f) => Some(*f),
        other => small_int(other)
            .filter(|v| (-EXACT..=EXACT).contains(v))
            .map(|v| v as f64),
    }
}

/// Reads `builtins.complex(real[, imag])` with float (or exactly representable int) parts:
/// `(real, imag)`.
pub fn as_complex(value: &Pickle) -> Option<(f64, f64)> {
    match reduce_args(value, "builtins", "complex")? {
        [] => Some((0.0, 0.0)),
        [real] => Some((exact_float(real)?, 0.0)),
        [real, imag] => Some((exact_float(real)?, exact_float(imag)?)),
        _ => None,
    }
}

/// The bytes `s.encode(encoding)` gives for the encodings CPython's picklers use.
fn encode_str(s: &Pickle, encoding: &Pickle) -> Option<Vec<u8>> {
    let (Pickle::Str(s), Pickle::Str(encoding)) = (s, encoding) else {
        return None;
    };
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "latin-1" | "latin1" | "iso-8859-1" => {
            s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
        }
        "utf-8" | "utf8" => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

/// Items of an iterable argument that is a plain container, when their order is the one
/// Python iterates in (`list(a_set)` follows hashes, not the pickle's order).
fn iterable_items(value: &mut Pickle, unordered_ok: bool) -> Option<&mut Vec<Pickle>> {
    match value {
        Pickle::List(v) | Pickle::Tuple(v) => Some(v),
        Pickle::Set(v) | Pickle::FrozenSet(v) if unordered_ok => Some(v),
        _ => None,
    }
}

/// The plain value of an exact builtin `REDUCE` form, if `value` is one (its arguments
/// already normalised). Moves what it needs out of `value`, so only call it to replace it.
#[inline(never)] // keeps the recursive `normalize_in_place` frame small
fn plain(value: &mut Pickle) -> Option<Pickle> {
    let Pickle::Reduce { callable, args } = value else {
        return None;
    };
    let (module, name) = as_global(callable)?;
    let Pickle::Tuple(args) = &mut **args else {
        return None;
    };
    let take = std::mem::take::<Vec<u8>>;
    let mut items = |make: fn(Vec<Pickle>) -> Pickle, unordered_ok| match args.as_mut_slice() {
        [] => Some(make(Vec::new())),
        [iterable] => iterable_items(iterable, unordered_ok).map(|v| make(std::mem::take(v))),
        _ => None,
    };
    match (module, name) {
        ("builtins", "bytearray") => match args.as_mut_slice() {
            [] => Some(Pickle::ByteArray(Vec::new())),
            [Pickle::Bytes(b) | Pickle::ByteArray(b)] => Some(Pickle::ByteArray(take(b))),
            [s, encoding] => encode_str(s, encoding).map(Pickle::ByteArray),
            _ => None,
        },
        ("builtins", "bytes") => match args.as_mut_slice() {
            [] => Some(Pickle::Bytes(Vec::new())),
            [Pickle::Bytes(b) | Pickle::ByteArray(b)] => Some(Pickle::Bytes(take(b))),
            [s, encoding] => encode_str(s, encoding).map(Pickle::Bytes),
            _ => None,
        },
        // How CPython pickles non-empty `bytes` for protocols 0-2.
        ("_codecs", "encode") => match args.as_slice() {
            [s, encoding] => encode_str(s, encoding).map(Pickle::Bytes),
            _ => None,
        },
        ("builtins", "set") => items(Pickle::Set, true),
        ("builtins", "frozenset") => items(Pickle::FrozenSet, true),
        ("builtins", "list") => items(Pickle::List, false),
        ("builtins", "tuple") => items(Pickle::Tuple, false),
        ("builtins", "dict") => match args.as_mut_slice() {
            [] => Some(Pickle::Dict(Vec::new())),
            [Pickle::Dict(pairs)] => Some(Pickle::Dict(std::mem::take(pairs))),
            _ => None,
        },
        _ => None,
    }
}

/// Rewrites, everywhere in `value`, the builtin `REDUCE` forms that are exactly a plain value:
/// `bytearray(b)`/`bytearray(s, 'latin-1')` → `ByteArray`, `bytes()` and protocol 0-2's
/// `_codecs.encode(s, 'latin1')` → `Bytes`, `set([...])`/`frozenset`/`list`/`tuple` of a
/// list or tuple → that container, `dict({...})`/`dict()` → `Dict`.
/// Like `ADDITEMS`, a set keeps duplicate items; deduplicating needs Python's `==`.
/// Slices, ranges and complex numbers stay `Reduce` nodes: read them with [`as_slice`],
/// [`as_range`], [`as_complex`].
pub fn normalize(mut value: Pickle) -> Pickle {
    normalize_in_place(&mut value);
    value
}

/// Children first, then the node itself (plain loops: one small frame per level).
fn normalize_in_place(value: &mut Pickle) {
    normalize_children(value);
    if let Some(plain) = plain(value) {
        *value = plain;
    }
}

/// The object a `BUILD`, `APPENDS`, `SETITEMS` or `ADDITEMS` mutates: its insides are
/// normalised, but it stays the opaque object it was. Read back, a plain value in its place
/// (`_codecs.encode(...)` as `Bytes`) would be refused ("cannot append to bytes"), and in
/// Python that mutation of a plain value is an error too, so the form is kept as it came.
fn normalize_target(target: &mut Pickle) {
    normalize_children(target);
}

fn normalize_children(value: &mut Pickle) {
    match value {
        Pickle::Tuple(v) | Pickle::List(v) | Pickle::Set(v) | Pickle::FrozenSet(v) => {
            for item in v {
                normalize_in_place(item);
            }
        }
        Pickle::Dict(pairs) => {
            for (k, v) in pairs {
                normalize_in_place(k);
                normalize_in_place(v);
            }
        }
        Pickle::Reduce {
            callable: a,
            args: b,
        } => {
            normalize_in_place(a);
            normalize_in_place(b);
        }
        Pickle::Build { object, state } => {
            normalize_target(object);
            normalize_in_place(state);
        }
        Pickle::NewObj {
            class,
            args,
            kwargs,
        } => {
            normalize_in_place(class);
            normalize_in_place(args);
            if let Some(kwargs) = kwargs {
                normalize_in_place(kwargs);
            }
        }
        Pickle::Obj { class, args } => {
            normalize_in_place(class);
            for item in args {
                normalize_in_place(item);
            }
        }
        Pickle::Appends { target, items } | Pickle::AddItems { target, items } => {
            normalize_target(target);
            for item in items {
                normalize_in_place(item);
            }
        }
        Pickle::SetItems { target, items } => {
            normalize_target(target);
            for (k, v) in items {
                normalize_in_place(k);
                normalize_in_place(v);
            }
        }
        _ => {}
    }
}

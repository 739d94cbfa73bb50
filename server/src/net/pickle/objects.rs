//! Method calls on a proxy connection: from CPython's request to the node's call and back.
//! Most methods pass straight through (the node's method names and argument orders are
//! Python's); this file holds the few that need shaping: keyword arguments, the fallbacks
//! CPython's server gives every object (`__repr__`, `__str__`, `#GETVALUE`), the dict
//! iterator (`#PROXY`), results whose Python type differs from their stored form (a dict's
//! `items()` are tuples), and keys that Python refuses (`unhashable type: 'list'`).

use bytes::Bytes;
use syncman_protocol::pickle::{self, Pickle};
use syncman_protocol::value::{encode, reinsert_index, MAX_DECODED_ITEMS};
use syncman_protocol::{ArgList, Args, ErrorKind, RemoteError, Value};
use tracing::warn;

use super::convert::{self, NotSent};
use super::errors::{to_python, ArgError};
use super::methods::{bind_keywords, py_type, PyType};
use super::nested::contents_of_proxy;
use super::{PyReply, Request};
use crate::node::backend::{Backend, ObjectId};
use crate::node::object::{Handover, Reply};
use crate::node::session::Session;

/// What a request needs: a node call (which may wait), or an answer already.
pub(super) enum Prepared {
    Call(NodeCall),
    Done(PyReply),
}

/// A call on a node object, and how to turn its answer into CPython's.
pub(crate) struct NodeCall {
    pub object: ObjectId,
    pub node_method: &'static str,
    pub args: ArgList,
    shape: Shape,
    /// The key a `KeyError` is about.
    key: Option<Pickle>,
    /// What the answer takes out of the object, if anything: put back when the answer
    /// cannot reach the client, as an answer a caller never received is.
    takes: Option<Taken>,
    /// `dict.pop`'s default: the answer to the node's `KeyError` (boxed: rarely there).
    default: Option<Box<Pickle>>,
}

/// Something a call takes out of its object, and how it goes back.
enum Taken {
    /// A queue item (`get`, `get_nowait`): back to the front.
    QueueItem,
    /// `list.pop(i)`: back where it was, with `insert(at, item)`.
    ListItem { at: i64 },
    /// `dict.pop(key[, default])`: back under its key, with `setdefault(key, value)` (it
    /// moves to the end of the order). The node is never given the default (see
    /// `NodeCall::default`), so its answer is always a value taken.
    DictValue { key: Bytes },
    /// `dict.popitem()`: the `[key, value]` answer back with `setdefault(key, value)` (it
    /// was the last item, and is again).
    DictItem,
}

impl Taken {
    /// What a call of `method` on a `typeid` takes, given its node arguments.
    fn by(typeid: &str, method: &str, args: &ArgList) -> Option<Taken> {
        // Read afresh, only for the calls that take something.
        let args = || args.args();
        match (typeid, method) {
            ("Queue" | "JoinableQueue", "get" | "get_nowait") => Some(Taken::QueueItem),
            ("list", "pop") => {
                let index = match args().opt_value() {
                    Ok(None) => -1,
                    Ok(Some(v)) => v.as_int()?,
                    Err(_) => return None,
                };
                // Beyond i64 the pop fails (no list is that long): nothing is taken.
                let at = reinsert_index(i64::try_from(index).ok()?);
                Some(Taken::ListItem { at })
            }
            ("dict", "pop") => Some(Taken::DictValue {
                key: args().opt_raw()?,
            }),
            ("dict", "popitem") => Some(Taken::DictItem),
            _ => None,
        }
    }
}

/// How a node answer becomes the Python value CPython's server would return.
enum Shape {
    /// As stored.
    Plain,
    /// A list of items → `array.array(typecode, items)` (a slice of an `Array`).
    TypedArray(Pickle),
    /// `[[k, v], ...]` → a list of `(k, v)` tuples (`dict.items()`).
    Pairs,
    /// `[k, v]` → a `(k, v)` tuple (`dict.popitem()`).
    Pair,
}

fn type_error(message: impl Into<String>) -> PyReply {
    PyReply::Failure(to_python(&RemoteError::type_error(message.into()), None))
}

/// An argument Python would refuse, with the exception Python raises.
fn arg_error(e: ArgError) -> PyReply {
    PyReply::Failure(to_python(&e.to_remote(), None))
}

/// The node method for a Python method name (they are the same, interned for the call).
fn node_method(ty: &PyType, method: &str) -> Option<&'static str> {
    ty.exposed.iter().copied().find(|m| *m == method)
}

/// Resolves a request to a node call, or answers it.
pub(super) async fn prepare<B: Backend>(
    session: &mut Session<B>,
    request: Request,
) -> Result<Prepared, PyReply> {
    let Request {
        ident,
        method,
        args,
        kwds,
    } = request;
    let Some(ident) = ident else {
        return Err(PyReply::traceback(format!(
            "KeyError: a control call ('{method}') on a proxy connection"
        )));
    };
    let Some((object, shared)) = ident
        .parse::<ObjectId>()
        .ok()
        .and_then(|id| Some((id, session.node().backend.object(id)?)))
    else {
        return Err(PyReply::traceback(format!(
            "KeyError: '{ident}' (no such object)"
        )));
    };
    if shared.typeid() == ITERATOR {
        return iterator_call(session, object, &method).map(Prepared::Done);
    }
    let Some(ty) = py_type(shared.typeid()) else {
        return Err(PyReply::traceback(format!(
            "the object '{ident}' has typeid '{}', which CPython clients cannot use",
            shared.typeid()
        )));
    };
    // The type is all this needs of the object: the node looks it up again for the call.
    drop(shared);
    let Some(node_method) = node_method(ty, &method) else {
        return fallback(session, object, ty, &method)
            .await
            .map(Prepared::Done);
    };
    if method == "__iter__" && ty.typeid == "dict" {
        return dict_iterator(session, object).await.map(Prepared::Done);
    }
    if method == "__reversed__" {
        return reversed_list(session, object).map(Prepared::Done);
    }
    let mut args = args;
    let mut kwds = kwds;
    // A dict call's key, kept for the `KeyError` it may answer.
    let mut keeps_key = false;
    match (ty.typeid, method.as_str()) {
        ("list", "sort") => {
            // `sort(key=None, reverse=False)`: a key function is Python code.
            let bound = bind_keywords("sort", ty.params_of("sort"), args, kwds, convert::default)
                .map_err(type_error)?;
            let mut bound = bound.into_iter();
            if !matches!(bound.next(), None | Some(Pickle::None)) {
                return Err(type_error(
                    "sort(key=...) runs Python code, which the node cannot; sort without a key",
                ));
            }
            args = bound.collect();
            kwds = Vec::new();
        }
        ("dict", "update") => {
            // `update(E=(), **F)`: one iterable of pairs for the node.
            let args_in = args
                .into_iter()
                .map(|a| contents_of_proxy(session.node(), a))
                .collect::<Result<Vec<_>, _>>()
                .map_err(type_error)?;
            args = vec![convert::merge_update(args_in, kwds).map_err(arg_error)?];
            kwds = Vec::new();
        }
        // `extend(iterable)`, `+= iterable`, `[i:j] = iterable`: any iterable a client can
        // send (a str, a dict, a range, ...) as the list Python would make of it.
        ("list", "extend" | "__iadd__") if args.len() == 1 => {
            let iterable = contents_of_proxy(session.node(), args.remove(0)).map_err(type_error)?;
            args.push(convert::iterable_to_list(iterable).map_err(arg_error)?);
        }
        ("list", "__setitem__") if args.len() == 2 && pickle::as_slice(&args[0]).is_some() => {
            let iterable = contents_of_proxy(session.node(), args.remove(1)).map_err(type_error)?;
            args.push(convert::iterable_to_list(iterable).map_err(arg_error)?);
        }
        ("dict", _) if takes_key(&method) => {
            if let Some(k) = args.first() {
                convert::check_hashable(k).map_err(type_error)?;
                keeps_key = true;
            }
        }
        _ => {}
    }
    let mut args = bind_keywords(&method, ty.params_of(&method), args, kwds, convert::default)
        .map_err(type_error)?;
    // `dict.pop(key, default)`: the node is asked `pop(key)` and its `KeyError` is answered
    // with the default here, so that any answer is a value taken out (to put back if it
    // cannot be sent), never a default that might look like one.
    let default = match (ty.typeid, method.as_str()) {
        ("dict", "pop") if args.len() == 2 => args.pop().map(Box::new),
        _ => None,
    };
    let slice_get = args.first().is_some_and(|i| pickle::as_slice(i).is_some());
    super::nested::keep_referents(session.node(), &args).await;
    let node_args = convert::to_args(&args).map_err(|e| PyReply::Failure(to_python(&e, None)))?;
    // The first positional argument: binding keywords only appends after it.
    let key = keeps_key.then(|| args.into_iter().next()).flatten();
    let args = node_args;
    let shape = match (ty.typeid, method.as_str()) {
        ("dict", "items") => Shape::Pairs,
        ("dict", "popitem") => Shape::Pair,
        ("Array", "__getitem__") if slice_get => {
            Shape::TypedArray(call_now(session, object, "typecode", &[])?)
        }
        _ => Shape::Plain,
    };
    let takes = Taken::by(ty.typeid, &method, &args);
    Ok(Prepared::Call(NodeCall {
        object,
        node_method,
        args,
        shape,
        key,
        takes,
        default,
    }))
}

/// Dict methods whose first argument is a key.
fn takes_key(method: &str) -> bool {
    matches!(
        method,
        "__getitem__"
            | "__setitem__"
            | "__delitem__"
            | "__contains__"
            | "get"
            | "pop"
            | "setdefault"
    )
}

impl NodeCall {
    /// CPython's answer for the node's.
    pub(crate) async fn finish<B: Backend>(
        mut self,
        session: &mut Session<B>,
        reply: Reply,
    ) -> PyReply {
        let bytes = match (reply, self.default.take()) {
            (Ok(bytes), _) => bytes,
            (Err(e), Some(default)) if e.kind == ErrorKind::KeyError => {
                return PyReply::Return(*default)
            }
            (Err(e), _) => return PyReply::Failure(to_python(&e, self.key.as_ref())),
        };
        let value = match python_value(&bytes) {
            Ok(value) => value,
            Err(reply) => {
                self.give_back(session, bytes);
                return reply;
            }
        };
        let shape = std::mem::replace(&mut self.shape, Shape::Plain);
        let value = match shape {
            Shape::Plain => value,
            Shape::Pairs => match value {
                Pickle::List(items) => Pickle::List(items.into_iter().map(to_tuple).collect()),
                other => other,
            },
            Shape::Pair => to_tuple(value),
            Shape::TypedArray(typecode) => typed_array(typecode, value),
        };
        if self.takes.is_none() {
            return PyReply::Return(value);
        }
        // Pickled now, so that an item too large for the client's frame goes back before
        // the client hears why (its pickle may be larger than the stored value).
        let mut pickled = Vec::new();
        pickle::dumps_pair_into(&mut pickled, "#RETURN", &value);
        let max = session.node().config.max_frame;
        if pickled.len() > max {
            self.give_back(session, bytes);
            return PyReply::too_large(pickled.len(), max);
        }
        PyReply::Encoded(pickled)
    }

    /// What an answer that cannot be sent took goes back: a queue item to the front
    /// (`SharedObject::undelivered`), a list item or dict entry by the call that undoes
    /// its taking. Other answers took nothing.
    fn give_back<B: Backend>(&self, session: &mut Session<B>, answer: Bytes) {
        let undo = match &self.takes {
            None => return,
            Some(Taken::QueueItem) => {
                if let Some(object) = session.node().backend.object(self.object) {
                    object.undelivered(Handover::Item, session.id(), Ok(answer));
                }
                return;
            }
            Some(Taken::ListItem { at }) => (
                "insert",
                encode::array([encode::int((*at).into()), answer].iter()),
            ),
            Some(Taken::DictValue { key }) => {
                ("setdefault", encode::array([key.clone(), answer].iter()))
            }
            // `[key, value]`: the arguments as they are.
            Some(Taken::DictItem) => ("setdefault", answer),
        };
        let (method, args) = undo;
        let given_back = ArgList::from_array(args)
            .map_err(|e| e.to_string())
            .and_then(
                |args| match session.call(super::CALL, self.object, method, args.args()) {
                    Some(Ok(_)) => Ok(()),
                    Some(Err(e)) => Err(e.to_string()),
                    None => {
                        let _ = session.cancel(super::CALL);
                        Err(format!("'{method}' waited"))
                    }
                },
            );
        if let Err(why) = given_back {
            warn!(
                session = session.id(),
                object = self.object,
                "an item a Python client could not be sent was not given back: {why}"
            );
        }
    }
}

/// A node's answer as the Python value a client gets; else the reply that says why not:
/// more items than the node converts at once is Python's `MemoryError` for that call (a
/// limit), a value that cannot be read a `#TRACEBACK`.
fn python_value(bytes: &[u8]) -> Result<Pickle, PyReply> {
    convert::from_bytes(bytes).map_err(|e| match e {
        NotSent::TooManyItems => {
            let e = RemoteError::new(
                ErrorKind::Other("MemoryError".into()),
                format!(
                    "the result has more than {MAX_DECODED_ITEMS} items, more than the node \
                     converts for a Python client at once"
                ),
            );
            PyReply::Failure(to_python(&e, None))
        }
        NotSent::Unreadable(why) => {
            PyReply::traceback(format!("cannot read a stored value: {why}"))
        }
    })
}

/// `array.array(typecode, items)`, as CPython's server returns an `Array`'s value or slice.
fn typed_array(typecode: Pickle, items: Pickle) -> Pickle {
    Pickle::Reduce {
        callable: Box::new(pickle::global("array", "array")),
        args: Box::new(Pickle::Tuple(vec![typecode, items])),
    }
}

fn to_tuple(value: Pickle) -> Pickle {
    match value {
        Pickle::List(items) => Pickle::Tuple(items),
        other => other,
    }
}

/// Runs a node method that never waits (a read for `__repr__`, `#GETVALUE`, ...).
fn call_now<B: Backend>(
    session: &mut Session<B>,
    object: ObjectId,
    method: &str,
    args: &[Value],
) -> Result<Pickle, PyReply> {
    let args = ArgList::of(args);
    match session.call(super::CALL, object, method, args.args()) {
        Some(Ok(bytes)) => python_value(&bytes),
        Some(Err(e)) => Err(PyReply::Failure(to_python(&e, None))),
        None => {
            // Reads never park; withdraw it if one ever did.
            let _ = session.cancel(super::CALL);
            Err(PyReply::traceback(format!("'{method}' waited on the node")))
        }
    }
}

/// CPython's server answers any object's `__repr__`, `__str__` and `#GETVALUE` itself when
/// the method is not exposed.
async fn fallback<B: Backend>(
    session: &mut Session<B>,
    object: ObjectId,
    ty: &PyType,
    method: &str,
) -> Result<PyReply, PyReply> {
    match method {
        "__repr__" | "__str__" => {
            let text = match ty.typeid {
                "dict" | "list" => convert::py_repr(&call_now(session, object, "copy", &[])?),
                // `managers.Namespace.__repr__`: public attributes as `name=repr`, sorted.
                // Formatted here, where a value stored as a pickle has a class name.
                "Namespace" => {
                    let Pickle::Dict(attributes) = call_now(session, object, "items", &[])? else {
                        return Err(PyReply::traceback("a Namespace's items are not a dict"));
                    };
                    let mut parts: Vec<String> = attributes
                        .iter()
                        .filter_map(|(name, value)| match name {
                            Pickle::Str(name) if !name.starts_with('_') => {
                                Some(format!("{name}={}", convert::py_repr(value)))
                            }
                            _ => None,
                        })
                        .collect();
                    parts.sort();
                    format!("Namespace({})", parts.join(", "))
                }
                // `array('i', [1, 2])`; `array('i')` when empty.
                "Array" => {
                    let typecode = call_now(session, object, "typecode", &[])?;
                    match call_now(session, object, "tolist", &[])? {
                        Pickle::List(items) if items.is_empty() => {
                            format!("array({})", convert::py_repr(&typecode))
                        }
                        items => format!(
                            "array({}, {})",
                            convert::py_repr(&typecode),
                            convert::py_repr(&items)
                        ),
                    }
                }
                // `managers.Value.__repr__`: `Value('i', 5)`.
                "Value" => format!(
                    "Value({}, {})",
                    convert::py_repr(&call_now(session, object, "typecode", &[])?),
                    convert::py_repr(&call_now(session, object, "get", &[])?)
                ),
                other => format!("<{} object at {object:#x}>", python_class(other)),
            };
            Ok(PyReply::Return(Pickle::Str(text)))
        }
        // `proxy._getvalue()`: a copy of the referent, pickled as CPython's server pickles it.
        "#GETVALUE" => match ty.typeid {
            "dict" | "list" => Ok(PyReply::Return(call_now(session, object, "copy", &[])?)),
            "Value" => {
                let typecode = call_now(session, object, "typecode", &[])?;
                let value = call_now(session, object, "get", &[])?;
                Ok(PyReply::Return(instance(
                    "Value",
                    vec![("_typecode", typecode), ("_value", value)],
                )))
            }
            "Namespace" => {
                // The node's `items` is a map of the attributes.
                let attributes = match call_now(session, object, "items", &[])? {
                    Pickle::Dict(pairs) => pairs,
                    _ => Vec::new(),
                };
                Ok(PyReply::Return(Pickle::Build {
                    object: Box::new(new_object("Namespace")),
                    state: Box::new(Pickle::Dict(attributes)),
                }))
            }
            "Array" => {
                let typecode = call_now(session, object, "typecode", &[])?;
                let items = call_now(session, object, "tolist", &[])?;
                Ok(PyReply::Return(typed_array(typecode, items)))
            }
            // Locks, queues, events, ...: CPython's server cannot pickle them either.
            other => Err(PyReply::traceback(format!(
                "TypeError: cannot pickle '{}' object",
                python_class(other)
            ))),
        },
        _ => Err(PyReply::traceback(format!(
            "AttributeError: method '{method}' of {} object is not in the list of allowed methods",
            ty.typeid
        ))),
    }
}

/// `multiprocessing.managers.<class>` made without `__init__`, as pickle protocol 2+ makes an
/// instance (`copyreg.__newobj__`): `NEWOBJ` of the class, then `BUILD` with its state.
fn new_object(class: &str) -> Pickle {
    Pickle::NewObj {
        class: Box::new(pickle::global(pickle::MANAGERS, class)),
        args: Box::new(Pickle::Tuple(vec![])),
        kwargs: None,
    }
}

/// An instance of `multiprocessing.managers.<class>` with these attributes.
fn instance(class: &str, attributes: Vec<(&str, Pickle)>) -> Pickle {
    Pickle::Build {
        object: Box::new(new_object(class)),
        state: Box::new(Pickle::Dict(
            attributes
                .into_iter()
                .map(|(k, v)| (Pickle::Str(k.into()), v))
                .collect(),
        )),
    }
}

/// The Python class a typeid's objects are, for reprs.
fn python_class(typeid: &str) -> &'static str {
    match typeid {
        "Queue" | "JoinableQueue" => "queue.Queue",
        "Event" => "threading.Event",
        "Lock" => "_thread.lock",
        "RLock" => "_thread.RLock",
        "Semaphore" => "threading.Semaphore",
        "BoundedSemaphore" => "threading.BoundedSemaphore",
        "Condition" => "threading.Condition",
        "Barrier" => "threading.Barrier",
        "Value" => "multiprocessing.managers.Value",
        "Array" => "array.array",
        _ => "object",
    }
}

/// The typeid of the node's dict iterators (CPython's `Iterator`).
pub(super) const ITERATOR: &str = "Iterator";

/// `iter(dict_proxy)`: a new iterator object over the dict's keys as they are now, which
/// fails with `RuntimeError` if the dict changes size meanwhile, as a Python dict iterator
/// does. The client gets a proxy for it (`#PROXY`).
async fn dict_iterator<B: Backend>(
    session: &mut Session<B>,
    dict: ObjectId,
) -> Result<PyReply, PyReply> {
    let keys = call_now(session, dict, "keys", &[])?;
    let len = match &keys {
        Pickle::List(items) => items.len(),
        _ => 0,
    };
    let ctor = ArgList::of(&[
        convert::to_value(&keys).map_err(|e| PyReply::Failure(to_python(&e, None)))?,
        Value::Int(dict as i128),
        Value::Int(len as i128),
    ]);
    let id = session
        .node()
        .backend
        .create(ITERATOR, ctor.args())
        .await
        .map_err(|e| PyReply::Failure(to_python(&e, None)))?;
    Ok(PyReply::Proxy {
        exposed: &["__next__", "send", "throw", "close"],
        token: pickle::token(ITERATOR, Pickle::None, &id.to_string()),
    })
}

/// A call on a dict iterator: the node's iterator checks the dict's size itself (Python's
/// `RuntimeError` if it changed); its end is Python's `StopIteration`.
fn iterator_call<B: Backend>(
    session: &mut Session<B>,
    iterator: ObjectId,
    method: &str,
) -> Result<PyReply, PyReply> {
    match method {
        "__next__" => match session.call(super::CALL, iterator, "__next__", Args::empty()) {
            Some(Ok(key)) => python_value(&key).map(PyReply::Return),
            // `StopIteration` at the end, `RuntimeError` if the dict changed size.
            Some(Err(e)) => Ok(PyReply::Failure(to_python(&e, None))),
            None => {
                // `__next__` never parks; withdraw it if it ever did.
                let _ = session.cancel(super::CALL);
                Err(PyReply::traceback("'__next__' waited on the node"))
            }
        },
        "close" => Ok(PyReply::Return(Pickle::None)),
        other => Err(PyReply::traceback(format!(
            "AttributeError: the dict iterator has no method '{other}'"
        ))),
    }
}

/// `reversed(list_proxy)`: CPython's server sends a pickled list iterator; this sends
/// `iter(reversed copy)`, which unpickles to the same kind of object.
fn reversed_list<B: Backend>(session: &mut Session<B>, list: ObjectId) -> Result<PyReply, PyReply> {
    let Pickle::List(mut items) = call_now(session, list, "copy", &[])? else {
        return Err(PyReply::traceback("a list's copy is not a list"));
    };
    items.reverse();
    Ok(PyReply::Return(Pickle::Reduce {
        callable: Box::new(Pickle::Global {
            module: "builtins".into(),
            name: "iter".into(),
        }),
        args: Box::new(Pickle::Tuple(vec![Pickle::List(items)])),
    }))
}

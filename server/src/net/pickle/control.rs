//! Control calls on one-shot connections: `create`, `incref`, `decref`, `dummy`,
//! `get_methods`, `number_of_objects`, `debug_info`, `shutdown` (CPython's
//! `Server.public`). Objects a CPython client creates carry free-standing reference counts,
//! as in CPython: `create` counts one, every proxy `incref`s and `decref`s its own, and the
//! object goes at zero. No session owns them, since each call comes on its own connection.

use std::sync::Arc;

use syncman_protocol::pickle::{self, Pickle};

use super::convert;
use super::errors::ArgError;
use super::methods::{bind_keywords, PyType};
use super::served;
use super::{PyReply, Request};
use crate::node::backend::{Backend, ObjectId};
use crate::node::Node;

pub(super) async fn call<B: Backend>(node: &Arc<Node<B>>, request: Request) -> PyReply {
    let Request {
        method, args, kwds, ..
    } = request;
    match method.as_str() {
        "dummy" | "shutdown" => PyReply::Return(Pickle::None),
        "create" => create(node, args, kwds).await.unwrap_or_else(|e| e),
        "incref" => match ident_arg(&args) {
            Ok(id) => match node.backend.incref(id).await {
                Ok(()) => PyReply::Return(Pickle::None),
                Err(_) => PyReply::traceback(format!("KeyError: '{id}' (no such object)")),
            },
            Err(reply) => reply,
        },
        "decref" => match ident_arg(&args) {
            Ok(id) => {
                node.backend.decref(id).await;
                PyReply::Return(Pickle::None)
            }
            Err(reply) => reply,
        },
        "number_of_objects" => {
            PyReply::Return(Pickle::Int(node.backend.object_count().await as i128))
        }
        "debug_info" => PyReply::Return(Pickle::Str(debug_info(node).await)),
        "get_methods" => match args.first().and_then(pickle::as_token) {
            Some(token) => match served::python_type(&node.config, token.typeid) {
                Some(ty) => PyReply::Return(exposed(ty)),
                None => PyReply::traceback(format!("KeyError: '{}'", token.typeid)),
            },
            None => PyReply::traceback("get_methods takes a Token"),
        },
        other => PyReply::traceback(format!("AssertionError: {other:?} unrecognized")),
    }
}

/// The exposed methods as a tuple of str.
fn exposed(ty: &PyType) -> Pickle {
    Pickle::Tuple(
        ty.exposed
            .iter()
            .map(|m| Pickle::Str((*m).into()))
            .collect(),
    )
}

/// The one argument of `incref`/`decref`: an ident.
fn ident_arg(args: &[Pickle]) -> Result<ObjectId, PyReply> {
    match args {
        [Pickle::Str(ident)] => ident
            .parse()
            .map_err(|_| PyReply::traceback(format!("KeyError: '{ident}' (no such object)"))),
        _ => Err(PyReply::traceback("expected one ident")),
    }
}

/// `create(typeid, *args, **kwds)` → `(ident, exposed)`, one reference counted.
async fn create<B: Backend>(
    node: &Arc<Node<B>>,
    mut args: Vec<Pickle>,
    kwds: Vec<(String, Pickle)>,
) -> Result<PyReply, PyReply> {
    if args.is_empty() {
        return Err(PyReply::traceback("create needs a typeid"));
    }
    let Pickle::Str(typeid) = args.remove(0) else {
        return Err(PyReply::traceback("the typeid must be a str"));
    };
    let Some(ty) = served::python_type(&node.config, &typeid) else {
        return Err(PyReply::traceback(format!("KeyError: '{typeid}'")));
    };
    let named = served::lookup(&node.config, &typeid).and_then(|s| s.name.as_deref());
    // `list(p)`, `dict(p)`, `Array(code, p)` of a list or dict proxy: its contents.
    let args = if matches!(ty.typeid, "list" | "dict" | "Array") {
        args.into_iter()
            .map(|a| super::nested::contents_of_proxy(node, a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PyReply::traceback(format!("TypeError: {e}")))?
    } else {
        args
    };
    // Every error of `create` is `#TRACEBACK` in CPython (`RemoteError` to its client), not
    // `#ERROR`: the server's `handle_request` catches it, not `serve_client`.
    let ctor = constructor_args(ty, args, kwds)
        .map_err(|e| PyReply::traceback(format!("{}: {e}", e.class())))?;
    super::nested::keep_referents(node, &ctor).await;
    let ctor = convert::to_args(&ctor)
        .map_err(|e| PyReply::traceback(format!("{}: {}", e.kind.as_str(), e.message)))?;
    let made = match named {
        // A served name: the one object, made on first use (not reference-counted).
        Some(name) => node
            .backend
            .get_or_create(name, ty.typeid, ctor.args())
            .await
            .map(|(id, _)| id),
        None => node.backend.create(ty.typeid, ctor.args()).await,
    };
    let id = made.map_err(|e| PyReply::traceback(format!("{}: {}", e.kind.as_str(), e.message)))?;
    Ok(PyReply::Return(Pickle::Tuple(vec![
        Pickle::Str(id.to_string()),
        exposed(ty),
    ])))
}

/// The node constructor's positional arguments for a CPython `create`.
fn constructor_args(
    ty: &PyType,
    args: Vec<Pickle>,
    kwds: Vec<(String, Pickle)>,
) -> Result<Vec<Pickle>, ArgError> {
    match ty.typeid {
        // `dict(mapping_or_pairs, **kwds)`: one iterable of pairs.
        "dict" if args.is_empty() && kwds.is_empty() => Ok(vec![]),
        "dict" => Ok(vec![convert::merge_update(args, kwds)?]),
        // `Namespace(**kwds)`: the attributes as a map.
        "Namespace" if !args.is_empty() => Err(ArgError::Type(
            "Namespace() takes keyword arguments only".into(),
        )),
        "Namespace" if kwds.is_empty() => Ok(vec![]),
        "Namespace" => Ok(vec![Pickle::Dict(
            kwds.into_iter().map(|(k, v)| (Pickle::Str(k), v)).collect(),
        )]),
        // `Condition(lock=None)`: the lock proxy becomes the id of the node's object.
        "Condition" => {
            let mut bound = bind_keywords("Condition", ty.ctor, args, kwds, convert::default)?;
            match bound.pop() {
                None | Some(Pickle::None) if bound.is_empty() => Ok(vec![]),
                Some(lock) if bound.is_empty() => Ok(vec![Pickle::Int(lock_id(&lock)?.into())]),
                _ => Err(ArgError::Type(
                    "Condition() takes at most one argument (lock)".into(),
                )),
            }
        }
        // `Value(typecode, value, lock=True)`, `Array(typecode, sequence, lock=True)`:
        // the lock argument is CPython's client-side concern; the node always locks.
        "Value" | "Array" => {
            let mut bound = bind_keywords(ty.typeid, ty.ctor, args, kwds, convert::default)?;
            bound.truncate(2);
            // `array.array(typecode, iterable)` takes any iterable (a range, a tuple, ...);
            // a str or bytes initialiser is not a sequence of items there.
            if let (Some(sequence), "Array") = (bound.get_mut(1), ty.typeid) {
                if !matches!(
                    sequence,
                    Pickle::Str(_) | Pickle::Bytes(_) | Pickle::ByteArray(_)
                ) {
                    let taken = std::mem::replace(sequence, Pickle::None);
                    *sequence = convert::iterable_to_list(taken)?;
                }
            }
            Ok(bound)
        }
        "list" => {
            let mut bound = bind_keywords("list", ty.ctor, args, kwds, convert::default)?;
            if let Some(iterable) = bound.first_mut() {
                *iterable = convert::iterable_to_list(std::mem::replace(iterable, Pickle::None))?;
            }
            Ok(bound)
        }
        _ => Ok(bind_keywords(
            ty.typeid,
            ty.ctor,
            args,
            kwds,
            convert::default,
        )?),
    }
}

/// The object a `Condition(lock)` argument names: a proxy of this node's (the node then
/// checks that it is a `Lock` or `RLock`).
fn lock_id(lock: &Pickle) -> Result<ObjectId, String> {
    pickle::as_rebuild_proxy(lock)
        .and_then(|proxy| proxy.token.id.parse().ok())
        .ok_or_else(|| {
            "Condition(lock): lock must be a Lock or RLock proxy of this manager".to_owned()
        })
}

/// CPython's `debug_info`: one entry per object.
async fn debug_info<B: Backend>(node: &Arc<Node<B>>) -> String {
    node.backend
        .snapshot()
        .await
        .into_iter()
        .map(|o| format!("  {}:       refcount={}\n    {}", o.id, o.refs, o.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

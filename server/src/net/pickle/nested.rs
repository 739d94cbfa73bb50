//! Proxies stored inside other objects (a `Queue` in a `list`, a `dict` in a `dict`).
//!
//! A CPython client sends a proxy as `RebuildProxy(func, Token(typeid, address, id), ...)`.
//! The node keeps it as an opaque pickle, but the object it names must outlive the proxy
//! that sent it: a later reader rebuilds the proxy and increfs the object. CPython's server
//! does the same (`RebuildProxy` in the server keeps the referent in
//! `id_to_local_proxy_obj`, for as long as the server runs); so does the node, with one
//! reference per stored proxy that nobody gives back.
//!
//! The node knows its objects by id and typeid, not by the token's address: a client that
//! reached the node as `localhost`, through a tunnel or by another interface address still
//! names the same object (CPython compares addresses, and fails there: its issues #78740,
//! #139801, #119937).

use std::sync::Arc;

use syncman_protocol::pickle::{self, Pickle};
use syncman_protocol::Args;

use crate::node::backend::{Backend, ObjectId};
use crate::node::object::{CallCtx, Outcome};
use crate::node::Node;

/// Keeps alive every object of this node that a proxy inside `values` names.
pub(super) async fn keep_referents<B: Backend>(node: &Arc<Node<B>>, values: &[Pickle]) {
    let mut found = Vec::new();
    for value in values {
        proxies_in(value, &mut found);
    }
    for (typeid, id) in found {
        let Some(object) = node.backend.object(id) else {
            continue;
        };
        // A served typeid's token (`get_queue`) names an object of its type (`Queue`).
        let object_type = super::served::lookup(&node.config, &typeid)
            .map_or(typeid.as_str(), |s| s.object_type.as_str());
        if object.typeid() == object_type {
            // Fails only if the object went meanwhile: then there is nothing to keep.
            let _ = node.backend.incref(id).await;
        }
    }
}

/// A proxy of this node's `list` or `dict` where Python iterates its argument
/// (`l.extend(p)`, `d.update(p)`, `m.list(p)`): CPython's server unpickles such a proxy to
/// the object itself, so the argument becomes a copy of the object's contents. Any other
/// value is returned as it is (a proxy stored as a value stays a proxy).
pub(super) fn contents_of_proxy<B: Backend>(
    node: &Node<B>,
    value: Pickle,
) -> Result<Pickle, String> {
    let Some(object) = pickle::as_rebuild_proxy(&value)
        .and_then(|proxy| proxy.token.id.parse::<ObjectId>().ok())
        .and_then(|id| node.backend.object(id))
        .filter(|object| matches!(object.typeid(), "list" | "dict"))
    else {
        return Ok(value);
    };
    // A read: it never parks, and no session's state is involved.
    match object.call("copy", Args::empty(), &mut CallCtx::new(0)) {
        Outcome::Ready(Ok(copy)) => super::convert::from_bytes(&copy)
            .map_err(|_| format!("the {} proxy's contents cannot be read", object.typeid())),
        Outcome::Ready(Err(e)) => Err(e.message),
        Outcome::Park(_) => Err("copying a container waited".into()),
    }
}

/// The `(typeid, object id)` of every proxy inside `value`, however deep.
fn proxies_in(value: &Pickle, found: &mut Vec<(String, ObjectId)>) {
    match pickle::as_rebuild_proxy(value) {
        Some(proxy) => {
            if let Ok(id) = proxy.token.id.parse::<ObjectId>() {
                found.push((proxy.token.typeid.to_owned(), id));
            }
        }
        None => value.for_each_child(|child| proxies_in(child, found)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncman_protocol::pickle::{global, token, MANAGERS};

    fn proxy(typeid: &str, id: &str) -> Pickle {
        Pickle::Reduce {
            callable: Box::new(global(MANAGERS, "RebuildProxy")),
            args: Box::new(Pickle::Tuple(vec![
                global(MANAGERS, "AutoProxy"),
                token(
                    typeid,
                    Pickle::Tuple(vec![Pickle::Str("localhost".into()), Pickle::Int(1)]),
                    id,
                ),
                Pickle::Str("pickle".into()),
                Pickle::Dict(vec![]),
            ])),
        }
    }

    #[test]
    fn finds_proxies_at_any_depth_and_ignores_foreign_ids() {
        let value = Pickle::List(vec![
            proxy("Queue", "7"),
            Pickle::Dict(vec![(
                Pickle::Str("k".into()),
                Pickle::Tuple(vec![proxy("dict", "12")]),
            )]),
            proxy("dict", "7f5a022d9380"), // CPython's hex ids are not this node's
        ]);
        let mut found = Vec::new();
        proxies_in(&value, &mut found);
        assert_eq!(found, [("Queue".to_owned(), 7), ("dict".to_owned(), 12)]);
    }
}

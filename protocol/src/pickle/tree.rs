//! The decoder's object graph, and its conversion into a [`Pickle`] tree.
//!
//! While unpickling, objects live in an arena and refer to each other by index, so a memo
//! reference or `DUP` shares an object and a later mutation (`APPENDS` to a memoized list,
//! `BUILD` on a memoized instance) is seen through every reference, exactly as in Python.
//! [`build`] then checks the graph reachable from the result without recursing (a cycle is an
//! error; depth, node count and payload are measured with shared parts counted once per
//! reference, before anything is copied) and builds the tree bottom-up, cloning an object for
//! all but its last reference.

use super::{Limits, Pickle, PickleErrorKind};

/// Index of a [`Node`] in the arena.
pub(super) type Id = usize;

/// An object being unpickled. Containers hold the ids of their items.
#[derive(Debug)]
pub(super) enum Node {
    /// Everything without children: scalars, strings, bytes, globals.
    Leaf(Pickle),
    Tuple(Vec<Id>),
    List(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Set(Vec<Id>),
    FrozenSet(Vec<Id>),
    Reduce(Id, Id),
    NewObj(Id, Id, Option<Id>),
    Obj(Id, Vec<Id>),
    Build(Id, Id),
    Appends(Id, Vec<Id>),
    SetItems(Id, Vec<(Id, Id)>),
    AddItems(Id, Vec<Id>),
}

impl Node {
    /// An object of unknown type (an instance built by calling something): the only kind
    /// `BUILD` may set state on, and that `APPENDS`/`SETITEMS`/`ADDITEMS` may wrap.
    pub(super) fn is_opaque(&self) -> bool {
        matches!(
            self,
            Node::Reduce(..)
                | Node::NewObj(..)
                | Node::Obj(..)
                | Node::Build(..)
                | Node::Appends(..)
                | Node::SetItems(..)
                | Node::AddItems(..)
        )
    }

    /// What this is, for error messages ("cannot append to a tuple").
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Node::Leaf(p) => match p {
                Pickle::None => "None",
                Pickle::Bool(_) => "a bool",
                Pickle::Int(_) | Pickle::BigInt(_) => "an int",
                Pickle::Float(_) => "a float",
                Pickle::Str(_) | Pickle::SurrogateStr(_) => "a str",
                Pickle::Bytes(_) => "bytes",
                Pickle::ByteArray(_) => "a bytearray",
                Pickle::Global { .. } => "a global",
                _ => "a value",
            },
            Node::Tuple(_) => "a tuple",
            Node::List(_) => "a list",
            Node::Dict(_) => "a dict",
            Node::Set(_) => "a set",
            Node::FrozenSet(_) => "a frozenset",
            _ => "an object",
        }
    }

    fn for_each_child(&self, mut f: impl FnMut(Id)) {
        match self {
            Node::Leaf(_) => {}
            Node::Tuple(v) | Node::List(v) | Node::Set(v) | Node::FrozenSet(v) => {
                v.iter().for_each(|&c| f(c))
            }
            Node::Dict(pairs) => pairs.iter().for_each(|&(k, v)| {
                f(k);
                f(v);
            }),
            Node::Reduce(a, b) | Node::Build(a, b) => {
                f(*a);
                f(*b);
            }
            Node::NewObj(a, b, c) => {
                f(*a);
                f(*b);
                if let Some(c) = c {
                    f(*c);
                }
            }
            Node::Obj(a, v) | Node::Appends(a, v) | Node::AddItems(a, v) => {
                f(*a);
                v.iter().for_each(|&c| f(c));
            }
            Node::SetItems(a, pairs) => {
                f(*a);
                pairs.iter().for_each(|&(k, v)| {
                    f(k);
                    f(v);
                });
            }
        }
    }
}

/// Payload bytes a leaf contributes to [`Limits::max_bytes`].
fn payload(node: &Node) -> u64 {
    let len = match node {
        Node::Leaf(Pickle::Str(s)) => s.len(),
        Node::Leaf(
            Pickle::SurrogateStr(b) | Pickle::Bytes(b) | Pickle::ByteArray(b) | Pickle::BigInt(b),
        ) => b.len(),
        Node::Leaf(Pickle::Global { module, name }) => module.len() + name.len(),
        _ => 0,
    };
    len as u64
}

enum Step {
    Enter(Id),
    Exit(Id),
}

/// What `build` learns of one node: whether the walk is in it or done with it, the
/// objects, depth and bytes under it, and how many parents take it.
#[derive(Clone, Copy, Default)]
struct Meta {
    colour: u8,
    size: u64,
    height: u64,
    weight: u64,
    refs: usize,
}

/// The buffers [`build`] works in, kept by the caller from one build to the next.
#[derive(Default)]
pub(super) struct BuildScratch {
    meta: Vec<Meta>,
    order: Vec<Id>,
    work: Vec<Step>,
    built: Vec<Option<Pickle>>,
}

impl BuildScratch {
    /// Empties the buffers for the next build, dropping any grown past `keep_at_most`.
    pub(super) fn recycle(&mut self, keep_at_most: usize) {
        recycle(&mut self.meta, keep_at_most);
        recycle(&mut self.order, keep_at_most);
        recycle(&mut self.work, keep_at_most);
        recycle(&mut self.built, keep_at_most);
    }
}

/// Empties `v`, keeping its allocation unless it holds room for more than `keep_at_most`.
pub(super) fn recycle<T>(v: &mut Vec<T>, keep_at_most: usize) {
    if v.capacity() > keep_at_most {
        *v = Vec::new();
    } else {
        v.clear();
    }
}

/// The tree of everything reachable from `root`. Takes the reachable nodes out of `nodes`.
pub(super) fn build(
    nodes: &mut [Node],
    root: Id,
    limits: &Limits,
    scratch: &mut BuildScratch,
) -> Result<Pickle, PickleErrorKind> {
    // Colours: 0, not entered yet (`Meta::default()`); then these two.
    const GREY: u8 = 1; // entered, not left: an ancestor of whatever is entered next
    const BLACK: u8 = 2;
    let n = nodes.len();
    let BuildScratch {
        meta,
        order,
        work,
        built,
    } = scratch;
    // What the walk learns of each node.
    meta.clear();
    meta.resize(n, Meta::default());
    order.clear();
    work.clear();
    work.push(Step::Enter(root));
    while let Some(step) = work.pop() {
        match step {
            Step::Enter(id) => match meta[id].colour {
                BLACK => {}
                GREY => return Err(PickleErrorKind::Recursive),
                _ => {
                    meta[id].colour = GREY;
                    work.push(Step::Exit(id));
                    nodes[id].for_each_child(|c| work.push(Step::Enter(c)));
                }
            },
            Step::Exit(id) => {
                let (mut s, mut h, mut w) = (1u64, 0u64, payload(&nodes[id]));
                nodes[id].for_each_child(|c| {
                    let child = &mut meta[c];
                    s = s.saturating_add(child.size);
                    h = h.max(child.height);
                    w = w.saturating_add(child.weight);
                    child.refs += 1;
                });
                h += 1;
                let limit = |what, limit: usize| PickleErrorKind::Limit { what, limit };
                if s > limits.max_nodes as u64 {
                    return Err(limit("too many objects", limits.max_nodes));
                }
                if h > limits.max_depth as u64 {
                    return Err(limit("nested too deeply", limits.max_depth));
                }
                if w > limits.max_bytes as u64 {
                    return Err(limit("too many string and bytes bytes", limits.max_bytes));
                }
                meta[id] = Meta {
                    colour: BLACK,
                    size: s,
                    height: h,
                    weight: w,
                    refs: meta[id].refs,
                };
                order.push(id);
            }
        }
    }
    meta[root].refs += 1;

    // Post-order: every child is built before its parent takes (or clones) it.
    built.clear();
    built.resize_with(n, || None);
    let internal = || PickleErrorKind::Invalid {
        opcode: "STOP",
        why: "internal error: object built out of order".into(),
    };
    for &id in order.iter() {
        let node = std::mem::replace(&mut nodes[id], Node::Leaf(Pickle::None));
        let mut missing = false;
        let mut take = |c: Id| -> Pickle {
            meta[c].refs -= 1;
            let value = if meta[c].refs == 0 {
                built[c].take()
            } else {
                built[c].clone()
            };
            value.unwrap_or_else(|| {
                missing = true;
                Pickle::None
            })
        };
        let mut take_all = |v: Vec<Id>| v.into_iter().map(&mut take).collect::<Vec<_>>();
        let value = match node {
            Node::Leaf(p) => p,
            Node::Tuple(v) => Pickle::Tuple(take_all(v)),
            Node::List(v) => Pickle::List(take_all(v)),
            Node::Set(v) => Pickle::Set(take_all(v)),
            Node::FrozenSet(v) => Pickle::FrozenSet(take_all(v)),
            Node::Dict(pairs) => {
                Pickle::Dict(pairs.into_iter().map(|(k, v)| (take(k), take(v))).collect())
            }
            Node::Reduce(c, a) => Pickle::Reduce {
                callable: Box::new(take(c)),
                args: Box::new(take(a)),
            },
            Node::NewObj(c, a, k) => Pickle::NewObj {
                class: Box::new(take(c)),
                args: Box::new(take(a)),
                kwargs: k.map(|k| Box::new(take(k))),
            },
            Node::Obj(c, v) => {
                let class = Box::new(take(c));
                Pickle::Obj {
                    class,
                    args: v.into_iter().map(&mut take).collect(),
                }
            }
            Node::Build(o, s) => Pickle::Build {
                object: Box::new(take(o)),
                state: Box::new(take(s)),
            },
            Node::Appends(t, v) => {
                let target = Box::new(take(t));
                Pickle::Appends {
                    target,
                    items: v.into_iter().map(&mut take).collect(),
                }
            }
            Node::AddItems(t, v) => {
                let target = Box::new(take(t));
                Pickle::AddItems {
                    target,
                    items: v.into_iter().map(&mut take).collect(),
                }
            }
            Node::SetItems(t, pairs) => {
                let target = Box::new(take(t));
                Pickle::SetItems {
                    target,
                    items: pairs.into_iter().map(|(k, v)| (take(k), take(v))).collect(),
                }
            }
        };
        if missing {
            return Err(internal());
        }
        built[id] = Some(value);
    }
    built[root].take().ok_or_else(internal)
}

//! CPython's view of each typeid: the methods its proxies may call (the `exposed` list a
//! `create` answers with, as CPython's own server sends it) and each method's parameter
//! names, so keyword arguments (`q.put(2, timeout=0.01)`) become the positional arguments
//! the node's objects take. The node's method names are Python's own.

/// One typeid as CPython clients see it.
pub(super) struct PyType {
    pub typeid: &'static str,
    /// What `create` answers: the methods the client's proxy may call.
    pub exposed: &'static [&'static str],
    /// The constructor's parameters after the typeid, in order.
    pub ctor: &'static [Param],
    /// Each method's parameters, in order; a method missing here takes none by keyword.
    pub params: &'static [(&'static str, &'static [Param])],
}

/// A parameter: its name and Python default (what a keyword call skipped over gets).
pub(super) type Param = (&'static str, Default);

/// A parameter's Python default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Default {
    /// Required: no default.
    Required,
    None,
    True,
    False,
    Int(i64),
}

const ACQUIRE: (&str, &[Param]) = (
    "acquire",
    &[("blocking", Default::True), ("timeout", Default::None)],
);
const TIMEOUT: &[Param] = &[("timeout", Default::None)];

const QUEUE_EXPOSED: &[&str] = &[
    "empty",
    "full",
    "get",
    "get_nowait",
    "join",
    "put",
    "put_nowait",
    "qsize",
    "task_done",
];

const QUEUE_PARAMS: &[(&str, &[Param])] = &[
    (
        "put",
        &[
            ("item", Default::Required),
            ("block", Default::True),
            ("timeout", Default::None),
        ],
    ),
    ("put_nowait", &[("item", Default::Required)]),
    (
        "get",
        &[("block", Default::True), ("timeout", Default::None)],
    ),
];
const MAXSIZE: &[Param] = &[("maxsize", Default::Int(0))];
const SEMAPHORE_PARAMS: &[(&str, &[Param])] = &[ACQUIRE, ("release", &[("n", Default::Int(1))])];

/// The SyncManager typeids syncman serves (all but `Pool`, which runs Python code).
pub(super) const TYPES: &[PyType] = &[
    PyType {
        typeid: "Queue",
        exposed: QUEUE_EXPOSED,
        ctor: MAXSIZE,
        params: QUEUE_PARAMS,
    },
    PyType {
        typeid: "JoinableQueue",
        exposed: QUEUE_EXPOSED,
        ctor: MAXSIZE,
        params: QUEUE_PARAMS,
    },
    PyType {
        typeid: "Event",
        exposed: &["is_set", "set", "clear", "wait"],
        ctor: &[],
        params: &[("wait", TIMEOUT)],
    },
    PyType {
        typeid: "Lock",
        exposed: &["acquire", "release"],
        ctor: &[],
        params: &[ACQUIRE],
    },
    PyType {
        typeid: "RLock",
        exposed: &["acquire", "release"],
        ctor: &[],
        params: &[ACQUIRE],
    },
    PyType {
        typeid: "Semaphore",
        exposed: &["acquire", "release"],
        ctor: &[("value", Default::Int(1))],
        params: SEMAPHORE_PARAMS,
    },
    PyType {
        typeid: "BoundedSemaphore",
        exposed: &["acquire", "release"],
        ctor: &[("value", Default::Int(1))],
        params: SEMAPHORE_PARAMS,
    },
    PyType {
        typeid: "Condition",
        exposed: &["acquire", "release", "wait", "notify", "notify_all"],
        ctor: &[("lock", Default::None)],
        params: &[
            ACQUIRE,
            ("wait", TIMEOUT),
            ("notify", &[("n", Default::Int(1))]),
        ],
    },
    PyType {
        typeid: "Barrier",
        exposed: &["__getattribute__", "wait", "abort", "reset"],
        ctor: &[
            ("parties", Default::Required),
            ("action", Default::None),
            ("timeout", Default::None),
        ],
        params: &[("wait", TIMEOUT)],
    },
    PyType {
        typeid: "list",
        exposed: &[
            "__add__",
            "__contains__",
            "__delitem__",
            "__getitem__",
            "__len__",
            "__mul__",
            "__reversed__",
            "__rmul__",
            "__setitem__",
            "append",
            "count",
            "extend",
            "index",
            "insert",
            "pop",
            "remove",
            "reverse",
            "sort",
            "__imul__",
        ],
        ctor: &[("iterable", Default::Required)],
        params: &[
            (
                "index",
                &[
                    ("value", Default::Required),
                    ("start", Default::None),
                    ("stop", Default::None),
                ],
            ),
            (
                "insert",
                &[("index", Default::Required), ("object", Default::Required)],
            ),
            (
                "sort",
                &[("key", Default::None), ("reverse", Default::False)],
            ),
        ],
    },
    PyType {
        typeid: "dict",
        exposed: &[
            "__contains__",
            "__delitem__",
            "__getitem__",
            "__iter__",
            "__len__",
            "__setitem__",
            "clear",
            "copy",
            "get",
            "items",
            "keys",
            "pop",
            "popitem",
            "setdefault",
            "update",
            "values",
            "__iter__",
        ],
        ctor: &[],
        params: &[
            (
                "get",
                &[("key", Default::Required), ("default", Default::None)],
            ),
            (
                "setdefault",
                &[("key", Default::Required), ("default", Default::None)],
            ),
        ],
    },
    PyType {
        typeid: "Value",
        exposed: &["get", "set"],
        ctor: &[
            ("typecode", Default::Required),
            ("value", Default::Required),
            ("lock", Default::True),
        ],
        params: &[("set", &[("value", Default::Required)])],
    },
    PyType {
        typeid: "Array",
        exposed: &["__len__", "__getitem__", "__setitem__"],
        ctor: &[
            ("typecode", Default::Required),
            ("sequence", Default::Required),
            ("lock", Default::True),
        ],
        params: &[],
    },
    PyType {
        typeid: "Namespace",
        exposed: &["__getattribute__", "__setattr__", "__delattr__"],
        ctor: &[],
        params: &[],
    },
];

/// The typeid as CPython clients know it, if syncman serves it.
pub(super) fn py_type(typeid: &str) -> Option<&'static PyType> {
    TYPES.iter().find(|t| t.typeid == typeid)
}

impl PyType {
    /// The parameters of `method`, in order (none if it takes no keywords).
    pub fn params_of(&self, method: &str) -> &'static [Param] {
        self.params
            .iter()
            .find(|(m, _)| *m == method)
            .map_or(&[], |(_, p)| *p)
    }
}

/// Merges keyword arguments into positional ones by parameter name: `positional` first,
/// then each keyword at its parameter's place, and parameters skipped over get their
/// Python default (`default(d)`). An unknown keyword, one given twice, or a required
/// parameter left out before a keyword is Python's `TypeError`.
pub(super) fn bind_keywords<V>(
    what: &str,
    params: &[Param],
    mut positional: Vec<V>,
    keywords: Vec<(String, V)>,
    default: impl Fn(Default) -> V,
) -> Result<Vec<V>, String> {
    if keywords.is_empty() {
        return Ok(positional);
    }
    let mut slots: Vec<Option<V>> = Vec::new();
    for (name, value) in keywords {
        let Some(at) = params.iter().position(|(p, _)| *p == name) else {
            return Err(format!(
                "{what}() got an unexpected keyword argument '{name}'"
            ));
        };
        if at < positional.len() {
            return Err(format!(
                "{what}() got multiple values for argument '{name}'"
            ));
        }
        let at = at - positional.len();
        if slots.len() <= at {
            slots.resize_with(at + 1, || None);
        }
        slots[at] = Some(value);
    }
    let first_slot = positional.len();
    for (i, slot) in slots.into_iter().enumerate() {
        let value = match slot {
            Some(value) => value,
            None => match params[first_slot + i] {
                (name, Default::Required) => {
                    return Err(format!("{what}() missing required argument: '{name}'"))
                }
                (_, d) => default(d),
            },
        };
        positional.push(value);
    }
    Ok(positional)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_land_at_their_parameters() {
        let put = py_type("Queue").unwrap().params_of("put");
        let dflt = |d: Default| if d == Default::True { 1 } else { 0 };
        let args = bind_keywords("put", put, vec![2], vec![("timeout".into(), 9)], dflt);
        assert_eq!(args.unwrap(), [2, 1, 9], "block takes its default, True");
        let args = bind_keywords("put", put, vec![2, 0], vec![("timeout".into(), 9)], dflt);
        assert_eq!(args.unwrap(), [2, 0, 9]);
        let twice = bind_keywords("put", put, vec![2], vec![("item".into(), 3)], dflt);
        assert!(twice
            .unwrap_err()
            .contains("multiple values for argument 'item'"));
        let unknown = bind_keywords("put", put, vec![2], vec![("tmeout".into(), 3)], dflt);
        assert!(unknown
            .unwrap_err()
            .contains("unexpected keyword argument 'tmeout'"));
        let missing = bind_keywords("put", put, vec![], vec![("block".into(), 0)], dflt);
        assert!(missing
            .unwrap_err()
            .contains("missing required argument: 'item'"));
    }

    #[test]
    fn every_served_typeid_exists_on_the_node() {
        let mut registry = crate::node::registry::Registry::default();
        crate::node::objects::register_builtins::<crate::node::memory::TokenCounter>(&mut registry);
        let known: Vec<&str> = registry.typeids().collect();
        for t in TYPES {
            assert!(
                known.contains(&t.typeid),
                "{} is not a node typeid",
                t.typeid
            );
        }
    }
}

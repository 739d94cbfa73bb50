//! `Namespace`: named attributes, as `multiprocessing.managers.Namespace`.

use parking_lot::Mutex;
use std::sync::Arc;

use bytes::Bytes;
use hashlink::LinkedHashMap;
use syncman_protocol::value::{decode, split_map, to_keep};
use syncman_protocol::{Args, RemoteError, Value};

use crate::node::budget::{ByteBudget, HeldBytes};
use crate::node::object::{unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject};
use syncman_protocol::value::encode;

const METHODS: &[MethodSpec] = &[
    ("__getattribute__", 1, 1),
    ("__setattr__", 2, 2),
    ("__delattr__", 1, 1),
    ("__contains__", 1, 1),
    ("__repr__", 0, 0),
    ("items", 0, 0),
];

pub struct Namespace {
    attrs: Mutex<Attrs>,
}

#[derive(Default)]
struct Attrs {
    values: LinkedHashMap<String, Bytes>,
    /// Names and encoded values, charged to the node's budget.
    held: HeldBytes,
}

impl Namespace {
    /// `Namespace()` or `Namespace({name: value, ...})` (Python's keyword arguments).
    pub fn new(mut args: Args<'_>) -> Result<Namespace, RemoteError> {
        let mut attrs = Attrs::default();
        if let Some(init) = args.opt_raw() {
            let entries = split_map(&init)?
                .ok_or_else(|| RemoteError::type_error("Namespace takes a map of attributes"))?;
            for (k, v) in entries {
                let v = to_keep(v, init.len());
                match decode(&k)? {
                    Value::Str(name) => {
                        attrs.held.force_grow(name.len() + v.len());
                        if let Some(old) = attrs.values.insert(name.clone(), v) {
                            attrs.held.shrink(name.len() + old.len());
                        }
                    }
                    other => {
                        return Err(RemoteError::type_error(format!(
                            "attribute name must be string, not '{}'",
                            other.type_name()
                        )))
                    }
                }
            }
        }
        args.finish()?;
        Ok(Namespace {
            attrs: Mutex::new(attrs),
        })
    }

    fn dispatch(&self, method: &str, args: &mut Args<'_>) -> Reply {
        match method {
            "__getattribute__" => {
                let name = args.string("name")?;
                self.attrs
                    .lock()
                    .values
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| no_attribute(&name))
            }
            "__setattr__" => {
                let name = args.string("name")?;
                let value = args.raw("value")?;
                let mut attrs = self.attrs.lock();
                let Attrs { values, held } = &mut *attrs;
                match values.get_mut(&name) {
                    Some(slot) => {
                        held.replace(slot.len(), value.len())?;
                        *slot = value;
                    }
                    None => {
                        held.grow(name.len() + value.len())?;
                        values.insert(name, value);
                    }
                }
                Ok(encode::nil())
            }
            "__delattr__" => {
                let name = args.string("name")?;
                let mut attrs = self.attrs.lock();
                let removed = attrs.values.remove(&name);
                if let Some(value) = &removed {
                    attrs.held.shrink(name.len() + value.len());
                }
                drop(attrs);
                removed
                    .map(|_| encode::nil())
                    .ok_or_else(|| no_attribute(&name))
            }
            "__contains__" => {
                let name = args.string("name")?;
                Ok(encode::bool(self.attrs.lock().values.contains_key(&name)))
            }
            "items" => {
                let attrs = self.attrs.lock();
                let names: Vec<Bytes> = attrs.values.keys().map(|k| encode::str(k)).collect();
                Ok(encode::map(names.iter().zip(attrs.values.values())))
            }
            "__repr__" => {
                // CPython: public attributes as name=repr, sorted.
                let attrs = self.attrs.lock();
                let mut parts: Vec<String> = attrs
                    .values
                    .iter()
                    .filter(|(k, _)| !k.starts_with('_'))
                    .map(|(k, v)| {
                        let shown = decode(v)
                            .map(|v| v.py_repr())
                            .unwrap_or_else(|_| "?".into());
                        format!("{k}={shown}")
                    })
                    .collect();
                parts.sort();
                Ok(encode::str(&format!("Namespace({})", parts.join(", "))))
            }
            _ => unknown_method("Namespace", method),
        }
    }
}

fn no_attribute(name: &str) -> RemoteError {
    RemoteError::attribute_error(format!("'Namespace' object has no attribute '{name}'"))
}

impl SharedObject for Namespace {
    fn typeid(&self) -> &str {
        "Namespace"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, mut args: Args<'_>, _ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, &mut args))
    }

    fn bind_budget(&self, budget: &Arc<ByteBudget>) -> Result<(), RemoteError> {
        self.attrs.lock().held.bind(budget)
    }

    fn describe(&self) -> String {
        format!("Namespace, {} attributes", self.attrs.lock().values.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::objects::testing::args;
    use syncman_protocol::ErrorKind;

    fn call(ns: &Namespace, method: &str, params: &[Value]) -> Reply {
        match ns.call(method, args(params), &mut CallCtx::new(1)) {
            Outcome::Ready(r) => r,
            Outcome::Park(_) => panic!("a namespace never parks"),
        }
    }

    fn ok(ns: &Namespace, method: &str, params: &[Value]) -> Value {
        decode(&call(ns, method, params).unwrap()).unwrap()
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn empty() -> Namespace {
        Namespace::new(Args::empty()).unwrap()
    }

    fn repr(ns: &Namespace) -> Value {
        ok(ns, "__repr__", &[])
    }

    #[test]
    fn attributes_can_be_set_read_replaced_and_deleted() {
        let ns = empty();
        assert_eq!(ok(&ns, "__setattr__", &[s("x"), Value::Int(1)]), Value::Nil);
        assert_eq!(ok(&ns, "__getattribute__", &[s("x")]), Value::Int(1));
        ok(&ns, "__setattr__", &[s("x"), s("two")]);
        assert_eq!(ok(&ns, "__getattribute__", &[s("x")]), s("two"));
        assert_eq!(ok(&ns, "__delattr__", &[s("x")]), Value::Nil);
        let e = call(&ns, "__getattribute__", &[s("x")]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AttributeError);
    }

    #[test]
    fn a_missing_attribute_is_an_attribute_error_naming_it() {
        let ns = empty();
        for method in ["__getattribute__", "__delattr__"] {
            let e = call(&ns, method, &[s("nope")]).unwrap_err();
            assert_eq!(e.kind, ErrorKind::AttributeError, "{method}");
            assert_eq!(
                e.message, "'Namespace' object has no attribute 'nope'",
                "{method}"
            );
        }
    }

    #[test]
    fn contains_tells_whether_an_attribute_is_set() {
        let ns = empty();
        assert_eq!(ok(&ns, "__contains__", &[s("a")]), Value::Bool(false));
        ok(&ns, "__setattr__", &[s("a"), Value::Nil]);
        assert_eq!(ok(&ns, "__contains__", &[s("a")]), Value::Bool(true));
        assert_eq!(ok(&ns, "__contains__", &[s("b")]), Value::Bool(false));
    }

    #[test]
    fn items_answers_every_attribute_in_insertion_order() {
        let ns = empty();
        ok(&ns, "__setattr__", &[s("b"), Value::Int(1)]);
        ok(&ns, "__setattr__", &[s("_a"), Value::Int(2)]);
        ok(&ns, "__setattr__", &[s("c"), Value::Int(3)]);
        // Replacing keeps the position, as in Python's __dict__.
        ok(&ns, "__setattr__", &[s("b"), Value::Int(4)]);
        assert_eq!(
            ok(&ns, "items", &[]),
            Value::Map(vec![
                (s("b"), Value::Int(4)),
                (s("_a"), Value::Int(2)),
                (s("c"), Value::Int(3)),
            ])
        );
    }

    #[test]
    fn repr_shows_public_attributes_sorted_as_cpython_does() {
        let ns = empty();
        assert_eq!(repr(&ns), s("Namespace()"));
        ok(&ns, "__setattr__", &[s("b"), s("x")]);
        ok(&ns, "__setattr__", &[s("_hidden"), Value::Int(2)]);
        ok(&ns, "__setattr__", &[s("a"), Value::Int(1)]);
        assert_eq!(repr(&ns), s("Namespace(a=1, b='x')"));
        ok(&ns, "__setattr__", &[s("ab"), Value::Nil]);
        ok(
            &ns,
            "__setattr__",
            &[s("c"), Value::Tuple(vec![Value::Bool(true)])],
        );
        ok(
            &ns,
            "__setattr__",
            &[s("d"), Value::Array(vec![Value::Int(2)])],
        );
        // Sorted as the "name=value" strings, as CPython sorts them.
        assert_eq!(
            repr(&ns),
            s("Namespace(a=1, ab=None, b='x', c=(True,), d=[2])")
        );
    }

    #[test]
    #[ignore = "Value::py_repr prints floats as Rust does (1e16, 1e-5) and a tab raw; CPython prints 1e+16, 1e-05 and '\\t'"]
    fn repr_of_floats_and_control_characters_matches_cpython() {
        let ns = empty();
        ok(&ns, "__setattr__", &[s("t"), s("a\tb")]);
        ok(&ns, "__setattr__", &[s("x"), Value::Float(1e16)]);
        ok(&ns, "__setattr__", &[s("y"), Value::Float(1e-5)]);
        // Python 3.11: repr(Namespace(t='a\tb', x=1e16, y=1e-5))
        assert_eq!(repr(&ns), s("Namespace(t='a\\tb', x=1e+16, y=1e-05)"));
    }

    #[test]
    fn the_constructor_takes_a_map_of_attributes() {
        let init = Value::Map(vec![(s("a"), Value::Int(1)), (s("b"), s("x"))]);
        let ns = Namespace::new(args(&[init])).unwrap();
        assert_eq!(ok(&ns, "__getattribute__", &[s("a")]), Value::Int(1));
        assert_eq!(repr(&ns), s("Namespace(a=1, b='x')"));
    }

    #[test]
    fn a_non_str_attribute_name_is_a_type_error() {
        let init = Value::Map(vec![
            (s("a"), Value::Int(1)),
            (Value::Int(2), Value::Int(3)),
        ]);
        let e = Namespace::new(args(&[init])).err().unwrap();
        assert_eq!(e.kind, ErrorKind::TypeError);
        assert_eq!(e.message, "attribute name must be string, not 'int'");
        let e = Namespace::new(args(&[Value::Array(vec![])])).err().unwrap();
        assert_eq!(e.kind, ErrorKind::TypeError);
    }
}

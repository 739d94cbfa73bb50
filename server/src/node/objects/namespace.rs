//! `Namespace`: named attributes, as `multiprocessing.managers.Namespace`.

use parking_lot::Mutex;

use bytes::Bytes;
use hashlink::LinkedHashMap;
use syncman_protocol::value::{decode, split_map};
use syncman_protocol::{Args, RemoteError, Value};

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
    attrs: Mutex<LinkedHashMap<String, Bytes>>,
}

impl Namespace {
    /// `Namespace()` or `Namespace({name: value, ...})` (Python's keyword arguments).
    pub fn new(mut args: Args) -> Result<Namespace, RemoteError> {
        let mut attrs = LinkedHashMap::new();
        if let Some(init) = args.opt_raw() {
            let entries = split_map(&init)?
                .ok_or_else(|| RemoteError::type_error("Namespace takes a map of attributes"))?;
            for (k, v) in entries {
                match decode(&k)? {
                    Value::Str(name) => {
                        attrs.insert(name, v);
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

    fn dispatch(&self, method: &str, args: &mut Args) -> Reply {
        match method {
            "__getattribute__" => {
                let name = args.string("name")?;
                self.attrs
                    .lock()
                    .get(&name)
                    .cloned()
                    .ok_or_else(|| no_attribute(&name))
            }
            "__setattr__" => {
                let name = args.string("name")?;
                let value = args.raw("value")?;
                let mut attrs = self.attrs.lock();
                match attrs.get_mut(&name) {
                    Some(slot) => *slot = value,
                    None => {
                        attrs.insert(name, value);
                    }
                }
                Ok(encode::nil())
            }
            "__delattr__" => {
                let name = args.string("name")?;
                let removed = self.attrs.lock().remove(&name);
                removed
                    .map(|_| encode::nil())
                    .ok_or_else(|| no_attribute(&name))
            }
            "__contains__" => {
                let name = args.string("name")?;
                Ok(encode::bool(self.attrs.lock().contains_key(&name)))
            }
            "items" => {
                let attrs = self.attrs.lock();
                let names: Vec<Bytes> = attrs.keys().map(|k| encode::str(k)).collect();
                Ok(encode::map(names.iter().zip(attrs.values())))
            }
            "__repr__" => {
                // CPython: public attributes as name=repr, sorted.
                let attrs = self.attrs.lock();
                let mut parts: Vec<String> = attrs
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

    fn call(&self, method: &str, mut args: Args, _ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, &mut args))
    }

    fn describe(&self) -> String {
        format!("Namespace, {} attributes", self.attrs.lock().len())
    }
}

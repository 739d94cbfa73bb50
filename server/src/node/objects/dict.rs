//! `dict`: insertion-ordered, keys compared with Python's equality (`1 == 1.0 == True`).
//! Keys and values are stored as the encoded bytes clients sent; only keys are decoded,
//! and only when they are not canonical already.

use parking_lot::Mutex;

use bytes::Bytes;
use hashlink::LinkedHashMap;
use syncman_protocol::value::{canonical_key, decode, split_array, split_map};
use syncman_protocol::{Args, RemoteError};

use crate::node::object::{unknown_method, CallCtx, MethodSpec, Outcome, Reply, SharedObject};
use syncman_protocol::value::encode;

/// Python's `dict` methods as exposed by `DictProxy`, with their argument counts.
const METHODS: &[MethodSpec] = &[
    ("__getitem__", 1, 1),
    ("__setitem__", 2, 2),
    ("__delitem__", 1, 1),
    ("__contains__", 1, 1),
    ("__len__", 0, 0),
    ("get", 1, 2),
    ("keys", 0, 0),
    ("values", 0, 0),
    ("items", 0, 0),
    ("copy", 0, 0),
    ("update", 1, 1),
    ("pop", 1, 2),
    ("popitem", 0, 0),
    ("setdefault", 1, 2),
    ("clear", 0, 0),
];

/// Canonical key → (key as first inserted, value).
type Entries = LinkedHashMap<Bytes, (Bytes, Bytes)>;

pub struct Dict {
    entries: Mutex<Entries>,
}

impl Dict {
    /// `dict()`, `dict(mapping)` or `dict(iterable_of_pairs)`.
    pub fn new(mut args: Args) -> Result<Dict, RemoteError> {
        let mut entries = Entries::new();
        if let Some(init) = args.opt_raw() {
            update(&mut entries, &init)?;
        }
        args.finish()?;
        Ok(Dict {
            entries: Mutex::new(entries),
        })
    }
}

fn key_error(raw_key: &Bytes) -> RemoteError {
    let shown = decode(raw_key).map(|v| v.py_repr()).unwrap_or_default();
    RemoteError::key_error(shown)
}

fn insert(entries: &mut Entries, key: Bytes, value: Bytes) -> Result<(), RemoteError> {
    let canon = canonical_key(&key)?;
    match entries.get_mut(&canon) {
        // Python keeps the first key object and its position.
        Some(slot) => slot.1 = value,
        None => {
            entries.insert(canon, (key, value));
        }
    }
    Ok(())
}

/// `dict.update`: a map, or an array of `[key, value]` pairs.
fn update(entries: &mut Entries, other: &Bytes) -> Result<(), RemoteError> {
    if let Some(pairs) = split_map(other)? {
        for (k, v) in pairs {
            insert(entries, k, v)?;
        }
        return Ok(());
    }
    let Some(items) = split_array(other)? else {
        return Err(RemoteError::type_error(
            "update expects a mapping or an iterable of key/value pairs",
        ));
    };
    for (i, item) in items.iter().enumerate() {
        match split_array(item)? {
            Some(kv) if kv.len() == 2 => {
                let mut kv = kv.into_iter();
                if let (Some(k), Some(v)) = (kv.next(), kv.next()) {
                    insert(entries, k, v)?;
                }
            }
            _ => {
                return Err(RemoteError::value_error(format!(
                    "dictionary update sequence element #{i} is not a key/value pair"
                )))
            }
        }
    }
    Ok(())
}

impl SharedObject for Dict {
    fn typeid(&self) -> &str {
        "dict"
    }

    fn methods(&self) -> Option<&'static [MethodSpec]> {
        Some(METHODS)
    }

    fn call(&self, method: &str, mut args: Args, _ctx: &mut CallCtx) -> Outcome {
        Outcome::Ready(self.dispatch(method, &mut args))
    }

    fn describe(&self) -> String {
        format!("dict, {} keys", self.entries.lock().len())
    }
}

impl Dict {
    fn dispatch(&self, method: &str, args: &mut Args) -> Reply {
        match method {
            "__getitem__" => {
                let key = args.raw("key")?;
                let canon = canonical_key(&key)?;
                let entries = self.entries.lock();
                entries
                    .get(&canon)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| key_error(&key))
            }
            "get" => {
                let key = args.raw("key")?;
                let default = args.opt_raw();
                let canon = canonical_key(&key)?;
                let entries = self.entries.lock();
                Ok(match entries.get(&canon) {
                    Some((_, v)) => v.clone(),
                    None => default.unwrap_or_else(encode::nil),
                })
            }
            "__setitem__" => {
                let key = args.raw("key")?;
                let value = args.raw("value")?;
                insert(&mut self.entries.lock(), key, value)?;
                Ok(encode::nil())
            }
            "__delitem__" => {
                let key = args.raw("key")?;
                let canon = canonical_key(&key)?;
                let removed = self.entries.lock().remove(&canon);
                removed
                    .map(|_| encode::nil())
                    .ok_or_else(|| key_error(&key))
            }
            "__contains__" => {
                let canon = canonical_key(&args.raw("key")?)?;
                Ok(encode::bool(self.entries.lock().contains_key(&canon)))
            }
            "__len__" => Ok(encode::int(self.entries.lock().len() as i128)),
            "keys" => Ok(encode::array(self.entries.lock().values().map(|(k, _)| k))),
            "values" => Ok(encode::array(self.entries.lock().values().map(|(_, v)| v))),
            "items" => Ok(encode::pairs(
                self.entries.lock().values().map(|(k, v)| (k, v)),
            )),
            "copy" => Ok(encode::map(
                self.entries.lock().values().map(|(k, v)| (k, v)),
            )),
            "update" => {
                let other = args.raw("other")?;
                // Validate everything before touching the dict, as an all-or-nothing step.
                let mut staged = Entries::new();
                update(&mut staged, &other)?;
                let mut entries = self.entries.lock();
                for (canon, (k, v)) in staged {
                    match entries.get_mut(&canon) {
                        Some(slot) => slot.1 = v,
                        None => {
                            entries.insert(canon, (k, v));
                        }
                    }
                }
                Ok(encode::nil())
            }
            "pop" => {
                let key = args.raw("key")?;
                let default = args.opt_raw();
                let canon = canonical_key(&key)?;
                let removed = self.entries.lock().remove(&canon);
                match (removed, default) {
                    (Some((_, v)), _) => Ok(v),
                    (None, Some(d)) => Ok(d),
                    (None, None) => Err(key_error(&key)),
                }
            }
            "popitem" => {
                let last = self.entries.lock().pop_back();
                match last {
                    Some((_, (k, v))) => Ok(encode::array([k, v].iter())),
                    None => Err(RemoteError::key_error("'popitem(): dictionary is empty'")),
                }
            }
            "setdefault" => {
                let key = args.raw("key")?;
                let default = args.opt_raw().unwrap_or_else(encode::nil);
                let canon = canonical_key(&key)?;
                let mut entries = self.entries.lock();
                if let Some((_, v)) = entries.get(&canon) {
                    return Ok(v.clone());
                }
                entries.insert(canon, (key, default.clone()));
                Ok(default)
            }
            "clear" => {
                let old = std::mem::take(&mut *self.entries.lock());
                drop(old);
                Ok(encode::nil())
            }
            _ => unknown_method("dict", method),
        }
    }
}

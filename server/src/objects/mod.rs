//! Built-in object types, one file each, following Python's method names and semantics.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::object::{Registry, SharedObject};

pub mod array;
pub mod dict;
pub mod list;
pub mod namespace;
pub mod value;

/// Registers every built-in typeid.
pub fn register_builtins(r: &mut Registry) {
    r.register("dict", |args| {
        Ok(Arc::new(dict::Dict::new(args)?) as Arc<dyn SharedObject>)
    });
    r.register("list", |args| {
        Ok(Arc::new(list::List::new(args)?) as Arc<dyn SharedObject>)
    });
    r.register("Namespace", |args| {
        Ok(Arc::new(namespace::Namespace::new(args)?) as Arc<dyn SharedObject>)
    });
    r.register("Value", |args| {
        Ok(Arc::new(value::ValueCell::new(args)?) as Arc<dyn SharedObject>)
    });
    r.register("Array", |args| {
        Ok(Arc::new(array::Array::new(args)?) as Arc<dyn SharedObject>)
    });
}

/// Locks an object's state. Object methods never panic while holding it (errors are
/// replies), and if one ever did, its state change is a single step: keep serving.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

//! Built-in object types, one file each, following Python's method names and semantics.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::object::{Registry, SharedObject};

pub mod array;
pub mod barrier;
pub mod blocking;
pub mod condition;
pub mod dict;
pub mod event;
pub mod list;
pub mod lock;
pub mod namespace;
pub mod queue;
pub mod semaphore;
pub mod value;

/// Registers every built-in typeid.
pub fn register_builtins(r: &mut Registry) {
    fn add<T, F>(r: &mut Registry, typeid: &str, make: F)
    where
        T: SharedObject,
        F: Fn(syncman_protocol::Args) -> Result<T, syncman_protocol::RemoteError>
            + Send
            + Sync
            + 'static,
    {
        r.register(typeid, move |args| {
            Ok(Arc::new(make(args)?) as Arc<dyn SharedObject>)
        });
    }
    add(r, "dict", dict::Dict::new);
    add(r, "list", list::List::new);
    add(r, "Namespace", namespace::Namespace::new);
    add(r, "Value", value::ValueCell::new);
    add(r, "Array", array::Array::new);
    add(r, "Queue", |a| queue::Queue::new(a, false));
    add(r, "JoinableQueue", |a| queue::Queue::new(a, true));
    add(r, "Lock", |a| lock::Lock::new(a, false));
    add(r, "RLock", |a| lock::Lock::new(a, true));
    add(r, "Semaphore", |a| semaphore::Semaphore::new(a, false));
    add(r, "BoundedSemaphore", |a| {
        semaphore::Semaphore::new(a, true)
    });
    add(r, "Condition", condition::Condition::new);
    add(r, "Event", event::Event::new);
    add(r, "Barrier", barrier::Barrier::new);
}

/// Locks an object's state. Object methods never panic while holding it (errors are
/// replies), and if one ever did, its state change is a single step: keep serving.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

//! Built-in object types, one file each, following Python's method names and semantics.
//!
//! Each keeps its state behind its own `parking_lot::Mutex` (no poisoning: a method never
//! holds it across a panic-prone step it has not finished, and the session contains panics
//! per call), and never across an `.await`.

use std::sync::Arc;

use syncman_protocol::{Args, RemoteError};

use crate::node::backend::FencingTokens;
use crate::node::object::SharedObject;
use crate::node::registry::Registry;

pub mod array;
pub mod barrier;
pub mod condition;
pub mod dict;
pub mod event;
pub mod iterator;
pub mod list;
pub mod lock;
pub mod namespace;
pub mod queue;
pub mod semaphore;
#[cfg(test)]
mod testing;
pub mod timeout;
pub mod value;

/// Registers every built-in typeid; locks draw their fencing tokens from `T`.
pub fn register_builtins<T: FencingTokens>(r: &mut Registry) {
    fn add<O, F>(r: &mut Registry, typeid: &str, make: F)
    where
        O: SharedObject,
        F: Fn(Args) -> Result<O, RemoteError> + Send + Sync + 'static,
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
    add(r, "Lock", |a| lock::Lock::<T>::new(a, false));
    add(r, "RLock", |a| lock::Lock::<T>::new(a, true));
    add(r, "Semaphore", |a| semaphore::Semaphore::new(a, false));
    add(r, "BoundedSemaphore", |a| {
        semaphore::Semaphore::new(a, true)
    });
    r.register_with_objects("Condition", |args, objects| {
        Ok(Arc::new(condition::Condition::<T>::new(args, objects)?) as Arc<dyn SharedObject>)
    });
    add(r, "Event", event::Event::new);
    add(r, "Barrier", barrier::Barrier::new);
    r.register_with_objects("Iterator", |args, objects| {
        Ok(Arc::new(iterator::KeyIterator::new(args, objects)?) as Arc<dyn SharedObject>)
    });
}

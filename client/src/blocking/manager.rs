//! [`Manager`]: the blocking handle to one node.

use std::sync::Arc;

use crate::address::NodeAddr;
use serde::Serialize;

use super::macros::blocking_fns;
use super::runtime::{wrap, Rt};
use super::{
    ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy, LockProxy,
    NamespaceProxy, QueueProxy, SemaphoreProxy, ValueProxy,
};
use crate::connection::ConnectOptions;
use crate::error::Result;
use crate::manager::Status;
use crate::proxy::{ArrayElement, ObjectHandle};

/// A blocking connection to a syncman node: the async [`crate::Manager`] plus a private
/// one-worker runtime that keeps the connection's tasks running between calls.
///
/// Cheap to clone; clones share the connection and the runtime, and any number of threads
/// may call through it at once. The runtime stops when the last clone, proxy, guard and
/// permit made from it is dropped.
#[derive(Clone)]
pub struct Manager {
    inner: crate::Manager,
    rt: Arc<Rt>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.inner, f)
    }
}

impl Manager {
    /// Connects and authenticates with `authkey`, with default [`ConnectOptions`].
    ///
    /// Fails with [`Error::InsideRuntime`](crate::Error::InsideRuntime) on a thread that
    /// has a tokio runtime context (use the async [`crate::Manager`] there).
    pub fn connect<A: NodeAddr>(addr: A, authkey: impl AsRef<[u8]>) -> Result<Manager> {
        Self::connect_with(addr, authkey, ConnectOptions::default())
    }

    /// As [`connect`](Self::connect), with explicit [`ConnectOptions`].
    pub fn connect_with<A: NodeAddr>(
        addr: A,
        authkey: impl AsRef<[u8]>,
        options: ConnectOptions,
    ) -> Result<Manager> {
        let rt = Rt::new()?;
        let inner = rt.block_on(crate::Manager::connect_with(addr, authkey, options))?;
        rt.wait_on_drop(inner.conn.closed());
        Ok(Manager {
            inner,
            rt: Arc::new(rt),
        })
    }

    blocking_fns! {
        crate::Manager;
        /// Gets the object called `name`, creating it with `ctor` (an encoded argument
        /// array) if it does not exist.
        fn get_or_create_raw(&self, typeid: &str, name: &str, ctor: &[u8])
            -> Result<Arc<ObjectHandle>>;
        /// Creates an anonymous object, freed when its last handle anywhere is dropped.
        fn create_raw(&self, typeid: &str, ctor: &[u8]) -> Result<Arc<ObjectHandle>>;
        /// Takes a reference on an anonymous object whose id came from another process.
        fn adopt(&self, id: u64) -> Result<Arc<ObjectHandle>>;

        /// A named `dict`, created empty if absent.
        fn dict<K, V>(&self, name: &str) -> Result<DictProxy<K, V>> => wrap;
        /// A new anonymous `dict`.
        fn new_dict<K, V>(&self) -> Result<DictProxy<K, V>> => wrap;
        /// A named `list`, created empty if absent.
        fn list<T>(&self, name: &str) -> Result<ListProxy<T>> => wrap;
        /// A new anonymous `list`.
        fn new_list<T>(&self) -> Result<ListProxy<T>> => wrap;
        /// A named `Namespace`, created empty if absent.
        fn namespace(&self, name: &str) -> Result<NamespaceProxy> => wrap;
        /// A new anonymous `Namespace`.
        fn new_namespace(&self) -> Result<NamespaceProxy> => wrap;
        /// A named `Value`, holding `init` if it is created by this call.
        fn value<T: Serialize>(&self, name: &str, init: T) -> Result<ValueProxy<T>> => wrap;
        /// A new anonymous `Value`.
        fn new_value<T: Serialize>(&self, init: T) -> Result<ValueProxy<T>> => wrap;
        /// A named fixed-length typed `Array`, holding `init` if it is created by this call.
        fn array<T: ArrayElement>(&self, name: &str, init: &[T]) -> Result<ArrayProxy<T>>
            => wrap;
        /// A new anonymous `Array`.
        fn new_array<T: ArrayElement>(&self, init: &[T]) -> Result<ArrayProxy<T>> => wrap;

        /// A named unbounded `Queue`.
        fn queue<T>(&self, name: &str) -> Result<QueueProxy<T>> => wrap;
        /// A new anonymous unbounded `Queue`.
        fn new_queue<T>(&self) -> Result<QueueProxy<T>> => wrap;
        /// A named `Queue` holding at most `maxsize` items (the bound is set on creation).
        fn bounded_queue<T>(&self, name: &str, maxsize: usize) -> Result<QueueProxy<T>> => wrap;
        /// A new anonymous bounded `Queue`.
        fn new_bounded_queue<T>(&self, maxsize: usize) -> Result<QueueProxy<T>> => wrap;
        /// A named `JoinableQueue` (adds `task_done` and `join`).
        fn joinable_queue<T>(&self, name: &str) -> Result<QueueProxy<T>> => wrap;
        /// A new anonymous `JoinableQueue`.
        fn new_joinable_queue<T>(&self) -> Result<QueueProxy<T>> => wrap;

        /// A named `Lock`.
        fn lock(&self, name: &str) -> Result<LockProxy> => wrap;
        /// A new anonymous `Lock`.
        fn new_lock(&self) -> Result<LockProxy> => wrap;
        /// A named `RLock` (re-entered through the guard that holds it).
        fn rlock(&self, name: &str) -> Result<LockProxy> => wrap;
        /// A new anonymous `RLock`.
        fn new_rlock(&self) -> Result<LockProxy> => wrap;
        /// A named `Semaphore` with `value` units (set on creation).
        fn semaphore(&self, name: &str, value: u64) -> Result<SemaphoreProxy> => wrap;
        /// A new anonymous `Semaphore`.
        fn new_semaphore(&self, value: u64) -> Result<SemaphoreProxy> => wrap;
        /// A named `BoundedSemaphore`: releasing past `value` is a `ValueError`.
        fn bounded_semaphore(&self, name: &str, value: u64) -> Result<SemaphoreProxy> => wrap;
        /// A new anonymous `BoundedSemaphore`.
        fn new_bounded_semaphore(&self, value: u64) -> Result<SemaphoreProxy> => wrap;
        /// A named `Condition`.
        fn condition(&self, name: &str) -> Result<ConditionProxy> => wrap;
        /// A new anonymous `Condition`.
        fn new_condition(&self) -> Result<ConditionProxy> => wrap;
        /// A named `Event`.
        fn event(&self, name: &str) -> Result<EventProxy> => wrap;
        /// A new anonymous `Event`.
        fn new_event(&self) -> Result<EventProxy> => wrap;
        /// A named `Barrier` for `parties` callers (set on creation).
        fn barrier(&self, name: &str, parties: u64) -> Result<BarrierProxy> => wrap;
        /// A new anonymous `Barrier`.
        fn new_barrier(&self, parties: u64) -> Result<BarrierProxy> => wrap;

        /// Deletes a named object; its proxies get `NotFound` from then on.
        fn delete(&self, name: &str) -> Result<()>;
        /// Round trip to the node.
        fn ping(&self) -> Result<()>;
        /// Objects and sessions on the node.
        fn status(&self) -> Result<Status>;
        /// Asks the node to shut down: it stops accepting, ends every session and exits.
        fn shutdown(&self) -> Result<()>;
    }

    /// A named `Condition` over `lock` (see [`crate::Manager::condition_over`]).
    pub fn condition_over(&self, name: &str, lock: &LockProxy) -> Result<ConditionProxy> {
        let inner = self
            .rt
            .block_on(self.inner.condition_over(name, lock.as_async()))?;
        Ok(wrap(inner, &self.rt))
    }

    /// A new anonymous `Condition` over `lock`.
    pub fn new_condition_over(&self, lock: &LockProxy) -> Result<ConditionProxy> {
        let inner = self
            .rt
            .block_on(self.inner.new_condition_over(lock.as_async()))?;
        Ok(wrap(inner, &self.rt))
    }
}

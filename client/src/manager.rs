//! [`Manager`]: a handle to one node over one multiplexed connection.

use std::sync::Arc;

use crate::address::NodeAddr;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use syncman_protocol::message::CONTROL_OBJECT;
use syncman_protocol::value::encode;

use crate::connection::{ConnectOptions, Connection};
use crate::error::Result;
use crate::proxy::{
    ArrayElement, ArrayProxy, BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy,
    LockProxy, NamespaceProxy, ObjectHandle, QueueProxy, SemaphoreProxy, ValueProxy,
};

/// A connection to a syncman node. Cheap to clone; clones share the connection, and any
/// number of tasks may call through it at once (calls are pipelined, replies matched by id).
#[derive(Clone)]
pub struct Manager {
    pub(crate) conn: Arc<Connection>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("closed", &self.conn.is_closed())
            .finish()
    }
}

/// What `status` reports.
#[derive(Debug, Clone, Deserialize)]
pub struct Status {
    pub version: String,
    /// Seconds since the node started (`None` from a node that does not say).
    #[serde(default)]
    pub uptime: Option<f64>,
    pub sessions: u64,
    pub objects: Vec<ObjectStatus>,
    /// Bytes the node's objects hold (encoded keys, values and items), if it counts them.
    #[serde(default)]
    pub bytes: Option<u64>,
    /// The most they may hold (`--max-bytes`).
    #[serde(default)]
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ObjectStatus {
    pub id: u64,
    pub name: Option<String>,
    pub typeid: String,
    /// References held on an anonymous object (named objects are not counted).
    pub refs: u64,
    /// Calls parked on the object now (0 from a node that does not say).
    #[serde(default)]
    pub waiters: u64,
    pub detail: String,
}

impl Status {
    /// The named object's row, if it exists.
    pub fn named(&self, name: &str) -> Option<&ObjectStatus> {
        self.objects
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    }

    /// The row of the object with `id`, if it exists.
    pub fn object(&self, id: u64) -> Option<&ObjectStatus> {
        self.objects.iter().find(|o| o.id == id)
    }
}

/// No constructor arguments: an empty array (`()` would encode as nil).
const NO_ARGS: [(); 0] = [];

impl Manager {
    /// Connects and authenticates with `authkey`, with default [`ConnectOptions`].
    pub async fn connect<A: NodeAddr>(addr: A, authkey: impl AsRef<[u8]>) -> Result<Manager> {
        Self::connect_with(addr, authkey, ConnectOptions::default()).await
    }

    pub async fn connect_with<A: NodeAddr>(
        addr: A,
        authkey: impl AsRef<[u8]>,
        options: ConnectOptions,
    ) -> Result<Manager> {
        let conn = Connection::open(addr, authkey.as_ref(), &options).await?;
        Ok(Manager {
            conn: Arc::new(conn),
        })
    }

    /// Bytes of requests queued and not yet written to the socket: at most
    /// [`ConnectOptions::max_outgoing_bytes`] (plus small fire-and-forget frames, and one
    /// frame larger than the whole room), as calls wait for room beyond it.
    pub fn outgoing_bytes(&self) -> usize {
        self.conn.outgoing_bytes()
    }

    /// A call to the node itself.
    async fn control<A, R>(&self, method: &str, args: &A) -> Result<R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.conn.call(CONTROL_OBJECT, method, args).await
    }

    /// Gets the object called `name`, creating it with `ctor` (an encoded argument array)
    /// if it does not exist. `ctor` is ignored when the object exists.
    pub async fn get_or_create_raw(
        &self,
        typeid: &str,
        name: &str,
        ctor: &[u8],
    ) -> Result<Arc<ObjectHandle>> {
        let args = [&encode::str(typeid)[..], &encode::str(name)[..], ctor];
        let id = self
            .conn
            .call_encoded(CONTROL_OBJECT, "get_or_create", &args)
            .await?;
        Ok(ObjectHandle::new(self.conn.clone(), id, false))
    }

    /// Creates an anonymous object, freed when its last handle anywhere is dropped.
    pub async fn create_raw(&self, typeid: &str, ctor: &[u8]) -> Result<Arc<ObjectHandle>> {
        let args = [&encode::str(typeid)[..], ctor];
        let id = self
            .conn
            .call_encoded(CONTROL_OBJECT, "create", &args)
            .await?;
        Ok(ObjectHandle::new(self.conn.clone(), id, true))
    }

    /// Takes a reference on an anonymous object whose id came from another process.
    pub async fn adopt(&self, id: u64) -> Result<Arc<ObjectHandle>> {
        self.control::<_, ()>("incref", &(id,)).await?;
        Ok(ObjectHandle::new(self.conn.clone(), id, true))
    }

    /// Opens a named object (get-or-create) or, with no name, creates an anonymous one,
    /// with constructor arguments `ctor` (a tuple).
    async fn open<C, P>(
        &self,
        typeid: &str,
        name: Option<&str>,
        ctor: &C,
        wrap: fn(Arc<ObjectHandle>) -> P,
    ) -> Result<P>
    where
        C: Serialize + ?Sized,
    {
        let handle = match name {
            Some(name) => {
                let id = self.control("get_or_create", &(typeid, name, ctor)).await?;
                ObjectHandle::new(self.conn.clone(), id, false)
            }
            None => {
                let id = self.control("create", &(typeid, ctor)).await?;
                ObjectHandle::new(self.conn.clone(), id, true)
            }
        };
        Ok(wrap(handle))
    }

    /// A named `dict`, created empty if absent.
    pub async fn dict<K, V>(&self, name: &str) -> Result<DictProxy<K, V>> {
        self.open("dict", Some(name), &NO_ARGS, DictProxy::new)
            .await
    }

    /// A new anonymous `dict`.
    pub async fn new_dict<K, V>(&self) -> Result<DictProxy<K, V>> {
        self.open("dict", None, &NO_ARGS, DictProxy::new).await
    }

    /// A named `list`, created empty if absent.
    pub async fn list<T>(&self, name: &str) -> Result<ListProxy<T>> {
        self.open("list", Some(name), &NO_ARGS, ListProxy::new)
            .await
    }

    /// A new anonymous `list`.
    pub async fn new_list<T>(&self) -> Result<ListProxy<T>> {
        self.open("list", None, &NO_ARGS, ListProxy::new).await
    }

    /// A named `Namespace`, created empty if absent.
    pub async fn namespace(&self, name: &str) -> Result<NamespaceProxy> {
        self.open("Namespace", Some(name), &NO_ARGS, NamespaceProxy::new)
            .await
    }

    /// A new anonymous `Namespace`.
    pub async fn new_namespace(&self) -> Result<NamespaceProxy> {
        self.open("Namespace", None, &NO_ARGS, NamespaceProxy::new)
            .await
    }

    /// A named `Value`, holding `init` if it is created by this call.
    pub async fn value<T: Serialize>(&self, name: &str, init: T) -> Result<ValueProxy<T>> {
        self.open("Value", Some(name), &((), init), ValueProxy::new)
            .await
    }

    /// A new anonymous `Value`.
    pub async fn new_value<T: Serialize>(&self, init: T) -> Result<ValueProxy<T>> {
        self.open("Value", None, &((), init), ValueProxy::new).await
    }

    /// A named fixed-length typed `Array` (Python's `Array(typecode, sequence)`), holding
    /// `init` if it is created by this call.
    pub async fn array<T: ArrayElement>(&self, name: &str, init: &[T]) -> Result<ArrayProxy<T>> {
        self.open("Array", Some(name), &(T::TYPECODE, init), ArrayProxy::new)
            .await
    }

    /// A new anonymous `Array`.
    pub async fn new_array<T: ArrayElement>(&self, init: &[T]) -> Result<ArrayProxy<T>> {
        self.open("Array", None, &(T::TYPECODE, init), ArrayProxy::new)
            .await
    }

    /// A named unbounded `Queue`.
    pub async fn queue<T>(&self, name: &str) -> Result<QueueProxy<T>> {
        self.open("Queue", Some(name), &NO_ARGS, QueueProxy::new)
            .await
    }

    /// A new anonymous unbounded `Queue`.
    pub async fn new_queue<T>(&self) -> Result<QueueProxy<T>> {
        self.open("Queue", None, &NO_ARGS, QueueProxy::new).await
    }

    /// A named `Queue` holding at most `maxsize` items (the bound is set on creation).
    pub async fn bounded_queue<T>(&self, name: &str, maxsize: usize) -> Result<QueueProxy<T>> {
        self.open("Queue", Some(name), &(maxsize,), QueueProxy::new)
            .await
    }

    /// A new anonymous bounded `Queue`.
    pub async fn new_bounded_queue<T>(&self, maxsize: usize) -> Result<QueueProxy<T>> {
        self.open("Queue", None, &(maxsize,), QueueProxy::new).await
    }

    /// A named `JoinableQueue` (adds `task_done` and `join`).
    pub async fn joinable_queue<T>(&self, name: &str) -> Result<QueueProxy<T>> {
        self.open("JoinableQueue", Some(name), &NO_ARGS, QueueProxy::new)
            .await
    }

    /// A new anonymous `JoinableQueue`.
    pub async fn new_joinable_queue<T>(&self) -> Result<QueueProxy<T>> {
        self.open("JoinableQueue", None, &NO_ARGS, QueueProxy::new)
            .await
    }

    /// A named `Lock`.
    pub async fn lock(&self, name: &str) -> Result<LockProxy> {
        self.open("Lock", Some(name), &NO_ARGS, LockProxy::new)
            .await
    }

    /// A new anonymous `Lock`.
    pub async fn new_lock(&self) -> Result<LockProxy> {
        self.open("Lock", None, &NO_ARGS, LockProxy::new).await
    }

    /// A named `RLock` (re-entered through the guard that holds it).
    pub async fn rlock(&self, name: &str) -> Result<LockProxy> {
        self.open("RLock", Some(name), &NO_ARGS, LockProxy::new)
            .await
    }

    /// A new anonymous `RLock`.
    pub async fn new_rlock(&self) -> Result<LockProxy> {
        self.open("RLock", None, &NO_ARGS, LockProxy::new).await
    }

    /// A named `Semaphore` with `value` units (set on creation).
    pub async fn semaphore(&self, name: &str, value: u64) -> Result<SemaphoreProxy> {
        self.open("Semaphore", Some(name), &(value,), SemaphoreProxy::new)
            .await
    }

    /// A new anonymous `Semaphore`.
    pub async fn new_semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        self.open("Semaphore", None, &(value,), SemaphoreProxy::new)
            .await
    }

    /// A named `BoundedSemaphore`: releasing past `value` is a `ValueError`.
    pub async fn bounded_semaphore(&self, name: &str, value: u64) -> Result<SemaphoreProxy> {
        self.open(
            "BoundedSemaphore",
            Some(name),
            &(value,),
            SemaphoreProxy::new,
        )
        .await
    }

    /// A new anonymous `BoundedSemaphore`.
    pub async fn new_bounded_semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        self.open("BoundedSemaphore", None, &(value,), SemaphoreProxy::new)
            .await
    }

    /// A named `Condition`.
    pub async fn condition(&self, name: &str) -> Result<ConditionProxy> {
        self.open("Condition", Some(name), &NO_ARGS, ConditionProxy::new)
            .await
    }

    /// A new anonymous `Condition`.
    pub async fn new_condition(&self) -> Result<ConditionProxy> {
        self.open("Condition", None, &NO_ARGS, ConditionProxy::new)
            .await
    }

    /// A named `Condition` over `lock`, as Python's `Condition(lock)`: it shares the lock's
    /// hold, so holding either excludes every holder of the other. Over an `RLock` it
    /// behaves as [`condition`](Self::condition)'s own; over a plain `Lock`, `wait` and
    /// `notify` need the lock held, by anyone, as in Python. The lock is set on creation: a
    /// Condition of that name that exists already keeps the lock it was made with.
    pub async fn condition_over(&self, name: &str, lock: &LockProxy) -> Result<ConditionProxy> {
        self.open("Condition", Some(name), &(lock.id(),), ConditionProxy::new)
            .await
    }

    /// A new anonymous `Condition` over `lock` (see [`condition_over`](Self::condition_over)).
    pub async fn new_condition_over(&self, lock: &LockProxy) -> Result<ConditionProxy> {
        self.open("Condition", None, &(lock.id(),), ConditionProxy::new)
            .await
    }

    /// A named `Event`.
    pub async fn event(&self, name: &str) -> Result<EventProxy> {
        self.open("Event", Some(name), &NO_ARGS, EventProxy::new)
            .await
    }

    /// A new anonymous `Event`.
    pub async fn new_event(&self) -> Result<EventProxy> {
        self.open("Event", None, &NO_ARGS, EventProxy::new).await
    }

    /// A named `Barrier` for `parties` callers (set on creation).
    pub async fn barrier(&self, name: &str, parties: u64) -> Result<BarrierProxy> {
        self.open("Barrier", Some(name), &(parties,), BarrierProxy::new)
            .await
    }

    /// A new anonymous `Barrier`.
    pub async fn new_barrier(&self, parties: u64) -> Result<BarrierProxy> {
        self.open("Barrier", None, &(parties,), BarrierProxy::new)
            .await
    }

    /// Deletes a named object; its proxies get `NotFound` from then on.
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.control("delete", &(name,)).await
    }

    /// Round trip to the node.
    pub async fn ping(&self) -> Result<()> {
        self.control("ping", &()).await
    }

    /// Objects and sessions on the node.
    pub async fn status(&self) -> Result<Status> {
        self.control("status", &()).await
    }

    /// Asks the node to shut down (as `BaseManager.shutdown()`): it stops accepting, ends
    /// every session and exits.
    pub async fn shutdown(&self) -> Result<()> {
        self.control("shutdown", &()).await
    }
}

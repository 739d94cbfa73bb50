//! [`Manager`]: a handle to one node over one multiplexed connection.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use syncman_protocol::message::CONTROL_OBJECT;
use tokio::net::ToSocketAddrs;

use crate::connection::{ConnectOptions, Connection, RequestBuilder};
use crate::error::{Error, Result};
use crate::proxy::{
    ArrayElement, ArrayProxy, DictProxy, ListProxy, NamespaceProxy, ObjectHandle, ValueProxy,
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
    pub sessions: u64,
    pub objects: Vec<ObjectStatus>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ObjectStatus {
    pub id: u64,
    pub name: Option<String>,
    pub typeid: String,
    /// References held on an anonymous object (named objects are not counted).
    pub refs: u64,
    pub detail: String,
}

/// An empty constructor argument array.
const NO_ARGS: &[u8] = &[0x90];

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))
}

/// Encodes constructor arguments (a tuple) as one MessagePack array.
pub(crate) fn ctor_args<T: Serialize>(args: &T) -> Result<Vec<u8>> {
    rmp_serde::to_vec_named(args).map_err(|e| Error::Encode(e.to_string()))
}

impl Manager {
    /// Connects and authenticates with `authkey`, with default [`ConnectOptions`].
    pub async fn connect<A: ToSocketAddrs>(addr: A, authkey: impl AsRef<[u8]>) -> Result<Manager> {
        Self::connect_with(addr, authkey, ConnectOptions::default()).await
    }

    pub async fn connect_with<A: ToSocketAddrs>(
        addr: A,
        authkey: impl AsRef<[u8]>,
        options: ConnectOptions,
    ) -> Result<Manager> {
        let conn = Connection::open(addr, authkey.as_ref(), &options).await?;
        Ok(Manager {
            conn: Arc::new(conn),
        })
    }

    pub(crate) async fn invoke<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let bytes = self.conn.call(req).await?;
        decode(&bytes)
    }

    fn control(&self, method: &str, nargs: u32) -> RequestBuilder {
        self.conn.request(CONTROL_OBJECT, method, nargs)
    }

    /// Gets the object called `name`, creating it with `ctor` (an encoded argument array)
    /// if it does not exist. `ctor` is ignored when the object exists.
    pub async fn get_or_create_raw(
        &self,
        typeid: &str,
        name: &str,
        ctor: &[u8],
    ) -> Result<Arc<ObjectHandle>> {
        let req = self
            .control("get_or_create", 3)
            .arg(typeid)
            .arg(name)
            .raw_arg(ctor);
        let id: u64 = self.invoke(req).await?;
        Ok(ObjectHandle::new(self.clone(), id, false))
    }

    /// Creates an anonymous object, freed when its last handle anywhere is dropped.
    pub async fn create_raw(&self, typeid: &str, ctor: &[u8]) -> Result<Arc<ObjectHandle>> {
        let req = self.control("create", 2).arg(typeid).raw_arg(ctor);
        let id: u64 = self.invoke(req).await?;
        Ok(ObjectHandle::new(self.clone(), id, true))
    }

    /// Takes a reference on an anonymous object whose id came from another process.
    pub async fn adopt(&self, id: u64) -> Result<Arc<ObjectHandle>> {
        self.invoke::<()>(self.control("incref", 1).arg(&id))
            .await?;
        Ok(ObjectHandle::new(self.clone(), id, true))
    }

    /// A named `dict`, created empty if absent.
    pub async fn dict<K, V>(&self, name: &str) -> Result<DictProxy<K, V>> {
        Ok(DictProxy::new(
            self.get_or_create_raw("dict", name, NO_ARGS).await?,
        ))
    }

    /// A new anonymous `dict`.
    pub async fn new_dict<K, V>(&self) -> Result<DictProxy<K, V>> {
        Ok(DictProxy::new(self.create_raw("dict", NO_ARGS).await?))
    }

    /// A named `list`, created empty if absent.
    pub async fn list<T>(&self, name: &str) -> Result<ListProxy<T>> {
        Ok(ListProxy::new(
            self.get_or_create_raw("list", name, NO_ARGS).await?,
        ))
    }

    /// A new anonymous `list`.
    pub async fn new_list<T>(&self) -> Result<ListProxy<T>> {
        Ok(ListProxy::new(self.create_raw("list", NO_ARGS).await?))
    }

    /// A named `Namespace`, created empty if absent.
    pub async fn namespace(&self, name: &str) -> Result<NamespaceProxy> {
        Ok(NamespaceProxy::new(
            self.get_or_create_raw("Namespace", name, NO_ARGS).await?,
        ))
    }

    /// A new anonymous `Namespace`.
    pub async fn new_namespace(&self) -> Result<NamespaceProxy> {
        Ok(NamespaceProxy::new(
            self.create_raw("Namespace", NO_ARGS).await?,
        ))
    }

    /// A named `Value`, holding `init` if it is created by this call.
    pub async fn value<T: Serialize>(&self, name: &str, init: T) -> Result<ValueProxy<T>> {
        let ctor = ctor_args(&((), init))?;
        Ok(ValueProxy::new(
            self.get_or_create_raw("Value", name, &ctor).await?,
        ))
    }

    /// A new anonymous `Value`.
    pub async fn new_value<T: Serialize>(&self, init: T) -> Result<ValueProxy<T>> {
        Ok(ValueProxy::new(
            self.create_raw("Value", &ctor_args(&((), init))?).await?,
        ))
    }

    /// A named fixed-length typed `Array` (Python's `Array(typecode, sequence)`), holding
    /// `init` if it is created by this call.
    pub async fn array<T: ArrayElement>(&self, name: &str, init: &[T]) -> Result<ArrayProxy<T>> {
        let ctor = ctor_args(&(T::TYPECODE, init))?;
        Ok(ArrayProxy::new(
            self.get_or_create_raw("Array", name, &ctor).await?,
        ))
    }

    /// A new anonymous `Array`.
    pub async fn new_array<T: ArrayElement>(&self, init: &[T]) -> Result<ArrayProxy<T>> {
        let ctor = ctor_args(&(T::TYPECODE, init))?;
        Ok(ArrayProxy::new(self.create_raw("Array", &ctor).await?))
    }

    /// Deletes a named object; its proxies get `NotFound` from then on.
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.invoke(self.control("delete", 1).arg(name)).await
    }

    /// Round trip to the node.
    pub async fn ping(&self) -> Result<()> {
        self.invoke(self.control("ping", 0)).await
    }

    /// Objects and sessions on the node.
    pub async fn status(&self) -> Result<Status> {
        self.invoke(self.control("status", 0)).await
    }

    /// Asks the node to shut down (as `BaseManager.shutdown()`): it stops accepting, ends
    /// every session and exits.
    pub async fn shutdown(&self) -> Result<()> {
        self.invoke(self.control("shutdown", 0)).await
    }
}

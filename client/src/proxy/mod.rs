//! Typed proxies. Each is a cheap handle (an `Arc` inside): clones share one reference to
//! the remote object. Every method is one remote call.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::connection::{RequestBuilder, Undo};
use crate::error::Result;
use crate::manager::Manager;

mod array;
mod dict;
mod list;
mod lock;
mod namespace;
mod queue;
mod semaphore;
mod sync;
mod value;

pub use array::{ArrayElement, ArrayProxy};
pub use dict::DictProxy;
pub use list::ListProxy;
pub use lock::{LockGuard, LockProxy};
pub use namespace::NamespaceProxy;
pub use queue::QueueProxy;
pub use semaphore::{SemaphorePermit, SemaphoreProxy};
pub use sync::{is_broken_barrier, BarrierProxy, ConditionProxy, EventProxy};
pub use value::ValueProxy;

/// A reference to one object on the node. Dropping the last clone of an anonymous
/// object's handle releases the reference (the node frees the object when no session
/// holds it any more).
pub struct ObjectHandle {
    manager: Manager,
    id: u64,
    owned: bool,
}

impl ObjectHandle {
    pub(crate) fn new(manager: Manager, id: u64, owned: bool) -> Arc<ObjectHandle> {
        Arc::new(ObjectHandle { manager, id, owned })
    }

    /// The object's id on the node (stable for its lifetime; may be sent to another
    /// process, which takes its own reference with [`Manager::adopt`]).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The manager this handle calls through.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// Calls any method by name with positional `args` (a tuple, or `()` for none): the
    /// way to reach methods of types an embedding program registered on its node.
    pub async fn call<A, R>(&self, method: &str, args: &A) -> Result<R>
    where
        A: serde::Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let encoded = bytes::Bytes::from(
            rmp_serde::to_vec_named(args).map_err(|e| crate::Error::Encode(e.to_string()))?,
        );
        let items = match syncman_protocol::value::split_array(&encoded) {
            Ok(Some(items)) => items,
            Ok(None) if encoded[..] == [0xc0] => Vec::new(), // `()` encodes as nil
            _ => return Err(crate::Error::Encode("arguments must be a tuple".into())),
        };
        let mut req = self.req(method, items.len() as u32);
        for item in &items {
            req = req.raw_arg(item);
        }
        self.send(req).await
    }

    /// Starts a call to `method` with `nargs` arguments.
    pub(crate) fn req(&self, method: &str, nargs: u32) -> RequestBuilder {
        self.manager.conn.request(self.id, method, nargs)
    }

    /// Sends a call and decodes its result.
    pub(crate) async fn send<R: DeserializeOwned>(&self, req: RequestBuilder) -> Result<R> {
        self.manager.invoke(req).await
    }

    /// Sends a call that may be granted something; see [`Undo`].
    pub(crate) async fn send_with_undo<R: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        undo: Option<Undo>,
    ) -> Result<R> {
        let bytes = self.manager.conn.call_with_undo(req, undo).await?;
        crate::manager::decode(&bytes)
    }
}

impl Drop for ObjectHandle {
    fn drop(&mut self) {
        if self.owned {
            self.manager.conn.release(self.id);
        }
    }
}

impl std::fmt::Debug for ObjectHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectHandle")
            .field("id", &self.id)
            .field("anonymous", &self.owned)
            .finish()
    }
}

/// The parts every proxy type shares: the handle, `Clone`, `Debug`, `id()`.
macro_rules! proxy_type {
    ($(#[$doc:meta])* $name:ident < $($t:ident),* >) => {
        $(#[$doc])*
        pub struct $name<$($t),*> {
            pub(crate) handle: std::sync::Arc<crate::proxy::ObjectHandle>,
            _types: std::marker::PhantomData<fn() -> ($($t,)*)>,
        }

        impl<$($t),*> $name<$($t),*> {
            pub(crate) fn new(handle: std::sync::Arc<crate::proxy::ObjectHandle>) -> Self {
                $name { handle, _types: std::marker::PhantomData }
            }

            /// A typed view of a handle, e.g. one from [`crate::Manager::adopt`] for an
            /// object another process created. The node checks every call against the
            /// object's real type.
            pub fn from_handle(handle: std::sync::Arc<crate::proxy::ObjectHandle>) -> Self {
                Self::new(handle)
            }

            /// The object's id on the node.
            pub fn id(&self) -> u64 {
                self.handle.id()
            }

            /// The underlying handle.
            pub fn handle(&self) -> &std::sync::Arc<crate::proxy::ObjectHandle> {
                &self.handle
            }
        }

        impl<$($t),*> Clone for $name<$($t),*> {
            fn clone(&self) -> Self {
                $name::new(self.handle.clone())
            }
        }

        impl<$($t),*> std::fmt::Debug for $name<$($t),*> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.handle.id()).finish()
            }
        }
    };
}
pub(crate) use proxy_type;

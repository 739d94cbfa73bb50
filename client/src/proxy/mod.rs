//! Typed proxies, one file per object type. Each is a cheap handle (an `Arc` inside):
//! clones share one reference to the remote object. Every method is one remote call, made
//! straight on the connection.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::connection::Connection;
use crate::error::{ErrorKind, Result};

mod array;
mod barrier;
mod condition;
mod dict;
mod event;
mod list;
mod lock;
mod namespace;
mod queue;
mod semaphore;
mod value;

pub use array::{ArrayElement, ArrayProxy};
pub use barrier::{is_broken_barrier, BarrierProxy};
pub use condition::{ConditionGuard, ConditionProxy};
pub use dict::DictProxy;
pub use event::EventProxy;
pub use list::ListProxy;
pub use lock::{LockGuard, LockProxy};
pub use namespace::NamespaceProxy;
pub use queue::{LeasedItem, QueueProxy};
pub use semaphore::{SemaphorePermit, SemaphoreProxy};
pub use value::ValueProxy;

/// A reference to one object on the node. Dropping the last clone of an anonymous
/// object's handle releases the reference (the node frees the object when no session
/// holds it any more).
pub struct ObjectHandle {
    pub(crate) conn: Arc<Connection>,
    pub(crate) id: u64,
    owned: bool,
}

impl ObjectHandle {
    pub(crate) fn new(conn: Arc<Connection>, id: u64, owned: bool) -> Arc<ObjectHandle> {
        Arc::new(ObjectHandle { conn, id, owned })
    }

    /// The object's id on the node (stable for its lifetime; may be sent to another
    /// process, which takes its own reference with [`crate::Manager::adopt`]).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Calls any method by name with positional `args` (a tuple, or `()` for none): the
    /// way to reach methods of types an embedding program registered on its node.
    pub async fn call<A, R>(&self, method: &str, args: &A) -> Result<R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.conn.call(self.id, method, args).await
    }
}

impl Drop for ObjectHandle {
    fn drop(&mut self) {
        if self.owned {
            self.conn.release(self.id);
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

/// Maps one remote error kind to `Ok(None)` (Python raises where Rust returns `None`).
pub(crate) fn none_on<T>(r: Result<T>, kind: ErrorKind) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_kind(kind) => Ok(None),
        Err(e) => Err(e),
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
                self.handle.id
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
                f.debug_tuple(stringify!($name)).field(&self.handle.id).finish()
            }
        }
    };
}
pub(crate) use proxy_type;

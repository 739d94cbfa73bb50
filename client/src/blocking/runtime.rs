//! The runtime a blocking [`Manager`](super::Manager) owns, and the conversion from async
//! proxies to their blocking wrappers.

use std::future::Future;
use std::sync::Arc;

use tokio::runtime::{Builder, Runtime};

use crate::error::{Error, Result};

/// True on a thread that has a tokio runtime context: a worker, a `block_on`, or a
/// `spawn_blocking` thread. Blocking there either panics (`block_on` inside a runtime) or
/// stalls the caller's runtime, so the facade refuses with [`Error::InsideRuntime`].
fn inside_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// A one-worker multi-thread runtime: the connection's reader and writer tasks run on its
/// worker between calls, and any number of threads may `block_on` it at once.
#[derive(Debug)]
pub(crate) struct Rt {
    /// `Some` until dropped.
    runtime: Option<Runtime>,
}

impl Rt {
    pub(crate) fn new() -> Result<Rt> {
        if inside_runtime() {
            return Err(Error::InsideRuntime);
        }
        let runtime = Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("syncman-client")
            .enable_all()
            .build()?;
        Ok(Rt {
            runtime: Some(runtime),
        })
    }

    /// Runs one call to completion on the calling thread.
    pub(crate) fn block_on<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T> {
        if inside_runtime() {
            return Err(Error::InsideRuntime);
        }
        match &self.runtime {
            Some(runtime) => runtime.block_on(call),
            None => Err(Error::Disconnected),
        }
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        if inside_runtime() {
            // A plain drop waits for the worker and panics in async code; this does not wait.
            runtime.shutdown_background();
        }
        // Otherwise drop normally: it waits for the worker, so the socket is closed (and
        // the node ends the session) by the time the last handle is gone.
    }
}

/// Wraps an async proxy (or guard) with the runtime it is driven by.
pub(crate) trait FromAsync<A> {
    fn from_async(inner: A, rt: &Arc<Rt>) -> Self;
}

impl<A, B: FromAsync<A>> FromAsync<Option<A>> for Option<B> {
    fn from_async(inner: Option<A>, rt: &Arc<Rt>) -> Self {
        inner.map(|inner| B::from_async(inner, rt))
    }
}

/// [`FromAsync::from_async`] as a function, for `blocking_fns!`'s `=> wrap` methods.
pub(crate) fn wrap<A, B: FromAsync<A>>(inner: A, rt: &Arc<Rt>) -> B {
    B::from_async(inner, rt)
}

//! The runtime a blocking [`Manager`](super::Manager) owns, and the conversion from async
//! proxies to their blocking wrappers.

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::runtime::{Builder, Runtime};
use tokio_util::sync::CancellationToken;

/// Longest wait for a connection to close when the runtime is dropped (a little over the
/// connection's own linger).
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(6);

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
    /// Cancelled when each connection driven here has closed its socket; waited for before
    /// the runtime stops, so answers to abandoned calls are given back first.
    connections_closed: Mutex<Vec<CancellationToken>>,
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
            connections_closed: Mutex::new(Vec::new()),
        })
    }

    /// Waits, when this runtime is dropped, for a connection it drives to close cleanly.
    pub(crate) fn wait_on_drop(&self, closed: CancellationToken) {
        self.connections_closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(closed);
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
            return;
        }
        // Every handle is gone, so each connection is closing: it gives back what abandoned
        // calls were handed, then closes its socket (bounded by its own linger time). Only
        // then stop the tasks, so the node ends the session with nothing lost.
        let closed = std::mem::take(
            &mut *self
                .connections_closed
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        runtime.block_on(async {
            for c in closed {
                let _ = tokio::time::timeout(CLOSE_WAIT, c.cancelled()).await;
            }
        });
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

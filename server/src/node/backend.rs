//! The seam between sessions and where objects and sessions live.
//!
//! Sessions (`session.rs`) reach the object table, their own identity and liveness, and
//! (through the lock types) fencing tokens only through [`Backend`]. The in-memory node
//! ([`super::memory::MemoryBackend`]) is the one implementation; `docs/ARCHITECTURE.md`
//! ("Beyond one node") describes how an etcd-backed one would plug in: sessions as leases,
//! tokens as revisions, waits as watches.
//!
//! # Cost
//! The node is generic over its backend, so every call here is static dispatch. The one
//! method on a call's hot path, [`Backend::object`], is synchronous; the others run once per
//! object or session (create, reference counts, session start and end) and return futures,
//! which a remote backend needs and the in-memory one answers at once without allocating.

use std::future::Future;
use std::sync::Arc;

use syncman_protocol::{Args, RemoteError};

use super::object::{SessionId, SharedObject};

/// An object's id on the node. 0 is the node itself (control calls).
pub type ObjectId = u64;

/// One row of a status listing.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub id: ObjectId,
    pub name: Option<String>,
    pub typeid: String,
    /// References held on an anonymous object (named objects are not counted).
    pub refs: u64,
    /// Calls parked on it now.
    pub waiters: u64,
    /// The object's own one-line description (holder, waiters, size).
    pub detail: String,
}

/// How many objects of one typeid exist, and how many calls are parked on them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeCensus {
    pub typeid: String,
    pub objects: u64,
    pub waiters: u64,
}

/// Where a node keeps its objects and sessions.
pub trait Backend: Send + Sync + 'static {
    /// Where this backend's locks get their fencing tokens.
    type Tokens: FencingTokens;

    // -- The object table --------------------------------------------------------------

    /// The object with `id`, if it exists. Runs for every method call: synchronous, and
    /// must not wait on anything.
    fn object(&self, id: ObjectId) -> Option<Arc<dyn SharedObject>>;

    /// Creates an anonymous object of `typeid` holding one reference (the caller's).
    fn create(
        &self,
        typeid: &str,
        ctor: Args<'_>,
    ) -> impl Future<Output = Result<ObjectId, RemoteError>> + Send;

    /// The object named `name`, created from `ctor` if absent; true if this call created
    /// it. Asking for an existing name with another typeid is a `TypeError`.
    fn get_or_create(
        &self,
        name: &str,
        typeid: &str,
        ctor: Args<'_>,
    ) -> impl Future<Output = Result<(ObjectId, bool), RemoteError>> + Send;

    /// Adds a reference to an anonymous object (named objects are not counted).
    fn incref(&self, id: ObjectId) -> impl Future<Output = Result<(), RemoteError>> + Send;

    /// Drops a reference; an anonymous object at zero leaves the table and is closed.
    fn decref(&self, id: ObjectId) -> impl Future<Output = ()> + Send;

    /// Deletes a named object; calls on it get `NotFound` from then on.
    fn delete_named(&self, name: &str) -> impl Future<Output = Result<(), RemoteError>> + Send;

    /// The typeids this backend can create, sorted.
    fn typeids(&self) -> Vec<String>;

    /// Number of live objects.
    fn object_count(&self) -> impl Future<Output = usize> + Send;

    /// Every object, for status listings.
    fn snapshot(&self) -> impl Future<Output = Vec<ObjectInfo>> + Send;

    // -- Sessions ----------------------------------------------------------------------

    /// A new session's identity, before it may make any call.
    fn open_session(&self) -> impl Future<Output = Result<SessionId, RemoteError>> + Send;

    /// Resolves if the backend ends the session on its own (a remote lease that could not
    /// be renewed); the session then ends as if its connection had. The in-memory node
    /// never does: its sessions live exactly as long as their connections.
    fn session_lost(&self, id: SessionId) -> impl Future<Output = ()> + Send + 'static;

    /// The session has ended and released what it held.
    fn close_session(&self, id: SessionId) -> impl Future<Output = ()> + Send;

    /// Sessions open now.
    fn live_sessions(&self) -> impl Future<Output = usize> + Send;

    /// Bytes the objects hold now and the most they may hold, if this backend counts them.
    fn bytes_held(&self) -> Option<(usize, usize)> {
        None
    }

    /// Objects and parked calls per typeid, sorted by typeid, with every typeid this
    /// backend creates (at zero if it has none): read by the metrics at each scrape, so it
    /// must not wait. `None` if this backend cannot count them so.
    fn census(&self) -> Option<Vec<TypeCensus>> {
        None
    }
}

/// Issues a lock's fencing tokens, each larger than every one before, so that a resource
/// guarded by the lock can refuse a holder whose grant has since passed to someone else.
///
/// A lock draws its next token in the same step as the grant, under its own mutex, so it
/// is synchronous. A store that is remote (etcd) would not implement this: its locks grant
/// in a transaction whose revision is the token (see `docs/ARCHITECTURE.md`).
pub trait FencingTokens: Default + Send + 'static {
    fn next_token(&mut self) -> u64;
}

/// The error for a call on an object that is not (or no longer) in the table.
pub fn no_such_object(id: ObjectId) -> RemoteError {
    RemoteError::not_found(format!(
        "no object with id {id} (deleted, or freed when its last reference went)"
    ))
}

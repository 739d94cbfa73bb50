//! The in-memory backend: objects by id and by name with their reference counts, sessions
//! counted, and a fencing-token counter per lock. The node's default.
//!
//! Named objects live until deleted or the node stops. Anonymous objects are counted: each
//! reference belongs to a session (native clients) or is a free-standing count (CPython
//! clients' explicit `incref`/`decref`); at zero the object is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use syncman_protocol::{Args, RemoteError};

use super::backend::{no_such_object, Backend, FencingTokens, ObjectId, ObjectInfo, TypeCensus};
use super::budget::{memory_error, ByteBudget};
use super::object::{SessionId, SharedObject};
use super::registry::{Objects, Registry};

struct Entry {
    object: Arc<dyn SharedObject>,
    name: Option<String>,
    refs: u64,
}

#[derive(Default)]
struct Table {
    /// Looked up on every call: hashbrown's default hasher (foldhash) costs a fraction of
    /// std's SipHash for a u64, and the ids are the node's own counter, not a peer's choice.
    objects: hashbrown::HashMap<ObjectId, Entry>,
    names: HashMap<String, ObjectId>,
}

/// The in-memory node's objects and sessions.
pub struct MemoryBackend {
    registry: Registry,
    table: RwLock<Table>,
    next_id: AtomicU64,
    next_session: AtomicU64,
    live_sessions: AtomicUsize,
    /// The most objects the table may hold.
    max_objects: usize,
    /// What all objects may hold, in bytes.
    budget: Arc<ByteBudget>,
}

impl MemoryBackend {
    /// An empty node that creates objects of the typeids in `registry`, without limits on
    /// objects or bytes (see [`MemoryBackend::with_limits`]).
    pub fn new(registry: Registry) -> Self {
        Self::with_limits(registry, usize::MAX, usize::MAX)
    }

    /// An empty node holding at most `max_objects` objects and `max_bytes` bytes in them;
    /// beyond either, creating or growing fails with `MemoryError`.
    pub fn with_limits(registry: Registry, max_objects: usize, max_bytes: usize) -> Self {
        MemoryBackend {
            registry,
            table: RwLock::default(),
            // 0 is the node's own control object.
            next_id: AtomicU64::new(1),
            next_session: AtomicU64::new(1),
            live_sessions: AtomicUsize::new(0),
            max_objects,
            budget: ByteBudget::new(max_bytes),
        }
    }

    /// The node's byte budget: what its objects hold now, and the limit.
    pub fn budget(&self) -> &ByteBudget {
        &self.budget
    }

    /// A new object of `typeid`, charged to the byte budget.
    fn construct(
        &self,
        typeid: &str,
        ctor: Args<'_>,
    ) -> Result<Arc<dyn SharedObject>, RemoteError> {
        let object = self.registry.construct(typeid, ctor, self)?;
        object.bind_budget(&self.budget)?;
        Ok(object)
    }

    /// `MemoryError` if the table is full.
    fn check_room(&self, table: &Table) -> Result<(), RemoteError> {
        if table.objects.len() >= self.max_objects {
            return Err(memory_error(format!(
                "the node holds its maximum of {} objects (see --max-objects)",
                self.max_objects
            )));
        }
        Ok(())
    }

    /// The typeids this node creates, for an embedding program to add its own.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    fn lookup(&self, name: &str, typeid: &str) -> Result<Option<ObjectId>, RemoteError> {
        let table = self.table.read();
        let Some(&id) = table.names.get(name) else {
            return Ok(None);
        };
        match table.objects.get(&id) {
            Some(e) if e.object.typeid() == typeid => Ok(Some(id)),
            Some(e) => Err(typeid_clash(name, e.object.typeid(), typeid)),
            None => Ok(None),
        }
    }
}

impl Objects for MemoryBackend {
    fn find(&self, id: ObjectId) -> Option<Arc<dyn SharedObject>> {
        Backend::object(self, id)
    }
}

impl Backend for MemoryBackend {
    type Tokens = TokenCounter;

    fn object(&self, id: ObjectId) -> Option<Arc<dyn SharedObject>> {
        self.table.read().objects.get(&id).map(|e| e.object.clone())
    }

    async fn create(&self, typeid: &str, ctor: Args<'_>) -> Result<ObjectId, RemoteError> {
        let object = self.construct(typeid, ctor)?;
        let mut table = self.table.write();
        self.check_room(&table)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            object,
            name: None,
            refs: 1,
        };
        table.objects.insert(id, entry);
        Ok(id)
    }

    async fn get_or_create(
        &self,
        name: &str,
        typeid: &str,
        ctor: Args<'_>,
    ) -> Result<(ObjectId, bool), RemoteError> {
        if let Some(id) = self.lookup(name, typeid)? {
            return Ok((id, false));
        }
        // Construct outside the lock; a racing creator may win, then ours is dropped.
        let object = self.construct(typeid, ctor)?;
        let mut table = self.table.write();
        if let Some(&id) = table.names.get(name) {
            return match table.objects.get(&id).map(|e| e.object.typeid()) {
                Some(t) if t == typeid => Ok((id, false)),
                Some(t) => Err(typeid_clash(name, t, typeid)),
                None => Err(RemoteError::runtime_error("object table inconsistent")),
            };
        }
        self.check_room(&table)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        table.names.insert(name.to_owned(), id);
        let entry = Entry {
            object,
            name: Some(name.to_owned()),
            refs: 0,
        };
        table.objects.insert(id, entry);
        Ok((id, true))
    }

    async fn incref(&self, id: ObjectId) -> Result<(), RemoteError> {
        let mut table = self.table.write();
        let entry = table
            .objects
            .get_mut(&id)
            .ok_or_else(|| no_such_object(id))?;
        if entry.name.is_none() {
            entry.refs += 1;
        }
        Ok(())
    }

    async fn decref(&self, id: ObjectId) {
        let freed = {
            let mut table = self.table.write();
            match table.objects.get_mut(&id) {
                Some(e) if e.name.is_none() => {
                    e.refs = e.refs.saturating_sub(1);
                    if e.refs == 0 {
                        table.objects.remove(&id)
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        // The object (maybe large) is closed and dropped here, outside the lock.
        if let Some(entry) = freed {
            entry.object.closed();
        }
    }

    async fn delete_named(&self, name: &str) -> Result<(), RemoteError> {
        let removed = {
            let mut table = self.table.write();
            let id = table
                .names
                .remove(name)
                .ok_or_else(|| RemoteError::key_error(format!("no object named '{name}'")))?;
            table.objects.remove(&id)
        };
        if let Some(entry) = removed {
            entry.object.closed();
        }
        Ok(())
    }

    fn typeids(&self) -> Vec<String> {
        let mut names: Vec<String> = self.registry.typeids().map(str::to_owned).collect();
        names.sort_unstable();
        names
    }

    async fn object_count(&self) -> usize {
        self.table.read().objects.len()
    }

    async fn snapshot(&self) -> Vec<ObjectInfo> {
        let mut rows: Vec<_> = {
            let table = self.table.read();
            table
                .objects
                .iter()
                .map(|(&id, e)| {
                    let info = ObjectInfo {
                        id,
                        name: e.name.clone(),
                        typeid: e.object.typeid().to_owned(),
                        refs: e.refs,
                        waiters: 0,
                        detail: String::new(),
                    };
                    (info, e.object.clone())
                })
                .collect()
        };
        rows.sort_by_key(|(info, _)| info.id);
        // Each object describes itself under its own lock, not the table's.
        rows.into_iter()
            .map(|(mut info, object)| {
                info.detail = object.describe();
                info.waiters = object.waiting() as u64;
                info
            })
            .collect()
    }

    async fn open_session(&self) -> Result<SessionId, RemoteError> {
        self.live_sessions.fetch_add(1, Ordering::Relaxed);
        Ok(self.next_session.fetch_add(1, Ordering::Relaxed))
    }

    fn session_lost(
        &self,
        _id: SessionId,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        std::future::pending()
    }

    async fn close_session(&self, _id: SessionId) {
        self.live_sessions.fetch_sub(1, Ordering::Relaxed);
    }

    async fn live_sessions(&self) -> usize {
        self.live_sessions.load(Ordering::Relaxed)
    }

    fn bytes_held(&self) -> Option<(usize, usize)> {
        Some((self.budget.used(), self.budget.limit()))
    }

    fn census(&self) -> Option<Vec<TypeCensus>> {
        // Each object counts its waiters under its own lock, not the table's.
        let objects: Vec<Arc<dyn SharedObject>> = {
            let table = self.table.read();
            table.objects.values().map(|e| e.object.clone()).collect()
        };
        let mut counts: BTreeMap<&str, (u64, u64)> =
            self.registry.typeids().map(|t| (t, (0, 0))).collect();
        for object in &objects {
            let (n, waiters) = counts.entry(object.typeid()).or_default();
            *n += 1;
            *waiters += object.waiting() as u64;
        }
        let census = counts
            .into_iter()
            .map(|(typeid, (objects, waiters))| TypeCensus {
                typeid: typeid.to_owned(),
                objects,
                waiters,
            });
        Some(census.collect())
    }
}

/// The in-memory node's fencing tokens: a counter per lock, bumped under the lock's own
/// mutex in the same step as the grant. Tokens of one lock start at 1.
#[derive(Debug, Default)]
pub struct TokenCounter {
    last: u64,
}

impl FencingTokens for TokenCounter {
    fn next_token(&mut self) -> u64 {
        self.last += 1;
        self.last
    }
}

fn typeid_clash(name: &str, existing: &str, wanted: &str) -> RemoteError {
    RemoteError::type_error(format!(
        "object '{name}' exists with typeid '{existing}', not '{wanted}'"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::object::{CallCtx, Outcome};
    use crate::node::objects::register_builtins;

    #[tokio::test]
    async fn the_census_counts_objects_and_waiters_by_typeid() {
        let mut registry = Registry::default();
        register_builtins::<TokenCounter>(&mut registry);
        let backend = MemoryBackend::new(registry);
        for _ in 0..2 {
            backend.create("dict", Args::empty()).await.unwrap();
        }
        let (q, _) = backend
            .get_or_create("q", "Queue", Args::empty())
            .await
            .unwrap();
        let queue = backend.object(q).unwrap();
        let Outcome::Park(_parked) = queue.call("get", Args::empty(), &mut CallCtx::new(1)) else {
            panic!("a get on an empty queue waits")
        };
        let census = backend.census().unwrap();
        let row = |typeid: &str| {
            let row = census.iter().find(|c| c.typeid == typeid).expect(typeid);
            (row.objects, row.waiters)
        };
        assert_eq!(row("dict"), (2, 0));
        assert_eq!(row("Queue"), (1, 1));
        assert_eq!(row("list"), (0, 0), "every typeid, at zero if none");
        assert_eq!(census.len(), backend.typeids().len());
        assert!(
            census.windows(2).all(|w| w[0].typeid < w[1].typeid),
            "sorted"
        );
    }
}

//! The object table: ids, names and reference counts.
//!
//! Named objects live until deleted or the node stops. Anonymous objects are counted: each
//! reference belongs to a session (native clients) or is a free-standing count (CPython
//! clients' explicit `incref`/`decref`); at zero the object is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use syncman_protocol::RemoteError;

use crate::object::SharedObject;

pub type ObjectId = u64;

struct Entry {
    object: Arc<dyn SharedObject>,
    name: Option<String>,
    refs: u64,
}

#[derive(Default)]
struct Inner {
    objects: HashMap<ObjectId, Entry>,
    names: HashMap<String, ObjectId>,
}

/// One row of a status listing.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub id: ObjectId,
    pub name: Option<String>,
    pub typeid: String,
    pub refs: u64,
    pub detail: String,
}

pub struct ObjectTable {
    inner: RwLock<Inner>,
    next_id: AtomicU64,
}

impl Default for ObjectTable {
    fn default() -> Self {
        ObjectTable {
            inner: RwLock::default(),
            // 0 is the node's own control object.
            next_id: AtomicU64::new(1),
        }
    }
}

impl ObjectTable {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated (every update
        // is a single insert/remove), so a poisoned lock is still consistent.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: ObjectId) -> Option<Arc<dyn SharedObject>> {
        self.read().objects.get(&id).map(|e| e.object.clone())
    }

    /// Adds an anonymous object holding one reference.
    pub fn insert_anonymous(&self, object: Arc<dyn SharedObject>) -> ObjectId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.write().objects.insert(
            id,
            Entry {
                object,
                name: None,
                refs: 1,
            },
        );
        id
    }

    /// Returns the object named `name`, creating it with `make` if absent. Asking for an
    /// existing name with another typeid is an error.
    pub fn get_or_create(
        &self,
        name: &str,
        typeid: &str,
        make: impl FnOnce() -> Result<Arc<dyn SharedObject>, RemoteError>,
    ) -> Result<(ObjectId, bool), RemoteError> {
        if let Some(id) = self.lookup(name, typeid)? {
            return Ok((id, false));
        }
        // Construct outside the lock; a racing creator may win, then ours is dropped.
        let object = make()?;
        let mut inner = self.write();
        if let Some(&id) = inner.names.get(name) {
            let existing = inner.objects.get(&id).map(|e| e.object.typeid().to_owned());
            drop(inner);
            return match existing {
                Some(t) if t == typeid => Ok((id, false)),
                Some(t) => Err(typeid_clash(name, &t, typeid)),
                None => Err(RemoteError::runtime_error("object table inconsistent")),
            };
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        inner.names.insert(name.to_owned(), id);
        inner.objects.insert(
            id,
            Entry {
                object,
                name: Some(name.to_owned()),
                refs: 0,
            },
        );
        Ok((id, true))
    }

    fn lookup(&self, name: &str, typeid: &str) -> Result<Option<ObjectId>, RemoteError> {
        let inner = self.read();
        let Some(&id) = inner.names.get(name) else {
            return Ok(None);
        };
        match inner.objects.get(&id) {
            Some(e) if e.object.typeid() == typeid => Ok(Some(id)),
            Some(e) => Err(typeid_clash(name, e.object.typeid(), typeid)),
            None => Ok(None),
        }
    }

    /// Adds a reference to an anonymous object. Named objects are not counted.
    pub fn incref(&self, id: ObjectId) -> Result<(), RemoteError> {
        let mut inner = self.write();
        let entry = inner
            .objects
            .get_mut(&id)
            .ok_or_else(|| no_such_object(id))?;
        if entry.name.is_none() {
            entry.refs += 1;
        }
        Ok(())
    }

    /// Drops a reference; frees an anonymous object at zero. Returns true if freed.
    pub fn decref(&self, id: ObjectId) -> bool {
        let freed = {
            let mut inner = self.write();
            match inner.objects.get_mut(&id) {
                Some(e) if e.name.is_none() => {
                    e.refs = e.refs.saturating_sub(1);
                    if e.refs == 0 {
                        inner.objects.remove(&id)
                    } else {
                        None
                    }
                }
                _ => None,
            }
        };
        // The object (maybe large) is closed and dropped here, outside the lock.
        match freed {
            Some(entry) => {
                entry.object.closed();
                true
            }
            None => false,
        }
    }

    /// Deletes a named object. Proxies to it get `NotFound` from then on.
    pub fn delete_named(&self, name: &str) -> Result<(), RemoteError> {
        let removed = {
            let mut inner = self.write();
            let id = inner
                .names
                .remove(name)
                .ok_or_else(|| RemoteError::key_error(format!("no object named '{name}'")))?;
            inner.objects.remove(&id)
        };
        if let Some(entry) = removed {
            entry.object.closed();
        }
        Ok(())
    }

    /// Number of live objects.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every object, for status listings and shutdown.
    pub fn snapshot(&self) -> Vec<(ObjectInfo, Arc<dyn SharedObject>)> {
        let inner = self.read();
        let mut rows: Vec<_> = inner
            .objects
            .iter()
            .map(|(&id, e)| {
                (
                    ObjectInfo {
                        id,
                        name: e.name.clone(),
                        typeid: e.object.typeid().to_owned(),
                        refs: e.refs,
                        detail: String::new(),
                    },
                    e.object.clone(),
                )
            })
            .collect();
        drop(inner);
        rows.sort_by_key(|(info, _)| info.id);
        for (info, object) in &mut rows {
            info.detail = object.describe();
        }
        rows
    }
}

pub fn no_such_object(id: ObjectId) -> RemoteError {
    RemoteError::not_found(format!(
        "no object with id {id} (deleted, or freed when its last reference went)"
    ))
}

fn typeid_clash(name: &str, existing: &str, wanted: &str) -> RemoteError {
    RemoteError::type_error(format!(
        "object '{name}' exists with typeid '{existing}', not '{wanted}'"
    ))
}

//! Typeids served beyond SyncManager's ([`ServedTypeid`], `syncman serve --typeid`): the
//! remote-manager pattern of CPython's docs, where a client registers `get_queue` without a
//! callable and the server decides what it returns.

use super::methods::{py_type, PyType};
use crate::config::{Config, ConfigError, ServedTypeid};

/// Refuses served typeids that CPython clients could not use: a type the pickle dialect
/// does not serve, or a typeid that would hide one of SyncManager's.
pub(crate) fn check(config: &Config) -> Result<(), ConfigError> {
    for served in &config.served_typeids {
        if py_type(&served.object_type).is_none() {
            return Err(ConfigError(format!(
                "--typeid {}: {:?} is not a type the node serves to CPython clients (dict, \
                 list, Queue, JoinableQueue, Lock, RLock, Semaphore, BoundedSemaphore, \
                 Condition, Event, Barrier, Namespace, Value, Array)",
                served.typeid, served.object_type
            )));
        }
        if py_type(&served.typeid).is_some() || served.typeid == "Pool" {
            return Err(ConfigError(format!(
                "--typeid {}: SyncManager already has that typeid",
                served.typeid
            )));
        }
    }
    Ok(())
}

/// What `typeid` serves, if it is one of the node's served typeids.
pub(super) fn lookup<'c>(config: &'c Config, typeid: &str) -> Option<&'c ServedTypeid> {
    config.served_typeids.iter().find(|s| s.typeid == typeid)
}

/// CPython's view of the objects a typeid names, SyncManager's own or a served one.
pub(super) fn python_type(config: &Config, typeid: &str) -> Option<&'static PyType> {
    py_type(typeid).or_else(|| lookup(config, typeid).and_then(|s| py_type(&s.object_type)))
}

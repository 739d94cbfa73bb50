//! Typeid → constructor. There is no central match over typeids: the node looks the type up
//! here and calls it, for built-in types and those an embedding program registers alike.

use std::collections::HashMap;
use std::sync::Arc;

use syncman_protocol::{Args, RemoteError};

use super::backend::ObjectId;
use super::object::SharedObject;

/// The objects already on the node, for a constructor whose arguments name one (Python's
/// `Condition(lock)` names the `Lock` it shares).
pub trait Objects {
    fn find(&self, id: ObjectId) -> Option<Arc<dyn SharedObject>>;
}

/// Builds an object of one typeid from its constructor arguments.
pub type Factory =
    Arc<dyn Fn(Args, &dyn Objects) -> Result<Arc<dyn SharedObject>, RemoteError> + Send + Sync>;

/// Typeid → constructor.
#[derive(Clone, Default)]
pub struct Registry {
    factories: HashMap<String, Factory>,
}

impl Registry {
    /// Adds (or replaces) a typeid, as Python's `BaseManager.register`.
    pub fn register<F>(&mut self, typeid: impl Into<String>, factory: F)
    where
        F: Fn(Args) -> Result<Arc<dyn SharedObject>, RemoteError> + Send + Sync + 'static,
    {
        self.register_with_objects(typeid, move |args, _| factory(args));
    }

    /// Adds a typeid whose constructor may look up the objects its arguments name.
    pub fn register_with_objects<F>(&mut self, typeid: impl Into<String>, factory: F)
    where
        F: Fn(Args, &dyn Objects) -> Result<Arc<dyn SharedObject>, RemoteError>
            + Send
            + Sync
            + 'static,
    {
        self.factories.insert(typeid.into(), Arc::new(factory));
    }

    /// A new object of `typeid`; `KeyError` for a typeid nobody registered.
    pub fn construct(
        &self,
        typeid: &str,
        args: Args<'_>,
        objects: &dyn Objects,
    ) -> Result<Arc<dyn SharedObject>, RemoteError> {
        let factory = self
            .factories
            .get(typeid)
            .ok_or_else(|| RemoteError::key_error(format!("unknown typeid '{typeid}'")))?;
        factory(args, objects)
    }

    pub fn typeids(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }
}

//! Helpers for the object types' unit tests.

use std::sync::Arc;

use syncman_protocol::{Args, Value};

use crate::node::backend::ObjectId;
use crate::node::object::{Outcome, Parked, Reply, SharedObject};
use crate::node::registry::Objects;

/// Positional arguments from values.
pub fn args(values: &[Value]) -> Args {
    Args::from_array(Value::Array(values.to_vec()).to_bytes()).expect("an encoded array")
}

/// The answer of a call that must not park.
pub fn ready(o: Outcome) -> Reply {
    match o {
        Outcome::Ready(r) => r,
        Outcome::Park(_) => panic!("expected an immediate answer"),
    }
}

/// The parked half of a call that must park.
pub fn park(o: Outcome) -> Parked {
    match o {
        Outcome::Park(p) => p,
        Outcome::Ready(r) => panic!("expected to park, got {r:?}"),
    }
}

/// A node's object table for constructors that look objects up (a `Condition(lock)`).
#[derive(Default)]
pub struct TestObjects(pub std::collections::HashMap<ObjectId, Arc<dyn SharedObject>>);

impl Objects for TestObjects {
    fn find(&self, id: ObjectId) -> Option<Arc<dyn SharedObject>> {
        self.0.get(&id).cloned()
    }
}

//! Helpers for the object types' unit tests.

use std::sync::Arc;

use syncman_protocol::{ArgList, Args, Value};

use crate::node::backend::ObjectId;
use crate::node::object::{Outcome, Parked, Reply, SharedObject};
use crate::node::registry::Objects;

/// Positional arguments from values. Their encoding is leaked (a test's few bytes), so they
/// borrow nothing the test has to keep.
pub fn args(values: &[Value]) -> Args<'static> {
    Box::leak(Box::new(ArgList::of(values))).args()
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

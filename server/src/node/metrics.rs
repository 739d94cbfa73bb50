//! Call statistics for the node's metrics: how many calls each typeid's methods ran and how
//! long they took, waits included. The network layer exports them (`net/metrics/`); nothing
//! here knows how.
//!
//! # Cost
//! This is on every call's path, so a call takes no lock and allocates nothing here. Each
//! (typeid, method) has its own atomic latency buckets. A session finds them through a small
//! cache of its recently used objects ([`CallRecorder`]; an object's typeid never changes
//! and ids are never reused) and the method's index in its type's table, which the session
//! finds anyway to check the call. The shared typeid table is read only on a cache miss.
//! A node that does not collect metrics has no [`CallStats`]: a call pays one branch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use super::backend::ObjectId;
use super::object::{MethodSpec, SharedObject};

/// Upper bounds of the latency buckets, in nanoseconds (+Inf follows): from a call
/// answered at once (around a microsecond inside the node) to one that waited a minute.
pub const LATENCY_BOUNDS_NS: [u64; 17] = [
    1_000,
    5_000,
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    10_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// When a call started: the monotonic clock (`CLOCK_MONOTONIC`, what `Instant` reads) in
/// nanoseconds. Read directly, because `Instant`'s checked arithmetic costs more than the
/// reading itself (callgrind: about 60 instructions a call) and a call reads it twice.
#[derive(Debug, Clone, Copy)]
pub struct CallStart(u64);

impl CallStart {
    #[inline]
    pub fn now() -> CallStart {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime only writes the struct it is given; CLOCK_MONOTONIC always
        // exists on Linux, and on failure the struct stays zero (a zero latency).
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let ns = (now.tv_sec as u64).wrapping_mul(1_000_000_000);
        CallStart(ns.wrapping_add(now.tv_nsec as u64))
    }

    /// Nanoseconds since.
    #[inline]
    fn elapsed(self) -> u64 {
        CallStart::now().0.saturating_sub(self.0)
    }
}

/// Latency buckets of one method: one per bound, and +Inf.
const BUCKETS: usize = LATENCY_BOUNDS_NS.len() + 1;

/// One method's calls: a latency histogram, whose total is the number of calls.
#[derive(Debug, Default)]
pub struct MethodCalls {
    /// Calls per latency bucket (not cumulative); the last is +Inf.
    buckets: [AtomicU64; BUCKETS],
    /// Sum of the latencies, in nanoseconds.
    sum_ns: AtomicU64,
}

/// A reading of one method's histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodSnapshot {
    /// Calls per bucket of [`LATENCY_BOUNDS_NS`] (not cumulative), then +Inf.
    pub buckets: [u64; BUCKETS],
    pub count: u64,
    pub sum: Duration,
}

impl MethodCalls {
    #[inline]
    fn record(&self, ns: u64) {
        // Most calls land in the first bucket or two: a scan from the bottom is shortest.
        let bucket = LATENCY_BOUNDS_NS
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(LATENCY_BOUNDS_NS.len());
        if let Some(b) = self.buckets.get(bucket) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MethodSnapshot {
        let buckets: [u64; BUCKETS] =
            std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed));
        MethodSnapshot {
            count: buckets.iter().sum(),
            buckets,
            sum: Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed)),
        }
    }
}

/// The calls of one typeid, per method of its table, plus one count for the rest.
#[derive(Debug)]
pub struct TypeCalls {
    typeid: String,
    /// The table these counts follow; `None` for a type that checks its own calls.
    methods: Option<&'static [MethodSpec]>,
    /// One per method of `methods`, then "other".
    per_method: Box<[MethodCalls]>,
}

/// The method label of calls not in their type's table.
pub const OTHER_METHOD: &str = "other";

impl TypeCalls {
    fn new(typeid: &str, methods: Option<&'static [MethodSpec]>) -> Self {
        let n = methods.map_or(0, <[_]>::len) + 1;
        TypeCalls {
            typeid: typeid.to_owned(),
            methods,
            per_method: (0..n).map(|_| MethodCalls::default()).collect(),
        }
    }

    pub fn typeid(&self) -> &str {
        &self.typeid
    }

    /// Each method's name and calls: the table's methods in order, then [`OTHER_METHOD`].
    pub fn methods(&self) -> impl Iterator<Item = (&'static str, &MethodCalls)> + '_ {
        let names = self.methods.unwrap_or_default().iter().map(|m| m.0);
        names
            .chain(std::iter::once(OTHER_METHOD))
            .zip(self.per_method.iter())
    }

    /// Where a call to method `index` of `table` is counted: its own slot if `table` is the
    /// one these counts follow, else "other".
    fn slot(&self, table: Option<&'static [MethodSpec]>, index: Option<usize>) -> usize {
        let other = self.per_method.len() - 1;
        match (self.methods, table, index) {
            (Some(mine), Some(theirs), Some(i)) if std::ptr::eq(mine, theirs) && i < other => i,
            _ => other,
        }
    }

    #[inline]
    fn record(&self, slot: usize, ns: u64) {
        if let Some(calls) = self.per_method.get(slot) {
            calls.record(ns);
        }
    }
}

/// Every typeid's calls on one node.
#[derive(Debug, Default)]
pub struct CallStats {
    types: RwLock<HashMap<String, Arc<TypeCalls>>>,
}

impl CallStats {
    /// The counts for `object`'s typeid, made on its first call. Typeids come from the
    /// registry, so this table stays small.
    fn for_object(&self, object: &dyn SharedObject) -> Arc<TypeCalls> {
        let typeid = object.typeid();
        if let Some(calls) = self.types.read().get(typeid) {
            return calls.clone();
        }
        self.types
            .write()
            .entry(typeid.to_owned())
            .or_insert_with(|| Arc::new(TypeCalls::new(typeid, object.methods())))
            .clone()
    }

    /// Every typeid called so far, sorted.
    pub fn types(&self) -> Vec<Arc<TypeCalls>> {
        let mut types: Vec<_> = self.types.read().values().cloned().collect();
        types.sort_by(|a, b| a.typeid.cmp(&b.typeid));
        types
    }
}

/// Objects whose counts a session keeps at hand.
const RECENT: usize = 8;

/// A session's way into [`CallStats`]: the counts of its recently called objects, so a
/// call finds its (typeid, method) without hashing or locking.
pub struct CallRecorder {
    stats: Arc<CallStats>,
    /// Direct-mapped by object id.
    recent: [Option<(ObjectId, Arc<TypeCalls>)>; RECENT],
}

impl CallRecorder {
    pub fn new(stats: Arc<CallStats>) -> Self {
        CallRecorder {
            stats,
            recent: Default::default(),
        }
    }

    #[inline]
    fn type_calls(&mut self, id: ObjectId, object: &dyn SharedObject) -> Option<&Arc<TypeCalls>> {
        let slot = &mut self.recent[(id % RECENT as u64) as usize];
        if !matches!(slot, Some((cached, _)) if *cached == id) {
            *slot = Some((id, self.stats.for_object(object)));
        }
        slot.as_ref().map(|(_, calls)| calls)
    }

    /// Counts a call answered at once: method `index` of `table`, the table of `object`
    /// (id `id`); `None` if it has none or the method is not in it.
    #[inline]
    pub fn record(
        &mut self,
        id: ObjectId,
        object: &dyn SharedObject,
        table: Option<&'static [MethodSpec]>,
        index: Option<usize>,
        started: CallStart,
    ) {
        if let Some(calls) = self.type_calls(id, object) {
            calls.record(calls.slot(table, index), started.elapsed());
        }
    }

    /// Starts timing a call that parked; it is counted when the timing is dropped.
    pub fn parked(
        &mut self,
        id: ObjectId,
        object: &dyn SharedObject,
        table: Option<&'static [MethodSpec]>,
        index: Option<usize>,
        started: CallStart,
    ) -> Option<ParkedTiming> {
        let calls = self.type_calls(id, object)?;
        Some(ParkedTiming {
            slot: calls.slot(table, index),
            calls: calls.clone(),
            started,
        })
    }
}

/// Times a parked call until it leaves its session, however it ends (answered, timed out,
/// cancelled, or withdrawn when the session ends): dropping it counts the call.
pub struct ParkedTiming {
    calls: Arc<TypeCalls>,
    slot: usize,
    started: CallStart,
}

impl Drop for ParkedTiming {
    fn drop(&mut self) {
        self.calls.record(self.slot, self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::object::{CallCtx, Outcome};
    use syncman_protocol::Args;

    struct Fake(&'static str, Option<&'static [MethodSpec]>);

    impl SharedObject for Fake {
        fn typeid(&self) -> &str {
            self.0
        }
        fn methods(&self) -> Option<&'static [MethodSpec]> {
            self.1
        }
        fn call(&self, _: &str, _: Args<'_>, _: &mut CallCtx) -> Outcome {
            Outcome::Ready(Err(syncman_protocol::RemoteError::runtime_error("unused")))
        }
    }

    const TABLE: &[MethodSpec] = &[("get", 0, 0), ("put", 1, 1)];
    const OTHER_TABLE: &[MethodSpec] = &[("x", 0, 0), ("y", 0, 0)];

    fn counts(stats: &CallStats, typeid: &str) -> Vec<(&'static str, u64)> {
        let types = stats.types();
        let calls = types.iter().find(|t| t.typeid() == typeid).expect(typeid);
        calls
            .methods()
            .map(|(name, m)| (name, m.snapshot().count))
            .collect()
    }

    #[test]
    fn calls_are_counted_by_typeid_and_method_and_timed_into_buckets() {
        let stats = Arc::new(CallStats::default());
        let mut recorder = CallRecorder::new(stats.clone());
        let queue = Fake("Queue", Some(TABLE));
        let custom = Fake("Custom", None);
        let started = CallStart::now();
        recorder.record(1, &queue, queue.1, Some(1), started);
        recorder.record(1, &queue, queue.1, Some(1), started);
        recorder.record(1, &queue, queue.1, None, started);
        // Ids 1 and 9 share a cache slot: each must still be counted under its own typeid.
        recorder.record(9, &custom, None, Some(0), started);
        recorder.record(1, &queue, queue.1, Some(0), started);
        assert_eq!(
            counts(&stats, "Queue"),
            [("get", 1), ("put", 2), (OTHER_METHOD, 1)]
        );
        assert_eq!(counts(&stats, "Custom"), [(OTHER_METHOD, 1)]);

        // A parked call is counted when its timing ends, with the time it waited.
        let seven_ms_ago = CallStart(CallStart::now().0 - 7_000_000);
        let parked = recorder
            .parked(1, &queue, queue.1, Some(0), seven_ms_ago)
            .expect("timed");
        assert_eq!(counts(&stats, "Queue")[0], ("get", 1), "counted at its end");
        drop(parked);
        let types = stats.types();
        let get = types[1].methods().next().expect("get").1.snapshot();
        assert_eq!(get.count, 2);
        assert!(get.sum >= Duration::from_millis(7), "{get:?}");
        let bucket = LATENCY_BOUNDS_NS
            .iter()
            .position(|&b| b >= 7_000_000)
            .expect("a bucket");
        assert_eq!(get.buckets[..bucket].iter().sum::<u64>(), 1, "{get:?}");
        assert_eq!(get.buckets[bucket..].iter().sum::<u64>(), 1, "{get:?}");
    }

    #[test]
    fn an_index_from_another_table_counts_as_other() {
        let stats = Arc::new(CallStats::default());
        let mut recorder = CallRecorder::new(stats.clone());
        let now = CallStart::now();
        recorder.record(1, &Fake("T", Some(TABLE)), Some(TABLE), Some(0), now);
        // Same typeid, another table (an embedder's factory that returns two types).
        recorder.record(2, &Fake("T", None), Some(OTHER_TABLE), Some(1), now);
        recorder.record(3, &Fake("T", Some(TABLE)), Some(TABLE), Some(7), now);
        assert_eq!(
            counts(&stats, "T"),
            [("get", 1), ("put", 0), (OTHER_METHOD, 2)]
        );
    }

    #[test]
    fn latencies_past_the_last_bound_land_in_the_infinite_bucket() {
        let calls = MethodCalls::default();
        calls.record(3_600_000_000_000);
        calls.record(0);
        let snap = calls.snapshot();
        assert_eq!(snap.buckets[0], 1);
        assert_eq!(snap.buckets[BUCKETS - 1], 1);
        assert_eq!(snap.count, 2);
        assert_eq!(snap.sum, Duration::from_secs(3600));
    }
}

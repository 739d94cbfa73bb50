//! Encodes the node's metrics for Prometheus with `prometheus-client`: the counts the
//! session core and the network layer keep, and what the node's tables hold, read at each
//! scrape (objects and waiters by typeid, bytes held) rather than kept up to date on every
//! call.

use std::fmt::Error;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::stats::{Dialect, HandshakeFailure, NetStats, SessionEnd};
use crate::node::backend::{Backend, TypeCensus};
use crate::node::metrics::{CallStats, LATENCY_BOUNDS_NS};
use crate::node::Node;

/// What the exporter reads from a node, whatever its backend.
pub(super) trait NodeView: Send + Sync + 'static {
    fn calls(&self) -> Option<&CallStats>;
    fn census(&self) -> Option<Vec<TypeCensus>>;
    fn bytes_held(&self) -> Option<(usize, usize)>;
}

impl<B: Backend> NodeView for Node<B> {
    fn calls(&self) -> Option<&CallStats> {
        self.calls.as_deref()
    }

    fn census(&self) -> Option<Vec<TypeCensus>> {
        self.backend.census()
    }

    fn bytes_held(&self) -> Option<(usize, usize)> {
        self.backend.bytes_held()
    }
}

/// The node's metrics as one `prometheus-client` collector.
pub(super) struct NodeCollector {
    pub node: Arc<dyn NodeView>,
    pub net: Arc<NetStats>,
}

impl std::fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCollector").finish_non_exhaustive()
    }
}

const CALLS_HELP: &str = "Method calls on objects that ran to an answer, by typeid and method \
    (methods outside the type's table count as \"other\"; the node's own calls such as create \
    are not counted). A call that waits is counted when it ends.";
const DURATION_HELP: &str = "Time from the node starting a method call to its answer being \
    ready, waiting included (a queue get waiting for an item, an acquire waiting for its \
    lock), by typeid and method; the network and the reply's encoding are not included.";
const SESSIONS_HELP: &str =
    "Sessions open now, by dialect: native (MessagePack clients) or pickle (CPython proxies).";
const HANDSHAKING_HELP: &str = "Connections accepted that have not authenticated yet.";
const HANDSHAKE_FAILURES_HELP: &str = "Connections that did not get past the handshake, by \
    reason: wrong_key, timeout, refused (turned away before the handshake, its address in a \
    penalty for wrong keys included, or a legacy MD5 answer under --require-sha256), closed \
    (by the peer), tls (the TLS handshake failed), other.";
const SESSIONS_ENDED_HELP: &str = "Sessions ended, by reason: client_closed, \
    heartbeat_expired, shutdown, backend_lost, error (a socket error or a protocol \
    violation).";
const OBJECTS_HELP: &str = "Objects in the node now, by typeid (counted at scrape time).";
const WAITERS_HELP: &str = "Calls parked on objects now, by the object's typeid (counted at \
    scrape time).";
const BYTES_HELP: &str = "Bytes the objects hold now: the encoded size of their keys, \
    values and items, parked puts' items included.";
const BYTES_LIMIT_HELP: &str = "Bytes the objects may hold at most (--max-bytes).";
const REPLIES_HELP: &str = "Replies to native clients not yet fully written to their \
    sockets, all sessions together.";
const REPLY_BYTES_HELP: &str = "Bytes of the replies to native clients not yet written.";

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), Error> {
        if let Some(calls) = self.node.calls() {
            encode_calls(calls, &mut encoder)?;
        }
        let net = &self.net;
        // Ended before open: a session that stops between the two reads is missing from
        // both figures of this scrape, never in both (see `NetStats::sessions`).
        let ended = SessionEnd::ALL.map(|w| (w.label(), net.sessions_ended(w)));
        let sessions = Dialect::ALL.map(|d| (d.label(), net.sessions(d)));
        gauges(
            &mut encoder,
            "sessions",
            SESSIONS_HELP,
            "dialect",
            &sessions,
        )?;
        let handshaking = encoder.encode_descriptor(
            "connections_handshaking",
            HANDSHAKING_HELP,
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(net.handshaking()).encode(handshaking)?;
        let failures = HandshakeFailure::ALL.map(|w| (w.label(), net.handshake_failures(w)));
        counters(
            &mut encoder,
            "handshake_failures",
            HANDSHAKE_FAILURES_HELP,
            "reason",
            &failures,
        )?;
        counters(
            &mut encoder,
            "sessions_ended",
            SESSIONS_ENDED_HELP,
            "reason",
            &ended,
        )?;
        if let Some(census) = self.node.census() {
            let objects: Vec<_> = census.iter().map(|c| (&*c.typeid, c.objects)).collect();
            gauges(&mut encoder, "objects", OBJECTS_HELP, "typeid", &objects)?;
            let waiters: Vec<_> = census.iter().map(|c| (&*c.typeid, c.waiters)).collect();
            gauges(&mut encoder, "waiters", WAITERS_HELP, "typeid", &waiters)?;
        }
        if let Some((bytes, limit)) = self.node.bytes_held() {
            gauge(&mut encoder, "object_bytes", BYTES_HELP, bytes as u64)?;
            gauge(
                &mut encoder,
                "object_bytes_limit",
                BYTES_LIMIT_HELP,
                limit as u64,
            )?;
        }
        let (replies, reply_bytes) = net.replies_queued();
        gauge(&mut encoder, "replies_queued", REPLIES_HELP, replies as u64)?;
        gauge(
            &mut encoder,
            "reply_bytes_queued",
            REPLY_BYTES_HELP,
            reply_bytes as u64,
        )
    }
}

/// `calls_total` and `call_duration_seconds`, for every method called at least once.
fn encode_calls(calls: &CallStats, encoder: &mut DescriptorEncoder) -> Result<(), Error> {
    let types = calls.types();
    let called = || {
        types.iter().flat_map(|t| {
            t.methods()
                .map(move |(method, calls)| (t.typeid(), method, calls.snapshot()))
                .filter(|(_, _, snapshot)| snapshot.count > 0)
        })
    };
    let mut family = encoder.encode_descriptor("calls", CALLS_HELP, None, MetricType::Counter)?;
    for (typeid, method, snapshot) in called() {
        let labels = [("typeid", typeid), ("method", method)];
        ConstCounter::new(snapshot.count).encode(family.encode_family(&labels)?)?;
    }
    let bounds = LATENCY_BOUNDS_NS
        .iter()
        .map(|&ns| ns as f64 / 1e9)
        .chain(std::iter::once(f64::INFINITY));
    let mut family = encoder.encode_descriptor(
        "call_duration_seconds",
        DURATION_HELP,
        None,
        MetricType::Histogram,
    )?;
    for (typeid, method, snapshot) in called() {
        let labels = [("typeid", typeid), ("method", method)];
        let buckets: Vec<(f64, u64)> = bounds.clone().zip(snapshot.buckets).collect();
        family
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(
                snapshot.sum.as_secs_f64(),
                snapshot.count,
                &buckets,
                None,
            )?;
    }
    Ok(())
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), Error> {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(metric)
}

/// A gauge with one label, one series per value.
fn gauges<V: prometheus_client::encoding::EncodeGaugeValue + Copy>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, V)],
) -> Result<(), Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for &(value, n) in values {
        ConstGauge::new(n).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

/// A counter with one label, one series per value.
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for &(value, n) in values {
        ConstCounter::new(n).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

//! The node's metrics for Prometheus (`docs/operations/metrics.md`).
//!
//! # Layout
//! - `stats`: what the network layer counts (handshakes, sessions, reply queues), once per
//!   connection or session.
//! - `export`: the encoding, with `prometheus-client`: those counts, the session core's
//!   call counts and latencies (`node/metrics.rs`), and the node's tables read at scrape time.
//! - `http`: `GET /metrics` over HTTP/1.1 (hyper).
//!
//! A node collects only when [`Config::collect_metrics`](crate::Config::collect_metrics) is
//! set; then [`Server::metrics`](crate::Server::metrics) hands out a [`Metrics`].

mod export;
mod http;
mod stats;

use std::sync::Arc;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::node::backend::Backend;
use crate::node::Node;
use export::NodeCollector;
pub(crate) use stats::{
    ConnectionMetrics, Dialect, HandshakeFailure, NetMetrics, QueueProbe, SessionEnd,
};

/// The prefix of every metric's name.
const PREFIX: &str = "syncman";

/// A node's metrics: encode them, add them to a registry of your own, or serve them.
/// Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    shared: Arc<Shared>,
}

struct Shared {
    collector: Arc<NodeCollector>,
    /// Holds the collector under [`PREFIX`].
    registry: Registry,
    net: NetMetrics,
    shutdown: CancellationToken,
}

impl Metrics {
    pub(crate) fn new<B: Backend>(node: Arc<Node<B>>) -> Metrics {
        let net = Arc::new(stats::NetStats::default());
        let shutdown = node.shutdown.clone();
        let collector = Arc::new(NodeCollector {
            node,
            net: net.clone(),
        });
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register_collector(Box::new(collector.clone()));
        Metrics {
            shared: Arc::new(Shared {
                collector,
                registry,
                net: NetMetrics::new(net),
                shutdown,
            }),
        }
    }

    /// Where the network layer records.
    pub(crate) fn net(&self) -> &NetMetrics {
        &self.shared.net
    }

    /// The metrics in Prometheus's text format (version 0.0.4).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.shared.registry)?;
        Ok(text)
    }

    /// The `Content-Type` of [`Metrics::encode`]'s text.
    pub const CONTENT_TYPE: &'static str = prometheus_text::CONTENT_TYPE;

    /// Adds the node's metrics (named `syncman_*`) to `registry`, to be served beside an
    /// embedding program's own.
    pub fn register(&self, registry: &mut Registry) {
        registry
            .sub_registry_with_prefix(PREFIX)
            .register_collector(Box::new(self.shared.collector.clone()));
    }

    /// Serves `GET /metrics` on `listener` until the node shuts down. Requests are bounded
    /// in size and time; anything else gets 404 or 405.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let shutdown = self.shared.shutdown.clone();
        http::serve(listener, self, shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;
    use crate::Server;

    #[test]
    fn the_node_metrics_join_an_embedders_registry() {
        let server = Server::builder(b"k".to_vec()).metrics().build().unwrap();
        let metrics = server.metrics().expect("collecting");
        let mut registry = Registry::default();
        let mine: Counter = Counter::default();
        mine.inc();
        registry.register("my_requests", "Mine", mine);
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "my_requests_total 1",
            "syncman_sessions{dialect=\"native\"} 0",
            "syncman_objects{typeid=\"dict\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn a_node_that_does_not_collect_has_no_metrics() {
        let server = Server::builder(b"k".to_vec()).build().unwrap();
        assert!(server.metrics().is_none());
    }
}

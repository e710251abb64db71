//! The engine's counters in the Prometheus text format (OpenMetrics), for the
//! admin listener's `/metrics`. The counters live in the engine
//! ([`palaver_core::Stats`]); a collector reads one snapshot per scrape, so
//! nothing is counted twice and an idle server does no metrics work.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::status::Status;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry the admin listener renders.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Metrics of the engine behind `status`, every name starting with `palaver_`.
    pub fn new(status: Arc<Status>) -> Self {
        let mut registry = Registry::with_prefix("palaver");
        registry.register_collector(Box::new(EngineCollector(status)));
        Self { registry }
    }

    /// The text a scrape gets.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

struct EngineCollector(Arc<Status>);

impl std::fmt::Debug for EngineCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineCollector")
    }
}

/// Writes one counter (its name gets `_total`).
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// Writes one gauge.
fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let Some(stats) = self.0.stats() else {
            return Ok(());
        };
        let e = &mut encoder;
        gauge(
            e,
            "connections",
            "Socket.IO connections open now.",
            stats.connections,
        )?;
        counter(
            e,
            "connections_accepted",
            "Socket.IO connections accepted.",
            stats.connections_total,
        )?;
        counter(
            e,
            "connections_refused",
            "Connections refused at connect and Engine.IO handshakes refused for the per-address session limit.",
            stats.connections_refused,
        )?;
        gauge(
            e,
            "sessions",
            "Engine.IO sessions open now, connected to a namespace or not.",
            stats.sessions,
        )?;
        gauge(e, "sockets", "TCP connections open now.", stats.sockets)?;
        counter(
            e,
            "sockets_refused",
            "TCP connections closed at accept for limits.max_sockets_per_ip or limits.max_sockets.",
            stats.sockets_refused,
        )?;
        gauge(
            e,
            "users_online",
            "Distinct users online now.",
            stats.users_online,
        )?;
        gauge(
            e,
            "rooms",
            "Rooms with at least one member now.",
            stats.rooms,
        )?;
        counter(
            e,
            "messages",
            "Room messages stored and delivered.",
            stats.messages,
        )?;
        counter(
            e,
            "private_messages",
            "Private messages delivered.",
            stats.private_messages,
        )?;
        counter(
            e,
            "requests_rejected",
            "Client requests refused with an error code.",
            stats.requests_rejected,
        )?;
        counter(
            e,
            "packets_dropped",
            "Packets not delivered because their client read too slowly.",
            stats.packets_dropped,
        )?;
        counter(
            e,
            "events_dropped",
            "Host events dropped because the host fell behind.",
            stats.events_dropped,
        )?;
        gauge(
            e,
            "events_queued",
            "Events queued for the host callback now.",
            stats.events_queued,
        )?;
        gauge(
            e,
            "events_queued_bytes",
            "Bytes of events queued for the host callback now.",
            stats.events_queued_bytes,
        )?;
        gauge(
            e,
            "commands_queued_bytes",
            "Bytes of host commands not yet applied.",
            stats.commands_queued_bytes,
        )?;
        gauge(
            e,
            "pending_host_acks",
            "Acknowledgements of client events waiting for the host now.",
            stats.pending_host_acks,
        )?;
        gauge(
            e,
            "pending_gates",
            "Connections waiting at a connect gate now.",
            stats.pending_gates,
        )?;
        gauge(
            e,
            "uptime_seconds",
            "Seconds since the engine started.",
            stats.uptime_ms / 1000,
        )?;
        let refusals = ConstCounter::new(0u64);
        let mut family = e.encode_descriptor(
            "refusals",
            "Refused requests and connections by error code (only codes seen so far).",
            None,
            refusals.metric_type(),
        )?;
        for (code, count) in &stats.refusals {
            let labels = [("code", code.as_str())];
            ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
        }
        if let Some(cluster) = &stats.cluster {
            gauge(
                e,
                "cluster_redis_connected",
                "1 while Redis answers, 0 during an outage.",
                u64::from(cluster.redis_connected),
            )?;
            counter(
                e,
                "cluster_redis_outages",
                "Redis outages seen.",
                cluster.redis_outages,
            )?;
            gauge(
                e,
                "cluster_journal_pending",
                "Messages accepted during an outage and not yet written to Redis.",
                cluster.journal_pending,
            )?;
            counter(
                e,
                "cluster_pubsub_dropped",
                "Messages between nodes dropped because a subscription's buffer was full.",
                cluster.pubsub_dropped,
            )?;
            gauge(
                e,
                "cluster_nodes_alive",
                "Nodes with a recent heartbeat (0 when unknown).",
                cluster.nodes_alive,
            )?;
        }
        Ok(())
    }
}

//! Prometheus metrics of a running host: per-plugin calls, errors and latency, capability
//! denials (counted from the audit stream), compiled-artifact cache hits, and, at scrape
//! time, calls in flight and pooling-allocator usage.

use crate::audit::{AuditEvent, AuditKind, AuditQuery, AuditSink};
use crate::capability::CapabilityId;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    plugin: String,
    /// The stable error code, e.g. `timeout`, `trap`, `busy`.
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabels {
    plugin: String,
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcomeLabels {
    plugin: String,
    tool: String,
    /// `ok`, `tool-error`, `invalid-arguments`, `busy`, `timeout`, …
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    plugin: String,
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    plugin: String,
    job: String,
    /// `succeeded`, `failed`, `cancelled`, `timed-out`, `abandoned`.
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    plugin: String,
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    /// The subscriber.
    plugin: String,
    topic: String,
    /// `delivered`, `retried` or `dead_lettered`.
    outcome: String,
}

/// Distinct topics labelled in event metrics; later ones count under [`OTHER_TOPICS`], so
/// plugins publishing on ever new topics cannot grow the scrape without bound.
const MAX_TOPIC_LABELS: usize = 500;
const OTHER_TOPICS: &str = "_other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabels {
    plugin: String,
    capability: String,
}

/// Latency buckets in seconds: 100 µs to 10 s.
const LATENCY_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.0, 10.0,
];

/// Lag buckets in seconds (event delivery starts after publish): 1 ms to 5 min, since a
/// backlog makes lag seconds or minutes where a call takes milliseconds.
const LAG_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Every metric the host exports, registered once.
pub struct Metrics {
    registry: prometheus_client::registry::Registry,
    calls: Family<PluginLabel, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: Family<PluginLabel, Histogram>,
    denials: Family<DenialLabels, Counter>,
    in_flight: Family<PluginLabel, Gauge>,
    mcp_calls: Family<ToolOutcomeLabels, Counter>,
    mcp_latency: Family<ToolLabels, Histogram>,
    runs: Family<RunLabels, Counter>,
    run_duration: Family<JobLabels, Histogram>,
    job_lag: Histogram,
    published: Family<TopicLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    delivery_lag: Histogram,
    topics: std::sync::Mutex<std::collections::HashSet<String>>,
    /// `tools/list_changed` notifications sent.
    pub mcp_notifications: Counter,
    /// Changes of the plugin set fully checked for clients to notify.
    pub mcp_announcements: Counter,
    pool_instances: Gauge,
    pool_capacity: Gauge,
}

impl Metrics {
    /// Metrics including the compiled-artifact cache's `stats`.
    pub fn new(cache: &crate::runtime::CacheStats) -> Metrics {
        let calls = Family::default();
        let errors = Family::default();
        let latency = Family::<PluginLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        let denials = Family::default();
        let in_flight = Family::default();
        let mcp_calls = Family::default();
        let mcp_latency = Family::<ToolLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        let runs = Family::default();
        let run_duration = Family::<JobLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(LATENCY_BUCKETS)) as fn() -> Histogram,
        );
        let job_lag = Histogram::new(LATENCY_BUCKETS);
        let published = Family::default();
        let deliveries = Family::default();
        let delivery_lag = Histogram::new(LAG_BUCKETS);
        let mcp_notifications = Counter::default();
        let mcp_announcements = Counter::default();
        let pool_instances = Gauge::default();
        let pool_capacity = Gauge::default();
        let mut registry = prometheus_client::registry::Registry::with_prefix("capstan");
        registry.register(
            "plugin_calls",
            "Calls of plugin handlers (routes), by plugin",
            calls.clone(),
        );
        registry.register(
            "plugin_errors",
            "Calls that failed or were turned away, by plugin and error code",
            errors.clone(),
        );
        registry.register(
            "plugin_call_duration_seconds",
            "Wall time of plugin calls, including instantiation",
            latency.clone(),
        );
        registry.register(
            "capability_denials",
            "Calls to capabilities a plugin imports but was not granted",
            denials.clone(),
        );
        registry.register(
            "plugin_calls_in_flight",
            "Calls running now, by plugin",
            in_flight.clone(),
        );
        registry.register(
            "mcp_calls",
            "MCP tool calls, by plugin, tool and outcome",
            mcp_calls.clone(),
        );
        registry.register(
            "mcp_call_duration_seconds",
            "Wall time of MCP tool calls, from the request to the result",
            mcp_latency.clone(),
        );
        registry.register(
            "job_runs",
            "Job runs that ended, by plugin, job and final state",
            runs.clone(),
        );
        registry.register(
            "job_run_duration_seconds",
            "Wall time of job runs",
            run_duration.clone(),
        );
        registry.register(
            "job_scheduler_lag_seconds",
            "How late scheduled runs started: start time minus the tick they are for",
            job_lag.clone(),
        );
        registry.register(
            "events_published",
            "Events published, by publishing plugin (`capstan` for the host) and topic",
            published.clone(),
        );
        registry.register(
            "event_deliveries",
            "Event deliveries made, by subscriber, topic and outcome",
            deliveries.clone(),
        );
        registry.register(
            "event_delivery_lag_seconds",
            "Time from an event's publication to the start of each delivery of it",
            delivery_lag.clone(),
        );
        registry.register(
            "mcp_list_changed",
            "notifications/tools/list_changed sent to MCP clients whose tool list changed",
            mcp_notifications.clone(),
        );
        registry.register(
            "mcp_announcements",
            "Changes of the plugin set checked for MCP clients to notify",
            mcp_announcements.clone(),
        );
        registry.register(
            "pool_component_instances",
            "Component instances allocated from the pooling allocator",
            pool_instances.clone(),
        );
        registry.register(
            "pool_component_instances_capacity",
            "Component instances the pooling allocator can hold",
            pool_capacity.clone(),
        );
        registry.register(
            "artifact_cache_hits",
            "Components loaded from the compiled-artifact cache",
            cache.hits.clone(),
        );
        registry.register(
            "artifact_cache_misses",
            "Components compiled because the cache had no valid entry",
            cache.misses.clone(),
        );
        Metrics {
            registry,
            calls,
            errors,
            latency,
            denials,
            in_flight,
            mcp_calls,
            mcp_latency,
            runs,
            run_duration,
            job_lag,
            published,
            deliveries,
            delivery_lag,
            topics: std::sync::Mutex::new(std::collections::HashSet::new()),
            mcp_notifications,
            mcp_announcements,
            pool_instances,
            pool_capacity,
        }
    }

    /// Count a run of `plugin`'s `job` that ended in `state`.
    pub fn observe_run(&self, plugin: &str, job: &str, state: crate::capability::jobs::RunState) {
        self.runs
            .get_or_create(&RunLabels {
                plugin: plugin.to_string(),
                job: job.to_string(),
                state: state.as_str().to_string(),
            })
            .inc();
    }

    /// Record how long a run of `plugin`'s `job` took.
    pub fn observe_run_duration(&self, plugin: &str, job: &str, elapsed: Duration) {
        self.run_duration
            .get_or_create(&JobLabels {
                plugin: plugin.to_string(),
                job: job.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// `topic`, or [`OTHER_TOPICS`] once [`MAX_TOPIC_LABELS`] others have been seen.
    fn topic_label(&self, topic: &str) -> String {
        let mut seen = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(topic) || (seen.len() < MAX_TOPIC_LABELS && seen.insert(topic.into())) {
            topic.to_string()
        } else {
            OTHER_TOPICS.to_string()
        }
    }

    /// Count an event `plugin` published on `topic`.
    pub fn observe_published(&self, plugin: &str, topic: &str) {
        self.published
            .get_or_create(&TopicLabels {
                plugin: plugin.to_string(),
                topic: self.topic_label(topic),
            })
            .inc();
    }

    /// Count a delivery to `plugin` of an event on `topic` that ended with `outcome`.
    pub fn observe_delivery(&self, plugin: &str, topic: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                plugin: plugin.to_string(),
                topic: self.topic_label(topic),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Record how long after its publication a delivery started.
    pub fn observe_delivery_lag(&self, lag: Duration) {
        self.delivery_lag.observe(lag.as_secs_f64());
    }

    /// Record how late a scheduled run started.
    pub fn observe_job_lag(&self, lag: Duration) {
        self.job_lag.observe(lag.as_secs_f64());
    }

    /// Record one MCP call of `tool` of `plugin` that ended with `outcome` after `elapsed`.
    pub fn observe_tool_call(&self, plugin: &str, tool: &str, outcome: &str, elapsed: Duration) {
        self.mcp_calls
            .get_or_create(&ToolOutcomeLabels {
                plugin: plugin.to_string(),
                tool: tool.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.mcp_latency
            .get_or_create(&ToolLabels {
                plugin: plugin.to_string(),
                tool: tool.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Record one call of `plugin` that took `elapsed`; `error` is its error code, if any.
    pub fn observe_call(&self, plugin: &str, elapsed: Duration, error: Option<&str>) {
        let label = PluginLabel {
            plugin: plugin.to_string(),
        };
        self.calls.get_or_create(&label).inc();
        self.latency
            .get_or_create(&label)
            .observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.observe_error(plugin, error);
        }
    }

    /// Record a call of `plugin` turned away or failed with error code `error`.
    pub fn observe_error(&self, plugin: &str, error: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                plugin: plugin.to_string(),
                error: error.to_string(),
            })
            .inc();
    }

    /// The text exposition, after setting the scrape-time gauges: calls in flight per
    /// plugin and pool usage (`None` when the engine does not pool).
    pub fn render(&self, in_flight: &[(String, u32)], pool: Option<(u64, u64)>) -> String {
        self.in_flight.clear();
        for (plugin, calls) in in_flight {
            self.in_flight
                .get_or_create(&PluginLabel {
                    plugin: plugin.clone(),
                })
                .set(i64::from(*calls));
        }
        if let Some((used, capacity)) = pool {
            self.pool_instances.set(used as i64);
            self.pool_capacity.set(capacity as i64);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// An audit sink that counts denials before passing every record on.
pub struct CountingAudit {
    inner: Arc<dyn AuditSink>,
    metrics: Arc<Metrics>,
}

impl CountingAudit {
    pub fn new(inner: Arc<dyn AuditSink>, metrics: Arc<Metrics>) -> Self {
        CountingAudit { inner, metrics }
    }
}

impl AuditSink for CountingAudit {
    fn record(&self, event: AuditEvent) {
        if event.kind == AuditKind::Denied {
            self.metrics
                .denials
                .get_or_create(&DenialLabels {
                    plugin: event.plugin.clone(),
                    capability: event.capability.map_or("-", CapabilityId::name).to_string(),
                })
                .inc();
        }
        self.inner.record(event);
    }

    fn query(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, crate::storage::StoreError> {
        self.inner.query(query)
    }

    fn plugins(&self) -> Result<Vec<String>, crate::storage::StoreError> {
        self.inner.plugins()
    }

    fn prune(
        &self,
        plugin: &str,
        keep: crate::retention::Retention,
        pass: &crate::retention::Pass,
    ) -> Result<u64, crate::storage::StoreError> {
        self.inner.prune(plugin, keep, pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_errors_and_denials_appear_in_the_exposition() {
        let metrics = Arc::new(Metrics::new(&Default::default()));
        metrics.observe_call("hello", Duration::from_millis(3), None);
        metrics.observe_call("hello", Duration::from_millis(700), Some("timeout"));
        let audit = CountingAudit::new(
            Arc::new(crate::audit::MemoryAudit::default()),
            metrics.clone(),
        );
        audit.record(AuditEvent::new(
            "snoop",
            AuditKind::Denied,
            Some(CapabilityId::Kv),
            "no".into(),
        ));
        audit.record(AuditEvent::new(
            "snoop",
            AuditKind::Installed,
            None,
            "v1".into(),
        ));
        metrics.observe_tool_call("tools", "add", "ok", Duration::from_millis(2));
        let text = metrics.render(&[("hello".into(), 2)], Some((3, 256)));
        for line in [
            r#"capstan_plugin_calls_total{plugin="hello"} 2"#,
            r#"capstan_plugin_errors_total{plugin="hello",error="timeout"} 1"#,
            r#"capstan_capability_denials_total{plugin="snoop",capability="storage.kv"} 1"#,
            r#"capstan_plugin_call_duration_seconds_bucket{le="0.005",plugin="hello"} 1"#,
            r#"capstan_plugin_calls_in_flight{plugin="hello"} 2"#,
            "capstan_pool_component_instances 3",
            "capstan_pool_component_instances_capacity 256",
            r#"capstan_mcp_calls_total{plugin="tools",tool="add",outcome="ok"} 1"#,
            r#"capstan_mcp_call_duration_seconds_count{plugin="tools",tool="add"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}

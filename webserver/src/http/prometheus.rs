//! `/metrics`: what the webserver and its detectors report, in the
//! OpenMetrics text format that Prometheus scrapes, written by
//! `prometheus-client`.
//!
//! The numbers already live elsewhere (atomics, the fan-out's counts, the
//! detectors' heartbeats), so nothing here is a live metric object: each
//! scrape takes a [`Scrape`] of them and a `Collector` encodes it. The
//! conventions: every name starts `lookout_` except the standard
//! `process_*` ones; base units in the name (`_seconds`, `_bytes`);
//! counters end `_total`; times are histograms (fixed buckets, see
//! `shared::stats::BUCKET_BOUNDS_SECONDS`), never quantiles baked into a
//! name; a HELP and TYPE line for each family.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use shared::stats::Histogram;
use shared::wire::CameraStatus;

use super::system::MetricsReport;
use crate::state::AppState;
use crate::stream::bridge::LinkStatus;
use crate::stream::cluster::ClusterStatus;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything one scrape reports, copied out of the live state.
#[derive(Debug)]
struct Scrape {
    report: MetricsReport,
    links: Vec<LinkStatus>,
    cluster: Option<ClusterStatus>,
    broadcast_latency: Histogram,
    process: Option<crate::metrics::ProcessSample>,
    started_unix_seconds: f64,
    max_fds: Option<u64>,
}

/// The whole `/metrics` body.
pub fn render(state: &AppState, report: MetricsReport) -> String {
    let scrape = Scrape {
        report,
        links: state.links.statuses(),
        cluster: state.cluster.as_ref().map(|c| c.status()),
        broadcast_latency: state.metrics.broadcast_latency_histogram(),
        process: crate::metrics::process_sample(),
        started_unix_seconds: state.metrics.started_unix_seconds(),
        max_fds: crate::metrics::max_open_files(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        // Writing into a String cannot fail; a collector bug would.
        tracing::error!(error = %e, "cannot encode metrics");
    }
    out
}

/// A label value as the text format needs it. `prometheus-client` writes
/// label values verbatim, and socket paths (a flag) or names from a
/// detector's heartbeat may hold a quote, a backslash or a newline.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Writes one family's HELP and TYPE lines, then its samples.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    samples: impl FnOnce(MetricEncoder) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    samples(encoder.encode_descriptor(name, help, unit, kind)?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    family(encoder, name, help, None, MetricType::Counter, |m| ConstCounter::new(value).encode(m))
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    family(encoder, name, help, unit, MetricType::Gauge, |m| ConstGauge::new(value).encode(m))
}

/// One histogram sample set; counts that do not fit the bounds (a
/// detector of another build) are left out rather than misreported.
fn histogram(m: &mut MetricEncoder, labels: &[(&'static str, String)], h: &Histogram) -> Result<(), std::fmt::Error> {
    let Some(buckets) = h.cumulative() else { return Ok(()) };
    // `encode_histogram` takes per-bucket counts and accumulates them itself.
    let mut below = 0;
    let per_bucket: Vec<(f64, u64)> = buckets
        .iter()
        .map(|&(bound, cumulative)| {
            let n = cumulative - below;
            below = cumulative;
            (bound, n)
        })
        .collect();
    if labels.is_empty() {
        m.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count(), &per_bucket, None)
    } else {
        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count(), &per_bucket, None)
    }
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_webserver(&mut e)?;
        self.encode_storage(&mut e)?;
        self.encode_outputs(&mut e)?;
        self.encode_cluster(&mut e)?;
        self.encode_detectors(&mut e)?;
        self.encode_process(&mut e)
    }
}

impl Scrape {
    fn encode_webserver(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = &self.report;
        let c = &r.websocket.connections;
        let seconds = Some(&Unit::Seconds);
        gauge(e, "lookout_uptime", "Time since the webserver started.", seconds, r.uptime_seconds)?;
        gauge(e, "lookout_websocket_clients", "WebSocket clients connected now.", None, c.current as f64)?;
        gauge(e, "lookout_websocket_clients_peak", "Most WebSocket clients at once.", None, c.peak as f64)?;
        gauge(
            e,
            "lookout_websocket_clients_limit",
            "WebSocket clients this process can hold (open-file limit).",
            None,
            r.websocket.max_clients as f64,
        )?;
        counter(e, "lookout_websocket_connections_accepted", "WebSocket clients accepted.", c.total)?;
        family(
            e,
            "lookout_websocket_closed",
            "WebSocket clients closed by the server, by reason.",
            None,
            MetricType::Counter,
            |mut m| {
                for (reason, n) in
                    [("slow_consumer", c.slow_consumer_closes), ("heartbeat_timeout", c.heartbeat_timeouts)]
                {
                    ConstCounter::new(n).encode(m.encode_family(&[("reason", reason)])?)?;
                }
                Ok(())
            },
        )?;
        counter(e, "lookout_websocket_refused", "WebSocket upgrades refused at the client limit.", c.refused_full)?;
        counter(
            e,
            "lookout_websocket_messages_sent",
            "Messages written to WebSocket clients.",
            r.websocket.messages_sent,
        )?;
        family(
            e,
            "lookout_http_connections_refused",
            "HTTP connections refused by the per-address or the global cap.",
            None,
            MetricType::Counter,
            |mut m| {
                for (reason, n) in [("per_address", r.http.refused_per_address), ("full", r.http.refused_full)] {
                    ConstCounter::new(n).encode(m.encode_family(&[("reason", reason)])?)?;
                }
                Ok(())
            },
        )?;
        counter(e, "lookout_http_accept_errors", "Failed accept calls.", r.http.accept_errors)?;
        counter(e, "lookout_events_broadcast", "Events broadcast to WebSocket clients.", r.events.broadcast)?;
        counter(
            e,
            "lookout_events_rejected_announcements",
            "Detector announcements the database contradicted; never broadcast.",
            r.events.rejected_announcements,
        )?;
        family(
            e,
            "lookout_broadcast_latency",
            "From an event's commit to its hand-off to every client.",
            seconds,
            MetricType::Histogram,
            |mut m| histogram(&mut m, &[], &self.broadcast_latency),
        )
    }

    fn encode_detectors(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let seconds = Some(&Unit::Seconds);
        let socket = |l: &LinkStatus| vec![("socket", label_value(&l.socket))];
        let per_link = |e: &mut DescriptorEncoder,
                        name: &str,
                        help: &str,
                        kind: MetricType,
                        value: &dyn Fn(&LinkStatus) -> f64|
         -> Result<(), std::fmt::Error> {
            family(e, name, help, None, kind, |mut m| {
                for link in &self.links {
                    let labels = socket(link);
                    let v = value(link);
                    match kind {
                        MetricType::Counter => ConstCounter::new(v as u64).encode(m.encode_family(&labels)?)?,
                        _ => ConstGauge::new(v).encode(m.encode_family(&labels)?)?,
                    }
                }
                Ok(())
            })
        };
        per_link(e, "lookout_detector_connected", "1 when the detector link is up.", MetricType::Gauge, &|l| {
            f64::from(u8::from(l.connected))
        })?;
        let stat = |l: &LinkStatus, f: fn(&shared::wire::DetectorStats) -> u64| l.stats.as_ref().map_or(0, f) as f64;
        per_link(e, "lookout_detector_frames_processed", "Frames the detector examined.", MetricType::Counter, &|l| {
            stat(l, |s| s.frames_processed)
        })?;
        per_link(e, "lookout_detector_events_created", "Events the detector committed.", MetricType::Counter, &|l| {
            stat(l, |s| s.events_created)
        })?;
        per_link(
            e,
            "lookout_detector_active_events",
            "Events announced and not yet ended.",
            MetricType::Gauge,
            &|l| stat(l, |s| s.active_events),
        )?;
        for (name, help, pick) in [
            (
                "lookout_detector_inference",
                "Time to analyse one frame.",
                (|s| &s.inference_seconds) as fn(&shared::wire::DetectorStats) -> &Histogram,
            ),
            ("lookout_detector_commit", "Time to commit one change durably (fsync included).", |s| &s.commit_seconds),
            ("lookout_detector_announce", "From an event's first motion frame to its new change committed.", |s| {
                &s.announce_seconds
            }),
        ] {
            family(e, name, help, seconds, MetricType::Histogram, |mut m| {
                for link in &self.links {
                    if let Some(stats) = &link.stats {
                        histogram(&mut m, &socket(link), pick(stats))?;
                    }
                }
                Ok(())
            })?;
        }

        let cameras: Vec<(Vec<(&'static str, String)>, &CameraStatus)> = self
            .links
            .iter()
            .flat_map(|l| l.stats.iter().flat_map(|s| s.cameras.iter()).map(move |c| (l, c)))
            .map(|(l, c)| (vec![("socket", label_value(&l.socket)), ("camera", label_value(&c.camera_id))], c))
            .collect();
        let per_camera = |e: &mut DescriptorEncoder,
                          name: &str,
                          help: &str,
                          kind: MetricType,
                          value: fn(&CameraStatus) -> u64|
         -> Result<(), std::fmt::Error> {
            family(e, name, help, None, kind, |mut m| {
                for (labels, camera) in &cameras {
                    match kind {
                        MetricType::Counter => ConstCounter::new(value(camera)).encode(m.encode_family(labels)?)?,
                        _ => ConstGauge::new(value(camera) as f64).encode(m.encode_family(labels)?)?,
                    }
                }
                Ok(())
            })
        };
        per_camera(
            e,
            "lookout_camera_up",
            "1 when the camera's source delivers frames (or its file ended normally).",
            MetricType::Gauge,
            |c| u64::from(!c.state.is_down()),
        )?;
        per_camera(e, "lookout_camera_frames", "Frames analysed.", MetricType::Counter, |c| c.frames)?;
        per_camera(e, "lookout_camera_motion_frames", "Frames with motion.", MetricType::Counter, |c| c.motion_frames)?;
        per_camera(e, "lookout_camera_events", "Events from this camera.", MetricType::Counter, |c| c.events)?;
        per_camera(e, "lookout_camera_restarts", "Source restarts.", MetricType::Counter, |c| c.restarts)?;
        family(
            e,
            "lookout_camera_stage",
            "Time per camera pipeline stage (decode_wait, motion, snapshot).",
            seconds,
            MetricType::Histogram,
            |mut m| {
                for (labels, camera) in &cameras {
                    for stage in &camera.stages {
                        let mut labels = labels.clone();
                        labels.push(("stage", label_value(&stage.stage)));
                        histogram(&mut m, &labels, &stage.seconds)?;
                    }
                }
                Ok(())
            },
        )
    }

    /// What the data directory holds and what retention deleted (once
    /// sampled).
    fn encode_storage(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = &self.report.storage else { return Ok(()) };
        let bytes = Some(&Unit::Bytes);
        family(
            e,
            "lookout_storage",
            "Bytes the data directory holds, per kind.",
            bytes,
            MetricType::Gauge,
            |mut m| {
                for (kind, n) in
                    [("database", s.database_bytes), ("snapshots", s.snapshots_bytes), ("logs", s.logs_bytes)]
                {
                    ConstGauge::new(n as f64).encode(m.encode_family(&[("kind", kind)])?)?;
                }
                Ok(())
            },
        )?;
        gauge(e, "lookout_retention_oldest_seq", "The lowest kept seq (0: none kept).", None, s.oldest_seq as f64)?;
        gauge(
            e,
            "lookout_retention_oldest_event_timestamp",
            "When the oldest kept event started, since the Unix epoch (0: none kept).",
            Some(&Unit::Seconds),
            s.oldest_event_unix_seconds,
        )?;
        counter(e, "lookout_retention_deleted_events", "Events retention deleted.", s.deleted_events)?;
        family(e, "lookout_retention_deleted", "Bytes retention freed.", bytes, MetricType::Counter, |m| {
            ConstCounter::new(s.deleted_bytes).encode(m)
        })
    }

    /// Cluster mode's link to the stream; nothing without `--nats`.
    fn encode_cluster(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(c) = &self.cluster else { return Ok(()) };
        gauge(
            e,
            "lookout_cluster_connected",
            "1 while connected to a NATS server.",
            None,
            f64::from(u8::from(c.connected)),
        )?;
        gauge(
            e,
            "lookout_cluster_stream_head",
            "The stream's last sequence, as last read.",
            None,
            c.stream_head as f64,
        )?;
        gauge(
            e,
            "lookout_cluster_applied_seq",
            "The highest stream sequence this copy has read.",
            None,
            c.applied_seq as f64,
        )?;
        gauge(
            e,
            "lookout_cluster_consumer_lag",
            "Changes in the stream this copy has not read.",
            None,
            c.consumer_lag as f64,
        )?;
        gauge(e, "lookout_cluster_peers", "Replicas of the stream besides its leader.", None, c.peers.len() as f64)?;
        gauge(
            e,
            "lookout_cluster_snapshot_store_bytes",
            "Bytes the stream's snapshot bucket holds, as last read.",
            Some(&Unit::Bytes),
            c.snapshot_bytes as f64,
        )?;
        gauge(
            e,
            "lookout_cluster_peers_current",
            "Replicas of the stream that are online and caught up.",
            None,
            c.peers.iter().filter(|p| p.current && !p.offline).count() as f64,
        )?;
        counter(e, "lookout_cluster_applied", "Changes applied to this copy since start.", c.applied)?;
        counter(
            e,
            "lookout_cluster_malformed",
            "Stream messages skipped as not a change this build applies.",
            c.malformed,
        )?;
        counter(
            e,
            "lookout_cluster_refused",
            "Changes this copy refused (e.g. an update of an unknown event).",
            c.refused,
        )
    }

    /// Per output, labelled `output` (`mqtt`, `webhook-N`).
    fn encode_outputs(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use crate::outputs::OutputReport;
        let outputs = &self.report.outputs;
        if outputs.is_empty() {
            return Ok(());
        }
        type Value = fn(&OutputReport) -> u64;
        let families: [(&str, &str, MetricType, Value); 7] = [
            ("lookout_output_connected", "1 while the output reaches its receiver.", MetricType::Gauge, |o| {
                u64::from(o.connected)
            }),
            ("lookout_output_lag", "Changes committed after the output's cursor.", MetricType::Gauge, |o| {
                o.lag.max(0) as u64
            }),
            ("lookout_output_delivered", "Changes the receiver acknowledged.", MetricType::Counter, |o| o.delivered),
            ("lookout_output_retries", "Failed delivery attempts, retried.", MetricType::Counter, |o| o.retries),
            ("lookout_output_give_ups", "Changes skipped after the receiver refused them.", MetricType::Counter, |o| {
                o.give_ups
            }),
            ("lookout_output_late", "Changes delivered after --late-after-secs.", MetricType::Counter, |o| o.late),
            ("lookout_output_expired", "Changes retention deleted before delivery.", MetricType::Counter, |o| {
                o.expired
            }),
        ];
        for (name, help, kind, value) in families {
            family(e, name, help, None, kind, |mut m| {
                for output in outputs {
                    let labels = [("output", label_value(&output.name))];
                    match kind {
                        MetricType::Counter => ConstCounter::new(value(output)).encode(m.encode_family(&labels)?)?,
                        _ => ConstGauge::new(value(output) as f64).encode(m.encode_family(&labels)?)?,
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// The standard process metrics every Prometheus client exports.
    fn encode_process(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let seconds = Some(&Unit::Seconds);
        gauge(
            e,
            "process_start_time",
            "Start time of the process since the Unix epoch.",
            seconds,
            self.started_unix_seconds,
        )?;
        if let Some(p) = &self.process {
            family(e, "process_cpu", "Total user and system CPU time spent.", seconds, MetricType::Counter, |m| {
                ConstCounter::new(p.cpu_seconds).encode(m)
            })?;
            gauge(e, "process_resident_memory", "Resident memory size.", Some(&Unit::Bytes), p.rss_bytes as f64)?;
            gauge(e, "process_open_fds", "Open file descriptors.", None, p.open_fds as f64)?;
        }
        if let Some(max) = self.max_fds {
            gauge(e, "process_max_fds", "Most open file descriptors allowed (soft limit).", None, max as f64)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            label_value(
                r#"/tmp/a"b\c
d"#
            ),
            r#"/tmp/a\"b\\c\nd"#
        );
    }
}

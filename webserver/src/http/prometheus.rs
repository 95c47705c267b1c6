//! `/metrics`: the Prometheus text format.

use super::system::{DetectorMetrics, MetricsReport};

pub fn render(r: &MetricsReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP lookout_{name} {help}\n# TYPE lookout_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "lookout_{name}{labels} {value}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    let c = &r.websocket.connections;
    metric("uptime_seconds", "gauge", "Seconds since the webserver started.", &one(r.uptime_seconds));
    metric("websocket_connections", "gauge", "WebSocket clients connected now.", &one(c.current as f64));
    metric("websocket_connections_peak", "gauge", "Most WebSocket clients at once.", &one(c.peak as f64));
    metric("websocket_connections_total", "counter", "WebSocket clients accepted.", &one(c.total as f64));
    metric(
        "websocket_slow_consumer_closes_total",
        "counter",
        "Clients closed for not keeping up.",
        &one(c.slow_consumer_closes as f64),
    );
    metric(
        "websocket_heartbeat_timeouts_total",
        "counter",
        "Clients closed for silence.",
        &one(c.heartbeat_timeouts as f64),
    );
    metric(
        "websocket_refused_full_total",
        "counter",
        "Clients refused at the client limit.",
        &one(c.refused_full as f64),
    );
    metric(
        "websocket_messages_sent_total",
        "counter",
        "Messages written to WebSocket clients.",
        &one(r.websocket.messages_sent as f64),
    );
    metric(
        "http_connections_refused_total",
        "counter",
        "HTTP connections refused by the per-address or global cap.",
        &[("per_address", r.http.refused_per_address), ("full", r.http.refused_full)]
            .map(|(why, n)| (format!("{{reason=\"{why}\"}}"), n as f64)),
    );
    metric("http_accept_errors_total", "counter", "Failed accept calls.", &one(r.http.accept_errors as f64));
    metric("events_broadcast_total", "counter", "Events broadcast to clients.", &one(r.events.broadcast as f64));
    metric(
        "events_rejected_announcements_total",
        "counter",
        "Detector announcements the database contradicted; never broadcast.",
        &one(r.events.rejected_announcements as f64),
    );
    metric("events_per_second", "gauge", "Events broadcast per second over 10 s.", &one(r.events.per_second));
    let l = &r.events.broadcast_latency_ms;
    metric(
        "broadcast_latency_ms",
        "gauge",
        "Commit to hand-off latency over recent events.",
        &[("p50", l.p50), ("p95", l.p95), ("p99", l.p99), ("max", l.max)]
            .map(|(q, v)| (format!("{{quantile=\"{q}\"}}"), v)),
    );
    metric("process_cpu_percent", "gauge", "Process CPU, percent of one core.", &one(r.process.cpu_percent));
    metric("process_resident_memory_bytes", "gauge", "Process resident memory.", &one(r.process.rss_bytes as f64));
    let per_detector = |f: &dyn Fn(&DetectorMetrics) -> f64| -> Vec<(String, f64)> {
        r.detectors.iter().map(|d| (format!("{{socket=\"{}\"}}", label_value(&d.socket)), f(d))).collect()
    };
    metric(
        "detector_connected",
        "gauge",
        "1 when the detector link is up.",
        &per_detector(&|d| d.connected as u8 as f64),
    );
    metric(
        "detector_frames_processed_total",
        "counter",
        "Frames the detector examined.",
        &per_detector(&|d| d.frames_processed as f64),
    );
    metric(
        "detector_events_created_total",
        "counter",
        "Events the detector committed.",
        &per_detector(&|d| d.events_created as f64),
    );
    metric(
        "detector_inference_ms_p50",
        "gauge",
        "Detector inference time, median.",
        &per_detector(&|d| d.inference_ms.p50),
    );
    metric(
        "detector_inference_ms_p95",
        "gauge",
        "Detector inference time, 95th percentile.",
        &per_detector(&|d| d.inference_ms.p95),
    );
    metric(
        "detector_commit_ms_p50",
        "gauge",
        "Time to commit one event durably (fsync included), median.",
        &per_detector(&|d| d.commit_ms.p50),
    );
    metric(
        "detector_commit_ms_p99",
        "gauge",
        "Time to commit one event durably (fsync included), 99th percentile.",
        &per_detector(&|d| d.commit_ms.p99),
    );
    let cameras: Vec<(String, &shared::wire::CameraStatus)> =
        r.detectors.iter().flat_map(|d| d.cameras.iter().map(move |c| (label_value(&d.socket), c))).collect();
    let per_camera = |f: &dyn Fn(&shared::wire::CameraStatus) -> f64| -> Vec<(String, f64)> {
        cameras
            .iter()
            .map(|(socket, c)| (format!("{{socket=\"{socket}\",camera=\"{}\"}}", label_value(&c.camera_id)), f(c)))
            .collect()
    };
    metric(
        "camera_up",
        "gauge",
        "1 when the camera's source delivers frames (or its file ended normally).",
        &per_camera(&|c| u8::from(!c.state.is_down()) as f64),
    );
    metric("camera_frames_total", "counter", "Frames analysed.", &per_camera(&|c| c.frames as f64));
    metric("camera_motion_frames_total", "counter", "Frames with motion.", &per_camera(&|c| c.motion_frames as f64));
    metric("camera_events_total", "counter", "Events from this camera.", &per_camera(&|c| c.events as f64));
    metric("camera_restarts_total", "counter", "Source restarts.", &per_camera(&|c| c.restarts as f64));
    let stage_samples: Vec<(String, f64)> = cameras
        .iter()
        .flat_map(|(socket, c)| {
            c.stages.iter().flat_map(move |stage| {
                [("0.5", stage.ms.p50), ("0.95", stage.ms.p95)].map(|(q, v)| {
                    let labels = format!(
                        "{{socket=\"{socket}\",camera=\"{}\",stage=\"{}\",quantile=\"{q}\"}}",
                        label_value(&c.camera_id),
                        label_value(&stage.stage)
                    );
                    (labels, v)
                })
            })
        })
        .collect();
    metric(
        "camera_stage_ms",
        "gauge",
        "Time per camera pipeline stage (decode_wait, motion, snapshot), over recent frames.",
        &stage_samples,
    );
    out
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

//! `GET /metrics`: Prometheus text.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::limits::Refusal;
use crate::media::TrackKind;
use crate::packager::output::{TranscodeReport, TranscodeState};

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP panocast_part_latency_seconds Time from a frame's last byte received to the publication of its LL-HLS part."
    );
    let _ = writeln!(out, "# TYPE panocast_part_latency_seconds summary");
    for (kind, label) in [(TrackKind::Video, "video"), (TrackKind::Audio, "audio")] {
        let (p50, p99, count) = state.latency.summary(kind);
        for (q, v) in [("0.5", p50), ("0.99", p99)] {
            if let Some(ms) = v {
                let _ = writeln!(
                    out,
                    "panocast_part_latency_seconds{{track=\"{label}\",quantile=\"{q}\"}} {:.3}",
                    ms as f64 / 1000.0
                );
            }
        }
        let _ = writeln!(
            out,
            "panocast_part_latency_seconds_count{{track=\"{label}\"}} {count}"
        );
    }
    stream_latency_metrics(&state, &mut out);
    transcode_metrics(&state, &mut out);
    discard_metrics(&state, &mut out);
    limit_metrics(&state, &mut out);
    audience_metrics(&state, &mut out);
    memory_metrics(&state, &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// The same latency per stream, so one stream's trouble can be told from another's.
fn stream_latency_metrics(state: &AppState, out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP panocast_stream_part_latency_seconds Server-added part latency of one stream's source renditions."
    );
    let _ = writeln!(out, "# TYPE panocast_stream_part_latency_seconds summary");
    for (slug, output) in state.outputs.all() {
        let mut st = output.lock();
        for (kind, label) in [(TrackKind::Video, "video"), (TrackKind::Audio, "audio")] {
            let (p50, p99, count) = st.latency.summary(kind);
            for (q, v) in [("0.5", p50), ("0.99", p99)] {
                if let Some(ms) = v {
                    let _ = writeln!(
                        out,
                        "panocast_stream_part_latency_seconds{{stream=\"{slug}\",track=\"{label}\",quantile=\"{q}\"}} {:.3}",
                        ms as f64 / 1000.0
                    );
                }
            }
            let _ = writeln!(
                out,
                "panocast_stream_part_latency_seconds_count{{stream=\"{slug}\",track=\"{label}\"}} {count}"
            );
        }
    }
}

/// Per-rung counters of every stream with a ladder.
fn transcode_metrics(state: &AppState, out: &mut String) {
    let reports: Vec<(String, TranscodeReport)> = state
        .outputs
        .all()
        .into_iter()
        .filter_map(|(slug, output)| output.lock().transcode.clone().map(|r| (slug, r)))
        .collect();
    let _ = writeln!(
        out,
        "# HELP panocast_transcode_dropped_frames_total Frames a ladder rung dropped because it could not be encoded in real time."
    );
    let _ = writeln!(
        out,
        "# TYPE panocast_transcode_dropped_frames_total counter"
    );
    for (slug, report) in &reports {
        for rung in &report.rungs {
            let _ = writeln!(
                out,
                "panocast_transcode_dropped_frames_total{{stream=\"{slug}\",rendition=\"{}\"}} {}",
                rung.name, rung.dropped_frames
            );
        }
        for rung in &report.audio {
            let _ = writeln!(
                out,
                "panocast_transcode_dropped_frames_total{{stream=\"{slug}\",rendition=\"{}\"}} {}",
                rung.name, rung.dropped_frames
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP panocast_transcode_failed Whether the stream's ladder stopped with an error (1) or runs (0)."
    );
    let _ = writeln!(out, "# TYPE panocast_transcode_failed gauge");
    for (slug, report) in &reports {
        let failed = u8::from(report.state == TranscodeState::Failed);
        let _ = writeln!(
            out,
            "panocast_transcode_failed{{stream=\"{slug}\"}} {failed}"
        );
    }
}

/// Source frames each stream's packager discarded (see `OutputState::discarded_frames`).
fn discard_metrics(state: &AppState, out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP panocast_ingest_discarded_frames_total Source frames discarded before packaging (audio overlapping audio already packaged)."
    );
    let _ = writeln!(out, "# TYPE panocast_ingest_discarded_frames_total counter");
    for (slug, output) in state.outputs.all() {
        let discarded = output.lock().discarded_frames;
        let _ = writeln!(
            out,
            "panocast_ingest_discarded_frames_total{{stream=\"{slug}\"}} {discarded}"
        );
    }
}

/// Connections held and refused per port, and the publish-failure budget.
fn limit_metrics(state: &AppState, out: &mut String) {
    let limits = &state.limits;
    let registry = &state.streams.registry;
    let (max_live, refused_live) = registry.capacity();
    let _ = writeln!(
        out,
        "# HELP panocast_live_streams Streams with a publisher now, and the limit."
    );
    let _ = writeln!(out, "# TYPE panocast_live_streams gauge");
    let _ = writeln!(out, "panocast_live_streams {}", registry.live_count());
    let _ = writeln!(out, "panocast_live_streams_limit {max_live}");
    let _ = writeln!(
        out,
        "# HELP panocast_publish_refused_at_capacity_total Publishes refused because the live stream limit was reached."
    );
    let _ = writeln!(
        out,
        "# TYPE panocast_publish_refused_at_capacity_total counter"
    );
    let _ = writeln!(
        out,
        "panocast_publish_refused_at_capacity_total {refused_live}"
    );
    let _ = writeln!(
        out,
        "# HELP panocast_connections Connections held now, per port."
    );
    let _ = writeln!(out, "# TYPE panocast_connections gauge");
    for gate in [&limits.http, &limits.rtmp] {
        let _ = writeln!(
            out,
            "panocast_connections{{port=\"{}\"}} {}",
            gate.name,
            gate.open()
        );
    }
    let _ = writeln!(
        out,
        "# HELP panocast_connections_refused_total Connections closed at accept: their address held its share (per_address) or the port was full (total)."
    );
    let _ = writeln!(out, "# TYPE panocast_connections_refused_total counter");
    for gate in [&limits.http, &limits.rtmp] {
        for reason in [Refusal::PerAddress, Refusal::Total] {
            let _ = writeln!(
                out,
                "panocast_connections_refused_total{{port=\"{}\",reason=\"{}\"}} {}",
                gate.name,
                reason.label(),
                gate.refused(reason)
            );
        }
    }
    let held = &limits.held_requests;
    let _ = writeln!(
        out,
        "# HELP panocast_held_requests LL-HLS requests held open now, waiting for their part or playlist."
    );
    let _ = writeln!(out, "# TYPE panocast_held_requests gauge");
    let _ = writeln!(out, "panocast_held_requests {}", held.held());
    let _ = writeln!(
        out,
        "# HELP panocast_held_requests_refused_total LL-HLS requests answered 503 because every place to wait in was taken."
    );
    let _ = writeln!(out, "# TYPE panocast_held_requests_refused_total counter");
    let _ = writeln!(
        out,
        "panocast_held_requests_refused_total {}",
        held.refused()
    );
    let budget = &limits.publish_failures;
    let _ = writeln!(
        out,
        "# HELP panocast_publish_blocks_total Addresses blocked for publish attempts with unknown stream keys."
    );
    let _ = writeln!(out, "# TYPE panocast_publish_blocks_total counter");
    let _ = writeln!(out, "panocast_publish_blocks_total {}", budget.blocks());
    let _ = writeln!(
        out,
        "# HELP panocast_publish_blocked_connections_total RTMP connections refused because their address was blocked."
    );
    let _ = writeln!(
        out,
        "# TYPE panocast_publish_blocked_connections_total counter"
    );
    let _ = writeln!(
        out,
        "panocast_publish_blocked_connections_total {}",
        budget.refused()
    );
}

/// Viewers now and watch time per stream (src/analytics; the figures' definitions are in
/// `crate::analytics::figures`).
fn audience_metrics(state: &AppState, out: &mut String) {
    let rows = super::analytics::metrics(state);
    let _ = writeln!(
        out,
        "# HELP panocast_viewers Active viewer sessions of a stream at the last 5 s sample."
    );
    let _ = writeln!(out, "# TYPE panocast_viewers gauge");
    for (slug, viewers, _) in &rows {
        let _ = writeln!(out, "panocast_viewers{{stream=\"{slug}\"}} {viewers}");
    }
    let _ = writeln!(
        out,
        "# HELP panocast_watch_seconds_total Media seconds delivered to a stream's viewers since the server started."
    );
    let _ = writeln!(out, "# TYPE panocast_watch_seconds_total counter");
    for (slug, _, seconds) in &rows {
        let _ = writeln!(
            out,
            "panocast_watch_seconds_total{{stream=\"{slug}\"}} {seconds:.3}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP panocast_viewer_sessions_refused_total Viewer sessions not counted because the most active sessions were tracked."
    );
    let _ = writeln!(out, "# TYPE panocast_viewer_sessions_refused_total counter");
    let _ = writeln!(
        out,
        "panocast_viewer_sessions_refused_total {}",
        state.analytics.tracker.refused()
    );
}

/// What each stream holds in memory against its budget (`[limits] stream_memory_bytes`).
fn memory_metrics(state: &AppState, out: &mut String) {
    let streams = state.streams.registry.memory();
    let budget = state.streams.registry.memory_budget();
    let _ = writeln!(
        out,
        "# HELP panocast_stream_memory_budget_bytes Bytes one stream may hold in memory before its publisher is dropped.\n# TYPE panocast_stream_memory_budget_bytes gauge\npanocast_stream_memory_budget_bytes {budget}"
    );
    let _ = writeln!(
        out,
        "# HELP panocast_stream_memory_bytes Bytes a stream holds now: media queued for its media thread, and held in its windows and ladder.\n# TYPE panocast_stream_memory_bytes gauge"
    );
    for (slug, m) in &streams {
        let _ = writeln!(
            out,
            "panocast_stream_memory_bytes{{stream=\"{slug}\",part=\"queued\"}} {}\npanocast_stream_memory_bytes{{stream=\"{slug}\",part=\"held\"}} {}",
            m.queued(),
            m.held()
        );
    }
    let _ = writeln!(
        out,
        "# HELP panocast_stream_memory_peak_bytes The most a stream held at once since the server started.\n# TYPE panocast_stream_memory_peak_bytes gauge"
    );
    for (slug, m) in &streams {
        let _ = writeln!(
            out,
            "panocast_stream_memory_peak_bytes{{stream=\"{slug}\"}} {}",
            m.peak()
        );
    }
    let _ = writeln!(
        out,
        "# HELP panocast_stream_memory_budget_drops_total Publishers dropped for taking their stream past its memory budget.\n# TYPE panocast_stream_memory_budget_drops_total counter"
    );
    for (slug, m) in &streams {
        let _ = writeln!(
            out,
            "panocast_stream_memory_budget_drops_total{{stream=\"{slug}\"}} {}",
            m.drops()
        );
    }
}

//! `GET /metrics`: Prometheus text.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
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
    transcode_metrics(&state, &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
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

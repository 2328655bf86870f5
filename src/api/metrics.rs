//! `GET /metrics`: Prometheus text.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::media::TrackKind;

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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

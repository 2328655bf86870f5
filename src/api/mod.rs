//! HTTP: LL-HLS delivery, the 360 player, health and metrics. [`app`] builds the whole router, so
//! tests drive it with `oneshot` as well as over real sockets.

pub mod blocking;
pub mod hls;
pub mod metrics;
pub mod player;
pub mod problem;
pub mod resource;
pub mod streams;

use std::sync::Arc;

use axum::http::{header, Method};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::packager::latency::LatencyStats;
use crate::packager::Outputs;
use crate::streams::hub::StreamHub;
use crate::streams::StreamDirectory;
use problem::Problem;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub outputs: Arc<Outputs>,
    pub directory: Arc<dyn StreamDirectory>,
    pub latency: Arc<LatencyStats>,
    pub hub: Arc<StreamHub>,
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    // WebGL players can only sample a cross-origin <video> with CORS on every
    // playlist and segment.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::RANGE])
        .expose_headers([header::CONTENT_LENGTH, header::CONTENT_TYPE]);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/streams/{slug}", get(streams::stream_info))
        .route("/hls/{slug}/{file}", get(hls::playlist))
        .route("/hls/{slug}/{rendition}/{file}", get(hls::media))
        .route("/watch/{slug}", get(player::watch))
        .route("/player/{file}", get(player::bundle))
        .fallback(|| async { Problem::not_found("no such resource") })
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

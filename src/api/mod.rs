//! HTTP: LL-HLS delivery, the 360 player, health and metrics. [`app`] builds the whole router, so
//! tests drive it with `oneshot` as well as over real sockets.

pub mod access;
pub mod accounts;
pub mod blocking;
pub mod body;
pub mod catalog;
pub mod hls;
pub mod metrics;
pub mod openapi;
pub mod player;
pub mod problem;
pub mod resource;
pub mod streams;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, Method};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::auth::request::Authenticator;
use crate::catalog::Catalog;
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
    /// Streams with metadata, visibility and hashed keys (also `directory`).
    pub catalog: Arc<Catalog>,
    /// Accounts, tokens, rate limits: every auth decision.
    pub auth: Arc<Authenticator>,
    /// Names of the transcoding ladders a stream may choose.
    pub ladders: Arc<Vec<String>>,
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    // WebGL players can only sample a cross-origin <video> with CORS on every
    // playlist and segment.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::RANGE, header::CONTENT_TYPE])
        .expose_headers([header::CONTENT_LENGTH, header::CONTENT_TYPE]);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(hls_routes(&state))
        .merge(rest_api(&state))
        .route("/watch/{slug}", get(player::watch))
        .route("/player/{file}", get(player::bundle))
        .fallback(|| async { Problem::not_found("no such resource") })
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `/hls`: every route behind the playback gate (private streams need a token).
fn hls_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/hls/{slug}/{file}", get(hls::playlist))
        .route("/hls/{slug}/{rendition}/{file}", get(hls::media))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::playback_gate,
        ))
}

/// `/api/v1`: accounts, catalog, OpenAPI; JSON bodies bounded by
/// `auth.max_body_bytes`.
fn rest_api(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(accounts::login))
        .route("/api/v1/auth/refresh", post(accounts::refresh))
        .route("/api/v1/auth/logout", post(accounts::logout))
        .route("/api/v1/auth/register", post(accounts::register))
        .route(
            "/api/v1/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route("/api/v1/users/me", get(accounts::me))
        .route("/api/v1/streams", get(catalog::list).post(catalog::create))
        .route(
            "/api/v1/streams/{stream}",
            get(streams::stream_info)
                .patch(catalog::update)
                .delete(catalog::delete),
        )
        .route("/api/v1/streams/{stream}/key", post(catalog::rotate_key))
        .route(
            "/api/v1/streams/{stream}/playback-token",
            post(catalog::playback_token),
        )
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/docs", get(openapi::docs_page))
        .route("/.well-known/jwks.json", get(accounts::jwks))
        .layer(DefaultBodyLimit::max(state.auth.config.max_body_bytes))
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

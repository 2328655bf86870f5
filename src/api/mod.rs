//! HTTP: LL-HLS delivery, the 360 player, health and metrics. [`app`] builds the whole router, so
//! tests drive it with `oneshot` as well as over real sockets.

pub mod access;
pub mod accounts;
pub mod analytics;
pub mod assets;
pub mod audit;
pub mod auth_config;
pub mod blocking;
pub mod body;
pub mod catalog;
pub mod events;
pub mod hls;
pub mod http_policy;
pub mod ingest_address;
pub mod jobs;
pub mod listener;
pub mod live_feed;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod player;
pub mod posters;
pub mod problem;
pub mod resource;
pub mod search;
pub mod signing_keys;
pub mod sse_feed;
pub mod stream_view;
pub mod streams;
pub mod subscriptions;
pub mod trace;
pub mod uploads;
pub mod vod;
pub mod vod_playback;
pub mod vod_ready;
pub mod vod_timeline;
pub mod web;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{delete, get, head, post};
use axum::Router;

use crate::auth::request::Authenticator;
use crate::catalog::Catalog;
use crate::limits::Limits;
use crate::packager::latency::LatencyStats;
use crate::packager::Outputs;
use crate::streams::service::StreamService;
use crate::streams::StreamDirectory;
use problem::Problem;

/// What the handlers share, behind one reference count: every request clones it once
/// per layer and handler, and one atomic increment is far cheaper than one per field
/// (the counts of shared fields bounce between cores under load).
#[derive(Clone)]
pub struct AppState(Arc<AppShared>);

impl AppState {
    pub fn new(shared: AppShared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppShared;

    fn deref(&self) -> &AppShared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct AppShared {
    pub outputs: Arc<Outputs>,
    pub directory: Arc<dyn StreamDirectory>,
    pub latency: Arc<LatencyStats>,
    /// Catalog writes that reach the live streams, and the streams' live state.
    pub streams: Arc<StreamService>,
    /// Stream records with hashed keys (also `directory`); read-only here, writes go
    /// through `streams`.
    pub catalog: Arc<Catalog>,
    /// Accounts, tokens, rate limits: every auth decision.
    pub auth: Arc<Authenticator>,
    /// Names of the transcoding ladders a stream may choose.
    pub ladders: Arc<Vec<String>>,
    /// Connection caps and the publish-failure budget, for `/metrics`.
    pub limits: Arc<Limits>,
    /// Webhook endpoints and their delivery.
    pub webhooks: Arc<crate::notify::webhooks::Webhooks>,
    /// Scheduled events.
    pub schedule: Arc<crate::schedule::store::Schedule>,
    /// On-demand assets, their jobs and uploads.
    pub vod: Arc<vod::Vod>,
    /// Which origins may call the API from a browser.
    pub api: Arc<crate::config::ApiConfig>,
    /// In-app notifications and the hub their SSE feeds follow.
    pub notifications: Arc<crate::notify::in_app::InApp>,
    /// Keyword search over streams, events and assets.
    pub search: Arc<crate::search::SearchIndex>,
    /// The local CA devices are asked to trust (`[tls] mode = "local-ca"`).
    pub trust: Option<Arc<crate::tls::trust_page::TrustAnchor>>,
    /// HTTP-01 answers of the ACME order in progress (`[tls] mode = "acme"`).
    pub acme: Option<Arc<crate::tls::acme::Challenges>>,
    /// Viewer sessions and audience figures.
    pub analytics: Arc<crate::analytics::Analytics>,
    /// JPEG posters of live streams and assets.
    pub posters: Arc<crate::posters::Posters>,
    /// Where encoders publish (the OBS server URL).
    pub ingest: Arc<ingest_address::IngestListeners>,
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    // Media, the player and the probes are open to every origin; the REST API to the
    // configured ones.
    let public = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .merge(hls_routes(&state))
        .merge(vod_routes(&state))
        .route("/watch/{slug}", get(player::watch))
        .route("/watch/vod/{asset}", get(player::watch_vod))
        .route("/player/{file}", get(player::bundle))
        .route("/ca.crt", get(crate::tls::trust_page::ca_certificate))
        .route("/tls", get(crate::tls::trust_page::instructions))
        .route(
            "/.well-known/acme-challenge/{token}",
            get(crate::tls::acme::challenge),
        )
        .layer(http_policy::media_cors());
    let api = rest_api(&state)
        .merge(vod_api())
        // A route layer: the audit log names the route that matched.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            audit::record,
        ))
        .layer(http_policy::api_cors(&state.api.cors_origins));
    Router::new()
        .merge(public)
        .merge(api)
        .merge(web_routes())
        .fallback(|| async { Problem::not_found("no such resource") })
        .layer(axum::middleware::from_fn(
            http_policy::html_security_headers,
        ))
        // Outside CORS, which answers every OPTIONS as a preflight.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            uploads::discovery,
        ))
        .layer(trace::layer())
        .with_state(state)
}

/// `/vod`: the handlers check access themselves (an asset is read from the database,
/// not the registry); the layer counts what they delivered.
fn vod_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/vod/{asset}/{file}", get(vod_playback::playlist))
        .route("/vod/{asset}/{rendition}/{file}", get(vod_playback::media))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            analytics::track_vod,
        ))
}

/// The portal, the console and their files (same origin only: no CORS).
fn web_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(web::portal))
        .route("/signin", get(web::portal))
        .route("/search", get(web::portal))
        .route("/s/{slug}", get(web::portal_item))
        .route("/v/{asset}", get(web::portal_item))
        .route("/admin", get(web::console))
        .route("/admin/{*rest}", get(web::console_page))
        .route("/web/{file}", get(web::web_file))
}

/// `/hls`: every route behind the playback gate (private streams need a token).
fn hls_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/hls/{slug}/{file}", get(hls::playlist))
        .route("/hls/{slug}/{rendition}/{file}", get(hls::media))
        .route("/hls/{slug}/s/{sid}/{file}", get(hls::session_playlist))
        .route(
            "/hls/{slug}/s/{sid}/{rendition}/{file}",
            get(hls::session_media),
        )
        // Inside the gate: counts only what the gate let through.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            analytics::track,
        ))
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
        .route("/api/v1/auth/config", get(auth_config::auth_config))
        .route(
            "/api/v1/users",
            get(accounts::list_users).post(accounts::create_user),
        )
        .route("/api/v1/users/me", get(accounts::me))
        .route(
            "/api/v1/users/{user}",
            axum::routing::patch(accounts::update_user),
        )
        .route("/api/v1/admin/audit-log", get(audit::list))
        .route("/api/v1/admin/signing-keys", get(signing_keys::get))
        .route(
            "/api/v1/admin/signing-keys/rotate",
            post(signing_keys::rotate),
        )
        .route("/api/v1/streams", get(catalog::list).post(catalog::create))
        .route(
            "/api/v1/streams/{stream}",
            get(streams::stream_info)
                .patch(catalog::update)
                .delete(catalog::delete),
        )
        .route("/api/v1/streams/{stream}/key", post(catalog::rotate_key))
        .route(
            "/api/v1/streams/{stream}/ingest",
            get(ingest_address::ingest_urls),
        )
        .route(
            "/api/v1/streams/{stream}/poster.jpg",
            get(posters::stream_poster),
        )
        .route(
            "/api/v1/streams/{stream}/live-state/stream",
            get(live_feed::live_state),
        )
        .route(
            "/api/v1/streams/{stream}/playback-token",
            post(catalog::playback_token),
        )
        .route(
            "/api/v1/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/api/v1/webhooks/{webhook}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/api/v1/webhooks/{webhook}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/api/v1/webhooks/{webhook}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/api/v1/webhooks/{webhook}/deliveries/{delivery}/replay",
            post(webhooks::replay),
        )
        .route("/api/v1/webhooks/{webhook}/test", post(webhooks::test_send))
        .route("/api/v1/events", get(events::list).post(events::create))
        .route(
            "/api/v1/events/{event}",
            get(events::get)
                .patch(events::update)
                .delete(events::delete),
        )
        .route(
            "/api/v1/me/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route(
            "/api/v1/me/subscriptions/{subscription}",
            delete(subscriptions::delete),
        )
        .route(
            "/api/v1/me/notification-preferences",
            get(subscriptions::get_preferences).put(subscriptions::put_preferences),
        )
        .route("/api/v1/me/notifications", get(notifications::list))
        .route(
            "/api/v1/me/notifications/stream",
            get(notifications::stream),
        )
        .route(
            "/api/v1/me/notifications/read-all",
            post(notifications::mark_all_read),
        )
        .route(
            "/api/v1/me/notifications/{notification}/read",
            post(notifications::mark_read),
        )
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/streams/{stream}/viewers", get(analytics::viewers))
        .route("/api/v1/analytics/timeseries", get(analytics::timeseries))
        .route("/api/v1/analytics/heatmap", get(analytics::heatmap))
        .route(
            "/api/v1/analytics/sessions/{live_session}",
            get(analytics::live_session_summary),
        )
        .route(
            "/api/v1/analytics/assets/{asset}",
            get(analytics::asset_summary),
        )
        .route(
            "/api/v1/viewer-sessions/{sid}/heatmap",
            post(analytics::beacon),
        )
        .route("/api/v1/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/docs", get(web::docs))
        .route("/.well-known/jwks.json", get(accounts::jwks))
        .layer(DefaultBodyLimit::max(state.auth.config.max_body_bytes))
}

/// Assets, jobs and uploads. Upload bodies are streamed to disk and bounded by
/// `uploads.max_bytes` in the handlers, so the JSON body limit does not apply here.
fn vod_api() -> Router<AppState> {
    Router::new()
        .route("/api/v1/assets", get(assets::list).post(assets::create))
        .route(
            "/api/v1/assets/{asset}",
            get(assets::get).delete(assets::delete),
        )
        .route(
            "/api/v1/assets/{asset}/playback-token",
            post(assets::playback_token),
        )
        .route(
            "/api/v1/assets/{asset}/poster.jpg",
            get(posters::asset_poster),
        )
        .route(
            "/api/v1/assets/{asset}/audio.m4a",
            get(assets::download_m4a),
        )
        .route(
            "/api/v1/assets/{asset}/audio.mp3",
            get(assets::download_mp3),
        )
        .route("/api/v1/jobs", get(jobs::list))
        .route("/api/v1/jobs/{job}/cancel", post(jobs::cancel))
        .route("/api/v1/jobs/{job}/retry", post(jobs::retry))
        .route(
            "/api/v1/uploads",
            post(uploads::create).options(uploads::options),
        )
        .route(
            "/api/v1/uploads/{upload}",
            head(uploads::head)
                .patch(uploads::patch)
                .delete(uploads::delete),
        )
        .layer(DefaultBodyLimit::disable())
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

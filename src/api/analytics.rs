//! Audience analytics at the HTTP edge: the layer that counts HLS deliveries, the heatmap
//! beacon, and the read API (live viewers, time series, summaries, heatmaps).
//!
//! Reads are for admins and for the broadcaster who owns the stream (or asset): 401
//! without an access token, 403 for anyone else, 404 for what does not exist. The
//! figures are defined in [`crate::analytics::figures`].

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{bearer, query_token, Authed, PlaybackGrant};
use super::body::ApiQuery;
use super::problem::{self, ApiError, Problem};
use super::AppState;
use crate::analytics::figures::{self, Interval};
use crate::analytics::heatmap::{Beacon, HeatmapView, Histogram, MAX_BEACON_BYTES};
use crate::analytics::session_id;
use crate::analytics::store::{self, Filter};
use crate::analytics::tracker::{Audience, BeaconRefused, Delivered, Session, Viewer};
use crate::analytics::user_agent::UaClass;
use crate::auth::request::Caller;
use crate::auth::tokens::Claims;

/// The most buckets one time-series answer holds.
const MAX_POINTS: i64 = 10_000;
/// The window of a time series or heatmap without `from`.
const DEFAULT_WINDOW_MS: i64 = 86_400_000;

/// Who sent an HLS request: read before the handler takes the request.
struct Requester {
    token: Option<String>,
    user_agent: String,
    address: Option<std::net::IpAddr>,
}

impl Requester {
    fn of(req: &Request) -> Requester {
        let token = query_token(req.uri().query()).or_else(|| bearer(req.headers()));
        Requester {
            token: token.map(str::to_owned),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            address: req
                .extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|ci| ci.0.ip()),
        }
    }

    /// The session of a verified token: its `sid` claim, else one derived from it.
    fn token_session(&self, claims: Option<&Claims>) -> Option<(String, String)> {
        let (claims, token) = (claims?, self.token.as_deref()?);
        let sid = claims
            .sid
            .clone()
            .unwrap_or_else(|| session_id::of_token(token));
        Some((sid, claims.sub.clone()))
    }
}

/// What a `/vod` handler served, for [`track_vod`]: put in the response's extensions
/// beside its [`Delivered`].
#[derive(Clone, Debug)]
pub struct WatchedAsset {
    pub asset_id: String,
    /// The playback token's claims when it was valid for this asset.
    pub claims: Option<Claims>,
}

/// Route layer inside the playback gate: identifies the viewer session of an HLS
/// request and hands what the handler delivered to the tracker. One map update per
/// request; a token on a public stream is verified here (the gate had no need to).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let analytics = &state.analytics;
    let grant = req.extensions().get::<PlaybackGrant>().cloned();
    let Some(grant) = grant.filter(|_| analytics.config.enabled) else {
        return next.run(req).await;
    };
    let stream = &grant.stream;
    let who = Requester::of(&req);
    let claims = match (&grant.claims, who.token.as_deref()) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(t)) => state.auth.playback_claims(stream, t),
        (None, None) => None,
    };
    let path_sid = session_id::in_path(req.uri().path()).map(str::to_owned);
    let (sid, subject, anonymous) = match (who.token_session(claims.as_ref()), path_sid) {
        (Some((sid, sub)), _) => (sid, Some(sub), false),
        (None, Some(sid)) => (sid, None, true),
        (None, None) => (
            session_id::of_client(&stream.id, who.address, &who.user_agent),
            None,
            false,
        ),
    };
    let response = next.run(req).await;
    if !response.status().is_success() {
        return response;
    }
    let Some(delivered) = response.extensions().get::<Delivered>() else {
        return response;
    };
    let now = Instant::now();
    let now_ms = chrono::Utc::now().timestamp_millis();
    // Asked once per session, so the HMAC check and the live-session lookup stay off
    // the path of every later request.
    let viewer = |sid: &str, subject: Option<String>| Viewer {
        audience: Audience {
            content_kind: "stream",
            content_id: stream.id.clone(),
            label: stream.slug.clone(),
            live_session: state
                .streams
                .registry
                .status(&stream.slug)
                .session
                .map(|s| s.id)
                .unwrap_or_default(),
        },
        subject: subject.unwrap_or_else(|| sid.to_string()),
        ua: UaClass::of(&who.user_agent),
    };
    let recorded = analytics.tracker.record(
        &sid,
        || {
            (!anonymous || analytics.ids.verify(&stream.id, &sid))
                .then(|| viewer(&sid, subject.clone()))
        },
        delivered,
        now,
        now_ms,
    );
    if !recorded {
        // A forged or stale anonymous id (minted before a restart): counted by client.
        let sid = session_id::of_client(&stream.id, who.address, &who.user_agent);
        analytics
            .tracker
            .record(&sid, || Some(viewer(&sid, None)), delivered, now, now_ms);
    }
    response
}

/// The same for `/vod`: on-demand viewing counts like live, under the asset. The
/// handler checks access itself and says what it served in [`WatchedAsset`].
pub async fn track_vod(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let analytics = &state.analytics;
    if !analytics.config.enabled {
        return next.run(req).await;
    }
    let who = Requester::of(&req);
    let response = next.run(req).await;
    if !response.status().is_success() {
        return response;
    }
    let (Some(delivered), Some(watched)) = (
        response.extensions().get::<Delivered>(),
        response.extensions().get::<WatchedAsset>(),
    ) else {
        return response;
    };
    let (sid, subject) = who
        .token_session(watched.claims.as_ref())
        .map(|(sid, sub)| (sid, Some(sub)))
        .unwrap_or_else(|| {
            let sid = session_id::of_client(&watched.asset_id, who.address, &who.user_agent);
            (sid, None)
        });
    let viewer = || {
        Some(Viewer {
            audience: Audience {
                content_kind: "asset",
                content_id: watched.asset_id.clone(),
                label: watched.asset_id.clone(),
                live_session: String::new(),
            },
            subject: subject.clone().unwrap_or_else(|| sid.clone()),
            ua: UaClass::of(&who.user_agent),
        })
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    analytics
        .tracker
        .record(&sid, viewer, delivered, Instant::now(), now_ms);
    response
}

/// Seconds looked per cell since the last beacon, from the built-in player.
#[utoipa::path(post, path = "/api/v1/viewer-sessions/{sid}/heatmap", tag = "analytics",
    operation_id = "send_heatmap_beacon", security(()),
    params(("sid" = String, Path, description = "the viewer session id: the `s/{sid}/` path segment of the \
        playlist URLs, or the `sid` claim of the playback token")),
    request_body(content = Beacon, content_type = "application/json",
        description = "18 rows (pitch, from straight down) of 36 numbers (yaw, from the frame centre): \
        seconds looked into each 10 degree cell; a beacon counts for at most 60 seconds in all (more is scaled down)"),
    responses((status = 202, description = "taken: added to the session's heatmap, written to the database \
                within 5 s (analytics are batched, never a write per request)"),
              (status = 400, description = "not a heatmap: not JSON, the wrong shape, a negative number"),
              (status = 404, description = "no active viewer session has this id"),
              (status = 413, description = "the body is larger than 16 KiB"),
              (status = 429, description = "the session sent a beacon less than 5 s ago; see Retry-After")))]
pub async fn beacon(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BEACON_BYTES).await else {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Content Too Large",
            format!("a heatmap beacon is at most {MAX_BEACON_BYTES} bytes"),
        )
        .into());
    };
    // Checked before the rate limit: a malformed beacon changes nothing at all.
    let histogram =
        Histogram::from_beacon(&bytes).map_err(|e| Problem::bad_request(e.to_string()))?;
    let analytics = &state.analytics;
    let audience =
        match analytics
            .tracker
            .beacon(&sid, crate::analytics::BEACON_GAP, Instant::now())
        {
            Ok(a) => a,
            Err(BeaconRefused::Unknown) => {
                return Err(Problem::not_found("no active viewer session has this id").into())
            }
            Err(BeaconRefused::TooSoon(wait)) => return Err(problem::too_many_requests(wait)),
        };
    analytics.add_heat(audience, chrono::Utc::now().timestamp_millis(), &histogram);
    Ok(StatusCode::ACCEPTED)
}

/// Viewers of a stream now.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveViewers {
    pub stream: String,
    /// Active viewer sessions at the last 5 s sample.
    pub concurrent: u64,
    /// The highest sample of the current live session (of the stream when it has
    /// none) since the server started.
    pub peak: u64,
    /// When the peak was first reached (RFC 3339); absent before any viewer.
    pub peak_at: Option<String>,
    /// When the last sample was taken (RFC 3339); absent before the first.
    pub sampled_at: Option<String>,
    /// The live session playing, if any.
    pub live_session: Option<String>,
}

/// Concurrent viewers of a stream now, and the peak of its live session.
#[utoipa::path(get, path = "/api/v1/streams/{stream}/viewers", tag = "analytics",
    operation_id = "get_stream_viewers", security(("bearer" = [])),
    params(("stream" = String, Path, description = "stream id or slug")),
    responses((status = 200, body = LiveViewers),
              (status = 401, description = "no valid access token"),
              (status = 403, description = "neither an admin nor the stream's owner"),
              (status = 404, description = "no such stream")))]
pub async fn viewers(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<LiveViewers>, ApiError> {
    let stream = managed_stream(&state, &caller, &id)?;
    let live_session = state
        .streams
        .registry
        .status(&stream.slug)
        .session
        .map(|s| s.id);
    let now = state.analytics.concurrent(&stream.id);
    let peak = state
        .analytics
        .peak(live_session.as_deref().unwrap_or(&stream.id));
    Ok(Json(LiveViewers {
        stream: stream.id.clone(),
        concurrent: now.concurrent,
        peak: peak.value,
        peak_at: (peak.value > 0).then(|| rfc3339(peak.at_ms)),
        sampled_at: (now.sampled_ms > 0).then(|| rfc3339(now.sampled_ms)),
        live_session,
    }))
}

/// What a time series or heatmap covers.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Stream,
    LiveSession,
    Event,
    Asset,
}

/// Which figure a time series shows.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The highest 5 s sample of concurrent viewers in the bucket.
    Concurrent,
    /// The mean of the bucket's samples.
    ConcurrentAvg,
    /// Media seconds delivered in the bucket.
    WatchSeconds,
    /// Ended sessions started in the bucket with at least the view threshold of media.
    Views,
    /// Distinct subjects among the ended sessions started in the bucket.
    UniqueViewers,
}

/// `GET /api/v1/analytics/timeseries` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimeseriesQuery {
    #[param(inline)]
    pub metric: Metric,
    #[param(inline)]
    pub scope: Scope,
    /// The stream (id or slug), live session, event or asset id.
    pub id: String,
    /// Start (RFC 3339, inclusive); default 24 hours before `to`.
    #[param(nullable = false, format = DateTime)]
    pub from: Option<String>,
    /// End (RFC 3339, exclusive); default now; not before `from`.
    #[param(nullable = false, format = DateTime)]
    pub to: Option<String>,
    /// Bucket width (default `1m`).
    #[param(inline, nullable = false)]
    pub interval: Option<Interval>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Point {
    /// Start of the bucket (RFC 3339).
    pub t: String,
    pub value: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Timeseries {
    pub metric: String,
    pub scope: String,
    pub id: String,
    pub interval: String,
    /// Buckets with data, oldest first.
    pub points: Vec<Point>,
}

/// A figure over time, in 1-minute, hourly or daily buckets.
#[utoipa::path(get, path = "/api/v1/analytics/timeseries", tag = "analytics",
    operation_id = "get_analytics_timeseries", security(("bearer" = [])),
    params(TimeseriesQuery),
    responses((status = 200, body = Timeseries),
              (status = 400, description = "an unknown metric, scope or interval, or a malformed time"),
              (status = 422, description = "from after to, or more than 10000 buckets"),
              (status = 401, description = "no valid access token"),
              (status = 403, description = "neither an admin nor the owner"),
              (status = 404, description = "no such stream, live session, event or asset"),
              (status = 500)))]
pub async fn timeseries(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<TimeseriesQuery>,
) -> Result<Json<Timeseries>, ApiError> {
    let interval = q.interval.unwrap_or(Interval::Minute);
    let (from_ms, to_ms) = window(q.from.as_deref(), q.to.as_deref())?;
    if (to_ms - from_ms) / interval.ms() > MAX_POINTS {
        return Err(Problem::unprocessable(format!(
            "at most {MAX_POINTS} buckets: shorten the window or widen the interval"
        ))
        .into());
    }
    let filter = resolve(&state, &caller, q.scope, &q.id).await?;
    let pool = &state.analytics.pool;
    let values: Vec<(i64, f64)> = match q.metric {
        Metric::Concurrent | Metric::ConcurrentAvg | Metric::WatchSeconds => store::points(
            pool,
            &filter,
            from_ms,
            to_ms,
            interval,
            state.analytics.rolled_up_to_ms(),
        )
        .await
        .map_err(internal)?
        .into_iter()
        .map(|p| {
            let v = match q.metric {
                Metric::Concurrent => p.acc.concurrent_max as f64,
                Metric::ConcurrentAvg if p.acc.samples > 0 => {
                    p.acc.concurrent_sum as f64 / p.acc.samples as f64
                }
                Metric::ConcurrentAvg => 0.0,
                _ => p.acc.watch_seconds,
            };
            (p.bucket_ms, v)
        })
        .collect(),
        Metric::Views | Metric::UniqueViewers => {
            let rows = store::sessions(pool, &filter, interval.bucket(from_ms), to_ms)
                .await
                .map_err(internal)?;
            let threshold = state.analytics.config.view_threshold_s;
            let mut buckets: BTreeMap<i64, (u64, HashSet<String>)> = BTreeMap::new();
            for r in rows {
                let b = buckets.entry(interval.bucket(r.started_ms)).or_default();
                b.0 += u64::from(figures::is_view(r.media_seconds, threshold));
                b.1.insert(r.subject);
            }
            buckets
                .into_iter()
                .map(|(t, (views, subjects))| {
                    let v = if q.metric == Metric::Views {
                        views
                    } else {
                        subjects.len() as u64
                    };
                    (t, v as f64)
                })
                .collect()
        }
    };
    Ok(Json(Timeseries {
        metric: serde_plain(&q.metric),
        scope: serde_plain(&q.scope),
        id: q.id,
        interval: interval.as_str().into(),
        points: values
            .into_iter()
            .map(|(t, value)| Point {
                t: rfc3339(t),
                value,
            })
            .collect(),
    }))
}

/// One rendition's part of the watch time.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenditionShare {
    pub rendition: String,
    pub watch_seconds: f64,
    /// Of all watch time, 0..=1.
    pub share: f64,
}

/// The figures of a live session or an asset: ended sessions and the active ones.
#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceSummary {
    pub scope: String,
    pub id: String,
    /// Viewer sessions (ended and active).
    pub sessions: u64,
    /// Sessions active now.
    pub active: u64,
    /// Sessions with at least the view threshold of media.
    pub views: u64,
    /// Distinct subjects.
    pub unique_viewers: u64,
    /// Media seconds delivered.
    pub watch_seconds: f64,
    pub bytes: u64,
    /// The highest 5 s sample of concurrent viewers.
    pub peak: u64,
    /// When it was first reached (RFC 3339; the minute, for points already stored).
    pub peak_at: Option<String>,
    pub renditions: Vec<RenditionShare>,
    /// Sessions per device class (`browser`, `headset`, `mobile`, `other`).
    pub user_agents: BTreeMap<String, u64>,
}

/// The audience of one live session.
#[utoipa::path(get, path = "/api/v1/analytics/sessions/{live_session}", tag = "analytics",
    operation_id = "get_live_session_audience", security(("bearer" = [])),
    params(("live_session" = String, Path, description = "live session id (`ls_…`)")),
    responses((status = 200, body = AudienceSummary),
              (status = 401, description = "no valid access token"),
              (status = 403, description = "neither an admin nor the stream's owner"),
              (status = 404, description = "no viewer was counted in this live session"),
              (status = 500)))]
pub async fn live_session_summary(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<AudienceSummary>, ApiError> {
    let filter = resolve(&state, &caller, Scope::LiveSession, &id).await?;
    summary(&state, "live_session", id, &filter).await.map(Json)
}

/// The audience of one asset (VOD sessions).
#[utoipa::path(get, path = "/api/v1/analytics/assets/{asset}", tag = "analytics",
    operation_id = "get_asset_audience", security(("bearer" = [])),
    params(("asset" = String, Path, description = "asset id")),
    responses((status = 200, body = AudienceSummary),
              (status = 401, description = "no valid access token"),
              (status = 403, description = "neither an admin nor the asset's owner"),
              (status = 404, description = "no such asset"),
              (status = 500)))]
pub async fn asset_summary(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<AudienceSummary>, ApiError> {
    let filter = resolve(&state, &caller, Scope::Asset, &id).await?;
    summary(&state, "asset", id, &filter).await.map(Json)
}

async fn summary(
    state: &AppState,
    scope: &str,
    id: String,
    filter: &Filter,
) -> Result<AudienceSummary, ApiError> {
    let analytics = &state.analytics;
    let pool = &analytics.pool;
    let ended = store::sessions(pool, filter, i64::MIN, i64::MAX)
        .await
        .map_err(internal)?;
    let active: Vec<Session> = analytics
        .tracker
        .active(|s| filter.covers(&s.viewer.audience));
    let threshold = analytics.config.view_threshold_s;
    let mut subjects: HashSet<&str> = HashSet::new();
    let mut renditions: BTreeMap<String, f64> = BTreeMap::new();
    let mut user_agents: BTreeMap<String, u64> = BTreeMap::new();
    let (mut views, mut watch, mut bytes) = (0u64, 0.0f64, 0u64);
    for r in &ended {
        subjects.insert(&r.subject);
        views += u64::from(figures::is_view(r.media_seconds, threshold));
        watch += r.media_seconds;
        bytes += r.bytes;
        for (name, s) in &r.renditions {
            *renditions.entry(name.clone()).or_default() += s;
        }
        *user_agents.entry(r.ua_class.clone()).or_default() += 1;
    }
    for s in &active {
        let media = s.media_seconds();
        subjects.insert(&s.viewer.subject);
        views += u64::from(figures::is_view(media, threshold));
        watch += media;
        bytes += s.bytes();
        for r in &s.renditions {
            *renditions.entry(r.name.clone()).or_default() += r.seconds;
        }
        *user_agents.entry(s.viewer.ua.as_str().into()).or_default() += 1;
    }
    // The peak: from the stored points, or the samples of this run if higher.
    let stored = store::points(pool, filter, 0, i64::MAX, Interval::Minute, 0)
        .await
        .map_err(internal)?;
    let mut peak = figures::Peak::default();
    for p in &stored {
        peak.observe(p.acc.concurrent_max, p.bucket_ms);
    }
    if let Filter::LiveSession(ls) = filter {
        let live = analytics.peak(ls);
        if live.value > peak.value {
            peak = live;
        }
    }
    let names: Vec<(&str, f64)> = renditions.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let shares = figures::rendition_shares(&names)
        .into_iter()
        .map(|(name, share)| RenditionShare {
            rendition: name.to_string(),
            watch_seconds: renditions.get(name).copied().unwrap_or(0.0),
            share,
        })
        .collect();
    Ok(AudienceSummary {
        scope: scope.into(),
        id,
        sessions: (ended.len() + active.len()) as u64,
        active: active.len() as u64,
        views,
        unique_viewers: subjects.len() as u64,
        watch_seconds: watch,
        bytes,
        peak: peak.value,
        peak_at: (peak.value > 0).then(|| rfc3339(peak.at_ms)),
        renditions: shares,
        user_agents,
    })
}

/// `GET /api/v1/analytics/heatmap` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HeatmapQuery {
    #[param(inline)]
    pub scope: Scope,
    /// The stream (id or slug), live session, event or asset id.
    pub id: String,
    /// Start (RFC 3339, inclusive); default 24 hours before `to`.
    #[param(nullable = false, format = DateTime)]
    pub from: Option<String>,
    /// End (RFC 3339, exclusive); default now; not before `from`.
    #[param(nullable = false, format = DateTime)]
    pub to: Option<String>,
    /// Also each minute's heatmap (default false).
    #[param(nullable = false)]
    pub per_minute: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Heatmaps {
    pub scope: String,
    pub id: String,
    /// The whole window.
    pub overall: HeatmapView,
    /// Each minute with data, oldest first (with `per_minute=true`).
    pub minutes: Vec<HeatmapView>,
}

/// Where viewers looked: seconds per 10 degree cell, overall and per minute. Beacons of
/// the last 5 s may not be in it yet.
#[utoipa::path(get, path = "/api/v1/analytics/heatmap", tag = "analytics",
    operation_id = "get_analytics_heatmap", security(("bearer" = [])),
    params(HeatmapQuery),
    responses((status = 200, body = Heatmaps),
              (status = 400, description = "an unknown scope or a malformed time"),
              (status = 422, description = "from after to"),
              (status = 401, description = "no valid access token"),
              (status = 403, description = "neither an admin nor the owner"),
              (status = 404, description = "no such stream, live session, event or asset"),
              (status = 500)))]
pub async fn heatmap(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(q): ApiQuery<HeatmapQuery>,
) -> Result<Json<Heatmaps>, ApiError> {
    let (from_ms, to_ms) = window(q.from.as_deref(), q.to.as_deref())?;
    let filter = resolve(&state, &caller, q.scope, &q.id).await?;
    let minutes = store::heatmaps(&state.analytics.pool, &filter, from_ms, to_ms)
        .await
        .map_err(internal)?;
    let mut overall = Histogram::default();
    for (_, h) in &minutes {
        overall.add(h);
    }
    let per_minute = q.per_minute.unwrap_or(false);
    Ok(Json(Heatmaps {
        scope: serde_plain(&q.scope),
        id: q.id,
        overall: HeatmapView::new(None, &overall),
        minutes: if per_minute {
            minutes
                .iter()
                .map(|(m, h)| HeatmapView::new(Some(rfc3339(*m)), h))
                .collect()
        } else {
            Vec::new()
        },
    }))
}

/// The stream `id` (or slug) if `caller` manages it: 404 when there is none, 403 when
/// it is not theirs.
fn managed_stream(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<std::sync::Arc<crate::streams::StreamDef>, ApiError> {
    let stream = state
        .catalog
        .get(id)
        .ok_or_else(|| Problem::not_found(format!("there is no stream {id}")))?;
    if !caller.may_manage(&stream) {
        return Err(Problem::forbidden(
            "only an admin or the stream's owner may read its audience",
        )
        .into());
    }
    Ok(stream)
}

/// The rows `scope`/`id` covers, once `caller` may read them.
async fn resolve(
    state: &AppState,
    caller: &Caller,
    scope: Scope,
    id: &str,
) -> Result<Filter, ApiError> {
    let analytics = &state.analytics;
    match scope {
        Scope::Stream => {
            let stream = managed_stream(state, caller, id)?;
            Ok(Filter::Content {
                kind: "stream",
                id: stream.id.clone(),
            })
        }
        Scope::LiveSession => {
            let active = analytics
                .tracker
                .active(|s| s.viewer.audience.live_session == id)
                .into_iter()
                .next()
                .map(|s| s.viewer.audience.content_id);
            let stream_id = match active {
                Some(s) => Some(s),
                None if id.is_empty() => None,
                None => store::stream_of_live_session(&analytics.pool, id)
                    .await
                    .map_err(internal)?,
            };
            let Some(stream_id) = stream_id else {
                return Err(Problem::not_found(format!(
                    "no viewer was counted in live session {id}"
                ))
                .into());
            };
            managed_stream(state, caller, &stream_id)?;
            Ok(Filter::LiveSession(id.to_string()))
        }
        Scope::Event => {
            let event = state
                .schedule
                .get(id)
                .await
                .map_err(internal)?
                .ok_or_else(|| Problem::not_found(format!("there is no event {id}")))?;
            let Some(stream_id) = event.stream_id.as_deref() else {
                return Err(Problem::not_found(format!("event {id} has no stream")).into());
            };
            managed_stream(state, caller, stream_id)?;
            Ok(match event.session_id {
                Some(ls) => Filter::LiveSession(ls),
                // Not live yet: nothing to count.
                None => Filter::Nothing,
            })
        }
        Scope::Asset => {
            let asset = state
                .vod
                .assets
                .store
                .get(id)
                .await
                .map_err(internal)?
                .ok_or_else(|| Problem::not_found(format!("there is no asset {id}")))?;
            if !super::vod::may_manage(caller, &asset) {
                return Err(Problem::forbidden(
                    "only an admin or the asset's owner may read its audience",
                )
                .into());
            }
            Ok(Filter::Content {
                kind: "asset",
                id: asset.id,
            })
        }
    }
}

/// `from`/`to` as Unix milliseconds: defaults, order and format checked (400).
fn window(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ApiError> {
    let parse = |name: &str, s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| Problem::bad_request(format!("{name} must be an RFC 3339 time")))
    };
    let to_ms = match to {
        Some(t) => parse("to", t)?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let from_ms = match from {
        Some(f) => parse("from", f)?,
        None => to_ms.saturating_sub(DEFAULT_WINDOW_MS),
    };
    if from_ms > to_ms {
        return Err(Problem::unprocessable("from must not be after to").into());
    }
    Ok((from_ms, to_ms))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A unit enum's serde name.
fn serde_plain(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn internal(e: sqlx::Error) -> ApiError {
    Problem::internal(&e).into()
}

/// Active sessions per stream for `/metrics`: `(slug, concurrent, watch seconds)`.
pub fn metrics(state: &AppState) -> Vec<(String, u64, f64)> {
    state.analytics.metrics()
}

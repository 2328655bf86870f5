//! LL-HLS delivery: playlists (with blocking reload and delta updates), init
//! segments, parts (held while hinted) and segments.
//!
//! Playlists are rendered by the packager once per change; a request only clones the
//! rendered [`Bytes`], so thousands of held requests cost memory, not CPU.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::time::Instant;

use super::blocking::{self, Directives, PartWait, Readiness};
use super::problem::{self, Problem};
use super::resource::{playlist_name, MediaFile};
use super::AppState;
use crate::analytics::figures::WHOLE;
use crate::analytics::tracker::Delivered;
use crate::media::TrackKind;
use crate::packager::output::OutputState;
use crate::packager::window::RenditionWindow;
use crate::packager::StreamOutput;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// Playlists: about one part duration, never more than half a target duration
/// (whole seconds only, so 1 s at the default 2 s target).
const PLAYLIST_CACHE: &str = "public, max-age=1";
/// Published media never changes.
const MEDIA_CACHE: &str = "public, max-age=31536000, immutable";

/// How long a blocked request is held: three target durations (6.2.5.2), then 503.
fn hold_limit(target_duration_s: u64) -> Duration {
    Duration::from_secs(3 * target_duration_s.max(1))
}

/// `GET /hls/{slug}/{file}`: the multivariant playlist or a rendition's playlist.
///
/// With analytics on, a viewer without a playback token asking for the multivariant
/// playlist is redirected (302, `no-store`) to `s/{sid}/index.m3u8`: a fresh signed
/// anonymous session id in a path segment. Every URI in our playlists is relative, so
/// the rendition playlists, parts, segments and `_HLS_msn`/`_HLS_part`/`_HLS_skip`
/// reloads below it carry the id with no rewriting, and the rendered playlist bytes
/// stay shared by all viewers (a `?sid=` query would have to be written into every
/// URI of every playlist response).
pub async fn playlist(
    State(state): State<AppState>,
    Path((slug, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    // Who gets a session id: viewers without a token, of a stream that plays.
    let mut anonymous = None;
    if file == "index.m3u8" && state.analytics.config.enabled {
        let has_token = super::access::query_token(query.as_deref()).is_some()
            || super::access::bearer(&headers).is_some();
        if !has_token {
            anonymous = state.catalog.get_slug(&slug).map(|s| s.id.clone());
        }
    }
    rendered_playlist(state, slug, file, query, anonymous).await
}

/// `GET /hls/{slug}/s/{sid}/{file}`: [`playlist`] within an anonymous viewer session
/// (the tracking layer reads the id from the path).
pub async fn session_playlist(
    State(state): State<AppState>,
    Path((slug, _sid, file)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    rendered_playlist(state, slug, file, query, None).await
}

/// `GET /hls/{slug}/s/{sid}/{rendition}/{file}`: [`media`] within a viewer session.
pub async fn session_media(
    state: State<AppState>,
    Path((slug, _sid, rendition, file)): Path<(String, String, String, String)>,
) -> Response {
    media(state, Path((slug, rendition, file))).await
}

/// 302 to the multivariant playlist below the session's path segment (relative, so a
/// proxy's path prefix survives), keeping the query.
fn session_redirect(sid: &str, query: Option<&str>) -> Response {
    let location = match query {
        Some(q) if !q.is_empty() => format!("s/{sid}/index.m3u8?{q}"),
        _ => format!("s/{sid}/index.m3u8"),
    };
    let Ok(location) = HeaderValue::from_str(&location) else {
        return Problem::bad_request("the query string cannot be carried over").into_response();
    };
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            // Every viewer gets its own id: never from a cache.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

/// A playlist by name; the multivariant one as a redirect into a new session when
/// `anonymous` names the stream to mint the session id for.
async fn rendered_playlist(
    state: AppState,
    slug: String,
    file: String,
    query: Option<String>,
    anonymous: Option<String>,
) -> Response {
    let Some(name) = playlist_name(&file) else {
        return Problem::not_found(format!("no HLS resource named {file}")).into_response();
    };
    let output = match stream_output(&state, &slug).await {
        Ok(output) => output,
        Err(problem) => return problem.into_response(),
    };
    let Some(rendition) = name else {
        let multivariant = output.lock().multivariant.clone();
        return match (multivariant, anonymous) {
            (Some(_), Some(stream_id)) => {
                session_redirect(&state.analytics.ids.mint(&stream_id), query.as_deref())
            }
            (Some(bytes), None) => playlist_response(bytes),
            (None, _) => not_live(&slug).into_response(),
        };
    };
    let directives = match Directives::parse(query.as_deref()) {
        Ok(d) => d,
        Err(e) => return Problem::bad_request(e.to_string()).into_response(),
    };
    let (hold, kind, target) = {
        let st = output.lock();
        match st.rendition(rendition) {
            Some(r) => (
                hold_limit(r.window.target_duration()),
                r.kind,
                r.window.target_duration(),
            ),
            None => return not_live(&slug).into_response(),
        }
    };
    let answer = wait_until(&state, &output, rendition, hold, |st| {
        if st.closed {
            return ControlFlow::Break(gone(&slug).into_response());
        }
        let Some(r) = st.rendition(rendition) else {
            return ControlFlow::Break(not_live(&slug).into_response());
        };
        // An ended playlist will not grow: answer at once whatever was asked for.
        let readiness = if r.window.is_ended() {
            Readiness::Ready
        } else {
            blocking::playlist_readiness(&directives, &r.window)
        };
        match readiness {
            Readiness::TooFarAhead => ControlFlow::Break(
                Problem::bad_request(format!(
                    "_HLS_msn is more than two segments beyond the last segment ({})",
                    r.window.next_msn()
                ))
                .into_response(),
            ),
            Readiness::Wait => ControlFlow::Continue(()),
            Readiness::Ready => match &r.playlist {
                Some(p) if directives.skip => {
                    ControlFlow::Break(playlist_response(p.delta.clone()))
                }
                Some(p) => ControlFlow::Break(playlist_response(p.full.clone())),
                None => ControlFlow::Continue(()),
            },
        }
    })
    .await;
    match answer {
        Waited::Answer(mut response) => {
            if response.status() == StatusCode::OK {
                let bytes = axum::body::HttpBody::size_hint(response.body())
                    .exact()
                    .unwrap_or(0);
                response.extensions_mut().insert(Delivered {
                    rendition: rendition.to_string(),
                    kind,
                    media: None,
                    bytes,
                    target_duration_s: target,
                });
            }
            response
        }
        Waited::TimedOut => Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable",
            "the requested segment or part did not arrive within three target durations",
        )
        .into_response(),
        Waited::AtCapacity => held_full(),
    }
}

/// Every place to wait in is taken: try again in a second.
fn held_full() -> Response {
    problem::at_capacity("too many LL-HLS requests are being held open; retry", 1)
}

/// `GET /hls/{slug}/{rendition}/{file}`: init segment, part or segment.
pub async fn media(
    State(state): State<AppState>,
    Path((slug, rendition, file)): Path<(String, String, String)>,
) -> Response {
    let Some(media) = MediaFile::parse(&file) else {
        return Problem::not_found(format!("no HLS resource named {rendition}/{file}"))
            .into_response();
    };
    let output = match stream_output(&state, &slug).await {
        Ok(output) => output,
        Err(problem) => return problem.into_response(),
    };
    let missing = || Problem::not_found(format!("{rendition}/{file} is not in the live window"));
    let (kind, hold, target) = {
        let st = output.lock();
        match st.rendition(&rendition) {
            Some(r) => (
                r.kind,
                hold_limit(r.window.target_duration()),
                r.window.target_duration(),
            ),
            None => return missing().into_response(),
        }
    };
    let content_type = match kind {
        TrackKind::Video => "video/mp4",
        TrackKind::Audio => "audio/mp4",
    };
    let found = wait_until(&state, &output, &rendition, hold, |st| {
        let Some(r) = st.rendition(&rendition).filter(|_| !st.closed) else {
            return ControlFlow::Break(None);
        };
        let w = &r.window;
        let timed = |chunks: Vec<Bytes>| (chunks, media_position(w, media));
        match media {
            MediaFile::Init(id) => ControlFlow::Break(w.init(id).map(|b| timed(vec![b.clone()]))),
            MediaFile::Segment(msn) => ControlFlow::Break(w.segment(msn).map(timed)),
            MediaFile::Part { msn, part } => match w.part(msn, part) {
                Some(bytes) => ControlFlow::Break(Some(timed(vec![bytes.clone()]))),
                // A GET for the preload-hinted part is held until the part is complete.
                None => match blocking::missing_part(w, msn, part) {
                    PartWait::Hold => ControlFlow::Continue(()),
                    PartWait::Never => ControlFlow::Break(None),
                },
            },
        }
    })
    .await;
    match found {
        Waited::Answer(Some((chunks, position))) => {
            let bytes = chunks.iter().map(|c| c.len() as u64).sum();
            let mut response = media_response(chunks, content_type);
            response.extensions_mut().insert(Delivered {
                rendition,
                kind,
                media: position,
                bytes,
                target_duration_s: target,
            });
            response
        }
        Waited::Answer(None) | Waited::TimedOut => missing().into_response(),
        Waited::AtCapacity => held_full(),
    }
}

/// Where `media` sits in the rendition's timeline and how long it plays, for the
/// watch time: `(msn, part or WHOLE, seconds)`; `None` for init segments.
fn media_position(w: &RenditionWindow, media: MediaFile) -> Option<(u64, u32, f64)> {
    let segment = |msn: u64| {
        w.open_segment()
            .filter(|s| s.msn == msn)
            .or_else(|| w.segments().find(|s| s.msn == msn))
    };
    match media {
        MediaFile::Init(_) => None,
        MediaFile::Segment(msn) => segment(msn).map(|s| (msn, WHOLE, s.duration)),
        MediaFile::Part { msn, part } => segment(msn)
            .and_then(|s| s.parts.get(part as usize))
            .map(|p| (msn, part, p.duration)),
    }
}

/// How [`wait_until`] ended.
enum Waited<T> {
    Answer(T),
    /// `hold` passed without an answer.
    TimedOut,
    /// The answer needed waiting and every place to wait in was taken.
    AtCapacity,
}

/// Runs `check` now and after every change of `rendition` until it breaks, or until
/// `hold` has passed. A request that has to wait takes one of the held-request places
/// first.
async fn wait_until<T>(
    state: &AppState,
    output: &StreamOutput,
    rendition: &str,
    hold: Duration,
    mut check: impl FnMut(&OutputState) -> ControlFlow<T>,
) -> Waited<T> {
    let deadline = Instant::now() + hold;
    // Subscribe under the same lock as the first check, so no change slips between
    // check and wait: to the rendition's own changes when it exists (renditions are
    // never removed), to every change of the stream until then.
    let (mut changes, mut first) = {
        let st = output.lock();
        let changes = st
            .rendition(rendition)
            .map_or_else(|| output.subscribe(), |r| r.subscribe());
        (changes, Some(check(&st)))
    };
    let mut place = None;
    loop {
        let checked = match first.take() {
            Some(checked) => checked,
            None => check(&output.lock()),
        };
        if let ControlFlow::Break(answer) = checked {
            return Waited::Answer(answer);
        }
        if place.is_none() {
            match state.limits.held_requests.try_hold() {
                Some(held) => place = Some(held),
                None => return Waited::AtCapacity,
            }
        }
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) | Err(_) => return Waited::TimedOut,
        }
    }
}

async fn stream_output(state: &AppState, slug: &str) -> Result<Arc<StreamOutput>, Problem> {
    if let Some(output) = state.outputs.get(slug).filter(|o| !o.is_closed()) {
        return Ok(output);
    }
    if state.directory.by_slug(slug).await.is_some() {
        Err(not_live(slug))
    } else {
        Err(Problem::not_found(format!(
            "there is no stream named {slug}"
        )))
    }
}

fn gone(slug: &str) -> Problem {
    Problem::not_found(format!("there is no stream named {slug}"))
}

fn not_live(slug: &str) -> Problem {
    Problem::not_found(format!("stream {slug} is not live"))
}

fn playlist_response(body: Bytes) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(PLAYLIST_TYPE),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(PLAYLIST_CACHE),
            ),
        ],
        body,
    )
        .into_response()
}

/// A media response from its chunks: a segment is sent as its parts, never copied
/// into one buffer.
fn media_response(chunks: Vec<Bytes>, content_type: &'static str) -> Response {
    let length: usize = chunks.iter().map(Bytes::len).sum();
    let body = match <[Bytes; 1]>::try_from(chunks) {
        Ok([one]) => Body::from(one),
        Err(chunks) => Body::from_stream(futures_util::stream::iter(
            chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
        )),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(MEDIA_CACHE)),
            (header::CONTENT_LENGTH, HeaderValue::from(length)),
        ],
        body,
    )
        .into_response()
}

//! On-demand HLS delivery: `/vod/<asset>/index.m3u8`, `/vod/<asset>/<rendition>.m3u8`
//! and `/vod/<asset>/<rendition>/{init-<id>.mp4,seg-<msn>.m4s}`, from the asset's
//! folder. Gated exactly like live: public and unlisted assets play for anyone, a
//! private one needs a playback token for it (`?token=`, carried into every URI of
//! the playlists, or `Authorization: Bearer`). Files are served only once the asset's
//! HLS rendition is ready, and never change after that.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::access::{bearer, query_token, with_token};
use super::analytics::WatchedAsset;
use super::problem::Problem;
use super::resource::{playlist_name, MediaFile};
use super::AppState;
use crate::analytics::figures::WHOLE;
use crate::analytics::tracker::Delivered;
use std::sync::Arc;

use super::vod_ready::hls_ready;
use crate::assets::Asset;
use crate::auth::tokens::Claims;
use crate::media::TrackKind;
use crate::recordings::{disk, hls_dir};
use crate::streams::Visibility;

const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// A finished presentation does not change; a minute keeps a deleted asset from
/// lingering in caches for long.
const PLAYLIST_CACHE: &str = "public, max-age=60";
const MEDIA_CACHE: &str = "public, max-age=31536000, immutable";

/// `GET /vod/{asset}/{file}`: the multivariant or a media playlist.
pub async fn playlist(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(name) = playlist_name(&file) else {
        return Problem::not_found(format!("no HLS resource named {file}")).into_response();
    };
    let token = query_token(query.as_deref());
    let asset = match admitted(&state, &id, token.or_else(|| bearer(&headers))).await {
        Ok((asset, _)) => asset,
        Err(problem) => return problem.into_response(),
    };
    let file_name = match name {
        None => crate::recordings::finalise::INDEX.to_string(),
        Some(rendition) => format!("{rendition}.m3u8"),
    };
    let path = hls_dir(&state.vod.assets.data_dir, &asset.id).join(file_name);
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(_) => {
            return Problem::not_found(format!("no HLS resource named {file}")).into_response()
        }
    };
    let private = asset.visibility == Visibility::Private;
    let body = match token {
        Some(token) if private => with_token(&text, token),
        _ => text,
    };
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PLAYLIST_TYPE),
        )],
        body,
    )
        .into_response();
    set_cache(&mut response, PLAYLIST_CACHE, private);
    response
}

/// `GET /vod/{asset}/{rendition}/{file}`: an init segment or a segment.
pub async fn media(
    State(state): State<AppState>,
    Path((id, rendition, file)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let missing = || Problem::not_found(format!("no HLS resource named {rendition}/{file}"));
    let (name, msn) = match (
        playlist_name(&format!("{rendition}.m3u8")),
        MediaFile::parse(&file),
    ) {
        (Some(Some(_)), Some(MediaFile::Init(id))) => (disk::init_name(id), None),
        (Some(Some(_)), Some(MediaFile::Segment(msn))) => (disk::segment_name(msn), Some(msn)),
        _ => return missing().into_response(),
    };
    let token = query_token(query.as_deref()).or_else(|| bearer(&headers));
    let (asset, claims) = match admitted(&state, &id, token).await {
        Ok(found) => found,
        Err(problem) => return problem.into_response(),
    };
    let dir = hls_dir(&state.vod.assets.data_dir, &asset.id);
    let Ok(file) = tokio::fs::File::open(dir.join(&rendition).join(name)).await else {
        return missing().into_response();
    };
    let Ok(meta) = file.metadata().await else {
        return missing().into_response();
    };
    let kind = if rendition.starts_with("audio") {
        TrackKind::Audio
    } else {
        TrackKind::Video
    };
    let content_type = match kind {
        TrackKind::Audio => "audio/mp4",
        TrackKind::Video => "video/mp4",
    };
    let timeline = state
        .vod
        .timelines
        .get(
            &asset.id,
            &rendition,
            &dir.join(format!("{rendition}.m3u8")),
        )
        .await;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_LENGTH, HeaderValue::from(meta.len())),
        ],
        body,
    )
        .into_response();
    set_cache(
        &mut response,
        MEDIA_CACHE,
        asset.visibility == Visibility::Private,
    );
    let seconds = msn.and_then(|msn| Some((msn, timeline.as_ref()?.segment(msn)?)));
    response.extensions_mut().insert(Delivered {
        rendition,
        kind,
        media: seconds.map(|(msn, s)| (msn, WHOLE, s)),
        bytes: meta.len(),
        target_duration_s: timeline.map_or(0, |t| t.target_duration_s),
    });
    response.extensions_mut().insert(WatchedAsset {
        asset_id: asset.id.clone(),
        claims,
    });
    response
}

/// The asset, when it exists, its HLS is ready and `token` lets this request in; with
/// the token's claims when it is a valid playback token for the asset (whatever its
/// visibility, so a public asset's viewers with tokens are counted by who they are).
async fn admitted(
    state: &AppState,
    id: &str,
    token: Option<&str>,
) -> Result<(Arc<Asset>, Option<Claims>), Problem> {
    let asset = state
        .vod
        .ready
        .get(&state.vod.assets.store, id)
        .await
        .map_err(|e| Problem::internal(&e))?
        .ok_or_else(|| Problem::not_found(format!("there is no asset {id}")))?;
    let claims = state
        .auth
        .playback_asset(&asset.id, asset.visibility, token)
        .map_err(Problem::from)?;
    if !hls_ready(&asset) {
        return Err(Problem::not_found(format!(
            "asset {id} has no on-demand HLS (yet): see its renditions"
        )));
    }
    let claims =
        claims.or_else(|| token.and_then(|t| state.auth.playback_asset_claims(&asset.id, t)));
    Ok((asset, claims))
}

fn set_cache(response: &mut Response, public: &'static str, private: bool) {
    let value = if private {
        HeaderValue::from_str(&public.replace("public", "private"))
            .unwrap_or(HeaderValue::from_static("private, no-cache"))
    } else {
        HeaderValue::from_static(public)
    };
    response.headers_mut().insert(header::CACHE_CONTROL, value);
}

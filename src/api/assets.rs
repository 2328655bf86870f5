//! `/api/v1/assets`: on-demand assets. A one-shot multipart upload for curl
//! (`curl -F file=@talk.mp4 -F title=Talk`), lists and reads by role, deletion, and
//! the audio downloads with `Range` support.

use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::io::AsyncWriteExt;

use super::access::{Authed, MaybeAuthed};
use super::body::{ApiQuery, Page, PageQuery};
use super::problem::{ApiError, Problem};
use super::vod::{self, asset_error, db_error, found_by, listed_for, may_manage};
use super::AppState;
use crate::assets::{files, safe_file_name, Asset, NewAsset, RenditionKind, RenditionState};
use crate::db;
use crate::streams::{Orientation, Projection, Visibility};

/// The form of `POST /api/v1/assets` (multipart/form-data).
#[derive(utoipa::ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct AssetForm {
    /// The media file (MP4, MOV, MKV, …), streamed to disk.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// At most 200 characters; default (absent or blank): the file's name.
    #[schema(nullable = false, max_length = 200)]
    pub title: Option<String>,
    /// Default: what the file's own spherical metadata (`sv3d`/`st3d`) says, else
    /// `equirect`. Not `dual-fisheye`: only a live stream is stitched.
    #[schema(schema_with = crate::api::openapi::fields::upload_projection)]
    pub projection: Option<Projection>,
    /// Default `private`.
    #[schema(nullable = false)]
    pub visibility: Option<Visibility>,
}

/// The longest text field of the form.
const MAX_FIELD: usize = 1024;

/// Checks and defaults of what a client says about a new asset (form fields, tus
/// metadata).
pub fn new_asset(
    owner_id: &str,
    filename: Option<&str>,
    title: Option<&str>,
    projection: Option<&str>,
    visibility: Option<&str>,
) -> Result<NewAsset, Problem> {
    let filename = filename
        .unwrap_or("upload")
        .chars()
        .take(255)
        .collect::<String>();
    let title = match title.map(str::trim) {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => {
            let stem = filename
                .rsplit_once('.')
                .map_or(filename.as_str(), |(s, _)| s);
            let stem = stem.trim();
            if stem.is_empty() {
                "Untitled".to_string()
            } else {
                stem.to_string()
            }
        }
    };
    if title.chars().count() > 200 {
        return Err(Problem::unprocessable(
            "title must be at most 200 characters",
        ));
    }
    let projection = match projection {
        None => None,
        // An upload is packaged as it is, never stitched: dual fisheye is a live
        // source only.
        Some(p) => Some(
            Projection::parse(p)
                .filter(|p| *p != Projection::DualFisheye)
                .ok_or_else(|| {
                    Problem::unprocessable(format!(
                "projection {p:?}: use flat, equirect, equirect-stereo-tb or equirect-stereo-sbs"
            ))
                })?,
        ),
    };
    let visibility = match visibility {
        None => Visibility::Private,
        Some(v) => Visibility::parse(v).ok_or_else(|| {
            Problem::unprocessable(format!("visibility {v:?}: use public, unlisted or private"))
        })?,
    };
    Ok(NewAsset {
        title,
        owner_id: owner_id.to_string(),
        visibility,
        projection,
        orientation: Orientation::default(),
        filename,
    })
}

fn too_large(max: u64) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Content Too Large",
        format!("the file is larger than this server accepts ({max} bytes)"),
    )
}

/// Streams `field` into `path`, at most `max` bytes; the file is fsynced.
async fn save_field(
    field: &mut Field<'_>,
    path: &std::path::Path,
    max: u64,
) -> Result<(), ApiError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let mut written = 0u64;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => return Err(Problem::bad_request(format!("the form broke off: {e}")).into()),
        };
        written += chunk.len() as u64;
        if written > max {
            return Err(too_large(max).into());
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| Problem::internal(&e))?;
    }
    file.sync_all().await.map_err(|e| Problem::internal(&e))?;
    Ok(())
}

async fn text_field(field: Field<'_>) -> Result<String, ApiError> {
    let bytes = field
        .bytes()
        .await
        .map_err(|e| Problem::bad_request(format!("the form broke off: {e}")))?;
    if bytes.len() > MAX_FIELD {
        return Err(Problem::unprocessable("a text field is longer than 1024 bytes").into());
    }
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Problem::unprocessable("a text field is not UTF-8").into())
}

/// Upload a file in one request (multipart/form-data, field `file`; broadcasters and
/// admins). The asset starts `preparing`; its audio renditions follow from a job.
#[utoipa::path(post, path = "/api/v1/assets", tag = "assets", operation_id = "create_asset",
    security(("bearer" = [])),
    request_body(content = AssetForm, content_type = "multipart/form-data"),
    responses((status = 201, body = Asset, headers(("Location" = String, description = "the asset's URL"))),
              (status = 400, description = "the form is not valid multipart or broke off"),
              (status = 403, description = "viewers cannot upload"),
              (status = 413, description = "the file is larger than `uploads.max_bytes`"),
              (status = 415, description = "the body is not multipart/form-data"),
              (status = 422, description = "no `file` field, an unknown field, or a bad title, projection or visibility"),
              (status = 500)))]
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    vod::uploader(&caller)?;
    let mut form = form.map_err(|_| {
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "send the file as multipart/form-data with a `file` field",
        )
    })?;
    let dir = state.vod.uploads.dir().to_path_buf();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let received = dir.join(db::new_id("mp"));
    let result = async {
        let (mut filename, mut title, mut projection, mut visibility) = (None, None, None, None);
        let mut got_file = false;
        loop {
            let mut field = match form.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => {
                    return Err(ApiError::from(Problem::bad_request(format!(
                        "the form is not valid multipart: {e}"
                    ))))
                }
            };
            match field.name().unwrap_or_default() {
                "file" if !got_file => {
                    filename = field.file_name().map(str::to_string);
                    save_field(&mut field, &received, state.vod.limits.max_bytes).await?;
                    got_file = true;
                }
                "title" if title.is_none() => title = Some(text_field(field).await?),
                "projection" if projection.is_none() => projection = Some(text_field(field).await?),
                "visibility" if visibility.is_none() => visibility = Some(text_field(field).await?),
                other => {
                    return Err(Problem::unprocessable(format!(
                        "unexpected form field {other:?} (known: file, title, projection, visibility, each once)"
                    ))
                    .into())
                }
            }
        }
        if !got_file {
            return Err(Problem::unprocessable("the form needs a `file` field").into());
        }
        let new = new_asset(
            &caller.user_id,
            filename.as_deref(),
            title.as_deref(),
            projection.as_deref(),
            visibility.as_deref(),
        )?;
        state
            .vod
            .assets
            .create_from_file(new, &received)
            .await
            .map_err(asset_error)
    }
    .await;
    let asset = match result {
        Ok(asset) => asset,
        Err(e) => {
            let _ = tokio::fs::remove_file(&received).await;
            return Err(e);
        }
    };
    let location = format!("/api/v1/assets/{}", asset.id);
    let mut response = (StatusCode::CREATED, Json(asset)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// List assets by id: public ones, plus for a broadcaster their own and for an admin all.
#[utoipa::path(get, path = "/api/v1/assets", tag = "assets", operation_id = "list_assets",
    params(PageQuery), security((), ("bearer" = [])),
    responses((status = 200, body = Page<Asset>),
              (status = 400, description = "`limit` outside 1..=100, or an unknown query parameter"),
              (status = 500)))]
pub async fn list(
    State(state): State<AppState>,
    MaybeAuthed(caller): MaybeAuthed,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<Asset>>, ApiError> {
    let limit = page.limit()?;
    let (items, next_cursor) = state
        .vod
        .assets
        .store
        .list(page.cursor.as_deref(), limit, |a| {
            listed_for(caller.as_ref(), a)
        })
        .await
        .map_err(db_error)?;
    Ok(Json(Page { items, next_cursor }))
}

/// The asset if `caller` may see it, else 404.
async fn visible(
    state: &AppState,
    caller: Option<&crate::auth::request::Caller>,
    id: &str,
) -> Result<Asset, ApiError> {
    state
        .vod
        .assets
        .store
        .get(id)
        .await
        .map_err(db_error)?
        .filter(|a| found_by(caller, a))
        .ok_or_else(|| Problem::not_found(format!("there is no asset {id}")).into())
}

/// One asset with its renditions.
#[utoipa::path(get, path = "/api/v1/assets/{asset}", tag = "assets", operation_id = "get_asset",
    security((), ("bearer" = [])),
    params(("asset" = String, Path, description = "asset id")),
    responses((status = 200, body = Asset), (status = 404), (status = 500)))]
pub async fn get(
    State(state): State<AppState>,
    MaybeAuthed(caller): MaybeAuthed,
    Path(id): Path<String>,
) -> Result<Json<Asset>, ApiError> {
    Ok(Json(visible(&state, caller.as_ref(), &id).await?))
}

/// Delete an asset with its files and jobs (owner or admin).
#[utoipa::path(delete, path = "/api/v1/assets/{asset}", tag = "assets", operation_id = "delete_asset",
    security(("bearer" = [])),
    params(("asset" = String, Path, description = "asset id")),
    responses((status = 204, description = "deleted"),
              (status = 403, description = "neither the owner nor an admin"),
              (status = 404), (status = 500)))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let asset = visible(&state, Some(&caller), &id).await?;
    if !may_manage(&caller, &asset) {
        return Err(Problem::forbidden("only the asset's owner or an admin may delete it").into());
    }
    state
        .vod
        .assets
        .delete(&asset.id)
        .await
        .map_err(asset_error)?;
    state.vod.ready.forget(&asset.id);
    Ok(StatusCode::NO_CONTENT)
}

/// A `Range` the file cannot satisfy (416).
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A single byte range of a `size`-byte file from a `Range` header (RFC 9110 14.2):
/// `Ok(None)` for the whole file (no header, several ranges, or a unit other than
/// bytes), `Err` when it cannot be satisfied.
pub fn byte_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let num = |s: &str| crate::uploads::parse_u64(s);
    let (start, end) = match (start.trim(), end.trim()) {
        ("", "") => return Ok(None),
        ("", suffix) => {
            let n = num(suffix).ok_or(Unsatisfiable)?;
            if n == 0 || size == 0 {
                return Err(Unsatisfiable);
            }
            (size.saturating_sub(n), size - 1)
        }
        (s, "") => (num(s).ok_or(Unsatisfiable)?, size.saturating_sub(1)),
        (s, e) => {
            let (s, e) = (num(s).ok_or(Unsatisfiable)?, num(e).ok_or(Unsatisfiable)?);
            if e < s {
                return Ok(None);
            }
            (s, e.min(size.saturating_sub(1)))
        }
    };
    if start >= size {
        return Err(Unsatisfiable);
    }
    Ok(Some((start, end)))
}

async fn download(
    state: AppState,
    caller: Option<crate::auth::request::Caller>,
    id: String,
    headers: HeaderMap,
    kind: RenditionKind,
    playback_token: Option<&str>,
) -> Result<Response, ApiError> {
    // A playback token for the asset lets its holder in even where the asset is not
    // listed to them (a private asset shared with a link).
    let token_holder =
        playback_token.is_some_and(|t| state.auth.playback_asset_claims(&id, t).is_some());
    let asset = if token_holder {
        state
            .vod
            .assets
            .store
            .get(&id)
            .await
            .map_err(db_error)?
            .ok_or_else(|| Problem::not_found(format!("there is no asset {id}")))?
    } else {
        visible(&state, caller.as_ref(), &id).await?
    };
    let may = token_holder
        || asset.visibility == Visibility::Public
        || caller.as_ref().is_some_and(|c| may_manage(c, &asset));
    if !may {
        return Err(Problem::forbidden(
            "only the asset's owner, an admin or the holder of a playback token for it may download it",
        )
        .into());
    }
    let rendition = asset.renditions.iter().find(|r| r.kind == kind);
    match rendition.map(|r| (r.state, r.message.clone())) {
        Some((RenditionState::Ready, _)) => {}
        Some((RenditionState::Errored, message)) => {
            return Err(Problem::conflict(format!(
                "there is no {}: {}",
                kind.file_name(),
                message.unwrap_or_else(|| "its extraction failed".into())
            ))
            .into())
        }
        _ => {
            return Err(Problem::conflict(format!(
                "{} is not ready yet; try again when the asset is ready",
                kind.file_name()
            ))
            .into())
        }
    }
    let path = files::rendition(&state.vod.assets.data_dir, &asset.id, kind);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| Problem::internal(&e))?
        .len();
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let ext = kind.file_name().rsplit('.').next().unwrap_or("bin");
    let disposition = format!(
        "attachment; filename=\"{}\"",
        safe_file_name(&asset.title, ext)
    );
    let (status, start, len) = match byte_range(range, size) {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Err(Unsatisfiable) => {
            let mut r = Problem::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "Range Not Satisfiable",
                format!("the file has {size} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| Problem::internal(&e))?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file.take(len)));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kind.content_type()),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let value = format!("bytes {start}-{}/{size}", start + len - 1);
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

/// The audio as M4A (AAC; copied when the source's audio is AAC). `Range` requests
/// get 206.
#[utoipa::path(get, path = "/api/v1/assets/{asset}/audio.m4a", tag = "assets",
    operation_id = "download_asset_m4a", security((), ("bearer" = [])),
    params(("asset" = String, Path, description = "asset id"),
           ("token" = Option<String>, Query, description = "a playback token for this asset \
               (`POST /api/v1/assets/{asset}/playback-token`): lets its holder download without signing in"),
           ("Range" = Option<String>, Header, description = "one byte range, e.g. `bytes=0-1023`")),
    responses((status = 200, description = "the file", content_type = "audio/mp4", body = super::uploads::FileBytes),
              (status = 206, description = "the requested range", content_type = "audio/mp4", body = super::uploads::FileBytes),
              (status = 403, description = "not public, and neither the owner, an admin, nor a playback token for it"),
              (status = 404), (status = 409, description = "not ready yet, or its extraction failed"),
              (status = 416, description = "the range is outside the file"), (status = 500)))]
pub async fn download_m4a(
    State(state): State<AppState>,
    MaybeAuthed(caller): MaybeAuthed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = super::access::query_token(query.as_deref());
    download(state, caller, id, headers, RenditionKind::AudioM4a, token).await
}

/// The audio as MP3 (192 kb/s CBR). `Range` requests get 206.
#[utoipa::path(get, path = "/api/v1/assets/{asset}/audio.mp3", tag = "assets",
    operation_id = "download_asset_mp3", security((), ("bearer" = [])),
    params(("asset" = String, Path, description = "asset id"),
           ("token" = Option<String>, Query, description = "a playback token for this asset \
               (`POST /api/v1/assets/{asset}/playback-token`): lets its holder download without signing in"),
           ("Range" = Option<String>, Header, description = "one byte range, e.g. `bytes=0-1023`")),
    responses((status = 200, description = "the file", content_type = "audio/mpeg", body = super::uploads::FileBytes),
              (status = 206, description = "the requested range", content_type = "audio/mpeg", body = super::uploads::FileBytes),
              (status = 403, description = "not public, and neither the owner, an admin, nor a playback token for it"),
              (status = 404), (status = 409, description = "not ready yet, or its extraction failed"),
              (status = 416, description = "the range is outside the file"), (status = 500)))]
pub async fn download_mp3(
    State(state): State<AppState>,
    MaybeAuthed(caller): MaybeAuthed,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = super::access::query_token(query.as_deref());
    download(state, caller, id, headers, RenditionKind::AudioMp3, token).await
}

#[cfg(test)]
mod tests {
    use super::{byte_range, Unsatisfiable};

    #[test]
    fn ranges() {
        assert_eq!(byte_range(None, 100), Ok(None));
        assert_eq!(byte_range(Some("bytes=0-9"), 100), Ok(Some((0, 9))));
        assert_eq!(byte_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(byte_range(Some("bytes=-10"), 100), Ok(Some((90, 99))));
        assert_eq!(byte_range(Some("bytes=50-500"), 100), Ok(Some((50, 99))));
        assert_eq!(byte_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(byte_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(byte_range(Some("bytes=100-"), 100), Err(Unsatisfiable));
        assert_eq!(byte_range(Some("bytes=-0"), 100), Err(Unsatisfiable));
        assert_eq!(byte_range(Some("bytes=x-1"), 100), Err(Unsatisfiable));
    }
}

/// A playback token for one asset, and its playlist URL.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AssetPlaybackToken {
    /// JWT, audience `playback`, bound to the asset.
    pub token: String,
    pub expires_in: u64,
    /// The on-demand multivariant playlist URL carrying the token.
    pub playback_url: String,
}

/// A short-lived playback token for one asset's on-demand HLS (`/vod/<asset>/…`).
/// Private assets: their owner and admins; public and unlisted ones: any account
/// (they play without one anyway).
#[utoipa::path(post, path = "/api/v1/assets/{asset}/playback-token", tag = "assets",
    operation_id = "create_asset_playback_token", security(("bearer" = [])),
    params(("asset" = String, Path, description = "asset id")),
    responses((status = 200, body = AssetPlaybackToken),
              (status = 401, description = "no or an invalid access token", body = Problem, content_type = "application/problem+json"),
              (status = 404, description = "no such asset, or not one the caller may see", body = Problem, content_type = "application/problem+json"),
              (status = 500, body = Problem, content_type = "application/problem+json")))]
pub async fn playback_token(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<AssetPlaybackToken>, ApiError> {
    let asset = visible(&state, Some(&caller), &id).await?;
    let token = state
        .auth
        .asset_playback_token(&caller.user_id, &asset.id)
        .map_err(|e| Problem::internal(&e))?;
    Ok(Json(AssetPlaybackToken {
        playback_url: format!("/vod/{}/index.m3u8?token={token}", asset.id),
        token,
        expires_in: state.auth.config.playback_ttl_s,
    }))
}

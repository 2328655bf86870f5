//! `/api/v1/uploads`: the tus 1.0 resumable upload protocol (core, creation,
//! termination, expiration; see [`crate::uploads`] for why it is our own) for
//! broadcasters and admins. When the last byte arrives the upload becomes an asset
//! and its extraction is queued; the answer's `Panocast-Asset` header names it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::access::Authed;
use super::assets::new_asset;
use super::problem::{ApiError, Problem};
use super::vod::{self, asset_error, Vod};
use super::AppState;
use crate::assets::events::AssetEvent;
use crate::auth::request::Caller;
use crate::uploads::checksum::Expected;
use crate::uploads::store::Upload;
use crate::uploads::{parse_metadata, parse_u64, OFFSET_OCTET_STREAM, TUS_EXTENSIONS, TUS_VERSION};

pub const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
pub const TUS_VERSION_H: HeaderName = HeaderName::from_static("tus-version");
pub const TUS_EXTENSION: HeaderName = HeaderName::from_static("tus-extension");
pub const TUS_MAX_SIZE: HeaderName = HeaderName::from_static("tus-max-size");
pub const TUS_CHECKSUM_ALGORITHM: HeaderName = HeaderName::from_static("tus-checksum-algorithm");
pub const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
pub const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
pub const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
pub const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
pub const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
pub const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
/// The asset a completed upload became (`/api/v1/assets/<id>`).
pub const PANOCAST_ASSET: HeaderName = HeaderName::from_static("panocast-asset");

/// The `Tus-Resumable` value every request but OPTIONS carries (for the document).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub enum TusResumable {
    #[schema(rename = "1.0.0")]
    V1_0_0,
}

/// The form of `Upload-Metadata` (for the document): comma-separated `key` or
/// `key base64value` pairs.
#[derive(utoipa::ToSchema)]
#[schema(
    value_type = String,
    pattern = "^[A-Za-z0-9._~-]+( ([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)?(,[A-Za-z0-9._~-]+( ([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?)?)*$"
)]
#[allow(dead_code)]
pub struct TusMetadata(String);

/// Bytes of a file: a tus PATCH body, an audio download (for the document).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct FileBytes(Vec<u8>);

/// Every header a browser client must be allowed to send or read (CORS).
pub const TUS_HEADERS: [HeaderName; 11] = [
    TUS_RESUMABLE,
    TUS_VERSION_H,
    TUS_EXTENSION,
    TUS_MAX_SIZE,
    TUS_CHECKSUM_ALGORITHM,
    UPLOAD_CHECKSUM,
    UPLOAD_LENGTH,
    UPLOAD_OFFSET,
    UPLOAD_METADATA,
    UPLOAD_EXPIRES,
    PANOCAST_ASSET,
];

fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// 400 without `Tus-Resumable`, 412 unless it is 1.0.0.
fn check_version(headers: &HeaderMap) -> Result<(), ApiError> {
    match header_str(headers, &TUS_RESUMABLE) {
        Some(TUS_VERSION) => return Ok(()),
        None if !headers.contains_key(TUS_RESUMABLE) => {
            return Err(Problem::bad_request("send Tus-Resumable: 1.0.0 (a tus request)").into())
        }
        _ => {}
    }
    let mut r = Problem::new(
        StatusCode::PRECONDITION_FAILED,
        "Precondition Failed",
        "send Tus-Resumable: 1.0.0 (the only tus version this server speaks)",
    )
    .into_response();
    r.headers_mut()
        .insert(TUS_VERSION_H, HeaderValue::from_static(TUS_VERSION));
    Err(ApiError(Box::new(r)))
}

/// RFC 9110 HTTP-date of Unix seconds.
fn http_date(secs: i64) -> Option<HeaderValue> {
    let t = chrono::DateTime::from_timestamp(secs, 0)?;
    HeaderValue::from_str(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).ok()
}

/// `response` with the headers every tus answer carries.
fn tus(mut response: Response, upload: Option<&Upload>, offset: Option<u64>) -> Response {
    let h = response.headers_mut();
    h.insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(offset) = offset {
        h.insert(UPLOAD_OFFSET, HeaderValue::from(offset));
    }
    if let Some(u) = upload {
        if u.asset_id.is_none() {
            if let Some(v) = http_date(u.expires_at) {
                h.insert(UPLOAD_EXPIRES, v);
            }
        }
        if let Some(v) = u
            .asset_id
            .as_ref()
            .and_then(|a| HeaderValue::from_str(&format!("/api/v1/assets/{a}")).ok())
        {
            h.insert(PANOCAST_ASSET, v);
        }
    }
    response
}

/// The upload if `caller` made it (or is an admin); 404 otherwise.
async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<Upload, ApiError> {
    state
        .vod
        .uploads
        .get(id)
        .await
        .map_err(vod::db_error)?
        .filter(|u| caller.is_admin() || u.owner_id == caller.user_id)
        .ok_or_else(|| Problem::not_found(format!("there is no upload {id}")).into())
}

/// What the server supports (tus discovery); no token needed.
#[utoipa::path(options, path = "/api/v1/uploads", tag = "uploads", operation_id = "tus_options",
    responses((status = 204, description = "Tus-Version, Tus-Extension and Tus-Max-Size",
        headers(("Tus-Resumable" = String), ("Tus-Version" = String), ("Tus-Extension" = String),
                ("Tus-Max-Size" = u64), ("Tus-Checksum-Algorithm" = String)))))]
pub async fn options(State(state): State<AppState>) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let h = r.headers_mut();
    h.insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
    h.insert(TUS_VERSION_H, HeaderValue::from_static(TUS_VERSION));
    h.insert(TUS_EXTENSION, HeaderValue::from_static(TUS_EXTENSIONS));
    h.insert(TUS_MAX_SIZE, HeaderValue::from(state.vod.limits.max_bytes));
    h.insert(
        TUS_CHECKSUM_ALGORITHM,
        HeaderValue::from_static(crate::uploads::checksum::ALGORITHMS),
    );
    r
}

/// tus discovery (`OPTIONS /api/v1/uploads` without `Access-Control-Request-Method`)
/// reaches [`options`]; a browser's preflight goes on to the CORS layer.
pub async fn discovery(
    state: State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_discovery = req.method() == axum::http::Method::OPTIONS
        && req.uri().path() == "/api/v1/uploads"
        && !req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_discovery {
        return options(state).await;
    }
    next.run(req).await
}

/// Start a resumable upload (tus creation). `Upload-Metadata` may carry `filename`,
/// `title`, `projection` and `visibility` (base64 values). An `Upload-Length` of 0
/// makes the asset at once.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", operation_id = "tus_create",
    security(("bearer" = [])),
    params(("Tus-Resumable" = TusResumable, Header, description = "`1.0.0`"),
           ("Upload-Length" = u64, Header, description = "the file's size in bytes"),
           ("Upload-Metadata" = Option<TusMetadata>, Header, description = "tus metadata: `key base64,…`")),
    responses((status = 201, description = "created; PATCH the bytes to Location",
                  headers(("Location" = String), ("Upload-Expires" = String), ("Tus-Resumable" = String))),
              (status = 400, description = "no Tus-Resumable, no or bad Upload-Length, Upload-Defer-Length, or bad Upload-Metadata"),
              (status = 403, description = "viewers cannot upload"),
              (status = 412, description = "Tus-Resumable is not 1.0.0"),
              (status = 413, description = "Upload-Length is larger than `uploads.max_bytes`"),
              (status = 422, description = "a bad title, projection or visibility in the metadata"),
              (status = 500)))]
pub async fn create(
    State(state): State<AppState>,
    Authed(caller): Authed,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    vod::uploader(&caller)?;
    check_version(&headers)?;
    if headers.contains_key(UPLOAD_DEFER_LENGTH) {
        return Err(Problem::bad_request(
            "Upload-Defer-Length is not supported; send Upload-Length",
        )
        .into());
    }
    let length = header_str(&headers, &UPLOAD_LENGTH)
        .and_then(parse_u64)
        .ok_or_else(|| Problem::bad_request("send Upload-Length: the file's size in bytes"))?;
    let max = state.vod.limits.max_bytes;
    if length > max {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Content Too Large",
            format!("the file is larger than this server accepts ({max} bytes)"),
        )
        .into());
    }
    let metadata = header_str(&headers, &UPLOAD_METADATA)
        .unwrap_or("")
        .to_string();
    if headers.contains_key(UPLOAD_METADATA) && header_str(&headers, &UPLOAD_METADATA).is_none() {
        return Err(Problem::bad_request("Upload-Metadata is not ASCII").into());
    }
    let fields = parse_metadata(&metadata).map_err(Problem::bad_request)?;
    // Checked now, so a bad projection is refused before any byte is sent.
    new_from_metadata(&caller.user_id, &fields)?;
    let upload = state
        .vod
        .uploads
        .create(
            &caller.user_id,
            length,
            &metadata,
            state.vod.limits.expire_after_s,
        )
        .await
        .map_err(|e| Problem::internal(&e))?;
    state.vod.assets.bus.publish(AssetEvent::UploadCreated {
        upload_id: upload.id.clone(),
        owner_id: caller.user_id.clone(),
        length,
    });
    let upload = if length == 0 {
        complete(&state.vod, upload).await?
    } else {
        upload
    };
    let mut r = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/uploads/{}", upload.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(tus(r, Some(&upload), Some(0)))
}

fn new_from_metadata(
    owner: &str,
    fields: &std::collections::BTreeMap<String, String>,
) -> Result<crate::assets::NewAsset, Problem> {
    let get = |k: &str| fields.get(k).map(String::as_str);
    new_asset(
        owner,
        get("filename"),
        get("title"),
        get("projection"),
        get("visibility"),
    )
}

/// The last byte is in: the file becomes an asset with its job queued.
async fn complete(vod: &Vod, upload: Upload) -> Result<Upload, ApiError> {
    let fields = parse_metadata(&upload.metadata).unwrap_or_default();
    let new = new_from_metadata(&upload.owner_id, &fields)?;
    let asset = vod
        .assets
        .create_from_file(new, &vod.uploads.path(&upload.id))
        .await
        .map_err(asset_error)?;
    vod.uploads
        .set_asset(&upload.id, &asset.id)
        .await
        .map_err(vod::db_error)?;
    vod.assets.bus.publish(AssetEvent::UploadCompleted {
        upload_id: upload.id.clone(),
        asset_id: asset.id.clone(),
    });
    Ok(Upload {
        asset_id: Some(asset.id),
        ..upload
    })
}

/// How far an upload is (tus core): `Upload-Offset` and `Upload-Length`.
#[utoipa::path(head, path = "/api/v1/uploads/{upload}", tag = "uploads", operation_id = "tus_head",
    security(("bearer" = [])),
    params(("upload" = String, Path, description = "upload id"),
           ("Tus-Resumable" = TusResumable, Header, description = "`1.0.0`")),
    responses((status = 400, description = "no Tus-Resumable"),
              (status = 200, description = "the offset",
                  headers(("Upload-Offset" = u64), ("Upload-Length" = u64), ("Tus-Resumable" = String))),
              (status = 404, description = "no such upload, or it expired"),
              (status = 412, description = "Tus-Resumable is not 1.0.0"), (status = 500)))]
pub async fn head(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let upload = owned(&state, &caller, &id).await?;
    let offset = state.vod.uploads.offset(&upload).await;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(UPLOAD_LENGTH, HeaderValue::from(upload.length));
    if let Ok(v) = HeaderValue::from_str(&upload.metadata) {
        if !upload.metadata.is_empty() {
            r.headers_mut().insert(UPLOAD_METADATA, v);
        }
    }
    Ok(tus(r, Some(&upload), Some(offset)))
}

/// Releases an upload's PATCH lock when dropped.
struct Busy<'a>(&'a Vod, &'a str);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.unlock_upload(self.1);
    }
}

/// Append bytes at `Upload-Offset` (tus core). The bytes reach the disk before the
/// answer; an interrupted PATCH keeps what arrived (HEAD says how much). With
/// `Upload-Checksum: sha1|sha256 <base64 digest>` (tus checksum) the body is kept only
/// if it matches: 460 otherwise, 400 for another algorithm.
#[utoipa::path(patch, path = "/api/v1/uploads/{upload}", tag = "uploads", operation_id = "tus_patch",
    security(("bearer" = [])),
    params(("upload" = String, Path, description = "upload id"),
           ("Tus-Resumable" = TusResumable, Header, description = "`1.0.0`"),
           ("Upload-Offset" = u64, Header, description = "where these bytes start; must be the current offset")),
    request_body(content = FileBytes, content_type = "application/offset+octet-stream"),
    responses((status = 204, description = "stored; the new offset",
                  headers(("Upload-Offset" = u64), ("Tus-Resumable" = String),
                          ("Panocast-Asset" = String, description = "once complete: the asset made of it"))),
              (status = 400, description = "no Tus-Resumable, no or bad Upload-Offset, a bad Upload-Checksum, or more bytes than Upload-Length"),
              (status = 404, description = "no such upload, or it expired"),
              (status = 409, description = "Upload-Offset is not the current offset, or another PATCH is writing"),
              (status = 412, description = "Tus-Resumable is not 1.0.0"),
              (status = 415, description = "the body is not application/offset+octet-stream"),
              (status = 422, description = "complete, but a bad title, projection or visibility in the metadata"),
              (status = 460, description = "the body does not match Upload-Checksum: nothing of it was kept"),
              (status = 500)))]
pub async fn patch(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let upload = owned(&state, &caller, &id).await?;
    let content_type = header_str(&headers, &header::CONTENT_TYPE).unwrap_or("");
    if !content_type.eq_ignore_ascii_case(OFFSET_OCTET_STREAM) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "send the bytes as Content-Type: application/offset+octet-stream",
        )
        .into());
    }
    let claimed = header_str(&headers, &UPLOAD_OFFSET)
        .and_then(parse_u64)
        .ok_or_else(|| Problem::bad_request("send Upload-Offset: where these bytes start"))?;
    let mut checksum = match header_str(&headers, &UPLOAD_CHECKSUM) {
        Some(v) => Some(Expected::parse(v).map_err(Problem::bad_request)?),
        None if headers.contains_key(UPLOAD_CHECKSUM) => {
            return Err(Problem::bad_request("Upload-Checksum is not ASCII").into())
        }
        None => None,
    };
    let vod = &state.vod;
    if !vod.lock_upload(&upload.id) {
        return Err(
            Problem::conflict("another PATCH is writing this upload; HEAD it and resume").into(),
        );
    }
    let upload_id = upload.id.clone();
    let _busy = Busy(vod, &upload_id);
    let offset = vod.uploads.offset(&upload).await;
    if claimed != offset {
        let r = Problem::conflict(format!(
            "Upload-Offset is {claimed} but the upload has {offset} bytes; resume from {offset}"
        ))
        .into_response();
        return Err(ApiError(Box::new(tus(r, Some(&upload), Some(offset)))));
    }
    if upload.asset_id.is_some() {
        return Ok(tus(
            StatusCode::NO_CONTENT.into_response(),
            Some(&upload),
            Some(offset),
        ));
    }
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(vod.uploads.path(&upload.id))
        .await
        .map_err(|e| Problem::internal(&e))?;
    let mut written = offset;
    let mut stream = body.into_data_stream();
    let mut outcome: Result<(), Problem> = Ok(());
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // The client went away: keep what arrived.
                outcome = Err(Problem::bad_request(format!("the body broke off: {e}")));
                break;
            }
        };
        let room = upload.length - written;
        let take = (chunk.len() as u64).min(room) as usize;
        if let Err(e) = file.write_all(&chunk[..take]).await {
            outcome = Err(Problem::internal(&e));
            break;
        }
        if let Some(c) = checksum.as_mut() {
            c.update(&chunk[..take]);
        }
        written += take as u64;
        if take < chunk.len() {
            outcome = Err(Problem::bad_request("the body goes past Upload-Length"));
            break;
        }
    }
    if let Some(c) = checksum {
        // A body that broke off cannot be checked either: with a checksum, a PATCH
        // is kept whole or not at all.
        if outcome.is_err() || !c.matches() {
            file.set_len(offset)
                .await
                .map_err(|e| Problem::internal(&e))?;
            file.sync_data().await.map_err(|e| Problem::internal(&e))?;
            outcome?;
            let r = Problem::new(
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
                "Checksum Mismatch",
                format!("the body does not match Upload-Checksum; nothing was kept, resume from {offset}"),
            )
            .into_response();
            return Err(ApiError(Box::new(tus(r, Some(&upload), Some(offset)))));
        }
    }
    file.sync_data().await.map_err(|e| Problem::internal(&e))?;
    drop(file);
    outcome?;
    let upload = if written == upload.length {
        complete(vod, upload).await?
    } else {
        upload
    };
    Ok(tus(
        StatusCode::NO_CONTENT.into_response(),
        Some(&upload),
        Some(written),
    ))
}

/// Abandon an upload (tus termination): its bytes are deleted. A completed upload's
/// asset stays.
#[utoipa::path(delete, path = "/api/v1/uploads/{upload}", tag = "uploads", operation_id = "tus_delete",
    security(("bearer" = [])),
    params(("upload" = String, Path, description = "upload id"),
           ("Tus-Resumable" = TusResumable, Header, description = "`1.0.0`")),
    responses((status = 204, description = "deleted", headers(("Tus-Resumable" = String))),
              (status = 400, description = "no Tus-Resumable"),
              (status = 404, description = "no such upload, or it expired"),
              (status = 409, description = "a PATCH is writing it"),
              (status = 412, description = "Tus-Resumable is not 1.0.0"), (status = 500)))]
pub async fn delete(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_version(&headers)?;
    let upload = owned(&state, &caller, &id).await?;
    let vod = &state.vod;
    if !vod.lock_upload(&upload.id) {
        return Err(Problem::conflict("a PATCH is writing this upload").into());
    }
    let _busy = Busy(vod, &upload.id);
    // A completed upload's file is the asset's now (moved), so only the row goes.
    vod.uploads
        .delete(&upload.id)
        .await
        .map_err(vod::db_error)?;
    Ok(tus(StatusCode::NO_CONTENT.into_response(), None, None))
}

//! Token signing keys for admins: which key signs, which retired ones still verify, and
//! rotation (issue 18 item 5). Key material never leaves the server; the public halves
//! are at `/.well-known/jwks.json`.

use axum::extract::State;
use axum::Json;

use super::access::Authed;
use super::problem::{ApiError, Problem};
use super::AppState;
use crate::auth::tokens::{RotateError, SigningKeysInfo};

/// The current signing key's id and the retired keys still accepted (admins).
#[utoipa::path(get, path = "/api/v1/admin/signing-keys", tag = "admin", operation_id = "get_signing_keys",
    security(("bearer" = [])),
    responses((status = 200, body = SigningKeysInfo),
              (status = 401, description = "no valid access token"),
              (status = 403, description = "not an admin")))]
pub async fn get(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<SigningKeysInfo>, ApiError> {
    if !caller.is_admin() {
        return Err(Problem::forbidden("only admins see the signing keys").into());
    }
    Ok(Json(state.auth.keys.info()))
}

/// Starts signing with a new key. Tokens signed by the old one keep working until
/// they expire, and its public half stays in the JWKS until then (admins; EdDSA only).
#[utoipa::path(post, path = "/api/v1/admin/signing-keys/rotate", tag = "admin", operation_id = "rotate_signing_key",
    security(("bearer" = [])),
    responses((status = 200, body = SigningKeysInfo),
              (status = 401, description = "no valid access token"),
              (status = 403, description = "not an admin"),
              (status = 409, description = "HS256: the shared secret is rotated in the config"),
              (status = 500)))]
pub async fn rotate(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<SigningKeysInfo>, ApiError> {
    if !caller.is_admin() {
        return Err(Problem::forbidden("only admins rotate the signing key").into());
    }
    // Key files are written and synced: off the async workers.
    let auth = state.auth.clone();
    let rotated = tokio::task::spawn_blocking(move || auth.keys.rotate())
        .await
        .map_err(|e| Problem::internal(&e))?;
    match rotated {
        Ok(info) => Ok(Json(info)),
        Err(e @ RotateError::SharedSecret) => Err(Problem::conflict(e.to_string()).into()),
        Err(RotateError::Key(e)) => Err(Problem::internal(&e).into()),
    }
}

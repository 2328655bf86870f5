//! `GET /api/v1/auth/config`: what a sign-in page needs to know before anyone signs
//! in (whether it may offer sign-up), without a token.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// The server's sign-in settings.
#[derive(Serialize, ToSchema)]
pub struct AuthSettings {
    /// Anyone may create a viewer account (`POST /api/v1/auth/register`).
    pub open_registration: bool,
    /// Lifetime of access tokens in seconds: refresh before it runs out.
    pub access_token_ttl_s: u64,
}

/// How accounts sign in and up here (public).
#[utoipa::path(get, path = "/api/v1/auth/config", tag = "auth", operation_id = "get_auth_config",
    security(()),
    responses((status = 200, body = AuthSettings)))]
pub async fn auth_config(State(state): State<AppState>) -> Json<AuthSettings> {
    Json(AuthSettings {
        open_registration: state.auth.config.open_registration,
        access_token_ttl_s: state.auth.config.access_ttl_s,
    })
}

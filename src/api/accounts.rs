//! `/api/v1/auth/*` and `/api/v1/users*`: login, token refresh and logout, accounts.
//!
//! Accounts are created by admins (`POST /api/v1/users`) or, when
//! `auth.open_registration` is set, by anyone as `viewer` (`POST /api/v1/auth/register`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Authed, ClientAddr};
use super::body::{ApiJson, ApiQuery, Page, PageQuery};
use super::problem::{too_many_requests, ApiError, Problem};
use super::AppState;
use crate::auth::accounts::{self, AccountError, RefreshRefusal, User};
use crate::auth::request::Attempt;
use crate::auth::Role;

/// Any strings: a name or password that cannot exist is a 401 like a wrong one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 3–64 characters `a-z0-9._-`.
    #[schema(pattern = "^[a-z0-9._-]{3,64}$", min_length = 3, max_length = 64)]
    pub username: String,
    /// 10–256 characters.
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
    pub role: Role,
    /// Where mail for the account goes; optional.
    #[schema(format = Email, max_length = 254)]
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// 3–64 characters `a-z0-9._-`.
    #[schema(pattern = "^[a-z0-9._-]{3,64}$", min_length = 3, max_length = 64)]
    pub username: String,
    /// 10–256 characters.
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
    /// Where mail for the account goes; optional.
    #[schema(format = Email, max_length = 254)]
    #[serde(default)]
    pub email: Option<String>,
}

/// Body of `PATCH /api/v1/users/{user}`: what to change; absent fields stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default)]
    pub role: Option<Role>,
    /// `true` disables the account (no login, no refresh; its refresh tokens are
    /// revoked), `false` enables it again.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// Tokens of a login or refresh.
#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    /// JWT, audience `api`; send as `Authorization: Bearer`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque; exchange at `/api/v1/auth/refresh` (once: it rotates).
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub user: User,
}

fn limited(state: &AppState, attempts: Vec<Attempt<'_>>) -> Result<(), ApiError> {
    for attempt in attempts {
        state.auth.rate_limit(attempt).map_err(too_many_requests)?;
    }
    Ok(())
}

fn address(addr: &ClientAddr) -> Vec<Attempt<'static>> {
    addr.0.map(Attempt::Address).into_iter().collect()
}

fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::Taken(_) => Problem::conflict(e.to_string()).into(),
        AccountError::Invalid(why) => Problem::unprocessable(why).into(),
        other => Problem::internal(&other).into(),
    }
}

fn pair(state: &AppState, user: User, refresh_token: String) -> Result<TokenPair, ApiError> {
    let access_token = state
        .auth
        .access_token(&user.id, user.role)
        .map_err(|e| Problem::internal(&e))?;
    Ok(TokenPair {
        access_token,
        token_type: "Bearer",
        expires_in: state.auth.config.access_ttl_s,
        refresh_token,
        refresh_expires_in: state.auth.config.refresh_ttl_s,
        user,
    })
}

/// Exchange a user name and password for tokens.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", operation_id = "login",
    request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "wrong user name or password"),
              (status = 429, description = "too many attempts from this address or for this account; see Retry-After"),
              (status = 500)))]
pub async fn login(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let account: String = req.username.chars().take(64).collect();
    let mut attempts = address(&addr);
    attempts.push(Attempt::Account(&account));
    limited(&state, attempts)?;
    let user = accounts::check_password(&state.auth.pool, &req.username, &req.password)
        .await
        .map_err(account_error)?
        .ok_or_else(|| Problem::unauthorized("wrong user name or password"))?;
    let refresh = accounts::issue_refresh(
        &state.auth.pool,
        &user.id,
        None,
        state.auth.config.refresh_ttl_s,
    )
    .await
    .map_err(|e| Problem::internal(&e))?;
    tracing::info!(user = %user.username, "login");
    Ok(Json(pair(&state, user, refresh)?))
}

/// Exchange a refresh token for new tokens. The presented token is spent; presenting
/// it again revokes every token of its login.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", operation_id = "refresh",
    request_body = RefreshRequest,
    responses((status = 200, body = TokenPair),
              (status = 401, description = "the refresh token is invalid, expired, revoked or already used"),
              (status = 429, description = "too many attempts from this address; see Retry-After"),
              (status = 500)))]
pub async fn refresh(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    limited(&state, address(&addr))?;
    let rotated = accounts::rotate_refresh(
        &state.auth.pool,
        &req.refresh_token,
        state.auth.config.refresh_ttl_s,
    )
    .await
    .map_err(|e| Problem::internal(&e))?;
    match rotated {
        Ok((user, next)) => Ok(Json(pair(&state, user, next)?)),
        Err(RefreshRefusal::Reused) => Err(Problem::unauthorized(
            "refresh token already used: every token of this login is revoked",
        )
        .into()),
        Err(RefreshRefusal::Invalid) => {
            Err(Problem::unauthorized("the refresh token is invalid, expired or revoked").into())
        }
    }
}

/// Revoke the refresh token and every token rotated from the same login. Access
/// tokens already issued stay valid until they expire (15 minutes by default).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", operation_id = "logout",
    request_body = RefreshRequest,
    responses((status = 204, description = "revoked (also when the token was unknown)"), (status = 500)))]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    accounts::revoke_by_token(&state.auth.pool, &req.refresh_token)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a `viewer` account; only when the server allows open registration.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", operation_id = "register",
    request_body = Registration,
    responses((status = 201, body = User), (status = 403, description = "registration is closed"),
              (status = 409, description = "the user name is taken"),
              (status = 429, description = "too many attempts from this address; see Retry-After"),
              (status = 500)))]
pub async fn register(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<Registration>,
) -> Result<impl IntoResponse, ApiError> {
    if !state.auth.config.open_registration {
        return Err(Problem::forbidden(
            "registration is closed: an admin creates accounts (POST /api/v1/users)",
        )
        .into());
    }
    limited(&state, address(&addr))?;
    let user = accounts::create_user_with_email(
        &state.auth.pool,
        &req.username,
        &req.password,
        Role::Viewer,
        req.email.as_deref(),
    )
    .await
    .map_err(account_error)?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// The account of the access token.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", operation_id = "get_me",
    security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, description = "no valid access token, or its account is gone"),
              (status = 500)))]
pub async fn me(
    State(state): State<AppState>,
    Authed(caller): Authed,
) -> Result<Json<User>, ApiError> {
    accounts::user_by_id(&state.auth.pool, &caller.user_id)
        .await
        .map_err(|e| Problem::internal(&e))?
        .map(Json)
        .ok_or_else(|| Problem::unauthorized("the account no longer exists").into())
}

/// Create an account (admins).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", operation_id = "create_user",
    security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 403, description = "not an admin"),
              (status = 409, description = "the user name is taken"), (status = 500)))]
pub async fn create_user(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiJson(req): ApiJson<NewUser>,
) -> Result<impl IntoResponse, ApiError> {
    if !caller.is_admin() {
        return Err(Problem::forbidden("only admins create accounts").into());
    }
    let user = accounts::create_user_with_email(
        &state.auth.pool,
        &req.username,
        &req.password,
        req.role,
        req.email.as_deref(),
    )
    .await
    .map_err(account_error)?;
    tracing::info!(user = %user.username, role = user.role.as_str(), "account created");
    Ok((StatusCode::CREATED, Json(user)))
}

/// List accounts by name (admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", operation_id = "list_users",
    security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<User>),
              (status = 400, description = "`limit` outside 1..=100, or an unknown query parameter"),
              (status = 403, description = "not an admin"), (status = 500)))]
pub async fn list_users(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<Page<User>>, ApiError> {
    if !caller.is_admin() {
        return Err(Problem::forbidden("only admins list accounts").into());
    }
    let limit = page.limit()?;
    let mut items =
        accounts::list_users(&state.auth.pool, page.cursor.as_deref(), limit as i64 + 1)
            .await
            .map_err(|e| Problem::internal(&e))?;
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|u| u.username.clone()).unwrap_or_default()
    });
    Ok(Json(Page { items, next_cursor }))
}

/// Change an account's role or disable / enable it (admins). An admin cannot change
/// their own account this way, so the server never loses its last admin by mistake.
#[utoipa::path(patch, path = "/api/v1/users/{user}", tag = "users", operation_id = "update_user",
    security(("bearer" = [])), params(("user" = String, Path, description = "user id (`usr_…`)")),
    request_body = UserPatch,
    responses((status = 200, body = User), (status = 403, description = "not an admin"),
              (status = 404, description = "no such user"),
              (status = 409, description = "an admin's own role or state"), (status = 500)))]
pub async fn update_user(
    State(state): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Json<User>, ApiError> {
    if !caller.is_admin() {
        return Err(Problem::forbidden("only admins change accounts").into());
    }
    // Read as an object first: serde would also take an array (`[null, null]`) for a
    // struct whose fields are all optional, and change nothing without saying so.
    let req: UserPatch = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|e| Problem::unprocessable(format!("not a user change: {e}")))?;
    let demotes_self = req.role.is_some_and(|r| r != Role::Admin) || req.disabled == Some(true);
    if id == caller.user_id && demotes_self {
        return Err(Problem::conflict(
            "admins cannot demote or disable their own account; ask another admin",
        )
        .into());
    }
    let user = accounts::update_user(&state.auth.pool, &id, req.role, req.disabled)
        .await
        .map_err(|e| Problem::internal(&e))?
        .ok_or_else(|| Problem::not_found(format!("no user {id}")))?;
    // After the commit: from this answer on, the account's tokens are refused.
    state.auth.disabled.set(&user.id, user.disabled);
    tracing::info!(user = %user.username, role = user.role.as_str(), disabled = user.disabled, "account changed");
    Ok(Json(user))
}

/// The public keys that verify panocast's tokens (JWK Set, RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", operation_id = "get_jwks",
    responses((status = 200, description = "JWK Set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.auth.keys.jwks()),
    )
}

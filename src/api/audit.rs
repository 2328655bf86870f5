//! The audit log over HTTP: the middleware that writes it for every changing API
//! request, and `GET /api/v1/admin/audit-log` for admins.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::{bearer, Authed};
use super::body::{ApiQuery, Page, DEFAULT_PAGE_ITEMS, MAX_PAGE_ITEMS};
use super::problem::{ApiError, Problem};
use super::AppState;
use crate::audit::{self, Action, AuditEntry};
use crate::auth::Role;

/// Records the request after the handler answered and before the answer leaves, so
/// that an acknowledged change is always in the log. A request without a valid access
/// token changes nothing and is not recorded (its 401 is in the trace log); nor are a
/// viewer's, who can change nothing but their own settings.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let Some(route) = route.filter(|r| audit::is_audited(&method, r)) else {
        return next.run(request).await;
    };
    let caller = state
        .auth
        .caller(bearer(request.headers()))
        .ok()
        .flatten()
        .filter(|c| c.role != Role::Viewer);
    let path = request.uri().path().to_owned();
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string());
    let response = next.run(request).await;
    if let Some(caller) = caller {
        let action = Action {
            actor_id: &caller.user_id,
            role: caller.role,
            method: &method,
            route: &route,
            path: &path,
            status: response.status().as_u16(),
            address,
        };
        if let Err(error) = audit::record(&state.auth.pool, &action).await {
            // The change itself is done: losing its audit line is logged loudly
            // rather than turning a success into a failure.
            tracing::error!(%error, action = %format!("{method} {route}"), "audit log write failed");
        }
    }
    response
}

/// `GET /api/v1/admin/audit-log` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries per page (default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(nullable = false, pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
    /// Only this account's actions (a user id).
    #[param(nullable = false)]
    pub actor_id: Option<String>,
}

/// Who changed what, when: newest first (admins).
#[utoipa::path(get, path = "/api/v1/admin/audit-log", tag = "admin", operation_id = "list_audit_log",
    security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>),
              (status = 400, description = "`limit` outside 1..=100, a malformed cursor, or an unknown query parameter"),
              (status = 401, description = "no valid access token"),
              (status = 403, description = "not an admin"), (status = 500)))]
pub async fn list(
    State(state): State<AppState>,
    Authed(caller): Authed,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEntry>>, ApiError> {
    if !caller.is_admin() {
        return Err(Problem::forbidden("only admins read the audit log").into());
    }
    let limit = match query.limit.unwrap_or(DEFAULT_PAGE_ITEMS) {
        n @ 1..=MAX_PAGE_ITEMS => n as usize,
        _ => {
            return Err(Problem::bad_request(format!("limit must be 1..={MAX_PAGE_ITEMS}")).into())
        }
    };
    let before = match query.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| Problem::bad_request("cursor is not one this list gave"))?,
        ),
    };
    let mut items = audit::list(
        &state.auth.pool,
        before,
        query.actor_id.as_deref(),
        limit as i64 + 1,
    )
    .await
    .map_err(|e| Problem::internal(&e))?;
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|e| e.seq.to_string()).unwrap_or_default()
    });
    Ok(Json(Page { items, next_cursor }))
}

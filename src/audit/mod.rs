//! The audit log: an append-only record of who changed what, when (issue 18 item 5).
//!
//! What is recorded and why: every changing API request (POST, PUT, PATCH, DELETE) by a
//! signed-in admin or broadcaster, with its route, the concrete path and the answer's
//! status, refusals included (a 403 is worth knowing about). Left out: sign-in and
//! token refresh (no change to anything, and their bodies hold passwords), a user's
//! own notification marks and subscriptions under `/me`, and the bytes of a tus upload
//! (one row per created upload is enough). Bodies are never recorded: they may hold
//! stream keys, RTSP passwords or webhook secrets.

use serde::Serialize;

use crate::auth::Role;
use crate::db::Pool;

/// One recorded action.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Increases by one per entry; the list's cursor.
    pub seq: i64,
    /// RFC 3339 UTC.
    pub at: String,
    pub actor_id: String,
    /// The actor's username, while the account exists.
    pub actor: Option<String>,
    pub actor_role: String,
    /// `METHOD /route/{param}` as declared in the OpenAPI document.
    pub action: String,
    /// The path as requested.
    pub target: String,
    /// The HTTP status the request was answered with.
    pub status: u16,
    pub address: Option<String>,
}

/// What the middleware hands over for one request.
pub struct Action<'a> {
    pub actor_id: &'a str,
    pub role: Role,
    pub method: &'a str,
    pub route: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub address: Option<String>,
}

/// Whether a request of `method` on `route` is an action the log keeps.
pub fn is_audited(method: &str, route: &str) -> bool {
    let changes = matches!(method, "POST" | "PUT" | "PATCH" | "DELETE");
    let own_or_auth = route.starts_with("/api/v1/auth/") || route.starts_with("/api/v1/me/");
    let upload_bytes = route == "/api/v1/uploads/{upload}" && method == "PATCH";
    changes && !own_or_auth && !upload_bytes
}

/// Appends one entry.
pub async fn record(pool: &Pool, action: &Action<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor_id, actor_role, action, target, status, address) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(crate::notify::outbox::timestamp_now())
    .bind(action.actor_id)
    .bind(action.role.as_str())
    .bind(format!("{} {}", action.method, action.route))
    .bind(action.path)
    .bind(i64::from(action.status))
    .bind(&action.address)
    .execute(pool)
    .await?;
    Ok(())
}

/// One `audit_log` row joined with the actor's username, in [`AuditEntry`] order.
type EntryRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    Option<String>,
);

/// Entries newest first, before `before` (a `seq`), optionally of one actor.
pub async fn list(
    pool: &Pool,
    before: Option<i64>,
    actor_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let rows: Vec<EntryRow> = sqlx::query_as(
        "SELECT a.seq, a.at, a.actor_id, u.username, a.actor_role, a.action, a.target, \
                    a.status, a.address \
             FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id \
             WHERE a.seq < $1 AND ($2 IS NULL OR a.actor_id = $2) \
             ORDER BY a.seq DESC LIMIT $3",
    )
    .bind(before.unwrap_or(i64::MAX))
    .bind(actor_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(seq, at, actor_id, actor, actor_role, action, target, status, address)| AuditEntry {
                seq,
                at,
                actor_id,
                actor,
                actor_role,
                action,
                target,
                status: u16::try_from(status).unwrap_or(0),
                address,
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_audited_but_sign_in_own_settings_and_upload_bytes_are_not() {
        assert!(is_audited("PATCH", "/api/v1/streams/{stream}"));
        assert!(is_audited("DELETE", "/api/v1/events/{event}"));
        assert!(is_audited("POST", "/api/v1/uploads"));
        assert!(!is_audited("GET", "/api/v1/streams"));
        assert!(!is_audited("POST", "/api/v1/auth/login"));
        assert!(!is_audited("POST", "/api/v1/me/notifications/read-all"));
        assert!(!is_audited("PATCH", "/api/v1/uploads/{upload}"));
    }
}

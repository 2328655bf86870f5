//! The outbox: domain events waiting to be delivered, in the catalog database.
//!
//! Contract:
//! - A message is written with [`enqueue`] on the connection (usually the transaction)
//!   of the change that causes it: the change and its message commit together or not
//!   at all, and a commit is on disk before the request is answered (see [`crate::db`]),
//!   so an acknowledged change's message survives `kill -9`.
//! - Each message has a stable id `msg_…`, which every delivery of it carries as
//!   `webhook-id`: receivers de-duplicate on it (delivery is at least once).
//! - `seq` orders messages as they were committed.

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use crate::db;

/// One message as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub seq: i64,
    /// `msg_…`.
    pub id: String,
    /// Dot-namespaced, e.g. `stream.created`.
    pub kind: String,
    /// RFC 3339, UTC, milliseconds.
    pub occurred_at: String,
    /// The JSON object of `data`.
    pub data: serde_json::Value,
}

impl Message {
    /// The body every delivery sends (Standard Webhooks payload): `type`, `timestamp`
    /// and `data`, serialized the same way every time.
    pub fn body(&self) -> String {
        serde_json::json!({
            "type": self.kind,
            "timestamp": self.occurred_at,
            "data": self.data,
        })
        .to_string()
    }
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn timestamp_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Writes a message of type `kind` with `data` on `conn` (the transaction of the
/// change it announces); returns its id. `data` should serialize to an object.
pub async fn enqueue(
    conn: &mut SqliteConnection,
    kind: &str,
    data: &impl Serialize,
) -> Result<String, sqlx::Error> {
    enqueue_at(conn, kind, data, &timestamp_now(), None).await
}

/// [`enqueue`] with the time it happened, and already fanned out when `fanned_out`
/// (a message meant for one webhook only, such as a test send).
pub async fn enqueue_at(
    conn: &mut SqliteConnection,
    kind: &str,
    data: &impl Serialize,
    occurred_at: &str,
    fanned_out: Option<i64>,
) -> Result<String, sqlx::Error> {
    let data = serde_json::to_string(data)
        .map_err(|e| sqlx::Error::Encode(format!("outbox data: {e}").into()))?;
    let id = db::new_id("msg");
    sqlx::query(
        "INSERT INTO outbox_messages (id, type, occurred_at, data, fanned_out_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(kind)
    .bind(occurred_at)
    .bind(&data)
    .bind(fanned_out)
    .execute(&mut *conn)
    .await?;
    tracing::debug!(message = %id, kind, "outbox message written");
    Ok(id)
}

pub(crate) fn message_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Message, sqlx::Error> {
    let data: String = row.try_get("data")?;
    Ok(Message {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        occurred_at: row.try_get("occurred_at")?,
        data: serde_json::from_str(&data)
            .map_err(|_| sqlx::Error::Decode("outbox_messages.data".into()))?,
    })
}

/// Messages not fanned out yet, oldest first, at most `limit`.
pub async fn pending(conn: &mut SqliteConnection, limit: i64) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query(
        "SELECT seq, id, type, occurred_at, data FROM outbox_messages \
         WHERE fanned_out_at IS NULL ORDER BY seq LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(message_from_row)
    .collect()
}

/// Messages after `seq` in commit order, at most `limit`: how a consumer with its own
/// cursor (the mail dispatcher) reads the outbox.
pub async fn after(
    conn: &mut SqliteConnection,
    seq: i64,
    limit: i64,
) -> Result<Vec<Message>, sqlx::Error> {
    sqlx::query(
        "SELECT seq, id, type, occurred_at, data FROM outbox_messages \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(message_from_row)
    .collect()
}

/// Marks message `seq` fanned out at `now_ms`.
pub async fn mark_fanned_out(
    conn: &mut SqliteConnection,
    seq: i64,
    now_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE outbox_messages SET fanned_out_at = $1 WHERE seq = $2")
        .bind(now_ms)
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_type_timestamp_and_data() {
        let m = Message {
            seq: 1,
            id: "msg_1".into(),
            kind: "stream.created".into(),
            occurred_at: "2026-01-01T00:00:00.000Z".into(),
            data: serde_json::json!({"slug": "a"}),
        };
        let body: serde_json::Value = serde_json::from_str(&m.body()).expect("json");
        assert_eq!(body["type"], "stream.created");
        assert_eq!(body["timestamp"], "2026-01-01T00:00:00.000Z");
        assert_eq!(body["data"]["slug"], "a");
        assert_eq!(m.body(), m.body());
    }

    #[tokio::test]
    async fn enqueued_messages_are_pending_in_order_until_fanned_out() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = db::open(dir.path()).await.expect("db");
        let mut conn = pool.acquire().await.expect("conn");
        let a = enqueue(&mut conn, "a.b", &serde_json::json!({"n": 1}))
            .await
            .expect("a");
        let b = enqueue(&mut conn, "c.d", &serde_json::json!({"n": 2}))
            .await
            .expect("b");
        let pending1 = pending(&mut conn, 10).await.expect("pending");
        assert_eq!(
            pending1.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
            [a, b.clone()]
        );
        assert!(pending1[0].id.starts_with("msg_"));
        mark_fanned_out(&mut conn, pending1[0].seq, 1)
            .await
            .expect("mark");
        let pending2 = pending(&mut conn, 10).await.expect("pending");
        assert_eq!(pending2.len(), 1);
        assert_eq!(pending2[0].id, b);
        assert_eq!(pending2[0].data["n"], 2);
    }
}

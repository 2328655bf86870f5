//! Reading and marking a user's notifications. Every query is scoped to the user, so
//! someone else's notification is indistinguishable from one that does not exist.

use sqlx::{Row, SqliteConnection};

use super::{Notification, NotificationData};
use crate::db::Pool;
use crate::notify::outbox::timestamp_now;

const COLUMNS: &str = "seq, id, user_id, type, title, text, data, created_at, read_at";

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Notification, sqlx::Error> {
    let kind: String = row.try_get("type")?;
    let data: String = row.try_get("data")?;
    Ok(Notification {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        kind: serde_json::from_value(serde_json::Value::String(kind))
            .map_err(|_| sqlx::Error::Decode("notifications.type".into()))?,
        title: row.try_get("title")?,
        text: row.try_get("text")?,
        data: serde_json::from_str::<NotificationData>(&data)
            .map_err(|_| sqlx::Error::Decode("notifications.data".into()))?,
        created_at: row.try_get("created_at")?,
        read_at: row.try_get("read_at")?,
    })
}

/// Writes `n` unless the user already has a notification of `message_id`; returns it
/// with its `seq` when it was written.
pub async fn insert(
    conn: &mut SqliteConnection,
    message_id: &str,
    mut n: Notification,
) -> Result<Option<Notification>, sqlx::Error> {
    let data = serde_json::to_string(&n.data)
        .map_err(|e| sqlx::Error::Encode(format!("notification data: {e}").into()))?;
    let done = sqlx::query(
        "INSERT OR IGNORE INTO notifications (id, user_id, message_id, type, title, text, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&n.id)
    .bind(&n.user_id)
    .bind(message_id)
    .bind(n.kind.as_str())
    .bind(&n.title)
    .bind(&n.text)
    .bind(&data)
    .bind(&n.created_at)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    n.seq = done.last_insert_rowid();
    Ok(Some(n))
}

/// One page of `user`'s notifications, newest first, before `before_seq` (all when
/// None), only unread ones when `unread_only`; at most `limit`.
pub async fn page(
    pool: &Pool,
    user: &str,
    before_seq: Option<i64>,
    unread_only: bool,
    limit: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    let unread = if unread_only {
        "AND read_at IS NULL"
    } else {
        ""
    };
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq < $2 {unread} \
         ORDER BY seq DESC LIMIT $3"
    ))
    .bind(user)
    .bind(before_seq.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// `user`'s notifications after `seq`, oldest first, at most `limit`: what a feed
/// missed.
pub async fn after(
    pool: &Pool,
    user: &str,
    seq: i64,
    limit: i64,
) -> Result<Vec<Notification>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(user)
    .bind(seq)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// The `seq` of `user`'s notification `id`.
pub async fn seq_of(pool: &Pool, user: &str, id: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM notifications WHERE user_id = $1 AND id = $2")
        .bind(user)
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The `seq` of `user`'s newest notification (0 when none).
pub async fn newest_seq(pool: &Pool, user: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM notifications WHERE user_id = $1")
        .bind(user)
        .fetch_one(pool)
        .await
}

/// How many of `user`'s notifications are unread.
pub async fn unread_count(pool: &Pool, user: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
        .bind(user)
        .fetch_one(pool)
        .await
}

/// Marks `user`'s notification `id` read (keeping the first time it was); None when
/// they have none by that id.
pub async fn mark_read(
    pool: &Pool,
    user: &str,
    id: &str,
) -> Result<Option<Notification>, sqlx::Error> {
    sqlx::query(
        "UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE user_id = $2 AND id = $3",
    )
    .bind(timestamp_now())
    .bind(user)
    .bind(id)
    .execute(pool)
    .await?;
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND id = $2"
    ))
    .bind(user)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Marks all of `user`'s notifications read; returns how many were unread.
pub async fn mark_all_read(pool: &Pool, user: &str) -> Result<u64, sqlx::Error> {
    let done =
        sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
            .bind(timestamp_now())
            .bind(user)
            .execute(pool)
            .await?;
    Ok(done.rows_affected())
}

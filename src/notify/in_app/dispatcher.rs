//! The in-app dispatcher: reads the outbox after its cursor, writes the notifications
//! each message causes and moves the cursor in one transaction, then announces the
//! new rows on the hub. A crash before the commit re-reads the same messages after
//! the restart; the unique (user, message) key makes that harmless.

use std::sync::Arc;
use std::time::Duration;

use crate::db;
use crate::notify::audience::{audience, slug_of, text, Channel};
use crate::notify::outbox::{self, Message};
use crate::notify::webhooks::MessageType;

use super::{store, wording, InApp, Notification};

/// Outbox messages read per transaction, at most.
const READ_BATCH: i64 = 256;
/// How often the outbox is looked at when it was empty.
const POLL: Duration = Duration::from_millis(100);

pub(super) fn spawn(in_app: Arc<InApp>) {
    tokio::spawn(async move {
        loop {
            let more = match tick(&in_app).await {
                Ok(read) => read == READ_BATCH as usize,
                Err(e) => {
                    tracing::warn!(error = %e, "in-app notification dispatch failed; retrying");
                    false
                }
            };
            if more {
                continue;
            }
            tokio::select! {
                _ = in_app.shutdown.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    });
}

/// One batch; returns how many outbox messages it read.
async fn tick(in_app: &InApp) -> Result<usize, sqlx::Error> {
    // A look without a lock first: most ticks find nothing.
    let waiting: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM outbox_messages WHERE seq > \
         (SELECT last_seq FROM in_app_cursor WHERE id = 1))",
    )
    .fetch_one(&in_app.pool)
    .await?;
    if !waiting {
        return Ok(0);
    }
    // IMMEDIATE: the transaction writes after reading, and a deferred one could not
    // upgrade its read snapshot while another writer commits (SQLITE_BUSY_SNAPSHOT).
    let mut tx = crate::db::write_tx(&in_app.pool).await?;
    let cursor: i64 = sqlx::query_scalar("SELECT last_seq FROM in_app_cursor WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let messages = outbox::after(&mut tx, cursor, READ_BATCH).await?;
    let Some(last) = messages.last().map(|m| m.seq) else {
        return Ok(0);
    };
    let mut committed = Vec::new();
    for m in &messages {
        for n in notifications_of(&mut tx, m).await? {
            if let Some(n) = store::insert(&mut tx, &m.id, n).await? {
                committed.push(n);
            }
        }
    }
    sqlx::query("UPDATE in_app_cursor SET last_seq = $1 WHERE id = 1")
        .bind(last)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if !committed.is_empty() {
        tracing::debug!(count = committed.len(), "in-app notifications written");
    }
    in_app.announce(committed);
    Ok(messages.len())
}

/// The notifications `m` causes, one per user it reaches in-app (not written yet).
async fn notifications_of(
    conn: &mut sqlx::SqliteConnection,
    m: &Message,
) -> Result<Vec<Notification>, sqlx::Error> {
    let Ok(kind) = serde_json::from_value::<MessageType>(serde_json::Value::String(m.kind.clone()))
    else {
        return Ok(Vec::new());
    };
    let members = audience(&mut *conn, m, Channel::InApp).await?;
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let stream = text(&m.data, "/event/stream_id").or_else(|| text(&m.data, "/asset/stream_id"));
    let slug = match stream {
        Some(stream) => slug_of(&mut *conn, stream).await?,
        None => None,
    };
    let Some((title, body, data)) = wording::word(m, slug.as_deref()) else {
        return Ok(Vec::new());
    };
    Ok(members
        .into_iter()
        .map(|member| Notification {
            id: db::new_id("ntf"),
            kind,
            created_at: m.occurred_at.clone(),
            read_at: None,
            title: title.clone(),
            text: body.clone(),
            data: data.clone(),
            seq: 0,
            user_id: member.user_id,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count(pool: &crate::db::Pool) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM notifications")
            .fetch_one(pool)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn a_message_read_twice_notifies_once() {
        let dir = tempfile::tempdir().expect("dir");
        let pool = db::open(dir.path()).await.expect("db");
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, created_at) \
             VALUES ('usr_1', 'ida', 'x', 'viewer', 0)",
        )
        .execute(&pool)
        .await
        .expect("user");
        let mut conn = pool.acquire().await.expect("conn");
        outbox::enqueue(
            &mut conn,
            "user.created",
            &serde_json::json!({"user": {"id": "usr_1", "username": "ida"}}),
        )
        .await
        .expect("enqueue");
        drop(conn);
        let in_app = InApp::new(pool.clone(), Default::default());
        let mut hub = in_app.subscribe();
        assert_eq!(tick(&in_app).await.expect("tick"), 1);
        assert_eq!(count(&pool).await, 1);
        let announced = hub.try_recv().expect("announced");
        assert_eq!(announced.title, "Welcome to panocast, ida");
        // As after a crash before the cursor's commit: the same message again.
        sqlx::query("UPDATE in_app_cursor SET last_seq = 0")
            .execute(&pool)
            .await
            .expect("rewind");
        assert_eq!(tick(&in_app).await.expect("tick"), 1);
        assert_eq!(count(&pool).await, 1);
        assert!(hub.try_recv().is_err(), "announced twice");
    }
}

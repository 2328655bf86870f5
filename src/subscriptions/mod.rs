//! Subscriptions and notification preferences (issue 12 item 2): a signed-in user
//! follows a stream (the channel) or one scheduled event, and says which notification
//! types reach them on which channel. Mail and in-app delivery read both through
//! [`crate::notify::audience`]; a missing preference means "on".

use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::db::{self, Pool};
use crate::notify::audience::{PREF_LIVE, PREF_STARTING_SOON};

/// A user's subscription.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Subscription {
    /// `sub_…`.
    pub id: String,
    /// The stream followed (absent for an event subscription).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    /// The event followed (absent for a stream subscription).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// What to follow.
#[derive(Clone, Debug)]
pub enum Target {
    /// Id or slug.
    Stream(String),
    /// `ev_…`.
    Event(String),
}

/// Why a subscription was not made.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("there is no stream {0}")]
    NoStream(String),
    #[error("there is no event {0}")]
    NoEvent(String),
    #[error("already subscribed")]
    Duplicate,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Which channels one notification type reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    pub email: bool,
    pub in_app: bool,
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            email: true,
            in_app: true,
        }
    }
}

/// A user's notification preferences, per type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// A followed event is about to start.
    pub starting_soon: Channels,
    /// A followed stream or event is live.
    pub live: Channels,
}

fn subscription_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Subscription, sqlx::Error> {
    Ok(Subscription {
        id: row.try_get("id")?,
        stream_id: row.try_get("stream_id")?,
        event_id: row.try_get("event_id")?,
        created_at: row.try_get("created_at")?,
    })
}

/// `user`'s subscriptions, oldest first, at most `limit`.
pub async fn list(pool: &Pool, user: &str, limit: i64) -> Result<Vec<Subscription>, sqlx::Error> {
    sqlx::query(
        "SELECT id, stream_id, event_id, created_at FROM subscriptions WHERE user_id = $1 \
         ORDER BY created_at, id LIMIT $2",
    )
    .bind(user)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(subscription_from_row)
    .collect()
}

/// Subscribes `user` to `target`.
pub async fn subscribe(
    pool: &Pool,
    user: &str,
    target: &Target,
) -> Result<Subscription, SubscribeError> {
    let (stream_id, event_id) = match target {
        Target::Stream(key) => {
            let id: Option<String> =
                sqlx::query_scalar("SELECT id FROM streams WHERE id = $1 OR slug = $1")
                    .bind(key)
                    .fetch_optional(pool)
                    .await?;
            (
                Some(id.ok_or_else(|| SubscribeError::NoStream(key.clone()))?),
                None,
            )
        }
        Target::Event(key) => {
            let id: Option<String> =
                sqlx::query_scalar("SELECT id FROM scheduled_events WHERE id = $1")
                    .bind(key)
                    .fetch_optional(pool)
                    .await?;
            (
                None,
                Some(id.ok_or_else(|| SubscribeError::NoEvent(key.clone()))?),
            )
        }
    };
    let sub = Subscription {
        id: db::new_id("sub"),
        stream_id,
        event_id,
        created_at: db::now(),
    };
    let inserted = sqlx::query(
        "INSERT INTO subscriptions (id, user_id, stream_id, event_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&sub.id)
    .bind(user)
    .bind(&sub.stream_id)
    .bind(&sub.event_id)
    .bind(sub.created_at)
    .execute(pool)
    .await;
    match inserted {
        Ok(_) => Ok(sub),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(SubscribeError::Duplicate),
        // The stream or event was deleted meanwhile.
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Err(match target {
            Target::Stream(k) => SubscribeError::NoStream(k.clone()),
            Target::Event(k) => SubscribeError::NoEvent(k.clone()),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Deletes `user`'s subscription `id`; false when they have none by that id.
pub async fn unsubscribe(pool: &Pool, user: &str, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM subscriptions WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// `user`'s preferences (defaults where none were set).
pub async fn preferences(pool: &Pool, user: &str) -> Result<Preferences, sqlx::Error> {
    let mut prefs = Preferences::default();
    let rows = sqlx::query(
        "SELECT type, channel, enabled FROM notification_preferences WHERE user_id = $1",
    )
    .bind(user)
    .fetch_all(pool)
    .await?;
    for row in rows {
        let kind: String = row.try_get("type")?;
        let channel: String = row.try_get("channel")?;
        let enabled: bool = row.try_get("enabled")?;
        let channels = match kind.as_str() {
            PREF_STARTING_SOON => &mut prefs.starting_soon,
            PREF_LIVE => &mut prefs.live,
            _ => continue,
        };
        match channel.as_str() {
            "email" => channels.email = enabled,
            "in_app" => channels.in_app = enabled,
            _ => {}
        }
    }
    Ok(prefs)
}

/// Replaces `user`'s preferences.
pub async fn set_preferences(
    pool: &Pool,
    user: &str,
    prefs: &Preferences,
) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::write_tx(pool).await?;
    for (kind, channels) in [
        (PREF_STARTING_SOON, prefs.starting_soon),
        (PREF_LIVE, prefs.live),
    ] {
        for (channel, enabled) in [("email", channels.email), ("in_app", channels.in_app)] {
            sqlx::query(
                "INSERT INTO notification_preferences (user_id, type, channel, enabled) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, type, channel) DO UPDATE SET enabled = excluded.enabled",
            )
            .bind(user)
            .bind(kind)
            .bind(channel)
            .bind(enabled)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

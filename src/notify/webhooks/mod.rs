//! Webhooks: endpoints registered over REST, each receiving the outbox messages its
//! filter selects, signed the Standard Webhooks way ([`signature`]), retried on a
//! growing schedule ([`retry`]), never sent to internal addresses unless allowed
//! ([`target`]). [`dispatcher`] is the one task that fans messages out and sends.
//!
//! Tables (migration 0004): `webhooks`, `webhook_deliveries` (one per message and
//! endpoint: state `pending` → `delivered` | `failed`), `webhook_attempts` (the
//! delivery log: status code, latency, error of every try).

pub mod dispatcher;
pub mod retry;
pub mod signature;
pub mod target;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::config::WebhooksConfig;
use crate::db::{self, Pool};
use crate::notify::outbox;

/// The type of an outbox message (`type` in every webhook body).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum MessageType {
    #[serde(rename = "stream.created")]
    StreamCreated,
    #[serde(rename = "stream.updated")]
    StreamUpdated,
    #[serde(rename = "stream.deleted")]
    StreamDeleted,
    #[serde(rename = "stream.key_rotated")]
    StreamKeyRotated,
    /// The stream's first complete segment: viewers can watch.
    #[serde(rename = "stream.live")]
    StreamLive,
    /// The live session ended (the publisher did not come back in time, or the
    /// stream was disabled or deleted).
    #[serde(rename = "stream.offline")]
    StreamOffline,
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "event.scheduled")]
    EventScheduled,
    #[serde(rename = "event.starting_soon")]
    EventStartingSoon,
    #[serde(rename = "event.live")]
    EventLive,
    #[serde(rename = "event.ended")]
    EventEnded,
    #[serde(rename = "event.cancelled")]
    EventCancelled,
    /// A recording started or an upload was received.
    #[serde(rename = "asset.created")]
    AssetCreated,
    /// Every rendition is made: the asset can be played and downloaded.
    #[serde(rename = "asset.ready")]
    AssetReady,
    #[serde(rename = "asset.errored")]
    AssetErrored,
    /// A live session is being recorded.
    #[serde(rename = "recording.started")]
    RecordingStarted,
    /// The live session's recording plays on demand (the replay).
    #[serde(rename = "recording.ready")]
    RecordingReady,
    /// Sent by `POST /api/v1/webhooks/{webhook}/test` to that endpoint only.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::StreamCreated => "stream.created",
            MessageType::StreamUpdated => "stream.updated",
            MessageType::StreamDeleted => "stream.deleted",
            MessageType::StreamKeyRotated => "stream.key_rotated",
            MessageType::StreamLive => "stream.live",
            MessageType::StreamOffline => "stream.offline",
            MessageType::UserCreated => "user.created",
            MessageType::EventScheduled => "event.scheduled",
            MessageType::EventStartingSoon => "event.starting_soon",
            MessageType::EventLive => "event.live",
            MessageType::EventEnded => "event.ended",
            MessageType::EventCancelled => "event.cancelled",
            MessageType::AssetCreated => "asset.created",
            MessageType::AssetReady => "asset.ready",
            MessageType::AssetErrored => "asset.errored",
            MessageType::RecordingStarted => "recording.started",
            MessageType::RecordingReady => "recording.ready",
            MessageType::WebhookTest => "webhook.test",
        }
    }
}

/// A registered endpoint; its secret is only shown on creation and rotation.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Webhook {
    /// `wh_…`.
    pub id: String,
    pub url: String,
    pub description: String,
    /// Message types it receives; empty means every type.
    pub event_types: Vec<MessageType>,
    /// A disabled endpoint receives nothing; it is disabled automatically after
    /// persistent failure (see `disabled_reason`) and enabled again with PATCH.
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

impl Webhook {
    /// Whether it wants messages of type `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|t| t.as_str() == kind)
    }
}

/// One try of a delivery.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Attempt {
    /// 1 for the first try.
    pub attempt: u32,
    /// RFC 3339.
    pub at: String,
    /// The receiver's HTTP status; absent when there was no answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// What went wrong, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The state of a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    /// Every attempt failed.
    Failed,
}

/// One message sent (or to be sent) to one endpoint, with its attempts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// `dlv_…`.
    pub id: String,
    /// The message id, sent as `webhook-id` on every attempt and replay.
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: DeliveryState,
    pub attempts: Vec<Attempt>,
    /// RFC 3339; when a pending delivery is tried next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
}

/// What a webhook write may change.
#[derive(Default)]
pub struct WebhookEdit {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<MessageType>>,
    pub enabled: Option<bool>,
}

/// The webhook endpoints and their delivery: store, and a handle on the dispatcher.
pub struct Webhooks {
    pool: Pool,
    pub config: WebhooksConfig,
    wake: Notify,
}

const WEBHOOK_COLUMNS: &str =
    "id, url, description, event_types, enabled, disabled_reason, created_at, updated_at";

fn webhook_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Webhook, sqlx::Error> {
    let types: String = row.try_get("event_types")?;
    Ok(Webhook {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        event_types: serde_json::from_str(&types)
            .map_err(|_| sqlx::Error::Decode("webhooks.event_types".into()))?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn ms_to_rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Webhooks {
    pub fn new(pool: Pool, config: WebhooksConfig) -> Arc<Self> {
        Arc::new(Self {
            pool,
            config,
            wake: Notify::new(),
        })
    }

    /// Tells the dispatcher there is something to send now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Registers an endpoint; returns it and its secret (shown this once).
    pub async fn create(
        &self,
        url: &str,
        description: &str,
        event_types: &[MessageType],
    ) -> Result<(Webhook, String), sqlx::Error> {
        let secret = signature::new_secret();
        let now = db::now();
        let webhook = Webhook {
            id: db::new_id("wh"),
            url: url.to_string(),
            description: description.to_string(),
            event_types: event_types.to_vec(),
            enabled: true,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLUMNS}, secret) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&webhook.id)
        .bind(&webhook.url)
        .bind(&webhook.description)
        .bind(types_json(&webhook.event_types))
        .bind(webhook.enabled)
        .bind(&webhook.disabled_reason)
        .bind(webhook.created_at)
        .bind(webhook.updated_at)
        .bind(&secret)
        .execute(&self.pool)
        .await?;
        tracing::info!(webhook = %webhook.id, "webhook registered");
        Ok((webhook, secret))
    }

    /// Every endpoint, oldest first.
    pub async fn list(&self) -> Result<Vec<Webhook>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(webhook_from_row)
        .collect()
    }

    pub async fn get(&self, id: &str) -> Result<Option<Webhook>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(webhook_from_row)
        .transpose()
    }

    /// Applies `edit`; enabling an endpoint clears its failure record.
    pub async fn update(
        &self,
        id: &str,
        edit: WebhookEdit,
    ) -> Result<Option<Webhook>, sqlx::Error> {
        let Some(mut webhook) = self.get(id).await? else {
            return Ok(None);
        };
        let reenabled = edit.enabled == Some(true) && !webhook.enabled;
        if let Some(url) = edit.url {
            webhook.url = url;
        }
        if let Some(description) = edit.description {
            webhook.description = description;
        }
        if let Some(types) = edit.event_types {
            webhook.event_types = types;
        }
        if let Some(enabled) = edit.enabled {
            webhook.enabled = enabled;
        }
        if webhook.enabled {
            webhook.disabled_reason = None;
        }
        webhook.updated_at = db::now();
        sqlx::query(
            "UPDATE webhooks SET url = $1, description = $2, event_types = $3, enabled = $4, \
             disabled_reason = $5, updated_at = $6, \
             consecutive_failures = CASE WHEN $7 THEN 0 ELSE consecutive_failures END \
             WHERE id = $8",
        )
        .bind(&webhook.url)
        .bind(&webhook.description)
        .bind(types_json(&webhook.event_types))
        .bind(webhook.enabled)
        .bind(&webhook.disabled_reason)
        .bind(webhook.updated_at)
        .bind(reenabled)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(Some(webhook))
    }

    /// Removes an endpoint with its deliveries; false if there was none.
    pub async fn delete(&self, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A new secret for endpoint `id` (shown this once); the old one signs nothing more.
    pub async fn rotate_secret(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        let secret = signature::new_secret();
        let done = sqlx::query("UPDATE webhooks SET secret = $1, updated_at = $2 WHERE id = $3")
            .bind(&secret)
            .bind(db::now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok((done.rows_affected() > 0).then_some(secret))
    }

    /// The newest `limit` deliveries of endpoint `id`, newest first, with their attempts.
    pub async fn deliveries(&self, id: &str, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT d.id, d.message_id, m.type, d.state, d.next_attempt_ms, d.attempts \
             FROM webhook_deliveries d JOIN outbox_messages m ON m.id = d.message_id \
             WHERE d.webhook_id = $1 ORDER BY d.created_ms DESC, m.seq DESC LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            out.push(self.delivery_of(row, id).await?);
        }
        Ok(out)
    }

    async fn delivery_of(
        &self,
        row: sqlx::sqlite::SqliteRow,
        id: String,
    ) -> Result<Delivery, sqlx::Error> {
        let state: String = row.try_get("state")?;
        let state = match state.as_str() {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            _ => DeliveryState::Failed,
        };
        let next: i64 = row.try_get("next_attempt_ms")?;
        // Only the attempts the row counts: one recorded since the row was read (its
        // attempt and the row's new state are written together) would show a
        // delivery that is still `pending` with an answer that made it `delivered`.
        let counted: i64 = row.try_get("attempts")?;
        let attempts = sqlx::query(
            "SELECT attempt, at, status_code, latency_ms, error FROM webhook_attempts \
             WHERE delivery_id = $1 AND attempt <= $2 ORDER BY attempt",
        )
        .bind(&id)
        .bind(counted)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|a| {
            let attempt: i64 = a.try_get("attempt")?;
            let status: Option<i64> = a.try_get("status_code")?;
            let latency: i64 = a.try_get("latency_ms")?;
            Ok(Attempt {
                attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                at: a.try_get("at")?,
                status_code: status.and_then(|s| u16::try_from(s).ok()),
                latency_ms: u64::try_from(latency).unwrap_or(0),
                error: a.try_get("error")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Delivery {
            id,
            message_id: row.try_get("message_id")?,
            kind: row.try_get("type")?,
            next_attempt_at: (state == DeliveryState::Pending)
                .then(|| ms_to_rfc3339(next))
                .flatten(),
            state,
            attempts,
        })
    }

    async fn delivery(&self, id: &str) -> Result<Option<Delivery>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT d.id, d.message_id, m.type, d.state, d.next_attempt_ms, d.attempts \
             FROM webhook_deliveries d JOIN outbox_messages m ON m.id = d.message_id \
             WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(self.delivery_of(row, id.to_string()).await?)),
            None => Ok(None),
        }
    }

    /// Sends delivery `delivery` of endpoint `webhook` again, as a new delivery of the
    /// same message (same `webhook-id`); `None` if there is no such delivery.
    pub async fn replay(
        &self,
        webhook: &str,
        delivery: &str,
    ) -> Result<Option<Delivery>, sqlx::Error> {
        let message: Option<String> = sqlx::query_scalar(
            "SELECT message_id FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2",
        )
        .bind(delivery)
        .bind(webhook)
        .fetch_optional(&self.pool)
        .await?;
        let Some(message) = message else {
            return Ok(None);
        };
        let mut conn = self.pool.acquire().await?;
        let id = insert_delivery(&mut conn, webhook, &message, now_ms()).await?;
        drop(conn);
        self.wake();
        self.delivery(&id).await
    }

    /// Sends a `webhook.test` message to endpoint `id` alone; `None` if there is none.
    pub async fn test_send(&self, id: &str) -> Result<Option<Delivery>, sqlx::Error> {
        if self.get(id).await?.is_none() {
            return Ok(None);
        }
        let now = now_ms();
        let mut tx = crate::db::write_tx(&self.pool).await?;
        let message = outbox::enqueue_at(
            &mut tx,
            MessageType::WebhookTest.as_str(),
            &crate::notify::payloads::WebhookTest {
                webhook_id: id.to_string(),
            },
            &outbox::timestamp_now(),
            Some(now),
        )
        .await?;
        let delivery = insert_delivery(&mut tx, id, &message, now).await?;
        tx.commit().await?;
        self.wake();
        self.delivery(&delivery).await
    }
}

fn types_json(types: &[MessageType]) -> String {
    serde_json::to_string(types).unwrap_or_else(|_| "[]".into())
}

/// A pending delivery of `message` to `webhook`, due at `due_ms`.
pub(crate) async fn insert_delivery(
    conn: &mut sqlx::SqliteConnection,
    webhook: &str,
    message: &str,
    due_ms: i64,
) -> Result<String, sqlx::Error> {
    let id = db::new_id("dlv");
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, webhook_id, message_id, state, attempts, next_attempt_ms, created_ms) \
         VALUES ($1, $2, $3, 'pending', 0, $4, $5)",
    )
    .bind(&id)
    .bind(webhook)
    .bind(message)
    .bind(due_ms)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

//! The one task that delivers webhooks: fans new outbox messages out into deliveries
//! (one per matching, enabled endpoint, in the transaction that marks the message
//! fanned out), then sends every due delivery and records the attempt.
//!
//! At least once: a delivery is marked `delivered` only after a 2xx answer was
//! recorded, so a crash between sending and recording sends it again after the restart
//! (with the same `webhook-id`). Order: an endpoint's due deliveries are sent one after
//! the other in message order; endpoints are served concurrently. A tick sends at most
//! [`BATCH`] deliveries and waits for them before the next, so a slow receiver delays
//! the others by at most one attempt timeout.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::retry::{next_delay, parse_retry_after};
use super::signature::{secret_key, sign};
use super::target::{is_public, literal_ip, GuardedResolver};
use super::{insert_delivery, now_ms, Webhooks};
use crate::notify::outbox::{self, Message};

/// Deliveries sent per tick, at most.
pub const BATCH: i64 = 64;
/// Outbox messages fanned out per tick, at most.
const FAN_OUT_BATCH: i64 = 256;
/// Longest error text kept in the delivery log.
const MAX_ERROR_LEN: usize = 300;

/// A delivery that is due, with what sending it needs.
struct Due {
    delivery: String,
    webhook: String,
    url: String,
    secret: String,
    attempts: u32,
    message: Message,
}

/// How one attempt went.
struct Outcome {
    status: Option<u16>,
    latency_ms: u64,
    error: Option<String>,
    retry_after: Option<Duration>,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Webhooks {
    /// Runs the dispatcher until `shutdown`.
    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let client = match this.client() {
                Ok(client) => client,
                Err(e) => {
                    tracing::error!(error = %e, "webhook client cannot be built; no webhook will be sent");
                    return;
                }
            };
            let poll = this.config.poll_interval();
            loop {
                if let Err(e) = this.tick(&client).await {
                    tracing::warn!(error = %e, "webhook dispatch failed; retrying");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(poll) => {}
                    _ = this.wake.notified() => {}
                }
            }
        });
    }

    fn client(&self) -> reqwest::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .timeout(self.config.timeout())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("panocast-webhooks/", env!("CARGO_PKG_VERSION")));
        if !self.config.allow_private_targets {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        builder.build()
    }

    /// One round: fan out, send what is due, record.
    async fn tick(&self, client: &reqwest::Client) -> Result<(), sqlx::Error> {
        self.fan_out().await?;
        let due = self.due().await?;
        if due.is_empty() {
            return Ok(());
        }
        let mut by_webhook: BTreeMap<String, Vec<Due>> = BTreeMap::new();
        for d in due {
            by_webhook.entry(d.webhook.clone()).or_default().push(d);
        }
        let rounds = by_webhook.into_values().map(|deliveries| async move {
            for d in deliveries {
                let outcome = self.send(client, &d).await;
                match self.record(&d, &outcome).await {
                    Ok(()) => {}
                    // The endpoint was deleted (with its deliveries) meanwhile.
                    Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                        tracing::debug!(delivery = %d.delivery, "webhook deleted while sending");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, delivery = %d.delivery, "cannot record a webhook attempt");
                    }
                }
            }
        });
        futures_util::future::join_all(rounds).await;
        Ok(())
    }

    /// Turns new outbox messages into deliveries.
    async fn fan_out(&self) -> Result<(), sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        let messages = outbox::pending(&mut conn, FAN_OUT_BATCH).await?;
        drop(conn);
        if messages.is_empty() {
            return Ok(());
        }
        let webhooks: Vec<_> = self
            .list()
            .await?
            .into_iter()
            .filter(|w| w.enabled)
            .collect();
        let now = now_ms();
        let mut tx = crate::db::write_tx(&self.pool).await?;
        for m in &messages {
            for w in webhooks.iter().filter(|w| w.wants(&m.kind)) {
                insert_delivery(&mut tx, &w.id, &m.id, now).await?;
            }
            outbox::mark_fanned_out(&mut tx, m.seq, now).await?;
        }
        tx.commit().await
    }

    async fn due(&self) -> Result<Vec<Due>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT d.id AS delivery, d.webhook_id, d.attempts, w.url, w.secret, \
             m.seq, m.id, m.type, m.occurred_at, m.data \
             FROM webhook_deliveries d \
             JOIN webhooks w ON w.id = d.webhook_id \
             JOIN outbox_messages m ON m.id = d.message_id \
             WHERE d.state = 'pending' AND d.next_attempt_ms <= $1 AND w.enabled \
             ORDER BY m.seq, d.created_ms LIMIT $2",
        )
        .bind(now_ms())
        .bind(BATCH)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let attempts: i64 = row.try_get("attempts")?;
                Ok(Due {
                    delivery: row.try_get("delivery")?,
                    webhook: row.try_get("webhook_id")?,
                    url: row.try_get("url")?,
                    secret: row.try_get("secret")?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    message: outbox::message_from_row(row)?,
                })
            })
            .collect()
    }

    async fn send(&self, client: &reqwest::Client, d: &Due) -> Outcome {
        let started = Instant::now();
        let failed = |error: String| Outcome {
            status: None,
            latency_ms: 0,
            error: Some(error),
            retry_after: None,
        };
        let Some(key) = secret_key(&d.secret) else {
            return failed("the endpoint's secret is not whsec_ base64".into());
        };
        let Ok(url) = reqwest::Url::parse(&d.url) else {
            return failed("the endpoint's URL does not parse".into());
        };
        if !self.config.allow_private_targets {
            // Names are checked by the resolver; literal addresses never reach it.
            if let Some(ip) = literal_ip(&url).filter(|ip| !is_public(*ip)) {
                return failed(format!("target {ip} is an internal address"));
            }
        }
        let timestamp = chrono::Utc::now().timestamp();
        let body = d.message.body();
        let signature = sign(&key, &d.message.id, timestamp, &body);
        let sent = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &d.message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match sent {
            Ok(response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
                Outcome {
                    status: Some(status.as_u16()),
                    latency_ms,
                    error: (!status.is_success()).then(|| format!("answered {status}")),
                    retry_after,
                }
            }
            Err(e) => {
                // Without the URL: it may carry a token in its query.
                let e = e.without_url();
                let mut error = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    error.push_str(": ");
                    error.push_str(&cause.to_string());
                    source = cause.source();
                }
                error.truncate(MAX_ERROR_LEN);
                Outcome {
                    status: None,
                    latency_ms,
                    error: Some(error),
                    retry_after: None,
                }
            }
        }
    }

    /// Writes the attempt, moves the delivery on, and disables an endpoint that keeps
    /// failing.
    async fn record(&self, d: &Due, outcome: &Outcome) -> Result<(), sqlx::Error> {
        let attempt = d.attempts.saturating_add(1);
        let mut tx = crate::db::write_tx(&self.pool).await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, latency_ms, error) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&d.delivery)
        .bind(i64::from(attempt))
        .bind(outbox::timestamp_now())
        .bind(outcome.status.map(i64::from))
        .bind(i64::try_from(outcome.latency_ms).unwrap_or(i64::MAX))
        .bind(&outcome.error)
        .execute(&mut *tx)
        .await?;
        let next = (!outcome.ok())
            .then(|| next_delay(&self.config.retry_delays(), attempt, outcome.retry_after))
            .flatten();
        let state = match (outcome.ok(), next) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        let next_ms =
            now_ms() + next.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = $2, next_attempt_ms = $3 WHERE id = $4",
        )
        .bind(state)
        .bind(i64::from(attempt))
        .bind(next_ms)
        .bind(&d.delivery)
        .execute(&mut *tx)
        .await?;
        match state {
            "delivered" => {
                sqlx::query("UPDATE webhooks SET consecutive_failures = 0 WHERE id = $1")
                    .bind(&d.webhook)
                    .execute(&mut *tx)
                    .await?;
            }
            "failed" => {
                let failures: i64 = sqlx::query_scalar(
                    "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1 \
                     WHERE id = $1 RETURNING consecutive_failures",
                )
                .bind(&d.webhook)
                .fetch_one(&mut *tx)
                .await?;
                if failures >= i64::from(self.config.disable_after_failures) {
                    sqlx::query(
                        "UPDATE webhooks SET enabled = FALSE, disabled_reason = $1, updated_at = $2 \
                         WHERE id = $3",
                    )
                    .bind(format!(
                        "{failures} deliveries in a row failed every attempt"
                    ))
                    .bind(crate::db::now())
                    .bind(&d.webhook)
                    .execute(&mut *tx)
                    .await?;
                    tracing::warn!(webhook = %d.webhook, failures, "webhook disabled after persistent failure");
                }
            }
            _ => {}
        }
        tx.commit().await?;
        tracing::debug!(
            delivery = %d.delivery,
            message = %d.message.id,
            attempt,
            status = ?outcome.status,
            state,
            "webhook attempt"
        );
        Ok(())
    }
}

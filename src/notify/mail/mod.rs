//! Email over SMTP (issue 12 item 6): a dispatcher that reads the outbox with its own
//! cursor, turns each message into the mails it causes ([`recipients`], rendered by
//! [`templates`]) in the transaction that moves the cursor, and sends them with lettre.
//!
//! At least once: a mail is marked `sent` only after the SMTP server accepted it, so a
//! crash between the two sends it again after the restart (with the same Message-ID,
//! `<mail_…@panocast>`). A failed send is tried again on the configured schedule
//! (`mail.retry_delays_ms`); the reason is kept in `mail_deliveries.last_error`. The
//! SMTP password is only handed to lettre, never logged.

pub mod recipients;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::config::{MailConfig, MailTls};
use crate::db::{self, Pool};
use crate::notify::outbox;
use crate::notify::webhooks::now_ms;
use crate::notify::webhooks::retry::next_delay;
use crate::public_url::PublicUrl;

/// Outbox messages read per tick, at most.
const READ_BATCH: i64 = 256;
/// Mails sent per tick, at most.
const SEND_BATCH: i64 = 32;
/// Longest error text kept.
const MAX_ERROR_LEN: usize = 300;

type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// A mail that is due. Due mails go out in the order of the messages that caused them.
struct Due {
    id: String,
    recipient: String,
    subject: String,
    text: String,
    html: String,
    attempts: u32,
}

/// The mail dispatcher.
pub struct Mailer {
    pool: Pool,
    config: MailConfig,
    /// What links in mails are absolute on.
    public: PublicUrl,
}

impl Mailer {
    pub fn new(pool: Pool, config: MailConfig, public: PublicUrl) -> Arc<Self> {
        Arc::new(Self {
            pool,
            config,
            public,
        })
    }

    /// Runs until `shutdown`; does nothing when mail is off (no `smtp_host`).
    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) {
        if !self.config.enabled() {
            tracing::info!("mail is off (no mail.smtp_host)");
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let (transport, from) = match this.transport() {
                Ok(built) => built,
                Err(e) => {
                    tracing::error!(error = %e, "mail transport cannot be built; no mail will be sent");
                    return;
                }
            };
            let poll = this.config.poll_interval();
            loop {
                if let Err(e) = this.tick(&transport, &from).await {
                    tracing::warn!(error = %e, "mail dispatch failed; retrying");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        });
    }

    fn transport(&self) -> Result<(Transport, Mailbox), String> {
        let host = self.config.smtp_host.as_deref().unwrap_or_default();
        let builder = match self.config.tls {
            MailTls::None => Transport::builder_dangerous(host),
            MailTls::Starttls => Transport::starttls_relay(host).map_err(|e| e.to_string())?,
            MailTls::Tls => Transport::relay(host).map_err(|e| e.to_string())?,
        };
        let mut builder = builder
            .port(self.config.smtp_port)
            .timeout(Some(self.config.timeout()));
        if let (Some(user), Some(password)) = (&self.config.username, &self.config.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        let from = self
            .config
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("mail.from: {e}"))?;
        Ok((builder.build(), from))
    }

    async fn tick(&self, transport: &Transport, from: &Mailbox) -> Result<(), sqlx::Error> {
        self.read_outbox().await?;
        for due in self.due().await? {
            let outcome = send(transport, from, &due).await;
            self.record(&due, outcome).await?;
        }
        Ok(())
    }

    /// Turns outbox messages after the cursor into mails, and moves the cursor, in one
    /// transaction.
    async fn read_outbox(&self) -> Result<(), sqlx::Error> {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM outbox_messages WHERE seq > \
             (SELECT last_seq FROM mail_cursor WHERE id = 1))",
        )
        .fetch_one(&self.pool)
        .await?;
        if !waiting {
            return Ok(());
        }
        // IMMEDIATE: the transaction writes after reading, and a deferred one could not
        // upgrade its read snapshot while another writer commits (SQLITE_BUSY_SNAPSHOT,
        // "database is locked" at once, whatever the busy timeout).
        let mut tx = crate::db::write_tx(&self.pool).await?;
        let cursor: i64 = sqlx::query_scalar("SELECT last_seq FROM mail_cursor WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let messages = outbox::after(&mut tx, cursor, READ_BATCH).await?;
        let Some(last) = messages.last().map(|m| m.seq) else {
            return Ok(());
        };
        let now = now_ms();
        for m in &messages {
            for mail in recipients::mails_for(&mut tx, m, &self.public).await? {
                sqlx::query(
                    "INSERT OR IGNORE INTO mail_deliveries (id, message_id, template, recipient, \
                     subject, text_body, html_body, state, attempts, next_attempt_ms, created_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
                )
                .bind(db::new_id("mail"))
                .bind(&m.id)
                .bind(mail.template.as_str())
                .bind(&mail.recipient)
                .bind(&mail.rendered.subject)
                .bind(&mail.rendered.text)
                .bind(&mail.rendered.html)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query("UPDATE mail_cursor SET last_seq = $1 WHERE id = 1")
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    async fn due(&self) -> Result<Vec<Due>, sqlx::Error> {
        sqlx::query(
            "SELECT d.id, d.recipient, d.subject, d.text_body, d.html_body, d.attempts \
             FROM mail_deliveries d JOIN outbox_messages m ON m.id = d.message_id \
             WHERE d.state = 'pending' AND d.next_attempt_ms <= $1 ORDER BY m.seq, d.id LIMIT $2",
        )
        .bind(now_ms())
        .bind(SEND_BATCH)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            let attempts: i64 = row.try_get("attempts")?;
            Ok(Due {
                id: row.try_get("id")?,
                recipient: row.try_get("recipient")?,
                subject: row.try_get("subject")?,
                text: row.try_get("text_body")?,
                html: row.try_get("html_body")?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            })
        })
        .collect()
    }

    async fn record(&self, due: &Due, outcome: Result<(), Failure>) -> Result<(), sqlx::Error> {
        let attempt = due.attempts.saturating_add(1);
        let (state, next_ms, error) = match outcome {
            Ok(()) => ("sent", now_ms(), None),
            Err(Failure::Permanent(e)) => ("failed", now_ms(), Some(e)),
            Err(Failure::Transient(e)) => {
                match next_delay(&self.config.retry_delays(), attempt, None) {
                    Some(wait) => ("pending", now_ms() + millis(wait), Some(e)),
                    None => ("failed", now_ms(), Some(e)),
                }
            }
        };
        sqlx::query(
            "UPDATE mail_deliveries SET state = $1, attempts = $2, next_attempt_ms = $3, \
             last_error = $4 WHERE id = $5",
        )
        .bind(state)
        .bind(i64::from(attempt))
        .bind(next_ms)
        .bind(&error)
        .bind(&due.id)
        .execute(&self.pool)
        .await?;
        match (state, &error) {
            ("sent", _) => tracing::info!(mail = %due.id, attempt, "mail sent"),
            (_, Some(e)) => {
                tracing::warn!(mail = %due.id, attempt, state, error = %e, "mail not sent")
            }
            _ => {}
        }
        Ok(())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Why a send failed.
enum Failure {
    /// Trying again will not help (a bad address).
    Permanent(String),
    /// The server is down, busy or answered 4xx.
    Transient(String),
}

async fn send(transport: &Transport, from: &Mailbox, due: &Due) -> Result<(), Failure> {
    let to = due
        .recipient
        .parse::<Mailbox>()
        .map_err(|e| Failure::Permanent(format!("recipient: {e}")))?;
    let email = lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&due.subject)
        .message_id(Some(format!("<{}@panocast>", due.id)))
        .multipart(MultiPart::alternative_plain_html(
            due.text.clone(),
            due.html.clone(),
        ))
        .map_err(|e| Failure::Permanent(format!("mail: {e}")))?;
    match transport.send(email).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let mut text = e.to_string();
            text.truncate(MAX_ERROR_LEN);
            if e.is_permanent() {
                Err(Failure::Permanent(text))
            } else {
                Err(Failure::Transient(text))
            }
        }
    }
}

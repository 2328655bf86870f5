//! Who gets which mail for an outbox message: the queries over accounts,
//! subscriptions and notification preferences. A missing preference row means "on".

use sqlx::{Row, SqliteConnection};

use super::templates::{self, Rendered, Template};
use crate::notify::outbox::Message;

/// One mail to write: its template, recipient and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub template: Template,
    pub recipient: String,
    pub rendered: Rendered,
}

/// Preference type of "starting soon" mails.
pub const PREF_STARTING_SOON: &str = "starting_soon";
/// Preference type of "live" mails.
pub const PREF_LIVE: &str = "live";

const EMAIL_WANTED: &str =
    "u.email IS NOT NULL AND NOT EXISTS (SELECT 1 FROM notification_preferences p \
     WHERE p.user_id = u.id AND p.type = $2 AND p.channel = 'email' AND NOT p.enabled)";

async fn emails(
    conn: &mut SqliteConnection,
    sql: &str,
    key: &str,
    pref: &str,
    extra: Option<&str>,
) -> Result<Vec<String>, sqlx::Error> {
    let mut q = sqlx::query(sql).bind(key).bind(pref);
    if let Some(extra) = extra {
        q = q.bind(extra);
    }
    q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("email"))
        .collect()
}

async fn slug_of(
    conn: &mut SqliteConnection,
    stream_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT slug FROM streams WHERE id = $1")
        .bind(stream_id)
        .fetch_optional(&mut *conn)
        .await
}

fn mails(template: Template, recipients: Vec<String>, rendered: &Rendered) -> Vec<Mail> {
    recipients
        .into_iter()
        .map(|recipient| Mail {
            template,
            recipient,
            rendered: rendered.clone(),
        })
        .collect()
}

fn text<'a>(data: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    data.pointer(pointer).and_then(serde_json::Value::as_str)
}

/// The mails `message` causes (none for most types).
pub async fn mails_for(
    conn: &mut SqliteConnection,
    message: &Message,
) -> Result<Vec<Mail>, sqlx::Error> {
    let data = &message.data;
    match message.kind.as_str() {
        "user.created" => {
            let (Some(username), Some(email)) =
                (text(data, "/user/username"), text(data, "/user/email"))
            else {
                return Ok(Vec::new());
            };
            Ok(vec![Mail {
                template: Template::Welcome,
                recipient: email.to_string(),
                rendered: templates::welcome(username),
            }])
        }
        "stream.live" => {
            let (Some(id), Some(slug)) = (text(data, "/stream/id"), text(data, "/stream/slug"))
            else {
                return Ok(Vec::new());
            };
            let sql = format!(
                "SELECT DISTINCT u.email FROM subscriptions s JOIN users u ON u.id = s.user_id \
                 WHERE s.stream_id = $1 AND {EMAIL_WANTED}"
            );
            let to = emails(conn, &sql, id, PREF_LIVE, None).await?;
            Ok(mails(
                Template::StreamLive,
                to,
                &templates::stream_live(slug, None),
            ))
        }
        "event.live" => {
            let (Some(id), Some(title)) = (text(data, "/event/id"), text(data, "/event/title"))
            else {
                return Ok(Vec::new());
            };
            let stream = text(data, "/event/stream_id").unwrap_or("");
            let slug = slug_of(conn, stream).await?.unwrap_or_default();
            // Subscribers of the stream itself got its `stream.live` mail.
            let sql = format!(
                "SELECT DISTINCT u.email FROM subscriptions s JOIN users u ON u.id = s.user_id \
                 WHERE s.event_id = $1 AND {EMAIL_WANTED} AND NOT EXISTS (SELECT 1 FROM subscriptions s2 \
                 WHERE s2.user_id = u.id AND s2.stream_id = $3)"
            );
            let to = emails(conn, &sql, id, PREF_LIVE, Some(stream)).await?;
            Ok(mails(
                Template::StreamLive,
                to,
                &templates::stream_live(&slug, Some(title)),
            ))
        }
        "event.starting_soon" => {
            let (Some(id), Some(title), Some(start)) = (
                text(data, "/event/id"),
                text(data, "/event/title"),
                text(data, "/event/scheduled_start"),
            ) else {
                return Ok(Vec::new());
            };
            let stream = text(data, "/event/stream_id").unwrap_or("");
            let sql = format!(
                "SELECT DISTINCT u.email FROM subscriptions s JOIN users u ON u.id = s.user_id \
                 WHERE (s.event_id = $1 OR s.stream_id = $3) AND {EMAIL_WANTED}"
            );
            let to = emails(conn, &sql, id, PREF_STARTING_SOON, Some(stream)).await?;
            Ok(mails(
                Template::EventStartingSoon,
                to,
                &templates::event_starting_soon(title, start),
            ))
        }
        _ => Ok(Vec::new()),
    }
}

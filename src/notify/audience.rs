//! Who is told about an outbox message, on one channel: the one place that reads
//! subscriptions and notification preferences for delivery. Mail
//! ([`super::mail::recipients`]) and in-app notifications ([`super::in_app`]) both ask
//! here, so a user's choice means the same on every channel.
//!
//! Rules (a missing preference row means "on"):
//! - `stream.live`: the stream's subscribers (preference `live`).
//! - `event.live`, `event.ended`: the event's subscribers who do not follow its stream
//!   (those hear about the stream itself) (preference `live`).
//! - `event.starting_soon`: subscribers of the event or of its stream
//!   (preference `starting_soon`).
//! - `recording.ready` (the replay): subscribers of the recorded stream, and of the
//!   event that live session was (preference `live`).
//! - `asset.ready`: the asset's owner (no preference: it is their own upload or
//!   recording).
//! - `user.created`: the new user (no preference: it is their welcome).
//! - Subscribers of a stream that has become private since are no longer told about
//!   it (nor its events and replays), unless they own it or are admins.

use sqlx::{Row, SqliteConnection};

use super::outbox::Message;

/// Preference type of "starting soon" notifications.
pub const PREF_STARTING_SOON: &str = "starting_soon";
/// Preference type of "live" (and "ended") notifications.
pub const PREF_LIVE: &str = "live";

/// A delivery channel, as `notification_preferences.channel` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Email,
    InApp,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::InApp => "in_app",
        }
    }
}

/// One user to tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    /// Present on [`Channel::Email`] (only users with an address are members there).
    pub email: Option<String>,
}

/// A field of the message's data.
pub fn text<'a>(data: &'a serde_json::Value, pointer: &str) -> Option<&'a str> {
    data.pointer(pointer).and_then(serde_json::Value::as_str)
}

/// The SQL condition "user `u` wants preference `$2` on `channel`".
fn wanted(channel: Channel) -> String {
    let address = match channel {
        Channel::Email => "u.email IS NOT NULL AND ",
        Channel::InApp => "",
    };
    format!(
        "{address}NOT EXISTS (SELECT 1 FROM notification_preferences p \
         WHERE p.user_id = u.id AND p.type = $2 AND p.channel = '{}' AND NOT p.enabled)",
        channel.as_str()
    )
}

/// The SQL condition "user `u` may see the stream whose id is `{stream}`": a stream
/// made private after someone subscribed no longer tells them about itself.
fn may_see(stream: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM streams st WHERE st.id = {stream} \
         AND st.visibility = 'private' AND st.owner_id IS NOT u.id AND u.role <> 'admin')"
    )
}

/// Subscribers matching `from_where` who want `pref` on `channel` and may see the
/// stream whose id is bound at `stream_param` (`$1` or `$3`).
async fn members(
    conn: &mut SqliteConnection,
    from_where: &str,
    stream_param: &str,
    channel: Channel,
    key: &str,
    pref: &str,
    stream: Option<&str>,
) -> Result<Vec<Member>, sqlx::Error> {
    let sql = format!(
        "SELECT DISTINCT u.id, u.email FROM subscriptions s JOIN users u ON u.id = s.user_id \
         WHERE {from_where} AND {} AND {} ORDER BY u.id",
        wanted(channel),
        may_see(stream_param)
    );
    let mut q = sqlx::query(&sql).bind(key).bind(pref);
    if let Some(stream) = stream {
        q = q.bind(stream);
    }
    q.fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(Member {
                user_id: r.try_get("id")?,
                email: r.try_get("email")?,
            })
        })
        .collect()
}

/// The users `message` reaches on `channel` (none for most types).
pub async fn audience(
    conn: &mut SqliteConnection,
    message: &Message,
    channel: Channel,
) -> Result<Vec<Member>, sqlx::Error> {
    let data = &message.data;
    match message.kind.as_str() {
        "user.created" => {
            let Some(user_id) = text(data, "/user/id") else {
                return Ok(Vec::new());
            };
            let email = text(data, "/user/email").map(str::to_string);
            if channel == Channel::Email && email.is_none() {
                return Ok(Vec::new());
            }
            Ok(vec![Member {
                user_id: user_id.to_string(),
                email,
            }])
        }
        "asset.ready" => {
            let Some(owner) = text(data, "/asset/owner_id") else {
                return Ok(Vec::new());
            };
            user(conn, owner, channel).await
        }
        "recording.ready" => {
            let (Some(stream), Some(session)) = (
                text(data, "/asset/stream_id"),
                text(data, "/asset/live_session_id"),
            ) else {
                return Ok(Vec::new());
            };
            members(
                conn,
                "(s.stream_id = $1 OR s.event_id IN \
                 (SELECT e.id FROM scheduled_events e WHERE e.session_id = $3))",
                "$1",
                channel,
                stream,
                PREF_LIVE,
                Some(session),
            )
            .await
        }
        "stream.live" => {
            let Some(id) = text(data, "/stream/id") else {
                return Ok(Vec::new());
            };
            members(conn, "s.stream_id = $1", "$1", channel, id, PREF_LIVE, None).await
        }
        "event.live" | "event.ended" => {
            let Some(id) = text(data, "/event/id") else {
                return Ok(Vec::new());
            };
            let stream = text(data, "/event/stream_id").unwrap_or("");
            members(
                conn,
                "s.event_id = $1 AND NOT EXISTS (SELECT 1 FROM subscriptions s2 \
                 WHERE s2.user_id = u.id AND s2.stream_id = $3)",
                "$3",
                channel,
                id,
                PREF_LIVE,
                Some(stream),
            )
            .await
        }
        "event.starting_soon" => {
            let Some(id) = text(data, "/event/id") else {
                return Ok(Vec::new());
            };
            let stream = text(data, "/event/stream_id").unwrap_or("");
            members(
                conn,
                "(s.event_id = $1 OR s.stream_id = $3)",
                "$3",
                channel,
                id,
                PREF_STARTING_SOON,
                Some(stream),
            )
            .await
        }
        _ => Ok(Vec::new()),
    }
}

/// User `id` alone, when they can be reached on `channel`.
async fn user(
    conn: &mut SqliteConnection,
    id: &str,
    channel: Channel,
) -> Result<Vec<Member>, sqlx::Error> {
    let row = sqlx::query("SELECT id, email FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let member = Member {
        user_id: row.try_get("id")?,
        email: row.try_get("email")?,
    };
    if channel == Channel::Email && member.email.is_none() {
        return Ok(Vec::new());
    }
    Ok(vec![member])
}

/// The slug of stream `id`, if it still exists.
pub async fn slug_of(conn: &mut SqliteConnection, id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT slug FROM streams WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

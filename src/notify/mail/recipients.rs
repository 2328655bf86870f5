//! Which mail an outbox message causes, and to whom: who is decided by
//! [`crate::notify::audience`] (shared with in-app notifications), what by
//! [`super::templates`], with links made absolute on the server's public URL.

use sqlx::SqliteConnection;

use super::templates::{self, Rendered, Template};
use crate::notify::audience::{audience, slug_of, text, Channel, Member};
use crate::notify::outbox::Message;
use crate::public_url::PublicUrl;

/// The player page of the stream with id `stream_id`, else the home page (the stream
/// was deleted meanwhile).
async fn watch_stream(
    conn: &mut SqliteConnection,
    public: &PublicUrl,
    stream_id: &str,
) -> Result<String, sqlx::Error> {
    Ok(match slug_of(conn, stream_id).await? {
        Some(slug) => public.join(&format!("/watch/{slug}")),
        None => public.join("/"),
    })
}

/// One mail to write: its template, recipient and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub template: Template,
    pub recipient: String,
    pub rendered: Rendered,
}

fn mails(template: Template, members: Vec<Member>, rendered: &Rendered) -> Vec<Mail> {
    members
        .into_iter()
        .filter_map(|m| m.email)
        .map(|recipient| Mail {
            template,
            recipient,
            rendered: rendered.clone(),
        })
        .collect()
}

/// The mails `message` causes (none for most types).
pub async fn mails_for(
    conn: &mut SqliteConnection,
    message: &Message,
    public: &PublicUrl,
) -> Result<Vec<Mail>, sqlx::Error> {
    let data = &message.data;
    match message.kind.as_str() {
        "user.created" => {
            let Some(username) = text(data, "/user/username") else {
                return Ok(Vec::new());
            };
            let rendered = templates::welcome(username, &public.join("/"));
            Ok(mails(
                Template::Welcome,
                audience(conn, message, Channel::Email).await?,
                &rendered,
            ))
        }
        "stream.live" => {
            let Some(slug) = text(data, "/stream/slug") else {
                return Ok(Vec::new());
            };
            let rendered =
                templates::stream_live(slug, None, &public.join(&format!("/watch/{slug}")));
            Ok(mails(
                Template::StreamLive,
                audience(conn, message, Channel::Email).await?,
                &rendered,
            ))
        }
        "event.live" => {
            let Some(title) = text(data, "/event/title") else {
                return Ok(Vec::new());
            };
            let members = audience(conn, message, Channel::Email).await?;
            let stream = text(data, "/event/stream_id").unwrap_or("");
            let slug = slug_of(conn, stream).await?.unwrap_or_default();
            let watch = watch_stream(conn, public, stream).await?;
            let rendered = templates::stream_live(&slug, Some(title), &watch);
            Ok(mails(Template::StreamLive, members, &rendered))
        }
        "event.ended" => {
            let Some(title) = text(data, "/event/title") else {
                return Ok(Vec::new());
            };
            let rendered = templates::event_ended(title);
            Ok(mails(
                Template::EventEnded,
                audience(conn, message, Channel::Email).await?,
                &rendered,
            ))
        }
        "recording.ready" => {
            let (Some(title), Some(id)) = (text(data, "/asset/title"), text(data, "/asset/id"))
            else {
                return Ok(Vec::new());
            };
            let rendered =
                templates::replay_ready(title, &public.join(&format!("/watch/vod/{id}")));
            Ok(mails(
                Template::ReplayReady,
                audience(conn, message, Channel::Email).await?,
                &rendered,
            ))
        }
        "asset.ready" => {
            let (Some(title), Some(id)) = (text(data, "/asset/title"), text(data, "/asset/id"))
            else {
                return Ok(Vec::new());
            };
            let rendered = templates::asset_ready(title, &public.join(&format!("/watch/vod/{id}")));
            Ok(mails(
                Template::AssetReady,
                audience(conn, message, Channel::Email).await?,
                &rendered,
            ))
        }
        "event.starting_soon" => {
            let (Some(title), Some(start)) = (
                text(data, "/event/title"),
                text(data, "/event/scheduled_start"),
            ) else {
                return Ok(Vec::new());
            };
            let stream = text(data, "/event/stream_id").unwrap_or("");
            let watch = watch_stream(conn, public, stream).await?;
            let rendered = templates::event_starting_soon(title, start, &watch);
            Ok(mails(
                Template::EventStartingSoon,
                audience(conn, message, Channel::Email).await?,
                &rendered,
            ))
        }
        _ => Ok(Vec::new()),
    }
}

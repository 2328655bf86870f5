//! What each mail says: subject, plain text and HTML, from the outbox message's data.
//! Pure functions; every value from the data is HTML-escaped in the HTML part.

use crate::html::escape_html;

/// A rendered mail, before it has a recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The mail templates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Template {
    /// To a new account with an email address (`user.created`).
    Welcome,
    /// To an event's subscribers (`event.starting_soon`).
    EventStartingSoon,
    /// To a stream's subscribers (`stream.live`) and an event's (`event.live`).
    StreamLive,
    /// To an event's subscribers (`event.ended`).
    EventEnded,
    /// To the subscribers of a recorded stream or event (`recording.ready`).
    ReplayReady,
    /// To an asset's owner (`asset.ready`).
    AssetReady,
}

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Welcome => "welcome",
            Template::EventStartingSoon => "event_starting_soon",
            Template::StreamLive => "stream_live",
            Template::EventEnded => "event_ended",
            Template::ReplayReady => "replay_ready",
            Template::AssetReady => "asset_ready",
        }
    }
}

fn html_page(title: &str, paragraphs: &[String]) -> String {
    let body: String = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>\n", escape_html(p)))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n<h1>{}</h1>\n{body}</body></html>\n",
        escape_html(title),
        escape_html(title)
    )
}

fn render(subject: String, heading: String, paragraphs: Vec<String>) -> Rendered {
    let mut text = format!("{heading}\n\n");
    for p in &paragraphs {
        text.push_str(p);
        text.push_str("\n\n");
    }
    Rendered {
        html: html_page(&heading, &paragraphs),
        subject,
        text,
    }
}

/// Welcome to `username`.
pub fn welcome(username: &str) -> Rendered {
    render(
        format!("Welcome to panocast, {username}"),
        format!("Welcome, {username}!"),
        vec![
            "Your panocast account is ready. Sign in to watch live 360° streams and \
             subscribe to the streams and events you do not want to miss."
                .into(),
        ],
    )
}

/// Event `title` starts at `start` (RFC 3339).
pub fn event_starting_soon(title: &str, start: &str) -> Rendered {
    render(
        format!("Starting soon: {title}"),
        format!("{title} is about to start"),
        vec![format!(
            "The event you subscribed to starts at {start}. Get your headset ready."
        )],
    )
}

/// Stream `slug` is live, for `event` when it is an event's stream.
pub fn stream_live(slug: &str, event: Option<&str>) -> Rendered {
    let what = event.unwrap_or(slug);
    render(
        format!("Live now: {what}"),
        format!("{what} is live"),
        vec![format!("The stream {slug} is live now: tune in.")],
    )
}

/// Event `title` has ended.
pub fn event_ended(title: &str) -> Rendered {
    render(
        format!("Ended: {title}"),
        format!("{title} has ended"),
        vec![
            "Thanks for watching. When it was recorded, we will tell you when the replay is ready."
                .into(),
        ],
    )
}

/// The recording `title` plays on demand at `url` (a path on this server).
pub fn replay_ready(title: &str, url: &str) -> Rendered {
    render(
        format!("Replay ready: {title}"),
        format!("The replay of {title} is ready"),
        vec![format!("Watch it on demand, in 360°, at {url}.")],
    )
}

/// The asset `title` is ready.
pub fn asset_ready(title: &str) -> Rendered {
    render(
        format!("Ready: {title}"),
        format!("{title} is ready"),
        vec!["It can be played and its audio downloaded as M4A and MP3 now.".into()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_part_escapes_what_users_typed() {
        let r = event_starting_soon("<script>alert(1)</script> & co", "2026-01-01T10:00:00Z");
        assert!(r
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(!r.html.contains("<script>"));
        assert!(r.text.contains("<script>alert(1)</script> & co"));
        assert_eq!(r.subject, "Starting soon: <script>alert(1)</script> & co");
    }

    #[test]
    fn welcome_names_the_user() {
        let r = welcome("alice");
        assert_eq!(r.subject, "Welcome to panocast, alice");
        assert!(r.text.starts_with("Welcome, alice!"));
        assert!(r.html.contains("<h1>Welcome, alice!</h1>"));
    }

    #[test]
    fn live_names_the_event_when_there_is_one() {
        assert_eq!(stream_live("match", None).subject, "Live now: match");
        assert_eq!(
            stream_live("match", Some("Final")).subject,
            "Live now: Final"
        );
    }
}

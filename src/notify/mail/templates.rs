//! What each mail says: subject, plain text and HTML, from the outbox message's data.
//! Pure functions; every value from the data is HTML-escaped in the HTML part. Links
//! are absolute (built on the public URL by [`super::recipients`]).

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

/// Where a mail points: an absolute URL (a mail client has no page to resolve a path
/// against) and what the link says.
#[derive(Clone, Copy, Debug)]
pub struct Link<'a> {
    pub label: &'a str,
    pub url: &'a str,
}

fn html_page(title: &str, paragraphs: &[String], link: Option<Link<'_>>) -> String {
    let mut body: String = paragraphs
        .iter()
        .map(|p| format!("<p>{}</p>\n", escape_html(p)))
        .collect();
    if let Some(link) = link {
        body.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>\n",
            escape_html(link.url),
            escape_html(link.label)
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n<h1>{}</h1>\n{body}</body></html>\n",
        escape_html(title),
        escape_html(title)
    )
}

fn render(
    subject: String,
    heading: String,
    paragraphs: Vec<String>,
    link: Option<Link<'_>>,
) -> Rendered {
    let mut text = format!("{heading}\n\n");
    for p in &paragraphs {
        text.push_str(p);
        text.push_str("\n\n");
    }
    if let Some(link) = link {
        text.push_str(&format!("{}: {}\n\n", link.label, link.url));
    }
    Rendered {
        html: html_page(&heading, &paragraphs, link),
        subject,
        text,
    }
}

/// Welcome to `username`; `portal` is the server's home page.
pub fn welcome(username: &str, portal: &str) -> Rendered {
    render(
        format!("Welcome to panocast, {username}"),
        format!("Welcome, {username}!"),
        vec![
            "Your panocast account is ready. Sign in to watch live 360° streams and \
             subscribe to the streams and events you do not want to miss."
                .into(),
        ],
        Some(Link {
            label: "Sign in",
            url: portal,
        }),
    )
}

/// Event `title` starts at `start` (RFC 3339), to be watched at `watch`.
pub fn event_starting_soon(title: &str, start: &str, watch: &str) -> Rendered {
    render(
        format!("Starting soon: {title}"),
        format!("{title} is about to start"),
        vec![format!(
            "The event you subscribed to starts at {start}. Get your headset ready."
        )],
        Some(Link {
            label: "Watch",
            url: watch,
        }),
    )
}

/// Stream `slug` is live, for `event` when it is an event's stream, at `watch`.
pub fn stream_live(slug: &str, event: Option<&str>, watch: &str) -> Rendered {
    let what = event.unwrap_or(slug);
    render(
        format!("Live now: {what}"),
        format!("{what} is live"),
        vec![format!("The stream {slug} is live now: tune in.")],
        Some(Link {
            label: "Watch live",
            url: watch,
        }),
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
        None,
    )
}

/// The recording `title` plays on demand at `watch` (an absolute URL).
pub fn replay_ready(title: &str, watch: &str) -> Rendered {
    render(
        format!("Replay ready: {title}"),
        format!("The replay of {title} is ready"),
        vec![format!("Watch it on demand, in 360°, at {watch}.")],
        Some(Link {
            label: "Watch the replay",
            url: watch,
        }),
    )
}

/// The asset `title` is ready, to be played at `watch`.
pub fn asset_ready(title: &str, watch: &str) -> Rendered {
    render(
        format!("Ready: {title}"),
        format!("{title} is ready"),
        vec!["It can be played and its audio downloaded as M4A and MP3 now.".into()],
        Some(Link {
            label: "Play it",
            url: watch,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_part_escapes_what_users_typed() {
        let r = event_starting_soon(
            "<script>alert(1)</script> & co",
            "2026-01-01T10:00:00Z",
            "https://tv.example.com/watch/x?a=1&b=\"2\"",
        );
        assert!(r
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(!r.html.contains("<script>"));
        assert!(r.text.contains("<script>alert(1)</script> & co"));
        assert_eq!(r.subject, "Starting soon: <script>alert(1)</script> & co");
        assert!(r.html.contains(
            "<a href=\"https://tv.example.com/watch/x?a=1&amp;b=&quot;2&quot;\">Watch</a>"
        ));
    }

    #[test]
    fn links_are_in_both_parts() {
        let r = stream_live("match", None, "https://tv.example.com/watch/match");
        assert!(r
            .text
            .contains("Watch live: https://tv.example.com/watch/match"));
        assert!(r
            .html
            .contains("<a href=\"https://tv.example.com/watch/match\">Watch live</a>"));
    }

    #[test]
    fn welcome_names_the_user() {
        let r = welcome("alice", "https://tv.example.com");
        assert_eq!(r.subject, "Welcome to panocast, alice");
        assert!(r.text.starts_with("Welcome, alice!"));
        assert!(r.html.contains("<h1>Welcome, alice!</h1>"));
    }

    #[test]
    fn live_names_the_event_when_there_is_one() {
        let watch = "https://tv.example.com/watch/match";
        assert_eq!(stream_live("match", None, watch).subject, "Live now: match");
        assert_eq!(
            stream_live("match", Some("Final"), watch).subject,
            "Live now: Final"
        );
    }
}

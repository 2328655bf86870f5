//! What an in-app notification says, from its outbox message. Pure functions; the
//! client escapes what it shows (these are plain text).

use crate::notify::audience::text;
use crate::notify::outbox::Message;

use super::NotificationData;

/// Title, text and data of the notification `message` causes; `slug` is the slug of
/// the event's stream, looked up by the caller. None for types that notify nobody.
pub fn word(message: &Message, slug: Option<&str>) -> Option<(String, String, NotificationData)> {
    let data = &message.data;
    let event = |pointer| text(data, pointer).map(str::to_string);
    match message.kind.as_str() {
        "user.created" => {
            let name = text(data, "/user/username")?;
            Some((
                format!("Welcome to panocast, {name}"),
                "Subscribe to the streams and events you do not want to miss.".into(),
                NotificationData::default(),
            ))
        }
        "stream.live" => {
            let slug = text(data, "/stream/slug")?;
            Some((
                format!("Live now: {slug}"),
                format!("The stream {slug} is live now: tune in."),
                NotificationData {
                    stream_id: text(data, "/stream/id").map(str::to_string),
                    stream_slug: Some(slug.to_string()),
                    ..NotificationData::default()
                },
            ))
        }
        "asset.ready" => {
            let title = text(data, "/asset/title")?;
            Some((
                format!("Ready: {title}"),
                format!("{title} is ready to watch and download."),
                NotificationData {
                    asset_id: text(data, "/asset/id").map(str::to_string),
                    ..NotificationData::default()
                },
            ))
        }
        "recording.ready" => {
            let title = text(data, "/asset/title")?;
            Some((
                format!("Replay ready: {title}"),
                format!("The recording {title} can be watched now."),
                NotificationData {
                    stream_id: text(data, "/asset/stream_id").map(str::to_string),
                    stream_slug: slug.map(str::to_string),
                    event_id: None,
                    asset_id: text(data, "/asset/id").map(str::to_string),
                },
            ))
        }
        kind @ ("event.live" | "event.ended" | "event.starting_soon") => {
            let title = text(data, "/event/title")?;
            let (head, body) = match kind {
                "event.live" => (
                    format!("Live now: {title}"),
                    format!("{title} is live now: tune in."),
                ),
                "event.ended" => (format!("Ended: {title}"), format!("{title} has ended.")),
                _ => (
                    format!("Starting soon: {title}"),
                    format!(
                        "{title} starts at {}.",
                        text(data, "/event/scheduled_start").unwrap_or("the scheduled time")
                    ),
                ),
            };
            Some((
                head,
                body,
                NotificationData {
                    stream_id: event("/event/stream_id"),
                    stream_slug: slug.map(str::to_string),
                    event_id: event("/event/id"),
                    asset_id: None,
                },
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: &str, data: serde_json::Value) -> Message {
        Message {
            seq: 1,
            id: "msg_1".into(),
            kind: kind.into(),
            occurred_at: "2026-01-01T00:00:00.000Z".into(),
            data,
        }
    }

    #[test]
    fn stream_live_names_the_stream() {
        let m = message(
            "stream.live",
            serde_json::json!({"stream": {"id": "st_1", "slug": "match"}, "session_id": "ls_1"}),
        );
        let (title, text, data) = word(&m, None).expect("worded");
        assert_eq!(title, "Live now: match");
        assert!(text.contains("match"));
        assert_eq!(data.stream_slug.as_deref(), Some("match"));
        assert_eq!(data.stream_id.as_deref(), Some("st_1"));
    }

    #[test]
    fn event_notifications_carry_the_event_and_its_stream() {
        let m = message(
            "event.starting_soon",
            serde_json::json!({"event": {"id": "ev_1", "title": "Final", "stream_id": "st_1",
                "scheduled_start": "2026-01-01T10:00:00Z"}}),
        );
        let (title, text, data) = word(&m, Some("match")).expect("worded");
        assert_eq!(title, "Starting soon: Final");
        assert!(text.contains("2026-01-01T10:00:00Z"));
        assert_eq!(data.event_id.as_deref(), Some("ev_1"));
        assert_eq!(data.stream_slug.as_deref(), Some("match"));
    }

    #[test]
    fn other_types_and_incomplete_data_word_nothing() {
        assert!(word(&message("stream.created", serde_json::json!({})), None).is_none());
        assert!(word(&message("stream.live", serde_json::json!({})), None).is_none());
    }
}

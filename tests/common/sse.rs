//! A Server-Sent Events reader over reqwest's body chunks (WHATWG HTML §9.2 event
//! stream format: `field: value` lines, events ended by a blank line, `:` comments),
//! as an EventSource-less client would read a feed.

use std::time::{Duration, Instant};

/// One event as dispatched: `event` defaults to `message`.
#[derive(Clone, Debug, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| {
            panic!("event {} data is not JSON ({e}): {}", self.event, self.data)
        })
    }
}

/// An open feed.
pub struct SseReader {
    resp: reqwest::Response,
    buf: Vec<u8>,
    pub content_type: String,
    /// Keep-alive comments seen so far.
    pub comments: usize,
    ended: bool,
}

/// What opening a feed gave when it was not a 200.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// A client without an overall timeout: feeds are meant to stay open.
pub fn feed_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("http client")
}

impl SseReader {
    /// `GET url` with `Accept: text/event-stream`, an optional bearer token and
    /// `Last-Event-ID`.
    pub async fn open(
        client: &reqwest::Client,
        url: &str,
        bearer: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<SseReader, Refused> {
        let mut req = client.get(url).header("accept", "text/event-stream");
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp.text().await.unwrap_or_default();
            return Err(Refused {
                status,
                content_type,
                body,
            });
        }
        Ok(SseReader {
            resp,
            buf: Vec::new(),
            content_type,
            comments: 0,
            ended: false,
        })
    }

    /// The next event, or None when none came within `limit` or the feed ended.
    pub async fn next(&mut self, limit: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(event) = self.take_event() {
                return Some(event);
            }
            if self.ended {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(bytes))) => self.buf.extend_from_slice(&bytes),
                Ok(Ok(None)) | Ok(Err(_)) => self.ended = true,
            }
        }
    }

    /// The next event named `name` within `limit`, skipping others; panics without.
    pub async fn expect(&mut self, name: &str, limit: Duration) -> SseEvent {
        let deadline = Instant::now() + limit;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(e) if e.event == name => return e,
                Some(e) => skipped.push(e),
                None => panic!("no `{name}` event within {limit:?}; skipped {skipped:#?}"),
            }
        }
    }

    /// Whether the server ended the feed (read until `limit`).
    pub async fn ends_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.next(left).await;
        }
        true
    }

    /// Parses one complete event off the buffer (comments are counted and skipped).
    fn take_event(&mut self) -> Option<SseEvent> {
        loop {
            let text = std::str::from_utf8(&self.buf).ok()?;
            let end = text.find("\n\n")?;
            let block = text[..end].to_string();
            self.buf.drain(..end + 2);
            let (mut event, mut id, mut data) = (None, None, Vec::new());
            for line in block.lines() {
                if line.starts_with(':') {
                    self.comments += 1;
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event = Some(value.to_string()),
                    "id" => id = Some(value.to_string()),
                    "data" => data.push(value.to_string()),
                    _ => {}
                }
            }
            if event.is_none() && data.is_empty() {
                continue;
            }
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".into()),
                id,
                data: data.join("\n"),
            });
        }
    }
}

//! One Server-Sent Events connection with a stated bound: the task that produces a
//! feed pushes into a channel of [`CLIENT_BUFFER`] events, and the response body takes
//! from it as fast as the client reads. A client that falls that far behind is
//! dropped (its producer stops and the response ends once the buffer is drained), so a
//! reader that never reads costs at most the buffer, never more. Keep-alive comments
//! go out every [`KEEP_ALIVE`] while nothing else does.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::mpsc;

/// Events buffered per connection; a client this far behind is dropped.
pub const CLIENT_BUFFER: usize = 64;
/// Interval of the keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The producing side of one connection's feed.
pub struct FeedSender {
    tx: mpsc::Sender<Event>,
    /// What the feed is, for the log line of a dropped client.
    what: &'static str,
}

/// Why the producer should stop.
#[derive(Debug, PartialEq, Eq)]
pub enum Gone {
    /// The client closed the connection.
    Closed,
    /// The client did not keep up and is dropped.
    TooSlow,
}

impl FeedSender {
    /// Queues `event` without waiting.
    pub fn push(&self, event: Event) -> Result<(), Gone> {
        match self.tx.try_send(event) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Gone::Closed),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    feed = self.what,
                    buffer = CLIENT_BUFFER,
                    "SSE client is too slow; dropping it"
                );
                Err(Gone::TooSlow)
            }
        }
    }

    /// Queues `event`, waiting while the buffer is full: for replays read from the
    /// database, which the client paces (nothing waits in memory but the buffer).
    pub async fn send_paced(&self, event: Event) -> Result<(), Gone> {
        self.tx.send(event).await.map_err(|_| Gone::Closed)
    }

    /// Resolves when the client has gone.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// A bounded feed named `what`: the sender for its producer task and the response.
pub fn feed(
    what: &'static str,
) -> (
    FeedSender,
    Sse<impl Stream<Item = Result<Event, Infallible>>>,
) {
    let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    (
        FeedSender { tx, what },
        Sse::new(body).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)),
    )
}

/// A JSON event `name`, with `id` when it has one a client may resume from.
pub fn json_event(name: &str, id: Option<&str>, data: &impl serde::Serialize) -> Event {
    let mut event = Event::default().event(name);
    if let Some(id) = id {
        event = event.id(id);
    }
    match event.json_data(data) {
        Ok(event) => event,
        // Our own types always serialize; say so on the wire rather than panic.
        Err(_) => Event::default().event("error").data("unserializable event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_that_does_not_read_is_dropped_at_the_bound() {
        let (tx, _body) = feed("test");
        for i in 0..CLIENT_BUFFER {
            let id = i.to_string();
            assert_eq!(tx.push(json_event("n", Some(&id), &i)), Ok(()));
        }
        assert_eq!(tx.push(json_event("n", None, &0)), Err(Gone::TooSlow));
    }

    #[tokio::test]
    async fn a_client_that_left_is_gone() {
        let (tx, body) = feed("test");
        drop(body);
        assert_eq!(tx.push(json_event("n", None, &0)), Err(Gone::Closed));
        tx.closed().await;
    }
}

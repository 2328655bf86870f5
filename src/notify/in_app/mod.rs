//! In-app notifications (issue 12 item 5): what a signed-in user is told inside the
//! app, persisted per user. The [`dispatcher`] reads the outbox with its own cursor and
//! writes one row per (user, message) for the users [`crate::notify::audience`] selects
//! on the `in_app` channel, worded by [`wording`]; [`store`] reads and marks them; the
//! [`InApp`] hub tells open SSE feeds about new rows as soon as they are committed.
//!
//! Contract:
//! - At most one notification per user and outbox message (`UNIQUE (user_id,
//!   message_id)`), however often the outbox is re-read after a crash.
//! - `seq` orders a user's notifications as they were committed; the SSE feed replays
//!   by it after a reconnect, then follows the hub.
//! - The hub is a bounded broadcast ([`HUB_CAPACITY`]); a feed that falls behind reads
//!   what it missed from the database instead, so the hub never loses anything a user
//!   could notice.

pub mod dispatcher;
pub mod store;
pub mod wording;

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::db::Pool;
use crate::notify::webhooks::MessageType;

/// New notifications kept for feeds that have not read them yet.
pub const HUB_CAPACITY: usize = 1024;

/// What a notification is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct NotificationData {
    /// The stream (`st_…`), when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_slug: Option<String>,
    /// The scheduled event (`ev_…`), when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The asset (`as_…`), when it is about one: the replay, a ready upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
}

/// One notification of one user.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Notification {
    /// `ntf_…`; also the SSE `id:`.
    pub id: String,
    /// The outbox message type that caused it.
    #[serde(rename = "type")]
    pub kind: MessageType,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339 time it was marked read; null while unread.
    pub read_at: Option<String>,
    /// One line a person can read, e.g. "Live now: match".
    pub title: String,
    /// A sentence or two.
    pub text: String,
    pub data: NotificationData,
    /// Commit order (internal).
    #[serde(skip)]
    pub seq: i64,
    #[serde(skip)]
    pub user_id: String,
}

/// The notifications room: the store's pool, the hub of new rows, and the server's
/// shutdown (open feeds end with it instead of holding the drain).
pub struct InApp {
    pub pool: Pool,
    hub: broadcast::Sender<Arc<Notification>>,
    pub shutdown: CancellationToken,
}

impl InApp {
    pub fn new(pool: Pool, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            pool,
            hub: broadcast::Sender::new(HUB_CAPACITY),
            shutdown,
        })
    }

    /// Every notification committed from now on (all users; feeds filter).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notification>> {
        self.hub.subscribe()
    }

    /// Announces committed notifications; never waits.
    fn announce(&self, committed: Vec<Notification>) {
        for n in committed {
            // No feed open is not an error.
            let _ = self.hub.send(Arc::new(n));
        }
    }

    /// Starts the dispatcher; runs until the shutdown.
    pub fn spawn(self: &Arc<Self>) {
        dispatcher::spawn(Arc::clone(self));
    }
}

//! The `data` of every outbox message type (issue 12 item 7): one type per shape,
//! used by the producers that write it and by the OpenAPI document
//! ([`crate::api::openapi`] names each type's schema in `WebhookPayload` and in the
//! document's `webhooks`). [`SCHEMAS`] says which type carries which.

use serde::Serialize;
use utoipa::ToSchema;

use super::webhooks::MessageType;
use crate::assets::Asset;
use crate::auth::accounts::User;
use crate::schedule::ScheduledEvent;
use crate::streams::events::{SessionEndReason, StreamRef, StreamSummary};
use crate::streams::session::LiveSessionInfo;

/// `stream.created`, `stream.updated` (with `changed`), `stream.deleted`,
/// `stream.key_rotated`: the stream as it is (or was) without secrets.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StreamChanged {
    pub stream: StreamSummary,
    /// Names of the fields that changed (`stream.updated` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<Vec<&'static str>>,
}

/// `stream.live`: the first complete segment of a connection; viewers can watch.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StreamLive {
    pub stream: StreamRef,
    /// The live session (`ls_…`).
    pub session_id: String,
}

/// `stream.offline`: the live session ended.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StreamOffline {
    pub stream: StreamRef,
    pub session: LiveSessionInfo,
    pub reason: SessionEndReason,
}

/// `user.created`: the new account (never its password).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserCreated {
    pub user: User,
}

/// `event.scheduled`, `event.starting_soon`, `event.live`, `event.ended`,
/// `event.cancelled`: the scheduled event in its new state.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EventChanged {
    pub event: ScheduledEvent,
}

/// `asset.created`, `asset.ready`, `asset.errored`, `recording.started`,
/// `recording.ready`: the asset as it is then (a recording names its stream and live
/// session).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AssetChanged {
    pub asset: Asset,
}

/// `webhook.test`: sent to one endpoint by its test-send.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookTest {
    pub webhook_id: String,
}

/// Every message type with the name of its `data` schema.
pub const SCHEMAS: [(MessageType, &str); 18] = [
    (MessageType::StreamCreated, "StreamChanged"),
    (MessageType::StreamUpdated, "StreamChanged"),
    (MessageType::StreamDeleted, "StreamChanged"),
    (MessageType::StreamKeyRotated, "StreamChanged"),
    (MessageType::StreamLive, "StreamLive"),
    (MessageType::StreamOffline, "StreamOffline"),
    (MessageType::UserCreated, "UserCreated"),
    (MessageType::EventScheduled, "EventChanged"),
    (MessageType::EventStartingSoon, "EventChanged"),
    (MessageType::EventLive, "EventChanged"),
    (MessageType::EventEnded, "EventChanged"),
    (MessageType::EventCancelled, "EventChanged"),
    (MessageType::AssetCreated, "AssetChanged"),
    (MessageType::AssetReady, "AssetChanged"),
    (MessageType::AssetErrored, "AssetChanged"),
    (MessageType::RecordingStarted, "AssetChanged"),
    (MessageType::RecordingReady, "AssetChanged"),
    (MessageType::WebhookTest, "WebhookTest"),
];

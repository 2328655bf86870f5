//! The outbox's event types in the document (issue 12 item 7): `WebhookPayload`, a
//! `oneOf` with one member per [`MessageType`] (`type` fixed to it, `timestamp`, and
//! `data` referring to its schema from [`crate::notify::payloads`]), and the 3.1
//! top-level `webhooks`, one entry per type, each a POST whose body is that member.
//! `MessageType` (the webhook filter's and the notification's `type`) says where to
//! look.

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::Modify;

use crate::notify::payloads::SCHEMAS;

/// Name of the payload schema.
pub const PAYLOAD: &str = "WebhookPayload";

/// The payload member of message type `kind` whose data is schema `data`.
fn member(kind: &str, data: &str) -> Schema {
    ObjectBuilder::new()
        .title(Some(kind))
        .property(
            "type",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind])),
        )
        .required("type")
        .property(
            "timestamp",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("RFC 3339 time it happened")),
        )
        .required("timestamp")
        .property("data", Ref::from_schema_name(data))
        .required("data")
        .into()
}

/// Adds `WebhookPayload` and points `MessageType` at it.
pub struct EventTypes;

impl Modify for EventTypes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut one_of = OneOfBuilder::new().description(Some(
            "The JSON body of every webhook delivery (Standard Webhooks: `type`, `timestamp`, \
             `data`); `type` says which member it is.",
        ));
        for (kind, data) in SCHEMAS {
            one_of = one_of.item(member(kind.as_str(), data));
        }
        components
            .schemas
            .insert(PAYLOAD.to_string(), RefOr::T(one_of.into()));
        if let Some(RefOr::T(Schema::Object(types))) = components.schemas.get_mut("MessageType") {
            types.description = Some(format!(
                "An outbox message type: what webhook endpoints filter on and what an in-app \
                 notification is about. `{PAYLOAD}` gives the schema of each type's `data`."
            ));
        }
    }
}

/// The document's top-level `webhooks` (OpenAPI 3.1 §4.8.1): what panocast POSTs to
/// a registered endpoint, per message type.
pub fn webhooks() -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (kind, data) in SCHEMAS {
        let body = serde_json::to_value(member(kind.as_str(), data)).unwrap_or_default();
        out.insert(
            kind.as_str().to_string(),
            serde_json::json!({
                "post": {
                    "operationId": format!("webhook_{}", kind.as_str().replace('.', "_")),
                    "summary": format!("`{}` delivered to a webhook endpoint", kind.as_str()),
                    "description": "Signed with the headers `webhook-id` (the message id, the same on every \
                        retry), `webhook-timestamp` and `webhook-signature` (Standard Webhooks).",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": body}}},
                    "responses": {"2XX": {"description": "received; any other answer is retried"}}
                }
            }),
        );
    }
    serde_json::Value::Object(out)
}

//! The OpenAPI 3.1 document, generated from the handlers' annotations (its docs page,
//! Swagger UI bundled into the web app, is served by `super::web`).
//!
//! Handlers declare their success answers and the errors their own logic returns (403,
//! 404, 409, 429, 500, ...). [`errors::ErrorResponses`] is the one place that adds what the
//! shared extractors answer (a JSON body: 400, 413, 415, 422; query parameters: 400;
//! a bearer token: 401) and gives every error its `application/problem+json` body and
//! headers, so the document cannot say `application/json` where the server sends a
//! problem. [`fields`] holds the request-field schemas the derive cannot spell.
//! `scripts/schemathesis.sh` checks the whole document against the running server.

mod errors;
pub mod event_types;
pub mod fields;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

use errors::ErrorResponses;
use event_types::EventTypes;

use crate::notify::payloads;

use super::problem::Problem;
#[cfg(test)]
use super::problem::PROBLEM_JSON;
use super::{
    accounts, analytics, assets, audit, auth_config, catalog, events, ingest_address, jobs,
    live_feed, notifications, posters, search, signing_keys, streams, subscriptions, uploads,
    webhooks, AppState,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "panocast", description = "Accounts, stream catalog and playback tokens of a panocast server. \
        Every error is an RFC 9457 problem (`application/problem+json`)."),
    paths(
        accounts::login, accounts::refresh, accounts::logout, accounts::register,
        accounts::me, accounts::create_user, accounts::list_users, accounts::update_user, accounts::jwks,
        catalog::list, catalog::create, catalog::update, catalog::delete,
        catalog::rotate_key, catalog::playback_token, streams::stream_info,
        webhooks::create, webhooks::list, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::rotate_secret, webhooks::deliveries, webhooks::replay, webhooks::test_send,
        events::create, events::list, events::get, events::update, events::delete,
        subscriptions::list, subscriptions::create, subscriptions::delete,
        subscriptions::get_preferences, subscriptions::put_preferences,
        notifications::list, notifications::mark_read, notifications::mark_all_read,
        notifications::stream, live_feed::live_state,
        assets::create, assets::list, assets::get, assets::delete, assets::download_m4a,
        assets::download_mp3, assets::playback_token, jobs::list, jobs::cancel, jobs::retry,
        uploads::options, uploads::create, uploads::head, uploads::patch, uploads::delete,
        audit::list, signing_keys::get, signing_keys::rotate,
        search::search,
        analytics::viewers, analytics::timeseries, analytics::heatmap,
        analytics::live_session_summary, analytics::asset_summary, analytics::beacon,
        posters::stream_poster, posters::asset_poster,
        auth_config::auth_config, ingest_address::ingest_urls,
    ),
    components(schemas(Problem, uploads::TusResumable, uploads::TusMetadata, uploads::FileBytes,
        payloads::StreamChanged, payloads::StreamLive, payloads::StreamOffline,
        payloads::UserCreated, payloads::EventChanged, payloads::AssetChanged, payloads::WebhookTest)),
    modifiers(&BearerAuth, &ErrorResponses, &EventTypes)
)]
pub struct ApiDoc;

/// The document this server serves: [`ApiDoc`] with the request schemas' `ladder`
/// limited to the ladders configured here (any other is a 422).
pub fn document(ladders: &[String]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let Some(components) = doc.components.as_mut() else {
        return doc;
    };
    for name in ["NewStream", "StreamPatch"] {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) else {
            continue;
        };
        if let Some(RefOr::T(Schema::Object(ladder))) = object.properties.get_mut("ladder") {
            // Both fields take `null` for "the default" / "unchanged".
            let mut names: Vec<serde_json::Value> = ladders
                .iter()
                .map(|l| serde_json::Value::from(l.as_str()))
                .collect();
            names.push(serde_json::Value::Null);
            ladder.enum_values = Some(names);
        }
    }
    doc
}

/// [`document`] as served: with the top-level `webhooks` (which utoipa has no field
/// for) from [`event_types::webhooks`].
pub fn document_json(ladders: &[String]) -> serde_json::Value {
    let mut doc = serde_json::to_value(document(ladders)).unwrap_or_default();
    if let Some(map) = doc.as_object_mut() {
        map.insert("webhooks".into(), event_types::webhooks());
    }
    doc
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    let body = document_json(&state.ladders).to_string();
    ([(header::CONTENT_TYPE, "application/json")], body)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::body::{JSON_BODY_REJECTIONS, MAX_PAGE_ITEMS, QUERY_REJECTIONS};
    use crate::auth::password;
    use serde_json::Value;

    fn doc() -> Value {
        let ladders = ["default".to_string(), "360".to_string()];
        document_json(&ladders)
    }

    /// `(method path, operation)` of every operation.
    fn operations(doc: &Value) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                out.push((format!("{method} {path}"), op));
            }
        }
        assert!(out.len() >= 15, "{} operations", out.len());
        out
    }

    fn statuses(op: &Value) -> Vec<u16> {
        op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(|k| k.parse().expect("numeric status"))
            .collect()
    }

    #[test]
    fn document_is_openapi_31() {
        let doc = doc();
        assert!(doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")));
        assert!(doc["paths"]["/api/v1/streams/{stream}/playback-token"]["post"].is_object());
    }

    #[test]
    fn every_error_is_a_problem_and_every_success_json() {
        let doc = doc();
        for (name, op) in operations(&doc) {
            for (code, response) in op["responses"].as_object().expect("responses") {
                let content = response["content"].as_object();
                let types: Vec<&String> = content.iter().flat_map(|c| c.keys()).collect();
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{name} {code}: no description"
                );
                if code.starts_with('2') {
                    // JSON, except the audio downloads, the posters and the SSE feeds.
                    let download = name.ends_with("/audio.m4a") || name.ends_with("/audio.mp3");
                    let poster = name.ends_with("/poster.jpg");
                    let feed = name.ends_with("/stream") && name.starts_with("get ");
                    assert!(
                        types.iter().all(|t| *t == "application/json"
                            || (download && t.starts_with("audio/"))
                            || (poster && *t == "image/jpeg")
                            || (feed && *t == "text/event-stream")),
                        "{name} {code}: {types:?}"
                    );
                    continue;
                }
                if code.starts_with('3') {
                    // 304 Not Modified: headers only.
                    assert!(types.is_empty(), "{name} {code}: {types:?}");
                    continue;
                }
                assert_eq!(types, [PROBLEM_JSON], "{name} {code}");
                assert_eq!(
                    response["content"][PROBLEM_JSON]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{name} {code}"
                );
                let header = match code.as_str() {
                    "401" => Some("WWW-Authenticate"),
                    "429" => Some("Retry-After"),
                    _ => None,
                };
                if let Some(header) = header {
                    assert!(response["headers"][header].is_object(), "{name} {code}");
                }
            }
        }
    }

    #[test]
    fn what_the_extractors_answer_is_documented() {
        let doc = doc();
        for (name, op) in operations(&doc) {
            let documented = statuses(op);
            if op.get("requestBody").is_some() {
                let types: Vec<&String> = op["requestBody"]["content"]
                    .as_object()
                    .expect("body content")
                    .keys()
                    .collect();
                // JSON, except the uploads: a multipart form, tus bytes.
                let expected = match name.as_str() {
                    "post /api/v1/assets" => "multipart/form-data",
                    "patch /api/v1/uploads/{upload}" => "application/offset+octet-stream",
                    _ => "application/json",
                };
                assert_eq!(types, [expected], "{name}");
                for status in JSON_BODY_REJECTIONS {
                    assert!(documented.contains(&status.as_u16()), "{name}: {status}");
                }
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "query") {
                for status in QUERY_REJECTIONS {
                    assert!(documented.contains(&status.as_u16()), "{name}: {status}");
                }
            }
            // Every path parameter is in the path template, every other one in the
            // query (an `in: path` query parameter is what a derive gets by default).
            for p in &params {
                let placeholder = format!("{{{}}}", p["name"].as_str().expect("name"));
                assert_eq!(
                    p["in"] == "path",
                    name.contains(&placeholder),
                    "{name}: {p}"
                );
            }
            let bearer = op["security"]
                .as_array()
                .is_some_and(|alternatives| alternatives.iter().any(|a| a.get("bearer").is_some()));
            assert!(!bearer || documented.contains(&401), "{name}");
        }
    }

    #[test]
    fn every_message_type_has_a_payload_schema_and_a_webhook() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        let types = schemas["MessageType"]["enum"]
            .as_array()
            .expect("MessageType is an enum");
        let members = schemas["WebhookPayload"]["oneOf"]
            .as_array()
            .expect("WebhookPayload is a oneOf");
        let tagged: Vec<&Value> = members
            .iter()
            .map(|m| &m["properties"]["type"]["enum"][0])
            .collect();
        assert_eq!(tagged, types.iter().collect::<Vec<_>>());
        for (member, kind) in members.iter().zip(types) {
            let data = member["properties"]["data"]["$ref"]
                .as_str()
                .expect("data refers to a schema");
            let name = data.trim_start_matches("#/components/schemas/");
            assert!(schemas[name]["properties"].is_object(), "{kind}: {data}");
            let kind = kind.as_str().expect("type");
            assert_eq!(
                doc["webhooks"][kind]["post"]["requestBody"]["content"]["application/json"]
                    ["schema"],
                *member,
                "{kind}"
            );
        }
        // The notification's type is the same enum.
        assert_eq!(
            schemas["Notification"]["properties"]["type"]["$ref"],
            "#/components/schemas/MessageType"
        );
        // What the bus writer produces has the shape its schema states.
        let live = crate::notify::payloads::StreamLive {
            stream: crate::streams::events::StreamRef {
                id: "st_1".into(),
                slug: "a".into(),
            },
            session_id: "ls_1".into(),
        };
        let json = serde_json::to_value(live).expect("json");
        let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        let mut stated: Vec<&Value> = schemas["StreamLive"]["required"]
            .as_array()
            .expect("required")
            .iter()
            .collect();
        stated.sort_by_key(|v| v.as_str().map(str::to_string));
        assert_eq!(
            keys,
            stated.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = doc();
        let mut ids: Vec<&str> = operations(&doc)
            .iter()
            .map(|(name, op)| {
                op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}"))
            })
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn every_reference_resolves() {
        fn walk<'a>(v: &'a Value, refs: &mut Vec<&'a str>) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        refs.push(r);
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let doc = doc();
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(!refs.is_empty());
        for r in refs {
            let pointer = r.strip_prefix('#').expect("local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn stated_limits_are_the_enforced_ones() {
        let doc = doc();
        for path in ["/api/v1/streams", "/api/v1/users"] {
            let limit = doc["paths"][path]["get"]["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
                .unwrap_or_else(|| panic!("{path}: no limit"));
            assert_eq!(limit["in"], "query");
            assert_eq!(limit["schema"]["minimum"], 1);
            assert_eq!(limit["schema"]["maximum"], MAX_PAGE_ITEMS);
        }
        let schemas = &doc["components"]["schemas"];
        for body in ["NewUser", "Registration"] {
            let pw = &schemas[body]["properties"]["password"];
            assert_eq!(pw["minLength"], password::MIN_LEN, "{body}");
            assert_eq!(pw["maxLength"], password::MAX_LEN, "{body}");
            assert!(password::check_strength(&"x".repeat(password::MIN_LEN)).is_ok());
            assert!(password::check_strength(&"x".repeat(password::MIN_LEN - 1)).is_err());
            assert!(password::check_strength(&"x".repeat(password::MAX_LEN + 1)).is_err());
            assert_eq!(
                schemas[body]["properties"]["username"]["pattern"],
                "^[a-z0-9._-]{3,64}$"
            );
        }
        for body in ["NewStream", "StreamPatch"] {
            assert_eq!(
                schemas[body]["properties"]["ladder"]["enum"],
                serde_json::json!(["default", "360", null]),
                "{body}"
            );
            assert_eq!(schemas[body]["additionalProperties"], false, "{body}");
        }
        assert_eq!(
            schemas["NewStream"]["properties"]["slug"]["pattern"],
            "^[a-z0-9-]{1,64}$"
        );
    }
}

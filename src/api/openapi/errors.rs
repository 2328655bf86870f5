//! The error answers of the document, added in one place: what the shared extractors
//! answer, and for every error the body and headers [`crate::api::problem`] sends.

use axum::http::StatusCode;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::Modify;

use crate::api::body::{JSON_BODY_REJECTIONS, QUERY_REJECTIONS};
use crate::api::problem::PROBLEM_JSON;

/// Adds the error answers of the shared extractors to every operation that uses them,
/// and makes every non-2xx answer a `Problem` in `application/problem+json`, with a
/// description and the headers the server sends (`WWW-Authenticate` on 401,
/// `Retry-After` on 429). Success answers without a description get the reason
/// phrase.
pub struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in operations.into_iter().flatten() {
                for status in extractor_statuses(operation) {
                    operation
                        .responses
                        .responses
                        .entry(status.as_u16().to_string())
                        .or_insert_with(|| RefOr::T(Response::new("")));
                }
                for (code, response) in operation.responses.responses.iter_mut() {
                    let (Some(status), RefOr::T(response)) = (status_of(code), response) else {
                        continue;
                    };
                    if status.is_client_error() || status.is_server_error() {
                        as_problem(status, response);
                    } else if response.description.is_empty() {
                        response.description = status.canonical_reason().unwrap_or("").into();
                    }
                }
            }
        }
    }
}

/// What the extractors of `operation` may answer, read from what it declares: a
/// request body is read by `ApiJson`, query parameters by `ApiQuery`, and a bearer
/// requirement (also an optional one) by `Authed`/`MaybeAuthed` or the playback check,
/// which answer 401 to a token that does not verify.
fn extractor_statuses(operation: &Operation) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    if operation.request_body.is_some() {
        statuses.extend(JSON_BODY_REJECTIONS);
    }
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query);
    if has_query {
        statuses.extend(QUERY_REJECTIONS);
    }
    // `SecurityRequirement` keeps its schemes private; its JSON form names them.
    let mentions_bearer = operation.security.iter().flatten().any(|requirement| {
        serde_json::to_value(requirement).is_ok_and(|v| v.get("bearer").is_some())
    });
    if mentions_bearer {
        statuses.push(StatusCode::UNAUTHORIZED);
    }
    statuses
}

fn status_of(code: &str) -> Option<StatusCode> {
    code.parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
}

/// `response` as the server sends it for `status`: a problem body, and the headers
/// the problem response carries.
fn as_problem(status: StatusCode, response: &mut Response) {
    response.content.clear();
    response.content.insert(
        PROBLEM_JSON.to_string(),
        Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem")))),
    );
    if response.description.is_empty() {
        response.description = default_description(status).to_string();
    }
    match status {
        StatusCode::UNAUTHORIZED => {
            let header = HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["Bearer"])),
                )
                .description(Some("always `Bearer`"))
                .build();
            response
                .headers
                .insert("WWW-Authenticate".to_string(), header);
        }
        StatusCode::TOO_MANY_REQUESTS => {
            let header = HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("whole seconds to wait before the next attempt"))
                .build();
            response.headers.insert("Retry-After".to_string(), header);
        }
        _ => {}
    }
}

fn default_description(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => {
            "the body is not JSON, or a query parameter is unknown or not of its type"
        }
        StatusCode::UNAUTHORIZED => "no valid token (see WWW-Authenticate)",
        StatusCode::FORBIDDEN => "the caller may not do this",
        StatusCode::NOT_FOUND => "no such resource, or none the caller may see",
        StatusCode::CONFLICT => "the name is already taken",
        StatusCode::PAYLOAD_TOO_LARGE => "the body is larger than `auth.max_body_bytes`",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "the body is not sent as `application/json`",
        StatusCode::UNPROCESSABLE_ENTITY => {
            "the JSON is not what the schema allows: a missing or unknown field, a wrong \
             type, a value out of range"
        }
        StatusCode::TOO_MANY_REQUESTS => "too many attempts; wait Retry-After seconds",
        StatusCode::INTERNAL_SERVER_ERROR => "the server failed; the cause is in its log",
        _ => status.canonical_reason().unwrap_or("error"),
    }
}

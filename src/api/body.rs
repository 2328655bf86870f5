//! JSON request bodies: every way a body can be wrong answers with a problem, never
//! with a 500 or a plain-text rejection.
//!
//! Bodies are bounded by the `DefaultBodyLimit` on the API routes (413 beyond it);
//! request types use `deny_unknown_fields`, so a misspelt field is a 422, not ignored.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::problem::Problem;

/// What [`ApiJson`] answers, besides the handler's own statuses: not JSON (400), over
/// the body limit (413), no `Content-Type: application/json` (415), JSON the request
/// type refuses (422). The OpenAPI document lists these on every operation with a
/// body.
pub const JSON_BODY_REJECTIONS: [StatusCode; 4] = [
    StatusCode::BAD_REQUEST,
    StatusCode::PAYLOAD_TOO_LARGE,
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    StatusCode::UNPROCESSABLE_ENTITY,
];

/// What [`ApiQuery`] answers to a query it cannot read (wrong type, unknown
/// parameter): 400, listed on every operation with query parameters.
pub const QUERY_REJECTIONS: [StatusCode; 1] = [StatusCode::BAD_REQUEST];

/// `Json<T>` whose rejections are problem bodies.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(problem_of(&rejection)),
        }
    }
}

fn problem_of(rejection: &JsonRejection) -> Problem {
    let detail = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => Problem::unprocessable(detail),
        JsonRejection::JsonSyntaxError(_) => Problem::bad_request(detail),
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            "send the body as Content-Type: application/json",
        ),
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Content Too Large",
            "the request body is larger than the server accepts",
        ),
        _ => {
            let status = rejection.status();
            if status.is_client_error() {
                Problem::new(status, "Bad Request", detail)
            } else {
                Problem::bad_request(detail)
            }
        }
    }
}

/// `Query<T>` whose rejections are problem bodies.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| Problem::bad_request(e.body_text()))
    }
}

/// Largest `limit` of a list request; the document states the same bound.
pub const MAX_PAGE_ITEMS: u32 = 100;
/// `limit` of a list request that gives none.
pub const DEFAULT_PAGE_ITEMS: u32 = 20;

/// `limit` and `cursor` of a list request (query parameters; any other is a 400).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(nullable = false)]
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The page size; 400 outside `1..=MAX_PAGE_ITEMS`.
    pub fn limit(&self) -> Result<usize, Problem> {
        match self.limit.unwrap_or(DEFAULT_PAGE_ITEMS) {
            n @ 1..=MAX_PAGE_ITEMS => Ok(n as usize),
            _ => Err(Problem::bad_request(format!(
                "limit must be 1..={MAX_PAGE_ITEMS}"
            ))),
        }
    }
}

/// One page of a list.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::http::{header, Request};
    use axum::routing::{get, post};
    use axum::Router;
    use tower::ServiceExt;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Named {
        name: String,
    }

    fn router() -> Router {
        Router::new()
            .route(
                "/body",
                post(|ApiJson(_): ApiJson<Named>| async { StatusCode::NO_CONTENT }),
            )
            .route(
                "/page",
                get(|ApiQuery(page): ApiQuery<PageQuery>| async move {
                    page.limit().map(|n| n.to_string())
                }),
            )
            .layer(DefaultBodyLimit::max(1024))
    }

    /// Status and `Content-Type` of one request.
    async fn answer(req: Request<Body>) -> (StatusCode, String) {
        let response = router().oneshot(req).await.expect("infallible");
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (response.status(), content_type)
    }

    fn post_body(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
        let mut req = Request::post("/body");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        req.body(body.into()).expect("request")
    }

    #[tokio::test]
    async fn every_body_rejection_is_a_listed_problem() {
        let json = Some("application/json");
        let cases = [
            (
                post_body(None, r#"{"name":"a"}"#),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (
                post_body(Some("text/plain"), r#"{"name":"a"}"#),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (post_body(json, "\0"), StatusCode::BAD_REQUEST),
            (post_body(json, r#"{"name":"#), StatusCode::BAD_REQUEST),
            (
                post_body(json, r#"{"name":1}"#),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (
                post_body(json, r#"{"name":"a","x":1}"#),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (post_body(json, "{}"), StatusCode::UNPROCESSABLE_ENTITY),
            (
                post_body(json, format!(r#"{{"name":"{}"}}"#, "a".repeat(2048))),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
        ];
        let mut seen = Vec::new();
        for (req, expected) in cases {
            let (status, content_type) = answer(req).await;
            assert_eq!(status, expected);
            assert_eq!(
                content_type,
                super::super::problem::PROBLEM_JSON,
                "{status}"
            );
            seen.push(status);
        }
        for status in seen {
            assert!(
                JSON_BODY_REJECTIONS.contains(&status),
                "{status} is not listed"
            );
        }
        let (status, _) = answer(post_body(json, r#"{"name":"a"}"#)).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn query_outside_the_schema_is_a_400_problem() {
        for query in ["limit=0", "limit=101", "limit=abc", "limit=-1", "other=1"] {
            let req = Request::get(format!("/page?{query}"))
                .body(Body::empty())
                .expect("request");
            let (status, content_type) = answer(req).await;
            assert!(QUERY_REJECTIONS.contains(&status), "{query}: {status}");
            assert_eq!(content_type, super::super::problem::PROBLEM_JSON, "{query}");
        }
        for (query, limit) in [("", "20"), ("limit=1", "1"), ("limit=100&cursor=x", "100")] {
            let req = Request::get(format!("/page?{query}"))
                .body(Body::empty())
                .expect("request");
            let response = router().oneshot(req).await.expect("infallible");
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            let body = axum::body::to_bytes(response.into_body(), 64)
                .await
                .expect("body");
            assert_eq!(body, limit, "{query}");
        }
    }
}

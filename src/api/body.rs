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

/// `limit` and `cursor` of a list request.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page, 1..=100 (default 20).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<usize, Problem> {
        match self.limit {
            None => Ok(20),
            Some(n @ 1..=100) => Ok(n as usize),
            Some(_) => Err(Problem::bad_request("limit must be 1..=100")),
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

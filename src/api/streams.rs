//! `GET /api/v1/streams/{slug}`: what a player or an admin needs to know of a stream.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::problem::Problem;
use super::AppState;
use crate::streams::hub::IngestState;
use crate::streams::{Orientation, Projection};

/// The public view of a stream.
#[derive(Serialize)]
pub struct StreamInfo {
    pub slug: String,
    pub projection: Projection,
    pub orientation: Orientation,
    /// Media is being published now.
    pub live: bool,
    pub ingest: IngestState,
    /// Multivariant playlist, relative to the server root.
    pub playback_url: String,
}

pub async fn stream_info(State(state): State<AppState>, Path(slug): Path<String>) -> Response {
    let Some(stream) = state.directory.by_slug(&slug).await else {
        return Problem::not_found(format!("there is no stream named {slug}")).into_response();
    };
    let ingest = state.hub.state(&slug);
    Json(StreamInfo {
        live: state.hub.is_live(&slug),
        playback_url: format!("/hls/{}/index.m3u8", stream.slug),
        slug: stream.slug,
        projection: stream.projection,
        orientation: stream.orientation,
        ingest,
    })
    .into_response()
}

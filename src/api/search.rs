//! `GET /api/v1/search`: keyword search over streams, scheduled events and assets.
//!
//! Results are what the caller's lists show them, by the same rules:
//! streams and assets by [`crate::auth::request::listed_for`] (public to everyone, the
//! rest to who manages them); events, like `GET /api/v1/events`, to signed-in callers
//! only, and then only when their stream (if it still exists) is listed for the caller,
//! drafts only to their owner, their stream's owner and admins.
//!
//! Order: live items first, then upcoming events, then the rest; within each, exact and
//! prefix matches before typo matches, then by relevance (`bm25`).

use std::collections::HashSet;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::MaybeAuthed;
use super::body::{ApiQuery, Page, PageQuery};
use super::problem::{ApiError, Problem};
use super::AppState;
use crate::auth::request::{listed_for, Caller};
use crate::schedule::{draft_seen_by, EventState};
use crate::search::index::{Detail, Match};
use crate::search::{query, SearchKind};
use crate::streams::Projection;

/// The longest `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// Query parameters of `GET /api/v1/search`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words to find, 1–200 characters: each matches a whole word or the start of one
    /// (`lob` finds "Lobby"), in a title, description or tag, case and accents aside;
    /// a word one letter off also finds, below exact matches. Every word must match.
    #[param(min_length = 1, max_length = 200)]
    pub q: String,
    /// Only results of this type.
    #[serde(rename = "type")]
    #[param(rename = "type", inline, nullable = false)]
    pub kind: Option<SearchKind>,
    /// `true`: only what is live now (streams being published, events `live`);
    /// `false`: only what is not.
    #[param(nullable = false)]
    pub live: Option<bool>,
    /// `true`: only events still to come (`scheduled`, `starting_soon`); `false`:
    /// everything else.
    #[param(nullable = false)]
    pub upcoming: Option<bool>,
    /// Only streams and assets of this projection, and events on such streams.
    #[param(inline, nullable = false)]
    pub projection: Option<Projection>,
    /// Results per page (default 20).
    #[param(minimum = 1, maximum = 100, nullable = false)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (a position in the results).
    #[param(nullable = false, pattern = "^[0-9]{1,9}$")]
    pub cursor: Option<String>,
}

/// One search result.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    #[serde(rename = "type")]
    pub kind: SearchKind,
    /// `st_…`, `ev_…` or the asset id.
    pub id: String,
    /// Streams: their slug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    pub title: String,
    /// Part of the description around the words found (absent without a
    /// description).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    pub tags: Vec<String>,
    /// A stream being published now, or an event in `live`.
    pub live: bool,
    /// An event in `scheduled` or `starting_soon`.
    pub upcoming: bool,
    /// Events: RFC 3339, as scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_start: Option<String>,
    /// Events: where the event is in its life.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<EventState>,
    /// Streams and assets; events: their stream's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection: Option<Projection>,
    /// Events: the slug of the stream they are shown on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Where to watch or open it, relative to the server root: the player page of a
    /// stream (or an event's stream), else the item's API resource.
    pub url: String,
    /// Found through a word one letter off, not the words as typed.
    pub fuzzy: bool,
}

/// A result with what it sorts by.
struct Ranked {
    hit: SearchHit,
    /// 0 live, 1 upcoming, 2 the rest.
    group: u8,
    score: f64,
}

/// Search streams, events and assets by keyword; live first, then upcoming, then by
/// relevance. Private items appear only to who may list them.
#[utoipa::path(get, path = "/api/v1/search", tag = "search", operation_id = "search",
    params(SearchQuery), security((), ("bearer" = [])),
    responses((status = 200, body = Page<SearchHit>),
              (status = 400, description = "`q` empty or longer than 200 characters, an unknown `type` or `projection`, `limit` outside 1..=100, a bad `cursor`, or an unknown query parameter"),
              (status = 500)))]
pub async fn search(
    State(state): State<AppState>,
    MaybeAuthed(caller): MaybeAuthed,
    ApiQuery(params): ApiQuery<SearchQuery>,
) -> Result<Json<Page<SearchHit>>, ApiError> {
    let chars = params.q.chars().count();
    if params.q.trim().is_empty() || chars > MAX_QUERY_CHARS {
        return Err(Problem::bad_request(format!(
            "q needs 1-{MAX_QUERY_CHARS} characters (it has {chars})"
        ))
        .into());
    }
    let limit = PageQuery {
        limit: params.limit,
        cursor: None,
    }
    .limit()?;
    let offset = match params.cursor.as_deref() {
        None => 0,
        Some(c) => Some(c)
            .filter(|c| (1..=9).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<usize>().ok())
            .ok_or_else(|| Problem::bad_request("cursor is not one this server gave"))?,
    };
    let matches = find(&state, &params.q, params.kind).await?;
    let mut ranked: Vec<Ranked> = matches
        .into_iter()
        .filter_map(|(m, fuzzy)| resolve(&state, caller.as_ref(), m, fuzzy))
        .filter(|r| keep(&params, &r.hit))
        .collect();
    ranked.sort_by(|a, b| {
        (a.group, a.hit.fuzzy)
            .cmp(&(b.group, b.hit.fuzzy))
            .then(a.score.total_cmp(&b.score))
            .then_with(|| a.hit.id.cmp(&b.hit.id))
    });
    let total = ranked.len();
    let items: Vec<SearchHit> = ranked
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| r.hit)
        .collect();
    let next = offset.saturating_add(limit);
    Ok(Json(Page {
        items,
        next_cursor: (next < total).then(|| next.to_string()),
    }))
}

/// Index matches for `q`, with whether each was found only through a typo
/// alternative: the exact and prefix matches, then what the alternatives add.
async fn find(
    state: &AppState,
    q: &str,
    kind: Option<SearchKind>,
) -> Result<Vec<(Match, bool)>, ApiError> {
    let db = |e: sqlx::Error| ApiError::from(Problem::internal(&e));
    let terms = query::terms(q);
    let Some(exact) = query::exact_expression(&terms) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<(Match, bool)> = state
        .search
        .matches(&exact, kind)
        .await
        .map_err(db)?
        .into_iter()
        .map(|m| (m, false))
        .collect();
    let mut alternatives = Vec::with_capacity(terms.len());
    for term in &terms {
        alternatives.push(if query::fuzzy_candidate(term) {
            state.search.alternatives(term).await.map_err(db)?
        } else {
            Vec::new()
        });
    }
    if let Some(fuzzy) = query::fuzzy_expression(&terms, &alternatives) {
        let seen: HashSet<(SearchKind, String)> = found
            .iter()
            .map(|(m, _)| (m.kind, m.item_id.clone()))
            .collect();
        for m in state.search.matches(&fuzzy, kind).await.map_err(db)? {
            if !seen.contains(&(m.kind, m.item_id.clone())) {
                found.push((m, true));
            }
        }
    }
    Ok(found)
}

/// The result `m` as `caller` may see it, or `None` when they may not.
fn resolve(state: &AppState, caller: Option<&Caller>, m: Match, fuzzy: bool) -> Option<Ranked> {
    let listed_stream = |id: &str| {
        state
            .catalog
            .get(id)
            .filter(|s| listed_for(caller, s.visibility, s.owner_id.as_deref()))
    };
    let snippet = Some(m.snippet).filter(|s| !s.trim().is_empty());
    let (hit, group) = match m.detail {
        Detail::Stream => {
            let stream = listed_stream(&m.item_id)?;
            let live = state.streams.registry.status(&stream.slug).live;
            let hit = SearchHit {
                kind: SearchKind::Stream,
                id: stream.id.clone(),
                slug: Some(stream.slug.clone()),
                title: stream.title.clone(),
                snippet,
                tags: stream.tags.clone(),
                live,
                upcoming: false,
                scheduled_start: None,
                state: None,
                projection: Some(stream.projection),
                stream: None,
                url: format!("/watch/{}", stream.slug),
                fuzzy,
            };
            (hit, if live { 0 } else { 2 })
        }
        Detail::Event {
            state: event_state,
            scheduled_start,
            stream_id,
            owner_id,
            tags,
        } => {
            // Events are for signed-in callers (as `GET /api/v1/events`), drafts only
            // for who may see them there.
            let caller = caller?;
            let stream = match stream_id.as_deref() {
                Some(id) => Some(listed_stream(id)?),
                None => None,
            };
            let stream_owner = stream.as_ref().and_then(|s| s.owner_id.as_deref());
            if event_state == EventState::Draft
                && !draft_seen_by(caller, owner_id.as_deref(), stream_owner)
            {
                return None;
            }
            let live = event_state == EventState::Live;
            let upcoming = matches!(
                event_state,
                EventState::Scheduled | EventState::StartingSoon
            );
            let hit = SearchHit {
                kind: SearchKind::Event,
                url: stream.as_ref().map_or_else(
                    || format!("/api/v1/events/{}", m.item_id),
                    |s| format!("/watch/{}", s.slug),
                ),
                id: m.item_id,
                slug: None,
                title: m.title,
                snippet,
                tags,
                live,
                upcoming,
                scheduled_start: Some(scheduled_start),
                state: Some(event_state),
                projection: stream.as_ref().map(|s| s.projection),
                stream: stream.as_ref().map(|s| s.slug.clone()),
                fuzzy,
            };
            (
                hit,
                if live {
                    0
                } else if upcoming {
                    1
                } else {
                    2
                },
            )
        }
        Detail::Asset {
            visibility,
            owner_id,
            projection,
        } => {
            if !listed_for(caller, visibility, owner_id.as_deref()) {
                return None;
            }
            let hit = SearchHit {
                kind: SearchKind::Asset,
                url: format!("/api/v1/assets/{}", m.item_id),
                id: m.item_id,
                slug: None,
                title: m.title,
                snippet,
                tags: Vec::new(),
                live: false,
                upcoming: false,
                scheduled_start: None,
                state: None,
                projection: Some(projection),
                stream: None,
                fuzzy,
            };
            (hit, 2)
        }
    };
    Some(Ranked {
        hit,
        group,
        score: m.score,
    })
}

/// Whether `hit` passes the `live`, `upcoming` and `projection` filters.
fn keep(params: &SearchQuery, hit: &SearchHit) -> bool {
    params.live.is_none_or(|live| hit.live == live)
        && params.upcoming.is_none_or(|up| hit.upcoming == up)
        && params.projection.is_none_or(|p| hit.projection == Some(p))
}

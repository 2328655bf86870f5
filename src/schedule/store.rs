//! The `scheduled_events` table. Every state change and its outbox message commit in
//! one transaction; state changes are guarded (`WHERE state IN (…)`), so the timer, the
//! bus follower and the API never move an event twice.

use sqlx::{Row, SqliteConnection};
use tokio::sync::Notify;

use super::{parse_time_ms, EventState, ScheduledEvent, MAX_LEAD_S};
use crate::db::{self, Pool};
use crate::notify::outbox;
use crate::notify::webhooks::MessageType;

/// Why an event write failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// The fields a client sets; `None` leaves a field as it is (on create: the default).
#[derive(Default)]
pub struct EventFields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<String>>,
    /// Stream id (already resolved).
    pub stream_id: Option<String>,
    /// The creating account (on create only; an event keeps its owner).
    pub owner_id: Option<String>,
    pub scheduled_start: Option<String>,
    /// `Some(None)` clears it.
    pub scheduled_end: Option<Option<String>>,
    pub lead_s: Option<u32>,
    pub state: Option<EventState>,
}

/// Scheduled events in the database; `changed` wakes the timer.
pub struct Schedule {
    pool: Pool,
    pub(super) changed: Notify,
}

const COLUMNS: &str = "id, title, description, tags, stream_id, scheduled_start, start_ms, \
    scheduled_end, lead_s, state, session_id, created_at, updated_at, owner_id";

/// [`COLUMNS`] and the recording of the event's live session, when there is one (the
/// asset that recorded `session_id`).
const SELECTED: &str = "id, title, description, tags, stream_id, scheduled_start, start_ms, \
    scheduled_end, lead_s, state, session_id, created_at, updated_at, owner_id, \
    (SELECT a.id FROM assets a WHERE a.live_session_id = scheduled_events.session_id \
     ORDER BY a.created_at LIMIT 1) AS recording_asset_id";

fn event_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ScheduledEvent, sqlx::Error> {
    let bad = |what: &str| sqlx::Error::Decode(format!("scheduled_events.{what}").into());
    let tags: String = row.try_get("tags")?;
    let state: String = row.try_get("state")?;
    let lead: i64 = row.try_get("lead_s")?;
    Ok(ScheduledEvent {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        tags: serde_json::from_str(&tags).map_err(|_| bad("tags"))?,
        stream_id: row.try_get("stream_id")?,
        owner_id: row.try_get("owner_id")?,
        scheduled_start: row.try_get("scheduled_start")?,
        scheduled_end: row.try_get("scheduled_end")?,
        starting_soon_lead_s: u32::try_from(lead).map_err(|_| bad("lead_s"))?,
        state: EventState::parse(&state).ok_or_else(|| bad("state"))?,
        session_id: row.try_get("session_id")?,
        recording_asset_id: row.try_get("recording_asset_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Refuses what breaks the rules the document states.
fn validate(e: &ScheduledEvent) -> Result<i64, ScheduleError> {
    let bad = |why: &str| Err(ScheduleError::Invalid(why.into()));
    if e.title.trim().is_empty() || e.title.chars().count() > 200 {
        return bad("title needs 1-200 characters");
    }
    if e.description.chars().count() > 5000 {
        return bad("description may have at most 5000 characters");
    }
    if e.tags.len() > 20
        || e.tags
            .iter()
            .any(|t| t.trim().is_empty() || t.chars().count() > 32)
    {
        return bad("at most 20 tags of 1-32 characters");
    }
    if e.starting_soon_lead_s > MAX_LEAD_S {
        return bad("starting_soon_lead_s must be 0..=86400");
    }
    let Some(start) = parse_time_ms(&e.scheduled_start) else {
        return bad("scheduled_start must be RFC 3339 with a zone");
    };
    if let Some(end) = &e.scheduled_end {
        match parse_time_ms(end) {
            None => return bad("scheduled_end must be RFC 3339 with a zone"),
            Some(end) if end <= start => return bad("scheduled_end must be after scheduled_start"),
            Some(_) => {}
        }
    }
    Ok(start)
}

/// The message a move to `state` announces.
fn message_of(state: EventState) -> Option<MessageType> {
    match state {
        EventState::Scheduled => Some(MessageType::EventScheduled),
        EventState::StartingSoon => Some(MessageType::EventStartingSoon),
        EventState::Live => Some(MessageType::EventLive),
        EventState::Ended => Some(MessageType::EventEnded),
        EventState::Cancelled => Some(MessageType::EventCancelled),
        EventState::Draft => None,
    }
}

async fn announce(conn: &mut SqliteConnection, event: &ScheduledEvent) -> Result<(), sqlx::Error> {
    if let Some(kind) = message_of(event.state) {
        outbox::enqueue(
            conn,
            kind.as_str(),
            &crate::notify::payloads::EventChanged {
                event: event.clone(),
            },
        )
        .await?;
    }
    Ok(())
}

async fn write(
    conn: &mut SqliteConnection,
    e: &ScheduledEvent,
    start_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO scheduled_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description, \
         tags = excluded.tags, scheduled_start = excluded.scheduled_start, start_ms = excluded.start_ms, \
         scheduled_end = excluded.scheduled_end, lead_s = excluded.lead_s, state = excluded.state, \
         session_id = excluded.session_id, updated_at = excluded.updated_at"
    ))
    .bind(&e.id)
    .bind(&e.title)
    .bind(&e.description)
    .bind(serde_json::to_string(&e.tags).unwrap_or_else(|_| "[]".into()))
    .bind(&e.stream_id)
    .bind(&e.scheduled_start)
    .bind(start_ms)
    .bind(&e.scheduled_end)
    .bind(i64::from(e.starting_soon_lead_s))
    .bind(e.state.as_str())
    .bind(&e.session_id)
    .bind(e.created_at)
    .bind(e.updated_at)
    .bind(&e.owner_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Schedule {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            changed: Notify::new(),
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Creates an event on stream `stream_id` (state `scheduled` unless `draft`).
    pub async fn create(&self, f: EventFields) -> Result<ScheduledEvent, ScheduleError> {
        let state = f.state.unwrap_or(EventState::Scheduled);
        if !matches!(state, EventState::Draft | EventState::Scheduled) {
            return Err(ScheduleError::Invalid(
                "a new event is draft or scheduled".into(),
            ));
        }
        let now = db::now();
        let event = ScheduledEvent {
            id: db::new_id("ev"),
            title: f.title.unwrap_or_default(),
            description: f.description.unwrap_or_default(),
            tags: f.tags.unwrap_or_default(),
            stream_id: f.stream_id,
            owner_id: f.owner_id,
            scheduled_start: f.scheduled_start.unwrap_or_default(),
            scheduled_end: f.scheduled_end.flatten(),
            starting_soon_lead_s: f.lead_s.unwrap_or(super::DEFAULT_LEAD_S),
            state,
            session_id: None,
            recording_asset_id: None,
            created_at: now,
            updated_at: now,
        };
        let start_ms = validate(&event)?;
        let mut tx = crate::db::write_tx(&self.pool).await?;
        write(&mut tx, &event, start_ms).await?;
        announce(&mut tx, &event).await?;
        tx.commit().await?;
        self.changed.notify_one();
        Ok(event)
    }

    /// Every event by start time (at most `limit`).
    pub async fn list(&self, limit: i64) -> Result<Vec<ScheduledEvent>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {SELECTED} FROM scheduled_events ORDER BY start_ms, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
    }

    pub async fn get(&self, id: &str) -> Result<Option<ScheduledEvent>, sqlx::Error> {
        sqlx::query(&format!(
            "SELECT {SELECTED} FROM scheduled_events WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(event_from_row)
        .transpose()
    }

    /// Applies `f` to event `id`. Moving the start or the lead of an event that is
    /// `starting_soon` makes it `scheduled` again, so the reminder comes again.
    pub async fn update(
        &self,
        id: &str,
        f: EventFields,
    ) -> Result<Option<ScheduledEvent>, ScheduleError> {
        // Read then write: take the write lock first, or a concurrent writer makes
        // the upgrade fail at once with SQLITE_BUSY.
        let mut tx = crate::db::write_tx(&self.pool).await?;
        let Some(row) = sqlx::query(&format!(
            "SELECT {SELECTED} FROM scheduled_events WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let old = event_from_row(&row)?;
        let mut e = old.clone();
        if let Some(to) = f.state {
            if !old.state.client_may_move_to(to) {
                return Err(ScheduleError::Conflict(format!(
                    "an event that is {} cannot become {}",
                    old.state.as_str(),
                    to.as_str()
                )));
            }
            e.state = to;
        }
        let retimed = f
            .scheduled_start
            .as_ref()
            .is_some_and(|s| *s != old.scheduled_start)
            || f.lead_s.is_some_and(|l| l != old.starting_soon_lead_s);
        if let Some(v) = f.title {
            e.title = v;
        }
        if let Some(v) = f.description {
            e.description = v;
        }
        if let Some(v) = f.tags {
            e.tags = v;
        }
        if let Some(v) = f.stream_id {
            e.stream_id = Some(v);
        }
        if let Some(v) = f.scheduled_start {
            e.scheduled_start = v;
        }
        if let Some(v) = f.scheduled_end {
            e.scheduled_end = v;
        }
        if let Some(v) = f.lead_s {
            e.starting_soon_lead_s = v;
        }
        if retimed && e.state == EventState::StartingSoon {
            e.state = EventState::Scheduled;
        }
        e.updated_at = db::now();
        let start_ms = validate(&e)?;
        write(&mut tx, &e, start_ms).await?;
        if e.state != old.state {
            announce(&mut tx, &e).await?;
        }
        tx.commit().await?;
        self.changed.notify_one();
        Ok(Some(e))
    }

    pub async fn delete(&self, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM scheduled_events WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.changed.notify_one();
        Ok(done.rows_affected() > 0)
    }

    /// Moves event `id` from one of `from` to `to` (with `session`, when given) and
    /// writes its message; `None` if it was not in one of `from`.
    pub(super) async fn transition(
        &self,
        id: &str,
        from: &[EventState],
        to: EventState,
        session: Option<&str>,
    ) -> Result<Option<ScheduledEvent>, sqlx::Error> {
        // Read then write: take the write lock first, or a concurrent writer makes
        // the upgrade fail at once with SQLITE_BUSY.
        let mut tx = crate::db::write_tx(&self.pool).await?;
        let Some(row) = sqlx::query(&format!(
            "SELECT {SELECTED} FROM scheduled_events WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let mut e = event_from_row(&row)?;
        if !from.contains(&e.state) {
            return Ok(None);
        }
        e.state = to;
        if let Some(session) = session {
            e.session_id = Some(session.to_string());
        }
        e.updated_at = db::now();
        sqlx::query("UPDATE scheduled_events SET state = $1, session_id = $2, updated_at = $3 WHERE id = $4")
            .bind(e.state.as_str())
            .bind(&e.session_id)
            .bind(e.updated_at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        announce(&mut tx, &e).await?;
        tx.commit().await?;
        tracing::info!(event = %e.id, state = e.state.as_str(), "scheduled event moved");
        Ok(Some(e))
    }

    /// Ids of events of stream `stream_id` in one of `states`, soonest start first.
    pub(super) async fn of_stream(
        &self,
        stream_id: &str,
        states: &[EventState],
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, state FROM scheduled_events WHERE stream_id = $1 ORDER BY start_ms, id",
        )
        .bind(stream_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let state: String = row.try_get("state")?;
            if EventState::parse(&state).is_some_and(|s| states.contains(&s)) {
                out.push(row.try_get("id")?);
            }
        }
        Ok(out)
    }

    /// The event of stream `stream_id` that the stream going live at `now_ms` starts:
    /// `scheduled` or `starting_soon` with `now_ms` in its live window
    /// ([`super::live_window_contains`]), soonest start first.
    pub(super) async fn due_to_go_live(
        &self,
        stream_id: &str,
        now_ms: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, start_ms, lead_s, scheduled_end FROM scheduled_events \
             WHERE stream_id = $1 AND state IN ('scheduled', 'starting_soon') \
             ORDER BY start_ms, id",
        )
        .bind(stream_id)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let lead: i64 = row.try_get("lead_s")?;
            let end: Option<String> = row.try_get("scheduled_end")?;
            let in_window = super::live_window_contains(
                row.try_get("start_ms")?,
                u32::try_from(lead).unwrap_or(MAX_LEAD_S),
                end.as_deref().and_then(parse_time_ms),
                now_ms,
            );
            if in_window {
                return Ok(Some(row.try_get("id")?));
            }
        }
        Ok(None)
    }

    /// `scheduled` events whose reminder time has come by `now_ms`, and the soonest
    /// reminder time still ahead.
    pub(super) async fn reminders(
        &self,
        now_ms: i64,
    ) -> Result<(Vec<String>, Option<i64>), sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, start_ms - lead_s * 1000 AS remind_ms FROM scheduled_events \
             WHERE state = 'scheduled' ORDER BY remind_ms",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::new();
        let mut next = None;
        for row in rows {
            let at: i64 = row.try_get("remind_ms")?;
            if at <= now_ms {
                due.push(row.try_get("id")?);
            } else {
                next = Some(at);
                break;
            }
        }
        Ok((due, next))
    }
}

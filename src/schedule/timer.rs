//! The schedule's one task: moves `scheduled` events to `starting_soon` at
//! start − lead (sleeping until the soonest such time, woken early by any change, so
//! moving the start re-arms it), and follows the lifecycle bus, keeping which streams
//! are in a live session: a live stream makes its current event `live` — the soonest
//! `scheduled` or `starting_soon` one whose live window is open
//! ([`super::live_window_contains`]: from start − lead to its end), whether the stream
//! went live inside the window or the window opened while it was live — and leaves
//! events further off as they are; `live_session.ended` makes its `live` event `ended`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::store::Schedule;
use super::EventState;
use crate::streams::events::{BusError, BusReceiver, StreamEvent};

/// The longest the timer sleeps without looking again (a clock that jumps is caught
/// within this).
const MAX_SLEEP: Duration = Duration::from_secs(30);

impl Schedule {
    /// Runs the timer and the bus follower until `shutdown`; `bus` must be subscribed
    /// before the first publisher can connect.
    pub fn spawn(self: &Arc<Self>, mut bus: BusReceiver, shutdown: CancellationToken) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            // Stream id → its live session, from the bus (subscribed before any
            // publisher, so it misses none but what a lag loses).
            let mut live: HashMap<String, String> = HashMap::new();
            loop {
                let sleep = match this.remind().await {
                    Ok(sleep) => sleep,
                    Err(e) => {
                        tracing::warn!(error = %e, "schedule timer failed; retrying");
                        Duration::from_secs(1)
                    }
                };
                if let Err(e) = this.go_live(&live).await {
                    tracing::error!(error = %e, "cannot make a scheduled event live");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(sleep) => {}
                    _ = this.changed.notified() => {}
                    event = bus.recv() => match event {
                        Ok(event) => {
                            if let Err(e) = this.follow(&event.event, &mut live).await {
                                tracing::error!(error = %e, "cannot move a scheduled event");
                            }
                        }
                        Err(BusError::Lagged(n)) => {
                            tracing::error!(lost = n, "schedule fell behind the stream event bus");
                        }
                        Err(BusError::Closed) => return,
                    },
                }
            }
        });
    }

    /// Sends due reminders; returns how long to sleep until the next one.
    async fn remind(&self) -> Result<Duration, sqlx::Error> {
        let now = crate::notify::webhooks::now_ms();
        let (due, next) = self.reminders(now).await?;
        for id in due {
            self.transition(
                &id,
                &[EventState::Scheduled],
                EventState::StartingSoon,
                None,
            )
            .await?;
        }
        Ok(next.map_or(MAX_SLEEP, |at| {
            Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(MAX_SLEEP)
        }))
    }

    /// Makes live the current event of each stream in `live` that has none live yet:
    /// the one whose window is open now, with the stream's session.
    async fn go_live(&self, live: &HashMap<String, String>) -> Result<(), sqlx::Error> {
        let now = crate::notify::webhooks::now_ms();
        for (stream, session) in live {
            // A publisher back within the session: its event is live already.
            if !self
                .of_stream(stream, &[EventState::Live])
                .await?
                .is_empty()
            {
                continue;
            }
            // Only an event whose window is open: a stream live days before an event
            // (a rehearsal, a 24/7 channel) leaves it scheduled until then.
            if let Some(id) = self.due_to_go_live(stream, now).await? {
                self.transition(
                    &id,
                    &[EventState::Scheduled, EventState::StartingSoon],
                    EventState::Live,
                    Some(session),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Keeps `live` as the bus says; a live session's end ends its event. Going live
    /// is [`Self::go_live`]'s, on the loop's next turn.
    async fn follow(
        &self,
        event: &StreamEvent,
        live: &mut HashMap<String, String>,
    ) -> Result<(), sqlx::Error> {
        match event {
            StreamEvent::Active { stream, session_id } => {
                live.insert(stream.id.clone(), session_id.clone());
            }
            StreamEvent::LiveSessionEnded { stream, .. } => {
                live.remove(&stream.id);
                for id in self.of_stream(&stream.id, &[EventState::Live]).await? {
                    self.transition(&id, &[EventState::Live], EventState::Ended, None)
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

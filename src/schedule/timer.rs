//! The schedule's one task: moves `scheduled` events to `starting_soon` at
//! start − lead (sleeping until the soonest such time, woken early by any change, so
//! moving the start re-arms it), and follows the lifecycle bus: `stream.active` makes
//! the stream's current event `live` — the soonest `scheduled` or `starting_soon` one
//! whose live window is open ([`super::live_window_contains`]: from start − lead to
//! its end) — and leaves events further off as they are; `live_session.ended` makes
//! its `live` event `ended`.

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
            loop {
                let sleep = match this.remind().await {
                    Ok(sleep) => sleep,
                    Err(e) => {
                        tracing::warn!(error = %e, "schedule timer failed; retrying");
                        Duration::from_secs(1)
                    }
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(sleep) => {}
                    _ = this.changed.notified() => {}
                    event = bus.recv() => match event {
                        Ok(event) => {
                            if let Err(e) = this.follow(&event.event).await {
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

    async fn follow(&self, event: &StreamEvent) -> Result<(), sqlx::Error> {
        match event {
            StreamEvent::Active { stream, session_id } => {
                // A publisher back within the session: its event is live already.
                if !self
                    .of_stream(&stream.id, &[EventState::Live])
                    .await?
                    .is_empty()
                {
                    return Ok(());
                }
                // Only an event whose window is open: a stream live days before an
                // event (a rehearsal, a 24/7 channel) leaves it scheduled.
                let now = crate::notify::webhooks::now_ms();
                if let Some(id) = self.due_to_go_live(&stream.id, now).await? {
                    self.transition(
                        &id,
                        &[EventState::Scheduled, EventState::StartingSoon],
                        EventState::Live,
                        Some(session_id),
                    )
                    .await?;
                }
            }
            StreamEvent::LiveSessionEnded { stream, .. } => {
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

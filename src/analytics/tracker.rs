//! Active viewer sessions, updated on the request path.
//!
//! Cost per HLS request: one hash-map update in one of [`SHARDS`] shards under a short
//! `std` mutex; no allocation once the session exists, no I/O. The sampler
//! ([`Tracker::sweep`]) walks the shards every 5 s, ends the sessions whose timeout
//! passed and counts the rest.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::figures::{self, Furthest};
use super::user_agent::UaClass;
use crate::media::TrackKind;

/// Independent locks; requests of different sessions rarely meet.
const SHARDS: usize = 32;
/// Active sessions kept at most (about 1 KiB each, see benches/analytics); past it a new
/// session is not counted (and [`Tracker::refused`] grows) until old ones end.
pub const MAX_SESSIONS: usize = 500_000;

/// What a response delivered, put in its extensions by the HLS handlers and read by the
/// tracking layer.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub rendition: String,
    pub kind: TrackKind,
    /// The media position (`part == figures::WHOLE` for a segment) and its duration;
    /// `None` for playlists and init segments.
    pub media: Option<(u64, u32, f64)>,
    pub bytes: u64,
    /// Of the rendition, for the session timeout.
    pub target_duration_s: u64,
}

/// Who a session is: fixed when its first request arrives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Audience {
    /// `stream` (live) or `asset` (VOD).
    pub content_kind: &'static str,
    pub content_id: String,
    /// The stream's slug, for `/metrics`; the asset id for assets.
    pub label: String,
    /// The live session playing when the session started (empty when none).
    pub live_session: String,
}

#[derive(Clone, Debug)]
pub struct Viewer {
    pub audience: Audience,
    pub subject: String,
    pub ua: UaClass,
}

/// One rendition's use by one session.
#[derive(Clone, Debug)]
pub struct RenditionUse {
    pub name: String,
    pub kind: TrackKind,
    pub seconds: f64,
    pub bytes: u64,
    furthest: Furthest,
}

/// An active session.
#[derive(Clone, Debug)]
pub struct Session {
    pub sid: String,
    pub viewer: Viewer,
    /// Unix milliseconds.
    pub started_ms: i64,
    last_seen: Instant,
    /// Wall-clock twin of `last_seen`, for the recorded end.
    last_seen_ms: i64,
    timeout: Duration,
    pub renditions: Vec<RenditionUse>,
    /// Media seconds already added to the stream's watch-time counter.
    reported_s: f64,
    last_beacon: Option<Instant>,
}

impl Session {
    /// Media seconds (see [`figures::media_seconds`]).
    pub fn media_seconds(&self) -> f64 {
        let of = |kind| {
            self.renditions
                .iter()
                .filter(|r| r.kind == kind)
                .map(|r| r.seconds)
                .sum::<f64>()
        };
        figures::media_seconds(of(TrackKind::Video), of(TrackKind::Audio))
    }

    pub fn bytes(&self) -> u64 {
        self.renditions.iter().map(|r| r.bytes).sum()
    }

    /// When it ends if no request comes: Unix milliseconds.
    pub fn ended_ms(&self) -> i64 {
        self.last_seen_ms
    }
}

/// Why a heatmap beacon was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BeaconRefused {
    /// No active session has that id.
    Unknown,
    /// The session sent one less than the minimum gap ago; wait this long.
    TooSoon(Duration),
}

/// What one sweep found.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Active sessions per audience.
    pub active: HashMap<Audience, u64>,
    /// Media seconds delivered since the last sweep, per audience.
    pub watched: HashMap<Audience, f64>,
    /// Sessions whose timeout passed, removed.
    pub ended: Vec<Session>,
}

pub struct Tracker {
    shards: Box<[Mutex<HashMap<String, Session>>]>,
    hasher: RandomState,
    timeout_floor_s: u64,
    /// Sessions not counted because [`MAX_SESSIONS`] were active.
    refused: std::sync::atomic::AtomicU64,
}

impl Tracker {
    pub fn new(timeout_floor_s: u64) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            timeout_floor_s,
            refused: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// New sessions not counted because the tracker was full, since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn shard(&self, sid: &str) -> MutexGuard<'_, HashMap<String, Session>> {
        let i = (self.hasher.hash_one(sid) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a delivery to session `sid`. `new_viewer` is asked only when the session
    /// is not active yet (it may verify the id and look up the live session); when it
    /// answers `None` nothing is recorded and `false` comes back. A known session costs
    /// one lookup and no allocation.
    pub fn record(
        &self,
        sid: &str,
        new_viewer: impl FnOnce() -> Option<Viewer>,
        delivered: &Delivered,
        now: Instant,
        now_ms: i64,
    ) -> bool {
        let timeout = figures::session_timeout(delivered.target_duration_s, self.timeout_floor_s);
        let mut shard = self.shard(sid);
        let session = match shard.get_mut(sid) {
            Some(s) => s,
            None => {
                if shard.len() >= MAX_SESSIONS / SHARDS {
                    self.refused
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    // Counted as recorded: the caller must not try another key.
                    return true;
                }
                let Some(viewer) = new_viewer() else {
                    return false;
                };
                shard.entry(sid.to_string()).or_insert(Session {
                    sid: sid.to_string(),
                    viewer,
                    started_ms: now_ms,
                    last_seen: now,
                    last_seen_ms: now_ms,
                    timeout,
                    renditions: Vec::new(),
                    reported_s: 0.0,
                    last_beacon: None,
                })
            }
        };
        session.last_seen = now;
        session.last_seen_ms = now_ms;
        session.timeout = timeout;
        let index = match session
            .renditions
            .iter()
            .position(|r| r.name == delivered.rendition)
        {
            Some(i) => i,
            None => {
                session.renditions.push(RenditionUse {
                    name: delivered.rendition.clone(),
                    kind: delivered.kind,
                    seconds: 0.0,
                    bytes: 0,
                    furthest: Furthest::default(),
                });
                session.renditions.len() - 1
            }
        };
        let r = &mut session.renditions[index];
        r.bytes += delivered.bytes;
        if let Some((msn, part, duration)) = delivered.media {
            if r.furthest.advance(msn, part) {
                r.seconds += duration;
            }
        }
        true
    }

    /// Takes a heatmap beacon of `sid`: at most one per `gap`.
    pub fn beacon(
        &self,
        sid: &str,
        gap: Duration,
        now: Instant,
    ) -> Result<Audience, BeaconRefused> {
        let mut shard = self.shard(sid);
        let session = shard.get_mut(sid).ok_or(BeaconRefused::Unknown)?;
        if let Some(last) = session.last_beacon {
            let since = now.saturating_duration_since(last);
            if since < gap {
                return Err(BeaconRefused::TooSoon(gap - since));
            }
        }
        session.last_beacon = Some(now);
        Ok(session.viewer.audience.clone())
    }

    /// Ends the sessions idle past their timeout and counts the others.
    pub fn sweep(&self, now: Instant) -> Sweep {
        let mut out = Sweep::default();
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.retain(|_, s| {
                let media = s.media_seconds();
                let delta = media - s.reported_s;
                if delta > 0.0 {
                    *out.watched.entry(s.viewer.audience.clone()).or_default() += delta;
                    s.reported_s = media;
                }
                if now.saturating_duration_since(s.last_seen) > s.timeout {
                    out.ended.push(s.clone());
                    false
                } else {
                    *out.active.entry(s.viewer.audience.clone()).or_default() += 1;
                    true
                }
            });
        }
        out
    }

    /// Copies of the active sessions `keep` selects (for summaries of what is live).
    pub fn active(&self, keep: impl Fn(&Session) -> bool) -> Vec<Session> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            out.extend(shard.values().filter(|s| keep(s)).cloned());
        }
        out
    }

    /// Ends every session (at shutdown).
    pub fn drain(&self) -> Vec<Session> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            out.extend(shard.drain().map(|(_, s)| s));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer() -> Option<Viewer> {
        Some(Viewer {
            audience: Audience {
                content_kind: "stream",
                content_id: "st_1".into(),
                label: "cam".into(),
                live_session: "ls_1".into(),
            },
            subject: "u1".into(),
            ua: UaClass::Browser,
        })
    }

    fn part(msn: u64, part: u32, kind: TrackKind, name: &str) -> Delivered {
        Delivered {
            rendition: name.into(),
            kind,
            media: Some((msn, part, 0.2)),
            bytes: 1000,
            target_duration_s: 2,
        }
    }

    #[test]
    fn media_seconds_count_video_once() {
        let t = Tracker::new(10);
        let now = Instant::now();
        for p in 0..5 {
            t.record("s1", viewer, &part(1, p, TrackKind::Video, "video"), now, 0);
            t.record("s1", viewer, &part(1, p, TrackKind::Audio, "audio"), now, 0);
        }
        t.record("s1", viewer, &part(1, 4, TrackKind::Video, "video"), now, 0);
        let s = &t.active(|_| true)[0];
        assert!((s.media_seconds() - 1.0).abs() < 1e-9);
        assert_eq!(s.bytes(), 11_000);
    }

    #[test]
    fn a_refused_new_session_records_nothing() {
        let t = Tracker::new(10);
        let d = part(1, 0, TrackKind::Video, "video");
        assert!(!t.record("forged", || None, &d, Instant::now(), 0));
        assert!(t.is_empty());
    }

    #[test]
    fn sessions_end_after_their_timeout() {
        let t = Tracker::new(10);
        let start = Instant::now();
        t.record(
            "s1",
            viewer,
            &part(1, 0, TrackKind::Video, "video"),
            start,
            0,
        );
        t.record(
            "s2",
            viewer,
            &part(1, 0, TrackKind::Video, "video"),
            start,
            0,
        );
        let later = start + Duration::from_secs(8);
        t.record(
            "s2",
            viewer,
            &part(1, 1, TrackKind::Video, "video"),
            later,
            0,
        );
        let sweep = t.sweep(start + Duration::from_secs(11));
        assert_eq!(sweep.ended.len(), 1);
        assert_eq!(sweep.ended[0].sid, "s1");
        assert_eq!(sweep.active.values().sum::<u64>(), 1);
        assert!((sweep.watched.values().sum::<f64>() - 0.6).abs() < 1e-9);
        let again = t.sweep(start + Duration::from_secs(12));
        assert!(again.watched.is_empty(), "watch time is reported once");
    }

    #[test]
    fn beacons_are_rate_limited_per_session() {
        let t = Tracker::new(10);
        let now = Instant::now();
        assert_eq!(
            t.beacon("s1", Duration::from_secs(5), now),
            Err(BeaconRefused::Unknown)
        );
        t.record("s1", viewer, &part(1, 0, TrackKind::Video, "video"), now, 0);
        assert!(t.beacon("s1", Duration::from_secs(5), now).is_ok());
        assert_eq!(
            t.beacon("s1", Duration::from_secs(5), now + Duration::from_secs(2)),
            Err(BeaconRefused::TooSoon(Duration::from_secs(3)))
        );
        assert!(t
            .beacon("s1", Duration::from_secs(5), now + Duration::from_secs(5))
            .is_ok());
    }
}

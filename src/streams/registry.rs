//! Every stream's task, by slug.
//!
//! The map is behind a std mutex held only to look up, insert or remove a handle —
//! never across an await or any media work — so one stream's takeover or delete never
//! makes another stream (or the API) wait.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::definition::{StreamDef, StreamSource};
use super::events::DisconnectReason;
use super::owner::{self, Protocol, PublishRefused, PublishSession, StreamContext, StreamHandle};
use super::status::LiveStatus;

#[derive(Default)]
struct Owners {
    by_slug: HashMap<String, StreamHandle>,
    /// Ids of deleted streams: a publish that looked its stream up just before the
    /// delete must not bring it back to life.
    deleted: HashSet<String>,
}

/// The tasks of the streams that are or were live since the server started, plus every
/// pulled stream.
pub struct StreamRegistry {
    ctx: Arc<StreamContext>,
    owners: Mutex<Owners>,
    /// Publishes refused because `max_live_streams` streams were live.
    refused_at_capacity: AtomicU64,
}

impl StreamRegistry {
    pub fn new(ctx: StreamContext) -> Arc<Self> {
        Arc::new(Self {
            ctx: Arc::new(ctx),
            owners: Mutex::new(Owners::default()),
            refused_at_capacity: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Owners> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The events of every stream.
    pub fn bus(&self) -> &super::events::EventBus {
        &self.ctx.bus
    }

    /// The task of `def`, started when it has none.
    fn owner(&self, def: &Arc<StreamDef>) -> Result<StreamHandle, PublishRefused> {
        let mut owners = self.lock();
        if owners.deleted.contains(&def.id) {
            return Err(PublishRefused::Gone);
        }
        if let Some(handle) = owners.by_slug.get(&def.slug) {
            if !handle.is_closed() {
                return Ok(handle.clone());
            }
        }
        let handle = owner::spawn(Arc::clone(def), Arc::clone(&self.ctx)).map_err(|e| {
            tracing::error!(stream = %def.slug, error = %e, "cannot start the stream's media thread");
            PublishRefused::Gone
        })?;
        owners.by_slug.insert(def.slug.clone(), handle.clone());
        Ok(handle)
    }

    /// The task of `slug`, if it has one.
    pub fn get(&self, slug: &str) -> Option<StreamHandle> {
        self.lock().by_slug.get(slug).cloned()
    }

    /// The live state of `slug` (idle when it has no task).
    pub fn status(&self, slug: &str) -> LiveStatus {
        self.get(slug).map(|h| h.status()).unwrap_or_default()
    }

    /// Makes `peer` the publisher of `def` (as the catalog had it when the key was
    /// checked; the task decides with its own, newest definition).
    pub async fn publish(
        &self,
        def: &Arc<StreamDef>,
        peer: SocketAddr,
        protocol: Protocol,
    ) -> Result<PublishSession, PublishRefused> {
        if !def.enabled {
            return Err(PublishRefused::Disabled);
        }
        // A takeover of a live stream adds none. Two first publishes racing for the
        // last place may both get in: the cap bounds the load, it is not a quota.
        let already_live = self.get(&def.slug).is_some_and(|h| h.status().live);
        let limit = self.ctx.max_live_streams;
        if !already_live && self.live_count() >= limit {
            self.refused_at_capacity.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(stream = %def.slug, %peer, limit, "publish refused: the server is at its live stream limit");
            return Err(PublishRefused::AtCapacity(limit));
        }
        self.owner(def)?.attach(peer, protocol).await
    }

    /// Streams with a publisher (or a pulled camera delivering) now.
    pub fn live_count(&self) -> usize {
        self.lock()
            .by_slug
            .values()
            .filter(|h| h.status().live)
            .count()
    }

    /// The live stream limit and how many publishes it refused.
    pub fn capacity(&self) -> (usize, u64) {
        (
            self.ctx.max_live_streams,
            self.refused_at_capacity.load(Ordering::Relaxed),
        )
    }

    /// Bytes each stream may hold in memory (`[limits] stream_memory_bytes`).
    pub fn memory_budget(&self) -> u64 {
        self.ctx.stream_memory_bytes
    }

    /// What each stream with a task holds in memory, by slug.
    pub fn memory(&self) -> Vec<(String, Arc<super::memory::StreamMemory>)> {
        let mut all: Vec<_> = self
            .lock()
            .by_slug
            .iter()
            .map(|(slug, h)| (slug.clone(), Arc::clone(h.memory())))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Starts the tasks of the pulled streams among `defs` (at server start).
    pub fn start_pullers<'a>(&self, defs: impl IntoIterator<Item = &'a Arc<StreamDef>>) {
        for def in defs {
            if def.enabled && matches!(def.source, StreamSource::RtspPull(_)) {
                let _ = self.owner(def);
            }
        }
    }

    /// The catalog now holds `def`: the stream's task applies it at once. A stream
    /// without a task gets one only if it is pulled (it has nothing live to change
    /// otherwise; its next publisher reads the catalog).
    pub async fn redefine(&self, def: &Arc<StreamDef>) {
        let handle = self.get(&def.slug);
        match handle {
            Some(handle) if !handle.is_closed() => handle.redefine(Arc::clone(def)).await,
            _ => self.start_pullers([def]),
        }
    }

    /// Disconnects the publisher of `slug`, if any (its key was rotated).
    pub async fn kick(&self, slug: &str, reason: DisconnectReason) {
        if let Some(handle) = self.get(slug) {
            handle.kick(reason).await;
        }
    }

    /// The stream was deleted: its publisher is disconnected, its puller stopped, its
    /// playlists removed; returns once that is done.
    pub async fn remove(&self, def: &StreamDef) {
        let handle = {
            let mut owners = self.lock();
            owners.deleted.insert(def.id.clone());
            owners.by_slug.remove(&def.slug)
        };
        if let Some(handle) = handle {
            handle.delete().await;
        }
    }
}

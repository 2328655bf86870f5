//! Catalog writes that reach the live path: each one commits in the catalog, then
//! tells the stream's task, then publishes its event. The API goes through here, so
//! what it answers is what the stream does.

use std::sync::Arc;

use super::definition::StreamDef;
use super::events::{DisconnectReason, EventBus, StreamEvent, StreamSummary};
use super::registry::StreamRegistry;
use crate::catalog::{Catalog, CatalogError};

/// The catalog, the live streams and the bus, together.
pub struct StreamService {
    pub catalog: Arc<Catalog>,
    pub registry: Arc<StreamRegistry>,
}

impl StreamService {
    fn bus(&self) -> &EventBus {
        self.registry.bus()
    }

    /// Creates a stream from `def` (slug and editable fields; the catalog sets id
    /// and times); `key` is generated when `None`. Returns the record and the key,
    /// which is not stored and cannot be shown again.
    pub async fn create(
        &self,
        def: StreamDef,
        key: Option<String>,
    ) -> Result<(Arc<StreamDef>, String), CatalogError> {
        let (def, key) = self.catalog.create(def, key).await?;
        // A pulled camera starts being pulled now.
        self.registry.redefine(&def).await;
        self.bus().publish(StreamEvent::Created {
            stream: StreamSummary::from(&def),
        });
        Ok((def, key))
    }

    /// Applies `edit` to stream `id` (id or slug); the live stream follows at once.
    pub async fn update(
        &self,
        id: &str,
        edit: impl FnOnce(&mut StreamDef),
    ) -> Result<Arc<StreamDef>, CatalogError> {
        let (old, new) = self.catalog.update(id, edit).await?;
        self.registry.redefine(&new).await;
        let changed = changed_fields(&old, &new);
        if !changed.is_empty() {
            self.bus().publish(StreamEvent::Updated {
                stream: StreamSummary::from(&new),
                changed,
            });
        }
        Ok(new)
    }

    /// Deletes stream `id`: once this returns, its publisher is disconnected, its
    /// puller stopped and every `/hls/<slug>/…` URL answers 404.
    pub async fn delete(&self, id: &str) -> Result<Arc<StreamDef>, CatalogError> {
        let def = self.catalog.delete(id).await?;
        self.registry.remove(&def).await;
        self.bus().publish(StreamEvent::Deleted {
            stream: StreamSummary::from(&def),
        });
        Ok(def)
    }

    /// Gives stream `id` a new key and disconnects the publisher that used the old one.
    pub async fn rotate_key(&self, id: &str) -> Result<String, CatalogError> {
        let (def, key) = self.catalog.rotate_key(id).await?;
        self.registry
            .kick(&def.slug, DisconnectReason::KeyRotated)
            .await;
        self.bus().publish(StreamEvent::KeyRotated {
            stream: StreamSummary::from(&def),
        });
        Ok(key)
    }
}

/// Names of the definition fields that differ.
pub fn changed_fields(old: &StreamDef, new: &StreamDef) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name, differs: bool| {
        if differs {
            changed.push(name);
        }
    };
    check("title", old.title != new.title);
    check("description", old.description != new.description);
    check("tags", old.tags != new.tags);
    check("projection", old.projection != new.projection);
    check("orientation", old.orientation != new.orientation);
    check("cubemap", old.cubemap != new.cubemap);
    check("ladder", old.ladder != new.ladder);
    check("visibility", old.visibility != new.visibility);
    check("enabled", old.enabled != new.enabled);
    check(
        "reconnect_window_s",
        old.reconnect_window_s != new.reconnect_window_s,
    );
    check("source", old.source != new.source);
    check("record", old.record != new.record);
    check(
        "scheduled_start",
        old.scheduled_start != new.scheduled_start,
    );
    check("scheduled_end", old.scheduled_end != new.scheduled_end);
    changed
}

//! The stream catalog: stream records with their owner, visibility, source and
//! (hashed) publish key, persisted in the database and mirrored in memory.
//!
//! The database is the source of truth; the in-memory index answers every lookup
//! (RTMP publish authorization, HLS gating, lists) without a query. Writes are
//! serialized by one async mutex and update the index only after their commit, so the
//! index never shows a state the database does not hold.
//!
//! The catalog only stores; [`crate::streams::service::StreamService`] makes its
//! writes reach the live streams.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};

use crate::auth::{random_secret, secret_hash};
use crate::db::{self, Pool};
use crate::ingest::rtsp::RtspTransport;
use crate::notify::outbox;
use crate::notify::webhooks::MessageType;
use crate::streams::definition::{RtspPull, Secret};
use crate::streams::events::StreamSummary;
use crate::streams::service::changed_fields;
use crate::streams::{
    Orientation, Projection, StreamDef, StreamDirectory, StreamSource, Visibility,
};

/// Why a catalog write failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("a stream named {0} already exists")]
    SlugTaken(String),
    #[error("{0}")]
    Invalid(String),
    #[error("no such stream")]
    NotFound,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

#[derive(Default)]
struct Index {
    by_slug: BTreeMap<String, Arc<StreamDef>>,
    slug_by_id: HashMap<String, String>,
    /// Key hash → slug.
    slug_by_key: HashMap<String, String>,
    key_by_slug: HashMap<String, String>,
}

impl Index {
    fn insert(&mut self, record: Arc<StreamDef>, key_hash: String) {
        self.remove(&record.slug);
        self.slug_by_id
            .insert(record.id.clone(), record.slug.clone());
        self.slug_by_key
            .insert(key_hash.clone(), record.slug.clone());
        self.key_by_slug.insert(record.slug.clone(), key_hash);
        self.by_slug.insert(record.slug.clone(), record);
    }

    fn remove(&mut self, slug: &str) {
        if let Some(old) = self.by_slug.remove(slug) {
            self.slug_by_id.remove(&old.id);
        }
        if let Some(key) = self.key_by_slug.remove(slug) {
            self.slug_by_key.remove(&key);
        }
    }
}

/// The stream catalog.
pub struct Catalog {
    pool: Pool,
    index: RwLock<Index>,
    writes: tokio::sync::Mutex<()>,
}

const COLUMNS: &str =
    "id, slug, title, description, tags, owner_id, projection, yaw, pitch, roll, \
     ladder, visibility, scheduled_start, scheduled_end, key_hash, created_at, updated_at, \
     enabled, reconnect_window_s, source, record, fisheye, bake_orientation, cubemap";

/// How a source is kept in the `source` column. The camera password is stored as it
/// is: panocast needs it to log in to the camera.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum StoredSource {
    RtmpPush,
    RtspPull {
        url: String,
        transport: RtspTransport,
        username: Option<String>,
        password: Option<String>,
    },
}

impl StoredSource {
    fn of(source: &StreamSource) -> Self {
        match source {
            StreamSource::RtmpPush => StoredSource::RtmpPush,
            StreamSource::RtspPull(p) => StoredSource::RtspPull {
                url: p.url.clone(),
                transport: p.transport,
                username: p.username.clone(),
                password: p.password.as_ref().map(|s| s.expose().to_string()),
            },
        }
    }

    fn into_source(self) -> StreamSource {
        match self {
            StoredSource::RtmpPush => StreamSource::RtmpPush,
            StoredSource::RtspPull {
                url,
                transport,
                username,
                password,
            } => StreamSource::RtspPull(RtspPull {
                url,
                transport,
                username,
                password: password.map(Secret::new),
            }),
        }
    }

    fn json(source: &StreamSource) -> String {
        serde_json::to_string(&Self::of(source))
            .unwrap_or_else(|_| r#"{"kind":"rtmp-push"}"#.into())
    }
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<(StreamDef, String), sqlx::Error> {
    let bad = |what: &str| sqlx::Error::Decode(format!("streams.{what}").into());
    let tags: String = row.try_get("tags")?;
    let projection: String = row.try_get("projection")?;
    let visibility: String = row.try_get("visibility")?;
    let source: String = row.try_get("source")?;
    let reconnect_window_s: i64 = row.try_get("reconnect_window_s")?;
    let record: String = row.try_get("record")?;
    let fisheye: String = row.try_get("fisheye")?;
    Ok((
        StreamDef {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            tags: serde_json::from_str(&tags).map_err(|_| bad("tags"))?,
            owner_id: row.try_get("owner_id")?,
            projection: Projection::parse(&projection).ok_or_else(|| bad("projection"))?,
            orientation: Orientation {
                yaw: row.try_get("yaw")?,
                pitch: row.try_get("pitch")?,
                roll: row.try_get("roll")?,
            },
            fisheye: serde_json::from_str(&fisheye).map_err(|_| bad("fisheye"))?,
            bake_orientation: row.try_get("bake_orientation")?,
            cubemap: row.try_get("cubemap")?,
            ladder: row.try_get("ladder")?,
            visibility: Visibility::parse(&visibility).ok_or_else(|| bad("visibility"))?,
            enabled: row.try_get("enabled")?,
            reconnect_window_s: u32::try_from(reconnect_window_s)
                .map_err(|_| bad("reconnect_window_s"))?,
            record: serde_json::from_str(&record).map_err(|_| bad("record"))?,
            source: serde_json::from_str::<StoredSource>(&source)
                .map_err(|_| bad("source"))?
                .into_source(),
            scheduled_start: row.try_get("scheduled_start")?,
            scheduled_end: row.try_get("scheduled_end")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
        row.try_get("key_hash")?,
    ))
}

/// A new stream key: 24 random bytes, 32 URL-safe characters.
pub fn new_stream_key() -> String {
    random_secret(24)
}

fn unique_violation(e: sqlx::Error, slug: &str) -> CatalogError {
    match e {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            if e.message().contains("key_hash") {
                CatalogError::Invalid("this stream key is already in use".into())
            } else {
                CatalogError::SlugTaken(slug.to_string())
            }
        }
        e => e.into(),
    }
}

impl Catalog {
    /// Loads every stream into memory.
    pub async fn load(pool: Pool) -> Result<Self, sqlx::Error> {
        let mut index = Index::default();
        for row in sqlx::query(&format!("SELECT {COLUMNS} FROM streams"))
            .fetch_all(&pool)
            .await?
        {
            let (record, key_hash) = record_from_row(&row)?;
            index.insert(Arc::new(record), key_hash);
        }
        Ok(Self {
            pool,
            index: RwLock::new(index),
            writes: tokio::sync::Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_empty(&self) -> bool {
        self.read().by_slug.is_empty()
    }

    pub fn len(&self) -> usize {
        self.read().by_slug.len()
    }

    /// The stream with this id (`st_…`) or slug.
    pub fn get(&self, id_or_slug: &str) -> Option<Arc<StreamDef>> {
        let index = self.read();
        let slug = index
            .slug_by_id
            .get(id_or_slug)
            .map_or(id_or_slug, String::as_str);
        index.by_slug.get(slug).cloned()
    }

    /// The stream with this slug (ids are not looked at).
    pub fn get_slug(&self, slug: &str) -> Option<Arc<StreamDef>> {
        self.read().by_slug.get(slug).cloned()
    }

    /// Every stream, by slug.
    pub fn all(&self) -> Vec<Arc<StreamDef>> {
        self.read().by_slug.values().cloned().collect()
    }

    /// Streams ordered by slug after `cursor`, kept by `visible`; at most `limit`, and
    /// the cursor of the next page when there is one.
    pub fn list(
        &self,
        cursor: Option<&str>,
        limit: usize,
        visible: impl Fn(&StreamDef) -> bool,
    ) -> (Vec<Arc<StreamDef>>, Option<String>) {
        use std::ops::Bound;
        let index = self.read();
        let start = cursor.map_or(Bound::Unbounded, |c| Bound::Excluded(c.to_string()));
        let mut items: Vec<_> = index
            .by_slug
            .range((start, Bound::Unbounded))
            .map(|(_, r)| r)
            .filter(|r| visible(r))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().map(|r| r.slug.clone()).unwrap_or_default()
        });
        (items, next)
    }

    /// Stores `def` as a new stream (its id and times are set here); `key` is
    /// generated when `None`. Returns the record and the key, which is not stored and
    /// cannot be shown again.
    pub async fn create(
        &self,
        mut def: StreamDef,
        key: Option<String>,
    ) -> Result<(Arc<StreamDef>, String), CatalogError> {
        def.validate().map_err(CatalogError::Invalid)?;
        let key = key.unwrap_or_else(new_stream_key);
        let key_hash = secret_hash(&key);
        let now = db::now();
        def.id = db::new_id("st");
        def.created_at = now;
        def.updated_at = now;
        let _write = self.writes.lock().await;
        let mut tx = crate::db::write_tx(&self.pool).await?;
        store(&mut tx, &def, &key_hash)
            .await
            .map_err(|e| unique_violation(e, &def.slug))?;
        let def = Arc::new(def);
        announce(&mut tx, MessageType::StreamCreated, &def, None).await?;
        tx.commit().await?;
        self.write().insert(Arc::clone(&def), key_hash);
        tracing::info!(stream = %def.slug, id = %def.id, "stream created");
        Ok((def, key))
    }

    /// Applies `edit` to stream `id` (id or slug) and stores the result. The id,
    /// slug, owner and creation time cannot change. Returns the old and new record.
    pub async fn update(
        &self,
        id: &str,
        edit: impl FnOnce(&mut StreamDef),
    ) -> Result<(Arc<StreamDef>, Arc<StreamDef>), CatalogError> {
        let _write = self.writes.lock().await;
        let current = self.get(id).ok_or(CatalogError::NotFound)?;
        let mut def = (*current).clone();
        edit(&mut def);
        def.id = current.id.clone();
        def.slug = current.slug.clone();
        def.owner_id = current.owner_id.clone();
        def.created_at = current.created_at;
        def.updated_at = db::now();
        def.validate().map_err(CatalogError::Invalid)?;
        let key_hash = self
            .read()
            .key_by_slug
            .get(&def.slug)
            .cloned()
            .ok_or(CatalogError::NotFound)?;
        let def = Arc::new(def);
        let changed = changed_fields(&current, &def);
        let mut tx = crate::db::write_tx(&self.pool).await?;
        store(&mut tx, &def, &key_hash).await?;
        if !changed.is_empty() {
            announce(&mut tx, MessageType::StreamUpdated, &def, Some(changed)).await?;
        }
        tx.commit().await?;
        self.write().insert(Arc::clone(&def), key_hash);
        Ok((current, def))
    }
}

/// Writes the outbox message of a change to `def`, on the change's transaction.
async fn announce(
    conn: &mut SqliteConnection,
    kind: MessageType,
    def: &Arc<StreamDef>,
    changed: Option<Vec<&'static str>>,
) -> Result<(), sqlx::Error> {
    let data = crate::notify::payloads::StreamChanged {
        stream: StreamSummary::from(def),
        changed,
    };
    outbox::enqueue(conn, kind.as_str(), &data).await?;
    Ok(())
}

/// Writes `def` as its row: a new stream, or every editable column of an existing
/// one (the id, slug, owner, key and creation time of a stored row never change).
async fn store(
    conn: &mut SqliteConnection,
    def: &StreamDef,
    key_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
            "INSERT INTO streams ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) \
             ON CONFLICT (id) DO UPDATE SET title = excluded.title, \
             description = excluded.description, tags = excluded.tags, \
             projection = excluded.projection, yaw = excluded.yaw, pitch = excluded.pitch, \
             roll = excluded.roll, ladder = excluded.ladder, visibility = excluded.visibility, \
             scheduled_start = excluded.scheduled_start, scheduled_end = excluded.scheduled_end, \
             updated_at = excluded.updated_at, enabled = excluded.enabled, \
             reconnect_window_s = excluded.reconnect_window_s, source = excluded.source, \
             record = excluded.record, fisheye = excluded.fisheye, \
             bake_orientation = excluded.bake_orientation, cubemap = excluded.cubemap"
        ))
        .bind(&def.id)
        .bind(&def.slug)
        .bind(&def.title)
        .bind(&def.description)
        .bind(serde_json::to_string(&def.tags).unwrap_or_else(|_| "[]".into()))
        .bind(&def.owner_id)
        .bind(def.projection.as_str())
        .bind(def.orientation.yaw)
        .bind(def.orientation.pitch)
        .bind(def.orientation.roll)
        .bind(&def.ladder)
        .bind(def.visibility.as_str())
        .bind(&def.scheduled_start)
        .bind(&def.scheduled_end)
        .bind(key_hash)
        .bind(def.created_at)
        .bind(def.updated_at)
        .bind(def.enabled)
        .bind(i64::from(def.reconnect_window_s))
        .bind(StoredSource::json(&def.source))
        .bind(serde_json::to_string(&def.record).unwrap_or_else(|_| r#"{"enabled":true}"#.into()))
        .bind(serde_json::to_string(&def.fisheye).unwrap_or_else(|_| "{}".into()))
        .bind(def.bake_orientation)
        .bind(def.cubemap)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Catalog {
    /// Deletes stream `id`; returns its last record.
    pub async fn delete(&self, id: &str) -> Result<Arc<StreamDef>, CatalogError> {
        let _write = self.writes.lock().await;
        let current = self.get(id).ok_or(CatalogError::NotFound)?;
        let mut tx = crate::db::write_tx(&self.pool).await?;
        sqlx::query("DELETE FROM streams WHERE id = $1")
            .bind(&current.id)
            .execute(&mut *tx)
            .await?;
        announce(&mut tx, MessageType::StreamDeleted, &current, None).await?;
        tx.commit().await?;
        self.write().remove(&current.slug);
        tracing::info!(stream = %current.slug, "stream deleted");
        Ok(current)
    }

    /// Gives stream `id` a new key; the old one stops authorizing publishers at once.
    pub async fn rotate_key(&self, id: &str) -> Result<(Arc<StreamDef>, String), CatalogError> {
        let _write = self.writes.lock().await;
        let current = self.get(id).ok_or(CatalogError::NotFound)?;
        let key = new_stream_key();
        let key_hash = secret_hash(&key);
        let mut tx = crate::db::write_tx(&self.pool).await?;
        sqlx::query("UPDATE streams SET key_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(&key_hash)
            .bind(db::now())
            .bind(&current.id)
            .execute(&mut *tx)
            .await?;
        announce(&mut tx, MessageType::StreamKeyRotated, &current, None).await?;
        tx.commit().await?;
        self.write().insert(Arc::clone(&current), key_hash);
        tracing::info!(stream = %current.slug, "stream key rotated");
        Ok((current, key))
    }
}

#[async_trait]
impl StreamDirectory for Catalog {
    async fn by_publish_key(&self, stream_key: &str) -> Option<Arc<StreamDef>> {
        // The lookup compares SHA-256 digests, not keys: how long a lookup takes says
        // something about a digest's bytes at most, which gives nothing about any key.
        let hash = secret_hash(stream_key);
        let index = self.read();
        let slug = index.slug_by_key.get(&hash)?;
        index.by_slug.get(slug).cloned()
    }

    async fn by_slug(&self, slug: &str) -> Option<Arc<StreamDef>> {
        self.read().by_slug.get(slug).cloned()
    }
}

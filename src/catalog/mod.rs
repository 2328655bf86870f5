//! The stream catalog: streams with their metadata, owner, visibility and (hashed)
//! publish key, persisted in the database and mirrored in memory.
//!
//! The database is the source of truth; the in-memory index answers every lookup
//! (RTMP publish authorization, HLS gating, lists) without a query. Writes are
//! serialized by one async mutex and update the index only after their commit, so the
//! index never shows a state the database does not hold.
//!
//! [`Catalog`] implements [`StreamDirectory`], so RTMP ingest and HLS delivery use it
//! unchanged.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::auth::{random_secret, secret_hash};
use crate::db::{self, Pool};
use crate::streams::definition::is_valid_slug;
use crate::streams::{Orientation, Projection, StreamDef, StreamDirectory};

/// Who may watch a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Listed and playable by anyone.
    #[default]
    Public,
    /// Playable by anyone with the URL, absent from public lists.
    Unlisted,
    /// Playable only with a playback token.
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Unlisted => "unlisted",
            Visibility::Private => "private",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Visibility::Public),
            "unlisted" => Some(Visibility::Unlisted),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

fn projection_str(p: Projection) -> &'static str {
    match p {
        Projection::Flat => "flat",
        Projection::Equirect => "equirect",
        Projection::EquirectStereoTb => "equirect-stereo-tb",
        Projection::EquirectStereoSbs => "equirect-stereo-sbs",
    }
}

fn parse_projection(s: &str) -> Option<Projection> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// Everything the catalog holds of a stream, except the key hash.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRecord {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// User id of the owner; `None` for streams imported from the config file.
    pub owner_id: Option<String>,
    pub projection: Projection,
    pub orientation: Orientation,
    /// Name of the transcoding ladder profile (`default`: the source alone).
    pub ladder: String,
    pub visibility: Visibility,
    /// RFC 3339.
    pub scheduled_start: Option<String>,
    pub scheduled_end: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl StreamRecord {
    pub fn def(&self) -> StreamDef {
        StreamDef {
            slug: self.slug.clone(),
            projection: self.projection,
            orientation: self.orientation,
            ladder: self.ladder.clone(),
        }
    }
}

/// The editable fields of a stream, all validated by [`StreamFields::validate`].
#[derive(Clone, Debug)]
pub struct StreamFields {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub projection: Projection,
    pub orientation: Orientation,
    pub ladder: String,
    pub visibility: Visibility,
    pub scheduled_start: Option<String>,
    pub scheduled_end: Option<String>,
}

impl StreamFields {
    /// Defaults for a stream named `slug`.
    pub fn new(slug: &str) -> Self {
        Self {
            title: slug.to_string(),
            description: String::new(),
            tags: Vec::new(),
            projection: Projection::Equirect,
            orientation: Orientation::default(),
            ladder: "default".into(),
            visibility: Visibility::Public,
            scheduled_start: None,
            scheduled_end: None,
        }
    }

    /// Refuses what a client must fix, with the reason.
    pub fn validate(&self) -> Result<(), String> {
        if self.title.trim().is_empty() || self.title.chars().count() > 200 {
            return Err("title needs 1-200 characters".into());
        }
        if self.description.chars().count() > 5000 {
            return Err("description may have at most 5000 characters".into());
        }
        if self.tags.len() > 20
            || self
                .tags
                .iter()
                .any(|t| t.trim().is_empty() || t.chars().count() > 32)
        {
            return Err("at most 20 tags of 1-32 characters".into());
        }
        let o = self.orientation;
        if ![o.yaw, o.pitch, o.roll]
            .iter()
            .all(|v| v.is_finite() && (-360.0..=360.0).contains(v))
        {
            return Err("orientation angles must be degrees in -360..=360".into());
        }
        if self.ladder.is_empty()
            || self.ladder.len() > 64
            || !self
                .ladder
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("ladder needs 1-64 characters a-z, A-Z, 0-9, '-' or '_'".into());
        }
        let parse = |name: &str, v: &Option<String>| -> Result<Option<i64>, String> {
            v.as_deref()
                .map(|s| {
                    chrono::DateTime::parse_from_rfc3339(s)
                        .map(|t| t.timestamp())
                        .map_err(|_| format!("{name} must be an RFC 3339 time"))
                })
                .transpose()
        };
        let start = parse("scheduled_start", &self.scheduled_start)?;
        let end = parse("scheduled_end", &self.scheduled_end)?;
        if let (Some(start), Some(end)) = (start, end) {
            if end <= start {
                return Err("scheduled_end must be after scheduled_start".into());
            }
        }
        Ok(())
    }
}

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
    by_slug: BTreeMap<String, Arc<StreamRecord>>,
    slug_by_id: HashMap<String, String>,
    /// Key hash → slug.
    slug_by_key: HashMap<String, String>,
    key_by_slug: HashMap<String, String>,
}

impl Index {
    fn insert(&mut self, record: StreamRecord, key_hash: String) {
        self.remove(&record.slug);
        self.slug_by_id
            .insert(record.id.clone(), record.slug.clone());
        self.slug_by_key
            .insert(key_hash.clone(), record.slug.clone());
        self.key_by_slug.insert(record.slug.clone(), key_hash);
        self.by_slug.insert(record.slug.clone(), Arc::new(record));
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
     ladder, visibility, scheduled_start, scheduled_end, key_hash, created_at, updated_at";

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<(StreamRecord, String), sqlx::Error> {
    let bad = |what: &str| sqlx::Error::Decode(format!("streams.{what}").into());
    let tags: String = row.try_get("tags")?;
    let projection: String = row.try_get("projection")?;
    let visibility: String = row.try_get("visibility")?;
    Ok((
        StreamRecord {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            title: row.try_get("title")?,
            description: row.try_get("description")?,
            tags: serde_json::from_str(&tags).map_err(|_| bad("tags"))?,
            owner_id: row.try_get("owner_id")?,
            projection: parse_projection(&projection).ok_or_else(|| bad("projection"))?,
            orientation: Orientation {
                yaw: row.try_get("yaw")?,
                pitch: row.try_get("pitch")?,
                roll: row.try_get("roll")?,
            },
            ladder: row.try_get("ladder")?,
            visibility: Visibility::parse(&visibility).ok_or_else(|| bad("visibility"))?,
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

impl Catalog {
    /// Loads every stream into memory.
    pub async fn load(pool: Pool) -> Result<Self, sqlx::Error> {
        let mut index = Index::default();
        for row in sqlx::query(&format!("SELECT {COLUMNS} FROM streams"))
            .fetch_all(&pool)
            .await?
        {
            let (record, key_hash) = record_from_row(&row)?;
            index.insert(record, key_hash);
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
    pub fn get(&self, id_or_slug: &str) -> Option<Arc<StreamRecord>> {
        let index = self.read();
        let slug = index
            .slug_by_id
            .get(id_or_slug)
            .map_or(id_or_slug, String::as_str);
        index.by_slug.get(slug).cloned()
    }

    /// The stream with this slug (ids are not looked at).
    pub fn get_slug(&self, slug: &str) -> Option<Arc<StreamRecord>> {
        self.read().by_slug.get(slug).cloned()
    }

    /// Streams ordered by slug after `cursor`, kept by `visible`; at most `limit`, and
    /// the cursor of the next page when there is one.
    pub fn list(
        &self,
        cursor: Option<&str>,
        limit: usize,
        visible: impl Fn(&StreamRecord) -> bool,
    ) -> (Vec<Arc<StreamRecord>>, Option<String>) {
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

    /// Creates a stream; `key` is generated when `None`. Returns the record and the
    /// key, which is not stored and cannot be shown again.
    pub async fn create(
        &self,
        slug: &str,
        owner_id: Option<&str>,
        fields: StreamFields,
        key: Option<String>,
    ) -> Result<(Arc<StreamRecord>, String), CatalogError> {
        if !is_valid_slug(slug) {
            return Err(CatalogError::Invalid(
                "slug needs 1-64 characters a-z, 0-9 and -".into(),
            ));
        }
        fields.validate().map_err(CatalogError::Invalid)?;
        let key = key.unwrap_or_else(new_stream_key);
        let key_hash = secret_hash(&key);
        let now = db::now();
        let record = StreamRecord {
            id: db::new_id("st"),
            slug: slug.to_string(),
            title: fields.title,
            description: fields.description,
            tags: fields.tags,
            owner_id: owner_id.map(str::to_string),
            projection: fields.projection,
            orientation: fields.orientation,
            ladder: fields.ladder,
            visibility: fields.visibility,
            scheduled_start: fields.scheduled_start,
            scheduled_end: fields.scheduled_end,
            created_at: now,
            updated_at: now,
        };
        let _write = self.writes.lock().await;
        let inserted = sqlx::query(&format!(
            "INSERT INTO streams ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
        ))
        .bind(&record.id)
        .bind(&record.slug)
        .bind(&record.title)
        .bind(&record.description)
        .bind(serde_json::to_string(&record.tags).unwrap_or_else(|_| "[]".into()))
        .bind(&record.owner_id)
        .bind(projection_str(record.projection))
        .bind(record.orientation.yaw)
        .bind(record.orientation.pitch)
        .bind(record.orientation.roll)
        .bind(&record.ladder)
        .bind(record.visibility.as_str())
        .bind(&record.scheduled_start)
        .bind(&record.scheduled_end)
        .bind(&key_hash)
        .bind(record.created_at)
        .bind(record.updated_at)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(if e.message().contains("key_hash") {
                    CatalogError::Invalid("this stream key is already in use".into())
                } else {
                    CatalogError::SlugTaken(slug.to_string())
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.write().insert(record, key_hash);
        let record = self.get(slug).ok_or(CatalogError::NotFound)?;
        tracing::info!(stream = %slug, id = %record.id, "stream created");
        Ok((record, key))
    }

    /// Replaces the editable fields of stream `id`.
    pub async fn update(
        &self,
        id: &str,
        fields: StreamFields,
    ) -> Result<Arc<StreamRecord>, CatalogError> {
        fields.validate().map_err(CatalogError::Invalid)?;
        let _write = self.writes.lock().await;
        let current = self.get(id).ok_or(CatalogError::NotFound)?;
        let now = db::now();
        let done = sqlx::query(
            "UPDATE streams SET title = $1, description = $2, tags = $3, projection = $4, \
             yaw = $5, pitch = $6, roll = $7, ladder = $8, visibility = $9, \
             scheduled_start = $10, scheduled_end = $11, updated_at = $12 WHERE id = $13",
        )
        .bind(&fields.title)
        .bind(&fields.description)
        .bind(serde_json::to_string(&fields.tags).unwrap_or_else(|_| "[]".into()))
        .bind(projection_str(fields.projection))
        .bind(fields.orientation.yaw)
        .bind(fields.orientation.pitch)
        .bind(fields.orientation.roll)
        .bind(&fields.ladder)
        .bind(fields.visibility.as_str())
        .bind(&fields.scheduled_start)
        .bind(&fields.scheduled_end)
        .bind(now)
        .bind(&current.id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(CatalogError::NotFound);
        }
        let record = StreamRecord {
            title: fields.title,
            description: fields.description,
            tags: fields.tags,
            projection: fields.projection,
            orientation: fields.orientation,
            ladder: fields.ladder,
            visibility: fields.visibility,
            scheduled_start: fields.scheduled_start,
            scheduled_end: fields.scheduled_end,
            updated_at: now,
            ..(*current).clone()
        };
        let mut index = self.write();
        let key_hash = index
            .key_by_slug
            .get(&record.slug)
            .cloned()
            .unwrap_or_default();
        index.insert(record.clone(), key_hash);
        Ok(Arc::new(record))
    }

    /// Deletes stream `id`. A publisher that is live keeps its connection until it
    /// leaves; it cannot publish again.
    pub async fn delete(&self, id: &str) -> Result<(), CatalogError> {
        let _write = self.writes.lock().await;
        let current = self.get(id).ok_or(CatalogError::NotFound)?;
        sqlx::query("DELETE FROM streams WHERE id = $1")
            .bind(&current.id)
            .execute(&self.pool)
            .await?;
        self.write().remove(&current.slug);
        tracing::info!(stream = %current.slug, "stream deleted");
        Ok(())
    }

    /// Gives stream `id` a new key; the old one stops authorizing publishers at once.
    pub async fn rotate_key(&self, id: &str) -> Result<String, CatalogError> {
        let _write = self.writes.lock().await;
        let current = self.get(id).ok_or(CatalogError::NotFound)?;
        let key = new_stream_key();
        let key_hash = secret_hash(&key);
        sqlx::query("UPDATE streams SET key_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(&key_hash)
            .bind(db::now())
            .bind(&current.id)
            .execute(&self.pool)
            .await?;
        self.write().insert((*current).clone(), key_hash);
        tracing::info!(stream = %current.slug, "stream key rotated");
        Ok(key)
    }
}

#[async_trait]
impl StreamDirectory for Catalog {
    async fn by_publish_key(&self, stream_key: &str) -> Option<StreamDef> {
        // The lookup compares SHA-256 digests, not keys: how long a lookup takes says
        // something about a digest's bytes at most, which gives nothing about any key.
        let hash = secret_hash(stream_key);
        let index = self.read();
        let slug = index.slug_by_key.get(&hash)?;
        index.by_slug.get(slug).map(|r| r.def())
    }

    async fn by_slug(&self, slug: &str) -> Option<StreamDef> {
        self.read().by_slug.get(slug).map(|r| r.def())
    }
}

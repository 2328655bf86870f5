//! The `assets` and `renditions` rows. Every write is one statement or transaction;
//! readers get whole [`Asset`]s with their renditions.

use sqlx::Row;

use super::{
    Asset, AssetSource, AssetState, NewAsset, NewRecording, Rendition, RenditionKind,
    RenditionState,
};
use crate::db::{self, Pool};
use crate::streams::{Orientation, Projection, Visibility};

const COLUMNS: &str = "id, source, title, owner_id, visibility, projection, yaw, pitch, roll, \
     filename, duration_ms, state, message, created_at, updated_at, stream_id, live_session_id, \
     recording";

/// The columns a new asset row is made of.
struct NewRow<'a> {
    source: AssetSource,
    title: &'a str,
    owner_id: Option<&'a str>,
    visibility: Visibility,
    projection: Projection,
    orientation: Orientation,
    filename: &'a str,
    stream_id: Option<&'a str>,
    live_session_id: Option<&'a str>,
    recording: bool,
}

/// Assets in the catalog database.
#[derive(Clone)]
pub struct AssetStore {
    pool: Pool,
}

fn asset_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Asset, sqlx::Error> {
    let bad = |what: &str| sqlx::Error::Decode(format!("assets.{what}").into());
    let source: String = row.try_get("source")?;
    let visibility: String = row.try_get("visibility")?;
    let projection: String = row.try_get("projection")?;
    let state: String = row.try_get("state")?;
    let duration_ms: Option<i64> = row.try_get("duration_ms")?;
    Ok(Asset {
        id: row.try_get("id")?,
        source: AssetSource::parse(&source).ok_or_else(|| bad("source"))?,
        title: row.try_get("title")?,
        owner_id: row.try_get("owner_id")?,
        visibility: Visibility::parse(&visibility).ok_or_else(|| bad("visibility"))?,
        projection: Projection::parse(&projection).ok_or_else(|| bad("projection"))?,
        orientation: Orientation {
            yaw: row.try_get("yaw")?,
            pitch: row.try_get("pitch")?,
            roll: row.try_get("roll")?,
        },
        duration_s: duration_ms.map(|ms| ms as f64 / 1000.0),
        state: AssetState::parse(&state).ok_or_else(|| bad("state"))?,
        message: row.try_get("message")?,
        renditions: Vec::new(),
        stream_id: row.try_get("stream_id")?,
        live_session_id: row.try_get("live_session_id")?,
        recording: row.try_get("recording")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl AssetStore {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    /// Stores a new `preparing` upload with every rendition pending (HLS and audio).
    pub async fn create(&self, new: NewAsset) -> Result<Asset, sqlx::Error> {
        self.insert(NewRow {
            source: AssetSource::Upload,
            title: &new.title,
            owner_id: Some(&new.owner_id),
            visibility: new.visibility,
            projection: new.projection.unwrap_or_default(),
            orientation: new.orientation,
            filename: &new.filename,
            stream_id: None,
            live_session_id: None,
            recording: false,
        })
        .await
    }

    /// Stores a `preparing` recording of a live session that is starting: the HLS and
    /// audio renditions pending, `recording` set until [`AssetStore::end_recording`].
    pub async fn create_recording(&self, new: NewRecording) -> Result<Asset, sqlx::Error> {
        self.insert(NewRow {
            source: AssetSource::LiveSession,
            title: &new.title,
            owner_id: new.owner_id.as_deref(),
            visibility: new.visibility,
            projection: new.projection,
            orientation: new.orientation,
            filename: "",
            stream_id: Some(&new.stream_id),
            live_session_id: Some(&new.live_session_id),
            recording: true,
        })
        .await
    }

    /// One transaction: the asset row and a pending row per rendition.
    async fn insert(&self, row: NewRow<'_>) -> Result<Asset, sqlx::Error> {
        let id = db::new_id("as");
        let now = db::now();
        let mut tx = crate::db::write_tx(&self.pool).await?;
        sqlx::query(&format!(
            "INSERT INTO assets ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, 'preparing', NULL, $11, $11, \
             $12, $13, $14)"
        ))
        .bind(&id)
        .bind(row.source.as_str())
        .bind(row.title)
        .bind(row.owner_id)
        .bind(row.visibility.as_str())
        .bind(row.projection.as_str())
        .bind(row.orientation.yaw)
        .bind(row.orientation.pitch)
        .bind(row.orientation.roll)
        .bind(row.filename)
        .bind(now)
        .bind(row.stream_id)
        .bind(row.live_session_id)
        .bind(row.recording)
        .execute(&mut *tx)
        .await?;
        for kind in RenditionKind::ALL {
            sqlx::query(
                "INSERT INTO renditions (asset_id, kind, state, size_bytes, message, updated_at) \
                 VALUES ($1, $2, 'pending', NULL, NULL, $3)",
            )
            .bind(&id)
            .bind(kind.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.get(&id).await?.ok_or_else(|| sqlx::Error::RowNotFound)
    }

    /// The recording is written: no longer `recording`, with its duration and, for one
    /// finalised after a crash, a message saying so.
    pub async fn end_recording(
        &self,
        id: &str,
        duration_ms: u64,
        message: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE assets SET recording = FALSE, duration_ms = $1, message = $2, updated_at = $3 \
             WHERE id = $4",
        )
        .bind(i64::try_from(duration_ms).unwrap_or(i64::MAX))
        .bind(message)
        .bind(db::now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Recordings still marked `recording`: at start-up, the ones a crash cut short.
    pub async fn unfinished_recordings(&self) -> Result<Vec<Asset>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM assets WHERE recording = TRUE ORDER BY created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(asset_from_row).collect()
    }

    /// The finished recordings of stream `stream_id` with their renditions, oldest
    /// first.
    pub async fn recordings_of(&self, stream_id: &str) -> Result<Vec<Asset>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM assets WHERE stream_id = $1 AND recording = FALSE \
             ORDER BY created_at, id"
        ))
        .bind(stream_id)
        .fetch_all(&self.pool)
        .await?;
        let mut assets = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut asset = asset_from_row(row)?;
            asset.renditions = self.renditions(&asset.id).await?;
            assets.push(asset);
        }
        Ok(assets)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Asset>, sqlx::Error> {
        let Some(row) = sqlx::query(&format!("SELECT {COLUMNS} FROM assets WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut asset = asset_from_row(&row)?;
        asset.renditions = self.renditions(id).await?;
        Ok(Some(asset))
    }

    async fn renditions(&self, id: &str) -> Result<Vec<Rendition>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT kind, state, size_bytes, message FROM renditions WHERE asset_id = $1 ORDER BY kind",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let kind: String = row.try_get("kind")?;
            let state: String = row.try_get("state")?;
            let size: Option<i64> = row.try_get("size_bytes")?;
            let (Some(kind), Some(state)) =
                (RenditionKind::parse(&kind), RenditionState::parse(&state))
            else {
                continue;
            };
            out.push(Rendition {
                kind,
                state,
                size_bytes: size.and_then(|s| u64::try_from(s).ok()),
                url: (state == RenditionState::Ready).then(|| kind.url(id)),
                message: row.try_get("message")?,
            });
        }
        Ok(out)
    }

    /// Assets ordered by id after `cursor`, kept by `visible`; at most `limit`, with the
    /// next cursor when there are more.
    pub async fn list(
        &self,
        cursor: Option<&str>,
        limit: usize,
        visible: impl Fn(&Asset) -> bool,
    ) -> Result<(Vec<Asset>, Option<String>), sqlx::Error> {
        // Filtering happens here, not in SQL, so reads by role stay in one place
        // (`visible`); pages are read in chunks until full.
        let mut items = Vec::new();
        let mut after = cursor.unwrap_or("").to_string();
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM assets WHERE id > $1 ORDER BY id LIMIT 200"
            ))
            .bind(&after)
            .fetch_all(&self.pool)
            .await?;
            let done = rows.len() < 200;
            for row in &rows {
                let asset = asset_from_row(row)?;
                after = asset.id.clone();
                if visible(&asset) {
                    items.push(asset);
                    if items.len() > limit {
                        break;
                    }
                }
            }
            if done || items.len() > limit {
                break;
            }
        }
        let next = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().map(|a| a.id.clone()).unwrap_or_default()
        });
        for asset in &mut items {
            asset.renditions = self.renditions(&asset.id).await?;
        }
        Ok((items, next))
    }

    /// Back to `preparing` (a retried job), renditions pending again.
    pub async fn set_preparing(&self, id: &str) -> Result<(), sqlx::Error> {
        let now = db::now();
        let mut tx = crate::db::write_tx(&self.pool).await?;
        sqlx::query(
            "UPDATE assets SET state = 'preparing', message = NULL, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE renditions SET state = 'pending', message = NULL, size_bytes = NULL, updated_at = $1 \
             WHERE asset_id = $2 AND state <> 'ready'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    pub async fn set_duration(&self, id: &str, duration_ms: u64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE assets SET duration_ms = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::try_from(duration_ms).unwrap_or(i64::MAX))
            .bind(db::now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_rendition(
        &self,
        id: &str,
        kind: RenditionKind,
        state: RenditionState,
        size_bytes: Option<u64>,
        message: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE renditions SET state = $1, size_bytes = $2, message = $3, updated_at = $4 \
             WHERE asset_id = $5 AND kind = $6",
        )
        .bind(state.as_str())
        .bind(size_bytes.and_then(|s| i64::try_from(s).ok()))
        .bind(message)
        .bind(db::now())
        .bind(id)
        .bind(kind.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ready or errored (with the message); pending renditions of an errored asset
    /// become errored with it.
    pub async fn settle(
        &self,
        id: &str,
        state: AssetState,
        message: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let now = db::now();
        let mut tx = crate::db::write_tx(&self.pool).await?;
        sqlx::query("UPDATE assets SET state = $1, message = $2, updated_at = $3 WHERE id = $4")
            .bind(state.as_str())
            .bind(message)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if state == AssetState::Errored {
            sqlx::query(
                "UPDATE renditions SET state = 'errored', message = $1, updated_at = $2 \
                 WHERE asset_id = $3 AND state = 'pending'",
            )
            .bind(message)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    pub async fn delete(&self, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM assets WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

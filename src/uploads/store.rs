//! Uploads in progress: a row each (who, how long, metadata, expiry) and the bytes in
//! `<data_dir>/uploads/<id>`. The offset is the file's length: bytes are fsynced
//! before a PATCH is answered, so an acknowledged offset survives `kill -9`, and a
//! PATCH cut off mid-body keeps what reached the disk.

use std::path::{Path, PathBuf};

use sqlx::Row;

use crate::db::{self, Pool};

/// One upload as stored.
#[derive(Clone, Debug)]
pub struct Upload {
    pub id: String,
    pub owner_id: String,
    pub length: u64,
    /// `Upload-Metadata` as received.
    pub metadata: String,
    /// Set once the last byte arrived and the asset was made.
    pub asset_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The `uploads` rows and their files.
#[derive(Clone)]
pub struct UploadStore {
    pool: Pool,
    dir: PathBuf,
}

fn upload_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Upload, sqlx::Error> {
    let length: i64 = row.try_get("length")?;
    Ok(Upload {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        length: u64::try_from(length).map_err(|_| sqlx::Error::Decode("uploads.length".into()))?,
        metadata: row.try_get("metadata")?,
        asset_id: row.try_get("asset_id")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

impl UploadStore {
    pub fn new(pool: Pool, data_dir: &Path) -> Self {
        Self {
            pool,
            dir: data_dir.join("uploads"),
        }
    }

    /// The folder of upload files (also used for multipart bodies being received).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where upload `id`'s bytes are. Ids are server-made.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Creates the row and an empty file.
    pub async fn create(
        &self,
        owner_id: &str,
        length: u64,
        metadata: &str,
        expire_after_s: u64,
    ) -> Result<Upload, std::io::Error> {
        let id = db::new_id("up");
        let now = db::now();
        let expires_at = now + i64::try_from(expire_after_s).unwrap_or(i64::MAX / 2);
        tokio::fs::create_dir_all(&self.dir).await?;
        tokio::fs::File::create(self.path(&id)).await?;
        sqlx::query(
            "INSERT INTO uploads (id, owner_id, length, metadata, asset_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, NULL, $5, $6)",
        )
        .bind(&id)
        .bind(owner_id)
        .bind(i64::try_from(length).unwrap_or(i64::MAX))
        .bind(metadata)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(std::io::Error::other)?;
        Ok(Upload {
            id,
            owner_id: owner_id.to_string(),
            length,
            metadata: metadata.to_string(),
            asset_id: None,
            created_at: now,
            expires_at,
        })
    }

    /// The upload, unless it does not exist or has expired.
    pub async fn get(&self, id: &str) -> Result<Option<Upload>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT id, owner_id, length, metadata, asset_id, created_at, expires_at \
             FROM uploads WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let upload = row.as_ref().map(upload_from_row).transpose()?;
        Ok(upload.filter(|u| u.asset_id.is_some() || u.expires_at > db::now()))
    }

    /// Bytes received so far.
    pub async fn offset(&self, upload: &Upload) -> u64 {
        if upload.asset_id.is_some() {
            return upload.length;
        }
        tokio::fs::metadata(self.path(&upload.id))
            .await
            .map_or(0, |m| m.len())
    }

    pub async fn set_asset(&self, id: &str, asset_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE uploads SET asset_id = $1 WHERE id = $2")
            .bind(asset_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes the row and the file.
    pub async fn delete(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        let _ = tokio::fs::remove_file(self.path(id)).await;
        Ok(())
    }

    /// Deletes unfinished uploads past their expiry, and files no row owns (a
    /// multipart body cut off by a crash); returns how many uploads went.
    pub async fn expire(&self, now: i64) -> Result<usize, sqlx::Error> {
        let rows =
            sqlx::query("SELECT id FROM uploads WHERE asset_id IS NULL AND expires_at <= $1")
                .bind(now)
                .fetch_all(&self.pool)
                .await?;
        let mut n = 0;
        for row in rows {
            let id: String = row.try_get("id")?;
            self.delete(&id).await?;
            n += 1;
        }
        Ok(n)
    }
}

//! The embedded database: one SQLite file in the data directory, migrated at start.
//!
//! Durability: WAL with `synchronous=FULL`, so a write is on disk (WAL fsynced) before
//! the request that made it is answered — it survives `kill -9` and power loss.
//! `NORMAL` would survive `kill -9` too, but may lose the last commits on power loss;
//! catalog and account writes are rare, so the extra fsync costs nothing that matters.
//!
//! Queries use `$N` placeholders and portable SQL so a PostgreSQL pool can run them
//! later; the SQLite-only parts are confined to [`open`] (pragmas).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use sqlx::SqlitePool as Pool;

/// How long a statement waits for another connection's write to finish. Every commit
/// is fsynced (see above), and under heavy disk I/O from other processes one fsync has
/// been seen taking seconds: with 5 s, a request then failed with "database is locked"
/// where waiting a little longer would have answered it.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// File name of the database inside the data directory.
pub const FILE_NAME: &str = "panocast.db";

/// The database could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("database {path}: migration failed: {source}")]
    Migrate {
        path: String,
        source: sqlx::migrate::MigrateError,
    },
}

/// Opens (creating if needed) `panocast.db` in `data_dir` and applies the embedded
/// migrations.
pub async fn open(data_dir: &Path) -> Result<Pool, DbError> {
    let path = data_dir.join(FILE_NAME);
    let shown = path.display().to_string();
    if !path.exists() {
        // Password hashes and token hashes: owner-only, like the signing key. SQLite
        // gives its -wal and -shm files the same mode.
        crate::data_dir::write_secret(&path, b"").map_err(|e| DbError::Open {
            path: shown.clone(),
            source: sqlx::Error::Io(e),
        })?;
    }
    let options = SqliteConnectOptions::from_str("sqlite://")
        .map_err(|source| DbError::Open {
            path: shown.clone(),
            source,
        })?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|source| DbError::Open {
            path: shown.clone(),
            source,
        })?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(|source| DbError::Migrate {
            path: shown,
            source,
        })?;
    Ok(pool)
}

/// A write transaction: `BEGIN IMMEDIATE` takes the write lock at once, waiting up to
/// the busy timeout. A deferred transaction that reads first cannot upgrade its read
/// snapshot once another writer has committed, and fails at once with "database is
/// locked" (SQLITE_BUSY_SNAPSHOT) whatever the busy timeout; schemathesis and the job
/// worker racing on `POST /api/v1/assets` showed it.
pub async fn write_tx(
    pool: &Pool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A new random id with a readable prefix (`usr_…`, `st_…`); the `_` keeps ids apart
/// from slugs, which never contain one.
pub fn new_id(prefix: &str) -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}_{}", hex(&bytes))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

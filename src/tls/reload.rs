//! Certificate files re-read when they change, without a restart: polled every few
//! seconds (simple, and works on every filesystem, bind mounts and ACME clients that
//! rename into place included). A file that does not load is logged and the certificate
//! in use is kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::pem_files;
use super::resolver::CertStore;

/// The certificate and key files one [`CertStore`] is loaded from.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What a change of either file shows: modification time and length of both.
type Stamp = [(Option<SystemTime>, u64); 2];

impl CertFiles {
    fn stamp(&self) -> Stamp {
        [&self.cert, &self.key].map(|path| match std::fs::metadata(path) {
            Ok(meta) => (meta.modified().ok(), meta.len()),
            Err(_) => (None, 0),
        })
    }
}

/// Polls `files` every `every` until `shutdown`; a change is loaded into `store`.
pub async fn watch(
    files: CertFiles,
    store: Arc<CertStore>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tried = files.stamp();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = files.stamp();
        if now == tried {
            continue;
        }
        // A certificate replaced before its key fails to load until the key follows;
        // the key's own change then stamps a new attempt.
        tried = now;
        let (cert, key) = (files.cert.clone(), files.key.clone());
        let loaded = tokio::task::spawn_blocking(move || pem_files::load(&cert, &key)).await;
        match loaded {
            Ok(Ok(key)) => {
                store.replace(key);
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the one in use");
            }
            Err(e) => tracing::error!(error = %e, "TLS certificate reload task failed"),
        }
    }
}

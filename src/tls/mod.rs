//! HTTPS and RTMPS: where the certificate comes from (`[tls] mode`), the resolver that
//! hands it to every handshake, its reload when the files change, and the local CA for
//! LANs without a domain name. The listeners themselves stay in `api::listener` and
//! `ingest::rtmp::server`, which wrap accepted sockets with [`Tls::https`] and
//! [`Tls::rtmps`].

pub mod acceptor;
pub mod acme;
pub mod local_ca;
pub mod names;
pub mod pem_files;
pub mod private_files;
pub mod redirect;
pub mod reload;
pub mod resolver;
pub mod trust_page;
pub mod validity;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{TlsConfig, TlsMode};
use reload::CertFiles;
use resolver::CertStore;
use trust_page::TrustAnchor;

/// How often the local server certificate is checked for expiry and for new addresses.
const LOCAL_CA_CHECK: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS file {path}: {why}")]
    File { path: String, why: String },
    #[error("TLS certificate generation: {0}")]
    Generate(String),
}

/// TLS as the listeners use it.
pub struct Tls {
    pub https: TlsAcceptor,
    pub rtmps: TlsAcceptor,
    /// The local CA, when `mode = "local-ca"`.
    pub trust: Option<Arc<TrustAnchor>>,
    /// The HTTP-01 answers, when `mode = "acme"`.
    pub acme: Option<Arc<acme::Challenges>>,
}

/// Loads (or, for `local-ca`, creates) the certificate and starts the tasks that keep
/// it current; `None` when TLS is off. A certificate that cannot be loaded at start is
/// an error: the server does not start half-configured.
pub async fn start(
    config: &TlsConfig,
    data_dir: &Path,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Option<Tls>, TlsError> {
    let mut acme = None;
    let (files, trust) = match config.mode {
        TlsMode::Off => return Ok(None),
        TlsMode::Files => {
            let (Some(cert), Some(key)) = (&config.cert, &config.key) else {
                // Config::validate refuses this; kept as an error, not a panic.
                return Err(TlsError::Generate(
                    "tls.cert and tls.key are missing".into(),
                ));
            };
            let files = CertFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            (files, None)
        }
        TlsMode::LocalCa => {
            let dir = data_dir.join("tls");
            let extra = config.names.clone();
            let ensure = {
                let dir = dir.clone();
                move || {
                    local_ca::ensure(
                        &dir,
                        &names::certificate_names(&extra),
                        time::OffsetDateTime::now_utc(),
                    )
                }
            };
            let ca = blocking(ensure.clone()).await?;
            tasks.spawn(renew_local(ensure, shutdown.clone()));
            let trust = TrustAnchor {
                ca_cert: dir.join("ca.crt"),
                https_port: std::sync::OnceLock::new(),
            };
            (ca.files, Some(Arc::new(trust)))
        }
        TlsMode::Acme => {
            let settings = acme::AcmeSettings::new(config, data_dir);
            let challenges = Arc::new(acme::Challenges::default());
            let files = settings.files();
            tasks.spawn(acme::run(
                settings,
                Arc::clone(&challenges),
                shutdown.clone(),
            ));
            acme = Some(challenges);
            (files, None)
        }
    };
    let loaded = {
        let files = files.clone();
        let domains = config.domains.clone();
        let is_acme = acme.is_some();
        blocking(move || match pem_files::load(&files.cert, &files.key) {
            Ok(key) => Ok(key),
            // No ACME certificate yet: a placeholder until the order started above
            // completes (it is retried until HTTP listens and answers the challenge).
            Err(_) if is_acme => acme::placeholder(&domains),
            Err(e) => Err(e),
        })
        .await?
    };
    let store = Arc::new(CertStore::new(loaded));
    tasks.spawn(reload::watch(
        files,
        Arc::clone(&store),
        Duration::from_millis(config.reload_interval_ms),
        shutdown.clone(),
    ));
    Ok(Some(Tls {
        https: acceptor::https(&store)?,
        rtmps: acceptor::rtmps(&store)?,
        trust,
        acme,
    }))
}

/// Reissues the local server certificate when due (the reload watcher loads it);
/// failures are logged and tried again at the next check.
async fn renew_local<F>(ensure: F, shutdown: CancellationToken)
where
    F: Fn() -> Result<local_ca::LocalCa, TlsError> + Clone + Send + 'static,
{
    let mut tick = tokio::time::interval(LOCAL_CA_CHECK);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = blocking(ensure.clone()).await {
            tracing::warn!(error = %e, "local TLS certificate check failed; retrying in an hour");
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TlsError> + Send + 'static,
) -> Result<T, TlsError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| TlsError::Generate(format!("TLS setup task failed: {e}")))?
}
